/*  zf_records: journal record payloads. See zf_records.h. */
#include "zf_records.h"
#include "zf_proto.h"

#include <string.h>

//  Which fields a type has, in the order they are written.
enum {
    F_ID = 1,
    F_PUT = 2,   // parent, root, ts, attempt, dead, fan-in (before the name)
    F_DEAD = 4,  // ACK: dead u8 (before the name)
    F_COUNT = 8, // RETRY: attempts u32 (before the name)
    F_OUTCOME = 16,
    F_NAME = 32,
    F_TAIL = 64,      // PUT: headers, reason, body after the name
    F_DATA = 128,     // CHECKPOINT: data after the name
    F_RESULT = 256,   // RESULT: root, ts, outcome, attempt (before the name)
    F_FLAGS = 512,    // QUEUE, SCHEDULE: flags u8 (after the name)
    F_SCHEDULE = 1024 // SCHEDULE: last i64, queue, spec (after the flags)
};

//  Bytes a PUT has after its body: not_before i64, priority u8. A PUT
//  written before they were has none, and reads as not delayed, priority 0.
#define S_PUT_SCHED (8 + 1)

static const unsigned s_fields[ZF_JR_TYPE_COUNT] = {
    [ZF_JR_PUT] = F_ID | F_PUT | F_NAME | F_TAIL,
    [ZF_JR_ACK] = F_ID | F_DEAD | F_NAME,
    [ZF_JR_FIN] = F_ID | F_OUTCOME,
    [ZF_JR_CHECKPOINT] = F_NAME | F_DATA,
    [ZF_JR_SNAPSHOT_END] = 0,
    [ZF_JR_RETRY] = F_ID | F_COUNT | F_NAME,
    [ZF_JR_RESULT] = F_ID | F_RESULT | F_NAME | F_TAIL,
    [ZF_JR_PUT_SHORT] = 0, // its own fields: s_short_*
    [ZF_JR_QUEUE] = F_NAME | F_FLAGS,
    [ZF_JR_SCHEDULE] = F_NAME | F_FLAGS | F_SCHEDULE,
};

static const char *const s_names[ZF_JR_TYPE_COUNT] = {
    [ZF_JR_PUT] = "PUT",
    [ZF_JR_ACK] = "ACK",
    [ZF_JR_FIN] = "FIN",
    [ZF_JR_CHECKPOINT] = "CHECKPOINT",
    [ZF_JR_SNAPSHOT_END] = "SNAPSHOT_END",
    [ZF_JR_RETRY] = "RETRY",
    [ZF_JR_RESULT] = "RESULT",
    [ZF_JR_PUT_SHORT] = "PUT_SHORT",
    [ZF_JR_QUEUE] = "QUEUE",
    [ZF_JR_SCHEDULE] = "SCHEDULE",
};

//  The fields a PUT_SHORT has, in its has byte.
enum {
    H_LINEAGE = 1, // parent, root
    H_ATTEMPT = 2,
    H_FANIN = 4,
    H_REASON = 8,
    H_NOT_BEFORE = 16,
    H_PRIORITY = 32,
    H_DEAD = 64, // no bytes
    H_DETAIL = 128,
    H_ALL = 255
};

static size_t
s_reason_size (const zf_record_t *r)
{
    return r->reason_size > ZF_RECORD_REASON_MAX ? ZF_RECORD_REASON_MAX : r->reason_size;
}

//  A detail is written only when there is one: a RESULT without one ends
//  after its body, as every RESULT of a journal written before it does.
static size_t
s_detail_size (const zf_record_t *r)
{
    return r->detail_size > ZF_RECORD_REASON_MAX ? ZF_RECORD_REASON_MAX : r->detail_size;
}

static unsigned
s_short_has (const zf_record_t *r)
{
    return (zf_id_is_zero (&r->parent) && zf_id_is_zero (&r->root) ? 0 : H_LINEAGE) |
           (r->attempt ? H_ATTEMPT : 0) |
           (zf_id_is_zero (&r->fanin.id) && !r->fanin.size && !r->fanin.index ? 0 : H_FANIN) |
           (s_reason_size (r) ? H_REASON : 0) | (r->not_before ? H_NOT_BEFORE : 0) |
           (r->priority ? H_PRIORITY : 0) | (r->dead ? H_DEAD : 0) |
           (s_detail_size (r) ? H_DETAIL : 0);
}

