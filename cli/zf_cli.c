/*  zf_cli: the zflow command. See zf_cli.h. */
#include "zf_cli.h"
#include "zf_cmd.h"
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

static int
s_validate (const void *options, int argc, char **args)
{
    (void) options;
    (void) argc;
    zf_pipeline_t *pipeline = zf_tools_load (args[0]);
    if (!pipeline)
        return ZF_EXIT_USAGE;
    printf ("%s: pipeline %s is valid: %zu actors, %zu queues\n", args[0], pipeline->name,
            zlistx_size (pipeline->actors), zlistx_size (pipeline->queues));
    zf_pipeline_destroy (&pipeline);
    return ZF_EXIT_OK;
}

static const zf_cmd_t s_validate_command = {
    .name = "validate",
    .args = "PIPELINE",
    .min_args = 1,
    .max_args = 1,
    .summary = "check a pipeline file; exit 2 with every mistake",
    .help = "Prints each mistake as FILE:LINE: what is wrong (and the nearest key for a\n"
            "misspelt one), and each warning; nothing is started.",
    .exits = "0 the pipeline is valid (warnings may be printed)\n"
             "2 it has mistakes, or cannot be read",
    .run = s_validate,
};

typedef struct {
    bool dot; // Graphviz dot, not text
} s_graph_options_t;

static const zf_key_t s_graph_options[] = {
    { .name = "dot",
      .help = "print Graphviz dot (zflow graph P --dot | dot -Tsvg)",
      ZF_FIELD (ZF_KEY_BOOL, s_graph_options_t, dot) },
    { NULL }
};

static int
s_graph (const void *options, int argc, char **args)
{
    (void) argc;
    const s_graph_options_t *o = (const s_graph_options_t *) options;
    zf_pipeline_t *pipeline = zf_tools_load (args[0]);
    if (!pipeline)
        return ZF_EXIT_USAGE;
    if (o->dot)
        zf_graph_dot (pipeline, stdout);
    else
        zf_graph_text (pipeline, stdout);
    zf_pipeline_destroy (&pipeline);
    return ZF_EXIT_OK;
}

static const zf_cmd_t s_graph_command = {
    .name = "graph",
    .args = "PIPELINE",
    .min_args = 1,
    .max_args = 1,
    .summary = "draw a pipeline's actors and queues as text, or as Graphviz dot",
    .exits = "0 drawn\n2 the pipeline has mistakes, or cannot be read",
    .options = s_graph_options,
    .options_size = sizeof (s_graph_options_t),
    .run = s_graph,
};

_Static_assert(ZF_VERSION_PROTO == ZF_PROTO_VERSION, "zf_version.h names another ZFP");

static int
s_version (const void *options, int argc, char **args)
{
    (void) options;
    (void) argc;
    (void) args;
    zf_version_print (stdout);
    return ZF_EXIT_OK;
}

static const zf_cmd_t s_version_command = {
    .name = "version",
    .args = "",
    .summary = "print the versions of zflow, its protocol and its libraries",
    .exits = "0 printed",
    .run = s_version,
};

//  The references zflow help --markdown writes, in the order of its choices.
typedef enum { S_CONFIG_REFERENCE, S_COMMANDS_REFERENCE } s_reference_t;

typedef struct {
    int markdown; // the s_reference_t asked for as Markdown, or -1
} s_help_options_t;

static const zf_key_t s_help_options[] = {
    { .name = "markdown",
      .choices = "config|commands",
      .help = "print a whole reference as Markdown (docs/config.md, docs/commands.md)",
      ZF_FIELD (ZF_KEY_ENUM, s_help_options_t, markdown) },
    { NULL }
};

static int s_help (const void *options, int argc, char **args);

static const zf_cmd_t s_help_command = {
    .name = "help",
    .args = "[COMMAND|KIND|SECTION]",
    .max_args = 1,
    .summary = "list the commands; or a command's options, or the keys of a kind or section",
    .help = "A KIND is an actor kind (producer, fetcher, ...); a SECTION is pipeline,\n"
            "broker, cluster or queues.",
    .exits = "0 printed\n2 no command, kind or section of that name",
    .options = s_help_options,
    .options_size = sizeof (s_help_options_t),
    .run = s_help,
};

