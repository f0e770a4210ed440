/*  zf_pipeline: pipeline config model and validation. See zf_pipeline.h. */
#include "zf_pipeline.h"
#include "zflow.h"

#include "zf_alloc.h"
#include "zf_value.h"
#include "zf_zpl.h"

#include <arpa/inet.h>
#include <libgen.h>
#include <unistd.h>

//  The next name of a comma-separated list at *p (spaces around it
//  skipped), its length in *len; NULL at the end.
static const char *
s_next_name (const char **p, size_t *len)
{
    while (**p == ' ' || **p == ',')
        (*p)++;
    if (!**p)
        return NULL;
    const char *name = *p;
    while (**p && **p != ',')
        (*p)++;
    *len = (size_t) (*p - name);
    while (*len && name[*len - 1] == ' ')
        (*len)--;
    return name;
}

//  results: queue names, comma-separated.
static int
s_check_queues (const char *value, zf_error_t *err)
{
    static const zf_key_t queue = { .name = "results", .type = ZF_KEY_QUEUE };
    const char *p = value, *name;
    size_t len = 0, count = 0;
    while ((name = s_next_name (&p, &len))) {
        char one[ZF_NAME_MAX + 2];
        snprintf (one, sizeof one, "%.*s", (int) (len < sizeof one ? len : sizeof one - 1), name);
        if (zf_key_check (&queue, one, err))
            return -1;
        count++;
    }
    if (!count)
        return zf_error_set (err, ZF_EVALUE, "name one queue or more, comma-separated");
    return 0;
}

//  Whether name is one of the comma-separated list's (NULL: none).
static bool
s_named (const char *list, const char *name)
{
    const char *p = list ? list : "", *one;
    size_t len = 0;
    while ((one = s_next_name (&p, &len)))
        if (len == strlen (name) && strncmp (one, name, len) == 0)
            return true;
    return false;
}

const zf_key_t zf_pipeline_keys[] = {
    { .name = "name",
      ZF_FIELD (ZF_KEY_STRING, zf_pipeline_settings_t, name),
      .help = "the pipeline's name (default: the file's)" },
    { .name = "results",
      ZF_FIELD (ZF_KEY_STRING, zf_pipeline_settings_t, results),
      .shown = "QUEUE,...",
      .check = s_check_queues,
      .help = "queues (comma-separated) whose items are also kept as the results of their root "
              "item (zflow result); a queue that actors write and none reads always is one" },
    { NULL },
};

//  ADDRESS:PORT, :PORT or PORT, with an IPv4 address.
static int
s_check_http_address (const char *value, zf_error_t *err)
{
    const char *colon = strrchr (value, ':');
    const char *port = colon ? colon + 1 : value;
    char host[64] = "127.0.0.1";
    if (colon && colon > value)
        snprintf (host, sizeof host, "%.*s", (int) (colon - value), value);
    char *end;
    long number = strtol (port, &end, 10);
    struct in_addr address;
    if (!*port || *end || number < 0 || number > 65535 || inet_pton (AF_INET, host, &address) != 1)
        return zf_error_set (err, ZF_EVALUE, "'%s' is not ADDRESS:PORT (e.g. 127.0.0.1:9100)",
                             value);
    return 0;
}

