/*  zf_mp: a bounded, zero-copy msgpack reader. See zf_mp.h. */
#include "zf_mp.h"

#include <string.h>

static uint64_t
s_be (const uint8_t *p, int size)
{
    uint64_t value = 0;
    for (int i = 0; i < size; i++)
        value = (value << 8) | p[i];
    return value;
}

void
zf_mp_init (zf_mp_t *self, const void *data, size_t size)
{
    self->pos = (const uint8_t *) data;
    self->end = self->pos + size;
}

size_t
zf_mp_left (const zf_mp_t *self)
{
    return (size_t) (self->end - self->pos);
}

zf_mp_type_t
zf_mp_peek (const zf_mp_t *self)
{
    if (self->pos >= self->end)
        return ZF_MP_END;
    uint8_t b = *self->pos;
    if (b <= 0x7f || (b >= 0xcc && b <= 0xcf))
        return ZF_MP_UINT;
    if (b >= 0xe0 || (b >= 0xd0 && b <= 0xd3))
        return ZF_MP_INT;
    if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf)
        return ZF_MP_MAP;
    if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd)
        return ZF_MP_ARRAY;
    if ((b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb))
        return ZF_MP_STR;
    switch (b) {
        case 0xc0:
            return ZF_MP_NIL;
        case 0xc2:
        case 0xc3:
            return ZF_MP_BOOL;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            return ZF_MP_BIN;
        case 0xca:
        case 0xcb:
            return ZF_MP_FLOAT;
        case 0xc7:
        case 0xc8:
        case 0xc9:
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
            return ZF_MP_EXT;
        default:
            return ZF_MP_INVALID;
    }
}

const char *
zf_mp_type_name (zf_mp_type_t type)
{
    static const char *names[] = { "end of input", "nil", "bool",  "uint", "int", "float",
                                   "str",          "bin", "array", "map",  "ext", "0xc1" };
    if (type < ZF_MP_END || type > ZF_MP_INVALID)
        return "?";
    return names[type];
}

static int
s_type_error (const zf_mp_t *self, zf_mp_type_t wanted, zf_error_t *err)
{
    zf_mp_type_t found = zf_mp_peek (self);
    if (found == ZF_MP_END)
        return zf_error_set (err, ZF_ETRUNC, "expected %s, found end of input",
                             zf_mp_type_name (wanted));
    return zf_error_set (err, ZF_ETYPE, "expected %s, found %s", zf_mp_type_name (wanted),
                         zf_mp_type_name (found));
}

static int
s_truncated (zf_error_t *err, const char *what)
{
    return zf_error_set (err, ZF_ETRUNC, "%s runs past the end of the input", what);
}

//  Reads the length that follows a header byte: size bytes, big-endian.
//  Returns -1 if those bytes are not there.
static int
s_length (const zf_mp_t *self, int size, uint64_t *length)
{
    if (zf_mp_left (self) < (size_t) 1 + size)
        return -1;
    *length = s_be (self->pos + 1, size);
    return 0;
}

//  A container (array or map) with header size hsize announcing count items
//  of at least min_bytes each: checks that they could fit in what is left.
static int
s_container (zf_mp_t *self, int hsize, uint64_t count, unsigned min_bytes, uint32_t *out,
             zf_error_t *err, const char *what)
{
    if ((uint64_t) (zf_mp_left (self) - hsize) / min_bytes < count)
        return zf_error_set (err, ZF_ETRUNC, "%s of %llu entries cannot fit in the %zu bytes left",
                             what, (unsigned long long) count, zf_mp_left (self) - hsize);
    self->pos += hsize;
    *out = (uint32_t) count;
    return 0;
}

int
zf_mp_map (zf_mp_t *self, uint32_t *count, zf_error_t *err)
{
    if (zf_mp_peek (self) != ZF_MP_MAP)
        return s_type_error (self, ZF_MP_MAP, err);
    uint8_t b = *self->pos;
    uint64_t n;
    int size = b == 0xde ? 2 : b == 0xdf ? 4 : 0;
    if (size == 0)
        n = b & 0x0f;
    else if (s_length (self, size, &n))
        return s_truncated (err, "map header");
    return s_container (self, 1 + size, n, 2, count, err, "map");
}

int
zf_mp_array (zf_mp_t *self, uint32_t *count, zf_error_t *err)
{
    if (zf_mp_peek (self) != ZF_MP_ARRAY)
        return s_type_error (self, ZF_MP_ARRAY, err);
    uint8_t b = *self->pos;
    uint64_t n;
    int size = b == 0xdc ? 2 : b == 0xdd ? 4 : 0;
    if (size == 0)
        n = b & 0x0f;
    else if (s_length (self, size, &n))
        return s_truncated (err, "array header");
    return s_container (self, 1 + size, n, 1, count, err, "array");
}

