/*  zf_kinds: the built-in actor kinds and their config key tables.

    Each kind is defined in its own file under actors/ (zf_fetcher.c, ...),
    beside the code that runs it; this module lists them.
*/
#ifndef ZF_KINDS_H_INCLUDED
#define ZF_KINDS_H_INCLUDED

#include "zf_pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Each kind's settings, bound from its key table when the pipeline is
//  loaded (zf_actor_conf_t.settings). Each begins with what every actor
//  has; its fields are its keys, in their order.

typedef struct {
    zf_actor_settings_t actor; // kind, curve-secret, input, output, workers
    const char *command;       // the program to run
    int64_t concurrency;       // items each worker holds at once; 0 when not set
    int64_t threads;           // threads a worker runs plain functions on; 0 when not set
    int64_t timeout;           // ms, the soft time limit of one item; 0 when not set
    int64_t hard_timeout;      // ms after which the worker process ends; 0 when not set
} zf_exec_settings_t;

//  The values of the kinds' choice keys, each in the order of its key's
//  choices (tests/actors/test_actors.c checks them).
typedef enum { ZF_FORMAT_LINES, ZF_FORMAT_JSONL, ZF_FORMAT_MSGPACK } zf_producer_format_t;
typedef enum { ZF_BAD_LINE_SKIP, ZF_BAD_LINE_DEAD, ZF_BAD_LINE_STOP } zf_bad_line_t;
typedef enum { ZF_PROCESSOR_RETRY, ZF_PROCESSOR_EMIT } zf_processor_on_error_t;
typedef enum { ZF_PROTOCOL_LINES, ZF_PROTOCOL_ENVELOPE, ZF_PROTOCOL_BATCH } zf_protocol_t;
typedef enum { ZF_FETCHER_EMIT, ZF_FETCHER_RETRY, ZF_FETCHER_DROP } zf_fetcher_on_error_t;
typedef enum { ZF_GATHER_COLLECT, ZF_GATHER_ALL } zf_gather_mode_t;
typedef enum { ZF_ON_TIMEOUT_EMIT, ZF_ON_TIMEOUT_FAIL } zf_on_timeout_t;
typedef enum { ZF_ON_FAILURE_EMIT, ZF_ON_FAILURE_DEAD } zf_on_failure_t;
typedef enum { ZF_SINK_BODY, ZF_SINK_ENVELOPE, ZF_SINK_MSGPACK } zf_sink_format_t;
typedef enum { ZF_SINK_SYNC_ALWAYS, ZF_SINK_SYNC_INTERVAL, ZF_SINK_SYNC_NEVER } zf_sink_sync_t;

typedef struct {
    zf_actor_settings_t actor; // kind, curve-secret, output, workers
    const char *source;        // file:PATH, stdin, seq:N or list
    zconfig_t *items;          // the items of source = list, or NULL
    int format;                // zf_producer_format_t
    double rate;               // items a second at most; 0 for no limit
    int64_t group_size;        // items made a gather group; 0 for none
    int on_bad_line;           // zf_bad_line_t
} zf_producer_settings_t;

typedef struct {
    zf_actor_settings_t actor; // kind, curve-secret, input, output, workers
    int64_t concurrency;       // items in flight per worker
    const char *command;       // a program speaking the JSON-lines protocol, or NULL
    const char *plugin;        // a shared object with zflow_process, or NULL
    int64_t timeout;           // ms an item may take; 0 for no limit
    int on_error;              // zf_processor_on_error_t
    bool group;                // fan an item out as a gather group
    int protocol;              // zf_protocol_t: lines (the body), envelope (id, attempt,
                               // headers, body) or batch (envelopes, many to a line)
    int64_t batch;             // protocol = batch: items at most in one line
} zf_processor_settings_t;

typedef struct {
    zf_actor_settings_t actor; // kind, curve-secret, input, output, workers
    int64_t concurrency;       // requests in flight per worker
    int64_t max_connections;   // open connections per worker, all hosts
    int64_t max_per_host;      // open connections per worker to one host
    int64_t dns_cache;         // ms a name stays resolved
    int64_t timeout;           // ms a whole request may take
    int64_t connect_timeout;   // ms to connect
    int64_t read_timeout;      // ms without a byte
    int64_t max_body;          // bytes of a response body at most
    int64_t follow_redirects;  // redirects followed at most
    const char *user_agent;    // the User-Agent header
    zconfig_t *headers;        // more request headers, or NULL
    bool tls_verify;           // check certificates
    const char *retry_on;      // the failures tried again in the worker
    int64_t max_retries;       // tries again at most
    int64_t retry_base;        // first backoff, ms
    int64_t retry_max;         // longest backoff, ms
    int on_error;              // zf_fetcher_on_error_t
    double rate_per_host;      // requests a second to one host at most; 0 for no limit
    int64_t linger;            // ms results and acks may wait to go together
} zf_fetcher_settings_t;

