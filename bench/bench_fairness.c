/*  bench_fairness: how long small tenants wait behind a big one, with and
    without fair = true on their queue, beside the same small tenants on an
    empty queue, all measured in this run.

    bench_fairness [BIG] [TENANTS] [EACH] [SERVICE_US]
        defaults: 200,000 tasks of one tenant, then 500 tenants of 20
        tasks each; workers spend 50 us on a task (two of them: some
        40,000 tasks/s, so that a backlog is a backlog)

    The broker runs in this process; two worker processes take the tasks
    (credit 16 each), spend SERVICE_US on each, and note how long each
    small tenant's task waited from its put to its delivery (the put time
    travels in the body; both ends read the same monotonic clock). Three
    runs: the small tenants alone (an empty queue: the floor), then after
    the big tenant's backlog with fair = false (first come, first served:
    what Celery, RQ and Dramatiq do) and with fair = true. Each prints the
    small tenants' wait at p50 and p99, and p99 as a ratio to the empty
    queue's; the target with fair = true is 2x at most.
*/
#include "zf_broker.h"
#include "zf_testkit.h"
#include "zflow.h"

#include <signal.h>

#define BODY_SIZE 11 // bin 8 header (2), put time (8), small tenant (1)

static int
s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  A worker: spends service_us on each task; at the end prints the wait
//  (us) of each small tenant's task, one a line.
static int
s_worker (const char *endpoint, long service_us)
{
    zf_client_t *client = zf_client_new (endpoint, "work", "jobs", 16);
    size_t count = 0, cap = 1024;
    int64_t *waits = (int64_t *) malloc (cap * sizeof (int64_t));
    while (!zsys_interrupted) {
        zf_item_t *item = zf_client_next (client, 200);
        if (!item)
            continue;
        int64_t now = zclock_usecs ();
        size_t size;
        const uint8_t *body = (const uint8_t *) zf_item_body (item, &size);
        if (size == BODY_SIZE && body[10]) {
            int64_t put;
            memcpy (&put, body + 2, sizeof put);
            if (count == cap)
                waits = (int64_t *) realloc (waits, (cap *= 2) * sizeof (int64_t));
            waits[count++] = now - put;
        }
        while (zclock_usecs () - now < service_us)
            ; // the task's work
        zf_client_ack (client, &item);
    }
    zf_client_destroy (&client);
    for (size_t i = 0; i < count; i++)
        printf ("%lld\n", (long long) waits[i]);
    free (waits);
    return 0;
}

static void
s_put (zf_client_t *producer, const char *tenant, bool small)
{
    uint8_t body[BODY_SIZE] = { 0xc4, BODY_SIZE - 2 };
    int64_t now = zclock_usecs ();
    memcpy (body + 2, &now, sizeof now);
    body[10] = small;
    // The headers map {"tenant": TENANT}.
    uint8_t headers[64];
    size_t len = strlen (tenant);
    headers[0] = 0x81;
    headers[1] = 0xa6;
    memcpy (headers + 2, "tenant", 6);
    headers[8] = (uint8_t) (0xa0 | len);
    memcpy (headers + 9, tenant, len);
    zf_put_opts_t opts = { .headers = headers, .headers_size = 9 + len };
    zf_client_put_with (producer, "jobs", body, sizeof body, &opts, NULL);
}

