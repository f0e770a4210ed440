/*  zf_sessions: the broker's ROUTER side. See zf_sessions.h. */
#include "zf_sessions.h"
#include "zf_alloc.h"
#include "zf_control.h"
#include "zf_json.h"
#include "zf_keys.h"
#include "zf_persist.h"
#include "zf_publish.h"

#include <signal.h>

#define ERRORS_TO_DROP 100 // protocol errors before a session is forgotten

#define S_SESSION(worker) ZF_CONTAINER (worker, zf_session_t, worker)

void
zf_session_destroy (zf_session_t **self_p)
{
    if (!*self_p)
        return;
    zframe_destroy (&(*self_p)->routing_id);
    zf_store_forget_answers (&(*self_p)->worker);
    free ((*self_p)->figures);
    free (*self_p);
    *self_p = NULL;
}

//  Sends message to session.
static void
s_send_message (zf_server_t *server, zf_proto_t *message, zf_session_t *session)
{
    zf_error_t err;
    if (zf_proto_send (message, zsock_resolve (server->router), session->routing_id, &err))
        zsys_error ("broker: cannot send to %s: %s", session->name, err.text);
    session->last_sent = zf_server_now ();
}

//  Sends server->out to session.
static void
s_send (zf_server_t *server, zf_session_t *session)
{
    s_send_message (server, server->out, session);
}

//  ERROR code for reason; leader: where the group's leader is (ERROR
//  leader), or NULL.
static void
s_send_error_to (zf_server_t *server, zframe_t *routing_id, zf_err_t code, const char *reason,
                 const char *leader)
{
    zf_proto_reset (server->out, ZF_ERROR);
    snprintf (server->out->code, sizeof server->out->code, "%s", zf_errname (code));
    snprintf (server->out->reason, sizeof server->out->reason, "%s", reason);
    snprintf (server->out->leader, sizeof server->out->leader, "%s", leader ? leader : "");
    zf_proto_send (server->out, zsock_resolve (server->router), routing_id, NULL);
}

static void
s_send_error (zf_server_t *server, zframe_t *routing_id, zf_err_t code, const char *reason)
{
    s_send_error_to (server, routing_id, code, reason, NULL);
}

void
zf_sessions_confirm (zf_server_t *server, const zf_confirm_t *confirm)
{
    zf_session_t *session = (zf_session_t *) zhashx_lookup (server->sessions, confirm->session);
    if (!session)
        return; // gone: its items are stored all the same
    zf_proto_reset (server->out, ZF_CONFIRM);
    server->out->seq = confirm->seq;
    server->out->accepted = confirm->accepted;
    server->out->duplicates = confirm->duplicates;
    server->out->refused = confirm->refused;
    snprintf (server->out->reason, sizeof server->out->reason, "%s", confirm->refusal);
    snprintf (server->out->code, sizeof server->out->code, "%s",
              zf_refusal_name (confirm->refusal_kind));
    s_send (server, session);
}

//  Adds answer's results to out, their bodies lent, not copied; each
//  naming root when given (a DONE of several roots).
static void
s_add_results (zf_proto_t *out, zf_answer_t *answer, const zf_id_t *root)
{
    for (uint32_t i = 0; i < answer->nitems; i++) {
        zf_output_t *result = &answer->items[i];
        zf_env_t *env = zf_proto_add_borrowed (out, result->body);
        env->id = result->id;
        if (root)
            env->root = *root;
        snprintf (env->queue, sizeof env->queue, "%s", result->queue);
        env->ts = result->ts;
    }
}

//  Adds to server->out what the kept answer of root says: with failure, the
//  dead-lettered item's queue, attempts and reason; with results, the
//  results (their bodies lent, not copied).
static void
s_add_answer (zf_server_t *server, const zf_id_t *root, bool failure, bool results)
{
    zf_proto_t *out = server->out;
    zf_answer_t *answer = zf_results_find (zf_store_results (server->store), root);
    if (!answer)
        return;
    if ((answer->dead_queue[0] || answer->reason) && failure) {
        snprintf (out->queue, sizeof out->queue, "%s", answer->dead_queue);
        out->attempt = answer->attempts;
        snprintf (out->reason, sizeof out->reason, "%s", answer->reason ? answer->reason : "");
        snprintf (out->detail, sizeof out->detail, "%s", answer->detail ? answer->detail : "");
    }
    if (results)
        s_add_results (out, answer, NULL);
}

