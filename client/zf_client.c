/*  zf_client: a ZFP/1 session with the broker, for actors and clients:
    connecting (CURVE, a group of brokers and its leader), HELLO and
    WELCOME, heartbeats, new sessions after a silence, and the traffic,
    which it hands to its roles: puts (zf_putter.c), a worker's deliveries
    (zf_worker.c), questions (zf_ask.c). See include/zflow.h for the API
    and schemas/zfp.md for the protocol.

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

#define BACKOFF_MIN    1000  // ms before the first new session attempt
#define BACKOFF_MAX    32000 // ms between attempts at most
#define BACKOFF_GROUP  2000  // the same with a group of brokers, one of which may lead now
#define DEFAULT_WINDOW 1000

static int64_t
s_now (void)
{
    return zclock_mono ();
}

void
zf_client_say (zf_client_t *self, const char *level, const char *format, ...)
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
void
zf_client_send_kept (zf_client_t *self, zmsg_t *msg)
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
    // The broker counts a worker's items per session, and a new session
    // (a broker restarted, a heartbeat missed) would start its figures at
    // 0: only this side outlives both, so it says where they stand.
    self->out->done = self->done;
    self->out->failed = self->failed;
    if (self->input[0]) {
        self->out->ninputs = 1;
        snprintf (self->out->inputs[0], sizeof self->out->inputs[0], "%s", self->input);
    }
    s_send_out (self);
    for (s_unconfirmed_t *u = (s_unconfirmed_t *) zlistx_first (self->unconfirmed); u;
         u = (s_unconfirmed_t *) zlistx_next (self->unconfirmed)) {
        zf_client_send_kept (self, u->msg);
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
    zlistx_set_destructor (self->unconfirmed,
                           (zlistx_destructor_fn *) zf_client_unconfirmed_destroy);
    self->inbox = zlistx_new ();
    zlistx_set_destructor (self->inbox, (zlistx_destructor_fn *) zf_client_item_destroy);
    self->held = zlistx_new ();
    zlistx_set_destructor (self->held, (zlistx_destructor_fn *) zf_client_item_destroy);
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

void
zf_client_ready (zf_client_t *self)
{
    if (!self->sock)
        s_open (self);
}

static void s_pump (zf_client_t *self, int64_t timeout_ms);

void
zf_client_prepare (zf_client_t *self)
{
    zf_client_ready (self);
    zf_client_send_acks (self);
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
//  Receiving

//  The queues keyed by URL, as the WELCOME or reload PING in self->in says
//  (in place of what was said before).
static void
s_take_keyed (zf_client_t *self)
{
    if (!self->told_keyed)
        self->told_keyed = zhashx_new ();
    zhashx_purge (self->told_keyed);
    for (uint32_t i = 0; i < self->in->nkeyed; i++)
        zhashx_insert (self->told_keyed, self->in->keyed[i].queue, (void *) "");
    self->told = true;
}

static void
s_handle (zf_client_t *self, zmsg_t *msg)
{
    zf_error_t err;
    if (zf_proto_decode (self->in, &msg, &err)) {
        zf_client_say (self, "warning", "bad message from the broker: %s", err.text);
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
            s_take_keyed (self);
            zf_client_send_put (self); // what was held for it
            if (self->input[0]) {
                zf_proto_reset (self->out, ZF_CREDIT);
                self->out->credit = (uint32_t) self->concurrency;
                s_send_out (self);
            }
            break;
        case ZF_DELIVER:
            zf_client_on_deliver (self);
            break;
        case ZF_CONFIRM:
            zf_client_on_confirm (self);
            break;
        case ZF_PING:
            if (self->in->reloaded)
                s_take_keyed (self);
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
                zf_client_say (self, "error", "the broker at %s refused the session: %s",
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
            if (streq (self->in->code, "state") && strstr (self->in->reason, "before HELLO")) {
                // The broker does not know this session (it restarted, or
                // took it for lost): a new one, which sends again what
                // was not confirmed.
                zf_client_say (self, "info",
                               "the broker at %s does not know this session (it restarted, or "
                               "took it for lost): a new session, %" PRIu64
                               " unconfirmed items sent again",
                               self->endpoints[self->current], self->unconfirmed_items);
                s_open (self);
                break;
            }
            zf_client_say (self, "warning", "broker says %s", self->last_error);
            break;
        case ZF_CANCEL:
            zf_client_on_cancel (self);
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
bool
zf_client_pump_or_wake (zf_client_t *self, int64_t timeout_ms, bool wake)
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
            zf_client_say (self, "info", "%s %s; trying %s", lost ? "lost" : "no broker at",
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

//  Waits for traffic as zf_client_pump_or_wake, for the session's own needs
//  (confirms, answers): the wake socket does not end it.
static void
s_pump (zf_client_t *self, int64_t timeout_ms)
{
    zf_client_pump_or_wake (self, timeout_ms, false);
}

//  --------------------------------------------------------------------------
//  Driving it from outside

void
zf_client_pump (zf_client_t *self, int timeout_ms)
{
    zf_client_ready (self);
    zf_client_actor_wait (self, timeout_ms);
}

void
zf_client_set_wake (zf_client_t *self, zsock_t *wake)
{
    self->wake = wake;
}

int
zf_client_fd (zf_client_t *self)
{
    zf_client_ready (self);
    return (int) zsock_fd (self->sock);
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
        zf_client_send_acks (self);
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
    zlistx_destroy (&self->url_keyed);
    zhashx_destroy (&self->told_keyed);
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