const zf_key_t zf_broker_keys[] = {
    { .name = "endpoint",
      ZF_FIELD (ZF_KEY_ENDPOINT, zf_broker_settings_t, endpoint),
      .fallback = "tcp://127.0.0.1:5670",
      .help = "where actors connect (ROUTER)" },
    { .name = "events",
      ZF_FIELD (ZF_KEY_ENDPOINT, zf_broker_settings_t, events),
      .fallback = "tcp://127.0.0.1:5671",
      .help = "where monitors subscribe: stats, events, data taps (XPUB)" },
    { .name = "intake",
      ZF_FIELD (ZF_KEY_ENDPOINT, zf_broker_settings_t, intake),
      .help = "a PULL socket any ZeroMQ PUSH client can feed [queue][msgpack]; off if not given" },
    { .name = "metrics",
      ZF_FIELD (ZF_KEY_STRING, zf_broker_settings_t, metrics),
      .help = "ADDRESS:PORT of an HTTP server with /metrics (Prometheus) and /health; off if not "
              "given, loopback if only :PORT",
      .check = s_check_http_address },
    { .name = "api",
      ZF_FIELD (ZF_KEY_BOOL, zf_broker_settings_t, api),
      .fallback = "false",
      .help = "serve a JSON API on the metrics address: POST /queues/Q (one item or a batch), "
              "GET /results/ID?wait=D, GET and DELETE /messages/ID, GET /queues, GET "
              "/events?topic=P (docs/tasks.md)" },
    { .name = "api-put-wait",
      ZF_FIELD (ZF_KEY_DURATION, zf_broker_settings_t, api_put_wait),
      .fallback = "1s",
      .help = "how long an item POSTed to a full queue (max-depth) waits for room before the "
              "API answers 503 with Retry-After",
      .min = 1,
      .max = 60000 },
    { .name = "api-max-waiting",
      ZF_FIELD (ZF_KEY_INT, zf_broker_settings_t, api_max_waiting),
      .fallback = "10000",
      .help = "API requests waiting for the broker at once at most (puts for their confirm, "
              "results for their end): one more is answered 503 with Retry-After",
      .min = 1,
      .max = 1000000 },
    { .name = "api-token-file",
      ZF_FIELD (ZF_KEY_STRING, zf_broker_settings_t, api_token_file),
      .help = "a file holding the token every API request must bear (Authorization: Bearer "
              "TOKEN; 401 without it); needed when metrics is not loopback (or --insecure) and "
              "when the broker has CURVE",
      .flags = ZF_KEY_PATH },
    { .name = "http-max-connections",
      ZF_FIELD (ZF_KEY_INT, zf_broker_settings_t, http_max_connections),
      .fallback = "1000",
      .help = "HTTP connections at once at most (less if the broker may not open that many "
              "descriptors: a quarter of them stay for ZeroMQ and the journal); more wait to be "
              "accepted",
      .min = 1,
      .max = 1000000 },
    { .name = "http-max-per-address",
      ZF_FIELD (ZF_KEY_INT, zf_broker_settings_t, http_max_per_address),
      .fallback = "64",
      .help = "HTTP connections from one client address at most: one more is closed at once, "
              "so that one slow or hostile client cannot take them all",
      .min = 1,
      .max = 1000000 },
    { .name = "https-cert",
      ZF_FIELD (ZF_KEY_STRING, zf_broker_settings_t, https_cert),
      .help = "the HTTP server's certificate (PEM; with https-key): /metrics, /health and the "
              "API are served over HTTPS only",
      .flags = ZF_KEY_PATH },
    { .name = "https-key",
      ZF_FIELD (ZF_KEY_STRING, zf_broker_settings_t, https_key),
      .help = "the private key (PEM) of https-cert",
      .flags = ZF_KEY_PATH },
    { .name = "journal",
      ZF_FIELD (ZF_KEY_STRING, zf_broker_settings_t, journal),
      .help = "folder of the write-ahead log: what the broker confirms survives kill -9 and a "
              "restart; off if not given (zflow run keeps one in its state folder)",
      .flags = ZF_KEY_PATH },
    { .name = "sync",
      ZF_FIELD (ZF_KEY_ENUM, zf_broker_settings_t, sync),
      .fallback = "batch",
      .help = "when journal records reach the disk before confirms go: always (each loop "
              "turn), batch (every sync-interval), never (written, not synced: a crashed "
              "machine loses the last seconds)",
      .choices = "always|batch|never" },
    { .name = "sync-interval",
      ZF_FIELD (ZF_KEY_DURATION, zf_broker_settings_t, sync_interval),
      .fallback = "10ms",
      .help = "batch: the longest a confirm waits for the disk (a write after a quiet spell "
              "is synced at once)",
      .min = 1,
      .max = 1000 },
    { .name = "journal-segment",
      ZF_FIELD (ZF_KEY_SIZE, zf_broker_settings_t, journal_segment),
      .fallback = "64MiB",
      .help = "journal size past which the live state is written anew and the old segments "
              "deleted (compaction)",
      .min = 4096,
      .max = 1LL << 40 },
    { .name = "curve-secret",
      ZF_FIELD (ZF_KEY_STRING, zf_broker_settings_t, curve_secret),
      .help = "the broker's CURVE certificate (the NAME_secret file of zflow keygen): every "
              "socket encrypts, and only the clients in curve-clients get in",
      .flags = ZF_KEY_PATH },
    { .name = "curve-public",
      ZF_FIELD (ZF_KEY_STRING, zf_broker_settings_t, curve_public),
      .help = "the broker's public certificate, which clients need (default: curve-secret "
              "without _secret)",
      .flags = ZF_KEY_PATH },
    { .name = "curve-clients",
      ZF_FIELD (ZF_KEY_STRING, zf_broker_settings_t, curve_clients),
      .help = "folder of the public certificates of the clients allowed in (read again when it "
              "changes)",
      .flags = ZF_KEY_PATH },
    { .name = "curve-client",
      ZF_FIELD (ZF_KEY_STRING, zf_broker_settings_t, curve_client),
      .help = "the certificate actors without a curve-secret of their own, and zflow run's own "
              "clients, use",
      .flags = ZF_KEY_PATH },
    { .name = "heartbeat",
      ZF_FIELD (ZF_KEY_DURATION, zf_broker_settings_t, heartbeat),
      .fallback = "1s",
      .help = "interval of heartbeats both ways",
      .min = 10,
      .max = 60000 },
    { .name = "liveness",
      ZF_FIELD (ZF_KEY_INT, zf_broker_settings_t, liveness),
      .fallback = "3",
      .help = "heartbeats missed before a peer is declared dead",
      .min = 1,
      .max = 100 },
    { .name = "dedup-window",
      ZF_FIELD (ZF_KEY_INT, zf_broker_settings_t, dedup_window),
      .fallback = "262144",
      .help = "item ids remembered to drop duplicate PUTs",
      .min = 0,
      .max = 100000000 },
    { .name = "group-expiry",
      ZF_FIELD (ZF_KEY_DURATION, zf_broker_settings_t, group_expiry),
      .fallback = "30s",
      .help = "a consumer group that no actor of the pipeline declares (a client's) is forgotten "
              "when it has had no worker for this long, and the items it held are let go",
      .min = 1,
      .max = 7LL * 86400000 },
    { .name = "max-groups",
      ZF_FIELD (ZF_KEY_INT, zf_broker_settings_t, max_groups),
      .fallback = "1000",
      .help = "consumer groups that no actor of the pipeline declares (clients') at most, all "
              "queues together: a HELLO that would make one more is refused (ERROR too-big, "
              "counted in rejected) until some are forgotten (group-expiry)",
      .min = 1,
      .max = 1000000 },
    { .name = "result-ttl",
      ZF_FIELD (ZF_KEY_DURATION, zf_broker_settings_t, result_ttl),
      .fallback = "1h",
      .help = "how long the results of a root item are kept after its lineage ended",
      .min = 1,
      .max = 100 * 365LL * 86400000 },
    { .name = "result-max-bytes",
      ZF_FIELD (ZF_KEY_SIZE, zf_broker_settings_t, result_max_bytes),
      .fallback = "64MiB",
      .help = "bytes of results kept at most, all roots together; a result beyond is refused",
      .min = 0,
      .max = 1LL << 40 },
    { .name = "window",
      ZF_FIELD (ZF_KEY_INT, zf_broker_settings_t, window),
      .fallback = "1000",
      .help = "unconfirmed items a writer may have outstanding",
      .min = 1,
      .max = 1000000 },
    { .name = "max-frame",
      ZF_FIELD (ZF_KEY_SIZE, zf_broker_settings_t, max_frame),
      .fallback = "16MiB",
      .help = "largest message accepted on any socket",
      .min = 1024,
      .max = 1LL << 31 },
    { NULL },
};

static int
s_check_header_name (const char *value, zf_error_t *err)
{
    size_t len = strlen (value);
    if (len == 0 || len > 128)
        return zf_error_set (err, ZF_EVALUE, "a header name has 1 to 128 characters");
    for (const char *p = value; *p; p++)
        if ((unsigned char) *p <= ' ' || *p == 0x7f || *p == '=' || *p == ':')
            return zf_error_set (err, ZF_EVALUE,
                                 "'%s' is not a header name (no spaces, '=' or ':')", value);
    return 0;
}

static int
s_check_flow_key (const char *value, zf_error_t *err)
{
    if (streq (value, "url-host"))
        return 0;
    if (strncmp (value, "header:", 7) != 0)
        return zf_error_set (err, ZF_EVALUE,
                             "'%s' is not a key: header:NAME (a header of the item) or url-host",
                             value);
    return s_check_header_name (value + 7, err);
}