//  The REPORT of an item in server->out: its state (with lineage, its
//  lineage's), where it is, what went wrong (for a root, a dead-lettered
//  item of its lineage), and with_results its lineage's results (their
//  bodies lent, not copied).
static void
s_report (zf_server_t *server, const zf_id_t *root, bool lineage, bool with_results)
{
    zf_proto_t *out = server->out;
    zf_proto_reset (out, ZF_REPORT);
    out->id = *root;
    zf_message_t *msg;
    const char *state = lineage ? zf_store_lineage_state (server->store, root, &msg)
                                : zf_store_state (server->store, root, &msg);
    if (!lineage && streq (state, "unknown")) // a root that is no item: a group's id
        state = zf_store_lineage_state (server->store, root, &msg);
    snprintf (out->state, sizeof out->state, "%s", state);
    if (msg) {
        snprintf (out->queue, sizeof out->queue, "%s", msg->queue->name);
        for (uint32_t g = 0; g < msg->ndeliveries; g++)
            if (msg->deliveries[g].attempt > out->attempt)
                out->attempt = msg->deliveries[g].attempt;
        if (msg->reason)
            snprintf (out->reason, sizeof out->reason, "%s", msg->reason);
        if (msg->detail)
            snprintf (out->detail, sizeof out->detail, "%s", msg->detail);
    }
    const zf_progress_t *progress = zf_store_progress_of (server->store, root);
    if (progress) {
        out->progress = progress->progress;
        snprintf (out->note, sizeof out->note, "%s", progress->note ? progress->note : "");
    }
    s_add_answer (server, root, lineage || !msg, with_results);
}

static void
s_answer_waiter (zf_answer_t *answer, zf_waiter_t *waiter, void *arg)
{
    zf_server_t *server = (zf_server_t *) arg;
    zf_session_t *session = (zf_session_t *) zhashx_lookup (server->sessions, waiter->session);
    if (!session)
        return; // gone
    s_report (server, &answer->root, true, true);
    server->out->tag = waiter->tag;
    s_send (server, session);
}

void
zf_sessions_answer (zf_server_t *server, int64_t now)
{
    zf_results_tick (zf_store_results (server->store), zclock_time (), now, s_answer_waiter,
                     server);
}

void
zf_sessions_done (zf_server_t *server, zf_lineage_t *lineage, const char *state)
{
    zf_session_t *session = (zf_session_t *) zhashx_lookup (server->sessions, lineage->tracker);
    if (!session)
        return;
    zf_proto_t *out = server->dones;
    zf_answer_t *answer = zf_results_find (zf_store_results (server->store), &lineage->root);
    uint32_t results = answer ? answer->nitems : 0;
    if (out->ndones && (strcmp (server->dones_for, session->key) || out->ndones == ZF_BATCH_MAX ||
                        out->nitems + results > ZF_BATCH_MAX))
        zf_sessions_flush_dones (server);
    if (!out->ndones) {
        zf_proto_reset (out, ZF_DONE);
        snprintf (server->dones_for, sizeof server->dones_for, "%s", session->key);
    }
    zf_done_t *done = zf_proto_add_done (out);
    done->id = lineage->root;
    snprintf (done->state, sizeof done->state, "%s", state);
    if (!answer)
        return;
    if (answer->dead_queue[0] || answer->reason) {
        snprintf (done->queue, sizeof done->queue, "%s", answer->dead_queue);
        done->attempt = answer->attempts;
        snprintf (done->reason, sizeof done->reason, "%s", answer->reason ? answer->reason : "");
    }
    s_add_results (out, answer, &lineage->root);
}

void
zf_sessions_flush_dones (zf_server_t *server)
{
    zf_proto_t *out = server->dones;
    if (!out->ndones)
        return;
    zf_session_t *session = (zf_session_t *) zhashx_lookup (server->sessions, server->dones_for);
    if (session)
        s_send_message (server, out, session);
    zf_proto_reset (out, ZF_DONE); // the bodies were lent: they stay the results'
}

//  Forgets session, handing back what it held: with a count of the attempt
//  (a lost worker) or without (BYE).
static void
s_leave (zf_server_t *server, zf_session_t *session, bool lost)
{
    zf_store_leave (server->store, &session->worker, lost);
    zf_publish_worker (server, lost ? "worker.lost" : "worker.left", session,
                       lost ? "no heartbeat" : "said BYE");
    zhashx_delete (server->sessions, session->key);
}

