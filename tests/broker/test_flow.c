/*  Tests of flow control in the broker's store, driven directly on a clock
    of the test's own (each take is given its time): a queue's rate, the
    per-key rate and in-flight cap, fair turns between keys (weighted), and
    limits changed while items wait. What is checked is what a worker
    would see: which items come, when, and in what order; and what zflow
    status would say of those that wait.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <msgpack.h>

#include "zf_alloc.h"
#include "zf_store.h"
#include "zf_store_impl.h" // zf_store_stalled, zf_store_unblock_stalled
#include "zf_testkit.h"

static void
s_created (void *arg, zf_queue_t *queue)
{
}
static void
s_stored (void *arg, zf_message_t *msg, uint32_t attempt)
{
}
static void
s_kept (void *arg, zf_queue_t *queue, const zf_env_t *env)
{
}
static void
s_acked (void *arg, zf_delivery_t *d, bool dead)
{
}
static void
s_retried (void *arg, zf_delivery_t *d)
{
}
static void
s_finished (void *arg, zf_message_t *msg, uint8_t outcome)
{
}
static void
s_dead (void *arg, zf_delivery_t *d)
{
}
static void
s_lineage_over (void *arg, zf_lineage_t *lineage, const char *state)
{
}
static void
s_admitted (void *arg, zf_pending_t *put)
{
}
static void
s_answered (void *arg, zf_answer_t *answer, const zf_output_t *result)
{
}
static void
s_paused (void *arg, zf_queue_t *queue)
{
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

//  A pipeline whose queue jobs has the settings given, read by `work`.
static zf_pipeline_t *
s_pipeline (const char *settings)
{
    char text[2048];
    snprintf (text, sizeof text,
              "queues\n"
              "    jobs\n"
              "        external = true\n"
              "        max-depth = 100000\n"
              "        max-attempts = 3\n"
              "        retry-base = 1ms\n"
              "        retry-max = 1ms\n"
              "%s"
              "actors\n"
              "    work\n"
              "        kind = sink\n"
              "        input = jobs\n"
              "        target = null\n",
              settings);
    zf_pipeline_t *pipeline = zf_test_pipeline (text);
    assert_non_null (pipeline);
    return pipeline;
}

typedef struct {
    zf_pipeline_t *pipeline;
    zf_store_t *store;
    zf_worker_t worker;
    zf_cgroup_t *group;
    int64_t t0; // the test's clock starts here (ms)
} s_flow_t;

static s_flow_t *
s_flow_new (const char *settings)
{
    s_flow_t *self = (s_flow_t *) zf_alloc (sizeof (s_flow_t));
    self->pipeline = s_pipeline (settings);
    self->store = zf_store_new (self->pipeline, 0, &s_hooks);
    assert_int_equal (zf_store_join (self->store, &self->worker, "jobs", "work"), 0);
    zf_store_credit (self->store, &self->worker, 100000);
    self->group = zf_store_group (self->store, zf_store_queue (self->store, "jobs"), "work");
    self->t0 = zclock_mono () + 1000;
    return self;
}

static void
s_flow_destroy (s_flow_t **self_p)
{
    s_flow_t *self = *self_p;
    zf_store_leave (self->store, &self->worker, false);
    zf_store_destroy (&self->store);
    zf_pipeline_destroy (&self->pipeline);
    free (self);
    *self_p = NULL;
}

static zf_id_t
s_id (uint32_t n)
{
    zf_id_t id = { { 0 } };
    memcpy (id.bytes, &n, sizeof n);
    id.bytes[15] = 0xf1;
    return id;
}

//  Puts item n into jobs with headers tenant (unless NULL) and weight
//  (unless 0), at priority.
static void
s_put (s_flow_t *self, uint32_t n, const char *tenant, uint8_t priority, int weight)
{
    zf_pending_t *put = zf_store_pending_new (1);
    snprintf (put->session, sizeof put->session, "s1");
    zf_env_t *env = &put->items[0];
    env->id = s_id (n);
    snprintf (env->queue, sizeof env->queue, "jobs");
    env->priority = priority;
    env->body = zframe_new ("\xa1x", 2);
    if (tenant) {
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, weight ? 2 : 1);
        msgpack_pack_str_with_body (&pk, "tenant", 6);
        msgpack_pack_str_with_body (&pk, tenant, strlen (tenant));
        if (weight) {
            char text[16];
            snprintf (text, sizeof text, "%d", weight);
            msgpack_pack_str_with_body (&pk, "w", 1);
            msgpack_pack_str_with_body (&pk, text, strlen (text));
        }
        env->headers = (const uint8_t *) buffer.data; // the PUT frees it
        env->headers_size = (uint32_t) buffer.size;
    }
    assert_true (zf_store_admit (self->store, put));
    zf_store_pending_destroy (&put);
}

//  The deliveries the worker gets at the test's time at (ms from t0),
//  after the store's timers ran: their ids' numbers into numbers (if not
//  NULL); how many.
static size_t
s_take (s_flow_t *self, int64_t at, uint32_t *numbers)
{
    int64_t now = self->t0 + at;
    zf_store_wake (self->store, now);
    zf_delivery_t *out[ZF_BATCH_MAX];
    zf_worker_t *to;
    size_t total = 0, n;
    while ((n = zf_store_take (self->store, self->group, now, &to, out, ZF_BATCH_MAX))) {
        for (size_t i = 0; i < n; i++) {
            if (numbers)
                memcpy (&numbers[total + i], out[i]->msg->id.bytes, sizeof (uint32_t));
        }
        total += n;
    }
    return total;
}

static void
s_ack (s_flow_t *self, uint32_t n)
{
    zf_id_t id = s_id (n);
    assert_true (zf_store_ack (self->store, &self->worker, &id));
}

static const char *
s_state (s_flow_t *self, uint32_t n)
{
    zf_id_t id = s_id (n);
    zf_message_t *msg;
    return zf_store_state (self->store, &id, &msg);
}

//  rate = 100/s: one delivery every 10 ms, however many wait and however
//  much credit the worker has; the store says when to look again.
static void
test_a_rate_spaces_deliveries (void **state)
{
    s_flow_t *f = s_flow_new ("        rate = 100/s\n");
    for (uint32_t i = 1; i <= 400; i++)
        s_put (f, i, NULL, 0, 0);
    size_t per_second[3] = { 0 };
    int64_t last = -1000, closest = 1000;
    for (int64_t at = 0; at < 3000; at++) {
        size_t n = s_take (f, at, NULL);
        assert_true (n <= 1); // never two at once: burst is 1
        if (n) {
            per_second[at / 1000]++;
            if (at - last < closest)
                closest = at - last;
            last = at;
        }
    }
    assert_in_range (per_second[0], 99, 101);
    assert_in_range (per_second[1], 99, 101);
    assert_in_range (per_second[2], 99, 101);
    assert_int_equal (closest, 10);
    // The broker's loop is told when the next one may go.
    int64_t wait = zf_store_next_due (f->store, f->t0 + last);
    assert_in_range (wait, 1, 10);
    s_flow_destroy (&f);
}

//  A rate faster than the broker's clock (1 ms) still holds: 3,000/s is 3
//  at each ms.
static void
test_a_rate_faster_than_the_clock (void **state)
{
    s_flow_t *f = s_flow_new ("        rate = 3000/s\n");
    for (uint32_t i = 1; i <= 4000; i++)
        s_put (f, i, NULL, 0, 0);
    size_t total = 0;
    for (int64_t at = 0; at < 1000; at++) {
        size_t n = s_take (f, at, NULL);
        assert_true (n <= 3);
        total += n;
    }
    assert_in_range (total, 2999, 3001);
    s_flow_destroy (&f);
}

//  A new broker starts its buckets full: burst at once; a quiet spell
//  gives no more than burst; a late look (the broker was busy) does not
//  lose the rate's time: the next one makes it up.
static void
test_a_burst_after_a_quiet_spell (void **state)
{
    s_flow_t *f = s_flow_new ("        rate = 100/s\n        burst = 5\n");
    for (uint32_t i = 1; i <= 100; i++)
        s_put (f, i, NULL, 0, 0);
    assert_int_equal (s_take (f, 0, NULL), 5);
    assert_int_equal (s_take (f, 1, NULL), 0);
    assert_int_equal (s_take (f, 10, NULL), 1);
    // Quiet for a second: 5 at once, no more.
    assert_int_equal (s_take (f, 1010, NULL), 5);
    assert_int_equal (s_take (f, 1011, NULL), 0);
    assert_int_equal (s_take (f, 1020, NULL), 1);
    assert_int_equal (s_take (f, 1033, NULL), 1); // 3 ms late
    assert_int_equal (s_take (f, 1039, NULL), 0);
    assert_int_equal (s_take (f, 1040, NULL), 1); // on time again
    s_flow_destroy (&f);
}

//  The store restores a record, as a broker that ran before would.
static void
s_resume (s_flow_t *self)
{
    zf_record_t put = { .type = ZF_JR_PUT,
                        .name = "jobs",
                        .name_size = 4,
                        .data = (const uint8_t *) "\xc0",
                        .data_size = 1 };
    put.id = s_id (1000);
    zf_store_restore_put (self->store, &put);
    zf_store_restored (self->store);
}

//  A broker that resumed (it restored records: a restart, a new leader)
//  takes its buckets as just emptied: no burst, for a queue's rate or a
//  key's, however many it would have had.
static void
test_a_resumed_broker_grants_no_burst (void **state)
{
    s_flow_t *f = s_flow_new ("        rate = 100/s\n        burst = 5\n");
    s_resume (f);
    for (uint32_t i = 1; i <= 20; i++)
        s_put (f, i, NULL, 0, 0);
    assert_int_equal (s_take (f, 0, NULL), 0);
    assert_int_equal (s_take (f, 10, NULL), 1); // an interval on, one
    assert_int_equal (s_take (f, 11, NULL), 0);
    assert_int_equal (s_take (f, 20, NULL), 1);
    s_flow_destroy (&f);

    f = s_flow_new ("        key = header:tenant\n        rate-per-key = 1/s\n");
    s_resume (f);
    for (uint32_t i = 1; i <= 20; i++)
        s_put (f, i, i <= 10 ? "a" : "b", 0, 0);
    uint32_t got[8];
    assert_int_equal (s_take (f, 0, got), 0);
    assert_int_equal (s_take (f, 999, got), 0);
    assert_int_equal (s_take (f, 1000, got), 3); // the restored item (key ""), a's, b's
    assert_int_equal (s_take (f, 1999, got), 0);
    assert_int_equal (s_take (f, 2000, got), 2);
    s_flow_destroy (&f);
}

//  max-in-flight-per-key = 2: a key never has more than 2 items held; its
//  others are `throttled` while other keys go on; an ack lets one more go.
static void
test_in_flight_per_key (void **state)
{
    s_flow_t *f = s_flow_new ("        key = header:tenant\n"
                              "        max-in-flight-per-key = 2\n");
    for (uint32_t i = 1; i <= 10; i++)
        s_put (f, i, "acme", 0, 0);
    s_put (f, 11, "zeta", 0, 0);
    s_put (f, 12, "zeta", 0, 0);
    s_put (f, 13, NULL, 0, 0); // no tenant: the key ""
    uint32_t got[16];
    assert_int_equal (s_take (f, 0, got), 5);
    assert_int_equal (got[0], 1);
    assert_int_equal (got[1], 2);
    assert_string_equal (s_state (f, 3), "throttled");
    assert_string_equal (s_state (f, 1), "delivered");
    zf_group_figures_t figures;
    zf_store_group_figures (f->group, &figures);
    assert_int_equal (figures.ready, 8);
    assert_int_equal (figures.throttled, 8);
    assert_int_equal (figures.keys, 3);
    zf_key_figures_t top[ZF_TOP_KEYS];
    assert_int_equal (zf_store_key_figures (f->group, top, ZF_TOP_KEYS), 3);
    assert_string_equal (top[0].key, "acme");
    assert_int_equal (top[0].ready, 8);
    assert_int_equal (top[0].inflight, 2);
    assert_true (top[0].throttled);
    assert_string_equal (top[1].key, "");
    assert_string_equal (top[2].key, "zeta");
    assert_int_equal (s_take (f, 1, got), 0);
    s_ack (f, 2);
    assert_int_equal (s_take (f, 2, got), 1);
    assert_int_equal (got[0], 3); // in the order they came
    // Failed items come back to their key, which they do not overrun.
    zf_id_t one = s_id (1);
    assert_true (zf_store_nack (f->store, &f->worker, &one, "boom", NULL, false, 0));
    assert_int_equal (s_take (f, 50, got), 1);
    uint32_t held = 0;
    for (int64_t at = 51; at < 400; at++) {
        size_t n = s_take (f, at, got);
        for (size_t i = 0; i < n; i++)
            s_ack (f, got[i]);
        held += (uint32_t) n;
    }
    assert_int_equal (held, 0); // 2 held: nothing more of acme
    s_ack (f, 3);
    assert_int_equal (s_take (f, 401, got), 1);
    s_flow_destroy (&f);
}

//  rate-per-key = 10/s: each key at most one item every 100 ms, each key
//  on its own, with a thousand keys.
static void
test_a_rate_per_key_with_many_keys (void **state)
{
    s_flow_t *f = s_flow_new ("        key = header:tenant\n"
                              "        rate-per-key = 10/s\n");
    uint32_t n = 0;
    for (int k = 0; k < 1000; k++) {
        char tenant[16];
        snprintf (tenant, sizeof tenant, "t%d", k);
        for (int i = 0; i < 3; i++)
            s_put (f, ++n, tenant, 0, 0);
    }
    uint32_t *got = (uint32_t *) zf_alloc (3000 * sizeof (uint32_t));
    int64_t *when = (int64_t *) zf_alloc (3001 * sizeof (int64_t)); // by item
    size_t total = 0;
    for (int64_t at = 0; at < 400 && total < 3000; at++) {
        size_t k = s_take (f, at, got);
        for (size_t i = 0; i < k; i++) {
            when[got[i]] = at;
            s_ack (f, got[i]);
        }
        total += k;
    }
    assert_int_equal (total, 3000);
    for (uint32_t item = 1; item <= 3000; item += 3) {
        // A key's three items, in order, 100 ms apart.
        assert_int_equal (when[item + 1] - when[item], 100);
        assert_int_equal (when[item + 2] - when[item + 1], 100);
    }
    free (got);
    free (when);
    // Keys are forgotten once their bucket is full again.
    s_take (f, 1000, NULL);
    zf_group_figures_t figures;
    zf_store_group_figures (f->group, &figures);
    assert_int_equal (figures.keys, 0);
    s_flow_destroy (&f);
}

//  Without fair, keys go in the order their items came; with fair = true,
//  each key has its turn, weighted by weight-header: one tenant's backlog
//  does not hold the others behind it.
static void
test_fair_turns (void **state)
{
    s_flow_t *f = s_flow_new ("        key = header:tenant\n");
    for (uint32_t i = 1; i <= 50; i++)
        s_put (f, i, "big", 0, 0);
    s_put (f, 51, "small", 0, 0);
    uint32_t got[128];
    assert_int_equal (s_take (f, 0, got), 51);
    assert_int_equal (got[50], 51); // last: it came last
    s_flow_destroy (&f);

    f = s_flow_new ("        key = header:tenant\n        fair = true\n");
    for (uint32_t i = 1; i <= 50; i++)
        s_put (f, i, "big", 0, 0);
    for (uint32_t i = 51; i <= 53; i++)
        s_put (f, i, "s1", 0, 0);
    for (uint32_t i = 54; i <= 56; i++)
        s_put (f, i, "s2", 0, 0);
    assert_int_equal (s_take (f, 0, got), 56);
    // Three rounds of one each, in some order within a round.
    for (int round = 0; round < 3; round++) {
        int big = 0, s1 = 0, s2 = 0;
        for (int i = 0; i < 3; i++) {
            uint32_t item = got[round * 3 + i];
            big += item <= 50;
            s1 += item >= 51 && item <= 53;
            s2 += item >= 54;
        }
        assert_int_equal (big, 1);
        assert_int_equal (s1, 1);
        assert_int_equal (s2, 1);
    }
    // Within a key, in order.
    uint32_t last_big = 0;
    for (int i = 0; i < 56; i++)
        if (got[i] <= 50) {
            assert_true (got[i] > last_big);
            last_big = got[i];
        }
    s_flow_destroy (&f);

    // Weighted: gold (weight 3) has three turns to bronze's one.
    f = s_flow_new ("        key = header:tenant\n        fair = true\n"
                    "        weight-header = w\n");
    for (uint32_t i = 1; i <= 40; i++)
        s_put (f, i, "gold", 0, 3);
    for (uint32_t i = 41; i <= 80; i++)
        s_put (f, i, "bronze", 0, 1);
    assert_int_equal (s_take (f, 0, got), 80);
    int gold = 0;
    for (int i = 0; i < 40; i++)
        gold += got[i] <= 40;
    assert_in_range (gold, 29, 31);
    s_flow_destroy (&f);
}

//  Priorities still go first, across keys; fair turns are within a priority.
static void
test_priorities_before_turns (void **state)
{
    s_flow_t *f = s_flow_new ("        key = header:tenant\n        fair = true\n"
                              "        max-in-flight-per-key = 100\n");
    for (uint32_t i = 1; i <= 5; i++)
        s_put (f, i, "a", 0, 0);
    s_put (f, 6, "b", 0, 0);
    s_put (f, 7, "b", 9, 0);
    s_put (f, 8, "a", 5, 0);
    uint32_t got[16];
    assert_int_equal (s_take (f, 0, got), 8);
    assert_int_equal (got[0], 7);
    assert_int_equal (got[1], 8);
    s_flow_destroy (&f);
}

//  Limits changed while items wait and others are held (a reload): every
//  item is still there, on its key, under the new limits; and limits taken
//  away let everything go.
static void
test_limits_change_while_items_wait (void **state)
{
    s_flow_t *f = s_flow_new ("");
    for (uint32_t i = 1; i <= 6; i++)
        s_put (f, i, i <= 3 ? "a" : "b", 0, 0);
    zf_delivery_t *out[ZF_BATCH_MAX];
    zf_worker_t *to;
    assert_int_equal (zf_store_take (f->store, f->group, f->t0, &to, out, 2), 2); // 1, 2 held
    zf_pipeline_t *limited = s_pipeline ("        key = header:tenant\n"
                                         "        max-in-flight-per-key = 2\n");
    zf_store_reconfigure (f->store, limited, NULL);
    uint32_t got[16];
    assert_int_equal (s_take (f, 1, got), 2); // a has 2 held: only b's
    assert_int_equal (got[0], 4);
    assert_int_equal (got[1], 5);
    assert_string_equal (s_state (f, 3), "throttled");
    s_ack (f, 1);
    assert_int_equal (s_take (f, 2, got), 1);
    assert_int_equal (got[0], 3);
    zf_pipeline_t *open = s_pipeline ("");
    zf_store_reconfigure (f->store, open, NULL);
    assert_int_equal (s_take (f, 3, got), 1);
    assert_int_equal (got[0], 6);
    zf_store_leave (f->store, &f->worker, false);
    zf_store_destroy (&f->store);
    zf_pipeline_destroy (&open);
    zf_pipeline_destroy (&limited);
    zf_pipeline_destroy (&f->pipeline);
    free (f);
}

//  A worker lost while holding items of a key hands them back to the key:
//  they come again, first, within the limit.
static void
test_a_lost_worker_hands_back_to_the_key (void **state)
{
    s_flow_t *f = s_flow_new ("        key = header:tenant\n"
                              "        max-in-flight-per-key = 1\n");
    for (uint32_t i = 1; i <= 3; i++)
        s_put (f, i, "a", 0, 0);
    uint32_t got[4];
    assert_int_equal (s_take (f, 0, got), 1);
    zf_store_leave (f->store, &f->worker, false); // a BYE: handed back untouched
    zf_worker_t other = { 0 };
    assert_int_equal (zf_store_join (f->store, &other, "jobs", "work"), 0);
    zf_store_credit (f->store, &other, 10);
    zf_delivery_t *out[ZF_BATCH_MAX];
    zf_worker_t *to;
    assert_int_equal (zf_store_take (f->store, f->group, f->t0 + 1, &to, out, 10), 1);
    assert_ptr_equal (to, &other);
    uint32_t first;
    memcpy (&first, out[0]->msg->id.bytes, sizeof first);
    assert_int_equal (first, 1);
    zf_store_leave (f->store, &other, false);
    zf_store_destroy (&f->store);
    zf_pipeline_destroy (&f->pipeline);
    free (f);
}

//  A writer whose items wait for room in the queue it reads (a cycle), and
//  whose key is full with its own items (their acks wait for its PUT),
//  can do nothing more: the store lets its PUT in rather than wait for
//  ever, as it would without the key's limit.
static void
test_a_full_key_does_not_stall_its_writer (void **state)
{
    s_flow_t *f = s_flow_new ("        key = header:tenant\n"
                              "        max-in-flight-per-key = 1\n");
    zf_pipeline_t *small = zf_test_pipeline ("queues\n"
                                             "    jobs\n"
                                             "        external = true\n"
                                             "        max-depth = 5\n"
                                             "        key = header:tenant\n"
                                             "        max-in-flight-per-key = 1\n"
                                             "actors\n"
                                             "    work\n"
                                             "        kind = sink\n"
                                             "        input = jobs\n"
                                             "        target = null\n");
    zf_store_reconfigure (f->store, small, NULL);
    for (uint32_t i = 1; i <= 5; i++)
        s_put (f, i, "a", 0, 0);
    uint32_t got[8];
    assert_int_equal (s_take (f, 0, got), 1);
    // Its output, into the full queue, waits for room: parked.
    zf_pending_t *put = zf_store_pending_new (1);
    snprintf (put->session, sizeof put->session, "s1");
    put->writer = &f->worker;
    put->items[0].id = s_id (100);
    snprintf (put->items[0].queue, sizeof put->items[0].queue, "jobs");
    put->items[0].body = zframe_new ("\xa1x", 2);
    assert_false (zf_store_admit (f->store, put)); // the store keeps it
    s_ack (f, got[0]);                             // held behind the PUT
    // The store sees it can do nothing more: its PUT goes in past
    // max-depth, and the ack held behind it applies.
    assert_int_equal (f->worker.parked, 0);
    zf_id_t one = s_id (1);
    zf_message_t *msg;
    assert_string_equal (zf_store_state (f->store, &one, &msg), "unknown"); // done, let go
    assert_int_equal (s_take (f, 1, got), 2); // a's next, and the output (no key)
    zf_store_leave (f->store, &f->worker, false);
    zf_store_destroy (&f->store);
    zf_pipeline_destroy (&small);
    zf_pipeline_destroy (&f->pipeline);
    free (f);
}

//  A key kept after its last item only for its bucket still has its burst
//  for the next (rate-per-key = 1/s, burst = 5); an item that comes after
//  a quiet spell makes up no time: with burst = 1, never two at once.
static void
test_a_quiet_key_and_a_quiet_queue (void **state)
{
    s_flow_t *f = s_flow_new ("        key = header:tenant\n        rate-per-key = 1/s\n"
                              "        burst = 5\n");
    uint32_t got[8];
    s_put (f, 1, "a", 0, 0);
    assert_int_equal (s_take (f, 0, got), 1);
    s_ack (f, 1);
    s_put (f, 2, "a", 0, 0);
    assert_string_equal (s_state (f, 2), "queued");
    assert_int_equal (s_take (f, 10, got), 1);
    s_flow_destroy (&f);

    f = s_flow_new ("        rate = 100/s\n");
    s_put (f, 1, NULL, 0, 0);
    assert_int_equal (s_take (f, 0, got), 1);
    s_put (f, 2, NULL, 0, 0);
    s_put (f, 3, NULL, 0, 0);
    assert_int_equal (s_take (f, 20, got), 1); // not 2: the quiet spell is not made up
    assert_int_equal (s_take (f, 29, got), 0);
    assert_int_equal (s_take (f, 30, got), 1);
    s_flow_destroy (&f);
}

//  A reload that changes a queue's limits hands out no new burst: the
//  queue's bucket and each key's carry over.
static void
test_a_reload_gives_no_new_burst (void **state)
{
    s_flow_t *f =
        s_flow_new ("        rate = 10/s\n        burst = 20\n"
                    "        key = header:tenant\n        max-in-flight-per-key = 1000\n");
    for (uint32_t i = 1; i <= 100; i++)
        s_put (f, i, i <= 50 ? "a" : "b", 0, 0);
    uint32_t got[64];
    assert_int_equal (s_take (f, 0, got), 20); // a new broker's bucket is full
    assert_int_equal (s_take (f, 100, got), 1);
    zf_pipeline_t *changed = s_pipeline ("        rate = 10/s\n        burst = 20\n"
                                         "        key = header:tenant\n"
                                         "        max-in-flight-per-key = 2000\n");
    zf_store_reconfigure (f->store, changed, NULL);
    assert_int_equal (s_take (f, 101, got), 0);
    assert_int_equal (s_take (f, 200, got), 1);
    zf_store_leave (f->store, &f->worker, false);
    zf_store_destroy (&f->store);
    zf_pipeline_destroy (&changed);
    zf_pipeline_destroy (&f->pipeline);
    free (f);
}

//  The slowest rate with the longest burst stays in range (UBSan would
//  say): a new broker's bucket is full, so the burst goes at once.
static void
test_a_slow_rate_with_a_long_burst (void **state)
{
    s_flow_t *f = s_flow_new ("        rate = 1/d\n        burst = 1000000\n");
    for (uint32_t i = 1; i <= 10; i++)
        s_put (f, i, NULL, 0, 0);
    assert_int_equal (s_take (f, 0, NULL), 10);
    s_flow_destroy (&f);
}

//  A key longer than ZF_NAME_MAX bytes is cut on a character's boundary,
//  and bytes that are not UTF-8 are shown as '?': keys go out in ZFP, the
//  stats event and /metrics, where text is UTF-8.
static void
test_keys_are_utf8 (void **state)
{
    s_flow_t *f = s_flow_new ("        key = header:tenant\n        max-in-flight-per-key = 1\n");
    char tenant[200];
    memset (tenant, 'x', 127);
    strcpy (tenant + 127, "\xc3\xa9"); // é across the cut at 128 bytes
    s_put (f, 1, tenant, 0, 0);
    s_put (f, 2, tenant, 0, 0);
    s_put (f, 3, "bad\xff\xfe", 0, 0);
    s_put (f, 4, "bad\xff\xfe", 0, 0);
    s_put (f, 5, "s\xed\xa0\x80", 0, 0); // a surrogate: not UTF-8 (Python refuses it)
    zf_key_figures_t top[ZF_TOP_KEYS];
    assert_int_equal (zf_store_key_figures (f->group, top, ZF_TOP_KEYS), 3);
    for (int k = 0; k < 3; k++) {
        size_t len = strlen (top[k].key);
        if (top[k].key[0] == 'x')
            assert_int_equal (len, 127); // é left out whole
        else if (top[k].key[0] == 'b')
            assert_string_equal (top[k].key, "bad??");
        else
            assert_string_equal (top[k].key, "s???");
    }
    s_flow_destroy (&f);
}

//  An actor's `flow` section sets its group's limits in place of its
//  queue's; another group of the queue keeps the queue's (none here).
static void
test_an_actors_flow_section (void **state)
{
    zf_pipeline_t *pipeline = zf_test_pipeline ("queues\n"
                                                "    jobs\n"
                                                "        external = true\n"
                                                "actors\n"
                                                "    work\n"
                                                "        kind = sink\n"
                                                "        input = jobs\n"
                                                "        target = null\n"
                                                "        flow\n"
                                                "            key = header:tenant\n"
                                                "            max-in-flight-per-key = 1\n"
                                                "    audit\n"
                                                "        kind = sink\n"
                                                "        input = jobs\n"
                                                "        target = null\n");
    assert_non_null (pipeline);
    zf_store_t *store = zf_store_new (pipeline, 0, &s_hooks);
    zf_worker_t work = { 0 }, audit = { 0 };
    assert_int_equal (zf_store_join (store, &work, "jobs", "work"), 0);
    assert_int_equal (zf_store_join (store, &audit, "jobs", "audit"), 0);
    zf_store_credit (store, &work, 100);
    zf_store_credit (store, &audit, 100);
    s_flow_t f = { .pipeline = pipeline, .store = store };
    for (uint32_t i = 1; i <= 3; i++)
        s_put (&f, i, "a", 0, 0);
    zf_queue_t *jobs = zf_store_queue (store, "jobs");
    zf_delivery_t *out[ZF_BATCH_MAX];
    zf_worker_t *to;
    int64_t now = zclock_mono ();
    assert_int_equal (
        zf_store_take (store, zf_store_group (store, jobs, "work"), now, &to, out, 10),
        1); // one of tenant a at a time
    assert_int_equal (
        zf_store_take (store, zf_store_group (store, jobs, "audit"), now, &to, out, 10),
        3); // the queue's: no limit
    zf_store_leave (store, &work, false);
    zf_store_leave (store, &audit, false);
    zf_store_destroy (&store);
    zf_pipeline_destroy (&pipeline);
}

static void
s_told (zf_worker_t *worker, zf_lineage_t *lineage, void *arg)
{
}

//  Throttled items keep the meaning of a cancel, a purge and a dead letter:
//  a cancelled or purged item leaves its key (the others go on), and an
//  item that fails for good frees its key's slot for the next.
static void
test_cancel_purge_and_dead_letters_of_a_key (void **state)
{
    s_flow_t *f = s_flow_new ("        key = header:tenant\n"
                              "        max-in-flight-per-key = 1\n");
    for (uint32_t i = 1; i <= 5; i++)
        s_put (f, i, "a", 0, 0);
    uint32_t got[8];
    assert_int_equal (s_take (f, 0, got), 1);
    assert_int_equal (got[0], 1);
    assert_string_equal (s_state (f, 2), "throttled");
    // Item 2, throttled, is cancelled: gone from its key.
    zf_id_t two = s_id (2);
    assert_true (zf_store_cancel (f->store, &two, "test", "no", false, s_told, NULL));
    assert_string_equal (s_state (f, 2), "unknown"); // no dedup window here: forgotten
    zf_group_figures_t figures;
    zf_store_group_figures (f->group, &figures);
    assert_int_equal (figures.throttled, 3);
    // Item 3 purged.
    zf_id_t three = s_id (3);
    zf_select_t select = { .ids = &three, .nids = 1 };
    zf_steered_t steered = { 0 };
    zf_store_purge (f->store, zf_store_queue (f->store, "jobs"), &select, s_told, NULL, &steered);
    assert_int_equal (steered.done, 1);
    zf_store_group_figures (f->group, &figures);
    assert_int_equal (figures.throttled, 2);
    // Item 1 fails for good: dead-lettered, and 4 goes.
    zf_id_t one = s_id (1);
    assert_true (zf_store_nack (f->store, &f->worker, &one, "boom", NULL, true, 0));
    assert_int_equal (s_take (f, 1, got), 1);
    assert_int_equal (got[0], 4);
    s_ack (f, 4);
    assert_int_equal (s_take (f, 2, got), 1);
    assert_int_equal (got[0], 5);
    s_ack (f, 5);
    zf_store_group_figures (f->group, &figures);
    assert_int_equal (figures.ready, 0);
    assert_int_equal (figures.throttled, 0);
    assert_int_equal (figures.keys, 0); // forgotten: nothing left of it
    s_flow_destroy (&f);
}

//  A paused queue delivers nothing, its keys' turns waiting; resumed, they
//  go on where they were.
static void
test_a_paused_queue_keeps_its_turns (void **state)
{
    s_flow_t *f = s_flow_new ("        key = header:tenant\n        fair = true\n");
    for (uint32_t i = 1; i <= 4; i++)
        s_put (f, i, i % 2 ? "a" : "b", 0, 0);
    zf_queue_t *jobs = zf_store_queue (f->store, "jobs");
    zf_store_pause (f->store, jobs, true);
    uint32_t got[8];
    assert_int_equal (s_take (f, 0, got), 0);
    zf_store_pause (f->store, jobs, false);
    assert_int_equal (s_take (f, 1, got), 4);
    assert_true ((got[0] % 2) != (got[1] % 2)); // a, b, a, b (or b, a, ...)
    assert_true ((got[2] % 2) != (got[3] % 2));
    s_flow_destroy (&f);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_a_rate_spaces_deliveries),
        cmocka_unit_test (test_a_rate_faster_than_the_clock),
        cmocka_unit_test (test_a_burst_after_a_quiet_spell),
        cmocka_unit_test (test_a_resumed_broker_grants_no_burst),
        cmocka_unit_test (test_in_flight_per_key),
        cmocka_unit_test (test_a_rate_per_key_with_many_keys),
        cmocka_unit_test (test_fair_turns),
        cmocka_unit_test (test_priorities_before_turns),
        cmocka_unit_test (test_limits_change_while_items_wait),
        cmocka_unit_test (test_a_lost_worker_hands_back_to_the_key),
        cmocka_unit_test (test_cancel_purge_and_dead_letters_of_a_key),
        cmocka_unit_test (test_a_paused_queue_keeps_its_turns),
        cmocka_unit_test (test_an_actors_flow_section),
        cmocka_unit_test (test_a_full_key_does_not_stall_its_writer),
        cmocka_unit_test (test_a_quiet_key_and_a_quiet_queue),
        cmocka_unit_test (test_a_reload_gives_no_new_burst),
        cmocka_unit_test (test_a_slow_rate_with_a_long_burst),
        cmocka_unit_test (test_keys_are_utf8),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
