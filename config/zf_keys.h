/*  zf_keys: config key tables, bound to settings structs.

    Every section of a pipeline config (broker, a queue, each actor kind, a
    scheduler job) declares its keys as a table of zf_key_t: name, type,
    default, description (fluent-bit's config_map). The same table drives
    validation, the messages of zflow validate, zflow help and
    docs/config.md, and the settings: each key names the field of its
    section's settings struct that holds its value, typed, and
    zf_keys_bind fills the struct once, when the config is loaded. Code
    reads settings->max_depth, never a value by its name.

        typedef struct { int64_t max_depth; const char *target; } my_settings_t;
        static const zf_key_t keys[] = {
            { .name = "max-depth", .fallback = "2000",
              ZF_FIELD (ZF_KEY_INT, my_settings_t, max_depth) }, ... };

    The field's C type follows the key's type: int64_t for INT, DURATION
    (ms) and SIZE (bytes); double for NUMBER and RATE; bool for BOOL; int
    for ENUM (the value's place among the choices, 0 for the first, -1
    when none is given and there is no default: the code compares it with
    an enum of its own, in the same order);
    zconfig_t * for SECTION; const char * (the config's text, or the
    default) for the others. ZF_FIELD checks it when it compiles: a key
    bound to a field of another type is an error.
*/
#ifndef ZF_KEYS_H_INCLUDED
#define ZF_KEYS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <czmq.h>

#include "zf_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZF_KEY_STRING,   // any text
    ZF_KEY_INT,      // whole number, within [min, max] when max > min
    ZF_KEY_NUMBER,   // decimal number, not negative
    ZF_KEY_BOOL,     // true / false
    ZF_KEY_DURATION, // 250ms, 30s, 5m, 1h
    ZF_KEY_SIZE,     // 512, 64KiB, 10MB
    ZF_KEY_ENDPOINT, // tcp://HOST:PORT, ipc://PATH, inproc://NAME
    ZF_KEY_ENUM,     // one of choices
    ZF_KEY_SET,      // comma-separated choices
    ZF_KEY_QUEUE,    // a queue name
    ZF_KEY_SECTION,  // a sub-section of name = value lines
    ZF_KEY_RATE      // 100/s, 5/min, 2000/h (bound as a double: a second's)
} zf_key_type_t;

#define ZF_KEY_REQUIRED 1 // must be given
#define ZF_KEY_PATH     2 // a path (or file:PATH) resolved against the config's folder
//  A duration an actor's worker may spend on one item: less than the
//  timeout of the actor's input queue when that is not 0, for past it the
//  broker hands the item to another worker while the first still runs it.
#define ZF_KEY_BELOW_QUEUE_TIMEOUT 4

typedef struct _zf_key_t zf_key_t;
struct _zf_key_t {
    const char *name;     // the key as written in a config
    zf_key_type_t type;   // how its value is read
    const char *fallback; // the default, as config text; NULL when none
    const char *help;     // one line for zflow help
    unsigned flags;       // ZF_KEY_REQUIRED, ZF_KEY_PATH, ZF_KEY_BELOW_QUEUE_TIMEOUT
    const char *above;    // a key of the section this one must exceed when both are given, or NULL
    const char *choices;  // ZF_KEY_ENUM, ZF_KEY_SET: "a|b|c"
    int64_t min, max;     // ZF_KEY_INT, ZF_KEY_DURATION, ZF_KEY_SIZE: bounds, when max > min
    int (*check) (const char *value, zf_error_t *err); // a further check, or NULL
    size_t field;         // offset + 1 of its settings field (ZF_FIELD); 0 when not bound
    const zf_key_t *keys; // ZF_KEY_SECTION: the keys its lines are checked against, or NULL
                          // for lines of any name
    const char *shown;    // how help names its value ("HEADER=VALUE"); NULL: by its type
};

//  The C type a key of type t is bound to (ZF_KEY_CTYPE), and that of a
//  field (ZF_FIELD_CTYPE), as numbers, for ZF_FIELD to compare.
#define ZF_KEY_CTYPE(t)                                                                            \
    ((t) == ZF_KEY_INT || (t) == ZF_KEY_DURATION || (t) == ZF_KEY_SIZE ? 1                         \
     : (t) == ZF_KEY_NUMBER || (t) == ZF_KEY_RATE                      ? 2                         \
     : (t) == ZF_KEY_BOOL                                              ? 3                         \
     : (t) == ZF_KEY_ENUM                                              ? 4                         \
     : (t) == ZF_KEY_SECTION                                           ? 5                         \
                                                                       : 6)
