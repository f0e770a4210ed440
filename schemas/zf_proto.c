/*  zf_proto: the ZFP/1 codec. See zf_proto.h and schemas/zfp.md.

    Every command's header is described by a field table; one decoder and
    one encoder walk the tables. Encoding is canonical: fields in table order,
    optional fields left out when they are zero or empty, integers in their
    smallest msgpack form. So decode-then-encode of a canonical message gives
    back the same bytes, which the test vectors check.
*/
#include "zf_proto.h"
#include "zf_json.h"
#include "zf_mp.h"

#include <stddef.h>

typedef enum {
    F_U32,        // uint32_t
    F_U64,        // uint64_t
    F_I64,        // int64_t
    F_BOOL,       // bool
    F_STR,        // char[size], NUL-terminated
    F_ID,         // zf_id_t, as bin 16
    F_CHECKPOINT, // uint8_t[ZF_CHECKPOINT_MAX] with checkpoint_size
    F_NAMES,      // char[ZF_LIST_MAX][ZF_NAME_MAX + 1] with a count at aux
    F_ITEMS,      // the items of a PUT or DELIVER
    F_IDS,        // the ids of an ACK
    F_GROUP,      // zf_group_t
    F_HEADERS,    // an envelope's headers: a view of a str-to-str map
    F_ROWS,       // an array of maps of one kind (aux: index in s_rows)
    F_MAP         // any msgpack map, viewed where it is: figures and size
} s_type_t;

typedef struct {
    const char *key; // the msgpack key
    s_type_t type;   // how the value is read and written
    size_t offset;   // where the value is in its struct
    size_t aux;      // F_STR: buffer size; F_NAMES: offset of the count
    bool required;   // decode fails without it; encode always writes it
} s_field_t;

#define P(field) offsetof (zf_proto_t, field)
#define STR(k, f, r)                                                                               \
    {                                                                                              \
        k, F_STR, P (f), sizeof (((zf_proto_t *) 0)->f), r                                         \
    }
#define NUM(k, t, f, r)                                                                            \
    {                                                                                              \
        k, t, P (f), 0, r                                                                          \
    }

static const s_field_t s_hello[] = {
    NUM ("version", F_U32, version, true),
    STR ("name", name, true),
    NUM ("worker", F_U32, worker, false),
    NUM ("pid", F_U64, pid, false),
    STR ("host", host, false),
    { "inputs", F_NAMES, P (inputs), P (ninputs), false },
    { "outputs", F_NAMES, P (outputs), P (noutputs), false },
    NUM ("heartbeat", F_U32, heartbeat, false),
    STR ("pipeline", pipeline, false),
    NUM ("done", F_U64, done, false),
    NUM ("failed", F_U64, failed, false),
    { NULL },
};
static const s_field_t s_welcome[] = {
    NUM ("version", F_U32, version, true),
    NUM ("heartbeat", F_U32, heartbeat, true),
    NUM ("liveness", F_U32, liveness, true),
    NUM ("window", F_U32, window, true),
    { "checkpoint", F_CHECKPOINT, P (checkpoint), 0, false },
    NUM ("timeout", F_U32, timeout, false),
    NUM ("max_frame", F_U32, max_frame, false),
    { "url_keyed", F_ROWS, P (keyed), 5, false },
    { NULL },
};
static const s_field_t s_put[] = {
    NUM ("seq", F_U64, seq, true),
    { "items", F_ITEMS, P (items), 0, true },
    { "checkpoint", F_CHECKPOINT, P (checkpoint), 0, false },
    NUM ("track", F_BOOL, track, false),
    NUM ("urgent", F_BOOL, urgent, false),
    NUM ("wait", F_U32, wait, false),
    { NULL },
};
static const s_field_t s_confirm[] = {
    NUM ("seq", F_U64, seq, true),
    NUM ("accepted", F_U32, accepted, false),
    NUM ("duplicates", F_U32, duplicates, false),
    NUM ("refused", F_U32, refused, false),
    STR ("reason", reason, false),
    { NULL },
};
static const s_field_t s_credit[] = {
    NUM ("credit", F_U32, credit, true),
    { NULL },
};
static const s_field_t s_deliver[] = {
    { "items", F_ITEMS, P (items), 0, true },
    { NULL },
};
static const s_field_t s_ack[] = {
    { "ids", F_IDS, P (ids), 0, true },
    { NULL },
};
static const s_field_t s_nack[] = {
    NUM ("id", F_ID, id, true),          STR ("reason", reason, false),
    NUM ("final", F_BOOL, final, false), NUM ("delay", F_U32, delay, false),
    STR ("detail", detail, false),       { NULL },
};
static const s_field_t s_empty[] = {
    { NULL },
};
static const s_field_t s_ping[] = {
    { "figures", F_MAP, P (figures), 0, false },
    NUM ("reloaded", F_BOOL, reloaded, false),
    { "url_keyed", F_ROWS, P (keyed), 5, false },
    { NULL },
};
static const s_field_t s_error[] = {
    STR ("code", code, true),
    STR ("reason", reason, true),
    STR ("leader", leader, false),
    { NULL },
};
static const s_field_t s_end[] = {
    NUM ("count", F_U64, count, false),
    { NULL },
};
static const s_field_t s_cancel[] = {
    NUM ("id", F_ID, id, true),
    STR ("reason", reason, false),
    NUM ("dead", F_BOOL, dead, false),
    { NULL },
};
static const s_field_t s_done[] = {
    { "roots", F_ROWS, P (dones), 2, true },
    { "results", F_ITEMS, P (items), 0, false },
    { NULL },
};
static const s_field_t s_status[] = {
    NUM ("id", F_ID, id, false),
    NUM ("results", F_BOOL, results, false),
    NUM ("wait", F_U32, wait, false),
    NUM ("tag", F_U64, tag, false),
    { NULL },
};
static const s_field_t s_report[] = {
    NUM ("id", F_ID, id, false),
    NUM ("tag", F_U64, tag, false),
    STR ("state", state, false),
    STR ("queue", queue, false),
    NUM ("attempt", F_U32, attempt, false),
    STR ("reason", reason, false),
    STR ("detail", detail, false),
    NUM ("progress", F_U32, progress, false),
    STR ("note", note, false),
    { "queues", F_ROWS, P (queues), 0, false },
    { "groups", F_ROWS, P (groups), 1, false },
    { "results", F_ITEMS, P (items), 0, false },
    NUM ("count", F_U64, count, false),
    { "schedules", F_ROWS, P (schedules), 3, false },
    { "keys", F_ROWS, P (keys), 4, false },
    { NULL },
};

