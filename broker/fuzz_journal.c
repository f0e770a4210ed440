/*  libFuzzer target: the journal reader on any bytes.

    The input is written as the one segment of a journal, which is then
    opened and replayed. Whatever the bytes, the replay succeeds (a torn
    tail cut off) or fails with a reason; once it has succeeded, a second
    replay reads the same records and finds nothing torn. Each record's
    payload is read as its type says (schemas/zf_records.h): it reads or
    is refused with a reason, and one that reads writes back the same bytes.
*/
#include "zf_journal.h"

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
    zf_journal_t *journal = zf_journal_open (dir, ZF_SYNC_NEVER, 1, &err);
    CHECK (journal);
    uint64_t records = 0;
    zf_journal_report_t report;
    int rc = zf_journal_replay (journal, s_count, &records, &report, &err);
    CHECK (rc == 0 || err.text[0]);
    zf_journal_destroy (&journal);
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
