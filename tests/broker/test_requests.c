/*  Tests of a session's requests (include/zflow.h): puts and questions in
    flight at once on one session, each answered on its own, in the order
    the broker answers them, not the order they were asked. A real broker
    on loopback; the worker is a libzflow client that acks when the test
    says.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_broker.h"
#include "zf_testkit.h"
#include "zflow.h"

#define LOOPBACK ZF_TEST_LOOPBACK

//  Tasks that work reads and nobody else; a queue that holds one item.
static const char *s_config = "pipeline\n"
                              "    results = answers\n"
                              "queues\n"
                              "    tasks\n"
                              "        external = true\n"
                              "    small\n"
                              "        external = true\n"
                              "        max-depth = 1\n"
                              "actors\n"
                              "    work\n"
                              "        kind = exec\n"
                              "        command = /bin/true\n"
                              "        input = tasks\n"
                              "        output = answers\n"
                              "    slow\n"
                              "        kind = exec\n"
                              "        command = /bin/true\n"
                              "        input = small\n"
                              "        output = answers\n";

typedef struct {
    zf_pipeline_t *pipeline;
    zf_broker_t *broker;
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = (s_fixture_t *) zmalloc (sizeof (s_fixture_t));
    f->pipeline = zf_test_pipeline (s_config);
    zf_error_t err;
    f->broker = zf_broker_new (f->pipeline, LOOPBACK, LOOPBACK, NULL, &err);
    if (!f->broker)
        fail_msg ("broker: %s", err.text);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_broker_destroy (&f->broker);
    zf_pipeline_destroy (&f->pipeline);
    free (f);
    return 0;
}

//  The next request client answers, pumping it for up to 5 s.
static zf_request_t *
s_answered (zf_client_t *client)
{
    for (int i = 0; i < 500; i++) {
        zf_request_t *request = zf_client_answered (client);
        if (request)
            return request;
        zf_client_pump (client, 10);
    }
    fail_msg ("no request answered within 5 s");
    return NULL;
}

//  Puts body (an int) to queue as a request, and waits for it: DONE.
static zf_id_t
s_put (zf_client_t *client, const char *queue, uint8_t body)
{
    zf_id_t id;
    zf_request_t *put = zf_client_put_request (client, queue, &body, 1, NULL, &id, 5000, NULL);
    assert_non_null (put);
    zf_request_t *answered = s_answered (client);
    assert_ptr_equal (answered, put);
    assert_int_equal (zf_request_outcome (put), ZF_REQUEST_DONE);
    assert_string_equal (zf_request_error (put), "");
    assert_true (zf_id_eq (zf_request_id (put), &id));
    zf_request_destroy (&put);
    return id;
}

static void
test_answers_come_in_the_order_the_broker_gives_them (void **state)
{
    // Three tasks; on one session, a result request waiting for each, an
    // item request and a figures request. The questions that need no
    // waiting are answered first; the results as the worker acks the
    // tasks: C, then A, then B.
    s_fixture_t *f = (s_fixture_t *) *state;
    const char *endpoint = zf_broker_endpoint (f->broker);
    zf_client_t *client = zf_client_new (endpoint, "web", NULL, 0);
    zf_id_t ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = s_put (client, "tasks", (uint8_t) (i + 1));
    static int tags[5];
    zf_request_t *asked[5];
    for (int i = 0; i < 3; i++)
        asked[i] = zf_client_result_request (client, &ids[i], 10000, 5000, &tags[i]);
    asked[3] = zf_client_item_request (client, &ids[0], 5000, &tags[3]);
    asked[4] = zf_client_figures_request (client, 5000, &tags[4]);
    for (int i = 0; i < 5; i++)
        assert_int_equal (zf_request_outcome (asked[i]), ZF_REQUEST_PENDING);

    // The two that need no waiting.
    zf_request_t *item = s_answered (client);
    assert_ptr_equal (zf_request_arg (item), &tags[3]);
    assert_int_equal (zf_request_outcome (item), ZF_REQUEST_DONE);
    zf_result_t *state_of = zf_request_take_result (item);
    assert_string_equal (zf_result_state (state_of), "queued");
    assert_null (zf_request_take_result (item)); // taken once
    zf_result_destroy (&state_of);
    zf_request_destroy (&item);
    zf_request_t *figures = s_answered (client);
    assert_ptr_equal (zf_request_arg (figures), &tags[4]);
    size_t count = 0;
    zf_figures_t *queues = zf_request_take_queues (figures, &count);
    assert_non_null (queues);
    bool seen = false;
    for (size_t q = 0; q < count; q++)
        if (streq (queues[q].name, "tasks")) {
            assert_int_equal (queues[q].depth, 3);
            seen = true;
        }
    assert_true (seen);
    free (queues);
    zf_request_destroy (&figures);
    assert_null (zf_client_answered (client)); // the results wait

    // The worker takes the three, and acks them C, A, B.
    zf_client_t *worker = zf_client_new (endpoint, "work", "tasks", 3);
    zf_item_t *items[3] = { NULL, NULL, NULL };
    for (int taken = 0; taken < 3;) {
        zf_item_t *next = zf_client_next (worker, 5000);
        assert_non_null (next);
        for (int i = 0; i < 3; i++)
            if (zf_id_eq (zf_item_id (next), &ids[i]))
                items[i] = next;
        taken++;
    }
    int order[3] = { 2, 0, 1 };
    for (int k = 0; k < 3; k++) {
        int i = order[k];
        assert_int_equal (zf_client_ack (worker, &items[i]), 0);
        zf_client_pump (worker, 0);
        zf_request_t *result = s_answered (client);
        assert_ptr_equal (zf_request_arg (result), &tags[i]);
        assert_ptr_equal (result, asked[i]);
        assert_int_equal (zf_request_outcome (result), ZF_REQUEST_DONE);
        zf_result_t *answer = zf_request_take_result (result);
        assert_string_equal (zf_result_state (answer), "done");
        assert_true (zf_id_eq (zf_result_root (answer), &ids[i]));
        zf_result_destroy (&answer);
        zf_request_destroy (&result);
    }
    zf_client_destroy (&worker);
    zf_client_destroy (&client);
}

static void
test_a_put_refused_says_why (void **state)
{
    // A queue the pipeline lacks; a full queue once the put's wait passed.
    // Each request is refused with the broker's reason, and only it: a
    // put to another queue in between is confirmed.
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_client_t *client = zf_client_new (zf_broker_endpoint (f->broker), "web", NULL, 0);
    uint8_t one = 1;
    zf_request_t *nowhere =
        zf_client_put_request (client, "nosuch", &one, 1, NULL, NULL, 5000, NULL);
    zf_request_t *answered = s_answered (client);
    assert_ptr_equal (answered, nowhere);
    assert_int_equal (zf_request_outcome (nowhere), ZF_REQUEST_REFUSED);
    assert_non_null (strstr (zf_request_error (nowhere), "no queue 'nosuch'"));
    assert_int_equal (zf_request_refusal (nowhere), ZF_REFUSAL_NO_QUEUE);
    zf_request_destroy (&nowhere);

    s_put (client, "small", 1); // small is full now
    zf_put_opts_t opts = { .wait_ms = 300 };
    zf_request_t *full = zf_client_put_request (client, "small", &one, 1, &opts, NULL, 5000, NULL);
    assert_non_null (full);
    s_put (client, "tasks", 2); // answered while the other waits for room
    answered = s_answered (client);
    assert_ptr_equal (answered, full);
    assert_int_equal (zf_request_outcome (full), ZF_REQUEST_REFUSED);
    assert_non_null (strstr (zf_request_error (full), "queue 'small' is full (max-depth 1)"));
    assert_int_equal (zf_request_refusal (full), ZF_REFUSAL_FULL);
    zf_request_destroy (&full);
    zf_client_destroy (&client);
}

static void
test_a_control_refused_says_what_kind (void **state)
{
    // A queue or a schedule that is not there, and an op the broker does
    // not know: refused, each with its kind (the gateway's 404 or 400).
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_client_t *client = zf_client_new (zf_broker_endpoint (f->broker), "web", NULL, 0);
    const zf_control_t asks[] = { { .op = "pause", .queue = "nosuch" },
                                  { .op = "schedule-remove", .queue = "", .name = "nosuch" },
                                  { .op = "bogus", .queue = "tasks" } };
    const zf_refusal_t kinds[] = { ZF_REFUSAL_NO_QUEUE, ZF_REFUSAL_NO_SCHEDULE,
                                   ZF_REFUSAL_INVALID };
    const char *words[] = { "no queue 'nosuch'", "no schedule 'nosuch'", "unknown op 'bogus'" };
    for (int i = 0; i < 3; i++) {
        zf_request_t *ask = zf_client_control_request (client, &asks[i], 5000, NULL);
        assert_non_null (ask);
        assert_ptr_equal (s_answered (client), ask);
        assert_int_equal (zf_request_outcome (ask), ZF_REQUEST_REFUSED);
        assert_int_equal (zf_request_refusal (ask), kinds[i]);
        assert_non_null (strstr (zf_request_error (ask), words[i]));
        zf_request_destroy (&ask);
    }
    zf_client_destroy (&client);
}

//  What a client says of itself, as its log function heard it.
static char s_heard[4096];

static void
s_log (void *arg, const char *level, const char *text)
{
    (void) arg;
    size_t len = strlen (s_heard);
    snprintf (s_heard + len, sizeof s_heard - len, "%s: %s\n", level, text);
}

static void
test_requests_of_one_turn_share_a_put (void **state)
{
    // Three puts to small (max-depth 1, its reader not running) with a
    // wait, then one to tasks, made in one turn: those to small go in one
    // PUT, which the broker takes in order. The first is stored; the other
    // two are refused once the wait passed, each with the reason; the put
    // to tasks, a PUT of its own, is confirmed meanwhile. Each request is
    // answered once, on its own.
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_client_t *client = zf_client_new (zf_broker_endpoint (f->broker), "web", NULL, 0);
    zf_client_pump (client, 0);
    uint8_t one = 1;
    zf_put_opts_t opts = { .wait_ms = 300 };
    zf_request_t *small[3];
    zf_id_t ids[3];
    for (int i = 0; i < 3; i++) {
        small[i] = zf_client_put_request (client, "small", &one, 1, &opts, &ids[i], 5000, NULL);
        assert_non_null (small[i]);
    }
    zf_id_t other;
    zf_request_t *tasks =
        zf_client_put_request (client, "tasks", &one, 1, NULL, &other, 5000, NULL);
    assert_non_null (tasks);
    assert_ptr_equal (s_answered (client), tasks);
    assert_int_equal (zf_request_outcome (tasks), ZF_REQUEST_DONE);
    for (int i = 0; i < 3; i++) {
        zf_request_t *answered = s_answered (client);
        int at = answered == small[0]   ? 0
                 : answered == small[1] ? 1
                 : answered == small[2] ? 2
                                        : -1;
        assert_true (at >= 0);
        assert_true (zf_id_eq (zf_request_id (answered), &ids[at]));
        if (at == 0) {
            assert_int_equal (zf_request_outcome (answered), ZF_REQUEST_DONE);
            assert_int_equal (zf_request_refusal (answered), ZF_REFUSAL_NONE);
        }
        else {
            assert_int_equal (zf_request_outcome (answered), ZF_REQUEST_REFUSED);
            assert_non_null (strstr (zf_request_error (answered), "queue 'small' is full"));
            assert_int_equal (zf_request_refusal (answered), ZF_REFUSAL_FULL);
        }
        small[at] = NULL;
        zf_request_destroy (&answered);
    }
    assert_null (zf_client_answered (client));
    zf_request_destroy (&tasks);
    // What the broker has: the first of small, and the one of tasks.
    char seen[32];
    assert_int_equal (zf_client_status (client, &ids[0], seen, sizeof seen, 5000), 0);
    assert_string_equal (seen, "queued");
    for (int i = 1; i < 3; i++) {
        assert_int_equal (zf_client_status (client, &ids[i], seen, sizeof seen, 5000), 0);
        assert_string_equal (seen, "unknown");
    }
    assert_int_equal (zf_client_status (client, &other, seen, sizeof seen, 5000), 0);
    assert_string_not_equal (seen, "unknown");
    zf_client_destroy (&client);
}

static void
test_a_put_stored_in_part_is_never_told_stored_or_refused (void **state)
{
    // Three puts in one PUT to a results queue that keeps 20 bytes: the
    // first (8 bytes) and the third (8) are kept, the second (30) is
    // refused, which the CONFIRM cannot say of one item. Each request is
    // then answered "not confirmed", never stored or refused: its state,
    // asked, tells the truth.
    (void) state;
    zf_pipeline_t *pipeline = zf_test_pipeline ("pipeline\n"
                                                "    results = answers\n"
                                                "broker\n"
                                                "    result-max-bytes = 20\n"
                                                "queues\n"
                                                "    tasks\n"
                                                "        external = true\n"
                                                "actors\n"
                                                "    work\n"
                                                "        kind = exec\n"
                                                "        command = /bin/true\n"
                                                "        input = tasks\n"
                                                "        output = answers\n");
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, LOOPBACK, LOOPBACK, NULL, &err);
    assert_non_null (broker);
    zf_client_t *client = zf_client_new (zf_broker_endpoint (broker), "web", NULL, 0);
    zf_client_pump (client, 0);
    const size_t sizes[3] = { 8, 30, 8 };
    uint8_t body[32];
    zf_request_t *puts[3];
    zf_id_t ids[3];
    for (int i = 0; i < 3; i++) {
        body[0] = (uint8_t) (0xa0 | (sizes[i] - 1)); // a string of sizes[i] - 1 bytes
        memset (body + 1, 'x', sizes[i] - 1);
        puts[i] =
            zf_client_put_request (client, "answers", body, sizes[i], NULL, &ids[i], 5000, NULL);
        assert_non_null (puts[i]);
    }
    for (int i = 0; i < 3; i++) {
        zf_request_t *answered = s_answered (client);
        assert_int_equal (zf_request_outcome (answered), ZF_REQUEST_TIMEOUT);
        assert_non_null (strstr (zf_request_error (answered), "its state says which"));
        zf_request_destroy (&answered);
    }
    const char *states[3] = { "done", "unknown", "done" };
    for (int i = 0; i < 3; i++) {
        char seen[32];
        assert_int_equal (zf_client_status (client, &ids[i], seen, sizeof seen, 5000), 0);
        assert_string_equal (seen, states[i]);
    }
    // The large one alone, in a PUT of its own: refused, and why.
    body[0] = 0xa0 | 29;
    zf_request_t *large =
        zf_client_put_request (client, "answers", body, 30, NULL, NULL, 5000, NULL);
    assert_ptr_equal (s_answered (client), large);
    assert_int_equal (zf_request_outcome (large), ZF_REQUEST_REFUSED);
    assert_int_equal (zf_request_refusal (large), ZF_REFUSAL_RESULTS);
    zf_request_destroy (&large);
    zf_client_destroy (&client);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

static void
test_a_client_says_why (void **state)
{
    // zf_client_new says why it cannot be made.
    s_fixture_t *f = (s_fixture_t *) *state;
    assert_null (zf_client_new (NULL, "web", NULL, 0));
    assert_string_equal (zf_client_last_error (NULL), "no broker endpoint given");
    char name[200];
    memset (name, 'x', sizeof name - 1);
    name[sizeof name - 1] = 0;
    assert_null (zf_client_new (zf_broker_endpoint (f->broker), name, NULL, 0));
    assert_string_equal (zf_client_last_error (NULL), "the name is over 128 bytes");
    setenv ("ZFLOW_CURVE_CERT", "/nonexistent/web_secret", 1);
    zf_client_t *none = zf_client_new (zf_broker_endpoint (f->broker), "web", NULL, 0);
    unsetenv ("ZFLOW_CURVE_CERT");
    assert_null (none);
    assert_non_null (strstr (zf_client_last_error (NULL), "ZFLOW_CURVE_SERVER is not"));

    // A refusal no request waits for: the failed flush's error, and a
    // line to the log function the caller set (not stderr).
    zf_client_t *client = zf_client_new (zf_broker_endpoint (f->broker), "web", NULL, 0);
    assert_non_null (client);
    assert_string_equal (zf_client_last_error (NULL), "");
    s_heard[0] = 0;
    zf_client_set_log (client, s_log, NULL);
    assert_int_equal (zf_client_put_str (client, "nosuch", "1", NULL), 0);
    assert_int_equal (zf_client_flush (client, 5000), -1);
    assert_non_null (strstr (zf_client_last_error (client), "refused: no queue 'nosuch' in"));
    assert_non_null (strstr (s_heard, "warning: the broker refused 1 item: no queue 'nosuch' in"));
    assert_int_equal (strchr (s_heard, '\n') - s_heard + 1, strlen (s_heard)); // one line
    zf_client_destroy (&client);
}

static void
test_no_answer_times_out (void **state)
{
    // No broker at the endpoint: a put is refused once the broker's first
    // answer has not come in 2 s, and questions time out, each with what
    // that means; a request forgotten before its answer is dropped.
    (void) state;
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", zf_test_free_port ());
    zf_client_t *client = zf_client_new (endpoint, "web", NULL, 0);
    uint8_t one = 1;
    assert_null (zf_client_put_request (client, "tasks", &one, 1, NULL, NULL, 300, NULL));
    assert_non_null (strstr (zf_client_last_error (client), "no answer from the broker yet"));
    zf_id_t id = zf_id_random ();
    zf_request_t *forgotten = zf_client_item_request (client, &id, 200, NULL);
    zf_request_destroy (&forgotten);
    zf_request_t *item = zf_client_item_request (client, &id, 300, NULL);
    zf_request_t *result = zf_client_result_request (client, &id, 0, 100, NULL);
    zf_request_t *first = s_answered (client);
    zf_request_t *second = s_answered (client);
    assert_ptr_equal (first, result); // 100 ms after asking, before the item's 300
    assert_ptr_equal (second, item);
    assert_int_equal (zf_request_outcome (result), ZF_REQUEST_TIMEOUT);
    assert_string_equal (zf_request_error (result), "the broker did not answer in time");
    assert_int_equal (zf_request_outcome (item), ZF_REQUEST_TIMEOUT);
    assert_null (zf_client_answered (client));
    zf_request_destroy (&item);
    zf_request_destroy (&result);
    zf_client_destroy (&client);
}

static void
test_a_full_window_says_so (void **state)
{
    // Puts past the broker's window (the items unconfirmed a session may
    // have) are not sent: NULL and the reason, until confirms make room.
    // The broker holds each put to a full queue (small: max-depth 1, its
    // reader not running) until there is room, so none is confirmed.
    s_fixture_t *f = (s_fixture_t *) *state;
    zf_client_t *client = zf_client_new (zf_broker_endpoint (f->broker), "web", NULL, 0);
    s_put (client, "small", 1); // the queue is full now, and the broker's window known
    uint32_t room = zf_client_put_room (client);
    assert_true (room > 0);
    uint8_t one = 1;
    for (uint32_t i = 0; i < room; i++) {
        zf_request_t *put = zf_client_put_request (client, "small", &one, 1, NULL, NULL, -1, NULL);
        assert_non_null (put);
    }
    assert_int_equal (zf_client_put_room (client), 0);
    assert_null (zf_client_put_request (client, "small", &one, 1, NULL, NULL, -1, NULL));
    assert_non_null (strstr (zf_client_last_error (client), "the PUT window is full"));
    zf_client_destroy (&client); // frees the requests it still owns
}

static void
test_a_new_broker_is_asked_again (void **state)
{
    // A question waiting on a broker that goes away is asked again of the
    // broker that comes back on its endpoint (this one without a journal:
    // it knows nothing, and says so at once), long before its timeout.
    (void) state;
    zf_pipeline_t *pipeline = zf_test_pipeline (s_config);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", zf_test_free_port ());
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, endpoint, LOOPBACK, NULL, &err);
    assert_non_null (broker);
    zf_client_t *client = zf_client_new (endpoint, "web", NULL, 0);
    zf_id_t id = s_put (client, "tasks", 1);
    zf_request_t *result = zf_client_result_request (client, &id, 30000, 30000, NULL);
    zf_client_pump (client, 200); // asked, and waiting on the first broker
    assert_int_equal (zf_request_outcome (result), ZF_REQUEST_PENDING);
    zf_broker_destroy (&broker);
    // ZeroMQ closes the old listener in its I/O thread, a moment later:
    // the new broker binds once it has (bounded: 5 s).
    for (int tries = 0; tries < 100 && !broker; tries++)
        if (!(broker = zf_broker_new (pipeline, endpoint, LOOPBACK, NULL, &err)))
            zclock_sleep (50); // bounded: 100 tries
    assert_non_null (broker);
    zf_request_t *answered = NULL;
    for (int i = 0; i < 1500 && !answered; i++) { // 15 s, half its wait
        zf_client_pump (client, 10);
        answered = zf_client_answered (client);
    }
    assert_ptr_equal (answered, result);
    assert_int_equal (zf_request_outcome (result), ZF_REQUEST_DONE);
    zf_result_t *answer = zf_request_take_result (result);
    assert_string_equal (zf_result_state (answer), "unknown");
    assert_true (zf_client_sessions (client) >= 2);
    zf_result_destroy (&answer);
    zf_request_destroy (&result);
    zf_client_destroy (&client);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_answers_come_in_the_order_the_broker_gives_them,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_put_refused_says_why, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_a_control_refused_says_what_kind, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_requests_of_one_turn_share_a_put, s_setup,
                                         s_teardown),
        cmocka_unit_test (test_a_put_stored_in_part_is_never_told_stored_or_refused),
        cmocka_unit_test_setup_teardown (test_a_client_says_why, s_setup, s_teardown),
        cmocka_unit_test (test_no_answer_times_out),
        cmocka_unit_test_setup_teardown (test_a_full_window_says_so, s_setup, s_teardown),
        cmocka_unit_test (test_a_new_broker_is_asked_again),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