static const s_field_t s_progress[] = {
    NUM ("id", F_ID, id, true),
    NUM ("progress", F_U32, progress, true),
    STR ("note", note, false),
    { NULL },
};

static const s_field_t s_control[] = {
    STR ("op", op, true),
    STR ("queue", queue, true),
    { "ids", F_IDS, P (ids), 0, false },
    STR ("where", where, false),
    NUM ("older", F_U64, older, false),
    NUM ("limit", F_U32, limit, false),
    NUM ("tag", F_U64, tag, false),
    STR ("name", name, false),
    { "spec", F_MAP, P (figures), 0, false },
    { NULL },
};

#define E(field) offsetof (zf_env_t, field)
static const s_field_t s_envelope[] = {
    { "id", F_ID, E (id), 0, true },
    { "queue", F_STR, E (queue), ZF_NAME_MAX + 1, true },
    { "attempt", F_U32, E (attempt), 0, false },
    { "ts", F_I64, E (ts), 0, true },
    { "parent", F_ID, E (parent), 0, false },
    { "root", F_ID, E (root), 0, false },
    { "group", F_GROUP, E (group), 0, false },
    { "headers", F_HEADERS, E (headers), 0, false },
    { "not_before", F_I64, E (not_before), 0, false },
    { "priority", F_U32, E (priority), 0, false },
    { NULL },
};

#define G(field) offsetof (zf_group_t, field)
static const s_field_t s_group[] = {
    { "id", F_ID, G (id), 0, true },
    { "size", F_U32, G (size), 0, true },
    { "index", F_U32, G (index), 0, true },
    { NULL },
};

#define Q(field) offsetof (zf_figures_t, field)
static const s_field_t s_figures[] = {
    { "name", F_STR, Q (name), ZF_NAME_MAX + 1, true },
    { "depth", F_U64, Q (depth), 0, true },
    { "inflight", F_U64, Q (inflight), 0, true },
    { "put", F_U64, Q (put), 0, true },
    { "ack", F_U64, Q (ack), 0, true },
    { "nack", F_U64, Q (nack), 0, true },
    { "dead", F_U64, Q (dead), 0, true },
    { "consumers", F_U32, Q (consumers), 0, true },
    { "paused", F_BOOL, Q (paused), 0, false },
    { NULL },
};

#define GF(field) offsetof (zf_group_figures_t, field)
static const s_field_t s_group_figures[] = {
    { "queue", F_STR, GF (queue), ZF_NAME_MAX + 1, true },
    { "name", F_STR, GF (name), ZF_NAME_MAX + 1, true },
    { "workers", F_U32, GF (workers), 0, true },
    { "ready", F_U64, GF (ready), 0, true },
    { "inflight", F_U64, GF (inflight), 0, true },
    { "acked", F_U64, GF (acked), 0, true },
    { "declared", F_BOOL, GF (declared), 0, true },
    { "throttled", F_U64, GF (throttled), 0, false },
    { "keys", F_U64, GF (keys), 0, false },
    { NULL },
};

#define KF(field) offsetof (zf_key_figures_t, field)
static const s_field_t s_key_figures[] = {
    { "queue", F_STR, KF (queue), ZF_NAME_MAX + 1, true },
    { "group", F_STR, KF (group), ZF_NAME_MAX + 1, true },
    { "key", F_STR, KF (key), ZF_NAME_MAX + 1, true },
    { "ready", F_U64, KF (ready), 0, true },
    { "inflight", F_U64, KF (inflight), 0, true },
    { "throttled", F_BOOL, KF (throttled), 0, false },
    { NULL },
};

