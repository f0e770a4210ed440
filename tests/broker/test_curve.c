/*  CURVE between actors and the broker, over tcp: an allowed actor and
    client work; a client whose key is not allowed gets nothing and the
    broker reports it as an event; a plain-text client cannot connect; a
    broker open beyond loopback without CURVE needs --insecure. Certificates
    are made with zflow keygen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_curve.h"
#include "zf_json.h"
#include "zf_testkit.h"

#include <signal.h>
#include <sys/wait.h>

static char s_dir[256]; // the test's folder: p.zpl, certs/, clients/

static int
s_setup (void **state)
{
    return zf_test_dir_new (s_dir, sizeof s_dir, "curve");
}

static int
s_teardown (void **state)
{
    unsetenv (ZF_CURVE_CERT_ENV);
    unsetenv (ZF_CURVE_SERVER_ENV);
    zf_test_kill_all (state);
    return zf_test_dir_remove (s_dir);
}

static void
s_keygen (const char *name)
{
    char dir[300];
    snprintf (dir, sizeof dir, "%s/certs", s_dir);
    zf_test_result_t r = zf_test_zflow (NULL, "keygen", name, "--dir", dir, NULL);
    assert_int_equal (r.status, 0);
    assert_non_null (strstr (r.out, "public key "));
    zf_test_result_free (&r);
}

//  Runs zflow put ENDPOINT jobs TEXT as the client cert (NULL: plain).
static zf_test_result_t
s_put (const char *endpoint, const char *cert, const char *text)
{
    char cert_path[300], server_path[300];
    snprintf (cert_path, sizeof cert_path, "%s/certs/%s_secret", s_dir, cert ? cert : "");
    snprintf (server_path, sizeof server_path, "%s/certs/broker", s_dir);
    if (cert) {
        setenv (ZF_CURVE_CERT_ENV, cert_path, 1);
        setenv (ZF_CURVE_SERVER_ENV, server_path, 1);
    }
    else {
        unsetenv (ZF_CURVE_CERT_ENV);
        unsetenv (ZF_CURVE_SERVER_ENV);
    }
    zf_test_result_t r =
        zf_test_zflow (NULL, "put", endpoint, "jobs", text, "--timeout", "2s", NULL);
    unsetenv (ZF_CURVE_CERT_ENV);
    unsetenv (ZF_CURVE_SERVER_ENV);
    return r;
}

static void
test_curve (void **state)
{
    s_keygen ("broker");
    s_keygen ("actor");
    s_keygen ("stranger");
    // The broker lets in the certificates in clients/: the actor's only.
    char *cert = zf_test_slurp (s_dir, "certs/actor");
    assert_non_null (cert);
    assert_int_equal (zsys_dir_create ("%s/clients", s_dir), 0);
    assert_int_equal (zf_test_write (s_dir, "clients/actor", cert), 0);
    free (cert);
    zf_pipeline_t *pipeline;
    zf_broker_t *broker = zf_test_broker (s_dir,
                                          "broker\n"
                                          "    curve-secret = certs/broker_secret\n"
                                          "    curve-clients = clients\n"
                                          "queues\n"
                                          "    jobs\n"
                                          "        external = true\n"
                                          "actors\n"
                                          "    store\n"
                                          "        kind = sink\n"
                                          "        curve-secret = certs/actor_secret\n"
                                          "        input = jobs\n"
                                          "        target = file:out.jsonl\n",
                                          &pipeline);
    assert_non_null (broker);
    const char *endpoint = zf_broker_endpoint (broker);
    assert_non_null (strstr (endpoint, "tcp://127.0.0.1:"));

    // Refusals are events: watch them with the allowed certificate.
    char path[300];
    snprintf (path, sizeof path, "%s/certs/actor_secret", s_dir);
    setenv (ZF_CURVE_CERT_ENV, path, 1);
    snprintf (path, sizeof path, "%s/certs/broker", s_dir);
    setenv (ZF_CURVE_SERVER_ENV, path, 1);
    zf_error_t err;
    zsock_t *events = zf_curve_sub (zf_broker_events (broker), "auth.", &err);
    assert_non_null (events);
    zsock_set_rcvtimeo (events, 10000);
    unsetenv (ZF_CURVE_CERT_ENV);
    unsetenv (ZF_CURVE_SERVER_ENV);

    // The sink, an actor with its own certificate (from the config).
    pid_t sink = zf_test_actor (s_dir, broker, "store");
    zf_test_result_t r = s_put (endpoint, "actor", "{\"n\":1}");
    if (r.status != 0)
        fail_msg ("an allowed client: exit %d: %s", r.status, r.err);
    zf_test_result_free (&r);
    static int seen[4];
    assert_int_equal (zf_test_wait_lines (s_dir, "out.jsonl", seen, 1, 1), 1);

    // A key the broker does not know: nothing is confirmed, and the broker
    // says whom it refused.
    r = s_put (endpoint, "stranger", "{\"n\":2}");
    assert_int_equal (r.status, 1);
    if (!strstr (r.err, "no broker answered at") || !strstr (r.err, "CURVE keys"))
        fail_msg ("a refused key should hear of no broker, and of CURVE: %s", r.err);
    zf_test_result_free (&r);
    char *stranger = zf_test_slurp (s_dir, "certs/stranger");
    char *topic = NULL;
    zframe_t *body = NULL;
    assert_int_equal (zsock_recv (events, "sf", &topic, &body), 0);
    assert_string_equal (topic, "auth.refused");
    char *json = zf_msgpack_to_json (zframe_data (body), zframe_size (body), &err);
    assert_non_null (json);
    assert_non_null (strstr (json, "is not among the certificates in"));
    // The refused key is the stranger's public key, as its certificate has it.
    const char *key = strstr (json, "\"key\":\"") + 7;
    char key_txt[41];
    snprintf (key_txt, sizeof key_txt, "%s", key);
    assert_non_null (strstr (stranger, key_txt));
    free (json);
    zstr_free (&topic);
    zframe_destroy (&body);
    free (stranger);

    // A plain-text client cannot connect either.
    r = s_put (endpoint, NULL, "{\"n\":3}");
    assert_int_equal (r.status, 1);
    if (!strstr (r.err, "no broker answered at"))
        fail_msg ("a plain-text client should hear of no broker: %s", r.err);
    zf_test_result_free (&r);

    // Only the allowed item reached the sink.
    kill (sink, SIGTERM);
    assert_int_equal (WEXITSTATUS (zf_test_reap (sink, 10000)), 0);
    char *out = zf_test_slurp (s_dir, "out.jsonl");
    assert_non_null (out);
    assert_non_null (strstr (out, "{\"n\":1}"));
    assert_null (strstr (out, "{\"n\":2}"));
    assert_null (strstr (out, "{\"n\":3}"));
    free (out);
    zsock_destroy (&events);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

//  A source and a sink, after a broker section.
#define ACTORS                                                                                     \
    "actors\n"                                                                                     \
    "    nums\n"                                                                                   \
    "        kind = producer\n"                                                                    \
    "        source = seq:1\n"                                                                     \
    "        output = numbers\n"                                                                   \
    "    store\n"                                                                                  \
    "        kind = sink\n"                                                                        \
    "        input = numbers\n"                                                                    \
    "        target = null\n"

static void
test_open_broker_needs_insecure (void **state)
{
    // The refusal comes before anything is bound.
    assert_int_equal (zf_test_write (s_dir, "p.zpl",
                                     "broker\n"
                                     "    endpoint = tcp://0.0.0.0:5670\n" ACTORS),
                      0);
    char path[300];
    snprintf (path, sizeof path, "%s/p.zpl", s_dir);
    zf_test_result_t r = zf_test_zflow (NULL, "broker", path, NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "tcp://0.0.0.0:5670 is open to other machines without CURVE"));
    assert_non_null (strstr (r.err, "--insecure"));
    zf_test_result_free (&r);
    r = zf_test_zflow (NULL, "run", path, "--no-journal", NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "is open to other machines without CURVE"));
    zf_test_result_free (&r);

    // CURVE named but its files missing: the error names them.
    assert_int_equal (zf_test_write (s_dir, "q.zpl",
                                     "broker\n"
                                     "    curve-secret = nowhere_secret\n"
                                     "    curve-clients = clients\n" ACTORS),
                      0);
    snprintf (path, sizeof path, "%s/q.zpl", s_dir);
    r = zf_test_zflow (NULL, "broker", path, NULL);
    assert_int_equal (r.status, 1);
    assert_non_null (strstr (r.err, "cannot read the certificate"));
    assert_non_null (strstr (r.err, "nowhere_secret"));
    zf_test_result_free (&r);
    // And curve-secret without curve-clients is a config error.
    assert_int_equal (zf_test_write (s_dir, "q.zpl",
                                     "broker\n"
                                     "    curve-secret = certs/broker_secret\n" ACTORS),
                      0);
    r = zf_test_zflow (NULL, "validate", path, NULL);
    assert_int_equal (r.status, 2);
    assert_non_null (strstr (r.err, "curve-secret needs curve-clients"));
    zf_test_result_free (&r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_curve, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_open_broker_needs_insecure, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
