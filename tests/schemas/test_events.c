/*  Tests of the events codec: each vector in schemas/vectors/events (made
    by Python's msgpack, independent of ours) decodes to the fields it was
    made with and encodes back to the same bytes; a malformed event is
    refused with the field named.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_events.h"
#include "zf_json.h"
#include "zf_mp.h"

#define TS 1795000000000LL

static zchunk_t *
s_vector (const char *name)
{
    char path[512];
    snprintf (path, sizeof path, "%s/schemas/vectors/events/%s.msgpack", ZFLOW_SOURCE_DIR, name);
    zchunk_t *chunk = zchunk_slurp (path, 0);
    assert_non_null (chunk);
    return chunk;
}

//  Packs with fn into a new chunk.
typedef struct {
    msgpack_sbuffer buffer;
    msgpack_packer pk;
} s_packer_t;

static void
s_packer_init (s_packer_t *p)
{
    msgpack_sbuffer_init (&p->buffer);
    msgpack_packer_init (&p->pk, &p->buffer, msgpack_sbuffer_write);
}

static void
s_assert_bytes (s_packer_t *p, zchunk_t *expected)
{
    assert_int_equal (p->buffer.size, zchunk_size (expected));
    assert_memory_equal (p->buffer.data, zchunk_data (expected), zchunk_size (expected));
    msgpack_sbuffer_destroy (&p->buffer);
}

static void
test_stats_vector (void **state)
{
    zchunk_t *vector = s_vector ("stats");
    zf_stats_t *stats = zf_stats_new ();
    zf_error_t err;
    assert_int_equal (zf_stats_decode (stats, zchunk_data (vector), zchunk_size (vector), &err), 0);
    assert_int_equal (stats->seq, 41);
    assert_int_equal (stats->ts, TS);
    assert_int_equal (stats->nqueues, 2);
    zf_stats_queue_t *urls = &stats->queues[0];
    assert_string_equal (urls->figures.name, "urls");
    assert_int_equal (urls->figures.depth, 3);
    assert_int_equal (urls->figures.inflight, 2);
    assert_int_equal (urls->figures.put, 1000);
    assert_int_equal (urls->figures.ack, 995);
    assert_int_equal (urls->figures.nack, 4);
    assert_int_equal (urls->figures.dead, 1);
    assert_true (urls->put_rate == 12.5);
    assert_int_equal (urls->figures.consumers, 2);
    assert_int_equal (urls->ngroups, 1);
    assert_string_equal (urls->groups[0].name, "fetch");
    assert_int_equal (urls->groups[0].workers, 2);
    assert_int_equal (urls->groups[0].ready, 1);
    assert_int_equal (urls->groups[0].acked, 995);
    assert_int_equal (stats->queues[1].ngroups, 0);
    assert_int_equal (stats->nworkers, 2);
    zf_stats_worker_t *fetch = &stats->workers[0];
    assert_string_equal (fetch->actor, "fetch");
    assert_string_equal (fetch->host, "node-1");
    assert_int_equal (fetch->pid, 4242);
    assert_int_equal (fetch->done, 600);
    assert_int_equal (fetch->failed, 3);
    char *figures = zf_msgpack_to_json (fetch->figures, fetch->figures_size, NULL);
    assert_string_equal (figures, "{\"requests\":12,\"status\":{\"2xx\":11,\"5xx\":1}}");
    free (figures);
    assert_null (stats->workers[1].figures);
    assert_int_equal (stats->lineages, 7);
    assert_int_equal (stats->nended, 1);
    assert_string_equal (stats->ended[0], "seeds");
    assert_int_equal (stats->rejected, 2);
    assert_int_equal (stats->late_acks, 1);
    assert_true (stats->journal.present);
    assert_int_equal (stats->journal.written, 65536);
    assert_int_equal (stats->journal.durable, 60000);
    assert_int_equal (stats->journal.waiting, 3);
    assert_int_equal (stats->journal.compactions, 1);
    assert_int_equal (stats->journal.compaction_ms, 31);
    assert_string_equal (stats->journal.failed, "disk full");

    // The same bytes back, and the same again once the struct is reused.
    for (int round = 0; round < 2; round++) {
        s_packer_t p;
        s_packer_init (&p);
        zf_stats_encode (stats, &p.pk);
        s_assert_bytes (&p, vector);
        assert_int_equal (zf_stats_decode (stats, zchunk_data (vector), zchunk_size (vector), &err),
                          0);
    }
    zf_stats_destroy (&stats);
    assert_null (stats);
    zchunk_destroy (&vector);
}

static void
test_stats_built_by_hand (void **state)
{
    // What the broker does: fill, encode; a monitor decodes the same.
    zf_stats_t *stats = zf_stats_new ();
    stats->seq = 1;
    for (int q = 0; q < 40; q++) { // past the first allocation
        zf_stats_queue_t *queue = zf_stats_add_queue (stats);
        snprintf (queue->figures.name, sizeof queue->figures.name, "q%d", q);
        queue->figures.depth = (uint64_t) q;
        for (int g = 0; g < 20; g++)
            snprintf (zf_stats_add_group (queue)->name, ZF_NAME_MAX + 1, "g%d", g);
    }
    zf_stats_add_ended (stats, "seeds");
    zf_stats_add_crashloop (stats, "parse/0");
    zf_stats_add_crashloop (stats, "parse/3");
    s_packer_t p;
    s_packer_init (&p);
    zf_stats_encode (stats, &p.pk);
    zf_stats_t *read = zf_stats_new ();
    zf_error_t err;
    assert_int_equal (zf_stats_decode (read, (uint8_t *) p.buffer.data, p.buffer.size, &err), 0);
    assert_int_equal (read->nqueues, 40);
    assert_string_equal (read->queues[39].figures.name, "q39");
    assert_int_equal (read->queues[39].figures.depth, 39);
    assert_int_equal (read->queues[39].ngroups, 20);
    assert_string_equal (read->queues[39].groups[19].name, "g19");
    assert_false (read->journal.present);
    assert_string_equal (read->ended[0], "seeds");
    assert_int_equal (read->ncrashloops, 2);
    assert_string_equal (read->crashloops[1], "parse/3");
    msgpack_sbuffer_destroy (&p.buffer);
    zf_stats_destroy (&stats);
    zf_stats_destroy (&read);
}

static void
test_stats_malformed (void **state)
{
    zf_stats_t *stats = zf_stats_new ();
    zf_error_t err;
    struct {
        const char *json, *error;
    } cases[] = {
        { "[1]", "stats: the event: " },
        { "{\"queues\":[{\"name\":\"q\",\"depth\":\"deep\"}]}", "stats: queues[0].depth: " },
        { "{\"queues\":[{\"groups\":[{\"acked\":-1}]}]}", "stats: queues[0].groups[0].acked: " },
        { "{\"workers\":[{\"figures\":[1]}]}", "stats: workers[0].figures: " },
        { "{\"ended\":[3]}", "stats: ended[0]: " },
        { "{\"journal\":{\"failed\":1}}", "stats: journal.failed: " },
        // Each map, array and value of the wrong type, named by its path.
        { "{\"seq\":-1}", "stats: seq: expected uint, found int" },
        { "{\"ts\":\"now\"}", "stats: ts: expected int, found str" },
        { "{\"queues\":{}}", "stats: queues: expected array, found map" },
        { "{\"queues\":[1]}", "stats: queues[0]: expected map, found uint" },
        { "{\"queues\":[{\"put_rate\":\"fast\"}]}",
          "stats: queues[0].put_rate: expected float, found str" },
        { "{\"queues\":[{\"paused\":1}]}", "stats: queues[0].paused: expected bool, found uint" },
        { "{\"queues\":[{\"groups\":{}}]}", "stats: queues[0].groups: expected array" },
        { "{\"queues\":[{\"groups\":[{\"top\":[{\"key\":1}]}]}]}",
          "stats: queues[0].groups[0].top[0].key: expected str, found uint" },
        // A worker's number is a uint32, as in its HELLO: refused, not wrapped.
        { "{\"workers\":[{\"worker\":4294967296}]}",
          "stats: workers[0].worker: 4294967296 is over 2^32-1" },
        { "{\"workers\":[{\"pid\":1.5}]}", "stats: workers[0].pid: expected uint, found float" },
        { "{\"journal\":[]}", "stats: journal: expected map, found array" },
        { "{\"journal\":{\"compaction_ms\":\"x\"}}", "stats: journal.compaction_ms: " },
        { "{\"crashloops\":[true]}", "stats: crashloops[0]: expected str, found bool" },
        { "{\"ended\":\"seeds\"}", "stats: ended: expected array, found str" },
        // A key twice: which one a monitor shows would be a guess.
        { "{\"queues\":[{\"name\":\"a\",\"name\":\"b\"}]}",
          "stats: queues[0]: field 'name' appears twice" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_packer_t p;
        s_packer_init (&p);
        assert_int_equal (zf_json_to_msgpack (cases[i].json, strlen (cases[i].json), &p.pk, NULL),
                          0);
        assert_int_equal (zf_stats_decode (stats, (uint8_t *) p.buffer.data, p.buffer.size, &err),
                          -1);
        if (strncmp (err.text, cases[i].error, strlen (cases[i].error)) != 0)
            fail_msg ("%s: got '%s', expected '%s...'", cases[i].json, err.text, cases[i].error);
        // Cut short anywhere: refused, never read past the end.
        for (size_t cut = 0; cut + 1 < p.buffer.size; cut++)
            assert_int_equal (zf_stats_decode (stats, (uint8_t *) p.buffer.data, cut, &err), -1);
        msgpack_sbuffer_destroy (&p.buffer);
    }
    // Keys it does not know are skipped: a newer broker's event reads.
    const char *newer =
        "{\"seq\":3,\"shards\":[1,2],\"queues\":[{\"name\":\"q\",\"tier\":\"hot\"}]}";
    s_packer_t p;
    s_packer_init (&p);
    zf_json_to_msgpack (newer, strlen (newer), &p.pk, NULL);
    assert_int_equal (zf_stats_decode (stats, (uint8_t *) p.buffer.data, p.buffer.size, &err), 0);
    assert_int_equal (stats->seq, 3);
    assert_string_equal (stats->queues[0].figures.name, "q");
    msgpack_sbuffer_destroy (&p.buffer);
    zf_stats_destroy (&stats);
}

//  A string literal's bytes and their count, its NUL left out.
#define BYTES(literal) literal, sizeof (literal) - 1

//  Decodes size bytes at data into stats, expecting -1 with code and a
//  text that begins with text.
static void
s_expect_refused (zf_stats_t *stats, const void *data, size_t size, zf_err_t code, const char *text)
{
    zf_error_t err = { 0 };
    assert_int_equal (zf_stats_decode (stats, (const uint8_t *) data, size, &err), -1);
    if (err.code != code || strncmp (err.text, text, strlen (text)) != 0)
        fail_msg ("got %s '%s', expected %s '%s...'", zf_errname (err.code), err.text,
                  zf_errname (code), text);
}

static void
test_stats_truncated (void **state)
{
    zf_stats_t *stats = zf_stats_new ();
    // The vector cut anywhere: refused as cut short, never read past.
    zchunk_t *vector = s_vector ("stats");
    for (size_t cut = 0; cut < zchunk_size (vector); cut++) {
        zf_error_t err = { 0 };
        assert_int_equal (zf_stats_decode (stats, zchunk_data (vector), cut, &err), -1);
        assert_int_equal (err.code, ZF_ETRUNC);
        assert_int_equal (strncmp (err.text, "stats: ", 7), 0);
    }
    zchunk_destroy (&vector);
    s_expect_refused (stats, BYTES (""), ZF_ETRUNC,
                      "stats: the event: expected map, found end of input");
    // A map that announces more entries than the event holds.
    s_expect_refused (stats, BYTES ("\x83\xa3seq\x01"), ZF_ETRUNC,
                      "stats: the event: map of 3 entries cannot fit in the 5 bytes left");
    // A queue's map of 2 entries with 1: it takes the event's next key as
    // its own, and the event ends where its own next key should be.
    s_expect_refused (stats, BYTES ("\x82\xa6queues\x91\x82\xa4name\xa1q\xa3seq\x01"), ZF_ETRUNC,
                      "stats: (a key): expected str, found end of input");
    // A full event and a byte more.
    s_expect_refused (stats, BYTES ("\x81\xa3seq\x01\xc0"), ZF_EVALUE,
                      "stats: bytes after the event's map");
    zf_stats_destroy (&stats);
}

static void
test_stats_oversize (void **state)
{
    zf_stats_t *stats = zf_stats_new ();
    // Counts and lengths past what the event holds: refused before
    // anything is allocated for them.
    s_expect_refused (stats, BYTES ("\xdf\xff\xff\xff\xff"), ZF_ETRUNC,
                      "stats: the event: map of 4294967295 entries cannot fit");
    s_expect_refused (stats, BYTES ("\x81\xa6queues\xdd\xff\xff\xff\xff\x80"), ZF_ETRUNC,
                      "stats: queues: array of 4294967295 entries cannot fit");
    s_expect_refused (stats,
                      BYTES ("\x81\xa7workers\x91\x81\xa5"
                             "actor\xdb\x7f\xff\xff\xff"),
                      ZF_ETRUNC, "stats: workers[0].actor: str of 2147483647 bytes runs past");
    // An unknown key is skipped, but not when nested deeper than zf_mp
    // goes.
    s_packer_t p;
    s_packer_init (&p);
    msgpack_pack_map (&p.pk, 1);
    zf_mp_pack_cstr (&p.pk, "shards");
    for (int depth = 0; depth < ZF_MP_MAX_DEPTH + 1; depth++)
        msgpack_pack_array (&p.pk, 1);
    msgpack_pack_nil (&p.pk);
    s_expect_refused (stats, p.buffer.data, p.buffer.size, ZF_EDEPTH, "stats: shards: ");
    msgpack_sbuffer_destroy (&p.buffer);
    // A key that is not a string.
    s_expect_refused (stats, BYTES ("\x81\xa6queues\x91\x81\x01\x02"), ZF_ETYPE,
                      "stats: queues[0].(a key): expected str, found uint");

    // A group's top keys past ZF_TOP_KEYS: the first kept, the others
    // skipped whatever they are, as a newer broker may send more.
    s_packer_init (&p);
    msgpack_pack_map (&p.pk, 1);
    zf_mp_pack_cstr (&p.pk, "queues");
    msgpack_pack_array (&p.pk, 1);
    msgpack_pack_map (&p.pk, 1);
    zf_mp_pack_cstr (&p.pk, "groups");
    msgpack_pack_array (&p.pk, 1);
    msgpack_pack_map (&p.pk, 2);
    zf_mp_pack_cstr (&p.pk, "keys");
    msgpack_pack_uint64 (&p.pk, 40);
    zf_mp_pack_cstr (&p.pk, "top");
    msgpack_pack_array (&p.pk, ZF_TOP_KEYS + 2);
    for (int k = 0; k < ZF_TOP_KEYS + 2; k++) {
        char key[16];
        snprintf (key, sizeof key, "k%d", k);
        if (k == ZF_TOP_KEYS) {
            zf_mp_pack_cstr (&p.pk, "not a map"); // past the top: skipped
            continue;
        }
        msgpack_pack_map (&p.pk, 2);
        zf_mp_pack_cstr (&p.pk, "key");
        zf_mp_pack_cstr (&p.pk, key);
        zf_mp_pack_cstr (&p.pk, "ready");
        msgpack_pack_uint64 (&p.pk, (uint64_t) (100 - k));
    }
    zf_error_t err;
    assert_int_equal (zf_stats_decode (stats, (uint8_t *) p.buffer.data, p.buffer.size, &err), 0);
    zf_stats_group_t *group = &stats->queues[0].groups[0];
    assert_int_equal (group->keys, 40);
    assert_int_equal (group->ntop, ZF_TOP_KEYS);
    assert_string_equal (group->top[ZF_TOP_KEYS - 1].key, "k9");
    assert_int_equal (group->top[ZF_TOP_KEYS - 1].ready, 91);
    msgpack_sbuffer_destroy (&p.buffer);

    // Strings longer than their buffers are cut to them: the rest of the
    // event still reads.
    char actor[300], failed[ZF_TEXT_MAX + 200];
    memset (actor, 'a', sizeof actor - 1);
    actor[sizeof actor - 1] = 0;
    memset (failed, 'f', sizeof failed - 1);
    failed[sizeof failed - 1] = 0;
    s_packer_init (&p);
    msgpack_pack_map (&p.pk, 3);
    zf_mp_pack_cstr (&p.pk, "workers");
    msgpack_pack_array (&p.pk, 1);
    msgpack_pack_map (&p.pk, 1);
    zf_mp_pack_cstr (&p.pk, "actor");
    zf_mp_pack_cstr (&p.pk, actor);
    zf_mp_pack_cstr (&p.pk, "journal");
    msgpack_pack_map (&p.pk, 1);
    zf_mp_pack_cstr (&p.pk, "failed");
    zf_mp_pack_cstr (&p.pk, failed);
    zf_mp_pack_cstr (&p.pk, "late_acks");
    msgpack_pack_uint64 (&p.pk, 9);
    assert_int_equal (zf_stats_decode (stats, (uint8_t *) p.buffer.data, p.buffer.size, &err), 0);
    assert_int_equal (strlen (stats->workers[0].actor), ZF_NAME_MAX);
    assert_true (stats->journal.present);
    assert_int_equal (strlen (stats->journal.failed), ZF_TEXT_MAX);
    assert_int_equal (stats->late_acks, 9);
    msgpack_sbuffer_destroy (&p.buffer);
    zf_stats_destroy (&stats);
}

static void
test_other_event_vectors (void **state)
{
    zf_id_t id;
    for (int i = 0; i < ZF_ID_SIZE; i++)
        id.bytes[i] = (uint8_t) i;
    s_packer_t p;
    s_packer_init (&p);
    zf_event_worker (&p.pk, 1, TS, "fetch", 1, "node-2", 77, "");
    zchunk_t *vector = s_vector ("worker.joined");
    s_assert_bytes (&p, vector);
    zchunk_destroy (&vector);
    s_packer_init (&p);
    zf_event_dead (&p.pk, 5, TS, &id, "urls", "fetch", 5, "HTTP 503");
    vector = s_vector ("dead.urls");
    s_assert_bytes (&p, vector);
    zchunk_destroy (&vector);
    s_packer_init (&p);
    zf_event_protocol (&p.pk, 2, TS, "intake", "", "frame 0 is not a queue name");
    vector = s_vector ("error.protocol");
    s_assert_bytes (&p, vector);
    zchunk_destroy (&vector);
    s_packer_init (&p);
    zf_event_auth (&p.pk, 3, TS, "198.51.100.9", "", "no client key");
    vector = s_vector ("auth.refused");
    s_assert_bytes (&p, vector);
    zchunk_destroy (&vector);
}

static void
test_data_event (void **state)
{
    // Filled as items come, its count written last: one msgpack map.
    s_packer_t p;
    s_packer_init (&p);
    size_t count_at = zf_event_data_begin (&p.buffer, &p.pk, 11, TS, "urls");
    zf_id_t id = { { 0 } };
    for (int i = 0; i < 300; i++) {
        id.bytes[0] = (uint8_t) i;
        zf_event_data_add (&p.pk, &id, TS + i, "\xa1x", 2);
    }
    zf_event_data_end (&p.buffer, count_at, 300);
    zf_mp_t mp;
    zf_mp_init (&mp, p.buffer.data, p.buffer.size);
    assert_int_equal (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL), 0);
    assert_int_equal (zf_mp_left (&mp), 0);
    char *json = zf_msgpack_to_json (p.buffer.data, p.buffer.size, NULL);
    assert_non_null (strstr (json, "\"seq\":11,\"ts\":1795000000000,\"queue\":\"urls\",\"items\":[{"
                                   "\"id\":\"00000000000000000000000000000000\""));
    free (json);
    msgpack_sbuffer_destroy (&p.buffer);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_stats_vector),    cmocka_unit_test (test_stats_built_by_hand),
        cmocka_unit_test (test_stats_malformed), cmocka_unit_test (test_stats_truncated),
        cmocka_unit_test (test_stats_oversize),  cmocka_unit_test (test_other_event_vectors),
        cmocka_unit_test (test_data_event),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
