/*  zf_gateway: the broker's HTTP gateway, on libmicrohttpd: GET /metrics,
    the figures of the latest `stats` event as Prometheus text, GET /health,
    and with `api = true` a JSON API (POST /queues/Q, GET /messages/ID, GET
    /queues). One thread of its own runs it all: it subscribes to the
    broker's events like any monitor and keeps the latest stats, talks to the
    broker as a client for the API, and drives the HTTP server (in
    libmicrohttpd's external mode, on its epoll descriptor), so the broker's
    own thread never waits on HTTP. See zf_metrics.h.
*/
#include "zf_gateway.h"
#include "zf_curve.h"
#include "zf_events.h"
#include "zf_json.h"
#include "zf_mp.h"
#include "zf_proto.h"
#include "zf_tasks.h"
#include "zf_thread.h"
#include "zf_value.h"
#include "zflow.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#define STALE_MS    5000      // /health fails when no stats came for this long
#define BODY_MAX    (1 << 20) // bytes of a POSTed item at most
#define CONFIRM_MS  5000      // how long a POST waits for the broker's confirm
#define WAIT_MAX_MS 60000     // the longest wait a GET /results may ask

struct _zf_gateway_t {
    struct MHD_Daemon *daemon; // the HTTP server, driven by the server thread
    zf_thread_t *server;       // the server thread
    bool api;                  // serve the JSON API
    int64_t put_wait;          // ms a POSTed item waits for room in a full queue, then 503
    uint8_t *stats;            // the latest stats event's body, or NULL
    size_t stats_size;         // its size
    int64_t stats_at;          // when it came (ms, monotonic)
    uint64_t events;           // stats events seen
    zf_stats_t *decoded;       // the latest stats event read, for /metrics
    zf_client_t *client;       // a session with the broker, for the API
    char address[96];          // where it listens, ADDRESS:PORT
    char endpoint[256];        // the broker's events endpoint
    char broker[256];          // the broker's ROUTER endpoint
};

