/*  zf_store: what the broker holds, without its sockets. See zf_store.h. */
#include "zf_store.h"
#include "zf_alloc.h"
#include "zf_id.h"
#include "zf_idmap.h"
#include "zf_mp.h"
#include "zf_window.h"

#include <math.h>

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
    int64_t group_expiry;    // ms an undeclared group lives without a worker
    uint64_t stored;         // messages stored, ever (their order)
    unsigned seed;           // for backoff jitter
};

static void s_finish_delivery (zf_store_t *self, zf_delivery_t *d, bool dead);

#define S_DELIVERY(p) ZF_CONTAINER_OR_NULL (p, zf_delivery_t, link)
#define S_HELD(p)     ZF_CONTAINER_OR_NULL (p, zf_delivery_t, held)

//  --------------------------------------------------------------------------
//  Queues and groups

static void
s_group_destroy (zf_cgroup_t **self_p)
{
    if (!*self_p)
        return;
    free ((*self_p)->name);
    free ((*self_p)->workers);
    free (*self_p);
    *self_p = NULL;
}

static zf_cgroup_t *
s_group_add (zf_queue_t *queue, const char *name)
{
    zf_cgroup_t *group = (zf_cgroup_t *) zf_alloc (sizeof (zf_cgroup_t));
    group->name = zf_strdup (name);
    group->queue = queue;
    queue->groups =
        (zf_cgroup_t **) zf_realloc (queue->groups, (queue->ngroups + 1) * sizeof (zf_cgroup_t *));
    queue->groups[queue->ngroups++] = group;
    return group;
}

static void
s_queue_destroy (zf_queue_t **self_p)
{
    if (!*self_p)
        return;
    zf_queue_t *self = *self_p;
    for (size_t g = 0; g < self->ngroups; g++)
        s_group_destroy (&self->groups[g]);
    free (self->groups);
    zlistx_destroy (&self->waiting);
    free (self->name);
    free (self);
    *self_p = NULL;
}

zf_queue_t *
zf_store_queue (zf_store_t *self, const char *name)
{
    zf_queue_t *queue = (zf_queue_t *) zhashx_lookup (self->queues, name);
    if (queue)
        return queue;
    queue = (zf_queue_t *) zf_alloc (sizeof (zf_queue_t));
    queue->name = zf_strdup (name);
    const zf_queue_settings_t *settings = zf_pipeline_queue_settings (self->pipeline, name);
    queue->max_depth = settings->max_depth;
    queue->max_attempts = settings->max_attempts;
    queue->timeout = settings->timeout;
    queue->retry_base = settings->retry_base;
    queue->retry_max = settings->retry_max;
    size_t len = strlen (name);
    queue->dead_letters = len > 5 && strcmp (name + len - 5, ".dead") == 0;
    if (queue->dead_letters)
        queue->max_depth = INT64_MAX; // the broker must always be able to dead-letter
    queue->waiting = zlistx_new ();
    zlistx_set_destructor (queue->waiting, (zlistx_destructor_fn *) zf_store_pending_destroy);
    zf_cgroup_t *anonymous = s_group_add (queue, ""); // holds items until a first group joins
    anonymous->anonymous = anonymous->declared = true;
    zhashx_insert (self->queues, name, queue);
    zlistx_add_end (self->queue_order, queue);
    self->hooks.created (self->hooks.arg, queue);
    return queue;
}

zf_queue_t *
zf_store_lookup (zf_store_t *self, const char *name)
{
    return (zf_queue_t *) zhashx_lookup (self->queues, name);
}

zlistx_t *
zf_store_queues (zf_store_t *self)
{
    return self->queue_order;
}

//  Puts group on the list of groups to dispatch (once).
static void
s_mark_dirty (zf_store_t *self, zf_cgroup_t *group)
{
    if (!group->dirty) {
        group->dirty = true;
        zlistx_add_end (self->dirty, group);
    }
}

zf_cgroup_t *
zf_store_group (zf_store_t *self, zf_queue_t *queue, const char *name)
{
    for (size_t g = 0; g < queue->ngroups; g++)
        if (strcmp (queue->groups[g]->name, name) == 0)
            return queue->groups[g];
    if (queue->ngroups == 1 && queue->groups[0]->anonymous) {
        zf_cgroup_t *group = queue->groups[0];
        free (group->name);
        group->name = zf_strdup (name);
        group->anonymous = group->declared = false;
        return group;
    }
    return s_group_add (queue, name);
}

//  --------------------------------------------------------------------------
//  The store

static void
s_message_free_only (void *value, void *arg)
{
    zf_message_t *msg = (zf_message_t *) value;
    zframe_destroy (&msg->body);
    free (msg->headers);
    free (msg->reason);
    free (msg);
}

static void
s_lineage_free_only (void *value, void *arg)
{
    free (value);
}