#define ZF_FIELD_CTYPE(x)                                                                          \
    _Generic((x), int64_t : 1, double : 2, bool : 3, int : 4, zconfig_t * : 5, const char * : 6,   \
             default : 0)

//  A key of type t, bound to member of its section's settings struct:
//  a compile error when member's C type is not the one t binds to.
#define ZF_FIELD(t, settings, member)                                                              \
    .type = (t),                                                                                   \
    .field =                                                                                       \
        offsetof (settings, member) + 1 +                                                          \
        0 * sizeof (char[ZF_KEY_CTYPE (t) == ZF_FIELD_CTYPE (((settings *) 0)->member) ? 1 : -1])

//  What an actor kind does with queues, for validation and the graph.
#define ZF_KIND_INPUT  1  // reads the queue named by `input` (required)
#define ZF_KIND_OUTPUT 2  // writes the queue named by `output` (required)
#define ZF_KIND_SOURCE 4  // puts items from outside (a source of the pipeline)
#define ZF_KIND_TIMED  8  // runs until stopped (a pipeline with one never ends by itself)
#define ZF_KIND_FANIN  16 // gathers the members of groups (the broker tells it of lost ones)

typedef struct {
    const char *name;         // as in `kind = NAME`
    const char *summary;      // one line for zflow help
    const zf_key_t *keys;     // its keys, ended by an entry with a NULL name
    const char *job;          // sub-sections with keys of their own are "jobs", or NULL
    const zf_key_t *job_keys; // the keys of a job, or NULL
    size_t job_settings_size; // bytes of a job's settings struct
    size_t settings_size;     // bytes of its settings struct (it begins with zf_actor_settings_t)
    unsigned flags;           // ZF_KIND_*
    const char *one_of;       // exactly one of these keys must be given ("a|b"), or NULL
    void (*run) (zsock_t *pipe, void *args); // the actor function (args: zf_actor_args_t), or NULL
    void (*init) (void); // process-wide setup, in the main thread before run starts, or NULL
    //  A warning about a section that is valid but likely not what was
    //  meant (zflow validate and zflow run print it), or NULL.
    const char *(*advise) (zconfig_t *section);
} zf_kind_t;

//  The kind named name in kinds (ended by NULL), or NULL.
const zf_kind_t *zf_kind_lookup (const zf_kind_t *const *kinds, const char *name);

//  Fills the settings bound to keys from section (which may be NULL: the
//  defaults) and the defaults. The values were checked when the config
//  was loaded; a key without a value or default leaves its field zero.
void zf_keys_bind (const zf_key_t *keys, zconfig_t *section, void *settings);

//  Sets the field key is bound to in settings from value (checked, or
//  NULL: zero), as zf_keys_bind does for each key of a section.
void zf_key_bind (const zf_key_t *key, const char *value, void *settings);

//  The key named name in keys, or NULL.
const zf_key_t *zf_keys_find (const zf_key_t *keys, const char *name);

//  Check a value against a key's type, bounds, choices and check function.
//  Returns 0, or -1 with err saying what was expected.
int zf_key_check (const zf_key_t *key, const char *value, zf_error_t *err);

//  The candidate nearest to name by edit distance, if near enough to be a
//  likely misspelling; else NULL. candidates ends with NULL.
const char *zf_nearest (const char *name, const char *const *candidates);

//  The key of keys nearest to name, as zf_nearest.
const char *zf_keys_nearest (const zf_key_t *keys, const char *name);

//  Print a table of keys for zflow help.
void zf_keys_print (const zf_key_t *keys, FILE *out);

//  The same as a Markdown table, for docs/config.md.
void zf_keys_print_markdown (const zf_key_t *keys, FILE *out);

//  The type's name as shown in help and messages ("duration").
const char *zf_key_type_name (zf_key_type_t type);

#ifdef __cplusplus
}
#endif
#endif
