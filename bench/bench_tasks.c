/*  bench_tasks: zflow as a task queue, timed from the client's side: put a
    task, wait for its result (zf_client_result), as a web app does with
    Celery's delay() and .get().

    bench_tasks ENDPOINT latency ROUNDS     ROUNDS tasks one after another:
                                            put, then wait for its result;
                                            prints each round trip in ms,
                                            one a line
    bench_tasks ENDPOINT throughput N       N tasks put at once, tracked:
                                            their results come back as each
                                            one ends (zf_client_next_result);
                                            prints tasks/s, from the first
                                            put to the last result
    bench_tasks ENDPOINT delay N            N tasks each put to run at its
                                            own time (not_before), 5 ms
                                            apart; prints how late each
                                            one's result came, in ms

    bench/tasks runs these in turn with Celery's, so that both meet the
    same moments of a shared machine, and works out the percentiles.

    The pipeline at ENDPOINT passes the queue `tasks` through a processor
    to its results queue (bench/tasks starts it: a broker and an actor
    process, the identity plugin). Each task's body is its number; a result
    that is missing or is not its task's number is counted and makes the
    exit status 1, so a fast wrong answer cannot pass for a fast one.
*/
#include "zflow.h"

#include <czmq.h>
#include <msgpack.h>
#include <time.h>

#define RESULT_WAIT_MS 30000 // the broker's wait for one task's end

//  Packs n as the task's body.
static size_t
s_body (char *buffer, size_t size, int64_t n)
{
    msgpack_sbuffer sbuf = { .size = 0, .data = buffer, .alloc = size };
    msgpack_packer packer;
    msgpack_packer_init (&packer, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_int64 (&packer, n);
    return sbuf.size;
}

//  The number a done result holds as its one body, or INT64_MIN.
static int64_t
s_answer (zf_result_t *result)
{
    if (!result || strcmp (zf_result_state (result), "done") || zf_result_count (result) != 1)
        return INT64_MIN;
    size_t size;
    const void *body = zf_result_body (result, 0, &size);
    msgpack_unpacked value;
    msgpack_unpacked_init (&value);
    int64_t n = INT64_MIN;
    if (msgpack_unpack_next (&value, (const char *) body, size, NULL) == MSGPACK_UNPACK_SUCCESS &&
        (value.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
         value.data.type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
        n = value.data.via.i64;
    msgpack_unpacked_destroy (&value);
    return n;
}

//  One task's round trip, in ms; a negative figure for a wrong answer.
static double
s_round_trip (zf_client_t *client, int64_t n)
{
    char body[16];
    size_t size = s_body (body, sizeof body, n);
    zf_id_t id;
    int64_t start = zclock_usecs ();
    if (zf_client_put (client, "tasks", body, size, &id))
        return -1;
    zf_result_t *result = zf_client_result (client, &id, RESULT_WAIT_MS, 5000);
    double ms = (double) (zclock_usecs () - start) / 1000.0;
    bool ok = s_answer (result) == n;
    zf_result_destroy (&result);
    return ok ? ms : -1;
}

//  Round trips, one after another: each one's ms on stdout.
static long
s_latency (zf_client_t *client, int rounds)
{
    long wrong = 0;
    for (int i = 0; i < 10; i++) // connecting is not timed
        wrong += s_round_trip (client, -1 - i) < 0;
    for (int i = 0; i < rounds && !zsys_interrupted; i++) {
        double ms = s_round_trip (client, i);
        if (ms < 0)
            wrong++;
        else
            printf ("%.3f\n", ms);
    }
    return wrong;
}

//  count tasks in flight at once: tasks/s on stdout.
static long
s_throughput (zf_client_t *client, int count)
{
    long wrong = 0;
    bool *seen = (bool *) calloc ((size_t) count, sizeof (bool));
    zf_client_track (client, true);
    int64_t start = zclock_usecs ();
    for (int i = 0; i < count; i++) {
        char body[16];
        size_t size = s_body (body, sizeof body, i);
        if (zf_client_put (client, "tasks", body, size, NULL))
            wrong++;
    }
    int answered = 0;
    while (answered < count && !zsys_interrupted) {
        zf_result_t *result = zf_client_next_result (client, RESULT_WAIT_MS);
        if (!result)
            break;
        int64_t n = s_answer (result);
        if (n >= 0 && n < count && !seen[n]) {
            seen[n] = true;
            answered++;
        }
        else
            wrong++;
        zf_result_destroy (&result);
    }
    double seconds = (double) (zclock_usecs () - start) / 1e6;
    printf ("%.0f\n", answered / seconds);
    free (seen);
    return wrong + count - answered;
}

//  count tasks, each at its own time: how late each result came, in ms.
static long
s_delay (zf_client_t *client, int count)
{
    long wrong = 0;
    zf_client_track (client, true);
    zf_id_t *ids = (zf_id_t *) malloc ((size_t) count * sizeof (zf_id_t));
    int64_t *due = (int64_t *) malloc ((size_t) count * sizeof (int64_t));
    int64_t now = zclock_time ();
    for (int i = 0; i < count; i++) {
        char body[16];
        size_t size = s_body (body, sizeof body, i);
        due[i] = now + 100 + (i * 37 % count) * 5; // out of order, 5 ms apart
        ids[i] = zf_id_random ();
        zf_put_opts_t opts = { .id = &ids[i], .not_before = due[i] };
        if (zf_client_put_with (client, "tasks", body, size, &opts, NULL))
            wrong++;
    }
    int came = 0;
    while (came < count && !zsys_interrupted) {
        zf_result_t *result = zf_client_next_result (client, RESULT_WAIT_MS);
        if (!result)
            break;
        struct timespec ts;
        clock_gettime (CLOCK_REALTIME, &ts); // the clock not_before is on, in µs
        double at = (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
        int64_t i = s_answer (result);
        if (i >= 0 && i < count && zf_id_eq (zf_result_root (result), &ids[i]) &&
            at >= (double) due[i]) { // early would be wrong, however fast
            printf ("%.3f\n", at - (double) due[i]);
            came++;
        }
        else
            wrong++;
        zf_result_destroy (&result);
    }
    free (ids);
    free (due);
    return wrong + count - came;
}

int
main (int argc, char *argv[])
{
    int count = argc == 4 ? atoi (argv[3]) : 0;
    if (count < 1) {
        fprintf (stderr, "usage: bench_tasks ENDPOINT latency|throughput|delay COUNT\n");
        return 2;
    }
    zsys_init ();
    zsys_set_logstream (stderr);
    zf_client_t *client = zf_client_new (argv[1], "bench-tasks", NULL, 0);
    long wrong = streq (argv[2], "latency")      ? s_latency (client, count)
                 : streq (argv[2], "throughput") ? s_throughput (client, count)
                 : streq (argv[2], "delay")      ? s_delay (client, count)
                                                 : -1;
    zf_client_destroy (&client);
    if (wrong < 0)
        fprintf (stderr, "bench_tasks: no mode '%s'\n", argv[2]);
    else if (wrong)
        fprintf (stderr, "bench_tasks: %ld tasks without their result\n", wrong);
    return wrong ? 1 : 0;
}
