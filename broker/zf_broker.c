/*  zf_broker: queues, consumer groups, credit-based dispatch, retries,
    dedup, lineage, heartbeats and events. See zf_broker.h and zfp.md.

    Data model. A stored message (msg_t) holds the envelope and body once,
    and one delivery (delivery_t) per consumer group of its queue: each group
    gets every message (fan-out) and shares it among its workers. A delivery
    is in exactly one place: its group's ready list, the broker's heap of
    delayed retries, or in flight (in its queue's timeout list, in delivery
    order, and in its worker's held list). A message is freed when every
    delivery is finished (acked, dead-lettered or cancelled). Lists are
    intrusive, so moving a delivery costs no allocation.

    Durability. With a journal (zf_journal.h), every change of state that
    must survive a restart is a record: an item stored (PUT), one group's
    delivery finished (ACK), an item finished (FIN, its outcome kept for the
    dedup window), a source's checkpoint. The records of a loop turn go out
    in one write at its end, and the CONFIRMs of the PUTs they hold wait
    until they are durable. A failed delivery is a record too (RETRY, its
    count of attempts), so that max-attempts holds across a restart.
    Deliveries are not recorded: after a restart every unfinished delivery
    is ready again, and one that was in flight does not count.
*/
#include "zf_broker.h"
#include "zf_curve.h"
#include "zf_window.h"
#include "zf_idmap.h"
#include "zf_journal.h"
#include "zf_thread.h"
#include "zf_mp.h"
#include "zf_proto.h"
#include "zf_value.h"

#include <math.h>
#include <sys/stat.h>

#define PEER_KEY_MAX    (2 * 255 + 1) // hex of a routing id
#define READ_BUDGET     512           // messages read per socket per loop turn
#define TICK_MS         20            // timer resolution for retries and timeouts
#define ERRORS_TO_DROP  100           // protocol errors before a peer is forgotten
#define ZAP_DOMAIN      "zflow"       // the one ZAP domain this broker lets in
#define BATCH_ITEMS_MAX 1024          // items in one data event at most
#define BATCH_BYTES_MAX 16384         // bytes after which a data event goes out
#define XPUB_HWM        1000          // events queued for a subscriber at most

typedef struct _queue_t queue_t;
typedef struct _group_t group_t;
typedef struct _msg_t msg_t;
typedef struct _delivery_t delivery_t;
typedef struct _peer_t peer_t;
typedef struct _lineage_t lineage_t;

typedef enum { D_READY, D_DELAYED, D_INFLIGHT, D_FINISHED } d_state_t;

//  An intrusive doubly-linked list of deliveries; link 0 is the ready or
//  timeout list, link 1 a worker's held list.
typedef struct {
    delivery_t *head; // first
    delivery_t *tail; // last
    size_t size;      // entries
} dlist_t;

struct _delivery_t {
    msg_t *msg;          // the message delivered
    group_t *group;      // the consumer group it is for
    peer_t *holder;      // the worker holding it while in flight
    d_state_t state;     // where it is
    uint32_t attempt;    // deliveries so far
    int64_t due;         // delayed: when it is ready again; in flight: its timeout
    size_t heap_index;   // delayed: position in the broker's heap
    delivery_t *prev[2]; // list links: [0] ready/timeout list, [1] held list
    delivery_t *next[2];
};

struct _lineage_t {
    zf_id_t root;               // the root item
    uint64_t outstanding;       // items of the lineage not finished
    bool dead;                  // an item of it was dead-lettered
    bool cancelled;             // a worker cancelled it
    char tracker[PEER_KEY_MAX]; // peer to tell when done, or ""
};

struct _msg_t {
    zf_id_t id;              // the item's id
    zf_id_t parent;          // its parent, or zero
    zf_id_t root;            // its root, or zero for a root
    int64_t ts;              // creation time, ms
    zf_group_t fanin;        // gather membership
    uint8_t *headers;        // copy of the envelope's headers, or NULL
    uint32_t headers_size;   // bytes at headers
    zframe_t *body;          // the body, owned
    queue_t *queue;          // where it is stored
    lineage_t *lineage;      // its root's lineage
    uint32_t pending;        // deliveries not finished
    bool dead;               // a delivery was dead-lettered
    char *reason;            // the last failure, or NULL
    uint64_t order;          // when it was stored, for snapshots in queue order
    uint32_t ndeliveries;    // entries in deliveries
    delivery_t deliveries[]; // one per consumer group
};

struct _group_t {
    char *name;         // the actor name
    queue_t *queue;     // the queue it reads
    dlist_t ready;      // deliveries waiting for a worker
    peer_t **workers;   // workers of the group now connected
    size_t nworkers;    // entries in workers
    size_t cap;         // allocated entries
    size_t next;        // round-robin position
    bool dirty;         // in the broker's list of groups to dispatch
    bool anonymous;     // holds items until a first group joins
    uint64_t delivered; // deliveries sent, ever
    uint64_t acked;     // deliveries acked, ever
};

//  A data event being filled: the items put to a queue in one turn of the
//  loop go out as one event, {seq, ts, queue, items}, seq the number of its
//  first item. The items array's count is written as it is sent.
typedef struct {
    msgpack_sbuffer buffer; // the event's map
    msgpack_packer pk;      // writes into buffer
    uint32_t count;         // items in it; 0 when none is being filled
    size_t count_at;        // offset of the items array's 16-bit count
} batch_t;

struct _queue_t {
    char *name;                       // the queue's name
    int64_t max_depth;                // messages stored at most
    int64_t max_attempts;             // deliveries before the dead-letter queue
    int64_t timeout;                  // ms an item may be held; 0 for ever
    int64_t retry_base;               // first backoff, ms
    int64_t retry_max;                // longest backoff, ms
    group_t **groups;                 // consumer groups
    size_t ngroups;                   // entries in groups
    dlist_t inflight;                 // deliveries in flight, oldest first (link 0)
    zlistx_t *waiting;                // PUTs held because the queue was full
    uint64_t depth;                   // messages stored
    uint64_t put;                     // items accepted, ever
    uint64_t acked;                   // messages finished, ever
    uint64_t nacked;                  // NACKs, timeouts and losses, ever
    uint64_t dead;                    // deliveries dead-lettered, ever
    uint64_t last_put;                // put at the last stats snapshot
    uint64_t last_acked;              // acked at the last stats snapshot
    bool tapped;                      // someone subscribes to data.NAME
    char data_topic[ZF_NAME_MAX + 8]; // "data.NAME"
    uint64_t data_seq;                // items sent on it
    batch_t data;                     // its data event being filled
    uint32_t samples[4];              // N of each sample.N.data.NAME subscribed to (one item in N)
    uint32_t nsamples;                // entries in samples
};

struct _peer_t {
    char key[PEER_KEY_MAX];       // hex routing id
    zframe_t *routing_id;         // for sending
    bool welcomed;                // HELLO done
    char name[ZF_NAME_MAX + 1];   // actor name
    char host[ZF_NAME_MAX + 1];   // host
    uint32_t worker;              // worker number
    uint64_t pid;                 // process id
    group_t *groups[ZF_LIST_MAX]; // groups it works in
    size_t ngroups;               // entries in groups
    uint64_t window;              // credit given
    uint64_t zombies;             // timed-out items it may still ack
    dlist_t held;                 // deliveries in flight to it (link 1)
    int64_t last_seen;            // ms, any message
    int64_t last_sent;            // ms, any message
    uint64_t done;                // items acked
    uint64_t failed;              // items nacked
    uint64_t errors;              // protocol errors
    bool ended;                   // sent END
    uint8_t *figures;             // its last figures (a msgpack map), or NULL
    uint32_t figures_size;        // bytes at figures
};

//  A PUT being admitted: items go in one by one; when a queue is full the
//  rest waits in that queue's waiting list.
typedef struct {
    char peer[PEER_KEY_MAX];               // who sent it
    uint64_t seq;                          // its seq
    bool track;                            // DONE wanted for its roots
    uint8_t checkpoint[ZF_CHECKPOINT_MAX]; // stored on CONFIRM
    uint32_t checkpoint_size;              // bytes in checkpoint
    char actor[ZF_NAME_MAX + 1];           // the sender's actor name
    uint32_t next;                         // first item not yet admitted
    uint32_t accepted;                     // items enqueued
    uint32_t duplicates;                   // items dropped as seen
    uint32_t nitems;                       // entries in items
    lineage_t **holds;                     // per item: the lineage it holds, or NULL
    zf_env_t items[];                      // envelopes, bodies owned, headers copied
} pending_put_t;

typedef struct {
    zsock_t *pipe;           // to the owner
    zf_pipeline_t *pipeline; // the config
    zsock_t *router;         // actors
    zsock_t *events;         // XPUB
    zsock_t *intake;         // PULL, or NULL
    char endpoint[256];      // bound endpoints, real ports
    char events_endpoint[256];
    char intake_endpoint[256];
    int64_t heartbeat;       // ms
    int64_t liveness;        // heartbeats missed before death
    uint32_t window;         // PUT items a peer may have unconfirmed
    zhashx_t *queues;        // name -> queue_t
    zlistx_t *queue_order;   // queue_t, in order of creation (not owned)
    zhashx_t *peers;         // key -> peer_t
    zhashx_t *checkpoints;   // actor name -> zchunk_t
    zhashx_t *ended;         // actor name -> "" for sources that ended
    zhashx_t *subscriptions; // topic prefixes someone subscribes to
    zf_idmap_t *live;        // id -> msg_t, every stored message
    zf_window_t *seen;       // id -> outcome, the dedup window; NULL when off
    zf_idmap_t *lineages;    // root id -> lineage_t, for roots with children or a tracker
    size_t live_unseen;      // stored messages whose id the dedup ring has let go
    delivery_t **delayed;    // heap by due
    size_t ndelayed;         // entries in delayed
    size_t delayed_cap;      // allocated
    zlistx_t *dirty;         // groups with ready items to dispatch (not owned)
    zf_proto_t *in;          // the message being handled
    zf_proto_t *out;         // the message being sent
    zhashx_t *topic_seq;     // topic -> last sequence number sent on it
    zlistx_t *tapped;        // queues with a data event being filled (not owned)
    zcert_t *curve;          // the broker's CURVE certificate, or NULL
    zsock_t *zap;            // ZAP handler (REP) deciding who gets in, with curve
    zcertstore_t *allowed;   // the public certificates of the clients allowed in
    char *allowed_dir;       // their folder
    zf_journal_t *journal;   // the write-ahead log, or NULL
    bool replaying;          // applying the journal: record nothing, tell no one
    zlistx_t *confirms;      // confirm_t waiting for their records to be durable
    uint64_t confirm_items;  // items in confirms
    uint64_t stored;         // messages stored, ever (their order)
    uint64_t compactions;    // journal snapshots written
    int64_t compaction_ms;   // time they took, in all
    uint64_t rejected;       // frames refused on any socket
    uint64_t late_acks;      // acks of items no longer held
    int64_t next_tick;       // ms
    int64_t next_stats;      // ms
    unsigned seed;           // for backoff jitter
    bool terminated;         // $TERM received
} self_t;

//  A CONFIRM held until the journal has the PUT's records on disk.
typedef struct {
    char peer[PEER_KEY_MAX]; // who to send it to
    uint64_t seq;            // the PUT's seq
    uint32_t accepted;       // items enqueued
    uint32_t duplicates;     // items dropped as seen
    uint64_t lsn;            // journal position that makes it durable
} confirm_t;

//  Outcomes remembered in the dedup window (stored as small pointers).
enum { SEEN_LIVE = 1, SEEN_DONE, SEEN_DEAD, SEEN_CANCELLED };

static void s_dispatch (self_t *self);
static void s_flush_taps (self_t *self);
static void s_finish_delivery (self_t *self, delivery_t *d, bool dead);

//  --------------------------------------------------------------------------
//  Lists and the heap

static void
s_list_push (dlist_t *list, delivery_t *d, int link)
{
    d->prev[link] = list->tail;
    d->next[link] = NULL;
    if (list->tail)
        list->tail->next[link] = d;
    else
        list->head = d;
    list->tail = d;
    list->size++;
}

static void
s_list_push_front (dlist_t *list, delivery_t *d, int link)
{
    d->prev[link] = NULL;
    d->next[link] = list->head;
    if (list->head)
        list->head->prev[link] = d;
    else
        list->tail = d;
    list->head = d;
    list->size++;
}

static void
s_list_remove (dlist_t *list, delivery_t *d, int link)
{
    if (d->prev[link])
        d->prev[link]->next[link] = d->next[link];
    else
        list->head = d->next[link];
    if (d->next[link])
        d->next[link]->prev[link] = d->prev[link];
    else
        list->tail = d->prev[link];
    d->prev[link] = d->next[link] = NULL;
    list->size--;
}

static void
s_heap_swap (self_t *self, size_t a, size_t b)
{
    delivery_t *t = self->delayed[a];
    self->delayed[a] = self->delayed[b];
    self->delayed[b] = t;
    self->delayed[a]->heap_index = a;
    self->delayed[b]->heap_index = b;
}

