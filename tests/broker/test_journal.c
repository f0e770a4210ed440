/*  Tests of the journal on real files: records come back in order after a
    reopen, a torn last record is cut off and the journal goes on, a bad
    record in the middle stops the open with the file and the offset, a
    snapshot replaces what came before it and an unfinished one is dropped,
    one journal serves one broker at a time, and a failed write is tried
    again without losing or tearing a record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_journal.h"
#include "zf_testkit.h"
#include "zflow.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_dir[256]; // the test's folder; the journal is s_dir/j

static int
s_setup (void **state)
{
    return zf_test_dir_new (s_dir, sizeof s_dir, "journal");
}

static int
s_teardown (void **state)
{
    return zf_test_dir_remove (s_dir);
}

static char *
s_path (const char *name)
{
    return zsys_sprintf ("%s/%s", s_dir, name);
}

//  What a replay saw: the payloads as strings, in order.
typedef struct {
    char *records[64]; // "T:payload"
    int count;         // entries
} seen_t;

static int
s_collect (void *arg, zf_jr_type_t type, const uint8_t *payload, size_t size, zf_error_t *err)
{
    seen_t *seen = (seen_t *) arg;
    if (seen->count < 64)
        seen->records[seen->count++] = zsys_sprintf ("%d:%.*s", (int) type, (int) size, payload);
    return 0;
}

static void
s_seen_free (seen_t *seen)
{
    for (int i = 0; i < seen->count; i++)
        zstr_free (&seen->records[i]);
    seen->count = 0;
}

static void
s_append (zf_journal_t *journal, zf_jr_type_t type, const char *text)
{
    memcpy (zf_journal_reserve (journal, type, strlen (text)), text, strlen (text));
}

//  Opens s_dir/j and replays it into seen; NULL (err filled) if it fails.
static zf_journal_t *
s_open (zf_sync_t sync, seen_t *seen, zf_journal_report_t *report, zf_error_t *err)
{
    char *dir = s_path ("j");
    zf_journal_t *journal = zf_journal_open (dir, sync, 2, err);
    free (dir);
    if (journal && zf_journal_replay (journal, s_collect, seen, report, err))
        zf_journal_destroy (&journal);
    return journal;
}

//  A new journal holding PUT records of the texts given (NULL-ended).
static void
s_new_journal (const char *text, ...)
{
    zf_error_t err;
    seen_t seen = { 0 };
    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 0);
    va_list args;
    va_start (args, text);
    for (; text; text = va_arg (args, const char *))
        s_append (journal, ZF_JR_PUT, text);
    va_end (args);
    zf_journal_destroy (&journal); // written as it goes
}

//  The size of the only segment, number 1.
static off_t
s_segment_size (const char *name)
{
    char *path = zsys_sprintf ("%s/j/%s", s_dir, name);
    struct stat st;
    off_t size = stat (path, &st) == 0 ? st.st_size : -1;
    free (path);
    return size;
}

static void
s_truncate (const char *name, off_t size)
{
    char *path = zsys_sprintf ("%s/j/%s", s_dir, name);
    assert_int_equal (truncate (path, size), 0);
    free (path);
}

static void
s_poke (const char *name, off_t at, uint8_t byte)
{
    char *path = zsys_sprintf ("%s/j/%s", s_dir, name);
    int fd = open (path, O_WRONLY);
    assert_true (fd >= 0);
    assert_int_equal (pwrite (fd, &byte, 1, at), 1);
    close (fd);
    free (path);
}

#define SEGMENT_1 "0000000000000001.zfj"
#define SEGMENT_2 "0000000000000002.zfj"

static void
test_records_come_back (void **state)
{
    zf_error_t err;
    seen_t seen = { 0 };
    zf_journal_t *journal = s_open (ZF_SYNC_ALWAYS, &seen, NULL, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 0);
    s_append (journal, ZF_JR_PUT, "first");
    s_append (journal, ZF_JR_ACK, "second");
    s_append (journal, ZF_JR_FIN, "");
    uint64_t lsn = zf_journal_appended (journal);
    assert_int_equal (zf_journal_commit (journal, zclock_mono ()), 0);
    // The syncer answers once the records are on disk.
    zsock_t *pipe = zf_journal_pipe (journal);
    while (zf_journal_durable (journal) < lsn) {
        zpoller_t *poller = zpoller_new (pipe, NULL);
        assert_non_null (zpoller_wait (poller, 5000));
        zpoller_destroy (&poller);
        zf_journal_synced (journal, zclock_mono ());
    }
    assert_true (zf_journal_durable (journal) >= lsn);
    zf_journal_destroy (&journal);

    zf_journal_report_t report;
    journal = s_open (ZF_SYNC_BATCH, &seen, &report, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 3);
    assert_string_equal (seen.records[0], "1:first");
    assert_string_equal (seen.records[1], "2:second");
    assert_string_equal (seen.records[2], "3:");
    assert_int_equal (report.records, 3);
    assert_int_equal (report.torn, 0);
    s_seen_free (&seen);
    zf_journal_destroy (&journal);
}

//  A record cut short at the end (the broker died writing it) is dropped,
//  and the journal appends after the last good one.
static void
test_torn_tail_is_cut (void **state)
{
    zf_error_t err;
    seen_t seen = { 0 };
    s_new_journal ("kept", "torn away", NULL);
    off_t size = s_segment_size (SEGMENT_1);
    s_truncate (SEGMENT_1, size - 3);

    zf_journal_report_t report;
    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 1);
    assert_string_equal (seen.records[0], "1:kept");
    assert_int_equal (report.torn, 9 + strlen ("torn away") - 3);
    s_seen_free (&seen);
    s_append (journal, ZF_JR_FIN, "after");
    zf_journal_commit (journal, 0);
    zf_journal_destroy (&journal);

    // The same with the last record whole but its checksum wrong (pages
    // of a write that did not all reach the disk), and with zeros after
    // the last record (a file extended, never written).
    journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 2);
    assert_string_equal (seen.records[1], "3:after");
    s_seen_free (&seen);
    zf_journal_destroy (&journal);
    size = s_segment_size (SEGMENT_1);
    s_poke (SEGMENT_1, size - 1, 'X');
    journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 1);
    assert_true (report.torn > 0);
    s_seen_free (&seen);
    zf_journal_destroy (&journal);
    size = s_segment_size (SEGMENT_1);
    s_truncate (SEGMENT_1, size + 4096);
    journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 1);
    assert_int_equal (report.torn, 4096);
    assert_int_equal (s_segment_size (SEGMENT_1), size);
    s_seen_free (&seen);
    zf_journal_destroy (&journal);
}

//  A bad record with good ones after it is corruption: the open fails and
//  says where.
static void
test_corruption_refuses (void **state)
{
    zf_error_t err;
    seen_t seen = { 0 };
    s_new_journal ("one", "two", "three", NULL);
    // Byte 16 + 9 + 3 + 9 is the first byte of "two".
    s_poke (SEGMENT_1, 16 + 9 + 3 + 9, 'T');
    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_null (journal);
    assert_non_null (strstr (err.text, SEGMENT_1));
    assert_non_null (strstr (err.text, "checksum mismatch at byte 28 (corrupt)"));
    assert_non_null (strstr (err.text, "will not start"));
    s_seen_free (&seen);

    // Not a journal at all.
    assert_int_equal (zf_test_write (s_dir, "j/" SEGMENT_1, "this is not a journal segment"), 0);
    journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_null (journal);
    assert_non_null (strstr (err.text, "not a zflow journal segment"));
    s_seen_free (&seen);
}

//  A record the reader cannot apply fails the open the same way.
static int
s_refuse_two (void *arg, zf_jr_type_t type, const uint8_t *payload, size_t size, zf_error_t *err)
{
    if (size == 3 && memcmp (payload, "two", 3) == 0)
        return zf_error_set (err, ZF_EVALUE, "PUT: queue name too long");
    return 0;
}

static void
test_unreadable_record_refuses (void **state)
{
    zf_error_t err;
    s_new_journal ("one", "two", NULL);
    char *dir = s_path ("j");
    zf_journal_t *journal = zf_journal_open (dir, ZF_SYNC_NEVER, 2, &err);
    free (dir);
    assert_non_null (journal);
    assert_int_equal (zf_journal_replay (journal, s_refuse_two, NULL, NULL, &err), -1);
    assert_non_null (strstr (err.text, "record at byte 28: PUT: queue name too long (corrupt)"));
    zf_journal_destroy (&journal);
}

//  A snapshot replaces the segments before it; an unfinished one is
//  dropped and the older segments count.
static void
test_snapshots (void **state)
{
    zf_error_t err;
    seen_t seen = { 0 };
    zf_journal_t *journal = s_open (ZF_SYNC_BATCH, &seen, NULL, &err);
    assert_non_null (journal);
    s_append (journal, ZF_JR_PUT, "old");
    assert_false (zf_journal_wants_snapshot (journal));
    zf_journal_set_segment_max (journal, 8);
    zf_journal_commit (journal, 0);
    assert_true (zf_journal_wants_snapshot (journal));
    assert_int_equal (zf_journal_snapshot_begin (journal, &err), 0);
    s_append (journal, ZF_JR_PUT, "state");
    assert_int_equal (zf_journal_snapshot_end (journal, &err), 0);
    assert_false (zf_journal_wants_snapshot (journal));
    s_append (journal, ZF_JR_ACK, "new");
    zf_journal_destroy (&journal);
    assert_int_equal (s_segment_size (SEGMENT_1), -1); // deleted

    journal = s_open (ZF_SYNC_BATCH, &seen, NULL, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 2);
    assert_string_equal (seen.records[0], "1:state");
    assert_string_equal (seen.records[1], "2:new");
    s_seen_free (&seen);

    // A snapshot begun and never ended (the broker died writing it).
    assert_int_equal (zf_journal_snapshot_begin (journal, &err), 0);
    s_append (journal, ZF_JR_PUT, "half");
    zf_journal_destroy (&journal);
    assert_true (s_segment_size ("0000000000000003.zfj") > 0);
    journal = s_open (ZF_SYNC_BATCH, &seen, NULL, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 2);
    assert_string_equal (seen.records[0], "1:state");
    assert_string_equal (seen.records[1], "2:new");
    assert_int_equal (s_segment_size ("0000000000000003.zfj"), -1);
    s_seen_free (&seen);
    zf_journal_destroy (&journal);
}

//  An unfinished snapshot is dropped only when it is whole up to where it
//  stops: a corrupt one is refused, not silently replaced by older state.
static void
test_corrupt_snapshot_refuses (void **state)
{
    zf_error_t err;
    seen_t seen = { 0 };
    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_non_null (journal);
    s_append (journal, ZF_JR_PUT, "old");
    assert_int_equal (zf_journal_snapshot_begin (journal, &err), 0);
    s_append (journal, ZF_JR_PUT, "a");
    s_append (journal, ZF_JR_PUT, "b");
    zf_journal_destroy (&journal);
    s_poke (SEGMENT_2, 16 + 9, 'A'); // "a" becomes "A": its checksum fails
    journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_null (journal);
    assert_non_null (strstr (err.text, SEGMENT_2));
    assert_non_null (strstr (err.text, "checksum mismatch at byte 16 (corrupt)"));
    s_seen_free (&seen);
}

static void
test_one_broker_per_journal (void **state)
{
    zf_error_t err;
    seen_t seen = { 0 };
    zf_journal_t *journal = s_open (ZF_SYNC_BATCH, &seen, NULL, &err);
    assert_non_null (journal);
    zf_journal_t *second = s_open (ZF_SYNC_BATCH, &seen, NULL, &err);
    assert_null (second);
    char *expected = zsys_sprintf ("is in use by another broker (pid %d)", (int) getpid ());
    assert_non_null (strstr (err.text, expected));
    free (expected);
    zf_journal_destroy (&journal);
    second = s_open (ZF_SYNC_BATCH, &seen, NULL, &err);
    assert_non_null (second);
    zf_journal_destroy (&second);

    // A folder that cannot be made.
    journal = zf_journal_open ("/proc/zflow-journal", ZF_SYNC_BATCH, 2, &err);
    assert_null (journal);
    assert_non_null (strstr (err.text, "cannot make the journal folder /proc/zflow-journal"));
}

//  The broker on a corrupt journal: `zflow broker` refuses to start and
//  says where; on a whole one it restores the items.
static void
test_broker_refuses_corrupt_journal (void **state)
{
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (s_dir,
                                          "broker\n"
                                          "    journal = j\n"
                                          "queues\n"
                                          "    jobs\n"
                                          "        external = true\n"
                                          "actors\n"
                                          "    store\n"
                                          "        kind = sink\n"
                                          "        input = jobs\n"
                                          "        target = null\n",
                                          &pipeline);
    assert_non_null (broker);
    zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "test", NULL, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal (zf_client_put (client, "jobs",
                                         "\xa3"
                                         "abc",
                                         4, NULL),
                          0);
    assert_int_equal (zf_client_flush (client, 5000), 0); // confirmed: on disk
    zf_client_destroy (&client);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);

    // Whole: three items come back.
    char path[300];
    snprintf (path, sizeof path, "%s/p.zpl", s_dir);
    zlistx_t *errors = zf_errors_new ();
    pipeline = zf_pipeline_load (path, zf_kinds (), errors);
    zlistx_destroy (&errors);
    assert_non_null (pipeline);
    broker = zf_broker_new (pipeline, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL, NULL);
    assert_non_null (broker);
    client = zf_client_new (zf_broker_endpoint (broker), "test", NULL, 0);
    size_t count = 0;
    zf_figures_t *queues = zf_client_queues (client, &count, 5000);
    assert_true (count >= 1);
    assert_string_equal (queues[0].name, "jobs");
    assert_int_equal (queues[0].depth, 3);
    free (queues);
    zf_client_destroy (&client);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);

    // A byte of the first record's payload changed: corrupt.
    s_poke (SEGMENT_1, 16 + 9 + 2, 0xEE);
    zf_test_result_t r = zf_test_zflow (NULL, "broker", path, NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "checksum mismatch at byte 16 (corrupt)"));
    assert_non_null (strstr (r.err, "will not start on a corrupt journal"));
    zf_test_result_free (&r);
}

//  A write that fails (here: past the file size limit, as on a full disk)
//  stops durability without losing what is buffered; once the write can be
//  done again, the part of a record it wrote is cut off and every record is
//  written, in order, and comes back after a reopen.
static void
test_write_fails_then_goes_on (void **state)
{
    zf_error_t err;
    seen_t seen = { 0 };
    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_non_null (journal);
    s_append (journal, ZF_JR_PUT, "first");
    assert_int_equal (zf_journal_commit (journal, zclock_mono ()), 0);
    uint64_t durable = zf_journal_durable (journal);
    off_t good = s_segment_size (SEGMENT_1);
    assert_true (good > 0);

    // Room for part of the next record only.
    struct rlimit unlimited, limit;
    assert_int_equal (getrlimit (RLIMIT_FSIZE, &unlimited), 0);
    limit = unlimited;
    limit.rlim_cur = (rlim_t) good + 10;
    signal (SIGXFSZ, SIG_IGN);
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &limit), 0);
    char second[200];
    memset (second, 's', sizeof second - 1);
    second[sizeof second - 1] = 0;
    s_append (journal, ZF_JR_PUT, second);
    assert_int_equal (zf_journal_commit (journal, zclock_mono ()), -1);
    const char *failed = zf_journal_failed (journal);
    assert_non_null (failed);
    assert_non_null (strstr (failed, "write failed"));
    assert_non_null (strstr (failed, "tried again"));
    assert_int_equal (zf_journal_durable (journal), durable);
    assert_true (s_segment_size (SEGMENT_1) > good); // part of a record went out: cut at the retry
    // The broker is told when to try again; until then, nothing is written.
    int64_t due = zf_journal_due (journal, zclock_mono ());
    assert_true (due > 0 && due <= 1000);
    s_append (journal, ZF_JR_ACK, "third");
    assert_int_equal (zf_journal_commit (journal, zclock_mono ()), -1);

    // Room again: the next try writes everything buffered.
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &unlimited), 0);
    signal (SIGXFSZ, SIG_DFL);
    assert_int_equal (zf_journal_commit (journal, zclock_mono () + 1000), 0);
    assert_null (zf_journal_failed (journal));
    assert_int_equal (zf_journal_durable (journal), zf_journal_appended (journal));
    zf_journal_destroy (&journal);

    zf_journal_report_t report;
    journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 3);
    assert_string_equal (seen.records[0], "1:first");
    assert_int_equal (strlen (seen.records[1]), 2 + strlen (second));
    assert_string_equal (seen.records[2], "2:third");
    assert_int_equal (report.torn, 0);
    s_seen_free (&seen);
    zf_journal_destroy (&journal);
}

static void
test_crc32c (void **state)
{
    // The check value of CRC-32C (RFC 3720, B.4).
    assert_int_equal (zf_crc32c (0, "123456789", 9), 0xE3069283);
    uint8_t zeros[32] = { 0 };
    assert_int_equal (zf_crc32c (0, zeros, 32), 0x8A9136AA);
    assert_int_equal (zf_crc32c (zf_crc32c (0, "1234", 4), "56789", 5), 0xE3069283);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_crc32c),
        cmocka_unit_test_setup_teardown (test_records_come_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_torn_tail_is_cut, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corruption_refuses, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unreadable_record_refuses, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_snapshots, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_snapshot_refuses, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_one_broker_per_journal, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_broker_refuses_corrupt_journal, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_write_fails_then_goes_on, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