static const s_field_t s_keyed_row[] = {
    { "queue", F_STR, offsetof (zf_keyed_t, queue), ZF_NAME_MAX + 1, true },
    { NULL },
};

#define D(field) offsetof (zf_done_t, field)
static const s_field_t s_done_row[] = {
    { "id", F_ID, D (id), 0, true },
    { "state", F_STR, D (state), ZF_CODE_MAX + 1, true },
    { "queue", F_STR, D (queue), ZF_NAME_MAX + 1, false },
    { "attempt", F_U32, D (attempt), 0, false },
    { "reason", F_STR, D (reason), ZF_TEXT_MAX + 1, false },
    { NULL },
};

#define SC(field) offsetof (zf_schedule_info_t, field)
static const s_field_t s_schedule_row[] = {
    { "name", F_STR, SC (name), ZF_NAME_MAX + 1, true },
    { "queue", F_STR, SC (queue), ZF_NAME_MAX + 1, true },
    { "trigger", F_STR, SC (trigger), ZF_TRIGGER_MAX + 1, true },
    { "tz", F_STR, SC (tz), 64, false },
    { "config", F_BOOL, SC (config), 0, false },
    { "paused", F_BOOL, SC (paused), 0, false },
    { "next", F_I64, SC (next), 0, false },
    { "last", F_I64, SC (last), 0, false },
    { "fired", F_U64, SC (fired), 0, false },
    { "missed", F_U64, SC (missed), 0, false },
    { NULL },
};

//  The arrays of maps (F_ROWS), by their field's aux: where each keeps its
//  entries, its count and its room, in zf_proto_t.
static const struct {
    const s_field_t *fields; // of one entry
    size_t size;             // bytes of one entry
    size_t count;            // offset of its count (uint32_t)
    size_t cap;              // offset of its allocated entries (uint32_t)
    uint32_t max;            // entries at most
    const char *what;        // for messages
} s_rows[] = {
    { s_figures, sizeof (zf_figures_t), P (nqueues), P (queues_cap), ZF_QUEUES_MAX, "queues" },
    { s_group_figures, sizeof (zf_group_figures_t), P (ngroups), P (groups_cap), ZF_GROUPS_MAX,
      "groups" },
    { s_done_row, sizeof (zf_done_t), P (ndones), P (dones_cap), ZF_BATCH_MAX, "roots" },
    { s_schedule_row, sizeof (zf_schedule_info_t), P (nschedules), P (schedules_cap),
      ZF_SCHEDULES_MAX, "schedules" },
    { s_key_figures, sizeof (zf_key_figures_t), P (nkeys), P (keys_cap), ZF_KEYS_MAX, "keys" },
    { s_keyed_row, sizeof (zf_keyed_t), P (nkeyed), P (keyed_cap), ZF_QUEUES_MAX, "queues" },
};

//  The commands, indexed by zf_command_t.
static const struct {
    const char *name;        // frame 0
    const s_field_t *fields; // frame 1
    bool bodies;             // one body frame per item follows
} s_commands[ZF_COMMAND_COUNT] = {
    [ZF_HELLO] = { "HELLO", s_hello, false },
    [ZF_WELCOME] = { "WELCOME", s_welcome, false },
    [ZF_PUT] = { "PUT", s_put, true },
    [ZF_CONFIRM] = { "CONFIRM", s_confirm, false },
    [ZF_CREDIT] = { "CREDIT", s_credit, false },
    [ZF_DELIVER] = { "DELIVER", s_deliver, true },
    [ZF_ACK] = { "ACK", s_ack, false },
    [ZF_NACK] = { "NACK", s_nack, false },
    [ZF_PING] = { "PING", s_ping, false },
    [ZF_PONG] = { "PONG", s_empty, false },
    [ZF_ERROR] = { "ERROR", s_error, false },
    [ZF_END] = { "END", s_end, false },
    [ZF_CANCEL] = { "CANCEL", s_cancel, false },
    [ZF_DONE] = { "DONE", s_done, true },
    [ZF_STATUS] = { "STATUS", s_status, false },
    [ZF_REPORT] = { "REPORT", s_report, true },
    [ZF_BYE] = { "BYE", s_empty, false },
    [ZF_PROGRESS] = { "PROGRESS", s_progress, false },
    [ZF_CONTROL] = { "CONTROL", s_control, false },
};

zf_proto_t *
zf_proto_new (void)
{
    zf_proto_t *self = (zf_proto_t *) calloc (1, sizeof (zf_proto_t));
    return self;
}

//  Bodies are held only by items[0 .. nitems); the rest are always NULL.
static void
s_clear (zf_proto_t *self)
{
    for (uint32_t i = 0; i < self->nitems; i++)
        if (self->borrowed)
            self->items[i].body = NULL;
        else
            zframe_destroy (&self->items[i].body);
    zframe_destroy (&self->frame);
}

