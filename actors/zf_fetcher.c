/*  zf_fetcher: concurrent HTTP over pooled keep-alive connections. */
#include "zf_kinds.h"

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_INPUT,
    ZF_KEY_OUTPUT,
    ZF_KEY_WORKERS,
    { .name = "concurrency", .type = ZF_KEY_INT, .fallback = "64", .help = "requests in flight per worker", .min = 1, .max = 100000 },
    { .name = "max-connections", .type = ZF_KEY_INT, .fallback = "256", .help = "open connections per worker, all hosts", .min = 1, .max = 100000 },
    { .name = "max-per-host", .type = ZF_KEY_INT, .fallback = "16", .help = "open connections per worker to one host", .min = 1, .max = 100000 },
    { .name = "dns-cache", .type = ZF_KEY_DURATION, .fallback = "60s", .help = "how long a name lookup is reused" },
    { .name = "timeout", .type = ZF_KEY_DURATION, .fallback = "30s", .help = "time allowed for a whole request", .min = 1, .max = 86400000 },
    { .name = "connect-timeout", .type = ZF_KEY_DURATION, .fallback = "10s", .help = "time allowed to connect", .min = 1, .max = 86400000 },
    { .name = "read-timeout", .type = ZF_KEY_DURATION, .fallback = "30s", .help = "longest wait without a byte from the server", .min = 1, .max = 86400000 },
    { .name = "max-body", .type = ZF_KEY_SIZE, .fallback = "10MiB", .help = "larger bodies fail with kind too-large" },
    { .name = "follow-redirects", .type = ZF_KEY_INT, .fallback = "5", .help = "redirects followed; 0 to return them", .max = 100 },
    { .name = "user-agent", .type = ZF_KEY_STRING, .fallback = "zflow/" ZFLOW_VERSION, .help = "the User-Agent header" },
    { .name = "headers", .type = ZF_KEY_SECTION, .help = "headers sent with every request, `Name = value` lines" },
    { .name = "tls-verify", .type = ZF_KEY_BOOL, .fallback = "true", .help = "check servers' certificates" },
    { .name = "retry-on", .type = ZF_KEY_SET, .fallback = "connect,timeout,429,5xx", .help = "failures that are retried", .choices = "dns|connect|timeout|tls|429|5xx" },
    { .name = "max-retries", .type = ZF_KEY_INT, .fallback = "3", .help = "retries of one request before it fails", .max = 100 },
    { .name = "retry-base", .type = ZF_KEY_DURATION, .fallback = "200ms", .help = "first retry backoff (doubles, full jitter)" },
    { .name = "retry-max", .type = ZF_KEY_DURATION, .fallback = "30s", .help = "longest retry backoff" },
    { .name = "on-error", .type = ZF_KEY_ENUM, .fallback = "emit", .help = "a failed request becomes an error item, a NACK, or nothing", .choices = "emit|retry|drop" },
    { .name = "rate-per-host", .type = ZF_KEY_NUMBER, .fallback = "0", .help = "requests per second to one host; 0 for no limit" },
    { NULL },
};

const zf_kind_t zf_fetcher_kind = {
    .name = "fetcher",
    .summary = "fetches URLs over HTTP(S), many at once, on pooled keep-alive connections",
    .keys = s_keys,
    .flags = ZF_KIND_INPUT | ZF_KIND_OUTPUT,
};
