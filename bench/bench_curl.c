/*  bench_curl: the ceiling for a libcurl-based fetcher. N GETs of one URL
    with libcurl's multi interface, CONNECTIONS transfers in flight over as
    many keep-alive connections, easy handles reused, bodies counted and
    dropped. Prints "bare libcurl multi: R requests/s", and the CPU time it
    spent a request.

        bench_curl URL N CONNECTIONS
*/
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static size_t
s_drop (char *data, size_t size, size_t count, void *arg)
{
    (void) data;
    *(size_t *) arg += size * count;
    return size * count;
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
main (int argc, char **argv)
{
    if (argc != 4) {
        fprintf (stderr, "usage: bench_curl URL N CONNECTIONS\n");
        return 2;
    }
    const char *url = argv[1];
    long total = atol (argv[2]), connections = atol (argv[3]);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init ();
    curl_multi_setopt (multi, CURLMOPT_MAX_HOST_CONNECTIONS, connections);
    curl_multi_setopt (multi, CURLMOPT_MAXCONNECTS, connections);
    size_t bytes = 0;
    long started = 0, done = 0, failed = 0;
    double start = s_now ();
    for (long i = 0; i < connections && started < total; i++, started++) {
        CURL *easy = curl_easy_init ();
        curl_easy_setopt (easy, CURLOPT_URL, url);
        curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_drop);
        curl_easy_setopt (easy, CURLOPT_WRITEDATA, &bytes);
        curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
        curl_multi_add_handle (multi, easy);
    }
    while (done < total) {
        int running;
        curl_multi_perform (multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read (multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *easy = msg->easy_handle;
            long status = 0;
            curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &status);
            failed += msg->data.result != CURLE_OK || status != 200;
            done++;
            curl_multi_remove_handle (multi, easy);
            if (started < total) {
                started++;
                curl_multi_add_handle (multi, easy); // reused: its connection too
            }
            else
                curl_easy_cleanup (easy);
        }
        if (done < total)
            curl_multi_poll (multi, NULL, 0, 100, NULL);
    }
    double seconds = s_now () - start;
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    double cpu = (double) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                 (double) (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    printf ("bare libcurl multi: %.0f requests/s (%ld requests, %ld failed, %zu body bytes, "
            "%.1f us of CPU a request)\n",
            (double) total / seconds, total, failed, bytes, cpu * 1e6 / (double) total);
    curl_multi_cleanup (multi);
    curl_global_cleanup ();
    return failed ? 1 : 0;
}
