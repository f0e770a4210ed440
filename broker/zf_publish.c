/*  zf_publish: the broker's events. See zf_publish.h. */
#include "zf_publish.h"
#include "zf_alloc.h"
#include "zf_events.h"

#define BATCH_ITEMS_MAX 1024  // items in one data event at most
#define BATCH_BYTES_MAX 16384 // bytes after which a data event goes out
#define SAMPLES_MAX     4     // distinct sample rates of one queue

//  A data event being filled: its items array's count is written as it
//  is sent.
typedef struct {
    msgpack_sbuffer buffer; // the event's map
    msgpack_packer pk;      // writes into buffer
    uint32_t count;         // items in it; 0 when none is being filled
    size_t count_at;        // offset of the items array's 16-bit count
} s_batch_t;

//  The publisher's state of one queue (queue->tap).
typedef struct {
    bool tapped;                      // someone subscribes to data.NAME
    char data_topic[ZF_NAME_MAX + 8]; // "data.NAME"
    uint64_t data_seq;                // items sent on it
    s_batch_t data;                   // its data event being filled
    uint32_t samples[SAMPLES_MAX];    // N of each sample.N.data.NAME subscribed to
    uint32_t nsamples;                // entries in samples
    uint64_t last_put;                // put at the last stats event
    uint64_t last_acked;              // acked at the last stats event
} s_tap_t;

//  An event being written.
typedef struct {
    msgpack_sbuffer buffer; // the event's map
    msgpack_packer pk;      // writes into buffer
} s_event_t;

//  The next sequence number of topic: each topic numbers its events 1, 2,
//  3..., so a subscriber that sees a gap knows how many of that topic it
//  missed, whatever else it subscribes to.
static uint64_t
s_topic_seq (zf_server_t *server, const char *topic)
{
    uintptr_t seq = (uintptr_t) zhashx_lookup (server->topic_seq, topic) + 1;
    zhashx_update (server->topic_seq, topic, (void *) seq);
    return seq;
}

static void
s_event_begin (s_event_t *event)
{
    msgpack_sbuffer_init (&event->buffer);
    event->buffer.data = (char *) malloc (256); // most events are small: not 8 KiB each
    event->buffer.alloc = event->buffer.data ? 256 : 0;
    msgpack_packer_init (&event->pk, &event->buffer, msgpack_sbuffer_write);
}