zf_store_t *
zf_store_new (zf_pipeline_t *pipeline, size_t dedup_window, const zf_store_hooks_t *hooks)
{
    zf_store_t *self = (zf_store_t *) zf_alloc (sizeof (zf_store_t));
    self->pipeline = pipeline;
    self->hooks = *hooks;
    self->queues = zhashx_new ();
    zhashx_set_destructor (self->queues, (zhashx_destructor_fn *) s_queue_destroy);
    self->queue_order = zlistx_new ();
    self->live = zf_idmap_new (1024);
    self->seen = dedup_window ? zf_window_new (dedup_window) : NULL;
    self->lineages = zf_idmap_new (1024);
    self->dirty = zlistx_new ();
    self->checkpoints = zhashx_new ();
    zhashx_set_destructor (self->checkpoints, (zhashx_destructor_fn *) zchunk_destroy);
    self->seed = (unsigned) zclock_time () ^ (unsigned) getpid ();
    self->group_expiry = pipeline->broker_settings.group_expiry;
    if (!self->live || !self->lineages || (dedup_window && !self->seen)) {
        zf_store_destroy (&self);
        return NULL;
    }
    for (zf_queue_conf_t *q = (zf_queue_conf_t *) zlistx_first (pipeline->queues); q;
         q = (zf_queue_conf_t *) zlistx_next (pipeline->queues)) {
        zf_queue_t *queue = zf_store_queue (self, q->name);
        for (const char *reader = (const char *) zlistx_first (q->readers); reader;
             reader = (const char *) zlistx_next (q->readers))
            zf_store_group (self, queue, reader)->declared = true;
    }
    return self;
}

void
zf_store_destroy (zf_store_t **self_p)
{
    zf_store_t *self = *self_p;
    if (!self)
        return;
    if (self->live)
        zf_idmap_foreach (self->live, s_message_free_only, NULL);
    if (self->lineages)
        zf_idmap_foreach (self->lineages, s_lineage_free_only, NULL);
    zlistx_destroy (&self->queue_order);
    zhashx_destroy (&self->queues);
    zf_idmap_destroy (&self->live);
    zf_window_destroy (&self->seen);
    zf_idmap_destroy (&self->lineages);
    zf_heap_destroy (&self->delayed);
    zlistx_destroy (&self->dirty);
    zhashx_destroy (&self->checkpoints);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  The dedup window and lineages

//  Records an id's outcome in the dedup window. Returns false if the id
//  was in the window already (its outcome is updated).
static bool
s_seen_set (zf_store_t *self, const zf_id_t *id, uint8_t outcome)
{
    uint8_t evicted = 0;
    if (!self->seen || zf_window_set (self->seen, id, outcome, &evicted))
        return false;
    // The window is a ring: the oldest id leaves as a new one comes. A
    // stored message that leaves it is still found through the live map.
    if (evicted == ZF_OUTCOME_LIVE)
        self->live_unseen++;
    return true;
}

//  True if id was put before and is stored or still in the dedup window.
static bool
s_seen_before (zf_store_t *self, const zf_id_t *id)
{
    return (self->seen && zf_window_get (self->seen, id)) ||
           (self->live_unseen && zf_idmap_get (self->live, id));
}

static void
s_lineage_finish (zf_store_t *self, zf_lineage_t *lineage)
{
    const char *state = lineage->cancelled ? "cancelled" : lineage->dead ? "dead" : "done";
    if (lineage->tracker[0])
        self->hooks.lineage_over (self->hooks.arg, lineage, state);
    zf_idmap_remove (self->lineages, &lineage->root);
    free (lineage);
}

zf_lineage_t *
zf_store_hold (zf_store_t *self, const zf_id_t *root)
{
    zf_lineage_t *lineage = (zf_lineage_t *) zf_idmap_get (self->lineages, root);
    if (!lineage) {
        lineage = (zf_lineage_t *) zf_alloc (sizeof (zf_lineage_t));
        lineage->root = *root;
        zf_idmap_put (self->lineages, root, lineage);
        // A stored root joins its new lineage.
        zf_message_t *first = (zf_message_t *) zf_idmap_get (self->live, root);
        if (first && !first->lineage) {
            first->lineage = lineage;
            lineage->outstanding++;
        }
    }
    lineage->outstanding++;
    return lineage;
}

void
zf_store_release (zf_store_t *self, zf_lineage_t *lineage)
{
    if (--lineage->outstanding == 0)
        s_lineage_finish (self, lineage);
}

//  --------------------------------------------------------------------------
//  Messages

static uint8_t
s_outcome (zf_message_t *msg)
{
    return msg->dead                                 ? ZF_OUTCOME_DEAD
           : msg->lineage && msg->lineage->cancelled ? ZF_OUTCOME_CANCELLED
                                                     : ZF_OUTCOME_DONE;
}

//  Frees msg, its deliveries all finished, with outcome.
static void
s_msg_free (zf_store_t *self, zf_message_t *msg, uint8_t outcome)
{
    zf_idmap_remove (self->live, &msg->id);
    self->hooks.finished (self->hooks.arg, msg, outcome);
    if (s_seen_set (self, &msg->id, outcome) && self->live_unseen)
        self->live_unseen--; // it had left the window while stored
    zf_queue_t *queue = msg->queue;
    queue->depth--;
    queue->acked++;
    zf_lineage_t *lineage = msg->lineage;
    if (lineage) {
        if (msg->dead)
            lineage->dead = true;
        zf_store_release (self, lineage);
    }
    s_message_free_only (msg, NULL);
}

//  Stores an envelope and body as a message of queue, with a delivery per
//  group. Takes the body, and the hold on lineage (may be NULL).
static zf_message_t *
s_msg_store (zf_store_t *self, zf_queue_t *queue, zf_env_t *env, zframe_t **body_p,
             zf_lineage_t *lineage)
{
    size_t n = queue->ngroups;
    assert (n > 0); // every queue has a group, anonymous at first
    zf_message_t *msg =
        (zf_message_t *) zf_alloc (sizeof (zf_message_t) + n * sizeof (zf_delivery_t));
    msg->id = env->id;
    msg->parent = env->parent;
    msg->root = env->root;
    msg->ts = env->ts;
    msg->fanin = env->group;
    if (env->headers_size) {
        msg->headers = (uint8_t *) zf_alloc (env->headers_size);
        memcpy (msg->headers, env->headers, env->headers_size);
        msg->headers_size = env->headers_size;
    }
    msg->body = *body_p;
    *body_p = NULL;
    msg->queue = queue;
    msg->ndeliveries = (uint32_t) n;
    msg->pending = (uint32_t) n;
    for (size_t g = 0; g < n; g++) {
        zf_delivery_t *d = &msg->deliveries[g];
        d->msg = msg;
        d->group = queue->groups[g];
        d->attempt = env->attempt; // kept across a move to the dead-letter queue
        d->state = ZF_D_READY;
        zf_list_push (&d->group->ready, &d->link);
        s_mark_dirty (self, d->group);
    }
    zf_idmap_put (self->live, &msg->id, msg);
    msg->order = self->stored++;
    queue->depth++;
    queue->put++;
    msg->lineage = lineage;
    return msg;
}

//  A new message, known from now on and told about.
static zf_message_t *
s_msg_new (zf_store_t *self, zf_queue_t *queue, zf_env_t *env, zframe_t **body_p,
           zf_lineage_t *lineage)
{
    zf_message_t *msg = s_msg_store (self, queue, env, body_p, lineage);
    s_seen_set (self, &msg->id, ZF_OUTCOME_LIVE);
    self->hooks.stored (self->hooks.arg, msg, env->attempt);
    return msg;
}

zf_message_t *
zf_store_put (zf_store_t *self, zf_queue_t *queue, zf_env_t *env, zframe_t **body_p)
{
    return s_msg_new (self, queue, env, body_p, NULL);
}

bool
zf_store_has_room (zf_store_t *self)
{
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order))
        if ((int64_t) queue->depth >= queue->max_depth)
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  Admission