//  --------------------------------------------------------------------------
//  Command handlers: one per command, each checking its input first.

static void s_peer_error (zf_server_t *server, zf_session_t *session, zframe_t *routing_id,
                          const char *key, zf_err_t code, const char *reason);

//  Adds queue to the message out's queues keyed by URL, once.
static void
s_add_keyed_queue (zf_server_t *server, const char *queue)
{
    for (uint32_t i = 0; i < server->out->nkeyed; i++)
        if (streq (server->out->keyed[i].queue, queue))
            return;
    zf_keyed_t *keyed = zf_proto_add_keyed (server->out);
    if (keyed)
        snprintf (keyed->queue, sizeof keyed->queue, "%s", queue);
}

//  Names in the message out the queues whose items are keyed by the host
//  of their URL (`key = url-host` on the queue, or in the `flow` section of
//  an actor that reads it): the broker never reads a body, so their
//  writers set the key (zflow-key) themselves.
static void
s_add_keyed (zf_server_t *server)
{
    zf_pipeline_t *pipeline = server->pipeline;
    for (zf_queue_conf_t *queue = (zf_queue_conf_t *) zlistx_first (pipeline->queues); queue;
         queue = (zf_queue_conf_t *) zlistx_next (pipeline->queues))
        if (queue->settings.key && streq (queue->settings.key, "url-host"))
            s_add_keyed_queue (server, queue->name);
    for (zf_actor_conf_t *actor = (zf_actor_conf_t *) zlistx_first (pipeline->actors); actor;
         actor = (zf_actor_conf_t *) zlistx_next (pipeline->actors)) {
        zf_actor_settings_t *set = (zf_actor_settings_t *) actor->settings;
        if (!set || !set->flow || !actor->input)
            continue;
        zf_queue_settings_t flow;
        zf_keys_bind (zf_flow_keys, set->flow, &flow);
        if (flow.key && streq (flow.key, "url-host"))
            s_add_keyed_queue (server, actor->input);
    }
}

