/*  bench_timer: the floor for any timer-driven scheduler on this machine. A
    bare loop on a timerfd armed at absolute times PERIOD_US apart, N times;
    prints the lateness of each wake-up (the time read after it, minus the
    time asked for) as p50, p99 and max in ms. Timer slack is set to 1 ns,
    as in zflow's scheduler.

        bench_timer N PERIOD_US
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
    if (argc != 3) {
        fprintf (stderr, "usage: bench_timer N PERIOD_US\n");
        return 2;
    }
    long n = atol (argv[1]), period = atol (argv[2]);
    int64_t *late = (int64_t *) calloc ((size_t) n, sizeof (int64_t));
    int timer = timerfd_create (CLOCK_MONOTONIC, TFD_CLOEXEC);
    prctl (PR_SET_TIMERSLACK, 1UL, 0, 0, 0); // as zflow's scheduler does
    int64_t due = s_now_us () + period;
    for (long i = 0; i < n; i++, due += period) {
        struct itimerspec at = { .it_value = { .tv_sec = due / 1000000,
                                               .tv_nsec = due % 1000000 * 1000 } };
        timerfd_settime (timer, TFD_TIMER_ABSTIME, &at, NULL);
        uint64_t expirations;
        if (read (timer, &expirations, sizeof expirations) != sizeof expirations)
            return 1;
        late[i] = s_now_us () - due;
    }
    qsort (late, (size_t) n, sizeof (int64_t), s_compare);
    printf ("bare timerfd: p50 %.3f ms, p99 %.3f ms, max %.3f ms (%ld wake-ups)\n",
            late[n / 2] / 1000.0, late[n * 99 / 100] / 1000.0, late[n - 1] / 1000.0, n);
    free (late);
    close (timer);
    return 0;
}