zf_pending_t *
zf_store_pending_new (uint32_t nitems)
{
    zf_pending_t *put = (zf_pending_t *) zf_alloc (
        sizeof (zf_pending_t) + nitems * (sizeof (zf_env_t) + sizeof (zf_lineage_t *)));
    put->holds = (zf_lineage_t **) &put->items[nitems];
    put->nitems = nitems;
    return put;
}

void
zf_store_pending_destroy (zf_pending_t **self_p)
{
    if (!*self_p)
        return;
    zf_pending_t *self = *self_p;
    for (uint32_t i = 0; i < self->nitems; i++) {
        zframe_destroy (&self->items[i].body);
        free ((void *) self->items[i].headers);
    }
    free (self);
    *self_p = NULL;
}

//  Admits the items of put from put->next on. Returns the queue that is
//  full if it must wait, else NULL (all admitted).
static zf_queue_t *
s_admit (zf_store_t *self, zf_pending_t *put)
{
    for (; put->next < put->nitems; put->next++) {
        zf_env_t *env = &put->items[put->next];
        zf_lineage_t *hold = put->holds[put->next];
        if (s_seen_before (self, &env->id)) {
            put->duplicates++;
            zframe_destroy (&env->body);
            put->holds[put->next] = NULL;
            if (hold)
                zf_store_release (self, hold);
            continue;
        }
        zf_queue_t *queue = zf_store_queue (self, env->queue);
        if ((int64_t) queue->depth >= queue->max_depth)
            return queue;
        env->attempt = 0;
        put->holds[put->next] = NULL; // the message takes the hold
        s_msg_new (self, queue, env, &env->body, hold);
        put->accepted++;
    }
    return NULL;
}

bool
zf_store_admit (zf_store_t *self, zf_pending_t *put)
{
    zf_queue_t *full = s_admit (self, put);
    if (full)
        zlistx_add_end (full->waiting, put);
    return !full;
}

//  Room was made in queue: admit the PUTs waiting for it, in order.
static void
s_resume_waiting (zf_store_t *self, zf_queue_t *queue)
{
    zf_pending_t *put;
    while ((int64_t) queue->depth < queue->max_depth &&
           (put = (zf_pending_t *) zlistx_first (queue->waiting))) {
        zf_queue_t *full = s_admit (self, put);
        if (full == queue)
            return;
        zlistx_detach (queue->waiting, zlistx_cursor (queue->waiting));
        if (full)
            zlistx_add_end (full->waiting, put);
        else {
            self->hooks.admitted (self->hooks.arg, put);
            zf_store_pending_destroy (&put);
        }
    }
}

//  --------------------------------------------------------------------------
//  Failure and finishing

