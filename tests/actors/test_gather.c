/*  Tests of fan-in: a producer makes groups (group-size), a processor
    passes them on or fans items out into groups (group = true), and the
    gather collects them; each test reads what the sink wrote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_json.h"
#include "zf_testkit.h"
#include "zflow.h"

#include <signal.h>
#include <sys/wait.h>

static char s_dir[256]; // the pipeline's folder

static int
s_setup (void **state)
{
    return zf_test_dir_new (s_dir, sizeof s_dir, "gather");
}

static int
s_teardown (void **state)
{
    zf_test_kill_all (state);
    return zf_test_dir_remove (s_dir);
}

//  src (a list of items, groups of group_size) -> proc (command) -> g
//  (gather with the extra keys) -> store (out.jsonl).
static const char *s_config = "queues\n"
                              "    a\n"
                              "        max-attempts = 2\n"
                              "        retry-base = 10ms\n"
                              "        retry-max = 20ms\n"
                              "    b\n"
                              "actors\n"
                              "    src\n"
                              "        kind = producer\n"
                              "        output = a\n"
                              "        group-size = %d\n"
                              "        items\n"
                              "%s"
                              "    proc\n"
                              "        kind = processor\n"
                              "        input = a\n"
                              "        output = b\n"
                              "        command = \"%s\"\n"
                              "%s"
                              "    g\n"
                              "        kind = gather\n"
                              "        input = b\n"
                              "        output = c\n"
                              "%s"
                              "    store\n"
                              "        kind = sink\n"
                              "        input = c\n"
                              "        target = file:out.jsonl\n";

typedef struct {
    zf_pipeline_t *pipeline;
    zf_broker_t *broker;
    pid_t pids[4]; // src, proc, g, store
} s_run_t;

//  Starts the pipeline with items (one "item = X" line each), the
//  processor's command and extra keys (on-error = emit unless they say),
//  and the gather's extra keys. Queue a tries an item twice, 10-20 ms apart.
static void
s_start (s_run_t *run, int group_size, const char *items, const char *command,
         const char *proc_keys, const char *gather_keys)
{
    char config[4096], keys[512];
    snprintf (keys, sizeof keys, "%s%s",
              strstr (proc_keys, "on-error") ? "" : "        on-error = emit\n", proc_keys);
    snprintf (config, sizeof config, s_config, group_size, items, command, keys, gather_keys);
    run->broker = zf_test_broker (s_dir, config, &run->pipeline);
    assert_non_null (run->broker);
    const char *names[] = { "store", "g", "proc", "src" };
    for (int i = 0; i < 4; i++)
        run->pids[3 - i] = zf_test_actor (s_dir, run->broker, names[i]);
    assert_int_equal (WEXITSTATUS (zf_test_reap (run->pids[0], 30000)), 0);
}

static void
s_stop (s_run_t *run)
{
    for (int i = 1; i < 4; i++)
        kill (run->pids[i], SIGTERM);
    for (int i = 1; i < 4; i++)
        assert_int_equal (WEXITSTATUS (zf_test_reap (run->pids[i], 10000)), 0);
    zf_broker_destroy (&run->broker);
    zf_pipeline_destroy (&run->pipeline);
}

//  Waits for lines lines in out.jsonl and returns its text.
static char *
s_output (int lines)
{
    int seen[1];
    assert_int_equal (zf_test_wait_lines (s_dir, "out.jsonl", seen, 1, lines), lines);
    return zf_test_slurp (s_dir, "out.jsonl");
}

//  The figures of queue on run's broker, asked as a client would.
static zf_figures_t
s_figures (s_run_t *run, const char *queue)
{
    zf_client_t *client = zf_client_new (zf_broker_endpoint (run->broker), "test", NULL, 0);
    size_t count = 0;
    zf_figures_t *all = zf_client_queues (client, &count, 5000);
    zf_figures_t found = { .name = "" };
    for (size_t i = 0; i < count; i++)
        if (streq (all[i].name, queue))
            found = all[i];
    free (all);
    zf_client_destroy (&client);
    assert_string_equal (found.name, queue);
    return found;
}

static const char *s_seven = "            item = 1\n"
                             "            item = fail\n"
                             "            item = 3\n"
                             "            item = 4\n"
                             "            item = 5\n"
                             "            item = 6\n"
                             "            item = 7\n";

static void
test_collect (void **state)
{
    // Groups of 3 (the last of 1): each comes out as one list in index
    // order, the failed member in its place as {error, item}.
    s_run_t run;
    s_start (&run, 3, s_seven, ZFLOW_WRAP, "", "");
    char *text = s_output (3);
    s_stop (&run);
    assert_non_null (strstr (text, "[{\"item\":1,\"bytes\":1},"
                                   "{\"error\":\"asked to fail\",\"item\":\"fail\"},"
                                   "{\"item\":3,\"bytes\":1}]\n"));
    assert_non_null (strstr (
        text, "[{\"item\":4,\"bytes\":1},{\"item\":5,\"bytes\":1},{\"item\":6,\"bytes\":1}]\n"));
    assert_non_null (strstr (text, "[{\"item\":7,\"bytes\":1}]\n"));
    free (text);
}

static void
test_all_cancels_siblings (void **state)
{
    // mode = all: the first member fails at once while the others take
    // 300 ms each, one at a time. The group fails, its members still queued
    // are cancelled and never run; the next group is not touched.
    const char *command = "while read n; do echo $n >> handled.txt; "
                          "case $n in *fail*) echo '!boom'; echo; continue;; esac; "
                          "sleep 0.3; echo $n; echo; done";
    s_run_t run;
    s_start (&run, 5,
             "            item = fail\n"
             "            item = 1\n"
             "            item = 2\n"
             "            item = 3\n"
             "            item = 4\n"
             "            item = 5\n"
             "            item = 6\n"
             "            item = 7\n"
             "            item = 8\n"
             "            item = 9\n",
             command, "", "        mode = all\n");
    char *text = s_output (2);
    s_stop (&run);
    assert_non_null (strstr (text, "{\"error\":\"member 0 of 5 failed: boom\",\"group\":\""));
    assert_non_null (strstr (text, "\"item\":{\"error\":\"boom\",\"item\":\"fail\"}}\n"));
    assert_non_null (strstr (text, "[5,6,7,8,9]\n"));
    free (text);
    int seen[10];
    zf_test_count_lines (s_dir, "handled.txt", seen, 10);
    print_message ("members of the failed group that ran: %d of 4\n",
                   seen[1] + seen[2] + seen[3] + seen[4]);
    assert_int_equal (seen[3], 0);
    assert_int_equal (seen[4], 0);
    for (int i = 5; i < 10; i++)
        assert_int_equal (seen[i], 1);
}

//  A processor that gives nothing for item 2: its group never completes.
static const char *s_drop_two = "while read n; do if [ $n != 2 ]; then echo $n; fi; echo; done";

static void
test_timeout_emits_gaps (void **state)
{
    s_run_t run;
    s_start (&run, 3, "            item = 1\n            item = 2\n            item = 3\n",
             s_drop_two, "", "        timeout = 300ms\n");
    char *text = s_output (1);
    s_stop (&run);
    assert_string_equal (text, "[1,{\"error\":\"missing\",\"index\":1},3]\n");
    free (text);
}

static void
test_timeout_fails_to_dead (void **state)
{
    // on-timeout = fail with on-failure = dead: the members held go to
    // b.dead, nothing reaches the sink, and the gather says why.
    s_run_t run;
    s_start (&run, 3, "            item = 1\n            item = 2\n            item = 3\n",
             s_drop_two, "",
             "        timeout = 300ms\n        on-timeout = fail\n        on-failure = dead\n");
    zf_figures_t b = { 0 };
    for (int tries = 0; tries < 100 && (b = s_figures (&run, "b")).dead < 2; tries++)
        zclock_sleep (100); // bounded wait for the timeout to pass
    assert_int_equal (b.dead, 2);
    assert_int_equal (b.depth, 0);
    assert_int_equal (b.inflight, 0);
    s_stop (&run);
    char *out = zf_test_slurp (s_dir, "out.jsonl");
    assert_true (!out || !*out);
    free (out);
    char *log = zf_test_slurp (s_dir, "g.log");
    assert_non_null (strstr (log, "group timed out with 2 of 3 members"));
    free (log);
}

static void
test_fan_out_and_back (void **state)
{
    // A processor with group = true turns each item into a group of its
    // outputs (here n copies of n); the gather makes them one list again.
    s_run_t run;
    s_start (&run, 0, "            item = 1\n            item = 3\n            item = 2\n",
             "while read n; do i=0; while [ $i -lt $n ]; do echo $n; i=$((i+1)); done; echo; done",
             "        group = true\n", "");
    char *text = s_output (3);
    s_stop (&run);
    assert_non_null (strstr (text, "[1]\n"));
    assert_non_null (strstr (text, "[2,2]\n"));
    assert_non_null (strstr (text, "[3,3,3]\n"));
    free (text);
}

static void
test_no_group_is_dead_lettered (void **state)
{
    // Items that belong to no group cannot be gathered: they go to b.dead
    // with the reason in the log, and the gather keeps running.
    s_run_t run;
    s_start (&run, 0, "            item = 1\n            item = 2\n", ZFLOW_WRAP, "", "");
    zf_figures_t b = { 0 };
    for (int tries = 0; tries < 100 && (b = s_figures (&run, "b")).dead < 2; tries++)
        zclock_sleep (100); // bounded wait for both to be refused
    assert_int_equal (b.dead, 2);
    s_stop (&run);
    char *log = zf_test_slurp (s_dir, "g.log");
    assert_non_null (strstr (log, "has no group (items come in groups from a producer"));
    free (log);
}

static void
test_gather_restart (void **state)
{
    // The gather holds two members of three when it is killed -9; the
    // third is held back by the processor until then. The restarted gather
    // gets the two again from the broker and emits the group once.
    const char *command = "while read n; do if [ $n = 3 ]; then t=0; "
                          "while [ ! -f go ] && [ $t -lt 200 ]; do sleep 0.05; t=$((t+1)); done; "
                          "fi; echo $n; echo; done";
    s_run_t run;
    s_start (&run, 3, "            item = 1\n            item = 2\n            item = 3\n", command,
             "        timeout = 30s\n", "");
    zf_figures_t b = { 0 };
    for (int tries = 0; tries < 100 && (b = s_figures (&run, "b")).inflight < 2; tries++)
        zclock_sleep (100); // bounded wait for the gather to hold two
    assert_int_equal (b.inflight, 2);
    kill (run.pids[2], SIGKILL);
    zf_test_reap (run.pids[2], 5000);
    zf_test_write (s_dir, "go", "");
    run.pids[2] = zf_test_actor (s_dir, run.broker, "g");
    free (s_output (1));
    s_stop (&run); // the sink writes what it was given before it exits
    char *text = zf_test_slurp (s_dir, "out.jsonl");
    assert_string_equal (text, "[1,2,3]\n");
    free (text);
}

static void
test_a_dead_member_fails_the_group (void **state)
{
    // The processor retries its failures (on-error = retry) and the member
    // that always fails is dead-lettered to a.dead: mode = all must fail
    // its group, not wait for it for ever.
    s_run_t run;
    s_start (&run, 3, "            item = 1\n            item = fail\n            item = 3\n",
             ZFLOW_WRAP, "        on-error = retry\n", "        mode = all\n");
    char *text = s_output (1);
    s_stop (&run);
    assert_non_null (strstr (text, "{\"error\":\"member 1 of 3 failed: asked to fail\""));
    assert_non_null (strstr (text, "\"dead\":\"a.dead\""));
    free (text);
}

static void
test_a_dead_member_is_an_error_in_collect (void **state)
{
    // mode = collect: the dead-lettered member is an error in its place.
    s_run_t run;
    s_start (&run, 3, "            item = 1\n            item = fail\n            item = 3\n",
             ZFLOW_WRAP, "        on-error = retry\n", "");
    char *text = s_output (1);
    zf_figures_t dead = s_figures (&run, "a.dead");
    s_stop (&run);
    assert_non_null (strstr (text, "[{\"item\":1,\"bytes\":1},{\"error\":\"asked to fail\","
                                   "\"dead\":\"a.dead\",\"id\":\""));
    assert_non_null (strstr (text, "{\"item\":3,\"bytes\":1}]\n"));
    assert_int_equal (dead.depth, 1); // the member itself waits in a.dead
    free (text);
}

//  Two gathers fed by clients, not by a producer: each group's members
//  are put with their group in the envelope and the group's id as their
//  root, and the gathers' lists are results.
static const char *s_client_groups = "pipeline\n"
                                     "    results = lists\n"
                                     "queues\n"
                                     "    together\n"
                                     "        external = true\n"
                                     "    strict\n"
                                     "        external = true\n"
                                     "actors\n"
                                     "    collect\n"
                                     "        kind = gather\n"
                                     "        input = together\n"
                                     "        output = lists\n"
                                     "        timeout = 0\n"
                                     "    all\n"
                                     "        kind = gather\n"
                                     "        input = strict\n"
                                     "        output = lists\n"
                                     "        mode = all\n"
                                     "        timeout = 0\n";

//  Puts member index of group (of size) to queue, its root the group's
//  id: the number n, or with error a failure, {"error": error}.
static void
s_put_member (zf_client_t *client, const char *queue, const zf_id_t *group, uint32_t size,
              uint32_t index, int n, const char *error)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    if (error) {
        msgpack_pack_map (&pk, 1);
        msgpack_pack_str (&pk, 5);
        msgpack_pack_str_body (&pk, "error", 5);
        msgpack_pack_str (&pk, strlen (error));
        msgpack_pack_str_body (&pk, error, strlen (error));
    }
    else
        msgpack_pack_int (&pk, n);
    zf_group_t member = { .id = *group, .size = size, .index = index };
    zf_put_opts_t opts = { .root = group, .group = &member };
    assert_int_equal (zf_client_put_with (client, queue, buffer.data, buffer.size, &opts, NULL), 0);
    msgpack_sbuffer_destroy (&buffer);
}

//  The one result of result, as JSON (free it).
static char *
s_only_result (zf_result_t *result)
{
    assert_int_equal (zf_result_count (result), 1);
    size_t size;
    const void *body = zf_result_body (result, 0, &size);
    return zf_msgpack_to_json (body, size, NULL);
}

static void
test_groups_put_by_a_client (void **state)
{
    // A client puts groups itself and asks for each group's result by the
    // group's id, a root that is no item: running while its members are
    // gathered; then done with the list, errors in their places (collect);
    // or, mode = all, dead with its first error, not cancelled.
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (s_dir, s_client_groups, &pipeline);
    assert_non_null (broker);
    const char *endpoint = zf_broker_endpoint (broker);
    pid_t collect = zf_test_actor (s_dir, broker, "collect");
    pid_t all = zf_test_actor (s_dir, broker, "all");
    zf_client_t *client = zf_client_new (endpoint, "web", NULL, 0);
    zf_id_t together = zf_id_random (), strict = zf_id_random ();
    s_put_member (client, "together", &together, 3, 0, 1, NULL);
    s_put_member (client, "together", &together, 3, 2, 3, NULL);
    s_put_member (client, "strict", &strict, 3, 0, 1, NULL);
    s_put_member (client, "strict", &strict, 3, 1, 0, "boom");
    s_put_member (client, "strict", &strict, 3, 2, 3, NULL);
    assert_int_equal (zf_client_flush (client, 5000), 0);

    // Two of three members in: the group runs (and has no result yet).
    zf_result_t *result = zf_client_item (client, &together, 5000);
    assert_non_null (result);
    assert_string_equal (zf_result_state (result), "running");
    zf_result_destroy (&result);
    s_put_member (client, "together", &together, 3, 1, 0, "boom");
    assert_int_equal (zf_client_flush (client, 5000), 0);
    result = zf_client_result (client, &together, 10000, 5000);
    assert_non_null (result);
    assert_string_equal (zf_result_state (result), "done");
    char *json = s_only_result (result);
    assert_string_equal (json, "[1,{\"error\":\"boom\"},3]");
    free (json);
    zf_result_destroy (&result);

    result = zf_client_result (client, &strict, 10000, 5000);
    assert_non_null (result);
    assert_string_equal (zf_result_state (result), "dead");
    assert_string_equal (zf_result_reason (result), "member 1 of 3 failed: boom");
    json = s_only_result (result);
    char hex[ZF_ID_HEX];
    char *expected = zsys_sprintf ("{\"error\":\"member 1 of 3 failed: boom\",\"group\":\"%s\","
                                   "\"item\":{\"error\":\"boom\"}}",
                                   zf_id_format (&strict, hex));
    assert_string_equal (json, expected);
    zstr_free (&expected);
    free (json);
    zf_result_destroy (&result);
    // As zflow status says them.
    zf_test_result_t r = zf_test_zflow (NULL, "status", endpoint, hex, NULL);
    assert_int_equal (r.status, 0);
    expected = zsys_sprintf ("%s dead: member 1 of 3 failed: boom\n", hex);
    assert_string_equal (r.out, expected);
    zstr_free (&expected);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "status", endpoint, zf_id_format (&together, hex), NULL);
    expected = zsys_sprintf ("%s done\n", hex);
    assert_string_equal (r.out, expected);
    zstr_free (&expected);
    zf_test_result_free (&r);

    zf_client_destroy (&client);
    kill (collect, SIGTERM);
    kill (all, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (collect, 10000)), 0);
    assert_int_equal (WEXITSTATUS (zf_test_reap (all, 10000)), 0);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_collect, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_all_cancels_siblings, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_timeout_emits_gaps, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_timeout_fails_to_dead, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fan_out_and_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_no_group_is_dead_lettered, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_dead_member_fails_the_group, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_dead_member_is_an_error_in_collect, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_gather_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_groups_put_by_a_client, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