static size_t
s_short_size (const zf_record_t *r)
{
    unsigned has = s_short_has (r);
    return ZF_ID_SIZE + 1 + 8 + (has & H_LINEAGE ? 2 * ZF_ID_SIZE : 0) + (has & H_ATTEMPT ? 4 : 0) +
           (has & H_FANIN ? ZF_ID_SIZE + 4 + 4 : 0) + 1 + r->name_size + 4 + r->headers_size +
           (has & H_REASON ? 2 + s_reason_size (r) : 0) + 4 + r->data_size +
           (has & H_NOT_BEFORE ? 8 : 0) + (has & H_PRIORITY ? 1 : 0) +
           (has & H_DETAIL ? 2 + s_detail_size (r) : 0);
}

size_t
zf_record_size (const zf_record_t *r)
{
    if (r->type == ZF_JR_PUT_SHORT)
        return s_short_size (r);
    unsigned f = s_fields[r->type];
    size_t size = 0;
    if (f & F_ID)
        size += ZF_ID_SIZE;
    if (f & F_PUT)
        size += 2 * ZF_ID_SIZE + 8 + 4 + 1 + ZF_ID_SIZE + 4 + 4;
    if (f & F_RESULT)
        size += ZF_ID_SIZE + 8 + 1 + 4;
    if (f & F_DEAD)
        size += 1;
    if (f & F_COUNT)
        size += 4;
    if (f & F_OUTCOME)
        size += 1;
    if (f & F_NAME)
        size += 1 + r->name_size;
    if (f & F_TAIL)
        size += 4 + r->headers_size + 2 + s_reason_size (r) + 4 + r->data_size;
    if (f & F_DATA)
        size += 4 + r->data_size;
    if (f & F_FLAGS)
        size += 1;
    if (f & F_SCHEDULE)
        size += 8 + 1 + r->target_size + 4 + r->data_size;
    if (r->type == ZF_JR_PUT)
        size += S_PUT_SCHED;
    if (r->type == ZF_JR_RESULT && s_detail_size (r))
        size += 2 + s_detail_size (r);
    return size;
}

static uint8_t *
s_w (uint8_t *p, const void *data, size_t size)
{
    if (size)
        memcpy (p, data, size);
    return p + size;
}

static uint8_t *
s_wint (uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        *p++ = (uint8_t) (v >> (8 * i));
    return p;
}

static void
s_short_write (const zf_record_t *r, uint8_t *p)
{
    unsigned has = s_short_has (r);
    p = s_w (p, r->id.bytes, ZF_ID_SIZE);
    *p++ = (uint8_t) has;
    p = s_wint (p, (uint64_t) r->ts, 8);
    if (has & H_LINEAGE) {
        p = s_w (p, r->parent.bytes, ZF_ID_SIZE);
        p = s_w (p, r->root.bytes, ZF_ID_SIZE);
    }
    if (has & H_ATTEMPT)
        p = s_wint (p, r->attempt, 4);
    if (has & H_FANIN) {
        p = s_w (p, r->fanin.id.bytes, ZF_ID_SIZE);
        p = s_wint (p, r->fanin.size, 4);
        p = s_wint (p, r->fanin.index, 4);
    }
    *p++ = (uint8_t) r->name_size;
    p = s_w (p, r->name, r->name_size);
    p = s_wint (p, r->headers_size, 4);
    p = s_w (p, r->headers, r->headers_size);
    if (has & H_REASON) {
        p = s_wint (p, s_reason_size (r), 2);
        p = s_w (p, r->reason, s_reason_size (r));
    }
    p = s_wint (p, r->data_size, 4);
    p = s_w (p, r->data, r->data_size);
    if (has & H_NOT_BEFORE)
        p = s_wint (p, (uint64_t) r->not_before, 8);
    if (has & H_PRIORITY)
        *p++ = r->priority;
    if (has & H_DETAIL) {
        p = s_wint (p, s_detail_size (r), 2);
        s_w (p, r->detail, s_detail_size (r));
    }
}

