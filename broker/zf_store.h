/*  zf_store: what the broker holds, without its sockets: queues, consumer
    groups, stored messages and their deliveries, lineages, the dedup
    window, retries and timeouts, admission against max-depth.

    Data model. A stored message (zf_message_t) holds the envelope and body
    once, and one delivery (zf_delivery_t) per consumer group of its queue:
    each group gets every message (fan-out) and shares it among its
    workers. A delivery is in exactly one place: its group's ready list,
    the heap of delayed retries, or in flight (in its queue's timeout list,
    in delivery order, and in its worker's held list). A message is freed
    when every delivery is finished (acked, dead-lettered or cancelled).
    Lists and the heap are intrusive, so moving a delivery costs no
    allocation.

    The store decides; it sends nothing. What the rest of the broker must
    do about a decision (journal it, publish it, tell a session) it hears
    through the hooks it gives zf_store_new. Workers are the store's view
    of a session that consumes: its credit and what it holds. The tests
    drive a store directly (tests/broker/test_store.c).

        zf_store_t *store = zf_store_new (pipeline, 262144, &hooks);
        zf_pending_t *put = zf_store_pending_new (nitems);
        ... fill put->items ...
        if (zf_store_admit (store, put)) ... confirm, zf_store_pending_destroy
        zf_cgroup_t *group;
        while ((group = zf_store_next_dirty (store)))
            while ((n = zf_store_take (store, group, now, &worker, batch, 256))) ... DELIVER
*/
#ifndef ZF_STORE_H_INCLUDED
#define ZF_STORE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "zf_heap.h"
#include "zf_list.h"
#include "zf_pipeline.h"
#include "zf_proto.h"
#include "zf_records.h"
#include "zf_results.h"
#include "zflow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZF_SESSION_KEY_MAX (2 * 255 + 1) // hex of a ZeroMQ routing id, and its NUL

typedef struct _zf_store_t zf_store_t;
typedef struct _zf_queue_t zf_queue_t;
typedef struct _zf_cgroup_t zf_cgroup_t;
typedef struct _zf_message_t zf_message_t;
typedef struct _zf_delivery_t zf_delivery_t;
typedef struct _zf_lineage_t zf_lineage_t;
typedef struct _zf_worker_t zf_worker_t;
typedef struct _zf_flow_t zf_flow_t;       // a group's flow control (zf_flow.c)
typedef struct _zf_flowkey_t zf_flowkey_t; // one key of it

typedef enum { ZF_D_READY, ZF_D_DELAYED, ZF_D_INFLIGHT, ZF_D_FINISHED } zf_dstate_t;

//  What is known of a delivery in flight besides where it is.
enum {
    ZF_D_ANSWERED = 1, // its worker's ACK or NACK waits for the worker's parked PUTs
    ZF_D_REFUSED = 2,  // an output of it was refused: its ACK fails it (msg->reason says why)
};

struct _zf_delivery_t {
    zf_message_t *msg;    // the message delivered
    zf_cgroup_t *group;   // the consumer group it is for
    zf_worker_t *holder;  // the worker holding it while in flight
    uint8_t state;        // where it is (zf_dstate_t)
    uint8_t flags;        // in flight: ZF_D_ANSWERED, ZF_D_REFUSED
    bool alone;           // its worker died holding it and others: delivered alone since
    uint32_t attempt;     // deliveries so far
    int64_t due;          // in flight: its timeout
    zf_heap_node_t retry; // delayed: its place in the store's heap of retries
    zf_flowkey_t *key;    // ready or in flight, in a group with keys: its item's key; else NULL
    zf_link_t link;       // ready: its group's ready list; in flight: its queue's timeouts
    zf_link_t held;       // in flight: its worker's held list
};

