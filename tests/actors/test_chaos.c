/*  Chaos: 100,000 items through producer -> processor (a coprocess, two
    workers) -> sink while each of them, and then the broker itself (with
    its journal), is killed with kill -9 at moments drawn from a fixed seed,
    and started again. The sink's file must hold every result exactly
    once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_testkit.h"

#include <signal.h>
#include <sys/wait.h>

enum { N = 100000 };

static char s_dir[256]; // the pipeline's folder

static int
s_setup (void **state)
{
    return zf_test_dir_new (s_dir, sizeof s_dir, "chaos");
}

static int
s_teardown (void **state)
{
    zf_test_kill_all (state);
    return zf_test_dir_remove (s_dir);
}

//  Counts in seen[0..N) the results {"item":I,...} in out.jsonl; returns
//  the number of lines.
static int
s_count (int *seen)
{
    memset (seen, 0, N * sizeof (int));
    char path[512];
    snprintf (path, sizeof path, "%s/out.jsonl", s_dir);
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    int lines = 0, item;
    char line[256];
    while (fgets (line, sizeof line, file)) {
        if (sscanf (line, "{\"item\":%d,", &item) == 1 && item >= 0 && item < N)
            seen[item]++;
        lines++;
    }
    fclose (file);
    return lines;
}

//  Waits (bounded: 120 s) until out.jsonl has at least expect lines.
static int
s_wait (int *seen, int expect)
{
    int lines = 0;
    for (int tries = 0; tries < 1200 && (lines = s_count (seen)) < expect; tries++)
        zclock_sleep (100); // bounded poll of a file another process writes
    return lines;
}

//  The stages, each a process; the processor has two workers.
enum { PRODUCER, WORKER_A, WORKER_B, SINK, NPROCS };
static const char *s_names[NPROCS] = { "nums", "wrap", "wrap", "store" };

//  The actors section both tests run, after broker (a broker section, or "").
static char *
s_config (const char *broker)
{
    return zsys_sprintf ("%s"
                         "actors\n"
                         "    nums\n"
                         "        kind = producer\n"
                         "        source = seq:%d\n"
                         "        output = numbers\n"
                         "    wrap\n"
                         "        kind = processor\n"
                         "        input = numbers\n"
                         "        output = results\n"
                         "        concurrency = 4\n"
                         "        command = %s\n"
                         "    store\n"
                         "        kind = sink\n"
                         "        input = results\n"
                         "        target = file:out.jsonl\n",
                         broker, N, ZFLOW_WRAP);
}

//  The producer ends, every result reaches the sink, the workers stop when
//  told: then the sink's file must hold each item exactly once.
static void
s_finish (pid_t pids[NPROCS])
{
    static int seen[N];
    int status = zf_test_reap (pids[PRODUCER], 120000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    s_wait (seen, N);
    for (int i = WORKER_A; i < NPROCS; i++)
        kill (pids[i], SIGTERM);
    for (int i = WORKER_A; i < NPROCS; i++)
        assert_int_equal (WEXITSTATUS (zf_test_reap (pids[i], 10000)), 0);
    int lines = s_count (seen), lost = 0, duplicated = 0;
    for (int i = 0; i < N; i++) {
        lost += seen[i] == 0;
        duplicated += seen[i] > 1;
    }
    print_message ("%d lines: lost %d, duplicated %d\n", lines, lost, duplicated);
    assert_int_equal (lost, 0);
    assert_int_equal (duplicated, 0);
    assert_int_equal (lines, N);
}

static void
test_kill_every_stage (void **state)
{
    char *config = s_config ("");
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (s_dir, config, &pipeline);
    zstr_free (&config);
    assert_non_null (broker);
    pid_t pids[NPROCS];
    for (int i = NPROCS - 1; i >= 0; i--)
        pids[i] = zf_test_actor (s_dir, broker, s_names[i]);

    // The moments: when the sink's file has this many lines, in order.
    srand (20261124);
    int victims[3] = { PRODUCER, WORKER_A, SINK };
    static int seen[N];
    for (int i = 0; i < 3; i++) {
        int moment = N / 10 + (i * N / 4) + rand () % (N / 5);
        int lines = s_wait (seen, moment);
        int victim = victims[i];
        kill (pids[victim], SIGKILL);
        zf_test_reap (pids[victim], 5000);
        print_message ("kill -9 %s at %d lines\n", s_names[victim], lines);
        pids[victim] = zf_test_actor (s_dir, broker, s_names[victim]);
    }
    s_finish (pids);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

//  The broker, a process with a journal, killed three times mid-run.
static void
test_kill_the_broker (void **state)
{
    char *broker_section = zsys_sprintf ("broker\n"
                                         "    endpoint = ipc://%s/broker.ipc\n"
                                         "    events = ipc://%s/events.ipc\n"
                                         "    journal = journal\n"
                                         "    journal-segment = 256KiB\n", // many compactions
                                         s_dir, s_dir);
    char *config = s_config (broker_section);
    assert_int_equal (zf_test_write (s_dir, "p.zpl", config), 0);
    zstr_free (&config);
    zstr_free (&broker_section);
    char endpoint[400];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/broker.ipc", s_dir);
    pid_t broker = zf_test_broker_process (s_dir);
    assert_true (broker > 0);
    pid_t pids[NPROCS];
    for (int i = NPROCS - 1; i >= 0; i--)
        pids[i] = zf_test_actor_at (s_dir, endpoint, s_names[i]);

    srand (20261125);
    static int seen[N];
    for (int i = 0; i < 3; i++) {
        int moment = N / 10 + (i * N / 4) + rand () % (N / 5);
        int lines = s_wait (seen, moment);
        kill (broker, SIGKILL);
        zf_test_reap (broker, 5000);
        print_message ("kill -9 broker at %d lines\n", lines);
        broker = zf_test_broker_process (s_dir);
        assert_true (broker > 0);
    }
    s_finish (pids);
    kill (broker, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (broker, 10000)), 0);
    // Each restart restored what the last one had confirmed, and the
    // journal was compacted on the way.
    char *log = zf_test_slurp (s_dir, "broker.log");
    int restores = 0;
    for (const char *p = log; p && (p = strstr (p, "items restored from")); p++)
        restores++;
    free (log);
    assert_int_equal (restores, 3);
    char *first = zf_test_slurp (s_dir, "journal/0000000000000001.zfj");
    assert_null (first); // compacted into later segments
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_kill_every_stage, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_kill_the_broker, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
