/*  zf_table: msgpack maps read and written by tables. See zf_table.h. */
#include "zf_table.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

//  What an error's text begins with, when errors name paths: its place
//  is joined to the next one named around it ("queues" "[0]" ".depth").
typedef enum { S_NOTHING, S_KEY, S_INDEX } s_named_t;

typedef struct {
    zf_mp_t *mp;     // the input
    int flags;       // ZF_TABLE_PATHS, ZF_TABLE_CUT
    s_named_t named; // the last place named in err's text
    zf_error_t *err; // what was wrong, and where
} s_reader_t;

static int s_read_map (s_reader_t *r, const zf_table_t *table, void *base);

//  Puts where an error was before what err says: words as ZFP's errors
//  have them, or a place of a path (a key, or an index in brackets).
//  Returns -1, for the caller to return.
static int
s_name (s_reader_t *r, const char *words, const char *place, s_named_t kind)
{
    if (r->flags & ZF_TABLE_PATHS) {
        const char *join = r->named == S_NOTHING ? ": " : r->named == S_KEY ? "." : "";
        zf_error_prefix (r->err, "%s%s", place, join);
        r->named = kind;
    }
    else
        zf_error_prefix (r->err, "%s", words);
    return -1;
}

//  Names the field of key, len whose value was wrong.
static int
s_name_field (s_reader_t *r, const char *how, const char *key, uint32_t len)
{
    char words[96], place[48];
    int shown = (int) (len > 40 ? 40 : len); // an unknown key can be long
    snprintf (words, sizeof words, "%sfield '%.*s': ", how, shown, key);
    snprintf (place, sizeof place, "%.*s", shown, key);
    return s_name (r, words, place, S_KEY);
}

static int
s_name_entry (s_reader_t *r, const zf_table_array_t *array, uint32_t index)
{
    char words[48], place[16];
    snprintf (words, sizeof words, "%s %u: ", array->noun ? array->noun : "entry", index);
    snprintf (place, sizeof place, "[%u]", index);
    return s_name (r, words, place, S_INDEX);
}

//  Copies a str into a buffer of size bytes (with its NUL).
static int
s_read_str (s_reader_t *r, char *buffer, size_t size)
{
    const char *str;
    uint32_t len;
    if (zf_mp_str (r->mp, &str, &len, r->err))
        return -1;
    if (r->flags & ZF_TABLE_CUT) {
        // What fits, up to a NUL: what a monitor can show.
        snprintf (buffer, size, "%.*s", (int) len, str);
        return 0;
    }
    if (len >= size)
        return zf_error_set (r->err, ZF_ETOOBIG, "string of %u bytes, at most %zu allowed", len,
                             size - 1);
    if (memchr (str, 0, len))
        return zf_error_set (r->err, ZF_EVALUE, "string holds a NUL byte");
    memcpy (buffer, str, len);
    buffer[len] = 0;
    return 0;
}

static int
s_read_id (s_reader_t *r, zf_id_t *id)
{
    const uint8_t *data;
    uint32_t len;
    if (zf_mp_bin (r->mp, &data, &len, r->err))
        return -1;
    if (len != ZF_ID_SIZE)
        return zf_error_set (r->err, ZF_EVALUE, "id of %u bytes, expected %d", len, ZF_ID_SIZE);
    memcpy (id->bytes, data, ZF_ID_SIZE);
    return 0;
}

static int s_read_value (s_reader_t *r, const zf_table_field_t *field, void *base);

//  Where the length of a BIN or VIEW field is, in base.
static uint32_t *
s_length (const void *base, const zf_table_field_t *field)
{
    return (uint32_t *) ((const uint8_t *) base + field->length);
}

static int
s_read_array (s_reader_t *r, const zf_table_field_t *field, void *base)
{
    const zf_table_array_t *array = field->array;
    uint32_t count;
    if (zf_mp_array (r->mp, &count, r->err))
        return -1;
    if (count > array->max && !array->skip_past_max)
        return zf_error_set (r->err, ZF_ETOOBIG, "array of %u entries, at most %u allowed", count,
                             array->max);
    uint8_t *at = (uint8_t *) base + field->offset;
    for (uint32_t i = 0; i < count; i++) {
        void *entry;
        if (i >= array->max) {
            if (zf_mp_skip (r->mp, ZF_MP_MAX_DEPTH, r->err))
                return s_name_entry (r, array, i);
            continue;
        }
        if (array->add) {
            entry = array->add (base, array);
            if (!entry)
                return zf_error_set (r->err, ZF_ENOMEM, "no memory for %u %s", count, field->key);
        }
        else {
            entry = at + i * array->size;
            memset (entry, 0, array->size);
        }
        if (s_read_value (r, &array->entry, entry))
            return s_name_entry (r, array, i);
    }
    if (!array->add)
        *(uint32_t *) ((uint8_t *) base + array->count) = count < array->max ? count : array->max;
    return 0;
}

