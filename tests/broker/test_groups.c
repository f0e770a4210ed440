/*  Tests of the broker's consumer groups with real sockets: a group that
    no actor declares (a client's) is forgotten once it has had no worker
    for group-expiry, and what it held is let go; every group shows in
    zflow status.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_broker.h"
#include "zf_testkit.h"
#include "zflow.h"

static void
test_stale_group_expires (void **state)
{
    // A client reads jobs once under a name of its own and leaves: its
    // group must not keep every later item (the queue filled at max-depth
    // and stalled); once it has had no worker for group-expiry, it goes.
    zf_pipeline_t *pipeline = zf_test_pipeline ("broker\n"
                                                "    group-expiry = 300ms\n"
                                                "queues\n"
                                                "    jobs\n"
                                                "        max-depth = 20\n" ZF_TEST_SRC_AND_WORK);
    assert_non_null (pipeline);
    zf_error_t err;
    zf_broker_t *broker = zf_broker_new (pipeline, ZF_TEST_LOOPBACK, ZF_TEST_LOOPBACK, NULL, &err);
    if (!broker)
        fail_msg ("broker: %s", err.text);
    const char *endpoint = zf_broker_endpoint (broker);
    zf_client_t *probe = zf_client_new (endpoint, "probe", "jobs", 4);
    size_t size;
    zf_client_resume_point (probe, &size, 5000); // welcomed: its group is there
    zf_client_destroy (&probe);
    zf_client_t *producer = zf_client_new (endpoint, "src", NULL, 0);
    zf_client_t *worker = zf_client_new (endpoint, "work", "jobs", 10);
    enum { N = 100 };
    assert_int_equal (zf_test_put_ints (producer, "jobs", N, NULL), 0);
    zf_client_pump (producer, 0); // sent; the broker admits them as room comes
    int seen[N] = { 0 };
    assert_int_equal (zf_test_take (worker, N, seen, NULL), N);
    ZF_TEST_ASSERT_ONCE (seen, N);
    assert_int_equal (zf_client_flush (producer, 5000), 0);
    // zflow status shows the groups: the declared one, and no probe.
    size_t count;
    zf_group_figures_t *groups = zf_client_groups (producer, &count, 5000);
    assert_non_null (groups);
    bool work = false, stale = false;
    for (size_t i = 0; i < count; i++) {
        work |= streq (groups[i].name, "work") && groups[i].declared && groups[i].workers == 1;
        stale |= streq (groups[i].name, "probe");
    }
    free (groups);
    assert_true (work);
    assert_false (stale);
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_stale_group_expires),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
