/*  zf_events: the broker's events. See zf_events.h and schemas/zfp.md §7. */
#include "zf_events.h"
#include "zf_alloc.h"
#include "zf_mp.h"

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
//  Decoding

//  Where the decoder is, for messages: "queues[2].depth".
typedef struct {
    zf_mp_t mp;      // the reader
    char where[160]; // the field being read
    zf_error_t *err; // what went wrong
} s_decoder_t;

static int
s_fail (s_decoder_t *d, zf_error_t *inner)
{
    return zf_error_set (d->err, inner ? inner->code : ZF_ETYPE, "stats: %s: %s", d->where,
                         inner ? inner->text : "malformed");
}

static int
s_read_uint (s_decoder_t *d, uint64_t *value)
{
    zf_error_t inner;
    return zf_mp_uint (&d->mp, value, &inner) ? s_fail (d, &inner) : 0;
}

static int
s_read_int (s_decoder_t *d, int64_t *value)
{
    zf_error_t inner;
    return zf_mp_int (&d->mp, value, &inner) ? s_fail (d, &inner) : 0;
}

static int
s_read_str (s_decoder_t *d, char *out, size_t size)
{
    zf_error_t inner;
    const char *str;
    uint32_t len;
    if (zf_mp_str (&d->mp, &str, &len, &inner))
        return s_fail (d, &inner);
    snprintf (out, size, "%.*s", (int) len, str);
    return 0;
}

static int
s_read_bool (s_decoder_t *d, bool *value)
{
    zf_error_t inner;
    return zf_mp_bool (&d->mp, value, &inner) ? s_fail (d, &inner) : 0;
}

static int
s_read_double (s_decoder_t *d, double *value)
{
    zf_error_t inner;
    return zf_mp_double (&d->mp, value, &inner) ? s_fail (d, &inner) : 0;
}

//  Reads a map's header or an array's, as `kind` says.
static int
s_read_head (s_decoder_t *d, bool map, uint32_t *count)
{
    zf_error_t inner;
    int rc = map ? zf_mp_map (&d->mp, count, &inner) : zf_mp_array (&d->mp, count, &inner);
    return rc ? s_fail (d, &inner) : 0;
}

//  Reads the next key of a map into d->where after prefix; -1 if the key
//  is not a string.
static int
s_read_key (s_decoder_t *d, const char *prefix, const char **key, uint32_t *len)
{
    zf_error_t inner;
    if (zf_mp_str (&d->mp, key, len, &inner)) {
        snprintf (d->where, sizeof d->where, "%.100s(a key)", prefix);
        return s_fail (d, &inner);
    }
    snprintf (d->where, sizeof d->where, "%.100s%.*s", prefix, (int) (*len > 40 ? 40 : *len), *key);
    return 0;
}

static bool
s_is (const char *key, uint32_t len, const char *name)
{
    return strlen (name) == len && memcmp (key, name, len) == 0;
}

static int
s_skip (s_decoder_t *d)
{
    zf_error_t inner;
    return zf_mp_skip (&d->mp, ZF_MP_MAX_DEPTH, &inner) ? s_fail (d, &inner) : 0;
}

static int
s_read_key_row (s_decoder_t *d, zf_stats_key_t *row, const char *prefix)
{
    uint32_t fields;
    if (s_read_head (d, true, &fields))
        return -1;
    for (uint32_t f = 0; f < fields; f++) {
        const char *key;
        uint32_t len;
        if (s_read_key (d, prefix, &key, &len))
            return -1;
        int rc = s_is (key, len, "key")         ? s_read_str (d, row->key, sizeof row->key)
                 : s_is (key, len, "ready")     ? s_read_uint (d, &row->ready)
                 : s_is (key, len, "inflight")  ? s_read_uint (d, &row->inflight)
                 : s_is (key, len, "throttled") ? s_read_bool (d, &row->throttled)
                                                : s_skip (d);
        if (rc)
            return -1;
    }
    return 0;
}