//  One run: the big tenant's tasks (none for the empty queue), then the
//  small tenants'; the small tenants' waits, sorted, in waits (their
//  count returned).
static size_t
s_run (const char *self_path, const char *fair, long big, long tenants, long each, long service,
       int64_t *waits)
{
    char text[1024];
    snprintf (text, sizeof text,
              "queues\n"
              "    jobs\n"
              "        max-depth = %ld\n"
              "        external = true\n"
              "        key = header:tenant\n"
              "        fair = %s\n"
              "broker\n"
              "    window = 20000\n"
              "actors\n"
              "    work\n"
              "        kind = sink\n"
              "        input = jobs\n"
              "        target = null\n",
              big + tenants * each + 1, fair);
    zf_pipeline_t *pipeline = zf_test_pipeline (text);
    zf_error_t err;
    zf_broker_t *broker =
        zf_broker_new (pipeline, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL, &err);
    const char *endpoint = zf_broker_endpoint (broker);
    char service_text[32];
    snprintf (service_text, sizeof service_text, "%ld", service);
    pid_t workers[2];
    int outs[2];
    for (int w = 0; w < 2; w++) {
        char *argv[] = { (char *) self_path, "worker", (char *) endpoint, service_text, NULL };
        workers[w] = zf_test_spawn (argv, &outs[w]);
    }
    zf_client_t *producer = zf_client_new (endpoint, "bench", NULL, 0);
    zf_client_t *observer = zf_client_new (endpoint, "observer", NULL, 0);
    size_t count;
    for (int tries = 0; tries < 100; tries++) {
        zf_figures_t *f = zf_client_queues (observer, &count, 5000);
        uint32_t consumers = f && count ? f[0].consumers : 0;
        free (f);
        if (consumers == 2)
            break;
        zclock_sleep (50); // bounded poll: 100 tries
    }
    for (long i = 0; i < big; i++)
        s_put (producer, "big", false);
    zf_client_flush (producer, -1);
    char tenant[32];
    for (long i = 0; i < each; i++)
        for (long t = 0; t < tenants; t++) {
            snprintf (tenant, sizeof tenant, "t%ld", t);
            s_put (producer, tenant, true);
        }
    zf_client_flush (producer, -1);
    uint64_t total = (uint64_t) (big + tenants * each), acked = 0;
    while (acked < total && !zsys_interrupted) {
        zf_figures_t *f = zf_client_queues (observer, &count, 5000);
        acked = f && count ? f[0].ack : 0;
        free (f);
        if (acked < total)
            zclock_sleep (20); // bounded poll of the broker's figures
    }
    size_t n = 0;
    for (int w = 0; w < 2; w++) {
        kill (workers[w], SIGTERM);
        FILE *out = fdopen (outs[w], "r");
        long long wait;
        while (out && fscanf (out, "%lld", &wait) == 1)
            if (n < (size_t) (tenants * each))
                waits[n++] = wait;
        if (out)
            fclose (out);
        zf_test_reap (workers[w], 5000);
    }
    zf_client_destroy (&producer);
    zf_client_destroy (&observer);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    qsort (waits, n, sizeof *waits, s_compare);
    return n;
}

static double
s_ms_at (const int64_t *waits, size_t n, double quantile)
{
    return n ? waits[(size_t) (quantile * (double) (n - 1))] / 1000.0 : 0;
}

int
main (int argc, char **argv)
{
    if (argc == 4 && streq (argv[1], "worker"))
        return s_worker (argv[2], atol (argv[3]));
    long big = argc > 1 ? atol (argv[1]) : 200000;
    long tenants = argc > 2 ? atol (argv[2]) : 500;
    long each = argc > 3 ? atol (argv[3]) : 20;
    long service = argc > 4 ? atol (argv[4]) : 50;
    int64_t *waits = (int64_t *) malloc ((size_t) (tenants * each + 1) * sizeof (int64_t));
    printf ("%ld tasks of one tenant, then %ld tenants of %ld; 2 workers, %ld us a task\n", big,
            tenants, each, service);
    size_t n = s_run (argv[0], "false", 0, tenants, each, service, waits);
    double empty_p99 = s_ms_at (waits, n, 0.99);
    printf ("small tenants on an empty queue:            p50 %8.1f ms  p99 %8.1f ms  (%zu tasks)\n",
            s_ms_at (waits, n, 0.5), empty_p99, n);
    static const char *modes[] = { "false", "true" };
    for (int m = 0; m < 2; m++) {
        n = s_run (argv[0], modes[m], big, tenants, each, service, waits);
        double p99 = s_ms_at (waits, n, 0.99);
        printf (
            "after the big tenant's backlog, fair = %-5s p50 %8.1f ms  p99 %8.1f ms  (p99 %.2fx "
            "the empty queue's%s)\n",
            modes[m], s_ms_at (waits, n, 0.5), p99, empty_p99 > 0 ? p99 / empty_p99 : 0,
            m ? "; target 2x at most" : ": first come, first served");
    }
    free (waits);
    return 0;
}
