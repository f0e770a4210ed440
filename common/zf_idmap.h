/*  zf_idmap: a hash map from message ids to pointers.

    Ids are SipHash outputs or random, so their first 8 bytes are already a
    good hash: open addressing with linear probing and backward-shift
    deletion, no tombstones, no per-entry allocation. The map owns nothing.
*/
#ifndef ZF_IDMAP_H_INCLUDED
#define ZF_IDMAP_H_INCLUDED

#include <stddef.h>

#include "zf_id.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_idmap_t zf_idmap_t;

//  A map sized for about capacity entries (it grows as needed).
zf_idmap_t *zf_idmap_new (size_t capacity);

void zf_idmap_destroy (zf_idmap_t **self_p);

//  The value for id, or NULL.
void *zf_idmap_get (zf_idmap_t *self, const zf_id_t *id);

//  Sets id to value (not NULL), replacing any value. Returns 0, or -1 if
//  out of memory.
int zf_idmap_put (zf_idmap_t *self, const zf_id_t *id, void *value);

//  Sets id to value (not NULL) and returns the value it had, or NULL if it
//  is new (one probe where get-then-put takes two). On out of memory it
//  returns NULL and leaves the map unchanged.
void *zf_idmap_swap (zf_idmap_t *self, const zf_id_t *id, void *value);

//  Removes id; returns its value, or NULL if it was not there.
void *zf_idmap_remove (zf_idmap_t *self, const zf_id_t *id);

size_t zf_idmap_size (zf_idmap_t *self);

//  Removes every entry; the map keeps its room (a map filled and emptied
//  over and over costs no allocation after the first time).
void zf_idmap_clear (zf_idmap_t *self);

//  Calls fn on every value. fn must not change the map.
void zf_idmap_foreach (zf_idmap_t *self, void (*fn) (void *value, void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif
