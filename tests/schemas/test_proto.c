/*  Tests of the ZFP/1 codec: every vector in schemas/vectors decodes to the
    fields it was written with and re-encodes byte for byte; every kind of
    malformed input is refused with the right error and a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_mp.h"
#include "zf_json.h"
#include "zf_proto.h"

//  Reads a vector file (frames as 4-byte big-endian length + bytes).
static zmsg_t *
s_load_vector (const char *name, zchunk_t **raw_p)
{
    char path[512];
    snprintf (path, sizeof path, "%s/schemas/vectors/%s.zfp", ZFLOW_SOURCE_DIR, name);
    zchunk_t *raw = zchunk_slurp (path, 0);
    assert_non_null (raw);
    zmsg_t *msg = zmsg_new ();
    const uint8_t *p = zchunk_data (raw), *end = p + zchunk_size (raw);
    while (p < end) {
        assert_true (end - p >= 4);
        uint32_t len = (uint32_t) p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
        p += 4;
        assert_true ((size_t) (end - p) >= len);
        zmsg_addmem (msg, p, len);
        p += len;
    }
    *raw_p = raw;
    return msg;
}

//  The same serialisation of a message, to compare with the file.
static zchunk_t *
s_serialise (zmsg_t *msg)
{
    zchunk_t *out = zchunk_new (NULL, 0);
    for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg)) {
        uint32_t len = (uint32_t) zframe_size (frame);
        uint8_t head[4] = { len >> 24, len >> 16, len >> 8, len };
        zchunk_extend (out, head, 4);
        zchunk_extend (out, zframe_data (frame), len);
    }
    return out;
}

//  Decodes vector name into proto, checks the command, and returns the raw
//  file for the re-encode check.
static zchunk_t *
s_decode_vector (zf_proto_t *proto, const char *name, zf_command_t command)
{
    zchunk_t *raw;
    zmsg_t *msg = s_load_vector (name, &raw);
    zf_error_t err = { 0 };
    int rc = zf_proto_decode (proto, &msg, &err);
    if (rc)
        fail_msg ("%s: %s", name, err.text);
    assert_null (msg);
    assert_int_equal (proto->command, command);
    return raw;
}

static void
s_assert_reencodes (zf_proto_t *proto, zchunk_t **raw_p)
{
    zf_error_t err;
    zmsg_t *msg = zf_proto_encode (proto, &err);
    assert_non_null (msg);
    zchunk_t *again = s_serialise (msg);
    assert_int_equal (zchunk_size (again), zchunk_size (*raw_p));
    assert_memory_equal (zchunk_data (again), zchunk_data (*raw_p), zchunk_size (again));
    zchunk_destroy (&again);
    zchunk_destroy (raw_p);
    zmsg_destroy (&msg);
}

static zf_id_t
s_id (uint8_t first)
{
    zf_id_t id;
    for (int i = 0; i < 16; i++)
        id.bytes[i] = (uint8_t) (first + i);
    return id;
}

static void
s_assert_body_str (zframe_t *body, const char *expected)
{
    zf_mp_t mp;
    zf_mp_init (&mp, zframe_data (body), zframe_size (body));
    const char *str;
    uint32_t len;
    assert_int_equal (zf_mp_str (&mp, &str, &len, NULL), 0);
    assert_int_equal (len, strlen (expected));
    assert_memory_equal (str, expected, len);
}

static void
test_hello (void **state)
{
    zf_proto_t *p = zf_proto_new ();
    zchunk_t *raw = s_decode_vector (p, "hello", ZF_HELLO);
    assert_int_equal (p->version, 1);
    assert_string_equal (p->name, "fetch");
    assert_int_equal (p->worker, 2);
    assert_int_equal (p->pid, 4242);
    assert_string_equal (p->host, "node-1");
    assert_int_equal (p->ninputs, 1);
    assert_string_equal (p->inputs[0], "urls");
    assert_int_equal (p->noutputs, 1);
    assert_string_equal (p->outputs[0], "pages");
    assert_int_equal (p->heartbeat, 1000);
    assert_string_equal (p->pipeline, "crawl");
    assert_int_equal (p->done, 1200);
    assert_int_equal (p->failed, 3);
    s_assert_reencodes (p, &raw);
    zf_proto_destroy (&p);
    assert_null (p);
}

static void
test_welcome (void **state)
{
    zf_proto_t *p = zf_proto_new ();
    zchunk_t *raw = s_decode_vector (p, "welcome", ZF_WELCOME);
    assert_int_equal (p->heartbeat, 1000);
    assert_int_equal (p->liveness, 3);
    assert_int_equal (p->window, 1000);
    assert_int_equal (p->checkpoint_size, 8);
    assert_memory_equal (p->checkpoint, "line=120", 8);
    assert_int_equal (p->timeout, 600000);
    s_assert_reencodes (p, &raw);
    zf_proto_destroy (&p);
}

static void
test_put (void **state)
{
    zf_proto_t *p = zf_proto_new ();
    zchunk_t *raw = s_decode_vector (p, "put", ZF_PUT);
    zf_id_t a = s_id (0), b = s_id (0x10), c;
    memset (c.bytes, 0xab, 16);
    assert_int_equal (p->seq, 7);
    assert_true (p->track);
    assert_int_equal (p->checkpoint_size, 8);
    assert_int_equal (p->nitems, 2);
    zf_env_t *first = &p->items[0], *second = &p->items[1];
    assert_true (zf_id_eq (&first->id, &a));
    assert_string_equal (first->queue, "urls");
    assert_int_equal (first->ts, 1795000000000LL);
    assert_true (zf_id_is_zero (&first->parent));
    assert_true (zf_id_eq (zf_env_root (first), &a)); // a root is its own root
    assert_int_equal (first->group.size, 0);
    assert_null (first->headers);
    s_assert_body_str (first->body, "http://127.0.0.1:8080/a");
    assert_true (zf_id_eq (&second->id, &b));
    assert_string_equal (second->queue, "pages");
    assert_true (zf_id_eq (&second->parent, &a));
    assert_true (zf_id_eq (zf_env_root (second), &c));
    assert_true (zf_id_eq (&second->group.id, &c));
    assert_int_equal (second->group.size, 3);
    assert_int_equal (second->group.index, 1);
    assert_non_null (second->headers);
    // the headers stay msgpack: a map of one str to str
    zf_mp_t mp;
    zf_mp_init (&mp, second->headers, second->headers_size);
    uint32_t count;
    assert_int_equal (zf_mp_map (&mp, &count, NULL), 0);
    assert_int_equal (count, 1);
    assert_true (zf_mp_key_is (&mp, "content-type"));
    assert_true (zf_mp_key_is (&mp, "text/html"));
    assert_int_equal (zframe_size (second->body) > 0, 1);
    s_assert_reencodes (p, &raw);
    // the bodies moved into the encoded message
    assert_null (p->items[0].body);
    zf_proto_destroy (&p);
}

static void
test_confirm_credit_deliver (void **state)
{
    zf_proto_t *p = zf_proto_new ();
    zchunk_t *raw = s_decode_vector (p, "confirm", ZF_CONFIRM);
    assert_int_equal (p->seq, 7);
    assert_int_equal (p->accepted, 1);
    assert_int_equal (p->duplicates, 1);
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "credit", ZF_CREDIT);
    assert_int_equal (p->credit, 64);
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "deliver", ZF_DELIVER);
    assert_int_equal (p->nitems, 1);
    assert_int_equal (p->items[0].attempt, 2);
    assert_string_equal (p->items[0].queue, "urls");
    s_assert_body_str (p->items[0].body, "http://127.0.0.1:8080/a");
    s_assert_reencodes (p, &raw);
    zf_proto_destroy (&p);
}

static void
test_ack_nack (void **state)
{
    zf_proto_t *p = zf_proto_new ();
    zchunk_t *raw = s_decode_vector (p, "ack", ZF_ACK);
    zf_id_t a = s_id (0), b = s_id (0x10);
    assert_int_equal (p->nids, 2);
    assert_true (zf_id_eq (&p->ids[0], &a));
    assert_true (zf_id_eq (&p->ids[1], &b));
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "nack", ZF_NACK);
    assert_true (zf_id_eq (&p->id, &a));
    assert_string_equal (p->reason, "HTTP 503");
    assert_true (p->final);
    assert_int_equal (p->delay, 1500);
    assert_string_equal (
        p->detail,
        "Traceback (most recent call last):\n  File \"fetch.py\", line 12\nHTTPError: 503");
    s_assert_reencodes (p, &raw);
    zf_proto_destroy (&p);
}

static void
test_small_commands (void **state)
{
    static const struct {
        const char *name;     // vector
        zf_command_t command; // expected
    } cases[] = { { "ping", ZF_PING }, { "pong", ZF_PONG }, { "bye", ZF_BYE } };
    zf_proto_t *p = zf_proto_new ();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zchunk_t *raw = s_decode_vector (p, cases[i].name, cases[i].command);
        s_assert_reencodes (p, &raw);
    }
    // A worker's PING with its figures: kept as the map it is.
    zchunk_t *raw = s_decode_vector (p, "ping-figures", ZF_PING);
    assert_true (p->figures_size > 0);
    char *json = zf_msgpack_to_json (p->figures, p->figures_size, NULL);
    assert_string_equal (json, "{\"requests\":3,\"latency_ms\":{\"p50\":1.5}}");
    free (json);
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "error", ZF_ERROR);
    assert_string_equal (p->code, "command");
    assert_string_equal (p->reason, "unknown command 'HELO'");
    assert_string_equal (p->leader, "");
    s_assert_reencodes (p, &raw);

    // A broker that does not lead names the leader in a field of its own.
    raw = s_decode_vector (p, "error-leader", ZF_ERROR);
    assert_string_equal (p->code, "leader");
    assert_string_equal (p->leader, "tcp://10.0.0.1:5670");
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "end", ZF_END);
    assert_int_equal (p->count, 100000);
    s_assert_reencodes (p, &raw);

    zf_id_t c;
    memset (c.bytes, 0xab, 16);
    raw = s_decode_vector (p, "cancel", ZF_CANCEL);
    assert_true (zf_id_eq (&p->id, &c));
    assert_string_equal (p->reason, "group failed");
    assert_true (p->dead);
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "done", ZF_DONE);
    assert_int_equal (p->ndones, 2);
    assert_true (zf_id_eq (&p->dones[0].id, &c));
    assert_string_equal (p->dones[0].state, "done");
    assert_string_equal (p->dones[1].state, "dead");
    assert_string_equal (p->dones[1].queue, "urls");
    assert_int_equal (p->dones[1].attempt, 3);
    assert_string_equal (p->dones[1].reason, "HTTP 503");
    assert_int_equal (p->nitems, 1);
    assert_true (zf_id_eq (&p->items[0].root, &c));
    assert_string_equal (p->items[0].queue, "answers");
    s_assert_reencodes (p, &raw);

    zf_id_t a = s_id (0);
    raw = s_decode_vector (p, "status", ZF_STATUS);
    assert_true (zf_id_eq (&p->id, &a));
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "report", ZF_REPORT);
    assert_string_equal (p->state, "retrying");
    assert_string_equal (p->queue, "urls");
    assert_int_equal (p->attempt, 2);
    assert_string_equal (p->reason, "HTTP 503");
    assert_string_equal (p->detail, "Traceback (most recent call last):\nHTTPError: 503");
    assert_int_equal (p->progress, 420);
    assert_string_equal (p->note, "resizing images");
    assert_int_equal (p->nqueues, 1);
    assert_string_equal (p->queues[0].name, "urls");
    assert_int_equal (p->queues[0].depth, 10);
    assert_int_equal (p->queues[0].inflight, 2);
    assert_int_equal (p->queues[0].put, 300);
    assert_int_equal (p->queues[0].ack, 288);
    assert_int_equal (p->queues[0].nack, 3);
    assert_int_equal (p->queues[0].dead, 0);
    assert_int_equal (p->queues[0].consumers, 4);
    assert_int_equal (p->ngroups, 2);
    assert_string_equal (p->groups[0].queue, "urls");
    assert_string_equal (p->groups[0].name, "fetch");
    assert_int_equal (p->groups[0].workers, 4);
    assert_int_equal (p->groups[0].ready, 8);
    assert_int_equal (p->groups[0].inflight, 2);
    assert_int_equal (p->groups[0].acked, 288);
    assert_true (p->groups[0].declared);
    assert_string_equal (p->groups[1].name, "probe");
    assert_false (p->groups[1].declared);
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "progress", ZF_PROGRESS);
    assert_true (zf_id_eq (&p->id, &a));
    assert_int_equal (p->progress, 420);
    assert_string_equal (p->note, "resizing images");
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "control", ZF_CONTROL);
    assert_string_equal (p->op, "requeue");
    assert_string_equal (p->queue, "urls.dead");
    assert_int_equal (p->nids, 2);
    assert_true (zf_id_eq (&p->ids[0], &a));
    assert_string_equal (p->where, "tenant=acme");
    assert_int_equal (p->older, 60000);
    assert_int_equal (p->limit, 100);
    assert_int_equal (p->tag, 9);
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "report-control", ZF_REPORT);
    assert_int_equal (p->tag, 9);
    assert_int_equal (p->count, 2);
    assert_int_equal (p->nqueues, 1);
    assert_true (p->queues[0].paused);
    assert_int_equal (p->nitems, 1);
    assert_true (zf_id_eq (&p->items[0].root, &c));
    assert_int_equal (p->items[0].attempt, 3);
    assert_true (p->items[0].headers_size > 0);
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "control-schedule", ZF_CONTROL);
    assert_string_equal (p->op, "schedule-add");
    assert_string_equal (p->name, "nightly");
    assert_true (p->figures_size > 20); // the spec, a map viewed where it is
    s_assert_reencodes (p, &raw);

    raw = s_decode_vector (p, "report-schedules", ZF_REPORT);
    assert_int_equal (p->nschedules, 2);
    assert_string_equal (p->schedules[0].name, "nightly");
    assert_string_equal (p->schedules[0].trigger, "cron 0 2 * * *");
    assert_string_equal (p->schedules[0].tz, "Europe/Paris");
    assert_int_equal (p->schedules[0].fired, 3);
    assert_false (p->schedules[0].config);
    assert_true (p->schedules[1].config);
    assert_true (p->schedules[1].paused);
    assert_int_equal (p->schedules[1].missed, 1);
    s_assert_reencodes (p, &raw);
    zf_proto_destroy (&p);
}

//  Built messages: a header built with msgpack-c, under a command name.
typedef struct {
    msgpack_sbuffer buffer; // the header being written
    msgpack_packer pk;      // writes into buffer
} s_builder_t;

static void
s_begin (s_builder_t *b)
{
    msgpack_sbuffer_init (&b->buffer);
    msgpack_packer_init (&b->pk, &b->buffer, msgpack_sbuffer_write);
}

static zmsg_t *
s_finish (s_builder_t *b, const char *command, int bodies)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, command);
    zmsg_addmem (msg, b->buffer.data, b->buffer.size);
    for (int i = 0; i < bodies; i++)
        zmsg_addmem (msg, "\xa1x", 2);
    msgpack_sbuffer_destroy (&b->buffer);
    return msg;
}

static void
s_key (s_builder_t *b, const char *key)
{
    zf_mp_pack_cstr (&b->pk, key);
}

//  Expects decode to fail with code and a reason holding fragment.
//  Begins a message of one item (id, queue, ts) whose fourth field, key,
//  the caller writes next.
static void
s_begin_item (s_builder_t *b, const char *key)
{
    s_begin (b);
    msgpack_pack_map (&b->pk, 1);
    s_key (b, "items");
    msgpack_pack_array (&b->pk, 1);
    msgpack_pack_map (&b->pk, 4);
    s_key (b, "id");
    msgpack_pack_bin (&b->pk, 16);
    msgpack_pack_bin_body (&b->pk, "0123456789abcdef", 16);
    s_key (b, "queue");
    zf_mp_pack_cstr (&b->pk, "q");
    s_key (b, "ts");
    msgpack_pack_int64 (&b->pk, 1);
    s_key (b, key);
}

static void
s_expect_error (zmsg_t *msg, zf_err_t code, const char *fragment)
{
    zf_proto_t *p = zf_proto_new ();
    zf_error_t err = { 0 };
    int rc = zf_proto_decode (p, &msg, &err);
    assert_int_equal (rc, -1);
    assert_null (msg);
    if (err.code != code || !strstr (err.text, fragment))
        fail_msg ("expected %s with '%s', got %s: %s", zf_errname (code), fragment,
                  zf_errname (err.code), err.text);
    zf_proto_destroy (&p);
}

static void
test_unknown_command (void **state)
{
    s_builder_t b;
    s_begin (&b);
    msgpack_pack_map (&b.pk, 0);
    s_expect_error (s_finish (&b, "HELO", 0), ZF_ECMD, "unknown command 'HELO'");
    s_begin (&b);
    msgpack_pack_map (&b.pk, 0);
    s_expect_error (s_finish (&b, "PING\x01\xff", 0), ZF_ECMD,
                    "'PING?"
                    "?'");
}

static void
test_wrong_type (void **state)
{
    s_builder_t b;
    s_begin (&b);
    msgpack_pack_map (&b.pk, 1);
    s_key (&b, "credit");
    zf_mp_pack_cstr (&b.pk, "64");
    s_expect_error (s_finish (&b, "CREDIT", 0), ZF_ETYPE,
                    "CREDIT: field 'credit': expected uint, found str");

    s_begin (&b);
    msgpack_pack_array (&b.pk, 0);
    s_expect_error (s_finish (&b, "PING", 0), ZF_ETYPE, "expected map, found array");
}

static void
test_missing_field (void **state)
{
    s_builder_t b;
    s_begin (&b);
    msgpack_pack_map (&b.pk, 0);
    s_expect_error (s_finish (&b, "CREDIT", 0), ZF_EFIELD, "field 'credit' is missing");

    // an item without its queue
    s_begin (&b);
    msgpack_pack_map (&b.pk, 1);
    s_key (&b, "items");
    msgpack_pack_array (&b.pk, 1);
    msgpack_pack_map (&b.pk, 2);
    s_key (&b, "id");
    msgpack_pack_bin (&b.pk, 16);
    msgpack_pack_bin_body (&b.pk, "0123456789abcdef", 16);
    s_key (&b, "ts");
    msgpack_pack_int64 (&b.pk, 1);
    s_expect_error (s_finish (&b, "DELIVER", 1), ZF_EFIELD, "item 0: field 'queue' is missing");
}

static void
test_oversized (void **state)
{
    char name[200];
    memset (name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    s_builder_t b;
    s_begin (&b);
    msgpack_pack_map (&b.pk, 2);
    s_key (&b, "version");
    msgpack_pack_uint32 (&b.pk, 1);
    s_key (&b, "name");
    zf_mp_pack_cstr (&b.pk, name);
    s_expect_error (s_finish (&b, "HELLO", 0), ZF_ETOOBIG, "field 'name': string of 199 bytes");

    s_begin (&b);
    msgpack_pack_map (&b.pk, 1);
    s_key (&b, "ids");
    msgpack_pack_array (&b.pk, ZF_IDS_MAX + 1);
    for (int i = 0; i < ZF_IDS_MAX + 1; i++) {
        msgpack_pack_bin (&b.pk, 16);
        msgpack_pack_bin_body (&b.pk, "0123456789abcdef", 16);
    }
    s_expect_error (s_finish (&b, "ACK", 0), ZF_ETOOBIG, "array of 1025 entries");

    s_begin (&b);
    msgpack_pack_map (&b.pk, 1);
    s_key (&b, "credit");
    msgpack_pack_uint64 (&b.pk, 1ULL << 40);
    s_expect_error (s_finish (&b, "CREDIT", 0), ZF_EVALUE, "over 2^32-1");
}

static void
test_count_bomb (void **state)
{
    // An ACK announcing 4 billion ids in a 20-byte frame: refused before
    // anything is allocated.
    static const uint8_t header[] = { 0x81, 0xa3, 'i', 'd', 's', 0xdd, 0xff, 0xff, 0xff, 0xff };
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "ACK");
    zmsg_addmem (msg, header, sizeof header);
    s_expect_error (msg, ZF_ETRUNC, "array of 4294967295 entries cannot fit");

    // a str announcing 4 GiB
    static const uint8_t str[] = { 0x81, 0xa4, 'c', 'o', 'd', 'e', 0xdb, 0xff, 0xff, 0xff, 0xf0 };
    msg = zmsg_new ();
    zmsg_addstr (msg, "ERROR");
    zmsg_addmem (msg, str, sizeof str);
    s_expect_error (msg, ZF_ETRUNC, "runs past the end");
}

static void
test_deep_nesting (void **state)
{
    // An unknown field is skipped, but not when nested 100 levels deep.
    s_builder_t b;
    s_begin (&b);
    msgpack_pack_map (&b.pk, 1);
    s_key (&b, "future");
    for (int i = 0; i < 100; i++)
        msgpack_pack_array (&b.pk, 1);
    msgpack_pack_nil (&b.pk);
    s_expect_error (s_finish (&b, "PING", 0), ZF_EDEPTH, "nested deeper than 32");
}

static void
test_unknown_field_skipped (void **state)
{
    // A later minor revision may add fields: they are skipped, not refused.
    s_builder_t b;
    s_begin (&b);
    msgpack_pack_map (&b.pk, 2);
    s_key (&b, "future");
    msgpack_pack_map (&b.pk, 1);
    s_key (&b, "x");
    msgpack_pack_array (&b.pk, 2);
    msgpack_pack_double (&b.pk, 1.5);
    msgpack_pack_ext (&b.pk, 2, 7);
    msgpack_pack_ext_body (&b.pk, "ab", 2);
    s_key (&b, "credit");
    msgpack_pack_uint32 (&b.pk, 9);
    zmsg_t *msg = s_finish (&b, "CREDIT", 0);
    zf_proto_t *p = zf_proto_new ();
    zf_error_t err;
    assert_int_equal (zf_proto_decode (p, &msg, &err), 0);
    assert_int_equal (p->credit, 9);
    zf_proto_destroy (&p);
}

static void
test_bad_values (void **state)
{
    s_builder_t b;
    // an id of 15 bytes
    s_begin (&b);
    msgpack_pack_map (&b.pk, 1);
    s_key (&b, "ids");
    msgpack_pack_array (&b.pk, 1);
    msgpack_pack_bin (&b.pk, 15);
    msgpack_pack_bin_body (&b.pk, "0123456789abcde", 15);
    s_expect_error (s_finish (&b, "ACK", 0), ZF_EVALUE, "entry 0: id of 15 bytes");

    // a key twice
    s_begin (&b);
    msgpack_pack_map (&b.pk, 2);
    s_key (&b, "credit");
    msgpack_pack_uint32 (&b.pk, 1);
    s_key (&b, "credit");
    msgpack_pack_uint32 (&b.pk, 2);
    s_expect_error (s_finish (&b, "CREDIT", 0), ZF_EVALUE, "'credit' appears twice");

    // bytes after the header map
    s_begin (&b);
    msgpack_pack_map (&b.pk, 0);
    msgpack_pack_nil (&b.pk);
    s_expect_error (s_finish (&b, "PING", 0), ZF_EVALUE, "1 bytes after the header map");

    // version 0
    s_begin (&b);
    msgpack_pack_map (&b.pk, 2);
    s_key (&b, "version");
    msgpack_pack_uint32 (&b.pk, 0);
    s_key (&b, "name");
    zf_mp_pack_cstr (&b.pk, "x");
    s_expect_error (s_finish (&b, "HELLO", 0), ZF_EVERSION, "version 0");

    // a NUL inside a name
    s_begin (&b);
    msgpack_pack_map (&b.pk, 2);
    s_key (&b, "version");
    msgpack_pack_uint32 (&b.pk, 1);
    s_key (&b, "name");
    zf_mp_pack_strn (&b.pk, "a\0b", 3);
    s_expect_error (s_finish (&b, "HELLO", 0), ZF_EVALUE, "NUL byte");

    // a group member past the group's size
    s_begin_item (&b, "group");
    msgpack_pack_map (&b.pk, 3);
    s_key (&b, "id");
    msgpack_pack_bin (&b.pk, 16);
    msgpack_pack_bin_body (&b.pk, "0123456789abcdef", 16);
    s_key (&b, "size");
    msgpack_pack_uint32 (&b.pk, 2);
    s_key (&b, "index");
    msgpack_pack_uint32 (&b.pk, 2);
    s_expect_error (s_finish (&b, "DELIVER", 1), ZF_EVALUE, "index 2 of a group of size 2");

    // the byte msgpack never uses, inside a skipped field
    static const uint8_t c1[] = { 0x81, 0xa1, 'z', 0xc1 };
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "PING");
    zmsg_addmem (msg, c1, sizeof c1);
    s_expect_error (msg, ZF_ETYPE, "0xc1");

    // a header that is not a str-to-str map
    s_begin_item (&b, "headers");
    msgpack_pack_map (&b.pk, 1);
    s_key (&b, "n");
    msgpack_pack_uint32 (&b.pk, 5);
    s_expect_error (s_finish (&b, "DELIVER", 1), ZF_ETYPE, "header 0: expected str, found uint");

    // a header whose text is not UTF-8 (a reader would refuse the whole
    // message, the other items with it)
    s_begin_item (&b, "headers");
    msgpack_pack_map (&b.pk, 1);
    s_key (&b, "zflow-key");
    zf_mp_pack_cstr (&b.pk, "\xff.com");
    s_expect_error (s_finish (&b, "DELIVER", 1), ZF_EVALUE, "header 0: not UTF-8");
}

static void
test_frames (void **state)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "PING");
    s_expect_error (msg, ZF_EFRAMES, "1 frames");

    s_builder_t b;
    s_begin (&b);
    msgpack_pack_map (&b.pk, 0);
    s_expect_error (s_finish (&b, "PING", 1), ZF_EFRAMES, "PING: 3 frames, expected 2");

    // a PUT of two items with one body
    zchunk_t *raw;
    msg = s_load_vector ("put", &raw);
    zframe_t *last = zmsg_last (msg);
    zmsg_remove (msg, last);
    zframe_destroy (&last);
    s_expect_error (msg, ZF_EFRAMES, "2 items but 1 body frames");
    zchunk_destroy (&raw);

    s_expect_error (NULL, ZF_EFRAMES, "0 frames");
}

static void
test_truncated (void **state)
{
    // Every prefix of every vector's header is refused, never read past.
    static const char *names[] = { "hello",
                                   "welcome",
                                   "put",
                                   "confirm",
                                   "credit",
                                   "deliver",
                                   "ack",
                                   "nack",
                                   "error",
                                   "error-leader",
                                   "end",
                                   "cancel",
                                   "done",
                                   "status",
                                   "report",
                                   "control",
                                   "report-control",
                                   NULL };
    zf_proto_t *p = zf_proto_new ();
    for (int v = 0; names[v]; v++) {
        zchunk_t *raw;
        zmsg_t *whole = s_load_vector (names[v], &raw);
        zmsg_first (whole);
        zframe_t *header = zmsg_next (whole);
        size_t size = zframe_size (header);
        for (size_t cut = 0; cut < size; cut++) {
            zmsg_t *msg = zmsg_dup (whole);
            zframe_t *name = zmsg_pop (msg);
            zframe_t *full = zmsg_pop (msg);
            // a copy of exactly cut bytes, so that a read past it is caught
            zframe_t *part = zframe_new (zframe_data (full), cut);
            zmsg_prepend (msg, &part);
            zmsg_prepend (msg, &name);
            zframe_destroy (&full);
            zf_error_t err = { 0 };
            if (zf_proto_decode (p, &msg, &err) == 0)
                fail_msg ("%s cut at %zu of %zu decoded", names[v], cut, size);
            assert_true (strlen (err.text) > 0);
        }
        zmsg_destroy (&whole);
        zchunk_destroy (&raw);
    }
    zf_proto_destroy (&p);
}

static void
test_random_frames (void **state)
{
    // Random bytes and random mutations of the vectors, from a fixed seed:
    // each decodes or is refused with a reason; none crashes.
    static const char *names[] = { "hello", "put", "deliver", "ack", "report", NULL };
    zf_proto_t *p = zf_proto_new ();
    unsigned seed = 20261124;
    int refused = 0, decoded = 0;
    for (int round = 0; round < 20000; round++) {
        zchunk_t *raw;
        zmsg_t *msg = s_load_vector (names[round % 5], &raw);
        zchunk_destroy (&raw);
        zmsg_first (msg);
        zframe_t *header = zmsg_next (msg);
        uint8_t *data = zframe_data (header);
        size_t size = zframe_size (header);
        int flips = 1 + rand_r (&seed) % 4;
        for (int f = 0; f < flips; f++)
            data[rand_r (&seed) % size] = (uint8_t) rand_r (&seed);
        zf_error_t err = { 0 };
        if (zf_proto_decode (p, &msg, &err) == 0)
            decoded++;
        else {
            assert_true (strlen (err.text) > 0);
            refused++;
        }
    }
    for (int round = 0; round < 5000; round++) {
        uint8_t junk[64];
        size_t size = (size_t) (rand_r (&seed) % sizeof junk);
        for (size_t i = 0; i < size; i++)
            junk[i] = (uint8_t) rand_r (&seed);
        zmsg_t *msg = zmsg_new ();
        zmsg_addstr (msg, round % 2 ? "PUT" : "HELLO");
        zmsg_addmem (msg, junk, size);
        zf_error_t err = { 0 };
        if (zf_proto_decode (p, &msg, &err))
            refused++;
    }
    print_message ("random frames: %d decoded, %d refused\n", decoded, refused);
    assert_true (refused > 0);
    zf_proto_destroy (&p);
}

static void
test_encode_errors (void **state)
{
    zf_proto_t *p = zf_proto_new ();
    zf_error_t err;
    zf_proto_reset (p, ZF_PUT);
    zframe_t *body = zframe_new ("\xa1x", 2);
    zf_env_t *env = zf_proto_add_item (p, &body);
    assert_null (body);
    env->id = s_id (1);
    strcpy (env->queue, "q");
    // a body taken away before encoding is an error, not a crash
    zframe_destroy (&p->items[0].body);
    assert_null (zf_proto_encode (p, &err));
    assert_int_equal (err.code, ZF_EFIELD);

    zf_proto_reset (p, (zf_command_t) 0);
    assert_null (zf_proto_encode (p, &err));
    assert_int_equal (err.code, ZF_ECMD);

    // a full batch refuses one more item
    zf_proto_reset (p, ZF_DELIVER);
    for (int i = 0; i < ZF_BATCH_MAX; i++) {
        body = zframe_new ("\xc0", 1);
        assert_non_null (zf_proto_add_item (p, &body));
    }
    body = zframe_new ("\xc0", 1);
    assert_null (zf_proto_add_item (p, &body));
    assert_non_null (body);
    zframe_destroy (&body);
    zf_proto_destroy (&p);
}

//  A PROGRESS of id 0..0 with progress (or none when negative) and a note
//  of note_size bytes (or none when 0).
static zmsg_t *
s_progress (int64_t progress, size_t note_size)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1 + (progress >= 0) + (note_size > 0));
    zf_mp_pack_cstr (&pk, "id");
    msgpack_pack_bin (&pk, 16);
    msgpack_pack_bin_body (&pk, "0123456789abcdef", 16);
    if (progress >= 0) {
        zf_mp_pack_cstr (&pk, "progress");
        msgpack_pack_uint64 (&pk, (uint64_t) progress);
    }
    if (note_size) {
        char *note = (char *) malloc (note_size);
        memset (note, 'n', note_size);
        zf_mp_pack_cstr (&pk, "note");
        msgpack_pack_str (&pk, note_size);
        msgpack_pack_str_body (&pk, note, note_size);
        free (note);
    }
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "PROGRESS");
    zmsg_addmem (msg, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    return msg;
}

static void
test_refusal_kinds (void **state)
{
    // CONFIRM `code` carries the first refusal's kind, by name; a name a
    // newer broker may send reads as OTHER, never as not refused.
    (void) state;
    for (int kind = ZF_REFUSAL_NONE; kind < ZF_REFUSAL_OTHER; kind++)
        assert_int_equal (zf_refusal_parse (zf_refusal_name ((zf_refusal_t) kind)), kind);
    assert_string_equal (zf_refusal_name (ZF_REFUSAL_FULL), "full");
    assert_int_equal (zf_refusal_parse ("quota"), ZF_REFUSAL_OTHER);
    assert_int_equal (zf_refusal_parse (""), ZF_REFUSAL_NONE);

    zf_proto_t *p = zf_proto_new ();
    zf_proto_reset (p, ZF_CONFIRM);
    p->seq = 9;
    p->accepted = 1;
    p->refused = 2;
    snprintf (p->reason, sizeof p->reason, "queue 'q' is full (max-depth 1)");
    snprintf (p->code, sizeof p->code, "%s", zf_refusal_name (ZF_REFUSAL_FULL));
    zmsg_t *msg = zf_proto_encode (p, NULL);
    assert_non_null (msg);
    zf_proto_t *q = zf_proto_new ();
    assert_int_equal (zf_proto_decode (q, &msg, NULL), 0);
    assert_int_equal (q->refused, 2);
    assert_int_equal (zf_refusal_parse (q->code), ZF_REFUSAL_FULL);
    zf_proto_destroy (&q);
    zf_proto_destroy (&p);
}

static void
test_progress_limits (void **state)
{
    // 1000 thousandths and a note of 1024 bytes are the most; past them,
    // or without a progress, the usual errors.
    zf_proto_t *p = zf_proto_new ();
    zmsg_t *msg = s_progress (1000, ZF_TEXT_MAX);
    assert_int_equal (zf_proto_decode (p, &msg, NULL), 0);
    assert_int_equal (p->progress, 1000);
    assert_int_equal (strlen (p->note), ZF_TEXT_MAX);
    zf_proto_destroy (&p);
    s_expect_error (s_progress (1001, 0), ZF_EVALUE,
                    "PROGRESS: progress 1001, at most 1000 (thousandths)");
    s_expect_error (s_progress (1ll << 32, 0), ZF_EVALUE, "field 'progress': 4294967296 is over");
    s_expect_error (s_progress (0, ZF_TEXT_MAX + 1), ZF_ETOOBIG,
                    "field 'note': string of 1025 bytes, at most 1024 allowed");
    s_expect_error (s_progress (-1, 0), ZF_EFIELD, "field 'progress' is missing");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_hello),
        cmocka_unit_test (test_welcome),
        cmocka_unit_test (test_put),
        cmocka_unit_test (test_confirm_credit_deliver),
        cmocka_unit_test (test_ack_nack),
        cmocka_unit_test (test_small_commands),
        cmocka_unit_test (test_refusal_kinds),
        cmocka_unit_test (test_progress_limits),
        cmocka_unit_test (test_unknown_command),
        cmocka_unit_test (test_wrong_type),
        cmocka_unit_test (test_missing_field),
        cmocka_unit_test (test_oversized),
        cmocka_unit_test (test_count_bomb),
        cmocka_unit_test (test_deep_nesting),
        cmocka_unit_test (test_unknown_field_skipped),
        cmocka_unit_test (test_bad_values),
        cmocka_unit_test (test_frames),
        cmocka_unit_test (test_truncated),
        cmocka_unit_test (test_random_frames),
        cmocka_unit_test (test_encode_errors),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
