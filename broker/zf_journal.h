/*  zf_journal: the broker's write-ahead log, so that a broker killed at any
    moment and started again loses nothing it confirmed.

    An append-only log of checksummed records in numbered segment files
    (DIR/0000000000000001.zfj, ...). Each record is

        u32 size | u32 crc32c (of type and payload) | u8 type | payload

    little-endian. The broker appends a record for every change of state
    (an item stored, a delivery finished, an item finished, a checkpoint),
    writes the records of one loop turn with one write(), and holds back the
    CONFIRMs of the PUTs they hold until the records are durable: written
    for sync = never, on disk (fdatasync, by a syncer thread, so that the
    loop never waits for the disk) for always and batch.

    Compaction: once the log holds much more than the live state, the broker
    writes the live state into a new segment (a snapshot, closed by a
    SNAPSHOT_END record) and the older segments are deleted. Recovery reads
    from the newest complete snapshot on.

    A torn tail (the process or the machine died in the middle of a write)
    is the last record of the last segment cut short, with nothing whole
    after it, or zeros where the file system extended the file: it was
    never confirmed, and it is dropped and cut off. Any other bad record
    (a checksum that fails, a size that runs past the end with whole
    records after it, a record cut short in an earlier segment) is
    corruption: the journal refuses to open rather than serve wrong data
    or cut confirmed records, and writes nothing. zf_journal_repair cuts a
    corrupt journal at its first bad record, keeping a copy of what it cuts.
    A reader (zf_journal_open_readonly) never writes at all.

        zf_journal_t *journal = zf_journal_open ("state/journal", ZF_SYNC_BATCH, 2, &err);
        zf_journal_replay (journal, on_record, self, &report, &err);
        uint8_t *p = zf_journal_reserve (journal, ZF_JR_FIN, 17);
        ...
        zf_journal_commit (journal, now);
        if (zf_journal_durable (journal) >= lsn) ... confirm
*/
#ifndef ZF_JOURNAL_H_INCLUDED
#define ZF_JOURNAL_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zf_error.h"
#include "zf_pipeline.h" // zf_sync_t, as the broker section's sync says
#include "zf_records.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_journal_t zf_journal_t;

//  Largest record payload: what its u32 size can say. A broker's record is
//  one frame (at most max-frame, 2 GiB) and its envelope.
#define ZF_JOURNAL_RECORD_MAX UINT32_MAX

//  What recovery found.
typedef struct {
    uint64_t segments;  // segment files read
    uint64_t records;   // records replayed
    uint64_t bytes;     // bytes read
    uint64_t torn;      // bytes of a torn last record cut off (0 when none)
    int64_t elapsed_ms; // time the replay took
} zf_journal_report_t;

//  Called once per record in order; returns 0, or -1 with err filled if
//  the record cannot be applied (the replay stops and fails).
typedef int (zf_journal_fn) (void *arg, zf_jr_type_t type, const uint8_t *payload, size_t size,
                             zf_error_t *err);

//  Opens (creating it if needed) the journal in dir and locks it: one
//  broker per journal. interval_ms is the batch interval. NULL with err
//  filled if dir cannot be made, read or locked.
zf_journal_t *zf_journal_open (const char *dir, zf_sync_t sync, int64_t interval_ms,
                               zf_error_t *err);

//  Opens the journal in dir to read it and nothing else: no folder made,
//  nothing written (not even the lock file: a shared lock is taken on it,
//  so that no broker starts on the journal while it is read, nor it while
//  a broker runs). zf_journal_replay then reads it, and reports a torn tail
//  without cutting it; nothing may be appended. NULL with err filled if dir
//  is not a folder, cannot be read, or a broker holds it.
zf_journal_t *zf_journal_open_readonly (const char *dir, zf_error_t *err);

//  Writes and syncs what is appended, stops the syncer, unlocks; safe on
//  NULL.
void zf_journal_destroy (zf_journal_t **self_p);

//  Reads the journal and calls fn on each record, then readies the last
//  segment for appending (a torn tail cut off, an unfinished snapshot and
//  the segments a snapshot replaced deleted): only once all of it has read
//  well, and never for a reader. Call once, before any append. Returns 0,
//  or -1 with err naming the file, the offset and what is wrong; then
//  nothing was written, and for a corrupt journal (err->code ZF_EVALUE)
//  the caller must not start.
int zf_journal_replay (zf_journal_t *self, zf_journal_fn *fn, void *arg,
                       zf_journal_report_t *report, zf_error_t *err);

//  Room for a record of type with a payload of exactly size bytes, to be
//  filled before the next call on the journal. Never NULL (aborts when out
//  of memory: the broker cannot go on without its log).
uint8_t *zf_journal_reserve (zf_journal_t *self, zf_jr_type_t type, size_t size);

