/*  zf_delivery: the life of a delivery in the store: workers and their
    credit, dispatch, acks, failures with backoff, dead letters (and the
    gather told of a lost member), timeouts, cancel, and the expiry of
    groups no actor declares. See zf_store.h.
*/
#include "zf_store.h"
#include "zf_alloc.h"
#include "zf_id.h"
#include "zf_mp.h"
#include "zf_store_impl.h"

#include <math.h>

static void s_finish_delivery (zf_store_t *self, zf_delivery_t *d, bool dead);

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
s_unhold (zf_store_t *self, zf_delivery_t *d)
{
    if (d->holder) {
        zf_list_remove (&d->holder->held, &d->held);
        if (d->flags & ZF_D_ANSWERED)
            d->holder->answered--;
        if (d->holder->alone == d)
            d->holder->alone = NULL;
        d->holder = NULL;
    }
    d->flags = 0;
    zf_list_remove (&d->msg->queue->inflight, &d->link);
    d->group->inflight--;
    if (d->key)
        zf_flow_returned (self, d);
}

//  The message's last failure is now reason, told at more length in detail
//  (either NULL or ""): a new reason replaces the detail of the last one,
//  and neither keeps the last failure's.
static void
s_failure (zf_message_t *msg, const char *reason, const char *detail)
{
    if (reason && *reason) {
        free (msg->reason);
        msg->reason = zf_strdup (reason);
        free (msg->detail);
        msg->detail = NULL;
    }
    if (detail && *detail) {
        free (msg->detail);
        msg->detail = zf_strdup (detail);
    }
}

//  A delivery in flight failed (NACK, timeout, lost worker): retry it after
//  a backoff, or dead-letter it. delay_ms is a floor asked by the worker.
static void
s_retry (zf_store_t *self, zf_delivery_t *d, const char *reason, const char *detail, bool final,
         int64_t delay_ms)
{
    zf_message_t *msg = d->msg;
    zf_queue_t *queue = msg->queue;
    s_unhold (self, d);
    queue->nacked++;
    s_failure (msg, reason, detail);
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

//  The headers of d's dead-letter copy into buffer: the original's, and
//  the broker's: zflow-queue (where it failed), zflow-consumer (the
//  consumer group it failed in), zflow-attempts, zflow-root (its lineage's
//  root, unless it is one), zflow-group (a gather group's id, for a member
//  of one) and zflow-error (its last failure, cut to fit), so that a reader
//  of QUEUE.dead sees why, and a requeue knows where it goes. An original
//  header of those names is dropped (the broker's say it, not a writer's);
//  the original's last headers go if they leave the broker's no room.
static void
s_dead_headers (const zf_delivery_t *d, msgpack_sbuffer *buffer)
{
    const zf_message_t *msg = d->msg;
    bool rooted = !zf_id_is_zero (&msg->root), member = msg->fanin.size > 0;
    uint32_t ours = 4 + rooted + member;      // the error among them
    size_t our_bytes = 2 * ZF_NAME_MAX + 240; // all but the error, at most
    zf_mp_t mp;
    zf_mp_init (&mp, msg->headers, msg->headers_size);
    uint32_t count = 0, kept = 0;
    if (msg->headers_size && zf_mp_map (&mp, &count, NULL))
        count = 0; // checked when it was put: cannot happen
    msgpack_sbuffer theirs;
    msgpack_sbuffer_init (&theirs);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &theirs, msgpack_sbuffer_write);
    for (uint32_t i = 0; i < count; i++) {
        const char *key, *value;
        uint32_t key_len, value_len;
        if (zf_mp_str (&mp, &key, &key_len, NULL) || zf_mp_str (&mp, &value, &value_len, NULL))
            break;
        if (zf_store_broker_header (key, key_len))
            continue;
        if (kept + ours + 1 > ZF_HEADERS_COUNT ||
            theirs.size + key_len + value_len + 10 + our_bytes + 64 > ZF_HEADERS_MAX)
            break; // the error keeps 64 bytes at least
        zf_mp_pack_strn (&pk, key, key_len);
        zf_mp_pack_strn (&pk, value, value_len);
        kept++;
    }
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, kept + ours);
    msgpack_sbuffer_write (buffer, theirs.data, theirs.size);
    msgpack_sbuffer_destroy (&theirs);
    char number[16], hex[ZF_ID_HEX];
    snprintf (number, sizeof number, "%u", d->attempt);
    zf_mp_pack_cstr (&pk, "zflow-queue");
    zf_mp_pack_cstr (&pk, msg->queue->name);
    zf_mp_pack_cstr (&pk, "zflow-consumer");
    zf_mp_pack_cstr (&pk, d->group->name);
    zf_mp_pack_cstr (&pk, "zflow-attempts");
    zf_mp_pack_cstr (&pk, number);
    if (rooted) {
        zf_mp_pack_cstr (&pk, "zflow-root");
        zf_mp_pack_cstr (&pk, zf_id_format (&msg->root, hex));
    }
    if (member) {
        zf_mp_pack_cstr (&pk, "zflow-group");
        zf_mp_pack_cstr (&pk, zf_id_format (&msg->fanin.id, hex));
    }
    zf_mp_pack_cstr (&pk, "zflow-error");
    const char *reason = msg->reason ? msg->reason : "";
    size_t room = ZF_HEADERS_MAX - buffer->size - 5; // 5: the str's own header
    size_t len = strlen (reason);
    msgpack_pack_str (&pk, len < room ? len : room);
    msgpack_pack_str_body (&pk, reason, len < room ? len : room);
}

