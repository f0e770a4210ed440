/*  zf_events: the broker's events. See zf_events.h and schemas/zfp.md §7. */
#include "zf_events.h"
#include "zf_alloc.h"
#include "zf_mp.h"
#include "zf_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

zf_stats_t *
zf_stats_new (void)
{
    return (zf_stats_t *) zf_alloc (sizeof (zf_stats_t));
}

void
zf_stats_destroy (zf_stats_t **self_p)
{
    zf_stats_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t q = 0; q < self->queues_cap; q++)
        free (self->queues[q].groups);
    free (self->queues);
    free (self->workers);
    free (self->ended);
    free (self->crashloops);
    free (self);
    *self_p = NULL;
}

void
zf_stats_clear (zf_stats_t *self)
{
    self->seq = 0;
    self->ts = 0;
    self->nqueues = self->nworkers = self->nended = self->ncrashloops = 0;
    self->lineages = self->rejected = self->late_acks = 0;
    memset (&self->journal, 0, sizeof self->journal);
}

//  Grows an array of entries of size bytes to hold one more; zeroes the
//  entries it adds.
static void *
s_grow (void *array, uint32_t *cap, uint32_t count, size_t size)
{
    if (count < *cap)
        return array;
    uint32_t grown = *cap ? *cap * 2 : 16;
    array = zf_realloc (array, grown * size);
    memset ((char *) array + *cap * size, 0, (grown - *cap) * size);
    *cap = grown;
    return array;
}

zf_stats_queue_t *
zf_stats_add_queue (zf_stats_t *self)
{
    self->queues = (zf_stats_queue_t *) s_grow (self->queues, &self->queues_cap, self->nqueues,
                                                sizeof *self->queues);
    zf_stats_queue_t *queue = &self->queues[self->nqueues++];
    zf_stats_group_t *groups = queue->groups; // kept for reuse
    uint32_t cap = queue->groups_cap;
    memset (queue, 0, sizeof *queue);
    queue->groups = groups;
    queue->groups_cap = cap;
    return queue;
}

zf_stats_group_t *
zf_stats_add_group (zf_stats_queue_t *queue)
{
    queue->groups = (zf_stats_group_t *) s_grow (queue->groups, &queue->groups_cap, queue->ngroups,
                                                 sizeof *queue->groups);
    zf_stats_group_t *group = &queue->groups[queue->ngroups++];
    memset (group, 0, sizeof *group);
    return group;
}

zf_stats_worker_t *
zf_stats_add_worker (zf_stats_t *self)
{
    self->workers = (zf_stats_worker_t *) s_grow (self->workers, &self->workers_cap, self->nworkers,
                                                  sizeof *self->workers);
    zf_stats_worker_t *worker = &self->workers[self->nworkers++];
    memset (worker, 0, sizeof *worker);
    return worker;
}

void
zf_stats_add_ended (zf_stats_t *self, const char *actor)
{
    self->ended = (char (*)[ZF_NAME_MAX + 1])
        s_grow (self->ended, &self->ended_cap, self->nended, sizeof *self->ended);
    snprintf (self->ended[self->nended++], ZF_NAME_MAX + 1, "%s", actor);
}

void
zf_stats_add_crashloop (zf_stats_t *self, const char *worker)
{
    self->crashloops = (char (*)[ZF_NAME_MAX + 1]) s_grow (
        self->crashloops, &self->crashloops_cap, self->ncrashloops, sizeof *self->crashloops);
    snprintf (self->crashloops[self->ncrashloops++], ZF_NAME_MAX + 1, "%s", worker);
}

//  --------------------------------------------------------------------------
//  Encoding

static void
s_pack_uint (msgpack_packer *pk, const char *key, uint64_t value)
{
    zf_mp_pack_cstr (pk, key);
    msgpack_pack_uint64 (pk, value);
}

static void
s_pack_str (msgpack_packer *pk, const char *key, const char *value)
{
    zf_mp_pack_cstr (pk, key);
    zf_mp_pack_cstr (pk, value);
}

//  Every event's map opens with seq and ts.
static void
s_begin (msgpack_packer *pk, uint32_t fields, uint64_t seq, int64_t ts)
{
    msgpack_pack_map (pk, fields + 2);
    s_pack_uint (pk, "seq", seq);
    zf_mp_pack_cstr (pk, "ts");
    msgpack_pack_int64 (pk, ts);
}