//  One scheduler job: the keys of a job sub-section, or of the scheduler
//  itself when it has no jobs.
typedef struct {
    int64_t every;         // ms between firings, or 0
    const char *cron;      // a cron expression, or NULL
    const char *at;        // an ISO 8601 time to fire once at, or NULL
    const char *timezone;  // IANA zone of cron and of times without offset
    const char *start;     // no firing before, or NULL
    const char *end;       // no firing after, or NULL
    int64_t jitter;        // ms a firing may be late, at random
    int64_t misfire_grace; // ms late past which a firing is skipped
    bool coalesce;         // after a stall, fire once
    int64_t max_instances; // firings in progress at once; 0 for no limit
    const char *payload;   // the item put at each firing, or NULL
    const char *output;    // a job's own queue, or NULL for the scheduler's
} zf_job_settings_t;

typedef struct {
    zf_actor_settings_t actor; // kind, curve-secret, output
    zf_job_settings_t job;     // its one job, when it has no job sub-sections
} zf_scheduler_settings_t;

typedef struct {
    zf_actor_settings_t actor; // kind, curve-secret, input, output, workers
    int64_t concurrency;       // members held at most
    int mode;                  // zf_gather_mode_t
    int64_t timeout;           // ms an incomplete group waits; 0 for ever
    int on_timeout;            // zf_on_timeout_t
    int on_failure;            // zf_on_failure_t
} zf_gather_settings_t;

typedef struct {
    zf_actor_settings_t actor; // kind, curve-secret, input, workers
    int64_t concurrency;       // items each worker holds and writes together
    const char *target;        // file:PATH, stdout or null
    int format;                // zf_sink_format_t
    int sync;                  // zf_sink_sync_t
    int64_t sync_interval;     // ms between syncs (interval)
    int64_t linger;            // ms acks may wait to go together
    int64_t disk_wait;         // ms writes may keep failing before the items held fail
} zf_sink_settings_t;

extern const zf_kind_t zf_producer_kind;
extern const zf_kind_t zf_processor_kind;
extern const zf_kind_t zf_exec_kind;
extern const zf_kind_t zf_fetcher_kind;
extern const zf_kind_t zf_scheduler_kind;
extern const zf_kind_t zf_gather_kind;
extern const zf_kind_t zf_sink_kind;

//  The actor functions of the kinds that have one (args: zf_actor_args_t).
void zf_producer_actor (zsock_t *pipe, void *args);
void zf_sink_actor (zsock_t *pipe, void *args);

//  A variable of an exec actor's environment that its settings give.
typedef struct {
    const char *name; // ZFLOW_CONCURRENCY, ZFLOW_THREADS, ZFLOW_TIMEOUT or ZFLOW_HARD_TIMEOUT
    char value[24];   // a whole number (items, threads or ms), or "" when the key is left out
} zf_exec_env_t;
#define ZF_EXEC_ENV_MAX 4

//  Fills env with the variables of an exec actor's keys concurrency,
//  threads, timeout and hard-timeout (in ms). A key the pipeline leaves
//  out has the value "": the variable is not to be set, so that the
//  program keeps its own default.
void zf_exec_environment (const zf_exec_settings_t *settings, zf_exec_env_t env[ZF_EXEC_ENV_MAX]);

//  All kinds, ended by NULL.
const zf_kind_t *const *zf_kinds (void);

//  Keys every actor has.
#define ZF_KEY_KIND                                                                                \
    {                                                                                              \
        .name = "kind", .help = "what the actor does (zflow help lists the kinds)",                \
        .flags = ZF_KEY_REQUIRED, ZF_FIELD (ZF_KEY_STRING, zf_actor_settings_t, kind)              \
    }
#define ZF_KEY_CURVE                                                                               \
    {                                                                                              \
        .name = "curve-secret",                                                                    \
        .help = "its CURVE certificate (the NAME_secret file of zflow keygen), when the broker "   \
                "has curve-secret; default: the broker section's curve-client",                    \
        .flags = ZF_KEY_PATH, ZF_FIELD (ZF_KEY_STRING, zf_actor_settings_t, curve_secret)          \
    }
#define ZF_KEY_WORKERS                                                                             \
    {                                                                                              \
        .name = "workers", .fallback = "1", .help = "processes of this actor, sharing its input",  \
        .min = 1, .max = 1024, ZF_FIELD (ZF_KEY_INT, zf_actor_settings_t, workers)                 \
    }
#define ZF_KEY_INPUT                                                                               \
    {                                                                                              \
        .name = "input", .help = "the queue it reads", .flags = ZF_KEY_REQUIRED,                   \
        ZF_FIELD (ZF_KEY_QUEUE, zf_actor_settings_t, input)                                        \
    }
#define ZF_KEY_OUTPUT                                                                              \
    {                                                                                              \
        .name = "output", .help = "the queue it writes", .flags = ZF_KEY_REQUIRED,                 \
        ZF_FIELD (ZF_KEY_QUEUE, zf_actor_settings_t, output)                                       \
    }

#define ZF_KEY_FLOW                                                                                \
    {                                                                                              \
        .name = "flow",                                                                            \
        .help = "flow control of this actor's consumer group, in place of its input queue's: "     \
                "the queue's keys rate, burst, key, rate-per-key, max-in-flight-per-key, fair "    \
                "and weight-header",                                                               \
        ZF_FIELD (ZF_KEY_SECTION, zf_actor_settings_t, flow), .keys = zf_flow_keys                 \
    }

#ifdef __cplusplus
}
#endif
#endif
