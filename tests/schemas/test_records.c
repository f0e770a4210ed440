/*  Tests of the journal records codec: every type writes the layout of
    docs/durability.md and reads back what was written; a record cut short
    or padded is refused with its type and field named.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_records.h"

#include <stdlib.h>
#include <string.h>

static zf_id_t
s_id (uint8_t first)
{
    zf_id_t id;
    for (int i = 0; i < ZF_ID_SIZE; i++)
        id.bytes[i] = (uint8_t) (first + i);
    return id;
}

//  Writes r, checks its size, reads it back into out.
static uint8_t *
s_round_trip (const zf_record_t *r, zf_record_t *out, size_t *size)
{
    *size = zf_record_size (r);
    uint8_t *payload = (uint8_t *) malloc (*size + 1);
    zf_record_write (r, payload);
    zf_error_t err;
    if (zf_record_read (out, r->type, payload, *size, &err))
        fail_msg ("%s", err.text);
    assert_int_equal (out->type, r->type);
    return payload;
}

static void
test_put (void **state)
{
    zf_record_t put = { .type = ZF_JR_PUT,
                        .id = s_id (1),
                        .parent = s_id (2),
                        .root = s_id (3),
                        .ts = 1795000000000,
                        .attempt = 4,
                        .dead = true,
                        .fanin = { .id = s_id (5), .size = 3, .index = 2 },
                        .name = "urls",
                        .name_size = 4,
                        .headers = (const uint8_t *) "\x81\xa1k\xa1v",
                        .headers_size = 5,
                        .reason = "HTTP 503",
                        .reason_size = 8,
                        .data = (const uint8_t *) "\xa3"
                                                  "abc",
                        .data_size = 4,
                        .not_before = 1795000000123,
                        .priority = 7 };
    zf_record_t back;
    size_t size;
    uint8_t *payload = s_round_trip (&put, &back, &size);
    // id, parent, root, ts, attempt, dead, fan-in, queue, headers, reason, body,
    // not_before, priority
    assert_int_equal (size,
                      16 * 3 + 8 + 4 + 1 + 16 + 4 + 4 + 1 + 4 + 4 + 5 + 2 + 8 + 4 + 4 + 8 + 1);
    assert_int_equal (back.not_before, put.not_before);
    assert_int_equal (back.priority, 7);
    assert_int_equal (payload[48], 0x00);              // ts, little-endian: its low byte
    assert_int_equal (payload[56], 4);                 // attempt
    assert_int_equal (payload[60], 1);                 // dead
    assert_memory_equal (payload + 85, "\x04urls", 5); // the queue, after the fan-in
    assert_true (zf_id_eq (&back.id, &put.id));
    assert_true (zf_id_eq (&back.parent, &put.parent));
    assert_true (zf_id_eq (&back.root, &put.root));
    assert_int_equal (back.ts, put.ts);
    assert_int_equal (back.attempt, 4);
    assert_true (back.dead);
    assert_true (zf_id_eq (&back.fanin.id, &put.fanin.id));
    assert_int_equal (back.fanin.size, 3);
    assert_int_equal (back.fanin.index, 2);
    assert_int_equal (back.name_size, 4);
    assert_memory_equal (back.name, "urls", 4);
    assert_int_equal (back.headers_size, 5);
    assert_int_equal (back.reason_size, 8);
    assert_memory_equal (back.reason, "HTTP 503", 8);
    assert_int_equal (back.data_size, 4);
    assert_memory_equal (back.data,
                         "\xa3"
                         "abc",
                         4);

    // Cut short anywhere, or with a byte after: refused, the field named;
    // except that a PUT of a journal written before not_before and
    // priority ends after its body, and reads as not delayed, priority 0.
    zf_error_t err;
    for (size_t cut = 0; cut < size; cut++)
        if (cut != size - 9)
            assert_int_equal (zf_record_read (&back, ZF_JR_PUT, payload, cut, &err), -1);
    assert_int_equal (zf_record_read (&back, ZF_JR_PUT, payload, size - 9, &err), 0);
    assert_int_equal (back.not_before, 0);
    assert_int_equal (back.priority, 0);
    assert_int_equal (zf_record_read (&back, ZF_JR_PUT, payload, 20, &err), -1);
    assert_string_equal (err.text, "PUT: parent");
    assert_int_equal (zf_record_read (&back, ZF_JR_PUT, payload, size + 1, &err), -1);
    assert_string_equal (err.text, "PUT: bytes after the priority");
    payload[size - 1] = 10;
    assert_int_equal (zf_record_read (&back, ZF_JR_PUT, payload, size, &err), -1);
    assert_string_equal (err.text, "PUT: priority 10, at most 9");
    free (payload);
}

//  Whether two PUTs hold the same fields.
static void
s_assert_same_put (const zf_record_t *a, const zf_record_t *b)
{
    assert_int_equal (b->type, ZF_JR_PUT);
    assert_true (zf_id_eq (&a->id, &b->id));
    assert_true (zf_id_eq (&a->parent, &b->parent));
    assert_true (zf_id_eq (&a->root, &b->root));
    assert_int_equal (a->ts, b->ts);
    assert_int_equal (a->attempt, b->attempt);
    assert_int_equal (a->dead, b->dead);
    assert_true (zf_id_eq (&a->fanin.id, &b->fanin.id));
    assert_int_equal (a->fanin.size, b->fanin.size);
    assert_int_equal (a->fanin.index, b->fanin.index);
    assert_int_equal (a->name_size, b->name_size);
    assert_memory_equal (a->name, b->name, a->name_size);
    assert_int_equal (a->headers_size, b->headers_size);
    if (a->headers_size)
        assert_memory_equal (a->headers, b->headers, a->headers_size);
    assert_int_equal (a->reason_size, b->reason_size);
    if (a->reason_size)
        assert_memory_equal (a->reason, b->reason, a->reason_size);
    if (a->type == ZF_JR_PUT_SHORT) {
        assert_int_equal (a->detail_size, b->detail_size);
        if (a->detail_size)
            assert_memory_equal (a->detail, b->detail, a->detail_size);
    }
    assert_int_equal (a->data_size, b->data_size);
    assert_memory_equal (a->data, b->data, a->data_size);
    assert_int_equal (a->not_before, b->not_before);
    assert_int_equal (a->priority, b->priority);
}

//  Writes r as a PUT_SHORT and reads it back (as a PUT) into out.
static uint8_t *
s_short_trip (const zf_record_t *r, zf_record_t *out, size_t *size)
{
    *size = zf_record_size (r);
    uint8_t *payload = (uint8_t *) malloc (*size + 1);
    zf_record_write (r, payload);
    zf_error_t err;
    if (zf_record_read (out, ZF_JR_PUT_SHORT, payload, *size, &err))
        fail_msg ("%s", err.text);
    s_assert_same_put (r, out);
    return payload;
}

static void
test_put_short (void **state)
{
    (void) state;
    // A plain item: id, has, ts, queue, headers, body; nothing else.
    zf_record_t plain = { .type = ZF_JR_PUT_SHORT,
                          .id = s_id (1),
                          .ts = 1795000000000,
                          .name = "urls",
                          .name_size = 4,
                          .headers = (const uint8_t *) "\x81\xa1k\xa1v",
                          .headers_size = 5,
                          .data = (const uint8_t *) "\xa3"
                                                    "abc",
                          .data_size = 4 };
    zf_record_t back;
    size_t size;
    uint8_t *payload = s_short_trip (&plain, &back, &size);
    assert_int_equal (size, 16 + 1 + 8 + 1 + 4 + 4 + 5 + 4 + 4);
    assert_int_equal (payload[16], 0);                 // has: no more fields
    assert_memory_equal (payload + 25, "\x04urls", 5); // the queue, after the ts
    // The same as a PUT: 71 bytes more.
    plain.type = ZF_JR_PUT;
    assert_int_equal (zf_record_size (&plain), size + 71);
    plain.type = ZF_JR_PUT_SHORT;

    // Cut short anywhere, or with a byte after: refused, the field named.
    zf_error_t err;
    for (size_t cut = 0; cut < size; cut++)
        assert_int_equal (zf_record_read (&back, ZF_JR_PUT_SHORT, payload, cut, &err), -1);
    assert_int_equal (zf_record_read (&back, ZF_JR_PUT_SHORT, payload, 20, &err), -1);
    assert_string_equal (err.text, "PUT_SHORT: ts");
    assert_int_equal (zf_record_read (&back, ZF_JR_PUT_SHORT, payload, size + 1, &err), -1);
    assert_string_equal (err.text, "PUT_SHORT: bytes after the body");
    payload[16] = 0x80; // a detail said to follow, and none there
    assert_int_equal (zf_record_read (&back, ZF_JR_PUT_SHORT, payload, size, &err), -1);
    assert_string_equal (err.text, "PUT_SHORT: detail");
    free (payload);
    // One way to write a PUT: a field said to be there is not zero.
    zf_record_t zeros = plain;
    zeros.priority = 1;
    size_t with = zf_record_size (&zeros);
    uint8_t *bytes = (uint8_t *) malloc (with);
    zf_record_write (&zeros, bytes);
    bytes[with - 1] = 0;
    assert_int_equal (zf_record_read (&back, ZF_JR_PUT_SHORT, bytes, with, &err), -1);
    assert_string_equal (err.text, "PUT_SHORT: has 0x20, but fields 0x20 are zero");
    free (bytes);
    zf_record_t nameless = plain;
    nameless.name_size = 0;
    size = zf_record_size (&nameless);
    payload = (uint8_t *) malloc (size);
    zf_record_write (&nameless, payload);
    assert_int_equal (zf_record_read (&back, ZF_JR_PUT_SHORT, payload, size, &err), -1);
    assert_string_equal (err.text, "PUT_SHORT: an empty queue name");
    free (payload);

    // Each field on its own, then all of them: each comes back as written.
    zf_record_t full = plain;
    full.parent = s_id (2);
    full.root = s_id (3);
    full.attempt = 4;
    full.dead = true;
    full.fanin = (zf_group_t){ .id = s_id (5), .size = 3, .index = 2 };
    full.reason = "HTTP 503";
    full.reason_size = 8;
    full.not_before = 1795000000123;
    full.priority = 7;
    for (int field = 0; field <= 7; field++) {
        zf_record_t one = plain;
        if (field == 0 || field == 7) {
            one.parent = full.parent;
            one.root = full.root;
        }
        if (field == 1 || field == 7)
            one.attempt = full.attempt;
        if (field == 2 || field == 7)
            one.fanin = full.fanin;
        if (field == 3 || field == 7) {
            one.reason = full.reason;
            one.reason_size = full.reason_size;
        }
        if (field == 4 || field == 7)
            one.not_before = full.not_before;
        if (field == 5 || field == 7)
            one.priority = full.priority;
        if (field == 6 || field == 7)
            one.dead = true;
        payload = s_short_trip (&one, &back, &size);
        for (size_t cut = 0; cut < size; cut++)
            assert_int_equal (zf_record_read (&back, ZF_JR_PUT_SHORT, payload, cut, &err), -1);
        free (payload);
    }
    payload = s_short_trip (&full, &back, &size);
    full.type = ZF_JR_PUT;
    assert_int_equal (zf_record_size (&full), size); // has in place of dead: no gain
    free (payload);
    // A priority over the most is refused, as in a PUT.
    full.type = ZF_JR_PUT_SHORT;
    full.priority = 10;
    size = zf_record_size (&full);
    payload = (uint8_t *) malloc (size);
    zf_record_write (&full, payload);
    assert_int_equal (zf_record_read (&back, ZF_JR_PUT_SHORT, payload, size, &err), -1);
    assert_string_equal (err.text, "PUT_SHORT: priority 10, at most 9");
    free (payload);

    // A failure's detail (has 128) comes last, after the priority. A PUT
    // without one is written as a journal before it had them wrote it:
    // the plain item's bytes above are those of that journal.
    zf_record_t traced = plain;
    traced.reason = "ValueError: bad";
    traced.reason_size = 15;
    traced.priority = 3;
    traced.detail = "Traceback (most recent call last):\nValueError: bad";
    traced.detail_size = strlen (traced.detail);
    payload = s_short_trip (&traced, &back, &size);
    assert_int_equal (payload[16], 8 | 32 | 128);
    assert_int_equal (payload[size - 2 - traced.detail_size], traced.detail_size);
    assert_memory_equal (payload + size - traced.detail_size, traced.detail, traced.detail_size);
    for (size_t cut = 0; cut < size; cut++)
        assert_int_equal (zf_record_read (&back, ZF_JR_PUT_SHORT, payload, cut, &err), -1);
    assert_int_equal (zf_record_read (&back, ZF_JR_PUT_SHORT, payload, size - 1, &err), -1);
    assert_string_equal (err.text, "PUT_SHORT: detail");
    free (payload);
    traced.detail_size = 0; // no detail: nothing of it written
    size_t without = zf_record_size (&traced);
    traced.detail_size = strlen (traced.detail);
    assert_int_equal (zf_record_size (&traced), without + 2 + traced.detail_size);
}

static void
test_the_others (void **state)
{
    zf_record_t back;
    size_t size;
    uint8_t *payload; // what back's views point into
    zf_record_t ack = {
        .type = ZF_JR_ACK, .id = s_id (1), .dead = true, .name = "fetch", .name_size = 5
    };
    payload = s_round_trip (&ack, &back, &size);
    assert_int_equal (size, 16 + 1 + 1 + 5);
    assert_true (back.dead);
    assert_memory_equal (back.name, "fetch", 5);

    zf_record_t retry = {
        .type = ZF_JR_RETRY, .id = s_id (1), .attempt = 3, .name = "fetch", .name_size = 5
    };
    free (payload);
    payload = s_round_trip (&retry, &back, &size);
    assert_int_equal (size, 16 + 4 + 1 + 5);
    assert_int_equal (back.attempt, 3);

    zf_record_t fin = { .type = ZF_JR_FIN, .id = s_id (9), .outcome = ZF_OUTCOME_CANCELLED };
    free (payload);
    payload = s_round_trip (&fin, &back, &size);
    assert_int_equal (size, 17);
    assert_int_equal (back.outcome, ZF_OUTCOME_CANCELLED);

    // A queue paused at run time; a lineage that runs again (a requeue).
    zf_record_t queue = {
        .type = ZF_JR_QUEUE, .name = "tasks", .name_size = 5, .flags = ZF_QUEUE_PAUSED
    };
    free (payload);
    payload = s_round_trip (&queue, &back, &size);
    assert_int_equal (size, 1 + 5 + 1);
    assert_int_equal (back.flags, ZF_QUEUE_PAUSED);
    assert_memory_equal (back.name, "tasks", 5);
    zf_error_t bad;
    payload[size - 1] = 2; // a flag no broker writes
    assert_int_equal (zf_record_read (&back, ZF_JR_QUEUE, payload, size, &bad), -1);
    assert_string_equal (bad.text, "QUEUE: flags 0x2: unknown flags");
    zf_record_t schedule = { .type = ZF_JR_SCHEDULE,
                             .name = "nightly",
                             .name_size = 7,
                             .flags = ZF_SCHEDULE_PAUSED,
                             .ts = 1795000000000,
                             .target = "reports",
                             .target_size = 7,
                             .data = (const uint8_t *) "\x81\xa4"
                                                       "cron"
                                                       "\xa9"
                                                       "0 2 * * *",
                             .data_size = 16 };
    free (payload);
    payload = s_round_trip (&schedule, &back, &size);
    assert_int_equal (size, 1 + 7 + 1 + 8 + 1 + 7 + 4 + 16);
    assert_int_equal (back.flags, ZF_SCHEDULE_PAUSED);
    assert_int_equal (back.ts, 1795000000000);
    assert_memory_equal (back.target, "reports", 7);
    assert_int_equal (back.data_size, 16);
    assert_int_equal (zf_record_read (&back, ZF_JR_SCHEDULE, payload, size - 1, &bad), -1);
    assert_string_equal (bad.text, "SCHEDULE: spec");

    zf_record_t reopened = { .type = ZF_JR_RESULT, .root = s_id (4), .outcome = ZF_OUTCOME_LIVE };
    free (payload);
    payload = s_round_trip (&reopened, &back, &size);
    assert_int_equal (back.outcome, ZF_OUTCOME_LIVE);

    zf_record_t checkpoint = { .type = ZF_JR_CHECKPOINT,
                               .name = "seeds",
                               .name_size = 5,
                               .data = (const uint8_t *) "\0\0\0\0\0\0\0\x07",
                               .data_size = 8 };
    free (payload);
    payload = s_round_trip (&checkpoint, &back, &size);
    assert_int_equal (size, 1 + 5 + 4 + 8);
    assert_int_equal (back.data[7], 7);

    zf_record_t result = { .type = ZF_JR_RESULT,
                           .id = s_id (2),
                           .root = s_id (3),
                           .ts = 1795000000000,
                           .name = "out",
                           .name_size = 3,
                           .data = (const uint8_t *) "\x2a",
                           .data_size = 1 };
    free (payload);
    payload = s_round_trip (&result, &back, &size);
    // id, root, ts, outcome, attempts, queue, headers, reason, body
    assert_int_equal (size, 16 + 16 + 8 + 1 + 4 + 1 + 3 + 4 + 2 + 4 + 1);
    assert_true (zf_id_eq (&back.root, &result.root));
    assert_int_equal (back.outcome, 0);
    assert_int_equal (back.data[0], 42);
    zf_record_t over = { .type = ZF_JR_RESULT,
                         .root = s_id (3),
                         .ts = 1795000000001,
                         .outcome = ZF_OUTCOME_DEAD,
                         .attempt = 5,
                         .name = "work",
                         .name_size = 4,
                         .reason = "boom",
                         .reason_size = 4 };
    free (payload);
    payload = s_round_trip (&over, &back, &size);
    // Without a detail, the layout of a journal from before details.
    assert_int_equal (size, 16 + 16 + 8 + 1 + 4 + 1 + 4 + 4 + 2 + 4 + 4);
    assert_int_equal (back.outcome, ZF_OUTCOME_DEAD);
    assert_int_equal (back.attempt, 5);
    assert_memory_equal (back.reason, "boom", 4);
    assert_int_equal (back.detail_size, 0);
    payload[16 + 16 + 8] = 7; // an outcome that is none
    zf_error_t err;
    assert_int_equal (zf_record_read (&back, ZF_JR_RESULT, payload, size, &err), -1);
    assert_string_equal (err.text, "RESULT: unknown outcome 7");
    // With one: after the body, read back; an old reader's record (cut
    // before it) still reads; a detail cut short or empty is refused.
    over.detail = "Traceback\n  boom";
    over.detail_size = strlen (over.detail);
    free (payload);
    size_t old_size = size;
    payload = s_round_trip (&over, &back, &size);
    assert_int_equal (size, old_size + 2 + over.detail_size);
    assert_int_equal (back.detail_size, over.detail_size);
    assert_memory_equal (back.detail, over.detail, over.detail_size);
    assert_int_equal (zf_record_read (&back, ZF_JR_RESULT, payload, old_size, &err), 0);
    assert_int_equal (back.detail_size, 0);
    assert_int_equal (zf_record_read (&back, ZF_JR_RESULT, payload, old_size + 1, &err), -1);
    assert_string_equal (err.text, "RESULT: detail");
    assert_int_equal (zf_record_read (&back, ZF_JR_RESULT, payload, size - 1, &err), -1);
    assert_string_equal (err.text, "RESULT: detail");
    payload[old_size] = payload[old_size + 1] = 0;
    assert_int_equal (zf_record_read (&back, ZF_JR_RESULT, payload, old_size + 2, &err), -1);
    assert_string_equal (err.text, "RESULT: an empty detail");

    zf_record_t end = { .type = ZF_JR_SNAPSHOT_END };
    free (payload);
    payload = s_round_trip (&end, &back, &size);
    assert_int_equal (size, 0);
    free (payload);
}

static void
test_bad_values (void **state)
{
    zf_error_t err;
    zf_record_t back;
    uint8_t payload[300] = { 0 };
    // A FIN whose outcome is not one of done, dead, cancelled.
    payload[16] = 9;
    assert_int_equal (zf_record_read (&back, ZF_JR_FIN, payload, 17, &err), -1);
    assert_string_equal (err.text, "FIN: unknown outcome 9");
    // A dead flag that is neither 0 nor 1 (a writer writes only those).
    uint8_t ack[16 + 1 + 1 + 1] = { 0 };
    ack[16] = 2;
    ack[17] = 1;
    ack[18] = 'g';
    assert_int_equal (zf_record_read (&back, ZF_JR_ACK, ack, sizeof ack, &err), -1);
    assert_string_equal (err.text, "ACK: dead is 2, not 0 or 1");
    // A name longer than a name may be.
    payload[16 + 1] = 200;
    assert_int_equal (zf_record_read (&back, ZF_JR_ACK, payload, 16 + 1 + 1 + 200, &err), -1);
    assert_string_equal (err.text, "ACK: group");
    // A type that is none of them.
    assert_int_equal (zf_record_read (&back, (zf_jr_type_t) 42, payload, 0, &err), -1);
    assert_string_equal (err.text, "record type 42 is unknown");
    // A reason longer than its u16 length can say is cut, not wrapped.
    char *reason = (char *) malloc (70000);
    memset (reason, 'r', 70000);
    zf_record_t put = {
        .type = ZF_JR_PUT, .name = "q", .name_size = 1, .reason = reason, .reason_size = 70000
    };
    size_t size;
    free (s_round_trip (&put, &back, &size));
    assert_int_equal (back.reason_size, ZF_RECORD_REASON_MAX);
    free (reason);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_put),
        cmocka_unit_test (test_put_short),
        cmocka_unit_test (test_the_others),
        cmocka_unit_test (test_bad_values),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
