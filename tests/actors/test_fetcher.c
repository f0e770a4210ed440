/*  Tests of the fetcher against a real HTTP server on 127.0.0.1: the test
    origin (tests/helpers/origin.py), which also plays the faults. Each test
    runs producer (a list of requests) -> fetcher -> sink as `zflow actor`
    processes and reads the items the sink wrote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_json.h"
#include "zf_testkit.h"
#include "zflow.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

static char s_dir[256]; // the pipeline's folder
static int s_port;      // the origin's port
static pid_t s_origin;  // the origin's process

static int
s_setup (void **state)
{
    if (zf_test_dir_new (s_dir, sizeof s_dir, "fetcher"))
        return -1;
    char *argv[] = { "/usr/bin/python3", ZFLOW_SOURCE_DIR "/tests/helpers/origin.py", "0", NULL };
    int out;
    s_origin = zf_test_spawn (argv, &out);
    char line[32];
    int rc = zf_test_read_line (out, line, sizeof line, 10000);
    close (out);
    s_port = atoi (line);
    return rc == 0 && s_port > 0 ? 0 : -1;
}

static int
s_teardown (void **state)
{
    zf_test_kill_all (state); // the origin too
    return zf_test_dir_remove (s_dir);
}

//  Runs the requests (one `item = X` line each, %d for the origin's port)
//  through a fetcher with the extra keys; waits for expect lines in the
//  sink's file and returns its text. With dead, waits (bounded) for at
//  least expect_dead items dead-lettered from `urls`, and gives their count.
static char *s_fetch_stats (const char *requests, const char *keys, int expect, int expect_dead,
                            uint64_t *dead, char **stats);

static char *
s_fetch (const char *requests, const char *keys, int expect, int expect_dead, uint64_t *dead)
{
    return s_fetch_stats (requests, keys, expect, expect_dead, dead, NULL);
}

//  The broker's stats event, as JSON, in which the fetcher's figures count
//  `answers` answers of class 2xx; NULL if none came within 15 s.
static char *
s_wait_stats (zsock_t *events, int answers)
{
    char want[64];
    snprintf (want, sizeof want, "\"2xx\":%d,", answers);
    int64_t deadline = zclock_mono () + 15000;
    while (zclock_mono () < deadline) {
        zpoller_t *poller = zpoller_new (events, NULL);
        bool ready = zpoller_wait (poller, 500) != NULL;
        zpoller_destroy (&poller);
        if (!ready)
            continue;
        zmsg_t *msg = zmsg_recv (events);
        char *topic = zmsg_popstr (msg);
        zframe_t *body = zmsg_pop (msg);
        char *json =
            body ? zf_msgpack_to_json (zframe_data (body), zframe_size (body), NULL) : NULL;
        zframe_destroy (&body);
        zmsg_destroy (&msg);
        bool found = topic && streq (topic, "stats") && json && strstr (json, want);
        zstr_free (&topic);
        if (found)
            return json;
        free (json);
    }
    return NULL;
}

//  s_fetch, and with stats, the stats event that counts every request.
static char *
s_fetch_stats (const char *requests, const char *keys, int expect, int expect_dead, uint64_t *dead,
               char **stats)
{
    char *items = zsys_sprintf (requests, s_port, s_port, s_port, s_port, s_port, s_port, s_port,
                                s_port, s_port, s_port, s_port, s_port, s_port, s_port, s_port);
    char *config = zsys_sprintf ("queues\n"
                                 "    urls\n"
                                 "        max-attempts = 2\n"
                                 "        retry-base = 10ms\n"
                                 "actors\n"
                                 "    urls\n"
                                 "        kind = producer\n"
                                 "        output = urls\n"
                                 "        items\n"
                                 "%s"
                                 "    fetch\n"
                                 "        kind = fetcher\n"
                                 "        input = urls\n"
                                 "        output = pages\n"
                                 "        retry-base = 20ms\n"
                                 "%s"
                                 "    store\n"
                                 "        kind = sink\n"
                                 "        input = pages\n"
                                 "        target = file:out.jsonl\n",
                                 items, keys);
    zstr_free (&items);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (s_dir, config, &pipeline);
    zstr_free (&config);
    assert_non_null (broker);
    zsock_t *events = stats ? zsock_new_sub (zf_broker_events (broker), "stats") : NULL;
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    pid_t fetcher = zf_test_actor (s_dir, broker, "fetch");
    pid_t producer = zf_test_actor (s_dir, broker, "urls");
    assert_int_equal (WEXITSTATUS (zf_test_reap (producer, 30000)), 0);
    int seen[1];
    int lines = zf_test_wait_lines (s_dir, "out.jsonl", seen, 1, expect);
    if (stats) {
        *stats = s_wait_stats (events, expect);
        zsock_destroy (&events);
    }
    if (dead) {
        zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "test", NULL, 0);
        *dead = 0;
        for (int tries = 0; tries < 100 && *dead < (uint64_t) expect_dead; tries++) {
            size_t count = 0;
            zf_figures_t *queues = zf_client_queues (client, &count, 5000);
            for (size_t i = 0; i < count; i++)
                if (streq (queues[i].name, "urls"))
                    *dead = queues[i].dead;
            free (queues);
            if (*dead < (uint64_t) expect_dead)
                zclock_sleep (100); // bounded wait for the broker's last retry
        }
        zf_client_destroy (&client);
    }
    kill (fetcher, SIGTERM);
    kill (sink, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (fetcher, 10000)), 0);
    assert_int_equal (WEXITSTATUS (zf_test_reap (sink, 10000)), 0);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    assert_int_equal (lines, expect);
    return zf_test_slurp (s_dir, "out.jsonl");
}

//  The output line for the request to path (a copy), or NULL.
static char *
s_line_for (const char *text, const char *path)
{
    char needle[256];
    snprintf (needle, sizeof needle, "{\"url\":\"http://127.0.0.1:%d%s\",", s_port, path);
    const char *start = strstr (text, needle);
    if (!start)
        return NULL;
    const char *end = strchr (start, '\n');
    return strndup (start, end ? (size_t) (end - start) : strlen (start));
}

//  Asserts that the line for path holds each of the fragments (NULL-ended).
static void
s_expect (const char *text, const char *path, ...)
{
    char *line = s_line_for (text, path);
    if (!line)
        fail_msg ("no output for %s in:\n%s", path, text);
    va_list args;
    va_start (args, path);
    for (const char *part; (part = va_arg (args, const char *));)
        if (!strstr (line, part))
            fail_msg ("the output for %s lacks %s:\n%s", path, part, line);
    va_end (args);
    free (line);
}

static void
test_answers (void **state)
{
    // What servers answer, each as the item a user finds in the sink.
    char *text = s_fetch ("            item = http://127.0.0.1:%d/small\n"
                          "            item = http://127.0.0.1:%d/large?n=3000000\n"
                          "            item = http://127.0.0.1:%d/json\n"
                          "            item = http://127.0.0.1:%d/binary\n"
                          "            item = http://127.0.0.1:%d/gzip\n"
                          "            item = http://127.0.0.1:%d/redirect?to=/small\n"
                          "            item = http://127.0.0.1:%d/status/404\n"
                          "            item = http://127.0.0.1:%d/once/503/a\n"
                          "            item = http://127.0.0.1:%d/once/429/b\n"
                          "            item = http://127.0.0.1:%d/headers?n=100\n"
                          "            item = {\"url\":\"http://127.0.0.1:%d/echo\",\"method\":"
                          "\"POST\",\"body\":\"hi\",\"headers\":{\"X-Test\":\"yes\"}}\n",
                          "", 11, 0, NULL);
    s_expect (text, "/small", "\"status\":200,", "\"body\":\"hello\"", "\"attempt\":1}",
              "\"content-type\":\"text/plain; charset=utf-8\"", NULL);
    char *large = s_line_for (text, "/large?n=3000000");
    assert_non_null (large);
    assert_non_null (strstr (large, "\"status\":200,"));
    const char *body = strstr (large, "\"body\":\"");
    assert_non_null (body);
    size_t xs = strspn (body + 8, "x");
    assert_int_equal (xs, 3000000);
    free (large);
    s_expect (text, "/json", "\"body\":\"{\\\"a\\\": [1, 2], \\\"b\\\": \\\"c\\\"}\"", NULL);
    s_expect (text, "/binary", "\"body\":{\"$base64\":\"AAECAwQF", NULL);
    s_expect (text, "/gzip", "\"body\":\"compressed hello\"", "\"content-encoding\":\"gzip\"",
              NULL);
    s_expect (text, "/redirect?to=/small", "\"status\":200,", "\"body\":\"hello\"", NULL);
    s_expect (text, "/status/404", "\"status\":404,", "\"body\":\"status 404\"", NULL);
    s_expect (text, "/once/503/a", "\"status\":200,", "\"body\":\"recovered\"", "\"attempt\":2}",
              NULL);
    s_expect (text, "/once/429/b", "\"status\":200,", "\"body\":\"recovered\"", "\"attempt\":2}",
              NULL);
    // A header repeated 100 times: one entry, its values joined in order.
    char many[512] = "\"x-many\":\"0";
    for (int i = 1; i < 100; i++)
        snprintf (many + strlen (many), sizeof many - strlen (many), ", %d", i);
    strcat (many, "\"");
    s_expect (text, "/headers?n=100", "\"status\":200,", many, NULL);
    s_expect (text, "/echo", "\\\"method\\\": \\\"POST\\\"", "\\\"X-Test\\\": \\\"yes\\\"",
              "\\\"body\\\": \\\"hi\\\"", NULL);
    free (text);
}

static void
test_failures (void **state)
{
    // What goes wrong, each an error item {url, error, kind, attempt}; no
    // retries here, so that each fails once.
    // A port nobody listens on: one the kernel gives, then closed.
    int probe = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t size = sizeof address;
    assert_int_equal (bind (probe, (struct sockaddr *) &address, size), 0);
    assert_int_equal (getsockname (probe, (struct sockaddr *) &address, &size), 0);
    int closed = ntohs (address.sin_port);
    close (probe);
    char requests[2048];
    snprintf (requests, sizeof requests,
              "            item = http://127.0.0.1:%%d/hang\n"
              "            item = http://127.0.0.1:%d/closed\n"
              "            item = http://127.0.0.1:%%d/large?n=2000000\n"
              "            item = http://127.0.0.1:%%d/loop\n"
              "            item = http://127.0.0.1:%%d/trickle?n=40&gap=0.1\n"
              "            item = 42\n"
              "            item = ftp://127.0.0.1/file\n",
              closed);
    char *text = s_fetch (requests,
                          "        max-retries = 0\n"
                          "        read-timeout = 500ms\n"
                          "        timeout = 1500ms\n"
                          "        max-body = 1MiB\n"
                          "        follow-redirects = 3\n",
                          7, 0, NULL);
    s_expect (text, "/hang", "\"kind\":\"timeout\"",
              "\"error\":\"no data for 500 ms (read-timeout)\"", NULL);
    char needle[128];
    snprintf (needle, sizeof needle, "{\"url\":\"http://127.0.0.1:%d/closed\",", closed);
    char *line = strstr (text, needle);
    assert_non_null (line);
    if (!strstr (line, "\"kind\":\"connect\""))
        fail_msg ("not a connect error: %.300s", line);
    s_expect (text, "/large?n=2000000", "\"kind\":\"too-large\"",
              "larger than max-body (1048576 bytes)", NULL);
    s_expect (text, "/loop", "\"kind\":\"redirects\"", NULL);
    s_expect (text, "/trickle?n=40&gap=0.1", "\"kind\":\"timeout\"", NULL);
    assert_non_null (strstr (text,
                             "{\"url\":null,\"error\":\"an item must be a URL or a map with a "
                             "url, not uint\",\"kind\":\"input\""));
    assert_non_null (strstr (text, "\"error\":\"'ftp://127.0.0.1/file' is not an http:// or "
                                   "https:// URL\",\"kind\":\"input\""));
    free (text);
}

static void
test_slow_trickle_completes (void **state)
{
    // Bytes that keep coming within read-timeout make a whole answer.
    char *text = s_fetch ("            item = http://127.0.0.1:%d/trickle?n=8&gap=0.1\n",
                          "        read-timeout = 1s\n", 1, 0, NULL);
    s_expect (text, "/trickle?n=8&gap=0.1", "\"status\":200,", "\"body\":\"tttttttt\"", NULL);
    free (text);
}

static void
test_on_error_retry (void **state)
{
    // on-error = retry: a final failure is a NACK; after the queue's
    // max-attempts (2) the item is in urls.dead, and nothing was emitted.
    uint64_t dead = 0;
    char *text = s_fetch ("            item = http://127.0.0.1:%d/status/503\n"
                          "            item = http://127.0.0.1:%d/small\n",
                          "        max-retries = 1\n        on-error = retry\n", 1, 1, &dead);
    s_expect (text, "/small", "\"status\":200,", NULL);
    assert_null (strstr (text, "/status/503"));
    free (text);
    assert_int_equal (dead, 1);
}

static void
test_on_error_drop (void **state)
{
    // on-error = drop: a final failure leaves nothing but a line in the log.
    char *text = s_fetch ("            item = http://127.0.0.1:%d/status/503\n"
                          "            item = http://127.0.0.1:%d/small\n",
                          "        max-retries = 0\n        on-error = drop\n", 1, 0, NULL);
    s_expect (text, "/small", "\"status\":200,", NULL);
    assert_null (strstr (text, "/status/503"));
    free (text);
    char *log = zf_test_slurp (s_dir, "fetch.log");
    assert_non_null (strstr (log, "/status/503: HTTP 503 (dropped)"));
    free (log);
}

static void
test_connection_reuse (void **state)
{
    // 1,000 requests to one host with max-per-host = 4 open 4 connections
    // at most, counted by the server.
    enum { N = 1000 };
    static char items[N * 64 + 64];
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += (size_t) snprintf (items + len, sizeof items - len,
                                  "            item = http://127.0.0.1:%d/small?%d\n", s_port, i);
    char *stats = NULL;
    char *text = s_fetch_stats (items, "        max-per-host = 4\n        concurrency = 64\n", N, 0,
                                NULL, &stats);
    int ok = 0;
    for (const char *p = text; (p = strstr (p, "\"status\":200,")); p++)
        ok++;
    if (ok != N)
        fail_msg ("%d of %d answers are 200:\n%.2000s", ok, N, text);
    free (text);
    // Ask the origin how many connections it accepted in all.
    char url[128];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/connections", s_port);
    zf_test_result_t answer =
        zf_test_run ((char *[]){ "/usr/bin/python3", "-c",
                                 "import sys, urllib.request;"
                                 "print(urllib.request.urlopen(sys.argv[1]).read().decode())",
                                 url, NULL },
                     NULL);
    assert_int_equal (answer.status, 0);
    int connections = 0;
    assert_int_equal (sscanf (answer.out, "{\"connections\": %d}", &connections), 1);
    zf_test_result_free (&answer);
    print_message ("%d requests over %d connections (the last one is ours)\n", N, connections - 1);
    assert_true (connections - 1 >= 1);
    assert_true (connections - 1 <= 4);
    // The fetcher's own figures, in the broker's stats event, say the same.
    if (!stats)
        fail_msg ("no stats event counted the %d requests", N);
    char *figures = strstr (stats, "\"figures\":{");
    assert_non_null (strstr (figures, "\"responses\":{\"1xx\":0,\"2xx\":1000,"));
    int opened = -1, reused = -1;
    const char *c = strstr (figures, "\"connections\":{");
    assert_non_null (c);
    assert_int_equal (sscanf (c, "\"connections\":{\"opened\":%d,\"reused\":%d}", &opened, &reused),
                      2);
    assert_int_equal (opened, connections - 1);
    assert_int_equal (opened + reused, N);
    assert_non_null (strstr (figures, "\"latency_ms\":{\"p50\":"));
    free (stats);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_answers, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failures, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_slow_trickle_completes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_on_error_retry, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_on_error_drop, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_connection_reuse, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
