/*  zf_window: the last N ids seen. See zf_window.h. */
#include "zf_window.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    zf_id_t id;   // an id seen
    uint8_t mark; // its mark; 0 for an unused entry
} s_entry_t;

//  A slot of the table holds the ring position + 1 of its id in the low
//  bits, and above them a tag: bits of the id other than those that chose
//  its home slot. A probe that meets another id's slot then rarely needs
//  to look at the ring (a cache miss) to tell it apart.
struct _zf_window_t {
    s_entry_t *ring;        // ids, oldest at head once full
    size_t window;          // entries in ring
    size_t head;            // where the next id goes
    uint32_t *table;        // tag | ring position + 1 of each id, 0 for a free slot
    size_t mask;            // slots in table - 1
    unsigned position_bits; // low bits of a slot that hold the position
    uint32_t position_mask; // those bits
};

//  Ids are SipHash outputs or random: their first bytes are a good hash.
static size_t
s_home (zf_window_t *self, const zf_id_t *id)
{
    uint64_t hash;
    memcpy (&hash, id->bytes, sizeof hash);
    return (size_t) hash & self->mask;
}

//  The tag of id, in place above the position bits (none with a window
//  of 2^31, whose positions take all 32 bits).
static uint32_t
s_tag (zf_window_t *self, const zf_id_t *id)
{
    uint32_t bits;
    memcpy (&bits, id->bytes + 8, sizeof bits);
    return (uint32_t) ((uint64_t) bits << self->position_bits);
}

//  The ring entry a used slot points to.
static s_entry_t *
s_entry (zf_window_t *self, uint32_t slot)
{
    return &self->ring[(slot & self->position_mask) - 1];
}

zf_window_t *
zf_window_new (size_t window)
{
    if (window == 0 || window > (1u << 31))
        return NULL;
    zf_window_t *self = (zf_window_t *) calloc (1, sizeof (zf_window_t));
    size_t slots = 16;
    while (slots < window * 2)
        slots *= 2;
    if (self) {
        self->window = window;
        self->mask = slots - 1;
        while (self->position_bits < 32 && ((uint64_t) 1 << self->position_bits) <= window)
            self->position_bits++;
        self->position_mask = (uint32_t) (((uint64_t) 1 << self->position_bits) - 1);
        self->ring = (s_entry_t *) calloc (window, sizeof (s_entry_t));
        self->table = (uint32_t *) calloc (slots, sizeof (uint32_t));
    }
    if (!self || !self->ring || !self->table)
        zf_window_destroy (&self);
    return self;
}

void
zf_window_destroy (zf_window_t **self_p)
{
    zf_window_t *self = *self_p;
    if (self) {
        free (self->ring);
        free (self->table);
        free (self);
        *self_p = NULL;
    }
}

//  The slot of id, or the free slot where it would go.
static size_t
s_find (zf_window_t *self, const zf_id_t *id)
{
    uint32_t tag = s_tag (self, id);
    for (size_t i = s_home (self, id);; i = (i + 1) & self->mask) {
        uint32_t slot = self->table[i];
        if (!slot ||
            ((slot & ~self->position_mask) == tag && zf_id_eq (&s_entry (self, slot)->id, id)))
            return i;
    }
}

uint8_t
zf_window_get (zf_window_t *self, const zf_id_t *id)
{
    uint32_t slot = self->table[s_find (self, id)];
    return slot ? s_entry (self, slot)->mark : 0;
}

//  Frees slot gap, moving later entries of its cluster back into the gap
//  when that brings them no further from their home slot.
static void
s_remove_slot (zf_window_t *self, size_t gap)
{
    for (size_t i = (gap + 1) & self->mask; self->table[i]; i = (i + 1) & self->mask) {
        size_t home = s_home (self, &s_entry (self, self->table[i])->id);
        if (((i - home) & self->mask) >= ((i - gap) & self->mask)) {
            self->table[gap] = self->table[i];
            gap = i;
        }
    }
    self->table[gap] = 0;
}

uint8_t
zf_window_set (zf_window_t *self, const zf_id_t *id, uint8_t mark, uint8_t *evicted)
{
    size_t slot = s_find (self, id);
    if (self->table[slot]) {
        s_entry_t *entry = s_entry (self, self->table[slot]);
        uint8_t old = entry->mark;
        entry->mark = mark;
        return old;
    }
    s_entry_t *entry = &self->ring[self->head];
    if (evicted)
        *evicted = entry->mark;
    if (entry->mark) {
        // The oldest leaves: free its slot first, which may move others
        // (the new id's free slot among them).
        s_remove_slot (self, s_find (self, &entry->id));
        slot = s_find (self, id);
    }
    entry->id = *id;
    entry->mark = mark;
    self->table[slot] = s_tag (self, id) | (uint32_t) (self->head + 1);
    self->head = (self->head + 1) % self->window;
    return 0;
}

void
zf_window_foreach (zf_window_t *self, void (*fn) (const zf_id_t *id, uint8_t mark, void *arg),
                   void *arg)
{
    // From head on, the ring holds the oldest first (unused entries, not
    // yet reached, have mark 0).
    for (size_t i = 0; i < self->window; i++) {
        s_entry_t *entry = &self->ring[(self->head + i) % self->window];
        if (entry->mark)
            fn (&entry->id, entry->mark, arg);
    }
}