static void
s_on_hello (zf_server_t *server, zf_session_t *session)
{
    zf_proto_t *in = server->in;
    if (in->version != ZF_PROTO_VERSION) {
        char reason[64];
        snprintf (reason, sizeof reason, "version %u is not supported; this broker speaks 1",
                  in->version);
        s_send_error (server, session->routing_id, ZF_EVERSION, reason);
        zhashx_delete (server->sessions, session->key);
        return;
    }
    if (session->welcomed) {
        s_send_error (server, session->routing_id, ZF_ESTATE, "HELLO twice on one session");
        return;
    }
    // Names are published (stats, events, zflow top): what is not UTF-8,
    // or holds control characters, is refused here, once, not met by
    // every reader. The decoder bounds their length (ZF_NAME_MAX).
    const char *bad = !zf_json_name_ok (in->name)       ? "name"
                      : !zf_json_name_ok (in->host)     ? "host"
                      : !zf_json_name_ok (in->pipeline) ? "pipeline"
                                                        : NULL;
    if (bad) {
        char reason[96];
        snprintf (reason, sizeof reason,
                  "HELLO's %s is not UTF-8 text (or holds control characters)", bad);
        s_send_error (server, session->routing_id, ZF_EVALUE, reason);
        zf_publish_rejected (server, "router", "?", reason);
        zhashx_delete (server->sessions, session->key);
        return;
    }
    if (in->pipeline[0] && !streq (in->pipeline, server->pipeline->name)) {
        char reason[300];
        snprintf (reason, sizeof reason, "this broker runs pipeline '%s', not '%s'",
                  server->pipeline->name, in->pipeline);
        s_send_error (server, session->routing_id, ZF_EVALUE, reason);
        zf_publish_rejected (server, "router", in->name, reason);
        zhashx_delete (server->sessions, session->key);
        return;
    }
    for (uint32_t i = 0; i < in->ninputs; i++)
        if (zf_json_name_ok (in->inputs[i]) &&
            !zf_store_group_allowed (server->store, in->inputs[i], in->name, server->max_groups)) {
            // Not for good (ERROR too-big, not value): a group without
            // workers is forgotten after group-expiry, and room comes.
            char reason[400];
            snprintf (reason, sizeof reason,
                      "max-groups: %lld client groups exist already; group '%s' of queue '%s' "
                      "waits until one is forgotten (group-expiry)",
                      (long long) server->max_groups, in->name, in->inputs[i]);
            s_send_error (server, session->routing_id, ZF_ETOOBIG, reason);
            zf_publish_rejected (server, "router", in->name, reason);
            zhashx_delete (server->sessions, session->key);
            return;
        }
    for (uint32_t i = 0; i < in->ninputs; i++) {
        zf_error_t err;
        static const zf_key_t queue_key = { .name = "input", .type = ZF_KEY_QUEUE };
        if (zf_key_check (&queue_key, in->inputs[i], &err)) {
            s_send_error (server, session->routing_id, ZF_EVALUE, err.text);
            zf_store_leave (server->store, &session->worker, false);
            zhashx_delete (server->sessions, session->key);
            return;
        }
        zf_store_join (server->store, &session->worker, in->inputs[i], in->name);
    }
    snprintf (session->name, sizeof session->name, "%s", in->name);
    snprintf (session->host, sizeof session->host, "%s", in->host);
    session->number = in->worker;
    session->pid = in->pid;
    // Figures for show only, counted on from what the worker says it did on
    // its earlier sessions: nothing the store decides depends on them.
    session->worker.done = in->done;
    session->worker.failed = in->failed;
    session->welcomed = true;
    zf_proto_reset (server->out, ZF_WELCOME);
    server->out->heartbeat = (uint32_t) server->heartbeat;
    server->out->liveness = (uint32_t) server->liveness;
    server->out->window = server->window;
    // Said so that a client refuses a body over it at once, with its size:
    // the socket would drop the connection, and the put wait out its time.
    server->out->max_frame =
        server->max_frame > UINT32_MAX ? UINT32_MAX : (uint32_t) server->max_frame;
    if (in->ninputs) {
        // A worker sets its own time limits below the broker's, which
        // takes an item back once it has held it this long.
        zf_queue_t *input = zf_store_lookup (server->store, in->inputs[0]);
        int64_t timeout = input ? input->timeout : 0;
        server->out->timeout = timeout > UINT32_MAX ? UINT32_MAX : (uint32_t) timeout;
    }
    s_add_keyed (server);
    zchunk_t *checkpoint = zf_store_checkpoint (server->store, session->name);
    if (checkpoint) {
        server->out->checkpoint_size = (uint32_t) zchunk_size (checkpoint);
        memcpy (server->out->checkpoint, zchunk_data (checkpoint), zchunk_size (checkpoint));
    }
    s_send (server, session);
    zf_publish_worker (server, "worker.joined", session, "");
}

static void
s_on_put (zf_server_t *server, zf_session_t *session)
{
    zf_proto_t *in = server->in;
    if (session->worker.parked_items + in->nitems > server->window) {
        // A peer that keeps to its window never gets here: what it parks
        // is bounded by it, and so is the broker's memory.
        char reason[160];
        snprintf (reason, sizeof reason,
                  "PUT %" PRIu64 " of %u items past the window: %" PRIu64
                  " items of this session wait for room already (window %u)",
                  in->seq, in->nitems, session->worker.parked_items, server->window);
        s_peer_error (server, session, session->routing_id, session->key, ZF_ETOOBIG, reason);
        return;
    }
    zf_pending_t *put = zf_store_pending_new (in->nitems);
    snprintf (put->session, sizeof put->session, "%s", session->key);
    snprintf (put->actor, sizeof put->actor, "%s", session->name);
    put->writer = &session->worker;
    put->seq = in->seq;
    put->checkpoint_size = in->checkpoint_size;
    memcpy (put->checkpoint, in->checkpoint, in->checkpoint_size);
    if (in->wait)
        put->give_up_at = zf_server_now () + in->wait;
    put->urgent = in->urgent;
    for (uint32_t i = 0; i < in->nitems; i++) {
        zf_env_t *env = &put->items[i];
        *env = in->items[i];
        in->items[i].body = NULL;
        if (env->headers_size) {
            uint8_t *copy = (uint8_t *) zf_alloc (env->headers_size);
            memcpy (copy, in->items[i].headers, env->headers_size);
            env->headers = copy;
        }
        // A child holds its lineage from now: if this PUT must wait for
        // room, its parent's ACK cannot end the lineage before it.
        if (!zf_id_is_zero (&env->root))
            put->holds[i] = zf_store_hold (server->store, &env->root);
        else if (in->track) {
            put->holds[i] = zf_store_hold (server->store, &env->id);
            snprintf (put->holds[i]->tracker, ZF_SESSION_KEY_MAX, "%s", session->key);
        }
    }
    if (zf_store_admit (server->store, put)) {
        zf_persist_confirm (server, put);
        zf_store_pending_destroy (&put);
    }
}