struct _zf_lineage_t {
    zf_id_t root;                          // the root item
    uint64_t outstanding;                  // items of the lineage not finished
    bool dead;                             // an item of it was dead-lettered
    bool cancelled;                        // a session cancelled it
    char cancelled_by[ZF_SESSION_KEY_MAX]; // that session
    char *why;                             // cancelled: the first cancel's reason
    bool failed;                           // cancelled because it failed: it ends dead
    bool sweep;                            // its items are being dropped (a cancel's)
    char tracker[ZF_SESSION_KEY_MAX];      // the session to tell when done, or ""
};

struct _zf_message_t {
    zf_id_t id;                 // the item's id
    int64_t not_before;         // not delivered before, ms since the Unix epoch; 0: now
    uint8_t priority;           // 0 to ZF_PRIORITY_MAX: higher goes first
    zf_id_t parent;             // its parent, or zero
    zf_id_t root;               // its root, or zero for a root
    int64_t ts;                 // creation time, ms
    zf_group_t fanin;           // gather membership
    uint8_t *headers;           // copy of the envelope's headers, or NULL
    uint32_t headers_size;      // bytes at headers
    zframe_t *body;             // the body, owned
    zf_queue_t *queue;          // where it is stored
    zf_lineage_t *lineage;      // its root's lineage, or NULL when not tracked
    uint32_t pending;           // deliveries not finished
    bool dead;                  // a delivery was dead-lettered
    char *reason;               // the last failure, or NULL
    char *detail;               // its longer account (a traceback), or NULL
    uint64_t order;             // when it was stored, for snapshots in queue order
    uint32_t ndeliveries;       // entries in deliveries
    zf_delivery_t deliveries[]; // one per consumer group
};

//  The latest progress a worker reported within a lineage while it runs
//  (PROGRESS): in memory only, a live figure.
typedef struct {
    uint32_t progress; // thousandths done, 0 to ZF_PROGRESS_MAX
    char *note;        // what the task is doing, or NULL
} zf_progress_t;

//  A consumer group's flow control, as its queue's settings say, or its
//  actor's `flow` section (zf_queue_settings_t, zf_flow_keys).
typedef struct {
    double rate;                   // deliveries a second of each group; 0: no limit
    int64_t burst;                 // deliveries at once after a quiet spell
    const char *header;            // the header naming an item's key, or NULL: no keys
    double rate_per_key;           // deliveries a second of one key; 0: no limit
    uint64_t max_inflight_per_key; // items of one key in flight; 0: no limit
    bool fair;                     // keys take turns
    const char *weight_header;     // fair: the header of a key's share, or NULL
} zf_limits_t;

//  A group's deliveries waiting for a worker: a list per priority (by
//  link), the highest priority taken first, each in the order it came.
typedef struct {
    zf_list_t levels[ZF_PRIORITY_MAX + 1]; // by priority
    uint32_t mask;                         // bit p set while levels[p] has a delivery
    size_t size;                           // deliveries on all levels
} zf_ready_t;

struct _zf_cgroup_t {
    char *name;            // the actor name
    zf_queue_t *queue;     // the queue it reads
    zf_ready_t ready;      // deliveries waiting for a worker
    zf_worker_t **workers; // workers of the group now connected
    size_t nworkers;       // entries in workers
    size_t cap;            // allocated entries
    size_t next;           // round-robin position
    bool dirty;            // in the store's list of groups to dispatch
    bool anonymous;        // holds items until a first group joins
    bool declared;         // read by an actor of the pipeline: kept while no worker is there
    bool together;         // its workers hold items until others come (a gather's): none is
                           // ever delivered alone
    zf_limits_t limits;    // its flow control: its actor's `flow` section's, else its queue's
    zf_flow_t *flow;       // its limits at work, or NULL when they ask for nothing
    int64_t idle_since;    // when its last worker left (ms), 0 while it has one
    uint64_t inflight;     // its deliveries in flight now
    uint64_t delivered;    // deliveries sent, ever
    uint64_t acked;        // deliveries acked, ever
};