//  Backoff before attempt number `attempt` + 1: exponential, full jitter.
static int64_t
s_backoff (zf_store_t *self, zf_queue_t *queue, uint32_t attempt)
{
    double ceiling = (double) queue->retry_base * pow (2.0, attempt > 0 ? attempt - 1 : 0);
    if (ceiling > (double) queue->retry_max)
        ceiling = (double) queue->retry_max;
    return (int64_t) (ceiling * ((double) rand_r (&self->seed) / RAND_MAX));
}

//  Takes d out of its worker's hands and its queue's timeout list.
static void
s_unhold (zf_delivery_t *d)
{
    if (d->holder) {
        zf_list_remove (&d->holder->held, &d->held);
        d->holder = NULL;
    }
    zf_list_remove (&d->msg->queue->inflight, &d->link);
    d->group->inflight--;
}

//  A delivery in flight failed (NACK, timeout, lost worker): retry it after
//  a backoff, or dead-letter it. delay_ms is a floor asked by the worker.
static void
s_retry (zf_store_t *self, zf_delivery_t *d, const char *reason, bool final, int64_t delay_ms)
{
    zf_message_t *msg = d->msg;
    zf_queue_t *queue = msg->queue;
    s_unhold (d);
    queue->nacked++;
    if (reason && *reason) {
        free (msg->reason);
        msg->reason = zf_strdup (reason);
    }
    if (final || (int64_t) d->attempt >= queue->max_attempts) {
        s_finish_delivery (self, d, true);
        return;
    }
    self->hooks.retried (self->hooks.arg, d);
    int64_t delay = s_backoff (self, queue, d->attempt);
    if (delay < delay_ms)
        delay = delay_ms;
    d->state = ZF_D_DELAYED;
    zf_heap_push (&self->delayed, &d->retry, zclock_mono () + delay);
}

//  The dead-letter copy of msg, delivered d->attempt times: an item of its
//  own, a child of the original with a derived id, in a lineage of its
//  own (the original's lineage is over; the copy waits for a reader).
static void
s_dead_letter (zf_store_t *self, zf_delivery_t *d)
{
    zf_message_t *msg = d->msg;
    char name[ZF_NAME_MAX + 8];
    snprintf (name, sizeof name, "%s.dead", msg->queue->name);
    if (msg->queue->dead_letters || strlen (name) > ZF_NAME_MAX)
        return;
    zf_env_t env = { .id = zf_id_child (&msg->id, UINT32_MAX),
                     .parent = msg->id,
                     .ts = msg->ts,
                     .attempt = d->attempt };
    env.headers = msg->headers;
    env.headers_size = msg->headers_size;
    if (zf_idmap_get (self->live, &env.id))
        return; // another group's delivery made it already
    zframe_t *body = zframe_dup (msg->body);
    zf_queue_t *queue = zf_store_queue (self, name);
    zf_message_t *copy = s_msg_store (self, queue, &env, &body, NULL);
    copy->reason = msg->reason ? zf_strdup (msg->reason) : NULL;
    s_seen_set (self, &copy->id, ZF_OUTCOME_LIVE);
    self->hooks.stored (self->hooks.arg, copy, env.attempt);
}

//  The input queue of the first fan-in actor (a gather) downstream of the
//  actor named from, following each actor's output through the pipeline;
//  NULL if there is none. Bounded by the number of actors (a loop of
//  queues ends there).
static const char *
s_fanin_downstream (zf_store_t *self, const char *from)
{
    zf_actor_conf_t *actor = zf_pipeline_actor (self->pipeline, from);
    if (actor && actor->kind && (actor->kind->flags & ZF_KIND_FANIN))
        return NULL; // what a gather refuses is no member of a group downstream
    size_t steps = zlistx_size (self->pipeline->actors);
    while (actor && actor->output && steps--) {
        zf_queue_conf_t *queue = zf_pipeline_queue (self->pipeline, actor->output);
        const char *reader = queue ? (const char *) zlistx_first (queue->readers) : NULL;
        zf_actor_conf_t *next = reader ? zf_pipeline_actor (self->pipeline, reader) : NULL;
        if (next && next->kind && (next->kind->flags & ZF_KIND_FANIN))
            return queue->name;
        actor = next;
    }
    return NULL;
}

