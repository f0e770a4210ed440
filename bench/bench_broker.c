/*  bench_broker: acked items per second through the broker, beside raw
    libzmq PUSH/PULL (no acks) measured in the same run.

    bench_broker [N]              N items of 100 bytes (default 1,000,000)
    bench_broker N tap            the same with taps of the queue's data
    bench_broker N durable DIR    with a journal in DIR: sync = batch,
                                  always and never, beside none; then the
                                  time to restart a broker holding N items
    bench_broker N cluster DIR    confirmed items/s of a group of three
                                  brokers (Raft, their logs in DIR), beside
                                  one broker with its journal in DIR, in
                                  rounds taking each in turn
    bench_broker N flow           the cost of flow control: a rate that
                                  never binds, items keyed by a header
                                  (100 tenants), and fair turns between
                                  them, each beside the same items
                                  without, in 5 rounds

    zflow: one producer puts N items into one queue; one consumer group of
    two worker processes takes and acks them; the broker runs in this
    process; all over tcp loopback. The clock runs from the first put until
    the broker reports N acked. Raw: one PUSH socket to two PULL worker
    processes, same bodies, until both have received all N (no acks, no
    redelivery, nothing kept: the ceiling of the transport).
*/
#include "zf_broker.h"
#include "zf_journal.h"
#include "zf_testkit.h"
#include "zflow.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>

#define BODY_SIZE 100

//  Rounds of bench_broker N cluster: each runs one broker (batch, always)
//  and the group once.
#define CLUSTER_ROUNDS 2

static int
s_worker (const char *endpoint)
{
    zf_client_t *client = zf_client_new (endpoint, "work", "jobs", 500);
    while (!zsys_interrupted) {
        zf_item_t *item = zf_client_next (client, 200);
        if (item)
            zf_client_ack (client, &item);
    }
    zf_client_destroy (&client);
    return 0;
}

static int
s_raw_worker (const char *endpoint, long count)
{
    // Each worker binds; the sender has one PUSH socket to each and takes
    // them in turn, so each worker gets exactly its half.
    zsock_t *pull = zsock_new (ZMQ_PULL);
    zsock_set_rcvhwm (pull, 100000);
    zsock_bind (pull, "%s", endpoint);
    printf ("%s\n", zsock_endpoint (pull));
    fflush (stdout);
    for (long i = 0; i < count; i++) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, zsock_resolve (pull), 0) < 0)
            break;
        zmq_msg_close (&msg);
    }
    printf ("done\n");
    fflush (stdout);
    zsock_destroy (&pull);
    return 0;
}

//  How s_zflow's run is watched: no tap, a tap reading every item of the
//  queue, or a tap whose output nobody reads (it falls behind).
typedef enum { TAP_NONE, TAP_FAST, TAP_SLOW, TAP_SAMPLED } s_tap_t;

//  Flow control of bench_broker N flow: the queue's keys for it, and
//  whether items carry a tenant header.
static const char *s_flow_keys = "";
static bool s_keyed;

//  The pipeline: one queue read by a null sink; with a journal in dir
//  synced as sync says when dir is not NULL.
static zf_pipeline_t *
s_pipeline (long max_depth, const char *dir, const char *sync)
{
    char text[1024];
    snprintf (text, sizeof text,
              "queues\n"
              "    jobs\n"
              "        max-depth = %ld\n"
              "        external = true\n"
              "%s"
              "broker\n"
              "    window = 20000\n"
              "    dedup-window = 262144\n"
              "%s%s%s%s%s"
              "actors\n"
              "    work\n"
              "        kind = sink\n"
              "        input = jobs\n"
              "        target = null\n",
              max_depth, s_flow_keys, dir ? "    journal = " : "", dir ? dir : "",
              dir ? "\n    sync = " : "", dir ? sync : "", dir ? "\n" : "");
    return zf_test_pipeline (text);
}

//  CPU time (user and system) of this process so far, in µs: the broker's
//  thread and its ZeroMQ threads, and the producer's.
static double
s_cpu_us (void)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + usage.ru_utime.tv_usec +
           usage.ru_stime.tv_usec;
}

//  CPU µs an item that the last s_zflow run cost this process, and its
//  tap process (0 without one).
static double s_cpu_per_item;
static double s_tap_cpu_per_item;