void
zf_stats_journal_encode (const zf_stats_journal_t *j, msgpack_packer *pk)
{
    msgpack_pack_map (pk, j->failed[0] ? 6 : 5);
    s_pack_uint (pk, "written", j->written);
    s_pack_uint (pk, "durable", j->durable);
    s_pack_uint (pk, "waiting", j->waiting);
    s_pack_uint (pk, "compactions", j->compactions);
    zf_mp_pack_cstr (pk, "compaction_ms");
    msgpack_pack_int64 (pk, j->compaction_ms);
    if (j->failed[0])
        s_pack_str (pk, "failed", j->failed);
}

void
zf_stats_encode (const zf_stats_t *self, msgpack_packer *pk)
{
    // crashloops only when there are some: a quiet broker's event is as before.
    s_begin (pk, 6 + self->journal.present + (self->ncrashloops > 0), self->seq, self->ts);
    zf_mp_pack_cstr (pk, "queues");
    msgpack_pack_array (pk, self->nqueues);
    for (uint32_t q = 0; q < self->nqueues; q++) {
        const zf_stats_queue_t *queue = &self->queues[q];
        const zf_figures_t *f = &queue->figures;
        msgpack_pack_map (pk, 10 + f->paused); // paused only when it is
        s_pack_str (pk, "name", f->name);
        s_pack_uint (pk, "depth", f->depth);
        s_pack_uint (pk, "inflight", f->inflight);
        s_pack_uint (pk, "put", f->put);
        s_pack_uint (pk, "ack", f->ack);
        s_pack_uint (pk, "nack", f->nack);
        s_pack_uint (pk, "dead", f->dead);
        zf_mp_pack_cstr (pk, "put_rate");
        msgpack_pack_double (pk, queue->put_rate);
        zf_mp_pack_cstr (pk, "ack_rate");
        msgpack_pack_double (pk, queue->ack_rate);
        if (f->paused) {
            zf_mp_pack_cstr (pk, "paused");
            msgpack_pack_true (pk);
        }
        zf_mp_pack_cstr (pk, "groups");
        msgpack_pack_array (pk, queue->ngroups);
        for (uint32_t g = 0; g < queue->ngroups; g++) {
            const zf_stats_group_t *group = &queue->groups[g];
            // Flow control's figures only where there is some: as before else.
            msgpack_pack_map (pk, 4 + (group->throttled > 0) + 2 * (group->keys > 0));
            s_pack_str (pk, "name", group->name);
            s_pack_uint (pk, "workers", group->workers);
            s_pack_uint (pk, "ready", group->ready);
            s_pack_uint (pk, "acked", group->acked);
            if (group->throttled)
                s_pack_uint (pk, "throttled", group->throttled);
            if (group->keys) {
                s_pack_uint (pk, "keys", group->keys);
                zf_mp_pack_cstr (pk, "top");
                msgpack_pack_array (pk, group->ntop);
                for (uint32_t k = 0; k < group->ntop; k++) {
                    const zf_stats_key_t *key = &group->top[k];
                    msgpack_pack_map (pk, 3 + key->throttled);
                    s_pack_str (pk, "key", key->key);
                    s_pack_uint (pk, "ready", key->ready);
                    s_pack_uint (pk, "inflight", key->inflight);
                    if (key->throttled) {
                        zf_mp_pack_cstr (pk, "throttled");
                        msgpack_pack_true (pk);
                    }
                }
            }
        }
    }
    zf_mp_pack_cstr (pk, "workers");
    msgpack_pack_array (pk, self->nworkers);
    for (uint32_t w = 0; w < self->nworkers; w++) {
        const zf_stats_worker_t *worker = &self->workers[w];
        msgpack_pack_map (pk, worker->figures ? 8 : 7);
        s_pack_str (pk, "actor", worker->actor);
        s_pack_uint (pk, "worker", worker->worker);
        s_pack_str (pk, "host", worker->host);
        s_pack_uint (pk, "pid", worker->pid);
        s_pack_uint (pk, "inflight", worker->inflight);
        s_pack_uint (pk, "done", worker->done);
        s_pack_uint (pk, "failed", worker->failed);
        if (worker->figures) {
            // Already msgpack (the broker checked it is one map): as it is.
            zf_mp_pack_cstr (pk, "figures");
            msgpack_pack_str_body (pk, worker->figures, worker->figures_size);
        }
    }
    s_pack_uint (pk, "lineages", self->lineages);
    zf_mp_pack_cstr (pk, "ended");
    msgpack_pack_array (pk, self->nended);
    for (uint32_t e = 0; e < self->nended; e++)
        zf_mp_pack_cstr (pk, self->ended[e]);
    if (self->ncrashloops) {
        zf_mp_pack_cstr (pk, "crashloops");
        msgpack_pack_array (pk, self->ncrashloops);
        for (uint32_t e = 0; e < self->ncrashloops; e++)
            zf_mp_pack_cstr (pk, self->crashloops[e]);
    }
    s_pack_uint (pk, "rejected", self->rejected);
    s_pack_uint (pk, "late_acks", self->late_acks);
    if (self->journal.present) {
        zf_mp_pack_cstr (pk, "journal");
        zf_stats_journal_encode (&self->journal, pk);
    }
}

