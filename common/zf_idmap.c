/*  zf_idmap: id -> pointer hash map. See zf_idmap.h. */
#include "zf_idmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    zf_id_t id;  // the key
    void *value; // NULL marks a free slot
} s_slot_t;

struct _zf_idmap_t {
    s_slot_t *slots; // 2^n slots
    size_t mask;     // slots - 1
    size_t size;     // slots in use
};

static size_t
s_hash (const zf_id_t *id)
{
    uint64_t h;
    memcpy (&h, id->bytes, sizeof h);
    return (size_t) (h ^ (h >> 29));
}

zf_idmap_t *
zf_idmap_new (size_t capacity)
{
    zf_idmap_t *self = (zf_idmap_t *) calloc (1, sizeof (zf_idmap_t));
    if (!self)
        return NULL;
    size_t slots = 16;
    while (slots < capacity * 2)
        slots *= 2;
    self->slots = (s_slot_t *) calloc (slots, sizeof (s_slot_t));
    if (!self->slots) {
        free (self);
        return NULL;
    }
    self->mask = slots - 1;
    return self;
}

void
zf_idmap_destroy (zf_idmap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->slots);
    free (*self_p);
    *self_p = NULL;
}

static s_slot_t *
s_find (zf_idmap_t *self, const zf_id_t *id)
{
    for (size_t i = s_hash (id) & self->mask;; i = (i + 1) & self->mask) {
        s_slot_t *slot = &self->slots[i];
        if (!slot->value || zf_id_eq (&slot->id, id))
            return slot;
    }
}

void *
zf_idmap_get (zf_idmap_t *self, const zf_id_t *id)
{
    return s_find (self, id)->value;
}

static int
s_grow (zf_idmap_t *self)
{
    size_t old_count = self->mask + 1;
    s_slot_t *old = self->slots;
    s_slot_t *slots = (s_slot_t *) calloc (old_count * 2, sizeof (s_slot_t));
    if (!slots)
        return -1;
    self->slots = slots;
    self->mask = old_count * 2 - 1;
    for (size_t i = 0; i < old_count; i++)
        if (old[i].value)
            *s_find (self, &old[i].id) = old[i];
    free (old);
    return 0;
}

int
zf_idmap_put (zf_idmap_t *self, const zf_id_t *id, void *value)
{
    // Keep the load under 1/2 so probes stay short.
    if ((self->size + 1) * 2 > self->mask + 1 && s_grow (self))
        return -1;
    s_slot_t *slot = s_find (self, id);
    if (!slot->value) {
        slot->id = *id;
        self->size++;
    }
    slot->value = value;
    return 0;
}

void *
zf_idmap_swap (zf_idmap_t *self, const zf_id_t *id, void *value)
{
    if ((self->size + 1) * 2 > self->mask + 1 && s_grow (self))
        return NULL;
    s_slot_t *slot = s_find (self, id);
    void *old = slot->value;
    if (!old) {
        slot->id = *id;
        self->size++;
    }
    slot->value = value;
    return old;
}

void *
zf_idmap_remove (zf_idmap_t *self, const zf_id_t *id)
{
    s_slot_t *slot = s_find (self, id);
    void *value = slot->value;
    if (!value)
        return NULL;
    self->size--;
    // Backward-shift: move later entries of the cluster into the gap when
    // that brings them no further from their home slot.
    size_t gap = (size_t) (slot - self->slots);
    for (size_t i = (gap + 1) & self->mask; self->slots[i].value; i = (i + 1) & self->mask) {
        size_t home = s_hash (&self->slots[i].id) & self->mask;
        if (((i - home) & self->mask) >= ((i - gap) & self->mask)) {
            self->slots[gap] = self->slots[i];
            gap = i;
        }
    }
    self->slots[gap].value = NULL;
    return value;
}

size_t
zf_idmap_size (zf_idmap_t *self)
{
    return self->size;
}

void
zf_idmap_clear (zf_idmap_t *self)
{
    if (self->size)
        memset (self->slots, 0, (self->mask + 1) * sizeof (s_slot_t));
    self->size = 0;
}

void
zf_idmap_foreach (zf_idmap_t *self, void (*fn) (void *value, void *arg), void *arg)
{
    for (size_t i = 0; i <= self->mask; i++)
        if (self->slots[i].value)
            fn (self->slots[i].value, arg);
}
