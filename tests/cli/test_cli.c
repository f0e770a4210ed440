/*  Tests of the zflow command run as a process: validate, graph and help,
    checked by exit status and by what a user reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_testkit.h"

static char s_dir[256]; // temporary folder for files and captured output

typedef zf_test_result_t s_result_t;

static const char *
s_write (const char *name, const char *text)
{
    static char path[512];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    fputs (text, file);
    fclose (file);
    return path;
}

static int
s_setup (void **state)
{
    return zf_test_dir_new (s_dir, sizeof s_dir, "cli");
}

static int
s_teardown (void **state)
{
    return zf_test_dir_remove (s_dir);
}

static const char *s_pipeline = "pipeline\n"
                                "    name = demo\n"
                                "actors\n"
                                "    seeds\n"
                                "        kind = producer\n"
                                "        source = seq:100\n"
                                "        output = urls\n"
                                "    fetch\n"
                                "        kind = fetcher\n"
                                "        input = urls\n"
                                "        output = pages\n"
                                "        workers = 2\n"
                                "    store\n"
                                "        kind = sink\n"
                                "        input = pages\n"
                                "        target = null\n"
                                "    audit\n"
                                "        kind = sink\n"
                                "        input = pages\n"
                                "        target = stdout\n";

static void
test_validate_good (void **state)
{
    const char *path = s_write ("demo.zpl", s_pipeline);
    s_result_t r = zf_test_zflow (NULL, "validate", path, NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "pipeline demo is valid: 4 actors, 2 queues"));
    assert_string_equal (r.err, "");
    zf_test_result_free (&r);
}

static void
test_validate_warns_of_a_gather_without_timeout (void **state)
{
    // Valid, so exit 0; but a gather that would wait for ever is named.
    char text[2048];
    snprintf (text, sizeof text,
              "%s    lists\n        kind = gather\n        input = pages\n        output = lists\n"
              "    keep\n        kind = sink\n        input = lists\n        target = null\n",
              s_pipeline);
    const char *path = s_write ("gather.zpl", text);
    s_result_t r = zf_test_zflow (NULL, "validate", path, NULL);
    assert_int_equal (r.status, 0);
    char expected[1200];
    snprintf (expected, sizeof expected,
              "%s:21: warning: actor 'lists' (gather): no timeout: ", path);
    assert_non_null (strstr (r.err, expected));
    zf_test_result_free (&r);
    // timeout = 0 says it is meant: no warning.
    char *at = strstr (text, "        output = lists\n");
    char fixed[2100];
    snprintf (fixed, sizeof fixed, "%.*s        timeout = 0\n%s", (int) (at - text), text, at);
    path = s_write ("gather0.zpl", fixed);
    r = zf_test_zflow (NULL, "validate", path, NULL);
    assert_int_equal (r.status, 0);
    assert_string_equal (r.err, "");
    zf_test_result_free (&r);
}

static void
test_validate_misspelt_key (void **state)
{
    char text[2048];
    snprintf (text, sizeof text, "%s        concurency = 8\n", s_pipeline);
    const char *path = s_write ("typo.zpl", text);
    char expected[1200];
    snprintf (expected, sizeof expected,
              "%s:21: actor 'audit' (sink): unknown key 'concurency' (did you mean "
              "'concurrency'?)\n1 error in %s\n",
              path, path);
    s_result_t r = zf_test_zflow (NULL, "validate", path, NULL);
    assert_int_equal (r.status, 2);
    assert_string_equal (r.err, expected);
    assert_string_equal (r.out, "");
    zf_test_result_free (&r);
}

static void
test_validate_usage_and_missing_file (void **state)
{
    s_result_t r = zf_test_zflow (NULL, "validate", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "usage: zflow validate PIPELINE"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "validate", "/nonexistent/p.zpl", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "/nonexistent/p.zpl: cannot read: No such file or directory"));
    zf_test_result_free (&r);
}

static void
test_graph (void **state)
{
    const char *path = s_write ("demo.zpl", s_pipeline);
    s_result_t r = zf_test_zflow (NULL, "graph", path, NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "pipeline demo: 4 actors, 2 queues\n"));
    assert_non_null (strstr (r.out, "  seeds (producer) ──▶ [urls] ──▶ fetch (fetcher ×2)\n"));
    assert_non_null (strstr (r.out, "  fetch (fetcher ×2) ──▶ [pages] ──▶ store (sink), audit "
                                    "(sink)   (fan-out: each gets every item)\n"));
    zf_test_result_free (&r);

    r = zf_test_zflow (NULL, "graph", path, "--dot", NULL);
    assert_int_equal (r.status, 0);
    assert_int_equal (strncmp (r.out, "digraph \"demo\" {", 16), 0);
    assert_non_null (strstr (r.out, "\"actor:seeds\" -> \"queue:urls\";"));
    assert_non_null (strstr (r.out, "\"queue:pages\" -> \"actor:audit\";"));
    assert_non_null (strstr (r.out, "\"queue:pages\" [shape=cylinder"));
    zf_test_result_free (&r);

    r = zf_test_zflow (NULL, "graph", "--bogus", NULL);
    assert_int_equal (r.status, 2);
    zf_test_result_free (&r);
}

static void
test_help_and_unknown (void **state)
{
    s_result_t r = zf_test_zflow (NULL, "help", "fetcher", NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "max-per-host"));
    assert_non_null (strstr (r.out, "connect,network,timeout,429,5xx"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "help", "scheduler", NULL);
    assert_non_null (strstr (r.out, "each job (a sub-section of the actor) takes:"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "help", "queues", NULL);
    assert_non_null (strstr (r.out, "max-attempts"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "help", "nothing", NULL);
    assert_int_equal (r.status, 2);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "valdate", NULL);
    assert_int_equal (r.status, 2);
    assert_string_equal (r.err, "zflow: unknown command 'valdate' (did you mean 'validate'?)\n");
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "usage:"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "version", NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "ZFP/1"));
    zf_test_result_free (&r);
}

//  Every command, as docs/commands.md has it: `zflow NAME --help` prints
//  each of its options, and each is read (a value it refuses is said to be
//  wrong, not an unknown option).
static void
test_every_command_explains_itself (void **state)
{
    s_result_t doc = zf_test_zflow (NULL, "help", "--markdown", "commands", NULL);
    assert_int_equal (doc.status, 0);
    int commands = 0, options = 0;
    char *at = doc.out;
    while ((at = strstr (at, "\n## zflow "))) {
        char name[32];
        at += 10;
        size_t len = strcspn (at, "\n");
        assert_true (len < sizeof name);
        snprintf (name, sizeof name, "%.*s", (int) len, at);
        char *end = strstr (at, "\n## zflow ");
        s_result_t help = zf_test_zflow (NULL, name, "--help", NULL);
        assert_int_equal (help.status, 0);
        char usage[64];
        snprintf (usage, sizeof usage, "usage: zflow %s", name);
        assert_non_null (strstr (help.out, usage));
        s_result_t same = zf_test_zflow (NULL, "help", name, NULL);
        assert_string_equal (same.out, help.out);
        zf_test_result_free (&same);
        // Each option of the command's table: in its help, and read.
        for (char *row = at; (row = strstr (row, "\n| `--")) && (!end || row < end);) {
            row += 6;
            char option[64];
            len = strcspn (row, "`");
            snprintf (option, sizeof option, "--%.*s", (int) len, row);
            char shown[80];
            snprintf (shown, sizeof shown, "  %s", option);
            if (!strstr (help.out, shown))
                fail_msg ("zflow %s --help does not show %s", name, option);
            char wrong[96];
            snprintf (wrong, sizeof wrong, "%s=", option);
            s_result_t r = zf_test_zflow (NULL, name, "--help", wrong, NULL);
            assert_int_equal (r.status, 0); // --help first: help, whatever follows
            zf_test_result_free (&r);
            options++;
        }
        zf_test_result_free (&help);
        commands++;
    }
    zf_test_result_free (&doc);
    assert_true (commands >= 20);
    assert_true (options >= 40);
}

//  Options as people type them: --name=value, a misspelling, a bad value,
//  an option twice, a flag, the end of options.
static void
test_options_as_people_type_them (void **state)
{
    s_result_t r =
        zf_test_zflow (NULL, "put", "tcp://127.0.0.1:1", "q", "1", "--delya", "1s", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "zflow put: unknown option --delya (did you mean --delay?)"));
    assert_non_null (strstr (r.err, "usage: zflow put ENDPOINT QUEUE [JSON ...] [options]"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "put", "tcp://127.0.0.1:1", "q", "1", "--priority=12", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "zflow put: --priority '12': 12 is out of range 0..9"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "put", "tcp://127.0.0.1:1", "q", "1", "--delay", "soon", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "zflow put: --delay 'soon': "));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "put", "tcp://127.0.0.1:1", "q", "1", "--delay=1s", "--delay", "2s",
                       NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "zflow put: --delay is given twice"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "put", "tcp://127.0.0.1:1", "q", "1", "--timeout", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "zflow put: --timeout needs a value (DURATION)"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "result", "tcp://127.0.0.1:1", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "usage: zflow result ENDPOINT ID [options]"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "result", "tcp://127.0.0.1:1", "a", "b", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "zflow result: one word too many: 'b'"));
    zf_test_result_free (&r);
    // A flag, given as --name or --name=true; after --, words only.
    const char *path = s_write ("demo.zpl", s_pipeline);
    r = zf_test_zflow (NULL, "graph", path, "--dot=true", NULL);
    assert_int_equal (r.status, 0);
    assert_int_equal (strncmp (r.out, "digraph", 7), 0);
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "graph", "--", "--dot", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "--dot"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "help", "put", NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "exit status:\n  0 every item was put and confirmed"));
    zf_test_result_free (&r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_validate_good, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_validate_warns_of_a_gather_without_timeout, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_validate_misspelt_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_validate_usage_and_missing_file, s_setup, s_teardown),
        cmocka_unit_test (test_every_command_explains_itself),
        cmocka_unit_test_setup_teardown (test_options_as_people_type_them, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_graph, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_help_and_unknown, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
