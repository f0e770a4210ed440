/*  zf_id: message ids.

    An id is 16 bytes, written as 32 lowercase hex digits. Ids are derived
    deterministically wherever the same item can be produced twice (a
    redelivered parent emitting its children again, a restarted producer
    re-reading its source, two schedulers firing the same job), so the broker's
    dedup and the sinks see the same id and write nothing twice.

    Derivation is SipHash-2-4 with 128-bit output under the fixed key
    "zflow/id/v1" padded with zeros to 16 bytes, over a tagged input; the
    exact inputs are specified in schemas/zfp.md so that any language can
    reproduce them.
*/
#ifndef ZF_ID_H_INCLUDED
#define ZF_ID_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZF_ID_SIZE 16
#define ZF_ID_HEX  (ZF_ID_SIZE * 2 + 1)

typedef struct {
    uint8_t bytes[ZF_ID_SIZE]; // big-endian as on the wire
} zf_id_t;

//  SipHash-2-4, 128-bit output, as in the reference implementation.
void zf_siphash128 (const uint8_t key[16], const void *data, size_t size, uint8_t out[16]);

//  The id of output number index of the item with id parent.
zf_id_t zf_id_child (const zf_id_t *parent, uint32_t index);

//  The id of a scheduler firing: job is "pipeline/actor/job", when the
//  scheduled time in ms since the Unix epoch (UTC).
zf_id_t zf_id_firing (const char *job, int64_t when_ms);

//  The id of the item at position (0-based) of a source named source,
//  "pipeline/actor".
zf_id_t zf_id_source (const char *source, uint64_t position);

//  A random id for items that have no origin to derive from (zflow put).
zf_id_t zf_id_random (void);

//  Writes 32 hex digits and a NUL into hex; returns hex.
char *zf_id_format (const zf_id_t *id, char hex[ZF_ID_HEX]);

//  Reads 32 hex digits (either case). Returns 0, or -1 if text is not an id.
int zf_id_parse (zf_id_t *id, const char *text);

bool zf_id_eq (const zf_id_t *a, const zf_id_t *b);

bool zf_id_is_zero (const zf_id_t *id);

#ifdef __cplusplus
}
#endif
#endif
