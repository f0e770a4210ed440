/*  libFuzzer target: the journal reader on any bytes.

    The input is written as the one segment of a journal, which is then
    read by a reader, then opened and replayed. Whatever the bytes, the
    replay succeeds (a torn tail cut off) or fails with a reason; the
    reader does the same, finds the same, and writes nothing; a journal
    refused is left as it was. Once it has succeeded, a second replay
    reads the same records and finds nothing torn. Once refused, a repair
    cuts it (or says why not): the bytes kept and the bytes it copied
    aside are the input's, and the journal then reads with the records
    the repair counted. Each record's payload is read as its type says
    (schemas/zf_records.h): it reads or is refused with a reason, and one
    that reads writes back the same bytes.
*/
#include "zf_journal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(condition)                                                                           \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf (stderr, "fuzz_journal: check failed: %s\n", #condition);                      \
            abort ();                                                                              \
        }                                                                                          \
    } while (0)

static int
s_count (void *arg, zf_jr_type_t type, const uint8_t *payload, size_t size, zf_error_t *err)
{
    CHECK (type > 0 && type < ZF_JR_TYPE_COUNT);
    (*(uint64_t *) arg)++;
    zf_record_t record;
    zf_error_t why;
    if (zf_record_read (&record, type, payload, size, &why) == 0) {
        record.type = type; // a PUT_SHORT reads as a PUT: written back as it was
        if (type == ZF_JR_PUT && zf_record_size (&record) == size + 9)
            return 0; // a PUT of an older journal: written back, it has not_before, priority
        CHECK (zf_record_size (&record) == size);
        uint8_t *again = (uint8_t *) malloc (size + 1);
        zf_record_write (&record, again);
        CHECK (memcmp (again, payload, size) == 0);
        free (again);
    }
    else
        CHECK (why.text[0]);
    return 0;
}

//  Whether the file at path holds size bytes of data.
static bool
s_file_is (const char *path, const uint8_t *data, size_t size)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return false;
    uint8_t *now = (uint8_t *) malloc (size + 1);
    size_t read = fread (now, 1, size + 1, file);
    fclose (file);
    bool same = read == size && memcmp (now, data, size) == 0;
    free (now);
    return same;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf (dir, sizeof dir, "/tmp/zflow-fuzz-journal-XXXXXX");
        CHECK (mkdtemp (dir));
        zsys_init ();
        zsys_set_logstream (NULL);
    }
    char path[128];
    snprintf (path, sizeof path, "%s/0000000000000001.zfj", dir);
    FILE *file = fopen (path, "w");
    CHECK (file);
    CHECK (fwrite (data, 1, size, file) == size);
    fclose (file);

    zf_error_t err;
    zf_journal_t *reader = zf_journal_open_readonly (dir, &err);
    CHECK (reader);
    uint64_t read_records = 0;
    zf_journal_report_t read_report;
    int read_rc = zf_journal_replay (reader, s_count, &read_records, &read_report, &err);
    zf_journal_destroy (&reader);
    CHECK (s_file_is (path, data, size));

    zf_journal_t *journal = zf_journal_open (dir, ZF_SYNC_NEVER, 1, &err);
    CHECK (journal);
    uint64_t records = 0;
    zf_journal_report_t report;
    int rc = zf_journal_replay (journal, s_count, &records, &report, &err);
    CHECK (rc == 0 || err.text[0]);
    zf_journal_destroy (&journal);
    CHECK (rc == read_rc);
    if (rc == 0)
        CHECK (records == read_records && report.torn == read_report.torn);
    else {
        CHECK (s_file_is (path, data, size));
        zf_journal_repair_t repair;
        if (zf_journal_repair (dir, false, s_count, &records, &repair, &err) == 0) {
            CHECK (repair.corrupt && repair.repaired);
            CHECK (repair.kept + repair.cut == size);
            CHECK (s_file_is (path, data, (size_t) repair.kept));
            CHECK (s_file_is (repair.cut_file, data + repair.kept, (size_t) repair.cut));
            unlink (repair.cut_file);
            journal = zf_journal_open (dir, ZF_SYNC_NEVER, 1, &err);
            CHECK (journal);
            uint64_t kept = 0;
            CHECK (zf_journal_replay (journal, s_count, &kept, &report, &err) == 0);
            CHECK (kept == repair.records && report.torn == 0);
            zf_journal_destroy (&journal);
        }
        else
            CHECK (err.text[0] && !repair.repaired);
    }
    if (rc == 0) {
        journal = zf_journal_open (dir, ZF_SYNC_NEVER, 1, &err);
        CHECK (journal);
        uint64_t again = 0;
        CHECK (zf_journal_replay (journal, s_count, &again, &report, &err) == 0);
        CHECK (again == records && report.torn == 0);
        zf_journal_destroy (&journal);
    }
    // Leave one segment for the next input to overwrite.
    zf_error_t ignored;
    zf_journal_remove (dir, &ignored);
    zsys_dir_create ("%s", dir);
    return 0;
}
