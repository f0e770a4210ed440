/*  zf_heap: a binary min-heap of timers, by due time (libuv's timer heap).

    A node lives inside the item it times (intrusive: no allocation an
    entry); the heap keeps each node's position in it, so that any node,
    not only the first, is removed in O(log n). Ties keep no order.

        typedef struct { zf_heap_node_t timer; ... } retry_t;
        zf_heap_push (&heap, &retry->timer, now + delay);
        while ((node = zf_heap_first (&heap)) && node->due <= now) {
            zf_heap_remove (&heap, node);
            retry_t *retry = ZF_CONTAINER (node, retry_t, timer);
        }
*/
#ifndef ZF_HEAP_H_INCLUDED
#define ZF_HEAP_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t due;  // when it is due (the heap's order)
    size_t index; // its position in the heap, while on it
} zf_heap_node_t;

typedef struct {
    zf_heap_node_t **nodes; // the heap, first at 0
    size_t size;            // nodes on it
    size_t cap;             // entries allocated
} zf_heap_t;

//  An empty heap is all zeros; this frees what it allocated (not the nodes).
void zf_heap_destroy (zf_heap_t *self);

//  Puts node, due at due, on the heap (memory grows as zf_alloc's policy
//  says: it is there or the process stops).
void zf_heap_push (zf_heap_t *self, zf_heap_node_t *node, int64_t due);

//  Takes node, which must be on the heap, off it.
void zf_heap_remove (zf_heap_t *self, zf_heap_node_t *node);

//  Node, which must be on the heap, is due at due now: moved to its place.
void zf_heap_move (zf_heap_t *self, zf_heap_node_t *node, int64_t due);

//  The node due first, or NULL when the heap is empty.
static inline zf_heap_node_t *
zf_heap_first (zf_heap_t *self)
{
    return self->size ? self->nodes[0] : NULL;
}

#ifdef __cplusplus
}
#endif
#endif
