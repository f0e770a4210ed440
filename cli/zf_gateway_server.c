/*  zf_gateway_server: the broker's HTTP gateway, on libmicrohttpd, in
    module "gateway" (zf_gateway.c loads it): GET /metrics,
    the figures of the latest `stats` event as Prometheus text, GET /health,
    and with `api = true` a JSON API (POST /queues/Q, GET /messages/ID, GET
    /queues). One thread of its own runs it all: it subscribes to the
    broker's events like any monitor and keeps the latest stats, talks to the
    broker as a client for the API, and drives the HTTP server (in
    libmicrohttpd's external mode, on its epoll descriptor), so the broker's
    own thread never waits on HTTP. The API needs a token (api-token-file)
    beyond loopback and beside CURVE; connections are bounded per client
    address and in all; https-cert and https-key make it HTTPS. See
    zf_gateway.h and docs/tasks.md ("Over HTTP").
*/
#include "zf_gateway.h"
#include "zf_alloc.h"
#include "zf_curve.h"
#include "zf_events.h"
#include "zf_json.h"
#include "zf_mp.h"
#include "zf_proto.h"
#include "zf_sse.h"
#include "zf_steer.h"
#include "zf_tasks.h"
#include "zf_thread.h"
#include "zf_value.h"
#include "zflow.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <poll.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define STALE_MS       5000        // /health fails when no stats came for this long
#define BODY_MAX       (1 << 20)   // bytes of a POSTed body at most (and max-frame)
#define CONFIRM_MS     5000        // how long a POST waits for the broker's confirm
#define ANSWER_MS      5000        // how long a question waits for the broker's answer
#define WAIT_MAX_MS    60000       // the longest wait a GET /results may ask
#define STREAMS_MAX    256         // GET /events streams at once at most
#define STREAM_HELD    (256 << 10) // bytes an event stream holds for a slow reader
#define STREAM_PING_MS 5000        // a quiet event stream gets a comment this often
#define PREFIXES_MAX   16          // topic prefixes of one event stream at most
#define BATCH_MAX      10000       // items in one POST at most
#define GONE_CHECK_MS  1000        // how often parked connections are looked at for a hang-up
#define STREAM_IDLE_S  60          // an event stream that takes nothing this long is closed
#define STOP_MS        2000        // what is parked at stop has this long to be answered
#define DELAY_MAX_MS   ((int64_t) INT32_MAX * 1000) // an envelope's delay_ms at most

struct _zf_gateway_t {
    struct MHD_Daemon *daemon; // the HTTP server, driven by the server thread
    zf_thread_t *server;       // the server thread
    bool api;                  // serve the JSON API
    int64_t put_wait;          // ms a POSTed item waits for room in a full queue, then 503
    int64_t max_waiting;       // calls parked at most
    size_t body_max;           // bytes of a POSTed body at most
    size_t max_frame;          // bytes of an item at most (the broker's max-frame)
    zlistx_t *parked;          // s_call_t waiting for the broker (suspended connections)
    zlistx_t *for_room;        // s_call_t of them whose put waits for room in the window
    uint64_t turned_away;      // API requests answered 503 for api-max-waiting
    uint8_t *stats;            // the latest stats event's body, or NULL
    size_t stats_size;         // its size
    int64_t stats_at;          // when it came (ms, monotonic)
    uint64_t events;           // stats events seen
    zf_stats_t *decoded;       // the latest stats event read, for /metrics
    zf_client_t *client;       // a session with the broker, for the API
    zsock_t *sub;              // the broker's events: stats, and what streams follow
    zlistx_t *streams;         // zf_sse_t of GET /events
    msgpack_sbuffer pack;      // a POST's items, packed (kept from one to the next)
    bool stopping;             // the gateway stops: nothing more is parked or streamed
    int64_t gone_check_at;     // when parked connections are next looked at (ms, monotonic)
    char *token;               // what API requests must bear, or NULL
    char *cert, *key;          // PEM text of the certificate and key: HTTPS, or NULL
    char address[96];          // where it listens, ADDRESS:PORT
    char endpoint[256];        // the broker's events endpoint
    char broker[256];          // the broker's ROUTER endpoint
};

static bool s_settle (zf_gateway_t *self);
static void s_stop_parked (zf_gateway_t *self);
static void s_check_gone (zf_gateway_t *self);
static void s_event (zf_gateway_t *self, zframe_t *topic, zframe_t *body);

//  An event from the broker: the latest stats kept for /metrics; and to
//  each stream that follows its topic.
static void
s_event (zf_gateway_t *self, zframe_t *topic, zframe_t *body)
{
    if (!topic || !body)
        return;
    if (zframe_streq (topic, "stats")) {
        free (self->stats);
        self->stats = (uint8_t *) zf_alloc (zframe_size (body) + 1);
        memcpy (self->stats, zframe_data (body), zframe_size (body));
        self->stats_size = zframe_size (body);
        self->stats_at = zclock_mono ();
        self->events++;
    }
    if (zlistx_size (self->streams) == 0)
        return;
    char *name = zframe_strdup (topic);
    for (zf_sse_t *stream = (zf_sse_t *) zlistx_first (self->streams); stream;
         stream = (zf_sse_t *) zlistx_next (self->streams))
        zf_sse_event (stream, name, zframe_data (body), zframe_size (body));
    free (name);
}

