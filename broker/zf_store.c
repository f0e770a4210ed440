/*  zf_store: what the broker holds, without its sockets: queues and groups,
    messages, lineages, the dedup window, admission, recovery. The life of
    a delivery (workers, dispatch, acks, retries, timeouts) is in
    zf_delivery.c. See zf_store.h. */
#include "zf_store.h"
#include "zf_store_impl.h"
#include "zf_alloc.h"
#include "zf_id.h"
#include "zf_idmap.h"
#include "zf_json.h"
#include "zf_window.h"

//  --------------------------------------------------------------------------
//  Queues and groups

void
zf_store_group_destroy (zf_cgroup_t **self_p)
{
    if (!*self_p)
        return;
    free ((*self_p)->name);
    free ((*self_p)->workers);
    zf_flow_destroy (&(*self_p)->flow);
    free (*self_p);
    *self_p = NULL;
}

static zf_cgroup_t *
s_group_add (zf_queue_t *queue, const char *name)
{
    zf_cgroup_t *group = (zf_cgroup_t *) zf_alloc (sizeof (zf_cgroup_t));
    group->name = zf_strdup (name);
    group->queue = queue;
    group->flow = zf_flow_new (group);
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
        zf_store_group_destroy (&self->groups[g]);
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
    zf_queue_conf_t *conf = zf_pipeline_queue (self->pipeline, name);
    queue->collects = conf && conf->results;
    queue->keeps = !queue->collects || zlistx_size (conf->readers) || conf->external;
    if (queue->dead_letters)
        queue->max_depth = INT64_MAX; // the broker must always be able to dead-letter
    queue->waiting = zlistx_new ();
    zlistx_set_destructor (queue->waiting, (zlistx_destructor_fn *) zf_store_pending_destroy);
    zf_cgroup_t *anonymous = s_group_add (queue, ""); // holds items until a first group joins
    anonymous->anonymous = anonymous->declared = true;
    zf_flow_configure (self, queue, settings);
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
void
zf_store_mark_dirty (zf_store_t *self, zf_cgroup_t *group)
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
    zf_cgroup_t *group;
    if (queue->ngroups == 1 && queue->groups[0]->anonymous) {
        group = queue->groups[0];
        free (group->name);
        group->name = zf_strdup (name);
        group->anonymous = group->declared = false;
    }
    else
        group = s_group_add (queue, name);
    zf_flow_group (self, group); // its actor's limits, or its queue's
    return group;
}

bool
zf_store_group_allowed (zf_store_t *self, const char *queue_name, const char *name, int64_t max)
{
    zf_queue_t *queue = zf_store_lookup (self, queue_name);
    if (queue) {
        for (size_t g = 0; g < queue->ngroups; g++)
            if (strcmp (queue->groups[g]->name, name) == 0)
                return true;
        if (queue->ngroups == 1 && queue->groups[0]->anonymous)
            return true;
    }
    int64_t clients = 0;
    for (zf_queue_t *q = (zf_queue_t *) zlistx_first (self->queue_order); q;
         q = (zf_queue_t *) zlistx_next (self->queue_order))
        for (size_t g = 0; g < q->ngroups; g++)
            clients += !q->groups[g]->declared;
    return clients < max;
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
    free (msg->detail);
    free (msg);
}

static void
s_lineage_free_only (void *value, void *arg)
{
    free (((zf_lineage_t *) value)->why);
    free (value);
}

