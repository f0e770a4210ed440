/*  Tests of config value parsing: durations, sizes, numbers, endpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "zf_value.h"

static void
test_durations (void **state)
{
    static const struct {
        const char *text; // as written
        int64_t ms;       // what it means
    } good[] = {
        { "0", 0 },        { "250ms", 250 },    { "30s", 30000 },     { "5m", 300000 },
        { "1h", 3600000 }, { "2d", 172800000 }, { "1h30m", 5400000 }, { "1s500ms", 1500 }
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        assert_int_equal (zf_parse_duration (good[i].text, &ms, NULL), 0);
        assert_true (ms == good[i].ms);
    }
    static const char *bad[] = { "", "10", "5 m", "1x", "-1s", "s", "1.5s", "99999999999d" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zf_error_t err;
        int64_t ms;
        if (zf_parse_duration (bad[i], &ms, &err) == 0)
            fail_msg ("'%s' parsed as %lld ms", bad[i], (long long) ms);
        assert_non_null (strstr (err.text, "duration"));
    }
    char buf[32];
    assert_string_equal (zf_format_duration (90000, buf, sizeof buf), "90s");
    assert_string_equal (zf_format_duration (120000, buf, sizeof buf), "2m");
    assert_string_equal (zf_format_duration (1500, buf, sizeof buf), "1500ms");
}

static void
test_sizes (void **state)
{
    static const struct {
        const char *text; // as written
        int64_t bytes;    // what it means
    } good[] = { { "512", 512 },         { "64KiB", 65536 }, { "10MB", 10000000 },
                 { "1GiB", 1073741824 }, { "2kb", 2000 },    { "16MiB", 16777216 } };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t bytes = -1;
        assert_int_equal (zf_parse_size (good[i].text, &bytes, NULL), 0);
        assert_true (bytes == good[i].bytes);
    }
    zf_error_t err;
    int64_t bytes;
    assert_int_equal (zf_parse_size ("10 MB", &bytes, &err), -1);
    assert_string_equal (err.text, "'10 MB' is not a size: expected e.g. 512, 64KiB, 10MB, 1GiB");
    assert_int_equal (zf_parse_size ("lots", &bytes, NULL), -1);
    assert_int_equal (zf_parse_size ("99999999999GiB", &bytes, NULL), -1);
}

static void
test_numbers (void **state)
{
    int64_t n;
    assert_int_equal (zf_parse_int ("10_000", &n, NULL), 0);
    assert_true (n == 10000);
    assert_int_equal (zf_parse_int ("-3", &n, NULL), 0);
    assert_true (n == -3);
    assert_int_equal (zf_parse_int ("1e3", &n, NULL), -1);
    assert_int_equal (zf_parse_int ("", &n, NULL), -1);
    assert_int_equal (zf_parse_int ("_1", &n, NULL), -1);
    double d;
    assert_int_equal (zf_parse_number ("2.5", &d, NULL), 0);
    assert_true (d == 2.5);
    assert_int_equal (zf_parse_number ("fast", &d, NULL), -1);
    assert_int_equal (zf_parse_rate ("100/s", &d, NULL), 0);
    assert_true (d == 100);
    assert_int_equal (zf_parse_rate ("30/min", &d, NULL), 0);
    assert_true (d == 0.5);
    assert_int_equal (zf_parse_rate ("7200/h", &d, NULL), 0);
    assert_true (d == 2);
    assert_int_equal (zf_parse_rate ("2.5", &d, NULL), 0);
    assert_true (d == 2.5);
    assert_int_equal (zf_parse_rate ("0", &d, NULL), 0);
    assert_true (d == 0);
    zf_error_t err;
    assert_int_equal (zf_parse_rate ("5/day", &d, &err), -1);
    assert_non_null (strstr (err.text, "per what?"));
    assert_int_equal (zf_parse_rate ("-1/s", &d, NULL), -1);
    assert_int_equal (zf_parse_rate ("/s", &d, NULL), -1);
    assert_int_equal (zf_parse_rate ("5 /s", &d, NULL), -1);
    assert_int_equal (zf_parse_rate ("1/d", &d, NULL), 0);
    assert_int_equal (zf_parse_rate ("0.0000000001/s", &d, &err), -1);
    assert_non_null (strstr (err.text, "out of range"));
    assert_int_equal (zf_parse_rate ("2000000000/s", &d, NULL), -1);
    bool b;
    assert_int_equal (zf_parse_bool ("Yes", &b, NULL), 0);
    assert_true (b);
    assert_int_equal (zf_parse_bool ("off", &b, NULL), 0);
    assert_false (b);
    assert_int_equal (zf_parse_bool ("maybe", &b, NULL), -1);
}

static void
test_endpoints (void **state)
{
    static const char *good[] = { "tcp://127.0.0.1:5670",  "tcp://*:5670",
                                  "tcp://127.0.0.1:*",     "tcp://[::1]:80",
                                  "ipc:///tmp/zflow.sock", "inproc://broker" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal (zf_parse_endpoint (good[i], NULL), 0);
    static const struct {
        const char *text;     // as written
        const char *fragment; // in the message
    } bad[] = { { "127.0.0.1:5670", "expected tcp://HOST:PORT" },
                { "tcp://127.0.0.1", "needs a host and a port" },
                { "tcp://127.0.0.1:99999", "port '99999' is not 1..65535" },
                { "tcp://127.0.0.1:http", "port 'http'" },
                { "ipc://", "no name" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zf_error_t err;
        assert_int_equal (zf_parse_endpoint (bad[i].text, &err), -1);
        if (!strstr (err.text, bad[i].fragment))
            fail_msg ("%s: %s", bad[i].text, err.text);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_durations),
        cmocka_unit_test (test_sizes),
        cmocka_unit_test (test_numbers),
        cmocka_unit_test (test_endpoints),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
