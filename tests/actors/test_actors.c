/*  Tests of the built-in actors (producer, processor, sink), run as
    `zflow actor` processes against a broker: what a user finds in the
    sink's file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_broker.h"
#include "zf_mp.h"
#include "zf_testkit.h"
#include "zflow.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

static char s_dir[256]; // the pipeline's folder

static int
s_setup (void **state)
{
    return zf_test_dir_new (s_dir, sizeof s_dir, "actors");
}

static int
s_teardown (void **state)
{
    // A failed test leaves its actors running: stop them here, or they
    // would join the next test's broker when it gets the same port.
    zf_test_kill_all (state);
    return zf_test_dir_remove (s_dir);
}

//  The pipeline of text in s_dir, and its broker.
static zf_broker_t *
s_broker (const char *text, zf_pipeline_t **pipeline_p)
{
    zf_broker_t *broker = zf_test_broker (s_dir, text, pipeline_p);
    assert_non_null (broker);
    return broker;
}

static const char *s_seq = "actors\n"
                           "    nums\n"
                           "        kind = producer\n"
                           "        source = seq:%d\n"
                           "        output = items\n"
                           "    store\n"
                           "        kind = sink\n"
                           "        input = items\n"
                           "        target = file:out/items.jsonl\n"
                           "        sync = always\n";

static void
test_seq_to_file (void **state)
{
    enum { N = 3000 };
    char config[1024];
    snprintf (config, sizeof config, s_seq, N);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker (config, &pipeline);
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    pid_t producer = zf_test_actor (s_dir, broker, "nums");
    int status = zf_test_reap (producer, 30000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0); // a finite source ends
    static int seen[N];
    assert_int_equal (zf_test_wait_lines (s_dir, "out/items.jsonl", seen, N, N), N);
    for (int i = 0; i < N; i++)
        assert_int_equal (seen[i], 1);
    kill (sink, SIGTERM);
    status = zf_test_reap (sink, 10000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static void
test_kill_producer_and_sink (void **state)
{
    // kill -9 of the producer and of the sink while items flow; restarted,
    // they resume: every item is in the file exactly once.
    enum { N = 20000 };
    char config[1024];
    snprintf (config, sizeof config, s_seq, N);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker (config, &pipeline);
    static int seen[N];
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    pid_t producer = zf_test_actor (s_dir, broker, "nums");
    // Kill each once the file shows progress.
    int lines = 0;
    for (int tries = 0;
         tries < 300 && (lines = zf_test_count_lines (s_dir, "out/items.jsonl", seen, N)) < 2000;
         tries++)
        zclock_sleep (10); // bounded poll of the file
    kill (producer, SIGKILL);
    kill (sink, SIGKILL);
    zf_test_reap (producer, 5000);
    zf_test_reap (sink, 5000);
    int before = zf_test_count_lines (s_dir, "out/items.jsonl", seen, N);
    sink = zf_test_actor (s_dir, broker, "store");
    producer = zf_test_actor (s_dir, broker, "nums");
    int status = zf_test_reap (producer, 60000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    zf_test_wait_lines (s_dir, "out/items.jsonl", seen, N,
                        N); // then count: a shortfall shows as lost
    int lost = 0, duplicated = 0;
    for (int i = 0; i < N; i++) {
        lost += seen[i] == 0;
        duplicated += seen[i] > 1;
    }
    print_message ("killed producer and sink at %d lines: lost %d, duplicated %d\n", before, lost,
                   duplicated);
    assert_int_equal (lost, 0);
    assert_int_equal (duplicated, 0);
    kill (sink, SIGTERM);
    zf_test_reap (sink, 10000);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

//  Sets the largest file process pid may write, as `ulimit -f` does: past
//  it writes fail (EFBIG), as on a full disk.
static void
s_file_limit (pid_t pid, rlim_t bytes)
{
    struct rlimit limit = { bytes, RLIM_INFINITY }; // the soft limit: raised again at will
    if (prlimit (pid, RLIMIT_FSIZE, &limit, NULL))
        fail_msg ("prlimit: %s", strerror (errno));
}

//  Waits (bounded: 20 s) until dir/name holds text.
static bool
s_log_says (const char *name, const char *text)
{
    for (int tries = 0; tries < 200; tries++) {
        char *log = zf_test_slurp (s_dir, name);
        bool found = log && strstr (log, text);
        free (log);
        if (found)
            return true;
        zclock_sleep (100); // bounded poll of a log another process writes
    }
    return false;
}

//  The figures of queue name (zeros if the broker does not list it).
static zf_figures_t
s_queue (zf_client_t *client, const char *name)
{
    zf_figures_t found = { 0 };
    size_t count;
    zf_figures_t *queues = zf_client_queues (client, &count, 5000);
    for (size_t q = 0; queues && q < count; q++)
        if (streq (queues[q].name, name))
            found = queues[q];
    free (queues);
    return found;
}

//  A producer reading source (seq:N, or a file of JSON lines) into a sink
//  with disk-wait.
static const char *s_disk = "queues\n"
                            "    items\n"
                            "        max-attempts = 2\n"
                            "        retry-base = 10ms\n"
                            "        retry-max = 10ms\n"
                            "actors\n"
                            "    nums\n"
                            "        kind = producer\n"
                            "        source = %s\n"
                            "        format = jsonl\n"
                            "        output = items\n"
                            "    store\n"
                            "        kind = sink\n"
                            "        input = items\n"
                            "        target = file:out/items.jsonl\n"
                            "        sync = always\n"
                            "        disk-wait = %s\n";

static void
test_sink_waits_for_a_full_disk (void **state)
{
    // The sink's file cannot grow past 4 KiB (a full disk, as the sink
    // sees it): the sink holds its items and tries again, the queue backs
    // up, nothing is dead-lettered. Room again: every item is written
    // once, and the file holds no part of a failed write.
    enum { N = 3000 };
    char config[1024];
    snprintf (config, sizeof config, s_disk, "seq:3000", "10m");
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker (config, &pipeline);
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    s_file_limit (sink, 4096);
    pid_t producer = zf_test_actor (s_dir, broker, "nums");
    assert_true (s_log_says ("store.log", "holding"));
    static int seen[N];
    int lines = zf_test_count_lines (s_dir, "out/items.jsonl", seen, N);
    char *text = zf_test_slurp (s_dir, "out/items.jsonl");
    assert_true (!text || !*text || text[strlen (text) - 1] == '\n'); // whole lines only
    free (text);
    zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "observer", NULL, 0);
    assert_int_equal (s_queue (client, "items").dead, 0);

    s_file_limit (sink, RLIM_INFINITY);
    int status = zf_test_reap (producer, 60000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    assert_int_equal (zf_test_wait_lines (s_dir, "out/items.jsonl", seen, N, N), N);
    int lost = 0, duplicated = 0;
    for (int i = 0; i < N; i++) {
        lost += seen[i] == 0;
        duplicated += seen[i] > 1;
    }
    print_message ("disk full at %d lines, then room: lost %d, duplicated %d\n", lines, lost,
                   duplicated);
    assert_int_equal (lost, 0);
    assert_int_equal (duplicated, 0);
    assert_int_equal (s_queue (client, "items").dead, 0);
    assert_true (s_log_says ("store.log", "again after"));
    zf_client_destroy (&client);
    kill (sink, SIGTERM);
    zf_test_reap (sink, 10000);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static void
test_sink_fails_items_after_disk_wait (void **state)
{
    // A disk that stays full past disk-wait: the items held fail, are
    // retried by the broker (max-attempts = 2), then dead-lettered with
    // the sink's reason.
    enum { N = 20 };
    // Items of 5,000 bytes, where the sink's files stop at 4 KiB (and its
    // log, beside them, has room).
    char line[5002];
    memset (line, 'x', 5000);
    line[0] = line[4999] = '"';
    line[5000] = '\n';
    line[5001] = 0;
    zchunk_t *data = zchunk_new (NULL, 0);
    for (int i = 0; i < N; i++)
        zchunk_extend (data, line, strlen (line));
    zchunk_extend (data, "", 1);
    zf_test_write (s_dir, "big.jsonl", (const char *) zchunk_data (data));
    zchunk_destroy (&data);
    char config[1024];
    snprintf (config, sizeof config, s_disk, "file:big.jsonl", "300ms");
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker (config, &pipeline);
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    s_file_limit (sink, 4096);
    pid_t producer = zf_test_actor (s_dir, broker, "nums");
    zf_test_reap (producer, 30000);
    zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "observer", NULL, 0);
    uint64_t dead = 0;
    for (int tries = 0; tries < 200 && (dead = s_queue (client, "items").dead) < N; tries++)
        zclock_sleep (100); // bounded poll of the broker's figures
    assert_int_equal (dead, N);
    s_log_says ("store.log", "items fail");
    char *log = zf_test_slurp (s_dir, "store.log");
    if (!log || !strstr (log, "items fail") || !strstr (log, "File too large"))
        fail_msg ("the sink's log: %s", log ? log : "(none)");
    free (log);
    zf_client_destroy (&client);
    kill (sink, SIGTERM);
    zf_test_reap (sink, 10000);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static void
test_jsonl_bad_line (void **state)
{
    zf_test_write (s_dir, "data.jsonl", "{\"n\": 1}\n[2]\n{oops\n\"four\"\n");
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker ("actors\n"
                                    "    lines\n"
                                    "        kind = producer\n"
                                    "        source = file:data.jsonl\n"
                                    "        format = jsonl\n"
                                    "        on-bad-line = skip\n"
                                    "        output = items\n"
                                    "    store\n"
                                    "        kind = sink\n"
                                    "        input = items\n"
                                    "        target = file:out.jsonl\n"
                                    "        format = envelope\n",
                                    &pipeline);
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    pid_t producer = zf_test_actor (s_dir, broker, "lines");
    assert_int_equal (WEXITSTATUS (zf_test_reap (producer, 30000)), 0);
    int seen[3];
    assert_int_equal (zf_test_wait_lines (s_dir, "out.jsonl", seen, 3, 3), 3);
    kill (sink, SIGTERM);
    zf_test_reap (sink, 10000);
    char path[512];
    snprintf (path, sizeof path, "%s/out.jsonl", s_dir);
    zchunk_t *out = zchunk_slurp (path, 0);
    char *text = strndup ((char *) zchunk_data (out), zchunk_size (out));
    assert_non_null (strstr (text, "\"body\":{\"n\":1}}\n"));
    assert_non_null (strstr (text, "\"body\":[2]}\n"));
    assert_non_null (strstr (text, "\"body\":\"four\"}\n"));
    assert_non_null (strstr (text, "\"queue\":\"items\",\"attempt\":1"));
    free (text);
    zchunk_destroy (&out);
    snprintf (path, sizeof path, "%s/lines.log", s_dir);
    zchunk_t *log = zchunk_slurp (path, 0);
    assert_non_null (log);
    text = strndup ((char *) zchunk_data (log), zchunk_size (log));
    assert_non_null (
        strstr (text, "data.jsonl:3: bad JSON: column 2: expected '\"' to start a key"));
    free (text);
    zchunk_destroy (&log);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static const char *s_processed = "queues\n"
                                 "    numbers\n"
                                 "        retry-base = 10ms\n"
                                 "actors\n"
                                 "    nums\n"
                                 "        kind = producer\n"
                                 "        source = seq:%d\n"
                                 "        output = numbers\n"
                                 "    double\n"
                                 "        kind = processor\n"
                                 "        input = numbers\n"
                                 "        output = results\n"
                                 "        concurrency = 3\n"
                                 "        timeout = 500ms\n"
                                 "        on-error = %s\n"
                                 "        command = \"%s\"\n"
                                 "    store\n"
                                 "        kind = sink\n"
                                 "        input = results\n"
                                 "        target = file:out.jsonl\n";

//  Runs the pipeline of config, producer nums -> processor -> sink store,
//  and waits for `expect` lines in out.jsonl.
static int
s_through (const char *config, const char *processor_name, int expect, int *seen, int range)
{
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker (config, &pipeline);
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    pid_t processor = zf_test_actor (s_dir, broker, processor_name);
    pid_t producer = zf_test_actor (s_dir, broker, "nums");
    assert_int_equal (WEXITSTATUS (zf_test_reap (producer, 30000)), 0);
    int lines = zf_test_wait_lines (s_dir, "out.jsonl", seen, range, expect);
    kill (processor, SIGTERM);
    kill (sink, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (processor, 10000)), 0);
    assert_int_equal (WEXITSTATUS (zf_test_reap (sink, 10000)), 0);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    return lines;
}

//  seq:n -> processor (command, on_error) -> sink.
static int
s_process (int n, const char *on_error, const char *command, int expect, int *seen, int range)
{
    char config[2048];
    snprintf (config, sizeof config, s_processed, n, on_error, command);
    return s_through (config, "double", expect, seen, range);
}

static void
test_processor_command (void **state)
{
    // A coprocess in sh: each number doubled, then the empty line.
    enum { N = 600 };
    static int seen[2 * N];
    int lines =
        s_process (N, "retry", "while read n; do echo $((n * 2)); echo; done", N, seen, 2 * N);
    assert_int_equal (lines, N);
    for (int i = 0; i < 2 * N; i++)
        assert_int_equal (seen[i], i % 2 == 0 ? 1 : 0);
}

static void
test_processor_errors_emitted (void **state)
{
    // Odd numbers fail ('!' lines); with on-error = emit they go on as
    // {"error", "item"}; even ones give two outputs each.
    enum { N = 40 };
    static int seen[N];
    s_process (N, "emit",
               "while read n; do if [ $((n % 2)) = 1 ]; then echo '!odd'; else echo $n; echo $n; "
               "fi; echo; done",
               N + N / 2, seen, N);
    char path[512];
    snprintf (path, sizeof path, "%s/out.jsonl", s_dir);
    zchunk_t *out = zchunk_slurp (path, 0);
    char *text = strndup ((char *) zchunk_data (out), zchunk_size (out));
    assert_non_null (strstr (text, "{\"error\":\"odd\",\"item\":1}\n"));
    assert_non_null (strstr (text, "{\"error\":\"odd\",\"item\":39}\n"));
    int errors = 0;
    for (char *p = text; (p = strstr (p, "\"error\":\"odd\"")); p++)
        errors++;
    assert_int_equal (errors, N / 2);
    // two outputs per even number (error lines count as 0: atoi of "{...")
    assert_int_equal (seen[0], 2 + N / 2);
    for (int i = 2; i < N; i += 2)
        assert_int_equal (seen[i], 2);
    free (text);
    zchunk_destroy (&out);
}

static void
test_processor_retry_in (void **state)
{
    // Item 3 fails once with "!retry-in 400ms": its retry waits that long
    // (the queue's own backoff is a few ms), and every item comes through.
    enum { N = 10 };
    static int seen[2 * N];
    int lines = s_process (N, "retry",
                           "while read n; do "
                           "if [ $n = 3 ] && [ ! -f failed ]; then date +%s%N > failed; "
                           "echo '!retry-in 400ms not yet'; echo; continue; fi; "
                           "if [ $n = 3 ]; then date +%s%N > retried; fi; "
                           "echo $((n * 2)); echo; done",
                           N, seen, 2 * N);
    assert_int_equal (lines, N);
    char *failed = zf_test_slurp (s_dir, "failed"), *retried = zf_test_slurp (s_dir, "retried");
    assert_non_null (failed);
    assert_non_null (retried);
    long long waited_ns = atoll (retried) - atoll (failed);
    assert_true (waited_ns >= 400LL * 1000000);
    free (failed);
    free (retried);
}

static void
test_processor_crash_and_hang (void **state)
{
    // The coprocess exits on item 5 once and hangs on item 7 once (marker
    // files in the pipeline's folder): each time it is restarted and the
    // item retried, so every item comes through once.
    enum { N = 30 };
    static int seen[2 * N];
    int lines = s_process (N, "retry",
                           "while read n; do "
                           "if [ $n = 5 ] && [ ! -f crashed ]; then touch crashed; exit 3; fi; "
                           "if [ $n = 7 ] && [ ! -f hung ]; then touch hung; sleep 30; fi; "
                           "echo $((n * 2)); echo; done",
                           N, seen, 2 * N);
    assert_int_equal (lines, N);
    for (int i = 0; i < 2 * N; i++)
        assert_int_equal (seen[i], i % 2 == 0 ? 1 : 0);
    char path[512];
    snprintf (path, sizeof path, "%s/double.log", s_dir);
    zchunk_t *log = zchunk_slurp (path, 0);
    char *text = strndup ((char *) zchunk_data (log), zchunk_size (log));
    assert_non_null (strstr (text, "exited with status 3"));
    assert_non_null (strstr (text, "took longer than the timeout of 500 ms"));
    free (text);
    zchunk_destroy (&log);
}

//  A batch coprocess in Python that raises as it starts, and on any line,
//  while the file `broken` is there (counting its deaths in `deaths`),
//  and answers each item with its body otherwise.
static const char *s_dying = "pipeline\n"
                             "    results = answers\n"
                             "queues\n"
                             "    tasks\n"
                             "        external = true\n"
                             "        max-attempts = 2\n"
                             "        retry-base = 10ms\n"
                             "        retry-max = 10ms\n"
                             "actors\n"
                             "    work\n"
                             "        kind = processor\n"
                             "        input = tasks\n"
                             "        output = answers\n"
                             "        protocol = batch\n"
                             "        batch = 1\n"
                             "        command = \"/usr/bin/python3 work.py\"\n";
static const char *s_dying_script =
    "import json, os, sys\n"
    "def check():\n"
    "    if os.path.exists('broken'):\n"
    "        with open('deaths', 'a') as f:\n"
    "            f.write('death\\n')\n"
    "        raise ValueError('boom')\n"
    "check()\n"
    "for line in sys.stdin:\n"
    "    check()\n"
    "    print(json.dumps([[e['body']] for e in json.loads(line)]), flush=True)\n";

//  How many times dir/name holds text.
static int
s_count_in (const char *name, const char *text)
{
    char *all = zf_test_slurp (s_dir, name);
    int count = 0;
    for (char *p = all; p && (p = strstr (p, text)); p += strlen (text))
        count++;
    free (all);
    return count;
}

static void
test_processor_coprocess_keeps_dying (void **state)
{
    // A coprocess that dies as it starts, on every line of items: it is
    // started again after a backoff (100 ms, doubling), not in a loop.
    // Each death is logged once, with its exit status and the end of its
    // stderr; the line's item fails with that reason and is retried. Once
    // the program is fixed the worker serves on: every item answered, none
    // lost, none acked without its output. Broken again, the backoff starts
    // at 100 ms again, and an item that fails every attempt is dead-lettered.
    enum { N = 12 }; // 24 deaths to go through: many more than 10
    assert_int_equal (zf_test_write (s_dir, "broken", ""), 0);
    assert_int_equal (zf_test_write (s_dir, "work.py", s_dying_script), 0);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker (s_dying, &pipeline);
    pid_t work = zf_test_actor (s_dir, broker, "work");
    zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "test-dying", NULL, 0);
    zf_id_t ids[N];
    int64_t t0 = zclock_mono ();
    assert_int_equal (zf_test_put_ints (client, "tasks", N, ids), 0);
    // 3 s, counted as a wait for the last item, which can end in them only
    // if the coprocess is started again at once, every time.
    zf_result_t *result = zf_client_result (client, &ids[N - 1], 3000, 5000);
    assert_non_null (result);
    zf_result_destroy (&result);
    int deaths = s_count_in ("deaths", "death\n");
    print_message ("deaths of a coprocess that dies as it starts, in %lld ms: %d\n",
                   (long long) (zclock_mono () - t0), deaths);
    assert_true (deaths >= 2);
    assert_true (deaths <= 10); // in a loop, all 24 in a moment
    result = zf_client_item (client, &ids[0], 5000);
    assert_non_null (result);
    assert_int_equal (zf_result_attempts (result), 1);
    assert_string_equal (zf_result_reason (result),
                         "the command exited with status 1: ValueError: boom");
    zf_result_destroy (&result);

    // Fixed: within a backoff (5 s at most) it serves again, every item.
    char path[512];
    snprintf (path, sizeof path, "%s/broken", s_dir);
    assert_int_equal (unlink (path), 0);
    for (int i = 0; i < N; i++) {
        result = zf_client_result (client, &ids[i], 30000, 5000);
        assert_non_null (result);
        assert_string_equal (zf_result_state (result), "done");
        assert_int_equal (zf_result_count (result), 1);
        size_t size;
        const void *body = zf_result_body (result, 0, &size);
        zf_mp_t mp;
        zf_mp_init (&mp, body, size);
        uint64_t value = N;
        assert_int_equal (zf_mp_uint (&mp, &value, NULL), 0);
        assert_int_equal (value, (uint64_t) i);
        zf_result_destroy (&result);
    }
    assert_int_equal (s_count_in ("deaths", "death\n"), deaths);

    // Broken again, on an item: it answered, so the backoff starts anew;
    // the item dies with it twice and is dead-lettered, saying how.
    assert_int_equal (zf_test_write (s_dir, "broken", ""), 0);
    zf_id_t last;
    assert_int_equal (zf_test_put_ints (client, "tasks", 1, &last), 0);
    result = zf_client_result (client, &last, 30000, 5000);
    assert_non_null (result);
    assert_string_equal (zf_result_state (result), "dead");
    assert_string_equal (zf_result_reason (result),
                         "the command exited with status 1: ValueError: boom");
    assert_int_equal (zf_result_attempts (result), 2);
    zf_result_destroy (&result);

    // Each death logged once, with how it ended and its stderr's end.
    deaths = s_count_in ("deaths", "death\n");
    assert_int_equal (s_count_in ("work.log", "exited with status 1; starting it again in "),
                      deaths);
    assert_int_equal (s_count_in ("work.log", "; the end of its stderr: "), deaths);
    assert_int_equal (s_count_in ("work.log", " | ValueError: boom\n"), deaths);
    assert_int_equal (s_count_in ("work.log", "starting it again in 100 ms"), 2);
    zf_client_destroy (&client);
    kill (work, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (work, 10000)), 0);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static const char *s_plugged = "actors\n"
                               "    nums\n"
                               "        kind = producer\n"
                               "        source = %s\n"
                               "        output = numbers\n"
                               "        items\n"
                               "            item = 1\n"
                               "            item = fail\n"
                               "            item = twice\n"
                               "            item = bad\n"
                               "            item = 20\n"
                               "    plug\n"
                               "        kind = processor\n"
                               "        plugin = %s\n"
                               "        on-error = emit\n"
                               "        input = numbers\n"
                               "        output = results\n"
                               "    store\n"
                               "        kind = sink\n"
                               "        input = results\n"
                               "        target = file:out.jsonl\n";

//  Runs the producer of source through a plugin to the sink, and waits for
//  expect lines in out.jsonl.
static int
s_plug (const char *source, const char *plugin, int expect, int *seen, int range)
{
    char config[2048];
    snprintf (config, sizeof config, s_plugged, source, plugin);
    return s_through (config, "plug", expect, seen, range);
}

static void
test_plugin_identity (void **state)
{
    // The example plugin passes every item on unchanged.
    enum { N = 20000 };
    static int seen[N];
    char source[32];
    snprintf (source, sizeof source, "seq:%d", N);
    assert_int_equal (s_plug (source, ZFLOW_IDENTITY, N, seen, N), N);
    for (int i = 0; i < N; i++)
        assert_int_equal (seen[i], 1);
}

static void
test_plugin_errors (void **state)
{
    // A failing call and a refused output become {error, item}; a call may
    // give two outputs; the others go through the plugin's logic.
    int seen[64];
    assert_int_equal (s_plug ("list", ZFLOW_TESTPLUGIN, 6, seen, 64), 6);
    char *text = zf_test_slurp (s_dir, "out.jsonl");
    assert_non_null (text);
    assert_non_null (strstr (text, "2\n"));
    assert_non_null (strstr (text, "{\"error\":\"asked to fail\",\"item\":\"fail\"}\n"));
    assert_non_null (strstr (text, "\"twice\"\n\"twice\"\n"));
    assert_non_null (strstr (text, "{\"error\":\"emit refused a bad output\",\"item\":\"bad\"}\n"));
    assert_int_equal (seen[40], 1);
    free (text);
}

static void
test_plugin_missing (void **state)
{
    // A plugin that cannot be loaded stops the worker with the reason.
    zf_test_write (s_dir, "fake.so", "not a shared library\n");
    zf_pipeline_t *pipeline;
    char config[2048];
    snprintf (config, sizeof config, s_plugged, "list", "fake.so");
    zf_broker_t *broker = s_broker (config, &pipeline);
    pid_t processor = zf_test_actor (s_dir, broker, "plug");
    assert_int_equal (WEXITSTATUS (zf_test_reap (processor, 10000)), 2);
    char *log = zf_test_slurp (s_dir, "plug.log");
    assert_non_null (log);
    assert_non_null (strstr (log, "plug: cannot load plugin:"));
    assert_non_null (strstr (log, "fake.so"));
    free (log);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static void
test_msgpack_round_trip (void **state)
{
    // A file of msgpack values back to back, read with format = msgpack and
    // written by a sink with format = msgpack, comes out byte for byte.
    static const uint8_t values[] = {
        0x01,                                                 // 1
        0xa3, 'a',  'b',  'c',                                // "abc"
        0x82, 0xa1, 'k',  0x92, 0x01, 0x02,                   // {"k": [1, 2],
        0xa1, 'b',  0xc4, 0x02, 0x00, 0xff,                   //  "b": bin 00 ff}
        0xcb, 0x40, 0x09, 0x21, 0xf9, 0xf0, 0x1b, 0x86, 0x6e, // 3.14159
    };
    char path[512];
    snprintf (path, sizeof path, "%s/in.mp", s_dir);
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (values, 1, sizeof values, file), sizeof values);
    fclose (file);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker ("actors\n"
                                    "    values\n"
                                    "        kind = producer\n"
                                    "        source = file:in.mp\n"
                                    "        format = msgpack\n"
                                    "        output = items\n"
                                    "    store\n"
                                    "        kind = sink\n"
                                    "        input = items\n"
                                    "        target = file:out.mp\n"
                                    "        format = msgpack\n",
                                    &pipeline);
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    pid_t producer = zf_test_actor (s_dir, broker, "values");
    assert_int_equal (WEXITSTATUS (zf_test_reap (producer, 30000)), 0);
    snprintf (path, sizeof path, "%s/out.mp", s_dir);
    zchunk_t *out = NULL;
    for (int tries = 0; tries < 300; tries++) {
        zchunk_destroy (&out);
        out = zchunk_slurp (path, 0);
        if (out && zchunk_size (out) >= sizeof values)
            break;
        zclock_sleep (100); // bounded poll of the sink's file
    }
    kill (sink, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (sink, 10000)), 0);
    assert_non_null (out);
    assert_int_equal (zchunk_size (out), sizeof values);
    assert_memory_equal (zchunk_data (out), values, sizeof values);
    zchunk_destroy (&out);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static void
test_msgpack_truncated (void **state)
{
    // A msgpack file whose last value is cut short: the values before it
    // are put, and the cut is reported with the item's number.
    static const uint8_t values[] = { 0x07, 0xa5, 'h', 'e' };
    char path[512];
    snprintf (path, sizeof path, "%s/in.mp", s_dir);
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (values, 1, sizeof values, file), sizeof values);
    fclose (file);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker ("actors\n"
                                    "    values\n"
                                    "        kind = producer\n"
                                    "        source = file:in.mp\n"
                                    "        format = msgpack\n"
                                    "        on-bad-line = skip\n"
                                    "        output = items\n"
                                    "    store\n"
                                    "        kind = sink\n"
                                    "        input = items\n"
                                    "        target = file:out.jsonl\n",
                                    &pipeline);
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    pid_t producer = zf_test_actor (s_dir, broker, "values");
    assert_int_equal (WEXITSTATUS (zf_test_reap (producer, 30000)), 0);
    int seen[8];
    assert_int_equal (zf_test_wait_lines (s_dir, "out.jsonl", seen, 8, 1), 1);
    kill (sink, SIGTERM);
    zf_test_reap (sink, 10000);
    assert_int_equal (seen[7], 1);
    char *log = zf_test_slurp (s_dir, "values.log");
    assert_non_null (strstr (log, "in.mp: the last item is cut short"));
    free (log);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static void
test_stdin_and_stdout (void **state)
{
    // Lines on the producer's stdin come out of a sink writing to stdout.
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker ("actors\n"
                                    "    lines\n"
                                    "        kind = producer\n"
                                    "        source = stdin\n"
                                    "        output = items\n"
                                    "    show\n"
                                    "        kind = sink\n"
                                    "        input = items\n"
                                    "        target = stdout\n",
                                    &pipeline);
    char command[1400];
    snprintf (command, sizeof command, "exec '%s' actor show '%s/p.zpl' --broker %s 2>/dev/null",
              ZFLOW_BIN, s_dir, zf_broker_endpoint (broker));
    char *sink_argv[] = { "/bin/sh", "-c", command, NULL };
    int out;
    pid_t sink = zf_test_spawn (sink_argv, &out);
    snprintf (command, sizeof command,
              "printf 'one\\ntwo \"quoted\"\\n' | '%s' actor lines '%s/p.zpl' --broker %s",
              ZFLOW_BIN, s_dir, zf_broker_endpoint (broker));
    zf_test_result_t producer = zf_test_run ((char *[]){ "/bin/sh", "-c", command, NULL }, NULL);
    assert_int_equal (producer.status, 0);
    zf_test_result_free (&producer);
    char line[256];
    assert_int_equal (zf_test_read_line (out, line, sizeof line, 10000), 0);
    assert_string_equal (line, "\"one\"");
    assert_int_equal (zf_test_read_line (out, line, sizeof line, 10000), 0);
    assert_string_equal (line, "\"two \\\"quoted\\\"\"");
    kill (sink, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (sink, 10000)), 0);
    close (out);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static void
test_sink_keeps_bad_body (void **state)
{
    // A body that is not msgpack is written as base64 with the reason,
    // never dropped; the items around it are written as usual.
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker ("queues\n"
                                    "    items\n"
                                    "        external = true\n"
                                    "actors\n"
                                    "    store\n"
                                    "        kind = sink\n"
                                    "        input = items\n"
                                    "        target = file:out.jsonl\n",
                                    &pipeline);
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "test", NULL, 0);
    zf_client_put_str (client, "items", "before", NULL);
    zf_client_put (client, "items", "\xc1\x01", 2, NULL);
    zf_client_put_str (client, "items", "after", NULL);
    assert_int_equal (zf_client_flush (client, 10000), 0);
    zf_client_destroy (&client);
    int seen[1];
    assert_int_equal (zf_test_wait_lines (s_dir, "out.jsonl", seen, 1, 3), 3);
    kill (sink, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (sink, 10000)), 0);
    char *text = zf_test_slurp (s_dir, "out.jsonl");
    assert_non_null (strstr (text, "\"before\"\n"));
    assert_non_null (strstr (text, "{\"$error\":\"body is not msgpack: "));
    assert_non_null (strstr (text, "\"$raw\":{\"$base64\":\"wQE=\"}}\n"));
    assert_non_null (strstr (text, "\"after\"\n"));
    free (text);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_seq_to_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_kill_producer_and_sink, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sink_waits_for_a_full_disk, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sink_fails_items_after_disk_wait, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_jsonl_bad_line, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_processor_command, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_processor_errors_emitted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_processor_retry_in, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_processor_crash_and_hang, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_processor_coprocess_keeps_dying, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_plugin_identity, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_plugin_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_plugin_missing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_msgpack_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_msgpack_truncated, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stdin_and_stdout, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sink_keeps_bad_body, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
