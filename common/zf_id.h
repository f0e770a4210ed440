/*  zf_id: message ids (zflow.h defines the type and its public functions).

    Derivation is SipHash-2-4 with 128-bit output under the fixed key
    "zflow/id/v1" padded with zeros to 16 bytes, over a tagged input; the
    exact inputs are specified in schemas/zfp.md so that any language can
    reproduce them.
*/
#ifndef ZF_ID_H_INCLUDED
#define ZF_ID_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "zflow.h"

#ifdef __cplusplus
extern "C" {
#endif

//  SipHash-2-4, 128-bit output, as in the reference implementation.
void zf_siphash128 (const uint8_t key[16], const void *data, size_t size, uint8_t out[16]);

//  The id of a scheduler firing: job is "pipeline/actor/job", when the
//  scheduled time in ms since the Unix epoch (UTC).
zf_id_t zf_id_firing (const char *job, int64_t when_ms);

//  The id of the item at position (0-based) of a source named source,
//  "pipeline/actor".
zf_id_t zf_id_source (const char *source, uint64_t position);

#ifdef __cplusplus
}
#endif
#endif