static void
s_progress_free (void *value, void *arg)
{
    zf_progress_t *progress = (zf_progress_t *) value;
    free (progress->note);
    free (progress);
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
    self->progress = zf_idmap_new (64);
    self->dirty = zlistx_new ();
    self->checkpoints = zhashx_new ();
    zhashx_set_destructor (self->checkpoints, (zhashx_destructor_fn *) zchunk_destroy);
    self->seed = (unsigned) zclock_time () ^ (unsigned) getpid ();
    self->group_expiry = pipeline->broker_settings.group_expiry;
    self->results = zf_results_new (pipeline->broker_settings.result_ttl,
                                    pipeline->broker_settings.result_max_bytes);
    if (!self->live || !self->lineages || !self->progress || (dedup_window && !self->seen)) {
        zf_store_destroy (&self);
        return NULL;
    }
    for (zf_queue_conf_t *q = (zf_queue_conf_t *) zlistx_first (pipeline->queues); q;
         q = (zf_queue_conf_t *) zlistx_next (pipeline->queues)) {
        zf_queue_t *queue = zf_store_queue (self, q->name);
        for (const char *reader = (const char *) zlistx_first (q->readers); reader;
             reader = (const char *) zlistx_next (q->readers)) {
            zf_cgroup_t *group = zf_store_group (self, queue, reader);
            zf_actor_conf_t *actor = zf_pipeline_actor (pipeline, reader);
            group->declared = true;
            group->together = actor && (actor->kind->flags & ZF_KIND_FANIN);
        }
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
    if (self->progress)
        zf_idmap_foreach (self->progress, s_progress_free, NULL);
    zlistx_destroy (&self->queue_order);
    zhashx_destroy (&self->queues);
    zf_idmap_destroy (&self->live);
    zf_window_destroy (&self->seen);
    zf_idmap_destroy (&self->lineages);
    zf_idmap_destroy (&self->progress);
    zf_heap_destroy (&self->delayed);
    zf_heap_destroy (&self->flow_timers);
    zf_heap_destroy (&self->key_timers);
    zlistx_destroy (&self->dirty);
    zhashx_destroy (&self->checkpoints);
    zf_results_destroy (&self->results);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  The dedup window and lineages

//  Records an id's outcome in the dedup window. Returns false if the id
//  was in the window already (its outcome is updated).
bool
zf_store_seen_set (zf_store_t *self, const zf_id_t *id, uint8_t outcome)
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

void
zf_store_lineage_ended (zf_store_t *self, const zf_id_t *root, uint8_t outcome)
{
    if (zf_idmap_size (self->progress)) {
        // Progress is of a lineage that runs: over, it says nothing.
        zf_progress_t *progress = (zf_progress_t *) zf_idmap_get (self->progress, root);
        if (progress) {
            zf_idmap_remove (self->progress, root);
            s_progress_free (progress, NULL);
        }
    }
    if (zf_results_empty (self->results))
        return; // the common case: nobody asks
    zf_answer_t *answer = zf_results_find (self->results, root);
    if (answer && answer->outcome)
        return; // over already (a late output of a cancelled lineage, dropped)
    answer = zf_results_end (self->results, root, outcome, zclock_time ());
    if (answer)
        self->hooks.answered (self->hooks.arg, answer, NULL);
}

static void
s_lineage_finish (zf_store_t *self, zf_lineage_t *lineage)
{
    uint8_t outcome = lineage->failed      ? ZF_OUTCOME_DEAD
                      : lineage->cancelled ? ZF_OUTCOME_CANCELLED
                      : lineage->dead      ? ZF_OUTCOME_DEAD
                                           : ZF_OUTCOME_DONE;
    if (lineage->cancelled) // why, for whoever asks (before the tracker is told)
        zf_results_cancel (self->results, &lineage->root, lineage->why);
    if (lineage->tracker[0])
        self->hooks.lineage_over (self->hooks.arg, lineage, zf_outcome_name (outcome));
    zf_store_lineage_ended (self, &lineage->root, outcome);
    zf_idmap_remove (self->lineages, &lineage->root);
    s_lineage_free_only (lineage, NULL);
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

uint8_t
zf_store_outcome (zf_message_t *msg)
{
    return msg->dead                                 ? ZF_OUTCOME_DEAD
           : msg->lineage && msg->lineage->cancelled ? ZF_OUTCOME_CANCELLED
                                                     : ZF_OUTCOME_DONE;
}

//  Frees msg, its deliveries all finished, with outcome.
void
zf_store_msg_free (zf_store_t *self, zf_message_t *msg, uint8_t outcome)
{
    zf_idmap_remove (self->live, &msg->id);
    self->hooks.finished (self->hooks.arg, msg, outcome);
    if (zf_store_seen_set (self, &msg->id, outcome) && self->live_unseen)
        self->live_unseen--; // it had left the window while stored
    zf_queue_t *queue = msg->queue;
    queue->depth--;
    queue->acked++;
    zf_lineage_t *lineage = msg->lineage;
    if (lineage) {
        if (msg->dead && !zf_store_absorbed (self, msg))
            lineage->dead = true;
        zf_store_release (self, lineage);
    }
    else if (zf_id_is_zero (&msg->root))
        zf_store_lineage_ended (self, &msg->id, outcome); // a root that made nothing
    s_message_free_only (msg, NULL);
}

//  Stores an envelope and body as a message of queue, with a delivery per
//  group. Takes the body, and the hold on lineage (may be NULL).
zf_message_t *
zf_store_msg_store (zf_store_t *self, zf_queue_t *queue, zf_env_t *env, zframe_t **body_p,
                    zf_lineage_t *lineage)
{
    size_t n = queue->ngroups;
    assert (n > 0); // every queue has a group, anonymous at first
    zf_message_t *msg =
        (zf_message_t *) zf_alloc (sizeof (zf_message_t) + n * sizeof (zf_delivery_t));
    msg->id = env->id;
    msg->not_before = env->not_before;
    msg->priority = (uint8_t) env->priority;
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
    msg->order = self->stored++;      // before it is ready: a key's turn may go by it
    int64_t due = zf_store_due (msg); // once: every group's copy is due at once
    for (size_t g = 0; g < n; g++) {
        zf_delivery_t *d = &msg->deliveries[g];
        d->msg = msg;
        d->group = queue->groups[g];
        d->attempt = env->attempt; // kept across a move to the dead-letter queue
        zf_store_schedule (self, d, due);
    }
    zf_idmap_put (self->live, &msg->id, msg);
    queue->depth++;
    queue->put++;
    msg->lineage = lineage;
    return msg;
}

//  A new message, known from now on and told about.
zf_message_t *
zf_store_msg_new (zf_store_t *self, zf_queue_t *queue, zf_env_t *env, zframe_t **body_p,
                  zf_lineage_t *lineage)
{
    zf_message_t *msg = zf_store_msg_store (self, queue, env, body_p, lineage);
    zf_store_seen_set (self, &msg->id, ZF_OUTCOME_LIVE);
    self->hooks.stored (self->hooks.arg, msg, env->attempt);
    return msg;
}

zf_message_t *
zf_store_put (zf_store_t *self, zf_queue_t *queue, zf_env_t *env, zframe_t **body_p)
{
    return zf_store_msg_new (self, queue, env, body_p, NULL);
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

//  The item at put->next is not taken: why (printf format), and the kind
//  of it, are kept for the CONFIRM when it is the first.
static void s_refuse (zf_store_t *self, zf_pending_t *put, zf_refusal_t kind, const char *format,
                      ...) __attribute__ ((format (printf, 4, 5)));

static void
s_refuse (zf_store_t *self, zf_pending_t *put, zf_refusal_t kind, const char *format, ...)
{
    char why[ZF_TEXT_MAX + 1];
    va_list args;
    va_start (args, format);
    vsnprintf (why, sizeof why, format, args);
    va_end (args);
    if (!put->refused++) {
        snprintf (put->refusal, sizeof put->refusal, "%s", why);
        put->refusal_kind = kind;
    }
    // An output refused fails the item that made it, never a silent done.
    zf_env_t *env = &put->items[put->next];
    if (put->writer && !zf_id_is_zero (&env->parent))
        zf_store_output_refused (self, put->writer, &env->parent, why);
    zframe_destroy (&put->items[put->next].body);
    if (put->holds[put->next])
        zf_store_release (self, put->holds[put->next]);
    put->holds[put->next] = NULL;
}

//  The item at put->next goes to queue, which collects results: kept as a
//  result of its root. True if the item is done with (refused, or kept
//  only as a result), false if it is also to be stored for its readers.
static bool
s_collect (zf_store_t *self, zf_pending_t *put, zf_queue_t *queue)
{
    zf_env_t *env = &put->items[put->next];
    char why[ZF_TEXT_MAX + 1];
    zf_answer_t *answer =
        zf_results_add (self->results, zf_env_root (env), env, zframe_data (env->body),
                        zframe_size (env->body), why, sizeof why);
    if (!answer) {
        s_refuse (self, put, ZF_REFUSAL_RESULTS, "queue '%s': %s", queue->name, why);
        return true;
    }
    self->hooks.answered (self->hooks.arg, answer, &answer->items[answer->nitems - 1]);
    if (queue->keeps)
        return false;
    // Nobody reads it: done as it is kept.
    zf_store_seen_set (self, &env->id, ZF_OUTCOME_DONE);
    queue->put++;
    queue->acked++;
    put->accepted++;
    self->hooks.kept (self->hooks.arg, queue, env);
    zframe_destroy (&env->body);
    if (put->holds[put->next])
        zf_store_release (self, put->holds[put->next]);
    put->holds[put->next] = NULL;
    return true;
}

//  True if root's lineage ended cancelled (as long as its answer is kept).
static bool
s_ended_cancelled (zf_store_t *self, const zf_id_t *root)
{
    zf_answer_t *answer = zf_results_find (self->results, root);
    return answer && answer->outcome == ZF_OUTCOME_CANCELLED;
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
        if (hold && (hold->cancelled ? strcmp (hold->cancelled_by, put->session) != 0
                                     : s_ended_cancelled (self, &hold->root))) {
            // An output of an item that was running when another session
            // cancelled its lineage (which may have ended since: its items
            // are finished at the cancel): dropped as it arrives, taken as
            // far as its sender knows.
            zf_store_seen_set (self, &env->id, ZF_OUTCOME_CANCELLED);
            put->accepted++;
            zframe_destroy (&env->body);
            put->holds[put->next] = NULL;
            zf_store_release (self, hold);
            continue;
        }
        if (!zf_json_name_ok (env->queue)) {
            // Its name would go into the refusal, and on to a log or a tap.
            s_refuse (self, put, ZF_REFUSAL_NO_QUEUE,
                      "no queue of that name: it is not UTF-8 text");
            continue;
        }
        zf_queue_t *queue = zf_store_lookup (self, env->queue);
        if (!queue && zf_pipeline_declares (self->pipeline, env->queue))
            queue = zf_store_queue (self, env->queue);
        if (!queue) {
            s_refuse (self, put, ZF_REFUSAL_NO_QUEUE,
                      "no queue '%s' in pipeline '%s' (and no worker reads it)", env->queue,
                      self->pipeline->name);
            continue;
        }
        if (queue->keeps && (int64_t) queue->depth >= queue->max_depth && queue != put->over)
            return queue;
        if (queue->collects && s_collect (self, put, queue))
            continue;
        env->attempt = 0;
        put->holds[put->next] = NULL; // the message takes the hold
        zf_store_msg_new (self, queue, env, &env->body, hold);
        put->accepted++;
    }
    return NULL;
}

bool
zf_store_admit (zf_store_t *self, zf_pending_t *put)
{
    zf_queue_t *full = s_admit (self, put);
    if (!full)
        return true;
    zlistx_add_end (full->waiting, put);
    zf_worker_t *writer = put->writer;
    if (writer) {
        writer->parked++;
        writer->parked_items += put->nitems;
        if (zf_store_stalled (writer))
            zf_store_unblock (self, writer);
    }
    return false;
}

//  A parked PUT, taken off its queue's list, was admitted further: it
//  waits on the queue full, or it is all in: confirmed, and the answers
//  its writer held back go.
static void
s_admitted_further (zf_store_t *self, zf_pending_t *put, zf_queue_t *full)
{
    if (full) {
        zlistx_add_end (full->waiting, put);
        return;
    }
    self->hooks.admitted (self->hooks.arg, put);
    zf_worker_t *writer = put->writer;
    uint32_t nitems = put->nitems;
    zf_store_pending_destroy (&put);
    if (writer)
        zf_store_unparked (self, writer, nitems);
}

//  Room was made in queue: admit the PUTs waiting for it, in order.
void
zf_store_resume_waiting (zf_store_t *self, zf_queue_t *queue)
{
    zf_pending_t *put;
    while ((int64_t) queue->depth < queue->max_depth &&
           (put = (zf_pending_t *) zlistx_first (queue->waiting))) {
        zf_queue_t *full = s_admit (self, put);
        if (full == queue)
            return;
        zlistx_detach (queue->waiting, zlistx_cursor (queue->waiting));
        s_admitted_further (self, put, full);
    }
}

void
zf_store_give_up_waiting (zf_store_t *self, int64_t now)
{
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order)) {
        // Gathered first: confirming may change the lists.
        zlistx_t *due = NULL;
        for (zf_pending_t *put = (zf_pending_t *) zlistx_first (queue->waiting); put;
             put = (zf_pending_t *) zlistx_next (queue->waiting))
            if (put->give_up_at && now >= put->give_up_at) {
                if (!due)
                    due = zlistx_new ();
                zlistx_add_end (due, zlistx_cursor (queue->waiting));
            }
        if (!due)
            continue;
        for (void *handle = zlistx_first (due); handle; handle = zlistx_next (due)) {
            zf_pending_t *put = (zf_pending_t *) zlistx_detach (queue->waiting, handle);
            // The items in stay in; the rest are refused, each counted, so
            // the writer knows exactly which (the CONFIRM's counts, in order).
            for (; put->next < put->nitems; put->next++)
                s_refuse (self, put, ZF_REFUSAL_FULL, "queue '%s' is full (max-depth %lld)",
                          queue->name, (long long) queue->max_depth);
            s_admitted_further (self, put, NULL);
        }
        zlistx_destroy (&due);
    }
}

//  Whether a PUT of worker's waiting on queue can wait for room: not if
//  the queue is one it reads, or feeds one it reads. Room there would
//  come from its own ACKs, which wait for the PUT.
static bool
s_waits_on_itself (zf_store_t *self, zf_worker_t *worker, zf_queue_t *queue)
{
    for (size_t g = 0; g < worker->ngroups; g++)
        if (zf_pipeline_reaches (self->pipeline, queue->name, worker->groups[g]->queue->name))
            return true;
    return false;
}

//  The first PUT of worker's that waits on itself, taken off its queue's
//  list, or NULL.
static zf_pending_t *
s_take_waiting_on_itself (zf_store_t *self, zf_worker_t *worker)
{
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order)) {
        if (!zlistx_size (queue->waiting) || !s_waits_on_itself (self, worker, queue))
            continue;
        for (zf_pending_t *put = (zf_pending_t *) zlistx_first (queue->waiting); put;
             put = (zf_pending_t *) zlistx_next (queue->waiting))
            if (put->writer == worker) {
                zlistx_detach (queue->waiting, zlistx_cursor (queue->waiting));
                put->over = queue;
                return put;
            }
    }
    return NULL;
}