void
zf_record_write (const zf_record_t *r, uint8_t *p)
{
    if (r->type == ZF_JR_PUT_SHORT) {
        s_short_write (r, p);
        return;
    }
    unsigned f = s_fields[r->type];
    if (f & F_ID)
        p = s_w (p, r->id.bytes, ZF_ID_SIZE);
    if (f & F_PUT) {
        p = s_w (p, r->parent.bytes, ZF_ID_SIZE);
        p = s_w (p, r->root.bytes, ZF_ID_SIZE);
        p = s_wint (p, (uint64_t) r->ts, 8);
        p = s_wint (p, r->attempt, 4);
        *p++ = r->dead;
        p = s_w (p, r->fanin.id.bytes, ZF_ID_SIZE);
        p = s_wint (p, r->fanin.size, 4);
        p = s_wint (p, r->fanin.index, 4);
    }
    if (f & F_RESULT) {
        p = s_w (p, r->root.bytes, ZF_ID_SIZE);
        p = s_wint (p, (uint64_t) r->ts, 8);
        *p++ = r->outcome;
        p = s_wint (p, r->attempt, 4);
    }
    if (f & F_DEAD)
        *p++ = r->dead;
    if (f & F_COUNT)
        p = s_wint (p, r->attempt, 4);
    if (f & F_OUTCOME)
        *p++ = r->outcome;
    if (f & F_NAME) {
        *p++ = (uint8_t) r->name_size;
        p = s_w (p, r->name, r->name_size);
    }
    if (f & F_TAIL) {
        p = s_wint (p, r->headers_size, 4);
        p = s_w (p, r->headers, r->headers_size);
        p = s_wint (p, s_reason_size (r), 2);
        p = s_w (p, r->reason, s_reason_size (r));
        p = s_wint (p, r->data_size, 4);
        p = s_w (p, r->data, r->data_size);
    }
    if (r->type == ZF_JR_RESULT && s_detail_size (r)) {
        p = s_wint (p, s_detail_size (r), 2);
        p = s_w (p, r->detail, s_detail_size (r));
    }
    if (r->type == ZF_JR_PUT) {
        p = s_wint (p, (uint64_t) r->not_before, 8);
        *p++ = r->priority;
    }
    if (f & F_DATA) {
        p = s_wint (p, r->data_size, 4);
        s_w (p, r->data, r->data_size);
    }
    if (f & F_FLAGS)
        *p++ = r->flags;
    if (f & F_SCHEDULE) {
        p = s_wint (p, (uint64_t) r->ts, 8);
        *p++ = (uint8_t) r->target_size;
        p = s_w (p, r->target, r->target_size);
        p = s_wint (p, r->data_size, 4);
        s_w (p, r->data, r->data_size);
    }
}

//  Reads a payload's fields; the first that does not fit is kept in bad.
typedef struct {
    const uint8_t *p;   // next byte
    const uint8_t *end; // past the last
    const char *bad;    // the field that did not fit, or NULL
} s_reader_t;

