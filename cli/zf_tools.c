/*  zf_tools: the commands that run a broker or an actor, or talk to one
    (broker, status, journal, tap, actor, keygen, cron), each a zf_cmd_t:
    its options a table bound to a struct of its own, read by zf_cmd_main.
*/
#include "zf_tools.h"

#include <signal.h>
#include "zf_kinds.h"
#include "zf_curve.h"
#include "zf_cron.h"
#include "zf_actor.h"
#include "zf_broker.h"
#include "zf_cli.h"
#include "zf_gateway.h"
#include "zf_journal.h"
#include "zf_json.h"
#include "zf_taps.h"
#include "zf_tasks.h"
#include "zf_mp.h"
#include "zf_value.h"
#include "zf_zpl.h"
#include "zflow.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

const char *
zf_tools_path (const char *path, char *buffer, size_t size)
{
    char cwd[4096];
    if (!path || !*path || *path == '/' || !getcwd (cwd, sizeof cwd))
        return path;
    snprintf (buffer, size, "%s/%s", cwd, path);
    return buffer;
}

zf_pipeline_t *
zf_tools_load (const char *path)
{
    return zf_tools_load_in (path, NULL);
}

zf_pipeline_t *
zf_tools_load_in (const char *path, const char *dir)
{
    zlistx_t *errors = zf_errors_new ();
    zf_pipeline_t *pipeline = zf_pipeline_load_in (path, dir, zf_kinds (), errors);
    for (const char *e = (const char *) zlistx_first (errors); e;
         e = (const char *) zlistx_next (errors))
        fprintf (stderr, "%s\n", e);
    if (!pipeline)
        fprintf (stderr, "%zu error%s in %s\n", zlistx_size (errors),
                 zlistx_size (errors) == 1 ? "" : "s", path);
    for (const char *w = pipeline ? (const char *) zlistx_first (pipeline->warnings) : NULL; w;
         w = (const char *) zlistx_next (pipeline->warnings))
        fprintf (stderr, "%s\n", w);
    zlistx_destroy (&errors);
    return pipeline;
}

