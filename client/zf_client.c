/*  zf_client: a ZFP/1 session with the broker, for actors and clients.
    See include/zflow.h for the API and schemas/zfp.md for the protocol.

    Sending is batched: puts and emits gather in one PUT of up to 256 items,
    acks in one ACK of up to 1024 ids. Both go out when full, and whenever
    the session is about to wait, so a busy actor sends few large messages
    and an idle one sends at once. A PUT always goes out before the ACKs
    that follow it: the broker then sees an item's outputs before its ACK.
*/
#include "zflow.h"
#include "zf_client_impl.h"
#include "zf_alloc.h"
#include "zf_curve.h"
#include "zf_mp.h"
#include "zf_proto.h"

#include <czmq.h>
#include <sys/random.h>

#define BACKOFF_MIN    1000  // ms before the first new session attempt
#define BACKOFF_MAX    32000 // ms between attempts at most
#define BACKOFF_GROUP  2000  // the same with a group of brokers, one of which may lead now
#define DEFAULT_WINDOW 1000

static int64_t
s_now (void)
{
    return zclock_mono ();
}

//  What the client has to say of itself (a session lost, a broker's
//  refusal, a bad message): to the log function the caller set, or to the
//  log as "zflow NAME: TEXT". Why a call failed is zf_client_last_error's.
static void s_say (zf_client_t *self, const char *level, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_say (zf_client_t *self, const char *level, const char *format, ...)
{
    char text[ZF_TEXT_MAX + 256];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    if (self->log)
        self->log (self->log_arg, level, text);
    else if (streq (level, "error"))
        zsys_error ("zflow %s: %s", self->name, text);
    else if (streq (level, "warning"))
        zsys_warning ("zflow %s: %s", self->name, text);
    else
        zsys_info ("zflow %s: %s", self->name, text);
}

static void
s_item_destroy (zf_item_t **self_p)
{
    if (!*self_p)
        return;
    zf_item_t *self = *self_p;
    zframe_destroy (&self->body);
    free ((void *) self->env.headers);
    free (self);
    *self_p = NULL;
}

static void
s_unconfirmed_destroy (s_unconfirmed_t **self_p)
{
    if (!*self_p)
        return;
    zmsg_destroy (&(*self_p)->msg);
    free (*self_p);
    *self_p = NULL;
}

static void
s_send_msg (zf_client_t *self, zmsg_t **msg_p)
{
    // A refused session sends nothing more: each would be one more
    // "before HELLO" for the broker to answer and log.
    if (self->refused_hello || zmsg_send (msg_p, self->sock))
        zmsg_destroy (msg_p);
    self->last_send = s_now ();
}

//  Sends msg and keeps it, to send again on a new session: ZeroMQ shares
//  the frames' bytes rather than copying them.
static void
s_send_kept (zf_client_t *self, zmsg_t *msg)
{
    if (self->refused_hello)
        return;
    size_t left = zmsg_size (msg);
    for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg))
        if (zframe_send (&frame, self->sock, ZFRAME_REUSE | (--left ? ZFRAME_MORE : 0)))
            break; // no way to the broker now: the next session sends it again
    self->last_send = s_now ();
}

static void
s_send_out (zf_client_t *self)
{
    zmsg_t *msg = zf_proto_encode (self->out, NULL);
    if (msg)
        s_send_msg (self, &msg);
}

//  Stops watching the session's socket. The monitor is stopped before its
//  PAIR goes: an event for a PAIR with no peer would block ZeroMQ's I/O
//  thread for good (libzmq#3575), and with it every socket of the process.
static void
s_unwatch (zf_client_t *self)
{
    if (!self->monitor)
        return;
    zmq_socket_monitor (zsock_resolve (self->sock), NULL, 0);
    zsock_destroy (&self->monitor);
}

//  With a group of brokers, a session watches its socket: when the broker
//  goes away (its host or its process died), or refuses the connection (a
//  broker named as the leader just before it died), the next one is tried
//  at once.
static void
s_watch (zf_client_t *self)
{
    if (self->nendpoints < 2)
        return;
    char name[64];
    snprintf (name, sizeof name, "inproc://zf-client-%p-%d", (void *) self, self->sessions);
    if (zmq_socket_monitor (zsock_resolve (self->sock), name,
                            ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED) != 0)
        return;
    self->monitor = zsock_new (ZMQ_PAIR);
    zsock_set_rcvtimeo (self->monitor, 0);
    if (zsock_connect (self->monitor, "%s", name) != 0)
        zsock_destroy (&self->monitor);
}

