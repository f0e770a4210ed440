/*  zf_metrics: the broker's HTTP endpoint for monitoring, on libmicrohttpd:
    GET /metrics, the figures of the latest `stats` event as Prometheus text,
    and GET /health. A reader thread subscribes to the broker's events like
    any monitor and keeps the latest stats; requests are answered from that
    copy, so the broker's own thread never waits on HTTP. See zf_metrics.h.
*/
#include "zf_metrics.h"
#include "zf_mp.h"
#include "zf_proto.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>

#define STALE_MS 5000 // /health fails when no stats came for this long

struct _zf_metrics_t {
    struct MHD_Daemon *daemon; // the HTTP server
    zactor_t *reader;          // keeps the latest stats
    pthread_mutex_t lock;      // guards what follows
    uint8_t *stats;            // the latest stats event's body, or NULL
    size_t stats_size;         // its size
    int64_t stats_at;          // when it came (ms, monotonic)
    uint64_t events;           // stats events seen
    char address[64];          // where it listens, ADDRESS:PORT
    char endpoint[256];        // the broker's events endpoint
};

//  The reader: takes every stats event, keeps the last.
static void
s_reader (zsock_t *pipe, void *args)
{
    zf_metrics_t *self = (zf_metrics_t *) args;
    zsock_t *sub = zsock_new_sub (self->endpoint, "stats");
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, sub, NULL);
    while (sub) {
        void *which = zpoller_wait (poller, -1);
        if (which != sub)
            break; // $TERM, or interrupted
        zmsg_t *msg = zmsg_recv (sub);
        zframe_t *topic = msg ? zmsg_first (msg) : NULL;
        zframe_t *body = msg ? zmsg_next (msg) : NULL;
        if (topic && body && zframe_streq (topic, "stats")) {
            uint8_t *copy = (uint8_t *) malloc (zframe_size (body));
            memcpy (copy, zframe_data (body), zframe_size (body));
            pthread_mutex_lock (&self->lock);
            free (self->stats);
            self->stats = copy;
            self->stats_size = zframe_size (body);
            self->stats_at = zclock_mono ();
            self->events++;
            pthread_mutex_unlock (&self->lock);
        }
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
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

//  Reads an unsigned integer value, or skips what is there: 0 then.
static uint64_t
s_uint (zf_mp_t *mp)
{
    uint64_t value = 0;
    if (zf_mp_uint (mp, &value, NULL))
        zf_mp_skip (mp, ZF_MP_MAX_DEPTH, NULL);
    return value;
}

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
            if (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL) || zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL))
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
                    value = s_uint (&mp);
                    used = true;
                }
                if (!used && (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL) ||
                              zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL)))
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

//  A plain number at the top of the stats map (lineages, rejected, ...).
static void
s_scalar (s_text_t *t, const uint8_t *data, size_t size, const char *key, const char *name,
          const char *type, const char *help)
{
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    uint32_t count;
    if (zf_mp_map (&mp, &count, NULL))
        return;
    for (uint32_t k = 0; k < count; k++) {
        if (zf_mp_key_is (&mp, key)) {
            s_add (t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                   (unsigned long long) s_uint (&mp));
            return;
        }
        if (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL) || zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL))
            return;
    }
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

static enum MHD_Result
s_request (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void) version;
    (void) upload_data;
    (void) upload_size;
    (void) state;
    zf_metrics_t *self = (zf_metrics_t *) cls;
    if (strcmp (method, "GET") != 0) {
        char *body = strdup ("only GET is served here\n");
        return s_answer (connection, 405, "text/plain", body, strlen (body));
    }
    pthread_mutex_lock (&self->lock);
    uint8_t *stats = NULL;
    size_t size = self->stats_size;
    int64_t age = self->stats ? zclock_mono () - self->stats_at : -1;
    uint64_t events = self->events;
    if (self->stats) {
        stats = (uint8_t *) malloc (size);
        memcpy (stats, self->stats, size);
    }
    pthread_mutex_unlock (&self->lock);
    enum MHD_Result rc;
    if (strcmp (url, "/metrics") == 0) {
        size_t len = 0;
        char *text = stats ? s_prometheus (stats, size, events, &len) : strdup ("");
        rc = s_answer (connection, 200, "text/plain; version=0.0.4", text, len);
    }
    else if (strcmp (url, "/health") == 0) {
        char *text;
        bool fresh = age >= 0 && age < STALE_MS;
        if (fresh)
            text = strdup ("ok\n");
        else
            text = zsys_sprintf ("no stats from the broker %s\n",
                                 age < 0 ? "yet" : "for more than 5 s");
        rc = s_answer (connection, fresh ? 200 : 503, "text/plain", text, strlen (text));
    }
    else {
        char *text = zsys_sprintf ("no %s here: GET /metrics or /health\n", url);
        rc = s_answer (connection, 404, "text/plain", text, strlen (text));
    }
    free (stats);
    return rc;
}

zf_metrics_t *
zf_metrics_new (const char *address, const char *events, zf_error_t *err)
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
    zf_metrics_t *self = (zf_metrics_t *) zmalloc (sizeof (zf_metrics_t));
    pthread_mutex_init (&self->lock, NULL);
    snprintf (self->endpoint, sizeof self->endpoint, "%s", events);
    self->reader = zactor_new (s_reader, self);
    self->daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
                                     NULL, s_request, self, MHD_OPTION_SOCK_ADDR, &where,
                                     MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!self->daemon) {
        zf_error_set (err, ZF_EIO, "metrics: cannot listen on %s", address);
        zf_metrics_destroy (&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf (self->address, sizeof self->address, "%s:%u", host,
              info ? (unsigned) info->port : (unsigned) port);
    return self;
}

void
zf_metrics_destroy (zf_metrics_t **self_p)
{
    zf_metrics_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    zactor_destroy (&self->reader);
    pthread_mutex_destroy (&self->lock);
    free (self->stats);
    free (self);
    *self_p = NULL;
}

const char *
zf_metrics_address (zf_metrics_t *self)
{
    return self->address;
}
