/*  zf_fetcher: concurrent HTTP over pooled keep-alive connections (the
    aiohttp ClientSession + TCPConnector + asyncio.gather pattern), on
    libcurl's multi interface: one worker keeps `concurrency` requests in
    flight, over at most `max-connections` connections (`max-per-host` to
    one host), reused from one request to the next.

    An item is a URL string, or a map {url, method, headers, body, timeout}
    (timeout in ms, or a duration such as "5s"). Its output is

        {url, status, headers, body, elapsed_ms, attempt}

    with the final response's headers (names in lower case), and the body
    as a string when it is text (text/..., JSON, XML, JavaScript, valid
    UTF-8), bytes otherwise; compressed bodies arrive decoded. A status is
    a result, 404 included. A request that fails is

        {url, error, kind, attempt}        (and status, for kind "status")

    kind being one of dns, connect, network (the connection broke), timeout
    (`timeout` for the whole request, `connect-timeout`, or `read-timeout`
    without a byte), tls, too-large (`max-body`), redirects, status (429 or
    5xx that stayed so) and input (an item that is no request).

    Failures named in `retry-on` are tried again in the worker, up to
    `max-retries` times, after a backoff with full jitter (`retry-base`
    doubling up to `retry-max`), and no sooner than a Retry-After says.
    The final failure becomes an error item (on-error = emit), a NACK that
    the broker retries and in the end dead-letters (retry), or nothing
    (drop). `rate-per-host` spaces the requests to each host.

    Stopping, it takes no new item, lets the requests in flight finish for
    up to STOP_GRACE, and hands the rest back to the broker.

    The work itself runs on libcurl, in module "fetch" (zf_fetch.c), which
    a process loads when it starts a fetcher: other actors never map
    libcurl and the libraries it brings (zf_module.h).
*/
#include "zf_actor.h"
#include "zf_kinds.h"
#include "zf_module.h"
#include "zflow.h"

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_CURVE,
    ZF_KEY_INPUT,
    ZF_KEY_FLOW,
    ZF_KEY_OUTPUT,
    ZF_KEY_WORKERS,
    { .name = "concurrency",
      ZF_FIELD (ZF_KEY_INT, zf_fetcher_settings_t, concurrency),
      .fallback = "64",
      .help = "requests in flight per worker",
      .min = 1,
      .max = 100000 },
    { .name = "max-connections",
      ZF_FIELD (ZF_KEY_INT, zf_fetcher_settings_t, max_connections),
      .fallback = "256",
      .help = "open connections per worker, all hosts",
      .min = 1,
      .max = 100000 },
    { .name = "max-per-host",
      ZF_FIELD (ZF_KEY_INT, zf_fetcher_settings_t, max_per_host),
      .fallback = "16",
      .help = "open connections per worker to one host",
      .min = 1,
      .max = 100000 },
    { .name = "dns-cache",
      ZF_FIELD (ZF_KEY_DURATION, zf_fetcher_settings_t, dns_cache),
      .fallback = "60s",
      .help = "how long a name lookup is reused" },
    { .name = "timeout",
      ZF_FIELD (ZF_KEY_DURATION, zf_fetcher_settings_t, timeout),
      .fallback = "30s",
      .help = "time allowed for a whole request",
      .min = 1,
      .max = 86400000 },
    { .name = "connect-timeout",
      ZF_FIELD (ZF_KEY_DURATION, zf_fetcher_settings_t, connect_timeout),
      .fallback = "10s",
      .help = "time allowed to connect",
      .min = 1,
      .max = 86400000 },
    { .name = "read-timeout",
      ZF_FIELD (ZF_KEY_DURATION, zf_fetcher_settings_t, read_timeout),
      .fallback = "30s",
      .help = "longest wait without a byte from the server",
      .min = 1,
      .max = 86400000 },
    { .name = "max-body",
      ZF_FIELD (ZF_KEY_SIZE, zf_fetcher_settings_t, max_body),
      .fallback = "10MiB",
      .help = "larger bodies fail with kind too-large" },
    { .name = "follow-redirects",
      ZF_FIELD (ZF_KEY_INT, zf_fetcher_settings_t, follow_redirects),
      .fallback = "5",
      .help = "redirects followed; 0 to return them",
      .max = 100 },
    { .name = "user-agent",
      ZF_FIELD (ZF_KEY_STRING, zf_fetcher_settings_t, user_agent),
      .fallback = "zflow/" ZFLOW_VERSION,
      .help = "the User-Agent header" },
    { .name = "headers",
      ZF_FIELD (ZF_KEY_SECTION, zf_fetcher_settings_t, headers),
      .help = "headers sent with every request, `Name = value` lines" },
    { .name = "tls-verify",
      ZF_FIELD (ZF_KEY_BOOL, zf_fetcher_settings_t, tls_verify),
      .fallback = "true",
      .help = "check servers' certificates" },
    { .name = "retry-on",
      ZF_FIELD (ZF_KEY_SET, zf_fetcher_settings_t, retry_on),
      .fallback = "connect,network,timeout,429,5xx",
      .help = "failures that are retried",
      .choices = "dns|connect|network|timeout|tls|429|5xx" },
    { .name = "max-retries",
      ZF_FIELD (ZF_KEY_INT, zf_fetcher_settings_t, max_retries),
      .fallback = "3",
      .help = "retries of one request before it fails",
      .max = 100 },
    { .name = "retry-base",
      ZF_FIELD (ZF_KEY_DURATION, zf_fetcher_settings_t, retry_base),
      .fallback = "200ms",
      .help = "first retry backoff (doubles, full jitter)" },
    { .name = "retry-max",
      ZF_FIELD (ZF_KEY_DURATION, zf_fetcher_settings_t, retry_max),
      .fallback = "30s",
      .help = "longest retry backoff" },
    { .name = "on-error",
      ZF_FIELD (ZF_KEY_ENUM, zf_fetcher_settings_t, on_error),
      .fallback = "emit",
      .help = "a failed request becomes an error item, a NACK, or nothing",
      .choices = "emit|retry|drop" },
    { .name = "rate-per-host",
      ZF_FIELD (ZF_KEY_NUMBER, zf_fetcher_settings_t, rate_per_host),
      .fallback = "0",
      .help = "requests per second to one host; 0 for no limit" },
    { .name = "linger",
      ZF_FIELD (ZF_KEY_DURATION, zf_fetcher_settings_t, linger),
      .fallback = "5ms",
      .help = "while requests run, results and acks wait this long at most to go to the broker "
              "together",
      .max = 1000 },
    { NULL },
};