void
zf_proto_destroy (zf_proto_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zf_proto_t *self = *self_p;
    s_clear (self);
    free (self->queues);
    free (self->groups);
    free (self->dones);
    free (self->schedules);
    free (self->keys);
    free (self->keyed);
    free (self);
    *self_p = NULL;
}

void
zf_proto_reset (zf_proto_t *self, zf_command_t command)
{
    s_clear (self);
    memset (self, 0, offsetof (zf_proto_t, checkpoint));
    self->detail[0] = 0;
    self->note[0] = 0;
    self->where[0] = 0;
    self->command = command;
    if (command == ZF_HELLO || command == ZF_WELCOME)
        self->version = ZF_PROTO_VERSION;
}

const char *
zf_proto_command_name (zf_command_t command)
{
    if (command <= 0 || command >= ZF_COMMAND_COUNT)
        return NULL;
    return s_commands[command].name;
}

zf_command_t
zf_proto_command_for (const char *name, size_t len)
{
    for (int c = 1; c < ZF_COMMAND_COUNT; c++)
        if (strlen (s_commands[c].name) == len && memcmp (s_commands[c].name, name, len) == 0)
            return (zf_command_t) c;
    return (zf_command_t) 0;
}

const zf_id_t *
zf_env_root (const zf_env_t *env)
{
    return zf_id_is_zero (&env->root) ? &env->id : &env->root;
}

zf_env_t *
zf_proto_add_item (zf_proto_t *self, zframe_t **body_p)
{
    if (self->nitems >= ZF_BATCH_MAX)
        return NULL;
    zf_env_t *env = &self->items[self->nitems++];
    zframe_destroy (&env->body);
    memset (env, 0, sizeof *env);
    env->body = *body_p;
    *body_p = NULL;
    return env;
}

zf_env_t *
zf_proto_add_borrowed (zf_proto_t *self, zframe_t *body)
{
    if (self->nitems >= ZF_BATCH_MAX || (self->nitems && !self->borrowed))
        return NULL; // bodies are all owned or all borrowed
    self->borrowed = true;
    zf_env_t *env = &self->items[self->nitems++];
    memset (env, 0, sizeof *env);
    env->body = body;
    return env;
}

//  Room for one more entry of rows (an index in s_rows), zeroed; NULL if
//  full or out of memory.
static void *
s_add_row (zf_proto_t *self, size_t rows, size_t array)
{
    uint32_t *count = (uint32_t *) ((char *) self + s_rows[rows].count);
    uint32_t *cap = (uint32_t *) ((char *) self + s_rows[rows].cap);
    void **entries = (void **) ((char *) self + array);
    size_t size = s_rows[rows].size;
    if (*count >= s_rows[rows].max)
        return NULL;
    if (*count == *cap) {
        uint32_t grown = *cap ? *cap * 2 : 16;
        void *more = realloc (*entries, grown * size);
        if (!more)
            return NULL;
        *entries = more;
        *cap = grown;
    }
    void *entry = (char *) *entries + (*count)++ * size;
    memset (entry, 0, size);
    return entry;
}

zf_figures_t *
zf_proto_add_queue (zf_proto_t *self)
{
    return (zf_figures_t *) s_add_row (self, 0, P (queues));
}

zf_group_figures_t *
zf_proto_add_group (zf_proto_t *self)
{
    return (zf_group_figures_t *) s_add_row (self, 1, P (groups));
}

zf_schedule_info_t *
zf_proto_add_schedule (zf_proto_t *self)
{
    return (zf_schedule_info_t *) s_add_row (self, 3, P (schedules));
}

zf_key_figures_t *
zf_proto_add_key (zf_proto_t *self)
{
    return (zf_key_figures_t *) s_add_row (self, 4, P (keys));
}

zf_keyed_t *
zf_proto_add_keyed (zf_proto_t *self)
{
    return (zf_keyed_t *) s_add_row (self, 5, P (keyed));
}

zf_done_t *
zf_proto_add_done (zf_proto_t *self)
{
    return (zf_done_t *) s_add_row (self, 2, P (dones));
}

//  --------------------------------------------------------------------------
//  Decoding

static int s_decode_map (zf_proto_t *self, zf_mp_t *mp, const s_field_t *fields, void *base,
                         zf_error_t *err);

//  Copies a str into a buffer of size bytes (with its NUL).
static int
s_read_str (zf_mp_t *mp, char *buffer, size_t size, zf_error_t *err)
{
    const char *str;
    uint32_t len;
    if (zf_mp_str (mp, &str, &len, err))
        return -1;
    if (len >= size)
        return zf_error_set (err, ZF_ETOOBIG, "string of %u bytes, at most %zu allowed", len,
                             size - 1);
    if (memchr (str, 0, len))
        return zf_error_set (err, ZF_EVALUE, "string holds a NUL byte");
    memcpy (buffer, str, len);
    buffer[len] = 0;
    return 0;
}

