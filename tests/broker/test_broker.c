/*  Tests of the broker with real sockets: every item put is delivered and
    acked exactly as a user would count them (its journal: test_persist.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_broker.h"
#include "zf_mp.h"
#include "zf_testkit.h"
#include "zf_id.h"
#include "zf_proto.h"
#include "zflow.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define LOOPBACK     ZF_TEST_LOOPBACK
#define SRC_AND_WORK ZF_TEST_SRC_AND_WORK

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

static const char *s_simple = SRC_AND_WORK;

static void
test_put_deliver_ack (void **state)
{
    s_fixture_t *f = s_start (s_simple);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 32);
    zf_id_t ids[1000];
    assert_int_equal (zf_test_put_ints (producer, "jobs", 1000, ids), 0);
    assert_int_equal (zf_client_flush (producer, 10000), 0);

    int seen[1000] = { 0 };
    int got = 0;
    while (got < 1000) {
        zf_item_t *item = zf_client_next (worker, 10000);
        assert_non_null (item);
        int64_t n = zf_test_body_int (item);
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

//  The cases of s_keys_from_urls.
static const struct {
    const char *url; // a string item's, or with `map` a map's "url"
    bool map;        // the item is {"url": URL, "n": 1}
    const char *key; // its zflow-key, or NULL for none
} s_url_cases[] = {
    { "http://Example.COM/a", false, "example.com" },
    { "http://example.com:80/", false, "example.com" },
    { "https://example.com:443/x", false, "example.com" },
    { "https://example.com:8443/x", false, "example.com:8443" },
    { "http://user:pw@site.org/p", false, "site.org" },
    { "http://evil.com\\@good.com/", false, "evil.com" },
    { "nourl?next=http://a.com/", false, NULL },
    { "http://b.org/x", true, "b.org" },
    { "mailto:someone@c.org", false, NULL },
    { "http://bad\x01host/", false, NULL },  // a control character: no key
    { "http://\xff\xfe.com/", false, NULL }, // not UTF-8: no key
};
#define S_URL_CASES (sizeof s_url_cases / sizeof s_url_cases[0])

//  Puts case i of s_url_cases into jobs (an id of its own, starting with
//  i + 1), with a stale zflow-key (one from its parent) and a header of its
//  own.
static void
s_put_url (zf_client_t *producer, size_t i)
{
    static uint32_t puts;
    static const uint8_t headers[] = { 0x82, 0xa9, 'z', 'f', 'l', 'o', 'w',  '-', 'k',  'e', 'y',
                                       0xa5, 's',  't', 'a', 'l', 'e', 0xa1, 't', 0xa1, '1' };
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    if (s_url_cases[i].map) {
        msgpack_pack_map (&pk, 2);
        zf_mp_pack_cstr (&pk, "url");
        zf_mp_pack_cstr (&pk, s_url_cases[i].url);
        zf_mp_pack_cstr (&pk, "n");
        msgpack_pack_int (&pk, 1);
    }
    else
        zf_mp_pack_cstr (&pk, s_url_cases[i].url);
    zf_id_t id = { { (uint8_t) (i + 1), 0x5e } };
    puts++;
    memcpy (id.bytes + 2, &puts, sizeof puts);
    zf_put_opts_t opts = { .id = &id, .headers = headers, .headers_size = sizeof headers };
    assert_int_equal (zf_client_put_with (producer, "jobs", buffer.data, buffer.size, &opts, NULL),
                      0);
    msgpack_sbuffer_destroy (&buffer);
}

//  The zflow-key of the next item worker takes (acked), into key ("" for
//  none); its case's index, or -1 when none came in 10 s.
static int
s_next_key (zf_client_t *worker, char *key, size_t size)
{
    zf_item_t *item = zf_client_next (worker, 10000);
    if (!item)
        return -1;
    int i = zf_item_id (item)->bytes[0] - 1;
    size_t headers_size;
    const void *h = zf_item_headers (item, &headers_size);
    uint32_t len = 0;
    assert_non_null (zf_mp_header (h, headers_size, "t", &len)); // its own header kept
    const char *found = zf_mp_header (h, headers_size, "zflow-key", &len);
    snprintf (key, size, "%.*s", found ? (int) len : 0, found ? found : "");
    zf_client_ack (worker, &item);
    return i;
}

//  The worker takes one item of each case, keyed as the case says.
static void
s_expect_url_keys (zf_client_t *worker)
{
    for (size_t got = 0; got < S_URL_CASES; got++) {
        char key[64];
        int i = s_next_key (worker, key, sizeof key);
        assert_true (i >= 0);
        assert_string_equal (key, s_url_cases[i].key ? s_url_cases[i].key : "stale");
    }
}

//  Each item the producer puts into jobs carries zflow-key, the host (and
//  a port other than its scheme's) of its URL, in place of an inherited
//  one; an item without a URL keeps what it had. explicit: the producer
//  asks for it (zf_client_key_by_url), else the broker's WELCOME says so.
static void
s_keys_from_urls (const char *config, bool explicit)
{
    s_fixture_t *f = s_start (config);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    if (explicit)
        zf_client_key_by_url (producer, "jobs");
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 32);
    for (size_t i = 0; i < S_URL_CASES; i++)
        s_put_url (producer, i);
    assert_int_equal (zf_client_flush (producer, 10000), 0);
    s_expect_url_keys (worker);
    zf_client_destroy (&producer);
    zf_client_destroy (&worker);
    s_stop (&f);
}

#define S_URL_KEYED SRC_AND_WORK "queues\n    jobs\n        key = url-host\n"

static void
test_a_key_from_each_url (void **state)
{
    s_keys_from_urls (S_URL_KEYED, false); // the broker's WELCOME names jobs
    s_keys_from_urls (s_simple, true);     // the writer asks for it
}

//  A writer that puts before its broker is up holds its items until the
//  broker's WELCOME says which queues are keyed by URL: they are keyed.
static void
test_a_writer_before_its_broker_keys_by_url (void **state)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", zf_test_free_port ());
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    for (size_t i = 0; i < S_URL_CASES; i++)
        s_put_url (producer, i); // held: no broker yet
    assert_int_equal (zf_client_flush (producer, 300), -1);
    zf_pipeline_t *pipeline = zf_test_pipeline (S_URL_KEYED);
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, endpoint, LOOPBACK, LOOPBACK, &err);
    if (!broker)
        fail_msg ("broker: %s", err.text);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 32);
    assert_int_equal (zf_client_flush (producer, 10000), 0);
    s_expect_url_keys (worker);
    zf_client_destroy (&producer);
    zf_client_destroy (&worker);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

//  A reload that keys a queue by URL, or stops doing so, is told to the
//  sessions already open: their next items follow it.
static void
test_a_reload_tells_the_writers (void **state)
{
    s_fixture_t *f = s_start (s_simple);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 32);
    char key[64];
    s_put_url (producer, 0);
    assert_int_equal (zf_client_flush (producer, 10000), 0);
    assert_int_equal (s_next_key (worker, key, sizeof key), 0);
    assert_string_equal (key, "stale"); // not keyed by URL yet

    zf_pipeline_t *keyed = zf_test_pipeline (S_URL_KEYED);
    zf_pipeline_t *plain = zf_test_pipeline (s_simple);
    zf_pipeline_t *configs[] = { keyed, plain };
    const char *expected[] = { "example.com", "stale" };
    for (int step = 0; step < 2; step++) {
        zf_broker_reload (f->broker, configs[step], "");
        // The reload's PING reaches the producer while it waits for a
        // confirm, so an item put after one such wait shows it.
        bool seen = false;
        for (int tries = 0; tries < 3 && !seen; tries++) {
            s_put_url (producer, 0);
            assert_int_equal (zf_client_flush (producer, 10000), 0);
            assert_int_equal (s_next_key (worker, key, sizeof key), 0);
            seen = streq (key, expected[step]);
        }
        assert_true (seen);
    }
    zf_client_destroy (&producer);
    zf_client_destroy (&worker);
    s_stop (&f);
    zf_pipeline_destroy (&keyed);
    zf_pipeline_destroy (&plain);
}

//  Receives from several workers in turn until each group has count items
//  or 20 s pass; returns per-worker counts in got (acks everything).
static int
s_drain (zf_client_t **workers, int nworkers, int *got, int **seen, int count)
{
    int64_t deadline = zclock_mono () + 20000;
    int total = 0;
    while (total < count && zclock_mono () < deadline) {
        for (int w = 0; w < nworkers; w++) {
            zf_item_t *item = zf_client_next (workers[w], 5);
            if (!item)
                continue;
            int64_t n = zf_test_body_int (item);
            if (seen && n >= 0 && n < count)
                seen[w][n]++;
            got[w]++;
            total++;
            zf_client_ack (workers[w], &item);
        }
    }
    return total;
}

static const char *s_fanout = ZF_TEST_FANOUT;

//  The figures of queue name, from the broker, via client (all zero, the
//  name empty, if it does not list it).
static zf_figures_t
s_queue_figures (zf_client_t *client, const char *name)
{
    size_t count;
    zf_figures_t *figures = zf_client_queues (client, &count, 5000), found = { 0 };
    assert_non_null (figures);
    for (size_t i = 0; i < count; i++)
        if (streq (figures[i].name, name))
            found = figures[i];
    free (figures);
    return found;
}

static void
test_linger (void **state)
{
    // An actor that lingers keeps its puts and acks while it is busy
    // (looks without waiting), and sends them once it waits, or once the
    // linger is over.
    s_fixture_t *f = s_start (s_simple);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *observer = zf_client_new (endpoint, "observer", NULL, 0);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_set_linger (producer, 60000);
    assert_int_equal (zf_client_linger_left (producer), -1); // nothing held
    assert_int_equal (zf_test_put_ints (producer, "jobs", 3, NULL), 0);
    for (int i = 0; i < 10; i++)
        zf_client_pump (producer, 0);
    int left = zf_client_linger_left (producer);
    assert_true (left > 0 && left <= 60000);
    assert_int_equal (s_queue_figures (observer, "jobs").put, 0);
    zf_client_set_linger (producer, 0); // the linger is over: the next look sends
    zf_client_pump (producer, 0);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    assert_int_equal (s_queue_figures (observer, "jobs").put, 3);

    // A worker's acks wait while its linger lasts, and go once it is over,
    // its waits cut short for that. (One that holds 64 items sends them
    // sooner once 16 wait.)
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 64);
    zf_client_set_linger (worker, 60000);
    int seen[3] = { 0 };
    assert_int_equal (zf_test_take (worker, 3, seen, NULL), 3);
    ZF_TEST_ASSERT_ONCE (seen, 3);
    zf_client_pump (worker, 0);
    assert_int_equal (s_queue_figures (observer, "jobs").ack, 0);
    zf_client_set_linger (worker, 200);
    zf_figures_t jobs = { 0 };
    for (int tries = 0; tries < 100 && jobs.ack < 3; tries++) {
        zf_client_pump (worker, 60000); // ends when the linger does
        jobs = s_queue_figures (observer, "jobs");
    }
    assert_int_equal (jobs.ack, 3);
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    zf_client_destroy (&observer);
    s_stop (&f);
}

static void
test_wake (void **state)
{
    // A readable wake socket (an actor's pipe with a stop in it) ends the
    // session's waits without an item, and is left for the actor to read.
    s_fixture_t *f = s_start (s_simple);
    zf_client_t *worker = zf_client_new (zf_broker_endpoint (f->broker), "work", "jobs", 8);
    zsock_t *actor_end;
    zsock_t *pipe = zsys_create_pipe (&actor_end);
    zf_client_set_wake (worker, actor_end);
    zstr_send (pipe, "$TERM");
    int64_t start = zclock_mono ();
    assert_null (zf_client_next (worker, 30000));
    zf_client_pump (worker, 30000);
    assert_true (zclock_mono () - start < 10000); // not the 60 s of the two waits
    char *command = zstr_recv (actor_end);
    assert_string_equal (command, "$TERM");
    zstr_free (&command);
    zf_client_destroy (&worker);
    zsock_destroy (&actor_end);
    zsock_destroy (&pipe);
    s_stop (&f);
}

static void
test_fanout_and_sharing (void **state)
{
    s_fixture_t *f = s_start (s_fanout);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *g1[3], *g2[1];
    for (int i = 0; i < 3; i++)
        g1[i] = zf_client_new (endpoint, "g1", "jobs", 20);
    g2[0] = zf_client_new (endpoint, "g2", "jobs", 20);
    enum { N = 1500 }; // within the default max-depth: all put before any is taken
    assert_int_equal (zf_test_put_ints (producer, "jobs", N, NULL), 0);
    assert_int_equal (zf_client_flush (producer, 10000), 0);

    int *seen1[3], *seen2[1];
    for (int i = 0; i < 3; i++)
        seen1[i] = (int *) zmalloc (N * sizeof (int));
    seen2[0] = (int *) zmalloc (N * sizeof (int));
    int got1[3] = { 0 }, got2[1] = { 0 };
    assert_int_equal (s_drain (g1, 3, got1, seen1, N), N);
    assert_int_equal (s_drain (g2, 1, got2, seen2, N), N);
    // Each group got every item once; the workers of g1 shared them.
    for (int n = 0; n < N; n++) {
        assert_int_equal (seen1[0][n] + seen1[1][n] + seen1[2][n], 1);
        assert_int_equal (seen2[0][n], 1);
    }
    print_message ("fan-out: g1 workers got %d + %d + %d, g2 got %d\n", got1[0], got1[1], got1[2],
                   got2[0]);
    for (int i = 0; i < 3; i++)
        assert_true (got1[i] > 0);
    for (int i = 0; i < 3; i++) {
        free (seen1[i]);
        zf_client_destroy (&g1[i]);
    }
    free (seen2[0]);
    zf_client_destroy (&g2[0]);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static const char *s_retry = ZF_TEST_RETRY;

static void
test_retry_then_dead (void **state)
{
    s_fixture_t *f = s_start (s_retry);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 4);
    zf_id_t ids[2]; // 0 fails twice then succeeds; 1 always fails
    assert_int_equal (zf_test_put_ints (producer, "jobs", 2, ids), 0);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    int attempts[2] = { 0 };
    int64_t deadline = zclock_mono () + 10000;
    while ((attempts[0] < 3 || attempts[1] < 3) && zclock_mono () < deadline) {
        zf_item_t *item = zf_client_next (worker, 100);
        if (!item)
            continue;
        int64_t n = zf_test_body_int (item);
        attempts[n]++;
        assert_int_equal (zf_item_attempt (item), attempts[n]);
        if (n == 0 && attempts[n] == 3)
            zf_client_ack (worker, &item);
        else
            zf_client_nack (worker, &item, n == 0 ? "flaky" : "poison", false, 0);
    }
    assert_int_equal (attempts[0], 3);
    assert_int_equal (attempts[1], 3);
    // No fourth attempt of the poison item: it is dead.
    assert_null (zf_client_next (worker, 300));
    char status[32];
    assert_int_equal (zf_client_status (producer, &ids[0], status, sizeof status, 5000), 0);
    assert_string_equal (status, "done");
    assert_int_equal (zf_client_status (producer, &ids[1], status, sizeof status, 5000), 0);
    assert_string_equal (status, "dead");
    size_t count;
    zf_figures_t *figures = zf_client_queues (producer, &count, 5000);
    assert_non_null (figures);
    bool found = false;
    for (size_t i = 0; i < count; i++)
        if (streq (figures[i].name, "jobs")) {
            assert_int_equal (figures[i].dead, 1);
            assert_int_equal (figures[i].nack, 5); // 2 for the flaky item, 3 for the poison
            assert_int_equal (figures[i].depth, 0);
        }
        else if (streq (figures[i].name, "jobs.dead")) {
            assert_int_equal (figures[i].depth, 1);
            found = true;
        }
    assert_true (found);
    free (figures);
    // The dead-letter queue hands the poison item to its reader.
    zf_client_t *morgue = zf_client_new (endpoint, "morgue", "jobs.dead", 1);
    zf_item_t *dead = zf_client_next (morgue, 5000);
    assert_non_null (dead);
    assert_int_equal (zf_test_body_int (dead), 1);
    assert_string_equal (zf_item_queue (dead), "jobs.dead");
    zf_client_ack (morgue, &dead);
    zf_client_destroy (&morgue);
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static const char *s_small = "queues\n"
                             "    jobs\n"
                             "        max-depth = 10\n" SRC_AND_WORK;

//  The depth of queue, or UINT64_MAX if the broker does not list it.
static uint64_t
s_depth (zf_client_t *client, const char *queue)
{
    zf_figures_t figures = s_queue_figures (client, queue);
    return figures.name[0] ? figures.depth : UINT64_MAX;
}

static void
test_backpressure (void **state)
{
    s_fixture_t *f = s_start (s_small);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *observer = zf_client_new (endpoint, "observer", NULL, 0);
    enum { N = 300 };
    assert_int_equal (zf_test_put_ints (producer, "jobs", N, NULL), 0);
    // Nobody consumes: the broker holds the PUTs it has no room for.
    assert_int_equal (zf_client_flush (producer, 300), -1);
    assert_int_equal (s_depth (observer, "jobs"), 10);

    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 3);
    int seen[N] = { 0 };
    int got = 0;
    uint64_t deepest = 0;
    int64_t deadline = zclock_mono () + 20000;
    while (got < N && zclock_mono () < deadline) {
        zf_item_t *item = zf_client_next (worker, 50);
        zf_client_flush (producer, 0); // let the producer take its confirms
        if (!item)
            continue;
        seen[zf_test_body_int (item)]++;
        got++;
        zf_client_ack (worker, &item);
        if (got % 25 == 0) {
            uint64_t depth = s_depth (observer, "jobs");
            deepest = depth > deepest ? depth : deepest;
        }
    }
    assert_int_equal (got, N);
    for (int n = 0; n < N; n++)
        assert_int_equal (seen[n], 1);
    assert_true (deepest <= 10);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    print_message ("backpressure: %d items through a queue of 10, deepest seen %llu\n", N,
                   (unsigned long long) deepest);
    zf_client_destroy (&worker);
    zf_client_destroy (&observer);
    zf_client_destroy (&producer);
    s_stop (&f);
}

//  A worker between jobs and a queue mid of two, which a second group
//  drains; tasks whose outputs are kept as results.
static const char *s_parking = "queues\n"
                               "    jobs\n"
                               "        external = true\n"
                               "    mid\n"
                               "        max-depth = 2\n"
                               "actors\n"
                               "    work\n"
                               "        kind = processor\n"
                               "        command = cat\n"
                               "        input = jobs\n"
                               "        output = mid\n"
                               "    down\n"
                               "        kind = sink\n"
                               "        input = mid\n"
                               "        target = null\n";

static void
test_ack_waits_for_parked_outputs (void **state)
{
    // An item's ACK that follows an output the broker parked for room (its
    // queue full) takes effect only once that output is stored: a crash
    // meanwhile would lose both. Until then the item is still delivered,
    // and the worker's slot stays taken.
    s_fixture_t *f = s_start (s_parking);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    assert_int_equal (zf_test_put_ints (producer, "mid", 2, NULL), 0); // mid is full
    zf_id_t job;
    assert_int_equal (zf_test_put_ints (producer, "jobs", 1, &job), 0);
    assert_int_equal (zf_client_flush (producer, 5000), 0);

    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 1);
    zf_item_t *item = zf_client_next (worker, 5000);
    assert_non_null (item);
    assert_int_equal (zf_client_emit (worker, item, "mid", "\x07", 1), 0);
    zf_client_ack (worker, &item);
    char seen[32];
    // The STATUS goes after the PUT and the ACK on the same socket.
    assert_int_equal (zf_client_status (worker, &job, seen, sizeof seen, 5000), 0);
    assert_string_equal (seen, "delivered");

    // Room in mid: the output goes in, then the ACK.
    zf_client_t *down = zf_client_new (endpoint, "down", "mid", 1);
    int got = 0, outputs = 0;
    for (int64_t deadline = zclock_mono () + 10000; got < 3 && zclock_mono () < deadline;) {
        item = zf_client_next (down, 100);
        if (!item)
            continue;
        outputs += zf_test_body_int (item) == 7;
        got++;
        zf_client_ack (down, &item);
    }
    assert_int_equal (got, 3);
    assert_int_equal (outputs, 1);
    assert_int_equal (zf_client_status (down, &job, seen, sizeof seen, 5000), 0);
    assert_string_equal (seen, "done");
    assert_int_equal (zf_client_flush (worker, 5000), 0); // its PUT confirmed
    zf_client_destroy (&down);
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static const char *s_loop = "queues\n"
                            "    steps\n"
                            "        max-depth = 3\n"
                            "actors\n"
                            "    start\n"
                            "        kind = producer\n"
                            "        source = seq:3\n"
                            "        output = steps\n"
                            "    step\n"
                            "        kind = processor\n"
                            "        command = cat\n"
                            "        input = steps\n"
                            "        output = steps\n";

static void
test_a_cycle_at_max_depth_goes_on (void **state)
{
    // A worker that reads and writes one queue (a task that makes the
    // next step of itself), the queue full: its outputs cannot wait for
    // room, which only its own ACKs (held for those outputs) would make.
    // They go in past max-depth and every step is taken, once.
    s_fixture_t *f = s_start (s_loop);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "start", NULL, 0);
    zf_client_t *worker = zf_client_new (endpoint, "step", "steps", 3);
    for (int i = 0; i < 3; i++) {
        uint8_t five = 5;
        assert_int_equal (zf_client_put (producer, "steps", &five, 1, NULL), 0);
    }
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    int steps = 0, by_value[6] = { 0 };
    for (int64_t deadline = zclock_mono () + 20000; steps < 18 && zclock_mono () < deadline;) {
        zf_item_t *item = zf_client_next (worker, 100);
        if (!item)
            continue;
        int64_t n = zf_test_body_int (item);
        assert_true (n >= 0 && n <= 5);
        by_value[n]++;
        steps++;
        if (n > 0) {
            uint8_t next = (uint8_t) (n - 1);
            assert_int_equal (zf_client_emit (worker, item, "steps", &next, 1), 0);
        }
        zf_client_ack (worker, &item);
    }
    assert_int_equal (steps, 18);
    for (int n = 0; n <= 5; n++)
        assert_int_equal (by_value[n], 3);
    assert_int_equal (zf_client_flush (worker, 5000), 0);
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static const char *s_results = "queues\n"
                               "    tasks\n"
                               "        external = true\n"
                               "        max-attempts = 2\n"
                               "        retry-base = 10ms\n"
                               "        retry-max = 20ms\n"
                               "actors\n"
                               "    work\n"
                               "        kind = processor\n"
                               "        command = cat\n"
                               "        input = tasks\n"
                               "        output = answers\n";

static void
test_refused_output_fails_its_item (void **state)
{
    // An output the results store refuses (the 257th of one root) fails
    // the item that made it: retried, then dead with the refusal as its
    // reason. The task never ends "done" with results missing.
    s_fixture_t *f = s_start (s_results);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *client = zf_client_new (endpoint, "client", NULL, 0);
    zf_id_t task;
    assert_int_equal (zf_test_put_ints (client, "tasks", 1, &task), 0);
    assert_int_equal (zf_client_flush (client, 5000), 0);
    zf_client_t *worker = zf_client_new (endpoint, "work", "tasks", 1);
    int attempts = 0;
    for (int64_t deadline = zclock_mono () + 10000; attempts < 2 && zclock_mono () < deadline;) {
        zf_item_t *item = zf_client_next (worker, 100);
        if (!item)
            continue;
        attempts++;
        for (int i = 0; i < 257; i++)
            assert_int_equal (zf_client_emit (worker, item, "answers", "\x01", 1), 0);
        zf_client_ack (worker, &item);
        zf_client_flush (worker, 5000);
    }
    assert_int_equal (attempts, 2);
    zf_result_t *result = zf_client_result (client, &task, 5000, 5000);
    assert_non_null (result);
    assert_string_equal (zf_result_state (result), "dead");
    assert_string_equal (zf_result_queue (result), "tasks");
    assert_int_equal (zf_result_attempts (result), 2);
    if (!strstr (zf_result_reason (result), "256 results at most"))
        fail_msg ("reason: %s", zf_result_reason (result));
    zf_result_destroy (&result);
    zf_client_destroy (&worker);
    zf_client_destroy (&client);
    s_stop (&f);
}

static const char *s_fast_heartbeat = "broker\n"
                                      "    heartbeat = 100ms\n" SRC_AND_WORK;

static void
test_worker_killed (void **state)
{
    s_fixture_t *f = s_start (s_fast_heartbeat);
    const char *endpoint = zf_broker_endpoint (f->broker);
    // A worker process takes 50 items and holds them; then it is killed -9.
    char *argv[] = { (char *) ZFLOW_TESTACTOR,
                     (char *) endpoint,
                     "work",
                     "jobs",
                     "--hold",
                     "--concurrency",
                     "50",
                     NULL };
    int out;
    pid_t pid = zf_test_spawn (argv, &out);
    assert_true (pid > 0);
    char line[64];
    assert_int_equal (zf_test_read_line (out, line, sizeof line, 10000), 0);
    assert_string_equal (line, "ready");

    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    enum { N = 200 };
    assert_int_equal (zf_test_put_ints (producer, "jobs", N, NULL), 0);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    do
        assert_int_equal (zf_test_read_line (out, line, sizeof line, 10000), 0);
    while (!streq (line, "holding 50"));
    kill (pid, SIGKILL);
    zf_test_reap (pid, 5000);
    close (out);

    // Another worker gets everything, the killed one's 50 included.
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 20);
    int seen[N] = { 0 }, redelivered = 0, lost, duplicated;
    zf_test_take (worker, N, seen, &redelivered);
    zf_test_count (seen, N, &lost, &duplicated);
    print_message ("worker killed holding 50: lost %d, duplicated %d, redelivered %d\n", lost,
                   duplicated, redelivered);
    assert_int_equal (lost, 0);
    assert_int_equal (duplicated, 0);
    assert_int_equal (redelivered, 50);
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    s_stop (&f);
}

//  Receives the next event on sub whose topic starts with prefix, within
//  timeout_ms; returns its message (topic, map[, body]) or NULL.
static zmsg_t *
s_event (zsock_t *sub, const char *prefix, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    zpoller_t *poller = zpoller_new (sub, NULL);
    zmsg_t *found = NULL;
    while (!found && zclock_mono () < deadline) {
        if (!zpoller_wait (poller, (int) (deadline - zclock_mono ())))
            continue;
        zmsg_t *msg = zmsg_recv (sub);
        char *topic = msg ? zframe_strdup (zmsg_first (msg)) : NULL;
        if (topic && strncmp (topic, prefix, strlen (prefix)) == 0)
            found = msg;
        else
            zmsg_destroy (&msg);
        zstr_free (&topic);
    }
    zpoller_destroy (&poller);
    return found;
}

//  The uint value of key in an event's map, or -1.
static int64_t
s_event_uint (zmsg_t *event, const char *key)
{
    zmsg_first (event);
    zframe_t *map = zmsg_next (event);
    zf_mp_t mp;
    zf_mp_init (&mp, zframe_data (map), zframe_size (map));
    uint32_t count;
    if (zf_mp_map (&mp, &count, NULL))
        return -1;
    for (uint32_t i = 0; i < count; i++) {
        if (zf_mp_key_is (&mp, key)) {
            uint64_t value;
            return zf_mp_uint (&mp, &value, NULL) ? -1 : (int64_t) value;
        }
        zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL); // key
        zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL); // value
    }
    return -1;
}

static void
test_intake_and_events (void **state)
{
    s_fixture_t *f = s_start (s_simple);
    const char *endpoint = zf_broker_endpoint (f->broker);
    // A plain SUB client, not zflow, reads the events.
    zsock_t *sub = zsock_new_sub (zf_broker_events (f->broker), "");
    zsock_set_subscribe (sub, "data.jobs");
    zmsg_t *stats = s_event (sub, "stats", 5000); // also proves the subscription is live
    assert_non_null (stats);
    zmsg_destroy (&stats);

    // A plain PUSH client, not zflow, feeds the queue through intake.
    zsock_t *push = zsock_new_push (zf_broker_intake (f->broker));
    enum { N = 100 };
    for (int i = 0; i < N; i++) {
        uint8_t body[3] = { 0xcd, (uint8_t) (i >> 8), (uint8_t) i }; // msgpack uint16
        zmsg_t *msg = zmsg_new ();
        zmsg_addstr (msg, "jobs");
        zmsg_addmem (msg, body, sizeof body);
        zmsg_send (&msg, push);
    }
    // Malformed intake messages are counted and dropped.
    zstr_send (push, "jobs");                    // one frame
    zstr_sendx (push, "nosuchqueue", "x", NULL); // unknown queue
    zstr_sendx (push, "jobs", "\xc1", NULL);     // not msgpack

    // The tap sees the 100 items in order, numbered 1 to 100, in as many
    // data events as the broker's loop took turns to take them in.
    int tapped = 0;
    while (tapped < N) {
        zmsg_t *tap = s_event (sub, "data.jobs", 5000);
        assert_non_null (tap);
        assert_int_equal (zmsg_size (tap), 2); // topic, the event's map
        assert_int_equal (s_event_uint (tap, "seq"), tapped + 1);
        zframe_t *map = zmsg_last (tap);
        zf_mp_t mp;
        zf_mp_init (&mp, zframe_data (map), zframe_size (map));
        uint32_t fields, count = 0;
        assert_int_equal (zf_mp_map (&mp, &fields, NULL), 0);
        for (uint32_t i = 0; i < fields; i++)
            if (zf_mp_key_is (&mp, "items"))
                assert_int_equal (zf_mp_array (&mp, &count, NULL), 0);
            else
                assert_int_equal (zf_mp_skip_pair (&mp), 0);
        assert_true (count > 0);
        for (uint32_t i = 0; i < count; i++, tapped++) {
            uint32_t keys;
            assert_int_equal (zf_mp_map (&mp, &keys, NULL), 0);
            const uint8_t *body = NULL;
            uint32_t size = 0;
            for (uint32_t k = 0; k < keys; k++)
                if (zf_mp_key_is (&mp, "body"))
                    assert_int_equal (zf_mp_bin (&mp, &body, &size, NULL), 0);
                else
                    assert_int_equal (zf_mp_skip_pair (&mp), 0);
            assert_int_equal (size, 3);
            assert_int_equal ((body[1] << 8) | body[2], tapped);
        }
        zmsg_destroy (&tap);
    }
    assert_int_equal (tapped, N);
    // Events come in order: the refusals follow the tap of the items.
    zmsg_t *rejected = s_event (sub, "error.protocol", 5000);
    assert_non_null (rejected);
    zmsg_destroy (&rejected);

    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 32);
    int seen[N] = { 0 };
    assert_int_equal (zf_test_take (worker, N, seen, NULL), N);
    ZF_TEST_ASSERT_ONCE (seen, N);
    zmsg_t *joined = s_event (sub, "worker.joined", 5000);
    assert_non_null (joined);
    zmsg_destroy (&joined);
    // Stats count what went through and what was refused.
    zf_client_flush (worker, 5000);
    int64_t refused = 0;
    for (int tries = 0; tries < 5 && refused < 3; tries++) {
        stats = s_event (sub, "stats", 3000);
        assert_non_null (stats);
        refused = s_event_uint (stats, "rejected");
        assert_true (s_event_uint (stats, "seq") > 0);
        zmsg_destroy (&stats);
    }
    assert_int_equal (refused, 3);
    zf_client_destroy (&worker);
    zsock_destroy (&push);
    zsock_destroy (&sub);
    s_stop (&f);
}

static void
test_bad_input (void **state)
{
    s_fixture_t *f = s_start (s_simple);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 16);
    zsock_t *raw = zsock_new_dealer (endpoint);
    zsock_set_rcvtimeo (raw, 5000);

    static const struct {
        const char *frames[3]; // what the raw peer sends
        int count;             // frames in it
        const char *code;      // the ERROR code expected
        const char *reason;    // a fragment of its reason
    } cases[] = {
        { { "HELO", "\x80" }, 2, "command", "unknown command 'HELO'" },
        { { "PUT" }, 1, "frames", "1 frames" },
        { { "CREDIT", "\x81\xa6"
                      "credit"
                      "\xa2"
                      "64" },
          2,
          "type",
          "expected uint" },
        { { "PING", "\x80" }, 2, "state", "PING before HELLO" },
        { { "DELIVER", "\x81\xa5"
                       "items"
                       "\x90" },
          2,
          "state",
          "sent by the broker" },
        { { "ACK", "\x81\xa3"
                   "ids"
                   "\xdd\xff\xff\xff\xff" },
          2,
          "truncated",
          "cannot fit" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zmsg_t *msg = zmsg_new ();
        for (int j = 0; j < cases[i].count; j++)
            zmsg_addstr (msg, cases[i].frames[j]);
        zmsg_send (&msg, raw);
        char *command = NULL;
        zmsg_t *reply = zmsg_recv (raw);
        assert_non_null (reply);
        command = zframe_strdup (zmsg_first (reply));
        assert_string_equal (command, "ERROR");
        zf_proto_t *p = zf_proto_new ();
        assert_int_equal (zf_proto_decode (p, &reply, NULL), 0);
        if (!streq (p->code, cases[i].code) || !strstr (p->reason, cases[i].reason))
            fail_msg ("case %zu: got %s: %s", i, p->code, p->reason);
        zf_proto_destroy (&p);
        zstr_free (&command);
    }
    // Random frames from a fixed seed: refused one by one, never fatal.
    unsigned seed = 42;
    for (int i = 0; i < 300; i++) {
        zmsg_t *msg = zmsg_new ();
        int frames = 1 + rand_r (&seed) % 4;
        for (int j = 0; j < frames; j++) {
            uint8_t junk[48];
            size_t size = (size_t) (rand_r (&seed) % sizeof junk);
            for (size_t k = 0; k < size; k++)
                junk[k] = (uint8_t) rand_r (&seed);
            zmsg_addmem (msg, junk, size);
        }
        zmsg_send (&msg, raw);
    }
    // Random frames to the intake (PULL) and random subscriptions to the
    // events (XPUB): counted or ignored, never fatal.
    zsock_t *push = zsock_new_push (zf_broker_intake (f->broker));
    zsock_t *xsub = zsock_new (ZMQ_XSUB);
    zsock_connect (xsub, "%s", zf_broker_events (f->broker));
    for (int i = 0; i < 300; i++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_t *sub = zmsg_new ();
        int frames = 1 + rand_r (&seed) % 3;
        for (int j = 0; j < frames; j++) {
            uint8_t junk[40];
            size_t size = (size_t) (rand_r (&seed) % sizeof junk);
            for (size_t k = 0; k < size; k++)
                junk[k] = (uint8_t) rand_r (&seed);
            zmsg_addmem (msg, junk, size);
            zmsg_addmem (sub, junk, size);
        }
        zmsg_send (&msg, push);
        zmsg_send (&sub, xsub);
    }
    zsock_destroy (&xsub);
    zsock_destroy (&push);

    // Meanwhile, the pipeline works.
    enum { N = 500 };
    assert_int_equal (zf_test_put_ints (producer, "jobs", N, NULL), 0);
    assert_int_equal (zf_client_flush (producer, 10000), 0);
    int seen[N] = { 0 };
    assert_int_equal (zf_test_take (worker, N, seen, NULL), N);
    ZF_TEST_ASSERT_ONCE (seen, N);
    zsock_destroy (&raw);
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static const char *s_upper = "actors\n"
                             "    src\n"
                             "        kind = producer\n"
                             "        source = seq:1\n"
                             "        output = words\n"
                             "    upper\n"
                             "        kind = exec\n"
                             "        command = /bin/true\n"
                             "        input = words\n"
                             "        output = shouted\n"
                             "    store\n"
                             "        kind = sink\n"
                             "        input = shouted\n"
                             "        target = null\n";

static void
test_custom_actor_example (void **state)
{
    // The example custom actor, run as a process, as its comment says.
    s_fixture_t *f = s_start (s_upper);
    const char *endpoint = zf_broker_endpoint (f->broker);
    setenv ("ZFLOW_ENDPOINT", endpoint, 1);
    setenv ("ZFLOW_ACTOR", "upper", 1);
    setenv ("ZFLOW_INPUT", "words", 1);
    setenv ("ZFLOW_OUTPUT", "shouted", 1);
    char *argv[] = { (char *) ZFLOW_UPPER, NULL };
    int out;
    pid_t pid = zf_test_spawn (argv, &out);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *store = zf_client_new (endpoint, "store", "shouted", 8);
    zf_id_t ids[2];
    zf_client_put_str (producer, "words", "hello", &ids[0]);
    zf_client_put_str (producer, "words", "zflow", &ids[1]);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    bool hello = false, zflow = false;
    for (int i = 0; i < 2; i++) {
        zf_item_t *item = zf_client_next (store, 10000);
        assert_non_null (item);
        size_t size;
        const char *body = (const char *) zf_item_body (item, &size);
        hello |= size == 6 && memcmp (body + 1, "HELLO", 5) == 0;
        zflow |= size == 6 && memcmp (body + 1, "ZFLOW", 5) == 0;
        zf_client_ack (store, &item);
    }
    assert_true (hello && zflow);
    kill (pid, SIGTERM);
    int status = zf_test_reap (pid, 5000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    close (out);
    zf_client_destroy (&store);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static void
test_dedup (void **state)
{
    // The same id put twice (a producer retrying, two schedulers) is
    // confirmed both times and delivered once.
    s_fixture_t *f = s_start (s_simple);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *a = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *b = zf_client_new (endpoint, "src", NULL, 0);
    zf_id_t id = zf_id_firing ("test/tick/job", 1795000000000);
    assert_int_equal (zf_client_put_id (a, "jobs", &id, "\x01", 1), 0);
    assert_int_equal (zf_client_put_id (b, "jobs", &id, "\x01", 1), 0);
    assert_int_equal (zf_client_put_id (a, "jobs", &id, "\x01", 1), 0);
    assert_int_equal (zf_client_flush (a, 5000), 0);
    assert_int_equal (zf_client_flush (b, 5000), 0);
    size_t count;
    zf_figures_t *figures = zf_client_queues (a, &count, 5000);
    assert_non_null (figures);
    assert_int_equal (figures[0].put, 1);
    assert_int_equal (figures[0].depth, 1);
    free (figures);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 8);
    zf_item_t *item = zf_client_next (worker, 5000);
    assert_non_null (item);
    assert_true (zf_id_eq (zf_item_id (item), &id));
    zf_client_ack (worker, &item);
    // still a duplicate after it is done: within the window it is known
    assert_int_equal (zf_client_put_id (b, "jobs", &id, "\x01", 1), 0);
    assert_int_equal (zf_client_flush (b, 5000), 0);
    assert_null (zf_client_next (worker, 300));
    zf_client_destroy (&worker);
    zf_client_destroy (&a);
    zf_client_destroy (&b);
    s_stop (&f);
}

static const char *s_timeout = "queues\n"
                               "    jobs\n"
                               "        timeout = 200ms\n"
                               "        retry-base = 10ms\n" SRC_AND_WORK;

static void
test_delivery_timeout (void **state)
{
    // A worker that holds an item past the queue's timeout (alive, but
    // stuck) loses it to another worker, with attempt 2.
    s_fixture_t *f = s_start (s_timeout);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *stuck = zf_client_new (endpoint, "work", "jobs", 1);
    zf_id_t id;
    assert_int_equal (zf_test_put_ints (producer, "jobs", 1, &id), 0);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    zf_item_t *held = zf_client_next (stuck, 5000);
    assert_non_null (held);
    assert_int_equal (zf_item_attempt (held), 1);
    zf_client_t *other = zf_client_new (endpoint, "work", "jobs", 1);
    zf_item_t *again = zf_client_next (other, 5000);
    assert_non_null (again);
    assert_true (zf_id_eq (zf_item_id (again), &id));
    assert_int_equal (zf_item_attempt (again), 2);
    zf_client_ack (other, &again);
    // The stuck worker's late ack changes nothing.
    zf_client_ack (stuck, &held);
    assert_int_equal (zf_client_flush (stuck, 5000), 0);
    char status[32];
    // asked on the connection that acked: the answer comes after the ack
    assert_int_equal (zf_client_status (other, &id, status, sizeof status, 5000), 0);
    assert_string_equal (status, "done");
    zf_client_destroy (&other);
    zf_client_destroy (&stuck);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static const char *s_lineage = "actors\n"
                               "    src\n"
                               "        kind = producer\n"
                               "        source = seq:1\n"
                               "        output = pages\n"
                               "    split\n"
                               "        kind = exec\n"
                               "        command = /bin/true\n"
                               "        input = pages\n"
                               "        output = parts\n"
                               "    store\n"
                               "        kind = sink\n"
                               "        input = parts\n"
                               "        target = null\n";

static void
test_lineage_done (void **state)
{
    // A tracked root is done when it and everything made from it is acked.
    s_fixture_t *f = s_start (s_lineage);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *split = zf_client_new (endpoint, "split", "pages", 4);
    zf_client_t *store = zf_client_new (endpoint, "store", "parts", 4);
    zf_client_track (producer, true);
    zf_id_t root;
    assert_int_equal (zf_test_put_ints (producer, "pages", 1, &root), 0);
    assert_int_equal (zf_client_flush (producer, 5000), 0);

    zf_item_t *page = zf_client_next (split, 5000);
    assert_non_null (page);
    zf_client_emit (split, page, "parts", "\x01", 1);
    zf_client_emit (split, page, "parts", "\x02", 1);
    zf_client_ack (split, &page);
    assert_int_equal (zf_client_flush (split, 5000), 0); // sends the parts, then the ack
    zf_item_t *first = zf_client_next (store, 5000);
    zf_item_t *second = zf_client_next (store, 5000);
    assert_non_null (first);
    assert_non_null (second);
    zf_client_ack (store, &first);
    zf_client_flush (store, 5000);
    zf_id_t done;
    char state_text[16];
    // one part still out: the root is not done
    assert_int_equal (zf_client_done (producer, &done, state_text, sizeof state_text, 300), -1);
    zf_client_ack (store, &second);
    assert_int_equal (zf_client_flush (store, 5000), 0);
    assert_int_equal (zf_client_done (producer, &done, state_text, sizeof state_text, 5000), 0);
    assert_true (zf_id_eq (&done, &root));
    assert_string_equal (state_text, "done");
    zf_client_destroy (&store);
    zf_client_destroy (&split);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static void
test_wrong_pipeline_refused (void **state)
{
    // A worker of another pipeline (a stray process on a reused port) is
    // refused; one of this pipeline is welcomed.
    s_fixture_t *f = s_start (s_simple);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *stray = zf_client_new (endpoint, "work", "jobs", 8);
    zf_client_set_pipeline (stray, "another");
    size_t size;
    zf_client_resume_point (stray, &size, 500);
    char expected[200];
    snprintf (expected, sizeof expected, "value: this broker runs pipeline '%s', not 'another'",
              f->pipeline->name);
    assert_string_equal (zf_client_last_error (stray), expected);
    // Refused for good: no new sessions, every call fails at once.
    assert_true (zf_client_refused (stray));
    assert_int_equal (zf_client_put_str (stray, "jobs", "x", NULL), -1);
    assert_int_equal (zf_client_flush (stray, -1), -1);
    char state_text[16];
    zf_id_t id = { { 0 } };
    assert_int_equal (zf_client_status (stray, &id, state_text, sizeof state_text, -1), -1);
    assert_int_equal (zf_client_sessions (stray), 1);
    assert_string_equal (zf_client_last_error (stray), expected);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_set_pipeline (producer, f->pipeline->name);
    assert_int_equal (zf_test_put_ints (producer, "jobs", 5, NULL), 0);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    assert_null (zf_client_next (stray, 300)); // nothing goes to the stray
    assert_int_equal (zf_client_sessions (stray), 1);
    assert_false (zf_client_refused (producer));
    zf_client_destroy (&stray);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static void
test_names_that_are_not_text_refused (void **state)
{
    // Names the broker republishes (stats, events, logs) must be UTF-8
    // text: a HELLO naming a group "\xff\xfe" is refused for good, a put
    // to a queue so named is refused with a reason that does not repeat
    // the bytes; the broker goes on serving the rest.
    s_fixture_t *f = s_start (s_simple);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *bad = zf_client_new (endpoint, "\xff\xfe", NULL, 0);
    size_t size;
    zf_client_resume_point (bad, &size, 5000);
    assert_true (zf_client_refused (bad));
    assert_string_equal (zf_client_last_error (bad),
                         "value: HELLO's name is not UTF-8 text (or holds control characters)");
    zf_client_destroy (&bad);
    bad = zf_client_new (endpoint, "tab\there", NULL, 0);
    zf_client_resume_point (bad, &size, 5000);
    assert_true (zf_client_refused (bad));
    zf_client_destroy (&bad);

    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    assert_int_equal (zf_client_put_str (producer,
                                         "jo\xff"
                                         "bs",
                                         "x", NULL),
                      0);
    assert_int_equal (zf_client_flush (producer, 5000), -1);
    assert_string_equal (zf_client_last_error (producer),
                         "refused: no queue of that name: it is not UTF-8 text");
    assert_int_equal (zf_test_put_ints (producer, "jobs", 3, NULL), 0);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 8);
    int seen[3] = { 0 };
    assert_int_equal (zf_test_take_range (worker, 3, seen, 3, NULL), 3);
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static void
test_put_over_max_frame_refused (void **state)
{
    // A body over the broker's max-frame (its socket would drop the
    // connection, and the put wait out its time) is refused at once, with
    // its size and the limit; the session goes on: what was put before
    // and after it arrives, nothing else.
    s_fixture_t *f = s_start ("broker\n"
                              "    max-frame = 4KiB\n" SRC_AND_WORK);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 32);
    assert_int_equal (zf_test_put_ints (producer, "jobs", 5, NULL), 0);
    static char big[5000];
    assert_int_equal (zf_client_put (producer, "jobs", big, sizeof big, NULL), -1);
    assert_string_equal (zf_client_last_error (producer),
                         "an item of 5000 bytes is over the broker's max-frame (4096 bytes): "
                         "not put");
    assert_int_equal (zf_test_put_ints (producer, "jobs", 5, NULL), 0);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    assert_int_equal (zf_client_sessions (producer), 1);
    int seen[5] = { 0 };
    assert_int_equal (zf_test_take_range (worker, 10, seen, 5, NULL), 10);
    for (int i = 0; i < 5; i++)
        assert_int_equal (seen[i], 2); // 0..4 twice, nothing more
    assert_null (zf_client_next (worker, 200));
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static void
test_put_to_a_full_queue_answers (void **state)
{
    // A put with a wait, to a queue at max-depth, is refused once the wait
    // is over, naming the queue and its limit; what went in stays, what
    // was refused never arrives, and once there is room a put goes in.
    s_fixture_t *f = s_start ("queues\n"
                              "    jobs\n"
                              "        max-depth = 2\n" SRC_AND_WORK);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_put_opts_t opts = { .wait_ms = 200 };
    for (int i = 0; i < 3; i++) {
        char body[1] = { (char) i }; // msgpack 0, 1, 2
        assert_int_equal (zf_client_put_with (producer, "jobs", body, 1, &opts, NULL), 0);
    }
    assert_int_equal (zf_client_flush (producer, 10000), -1);
    assert_string_equal (zf_client_last_error (producer),
                         "refused: queue 'jobs' is full (max-depth 2)");
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 32);
    int seen[3] = { 0 };
    assert_int_equal (zf_test_take_range (worker, 2, seen, 3, NULL), 2);
    assert_int_equal (seen[0] + seen[1] + seen[2], 2);
    assert_int_equal (seen[2], 0); // the third was refused, and stays so
    assert_null (zf_client_next (worker, 300));
    // Room now: the next put goes in within its wait.
    char three[1] = { 3 };
    assert_int_equal (zf_client_put_with (producer, "jobs", three, 1, &opts, NULL), 0);
    assert_int_equal (zf_client_flush (producer, 10000), 0);
    zf_item_t *item = zf_client_next (worker, 5000);
    assert_non_null (item);
    assert_int_equal (zf_test_body_int (item), 3);
    zf_client_ack (worker, &item);
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static void
test_lineage_cancel (void **state)
{
    // A root is cancelled while one of its parts is taken and two wait:
    // the waiting ones are dropped, the taken one is marked, and the
    // root's tracker hears "cancelled".
    s_fixture_t *f = s_start (s_lineage);
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *split = zf_client_new (endpoint, "split", "pages", 4);
    // Credit for all three: one is taken, the others wait in the session.
    zf_client_t *store = zf_client_new (endpoint, "store", "parts", 3);
    zf_client_track (producer, true);
    zf_id_t root;
    assert_int_equal (zf_test_put_ints (producer, "pages", 1, &root), 0);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    zf_item_t *page = zf_client_next (split, 5000);
    assert_non_null (page);
    for (int i = 0; i < 3; i++)
        zf_client_emit (split, page, "parts", "\x01", 1);
    zf_client_ack (split, &page);
    assert_int_equal (zf_client_flush (split, 5000), 0);
    zf_item_t *held = zf_client_next (store, 5000);
    assert_non_null (held);
    assert_false (zf_item_cancelled (held));

    zf_client_cancel (split, &root, "group failed");
    zf_client_flush (split, 5000);
    for (int tries = 0; tries < 100 && !zf_item_cancelled (held); tries++)
        zf_client_pump (store, 50); // bounded: the CANCEL is on its way
    assert_true (zf_item_cancelled (held));
    zf_client_ack (store, &held);
    assert_null (zf_client_next (store, 300)); // the waiting parts are gone
    zf_id_t done;
    char state_text[16];
    assert_int_equal (zf_client_done (producer, &done, state_text, sizeof state_text, 5000), 0);
    assert_true (zf_id_eq (&done, &root));
    assert_string_equal (state_text, "cancelled");
    char status[32];
    assert_int_equal (zf_client_status (producer, &root, status, sizeof status, 5000), 0);
    assert_string_equal (status, "done"); // the root itself had finished before the cancel
    zf_client_destroy (&store);
    zf_client_destroy (&split);
    zf_client_destroy (&producer);
    s_stop (&f);
}

static void
test_checkpoint_covers_only_what_was_put (void **state)
{
    // A producer whose PUT window (4) fills as it puts its 5th item sends
    // the first 4 and waits for their confirm; killed with 2 items still
    // unsent, its checkpoint at the broker must be the position after the
    // 4th item, not after the 5th: a restart resumes there and loses none.
    s_fixture_t *f = s_start ("broker\n"
                              "    window = 4\n"
                              "actors\n"
                              "    src\n"
                              "        kind = producer\n"
                              "        source = seq:10\n"
                              "        output = jobs\n"
                              "    store\n"
                              "        kind = sink\n"
                              "        input = jobs\n"
                              "        target = null\n");
    char *argv[] = { ZFLOW_TESTACTOR,
                     (char *) zf_broker_endpoint (f->broker),
                     "src",
                     "jobs",
                     "--put-and-die",
                     "6",
                     NULL };
    int out;
    pid_t pid = zf_test_spawn (argv, &out);
    close (out);
    int status = zf_test_reap (pid, 10000);
    assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
    zf_client_t *again = zf_client_new (zf_broker_endpoint (f->broker), "src", NULL, 0);
    size_t size = 0;
    const uint8_t *resume = (const uint8_t *) zf_client_resume_point (again, &size, 5000);
    assert_non_null (resume);
    assert_int_equal (size, 8);
    assert_int_equal (resume[7], 4);
    zf_client_destroy (&again);
    s_stop (&f);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_checkpoint_covers_only_what_was_put),
        cmocka_unit_test (test_put_deliver_ack),
        cmocka_unit_test (test_a_key_from_each_url),
        cmocka_unit_test (test_a_reload_tells_the_writers),
        cmocka_unit_test (test_a_writer_before_its_broker_keys_by_url),
        cmocka_unit_test (test_linger),
        cmocka_unit_test (test_wake),
        cmocka_unit_test (test_fanout_and_sharing),
        cmocka_unit_test (test_retry_then_dead),
        cmocka_unit_test (test_backpressure),
        cmocka_unit_test (test_ack_waits_for_parked_outputs),
        cmocka_unit_test (test_refused_output_fails_its_item),
        cmocka_unit_test (test_a_cycle_at_max_depth_goes_on),
        cmocka_unit_test (test_worker_killed),
        cmocka_unit_test (test_intake_and_events),
        cmocka_unit_test (test_bad_input),
        cmocka_unit_test (test_custom_actor_example),
        cmocka_unit_test (test_dedup),
        cmocka_unit_test (test_delivery_timeout),
        cmocka_unit_test (test_lineage_done),
        cmocka_unit_test (test_lineage_cancel),
        cmocka_unit_test (test_wrong_pipeline_refused),
        cmocka_unit_test (test_names_that_are_not_text_refused),
        cmocka_unit_test (test_put_over_max_frame_refused),
        cmocka_unit_test (test_put_to_a_full_queue_answers),
        cmocka_unit_test_teardown (test_checkpoint_covers_only_what_was_put, zf_test_kill_all),
    };
    return cmocka_run_group_tests (tests, NULL, zf_test_kill_all);
}
