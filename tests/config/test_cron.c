/*  Tests of the cron engine and its time zones: many expressions and start
    times, month ends, leap years, L, W and #, Vixie's rule for the two day
    fields, and daylight-saving changes on the system's zone data: New York,
    London, and Lord Howe's 30-minute shift. Each expectation was worked out
    from the calendar by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_cron.h"
#include "zf_testkit.h"

typedef struct {
    const char *expr;    // the expression
    const char *zone;    // the time zone
    const char *from;    // start, strictly after
    const char *next[8]; // the next times, NULL-ended
} s_case_t;

static const s_case_t s_cases[] = {
    // Plain fields, steps, lists, names, seconds.
    { "*/15 9-10 * * mon-fri",
      "UTC",
      "2026-01-02T10:40:00Z",
      { "2026-01-02T10:45:00+00:00", "2026-01-05T09:00:00+00:00", "2026-01-05T09:15:00+00:00" } },
    { "0 12 1,15 jan,jul *",
      "UTC",
      "2026-01-01T12:00:00Z",
      { "2026-01-15T12:00:00+00:00", "2026-07-01T12:00:00+00:00", "2026-07-15T12:00:00+00:00",
        "2027-01-01T12:00:00+00:00" } },
    { "*/20 * * * * *",
      "UTC",
      "2026-01-01T00:00:00Z",
      { "2026-01-01T00:00:20+00:00", "2026-01-01T00:00:40+00:00", "2026-01-01T00:01:00+00:00" } },
    { "5/20 0 * * *",
      "UTC",
      "2026-01-01T00:00:00Z",
      { "2026-01-01T00:05:00+00:00", "2026-01-01T00:25:00+00:00", "2026-01-01T00:45:00+00:00",
        "2026-01-02T00:05:00+00:00" } },
    { "0 0 * * 7",
      "UTC",
      "2026-01-01T00:00:00Z",
      { "2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00" } },
    { "@weekly",
      "UTC",
      "2026-01-01T00:00:00Z",
      { "2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00" } },
    { "@monthly",
      "UTC",
      "2026-12-15T00:00:00Z",
      { "2027-01-01T00:00:00+00:00", "2027-02-01T00:00:00+00:00" } },
    { "@hourly",
      "UTC",
      "2026-12-31T23:00:00Z",
      { "2027-01-01T00:00:00+00:00", "2027-01-01T01:00:00+00:00" } },
    // Month ends and leap years.
    { "0 0 31 * *",
      "UTC",
      "2026-01-31T00:00:00Z",
      { "2026-03-31T00:00:00+00:00", "2026-05-31T00:00:00+00:00", "2026-07-31T00:00:00+00:00",
        "2026-08-31T00:00:00+00:00" } },
    { "0 0 29 2 *",
      "UTC",
      "2026-01-01T00:00:00Z",
      { "2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00" } },
    { "0 0 L * *",
      "UTC",
      "2028-01-15T00:00:00Z",
      { "2028-01-31T00:00:00+00:00", "2028-02-29T00:00:00+00:00", "2028-03-31T00:00:00+00:00",
        "2028-04-30T00:00:00+00:00" } },
    { "0 0 L 2 *",
      "UTC",
      "2099-06-01T00:00:00Z",
      { "2100-02-28T00:00:00+00:00", "2101-02-28T00:00:00+00:00" } }, // 2100 is no leap year
    // W, LW, # and L of a weekday.
    { "0 0 15W * *",
      "UTC",
      "2026-08-01T00:00:00Z",
      { "2026-08-14T00:00:00+00:00", "2026-09-15T00:00:00+00:00", "2026-10-15T00:00:00+00:00" } },
    { "0 0 1W * *",
      "UTC",
      "2026-08-01T00:00:00Z",
      { "2026-08-03T00:00:00+00:00", "2026-09-01T00:00:00+00:00" } },
    { "0 0 LW * *",
      "UTC",
      "2026-01-01T00:00:00Z",
      { "2026-01-30T00:00:00+00:00", "2026-02-27T00:00:00+00:00", "2026-03-31T00:00:00+00:00" } },
    { "0 0 * * fri#3",
      "UTC",
      "2026-01-01T00:00:00Z",
      { "2026-01-16T00:00:00+00:00", "2026-02-20T00:00:00+00:00", "2026-03-20T00:00:00+00:00" } },
    { "0 0 * * 5L",
      "UTC",
      "2026-01-01T00:00:00Z",
      { "2026-01-30T00:00:00+00:00", "2026-02-27T00:00:00+00:00" } },
    // Vixie: both day fields restricted, either matches; one starting with *, both must.
    { "0 0 13 * fri",
      "UTC",
      "2026-02-01T00:00:00Z",
      { "2026-02-06T00:00:00+00:00", "2026-02-13T00:00:00+00:00", "2026-02-20T00:00:00+00:00",
        "2026-02-27T00:00:00+00:00", "2026-03-06T00:00:00+00:00", "2026-03-13T00:00:00+00:00" } },
    { "0 0 */2 * fri",
      "UTC",
      "2026-02-01T00:00:00Z",
      { "2026-02-13T00:00:00+00:00", "2026-02-27T00:00:00+00:00", "2026-03-13T00:00:00+00:00" } },
    // New York, 2026-03-08 02:00 EST -> 03:00 EDT: the skipped 02:30 fires
    // at 03:00; 2026-11-01 02:00 EDT -> 01:00 EST: the repeated hour once.
    { "0 3 * * *",
      "America/New_York",
      "2026-03-07T00:00:00",
      { "2026-03-07T03:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T03:00:00-04:00" } },
    { "30 2 * * *",
      "America/New_York",
      "2026-03-07T00:00:00",
      { "2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00" } },
    { "30 1 * * *",
      "America/New_York",
      "2026-10-31T00:00:00",
      { "2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00" } },
    { "*/30 * * * *",
      "America/New_York",
      "2026-11-01T00:45:00",
      { "2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T02:00:00-05:00",
        "2026-11-01T02:30:00-05:00" } },
    { "30 1 * * *",
      "America/New_York",
      "2026-11-01T06:15:00Z", // 01:15 EST, the second pass
      { "2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00" } },
    // London, 2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 BST -> 01:00 GMT.
    { "0 1 * * *",
      "Europe/London",
      "2026-03-28T00:00:00",
      { "2026-03-28T01:00:00+00:00", "2026-03-29T02:00:00+01:00", "2026-03-30T01:00:00+01:00" } },
    { "30 1 * * *",
      "Europe/London",
      "2026-10-24T12:00:00",
      { "2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00" } },
    // Lord Howe moves by 30 minutes: 2026-04-05 02:00 +11 -> 01:30 +10:30,
    // 2026-10-04 02:00 +10:30 -> 02:30 +11.
    { "0,30 1,2 * * *",
      "Australia/Lord_Howe",
      "2026-04-04T12:00:00",
      { "2026-04-05T01:00:00+11:00", "2026-04-05T01:30:00+11:00", "2026-04-05T02:00:00+10:30",
        "2026-04-05T02:30:00+10:30", "2026-04-06T01:00:00+10:30" } },
    { "15 2 * * *",
      "Australia/Lord_Howe",
      "2026-10-03T12:00:00",
      { "2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00" } },
};