//  Every command, in the order zflow help lists them.
static const zf_cmd_t *const s_commands[] = {
    &s_validate_command, &s_graph_command, &zf_cmd_run,      &zf_cmd_broker,     &zf_cmd_actor,
    &zf_cmd_deploy,      &zf_cmd_put,      &zf_cmd_status,   &zf_cmd_journal,    &zf_cmd_result,
    &zf_cmd_cancel,      &zf_cmd_dead,     &zf_cmd_requeue,  &zf_cmd_purge,      &zf_cmd_pause,
    &zf_cmd_resume,      &zf_cmd_reload,   &zf_cmd_schedule, &zf_cmd_tap,        &zf_cmd_top,
    &zf_cmd_keygen,      &zf_cmd_cron,     &s_help_command,  &s_version_command, NULL,
};

//  The command named name, or NULL.
static const zf_cmd_t *
s_command (const char *name)
{
    for (const zf_cmd_t *const *c = s_commands; *c; c++)
        if (streq ((*c)->name, name))
            return *c;
    return NULL;
}

static void
s_usage (FILE *out)
{
    fprintf (out, "zflow %s: data pipelines of actor processes over ZeroMQ\n\n", ZFLOW_VERSION);
    fprintf (out, "usage: zflow COMMAND [WORDS] [options]\n\ncommands:\n");
    for (const zf_cmd_t *const *c = s_commands; *c; c++)
        fprintf (out, "  %-10s %s\n", (*c)->name, (*c)->summary);
    fprintf (out, "\nzflow COMMAND --help (or zflow help COMMAND) shows its words and options.\n");
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
            "Generated from the key tables in the source by `zflow help --markdown\n"
            "config` (`./scripts/docs` rewrites this file; the tests check it is current).\n\n"
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

//  The reference of every command as Markdown, for docs/commands.md.
static int
s_help_commands_markdown (void)
{
    printf ("# zflow commands\n\n"
            "Generated from the option tables in the source by `zflow help --markdown\n"
            "commands` (`./scripts/docs` rewrites this file; the tests check it is current).\n\n"
            "Every command takes `--name VALUE` or `--name=VALUE`; a flag is `--name`\n"
            "alone; `--` ends the options; `--help` prints the command's help. Durations\n"
            "are written `250ms`, `30s`, `5m`, `1h`. An ENDPOINT is the broker's\n"
            "(`tcp://127.0.0.1:5555`; several, comma-separated, for a replicated group).\n\n");
    for (const zf_cmd_t *const *c = s_commands; *c; c++)
        zf_cmd_print_markdown (*c, stdout);
    return ZF_EXIT_OK;
}

static int
s_help (const void *options, int argc, char **args)
{
    const s_help_options_t *o = (const s_help_options_t *) options;
    if (o->markdown >= 0 && argc)
        return zf_cmd_usage (&s_help_command, "--markdown names its reference alone");
    if (o->markdown == S_COMMANDS_REFERENCE)
        return s_help_commands_markdown ();
    if (o->markdown == S_CONFIG_REFERENCE)
        return s_help_markdown ();
    if (argc == 0) {
        s_usage (stdout);
        return ZF_EXIT_OK;
    }
    const char *topic = args[0];
    const zf_cmd_t *command = s_command (topic);
    if (command) {
        zf_cmd_print_help (command, stdout);
        return ZF_EXIT_OK;
    }
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
    fprintf (stderr, "zflow help: no command, kind or section '%s' (zflow help lists them)\n",
             topic);
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
    const zf_cmd_t *command = s_command (name);
    if (command)
        return zf_cmd_main (command, argc - 1, argv + 1);
    const char *names[sizeof s_commands / sizeof s_commands[0]];
    int n = 0;
    for (const zf_cmd_t *const *c = s_commands; *c; c++)
        names[n++] = (*c)->name;
    names[n] = NULL;
    const char *near = zf_nearest (name, names);
    if (near)
        fprintf (stderr, "zflow: unknown command '%s' (did you mean '%s'?)\n", name, near);
    else
        fprintf (stderr, "zflow: unknown command '%s' (zflow help lists them)\n", name);
    return ZF_EXIT_USAGE;
}
