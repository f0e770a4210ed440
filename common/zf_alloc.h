/*  zf_alloc: zflow's memory policy, in three functions.

    Running out of memory is fatal: zf_alloc, zf_realloc and zf_strdup log
    what was asked for and abort, as czmq's zmalloc does. So no caller
    checks for NULL, and no change of state is left half done because one
    allocation of several failed (a broker that lost track of an item it
    had confirmed would be worse than one that stopped). What outside input
    decides is bounded before it is allocated: the decoders check every
    size and count against its limit (schemas/zfp.md, "Limits"), and the
    sockets refuse frames over max-frame.

    A module that can go on without the memory (a cache, a buffer that
    could stay small) uses malloc and handles NULL itself, and says so.
*/
#ifndef ZF_ALLOC_H_INCLUDED
#define ZF_ALLOC_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  size bytes, zeroed. Never NULL.
void *zf_alloc (size_t size);

//  ptr (may be NULL) resized to size bytes; the bytes beyond the old size
//  are not zeroed. Never NULL.
void *zf_realloc (void *ptr, size_t size);

//  A copy of text. Never NULL.
char *zf_strdup (const char *text);

#ifdef __cplusplus
}
#endif
#endif