//  Opens a new session: a new socket (so a new routing id), HELLO, and the
//  PUTs the broker has not confirmed, in order.
static void
s_open (zf_client_t *self)
{
    if (self->refused_hello)
        return;
    s_unwatch (self);
    zsock_destroy (&self->sock);
    self->reopen_at = 0;
    self->sock = zsock_new (ZMQ_DEALER);
    zsock_set_linger (self->sock, 0);
    zsock_set_sndhwm (self->sock, 0);
    zsock_set_rcvhwm (self->sock, 0);
    zsock_set_reconnect_ivl (self->sock, 100);
    zsock_set_reconnect_ivl_max (self->sock, BACKOFF_MAX);
    // Sends never wait: with no way to the broker (a refused handshake
    // leaves none) they fail, and the session is opened again later.
    zsock_set_sndtimeo (self->sock, 0);
    zsock_set_rcvtimeo (self->sock, 0); // reads take what has come
    zf_curve_apply (self->sock, self->curve, self->curve_server);
    zsock_connect (self->sock, "%s", self->endpoints[self->current]);
    self->welcomed = false;
    self->sessions++;
    s_watch (self);
    zf_proto_reset (self->out, ZF_HELLO);
    snprintf (self->out->name, sizeof self->out->name, "%s", self->name);
    snprintf (self->out->host, sizeof self->out->host, "%s", self->host);
    snprintf (self->out->pipeline, sizeof self->out->pipeline, "%s", self->pipeline);
    self->out->worker = (uint32_t) self->worker;
    self->out->pid = (uint64_t) getpid ();
    if (self->input[0]) {
        self->out->ninputs = 1;
        snprintf (self->out->inputs[0], sizeof self->out->inputs[0], "%s", self->input);
    }
    s_send_out (self);
    for (s_unconfirmed_t *u = (s_unconfirmed_t *) zlistx_first (self->unconfirmed); u;
         u = (s_unconfirmed_t *) zlistx_next (self->unconfirmed)) {
        s_send_kept (self, u->msg);
    }
    zf_client_ask_again (self);
    self->hello_at = s_now ();
    self->last_recv = self->hello_at;
    // Items taken on the last session are the broker's to redeliver now:
    // whatever is still queued here is dropped, not acked twice.
    zlistx_purge (self->inbox);
}

//  The index of endpoint among those known, added if it is new; -1 when
//  there is no room.
static int
s_endpoint_index (zf_client_t *self, const char *endpoint, size_t size)
{
    for (int i = 0; i < self->nendpoints; i++)
        if (strlen (self->endpoints[i]) == size &&
            strncmp (self->endpoints[i], endpoint, size) == 0)
            return i;
    if (self->nendpoints == ZF_ENDPOINTS_MAX || size == 0)
        return -1;
    char *copy = (char *) zf_alloc (size + 1);
    memcpy (copy, endpoint, size);
    self->endpoints[self->nendpoints] = copy;
    return self->nendpoints++;
}

//  Goes to another broker of the group: the leader named, or the next one.
//  A session with the next comes in delay ms (0: at once).
static void
s_move (zf_client_t *self, const char *leader, int64_t delay)
{
    int to = leader ? s_endpoint_index (self, leader, strlen (leader)) : -1;
    if (to < 0 || to == self->current)
        to = (self->current + 1) % self->nendpoints;
    else
        delay = 0; // where the leader is: no wait
    self->current = to;
    if (delay > 0) {
        // The socket stays open meanwhile: no sends are lost, they go
        // again with the session.
        self->reopen_at = s_now () + delay;
        self->welcomed = false;
        self->hello_at = s_now ();
    }
    else
        s_open (self);
}

//  Why zf_client_new last failed on this thread (zf_client_last_error
//  (NULL) says it).
static _Thread_local char s_new_error[ZF_TEXT_MAX];

