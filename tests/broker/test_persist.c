/*  Tests of the broker's journal with real sockets: what the broker
    confirmed survives its restart (and a disk that fills), each consumer
    group keeps its progress, and a failed delivery's attempts count on;
    and a worker's figures count on over its new sessions.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_broker.h"
#include "zf_testkit.h"
#include "zflow.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

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

static void
test_a_failures_detail_survives_a_restart (void **state)
{
    // A task dead with a traceback: after a restart its result and its
    // dead letter still give the traceback beside the reason.
    char dir[256];
    zf_pipeline_t *pipeline = s_journaled (dir, sizeof dir, "broker-detail", ZF_TEST_RETRY);
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, LOOPBACK, LOOPBACK, NULL, &err);
    assert_non_null (broker);
    zf_client_t *worker = zf_client_new (zf_broker_endpoint (broker), "work", "jobs", 1);
    zf_id_t id;
    assert_int_equal (zf_test_put_ints (worker, "jobs", 1, &id), 0);
    assert_int_equal (zf_client_flush (worker, 5000), 0);
    zf_item_t *item = zf_client_next (worker, 5000);
    assert_non_null (item);
    const char *traceback = "Traceback (most recent call last):\n  File \"t.py\", line 3, in "
                            "run\nZeroDivisionError: division by zero";
    zf_client_nack_detail (worker, &item, "ZeroDivisionError: division by zero", traceback, true,
                           0);
    char status[32];
    assert_int_equal (zf_client_status (worker, &id, status, sizeof status, 5000), 0);
    assert_string_equal (status, "dead");
    zf_client_destroy (&worker);
    zf_broker_destroy (&broker);

    uint64_t depth;
    broker = s_broker_again (pipeline, &depth);
    zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "check", NULL, 0);
    zf_result_t *result = zf_client_result (client, &id, 0, 5000);
    assert_non_null (result);
    assert_string_equal (zf_result_state (result), "dead");
    assert_string_equal (zf_result_reason (result), "ZeroDivisionError: division by zero");
    assert_string_equal (zf_result_detail (result), traceback);
    zf_result_destroy (&result);
    zf_id_t copy = zf_id_child (&id, UINT32_MAX);
    result = zf_client_item (client, &copy, 5000);
    assert_non_null (result);
    assert_string_equal (zf_result_queue (result), "jobs.dead");
    assert_string_equal (zf_result_detail (result), traceback);
    zf_result_destroy (&result);
    zf_client_destroy (&client);
    zf_broker_destroy (&broker);
    // zflow status --state, on the journal no broker runs on, shows the
    // dead letter's traceback under its reason.
    char *journal = zsys_sprintf ("%s/journal", dir);
    zf_test_result_t r = zf_test_zflow (NULL, "status", "--state", journal, NULL);
    assert_int_equal (r.status, 0);
    char hex[ZF_ID_HEX];
    char *expected = zsys_sprintf ("  %s  attempts 1  ZeroDivisionError: division by zero\n"
                                   "      Traceback (most recent call last):\n"
                                   "        File \"t.py\", line 3, in run\n"
                                   "      ZeroDivisionError: division by zero\n",
                                   zf_id_format (&copy, hex));
    if (!strstr (r.out, expected))
        fail_msg ("status --state: %s", r.out);
    zstr_free (&expected);
    zf_test_result_free (&r);
    zstr_free (&journal);
    zf_pipeline_destroy (&pipeline);
    zf_test_dir_remove (dir);
}

static void
test_a_cancels_reason_survives_a_restart (void **state)
{
    char dir[256];
    zf_pipeline_t *pipeline = s_journaled (dir, sizeof dir, "broker-cancel", ZF_TEST_RETRY);
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, LOOPBACK, LOOPBACK, NULL, &err);
    assert_non_null (broker);
    zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "web", NULL, 0);
    zf_put_opts_t later = { .delay_ms = 3600 * 1000 };
    zf_id_t id;
    assert_int_equal (zf_client_put_with (client, "jobs", "\x01", 1, &later, &id), 0);
    assert_int_equal (zf_client_flush (client, 5000), 0);
    zf_client_cancel (client, &id, "no longer wanted");
    char status[32];
    assert_int_equal (zf_client_status (client, &id, status, sizeof status, 5000), 0);
    assert_string_equal (status, "cancelled");
    zf_client_destroy (&client);
    zf_broker_destroy (&broker);

    uint64_t depth;
    broker = s_broker_again (pipeline, &depth);
    assert_int_equal (depth, 0);
    client = zf_client_new (zf_broker_endpoint (broker), "web", NULL, 0);
    zf_result_t *result = zf_client_result (client, &id, 0, 5000);
    assert_non_null (result);
    assert_string_equal (zf_result_state (result), "cancelled");
    assert_string_equal (zf_result_reason (result), "no longer wanted");
    zf_result_destroy (&result);
    zf_client_destroy (&client);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zf_test_dir_remove (dir);
}

//  The pipeline tests/broker/fixtures/journal-before-detail was written
//  with (by make_journal.py there, with zflow as it was before NACK had a
//  detail), its results kept for a century: the fixture's are as old as
//  the fixture, and must not expire under the test (the first line is
//  the broker's, whose section s_journaled begins).
static const char *s_fixture_pipeline = "    result-ttl = 36500d\n"
                                        "pipeline\n"
                                        "    name = fixture\n"
                                        "    results = answers\n"
                                        "queues\n"
                                        "    jobs\n"
                                        "        external = true\n"
                                        "        max-attempts = 3\n"
                                        "        retry-base = 1h\n"
                                        "        retry-max = 1h\n"
                                        "actors\n"
                                        "    work\n"
                                        "        kind = exec\n"
                                        "        command = /bin/true\n"
                                        "        input = jobs\n"
                                        "        output = answers\n";

//  An id of 16 bytes n.
static zf_id_t
s_same (uint8_t n)
{
    zf_id_t id;
    memset (id.bytes, n, sizeof id.bytes);
    return id;
}

//  What a client of the broker reads of the fixture's items; failed: after
//  the retrying one failed for good, with a detail.
static void
s_check_fixture (zf_broker_t *broker, bool failed)
{
    zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "check", NULL, 0);
    zf_id_t a = s_same (0xa1), b = s_same (0xb2), c = s_same (0xc3), d = s_same (0xd4);
    zf_result_t *result = zf_client_result (client, &a, 0, 5000);
    assert_non_null (result);
    assert_string_equal (zf_result_state (result), "dead");
    assert_string_equal (zf_result_reason (result), "HTTP 503");
    assert_string_equal (zf_result_detail (result), "");
    assert_string_equal (zf_result_queue (result), "jobs");
    assert_int_equal (zf_result_attempts (result), 1);
    zf_result_destroy (&result);
    zf_id_t copy = zf_id_child (&a, UINT32_MAX);
    result = zf_client_item (client, &copy, 5000);
    assert_string_equal (zf_result_state (result), "queued");
    assert_string_equal (zf_result_queue (result), "jobs.dead");
    assert_string_equal (zf_result_reason (result), "HTTP 503");
    zf_result_destroy (&result);
    result = zf_client_result (client, &b, 0, 5000);
    assert_string_equal (zf_result_state (result), "done");
    assert_int_equal (zf_result_count (result), 1);
    size_t size;
    const uint8_t *body = (const uint8_t *) zf_result_body (result, 0, &size);
    assert_int_equal (size, 1);
    assert_int_equal (body[0], 42);
    zf_result_destroy (&result);
    if (failed) {
        result = zf_client_result (client, &c, 0, 5000);
        assert_string_equal (zf_result_state (result), "dead");
        assert_string_equal (zf_result_reason (result), "KeyError: 'x'");
        assert_string_equal (zf_result_detail (result), "Traceback\nKeyError: 'x'");
        assert_int_equal (zf_result_attempts (result), 2);
        zf_result_destroy (&result);
        zf_id_t dead_c = zf_id_child (&c, UINT32_MAX);
        result = zf_client_item (client, &dead_c, 5000);
        assert_string_equal (zf_result_queue (result), "jobs.dead");
        assert_string_equal (zf_result_detail (result), "Traceback\nKeyError: 'x'");
    }
    else {
        // Ready again after a restart (its backoff is not kept), its
        // failure remembered.
        result = zf_client_item (client, &c, 5000);
        assert_string_equal (zf_result_state (result), "queued");
        assert_string_equal (zf_result_reason (result), "upstream timed out");
        assert_string_equal (zf_result_detail (result), "");
        assert_int_equal (zf_result_attempts (result), 1);
    }
    zf_result_destroy (&result);
    char status[32];
    assert_int_equal (zf_client_status (client, &d, status, sizeof status, 5000), 0);
    assert_string_equal (status, "cancelled");
    zf_client_destroy (&client);
}

static void
test_a_journal_from_before_detail_opens (void **state)
{
    // A journal written before records had a detail opens and reads as it
    // did: a dead task's reason, its dead letter, a result, a retrying
    // task's reason (from a snapshot), a cancelled task. The retrying task
    // then fails for good with a detail, and both read back after another
    // restart.
    char dir[256];
    zf_pipeline_t *pipeline = s_journaled (dir, sizeof dir, "broker-old", s_fixture_pipeline);
    char *journal = zsys_sprintf ("%s/journal", dir);
    assert_int_equal (zsys_dir_create ("%s", journal), 0);
    const char *segment = "0000000000000003.zfj";
    char *from = zsys_sprintf ("%s/tests/broker/fixtures/journal-before-detail/%s",
                               ZFLOW_SOURCE_DIR, segment);
    char *to = zsys_sprintf ("%s/%s", journal, segment);
    zfile_t *fixture = zfile_new (NULL, from);
    assert_int_equal (zfile_input (fixture), 0);
    zchunk_t *bytes = zfile_read (fixture, zsys_file_size (from), 0);
    assert_non_null (bytes);
    zfile_t *copy = zfile_new (NULL, to);
    assert_int_equal (zfile_output (copy), 0);
    assert_int_equal (zfile_write (copy, bytes, 0), 0);
    zfile_destroy (&copy);
    zchunk_destroy (&bytes);
    zfile_destroy (&fixture);

    uint64_t depth;
    zf_broker_t *broker = s_broker_again (pipeline, &depth);
    assert_int_equal (depth, 1); // the retrying task
    s_check_fixture (broker, false);
    zf_client_t *worker = zf_client_new (zf_broker_endpoint (broker), "work", "jobs", 1);
    zf_item_t *item = zf_client_next (worker, 5000);
    assert_non_null (item);
    zf_id_t c = s_same (0xc3);
    assert_true (zf_id_eq (zf_item_id (item), &c));
    assert_int_equal (zf_item_attempt (item), 2);
    zf_client_nack_detail (worker, &item, "KeyError: 'x'", "Traceback\nKeyError: 'x'", true, 0);
    char status[32];
    assert_int_equal (zf_client_status (worker, &c, status, sizeof status, 5000), 0);
    assert_string_equal (status, "dead");
    zf_client_destroy (&worker);
    zf_broker_destroy (&broker);

    broker = s_broker_again (pipeline, &depth);
    s_check_fixture (broker, true);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zstr_free (&from);
    zstr_free (&to);
    zstr_free (&journal);
    zf_test_dir_remove (dir);
}

//  Puts ten items into jobs with zflow put, and answers them as worker:
//  the first acks acked, the rest nacked for good.
static void
s_answer_ten (const char *endpoint, zf_client_t *worker, int acks)
{
    zf_test_result_t r = zf_test_zflow (NULL, "put", endpoint, "jobs", "0", "1", "2", "3", "4", "5",
                                        "6", "7", "8", "9", NULL);
    if (r.status != 0)
        fail_msg ("zflow put: exit %d: %s", r.status, r.err);
    zf_test_result_free (&r);
    int64_t deadline = zclock_mono () + 20000;
    for (int taken = 0; taken < 10;) {
        if (zclock_mono () > deadline)
            fail_msg ("%d of the 10 items came", taken);
        zf_item_t *item = zf_client_next (worker, 100);
        if (!item)
            continue;
        if (taken++ < acks)
            zf_client_ack (worker, &item);
        else
            zf_client_nack (worker, &item, "no", true, 0);
    }
    zf_client_pump (worker, 0); // the last ACK goes
}

//  The row of actor work in `zflow top --once` of events: its workers,
//  done and errors. The worker's session is kept (pumped) while top waits
//  for the broker's next stats event, as a worker keeps its own.
static void
s_top_row (const char *events, zf_client_t *worker, unsigned *workers, unsigned long long *done,
           unsigned long long *errors)
{
    char *argv[] = { (char *) ZFLOW_BIN, "top", (char *) events, "--once", NULL };
    int fd = -1;
    pid_t pid = zf_test_spawn (argv, &fd);
    assert_true (pid > 0);
    char out[8192];
    size_t used = 0;
    int64_t deadline = zclock_mono () + 15000;
    for (ssize_t n = 1; n > 0 && zclock_mono () < deadline;) {
        zf_client_pump (worker, 20);
        struct pollfd ready = { fd, POLLIN, 0 };
        if (poll (&ready, 1, 0) == 1)
            used += (size_t) (n = read (fd, out + used, sizeof out - 1 - used));
    }
    out[used] = 0;
    close (fd);
    int status = zf_test_reap (pid, 5000);
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        fail_msg ("zflow top --once: status %d: %s", status, out);
    unsigned hosts;
    unsigned long long inflight;
    *workers = 0;
    *done = *errors = 0;
    const char *row = strstr (out, "\nwork ");
    if (row)
        sscanf (row + 1, "work %u %u %llu %llu %llu", workers, &hosts, &inflight, done, errors);
}

//  Waits (bounded: 30 stats events) until zflow top shows the one worker
//  of work with done and errors.
static void
s_expect_figures (const char *events, zf_client_t *worker, unsigned long long done,
                  unsigned long long errors)
{
    unsigned shown = 0;
    unsigned long long shown_done = 0, shown_errors = 0;
    for (int tries = 0; tries < 30; tries++) {
        s_top_row (events, worker, &shown, &shown_done, &shown_errors);
        if (shown == 1 && shown_done == done && shown_errors == errors)
            return;
    }
    fail_msg ("zflow top shows work with %u workers, %llu done, %llu errors; not 1, %llu, %llu",
              shown, shown_done, shown_errors, done, errors);
}

static void
test_a_workers_figures_outlive_its_sessions (void **state)
{
    // A worker's done and errors (zflow top, the stats event) count on
    // over its new sessions: after its broker was killed (-9) and started
    // again, and after it went silent past heartbeat x liveness and the
    // broker let it go; not from 0 each time.
    char dir[256];
    assert_int_equal (zf_test_dir_new (dir, sizeof dir, "figures"), 0);
    char endpoint[300], events[300];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/broker.ipc", dir);
    snprintf (events, sizeof events, "ipc://%s/events.ipc", dir);
    char *config = zsys_sprintf ("broker\n"
                                 "    endpoint = %s\n"
                                 "    events = %s\n"
                                 "    heartbeat = 200ms\n" ZF_TEST_SRC_AND_WORK,
                                 endpoint, events);
    assert_int_equal (zf_test_write (dir, "p.zpl", config), 0);
    zstr_free (&config);
    pid_t broker = zf_test_broker_process (dir);
    assert_true (broker > 0);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 20);
    s_answer_ten (endpoint, worker, 7);
    s_expect_figures (events, worker, 7, 3);

    kill (broker, SIGKILL);
    zf_test_reap (broker, 5000);
    broker = zf_test_broker_process (dir);
    assert_true (broker > 0);
    s_answer_ten (endpoint, worker, 6);
    s_expect_figures (events, worker, 13, 7);

    // Silent: the broker lets the session go (worker.lost), and the
    // worker's next look opens another. The SUB is live once a stats
    // event has come through it.
    zsock_t *sub = zsock_new_sub (events, "stats");
    zsock_set_subscribe (sub, "worker.lost");
    zsock_set_rcvtimeo (sub, 100);
    bool live = false;
    for (int tries = 0; tries < 100 && !live; tries++) {
        zf_client_pump (worker, 0);
        char *topic = zstr_recv (sub);
        live = topic && streq (topic, "stats");
        zstr_free (&topic);
        zsock_flush (sub);
    }
    assert_true (live);
    zsock_set_rcvtimeo (sub, 10000);
    char *topic = NULL;
    do {
        zstr_free (&topic);
        topic = zstr_recv (sub);
        zsock_flush (sub);
    } while (topic && !streq (topic, "worker.lost"));
    assert_non_null (topic);
    zstr_free (&topic);
    zsock_destroy (&sub);
    int sessions = zf_client_sessions (worker);
    s_answer_ten (endpoint, worker, 6);
    assert_true (zf_client_sessions (worker) > sessions);
    s_expect_figures (events, worker, 19, 11);

    zf_client_destroy (&worker);
    kill (broker, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (broker, 10000)), 0);
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
        cmocka_unit_test (test_a_failures_detail_survives_a_restart),
        cmocka_unit_test (test_a_journal_from_before_detail_opens),
        cmocka_unit_test (test_a_cancels_reason_survives_a_restart),
        cmocka_unit_test_teardown (test_a_workers_figures_outlive_its_sessions, zf_test_kill_all),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