static void
s_send (zf_server_t *server, const char *topic, const void *data, size_t size)
{
    void *events = zsock_resolve (server->events);
    zmq_send (events, topic, strlen (topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (events, data, size, ZMQ_DONTWAIT);
}

//  Sends the event; the data events being filled go first.
static void
s_event_send (zf_server_t *server, s_event_t *event, const char *topic)
{
    zf_publish_flush (server);
    s_send (server, topic, event->buffer.data, event->buffer.size);
    msgpack_sbuffer_destroy (&event->buffer);
}

void
zf_publish_worker (zf_server_t *server, const char *topic, zf_session_t *session,
                   const char *reason)
{
    s_event_t event;
    s_event_begin (&event);
    zf_event_worker (&event.pk, s_topic_seq (server, topic), zclock_time (), session->name,
                     session->number, session->host, session->pid, reason);
    s_event_send (server, &event, topic);
}

void
zf_publish_crashloop (zf_server_t *server, const char *actor, uint32_t worker, uint64_t pid,
                      uint32_t deaths, uint64_t backoff, const char *reason)
{
    char *host = zsys_hostname ();
    s_event_t event;
    s_event_begin (&event);
    zf_event_crashloop (&event.pk, s_topic_seq (server, "actor.crashloop"), zclock_time (), actor,
                        worker, host ? host : "", pid, deaths, backoff, reason);
    s_event_send (server, &event, "actor.crashloop");
    zstr_free (&host);
}

void
zf_publish_rejected (zf_server_t *server, const char *socket, const char *from, const char *reason)
{
    server->rejected++;
    s_event_t event;
    s_event_begin (&event);
    zf_event_protocol (&event.pk, s_topic_seq (server, "error.protocol"), zclock_time (), socket,
                       from, reason);
    s_event_send (server, &event, "error.protocol");
}

void
zf_publish_dead (zf_server_t *server, zf_delivery_t *d)
{
    char topic[ZF_NAME_MAX + 8];
    snprintf (topic, sizeof topic, "dead.%s", d->msg->queue->name);
    s_event_t event;
    s_event_begin (&event);
    zf_event_dead (&event.pk, s_topic_seq (server, topic), zclock_time (), &d->msg->id,
                   d->msg->queue->name, d->group->name, d->attempt,
                   d->msg->reason ? d->msg->reason : "");
    s_event_send (server, &event, topic);
}

void
zf_publish_auth (zf_server_t *server, const char *address, const char *key, const char *reason)
{
    server->rejected++;
    s_event_t event;
    s_event_begin (&event);
    zf_event_auth (&event.pk, s_topic_seq (server, "auth.refused"), zclock_time (), address, key,
                   reason);
    s_event_send (server, &event, "auth.refused");
}

//  --------------------------------------------------------------------------
//  Data taps

//  Whether the subscriptions ask for data.NAME (an empty subscription, all
//  topics, asks for events only: data taps are asked for by name), and the
//  samples asked for: sample.N.data.NAME is one item in N.
static void
s_update_taps (zf_server_t *server, s_tap_t *tap)
{
    tap->tapped = false;
    tap->nsamples = 0;
    for (void *item = zhashx_first (server->subscriptions); item;
         item = zhashx_next (server->subscriptions)) {
        const char *prefix = (const char *) zhashx_cursor (server->subscriptions);
        unsigned every;
        int end = 0;
        if (*prefix && strncmp (tap->data_topic, prefix, strlen (prefix)) == 0)
            tap->tapped = true;
        else if (sscanf (prefix, "sample.%u.%n", &every, &end) == 1 && end && every > 1 &&
                 streq (prefix + end, tap->data_topic) && tap->nsamples < SAMPLES_MAX)
            tap->samples[tap->nsamples++] = every;
    }
}

void
zf_publish_queue (zf_server_t *server, zf_queue_t *queue)
{
    s_tap_t *tap = (s_tap_t *) zf_alloc (sizeof (s_tap_t));
    snprintf (tap->data_topic, sizeof tap->data_topic, "data.%s", queue->name);
    msgpack_sbuffer_init (&tap->data.buffer);
    msgpack_packer_init (&tap->data.pk, &tap->data.buffer, msgpack_sbuffer_write);
    s_update_taps (server, tap);
    queue->tap = tap;
}

void
zf_publish_queue_destroy (zf_queue_t *queue)
{
    s_tap_t *tap = (s_tap_t *) queue->tap;
    if (tap) {
        msgpack_sbuffer_destroy (&tap->data.buffer);
        free (tap);
        queue->tap = NULL;
    }
}

void
zf_publish_subscription (zf_server_t *server, zframe_t *frame)
{
    size_t size = zframe_size (frame);
    const char *data = (const char *) zframe_data (frame);
    if (size < 1 || (data[0] != 0 && data[0] != 1))
        return;
    char *topic = strndup (data + 1, size - 1);
    if (data[0] == 1)
        zhashx_update (server->subscriptions, topic, (void *) "");
    else
        zhashx_delete (server->subscriptions, topic);
    free (topic);
    zlistx_t *queues = zf_store_queues (server->store);
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (queues); queue;
         queue = (zf_queue_t *) zlistx_next (queues))
        s_update_taps (server, (s_tap_t *) queue->tap);
}

static void
s_batch_begin (s_batch_t *batch, uint64_t seq, const char *queue)
{
    batch->buffer.size = 0;
    batch->count_at = zf_event_data_begin (&batch->buffer, &batch->pk, seq, zclock_time (), queue);
    batch->count = 0;
}

static void
s_batch_add (s_batch_t *batch, const zf_id_t *id, int64_t ts, zframe_t *body)
{
    zf_event_data_add (&batch->pk, id, ts, zframe_data (body), zframe_size (body));
    batch->count++;
}

static void
s_batch_send (zf_server_t *server, s_batch_t *batch, const char *topic)
{
    zf_event_data_end (&batch->buffer, batch->count_at, batch->count);
    s_send (server, topic, batch->buffer.data, batch->buffer.size);
    batch->count = 0;
    if (batch->buffer.alloc > 4 * BATCH_BYTES_MAX) {
        // A large body grew it: give the memory back.
        msgpack_sbuffer_destroy (&batch->buffer);
        msgpack_sbuffer_init (&batch->buffer);
    }
}

void
zf_publish_flush (zf_server_t *server)
{
    zf_queue_t *queue;
    while ((queue = (zf_queue_t *) zlistx_detach (server->tapped, NULL))) {
        s_tap_t *tap = (s_tap_t *) queue->tap;
        if (tap->data.count)
            s_batch_send (server, &tap->data, tap->data_topic);
    }
}

void
zf_publish_item (zf_server_t *server, zf_queue_t *queue, const zf_id_t *id, int64_t ts,
                 zframe_t *body)
{
    s_tap_t *tap = (s_tap_t *) queue->tap;
    if (!tap->tapped && !tap->nsamples)
        return;
    if (tap->tapped) {
        s_batch_t *batch = &tap->data;
        if (batch->count == 0) {
            s_batch_begin (batch, tap->data_seq + 1, queue->name);
            zlistx_add_end (server->tapped, queue);
        }
        s_batch_add (batch, id, ts, body);
        tap->data_seq++;
        if (batch->count == BATCH_ITEMS_MAX || batch->buffer.size >= BATCH_BYTES_MAX) {
            s_batch_send (server, batch, tap->data_topic);
            zlistx_delete (server->tapped, zlistx_find (server->tapped, queue));
        }
    }
    for (uint32_t i = 0; i < tap->nsamples; i++)
        if ((queue->put - 1) % tap->samples[i] == 0) {
            char topic[ZF_NAME_MAX + 32];
            snprintf (topic, sizeof topic, "sample.%u.data.%s", tap->samples[i], queue->name);
            s_batch_t sample;
            msgpack_sbuffer_init (&sample.buffer);
            msgpack_packer_init (&sample.pk, &sample.buffer, msgpack_sbuffer_write);
            s_batch_begin (&sample, s_topic_seq (server, topic), queue->name);
            s_batch_add (&sample, id, ts, body);
            s_batch_send (server, &sample, topic);
            msgpack_sbuffer_destroy (&sample.buffer);
        }
}

//  --------------------------------------------------------------------------
//  Stats

//  A group's flow control figures: its throttled items, its keys, and the
//  busiest of them.
static void
s_flow_figures (zf_cgroup_t *cgroup, zf_stats_group_t *group)
{
    zf_group_figures_t figures;
    zf_store_group_figures (cgroup, &figures);
    group->throttled = figures.throttled;
    group->keys = figures.keys;
    if (!figures.keys)
        return;
    zf_key_figures_t top[ZF_TOP_KEYS];
    size_t count = zf_store_key_figures (cgroup, top, ZF_TOP_KEYS);
    for (size_t k = 0; k < count; k++) {
        zf_stats_key_t *row = &group->top[group->ntop++];
        snprintf (row->key, sizeof row->key, "%s", top[k].key);
        row->ready = top[k].ready;
        row->inflight = top[k].inflight;
        row->throttled = top[k].throttled;
    }
}

void
zf_publish_stats (zf_server_t *server, int64_t elapsed_ms)
{
    zf_stats_t *stats = zf_stats_new ();
    stats->seq = s_topic_seq (server, "stats");
    stats->ts = zclock_time ();
    double seconds = elapsed_ms > 0 ? elapsed_ms / 1000.0 : 1.0;
    zlistx_t *queues = zf_store_queues (server->store);
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (queues); queue;
         queue = (zf_queue_t *) zlistx_next (queues)) {
        s_tap_t *tap = (s_tap_t *) queue->tap;
        zf_stats_queue_t *q = zf_stats_add_queue (stats);
        zf_store_figures (queue, &q->figures);
        q->put_rate = (double) (queue->put - tap->last_put) / seconds;
        q->ack_rate = (double) (queue->acked - tap->last_acked) / seconds;
        for (size_t g = 0; g < queue->ngroups; g++) {
            zf_stats_group_t *group = zf_stats_add_group (q);
            snprintf (group->name, sizeof group->name, "%s", queue->groups[g]->name);
            group->workers = queue->groups[g]->nworkers;
            group->ready = queue->groups[g]->ready.size;
            group->acked = queue->groups[g]->acked;
            s_flow_figures (queue->groups[g], group);
        }
        tap->last_put = queue->put;
        tap->last_acked = queue->acked;
    }
    for (zf_session_t *session = (zf_session_t *) zhashx_first (server->sessions); session;
         session = (zf_session_t *) zhashx_next (server->sessions)) {
        zf_stats_worker_t *w = zf_stats_add_worker (stats);
        snprintf (w->actor, sizeof w->actor, "%s", session->name);
        w->worker = session->number;
        snprintf (w->host, sizeof w->host, "%s", session->host);
        w->pid = session->pid;
        w->inflight = session->worker.held.size;
        w->done = session->worker.done;
        w->failed = session->worker.failed;
        w->figures = session->figures;
        w->figures_size = session->figures_size;
    }
    stats->lineages = zf_store_lineages (server->store);
    for (void *item = zhashx_first (server->ended); item; item = zhashx_next (server->ended))
        zf_stats_add_ended (stats, (const char *) zhashx_cursor (server->ended));
    for (void *item = zhashx_first (server->crashloops); item;
         item = zhashx_next (server->crashloops))
        zf_stats_add_crashloop (stats, (const char *) zhashx_cursor (server->crashloops));
    stats->rejected = server->rejected;
    stats->late_acks = server->late_acks;
    if (server->journal) {
        zf_stats_journal_t *j = &stats->journal;
        const char *failed = zf_journal_failed (server->journal);
        j->present = true;
        j->written = zf_journal_appended (server->journal);
        j->durable = zf_journal_durable (server->journal);
        j->waiting = zlistx_size (server->confirms);
        j->compactions = server->compactions;
        j->compaction_ms = server->compaction_ms;
        snprintf (j->failed, sizeof j->failed, "%s", failed ? failed : "");
    }
    s_event_t event;
    s_event_begin (&event);
    zf_stats_encode (stats, &event.pk);
    zf_stats_destroy (&stats);
    s_event_send (server, &event, "stats");
}