zf_client_t *
zf_client_new (const char *endpoint, const char *name, const char *input, int concurrency)
{
    const char *wrong = !endpoint || !*endpoint       ? "no broker endpoint given"
                        : !name || !*name             ? "no client name given"
                        : strlen (name) > ZF_NAME_MAX ? "the name is over 128 bytes"
                        : input && strlen (input) > ZF_NAME_MAX
                            ? "the input queue's name is over 128 bytes"
                            : NULL;
    if (wrong) {
        snprintf (s_new_error, sizeof s_new_error, "%s", wrong);
        return NULL;
    }
    zcert_t *curve;
    char server[41];
    zf_error_t err;
    if (zf_curve_from_env (&curve, server, &err)) {
        snprintf (s_new_error, sizeof s_new_error, "%s", err.text);
        return NULL;
    }
    s_new_error[0] = 0;
    zf_client_t *self = (zf_client_t *) zf_alloc (sizeof (zf_client_t));
    self->curve = curve;
    memcpy (self->curve_server, server, sizeof server);
    self->endpoint = zf_strdup (endpoint);
    for (const char *p = endpoint; *p;) {
        size_t len = strcspn (p, ",");
        s_endpoint_index (self, p, len);
        p += len;
        if (*p)
            p++;
    }
    if (self->nendpoints == 0)
        self->endpoints[self->nendpoints++] = zf_strdup (endpoint);
    snprintf (self->name, sizeof self->name, "%s", name);
    snprintf (self->input, sizeof self->input, "%s", input ? input : "");
    char *host = zsys_hostname ();
    snprintf (self->host, sizeof self->host, "%s", host ? host : "");
    zstr_free (&host);
    self->concurrency = concurrency > 0 ? concurrency : 1;
    self->heartbeat = 1000;
    self->liveness = 3;
    self->window = DEFAULT_WINDOW;
    self->backoff = BACKOFF_MIN;
    self->random_pos = sizeof self->random;
    self->in = zf_proto_new ();
    self->out = zf_proto_new ();
    self->put = zf_proto_new ();
    zf_proto_reset (self->put, ZF_PUT);
    self->unconfirmed = zlistx_new ();
    self->put_headers = zlistx_new ();
    zlistx_set_destructor (self->put_headers, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_destructor (self->unconfirmed, (zlistx_destructor_fn *) s_unconfirmed_destroy);
    self->inbox = zlistx_new ();
    zlistx_set_destructor (self->inbox, (zlistx_destructor_fn *) s_item_destroy);
    self->held = zlistx_new ();
    zlistx_set_destructor (self->held, (zlistx_destructor_fn *) s_item_destroy);
    self->dones = zlistx_new ();
    zlistx_set_destructor (self->dones, (zlistx_destructor_fn *) zf_result_destroy);
    zf_client_requests_new (self);
    return self;
}

void
zf_client_set_worker (zf_client_t *self, int worker)
{
    self->worker = worker;
}

void
zf_client_set_pipeline (zf_client_t *self, const char *pipeline)
{
    snprintf (self->pipeline, sizeof self->pipeline, "%s", pipeline ? pipeline : "");
}

//  The session opens at first use, so that settings made after new count.
static void
s_ready (zf_client_t *self)
{
    if (!self->sock)
        s_open (self);
}

static void s_send_acks (zf_client_t *self);
static void s_pump (zf_client_t *self, int64_t timeout_ms);

void
zf_client_prepare (zf_client_t *self)
{
    s_ready (self);
    s_send_acks (self);
}

void
zf_client_send (zf_client_t *self)
{
    s_send_out (self);
}

void
zf_client_wait (zf_client_t *self, int64_t timeout_ms)
{
    s_pump (self, timeout_ms);
}

//  --------------------------------------------------------------------------
//  Sending buffers

static void
s_send_put (zf_client_t *self)
{
    if (self->put->nitems == 0)
        return;
    if (self->nacks == 0)
        self->pending_since = 0; // else the acks keep their time
    self->put->seq = ++self->seq;
    self->put->track = self->track;
    uint32_t count = self->put->nitems;
    zmsg_t *msg = zf_proto_encode (self->put, NULL);
    zf_proto_reset (self->put, ZF_PUT);
    zlistx_purge (self->put_headers);
    if (!msg)
        return;
    s_unconfirmed_t *u = (s_unconfirmed_t *) zf_alloc (sizeof (s_unconfirmed_t));
    u->seq = self->seq;
    u->count = count;
    u->msg = msg;
    zlistx_add_end (self->unconfirmed, u);
    self->unconfirmed_items += count;
    s_send_kept (self, msg);
}

static void
s_send_acks (zf_client_t *self)
{
    s_send_put (self); // outputs before the ACK of what made them
    self->pending_since = 0;
    if (self->nacks == 0)
        return;
    zf_proto_reset (self->out, ZF_ACK);
    memcpy (self->out->ids, self->acks, self->nacks * sizeof (zf_id_t));
    self->out->nids = self->nacks;
    self->nacks = 0;
    s_send_out (self);
}

//  Whether what is buffered must go now: always without a linger; with
//  one, once the oldest has waited that long, or once a quarter of the
//  actor's credit waits to be acked (the broker sends no new items for
//  those until then), or a quarter of a PUT is filled.
static bool
s_linger_over (zf_client_t *self)
{
    uint32_t enough = self->concurrency >= 4 ? (uint32_t) self->concurrency / 4 : 1;
    return self->linger == 0 || !self->pending_since ||
           s_now () - self->pending_since >= self->linger || self->nacks >= enough ||
           self->put->nitems >= ZF_BATCH_MAX / 4;
}

//  --------------------------------------------------------------------------
//  Receiving

static void
s_on_deliver (zf_client_t *self)
{
    for (uint32_t i = 0; i < self->in->nitems; i++) {
        zf_env_t *env = &self->in->items[i];
        zf_item_t *item = (zf_item_t *) zf_alloc (sizeof (zf_item_t));
        item->env = *env;
        item->body = env->body;
        env->body = NULL;
        item->env.body = NULL;
        if (env->headers_size) {
            uint8_t *copy = (uint8_t *) zf_alloc (env->headers_size);
            memcpy (copy, env->headers, env->headers_size);
            item->env.headers = copy;
        }
        zlistx_add_end (self->inbox, item);
    }
}

static void
s_on_confirm (zf_client_t *self)
{
    for (s_unconfirmed_t *u = (s_unconfirmed_t *) zlistx_first (self->unconfirmed); u;
         u = (s_unconfirmed_t *) zlistx_next (self->unconfirmed))
        if (u->seq == self->in->seq) {
            self->unconfirmed_items -= u->count;
            zlistx_delete (self->unconfirmed, zlistx_cursor (self->unconfirmed));
            break;
        }
    if (zf_client_on_confirm_request (self))
        return; // its request tells its caller
    if (self->in->refused) {
        self->refused += self->in->refused;
        snprintf (self->last_error, sizeof self->last_error, "refused: %s", self->in->reason);
        s_say (self, "warning", "the broker refused %u item%s: %s", self->in->refused,
               self->in->refused == 1 ? "" : "s", self->in->reason);
    }
}

static void
s_on_cancel (zf_client_t *self)
{
    const zf_id_t *root = &self->in->id;
    for (zf_item_t *item = (zf_item_t *) zlistx_first (self->held); item;
         item = (zf_item_t *) zlistx_next (self->held))
        if (zf_id_eq (zf_env_root (&item->env), root))
            item->cancelled = true;
    // Not yet taken: dropped here, acked so the broker frees them. The
    // handles are gathered first: deleting moves the list's cursor.
    zlistx_t *drop = zlistx_new ();
    for (zf_item_t *item = (zf_item_t *) zlistx_first (self->inbox); item;
         item = (zf_item_t *) zlistx_next (self->inbox))
        if (zf_id_eq (zf_env_root (&item->env), root))
            zlistx_add_end (drop, zlistx_cursor (self->inbox));
    for (void *handle = zlistx_first (drop); handle; handle = zlistx_next (drop)) {
        zf_item_t *item = (zf_item_t *) zlistx_handle_item (handle);
        if (self->nacks == ZF_IDS_MAX)
            s_send_acks (self);
        self->acks[self->nacks++] = item->env.id;
        zlistx_delete (self->inbox, handle);
    }
    zlistx_destroy (&drop);
}

static void
s_handle (zf_client_t *self, zmsg_t *msg)
{
    zf_error_t err;
    if (zf_proto_decode (self->in, &msg, &err)) {
        s_say (self, "warning", "bad message from the broker: %s", err.text);
        return;
    }
    self->last_recv = s_now ();
    switch (self->in->command) {
        case ZF_WELCOME:
            self->welcomed = true;
            self->backoff = BACKOFF_MIN;
            self->heartbeat = self->in->heartbeat ? self->in->heartbeat : 1000;
            self->liveness = self->in->liveness ? self->in->liveness : 3;
            self->window = self->in->window ? self->in->window : DEFAULT_WINDOW;
            self->max_frame = self->in->max_frame;
            self->has_resume = self->in->checkpoint_size > 0;
            self->resume_size = self->in->checkpoint_size;
            memcpy (self->resume, self->in->checkpoint, self->resume_size);
            if (self->input[0]) {
                zf_proto_reset (self->out, ZF_CREDIT);
                self->out->credit = (uint32_t) self->concurrency;
                s_send_out (self);
            }
            break;
        case ZF_DELIVER:
            s_on_deliver (self);
            break;
        case ZF_CONFIRM:
            s_on_confirm (self);
            break;
        case ZF_PING:
            zf_proto_reset (self->out, ZF_PONG);
            s_send_out (self);
            break;
        case ZF_ERROR:
            if (self->refused_hello)
                break; // what was sent after the refused HELLO: said once is enough
            snprintf (self->last_error, sizeof self->last_error, "%s: %s", self->in->code,
                      self->in->reason);
            if (!self->welcomed &&
                (streq (self->in->code, "version") || streq (self->in->code, "value"))) {
                // The answer to HELLO (the broker answers in order, and
                // nothing of this session came before): a broker of
                // another pipeline or version, or a name it refuses. No
                // new session would fare better.
                self->refused_hello = true;
                s_say (self, "error", "the broker at %s refused the session: %s",
                       self->endpoints[self->current], self->in->reason);
                break;
            }
            if (streq (self->in->code, "leader")) {
                // A broker of a group that does not lead (a move, not a
                // fault): to the leader it names, or, while there is none
                // yet, soon to the next.
                const char *leader = self->in->leader;
                s_move (self, *leader ? leader : NULL, *leader ? 0 : 100);
                break;
            }
            s_say (self, "warning", "broker says %s", self->last_error);
            // The broker does not know this session (it restarted): open
            // a new one.
            if (streq (self->in->code, "state") && strstr (self->in->reason, "before HELLO"))
                s_open (self);
            break;
        case ZF_CANCEL:
            s_on_cancel (self);
            break;
        case ZF_REPORT:
            zf_client_on_report (self);
            break;
        case ZF_DONE:
            zf_client_on_done (self);
            break;
        default:
            break; // PONG: the traffic itself is the point
    }
}

//  Waits up to timeout_ms for traffic and handles all that is there; keeps
//  the heartbeat and opens a new session when the broker is silent too long.
//  With wake, the wait also ends when the wake socket is readable: returns
//  true then.
static bool
s_pump_or_wake (zf_client_t *self, int64_t timeout_ms, bool wake)
{
    if (self->refused_hello) {
        zf_client_expire (self, s_now (), true);
        // No session to keep: only the wake socket is waited for, so
        // that a caller in a loop does not spin.
        if (timeout_ms <= 0)
            return false;
        zmq_pollitem_t item = { wake && self->wake ? zsock_resolve (self->wake) : NULL, 0,
                                ZMQ_POLLIN, 0 };
        return zmq_poll (&item, item.socket ? 1 : 0, (long) timeout_ms) > 0;
    }
    int64_t now = s_now ();
    int64_t until_ping = (int64_t) self->heartbeat - (now - self->last_send);
    if (timeout_ms < 0 || timeout_ms > until_ping)
        timeout_ms = until_ping > 0 ? until_ping : 0;
    if (self->reopen_at && timeout_ms > self->reopen_at - now)
        timeout_ms = self->reopen_at > now ? self->reopen_at - now : 0;
    zmq_pollitem_t items[3] = { { zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0 } };
    int count = 1, at_wake = -1;
    if (wake && self->wake) {
        at_wake = count;
        items[count++] = (zmq_pollitem_t){ zsock_resolve (self->wake), 0, ZMQ_POLLIN, 0 };
    }
    if (self->monitor)
        items[count++] = (zmq_pollitem_t){ zsock_resolve (self->monitor), 0, ZMQ_POLLIN, 0 };
    // With no time to wait, what has come is read without asking first:
    // zmq_poll costs a system call or more for each socket.
    bool woken = false, ready = true;
    if (timeout_ms > 0) {
        ready = zmq_poll (items, count, (long) timeout_ms) > 0;
        woken = ready && at_wake > 0 && (items[at_wake].revents & ZMQ_POLLIN);
    }
    if (self->monitor) {
        // The broker of this session went away, or is not there: the
        // next, at once. Every event that came is read: a backlog past the
        // PAIR's high-water mark would block the I/O thread as well.
        bool lost = false, retried = false;
        zmsg_t *event;
        while ((event = zmsg_recv (self->monitor))) {
            zframe_t *head = zmsg_first (event);
            if (zframe_size (head) >= 2 &&
                (zframe_data (head)[0] | zframe_data (head)[1] << 8) == ZMQ_EVENT_DISCONNECTED)
                lost = true;
            else
                retried = true;
            zmsg_destroy (&event);
        }
        if (lost || (retried && !self->welcomed)) {
            s_say (self, "info", "%s %s; trying %s", lost ? "lost" : "no broker at",
                   self->endpoints[self->current],
                   self->endpoints[(self->current + 1) % self->nendpoints]);
            s_move (self, NULL, 0);
            return woken;
        }
    }
    if (ready) {
        // All that has come: the descriptor of zf_client_fd is
        // edge-triggered, and would not say again that more is there.
        // (What a broker sends a session is bounded: by its credit, its
        // PUT window, its questions.)
        zmsg_t *msg;
        while ((msg = zmsg_recv (self->sock)))
            s_handle (self, msg);
    }
    now = s_now ();
    zf_client_expire (self, now, self->refused_hello);
    int64_t silence = now - self->last_recv;
    if (self->reopen_at && now >= self->reopen_at)
        s_open (self);
    else if (!self->welcomed && now - self->hello_at > self->backoff) {
        // No WELCOME: the broker is away, or the HELLO was lost with a
        // broker that died. Try again (the next of a group), backing off
        // once every one has been tried; in a group not for long, since
        // another node may lead by now.
        int64_t most = self->nendpoints > 1 ? BACKOFF_GROUP : BACKOFF_MAX;
        self->current = (self->current + 1) % self->nendpoints;
        if (self->current == 0)
            self->backoff = self->backoff * 2 > most ? most : self->backoff * 2;
        s_open (self);
    }
    else if (self->welcomed && silence > (int64_t) self->heartbeat * self->liveness) {
        self->current = (self->current + 1) % self->nendpoints;
        s_open (self);
    }
    else if (now - self->last_send >= (int64_t) self->heartbeat ||
             (self->welcomed && self->figures_new &&
              now - self->figures_sent >= (int64_t) self->heartbeat)) {
        // A heartbeat; new figures go with one once a heartbeat interval.
        zf_proto_reset (self->out, ZF_PING);
        if (self->figures_new) {
            self->out->figures = self->figures;
            self->out->figures_size = self->figures_size;
            self->figures_new = false;
            self->figures_sent = now;
        }
        s_send_out (self);
    }
    return woken;
}

//  Waits for traffic as s_pump_or_wake, for the session's own needs
//  (confirms, answers): the wake socket does not end it.
static void
s_pump (zf_client_t *self, int64_t timeout_ms)
{
    s_pump_or_wake (self, timeout_ms, false);
}

//  --------------------------------------------------------------------------
//  Putting

//  Appends an item to the PUT being filled, first waiting for confirms
//  while the PUT window is full; a wait that the wake socket ends, when
//  wake, gives up (-1: the item is not put). Takes the body. wait: the ms
//  the broker may hold it for room (0: as long as it takes); a PUT holds
//  items of one wait only.
static int
s_enqueue (zf_client_t *self, zf_env_t *env, zframe_t **body_p, bool wake, uint32_t wait)
{
    if (self->refused_hello) {
        zframe_destroy (body_p);
        return -1;
    }
    if (self->put->nitems && self->put->wait != wait)
        s_send_put (self);
    while (self->unconfirmed_items + self->put->nitems >= self->window) {
        s_send_put (self);
        if (zsys_interrupted || self->refused_hello ||
            (wake ? s_pump_or_wake (self, 100, true) : (s_pump (self, 100), false))) {
            zframe_destroy (body_p);
            return -1;
        }
    }
    if (!self->pending_since)
        self->pending_since = s_now ();
    self->put->wait = wait;
    zf_env_t *slot = zf_proto_add_item (self->put, body_p);
    zframe_t *body = slot->body;
    *slot = *env;
    slot->body = body;
    if (env->headers_size) {
        // The caller's headers (or the input item's) may be gone by the
        // time the PUT is encoded.
        uint8_t *copy = (uint8_t *) zf_alloc (env->headers_size);
        memcpy (copy, env->headers, env->headers_size);
        zlistx_add_end (self->put_headers, copy);
        slot->headers = copy;
    }
    // A checkpoint is the position after this item: it goes with the PUT
    // that holds the item, never with one sent before it (whose confirm
    // would then cover an item the broker does not have).
    if (self->checkpoint_size) {
        memcpy (self->put->checkpoint, self->checkpoint, self->checkpoint_size);
        self->put->checkpoint_size = self->checkpoint_size;
        self->checkpoint_size = 0;
    }
    if (self->put->nitems == ZF_BATCH_MAX)
        s_send_put (self);
    return 0;
}

int
zf_client_put_id (zf_client_t *self, const char *queue, const zf_id_t *id, const void *body,
                  size_t size)
{
    zf_put_opts_t opts = { .id = id };
    return zf_client_put_with (self, queue, body, size, &opts, NULL);
}

//  A random id from the session's pool: one getrandom call per 256 ids.
static zf_id_t
s_random_id (zf_client_t *self)
{
    if (self->random_pos + ZF_ID_SIZE > sizeof self->random) {
        size_t got = 0;
        while (got < sizeof self->random) {
            ssize_t rc = getrandom (self->random + got, sizeof self->random - got, 0);
            if (rc > 0)
                got += (size_t) rc;
        }
        self->random_pos = 0;
    }
    zf_id_t id;
    memcpy (id.bytes, self->random + self->random_pos, ZF_ID_SIZE);
    self->random_pos += ZF_ID_SIZE;
    return id;
}

//  True if a body of size bytes is over the broker's max-frame (which its
//  socket would refuse by dropping the connection, and the put would wait
//  out its time): said in last_error. A body over the smallest max-frame
//  there is waits for the WELCOME that says it (at most MAX_FRAME_ASK_MS;
//  no broker by then: it goes).
#define MAX_FRAME_MIN    1024
#define MAX_FRAME_ASK_MS 2000
static bool
s_over_max_frame (zf_client_t *self, size_t size)
{
    if (size <= MAX_FRAME_MIN)
        return false;
    int64_t deadline = s_now () + MAX_FRAME_ASK_MS;
    while (!self->welcomed && !self->refused_hello && !zsys_interrupted && s_now () < deadline)
        s_pump (self, 50);
    if (!self->max_frame || size <= self->max_frame)
        return false;
    snprintf (self->last_error, sizeof self->last_error,
              "an item of %zu bytes is over the broker's max-frame (%u bytes): not put", size,
              self->max_frame);
    return true;
}

int
zf_client_put (zf_client_t *self, const char *queue, const void *body, size_t size, zf_id_t *id)
{
    return zf_client_put_with (self, queue, body, size, NULL, id);
}

int
zf_client_put_with (zf_client_t *self, const char *queue, const void *body, size_t size,
                    const zf_put_opts_t *opts, zf_id_t *id)
{
    if (!queue || strlen (queue) > ZF_NAME_MAX ||
        (opts && (opts->priority < 0 || opts->priority > ZF_PRIORITY_MAX)))
        return -1;
    if (opts && opts->headers_size) {
        zf_error_t err;
        if (zf_proto_check_headers (opts->headers, opts->headers_size, &err)) {
            snprintf (self->last_error, sizeof self->last_error, "headers: %s", err.text);
            return -1;
        }
    }
    s_ready (self);
    if (s_over_max_frame (self, size))
        return -1;
    zf_env_t env = { .ts = zclock_time () };
    env.id = opts && opts->id ? *opts->id : s_random_id (self);
    if (opts && opts->root)
        env.root = *opts->root;
    if (opts && opts->group)
        env.group = *opts->group;
    if (opts) {
        env.priority = (uint32_t) opts->priority;
        env.headers = (const uint8_t *) opts->headers;
        env.headers_size = (uint32_t) opts->headers_size;
        env.not_before = opts->not_before;
        if (opts->delay_ms > 0 && env.ts + opts->delay_ms > env.not_before)
            env.not_before = env.ts + opts->delay_ms;
    }
    if (id)
        *id = env.id;
    snprintf (env.queue, sizeof env.queue, "%s", queue);
    zframe_t *frame = zframe_new (body, size);
    int64_t wait = opts && opts->wait_ms > 0 ? opts->wait_ms : 0;
    return s_enqueue (self, &env, &frame, true, wait > UINT32_MAX ? UINT32_MAX : (uint32_t) wait);
}

uint32_t
zf_client_put_room (zf_client_t *self)
{
    uint64_t used = self->unconfirmed_items + self->put->nitems;
    return used < self->window ? (uint32_t) (self->window - used) : 0;
}

zf_request_t *
zf_client_put_request (zf_client_t *self, const char *queue, const void *body, size_t size,
                       const zf_put_opts_t *opts, zf_id_t *id, int timeout_ms, void *arg)
{
    s_ready (self);
    if (self->refused_hello)
        return NULL;
    s_send_put (self); // what was buffered goes first: this item is alone in its PUT
    if (zf_client_put_room (self) == 0) {
        snprintf (self->last_error, sizeof self->last_error,
                  "the PUT window is full (%u items unconfirmed): try again once some are",
                  self->window);
        return NULL;
    }
    zf_id_t put_id;
    if (zf_client_put_with (self, queue, body, size, opts, &put_id))
        return NULL;
    self->put->urgent = true; // a caller waits for its answer
    s_send_put (self);
    if (id)
        *id = put_id;
    return zf_client_put_asked (self, self->seq, &put_id, timeout_ms, arg);
}

int
zf_client_put_str (zf_client_t *self, const char *queue, const char *text, zf_id_t *id)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    zf_mp_pack_cstr (&pk, text);
    int rc = zf_client_put (self, queue, buffer.data, buffer.size, id);
    msgpack_sbuffer_destroy (&buffer);
    return rc;
}

