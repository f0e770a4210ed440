/*  Tests of the broker's store, driven directly: no socket, no thread.
    Each test does what a session would (put, take, ack, nack, leave) and
    checks what a user of the broker would see: which items reach which
    worker, their states, what goes to the dead-letter queue, and what
    the store asks the journal and the sessions to do (its hooks).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_store.h"
#include "zf_alloc.h"
#include "zf_testkit.h"

//  What the hooks heard.
typedef struct {
    int created, stored, kept, acked, retried, dead, done;
    int finished[ZF_OUTCOME_CANCELLED + 1]; // by outcome
    int admitted;
    int paused;          // queues paused or resumed
    int results, ends;   // results kept, lineages ended with an answer
    char last_state[16]; // of the last lineage over
} s_heard_t;

static s_heard_t s_heard;

static void
s_created (void *arg, zf_queue_t *queue)
{
    s_heard.created++;
}
static void
s_stored (void *arg, zf_message_t *msg, uint32_t attempt)
{
    s_heard.stored++;
}
static void
s_kept (void *arg, zf_queue_t *queue, const zf_env_t *env)
{
    s_heard.kept++;
}
static void
s_acked (void *arg, zf_delivery_t *d, bool dead)
{
    s_heard.acked++;
}
static void
s_retried (void *arg, zf_delivery_t *d)
{
    s_heard.retried++;
}
static void
s_finished (void *arg, zf_message_t *msg, uint8_t outcome)
{
    s_heard.finished[outcome]++;
}
static void
s_dead (void *arg, zf_delivery_t *d)
{
    s_heard.dead++;
}
static void
s_lineage_over (void *arg, zf_lineage_t *lineage, const char *state)
{
    s_heard.done++;
    snprintf (s_heard.last_state, sizeof s_heard.last_state, "%s", state);
}
static void
s_admitted (void *arg, zf_pending_t *put)
{
    s_heard.admitted++;
}
static void
s_answered (void *arg, zf_answer_t *answer, const zf_output_t *result)
{
    if (result)
        s_heard.results++;
    else
        s_heard.ends++;
}

static void
s_paused (void *arg, zf_queue_t *queue)
{
    s_heard.paused++;
}

static const zf_store_hooks_t s_hooks = { .created = s_created,
                                          .stored = s_stored,
                                          .kept = s_kept,
                                          .acked = s_acked,
                                          .retried = s_retried,
                                          .finished = s_finished,
                                          .dead = s_dead,
                                          .lineage_over = s_lineage_over,
                                          .admitted = s_admitted,
                                          .answered = s_answered,
                                          .paused = s_paused };

//  A pipeline whose queue `jobs` has two readers (fan-out) and room for 3.
static const char *s_config = "broker\n"
                              "    group-expiry = 100ms\n"
                              "queues\n"
                              "    jobs\n"
                              "        max-depth = 3\n"
                              "        max-attempts = 2\n"
                              "        retry-base = 1ms\n"
                              "        retry-max = 1ms\n"
                              "        timeout = 50ms\n"
                              "    out\n"
                              "        external = true\n"
                              "        max-depth = 1\n"
                              "actors\n"
                              "    seeds\n"
                              "        kind = producer\n"
                              "        source = seq:3\n"
                              "        output = jobs\n"
                              "    store\n"
                              "        kind = sink\n"
                              "        input = jobs\n"
                              "        target = null\n"
                              "    audit\n"
                              "        kind = sink\n"
                              "        input = jobs\n"
                              "        target = null\n"
                              "    ship\n"
                              "        kind = sink\n"
                              "        input = out\n"
                              "        target = null\n";

typedef struct {
    zf_pipeline_t *pipeline;
    zf_store_t *store;
} s_fixture_t;

static int
s_setup (void **state)
{
    memset (&s_heard, 0, sizeof s_heard);
    s_fixture_t *f = (s_fixture_t *) calloc (1, sizeof *f);
    f->pipeline = zf_test_pipeline (s_config);
    assert_non_null (f->pipeline);
    f->store = zf_store_new (f->pipeline, 1024, &s_hooks);
    assert_non_null (f->store);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_store_destroy (&f->store);
    assert_null (f->store);
    zf_pipeline_destroy (&f->pipeline);
    free (f);
    return 0;
}

static zf_id_t
s_id (uint8_t n)
{
    zf_id_t id = { { 0 } };
    id.bytes[0] = n;
    id.bytes[15] = 0xee;
    return id;
}

//  Puts items with ids first, first + 1, ... into jobs as one PUT; true if
//  all were admitted (*duplicates, when given, the ones dropped as seen),
//  else the PUT, which waits in the store, in *waiting_p.
static bool
s_put (zf_store_t *store, uint8_t first, uint32_t count, zf_pending_t **waiting_p,
       uint32_t *duplicates)
{
    zf_pending_t *put = zf_store_pending_new (count);
    snprintf (put->session, sizeof put->session, "s1");
    for (uint32_t i = 0; i < count; i++) {
        put->items[i].id = s_id ((uint8_t) (first + i));
        snprintf (put->items[i].queue, sizeof put->items[i].queue, "jobs");
        put->items[i].body = zframe_new ("\xa1x", 2);
    }
    bool all = zf_store_admit (store, put);
    if (duplicates)
        *duplicates = put->duplicates;
    if (all)
        zf_store_pending_destroy (&put);
    if (waiting_p)
        *waiting_p = put;
    return all;
}

//  The deliveries group `name` of jobs can hand worker now.
static size_t
s_take (zf_store_t *store, const char *name, zf_worker_t *worker, zf_delivery_t **out)
{
    zf_cgroup_t *group = zf_store_group (store, zf_store_queue (store, "jobs"), name);
    zf_worker_t *to = NULL;
    size_t n = zf_store_take (store, group, zclock_mono (), &to, out, ZF_BATCH_MAX);
    if (n)
        assert_ptr_equal (to, worker);
    return n;
}

static void
test_every_group_gets_every_item (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    assert_int_equal (s_heard.created, 2); // jobs and out, from the pipeline
    zf_worker_t store = { 0 }, audit = { 0 };
    assert_int_equal (zf_store_join (f->store, &store, "jobs", "store"), 0);
    assert_int_equal (zf_store_join (f->store, &audit, "jobs", "audit"), 0);
    zf_store_credit (f->store, &store, 10);
    zf_store_credit (f->store, &audit, 10);
    assert_true (s_put (f->store, 1, 2, NULL, NULL));
    assert_int_equal (s_heard.stored, 2);

    zf_message_t *msg;
    zf_id_t one = s_id (1);
    assert_string_equal (zf_store_state (f->store, &one, &msg), "queued");
    zf_delivery_t *out[ZF_BATCH_MAX];
    assert_int_equal (s_take (f->store, "store", &store, out), 2);
    assert_int_equal (s_take (f->store, "audit", &audit, out), 2);
    assert_string_equal (zf_store_state (f->store, &one, &msg), "delivered");
    assert_int_equal (out[0]->attempt, 1);

    // The first group's ack leaves the item for the second.
    assert_true (zf_store_ack (f->store, &store, &one));
    assert_int_equal (s_heard.acked, 1);
    assert_string_equal (zf_store_state (f->store, &one, &msg), "delivered");
    assert_true (zf_store_ack (f->store, &audit, &one));
    assert_int_equal (s_heard.finished[ZF_OUTCOME_DONE], 1);
    assert_string_equal (zf_store_state (f->store, &one, &msg), "done");
    assert_null (msg);
    // A second ack of the same item is late, not an error.
    assert_false (zf_store_ack (f->store, &audit, &one));
    assert_int_equal (zf_store_size (f->store), 1);
    zf_store_leave (f->store, &store, false);
    zf_store_leave (f->store, &audit, false);
}

static void
test_a_full_queue_holds_the_put_back (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_worker_t store = { 0 }, audit = { 0 };
    zf_store_join (f->store, &store, "jobs", "store");
    zf_store_join (f->store, &audit, "jobs", "audit");
    zf_store_credit (f->store, &store, 10);
    zf_store_credit (f->store, &audit, 10);
    zf_pending_t *put;
    assert_false (s_put (f->store, 1, 5, &put, NULL)); // max-depth 3
    assert_int_equal (put->accepted, 3);
    assert_int_equal (zf_store_queue (f->store, "jobs")->depth, 3);
    assert_false (zf_store_has_room (f->store));

    zf_delivery_t *out[ZF_BATCH_MAX];
    assert_int_equal (s_take (f->store, "store", &store, out), 3);
    assert_int_equal (s_take (f->store, "audit", &audit, out), 3);
    zf_id_t one = s_id (1), two = s_id (2);
    zf_store_ack (f->store, &store, &one);
    zf_store_ack (f->store, &audit, &one);
    assert_int_equal (s_heard.admitted, 0); // room for one of the two waiting
    zf_store_ack (f->store, &store, &two);
    zf_store_ack (f->store, &audit, &two);
    assert_int_equal (s_heard.admitted, 1); // the rest of the PUT is in: confirm it
    assert_int_equal (zf_store_queue (f->store, "jobs")->put, 5);
    zf_store_leave (f->store, &store, false);
    zf_store_leave (f->store, &audit, false);
}

//  A PUT of worker's of one item, id n, child of parent, to out; true if
//  it went in, false if it is parked.
static bool
s_put_out (zf_store_t *store, zf_worker_t *worker, uint8_t n, uint8_t parent)
{
    zf_pending_t *put = zf_store_pending_new (1);
    snprintf (put->session, sizeof put->session, "w");
    put->writer = worker;
    put->items[0].id = s_id (n);
    put->items[0].parent = s_id (parent);
    snprintf (put->items[0].queue, sizeof put->items[0].queue, "out");
    put->items[0].body = zframe_new ("\xa1x", 2);
    bool all = zf_store_admit (store, put);
    if (all)
        zf_store_pending_destroy (&put);
    return all;
}

static void
test_answers_wait_for_parked_puts (void **state)
{
    // A worker's ACKs and NACKs that follow a PUT of its parked for room
    // wait for that PUT, in order; its slots stay taken meanwhile. A worker
    // that leaves drops them: what it held goes back, its PUT stays.
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_worker_t store = { 0 }, audit = { 0 }, ship = { 0 };
    zf_store_join (f->store, &store, "jobs", "store");
    zf_store_join (f->store, &audit, "jobs", "audit");
    zf_store_join (f->store, &ship, "out", "ship");
    zf_store_credit (f->store, &store, 10);
    zf_store_credit (f->store, &audit, 10);
    assert_true (s_put (f->store, 1, 3, NULL, NULL));
    assert_true (s_put_out (f->store, NULL, 20, 0)); // out is full
    zf_delivery_t *out[ZF_BATCH_MAX];
    assert_int_equal (s_take (f->store, "store", &store, out), 3);
    assert_int_equal (s_take (f->store, "audit", &audit, out), 3);
    assert_false (s_put_out (f->store, &store, 10, 1)); // parked
    assert_int_equal (store.parked, 1);

    zf_id_t one = s_id (1), two = s_id (2), three = s_id (3), ten = s_id (10);
    zf_message_t *msg;
    assert_true (zf_store_ack (f->store, &store, &one));
    assert_false (zf_store_ack (f->store, &store, &one)); // once
    assert_true (zf_store_nack (f->store, &store, &two, "flaky", "Traceback: flaky", false, 0));
    assert_true (zf_store_ack (f->store, &store, &three));
    for (int i = 1; i <= 3; i++) {
        zf_id_t id = s_id ((uint8_t) i);
        assert_true (zf_store_ack (f->store, &audit, &id));
    }
    assert_int_equal (s_heard.acked, 3); // audit's alone
    assert_int_equal (s_heard.retried + s_heard.finished[ZF_OUTCOME_DONE], 0);
    assert_string_equal (zf_store_state (f->store, &one, &msg), "delivered");
    assert_int_equal (store.held.size, 3); // the slots stay taken
    assert_int_equal (store.nanswers, 3);

    // ship takes 20 from out: room for the PUT, then store's answers go,
    // in order: 1 done, 2 retried, 3 done.
    zf_store_credit (f->store, &ship, 1);
    zf_cgroup_t *group = zf_store_group (f->store, zf_store_queue (f->store, "out"), "ship");
    zf_worker_t *to;
    assert_int_equal (zf_store_take (f->store, group, zclock_mono (), &to, out, 1), 1);
    zf_id_t twenty = s_id (20);
    assert_true (zf_store_ack (f->store, &ship, &twenty));
    assert_int_equal (s_heard.admitted, 1);
    assert_int_equal (store.parked, 0);
    assert_string_equal (zf_store_state (f->store, &ten, &msg), "queued");
    assert_string_equal (zf_store_state (f->store, &one, &msg), "done");
    assert_string_equal (zf_store_state (f->store, &three, &msg), "done");
    assert_int_equal (s_heard.retried, 1);
    assert_int_equal (store.held.size, 0);
    // The NACK held back kept its detail.
    assert_string_equal (zf_store_state (f->store, &two, &msg), "retrying");
    assert_string_equal (msg->reason, "flaky");
    assert_string_equal (msg->detail, "Traceback: flaky");

    // Parked again (out holds 10), with 2's redelivery answered: a worker
    // that leaves drops the answer; 2 fails (its last attempt: dead), the
    // PUT stays.
    zf_store_wake (f->store, zclock_mono () + 100); // past 2's backoff
    assert_int_equal (s_take (f->store, "store", &store, out), 1);
    assert_false (s_put_out (f->store, &store, 11, 2));
    assert_true (zf_store_ack (f->store, &store, &two));
    zf_store_leave (f->store, &store, true);
    assert_null (store.answers);
    assert_int_equal (s_heard.dead, 1);
    assert_string_equal (zf_store_state (f->store, &two, &msg), "dead");
    assert_int_equal (zlistx_size (zf_store_queue (f->store, "out")->waiting), 1);
    zf_store_leave (f->store, &audit, false);
    zf_store_leave (f->store, &ship, false);
}

//  A PUT of count items to queue, ids first.., children of parent (or
//  roots), from writer (or none); true if it all went in.
static bool
s_put_to (zf_store_t *store, const char *queue, uint8_t first, uint32_t count, zf_worker_t *writer,
          uint8_t parent)
{
    zf_pending_t *put = zf_store_pending_new (count);
    snprintf (put->session, sizeof put->session, "w");
    put->writer = writer;
    for (uint32_t i = 0; i < count; i++) {
        put->items[i].id = s_id ((uint8_t) (first + i));
        if (parent)
            put->items[i].parent = s_id (parent);
        snprintf (put->items[i].queue, sizeof put->items[i].queue, "%s", queue);
        put->items[i].body = zframe_new ("\xa1x", 2);
    }
    bool all = zf_store_admit (store, put);
    if (all)
        zf_store_pending_destroy (&put);
    return all;
}

static void
test_a_cycle_unblocks_on_the_tick (void **state)
{
    // A worker of a queue that feeds itself, its outputs parked and every
    // item it holds answered, stalls when another worker takes the item
    // it would have had next: no answer of its own comes to unblock it.
    // The tick finds it, and its PUT goes in past max-depth.
    zf_pipeline_t *pipeline = zf_test_pipeline ("queues\n"
                                                "    steps\n"
                                                "        max-depth = 3\n"
                                                "actors\n"
                                                "    start\n"
                                                "        kind = producer\n"
                                                "        source = seq:1\n"
                                                "        output = steps\n"
                                                "    step\n"
                                                "        kind = processor\n"
                                                "        command = cat\n"
                                                "        input = steps\n"
                                                "        output = steps\n");
    assert_non_null (pipeline);
    zf_store_t *store = zf_store_new (pipeline, 1024, &s_hooks);
    zf_worker_t a = { 0 }, b = { 0 };
    zf_store_join (store, &a, "steps", "step");
    zf_store_join (store, &b, "steps", "step");
    zf_store_credit (store, &a, 3);
    assert_true (s_put_to (store, "steps", 1, 3, NULL, 0)); // full
    zf_cgroup_t *group = zf_store_group (store, zf_store_queue (store, "steps"), "step");
    zf_delivery_t *out[ZF_BATCH_MAX];
    zf_worker_t *to;
    assert_int_equal (zf_store_take (store, group, zclock_mono (), &to, out, ZF_BATCH_MAX), 2);
    assert_ptr_equal (to, &a);                              // one is left for the group
    assert_false (s_put_to (store, "steps", 10, 1, &a, 1)); // parked
    zf_id_t one = s_id (1), two = s_id (2);
    zf_message_t *msg;
    assert_true (zf_store_ack (store, &a, &one));
    assert_true (zf_store_ack (store, &a, &two));
    assert_int_equal (a.parked, 1); // more could come to a: it waits

    zf_store_credit (store, &b, 1);
    assert_int_equal (zf_store_take (store, group, zclock_mono (), &to, out, ZF_BATCH_MAX), 1);
    assert_ptr_equal (to, &b); // b took it: nothing more comes to a
    assert_string_equal (zf_store_state (store, &one, &msg), "delivered");
    zf_store_tick (store, zclock_mono ());
    assert_int_equal (a.parked, 0);
    assert_string_equal (zf_store_state (store, &one, &msg), "done");
    assert_string_equal (zf_store_state (store, &two, &msg), "done");
    zf_id_t ten = s_id (10);
    assert_string_equal (zf_store_state (store, &ten, &msg), "queued");
    zf_store_leave (store, &a, false);
    zf_store_leave (store, &b, false);
    zf_store_destroy (&store);
    zf_pipeline_destroy (&pipeline);
}

static void
test_duplicates_are_dropped (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    uint32_t duplicates;
    assert_true (s_put (f->store, 1, 1, NULL, &duplicates));
    assert_int_equal (duplicates, 0);
    assert_true (s_put (f->store, 1, 2, NULL, &duplicates)); // 1 again, and 2
    assert_int_equal (duplicates, 1);
    assert_int_equal (zf_store_size (f->store), 2);
    assert_int_equal (zf_store_queue (f->store, "jobs")->put, 2);
}

static void
test_failures_retry_then_dead_letter (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_worker_t store = { 0 }, audit = { 0 };
    zf_store_join (f->store, &store, "jobs", "store");
    zf_store_join (f->store, &audit, "jobs", "audit");
    zf_store_credit (f->store, &store, 10);
    zf_store_credit (f->store, &audit, 10);
    assert_true (s_put (f->store, 7, 1, NULL, NULL));
    zf_id_t seven = s_id (7);
    zf_delivery_t *out[ZF_BATCH_MAX];
    zf_message_t *msg;
    assert_int_equal (s_take (f->store, "audit", &audit, out), 1);
    assert_true (zf_store_ack (f->store, &audit, &seven));

    assert_int_equal (s_take (f->store, "store", &store, out), 1);
    assert_true (
        zf_store_nack (f->store, &store, &seven, "it broke", "Traceback 1\n  line 1", false, 0));
    assert_int_equal (s_heard.retried, 1);
    assert_string_equal (zf_store_state (f->store, &seven, &msg), "retrying");
    assert_string_equal (msg->reason, "it broke");
    assert_string_equal (msg->detail, "Traceback 1\n  line 1");
    // Nothing until its backoff (1 ms) is over.
    assert_int_equal (s_take (f->store, "store", &store, out), 0);
    zf_store_tick (f->store, zclock_mono () + 10);
    assert_int_equal (s_take (f->store, "store", &store, out), 1);
    assert_int_equal (out[0]->attempt, 2);
    // The second failure is the last (max-attempts 2): to jobs.dead.
    assert_true (zf_store_nack (f->store, &store, &seven, "broke again", "Traceback 2", false, 0));
    assert_int_equal (s_heard.dead, 1);
    assert_int_equal (s_heard.finished[ZF_OUTCOME_DEAD], 1);
    assert_string_equal (zf_store_state (f->store, &seven, &msg), "dead");
    zf_queue_t *dead = zf_store_lookup (f->store, "jobs.dead");
    assert_non_null (dead);
    assert_int_equal (dead->depth, 1);
    zf_id_t copy = zf_id_child (&seven, UINT32_MAX);
    assert_non_null (zf_store_find (f->store, &copy));
    assert_string_equal (zf_store_find (f->store, &copy)->reason, "broke again");
    // The dead letter and the root's answer keep the detail beside the reason.
    assert_string_equal (zf_store_find (f->store, &copy)->detail, "Traceback 2");
    zf_answer_t *answer = zf_results_find (zf_store_results (f->store), &seven);
    assert_non_null (answer);
    assert_string_equal (answer->reason, "broke again");
    assert_string_equal (answer->detail, "Traceback 2");

    // Requeued, it goes to the group that failed it, not again to audit,
    // which had it done.
    zf_select_t select = { .ids = &seven, .nids = 1 };
    zf_steered_t steered;
    int acked = s_heard.acked;
    zf_store_requeue (f->store, dead, &select, &steered);
    assert_int_equal (steered.done, 1);
    assert_int_equal (s_heard.acked, acked + 1); // audit's delivery, finished (journaled)
    assert_int_equal (s_take (f->store, "audit", &audit, out), 0);
    assert_int_equal (s_take (f->store, "store", &store, out), 1);
    assert_true (zf_store_ack (f->store, &store, &seven));
    assert_string_equal (zf_store_state (f->store, &seven, &msg), "done");
    zf_store_leave (f->store, &store, false);
    zf_store_leave (f->store, &audit, false);
}

static void
test_a_lost_worker_hands_back_with_a_count (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_worker_t first = { 0 }, second = { 0 };
    zf_store_join (f->store, &first, "jobs", "store");
    zf_store_credit (f->store, &first, 10);
    assert_true (s_put (f->store, 1, 2, NULL, NULL));
    zf_delivery_t *out[ZF_BATCH_MAX];
    assert_int_equal (s_take (f->store, "store", &first, out), 2);
    // BYE: handed back untouched, the attempt not counted.
    zf_store_leave (f->store, &first, false);
    zf_store_join (f->store, &second, "jobs", "store");
    zf_store_credit (f->store, &second, 10);
    assert_int_equal (s_take (f->store, "store", &second, out), 2);
    assert_int_equal (out[0]->attempt, 1);
    // Lost: each becomes a failed attempt, retried after its backoff.
    zf_store_leave (f->store, &second, true);
    zf_message_t *msg;
    zf_id_t one = s_id (1);
    assert_string_equal (zf_store_state (f->store, &one, &msg), "retrying");
    assert_string_equal (msg->reason, "worker lost");
    assert_int_equal (s_heard.retried, 2);
}

static void
test_a_held_item_times_out (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_worker_t store = { 0 };
    zf_store_join (f->store, &store, "jobs", "store");
    zf_store_credit (f->store, &store, 1);
    assert_true (s_put (f->store, 1, 2, NULL, NULL));
    zf_delivery_t *out[ZF_BATCH_MAX];
    assert_int_equal (s_take (f->store, "store", &store, out), 1);
    zf_store_tick (f->store, zclock_mono () + 100); // past its 50 ms
    zf_message_t *msg;
    zf_id_t one = s_id (1);
    assert_string_equal (zf_store_state (f->store, &one, &msg), "retrying");
    assert_string_equal (msg->reason, "timeout");
    // Its slot stays taken until the worker answers for it (a zombie)...
    assert_int_equal (s_take (f->store, "store", &store, out), 0);
    // ... and the late answer frees it.
    assert_false (zf_store_ack (f->store, &store, &one));
    assert_int_equal (s_take (f->store, "store", &store, out), 1);
    zf_store_leave (f->store, &store, false);
}

static void
s_told (zf_worker_t *worker, zf_lineage_t *lineage, void *arg)
{
    (void) lineage;
    (*(int *) arg)++;
}

static void
test_cancel_drops_the_lineage (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_worker_t store = { 0 };
    zf_store_join (f->store, &store, "jobs", "store");
    zf_store_credit (f->store, &store, 1);
    // Two items of one lineage, tracked by session s1.
    zf_id_t root = s_id (9);
    zf_pending_t *put = zf_store_pending_new (2);
    for (uint32_t i = 0; i < 2; i++) {
        put->items[i].id = s_id ((uint8_t) (20 + i));
        put->items[i].root = root;
        snprintf (put->items[i].queue, sizeof put->items[i].queue, "jobs");
        put->items[i].body = zframe_new ("\xc0", 1);
        put->holds[i] = zf_store_hold (f->store, &root);
    }
    snprintf (put->holds[0]->tracker, ZF_SESSION_KEY_MAX, "s1");
    assert_true (zf_store_admit (f->store, put));
    zf_store_pending_destroy (&put);
    zf_delivery_t *out[ZF_BATCH_MAX];
    assert_int_equal (s_take (f->store, "store", &store, out), 1); // one held, one queued
    zf_id_t held = out[0]->msg->id;
    int told = 0;
    assert_true (zf_store_cancel (f->store, &root, "test", NULL, false, s_told, &told));
    assert_int_equal (told, 1); // the worker holding one is told once
    // Both are finished at once, cancelled (so journaled): the queued one
    // dropped, the held one too, so that neither a restart nor its
    // worker's death runs it again. The lineage is over: its tracker
    // hears "cancelled".
    assert_int_equal (s_heard.finished[ZF_OUTCOME_CANCELLED], 2);
    assert_int_equal (s_heard.done, 1);
    assert_string_equal (s_heard.last_state, "cancelled");
    assert_int_equal (zf_store_lineages (f->store), 0);
    // The worker's ack comes late: its slot of the window comes back then.
    assert_int_equal (store.zombies, 1);
    assert_false (zf_store_ack (f->store, &store, &held));
    assert_int_equal (store.zombies, 0);
    // An output of the held item that comes after is dropped, not a new
    // lineage of the cancelled root.
    put = zf_store_pending_new (1);
    put->items[0].id = s_id (30);
    put->items[0].root = root;
    snprintf (put->items[0].queue, sizeof put->items[0].queue, "jobs");
    put->items[0].body = zframe_new ("\xc0", 1);
    put->holds[0] = zf_store_hold (f->store, &root);
    put->writer = &store;
    snprintf (put->session, sizeof put->session, "s2");
    assert_true (zf_store_admit (f->store, put));
    assert_int_equal (put->accepted, 1);
    zf_store_pending_destroy (&put);
    assert_int_equal (zf_store_queue (f->store, "jobs")->depth, 0);
    assert_int_equal (zf_store_lineages (f->store), 0);
    // The root says why: a cancel with no reason is a client's.
    zf_message_t *msg;
    assert_string_equal (zf_store_lineage_state (f->store, &root, &msg), "cancelled");
    zf_answer_t *answer = zf_results_find (zf_store_results (f->store), &root);
    assert_non_null (answer);
    assert_string_equal (answer->reason, "cancelled by a client");
    assert_int_equal (s_heard.ends, 1); // journaled with its end

    // A cancel of what is over, never was, or is no root changes nothing.
    assert_false (zf_store_cancel (f->store, &root, "test", "again", false, s_told, &told));
    assert_string_equal (answer->reason, "cancelled by a client");
    zf_id_t unknown = s_id (99);
    assert_false (zf_store_cancel (f->store, &unknown, "test", "what", true, s_told, &told));
    assert_string_equal (zf_store_lineage_state (f->store, &unknown, &msg), "unknown");
    assert_null (zf_results_find (zf_store_results (f->store), &unknown));
    assert_true (s_put (f->store, 40, 1, NULL, NULL));
    zf_id_t forty = s_id (40);
    assert_int_equal (s_take (f->store, "store", &store, out), 1);
    assert_true (zf_store_ack (f->store, &store, &forty));
    assert_string_equal (zf_store_state (f->store, &forty, &msg), "queued"); // for audit
    zf_worker_t audit = { 0 };
    zf_store_join (f->store, &audit, "jobs", "audit");
    zf_store_credit (f->store, &audit, 10);
    assert_int_equal (s_take (f->store, "audit", &audit, out), 1);
    assert_true (zf_store_ack (f->store, &audit, &forty));
    assert_string_equal (zf_store_state (f->store, &forty, &msg), "done");
    assert_false (zf_store_cancel (f->store, &forty, "test", "too late", true, s_told, &told));
    assert_string_equal (zf_store_lineage_state (f->store, &forty, &msg), "done");
    assert_int_equal (told, 1);
    zf_store_leave (f->store, &store, false);
    zf_store_leave (f->store, &audit, false);
}

static void
test_a_failed_lineage_ends_dead (void **state)
{
    // A worker cancels a lineage because it failed (a gather's group in
    // mode = all): its items are dropped as by any cancel, and its root
    // ends dead, the cancel's reason its failure. When an item of it was
    // dead-lettered first, that first failure stays the root's.
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_worker_t store = { 0 }, audit = { 0 };
    zf_store_join (f->store, &store, "jobs", "store");
    zf_store_join (f->store, &audit, "jobs", "audit");
    zf_store_credit (f->store, &store, 10);
    zf_store_credit (f->store, &audit, 10);
    for (uint8_t g = 0; g < 2; g++) {
        zf_id_t root = s_id ((uint8_t) (70 + g));
        zf_pending_t *put = zf_store_pending_new (2);
        for (uint32_t i = 0; i < 2; i++) {
            put->items[i].id = s_id ((uint8_t) (80 + 2 * g + i));
            put->items[i].root = root;
            snprintf (put->items[i].queue, sizeof put->items[i].queue, "jobs");
            put->items[i].body = zframe_new ("\xc0", 1);
            put->holds[i] = zf_store_hold (f->store, &root);
        }
        assert_true (zf_store_admit (f->store, put));
        zf_store_pending_destroy (&put);
        zf_delivery_t *out[ZF_BATCH_MAX];
        assert_int_equal (s_take (f->store, "store", &store, out), 2);
        assert_int_equal (s_take (f->store, "audit", &audit, out), 2);
        zf_id_t first = s_id ((uint8_t) (80 + 2 * g)), second = s_id ((uint8_t) (81 + 2 * g));
        if (g == 1) // this time an item is dead-lettered first
            assert_true (zf_store_nack (f->store, &store, &first, "HTTP 503", NULL, true, 0));
        int told = 0;
        assert_true (zf_store_cancel (f->store, &root, "gather", "member 1 of 2 failed: boom", true,
                                      s_told, &told));
        assert_int_equal (told, 2);
        // Told, the workers ack what they hold.
        zf_store_ack (f->store, &store, &first);
        zf_store_ack (f->store, &store, &second);
        zf_store_ack (f->store, &audit, &first);
        zf_store_ack (f->store, &audit, &second);
        zf_message_t *msg;
        assert_string_equal (zf_store_lineage_state (f->store, &root, &msg), "dead");
        zf_answer_t *answer = zf_results_find (zf_store_results (f->store), &root);
        assert_non_null (answer);
        assert_string_equal (answer->reason, g == 0 ? "member 1 of 2 failed: boom" : "HTTP 503");
        assert_string_equal (answer->dead_queue, g == 0 ? "" : "jobs");
    }
    assert_int_equal (zf_store_lineages (f->store), 0);
    zf_store_leave (f->store, &store, false);
    zf_store_leave (f->store, &audit, false);
}

static void
test_records_restore_the_state (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    // What a journal would hold: two items put, one finished by one group,
    // one failed once, one finished for good.
    zf_id_t a = s_id (1), b = s_id (2), c = s_id (3);
    zf_record_t put = { .type = ZF_JR_PUT,
                        .name = "jobs",
                        .name_size = 4,
                        .data = (const uint8_t *) "\xc0",
                        .data_size = 1 };
    put.id = a;
    zf_store_restore_put (f->store, &put);
    put.id = b;
    zf_store_restore_put (f->store, &put);
    put.id = c;
    zf_store_restore_put (f->store, &put);
    zf_record_t ack = { .type = ZF_JR_ACK, .id = a, .name = "store", .name_size = 5 };
    zf_store_restore_ack (f->store, &ack);
    zf_record_t retry = {
        .type = ZF_JR_RETRY, .id = b, .attempt = 1, .name = "audit", .name_size = 5
    };
    zf_store_restore_retry (f->store, &retry);
    zf_record_t fin = { .type = ZF_JR_FIN, .id = c, .outcome = ZF_OUTCOME_DEAD };
    zf_store_restore_fin (f->store, &fin);
    zf_store_restored (f->store);
    assert_int_equal (s_heard.stored, 0); // a restore records nothing anew

    zf_message_t *msg;
    assert_string_equal (zf_store_state (f->store, &c, &msg), "dead");
    assert_int_equal (zf_store_size (f->store), 2);
    zf_queue_t *jobs = zf_store_queue (f->store, "jobs");
    assert_int_equal (jobs->depth, 2);
    assert_int_equal (jobs->put, 0); // figures count this run's traffic
    zf_worker_t store = { 0 }, audit = { 0 };
    zf_store_join (f->store, &store, "jobs", "store");
    zf_store_join (f->store, &audit, "jobs", "audit");
    zf_store_credit (f->store, &store, 10);
    zf_store_credit (f->store, &audit, 10);
    zf_delivery_t *out[ZF_BATCH_MAX];
    assert_int_equal (s_take (f->store, "store", &store, out), 1); // b only: a was acked
    assert_true (zf_id_eq (&out[0]->msg->id, &b));
    assert_int_equal (s_take (f->store, "audit", &audit, out), 2);
    assert_int_equal (out[1]->attempt, 2); // b's failure counts
    zf_store_leave (f->store, &store, false);
    zf_store_leave (f->store, &audit, false);
}

static void
test_a_clients_group_expires (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_worker_t store = { 0 }, audit = { 0 }, probe = { 0 };
    zf_store_join (f->store, &store, "jobs", "store");
    zf_store_join (f->store, &audit, "jobs", "audit");
    // A client reads jobs under a name no actor has, then leaves.
    zf_store_join (f->store, &probe, "jobs", "probe");
    zf_store_leave (f->store, &probe, false);
    zf_cgroup_t *group = zf_store_group (f->store, zf_store_queue (f->store, "jobs"), "probe");
    assert_false (group->declared);
    assert_true (s_put (f->store, 1, 3, NULL, NULL)); // max-depth 3: full
    zf_store_credit (f->store, &store, 10);
    zf_store_credit (f->store, &audit, 10);
    zf_delivery_t *out[ZF_BATCH_MAX];
    assert_int_equal (s_take (f->store, "store", &store, out), 3);
    assert_int_equal (s_take (f->store, "audit", &audit, out), 3);
    for (uint8_t i = 1; i <= 3; i++) {
        zf_id_t id = s_id (i);
        zf_store_ack (f->store, &store, &id);
        zf_store_ack (f->store, &audit, &id);
    }
    // Both actors are done, and the queue is still full: probe holds them.
    assert_int_equal (zf_store_queue (f->store, "jobs")->depth, 3);
    assert_int_equal (s_heard.finished[ZF_OUTCOME_DONE], 0);
    zf_store_tick (f->store, zclock_mono () + 10); // not yet 100 ms without a worker
    assert_int_equal (zf_store_queue (f->store, "jobs")->ngroups, 3);
    zf_store_tick (f->store, zclock_mono () + 1000);
    zf_queue_t *jobs = zf_store_queue (f->store, "jobs");
    assert_int_equal (jobs->ngroups, 2); // probe is forgotten...
    assert_int_equal (jobs->depth, 0);   // ... and what it held let go
    assert_int_equal (s_heard.finished[ZF_OUTCOME_DONE], 3);
    assert_true (zf_store_has_room (f->store));
    // Declared groups never expire, with or without a worker.
    zf_store_leave (f->store, &store, false);
    zf_store_leave (f->store, &audit, false);
    zf_store_tick (f->store, zclock_mono () + 1000);
    assert_int_equal (jobs->ngroups, 2);
}

static void
test_the_last_group_keeps_its_items (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    // A queue no actor reads: the first client to read it takes over the
    // anonymous group, then leaves; its items wait for the next reader.
    zf_worker_t probe = { 0 }, next = { 0 };
    zf_store_join (f->store, &probe, "loose", "probe");
    zf_store_leave (f->store, &probe, false);
    zf_queue_t *loose = zf_store_queue (f->store, "loose");
    zf_env_t env = { .id = s_id (40) };
    zframe_t *body = zframe_new ("\xc0", 1);
    zf_store_put (f->store, loose, &env, &body);
    zf_store_tick (f->store, zclock_mono () + 1000);
    assert_int_equal (loose->ngroups, 1);
    assert_true (loose->groups[0]->anonymous);
    assert_int_equal (loose->depth, 1);
    zf_store_join (f->store, &next, "loose", "next");
    zf_store_credit (f->store, &next, 1);
    zf_worker_t *to;
    zf_delivery_t *out[1];
    assert_int_equal (zf_store_take (f->store, loose->groups[0], zclock_mono (), &to, out, 1), 1);
    assert_ptr_equal (to, &next);
    zf_store_leave (f->store, &next, false);
}

//  --------------------------------------------------------------------------
//  The task front door: priorities, delays, refusals, results

//  One item of a PUT to queue, with id n.
static zf_env_t *
s_item (zf_pending_t *put, uint32_t i, uint8_t n, const char *queue)
{
    zf_env_t *env = &put->items[i];
    env->id = s_id (n);
    snprintf (env->queue, sizeof env->queue, "%s", queue);
    env->body = zframe_new ("\xa1x", 2);
    return env;
}

static void
test_priorities_order_delivery (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    static const uint32_t priority[] = { 0, 5, 9, 5, 0, 9 };
    zf_pending_t *put = zf_store_pending_new (6);
    for (uint32_t i = 0; i < 6; i++)
        s_item (put, i, (uint8_t) (i + 1), "jobs")->priority = priority[i];
    zf_store_queue (f->store, "jobs")->max_depth = 10;
    assert_true (zf_store_admit (f->store, put));
    zf_store_pending_destroy (&put);
    zf_worker_t store = { 0 };
    zf_store_join (f->store, &store, "jobs", "store");
    zf_store_credit (f->store, &store, 10);
    zf_delivery_t *out[ZF_BATCH_MAX];
    assert_int_equal (s_take (f->store, "store", &store, out), 6);
    // Highest first; in the order they came within a priority.
    static const uint8_t expected[] = { 3, 6, 2, 4, 1, 5 };
    for (int i = 0; i < 6; i++)
        assert_int_equal (out[i]->msg->id.bytes[0], expected[i]);
    zf_store_leave (f->store, &store, false);
}

static void
test_a_delayed_item_waits_for_its_time (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_worker_t store = { 0 };
    zf_store_join (f->store, &store, "jobs", "store");
    zf_store_credit (f->store, &store, 10);
    zf_pending_t *put = zf_store_pending_new (1);
    int64_t at = zclock_time () + 200;
    s_item (put, 0, 1, "jobs")->not_before = at;
    assert_true (zf_store_admit (f->store, put));
    zf_store_pending_destroy (&put);
    zf_message_t *msg;
    zf_id_t one = s_id (1);
    assert_string_equal (zf_store_state (f->store, &one, &msg), "delayed");
    zf_delivery_t *out[ZF_BATCH_MAX];
    zf_store_wake (f->store, zclock_mono ());
    assert_int_equal (s_take (f->store, "store", &store, out), 0);
    int64_t due = zf_store_next_due (f->store, zclock_mono ());
    assert_true (due > 0 && due <= 201); // a ms more: the two clocks truncate apart
    zclock_sleep ((int) due);
    zf_store_wake (f->store, zclock_mono ());
    assert_int_equal (s_take (f->store, "store", &store, out), 1);
    assert_true (zclock_time () >= at);
    assert_int_equal (zf_store_next_due (f->store, zclock_mono ()), -1);
    zf_store_leave (f->store, &store, false);
}

static void
test_a_queue_the_pipeline_lacks_is_refused (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_pending_t *put = zf_store_pending_new (3);
    s_item (put, 0, 1, "jobs");
    s_item (put, 1, 2, "nosuch");
    s_item (put, 2, 3, "jobs.dead"); // a dead-letter queue of the pipeline's
    assert_true (zf_store_admit (f->store, put));
    assert_int_equal (put->accepted, 2);
    assert_int_equal (put->refused, 1);
    assert_non_null (strstr (put->refusal, "no queue 'nosuch' in pipeline"));
    assert_null (zf_store_lookup (f->store, "nosuch"));
    zf_store_pending_destroy (&put);
}

//  A pipeline whose processor `work` writes `answers`, which no actor
//  reads: its items are results, 4 bytes of them at most.
static const char *s_results_config = "broker\n"
                                      "    result-max-bytes = 4\n"
                                      "actors\n"
                                      "    seeds\n"
                                      "        kind = producer\n"
                                      "        source = seq:3\n"
                                      "        output = jobs\n"
                                      "    work\n"
                                      "        kind = processor\n"
                                      "        command = cat\n"
                                      "        input = jobs\n"
                                      "        output = answers\n";

static void
test_results_are_kept_for_their_root (void **state)
{
    zf_pipeline_t *pipeline = zf_test_pipeline (s_results_config);
    assert_non_null (pipeline);
    zf_store_t *store = zf_store_new (pipeline, 1024, &s_hooks);
    zf_worker_t work = { 0 };
    zf_store_join (store, &work, "jobs", "work");
    zf_store_credit (store, &work, 10);
    zf_pending_t *put = zf_store_pending_new (2);
    s_item (put, 0, 1, "jobs");
    s_item (put, 1, 2, "jobs");
    assert_true (zf_store_admit (store, put));
    zf_store_pending_destroy (&put);
    zf_cgroup_t *group = zf_store_group (store, zf_store_queue (store, "jobs"), "work");
    zf_worker_t *to;
    zf_delivery_t *out[ZF_BATCH_MAX];
    assert_int_equal (zf_store_take (store, group, zclock_mono (), &to, out, 10), 2);

    // Each root's output: a result (2 bytes each: the second fits, a
    // third would not), not stored.
    zf_id_t roots[3] = { s_id (1), s_id (2), s_id (3) };
    for (int i = 0; i < 3; i++) {
        put = zf_store_pending_new (1);
        zf_env_t *env = s_item (put, 0, (uint8_t) (10 + i), "answers");
        env->root = roots[i < 2 ? i : 0];
        put->holds[0] = zf_store_hold (store, &env->root);
        assert_true (zf_store_admit (store, put));
        assert_int_equal (put->refused, i < 2 ? 0 : 1);
        if (i == 2)
            assert_non_null (strstr (put->refusal, "result-max-bytes"));
        zf_store_pending_destroy (&put);
    }
    assert_int_equal (s_heard.results, 2);
    assert_int_equal (s_heard.kept, 2); // not stored, yet tapped
    assert_int_equal (zf_store_queue (store, "answers")->depth, 0);
    zf_message_t *msg;
    assert_string_equal (zf_store_lineage_state (store, &roots[0], &msg), "delivered");
    assert_true (zf_store_ack (store, &work, &roots[0]));
    assert_string_equal (zf_store_lineage_state (store, &roots[0], &msg), "done");
    assert_int_equal (s_heard.ends, 1);
    zf_answer_t *answer = zf_results_find (zf_store_results (store), &roots[0]);
    assert_non_null (answer);
    assert_int_equal (answer->nitems, 1);
    assert_int_equal (answer->items[0].id.bytes[0], 10);
    assert_int_equal (zf_results_bytes (zf_store_results (store)), 4);
    // Past the ttl (1 h by default) it is let go, and its bytes with it.
    zf_results_tick (zf_store_results (store), zclock_time () + 3600 * 1000 + 1, zclock_mono (),
                     NULL, NULL);
    assert_null (zf_results_find (zf_store_results (store), &roots[0]));
    assert_int_equal (zf_results_bytes (zf_store_results (store)), 2);
    zf_store_leave (store, &work, false);
    zf_store_destroy (&store);
    zf_pipeline_destroy (&pipeline);
}

static void
test_progress_is_the_lineages_while_it_runs (void **state)
{
    // A task's progress comes from the worker holding it and is kept for
    // its lineage: asked of its root, or of another of its items, while it
    // runs. A report from anyone else is late; the lineage's end forgets it.
    zf_pipeline_t *pipeline = zf_test_pipeline (s_results_config);
    assert_non_null (pipeline);
    zf_store_t *store = zf_store_new (pipeline, 1024, &s_hooks);
    zf_worker_t work = { 0 }, other = { 0 };
    zf_store_join (store, &work, "jobs", "work");
    zf_store_join (store, &other, "jobs", "work");
    zf_store_credit (store, &work, 1);
    zf_id_t root = s_id (9);
    zf_pending_t *put = zf_store_pending_new (2);
    for (uint32_t i = 0; i < 2; i++) {
        s_item (put, i, (uint8_t) (20 + i), "jobs")->root = root;
        put->holds[i] = zf_store_hold (store, &root);
    }
    assert_true (zf_store_admit (store, put));
    zf_store_pending_destroy (&put);
    zf_cgroup_t *group = zf_store_group (store, zf_store_queue (store, "jobs"), "work");
    zf_worker_t *to;
    zf_delivery_t *out[ZF_BATCH_MAX];
    assert_int_equal (zf_store_take (store, group, zclock_mono (), &to, out, 10), 1);
    zf_id_t held = out[0]->msg->id;
    zf_id_t twenty = s_id (20), waiting = zf_id_eq (&held, &twenty) ? s_id (21) : twenty;

    assert_null (zf_store_progress_of (store, &root));
    assert_false (zf_store_progress (store, &other, &held, 100, "not mine"));
    assert_false (zf_store_progress (store, &work, &waiting, 100, "not taken yet"));
    assert_null (zf_store_progress_of (store, &root));
    assert_true (zf_store_progress (store, &work, &held, 420, "resizing images"));
    const zf_progress_t *progress = zf_store_progress_of (store, &root);
    assert_non_null (progress);
    assert_int_equal (progress->progress, 420);
    assert_string_equal (progress->note, "resizing images");
    assert_ptr_equal (zf_store_progress_of (store, &waiting), progress); // the lineage's
    assert_ptr_equal (zf_store_progress_of (store, &held), progress);
    assert_true (zf_store_progress (store, &work, &held, 1000, NULL)); // the latest
    assert_int_equal (progress->progress, 1000);
    assert_null (progress->note);

    // Its item done, the lineage runs on: the figure stays. Then it ends.
    assert_true (zf_store_ack (store, &work, &held));
    assert_false (zf_store_progress (store, &work, &held, 10, NULL)); // answered: late
    assert_int_equal (zf_store_progress_of (store, &root)->progress, 1000);
    assert_int_equal (zf_store_take (store, group, zclock_mono (), &to, out, 10), 1);
    assert_true (zf_store_ack (store, &work, &waiting));
    assert_int_equal (zf_store_lineages (store), 0);
    assert_null (zf_store_progress_of (store, &root));

    // A root that makes nothing has no lineage: its own item's end forgets it.
    put = zf_store_pending_new (1);
    s_item (put, 0, 30, "jobs");
    assert_true (zf_store_admit (store, put));
    zf_store_pending_destroy (&put);
    assert_int_equal (zf_store_take (store, group, zclock_mono (), &to, out, 10), 1);
    zf_id_t lone = s_id (30);
    assert_true (zf_store_progress (store, &work, &lone, 5, "starting"));
    assert_string_equal (zf_store_progress_of (store, &lone)->note, "starting");
    assert_true (zf_store_ack (store, &work, &lone));
    assert_null (zf_store_progress_of (store, &lone));
    zf_store_leave (store, &work, false);
    zf_store_leave (store, &other, false);
    zf_store_destroy (&store);
    zf_pipeline_destroy (&pipeline);
}

//  --------------------------------------------------------------------------
//  Steering: requeue, purge, pause

//  A store of one queue, steps, read by one group, work (a worker with
//  room for 10); one attempt each.
typedef struct {
    zf_pipeline_t *pipeline;
    zf_store_t *store;
    zf_worker_t work;
} s_steps_t;

static int
s_steps_setup (void **state)
{
    memset (&s_heard, 0, sizeof s_heard);
    s_steps_t *f = (s_steps_t *) calloc (1, sizeof *f);
    f->pipeline = zf_test_pipeline ("queues\n"
                                    "    steps\n"
                                    "        external = true\n"
                                    "        max-attempts = 1\n"
                                    "actors\n"
                                    "    work\n"
                                    "        kind = sink\n"
                                    "        input = steps\n"
                                    "        target = null\n");
    assert_non_null (f->pipeline);
    f->store = zf_store_new (f->pipeline, 1024, &s_hooks);
    zf_store_join (f->store, &f->work, "steps", "work");
    zf_store_credit (f->store, &f->work, 10);
    *state = f;
    return 0;
}

static int
s_steps_teardown (void **state)
{
    s_steps_t *f = (s_steps_t *) *state;
    zf_store_leave (f->store, &f->work, false);
    zf_store_destroy (&f->store);
    zf_pipeline_destroy (&f->pipeline);
    free (f);
    return 0;
}

//  Puts id (of root's lineage, or a root when root is NULL) to steps.
static void
s_put_step (zf_store_t *store, const zf_id_t *id, const zf_id_t *root)
{
    zf_pending_t *put = zf_store_pending_new (1);
    snprintf (put->session, sizeof put->session, "s1");
    put->items[0].id = *id;
    if (root)
        put->items[0].parent = put->items[0].root = *root;
    snprintf (put->items[0].queue, sizeof put->items[0].queue, "steps");
    put->items[0].body = zframe_new ("\x07", 1);
    put->items[0].ts = zclock_time ();
    if (root) // as a session does: the lineage is held from the PUT on
        put->holds[0] = zf_store_hold (store, root);
    assert_true (zf_store_admit (store, put));
    zf_store_pending_destroy (&put);
}

//  The deliveries of steps for worker now, at most max.
static size_t
s_take_steps (zf_store_t *store, zf_worker_t *worker, zf_delivery_t **out)
{
    zf_cgroup_t *group = zf_store_group (store, zf_store_queue (store, "steps"), "work");
    zf_worker_t *to = NULL;
    return zf_store_take (store, group, zclock_mono (), &to, out, ZF_BATCH_MAX);
}

static void
test_a_requeued_letter_runs_its_lineage_again (void **state)
{
    s_steps_t *f = (s_steps_t *) *state;
    zf_store_t *store = f->store;
    zf_worker_t *work = &f->work;
    zf_delivery_t *out[ZF_BATCH_MAX];
    zf_message_t *msg;

    // A root makes a child, which fails: the lineage ends dead.
    zf_id_t root = s_id (1), child = zf_id_child (&root, 0);
    zf_results_wait (zf_store_results (store), &root, "s1", 1, zclock_mono () + 60000);
    s_put_step (store, &root, NULL);
    assert_int_equal (s_take_steps (store, work, out), 1);
    s_put_step (store, &child, &root);
    assert_true (zf_store_ack (store, work, &root));
    assert_int_equal (s_take_steps (store, work, out), 1);
    assert_true (zf_store_nack (store, work, &child, "broken", NULL, false, 0));
    assert_string_equal (zf_store_lineage_state (store, &root, &msg), "dead");
    zf_queue_t *dead = zf_store_lookup (store, "steps.dead");
    assert_non_null (dead);
    assert_int_equal (dead->depth, 1);

    // Requeued by the id of the item that died: the lineage runs again
    // (journaled: a RESULT that it runs, a PUT, the letter's FIN), the
    // item is the same, its attempts start over, and its header says so.
    int ends = s_heard.ends, stored = s_heard.stored;
    zf_select_t select = { .ids = &child, .nids = 1 };
    zf_steered_t steered;
    zf_store_requeue (store, dead, &select, &steered);
    assert_int_equal (steered.done, 1);
    assert_int_equal (dead->depth, 0);
    assert_int_equal (s_heard.ends, ends + 1);
    assert_int_equal (s_heard.stored, stored + 1);
    assert_string_equal (zf_store_lineage_state (store, &root, &msg), "running");
    assert_string_equal (zf_store_state (store, &child, &msg), "queued");
    assert_int_equal (s_take_steps (store, work, out), 1);
    assert_true (zf_id_eq (&out[0]->msg->id, &child));
    assert_true (zf_id_eq (&out[0]->msg->root, &root));
    assert_int_equal (out[0]->attempt, 1);
    uint32_t len;
    const char *times = zf_store_header (out[0]->msg, "zflow-requeued", &len);
    assert_non_null (times);
    assert_int_equal (len, 1);
    assert_int_equal (times[0], '1');
    assert_null (zf_store_header (out[0]->msg, "zflow-error", &len));
    assert_true (zf_store_ack (store, work, &child));
    assert_string_equal (zf_store_lineage_state (store, &root, &msg), "done");
    zf_answer_t *answer = zf_results_find (zf_store_results (store), &root);
    assert_non_null (answer);
    assert_null (answer->reason);

    // A lineage with two dead parts: requeuing one leaves it dead until
    // the other is through too.
    zf_id_t other = s_id (2), left = zf_id_child (&other, 0), right = zf_id_child (&other, 1);
    zf_results_wait (zf_store_results (store), &other, "s1", 2, zclock_mono () + 60000);
    s_put_step (store, &other, NULL);
    assert_int_equal (s_take_steps (store, work, out), 1);
    s_put_step (store, &left, &other);
    s_put_step (store, &right, &other);
    assert_true (zf_store_ack (store, work, &other));
    assert_int_equal (s_take_steps (store, work, out), 2);
    assert_true (zf_store_nack (store, work, &left, "broken", NULL, true, 0));
    assert_true (zf_store_nack (store, work, &right, "broken", NULL, true, 0));
    assert_string_equal (zf_store_lineage_state (store, &other, &msg), "dead");
    zf_select_t one = { .ids = &left, .nids = 1 };
    zf_store_requeue (store, dead, &one, &steered);
    assert_int_equal (steered.done, 1);
    assert_int_equal (s_take_steps (store, work, out), 1);
    assert_true (zf_store_ack (store, work, &left));
    assert_string_equal (zf_store_lineage_state (store, &other, &msg), "dead");
    zf_select_t two = { .ids = &right, .nids = 1 };
    zf_store_requeue (store, dead, &two, &steered);
    assert_string_equal (zf_store_lineage_state (store, &other, &msg), "running");
    assert_int_equal (s_take_steps (store, work, out), 1);
    assert_true (zf_store_ack (store, work, &right));
    assert_string_equal (zf_store_lineage_state (store, &other, &msg), "done");

    // A writer's zflow- headers do not steer a requeue: the broker's do.
    zf_id_t forged = s_id (3);
    zf_pending_t *put = zf_store_pending_new (1);
    snprintf (put->session, sizeof put->session, "s1");
    put->items[0].id = forged;
    snprintf (put->items[0].queue, sizeof put->items[0].queue, "steps");
    put->items[0].body = zframe_new ("\x07", 1);
    static const uint8_t headers[] = { 0x82, 0xab, 'z',  'f', 'l', 'o', 'w', '-',  'q', 'u', 'e',
                                       'u',  'e',  0xa4, 'e', 'v', 'i', 'l', 0xaa, 'z', 'f', 'l',
                                       'o',  'w',  '-',  'r', 'o', 'o', 't', 0xa1, 'x' };
    put->items[0].headers = (const uint8_t *) zf_alloc (sizeof headers);
    memcpy ((void *) put->items[0].headers, headers, sizeof headers);
    put->items[0].headers_size = sizeof headers;
    assert_true (zf_store_admit (store, put));
    zf_store_pending_destroy (&put);
    assert_int_equal (s_take_steps (store, work, out), 1);
    assert_true (zf_store_nack (store, work, &forged, "broken", NULL, true, 0));
    zf_select_t three = { .ids = &forged, .nids = 1 };
    zf_store_requeue (store, dead, &three, &steered);
    assert_int_equal (steered.done, 1);
    assert_null (zf_store_lookup (store, "evil"));
    assert_string_equal (zf_store_state (store, &forged, &msg), "queued");
    assert_string_equal (msg->queue->name, "steps");
    assert_true (zf_id_is_zero (&msg->root));

    // The same letter again: gone, so nothing moves.
    zf_store_requeue (store, dead, &select, &steered);
    assert_int_equal (steered.done, 0);
    assert_int_equal (steered.missing, 1);
}

static void
test_pause_and_purge (void **state)
{
    s_steps_t *f = (s_steps_t *) *state;
    zf_store_t *store = f->store;
    zf_worker_t *work = &f->work;
    zf_delivery_t *out[ZF_BATCH_MAX];
    zf_message_t *msg;
    zf_queue_t *steps = zf_store_lookup (store, "steps");

    // Paused: puts go in, nothing goes out; resumed, they do.
    zf_store_pause (store, steps, true);
    zf_store_pause (store, steps, true); // once is what counts
    assert_int_equal (s_heard.paused, 1);
    zf_id_t one = s_id (1), two = s_id (2), three = s_id (3);
    s_put_step (store, &one, NULL);
    assert_int_equal (s_take_steps (store, work, out), 0);
    zf_store_pause (store, steps, false);
    assert_int_equal (s_heard.paused, 2);
    assert_ptr_equal (zf_store_next_dirty (store), zf_store_group (store, steps, "work"));
    assert_int_equal (s_take_steps (store, work, out), 1);

    // Purged: what waits goes, a root cancelled, a lineage's item with its
    // lineage (its held root's worker told); what is held stays.
    zf_store_pause (store, steps, true);
    zf_id_t child = zf_id_child (&one, 0);
    s_put_step (store, &child, &one);
    s_put_step (store, &two, NULL);
    s_put_step (store, &three, NULL);
    int told = 0;
    zf_select_t older = { .before = 1 }; // stored before 1970: none
    zf_steered_t steered;
    zf_store_purge (store, steps, &older, s_told, &told, &steered);
    assert_int_equal (steered.done, 0);
    zf_select_t all = { 0 };
    zf_store_purge (store, steps, &all, s_told, &told, &steered);
    assert_int_equal (steered.done, 3);
    assert_int_equal (steered.busy, 1); // the root, held
    assert_int_equal (told, 1);
    assert_string_equal (zf_store_state (store, &two, &msg), "cancelled");
    assert_string_equal (zf_store_lineage_state (store, &one, &msg), "cancelled");
    zf_answer_t *answer = zf_results_find (zf_store_results (store), &three);
    assert_non_null (answer);
    assert_string_equal (answer->reason, "purged from steps");
    assert_int_equal (steps->depth, 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_every_group_gets_every_item, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_full_queue_holds_the_put_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_answers_wait_for_parked_puts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_cycle_unblocks_on_the_tick, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_duplicates_are_dropped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failures_retry_then_dead_letter, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_lost_worker_hands_back_with_a_count, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_held_item_times_out, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cancel_drops_the_lineage, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_failed_lineage_ends_dead, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_records_restore_the_state, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_clients_group_expires, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_the_last_group_keeps_its_items, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_priorities_order_delivery, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_delayed_item_waits_for_its_time, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_queue_the_pipeline_lacks_is_refused, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_results_are_kept_for_their_root, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_progress_is_the_lineages_while_it_runs, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_a_requeued_letter_runs_its_lineage_again,
                                         s_steps_setup, s_steps_teardown),
        cmocka_unit_test_setup_teardown (test_pause_and_purge, s_steps_setup, s_steps_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
