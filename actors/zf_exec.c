/*  zf_exec: a custom actor, any program that links libzflow.

    zflow run (and zflow deploy's units and manifests) start the program
    with its settings in the environment. The keys below are exported only
    when the pipeline gives them: a program keeps its own default
    otherwise (pipelines/custom/upper.c's concurrency, a Python worker's
    @zflow.actor(concurrency=8)).
*/
#include "zf_kinds.h"
#include "zf_value.h"

//  A time limit of 0 would be no limit, which leaving the key out says.
static int
s_check_limit (const char *value, zf_error_t *err)
{
    int64_t ms = 0;
    zf_parse_duration (value, &ms, NULL);
    if (ms == 0)
        return zf_error_set (err, ZF_EVALUE, "0 is not a time limit (leave the key out for none)");
    return 0;
}

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_CURVE,
    ZF_KEY_WORKERS,
    { .name = "command",
      ZF_FIELD (ZF_KEY_STRING, zf_exec_settings_t, command),
      .help = "the program to run, by /bin/sh -c; a simple command is exec'd, so that its exit "
              "status and pid are the program's own",
      .flags = ZF_KEY_REQUIRED | ZF_KEY_PATH },
    { .name = "input",
      ZF_FIELD (ZF_KEY_QUEUE, zf_exec_settings_t, actor.input),
      .help = "the queue it reads, if any" },
    ZF_KEY_FLOW,
    { .name = "output",
      ZF_FIELD (ZF_KEY_QUEUE, zf_exec_settings_t, actor.output),
      .help = "the queue it writes, if any" },
    { .name = "concurrency",
      ZF_FIELD (ZF_KEY_INT, zf_exec_settings_t, concurrency),
      .help = "items each worker holds at once (ZFLOW_CONCURRENCY); default: the program's own",
      .min = 1,
      .max = 100000 },
    { .name = "threads",
      ZF_FIELD (ZF_KEY_INT, zf_exec_settings_t, threads),
      .help = "threads each worker runs plain (not async) functions on (ZFLOW_THREADS); "
              "default: the program's own",
      .min = 1,
      .max = 1024 },
    { .name = "timeout",
      ZF_FIELD (ZF_KEY_DURATION, zf_exec_settings_t, timeout),
      .help = "the soft time limit of one item, which the program keeps (ZFLOW_TIMEOUT, in ms): "
              "past it the item fails; less than the input queue's timeout; default: none",
      .flags = ZF_KEY_BELOW_QUEUE_TIMEOUT,
      .check = s_check_limit },
    { .name = "hard-timeout",
      ZF_FIELD (ZF_KEY_DURATION, zf_exec_settings_t, hard_timeout),
      .help = "the hard time limit of one item (ZFLOW_HARD_TIMEOUT, in ms): past it the worker "
              "process ends, its items go to other workers and it is started again; more than "
              "timeout, less than the input queue's timeout; default: none",
      .flags = ZF_KEY_BELOW_QUEUE_TIMEOUT,
      .above = "timeout",
      .check = s_check_limit },
    { NULL },
};

const zf_kind_t zf_exec_kind = {
    .name = "exec",
    .summary = "a custom actor: any program built on libzflow",
    .keys = s_keys,
    .settings_size = sizeof (zf_exec_settings_t),
};

void
zf_exec_environment (const zf_exec_settings_t *settings, zf_exec_env_t env[ZF_EXEC_ENV_MAX])
{
    const char *names[ZF_EXEC_ENV_MAX] = { "ZFLOW_CONCURRENCY", "ZFLOW_THREADS", "ZFLOW_TIMEOUT",
                                           "ZFLOW_HARD_TIMEOUT" };
    int64_t values[ZF_EXEC_ENV_MAX] = { settings->concurrency, settings->threads, settings->timeout,
                                        settings->hard_timeout };
    for (int i = 0; i < ZF_EXEC_ENV_MAX; i++) {
        env[i].name = names[i];
        env[i].value[0] = 0;
        if (values[i]) // each is at least 1 when given (the key table's checks)
            snprintf (env[i].value, sizeof env[i].value, "%lld", (long long) values[i]);
    }
}
