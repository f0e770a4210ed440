/*  zf_cli: the zflow command. See zf_cli.h. */
#include "zf_cli.h"
#include "zf_graph.h"
#include "zf_kinds.h"
#include "zf_pipeline.h"
#include "zf_proto.h"
#include "zf_run.h"
#include "zf_deploy.h"
#include "zf_steer.h"
#include "zf_tasks.h"
#include "zf_tools.h"
#include "zf_version.h"

#include "zf_zpl.h"

#include <czmq.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

typedef struct {
    const char *name;                   // as typed
    const char *args;                   // its arguments, for usage
    const char *summary;                // one line
    int (*run) (int argc, char **argv); // argv[0] is the command name
} s_command_t;

static int s_help (int argc, char **argv);

static int
s_validate (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: zflow validate PIPELINE\n");
        return ZF_EXIT_USAGE;
    }
    zf_pipeline_t *pipeline = zf_tools_load (argv[1]);
    if (!pipeline)
        return ZF_EXIT_USAGE;
    printf ("%s: pipeline %s is valid: %zu actors, %zu queues\n", argv[1], pipeline->name,
            zlistx_size (pipeline->actors), zlistx_size (pipeline->queues));
    zf_pipeline_destroy (&pipeline);
    return ZF_EXIT_OK;
}

static int
s_graph (int argc, char **argv)
{
    bool dot = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--dot") == 0)
            dot = true;
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else {
            fprintf (stderr, "usage: zflow graph PIPELINE [--dot]\n");
            return ZF_EXIT_USAGE;
        }
    }
    if (!path) {
        fprintf (stderr, "usage: zflow graph PIPELINE [--dot]\n");
        return ZF_EXIT_USAGE;
    }
    zf_pipeline_t *pipeline = zf_tools_load (path);
    if (!pipeline)
        return ZF_EXIT_USAGE;
    if (dot)
        zf_graph_dot (pipeline, stdout);
    else
        zf_graph_text (pipeline, stdout);
    zf_pipeline_destroy (&pipeline);
    return ZF_EXIT_OK;
}

_Static_assert(ZF_VERSION_PROTO == ZF_PROTO_VERSION, "zf_version.h names another ZFP");

static int
s_version (int argc, char **argv)
{
    (void) argc;
    (void) argv;
    zf_version_print (stdout);
    return ZF_EXIT_OK;
}

static const s_command_t s_commands[] = {
    { "validate", "PIPELINE", "check a pipeline file; exit 2 with every mistake", s_validate },
    { "graph", "PIPELINE [--dot]", "draw a pipeline as text, or as Graphviz dot", s_graph },
    { "run", "PIPELINE [--broker E] [--only A,B]", "launch a pipeline: broker and every actor",
      zf_cmd_run },
    { "broker", "PIPELINE [--endpoint E] [--cluster NODES]",
      "run the broker of a pipeline alone, or one of a replicated group", zf_cmd_broker },
    { "actor", "NAME PIPELINE [--broker E]", "run one worker of a built-in actor", zf_cmd_actor },
    { "deploy", "PIPELINE --systemd DIR | --kustomize DIR",
      "write systemd units, or Kubernetes manifests, for a pipeline", zf_cmd_deploy },
    { "put", "ENDPOINT QUEUE [JSON ...] [--delay D] [--priority N]",
      "put items (JSON; stdin lines if none); print ids", zf_cmd_put },
    { "status", "ENDPOINT [ID]", "queue figures, or one item's state", zf_cmd_status },
    { "journal", "repair DIR [--drop-later]",
      "cut a corrupt journal at its first bad record, keeping a copy", zf_cmd_journal },
    { "result", "ENDPOINT ID [--wait D]", "a root item's state and results, as JSON",
      zf_cmd_result },
    { "cancel", "ENDPOINT ID", "cancel what is left of a root item's lineage", zf_cmd_cancel },
    { "dead", "ENDPOINT [QUEUE] [--limit N] [--json]", "list a running broker's dead letters",
      zf_cmd_dead },
    { "requeue", "ENDPOINT QUEUE.dead [ID ...] [--all] [--where H=V]",
      "move dead letters back to their queue, to be tried again", zf_cmd_requeue },
    { "purge", "ENDPOINT QUEUE [--older-than D] [--yes]",
      "drop the items waiting in a queue (their lineages end cancelled)", zf_cmd_purge },
    { "pause", "ENDPOINT QUEUE", "deliver nothing from a queue (puts go on) until resumed",
      zf_cmd_pause },
    { "resume", "ENDPOINT QUEUE", "deliver from a paused queue again", zf_cmd_resume },
    { "reload", "ENDPOINT", "the run or broker there reads its pipeline file again (as SIGHUP)",
      zf_cmd_reload },
    { "schedule", "ENDPOINT add|list|pause|resume|remove|run [NAME]",
      "schedules of a running broker: added, listed, paused, fired now", zf_cmd_schedule },
    { "tap", "ENDPOINT [PATTERN ...]", "live events and data taps: JSON, msgpack or for people",
      zf_cmd_tap },
    { "top", "EVENTS_ENDPOINT [--once]", "queues and actors of a running broker, live",
      zf_cmd_top },
    { "keygen", "NAME [--dir DIR]", "write a CURVE certificate pair: NAME and NAME_secret",
      zf_cmd_keygen },
    { "cron", "EXPR [--from TIME] [--count N] [--tz ZONE]",
      "the next times a cron expression fires, ISO 8601", zf_cmd_cron },
    { "help", "[KIND|broker|cluster|queues|--markdown]",
      "list the commands, or the keys of a section", s_help },
    { "version", "", "print the versions of zflow and its libraries", s_version },
    { NULL },
};

