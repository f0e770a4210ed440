/*  Helpers shared by the tests that run brokers and actor processes. */
#ifndef ZF_TESTKIT_H_INCLUDED
#define ZF_TESTKIT_H_INCLUDED

#include <czmq.h>

#include "zf_broker.h"
#include "zflow.h"
#include "zf_kinds.h"
#include "zf_pipeline.h"
#include "zf_zpl.h"

//  Writes text to a new temporary file and loads it as a pipeline; the
//  test fails if it does not load.
zf_pipeline_t *zf_test_pipeline (const char *text);

//  Starts a program (argv[0] a path) with stdout to a pipe; returns its pid
//  and the pipe's read end in *out_fd.
pid_t zf_test_spawn (char *const argv[], int *out_fd);

//  Kills (-9) and reaps every process zf_test_spawn started that is still
//  running: a cmocka teardown, so a failed test leaves no actor behind to
//  join a later test's broker.
int zf_test_kill_all (void **state);

//  Reads a line from fd into buffer within timeout_ms; 0, or -1 on timeout
//  or end of file.
int zf_test_read_line (int fd, char *buffer, size_t size, int timeout_ms);

//  Waits for pid to exit within timeout_ms, killing it after; returns its
//  wait status.
int zf_test_reap (pid_t pid, int timeout_ms);

//  What a finished command did.
typedef struct {
    int status; // exit status (128 + signal if killed)
    char *out;  // its stdout
    char *err;  // its stderr
} zf_test_result_t;

//  Runs argv (argv[0] a path) to the end, feeding it input on stdin (or
//  nothing), killed after 30 s. Free the result with zf_test_result_free.
zf_test_result_t zf_test_run (char *const argv[], const char *input);

void zf_test_result_free (zf_test_result_t *result);

//  Runs the zflow command under test with the arguments (NULL-terminated),
//  feeding it input on stdin (or nothing).
zf_test_result_t zf_test_zflow (const char *input, const char *arg, ...);

//  Makes a new folder /tmp/zflow-test-NAME-XXXXXX, its path in dir (of
//  size bytes). Returns 0, or -1: usable as a cmocka setup's result.
int zf_test_dir_new (char *dir, size_t size, const char *name);

//  Removes the folder and all in it. Returns 0 or -1.
int zf_test_dir_remove (const char *dir);

//  A test's pipeline lives in a folder: dir/p.zpl, its broker in the test's
//  process, its actors as `zflow actor` processes.

//  Writes text to dir/name. Returns 0 or -1.
int zf_test_write (const char *dir, const char *name, const char *text);

//  The text of dir/name (free it), or NULL if it cannot be read.
char *zf_test_slurp (const char *dir, const char *name);

//  Writes text to dir/p.zpl, loads it (errors to stderr) into *pipeline_p
//  and starts its broker on free loopback ports. NULL if either fails.
zf_broker_t *zf_test_broker (const char *dir, const char *text, zf_pipeline_t **pipeline_p);

//  Starts `zflow actor NAME dir/p.zpl` against broker, its stderr appended
//  to dir/NAME.log; returns its pid.
pid_t zf_test_actor (const char *dir, zf_broker_t *broker, const char *name);

//  The same against a broker at endpoint (one that runs as a process).
pid_t zf_test_actor_at (const char *dir, const char *endpoint, const char *name);

//  Starts `zflow broker dir/p.zpl`, its stderr appended to dir/broker.log,
//  and waits (bounded: 10 s) until it says where actors connect; returns
//  its pid, or -1 if it did not start.
pid_t zf_test_broker_process (const char *dir);

//  Counts the lines of dir/name, and in seen[0..range) how many times each
//  integer value appears at the start of a line. Returns the line count
//  (0 if there is no such file).
int zf_test_count_lines (const char *dir, const char *name, int *seen, int range);

//  Waits (bounded: 60 s) until dir/name has at least expect lines; then
//  counts as zf_test_count_lines.
int zf_test_wait_lines (const char *dir, const char *name, int *seen, int range, int expect);

//  Free loopback ports, for a broker's sockets.
#define ZF_TEST_LOOPBACK "tcp://127.0.0.1:*"

//  A free loopback port for an address every node must know before it
//  starts (a Raft group's), so not tcp://...:*: from the system's range,
//  below 49152, where ZeroMQ's tcp://...:* starts (a broker binding one of
//  those before the node listens cannot take its port). -1 if none.
int zf_test_free_port (void);

//  The actors most broker tests use: a source and a worker of "jobs".
#define ZF_TEST_SRC_AND_WORK                                                                       \
    "actors\n"                                                                                     \
    "    src\n"                                                                                    \
    "        kind = producer\n"                                                                    \
    "        source = seq:1\n"                                                                     \
    "        output = jobs\n"                                                                      \
    "    work\n"                                                                                   \
    "        kind = sink\n"                                                                        \
    "        input = jobs\n"                                                                       \
    "        target = null\n"

//  The pipelines of several broker tests: jobs read by two groups (g1
//  and g2); and a jobs queue that fails over to jobs.dead after 3 attempts.
#define ZF_TEST_FANOUT                                                                             \
    "actors\n"                                                                                     \
    "    src\n"                                                                                    \
    "        kind = producer\n"                                                                    \
    "        source = seq:1\n"                                                                     \
    "        output = jobs\n"                                                                      \
    "    g1\n"                                                                                     \
    "        kind = sink\n"                                                                        \
    "        input = jobs\n"                                                                       \
    "        target = null\n"                                                                      \
    "    g2\n"                                                                                     \
    "        kind = sink\n"                                                                        \
    "        input = jobs\n"                                                                       \
    "        target = null\n"
#define ZF_TEST_RETRY                                                                              \
    "queues\n"                                                                                     \
    "    jobs\n"                                                                                   \
    "        max-attempts = 3\n"                                                                   \
    "        retry-base = 10ms\n"                                                                  \
    "        retry-max = 50ms\n" ZF_TEST_SRC_AND_WORK "    morgue\n"                               \
    "        kind = sink\n"                                                                        \
    "        input = jobs.dead\n"                                                                  \
    "        target = null\n"

//  A number from an item's msgpack body, or -1.
int64_t zf_test_body_int (zf_item_t *item);

//  Puts the numbers 0..count-1 into queue, each as a msgpack int, with
//  random ids (written to ids[i] when ids is not NULL). Returns 0, or -1.
int zf_test_put_ints (zf_client_t *client, const char *queue, int count, zf_id_t *ids);

//  Takes up to n items from worker within 20 s, acking each: counts each
//  body's deliveries in seen[0..n) (a body outside it counts as a copy of
//  0) and, if redelivered is not NULL, the deliveries with attempt > 1.
//  Returns the items taken.
int zf_test_take (zf_client_t *worker, int n, int *seen, int *redelivered);

//  The same, the bodies counted in seen[0..range).
int zf_test_take_range (zf_client_t *worker, int n, int *seen, int range, int *redelivered);

//  Counts the items of seen[0..n) never seen (lost) and seen more than once.
void zf_test_count (const int *seen, int n, int *lost, int *duplicated);

//  Fails the cmocka test unless each of n items was seen exactly once.
#define ZF_TEST_ASSERT_ONCE(seen, n)                                                               \
    do {                                                                                           \
        int lost_, duplicated_;                                                                    \
        zf_test_count (seen, n, &lost_, &duplicated_);                                             \
        if (lost_ || duplicated_)                                                                  \
            fail_msg ("lost %d, duplicated %d of %d", lost_, duplicated_, n);                      \
    } while (0)

#endif
