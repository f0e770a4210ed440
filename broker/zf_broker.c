/*  zf_broker: the broker's loop, and the broker as an object. See
    zf_broker.h; zf_server.h says which module does what.
*/
#include "zf_broker.h"
#include "zf_auth.h"
#include "zf_intake.h"
#include "zf_persist.h"
#include "zf_publish.h"
#include "zf_server.h"
#include "zf_schedules.h"
#include "zf_sessions.h"
#include "zf_thread.h"

#include <sys/resource.h>

#define READ_BUDGET 512 // messages read per socket per loop turn
#define TICK_MS     20  // timer resolution for retries, timeouts and heartbeats

//  --------------------------------------------------------------------------
//  What the store tells the other modules

static void
s_created (void *arg, zf_queue_t *queue)
{
    zf_publish_queue ((zf_server_t *) arg, queue);
}

static void
s_stored (void *arg, zf_message_t *msg, uint32_t attempt)
{
    zf_persist_put ((zf_server_t *) arg, msg, attempt);
    zf_publish_item ((zf_server_t *) arg, msg->queue, &msg->id, msg->ts, msg->body);
}

static void
s_kept (void *arg, zf_queue_t *queue, const zf_env_t *env)
{
    zf_publish_item ((zf_server_t *) arg, queue, &env->id, env->ts, env->body);
}

static void
s_acked (void *arg, zf_delivery_t *d, bool dead)
{
    zf_persist_ack ((zf_server_t *) arg, d, dead);
}

static void
s_retried (void *arg, zf_delivery_t *d)
{
    zf_persist_retry ((zf_server_t *) arg, d);
}

static void
s_finished (void *arg, zf_message_t *msg, uint8_t outcome)
{
    zf_persist_fin ((zf_server_t *) arg, &msg->id, outcome);
}

static void
s_dead (void *arg, zf_delivery_t *d)
{
    zf_publish_dead ((zf_server_t *) arg, d);
}

static void
s_lineage_over (void *arg, zf_lineage_t *lineage, const char *state)
{
    zf_server_t *server = (zf_server_t *) arg;
    if (!server->replaying)
        zf_sessions_done (server, lineage, state);
}

static void
s_admitted (void *arg, zf_pending_t *put)
{
    zf_persist_confirm ((zf_server_t *) arg, put);
}

static void
s_answered (void *arg, zf_answer_t *answer, const zf_output_t *result)
{
    zf_persist_answer ((zf_server_t *) arg, answer, result);
}

static void
s_paused (void *arg, zf_queue_t *queue)
{
    zf_persist_queue ((zf_server_t *) arg, queue);
}

//  --------------------------------------------------------------------------
//  The server

static void
s_server_destroy (zf_server_t **self_p)
{
    if (!*self_p)
        return;
    zf_server_t *self = *self_p;
    // What is appended goes to disk. The CONFIRMs still held are not sent:
    // their writers send those PUTs again to the next broker, which
    // confirms them as duplicates.
    zf_journal_destroy (&self->journal);
    zf_cluster_destroy (&self->cluster);
    zlistx_destroy (&self->confirms);
    zhashx_destroy (&self->sessions);
    if (self->store) {
        zlistx_t *queues = zf_store_queues (self->store);
        for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (queues); queue;
             queue = (zf_queue_t *) zlistx_next (queues))
            zf_publish_queue_destroy (queue);
    }
    zf_store_destroy (&self->store);
    zf_schedules_destroy (&self->schedules);
    zhashx_destroy (&self->ended);
    zhashx_destroy (&self->crashloops);
    zhashx_destroy (&self->subscriptions);
    zhashx_destroy (&self->topic_seq);
    zlistx_destroy (&self->tapped);
    zf_proto_destroy (&self->in);
    zf_proto_destroy (&self->out);
    zf_proto_destroy (&self->dones);
    zsock_destroy (&self->router);
    zsock_destroy (&self->events);
    zsock_destroy (&self->intake);
    zsock_destroy (&self->zap);
    zcertstore_destroy (&self->allowed);
    zcert_destroy (&self->curve);
    free (self->allowed_dir);
    free (self);
    *self_p = NULL;
}

