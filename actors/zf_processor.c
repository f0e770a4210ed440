/*  zf_processor: user logic per item, as a coprocess speaking JSON lines
    (command) or a shared library (plugin).
*/
#include "zf_kinds.h"

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_INPUT,
    ZF_KEY_OUTPUT,
    ZF_KEY_WORKERS,
    { .name = "concurrency",
      .type = ZF_KEY_INT,
      .fallback = "1",
      .help = "items each worker holds at once",
      .min = 1,
      .max = 100000 },
    { .name = "command",
      .type = ZF_KEY_STRING,
      .help = "a program fed one JSON line per item (give this or plugin)",
      .flags = ZF_KEY_PATH },
    { .name = "plugin",
      .type = ZF_KEY_STRING,
      .help = "a shared library exporting zflow_process (or command)",
      .flags = ZF_KEY_PATH },
    { .name = "timeout",
      .type = ZF_KEY_DURATION,
      .fallback = "30s",
      .help = "time allowed per item",
      .min = 1,
      .max = 86400000 },
    { .name = "on-error",
      .type = ZF_KEY_ENUM,
      .fallback = "retry",
      .help = "a failed item is retried, or passed on as {error, item}",
      .choices = "retry|emit" },
    { NULL },
};

const zf_kind_t zf_processor_kind = {
    .name = "processor",
    .summary = "runs user logic on each item: a program speaking JSON lines, or a plugin",
    .keys = s_keys,
    .flags = ZF_KIND_INPUT | ZF_KIND_OUTPUT,
    .one_of = "command|plugin",
};