static const uint8_t *
s_r (s_reader_t *r, size_t size, const char *field)
{
    if (r->bad || (size_t) (r->end - r->p) < size) {
        if (!r->bad)
            r->bad = field;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += size;
    return at;
}

static uint64_t
s_rint (s_reader_t *r, int bytes, const char *field)
{
    const uint8_t *p = s_r (r, (size_t) bytes, field);
    uint64_t v = 0;
    for (int i = 0; p && i < bytes; i++)
        v |= (uint64_t) p[i] << (8 * i);
    return v;
}

static void
s_rid (s_reader_t *r, zf_id_t *id, const char *field)
{
    const uint8_t *p = s_r (r, ZF_ID_SIZE, field);
    if (p)
        memcpy (id->bytes, p, ZF_ID_SIZE);
}

//  Bytes with a length of `bytes` bytes before them.
static const uint8_t *
s_rblob (s_reader_t *r, int bytes, size_t *size, const char *field)
{
    *size = (size_t) s_rint (r, bytes, field);
    return s_r (r, *size, field);
}

//  A PUT_SHORT's fields into record (as a PUT; its dead in has);
//  r->bad names the first that does not fit. Returns the name of the last
//  field read.
static const char *
s_short_read (zf_record_t *record, s_reader_t *r, unsigned *has)
{
    s_rid (r, &record->id, "id");
    *has = (unsigned) s_rint (r, 1, "has");
    if (*has & ~(unsigned) H_ALL)
        return "has";
    record->ts = (int64_t) s_rint (r, 8, "ts");
    if (*has & H_LINEAGE) {
        s_rid (r, &record->parent, "parent");
        s_rid (r, &record->root, "root");
    }
    if (*has & H_ATTEMPT)
        record->attempt = (uint32_t) s_rint (r, 4, "attempt");
    if (*has & H_FANIN) {
        s_rid (r, &record->fanin.id, "group id");
        record->fanin.size = (uint32_t) s_rint (r, 4, "group size");
        record->fanin.index = (uint32_t) s_rint (r, 4, "group index");
    }
    record->name = (const char *) s_rblob (r, 1, &record->name_size, "queue");
    if (record->name_size > ZF_NAME_MAX && !r->bad)
        r->bad = "queue";
    record->headers = s_rblob (r, 4, &record->headers_size, "headers");
    if (*has & H_REASON)
        record->reason = (const char *) s_rblob (r, 2, &record->reason_size, "reason");
    record->data = s_rblob (r, 4, &record->data_size, "body");
    const char *last = "body";
    if (*has & H_NOT_BEFORE) {
        record->not_before = (int64_t) s_rint (r, 8, "not_before");
        last = "not_before";
    }
    if (*has & H_PRIORITY) {
        record->priority = (uint8_t) s_rint (r, 1, "priority");
        last = "priority";
    }
    if (*has & H_DETAIL) {
        record->detail = (const char *) s_rblob (r, 2, &record->detail_size, "detail");
        last = "detail";
    }
    return last;
}

int
zf_record_read (zf_record_t *record, zf_jr_type_t type, const uint8_t *payload, size_t size,
                zf_error_t *err)
{
    memset (record, 0, sizeof *record);
    if (type < ZF_JR_PUT || type >= ZF_JR_TYPE_COUNT)
        return zf_error_set (err, ZF_EVALUE, "record type %d is unknown", (int) type);
    record->type = type;
    unsigned f = s_fields[type];
    s_reader_t r = { .p = payload, .end = payload + size };
    const char *last = "type";
    uint64_t dead = 0;
    if (type == ZF_JR_PUT_SHORT) {
        unsigned has = 0;
        last = s_short_read (record, &r, &has);
        if (has & ~(unsigned) H_ALL)
            return zf_error_set (err, ZF_EVALUE, "PUT_SHORT: has %#x: unknown fields", has);
        dead = (has & H_DEAD) != 0;
        record->dead = dead;
        // One way to write each PUT: a field that is there is not zero.
        if (!r.bad && s_short_has (record) != has)
            return zf_error_set (err, ZF_EVALUE, "PUT_SHORT: has %#x, but fields %#x are zero", has,
                                 has & ~s_short_has (record));
        record->type = ZF_JR_PUT; // what it is
    }
    if (f & F_ID) {
        s_rid (&r, &record->id, "id");
        last = "id";
    }
    if (f & F_PUT) {
        s_rid (&r, &record->parent, "parent");
        s_rid (&r, &record->root, "root");
        record->ts = (int64_t) s_rint (&r, 8, "ts");
        record->attempt = (uint32_t) s_rint (&r, 4, "attempt");
        dead = s_rint (&r, 1, "dead");
        s_rid (&r, &record->fanin.id, "group id");
        record->fanin.size = (uint32_t) s_rint (&r, 4, "group size");
        record->fanin.index = (uint32_t) s_rint (&r, 4, "group index");
    }
    if (f & F_RESULT) {
        s_rid (&r, &record->root, "root");
        record->ts = (int64_t) s_rint (&r, 8, "ts");
        record->outcome = (uint8_t) s_rint (&r, 1, "outcome");
        record->attempt = (uint32_t) s_rint (&r, 4, "attempt");
    }
    if (f & F_DEAD)
        dead = s_rint (&r, 1, "dead");
    record->dead = dead == 1;
    if (f & F_COUNT)
        record->attempt = (uint32_t) s_rint (&r, 4, "attempt");
    if (f & F_OUTCOME) {
        record->outcome = (uint8_t) s_rint (&r, 1, "outcome");
        last = "outcome";
    }
    if (f & F_NAME) {
        const char *field = type == ZF_JR_SCHEDULE ? "schedule"
                            : type == ZF_JR_PUT || type == ZF_JR_RESULT || type == ZF_JR_QUEUE
                                ? "queue"
                            : type == ZF_JR_CHECKPOINT ? "actor"
                                                       : "group";
        record->name = (const char *) s_rblob (&r, 1, &record->name_size, field);
        if (record->name_size > ZF_NAME_MAX && !r.bad)
            r.bad = field;
        last = field;
    }
    if (f & F_TAIL) {
        record->headers = s_rblob (&r, 4, &record->headers_size, "headers");
        record->reason = (const char *) s_rblob (&r, 2, &record->reason_size, "reason");
        record->data = s_rblob (&r, 4, &record->data_size, "body");
        last = "body";
    }
    if (type == ZF_JR_RESULT && !r.bad && r.p != r.end) {
        record->detail = (const char *) s_rblob (&r, 2, &record->detail_size, "detail");
        last = "detail";
        if (!r.bad && !record->detail_size)
            return zf_error_set (err, ZF_EVALUE, "RESULT: an empty detail"); // never written
    }
    if (type == ZF_JR_PUT && !r.bad && r.p != r.end) {
        record->not_before = (int64_t) s_rint (&r, 8, "not_before");
        record->priority = (uint8_t) s_rint (&r, 1, "priority");
        last = "priority";
    }
    if (f & F_DATA) {
        record->data = s_rblob (&r, 4, &record->data_size, "data");
        last = "data";
    }
    if (f & F_FLAGS) {
        record->flags = (uint8_t) s_rint (&r, 1, "flags");
        last = "flags";
    }
    if (f & F_SCHEDULE) {
        record->ts = (int64_t) s_rint (&r, 8, "last");
        record->target = (const char *) s_rblob (&r, 1, &record->target_size, "queue");
        if (record->target_size > ZF_NAME_MAX && !r.bad)
            r.bad = "queue";
        record->data = s_rblob (&r, 4, &record->data_size, "spec");
        last = "spec";
    }
    if (r.bad)
        return zf_error_set (err, ZF_EVALUE, "%s: %s", s_names[type], r.bad);
    if (r.p != r.end)
        return zf_error_set (err, ZF_EVALUE, "%s: bytes after the %s", s_names[type], last);
    if (dead > 1)
        return zf_error_set (err, ZF_EVALUE, "%s: dead is %u, not 0 or 1", s_names[type],
                             (unsigned) dead);
    if (record->type == ZF_JR_PUT && record->name_size == 0)
        return zf_error_set (err, ZF_EVALUE, "%s: an empty queue name", s_names[type]);
    if (type == ZF_JR_FIN && record->outcome != ZF_OUTCOME_DONE &&
        record->outcome != ZF_OUTCOME_DEAD && record->outcome != ZF_OUTCOME_CANCELLED)
        return zf_error_set (err, ZF_EVALUE, "FIN: unknown outcome %u", record->outcome);
    if (record->type == ZF_JR_PUT && record->priority > ZF_PRIORITY_MAX)
        return zf_error_set (err, ZF_EVALUE, "%s: priority %u, at most %d", s_names[type],
                             record->priority, ZF_PRIORITY_MAX);
    if (type == ZF_JR_QUEUE && (record->flags & ~ZF_QUEUE_PAUSED))
        return zf_error_set (err, ZF_EVALUE, "QUEUE: flags %#x: unknown flags", record->flags);
    if ((type == ZF_JR_QUEUE || type == ZF_JR_SCHEDULE) && record->name_size == 0)
        return zf_error_set (err, ZF_EVALUE, "%s: an empty name", s_names[type]);
    if (type == ZF_JR_SCHEDULE && (record->flags & ~(ZF_SCHEDULE_PAUSED | ZF_SCHEDULE_REMOVED)))
        return zf_error_set (err, ZF_EVALUE, "SCHEDULE: flags %#x: unknown flags", record->flags);
    if (type == ZF_JR_RESULT && record->outcome != 0 && record->outcome != ZF_OUTCOME_LIVE &&
        record->outcome != ZF_OUTCOME_DONE && record->outcome != ZF_OUTCOME_DEAD &&
        record->outcome != ZF_OUTCOME_CANCELLED)
        return zf_error_set (err, ZF_EVALUE, "RESULT: unknown outcome %u", record->outcome);
    if (type == ZF_JR_CHECKPOINT && record->data_size > ZF_CHECKPOINT_MAX)
        return zf_error_set (err, ZF_EVALUE, "CHECKPOINT: data over %d bytes", ZF_CHECKPOINT_MAX);
    return 0;
}