void
zf_client_track (zf_client_t *self, bool track)
{
    s_send_put (self); // items buffered so far keep the setting they were put with
    self->track = track;
}

//  Sends CANCEL of root, for reason; dead: the lineage failed.
static void
s_cancel (zf_client_t *self, const zf_id_t *root, const char *reason, bool dead)
{
    s_ready (self);
    s_send_acks (self);
    zf_proto_reset (self->out, ZF_CANCEL);
    self->out->id = *root;
    snprintf (self->out->reason, sizeof self->out->reason, "%s", reason ? reason : "");
    self->out->dead = dead;
    s_send_out (self);
}

void
zf_client_cancel (zf_client_t *self, const zf_id_t *root, const char *reason)
{
    s_cancel (self, root, reason, false);
}

void
zf_client_cancel_dead (zf_client_t *self, const zf_id_t *root, const char *reason)
{
    s_cancel (self, root, reason, true);
}

void
zf_client_checkpoint (zf_client_t *self, const void *data, size_t size)
{
    if (size > ZF_CHECKPOINT_MAX)
        size = ZF_CHECKPOINT_MAX;
    memcpy (self->checkpoint, data, size);
    self->checkpoint_size = (uint32_t) size;
}

const void *
zf_client_resume_point (zf_client_t *self, size_t *size, int timeout_ms)
{
    s_ready (self);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : s_now () + timeout_ms;
    while (!self->welcomed && !self->refused_hello && !zsys_interrupted && s_now () < deadline)
        s_pump (self, 50);
    *size = self->resume_size;
    return self->has_resume ? self->resume : NULL;
}

