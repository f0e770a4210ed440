/*  zf_proto: the ZFP/1 codec. See zf_proto.h and schemas/zfp.md.

    Every command's header is described by a table (zf_table), one row per
    field; zf_table's one reader and one writer walk them. Encoding is
    canonical: fields in table order, optional fields left out when they are
    zero or empty, integers in their smallest msgpack form. So
    decode-then-encode of a canonical message gives back the same bytes,
    which the test vectors check.
*/
#include "zf_proto.h"
#include "zf_json.h"
#include "zf_mp.h"
#include "zf_table.h"

#include <stddef.h>

#define P(field) offsetof (zf_proto_t, field)

//  A row of a command's table: key, type, member of zf_proto_t, required.
#define F(k, t, m, r) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_proto_t, m, r)

//  A row whose value is an array, its entries described by a.
#define ARRAY(k, a, m, r)                                                                          \
    {                                                                                              \
        .key = (k), .type = ZF_TABLE_ARRAY, .offset = P (m), .required = (r), .array = &(a)        \
    }

//  --------------------------------------------------------------------------
//  An envelope

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

static int
s_read_headers_field (zf_mp_t *mp, const zf_table_field_t *field, void *base, zf_error_t *err)
{
    return s_read_headers (mp, (zf_env_t *) base, err);
}

static void
s_write_headers (msgpack_packer *pk, const zf_table_field_t *field, const void *base)
{
    // Already msgpack: written as it came.
    const zf_env_t *env = (const zf_env_t *) base;
    msgpack_pack_str_body (pk, env->headers, env->headers_size);
}

static bool
s_no_headers (const zf_table_field_t *field, const void *base)
{
    return ((const zf_env_t *) base)->headers_size == 0;
}

//  Headers stay a view of the frame, checked as zf_proto_check_headers
//  says: only the envelope knows them.
static const zf_table_ops_t s_headers = { s_read_headers_field, s_write_headers, s_no_headers };

static int
s_check_group (void *base, zf_error_t *err)
{
    const zf_group_t *group = (const zf_group_t *) base;
    if (group->size == 0 || group->index >= group->size)
        return zf_error_set (err, ZF_EVALUE, "index %u of a group of size %u", group->index,
                             group->size);
    return 0;
}

static bool
s_no_group (const void *base)
{
    return ((const zf_group_t *) base)->size == 0; // zflow.h: size 0 means no group
}

#define G(k, t, m) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_group_t, m, true)
static const zf_table_field_t s_group_fields[] = {
    G ("id", ID, id),
    G ("size", U32, size),
    G ("index", U32, index),
    { NULL },
};
static const zf_table_t s_group = { .fields = s_group_fields,
                                    .check = s_check_group,
                                    .absent = s_no_group };

//  What no one field of an item says.
static int
s_check_item (void *base, zf_error_t *err)
{
    const zf_env_t *env = (const zf_env_t *) base;
    if (!env->queue[0])
        return zf_error_set (err, ZF_EVALUE, "empty queue name");
    if (env->priority > ZF_PRIORITY_MAX)
        return zf_error_set (err, ZF_EVALUE, "priority %u, at most %d", env->priority,
                             ZF_PRIORITY_MAX);
    return 0;
}

#define E(k, t, m, r) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_env_t, m, r)
static const zf_table_field_t s_envelope_fields[] = {
    E ("id", ID, id, true),
    E ("queue", STR, queue, true),
    E ("attempt", U32, attempt, false),
    E ("ts", I64, ts, true),
    E ("parent", ID, parent, false),
    E ("root", ID, root, false),
    { .key = "group",
      .type = ZF_TABLE_MAP,
      .offset = offsetof (zf_env_t, group),
      .table = &s_group },
    { .key = "headers",
      .type = ZF_TABLE_OWN,
      .offset = offsetof (zf_env_t, headers),
      .ops = &s_headers },
    E ("not_before", I64, not_before, false),
    E ("priority", U32, priority, false),
    { NULL },
};
static const zf_table_t s_envelope = { .fields = s_envelope_fields, .check = s_check_item };

