/*  zf_store_impl: the inside of the store, which zf_store.c (queues,
    messages, admission, recovery), zf_delivery.c (the life of a
    delivery), zf_flow.c (rates, per-key limits, fair turns) and zf_steer.c
    (an operator's changes) share. No other module includes it: they use
    zf_store.h.
*/
#ifndef ZF_STORE_IMPL_H_INCLUDED
#define ZF_STORE_IMPL_H_INCLUDED

#include "zf_idmap.h"
#include "zf_store.h"
#include "zf_window.h"

struct _zf_store_t {
    zf_pipeline_t *pipeline; // the config: queue settings
    zf_store_hooks_t hooks;  // what the rest of the broker hears
    zhashx_t *queues;        // name -> zf_queue_t
    zlistx_t *queue_order;   // zf_queue_t, in order of creation (not owned)
    zf_idmap_t *live;        // id -> zf_message_t, every stored message
    zf_window_t *seen;       // id -> outcome, the dedup window; NULL when off
    size_t live_unseen;      // stored messages whose id the window has let go
    zf_idmap_t *lineages;    // root id -> zf_lineage_t, for roots tracked
    zf_heap_t delayed;       // deliveries waiting for their backoff to end (by retry)
    zf_heap_t flow_timers;   // flows waiting for their rate to allow one more (ms)
    zf_heap_t key_timers;    // keys waiting for their rate, or to be forgotten (ms)
    bool resumed;            // it restored records: a broker ran before it (flow control
                             // then takes its buckets as emptied when this one began)
    zlistx_t *dirty;         // groups with ready items to dispatch (not owned)
    zhashx_t *checkpoints;   // actor name -> zchunk_t, its source's position
    zf_results_t *results;   // what each root's lineage produced
    zf_idmap_t *progress;    // root id -> zf_progress_t, of lineages running
    int64_t group_expiry;    // ms an undeclared group lives without a worker
    uint64_t stored;         // messages stored, ever (their order)
    unsigned seed;           // for backoff jitter
};

#define S_DELIVERY(p) ZF_CONTAINER_OR_NULL (p, zf_delivery_t, link)
#define S_HELD(p)     ZF_CONTAINER_OR_NULL (p, zf_delivery_t, held)

//  Ready deliveries: d goes last (or first, handed back) at its priority.
static inline void
zf_ready_push (zf_ready_t *ready, zf_delivery_t *d)
{
    zf_list_push (&ready->levels[d->msg->priority], &d->link);
    ready->mask |= 1u << d->msg->priority;
    ready->size++;
}

static inline void
zf_ready_push_front (zf_ready_t *ready, zf_delivery_t *d)
{
    zf_list_push_front (&ready->levels[d->msg->priority], &d->link);
    ready->mask |= 1u << d->msg->priority;
    ready->size++;
}

static inline void
zf_ready_remove (zf_ready_t *ready, zf_delivery_t *d)
{
    zf_list_t *level = &ready->levels[d->msg->priority];
    zf_list_remove (level, &d->link);
    if (!level->size)
        ready->mask &= ~(1u << d->msg->priority);
    ready->size--;
}

//  The delivery to go next: the oldest of the highest priority; NULL if none.
static inline zf_delivery_t *
zf_ready_first (zf_ready_t *ready)
{
    if (!ready->mask)
        return NULL;
    int level = 31 - __builtin_clz (ready->mask);
    return S_DELIVERY (ready->levels[level].head);
}