void
zf_event_worker (msgpack_packer *pk, uint64_t seq, int64_t ts, const char *actor, uint32_t worker,
                 const char *host, uint64_t pid, const char *reason)
{
    s_begin (pk, 5, seq, ts);
    s_pack_str (pk, "actor", actor);
    s_pack_uint (pk, "worker", worker);
    s_pack_str (pk, "host", host);
    s_pack_uint (pk, "pid", pid);
    s_pack_str (pk, "reason", reason);
}

void
zf_event_crashloop (msgpack_packer *pk, uint64_t seq, int64_t ts, const char *actor,
                    uint32_t worker, const char *host, uint64_t pid, uint32_t deaths,
                    uint64_t backoff, const char *reason)
{
    s_begin (pk, 7, seq, ts);
    s_pack_str (pk, "actor", actor);
    s_pack_uint (pk, "worker", worker);
    s_pack_str (pk, "host", host);
    s_pack_uint (pk, "pid", pid);
    s_pack_uint (pk, "deaths", deaths);
    s_pack_uint (pk, "backoff", backoff);
    s_pack_str (pk, "reason", reason);
}

void
zf_event_dead (msgpack_packer *pk, uint64_t seq, int64_t ts, const zf_id_t *id, const char *queue,
               const char *group, uint32_t attempt, const char *reason)
{
    char hex[ZF_ID_HEX];
    s_begin (pk, 5, seq, ts);
    s_pack_str (pk, "id", zf_id_format (id, hex));
    s_pack_str (pk, "queue", queue);
    s_pack_str (pk, "group", group);
    s_pack_uint (pk, "attempt", attempt);
    s_pack_str (pk, "reason", reason);
}

void
zf_event_protocol (msgpack_packer *pk, uint64_t seq, int64_t ts, const char *socket,
                   const char *from, const char *reason)
{
    s_begin (pk, 3, seq, ts);
    s_pack_str (pk, "socket", socket);
    s_pack_str (pk, "from", from);
    s_pack_str (pk, "reason", reason);
}

void
zf_event_auth (msgpack_packer *pk, uint64_t seq, int64_t ts, const char *address, const char *key,
               const char *reason)
{
    s_begin (pk, 3, seq, ts);
    s_pack_str (pk, "address", address);
    s_pack_str (pk, "key", key);
    s_pack_str (pk, "reason", reason);
}

size_t
zf_event_data_begin (msgpack_sbuffer *buffer, msgpack_packer *pk, uint64_t seq, int64_t ts,
                     const char *queue)
{
    s_begin (pk, 2, seq, ts);
    s_pack_str (pk, "queue", queue);
    zf_mp_pack_cstr (pk, "items");
    static const char array16[3] = { (char) 0xdc, 0, 0 }; // the count comes last
    size_t count_at = buffer->size + 1;
    msgpack_sbuffer_write (buffer, array16, sizeof array16);
    return count_at;
}

void
zf_event_data_add (msgpack_packer *pk, const zf_id_t *id, int64_t created, const void *body,
                   size_t size)
{
    char hex[ZF_ID_HEX];
    msgpack_pack_map (pk, 3);
    s_pack_str (pk, "id", zf_id_format (id, hex));
    zf_mp_pack_cstr (pk, "created");
    msgpack_pack_int64 (pk, created);
    zf_mp_pack_cstr (pk, "body");
    msgpack_pack_bin (pk, size);
    msgpack_pack_bin_body (pk, body, size);
}

