/*  zf_control: an operator's commands to a running broker. See zf_control.h. */
#include "zf_control.h"
#include "zf_schedules.h"
#include "zf_sessions.h"

#define LIST_DEFAULT   100        // letters listed when the CONTROL gives no limit
#define LIST_BYTES_MAX (16 << 20) // bytes of bodies a listing holds at most (one more)

//  Answers the CONTROL being handled: refused for why, of kind.
static void
s_refuse (zf_server_t *server, zf_session_t *session, zf_refusal_t kind, const char *why)
{
    zf_proto_reset (server->out, ZF_REPORT);
    server->out->tag = server->in->tag;
    snprintf (server->out->state, sizeof server->out->state, "refused");
    snprintf (server->out->reason, sizeof server->out->reason, "%s", why);
    snprintf (server->out->code, sizeof server->out->code, "%s", zf_refusal_name (kind));
    zf_sessions_send (server, session);
}

//  The root named by a letter's zflow-root header, or zero (its item is a
//  root).
static zf_id_t
s_letter_root (const zf_message_t *letter)
{
    zf_id_t root = { { 0 } };
    uint32_t len;
    const char *hex = zf_store_header (letter, "zflow-root", &len);
    char text[ZF_ID_HEX];
    if (hex && len == ZF_ID_HEX - 1) {
        snprintf (text, sizeof text, "%.*s", (int) len, hex);
        if (zf_id_parse (&root, text))
            memset (&root, 0, sizeof root);
    }
    return root;
}

//  Adds a stored item to the listing in server->out: for a dead letter,
//  the item that died (the letter's headers and body lent, not copied).
static void
s_list_one (zf_message_t *msg, void *arg)
{
    zf_server_t *server = (zf_server_t *) arg;
    size_t bytes = zframe_size (msg->body);
    for (uint32_t i = 0; i < server->out->nitems; i++)
        bytes += zframe_size (server->out->items[i].body);
    if (bytes > LIST_BYTES_MAX && server->out->nitems)
        return; // the answer is big enough: count says how many there are
    zf_env_t *env = zf_proto_add_borrowed (server->out, msg->body);
    if (!env)
        return;
    bool letter = msg->queue->dead_letters && !zf_id_is_zero (&msg->parent);
    env->id = letter ? msg->parent : msg->id;
    env->ts = msg->ts;
    env->attempt = msg->ndeliveries ? msg->deliveries[0].attempt : 0;
    env->root = letter ? s_letter_root (msg) : msg->root;
    env->headers = msg->headers;
    env->headers_size = msg->headers_size;
    // A letter's item failed in QUEUE of QUEUE.dead, after the attempts it
    // says (its own deliveries count a reader's).
    size_t name_len = strlen (msg->queue->name) - (letter ? 5 : 0);
    snprintf (env->queue, sizeof env->queue, "%.*s", (int) name_len, msg->queue->name);
    uint32_t len;
    const char *attempts = letter ? zf_store_header (msg, "zflow-attempts", &len) : NULL;
    if (attempts && len < 12) {
        char number[12];
        snprintf (number, sizeof number, "%.*s", (int) len, attempts);
        env->attempt = (uint32_t) strtoul (number, NULL, 10);
    }
}

//  Lists the letters of queue (every dead-letter queue when NULL), oldest
//  first per queue, up to the CONTROL's limit; out->count: all there are.
static void
s_list (zf_server_t *server, zf_queue_t *queue, const zf_select_t *select)
{
    uint32_t limit = server->in->limit ? server->in->limit : LIST_DEFAULT;
    if (limit > ZF_BATCH_MAX)
        limit = ZF_BATCH_MAX;
    zlistx_t *queues = zf_store_queues (server->store);
    for (zf_queue_t *q = (zf_queue_t *) zlistx_first (queues); q;
         q = (zf_queue_t *) zlistx_next (queues)) {
        if (queue ? q != queue : !q->dead_letters)
            continue;
        size_t room = limit > server->out->nitems ? limit - server->out->nitems : 0;
        server->out->count += zf_store_list (server->store, q, select, room, s_list_one, server);
    }
}

//  What a requeue or purge left out, in words, or "".
static void
s_left_out (zf_proto_t *out, const zf_steered_t *steered, const char *queue)
{
    char missing[96] = "", busy[160] = "";
    if (steered->missing)
        snprintf (missing, sizeof missing, "%zu of the ids named %s not in %s", steered->missing,
                  steered->missing == 1 ? "is" : "are", queue);
    if (steered->busy)
        snprintf (busy, sizeof busy,
                  "%zu left where %s: held by a reader, stored again already, or a member of "
                  "a gather's group",
                  steered->busy, steered->busy == 1 ? "it is" : "they are");
    snprintf (out->reason, sizeof out->reason, "%s%s%s", missing, *missing && *busy ? "; " : "",
              busy);
}