//  The dead-letter copy of msg, delivered d->attempt times: an item of its
//  own, a child of the original with a derived id, made now (its ts: when
//  it was dead-lettered), in a lineage of its own (the original's lineage
//  is over; the copy waits for a reader, or a requeue).
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
                     .ts = zclock_time (),
                     .attempt = d->attempt };
    if (zf_idmap_get (self->live, &env.id))
        return; // another group's delivery made it already
    msgpack_sbuffer headers;
    msgpack_sbuffer_init (&headers);
    s_dead_headers (d, &headers);
    env.headers = (const uint8_t *) headers.data;
    env.headers_size = (uint32_t) headers.size;
    zframe_t *body = zframe_dup (msg->body);
    zf_queue_t *queue = zf_store_queue (self, name);
    zf_message_t *copy = zf_store_msg_store (self, queue, &env, &body, NULL);
    msgpack_sbuffer_destroy (&headers); // the copy has its own
    copy->reason = msg->reason ? zf_strdup (msg->reason) : NULL;
    copy->detail = msg->detail ? zf_strdup (msg->detail) : NULL;
    zf_store_seen_set (self, &copy->id, ZF_OUTCOME_LIVE);
    self->hooks.stored (self->hooks.arg, copy, env.attempt);
    // The root's answer says why (zflow result, GET /results/ID), unless
    // a gather takes the failure in the member's place.
    if (!zf_store_absorbed (self, msg))
        zf_results_fail (self->results, zf_id_is_zero (&msg->root) ? &msg->id : &msg->root,
                         msg->queue->name, msg->reason, msg->detail, d->attempt);
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

bool
zf_store_absorbed (zf_store_t *self, zf_message_t *msg)
{
    if (!msg->fanin.size || zf_id_is_zero (&msg->root))
        return false;
    for (uint32_t g = 0; g < msg->ndeliveries; g++)
        if (s_fanin_downstream (self, msg->deliveries[g].group->name))
            return true;
    return false;
}