static void
s_usage (FILE *out)
{
    fprintf (out, "zflow %s: data pipelines of actor processes over ZeroMQ\n\n", ZFLOW_VERSION);
    fprintf (out, "usage:\n");
    for (const s_command_t *c = s_commands; c->name; c++) {
        char line[64];
        snprintf (line, sizeof line, "%s %s", c->name, c->args);
        fprintf (out, "  zflow %-32s %s\n", line, c->summary);
    }
    fprintf (out, "\nactor kinds (zflow help KIND for their keys):\n");
    for (const zf_kind_t *const *k = zf_kinds (); *k; k++)
        fprintf (out, "  %-10s %s\n", (*k)->name, (*k)->summary);
    fprintf (out, "\nexit status: 0 done, 1 the run failed, 2 usage or config error\n");
}

//  The whole config reference, from the key tables, as Markdown.
static int
s_help_markdown (void)
{
    printf ("# zflow config reference\n\n"
            "Generated from the key tables in the source by `zflow help --markdown`\n"
            "(`./scripts/docs` rewrites this file; the tests check it is current).\n\n"
            "A pipeline file has the sections `pipeline`, `broker`, `cluster` (a\n"
            "replicated broker, docs/cluster.md), `queues` (one sub-section per queue)\n"
            "and `actors` (one sub-section per actor). Durations\n"
            "are written `250ms`, `30s`, `5m`, `1h`; sizes `512`, `64KiB`, `10MB`.\n"
            "Values may use `${VAR}` and `${VAR:-default}` from the environment.\n\n");
    printf ("## pipeline\n\n");
    zf_keys_print_markdown (zf_pipeline_keys, stdout);
    printf ("\n## broker\n\n");
    zf_keys_print_markdown (zf_broker_keys, stdout);
    printf ("\n## cluster\n\nThree (or five) brokers that replicate the journal with Raft; "
            "without a\n`nodes` list, one broker.\n\n");
    zf_keys_print_markdown (zf_cluster_keys, stdout);
    printf ("\n## queues/NAME\n\nA queue read or written by an actor exists without a section; "
            "a section\nchanges its settings.\n\n");
    zf_keys_print_markdown (zf_queue_keys, stdout);
    for (const zf_kind_t *const *k = zf_kinds (); *k; k++) {
        printf ("\n## actors/NAME with kind = %s\n\n%s.\n\n", (*k)->name, (*k)->summary);
        zf_keys_print_markdown ((*k)->keys, stdout);
        if ((*k)->job_keys) {
            printf ("\nSeveral jobs: one sub-section per %s, each with:\n\n", (*k)->job);
            zf_keys_print_markdown ((*k)->job_keys, stdout);
        }
        if ((*k)->one_of) {
            char choices[128];
            snprintf (choices, sizeof choices, "%s", (*k)->one_of);
            for (char *p = choices; *p; p++)
                if (*p == '|')
                    *p = '/';
            printf ("\nExactly one of `%s` is given%s.\n", choices, (*k)->job ? " (per job)" : "");
        }
    }
    return ZF_EXIT_OK;
}

