/*  Tests of the journal on real files: records come back in order after a
    reopen; a torn tail (a write cut at any byte of the last records, zeros
    after them) is cut off and the journal goes on; a bit flipped in any
    other record, in any segment, stops the open with the file and the
    offset and changes nothing; a reader reads the same and never writes;
    a repair cuts a corrupt journal, keeping a copy of what it cuts; a
    snapshot replaces what came before it and an unfinished one is dropped;
    one journal serves one broker at a time; and a failed write is tried
    again without losing or tearing a record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_journal.h"
#include "zf_testkit.h"
#include "zflow.h"

#include <dirent.h>
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
#define SEGMENT_3 "0000000000000003.zfj"

//  The bytes of s_dir/j/name (free them), *size their count; NULL if none.
static uint8_t *
s_read_bytes (const char *name, size_t *size)
{
    char *path = zsys_sprintf ("%s/j/%s", s_dir, name);
    FILE *file = fopen (path, "rb");
    free (path);
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

static void
s_write_bytes (const char *name, const uint8_t *data, size_t size)
{
    char *path = zsys_sprintf ("%s/j/%s", s_dir, name);
    FILE *file = fopen (path, "wb");
    free (path);
    assert_non_null (file);
    assert_int_equal (fwrite (data, 1, size, file), size);
    fclose (file);
}

//  Every file of the journal's folder, names and bytes: what "nothing was
//  written" is checked against.
typedef struct {
    char *names[16];   // sorted
    uint8_t *data[16]; // their bytes
    size_t sizes[16];  // their sizes
    int count;         // files
} s_tree_t;

static int
s_name_cmp (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
s_tree_take (s_tree_t *tree)
{
    memset (tree, 0, sizeof *tree);
    char *path = s_path ("j");
    DIR *dir = opendir (path);
    free (path);
    assert_non_null (dir);
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (entry->d_name[0] != '.') {
            assert_true (tree->count < 16);
            tree->names[tree->count++] = strdup (entry->d_name);
        }
    closedir (dir);
    qsort (tree->names, (size_t) tree->count, sizeof (char *), s_name_cmp);
    for (int i = 0; i < tree->count; i++)
        tree->data[i] = s_read_bytes (tree->names[i], &tree->sizes[i]);
}

static void
s_tree_free (s_tree_t *tree)
{
    for (int i = 0; i < tree->count; i++) {
        free (tree->names[i]);
        free (tree->data[i]);
    }
    tree->count = 0;
}

//  Whether the folder holds what tree holds, byte for byte.
static bool
s_tree_same (const s_tree_t *tree)
{
    s_tree_t now;
    s_tree_take (&now);
    bool same = now.count == tree->count;
    for (int i = 0; same && i < now.count; i++)
        same = streq (now.names[i], tree->names[i]) && now.sizes[i] == tree->sizes[i] &&
               memcmp (now.data[i], tree->data[i], now.sizes[i]) == 0;
    s_tree_free (&now);
    return same;
}

//  Reads s_dir/j as zflow status --state does: NULL (err filled) if the
//  open or the replay fails.
static int
s_read_only (seen_t *seen, zf_journal_report_t *report, zf_error_t *err)
{
    char *dir = s_path ("j");
    zf_journal_t *reader = zf_journal_open_readonly (dir, err);
    free (dir);
    int rc = reader ? zf_journal_replay (reader, s_collect, seen, report, err) : -1;
    zf_journal_destroy (&reader);
    return rc;
}

//  The journal of several segments the flips and cuts are tried on:
//  SEGMENTS segments of PER_SEGMENT records of sizes that differ, of
//  several types, their payloads letters (no zero bytes). No snapshot:
//  every segment is read.
#define SEGMENTS    3
#define PER_SEGMENT 5
static const size_t s_sizes[PER_SEGMENT] = { 3, 17, 40, 150, 9 };
static const zf_jr_type_t s_types[PER_SEGMENT] = { ZF_JR_PUT, ZF_JR_ACK, ZF_JR_PUT, ZF_JR_RETRY,
                                                   ZF_JR_FIN };

//  "T:payload" of record r of segment k (1 to SEGMENTS), as seen_t has it.
static char *
s_expected (int k, int r)
{
    char payload[200];
    for (size_t i = 0; i < s_sizes[r]; i++)
        payload[i] = (char) ('a' + (k * 7 + r * 3 + (int) i) % 26);
    payload[s_sizes[r]] = 0;
    return zsys_sprintf ("%d:%s", (int) s_types[r], payload);
}

//  Where record r starts in its segment.
static size_t
s_offset (int r)
{
    size_t at = 16;
    for (int i = 0; i < r; i++)
        at += 9 + s_sizes[i];
    return at;
}

static const char *
s_segment_name (int k)
{
    static char name[32];
    snprintf (name, sizeof name, "%016x.zfj", k);
    return name;
}

static void
test_files_are_private (void **state)
{
    // Item bodies live in the journal: its folders (those it makes) are
    // 0700 and its files 0600, whatever the umask lets through.
    mode_t was = umask (022);
    zf_error_t err;
    char *dir = s_path ("state/zflow/j");
    zf_journal_t *journal = zf_journal_open (dir, ZF_SYNC_ALWAYS, 2, &err);
    assert_non_null (journal);
    seen_t seen = { 0 };
    assert_int_equal (zf_journal_replay (journal, s_collect, &seen, NULL, &err), 0);
    s_append (journal, ZF_JR_PUT, "a body");
    zf_journal_destroy (&journal);
    umask (was);
    const char *folders[] = { "state", "state/zflow", "state/zflow/j" };
    for (int i = 0; i < 3; i++) {
        char *path = s_path (folders[i]);
        struct stat st;
        assert_int_equal (stat (path, &st), 0);
        assert_int_equal (st.st_mode & 0777, 0700);
        free (path);
    }
    DIR *folder = opendir (dir);
    assert_non_null (folder);
    int files = 0;
    for (struct dirent *entry; (entry = readdir (folder));) {
        if (entry->d_name[0] == '.')
            continue;
        char *path = zsys_sprintf ("%s/%s", dir, entry->d_name);
        struct stat st;
        assert_int_equal (stat (path, &st), 0);
        if (st.st_mode & 0077)
            fail_msg ("%s is %o", path, st.st_mode & 0777);
        files++;
        free (path);
    }
    closedir (folder);
    assert_true (files >= 2); // its LOCK and a segment
    free (dir);
}

static void
s_build_segments (void)
{
    zf_error_t err;
    char *dir = s_path ("j"), *tmp = s_path ("tmp");
    zf_journal_t *journal = zf_journal_open (dir, ZF_SYNC_NEVER, 2, &err); // its LOCK
    assert_non_null (journal);
    zf_journal_destroy (&journal);
    for (int k = 1; k <= SEGMENTS; k++) {
        journal = zf_journal_open (tmp, ZF_SYNC_NEVER, 2, &err);
        assert_non_null (journal);
        assert_int_equal (zf_journal_replay (journal, s_collect, NULL, NULL, &err), 0);
        for (int r = 0; r < PER_SEGMENT; r++) {
            char *text = s_expected (k, r);
            s_append (journal, s_types[r], text + 2);
            free (text);
        }
        zf_journal_destroy (&journal);
        char *from = zsys_sprintf ("%s/" SEGMENT_1, tmp);
        char *to = zsys_sprintf ("%s/%s", dir, s_segment_name (k));
        assert_int_equal (rename (from, to), 0);
        free (from);
        free (to);
        assert_int_equal (zf_journal_remove (tmp, &err), 0);
    }
    free (dir);
    free (tmp);
}

static void
s_flip (const char *name, size_t at, int bit)
{
    size_t size;
    uint8_t *data = s_read_bytes (name, &size);
    assert_true (at < size);
    s_poke (name, (off_t) at, data[at] ^ (uint8_t) (1u << bit));
    free (data);
}

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

    journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 2);
    assert_string_equal (seen.records[1], "3:after");
    s_seen_free (&seen);
    zf_journal_destroy (&journal);

    // The last record whole but its checksum wrong is not torn (a cut
    // write leaves it short): a flipped bit, refused, the file left as it is.
    size = s_segment_size (SEGMENT_1);
    s_poke (SEGMENT_1, size - 1, 'X');
    journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    assert_null (journal);
    assert_non_null (
        strstr (err.text, "checksum mismatch at byte 29 (corrupt: the record is whole"));
    assert_int_equal (s_segment_size (SEGMENT_1), size);
    s_seen_free (&seen);
    s_poke (SEGMENT_1, size - 1, 'r');

    // Zeros after the last record (a file extended, never written) are.
    s_truncate (SEGMENT_1, size + 4096);
    journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 2);
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
    assert_non_null (strstr (
        err.text, "checksum mismatch at byte 28 (corrupt: a whole record follows at byte 40)"));
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
    assert_non_null (strstr (
        err.text, "checksum mismatch at byte 16 (corrupt: a whole record follows at byte 26)"));
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
    // On ports of its own: the pipeline names none (5670 may be taken).
    zf_test_result_t r = zf_test_zflow (NULL, "broker", path, "--endpoint", "tcp://127.0.0.1:*",
                                        "--events", "tcp://127.0.0.1:*", NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (
        strstr (r.err, "checksum mismatch at byte 16 (corrupt: a whole record follows"));
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

//  A bit flipped anywhere in a record that is not the journal's last (its
//  size, its checksum, its type, its payload), in the first segment, a
//  middle one or the last: the replay fails naming the file and the byte
//  the record starts at, a reader fails the same way, and nothing is
//  written (every file of the folder compared byte for byte). A size grown
//  past the end of the last segment included: whole records follow it.
static void
test_flips_are_refused (void **state)
{
    s_build_segments ();
    s_tree_t before;
    s_tree_take (&before);
    int flips = 0;
    for (int k = 1; k <= SEGMENTS; k++)
        for (int r = 0; r < PER_SEGMENT; r++) {
            if (k == SEGMENTS && r == PER_SEGMENT - 1)
                continue; // the last record: test_last_record_flips
            size_t at = s_offset (r);
            for (size_t byte = 0; byte < 9 + s_sizes[r]; byte++)
                for (int bit = 0; bit < 8; bit++) {
                    if (byte >= 9 && bit != (int) byte % 8)
                        continue; // a payload byte: one of its bits
                    s_flip (s_segment_name (k), at + byte, bit);
                    char where[64];
                    snprintf (where, sizeof where, " at byte %zu (corrupt", at);
                    zf_error_t err;
                    seen_t seen = { 0 };
                    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
                    if (journal || !strstr (err.text, s_segment_name (k)) ||
                        !strstr (err.text, where))
                        fail_msg ("segment %d, record %d, byte %zu, bit %d: %s", k, r, byte, bit,
                                  journal ? "read" : err.text);
                    s_seen_free (&seen);
                    zf_error_t read_err;
                    if (s_read_only (&seen, NULL, &read_err) == 0 ||
                        !streq (read_err.text, err.text))
                        fail_msg ("segment %d, record %d, byte %zu, bit %d: the reader says %s", k,
                                  r, byte, bit, read_err.text);
                    s_seen_free (&seen);
                    s_flip (s_segment_name (k), at + byte, bit);
                    if (!s_tree_same (&before))
                        fail_msg ("segment %d, record %d, byte %zu, bit %d: the folder changed", k,
                                  r, byte, bit);
                    flips++;
                }
        }
    print_message ("%d flips in %d records: each refused, the folder unchanged\n", flips,
                   SEGMENTS * PER_SEGMENT - 1);
    s_tree_free (&before);
}

//  The journal's last record: a flip that makes its size run past the end
//  cannot be told from a write cut short (it reads as torn, and only that
//  record is dropped); any other flip leaves it whole, and is refused.
static void
test_last_record_flips (void **state)
{
    s_build_segments ();
    const char *last = s_segment_name (SEGMENTS);
    size_t size;
    uint8_t *original = s_read_bytes (last, &size);
    size_t at = s_offset (PER_SEGMENT - 1);
    assert_int_equal (size, at + 9 + s_sizes[PER_SEGMENT - 1]);
    int torn = 0, refused = 0;
    for (size_t byte = 0; byte < 9 + s_sizes[PER_SEGMENT - 1]; byte++)
        for (int bit = 0; bit < 8; bit++) {
            if (byte >= 9 && bit != (int) byte % 8)
                continue;
            s_flip (last, at + byte, bit);
            size_t flipped_size;
            uint8_t *flipped = s_read_bytes (last, &flipped_size);
            uint64_t claimed = flipped[at] | flipped[at + 1] << 8 | flipped[at + 2] << 16 |
                               (uint64_t) flipped[at + 3] << 24;
            free (flipped);
            zf_error_t err;
            seen_t seen = { 0 };
            zf_journal_report_t report;
            zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
            if (byte < 4 && at + 9 + claimed > size) {
                // Past the end: torn, the records before it all there.
                assert_non_null (journal);
                assert_int_equal (seen.count, SEGMENTS * PER_SEGMENT - 1);
                assert_int_equal (report.torn, size - at);
                assert_int_equal (s_segment_size (last), at);
                torn++;
            }
            else {
                assert_null (journal);
                char where[64];
                snprintf (where, sizeof where, " at byte %zu (corrupt", at);
                assert_non_null (strstr (err.text, where));
                assert_int_equal (s_segment_size (last), size);
                refused++;
            }
            zf_journal_destroy (&journal);
            s_seen_free (&seen);
            s_write_bytes (last, original, size);
        }
    print_message ("the last record: %d flips read as torn, %d refused\n", torn, refused);
    assert_true (torn > 0 && refused > 0);
    free (original);
}

//  A write cut short anywhere in the last records (the file ends at any
//  byte of them, or is then extended with zeros, as a file system may
//  leave it): the replay keeps every whole record and drops the rest as
//  torn; a reader reads the same and leaves the file as it is; a writer
//  cuts it after the last whole record.
static void
test_torn_cuts_every_byte (void **state)
{
    s_build_segments ();
    const char *last = s_segment_name (SEGMENTS);
    size_t size;
    uint8_t *original = s_read_bytes (last, &size);
    uint8_t *bytes = (uint8_t *) calloc (1, size + 4096);
    memcpy (bytes, original, size);
    int cuts = 0;
    for (size_t cut = s_offset (PER_SEGMENT - 3); cut <= size; cut++)
        for (int zeros = 0; zeros < 2; zeros++) {
            // Zeros: to past where the file ended.
            size_t length = zeros ? size + 4096 : cut;
            memset (bytes + cut, 0, size + 4096 - cut);
            s_write_bytes (last, bytes, length);
            int whole = 0;
            while (whole < PER_SEGMENT && s_offset (whole + 1) <= cut)
                whole++;
            size_t good = s_offset (whole);

            zf_error_t err;
            seen_t seen = { 0 };
            zf_journal_report_t report;
            if (s_read_only (&seen, &report, &err))
                fail_msg ("cut at %zu%s: the reader says %s", cut, zeros ? ", zeros" : "",
                          err.text);
            assert_int_equal (seen.count, (SEGMENTS - 1) * PER_SEGMENT + whole);
            assert_int_equal (report.torn, length - good);
            assert_int_equal (s_segment_size (last), length);
            s_seen_free (&seen);

            zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
            if (!journal)
                fail_msg ("cut at %zu%s: %s", cut, zeros ? ", zeros" : "", err.text);
            assert_int_equal (seen.count, (SEGMENTS - 1) * PER_SEGMENT + whole);
            if (whole) {
                char *expected = s_expected (SEGMENTS, whole - 1);
                assert_string_equal (seen.records[seen.count - 1], expected);
                free (expected);
            }
            assert_int_equal (report.torn, length - good);
            assert_int_equal (s_segment_size (last), good);
            zf_journal_destroy (&journal);
            s_seen_free (&seen);
            memcpy (bytes, original, size);
            cuts++;
        }
    print_message ("%d cuts, each read as torn\n", cuts);
    free (bytes);
    free (original);
}

static void
s_append_bytes (zf_journal_t *journal, zf_jr_type_t type, const uint8_t *data, size_t size)
{
    memcpy (zf_journal_reserve (journal, type, size), data, size);
}

//  Large records. A size grown past the end before a large whole record
//  is corruption (the scan checks that record's checksum, over 24 MiB); a
//  large record of random bytes cut short is torn; so is one of a byte
//  that reads as record headers at every offset (the scan checks millions
//  of candidates, each in about constant time: checked over their own
//  bytes they would take hours, far past the test's timeout).
static void
test_large_records (void **state)
{
    size_t big = 24u << 20;
    uint8_t *data = (uint8_t *) malloc (big);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < big; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data[i] = (uint8_t) (x >> 24);
    }
    zf_error_t err;
    seen_t seen = { 0 };
    zf_journal_report_t report;
    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_non_null (journal);
    s_append (journal, ZF_JR_PUT, "a");
    s_append_bytes (journal, ZF_JR_PUT, data, big);
    s_append (journal, ZF_JR_ACK, "c");
    zf_journal_destroy (&journal);
    off_t size = s_segment_size (SEGMENT_1);

    s_flip (SEGMENT_1, 16 + 3, 4); // "a" claims 256 MiB and a byte
    journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_null (journal);
    assert_non_null (strstr (
        err.text, "a record cut short at byte 16 (corrupt: a whole record follows at byte 26)"));
    assert_int_equal (s_segment_size (SEGMENT_1), size);
    s_flip (SEGMENT_1, 16 + 3, 4);

    // Cut three quarters into the random record.
    s_truncate (SEGMENT_1, 26 + 9 + (off_t) big * 3 / 4);
    journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 1);
    assert_int_equal (report.torn, 9 + big * 3 / 4);
    zf_journal_destroy (&journal);
    s_seen_free (&seen);

    // Bytes of 1: at every offset a record of type 1, 16 MiB long, that
    // fits in what is left for the first 3 MiB of them: each is checked.
    size_t ones = 19u << 20;
    memset (data, 1, big);
    s_append_bytes (journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err), ZF_JR_PUT, data, ones);
    zf_journal_destroy (&journal);
    s_seen_free (&seen);
    s_truncate (SEGMENT_1, 26 + 9 + (off_t) ones - 4096);
    journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    if (!journal)
        fail_msg ("%s", err.text);
    assert_int_equal (seen.count, 1);
    assert_int_equal (report.torn, 9 + ones - 4096);
    zf_journal_destroy (&journal);
    s_seen_free (&seen);

    // 8 MiB of such records are more than the scan checks (about a second
    // of work): it cannot tell torn from corrupt, so it refuses, and cuts
    // nothing. (zflow journal repair would cut it.)
    s_append_bytes (journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err), ZF_JR_PUT, data, big);
    zf_journal_destroy (&journal);
    s_seen_free (&seen);
    s_truncate (SEGMENT_1, 26 + 9 + (off_t) big - 4096);
    journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    assert_null (journal);
    assert_non_null (strstr (err.text, "a record cut short at byte 26 (corrupt: too many "
                                       "record-like bytes follow to tell it torn)"));
    assert_int_equal (s_segment_size (SEGMENT_1), 26 + 9 + (off_t) big - 4096);
    s_seen_free (&seen);
    free (data);
}

//  A reader writes nothing, whatever the journal holds: a torn tail is
//  told, not cut; an unfinished snapshot and the segments a snapshot
//  replaced are read past, not deleted; the lock file is not written. A
//  writer on the same folder does all of that.
static void
test_readers_never_write (void **state)
{
    zf_error_t err;
    seen_t seen = { 0 };
    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_non_null (journal);
    s_append (journal, ZF_JR_PUT, "old");
    zf_journal_commit (journal, 0);
    size_t old_size;
    uint8_t *old = s_read_bytes (SEGMENT_1, &old_size);
    assert_int_equal (zf_journal_snapshot_begin (journal, &err), 0);
    s_append (journal, ZF_JR_PUT, "state");
    assert_int_equal (zf_journal_snapshot_end (journal, &err), 0);
    s_append (journal, ZF_JR_ACK, "new");
    zf_journal_commit (journal, 0);
    assert_int_equal (zf_journal_snapshot_begin (journal, &err), 0);
    s_append (journal, ZF_JR_PUT, "half");
    zf_journal_destroy (&journal);
    // As after a crash between a snapshot's end and the deletes, and
    // another in the middle of a write.
    s_write_bytes (SEGMENT_1, old, old_size);
    free (old);
    s_truncate (SEGMENT_2, s_segment_size (SEGMENT_2) - 2);
    s_tree_t before;
    s_tree_take (&before);
    assert_int_equal (before.count, 4); // LOCK and three segments

    zf_journal_report_t report;
    assert_int_equal (s_read_only (&seen, &report, &err), 0);
    assert_int_equal (seen.count, 1);
    assert_string_equal (seen.records[0], "1:state");
    assert_int_equal (report.torn, 9 + 3 - 2);
    assert_true (s_tree_same (&before));
    s_seen_free (&seen);

    // A writer holding it: the reader is refused, and the other way round.
    journal = s_open (ZF_SYNC_NEVER, &seen, &report, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 1);
    s_seen_free (&seen);
    assert_int_equal (s_segment_size (SEGMENT_1), -1);
    assert_int_equal (s_segment_size (SEGMENT_3), -1);
    assert_int_equal (s_segment_size (SEGMENT_2), before.sizes[1] - report.torn);
    char *expected = zsys_sprintf ("is in use by a broker (pid %d)", (int) getpid ());
    assert_int_equal (s_read_only (&seen, NULL, &err), -1);
    assert_non_null (strstr (err.text, expected));
    free (expected);
    zf_journal_destroy (&journal);
    char *dir = s_path ("j");
    zf_journal_t *reader = zf_journal_open_readonly (dir, &err);
    assert_non_null (reader);
    assert_null (zf_journal_open (dir, ZF_SYNC_NEVER, 2, &err));
    assert_non_null (strstr (err.text, "is being read"));
    zf_journal_destroy (&reader);
    free (dir);
    s_tree_free (&before);

    // A folder that is not there is not made; one without LOCK (a copy) is
    // read, and LOCK not made.
    char *none = s_path ("none");
    assert_null (zf_journal_open_readonly (none, &err));
    assert_non_null (strstr (err.text, "no journal folder"));
    assert_false (zsys_file_exists (none));
    free (none);
    char *lock = s_path ("j/LOCK");
    assert_int_equal (unlink (lock), 0);
    assert_int_equal (s_read_only (&seen, NULL, &err), 0);
    assert_int_equal (seen.count, 1);
    assert_false (zsys_file_exists (lock));
    s_seen_free (&seen);
    free (lock);
}

//  A journal refused is left as it was found: not even the segments a
//  snapshot replaced, nor an unfinished snapshot, are deleted.
static void
test_refused_journal_is_untouched (void **state)
{
    zf_error_t err;
    seen_t seen = { 0 };
    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_non_null (journal);
    s_append (journal, ZF_JR_PUT, "old");
    zf_journal_commit (journal, 0);
    size_t old_size;
    uint8_t *old = s_read_bytes (SEGMENT_1, &old_size);
    assert_int_equal (zf_journal_snapshot_begin (journal, &err), 0);
    s_append (journal, ZF_JR_PUT, "state");
    s_append (journal, ZF_JR_PUT, "more");
    assert_int_equal (zf_journal_snapshot_end (journal, &err), 0);
    s_append (journal, ZF_JR_ACK, "new");
    zf_journal_commit (journal, 0);
    assert_int_equal (zf_journal_snapshot_begin (journal, &err), 0);
    s_append (journal, ZF_JR_PUT, "half");
    zf_journal_destroy (&journal);
    s_write_bytes (SEGMENT_1, old, old_size);
    free (old);
    s_flip (SEGMENT_2, 16 + 2, 6); // "state" claims 4 MiB more than it has
    s_tree_t before;
    s_tree_take (&before);
    assert_int_equal (before.count, 4);
    journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_null (journal);
    assert_non_null (strstr (err.text, SEGMENT_2 ": a record cut short at byte 16 (corrupt: a "
                                                 "whole record follows at byte 30)"));
    assert_true (s_tree_same (&before));
    s_tree_free (&before);
}

//  Repair: a corrupt last segment is cut at its first bad record, what is
//  cut copied beside it; the journal then reads with the records before it.
static void
test_repair_cuts_the_last_segment (void **state)
{
    s_build_segments ();
    const char *last = s_segment_name (SEGMENTS);
    size_t size;
    uint8_t *original = s_read_bytes (last, &size);
    size_t at = s_offset (2);
    s_flip (last, at + 3, 0); // +16 MiB
    uint8_t *flipped = s_read_bytes (last, &size);

    char *dir = s_path ("j");
    zf_journal_repair_t report;
    zf_error_t err;
    assert_int_equal (zf_journal_repair (dir, false, NULL, NULL, &report, &err), 0);
    assert_true (report.corrupt && report.repaired);
    assert_non_null (strstr (report.file, last));
    assert_int_equal (report.offset, at);
    assert_non_null (strstr (report.problem, "a record cut short"));
    assert_int_equal (report.kept, at);
    assert_int_equal (report.cut, size - at);
    assert_int_equal (report.later, 0);
    assert_int_equal (report.records, (SEGMENTS - 1) * PER_SEGMENT + 2);
    char *cut_name = zsys_sprintf ("%s.cut-%zu", last, at);
    char *cut_path = zsys_sprintf ("%s/%s", dir, cut_name);
    assert_string_equal (report.cut_file, cut_path);
    size_t cut_size;
    uint8_t *cut = s_read_bytes (cut_name, &cut_size);
    assert_int_equal (cut_size, size - at);
    assert_memory_equal (cut, flipped + at, cut_size);
    assert_int_equal (s_segment_size (last), at);
    free (cut);

    seen_t seen = { 0 };
    zf_journal_report_t read;
    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, &read, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, (SEGMENTS - 1) * PER_SEGMENT + 2);
    assert_int_equal (read.torn, 0);
    zf_journal_destroy (&journal);
    s_seen_free (&seen);

    // Whole now: nothing to do, nothing changed.
    s_tree_t before;
    s_tree_take (&before);
    assert_int_equal (zf_journal_repair (dir, false, NULL, NULL, &report, &err), 0);
    assert_false (report.corrupt);
    assert_int_equal (report.records, (SEGMENTS - 1) * PER_SEGMENT + 2);
    assert_true (s_tree_same (&before));
    s_tree_free (&before);

    // The same flip again at the same byte: the copy is never overwritten.
    s_write_bytes (last, flipped, size);
    s_tree_take (&before);
    assert_int_equal (zf_journal_repair (dir, false, NULL, NULL, &report, &err), -1);
    assert_non_null (strstr (err.text, "exists (from an earlier repair?)"));
    assert_true (s_tree_same (&before));
    s_tree_free (&before);

    // Not while a broker holds the journal.
    assert_int_equal (unlink (cut_path), 0);
    journal = zf_journal_open (dir, ZF_SYNC_NEVER, 2, &err);
    assert_non_null (journal);
    s_tree_take (&before);
    assert_int_equal (zf_journal_repair (dir, false, NULL, NULL, &report, &err), -1);
    assert_non_null (strstr (err.text, "is in use by another broker"));
    assert_true (s_tree_same (&before));
    s_tree_free (&before);
    zf_journal_destroy (&journal);
    assert_int_equal (zf_journal_repair (dir, false, NULL, NULL, &report, &err), 0);
    assert_true (report.repaired);
    free (cut_name);
    free (cut_path);
    free (flipped);
    free (original);
    free (dir);
}

//  A record the reader refuses (a payload that does not decode) is a bad
//  record to repair too.
static void
test_repair_cuts_an_unreadable_record (void **state)
{
    s_new_journal ("one", "two", "three", NULL);
    char *dir = s_path ("j");
    zf_journal_repair_t report;
    zf_error_t err;
    assert_int_equal (zf_journal_repair (dir, false, s_refuse_two, NULL, &report, &err), 0);
    assert_true (report.repaired);
    assert_int_equal (report.offset, 28);
    assert_int_equal (report.records, 1);
    assert_non_null (strstr (report.problem, "queue name too long"));
    free (dir);
    seen_t seen = { 0 };
    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, 1);
    zf_journal_destroy (&journal);
    s_seen_free (&seen);
}

//  A bad record in a segment before the last: cutting there drops the
//  segments after it, which a repair does only when asked, moving them
//  aside; a bad header is not for a repair to mend.
static void
test_repair_of_an_earlier_segment (void **state)
{
    s_build_segments ();
    size_t at = s_offset (3);
    s_flip (SEGMENT_2, at + 6, 2); // a checksum bit
    s_tree_t before;
    s_tree_take (&before);
    char *dir = s_path ("j");
    zf_journal_repair_t report;
    zf_error_t err;
    assert_int_equal (zf_journal_repair (dir, false, NULL, NULL, &report, &err), -1);
    assert_true (report.corrupt);
    assert_false (report.repaired);
    assert_int_equal (report.offset, at);
    assert_int_equal (report.later, 1);
    assert_int_equal (report.later_size, (uint64_t) s_segment_size (SEGMENT_3));
    assert_non_null (strstr (err.text, "is not the last segment"));
    assert_true (s_tree_same (&before));

    assert_int_equal (zf_journal_repair (dir, true, NULL, NULL, &report, &err), 0);
    assert_true (report.repaired);
    assert_int_equal (report.records, PER_SEGMENT + 3);
    assert_int_equal (s_segment_size (SEGMENT_2), at);
    assert_int_equal (s_segment_size (SEGMENT_3), -1);
    size_t size;
    uint8_t *moved = s_read_bytes (SEGMENT_3 ".cut-0", &size);
    assert_int_equal (size, before.sizes[2]);
    assert_memory_equal (moved, before.data[2], size);
    free (moved);
    seen_t seen = { 0 };
    zf_journal_t *journal = s_open (ZF_SYNC_NEVER, &seen, NULL, &err);
    assert_non_null (journal);
    assert_int_equal (seen.count, PER_SEGMENT + 3);
    zf_journal_destroy (&journal);
    s_seen_free (&seen);
    s_tree_free (&before);

    // A header that is not a segment's.
    s_poke (SEGMENT_1, 0, 'X');
    s_tree_take (&before);
    assert_int_equal (zf_journal_repair (dir, true, NULL, NULL, &report, &err), -1);
    assert_non_null (strstr (err.text, "not a segment's header"));
    assert_true (s_tree_same (&before));
    s_tree_free (&before);

    // No journal there: nothing made.
    char *none = s_path ("none");
    assert_int_equal (zsys_dir_create ("%s", none), 0);
    assert_int_equal (zf_journal_repair (none, true, NULL, NULL, &report, &err), -1);
    assert_non_null (strstr (err.text, "holds no journal segments"));
    char *lock = zsys_sprintf ("%s/LOCK", none);
    assert_false (zsys_file_exists (lock));
    free (lock);
    free (none);
    free (dir);
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
        cmocka_unit_test_setup_teardown (test_flips_are_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_last_record_flips, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_torn_cuts_every_byte, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_large_records, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_readers_never_write, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_refused_journal_is_untouched, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_files_are_private, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_repair_cuts_the_last_segment, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_repair_cuts_an_unreadable_record, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_repair_of_an_earlier_segment, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