//  The delivery after d on the same ready set, for a walk over all of them.
static inline zf_delivery_t *
zf_ready_next (zf_ready_t *ready, zf_delivery_t *d)
{
    if (d->link.next)
        return S_DELIVERY (d->link.next);
    for (int level = (int) d->msg->priority - 1; level >= 0; level--)
        if (ready->levels[level].head)
            return S_DELIVERY (ready->levels[level].head);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Flow control (zf_flow.c): a group under its limits.

//  True if limits ask for anything (a rate, or keys).
bool zf_limits_on (const zf_limits_t *limits);

//  A flow for group under its limits (group->limits), or NULL when they ask
//  for nothing; frees one (safe on NULL; its timers must be off the store's:
//  zf_flow_detach).
zf_flow_t *zf_flow_new (zf_cgroup_t *group);
void zf_flow_destroy (zf_flow_t **self_p);
void zf_flow_detach (zf_store_t *self, zf_flow_t *flow);

//  Queue's limits as settings say (or, for a group whose actor has a
//  `flow` section, as that says): each group's flow made anew if they
//  changed (its ready and in-flight deliveries kept, on their keys). The
//  same for one group, its name new (a group named, renamed).
void zf_flow_configure (zf_store_t *self, zf_queue_t *queue, const zf_queue_settings_t *settings);
void zf_flow_group (zf_store_t *self, zf_cgroup_t *group);

//  d, of a group with a flow, is ready (at the front: handed back): on its
//  key; d, on its key, is not ready any more (steered, cancelled).
void zf_flow_ready (zf_store_t *self, zf_delivery_t *d, bool front);
void zf_flow_unready (zf_store_t *self, zf_delivery_t *d);

//  The delivery the flow of group lets go next at now (ms), or NULL; when
//  its limits hold every item, a timer marks the group dirty when one may go.
zf_delivery_t *zf_flow_first (zf_store_t *self, zf_cgroup_t *group, int64_t now);

//  d, taken off its group's ready list, went in flight at now (ms): the
//  rates and its key are charged. d, in flight, is not any more.
void zf_flow_taken (zf_store_t *self, zf_delivery_t *d, int64_t now);
void zf_flow_returned (zf_store_t *self, zf_delivery_t *d);

//  Flows and keys whose time has come; the first of them to come (ms on the
//  monotonic clock), or -1.
void zf_flow_wake (zf_store_t *self, int64_t now);
int64_t zf_flow_next_due (zf_store_t *self);

//  True if d, ready, waits for its key's limit alone.
bool zf_flow_throttled (const zf_delivery_t *d);

//  A flow's ready items that wait for their key's limit; its keys; its
//  max keys with most items waiting (then in flight) into top, how many.
uint64_t zf_flow_throttled_count (const zf_flow_t *flow);
//  Of those, the items of keys with as many in flight as they may have:
//  none of them can go before one of those in flight ends.
uint64_t zf_flow_full_count (const zf_flow_t *flow);
size_t zf_flow_key_count (const zf_flow_t *flow);
size_t zf_flow_top_keys (zf_flow_t *flow, zf_key_figures_t *top, size_t max);

//  d is ready: on its group's ready list (first at its priority when
//  front: handed back), and its key's; d is taken off them.
static inline void
zf_store_ready (zf_store_t *self, zf_delivery_t *d, bool front)
{
    if (front)
        zf_ready_push_front (&d->group->ready, d);
    else
        zf_ready_push (&d->group->ready, d);
    if (d->group->flow)
        zf_flow_ready (self, d, front);
}

static inline void
zf_store_unready (zf_store_t *self, zf_delivery_t *d)
{
    zf_ready_remove (&d->group->ready, d);
    if (d->key)
        zf_flow_unready (self, d);
}

//  The delivery group hands out next at now, its limits kept, or NULL.
static inline zf_delivery_t *
zf_store_ready_first (zf_store_t *self, zf_cgroup_t *group, int64_t now)
{
    return group->flow ? zf_flow_first (self, group, now) : zf_ready_first (&group->ready);
}

//  Puts group on the list of groups to dispatch (once).
void zf_store_mark_dirty (zf_store_t *self, zf_cgroup_t *group);

//  Frees a group; safe on NULL.
void zf_store_group_destroy (zf_cgroup_t **self_p);

//  Records an id's outcome in the dedup window; false if it was there.
bool zf_store_seen_set (zf_store_t *self, const zf_id_t *id, uint8_t outcome);

//  What became of msg, all its deliveries over (ZF_OUTCOME_*).
uint8_t zf_store_outcome (zf_message_t *msg);
//  True if msg, a member of a group, meets its group at a gather
//  downstream: its dead letter is then the gather's to report (in the
//  group's place, or failing the group), not its lineage's failure.
bool zf_store_absorbed (zf_store_t *self, zf_message_t *msg);

//  Frees msg, its deliveries all finished, with outcome (told, remembered).
void zf_store_msg_free (zf_store_t *self, zf_message_t *msg, uint8_t outcome);

//  Stores an envelope and body as a message of queue, a delivery per
//  group; takes the body and the hold on lineage (may be NULL). Told to
//  no one (recovery); zf_store_msg_new also remembers it and tells.
zf_message_t *zf_store_msg_store (zf_store_t *self, zf_queue_t *queue, zf_env_t *env,
                                  zframe_t **body_p, zf_lineage_t *lineage);
zf_message_t *zf_store_msg_new (zf_store_t *self, zf_queue_t *queue, zf_env_t *env,
                                zframe_t **body_p, zf_lineage_t *lineage);

//  When msg, waiting for its time (not_before), is due on the monotonic
//  clock; 0 if it is due now.
int64_t zf_store_due (const zf_message_t *msg);

//  d's message, new or restored, waits until due (zf_store_due, taken once
//  for all its deliveries) or, due 0, is ready.
void zf_store_schedule (zf_store_t *self, zf_delivery_t *d, int64_t due);

//  True if key (len bytes) names a header only the broker sets on a dead
//  letter (zflow-queue, zflow-consumer, zflow-attempts, zflow-root,
//  zflow-group, zflow-error), or on a requeued item (zflow-requeued).
bool zf_store_broker_header (const char *key, size_t len);

//  Root's lineage runs again (an item of it requeued): a lineage still
//  tracked forgets that an item of it died, and its answer its end. Returns
//  the answer, or NULL when none is kept.
zf_answer_t *zf_store_reopen (zf_store_t *self, const zf_id_t *root);

//  Root's lineage is over with outcome: its answer, if one is kept, is told.
void zf_store_lineage_ended (zf_store_t *self, const zf_id_t *root, uint8_t outcome);

//  Room was made in queue: admits the PUTs waiting for it, in order.
void zf_store_resume_waiting (zf_store_t *self, zf_queue_t *queue);

//  PUTs that wait for room past their give_up_at: the items not yet in
//  are refused ("queue Q is full (max-depth N)") and the PUT confirmed.
void zf_store_give_up_waiting (zf_store_t *self, int64_t now);

//  A PUT of worker's with nitems that waited for room is in: once none
//  waits, the ACKs and NACKs held behind them are applied, in order.
void zf_store_unparked (zf_store_t *self, zf_worker_t *worker, uint32_t nitems);

//  True if worker can do nothing more: every item it holds waits for its
//  parked PUTs, and no other can come to it.
bool zf_store_stalled (zf_worker_t *worker);

//  Worker can do nothing more: every item it holds waits for its parked
//  PUTs, and none can come. Those parked on a queue its input feeds (a
//  cycle, which no one else can drain) go in past max-depth.
void zf_store_unblock (zf_store_t *self, zf_worker_t *worker);

//  The same for every writer stalled now, found through the PUTs waiting:
//  one can stall with no answer of its own to come (another worker of its
//  group took the items it would have had).
void zf_store_unblock_stalled (zf_store_t *self);

//  An output of parent, which worker holds, was refused for why: the
//  worker's ACK of parent will fail it.
void zf_store_output_refused (zf_store_t *self, zf_worker_t *worker, const zf_id_t *parent,
                              const char *why);

#endif