//  The server thread: stats from the SUB socket, the API's session, HTTP.
static void
s_server (zsock_t *pipe, void *args)
{
    zf_gateway_t *self = (zf_gateway_t *) args;
    zf_error_t err;
    zsock_t *sub = self->sub = zf_curve_sub (self->endpoint, "stats", &err);
    if (!sub)
        zsys_error ("broker: metrics: %s", err.text);
    if (self->api) {
        self->client = zf_client_new (self->broker, "zflow-http", NULL, 0);
        if (self->client)
            zf_client_track (self->client, false);
        else
            zsys_error ("broker: the HTTP API cannot talk to the broker: %s",
                        zf_client_last_error (NULL));
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    int http = info ? info->epoll_fd : -1;
    zsock_signal (pipe, 0);
    while (sub) {
        MHD_UNSIGNED_LONG_LONG mhd_timeout = 0;
        long timeout = MHD_get_timeout (self->daemon, &mhd_timeout) == MHD_YES && mhd_timeout < 200
                           ? (long) mhd_timeout
                           : 200;
        // The broker's answers wake the loop as HTTP requests do.
        zmq_pollitem_t items[] = { { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
                                   { zsock_resolve (sub), 0, ZMQ_POLLIN, 0 },
                                   { NULL, self->client ? zf_client_fd (self->client) : -1,
                                     ZMQ_POLLIN, 0 },
                                   { NULL, http, ZMQ_POLLIN, 0 } };
        int count = http >= 0 ? 4 : 3;
        if (!self->client) {
            items[2] = items[3];
            count--;
        }
        if (zmq_poll (items, count, timeout) < 0 && zmq_errno () != EINTR)
            break;
        if (items[0].revents & ZMQ_POLLIN)
            break; // $TERM
        while (zsock_events (sub) & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv (sub);
            if (!msg)
                break;
            zframe_t *topic = zmsg_first (msg);
            s_event (self, topic, zmsg_next (msg));
            zmsg_destroy (&msg);
        }
        int64_t now = zclock_mono ();
        for (zf_sse_t *stream = (zf_sse_t *) zlistx_first (self->streams); stream;
             stream = (zf_sse_t *) zlistx_next (self->streams))
            zf_sse_ping (stream, now, STREAM_PING_MS);
        if (now >= self->gone_check_at) {
            s_check_gone (self);
            self->gone_check_at = now + GONE_CHECK_MS;
        }
        // HTTP, then the broker's answers, until neither has more to do.
        // The session is read last before the wait: a send (a put) may
        // take the signal of an answer that came meanwhile, and its
        // descriptor says so only once. The pump also sends the puts of
        // the requests just served, in a PUT a queue.
        bool busy = true;
        while (busy) {
            MHD_run (self->daemon);
            busy = false;
            if (self->client) {
                zf_client_pump (self->client, 0); // answers, and heartbeats
                busy = s_settle (self);
            }
        }
    }
    s_stop_parked (self);
    zf_client_destroy (&self->client);
    zsock_destroy (&self->sub);
}

//  --------------------------------------------------------------------------
//  Prometheus text

typedef struct {
    char *data;
    size_t len, cap;
} s_text_t;

static void s_add (s_text_t *t, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_add (s_text_t *t, const char *format, ...)
{
    va_list args;
    for (;;) {
        va_start (args, format);
        int n = vsnprintf (t->data + t->len, t->cap - t->len, format, args);
        va_end (args);
        if (n >= 0 && t->len + (size_t) n < t->cap) {
            t->len += (size_t) n;
            return;
        }
        t->cap = t->cap * 2 + (size_t) (n > 0 ? n : 64);
        t->data = (char *) realloc (t->data, t->cap);
    }
}

//  A label value, escaped as the text format wants (\\, \", \n).
static const char *
s_label (const char *str, uint32_t len, char *out, size_t size)
{
    size_t o = 0;
    for (uint32_t i = 0; i < len && o + 3 < size; i++) {
        char c = str[i];
        if (c == '\\' || c == '"') {
            out[o++] = '\\';
            out[o++] = c;
        }
        else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        }
        else
            out[o++] = c;
    }
    out[o] = 0;
    return out;
}

//  One family of Prometheus metrics: its name, type and help.
static void
s_family (s_text_t *t, const char *name, const char *type, const char *help)
{
    s_add (t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
s_scalar (s_text_t *t, const char *name, const char *type, const char *help, uint64_t value)
{
    s_family (t, name, type, help);
    s_add (t, "%s %llu\n", name, (unsigned long long) value);
}

//  Each queue's figures.
static void
s_queue_metrics (s_text_t *t, zf_stats_t *stats)
{
    char label[3][512];
    struct {
        const char *name, *type, *help;
    } queue_metrics[] = {
        { "zflow_queue_depth", "gauge", "Items stored in the queue, waiting or in flight." },
        { "zflow_queue_inflight", "gauge", "Items delivered and not yet acked." },
        { "zflow_queue_put_total", "counter", "Items accepted into the queue." },
        { "zflow_queue_acked_total", "counter", "Items acked." },
        { "zflow_queue_nacked_total", "counter", "NACKs, timeouts and losses." },
        { "zflow_queue_dead_total", "counter", "Items moved to the dead-letter queue." },
        { "zflow_queue_paused", "gauge", "1 while an operator has paused the queue." },
    };
    for (int m = 0; m < 7; m++) {
        s_family (t, queue_metrics[m].name, queue_metrics[m].type, queue_metrics[m].help);
        for (uint32_t q = 0; q < stats->nqueues; q++) {
            zf_stats_queue_t *queue = &stats->queues[q];
            const zf_figures_t *f = &queue->figures;
            uint64_t values[] = {
                f->depth, f->inflight, f->put, f->ack, f->nack, f->dead, f->paused
            };
            s_add (t, "%s{queue=\"%s\"} %llu\n", queue_metrics[m].name,
                   s_label (f->name, (uint32_t) strlen (f->name), label[0], sizeof label[0]),
                   (unsigned long long) values[m]);
        }
    }
}

//  Each worker's figures, as the broker counts them.
static void
s_worker_metrics (s_text_t *t, zf_stats_t *stats)
{
    char label[3][512];
    struct {
        const char *name, *type, *help;
    } worker_metrics[] = {
        { "zflow_worker_inflight", "gauge", "Items the worker holds." },
        { "zflow_worker_done_total", "counter", "Items the worker acked." },
        { "zflow_worker_failed_total", "counter", "Items the worker nacked." },
    };
    for (int m = 0; m < 3; m++) {
        s_family (t, worker_metrics[m].name, worker_metrics[m].type, worker_metrics[m].help);
        for (uint32_t w = 0; w < stats->nworkers; w++) {
            zf_stats_worker_t *worker = &stats->workers[w];
            uint64_t value = m == 0 ? worker->inflight : m == 1 ? worker->done : worker->failed;
            s_add (
                t, "%s{actor=\"%s\",worker=\"%u\",host=\"%s\"} %llu\n", worker_metrics[m].name,
                s_label (worker->actor, (uint32_t) strlen (worker->actor), label[0],
                         sizeof label[0]),
                worker->worker,
                s_label (worker->host, (uint32_t) strlen (worker->host), label[1], sizeof label[1]),
                (unsigned long long) value);
        }
    }
}

//  What workers say of themselves (their PINGs' figures): each number at
//  the top of the map, such as a sink's write_failures and waiting_ms.
static void
s_worker_figures (s_text_t *t, zf_stats_t *stats)
{
    char label[3][512];
    s_family (t, "zflow_worker_figure", "gauge",
              "A figure a worker gives of itself: a sink's write_failures and waiting_ms (for "
              "a full disk), a fetcher's requests, ...");
    for (uint32_t w = 0; w < stats->nworkers; w++) {
        zf_stats_worker_t *worker = &stats->workers[w];
        zf_mp_t mp;
        zf_mp_init (&mp, worker->figures, worker->figures_size);
        uint32_t count = 0;
        if (!worker->figures || zf_mp_map (&mp, &count, NULL))
            continue;
        for (uint32_t i = 0; i < count; i++) {
            const char *key;
            uint32_t key_len;
            if (zf_mp_str (&mp, &key, &key_len, NULL))
                break;
            zf_mp_type_t type = zf_mp_peek (&mp);
            uint64_t value = 0;
            int64_t negative = 0;
            if (type == ZF_MP_UINT  ? zf_mp_uint (&mp, &value, NULL)
                : type == ZF_MP_INT ? zf_mp_int (&mp, &negative, NULL)
                                    : zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL))
                break;
            if (type != ZF_MP_UINT && type != ZF_MP_INT)
                continue;
            s_add (t, "zflow_worker_figure{actor=\"%s\",worker=\"%u\",figure=\"%s\"} %lld\n",
                   s_label (worker->actor, (uint32_t) strlen (worker->actor), label[0],
                            sizeof label[0]),
                   worker->worker, s_label (key, key_len, label[1], sizeof label[1]),
                   type == ZF_MP_UINT ? (long long) value : (long long) negative);
        }
    }
}

//  Each consumer group's figures.
static void
s_group_metrics (s_text_t *t, zf_stats_t *stats)
{
    char label[3][512];
    struct {
        const char *name, *type, *help;
    } group_metrics[] = {
        { "zflow_group_workers", "gauge", "Workers of the consumer group connected now." },
        { "zflow_group_ready", "gauge", "Items waiting for a worker of the group." },
        { "zflow_group_acked_total", "counter", "Deliveries the group acked." },
        { "zflow_group_throttled", "gauge",
          "Of the items ready, those waiting for their key's limit (rate-per-key, "
          "max-in-flight-per-key)." },
        { "zflow_group_keys", "gauge", "Keys the group holds items of (its queue has a key)." },
    };
    for (int m = 0; m < 5; m++) {
        s_family (t, group_metrics[m].name, group_metrics[m].type, group_metrics[m].help);
        for (uint32_t q = 0; q < stats->nqueues; q++)
            for (uint32_t g = 0; g < stats->queues[q].ngroups; g++) {
                zf_stats_group_t *group = &stats->queues[q].groups[g];
                const char *queue = stats->queues[q].figures.name;
                uint64_t values[] = { group->workers, group->ready, group->acked, group->throttled,
                                      group->keys };
                s_add (t, "%s{queue=\"%s\",group=\"%s\"} %llu\n", group_metrics[m].name,
                       s_label (queue, (uint32_t) strlen (queue), label[0], sizeof label[0]),
                       s_label (group->name, (uint32_t) strlen (group->name), label[1],
                                sizeof label[1]),
                       (unsigned long long) values[m]);
            }
    }
}

//  The busiest keys of each group: at most ZF_TOP_KEYS a group, so that
//  the series stay bounded however many keys there are.
static void
s_key_metrics (s_text_t *t, zf_stats_t *stats)
{
    char label[3][512];
    static const struct {
        const char *name, *help;
    } key_metrics[] = {
        { "zflow_key_ready", "Items of the key waiting (the group's busiest keys)." },
        { "zflow_key_inflight", "Items of the key held by workers (the group's busiest keys)." },
    };
    for (int m = 0; m < 2; m++) {
        s_family (t, key_metrics[m].name, "gauge", key_metrics[m].help);
        for (uint32_t q = 0; q < stats->nqueues; q++)
            for (uint32_t g = 0; g < stats->queues[q].ngroups; g++) {
                zf_stats_group_t *group = &stats->queues[q].groups[g];
                const char *queue = stats->queues[q].figures.name;
                for (uint32_t k = 0; k < group->ntop; k++) {
                    zf_stats_key_t *key = &group->top[k];
                    s_add (
                        t, "%s{queue=\"%s\",group=\"%s\",key=\"%s\"} %llu\n", key_metrics[m].name,
                        s_label (queue, (uint32_t) strlen (queue), label[0], sizeof label[0]),
                        s_label (group->name, (uint32_t) strlen (group->name), label[1],
                                 sizeof label[1]),
                        s_label (key->key, (uint32_t) strlen (key->key), label[2], sizeof label[2]),
                        (unsigned long long) (m == 0 ? key->ready : key->inflight));
                }
            }
    }
}

//  The broker's own figures: workers in crash loops, lineages, refusals,
//  its journal.
static void
s_broker_metrics (s_text_t *t, zf_stats_t *stats, uint64_t events)
{
    char label[3][512];
    s_family (t, "zflow_crashloop", "gauge",
              "1 for a worker in a crash loop now: zflow run restarts it 1 s to 60 s apart.");
    for (uint32_t c = 0; c < stats->ncrashloops; c++) {
        const char *name = stats->crashloops[c], *slash = strrchr (name, '/');
        uint32_t len = slash ? (uint32_t) (slash - name) : (uint32_t) strlen (name);
        s_add (t, "zflow_crashloop{actor=\"%s\",worker=\"%s\"} 1\n",
               s_label (name, len, label[0], sizeof label[0]), slash ? slash + 1 : "");
    }
    s_scalar (t, "zflow_lineages", "gauge", "Roots whose lineage is not finished.",
              stats->lineages);
    s_scalar (t, "zflow_rejected_total", "counter", "Messages refused as malformed.",
              stats->rejected);
    s_scalar (t, "zflow_late_acks_total", "counter", "Acks of deliveries that had timed out.",
              stats->late_acks);
    if (stats->journal.present) {
        zf_stats_journal_t *j = &stats->journal;
        s_scalar (t, "zflow_journal_written_bytes_total", "counter",
                  "Bytes appended to the journal.", j->written);
        s_scalar (t, "zflow_journal_durable_bytes_total", "counter",
                  "Bytes of the journal on disk (synced as the sync setting says).", j->durable);
        s_scalar (t, "zflow_journal_waiting_confirms", "gauge",
                  "CONFIRMs held until their records are durable.", j->waiting);
        s_scalar (t, "zflow_journal_compactions_total", "counter",
                  "Snapshots written to compact the journal.", j->compactions);
        s_scalar (t, "zflow_journal_failing", "gauge",
                  "1 while the journal cannot write (a full disk): confirms wait, the broker "
                  "tries again.",
                  j->failed[0] != 0);
    }
    s_scalar (t, "zflow_stats_events_total", "counter", "Stats events read.", events);
}

//  The figures of a stats event as Prometheus text; NULL when the event
//  cannot be read.
static char *
s_prometheus (zf_stats_t *stats, const uint8_t *data, size_t size, uint64_t events, size_t *len)
{
    zf_error_t err;
    if (zf_stats_decode (stats, data, size, &err))
        return NULL;
    s_text_t t = { .data = (char *) malloc (4096), .cap = 4096 };
    s_queue_metrics (&t, stats);
    s_worker_metrics (&t, stats);
    s_worker_figures (&t, stats);
    s_group_metrics (&t, stats);
    s_key_metrics (&t, stats);
    s_broker_metrics (&t, stats, events);
    *len = t.len;
    return t.data;
}

//  --------------------------------------------------------------------------
//  HTTP

static enum MHD_Result
s_answer (struct MHD_Connection *connection, unsigned status, const char *type, char *body,
          size_t len)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer (len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (response, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

//  What a call parked for the broker asked.
typedef enum { S_PUT, S_RESULT, S_ITEM, S_CANCEL, S_QUEUES, S_STEER } s_kind_t;

typedef struct _s_call_t s_call_t;

//  One item a call puts, or the one question it asks: its broker request
//  and, once answered, how.
typedef struct {
    s_call_t *call;               // the call it is part of
    uint8_t *item;                // a put's item (msgpack, owned)
    size_t item_size;             // its size
    zf_put_opts_t opts;           // its options (headers: a copy, owned)
    zf_id_t id;                   // the item put or asked about
    zf_request_t *request;        // in flight, or NULL
    zf_request_outcome_t outcome; // a put's, once answered
    char *error;                  // a put refused: why (owned)
    zf_refusal_t refusal;         // refused by the broker: the kind of it
} s_part_t;

//  One HTTP request, between the calls libmicrohttpd makes for it: the
//  body POSTed so far; while it waits for the broker (its connection
//  suspended, so that the server serves others), its parts' requests;
//  then the answer to give.
struct _s_call_t {
    zf_gateway_t *gateway;             // the gateway serving it
    struct MHD_Connection *connection; // its connection
    char *body;                        // what was POSTed so far
    size_t size;                       // its size
    bool big;                          // over body_max: refused
    s_kind_t kind;                     // what it asked the broker
    bool batch;                        // a put of many items (NDJSON, ?batch=1)
    s_part_t *parts;                   // what it puts (one or many) or asks (one)
    size_t count;                      // how many
    size_t sent;                       // puts sent so far (the rest wait for room)
    size_t left;                       // parts not answered yet
    void *handle;                      // in the gateway's parked list, or NULL
    void *room_handle;                 // in its list of puts waiting for room, or NULL
    char queue[ZF_NAME_MAX + 8];       // a put's queue, or the queue steered
    bool listing;                      // steering: a listing of dead letters
    bool schedules;                    // steering: of schedules (answered with them)
    char schedule[ZF_NAME_MAX + 1];    // the schedule it is of, or "" for all
    bool answered;                     // the answer below is ready
    unsigned status;                   // its HTTP status
    char *answer;                      // its body (JSON), owned
    int64_t retry_ms;                  // a 503's Retry-After, or 0
};

static void s_unpark (s_call_t *call);

static void
s_done (void *cls, struct MHD_Connection *connection, void **state,
        enum MHD_RequestTerminationCode code)
{
    (void) cls;
    (void) connection;
    (void) code;
    s_call_t *call = (s_call_t *) *state;
    if (call) {
        s_unpark (call);
        for (size_t i = 0; i < call->count; i++) {
            s_part_t *part = &call->parts[i];
            zf_request_destroy (&part->request); // forgotten: its answer is dropped
            free (part->item);
            free ((void *) part->opts.headers);
            free (part->error);
        }
        free (call->parts);
        free (call->body);
        free (call->answer);
        free (call);
        *state = NULL;
    }
}

//  {"error": TEXT} as JSON text (free it).
static char *s_error (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static char *
s_error (const char *format, ...)
{
    char text[512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    zf_mp_pack_cstr (&pk, "error");
    zf_mp_pack_cstr (&pk, text);
    char *json = zf_msgpack_to_json (buffer.data, buffer.size, NULL);
    msgpack_sbuffer_destroy (&buffer);
    char *line = zsys_sprintf ("%s\n", json ? json : "{}");
    free (json);
    return line;
}

//  The answer to a body over the limit.
static char *
s_too_big (zf_gateway_t *self)
{
    return s_error ("the body is over %zu bytes (%s)", self->body_max,
                    self->body_max < BODY_MAX ? "the broker's max-frame" : "the gateway's limit");
}

static enum MHD_Result
s_json (struct MHD_Connection *connection, unsigned status, char *body)
{
    return s_answer (connection, status, "application/json", body, strlen (body));
}

//  The answer of call: status and its JSON body (taken); a 503 says to
//  retry after retry_ms (whole seconds, at least 1): busy, not broken.
static void
s_reply (s_call_t *call, unsigned status, char *body, int64_t retry_ms)
{
    free (call->answer);
    call->answer = body;
    call->status = status;
    call->retry_ms = retry_ms;
    call->answered = true;
}

//  Gives call's answer on its connection.
static enum MHD_Result
s_give (s_call_t *call)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        strlen (call->answer), call->answer, MHD_RESPMEM_MUST_FREE);
    call->answer = NULL; // the response's now
    MHD_add_response_header (response, "Content-Type", "application/json");
    if (call->retry_ms) {
        char seconds[24];
        snprintf (seconds, sizeof seconds, "%lld", (long long) (call->retry_ms + 999) / 1000);
        MHD_add_response_header (response, "Retry-After", seconds);
    }
    enum MHD_Result rc = MHD_queue_response (call->connection, call->status, response);
    MHD_destroy_response (response);
    return rc;
}

//  Parks call, its connection suspended until the broker answered its
//  parts; for_room: some of its puts wait for room in the PUT window.
static void
s_park (s_call_t *call, bool for_room)
{
    zf_gateway_t *self = call->gateway;
    call->handle = zlistx_add_end (self->parked, call);
    if (for_room)
        call->room_handle = zlistx_add_end (self->for_room, call);
    MHD_suspend_connection (call->connection);
}

//  Takes call off the gateway's lists (it may not be on them).
static void
s_unpark (s_call_t *call)
{
    if (call->room_handle)
        zlistx_delete (call->gateway->for_room, call->room_handle);
    if (call->handle)
        zlistx_delete (call->gateway->parked, call->handle);
    call->room_handle = call->handle = NULL;
}

//  Call answered: its connection resumed, to give the answer.
static void
s_resume (s_call_t *call)
{
    s_unpark (call);
    MHD_resume_connection (call->connection);
}

//  An envelope, {"body": ITEM, "delay_ms": N, "not_before": MS, "priority":
//  P, "headers": {NAME: VALUE}} with body and only these keys: the item's
//  bytes (a view into data) and its options (headers too a view). False
//  when data is any other value, an item as it is.
static bool
s_envelope (const uint8_t *data, size_t size, const uint8_t **body, size_t *body_size,
            zf_put_opts_t *opts)
{
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    uint32_t count;
    if (zf_mp_peek (&mp) != ZF_MP_MAP || zf_mp_map (&mp, &count, NULL) || count == 0 || count > 5)
        return false;
    zf_put_opts_t found = { 0 };
    const uint8_t *at = NULL;
    for (uint32_t i = 0; i < count; i++) {
        const char *key;
        uint32_t len;
        int64_t number = 0;
        if (zf_mp_str (&mp, &key, &len, NULL))
            return false;
        if (len == 4 && memcmp (key, "body", 4) == 0) {
            at = mp.pos;
            if (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL))
                return false;
            *body_size = (size_t) (mp.pos - at);
        }
        else if (len == 7 && memcmp (key, "headers", 7) == 0) {
            found.headers = mp.pos;
            if (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL))
                return false;
            found.headers_size = (size_t) (mp.pos - (const uint8_t *) found.headers);
        }
        else if (zf_mp_int (&mp, &number, NULL))
            return false;
        else if (len == 8 && memcmp (key, "delay_ms", 8) == 0) {
            if (number < 0 || number > DELAY_MAX_MS)
                return false; // as Zflow-Delay: at most a duration parses to
            found.delay_ms = number;
        }
        else if (len == 10 && memcmp (key, "not_before", 10) == 0)
            found.not_before = number;
        else if (len == 8 && memcmp (key, "priority", 8) == 0)
            found.priority = (int) (number < 0 || number > 9 ? -1 : number);
        else
            return false;
    }
    if (!at)
        return false;
    *body = at;
    *opts = found;
    return true;
}

//  The Zflow-Delay (a duration), Zflow-Not-Before (ms since the Unix epoch)
//  and Zflow-Priority headers into opts. NULL, or what is wrong.
static const char *
s_put_headers (struct MHD_Connection *connection, zf_put_opts_t *opts)
{
    const char *delay = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Zflow-Delay");
    const char *at = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Zflow-Not-Before");
    const char *priority =
        MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Zflow-Priority");
    zf_error_t err;
    int64_t value;
    if (delay && zf_parse_duration (delay, &opts->delay_ms, &err))
        return "Zflow-Delay is not a duration (e.g. 250ms, 10s, 5m)";
    if (at && (zf_parse_int (at, &opts->not_before, &err) || opts->not_before < 0))
        return "Zflow-Not-Before is not a time in ms since the Unix epoch";
    if (priority && (zf_parse_int (priority, &value, &err) || value < 0 || value > 9))
        return "Zflow-Priority is not a priority from 0 to 9";
    if (priority)
        opts->priority = (int) value;
    return NULL;
}

//  Sends call's puts not sent yet, each a request of its own, as far as
//  the PUT window has room; true once all are sent. One too large to send
//  (an item's msgpack can outgrow its JSON: over max-frame) is refused at
//  once; with no session to send it on (no WELCOME yet, or refused), it
//  fails at once.
static bool
s_send_puts (s_call_t *call)
{
    zf_client_t *client = call->gateway->client;
    for (; call->sent < call->count && zf_client_put_room (client) > 0; call->sent++) {
        s_part_t *part = &call->parts[call->sent];
        // Its confirm may wait for room in a full queue first (api-put-wait).
        int timeout = CONFIRM_MS + (int) call->gateway->put_wait;
        part->request = zf_client_put_request (client, call->queue, part->item, part->item_size,
                                               &part->opts, &part->id, timeout, part);
        if (!part->request) {
            part->outcome =
                part->item_size > call->gateway->max_frame ? ZF_REQUEST_REFUSED : ZF_REQUEST_FAILED;
            part->error = zf_strdup (zf_client_last_error (client));
            // Never given one: an id all the same for the answer's list,
            // one the broker does not know (not the zero id, which is no id).
            if (zf_id_is_zero (&part->id))
                part->id = zf_id_random ();
            call->left--;
        }
    }
    return call->sent == call->count;
}

//  The buffer a POST's items are packed into, kept for the next one (an
//  8 KiB allocation a request otherwise); one that grew past 64 KiB for a
//  large body is let go.
static void
s_pack_done (zf_gateway_t *self)
{
    if (self->pack.alloc > 65536) {
        msgpack_sbuffer_destroy (&self->pack);
        msgpack_sbuffer_init (&self->pack);
    }
}

//  The items of a POST's body: one JSON value; or with batch, a JSON array
//  of them or (ndjson) one per line. Each into a part of call, its options
//  from the envelope it is in (if envelopes) and the request's Zflow-*
//  headers. NULL, or what is wrong (in wrong).
static const char *
s_put_parts (s_call_t *call, bool ndjson, bool envelopes, char *wrong, size_t size)
{
    const char *text = call->body ? call->body : "";
    // -1: the header is not there (0 is a value it may give).
    zf_put_opts_t headers = { .delay_ms = -1, .not_before = -1, .priority = -1 };
    const char *bad = s_put_headers (call->connection, &headers);
    if (bad)
        return snprintf (wrong, size, "%s", bad), wrong;
    // The body as msgpack: the item, the array of them, or NDJSON's lines
    // one after the other.
    msgpack_sbuffer *buffer = &call->gateway->pack;
    msgpack_sbuffer_clear (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    zf_error_t err;
    size_t count = 0;
    if (ndjson) {
        // Lines by the body's size, not by a NUL: a NUL is no JSON.
        const char *end = text + call->size;
        size_t line = 0;
        for (const char *at = text; at < end; line++) {
            const char *newline = (const char *) memchr (at, '\n', (size_t) (end - at));
            size_t len = newline ? (size_t) (newline - at) : (size_t) (end - at);
            size_t blank = 0;
            while (blank < len && isspace ((unsigned char) at[blank]))
                blank++;
            if (blank < len) {
                if (zf_json_to_msgpack (at, len, &pk, &err)) {
                    s_pack_done (call->gateway);
                    return snprintf (wrong, size, "line %zu is not JSON: %s", line + 1, err.text),
                           wrong;
                }
                count++;
            }
            at += len + (newline != NULL);
        }
    }
    else if (zf_json_to_msgpack (text, call->size, &pk, &err)) {
        s_pack_done (call->gateway);
        return snprintf (wrong, size, "the body is not JSON: %s", err.text), wrong;
    }
    zf_mp_t mp;
    zf_mp_init (&mp, (const uint8_t *) buffer->data, buffer->size);
    uint32_t listed = 1;
    if (!ndjson && call->batch &&
        (zf_mp_peek (&mp) != ZF_MP_ARRAY || zf_mp_array (&mp, &listed, NULL))) {
        s_pack_done (call->gateway);
        return snprintf (wrong, size, "?batch=1 takes a JSON array of items"), wrong;
    }
    if (!ndjson)
        count = call->batch ? listed : 1;
    if (count == 0 || count > BATCH_MAX) {
        s_pack_done (call->gateway);
        if (count)
            snprintf (wrong, size, "%zu items in one request; at most %d", count, BATCH_MAX);
        else
            snprintf (wrong, size, "no items in the body");
        return wrong;
    }
    call->parts = (s_part_t *) zf_alloc (count * sizeof (s_part_t));
    call->count = call->left = count;
    for (size_t i = 0; i < count; i++) {
        s_part_t *part = &call->parts[i];
        part->call = call;
        const uint8_t *at = mp.pos;
        zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL); // read whole above
        const uint8_t *body = at;
        size_t body_size = (size_t) (mp.pos - at);
        zf_put_opts_t opts = { 0 };
        if (envelopes && !s_envelope (at, body_size, &body, &body_size, &opts))
            bad = "is not an envelope: {\"body\": ITEM} with only delay_ms (from 0), "
                  "not_before, priority and headers beside it";
        else if (opts.priority < 0)
            bad = "has a priority not from 0 to 9";
        char why[320];
        if (!bad && opts.headers_size &&
            zf_proto_check_headers (opts.headers, opts.headers_size, &err)) {
            snprintf (why, sizeof why, "has headers that are wrong: %s", err.text);
            bad = why;
        }
        if (bad) {
            if (call->batch)
                snprintf (wrong, size, "item %zu %s", i + 1, bad);
            else
                snprintf (wrong, size, "the item %s", bad);
            s_pack_done (call->gateway);
            return wrong;
        }
        // The headers of the request stand for every item.
        if (headers.delay_ms >= 0)
            opts.delay_ms = headers.delay_ms;
        if (headers.not_before >= 0)
            opts.not_before = headers.not_before;
        if (headers.priority >= 0)
            opts.priority = headers.priority;
        part->item = (uint8_t *) zf_alloc (body_size + 1);
        memcpy (part->item, body, body_size);
        part->item_size = body_size;
        if (opts.headers_size) {
            void *copy = zf_alloc (opts.headers_size);
            memcpy (copy, opts.headers, opts.headers_size);
            opts.headers = copy;
        }
        // A full queue answers in a short while, so that a web handler can
        // say "busy, try later" rather than hang.
        opts.wait_ms = call->gateway->put_wait;
        part->opts = opts;
    }
    s_pack_done (call->gateway);
    return NULL;
}

//  A request header's value is yes: 1, true or yes.
static bool
s_yes (struct MHD_Connection *connection, enum MHD_ValueKind kind, const char *name)
{
    const char *value = MHD_lookup_connection_value (connection, kind, name);
    return value && (streq (value, "1") || strcasecmp (value, "true") == 0 ||
                     strcasecmp (value, "yes") == 0);
}

static void s_put_reply (s_call_t *call);

//  POST /queues/Q: the JSON body is one item, put with a fresh id; with
//  Content-Type application/x-ndjson, one item per line, or with ?batch=1
//  a JSON array of items. With Zflow-Envelope: 1, each is an envelope of
//  its item and options. Parked until the broker confirms them all (or
//  refuses some: a full queue, once api-put-wait passed, answers 503 with
//  Retry-After).
static void
s_api_put (s_call_t *call, const char *queue)
{
    struct MHD_Connection *connection = call->connection;
    if (call->big) {
        s_reply (call, 413, s_too_big (call->gateway), 0);
        return;
    }
    if (!*queue || strlen (queue) > ZF_NAME_MAX) {
        s_reply (call, 400, s_error ("'%.64s' is no queue name", queue), 0);
        return;
    }
    const char *type = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Content-Type");
    bool ndjson = type && (strncasecmp (type, "application/x-ndjson", 20) == 0 ||
                           strncasecmp (type, "application/jsonl", 17) == 0);
    call->batch = ndjson || s_yes (connection, MHD_GET_ARGUMENT_KIND, "batch");
    char wrong[512];
    if (s_put_parts (call, ndjson, s_yes (connection, MHD_HEADER_KIND, "Zflow-Envelope"), wrong,
                     sizeof wrong)) {
        s_reply (call, 400, s_error ("%s", wrong), 0);
        return;
    }
    zstr_free (&call->body); // its items are in its parts now
    snprintf (call->queue, sizeof call->queue, "%s", queue);
    bool all_sent = s_send_puts (call);
    if (call->left)
        s_park (call, !all_sent);
    else
        s_put_reply (call); // refused, every one, at once
}

//  The HTTP status of a refused put, and the Retry-After of a 503: a full
//  queue is busy, not broken.
static unsigned
s_refused_status (s_call_t *call, const s_part_t *part, int64_t *retry_ms)
{
    *retry_ms = 0;
    if (part->outcome == ZF_REQUEST_FAILED) {
        *retry_ms = 1000;
        return 503;
    }
    switch (part->refusal) {
        case ZF_REFUSAL_FULL:
            *retry_ms = call->gateway->put_wait;
            return 503;
        case ZF_REFUSAL_NO_QUEUE:
            return 404;
        case ZF_REFUSAL_NONE:
            return 413; // refused before it was sent: over max-frame (s_send_puts)
        default:
            return 507; // a result past the store's limits; a kind unknown
    }
}

//  The kind of a refused part, as a batch's answer names it: full and
//  unavailable are worth putting again later; too-big, no-queue and
//  results are not.
static const char *
s_refused_kind (const s_part_t *part)
{
    if (part->outcome == ZF_REQUEST_FAILED)
        return "unavailable";
    if (part->refusal == ZF_REFUSAL_NONE)
        return "too-big"; // refused before it was sent (s_send_puts)
    return zf_refusal_name (part->refusal);
}

//  The answer of a put whose parts the broker all answered (or did not in
//  time). A timeout may have stored its item: never "failed" then, but
//  202 with "unconfirmed"; the session sends it again until the broker
//  confirms it.
static void
s_put_reply (s_call_t *call)
{
    size_t refused = 0, unconfirmed = 0, first_refused = 0;
    for (size_t i = call->count; i-- > 0;) {
        zf_request_outcome_t outcome = call->parts[i].outcome;
        if (outcome == ZF_REQUEST_REFUSED || outcome == ZF_REQUEST_FAILED) {
            refused++;
            first_refused = i;
        }
        unconfirmed += outcome == ZF_REQUEST_TIMEOUT;
    }
    int64_t retry_ms = 0;
    unsigned status = refused ? s_refused_status (call, &call->parts[first_refused], &retry_ms)
                      : unconfirmed ? 202
                                    : 200;
    char hex[ZF_ID_HEX];
    if (!call->batch) {
        zf_id_format (&call->parts[0].id, hex);
        if (refused)
            s_reply (call, status, s_error ("%s", call->parts[0].error), retry_ms);
        else if (unconfirmed)
            s_reply (call, 202,
                     zsys_sprintf ("{\"id\":\"%s\",\"state\":\"unconfirmed\",\"note\":\"the "
                                   "broker has not confirmed it yet: GET /messages/%s says when "
                                   "it has\"}\n",
                                   hex, hex),
                     0);
        else
            s_reply (call, 200, zsys_sprintf ("{\"id\":\"%s\"}\n", hex), 0);
        return;
    }
    // A batch: every item's id, in order, and which were not confirmed or
    // were refused (by their index from 0) and the kind of each refusal,
    // so that a client puts again only those worth it. Its status is the
    // first refusal's.
    s_text_t t = { .data = (char *) zf_alloc (64 + call->count * 36),
                   .cap = 64 + call->count * 36 };
    s_add (&t, "{\"ids\":[");
    for (size_t i = 0; i < call->count; i++) {
        zf_id_format (&call->parts[i].id, hex);
        s_add (&t, "%s\"%s\"", i ? "," : "", hex);
    }
    s_add (&t, "]");
    for (int pass = 0; pass < 2; pass++) {
        if (!(pass ? refused : unconfirmed))
            continue;
        s_add (&t, ",\"%s\":[", pass ? "refused" : "unconfirmed");
        const char *comma = "";
        for (size_t i = 0; i < call->count; i++) {
            zf_request_outcome_t outcome = call->parts[i].outcome;
            if (pass ? outcome == ZF_REQUEST_REFUSED || outcome == ZF_REQUEST_FAILED
                     : outcome == ZF_REQUEST_TIMEOUT) {
                s_add (&t, "%s%zu", comma, i);
                comma = ",";
            }
        }
        s_add (&t, "]");
    }
    if (refused) {
        s_add (&t, ",\"kinds\":[");
        const char *comma = "";
        for (size_t i = 0; i < call->count; i++) {
            zf_request_outcome_t outcome = call->parts[i].outcome;
            if (outcome == ZF_REQUEST_REFUSED || outcome == ZF_REQUEST_FAILED) {
                s_add (&t, "%s\"%s\"", comma, s_refused_kind (&call->parts[i]));
                comma = ",";
            }
        }
        s_add (&t, "]");
        char *error = s_error ("%s", call->parts[first_refused].error);
        error[strlen (error) - 2] = 0; // {"error":"..."} without its } and newline
        s_add (&t, ",%s", error + 1);
        free (error);
    }
    s_add (&t, "}\n");
    s_reply (call, status, t.data, retry_ms);
}

//  A put of call answered (or not in time): once all are, its answer.
static void
s_put_answered (s_part_t *part, zf_request_t *request)
{
    s_call_t *call = part->call;
    part->outcome = zf_request_outcome (request);
    if (part->outcome == ZF_REQUEST_REFUSED || part->outcome == ZF_REQUEST_FAILED)
        part->error = zf_strdup (zf_request_error (request));
    part->refusal = zf_request_refusal (request);
    if (--call->left == 0)
        s_put_reply (call);
}

//  GET /queues: the figures of every queue.
static void
s_queues_answered (s_call_t *call, zf_request_t *request)
{
    size_t count = 0;
    zf_figures_t *queues = zf_request_take_queues (request, &count);
    if (!queues) {
        s_reply (call, 503, s_error ("the broker did not answer"), 1000);
        return;
    }
    s_text_t t = { .data = (char *) zf_alloc (1024), .cap = 1024 };
    s_add (&t, "[");
    for (size_t i = 0; i < count; i++) {
        char name[2 * ZF_NAME_MAX + 2];
        s_label (queues[i].name, (uint32_t) strlen (queues[i].name), name, sizeof name);
        s_add (&t,
               "%s{\"name\":\"%s\",\"depth\":%llu,\"inflight\":%llu,\"put\":%llu,\"ack\":%llu,"
               "\"nack\":%llu,\"dead\":%llu,\"consumers\":%u,\"paused\":%s}",
               i ? "," : "", name, (unsigned long long) queues[i].depth,
               (unsigned long long) queues[i].inflight, (unsigned long long) queues[i].put,
               (unsigned long long) queues[i].ack, (unsigned long long) queues[i].nack,
               (unsigned long long) queues[i].dead, queues[i].consumers,
               queues[i].paused ? "true" : "false");
    }
    s_add (&t, "]\n");
    free (queues);
    s_reply (call, 200, t.data, 0);
}

//  GET /messages/ID (an item's state, as zflow status says it), DELETE of
//  it (the root's id and state once cancelled), GET /results/ID[?wait=30s]
//  (a root's state and results; with wait, once its lineage is over or the
//  wait passed: 200 either way, the state says).
static void
s_state_answered (s_call_t *call, zf_request_t *request)
{
    zf_result_t *result = zf_request_take_result (request);
    if (!result) {
        s_reply (call, 503, s_error ("the broker did not answer"), 1000);
        return;
    }
    char hex[ZF_ID_HEX];
    zf_id_format (&call->parts[0].id, hex);
    const char *state = zf_result_state (result);
    bool unknown = streq (state, "unknown");
    if (call->kind == S_CANCEL)
        s_reply (call, unknown ? 404 : 200,
                 zsys_sprintf ("{\"id\":\"%s\",\"state\":\"%s\"}\n", hex, state), 0);
    else if (call->kind == S_ITEM)
        s_reply (call, unknown ? 404 : 200, zf_tasks_item_json (result, hex), 0);
    else {
        char *json = zf_tasks_result_json (result, hex);
        s_reply (call, unknown ? 404 : 200, zsys_sprintf ("%s\n", json), 0);
        free (json);
    }
    zf_result_destroy (&result);
}

//  The id in the URL's last part into the call's question; false (and
//  the answer 400) if it is none.
static bool
s_id (s_call_t *call, const char *hex)
{
    zf_id_t *id = &call->parts[0].id;
    if (zf_id_parse (id, hex) == 0 && !zf_id_is_zero (id))
        return true;
    s_reply (call, 400, s_error ("'%.64s' is not an id (32 hex digits, not all zero)", hex), 0);
    return false;
}

//  A question for the broker about call: parked until it is answered.
static void
s_ask (s_call_t *call, const char *url)
{
    zf_gateway_t *self = call->gateway;
    call->parts = (s_part_t *) zf_alloc (sizeof (s_part_t));
    call->count = call->left = 1;
    s_part_t *part = &call->parts[0];
    part->call = call;
    if (call->kind == S_QUEUES)
        part->request = zf_client_figures_request (self->client, ANSWER_MS, part);
    else if (call->kind == S_RESULT) {
        if (!s_id (call, url + 9))
            return;
        const char *wait_text =
            MHD_lookup_connection_value (call->connection, MHD_GET_ARGUMENT_KIND, "wait");
        int64_t wait = 0;
        zf_error_t err;
        if (wait_text && (zf_parse_duration (wait_text, &wait, &err) || wait > WAIT_MAX_MS)) {
            s_reply (call, 400,
                     s_error ("wait: '%.32s' is not a duration of at most %d s", wait_text,
                              WAIT_MAX_MS / 1000),
                     0);
            return;
        }
        part->request =
            zf_client_result_request (self->client, &part->id, (int) wait, ANSWER_MS, part);
    }
    else {
        if (!s_id (call, url + 10))
            return;
        if (call->kind == S_CANCEL)
            zf_client_cancel (self->client, &part->id, "cancelled over HTTP");
        part->request = zf_client_item_request (self->client, &part->id, ANSWER_MS, part);
    }
    s_park (call, false);
}

//  --------------------------------------------------------------------------
//  Steering: GET /queues/Q/dead, POST /queues/Q/dead/requeue,
//  /queues/Q/dead/purge, /queues/Q/purge, /queues/Q/pause, /queues/Q/resume

//  The routes, by the end of the URL after /queues/Q; a queue name that
//  ends so is reached by them, not put to.
static const struct {
    const char *method; // GET or POST
    const char *suffix; // after the queue's name
    const char *op;     // the CONTROL's
    bool dead;          // of the queue's dead letters (Q.dead)
    bool chooses;       // the body says which items ({"ids", "all", "where", "older_than"})
} s_steer_routes[] = {
    { "GET", "/dead", "dead", true, false },
    { "POST", "/dead/requeue", "requeue", true, true },
    { "POST", "/dead/purge", "purge", true, true },
    { "POST", "/purge", "purge", false, true },
    { "POST", "/pause", "pause", false, false },
    { "POST", "/resume", "resume", false, false },
};
#define S_STEER_ROUTES (sizeof s_steer_routes / sizeof s_steer_routes[0])

//  The steering route of method and url (/queues/...), or -1.
static int
s_steer_route (const char *method, const char *url)
{
    size_t len = strlen (url);
    for (size_t r = 0; r < S_STEER_ROUTES; r++) {
        size_t tail = strlen (s_steer_routes[r].suffix);
        if (streq (method, s_steer_routes[r].method) && len > 8 + tail &&
            streq (url + len - tail, s_steer_routes[r].suffix))
            return (int) r;
    }
    return -1;
}

//  Which items a POST's JSON body chooses, into control (ids allocated
//  into *ids). 0, or -1 with why filled.
static int
s_steer_choice (s_call_t *call, zf_control_t *control, zf_id_t **ids, char *where,
                size_t where_size, char *why, size_t why_size)
{
    const char *body = call->body ? call->body : "";
    if (strlen (body) != call->size) {
        snprintf (why, why_size, "the body holds a NUL byte");
        return -1;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    zf_error_t err = { 0 };
    int rc = -1;
    bool all = false;
    if (zf_json_to_msgpack (body, strlen (body), &pk, &err)) {
        snprintf (why, why_size, "the body is not JSON: %s", err.text);
        goto done;
    }
    zf_mp_t mp;
    zf_mp_init (&mp, buffer.data, buffer.size);
    uint32_t count;
    if (zf_mp_map (&mp, &count, NULL)) {
        snprintf (why, why_size, "the body is not a JSON object such as {\"all\": true}");
        goto done;
    }
    for (uint32_t i = 0; i < count; i++) {
        const char *key, *text;
        uint32_t key_len, len;
        if (zf_mp_str (&mp, &key, &key_len, NULL)) {
            snprintf (why, why_size, "a key of the body is not a string");
            goto done;
        }
        if (key_len == 3 && memcmp (key, "all", 3) == 0) {
            if (zf_mp_bool (&mp, &all, NULL)) {
                snprintf (why, why_size, "all: true or false");
                goto done;
            }
        }
        else if (key_len == 5 && memcmp (key, "where", 5) == 0) {
            if (zf_mp_str (&mp, &text, &len, NULL) || len >= where_size ||
                !memchr (text, '=', len)) {
                snprintf (why, why_size, "where: a string HEADER=VALUE");
                goto done;
            }
            snprintf (where, where_size, "%.*s", (int) len, text);
            control->where = where;
        }
        else if (key_len == 10 && memcmp (key, "older_than", 10) == 0) {
            char duration[64];
            if (zf_mp_str (&mp, &text, &len, NULL) || len >= sizeof duration) {
                snprintf (why, why_size, "older_than: a duration such as \"1h\"");
                goto done;
            }
            snprintf (duration, sizeof duration, "%.*s", (int) len, text);
            if (zf_parse_duration (duration, &control->older_ms, &err)) {
                snprintf (why, why_size, "older_than: %s", err.text);
                goto done;
            }
        }
        else if (key_len == 3 && memcmp (key, "ids", 3) == 0) {
            uint32_t n;
            if (*ids) {
                snprintf (why, why_size, "ids: given twice");
                goto done;
            }
            if (zf_mp_array (&mp, &n, NULL) || n == 0 || n > ZF_IDS_MAX) {
                snprintf (why, why_size, "ids: a list of 1 to %d ids", ZF_IDS_MAX);
                goto done;
            }
            *ids = (zf_id_t *) zf_alloc (n * sizeof (zf_id_t));
            for (uint32_t j = 0; j < n; j++) {
                char hex[ZF_ID_HEX];
                if (zf_mp_str (&mp, &text, &len, NULL) || len != ZF_ID_HEX - 1) {
                    snprintf (why, why_size, "ids[%u]: not an id (32 hex digits)", j);
                    goto done;
                }
                snprintf (hex, sizeof hex, "%.*s", (int) len, text);
                if (zf_id_parse (&(*ids)[j], hex) || zf_id_is_zero (&(*ids)[j])) {
                    snprintf (why, why_size, "ids[%u]: '%s' is not an id", j, hex);
                    goto done;
                }
            }
            control->ids = *ids;
            control->nids = n;
        }
        else {
            snprintf (why, why_size, "'%.*s' is not a key of the body: ids, all, where, older_than",
                      (int) (key_len < 64 ? key_len : 64), key);
            goto done;
        }
    }
    if (!all && !control->ids && !control->where && !control->older_ms)
        snprintf (why, why_size,
                  "say which items: {\"ids\": [...]}, {\"where\": \"H=V\"}, "
                  "{\"older_than\": \"1h\"} or {\"all\": true}");
    else if (all && control->ids)
        snprintf (why, why_size, "ids and all together: which is meant?");
    else
        rc = 0;
done:
    msgpack_sbuffer_destroy (&buffer);
    return rc;
}

//  Asks the broker to do control for call, which is parked for its answer
//  (or answered 400 at once when the client refuses control).
static void
s_ask_control (s_call_t *call, const zf_control_t *control)
{
    zf_gateway_t *self = call->gateway;
    zstr_free (&call->body);
    call->parts = (s_part_t *) zf_alloc (sizeof (s_part_t));
    call->count = call->left = 1;
    call->parts[0].call = call;
    call->parts[0].request =
        zf_client_control_request (self->client, control, ANSWER_MS, &call->parts[0]);
    if (!call->parts[0].request) {
        s_reply (call, 400, s_error ("%s", zf_client_last_error (self->client)), 0);
        return;
    }
    s_park (call, false);
}

//  A steering route of call: asked of the broker, parked for its answer.
static void
s_steer (s_call_t *call, int route, const char *url)
{
    zf_gateway_t *self = call->gateway;
    if (call->big) {
        s_reply (call, 413, s_too_big (self), 0);
        return;
    }
    size_t len = strlen (url + 8) - strlen (s_steer_routes[route].suffix);
    if (len > ZF_NAME_MAX) {
        s_reply (call, 400, s_error ("'%.64s...' is no queue name", url + 8), 0);
        return;
    }
    snprintf (call->queue, sizeof call->queue, "%.*s%s", (int) len, url + 8,
              s_steer_routes[route].dead ? ".dead" : "");
    zf_control_t control = { .op = s_steer_routes[route].op, .queue = call->queue };
    zf_id_t *ids = NULL;
    char where[ZF_TEXT_MAX + 1], why[512];
    if (s_steer_routes[route].chooses &&
        s_steer_choice (call, &control, &ids, where, sizeof where, why, sizeof why)) {
        free (ids);
        s_reply (call, 400, s_error ("%s", why), 0);
        return;
    }
    if (streq (control.op, "dead")) {
        struct MHD_Connection *connection = call->connection;
        const char *limit =
            MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "limit");
        const char *given =
            MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "where");
        char *end = NULL;
        long n = limit ? strtol (limit, &end, 10) : 100;
        if (limit && (*end || n < 1 || n > ZF_BATCH_MAX)) {
            s_reply (call, 400, s_error ("limit: a number from 1 to %d", ZF_BATCH_MAX), 0);
            return;
        }
        if (given && !strchr (given, '=')) {
            s_reply (call, 400, s_error ("where: HEADER=VALUE"), 0);
            return;
        }
        control.limit = (uint32_t) n;
        control.where = given;
        call->listing = true;
    }
    s_ask_control (call, &control);
    free (ids);
}

//  GET /schedules, GET|PUT|DELETE /schedules/NAME, POST
//  /schedules/NAME/pause|resume|run: asked of the broker, parked.
static void
s_schedule_route (s_call_t *call, const char *method, const char *url)
{
    zf_gateway_t *self = call->gateway;
    if (call->big) {
        s_reply (call, 413, s_too_big (self), 0);
        return;
    }
    static const char *actions[] = { "pause", "resume", "run" };
    const char *op = "schedules", *name = url[10] == '/' ? url + 11 : "";
    size_t len = strlen (name);
    if (streq (method, "PUT"))
        op = "schedule-add";
    else if (streq (method, "DELETE"))
        op = "schedule-remove";
    else if (streq (method, "POST")) {
        for (size_t a = 0; a < 3 && streq (op, "schedules"); a++) {
            size_t tail = strlen (actions[a]) + 1;
            if (len > tail && name[len - tail] == '/' &&
                streq (name + len - tail + 1, actions[a])) {
                op = a == 0 ? "schedule-pause" : a == 1 ? "schedule-resume" : "schedule-run";
                len -= tail;
            }
        }
        if (streq (op, "schedules")) {
            s_reply (call, 404, s_error ("POST /schedules/NAME/pause, /resume or /run"), 0);
            return;
        }
    }
    if (len > ZF_NAME_MAX || (!streq (op, "schedules") && !len)) {
        s_reply (call, 400, s_error ("'%.64s' is no schedule name", name), 0);
        return;
    }
    snprintf (call->schedule, sizeof call->schedule, "%.*s", (int) len, name);
    call->schedules = true;
    zf_schedule_spec_t spec = { 0 };
    msgpack_sbuffer keep;
    msgpack_sbuffer_init (&keep);
    char queue[ZF_NAME_MAX + 1] = "", why[512];
    if (streq (op, "schedule-add") && call->body && strlen (call->body) != call->size) {
        s_reply (call, 400, s_error ("the body holds a NUL byte"), 0);
        return;
    }
    if (streq (op, "schedule-add") &&
        zf_steer_spec_json (call->body ? call->body : "", &spec, &keep, queue, sizeof queue, why,
                            sizeof why)) {
        msgpack_sbuffer_destroy (&keep);
        s_reply (call, 400, s_error ("%s", why), 0);
        return;
    }
    zf_control_t control = { .op = op,
                             .queue = queue,
                             .name = call->schedule,
                             .schedule = streq (op, "schedule-add") ? &spec : NULL };
    s_ask_control (call, &control);
    msgpack_sbuffer_destroy (&keep);
}

static void
s_steer_answered (s_call_t *call, zf_request_t *request)
{
    zf_result_t *result = zf_request_take_result (request);
    if (!result) {
        const char *why = zf_request_error (request);
        bool refused = zf_request_outcome (request) == ZF_REQUEST_REFUSED;
        zf_refusal_t kind = zf_request_refusal (request);
        s_reply (call,
                 !refused                                                        ? 503
                 : kind == ZF_REFUSAL_NO_QUEUE || kind == ZF_REFUSAL_NO_SCHEDULE ? 404
                                                                                 : 400,
                 s_error ("%s", *why ? why : "the broker did not answer"), refused ? 0 : 1000);
        return;
    }
    if (call->schedules) {
        char *json = zf_steer_schedules_json (result, call->schedule[0] ? call->schedule : NULL);
        if (json)
            s_reply (call, 200, json, 0);
        else
            s_reply (call, 404, s_error ("no schedule '%s'", call->schedule), 0);
    }
    else
        s_reply (call, 200,
                 call->listing ? zf_steer_letters_json (result)
                               : zf_steer_done_json (result, call->queue),
                 0);
    zf_result_destroy (&result);
}

//  Every request the broker answered (or that timed out): its call's
//  answer made once all its parts are, its connection resumed. Then the
//  puts waiting for room in the PUT window, as far as there is room. True
//  if it did any of that.
static bool
s_settle (zf_gateway_t *self)
{
    bool any = false;
    zf_request_t *request;
    while ((request = zf_client_answered (self->client))) {
        any = true;
        s_part_t *part = (s_part_t *) zf_request_arg (request);
        s_call_t *call = part->call;
        part->request = NULL;
        if (call->kind == S_PUT)
            s_put_answered (part, request);
        else if (call->kind == S_QUEUES)
            s_queues_answered (call, request);
        else if (call->kind == S_STEER)
            s_steer_answered (call, request);
        else
            s_state_answered (call, request);
        zf_request_destroy (&request);
        if (call->answered)
            s_resume (call);
    }
    s_call_t *call;
    while ((call = (s_call_t *) zlistx_first (self->for_room))) {
        size_t sent = call->sent;
        bool all_sent = s_send_puts (call);
        any |= call->sent > sent; // put: the loop pumps again, which sends them
        if (!all_sent)
            break;
        any = true;
        zlistx_delete (self->for_room, call->room_handle);
        call->room_handle = NULL;
        if (!call->left) {
            s_put_reply (call); // the last ones refused at once
            s_resume (call);
        }
    }
    return any;
}

//  Calls still parked are answered now, and event streams end: a
//  suspended connection must be resumed before the server stops. Nothing
//  new is parked or streamed from now on (503 "stopping").
static void
s_stop_parked (zf_gateway_t *self)
{
    self->stopping = true;
    s_call_t *call;
    while ((call = (s_call_t *) zlistx_first (self->parked))) {
        for (size_t i = 0; i < call->count; i++) {
            s_part_t *part = &call->parts[i];
            zf_request_destroy (&part->request);
            // A put sent may be stored: unconfirmed (202, its id), never
            // failed; one not sent is refused (503).
            if (call->kind == S_PUT && part->outcome == ZF_REQUEST_PENDING) {
                part->outcome = i < call->sent ? ZF_REQUEST_TIMEOUT : ZF_REQUEST_FAILED;
                if (i >= call->sent)
                    part->error = zf_strdup ("the gateway is stopping");
            }
        }
        if (call->kind == S_PUT)
            s_put_reply (call);
        else
            s_reply (call, 503, s_error ("the gateway is stopping"), 1000);
        s_resume (call);
    }
    for (zf_sse_t *stream = (zf_sse_t *) zlistx_first (self->streams); stream;
         stream = (zf_sse_t *) zlistx_next (self->streams))
        zf_sse_end (stream);
    // Their answers go out: resumed, answered, written (a reader that
    // takes nothing is not suspended, and is closed with the server).
    int64_t deadline = zclock_mono () + STOP_MS;
    while (zclock_mono () < deadline &&
           (zlistx_size (self->parked) || zlistx_size (self->streams))) {
        MHD_run (self->daemon);
        zclock_sleep (5);
    }
    MHD_run (self->daemon);
}

//  The descriptor of connection.
static int
s_fd (struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? info->connect_fd : -1;
}

//  Parked calls and waiting event streams whose client went away (a
//  suspended connection is not read, so libmicrohttpd would not see it):
//  dropped, so that they hold no descriptor, no place among the parked,
//  and no connection of their address's share.
static void
s_check_gone (zf_gateway_t *self)
{
    size_t calls = zlistx_size (self->parked), streams = zlistx_size (self->streams);
    if (calls + streams == 0)
        return;
    struct pollfd *fds = (struct pollfd *) zf_alloc ((calls + streams) * sizeof (struct pollfd));
    void **whose = (void **) zf_alloc ((calls + streams) * sizeof (void *));
    size_t n = 0;
    for (s_call_t *call = (s_call_t *) zlistx_first (self->parked); call;
         call = (s_call_t *) zlistx_next (self->parked)) {
        fds[n] = (struct pollfd){ .fd = s_fd (call->connection), .events = POLLRDHUP };
        whose[n++] = call;
    }
    for (zf_sse_t *stream = (zf_sse_t *) zlistx_first (self->streams); stream;
         stream = (zf_sse_t *) zlistx_next (self->streams))
        if (zf_sse_waiting (stream)) {
            fds[n] =
                (struct pollfd){ .fd = s_fd (zf_sse_connection (stream)), .events = POLLRDHUP };
            whose[n++] = stream;
        }
    if (poll (fds, (nfds_t) n, 0) > 0)
        for (size_t i = 0; i < n; i++) {
            if (!(fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR)))
                continue;
            if (i < calls) {
                s_call_t *call = (s_call_t *) whose[i];
                for (size_t p = 0; p < call->count; p++)
                    zf_request_destroy (&call->parts[p].request); // forgotten
                s_reply (call, 503, s_error ("the client went away"), 0);
                s_resume (call); // written to no one, and closed
            }
            else
                zf_sse_end ((zf_sse_t *) whose[i]);
        }
    free (whose);
    free (fds);
}

//  The API's routes: call answered at once, or parked for the broker.
static void
s_api (s_call_t *call, const char *method, const char *url)
{
    zf_gateway_t *self = call->gateway;
    if (self->stopping) {
        s_reply (call, 503, s_error ("the gateway is stopping"), 1000);
        return;
    }
    if (zlistx_size (self->parked) >= (size_t) self->max_waiting) {
        self->turned_away++;
        s_reply (call, 503,
                 s_error ("%zu requests wait for the broker already (api-max-waiting)",
                          zlistx_size (self->parked)),
                 1000);
        return;
    }
    if (streq (url, "/schedules") || strncmp (url, "/schedules/", 11) == 0) {
        call->kind = S_STEER;
        s_schedule_route (call, method, url);
        return;
    }
    int route = strncmp (url, "/queues/", 8) == 0 ? s_steer_route (method, url) : -1;
    if (route >= 0) {
        call->kind = S_STEER;
        s_steer (call, route, url);
        return;
    }
    if (streq (method, "POST")) {
        call->kind = S_PUT;
        s_api_put (call, url + 8);
        return;
    }
    call->kind = streq (url, "/queues")               ? S_QUEUES
                 : strncmp (url, "/results/", 9) == 0 ? S_RESULT
                 : streq (method, "DELETE")           ? S_CANCEL
                                                      : S_ITEM;
    s_ask (call, url);
}

//  Decodes %XX in a URL's path and arguments, in place, but for %00: a NUL
//  would cut a queue's name or an id short, so it stays "%00" (no queue
//  and no id has it). Returns the new length.
static size_t
s_unescape (void *cls, struct MHD_Connection *connection, char *text)
{
    (void) cls;
    (void) connection;
    char *to = text;
    for (const char *at = text; *at; at++) {
        unsigned value;
        if (at[0] == '%' && isxdigit ((unsigned char) at[1]) && isxdigit ((unsigned char) at[2]) &&
            sscanf (at + 1, "%2x", &value) == 1 && value != 0) {
            *to++ = (char) value;
            at += 2;
        }
        else
            *to++ = *at;
    }
    *to = 0;
    return (size_t) (to - text);
}

//  True if a request for method and url goes to the JSON API.
static bool
s_api_route (const char *method, const char *url)
{
    bool schedules = streq (url, "/schedules") || strncmp (url, "/schedules/", 11) == 0;
    return (schedules && (streq (method, "GET") || streq (method, "PUT") ||
                          streq (method, "DELETE") || streq (method, "POST"))) ||
           (streq (method, "POST") && strncmp (url, "/queues/", 8) == 0) ||
           (streq (method, "DELETE") && strncmp (url, "/messages/", 10) == 0) ||
           (streq (method, "GET") && strncmp (url, "/queues/", 8) == 0 &&
            s_steer_route (method, url) >= 0) ||
           (streq (method, "GET") &&
            (streq (url, "/queues") || streq (url, "/events") ||
             strncmp (url, "/messages/", 10) == 0 || strncmp (url, "/results/", 9) == 0));
}

//  True if the connection's request bears the gateway's token (or none is
//  needed). The comparison takes as long whatever the token given.
static bool
s_authorized (zf_gateway_t *self, struct MHD_Connection *connection)
{
    if (!self->token)
        return true;
    const char *header =
        MHD_lookup_connection_value (connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!header || strncasecmp (header, "Bearer ", 7) != 0)
        return false;
    const char *given = header + 7;
    size_t given_len = strlen (given), len = strlen (self->token);
    unsigned char diff = given_len != len;
    for (size_t i = 0; i < len; i++)
        diff |= (unsigned char) (self->token[i] ^ (i < given_len ? given[i] : 0));
    return diff == 0;
}

static enum MHD_Result
s_unauthorized (struct MHD_Connection *connection)
{
    char *body = s_error ("this API needs Authorization: Bearer TOKEN (the broker's "
                          "api-token-file)");
    struct MHD_Response *response =
        MHD_create_response_from_buffer (strlen (body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (response, "Content-Type", "application/json");
    MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"zflow\"");
    enum MHD_Result rc = MHD_queue_response (connection, 401, response);
    MHD_destroy_response (response);
    return rc;
}

//  A stream is gone: what only it followed is no longer subscribed to.
static void
s_stream_closed (void *arg, zf_sse_t *stream)
{
    zf_gateway_t *self = (zf_gateway_t *) arg;
    void *handle = zlistx_find (self->streams, stream);
    if (!handle)
        return; // never started
    zlistx_delete (self->streams, handle);
    const char *const *prefixes;
    size_t count = zf_sse_prefixes (stream, &prefixes);
    for (size_t i = 0; self->sub && i < count; i++)
        zsock_set_unsubscribe (self->sub, prefixes[i]); // counted: others' stay
}

//  The topic prefixes asked for: every topic= argument, each a list
//  split at commas.
typedef struct {
    char *prefixes[PREFIXES_MAX];
    size_t count;
    bool over; // more than PREFIXES_MAX
    int64_t sample;
} s_topics_t;

static enum MHD_Result
s_topic_arg (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    s_topics_t *topics = (s_topics_t *) cls;
    if (!streq (key, "topic") || !value)
        return MHD_YES;
    for (const char *at = value;; at++) {
        const char *end = strchr (at, ',');
        size_t len = end ? (size_t) (end - at) : strlen (at);
        if (len == 0) {
            // An empty entry (a stray comma) is none: only * is every topic.
            if (!end)
                break;
            at = end;
            continue;
        }
        if (topics->count == PREFIXES_MAX)
            topics->over = true;
        else {
            char prefix[ZF_NAME_MAX + 40];
            snprintf (prefix, sizeof prefix, "%.*s", (int) len, at);
            size_t n = strlen (prefix);
            bool wild = n && prefix[n - 1] == '*';
            if (wild)
                prefix[n - 1] = 0; // data.* as zflow tap takes it
            // A queue's data, sampled: the broker sends one item in N.
            topics->prefixes[topics->count++] =
                !wild && topics->sample > 1 && strncmp (prefix, "data.", 5) == 0
                    ? zsys_sprintf ("sample.%lld.%s", (long long) topics->sample, prefix)
                    : zf_strdup (prefix);
        }
        if (!end)
            break;
        at = end;
    }
    return MHD_YES;
}

//  GET /events?topic=PREFIX[,PREFIX...][&sample=N]: the broker's events
//  as Server-Sent Events (zf_sse), from now on.
static enum MHD_Result
s_events (zf_gateway_t *self, struct MHD_Connection *connection)
{
    s_topics_t topics = { .sample = 1 };
    const char *sample = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "sample");
    zf_error_t err;
    if (sample && (zf_parse_int (sample, &topics.sample, &err) || topics.sample < 1 ||
                   topics.sample > 1000000))
        return s_json (connection, 400,
                       s_error ("sample: '%.32s' is not from 1 to 1000000", sample));
    MHD_get_connection_values (connection, MHD_GET_ARGUMENT_KIND, s_topic_arg, &topics);
    enum MHD_Result rc;
    if (topics.over)
        rc = s_json (connection, 400, s_error ("at most %d topics in one stream", PREFIXES_MAX));
    else if (topics.count == 0)
        rc = s_json (connection, 400,
                     s_error ("GET /events needs ?topic=PREFIX: e.g. data.QUEUE (the items put "
                              "to QUEUE), worker., dead., stats; several comma-separated"));
    else if (self->stopping)
        rc = s_json (connection, 503, s_error ("the gateway is stopping"));
    else if (zlistx_size (self->streams) >= STREAMS_MAX)
        rc = s_json (connection, 503, s_error ("%d event streams are open already", STREAMS_MAX));
    else {
        zf_sse_t *stream = zf_sse_new (connection, (const char *const *) topics.prefixes,
                                       topics.count, STREAM_HELD, s_stream_closed, self);
        rc = stream ? MHD_YES : MHD_NO;
        if (stream) {
            // A reader that takes nothing for a minute is gone.
            MHD_set_connection_option (connection, MHD_CONNECTION_OPTION_TIMEOUT,
                                       (unsigned) STREAM_IDLE_S);
            zlistx_add_end (self->streams, stream);
            for (size_t i = 0; i < topics.count; i++)
                zsock_set_subscribe (self->sub, topics.prefixes[i]);
        }
    }
    for (size_t i = 0; i < topics.count; i++)
        free (topics.prefixes[i]);
    return rc;
}

static enum MHD_Result
s_request (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void) version;
    zf_gateway_t *self = (zf_gateway_t *) cls;
    s_call_t *call = (s_call_t *) *state;
    if (call && call->answered)
        return s_give (call); // resumed with its answer
    if (call && call->handle)
        return MHD_YES; // parked (libmicrohttpd may call once more before it suspends)
    bool post = strcmp (method, "POST") == 0 || strcmp (method, "PUT") == 0; // with a body
    bool api = self->api && self->client && s_api_route (method, url);
    if (!call) {
        // Its headers are in: refused now, or read on.
        if (api && !s_authorized (self, connection))
            return s_unauthorized (connection);
        if (api && streq (url, "/events"))
            return s_events (self, connection);
        if (post && !api)
            // Not the API's: answered before its body is read.
            return s_json (connection, self->api ? 404 : 405,
                           s_error (self->api ? "POST goes to /queues/QUEUE, PUT to /schedules/NAME"
                                              : "the JSON API is off (api = true in the broker "
                                                "section)"));
        call = (s_call_t *) zf_alloc (sizeof (s_call_t));
        call->gateway = self;
        call->connection = connection;
        *state = call;
        const char *length =
            MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Content-Length");
        if (post) {
            // A body declared over the limit is refused before it is read.
            if (length && strtoull (length, NULL, 10) > self->body_max)
                return s_json (connection, 413, s_too_big (self));
            return MHD_YES; // the body comes over the next calls
        }
        // Answered from the next call on, once the body (none for a GET)
        // is read: an answer given before that closes the connection, and
        // a client's next request would need a new one. A GET or DELETE
        // that sends a body anyway is answered now, its body unread (and
        // its connection closed).
        bool body = (length && strtoull (length, NULL, 10) > 0) ||
                    MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Transfer-Encoding");
        if (!body)
            return MHD_YES;
    }
    if (post && *upload_size) {
        if (call->size + *upload_size > self->body_max)
            call->big = true;
        else {
            call->body = (char *) zf_realloc (call->body, call->size + *upload_size + 1);
            memcpy (call->body + call->size, upload_data, *upload_size);
            call->size += *upload_size;
            call->body[call->size] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (api) {
        s_api (call, method, url);
        return call->answered ? s_give (call) : MHD_YES;
    }
    if (strcmp (method, "GET") != 0)
        return s_json (connection, 405, s_error ("%.16s is not served here", method));
    if (strcmp (url, "/metrics") == 0) {
        size_t len = 0;
        char *text = self->stats ? s_prometheus (self->decoded, self->stats, self->stats_size,
                                                 self->events, &len)
                                 : strdup ("");
        if (!text) {
            text = strdup ("the broker's last stats event cannot be read\n");
            return s_answer (connection, 502, "text/plain", text, strlen (text));
        }
        if (self->api) {
            // The gateway's own figures.
            s_text_t t = { .data = text, .len = len, .cap = len + 1 };
            s_scalar (&t, "zflow_api_waiting", "gauge",
                      "API requests parked until the broker answers them.",
                      zlistx_size (self->parked));
            s_scalar (&t, "zflow_api_turned_away_total", "counter",
                      "API requests answered 503 because api-max-waiting were parked.",
                      self->turned_away);
            text = t.data;
            len = t.len;
        }
        return s_answer (connection, 200, "text/plain; version=0.0.4", text, len);
    }
    if (strcmp (url, "/health") == 0) {
        int64_t age = self->stats ? zclock_mono () - self->stats_at : -1;
        bool fresh = age >= 0 && age < STALE_MS;
        char *text = fresh ? strdup ("ok\n")
                           : zsys_sprintf ("no stats from the broker %s\n",
                                           age < 0 ? "yet" : "for more than 5 s");
        return s_answer (connection, fresh ? 200 : 503, "text/plain", text, strlen (text));
    }
    return s_json (connection, 404,
                   s_error ("no %.200s here: GET /metrics, /health%s", url,
                            self->api ? ", /queues, /messages/ID, /results/ID[?wait=D], "
                                        "/events?topic=PREFIX; POST /queues/QUEUE; DELETE "
                                        "/messages/ID"
                                      : ""));
}

//  True if host (an IPv4 address) is reachable only from this machine.
static bool
s_loopback (const char *host)
{
    return strncmp (host, "127.", 4) == 0;
}

//  At most this many connections: the limit asked, and no more than the
//  descriptors the process may open less a reserve for ZeroMQ and the
//  journal (a quarter of them, at least half of the first 2,048), so
//  that sessions keep theirs however many HTTP clients come.
static unsigned
s_connection_limit (int64_t asked)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) || limit.rlim_cur == RLIM_INFINITY)
        return (unsigned) asked;
    int64_t open = (int64_t) limit.rlim_cur;
    int64_t first = open < 2048 ? open : 2048;
    int64_t reserve = open / 4 > first / 2 ? open / 4 : first / 2;
    int64_t room = open - reserve;
    if (room < asked)
        zsys_info ("broker: HTTP connections at most %lld of the %lld asked (%lld of the %lld "
                   "descriptors this process may open are kept for ZeroMQ and the journal)",
                   (long long) room, (long long) asked, (long long) reserve, (long long) open);
    return (unsigned) (room < asked ? room : asked);
}

