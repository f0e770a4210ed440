/*  Tests of zflow as a task queue, all as processes: a journaled broker and
    a processor worker; zflow put (now, later), zflow result, zflow cancel,
    the HTTP API's results, refusals, and results across a kill -9. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_json.h"
#include "zf_testkit.h"
#include <msgpack.h>
#include <signal.h>
#include <sys/stat.h>

static char s_dir[128];      // the pipeline file and the stamp program
static char s_path[256];     // the pipeline file
static char s_journal[128];  // the broker's journal
static pid_t s_broker;       // the broker process
static int s_broker_out;     // its stdout
static pid_t s_worker;       // the processor's worker
static int s_worker_out;     // its stdout
static pid_t s_stamper;      // the stamp processor's worker
static int s_stamper_out;    // its stdout
static char s_endpoint[128]; // where actors connect
static char s_metrics[128];  // its HTTP endpoint

//  tasks -> work (the test plugin: a number n below 64 gives 2n, "fail"
//  fails) -> answers, which no actor reads: the results. stamped -> stamp
//  (a program given envelopes, which it passes on as they are; one that
//  says "slow" takes 2 s) -> stamps, results too. ranked, later and traced
//  are read by the tests themselves (traced as a task worker would).
static const char *s_config = "pipeline\n"
                              "    results = answers\n"
                              "broker\n"
                              "    metrics = 127.0.0.1:0\n"
                              "    api = true\n"
                              "queues\n"
                              "    tasks\n"
                              "        external = true\n"
                              "        max-attempts = 2\n"
                              "        retry-base = 10ms\n"
                              "        retry-max = 10ms\n"
                              "    stamped\n"
                              "        external = true\n"
                              "    stamps\n"
                              "    ranked\n"
                              "        external = true\n"
                              "    later\n"
                              "        external = true\n"
                              "    traced\n"
                              "        external = true\n"
                              "        max-attempts = 1\n"
                              "actors\n"
                              "    work\n"
                              "        kind = processor\n"
                              "        plugin = " ZFLOW_TESTPLUGIN "\n"
                              "        input = tasks\n"
                              "        output = answers\n"
                              "    stamp\n"
                              "        kind = processor\n"
                              "        command = ./stamp.sh\n"
                              "        protocol = envelope\n"
                              "        concurrency = 2\n"
                              "        input = stamped\n"
                              "        output = stamps\n";

static const char *s_stamp = "#!/bin/sh\n"
                             "while read -r line; do\n"
                             "    case \"$line\" in *slow*) sleep 2 ;; esac\n"
                             "    printf '%s\\n\\n' \"$line\"\n"
                             "done\n";

//  Starts the broker on the journal; 0 or -1.
static int
s_start_broker (void)
{
    char *argv[] = {
        (char *) ZFLOW_BIN,  "broker",    s_path,    "--endpoint", "tcp://127.0.0.1:*", "--events",
        "tcp://127.0.0.1:*", "--journal", s_journal, NULL
    };
    s_broker = zf_test_spawn (argv, &s_broker_out);
    char line[512];
    if (zf_test_read_line (s_broker_out, line, sizeof line, 10000))
        return -1;
    char *a = strstr (line, "connect to "), *m = strstr (line, "metrics on http://");
    if (!a || !m)
        return -1;
    sscanf (a + 11, "%127[^,]", s_endpoint);
    sscanf (m + 18, "%127s", s_metrics);
    char *worker[] = { ZFLOW_BIN, "actor", "work", s_path, "--broker", s_endpoint, NULL };
    s_worker = zf_test_spawn (worker, &s_worker_out);
    char *stamper[] = { ZFLOW_BIN, "actor", "stamp", s_path, "--broker", s_endpoint, NULL };
    s_stamper = zf_test_spawn (stamper, &s_stamper_out);
    return 0;
}

static void
s_stop_broker (int signal)
{
    kill (s_worker, SIGTERM);
    zf_test_reap (s_worker, 10000);
    close (s_worker_out);
    kill (s_stamper, SIGTERM);
    zf_test_reap (s_stamper, 10000);
    close (s_stamper_out);
    kill (s_broker, signal);
    zf_test_reap (s_broker, 10000);
    close (s_broker_out);
}

static int
s_setup (void **state)
{
    if (zf_test_dir_new (s_dir, sizeof s_dir, "tasks") ||
        zf_test_write (s_dir, "p.zpl", s_config) || zf_test_write (s_dir, "stamp.sh", s_stamp))
        return -1;
    snprintf (s_path, sizeof s_path, "%s/p.zpl", s_dir);
    char script[256];
    snprintf (script, sizeof script, "%s/stamp.sh", s_dir);
    chmod (script, 0755);
    if (zf_test_dir_new (s_journal, sizeof s_journal, "tasks-journal"))
        return -1;
    return s_start_broker ();
}

static int
s_teardown (void **state)
{
    s_stop_broker (SIGTERM);
    zf_test_dir_remove (s_dir);
    zf_test_dir_remove (s_journal);
    zf_test_kill_all (state);
    return 0;
}

//  The one integer of a result body.
static int64_t
s_int (const void *data, size_t size)
{
    msgpack_unpacked value;
    msgpack_unpacked_init (&value);
    int64_t n = -1;
    if (msgpack_unpack_next (&value, data, size, NULL) == MSGPACK_UNPACK_SUCCESS &&
        value.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        n = (int64_t) value.data.via.u64;
    msgpack_unpacked_destroy (&value);
    return n;
}

static void
test_put_then_result (void **state)
{
    // 1,000 tasks through zflow put; each one's computed result comes back.
    enum { COUNT = 1000 };
    char *input = (char *) malloc (COUNT * 8);
    size_t used = 0;
    for (int i = 0; i < COUNT; i++)
        used += (size_t) sprintf (input + used, "%d\n", i);
    zf_test_result_t r = zf_test_zflow (input, "put", s_endpoint, "tasks", NULL);
    free (input);
    assert_int_equal (r.status, 0);
    zf_client_t *client = zf_client_new (s_endpoint, "test-results", NULL, 0);
    char *line = r.out;
    char first[64] = "";
    for (int i = 0; i < COUNT; i++) {
        zf_id_t id;
        char hex[33];
        assert_int_equal (sscanf (line, "%32s", hex), 1);
        line = strchr (line, '\n') + 1;
        if (i == 0)
            snprintf (first, sizeof first, "%s", hex);
        assert_int_equal (zf_id_parse (&id, hex), 0);
        zf_result_t *result = zf_client_result (client, &id, 10000, 5000);
        assert_non_null (result);
        assert_string_equal (zf_result_state (result), "done");
        assert_int_equal (zf_result_count (result), 1);
        size_t size;
        const void *body = zf_result_body (result, 0, &size);
        assert_int_equal (s_int (body, size), i < 64 ? 2 * i : i);
        zf_result_destroy (&result);
    }
    zf_client_destroy (&client);
    zf_test_result_free (&r);

    // zflow result prints the same as JSON, exit 0.
    r = zf_test_zflow (NULL, "result", s_endpoint, first, "--wait", "5s", NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "\"state\":\"done\""));
    assert_non_null (strstr (r.out, "\"results\":[0]"));
    zf_test_result_free (&r);
    // An id never put: exit 2.
    r = zf_test_zflow (NULL, "result", s_endpoint, "0123456789abcdef0123456789abcdef", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "is not known to the broker"));
    zf_test_result_free (&r);
}

//  The first line of a command's output (an id), into hex.
static void
s_first_id (const char *out, char *hex)
{
    assert_int_equal (sscanf (out, "%32s", hex), 1);
}

//  zflow put of one JSON item to queue; its id into hex.
static void
s_put (char *hex, const char *queue, const char *json)
{
    zf_test_result_t r = zf_test_zflow (NULL, "put", s_endpoint, queue, json, NULL);
    assert_int_equal (r.status, 0);
    s_first_id (r.out, hex);
    zf_test_result_free (&r);
}

static void
test_a_dead_task_says_why (void **state)
{
    char id[33];
    s_put (id, "tasks", "\"fail\"");
    zf_test_result_t r = zf_test_zflow (NULL, "result", s_endpoint, id, "--wait", "10s", NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "\"state\":\"dead\""));
    assert_non_null (strstr (r.out, "\"error\":\"asked to fail\""));
    assert_non_null (strstr (r.out, "\"queue\":\"tasks\""));
    assert_non_null (strstr (r.out, "\"attempts\":2"));
    zf_test_result_free (&r);
    // zflow status says the same of the item.
    r = zf_test_zflow (NULL, "status", s_endpoint, id, NULL);
    assert_int_equal (r.status, 0);
    if (!strstr (r.out, " dead (queue tasks, attempt 2): asked to fail\n"))
        fail_msg ("status: %s", r.out);
    zf_test_result_free (&r);

    // Its dead-letter copy says why in its headers.
    zf_client_t *reader = zf_client_new (s_endpoint, "dead-reader", "tasks.dead", 1);
    zf_item_t *item = zf_client_next (reader, 10000);
    assert_non_null (item);
    size_t size;
    const void *headers = zf_item_headers (item, &size);
    assert_non_null (headers);
    char *json = zf_msgpack_to_json (headers, size, NULL);
    if (!strstr (json, "\"zflow-queue\":\"tasks\",\"zflow-consumer\":\"work\","
                       "\"zflow-attempts\":\"2\",\"zflow-error\":\"asked to fail\""))
        fail_msg ("dead-letter headers: %s", json);
    free (json);
    zf_client_ack (reader, &item);
    zf_client_destroy (&reader);
}

static void
test_a_queue_the_pipeline_lacks_is_refused (void **state)
{
    zf_test_result_t r = zf_test_zflow (NULL, "put", s_endpoint, "taskz", "1", NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "refused: no queue 'taskz' in pipeline"));
    zf_test_result_free (&r);
}

static void
test_delay_and_cancel (void **state)
{
    // A task put 400 ms ahead is delayed meanwhile, and done after.
    int64_t put_at = zclock_time ();
    zf_test_result_t r =
        zf_test_zflow (NULL, "put", s_endpoint, "tasks", "5", "--delay", "400ms", NULL);
    assert_int_equal (r.status, 0);
    char later[33];
    s_first_id (r.out, later);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "status", s_endpoint, later, NULL);
    if (zclock_time () - put_at < 400)
        assert_non_null (strstr (r.out, "delayed"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "result", s_endpoint, later, "--wait", "10s", NULL);
    assert_int_equal (r.status, 0);
    assert_true (zclock_time () - put_at >= 400);
    assert_non_null (strstr (r.out, "\"results\":[10]"));
    zf_test_result_free (&r);

    // One put an hour ahead and cancelled: it never runs, and says why.
    r = zf_test_zflow (NULL, "put", s_endpoint, "tasks", "6", "--delay", "1h", NULL);
    char never[33];
    s_first_id (r.out, never);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "cancel", s_endpoint, never, "--reason", "no longer wanted", NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "cancelled"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "result", s_endpoint, never, NULL);
    assert_non_null (
        strstr (r.out, "\"state\":\"cancelled\",\"error\":\"no longer wanted\",\"results\":[]"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "status", s_endpoint, never, NULL);
    char *expected = zsys_sprintf ("%s cancelled: no longer wanted\n", never);
    assert_string_equal (r.out, expected);
    zstr_free (&expected);
    zf_test_result_free (&r);
    // A cancel of the task done already changes nothing.
    r = zf_test_zflow (NULL, "cancel", s_endpoint, later, NULL);
    assert_int_equal (r.status, 0);
    expected = zsys_sprintf ("%s done\n", later);
    assert_string_equal (r.out, expected);
    zstr_free (&expected);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "result", s_endpoint, later, NULL);
    assert_non_null (strstr (r.out, "\"state\":\"done\",\"results\":[10]"));
    zf_test_result_free (&r);
}

static void
test_a_program_gets_the_envelope (void **state)
{
    // The stamp program passes on what it was given: the item's id,
    // attempt, queue and the headers it was put with, around its body.
    zf_test_result_t r = zf_test_zflow (NULL, "put", s_endpoint, "stamped", "{\"n\":1}",
                                        "--headers", "{\"tenant\":\"acme\"}", NULL);
    assert_int_equal (r.status, 0);
    char id[33];
    s_first_id (r.out, id);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "result", s_endpoint, id, "--wait", "10s", NULL);
    assert_int_equal (r.status, 0);
    char envelope[256];
    snprintf (envelope, sizeof envelope,
              "\"results\":[{\"id\":\"%s\",\"attempt\":1,\"queue\":\"stamped\","
              "\"headers\":{\"tenant\":\"acme\"},\"body\":{\"n\":1}}]",
              id);
    if (!strstr (r.out, envelope))
        fail_msg ("%s lacks %s", r.out, envelope);
    zf_test_result_free (&r);

    // Headers that are not a map of strings are refused before anything is put.
    r = zf_test_zflow (NULL, "put", s_endpoint, "stamped", "1", "--headers", "{\"n\":1}", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "--headers: header 0: expected str"));
    assert_string_equal (r.out, "");
    zf_test_result_free (&r);
}

static void
test_cancel_of_a_running_task (void **state)
{
    // A slow task is cancelled while the program works on it: its output,
    // when it comes, is dropped, and the task stays cancelled.
    char id[33];
    s_put (id, "stamped", "\"slow\"");
    zf_test_result_t r;
    int64_t deadline = zclock_mono () + 10000;
    bool running = false;
    while (!running && zclock_mono () < deadline) {
        r = zf_test_zflow (NULL, "status", s_endpoint, id, NULL);
        running = strstr (r.out, "delivered") != NULL;
        zf_test_result_free (&r);
        if (!running)
            zclock_sleep (20); // bounded poll of the broker
    }
    assert_true (running);
    r = zf_test_zflow (NULL, "cancel", s_endpoint, id, NULL);
    assert_int_equal (r.status, 0);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "result", s_endpoint, id, "--wait", "10s", NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "\"state\":\"cancelled\""));
    zf_test_result_free (&r);

    // The program ends the item: once the stamp worker has acked it (its
    // queue shows nothing in flight), the output it made was not kept.
    zf_client_t *client = zf_client_new (s_endpoint, "test-cancel", NULL, 0);
    bool idle = false;
    while (!idle && zclock_mono () < deadline) {
        size_t count = 0;
        zf_figures_t *queues = zf_client_queues (client, &count, 5000);
        for (size_t i = 0; queues && i < count; i++)
            if (streq (queues[i].name, "stamped"))
                idle = queues[i].inflight == 0 && queues[i].ack > 0;
        free (queues);
        if (!idle)
            zclock_sleep (50);
    }
    zf_client_destroy (&client);
    assert_true (idle);
    r = zf_test_zflow (NULL, "result", s_endpoint, id, NULL);
    assert_non_null (strstr (r.out, "\"state\":\"cancelled\""));
    assert_non_null (strstr (r.out, "\"results\":[]"));
    zf_test_result_free (&r);
}

//  Puts the integer n with opts.
static void
s_put_int (zf_client_t *client, const char *queue, int n, const zf_put_opts_t *opts)
{
    char body[16];
    msgpack_sbuffer buffer = { .data = body, .alloc = sizeof body };
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_int (&pk, n);
    assert_int_equal (zf_client_put_with (client, queue, body, buffer.size, opts, NULL), 0);
}

static void
test_results_come_to_a_tracking_client (void **state)
{
    // 200 tasks tracked: each one's result comes as its lineage ends,
    // without asking; a failing one's says why.
    enum { COUNT = 200 };
    zf_client_t *client = zf_client_new (s_endpoint, "test-track", NULL, 0);
    zf_client_track (client, true);
    zf_id_t ids[COUNT];
    for (int i = 0; i < COUNT; i++) {
        ids[i] = zf_id_random ();
        zf_put_opts_t opts = { .id = &ids[i] };
        s_put_int (client, "tasks", i, &opts);
    }
    zf_id_t failing;
    assert_int_equal (zf_client_put_str (client, "tasks", "fail", &failing), 0);
    bool seen[COUNT] = { false };
    int done = 0, dead = 0;
    for (int taken = 0; taken < COUNT + 1; taken++) {
        zf_result_t *result = zf_client_next_result (client, 10000);
        assert_non_null (result);
        if (streq (zf_result_state (result), "dead")) {
            assert_true (zf_id_eq (zf_result_root (result), &failing));
            assert_string_equal (zf_result_reason (result), "asked to fail");
            assert_int_equal (zf_result_attempts (result), 2);
            dead++;
        }
        else {
            assert_string_equal (zf_result_state (result), "done");
            assert_int_equal (zf_result_count (result), 1);
            size_t size;
            const void *body = zf_result_body (result, 0, &size);
            int i = 0;
            while (i < COUNT && !zf_id_eq (&ids[i], zf_result_root (result)))
                i++;
            assert_true (i < COUNT && !seen[i]);
            assert_int_equal (s_int (body, size), i < 64 ? 2 * i : i);
            seen[i] = true;
            done++;
        }
        zf_result_destroy (&result);
    }
    assert_int_equal (done, COUNT);
    assert_int_equal (dead, 1);
    zf_client_destroy (&client);
}

static void
test_priorities_order_delivery (void **state)
{
    // 60 items of mixed priorities wait for their first reader, which takes
    // one at a time: higher priorities first, in the order put within one.
    enum { COUNT = 60 };
    zf_client_t *client = zf_client_new (s_endpoint, "test-ranked", NULL, 0);
    for (int i = 0; i < COUNT; i++) {
        zf_put_opts_t opts = { .priority = (i * 7) % 10 };
        s_put_int (client, "ranked", i, &opts);
    }
    assert_int_equal (zf_client_flush (client, 10000), 0);
    zf_client_t *reader = zf_client_new (s_endpoint, "reader", "ranked", 1);
    int last = -1;
    for (int taken = 0; taken < COUNT; taken++) {
        zf_item_t *item = zf_client_next (reader, 10000);
        assert_non_null (item);
        int n = (int) zf_test_body_int (item);
        if (last >= 0) {
            int was = (last * 7) % 10, now = (n * 7) % 10;
            if (now > was || (now == was && n < last))
                fail_msg ("item %d (priority %d) came after %d (priority %d)", n, now, last, was);
        }
        last = n;
        zf_client_ack (reader, &item);
    }
    zf_client_destroy (&reader);
    zf_client_destroy (&client);
}

static void
test_delayed_items_come_when_due (void **state)
{
    // Each item comes no earlier than its time, and soon after it (the
    // bound is generous: this is no test of speed).
    enum { COUNT = 8 };
    zf_client_t *client = zf_client_new (s_endpoint, "test-later", NULL, 0);
    zf_client_t *reader = zf_client_new (s_endpoint, "reader", "later", COUNT);
    int64_t due[COUNT];
    int64_t start = zclock_time ();
    for (int i = 0; i < COUNT; i++) {
        due[i] = start + 100 + 60 * ((i * 5) % COUNT); // out of order
        zf_put_opts_t opts = { .not_before = due[i] };
        s_put_int (client, "later", i, &opts);
    }
    assert_int_equal (zf_client_flush (client, 10000), 0);
    int64_t worst = 0;
    for (int taken = 0; taken < COUNT; taken++) {
        zf_item_t *item = zf_client_next (reader, 10000);
        assert_non_null (item);
        int64_t now = zclock_time ();
        int n = (int) zf_test_body_int (item);
        assert_true (n >= 0 && n < COUNT);
        if (now < due[n])
            fail_msg ("item %d came %lld ms early", n, (long long) (due[n] - now));
        if (now - due[n] > worst)
            worst = now - due[n];
        zf_client_ack (reader, &item);
    }
    print_message ("delayed items came at most %lld ms after their time\n", (long long) worst);
    assert_true (worst < 2000);
    zf_client_destroy (&reader);
    zf_client_destroy (&client);
}

static void
test_results_expire_after_their_ttl (void **state)
{
    // A broker of its own keeps results 1 s: a result is there when its
    // task ends, and let go some time after (its state is still known:
    // the broker remembers the id for deduplication).
    char dir[128];
    assert_int_equal (zf_test_dir_new (dir, sizeof dir, "tasks-ttl"), 0);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (dir,
                                          "broker\n"
                                          "    result-ttl = 1s\n"
                                          "queues\n"
                                          "    tasks\n"
                                          "        external = true\n"
                                          "actors\n"
                                          "    work\n"
                                          "        kind = processor\n"
                                          "        plugin = " ZFLOW_TESTPLUGIN "\n"
                                          "        input = tasks\n"
                                          "        output = answers\n",
                                          &pipeline);
    assert_non_null (broker);
    pid_t worker = zf_test_actor (dir, broker, "work");
    zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "test-ttl", NULL, 0);
    zf_id_t id = zf_id_random ();
    zf_put_opts_t opts = { .id = &id };
    s_put_int (client, "tasks", 8, &opts);
    assert_int_equal (zf_client_flush (client, 10000), 0);
    zf_result_t *result = zf_client_result (client, &id, 10000, 5000);
    assert_non_null (result);
    assert_string_equal (zf_result_state (result), "done");
    assert_int_equal (zf_result_count (result), 1);
    int64_t ended = zclock_time ();
    zf_result_destroy (&result);
    bool gone = false;
    int polls = 0;
    while (!gone && zclock_time () - ended < 10000) {
        result = zf_client_result (client, &id, 0, 5000);
        assert_non_null (result);
        assert_string_equal (zf_result_state (result), "done");
        gone = zf_result_count (result) == 0;
        if (gone)
            assert_true (polls > 0); // it was kept at first
        zf_result_destroy (&result);
        polls++;
        if (!gone)
            zclock_sleep (50); // bounded poll of the broker
    }
    assert_true (gone);
    zf_client_destroy (&client);
    kill (worker, SIGTERM);
    zf_test_reap (worker, 10000);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zf_test_dir_remove (dir);
}

//  A web app's side: tasks over HTTP, their results by GET /results/ID?wait.
static const char *s_check_api =
    "import json, sys, urllib.request, urllib.error\n"
    "base = 'http://' + sys.argv[1]\n"
    "def call(method, path, body=None, headers={}):\n"
    "    request = urllib.request.Request(base + path, data=body, method=method, "
    "headers=headers)\n"
    "    try:\n"
    "        with urllib.request.urlopen(request) as answer:\n"
    "            return answer.status, json.loads(answer.read())\n"
    "    except urllib.error.HTTPError as e:\n"
    "        return e.code, json.loads(e.read())\n"
    "ids = []\n"
    "for n in range(1000):\n"
    "    body = json.dumps({'body': n, 'priority': n % 10} if n % 2 else n).encode()\n"
    "    status, answer = call('POST', '/queues/tasks', body, {'Zflow-Envelope': '1'} if n % 2 "
    "else {})\n"
    "    assert status == 200, (status, answer)\n"
    "    ids.append(answer['id'])\n"
    "for n, id in enumerate(ids):\n"
    "    status, answer = call('GET', '/results/' + id + '?wait=10s')\n"
    "    assert status == 200 and answer['state'] == 'done', answer\n"
    "    assert answer['results'] == [2 * n if n < 64 else n], (n, answer)\n"
    "status, answer = call('POST', '/queues/nosuch', b'1')\n"
    "assert status == 404 and \"no queue 'nosuch'\" in answer['error'], (status, answer)\n"
    "status, answer = call('POST', '/queues/tasks', b'1', {'Zflow-Priority': '12'})\n"
    "assert status == 400, (status, answer)\n"
    "status, answer = call('POST', '/queues/tasks', b'7', {'Zflow-Delay': '1h'})\n"
    "status, gone = call('DELETE', '/messages/' + answer['id'])\n"
    "assert status == 200 and gone['state'] == 'cancelled', gone\n"
    "status, gone = call('GET', '/results/' + answer['id'])\n"
    "assert gone['state'] == 'cancelled' and gone['error'] == 'cancelled over HTTP', gone\n"
    "assert 'queue' not in gone, gone\n"
    "status, answer = call('GET', '/results/0123456789abcdef0123456789abcdef')\n"
    "assert status == 404 and answer['state'] == 'unknown', answer\n"
    "status, answer = call('POST', '/queues/stamped', "
    "json.dumps({'body': 3, 'headers': {'tenant': 'web'}}).encode(), {'Zflow-Envelope': '1'})\n"
    "assert status == 200, (status, answer)\n"
    "status, done = call('GET', '/results/' + answer['id'] + '?wait=10s')\n"
    "[stamp] = done['results']\n"
    "assert stamp['id'] == answer['id'] and stamp['headers'] == {'tenant': 'web'}, done\n"
    "assert stamp['body'] == 3 and stamp['attempt'] == 1, done\n"
    "status, answer = call('POST', '/queues/tasks', b'\"fail\"')\n"
    "status, done = call('GET', '/results/' + answer['id'] + '?wait=10s')\n"
    "assert done['state'] == 'dead' and done['error'] == 'asked to fail', done\n"
    "status, item = call('GET', '/messages/' + answer['id'])\n"
    "assert status == 200 and item['state'] == 'dead' and item['attempts'] == 2, item\n"
    "assert item['error'] == 'asked to fail' and item['queue'] == 'tasks', item\n"
    "status, answer = call('POST', '/queues/stamped', b'{\"body\": 3, \"headers\": {\"n\": 1}}', "
    "{'Zflow-Envelope': '1'})\n"
    "assert status == 400 and 'headers' in answer['error'], (status, answer)\n"
    "print('ok')\n";

static void
test_a_put_over_max_frame_is_refused (void **state)
{
    // zflow put of an item over the broker's max-frame says so at once,
    // with its size and the limit, and puts the others (exit 2, as for a
    // bad argument); it does not wait out its time.
    char dir[128];
    assert_int_equal (zf_test_dir_new (dir, sizeof dir, "tasks-frame"), 0);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (dir,
                                          "broker\n"
                                          "    max-frame = 4KiB\n"
                                          "queues\n"
                                          "    tasks\n"
                                          "        external = true\n"
                                          "actors\n"
                                          "    work\n"
                                          "        kind = sink\n"
                                          "        input = tasks\n"
                                          "        target = null\n",
                                          &pipeline);
    assert_non_null (broker);
    static char big[5003];
    memset (big, 'x', sizeof big - 1);
    big[0] = big[sizeof big - 2] = '"';
    zf_test_result_t r =
        zf_test_zflow (NULL, "put", zf_broker_endpoint (broker), "tasks", big, "1", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "zflow put: argument 1: an item of 5003 bytes is over the "
                                    "broker's max-frame (4096 bytes): not put"));
    assert_int_equal (strlen (r.out), 33); // the other's id
    zf_test_result_free (&r);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zf_test_dir_remove (dir);
}

//  Nothing listening: zflow put says that no broker answered, not that
//  one was slow to confirm.
static void
test_a_put_to_no_broker_says_none_answered (void **state)
{
    (void) state;
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", zf_test_free_port ());
    zf_test_result_t r =
        zf_test_zflow (NULL, "put", endpoint, "tasks", "1", "--timeout", "1s", NULL);
    assert_int_equal (r.status, 1);
    char expected[160];
    snprintf (expected, sizeof expected, "zflow put: no broker answered at %s within 1000 ms",
              endpoint);
    if (!strstr (r.err, expected))
        fail_msg ("expected '%s' in: %s", expected, r.err);
    assert_string_equal (r.out, ""); // no id: nothing was stored
    zf_test_result_free (&r);
}

static void
test_a_put_to_a_full_queue_says_so (void **state)
{
    // zflow put to a queue at max-depth fails within its --timeout, naming
    // the queue and its limit; what was put before stays, nothing more.
    char dir[128];
    assert_int_equal (zf_test_dir_new (dir, sizeof dir, "tasks-full"), 0);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (dir,
                                          "queues\n"
                                          "    tasks\n"
                                          "        external = true\n"
                                          "        max-depth = 2\n"
                                          "actors\n"
                                          "    work\n"
                                          "        kind = sink\n"
                                          "        input = tasks\n"
                                          "        target = null\n",
                                          &pipeline);
    assert_non_null (broker);
    const char *endpoint = zf_broker_endpoint (broker);
    zf_test_result_t r = zf_test_zflow (NULL, "put", endpoint, "tasks", "1", "2", NULL);
    assert_int_equal (r.status, 0);
    assert_int_equal (strlen (r.out), 2 * 33); // both ids, once confirmed
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "put", endpoint, "tasks", "3", "--timeout", "2s", NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (
        strstr (r.err, "zflow put: the broker refused: queue 'tasks' is full (max-depth 2)"));
    assert_string_equal (r.out, ""); // no id for an item that was not stored
    zf_test_result_free (&r);
    zf_client_t *client = zf_client_new (endpoint, "test-full", NULL, 0);
    size_t count = 0;
    zf_figures_t *queues = zf_client_queues (client, &count, 5000);
    assert_non_null (queues);
    assert_int_equal (count, 1);
    assert_int_equal (queues[0].depth, 2);
    assert_int_equal (queues[0].put, 2);
    free (queues);
    zf_client_destroy (&client);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zf_test_dir_remove (dir);
}

static void
test_http_tasks (void **state)
{
    zf_test_result_t r = zf_test_run (
        (char *[]){ "/usr/bin/python3", "-c", (char *) s_check_api, s_metrics, NULL }, NULL);
    if (r.status != 0 || !strstr (r.out, "ok"))
        fail_msg ("api: %s %s", r.out, r.err);
    zf_test_result_free (&r);
}

static void
test_a_result_survives_kill_9 (void **state)
{
    char id[33];
    s_put (id, "tasks", "21");
    zf_test_result_t r;
    r = zf_test_zflow (NULL, "result", s_endpoint, id, "--wait", "10s", NULL);
    assert_int_equal (r.status, 0);
    zf_test_result_free (&r);
    s_stop_broker (SIGKILL);
    assert_int_equal (s_start_broker (), 0);
    r = zf_test_zflow (NULL, "result", s_endpoint, id, NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "\"state\":\"done\""));
    assert_non_null (strstr (r.out, "\"results\":[42]"));
    zf_test_result_free (&r);
}

//  What a client sees of a task that failed with a traceback: zflow status
//  prints it under the reason, zflow result and the HTTP API give it.
static const char *s_check_detail =
    "import json, sys, urllib.request\n"
    "base = 'http://' + sys.argv[1]\n"
    "for path in ('/messages/', '/results/'):\n"
    "    with urllib.request.urlopen(base + path + sys.argv[2]) as answer:\n"
    "        got = json.loads(answer.read())\n"
    "    assert got['state'] == 'dead' and got['error'] == 'ValueError: bad x', got\n"
    "    assert got['detail'] == sys.argv[3], got\n"
    "print('ok')\n";

static void
test_a_traceback_is_shown (void **state)
{
    const char *traceback = "Traceback (most recent call last):\n"
                            "  File \"t.py\", line 2, in run\n"
                            "ValueError: bad x";
    char id[33];
    s_put (id, "traced", "\"x\"");
    zf_client_t *worker = zf_client_new (s_endpoint, "tracer", "traced", 1);
    zf_item_t *item = zf_client_next (worker, 10000);
    assert_non_null (item);
    zf_client_nack_detail (worker, &item, "ValueError: bad x", traceback, false, 0);
    char state_text[32];
    zf_id_t task;
    zf_id_parse (&task, id);
    assert_int_equal (zf_client_status (worker, &task, state_text, sizeof state_text, 5000), 0);
    assert_string_equal (state_text, "dead"); // max-attempts 1

    zf_test_result_t r = zf_test_zflow (NULL, "status", s_endpoint, id, NULL);
    assert_int_equal (r.status, 0);
    char *expected = zsys_sprintf ("%s dead (queue traced, attempt 1): ValueError: bad x\n"
                                   "    Traceback (most recent call last):\n"
                                   "      File \"t.py\", line 2, in run\n"
                                   "    ValueError: bad x\n",
                                   id);
    assert_string_equal (r.out, expected);
    zstr_free (&expected);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "result", s_endpoint, id, NULL);
    assert_int_equal (r.status, 0);
    if (!strstr (r.out, "\"error\":\"ValueError: bad x\",\"queue\":\"traced\",\"attempts\":1,"
                        "\"detail\":\"Traceback (most recent call last):\\u000a  File "
                        "\\\"t.py\\\", line 2, in run\\u000aValueError: bad x\""))
        fail_msg ("result: %s", r.out);
    zf_test_result_free (&r);
    r = zf_test_run ((char *[]){ "/usr/bin/python3", "-c", (char *) s_check_detail, s_metrics, id,
                                 (char *) traceback, NULL },
                     NULL);
    if (r.status != 0 || !strstr (r.out, "ok"))
        fail_msg ("api: %s %s", r.out, r.err);
    zf_test_result_free (&r);
    zf_client_destroy (&worker);
}

//  What a client sees of a task that says how far it is.
static const char *s_check_progress =
    "import json, sys, urllib.request\n"
    "base = 'http://' + sys.argv[1]\n"
    "with urllib.request.urlopen(base + '/messages/' + sys.argv[2]) as answer:\n"
    "    got = json.loads(answer.read())\n"
    "assert got['state'] == 'delivered', got\n"
    "assert got['progress'] == 0.425 and got['note'] == 'resizing images', got\n"
    "with urllib.request.urlopen(base + '/results/' + sys.argv[2]) as answer:\n"
    "    got = json.loads(answer.read())\n"
    "assert got['progress'] == 0.425 and got['results'] == [], got\n"
    "print('ok')\n";

static void
test_a_tasks_progress_is_shown (void **state)
{
    char id[33];
    s_put (id, "traced", "\"album\"");
    zf_client_t *worker = zf_client_new (s_endpoint, "tracer", "traced", 1);
    zf_item_t *item = zf_client_next (worker, 10000);
    assert_non_null (item);
    assert_int_equal (zf_client_progress (worker, item, 1001, NULL), -1);
    assert_int_equal (zf_client_progress (worker, item, 425, "resizing images"), 0);
    char state_text[32];
    zf_id_t task;
    zf_id_parse (&task, id);
    assert_int_equal (zf_client_status (worker, &task, state_text, sizeof state_text, 5000), 0);

    zf_test_result_t r = zf_test_zflow (NULL, "status", s_endpoint, id, NULL);
    assert_int_equal (r.status, 0);
    char *expected = zsys_sprintf ("%s delivered\n    progress 42.5%% resizing images\n", id);
    assert_string_equal (r.out, expected);
    zstr_free (&expected);
    zf_test_result_free (&r);
    r = zf_test_run (
        (char *[]){ "/usr/bin/python3", "-c", (char *) s_check_progress, s_metrics, id, NULL },
        NULL);
    if (r.status != 0 || !strstr (r.out, "ok"))
        fail_msg ("api: %s %s", r.out, r.err);
    zf_test_result_free (&r);

    // Done, it says no more.
    zf_client_ack (worker, &item);
    assert_int_equal (zf_client_status (worker, &task, state_text, sizeof state_text, 5000), 0);
    assert_string_equal (state_text, "done");
    r = zf_test_zflow (NULL, "status", s_endpoint, id, NULL);
    expected = zsys_sprintf ("%s done\n", id);
    assert_string_equal (r.out, expected);
    zstr_free (&expected);
    zf_test_result_free (&r);
    zf_client_destroy (&worker);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_put_then_result),
        cmocka_unit_test (test_a_dead_task_says_why),
        cmocka_unit_test (test_a_queue_the_pipeline_lacks_is_refused),
        cmocka_unit_test (test_delay_and_cancel),
        cmocka_unit_test (test_a_program_gets_the_envelope),
        cmocka_unit_test (test_cancel_of_a_running_task),
        cmocka_unit_test (test_results_come_to_a_tracking_client),
        cmocka_unit_test (test_priorities_order_delivery),
        cmocka_unit_test (test_delayed_items_come_when_due),
        cmocka_unit_test (test_results_expire_after_their_ttl),
        cmocka_unit_test (test_a_put_over_max_frame_is_refused),
        cmocka_unit_test (test_a_put_to_a_full_queue_says_so),
        cmocka_unit_test (test_a_put_to_no_broker_says_none_answered),
        cmocka_unit_test (test_http_tasks),
        cmocka_unit_test (test_a_traceback_is_shown),
        cmocka_unit_test (test_a_tasks_progress_is_shown),
        cmocka_unit_test (test_a_result_survives_kill_9),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