static void
s_on_credit (zf_server_t *server, zf_session_t *session)
{
    zf_store_credit (server->store, &session->worker, server->in->credit);
}

static void
s_on_ack (zf_server_t *server, zf_session_t *session)
{
    for (uint32_t i = 0; i < server->in->nids; i++)
        if (!zf_store_ack (server->store, &session->worker, &server->in->ids[i]))
            server->late_acks++;
}

static void
s_on_nack (zf_server_t *server, zf_session_t *session)
{
    zf_proto_t *in = server->in;
    if (!zf_store_nack (server->store, &session->worker, &in->id, in->reason, in->detail, in->final,
                        in->delay))
        server->late_acks++;
}

static void
s_on_progress (zf_server_t *server, zf_session_t *session)
{
    // Only from the worker holding the item: any other report is late (the
    // item timed out and went to another, or was answered), counted and
    // dropped without an ERROR, as a late ack is.
    zf_proto_t *in = server->in;
    if (!zf_store_progress (server->store, &session->worker, &in->id, in->progress, in->note))
        server->late_acks++;
}

static void
s_on_ping (zf_server_t *server, zf_session_t *session)
{
    if (server->in->figures_size) {
        // The worker's own figures: shown with it in the stats event.
        session->figures = (uint8_t *) zf_realloc (session->figures, server->in->figures_size);
        memcpy (session->figures, server->in->figures, server->in->figures_size);
        session->figures_size = server->in->figures_size;
    }
    zf_proto_reset (server->out, ZF_PONG);
    s_send (server, session);
}

static void
s_on_pong (zf_server_t *server, zf_session_t *session)
{
}

static void
s_on_end (zf_server_t *server, zf_session_t *session)
{
    session->ended = true;
    zhashx_update (server->ended, session->name, (void *) "");
    zf_publish_worker (server, "source.ended", session, "");
}

void
zf_sessions_send (zf_server_t *server, zf_session_t *session)
{
    s_send (server, session);
}

//  A worker holding an item of a cancelled lineage is told to drop it.
void
zf_sessions_tell_cancel (zf_worker_t *worker, zf_lineage_t *lineage, void *arg)
{
    zf_server_t *server = (zf_server_t *) arg;
    zf_proto_reset (server->out, ZF_CANCEL);
    server->out->id = lineage->root;
    snprintf (server->out->reason, sizeof server->out->reason, "%s",
              lineage->why ? lineage->why : "cancelled");
    s_send (server, S_SESSION (worker));
}

static void
s_on_cancel (zf_server_t *server, zf_session_t *session)
{
    zf_id_t root = server->in->id;
    zf_store_cancel (server->store, &root, session->key, server->in->reason, server->in->dead,
                     zf_sessions_tell_cancel, server);
}

//  The busiest keys of group (its queue has a key) into a REPORT.
static void
s_report_keys (zf_proto_t *out, zf_cgroup_t *group)
{
    zf_key_figures_t top[ZF_TOP_KEYS];
    size_t count = zf_store_key_figures (group, top, ZF_TOP_KEYS);
    for (size_t k = 0; k < count; k++) {
        zf_key_figures_t *row = zf_proto_add_key (out);
        if (!row)
            break; // the REPORT has all it may
        *row = top[k];
    }
}

static void
s_on_status (zf_server_t *server, zf_session_t *session)
{
    zf_id_t id = server->in->id;
    zf_proto_reset (server->out, ZF_REPORT);
    zf_proto_t *out = server->out;
    if (!zf_id_is_zero (&id) && (server->in->results || server->in->wait)) {
        // A root's lineage and its results, now or once it ends.
        s_report (server, &id, true, true);
        const char *state = out->state;
        bool over = streq (state, "done") || streq (state, "dead") || streq (state, "cancelled") ||
                    streq (state, "unknown");
        if (!over && server->in->wait) {
            zf_results_wait (zf_store_results (server->store), &id, session->key, server->in->tag,
                             zf_server_now () + server->in->wait);
            zf_proto_reset (out, ZF_REPORT); // the lent bodies are not kept
            return;
        }
    }
    else if (!zf_id_is_zero (&id))
        s_report (server, &id, false, false);
    else {
        zlistx_t *queues = zf_store_queues (server->store);
        for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (queues); queue;
             queue = (zf_queue_t *) zlistx_next (queues)) {
            zf_figures_t *f = zf_proto_add_queue (out);
            if (!f)
                break;
            zf_store_figures (queue, f);
            for (size_t g = 0; g < queue->ngroups; g++) {
                zf_group_figures_t *group = zf_proto_add_group (out);
                if (group)
                    zf_store_group_figures (queue->groups[g], group);
                s_report_keys (out, queue->groups[g]);
            }
        }
    }
    out->tag = server->in->tag;
    s_send (server, session);
}