//  A member of a gather group was dead-lettered on its way (d): the gather
//  downstream would wait for it for ever. It gets the member's error in its
//  place instead, an item of the lineage with the member's group: {"error":
//  the reason, "dead": the dead-letter queue, "id": the member's}, its id
//  derived from the member's so that it is put once.
static void
s_tell_fanin (zf_store_t *self, zf_delivery_t *d, const char *dead_queue)
{
    zf_message_t *msg = d->msg;
    const char *input = msg->fanin.size ? s_fanin_downstream (self, d->group->name) : NULL;
    if (!input)
        return;
    zf_env_t env = { .id = zf_id_child (&msg->id, UINT32_MAX - 1),
                     .parent = msg->id,
                     .root = msg->root,
                     .ts = msg->ts,
                     .group = msg->fanin };
    if (zf_idmap_get (self->live, &env.id) || (self->seen && zf_window_get (self->seen, &env.id)))
        return;
    char hex[ZF_ID_HEX];
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    zf_mp_pack_cstr (&pk, "error");
    zf_mp_pack_cstr (&pk, msg->reason ? msg->reason : "dead-lettered");
    zf_mp_pack_cstr (&pk, "dead");
    zf_mp_pack_cstr (&pk, dead_queue);
    zf_mp_pack_cstr (&pk, "id");
    zf_mp_pack_cstr (&pk, zf_id_format (&msg->id, hex));
    zframe_t *body = zframe_new (buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    zf_lineage_t *lineage = zf_id_is_zero (&msg->root) ? NULL : zf_store_hold (self, &msg->root);
    s_msg_new (self, zf_store_queue (self, input), &env, &body, lineage);
}

//  A delivery is over: acked, or dead (copied to QUEUE.dead). The message
//  goes when its last delivery does.
static void
s_finish_delivery (zf_store_t *self, zf_delivery_t *d, bool dead)
{
    zf_message_t *msg = d->msg;
    zf_queue_t *queue = msg->queue;
    if (dead) {
        queue->dead++;
        msg->dead = true;
        self->hooks.dead (self->hooks.arg, d);
        s_dead_letter (self, d);
        char dead_queue[ZF_NAME_MAX + 8];
        snprintf (dead_queue, sizeof dead_queue, "%s.dead", queue->name);
        s_tell_fanin (self, d, dead_queue);
    }
    else
        d->group->acked++;
    d->state = ZF_D_FINISHED;
    if (--msg->pending == 0) {
        s_msg_free (self, msg, s_outcome (msg));
        s_resume_waiting (self, queue);
    }
    else
        self->hooks.acked (self->hooks.arg, d, dead); // the other groups' deliveries go on
}

//  --------------------------------------------------------------------------
//  Workers

int
zf_store_join (zf_store_t *self, zf_worker_t *worker, const char *queue_name, const char *name)
{
    if (worker->ngroups == ZF_LIST_MAX)
        return -1;
    zf_queue_t *queue = zf_store_queue (self, queue_name);
    zf_cgroup_t *group = zf_store_group (self, queue, name);
    if (group->nworkers == group->cap) {
        group->cap = group->cap ? group->cap * 2 : 4;
        group->workers =
            (zf_worker_t **) zf_realloc (group->workers, group->cap * sizeof (zf_worker_t *));
    }
    group->workers[group->nworkers++] = worker;
    group->idle_since = 0;
    worker->groups[worker->ngroups++] = group;
    if (group->ready.size)
        s_mark_dirty (self, group);
    return 0;
}

void
zf_store_credit (zf_store_t *self, zf_worker_t *worker, uint32_t credit)
{
    worker->window += credit;
    for (size_t g = 0; g < worker->ngroups; g++)
        s_mark_dirty (self, worker->groups[g]);
}

void
zf_store_leave (zf_store_t *self, zf_worker_t *worker, bool lost)
{
    for (size_t g = 0; g < worker->ngroups; g++) {
        zf_cgroup_t *group = worker->groups[g];
        for (size_t w = 0; w < group->nworkers; w++)
            if (group->workers[w] == worker) {
                group->workers[w] = group->workers[--group->nworkers];
                if (group->nworkers == 0)
                    group->idle_since = zclock_mono ();
                break;
            }
    }
    worker->ngroups = 0;
    zf_delivery_t *d;
    while ((d = S_HELD (worker->held.head))) {
        if (lost)
            s_retry (self, d, "worker lost", false, 0);
        else {
            s_unhold (d);
            d->attempt--; // handed back: this delivery does not count
            d->state = ZF_D_READY;
            zf_list_push_front (&d->group->ready, &d->link);
            s_mark_dirty (self, d->group);
        }
    }
}

//  The delivery of id held by worker, or NULL.
static zf_delivery_t *
s_held_by (zf_store_t *self, const zf_id_t *id, zf_worker_t *worker)
{
    zf_message_t *msg = (zf_message_t *) zf_idmap_get (self->live, id);
    if (!msg)
        return NULL;
    for (uint32_t g = 0; g < msg->ndeliveries; g++)
        if (msg->deliveries[g].holder == worker && msg->deliveries[g].state == ZF_D_INFLIGHT)
            return &msg->deliveries[g];
    return NULL;
}

//  Frees one slot of worker's window: the groups it works in may dispatch.
static void
s_slot_freed (zf_store_t *self, zf_worker_t *worker)
{
    for (size_t g = 0; g < worker->ngroups; g++)
        if (worker->groups[g]->ready.size)
            s_mark_dirty (self, worker->groups[g]);
}

//  An answer for an item worker no longer holds: a timed-out one it still
//  counted against its window comes back.
static bool
s_late (zf_store_t *self, zf_worker_t *worker)
{
    if (worker->zombies) {
        worker->zombies--;
        s_slot_freed (self, worker);
    }
    return false;
}

bool
zf_store_ack (zf_store_t *self, zf_worker_t *worker, const zf_id_t *id)
{
    zf_delivery_t *d = s_held_by (self, id, worker);
    if (!d)
        return s_late (self, worker);
    s_unhold (d);
    worker->done++;
    s_finish_delivery (self, d, false);
    s_slot_freed (self, worker);
    return true;
}

bool
zf_store_nack (zf_store_t *self, zf_worker_t *worker, const zf_id_t *id, const char *reason,
               bool final, int64_t delay_ms)
{
    zf_delivery_t *d = s_held_by (self, id, worker);
    if (!d)
        return s_late (self, worker);
    worker->failed++;
    s_retry (self, d, reason, final, delay_ms);
    s_slot_freed (self, worker);
    return true;
}

//  --------------------------------------------------------------------------
//  Cancel and state

void
zf_store_cancel (zf_store_t *self, const zf_id_t *root, void (*fn) (zf_worker_t *worker, void *arg),
                 void *arg)
{
    // A hold keeps the lineage while its items are dropped one by one.
    zf_lineage_t *lineage = zf_store_hold (self, root);
    lineage->cancelled = true;
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order))
        for (size_t g = 0; g < queue->ngroups; g++) {
            zf_delivery_t *d = S_DELIVERY (queue->groups[g]->ready.head);
            while (d) {
                zf_delivery_t *next = S_DELIVERY (d->link.next);
                if (d->msg->lineage == lineage) {
                    zf_list_remove (&queue->groups[g]->ready, &d->link);
                    s_finish_delivery (self, d, false);
                }
                d = next;
            }
        }
    for (size_t i = 0; i < self->delayed.size;) {
        zf_delivery_t *d = ZF_CONTAINER (self->delayed.nodes[i], zf_delivery_t, retry);
        if (d->msg->lineage == lineage) {
            zf_heap_remove (&self->delayed, &d->retry);
            s_finish_delivery (self, d, false);
        }
        else
            i++;
    }
    // The workers holding its items are told once each; they ack them.
    zhashx_t *told = zhashx_new ();
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order))
        for (zf_delivery_t *d = S_DELIVERY (queue->inflight.head); d;
             d = S_DELIVERY (d->link.next)) {
            char key[32];
            snprintf (key, sizeof key, "%p", (void *) d->holder);
            if (d->msg->lineage == lineage && d->holder && !zhashx_lookup (told, key)) {
                zhashx_insert (told, key, (void *) 1);
                fn (d->holder, arg);
            }
        }
    zhashx_destroy (&told);
    zf_store_release (self, lineage);
}