//  Reads the header of a str or bin whose length field has size bytes.
static int
s_bytes (zf_mp_t *self, int hsize, uint64_t len, const uint8_t **data, uint32_t *out,
         zf_error_t *err, const char *what)
{
    if ((uint64_t) (zf_mp_left (self) - hsize) < len)
        return zf_error_set (err, ZF_ETRUNC, "%s of %llu bytes runs past the end of the input",
                             what, (unsigned long long) len);
    *data = self->pos + hsize;
    *out = (uint32_t) len;
    self->pos += hsize + len;
    return 0;
}

int
zf_mp_str (zf_mp_t *self, const char **str, uint32_t *len, zf_error_t *err)
{
    if (zf_mp_peek (self) != ZF_MP_STR)
        return s_type_error (self, ZF_MP_STR, err);
    uint8_t b = *self->pos;
    uint64_t n;
    int size = b == 0xd9 ? 1 : b == 0xda ? 2 : b == 0xdb ? 4 : 0;
    if (size == 0)
        n = b & 0x1f;
    else if (s_length (self, size, &n))
        return s_truncated (err, "str header");
    return s_bytes (self, 1 + size, n, (const uint8_t **) str, len, err, "str");
}

int
zf_mp_bin (zf_mp_t *self, const uint8_t **data, uint32_t *len, zf_error_t *err)
{
    if (zf_mp_peek (self) != ZF_MP_BIN)
        return s_type_error (self, ZF_MP_BIN, err);
    uint8_t b = *self->pos;
    int size = b == 0xc4 ? 1 : b == 0xc5 ? 2 : 4;
    uint64_t n;
    if (s_length (self, size, &n))
        return s_truncated (err, "bin header");
    return s_bytes (self, 1 + size, n, data, len, err, "bin");
}

//  Size in bytes of the payload of a fixed-size integer or float header.
static int
s_scalar_size (uint8_t b)
{
    switch (b) {
        case 0xcc:
        case 0xd0:
            return 1;
        case 0xcd:
        case 0xd1:
            return 2;
        case 0xce:
        case 0xd2:
        case 0xca:
            return 4;
        case 0xcf:
        case 0xd3:
        case 0xcb:
            return 8;
        default:
            return 0;
    }
}

int
zf_mp_uint (zf_mp_t *self, uint64_t *value, zf_error_t *err)
{
    zf_mp_type_t type = zf_mp_peek (self);
    if (type != ZF_MP_UINT)
        return s_type_error (self, ZF_MP_UINT, err);
    uint8_t b = *self->pos;
    int size = s_scalar_size (b);
    if (zf_mp_left (self) < (size_t) 1 + size)
        return s_truncated (err, "integer");
    *value = size ? s_be (self->pos + 1, size) : b;
    self->pos += 1 + size;
    return 0;
}

int
zf_mp_int (zf_mp_t *self, int64_t *value, zf_error_t *err)
{
    zf_mp_type_t type = zf_mp_peek (self);
    if (type != ZF_MP_UINT && type != ZF_MP_INT)
        return s_type_error (self, ZF_MP_INT, err);
    uint8_t b = *self->pos;
    int size = s_scalar_size (b);
    if (zf_mp_left (self) < (size_t) 1 + size)
        return s_truncated (err, "integer");
    if (size == 0)
        *value = (int8_t) b; // positive or negative fixint
    else {
        uint64_t raw = s_be (self->pos + 1, size);
        if (type == ZF_MP_UINT) {
            if (raw > INT64_MAX)
                return zf_error_set (err, ZF_EVALUE, "integer %llu does not fit in int64",
                                     (unsigned long long) raw);
            *value = (int64_t) raw;
        }
        else if (size == 1)
            *value = (int8_t) raw;
        else if (size == 2)
            *value = (int16_t) raw;
        else if (size == 4)
            *value = (int32_t) raw;
        else
            *value = (int64_t) raw;
    }
    self->pos += 1 + size;
    return 0;
}

int
zf_mp_double (zf_mp_t *self, double *value, zf_error_t *err)
{
    zf_mp_type_t type = zf_mp_peek (self);
    if (type == ZF_MP_UINT) {
        uint64_t u;
        int rc = zf_mp_uint (self, &u, err);
        *value = (double) u;
        return rc;
    }
    if (type == ZF_MP_INT) {
        int64_t i;
        int rc = zf_mp_int (self, &i, err);
        *value = (double) i;
        return rc;
    }
    if (type != ZF_MP_FLOAT)
        return s_type_error (self, ZF_MP_FLOAT, err);
    int size = s_scalar_size (*self->pos);
    if (zf_mp_left (self) < (size_t) 1 + size)
        return s_truncated (err, "float");
    uint64_t raw = s_be (self->pos + 1, size);
    if (size == 4) {
        uint32_t bits = (uint32_t) raw;
        float f;
        memcpy (&f, &bits, sizeof f);
        *value = f;
    }
    else
        memcpy (value, &raw, sizeof *value);
    self->pos += 1 + size;
    return 0;
}