static zf_server_t *
s_server_new (zsock_t *pipe, zf_broker_args_t *args, zf_error_t *err)
{
    zf_server_t *self = (zf_server_t *) zmalloc (sizeof (zf_server_t));
    self->pipe = pipe;
    zf_pipeline_t *pipeline = args->pipeline;
    self->pipeline = pipeline;
    const zf_broker_settings_t *set = &pipeline->broker_settings;
    int64_t max_frame = set->max_frame;
    self->heartbeat = set->heartbeat;
    self->max_frame = max_frame;
    self->max_groups = set->max_groups;
    self->liveness = set->liveness;
    self->window = (uint32_t) set->window;
    size_t dedup_window = (size_t) set->dedup_window;
    self->sessions = zhashx_new ();
    zhashx_set_destructor (self->sessions, (zhashx_destructor_fn *) zf_session_destroy);
    self->ended = zhashx_new ();
    self->crashloops = zhashx_new ();
    self->subscriptions = zhashx_new ();
    self->topic_seq = zhashx_new ();
    self->tapped = zlistx_new ();
    self->in = zf_proto_new ();
    self->out = zf_proto_new ();
    self->dones = zf_proto_new ();
    self->confirm = zf_sessions_confirm;
    zf_store_hooks_t hooks = { .arg = self,
                               .created = s_created,
                               .stored = s_stored,
                               .kept = s_kept,
                               .acked = s_acked,
                               .retried = s_retried,
                               .finished = s_finished,
                               .dead = s_dead,
                               .lineage_over = s_lineage_over,
                               .admitted = s_admitted,
                               .answered = s_answered,
                               .paused = s_paused };
    // Every queue an actor reads exists from the start, with a consumer
    // group per reader: items put before the workers connect wait for them.
    self->store = zf_store_new (pipeline, dedup_window, &hooks);
    self->schedules = zf_schedules_new ();
    if (!self->store) {
        zf_error_set (err, ZF_ENOMEM, "no memory for a dedup window of %zu ids", dedup_window);
        s_server_destroy (&self);
        return NULL;
    }
    const char *endpoint = args->endpoint ? args->endpoint : set->endpoint;
    const char *events = args->events ? args->events : set->events;
    const char *intake = args->intake ? args->intake : set->intake;
    if (zf_auth_open (self, err)) {
        s_server_destroy (&self);
        return NULL;
    }
    self->router = zf_auth_bind (self, ZMQ_ROUTER, endpoint, args->listening, self->endpoint,
                                 sizeof self->endpoint, max_frame, args->insecure, err);
    if (self->router)
        self->events = zf_auth_bind (self, ZMQ_XPUB, events, 0, self->events_endpoint,
                                     sizeof self->events_endpoint, max_frame, args->insecure, err);
    if (self->events && intake && *intake)
        self->intake = zf_auth_bind (self, ZMQ_PULL, intake, 0, self->intake_endpoint,
                                     sizeof self->intake_endpoint, max_frame, args->insecure, err);
    if (!self->router || !self->events || (intake && *intake && !self->intake)) {
        s_server_destroy (&self);
        return NULL;
    }
    const char *journal = args->journal ? args->journal : set->journal;
    const zf_cluster_settings_t *group = &pipeline->cluster_settings;
    const char *nodes = args->cluster ? args->cluster : group->nodes;
    if (nodes && *nodes) {
        // A group keeps its log where the journal would be.
        if (!journal || !*journal) {
            zf_error_set (err, ZF_ECONFIG,
                          "cluster: a broker of a group needs a folder for its log: give "
                          "journal in the broker section or --journal DIR");
            s_server_destroy (&self);
            return NULL;
        }
        char *path = zf_pipeline_path (pipeline, journal);
        zf_cluster_args_t cluster = { .nodes = nodes,
                                      .node = args->node,
                                      .dir = path,
                                      .endpoint = self->endpoint,
                                      .election_ms = group->election_timeout,
                                      .snapshot_every = group->snapshot_every };
        int rc = zf_persist_cluster (self, &cluster, err);
        free (path);
        if (rc) {
            s_server_destroy (&self);
            return NULL;
        }
    }
    else if (journal && *journal) {
        char *path = zf_pipeline_path (pipeline, journal);
        int rc = zf_persist_open (self, path, err);
        free (path);
        if (rc) {
            s_server_destroy (&self);
            return NULL;
        }
    }
    return self;
}