//  Position after the last record reserved: the records up to it are
//  durable once zf_journal_durable reaches it.
uint64_t zf_journal_appended (zf_journal_t *self);

//  Writes the records appended (one write) and asks the syncer for a sync
//  as the mode wants. Returns 0, or -1 if the disk refused (see
//  zf_journal_failed). After a failed write the records stay buffered and
//  a later commit writes them, once the retry's backoff has passed (0.1 s,
//  doubling up to 5 s) and the disk takes them; after a failed sync
//  nothing becomes durable any more.
int zf_journal_commit (zf_journal_t *self, int64_t now_ms);

//  Asks for the next sync without waiting for the rest of the batch
//  interval: the broker's writers are running out of window.
void zf_journal_hurry (zf_journal_t *self);

//  Position up to which records are durable.
uint64_t zf_journal_durable (zf_journal_t *self);

//  The syncer's pipe: readable when a sync has finished; then call
//  zf_journal_synced, which moves the durable position and may ask for the
//  next sync.
zsock_t *zf_journal_pipe (zf_journal_t *self);
void zf_journal_synced (zf_journal_t *self, int64_t now_ms);

//  Milliseconds until a batch sync, or the next try of a failed write, is
//  due (the loop's poll bound), or -1 when none is waiting.
int64_t zf_journal_due (zf_journal_t *self, int64_t now_ms);

//  Why the journal is not writing (a write failed, and is tried again; or a
//  sync failed, for good), or NULL.
const char *zf_journal_failed (zf_journal_t *self);

//  True when the log is large against the live state: time for a snapshot.
bool zf_journal_wants_snapshot (zf_journal_t *self);

//  A snapshot: begin starts a new segment (after syncing the current one);
//  the caller reserves records of the whole live state; end closes it with
//  SNAPSHOT_END, syncs it and deletes the older segments. Return 0 or -1.
int zf_journal_snapshot_begin (zf_journal_t *self, zf_error_t *err);
int zf_journal_snapshot_end (zf_journal_t *self, zf_error_t *err);

//  Segment size past which a snapshot is wanted (default 64 MiB; tests
//  set it small).
void zf_journal_set_segment_max (zf_journal_t *self, uint64_t bytes);

//  Makes dir and the folders above it that are missing, each 0700: item
//  bodies live there, not for other local users (a folder there already
//  keeps its mode). Returns 0, or -1 with errno.
int zf_journal_dir_create (const char *dir);

//  Deletes the journal in dir (its segments, its lock and the folder, if
//  nothing else is in it); unless it is in use. Returns 0, or -1 with err.
int zf_journal_remove (const char *dir, zf_error_t *err);

//  What zf_journal_repair found and did.
typedef struct {
    bool corrupt;        // a bad record was found (else nothing was done)
    bool repaired;       // it was cut off (else nothing was done)
    char file[512];      // the segment that holds it
    uint64_t offset;     // where in it the bad record starts
    char problem[256];   // what is wrong with it, as zf_journal_replay says
    uint64_t kept;       // bytes of that segment kept
    uint64_t cut;        // bytes of it cut off, copied into cut_file
    char cut_file[540];  // where: file.cut-OFFSET, beside it
    uint64_t records;    // whole records kept, in the segments read
    uint64_t later;      // segments after it, dropped (moved aside as NAME.cut-0)
    uint64_t later_size; // their bytes
    uint64_t torn;       // when nothing was corrupt: bytes of a torn tail (left to the broker)
} zf_journal_repair_t;

//  Cuts a journal that zf_journal_replay refuses as corrupt at its first
//  bad record, so that a broker starts on what comes before it. Takes the
//  journal's lock: refused while a broker runs on it. check is called on
//  each record as zf_journal_replay's fn (NULL: none); a record it refuses
//  is a bad record too. The bytes cut go to a new file beside the segment
//  (SEGMENT.cut-OFFSET, never overwritten). A bad record in a segment
//  before the last means dropping the segments after it as well: done
//  only if drop_later, each renamed SEGMENT.cut-0, else refused with
//  report filled. A journal that reads well is left as it is (its torn
//  tail, if any, is the broker's to cut). Returns 0 (report says what was
//  found and done), or -1 with err (what is wrong, and why it was not cut).
int zf_journal_repair (const char *dir, bool drop_later, zf_journal_fn *check, void *arg,
                       zf_journal_repair_t *report, zf_error_t *err);

//  CRC-32C (Castagnoli) of data, continuing from crc (0 to start).
uint32_t zf_crc32c (uint32_t crc, const void *data, size_t size);

#ifdef __cplusplus
}
#endif
#endif