static void
test_next_times (void **state)
{
    for (size_t c = 0; c < sizeof s_cases / sizeof s_cases[0]; c++) {
        const s_case_t *k = &s_cases[c];
        zf_error_t err;
        zf_tz_t *tz = zf_tz_load (k->zone, &err);
        if (!tz)
            fail_msg ("%s: %s", k->zone, err.text);
        zf_cron_t *cron = zf_cron_new (k->expr, &err);
        if (!cron)
            fail_msg ("'%s': %s", k->expr, err.text);
        int64_t at;
        assert_int_equal (zf_cron_parse_time (tz, k->from, &at, &err), 0);
        for (int i = 0; k->next[i]; i++) {
            at = zf_cron_next (cron, tz, at);
            char text[40];
            zf_cron_format (tz, at, text, sizeof text);
            if (strcmp (text, k->next[i]))
                fail_msg ("'%s' in %s after %s: time %d is %s, expected %s", k->expr, k->zone,
                          k->from, i + 1, text, k->next[i]);
        }
        zf_cron_destroy (&cron);
        zf_tz_destroy (&tz);
    }
}

//  Standard expressions (no L, W or #, and no day field starting with '*'
//  beside a restricted other: there croniter takes either day, where Vixie
//  cron, and zflow, take both), compared with croniter's answers.
static const char *s_standard[] = {
    "* * * * *",     "*/5 * * * *",     "0 * * * *",        "15,45 * * * *", "0 */3 * * *",
    "30 9 * * *",    "0 9-17 * * *",    "0 9-17/2 * * 1-5", "0 0 1 * *",     "0 0 31 * *",
    "0 0 29 2 *",    "0 0 28-31 * *",   "0 0 * * 0",        "0 0 * * 6,0",   "0 12 * * mon",
    "0 0 1 1 *",     "0 0 1 */3 *",     "5 4 * * sun",      "0 22 * * 1-5",  "23 0-20/2 * * *",
    "0 0 13 * 5",    "0 0 1,15 * 3",    "0 0 31 12 *",      "0 6 1-7 * 1",   "59 23 * * *",
    "0 0 10-20 * *", "0 0 * jun-aug *", "1-59/7 * * * *",   "0 0 29 * *",    "0 0 30 * *",
};
static const char *s_starts[] = { "2026-01-01T00:00:00Z", "2026-02-27T23:59:00Z",
                                  "2027-12-31T23:30:00Z", "2028-02-28T12:00:00Z" };