void
zf_event_data_end (msgpack_sbuffer *buffer, size_t count_at, uint32_t count)
{
    uint8_t *at = (uint8_t *) buffer->data + count_at;
    at[0] = (uint8_t) (count >> 8);
    at[1] = (uint8_t) count;
}

//  --------------------------------------------------------------------------
//  Decoding: a table for each map of the event (zf_table). Read as a
//  monitor reads it: errors name the path to the field, and a string longer
//  than its buffer is cut to it, so that one long name of a newer broker
//  does not blind zflow top or /metrics to the rest.

static void *
s_add_queue (void *base, const zf_table_array_t *array)
{
    return zf_stats_add_queue ((zf_stats_t *) base);
}

static void *
s_add_group (void *base, const zf_table_array_t *array)
{
    return zf_stats_add_group ((zf_stats_queue_t *) base);
}

static void *
s_add_worker (void *base, const zf_table_array_t *array)
{
    return zf_stats_add_worker ((zf_stats_t *) base);
}

static void *
s_add_ended (void *base, const zf_table_array_t *array)
{
    zf_stats_t *self = (zf_stats_t *) base;
    zf_stats_add_ended (self, "");
    return self->ended[self->nended - 1];
}

static void *
s_add_crashloop (void *base, const zf_table_array_t *array)
{
    zf_stats_t *self = (zf_stats_t *) base;
    zf_stats_add_crashloop (self, "");
    return self->crashloops[self->ncrashloops - 1];
}

//  An array of the event's maps, or names, each added by add: as many as
//  the event holds (zf_mp refuses a count that cannot fit in it).
#define ROWS(entry_t, entries, s, n, adder)                                                        \
    {                                                                                              \
        .entry = { .type = ZF_TABLE_MAP, .table = &(entries) }, .size = sizeof (entry_t),          \
        .count = offsetof (s, n), .max = UINT32_MAX, .add = (adder)                                \
    }
#define NAMES(n, adder)                                                                            \
    {                                                                                              \
        .entry = { .type = ZF_TABLE_STR, .size = ZF_NAME_MAX + 1 }, .size = ZF_NAME_MAX + 1,       \
        .count = offsetof (zf_stats_t, n), .max = UINT32_MAX, .add = (adder)                       \
    }
#define ARRAY(k, s, m, a)                                                                          \
    {                                                                                              \
        .key = (k), .type = ZF_TABLE_ARRAY, .offset = offsetof (s, m), .array = &(a)               \
    }

#define K(k, t, m) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_stats_key_t, m, false)
static const zf_table_field_t s_key_fields[] = {
    K ("key", STR, key),
    K ("ready", U64, ready),
    K ("inflight", U64, inflight),
    K ("throttled", BOOL, throttled),
    { NULL },
};
static const zf_table_t s_key = { .fields = s_key_fields };

//  A group's busiest keys: a broker sends ZF_TOP_KEYS at most, and more
//  are not kept.
static const zf_table_array_t s_top = {
    .entry = { .type = ZF_TABLE_MAP, .table = &s_key },
    .size = sizeof (zf_stats_key_t),
    .count = offsetof (zf_stats_group_t, ntop),
    .max = ZF_TOP_KEYS,
    .skip_past_max = true,
};

#define G(k, t, m) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_stats_group_t, m, false)
static const zf_table_field_t s_group_fields[] = {
    G ("name", STR, name),
    G ("workers", U64, workers),
    G ("ready", U64, ready),
    G ("acked", U64, acked),
    G ("throttled", U64, throttled),
    G ("keys", U64, keys),
    ARRAY ("top", zf_stats_group_t, top, s_top),
    { NULL },
};
static const zf_table_t s_group = { .fields = s_group_fields };
static const zf_table_array_t s_groups =
    ROWS (zf_stats_group_t, s_group, zf_stats_queue_t, ngroups, s_add_group);

//  A queue's consumers are not in the event: they are its groups' workers.
static int
s_count_consumers (void *base, zf_error_t *err)
{
    zf_stats_queue_t *queue = (zf_stats_queue_t *) base;
    for (uint32_t g = 0; g < queue->ngroups; g++)
        queue->figures.consumers += (uint32_t) queue->groups[g].workers;
    return 0;
}

