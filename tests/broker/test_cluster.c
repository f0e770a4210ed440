/*  Tests of the replicated broker with real sockets: three brokers of a
    Raft group in this process, each with its own folder, and clients that
    are given all three endpoints. What a leader confirmed survives its
    loss; a follower sends clients to the leader; a group started again
    from its snapshots and logs has every item.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zf_broker.h"
#include "zf_testkit.h"
#include "zflow.h"

#include <unistd.h>

#define LOOPBACK ZF_TEST_LOOPBACK
#define NODES    3

typedef struct {
    char dir[256];                 // the test's folder
    char nodes[256];               // the group's Raft addresses
    char journals[NODES][300];     // each node's folder
    zf_pipeline_t *pipeline;       // shared by the three
    zf_broker_t *brokers[NODES];   // running ones, or NULL
    char endpoints[NODES][256];    // where each one's clients connect
    char all[NODES * 256 + NODES]; // the three, comma-separated
} s_group_t;

//  Starts node i (0-based) on its folder and its endpoint (a free port
//  outside ZeroMQ's tcp://...:* range, which the brokers of the tests that
//  run beside this one take from: a node started again gets it back).
static void
s_start (s_group_t *group, int i)
{
    zf_broker_args_t args = { .pipeline = group->pipeline,
                              .endpoint = group->endpoints[i],
                              .events = LOOPBACK,
                              .journal = group->journals[i],
                              .cluster = group->nodes,
                              .node = i + 1 };
    zf_error_t err;
    group->brokers[i] = zf_broker_start (&args, &err);
    if (!group->brokers[i])
        fail_msg ("node %d: %s", i + 1, err.text);
    snprintf (group->endpoints[i], sizeof group->endpoints[i], "%s",
              zf_broker_endpoint (group->brokers[i]));
}

static void
s_group_start (s_group_t *group, const char *name, const char *config)
{
    memset (group, 0, sizeof *group);
    assert_int_equal (zf_test_dir_new (group->dir, sizeof group->dir, name), 0);
    // Six ports, all different: three for Raft, three for the clients.
    int ports[2 * NODES], count = 0;
    for (int tries = 0; tries < 100 && count < 2 * NODES; tries++) {
        int port = zf_test_free_port ();
        bool taken = port < 0;
        for (int j = 0; j < count; j++)
            taken |= ports[j] == port;
        if (!taken)
            ports[count++] = port;
    }
    assert_int_equal (count, 2 * NODES);
    snprintf (group->nodes, sizeof group->nodes, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", ports[0],
              ports[1], ports[2]);
    group->pipeline = zf_test_pipeline (config);
    for (int i = 0; i < NODES; i++) {
        snprintf (group->journals[i], sizeof group->journals[i], "%s/node%d", group->dir, i + 1);
        snprintf (group->endpoints[i], sizeof group->endpoints[i], "tcp://127.0.0.1:%d",
                  ports[NODES + i]);
        s_start (group, i);
    }
    snprintf (group->all, sizeof group->all, "%s,%s,%s", group->endpoints[0], group->endpoints[1],
              group->endpoints[2]);
}

static void
s_group_stop (s_group_t *group)
{
    for (int i = 0; i < NODES; i++)
        zf_broker_destroy (&group->brokers[i]);
    zf_pipeline_destroy (&group->pipeline);
    zf_test_dir_remove (group->dir);
}

//  Which node a welcomed client is with.
static int
s_node_of (s_group_t *group, zf_client_t *client)
{
    for (int i = 0; i < NODES; i++)
        if (streq (zf_client_broker (client), group->endpoints[i]))
            return i;
    fail_msg ("the client is with %s, none of the group", zf_client_broker (client));
    return -1;
}

//  Puts count numbers from first on, and waits for their CONFIRMs; the
//  ids go to ids[first...] when ids is not NULL.
static void
s_put_ids (zf_client_t *producer, int first, int count, zf_id_t *ids)
{
    for (int i = first; i < first + count; i++) {
        uint8_t body[9];
        size_t size;
        if (i < 128) {
            body[0] = (uint8_t) i;
            size = 1;
        }
        else {
            body[0] = 0xcd; // msgpack uint16
            body[1] = (uint8_t) (i >> 8);
            body[2] = (uint8_t) i;
            size = 3;
        }
        assert_int_equal (zf_client_put (producer, "jobs", body, size, ids ? &ids[i] : NULL), 0);
    }
    assert_int_equal (zf_client_flush (producer, 30000), 0);
}

static void
s_put_range (zf_client_t *producer, int first, int count)
{
    s_put_ids (producer, first, count, NULL);
}

static const char *s_config = "broker\n"
                              "    heartbeat = 100ms\n"
                              "cluster\n"
                              "    election-timeout = 300ms\n" ZF_TEST_SRC_AND_WORK;

static void
test_cluster_failover (void **state)
{
    (void) state;
    // What the leader confirmed survives it: the next leader has it, and
    // the clients move there at once.
    s_group_t group;
    s_group_start (&group, "cluster-failover", s_config);
    enum { N = 300 };
    zf_client_t *producer = zf_client_new (group.all, "src", NULL, 0);
    s_put_range (producer, 0, N);
    int first = s_node_of (&group, producer);
    zf_broker_destroy (&group.brokers[first]);
    s_put_range (producer, N, N); // confirmed by the next leader
    int second = s_node_of (&group, producer);
    assert_int_not_equal (second, first);
    // The first comes back as a follower and catches up; the second goes.
    s_start (&group, first);
    s_put_range (producer, 2 * N, N);
    zf_broker_destroy (&group.brokers[second]);
    s_put_range (producer, 3 * N, N);
    assert_int_not_equal (s_node_of (&group, producer), second);

    zf_client_t *worker = zf_client_new (group.all, "work", "jobs", 50);
    int seen[4 * N] = { 0 };
    assert_int_equal (zf_test_take (worker, 4 * N, seen, NULL), 4 * N);
    ZF_TEST_ASSERT_ONCE (seen, 4 * N);
    zf_client_destroy (&worker);
    zf_client_destroy (&producer);
    s_group_stop (&group);
}

static void
test_cluster_follower_names_leader (void **state)
{
    (void) state;
    // A client given one broker that does not lead is sent to the leader.
    s_group_t group;
    s_group_start (&group, "cluster-redirect", s_config);
    zf_client_t *probe = zf_client_new (group.all, "src", NULL, 0);
    s_put_range (probe, 0, 1);
    int leader = s_node_of (&group, probe);
    int follower = (leader + 1) % NODES;
    zf_client_t *client = zf_client_new (group.endpoints[follower], "src", NULL, 0);
    s_put_range (client, 1, 10);
    assert_string_equal (zf_client_broker (client), group.endpoints[leader]);
    assert_non_null (strstr (zf_client_last_error (client), "leader"));
    zf_client_t *worker = zf_client_new (group.endpoints[follower], "work", "jobs", 50);
    int seen[11] = { 0 };
    assert_int_equal (zf_test_take (worker, 11, seen, NULL), 11);
    ZF_TEST_ASSERT_ONCE (seen, 11);
    zf_client_destroy (&worker);
    zf_client_destroy (&client);
    zf_client_destroy (&probe);
    s_group_stop (&group);
}

static void
test_cluster_snapshots (void **state)
{
    (void) state;
    // Many small turns, so that every node snapshots its state often; the
    // whole group started again restores it from snapshots and logs.
    s_group_t group;
    s_group_start (&group, "cluster-snapshots",
                   "broker\n"
                   "    heartbeat = 100ms\n"
                   "cluster\n"
                   "    election-timeout = 300ms\n"
                   "    snapshot-every = 16\n" ZF_TEST_SRC_AND_WORK);
    enum { N = 400 };
    zf_client_t *producer = zf_client_new (group.all, "src", NULL, 0);
    zf_id_t ids[N / 2];
    for (int i = 0; i < N / 2; i += 4)
        s_put_ids (producer, i, 4, ids);
    zf_client_t *worker = zf_client_new (group.all, "work", "jobs", 10);
    int seen[N] = { 0 };
    assert_int_equal (zf_test_take (worker, N / 2, seen, NULL), N / 2);
    zf_client_destroy (&worker);
    // Once the leader has the acks, the next CONFIRMs say they are in the
    // log: entries commit in order.
    for (int i = 0; i < N / 2; i++) {
        char state[32] = "";
        for (int tries = 0; tries < 100 && !streq (state, "done"); tries++)
            if (zf_client_status (producer, &ids[i], state, sizeof state, 1000) ||
                !streq (state, "done"))
                zclock_sleep (50);
        assert_string_equal (state, "done");
    }
    for (int i = N / 2; i < N; i += 4)
        s_put_range (producer, i, 4);
    // The leader goes first: the others hold a majority until they go too.
    int leader = s_node_of (&group, producer);
    zf_client_destroy (&producer);
    zf_broker_destroy (&group.brokers[leader]);
    for (int i = 0; i < NODES; i++)
        zf_broker_destroy (&group.brokers[i]);
    for (int i = 0; i < NODES; i++)
        s_start (&group, i);
    // What was acked stays done; the rest comes now, from snapshots and logs.
    worker = zf_client_new (group.all, "work", "jobs", 10);
    assert_int_equal (zf_test_take_range (worker, N / 2, seen, N, NULL), N / 2);
    ZF_TEST_ASSERT_ONCE (seen, N);
    zf_client_destroy (&worker);
    s_group_stop (&group);
}

static void
test_cluster_errors (void **state)
{
    (void) state;
    // Mistakes in a group's settings are named before anything starts.
    char dir[256];
    assert_int_equal (zf_test_dir_new (dir, sizeof dir, "cluster-errors"), 0);
    zf_pipeline_t *pipeline = zf_test_pipeline (s_config);
    char journal[300];
    snprintf (journal, sizeof journal, "%s/node", dir);
    static const struct {
        const char *nodes;
        int node;
        const char *error;
    } cases[] = {
        { "127.0.0.1:1,127.0.0.1", 1, "node 2 is '127.0.0.1' (expected HOST:PORT)" },
        { "127.0.0.1:1,127.0.0.1:1", 1, "node 2 is '127.0.0.1:1' again" },
        { "127.0.0.1:1,127.0.0.1:2", 3, "--node 3: the group has nodes 1 to 2" },
        { "127.0.0.1:1,127.0.0.1:2", 0, "are both on this host" },
        { "203.0.113.7:1,203.0.113.8:1", 0, "none of the nodes" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zf_broker_args_t args = { .pipeline = pipeline,
                                  .endpoint = LOOPBACK,
                                  .events = LOOPBACK,
                                  .journal = journal,
                                  .cluster = cases[i].nodes,
                                  .node = cases[i].node };
        zf_error_t err;
        zf_broker_t *broker = zf_broker_start (&args, &err);
        assert_null (broker);
        if (!strstr (err.text, cases[i].error))
            fail_msg ("case %zu: '%s' does not say '%s'", i, err.text, cases[i].error);
    }
    // A group needs a folder for its log.
    zf_broker_args_t args = { .pipeline = pipeline,
                              .endpoint = LOOPBACK,
                              .events = LOOPBACK,
                              .journal = "",
                              .cluster = "127.0.0.1:1",
                              .node = 1 };
    zf_error_t err;
    assert_null (zf_broker_start (&args, &err));
    assert_non_null (strstr (err.text, "needs a folder for its log"));
    // A log holds its group: the nodes given must be those it was
    // started with.
    char first[64], other[64];
    snprintf (first, sizeof first, "127.0.0.1:%d", zf_test_free_port ());
    snprintf (other, sizeof other, "127.0.0.1:%d", zf_test_free_port ());
    args.journal = journal;
    args.cluster = first;
    zf_broker_t *broker = zf_broker_start (&args, &err);
    if (!broker)
        fail_msg ("a group of one: %s", err.text);
    zf_broker_destroy (&broker);
    args.cluster = other;
    assert_null (zf_broker_start (&args, &err));
    if (!strstr (err.text, "is of the group") || !strstr (err.text, first))
        fail_msg ("'%s' does not name the log's group %s", err.text, first);
    args.cluster = first; // as it was: it starts
    broker = zf_broker_start (&args, &err);
    if (!broker)
        fail_msg ("the group as it was: %s", err.text);
    zf_broker_destroy (&broker);
    zf_pipeline_destroy (&pipeline);
    zf_test_dir_remove (dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_cluster_failover),
        cmocka_unit_test (test_cluster_follower_names_leader),
        cmocka_unit_test (test_cluster_snapshots),
        cmocka_unit_test (test_cluster_errors),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