//  Reads up to READ_BUDGET messages that have come on sock (its reads do
//  not wait: asking ZMQ_EVENTS first would cost a system call a message),
//  each to fn; keep_going, when given, can stop it early.
static void
s_read (zf_server_t *server, zsock_t *sock, void (*fn) (zf_server_t *server, zmsg_t *msg),
        bool (*keep_going) (zf_server_t *server))
{
    for (int i = 0; i < READ_BUDGET && (!keep_going || keep_going (server)); i++) {
        zmsg_t *msg = zmsg_recv (sock);
        if (!msg)
            break;
        fn (server, msg);
    }
}

static void
s_subscription (zf_server_t *server, zmsg_t *msg)
{
    zf_publish_subscription (server, zmsg_first (msg));
    zmsg_destroy (&msg);
}

//  A command from the broker's owner: $TERM, DIED ACTOR NUMBER PID REASON
//  (zf_broker_died), or CRASHLOOP ACTOR NUMBER PID REASON DEATHS BACKOFF
//  (zf_broker_crashloop).
static void
s_command (zf_server_t *self, zsock_t *pipe)
{
    char *command = NULL, *actor = NULL, *number = NULL, *pid = NULL, *reason = NULL;
    char *deaths = NULL, *backoff = NULL;
    if (zstr_recvx (pipe, &command, &actor, &number, &pid, &reason, &deaths, &backoff, NULL) < 1 ||
        streq (command, "$TERM"))
        self->terminated = true;
    else if (streq (command, "RELOAD") && actor && number) {
        // A new version of the config: actor is its address, number the
        // actors replaced ("OLD=NEW,...").
        zf_pipeline_t *pipeline = NULL;
        if (sscanf (actor, "%p", (void **) &pipeline) == 1 && pipeline) {
            zf_store_reconfigure (self->store, pipeline, number);
            self->pipeline = pipeline;
            zf_sessions_reloaded (self);
            zsys_info ("broker: reloaded %s: %zu queues, %zu actors", pipeline->file,
                       zlistx_size (pipeline->queues), zlistx_size (pipeline->actors));
        }
        zstr_sendx (pipe, "RELOADED", NULL); // the owner starts the new workers now
    }
    else if (streq (command, "DIED") && reason)
        zf_sessions_died (self, actor, (uint32_t) strtoul (number, NULL, 10),
                          strtoull (pid, NULL, 10), reason);
    else if (streq (command, "CRASHLOOP") && backoff) {
        // In the stats while it lasts; a backoff of 0 says it is over.
        char *key = zsys_sprintf ("%s/%s", actor, number);
        if (streq (backoff, "0"))
            zhashx_delete (self->crashloops, key);
        else {
            zhashx_update (self->crashloops, key, (void *) "");
            zf_publish_crashloop (self, actor, (uint32_t) strtoul (number, NULL, 10),
                                  strtoull (pid, NULL, 10), (uint32_t) strtoul (deaths, NULL, 10),
                                  strtoull (backoff, NULL, 10), reason);
        }
        zstr_free (&key);
    }
    zstr_free (&command);
    zstr_free (&actor);
    zstr_free (&number);
    zstr_free (&pid);
    zstr_free (&reason);
    zstr_free (&deaths);
    zstr_free (&backoff);
}