struct _zf_queue_t {
    char *name;           // the queue's name
    int64_t max_depth;    // messages stored at most
    int64_t max_attempts; // deliveries before the dead-letter queue
    int64_t timeout;      // ms an item may be held; 0 for ever
    int64_t retry_base;   // first backoff, ms
    int64_t retry_max;    // longest backoff, ms
    bool dead_letters;    // it is a QUEUE.dead
    bool collects;        // its items are kept as results of their root
    bool keeps;           // its items are stored for delivery (not only kept as results)
    bool paused;          // an operator paused it: items are stored, none is delivered
    zf_cgroup_t **groups; // consumer groups
    size_t ngroups;       // entries in groups
    zf_list_t inflight;   // deliveries in flight, oldest first (by link)
    zlistx_t *waiting;    // zf_pending_t held because the queue was full
    uint64_t depth;       // messages stored
    uint64_t put;         // items accepted, ever
    uint64_t acked;       // messages finished, ever
    uint64_t nacked;      // NACKs, timeouts and losses, ever
    uint64_t dead;        // deliveries dead-lettered, ever
    void *tap;            // the publisher's state of the queue's taps, or NULL
};

//  An ACK or NACK that waits until the PUTs its worker sent before it
//  are stored.
typedef struct {
    zf_id_t id;       // the item answered
    bool nack;        // failed, not done
    bool final;       // NACK: no retry
    int64_t delay_ms; // NACK: retry no sooner
    char *reason;     // NACK: why, or NULL
    char *detail;     // NACK: its longer account, or NULL
} zf_answer_held_t;

//  The store's view of a session: what it consumes, and the PUTs it sent
//  that wait for room.
struct _zf_worker_t {
    zf_cgroup_t *groups[ZF_LIST_MAX]; // groups it works in
    size_t ngroups;                   // entries in groups
    uint64_t window;                  // credit given
    uint64_t zombies;                 // timed-out items it may still ack
    zf_list_t held;                   // deliveries in flight to it (by held)
    zf_delivery_t *alone;             // a delivery it holds alone (one that is d->alone), or NULL
    uint64_t done;                    // items acked
    uint64_t failed;                  // items nacked
    uint32_t parked;                  // its PUTs waiting for room in a queue
    uint64_t answered;                // deliveries in held whose answer waits for them
    uint64_t parked_items;            // their items
    zf_answer_held_t *answers;        // its ACKs and NACKs since, in order
    size_t nanswers;                  // entries in answers
    size_t answers_cap;               // allocated entries
};

//  A PUT being admitted: items go in one by one; when a queue is full the
//  rest waits in that queue's waiting list.
typedef struct {
    char session[ZF_SESSION_KEY_MAX];      // who sent it
    zf_worker_t *writer;                   // its store side, or NULL (gone, or not a session)
    zf_queue_t *over;                      // a queue it may fill past max-depth, or NULL
    uint64_t seq;                          // its seq
    uint8_t checkpoint[ZF_CHECKPOINT_MAX]; // its source's position, stored on CONFIRM
    uint32_t checkpoint_size;              // bytes in checkpoint
    char actor[ZF_NAME_MAX + 1];           // the sender's actor name
    uint32_t next;                         // first item not yet admitted
    int64_t give_up_at;                    // when what still waits for room is refused (the
                                           // broker's clock, ms), or 0: it waits for room
    bool urgent;                           // its writer waits for the CONFIRM
    uint32_t accepted;                     // items enqueued
    uint32_t duplicates;                   // items dropped as seen
    uint32_t refused;                      // items refused (no such queue, results full)
    char refusal[ZF_TEXT_MAX + 1];         // why the first refused item was
    zf_refusal_t refusal_kind;             // and the kind of it
    uint32_t nitems;                       // entries in items
    zf_lineage_t **holds;                  // per item: the lineage it holds, or NULL
    zf_env_t items[];                      // envelopes, bodies owned, headers copied
} zf_pending_t;