static int
s_read_id (zf_mp_t *mp, zf_id_t *id, zf_error_t *err)
{
    const uint8_t *data;
    uint32_t len;
    if (zf_mp_bin (mp, &data, &len, err))
        return -1;
    if (len != ZF_ID_SIZE)
        return zf_error_set (err, ZF_EVALUE, "id of %u bytes, expected %d", len, ZF_ID_SIZE);
    memcpy (id->bytes, data, ZF_ID_SIZE);
    return 0;
}

static int
s_read_count (zf_mp_t *mp, uint32_t *count, uint32_t max, zf_error_t *err)
{
    if (zf_mp_array (mp, count, err))
        return -1;
    if (*count > max)
        return zf_error_set (err, ZF_ETOOBIG, "array of %u entries, at most %u allowed", *count,
                             max);
    return 0;
}

static int
s_read_headers (zf_mp_t *mp, zf_env_t *env, zf_error_t *err)
{
    const uint8_t *start = mp->pos;
    uint32_t count;
    if (zf_mp_map (mp, &count, err))
        return -1;
    if (count > ZF_HEADERS_COUNT)
        return zf_error_set (err, ZF_ETOOBIG, "%u headers, at most %d allowed", count,
                             ZF_HEADERS_COUNT);
    for (uint32_t i = 0; i < 2 * count; i++) {
        const char *str;
        uint32_t len;
        if (zf_mp_str (mp, &str, &len, err)) {
            zf_error_prefix (err, "header %u: ", i / 2);
            return -1;
        }
        // Text, as every reader takes it (Python's decoder would refuse
        // the whole message, the other items with it).
        for (uint32_t at = 0, n; at < len; at += n)
            if (!(n = (uint32_t) zf_utf8_len ((const unsigned char *) str + at, len - at)))
                return zf_error_set (err, ZF_EVALUE, "header %u: not UTF-8", i / 2);
    }
    size_t size = (size_t) (mp->pos - start);
    if (size > ZF_HEADERS_MAX)
        return zf_error_set (err, ZF_ETOOBIG, "headers of %zu bytes, at most %d allowed", size,
                             ZF_HEADERS_MAX);
    env->headers = count ? start : NULL;
    env->headers_size = count ? (uint32_t) size : 0;
    return 0;
}

int
zf_proto_check_headers (const void *data, size_t size, zf_error_t *err)
{
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    zf_env_t env;
    if (s_read_headers (&mp, &env, err))
        return -1;
    if (zf_mp_left (&mp))
        return zf_error_set (err, ZF_EVALUE, "%zu bytes after the headers map", zf_mp_left (&mp));
    return 0;
}