void
zf_broker_actor (zsock_t *pipe, void *args)
{
    zf_error_t err = { 0 };
    zf_server_t *self = s_server_new (pipe, (zf_broker_args_t *) args, &err);
    zsock_signal (pipe, 0);
    if (!self) {
        zstr_sendx (pipe, "ERROR", err.text, NULL);
        return;
    }
    zstr_sendx (pipe, "OK", self->endpoint, self->events_endpoint, self->intake_endpoint, NULL);

    // The journal's syncer, when there is one, says when a sync is done;
    // intake, last, is read only while it has room.
    enum { P_PIPE, P_ROUTER, P_EVENTS };
    zmq_pollitem_t items[7] = {
        { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->events), 0, ZMQ_POLLIN, 0 },
    };
    int nitems = 3, p_syncer = -1, p_zap = -1, p_intake = -1;
    if (self->zap) {
        items[nitems] = (zmq_pollitem_t){ zsock_resolve (self->zap), 0, ZMQ_POLLIN, 0 };
        p_zap = nitems++;
    }
    if (self->journal) {
        items[nitems] =
            (zmq_pollitem_t){ zsock_resolve (zf_journal_pipe (self->journal)), 0, ZMQ_POLLIN, 0 };
        p_syncer = nitems++;
    }
    if (self->cluster) {
        items[nitems] = (zmq_pollitem_t){ NULL, zf_cluster_fd (self->cluster), ZMQ_POLLIN, 0 };
        nitems++;
    }
    if (self->intake) {
        items[nitems] = (zmq_pollitem_t){ zsock_resolve (self->intake), 0, ZMQ_POLLIN, 0 };
        p_intake = nitems++;
    }
    int64_t now = zf_server_now ();
    int64_t next_tick = now + TICK_MS, next_stats = now + 1000, last_stats = now;
    while (!self->terminated) {
        now = zf_server_now ();
        int64_t wait = next_tick - now;
        int64_t due = self->journal ? zf_journal_due (self->journal, now) : -1;
        if (due >= 0 && due < wait)
            wait = due;
        due = zf_store_next_due (self->store, now); // a delayed item's time
        if (due >= 0 && due < wait)
            wait = due;
        due = self->cluster ? zf_cluster_due (self->cluster) : -1; // Raft's timers
        if (due >= 0 && due < wait)
            wait = due;
        // A schedule's firing; only the broker that serves fires them.
        due = !self->cluster || zf_cluster_serving (self->cluster) ? zf_schedules_due (self) : -1;
        if (due >= 0 && due < wait)
            wait = due;
        if (wait < 0)
            wait = 0;
        // A broker of a group that does not lead serves no one: its intake
        // waits, and its ROUTER answers with the leader's endpoint.
        bool serving = !self->cluster || zf_cluster_serving (self->cluster);
        bool quiet = self->cluster && zf_cluster_quiet (self->cluster, now);
        items[P_ROUTER].events = quiet ? 0 : ZMQ_POLLIN; // its requests wait meanwhile
        if (quiet && wait > 5)
            wait = 5;
        int count =
            p_intake >= 0 && (!serving || quiet || !zf_intake_open (self)) ? nitems - 1 : nitems;
        if (zmq_poll (items, count, (long) wait) == -1)
            break; // interrupted
        if (self->cluster) {
            zf_cluster_run (self->cluster); // replication, elections, committed entries
            if (zf_cluster_lost (self->cluster))
                break; // nothing more goes out: the owner starts it again
            serving = zf_cluster_serving (self->cluster);
        }
        if ((items[P_ROUTER].revents & ZMQ_POLLIN) && !quiet)
            s_read (self, self->router, zf_sessions_message, NULL);
        // After the ROUTER: what a worker sent before it died is in first.
        if (items[P_PIPE].revents & ZMQ_POLLIN)
            s_command (self, pipe);
        if (items[P_EVENTS].revents & ZMQ_POLLIN)
            s_read (self, self->events, s_subscription, NULL);
        if (p_zap >= 0 && (items[p_zap].revents & ZMQ_POLLIN))
            zf_auth_request (self);
        if (p_syncer >= 0 && (items[p_syncer].revents & ZMQ_POLLIN))
            zf_persist_synced (self, zf_server_now ());
        if (p_intake >= 0 && serving && !quiet && count == nitems &&
            (items[p_intake].revents & ZMQ_POLLIN))
            s_read (self, self->intake, zf_intake_message, zf_intake_open);
        now = zf_server_now ();
        if (serving && !quiet) {
            zf_store_wake (self->store, now);
            zf_schedules_run (self);
        }
        if (now >= next_tick && !quiet) {
            if (serving)
                zf_store_tick (self->store, now);
            zf_sessions_heartbeat (self, now);
            next_tick = now + TICK_MS;
        }
        if (now >= next_stats) {
            zf_publish_stats (self, now - last_stats);
            last_stats = now;
            next_stats = now + 1000;
        }
        zf_publish_flush (self);
        zf_sessions_flush_dones (self);
        zf_sessions_answer (self, now);
        zf_sessions_dispatch (self);
        // The turn's records in one write; then what is durable is confirmed.
        zf_persist_commit (self, now);
    }
    char lost[256] = "";
    if (self->cluster && zf_cluster_lost (self->cluster))
        snprintf (lost, sizeof lost, "%s", zf_cluster_lost (self->cluster));
    s_server_destroy (&self);
    if (*lost)
        zstr_sendx (pipe, "LOST", lost, NULL);
}