const char *
zf_store_state (zf_store_t *self, const zf_id_t *id, zf_message_t **msg_p)
{
    zf_message_t *msg = (zf_message_t *) zf_idmap_get (self->live, id);
    *msg_p = msg;
    if (msg) {
        if (msg->dead)
            return "dead";
        bool inflight = false, delayed = false;
        for (uint32_t g = 0; g < msg->ndeliveries; g++) {
            inflight |= msg->deliveries[g].state == ZF_D_INFLIGHT;
            delayed |= msg->deliveries[g].state == ZF_D_DELAYED;
        }
        return delayed ? "retrying" : inflight ? "delivered" : "queued";
    }
    switch (self->seen ? zf_window_get (self->seen, id) : 0) {
        case ZF_OUTCOME_DONE:
            return "done";
        case ZF_OUTCOME_DEAD:
            return "dead";
        case ZF_OUTCOME_CANCELLED:
            return "cancelled";
        default:
            return "unknown";
    }
}

//  --------------------------------------------------------------------------
//  Timers and dispatch

typedef struct {
    zf_queue_t *queue;   // whose messages
    zf_message_t **msgs; // they
    size_t count;        // entries
} s_of_queue_t;

static void
s_collect_of_queue (void *value, void *arg)
{
    s_of_queue_t *of = (s_of_queue_t *) arg;
    zf_message_t *msg = (zf_message_t *) value;
    if (msg->queue == of->queue)
        of->msgs[of->count++] = msg;
}

//  Forgets group of queue, which has had no worker for group-expiry: its
//  deliveries are let go (a message none of whose groups still wants it
//  is finished), and it is gone from the queue. The last group of a queue
//  becomes the anonymous one instead: its items wait for the next reader.
static void
s_group_expire (zf_store_t *self, zf_queue_t *queue, zf_cgroup_t *group)
{
    if (queue->ngroups == 1) {
        zsys_info ("broker: group '%s' of queue '%s' has had no worker for %lld ms: its %zu "
                   "items wait for the next reader",
                   group->name, queue->name, (long long) self->group_expiry, group->ready.size);
        free (group->name);
        group->name = zf_strdup ("");
        group->anonymous = group->declared = true;
        group->idle_since = 0;
        return;
    }
    s_of_queue_t of = { queue, (zf_message_t **) zf_alloc ((queue->depth + 1) * sizeof (void *)),
                        0 };
    zf_idmap_foreach (self->live, s_collect_of_queue, &of);
    size_t released = 0;
    for (size_t i = 0; i < of.count; i++) {
        zf_message_t *msg = of.msgs[i];
        for (uint32_t g = 0; g < msg->ndeliveries; g++) {
            zf_delivery_t *d = &msg->deliveries[g];
            if (d->group != group)
                continue;
            if (d->state == ZF_D_READY)
                zf_list_remove (&group->ready, &d->link);
            else if (d->state == ZF_D_DELAYED)
                zf_heap_remove (&self->delayed, &d->retry);
            else if (d->state == ZF_D_INFLIGHT)
                s_unhold (d);
            d->group = NULL; // a delivery of no group: finished
            if (d->state != ZF_D_FINISHED) {
                d->state = ZF_D_FINISHED;
                released++;
                if (--msg->pending == 0)
                    s_msg_free (self, msg, s_outcome (msg));
            }
            break; // one delivery per group
        }
    }
    free (of.msgs);
    zsys_info ("broker: group '%s' of queue '%s' has had no worker for %lld ms: forgotten, "
               "%zu items let go",
               group->name, queue->name, (long long) self->group_expiry, released);
    for (size_t g = 0; g < queue->ngroups; g++)
        if (queue->groups[g] == group) {
            memmove (&queue->groups[g], &queue->groups[g + 1],
                     (queue->ngroups - g - 1) * sizeof (zf_cgroup_t *));
            queue->ngroups--;
            break;
        }
    if (group->dirty)
        zlistx_delete (self->dirty, zlistx_find (self->dirty, group));
    s_group_destroy (&group);
    s_resume_waiting (self, queue);
}

