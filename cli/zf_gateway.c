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
#include "zf_json.h"
#include "zf_mp.h"
#include "zf_proto.h"
#include "zf_thread.h"
#include "zflow.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#define STALE_MS   5000      // /health fails when no stats came for this long
#define BODY_MAX   (1 << 20) // bytes of a POSTed item at most
#define CONFIRM_MS 5000      // how long a POST waits for the broker's confirm

struct _zf_gateway_t {
    struct MHD_Daemon *daemon; // the HTTP server, driven by the server thread
    zf_thread_t *server;       // the server thread
    bool api;                  // serve the JSON API
    uint8_t *stats;            // the latest stats event's body, or NULL
    size_t stats_size;         // its size
    int64_t stats_at;          // when it came (ms, monotonic)
    uint64_t events;           // stats events seen
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

//  The metrics of one kind of figure: name, Prometheus type, help, and the
//  key it comes from in the stats event.
typedef struct {
    const char *name, *type, *help, *key;
} s_metric_t;

static const s_metric_t s_queue_metrics[] = {
    { "zflow_queue_depth", "gauge", "Items stored in the queue, waiting or in flight.", "depth" },
    { "zflow_queue_inflight", "gauge", "Items delivered and not yet acked.", "inflight" },
    { "zflow_queue_put_total", "counter", "Items accepted into the queue.", "put" },
    { "zflow_queue_acked_total", "counter", "Items acked.", "ack" },
    { "zflow_queue_nacked_total", "counter", "NACKs, timeouts and losses.", "nack" },
    { "zflow_queue_dead_total", "counter", "Items moved to the dead-letter queue.", "dead" },
    { NULL },
};
static const s_metric_t s_worker_metrics[] = {
    { "zflow_worker_inflight", "gauge", "Items the worker holds.", "inflight" },
    { "zflow_worker_done_total", "counter", "Items the worker acked.", "done" },
    { "zflow_worker_failed_total", "counter", "Items the worker nacked.", "failed" },
    { NULL },
};

//  Renders the family `metric` over the entries of the array `list` of the
//  stats map at data, labelled by the string keys in labels.
static void
s_family (s_text_t *t, const uint8_t *data, size_t size, const char *list, const s_metric_t *metric,
          const char *const *labels)
{
    s_add (t, "# HELP %s %s\n# TYPE %s %s\n", metric->name, metric->help, metric->name,
           metric->type);
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    uint32_t count, n;
    if (zf_mp_map (&mp, &count, NULL))
        return;
    for (uint32_t k = 0; k < count; k++) {
        if (!zf_mp_key_is (&mp, list)) {
            if (zf_mp_skip_pair (&mp))
                return;
            continue;
        }
        if (zf_mp_array (&mp, &n, NULL))
            return;
        for (uint32_t e = 0; e < n; e++) {
            uint32_t fields;
            if (zf_mp_map (&mp, &fields, NULL))
                return;
            char names[4][512] = { "", "", "", "" };
            uint64_t value = 0;
            for (uint32_t f = 0; f < fields; f++) {
                bool used = false;
                for (int l = 0; labels[2 * l] && !used; l++)
                    if (zf_mp_key_is (&mp, labels[2 * l + 1])) {
                        const char *str;
                        uint32_t len;
                        uint64_t number;
                        if (zf_mp_str (&mp, &str, &len, NULL) == 0)
                            s_label (str, len, names[l], sizeof names[l]);
                        else if (zf_mp_uint (&mp, &number, NULL) == 0)
                            snprintf (names[l], sizeof names[l], "%llu",
                                      (unsigned long long) number);
                        else
                            zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL);
                        used = true;
                    }
                if (!used && zf_mp_key_is (&mp, metric->key)) {
                    value = zf_mp_uint_or_skip (&mp);
                    used = true;
                }
                if (!used && (zf_mp_skip_pair (&mp)))
                    return;
            }
            s_add (t, "%s{", metric->name);
            for (int l = 0; labels[2 * l]; l++)
                s_add (t, "%s%s=\"%s\"", l ? "," : "", labels[2 * l], names[l]);
            s_add (t, "} %llu\n", (unsigned long long) value);
        }
        return;
    }
}

//  Moves mp, at a map, to the value of its key key. False if the map has
//  no such key (or is not a map).
static bool
s_seek (zf_mp_t *mp, const char *key)
{
    uint32_t count;
    if (zf_mp_map (mp, &count, NULL))
        return false;
    for (uint32_t k = 0; k < count; k++) {
        if (zf_mp_key_is (mp, key))
            return true;
        if (zf_mp_skip_pair (mp))
            return false;
    }
    return false;
}

