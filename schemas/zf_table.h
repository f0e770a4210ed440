/*  zf_table: msgpack maps read and written by tables.

    A table describes one map: a row per field, with its key, its type,
    where its value is in a struct, whether it is required, and its limits.
    One reader and one writer walk the tables, so every map of a format is
    checked the same way: types, sizes and counts; a key it does not know
    skipped (a later revision may add fields); a key twice refused; a
    required one missing refused. ZFP's commands (zf_proto) and the broker's
    stats event (zf_events) are described so.

    Reading never asserts and never reads past the end: bad input gives -1
    and an error that names where it was, in words as ZFP's errors do
    ("field 'items': item 2: field 'id' is missing") or as a path
    ("queues[2].groups[0].acked: expected uint, found int").

        static const zf_table_field_t s_point_fields[] = {
            ZF_TABLE_FIELD ("x", ZF_TABLE_I64, point_t, x, true),
            ZF_TABLE_FIELD ("label", ZF_TABLE_STR, point_t, label, false),
            { NULL },
        };
        static const zf_table_t s_point = { s_point_fields };
        ...
        if (zf_table_read (&mp, &s_point, &point, 0, &err) == 0)
            zf_table_write (&pk, &s_point, &point);
*/
#ifndef ZF_TABLE_H_INCLUDED
#define ZF_TABLE_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zf_error.h"
#include "zf_mp.h"
#include "zflow.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZF_TABLE_U32,    // uint32_t; a number over 2^32-1 is refused
    ZF_TABLE_U64,    // uint64_t
    ZF_TABLE_I64,    // int64_t
    ZF_TABLE_BOOL,   // bool
    ZF_TABLE_DOUBLE, // double: read from any number, written as a float 64
    ZF_TABLE_STR,    // char[size], NUL-terminated
    ZF_TABLE_ID,     // zf_id_t, as bin 16
    ZF_TABLE_BIN,    // uint8_t[size], its length (uint32_t) at `length`
    ZF_TABLE_VIEW,   // any map, viewed where it is (const uint8_t *), its length at `length`
    ZF_TABLE_MAP,    // a map of `table`'s fields, into the struct at offset
    ZF_TABLE_ARRAY,  // an array of the entries `array` describes
    ZF_TABLE_OWN     // read and written by `ops`: a value only its owner knows
} zf_table_type_t;

typedef struct _zf_table_field_t zf_table_field_t;
typedef struct _zf_table_t zf_table_t;
typedef struct _zf_table_array_t zf_table_array_t;
typedef struct _zf_table_ops_t zf_table_ops_t;

struct _zf_table_field_t {
    const char *key;               // its msgpack key; NULL ends a table
    zf_table_type_t type;          // how its value is read and written
    size_t offset;                 // where its value is, in the struct the table describes
    size_t size;                   // STR: bytes of its buffer, the NUL included; BIN: bytes at
                                   // most; VIEW: bytes at most, 0 for any
    size_t length;                 // BIN, VIEW: where its length (uint32_t) is, in that struct
    bool required;                 // reading fails without it; writing always writes it
    const zf_table_t *table;       // MAP: its fields
    const zf_table_array_t *array; // ARRAY: its entries
    const zf_table_ops_t *ops;     // OWN: how it is read and written
};

//  A map: its fields, and what is said of it as a whole.
struct _zf_table_t {
    const zf_table_field_t *fields; // at most 64, the last with a NULL key
    //  Once its fields are read: checks what no one field can (-1 with err
    //  set), or notes that the map came. NULL: nothing to do.
    int (*check) (void *base, zf_error_t *err);
    //  A map that is the value of a field not required: true to leave it
    //  out when writing. NULL: always written.
    bool (*absent) (const void *base);
};

//  An array's entries.
struct _zf_table_array_t {
    zf_table_field_t entry; // how each entry is read and written, at its offset 0
    size_t size;            // bytes of one entry
    size_t count;           // where their count (uint32_t) is, in the struct of the array's field
    uint32_t max;           // entries at most: an array of more is refused
    bool skip_past_max;     // ... unless this: the first max are kept and the others skipped (a
                            // top N, which a newer peer may make longer)
    //  Room for one more entry of the array in base (the struct of its
    //  field), counted and zeroed; NULL when there is no memory for it.
    //  The entries are then an array at the field's offset, behind a
    //  pointer. When add is NULL, they are in place at the field's offset,
    //  max of them, and reading sets their count.
    void *(*add) (void *base, const zf_table_array_t *array);
    const char *noun; // an entry, in ZFP's words ("item"); NULL: "entry"
};

//  A field whose value only its owner knows how to read and write.
struct _zf_table_ops_t {
    //  Reads the value at mp into base (the struct of the field): 0, or -1
    //  with err set.
    int (*read) (zf_mp_t *mp, const zf_table_field_t *field, void *base, zf_error_t *err);
    void (*write) (msgpack_packer *pk, const zf_table_field_t *field, const void *base);
    //  True to leave it out when writing (when not required).
    bool (*absent) (const zf_table_field_t *field, const void *base);
};

//  The type that reads and writes a member of C type x, -1 for none: for
//  ZF_TABLE_FIELD to compare.
#define ZF_TABLE_CTYPE(x)                                                                          \
    _Generic((x),                                                                                  \
        uint32_t: ZF_TABLE_U32,                                                                    \
        uint64_t: ZF_TABLE_U64,                                                                    \
        int64_t: ZF_TABLE_I64,                                                                     \
        bool: ZF_TABLE_BOOL,                                                                       \
        double: ZF_TABLE_DOUBLE,                                                                   \
        char *: ZF_TABLE_STR,                                                                      \
        zf_id_t: ZF_TABLE_ID,                                                                      \
        default: -1)

//  The row of a number, bool, string or id field: key, of type t, read
//  into member of struct s. A compile error when member's C type is not
//  the one t reads, so a table cannot write past its field.
#define ZF_TABLE_FIELD(k, t, s, member, r)                                                         \
    {                                                                                              \
        .key = (k), .type = (t), .offset = offsetof (s, member),                                   \
        .size = sizeof (((s *) 0)->member) +                                                       \
                0 * sizeof (char[(int) (t) == ZF_TABLE_CTYPE (((s *) 0)->member) ? 1 : -1]),       \
        .required = (r)                                                                            \
    }

//  How zf_table_read reports and what it forgives.
#define ZF_TABLE_PATHS 1 // errors name a path (queues[2].depth), not ZFP's words
#define ZF_TABLE_CUT   2 // a string longer than its buffer is cut to it, not refused

//  Reads the map at mp, as table says, into base; flags are ZF_TABLE_*.
//  Returns 0, or -1 with err saying what was wrong and where. What was
//  read before the error stays in base.
int zf_table_read (zf_mp_t *mp, const zf_table_t *table, void *base, int flags, zf_error_t *err);

//  Writes base as table says: the fields in table order, one not required
//  left out when it is empty (0, false, "", no entries, an all-zero id).
void zf_table_write (msgpack_packer *pk, const zf_table_t *table, const void *base);

#ifdef __cplusplus
}
#endif
#endif
