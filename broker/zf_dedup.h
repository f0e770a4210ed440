/*  zf_dedup: the broker's dedup window, the last N ids put, each with a
    small outcome (stored, done, dead, ...).

    A ring holds the ids in the order they came, and an open-addressing
    table of 32-bit slots finds them: 21 bytes an id at a load under 1/2,
    where a map of ids to pointers takes 48. The window is the broker's
    largest structure, so this is what bounds its memory. A slot holds a
    ring position and, in the bits the position leaves free, a tag of the
    id: a probe that meets another id's slot seldom reads the ring.
*/
#ifndef ZF_DEDUP_H_INCLUDED
#define ZF_DEDUP_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "zf_id.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_dedup_t zf_dedup_t;

//  A window of the last `window` ids (1 .. 2^31). NULL if out of memory.
zf_dedup_t *zf_dedup_new (size_t window);

void zf_dedup_destroy (zf_dedup_t **self_p);

//  The outcome of id, or 0 if it is not in the window.
uint8_t zf_dedup_get (zf_dedup_t *self, const zf_id_t *id);

//  Records id with outcome (not 0). An id in the window already keeps its
//  place and takes the new outcome: its old one is returned. A new id
//  returns 0, and the oldest id leaves the window once it is full: its
//  outcome is written to *evicted (0 when nothing left).
uint8_t zf_dedup_set (zf_dedup_t *self, const zf_id_t *id, uint8_t outcome, uint8_t *evicted);

//  Calls fn on every id in the window with its outcome, oldest first.
void zf_dedup_foreach (zf_dedup_t *self, void (*fn) (const zf_id_t *id, uint8_t outcome, void *arg),
                       void *arg);

#ifdef __cplusplus
}
#endif
#endif
