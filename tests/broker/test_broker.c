/*  Tests of the broker with real sockets: every item put is delivered and
    acked exactly as a user would count them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_broker.h"
#include "zf_mp.h"
#include "zf_testkit.h"
#include "zflow.h"

#define LOOPBACK "tcp://127.0.0.1:*"

typedef struct {
    zf_pipeline_t *pipeline; // the config
    zf_broker_t *broker;     // running on it
} s_fixture_t;

static s_fixture_t *
s_start (const char *config)
{
    s_fixture_t *f = (s_fixture_t *) zmalloc (sizeof (s_fixture_t));
    f->pipeline = zf_test_pipeline (config);
    assert_non_null (f->pipeline);
    zf_error_t err;
    f->broker = zf_broker_new (f->pipeline, LOOPBACK, LOOPBACK, LOOPBACK, &err);
    if (!f->broker)
        fail_msg ("broker: %s", err.text);
    return f;
}

static void
s_stop (s_fixture_t **f_p)
{
    s_fixture_t *f = *f_p;
    zf_broker_destroy (&f->broker);
    zf_pipeline_destroy (&f->pipeline);
    free (f);
    *f_p = NULL;
}

//  A number from a msgpack body.
static int64_t
s_body_int (zf_item_t *item)
{
    size_t size;
    const void *body = zf_item_body (item, &size);
    zf_mp_t mp;
    zf_mp_init (&mp, body, size);
    int64_t value = -1;
    zf_mp_int (&mp, &value, NULL);
    return value;
}

static void
s_put_ints (zf_client_t *client, const char *queue, int count, zf_id_t *ids)
{
    for (int i = 0; i < count; i++) {
        uint8_t body[9];
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_int (&pk, i);
        memcpy (body, buffer.data, buffer.size);
        assert_int_equal (zf_client_put (client, queue, body, buffer.size, ids ? &ids[i] : NULL),
                          0);
        msgpack_sbuffer_destroy (&buffer);
    }
}

static const char *s_simple = "actors\n"
                              "    src\n"
                              "        kind = producer\n"
                              "        source = seq:1\n"
                              "        output = jobs\n"
                              "    work\n"
                              "        kind = sink\n"
                              "        input = jobs\n"
                              "        target = null\n";

static void
test_put_deliver_ack (void **state)
{
    s_fixture_t *f = s_start (s_simple);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 32);
    zf_id_t ids[1000];
    s_put_ints (producer, "jobs", 1000, ids);
    assert_int_equal (zf_client_flush (producer, 10000), 0);

    int seen[1000] = { 0 };
    int got = 0;
    while (got < 1000) {
        zf_item_t *item = zf_client_next (worker, 10000);
        assert_non_null (item);
        int64_t n = s_body_int (item);
        assert_true (n >= 0 && n < 1000);
        seen[n]++;
        assert_int_equal (zf_item_attempt (item), 1);
        assert_string_equal (zf_item_queue (item), "jobs");
        assert_true (zf_id_eq (zf_item_id (item), &ids[n]));
        zf_client_ack (worker, &item);
        assert_null (item);
        got++;
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal (seen[i], 1);
    assert_int_equal (zf_client_flush (worker, 5000), 0);
    char status[32];
    // the acks have reached the broker once a status (sent after them) answers
    assert_int_equal (zf_client_status (worker, &ids[999], status, sizeof status, 5000), 0);
    assert_string_equal (status, "done");
    zf_id_t unknown = zf_id_random ();
    assert_int_equal (zf_client_status (producer, &unknown, status, sizeof status, 5000), 0);
    assert_string_equal (status, "unknown");
    zf_client_destroy (&producer);
    zf_client_destroy (&worker);
    s_stop (&f);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_put_deliver_ack),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
