/*  Tests of the broker's journal with real sockets: what the broker
    confirmed survives its restart (and a disk that fills), each consumer
    group keeps its progress, and a failed delivery's attempts count on.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_broker.h"
#include "zf_testkit.h"
#include "zflow.h"

#include <sys/resource.h>
#include <sys/stat.h>

#define LOOPBACK ZF_TEST_LOOPBACK

static const char *s_fast_heartbeat = "broker\n"
                                      "    heartbeat = 100ms\n" ZF_TEST_SRC_AND_WORK;

static void
test_broker_restart (void **state)
{
    // Workers and producers open a new session with a broker that comes
    // back, and send again what it had not confirmed.
    // An ipc endpoint the test owns: a tcp port given back between the two
    // brokers could be taken by a test running beside this one.
    char endpoint[128];
    snprintf (endpoint, sizeof endpoint, "ipc:///tmp/zflow-test-restart-%d.sock", getpid ());
    zf_pipeline_t *pipeline = zf_test_pipeline (s_fast_heartbeat);
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, endpoint, LOOPBACK, NULL, &err);
    assert_non_null (broker);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 20);
    size_t size;
    zf_client_resume_point (producer, &size, 5000); // both welcomed by the first broker
    zf_client_resume_point (worker, &size, 5000);
    assert_null (zf_client_next (worker, 0));
    zf_broker_destroy (&broker);

    enum { N = 100 };
    assert_int_equal (zf_test_put_ints (producer, "jobs", N, NULL), 0);
    assert_int_equal (zf_client_flush (producer, 300), -1); // nobody to confirm
    broker = zf_broker_new (pipeline, endpoint, LOOPBACK, NULL, &err);
    if (!broker)
        fail_msg ("second broker on %s: %s", endpoint, err.text);
    assert_int_equal (zf_client_flush (producer, 20000), 0);
    int seen[N] = { 0 };
    assert_int_equal (zf_test_take (worker, N, seen, NULL), N);
    ZF_TEST_ASSERT_ONCE (seen, N);
    assert_true (zf_client_sessions (producer) >= 2);
    assert_true (zf_client_sessions (worker) >= 2);
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    unlink (endpoint + 6);
}

//  The pipeline of actors (a config's text), its broker journaling in a
//  new folder (dir).
static zf_pipeline_t *
s_journaled (char *dir, size_t size, const char *name, const char *actors)
{
    assert_int_equal (zf_test_dir_new (dir, size, name), 0);
    char *config = zsys_sprintf ("broker\n    journal = %s/journal\n%s", dir, actors);
    zf_pipeline_t *pipeline = zf_test_pipeline (config);
    zstr_free (&config);
    return pipeline;
}

//  A broker started anew on pipeline's journal, and the depth of its queue
//  jobs (which must be its first) in *depth.
static zf_broker_t *
s_broker_again (zf_pipeline_t *pipeline, uint64_t *depth)
{
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, LOOPBACK, LOOPBACK, NULL, &err);
    if (!broker)
        fail_msg ("the broker on its journal: %s", err.text);
    zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "check", NULL, 0);
    size_t count = 0;
    zf_figures_t *queues = zf_client_queues (client, &count, 5000);
    assert_true (count >= 1 && streq (queues[0].name, "jobs"));
    *depth = queues[0].depth;
    free (queues);
    zf_client_destroy (&client);
    return broker;
}

static void
test_journal_keeps_each_groups_progress (void **state)
{
    // Two consumer groups of one queue, one of which has acked every item
    // when the broker stops: the broker that starts on the same journal
    // gives the items to the other group only.
    char dir[256];
    zf_pipeline_t *pipeline = s_journaled (dir, sizeof dir, "broker-journal", ZF_TEST_FANOUT);
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, LOOPBACK, LOOPBACK, NULL, &err);
    assert_non_null (broker);
    zf_client_t *producer = zf_client_new (zf_broker_endpoint (broker), "src", NULL, 0);
    zf_client_t *g1 = zf_client_new (zf_broker_endpoint (broker), "g1", "jobs", 50);
    enum { N = 200 };
    zf_id_t ids[N];
    assert_int_equal (zf_test_put_ints (producer, "jobs", N, ids), 0);
    assert_int_equal (zf_client_flush (producer, 10000), 0);
    int seen[N] = { 0 };
    assert_int_equal (zf_test_take (g1, N, seen, NULL), N);
    size_t count = 0;
    free (zf_client_queues (g1, &count, 5000)); // answered after the acks before it
    zf_client_destroy (&g1);
    zf_client_destroy (&producer);
    zf_broker_destroy (&broker);

    uint64_t depth;
    broker = s_broker_again (pipeline, &depth);
    assert_int_equal (depth, N); // g2 has not had them
    g1 = zf_client_new (zf_broker_endpoint (broker), "g1", "jobs", 50);
    zf_client_t *g2 = zf_client_new (zf_broker_endpoint (broker), "g2", "jobs", 50);
    memset (seen, 0, sizeof seen);
    assert_int_equal (zf_test_take (g2, N, seen, NULL), N);
    ZF_TEST_ASSERT_ONCE (seen, N);
    zf_item_t *again = zf_client_next (g1, 500);
    assert_null (again); // g1 had acked them all
    // Both groups done with it now: the item is finished (asked on g2's
    // session, so after its acks).
    char state_text[32];
    assert_int_equal (zf_client_status (g2, &ids[0], state_text, sizeof state_text, 5000), 0);
    assert_string_equal (state_text, "done");
    zf_client_destroy (&g2);
    zf_client_destroy (&g1);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zf_test_dir_remove (dir);
}

//  The size of the largest journal segment in dir.
static off_t
s_largest_segment (const char *dir)
{
    off_t largest = 0;
    zdir_t *listing = zdir_new (dir, NULL);
    zfile_t **files = listing ? zdir_flatten (listing) : NULL;
    for (size_t i = 0; files && files[i]; i++)
        if (strstr (zfile_filename (files[i], NULL), ".zfj") && zfile_cursize (files[i]) > largest)
            largest = zfile_cursize (files[i]);
    zdir_flatten_free (&files);
    zdir_destroy (&listing);
    return largest;
}

static void
test_journal_full_disk (void **state)
{
    // A broker whose journal cannot write (a full disk; here the file size
    // limit) confirms nothing more but keeps what it was given; once there
    // is room it writes it all and confirms, and a broker started on the
    // journal has every item.
    char dir[256];
    zf_pipeline_t *pipeline = s_journaled (dir, sizeof dir, "broker-full", ZF_TEST_FANOUT);
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, LOOPBACK, LOOPBACK, NULL, &err);
    assert_non_null (broker);
    zf_client_t *producer = zf_client_new (zf_broker_endpoint (broker), "src", NULL, 0);
    enum { N = 100 };
    assert_int_equal (zf_test_put_ints (producer, "jobs", N, NULL), 0);
    assert_int_equal (zf_client_flush (producer, 10000), 0);

    char *journal = zsys_sprintf ("%s/journal", dir);
    struct rlimit unlimited, full;
    assert_int_equal (getrlimit (RLIMIT_FSIZE, &unlimited), 0);
    full = unlimited;
    full.rlim_cur = (rlim_t) s_largest_segment (journal) + 64; // part of a record fits
    signal (SIGXFSZ, SIG_IGN);
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &full), 0);
    assert_int_equal (zf_test_put_ints (producer, "jobs", N, NULL), 0);
    int confirmed = zf_client_flush (producer, 1500);
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &unlimited), 0);
    signal (SIGXFSZ, SIG_DFL);
    assert_int_equal (confirmed, -1); // nothing confirmed while it cannot write
    assert_int_equal (zf_client_flush (producer, 10000), 0); // written again, and confirmed
    zf_client_destroy (&producer);
    zf_broker_destroy (&broker);

    uint64_t depth;
    broker = s_broker_again (pipeline, &depth);
    assert_int_equal (depth, 2 * N); // every item, once
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zstr_free (&journal);
    zf_test_dir_remove (dir);
}

static void
test_attempts_survive_a_restart (void **state)
{
    // An item that failed twice of its three attempts fails for good at
    // its next failure, even when the broker was restarted in between.
    char dir[256];
    zf_pipeline_t *pipeline = s_journaled (dir, sizeof dir, "broker-attempts", ZF_TEST_RETRY);
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, LOOPBACK, LOOPBACK, NULL, &err);
    assert_non_null (broker);
    zf_client_t *producer = zf_client_new (zf_broker_endpoint (broker), "src", NULL, 0);
    zf_id_t id;
    assert_int_equal (zf_test_put_ints (producer, "jobs", 1, &id), 0);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    zf_client_t *worker = zf_client_new (zf_broker_endpoint (broker), "work", "jobs", 1);
    for (uint32_t attempt = 1; attempt <= 2; attempt++) {
        zf_item_t *item = zf_client_next (worker, 5000);
        assert_non_null (item);
        assert_int_equal (zf_item_attempt (item), attempt);
        zf_client_nack (worker, &item, "poison", false, 0);
    }
    size_t count = 0;
    free (zf_client_queues (worker, &count, 5000)); // answered after the NACKs before it
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    zf_broker_destroy (&broker);

    uint64_t depth;
    broker = s_broker_again (pipeline, &depth);
    assert_int_equal (depth, 1);
    worker = zf_client_new (zf_broker_endpoint (broker), "work", "jobs", 1);
    zf_item_t *item = zf_client_next (worker, 5000);
    assert_non_null (item);
    assert_int_equal (zf_item_attempt (item), 3);
    zf_client_nack (worker, &item, "poison", false, 0);
    char status[32];
    assert_int_equal (zf_client_status (worker, &id, status, sizeof status, 5000), 0);
    assert_string_equal (status, "dead");
    assert_null (zf_client_next (worker, 300)); // no fourth attempt
    zf_client_destroy (&worker);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zf_test_dir_remove (dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_broker_restart),
        cmocka_unit_test (test_journal_keeps_each_groups_progress),
        cmocka_unit_test (test_journal_full_disk),
        cmocka_unit_test (test_attempts_survive_a_restart),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
