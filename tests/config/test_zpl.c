/*  Tests of the ZPL reader: the tree, line numbers, every syntax error with
    its line, and ${VAR} substitution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_zpl.h"

static void
test_tree_and_lines (void **state)
{
    const char *text = "# a comment\n"
                       "pipeline\n"
                       "    name = crawl   # trailing comment\n"
                       "\n"
                       "actors\n"
                       "    fetch\n"
                       "        cron = \"0 * * * *\"\n"
                       "        quoted = 'it''s'\n"
                       "        empty =\n";
    zlistx_t *errors = zf_errors_new ();
    zf_zpl_t *zpl = zf_zpl_load_text (text, "t.zpl", errors);
    // 'it''s' is not valid: a quote closes the value and text follows
    assert_int_equal (zlistx_size (errors), 1);
    assert_string_equal ((char *) zlistx_first (errors),
                         "t.zpl:8: ''s'' after the closing quote (ZPL has no escapes: hold a "
                         "quote inside the other kind, \"it's\")");
    zconfig_t *root = zf_zpl_root (zpl);
    assert_string_equal (zconfig_get (root, "pipeline/name", NULL), "crawl");
    assert_string_equal (zconfig_get (root, "actors/fetch/cron", NULL), "0 * * * *");
    assert_string_equal (zconfig_get (root, "actors/fetch/empty", "x"), "");
    assert_int_equal (zf_zpl_line (zpl, zconfig_locate (root, "pipeline")), 2);
    assert_int_equal (zf_zpl_line (zpl, zconfig_locate (root, "pipeline/name")), 3);
    assert_int_equal (zf_zpl_line (zpl, zconfig_locate (root, "actors/fetch/cron")), 7);
    assert_int_equal (zf_zpl_line (zpl, root), 0);
    zf_zpl_destroy (&zpl);
    assert_null (zpl);
    zlistx_destroy (&errors);
}

static void
test_syntax_errors (void **state)
{
    static const struct {
        const char *text;     // a file
        const char *expected; // its first error
    } cases[] = {
        { "a\n  b = 1\n", "f:2: indented by 2 spaces; ZPL indents by 4 per level" },
        { "a\n        b = 1\n", "f:2: indented 2 levels under its parent; expected 1" },
        { "a\n\tb = 1\n", "f:2: tab in indentation (ZPL indents with 4 spaces)" },
        { "a\n    b = \"open\n", "f:2: value has no closing \"" },
        { "a\n    b c = 1\n", "f:2: unexpected 'c = 1' (expected 'name' or 'name = value')" },
        { "a\n    = 1\n", "f:2: '=' cannot start a name" },
        { "a\n    b = x#y\n", "f:2: '#' right after a value; put a space before a comment or "
                              "quote the value" },
        { "a\n    b = ${ZFLOW_TEST_UNSET_VAR}\n",
          "f:2: environment variable ZFLOW_TEST_UNSET_VAR is not set (write "
          "${ZFLOW_TEST_UNSET_VAR:-default} to give a default)" },
        { "a\n    b = ${OPEN\n", "f:2: '${' without a closing '}'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zlistx_t *errors = zf_errors_new ();
        zf_zpl_t *zpl = zf_zpl_load_text (cases[i].text, "f", errors);
        assert_non_null (zpl);
        if (zlistx_size (errors) < 1)
            fail_msg ("no error for case %zu", i);
        assert_string_equal ((char *) zlistx_first (errors), cases[i].expected);
        zf_zpl_destroy (&zpl);
        zlistx_destroy (&errors);
    }
}

static void
test_every_error_reported (void **state)
{
    // A bad line is skipped and reading goes on: three mistakes, three errors.
    const char *text = "a\n  x\n    b = \"open\nc\n    d e\n    f = 1\n";
    zlistx_t *errors = zf_errors_new ();
    zf_zpl_t *zpl = zf_zpl_load_text (text, "f", errors);
    assert_int_equal (zlistx_size (errors), 3);
    assert_string_equal (zconfig_get (zf_zpl_root (zpl), "c/f", NULL), "1");
    zf_zpl_destroy (&zpl);
    zlistx_destroy (&errors);
}

static void
test_substitution (void **state)
{
    setenv ("ZFLOW_TEST_PORT", "5999", 1);
    setenv ("ZFLOW_TEST_EMPTY", "", 1);
    const char *text = "b\n"
                       "    endpoint = tcp://127.0.0.1:${ZFLOW_TEST_PORT}\n"
                       "    fallback = \"${ZFLOW_TEST_UNSET_VAR:-tcp://127.0.0.1:5670}\"\n"
                       "    empty = x${ZFLOW_TEST_EMPTY:-dflt}y\n"
                       "    literal = '${ZFLOW_TEST_PORT}'\n";
    zlistx_t *errors = zf_errors_new ();
    zf_zpl_t *zpl = zf_zpl_load_text (text, "f", errors);
    assert_int_equal (zlistx_size (errors), 0);
    zconfig_t *root = zf_zpl_root (zpl);
    assert_string_equal (zconfig_get (root, "b/endpoint", NULL), "tcp://127.0.0.1:5999");
    assert_string_equal (zconfig_get (root, "b/fallback", NULL), "tcp://127.0.0.1:5670");
    assert_string_equal (zconfig_get (root, "b/empty", NULL), "xdflty");
    assert_string_equal (zconfig_get (root, "b/literal", NULL), "${ZFLOW_TEST_PORT}");
    zf_zpl_destroy (&zpl);
    zlistx_destroy (&errors);
}

static void
test_unreadable (void **state)
{
    zlistx_t *errors = zf_errors_new ();
    assert_null (zf_zpl_load ("/nonexistent/zflow.zpl", errors));
    assert_string_equal ((char *) zlistx_first (errors),
                         "/nonexistent/zflow.zpl: cannot read: No such file or directory");
    zlistx_destroy (&errors);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tree_and_lines),       cmocka_unit_test (test_syntax_errors),
        cmocka_unit_test (test_every_error_reported), cmocka_unit_test (test_substitution),
        cmocka_unit_test (test_unreadable),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
