/*  zf_json: JSON to msgpack and back, for the edges where people type or
    read items (zflow put, zflow tap, sinks writing JSON lines).

    JSON in is strict RFC 8259: numbers become int64 (or uint64 when
    larger) when whole, double otherwise; strings are checked for UTF-8 and
    their escapes decoded; nesting is limited to 64 levels. Errors name the
    column and what was expected.

    msgpack out as JSON: bin becomes {"$base64": "..."}, ext
    {"$ext": TYPE, "$base64": "..."}, a map key that is not a string is
    written as the JSON text of the key, NaN and infinities as null, and
    invalid UTF-8 in a string as U+FFFD; so any msgpack renders.
*/
#ifndef ZF_JSON_H_INCLUDED
#define ZF_JSON_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "zf_error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZF_JSON_MAX_DEPTH 64

//  Parse one JSON value (surrounding whitespace allowed) and pack it.
//  Returns 0, or -1 with err saying where ("column 7: expected ':'").
int zf_json_to_msgpack (const char *text, size_t len, msgpack_packer *pk, zf_error_t *err);

//  Render one msgpack value as JSON. Returns a new NUL-terminated string
//  (caller frees), or NULL with err if data is not one whole msgpack value.
char *zf_msgpack_to_json (const void *data, size_t size, zf_error_t *err);

//  Length of the valid UTF-8 sequence at s (at most left bytes, left > 0):
//  1 to 4, or 0 when it is none (overlong, a surrogate, past U+10FFFF, cut).
size_t zf_utf8_len (const unsigned char *s, size_t left);

//  True if text is a name fit to republish (in stats, events, logs):
//  valid UTF-8 with no control character. Length is the caller's to bound.
bool zf_json_name_ok (const char *text);

#ifdef __cplusplus
}
#endif
#endif