void
zf_store_unblock (zf_store_t *self, zf_worker_t *worker)
{
    // One at a time: admitting one applies answers, which may admit
    // others of the worker's on their own.
    zf_pending_t *put;
    while (worker->parked && (put = s_take_waiting_on_itself (self, worker)))
        s_admitted_further (self, put, s_admit (self, put));
}

void
zf_store_unblock_stalled (zf_store_t *self)
{
    // The writers first, then each unblocked: unblocking walks the same
    // lists, and a list has one cursor.
    zlistx_t *stalled = zlistx_new ();
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order))
        for (zf_pending_t *put = (zf_pending_t *) zlistx_first (queue->waiting); put;
             put = (zf_pending_t *) zlistx_next (queue->waiting))
            if (put->writer && zf_store_stalled (put->writer) &&
                !zlistx_find (stalled, put->writer))
                zlistx_add_end (stalled, put->writer);
    for (zf_worker_t *writer = (zf_worker_t *) zlistx_first (stalled); writer;
         writer = (zf_worker_t *) zlistx_next (stalled))
        if (zf_store_stalled (writer))
            zf_store_unblock (self, writer);
    zlistx_destroy (&stalled);
}

const char *
zf_store_state (zf_store_t *self, const zf_id_t *id, zf_message_t **msg_p)
{
    zf_message_t *msg = (zf_message_t *) zf_idmap_get (self->live, id);
    *msg_p = msg;
    if (msg) {
        if (msg->dead)
            return "dead";
        if (msg->lineage && msg->lineage->cancelled && !msg->lineage->failed)
            return "cancelled"; // held by a worker still: its outputs will be dropped
        bool inflight = false, delayed = false, tried = false, throttled = false;
        for (uint32_t g = 0; g < msg->ndeliveries; g++) {
            inflight |= msg->deliveries[g].state == ZF_D_INFLIGHT;
            delayed |= msg->deliveries[g].state == ZF_D_DELAYED;
            tried |= msg->deliveries[g].attempt > 0;
            throttled |= zf_flow_throttled (&msg->deliveries[g]);
        }
        return delayed     ? (tried ? "retrying" : "delayed")
               : inflight  ? "delivered"
               : throttled ? "throttled"
                           : "queued";
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
const char *
zf_store_lineage_state (zf_store_t *self, const zf_id_t *root, zf_message_t **msg_p)
{
    zf_answer_t *answer = zf_results_find (self->results, root);
    if (answer && answer->outcome) {
        *msg_p = (zf_message_t *) zf_idmap_get (self->live, root);
        return zf_outcome_name (answer->outcome);
    }
    const char *state = zf_store_state (self, root, msg_p);
    zf_lineage_t *lineage = (zf_lineage_t *) zf_idmap_get (self->lineages, root);
    if (lineage && lineage->cancelled && !lineage->failed)
        return "cancelled"; // items of it still held by workers: their outputs are dropped
    if (!*msg_p && lineage)
        return "running"; // the root is done, items made from it are not
    return state;
}

const zf_progress_t *
zf_store_progress_of (zf_store_t *self, const zf_id_t *id)
{
    if (!zf_idmap_size (self->progress))
        return NULL;
    zf_message_t *msg = (zf_message_t *) zf_idmap_get (self->live, id);
    const zf_id_t *root = msg && !zf_id_is_zero (&msg->root) ? &msg->root : id;
    return (const zf_progress_t *) zf_idmap_get (self->progress, root);
}

zf_results_t *
zf_store_results (zf_store_t *self)
{
    return self->results;
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
    f->paused = queue->paused;
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
    f->throttled = zf_flow_throttled_count (group->flow);
    f->keys = zf_flow_key_count (group->flow);
}

size_t
zf_store_key_figures (zf_cgroup_t *group, zf_key_figures_t *top, size_t max)
{
    return zf_flow_top_keys (group->flow, top, max);
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
s_restore_finish (zf_store_t *self, zf_delivery_t *d)
{
    if (d->state == ZF_D_READY)
        zf_store_unready (self, d);
    else if (d->state == ZF_D_DELAYED)
        zf_heap_remove (&self->delayed, &d->retry);
    d->state = ZF_D_FINISHED;
}

void
zf_store_restore_put (zf_store_t *self, const zf_record_t *r)
{
    self->resumed = true;
    if (zf_idmap_get (self->live, &r->id))
        return; // stored already
    zf_env_t env = { .id = r->id,
                     .parent = r->parent,
                     .root = r->root,
                     .ts = r->ts,
                     .attempt = r->attempt,
                     .group = r->fanin,
                     .not_before = r->not_before,
                     .priority = r->priority,
                     .headers = r->headers,
                     .headers_size = (uint32_t) r->headers_size };
    char name[ZF_NAME_MAX + 1];
    snprintf (name, sizeof name, "%.*s", (int) r->name_size, r->name);
    zf_queue_t *queue = zf_store_queue (self, name);
    zf_lineage_t *lineage = zf_id_is_zero (&r->root) ? NULL : zf_store_hold (self, &r->root);
    zframe_t *frame = zframe_new (r->data, r->data_size);
    zf_message_t *msg = zf_store_msg_store (self, queue, &env, &frame, lineage);
    msg->dead = r->dead;
    if (r->reason_size)
        msg->reason = strndup (r->reason, r->reason_size);
    if (r->detail_size)
        msg->detail = strndup (r->detail, r->detail_size);
    zf_store_seen_set (self, &msg->id, ZF_OUTCOME_LIVE);
}

void
zf_store_restore_ack (zf_store_t *self, const zf_record_t *r)
{
    self->resumed = true;
    zf_message_t *msg = (zf_message_t *) zf_idmap_get (self->live, &r->id);
    zf_delivery_t *d = s_delivery_of (msg, r->name, r->name_size);
    if (!d)
        return; // a group no longer in the pipeline: its delivery stays ready
    s_restore_finish (self, d);
    msg->dead |= r->dead;
    if (--msg->pending == 0)
        zf_store_msg_free (self, msg, zf_store_outcome (msg));
}

void
zf_store_restore_retry (zf_store_t *self, const zf_record_t *r)
{
    self->resumed = true;
    zf_message_t *msg = (zf_message_t *) zf_idmap_get (self->live, &r->id);
    zf_delivery_t *d = s_delivery_of (msg, r->name, r->name_size);
    if (d && r->attempt > d->attempt)
        d->attempt = r->attempt; // else finished since, or a group no longer in the pipeline
}

void
zf_store_restore_fin (zf_store_t *self, const zf_record_t *r)
{
    self->resumed = true;
    zf_message_t *msg = (zf_message_t *) zf_idmap_get (self->live, &r->id);
    if (msg) {
        for (uint32_t g = 0; g < msg->ndeliveries; g++)
            s_restore_finish (self, &msg->deliveries[g]);
        msg->dead = r->outcome == ZF_OUTCOME_DEAD;
        zf_store_msg_free (self, msg, r->outcome);
    }
    zf_store_seen_set (self, &r->id, r->outcome); // the outcome as recorded (cancelled included)
}

void
zf_store_restore_result (zf_store_t *self, const zf_record_t *r)
{
    self->resumed = true;
    if (r->outcome == ZF_OUTCOME_LIVE) { // runs again: an item of it was requeued
        zf_store_reopen (self, &r->root);
        return;
    }
    if (r->outcome == 0) {
        zf_env_t env = { .id = r->id, .ts = r->ts };
        snprintf (env.queue, sizeof env.queue, "%.*s", (int) r->name_size, r->name);
        char why[ZF_TEXT_MAX + 1];
        if (!zf_results_add (self->results, &r->root, &env, r->data, r->data_size, why, sizeof why))
            zsys_warning ("broker: a result of the journal is not restored: %s", why);
        zf_store_seen_set (self, &r->id, ZF_OUTCOME_DONE); // a copy of it is a duplicate
        return;
    }
    if (r->name_size || r->reason_size) { // dead (with the queue it left), or cancelled
        char queue[ZF_NAME_MAX + 1],
            *reason = r->reason_size ? strndup (r->reason, r->reason_size) : NULL,
            *detail = r->detail_size ? strndup (r->detail, r->detail_size) : NULL;
        snprintf (queue, sizeof queue, "%.*s", (int) r->name_size, r->name);
        zf_results_fail (self->results, &r->root, queue, reason, detail, r->attempt);
        free (reason);
        free (detail);
    }
    zf_results_end (self->results, &r->root, r->outcome, r->ts);
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
