/*  zf_heap: a binary min-heap of timers. See zf_heap.h. */
#include "zf_heap.h"
#include "zf_alloc.h"

#include <stdlib.h>

static void
s_swap (zf_heap_t *self, size_t a, size_t b)
{
    zf_heap_node_t *t = self->nodes[a];
    self->nodes[a] = self->nodes[b];
    self->nodes[b] = t;
    self->nodes[a]->index = a;
    self->nodes[b]->index = b;
}

static void
s_up (zf_heap_t *self, size_t i)
{
    while (i > 0 && self->nodes[(i - 1) / 2]->due > self->nodes[i]->due) {
        s_swap (self, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
s_down (zf_heap_t *self, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < self->size && self->nodes[l]->due < self->nodes[m]->due)
            m = l;
        if (r < self->size && self->nodes[r]->due < self->nodes[m]->due)
            m = r;
        if (m == i)
            return;
        s_swap (self, i, m);
        i = m;
    }
}

void
zf_heap_destroy (zf_heap_t *self)
{
    free (self->nodes);
    self->nodes = NULL;
    self->size = self->cap = 0;
}

void
zf_heap_push (zf_heap_t *self, zf_heap_node_t *node, int64_t due)
{
    if (self->size == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 64;
        self->nodes = (zf_heap_node_t **) zf_realloc (self->nodes, self->cap * sizeof *self->nodes);
    }
    node->due = due;
    node->index = self->size;
    self->nodes[self->size++] = node;
    s_up (self, node->index);
}

void
zf_heap_remove (zf_heap_t *self, zf_heap_node_t *node)
{
    size_t i = node->index;
    s_swap (self, i, --self->size);
    if (i < self->size) {
        s_down (self, i);
        s_up (self, i);
    }
}

void
zf_heap_move (zf_heap_t *self, zf_heap_node_t *node, int64_t due)
{
    node->due = due;
    s_down (self, node->index);
    s_up (self, node->index);
}
