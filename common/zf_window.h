/*  zf_window: the last N ids seen, each with a small mark (a byte, not 0).

    What remembers "have I seen this id lately" uses it: the broker's dedup
    window (the mark is the item's outcome: stored, done, dead, ...), the
    groups a gather closed, the items a sink wrote. Memory stays flat: the
    oldest id leaves as a new one comes.

    A ring holds the ids in the order they came, and an open-addressing
    table of 32-bit slots finds them: 21 bytes an id at a load under 1/2,
    where a map of ids to pointers takes 48. The broker's dedup window is
    its largest structure, so this is what bounds its memory. A slot holds a
    ring position and, in the bits the position leaves free, a tag of the
    id: a probe that meets another id's slot seldom reads the ring.
*/
#ifndef ZF_WINDOW_H_INCLUDED
#define ZF_WINDOW_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "zf_id.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_window_t zf_window_t;

//  A window of the last `window` ids (1 .. 2^31). NULL if out of memory.
zf_window_t *zf_window_new (size_t window);

void zf_window_destroy (zf_window_t **self_p);

//  The mark of id, or 0 if it is not in the window.
uint8_t zf_window_get (zf_window_t *self, const zf_id_t *id);

//  Records id with mark (not 0). An id in the window already keeps its
//  place and takes the new mark: its old one is returned. A new id returns
//  0, and the oldest id leaves the window once it is full: its mark is
//  written to *evicted (may be NULL; 0 when nothing left).
uint8_t zf_window_set (zf_window_t *self, const zf_id_t *id, uint8_t mark, uint8_t *evicted);

//  Calls fn on every id in the window with its mark, oldest first.
void zf_window_foreach (zf_window_t *self, void (*fn) (const zf_id_t *id, uint8_t mark, void *arg),
                        void *arg);

#ifdef __cplusplus
}
#endif
#endif