//  CPU time (user and system) of process pid so far, in µs.
static double
s_proc_cpu_us (pid_t pid)
{
    char path[64], text[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    size_t size = file ? fread (text, 1, sizeof text - 1, file) : 0;
    if (file)
        fclose (file);
    text[size] = 0;
    char *end = strrchr (text, ')'); // the command may hold spaces
    unsigned long user = 0, system = 0;
    if (!end || sscanf (end + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &user,
                        &system) != 2)
        return 0;
    return (double) (user + system) * 1e6 / (double) sysconf (_SC_CLK_TCK);
}

//  Whether the tap's output shows a gap in data.jobs: its output is read
//  in blocks, and, while it is quiet, one more item is put (a gap shows
//  when an item gets through after it). At most 20 s.
static bool
s_tap_gap (int tap_out, zf_client_t *producer, const uint8_t *body)
{
    static const char gap[] = "{\"topic\":\"tap.gap\",\"of\":\"data.jobs\",\"missed\":";
    char text[65536 + sizeof gap];
    size_t kept = 0;
    int64_t deadline = zclock_mono () + 20000;
    while (zclock_mono () < deadline) {
        struct pollfd p = { tap_out, POLLIN, 0 };
        if (poll (&p, 1, 200) <= 0) {
            zf_client_put (producer, "jobs", body, BODY_SIZE, NULL);
            zf_client_flush (producer, 1000);
            continue;
        }
        ssize_t n = read (tap_out, text + kept, sizeof text - kept - 1);
        if (n <= 0)
            return false;
        text[kept + (size_t) n] = 0;
        char *found = strstr (text, gap);
        if (found) {
            printf ("   the slow tap reports: %.*s\n", (int) strcspn (found, "\n"), found);
            return true;
        }
        // The end is kept: a report may straddle two blocks.
        size_t len = kept + (size_t) n;
        kept = len < sizeof gap ? len : sizeof gap;
        memmove (text, text + len - kept, kept);
    }
    return false;
}

//  Items/s the last s_zflow run's producer had confirmed (its clock ends
//  when the last CONFIRM came, not the last ack).
static double s_confirmed_rate;

//  A group of three brokers in this process (its logs in dir/node1...):
//  their endpoints, comma-separated, in endpoints.
#define GROUP 3
static zf_broker_t *s_group[GROUP];
static char s_group_dirs[GROUP][512];

static void
s_group_start (zf_pipeline_t *pipeline, const char *dir, char *endpoints, size_t size)
{
    static char nodes[128];
    snprintf (nodes, sizeof nodes, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", zf_test_free_port (),
              zf_test_free_port (), zf_test_free_port ());
    *endpoints = 0;
    for (int i = 0; i < GROUP; i++) {
        snprintf (s_group_dirs[i], sizeof s_group_dirs[i], "%s/node%d", dir, i + 1);
        zf_broker_args_t args = { .pipeline = pipeline,
                                  .endpoint = "tcp://127.0.0.1:*",
                                  .events = "tcp://127.0.0.1:*",
                                  .journal = s_group_dirs[i],
                                  .cluster = nodes,
                                  .node = i + 1 };
        zf_error_t err;
        s_group[i] = zf_broker_start (&args, &err);
        if (!s_group[i]) {
            fprintf (stderr, "bench_broker: node %d: %s\n", i + 1, err.text);
            exit (1);
        }
        size_t len = strlen (endpoints);
        snprintf (endpoints + len, size - len, "%s%s", i ? "," : "",
                  zf_broker_endpoint (s_group[i]));
    }
}

static void
s_group_stop (void)
{
    for (int i = 0; i < GROUP; i++) {
        zf_broker_destroy (&s_group[i]);
        zf_test_dir_remove (s_group_dirs[i]);
    }
}

static double
s_zflow_at (const char *self_path, long n, s_tap_t tap_mode, const char *dir, const char *sync,
            bool group)
{
    zf_pipeline_t *pipeline = s_pipeline (100000, group ? NULL : dir, sync);
    zf_error_t err;
    zf_broker_t *broker = NULL;
    char endpoints[1024];
    if (group)
        s_group_start (pipeline, dir, endpoints, sizeof endpoints);
    else {
        broker = zf_broker_new (pipeline, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL, &err);
        snprintf (endpoints, sizeof endpoints, "%s", zf_broker_endpoint (broker));
    }
    const char *endpoint = endpoints;
    pid_t tap = 0;
    int tap_out = -1;
    if (tap_mode != TAP_NONE) {
        char command[512];
        snprintf (command, sizeof command, "exec '%s' tap %s stats data.jobs %s", ZFLOW_BIN,
                  broker ? zf_broker_events (broker) : "",
                  tap_mode == TAP_FAST      ? "> /dev/null"
                  : tap_mode == TAP_SAMPLED ? "--sample 100 > /dev/null"
                                            : "");
        char *argv[] = { "/bin/sh", "-c", command, NULL };
        tap = zf_test_spawn (argv, &tap_out);
        zclock_sleep (500); // for its subscription to reach the broker
    }
    pid_t workers[2];
    int outs[2];
    for (int w = 0; w < 2; w++) {
        char *argv[] = { (char *) self_path, "worker", (char *) endpoint, NULL };
        workers[w] = zf_test_spawn (argv, &outs[w]);
    }
    zf_client_t *producer = zf_client_new (endpoint, "bench", NULL, 0);
    zf_client_t *observer = zf_client_new (endpoint, "observer", NULL, 0);
    uint8_t body[BODY_SIZE];
    body[0] = 0xc4; // msgpack bin 8
    body[1] = BODY_SIZE - 2;
    memset (body + 2, 'x', BODY_SIZE - 2);
    // Wait for both workers to be there before the clock starts.
    size_t count;
    for (int tries = 0; tries < 100; tries++) {
        zf_figures_t *f = zf_client_queues (observer, &count, 5000);
        uint32_t consumers = f && count ? f[0].consumers : 0;
        free (f);
        if (consumers == 2)
            break;
        zclock_sleep (50); // bounded poll: 100 tries
    }
    int64_t start = zclock_usecs ();
    double cpu_start = s_cpu_us ();
    double tap_cpu_start = tap ? s_proc_cpu_us (tap) : 0;
    // The headers {"tenant": "tNN"} of 100 tenants, for keyed runs.
    uint8_t headers[100][12];
    for (int t = 0; t < 100; t++) {
        memcpy (headers[t], "\x81\xa6tenant\xa2", 9);
        snprintf ((char *) headers[t] + 9, 3, "%02d", t);
    }
    zf_put_opts_t opts = { .headers_size = 11 };
    for (long i = 0; i < n; i++) {
        if (s_keyed) {
            opts.headers = headers[i % 100];
            if (zf_client_put_with (producer, "jobs", body, BODY_SIZE, &opts, NULL)) {
                fprintf (stderr, "bench_broker: put: %s\n", zf_client_last_error (producer));
                exit (1); // a benchmark of nothing put would time nothing
            }
        }
        else
            zf_client_put (producer, "jobs", body, BODY_SIZE, NULL);
        // A question now and then keeps the observer's session alive
        // (without waiting for the answer).
        if (i % 65536 == 0)
            free (zf_client_queues (observer, &count, 0));
    }
    zf_client_flush (producer, -1);
    s_confirmed_rate = n / ((zclock_usecs () - start) / 1e6);
    uint64_t acked = 0;
    while (acked < (uint64_t) n && !zsys_interrupted) {
        zf_figures_t *f = zf_client_queues (observer, &count, 5000);
        acked = f && count ? f[0].ack : 0;
        free (f);
        if (acked < (uint64_t) n)
            zclock_sleep (20); // bounded poll of the broker's figures
    }
    double seconds = (zclock_usecs () - start) / 1e6;
    s_cpu_per_item = (s_cpu_us () - cpu_start) / n;
    s_tap_cpu_per_item = tap ? (s_proc_cpu_us (tap) - tap_cpu_start) / n : 0;
    for (int w = 0; w < 2; w++) {
        kill (workers[w], SIGTERM);
        zf_test_reap (workers[w], 5000);
        close (outs[w]);
    }
    if (tap_mode == TAP_SLOW && !s_tap_gap (tap_out, producer, body))
        printf ("   the slow tap reported no gap\n"); // it kept up, or said nothing
    if (tap) {
        kill (tap, SIGTERM);
        zf_test_reap (tap, 5000);
        close (tap_out);
    }
    zf_client_destroy (&producer);
    zf_client_destroy (&observer);
    zf_broker_destroy (&broker);
    if (group)
        s_group_stop ();
    zf_pipeline_destroy (&pipeline);
    if (dir && !group) {
        zf_journal_remove (dir, &err);
    }
    return n / seconds;
}

static double
s_zflow (const char *self_path, long n, s_tap_t tap_mode, const char *dir, const char *sync)
{
    return s_zflow_at (self_path, n, tap_mode, dir, sync, false);
}

//  Puts n items into a broker with a journal in dir and nobody reading,
//  stops it, and starts it again: prints the time the restart took.
static void
s_recover (long n, const char *dir)
{
    zf_pipeline_t *pipeline = s_pipeline (n + 1, dir, "batch");
    zf_error_t err;
    zf_broker_t *broker =
        zf_broker_new (pipeline, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL, &err);
    zf_client_t *producer = zf_client_new (zf_broker_endpoint (broker), "bench", NULL, 0);
    uint8_t body[BODY_SIZE];
    body[0] = 0xc4;
    body[1] = BODY_SIZE - 2;
    memset (body + 2, 'x', BODY_SIZE - 2);
    for (long i = 0; i < n; i++)
        zf_client_put (producer, "jobs", body, BODY_SIZE, NULL);
    zf_client_flush (producer, -1);
    zf_client_destroy (&producer);
    zf_broker_destroy (&broker);
    int64_t start = zclock_usecs ();
    broker = zf_broker_new (pipeline, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL, &err);
    double seconds = (zclock_usecs () - start) / 1e6;
    zf_client_t *observer = zf_client_new (zf_broker_endpoint (broker), "observer", NULL, 0);
    size_t count;
    zf_figures_t *f = zf_client_queues (observer, &count, 5000);
    printf ("restart with %ld items queued: %.2f s (%llu items in the queue after it)\n", n,
            seconds, f && count ? (unsigned long long) f[0].depth : 0ULL);
    free (f);
    zf_client_destroy (&observer);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zf_journal_remove (dir, &err);
}

static double
s_raw (const char *self_path, long n)
{
    zsock_t *push[2];
    pid_t workers[2];
    int outs[2];
    char share[32];
    snprintf (share, sizeof share, "%ld", n / 2);
    char line[64];
    for (int w = 0; w < 2; w++) {
        char *argv[] = { (char *) self_path, "raw", "tcp://127.0.0.1:*", share, NULL };
        workers[w] = zf_test_spawn (argv, &outs[w]);
        zf_test_read_line (outs[w], line, sizeof line, 10000);
        push[w] = zsock_new (ZMQ_PUSH);
        zsock_set_sndhwm (push[w], 100000);
        zsock_connect (push[w], "%s", line);
    }
    uint8_t body[BODY_SIZE];
    memset (body, 'x', sizeof body);
    int64_t start = zclock_usecs ();
    void *sockets[2] = { zsock_resolve (push[0]), zsock_resolve (push[1]) };
    for (long i = 0; i < (n / 2) * 2; i++)
        zmq_send (sockets[i & 1], body, sizeof body, 0);
    for (int w = 0; w < 2; w++)
        zf_test_read_line (outs[w], line, sizeof line, 600000);
    double seconds = (zclock_usecs () - start) / 1e6;
    for (int w = 0; w < 2; w++) {
        zf_test_reap (workers[w], 5000);
        close (outs[w]);
    }
    zsock_destroy (&push[0]);
    zsock_destroy (&push[1]);
    return ((n / 2) * 2) / seconds;
}

int
main (int argc, char **argv)
{
    zsys_init ();
    if (argc == 3 && streq (argv[1], "worker"))
        return s_worker (argv[2]);
    if (argc == 4 && streq (argv[1], "raw"))
        return s_raw_worker (argv[2], atol (argv[3]));
    long n = argc > 1 ? atol (argv[1]) : 1000000;
    if (argc == 4 && streq (argv[2], "durable")) {
        const char *dir = argv[3];
        double none = s_zflow (argv[0], n, TAP_NONE, NULL, NULL);
        printf ("zflow broker, no journal:               %10.0f items/s\n", none);
        const char *modes[] = { "batch", "always", "never" };
        for (int i = 0; i < 3; i++) {
            double rate = s_zflow (argv[0], n, TAP_NONE, dir, modes[i]);
            printf ("zflow broker, journal, sync = %-7s    %10.0f items/s  (%.2f of no journal)\n",
                    modes[i], rate, rate / none);
        }
        s_recover (n, dir);
        return 0;
    }
    if (argc == 4 && streq (argv[2], "cluster")) {
        // The same load through one broker with its journal (what a group
        // replaces) and through a group of three on this machine, in
        // rounds that take the three in turn: a machine whose speed
        // wanders between runs slows each side alike. Every run is
        // printed; the ratio is of each side's best.
        const char *dir = argv[3];
        const char *labels[] = { "one broker, journal, sync = batch ",
                                 "one broker, journal, sync = always",
                                 "a group of 3 brokers (Raft)       " };
        double best[3] = { 0 }, best_acked[3] = { 0 };
        for (int round = 1; round <= CLUSTER_ROUNDS; round++)
            for (int i = 0; i < 3; i++) {
                double acked = i < 2 ? s_zflow (argv[0], n, TAP_NONE, dir, i ? "always" : "batch")
                                     : s_zflow_at (argv[0], n, TAP_NONE, dir, NULL, true);
                printf ("round %d: %s  confirmed %9.0f items/s, acked %9.0f items/s  (CPU an "
                        "item in this process %.2f us)\n",
                        round, labels[i], s_confirmed_rate, acked, s_cpu_per_item);
                fflush (stdout);
                if (s_confirmed_rate > best[i])
                    best[i] = s_confirmed_rate;
                if (acked > best_acked[i])
                    best_acked[i] = acked;
            }
        printf ("best of %d: one broker (sync = batch) %.0f, (sync = always) %.0f, the group %.0f "
                "confirmed items/s\n",
                CLUSTER_ROUNDS, best[0], best[1], best[2]);
        printf ("group / one broker (sync = batch): confirmed %.2f, acked %.2f;"
                " / (sync = always): confirmed %.2f\n",
                best[2] / best[0], best_acked[2] / best_acked[0], best[2] / best[1]);
        return 0;
    }
    if (argc == 3 && streq (argv[2], "flow")) {
        // Rounds of each in turn, the best rate and the least CPU an item
        // of each kept: the machine's noise falls on all alike. Keyed
        // items carry a header the others do not: they are set beside
        // the same items without flow control too.
        static const struct {
            const char *label, *keys;
            bool keyed;
        } modes[] = {
            { "no flow control", "", false },
            { "rate = 10000000/s (never binds)", "        rate = 10000000/s\n", false },
            { "items with a tenant header, no flow control", "", true },
            { "key = header:tenant, 100 keys", "        key = header:tenant\n", true },
            { "key, fair = true", "        key = header:tenant\n        fair = true\n", true },
            { "key, fair, rate, max-in-flight-per-key",
              "        key = header:tenant\n        fair = true\n        rate = 10000000/s\n"
              "        max-in-flight-per-key = 100000\n",
              true },
        };
        size_t count = sizeof modes / sizeof modes[0];
        double best[8] = { 0 }, cpu[8] = { 0 };
        for (int round = 0; round < 5; round++)
            for (size_t m = 0; m < count; m++) {
                s_flow_keys = modes[m].keys;
                s_keyed = modes[m].keyed;
                double rate = s_zflow (argv[0], n, TAP_NONE, NULL, NULL);
                if (rate > best[m])
                    best[m] = rate;
                if (!cpu[m] || s_cpu_per_item < cpu[m])
                    cpu[m] = s_cpu_per_item;
            }
        for (size_t m = 0; m < count; m++) {
            size_t base = modes[m].keyed ? 2 : 0; // the same items without flow control
            printf ("zflow broker, %-44s %9.0f items/s  %.2f us CPU an item", modes[m].label,
                    best[m], cpu[m]);
            if (m != base)
                printf ("  (%.2f of %s; target 0.90 at least)", best[m] / best[base],
                        base ? "the same items without" : "none");
            printf ("\n");
        }
        return 0;
    }
    if (argc == 3 && streq (argv[2], "tap")) {
        // Beside each rate, the CPU the broker's process spent an item
        // (what watching costs the broker itself) and the tap process's
        // (what it takes from the machine).
        static const char *labels[] = { "no tap", "a tap on the queue's data",
                                        "a tap that falls behind", "a tap of 1 item in 100" };
        double none = 0;
        for (s_tap_t mode = TAP_NONE; mode <= TAP_SAMPLED; mode++) {
            double rate = s_zflow (argv[0], n, mode, NULL, NULL);
            if (mode == TAP_NONE)
                none = rate;
            printf ("zflow broker, %-26s %9.0f items/s (%.2f of no tap)   CPU an item: broker "
                    "%.2f us, tap %.2f us\n",
                    labels[mode], rate, rate / none, s_cpu_per_item, s_tap_cpu_per_item);
        }
        return 0;
    }
    double zflow = s_zflow (argv[0], n, TAP_NONE, NULL, NULL);
    double raw = s_raw (argv[0], n);
    printf ("zflow broker, put -> deliver -> ack, 2 workers: %10.0f items/s\n", zflow);
    printf ("raw libzmq PUSH/PULL, 2 workers, no acks:    %10.0f items/s  (zflow at %.2f of it)\n",
            raw, zflow / raw);
    return 0;
}