static void
s_on_bye (zf_server_t *server, zf_session_t *session)
{
    s_leave (server, session, false);
}

typedef void (s_handler_fn) (zf_server_t *server, zf_session_t *session);

//  What the broker accepts from a peer. A command missing here is one the
//  broker sends, not one it takes.
static s_handler_fn *const s_handlers[ZF_COMMAND_COUNT] = {
    [ZF_HELLO] = s_on_hello,
    [ZF_PUT] = s_on_put,
    [ZF_CREDIT] = s_on_credit,
    [ZF_ACK] = s_on_ack,
    [ZF_NACK] = s_on_nack,
    [ZF_PING] = s_on_ping,
    [ZF_PONG] = s_on_pong,
    [ZF_END] = s_on_end,
    [ZF_CANCEL] = s_on_cancel,
    [ZF_STATUS] = s_on_status,
    [ZF_BYE] = s_on_bye,
    [ZF_PROGRESS] = s_on_progress,
    [ZF_CONTROL] = zf_control_handle,
};

static void
s_peer_error (zf_server_t *server, zf_session_t *session, zframe_t *routing_id, const char *key,
              zf_err_t code, const char *reason)
{
    s_send_error (server, routing_id, code, reason);
    zf_publish_rejected (server, "router", session && session->name[0] ? session->name : key,
                         reason);
    if (session && ++session->errors >= ERRORS_TO_DROP) {
        zsys_warning ("broker: dropping %s after %d protocol errors", session->name,
                      ERRORS_TO_DROP);
        s_leave (server, session, true);
    }
}

void
zf_sessions_message (zf_server_t *server, zmsg_t *msg)
{
    zframe_t *routing_id = zmsg_pop (msg);
    if (!routing_id || zframe_size (routing_id) == 0 || zframe_size (routing_id) > 255) {
        zframe_destroy (&routing_id);
        zmsg_destroy (&msg);
        return;
    }
    char key[ZF_SESSION_KEY_MAX];
    static const char digits[] = "0123456789abcdef";
    size_t size = zframe_size (routing_id);
    for (size_t i = 0; i < size; i++) {
        key[2 * i] = digits[zframe_data (routing_id)[i] >> 4];
        key[2 * i + 1] = digits[zframe_data (routing_id)[i] & 15];
    }
    key[2 * size] = 0;
    zf_session_t *session = (zf_session_t *) zhashx_lookup (server->sessions, key);

    zf_error_t err;
    if (zf_proto_decode (server->in, &msg, &err)) {
        s_peer_error (server, session, routing_id, key, err.code, err.text);
        zframe_destroy (&routing_id);
        return;
    }
    zf_command_t command = server->in->command;
    if (server->cluster && !zf_cluster_serving (server->cluster)) {
        // Only the leader of a group serves: the client goes there.
        const char *leader = zf_cluster_leader (server->cluster);
        char reason[320];
        if (leader)
            snprintf (reason, sizeof reason, "node %d does not lead; the leader is %s",
                      zf_cluster_node (server->cluster), leader);
        else
            snprintf (reason, sizeof reason, "node %d does not lead; no leader is elected yet",
                      zf_cluster_node (server->cluster));
        s_send_error_to (server, routing_id, ZF_ELEADER, reason, leader);
        if (session)
            s_leave (server, session, false);
    }
    else if (!s_handlers[command]) {
        char reason[96];
        snprintf (reason, sizeof reason, "%s is sent by the broker, not to it",
                  zf_proto_command_name (command));
        s_peer_error (server, session, routing_id, key, ZF_ESTATE, reason);
    }
    else if (!session && command != ZF_HELLO) {
        char reason[96];
        snprintf (reason, sizeof reason, "%s before HELLO", zf_proto_command_name (command));
        s_peer_error (server, NULL, routing_id, key, ZF_ESTATE, reason);
    }
    else {
        if (!session) {
            session = (zf_session_t *) zf_alloc (sizeof (zf_session_t));
            snprintf (session->key, sizeof session->key, "%s", key);
            session->routing_id = zframe_dup (routing_id);
            zhashx_insert (server->sessions, key, session);
        }
        session->last_seen = zf_server_now ();
        s_handlers[command](server, session);
    }
    zframe_destroy (&routing_id);
}