//  What the store tells the rest of the broker. Every hook is called in
//  the middle of a change: it may read the store, not change it.
typedef struct {
    void *arg; // given to every hook
    //  A queue was made (queue->tap is the publisher's to set).
    void (*created) (void *arg, zf_queue_t *queue);
    //  A message was stored (put, intake, a dead-letter copy), attempt its
    //  attempts over: journal it, tap it.
    void (*stored) (void *arg, zf_message_t *msg, uint32_t attempt);
    //  An item put to queue, which collects results and which nobody
    //  reads, was kept only as its root's result: tap it.
    void (*kept) (void *arg, zf_queue_t *queue, const zf_env_t *env);
    //  One group's delivery finished while others go on.
    void (*acked) (void *arg, zf_delivery_t *d, bool dead);
    //  A delivery failed and will be tried again.
    void (*retried) (void *arg, zf_delivery_t *d);
    //  A message finished, with its outcome (ZF_OUTCOME_*); freed next.
    void (*finished) (void *arg, zf_message_t *msg, uint8_t outcome);
    //  A delivery went to the dead-letter queue.
    void (*dead) (void *arg, zf_delivery_t *d);
    //  A tracked lineage is over: state "done", "dead" or "cancelled".
    void (*lineage_over) (void *arg, zf_lineage_t *lineage, const char *state);
    //  A PUT that waited for room is all admitted: confirm it. The store
    //  destroys it after.
    void (*admitted) (void *arg, zf_pending_t *put);
    //  A result of answer's root was kept (its last item), or its lineage
    //  ended (result NULL), or runs again (result NULL, answer->outcome 0:
    //  an item of it was requeued): journal it.
    void (*answered) (void *arg, zf_answer_t *answer, const zf_output_t *result);
    //  An operator paused or resumed queue: journal it.
    void (*paused) (void *arg, zf_queue_t *queue);
} zf_store_hooks_t;

//  A store for pipeline's queues (which must outlive it), remembering the
//  last dedup_window ids put (0: no dedup). Every queue an actor reads has
//  a consumer group per reader from the start, so items put before the
//  workers connect wait for them. NULL if the window cannot be had.
zf_store_t *zf_store_new (zf_pipeline_t *pipeline, size_t dedup_window,
                          const zf_store_hooks_t *hooks);

//  Frees every message, lineage, queue and waiting PUT; safe on NULL.
void zf_store_destroy (zf_store_t **self_p);

//  Queues: by name, created with its config (or the defaults) if new; the
//  one named, or NULL; all, in order of creation (zf_queue_t, not owned).
zf_queue_t *zf_store_queue (zf_store_t *self, const char *name);
zf_queue_t *zf_store_lookup (zf_store_t *self, const char *name);
zlistx_t *zf_store_queues (zf_store_t *self);

//  The consumer group name of queue, created if new; the first named group
//  takes over what the anonymous group held.
zf_cgroup_t *zf_store_group (zf_store_t *self, zf_queue_t *queue, const char *name);

//  Whether a worker of group name may join queue_name: yes when that group
//  is there already (or takes over the queue's first, anonymous one), or
//  when fewer than max groups that no actor of the pipeline declares (a
//  client's) exist, all queues together. Each costs memory (a copy of each
//  item): a peer naming a new group per connection must not grow it.
bool zf_store_group_allowed (zf_store_t *self, const char *queue_name, const char *name,
                             int64_t max);

//  Workers: worker joins group name of queue (0 or -1 when it is in
//  ZF_LIST_MAX groups already); more credit; leaves, handing back what it
//  held, as failed deliveries when lost (no heartbeat) or untouched (BYE),
//  and dropping the answers that waited for its parked PUTs (those PUTs
//  stay, as anyone's: they were received).
int zf_store_join (zf_store_t *self, zf_worker_t *worker, const char *queue, const char *group);
void zf_store_credit (zf_store_t *self, zf_worker_t *worker, uint32_t credit);
void zf_store_leave (zf_store_t *self, zf_worker_t *worker, bool lost);
//  As zf_store_leave of a lost worker, each item it held failing with
//  reason ("worker died: exit 3") rather than "worker lost".
void zf_store_lose (zf_store_t *self, zf_worker_t *worker, const char *reason);