void
zf_control_handle (zf_server_t *server, zf_session_t *session)
{
    zf_proto_t *in = server->in, *out = server->out;
    const char *op = in->op;
    char why[ZF_TEXT_MAX + 1];
    if (streq (op, "schedules") || strncmp (op, "schedule-", 9) == 0) {
        zf_proto_reset (out, ZF_REPORT);
        zf_refusal_t refused = zf_schedules_control (server, why, sizeof why);
        if (refused != ZF_REFUSAL_NONE) {
            s_refuse (server, session, refused, why);
            return;
        }
        out->tag = in->tag;
        snprintf (out->state, sizeof out->state, "ok");
        if (!streq (op, "schedules"))
            zsys_info ("broker: %s %s by %s", op, in->name,
                       session->name[0] ? session->name : session->key);
        zf_sessions_send (server, session);
        return;
    }
    if (streq (op, "reload")) {
        // The owner reads the file again (zflow run, zflow broker) and
        // says so in its log; the broker only passes the word on.
        // From a zflow run --broker that reloaded its own file, the actors
        // it replaced (where: "OLD=NEW,..."): their groups are renamed now,
        // before the new actors' workers come. Else the owner reloads.
        if (in->where[0])
            zf_store_rename_groups (server->store, in->where);
        else
            zstr_sendx (server->pipe, "RELOAD", NULL);
        zf_proto_reset (out, ZF_REPORT);
        out->tag = in->tag;
        snprintf (out->state, sizeof out->state, "ok");
        zsys_info ("broker: reload asked by %s", session->name[0] ? session->name : session->key);
        zf_sessions_send (server, session);
        return;
    }
    bool listing = streq (op, "dead");
    zf_queue_t *queue = in->queue[0] ? zf_store_lookup (server->store, in->queue) : NULL;
    size_t len = strlen (in->queue);
    if (!queue && len > 5 && streq (in->queue + len - 5, ".dead")) {
        // A dead-letter queue before its first letter: there, and empty.
        char base[ZF_NAME_MAX + 1];
        snprintf (base, sizeof base, "%.*s", (int) (len - 5), in->queue);
        if (zf_store_lookup (server->store, base))
            queue = zf_store_queue (server->store, in->queue);
    }
    if (!streq (op, "dead") && !streq (op, "requeue") && !streq (op, "purge") &&
        !streq (op, "pause") && !streq (op, "resume")) {
        snprintf (why, sizeof why,
                  "unknown op '%s': dead, requeue, purge, pause, resume, reload, schedules "
                  "and schedule-add, -remove, -pause, -resume, -run are known",
                  op);
        s_refuse (server, session, ZF_REFUSAL_INVALID, why);
        return;
    }
    if (!queue && (in->queue[0] || !listing)) {
        snprintf (why, sizeof why, "no queue '%s' in this broker", in->queue);
        s_refuse (server, session, ZF_REFUSAL_NO_QUEUE, why);
        return;
    }
    if ((listing || streq (op, "requeue")) && queue && !queue->dead_letters) {
        snprintf (why, sizeof why, "'%s' is not a dead-letter queue: they are named QUEUE.dead",
                  queue->name);
        s_refuse (server, session, ZF_REFUSAL_INVALID, why);
        return;
    }
    if (in->where[0] && !strchr (in->where, '=')) {
        snprintf (why, sizeof why, "where '%.200s' is not HEADER=VALUE", in->where);
        s_refuse (server, session, ZF_REFUSAL_INVALID, why);
        return;
    }
    zf_select_t select = { .ids = in->nids ? in->ids : NULL,
                           .nids = in->nids,
                           .where = in->where[0] ? in->where : NULL,
                           .before = in->older ? zclock_time () - (int64_t) in->older : 0 };
    zf_steered_t steered = { 0 };
    zf_proto_reset (out, ZF_REPORT);
    out->tag = in->tag;
    snprintf (out->state, sizeof out->state, "ok");
    if (listing)
        s_list (server, queue, &select);
    else if (streq (op, "pause") || streq (op, "resume")) {
        zf_store_pause (server->store, queue, streq (op, "pause"));
        out->count = queue->depth;
    }
    else {
        if (streq (op, "requeue"))
            zf_store_requeue (server->store, queue, &select, &steered);
        else
            zf_store_purge (server->store, queue, &select, zf_sessions_tell_cancel, server,
                            &steered);
        out = server->out; // the cancels of a purge sent CANCELs: the answer is filled again
        zf_proto_reset (out, ZF_REPORT);
        out->tag = in->tag;
        snprintf (out->state, sizeof out->state, "ok");
        out->count = steered.done;
        s_left_out (out, &steered, queue->name);
        zsys_info ("broker: %s of %s by %s: %zu items%s%s", op, queue->name,
                   session->name[0] ? session->name : session->key, steered.done,
                   out->reason[0] ? "; " : "", out->reason);
    }
    if (streq (op, "pause") || streq (op, "resume"))
        zsys_info ("broker: %s %s by %s (%" PRIu64 " items stored)",
                   streq (op, "pause") ? "paused" : "resumed", queue->name,
                   session->name[0] ? session->name : session->key, out->count);
    if (queue) {
        zf_figures_t *figures = zf_proto_add_queue (out);
        if (figures)
            zf_store_figures (queue, figures);
    }
    zf_sessions_send (server, session);
}
