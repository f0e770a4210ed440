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
        cmocka_unit_test (test_stats_malformed), cmocka_unit_test (test_other_event_vectors),
        cmocka_unit_test (test_data_event),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
