/*  zf_store_impl: the inside of the store, which zf_store.c (queues,
    messages, admission, recovery), zf_delivery.c (the life of a
    delivery) and zf_steer.c (an operator's changes) share. No other module includes it: they use zf_store.h.
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