//  A plain number of the stats map: at its top (lineages, rejected, ...)
//  or, for MAP.KEY, in one of its maps (journal.written). Nothing when the
//  map does not have it.
static void
s_scalar (s_text_t *t, const uint8_t *data, size_t size, const char *key, const char *name,
          const char *type, const char *help)
{
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    char outer[32];
    const char *dot = strchr (key, '.');
    snprintf (outer, sizeof outer, "%.*s", dot ? (int) (dot - key) : (int) strlen (key), key);
    if (!s_seek (&mp, outer) || (dot && !s_seek (&mp, dot + 1)))
        return;
    s_add (t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
           (unsigned long long) zf_mp_uint_or_skip (&mp));
}

static char *
s_prometheus (const uint8_t *data, size_t size, uint64_t events, size_t *len)
{
    s_text_t t = { .data = (char *) malloc (4096), .cap = 4096 };
    static const char *const queue_labels[] = { "queue", "name", NULL };
    static const char *const worker_labels[] = { "actor", "actor", "worker", "worker",
                                                 "host",  "host",  NULL };
    for (int i = 0; s_queue_metrics[i].name; i++)
        s_family (&t, data, size, "queues", &s_queue_metrics[i], queue_labels);
    for (int i = 0; s_worker_metrics[i].name; i++)
        s_family (&t, data, size, "workers", &s_worker_metrics[i], worker_labels);
    s_scalar (&t, data, size, "lineages", "zflow_lineages", "gauge",
              "Roots whose lineage is not finished.");
    s_scalar (&t, data, size, "rejected", "zflow_rejected_total", "counter",
              "Messages refused as malformed.");
    s_scalar (&t, data, size, "late_acks", "zflow_late_acks_total", "counter",
              "Acks of deliveries that had timed out.");
    s_scalar (&t, data, size, "journal.written", "zflow_journal_written_bytes_total", "counter",
              "Bytes appended to the journal.");
    s_scalar (&t, data, size, "journal.durable", "zflow_journal_durable_bytes_total", "counter",
              "Bytes of the journal on disk (synced as the sync setting says).");
    s_scalar (&t, data, size, "journal.waiting", "zflow_journal_waiting_confirms", "gauge",
              "CONFIRMs held until their records are durable.");
    s_scalar (&t, data, size, "journal.compactions", "zflow_journal_compactions_total", "counter",
              "Snapshots written to compact the journal.");
    s_add (&t,
           "# HELP zflow_stats_events_total Stats events read.\n"
           "# TYPE zflow_stats_events_total counter\nzflow_stats_events_total %llu\n",
           (unsigned long long) events);
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

//  POST /queues/Q: the JSON body is one item, put with a fresh id.
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
    zf_id_t id;
    int rc = strlen (queue) > ZF_NAME_MAX || !*queue
                 ? -1
                 : zf_client_put (self->client, queue, item.data, item.size, &id);
    msgpack_sbuffer_destroy (&item);
    if (rc)
        return s_json (connection, 400, s_error ("'%.64s' is no queue name", queue));
    if (zf_client_flush (self->client, CONFIRM_MS))
        return s_json (connection, 503, s_error ("the broker did not confirm the item"));
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
    char state[32];
    if (zf_client_status (self->client, &id, state, sizeof state, CONFIRM_MS))
        return s_json (connection, 503, s_error ("the broker did not answer"));
    char canonical[ZF_ID_HEX];
    return s_json (
        connection, 200,
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
    if (strcmp (method, "GET") != 0)
        return s_json (connection, 405, s_error ("%.16s is not served here", method));
    if (strcmp (url, "/metrics") == 0) {
        size_t len = 0;
        char *text = self->stats ? s_prometheus (self->stats, self->stats_size, self->events, &len)
                                 : strdup ("");
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
    return s_json (connection, 404,
                   s_error ("no %.200s here: GET /metrics, /health%s", url,
                            self->api ? ", /queues, /messages/ID; POST /queues/QUEUE" : ""));
}

zf_gateway_t *
zf_gateway_new (const char *address, const char *events, const char *broker, bool api,
                zf_error_t *err)
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
    free (self);
    *self_p = NULL;
}

int
zf_gateway_for (zf_pipeline_t *pipeline, const char *endpoint, const char *events,
                zf_gateway_t **gateway_p, zf_error_t *err)
{
    const char *address = zf_conf_get (pipeline->broker, zf_broker_keys, "metrics");
    *gateway_p = address
                     ? zf_gateway_new (address, events, endpoint,
                                       zf_conf_bool (pipeline->broker, zf_broker_keys, "api"), err)
                     : NULL;
    return address && !*gateway_p ? -1 : 0;
}

const char *
zf_gateway_address (zf_gateway_t *self)
{
    return self->address;
}