static int
s_read_group (s_decoder_t *d, zf_stats_group_t *group, const char *prefix)
{
    uint32_t fields;
    if (s_read_head (d, true, &fields))
        return -1;
    for (uint32_t f = 0; f < fields; f++) {
        const char *key;
        uint32_t len;
        if (s_read_key (d, prefix, &key, &len))
            return -1;
        int rc;
        if (s_is (key, len, "top")) {
            uint32_t n;
            rc = s_read_head (d, false, &n);
            for (uint32_t k = 0; k < n && rc == 0; k++) {
                char at[200];
                snprintf (at, sizeof at, "%.150stop[%u].", prefix, k);
                if (group->ntop < ZF_TOP_KEYS)
                    rc = s_read_key_row (d, &group->top[group->ntop++], at);
                else
                    rc = s_skip (d); // more than a broker sends: not kept
            }
        }
        else
            rc = s_is (key, len, "name")        ? s_read_str (d, group->name, sizeof group->name)
                 : s_is (key, len, "workers")   ? s_read_uint (d, &group->workers)
                 : s_is (key, len, "ready")     ? s_read_uint (d, &group->ready)
                 : s_is (key, len, "acked")     ? s_read_uint (d, &group->acked)
                 : s_is (key, len, "throttled") ? s_read_uint (d, &group->throttled)
                 : s_is (key, len, "keys")      ? s_read_uint (d, &group->keys)
                                                : s_skip (d);
        if (rc)
            return -1;
    }
    return 0;
}

static int
s_read_queue (s_decoder_t *d, zf_stats_queue_t *queue, const char *prefix)
{
    zf_figures_t *fig = &queue->figures;
    uint32_t fields;
    if (s_read_head (d, true, &fields))
        return -1;
    for (uint32_t f = 0; f < fields; f++) {
        const char *key;
        uint32_t len, n;
        if (s_read_key (d, prefix, &key, &len))
            return -1;
        int rc;
        if (s_is (key, len, "groups")) {
            rc = s_read_head (d, false, &n);
            for (uint32_t g = 0; g < n && rc == 0; g++) {
                char at[160];
                snprintf (at, sizeof at, "%.100sgroups[%u].", prefix, g);
                zf_stats_group_t *group = zf_stats_add_group (queue);
                rc = s_read_group (d, group, at);
                fig->consumers += (uint32_t) group->workers;
            }
        }
        else
            rc = s_is (key, len, "name")       ? s_read_str (d, fig->name, sizeof fig->name)
                 : s_is (key, len, "depth")    ? s_read_uint (d, &fig->depth)
                 : s_is (key, len, "inflight") ? s_read_uint (d, &fig->inflight)
                 : s_is (key, len, "put")      ? s_read_uint (d, &fig->put)
                 : s_is (key, len, "ack")      ? s_read_uint (d, &fig->ack)
                 : s_is (key, len, "nack")     ? s_read_uint (d, &fig->nack)
                 : s_is (key, len, "dead")     ? s_read_uint (d, &fig->dead)
                 : s_is (key, len, "put_rate") ? s_read_double (d, &queue->put_rate)
                 : s_is (key, len, "ack_rate") ? s_read_double (d, &queue->ack_rate)
                 : s_is (key, len, "paused")   ? s_read_bool (d, &fig->paused)
                                               : s_skip (d);
        if (rc)
            return -1;
    }
    return 0;
}

static int
s_read_worker (s_decoder_t *d, zf_stats_worker_t *worker, const char *prefix)
{
    uint32_t fields;
    if (s_read_head (d, true, &fields))
        return -1;
    for (uint32_t f = 0; f < fields; f++) {
        const char *key;
        uint32_t len;
        if (s_read_key (d, prefix, &key, &len))
            return -1;
        int rc;
        uint64_t number;
        if (s_is (key, len, "figures")) {
            const uint8_t *start = d->mp.pos;
            uint32_t count;
            zf_mp_t probe = d->mp;
            rc = zf_mp_map (&probe, &count, NULL) ? s_fail (d, NULL) : s_skip (d);
            worker->figures = rc ? NULL : start;
            worker->figures_size = rc ? 0 : (uint32_t) (d->mp.pos - start);
        }
        else if (s_is (key, len, "worker")) {
            rc = s_read_uint (d, &number);
            worker->worker = (uint32_t) number;
        }
        else
            rc = s_is (key, len, "actor")      ? s_read_str (d, worker->actor, sizeof worker->actor)
                 : s_is (key, len, "host")     ? s_read_str (d, worker->host, sizeof worker->host)
                 : s_is (key, len, "pid")      ? s_read_uint (d, &worker->pid)
                 : s_is (key, len, "inflight") ? s_read_uint (d, &worker->inflight)
                 : s_is (key, len, "done")     ? s_read_uint (d, &worker->done)
                 : s_is (key, len, "failed")   ? s_read_uint (d, &worker->failed)
                                               : s_skip (d);
        if (rc)
            return -1;
    }
    return 0;
}