//  A member of a gather group was dead-lettered on its way (d): the gather
//  downstream would wait for it for ever. It gets the member's error in its
//  place instead, an item of the lineage with the member's group: {"error":
//  the reason, "dead": the dead-letter queue, "id": the member's}, its id
//  derived from the member's and the group's (as the group's own output
//  would be), so that it is put once, and once for each branch of a
//  fan-out whose group lost the member.
static void
s_tell_fanin (zf_store_t *self, zf_delivery_t *d, const char *dead_queue)
{
    zf_message_t *msg = d->msg;
    const char *input = msg->fanin.size ? s_fanin_downstream (self, d->group->name) : NULL;
    if (!input)
        return;
    zf_env_t env = { .id = zf_id_output (&msg->id, d->group->name, UINT32_MAX - 1),
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
    zf_store_msg_new (self, zf_store_queue (self, input), &env, &body, lineage);
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
        zf_store_msg_free (self, msg, zf_store_outcome (msg));
        zf_store_resume_waiting (self, queue);
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
        zf_store_mark_dirty (self, group);
    return 0;
}

void
zf_store_credit (zf_store_t *self, zf_worker_t *worker, uint32_t credit)
{
    worker->window += credit;
    for (size_t g = 0; g < worker->ngroups; g++)
        zf_store_mark_dirty (self, worker->groups[g]);
}

void
zf_store_leave (zf_store_t *self, zf_worker_t *worker, bool lost)
{
    zf_store_lose (self, worker, lost ? "worker lost" : NULL);
}

//  reason NULL: handed back (BYE), no attempt counted.
void
zf_store_lose (zf_store_t *self, zf_worker_t *worker, const char *reason)
{
    // Its parked PUTs stay (they were received) but no longer hold
    // answers of anyone: those it sent are dropped with it, and what it
    // held goes back below.
    zf_store_forget_answers (worker);
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order))
        for (zf_pending_t *put = (zf_pending_t *) zlistx_first (queue->waiting); put;
             put = (zf_pending_t *) zlistx_next (queue->waiting))
            if (put->writer == worker)
                put->writer = NULL;
    worker->parked = 0;
    worker->parked_items = 0;
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
    // A worker that died holding several items may have died of any one of
    // them: each is tried alone from now on, so that an item that kills its
    // worker costs itself only, not the items delivered beside it. (Not a
    // gather's: it holds members until their group is whole.)
    bool several = worker->held.size > 1;
    zf_delivery_t *d;
    while ((d = S_HELD (worker->held.head))) {
        if (reason) {
            d->alone |= several && !d->group->together;
            s_retry (self, d, reason, NULL, false, 0);
        }
        else {
            s_unhold (self, d);
            d->attempt--; // handed back: this delivery does not count
            d->state = ZF_D_READY;
            zf_store_ready (self, d, true);
            zf_store_mark_dirty (self, d->group);
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
            zf_store_mark_dirty (self, worker->groups[g]);
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

//  Keeps an answer of d until worker's parked PUTs are in. The delivery
//  stays in flight meanwhile, its slot of the window taken.
static void
s_hold_answer (zf_worker_t *worker, zf_delivery_t *d, bool nack, const char *reason,
               const char *detail, bool final, int64_t delay_ms)
{
    if (worker->nanswers == worker->answers_cap) {
        worker->answers_cap = worker->answers_cap ? 2 * worker->answers_cap : 16;
        worker->answers = (zf_answer_held_t *) zf_realloc (
            worker->answers, worker->answers_cap * sizeof (zf_answer_held_t));
    }
    zf_answer_held_t *answer = &worker->answers[worker->nanswers++];
    answer->id = d->msg->id;
    answer->nack = nack;
    answer->final = final;
    answer->delay_ms = delay_ms;
    answer->reason = nack && reason && *reason ? zf_strdup (reason) : NULL;
    answer->detail = nack && detail && *detail ? zf_strdup (detail) : NULL;
    d->flags |= ZF_D_ANSWERED;
    worker->answered++;
}

//  d failed: its worker's NACK, or an ACK of an item whose output was
//  refused.
static void
s_fail (zf_store_t *self, zf_worker_t *worker, zf_delivery_t *d, const char *reason,
        const char *detail, bool final, int64_t delay_ms)
{
    worker->failed++;
    s_retry (self, d, reason, detail, final, delay_ms);
    s_slot_freed (self, worker);
}

static void
s_done (zf_store_t *self, zf_worker_t *worker, zf_delivery_t *d)
{
    if (d->flags & ZF_D_REFUSED) {
        s_fail (self, worker, d, NULL, NULL, false, 0); // msg->reason has the refusal
        return;
    }
    s_unhold (self, d);
    worker->done++;
    s_finish_delivery (self, d, false);
    s_slot_freed (self, worker);
}

static uint64_t s_free_slots (zf_worker_t *worker);

bool
zf_store_stalled (zf_worker_t *worker)
{
    // A writer that reads nothing (a producer) waits for others' room only.
    if (!worker->parked || !worker->ngroups || worker->answered < worker->held.size)
        return false;
    if (!s_free_slots (worker))
        return true;
    // More comes to it while its groups have ready items that may go: not
    // those of keys full with items in flight (its own, maybe, whose acks
    // wait for its parked PUTs).
    for (size_t g = 0; g < worker->ngroups; g++)
        if (worker->groups[g]->ready.size > zf_flow_full_count (worker->groups[g]->flow))
            return false;
    return true;
}

bool
zf_store_ack (zf_store_t *self, zf_worker_t *worker, const zf_id_t *id)
{
    zf_delivery_t *d = s_held_by (self, id, worker);
    if (!d || (d->flags & ZF_D_ANSWERED))
        return s_late (self, worker);
    if (!worker->parked)
        s_done (self, worker, d);
    else {
        s_hold_answer (worker, d, false, NULL, NULL, false, 0);
        if (zf_store_stalled (worker))
            zf_store_unblock (self, worker);
    }
    return true;
}

bool
zf_store_nack (zf_store_t *self, zf_worker_t *worker, const zf_id_t *id, const char *reason,
               const char *detail, bool final, int64_t delay_ms)
{
    zf_delivery_t *d = s_held_by (self, id, worker);
    if (!d || (d->flags & ZF_D_ANSWERED))
        return s_late (self, worker);
    if (!worker->parked)
        s_fail (self, worker, d, reason, detail, final, delay_ms);
    else {
        s_hold_answer (worker, d, true, reason, detail, final, delay_ms);
        if (zf_store_stalled (worker))
            zf_store_unblock (self, worker);
    }
    return true;
}

void
zf_store_forget_answers (zf_worker_t *worker)
{
    for (size_t i = 0; i < worker->nanswers; i++) {
        free (worker->answers[i].reason);
        free (worker->answers[i].detail);
    }
    free (worker->answers);
    worker->answers = NULL;
    worker->nanswers = worker->answers_cap = 0;
}

void
zf_store_unparked (zf_store_t *self, zf_worker_t *worker, uint32_t nitems)
{
    worker->parked--;
    worker->parked_items -= nitems;
    if (worker->parked)
        return;
    // Nothing parks a PUT while this runs (only a PUT received does), so
    // every answer goes now, in order. Taken off the worker first: one
    // may admit other PUTs, and so apply other workers' answers.
    zf_answer_held_t *answers = worker->answers;
    size_t count = worker->nanswers;
    worker->answers = NULL;
    worker->nanswers = worker->answers_cap = 0;
    for (size_t i = 0; i < count; i++) {
        zf_answer_held_t *answer = &answers[i];
        zf_delivery_t *d = s_held_by (self, &answer->id, worker);
        if (!d || !(d->flags & ZF_D_ANSWERED))
            s_late (self, worker); // timed out meanwhile
        else if (answer->nack)
            s_fail (self, worker, d, answer->reason, answer->detail, answer->final,
                    answer->delay_ms);
        else
            s_done (self, worker, d);
        free (answer->reason);
        free (answer->detail);
    }
    free (answers);
}

void
zf_store_output_refused (zf_store_t *self, zf_worker_t *worker, const zf_id_t *parent,
                         const char *why)
{
    zf_delivery_t *d = s_held_by (self, parent, worker);
    if (!d)
        return; // acked already (against the protocol), or not a worker's output
    d->flags |= ZF_D_REFUSED;
    s_failure (d->msg, why, NULL);
}

bool
zf_store_progress (zf_store_t *self, zf_worker_t *worker, const zf_id_t *id, uint32_t progress,
                   const char *note)
{
    zf_delivery_t *d = s_held_by (self, id, worker);
    if (!d || (d->flags & ZF_D_ANSWERED))
        return false;
    zf_message_t *msg = d->msg;
    const zf_id_t *root = zf_id_is_zero (&msg->root) ? &msg->id : &msg->root;
    zf_progress_t *kept = (zf_progress_t *) zf_idmap_get (self->progress, root);
    if (!kept) {
        kept = (zf_progress_t *) zf_alloc (sizeof (zf_progress_t));
        zf_idmap_put (self->progress, root, kept);
    }
    kept->progress = progress;
    free (kept->note);
    kept->note = note && *note ? zf_strdup (note) : NULL;
    return true;
}

//  --------------------------------------------------------------------------
//  Cancel and state

//  Marks lineage cancelled for the session by (once: the first cancel's
//  reason stays), and for the sweep that follows.
static void
s_cancel_mark (zf_store_t *self, zf_lineage_t *lineage, const char *by, const char *reason,
               bool dead)
{
    lineage->sweep = true;
    if (lineage->cancelled)
        return;
    lineage->cancelled = true;
    snprintf (lineage->cancelled_by, sizeof lineage->cancelled_by, "%s", by);
    lineage->failed = dead;
    lineage->why = zf_strdup (reason && *reason ? reason
                              : dead            ? "failed by a worker"
                                                : "cancelled by a client");
    // It reads cancelled from now on, and who waits for it hears so,
    // though a worker may still hold an item of it.
    if (!dead)
        zf_results_cancel (self->results, &lineage->root, lineage->why);
}

//  Drops the queued items of the lineages marked for the sweep, in one
//  pass over the store however many there are, and tells the workers
//  holding their items (fn, once per worker and lineage). A client's
//  cancel finishes those now, cancelled (and journaled so): a restart does
//  not run them again, nor does their worker's death or failure; what the
//  worker answers later is late (its slot comes back then, as for a
//  timeout), and what it outputs is dropped. A failed lineage's (dead: a
//  gather's group) are left to their workers, which dead-letter them or
//  pass the failure on.
static void
s_cancel_sweep (zf_store_t *self, zf_cancel_fn *fn, void *arg)
{
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order))
        for (size_t g = 0; g < queue->ngroups; g++) {
            zf_ready_t *ready = &queue->groups[g]->ready;
            zf_delivery_t *d = zf_ready_first (ready);
            while (d) {
                zf_delivery_t *next = zf_ready_next (ready, d);
                if (d->msg->lineage && d->msg->lineage->sweep) {
                    zf_store_unready (self, d);
                    s_finish_delivery (self, d, false);
                }
                d = next;
            }
        }
    for (size_t i = 0; i < self->delayed.size;) {
        zf_delivery_t *d = ZF_CONTAINER (self->delayed.nodes[i], zf_delivery_t, retry);
        if (d->msg->lineage && d->msg->lineage->sweep) {
            zf_heap_remove (&self->delayed, &d->retry);
            s_finish_delivery (self, d, false);
        }
        else
            i++;
    }
    zhashx_t *told = zhashx_new ();
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order)) {
        zf_delivery_t *d = S_DELIVERY (queue->inflight.head);
        while (d) {
            zf_delivery_t *next = S_DELIVERY (d->link.next);
            zf_lineage_t *lineage = d->msg->lineage;
            if (lineage && lineage->sweep) {
                char key[48];
                snprintf (key, sizeof key, "%p/%p", (void *) d->holder, (void *) lineage);
                if (d->holder && !zhashx_lookup (told, key)) {
                    zhashx_insert (told, key, (void *) 1);
                    fn (d->holder, lineage, arg);
                }
                if (!lineage->failed) {
                    if (d->holder)
                        d->holder->zombies++;
                    s_unhold (self, d);
                    s_finish_delivery (self, d, false);
                }
            }
            d = next;
        }
    }
    zhashx_destroy (&told);
}