//  The module's actor and its process-wide setup, looked up once.
static void (*s_actor) (zsock_t *pipe, void *args);
static void (*s_global) (void);
static zf_error_t s_load_error;

//  Loads the module, in the main thread before the actor's starts (kind
//  init); a module that cannot be loaded is said by the actor.
static void
s_init (void)
{
    if (!s_actor) {
        *(void **) &s_global = zf_module_symbol ("fetch", "zf_fetch_init", &s_load_error);
        if (s_global)
            *(void **) &s_actor = zf_module_symbol ("fetch", "zf_fetch_actor", &s_load_error);
    }
    if (s_actor)
        s_global ();
}

static void
s_run (zsock_t *pipe, void *args)
{
    if (!s_actor) {
        zsock_signal (pipe, 0);
        zsys_error ("%s: cannot fetch: %s", ((zf_actor_args_t *) args)->conf->name,
                    s_load_error.text);
        zf_actor_exit (pipe, ZF_EXIT_FAILED);
        return;
    }
    s_actor (pipe, args);
}

const zf_kind_t zf_fetcher_kind = {
    .name = "fetcher",
    .summary = "fetches URLs over HTTP(S), many at once, on pooled keep-alive connections",
    .keys = s_keys,
    .settings_size = sizeof (zf_fetcher_settings_t),
    .flags = ZF_KIND_INPUT | ZF_KIND_OUTPUT,
    .run = s_run,
    .init = s_init,
};