zf_gateway_t *
zf_gateway_server_new (const zf_gateway_args_t *args, zf_error_t *err)
{
    const zf_broker_settings_t *set = args->set;
    const char *address = args->address;
    // ADDRESS:PORT, or :PORT / PORT for loopback.
    char host[64] = "127.0.0.1";
    const char *colon = strrchr (address, ':');
    const char *port_text = colon ? colon + 1 : address;
    if (colon && colon > address)
        snprintf (host, sizeof host, "%.*s", (int) (colon - address), address);
    char *end;
    long port = strtol (port_text, &end, 10);
    struct sockaddr_in where = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    if (*end || port < 0 || port > 65535 || inet_pton (AF_INET, host, &where.sin_addr) != 1) {
        zf_error_set (err, ZF_EVALUE, "metrics: '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:9100)",
                      address);
        return NULL;
    }
    if (!args->cert != !args->key) {
        zf_error_set (err, ZF_ECONFIG, "https-cert and https-key go together: give both or none");
        return NULL;
    }
    // The API puts, reads and cancels: open only to whom the broker is.
    if (set->api && !args->token) {
        if (set->curve_secret) {
            zf_error_set (err, ZF_ECONFIG,
                          "the broker has CURVE, so its HTTP API needs a token too: give the "
                          "broker section api-token-file (a file holding a long random string)");
            return NULL;
        }
        if (!s_loopback (host) && !args->insecure) {
            zf_error_set (err, ZF_ECONFIG,
                          "the HTTP API on %s is open to other machines without a token: anyone "
                          "who reaches it could put, read and cancel items; give the broker "
                          "section api-token-file, or pass --insecure to run it open",
                          address);
            return NULL;
        }
        if (!s_loopback (host))
            zsys_warning ("broker: the HTTP API on %s is open to other machines without a token "
                          "(--insecure): anyone who reaches it can put, read and cancel items",
                          address);
    }
    zf_gateway_t *self = (zf_gateway_t *) zf_alloc (sizeof (zf_gateway_t));
    snprintf (self->endpoint, sizeof self->endpoint, "%s", args->events);
    snprintf (self->broker, sizeof self->broker, "%s", args->broker);
    self->api = set->api;
    self->put_wait = set->api_put_wait;
    self->max_waiting = set->api_max_waiting;
    self->body_max = set->max_frame < BODY_MAX ? (size_t) set->max_frame : BODY_MAX;
    self->max_frame = (size_t) set->max_frame;
    self->token = args->token ? zf_strdup (args->token) : NULL;
    self->cert = args->cert ? zf_strdup (args->cert) : NULL;
    self->key = args->key ? zf_strdup (args->key) : NULL;
    self->parked = zlistx_new ();
    msgpack_sbuffer_init (&self->pack);
    self->for_room = zlistx_new ();
    self->streams = zlistx_new ();
    self->decoded = zf_stats_new ();
    unsigned connections = s_connection_limit (set->http_max_connections);
    struct MHD_OptionItem options[] = {
        { MHD_OPTION_SOCK_ADDR, 0, &where },
        { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t) s_done, NULL },
        { MHD_OPTION_CONNECTION_TIMEOUT, 10, NULL },
        { MHD_OPTION_CONNECTION_LIMIT, connections, NULL },
        { MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t) set->http_max_per_address, NULL },
        { MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t) s_unescape, NULL },
        { self->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, self->cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, self->key },
        { MHD_OPTION_END, 0, NULL }
    };
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (self->cert)
        flags |= MHD_USE_TLS;
    self->daemon = MHD_start_daemon (flags, 0, NULL, NULL, s_request, self, MHD_OPTION_ARRAY,
                                     options, MHD_OPTION_END);
    if (!self->daemon) {
        zf_error_set (err, ZF_EIO, "metrics: cannot listen on %s%s", address,
                      args->cert ? " (or https-cert and https-key are not a PEM certificate and "
                                   "its key)"
                                 : "");
        zf_gateway_server_destroy (&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf (self->address, sizeof self->address, "%s:%u", host,
              info ? (unsigned) info->port : (unsigned) port);
    self->server = zf_thread_new (s_server, self);
    return self;
}

void
zf_gateway_server_destroy (zf_gateway_t **self_p)
{
    zf_gateway_t *self = *self_p;
    if (!self)
        return;
    zf_thread_destroy (&self->server); // first: it drives the daemon
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    free (self->stats);
    free (self->token);
    free (self->cert);
    if (self->key)
        memset (self->key, 0, strlen (self->key));
    free (self->key);
    zf_stats_destroy (&self->decoded);
    zlistx_destroy (&self->parked);
    zlistx_destroy (&self->for_room);
    msgpack_sbuffer_destroy (&self->pack);
    zlistx_destroy (&self->streams);
    free (self);
    *self_p = NULL;
}

const char *
zf_gateway_server_address (zf_gateway_t *self)
{
    return self->address;
}
