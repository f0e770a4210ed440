/*  Tests of what the broker gives task workers and the clients that
    follow their tasks, with real sockets: the input queue's timeout at
    WELCOME, a failure's detail beside its reason, a task's progress, and
    why a root was cancelled. Workers here are raw DEALERs speaking ZFP, as
    a worker in another language would; clients use libzflow.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_broker.h"
#include "zf_mp.h"
#include "zf_proto.h"
#include "zf_testkit.h"
#include "zflow.h"

#define LOOPBACK ZF_TEST_LOOPBACK

typedef struct {
    zf_pipeline_t *pipeline; // the config
    zf_broker_t *broker;     // running on it
    const char *endpoint;    // its ROUTER
} s_fixture_t;

//  Messages a peer received while it waited for another command (a retry
//  may be delivered before the REPORT asked for just before it): kept for
//  the s_recv that waits for them.
typedef struct {
    zsock_t *sock;
    zf_command_t command;
    zmsg_t *msg;
} s_held_t;

static s_held_t s_held[16];
static size_t s_nheld;

//  Drops every held message: at the end of each test.
static void
s_drop_held (void)
{
    for (size_t i = 0; i < s_nheld; i++)
        zmsg_destroy (&s_held[i].msg);
    s_nheld = 0;
}

//  The held message of command on sock, if any, taken out of the list.
static zmsg_t *
s_take_held (zsock_t *sock, zf_command_t command)
{
    for (size_t i = 0; i < s_nheld; i++)
        if (s_held[i].sock == sock && s_held[i].command == command) {
            zmsg_t *msg = s_held[i].msg;
            memmove (&s_held[i], &s_held[i + 1], (s_nheld - i - 1) * sizeof s_held[0]);
            s_nheld--;
            return msg;
        }
    return NULL;
}

static s_fixture_t *
s_start (const char *config)
{
    s_fixture_t *f = (s_fixture_t *) zmalloc (sizeof (s_fixture_t));
    f->pipeline = zf_test_pipeline (config);
    assert_non_null (f->pipeline);
    zf_error_t err;
    f->broker = zf_broker_new (f->pipeline, LOOPBACK, LOOPBACK, NULL, &err);
    if (!f->broker)
        fail_msg ("broker: %s", err.text);
    f->endpoint = zf_broker_endpoint (f->broker);
    return f;
}

static void
s_stop (s_fixture_t **f_p)
{
    s_fixture_t *f = *f_p;
    zf_broker_destroy (&f->broker);
    zf_pipeline_destroy (&f->pipeline);
    free (f);
    s_drop_held ();
    *f_p = NULL;
}

//  Sends p on sock.
static void
s_send (zsock_t *sock, zf_proto_t *p)
{
    zf_error_t err;
    if (zf_proto_send (p, zsock_resolve (sock), NULL, &err))
        fail_msg ("send: %s", err.text);
}

//  Receives into p the next message of command on sock (within 5 s),
//  answering the broker's PINGs on the way and holding any other message
//  for a later s_recv.
static void
s_recv (zsock_t *sock, zf_proto_t *p, zf_command_t command)
{
    zf_error_t err;
    zmsg_t *held = s_take_held (sock, command);
    if (held) {
        if (zf_proto_decode (p, &held, &err))
            fail_msg ("bad message: %s", err.text);
        return;
    }
    for (int i = 0; i < 100; i++) {
        zmsg_t *msg = zmsg_recv (sock);
        if (!msg)
            fail_msg ("no %s within 5 s", zf_proto_command_name (command));
        zmsg_t *copy = zmsg_dup (msg);
        if (zf_proto_decode (p, &msg, &err))
            fail_msg ("bad message: %s", err.text);
        if (p->command == command) {
            zmsg_destroy (&copy);
            return;
        }
        if (p->command == ZF_PING) {
            zmsg_destroy (&copy);
            zf_proto_t *pong = zf_proto_new ();
            zf_proto_reset (pong, ZF_PONG);
            s_send (sock, pong);
            zf_proto_destroy (&pong);
        }
        else if (p->command == ZF_ERROR) {
            zmsg_destroy (&copy);
            fail_msg ("ERROR %s: %s", p->code, p->reason);
        }
        else if (s_nheld < sizeof s_held / sizeof s_held[0])
            s_held[s_nheld++] = (s_held_t){ sock, p->command, copy };
        else
            fail_msg ("more than %zu messages held", s_nheld);
    }
    fail_msg ("no %s", zf_proto_command_name (command));
}

//  A raw worker: a DEALER that said HELLO as name, reading input (or
//  nothing); the WELCOME it got in welcome.
static zsock_t *
s_peer (const char *endpoint, const char *name, const char *input, zf_proto_t *welcome)
{
    zsock_t *sock = zsock_new_dealer (endpoint);
    zsock_set_rcvtimeo (sock, 5000);
    zf_proto_t *hello = zf_proto_new ();
    zf_proto_reset (hello, ZF_HELLO);
    snprintf (hello->name, sizeof hello->name, "%s", name);
    if (input) {
        snprintf (hello->inputs[0], sizeof hello->inputs[0], "%s", input);
        hello->ninputs = 1;
    }
    s_send (sock, hello);
    zf_proto_destroy (&hello);
    s_recv (sock, welcome, ZF_WELCOME);
    return sock;
}

static void
test_welcome_says_the_timeout (void **state)
{
    // A worker of a queue is told the queue's timeout, so that it can
    // give up on an item before the broker takes it back; a client that
    // reads nothing, or a worker of a queue without one, is told none.
    s_fixture_t *f = s_start ("queues\n"
                              "    jobs\n"
                              "        timeout = 2500ms\n"
                              "    slow\n"
                              "        timeout = 0\n"
                              "actors\n"
                              "    src\n"
                              "        kind = producer\n"
                              "        source = seq:1\n"
                              "        output = jobs\n"
                              "    work\n"
                              "        kind = processor\n"
                              "        command = cat\n"
                              "        input = jobs\n"
                              "        output = slow\n"
                              "    store\n"
                              "        kind = sink\n"
                              "        input = slow\n"
                              "        target = null\n");
    zf_proto_t *welcome = zf_proto_new ();
    zsock_t *work = s_peer (f->endpoint, "work", "jobs", welcome);
    assert_int_equal (welcome->timeout, 2500);
    zsock_t *store = s_peer (f->endpoint, "store", "slow", welcome);
    assert_int_equal (welcome->timeout, 0);
    zsock_t *client = s_peer (f->endpoint, "web", NULL, welcome);
    assert_int_equal (welcome->timeout, 0);
    // A queue the pipeline does not name has the default: 10 minutes.
    zsock_t *other = s_peer (f->endpoint, "probe", "elsewhere", welcome);
    assert_int_equal (welcome->timeout, 600000);
    zsock_destroy (&other);
    zsock_destroy (&client);
    zsock_destroy (&store);
    zsock_destroy (&work);
    zf_proto_destroy (&welcome);
    s_stop (&f);
}

//  A task pipeline: tasks (two attempts, 10 ms apart) worked on by work,
//  whose outputs are kept as results.
static const char *s_tasks = "pipeline\n"
                             "    results = answers\n"
                             "queues\n"
                             "    tasks\n"
                             "        external = true\n"
                             "        max-attempts = 2\n"
                             "        retry-base = 10ms\n"
                             "        retry-max = 10ms\n"
                             "actors\n"
                             "    work\n"
                             "        kind = exec\n"
                             "        command = /bin/true\n"
                             "        input = tasks\n"
                             "        output = answers\n";

//  A raw worker of tasks with credit for n items.
static zsock_t *
s_worker (const char *endpoint, uint32_t n)
{
    zf_proto_t *p = zf_proto_new ();
    zsock_t *sock = s_peer (endpoint, "work", "tasks", p);
    zf_proto_reset (p, ZF_CREDIT);
    p->credit = n;
    s_send (sock, p);
    zf_proto_destroy (&p);
    return sock;
}

//  The next item delivered to the raw worker sock: its id, which it
//  checks is id when given, and its attempt.
static uint32_t
s_delivered (zsock_t *sock, const zf_id_t *id)
{
    zf_proto_t *p = zf_proto_new ();
    s_recv (sock, p, ZF_DELIVER);
    assert_int_equal (p->nitems, 1);
    if (id)
        assert_true (zf_id_eq (&p->items[0].id, id));
    uint32_t attempt = p->items[0].attempt;
    zf_proto_destroy (&p);
    return attempt;
}

//  The REPORT the broker gives sock on id: a barrier too, since a session's
//  messages are handled in order.
static void
s_ask (zsock_t *sock, const zf_id_t *id, zf_proto_t *report)
{
    zf_proto_reset (report, ZF_STATUS);
    report->id = *id;
    s_send (sock, report);
    s_recv (sock, report, ZF_REPORT);
}

//  Sends NACK of id with reason and detail.
static void
s_nack (zsock_t *sock, const zf_id_t *id, const char *reason, const char *detail)
{
    zf_proto_t *p = zf_proto_new ();
    zf_proto_reset (p, ZF_NACK);
    p->id = *id;
    snprintf (p->reason, sizeof p->reason, "%s", reason);
    snprintf (p->detail, sizeof p->detail, "%s", detail);
    s_send (sock, p);
    zf_proto_destroy (&p);
}

static void
test_a_failure_keeps_its_detail (void **state)
{
    // A task fails with a traceback (the longest allowed, 8 KiB): a client
    // reads it beside the reason while the task is retried, in the root's
    // result once it is dead, and on its dead letter. One byte more is
    // refused with ERROR too-big, and the worker goes on.
    s_fixture_t *f = s_start (s_tasks);
    zf_client_t *client = zf_client_new (f->endpoint, "web", NULL, 0);
    zf_id_t task;
    assert_int_equal (zf_client_put_str (client, "tasks", "resize", &task), 0);
    assert_int_equal (zf_client_flush (client, 5000), 0);
    zsock_t *worker = s_worker (f->endpoint, 1);
    assert_int_equal (s_delivered (worker, &task), 1);

    // A traceback of exactly ZF_DETAIL_MAX bytes.
    char *traceback = (char *) malloc (ZF_DETAIL_MAX + 1);
    memset (traceback, ' ', ZF_DETAIL_MAX);
    const char *head = "Traceback (most recent call last):\n  File \"task.py\", line 7\n";
    memcpy (traceback, head, strlen (head));
    const char *tail = "\nValueError: bad input";
    memcpy (traceback + ZF_DETAIL_MAX - strlen (tail), tail, strlen (tail));
    traceback[ZF_DETAIL_MAX] = 0;

    // One byte past the limit: refused, the item still held.
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    zf_mp_pack_cstr (&pk, "id");
    msgpack_pack_bin (&pk, ZF_ID_SIZE);
    msgpack_pack_bin_body (&pk, task.bytes, ZF_ID_SIZE);
    zf_mp_pack_cstr (&pk, "reason");
    zf_mp_pack_cstr (&pk, "ValueError: bad input");
    zf_mp_pack_cstr (&pk, "detail");
    msgpack_pack_str (&pk, ZF_DETAIL_MAX + 1);
    msgpack_pack_str_body (&pk, traceback, ZF_DETAIL_MAX);
    msgpack_pack_str_body (&pk, "!", 1);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "NACK");
    zmsg_addmem (msg, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    zmsg_send (&msg, worker);
    zf_proto_t *p = zf_proto_new ();
    s_recv (worker, p, ZF_ERROR);
    assert_string_equal (p->code, "too-big");
    assert_non_null (
        strstr (p->reason, "NACK: field 'detail': string of 8193 bytes, at most 8192"));
    s_ask (worker, &task, p);
    assert_string_equal (p->state, "delivered");

    // The whole 8 KiB: kept, and given back whole.
    // (Its backoff is 0 to 10 ms: it may be delivered again by now.)
    s_nack (worker, &task, "ValueError: bad input", traceback);
    s_ask (worker, &task, p);
    assert_true (streq (p->state, "retrying") || streq (p->state, "delivered"));
    assert_int_equal (strlen (p->detail), ZF_DETAIL_MAX);
    zf_result_t *item = zf_client_item (client, &task, 5000);
    assert_non_null (item);
    assert_int_equal (zf_result_attempts (item),
                      streq (zf_result_state (item), "retrying") ? 1 : 2);
    assert_string_equal (zf_result_reason (item), "ValueError: bad input");
    assert_string_equal (zf_result_detail (item), traceback);
    zf_result_destroy (&item);

    // The last attempt fails with another: that one is the task's account.
    assert_int_equal (s_delivered (worker, &task), 2);
    s_nack (worker, &task, "KeyError: 'size'",
            "Traceback (most recent call last):\n  File "
            "\"task.py\", line 9\nKeyError: 'size'");
    s_ask (worker, &task, p);
    assert_string_equal (p->state, "dead");
    zf_result_t *result = zf_client_result (client, &task, 0, 5000);
    assert_non_null (result);
    assert_string_equal (zf_result_state (result), "dead");
    assert_string_equal (zf_result_queue (result), "tasks");
    assert_int_equal (zf_result_attempts (result), 2);
    assert_string_equal (zf_result_reason (result), "KeyError: 'size'");
    assert_string_equal (zf_result_detail (result),
                         "Traceback (most recent call last):\n  File \"task.py\", line "
                         "9\nKeyError: 'size'");
    zf_result_destroy (&result);
    // Its dead letter, waiting in tasks.dead, says the same.
    zf_id_t copy = zf_id_child (&task, UINT32_MAX);
    item = zf_client_item (client, &copy, 5000);
    assert_non_null (item);
    assert_string_equal (zf_result_state (item), "queued");
    assert_string_equal (zf_result_queue (item), "tasks.dead");
    assert_string_equal (zf_result_reason (item), "KeyError: 'size'");
    assert_non_null (strstr (zf_result_detail (item), "line 9\nKeyError"));
    zf_result_destroy (&item);

    free (traceback);
    zf_proto_destroy (&p);
    zsock_destroy (&worker);
    zf_client_destroy (&client);
    s_stop (&f);
}

//  The raw worker sock puts one item id to queue, a child of parent in the
//  lineage of root, and acks parent once the PUT is confirmed.
static void
s_emit_and_ack (zsock_t *sock, const zf_id_t *id, const char *queue, const zf_id_t *parent,
                const zf_id_t *root)
{
    zf_proto_t *p = zf_proto_new ();
    zf_proto_reset (p, ZF_PUT);
    p->seq = 1;
    zframe_t *body = zframe_new ("\x2a", 1);
    zf_env_t *env = zf_proto_add_item (p, &body);
    env->id = *id;
    snprintf (env->queue, sizeof env->queue, "%s", queue);
    env->ts = zclock_time ();
    env->parent = *parent;
    env->root = *root;
    s_send (sock, p);
    s_recv (sock, p, ZF_CONFIRM);
    assert_int_equal (p->accepted, 1);
    zf_proto_reset (p, ZF_ACK);
    p->ids[0] = *parent;
    p->nids = 1;
    s_send (sock, p);
    zf_proto_destroy (&p);
}

//  Sends PROGRESS of id.
static void
s_progress (zsock_t *sock, const zf_id_t *id, uint32_t progress, const char *note)
{
    zf_proto_t *p = zf_proto_new ();
    zf_proto_reset (p, ZF_PROGRESS);
    p->id = *id;
    p->progress = progress;
    snprintf (p->note, sizeof p->note, "%s", note);
    s_send (sock, p);
    zf_proto_destroy (&p);
}

static void
test_progress_of_a_running_task (void **state)
{
    // A task split in two steps: each worker reports how far it is, and a
    // client asking about the task (or an item of it) reads the latest
    // report of its lineage while it runs, nothing once it is over. A
    // report from a worker that does not hold the item is dropped without
    // an ERROR; a progress past 1000 is refused, and the worker goes on.
    s_fixture_t *f = s_start ("pipeline\n"
                              "    results = answers\n"
                              "queues\n"
                              "    tasks\n"
                              "        external = true\n"
                              "actors\n"
                              "    split\n"
                              "        kind = exec\n"
                              "        command = /bin/true\n"
                              "        input = tasks\n"
                              "        output = steps\n"
                              "    step\n"
                              "        kind = exec\n"
                              "        command = /bin/true\n"
                              "        input = steps\n"
                              "        output = answers\n");
    zf_client_t *client = zf_client_new (f->endpoint, "web", NULL, 0);
    zf_id_t task;
    assert_int_equal (zf_client_put_str (client, "tasks", "album", &task), 0);
    assert_int_equal (zf_client_flush (client, 5000), 0);
    zf_proto_t *p = zf_proto_new ();
    zsock_t *split = s_peer (f->endpoint, "split", "tasks", p);
    zf_proto_reset (p, ZF_CREDIT);
    p->credit = 1;
    s_send (split, p);
    assert_int_equal (s_delivered (split, &task), 1);
    s_progress (split, &task, 100, "splitting");
    s_ask (split, &task, p);
    zf_result_t *item = zf_client_item (client, &task, 5000);
    assert_string_equal (zf_result_state (item), "delivered");
    assert_int_equal (zf_result_progress (item), 100);
    assert_string_equal (zf_result_note (item), "splitting");
    zf_result_destroy (&item);

    zf_id_t part = zf_id_child (&task, 0);
    s_emit_and_ack (split, &part, "steps", &task, &task);
    zsock_t *step = s_peer (f->endpoint, "step", "steps", p);
    zf_proto_reset (p, ZF_CREDIT);
    p->credit = 1;
    s_send (step, p);
    assert_int_equal (s_delivered (step, &part), 1);
    s_progress (step, &part, 420, "resizing images");
    s_ask (step, &part, p);
    assert_int_equal (p->progress, 420);
    zf_result_t *result = zf_client_result (client, &task, 0, 5000);
    assert_string_equal (zf_result_state (result), "running");
    assert_int_equal (zf_result_progress (result), 420);
    assert_string_equal (zf_result_note (result), "resizing images");
    zf_result_destroy (&result);

    // Another worker of the group reports on the item it does not hold:
    // dropped, no ERROR (the next message it gets is its REPORT).
    zsock_t *stray = s_peer (f->endpoint, "step", "steps", p);
    s_progress (stray, &part, 990, "not mine");
    s_ask (stray, &task, p);
    assert_int_equal (p->progress, 420);
    assert_string_equal (p->note, "resizing images");
    // 1001 thousandths: ERROR value; the worker goes on.
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "PROGRESS");
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    zf_mp_pack_cstr (&pk, "id");
    msgpack_pack_bin (&pk, ZF_ID_SIZE);
    msgpack_pack_bin_body (&pk, part.bytes, ZF_ID_SIZE);
    zf_mp_pack_cstr (&pk, "progress");
    msgpack_pack_uint32 (&pk, 1001);
    zmsg_addmem (msg, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    zmsg_send (&msg, step);
    s_recv (step, p, ZF_ERROR);
    assert_string_equal (p->code, "value");
    assert_non_null (strstr (p->reason, "PROGRESS: progress 1001, at most 1000"));
    s_progress (step, &part, 1000, "");
    s_ask (step, &task, p);
    assert_int_equal (p->progress, 1000);
    assert_string_equal (p->note, "");

    // Done: the task is over, and says no progress.
    zf_id_t answer = zf_id_child (&part, 0);
    s_emit_and_ack (step, &answer, "answers", &part, &task);
    result = zf_client_result (client, &task, 5000, 5000);
    assert_string_equal (zf_result_state (result), "done");
    assert_int_equal (zf_result_count (result), 1);
    assert_int_equal (zf_result_progress (result), 0);
    assert_string_equal (zf_result_note (result), "");
    zf_result_destroy (&result);

    zsock_destroy (&stray);
    zsock_destroy (&step);
    zsock_destroy (&split);
    zf_proto_destroy (&p);
    zf_client_destroy (&client);
    s_stop (&f);
}

static void
test_a_cancel_says_why (void **state)
{
    // A task cancelled while a worker has it, and one cancelled while it
    // waits, read cancelled with the cancel's reason (or "cancelled by a
    // client"), in their results and in the DONE of the client tracking
    // them. A cancel of a task that is over, or of an id never put,
    // changes nothing: done stays done, unknown unknown.
    s_fixture_t *f = s_start (s_tasks);
    zf_client_t *client = zf_client_new (f->endpoint, "web", NULL, 0);
    zf_client_track (client, true);
    zf_id_t running, waiting, finished;
    assert_int_equal (zf_client_put_str (client, "tasks", "running", &running), 0);
    assert_int_equal (zf_client_flush (client, 5000), 0);
    zsock_t *worker = s_worker (f->endpoint, 1);
    assert_int_equal (s_delivered (worker, &running), 1);
    zf_put_opts_t later = { .delay_ms = 3600 * 1000 };
    assert_int_equal (zf_client_put_with (client, "tasks", "\xa1w", 2, &later, &waiting), 0);
    assert_int_equal (zf_client_flush (client, 5000), 0);

    zf_client_cancel (client, &running, "no longer wanted");
    zf_proto_t *p = zf_proto_new ();
    s_recv (worker, p, ZF_CANCEL);
    assert_true (zf_id_eq (&p->id, &running));
    zf_proto_reset (p, ZF_ACK); // a worker told drops the item and acks it
    p->ids[0] = running;
    p->nids = 1;
    s_send (worker, p);
    zf_result_t *result = zf_client_next_result (client, 5000);
    assert_non_null (result);
    assert_true (zf_id_eq (zf_result_root (result), &running));
    assert_string_equal (zf_result_state (result), "cancelled");
    assert_string_equal (zf_result_reason (result), "no longer wanted");
    zf_result_destroy (&result);
    result = zf_client_result (client, &running, 0, 5000);
    assert_string_equal (zf_result_state (result), "cancelled");
    assert_string_equal (zf_result_reason (result), "no longer wanted");
    assert_string_equal (zf_result_queue (result), "");
    zf_result_destroy (&result);
    result = zf_client_item (client, &running, 5000);
    assert_string_equal (zf_result_state (result), "cancelled");
    assert_string_equal (zf_result_reason (result), "no longer wanted");
    zf_result_destroy (&result);

    zf_client_cancel (client, &waiting, NULL);
    result = zf_client_result (client, &waiting, 0, 5000);
    assert_string_equal (zf_result_state (result), "cancelled");
    assert_string_equal (zf_result_reason (result), "cancelled by a client");
    zf_result_destroy (&result);

    // Over already: a cancel changes nothing.
    assert_int_equal (zf_client_put_str (client, "tasks", "finished", &finished), 0);
    assert_int_equal (zf_client_flush (client, 5000), 0);
    assert_int_equal (s_delivered (worker, &finished), 1);
    zf_proto_reset (p, ZF_ACK);
    p->ids[0] = finished;
    p->nids = 1;
    s_send (worker, p);
    s_ask (worker, &finished, p);
    assert_string_equal (p->state, "done");
    zf_client_cancel (client, &finished, "too late");
    result = zf_client_result (client, &finished, 0, 5000);
    assert_string_equal (zf_result_state (result), "done");
    assert_string_equal (zf_result_reason (result), "");
    zf_result_destroy (&result);
    char state_text[32];
    assert_int_equal (zf_client_status (client, &finished, state_text, sizeof state_text, 5000), 0);
    assert_string_equal (state_text, "done");
    zf_id_t never = zf_id_random ();
    zf_client_cancel (client, &never, "who?");
    result = zf_client_result (client, &never, 0, 5000);
    assert_string_equal (zf_result_state (result), "unknown");
    assert_string_equal (zf_result_reason (result), "");
    zf_result_destroy (&result);
    // The tracker heard of the two cancelled, and of the finished one as
    // done, nothing more.
    int dones = 0;
    while ((result = zf_client_next_result (client, 300))) {
        if (zf_id_eq (zf_result_root (result), &finished))
            assert_string_equal (zf_result_state (result), "done");
        else {
            assert_true (zf_id_eq (zf_result_root (result), &waiting));
            assert_string_equal (zf_result_reason (result), "cancelled by a client");
        }
        dones++;
        zf_result_destroy (&result);
    }
    assert_int_equal (dones, 2);
    zf_proto_destroy (&p);
    zsock_destroy (&worker);
    zf_client_destroy (&client);
    s_stop (&f);
}

static void
test_a_root_that_is_no_item (void **state)
{
    // Two tasks put with the same root, an id no item has (a group's):
    // asked about by that id, as an item or as a root, it reads running
    // while they are at work, then what became of them: here, cancelled.
    s_fixture_t *f = s_start (s_tasks);
    zf_client_t *client = zf_client_new (f->endpoint, "web", NULL, 0);
    zf_id_t group = zf_id_random ();
    zf_put_opts_t opts = { .root = &group };
    assert_int_equal (zf_client_put_with (client, "tasks", "\x01", 1, &opts, NULL), 0);
    assert_int_equal (zf_client_put_with (client, "tasks", "\x02", 1, &opts, NULL), 0);
    assert_int_equal (zf_client_flush (client, 5000), 0);
    zsock_t *worker = s_worker (f->endpoint, 1);
    zf_proto_t *p = zf_proto_new ();
    s_recv (worker, p, ZF_DELIVER);
    zf_id_t held = p->items[0].id;
    char state_text[32];
    assert_int_equal (zf_client_status (client, &group, state_text, sizeof state_text, 5000), 0);
    assert_string_equal (state_text, "running");
    zf_result_t *result = zf_client_result (client, &group, 0, 5000);
    assert_string_equal (zf_result_state (result), "running");
    zf_result_destroy (&result);
    zf_client_cancel (client, &group, "the group is not wanted");
    s_recv (worker, p, ZF_CANCEL);
    assert_true (zf_id_eq (&p->id, &group));
    zf_proto_reset (p, ZF_ACK); // told, it drops the item and acks it
    p->ids[0] = held;
    p->nids = 1;
    s_send (worker, p);
    zf_proto_destroy (&p);
    result = zf_client_result (client, &group, 5000, 5000);
    assert_string_equal (zf_result_state (result), "cancelled");
    assert_string_equal (zf_result_reason (result), "the group is not wanted");
    zf_result_destroy (&result);
    assert_int_equal (zf_client_status (client, &group, state_text, sizeof state_text, 5000), 0);
    assert_string_equal (state_text, "cancelled");
    zsock_destroy (&worker);
    zf_client_destroy (&client);
    s_stop (&f);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_welcome_says_the_timeout),
        cmocka_unit_test (test_a_failure_keeps_its_detail),
        cmocka_unit_test (test_progress_of_a_running_task),
        cmocka_unit_test (test_a_cancel_says_why),
        cmocka_unit_test (test_a_root_that_is_no_item),
    };
    return cmocka_run_group_tests (tests, NULL, zf_test_kill_all);
}