static int
s_read_value (zf_proto_t *self, zf_mp_t *mp, const s_field_t *field, void *base, zf_error_t *err)
{
    uint8_t *at = (uint8_t *) base + field->offset;
    uint64_t u;
    uint32_t count;
    switch (field->type) {
        case F_U32:
            if (zf_mp_uint (mp, &u, err))
                return -1;
            if (u > UINT32_MAX)
                return zf_error_set (err, ZF_EVALUE, "%llu is over 2^32-1", (unsigned long long) u);
            *(uint32_t *) at = (uint32_t) u;
            return 0;
        case F_U64:
            return zf_mp_uint (mp, (uint64_t *) at, err);
        case F_I64:
            return zf_mp_int (mp, (int64_t *) at, err);
        case F_BOOL:
            return zf_mp_bool (mp, (bool *) at, err);
        case F_STR:
            return s_read_str (mp, (char *) at, field->aux, err);
        case F_ID:
            return s_read_id (mp, (zf_id_t *) at, err);
        case F_MAP: {
            const uint8_t *start = mp->pos;
            if (zf_mp_peek (mp) != ZF_MP_MAP)
                return zf_error_set (err, ZF_ETYPE, "expected a map, got %s",
                                     zf_mp_type_name (zf_mp_peek (mp)));
            if (zf_mp_skip (mp, ZF_MP_MAX_DEPTH, err))
                return -1;
            size_t size = (size_t) (mp->pos - start);
            if (size > ZF_FIGURES_MAX)
                return zf_error_set (err, ZF_ETOOBIG, "a map of %zu bytes, at most %d", size,
                                     ZF_FIGURES_MAX);
            self->figures = start;
            self->figures_size = (uint32_t) size;
            return 0;
        }
        case F_CHECKPOINT: {
            const uint8_t *data;
            uint32_t len;
            if (zf_mp_bin (mp, &data, &len, err))
                return -1;
            if (len > ZF_CHECKPOINT_MAX)
                return zf_error_set (err, ZF_ETOOBIG, "checkpoint of %u bytes, at most %d", len,
                                     ZF_CHECKPOINT_MAX);
            memcpy (self->checkpoint, data, len);
            self->checkpoint_size = len;
            return 0;
        }
        case F_NAMES: {
            if (s_read_count (mp, &count, ZF_LIST_MAX, err))
                return -1;
            char (*names)[ZF_NAME_MAX + 1] = (char (*)[ZF_NAME_MAX + 1]) at;
            for (uint32_t i = 0; i < count; i++)
                if (s_read_str (mp, names[i], ZF_NAME_MAX + 1, err)) {
                    zf_error_prefix (err, "entry %u: ", i);
                    return -1;
                }
            *(uint32_t *) ((uint8_t *) base + field->aux) = count;
            return 0;
        }
        case F_ITEMS:
            if (s_read_count (mp, &count, ZF_BATCH_MAX, err))
                return -1;
            for (uint32_t i = 0; i < count; i++) {
                zf_env_t *env = &self->items[i];
                memset (env, 0, sizeof *env);
                if (s_decode_map (self, mp, s_envelope, env, err)) {
                    zf_error_prefix (err, "item %u: ", i);
                    return -1;
                }
                if (!env->queue[0])
                    return zf_error_set (err, ZF_EVALUE, "item %u: empty queue name", i);
                if (env->priority > ZF_PRIORITY_MAX)
                    return zf_error_set (err, ZF_EVALUE, "item %u: priority %u, at most %d", i,
                                         env->priority, ZF_PRIORITY_MAX);
            }
            self->nitems = count;
            return 0;
        case F_IDS:
            if (s_read_count (mp, &count, ZF_IDS_MAX, err))
                return -1;
            for (uint32_t i = 0; i < count; i++)
                if (s_read_id (mp, &self->ids[i], err)) {
                    zf_error_prefix (err, "entry %u: ", i);
                    return -1;
                }
            self->nids = count;
            return 0;
        case F_GROUP: {
            zf_group_t *group = (zf_group_t *) at;
            if (s_decode_map (self, mp, s_group, group, err))
                return -1;
            if (group->size == 0 || group->index >= group->size)
                return zf_error_set (err, ZF_EVALUE, "index %u of a group of size %u", group->index,
                                     group->size);
            return 0;
        }
        case F_HEADERS:
            return s_read_headers (mp, (zf_env_t *) base, err);
        case F_ROWS:
            if (s_read_count (mp, &count, s_rows[field->aux].max, err))
                return -1;
            for (uint32_t i = 0; i < count; i++) {
                void *row = s_add_row (self, field->aux, field->offset);
                if (!row)
                    return zf_error_set (err, ZF_ENOMEM, "no memory for %u %s", count,
                                         s_rows[field->aux].what);
                if (s_decode_map (self, mp, s_rows[field->aux].fields, row, err)) {
                    zf_error_prefix (err, "entry %u: ", i);
                    return -1;
                }
            }
            return 0;
    }
    return zf_error_set (err, ZF_EVALUE, "field of unknown type");
}

//  Reads a map described by fields into base. Unknown keys are skipped, so
//  that a later minor revision may add fields; a key twice is an error.
static int
s_decode_map (zf_proto_t *self, zf_mp_t *mp, const s_field_t *fields, void *base, zf_error_t *err)
{
    uint32_t count;
    if (zf_mp_map (mp, &count, err))
        return -1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < count; i++) {
        const char *key;
        uint32_t len;
        if (zf_mp_str (mp, &key, &len, err)) {
            zf_error_prefix (err, "key %u: ", i);
            return -1;
        }
        int f;
        for (f = 0; fields[f].key; f++)
            if (strlen (fields[f].key) == len && memcmp (fields[f].key, key, len) == 0)
                break;
        if (!fields[f].key) {
            if (zf_mp_skip (mp, ZF_MP_MAX_DEPTH, err)) {
                zf_error_prefix (err, "unknown field '%.*s': ", (int) (len > 40 ? 40 : len), key);
                return -1;
            }
            continue;
        }
        if (seen & (1ULL << f))
            return zf_error_set (err, ZF_EVALUE, "field '%s' appears twice", fields[f].key);
        seen |= 1ULL << f;
        if (s_read_value (self, mp, &fields[f], base, err)) {
            zf_error_prefix (err, "field '%s': ", fields[f].key);
            return -1;
        }
    }
    for (int f = 0; fields[f].key; f++)
        if (fields[f].required && !(seen & (1ULL << f)))
            return zf_error_set (err, ZF_EFIELD, "field '%s' is missing", fields[f].key);
    return 0;
}