void
zf_store_tick (zf_store_t *self, int64_t now)
{
    // Retries whose backoff is over.
    zf_heap_node_t *node;
    while ((node = zf_heap_first (&self->delayed)) && node->due <= now) {
        zf_delivery_t *d = ZF_CONTAINER (node, zf_delivery_t, retry);
        zf_heap_remove (&self->delayed, node);
        d->state = ZF_D_READY;
        zf_list_push (&d->group->ready, &d->link);
        s_mark_dirty (self, d->group);
    }
    // Items held past their queue's timeout.
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order)) {
        zf_delivery_t *d;
        while ((d = S_DELIVERY (queue->inflight.head)) && d->due <= now) {
            if (d->holder)
                d->holder->zombies++;
            s_retry (self, d, "timeout", false, 0);
        }
        for (size_t g = 0; g < queue->ngroups; g++) {
            zf_cgroup_t *group = queue->groups[g];
            if (!group->declared && !group->nworkers && group->idle_since &&
                now - group->idle_since >= self->group_expiry) {
                s_group_expire (self, queue, group);
                break; // the groups moved: the rest wait for the next tick
            }
        }
    }
}

zf_cgroup_t *
zf_store_next_dirty (zf_store_t *self)
{
    zf_cgroup_t *group = (zf_cgroup_t *) zlistx_first (self->dirty);
    if (group) {
        zlistx_delete (self->dirty, zlistx_cursor (self->dirty));
        group->dirty = false;
    }
    return group;
}

static uint64_t
s_free_slots (zf_worker_t *worker)
{
    uint64_t used = worker->held.size + worker->zombies;
    return worker->window > used ? worker->window - used : 0;
}

size_t
zf_store_take (zf_store_t *self, zf_cgroup_t *group, int64_t now, zf_worker_t **worker_p,
               zf_delivery_t **out, size_t max)
{
    if (!group->ready.size || !group->nworkers)
        return 0;
    // Round robin over workers with a free slot.
    zf_worker_t *worker = NULL;
    for (size_t tries = 0; tries < group->nworkers && !worker; tries++) {
        zf_worker_t *candidate = group->workers[group->next++ % group->nworkers];
        if (s_free_slots (candidate))
            worker = candidate;
    }
    if (!worker)
        return 0;
    uint64_t slots = s_free_slots (worker);
    // Share a burst among the group's workers rather than give one all.
    uint64_t share = group->ready.size / group->nworkers + 1;
    if (slots > share)
        slots = share;
    size_t n = 0;
    zf_delivery_t *d;
    while (n < slots && n < max && (d = S_DELIVERY (group->ready.head))) {
        zf_list_remove (&group->ready, &d->link);
        zf_queue_t *queue = d->msg->queue;
        d->attempt++;
        d->state = ZF_D_INFLIGHT;
        d->holder = worker;
        d->due = queue->timeout ? now + queue->timeout : INT64_MAX;
        zf_list_push (&queue->inflight, &d->link);
        zf_list_push (&worker->held, &d->held);
        group->inflight++;
        group->delivered++;
        out[n++] = d;
    }
    *worker_p = worker;
    return n;
}

//  --------------------------------------------------------------------------
//  Checkpoints and figures

zchunk_t *
zf_store_checkpoint (zf_store_t *self, const char *actor)
{
    return (zchunk_t *) zhashx_lookup (self->checkpoints, actor);
}

void
zf_store_set_checkpoint (zf_store_t *self, const char *actor, const void *data, size_t size)
{
    zhashx_update (self->checkpoints, actor, zchunk_new (data, size));
}

zhashx_t *
zf_store_checkpoints (zf_store_t *self)
{
    return self->checkpoints;
}

void
zf_store_figures (zf_queue_t *queue, zf_figures_t *f)
{
    snprintf (f->name, sizeof f->name, "%s", queue->name);
    f->depth = queue->depth;
    f->inflight = queue->inflight.size;
    f->put = queue->put;
    f->ack = queue->acked;
    f->nack = queue->nacked;
    f->dead = queue->dead;
    f->consumers = 0;
    for (size_t g = 0; g < queue->ngroups; g++)
        f->consumers += (uint32_t) queue->groups[g]->nworkers;
}

