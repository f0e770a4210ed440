/*  zf_records: the payloads of the broker's journal records.

    The journal (broker/zf_journal.h) frames, checksums and syncs records;
    this module says what a record holds, field for field, as
    docs/durability.md specifies it. All little-endian; a name is a one-byte
    length and its bytes.

        PUT         id, parent, root (16 bytes each), ts i64, attempt u32,
                    dead u8, fan-in id (16) size u32 index u32, queue name,
                    headers (u32 length, bytes), reason (u16 length, bytes),
                    body (u32 length, bytes), not_before i64, priority u8
                    (the last two absent in a PUT of a journal written before them)
        ACK         id (16), dead u8, group name
        FIN         id (16), outcome u8 (ZF_OUTCOME_DONE, _DEAD, _CANCELLED)
        CHECKPOINT  actor name, data (u32 length, bytes)
        RETRY       id (16), attempts u32, group name
        RESULT      id (16: the result item's, zero in an end), root (16), ts i64,
                    outcome u8 (0: a result; else the lineage ended so), attempts u32,
                    queue name, headers (u32 length: 0), reason (u16 length, bytes),
                    body (u32 length, bytes), detail (u16 length, bytes; absent when
                    empty, and in a journal written before it)
        PUT_SHORT   a PUT without the fields that are zero: id (16), has u8, ts i64,
                    parent and root (has 1), attempt u32 (has 2), fan-in id size
                    index (has 4), queue name, headers (u32 length, bytes),
                    reason (u16 length, bytes; has 8), body (u32 length, bytes),
                    not_before i64 (has 16), priority u8 (has 32), detail (u16 length,
                    bytes; has 128); dead is has 64. A plain item's PUT in 71 bytes
                    fewer; it reads as a PUT. (PUT, which the broker no longer writes,
                    has no detail.)
        QUEUE       queue name, flags u8 (ZF_QUEUE_PAUSED): what an operator set on
                    a queue at run time (zflow pause, zflow resume)
        SCHEDULE    name, flags u8 (ZF_SCHEDULE_PAUSED, _REMOVED), last i64 (its
                    last firing handled, ms; INT64_MIN: none), queue name, spec (u32
                    length, bytes: the CONTROL's msgpack map): a schedule added at
                    run time, its state after a change or a firing

    A RESULT's outcome ZF_OUTCOME_LIVE (an end never has it) says that the
    root's lineage runs again: an item of it was requeued from a dead-letter
    queue, and its end is to come.

    A zf_record_t is one record of any type; its strings and bytes are views
    (of the caller's data when writing, of the payload when read), never
    copies. zf_record_read checks every length against the payload: a bad
    record gives -1 and the field that did not fit, never a read past it.
*/
#ifndef ZF_RECORDS_H_INCLUDED
#define ZF_RECORDS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zf_error.h"
#include "zflow.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Record types. The journal checks that a type is one of these.
typedef enum {
    ZF_JR_PUT = 1,      // an item stored
    ZF_JR_ACK,          // one consumer group's delivery finished
    ZF_JR_FIN,          // an item finished (all deliveries), with its outcome
    ZF_JR_CHECKPOINT,   // a source's position
    ZF_JR_SNAPSHOT_END, // the snapshot that opens this segment is complete (empty)
    ZF_JR_RETRY,        // one consumer group's delivery failed: its attempts so far
    ZF_JR_RESULT,       // a result of a root kept, or the end of its lineage
    ZF_JR_PUT_SHORT,    // a PUT without its zero fields (read as ZF_JR_PUT)
    ZF_JR_QUEUE,        // a queue's state set at run time (paused)
    ZF_JR_SCHEDULE,     // a schedule added at run time, changed, fired or removed
    ZF_JR_TYPE_COUNT
} zf_jr_type_t;

//  What became of an item, as FIN records it and the broker's dedup window
//  remembers it (ZF_OUTCOME_LIVE: stored still, never in a FIN).
enum { ZF_OUTCOME_LIVE = 1, ZF_OUTCOME_DONE, ZF_OUTCOME_DEAD, ZF_OUTCOME_CANCELLED };

//  A queue's flags in a QUEUE record.
enum { ZF_QUEUE_PAUSED = 1 };

//  A schedule's flags in a SCHEDULE record.
enum { ZF_SCHEDULE_PAUSED = 1, ZF_SCHEDULE_REMOVED = 2 };

#define ZF_RECORD_REASON_MAX UINT16_MAX // bytes of a reason, or of a detail, kept at most

typedef struct {
    zf_jr_type_t type;      // which record
    zf_id_t id;             // PUT, ACK, FIN, RETRY: the item
    zf_id_t parent;         // PUT: the item it was made from, or zero
    zf_id_t root;           // PUT: its lineage's root, or zero for a root; RESULT: the root
    int64_t ts;             // PUT, RESULT: creation time (of an end: when), ms since the epoch;
                            // SCHEDULE: its last firing handled
    int64_t not_before;     // PUT: not delivered before, ms since the Unix epoch; 0: now
    uint8_t priority;       // PUT: 0 to ZF_PRIORITY_MAX
    uint32_t attempt;       // PUT: attempts over; RETRY: attempts so far; RESULT: of a dead item
    bool dead;              // PUT: dead-lettered; ACK: the delivery was
    zf_group_t fanin;       // PUT: gather membership
    uint8_t outcome;        // FIN: ZF_OUTCOME_*; RESULT: 0 for a result, else the end's
                            // (ZF_OUTCOME_LIVE: the lineage runs again)
    uint8_t flags;          // QUEUE: ZF_QUEUE_*; SCHEDULE: ZF_SCHEDULE_*
    const char *name;       // PUT, RESULT, QUEUE: queue; ACK, RETRY: group; CHECKPOINT: actor;
                            // SCHEDULE: the schedule
    size_t name_size;       // bytes at name (at most ZF_NAME_MAX)
    const uint8_t *headers; // PUT: msgpack map of the envelope's headers
    size_t headers_size;    // bytes at headers
    const char *reason;     // PUT, RESULT: the last failure
    size_t reason_size;     // bytes at reason (cut to ZF_RECORD_REASON_MAX when written)
    const char *detail;     // PUT_SHORT, RESULT: the last failure's longer account
    size_t detail_size;     // bytes at detail (cut to ZF_RECORD_REASON_MAX when written)
    const char *target;     // SCHEDULE: the queue it puts to
    size_t target_size;     // bytes at target (at most ZF_NAME_MAX)
    const uint8_t *data;    // PUT, RESULT: the body; CHECKPOINT: the position; SCHEDULE: spec
    size_t data_size;       // bytes at data
} zf_record_t;

//  Bytes of record's payload. A record of type ZF_JR_PUT_SHORT is a PUT
//  written short; reading one gives type ZF_JR_PUT.
size_t zf_record_size (const zf_record_t *record);

//  Writes record's payload into out, which has zf_record_size bytes.
void zf_record_write (const zf_record_t *record, uint8_t *out);

//  Reads a payload of type into record (views into payload). Returns 0, or
//  -1 with err naming the record and the field that is wrong.
int zf_record_read (zf_record_t *record, zf_jr_type_t type, const uint8_t *payload, size_t size,
                    zf_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