//  The keys of flow control: a queue's, and an actor's `flow` section's.
#define S_FLOW_KEYS                                                                                \
    { .name = "rate",                                                                              \
      ZF_FIELD (ZF_KEY_RATE, zf_queue_settings_t, rate),                                           \
      .fallback = "0",                                                                             \
      .help = "deliveries at most, each consumer group's workers on every host together (100/s, "  \
              "5/min, 2000/h, 50/d), spaced evenly; 0 for no limit" },                             \
        { .name = "burst",                                                                         \
          ZF_FIELD (ZF_KEY_INT, zf_queue_settings_t, burst),                                       \
          .help = "deliveries at once that rate and rate-per-key allow after a quiet spell (else " \
                  "they "                                                                          \
                  "are spaced evenly)",                                                            \
          .fallback = "1",                                                                         \
          .min = 1,                                                                                \
          .max = 1000000 },                                                                        \
        { .name = "key",                                                                           \
          ZF_FIELD (ZF_KEY_STRING, zf_queue_settings_t, key),                                      \
          .help =                                                                                  \
              "what names an item's key for the per-key limits and fair turns: header:NAME (a "    \
              "header set at put time or by the actor that wrote it), or url-host (every zflow "   \
              "writer, actors, clients and HTTP API, sets zflow-key to the host, and port, of "    \
              "the item's url); items without one share the key \"\"",                             \
          .check = s_check_flow_key },                                                             \
        { .name = "rate-per-key",                                                                  \
          ZF_FIELD (ZF_KEY_RATE, zf_queue_settings_t, rate_per_key),                               \
          .fallback = "0",                                                                         \
          .help =                                                                                  \
              "deliveries of one key at most (as rate), across the group's workers; needs key" },  \
        { .name = "max-in-flight-per-key",                                                         \
          ZF_FIELD (ZF_KEY_INT, zf_queue_settings_t, max_inflight_per_key),                        \
          .fallback = "0",                                                                         \
          .help =                                                                                  \
              "items of one key held by the group's workers at once, at most; 0 for no limit; "    \
              "needs key",                                                                         \
          .min = 0,                                                                                \
          .max = 1000000 },                                                                        \
        { .name = "fair",                                                                          \
          ZF_FIELD (ZF_KEY_BOOL, zf_queue_settings_t, fair),                                       \
          .fallback = "false",                                                                     \
          .help =                                                                                  \
              "keys take turns, one item each (round robin) within each priority, so that one "    \
              "key's backlog does not delay the others; needs key" },                              \
    {                                                                                              \
        .name = "weight-header", ZF_FIELD (ZF_KEY_STRING, zf_queue_settings_t, weight_header),     \
        .help =                                                                                    \
            "with fair: the header whose value (1 to 1000, default 1) is a key's share of the "    \
            "turns, as its latest item says",                                                      \
        .check = s_check_header_name                                                               \
    }

const zf_key_t zf_queue_keys[] = {
    { .name = "max-depth",
      ZF_FIELD (ZF_KEY_INT, zf_queue_settings_t, max_depth),
      .fallback = "2000",
      .help = "items waiting at most; writers get no credit beyond",
      .min = 1,
      .max = 1000000000 },
    { .name = "max-attempts",
      ZF_FIELD (ZF_KEY_INT, zf_queue_settings_t, max_attempts),
      .fallback = "5",
      .help = "deliveries of an item before it goes to QUEUE.dead",
      .min = 1,
      .max = 1000 },
    { .name = "timeout",
      ZF_FIELD (ZF_KEY_DURATION, zf_queue_settings_t, timeout),
      .fallback = "10m",
      .help = "an item held longer than this is redelivered; 0 for never" },
    { .name = "retry-base",
      ZF_FIELD (ZF_KEY_DURATION, zf_queue_settings_t, retry_base),
      .fallback = "100ms",
      .help = "backoff before the first redelivery (doubles, full jitter)" },
    { .name = "retry-max",
      ZF_FIELD (ZF_KEY_DURATION, zf_queue_settings_t, retry_max),
      .fallback = "30s",
      .help = "longest backoff between redeliveries" },
    { .name = "external",
      ZF_FIELD (ZF_KEY_BOOL, zf_queue_settings_t, external),
      .fallback = "false",
      .help = "fed from outside the pipeline (zflow put, intake, HTTP)" },
    S_FLOW_KEYS,
    { NULL },
};

const zf_key_t zf_flow_keys[] = {
    S_FLOW_KEYS,
    { NULL },
};

const char *
zf_queue_key_header (const zf_queue_settings_t *settings)
{
    if (!settings->key)
        return NULL;
    if (streq (settings->key, "url-host"))
        return "zflow-key";
    return settings->key + strlen ("header:");
}

static int
s_check_nodes (const char *value, zf_error_t *err)
{
    char addresses[ZF_NODES_MAX][256];
    int count;
    return zf_parse_nodes (value, addresses, &count, err);
}

const zf_key_t zf_cluster_keys[] = {
    { .name = "nodes",
      ZF_FIELD (ZF_KEY_STRING, zf_cluster_settings_t, nodes),
      .help = "HOST:PORT,HOST:PORT,...: the Raft address of each broker of the group (three, or "
              "five); each replicates the journal and one, the leader, serves",
      .check = s_check_nodes },
    { .name = "election-timeout",
      ZF_FIELD (ZF_KEY_DURATION, zf_cluster_settings_t, election_timeout),
      .fallback = "1s",
      .help = "silence from the leader after which the others elect a new one (at once to twice "
              "this)",
      .min = 50,
      .max = 60000 },
    { .name = "snapshot-every",
      ZF_FIELD (ZF_KEY_INT, zf_cluster_settings_t, snapshot_every),
      .fallback = "4096",
      .help = "Raft entries (broker loop turns) between snapshots of the state, which compact "
              "the log",
      .min = 16,
      .max = 1000000000 },
    { NULL },
};

static const char *s_sections[] = { "pipeline", "broker", "queues", "actors", "cluster", NULL };

//  A mistake found while loading, kept so the list can be sorted by line.
typedef struct {
    int line;   // where, 0 for the whole file
    size_t seq; // order of discovery, for a stable sort
    char *text; // "FILE:LINE: message"
} s_mistake_t;

//  Loading state: where errors go and how to name places.
typedef struct {
    zf_pipeline_t *pipeline;       // being built
    zf_zpl_t *zpl;                 // lines of nodes
    const zf_kind_t *const *kinds; // the kinds an actor may be, ended by NULL
    zlistx_t *mistakes;            // s_mistake_t, sorted into errors at the end
} s_loader_t;

static void
s_mistake_destroy (s_mistake_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->text);
        free (*self_p);
        *self_p = NULL;
    }
}