//  Frees the answers worker holds back (its session is going); safe on a
//  worker that holds none.
void zf_store_forget_answers (zf_worker_t *worker);

//  Lineages: takes a hold on root's, tracking it from now on (a root is
//  tracked only once it has children, a tracker or a cancel); gives one back.
zf_lineage_t *zf_store_hold (zf_store_t *self, const zf_id_t *root);
void zf_store_release (zf_store_t *self, zf_lineage_t *lineage);

//  PUTs: a pending PUT of nitems (never NULL); admits its items. True if
//  all are in: the caller confirms and destroys it. False if a queue is
//  full: the store keeps it (parked), and calls the admitted hook once room
//  came. While a writer has a PUT parked, its ACKs and NACKs wait: an item
//  is never finished before the outputs sent ahead of its ACK are stored,
//  so a crash meanwhile loses neither (the item is delivered again). A
//  writer whose every item waits so, on a queue its own input feeds (a
//  cycle of the pipeline), would wait for ever: its PUT goes in past
//  max-depth instead.
zf_pending_t *zf_store_pending_new (uint32_t nitems);
void zf_store_pending_destroy (zf_pending_t **self_p);
bool zf_store_admit (zf_store_t *self, zf_pending_t *put);

//  Stores one item (intake's, with an id of its own) in queue, taking
//  *body_p; the caller checked that the queue has room. Returns it.
zf_message_t *zf_store_put (zf_store_t *self, zf_queue_t *queue, zf_env_t *env, zframe_t **body_p);

//  True while every queue has room (intake reads only then).
bool zf_store_has_room (zf_store_t *self);

//  Results from workers: an ack or nack of id. False if worker does not
//  hold it (timed out and redelivered meanwhile, or acked twice). True too
//  when it waits for the worker's parked PUTs: it is applied as they are
//  admitted. An ACK of an item one of whose outputs was refused (no such
//  queue, the results store full) fails it instead, with the refusal's
//  reason: retried, then dead-lettered. A NACK's reason and detail (either
//  may be NULL) become the item's last failure: a reason replaces the
//  detail too, a detail alone only the detail.
bool zf_store_ack (zf_store_t *self, zf_worker_t *worker, const zf_id_t *id);
bool zf_store_nack (zf_store_t *self, zf_worker_t *worker, const zf_id_t *id, const char *reason,
                    const char *detail, bool final, int64_t delay_ms);

//  A task's progress: id, which worker holds in flight, reports progress
//  (thousandths) and note (NULL or ""), kept for its lineage until the
//  lineage ends. False, and nothing kept, if worker does not hold id (a
//  late report, as an ack of an item no longer held).
bool zf_store_progress (zf_store_t *self, zf_worker_t *worker, const zf_id_t *id, uint32_t progress,
                        const char *note);

//  The latest progress reported within the lineage of id (an item stored,
//  or a root) while it runs, or NULL.
const zf_progress_t *zf_store_progress_of (zf_store_t *self, const zf_id_t *id);

//  Cancels what is left of root's lineage for the session by, for reason
//  (NULL or "": "cancelled by a client"); with dead, because the lineage
//  failed (a gather's group in mode = all): it ends dead, not cancelled,
//  its reason (NULL or "": "failed by a worker") the root's failure. Queued
//  items are dropped, fn is
//  called once for each worker holding one of its items (to tell it), and
//  what other sessions put into the lineage from now on is dropped as it
//  arrives (the outputs of items running meanwhile). by's own puts still
//  go in: a gather that fails its group sends the group's error on. The
//  root's answer keeps the reason of the first cancel (unless an item of
//  the lineage failed for good before: that failure is the root's). False,
//  and nothing changes, when root's lineage is not running: over, never
//  put, or root is not a root's id.
typedef void (zf_cancel_fn) (zf_worker_t *worker, zf_lineage_t *lineage, void *arg);
bool zf_store_cancel (zf_store_t *self, const zf_id_t *root, const char *by, const char *reason,
                      bool dead, zf_cancel_fn *fn, void *arg);

