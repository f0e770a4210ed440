/*  zf_mp: a bounded, zero-copy msgpack reader.

    Every read checks the type and that the announced length fits in what is
    left of the buffer, so no read ever goes past the end, and a count such as
    "array of 4 billion items" in a 10-byte frame is rejected before anything
    is allocated. Strings and binaries are returned as views into the buffer:
    they live as long as the buffer does. Writing uses msgpack-c's packer.
*/
#ifndef ZF_MP_H_INCLUDED
#define ZF_MP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "zf_error.h"

#ifdef __cplusplus
extern "C" {
#endif

//  How deep zf_mp_skip goes before giving up with ZF_EDEPTH.
#define ZF_MP_MAX_DEPTH 32

typedef enum {
    ZF_MP_END = 0, // no bytes left
    ZF_MP_NIL,
    ZF_MP_BOOL,
    ZF_MP_UINT, // non-negative integer, in any encoding
    ZF_MP_INT,  // negative integer
    ZF_MP_FLOAT,
    ZF_MP_STR,
    ZF_MP_BIN,
    ZF_MP_ARRAY,
    ZF_MP_MAP,
    ZF_MP_EXT,
    ZF_MP_INVALID // 0xc1, the one byte msgpack never uses
} zf_mp_type_t;

typedef struct {
    const uint8_t *pos; // next byte to read
    const uint8_t *end; // one past the last byte
} zf_mp_t;

//  Start reading size bytes at data.
void zf_mp_init (zf_mp_t *self, const void *data, size_t size);

//  Bytes not yet read.
size_t zf_mp_left (const zf_mp_t *self);

//  Type of the next value, without reading it.
zf_mp_type_t zf_mp_peek (const zf_mp_t *self);

//  Name of a type, for messages ("str", "map", ...).
const char *zf_mp_type_name (zf_mp_type_t type);

//  Each reader consumes one value of its type and returns 0, or returns -1
//  with err filled (ZF_ETYPE, ZF_ETRUNC) and the cursor unmoved.
int zf_mp_map (zf_mp_t *self, uint32_t *count, zf_error_t *err);
int zf_mp_array (zf_mp_t *self, uint32_t *count, zf_error_t *err);
int zf_mp_str (zf_mp_t *self, const char **str, uint32_t *len, zf_error_t *err);
int zf_mp_bin (zf_mp_t *self, const uint8_t **data, uint32_t *len, zf_error_t *err);
int zf_mp_uint (zf_mp_t *self, uint64_t *value, zf_error_t *err);
int zf_mp_int (zf_mp_t *self, int64_t *value, zf_error_t *err);
//  Any number (an integer or a float) as a double.
int zf_mp_double (zf_mp_t *self, double *value, zf_error_t *err);
int zf_mp_bool (zf_mp_t *self, bool *value, zf_error_t *err);
int zf_mp_nil (zf_mp_t *self, zf_error_t *err);

//  Consume one value of any type, nested at most max_depth levels.
int zf_mp_skip (zf_mp_t *self, int max_depth, zf_error_t *err);

//  True if the next value is a str equal to key; consumes it only then.
bool zf_mp_key_is (zf_mp_t *self, const char *key);

//  Reads an unsigned integer, or skips whatever value is there: 0 then.
//  For readers of maps that take the fields they know.
uint64_t zf_mp_uint_or_skip (zf_mp_t *self);

//  The value of key in a msgpack map of str to str (an envelope's
//  headers): a view into data, its length in *len; NULL when the map has
//  no such key, or is not such a map.
const char *zf_mp_header (const void *data, size_t size, const char *key, uint32_t *len);

//  Skips a key and its value. Returns 0, or -1 if either is malformed.
int zf_mp_skip_pair (zf_mp_t *self);

//  Pack a NUL-terminated string (msgpack-c has no such helper).
int zf_mp_pack_cstr (msgpack_packer *pk, const char *str);

//  Pack a counted string.
int zf_mp_pack_strn (msgpack_packer *pk, const char *str, size_t len);

#ifdef __cplusplus
}
#endif
#endif