//  Runs this process again with the arguments it was started with, from
//  /proc/self/cmdline: a broker of a group that lost the lead comes back as
//  a follower that replays the group's log. Returns only if it cannot.
static void
s_exec_again (void)
{
    static char cmdline[64 * 1024];
    char *args[256];
    int fd = open ("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t size = fd >= 0 ? read (fd, cmdline, sizeof cmdline - 1) : -1;
    if (fd >= 0)
        close (fd);
    int count = 0;
    for (ssize_t at = 0; size > 0 && at < size && count < 255;
         at += (ssize_t) strlen (cmdline + at) + 1)
        args[count++] = cmdline + at;
    args[count] = NULL;
    fflush (NULL);
    if (count > 0)
        execv ("/proc/self/exe", args);
    fprintf (stderr, "zflow broker: cannot start again: %s\n", strerror (errno));
}

static volatile sig_atomic_t s_hup; // SIGHUP came: read the config again

static void
s_on_hup (int sig)
{
    (void) sig;
    s_hup = 1;
}

//  SIGHUP (or zflow reload) came: reads the file again for its queues'
//  settings, keeping the version it replaces in replaced (the broker may
//  still point into it). A file with mistakes, or another pipeline's, is
//  refused and the running config goes on.
static void
s_broker_reload (zf_broker_t *broker, zf_pipeline_t **pipeline_p, zlistx_t *replaced)
{
    zf_pipeline_t *pipeline = *pipeline_p;
    printf ("zflow broker: reading %s again\n", pipeline->file);
    fflush (stdout);
    zf_pipeline_t *next = zf_tools_load (pipeline->file);
    if (next && streq (next->name, pipeline->name)) {
        zf_broker_reload (broker, next, "");
        zlistx_add_end (replaced, pipeline);
        *pipeline_p = next;
        return;
    }
    if (next)
        fprintf (stderr, "zflow broker: the pipeline's name changed: a new name is a new broker\n");
    zf_pipeline_destroy (&next);
    fprintf (stderr, "zflow broker: reload refused: the running config goes on\n");
}

typedef struct {
    const char *endpoint; // where actors connect, or NULL: the file's
    const char *events;   // where monitors subscribe, or NULL: the file's
    const char *intake;   // the PULL socket for PUSH clients, or NULL: the file's
    const char *journal;  // the journal's folder, or NULL: the file's
    const char *cluster;  // the Raft addresses of the group's nodes, or NULL: the file's
    int64_t node;         // which of them this broker is (1-based), 0: found by address
    bool insecure;        // may bind beyond loopback without CURVE
} s_broker_options_t;

//  A --cluster list as the broker takes it (zf_key_t.check).
static int
s_check_nodes (const char *value, zf_error_t *err)
{
    char addresses[ZF_NODES_MAX][256];
    int count;
    return zf_parse_nodes (value, addresses, &count, err);
}

static const zf_key_t s_broker_options[] = {
    { .name = "endpoint",
      .help = "where actors and clients connect (tcp://127.0.0.1:* picks a free port)",
      ZF_FIELD (ZF_KEY_ENDPOINT, s_broker_options_t, endpoint) },
    { .name = "events",
      .help = "where monitors subscribe: stats, events, data taps",
      ZF_FIELD (ZF_KEY_ENDPOINT, s_broker_options_t, events) },
    { .name = "intake",
      .help = "a PULL socket any ZeroMQ PUSH client can feed",
      ZF_FIELD (ZF_KEY_ENDPOINT, s_broker_options_t, intake) },
    { .name = "journal",
      .shown = "DIR",
      .help = "keep the journal (a group's log too) in DIR, of the current folder",
      ZF_FIELD (ZF_KEY_STRING, s_broker_options_t, journal) },
    { .name = "cluster",
      .shown = "HOST:PORT,...",
      .check = s_check_nodes,
      .help = "be one broker of the Raft group of these nodes (each one's Raft address)",
      ZF_FIELD (ZF_KEY_STRING, s_broker_options_t, cluster) },
    { .name = "node",
      .min = 1,
      .max = ZF_NODES_MAX,
      .help = "which node of the group this is, 1-based, where its addresses cannot tell",
      ZF_FIELD (ZF_KEY_INT, s_broker_options_t, node) },
    { .name = "insecure",
      .help = "bind beyond loopback without CURVE, and serve the API there without a token",
      ZF_FIELD (ZF_KEY_BOOL, s_broker_options_t, insecure) },
    { NULL }
};

static int
s_broker (const void *options, int argc, char **args)
{
    (void) argc;
    const s_broker_options_t *o = (const s_broker_options_t *) options;
    zf_pipeline_t *pipeline = zf_tools_load (args[0]);
    if (!pipeline)
        return ZF_EXIT_USAGE;
    char journal[8192];
    zf_broker_args_t broker_args = { .pipeline = pipeline,
                                     .endpoint = o->endpoint,
                                     .events = o->events,
                                     .intake = o->intake,
                                     .journal = zf_tools_path (o->journal, journal, sizeof journal),
                                     .insecure = o->insecure,
                                     .cluster = o->cluster,
                                     .node = (int) o->node };
    // Its own clients (the HTTP endpoint's) use the pipeline's client
    // certificate.
    zf_error_t err;
    zf_broker_t *broker =
        zf_curve_setenv (pipeline, NULL, &err) ? NULL : zf_broker_start (&broker_args, &err);
    zf_gateway_t *gateway = NULL;
    zlistx_t *replaced = NULL; // versions of the config the broker had
    int status = ZF_EXIT_FAILED;
    if (!broker || zf_gateway_for (pipeline, zf_broker_endpoint (broker), zf_broker_events (broker),
                                   o->insecure, &gateway, &err)) {
        fprintf (stderr, "zflow broker: %s\n", err.text);
        goto done;
    }
    const char *metrics = gateway ? zf_gateway_address (gateway) : NULL;
    printf ("zflow broker: pipeline %s: actors connect to %s, events on %s%s%s%s%s\n",
            pipeline->name, zf_broker_endpoint (broker), zf_broker_events (broker),
            *zf_broker_intake (broker) ? ", intake on " : "", zf_broker_intake (broker),
            metrics ? ", metrics on http://" : "", metrics ? metrics : "");
    fflush (stdout);
    // The broker runs in its own thread; this one waits for a signal, or
    // for a broker of a group to stop when it loses the lead.
    signal (SIGHUP, s_on_hup);
    replaced = zlistx_new ();
    zlistx_set_destructor (replaced, (zlistx_destructor_fn *) zf_pipeline_destroy);
    const char *lost = NULL;
    while (!zsys_interrupted && !(lost = zf_broker_lost (broker))) {
        if (s_hup || zf_broker_reload_asked (broker)) {
            s_hup = 0;
            s_broker_reload (broker, &pipeline, replaced);
        }
        zclock_sleep (20);
    }
    if (lost) {
        printf ("zflow broker: %s: starting again\n", lost);
        zf_gateway_destroy (&gateway);
        zf_broker_destroy (&broker);
        s_exec_again ();
    }
    printf ("zflow broker: stopping\n");
    status = ZF_EXIT_OK;
done:
    zf_gateway_destroy (&gateway);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zlistx_destroy (&replaced);
    return status;
}

const zf_cmd_t zf_cmd_broker = {
    .name = "broker",
    .args = "PIPELINE",
    .min_args = 1,
    .max_args = 1,
    .summary = "run the broker of a pipeline alone, or one of a replicated group",
    .help = "Endpoints and journal come from the file unless given; the line it prints on\n"
            "start says where actors connect and monitors subscribe. On start it restores\n"
            "what its journal holds, and refuses a corrupt one. SIGHUP (or zflow reload)\n"
            "reads the file again; SIGINT or SIGTERM stops it. With --cluster (or a cluster\n"
            "section) it is one node of a Raft group (docs/cluster.md).",
    .exits = "0 stopped by a signal\n"
             "1 it could not start (an endpoint taken, a corrupt journal, CURVE files)\n"
             "2 a usage error, or a pipeline with mistakes",
    .options = s_broker_options,
    .options_size = sizeof (s_broker_options_t),
    .run = s_broker,
};

static bool
s_is_dir (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

//  Prints each line of text (a failure's detail, a traceback) after indent.
static void
s_print_indented (const char *text, const char *indent)
{
    while (*text) {
        size_t len = strcspn (text, "\n");
        printf ("%s%.*s\n", indent, (int) len, text);
        text += len + (text[len] == '\n');
    }
}

//  What a journal holds of one item, for zflow status --state.
typedef struct {
    char queue[ZF_NAME_MAX + 1]; // where it is stored
    uint32_t attempt;            // its attempts over
    char *reason;                // its last failure, or NULL
    char *detail;                // that failure's longer account, or NULL
} s_stored_t;

static void
s_stored_destroy (s_stored_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->reason);
        free ((*self_p)->detail);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Keeps the items a journal's records leave stored: PUT adds, FIN takes.
static int
s_state_record (void *arg, zf_jr_type_t type, const uint8_t *payload, size_t size, zf_error_t *err)
{
    zhashx_t *stored = (zhashx_t *) arg;
    zf_record_t record;
    if (zf_record_read (&record, type, payload, size, err))
        return -1;
    char hex[ZF_ID_HEX];
    if (record.type == ZF_JR_PUT) { // or a PUT_SHORT
        s_stored_t *item = (s_stored_t *) zmalloc (sizeof (s_stored_t));
        snprintf (item->queue, sizeof item->queue, "%.*s", (int) record.name_size, record.name);
        item->attempt = record.attempt;
        if (record.reason_size)
            item->reason = strndup (record.reason, record.reason_size);
        if (record.detail_size)
            item->detail = strndup (record.detail, record.detail_size);
        zhashx_update (stored, zf_id_format (&record.id, hex), item);
    }
    else if (type == ZF_JR_FIN)
        zhashx_delete (stored, zf_id_format (&record.id, hex));
    return 0;
}

//  The journal of DIR, as zflow status --state and zflow journal take it:
//  DIR itself, or the journal in a zflow run state folder. Caller frees.
static char *
s_journal_of (const char *dir)
{
    char *journal = zsys_sprintf ("%s/journal", dir);
    if (!s_is_dir (journal)) {
        zstr_free (&journal);
        journal = strdup (dir);
    }
    return journal;
}

//  zflow status --state DIR: what a journal no broker runs on holds (that
//  of a zflow run that ended, DIR its journal or the state folder around
//  it): the items stored per queue, and every dead letter with its reason.
//  It only reads: a torn tail is told, not cut; a corrupt journal refused.
static int
s_status_state (const char *dir)
{
    char *journal = s_journal_of (dir);
    int status = ZF_EXIT_OK;
    char *lock = zsys_sprintf ("%s/LOCK", journal);
    zf_error_t err;
    zf_journal_t *reader = NULL;
    if (!s_is_dir (journal) || !zsys_file_exists (lock)) {
        fprintf (stderr, "zflow status: %s holds no journal\n", journal);
        status = ZF_EXIT_USAGE;
    }
    else if (!(reader = zf_journal_open_readonly (journal, &err))) {
        fprintf (
            stderr,
            "zflow status: %s (while a broker runs on it, ask the broker: zflow status ENDPOINT)\n",
            err.text);
        status = ZF_EXIT_FAILED;
    }
    zstr_free (&lock);
    zhashx_t *stored = zhashx_new ();
    zhashx_set_destructor (stored, (zhashx_destructor_fn *) s_stored_destroy);
    zf_journal_report_t report;
    if (reader && zf_journal_replay (reader, s_state_record, stored, &report, &err)) {
        fprintf (stderr, "zflow status: %s\n", err.text);
        if (err.code == ZF_EVALUE)
            fprintf (stderr,
                     "zflow status: nothing was changed; `zflow journal repair %s` cuts the "
                     "journal at its first bad record, keeping a copy of what it cuts (or restore "
                     "the journal)\n",
                     journal);
        status = ZF_EXIT_FAILED;
    }
    zf_journal_destroy (&reader);
    if (status == ZF_EXIT_OK) {
        // Per queue, in name order; then the dead letters, 20 a queue at most.
        zhashx_t *counts = zhashx_new ();
        for (s_stored_t *item = (s_stored_t *) zhashx_first (stored); item;
             item = (s_stored_t *) zhashx_next (stored)) {
            uintptr_t n = (uintptr_t) zhashx_lookup (counts, item->queue);
            zhashx_update (counts, item->queue, (void *) (n + 1));
        }
        zlistx_t *names = zhashx_keys (counts);
        zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
        zlistx_sort (names);
        printf ("journal %s: %zu items stored\n", journal, zhashx_size (stored));
        if (report.torn)
            printf ("(and a torn last record of %" PRIu64 " bytes, never confirmed: a broker cuts "
                    "it when it starts)\n",
                    report.torn);
        printf ("%-24s %9s\n", "QUEUE", "STORED");
        for (const char *name = (const char *) zlistx_first (names); name;
             name = (const char *) zlistx_next (names))
            printf ("%-24s %9llu\n", name,
                    (unsigned long long) (uintptr_t) zhashx_lookup (counts, name));
        for (const char *name = (const char *) zlistx_first (names); name;
             name = (const char *) zlistx_next (names)) {
            size_t len = strlen (name);
            if (len <= 5 || !streq (name + len - 5, ".dead"))
                continue;
            printf ("\ndead letters in %s:\n", name);
            size_t shown = 0, total = (size_t) (uintptr_t) zhashx_lookup (counts, name);
            for (s_stored_t *item = (s_stored_t *) zhashx_first (stored); item && shown < 20;
                 item = (s_stored_t *) zhashx_next (stored))
                if (streq (item->queue, name)) {
                    printf ("  %s  attempts %u  %s\n", (const char *) zhashx_cursor (stored),
                            item->attempt, item->reason ? item->reason : "(no reason given)");
                    if (item->detail)
                        s_print_indented (item->detail, "      ");
                    shown++;
                }
            if (total > shown)
                printf ("  ... and %zu more\n", total - shown);
        }
        zlistx_destroy (&names);
        zhashx_destroy (&counts);
    }
    zhashx_destroy (&stored);
    zstr_free (&journal);
    return status;
}

const char *
zf_tools_printable (const char *text, char *out, size_t size)
{
    size_t o = 0;
    for (; *text && o + 1 < size; text++)
        out[o++] = (unsigned char) *text < 0x20 || *text == 0x7f ? '?' : *text;
    out[o] = 0;
    return out;
}

//  The busiest keys of each group whose queue has a key (flow control).
static void
s_print_keys (zf_client_t *client, int timeout)
{
    size_t count;
    zf_key_figures_t *keys = zf_client_keys (client, &count, timeout);
    if (keys && count) {
        printf ("\n%-24s %-24s %-24s %9s %9s\n", "QUEUE", "GROUP", "KEY (busiest)", "READY",
                "INFLIGHT");
        char key[ZF_NAME_MAX + 1];
        for (size_t i = 0; i < count; i++)
            printf ("%-24s %-24s %-24s %9llu %9llu%s\n", keys[i].queue, keys[i].group,
                    keys[i].key[0] ? zf_tools_printable (keys[i].key, key, sizeof key) : "(none)",
                    (unsigned long long) keys[i].ready, (unsigned long long) keys[i].inflight,
                    keys[i].throttled ? "  throttled" : "");
    }
    free (keys);
}

//  One item's state, printed: 0, or -1 if the broker did not answer.
static int
s_status_item (zf_client_t *client, const zf_id_t *id, const char *hex, int timeout)
{
    zf_result_t *item = zf_client_item (client, id, timeout);
    if (!item)
        return -1;
    // A failure: where, after how many tries, why; a task cancelled (or
    // failed by its gather): why.
    if (*zf_result_reason (item) && *zf_result_queue (item))
        printf ("%s %s (queue %s, attempt %u): %s\n", hex, zf_result_state (item),
                zf_result_queue (item), zf_result_attempts (item), zf_result_reason (item));
    else if (*zf_result_reason (item))
        printf ("%s %s: %s\n", hex, zf_result_state (item), zf_result_reason (item));
    else
        printf ("%s %s\n", hex, zf_result_state (item));
    if (zf_result_progress (item) || *zf_result_note (item)) // a task at work
        printf ("    progress %u.%u%%%s%s\n", zf_result_progress (item) / 10,
                zf_result_progress (item) % 10, *zf_result_note (item) ? " " : "",
                zf_result_note (item));
    s_print_indented (zf_result_detail (item), "    "); // a traceback, under its reason
    zf_result_destroy (&item);
    return 0;
}

//  The figures of every queue, consumer group and busy key, printed: 0, or
//  -1 if the broker did not answer.
static int
s_status_queues (zf_client_t *client, int timeout)
{
    size_t count;
    zf_figures_t *queues = zf_client_queues (client, &count, timeout);
    if (!queues)
        return -1;
    printf ("%-24s %9s %9s %10s %10s %8s %8s %10s\n", "QUEUE", "DEPTH", "INFLIGHT", "PUT", "ACKED",
            "NACKED", "DEAD", "CONSUMERS");
    for (size_t i = 0; i < count; i++)
        printf ("%-24s %9llu %9llu %10llu %10llu %8llu %8llu %10u%s\n", queues[i].name,
                (unsigned long long) queues[i].depth, (unsigned long long) queues[i].inflight,
                (unsigned long long) queues[i].put, (unsigned long long) queues[i].ack,
                (unsigned long long) queues[i].nack, (unsigned long long) queues[i].dead,
                queues[i].consumers, queues[i].paused ? "  paused" : "");
    free (queues);
    // Every consumer group, with its workers and backlog: one that no
    // actor declares is a client's, forgotten after group-expiry.
    zf_group_figures_t *groups = zf_client_groups (client, &count, timeout);
    if (groups && count) {
        printf ("\n%-24s %-24s %9s %9s %9s %9s %10s  %s\n", "QUEUE", "GROUP", "WORKERS", "READY",
                "THROTTLED", "INFLIGHT", "ACKED", "DECLARED");
        for (size_t i = 0; i < count; i++)
            printf ("%-24s %-24s %9u %9llu %9llu %9llu %10llu  %s\n", groups[i].queue,
                    groups[i].name[0] ? groups[i].name : "(no reader yet)", groups[i].workers,
                    (unsigned long long) groups[i].ready, (unsigned long long) groups[i].throttled,
                    (unsigned long long) groups[i].inflight, (unsigned long long) groups[i].acked,
                    groups[i].declared ? "yes" : "no (a client's)");
    }
    free (groups);
    s_print_keys (client, timeout);
    return 0;
}

typedef struct {
    int64_t timeout;   // ms the broker may take to answer
    const char *state; // a journal to read instead of asking a broker, or NULL
} s_status_options_t;

static const zf_key_t s_status_options[] = {
    { .name = "timeout",
      .fallback = "5s",
      .min = 1,
      .max = INT32_MAX,
      .help = "how long the broker may take to answer",
      ZF_FIELD (ZF_KEY_DURATION, s_status_options_t, timeout) },
    { .name = "state",
      .shown = "DIR",
      .help = "read the journal in DIR (or in the zflow run state folder DIR) no broker runs on",
      ZF_FIELD (ZF_KEY_STRING, s_status_options_t, state) },
    { NULL }
};

static int
s_status (const void *options, int argc, char **args)
{
    const s_status_options_t *o = (const s_status_options_t *) options;
    if (o->state && argc)
        return zf_cmd_usage (&zf_cmd_status, "--state DIR reads a journal: give no ENDPOINT");
    if (o->state)
        return s_status_state (o->state);
    if (argc == 0)
        return zf_cmd_usage (&zf_cmd_status, NULL);
    zf_id_t id;
    if (argc == 2 && zf_tasks_id_arg ("status", args[1], &id))
        return ZF_EXIT_USAGE;
    zf_client_t *client = zf_client_new (args[0], "zflow-status", NULL, 0);
    if (!client) {
        fprintf (stderr, "zflow status: %s\n", zf_client_last_error (NULL));
        return ZF_EXIT_USAGE;
    }
    int status = ZF_EXIT_OK;
    if (argc == 2 ? s_status_item (client, &id, args[1], (int) o->timeout)
                  : s_status_queues (client, (int) o->timeout)) {
        fprintf (stderr, "zflow status: no answer from %s within %lld ms\n", args[0],
                 (long long) o->timeout);
        status = ZF_EXIT_FAILED;
    }
    zf_client_destroy (&client);
    return status;
}

const zf_cmd_t zf_cmd_status = {
    .name = "status",
    .args = "ENDPOINT [ID]",
    .min_args = 0, // none with --state: checked by s_status
    .max_args = 2,
    .summary = "queue figures, or one item's state",
    .help = "With an ENDPOINT: each queue's depth, in flight, put, acked, nacked, dead and\n"
            "consumers, then each consumer group and the busiest keys; with an ID, that\n"
            "item's state (and, for a failure, where, after how many attempts and why).\n"
            "Put, acked, nacked and dead count since the broker started: the items it\n"
            "restored from its journal are in the depth, not in put, and in acked once done.\n"
            "zflow status --state DIR reads a journal no broker runs on (that of a zflow\n"
            "run that ended): the items stored per queue and every dead letter's reason.",
    .exits =
        "0 printed\n"
        "1 the broker did not answer in time, or the journal cannot be read (corrupt, in use)\n"
        "2 a usage error, an id that is not one, or a DIR that holds no journal",
    .options = s_status_options,
    .options_size = sizeof (s_status_options_t),
    .run = s_status,
};

//  A record as a broker reads it: a repair cuts at the first one a broker
//  would refuse.
static int
s_check_record (void *arg, zf_jr_type_t type, const uint8_t *payload, size_t size, zf_error_t *err)
{
    zf_record_t record;
    return zf_record_read (&record, type, payload, size, err);
}

typedef struct {
    bool drop_later; // cut a bad record in a segment before the last, dropping those after it
} s_journal_options_t;

static const zf_key_t s_journal_options[] = {
    { .name = "drop-later",
      .help = "cut a bad record before the last segment too, moving the later segments aside",
      ZF_FIELD (ZF_KEY_BOOL, s_journal_options_t, drop_later) },
    { NULL }
};

static int
s_journal (const void *options, int argc, char **args)
{
    (void) argc;
    const s_journal_options_t *o = (const s_journal_options_t *) options;
    if (!streq (args[0], "repair")) {
        char why[160];
        snprintf (why, sizeof why, "'%.100s' is not repair, the one thing it does", args[0]);
        return zf_cmd_usage (&zf_cmd_journal, why);
    }
    const char *dir = args[1];
    char *journal = s_journal_of (dir);
    int status = ZF_EXIT_OK;
    if (!s_is_dir (journal)) {
        fprintf (stderr, "zflow journal repair: %s holds no journal\n", journal);
        status = ZF_EXIT_USAGE;
        goto done;
    }
    zf_journal_repair_t report;
    zf_error_t err;
    int rc = zf_journal_repair (journal, o->drop_later, s_check_record, NULL, &report, &err);
    if (report.corrupt)
        printf ("found: %s\n", report.problem);
    if (rc && report.later && !o->drop_later) {
        fprintf (stderr,
                 "zflow journal repair: the bad record is in %s, which is not the last segment: "
                 "cutting it at byte %" PRIu64 " drops the %" PRIu64
                 " segments after it too (%" PRIu64
                 " bytes of records a broker would read after it). Nothing was changed. `zflow "
                 "journal repair %s --drop-later` cuts it and moves those segments aside as "
                 "SEGMENT.cut-0; or restore the journal\n",
                 report.file, report.offset, report.later, report.later_size, dir);
        status = ZF_EXIT_FAILED;
    }
    else if (rc) {
        fprintf (stderr, "zflow journal repair: %s\n", err.text);
        status = ZF_EXIT_FAILED;
    }
    else if (!report.corrupt) {
        printf ("journal %s: nothing to repair: %" PRIu64 " records read whole\n", journal,
                report.records);
        if (report.torn)
            printf ("(and a torn last record of %" PRIu64 " bytes, never confirmed: a broker cuts "
                    "it when it starts)\n",
                    report.torn);
    }
    else {
        printf ("cut %s at byte %" PRIu64 ": kept %" PRIu64 " bytes, cut %" PRIu64
                " bytes (copied to %s)\n",
                report.file, report.offset, report.kept, report.cut, report.cut_file);
        if (report.later)
            printf ("moved the %" PRIu64 " segments after it aside (%" PRIu64
                    " bytes), each as SEGMENT.cut-0\n",
                    report.later, report.later_size);
        printf ("journal %s: %" PRIu64 " records kept; a broker starts on them\n", journal,
                report.records);
    }
done:
    zstr_free (&journal);
    return status;
}

const zf_cmd_t zf_cmd_journal = {
    .name = "journal",
    .args = "repair DIR",
    .min_args = 2,
    .max_args = 2,
    .summary = "cut a corrupt journal at its first bad record, keeping a copy",
    .help = "DIR is a journal no broker runs on, or a zflow run state folder holding one.\n"
            "The cut bytes are copied beside their segment; a torn last record, never\n"
            "confirmed, is left for the broker to cut when it starts.",
    .exits = "0 repaired, or nothing to repair\n"
             "1 not repaired: the bad record is before the last segment (see --drop-later), or "
             "the journal cannot be read or written\n"
             "2 a usage error, or a DIR that holds no journal",
    .options = s_journal_options,
    .options_size = sizeof (s_journal_options_t),
    .run = s_journal,
};

//  The buffer events are packed in, kept from one to the next.
static msgpack_sbuffer s_event_buffer;

//  How a tap prints an event, in the order of --format's choices.
typedef enum { S_JSON, S_MSGPACK, S_PRETTY } s_format_t;

//  Prints one event as asked: a JSON line, a msgpack map, or a line for
//  people. map holds its fields (a msgpack map), body an item's body
//  (msgpack) or NULL. JSON and msgpack are the same map (zf_taps_pack).
static void
s_print_event (s_format_t format, const char *topic, const uint8_t *map, size_t map_size,
               const uint8_t *body, size_t body_size)
{
    if (format == S_MSGPACK) {
        zf_taps_pack (&s_event_buffer, topic, map, map_size, body, body_size);
        fwrite (s_event_buffer.data, 1, s_event_buffer.size, stdout);
        return;
    }
    if (format == S_JSON) {
        char *json = zf_taps_json (topic, map, map_size, body, body_size);
        puts (json);
        free (json);
        return;
    }
    char *fields = zf_msgpack_to_json (map, map_size, NULL);
    char *shown = body ? zf_msgpack_to_json (body, body_size, NULL) : NULL;
    if (!fields)
        fields = strdup ("{}");
    fields[strlen (fields) - 1] = 0; // the closing brace
    char stamp[32];
    time_t now = time (NULL);
    strftime (stamp, sizeof stamp, "%H:%M:%S", localtime (&now));
    printf ("%s %-20s %s%s%s%s\n", stamp, topic, fields + 1, fields[1] ? " " : "",
            body ? "body " : "", body ? (shown ? shown : "(not msgpack)") : "");
    free (shown);
    free (fields);
}

//  What a tap shows, and how much it has shown.
typedef struct {
    s_format_t format; // json, msgpack or pretty
    int64_t limit;     // events to print, 0 for no end
    int64_t sample;    // print one event in sample
    const char *actor; // only this actor's events, or NULL
    bool topics;       // topics were asked for besides actor:NAME
    int64_t printed;   // events printed
    int64_t seen;      // events chosen, for sampling
} s_tap_t;

static bool
s_tap_done (s_tap_t *tap)
{
    return tap->limit && tap->printed >= tap->limit;
}

//  Shows one event if it is chosen: one in sample (unless the broker
//  sampled it already), of the actor asked for.
static void
s_tap_show (s_tap_t *tap, const char *topic, const uint8_t *map, size_t map_size,
            const uint8_t *body, size_t body_size)
{
    if (s_tap_done (tap))
        return;
    char name[ZF_NAME_MAX + 1];
    if (tap->actor && !tap->topics &&
        !(zf_taps_field (map, map_size, "actor", name, sizeof name) && streq (name, tap->actor)))
        return;
    bool sampled = strncmp (topic, "sample.", 7) == 0; // by the broker already
    if (sampled || tap->seen++ % tap->sample == 0) {
        s_print_event (tap->format, topic, map, map_size, body, body_size);
        tap->printed++;
    }
}

//  zf_taps' callbacks: an event to show, a gap to say.
static void
s_tap_event (void *arg, const char *topic, const uint8_t *map, size_t map_size, const uint8_t *body,
             size_t body_size)
{
    s_tap_show ((s_tap_t *) arg, topic, map, map_size, body, body_size);
}

static void
s_tap_gap (void *arg, const char *topic, uint64_t missed)
{
    s_tap_t *tap = (s_tap_t *) arg;
    if (tap->format == S_PRETTY)
        printf ("missed %llu events of %s\n", (unsigned long long) missed, topic);
    else if (tap->format == S_JSON)
        printf ("{\"topic\":\"tap.gap\",\"of\":\"%s\",\"missed\":%llu}\n", topic,
                (unsigned long long) missed);
}

typedef struct {
    int64_t limit;  // events to print, 0 for no end
    int64_t sample; // print one event in sample
    int format;     // s_format_t
} s_tap_options_t;

static const zf_key_t s_tap_options[] = {
    { .name = "limit",
      .min = 1,
      .max = INT32_MAX,
      .help = "stop after N events (without it: when interrupted)",
      ZF_FIELD (ZF_KEY_INT, s_tap_options_t, limit) },
    { .name = "sample",
      .fallback = "1",
      .min = 1,
      .max = INT32_MAX,
      .help = "print one event in N (a data.QUEUE tap is sampled by the broker)",
      ZF_FIELD (ZF_KEY_INT, s_tap_options_t, sample) },
    { .name = "format",
      .fallback = "json",
      .choices = "json|msgpack|pretty",
      .help = "a JSON line, a msgpack map, or a line for people, per event",
      ZF_FIELD (ZF_KEY_ENUM, s_tap_options_t, format) },
    { NULL }
};

//  Subscribes sub to the patterns: topic prefixes (a trailing * is the
//  same), or actor:NAME for the events about one actor's workers (then
//  tap->actor names it). A queue's data tap sampled by more than one is
//  asked of the broker sampled. Returns how many topics were asked for
//  besides actor:NAME.
static int
s_tap_subscribe (zsock_t *sub, s_tap_t *tap, int count, char **patterns)
{
    int topics = 0;
    for (int i = 0; i < count; i++) {
        if (strncmp (patterns[i], "actor:", 6) == 0) {
            tap->actor = patterns[i] + 6;
            zsock_set_subscribe (sub, "worker.");
            zsock_set_subscribe (sub, "source.");
            continue;
        }
        char prefix[256];
        snprintf (prefix, sizeof prefix, "%s", patterns[i]);
        size_t len = strlen (prefix);
        if (len && prefix[len - 1] == '*')
            prefix[len - 1] = 0;
        else if (tap->sample > 1 && strncmp (prefix, "data.", 5) == 0) {
            // A queue's data, sampled by the broker: it sends one item in N.
            char sampled[300];
            snprintf (sampled, sizeof sampled, "sample.%lld.%s", (long long) tap->sample, prefix);
            zsock_set_subscribe (sub, sampled);
            topics++;
            continue;
        }
        zsock_set_subscribe (sub, prefix);
        topics++;
    }
    if (count == 0)
        zsock_set_subscribe (sub, ""); // every event; data taps are asked for by name
    return topics;
}

static int
s_tap (const void *options, int argc, char **args)
{
    const s_tap_options_t *o = (const s_tap_options_t *) options;
    s_tap_t tap = { .format = (s_format_t) o->format, .limit = o->limit, .sample = o->sample };
    zsock_t *sub = zsock_new (ZMQ_SUB);
    zsock_set_rcvhwm (sub, 1000); // events: a data event holds up to 1024 items
    zf_taps_t *taps = NULL;
    zpoller_t *poller = NULL;
    int status = ZF_EXIT_USAGE;
    zf_error_t err;
    if (zf_curve_client (sub, &err)) {
        fprintf (stderr, "zflow tap: %s\n", err.text);
        goto done;
    }
    tap.topics = s_tap_subscribe (sub, &tap, argc - 1, args + 1) > 0;
    if (zsock_connect (sub, "%s", args[0])) {
        fprintf (stderr, "zflow tap: cannot connect to %s\n", args[0]);
        goto done;
    }
    taps = zf_taps_new ();
    poller = zpoller_new (sub, NULL);
    while (!zsys_interrupted && !s_tap_done (&tap)) {
        // Events already here are read without asking the poller (a system
        // call each); output goes out when they stop coming for a moment:
        // one write for a burst, not one per event.
        if (!(zsock_events (sub) & ZMQ_POLLIN)) {
            fflush (stdout);
            if (!zpoller_wait (poller, 200))
                continue;
        }
        zmsg_t *msg = zmsg_recv (sub);
        if (!msg)
            break;
        char *topic = zframe_strdup (zmsg_first (msg));
        zframe_t *map = zmsg_next (msg);
        if (!map || zf_taps_read (taps, topic, zframe_data (map), zframe_size (map), s_tap_event,
                                  s_tap_gap, &tap))
            fprintf (stderr, "zflow tap: unreadable event on '%s'\n", topic);
        zstr_free (&topic);
        zmsg_destroy (&msg);
    }
    fflush (stdout);
    status = ZF_EXIT_OK;
done:
    zpoller_destroy (&poller);
    zf_taps_destroy (&taps);
    msgpack_sbuffer_destroy (&s_event_buffer);
    zsock_destroy (&sub);
    return status;
}

const zf_cmd_t zf_cmd_tap = {
    .name = "tap",
    .args = "ENDPOINT [PATTERN ...]",
    .min_args = 1,
    .max_args = -1,
    .summary = "live events and data taps: JSON, msgpack or for people",
    .help = "ENDPOINT is the broker's events endpoint. A PATTERN is a topic prefix (stats,\n"
            "worker., data.QUEUE for the items put on a queue; a trailing * is the same),\n"
            "or actor:NAME for the events of one actor's workers; with none, every event\n"
            "but the data taps. Events lost on the way are said as tap.gap.",
    .exits = "0 it printed --limit events, or was interrupted\n"
             "2 a usage error, CURVE settings that cannot be read, or an ENDPOINT it cannot "
             "connect to",
    .options = s_tap_options,
    .options_size = sizeof (s_tap_options_t),
    .run = s_tap,
};

typedef struct {
    const char *broker; // the broker (or every broker of a group), or NULL: the file's
    int64_t worker;     // this worker's number among the actor's
    const char *dir;    // the folder the file's relative paths are of, or NULL: the file's
} s_actor_options_t;

static const zf_key_t s_actor_options[] = {
    { .name = "broker",
      .shown = "ENDPOINT[,...]",
      .check = zf_parse_endpoints,
      .help = "the broker to work for, not the file's (a group: every broker, comma-separated)",
      ZF_FIELD (ZF_KEY_STRING, s_actor_options_t, broker) },
    { .name = "worker",
      .fallback = "0",
      .min = 0,
      .max = INT32_MAX,
      .help = "this worker's number among the actor's workers, 0-based",
      ZF_FIELD (ZF_KEY_INT, s_actor_options_t, worker) },
    // zflow run's workers read its copy of the file, whose paths are of
    // the original's folder.
    { .name = "dir",
      .shown = "DIR",
      .help = "the folder the file's relative paths are of, when it is not the file's own",
      ZF_FIELD (ZF_KEY_STRING, s_actor_options_t, dir) },
    { NULL }
};

static int
s_actor (const void *options, int argc, char **args)
{
    (void) argc;
    const s_actor_options_t *o = (const s_actor_options_t *) options;
    zf_pipeline_t *pipeline = zf_tools_load_in (args[1], o->dir);
    if (!pipeline)
        return ZF_EXIT_USAGE;
    zf_actor_conf_t *conf = zf_pipeline_actor (pipeline, args[0]);
    int status = ZF_EXIT_USAGE;
    if (conf)
        status = zf_tools_actor (pipeline, conf, o->broker, (int) o->worker);
    else
        fprintf (stderr, "zflow actor: no actor '%s' in %s\n", args[0], args[1]);
    zf_pipeline_destroy (&pipeline);
    return status;
}

const zf_cmd_t zf_cmd_actor = {
    .name = "actor",
    .args = "NAME PIPELINE",
    .min_args = 2,
    .max_args = 2,
    .summary = "run one worker of a built-in actor",
    .help = "It connects to the broker, works until its input ends or it is stopped\n"
            "(SIGINT, SIGTERM: it finishes or hands back what it holds), and exits as the\n"
            "actor says. zflow run starts its workers so; so may systemd or Kubernetes\n"
            "(zflow deploy).",
    .exits = "0 the actor ended, or was stopped\n"
             "1 it failed (stderr says why)\n"
             "2 a usage error, a pipeline with mistakes, or no actor NAME in it",
    .options = s_actor_options,
    .options_size = sizeof (s_actor_options_t),
    .run = s_actor,
};

int
zf_tools_actor (zf_pipeline_t *pipeline, zf_actor_conf_t *conf, const char *endpoint, int worker)
{
    // Without an endpoint: the pipeline's broker, or every broker of its group.
    char *brokers = zf_pipeline_brokers (pipeline);
    zf_actor_args_t actor = {
        .pipeline = pipeline,
        .conf = conf,
        .endpoint = endpoint ? endpoint : brokers,
        .worker = worker,
    };
    zf_error_t err;
    int status = ZF_EXIT_USAGE;
    if (zf_parse_endpoints (actor.endpoint, &err))
        fprintf (stderr, "zflow actor: --broker: %s\n", err.text);
    else if (zf_curve_setenv (pipeline, conf, &err))
        fprintf (stderr, "zflow actor %s: %s\n", conf->name, err.text);
    else
        status = zf_actor_run (&actor);
    free (brokers);
    return status;
}

//  True if something is at path: a file, or a symbolic link (dangling too).
static bool
s_taken (const char *path)
{
    struct stat st;
    return lstat (path, &st) == 0;
}

//  Makes path anew, empty, with mode: never through a symbolic link (with
//  O_EXCL open does not follow one). Returns 0, or -1 with errno.
static int
s_create_new (const char *path, mode_t mode)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    close (fd);
    return 0;
}

typedef struct {
    const char *dir; // the folder the pair is written in
} s_keygen_options_t;

static const zf_key_t s_keygen_options[] = { { .name = "dir",
                                               .fallback = ".",
                                               .shown = "DIR",
                                               .help = "write the pair in DIR (made if missing)",
                                               ZF_FIELD (ZF_KEY_STRING, s_keygen_options_t, dir) },
                                             { NULL } };

static int
s_keygen (const void *options, int argc, char **args)
{
    (void) argc;
    const s_keygen_options_t *o = (const s_keygen_options_t *) options;
    const char *name = args[0];
    if (!*name || strchr (name, '/'))
        return zf_cmd_usage (&zf_cmd_keygen,
                             "NAME is a file's name, without '/' (--dir says where)");
    char *public = zsys_sprintf ("%s/%s", o->dir, name);
    char *secret = zsys_sprintf ("%s/%s_secret", o->dir, name);
    int status = ZF_EXIT_OK;
    const char *taken = s_taken (public) ? public : s_taken (secret) ? secret : NULL;
    if (taken) {
        fprintf (stderr,
                 "zflow keygen: %s exists already (a file, or a symbolic link): not "
                 "overwritten, nor written through\n",
                 taken);
        status = ZF_EXIT_FAILED;
    }
    else if (zsys_dir_create ("%s", o->dir) != 0) {
        fprintf (stderr, "zflow keygen: cannot make %s: %s\n", o->dir, strerror (errno));
        status = ZF_EXIT_FAILED;
    }
    else if (s_create_new (secret, 0600)) {
        // Made first, so that the secret is never readable by others, and
        // never written through a link put there meanwhile.
        fprintf (stderr, "zflow keygen: cannot make %s: %s: not written\n", secret,
                 strerror (errno));
        status = ZF_EXIT_FAILED;
    }
    else if (s_create_new (public, 0644)) {
        fprintf (stderr, "zflow keygen: cannot make %s: %s: not written\n", public,
                 strerror (errno));
        unlink (secret);
        status = ZF_EXIT_FAILED;
    }
    else {
        zcert_t *cert = zcert_new ();
        zcert_set_meta (cert, "name", "%s", name);
        zcert_set_meta (cert, "created", "%" PRId64, zclock_time () / 1000);
        // The secret file is written readable by its owner only.
        if (zcert_save (cert, public) != 0 || chmod (secret, 0600) != 0) {
            fprintf (stderr, "zflow keygen: cannot write %s: %s\n", public, strerror (errno));
            status = ZF_EXIT_FAILED;
        }
        else
            printf ("%s: public certificate (give it to the other side: a broker's to its "
                    "clients, a client's to the broker's curve-clients folder)\n"
                    "%s: secret certificate (keep it here)\npublic key %s\n",
                    public, secret, zcert_public_txt (cert));
        zcert_destroy (&cert);
    }
    zstr_free (&public);
    zstr_free (&secret);
    return status;
}

const zf_cmd_t zf_cmd_keygen = {
    .name = "keygen",
    .args = "NAME",
    .min_args = 1,
    .max_args = 1,
    .summary = "write a CURVE certificate pair: NAME and NAME_secret",
    .help = "NAME is the public certificate, for the other side (a broker's to its clients,\n"
            "a client's to the broker's curve-clients folder); NAME_secret, readable by its\n"
            "owner only, stays here. An existing file (or link) of either name is never\n"
            "overwritten. docs/security.md.",
    .exits = "0 written\n"
             "1 a file of either name exists, or they cannot be written\n"
             "2 a usage error",
    .options = s_keygen_options,
    .options_size = sizeof (s_keygen_options_t),
    .run = s_keygen,
};

typedef struct {
    const char *from; // the time to start after (ISO 8601), or NULL: now
    int64_t count;    // how many times to print
    const char *tz;   // the zone the expression's times are of
} s_cron_options_t;

static const zf_key_t s_cron_options[] = {
    { .name = "from",
      .shown = "TIME",
      .help = "the times after TIME, not now (ISO 8601; without an offset, of --tz)",
      ZF_FIELD (ZF_KEY_STRING, s_cron_options_t, from) },
    { .name = "count",
      .fallback = "10",
      .min = 1,
      .max = 100000,
      .help = "how many times to print",
      ZF_FIELD (ZF_KEY_INT, s_cron_options_t, count) },
    { .name = "tz",
      .fallback = "UTC",
      .shown = "ZONE",
      .check = zf_tz_check,
      .help = "the time zone of the expression's times (America/New_York)",
      ZF_FIELD (ZF_KEY_STRING, s_cron_options_t, tz) },
    { NULL }
};

static int
s_cron (const void *options, int argc, char **args)
{
    (void) argc;
    const s_cron_options_t *o = (const s_cron_options_t *) options;
    zf_error_t err;
    zf_cron_t *cron = NULL;
    int status = ZF_EXIT_USAGE;
    zf_tz_t *tz = zf_tz_load (o->tz, &err);
    if (!tz) {
        fprintf (stderr, "zflow cron: --tz: %s\n", err.text);
        goto done;
    }
    cron = zf_cron_new (args[0], &err);
    if (!cron) {
        fprintf (stderr, "zflow cron: %s\n", err.text);
        goto done;
    }
    // --from is read here, not by its key: a time without an offset is
    // of --tz.
    int64_t at = zclock_time () / 1000;
    if (o->from && zf_cron_parse_time (tz, o->from, &at, &err)) {
        fprintf (stderr, "zflow cron: --from: %s\n", err.text);
        goto done;
    }
    status = ZF_EXIT_OK;
    for (int64_t i = 0; i < o->count; i++) {
        at = zf_cron_next (cron, tz, at);
        if (at == INT64_MAX) {
            fprintf (stderr, "zflow cron: '%s' does not fire %sin the 8 years searched\n", args[0],
                     i ? "again " : "");
            status = i ? ZF_EXIT_OK : ZF_EXIT_USAGE;
            break;
        }
        char text[40];
        printf ("%s\n", zf_cron_format (tz, at, text, sizeof text));
    }
done:
    zf_cron_destroy (&cron);
    zf_tz_destroy (&tz);
    return status;
}

const zf_cmd_t zf_cmd_cron = {
    .name = "cron",
    .args = "EXPR",
    .min_args = 1,
    .max_args = 1,
    .summary = "the next times a cron expression fires, ISO 8601",
    .help = "One time a line with the zone's offset (2026-03-08T03:00:00-04:00). EXPR has\n"
            "five fields, or six with seconds first (quote it); names, ranges, steps,\n"
            "lists, L, W, LW, #, and @hourly to @yearly; the day fields combine as in\n"
            "Vixie cron. A time a daylight-saving change skips fires once, at the change.",
    .exits = "0 printed (fewer than --count if it stops firing within 8 years)\n"
             "2 a usage error, a bad expression, zone or time, or one that never fires",
    .options = s_cron_options,
    .options_size = sizeof (s_cron_options_t),
    .run = s_cron,
};