//  The same for count lineages at once (a purge's), none failed, in one
//  pass over the store.
void zf_store_cancel_all (zf_store_t *self, zf_lineage_t **lineages, size_t count, const char *by,
                          const char *reason, zf_cancel_fn *fn, void *arg);

//  An item's state: "queued", "throttled" (ready, but its key's limit holds
//  it), "delayed" (not before its time), "delivered", "retrying", "done",
//  "dead", "cancelled" or "unknown"; *msg_p the message while it is stored.
const char *zf_store_state (zf_store_t *self, const zf_id_t *id, zf_message_t **msg_p);

//  The state of root's lineage: its outcome once over, "running" while
//  items made from it are at work, else the root's own state.
const char *zf_store_lineage_state (zf_store_t *self, const zf_id_t *root, zf_message_t **msg_p);

//  The results kept of every root's lineage.
zf_results_t *zf_store_results (zf_store_t *self);

//  Retries whose backoff is over become ready; items held past their
//  queue's timeout are taken back, as failed; a group that no actor of the
//  pipeline declares, without a worker for group-expiry, is forgotten and
//  its deliveries let go (the last group of a queue holds on to its items
//  instead, as the anonymous group of a new queue does).
void zf_store_tick (zf_store_t *self, int64_t now);

//  Deliveries whose time has come (a delay, a backoff) become ready: cheap,
//  for every turn of the loop. Then ms until the next one is due (-1: none).
void zf_store_wake (zf_store_t *self, int64_t now);
int64_t zf_store_next_due (zf_store_t *self, int64_t now);

//  Dispatch: the next group with ready items and maybe a worker, or NULL.
//  Then as many of its deliveries as the worker it picks (round robin over
//  those with credit) may take, at most max, put in flight in out; the
//  worker in *worker_p. 0 when none can go.
zf_cgroup_t *zf_store_next_dirty (zf_store_t *self);
size_t zf_store_take (zf_store_t *self, zf_cgroup_t *group, int64_t now, zf_worker_t **worker_p,
                      zf_delivery_t **out, size_t max);

//  Sources' positions: the last one confirmed of actor, or NULL; set.
zchunk_t *zf_store_checkpoint (zf_store_t *self, const char *actor);
void zf_store_set_checkpoint (zf_store_t *self, const char *actor, const void *data, size_t size);
zhashx_t *zf_store_checkpoints (zf_store_t *self);

//  A queue's figures, and its groups', as zflow status and the stats event
//  show them.
void zf_store_figures (zf_queue_t *queue, zf_figures_t *figures);
void zf_store_group_figures (zf_cgroup_t *group, zf_group_figures_t *figures);

//  The keys of group with most items waiting (then in flight), at most max,
//  into top; how many. None when its queue has no key.
size_t zf_store_key_figures (zf_cgroup_t *group, zf_key_figures_t *top, size_t max);

//  The stored message id, or NULL; counts of stored messages and of
//  lineages tracked.
zf_message_t *zf_store_find (zf_store_t *self, const zf_id_t *id);
size_t zf_store_size (zf_store_t *self);
size_t zf_store_lineages (zf_store_t *self);

//  Steering (zf_steer.c): what an operator does to a running broker.
//
//  The value of header name in msg's headers: a view, its length in *len;
//  NULL when it has none.
const char *zf_store_header (const zf_message_t *msg, const char *name, uint32_t *len);

//  The store follows pipeline, a new version of its config (a reload; it
//  must outlive the store): every queue's settings as it says (new queues
//  made), a consumer group per reader, declared; a group no actor reads
//  any more is undeclared, and expires after group-expiry without a
//  worker. renames ("OLD=NEW,...") are actors replaced by others that read
//  the same queue: NEW takes over OLD's group and what it holds.
void zf_store_reconfigure (zf_store_t *self, zf_pipeline_t *pipeline, const char *renames);

