/*  zf_exec: a custom actor, any program that links libzflow. */
#include "zf_kinds.h"

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_CURVE,
    ZF_KEY_WORKERS,
    { .name = "command",
      .type = ZF_KEY_STRING,
      .help = "the program to run",
      .flags = ZF_KEY_REQUIRED | ZF_KEY_PATH },
    { .name = "input", .type = ZF_KEY_QUEUE, .help = "the queue it reads, if any" },
    { .name = "output", .type = ZF_KEY_QUEUE, .help = "the queue it writes, if any" },
    { .name = "concurrency",
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
};
