/*  zf_exec: a custom actor, any program that links libzflow. */
#include "zf_kinds.h"

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_CURVE,
    ZF_KEY_WORKERS,
    { .name = "command",
      ZF_FIELD (zf_exec_settings_t, command),
      .type = ZF_KEY_STRING,
      .help = "the program to run",
      .flags = ZF_KEY_REQUIRED | ZF_KEY_PATH },
    { .name = "input",
      ZF_FIELD (zf_exec_settings_t, actor.input),
      .type = ZF_KEY_QUEUE,
      .help = "the queue it reads, if any" },
    { .name = "output",
      ZF_FIELD (zf_exec_settings_t, actor.output),
      .type = ZF_KEY_QUEUE,
      .help = "the queue it writes, if any" },
    { .name = "concurrency",
      ZF_FIELD (zf_exec_settings_t, concurrency),
      .type = ZF_KEY_INT,
      .fallback = "1",
      .help = "items each worker holds at once",
      .min = 1,
      .max = 100000 },
    { NULL },
};

const zf_kind_t zf_exec_kind = {
    .name = "exec",
    .summary = "a custom actor: any program built on libzflow",
    .keys = s_keys,
    .settings_size = sizeof (zf_exec_settings_t),
};
