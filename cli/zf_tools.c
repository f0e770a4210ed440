/*  zf_tools: the commands that talk to a running broker (broker, put,
    status, tap). Each takes argv as the command saw it, argv[0] its name,
    and returns an exit status.
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

int
zf_tools_options (int argc, char **argv, const char **names, const char **values, char **args,
                  const char *usage)
{
    int nargs = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp (argv[i], "--", 2) == 0) {
            int n;
            for (n = 0; names[n]; n++)
                if (streq (argv[i] + 2, names[n] + (names[n][0] == '!')))
                    break;
            bool flag = names[n] && names[n][0] == '!';
            if (!names[n] || (!flag && i + 1 >= argc)) {
                fprintf (stderr, "zflow %s: %s %s\nusage: zflow %s\n", argv[0],
                         names[n] ? "missing a value after" : "unknown option", argv[i], usage);
                return -1;
            }
            values[n] = flag ? "" : argv[++i];
        }
        else
            args[nargs++] = argv[i];
    }
    return nargs;
}

const char *
zf_tools_path (const char *path, char *buffer, size_t size)
{
    char cwd[4096];
    if (!path || !*path || *path == '/' || !getcwd (cwd, sizeof cwd))
        return path;
    snprintf (buffer, size, "%s/%s", cwd, path);
    return buffer;
}

int64_t
zf_tools_duration (const char *command, const char *text, int64_t fallback)
{
    if (!text)
        return fallback;
    int64_t ms;
    zf_error_t err;
    if (zf_parse_duration (text, &ms, &err)) {
        fprintf (stderr, "zflow %s: --timeout: %s\n", command, err.text);
        return -1;
    }
    return ms;
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

int
zf_cmd_broker (int argc, char **argv)
{
    const char *usage =
        "broker PIPELINE [--endpoint E] [--events E] [--intake E] [--journal DIR] [--insecure]\n"
        "       [--cluster HOST:PORT,HOST:PORT,HOST:PORT [--node N]]";
    const char *names[] = { "endpoint", "events", "intake", "journal", "cluster", "node", NULL };
    const char *values[6] = { NULL };
    char *args[16];
    // --insecure is a flag; the rest take values.
    bool insecure = false;
    int kept = 0;
    for (int i = 0; i < argc; i++)
        if (i > 0 && streq (argv[i], "--insecure"))
            insecure = true;
        else
            argv[kept++] = argv[i];
    argc = kept;
    int nargs = argc < 15 ? zf_tools_options (argc, argv, names, values, args, usage) : -1;
    if (nargs != 1) {
        if (nargs >= 0)
            fprintf (stderr, "usage: zflow %s\n", usage);
        return ZF_EXIT_USAGE;
    }
    int64_t node = 0;
    zf_error_t err;
    if (values[5] && (zf_parse_int (values[5], &node, &err) || node < 1 || node > ZF_NODES_MAX)) {
        fprintf (stderr, "zflow broker: --node %s: expected the node's number, 1 to %d\n",
                 values[5], ZF_NODES_MAX);
        return ZF_EXIT_USAGE;
    }
    char addresses[ZF_NODES_MAX][256];
    int count;
    if (values[4] && zf_parse_nodes (values[4], addresses, &count, &err)) {
        fprintf (stderr, "zflow broker: --cluster: %s\n", err.text);
        return ZF_EXIT_USAGE;
    }
    zf_pipeline_t *pipeline = zf_tools_load (args[0]);
    if (!pipeline)
        return ZF_EXIT_USAGE;
    char journal[8192];
    zf_broker_args_t broker_args = { .pipeline = pipeline,
                                     .endpoint = values[0],
                                     .events = values[1],
                                     .intake = values[2],
                                     .journal = zf_tools_path (values[3], journal, sizeof journal),
                                     .insecure = insecure,
                                     .cluster = values[4],
                                     .node = (int) node };
    // Its own clients (the HTTP endpoint's) use the pipeline's client
    // certificate.
    zf_broker_t *broker =
        zf_curve_setenv (pipeline, NULL, &err) ? NULL : zf_broker_start (&broker_args, &err);
    zf_gateway_t *gateway = NULL;
    if (!broker || zf_gateway_for (pipeline, zf_broker_endpoint (broker), zf_broker_events (broker),
                                   insecure, &gateway, &err)) {
        fprintf (stderr, "zflow broker: %s\n", err.text);
        zf_broker_destroy (&broker);
        zf_pipeline_destroy (&pipeline);
        return ZF_EXIT_FAILED;
    }
    const char *metrics = gateway ? zf_gateway_address (gateway) : NULL;
    printf ("zflow broker: pipeline %s: actors connect to %s, events on %s%s%s%s%s\n",
            pipeline->name, zf_broker_endpoint (broker), zf_broker_events (broker),
            *zf_broker_intake (broker) ? ", intake on " : "", zf_broker_intake (broker),
            metrics ? ", metrics on http://" : "", metrics ? metrics : "");
    fflush (stdout);
    // The broker runs in its own thread; this one waits for a signal, or
    // for a broker of a group to stop when it loses the lead. SIGHUP (or
    // zflow reload) reads the file again for its queues' settings.
    signal (SIGHUP, s_on_hup);
    zlistx_t *replaced = zlistx_new (); // versions of the config the broker had
    zlistx_set_destructor (replaced, (zlistx_destructor_fn *) zf_pipeline_destroy);
    const char *lost = NULL;
    while (!zsys_interrupted && !(lost = zf_broker_lost (broker))) {
        if (s_hup || zf_broker_reload_asked (broker)) {
            s_hup = 0;
            printf ("zflow broker: reading %s again\n", pipeline->file);
            fflush (stdout);
            zf_pipeline_t *next = zf_tools_load (pipeline->file);
            if (next && streq (next->name, pipeline->name)) {
                zf_broker_reload (broker, next, "");
                zlistx_add_end (replaced, pipeline);
                pipeline = next;
            }
            else {
                if (next)
                    fprintf (stderr, "zflow broker: the pipeline's name changed: a new name is a "
                                     "new broker\n");
                zf_pipeline_destroy (&next);
                fprintf (stderr, "zflow broker: reload refused: the running config goes on\n");
            }
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
    zf_gateway_destroy (&gateway);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zlistx_destroy (&replaced);
    return ZF_EXIT_OK;
}

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

int
zf_cmd_status (int argc, char **argv)
{
    const char *usage = "status ENDPOINT [ID] [--timeout 5s] | status --state DIR";
    const char *names[] = { "timeout", "state", NULL };
    const char *values[2] = { NULL, NULL };
    char *args[8];
    int nargs = argc < 8 ? zf_tools_options (argc, argv, names, values, args, usage) : -1;
    if (nargs == 0 && values[1])
        return s_status_state (values[1]);
    int64_t timeout = zf_tools_duration ("status", values[0], 5000);
    if (nargs < 1 || nargs > 2 || timeout < 0) {
        if (nargs >= 0 && timeout >= 0)
            fprintf (stderr, "usage: zflow %s\n", usage);
        return ZF_EXIT_USAGE;
    }
    zf_id_t id;
    if (nargs == 2 && zf_tasks_id_arg ("status", args[1], &id))
        return ZF_EXIT_USAGE;
    zf_client_t *client = zf_client_new (args[0], "zflow-status", NULL, 0);
    if (!client) {
        fprintf (stderr, "zflow status: %s\n", zf_client_last_error (NULL));
        return ZF_EXIT_USAGE;
    }
    int status = ZF_EXIT_OK;
    if (nargs == 2) {
        zf_result_t *item = zf_client_item (client, &id, (int) timeout);
        if (!item)
            status = ZF_EXIT_FAILED;
        else {
            // A failure: where, after how many tries, why; a task cancelled
            // (or failed by its gather): why.
            if (*zf_result_reason (item) && *zf_result_queue (item))
                printf ("%s %s (queue %s, attempt %u): %s\n", args[1], zf_result_state (item),
                        zf_result_queue (item), zf_result_attempts (item), zf_result_reason (item));
            else if (*zf_result_reason (item))
                printf ("%s %s: %s\n", args[1], zf_result_state (item), zf_result_reason (item));
            else
                printf ("%s %s\n", args[1], zf_result_state (item));
            if (zf_result_progress (item) || *zf_result_note (item)) // a task at work
                printf ("    progress %u.%u%%%s%s\n", zf_result_progress (item) / 10,
                        zf_result_progress (item) % 10, *zf_result_note (item) ? " " : "",
                        zf_result_note (item));
            s_print_indented (zf_result_detail (item), "    "); // a traceback, under its reason
        }
        zf_result_destroy (&item);
    }
    else {
        size_t count;
        zf_figures_t *queues = zf_client_queues (client, &count, (int) timeout);
        if (queues) {
            printf ("%-24s %9s %9s %10s %10s %8s %8s %10s\n", "QUEUE", "DEPTH", "INFLIGHT", "PUT",
                    "ACKED", "NACKED", "DEAD", "CONSUMERS");
            for (size_t i = 0; i < count; i++)
                printf ("%-24s %9llu %9llu %10llu %10llu %8llu %8llu %10u%s\n", queues[i].name,
                        (unsigned long long) queues[i].depth,
                        (unsigned long long) queues[i].inflight, (unsigned long long) queues[i].put,
                        (unsigned long long) queues[i].ack, (unsigned long long) queues[i].nack,
                        (unsigned long long) queues[i].dead, queues[i].consumers,
                        queues[i].paused ? "  paused" : "");
            free (queues);
            // Every consumer group, with its workers and backlog: one that
            // no actor declares is a client's, forgotten after group-expiry.
            zf_group_figures_t *groups = zf_client_groups (client, &count, (int) timeout);
            if (groups && count) {
                printf ("\n%-24s %-24s %9s %9s %9s %9s %10s  %s\n", "QUEUE", "GROUP", "WORKERS",
                        "READY", "THROTTLED", "INFLIGHT", "ACKED", "DECLARED");
                for (size_t i = 0; i < count; i++)
                    printf ("%-24s %-24s %9u %9llu %9llu %9llu %10llu  %s\n", groups[i].queue,
                            groups[i].name[0] ? groups[i].name : "(no reader yet)",
                            groups[i].workers, (unsigned long long) groups[i].ready,
                            (unsigned long long) groups[i].throttled,
                            (unsigned long long) groups[i].inflight,
                            (unsigned long long) groups[i].acked,
                            groups[i].declared ? "yes" : "no (a client's)");
            }
            free (groups);
            s_print_keys (client, (int) timeout);
        }
        else
            status = ZF_EXIT_FAILED;
    }
    if (status == ZF_EXIT_FAILED)
        fprintf (stderr, "zflow status: no answer from %s within %lld ms\n", args[0],
                 (long long) timeout);
    zf_client_destroy (&client);
    return status;
}

//  A record as a broker reads it: a repair cuts at the first one a broker
//  would refuse.
static int
s_check_record (void *arg, zf_jr_type_t type, const uint8_t *payload, size_t size, zf_error_t *err)
{
    zf_record_t record;
    return zf_record_read (&record, type, payload, size, err);
}

int
zf_cmd_journal (int argc, char **argv)
{
    const char *usage = "usage: zflow journal repair DIR [--drop-later]\n";
    const char *dir = NULL;
    bool drop_later = false;
    for (int i = 2; i < argc; i++)
        if (streq (argv[i], "--drop-later"))
            drop_later = true;
        else if (!dir && argv[i][0] != '-')
            dir = argv[i];
        else {
            fprintf (stderr, "zflow journal: unexpected %s\n%s", argv[i], usage);
            return ZF_EXIT_USAGE;
        }
    if (argc < 2 || !streq (argv[1], "repair") || !dir) {
        fprintf (stderr, "%s", usage);
        return ZF_EXIT_USAGE;
    }
    char *journal = s_journal_of (dir);
    if (!s_is_dir (journal)) {
        fprintf (stderr, "zflow journal repair: %s holds no journal\n", journal);
        zstr_free (&journal);
        return ZF_EXIT_USAGE;
    }
    zf_journal_repair_t report;
    zf_error_t err;
    int rc = zf_journal_repair (journal, drop_later, s_check_record, NULL, &report, &err);
    int status = ZF_EXIT_OK;
    if (report.corrupt)
        printf ("found: %s\n", report.problem);
    if (rc && report.later && !drop_later) {
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
    zstr_free (&journal);
    return status;
}

//  The buffer events are packed in, kept from one to the next.
static msgpack_sbuffer s_event_buffer;

//  Prints one event as asked: a JSON line, a msgpack map, or a line for
//  people. map holds its fields (a msgpack map), body an item's body
//  (msgpack) or NULL. JSON and msgpack are the same map (zf_taps_pack).
static void
s_print_event (const char *format, const char *topic, const uint8_t *map, size_t map_size,
               const uint8_t *body, size_t body_size)
{
    if (streq (format, "msgpack")) {
        zf_taps_pack (&s_event_buffer, topic, map, map_size, body, body_size);
        fwrite (s_event_buffer.data, 1, s_event_buffer.size, stdout);
        return;
    }
    if (streq (format, "json")) {
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
    const char *format; // json, msgpack or pretty
    int64_t limit;      // events to print, 0 for no end
    int64_t sample;     // print one event in sample
    const char *actor;  // only this actor's events, or NULL
    bool topics;        // topics were asked for besides actor:NAME
    int64_t printed;    // events printed
    int64_t seen;       // events chosen, for sampling
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
    if (streq (tap->format, "pretty"))
        printf ("missed %llu events of %s\n", (unsigned long long) missed, topic);
    else if (streq (tap->format, "json"))
        printf ("{\"topic\":\"tap.gap\",\"of\":\"%s\",\"missed\":%llu}\n", topic,
                (unsigned long long) missed);
}

int
zf_cmd_tap (int argc, char **argv)
{
    const char *usage = "tap ENDPOINT [PATTERN ...] [--limit N] [--sample N] [--format "
                        "json|msgpack|pretty]";
    const char *names[] = { "limit", "sample", "format", NULL };
    const char *values[3] = { NULL, NULL, NULL };
    char **args = (char **) calloc ((size_t) argc + 1, sizeof (char *));
    int nargs = zf_tools_options (argc, argv, names, values, args, usage);
    int64_t limit = 0, sample = 1;
    const char *format = values[2] ? values[2] : "json";
    bool bad_format =
        !streq (format, "json") && !streq (format, "msgpack") && !streq (format, "pretty");
    if (nargs < 1 || (values[0] && (zf_parse_int (values[0], &limit, NULL) || limit < 1)) ||
        (values[1] && (zf_parse_int (values[1], &sample, NULL) || sample < 1)) || bad_format) {
        if (nargs >= 0)
            fprintf (stderr, "usage: zflow %s\n", usage);
        free (args);
        return ZF_EXIT_USAGE;
    }
    // Patterns: topic prefixes (a trailing * is the same), or actor:NAME
    // for the events about one actor's workers.
    zsock_t *sub = zsock_new (ZMQ_SUB);
    zsock_set_rcvhwm (sub, 1000); // events: a data event holds up to 1024 items
    zf_error_t err;
    if (zf_curve_client (sub, &err)) {
        fprintf (stderr, "zflow tap: %s\n", err.text);
        zsock_destroy (&sub);
        free (args);
        return ZF_EXIT_USAGE;
    }
    const char *actor = NULL;
    int topics = 0;
    for (int i = 1; i < nargs; i++) {
        if (strncmp (args[i], "actor:", 6) == 0) {
            actor = args[i] + 6;
            zsock_set_subscribe (sub, "worker.");
            zsock_set_subscribe (sub, "source.");
            continue;
        }
        char prefix[256];
        snprintf (prefix, sizeof prefix, "%s", args[i]);
        size_t len = strlen (prefix);
        if (len && prefix[len - 1] == '*')
            prefix[len - 1] = 0;
        else if (sample > 1 && strncmp (prefix, "data.", 5) == 0) {
            // A queue's data, sampled by the broker: it sends one item in N.
            char sampled[300];
            snprintf (sampled, sizeof sampled, "sample.%lld.%s", (long long) sample, prefix);
            zsock_set_subscribe (sub, sampled);
            topics++;
            continue;
        }
        zsock_set_subscribe (sub, prefix);
        topics++;
    }
    if (nargs == 1)
        zsock_set_subscribe (sub, ""); // every event; data taps are asked for by name
    if (zsock_connect (sub, "%s", args[0])) {
        fprintf (stderr, "zflow tap: cannot connect to %s\n", args[0]);
        zsock_destroy (&sub);
        free (args);
        return ZF_EXIT_USAGE;
    }
    s_tap_t tap = {
        .format = format, .limit = limit, .sample = sample, .actor = actor, .topics = topics > 0
    };
    zf_taps_t *taps = zf_taps_new ();
    zpoller_t *poller = zpoller_new (sub, NULL);
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
    zpoller_destroy (&poller);
    zf_taps_destroy (&taps);
    msgpack_sbuffer_destroy (&s_event_buffer);
    zsock_destroy (&sub);
    free (args);
    return ZF_EXIT_OK;
}

int
zf_cmd_actor (int argc, char **argv)
{
    const char *usage = "actor NAME PIPELINE [--broker ENDPOINT] [--worker N] [--dir DIR]";
    // --dir: the folder the file's relative paths are of, when it is not
    // the file's own (zflow run's workers read its copy of the file).
    const char *names[] = { "broker", "worker", "dir", NULL };
    const char *values[3] = { NULL };
    char *args[8];
    int nargs = argc < 12 ? zf_tools_options (argc, argv, names, values, args, usage) : -1;
    int64_t worker = 0;
    if (nargs != 2 || (values[1] && (zf_parse_int (values[1], &worker, NULL) || worker < 0))) {
        if (nargs >= 0)
            fprintf (stderr, "usage: zflow %s\n", usage);
        return ZF_EXIT_USAGE;
    }
    zf_pipeline_t *pipeline = zf_tools_load_in (args[1], values[2]);
    if (!pipeline)
        return ZF_EXIT_USAGE;
    zf_actor_conf_t *conf = zf_pipeline_actor (pipeline, args[0]);
    if (!conf) {
        fprintf (stderr, "zflow actor: no actor '%s' in %s\n", args[0], args[1]);
        zf_pipeline_destroy (&pipeline);
        return ZF_EXIT_USAGE;
    }
    int status = zf_tools_actor (pipeline, conf, values[0], (int) worker);
    zf_pipeline_destroy (&pipeline);
    return status;
}

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

int
zf_cmd_keygen (int argc, char **argv)
{
    const char *usage = "keygen NAME [--dir DIR]";
    const char *names[] = { "dir", NULL };
    const char *values[1] = { NULL };
    char *args[4];
    int nargs = argc < 5 ? zf_tools_options (argc, argv, names, values, args, usage) : -1;
    const char *name = nargs == 1 ? args[0] : NULL;
    if (!name || !*name || strchr (name, '/')) {
        if (nargs >= 0)
            fprintf (stderr, "usage: zflow %s\n", usage);
        return ZF_EXIT_USAGE;
    }
    const char *dir = values[0] ? values[0] : ".";
    char *public = zsys_sprintf ("%s/%s", dir, name);
    char *secret = zsys_sprintf ("%s/%s_secret", dir, name);
    int status = ZF_EXIT_OK;
    const char *taken = s_taken (public) ? public : s_taken (secret) ? secret : NULL;
    if (taken) {
        fprintf (stderr,
                 "zflow keygen: %s exists already (a file, or a symbolic link): not "
                 "overwritten, nor written through\n",
                 taken);
        status = ZF_EXIT_FAILED;
    }
    else if (zsys_dir_create ("%s", dir) != 0) {
        fprintf (stderr, "zflow keygen: cannot make %s: %s\n", dir, strerror (errno));
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

int
zf_cmd_cron (int argc, char **argv)
{
    const char *usage = "cron EXPR [--from TIME] [--count N] [--tz ZONE]";
    const char *names[] = { "from", "count", "tz", NULL };
    const char *values[3] = { NULL, NULL, NULL };
    char *args[8];
    int nargs = argc < 12 ? zf_tools_options (argc, argv, names, values, args, usage) : -1;
    if (nargs != 1) {
        if (nargs >= 0)
            fprintf (stderr, "usage: zflow %s\n", usage);
        return ZF_EXIT_USAGE;
    }
    zf_error_t err;
    int64_t count = 10;
    if (values[1] && (zf_parse_int (values[1], &count, &err) || count < 1 || count > 100000)) {
        fprintf (stderr, "zflow cron: --count: expected a number from 1 to 100000, not '%s'\n",
                 values[1]);
        return ZF_EXIT_USAGE;
    }
    zf_tz_t *tz = zf_tz_load (values[2] ? values[2] : "UTC", &err);
    if (!tz) {
        fprintf (stderr, "zflow cron: --tz: %s\n", err.text);
        return ZF_EXIT_USAGE;
    }
    zf_cron_t *cron = zf_cron_new (args[0], &err);
    if (!cron) {
        fprintf (stderr, "zflow cron: %s\n", err.text);
        zf_tz_destroy (&tz);
        return ZF_EXIT_USAGE;
    }
    int64_t at = zclock_time () / 1000;
    if (values[0] && zf_cron_parse_time (tz, values[0], &at, &err)) {
        fprintf (stderr, "zflow cron: --from: %s\n", err.text);
        zf_cron_destroy (&cron);
        zf_tz_destroy (&tz);
        return ZF_EXIT_USAGE;
    }
    int status = ZF_EXIT_OK;
    for (int64_t i = 0; i < count; i++) {
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
    zf_cron_destroy (&cron);
    zf_tz_destroy (&tz);
    return status;
}