static int
s_mistake_compare (const void *a, const void *b)
{
    const s_mistake_t *x = (const s_mistake_t *) a, *y = (const s_mistake_t *) b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void s_error (s_loader_t *loader, zconfig_t *node, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_error (s_loader_t *loader, zconfig_t *node, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    s_mistake_t *mistake = (s_mistake_t *) zmalloc (sizeof (s_mistake_t));
    mistake->line = node ? zf_zpl_line (loader->zpl, node) : 0;
    mistake->seq = zlistx_size (loader->mistakes);
    if (mistake->line)
        mistake->text = zsys_sprintf ("%s:%d: %s", loader->pipeline->file, mistake->line, text);
    else
        mistake->text = zsys_sprintf ("%s: %s", loader->pipeline->file, text);
    zlistx_add_end (loader->mistakes, mistake);
    zstr_free (&text);
}

static void
s_queue_destroy (zf_queue_conf_t **self_p)
{
    if (!*self_p)
        return;
    zf_queue_conf_t *self = *self_p;
    free (self->name);
    zlistx_destroy (&self->writers);
    zlistx_destroy (&self->readers);
    free (self);
    *self_p = NULL;
}

static void
s_actor_destroy (zf_actor_conf_t **self_p)
{
    if (!*self_p)
        return;
    free ((*self_p)->name);
    free ((*self_p)->settings);
    free (*self_p);
    *self_p = NULL;
}

//  The queue named name, created (undeclared) at node's line if new.
static zf_queue_conf_t *
s_queue_require (s_loader_t *loader, const char *name, zconfig_t *node)
{
    zf_queue_conf_t *queue = zf_pipeline_queue (loader->pipeline, name);
    if (queue)
        return queue;
    queue = (zf_queue_conf_t *) zmalloc (sizeof (zf_queue_conf_t));
    queue->name = strdup (name);
    queue->line = zf_zpl_line (loader->zpl, node);
    queue->settings = loader->pipeline->queue_defaults;
    queue->writers = zlistx_new ();
    queue->readers = zlistx_new ();
    zlistx_add_end (loader->pipeline->queues, queue);
    zhashx_insert (loader->pipeline->queue_index, name, queue);
    return queue;
}

static bool
s_in_list (const char *list, const char *name)
{
    size_t len = strlen (name);
    for (const char *p = list; p && *p;) {
        const char *bar = strchr (p, '|');
        size_t n = bar ? (size_t) (bar - p) : strlen (p);
        if (n == len && strncmp (p, name, n) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

//  "a, b or c" from "a|b|c", for messages.
static void
s_or_list (const char *list, char *out, size_t size)
{
    char copy[128];
    snprintf (copy, sizeof copy, "%s", list);
    out[0] = 0;
    char *parts[16];
    int n = 0;
    for (char *tok = strtok (copy, "|"); tok && n < 16; tok = strtok (NULL, "|"))
        parts[n++] = tok;
    for (int i = 0; i < n; i++) {
        size_t used = strlen (out);
        snprintf (out + used, size - used, "%s%s",
                  i == 0       ? ""
                  : i == n - 1 ? " or "
                               : ", ",
                  parts[i]);
    }
}

//  Checks the entries of a sub-section of name = value lines.
static void
s_check_entries (s_loader_t *loader, zconfig_t *node, const char *where)
{
    if (zconfig_value (node) && *zconfig_value (node))
        s_error (loader, node, "%s: '%s' is a section; put its entries on indented lines below it",
                 where, zconfig_name (node));
    for (zconfig_t *entry = zconfig_child (node); entry; entry = zconfig_next (entry)) {
        if (zconfig_child (entry))
            s_error (loader, entry, "%s: '%s' in %s cannot have a section of its own", where,
                     zconfig_name (entry), zconfig_name (node));
        else if (!zconfig_value (entry))
            s_error (loader, entry, "%s: '%s' in %s needs a value (%s = ...)", where,
                     zconfig_name (entry), zconfig_name (node), zconfig_name (entry));
    }
}

//  Checks a section's keys against a table. kind, when given, allows its
//  jobs as sub-sections; one_of names keys of which exactly one is needed.
//  where says whose keys these are ("actor 'fetch'").
static void
s_check_section (s_loader_t *loader, zconfig_t *section, const zf_key_t *keys,
                 const zf_kind_t *kind, const char *one_of, const char *where,
                 const char *help_topic)
{
    zhashx_t *seen = zhashx_new ();
    int jobs = 0;
    for (zconfig_t *child = zconfig_child (section); child; child = zconfig_next (child)) {
        const char *name = zconfig_name (child);
        const char *value = zconfig_value (child);
        const zf_key_t *key = zf_keys_find (keys, name);
        if (!key && kind && kind->job_keys && (zconfig_child (child) || !value)) {
            char job_where[256];
            snprintf (job_where, sizeof job_where, "%s, %s '%s'", where, kind->job, name);
            s_check_section (loader, child, kind->job_keys, NULL, kind->one_of, job_where,
                             help_topic);
            jobs++;
            continue;
        }
        if (!key) {
            const char *near = zf_keys_nearest (keys, name);
            if (near)
                s_error (loader, child, "%s: unknown key '%s' (did you mean '%s'?)", where, name,
                         near);
            else
                s_error (loader, child, "%s: unknown key '%s' (zflow help %s lists the keys)",
                         where, name, help_topic);
            continue;
        }
        int first = (int) (intptr_t) zhashx_lookup (seen, name);
        if (first) {
            s_error (loader, child, "%s: '%s' is given twice (first at line %d)", where, name,
                     first);
            continue;
        }
        zhashx_insert (seen, name, (void *) (intptr_t) zf_zpl_line (loader->zpl, child));
        if (key->type == ZF_KEY_SECTION && key->keys) {
            char section_where[300];
            snprintf (section_where, sizeof section_where, "%s, %s", where, name);
            s_check_section (loader, child, key->keys, NULL, NULL, section_where, help_topic);
            continue;
        }
        if (key->type == ZF_KEY_SECTION) {
            s_check_entries (loader, child, where);
            continue;
        }
        if (zconfig_child (child)) {
            s_error (loader, child, "%s: '%s' takes a value, not a section", where, name);
            continue;
        }
        if (!value) {
            s_error (loader, child, "%s: '%s' needs a value (%s = ...)", where, name, name);
            continue;
        }
        zf_error_t err;
        if (zf_key_check (key, value, &err))
            s_error (loader, child, "%s: %s: %s", where, name, err.text);
    }
    // A section with a syntax error inside may have lost a key to it: the
    // syntax error is the one to report.
    bool broken = zf_zpl_broken (loader->zpl, section);
    for (const zf_key_t *key = keys; key->name && !broken; key++)
        if ((key->flags & ZF_KEY_REQUIRED) && !zhashx_lookup (seen, key->name))
            s_error (loader, section, "%s: missing required key '%s' (%s)", where, key->name,
                     key->help);
    if (one_of && !jobs && !broken) {
        int given = 0;
        for (zconfig_t *child = zconfig_child (section); child; child = zconfig_next (child))
            if (s_in_list (one_of, zconfig_name (child)))
                given++;
        char choices[128];
        s_or_list (one_of, choices, sizeof choices);
        if (given == 0)
            s_error (loader, section, "%s: needs one of %s", where, choices);
        else if (given > 1)
            s_error (loader, section, "%s: give only one of %s", where, choices);
    }
    else if (one_of && jobs)
        for (zconfig_t *child = zconfig_child (section); child; child = zconfig_next (child))
            if (s_in_list (one_of, zconfig_name (child)))
                s_error (loader, child,
                         "%s: '%s' beside %s sub-sections; put every trigger in a %s of its own",
                         where, zconfig_name (child), kind->job, kind->job);
    zhashx_destroy (&seen);
}

//  Checks that a file named by a path key is there to be read.
static void
s_check_path (s_loader_t *loader, zconfig_t *section, const char *key, const char *where)
{
    zconfig_t *node = zconfig_locate (section, key);
    const char *value = node ? zconfig_value (node) : NULL;
    if (!value || !*value)
        return;
    bool is_file = strncmp (value, "file:", 5) == 0;
    if (strcmp (key, "source") == 0 && !is_file)
        return; // stdin, seq:N, list
    if (strcmp (key, "target") == 0)
        return; // a sink creates its file
    char *path;
    int mode = R_OK;
    if (strcmp (key, "command") == 0) {
        // Only a program named by a path is checked; a bare name is looked
        // up in PATH when it runs.
        size_t len = strcspn (value, " \t");
        char *program = strndup (value, len);
        if (!strchr (program, '/')) {
            free (program);
            return;
        }
        path = zf_pipeline_path (loader->pipeline, program);
        free (program);
        mode = X_OK;
    }
    else
        path = zf_pipeline_path (loader->pipeline, value);
    if (access (path, mode) != 0)
        s_error (loader, node, "%s: %s '%s' %s (looked for %s)", where, key, value,
                 errno == ENOENT ? "does not exist"
                 : mode == X_OK  ? "is not executable"
                                 : "cannot be read",
                 path);
    free (path);
}

//  The per-key settings of a queue need its key.
static void
s_check_flow_settings (s_loader_t *loader, zconfig_t *node, const zf_queue_settings_t *settings,
                       const char *where)
{
    if (settings->key)
        return;
    const struct {
        const char *name;
        bool set;
    } per_key[] = { { "rate-per-key", settings->rate_per_key > 0 },
                    { "max-in-flight-per-key", settings->max_inflight_per_key > 0 },
                    { "fair", settings->fair },
                    { "weight-header", settings->weight_header != NULL } };
    for (size_t i = 0; i < sizeof per_key / sizeof per_key[0]; i++)
        if (per_key[i].set)
            s_error (loader, zconfig_locate (node, per_key[i].name),
                     "%s: %s needs key (key = header:NAME, or url-host): it says what an item's "
                     "key is",
                     where, per_key[i].name);
}

static void
s_load_queues (s_loader_t *loader, zconfig_t *section)
{
    for (zconfig_t *node = zconfig_child (section); node; node = zconfig_next (node)) {
        const char *name = zconfig_name (node);
        char where[200];
        snprintf (where, sizeof where, "queue '%s'", name);
        zf_error_t err;
        static const zf_key_t queue_name = { .name = "queue", .type = ZF_KEY_QUEUE };
        if (zf_key_check (&queue_name, name, &err)) {
            s_error (loader, node, "%s", err.text);
            continue;
        }
        if (zconfig_value (node) && *zconfig_value (node)) {
            s_error (loader, node, "%s: a queue is a section; put its keys on indented lines",
                     where);
            continue;
        }
        zf_queue_conf_t *queue = zf_pipeline_queue (loader->pipeline, name);
        if (queue) {
            s_error (loader, node, "%s is declared twice (first at line %d)", where, queue->line);
            continue;
        }
        queue = s_queue_require (loader, name, node);
        queue->node = node;
        s_check_section (loader, node, zf_queue_keys, NULL, NULL, where, "queues");
        zf_keys_bind (zf_queue_keys, node, &queue->settings);
        queue->external = queue->settings.external;
        s_check_flow_settings (loader, node, &queue->settings, where);
    }
}

static void
s_load_actors (s_loader_t *loader, zconfig_t *section)
{
    const char *kind_names[32];
    char all[256] = "", either[256]; // "producer, fetcher, ..., exec", and with "or"
    int n = 0;
    for (const zf_kind_t *const *k = loader->kinds; *k && n < 31; k++) {
        kind_names[n++] = (*k)->name;
        size_t used = strlen (all);
        snprintf (all + used, sizeof all - used, "%s%s", used ? ", " : "", (*k)->name);
    }
    kind_names[n] = NULL;
    char *last = strrchr (all, ',');
    if (last)
        snprintf (either, sizeof either, "%.*s or%s", (int) (last - all), all, last + 1);
    else
        snprintf (either, sizeof either, "%s", all);

    for (zconfig_t *node = zconfig_child (section); node; node = zconfig_next (node)) {
        const char *name = zconfig_name (node);
        char where[200];
        snprintf (where, sizeof where, "actor '%s'", name);
        zf_actor_conf_t *other = zf_pipeline_actor (loader->pipeline, name);
        if (other) {
            s_error (loader, node, "duplicate actor name '%s' (first at line %d)", name,
                     other->line);
            continue;
        }
        if (zconfig_value (node) && *zconfig_value (node)) {
            s_error (loader, node, "%s: an actor is a section; put its keys on indented lines",
                     where);
            continue;
        }
        zf_actor_conf_t *actor = (zf_actor_conf_t *) zmalloc (sizeof (zf_actor_conf_t));
        actor->name = strdup (name);
        actor->line = zf_zpl_line (loader->zpl, node);
        actor->node = node;
        actor->workers = 1;
        zlistx_add_end (loader->pipeline->actors, actor);
        zhashx_insert (loader->pipeline->actor_index, name, actor);

        zconfig_t *kind_node = zconfig_locate (node, "kind");
        const char *kind_name = kind_node ? zconfig_value (kind_node) : NULL;
        // Even with a kind unknown, its queues count: one mistake should
        // not show up as three.
        zconfig_t *input = zconfig_locate (node, "input");
        zconfig_t *output = zconfig_locate (node, "output");
        actor->input = input ? zconfig_value (input) : NULL;
        actor->output = output ? zconfig_value (output) : NULL;
        if (!kind_name) {
            s_error (loader, node, "%s: missing required key 'kind' (one of %s)", where, all);
            continue;
        }
        actor->kind = zf_kind_lookup (loader->kinds, kind_name);
        if (!actor->kind) {
            const char *near = zf_nearest (kind_name, kind_names);
            if (near)
                s_error (loader, kind_node, "%s: unknown kind '%s' (did you mean '%s'?)", where,
                         kind_name, near);
            else
                s_error (loader, kind_node, "%s: unknown kind '%s' (expected %s)", where, kind_name,
                         either);
            continue;
        }
        snprintf (where, sizeof where, "actor '%s' (%s)", name, kind_name);
        s_check_section (loader, node, actor->kind->keys, actor->kind, actor->kind->one_of, where,
                         kind_name);
        size_t size = actor->kind->settings_size;
        actor->settings =
            zmalloc (size > sizeof (zf_actor_settings_t) ? size : sizeof (zf_actor_settings_t));
        zconfig_t *flow = zconfig_locate (node, "flow");
        if (flow && zconfig_child (flow)) {
            zf_queue_settings_t limits;
            zf_keys_bind (zf_flow_keys, flow, &limits);
            char flow_where[300];
            snprintf (flow_where, sizeof flow_where, "%s, flow", where);
            s_check_flow_settings (loader, flow, &limits, flow_where);
        }
        zf_keys_bind (actor->kind->keys, node, actor->settings);
        zf_actor_settings_t *common = (zf_actor_settings_t *) actor->settings;
        actor->input = common->input;
        actor->output = common->output;
        actor->workers = common->workers < 1 ? 1 : (int) common->workers;
        for (const zf_key_t *key = actor->kind->keys; key->name; key++)
            if (key->flags & ZF_KEY_PATH)
                s_check_path (loader, node, key->name, where);
        const char *advice = actor->kind->advise ? actor->kind->advise (node) : NULL;
        if (advice)
            zlistx_add_end (loader->pipeline->warnings,
                            zsys_sprintf ("%s:%d: warning: %s: %s", loader->pipeline->file,
                                          actor->line, where, advice));
    }
}

//  Records who reads and writes each queue, then checks that every queue is
//  both read and written (or fed from outside).
static void
s_check_flow (s_loader_t *loader)
{
    zf_pipeline_t *self = loader->pipeline;
    zf_actor_conf_t *actor;
    for (actor = (zf_actor_conf_t *) zlistx_first (self->actors); actor;
         actor = (zf_actor_conf_t *) zlistx_next (self->actors)) {
        zconfig_t *node;
        if (actor->input && (node = zconfig_locate (actor->node, "input")))
            zlistx_add_end (s_queue_require (loader, actor->input, node)->readers, actor->name);
        if (actor->output && (node = zconfig_locate (actor->node, "output")))
            zlistx_add_end (s_queue_require (loader, actor->output, node)->writers, actor->name);
        if (actor->kind && actor->kind->job_keys)
            for (zconfig_t *job = zconfig_child (actor->node); job; job = zconfig_next (job)) {
                zconfig_t *output = zconfig_child (job) ? zconfig_locate (job, "output") : NULL;
                if (output && zconfig_value (output))
                    zlistx_add_end (
                        s_queue_require (loader, zconfig_value (output), output)->writers,
                        actor->name);
            }
    }
    // Names of written queues, for suggestions.
    const char *written[256];
    size_t n = 0;
    zf_queue_conf_t *queue;
    for (queue = (zf_queue_conf_t *) zlistx_first (self->queues); queue && n < 255;
         queue = (zf_queue_conf_t *) zlistx_next (self->queues))
        if (zlistx_size (queue->writers))
            written[n++] = queue->name;
    written[n] = NULL;

    for (queue = (zf_queue_conf_t *) zlistx_first (self->queues); queue;
         queue = (zf_queue_conf_t *) zlistx_next (self->queues)) {
        size_t readers = zlistx_size (queue->readers);
        size_t writers = zlistx_size (queue->writers);
        // QUEUE.dead is written by the broker when QUEUE exists.
        size_t len = strlen (queue->name);
        if (len > 5 && strcmp (queue->name + len - 5, ".dead") == 0) {
            char *base = strndup (queue->name, len - 5);
            if (zf_pipeline_queue (self, base))
                writers++;
            free (base);
        }
        if (readers && !writers && !queue->external) {
            const char *reader = (const char *) zlistx_first (queue->readers);
            zf_actor_conf_t *who = zf_pipeline_actor (self, reader);
            zconfig_t *at = zconfig_locate (who->node, "input");
            const char *near = zf_nearest (queue->name, written);
            if (near)
                s_error (loader, at,
                         "queue '%s' is read by '%s' but nothing writes it (did you mean '%s'?)",
                         queue->name, reader, near);
            else
                s_error (loader, at,
                         "queue '%s' is read by '%s' but nothing writes it (add a producer, or "
                         "declare it under queues with external = true)",
                         queue->name, reader);
        }
        else if (writers && !readers && !queue->external) {
            // Kept as results, not delivered: said unless the pipeline
            // names it, for a misspelt output looks the same.
            queue->results = true;
            const char *writer = (const char *) zlistx_first (queue->writers);
            zf_actor_conf_t *who = zf_pipeline_actor (self, writer);
            zconfig_t *at = who ? zconfig_locate (who->node, "output") : queue->node;
            if (!s_named (self->settings.results, queue->name))
                zlistx_add_end (self->warnings,
                                zsys_sprintf ("%s:%d: warning: queue '%s' is written by '%s' but "
                                              "no actor reads it: its items are kept as results "
                                              "(zflow result), not delivered; say results = %s "
                                              "in the pipeline section if that is meant",
                                              self->file,
                                              zf_zpl_line (loader->zpl, at ? at : queue->node),
                                              queue->name, writer, queue->name));
        }
        else if (!readers && !writers && queue->node && !queue->external)
            s_error (loader, queue->node, "queue '%s' is declared but no actor reads or writes it",
                     queue->name);
    }
}

//  The value of key in section as a number (ms for a duration), if given
//  and valid (a bad one was reported when its section was checked).
static bool
s_key_number (zconfig_t *section, const zf_key_t *key, int64_t *n, const char **text)
{
    if (key->type != ZF_KEY_INT && key->type != ZF_KEY_DURATION && key->type != ZF_KEY_SIZE)
        return false;
    zconfig_t *node = zconfig_locate (section, key->name);
    *text = node ? zconfig_value (node) : NULL;
    zf_error_t err;
    if (!*text || zf_key_check (key, *text, &err))
        return false;
    if (key->type == ZF_KEY_DURATION)
        return zf_parse_duration (*text, n, NULL) == 0;
    if (key->type == ZF_KEY_SIZE)
        return zf_parse_size (*text, n, NULL) == 0;
    return zf_parse_int (*text, n, NULL) == 0;
}

//  Checks the keys of each actor that depend on other keys: one that must
//  exceed another of its section (above), and the time limits of an item
//  that must stay below the input queue's timeout (ZF_KEY_BELOW_QUEUE_TIMEOUT).
static void
s_check_limits (s_loader_t *loader)
{
    zf_pipeline_t *self = loader->pipeline;
    for (zf_actor_conf_t *actor = (zf_actor_conf_t *) zlistx_first (self->actors); actor;
         actor = (zf_actor_conf_t *) zlistx_next (self->actors)) {
        if (!actor->kind)
            continue;
        char where[300];
        snprintf (where, sizeof where, "actor '%s' (%s)", actor->name, actor->kind->name);
        for (const zf_key_t *key = actor->kind->keys; key->name; key++) {
            int64_t value, other;
            const char *text, *other_text;
            if (!s_key_number (actor->node, key, &value, &text))
                continue;
            zconfig_t *at = zconfig_locate (actor->node, key->name);
            const zf_key_t *lower =
                key->above ? zf_keys_find (actor->kind->keys, key->above) : NULL;
            if (lower && s_key_number (actor->node, lower, &other, &other_text) && value <= other)
                s_error (loader, at, "%s: %s = %s must be greater than %s = %s", where, key->name,
                         text, lower->name, other_text);
            if (!(key->flags & ZF_KEY_BELOW_QUEUE_TIMEOUT) || !actor->input)
                continue;
            zf_queue_conf_t *queue = zf_pipeline_queue (self, actor->input);
            int64_t limit = queue ? queue->settings.timeout : self->queue_defaults.timeout;
            if (limit == 0 || value < limit)
                continue;
            // Where the queue's timeout comes from, for the user to change it.
            zconfig_t *given =
                queue && queue->node ? zconfig_locate (queue->node, "timeout") : NULL;
            char queue_timeout[64], said[128];
            zf_format_duration (limit, queue_timeout, sizeof queue_timeout);
            if (given)
                snprintf (said, sizeof said, "timeout = %s at line %d", zconfig_value (given),
                          zf_zpl_line (loader->zpl, given));
            else
                snprintf (said, sizeof said, "timeout %s, the default", queue_timeout);
            s_error (loader, at,
                     "%s: %s = %s must be less than the timeout of its input queue '%s' (%s): "
                     "past that the broker hands the item to another worker while this one "
                     "still runs it; lower %s, or raise the queue's timeout (0 for never)",
                     where, key->name, text, actor->input, said, key->name);
        }
    }
}

zf_pipeline_t *
zf_pipeline_load (const char *path, const zf_kind_t *const *kinds, zlistx_t *errors)
{
    return zf_pipeline_load_in (path, NULL, kinds, errors);
}

zf_pipeline_t *
zf_pipeline_load_in (const char *path, const char *dir, const zf_kind_t *const *kinds,
                     zlistx_t *errors)
{
    size_t before = zlistx_size (errors);
    zf_zpl_t *zpl = zf_zpl_load (path, errors);
    if (!zpl)
        return NULL;
    zf_pipeline_t *self = (zf_pipeline_t *) zmalloc (sizeof (zf_pipeline_t));
    self->file = strdup (path);
    char *copy = strdup (path);
    char *real = realpath (dir ? dir : dirname (copy), NULL);
    self->dir = real ? real : strdup (dir ? dir : ".");
    free (copy);
    self->zpl = zpl;
    self->root = zf_zpl_root (zpl);
    self->queues = zlistx_new ();
    zlistx_set_destructor (self->queues, (zlistx_destructor_fn *) s_queue_destroy);
    self->actors = zlistx_new ();
    zlistx_set_destructor (self->actors, (zlistx_destructor_fn *) s_actor_destroy);
    self->queue_index = zhashx_new ();
    self->actor_index = zhashx_new ();
    self->warnings = zlistx_new ();
    zlistx_set_destructor (self->warnings, (zlistx_destructor_fn *) zstr_free);
    zf_keys_bind (zf_queue_keys, NULL, &self->queue_defaults);

    s_loader_t loader = { self, zpl, kinds, zlistx_new () };
    zlistx_set_destructor (loader.mistakes, (zlistx_destructor_fn *) s_mistake_destroy);
    zlistx_set_comparator (loader.mistakes, s_mistake_compare);
    zconfig_t *sections[5] = { NULL };
    for (zconfig_t *node = zconfig_child (self->root); node; node = zconfig_next (node)) {
        const char *name = zconfig_name (node);
        int s;
        for (s = 0; s_sections[s]; s++)
            if (strcmp (name, s_sections[s]) == 0)
                break;
        if (!s_sections[s]) {
            const char *near = zf_nearest (name, s_sections);
            if (near)
                s_error (&loader, node, "unknown section '%s' (did you mean '%s'?)", name, near);
            else
                s_error (
                    &loader, node,
                    "unknown section '%s' (expected pipeline, broker, cluster, queues or actors)",
                    name);
            continue;
        }
        if (sections[s]) {
            s_error (&loader, node, "section '%s' is given twice (first at line %d)", name,
                     zf_zpl_line (zpl, sections[s]));
            continue;
        }
        if (zconfig_value (node) && *zconfig_value (node)) {
            s_error (&loader, node, "'%s' is a section; put its keys on indented lines below it",
                     name);
            continue;
        }
        sections[s] = node;
    }
    if (sections[0])
        s_check_section (&loader, sections[0], zf_pipeline_keys, NULL, NULL, "pipeline",
                         "pipeline");
    if (sections[1]) {
        s_check_section (&loader, sections[1], zf_broker_keys, NULL, NULL, "broker", "broker");
        if (zconfig_locate (sections[1], "curve-secret") &&
            !zconfig_locate (sections[1], "curve-clients"))
            s_error (&loader, zconfig_locate (sections[1], "curve-secret"),
                     "broker: curve-secret needs curve-clients, the folder of the public "
                     "certificates of the clients allowed in");
    }
    self->broker = sections[1];
    zf_keys_bind (zf_broker_keys, self->broker, &self->broker_settings);
    if (sections[4])
        s_check_section (&loader, sections[4], zf_cluster_keys, NULL, NULL, "cluster", "cluster");
    zf_keys_bind (zf_cluster_keys, sections[4], &self->cluster_settings);
    if (sections[2])
        s_load_queues (&loader, sections[2]);
    if (sections[3])
        s_load_actors (&loader, sections[3]);
    if (zlistx_size (self->actors) == 0)
        s_error (&loader, sections[3], "the pipeline has no actors (add an actors section)");
    zf_keys_bind (zf_pipeline_keys, sections[0], &self->settings);
    s_check_flow (&loader);
    s_check_limits (&loader);
    const char *list = self->settings.results && !s_check_queues (self->settings.results, NULL)
                           ? self->settings.results
                           : "", // a mistake said already
        *one;
    size_t len = 0;
    while ((one = s_next_name (&list, &len))) {
        char name[ZF_NAME_MAX + 2];
        snprintf (name, sizeof name, "%.*s", (int) len, one); // checked: it fits
        zf_queue_conf_t *results = zf_pipeline_queue (self, name);
        if (results)
            results->results = true;
        else
            s_error (&loader, zconfig_locate (sections[0], "results"),
                     "pipeline: results: '%s' is no queue of the pipeline", name);
    }

    const char *name = self->settings.name;
    if (name && *name)
        self->name = strdup (name);
    else {
        char *base = strdup (path);
        char *file = basename (base);
        char *dot = strrchr (file, '.');
        if (dot && dot != file)
            *dot = 0;
        self->name = strdup (file);
        free (base);
    }
    // Syntax errors came first, from the reader; the rest go in line order.
    zlistx_sort (loader.mistakes);
    for (s_mistake_t *mistake = (s_mistake_t *) zlistx_first (loader.mistakes); mistake;
         mistake = (s_mistake_t *) zlistx_next (loader.mistakes)) {
        zlistx_add_end (errors, mistake->text);
        mistake->text = NULL;
    }
    zlistx_destroy (&loader.mistakes);
    if (zlistx_size (errors) > before)
        zf_pipeline_destroy (&self);
    return self;
}

void
zf_pipeline_destroy (zf_pipeline_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zf_pipeline_t *self = *self_p;
    zhashx_destroy (&self->queue_index);
    zhashx_destroy (&self->actor_index);
    zlistx_destroy (&self->warnings);
    zlistx_destroy (&self->actors);
    zlistx_destroy (&self->queues);
    zf_zpl_t *zpl = (zf_zpl_t *) self->zpl;
    zf_zpl_destroy (&zpl);
    free (self->file);
    free (self->dir);
    free (self->name);
    free (self);
    *self_p = NULL;
}

zf_actor_conf_t *
zf_pipeline_actor (zf_pipeline_t *self, const char *name)
{
    return (zf_actor_conf_t *) zhashx_lookup (self->actor_index, name);
}

zf_queue_conf_t *
zf_pipeline_queue (zf_pipeline_t *self, const char *name)
{
    return (zf_queue_conf_t *) zhashx_lookup (self->queue_index, name);
}

bool
zf_pipeline_fed_from_outside (zf_pipeline_t *self)
{
    for (zf_queue_conf_t *queue = (zf_queue_conf_t *) zlistx_first (self->queues); queue;
         queue = (zf_queue_conf_t *) zlistx_next (self->queues))
        if (queue->external)
            return true;
    return false;
}

bool
zf_pipeline_declares (zf_pipeline_t *self, const char *name)
{
    if (zf_pipeline_queue (self, name))
        return true;
    size_t len = strlen (name);
    if (len <= 5 || strcmp (name + len - 5, ".dead") != 0 || len - 5 > 255)
        return false;
    char base[256];
    snprintf (base, sizeof base, "%.*s", (int) (len - 5), name);
    return zf_pipeline_queue (self, base) != NULL;
}

bool
zf_pipeline_reaches (zf_pipeline_t *self, const char *from, const char *to)
{
    // A walk over the queues reached, each taken once: every actor adds
    // at most its output, so there are at most actors + 1 of them.
    size_t cap = zlistx_size (self->actors) + 1, count = 0;
    const char **reached = (const char **) zf_alloc (cap * sizeof (char *));
    reached[count++] = from;
    bool found = false;
    for (size_t i = 0; i < count && !found; i++) {
        found = streq (reached[i], to);
        for (zf_actor_conf_t *actor = (zf_actor_conf_t *) zlistx_first (self->actors); actor;
             actor = (zf_actor_conf_t *) zlistx_next (self->actors)) {
            if (!actor->input || !actor->output || !streq (actor->input, reached[i]))
                continue;
            size_t seen = 0;
            while (seen < count && !streq (reached[seen], actor->output))
                seen++;
            if (seen == count)
                reached[count++] = actor->output;
        }
    }
    free (reached);
    return found;
}

char *
zf_pipeline_brokers (zf_pipeline_t *self)
{
    const char *endpoint = self->broker_settings.endpoint;
    char addresses[ZF_NODES_MAX][256];
    int count = 0;
    const char *nodes = self->cluster_settings.nodes;
    if (!nodes || zf_parse_nodes (nodes, addresses, &count, NULL))
        return strdup (endpoint);
    const char *port = strrchr (endpoint, ':');
    size_t size = 1;
    for (int i = 0; i < count; i++)
        size += strlen (addresses[i]) + strlen (port) + 8;
    char *list = (char *) malloc (size), *at = list;
    for (int i = 0; i < count && list; i++) {
        int host = (int) (strrchr (addresses[i], ':') - addresses[i]);
        at += sprintf (at, "%stcp://%.*s%s", i ? "," : "", host, addresses[i], port);
    }
    return list;
}

bool
zf_pipeline_finite (zf_pipeline_t *self)
{
    zf_actor_conf_t *actor;
    for (actor = (zf_actor_conf_t *) zlistx_first (self->actors); actor;
         actor = (zf_actor_conf_t *) zlistx_next (self->actors))
        if (actor->kind && (actor->kind->flags & ZF_KIND_TIMED))
            return false;
    return true;
}

const zf_queue_settings_t *
zf_pipeline_queue_settings (zf_pipeline_t *self, const char *name)
{
    zf_queue_conf_t *queue = zf_pipeline_queue (self, name);
    return queue ? &queue->settings : &self->queue_defaults;
}

char *
zf_pipeline_path (zf_pipeline_t *self, const char *value)
{
    if (strncmp (value, "file:", 5) == 0)
        value += 5;
    if (value[0] == '/')
        return strdup (value);
    return zsys_sprintf ("%s/%s", self->dir, value);
}