int
zf_mp_bool (zf_mp_t *self, bool *value, zf_error_t *err)
{
    if (zf_mp_peek (self) != ZF_MP_BOOL)
        return s_type_error (self, ZF_MP_BOOL, err);
    *value = *self->pos == 0xc3;
    self->pos++;
    return 0;
}

int
zf_mp_nil (zf_mp_t *self, zf_error_t *err)
{
    if (zf_mp_peek (self) != ZF_MP_NIL)
        return s_type_error (self, ZF_MP_NIL, err);
    self->pos++;
    return 0;
}

static int
s_skip (zf_mp_t *self, int depth, zf_error_t *err)
{
    zf_mp_type_t type = zf_mp_peek (self);
    uint32_t count, len;
    const uint8_t *data;
    switch (type) {
        case ZF_MP_END:
            return zf_error_set (err, ZF_ETRUNC, "value expected, found end of input");
        case ZF_MP_INVALID:
            return zf_error_set (err, ZF_ETYPE, "byte 0xc1 is not msgpack");
        case ZF_MP_NIL:
        case ZF_MP_BOOL:
            self->pos++;
            return 0;
        case ZF_MP_UINT:
        case ZF_MP_INT:
        case ZF_MP_FLOAT: {
            int size = s_scalar_size (*self->pos);
            if (zf_mp_left (self) < (size_t) 1 + size)
                return s_truncated (err, "number");
            self->pos += 1 + size;
            return 0;
        }
        case ZF_MP_STR:
            return zf_mp_str (self, (const char **) &data, &len, err);
        case ZF_MP_BIN:
            return zf_mp_bin (self, &data, &len, err);
        case ZF_MP_EXT: {
            uint8_t b = *self->pos;
            uint64_t n;
            int hsize;
            if (b >= 0xd4 && b <= 0xd8) {
                n = 1u << (b - 0xd4);
                hsize = 2;
            }
            else {
                int size = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
                if (s_length (self, size, &n))
                    return s_truncated (err, "ext header");
                hsize = 2 + size;
            }
            if (zf_mp_left (self) < (size_t) hsize || zf_mp_left (self) - hsize < n)
                return s_truncated (err, "ext");
            self->pos += hsize + n;
            return 0;
        }
        case ZF_MP_ARRAY:
        case ZF_MP_MAP:
            if (depth <= 0)
                return zf_error_set (err, ZF_EDEPTH, "msgpack nested deeper than %d levels",
                                     ZF_MP_MAX_DEPTH);
            if (type == ZF_MP_ARRAY ? zf_mp_array (self, &count, err)
                                    : zf_mp_map (self, &count, err))
                return -1;
            uint64_t items = type == ZF_MP_MAP ? (uint64_t) count * 2 : count;
            for (uint64_t i = 0; i < items; i++)
                if (s_skip (self, depth - 1, err))
                    return -1;
            return 0;
    }
    return zf_error_set (err, ZF_ETYPE, "unknown msgpack type");
}

int
zf_mp_skip (zf_mp_t *self, int max_depth, zf_error_t *err)
{
    const uint8_t *start = self->pos;
    if (s_skip (self, max_depth, err)) {
        self->pos = start;
        return -1;
    }
    return 0;
}

bool
zf_mp_key_is (zf_mp_t *self, const char *key)
{
    zf_mp_t probe = *self;
    const char *str;
    uint32_t len;
    if (zf_mp_str (&probe, &str, &len, NULL))
        return false;
    if (strlen (key) != len || memcmp (key, str, len) != 0)
        return false;
    *self = probe;
    return true;
}

int
zf_mp_pack_strn (msgpack_packer *pk, const char *str, size_t len)
{
    if (msgpack_pack_str (pk, len))
        return -1;
    return msgpack_pack_str_body (pk, str, len);
}

int
zf_mp_pack_cstr (msgpack_packer *pk, const char *str)
{
    return zf_mp_pack_strn (pk, str, strlen (str));
}

uint64_t
zf_mp_uint_or_skip (zf_mp_t *self)
{
    uint64_t value = 0;
    if (zf_mp_uint (self, &value, NULL))
        zf_mp_skip (self, ZF_MP_MAX_DEPTH, NULL);
    return value;
}

int
zf_mp_skip_pair (zf_mp_t *self)
{
    return zf_mp_skip (self, ZF_MP_MAX_DEPTH, NULL) || zf_mp_skip (self, ZF_MP_MAX_DEPTH, NULL) ? -1
                                                                                                : 0;
}

const char *
zf_mp_header (const void *data, size_t size, const char *key, uint32_t *len)
{
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    uint32_t count;
    if (!data || !size || zf_mp_map (&mp, &count, NULL))
        return NULL;
    size_t key_size = strlen (key);
    for (uint32_t i = 0; i < count; i++) {
        const char *name, *value;
        uint32_t name_len;
        if (zf_mp_str (&mp, &name, &name_len, NULL) || zf_mp_str (&mp, &value, len, NULL))
            return NULL;
        if (name_len == key_size && memcmp (name, key, key_size) == 0)
            return value;
    }
    return NULL;
}