//  --------------------------------------------------------------------------
//  The arrays of zf_proto_t

//  PUT, DELIVER, DONE, REPORT: the items, in place.
static const zf_table_array_t s_items = {
    .entry = { .type = ZF_TABLE_MAP, .table = &s_envelope },
    .size = sizeof (zf_env_t),
    .count = P (nitems),
    .max = ZF_BATCH_MAX,
    .noun = "item",
};
static const zf_table_array_t s_ids = {
    .entry = { .type = ZF_TABLE_ID },
    .size = sizeof (zf_id_t),
    .count = P (nids),
    .max = ZF_IDS_MAX,
};
#define NAMES(n)                                                                                   \
    {                                                                                              \
        .entry = { .type = ZF_TABLE_STR, .size = ZF_NAME_MAX + 1 }, .size = ZF_NAME_MAX + 1,       \
        .count = P (n), .max = ZF_LIST_MAX                                                         \
    }
static const zf_table_array_t s_inputs = NAMES (ninputs);
static const zf_table_array_t s_outputs = NAMES (noutputs);

//  The arrays of maps kept in an allocated array of zf_proto_t (REPORT's
//  queues, groups, ...): where their entries are, and their room.
typedef struct {
    zf_table_array_t array; // first: s_add_row finds the rest from it
    size_t entries;         // offset of the entries' pointer
    size_t cap;             // offset of the entries allocated (uint32_t)
} s_rows_t;

static void *s_add_row (void *base, const zf_table_array_t *array);