static int
s_read_value (s_reader_t *r, const zf_table_field_t *field, void *base)
{
    uint8_t *at = (uint8_t *) base + field->offset;
    uint64_t u;
    switch (field->type) {
        case ZF_TABLE_U32:
            if (zf_mp_uint (r->mp, &u, r->err))
                return -1;
            if (u > UINT32_MAX)
                return zf_error_set (r->err, ZF_EVALUE, "%llu is over 2^32-1",
                                     (unsigned long long) u);
            *(uint32_t *) at = (uint32_t) u;
            return 0;
        case ZF_TABLE_U64:
            return zf_mp_uint (r->mp, (uint64_t *) at, r->err);
        case ZF_TABLE_I64:
            return zf_mp_int (r->mp, (int64_t *) at, r->err);
        case ZF_TABLE_BOOL:
            return zf_mp_bool (r->mp, (bool *) at, r->err);
        case ZF_TABLE_DOUBLE:
            return zf_mp_double (r->mp, (double *) at, r->err);
        case ZF_TABLE_STR:
            return s_read_str (r, (char *) at, field->size);
        case ZF_TABLE_ID:
            return s_read_id (r, (zf_id_t *) at);
        case ZF_TABLE_BIN: {
            const uint8_t *data;
            uint32_t len;
            if (zf_mp_bin (r->mp, &data, &len, r->err))
                return -1;
            if (len > field->size)
                return zf_error_set (r->err, ZF_ETOOBIG, "%s of %u bytes, at most %zu", field->key,
                                     len, field->size);
            memcpy (at, data, len);
            *s_length (base, field) = len;
            return 0;
        }
        case ZF_TABLE_VIEW: {
            const uint8_t *start = r->mp->pos;
            zf_mp_type_t type = zf_mp_peek (r->mp);
            if (type != ZF_MP_MAP)
                return zf_error_set (r->err, type == ZF_MP_END ? ZF_ETRUNC : ZF_ETYPE,
                                     "expected a map, got %s", zf_mp_type_name (type));
            if (zf_mp_skip (r->mp, ZF_MP_MAX_DEPTH, r->err))
                return -1;
            size_t size = (size_t) (r->mp->pos - start);
            if (field->size && size > field->size)
                return zf_error_set (r->err, ZF_ETOOBIG, "a map of %zu bytes, at most %zu", size,
                                     field->size);
            *(const uint8_t **) at = start;
            *s_length (base, field) = (uint32_t) size;
            return 0;
        }
        case ZF_TABLE_MAP:
            return s_read_map (r, field->table, at);
        case ZF_TABLE_ARRAY:
            return s_read_array (r, field, base);
        case ZF_TABLE_OWN:
            return field->ops->read (r->mp, field, base, r->err);
    }
    return zf_error_set (r->err, ZF_EVALUE, "field of unknown type");
}

//  Unknown keys are skipped, so that a later minor revision may add
//  fields; a key twice is an error.
static int
s_read_map (s_reader_t *r, const zf_table_t *table, void *base)
{
    const zf_table_field_t *fields = table->fields;
    uint32_t count;
    if (zf_mp_map (r->mp, &count, r->err))
        return -1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < count; i++) {
        const char *key;
        uint32_t len;
        if (zf_mp_str (r->mp, &key, &len, r->err)) {
            char words[24];
            snprintf (words, sizeof words, "key %u: ", i);
            return s_name (r, words, "(a key)", S_KEY);
        }
        int f;
        for (f = 0; fields[f].key; f++)
            if (strlen (fields[f].key) == len && memcmp (fields[f].key, key, len) == 0)
                break;
        if (!fields[f].key) {
            if (zf_mp_skip (r->mp, ZF_MP_MAX_DEPTH, r->err))
                return s_name_field (r, "unknown ", key, len);
            continue;
        }
        assert (f < 64); // a table's fields fit in seen
        if (seen & (1ULL << f))
            return zf_error_set (r->err, ZF_EVALUE, "field '%s' appears twice", fields[f].key);
        seen |= 1ULL << f;
        if (s_read_value (r, &fields[f], base))
            return s_name_field (r, "", key, len);
    }
    for (int f = 0; fields[f].key; f++)
        if (fields[f].required && !(seen & (1ULL << f)))
            return zf_error_set (r->err, ZF_EFIELD, "field '%s' is missing", fields[f].key);
    return table->check ? table->check (base, r->err) : 0;
}