//  The renames of a reload alone ("OLD=NEW,..."): in every queue, a group
//  OLD becomes NEW, unless the queue has a NEW already.
void zf_store_rename_groups (zf_store_t *self, const char *renames);

//  Pauses or resumes queue: a paused queue takes puts and delivers nothing.
void zf_store_pause (zf_store_t *self, zf_queue_t *queue, bool paused);

//  Which items of a queue a steering command applies to: those named (by
//  their id, or for a dead letter also by the id of the item it is the
//  letter of), or all; of those, the ones whose header matches where
//  ("NAME=VALUE", or NULL) and that were stored before the wall clock's
//  before (ms since the Unix epoch; 0: any time).
typedef struct {
    const zf_id_t *ids; // the items named, or NULL: all
    size_t nids;        // entries in ids
    const char *where;  // HEADER=VALUE, or NULL
    int64_t before;     // ms since the Unix epoch, or 0
} zf_select_t;

//  Calls fn on the first limit items of queue select takes, oldest first,
//  fn must not change the store. Returns how many it takes in all.
size_t zf_store_list (zf_store_t *self, zf_queue_t *queue, const zf_select_t *select, size_t limit,
                      void (*fn) (zf_message_t *msg, void *arg), void *arg);

//  What a requeue or a purge did.
typedef struct {
    size_t done;    // items moved back (requeue) or dropped (purge)
    size_t missing; // ids named that are not in the queue
    size_t busy;    // items left where they are: held by a reader, or (requeue) the item
                    // they are the letter of is stored again already, or a member of a
                    // gather's group (whose failure the gather reported)
} zf_steered_t;

//  Moves the dead letters of dead (a QUEUE.dead) that select takes back to
//  the queue their item failed in: the item again, with its id, its
//  attempts reset and a zflow-requeued header (1, 2, ...), and its root's
//  lineage running again until it ends anew. A letter is moved once.
void zf_store_requeue (zf_store_t *self, zf_queue_t *dead, const zf_select_t *select,
                       zf_steered_t *steered);

//  Drops the items of queue that select takes and that wait (queued,
//  delayed, retrying; not those held by a worker): each ends cancelled,
//  for "purged from QUEUE"; a lineage with an item dropped is cancelled
//  (fn tells the workers holding its other items, as zf_store_cancel's).
void zf_store_purge (zf_store_t *self, zf_queue_t *queue, const zf_select_t *select,
                     zf_cancel_fn *fn, void *arg, zf_steered_t *steered);

//  Recovery, record by record (zf_records): a PUT (attempt its attempts
//  over); one group's delivery finished; its attempts; an item finished
//  with outcome. A record of a group no longer in the pipeline is ignored.
//  Then the figures of what was restored are zeroed (they count traffic).
void zf_store_restore_put (zf_store_t *self, const zf_record_t *record);
void zf_store_restore_ack (zf_store_t *self, const zf_record_t *record);
void zf_store_restore_retry (zf_store_t *self, const zf_record_t *record);
void zf_store_restore_fin (zf_store_t *self, const zf_record_t *record);
void zf_store_restore_result (zf_store_t *self, const zf_record_t *record);
void zf_store_restore_queue (zf_store_t *self, const zf_record_t *record);
void zf_store_restored (zf_store_t *self);

//  Snapshots: fn on every id of the dedup window with its outcome, oldest
//  first; fn on every stored message, in no order (msg->order tells).
//  fn must not change the store.
void zf_store_foreach_seen (zf_store_t *self,
                            void (*fn) (const zf_id_t *id, uint8_t outcome, void *arg), void *arg);
void zf_store_foreach_message (zf_store_t *self, void (*fn) (zf_message_t *msg, void *arg),
                               void *arg);

#ifdef __cplusplus
}
#endif
#endif