int
zf_proto_decode (zf_proto_t *self, zmsg_t **msg_p, zf_error_t *err)
{
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    int rc = -1;
    zf_proto_reset (self, (zf_command_t) 0);
    if (!msg || zmsg_size (msg) < 2) {
        zf_error_set (err, ZF_EFRAMES, "%zu frames, a command needs at least 2",
                      msg ? zmsg_size (msg) : 0);
        goto done;
    }
    zframe_t *name = zmsg_first (msg);
    zf_command_t command =
        zf_proto_command_for ((const char *) zframe_data (name), zframe_size (name));
    if (!command) {
        size_t size = zframe_size (name);
        char shown[24];
        size_t i;
        for (i = 0; i < size && i < sizeof shown - 1; i++) {
            char c = (char) zframe_data (name)[i];
            shown[i] = c >= 0x20 && c < 0x7f ? c : '?';
        }
        shown[i] = 0;
        zf_error_set (err, ZF_ECMD, "unknown command '%s'%s", shown,
                      size >= sizeof shown ? "..." : "");
        goto done;
    }
    self->command = command;
    if (command == ZF_HELLO || command == ZF_WELCOME)
        self->version = 0; // must come from the wire
    zframe_t *name_frame = zmsg_pop (msg);
    zframe_destroy (&name_frame);
    self->frame = zmsg_pop (msg);

    size_t bodies = zmsg_size (msg);
    if (!s_commands[command].bodies && bodies > 0) {
        zf_error_set (err, ZF_EFRAMES, "%s: %zu frames, expected 2", s_commands[command].name,
                      bodies + 2);
        goto done;
    }
    zf_mp_t mp;
    zf_mp_init (&mp, zframe_data (self->frame), zframe_size (self->frame));
    if (s_decode_map (self, &mp, s_commands[command].fields, self, err)) {
        zf_error_prefix (err, "%s: ", s_commands[command].name);
        goto done;
    }
    if (zf_mp_left (&mp) > 0) {
        zf_error_set (err, ZF_EVALUE, "%s: %zu bytes after the header map",
                      s_commands[command].name, zf_mp_left (&mp));
        goto done;
    }
    if ((command == ZF_HELLO || command == ZF_WELCOME) && self->version < 1) {
        zf_error_set (err, ZF_EVERSION, "%s: version %u", s_commands[command].name, self->version);
        goto done;
    }
    if (self->progress > ZF_PROGRESS_MAX) {
        zf_error_set (err, ZF_EVALUE, "%s: progress %u, at most %d (thousandths)",
                      s_commands[command].name, self->progress, ZF_PROGRESS_MAX);
        goto done;
    }
    if (s_commands[command].bodies) {
        if (bodies != self->nitems) {
            zf_error_set (err, ZF_EFRAMES, "%s: %u items but %zu body frames",
                          s_commands[command].name, self->nitems, bodies);
            goto done;
        }
        for (uint32_t i = 0; i < self->nitems; i++)
            self->items[i].body = zmsg_pop (msg);
    }
    rc = 0;
done:
    zmsg_destroy (&msg);
    return rc;
}

//  --------------------------------------------------------------------------
//  Encoding

static bool
s_zero (const void *at, size_t size)
{
    const uint8_t *p = (const uint8_t *) at;
    for (size_t i = 0; i < size; i++)
        if (p[i])
            return false;
    return true;
}

//  True if an optional field has its empty value and is left out.
static bool
s_absent (const zf_proto_t *self, const s_field_t *field, const void *base)
{
    const uint8_t *at = (const uint8_t *) base + field->offset;
    switch (field->type) {
        case F_U32:
            return *(const uint32_t *) at == 0;
        case F_U64:
            return *(const uint64_t *) at == 0;
        case F_I64:
            return *(const int64_t *) at == 0;
        case F_BOOL:
            return !*(const bool *) at;
        case F_STR:
            return *(const char *) at == 0;
        case F_ID:
            return s_zero (at, ZF_ID_SIZE);
        case F_CHECKPOINT:
            return self->checkpoint_size == 0;
        case F_NAMES:
            return *(const uint32_t *) ((const uint8_t *) base + field->aux) == 0;
        case F_ITEMS:
            return self->nitems == 0;
        case F_IDS:
            return self->nids == 0;
        case F_GROUP:
            return ((const zf_group_t *) at)->size == 0;
        case F_HEADERS:
            return ((const zf_env_t *) base)->headers_size == 0;
        case F_ROWS:
            return *(const uint32_t *) ((const char *) self + s_rows[field->aux].count) == 0;
        case F_MAP:
            return self->figures_size == 0;
    }
    return true;
}

static void s_encode_map (const zf_proto_t *self, msgpack_packer *pk, const s_field_t *fields,
                          const void *base);