int
zf_table_read (zf_mp_t *mp, const zf_table_t *table, void *base, int flags, zf_error_t *err)
{
    s_reader_t reader = { .mp = mp, .flags = flags, .named = S_NOTHING, .err = err };
    return s_read_map (&reader, table, base);
}

//  --------------------------------------------------------------------------
//  Writing

static bool
s_zero (const void *at, size_t size)
{
    const uint8_t *p = (const uint8_t *) at;
    for (size_t i = 0; i < size; i++)
        if (p[i])
            return false;
    return true;
}

//  True if a field has its empty value, to be left out when not required.
static bool
s_absent (const zf_table_field_t *field, const void *base)
{
    const uint8_t *at = (const uint8_t *) base + field->offset;
    switch (field->type) {
        case ZF_TABLE_U32:
            return *(const uint32_t *) at == 0;
        case ZF_TABLE_U64:
            return *(const uint64_t *) at == 0;
        case ZF_TABLE_I64:
            return *(const int64_t *) at == 0;
        case ZF_TABLE_BOOL:
            return !*(const bool *) at;
        case ZF_TABLE_DOUBLE:
            return *(const double *) at == 0;
        case ZF_TABLE_STR:
            return *(const char *) at == 0;
        case ZF_TABLE_ID:
            return s_zero (at, ZF_ID_SIZE);
        case ZF_TABLE_BIN:
        case ZF_TABLE_VIEW:
            return *s_length (base, field) == 0;
        case ZF_TABLE_MAP:
            return field->table->absent && field->table->absent (at);
        case ZF_TABLE_ARRAY:
            return *(const uint32_t *) ((const uint8_t *) base + field->array->count) == 0;
        case ZF_TABLE_OWN:
            return field->ops->absent (field, base);
    }
    return true;
}

static void
s_write_value (msgpack_packer *pk, const zf_table_field_t *field, const void *base)
{
    const uint8_t *at = (const uint8_t *) base + field->offset;
    switch (field->type) {
        case ZF_TABLE_U32:
            msgpack_pack_uint32 (pk, *(const uint32_t *) at);
            break;
        case ZF_TABLE_U64:
            msgpack_pack_uint64 (pk, *(const uint64_t *) at);
            break;
        case ZF_TABLE_I64:
            msgpack_pack_int64 (pk, *(const int64_t *) at);
            break;
        case ZF_TABLE_BOOL:
            if (*(const bool *) at)
                msgpack_pack_true (pk);
            else
                msgpack_pack_false (pk);
            break;
        case ZF_TABLE_DOUBLE:
            msgpack_pack_double (pk, *(const double *) at);
            break;
        case ZF_TABLE_STR:
            zf_mp_pack_cstr (pk, (const char *) at);
            break;
        case ZF_TABLE_ID:
            msgpack_pack_bin (pk, ZF_ID_SIZE);
            msgpack_pack_bin_body (pk, at, ZF_ID_SIZE);
            break;
        case ZF_TABLE_BIN:
            msgpack_pack_bin (pk, *s_length (base, field));
            msgpack_pack_bin_body (pk, at, *s_length (base, field));
            break;
        case ZF_TABLE_VIEW:
            // Already msgpack: written as it came.
            msgpack_pack_str_body (pk, *(const uint8_t *const *) at, *s_length (base, field));
            break;
        case ZF_TABLE_MAP:
            zf_table_write (pk, field->table, at);
            break;
        case ZF_TABLE_ARRAY: {
            const zf_table_array_t *array = field->array;
            uint32_t count = *(const uint32_t *) ((const uint8_t *) base + array->count);
            const uint8_t *entries = array->add ? *(const uint8_t *const *) at : at;
            msgpack_pack_array (pk, count);
            for (uint32_t i = 0; i < count; i++)
                s_write_value (pk, &array->entry, entries + i * array->size);
            break;
        }
        case ZF_TABLE_OWN:
            field->ops->write (pk, field, base);
            break;
    }
}

void
zf_table_write (msgpack_packer *pk, const zf_table_t *table, const void *base)
{
    const zf_table_field_t *fields = table->fields;
    uint32_t count = 0;
    for (int f = 0; fields[f].key; f++)
        if (fields[f].required || !s_absent (&fields[f], base))
            count++;
    msgpack_pack_map (pk, count);
    for (int f = 0; fields[f].key; f++)
        if (fields[f].required || !s_absent (&fields[f], base)) {
            zf_mp_pack_cstr (pk, fields[f].key);
            s_write_value (pk, &fields[f], base);
        }
}
