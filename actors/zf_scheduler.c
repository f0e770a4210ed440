/*  zf_scheduler: interval, cron and one-shot triggers that put an item into
    a queue at each firing. One job per scheduler, given by its keys, or
    several, each in a sub-section of its own.
*/
#include "zf_kinds.h"

#define JOB_KEYS                                                                                   \
    { .name = "every",                                                                             \
      .type = ZF_KEY_DURATION,                                                                     \
      .help = "fire at this interval (monotonic clock)",                                           \
      .min = 1,                                                                                    \
      .max = 366LL * 86400000 },                                                                   \
        { .name = "cron",                                                                          \
          .type = ZF_KEY_STRING,                                                                   \
          .help = "fire at the times of a cron expression",                                        \
          .check = zf_check_cron },                                                                \
        { .name = "at",                                                                            \
          .type = ZF_KEY_STRING,                                                                   \
          .help = "fire once at an ISO 8601 time",                                                 \
          .check = zf_check_iso8601 },                                                             \
        { .name = "timezone",                                                                      \
          .type = ZF_KEY_STRING,                                                                   \
          .fallback = "UTC",                                                                       \
          .help = "IANA zone for cron and for times without offset",                               \
          .check = zf_check_zone },                                                                \
        { .name = "start",                                                                         \
          .type = ZF_KEY_STRING,                                                                   \
          .help = "no firing before this ISO 8601 time",                                           \
          .check = zf_check_iso8601 },                                                             \
        { .name = "end",                                                                           \
          .type = ZF_KEY_STRING,                                                                   \
          .help = "no firing after this ISO 8601 time",                                            \
          .check = zf_check_iso8601 },                                                             \
        { .name = "jitter",                                                                        \
          .type = ZF_KEY_DURATION,                                                                 \
          .fallback = "0",                                                                         \
          .help = "fire up to this much later, at random" },                                       \
        { .name = "misfire-grace",                                                                 \
          .type = ZF_KEY_DURATION,                                                                 \
          .fallback = "1s",                                                                        \
          .help = "a firing later than this is skipped" },                                         \
        { .name = "coalesce",                                                                      \
          .type = ZF_KEY_BOOL,                                                                     \
          .fallback = "true",                                                                      \
          .help = "after a stall, fire once instead of catching up" },                             \
        { .name = "max-instances",                                                                 \
          .type = ZF_KEY_INT,                                                                      \
          .fallback = "1",                                                                         \
          .help = "firings of this job in progress downstream at once",                            \
          .min = 1,                                                                                \
          .max = 100000 },                                                                         \
    {                                                                                              \
        .name = "payload", .type = ZF_KEY_STRING,                                                  \
        .help = "the item put at each firing (JSON or text)"                                       \
    }

static const zf_key_t s_job_keys[] = {
    JOB_KEYS,
    { .name = "output",
      .type = ZF_KEY_QUEUE,
      .help = "the queue this job writes, if not the scheduler's" },
    { NULL },
};

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_OUTPUT,
    JOB_KEYS,
    { NULL },
};

const zf_kind_t zf_scheduler_kind = {
    .name = "scheduler",
    .summary = "puts an item into a queue at intervals, cron times or a given time",
    .keys = s_keys,
    .job = "job",
    .job_keys = s_job_keys,
    .flags = ZF_KIND_OUTPUT | ZF_KIND_SOURCE | ZF_KIND_TIMED,
    .one_of = "every|cron|at",
};