int
zf_client_flush (zf_client_t *self, int timeout_ms)
{
    s_ready (self);
    self->put->urgent = self->put->nitems > 0; // the caller waits for its confirm
    s_send_acks (self);
    if (self->refused_hello)
        return -1;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : s_now () + timeout_ms;
    while (self->unconfirmed_items > 0) {
        int64_t left = deadline - s_now ();
        if (left <= 0 || zsys_interrupted || self->refused_hello)
            return -1;
        s_pump (self, left < 100 ? left : 100);
    }
    uint32_t refused = self->refused;
    self->refused = 0;
    return refused ? -1 : 0;
}

int
zf_client_end (zf_client_t *self, uint64_t count)
{
    if (zf_client_flush (self, -1))
        return -1;
    zf_proto_reset (self->out, ZF_END);
    self->out->count = count;
    s_send_out (self);
    return 0;
}

//  The actor's wait, up to timeout_ms (-1 for ever): first what is
//  buffered goes, unless its linger lasts, and then the wait ends when the
//  linger does, to send it. True if the wake socket ended it.
static bool
s_actor_wait (zf_client_t *self, int64_t timeout_ms)
{
    if (s_linger_over (self))
        s_send_acks (self);
    int linger = zf_client_linger_left (self);
    if (linger >= 0 && (timeout_ms < 0 || timeout_ms > linger))
        timeout_ms = linger;
    return s_pump_or_wake (self, timeout_ms, true);
}

