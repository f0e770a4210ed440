/*  zf_sink: writes results to a file, stdout or nowhere, acking each item
    only once it is written.
*/
#include "zf_kinds.h"

#include <string.h>

static int
s_check_target (const char *value, zf_error_t *err)
{
    if (strcmp (value, "stdout") == 0 || strcmp (value, "null") == 0)
        return 0;
    if (strncmp (value, "file:", 5) == 0 && value[5])
        return 0;
    return zf_error_set (err, ZF_EVALUE,
                         "'%s' is not a target (expected file:PATH, stdout or null)", value);
}

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_INPUT,
    ZF_KEY_WORKERS,
    { .name = "concurrency",
      .type = ZF_KEY_INT,
      .fallback = "256",
      .help = "items each worker holds at once (written and synced together)",
      .min = 1,
      .max = 1000000 },
    { .name = "target",
      .type = ZF_KEY_STRING,
      .help = "file:PATH, stdout or null",
      .flags = ZF_KEY_REQUIRED | ZF_KEY_PATH,
      .check = s_check_target },
    { .name = "format",
      .type = ZF_KEY_ENUM,
      .fallback = "body",
      .help = "each line: the body as JSON, the whole envelope, or msgpack",
      .choices = "body|envelope|msgpack" },
    { .name = "sync",
      .type = ZF_KEY_ENUM,
      .fallback = "interval",
      .help = "when the file is fsynced (acks wait for it)",
      .choices = "always|interval|never" },
    { .name = "sync-interval",
      .type = ZF_KEY_DURATION,
      .fallback = "100ms",
      .help = "fsync period with sync = interval",
      .min = 1,
      .max = 60000 },
    { NULL },
};

const zf_kind_t zf_sink_kind = {
    .name = "sink",
    .summary = "writes each item to a file (JSON lines), stdout, or nowhere",
    .keys = s_keys,
    .flags = ZF_KIND_INPUT,
};
