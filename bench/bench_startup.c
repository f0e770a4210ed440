/*  bench_startup: the time from starting `zflow run` to the first item in
    the sink's file, for a pipeline of one producer and one sink, RUNS times;
    prints each and the median. Then the median time of `zflow version` (a
    process that only says its version) beside that of /bin/true's, the
    floor of starting any process here, over 5 × RUNS runs each.

        bench_startup ZFLOW PIPELINE_DIR RUNS
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  The median ms from fork to the end of `program arg`, over runs runs.
static double
s_median_exec (const char *program, const char *arg, int runs)
{
    double *times = (double *) calloc ((size_t) runs, sizeof (double));
    fflush (stdout); // else each child would print what is buffered
    for (int i = 0; i < runs; i++) {
        double start = s_now_ms ();
        pid_t pid = fork ();
        if (pid == 0) {
            freopen ("/dev/null", "w", stdout);
            execl (program, program, arg, (char *) NULL);
            _exit (127);
        }
        waitpid (pid, NULL, 0);
        times[i] = s_now_ms () - start;
    }
    qsort (times, (size_t) runs, sizeof (double), s_compare);
    double median = times[runs / 2];
    free (times);
    return median;
}

int
main (int argc, char **argv)
{
    if (argc != 4) {
        fprintf (stderr, "usage: bench_startup ZFLOW PIPELINE_DIR RUNS\n");
        return 2;
    }
    int runs = atoi (argv[3]);
    double *times = (double *) calloc ((size_t) runs, sizeof (double));
    char pipeline[1024], out[1024], ids[1024];
    snprintf (pipeline, sizeof pipeline, "%s/startup.zpl", argv[2]);
    snprintf (out, sizeof out, "%s/out.jsonl", argv[2]);
    snprintf (ids, sizeof ids, "%s/out.jsonl.ids", argv[2]);
    for (int i = 0; i < runs; i++) {
        unlink (out);
        unlink (ids);
        double start = s_now_ms ();
        pid_t pid = fork ();
        if (pid == 0) {
            freopen ("/dev/null", "w", stderr);
            execl (argv[1], argv[1], "run", pipeline, "--quiet", (char *) NULL);
            _exit (127);
        }
        struct stat info;
        while ((stat (out, &info) != 0 || info.st_size == 0) && s_now_ms () - start < 10000)
            usleep (200);
        times[i] = s_now_ms () - start;
        waitpid (pid, NULL, 0);
        printf ("run %d: first item in the sink's file after %.1f ms\n", i + 1, times[i]);
    }
    qsort (times, (size_t) runs, sizeof (double), s_compare);
    printf ("startup: median %.1f ms, max %.1f ms over %d runs\n", times[runs / 2], times[runs - 1],
            runs);
    double version = s_median_exec (argv[1], "version", 5 * runs);
    double floor = s_median_exec ("/bin/true", NULL, 5 * runs);
    printf ("version: median %.1f ms (/bin/true %.1f ms) over %d runs\n", version, floor, 5 * runs);
    free (times);
    return 0;
}