static int
s_read_journal (s_decoder_t *d, zf_stats_journal_t *j)
{
    uint32_t fields;
    if (s_read_head (d, true, &fields))
        return -1;
    j->present = true;
    for (uint32_t f = 0; f < fields; f++) {
        const char *key;
        uint32_t len;
        if (s_read_key (d, "journal.", &key, &len))
            return -1;
        int rc = s_is (key, len, "written")         ? s_read_uint (d, &j->written)
                 : s_is (key, len, "durable")       ? s_read_uint (d, &j->durable)
                 : s_is (key, len, "waiting")       ? s_read_uint (d, &j->waiting)
                 : s_is (key, len, "compactions")   ? s_read_uint (d, &j->compactions)
                 : s_is (key, len, "compaction_ms") ? s_read_int (d, &j->compaction_ms)
                 : s_is (key, len, "failed")        ? s_read_str (d, j->failed, sizeof j->failed)
                                                    : s_skip (d);
        if (rc)
            return -1;
    }
    return 0;
}

int
zf_stats_decode (zf_stats_t *self, const uint8_t *data, size_t size, zf_error_t *err)
{
    zf_stats_clear (self);
    s_decoder_t d = { .err = err };
    zf_mp_init (&d.mp, data, size);
    snprintf (d.where, sizeof d.where, "the event");
    uint32_t count, n;
    if (s_read_head (&d, true, &count))
        return -1;
    for (uint32_t k = 0; k < count; k++) {
        const char *key;
        uint32_t len;
        if (s_read_key (&d, "", &key, &len))
            return -1;
        int rc = 0;
        if (s_is (key, len, "queues") || s_is (key, len, "workers") || s_is (key, len, "ended") ||
            s_is (key, len, "crashloops")) {
            bool queues = s_is (key, len, "queues"), workers = s_is (key, len, "workers");
            bool loops = s_is (key, len, "crashloops");
            rc = s_read_head (&d, false, &n);
            for (uint32_t i = 0; i < n && rc == 0; i++) {
                char at[160];
                snprintf (at, sizeof at, "%s[%u].",
                          queues    ? "queues"
                          : workers ? "workers"
                          : loops   ? "crashloops"
                                    : "ended",
                          i);
                if (queues)
                    rc = s_read_queue (&d, zf_stats_add_queue (self), at);
                else if (workers)
                    rc = s_read_worker (&d, zf_stats_add_worker (self), at);
                else {
                    char name[ZF_NAME_MAX + 1];
                    snprintf (d.where, sizeof d.where, "%s[%u]", loops ? "crashloops" : "ended", i);
                    rc = s_read_str (&d, name, sizeof name);
                    if (rc == 0 && loops)
                        zf_stats_add_crashloop (self, name);
                    else if (rc == 0)
                        zf_stats_add_ended (self, name);
                }
            }
        }
        else if (s_is (key, len, "journal"))
            rc = s_read_journal (&d, &self->journal);
        else
            rc = s_is (key, len, "seq")         ? s_read_uint (&d, &self->seq)
                 : s_is (key, len, "ts")        ? s_read_int (&d, &self->ts)
                 : s_is (key, len, "lineages")  ? s_read_uint (&d, &self->lineages)
                 : s_is (key, len, "rejected")  ? s_read_uint (&d, &self->rejected)
                 : s_is (key, len, "late_acks") ? s_read_uint (&d, &self->late_acks)
                                                : s_skip (&d);
        if (rc)
            return -1;
    }
    if (zf_mp_left (&d.mp))
        return zf_error_set (err, ZF_EVALUE, "stats: bytes after the event's map");
    return 0;
}