//  --------------------------------------------------------------------------
//  Consuming

zf_item_t *
zf_client_next (zf_client_t *self, int timeout_ms)
{
    s_ready (self);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : s_now () + timeout_ms;
    // The socket is read at least once, even with no time to wait: what
    // has arrived is taken without waiting for it.
    for (bool read = false;; read = true) {
        zf_item_t *item = (zf_item_t *) zlistx_first (self->inbox);
        if (item) {
            zlistx_detach_cur (self->inbox);
            item->handle = zlistx_add_end (self->held, item);
            return item;
        }
        int64_t left = deadline - s_now ();
        if ((left <= 0 && read) || zsys_interrupted || self->refused_hello) {
            if (s_linger_over (self))
                s_send_acks (self);
            return NULL;
        }
        if (s_actor_wait (self, left > 0 ? left : 0) && zlistx_size (self->inbox) == 0)
            return NULL; // the actor has something to look at
    }
}

void
zf_client_pump (zf_client_t *self, int timeout_ms)
{
    s_ready (self);
    s_actor_wait (self, timeout_ms);
}

void
zf_client_set_wake (zf_client_t *self, zsock_t *wake)
{
    self->wake = wake;
}

void
zf_client_set_linger (zf_client_t *self, int ms)
{
    self->linger = ms > 0 ? ms : 0;
}