void
zf_store_cancel_all (zf_store_t *self, zf_lineage_t **lineages, size_t count, const char *by,
                     const char *reason, zf_cancel_fn *fn, void *arg)
{
    // Holds keep each lineage while its items are dropped one by one.
    for (size_t i = 0; i < count; i++) {
        lineages[i]->outstanding++;
        s_cancel_mark (self, lineages[i], by, reason, false);
    }
    s_cancel_sweep (self, fn, arg);
    for (size_t i = 0; i < count; i++) {
        lineages[i]->sweep = false;
        zf_store_release (self, lineages[i]);
    }
}

bool
zf_store_cancel (zf_store_t *self, const zf_id_t *root, const char *by, const char *reason,
                 bool dead, zf_cancel_fn *fn, void *arg)
{
    // A task over (or never put) is left as it is: done stays done.
    zf_message_t *first = (zf_message_t *) zf_idmap_get (self->live, root);
    if (!zf_idmap_get (self->lineages, root) && !(first && zf_id_is_zero (&first->root)))
        return false;
    zf_lineage_t *lineage = zf_store_hold (self, root);
    s_cancel_mark (self, lineage, by, reason, dead);
    s_cancel_sweep (self, fn, arg);
    lineage->sweep = false;
    zf_store_release (self, lineage);
    return true;
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
                zf_store_unready (self, d);
            else if (d->state == ZF_D_DELAYED)
                zf_heap_remove (&self->delayed, &d->retry);
            else if (d->state == ZF_D_INFLIGHT)
                s_unhold (self, d);
            d->group = NULL; // a delivery of no group: finished
            if (d->state != ZF_D_FINISHED) {
                d->state = ZF_D_FINISHED;
                released++;
                if (--msg->pending == 0)
                    zf_store_msg_free (self, msg, zf_store_outcome (msg));
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
    zf_flow_detach (self, group->flow);
    zf_store_group_destroy (&group);
    zf_store_resume_waiting (self, queue);
}

void
zf_store_schedule (zf_store_t *self, zf_delivery_t *d, int64_t due)
{
    if (due) {
        d->state = ZF_D_DELAYED;
        zf_heap_push (&self->delayed, &d->retry, due);
        return;
    }
    d->state = ZF_D_READY;
    zf_store_ready (self, d, false);
    zf_store_mark_dirty (self, d->group);
}

int64_t
zf_store_due (const zf_message_t *msg)
{
    int64_t wait = msg->not_before ? msg->not_before - zclock_time () : 0;
    // Both clocks count whole ms, each truncated in its own way: one more
    // keeps an item from coming a fraction of a ms before its time.
    return wait > 0 ? zclock_mono () + wait + 1 : 0;
}

void
zf_store_wake (zf_store_t *self, int64_t now)
{
    zf_flow_wake (self, now);
    zf_heap_node_t *node;
    while ((node = zf_heap_first (&self->delayed)) && node->due <= now) {
        zf_delivery_t *d = ZF_CONTAINER (node, zf_delivery_t, retry);
        zf_heap_remove (&self->delayed, node);
        d->state = ZF_D_READY;
        zf_store_ready (self, d, false);
        zf_store_mark_dirty (self, d->group);
    }
}

int64_t
zf_store_next_due (zf_store_t *self, int64_t now)
{
    zf_heap_node_t *node = zf_heap_first (&self->delayed);
    int64_t due = node ? node->due : -1, flow = zf_flow_next_due (self);
    if (due < 0 || (flow >= 0 && flow < due))
        due = flow;
    if (due < 0)
        return -1;
    return due > now ? due - now : 0;
}

void
zf_store_tick (zf_store_t *self, int64_t now)
{
    zf_store_wake (self, now);
    // Items held past their queue's timeout.
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order)) {
        zf_delivery_t *d;
        while ((d = S_DELIVERY (queue->inflight.head)) && d->due <= now) {
            if (d->holder)
                d->holder->zombies++;
            s_retry (self, d, "timeout", NULL, false, 0);
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
    zf_store_unblock_stalled (self);
    zf_store_give_up_waiting (self, now);
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
    if (worker->alone)
        return 0; // nothing beside it: its death must be its own
    uint64_t used = worker->held.size + worker->zombies;
    return worker->window > used ? worker->window - used : 0;
}

size_t
zf_store_take (zf_store_t *self, zf_cgroup_t *group, int64_t now, zf_worker_t **worker_p,
               zf_delivery_t **out, size_t max)
{
    if (!group->ready.size || !group->nworkers || group->queue->paused)
        return 0;
    zf_delivery_t *d = zf_store_ready_first (self, group, now);
    if (!d)
        return 0; // its limits hold every item: a timer tells when one may go
    // Round robin over workers with a free slot; an item to be tried alone
    // waits for a worker that holds nothing (the others drain meanwhile).
    bool alone = d->alone;
    zf_worker_t *worker = NULL;
    for (size_t tries = 0; tries < group->nworkers && !worker; tries++) {
        zf_worker_t *candidate = group->workers[group->next++ % group->nworkers];
        if (s_free_slots (candidate) && (!alone || candidate->held.size == 0))
            worker = candidate;
    }
    if (!worker)
        return 0;
    uint64_t slots = alone ? 1 : s_free_slots (worker);
    // Share a burst among the group's workers rather than give one all.
    uint64_t share = group->ready.size / group->nworkers + 1;
    if (slots > share)
        slots = share;
    size_t n = 0;
    while (n < slots && n < max && (d || (d = zf_store_ready_first (self, group, now)))) {
        if (d->alone && n > 0)
            break; // it goes alone, on the next take
        zf_ready_remove (&group->ready, d);
        if (group->flow)
            zf_flow_taken (self, d, now); // its rate and key charged
        if (d->alone)
            worker->alone = d;
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
        d = NULL;
    }
    *worker_p = worker;
    return n;
}