static void
s_heap_up (self_t *self, size_t i)
{
    while (i > 0 && self->delayed[(i - 1) / 2]->due > self->delayed[i]->due) {
        s_heap_swap (self, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
s_heap_down (self_t *self, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < self->ndelayed && self->delayed[l]->due < self->delayed[m]->due)
            m = l;
        if (r < self->ndelayed && self->delayed[r]->due < self->delayed[m]->due)
            m = r;
        if (m == i)
            return;
        s_heap_swap (self, i, m);
        i = m;
    }
}

static void
s_heap_push (self_t *self, delivery_t *d)
{
    if (self->ndelayed == self->delayed_cap) {
        size_t cap = self->delayed_cap ? self->delayed_cap * 2 : 64;
        delivery_t **grown = (delivery_t **) realloc (self->delayed, cap * sizeof *grown);
        if (!grown) {
            // Out of memory with items to retry: no way on keeps them.
            zsys_error ("broker: out of memory for %zu retries", cap);
            abort ();
        }
        self->delayed = grown;
        self->delayed_cap = cap;
    }
    d->heap_index = self->ndelayed;
    self->delayed[self->ndelayed++] = d;
    s_heap_up (self, d->heap_index);
}

static void
s_heap_remove (self_t *self, delivery_t *d)
{
    size_t i = d->heap_index;
    s_heap_swap (self, i, --self->ndelayed);
    if (i < self->ndelayed) {
        s_heap_down (self, i);
        s_heap_up (self, i);
    }
}

//  --------------------------------------------------------------------------
//  Queues and groups

static void
s_group_destroy (group_t **self_p)
{
    if (!*self_p)
        return;
    free ((*self_p)->name);
    free ((*self_p)->workers);
    free (*self_p);
    *self_p = NULL;
}

static group_t *
s_group_add (queue_t *queue, const char *name)
{
    group_t *group = (group_t *) zmalloc (sizeof (group_t));
    group->name = strdup (name);
    group->queue = queue;
    queue->groups = (group_t **) realloc (queue->groups, (queue->ngroups + 1) * sizeof (group_t *));
    queue->groups[queue->ngroups++] = group;
    return group;
}

static void
s_pending_destroy (pending_put_t **self_p)
{
    if (!*self_p)
        return;
    pending_put_t *self = *self_p;
    for (uint32_t i = 0; i < self->nitems; i++) {
        zframe_destroy (&self->items[i].body);
        free ((void *) self->items[i].headers);
    }
    free (self);
    *self_p = NULL;
}

static void
s_queue_destroy (queue_t **self_p)
{
    if (!*self_p)
        return;
    queue_t *self = *self_p;
    for (size_t g = 0; g < self->ngroups; g++)
        s_group_destroy (&self->groups[g]);
    free (self->groups);
    zlistx_destroy (&self->waiting);
    msgpack_sbuffer_destroy (&self->data.buffer);
    free (self->name);
    free (self);
    *self_p = NULL;
}

static bool
s_is_dead_queue (queue_t *queue)
{
    size_t len = strlen (queue->name);
    return len > 5 && strcmp (queue->name + len - 5, ".dead") == 0;
}

//  Whether a subscription asks for data.NAME (an empty subscription, all
//  topics, asks for events only: data taps are asked for by name), and the
//  samples asked for: sample.N.data.NAME is one item in N, published as
//  such, so a sampled tap costs the broker one event in N.
static void
s_update_taps (self_t *self, queue_t *queue)
{
    const char *topic = queue->data_topic;
    queue->tapped = false;
    queue->nsamples = 0;
    for (void *item = zhashx_first (self->subscriptions); item;
         item = zhashx_next (self->subscriptions)) {
        const char *prefix = (const char *) zhashx_cursor (self->subscriptions);
        unsigned every;
        int end = 0;
        if (*prefix && strncmp (topic, prefix, strlen (prefix)) == 0)
            queue->tapped = true;
        else if (sscanf (prefix, "sample.%u.%n", &every, &end) == 1 && end && every > 1 &&
                 streq (prefix + end, topic) && queue->nsamples < 4)
            queue->samples[queue->nsamples++] = every;
    }
}

//  The queue named name, created with its config (or the defaults) if new.
//  A new queue has an anonymous group holding items until a group joins.
static queue_t *
s_queue_require (self_t *self, const char *name)
{
    queue_t *queue = (queue_t *) zhashx_lookup (self->queues, name);
    if (queue)
        return queue;
    queue = (queue_t *) zmalloc (sizeof (queue_t));
    queue->name = strdup (name);
    snprintf (queue->data_topic, sizeof queue->data_topic, "data.%s", name);
    msgpack_sbuffer_init (&queue->data.buffer);
    msgpack_packer_init (&queue->data.pk, &queue->data.buffer, msgpack_sbuffer_write);
    zf_queue_conf_t *conf = zf_pipeline_queue (self->pipeline, name);
    zconfig_t *node = conf ? conf->node : NULL;
    queue->max_depth = zf_conf_int (node, zf_queue_keys, "max-depth");
    queue->max_attempts = zf_conf_int (node, zf_queue_keys, "max-attempts");
    queue->timeout = zf_conf_duration (node, zf_queue_keys, "timeout");
    queue->retry_base = zf_conf_duration (node, zf_queue_keys, "retry-base");
    queue->retry_max = zf_conf_duration (node, zf_queue_keys, "retry-max");
    if (s_is_dead_queue (queue))
        queue->max_depth = INT64_MAX; // the broker must always be able to dead-letter
    queue->waiting = zlistx_new ();
    zlistx_set_destructor (queue->waiting, (zlistx_destructor_fn *) s_pending_destroy);
    s_group_add (queue, "")->anonymous = true;
    s_update_taps (self, queue);
    zhashx_insert (self->queues, name, queue);
    zlistx_add_end (self->queue_order, queue);
    return queue;
}

//  Puts group on the list of groups to dispatch (once).
static void
s_mark_dirty (self_t *self, group_t *group)
{
    if (!group->dirty) {
        group->dirty = true;
        zlistx_add_end (self->dirty, group);
    }
}

//  The group name of queue, created if new; the first named group takes over
//  what the anonymous group held.
static group_t *
s_group_require (self_t *self, queue_t *queue, const char *name)
{
    for (size_t g = 0; g < queue->ngroups; g++)
        if (strcmp (queue->groups[g]->name, name) == 0)
            return queue->groups[g];
    if (queue->ngroups == 1 && queue->groups[0]->anonymous) {
        group_t *group = queue->groups[0];
        free (group->name);
        group->name = strdup (name);
        group->anonymous = false;
        return group;
    }
    return s_group_add (queue, name);
}

//  --------------------------------------------------------------------------
//  Sending

static int64_t
s_now (void)
{
    return zclock_mono ();
}

//  Sends self->out to peer.
static void
s_send (self_t *self, peer_t *peer)
{
    zf_error_t err;
    if (zf_proto_send (self->out, zsock_resolve (self->router), peer->routing_id, &err))
        zsys_error ("broker: cannot send to %s: %s", peer->name, err.text);
    peer->last_sent = s_now ();
}

static void
s_send_error (self_t *self, zframe_t *routing_id, zf_err_t code, const char *reason)
{
    zf_proto_reset (self->out, ZF_ERROR);
    snprintf (self->out->code, sizeof self->out->code, "%s", zf_errname (code));
    snprintf (self->out->reason, sizeof self->out->reason, "%s", reason);
    zf_proto_send (self->out, zsock_resolve (self->router), routing_id, NULL);
}

//  --------------------------------------------------------------------------
//  Events (XPUB): [topic][msgpack map], every map with "seq" and "ts".

typedef struct {
    msgpack_sbuffer buffer;       // the event's map
    msgpack_packer pk;            // writes into buffer
    char topic[ZF_NAME_MAX + 32]; // where it goes
} event_t;

//  Starts an event of fields fields besides seq and ts. Each topic numbers
//  its events 1, 2, 3...: a subscriber that sees a gap knows how many of
//  that topic it missed, whatever else it subscribes to.
//  The next sequence number of topic.
static uint64_t
s_topic_seq (self_t *self, const char *topic)
{
    uintptr_t seq = (uintptr_t) zhashx_lookup (self->topic_seq, topic) + 1;
    zhashx_update (self->topic_seq, topic, (void *) seq);
    return seq;
}

static void
s_event_begin (self_t *self, event_t *event, const char *topic, uint32_t fields)
{
    snprintf (event->topic, sizeof event->topic, "%s", topic);
    uint64_t seq = s_topic_seq (self, topic);
    msgpack_sbuffer_init (&event->buffer);
    event->buffer.data = (char *) malloc (256); // most events are small: not 8 KiB each
    event->buffer.alloc = event->buffer.data ? 256 : 0;
    msgpack_packer_init (&event->pk, &event->buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&event->pk, fields + 2);
    zf_mp_pack_cstr (&event->pk, "seq");
    msgpack_pack_uint64 (&event->pk, seq);
    zf_mp_pack_cstr (&event->pk, "ts");
    msgpack_pack_int64 (&event->pk, zclock_time ());
}

//  Sends the event. The data events being filled go first: events keep
//  the order in which they happened.
static void
s_event_send (self_t *self, event_t *event)
{
    s_flush_taps (self);
    void *events = zsock_resolve (self->events);
    zmq_send (events, event->topic, strlen (event->topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (events, event->buffer.data, event->buffer.size, ZMQ_DONTWAIT);
    msgpack_sbuffer_destroy (&event->buffer);
}

static void
s_pack_kv (event_t *event, const char *key, const char *value)
{
    zf_mp_pack_cstr (&event->pk, key);
    zf_mp_pack_cstr (&event->pk, value);
}

static void
s_pack_id (event_t *event, const char *key, const zf_id_t *id)
{
    char hex[ZF_ID_HEX];
    s_pack_kv (event, key, zf_id_format (id, hex));
}

static void
s_event_peer (self_t *self, const char *topic, peer_t *peer, const char *reason)
{
    event_t event;
    s_event_begin (self, &event, topic, 5);
    s_pack_kv (&event, "actor", peer->name);
    zf_mp_pack_cstr (&event.pk, "worker");
    msgpack_pack_uint32 (&event.pk, peer->worker);
    s_pack_kv (&event, "host", peer->host);
    zf_mp_pack_cstr (&event.pk, "pid");
    msgpack_pack_uint64 (&event.pk, peer->pid);
    s_pack_kv (&event, "reason", reason);
    s_event_send (self, &event);
}

static void
s_event_rejected (self_t *self, const char *socket, const char *from, const char *reason)
{
    self->rejected++;
    event_t event;
    s_event_begin (self, &event, "error.protocol", 3);
    s_pack_kv (&event, "socket", socket);
    s_pack_kv (&event, "from", from);
    s_pack_kv (&event, "reason", reason);
    s_event_send (self, &event);
}

//  Starts a data event: its first item is number seq on its topic.
static void
s_batch_begin (batch_t *batch, uint64_t seq, const char *queue)
{
    batch->buffer.size = 0;
    msgpack_pack_map (&batch->pk, 4);
    zf_mp_pack_cstr (&batch->pk, "seq");
    msgpack_pack_uint64 (&batch->pk, seq);
    zf_mp_pack_cstr (&batch->pk, "ts");
    msgpack_pack_int64 (&batch->pk, zclock_time ());
    zf_mp_pack_cstr (&batch->pk, "queue");
    zf_mp_pack_cstr (&batch->pk, queue);
    zf_mp_pack_cstr (&batch->pk, "items");
    static const char array16[3] = { (char) 0xdc, 0, 0 }; // the count comes last
    batch->count_at = batch->buffer.size + 1;
    msgpack_sbuffer_write (&batch->buffer, array16, sizeof array16);
    batch->count = 0;
}

//  Adds an item: its id, when it was made, and its body (bytes that are
//  themselves msgpack).
static void
s_batch_add (batch_t *batch, msg_t *msg)
{
    char hex[ZF_ID_HEX];
    msgpack_pack_map (&batch->pk, 3);
    zf_mp_pack_cstr (&batch->pk, "id");
    zf_mp_pack_cstr (&batch->pk, zf_id_format (&msg->id, hex));
    zf_mp_pack_cstr (&batch->pk, "created");
    msgpack_pack_int64 (&batch->pk, msg->ts);
    zf_mp_pack_cstr (&batch->pk, "body");
    msgpack_pack_bin (&batch->pk, zframe_size (msg->body));
    msgpack_pack_bin_body (&batch->pk, zframe_data (msg->body), zframe_size (msg->body));
    batch->count++;
}

static void
s_batch_send (self_t *self, batch_t *batch, const char *topic)
{
    uint8_t *count = (uint8_t *) batch->buffer.data + batch->count_at;
    count[0] = (uint8_t) (batch->count >> 8);
    count[1] = (uint8_t) batch->count;
    void *events = zsock_resolve (self->events);
    zmq_send (events, topic, strlen (topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (events, batch->buffer.data, batch->buffer.size, ZMQ_DONTWAIT);
    batch->count = 0;
    if (batch->buffer.alloc > 4 * BATCH_BYTES_MAX) {
        // A large body grew it: give the memory back.
        msgpack_sbuffer_destroy (&batch->buffer);
        msgpack_sbuffer_init (&batch->buffer);
    }
}

//  Sends the data events being filled: at the end of each turn of the
//  loop, and before any other event, so that events keep their order.
static void
s_flush_taps (self_t *self)
{
    queue_t *queue;
    while ((queue = (queue_t *) zlistx_detach (self->tapped, NULL)))
        if (queue->data.count)
            s_batch_send (self, &queue->data, queue->data_topic);
}

//  A copy of an item put to a tapped queue goes into the queue's data
//  event; a full one goes out at once. Sampled taps get their one item in
//  N as an event of its own.
static void
s_tap_item (self_t *self, queue_t *queue, msg_t *msg)
{
    if (queue->tapped) {
        batch_t *batch = &queue->data;
        if (batch->count == 0) {
            s_batch_begin (batch, queue->data_seq + 1, queue->name);
            zlistx_add_end (self->tapped, queue);
        }
        s_batch_add (batch, msg);
        queue->data_seq++;
        if (batch->count == BATCH_ITEMS_MAX || batch->buffer.size >= BATCH_BYTES_MAX) {
            s_batch_send (self, batch, queue->data_topic);
            zlistx_delete (self->tapped, zlistx_find (self->tapped, queue));
        }
    }
    for (uint32_t i = 0; i < queue->nsamples; i++)
        if ((queue->put - 1) % queue->samples[i] == 0) {
            char topic[ZF_NAME_MAX + 32];
            snprintf (topic, sizeof topic, "sample.%u.data.%s", queue->samples[i], queue->name);
            batch_t sample;
            msgpack_sbuffer_init (&sample.buffer);
            msgpack_packer_init (&sample.pk, &sample.buffer, msgpack_sbuffer_write);
            s_batch_begin (&sample, s_topic_seq (self, topic), queue->name);
            s_batch_add (&sample, msg);
            s_batch_send (self, &sample, topic);
            msgpack_sbuffer_destroy (&sample.buffer);
        }
}

//  --------------------------------------------------------------------------
//  Journal records. Little-endian; a name is a one-byte length and bytes.
//    PUT         id, parent, root (16 bytes each), ts i64, attempt u32,
//                dead u8, fan-in id (16) size u32 index u32, queue name,
//                headers (u32 length, bytes), reason (u16 length, bytes),
//                body (u32 length, bytes)
//    ACK         id (16), dead u8, group name
//    FIN         id (16), outcome u8 (SEEN_DONE, SEEN_DEAD, SEEN_CANCELLED)
//    CHECKPOINT  actor name, data (u32 length, bytes)
//    RETRY       id (16), attempts u32, group name

static uint8_t *
s_w (uint8_t *p, const void *data, size_t size)
{
    if (size)
        memcpy (p, data, size);
    return p + size;
}

static uint8_t *
s_w32 (uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *p++ = (uint8_t) (v >> (8 * i));
    return p;
}

static uint8_t *
s_w64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t) (v >> (8 * i));
    return p;
}

static uint8_t *
s_wname (uint8_t *p, const char *name, size_t len)
{
    *p++ = (uint8_t) len;
    return s_w (p, name, len);
}

static void
s_journal_put (self_t *self, msg_t *msg, uint32_t attempt)
{
    if (!self->journal || self->replaying)
        return;
    size_t qlen = strlen (msg->queue->name);
    size_t rlen = msg->reason ? strlen (msg->reason) : 0;
    if (rlen > UINT16_MAX)
        rlen = UINT16_MAX;
    size_t blen = zframe_size (msg->body);
    size_t size =
        4 * ZF_ID_SIZE + 8 + 4 + 1 + 8 + 1 + qlen + 4 + msg->headers_size + 2 + rlen + 4 + blen;
    uint8_t *p = zf_journal_reserve (self->journal, ZF_JR_PUT, size);
    p = s_w (p, msg->id.bytes, ZF_ID_SIZE);
    p = s_w (p, msg->parent.bytes, ZF_ID_SIZE);
    p = s_w (p, msg->root.bytes, ZF_ID_SIZE);
    p = s_w64 (p, (uint64_t) msg->ts);
    p = s_w32 (p, attempt);
    *p++ = msg->dead;
    p = s_w (p, msg->fanin.id.bytes, ZF_ID_SIZE);
    p = s_w32 (p, msg->fanin.size);
    p = s_w32 (p, msg->fanin.index);
    p = s_wname (p, msg->queue->name, qlen);
    p = s_w32 (p, msg->headers_size);
    p = s_w (p, msg->headers, msg->headers_size);
    *p++ = (uint8_t) rlen;
    *p++ = (uint8_t) (rlen >> 8);
    p = s_w (p, msg->reason, rlen);
    p = s_w32 (p, (uint32_t) blen);
    s_w (p, zframe_data (msg->body), blen);
}

static void
s_journal_ack (self_t *self, delivery_t *d, bool dead)
{
    if (!self->journal || self->replaying)
        return;
    size_t glen = strlen (d->group->name);
    uint8_t *p = zf_journal_reserve (self->journal, ZF_JR_ACK, ZF_ID_SIZE + 1 + 1 + glen);
    p = s_w (p, d->msg->id.bytes, ZF_ID_SIZE);
    *p++ = dead;
    s_wname (p, d->group->name, glen);
}

//  Delivery d failed and will be tried again: the attempts it has had.
static void
s_journal_retry (self_t *self, delivery_t *d, uint32_t attempts)
{
    if (!self->journal || self->replaying)
        return;
    size_t glen = strlen (d->group->name);
    uint8_t *p = zf_journal_reserve (self->journal, ZF_JR_RETRY, ZF_ID_SIZE + 4 + 1 + glen);
    p = s_w (p, d->msg->id.bytes, ZF_ID_SIZE);
    p = s_w32 (p, attempts);
    s_wname (p, d->group->name, glen);
}

static void
s_journal_fin (self_t *self, const zf_id_t *id, uint8_t outcome)
{
    if (!self->journal || self->replaying)
        return;
    uint8_t *p = zf_journal_reserve (self->journal, ZF_JR_FIN, ZF_ID_SIZE + 1);
    p = s_w (p, id->bytes, ZF_ID_SIZE);
    *p = outcome;
}

static void
s_journal_checkpoint (self_t *self, const char *actor, const void *data, size_t size)
{
    if (!self->journal || self->replaying)
        return;
    size_t alen = strlen (actor);
    uint8_t *p = zf_journal_reserve (self->journal, ZF_JR_CHECKPOINT, 1 + alen + 4 + size);
    p = s_wname (p, actor, alen);
    p = s_w32 (p, (uint32_t) size);
    s_w (p, data, size);
}

//  --------------------------------------------------------------------------
//  Messages: admission, lineage, finishing

//  Records an id's outcome in the dedup window. Returns false if the id
//  was in the window already (its outcome is updated).
static bool
s_seen_set (self_t *self, const zf_id_t *id, intptr_t outcome)
{
    uint8_t evicted = 0;
    if (!self->seen || zf_window_set (self->seen, id, (uint8_t) outcome, &evicted))
        return false;
    // The window is a ring: the oldest id leaves as a new one comes. A
    // stored message that leaves it is still found through the live map.
    if (evicted == SEEN_LIVE)
        self->live_unseen++;
    return true;
}

//  True if id was put before and is stored or still in the dedup window.
static bool
s_seen_before (self_t *self, const zf_id_t *id)
{
    return (self->seen && zf_window_get (self->seen, id)) ||
           (self->live_unseen && zf_idmap_get (self->live, id));
}

static void
s_lineage_finish (self_t *self, lineage_t *lineage)
{
    const char *state = lineage->cancelled ? "cancelled" : lineage->dead ? "dead" : "done";
    if (lineage->tracker[0]) {
        peer_t *peer = (peer_t *) zhashx_lookup (self->peers, lineage->tracker);
        if (peer) {
            zf_proto_reset (self->out, ZF_DONE);
            self->out->id = lineage->root;
            snprintf (self->out->state, sizeof self->out->state, "%s", state);
            s_send (self, peer);
        }
    }
    zf_idmap_remove (self->lineages, &lineage->root);
    free (lineage);
}

//  Takes a hold on the lineage of root, tracking it from now on if it was
//  not: a root is tracked only once it has children, a tracker or a cancel,
//  which spares the common childless item a lineage of its own. A stored
//  root joins its new lineage.
static lineage_t *
s_lineage_hold (self_t *self, const zf_id_t *root)
{
    lineage_t *lineage = (lineage_t *) zf_idmap_get (self->lineages, root);
    if (!lineage) {
        lineage = (lineage_t *) zmalloc (sizeof (lineage_t));
        lineage->root = *root;
        zf_idmap_put (self->lineages, root, lineage);
        msg_t *first = (msg_t *) zf_idmap_get (self->live, root);
        if (first && !first->lineage) {
            first->lineage = lineage;
            lineage->outstanding++;
        }
    }
    lineage->outstanding++;
    return lineage;
}

static void
s_lineage_release (self_t *self, lineage_t *lineage)
{
    if (--lineage->outstanding == 0)
        s_lineage_finish (self, lineage);
}

static void
s_msg_free (self_t *self, msg_t *msg)
{
    zf_idmap_remove (self->live, &msg->id);
    uint8_t outcome = msg->dead                                 ? SEEN_DEAD
                      : msg->lineage && msg->lineage->cancelled ? SEEN_CANCELLED
                                                                : SEEN_DONE;
    s_journal_fin (self, &msg->id, outcome);
    if (s_seen_set (self, &msg->id, outcome) && self->live_unseen)
        self->live_unseen--; // it had left the window while stored
    queue_t *queue = msg->queue;
    queue->depth--;
    queue->acked++;
    lineage_t *lineage = msg->lineage;
    if (lineage) {
        if (msg->dead)
            lineage->dead = true;
        s_lineage_release (self, lineage);
    }
    zframe_destroy (&msg->body);
    free (msg->headers);
    free (msg->reason);
    free (msg);
}

//  Stores an envelope and body as a message of queue, with a delivery per
//  group. Takes the body, and the hold on lineage (may be NULL).
static msg_t *
s_msg_store (self_t *self, queue_t *queue, zf_env_t *env, zframe_t **body_p, lineage_t *lineage)
{
    size_t n = queue->ngroups;
    assert (n > 0); // every queue has a group, anonymous at first
    msg_t *msg = (msg_t *) zmalloc (sizeof (msg_t) + n * sizeof (delivery_t));
    msg->id = env->id;
    msg->parent = env->parent;
    msg->root = env->root;
    msg->ts = env->ts;
    msg->fanin = env->group;
    if (env->headers_size) {
        msg->headers = (uint8_t *) malloc (env->headers_size);
        memcpy (msg->headers, env->headers, env->headers_size);
        msg->headers_size = env->headers_size;
    }
    msg->body = *body_p;
    *body_p = NULL;
    msg->queue = queue;
    msg->ndeliveries = (uint32_t) n;
    msg->pending = (uint32_t) n;
    for (size_t g = 0; g < n; g++) {
        delivery_t *d = &msg->deliveries[g];
        d->msg = msg;
        d->group = queue->groups[g];
        d->attempt = env->attempt; // kept across a move to the dead-letter queue
        d->state = D_READY;
        s_list_push (&d->group->ready, d, 0);
        s_mark_dirty (self, d->group);
    }
    zf_idmap_put (self->live, &msg->id, msg);
    msg->order = self->stored++;
    queue->depth++;
    queue->put++;

    msg->lineage = lineage;
    if (queue->tapped || queue->nsamples)
        s_tap_item (self, queue, msg);
    return msg;
}

static void
s_send_confirm (self_t *self, const char *key, uint64_t seq, uint32_t accepted, uint32_t duplicates)
{
    peer_t *peer = (peer_t *) zhashx_lookup (self->peers, key);
    if (!peer)
        return; // gone: its items are stored all the same
    zf_proto_reset (self->out, ZF_CONFIRM);
    self->out->seq = seq;
    self->out->accepted = accepted;
    self->out->duplicates = duplicates;
    s_send (self, peer);
}

//  Confirms put, or with a journal queues its CONFIRM until the records
//  written so far (its items', and those of any earlier PUT of the same
//  items that made these duplicates) are durable.
static void
s_confirm (self_t *self, pending_put_t *put)
{
    if (put->checkpoint_size) {
        zchunk_t *chunk = zchunk_new (put->checkpoint, put->checkpoint_size);
        zhashx_update (self->checkpoints, put->actor, chunk);
        s_journal_checkpoint (self, put->actor, put->checkpoint, put->checkpoint_size);
    }
    if (!self->journal) {
        s_send_confirm (self, put->peer, put->seq, put->accepted, put->duplicates);
        return;
    }
    confirm_t *confirm = (confirm_t *) zmalloc (sizeof (confirm_t));
    snprintf (confirm->peer, sizeof confirm->peer, "%s", put->peer);
    confirm->seq = put->seq;
    confirm->accepted = put->accepted;
    confirm->duplicates = put->duplicates;
    confirm->lsn = zf_journal_appended (self->journal);
    zlistx_add_end (self->confirms, confirm);
    // Writers stall once their window is used up: with half a window of
    // items waiting for the disk, the next sync does not wait its turn.
    self->confirm_items += put->accepted + put->duplicates;
    if (self->confirm_items >= self->window / 2)
        zf_journal_hurry (self->journal);
}

//  Sends the CONFIRMs whose records are durable now.
static void
s_send_durable_confirms (self_t *self)
{
    uint64_t durable = zf_journal_durable (self->journal);
    confirm_t *confirm;
    while ((confirm = (confirm_t *) zlistx_first (self->confirms)) && confirm->lsn <= durable) {
        s_send_confirm (self, confirm->peer, confirm->seq, confirm->accepted, confirm->duplicates);
        self->confirm_items -= confirm->accepted + confirm->duplicates;
        zlistx_delete (self->confirms, zlistx_cursor (self->confirms));
    }
}

//  Admits the items of put from put->next on. Returns the queue that is
//  full if it must wait, else NULL (all admitted).
static queue_t *
s_admit (self_t *self, pending_put_t *put)
{
    for (; put->next < put->nitems; put->next++) {
        zf_env_t *env = &put->items[put->next];
        lineage_t *hold = put->holds[put->next];
        if (s_seen_before (self, &env->id)) {
            put->duplicates++;
            zframe_destroy (&env->body);
            put->holds[put->next] = NULL;
            if (hold)
                s_lineage_release (self, hold);
            continue;
        }
        queue_t *queue = s_queue_require (self, env->queue);
        if ((int64_t) queue->depth >= queue->max_depth)
            return queue;
        env->attempt = 0;
        put->holds[put->next] = NULL; // the message takes the hold
        msg_t *msg = s_msg_store (self, queue, env, &env->body, hold);
        s_seen_set (self, &msg->id, SEEN_LIVE);
        s_journal_put (self, msg, 0);
        put->accepted++;
    }
    return NULL;
}

//  Room was made in queue: admit the PUTs waiting for it, in order.
static void
s_resume_waiting (self_t *self, queue_t *queue)
{
    pending_put_t *put;
    while ((int64_t) queue->depth < queue->max_depth &&
           (put = (pending_put_t *) zlistx_first (queue->waiting))) {
        queue_t *full = s_admit (self, put);
        if (full == queue)
            return;
        void *handle = zlistx_cursor (queue->waiting);
        zlistx_detach (queue->waiting, handle);
        if (full)
            zlistx_add_end (full->waiting, put);
        else {
            s_confirm (self, put);
            s_pending_destroy (&put);
        }
    }
}

//  Backoff before attempt number `attempt` + 1: exponential, full jitter.
static int64_t
s_backoff (self_t *self, queue_t *queue, uint32_t attempt)
{
    double ceiling = (double) queue->retry_base * pow (2.0, attempt > 0 ? attempt - 1 : 0);
    if (ceiling > (double) queue->retry_max)
        ceiling = (double) queue->retry_max;
    return (int64_t) (ceiling * ((double) rand_r (&self->seed) / RAND_MAX));
}

//  Takes d out of its worker's hands and its queue's timeout list.
static void
s_unhold (delivery_t *d)
{
    if (d->holder) {
        s_list_remove (&d->holder->held, d, 1);
        d->holder = NULL;
    }
    s_list_remove (&d->msg->queue->inflight, d, 0);
}

static void
s_event_dead (self_t *self, delivery_t *d)
{
    char topic[ZF_NAME_MAX + 8];
    snprintf (topic, sizeof topic, "dead.%s", d->msg->queue->name);
    event_t event;
    s_event_begin (self, &event, topic, 5);
    s_pack_id (&event, "id", &d->msg->id);
    s_pack_kv (&event, "queue", d->msg->queue->name);
    s_pack_kv (&event, "group", d->group->name);
    zf_mp_pack_cstr (&event.pk, "attempt");
    msgpack_pack_uint32 (&event.pk, d->attempt);
    s_pack_kv (&event, "reason", d->msg->reason ? d->msg->reason : "");
    s_event_send (self, &event);
}

//  A delivery in flight failed (NACK, timeout, lost worker): retry it after
//  a backoff, or dead-letter it. delay_ms is a floor asked by the worker.
static void
s_retry (self_t *self, delivery_t *d, const char *reason, bool final, int64_t delay_ms)
{
    msg_t *msg = d->msg;
    queue_t *queue = msg->queue;
    s_unhold (d);
    queue->nacked++;
    if (reason && *reason) {
        free (msg->reason);
        msg->reason = strdup (reason);
    }
    if (final || (int64_t) d->attempt >= queue->max_attempts) {
        s_finish_delivery (self, d, true);
        return;
    }
    s_journal_retry (self, d, d->attempt);
    int64_t delay = s_backoff (self, queue, d->attempt);
    if (delay < delay_ms)
        delay = delay_ms;
    d->state = D_DELAYED;
    d->due = s_now () + delay;
    s_heap_push (self, d);
}

//  A delivery is over: acked, or dead (copied to QUEUE.dead). The message
//  goes when its last delivery does.
static void
s_finish_delivery (self_t *self, delivery_t *d, bool dead)
{
    msg_t *msg = d->msg;
    queue_t *queue = msg->queue;
    if (dead) {
        queue->dead++;
        msg->dead = true;
        s_event_dead (self, d);
        char name[ZF_NAME_MAX + 8];
        snprintf (name, sizeof name, "%s.dead", queue->name);
        if (!s_is_dead_queue (queue) && strlen (name) <= ZF_NAME_MAX) {
            // The dead-letter copy is an item of its own, a child of the
            // original with a derived id, in a lineage of its own: the
            // original's lineage is over, the copy waits for a reader.
            zf_env_t env = { .id = zf_id_child (&msg->id, UINT32_MAX),
                             .parent = msg->id,
                             .ts = msg->ts,
                             .attempt = d->attempt };
            env.headers = msg->headers;
            env.headers_size = msg->headers_size;
            if (!zf_idmap_get (self->live, &env.id)) {
                zframe_t *body = zframe_dup (msg->body);
                msg_t *copy = s_msg_store (self, s_queue_require (self, name), &env, &body, NULL);
                copy->reason = msg->reason ? strdup (msg->reason) : NULL;
                s_seen_set (self, &copy->id, SEEN_LIVE);
                s_journal_put (self, copy, env.attempt);
            }
        }
    }
    else
        d->group->acked++;
    d->state = D_FINISHED;
    if (--msg->pending == 0) {
        s_msg_free (self, msg);
        s_resume_waiting (self, queue);
    }
    else
        s_journal_ack (self, d, dead); // the other groups' deliveries go on
}

//  --------------------------------------------------------------------------
//  Peers

static void
s_peer_destroy (peer_t **self_p)
{
    if (!*self_p)
        return;
    zframe_destroy (&(*self_p)->routing_id);
    free ((*self_p)->figures);
    free (*self_p);
    *self_p = NULL;
}

//  Removes peer from its groups and hands back what it held: with a count
//  of the attempt (a lost worker) or without (BYE).
static void
s_peer_leave (self_t *self, peer_t *peer, bool lost)
{
    for (size_t g = 0; g < peer->ngroups; g++) {
        group_t *group = peer->groups[g];
        for (size_t w = 0; w < group->nworkers; w++)
            if (group->workers[w] == peer) {
                group->workers[w] = group->workers[--group->nworkers];
                break;
            }
    }
    delivery_t *d;
    while ((d = peer->held.head)) {
        if (lost)
            s_retry (self, d, "worker lost", false, 0);
        else {
            s_unhold (d);
            d->attempt--; // handed back: this delivery does not count
            d->state = D_READY;
            s_list_push_front (&d->group->ready, d, 0);
            s_mark_dirty (self, d->group);
        }
    }
    s_event_peer (self, lost ? "worker.lost" : "worker.left", peer,
                  lost ? "no heartbeat" : "said BYE");
    zhashx_delete (self->peers, peer->key);
}

//  --------------------------------------------------------------------------
//  Command handlers: one per command, each checking its input first.

static void
s_on_hello (self_t *self, peer_t *peer)
{
    zf_proto_t *in = self->in;
    if (in->version != ZF_PROTO_VERSION) {
        char reason[64];
        snprintf (reason, sizeof reason, "version %u is not supported; this broker speaks 1",
                  in->version);
        s_send_error (self, peer->routing_id, ZF_EVERSION, reason);
        zhashx_delete (self->peers, peer->key);
        return;
    }
    if (peer->welcomed) {
        s_send_error (self, peer->routing_id, ZF_ESTATE, "HELLO twice on one session");
        return;
    }
    if (in->pipeline[0] && !streq (in->pipeline, self->pipeline->name)) {
        char reason[300];
        snprintf (reason, sizeof reason, "this broker runs pipeline '%s', not '%s'",
                  self->pipeline->name, in->pipeline);
        s_send_error (self, peer->routing_id, ZF_EVALUE, reason);
        s_event_rejected (self, "router", in->name, reason);
        zhashx_delete (self->peers, peer->key);
        return;
    }
    snprintf (peer->name, sizeof peer->name, "%s", in->name);
    snprintf (peer->host, sizeof peer->host, "%s", in->host);
    peer->worker = in->worker;
    peer->pid = in->pid;
    for (uint32_t i = 0; i < in->ninputs; i++) {
        zf_error_t err;
        static const zf_key_t queue_key = { .name = "input", .type = ZF_KEY_QUEUE };
        if (zf_key_check (&queue_key, in->inputs[i], &err)) {
            s_send_error (self, peer->routing_id, ZF_EVALUE, err.text);
            zhashx_delete (self->peers, peer->key);
            return;
        }
        queue_t *queue = s_queue_require (self, in->inputs[i]);
        group_t *group = s_group_require (self, queue, in->name);
        if (group->nworkers == group->cap) {
            group->cap = group->cap ? group->cap * 2 : 4;
            group->workers = (peer_t **) realloc (group->workers, group->cap * sizeof (peer_t *));
        }
        group->workers[group->nworkers++] = peer;
        peer->groups[peer->ngroups++] = group;
        if (group->ready.size)
            s_mark_dirty (self, group);
    }
    peer->welcomed = true;
    zf_proto_reset (self->out, ZF_WELCOME);
    self->out->heartbeat = (uint32_t) self->heartbeat;
    self->out->liveness = (uint32_t) self->liveness;
    self->out->window = self->window;
    zchunk_t *checkpoint = (zchunk_t *) zhashx_lookup (self->checkpoints, peer->name);
    if (checkpoint) {
        self->out->checkpoint_size = (uint32_t) zchunk_size (checkpoint);
        memcpy (self->out->checkpoint, zchunk_data (checkpoint), zchunk_size (checkpoint));
    }
    s_send (self, peer);
    s_event_peer (self, "worker.joined", peer, "");
}

static void
s_on_put (self_t *self, peer_t *peer)
{
    zf_proto_t *in = self->in;
    pending_put_t *put = (pending_put_t *) zmalloc (
        sizeof (pending_put_t) + in->nitems * (sizeof (zf_env_t) + sizeof (lineage_t *)));
    put->holds = (lineage_t **) &put->items[in->nitems];
    snprintf (put->peer, sizeof put->peer, "%s", peer->key);
    snprintf (put->actor, sizeof put->actor, "%s", peer->name);
    put->seq = in->seq;
    put->track = in->track;
    put->checkpoint_size = in->checkpoint_size;
    memcpy (put->checkpoint, in->checkpoint, in->checkpoint_size);
    put->nitems = in->nitems;
    for (uint32_t i = 0; i < in->nitems; i++) {
        put->items[i] = in->items[i];
        in->items[i].body = NULL;
        if (in->items[i].headers_size) {
            uint8_t *copy = (uint8_t *) malloc (in->items[i].headers_size);
            memcpy (copy, in->items[i].headers, in->items[i].headers_size);
            put->items[i].headers = copy;
        }
        // A child holds its lineage from now: if this PUT must wait for
        // room, its parent's ACK cannot end the lineage before it.
        zf_env_t *env = &put->items[i];
        if (!zf_id_is_zero (&env->root))
            put->holds[i] = s_lineage_hold (self, &env->root);
        else if (in->track) {
            put->holds[i] = s_lineage_hold (self, &env->id);
            snprintf (put->holds[i]->tracker, PEER_KEY_MAX, "%s", peer->key);
        }
    }
    queue_t *full = s_admit (self, put);
    if (full)
        zlistx_add_end (full->waiting, put);
    else {
        s_confirm (self, put);
        s_pending_destroy (&put);
    }
}

static void
s_on_credit (self_t *self, peer_t *peer)
{
    peer->window += self->in->credit;
    for (size_t g = 0; g < peer->ngroups; g++)
        s_mark_dirty (self, peer->groups[g]);
}

//  The delivery of msg held by peer, or NULL.
static delivery_t *
s_held_by (self_t *self, const zf_id_t *id, peer_t *peer)
{
    msg_t *msg = (msg_t *) zf_idmap_get (self->live, id);
    if (!msg)
        return NULL;
    for (uint32_t g = 0; g < msg->ndeliveries; g++)
        if (msg->deliveries[g].holder == peer && msg->deliveries[g].state == D_INFLIGHT)
            return &msg->deliveries[g];
    return NULL;
}

//  Frees one slot of peer's window: the groups it works in may dispatch.
static void
s_slot_freed (self_t *self, peer_t *peer)
{
    for (size_t g = 0; g < peer->ngroups; g++)
        if (peer->groups[g]->ready.size)
            s_mark_dirty (self, peer->groups[g]);
}

static void
s_on_ack (self_t *self, peer_t *peer)
{
    for (uint32_t i = 0; i < self->in->nids; i++) {
        delivery_t *d = s_held_by (self, &self->in->ids[i], peer);
        if (!d) {
            // Timed out and redelivered meanwhile, or acked twice.
            self->late_acks++;
            if (peer->zombies)
                peer->zombies--;
            continue;
        }
        s_unhold (d);
        peer->done++;
        s_finish_delivery (self, d, false);
    }
    s_slot_freed (self, peer);
}

static void
s_on_nack (self_t *self, peer_t *peer)
{
    delivery_t *d = s_held_by (self, &self->in->id, peer);
    if (!d) {
        self->late_acks++;
        if (peer->zombies)
            peer->zombies--;
        return;
    }
    peer->failed++;
    s_retry (self, d, self->in->reason, self->in->final, self->in->delay);
    s_slot_freed (self, peer);
}

static void
s_on_ping (self_t *self, peer_t *peer)
{
    if (self->in->figures_size) {
        // The worker's own figures: shown with it in the stats event.
        uint8_t *copy = (uint8_t *) realloc (peer->figures, self->in->figures_size);
        if (copy) {
            memcpy (copy, self->in->figures, self->in->figures_size);
            peer->figures = copy;
            peer->figures_size = self->in->figures_size;
        }
    }
    zf_proto_reset (self->out, ZF_PONG);
    s_send (self, peer);
}

static void
s_on_pong (self_t *self, peer_t *peer)
{
}

static void
s_on_end (self_t *self, peer_t *peer)
{
    peer->ended = true;
    zhashx_update (self->ended, peer->name, (void *) "");
    s_event_peer (self, "source.ended", peer, "");
}

//  Cancels what is left of a lineage: queued items are dropped, workers
//  holding its items are told to drop them (and ack them).
static void
s_on_cancel (self_t *self, peer_t *peer)
{
    // A hold keeps the lineage while its items are dropped one by one.
    lineage_t *lineage = s_lineage_hold (self, &self->in->id);
    lineage->cancelled = true;
    zf_id_t root = lineage->root;
    for (queue_t *queue = (queue_t *) zlistx_first (self->queue_order); queue;
         queue = (queue_t *) zlistx_next (self->queue_order))
        for (size_t g = 0; g < queue->ngroups; g++) {
            delivery_t *d = queue->groups[g]->ready.head;
            while (d) {
                delivery_t *next = d->next[0];
                if (d->msg->lineage == lineage) {
                    s_list_remove (&queue->groups[g]->ready, d, 0);
                    s_finish_delivery (self, d, false);
                }
                d = next;
            }
        }
    for (size_t i = 0; i < self->ndelayed;) {
        delivery_t *d = self->delayed[i];
        if (d->msg->lineage == lineage) {
            s_heap_remove (self, d);
            s_finish_delivery (self, d, false);
        }
        else
            i++;
    }
    for (peer_t *p = (peer_t *) zhashx_first (self->peers); p;
         p = (peer_t *) zhashx_next (self->peers))
        for (delivery_t *d = p->held.head; d; d = d->next[1])
            if (d->msg->lineage == lineage) {
                zf_proto_reset (self->out, ZF_CANCEL);
                self->out->id = root;
                snprintf (self->out->reason, sizeof self->out->reason, "%s",
                          self->in->reason[0] ? self->in->reason : "cancelled");
                s_send (self, p);
                break;
            }
    s_lineage_release (self, lineage);
}

static const char *
s_state_of (self_t *self, const zf_id_t *id, msg_t **msg_p)
{
    msg_t *msg = (msg_t *) zf_idmap_get (self->live, id);
    *msg_p = msg;
    if (msg) {
        if (msg->dead)
            return "dead";
        bool inflight = false, delayed = false;
        for (uint32_t g = 0; g < msg->ndeliveries; g++) {
            inflight |= msg->deliveries[g].state == D_INFLIGHT;
            delayed |= msg->deliveries[g].state == D_DELAYED;
        }
        return delayed ? "retrying" : inflight ? "delivered" : "queued";
    }
    switch (self->seen ? zf_window_get (self->seen, id) : 0) {
        case SEEN_DONE:
            return "done";
        case SEEN_DEAD:
            return "dead";
        case SEEN_CANCELLED:
            return "cancelled";
        default:
            return "unknown";
    }
}

static void
s_on_status (self_t *self, peer_t *peer)
{
    zf_id_t id = self->in->id;
    zf_proto_reset (self->out, ZF_REPORT);
    zf_proto_t *out = self->out;
    if (!zf_id_is_zero (&id)) {
        msg_t *msg;
        out->id = id;
        snprintf (out->state, sizeof out->state, "%s", s_state_of (self, &id, &msg));
        if (msg) {
            snprintf (out->queue, sizeof out->queue, "%s", msg->queue->name);
            for (uint32_t g = 0; g < msg->ndeliveries; g++)
                if (msg->deliveries[g].attempt > out->attempt)
                    out->attempt = msg->deliveries[g].attempt;
            if (msg->reason)
                snprintf (out->reason, sizeof out->reason, "%s", msg->reason);
        }
    }
    else
        for (queue_t *queue = (queue_t *) zlistx_first (self->queue_order); queue;
             queue = (queue_t *) zlistx_next (self->queue_order)) {
            zf_figures_t *f = zf_proto_add_queue (out);
            if (!f)
                break;
            snprintf (f->name, sizeof f->name, "%s", queue->name);
            f->depth = queue->depth;
            f->inflight = queue->inflight.size;
            f->put = queue->put;
            f->ack = queue->acked;
            f->nack = queue->nacked;
            f->dead = queue->dead;
            for (size_t g = 0; g < queue->ngroups; g++)
                f->consumers += (uint32_t) queue->groups[g]->nworkers;
        }
    s_send (self, peer);
}

static void
s_on_bye (self_t *self, peer_t *peer)
{
    s_peer_leave (self, peer, false);
}

typedef void (s_handler_fn) (self_t *self, peer_t *peer);

//  What the broker accepts from a peer. A command missing here is one the
//  broker sends, not one it takes.
static s_handler_fn *const s_handlers[ZF_COMMAND_COUNT] = {
    [ZF_HELLO] = s_on_hello,   [ZF_PUT] = s_on_put,   [ZF_CREDIT] = s_on_credit,
    [ZF_ACK] = s_on_ack,       [ZF_NACK] = s_on_nack, [ZF_PING] = s_on_ping,
    [ZF_PONG] = s_on_pong,     [ZF_END] = s_on_end,   [ZF_CANCEL] = s_on_cancel,
    [ZF_STATUS] = s_on_status, [ZF_BYE] = s_on_bye,
};

static void
s_peer_error (self_t *self, peer_t *peer, zframe_t *routing_id, const char *key, zf_err_t code,
              const char *reason)
{
    s_send_error (self, routing_id, code, reason);
    s_event_rejected (self, "router", peer && peer->name[0] ? peer->name : key, reason);
    if (peer && ++peer->errors >= ERRORS_TO_DROP) {
        zsys_warning ("broker: dropping %s after %d protocol errors", peer->name, ERRORS_TO_DROP);
        s_peer_leave (self, peer, true);
    }
}

static void
s_router_message (self_t *self, zmsg_t *msg)
{
    zframe_t *routing_id = zmsg_pop (msg);
    if (!routing_id || zframe_size (routing_id) == 0 || zframe_size (routing_id) > 255) {
        zframe_destroy (&routing_id);
        zmsg_destroy (&msg);
        return;
    }
    char key[PEER_KEY_MAX];
    static const char digits[] = "0123456789abcdef";
    size_t size = zframe_size (routing_id);
    for (size_t i = 0; i < size; i++) {
        key[2 * i] = digits[zframe_data (routing_id)[i] >> 4];
        key[2 * i + 1] = digits[zframe_data (routing_id)[i] & 15];
    }
    key[2 * size] = 0;
    peer_t *peer = (peer_t *) zhashx_lookup (self->peers, key);

    zf_error_t err;
    if (zf_proto_decode (self->in, &msg, &err)) {
        s_peer_error (self, peer, routing_id, key, err.code, err.text);
        zframe_destroy (&routing_id);
        return;
    }
    zf_command_t command = self->in->command;
    if (!s_handlers[command]) {
        char reason[96];
        snprintf (reason, sizeof reason, "%s is sent by the broker, not to it",
                  zf_proto_command_name (command));
        s_peer_error (self, peer, routing_id, key, ZF_ESTATE, reason);
    }
    else if (!peer && command != ZF_HELLO) {
        char reason[96];
        snprintf (reason, sizeof reason, "%s before HELLO", zf_proto_command_name (command));
        s_peer_error (self, NULL, routing_id, key, ZF_ESTATE, reason);
    }
    else {
        if (!peer) {
            peer = (peer_t *) zmalloc (sizeof (peer_t));
            snprintf (peer->key, sizeof peer->key, "%s", key);
            peer->routing_id = zframe_dup (routing_id);
            zhashx_insert (self->peers, key, peer);
        }
        peer->last_seen = s_now ();
        s_handlers[command](self, peer);
    }
    zframe_destroy (&routing_id);
}

//  --------------------------------------------------------------------------
//  Dispatch: ready items to workers with free credit, in batches.

static uint64_t
s_free_slots (peer_t *peer)
{
    uint64_t used = peer->held.size + peer->zombies;
    return peer->window > used ? peer->window - used : 0;
}

static void
s_dispatch_group (self_t *self, group_t *group)
{
    while (group->ready.size && group->nworkers) {
        // Round robin over workers with a free slot.
        peer_t *worker = NULL;
        for (size_t tries = 0; tries < group->nworkers; tries++) {
            peer_t *candidate = group->workers[group->next++ % group->nworkers];
            if (s_free_slots (candidate)) {
                worker = candidate;
                break;
            }
        }
        if (!worker)
            return;
        uint64_t slots = s_free_slots (worker);
        // Share a burst among the group's workers rather than give one all.
        uint64_t share = group->ready.size / group->nworkers + 1;
        if (slots > share)
            slots = share;
        zf_proto_reset (self->out, ZF_DELIVER);
        int64_t now = s_now ();
        while (slots-- && group->ready.head && self->out->nitems < ZF_BATCH_MAX) {
            delivery_t *d = group->ready.head;
            s_list_remove (&group->ready, d, 0);
            msg_t *msg = d->msg;
            // The stored body goes out as it is: ZeroMQ shares its bytes.
            zf_env_t *env = zf_proto_add_borrowed (self->out, msg->body);
            env->id = msg->id;
            snprintf (env->queue, sizeof env->queue, "%s", msg->queue->name);
            env->attempt = ++d->attempt;
            env->ts = msg->ts;
            env->parent = msg->parent;
            env->root = msg->root;
            env->group = msg->fanin;
            env->headers = msg->headers;
            env->headers_size = msg->headers_size;
            d->state = D_INFLIGHT;
            d->holder = worker;
            d->due = msg->queue->timeout ? now + msg->queue->timeout : INT64_MAX;
            s_list_push (&msg->queue->inflight, d, 0);
            s_list_push (&worker->held, d, 1);
            group->delivered++;
        }
        s_send (self, worker);
    }
}

static void
s_dispatch (self_t *self)
{
    group_t *group;
    while ((group = (group_t *) zlistx_first (self->dirty))) {
        zlistx_delete (self->dirty, zlistx_cursor (self->dirty));
        group->dirty = false;
        s_dispatch_group (self, group);
    }
}

//  --------------------------------------------------------------------------
//  Timers

static void
s_tick (self_t *self, int64_t now)
{
    // Retries whose backoff is over.
    while (self->ndelayed && self->delayed[0]->due <= now) {
        delivery_t *d = self->delayed[0];
        s_heap_remove (self, d);
        d->state = D_READY;
        s_list_push (&d->group->ready, d, 0);
        s_mark_dirty (self, d->group);
    }
    // Items held past their queue's timeout.
    for (queue_t *queue = (queue_t *) zlistx_first (self->queue_order); queue;
         queue = (queue_t *) zlistx_next (self->queue_order))
        while (queue->inflight.head && queue->inflight.head->due <= now) {
            delivery_t *d = queue->inflight.head;
            if (d->holder)
                d->holder->zombies++;
            s_retry (self, d, "timeout", false, 0);
        }
    // Heartbeats: ping the quiet, bury the silent.
    zlistx_t *lost = zlistx_new ();
    for (peer_t *peer = (peer_t *) zhashx_first (self->peers); peer;
         peer = (peer_t *) zhashx_next (self->peers)) {
        if (now - peer->last_seen > self->heartbeat * self->liveness)
            zlistx_add_end (lost, peer);
        else if (now - peer->last_sent >= self->heartbeat) {
            zf_proto_reset (self->out, ZF_PING);
            s_send (self, peer);
        }
    }
    for (peer_t *peer = (peer_t *) zlistx_first (lost); peer; peer = (peer_t *) zlistx_next (lost))
        s_peer_leave (self, peer, true);
    zlistx_destroy (&lost);
}

static void
s_stats (self_t *self, int64_t elapsed_ms)
{
    event_t event;
    s_event_begin (self, &event, "stats", self->journal ? 7 : 6);
    zf_mp_pack_cstr (&event.pk, "queues");
    msgpack_pack_array (&event.pk, (uint32_t) zlistx_size (self->queue_order));
    double seconds = elapsed_ms > 0 ? elapsed_ms / 1000.0 : 1.0;
    for (queue_t *queue = (queue_t *) zlistx_first (self->queue_order); queue;
         queue = (queue_t *) zlistx_next (self->queue_order)) {
        msgpack_pack_map (&event.pk, 10);
        s_pack_kv (&event, "name", queue->name);
        zf_mp_pack_cstr (&event.pk, "depth");
        msgpack_pack_uint64 (&event.pk, queue->depth);
        zf_mp_pack_cstr (&event.pk, "inflight");
        msgpack_pack_uint64 (&event.pk, queue->inflight.size);
        zf_mp_pack_cstr (&event.pk, "put");
        msgpack_pack_uint64 (&event.pk, queue->put);
        zf_mp_pack_cstr (&event.pk, "ack");
        msgpack_pack_uint64 (&event.pk, queue->acked);
        zf_mp_pack_cstr (&event.pk, "nack");
        msgpack_pack_uint64 (&event.pk, queue->nacked);
        zf_mp_pack_cstr (&event.pk, "dead");
        msgpack_pack_uint64 (&event.pk, queue->dead);
        zf_mp_pack_cstr (&event.pk, "put_rate");
        msgpack_pack_double (&event.pk, (double) (queue->put - queue->last_put) / seconds);
        zf_mp_pack_cstr (&event.pk, "ack_rate");
        msgpack_pack_double (&event.pk, (double) (queue->acked - queue->last_acked) / seconds);
        zf_mp_pack_cstr (&event.pk, "groups");
        msgpack_pack_array (&event.pk, (uint32_t) queue->ngroups);
        for (size_t g = 0; g < queue->ngroups; g++) {
            group_t *group = queue->groups[g];
            msgpack_pack_map (&event.pk, 4);
            s_pack_kv (&event, "name", group->name);
            zf_mp_pack_cstr (&event.pk, "workers");
            msgpack_pack_uint64 (&event.pk, group->nworkers);
            zf_mp_pack_cstr (&event.pk, "ready");
            msgpack_pack_uint64 (&event.pk, group->ready.size);
            zf_mp_pack_cstr (&event.pk, "acked");
            msgpack_pack_uint64 (&event.pk, group->acked);
        }
        queue->last_put = queue->put;
        queue->last_acked = queue->acked;
    }
    zf_mp_pack_cstr (&event.pk, "workers");
    msgpack_pack_array (&event.pk, (uint32_t) zhashx_size (self->peers));
    for (peer_t *peer = (peer_t *) zhashx_first (self->peers); peer;
         peer = (peer_t *) zhashx_next (self->peers)) {
        msgpack_pack_map (&event.pk, peer->figures ? 8 : 7);
        s_pack_kv (&event, "actor", peer->name);
        zf_mp_pack_cstr (&event.pk, "worker");
        msgpack_pack_uint32 (&event.pk, peer->worker);
        s_pack_kv (&event, "host", peer->host);
        zf_mp_pack_cstr (&event.pk, "pid");
        msgpack_pack_uint64 (&event.pk, peer->pid);
        zf_mp_pack_cstr (&event.pk, "inflight");
        msgpack_pack_uint64 (&event.pk, peer->held.size);
        zf_mp_pack_cstr (&event.pk, "done");
        msgpack_pack_uint64 (&event.pk, peer->done);
        zf_mp_pack_cstr (&event.pk, "failed");
        msgpack_pack_uint64 (&event.pk, peer->failed);
        if (peer->figures) {
            zf_mp_pack_cstr (&event.pk, "figures");
            msgpack_pack_str_body (&event.pk, peer->figures, peer->figures_size);
        }
    }
    zf_mp_pack_cstr (&event.pk, "lineages");
    msgpack_pack_uint64 (&event.pk, zf_idmap_size (self->lineages));
    zf_mp_pack_cstr (&event.pk, "ended");
    msgpack_pack_array (&event.pk, (uint32_t) zhashx_size (self->ended));
    for (void *item = zhashx_first (self->ended); item; item = zhashx_next (self->ended))
        zf_mp_pack_cstr (&event.pk, (const char *) zhashx_cursor (self->ended));
    zf_mp_pack_cstr (&event.pk, "rejected");
    msgpack_pack_uint64 (&event.pk, self->rejected);
    zf_mp_pack_cstr (&event.pk, "late_acks");
    msgpack_pack_uint64 (&event.pk, self->late_acks);
    if (self->journal) {
        const char *failed = zf_journal_failed (self->journal);
        zf_mp_pack_cstr (&event.pk, "journal");
        msgpack_pack_map (&event.pk, failed ? 6 : 5);
        zf_mp_pack_cstr (&event.pk, "written");
        msgpack_pack_uint64 (&event.pk, zf_journal_appended (self->journal));
        zf_mp_pack_cstr (&event.pk, "durable");
        msgpack_pack_uint64 (&event.pk, zf_journal_durable (self->journal));
        zf_mp_pack_cstr (&event.pk, "waiting");
        msgpack_pack_uint64 (&event.pk, zlistx_size (self->confirms));
        zf_mp_pack_cstr (&event.pk, "compactions");
        msgpack_pack_uint64 (&event.pk, self->compactions);
        zf_mp_pack_cstr (&event.pk, "compaction_ms");
        msgpack_pack_int64 (&event.pk, self->compaction_ms);
        if (failed)
            s_pack_kv (&event, "failed", failed);
    }
    s_event_send (self, &event);
}

//  --------------------------------------------------------------------------
//  Intake (PULL) and subscriptions (XPUB)

static void
s_intake_message (self_t *self, zmsg_t *msg)
{
    char reason[400] = "";
    zframe_t *name = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    if (zmsg_size (msg) != 2)
        snprintf (reason, sizeof reason, "%zu frames; intake takes [queue][msgpack body]",
                  zmsg_size (msg));
    else if (zframe_size (name) == 0 || zframe_size (name) > ZF_NAME_MAX ||
             memchr (zframe_data (name), 0, zframe_size (name)))
        snprintf (reason, sizeof reason, "frame 0 is not a queue name");
    else {
        char queue_name[ZF_NAME_MAX + 1];
        memcpy (queue_name, zframe_data (name), zframe_size (name));
        queue_name[zframe_size (name)] = 0;
        zf_mp_t mp;
        zf_mp_init (&mp, zframe_data (body), zframe_size (body));
        zf_error_t err;
        queue_t *queue = (queue_t *) zhashx_lookup (self->queues, queue_name);
        if (!queue)
            snprintf (reason, sizeof reason, "no queue '%s' in this pipeline", queue_name);
        else if (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, &err) || zf_mp_left (&mp))
            snprintf (reason, sizeof reason, "body is not one msgpack value: %s",
                      zf_mp_left (&mp) ? "bytes after the value" : err.text);
        else {
            zf_env_t env = { .id = zf_id_random (), .ts = zclock_time () };
            zmsg_remove (msg, body);
            msg_t *stored = s_msg_store (self, queue, &env, &body, NULL);
            s_seen_set (self, &stored->id, SEEN_LIVE);
            s_journal_put (self, stored, 0);
        }
    }
    if (reason[0])
        s_event_rejected (self, "intake", "", reason);
    zmsg_destroy (&msg);
}

//  True while every queue that intake could feed has room; when one is full
//  the broker stops reading intake, and ZeroMQ pushes back on the senders.
static bool
s_intake_open (self_t *self)
{
    for (queue_t *queue = (queue_t *) zlistx_first (self->queue_order); queue;
         queue = (queue_t *) zlistx_next (self->queue_order))
        if ((int64_t) queue->depth >= queue->max_depth)
            return false;
    return true;
}

static void
s_subscription (self_t *self, zframe_t *frame)
{
    size_t size = zframe_size (frame);
    const char *data = (const char *) zframe_data (frame);
    if (size < 1 || (data[0] != 0 && data[0] != 1))
        return;
    char *topic = strndup (data + 1, size - 1);
    if (data[0] == 1)
        zhashx_update (self->subscriptions, topic, (void *) "");
    else
        zhashx_delete (self->subscriptions, topic);
    free (topic);
    for (queue_t *queue = (queue_t *) zlistx_first (self->queue_order); queue;
         queue = (queue_t *) zlistx_next (self->queue_order))
        s_update_taps (self, queue);
}

//  --------------------------------------------------------------------------
//  Recovery and snapshots

//  Reads a journal record's fields; the first shortfall is kept in bad.
typedef struct {
    const uint8_t *p;   // next byte
    const uint8_t *end; // past the last
    const char *bad;    // the field that did not fit, or NULL
} reader_t;

static const uint8_t *
s_r (reader_t *r, size_t size, const char *field)
{
    if (r->bad || (size_t) (r->end - r->p) < size) {
        if (!r->bad)
            r->bad = field;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += size;
    return at;
}

static uint64_t
s_rint (reader_t *r, int bytes, const char *field)
{
    const uint8_t *p = s_r (r, (size_t) bytes, field);
    uint64_t v = 0;
    for (int i = 0; p && i < bytes; i++)
        v |= (uint64_t) p[i] << (8 * i);
    return v;
}

static void
s_rid (reader_t *r, zf_id_t *id, const char *field)
{
    const uint8_t *p = s_r (r, ZF_ID_SIZE, field);
    if (p)
        memcpy (id->bytes, p, ZF_ID_SIZE);
}

static void
s_rname (reader_t *r, char name[ZF_NAME_MAX + 1], const char *field)
{
    size_t len = (size_t) s_rint (r, 1, field);
    const uint8_t *p = len <= ZF_NAME_MAX ? s_r (r, len, field) : NULL;
    if (!p && !r->bad)
        r->bad = field;
    snprintf (name, ZF_NAME_MAX + 1, "%.*s", p ? (int) len : 0, p ? (const char *) p : "");
}

//  Bytes with a length of `bytes` bytes before them.
static const uint8_t *
s_rblob (reader_t *r, int bytes, size_t *size, const char *field)
{
    *size = (size_t) s_rint (r, bytes, field);
    return s_r (r, *size, field);
}

static int
s_replay_put (self_t *self, reader_t *r, zf_error_t *err)
{
    zf_env_t env = { 0 };
    s_rid (r, &env.id, "id");
    s_rid (r, &env.parent, "parent");
    s_rid (r, &env.root, "root");
    env.ts = (int64_t) s_rint (r, 8, "ts");
    env.attempt = (uint32_t) s_rint (r, 4, "attempt");
    bool dead = s_rint (r, 1, "dead") != 0;
    s_rid (r, &env.group.id, "group id");
    env.group.size = (uint32_t) s_rint (r, 4, "group size");
    env.group.index = (uint32_t) s_rint (r, 4, "group index");
    s_rname (r, env.queue, "queue");
    size_t headers_size, reason_size, body_size;
    env.headers = s_rblob (r, 4, &headers_size, "headers");
    env.headers_size = (uint32_t) headers_size;
    const uint8_t *reason = s_rblob (r, 2, &reason_size, "reason");
    const uint8_t *body = s_rblob (r, 4, &body_size, "body");
    if (r->bad || r->p != r->end)
        return zf_error_set (err, ZF_EVALUE, "PUT: %s", r->bad ? r->bad : "bytes after the body");
    if (!env.queue[0])
        return zf_error_set (err, ZF_EVALUE, "PUT: an empty queue name");
    if (zf_idmap_get (self->live, &env.id))
        return 0; // stored already
    queue_t *queue = s_queue_require (self, env.queue);
    lineage_t *lineage = zf_id_is_zero (&env.root) ? NULL : s_lineage_hold (self, &env.root);
    zframe_t *frame = zframe_new (body, body_size);
    msg_t *msg = s_msg_store (self, queue, &env, &frame, lineage);
    msg->dead = dead;
    if (reason_size)
        msg->reason = strndup ((const char *) reason, reason_size);
    s_seen_set (self, &msg->id, SEEN_LIVE);
    return 0;
}

//  Takes delivery d of a message being restored off its group's ready list.
static void
s_replay_finish (self_t *self, delivery_t *d)
{
    if (d->state == D_READY)
        s_list_remove (&d->group->ready, d, 0);
    d->state = D_FINISHED;
}

static int
s_replay_ack (self_t *self, reader_t *r, zf_error_t *err)
{
    zf_id_t id;
    char group[ZF_NAME_MAX + 1];
    s_rid (r, &id, "id");
    bool dead = s_rint (r, 1, "dead") != 0;
    s_rname (r, group, "group");
    if (r->bad || r->p != r->end)
        return zf_error_set (err, ZF_EVALUE, "ACK: %s", r->bad ? r->bad : "bytes after the group");
    msg_t *msg = (msg_t *) zf_idmap_get (self->live, &id);
    for (uint32_t g = 0; msg && g < msg->ndeliveries; g++) {
        delivery_t *d = &msg->deliveries[g];
        if (d->state != D_FINISHED && streq (d->group->name, group)) {
            s_replay_finish (self, d);
            msg->dead |= dead;
            if (--msg->pending == 0)
                s_msg_free (self, msg);
            break;
        }
    }
    return 0; // a group no longer in the pipeline: its delivery stays ready
}

static int
s_replay_retry (self_t *self, reader_t *r, zf_error_t *err)
{
    zf_id_t id;
    char group[ZF_NAME_MAX + 1];
    s_rid (r, &id, "id");
    uint32_t attempt = (uint32_t) s_rint (r, 4, "attempt");
    s_rname (r, group, "group");
    if (r->bad || r->p != r->end)
        return zf_error_set (err, ZF_EVALUE, "RETRY: %s",
                             r->bad ? r->bad : "bytes after the group");
    msg_t *msg = (msg_t *) zf_idmap_get (self->live, &id);
    for (uint32_t g = 0; msg && g < msg->ndeliveries; g++) {
        delivery_t *d = &msg->deliveries[g];
        if (d->state != D_FINISHED && streq (d->group->name, group) && attempt > d->attempt)
            d->attempt = attempt;
    }
    return 0; // an item finished since, or a group no longer in the pipeline
}

static int
s_replay_fin (self_t *self, reader_t *r, zf_error_t *err)
{
    zf_id_t id;
    s_rid (r, &id, "id");
    uint8_t outcome = (uint8_t) s_rint (r, 1, "outcome");
    if (r->bad || r->p != r->end)
        return zf_error_set (err, ZF_EVALUE, "FIN: %s",
                             r->bad ? r->bad : "bytes after the outcome");
    if (outcome != SEEN_DONE && outcome != SEEN_DEAD && outcome != SEEN_CANCELLED)
        return zf_error_set (err, ZF_EVALUE, "FIN: unknown outcome %u", outcome);
    msg_t *msg = (msg_t *) zf_idmap_get (self->live, &id);
    if (msg) {
        for (uint32_t g = 0; g < msg->ndeliveries; g++)
            s_replay_finish (self, &msg->deliveries[g]);
        msg->dead = outcome == SEEN_DEAD;
        s_msg_free (self, msg);
    }
    s_seen_set (self, &id, outcome); // the outcome as recorded (cancelled included)
    return 0;
}

static int
s_replay_checkpoint (self_t *self, reader_t *r, zf_error_t *err)
{
    char actor[ZF_NAME_MAX + 1];
    size_t size;
    s_rname (r, actor, "actor");
    const uint8_t *data = s_rblob (r, 4, &size, "data");
    if (r->bad || r->p != r->end || size > ZF_CHECKPOINT_MAX)
        return zf_error_set (err, ZF_EVALUE, "CHECKPOINT: %s",
                             r->bad                     ? r->bad
                             : size > ZF_CHECKPOINT_MAX ? "data over 256 bytes"
                                                        : "bytes after the data");
    zhashx_update (self->checkpoints, actor, zchunk_new (data, size));
    return 0;
}

static int
s_replay_record (void *arg, zf_jr_type_t type, const uint8_t *payload, size_t size, zf_error_t *err)
{
    self_t *self = (self_t *) arg;
    reader_t r = { .p = payload, .end = payload + size };
    switch (type) {
        case ZF_JR_PUT:
            return s_replay_put (self, &r, err);
        case ZF_JR_ACK:
            return s_replay_ack (self, &r, err);
        case ZF_JR_FIN:
            return s_replay_fin (self, &r, err);
        case ZF_JR_CHECKPOINT:
            return s_replay_checkpoint (self, &r, err);
        case ZF_JR_RETRY:
            return s_replay_retry (self, &r, err);
        default:
            return zf_error_set (err, ZF_EVALUE, "record type %d out of place", (int) type);
    }
}

//  Opens the journal at path and restores what it holds. Returns 0, or -1
//  with err filled (the broker must not start).
static int
s_journal_open (self_t *self, const char *path, zf_error_t *err)
{
    zconfig_t *conf = self->pipeline->broker;
    const char *mode = zf_conf_get (conf, zf_broker_keys, "sync");
    zf_sync_t sync = streq (mode, "always")  ? ZF_SYNC_ALWAYS
                     : streq (mode, "never") ? ZF_SYNC_NEVER
                                             : ZF_SYNC_BATCH;
    self->journal =
        zf_journal_open (path, sync, zf_conf_duration (conf, zf_broker_keys, "sync-interval"), err);
    if (!self->journal)
        return -1;
    zf_journal_set_segment_max (self->journal,
                                (uint64_t) zf_conf_size (conf, zf_broker_keys, "journal-segment"));
    zf_journal_report_t report;
    self->replaying = true;
    int rc = zf_journal_replay (self->journal, s_replay_record, self, &report, err);
    self->replaying = false;
    if (rc)
        return -1;
    // The figures are this run's: what was restored is depth, not traffic.
    for (queue_t *queue = (queue_t *) zlistx_first (self->queue_order); queue;
         queue = (queue_t *) zlistx_next (self->queue_order)) {
        queue->put = queue->acked = queue->dead = 0;
        for (size_t g = 0; g < queue->ngroups; g++)
            queue->groups[g]->acked = 0;
    }
    size_t restored = zf_idmap_size (self->live);
    if (restored || report.records)
        zsys_info ("broker: journal %s: %zu items restored from %" PRIu64 " records (%.1f MB) in "
                   "%" PRId64 " ms",
                   path, restored, report.records, report.bytes / 1e6, report.elapsed_ms);
    return 0;
}

//  The attempts of d that are over: one in flight does not count yet.
static uint32_t
s_attempts_over (const delivery_t *d)
{
    return d->state == D_INFLIGHT && d->attempt ? d->attempt - 1 : d->attempt;
}

static void
s_snapshot_seen (const zf_id_t *id, uint8_t outcome, void *arg)
{
    if (outcome != SEEN_LIVE) // stored items come with their PUT
        s_journal_fin ((self_t *) arg, id, outcome);
}

typedef struct {
    msg_t **msgs; // stored messages
    size_t count; // entries
} msg_list_t;

static void
s_snapshot_collect (void *value, void *arg)
{
    msg_list_t *list = (msg_list_t *) arg;
    list->msgs[list->count++] = (msg_t *) value;
}

static int
s_order_cmp (const void *a, const void *b)
{
    uint64_t x = (*(msg_t *const *) a)->order, y = (*(msg_t *const *) b)->order;
    return x < y ? -1 : x > y;
}

//  Compaction: the live state into a new segment, the old ones deleted.
//  The loop waits meanwhile, for time in proportion to what is stored.
static void
s_snapshot (self_t *self)
{
    int64_t started = zclock_mono ();
    zf_error_t err;
    if (zf_journal_snapshot_begin (self->journal, &err)) {
        zsys_error ("broker: %s", err.text);
        return;
    }
    if (self->seen)
        zf_window_foreach (self->seen, s_snapshot_seen, self);
    msg_list_t list = { 0 };
    list.msgs = (msg_t **) malloc ((zf_idmap_size (self->live) + 1) * sizeof (msg_t *));
    if (!list.msgs) {
        zsys_error ("broker: no memory to compact the journal");
        abort (); // half a snapshot must not be closed
    }
    zf_idmap_foreach (self->live, s_snapshot_collect, &list);
    qsort (list.msgs, list.count, sizeof (msg_t *), s_order_cmp);
    for (size_t i = 0; i < list.count; i++) {
        msg_t *msg = list.msgs[i];
        uint32_t attempt = UINT32_MAX;
        for (uint32_t g = 0; g < msg->ndeliveries; g++)
            if (s_attempts_over (&msg->deliveries[g]) < attempt)
                attempt = s_attempts_over (&msg->deliveries[g]);
        s_journal_put (self, msg, attempt);
        for (uint32_t g = 0; g < msg->ndeliveries; g++) {
            delivery_t *d = &msg->deliveries[g];
            if (d->state == D_FINISHED)
                s_journal_ack (self, d, false);
            else if (s_attempts_over (d) > attempt)
                s_journal_retry (self, d, s_attempts_over (d)); // more than the PUT says
        }
    }
    free (list.msgs);
    for (zchunk_t *chunk = (zchunk_t *) zhashx_first (self->checkpoints); chunk;
         chunk = (zchunk_t *) zhashx_next (self->checkpoints))
        s_journal_checkpoint (self, (const char *) zhashx_cursor (self->checkpoints),
                              zchunk_data (chunk), zchunk_size (chunk));
    if (zf_journal_snapshot_end (self->journal, &err))
        zsys_error ("broker: %s", err.text);
    self->compactions++;
    self->compaction_ms += zclock_mono () - started;
}

//  --------------------------------------------------------------------------
//  Authentication (ZAP, ZeroMQ RFC 27): with CURVE every connection's
//  handshake asks this handler, which lets in the keys of the certificates
//  in curve-clients and nobody else, and makes each refusal an event.

//  Loads the broker's certificate and the allowed clients, and binds the
//  ZAP handler, when the broker section asks for CURVE. Returns 0 or -1.
static int
s_curve_open (self_t *self, zf_error_t *err)
{
    zconfig_t *conf = self->pipeline->broker;
    const char *secret = zf_conf_get (conf, zf_broker_keys, "curve-secret");
    if (!secret)
        return 0;
    char *path = zf_pipeline_path (self->pipeline, secret);
    self->curve = zf_curve_load (path, true, err);
    free (path);
    if (!self->curve)
        return -1;
    const char *clients = zf_conf_get (conf, zf_broker_keys, "curve-clients");
    self->allowed_dir = clients ? zf_pipeline_path (self->pipeline, clients) : strdup ("");
    struct stat st;
    if (stat (self->allowed_dir, &st) != 0 || !S_ISDIR (st.st_mode))
        return zf_error_set (err, ZF_ECONFIG, "curve-clients: %s is not a folder",
                             self->allowed_dir);
    self->allowed = zcertstore_new (self->allowed_dir);
    self->zap = zsock_new (ZMQ_REP);
    if (zsock_bind (self->zap, "inproc://zeromq.zap.01") == -1)
        return zf_error_set (err, ZF_EIO,
                             "cannot answer ZAP requests: another broker in this process does");
    return 0;
}

static void
s_zap_request (self_t *self)
{
    zmsg_t *request = zmsg_recv (self->zap);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    char *sequence = zmsg_popstr (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *key = zmsg_pop (request);
    char key_txt[41] = "";
    if (key && zframe_size (key) == 32)
        zmq_z85_encode (key_txt, zframe_data (key), 32);
    char reason[600] = "";
    if (!domain || !streq (domain, ZAP_DOMAIN))
        snprintf (reason, sizeof reason, "ZAP domain '%s' is not %s", domain ? domain : "",
                  ZAP_DOMAIN);
    else if (!mechanism || !streq (mechanism, "CURVE"))
        snprintf (reason, sizeof reason, "mechanism %s: this broker takes CURVE only",
                  mechanism ? mechanism : "none");
    else if (!key_txt[0])
        snprintf (reason, sizeof reason, "no client key");
    else if (!zcertstore_lookup (self->allowed, key_txt))
        snprintf (reason, sizeof reason, "key %s is not among the certificates in %s", key_txt,
                  self->allowed_dir);
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, sequence ? sequence : "");
    zmsg_addstr (reply, reason[0] ? "400" : "200");
    zmsg_addstr (reply, reason[0] ? "not allowed" : "OK");
    zmsg_addstr (reply, reason[0] ? "" : key_txt); // the user id
    zmsg_addmem (reply, NULL, 0);                  // no metadata
    zmsg_send (&reply, self->zap);
    if (reason[0]) {
        self->rejected++;
        event_t event;
        s_event_begin (self, &event, "auth.refused", 3);
        s_pack_kv (&event, "address", address ? address : "");
        s_pack_kv (&event, "key", key_txt);
        s_pack_kv (&event, "reason", reason);
        s_event_send (self, &event);
        zsys_warning ("broker: refused %s: %s", address ? address : "a client", reason);
    }
    zframe_destroy (&key);
    zstr_free (&version);
    zstr_free (&sequence);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
    zmsg_destroy (&request);
}

//  --------------------------------------------------------------------------
//  Setup and the loop

static void
s_msg_discard (void *value, void *arg)
{
    msg_t *msg = (msg_t *) value;
    zframe_destroy (&msg->body);
    free (msg->headers);
    free (msg->reason);
    free (msg);
}

static void
s_lineage_discard (void *value, void *arg)
{
    free (value);
}

static void
s_confirm_destroy (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_self_destroy (self_t **self_p)
{
    if (!*self_p)
        return;
    self_t *self = *self_p;
    // What is appended goes to disk. The CONFIRMs still held are not sent:
    // their writers send those PUTs again to the next broker, which
    // confirms them as duplicates.
    zf_journal_destroy (&self->journal);
    zlistx_destroy (&self->confirms);
    zf_idmap_foreach (self->live, s_msg_discard, NULL);
    zf_idmap_foreach (self->lineages, s_lineage_discard, NULL);
    zhashx_destroy (&self->peers);
    zlistx_destroy (&self->queue_order);
    zhashx_destroy (&self->queues);
    zhashx_destroy (&self->checkpoints);
    zhashx_destroy (&self->ended);
    zhashx_destroy (&self->subscriptions);
    zhashx_destroy (&self->topic_seq);
    zlistx_destroy (&self->tapped);
    zlistx_destroy (&self->dirty);
    zf_idmap_destroy (&self->live);
    zf_window_destroy (&self->seen);
    zf_idmap_destroy (&self->lineages);
    free (self->delayed);
    zf_proto_destroy (&self->in);
    zf_proto_destroy (&self->out);
    zsock_destroy (&self->router);
    zsock_destroy (&self->events);
    zsock_destroy (&self->intake);
    zsock_destroy (&self->zap);
    zcertstore_destroy (&self->allowed);
    zcert_destroy (&self->curve);
    free (self->allowed_dir);
    free (self);
    *self_p = NULL;
}

//  True if endpoint is reachable from other machines: tcp on an address
//  that is not loopback (a wildcard, an interface, a host name).
static bool
s_exposed (const char *endpoint)
{
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false; // ipc, inproc: this machine only
    const char *host = endpoint + 6;
    return !(strncmp (host, "127.", 4) == 0 || strncmp (host, "localhost:", 10) == 0 ||
             strncmp (host, "[::1]:", 6) == 0);
}

//  Binds a socket of type to endpoint; a CURVE server with curve, else
//  only on loopback unless insecure (with a warning).
static zsock_t *
s_bind (int type, const char *endpoint, char *bound, size_t size, int64_t max_frame, zcert_t *curve,
        bool insecure, zf_error_t *err)
{
    if (!curve && s_exposed (endpoint)) {
        if (!insecure) {
            zf_error_set (err, ZF_ECONFIG,
                          "%s is open to other machines without CURVE: anyone who reaches it "
                          "could put, take and read items; give the broker section curve-secret "
                          "and curve-clients (zflow keygen makes certificates), or pass "
                          "--insecure to run it open",
                          endpoint);
            return NULL;
        }
        zsys_warning ("broker: %s is open to other machines without CURVE (--insecure): anyone "
                      "who reaches it can put, take and read items",
                      endpoint);
    }
    zsock_t *sock = zsock_new (type);
    if (curve) {
        zcert_apply (curve, sock);
        zsock_set_curve_server (sock, 1);
        zsock_set_zap_domain (sock, ZAP_DOMAIN);
    }
    zsock_set_maxmsgsize (sock, (int) max_frame);
    zsock_set_linger (sock, 0);
    zsock_set_rcvtimeo (sock, 0); // reads take what has come (s_recv_ready)
    zsock_set_sndhwm (sock, type == ZMQ_XPUB ? XPUB_HWM : 0);
    zsock_set_rcvhwm (sock, type == ZMQ_PULL ? 1000 : 0);
    // A slow subscriber loses events at its high-water mark (seq shows the
    // gap); the broker never waits for it.
    if (type == ZMQ_XPUB)
        zsock_set_sndtimeo (sock, 0);
    if (zsock_bind (sock, "%s", endpoint) == -1) {
        zf_error_set (err, ZF_EIO, "cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    snprintf (bound, size, "%s", zsock_endpoint (sock));
    return sock;
}

static self_t *
s_self_new (zsock_t *pipe, zf_broker_args_t *args, zf_error_t *err)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->pipe = pipe;
    zf_pipeline_t *pipeline = args->pipeline;
    self->pipeline = pipeline;
    zconfig_t *conf = pipeline->broker;
    int64_t max_frame = zf_conf_size (conf, zf_broker_keys, "max-frame");
    self->heartbeat = zf_conf_duration (conf, zf_broker_keys, "heartbeat");
    self->liveness = zf_conf_int (conf, zf_broker_keys, "liveness");
    self->window = (uint32_t) zf_conf_int (conf, zf_broker_keys, "window");
    size_t dedup_window = (size_t) zf_conf_int (conf, zf_broker_keys, "dedup-window");
    self->queues = zhashx_new ();
    zhashx_set_destructor (self->queues, (zhashx_destructor_fn *) s_queue_destroy);
    self->queue_order = zlistx_new ();
    self->peers = zhashx_new ();
    zhashx_set_destructor (self->peers, (zhashx_destructor_fn *) s_peer_destroy);
    self->checkpoints = zhashx_new ();
    zhashx_set_destructor (self->checkpoints, (zhashx_destructor_fn *) zchunk_destroy);
    self->ended = zhashx_new ();
    self->subscriptions = zhashx_new ();
    self->topic_seq = zhashx_new ();
    self->tapped = zlistx_new ();
    self->dirty = zlistx_new ();
    self->live = zf_idmap_new (1024);
    self->seen = dedup_window ? zf_window_new (dedup_window) : NULL;
    self->lineages = zf_idmap_new (1024);
    self->in = zf_proto_new ();
    self->out = zf_proto_new ();
    self->seed = (unsigned) zclock_time () ^ (unsigned) getpid ();
    self->confirms = zlistx_new ();
    zlistx_set_destructor (self->confirms, s_confirm_destroy);

    const char *endpoint =
        args->endpoint ? args->endpoint : zf_conf_get (conf, zf_broker_keys, "endpoint");
    const char *events = args->events ? args->events : zf_conf_get (conf, zf_broker_keys, "events");
    const char *intake = args->intake ? args->intake : zf_conf_get (conf, zf_broker_keys, "intake");
    if (s_curve_open (self, err)) {
        s_self_destroy (&self);
        return NULL;
    }
    self->router = s_bind (ZMQ_ROUTER, endpoint, self->endpoint, sizeof self->endpoint, max_frame,
                           self->curve, args->insecure, err);
    if (self->router)
        self->events =
            s_bind (ZMQ_XPUB, events, self->events_endpoint, sizeof self->events_endpoint,
                    max_frame, self->curve, args->insecure, err);
    if (self->events && intake && *intake)
        self->intake =
            s_bind (ZMQ_PULL, intake, self->intake_endpoint, sizeof self->intake_endpoint,
                    max_frame, self->curve, args->insecure, err);
    if (self->router && dedup_window && !self->seen)
        zf_error_set (err, ZF_ENOMEM, "no memory for a dedup window of %zu ids", dedup_window);
    if (!self->router || !self->events || (intake && *intake && !self->intake) ||
        (dedup_window && !self->seen)) {
        s_self_destroy (&self);
        return NULL;
    }
    // Every queue an actor reads, with a consumer group per reader, exists
    // from the start: items put before the workers connect wait for them.
    for (zf_queue_conf_t *q = (zf_queue_conf_t *) zlistx_first (pipeline->queues); q;
         q = (zf_queue_conf_t *) zlistx_next (pipeline->queues)) {
        queue_t *queue = s_queue_require (self, q->name);
        for (const char *reader = (const char *) zlistx_first (q->readers); reader;
             reader = (const char *) zlistx_next (q->readers))
            s_group_require (self, queue, reader);
    }
    const char *journal =
        args->journal ? args->journal : zf_conf_get (conf, zf_broker_keys, "journal");
    if (journal && *journal) {
        char *path = zf_pipeline_path (pipeline, journal);
        int rc = s_journal_open (self, path, err);
        free (path);
        if (rc) {
            s_self_destroy (&self);
            return NULL;
        }
    }
    int64_t now = s_now ();
    self->next_tick = now + TICK_MS;
    self->next_stats = now + 1000;
    return self;
}

//  The next message if one is waiting, else NULL, without blocking: the
//  bound sockets do not wait to receive. (Asking ZMQ_EVENTS first would
//  cost a system call a message.)
static zmsg_t *
s_recv_ready (zsock_t *sock)
{
    return zmsg_recv (sock);
}

void
zf_broker_actor (zsock_t *pipe, void *args)
{
    zf_error_t err = { 0 };
    self_t *self = s_self_new (pipe, (zf_broker_args_t *) args, &err);
    zsock_signal (pipe, 0);
    if (!self) {
        zstr_sendx (pipe, "ERROR", err.text, NULL);
        return;
    }
    zstr_sendx (pipe, "OK", self->endpoint, self->events_endpoint, self->intake_endpoint, NULL);

    // The journal's syncer, when there is one, says when a sync is done;
    // intake, last, is read only while it has room.
    enum { P_PIPE, P_ROUTER, P_EVENTS };
    zmq_pollitem_t items[6] = {
        { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->events), 0, ZMQ_POLLIN, 0 },
    };
    int nitems = 3, p_syncer = -1, p_zap = -1, p_intake = -1;
    if (self->zap) {
        items[nitems] = (zmq_pollitem_t){ zsock_resolve (self->zap), 0, ZMQ_POLLIN, 0 };
        p_zap = nitems++;
    }
    if (self->journal) {
        items[nitems] =
            (zmq_pollitem_t){ zsock_resolve (zf_journal_pipe (self->journal)), 0, ZMQ_POLLIN, 0 };
        p_syncer = nitems++;
    }
    if (self->intake) {
        items[nitems] = (zmq_pollitem_t){ zsock_resolve (self->intake), 0, ZMQ_POLLIN, 0 };
        p_intake = nitems++;
    }
    int64_t last_stats = s_now ();
    while (!self->terminated) {
        int64_t now = s_now ();
        int64_t wait = self->next_tick - now;
        int64_t due = self->journal ? zf_journal_due (self->journal, now) : -1;
        if (due >= 0 && due < wait)
            wait = due;
        if (wait < 0)
            wait = 0;
        int count = p_intake >= 0 && !s_intake_open (self) ? nitems - 1 : nitems;
        if (zmq_poll (items, count, (long) wait) == -1)
            break; // interrupted
        if (items[P_PIPE].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM"))
                self->terminated = true;
            zstr_free (&command);
        }
        if (items[P_ROUTER].revents & ZMQ_POLLIN)
            for (int i = 0; i < READ_BUDGET; i++) {
                zmsg_t *msg = s_recv_ready (self->router);
                if (!msg)
                    break;
                s_router_message (self, msg);
            }
        if (items[P_EVENTS].revents & ZMQ_POLLIN)
            for (int i = 0; i < READ_BUDGET; i++) {
                zmsg_t *msg = s_recv_ready (self->events);
                if (!msg)
                    break;
                s_subscription (self, zmsg_first (msg));
                zmsg_destroy (&msg);
            }
        if (p_zap >= 0 && (items[p_zap].revents & ZMQ_POLLIN))
            s_zap_request (self);
        if (p_syncer >= 0 && (items[p_syncer].revents & ZMQ_POLLIN))
            zf_journal_synced (self->journal, s_now ());
        if (p_intake >= 0 && count == nitems && (items[p_intake].revents & ZMQ_POLLIN))
            for (int i = 0; i < READ_BUDGET && s_intake_open (self); i++) {
                zmsg_t *msg = s_recv_ready (self->intake);
                if (!msg)
                    break;
                s_intake_message (self, msg);
            }
        now = s_now ();
        if (now >= self->next_tick) {
            s_tick (self, now);
            self->next_tick = now + TICK_MS;
        }
        if (now >= self->next_stats) {
            s_stats (self, now - last_stats);
            last_stats = now;
            self->next_stats = now + 1000;
        }
        s_flush_taps (self);
        s_dispatch (self);
        if (self->journal) {
            // The turn's records in one write; then what is durable is
            // confirmed.
            zf_journal_commit (self->journal, now);
            s_send_durable_confirms (self);
            if (zf_journal_wants_snapshot (self->journal)) {
                s_snapshot (self);
                s_send_durable_confirms (self);
            }
        }
    }
    s_self_destroy (&self);
}

//  --------------------------------------------------------------------------
//  The broker as an object, for zflow run and the tests

struct _zf_broker_t {
    zf_thread_t *actor;    // the broker thread
    char *endpoint;        // bound ROUTER endpoint
    char *events;          // bound XPUB endpoint
    char *intake;          // bound PULL endpoint or ""
    zf_broker_args_t args; // what it was started with
};

zf_broker_t *
zf_broker_new (zf_pipeline_t *pipeline, const char *endpoint, const char *events,
               const char *intake, zf_error_t *err)
{
    zf_broker_args_t args = {
        .pipeline = pipeline, .endpoint = endpoint, .events = events, .intake = intake
    };
    return zf_broker_start (&args, err);
}

zf_broker_t *
zf_broker_start (const zf_broker_args_t *args, zf_error_t *err)
{
    zf_broker_t *self = (zf_broker_t *) zmalloc (sizeof (zf_broker_t));
    self->args = *args;
    self->actor = zf_thread_new (zf_broker_actor, &self->args);
    if (!self->actor) {
        zf_error_set (err, ZF_EIO, "cannot start the broker's thread");
        free (self);
        return NULL;
    }
    char *status = NULL, *a = NULL, *b = NULL, *c = NULL;
    zstr_recvx (zf_thread_sock (self->actor), &status, &a, &b, &c, NULL);
    if (!status || !streq (status, "OK")) {
        zf_error_set (err, ZF_EIO, "%s", a ? a : "broker did not start");
        zstr_free (&status);
        zstr_free (&a);
        zf_thread_destroy (&self->actor);
        free (self);
        return NULL;
    }
    zstr_free (&status);
    self->endpoint = a;
    self->events = b;
    self->intake = c;
    return self;
}

void
zf_broker_destroy (zf_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zf_broker_t *self = *self_p;
    zf_thread_destroy (&self->actor);
    zstr_free (&self->endpoint);
    zstr_free (&self->events);
    zstr_free (&self->intake);
    free (self);
    *self_p = NULL;
}

const char *
zf_broker_endpoint (zf_broker_t *self)
{
    return self->endpoint;
}

const char *
zf_broker_events (zf_broker_t *self)
{
    return self->events;
}

const char *
zf_broker_intake (zf_broker_t *self)
{
    return self->intake;
}