int
zf_client_linger_left (zf_client_t *self)
{
    if (!self->pending_since)
        return -1;
    int64_t left = self->pending_since + self->linger - s_now ();
    return left > 0 ? (int) left : 0;
}

int
zf_client_set_figures (zf_client_t *self, const void *map, size_t size)
{
    zf_mp_t mp;
    zf_mp_init (&mp, map, size);
    if (size > ZF_FIGURES_MAX || zf_mp_peek (&mp) != ZF_MP_MAP ||
        zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL) || zf_mp_left (&mp))
        return -1;
    memcpy (self->figures, map, size);
    self->figures_size = (uint32_t) size;
    self->figures_new = true;
    return 0;
}

int
zf_client_fd (zf_client_t *self)
{
    s_ready (self);
    return (int) zsock_fd (self->sock);
}

int
zf_client_emit (zf_client_t *self, zf_item_t *item, const char *queue, const void *body,
                size_t size)
{
    return zf_client_emit_with (self, item, queue, body, size, NULL);
}

int
zf_client_emit_with (zf_client_t *self, zf_item_t *item, const char *queue, const void *body,
                     size_t size, const zf_put_opts_t *opts)
{
    if (!queue || strlen (queue) > ZF_NAME_MAX)
        return -1;
    if (self->max_frame && size > self->max_frame) {
        snprintf (self->last_error, sizeof self->last_error,
                  "an output of %zu bytes is over the broker's max-frame (%u bytes): not put", size,
                  self->max_frame);
        return -1;
    }
    zf_env_t env = { .ts = zclock_time (), .parent = item->env.id };
    if (opts && opts->id)
        env.id = *opts->id;
    else if (item->emitted == ZF_GROUP_RESULT)
        return -1; // the last index names a gather's result
    else
        env.id = zf_id_child (&item->env.id, item->emitted++);
    env.root = *zf_env_root (&item->env);
    env.group = opts && opts->group ? *opts->group : item->env.group;
    env.headers = item->env.headers; // what the put said travels with its lineage
    env.headers_size = item->env.headers_size;
    snprintf (env.queue, sizeof env.queue, "%s", queue);
    zframe_t *frame = zframe_new (body, size);
    // An output waits for room whatever comes: its input is acked after it.
    return s_enqueue (self, &env, &frame, false, 0);
}

