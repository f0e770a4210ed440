/*  Tests of the built-in actors (producer, processor, sink), run as
    `zflow actor` processes against a broker: what a user finds in the
    sink's file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_broker.h"
#include "zf_testkit.h"
#include "zflow.h"

#include <signal.h>
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

static void
s_write (const char *name, const char *text)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

//  Loads s_dir/p.zpl written from text, and starts its broker.
static zf_broker_t *
s_broker (const char *text, zf_pipeline_t **pipeline_p)
{
    s_write ("p.zpl", text);
    char path[512];
    snprintf (path, sizeof path, "%s/p.zpl", s_dir);
    zlistx_t *errors = zf_errors_new ();
    *pipeline_p = zf_pipeline_load (path, errors);
    for (char *e = (char *) zlistx_first (errors); e; e = (char *) zlistx_next (errors))
        print_error ("%s\n", e);
    zlistx_destroy (&errors);
    assert_non_null (*pipeline_p);
    zf_error_t err;
    zf_broker_t *broker =
        zf_broker_new (*pipeline_p, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL, &err);
    assert_non_null (broker);
    return broker;
}

//  Starts `zflow actor NAME` on s_dir/p.zpl against broker; stderr is kept
//  in s_dir/NAME.log.
static pid_t
s_actor (zf_broker_t *broker, const char *name)
{
    char path[512], command[1400];
    snprintf (path, sizeof path, "%s/p.zpl", s_dir);
    // exec: the shell becomes zflow, so the pid is the actor's
    snprintf (command, sizeof command,
              "exec '%s' actor %s '%s' --broker %s >/dev/null 2>>'%s/%s.log'", ZFLOW_BIN, name,
              path, zf_broker_endpoint (broker), s_dir, name);
    char *argv[] = { "/bin/sh", "-c", command, NULL };
    int out;
    pid_t pid = zf_test_spawn (argv, &out);
    close (out);
    return pid;
}

//  Lines of s_dir/name, counted per value 0..n-1 (a line is one integer).
static int
s_lines (const char *name, int *seen, int n)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    memset (seen, 0, n * sizeof (int));
    int lines = 0;
    char line[256];
    while (fgets (line, sizeof line, file)) {
        int value = atoi (line);
        if (value >= 0 && value < n)
            seen[value]++;
        lines++;
    }
    fclose (file);
    return lines;
}

//  Waits (bounded: 30 s) until s_dir/name has at least `expect` lines,
//  counting them per value in seen[0..range).
static int
s_wait_lines (const char *name, int *seen, int range, int expect)
{
    int lines = 0;
    for (int tries = 0; tries < 300 && (lines = s_lines (name, seen, range)) < expect; tries++)
        zclock_sleep (100); // bounded poll of a file another process writes
    return lines;
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
    pid_t sink = s_actor (broker, "store");
    pid_t producer = s_actor (broker, "nums");
    int status = zf_test_reap (producer, 30000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0); // a finite source ends
    static int seen[N];
    assert_int_equal (s_wait_lines ("out/items.jsonl", seen, N, N), N);
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
    pid_t sink = s_actor (broker, "store");
    pid_t producer = s_actor (broker, "nums");
    // Kill each once the file shows progress.
    int lines = 0;
    for (int tries = 0; tries < 300 && (lines = s_lines ("out/items.jsonl", seen, N)) < 2000;
         tries++)
        zclock_sleep (10); // bounded poll of the file
    kill (producer, SIGKILL);
    kill (sink, SIGKILL);
    zf_test_reap (producer, 5000);
    zf_test_reap (sink, 5000);
    int before = s_lines ("out/items.jsonl", seen, N);
    sink = s_actor (broker, "store");
    producer = s_actor (broker, "nums");
    int status = zf_test_reap (producer, 60000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    s_wait_lines ("out/items.jsonl", seen, N, N); // then count: a shortfall shows as lost
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

static void
test_jsonl_bad_line (void **state)
{
    s_write ("data.jsonl", "{\"n\": 1}\n[2]\n{oops\n\"four\"\n");
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
    pid_t sink = s_actor (broker, "store");
    pid_t producer = s_actor (broker, "lines");
    assert_int_equal (WEXITSTATUS (zf_test_reap (producer, 30000)), 0);
    int seen[3];
    assert_int_equal (s_wait_lines ("out.jsonl", seen, 3, 3), 3);
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

//  Runs seq:n -> processor (command, on_error) -> sink, and waits for
//  `expect` lines in out.jsonl.
static int
s_process (int n, const char *on_error, const char *command, int expect, int *seen, int range)
{
    char config[2048];
    snprintf (config, sizeof config, s_processed, n, on_error, command);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = s_broker (config, &pipeline);
    pid_t sink = s_actor (broker, "store");
    pid_t processor = s_actor (broker, "double");
    pid_t producer = s_actor (broker, "nums");
    assert_int_equal (WEXITSTATUS (zf_test_reap (producer, 30000)), 0);
    int lines = s_wait_lines ("out.jsonl", seen, range, expect);
    kill (processor, SIGTERM);
    kill (sink, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (processor, 10000)), 0);
    assert_int_equal (WEXITSTATUS (zf_test_reap (sink, 10000)), 0);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    return lines;
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

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_seq_to_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_kill_producer_and_sink, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_jsonl_bad_line, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_processor_command, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_processor_errors_emitted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_processor_crash_and_hang, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
