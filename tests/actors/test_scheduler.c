/*  Tests of the scheduler actor with real processes: firings reach a sink,
    and two schedulers running the same job side by side put each firing
    once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_testkit.h"

#include <signal.h>
#include <sys/wait.h>

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

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_two_schedulers_fire_once, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