int
zf_client_ack (zf_client_t *self, zf_item_t **item_p)
{
    zf_item_t *item = *item_p;
    if (!item)
        return -1;
    if (self->nacks == ZF_IDS_MAX)
        s_send_acks (self);
    self->acks[self->nacks++] = item->env.id;
    if (!self->pending_since)
        self->pending_since = s_now ();
    zlistx_delete (self->held, item->handle);
    *item_p = NULL;
    return 0;
}

int
zf_client_progress (zf_client_t *self, zf_item_t *item, uint32_t progress, const char *note)
{
    if (!item || progress > ZF_PROGRESS_MAX)
        return -1;
    zf_proto_reset (self->out, ZF_PROGRESS);
    self->out->id = item->env.id;
    self->out->progress = progress;
    snprintf (self->out->note, sizeof self->out->note, "%s", note ? note : "");
    s_send_out (self);
    return 0;
}

int
zf_client_nack (zf_client_t *self, zf_item_t **item_p, const char *reason, bool final, int delay_ms)
{
    return zf_client_nack_detail (self, item_p, reason, NULL, final, delay_ms);
}

int
zf_client_nack_detail (zf_client_t *self, zf_item_t **item_p, const char *reason,
                       const char *detail, bool final, int delay_ms)
{
    zf_item_t *item = *item_p;
    if (!item)
        return -1;
    s_send_acks (self);
    zf_proto_reset (self->out, ZF_NACK);
    self->out->id = item->env.id;
    snprintf (self->out->reason, sizeof self->out->reason, "%s", reason ? reason : "");
    snprintf (self->out->detail, sizeof self->out->detail, "%s", detail ? detail : "");
    self->out->final = final;
    self->out->delay = delay_ms > 0 ? (uint32_t) delay_ms : 0;
    s_send_out (self);
    zlistx_delete (self->held, item->handle);
    *item_p = NULL;
    return 0;
}

void
zf_client_set_log (zf_client_t *self, zf_client_log_fn *fn, void *arg)
{
    self->log = fn;
    self->log_arg = arg;
}

bool
zf_client_refused (zf_client_t *self)
{
    return self->refused_hello;
}

const char *
zf_client_last_error (zf_client_t *self)
{
    return self ? self->last_error : s_new_error;
}

int
zf_client_sessions (zf_client_t *self)
{
    return self->sessions;
}

const char *
zf_client_broker (zf_client_t *self)
{
    return self->endpoints[self->current];
}

void
zf_client_destroy (zf_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zf_client_t *self = *self_p;
    s_unwatch (self);
    if (self->sock) {
        s_send_acks (self);
        zf_proto_reset (self->out, ZF_BYE);
        s_send_out (self);
        // Give what was sent a moment to leave; the broker hands back the rest.
        zsock_set_linger (self->sock, 1000);
        zsock_destroy (&self->sock);
    }
    zlistx_destroy (&self->inbox);
    zlistx_destroy (&self->held);
    zlistx_destroy (&self->dones);
    zlistx_destroy (&self->unconfirmed);
    zlistx_destroy (&self->put_headers);
    zf_proto_destroy (&self->in);
    zf_proto_destroy (&self->out);
    zf_proto_destroy (&self->put);
    zf_client_requests_destroy (self);
    for (int i = 0; i < self->nendpoints; i++)
        free (self->endpoints[i]);
    free (self->endpoint);
    zcert_destroy (&self->curve);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Items

const zf_id_t *
zf_item_id (zf_item_t *item)
{
    return &item->env.id;
}

const char *
zf_item_queue (zf_item_t *item)
{
    return item->env.queue;
}

uint32_t
zf_item_attempt (zf_item_t *item)
{
    return item->env.attempt;
}

const void *
zf_item_body (zf_item_t *item, size_t *size)
{
    if (size)
        *size = zframe_size (item->body);
    return zframe_data (item->body);
}

const zf_id_t *
zf_item_root (zf_item_t *item)
{
    return zf_env_root (&item->env);
}

const zf_group_t *
zf_item_group (zf_item_t *item)
{
    return item->env.group.size ? &item->env.group : NULL;
}

const void *
zf_item_headers (zf_item_t *item, size_t *size)
{
    *size = item->env.headers_size;
    return item->env.headers_size ? item->env.headers : NULL;
}

bool
zf_item_cancelled (zf_item_t *item)
{
    return item->cancelled;
}
