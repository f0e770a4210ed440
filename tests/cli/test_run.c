/*  Tests of zflow run as a process: a finite pipeline runs to its end and
    exits 0 with the exact output; dead-lettered items make it exit 1; an
    actor that keeps dying fails the run; an exec actor gets the settings
    its pipeline gives, and no others, and is reported with its program's
    memory and CPU time, not its shell's, as a processor is with its
    coprocesses'; a config error exits 2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_testkit.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

static char s_dir[256]; // the pipeline's folder

static int
s_setup (void **state)
{
    if (zf_test_dir_new (s_dir, sizeof s_dir, "run"))
        return -1;
    // zflow run's default state folder, inside the test's: a run that
    // stops or fails keeps its state there, not in the home folder.
    return setenv ("XDG_STATE_HOME", s_dir, 1);
}

static int
s_teardown (void **state)
{
    unsetenv ("XDG_STATE_HOME");
    return zf_test_dir_remove (s_dir);
}

//  Writes the pipeline to p.zpl, its path in path.
static void
s_write (const char *config, char *path, size_t size)
{
    assert_int_equal (zf_test_write (s_dir, "p.zpl", config), 0);
    snprintf (path, size, "%s/p.zpl", s_dir);
}

//  Writes the pipeline and runs `zflow run` on it.
static zf_test_result_t
s_run (const char *config)
{
    char path[512];
    s_write (config, path, sizeof path);
    return zf_test_zflow (NULL, "run", path, NULL);
}

#define BROKER                                                                                     \
    "broker\n"                                                                                     \
    "    endpoint = tcp://127.0.0.1:*\n"                                                           \
    "    events = tcp://127.0.0.1:*\n"

static void
test_finite_pipeline (void **state)
{
    zf_test_result_t r = s_run (BROKER "actors\n"
                                       "    nums\n"
                                       "        kind = producer\n"
                                       "        source = seq:2000\n"
                                       "        output = numbers\n"
                                       "    double\n"
                                       "        kind = processor\n"
                                       "        input = numbers\n"
                                       "        output = results\n"
                                       "        concurrency = 2\n"
                                       "        command = \"while read n; do echo $((n * 2)); "
                                       "echo; done\"\n"
                                       "    store\n"
                                       "        kind = sink\n"
                                       "        input = results\n"
                                       "        target = file:out.jsonl\n");
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    assert_non_null (strstr (r.err, "done in "));
    zf_test_result_free (&r);
    char path[512];
    snprintf (path, sizeof path, "%s/out.jsonl", s_dir);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    static int seen[4000];
    int lines = 0;
    char line[64];
    while (fgets (line, sizeof line, file)) {
        int n = atoi (line);
        assert_true (n >= 0 && n < 4000);
        seen[n]++;
        lines++;
    }
    fclose (file);
    assert_int_equal (lines, 2000);
    for (int n = 0; n < 4000; n++)
        assert_int_equal (seen[n], n % 2 ? 0 : 1);
}

//  A source named relative to the pipeline file is read from the file's
//  folder by the run's workers too (they read the run's copy of the file,
//  kept elsewhere).
static void
test_a_relative_file_source (void **state)
{
    assert_int_equal (zf_test_write (s_dir, "lines.txt", "one\ntwo\nthree\n"), 0);
    zf_test_result_t r = s_run (BROKER "actors\n"
                                       "    lines\n"
                                       "        kind = producer\n"
                                       "        source = file:lines.txt\n"
                                       "        output = lines\n"
                                       "    store\n"
                                       "        kind = sink\n"
                                       "        input = lines\n"
                                       "        target = file:out.jsonl\n");
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    zf_test_result_free (&r);
    char path[512];
    snprintf (path, sizeof path, "%s/out.jsonl", s_dir);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    int lines = 0;
    char line[64];
    while (fgets (line, sizeof line, file))
        lines++;
    fclose (file);
    assert_int_equal (lines, 3);
}

static void
test_dead_letters_fail_the_run (void **state)
{
    // The run fails, names the dead letters by queue, and keeps the state
    // where they stay; zflow status --state lists them with their reasons.
    char path[512], journal[600];
    s_write (BROKER "queues\n"
                    "    numbers\n"
                    "        max-attempts = 2\n"
                    "        retry-base = 10ms\n"
                    "actors\n"
                    "    nums\n"
                    "        kind = producer\n"
                    "        source = seq:3\n"
                    "        output = numbers\n"
                    "    fail\n"
                    "        kind = processor\n"
                    "        input = numbers\n"
                    "        output = results\n"
                    "        command = \"while read n; do echo '!no'; echo; "
                    "done\"\n"
                    "    store\n"
                    "        kind = sink\n"
                    "        input = results\n"
                    "        target = null\n",
             path, sizeof path);
    snprintf (journal, sizeof journal, "%s/state/journal", s_dir);
    char state_dir[560];
    snprintf (state_dir, sizeof state_dir, "%s/state", s_dir);
    zf_test_result_t r = zf_test_zflow (NULL, "run", path, "--state", state_dir, NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "but 3 items ended in a dead-letter queue (numbers.dead 3)"));
    char expected[1400];
    snprintf (expected, sizeof expected, "they stay in %s; `zflow status --state %s` lists them",
              journal, journal);
    assert_non_null (strstr (r.err, expected));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "status", "--state", state_dir, NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "numbers.dead                     3\n"));
    assert_non_null (strstr (r.out, "dead letters in numbers.dead:\n"));
    assert_non_null (strstr (r.out, "  attempts 2  no\n"));
    zf_test_result_free (&r);
    // A folder with no journal is said to be one.
    r = zf_test_zflow (NULL, "status", "--state", s_dir, NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "holds no journal"));
    zf_test_result_free (&r);
}

static void
test_actor_that_keeps_dying (void **state)
{
    zf_test_result_t r = s_run (BROKER "actors\n"
                                       "    nums\n"
                                       "        kind = producer\n"
                                       "        source = seq:3\n"
                                       "        output = numbers\n"
                                       "    broken\n"
                                       "        kind = exec\n"
                                       "        input = numbers\n"
                                       "        command = \"exit 3\"\n");
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "broken/0 exited with status 3: restarting it"));
    assert_non_null (strstr (r.err, "broken/0 keeps dying (6 times in 60 s); stopping the run"));
    // Failed on the way: its state stays for a run after the fix.
    assert_non_null (strstr (r.err, "state kept in"));
    zf_test_result_free (&r);
}

static void
test_progress_on_a_terminal (void **state)
{
    // On a terminal (a pseudo-terminal made by script(1)), zflow run draws a
    // line per actor: the source with a bar and its total, the sink with
    // what it has done; each actor's own log lines come prefixed.
    char path[512];
    s_write (BROKER "actors\n"
                    "    nums\n"
                    "        kind = producer\n"
                    "        source = seq:200000\n"
                    "        output = numbers\n"
                    "        rate = 100000\n"
                    "    store\n"
                    "        kind = sink\n"
                    "        input = numbers\n"
                    "        target = null\n",
             path, sizeof path);
    char command[1024];
    snprintf (command, sizeof command, "'%s' run '%s'", ZFLOW_BIN, path);
    setenv ("TERM", "xterm", 1);
    zf_test_result_t r =
        zf_test_run ((char *[]){ "/usr/bin/script", "-qec", command, "/dev/null", NULL }, NULL);
    if (r.status != 0)
        fail_msg ("exit %d: %s %s", r.status, r.out, r.err);
    assert_non_null (strstr (r.out, "nums  producer  ["));
    assert_non_null (strstr (r.out, "/200.0k"));
    assert_non_null (strstr (r.out, "store sink      "));
    assert_non_null (strstr (r.out, "\033[2A\033[J")); // redrawn in place
    assert_non_null (strstr (r.out, "nums/0 | I: "));
    assert_non_null (strstr (r.out, "done in "));
    zf_test_result_free (&r);
}

static void
test_hello_example (void **state)
{
    // The README's main job, run as a user runs it (in a copy, on free
    // ports): every page fetched, titled, fanned out and gathered.
    char command[2048];
    snprintf (command, sizeof command,
              "cp -r '%s/pipelines/hello.zpl' '%s/pipelines/site' '%s/pipelines/custom' '%s/' && "
              "cd '%s' && HELLO_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); "
              "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])') "
              "ZFLOW_ENDPOINT='tcp://127.0.0.1:*' ZFLOW_EVENTS='tcp://127.0.0.1:*' "
              "'%s' run hello.zpl",
              ZFLOW_SOURCE_DIR, ZFLOW_SOURCE_DIR, ZFLOW_SOURCE_DIR, s_dir, s_dir, ZFLOW_BIN);
    zf_test_result_t r = zf_test_run ((char *[]){ "/bin/sh", "-c", command, NULL }, NULL);
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    assert_non_null (strstr (r.err, "results of store: "));
    assert_non_null (strstr (r.err, "out/hello/titles.jsonl (6 items)"));
    assert_non_null (strstr (r.err, "out/hello/batches.jsonl (2 items)"));
    zf_test_result_free (&r);
    char *titles = zf_test_slurp (s_dir, "out/hello/titles.jsonl");
    assert_non_null (titles);
    assert_non_null (strstr (titles, "\"status\":200,\"title\":\"zflow example site\","));
    assert_non_null (strstr (titles, "\"title\":\"Pipelines, queues and actors\",\"links\":"
                                     "[\"../index.html\",\"../about.html\"]"));
    assert_non_null (strstr (titles, "/missing.html\",\"status\":404,"));
    free (titles);
    char *lists = zf_test_slurp (s_dir, "out/hello/batches.jsonl");
    int lines = 0;
    for (char *p = lists; (p = strchr (p, '\n')); p++)
        lines++;
    assert_int_equal (lines, 2);
    assert_int_equal (lists[0], '[');
    free (lists);
}

static void
test_actor_crash_on_one_item (void **state)
{
    // An actor process that crashes on item 500 (once) is restarted; the
    // item comes to it again, and the run completes with every result once.
    char config[2048];
    snprintf (config, sizeof config,
              BROKER "actors\n"
                     "    nums\n"
                     "        kind = producer\n"
                     "        source = seq:2000\n"
                     "        output = numbers\n"
                     "    fragile\n"
                     "        kind = exec\n"
                     "        input = numbers\n"
                     "        output = results\n"
                     "        command = \"exec '%s' $ZFLOW_ENDPOINT $ZFLOW_ACTOR $ZFLOW_INPUT "
                     "--emit results --crash-on 500\"\n"
                     "    store\n"
                     "        kind = sink\n"
                     "        input = results\n"
                     "        target = file:out.jsonl\n",
              ZFLOW_TESTACTOR);
    zf_test_result_t r = s_run (config);
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    assert_non_null (strstr (r.err, "fragile/0 exited with status 3: restarting it"));
    zf_test_result_free (&r);
    static int seen[2000];
    assert_int_equal (zf_test_count_lines (s_dir, "out.jsonl", seen, 2000), 2000);
    for (int i = 0; i < 2000; i++)
        assert_int_equal (seen[i], 1);
}

static void
test_exec_environment (void **state)
{
    // Two exec workers write the environment they were started with: the
    // one whose pipeline leaves out concurrency, threads and the time
    // limits has none of their variables (not even one zflow run was
    // given), so that the program keeps its own defaults; the other has
    // each as given, the times in ms.
    char config[2048];
    snprintf (config, sizeof config,
              BROKER "actors\n"
                     "    nums\n"
                     "        kind = producer\n"
                     "        source = seq:20\n"
                     "        output = numbers\n"
                     "    plain\n"
                     "        kind = exec\n"
                     "        input = numbers\n"
                     "        output = tuned\n"
                     "        command = \"env > env-$ZFLOW_ACTOR.txt; exec '%s' $ZFLOW_ENDPOINT "
                     "$ZFLOW_ACTOR $ZFLOW_INPUT --emit $ZFLOW_OUTPUT\"\n"
                     "    given\n"
                     "        kind = exec\n"
                     "        input = tuned\n"
                     "        output = results\n"
                     "        concurrency = 8\n"
                     "        threads = 4\n"
                     "        timeout = 30s\n"
                     "        hard-timeout = 1m\n"
                     "        command = \"env > env-$ZFLOW_ACTOR.txt; exec '%s' $ZFLOW_ENDPOINT "
                     "$ZFLOW_ACTOR $ZFLOW_INPUT --emit $ZFLOW_OUTPUT\"\n"
                     "    store\n"
                     "        kind = sink\n"
                     "        input = results\n"
                     "        target = file:out.jsonl\n",
              ZFLOW_TESTACTOR, ZFLOW_TESTACTOR);
    setenv ("ZFLOW_CONCURRENCY", "99", 1); // zflow run's own: not passed on
    zf_test_result_t r = s_run (config);
    unsetenv ("ZFLOW_CONCURRENCY");
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    zf_test_result_free (&r);
    static int seen[20];
    assert_int_equal (zf_test_count_lines (s_dir, "out.jsonl", seen, 20), 20);
    char *plain_env = zf_test_slurp (s_dir, "env-plain.txt");
    char *given_env = zf_test_slurp (s_dir, "env-given.txt");
    assert_non_null (plain_env);
    assert_non_null (given_env);
    // Each line after a newline, the first too.
    char *plain = zsys_sprintf ("\n%s", plain_env), *given = zsys_sprintf ("\n%s", given_env);
    free (plain_env);
    free (given_env);
    assert_non_null (strstr (plain, "\nZFLOW_INPUT=numbers\n"));
    assert_null (strstr (plain, "\nZFLOW_CONCURRENCY="));
    assert_null (strstr (plain, "\nZFLOW_THREADS="));
    assert_null (strstr (plain, "\nZFLOW_TIMEOUT="));
    assert_null (strstr (plain, "\nZFLOW_HARD_TIMEOUT="));
    assert_non_null (strstr (given, "\nZFLOW_CONCURRENCY=8\n"));
    assert_non_null (strstr (given, "\nZFLOW_THREADS=4\n"));
    assert_non_null (strstr (given, "\nZFLOW_TIMEOUT=30000\n"));
    assert_non_null (strstr (given, "\nZFLOW_HARD_TIMEOUT=60000\n"));
    zstr_free (&plain);
    zstr_free (&given);
}

//  Writes a producer counting to count at rate items/s into a sink's
//  out.jsonl, its path in path.
static void
s_write_counting (int count, int rate, char *path, size_t size)
{
    char *config = zsys_sprintf (BROKER "actors\n"
                                        "    nums\n"
                                        "        kind = producer\n"
                                        "        source = seq:%d\n"
                                        "        rate = %d\n"
                                        "        output = numbers\n"
                                        "    store\n"
                                        "        kind = sink\n"
                                        "        input = numbers\n"
                                        "        target = file:out.jsonl\n",
                                 count, rate);
    s_write (config, path, size);
    zstr_free (&config);
}

static void
test_sigterm_drains (void **state)
{
    // SIGTERM mid-run: the source stops, what it put goes through to the
    // sink, and the run exits 0. The sink then holds 0..K-1, each once:
    // nothing the producer was confirmed is lost.
    char path[512];
    s_write_counting (10000000, 20000, path, sizeof path);
    char state_dir[300];
    snprintf (state_dir, sizeof state_dir, "%s/state", s_dir);
    int out;
    pid_t run =
        zf_test_spawn ((char *[]){ ZFLOW_BIN, "run", path, "--state", state_dir, NULL }, &out);
    static int seen[200000];
    zf_test_wait_lines (s_dir, "out.jsonl", seen, 1, 1000); // under way
    kill (run, SIGTERM);
    int status = zf_test_reap (run, 30000);
    close (out);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    int lines = zf_test_count_lines (s_dir, "out.jsonl", seen, 200000);
    print_message ("stopped with %d items, all through\n", lines);
    assert_true (lines >= 1000 && lines < 200000); // stopped, long before the 10 million
    for (int i = 0; i < lines; i++)
        assert_int_equal (seen[i], 1);
    // Stopped, not finished: the state stays for the next run to resume.
    char *journal = zf_test_slurp (s_dir, "state/journal/0000000000000001.zfj");
    assert_non_null (journal);
    free (journal);
}

//  The processes of a run: its children, each with when it started (the
//  22nd field of /proc/PID/stat), so that a pid given to another process
//  later is not taken for it. Returns how many, at most max.
typedef struct {
    pid_t pid;
    char started[32];
} s_process_t;

static bool
s_stat (pid_t pid, pid_t *parent, char *started, size_t size)
{
    char path[64], stat[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    size_t n = fread (stat, 1, sizeof stat - 1, file);
    fclose (file);
    stat[n] = 0;
    char *at = strrchr (stat, ')');
    if (!at || at[1] != ' ' || at[2] == 'Z')
        return false; // gone, or a zombie
    *parent = (pid_t) atoi (at + 4);
    for (int spaces = 0; *at && spaces < 20; at++)
        spaces += *at == ' ';
    snprintf (started, size, "%.*s", (int) strcspn (at, " "), at);
    return true;
}

static int
s_children (pid_t run, s_process_t *found, int max)
{
    DIR *proc = opendir ("/proc");
    int count = 0;
    struct dirent *entry;
    while (proc && count < max && (entry = readdir (proc))) {
        pid_t pid = (pid_t) atoi (entry->d_name), parent;
        if (pid > 0 && s_stat (pid, &parent, found[count].started, sizeof found[count].started) &&
            parent == run)
            found[count++].pid = pid;
    }
    if (proc)
        closedir (proc);
    return count;
}

//  How many of processes are still there.
static int
s_left (const s_process_t *processes, int count)
{
    int left = 0;
    for (int i = 0; i < count; i++) {
        pid_t parent;
        char started[32];
        left += s_stat (processes[i].pid, &parent, started, sizeof started) &&
                streq (started, processes[i].started);
    }
    return left;
}

static void
test_ctrl_c_stops_promptly (void **state)
{
    // Ctrl-C at a terminal signals the whole foreground process group.
    // zflow run alone must take it: the coprocesses never see a SIGINT,
    // nothing is restarted, every actor finishes the item in hand (0.1 s
    // each) or hands it back, and the run is over in well under a second
    // plus that item. The next run resumes; every item is written once.
    enum { N = 60 };
    char path[512];
    s_write (BROKER "actors\n"
                    "    nums\n"
                    "        kind = producer\n"
                    "        source = seq:60\n"
                    "        output = numbers\n"
                    "    slow\n"
                    "        kind = processor\n"
                    "        input = numbers\n"
                    "        output = results\n"
                    "        concurrency = 2\n"
                    "        command = \"trap 'echo got-INT >&2' INT; while read n; do sleep 0.1; "
                    "echo $n; echo; done\"\n"
                    "    store\n"
                    "        kind = sink\n"
                    "        input = results\n"
                    "        target = file:out.jsonl\n",
             path, sizeof path);
    char state_dir[300], err_path[300];
    snprintf (state_dir, sizeof state_dir, "%s/state", s_dir);
    snprintf (err_path, sizeof err_path, "%s/run.err", s_dir);
    pid_t run = fork ();
    if (run == 0) {
        setpgid (0, 0); // the foreground group a terminal would signal
        int err = open (err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2 (err, 2);
        execl (ZFLOW_BIN, ZFLOW_BIN, "run", path, "--state", state_dir, (char *) NULL);
        _exit (127);
    }
    static int seen[N];
    assert_true (zf_test_wait_lines (s_dir, "out.jsonl", seen, N, 6) >= 6); // under way
    setpgid (run, run);
    int64_t asked = zclock_mono ();
    kill (-run, SIGINT);
    int status = zf_test_reap (run, 30000);
    int64_t took = zclock_mono () - asked;
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    char *err = zf_test_slurp (s_dir, "run.err");
    assert_non_null (err);
    print_message ("stopped %lld ms after Ctrl-C\n", (long long) took);
    if (strstr (err, "got-INT") || strstr (err, "restarting it") || strstr (err, "grace period"))
        fail_msg ("a messy stop:\n%s", err);
    assert_non_null (strstr (err, "stopped after"));
    free (err);
    assert_true (took < 4000); // generous: well under 1 s on an idle machine
    int before = zf_test_count_lines (s_dir, "out.jsonl", seen, N);
    assert_true (before < N);
    zf_test_result_t r = zf_test_zflow (NULL, "run", path, "--state", state_dir, NULL);
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    zf_test_result_free (&r);
    assert_int_equal (zf_test_count_lines (s_dir, "out.jsonl", seen, N), N);
    ZF_TEST_ASSERT_ONCE (seen, N);
}

static void
test_a_service_pipeline_serves (void **state)
{
    // A pipeline fed only from outside keeps running: it takes tasks put
    // while it runs, their results come back, and SIGTERM ends it with 0.
    char path[512];
    s_write (BROKER "pipeline\n"
                    "    results = answers\n"
                    "queues\n"
                    "    tasks\n"
                    "        external = true\n"
                    "actors\n"
                    "    triple\n"
                    "        kind = processor\n"
                    "        input = tasks\n"
                    "        output = answers\n"
                    "        command = \"while read n; do echo $((n * 3)); echo; done\"\n",
             path, sizeof path);
    char err_path[300];
    snprintf (err_path, sizeof err_path, "%s/run.err", s_dir);
    pid_t run = fork ();
    if (run == 0) {
        int err = open (err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2 (err, 2);
        execl (ZFLOW_BIN, ZFLOW_BIN, "run", path, "--no-journal", (char *) NULL);
        _exit (127);
    }
    char endpoint[128] = "";
    for (int tries = 0; tries < 1000 && !endpoint[0]; tries++) {
        char *log = zf_test_slurp (s_dir, "run.err");
        char *at = log ? strstr (log, "broker at ") : NULL;
        if (at) {
            sscanf (at + 10, "%127[^,]", endpoint);
            assert_non_null (strstr (log, "serves until stopped"));
        }
        free (log);
        zclock_sleep (10); // bounded poll of a file another process writes
    }
    assert_true (endpoint[0]);
    for (int n = 1; n <= 3; n++) {
        char body[8], expected[32];
        snprintf (body, sizeof body, "%d", n);
        zf_test_result_t r = zf_test_zflow (NULL, "put", endpoint, "tasks", body, NULL);
        assert_int_equal (r.status, 0);
        char id[33];
        assert_int_equal (sscanf (r.out, "%32s", id), 1);
        zf_test_result_free (&r);
        r = zf_test_zflow (NULL, "result", endpoint, id, "--wait", "10s", NULL);
        assert_int_equal (r.status, 0);
        snprintf (expected, sizeof expected, "\"results\":[%d]", 3 * n);
        assert_non_null (strstr (r.out, expected));
        zf_test_result_free (&r);
        assert_int_equal (waitpid (run, NULL, WNOHANG), 0); // still serving
    }
    kill (run, SIGTERM);
    int status = zf_test_reap (run, 15000);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
}

static void
test_coprocess_stderr_in_whole_lines (void **state)
{
    // Four coprocesses each write every stderr line in two pieces, apart:
    // the run's log has each line whole, under its actor's prefix.
    zf_test_result_t r =
        s_run (BROKER "actors\n"
                      "    nums\n"
                      "        kind = producer\n"
                      "        source = seq:40\n"
                      "        output = numbers\n"
                      "    noisy\n"
                      "        kind = processor\n"
                      "        input = numbers\n"
                      "        output = results\n"
                      "        concurrency = 4\n"
                      "        command = \"while read n; do printf 'first-half-of-%s ' $n >&2; "
                      "sleep 0.01; printf 'second-half\\n' >&2; echo $n; echo; done\"\n"
                      "    store\n"
                      "        kind = sink\n"
                      "        input = results\n"
                      "        target = null\n");
    assert_int_equal (r.status, 0);
    int whole = 0;
    for (char *line = strtok (r.err, "\n"); line; line = strtok (NULL, "\n"))
        if (strstr (line, "first-half-of-")) {
            if (!strstr (line, "noisy/0 | [") || !strstr (line, " second-half") ||
                strstr (strstr (line, "first-half-of-") + 1, "first-half-of-"))
                fail_msg ("a line mixed with another: '%s'", line);
            whole++;
        }
    assert_int_equal (whole, 40);
    zf_test_result_free (&r);
}

//  How many processes show `needle` in their command line (NULs as spaces).
static int
s_showing (const char *needle)
{
    DIR *proc = opendir ("/proc");
    int found = 0;
    struct dirent *entry;
    while (proc && (entry = readdir (proc))) {
        char path[300], cmdline[512];
        snprintf (path, sizeof path, "/proc/%s/cmdline", entry->d_name);
        FILE *file = fopen (path, "r");
        if (!file)
            continue;
        size_t n = fread (cmdline, 1, sizeof cmdline - 1, file);
        fclose (file);
        for (size_t i = 0; i < n; i++)
            if (!cmdline[i])
                cmdline[i] = ' ';
        cmdline[n] = 0;
        found += strstr (cmdline, needle) != NULL;
    }
    if (proc)
        closedir (proc);
    return found;
}

//  The peak memory (MB) and CPU time (s) the end of a run reports for
//  worker ("double/0"); false when it reports none.
static bool
s_figures (const char *log, const char *worker, double *mb, double *cpu)
{
    const char *line = strstr (log, "peak memory and CPU time: ");
    char *needle = zsys_sprintf (" %s ", worker);
    const char *at = line ? strstr (line, needle) : NULL;
    bool found = at && sscanf (at + strlen (needle), "%lf MB %lf s", mb, cpu) == 2;
    zstr_free (&needle);
    return found;
}

//  Each of the workers named is reported in err, zflow run's last lines,
//  with the figures of a program that held 50 MB and spent 0.3 s of CPU.
static void
s_assert_hogs (const char *err, const char **workers, int count)
{
    for (int i = 0; i < count; i++) {
        double mb = 0, cpu = 0;
        if (!s_figures (err, workers[i], &mb, &cpu))
            fail_msg ("no figures for %s: %s", workers[i], err);
        print_message ("%s: %.1f MB %.2f s\n", workers[i], mb, cpu);
        if (mb < 50 || cpu < 0.2)
            fail_msg ("%s reported with %.1f MB %.2f s: %s", workers[i], mb, cpu, err);
    }
}

static void
test_exec_figures_are_the_programs (void **state)
{
    // Exec actors whose commands the shell stays for (a list, a pipe): at
    // the end the shell takes the SIGTERM at once, and the program outlives
    // it while it hands back what it holds. Each program writes to 50 MB
    // and takes 0.3 s of CPU; that is what the run reports for it, not the
    // shell's 2 MB and 0.01 s. One ignores SIGTERM: the grace period over,
    // it is killed, counted the same, and not left running after the run.
    pid_t self = getpid ();
    char *config = zsys_sprintf (
        BROKER "actors\n"
               "    nums\n"
               "        kind = producer\n"
               "        source = seq:20\n"
               "        output = numbers\n"
               "    listed\n"
               "        kind = exec\n"
               "        input = numbers\n"
               "        output = piping\n"
               "        command = \"cd . && '%s' $ZFLOW_ENDPOINT $ZFLOW_ACTOR $ZFLOW_INPUT "
               "--emit piping --touch 50 --spin 300\"\n"
               "    piped\n"
               "        kind = exec\n"
               "        input = piping\n"
               "        output = stubborn\n"
               "        command = \"%s $ZFLOW_ENDPOINT $ZFLOW_ACTOR $ZFLOW_INPUT --emit stubborn "
               "--touch 50 --spin 300 | cat\"\n"
               "    stubborn-%d\n"
               "        kind = exec\n"
               "        input = stubborn\n"
               "        output = results\n"
               "        command = \"cd . && '%s' $ZFLOW_ENDPOINT $ZFLOW_ACTOR $ZFLOW_INPUT "
               "--emit results --touch 50 --spin 300 --ignore-stop\"\n"
               "    store\n"
               "        kind = sink\n"
               "        input = results\n"
               "        target = file:out.jsonl\n",
        ZFLOW_TESTACTOR, ZFLOW_TESTACTOR, (int) self, ZFLOW_TESTACTOR);
    char path[512];
    s_write (config, path, sizeof path);
    zstr_free (&config);
    zf_test_result_t r = zf_test_zflow (NULL, "run", path, "--grace", "1s", NULL);
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    static int seen[20];
    assert_int_equal (zf_test_count_lines (s_dir, "out.jsonl", seen, 20), 20);
    ZF_TEST_ASSERT_ONCE (seen, 20);
    char stubborn[32];
    snprintf (stubborn, sizeof stubborn, "stubborn-%d/0", (int) self);
    const char *workers[] = { "listed/0", "piped/0", stubborn };
    s_assert_hogs (r.err, workers, 3);
    zf_test_result_free (&r);
    // The one that ignored SIGTERM is gone with the run (its name is in
    // its command line: $ZFLOW_ACTOR).
    snprintf (stubborn, sizeof stubborn, " stubborn-%d ", (int) self);
    assert_int_equal (s_showing (stubborn), 0);
}

static void
test_processor_figures_are_the_coprocesses (void **state)
{
    // A processor's coprocesses are its worker's children, counted in its
    // figures; their program is the shell's child, for a simple command
    // too. Each program writes to 50 MB and takes 0.3 s of CPU: the
    // worker is reported with that much, not with its own 7 MB.
    assert_int_equal (zf_test_write (s_dir, "hog.py",
                                     "import sys, time\n"
                                     "held = b'x' * (50 << 20)\n"
                                     "start = time.process_time()\n"
                                     "while time.process_time() - start < 0.3:\n"
                                     "    pass\n"
                                     "for line in sys.stdin:\n"
                                     "    print(line.strip())\n"
                                     "    print(flush=True)\n"),
                      0);
    zf_test_result_t r = s_run (BROKER "actors\n"
                                       "    nums\n"
                                       "        kind = producer\n"
                                       "        source = seq:20\n"
                                       "        output = numbers\n"
                                       "    simple\n"
                                       "        kind = processor\n"
                                       "        input = numbers\n"
                                       "        output = listing\n"
                                       "        command = \"/usr/bin/python3 hog.py\"\n"
                                       "    listed\n"
                                       "        kind = processor\n"
                                       "        input = listing\n"
                                       "        output = results\n"
                                       "        command = \"cd . && /usr/bin/python3 hog.py\"\n"
                                       "    store\n"
                                       "        kind = sink\n"
                                       "        input = results\n"
                                       "        target = file:out.jsonl\n");
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    static int seen[20];
    assert_int_equal (zf_test_count_lines (s_dir, "out.jsonl", seen, 20), 20);
    ZF_TEST_ASSERT_ONCE (seen, 20);
    const char *workers[] = { "simple/0", "listed/0" };
    s_assert_hogs (r.err, workers, 2);
    zf_test_result_free (&r);
}

static void
test_a_stuck_coprocess_ends_whole (void **state)
{
    // A coprocess stuck on an item past the timeout is killed and started
    // again: its program too, not only the shell it runs under (that one
    // was left for ever, its input closed and never read).
    assert_int_equal (zf_test_write (s_dir, "stuck.py",
                                     "import sys, time\n"
                                     "for line in sys.stdin:\n"
                                     "    while line.strip() == '3':\n"
                                     "        time.sleep(1)\n"
                                     "    print(line.strip())\n"
                                     "    print(flush=True)\n"),
                      0);
    pid_t self = getpid ();
    char *config =
        zsys_sprintf (BROKER "actors\n"
                             "    nums\n"
                             "        kind = producer\n"
                             "        source = seq:10\n"
                             "        output = numbers\n"
                             "    stuck\n"
                             "        kind = processor\n"
                             "        input = numbers\n"
                             "        output = results\n"
                             "        timeout = 300ms\n"
                             "        on-error = emit\n"
                             "        command = \"cd . && /usr/bin/python3 stuck.py %d\"\n"
                             "    store\n"
                             "        kind = sink\n"
                             "        input = results\n"
                             "        target = file:out.jsonl\n",
                      (int) self);
    char path[512];
    s_write (config, path, sizeof path);
    zstr_free (&config);
    zf_test_result_t r = zf_test_zflow (NULL, "run", path, NULL);
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    assert_non_null (strstr (r.err, "took longer than the timeout of 300 ms"));
    zf_test_result_free (&r);
    char *out = zf_test_slurp (s_dir, "out.jsonl");
    assert_non_null (out);
    assert_non_null (strstr (out, "\"error\":\"the command took longer than the timeout"));
    int lines = 0;
    for (char *at = out; (at = strchr (at, '\n')); at++)
        lines++;
    assert_int_equal (lines, 10); // nine answers and the error item
    free (out);
    char needle[64];
    snprintf (needle, sizeof needle, "stuck.py %d", (int) self);
    assert_int_equal (s_showing (needle), 0);
}

static void
test_a_broker_that_cannot_start_leaves_no_worker (void **state)
{
    // The workers forked ahead are already connecting when the broker
    // fails to bind its events port: the run exits 1 saying why, and none
    // of them outlives it (they used to be left, one spinning for ever).
    int busy_port = zf_test_free_port ();
    int busy = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET,
                                   .sin_port = htons ((uint16_t) busy_port),
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert_int_equal (bind (busy, (struct sockaddr *) &address, sizeof address), 0);
    assert_int_equal (listen (busy, 5), 0);
    char *config = zsys_sprintf ("broker\n"
                                 "    endpoint = tcp://127.0.0.1:%d\n"
                                 "    events = tcp://127.0.0.1:%d\n"
                                 "actors\n"
                                 "    orphan-source\n"
                                 "        kind = producer\n"
                                 "        source = seq:1000000\n"
                                 "        output = numbers\n"
                                 "    orphan-sink\n"
                                 "        kind = sink\n"
                                 "        input = numbers\n"
                                 "        target = null\n",
                                 zf_test_free_port (), busy_port);
    char path[512];
    s_write (config, path, sizeof path);
    zstr_free (&config);
    char folder[600];
    snprintf (folder, sizeof folder, "%s/state", s_dir);
    zf_test_result_t r = zf_test_zflow (NULL, "run", path, "--state", folder, "--fresh", NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "Address already in use"));
    zf_test_result_free (&r);
    // The run ends them before it exits (the watcher would, were the run
    // killed); a moment is allowed for /proc to forget them.
    for (int tries = 0; tries < 50 && s_showing ("zflow actor orphan-"); tries++)
        zclock_sleep (100);
    assert_int_equal (s_showing ("zflow actor orphan-"), 0);
    close (busy);
}

static void
test_resume_after_kill (void **state)
{
    // zflow run killed with kill -9 (its broker with it) and started
    // again: the journal in its default state folder resumes the run, and
    // the sink holds every item exactly once. A run that finishes leaves
    // no state behind.
    enum { N = 30000 };
    char path[512];
    s_write_counting (N, 10000, path, sizeof path);
    int out;
    pid_t run = zf_test_spawn ((char *[]){ ZFLOW_BIN, "run", path, NULL }, &out);
    static int seen[N];
    zf_test_wait_lines (s_dir, "out.jsonl", seen, 1, 5000);
    // Its workers and its watcher; each worker shows itself as `zflow actor`.
    s_process_t processes[16];
    int count = s_children (run, processes, 16);
    assert_true (count >= 3);
    int actors = 0;
    for (int i = 0; i < count; i++) {
        char path_of[64], cmdline[256] = "";
        snprintf (path_of, sizeof path_of, "/proc/%d/cmdline", (int) processes[i].pid);
        FILE *file = fopen (path_of, "r");
        size_t n = file ? fread (cmdline, 1, sizeof cmdline - 1, file) : 0;
        if (file)
            fclose (file);
        actors += n > 12 && memcmp (cmdline, "zflow\0actor\0", 12) == 0;
    }
    assert_int_equal (actors, 2);
    kill (run, SIGKILL);
    zf_test_reap (run, 5000);
    close (out);
    for (int tries = 0; tries < 300 && s_left (processes, count); tries++)
        zclock_sleep (100); // bounded: the actors see their parent go and stop
    assert_int_equal (s_left (processes, count), 0);
    int before = zf_test_count_lines (s_dir, "out.jsonl", seen, N);
    assert_true (before < N);

    zf_test_result_t r = zf_test_zflow (NULL, "run", path, NULL);
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    assert_non_null (strstr (r.err, "items restored from"));
    zf_test_result_free (&r);
    int lines = zf_test_count_lines (s_dir, "out.jsonl", seen, N), lost = 0, duplicated = 0;
    for (int i = 0; i < N; i++) {
        lost += seen[i] == 0;
        duplicated += seen[i] > 1;
    }
    print_message ("killed at %d lines; after the second run %d lines: lost %d, duplicated %d\n",
                   before, lines, lost, duplicated);
    assert_int_equal (lost, 0);
    assert_int_equal (duplicated, 0);
    assert_int_equal (lines, N);
    char *state_dir = zsys_sprintf ("%s/zflow", s_dir);
    DIR *dir = opendir (state_dir);
    int entries = 0;
    for (struct dirent *entry; dir && (entry = readdir (dir));)
        entries += entry->d_name[0] != '.';
    if (dir)
        closedir (dir);
    free (state_dir);
    assert_int_equal (entries, 0); // finished: nothing left to resume
}

static void
test_state_not_writable (void **state)
{
    // Where the default state folder cannot be made, the run goes on
    // without a journal and says so; a folder asked for must work.
    setenv ("XDG_STATE_HOME", "/proc/zflow-state", 1);
    zf_test_result_t r = s_run (BROKER "actors\n"
                                       "    nums\n"
                                       "        kind = producer\n"
                                       "        source = seq:100\n"
                                       "        output = numbers\n"
                                       "    store\n"
                                       "        kind = sink\n"
                                       "        input = numbers\n"
                                       "        target = file:out.jsonl\n");
    setenv ("XDG_STATE_HOME", s_dir, 1);
    if (r.status != 0)
        fail_msg ("exit %d: %s", r.status, r.err);
    assert_non_null (strstr (r.err, "cannot keep state in /proc/zflow-state/zflow/p-"));
    assert_non_null (strstr (r.err, "running without a journal"));
    zf_test_result_free (&r);
    static int seen[100];
    assert_int_equal (zf_test_count_lines (s_dir, "out.jsonl", seen, 100), 100);

    char path[512];
    snprintf (path, sizeof path, "%s/p.zpl", s_dir);
    r = zf_test_zflow (NULL, "run", path, "--state", "/proc/zflow-state", NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "cannot make the journal folder /proc/zflow-state/journal"));
    zf_test_result_free (&r);
}

//  The lines of text that are not empty.
static int
s_lines (const char *text)
{
    int lines = 0;
    for (const char *p = text; *p;) {
        size_t len = strcspn (p, "\n");
        lines += len > 0;
        p += len + (p[len] != 0);
    }
    return lines;
}

static void
test_another_pipelines_broker (void **state)
{
    // A run, or one actor, pointed at the broker of another pipeline ends
    // at once with exit 2 and one line naming both pipelines, not with a
    // stream of warnings from workers refused again and again.
    zf_pipeline_t *tasks = NULL;
    zf_broker_t *broker = zf_test_broker (s_dir,
                                          "pipeline\n"
                                          "    name = tasks\n" BROKER "queues\n"
                                          "    jobs\n"
                                          "        external = true\n"
                                          "actors\n"
                                          "    work\n"
                                          "        kind = sink\n"
                                          "        input = jobs\n"
                                          "        target = null\n",
                                          &tasks);
    assert_non_null (broker);
    assert_int_equal (zf_test_write (s_dir, "canvas.zpl",
                                     "pipeline\n"
                                     "    name = canvas\n" BROKER "queues\n"
                                     "    jobs\n"
                                     "        external = true\n"
                                     "actors\n"
                                     "    out\n"
                                     "        kind = sink\n"
                                     "        input = jobs\n"
                                     "        target = null\n"),
                      0);
    char path[512];
    snprintf (path, sizeof path, "%s/canvas.zpl", s_dir);
    const char *endpoint = zf_broker_endpoint (broker);
    zf_test_result_t r = zf_test_zflow (NULL, "run", path, "--broker", endpoint, NULL);
    if (r.status != 2)
        fail_msg ("exit %d: %s", r.status, r.err);
    assert_non_null (strstr (r.err, "this broker runs pipeline 'tasks', not 'canvas'"));
    assert_int_equal (s_lines (r.err), 1);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "actor", "out", path, "--broker", endpoint, NULL);
    if (r.status != 2)
        fail_msg ("exit %d: %s", r.status, r.err);
    assert_non_null (strstr (r.err, "this broker runs pipeline 'tasks', not 'canvas'"));
    assert_int_equal (s_lines (r.err), 1);
    zf_test_result_free (&r);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&tasks);
}

static void
test_config_error (void **state)
{
    zf_test_result_t r = s_run ("actors\n"
                                "    nums\n"
                                "        kind = producr\n");
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "unknown kind 'producr' (did you mean 'producer'?)"));
    zf_test_result_free (&r);

    // --only naming an actor the pipeline lacks: said, before anything starts.
    char path[512];
    s_write (BROKER "actors\n"
                    "    nums\n"
                    "        kind = producer\n"
                    "        source = seq:2\n"
                    "        output = numbers\n"
                    "    keep\n"
                    "        kind = sink\n"
                    "        input = numbers\n"
                    "        target = null\n",
             path, sizeof path);
    r = zf_test_zflow (NULL, "run", path, "--no-journal", "--only", "nums,kepe", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "--only: no actor 'kepe' in pipeline"));
    assert_non_null (strstr (r.err, "its actors: nums keep"));
    assert_null (strstr (r.err, "broker at"));
    zf_test_result_free (&r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_finite_pipeline, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_relative_file_source, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_dead_letters_fail_the_run, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_actor_that_keeps_dying, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_progress_on_a_terminal, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_hello_example, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_actor_crash_on_one_item, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_exec_environment, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_exec_figures_are_the_programs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_processor_figures_are_the_coprocesses, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_stuck_coprocess_ends_whole, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sigterm_drains, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_ctrl_c_stops_promptly, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_coprocess_stderr_in_whole_lines, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_service_pipeline_serves, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_resume_after_kill, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_broker_that_cannot_start_leaves_no_worker, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_state_not_writable, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_another_pipelines_broker, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_config_error, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