#define Q(k, t, m) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_stats_queue_t, m, false)
static const zf_table_field_t s_queue_fields[] = {
    Q ("name", STR, figures.name),
    Q ("depth", U64, figures.depth),
    Q ("inflight", U64, figures.inflight),
    Q ("put", U64, figures.put),
    Q ("ack", U64, figures.ack),
    Q ("nack", U64, figures.nack),
    Q ("dead", U64, figures.dead),
    Q ("put_rate", DOUBLE, put_rate),
    Q ("ack_rate", DOUBLE, ack_rate),
    Q ("paused", BOOL, figures.paused),
    ARRAY ("groups", zf_stats_queue_t, groups, s_groups),
    { NULL },
};
static const zf_table_t s_queue = { .fields = s_queue_fields, .check = s_count_consumers };
static const zf_table_array_t s_queues =
    ROWS (zf_stats_queue_t, s_queue, zf_stats_t, nqueues, s_add_queue);

#define W(k, t, m) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_stats_worker_t, m, false)
static const zf_table_field_t s_worker_fields[] = {
    W ("actor", STR, actor),
    W ("worker", U32, worker),
    W ("host", STR, host),
    W ("pid", U64, pid),
    W ("inflight", U64, inflight),
    W ("done", U64, done),
    W ("failed", U64, failed),
    // Its own figures, as the broker had them: any map, viewed.
    { .key = "figures",
      .type = ZF_TABLE_VIEW,
      .offset = offsetof (zf_stats_worker_t, figures),
      .length = offsetof (zf_stats_worker_t, figures_size) },
    { NULL },
};
static const zf_table_t s_worker = { .fields = s_worker_fields };
static const zf_table_array_t s_workers =
    ROWS (zf_stats_worker_t, s_worker, zf_stats_t, nworkers, s_add_worker);

//  A journal's map says that the broker keeps one.
static int
s_journal_came (void *base, zf_error_t *err)
{
    ((zf_stats_journal_t *) base)->present = true;
    return 0;
}

#define J(k, t, m) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_stats_journal_t, m, false)
static const zf_table_field_t s_journal_fields[] = {
    J ("written", U64, written),
    J ("durable", U64, durable),
    J ("waiting", U64, waiting),
    J ("compactions", U64, compactions),
    J ("compaction_ms", I64, compaction_ms),
    J ("failed", STR, failed),
    { NULL },
};
static const zf_table_t s_journal = { .fields = s_journal_fields, .check = s_journal_came };

static const zf_table_array_t s_ended = NAMES (nended, s_add_ended);
static const zf_table_array_t s_crashloops = NAMES (ncrashloops, s_add_crashloop);

#define S(k, t, m) ZF_TABLE_FIELD (k, ZF_TABLE_##t, zf_stats_t, m, false)
static const zf_table_field_t s_event_fields[] = {
    S ("seq", U64, seq),
    S ("ts", I64, ts),
    ARRAY ("queues", zf_stats_t, queues, s_queues),
    ARRAY ("workers", zf_stats_t, workers, s_workers),
    S ("lineages", U64, lineages),
    ARRAY ("ended", zf_stats_t, ended, s_ended),
    ARRAY ("crashloops", zf_stats_t, crashloops, s_crashloops),
    S ("rejected", U64, rejected),
    S ("late_acks", U64, late_acks),
    { .key = "journal",
      .type = ZF_TABLE_MAP,
      .offset = offsetof (zf_stats_t, journal),
      .table = &s_journal },
    { NULL },
};
static const zf_table_t s_event = { .fields = s_event_fields };

int
zf_stats_decode (zf_stats_t *self, const uint8_t *data, size_t size, zf_error_t *err)
{
    zf_stats_clear (self);
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    // Past its header an error names its field; before, only the event
    // can be named.
    zf_mp_t probe = mp;
    uint32_t count;
    if (zf_mp_map (&probe, &count, err)) {
        zf_error_prefix (err, "stats: the event: ");
        return -1;
    }
    if (zf_table_read (&mp, &s_event, self, ZF_TABLE_PATHS | ZF_TABLE_CUT, err)) {
        zf_error_prefix (err, "stats: ");
        return -1;
    }
    if (zf_mp_left (&mp))
        return zf_error_set (err, ZF_EVALUE, "stats: bytes after the event's map");
    return 0;
}