//  --------------------------------------------------------------------------
//  The broker as an object, for zflow run and the tests

struct _zf_broker_t {
    zf_thread_t *actor;    // the broker thread
    char *endpoint;        // bound ROUTER endpoint
    char *events;          // bound XPUB endpoint
    char *intake;          // bound PULL endpoint or ""
    char *lost;            // why a broker of a group stopped, or NULL
    bool reload;           // zflow reload asked for the config to be read again
    zf_broker_args_t args; // what it was started with
};

zf_broker_t *
zf_broker_new (zf_pipeline_t *pipeline, const char *endpoint, const char *events,
               const char *intake, zf_error_t *err)
{
    zf_broker_args_t args = {
        .pipeline = pipeline, .endpoint = endpoint, .events = events, .intake = intake
    };
    return zf_broker_start (&args, err);
}

//  The soft limit of open descriptors raised to the hard one: every
//  session, HTTP connection and journal segment takes one, and the soft
//  limit (often 1,024) is the first to run out under load.
static void
s_raise_nofile (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? 1 << 20 : limit.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &limit))
            zsys_warning ("broker: cannot raise the open-file limit to %llu: %s",
                          (unsigned long long) limit.rlim_max, strerror (errno));
    }
}

zf_broker_t *
zf_broker_start (const zf_broker_args_t *args, zf_error_t *err)
{
    s_raise_nofile ();
    zf_broker_t *self = (zf_broker_t *) zmalloc (sizeof (zf_broker_t));
    self->args = *args;
    self->actor = zf_thread_new (zf_broker_actor, &self->args);
    if (!self->actor) {
        zf_error_set (err, ZF_EIO, "cannot start the broker's thread");
        free (self);
        return NULL;
    }
    char *status = NULL, *a = NULL, *b = NULL, *c = NULL;
    zstr_recvx (zf_thread_sock (self->actor), &status, &a, &b, &c, NULL);
    if (!status || !streq (status, "OK")) {
        zf_error_set (err, ZF_EIO, "%s", a ? a : "broker did not start");
        zstr_free (&status);
        zstr_free (&a);
        zf_thread_destroy (&self->actor);
        free (self);
        return NULL;
    }
    zstr_free (&status);
    self->endpoint = a;
    self->events = b;
    self->intake = c;
    return self;
}

