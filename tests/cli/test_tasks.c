/*  Tests of zflow as a task queue, all as processes: a journaled broker and
    a processor worker; zflow put (now, later), zflow result, zflow cancel,
    the HTTP API's results, refusals, and results across a kill -9. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_testkit.h"
#include <msgpack.h>
#include <signal.h>

static char s_path[256];     // the pipeline file
static char s_journal[128];  // the broker's journal
static pid_t s_broker;       // the broker process
static int s_broker_out;     // its stdout
static pid_t s_worker;       // the processor's worker
static int s_worker_out;     // its stdout
static char s_endpoint[128]; // where actors connect
static char s_metrics[128];  // its HTTP endpoint

//  tasks -> work (the test plugin: a number n below 64 gives 2n, "fail"
//  fails) -> answers, which no actor reads: the results.
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
                              "actors\n"
                              "    work\n"
                              "        kind = processor\n"
                              "        plugin = " ZFLOW_TESTPLUGIN "\n"
                              "        input = tasks\n"
                              "        output = answers\n";

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
    return 0;
}

static void
s_stop_broker (int signal)
{
    kill (s_worker, SIGTERM);
    zf_test_reap (s_worker, 10000);
    close (s_worker_out);
    kill (s_broker, signal);
    zf_test_reap (s_broker, 10000);
    close (s_broker_out);
}

static int
s_setup (void **state)
{
    snprintf (s_path, sizeof s_path, "/tmp/zflow-test-tasks-XXXXXX.zpl");
    int fd = mkstemps (s_path, 4);
    if (fd < 0 || write (fd, s_config, strlen (s_config)) < 0)
        return -1;
    close (fd);
    if (zf_test_dir_new (s_journal, sizeof s_journal, "tasks-journal"))
        return -1;
    return s_start_broker ();
}

static int
s_teardown (void **state)
{
    s_stop_broker (SIGTERM);
    unlink (s_path);
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

static void
test_a_dead_task_says_why (void **state)
{
    zf_test_result_t r = zf_test_zflow (NULL, "put", s_endpoint, "tasks", "\"fail\"", NULL);
    assert_int_equal (r.status, 0);
    char id[33];
    s_first_id (r.out, id);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "result", s_endpoint, id, "--wait", "10s", NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "\"state\":\"dead\""));
    assert_non_null (strstr (r.out, "\"error\":\"asked to fail\""));
    assert_non_null (strstr (r.out, "\"queue\":\"tasks\""));
    assert_non_null (strstr (r.out, "\"attempts\":2"));
    zf_test_result_free (&r);
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

    // One put an hour ahead and cancelled: it never runs.
    r = zf_test_zflow (NULL, "put", s_endpoint, "tasks", "6", "--delay", "1h", NULL);
    char never[33];
    s_first_id (r.out, never);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "cancel", s_endpoint, never, NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "cancelled"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "result", s_endpoint, never, NULL);
    assert_non_null (strstr (r.out, "\"state\":\"cancelled\""));
    assert_non_null (strstr (r.out, "\"results\":[]"));
    zf_test_result_free (&r);
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
    "    status, answer = call('POST', '/queues/tasks', body)\n"
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
    "status, answer = call('GET', '/results/0123456789abcdef0123456789abcdef')\n"
    "assert status == 404 and answer['state'] == 'unknown', answer\n"
    "print('ok')\n";

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
    zf_test_result_t r = zf_test_zflow (NULL, "put", s_endpoint, "tasks", "21", NULL);
    char id[33];
    s_first_id (r.out, id);
    zf_test_result_free (&r);
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

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_put_then_result),
        cmocka_unit_test (test_a_dead_task_says_why),
        cmocka_unit_test (test_a_queue_the_pipeline_lacks_is_refused),
        cmocka_unit_test (test_delay_and_cancel),
        cmocka_unit_test (test_http_tasks),
        cmocka_unit_test (test_a_result_survives_kill_9),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
