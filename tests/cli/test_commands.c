/*  Tests of the commands that run and talk to a broker, all as processes:
    zflow broker, an actor process, zflow put, zflow status, zflow tap,
    zflow journal repair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_testkit.h"
#include <msgpack.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_path[256];     // the pipeline file
static pid_t s_broker;       // the broker process
static int s_broker_out;     // its stdout
static char s_endpoint[128]; // where actors connect
static char s_events[128];   // where taps connect

static char s_metrics[128]; // its HTTP endpoint, ADDRESS:PORT
static char s_journal[128]; // its journal's folder

static const char *s_config = "broker\n"
                              "    metrics = 127.0.0.1:0\n"
                              "    api = true\n"
                              "queues\n"
                              "    jobs\n"
                              "        external = true\n"
                              "    metered\n"
                              "        external = true\n"
                              "    flood\n"
                              "        external = true\n"
                              "    sampled\n"
                              "        external = true\n"
                              "        max-attempts = 2\n"
                              "        retry-base = 10ms\n"
                              "actors\n"
                              "    work\n"
                              "        kind = sink\n"
                              "        input = jobs\n"
                              "        target = null\n"
                              "    meter\n"
                              "        kind = sink\n"
                              "        input = metered\n"
                              "        target = null\n"
                              "    sampler\n"
                              "        kind = sink\n"
                              "        input = sampled\n"
                              "        target = null\n"
                              "    drain\n"
                              "        kind = sink\n"
                              "        input = flood\n"
                              "        target = null\n";

static int
s_setup (void **state)
{
    snprintf (s_path, sizeof s_path, "/tmp/zflow-test-commands-XXXXXX.zpl");
    int fd = mkstemps (s_path, 4);
    if (fd < 0 || write (fd, s_config, strlen (s_config)) < 0)
        return -1;
    close (fd);
    if (zf_test_dir_new (s_journal, sizeof s_journal, "commands-journal"))
        return -1;
    char *argv[] = {
        (char *) ZFLOW_BIN,  "broker",    s_path,    "--endpoint", "tcp://127.0.0.1:*", "--events",
        "tcp://127.0.0.1:*", "--journal", s_journal, NULL
    };
    s_broker = zf_test_spawn (argv, &s_broker_out);
    char line[512];
    if (zf_test_read_line (s_broker_out, line, sizeof line, 10000))
        return -1;
    // "zflow broker: pipeline NAME: actors connect to E, events on E2"
    char *a = strstr (line, "connect to "), *e = strstr (line, "events on ");
    if (!a || !e)
        return -1;
    sscanf (a + 11, "%127[^,]", s_endpoint);
    sscanf (e + 10, "%127[^,]", s_events);
    char *m = strstr (line, "metrics on http://");
    if (!m)
        return -1;
    sscanf (m + 18, "%127s", s_metrics);
    return 0;
}

static int
s_teardown (void **state)
{
    // The broker first, asked to stop; then whatever a failed test left.
    kill (s_broker, SIGTERM);
    int status = zf_test_reap (s_broker, 10000);
    close (s_broker_out);
    unlink (s_path);
    zf_test_dir_remove (s_journal);
    zf_test_kill_all (state);
    // The broker stops cleanly on SIGTERM.
    return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -1;
}

//  The state zflow status prints for id.
static void
s_expect_state (const char *id, const char *state)
{
    char expected[128];
    snprintf (expected, sizeof expected, "%s %s", id, state);
    size_t len = strlen (expected);
    // The worker acks asynchronously: look again, for at most 10 s. A
    // failed item's line goes on with where and why.
    for (int tries = 0; tries < 100; tries++) {
        zf_test_result_t r = zf_test_zflow (NULL, "status", s_endpoint, id, NULL);
        assert_int_equal (r.status, 0);
        bool same =
            strncmp (r.out, expected, len) == 0 && (r.out[len] == '\n' || r.out[len] == ' ');
        zf_test_result_free (&r);
        if (same)
            return;
        zclock_sleep (100); // bounded: 100 tries
    }
    fail_msg ("%s never reached state %s", id, state);
}

static void
test_put_status_tap (void **state)
{
    // A tap on the queue's data and the stats. A first stats line shows its
    // subscriptions have reached the broker: a tap sees only later items.
    char *tap_argv[] = { (char *) ZFLOW_BIN, "tap", s_events, "stats", "data.jobs", NULL };
    int tap_out;
    pid_t tap = zf_test_spawn (tap_argv, &tap_out);
    char line[4096];
    assert_int_equal (zf_test_read_line (tap_out, line, sizeof line, 5000), 0);
    assert_non_null (strstr (line, "{\"topic\":\"stats\",\"seq\":"));

    zf_test_result_t r =
        zf_test_zflow (NULL, "put", s_endpoint, "jobs", "{\"n\": 1}", "\"two\"", NULL);
    assert_int_equal (r.status, 0);
    char id1[33], id2[33];
    assert_int_equal (sscanf (r.out, "%32s\n%32s", id1, id2), 2);
    zf_test_result_free (&r);

    // stdin lines; a bad one is reported with its line number, the rest go in
    r = zf_test_zflow ("[3]\n{oops}\n", "put", s_endpoint, "jobs", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "stdin:2: bad JSON: column 2: expected '\"' to start a key"));
    char id3[33];
    assert_int_equal (sscanf (r.out, "%32s", id3), 1);
    zf_test_result_free (&r);

    // Nobody consumes yet: queued.
    s_expect_state (id1, "queued");
    r = zf_test_zflow (NULL, "status", s_endpoint, NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "QUEUE"));
    char name[64];
    unsigned long long depth;
    char *row = strstr (r.out, "\njobs ");
    assert_non_null (row);
    assert_int_equal (sscanf (row + 1, "%63s %llu", name, &depth), 2);
    assert_int_equal (depth, 3);
    zf_test_result_free (&r);

    // The tap saw the three items with their bodies as JSON, in order.
    static const char *bodies[] = { "\"body\":{\"n\":1}", "\"body\":\"two\"", "\"body\":[3]" };
    for (int i = 0; i < 3; i++) {
        do
            assert_int_equal (zf_test_read_line (tap_out, line, sizeof line, 5000), 0);
        while (strstr (line, "\"topic\":\"stats\""));
        assert_non_null (strstr (line, "\"topic\":\"data.jobs\",\"seq\":"));
        assert_non_null (strstr (line, bodies[i]));
    }
    kill (tap, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (tap, 5000)), 0);
    close (tap_out);

    // A worker process handles them: done.
    char *worker_argv[] = { (char *) ZFLOW_TESTACTOR, s_endpoint, "work", "jobs", NULL };
    int worker_out;
    pid_t worker = zf_test_spawn (worker_argv, &worker_out);
    s_expect_state (id1, "done");
    s_expect_state (id2, "done");
    s_expect_state (id3, "done");
    kill (worker, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (worker, 5000)), 0);
    close (worker_out);
}

static void
test_dead_letter_visible (void **state)
{
    // A worker that always fails: after max-attempts (5) the item is dead.
    char *worker_argv[] = { (char *) ZFLOW_TESTACTOR, s_endpoint, "work", "jobs",
                            "--fail-first",           "99",       NULL };
    int worker_out;
    pid_t worker = zf_test_spawn (worker_argv, &worker_out);
    zf_test_result_t r = zf_test_zflow (NULL, "put", s_endpoint, "jobs", "\"poison\"", NULL);
    assert_int_equal (r.status, 0);
    char id[33];
    assert_int_equal (sscanf (r.out, "%32s", id), 1);
    zf_test_result_free (&r);
    s_expect_state (id, "dead");
    r = zf_test_zflow (NULL, "status", s_endpoint, id, NULL);
    if (!strstr (r.out, " dead (queue jobs, attempt 5): induced failure\n"))
        fail_msg ("status: %s", r.out);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "status", s_endpoint, NULL);
    char *row = strstr (r.out, "\njobs.dead ");
    assert_non_null (row);
    char name[64];
    unsigned long long depth;
    assert_int_equal (sscanf (row + 1, "%63s %llu", name, &depth), 2);
    assert_int_equal (depth, 1);
    zf_test_result_free (&r);
    kill (worker, SIGTERM);
    zf_test_reap (worker, 5000);
    close (worker_out);
}

static void
test_top_once (void **state)
{
    // Three items put with no worker running: zflow top --once shows the
    // queue holding them, from the broker's stats event alone.
    zf_test_result_t r = zf_test_zflow (NULL, "put", s_endpoint, "jobs", "1", "2", "3", NULL);
    assert_int_equal (r.status, 0);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "top", s_events, "--once", NULL);
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    assert_non_null (strstr (r.out, "zflow top "));
    assert_non_null (strstr (r.out, "QUEUE                         DEPTH  IN FLIGHT"));
    // The broker's journal: bytes written, all of them on disk by now.
    const char *journal = strstr (r.out, "journal {\"written\":");
    assert_non_null (journal);
    unsigned long long written = 0, durable = 0;
    assert_int_equal (
        sscanf (journal, "journal {\"written\":%llu,\"durable\":%llu", &written, &durable), 2);
    assert_true (written > 0);
    assert_true (durable <= written);
    char *jobs = strstr (r.out, "\njobs ");
    assert_non_null (jobs);
    unsigned long long depth = 0;
    assert_int_equal (sscanf (jobs + 1, "jobs %llu", &depth), 1);
    assert_int_equal (depth, 3);
    // Its consumer group, with its workers and backlog.
    assert_non_null (strstr (jobs, "  work: 0 w, 3 ready"));
    assert_non_null (strstr (r.out, "ACTOR "));
    zf_test_result_free (&r);
    // On a terminal (script(1) makes one) it draws on the other screen and
    // takes keys: here q, which it reads after the first drawing.
    char command[512];
    snprintf (command, sizeof command, "'%s' top %s", ZFLOW_BIN, s_events);
    setenv ("TERM", "xterm", 1);
    r = zf_test_run ((char *[]){ "/usr/bin/script", "-qec", command, "/dev/null", NULL }, "q");
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "\033[?1049h"));
    assert_non_null (strstr (r.out, "jobs "));
    assert_non_null (strstr (r.out, "keys: s sort, q quit"));
    assert_non_null (strstr (r.out, "\033[?1049l"));
    zf_test_result_free (&r);
    // Nothing listening: a clear failure within the timeout.
    r = zf_test_zflow (NULL, "top", "tcp://127.0.0.1:1", "--once", "--timeout", "300ms", NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "no stats from tcp://127.0.0.1:1 within 300 ms"));
    zf_test_result_free (&r);
}

//  Runs the metrics check (Python's prometheus_client parses the text):
//  prints "ok" or what is wrong.
static const char *s_check_metrics =
    "import sys, time, urllib.request, urllib.error\n"
    "from prometheus_client.parser import text_string_to_metric_families\n"
    "base = 'http://' + sys.argv[1]\n"
    "for _ in range(50):\n"
    "    text = urllib.request.urlopen(base + '/metrics').read().decode()\n"
    "    values = {}\n"
    "    for family in text_string_to_metric_families(text):\n"
    "        for s in family.samples:\n"
    "            values[(s.name, tuple(sorted(s.labels.items())))] = s.value\n"
    "    put = values.get(('zflow_queue_put_total', (('queue', 'metered'),)))\n"
    "    depth = values.get(('zflow_queue_depth', (('queue', 'metered'),)))\n"
    "    written = values.get(('zflow_journal_written_bytes_total', ()))\n"
    "    durable = values.get(('zflow_journal_durable_bytes_total', ()))\n"
    "    if put == 4 and depth == 4 and durable and durable == written:\n"
    "        break\n"
    "    time.sleep(0.2)\n"
    "else:\n"
    "    sys.exit('put %s depth %s journal %s/%s' % (put, depth, durable, written))\n"
    "assert values[('zflow_journal_waiting_confirms', ())] == 0\n"
    "assert values[('zflow_group_ready', (('group', 'meter'), ('queue', 'metered')))] == 4\n"
    "assert values[('zflow_group_workers', (('group', 'meter'), ('queue', 'metered')))] == 0\n"
    "assert urllib.request.urlopen(base + '/health').read() == b'ok\\n'\n"
    "for path, code in (('/nothing', 404),):\n"
    "    try:\n"
    "        urllib.request.urlopen(base + path)\n"
    "        sys.exit(path + ' answered')\n"
    "    except urllib.error.HTTPError as e:\n"
    "        assert e.code == code, (path, e.code)\n"
    "print('ok')\n";

static void
test_metrics (void **state)
{
    // Four items into a queue nobody reads: /metrics says so, in Prometheus
    // text that a Prometheus parser reads; /health is 200.
    zf_test_result_t r =
        zf_test_zflow (NULL, "put", s_endpoint, "metered", "1", "2", "3", "4", NULL);
    assert_int_equal (r.status, 0);
    zf_test_result_free (&r);
    r = zf_test_run (
        (char *[]){ "/usr/bin/python3", "-c", (char *) s_check_metrics, s_metrics, NULL }, NULL);
    if (r.status != 0 || !strstr (r.out, "ok"))
        fail_msg ("metrics: %s %s", r.out, r.err);
    zf_test_result_free (&r);
}

//  The JSON API from a web app's side: prints "ok" or what is wrong.
static const char *s_check_api =
    "import json, sys, time, urllib.request, urllib.error\n"
    "base = 'http://' + sys.argv[1]\n"
    "def call(method, path, body=None):\n"
    "    request = urllib.request.Request(base + path, data=body, method=method)\n"
    "    try:\n"
    "        with urllib.request.urlopen(request) as answer:\n"
    "            return answer.status, json.loads(answer.read())\n"
    "    except urllib.error.HTTPError as e:\n"
    "        return e.code, json.loads(e.read())\n"
    "status, answer = call('POST', '/queues/jobs', b'{\"order\": 42}')\n"
    "assert status == 200 and len(answer['id']) == 32, (status, answer)\n"
    "for _ in range(100):\n"
    "    status, state = call('GET', '/messages/' + answer['id'])\n"
    "    if state['state'] == 'done':\n"
    "        break\n"
    "    time.sleep(0.1)\n"
    "else:\n"
    "    sys.exit('state %s' % state)\n"
    "status, answer = call('POST', '/queues/jobs', b'{oops')\n"
    "assert status == 400 and answer['error'].startswith('the body is not JSON: '), answer\n"
    "status, answer = call('GET', '/messages/xyz')\n"
    "assert status == 400 and 'is not an id' in answer['error'], answer\n"
    "status, queues = call('GET', '/queues')\n"
    "jobs = [q for q in queues if q['name'] == 'jobs']\n"
    "assert status == 200 and jobs and jobs[0]['ack'] >= 1, queues\n"
    "print('ok')\n";

static void
test_http_api (void **state)
{
    // A web app enqueues over HTTP and follows the item to done; bad JSON
    // and a bad id are 400s with the reason.
    char *argv[] = { ZFLOW_BIN, "actor", "work", s_path, "--broker", s_endpoint, NULL };
    int out;
    pid_t worker = zf_test_spawn (argv, &out);
    zf_test_result_t r = zf_test_run (
        (char *[]){ "/usr/bin/python3", "-c", (char *) s_check_api, s_metrics, NULL }, NULL);
    kill (worker, SIGTERM);
    zf_test_reap (worker, 10000);
    close (out);
    if (r.status != 0 || !strstr (r.out, "ok"))
        fail_msg ("api: %s %s", r.out, r.err);
    zf_test_result_free (&r);
}

static void
test_tap_sample_and_formats (void **state)
{
    // One stats event in two: their sequence numbers step by 2, and no gap
    // is reported (nothing was lost, only left out).
    zf_test_result_t r =
        zf_test_zflow (NULL, "tap", s_events, "stats", "--sample", "2", "--limit", "2", NULL);
    assert_int_equal (r.status, 0);
    unsigned long long first = 0, second = 0;
    char *at = strstr (r.out, "{\"topic\":\"stats\",\"seq\":");
    assert_non_null (at);
    assert_int_equal (sscanf (at, "{\"topic\":\"stats\",\"seq\":%llu", &first), 1);
    at = strstr (at + 1, "{\"topic\":\"stats\",\"seq\":");
    assert_non_null (at);
    assert_int_equal (sscanf (at, "{\"topic\":\"stats\",\"seq\":%llu", &second), 1);
    assert_int_equal (second - first, 2);
    assert_null (strstr (r.out, "tap.gap"));
    zf_test_result_free (&r);
    // For people: a time, the topic, the fields.
    r = zf_test_zflow (NULL, "tap", s_events, "stats*", "--format", "pretty", "--limit", "1", NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, " stats                \"seq\":"));
    zf_test_result_free (&r);
    // msgpack: one map per event, its topic first.
    char command[512];
    snprintf (command, sizeof command,
              "'%s' tap %s stats --format msgpack --limit 1 | /usr/bin/python3 -c \"import sys; "
              "d = sys.stdin.buffer.read(); print(b'\\xa5topic\\xa5stats' in d[:16])\"",
              ZFLOW_BIN, s_events);
    r = zf_test_run ((char *[]){ "/bin/sh", "-c", command, NULL }, NULL);
    assert_int_equal (r.status, 0);
    assert_string_equal (r.out, "True\n");
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "tap", s_events, "--format", "xml", NULL);
    assert_int_equal (r.status, 2);
    zf_test_result_free (&r);

    // A queue's data sampled at the source: the broker sends items 1 and 6
    // of ten, on their own topic, numbered without gaps.
    char *tap_argv[] = { (char *) ZFLOW_BIN, "tap",      s_events, "stats",
                         "data.sampled",     "--sample", "5",      NULL };
    int tap_out;
    pid_t tap = zf_test_spawn (tap_argv, &tap_out);
    char line[4096];
    assert_int_equal (zf_test_read_line (tap_out, line, sizeof line, 5000), 0); // subscribed
    r = zf_test_zflow (NULL, "put", s_endpoint, "sampled", "1", "2", "3", "4", "5", "6", "7", "8",
                       "9", "10", NULL);
    assert_int_equal (r.status, 0);
    zf_test_result_free (&r);
    int found = 0;
    while (found < 2 && zf_test_read_line (tap_out, line, sizeof line, 10000) == 0) {
        if (strstr (line, "\"topic\":\"stats\""))
            continue;
        assert_non_null (strstr (line, "{\"topic\":\"sample.5.data.sampled\",\"seq\":"));
        assert_null (strstr (line, "tap.gap"));
        assert_non_null (strstr (line, found == 0 ? "\"body\":1}" : "\"body\":6}"));
        found++;
    }
    assert_int_equal (found, 2);
    kill (tap, SIGTERM);
    zf_test_reap (tap, 5000);
    close (tap_out);
}

//  Items of queue acked so far, from zflow status; -1 if not listed.
static long long
s_acked (const char *queue)
{
    zf_test_result_t r = zf_test_zflow (NULL, "status", s_endpoint, NULL);
    assert_int_equal (r.status, 0);
    char row[64];
    snprintf (row, sizeof row, "\n%s ", queue);
    char *at = strstr (r.out, row);
    unsigned long long depth, inflight, put, acked;
    long long result = -1;
    if (at &&
        sscanf (at + strlen (row), "%llu %llu %llu %llu", &depth, &inflight, &put, &acked) == 4)
        result = (long long) acked;
    zf_test_result_free (&r);
    return result;
}

//  What a tap of data.flood printed: the items shown, and the items its
//  gap reports say it missed. Its output is read a chunk at a time.
typedef struct {
    char *text;       // what was read, up to an unfinished line
    size_t len;       // bytes in text
    size_t cap;       // allocated
    long long shown;  // data.flood lines
    long long missed; // items missed, from tap.gap lines
} s_tally_t;

//  Reads what the tap wrote within timeout_ms; false if nothing came.
static bool
s_tally_read (s_tally_t *tally, int fd, int timeout_ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll (&p, 1, timeout_ms) <= 0)
        return false;
    if (tally->cap - tally->len < 65536) {
        tally->cap = tally->cap * 2 + 65536;
        tally->text = (char *) realloc (tally->text, tally->cap);
    }
    ssize_t n = read (fd, tally->text + tally->len, tally->cap - tally->len - 1);
    if (n <= 0)
        return false;
    tally->len += (size_t) n;
    tally->text[tally->len] = 0;
    char *line = tally->text, *end;
    static const char data[] = "{\"topic\":\"data.flood\",";
    static const char gap[] = "{\"topic\":\"tap.gap\",\"of\":\"data.flood\",\"missed\":";
    while ((end = strchr (line, '\n'))) {
        *end = 0;
        if (strncmp (line, data, sizeof data - 1) == 0)
            tally->shown++;
        else if (strncmp (line, gap, sizeof gap - 1) == 0)
            tally->missed += atoll (line + sizeof gap - 1);
        line = end + 1;
    }
    tally->len -= (size_t) (line - tally->text);
    memmove (tally->text, line, tally->len + 1);
    return true;
}

//  A zflow tap of the stats and pattern, its output at *out, once its
//  first stats line shows that its subscriptions reached the broker.
static pid_t
s_tap_of (const char *pattern, int *out)
{
    char *argv[] = { (char *) ZFLOW_BIN, "tap", s_events, "stats", (char *) pattern, NULL };
    pid_t tap = zf_test_spawn (argv, out);
    char line[4096];
    assert_int_equal (zf_test_read_line (*out, line, sizeof line, 5000), 0);
    return tap;
}

//  The actor drain (a sink of the queue flood), its output at *out.
static pid_t
s_drain (int *out)
{
    char *argv[] = { (char *) ZFLOW_BIN, "actor", "drain", s_path, "--broker", s_endpoint, NULL };
    return zf_test_spawn (argv, out);
}

static void
test_slow_tap_does_not_slow_the_pipeline (void **state)
{
    // A tap of a queue's data whose output nobody reads: it stops taking
    // events, and the broker drops what does not fit at its high-water
    // mark. The pipeline goes on: every item is acked.
    int tap_out, worker_out;
    pid_t tap = s_tap_of ("data.flood", &tap_out);
    pid_t worker = s_drain (&worker_out);
    // More than the buffers between the broker and a stalled tap hold:
    // 5,000 items of 16 KB (an event each).
    enum { N = 5000, BODY = 16000 };
    size_t line_len = BODY + 3;
    char *input = (char *) malloc (N * line_len + 1);
    for (size_t i = 0; i < N; i++) {
        char *at = input + i * line_len;
        at[0] = '"';
        memset (at + 1, 'x', BODY);
        at[BODY + 1] = '"';
        at[BODY + 2] = '\n';
    }
    input[N * line_len] = 0;
    zf_test_result_t r = zf_test_zflow (input, "put", s_endpoint, "flood", NULL);
    free (input);
    assert_int_equal (r.status, 0);
    zf_test_result_free (&r);
    long long acked = 0;
    for (int tries = 0; tries < 300 && acked < N; tries++) {
        acked = s_acked ("flood");
        if (acked < N)
            zclock_sleep (100); // bounded: 30 s
    }
    assert_int_equal (acked, N);

    // Read again, the tap shows what it kept and says what it missed, once
    // an item gets through after a gap: one more is put whenever it is
    // quiet and not every item is told (the broker may have dropped more
    // than once, the last time at the end). Every item is either shown or
    // counted as missed. Bounded, and ended as soon as every item is told.
    s_tally_t tally = { 0 };
    long long total = N;
    int64_t deadline = zclock_mono () + 60000;
    while (zclock_mono () < deadline && !(tally.missed && tally.shown + tally.missed == total))
        if (!s_tally_read (&tally, tap_out, 200)) {
            r = zf_test_zflow (NULL, "put", s_endpoint, "flood", "\"one more\"", NULL);
            assert_int_equal (r.status, 0);
            zf_test_result_free (&r);
            total++;
        }
    print_message ("%lld items put: %lld shown, %lld missed\n", total, tally.shown, tally.missed);
    assert_true (tally.missed > 0);
    assert_int_equal (tally.shown + tally.missed, total);
    free (tally.text);
    kill (tap, SIGTERM);
    zf_test_reap (tap, 5000);
    close (tap_out);
    kill (worker, SIGTERM);
    zf_test_reap (worker, 10000);
    close (worker_out);
}

static void
test_tap_sees_a_worker_die (void **state)
{
    // A tap of the workers' events sees one join, then, killed, lost.
    int tap_out, worker_out;
    pid_t tap = s_tap_of ("worker.*", &tap_out);
    pid_t worker = s_drain (&worker_out);
    char line[4096];
    char pid[32];
    snprintf (pid, sizeof pid, "\"pid\":%d,", (int) worker);
    const char *expect[] = { "{\"topic\":\"worker.joined\",", "{\"topic\":\"worker.lost\"," };
    for (int i = 0; i < 2; i++) {
        bool found = false;
        // Heartbeats (1 s) missed three times make a lost worker: 10 s at most.
        while (!found && zf_test_read_line (tap_out, line, sizeof line, 10000) == 0) {
            // The patterns filter: nothing but stats and the workers' events.
            static const char stats[] = "{\"topic\":\"stats\",", worker[] = "{\"topic\":\"worker.";
            if (strncmp (line, stats, sizeof stats - 1) &&
                strncmp (line, worker, sizeof worker - 1))
                fail_msg ("the tap shows what it was not asked for: %.200s", line);
            found = strncmp (line, expect[i], strlen (expect[i])) == 0 && strstr (line, pid) &&
                    strstr (line, "\"actor\":\"drain\"");
        }
        if (!found)
            fail_msg ("no %s line for the worker", expect[i]);
        if (i == 0)
            kill (worker, SIGKILL);
    }
    zf_test_reap (worker, 5000);
    close (worker_out);
    kill (tap, SIGTERM);
    zf_test_reap (tap, 5000);
    close (tap_out);
}

//  Publishes a data event on topic from pub: seq, and the msgpack bytes of
//  its items array (or of whatever stands in its place).
static void
s_publish_data (zsock_t *pub, const char *topic, uint64_t seq, const char *items, size_t size)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    msgpack_pack_str_with_body (&pk, "seq", 3);
    msgpack_pack_uint64 (&pk, seq);
    msgpack_pack_str_with_body (&pk, "ts", 2);
    msgpack_pack_int64 (&pk, 1);
    msgpack_pack_str_with_body (&pk, "queue", 5);
    msgpack_pack_str_with_body (&pk, "q", 1);
    msgpack_pack_str_with_body (&pk, "items", 5);
    msgpack_sbuffer_write (&buffer, items, size);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, topic);
    zmsg_addmem (msg, buffer.data, buffer.size);
    zmsg_send (&msg, pub);
    msgpack_sbuffer_destroy (&buffer);
}

static void
test_tap_reads_bad_events (void **state)
{
    // A publisher of our own, not the broker, sends the tap events it
    // cannot read: it says so on stderr, shows what it can, and goes on.
    zsock_t *pub = zsock_new (ZMQ_XPUB);
    int port = zsock_bind (pub, "tcp://127.0.0.1:*");
    assert_true (port > 0);
    char endpoint[64], command[512], err_path[] = "/tmp/zflow-tap-err-XXXXXX";
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    int err_fd = mkstemp (err_path);
    assert_true (err_fd >= 0);
    close (err_fd);
    snprintf (command, sizeof command, "exec '%s' tap %s data.q --limit 2 2>%s", ZFLOW_BIN,
              endpoint, err_path);
    char *argv[] = { "/bin/sh", "-c", command, NULL };
    int out;
    pid_t tap = zf_test_spawn (argv, &out);
    zframe_t *subscription = zframe_recv (pub); // the tap's subscription is in
    assert_non_null (subscription);
    zframe_destroy (&subscription);

    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "data.q");
    zmsg_addstr (msg, "\xc1"); // not msgpack
    zmsg_send (&msg, pub);
    s_publish_data (pub, "data.q", 1, "\x05", 1); // items is not an array
    // An item whose body is not msgpack: shown, its bytes in base64.
    static const char bad_body[] = "\x91\x83\xa2"
                                   "id\xa1x\xa7"
                                   "created\x01\xa4"
                                   "body\xc4\x01\xc1";
    s_publish_data (pub, "data.q", 1, bad_body, sizeof bad_body - 1);
    static const char good[] = "\x91\x83\xa2"
                               "id\xa1y\xa7"
                               "created\x02\xa4"
                               "body\xc4\x01\x07";
    s_publish_data (pub, "data.q", 2, good, sizeof good - 1);

    char line[4096];
    assert_int_equal (zf_test_read_line (out, line, sizeof line, 5000), 0);
    assert_non_null (strstr (line, "\"id\":\"x\""));
    assert_non_null (strstr (line, "\"body\":{\"$base64\":\"wQ==\"}"));
    assert_int_equal (zf_test_read_line (out, line, sizeof line, 5000), 0);
    assert_string_equal (line, "{\"topic\":\"data.q\",\"seq\":2,\"ts\":1,\"id\":\"y\",\"queue\":"
                               "\"q\",\"created\":2,\"body\":7}");
    assert_int_equal (WEXITSTATUS (zf_test_reap (tap, 5000)), 0);
    close (out);
    char *errors = zf_test_slurp ("/tmp", err_path + 5);
    unlink (err_path);
    assert_non_null (errors);
    char *first = strstr (errors, "zflow tap: unreadable event on 'data.q'");
    assert_non_null (first);
    assert_non_null (strstr (first + 1, "zflow tap: unreadable event on 'data.q'"));
    free (errors);
    zsock_destroy (&pub);
}

static void
test_journal_flag_is_of_the_current_folder (void **state)
{
    (void) state;
    // --journal DIR on the command line is of the folder zflow runs in,
    // as any path a command is given; the config's keys are of its file's.
    char cwd[128];
    assert_int_equal (zf_test_dir_new (cwd, sizeof cwd, "commands-cwd"), 0);
    char name[64], command[1024]; // a name no other test has
    snprintf (name, sizeof name, "journal-%d", (int) getpid ());
    snprintf (command, sizeof command,
              "cd '%s' && exec '%s' broker '%s' --endpoint 'tcp://127.0.0.1:*' --events "
              "'tcp://127.0.0.1:*' --journal %s",
              cwd, ZFLOW_BIN, s_path, name);
    char *argv[] = { "/bin/sh", "-c", command, NULL };
    int out;
    pid_t broker = zf_test_spawn (argv, &out);
    char line[512];
    assert_int_equal (zf_test_read_line (out, line, sizeof line, 10000), 0);
    assert_non_null (strstr (line, "actors connect to"));
    char path[256], beside[256];
    snprintf (path, sizeof path, "%s/%s", cwd, name);
    snprintf (beside, sizeof beside, "/tmp/%s", name); // the config file's folder
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_true (S_ISDIR (st.st_mode));
    assert_int_not_equal (stat (beside, &st), 0);
    kill (broker, SIGTERM);
    int status = zf_test_reap (broker, 10000);
    close (out);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    zf_test_dir_remove (cwd);
}

static void
test_usage_errors (void **state)
{
    zf_test_result_t r = zf_test_zflow (NULL, "put", "nonsense", "jobs", "1", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "'nonsense' is not an endpoint"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "status", s_endpoint, "not-an-id", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "'not-an-id' is not an id"));
    zf_test_result_free (&r);
    // An id of zeros is no item's: refused at once, never asked (nor a
    // 30-s wait, nor an empty state).
    const char *commands[] = { "status", "result", "cancel" };
    for (int i = 0; i < 3; i++) {
        r = zf_test_zflow (NULL, commands[i], s_endpoint, "00000000000000000000000000000000",
                           i == 1 ? "--wait" : NULL, "30s", NULL);
        assert_int_equal (r.status, 2);
        assert_non_null (strstr (r.err, "is not an id (32 hex digits, not all zero)"));
        zf_test_result_free (&r);
    }
    // No broker there: status says so and fails, within its timeout.
    r = zf_test_zflow (NULL, "status", "tcp://127.0.0.1:1", "--timeout", "300ms", NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "no answer from tcp://127.0.0.1:1 within 300 ms"));
    zf_test_result_free (&r);
    // A CURVE setting that cannot be read: one line saying so, exit 2.
    setenv ("ZFLOW_CURVE_CERT", "/nonexistent/web_secret", 1);
    const char *asks[][4] = { { "status", NULL },
                              { "result", "1111111111111111111111111111111"
                                          "1" },
                              { "cancel", "1111111111111111111111111111111"
                                          "1" },
                              { "put", "jobs", "1" } };
    for (int i = 0; i < 4; i++) {
        r = zf_test_zflow (NULL, asks[i][0], s_endpoint, asks[i][1], asks[i][2], NULL);
        assert_int_equal (r.status, 2);
        assert_non_null (strstr (r.err, "ZFLOW_CURVE_SERVER is not"));
        zf_test_result_free (&r);
    }
    unsetenv ("ZFLOW_CURVE_CERT");
    r = zf_test_zflow (NULL, "put", s_endpoint, "jobs", "1", "--bogus", "x", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "unknown option --bogus"));
    zf_test_result_free (&r);
}

//  The bytes of path (free them), *size their count; NULL if none.
static uint8_t *
s_file_bytes (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    *size = 0;
    if (!file)
        return NULL;
    fseek (file, 0, SEEK_END);
    *size = (size_t) ftell (file);
    fseek (file, 0, SEEK_SET);
    uint8_t *data = (uint8_t *) malloc (*size + 1);
    assert_int_equal (fread (data, 1, *size, file), *size);
    fclose (file);
    return data;
}

//  Whether the file at path holds size bytes of data.
static bool
s_file_is (const char *path, const uint8_t *data, size_t size)
{
    size_t now_size;
    uint8_t *now = s_file_bytes (path, &now_size);
    bool same = now && now_size == size && memcmp (now, data, size) == 0;
    free (now);
    return same;
}

//  Starts `zflow broker` on dir/p.zpl on free ports; its pid, the endpoint
//  actors connect to in endpoint.
static pid_t
s_broker_of (const char *dir, char *endpoint, size_t size, int *out)
{
    char config[256];
    snprintf (config, sizeof config, "%s/p.zpl", dir);
    char *argv[] = {
        (char *) ZFLOW_BIN,  "broker", config, "--endpoint", "tcp://127.0.0.1:*", "--events",
        "tcp://127.0.0.1:*", NULL
    };
    pid_t pid = zf_test_spawn (argv, out);
    char line[512];
    assert_int_equal (zf_test_read_line (*out, line, sizeof line, 10000), 0);
    char *a = strstr (line, "connect to ");
    assert_non_null (a);
    char format[16];
    snprintf (format, sizeof format, "%%%zu[^,]", size - 1);
    sscanf (a + 11, format, endpoint);
    return pid;
}

static void
s_broker_stop (pid_t pid, int out)
{
    kill (pid, SIGTERM);
    int status = zf_test_reap (pid, 10000);
    close (out);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
}

//  A journal with one bit flipped in a middle record's size (16 MiB more
//  than it holds): `zflow broker` and `zflow status --state` refuse it,
//  say where and what to do, and leave it byte for byte as it was; `zflow
//  journal repair` cuts it at that record, keeping a copy of the rest, and
//  the broker then starts with the items before it. A torn tail is only
//  told by zflow status --state, not cut.
static void
test_corrupt_journal (void **state)
{
    char dir[128];
    assert_int_equal (zf_test_dir_new (dir, sizeof dir, "commands-corrupt"), 0);
    assert_int_equal (zf_test_write (dir, "p.zpl",
                                     "broker\n"
                                     "    journal = j\n"
                                     "queues\n"
                                     "    jobs\n"
                                     "        external = true\n"
                                     "actors\n"
                                     "    work\n"
                                     "        kind = sink\n"
                                     "        input = jobs\n"
                                     "        target = null\n"),
                      0);
    char journal[160], segment[200], endpoint[128];
    snprintf (journal, sizeof journal, "%s/j", dir);
    snprintf (segment, sizeof segment, "%s/0000000000000001.zfj", journal);

    // Five items confirmed by a broker, no worker to take them. A repair
    // is refused while the broker runs.
    int out;
    pid_t broker = s_broker_of (dir, endpoint, sizeof endpoint, &out);
    zf_test_result_t r =
        zf_test_zflow (NULL, "put", endpoint, "jobs", "1", "2", "3", "4", "5", NULL);
    assert_int_equal (r.status, 0);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "journal", "repair", journal, NULL);
    assert_int_equal (r.status, 1);
    char expected[256];
    snprintf (expected, sizeof expected, "is in use by another broker (pid %d)", (int) broker);
    assert_non_null (strstr (r.err, expected));
    zf_test_result_free (&r);
    s_broker_stop (broker, out);

    size_t size;
    uint8_t *original = s_file_bytes (segment, &size);
    assert_non_null (original);
    size_t at[16];
    int records = 0;
    for (size_t p = 16; p + 9 <= size && records < 16; records++) {
        at[records] = p;
        p += 9 + (original[p] | original[p + 1] << 8 | original[p + 2] << 16 |
                  (size_t) original[p + 3] << 24);
    }
    assert_int_equal (records, 5);

    // Torn: the last record cut short. Told, not cut.
    assert_int_equal (truncate (segment, (off_t) size - 5), 0);
    r = zf_test_zflow (NULL, "status", "--state", journal, NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, ": 4 items stored"));
    assert_non_null (strstr (r.out, "a torn last record of"));
    zf_test_result_free (&r);
    assert_true (s_file_is (segment, original, size - 5));

    // Corrupt: the third record's size 16 MiB more.
    uint8_t *flipped = (uint8_t *) malloc (size);
    memcpy (flipped, original, size);
    flipped[at[2] + 3] ^= 1;
    FILE *file = fopen (segment, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (flipped, 1, size, file), size);
    fclose (file);
    char where[400];
    snprintf (where, sizeof where,
              "%s: a record cut short at byte %zu (corrupt: a whole record follows at byte %zu)",
              segment, at[2], at[3]);
    char hint[300];
    snprintf (hint, sizeof hint, "`zflow journal repair %s`", journal);

    char config[256];
    snprintf (config, sizeof config, "%s/p.zpl", dir);
    r = zf_test_zflow (NULL, "broker", config, "--endpoint", "tcp://127.0.0.1:*", "--events",
                       "tcp://127.0.0.1:*", NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, where));
    assert_non_null (strstr (r.err, hint));
    zf_test_result_free (&r);
    assert_true (s_file_is (segment, flipped, size));

    r = zf_test_zflow (NULL, "status", "--state", journal, NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, where));
    assert_non_null (strstr (r.err, hint));
    zf_test_result_free (&r);
    assert_true (s_file_is (segment, flipped, size));

    // The repair: the good part kept, the rest copied beside it.
    r = zf_test_zflow (NULL, "journal", "repair", journal, NULL);
    assert_int_equal (r.status, 0);
    char cut[256], said[600];
    snprintf (cut, sizeof cut, "%s.cut-%zu", segment, at[2]);
    snprintf (said, sizeof said, "cut %s at byte %zu: kept %zu bytes, cut %zu bytes (copied to %s)",
              segment, at[2], at[2], size - at[2], cut);
    assert_non_null (strstr (r.out, said));
    assert_non_null (strstr (r.out, ": 2 records kept"));
    zf_test_result_free (&r);
    assert_true (s_file_is (segment, flipped, at[2]));
    assert_true (s_file_is (cut, flipped + at[2], size - at[2]));

    r = zf_test_zflow (NULL, "journal", "repair", journal, NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "nothing to repair: 2 records read whole"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "status", "--state", dir, NULL); // the folder around it: no journal
    assert_int_equal (r.status, 2);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "status", "--state", journal, NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, ": 2 items stored"));
    zf_test_result_free (&r);

    // The broker starts with the two items before the flip.
    broker = s_broker_of (dir, endpoint, sizeof endpoint, &out);
    r = zf_test_zflow (NULL, "status", endpoint, NULL);
    assert_int_equal (r.status, 0);
    char *row = strstr (r.out, "\njobs ");
    assert_non_null (row);
    int depth = -1;
    assert_int_equal (sscanf (row + 6, "%d", &depth), 1);
    assert_int_equal (depth, 2);
    zf_test_result_free (&r);
    s_broker_stop (broker, out);

    free (flipped);
    free (original);
    zf_test_dir_remove (dir);
}

static void
test_journal_usage (void **state)
{
    zf_test_result_t r = zf_test_zflow (NULL, "journal", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "usage: zflow journal repair DIR [options]"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "journal", "mend", "/tmp", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "'mend' is not repair"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "journal", "repair", "/proc/zflow-no-journal", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "holds no journal"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "help", "journal", NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "usage: zflow journal repair DIR [options]"));
    assert_non_null (strstr (r.out, "--drop-later"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "jurnal", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "did you mean 'journal'?"));
    zf_test_result_free (&r);
    // The last command of the table is still offered (it was left out
    // once the table held more than 15).
    r = zf_test_zflow (NULL, "versoin", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "did you mean 'version'?"));
    zf_test_result_free (&r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_put_status_tap),
        cmocka_unit_test (test_dead_letter_visible),
        cmocka_unit_test (test_top_once),
        cmocka_unit_test (test_metrics),
        cmocka_unit_test (test_http_api),
        cmocka_unit_test (test_tap_sample_and_formats),
        cmocka_unit_test (test_slow_tap_does_not_slow_the_pipeline),
        cmocka_unit_test (test_tap_sees_a_worker_die),
        cmocka_unit_test (test_tap_reads_bad_events),
        cmocka_unit_test (test_journal_flag_is_of_the_current_folder),
        cmocka_unit_test (test_usage_errors),
        cmocka_unit_test (test_corrupt_journal),
        cmocka_unit_test (test_journal_usage),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