static void
test_agrees_with_croniter (void **state)
{
    enum { COUNT = 12 };
    size_t nexpr = sizeof s_standard / sizeof s_standard[0];
    size_t nstart = sizeof s_starts / sizeof s_starts[0];
    char *input = (char *) zmalloc (nexpr * nstart * 80);
    size_t len = 0;
    for (size_t e = 0; e < nexpr; e++)
        for (size_t t = 0; t < nstart; t++)
            len += (size_t) sprintf (input + len, "%s|%s|%d\n", s_standard[e], s_starts[t], COUNT);
    zf_test_result_t r = zf_test_run (
        (char *[]){ "/usr/bin/python3", ZFLOW_SOURCE_DIR "/tests/helpers/cron_reference.py", NULL },
        input);
    free (input);
    if (r.status != 0)
        fail_msg ("croniter failed (scripts/setup installs python3-croniter): %s", r.err);
    zf_error_t err;
    zf_tz_t *utc = zf_tz_load ("UTC", &err);
    char *line = r.out;
    int compared = 0;
    for (size_t e = 0; e < nexpr; e++)
        for (size_t t = 0; t < nstart; t++) {
            zf_cron_t *cron = zf_cron_new (s_standard[e], &err);
            assert_non_null (cron);
            int64_t at;
            assert_int_equal (zf_cron_parse_time (utc, s_starts[t], &at, &err), 0);
            for (int i = 0; i < COUNT; i++) {
                at = zf_cron_next (cron, utc, at);
                char ours[40], theirs[40];
                zf_cron_format (utc, at, ours, sizeof ours);
                char *end = strchr (line, '\n');
                assert_non_null (end);
                snprintf (theirs, sizeof theirs, "%.*s", (int) (end - line), line);
                line = end + 1;
                if (strcmp (ours, theirs))
                    fail_msg ("'%s' after %s, time %d: zflow %s, croniter %s", s_standard[e],
                              s_starts[t], i + 1, ours, theirs);
                compared++;
            }
            zf_cron_destroy (&cron);
        }
    print_message ("%d fire times agree with croniter\n", compared);
    zf_tz_destroy (&utc);
    zf_test_result_free (&r);
}

static void
test_bad_expressions (void **state)
{
    static const struct {
        const char *expr, *error;
    } bad[] = {
        { "0 0 32 * *", "day of month: 32 is out of range 1-31" },
        { "60 * * * *", "minute: 60 is out of range 0-59" },
        { "0 0 * 13 *", "month: 13 is out of range 1-12" },
        { "0 0 * * 8", "day of week: 8 is out of range 0-7" },
        { "0 0 * * fri#6", "day of week: 'fri#6': # takes one day and a number 1-5" },
        { "0 10-5 * * *", "hour: the range 10-5 goes backwards" },
        { "*/0 * * * *", "minute: '*/0' has a bad step" },
        { "0 0 1-5W * *", "day of month: W takes one day, not a range" },
        { "0 0 * * *,", "day of week: '*,' ends with a comma" },
        { "0 0 * xyz *", "month: 'xyz' is not a value" },
        { "a b c", "'a b c' has 3 fields; expected 5" },
        { "@often", "unknown macro '@often'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zf_error_t err;
        zf_cron_t *cron = zf_cron_new (bad[i].expr, &err);
        if (cron)
            fail_msg ("'%s' was taken", bad[i].expr);
        if (!strstr (err.text, bad[i].error))
            fail_msg ("'%s': %s, expected %s", bad[i].expr, err.text, bad[i].error);
    }
    zf_error_t err;
    zf_tz_t *tz = zf_tz_load ("UTC", &err);
    zf_cron_t *never = zf_cron_new ("0 0 30 2 *", &err);
    assert_true (zf_cron_next (never, tz, 0) == INT64_MAX);
    zf_cron_destroy (&never);
    zf_tz_destroy (&tz);
    assert_null (zf_tz_load ("Mars/Olympus_Mons", &err));
    assert_non_null (strstr (err.text, "unknown time zone 'Mars/Olympus_Mons'"));
    assert_null (zf_tz_load ("../../etc/passwd", &err));
}

static void
test_command (void **state)
{
    // zflow cron, as a user types it.
    zf_test_result_t r = zf_test_zflow (NULL, "cron", "30 2 * * *", "--from", "2026-03-07T12:00:00",
                                        "--tz", "America/New_York", "--count", "2", NULL);
    assert_int_equal (r.status, 0);
    assert_string_equal (r.out, "2026-03-08T03:00:00-04:00\n2026-03-09T02:30:00-04:00\n");
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "cron", "0 0 32 * *", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "day of month: 32 is out of range 1-31"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "cron", "0 0 * * *", "--tz", "Nowhere/City", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "unknown time zone 'Nowhere/City'"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "cron", "0 0 * * *", "--from", "yesterday", NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "--from: 'yesterday' is not an ISO 8601 time"));
    zf_test_result_free (&r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_next_times),
        cmocka_unit_test (test_agrees_with_croniter),
        cmocka_unit_test (test_bad_expressions),
        cmocka_unit_test (test_command),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