//  The server thread: stats from the SUB socket, the API's session, HTTP.
static void
s_server (zsock_t *pipe, void *args)
{
    zf_gateway_t *self = (zf_gateway_t *) args;
    zf_error_t err;
    zsock_t *sub = zf_curve_sub (self->endpoint, "stats", &err);
    if (!sub)
        zsys_error ("broker: metrics: %s", err.text);
    if (self->api) {
        self->client = zf_client_new (self->broker, "zflow-http", NULL, 0);
        zf_client_track (self->client, false);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    int http = info ? info->epoll_fd : -1;
    zsock_signal (pipe, 0);
    while (sub) {
        MHD_UNSIGNED_LONG_LONG mhd_timeout = 0;
        long timeout = MHD_get_timeout (self->daemon, &mhd_timeout) == MHD_YES && mhd_timeout < 200
                           ? (long) mhd_timeout
                           : 200;
        zmq_pollitem_t items[] = { { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
                                   { zsock_resolve (sub), 0, ZMQ_POLLIN, 0 },
                                   { NULL, http, ZMQ_POLLIN, 0 } };
        if (zmq_poll (items, http >= 0 ? 3 : 2, timeout) < 0 && zmq_errno () != EINTR)
            break;
        if (items[0].revents & ZMQ_POLLIN)
            break; // $TERM
        while (zsock_events (sub) & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv (sub);
            zframe_t *topic = msg ? zmsg_first (msg) : NULL;
            zframe_t *body = msg ? zmsg_next (msg) : NULL;
            if (topic && body && zframe_streq (topic, "stats")) {
                free (self->stats);
                self->stats = (uint8_t *) malloc (zframe_size (body));
                memcpy (self->stats, zframe_data (body), zframe_size (body));
                self->stats_size = zframe_size (body);
                self->stats_at = zclock_mono ();
                self->events++;
            }
            zmsg_destroy (&msg);
            if (!msg && !topic)
                break;
        }
        MHD_run (self->daemon);
        if (self->client)
            zf_client_pump (self->client, 0); // heartbeats between requests
    }
    zf_client_destroy (&self->client);
    zsock_destroy (&sub);
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

//  The figures of a stats event as Prometheus text; NULL when the event
//  cannot be read.
static char *
s_prometheus (zf_stats_t *stats, const uint8_t *data, size_t size, uint64_t events, size_t *len)
{
    zf_error_t err;
    if (zf_stats_decode (stats, data, size, &err))
        return NULL;
    s_text_t t = { .data = (char *) malloc (4096), .cap = 4096 };
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
    };
    for (int m = 0; m < 6; m++) {
        s_family (&t, queue_metrics[m].name, queue_metrics[m].type, queue_metrics[m].help);
        for (uint32_t q = 0; q < stats->nqueues; q++) {
            zf_stats_queue_t *queue = &stats->queues[q];
            const zf_figures_t *f = &queue->figures;
            uint64_t values[] = { f->depth, f->inflight, f->put, f->ack, f->nack, f->dead };
            s_add (&t, "%s{queue=\"%s\"} %llu\n", queue_metrics[m].name,
                   s_label (f->name, (uint32_t) strlen (f->name), label[0], sizeof label[0]),
                   (unsigned long long) values[m]);
        }
    }
    struct {
        const char *name, *type, *help;
    } worker_metrics[] = {
        { "zflow_worker_inflight", "gauge", "Items the worker holds." },
        { "zflow_worker_done_total", "counter", "Items the worker acked." },
        { "zflow_worker_failed_total", "counter", "Items the worker nacked." },
    };
    for (int m = 0; m < 3; m++) {
        s_family (&t, worker_metrics[m].name, worker_metrics[m].type, worker_metrics[m].help);
        for (uint32_t w = 0; w < stats->nworkers; w++) {
            zf_stats_worker_t *worker = &stats->workers[w];
            uint64_t value = m == 0 ? worker->inflight : m == 1 ? worker->done : worker->failed;
            s_add (
                &t, "%s{actor=\"%s\",worker=\"%u\",host=\"%s\"} %llu\n", worker_metrics[m].name,
                s_label (worker->actor, (uint32_t) strlen (worker->actor), label[0],
                         sizeof label[0]),
                worker->worker,
                s_label (worker->host, (uint32_t) strlen (worker->host), label[1], sizeof label[1]),
                (unsigned long long) value);
        }
    }
    // What workers say of themselves (their PINGs' figures): each number at
    // the top of the map, such as a sink's write_failures and waiting_ms.
    s_family (&t, "zflow_worker_figure", "gauge",
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
            s_add (&t, "zflow_worker_figure{actor=\"%s\",worker=\"%u\",figure=\"%s\"} %lld\n",
                   s_label (worker->actor, (uint32_t) strlen (worker->actor), label[0],
                            sizeof label[0]),
                   worker->worker, s_label (key, key_len, label[1], sizeof label[1]),
                   type == ZF_MP_UINT ? (long long) value : (long long) negative);
        }
    }
    struct {
        const char *name, *type, *help;
    } group_metrics[] = {
        { "zflow_group_workers", "gauge", "Workers of the consumer group connected now." },
        { "zflow_group_ready", "gauge", "Items waiting for a worker of the group." },
        { "zflow_group_acked_total", "counter", "Deliveries the group acked." },
    };
    for (int m = 0; m < 3; m++) {
        s_family (&t, group_metrics[m].name, group_metrics[m].type, group_metrics[m].help);
        for (uint32_t q = 0; q < stats->nqueues; q++)
            for (uint32_t g = 0; g < stats->queues[q].ngroups; g++) {
                zf_stats_group_t *group = &stats->queues[q].groups[g];
                const char *queue = stats->queues[q].figures.name;
                uint64_t values[] = { group->workers, group->ready, group->acked };
                s_add (&t, "%s{queue=\"%s\",group=\"%s\"} %llu\n", group_metrics[m].name,
                       s_label (queue, (uint32_t) strlen (queue), label[0], sizeof label[0]),
                       s_label (group->name, (uint32_t) strlen (group->name), label[1],
                                sizeof label[1]),
                       (unsigned long long) values[m]);
            }
    }
    s_family (&t, "zflow_crashloop", "gauge",
              "1 for a worker in a crash loop now: zflow run restarts it 1 s to 60 s apart.");
    for (uint32_t c = 0; c < stats->ncrashloops; c++) {
        const char *name = stats->crashloops[c], *slash = strrchr (name, '/');
        uint32_t len = slash ? (uint32_t) (slash - name) : (uint32_t) strlen (name);
        s_add (&t, "zflow_crashloop{actor=\"%s\",worker=\"%s\"} 1\n",
               s_label (name, len, label[0], sizeof label[0]), slash ? slash + 1 : "");
    }
    s_scalar (&t, "zflow_lineages", "gauge", "Roots whose lineage is not finished.",
              stats->lineages);
    s_scalar (&t, "zflow_rejected_total", "counter", "Messages refused as malformed.",
              stats->rejected);
    s_scalar (&t, "zflow_late_acks_total", "counter", "Acks of deliveries that had timed out.",
              stats->late_acks);
    if (stats->journal.present) {
        zf_stats_journal_t *j = &stats->journal;
        s_scalar (&t, "zflow_journal_written_bytes_total", "counter",
                  "Bytes appended to the journal.", j->written);
        s_scalar (&t, "zflow_journal_durable_bytes_total", "counter",
                  "Bytes of the journal on disk (synced as the sync setting says).", j->durable);
        s_scalar (&t, "zflow_journal_waiting_confirms", "gauge",
                  "CONFIRMs held until their records are durable.", j->waiting);
        s_scalar (&t, "zflow_journal_compactions_total", "counter",
                  "Snapshots written to compact the journal.", j->compactions);
        s_scalar (&t, "zflow_journal_failing", "gauge",
                  "1 while the journal cannot write (a full disk): confirms wait, the broker "
                  "tries again.",
                  j->failed[0] != 0);
    }
    s_scalar (&t, "zflow_stats_events_total", "counter", "Stats events read.", events);
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

//  A request's state between the calls libmicrohttpd makes for it.
typedef struct {
    char *body;  // what was POSTed so far
    size_t size; // its size
    bool big;    // over BODY_MAX: refused
} s_post_t;

static void
s_done (void *cls, struct MHD_Connection *connection, void **state,
        enum MHD_RequestTerminationCode code)
{
    (void) cls;
    (void) connection;
    (void) code;
    s_post_t *post = (s_post_t *) *state;
    if (post) {
        free (post->body);
        free (post);
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

static enum MHD_Result
s_json (struct MHD_Connection *connection, unsigned status, char *body)
{
    return s_answer (connection, status, "application/json", body, strlen (body));
}

//  503 with Retry-After (whole seconds, at least 1): busy, not broken.
static enum MHD_Result
s_busy (struct MHD_Connection *connection, int64_t retry_ms, char *body)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer (strlen (body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (response, "Content-Type", "application/json");
    char seconds[24];
    snprintf (seconds, sizeof seconds, "%lld", (long long) (retry_ms + 999) / 1000);
    MHD_add_response_header (response, "Retry-After", seconds);
    enum MHD_Result rc = MHD_queue_response (connection, 503, response);
    MHD_destroy_response (response);
    return rc;
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
        else if (len == 8 && memcmp (key, "delay_ms", 8) == 0)
            found.delay_ms = number;
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
    if (at && zf_parse_int (at, &opts->not_before, &err))
        return "Zflow-Not-Before is not a time in ms since the Unix epoch";
    if (priority && (zf_parse_int (priority, &value, &err) || value < 0 || value > 9))
        return "Zflow-Priority is not a priority from 0 to 9";
    if (priority)
        opts->priority = (int) value;
    return NULL;
}

//  POST /queues/Q: the JSON body is one item, put with a fresh id; or an
//  envelope of it with its delay and priority, which headers may give too.
static enum MHD_Result
s_api_put (zf_gateway_t *self, struct MHD_Connection *connection, const char *queue, s_post_t *post)
{
    if (post->big)
        return s_json (connection, 413, s_error ("the body is over %d bytes", BODY_MAX));
    msgpack_sbuffer item;
    msgpack_sbuffer_init (&item);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &item, msgpack_sbuffer_write);
    zf_error_t err;
    if (zf_json_to_msgpack (post->body ? post->body : "", post->size, &pk, &err)) {
        msgpack_sbuffer_destroy (&item);
        return s_json (connection, 400, s_error ("the body is not JSON: %s", err.text));
    }
    zf_put_opts_t opts = { 0 };
    const uint8_t *body = (const uint8_t *) item.data;
    size_t size = item.size;
    s_envelope ((const uint8_t *) item.data, item.size, &body, &size, &opts);
    const char *wrong = s_put_headers (connection, &opts);
    if (wrong || opts.priority < 0) {
        msgpack_sbuffer_destroy (&item);
        return s_json (connection, 400,
                       s_error ("%s", wrong ? wrong : "priority is not from 0 to 9"));
    }
    if (opts.headers_size && zf_proto_check_headers (opts.headers, opts.headers_size, &err)) {
        msgpack_sbuffer_destroy (&item);
        return s_json (connection, 400, s_error ("headers: %s", err.text));
    }
    // A full queue answers in a short while, so that a web handler can say
    // "busy, try later" rather than hang.
    opts.wait_ms = self->put_wait;
    zf_id_t id;
    bool named = *queue && strlen (queue) <= ZF_NAME_MAX;
    int rc = named ? zf_client_put_with (self->client, queue, body, size, &opts, &id) : -1;
    msgpack_sbuffer_destroy (&item);
    if (!named)
        return s_json (connection, 400, s_error ("'%.64s' is no queue name", queue));
    if (rc) {
        // Over the broker's max-frame: too large, whenever it is sent.
        const char *error = zf_client_last_error (self->client);
        return s_json (connection, strstr (error, "max-frame") ? 413 : 503, s_error ("%s", error));
    }
    if (zf_client_flush (self->client, CONFIRM_MS)) {
        const char *error = zf_client_last_error (self->client);
        if (strncmp (error, "refused: ", 9) == 0 && strstr (error, "is full (max-depth"))
            return s_busy (connection, self->put_wait, s_error ("%s", error + 9));
        if (strncmp (error, "refused: ", 9) == 0)
            return s_json (connection, strstr (error, "no queue '") ? 404 : 507,
                           s_error ("%s", error + 9));
        return s_json (connection, 503, s_error ("the broker did not confirm the item"));
    }
    char hex[ZF_ID_HEX];
    return s_json (connection, 200, zsys_sprintf ("{\"id\":\"%s\"}\n", zf_id_format (&id, hex)));
}
//  GET /queues: the figures of every queue.
static enum MHD_Result
s_api_queues (zf_gateway_t *self, struct MHD_Connection *connection)
{
    size_t count = 0;
    zf_figures_t *queues = zf_client_queues (self->client, &count, CONFIRM_MS);
    if (!queues)
        return s_json (connection, 503, s_error ("the broker did not answer"));
    s_text_t t = { .data = (char *) malloc (1024), .cap = 1024 };
    s_add (&t, "[");
    for (size_t i = 0; i < count; i++) {
        char name[2 * ZF_NAME_MAX + 2];
        s_label (queues[i].name, (uint32_t) strlen (queues[i].name), name, sizeof name);
        s_add (&t,
               "%s{\"name\":\"%s\",\"depth\":%llu,\"inflight\":%llu,\"put\":%llu,\"ack\":%llu,"
               "\"nack\":%llu,\"dead\":%llu,\"consumers\":%u}",
               i ? "," : "", name, (unsigned long long) queues[i].depth,
               (unsigned long long) queues[i].inflight, (unsigned long long) queues[i].put,
               (unsigned long long) queues[i].ack, (unsigned long long) queues[i].nack,
               (unsigned long long) queues[i].dead, queues[i].consumers);
    }
    s_add (&t, "]\n");
    free (queues);
    return s_json (connection, 200, t.data);
}

//  GET /messages/ID: an item's state, as zflow status says it.
static enum MHD_Result
s_api_message (zf_gateway_t *self, struct MHD_Connection *connection, const char *hex)
{
    zf_id_t id;
    if (zf_id_parse (&id, hex))
        return s_json (connection, 400, s_error ("'%.64s' is not an id (32 hex digits)", hex));
    zf_result_t *item = zf_client_item (self->client, &id, CONFIRM_MS);
    if (!item)
        return s_json (connection, 503, s_error ("the broker did not answer"));
    char canonical[ZF_ID_HEX];
    char *json = zf_tasks_item_json (item, zf_id_format (&id, canonical));
    zf_result_destroy (&item);
    return s_json (connection, 200, json);
}

//  GET /results/ID[?wait=30s]: a root's state and results; with wait, once
//  its lineage is over or the wait passed (200 either way: state says).
static enum MHD_Result
s_api_result (zf_gateway_t *self, struct MHD_Connection *connection, const char *hex)
{
    zf_id_t id;
    if (zf_id_parse (&id, hex))
        return s_json (connection, 400, s_error ("'%.64s' is not an id (32 hex digits)", hex));
    const char *wait_text = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "wait");
    int64_t wait = 0;
    zf_error_t err;
    if (wait_text && (zf_parse_duration (wait_text, &wait, &err) || wait > WAIT_MAX_MS))
        return s_json (connection, 400,
                       s_error ("wait: '%.32s' is not a duration of at most %d s", wait_text,
                                WAIT_MAX_MS / 1000));
    zf_result_t *result = zf_client_result (self->client, &id, (int) wait, CONFIRM_MS);
    if (!result)
        return s_json (connection, 503, s_error ("the broker did not answer"));
    char canonical[ZF_ID_HEX];
    char *json = zf_tasks_result_json (result, zf_id_format (&id, canonical));
    bool unknown = streq (zf_result_state (result), "unknown");
    zf_result_destroy (&result);
    char *line = zsys_sprintf ("%s\n", json);
    free (json);
    return s_json (connection, unknown ? 404 : 200, line);
}

//  DELETE /messages/ID: cancel what is left of a root's lineage.
static enum MHD_Result
s_api_cancel (zf_gateway_t *self, struct MHD_Connection *connection, const char *hex)
{
    zf_id_t id;
    if (zf_id_parse (&id, hex))
        return s_json (connection, 400, s_error ("'%.64s' is not an id (32 hex digits)", hex));
    zf_client_cancel (self->client, &id, "cancelled over HTTP");
    char state[32];
    if (zf_client_status (self->client, &id, state, sizeof state, CONFIRM_MS))
        return s_json (connection, 503, s_error ("the broker did not answer"));
    char canonical[ZF_ID_HEX];
    return s_json (
        connection, streq (state, "unknown") ? 404 : 200,
        zsys_sprintf ("{\"id\":\"%s\",\"state\":\"%s\"}\n", zf_id_format (&id, canonical), state));
}

static enum MHD_Result
s_request (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void) version;
    zf_gateway_t *self = (zf_gateway_t *) cls;
    if (strcmp (method, "POST") == 0) {
        // The body comes over several calls; the answer goes at the last.
        s_post_t *body = (s_post_t *) *state;
        if (!body) {
            *state = zmalloc (sizeof (s_post_t));
            return MHD_YES;
        }
        if (*upload_size) {
            if (body->size + *upload_size > BODY_MAX)
                body->big = true;
            else {
                body->body = (char *) realloc (body->body, body->size + *upload_size + 1);
                memcpy (body->body + body->size, upload_data, *upload_size);
                body->size += *upload_size;
                body->body[body->size] = 0;
            }
            *upload_size = 0;
            return MHD_YES;
        }
        if (self->api && strncmp (url, "/queues/", 8) == 0)
            return s_api_put (self, connection, url + 8, body);
        return s_json (connection, self->api ? 404 : 405,
                       s_error (self->api
                                    ? "POST goes to /queues/QUEUE"
                                    : "the JSON API is off (api = true in the broker section)"));
    }
    if (self->api && strcmp (method, "DELETE") == 0 && strncmp (url, "/messages/", 10) == 0)
        return s_api_cancel (self, connection, url + 10);
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
    if (self->api && strcmp (url, "/queues") == 0)
        return s_api_queues (self, connection);
    if (self->api && strncmp (url, "/messages/", 10) == 0)
        return s_api_message (self, connection, url + 10);
    if (self->api && strncmp (url, "/results/", 9) == 0)
        return s_api_result (self, connection, url + 9);
    return s_json (connection, 404,
                   s_error ("no %.200s here: GET /metrics, /health%s", url,
                            self->api ? ", /queues, /messages/ID, /results/ID[?wait=D]; POST "
                                        "/queues/QUEUE; DELETE /messages/ID"
                                      : ""));
}

zf_gateway_t *
zf_gateway_new (const char *address, const char *events, const char *broker, bool api,
                int64_t put_wait, zf_error_t *err)
{
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
    zf_gateway_t *self = (zf_gateway_t *) zmalloc (sizeof (zf_gateway_t));
    snprintf (self->endpoint, sizeof self->endpoint, "%s", events);
    snprintf (self->broker, sizeof self->broker, "%s", broker);
    self->api = api;
    self->put_wait = put_wait;
    self->decoded = zf_stats_new ();
    self->daemon =
        MHD_start_daemon (MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, s_request, self,
                          MHD_OPTION_SOCK_ADDR, &where, MHD_OPTION_NOTIFY_COMPLETED, s_done, NULL,
                          MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!self->daemon) {
        zf_error_set (err, ZF_EIO, "metrics: cannot listen on %s", address);
        zf_gateway_destroy (&self);
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
zf_gateway_destroy (zf_gateway_t **self_p)
{
    zf_gateway_t *self = *self_p;
    if (!self)
        return;
    zf_thread_destroy (&self->server); // first: it drives the daemon
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    free (self->stats);
    zf_stats_destroy (&self->decoded);
    free (self);
    *self_p = NULL;
}

int
zf_gateway_for (zf_pipeline_t *pipeline, const char *endpoint, const char *events,
                zf_gateway_t **gateway_p, zf_error_t *err)
{
    const char *address = pipeline->broker_settings.metrics;
    *gateway_p = address ? zf_gateway_new (address, events, endpoint, pipeline->broker_settings.api,
                                           pipeline->broker_settings.api_put_wait, err)
                         : NULL;
    return address && !*gateway_p ? -1 : 0;
}

const char *
zf_gateway_address (zf_gateway_t *self)
{
    return self->address;
}