static int
s_help (int argc, char **argv)
{
    if (argc < 2) {
        s_usage (stdout);
        return ZF_EXIT_OK;
    }
    const char *topic = argv[1];
    if (strcmp (topic, "--markdown") == 0)
        return s_help_markdown ();
    const zf_kind_t *kind = zf_kind_lookup (zf_kinds (), topic);
    if (kind) {
        printf ("%s: %s\n\nkeys:\n", kind->name, kind->summary);
        zf_keys_print (kind->keys, stdout);
        if (kind->job_keys) {
            printf ("\neach %s (a sub-section of the actor) takes:\n", kind->job);
            zf_keys_print (kind->job_keys, stdout);
        }
        if (kind->one_of)
            printf ("\nexactly one of %s is needed%s.\n", kind->one_of,
                    kind->job ? " (per job)" : "");
        return ZF_EXIT_OK;
    }
    static const struct {
        const char *topic;    // the section
        const zf_key_t *keys; // its table
        const char *summary;  // what it holds
    } sections[] = {
        { "pipeline", zf_pipeline_keys, "the pipeline section" },
        { "broker", zf_broker_keys, "the broker section: endpoints and timings" },
        { "cluster", zf_cluster_keys, "the cluster section: a Raft group of brokers" },
        { "queues", zf_queue_keys, "each queue's section under queues" },
    };
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        if (strcmp (topic, sections[i].topic) == 0) {
            printf ("%s\n\nkeys:\n", sections[i].summary);
            zf_keys_print (sections[i].keys, stdout);
            return ZF_EXIT_OK;
        }
    fprintf (stderr, "zflow help: no kind or section '%s'\n", topic);
    return ZF_EXIT_USAGE;
}

//  The process's arguments, NUL-separated in one span (zf_cli_retitle).
static char *s_args;
static size_t s_args_size;

void
zf_cli_retitle (const char *const *words)
{
    size_t at = 0;
    for (int i = 0; words[i] && at < s_args_size; i++) {
        size_t len = strlen (words[i]);
        if (len > s_args_size - at - 1)
            len = s_args_size - at - 1;
        memcpy (s_args + at, words[i], len);
        at += len;
        s_args[at++] = 0;
    }
    if (at < s_args_size)
        memset (s_args + at, 0, s_args_size - at);
}

int
zf_cli_main (int argc, char **argv)
{
    if (!s_args && argc > 0) {
        // The kernel lays the arguments out end to end: the span is theirs.
        size_t size = 0;
        for (int i = 0; i < argc && argv[i] == argv[0] + size; i++)
            size += strlen (argv[i]) + 1;
        s_args = argv[0];
        s_args_size = size;
    }
    // Descriptors 0 to 2 open (on /dev/null if they were closed), so that
    // none of this process's own files or sockets takes their numbers and
    // is written to, or inherited, as a standard stream.
    for (int fd; (fd = open ("/dev/null", O_RDWR | O_CLOEXEC)) >= 0;)
        if (fd > 2) {
            close (fd);
            break;
        }
        else
            fcntl (fd, F_SETFD, 0); // a standard stream stays across exec
    // Logs go to stderr: stdout carries what a command prints for use
    // (ids, tables, JSON lines). Said to czmq by its variable, which it
    // reads when first used, not by a call that would start it now: zflow
    // run forks its first workers before anything starts czmq.
    setenv ("ZSYS_LOGSTREAM", "stderr", 1);
    // A file size limit (ulimit -f) is a write error to wait out, as a full
    // disk is (the sink, the journal), not a kill.
    signal (SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        s_usage (stderr);
        return ZF_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp (name, "-h") == 0 || strcmp (name, "--help") == 0)
        name = "help";
    if (strcmp (name, "--version") == 0)
        name = "version";
    for (const s_command_t *c = s_commands; c->name; c++)
        if (strcmp (c->name, name) == 0)
            return c->run (argc - 1, argv + 1);
    const char *names[sizeof s_commands / sizeof s_commands[0]];
    int n = 0;
    for (const s_command_t *c = s_commands; c->name; c++)
        names[n++] = c->name;
    names[n] = NULL;
    const char *near = zf_nearest (name, names);
    if (near)
        fprintf (stderr, "zflow: unknown command '%s' (did you mean '%s'?)\n", name, near);
    else
        fprintf (stderr, "zflow: unknown command '%s' (zflow help lists them)\n", name);
    return ZF_EXIT_USAGE;
}