static void
s_write_value (const zf_proto_t *self, msgpack_packer *pk, const s_field_t *field, const void *base)
{
    const uint8_t *at = (const uint8_t *) base + field->offset;
    switch (field->type) {
        case F_U32:
            msgpack_pack_uint32 (pk, *(const uint32_t *) at);
            break;
        case F_U64:
            msgpack_pack_uint64 (pk, *(const uint64_t *) at);
            break;
        case F_I64:
            msgpack_pack_int64 (pk, *(const int64_t *) at);
            break;
        case F_BOOL:
            if (*(const bool *) at)
                msgpack_pack_true (pk);
            else
                msgpack_pack_false (pk);
            break;
        case F_STR:
            zf_mp_pack_cstr (pk, (const char *) at);
            break;
        case F_ID:
            msgpack_pack_bin (pk, ZF_ID_SIZE);
            msgpack_pack_bin_body (pk, at, ZF_ID_SIZE);
            break;
        case F_CHECKPOINT:
            msgpack_pack_bin (pk, self->checkpoint_size);
            msgpack_pack_bin_body (pk, self->checkpoint, self->checkpoint_size);
            break;
        case F_NAMES: {
            uint32_t count = *(const uint32_t *) ((const uint8_t *) base + field->aux);
            const char (*names)[ZF_NAME_MAX + 1] = (const char (*)[ZF_NAME_MAX + 1]) at;
            msgpack_pack_array (pk, count);
            for (uint32_t i = 0; i < count; i++)
                zf_mp_pack_cstr (pk, names[i]);
            break;
        }
        case F_ITEMS:
            msgpack_pack_array (pk, self->nitems);
            for (uint32_t i = 0; i < self->nitems; i++)
                s_encode_map (self, pk, s_envelope, &self->items[i]);
            break;
        case F_IDS:
            msgpack_pack_array (pk, self->nids);
            for (uint32_t i = 0; i < self->nids; i++) {
                msgpack_pack_bin (pk, ZF_ID_SIZE);
                msgpack_pack_bin_body (pk, self->ids[i].bytes, ZF_ID_SIZE);
            }
            break;
        case F_GROUP:
            s_encode_map (self, pk, s_group, at);
            break;
        case F_HEADERS: {
            // Already msgpack: written as it came.
            const zf_env_t *env = (const zf_env_t *) base;
            msgpack_pack_str_body (pk, env->headers, env->headers_size);
            break;
        }
        case F_ROWS: {
            uint32_t count = *(const uint32_t *) ((const char *) self + s_rows[field->aux].count);
            const char *rows = *(const char *const *) at;
            msgpack_pack_array (pk, count);
            for (uint32_t i = 0; i < count; i++)
                s_encode_map (self, pk, s_rows[field->aux].fields,
                              rows + i * s_rows[field->aux].size);
            break;
        }
        case F_MAP:
            msgpack_pack_str_body (pk, self->figures, self->figures_size); // as it is
            break;
    }
}

static void
s_encode_map (const zf_proto_t *self, msgpack_packer *pk, const s_field_t *fields, const void *base)
{
    uint32_t count = 0;
    for (int f = 0; fields[f].key; f++)
        if (fields[f].required || !s_absent (self, &fields[f], base))
            count++;
    msgpack_pack_map (pk, count);
    for (int f = 0; fields[f].key; f++)
        if (fields[f].required || !s_absent (self, &fields[f], base)) {
            zf_mp_pack_cstr (pk, fields[f].key);
            s_write_value (self, pk, &fields[f], base);
        }
}

//  Checks self can be sent and packs its header into buffer (initialised
//  here; the caller destroys it). Returns 0 or -1.
static int
s_encode_header (zf_proto_t *self, msgpack_sbuffer *buffer, zf_error_t *err)
{
    zf_command_t command = self->command;
    if (command <= 0 || command >= ZF_COMMAND_COUNT)
        return zf_error_set (err, ZF_ECMD, "no command %d", (int) command);
    if (s_commands[command].bodies)
        for (uint32_t i = 0; i < self->nitems; i++)
            if (!self->items[i].body)
                return zf_error_set (err, ZF_EFIELD, "%s: item %u has no body",
                                     s_commands[command].name, i);
    msgpack_sbuffer_init (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    s_encode_map (self, &pk, s_commands[command].fields, self);
    return 0;
}

zmsg_t *
zf_proto_encode (zf_proto_t *self, zf_error_t *err)
{
    msgpack_sbuffer buffer;
    if (s_encode_header (self, &buffer, err))
        return NULL;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, s_commands[self->command].name);
    zmsg_addmem (msg, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    if (s_commands[self->command].bodies) {
        for (uint32_t i = 0; i < self->nitems; i++) {
            if (self->borrowed)
                zmsg_addmem (msg, zframe_data (self->items[i].body),
                             zframe_size (self->items[i].body));
            else
                zmsg_append (msg, &self->items[i].body);
        }
    }
    return msg;
}

int
zf_proto_send (zf_proto_t *self, void *sock, zframe_t *routing_id, zf_error_t *err)
{
    msgpack_sbuffer buffer;
    if (s_encode_header (self, &buffer, err))
        return -1;
    bool bodies = s_commands[self->command].bodies && self->nitems;
    zframe_t *name =
        zframe_new (s_commands[self->command].name, strlen (s_commands[self->command].name));
    zframe_t *header = zframe_new (buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    int rc = 0;
    if (routing_id)
        rc |= zframe_send (&routing_id, sock, ZFRAME_REUSE | ZFRAME_MORE);
    rc |= zframe_send (&name, sock, ZFRAME_MORE);
    rc |= zframe_send (&header, sock, bodies ? ZFRAME_MORE : 0);
    for (uint32_t i = 0; bodies && i < self->nitems; i++)
        rc |= zframe_send (&self->items[i].body, sock,
                           ZFRAME_REUSE | (i + 1 < self->nitems ? ZFRAME_MORE : 0));
    if (rc)
        return zf_error_set (err, ZF_EIO, "send failed: %s", zmq_strerror (zmq_errno ()));
    return 0;
}
