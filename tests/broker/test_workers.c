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
#include "zf_proto.h"
#include "zf_testkit.h"
#include "zflow.h"

#define LOOPBACK ZF_TEST_LOOPBACK

typedef struct {
    zf_pipeline_t *pipeline; // the config
    zf_broker_t *broker;     // running on it
    const char *endpoint;    // its ROUTER
} s_fixture_t;

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
//  answering the broker's PINGs on the way.
static void
s_recv (zsock_t *sock, zf_proto_t *p, zf_command_t command)
{
    for (int i = 0; i < 100; i++) {
        zmsg_t *msg = zmsg_recv (sock);
        if (!msg)
            fail_msg ("no %s within 5 s", zf_proto_command_name (command));
        zf_error_t err;
        if (zf_proto_decode (p, &msg, &err))
            fail_msg ("bad message: %s", err.text);
        if (p->command == command)
            return;
        if (p->command == ZF_PING) {
            zf_proto_t *pong = zf_proto_new ();
            zf_proto_reset (pong, ZF_PONG);
            s_send (sock, pong);
            zf_proto_destroy (&pong);
        }
        else if (p->command == ZF_ERROR)
            fail_msg ("ERROR %s: %s", p->code, p->reason);
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

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_welcome_says_the_timeout),
    };
    return cmocka_run_group_tests (tests, NULL, zf_test_kill_all);
}