void
zf_broker_destroy (zf_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zf_broker_t *self = *self_p;
    zf_thread_destroy (&self->actor);
    zstr_free (&self->endpoint);
    zstr_free (&self->events);
    zstr_free (&self->intake);
    zstr_free (&self->lost);
    free (self);
    *self_p = NULL;
}

//  Reads one message of the broker thread to its owner, if one comes
//  within timeout ms: LOST (why it stopped) and RELOAD (zflow reload
//  asked for the config to be read again) are kept. Returns 1 for
//  RELOADED (a reload is done), 0 for any other, -1 when none came.
static int
s_owner_read (zf_broker_t *self, int timeout)
{
    zsock_t *pipe = zf_thread_sock (self->actor);
    zmq_pollitem_t item = { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
    char *status = NULL, *why = NULL;
    if (zmq_poll (&item, 1, timeout) != 1 || zstr_recvx (pipe, &status, &why, NULL) < 1)
        return -1;
    int done = streq (status, "RELOADED");
    if (streq (status, "LOST") && why)
        self->lost = why, why = NULL;
    else if (streq (status, "RELOAD"))
        self->reload = true;
    zstr_free (&status);
    zstr_free (&why);
    return done;
}

//  What the broker thread said to its owner, read.
static void
s_owner_messages (zf_broker_t *self)
{
    while (!self->lost && s_owner_read (self, 0) >= 0)
        ;
}

const char *
zf_broker_lost (zf_broker_t *self)
{
    s_owner_messages (self);
    return self->lost;
}

bool
zf_broker_reload_asked (zf_broker_t *self)
{
    s_owner_messages (self);
    bool asked = self->reload;
    self->reload = false;
    return asked;
}

void
zf_broker_died (zf_broker_t *self, const char *actor, int number, int pid, const char *reason)
{
    char number_text[16], pid_text[16];
    snprintf (number_text, sizeof number_text, "%d", number);
    snprintf (pid_text, sizeof pid_text, "%d", pid);
    zstr_sendx (zf_thread_sock (self->actor), "DIED", actor, number_text, pid_text, reason, NULL);
}

void
zf_broker_reload (zf_broker_t *self, zf_pipeline_t *pipeline, const char *renames)
{
    char address[32];
    snprintf (address, sizeof address, "%p", (void *) pipeline);
    zstr_sendx (zf_thread_sock (self->actor), "RELOAD", address, renames ? renames : "", NULL);
    // Done before it returns: the new actors' workers, started next, find
    // their groups renamed and declared.
    int64_t deadline = zclock_mono () + 5000;
    while (!self->lost && zclock_mono () < deadline && s_owner_read (self, 100) != 1)
        ;
}

void
zf_broker_crashloop (zf_broker_t *self, const char *actor, int number, int pid, int deaths,
                     int64_t backoff, const char *reason)
{
    char number_text[16], pid_text[16], deaths_text[16], backoff_text[24];
    snprintf (number_text, sizeof number_text, "%d", number);
    snprintf (pid_text, sizeof pid_text, "%d", pid);
    snprintf (deaths_text, sizeof deaths_text, "%d", deaths);
    snprintf (backoff_text, sizeof backoff_text, "%lld", (long long) backoff);
    zstr_sendx (zf_thread_sock (self->actor), "CRASHLOOP", actor, number_text, pid_text, reason,
                deaths_text, backoff_text, NULL);
}

const char *
zf_broker_endpoint (zf_broker_t *self)
{
    return self->endpoint;
}

const char *
zf_broker_events (zf_broker_t *self)
{
    return self->events;
}

const char *
zf_broker_intake (zf_broker_t *self)
{
    return self->intake;
}
