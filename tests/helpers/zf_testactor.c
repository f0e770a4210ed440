/*  zf_testactor: an actor process for the tests, on the public API.

    zf_testactor ENDPOINT NAME INPUT [--concurrency N] [--hold] [--fail-first N]
                 [--emit QUEUE] [--worker N] [--put-and-die N] [--crash-on N]
                 [--abort-on N,...] [--touch MB] [--spin MS] [--ignore-stop]

    Prints "ready" once the broker welcomed it, then handles items: --hold
    takes them and never acks (printing "holding N" as N grows), --fail-first
    nacks each item's first N attempts, --emit passes each body on to QUEUE.
    Exits on SIGTERM/SIGINT after saying BYE. --put-and-die N instead puts
    the integers 0..N-1 into INPUT as a producer does (derived ids, each
    with the position after it as checkpoint), then kills itself with
    SIGKILL, what is still buffered unsent. --crash-on N exits with status 3
    when it takes the integer N, the first time only (a file crashed-N in
    the current folder remembers it). --abort-on calls abort() whenever it
    takes one of the integers listed, as a crash in native code would.
    --touch MB first writes to MB megabytes it then holds to the end, and
    --spin MS takes MS ms of CPU time, so that a test knows the least
    memory and CPU time the process must be reported with. --ignore-stop
    ignores SIGTERM and SIGINT, as a program that does not stop when asked:
    only SIGKILL ends it.
*/
#include "zf_mp.h"
#include "zf_id.h"
#include "zflow.h"

#include <czmq.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>

//  CPU time this process has taken, in ms.
static int64_t
s_cpu_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int
main (int argc, char **argv)
{
    if (argc < 4) {
        fprintf (stderr, "usage: zf_testactor ENDPOINT NAME INPUT [options]\n");
        return 2;
    }
    int concurrency = 16, fail_first = 0, worker = 0, put_and_die = 0, crash_on = -1, touch = 0,
        spin = 0;
    bool hold = false, ignore_stop = false;
    const char *emit = NULL;
    const char *abort_on = NULL; // ",100,500," : the integers that crash it
    for (int i = 4; i < argc; i++) {
        if (streq (argv[i], "--concurrency") && i + 1 < argc)
            concurrency = atoi (argv[++i]);
        else if (streq (argv[i], "--fail-first") && i + 1 < argc)
            fail_first = atoi (argv[++i]);
        else if (streq (argv[i], "--emit") && i + 1 < argc)
            emit = argv[++i];
        else if (streq (argv[i], "--worker") && i + 1 < argc)
            worker = atoi (argv[++i]);
        else if (streq (argv[i], "--crash-on") && i + 1 < argc)
            crash_on = atoi (argv[++i]);
        else if (streq (argv[i], "--put-and-die") && i + 1 < argc)
            put_and_die = atoi (argv[++i]);
        else if (streq (argv[i], "--abort-on") && i + 1 < argc)
            abort_on = zsys_sprintf (",%s,", argv[++i]);
        else if (streq (argv[i], "--touch") && i + 1 < argc)
            touch = atoi (argv[++i]);
        else if (streq (argv[i], "--spin") && i + 1 < argc)
            spin = atoi (argv[++i]);
        else if (streq (argv[i], "--hold"))
            hold = true;
        else if (streq (argv[i], "--ignore-stop"))
            ignore_stop = true;
        else {
            fprintf (stderr, "zf_testactor: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    // Every page written, so that each is resident; held to the end.
    size_t touched = (size_t) touch << 20;
    volatile char *held_memory = touched ? (volatile char *) malloc (touched) : NULL;
    for (size_t at = 0; held_memory && at < touched; at += 4096)
        held_memory[at] = 1;
    int64_t spin_until = s_cpu_ms () + spin;
    while (spin && s_cpu_ms () < spin_until)
        ;
    zsys_init ();
    if (ignore_stop) {
        signal (SIGTERM, SIG_IGN); // in place of czmq's handlers
        signal (SIGINT, SIG_IGN);
    }
    if (put_and_die) {
        zf_client_t *producer = zf_client_new (argv[1], argv[2], NULL, 0);
        size_t size;
        zf_client_resume_point (producer, &size, 10000);
        for (int i = 0; i < put_and_die; i++) {
            uint8_t position[8] = { 0 };
            position[7] = (uint8_t) (i + 1);
            zf_client_checkpoint (producer, position, sizeof position);
            zf_id_t id = zf_id_source (argv[2], (uint64_t) i);
            uint8_t body = (uint8_t) i; // a msgpack positive fixint
            zf_client_put_id (producer, argv[3], &id, &body, 1);
        }
        raise (SIGKILL);
    }
    zf_client_t *client = zf_client_new (argv[1], argv[2], argv[3], concurrency);
    zf_client_set_worker (client, worker);
    size_t size;
    zf_client_resume_point (client, &size, 10000);
    printf ("ready\n");
    fflush (stdout);
    size_t held = 0;
    zlistx_t *holding = zlistx_new ();
    while (!zsys_interrupted) {
        zf_item_t *item = zf_client_next (client, 200);
        if (!item)
            continue;
        if (crash_on >= 0) {
            const void *body = zf_item_body (item, &size);
            zf_mp_t mp;
            zf_mp_init (&mp, body, size);
            uint64_t value;
            char marker[32];
            snprintf (marker, sizeof marker, "crashed-%d", crash_on);
            if (zf_mp_uint (&mp, &value, NULL) == 0 && value == (uint64_t) crash_on &&
                !zsys_file_exists (marker)) {
                fclose (fopen (marker, "w"));
                _exit (3); // as a crash would: no goodbye, the item unacked
            }
        }
        if (abort_on) {
            const void *body = zf_item_body (item, &size);
            zf_mp_t mp;
            zf_mp_init (&mp, body, size);
            uint64_t value;
            char needle[32];
            if (zf_mp_uint (&mp, &value, NULL) == 0) {
                snprintf (needle, sizeof needle, ",%llu,", (unsigned long long) value);
                if (strstr (abort_on, needle)) {
                    setrlimit (RLIMIT_CORE, &(struct rlimit){ 0, 0 }); // no core file to write
                    abort ();
                }
            }
        }
        if (hold) {
            zlistx_add_end (holding, item);
            printf ("holding %zu\n", ++held);
            fflush (stdout);
        }
        else if ((int) zf_item_attempt (item) <= fail_first)
            zf_client_nack (client, &item, "induced failure", false, 0);
        else {
            if (emit) {
                const void *body = zf_item_body (item, &size);
                zf_client_emit (client, item, emit, body, size);
            }
            zf_client_ack (client, &item);
        }
    }
    zlistx_destroy (&holding);
    zf_client_destroy (&client);
    free ((void *) held_memory);
    return 0;
}
