/*  zf_producer: streams items from a source into a queue.
    Sources: file:PATH (lines, jsonl or msgpack), stdin, seq:N, or an inline
    list; it reads only as far as its credit allows.
*/
#include "zf_kinds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_check_source (const char *value, zf_error_t *err)
{
    if (strcmp (value, "stdin") == 0 || strcmp (value, "list") == 0)
        return 0;
    if (strncmp (value, "file:", 5) == 0 && value[5])
        return 0;
    if (strncmp (value, "seq:", 4) == 0) {
        char *end;
        long long n = strtoll (value + 4, &end, 10);
        if (value[4] && !*end && n >= 0)
            return 0;
    }
    return zf_error_set (err, ZF_EVALUE,
                         "'%s' is not a source (expected file:PATH, stdin, seq:N or list)", value);
}

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_OUTPUT,
    { .name = "source",
      .type = ZF_KEY_STRING,
      .fallback = "list",
      .help = "file:PATH, stdin, seq:N, or list (the items section)",
      .flags = ZF_KEY_PATH,
      .check = s_check_source },
    { .name = "items",
      .type = ZF_KEY_SECTION,
      .help = "inline items, one `item = VALUE` line each" },
    { .name = "format",
      .type = ZF_KEY_ENUM,
      .fallback = "lines",
      .help = "how a file is read: one string per line, JSON lines, or msgpack",
      .choices = "lines|jsonl|msgpack" },
    { .name = "rate",
      .type = ZF_KEY_NUMBER,
      .fallback = "0",
      .help = "items per second at most; 0 for as fast as credit allows" },
    { .name = "group-size",
      .type = ZF_KEY_INT,
      .fallback = "0",
      .help = "mark every N consecutive items as one gather group",
      .max = 1000000 },
    { .name = "on-bad-line",
      .type = ZF_KEY_ENUM,
      .fallback = "stop",
      .help = "what an unreadable line does",
      .choices = "skip|dead|stop" },
    { NULL },
};

const zf_kind_t zf_producer_kind = {
    .name = "producer",
    .summary = "streams items from a file, stdin, a sequence or a list into a queue",
    .keys = s_keys,
    .flags = ZF_KIND_OUTPUT | ZF_KIND_SOURCE,
};