#define ROWS(entry_t, entries, n, limit, at)                                                       \
    {                                                                                              \
        { .entry = { .type = ZF_TABLE_MAP, .table = &(entries) },                                  \
          .size = sizeof (entry_t),                                                                \
          .count = P (n),                                                                          \
          .max = (limit),                                                                          \
          .add = s_add_row },                                                                      \
            P (at), P (at##_cap)                                                                   \
    }

#define Q(k, t, m, r) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_figures_t, m, r)
static const zf_table_field_t s_figures_fields[] = {
    Q ("name", STR, name, true),         Q ("depth", U64, depth, true),
    Q ("inflight", U64, inflight, true), Q ("put", U64, put, true),
    Q ("ack", U64, ack, true),           Q ("nack", U64, nack, true),
    Q ("dead", U64, dead, true),         Q ("consumers", U32, consumers, true),
    Q ("paused", BOOL, paused, false),   { NULL },
};
static const zf_table_t s_figures = { .fields = s_figures_fields };
static const s_rows_t s_queue_rows = ROWS (zf_figures_t, s_figures, nqueues, ZF_QUEUES_MAX, queues);

#define GF(k, t, m, r) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_group_figures_t, m, r)
static const zf_table_field_t s_group_figures_fields[] = {
    GF ("queue", STR, queue, true),        GF ("name", STR, name, true),
    GF ("workers", U32, workers, true),    GF ("ready", U64, ready, true),
    GF ("inflight", U64, inflight, true),  GF ("acked", U64, acked, true),
    GF ("declared", BOOL, declared, true), GF ("throttled", U64, throttled, false),
    GF ("keys", U64, keys, false),         { NULL },
};
static const zf_table_t s_group_figures = { .fields = s_group_figures_fields };
static const s_rows_t s_group_rows =
    ROWS (zf_group_figures_t, s_group_figures, ngroups, ZF_GROUPS_MAX, groups);

#define KF(k, t, m, r) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_key_figures_t, m, r)
static const zf_table_field_t s_key_figures_fields[] = {
    KF ("queue", STR, queue, true),
    KF ("group", STR, group, true),
    KF ("key", STR, key, true),
    KF ("ready", U64, ready, true),
    KF ("inflight", U64, inflight, true),
    KF ("throttled", BOOL, throttled, false),
    { NULL },
};
static const zf_table_t s_key_figures = { .fields = s_key_figures_fields };
static const s_rows_t s_key_rows = ROWS (zf_key_figures_t, s_key_figures, nkeys, ZF_KEYS_MAX, keys);

static const zf_table_field_t s_keyed_fields[] = {
    ZF_TABLE_FIELD ("queue", ZF_TABLE_STR, zf_keyed_t, queue, true),
    { NULL },
};
static const zf_table_t s_keyed = { .fields = s_keyed_fields };
static const s_rows_t s_keyed_rows = ROWS (zf_keyed_t, s_keyed, nkeyed, ZF_QUEUES_MAX, keyed);

#define D(k, t, m, r) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_done_t, m, r)
static const zf_table_field_t s_done_fields[] = {
    D ("id", ID, id, true),           D ("state", STR, state, true),
    D ("queue", STR, queue, false),   D ("attempt", U32, attempt, false),
    D ("reason", STR, reason, false), { NULL },
};
static const zf_table_t s_done_row = { .fields = s_done_fields };
static const s_rows_t s_done_rows = ROWS (zf_done_t, s_done_row, ndones, ZF_BATCH_MAX, dones);

#define SC(k, t, m, r) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_schedule_info_t, m, r)
static const zf_table_field_t s_schedule_fields[] = {
    SC ("name", STR, name, true),
    SC ("queue", STR, queue, true),
    SC ("trigger", STR, trigger, true),
    SC ("tz", STR, tz, false),
    SC ("config", BOOL, config, false),
    SC ("paused", BOOL, paused, false),
    SC ("next", I64, next, false),
    SC ("last", I64, last, false),
    SC ("fired", U64, fired, false),
    SC ("missed", U64, missed, false),
    { NULL },
};
static const zf_table_t s_schedule = { .fields = s_schedule_fields };
static const s_rows_t s_schedule_rows =
    ROWS (zf_schedule_info_t, s_schedule, nschedules, ZF_SCHEDULES_MAX, schedules);

//  --------------------------------------------------------------------------
//  The commands

//  PING's figures, CONTROL's spec: a map kept as it came.
#define VIEW(k)                                                                                    \
    {                                                                                              \
        .key = (k), .type = ZF_TABLE_VIEW, .offset = P (figures), .size = ZF_FIGURES_MAX,          \
        .length = P (figures_size)                                                                 \
    }
#define CHECKPOINT                                                                                 \
    {                                                                                              \
        .key = "checkpoint", .type = ZF_TABLE_BIN, .offset = P (checkpoint),                       \
        .size = ZF_CHECKPOINT_MAX, .length = P (checkpoint_size)                                   \
    }

static const zf_table_field_t s_hello[] = {
    F ("version", U32, version, true),
    F ("name", STR, name, true),
    F ("worker", U32, worker, false),
    F ("pid", U64, pid, false),
    F ("host", STR, host, false),
    ARRAY ("inputs", s_inputs, inputs, false),
    ARRAY ("outputs", s_outputs, outputs, false),
    F ("heartbeat", U32, heartbeat, false),
    F ("pipeline", STR, pipeline, false),
    F ("done", U64, done, false),
    F ("failed", U64, failed, false),
    { NULL },
};
static const zf_table_field_t s_welcome[] = {
    F ("version", U32, version, true),
    F ("heartbeat", U32, heartbeat, true),
    F ("liveness", U32, liveness, true),
    F ("window", U32, window, true),
    CHECKPOINT,
    F ("timeout", U32, timeout, false),
    F ("max_frame", U32, max_frame, false),
    ARRAY ("url_keyed", s_keyed_rows.array, keyed, false),
    { NULL },
};
static const zf_table_field_t s_put[] = {
    F ("seq", U64, seq, true),
    ARRAY ("items", s_items, items, true),
    CHECKPOINT,
    F ("track", BOOL, track, false),
    F ("urgent", BOOL, urgent, false),
    F ("wait", U32, wait, false),
    { NULL },
};
static const zf_table_field_t s_confirm[] = {
    F ("seq", U64, seq, true),
    F ("accepted", U32, accepted, false),
    F ("duplicates", U32, duplicates, false),
    F ("refused", U32, refused, false),
    F ("reason", STR, reason, false),
    F ("code", STR, code, false),
    { NULL },
};
static const zf_table_field_t s_credit[] = {
    F ("credit", U32, credit, true),
    { NULL },
};
static const zf_table_field_t s_deliver[] = {
    ARRAY ("items", s_items, items, true),
    { NULL },
};
static const zf_table_field_t s_ack[] = {
    ARRAY ("ids", s_ids, ids, true),
    { NULL },
};
static const zf_table_field_t s_nack[] = {
    F ("id", ID, id, true),           F ("reason", STR, reason, false),
    F ("final", BOOL, final, false),  F ("delay", U32, delay, false),
    F ("detail", STR, detail, false), { NULL },
};
static const zf_table_field_t s_empty[] = {
    { NULL },
};
static const zf_table_field_t s_ping[] = {
    VIEW ("figures"),
    F ("reloaded", BOOL, reloaded, false),
    ARRAY ("url_keyed", s_keyed_rows.array, keyed, false),
    { NULL },
};
static const zf_table_field_t s_error[] = {
    F ("code", STR, code, true),
    F ("reason", STR, reason, true),
    F ("leader", STR, leader, false),
    { NULL },
};
static const zf_table_field_t s_end[] = {
    F ("count", U64, count, false),
    { NULL },
};
static const zf_table_field_t s_cancel[] = {
    F ("id", ID, id, true),
    F ("reason", STR, reason, false),
    F ("dead", BOOL, dead, false),
    { NULL },
};
static const zf_table_field_t s_done[] = {
    ARRAY ("roots", s_done_rows.array, dones, true),
    ARRAY ("results", s_items, items, false),
    { NULL },
};
static const zf_table_field_t s_status[] = {
    F ("id", ID, id, false),
    F ("results", BOOL, results, false),
    F ("wait", U32, wait, false),
    F ("tag", U64, tag, false),
    { NULL },
};
static const zf_table_field_t s_report[] = {
    F ("id", ID, id, false),
    F ("tag", U64, tag, false),
    F ("state", STR, state, false),
    F ("queue", STR, queue, false),
    F ("attempt", U32, attempt, false),
    F ("reason", STR, reason, false),
    F ("detail", STR, detail, false),
    F ("progress", U32, progress, false),
    F ("note", STR, note, false),
    F ("code", STR, code, false),
    ARRAY ("queues", s_queue_rows.array, queues, false),
    ARRAY ("groups", s_group_rows.array, groups, false),
    ARRAY ("results", s_items, items, false),
    F ("count", U64, count, false),
    ARRAY ("schedules", s_schedule_rows.array, schedules, false),
    ARRAY ("keys", s_key_rows.array, keys, false),
    { NULL },
};

static const zf_table_field_t s_progress[] = {
    F ("id", ID, id, true),
    F ("progress", U32, progress, true),
    F ("note", STR, note, false),
    { NULL },
};

static const zf_table_field_t s_control[] = {
    F ("op", STR, op, true),
    F ("queue", STR, queue, true),
    ARRAY ("ids", s_ids, ids, false),
    F ("where", STR, where, false),
    F ("older", U64, older, false),
    F ("limit", U32, limit, false),
    F ("tag", U64, tag, false),
    F ("name", STR, name, false),
    VIEW ("spec"),
    { NULL },
};

//  The commands, indexed by zf_command_t.
static const struct {
    const char *name;       // frame 0
    const zf_table_t table; // frame 1
    bool bodies;            // one body frame per item follows
} s_commands[ZF_COMMAND_COUNT] = {
    [ZF_HELLO] = { "HELLO", { .fields = s_hello }, false },
    [ZF_WELCOME] = { "WELCOME", { .fields = s_welcome }, false },
    [ZF_PUT] = { "PUT", { .fields = s_put }, true },
    [ZF_CONFIRM] = { "CONFIRM", { .fields = s_confirm }, false },
    [ZF_CREDIT] = { "CREDIT", { .fields = s_credit }, false },
    [ZF_DELIVER] = { "DELIVER", { .fields = s_deliver }, true },
    [ZF_ACK] = { "ACK", { .fields = s_ack }, false },
    [ZF_NACK] = { "NACK", { .fields = s_nack }, false },
    [ZF_PING] = { "PING", { .fields = s_ping }, false },
    [ZF_PONG] = { "PONG", { .fields = s_empty }, false },
    [ZF_ERROR] = { "ERROR", { .fields = s_error }, false },
    [ZF_END] = { "END", { .fields = s_end }, false },
    [ZF_CANCEL] = { "CANCEL", { .fields = s_cancel }, false },
    [ZF_DONE] = { "DONE", { .fields = s_done }, true },
    [ZF_STATUS] = { "STATUS", { .fields = s_status }, false },
    [ZF_REPORT] = { "REPORT", { .fields = s_report }, true },
    [ZF_BYE] = { "BYE", { .fields = s_empty }, false },
    [ZF_PROGRESS] = { "PROGRESS", { .fields = s_progress }, false },
    [ZF_CONTROL] = { "CONTROL", { .fields = s_control }, false },
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

static const char *s_refusals[] = { "", "full", "no-queue", "results", "no-schedule", "invalid" };

const char *
zf_refusal_name (zf_refusal_t kind)
{
    return kind >= ZF_REFUSAL_NONE && kind < ZF_REFUSAL_OTHER ? s_refusals[kind] : "other";
}

zf_refusal_t
zf_refusal_parse (const char *name)
{
    for (int kind = ZF_REFUSAL_NONE; kind < ZF_REFUSAL_OTHER; kind++)
        if (streq (name, s_refusals[kind]))
            return (zf_refusal_t) kind;
    return ZF_REFUSAL_OTHER;
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

//  Room for one more entry of rows (an s_rows_t's array) in self, zeroed;
//  NULL if full or out of memory.
static void *
s_add_row (void *self, const zf_table_array_t *array)
{
    const s_rows_t *rows = (const s_rows_t *) array;
    uint32_t *count = (uint32_t *) ((char *) self + array->count);
    uint32_t *cap = (uint32_t *) ((char *) self + rows->cap);
    void **entries = (void **) ((char *) self + rows->entries);
    size_t size = array->size;
    if (*count >= array->max)
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
    return (zf_figures_t *) s_add_row (self, &s_queue_rows.array);
}

zf_group_figures_t *
zf_proto_add_group (zf_proto_t *self)
{
    return (zf_group_figures_t *) s_add_row (self, &s_group_rows.array);
}

zf_schedule_info_t *
zf_proto_add_schedule (zf_proto_t *self)
{
    return (zf_schedule_info_t *) s_add_row (self, &s_schedule_rows.array);
}

zf_key_figures_t *
zf_proto_add_key (zf_proto_t *self)
{
    return (zf_key_figures_t *) s_add_row (self, &s_key_rows.array);
}

zf_keyed_t *
zf_proto_add_keyed (zf_proto_t *self)
{
    return (zf_keyed_t *) s_add_row (self, &s_keyed_rows.array);
}

zf_done_t *
zf_proto_add_done (zf_proto_t *self)
{
    return (zf_done_t *) s_add_row (self, &s_done_rows.array);
}

//  --------------------------------------------------------------------------
//  Decoding

//  --------------------------------------------------------------------------
//  Decoding

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
    if (zf_table_read (&mp, &s_commands[command].table, self, 0, err)) {
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

//  --------------------------------------------------------------------------
//  Encoding

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
    zf_table_write (&pk, &s_commands[command].table, self);
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