void
zf_store_group_figures (zf_cgroup_t *group, zf_group_figures_t *f)
{
    snprintf (f->queue, sizeof f->queue, "%s", group->queue->name);
    snprintf (f->name, sizeof f->name, "%s", group->name);
    f->workers = (uint32_t) group->nworkers;
    f->ready = group->ready.size;
    f->inflight = group->inflight;
    f->acked = group->acked;
    f->declared = group->declared;
}

zf_message_t *
zf_store_find (zf_store_t *self, const zf_id_t *id)
{
    return (zf_message_t *) zf_idmap_get (self->live, id);
}

size_t
zf_store_size (zf_store_t *self)
{
    return zf_idmap_size (self->live);
}

size_t
zf_store_lineages (zf_store_t *self)
{
    return zf_idmap_size (self->lineages);
}

//  --------------------------------------------------------------------------
//  Recovery

//  The delivery of msg for the group named name (not finished), or NULL.
static zf_delivery_t *
s_delivery_of (zf_message_t *msg, const char *name, size_t size)
{
    for (uint32_t g = 0; msg && g < msg->ndeliveries; g++) {
        zf_delivery_t *d = &msg->deliveries[g];
        if (d->state != ZF_D_FINISHED && strlen (d->group->name) == size &&
            memcmp (d->group->name, name, size) == 0)
            return d;
    }
    return NULL;
}

//  Takes delivery d of a message being restored off its group's ready list.
static void
s_restore_finish (zf_delivery_t *d)
{
    if (d->state == ZF_D_READY)
        zf_list_remove (&d->group->ready, &d->link);
    d->state = ZF_D_FINISHED;
}

void
zf_store_restore_put (zf_store_t *self, const zf_record_t *r)
{
    if (zf_idmap_get (self->live, &r->id))
        return; // stored already
    zf_env_t env = { .id = r->id,
                     .parent = r->parent,
                     .root = r->root,
                     .ts = r->ts,
                     .attempt = r->attempt,
                     .group = r->fanin,
                     .headers = r->headers,
                     .headers_size = (uint32_t) r->headers_size };
    char name[ZF_NAME_MAX + 1];
    snprintf (name, sizeof name, "%.*s", (int) r->name_size, r->name);
    zf_queue_t *queue = zf_store_queue (self, name);
    zf_lineage_t *lineage = zf_id_is_zero (&r->root) ? NULL : zf_store_hold (self, &r->root);
    zframe_t *frame = zframe_new (r->data, r->data_size);
    zf_message_t *msg = s_msg_store (self, queue, &env, &frame, lineage);
    msg->dead = r->dead;
    if (r->reason_size)
        msg->reason = strndup (r->reason, r->reason_size);
    s_seen_set (self, &msg->id, ZF_OUTCOME_LIVE);
}

void
zf_store_restore_ack (zf_store_t *self, const zf_record_t *r)
{
    zf_message_t *msg = (zf_message_t *) zf_idmap_get (self->live, &r->id);
    zf_delivery_t *d = s_delivery_of (msg, r->name, r->name_size);
    if (!d)
        return; // a group no longer in the pipeline: its delivery stays ready
    s_restore_finish (d);
    msg->dead |= r->dead;
    if (--msg->pending == 0)
        s_msg_free (self, msg, s_outcome (msg));
}

void
zf_store_restore_retry (zf_store_t *self, const zf_record_t *r)
{
    zf_message_t *msg = (zf_message_t *) zf_idmap_get (self->live, &r->id);
    zf_delivery_t *d = s_delivery_of (msg, r->name, r->name_size);
    if (d && r->attempt > d->attempt)
        d->attempt = r->attempt; // else finished since, or a group no longer in the pipeline
}

void
zf_store_restore_fin (zf_store_t *self, const zf_record_t *r)
{
    zf_message_t *msg = (zf_message_t *) zf_idmap_get (self->live, &r->id);
    if (msg) {
        for (uint32_t g = 0; g < msg->ndeliveries; g++)
            s_restore_finish (&msg->deliveries[g]);
        msg->dead = r->outcome == ZF_OUTCOME_DEAD;
        s_msg_free (self, msg, r->outcome);
    }
    s_seen_set (self, &r->id, r->outcome); // the outcome as recorded (cancelled included)
}

void
zf_store_restored (zf_store_t *self)
{
    // The figures are this run's: what was restored is depth, not traffic.
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order)) {
        queue->put = queue->acked = queue->dead = 0;
        for (size_t g = 0; g < queue->ngroups; g++)
            queue->groups[g]->acked = 0;
    }
}

//  --------------------------------------------------------------------------
//  Snapshots

void
zf_store_foreach_seen (zf_store_t *self, void (*fn) (const zf_id_t *id, uint8_t outcome, void *arg),
                       void *arg)
{
    if (self->seen)
        zf_window_foreach (self->seen, fn, arg);
}

void
zf_store_foreach_message (zf_store_t *self, void (*fn) (zf_message_t *msg, void *arg), void *arg)
{
    zf_idmap_foreach (self->live, (void (*) (void *, void *)) fn, arg);
}
