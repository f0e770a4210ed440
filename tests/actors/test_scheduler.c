/*  Tests of the scheduler actor with real processes: firings reach a sink,
    and two schedulers running the same job side by side put each firing
    once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_broker.h"
#include "zf_testkit.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static char s_dir[256]; // the pipeline's folder

static int
s_setup (void **state)
{
    return zf_test_dir_new (s_dir, sizeof s_dir, "scheduler");
}

static int
s_teardown (void **state)
{
    zf_test_kill_all (state);
    return zf_test_dir_remove (s_dir);
}

static void
test_two_schedulers_fire_once (void **state)
{
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (s_dir,
                                          "actors\n"
                                          "    tick\n"
                                          "        kind = scheduler\n"
                                          "        output = ticks\n"
                                          "        every = 100ms\n"
                                          "        payload = {\"n\":1}\n"
                                          "    store\n"
                                          "        kind = sink\n"
                                          "        input = ticks\n"
                                          "        target = file:out.jsonl\n",
                                          &pipeline);
    assert_non_null (broker);
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    pid_t first = zf_test_actor (s_dir, broker, "tick");
    pid_t second = zf_test_actor (s_dir, broker, "tick");
    int seen[1];
    int lines = zf_test_wait_lines (s_dir, "out.jsonl", seen, 1, 15);
    kill (first, SIGTERM);
    kill (second, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (first, 10000)), 0);
    assert_int_equal (WEXITSTATUS (zf_test_reap (second, 10000)), 0);
    kill (sink, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (sink, 10000)), 0);
    assert_true (lines >= 15);
    // Each scheduled time once: the two schedulers' copies were dropped.
    char *text = zf_test_slurp (s_dir, "out.jsonl");
    zhashx_t *times = zhashx_new ();
    int total = 0;
    for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n"), total++) {
        assert_non_null (strstr (line, "{\"job\":\"tick\",\"scheduled\":\""));
        assert_non_null (strstr (line, ",\"n\":1}"));
        char *at = strstr (line, "\"scheduled\":\"") + 13;
        char key[40];
        snprintf (key, sizeof key, "%.29s", at);
        if (zhashx_insert (times, key, "") != 0)
            fail_msg ("the firing of %s came twice", key);
        // Whole intervals of 100 ms from the epoch (key: ...T05:03:47.200+00:00),
        // which is how both schedulers agree on the times.
        assert_memory_equal (key + 21, "00", 2);
    }
    print_message ("%d firings, each once\n", total);
    zhashx_destroy (&times);
    free (text);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

//  Runs scheduler `tick` (every 100 ms, with the job keys given) into a
//  sink, a journaled broker between them; once `before` firings are in, it
//  is interrupted for gap_ms: stalled with SIGSTOP, or (restart) stopped
//  with SIGTERM and started again; then it runs until `after` firings in
//  all. Returns the sink's text; the scheduler's log (the second one's,
//  with restart) is in s_dir/tick.log.
static char *
s_interrupted (const char *keys, int before, int gap_ms, int after, bool restart)
{
    char config[1024];
    snprintf (config, sizeof config,
              "broker\n"
              "    journal = journal\n"
              "actors\n"
              "    tick\n"
              "        kind = scheduler\n"
              "        output = ticks\n"
              "        every = 100ms\n"
              "%s"
              "    store\n"
              "        kind = sink\n"
              "        input = ticks\n"
              "        target = file:out.jsonl\n",
              keys);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (s_dir, config, &pipeline);
    assert_non_null (broker);
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    pid_t tick = zf_test_actor (s_dir, broker, "tick");
    int seen[1];
    assert_true (zf_test_wait_lines (s_dir, "out.jsonl", seen, 1, before) >= before);
    kill (tick, restart ? SIGTERM : SIGSTOP);
    if (restart)
        assert_int_equal (WEXITSTATUS (zf_test_reap (tick, 10000)), 0);
    zclock_sleep (gap_ms); // the stall, or the time no scheduler runs, under test
    if (restart) {
        char log[600];
        snprintf (log, sizeof log, "%s/tick.log", s_dir);
        remove (log); // the second scheduler's log alone
        tick = zf_test_actor (s_dir, broker, "tick");
    }
    else
        kill (tick, SIGCONT);
    zf_test_wait_lines (s_dir, "out.jsonl", seen, 1, after);
    kill (tick, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (tick, 10000)), 0);
    kill (sink, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (sink, 10000)), 0);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    return zf_test_slurp (s_dir, "out.jsonl");
}

//  The scheduled times (ms within the minute, in order) and lateness (ms)
//  of the firings in text; returns how many.
static int
s_firings (char *text, int64_t *when, double *late, int max)
{
    int n = 0;
    for (char *line = strtok (text, "\n"); line && n < max; line = strtok (NULL, "\n"), n++) {
        int minute, second, ms;
        char *at = strstr (line, "\"scheduled\":\"");
        assert_non_null (at);
        assert_int_equal (sscanf (at + 13 + 14, "%d:%d.%d", &minute, &second, &ms), 3);
        when[n] = (int64_t) minute * 60000 + second * 1000 + ms;
        late[n] = atof (strstr (line, "\"lateness_ms\":") + 14);
    }
    return n;
}

static void
test_stall_coalesced (void **state)
{
    // A stall of 1 s with coalesce: the missed firings become one, the
    // last, and the times go on from there; none is late beyond the grace.
    char *text =
        s_interrupted ("        coalesce = true\n        misfire-grace = 1s\n", 5, 1000, 12, false);
    int64_t when[64];
    double late[64];
    int n = s_firings (text, when, late, 64);
    free (text);
    // The stall's gap is the one of 800 ms or more (a busy machine may add
    // a short one of its own, coalesced the same way).
    int gaps = 0;
    for (int i = 1; i < n; i++) {
        int64_t step = (when[i] - when[i - 1] + 3600000) % 3600000;
        assert_int_equal (step % 100, 0);
        if (step >= 800)
            gaps++;
        assert_true (step >= 100);
        assert_true (late[i] <= 1000.0);
    }
    print_message ("%d firings, %d gap(s) of the stall's size\n", n, gaps);
    assert_int_equal (gaps, 1);
}

static void
test_stall_misfires (void **state)
{
    // Without coalesce, each missed time is considered in turn: those later
    // than misfire-grace (250 ms) are skipped and counted, the rest fire.
    char *text = s_interrupted ("        coalesce = false\n        misfire-grace = 250ms\n", 5,
                                1000, 12, false);
    int64_t when[64];
    double late[64];
    int n = s_firings (text, when, late, 64);
    free (text);
    for (int i = 0; i < n; i++)
        assert_true (late[i] <= 250.0);
    char *log = zf_test_slurp (s_dir, "tick.log");
    assert_non_null (strstr (log, "missed by"));
    int fired = 0, missed = -1, busy = -1, found = 0;
    for (char *p = log; !found && (p = strstr (p, "job tick: ")); p++)
        found =
            sscanf (p, "job tick: %d firings, %d missed, %d skipped", &fired, &missed, &busy) == 3;
    assert_true (found);
    print_message ("%d fired, %d missed\n", fired, missed);
    assert_true (missed >= 5); // at least the first half of the 10 stalled times
    assert_int_equal (fired, n);
    free (log);
}

static void
test_missed_firings_run_after_a_restart (void **state)
{
    // Down for 1 s with misfire-grace = 1h and coalesce = false: the
    // restarted scheduler runs every firing it missed, so the times have
    // no gap, each once.
    char *text =
        s_interrupted ("        coalesce = false\n        misfire-grace = 1h\n", 4, 1000, 20, true);
    int64_t when[64];
    double late[64];
    int n = s_firings (text, when, late, 64);
    free (text);
    for (int i = 1; i < n; i++) {
        int64_t step = (when[i] - when[i - 1] + 3600000) % 3600000;
        if (step != 100)
            fail_msg ("firing %d is %lld ms after the one before: a firing was lost", i,
                      (long long) step);
    }
    char *log = zf_test_slurp (s_dir, "tick.log");
    assert_non_null (strstr (log, "firings missed while no scheduler ran: "));
    print_message ("%d firings without a gap\n", n);
    free (log);
}

static void
test_missed_firings_past_the_grace_are_skipped (void **state)
{
    // The same with misfire-grace = 300ms: the missed firings older than
    // that are skipped, each one logged; the rest run. With coalesce, the
    // latest of those alone.
    char *text = s_interrupted ("        coalesce = false\n        misfire-grace = 300ms\n", 4,
                                1200, 12, true);
    free (text);
    char *log = zf_test_slurp (s_dir, "tick.log");
    assert_non_null (strstr (log, "missed while no scheduler ran, is "));
    assert_non_null (strstr (log, "(misfire-grace 300 ms): skipped"));
    free (log);
}

//  A job of one instance at a time, into a queue whose reader the tests
//  play (zf_testactor --hold keeps what it gets).
static const char *s_held_ticks = "pipeline\n"
                                  "    name = p\n"
                                  "actors\n"
                                  "    tick\n"
                                  "        kind = scheduler\n"
                                  "        output = ticks\n"
                                  "        every = 100ms\n"
                                  "        max-instances = 1\n"
                                  "    slow\n"
                                  "        kind = sink\n"
                                  "        input = ticks\n"
                                  "        target = null\n";

//  A reader of ticks on endpoint that keeps what it gets, once the broker
//  has welcomed it; its output (a line per item held) on *out.
static pid_t
s_holder (const char *endpoint, int *out)
{
    char *argv[] = { ZFLOW_TESTACTOR, (char *) endpoint, "slow", "ticks", "--hold", NULL };
    pid_t pid = zf_test_spawn (argv, out);
    char line[64];
    assert_int_equal (zf_test_read_line (*out, line, sizeof line, 10000), 0);
    assert_string_equal (line, "ready");
    return pid;
}

//  The next line on fd, within timeout_ms, is expected.
static void
s_expect (int fd, const char *expected, int timeout_ms)
{
    char line[64];
    assert_int_equal (zf_test_read_line (fd, line, sizeof line, timeout_ms), 0);
    assert_string_equal (line, expected);
}

static void
test_max_instances (void **state)
{
    // A consumer that holds what it gets: with max-instances = 1, the first
    // firing is still in progress, so the later ones are skipped.
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (s_dir, s_held_ticks, &pipeline);
    assert_non_null (broker);
    int out;
    pid_t holder = s_holder (zf_broker_endpoint (broker), &out);
    pid_t tick = zf_test_actor (s_dir, broker, "tick");
    s_expect (out, "holding 1", 10000);
    // Ten intervals later, still one firing held and the rest skipped.
    char *log = NULL;
    for (int tries = 0; tries < 100; tries++) {
        free (log);
        log = zf_test_slurp (s_dir, "tick.log");
        if (log && strstr (log, "(max-instances): skipped one"))
            break;
        zclock_sleep (100); // bounded wait for a skipped firing
    }
    assert_non_null (strstr (log, "1 firings still in progress (max-instances): skipped one"));
    free (log);
    kill (tick, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (tick, 10000)), 0);
    log = zf_test_slurp (s_dir, "tick.log");
    assert_non_null (strstr (log, "job tick: 1 firings, 0 missed,"));
    free (log);
    kill (holder, SIGTERM);
    zf_test_reap (holder, 10000);
    close (out);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static void
test_max_instances_after_a_broker_restart (void **state)
{
    // The firing in progress is lost with a broker that had no journal.
    // The scheduler, on its new session, asks about it, forgets it, and
    // fires again: max-instances does not stop the job for good.
    // An ipc endpoint the test owns: a tcp port given back between the two
    // brokers could be taken by a test running beside this one.
    char endpoint[256];
    snprintf (endpoint, sizeof endpoint, "ipc:///tmp/zflow-test-ticks-%d.sock", getpid ());
    assert_int_equal (zf_test_write (s_dir, "p.zpl", s_held_ticks), 0);
    zf_pipeline_t *pipeline = zf_test_pipeline (s_held_ticks);
    assert_non_null (pipeline);
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, endpoint, "tcp://127.0.0.1:*", NULL, &err);
    if (!broker)
        fail_msg ("a broker on %s: %s", endpoint, err.text);
    int out;
    pid_t holder = s_holder (endpoint, &out);
    pid_t tick = zf_test_actor_at (s_dir, endpoint, "tick");
    s_expect (out, "holding 1", 10000);
    kill (holder, SIGKILL);
    zf_test_reap (holder, 10000);
    close (out);

    // A new broker on the same endpoint, and a new holder.
    zf_broker_destroy (&broker);
    broker = zf_broker_new (pipeline, endpoint, "tcp://127.0.0.1:*", NULL, &err);
    if (!broker)
        fail_msg ("a broker again on %s: %s", endpoint, err.text);
    holder = s_holder (endpoint, &out);
    // The scheduler's session lapses (3 heartbeats), it opens another, asks
    // about its firing and fires again.
    s_expect (out, "holding 1", 20000);
    kill (tick, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (tick, 10000)), 0);
    kill (holder, SIGTERM);
    zf_test_reap (holder, 10000);
    close (out);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static void
test_at_start_end (void **state)
{
    // One job fires once `at` a time; another fires every 100 ms only
    // between its `start` and `end`. Times are written for this run.
    int64_t now = zclock_time () / 1000 + 2; // whole seconds, 2 s ahead
    char at[32], start[32], end[32];
    time_t t = (time_t) now;
    strftime (at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", gmtime (&t));
    t = (time_t) now + 1;
    strftime (start, sizeof start, "%Y-%m-%dT%H:%M:%SZ", gmtime (&t));
    t = (time_t) now + 2;
    strftime (end, sizeof end, "%Y-%m-%dT%H:%M:%SZ", gmtime (&t));
    char config[1024];
    snprintf (config, sizeof config,
              "actors\n"
              "    tick\n"
              "        kind = scheduler\n"
              "        output = ticks\n"
              "        once\n"
              "            at = %s\n"
              "        window\n"
              "            every = 100ms\n"
              "            start = %s\n"
              "            end = %s\n"
              "    store\n"
              "        kind = sink\n"
              "        input = ticks\n"
              "        target = file:out.jsonl\n",
              at, start, end);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (s_dir, config, &pipeline);
    assert_non_null (broker);
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    pid_t tick = zf_test_actor (s_dir, broker, "tick");
    int seen[1];
    // once, and window from start to end inclusive: 1 + 11 firings.
    assert_int_equal (zf_test_wait_lines (s_dir, "out.jsonl", seen, 1, 12), 12);
    zclock_sleep (300); // past the end: nothing more may come
    kill (tick, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (tick, 10000)), 0);
    kill (sink, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (sink, 10000)), 0);
    char *text = zf_test_slurp (s_dir, "out.jsonl");
    int once = 0, window = 0;
    for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n")) {
        if (strstr (line, "\"job\":\"once\""))
            once++;
        else if (strstr (line, "\"job\":\"window\""))
            window++;
    }
    free (text);
    assert_int_equal (once, 1);
    assert_int_equal (window, 11);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_two_schedulers_fire_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stall_coalesced, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stall_misfires, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_missed_firings_run_after_a_restart, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_missed_firings_past_the_grace_are_skipped, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_max_instances, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_max_instances_after_a_broker_restart, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_at_start_end, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