//  --------------------------------------------------------------------------
//  Dispatch and heartbeats

void
zf_sessions_dispatch (zf_server_t *server)
{
    zf_delivery_t *batch[ZF_BATCH_MAX];
    zf_cgroup_t *group;
    int64_t now = zf_server_now ();
    while ((group = zf_store_next_dirty (server->store))) {
        zf_worker_t *worker;
        size_t n;
        while ((n = zf_store_take (server->store, group, now, &worker, batch, ZF_BATCH_MAX))) {
            zf_proto_reset (server->out, ZF_DELIVER);
            for (size_t i = 0; i < n; i++) {
                zf_message_t *msg = batch[i]->msg;
                // The stored body goes out as it is: ZeroMQ shares its bytes.
                zf_env_t *env = zf_proto_add_borrowed (server->out, msg->body);
                env->id = msg->id;
                snprintf (env->queue, sizeof env->queue, "%s", msg->queue->name);
                env->attempt = batch[i]->attempt;
                env->ts = msg->ts;
                env->parent = msg->parent;
                env->root = msg->root;
                env->group = msg->fanin;
                env->headers = msg->headers;
                env->headers_size = msg->headers_size;
            }
            s_send (server, S_SESSION (worker));
        }
    }
}

void
zf_sessions_heartbeat (zf_server_t *server, int64_t now)
{
    zlistx_t *lost = zlistx_new ();
    for (zf_session_t *session = (zf_session_t *) zhashx_first (server->sessions); session;
         session = (zf_session_t *) zhashx_next (server->sessions)) {
        if (now - session->last_seen > server->heartbeat * server->liveness)
            zlistx_add_end (lost, session);
        else if (now - session->last_sent >= server->heartbeat) {
            zf_proto_reset (server->out, ZF_PING);
            s_send (server, session);
        }
    }
    for (zf_session_t *session = (zf_session_t *) zlistx_first (lost); session;
         session = (zf_session_t *) zlistx_next (lost))
        s_leave (server, session, true);
    zlistx_destroy (&lost);
}

void
zf_sessions_reloaded (zf_server_t *server)
{
    for (zf_session_t *session = (zf_session_t *) zhashx_first (server->sessions); session;
         session = (zf_session_t *) zhashx_next (server->sessions))
        if (session->welcomed) {
            zf_proto_reset (server->out, ZF_PING);
            server->out->reloaded = true;
            s_add_keyed (server);
            s_send (server, session);
        }
}

void
zf_sessions_died (zf_server_t *server, const char *actor, uint32_t number, uint64_t pid,
                  const char *reason)
{
    // Only sessions from this host: a pid elsewhere is another process.
    char *host = zsys_hostname ();
    zlistx_t *dead = zlistx_new ();
    for (int by_pid = 1; by_pid >= 0 && zlistx_size (dead) == 0; by_pid--)
        // By pid first; a worker a shell started (a command line that is
        // not exec'd) has a pid of its own, and is found by its name then,
        // if its process is gone too (not the worker started after it).
        for (zf_session_t *session = (zf_session_t *) zhashx_first (server->sessions); session;
             session = (zf_session_t *) zhashx_next (server->sessions)) {
            bool same = by_pid ? session->pid == pid
                               : streq (session->name, actor) && session->number == number &&
                                     kill ((pid_t) session->pid, 0) && errno == ESRCH;
            if (session->welcomed && same && host && streq (session->host, host))
                zlistx_add_end (dead, session);
        }
    for (zf_session_t *session = (zf_session_t *) zlistx_first (dead); session;
         session = (zf_session_t *) zlistx_next (dead)) {
        zf_store_lose (server->store, &session->worker, reason);
        zf_publish_worker (server, "worker.lost", session, reason);
        zhashx_delete (server->sessions, session->key);
    }
    zlistx_destroy (&dead);
    zstr_free (&host);
}
