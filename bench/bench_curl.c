/*  bench_curl: the ceiling for a libcurl-based fetcher. N GETs of one URL
    with libcurl's multi interface, CONNECTIONS transfers in flight over as
    many keep-alive connections, easy handles reused, bodies counted and
    dropped. Prints "bare libcurl multi: R requests/s", and the CPU time it
    spent a request.

    With `fetcher`, each transfer also does what zflow's fetcher asks of
    libcurl (actors/zf_fetcher.c, s_new_transfer and s_start, with the
    defaults of its keys): the options of a request (its URL among them)
    set again for each one, every response header seen by a callback and
    kept (its name in lower case), the body kept, decoding of every content
    encoding offered, the timeouts, the user agent, redirects followed,
    http and https only. That is the libcurl work no fetcher with those
    features can do without.

        bench_curl URL N CONNECTIONS [fetcher]
*/
#include <curl/curl.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

//  What one transfer keeps in fetcher mode: its headers and its body.
typedef struct {
    char headers[4096];
    size_t headers_size;
    char *body;
    size_t body_size, body_alloc;
} s_kept_t;

static size_t
s_drop (char *data, size_t size, size_t count, void *arg)
{
    (void) data;
    *(size_t *) arg += size * count;
    return size * count;
}

static size_t
s_keep_body (char *data, size_t size, size_t count, void *arg)
{
    s_kept_t *kept = (s_kept_t *) arg;
    size_t len = size * count;
    if (kept->body_size + len > kept->body_alloc) {
        char *body = (char *) realloc (kept->body, (kept->body_size + len) * 2);
        if (!body)
            return 0; // libcurl ends the transfer: counted as failed
        kept->body = body;
        kept->body_alloc = (kept->body_size + len) * 2;
    }
    memcpy (kept->body + kept->body_size, data, len);
    kept->body_size += len;
    return len;
}

static size_t
s_keep_header (char *data, size_t size, size_t count, void *arg)
{
    s_kept_t *kept = (s_kept_t *) arg;
    size_t len = size * count;
    const char *colon = (const char *) memchr (data, ':', len);
    if (len >= 5 && memcmp (data, "HTTP/", 5) == 0)
        kept->headers_size = 0; // a new response (after a redirect)
    else if (colon && kept->headers_size + len + 2 <= sizeof kept->headers) {
        char *at = kept->headers + kept->headers_size;
        for (const char *c = data; c < colon; c++)
            *at++ = (char) tolower ((unsigned char) *c);
        *at++ = 0;
        memcpy (at, colon + 1, len - (size_t) (colon + 1 - data));
        kept->headers_size += len + 1;
    }
    return len;
}

//  Sets what every transfer of this run does: the bare minimum, or what
//  the fetcher sets once for each of its transfer handles.
static void
s_setup (CURL *easy, const char *url, bool fetcher, size_t *bytes)
{
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    if (!fetcher) {
        curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_drop);
        curl_easy_setopt (easy, CURLOPT_WRITEDATA, bytes);
        return;
    }
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_keep_body);
    curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, s_keep_header);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt (easy, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt (easy, CURLOPT_USERAGENT, "zflow/0.2.0");
    curl_easy_setopt (easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt (easy, CURLOPT_DNS_CACHE_TIMEOUT, 60L);
    curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
}

//  What the fetcher sets again for each request.
static void
s_setup_request (CURL *easy, const char *url, s_kept_t *kept)
{
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_PRIVATE, kept);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, kept);
    curl_easy_setopt (easy, CURLOPT_HEADERDATA, kept);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt (easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt (easy, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt (easy, CURLOPT_NOBODY, 0L);
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
    if (argc != 4 && !(argc == 5 && strcmp (argv[4], "fetcher") == 0)) {
        fprintf (stderr, "usage: bench_curl URL N CONNECTIONS [fetcher]\n");
        return 2;
    }
    const char *url = argv[1];
    long total = atol (argv[2]), connections = atol (argv[3]);
    bool fetcher = argc == 5;
    if (connections < 1 || connections > 1000) {
        fprintf (stderr, "bench_curl: CONNECTIONS must be 1 to 1000\n");
        return 2;
    }
    s_kept_t *kept = (s_kept_t *) calloc ((size_t) connections, sizeof (s_kept_t));
    if (!kept) {
        fprintf (stderr, "bench_curl: out of memory\n");
        return 1;
    }
    curl_global_init (CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init ();
    curl_multi_setopt (multi, CURLMOPT_MAX_HOST_CONNECTIONS, connections);
    curl_multi_setopt (multi, CURLMOPT_MAXCONNECTS, connections);
    size_t bytes = 0;
    long started = 0, done = 0, failed = 0;
    double start = s_now ();
    for (long i = 0; i < connections && started < total; i++, started++) {
        CURL *easy = curl_easy_init ();
        s_setup (easy, url, fetcher, &bytes);
        if (fetcher)
            s_setup_request (easy, url, &kept[i]);
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
                if (fetcher) { // the fetcher sets what differs a request
                    s_kept_t *k;
                    curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **) &k);
                    bytes += k->body_size;
                    k->body_size = k->headers_size = 0;
                    s_setup_request (easy, url, k);
                }
                curl_multi_add_handle (multi, easy); // reused: its connection too
            }
            else
                curl_easy_cleanup (easy);
        }
        if (done < total)
            curl_multi_poll (multi, NULL, 0, 100, NULL);
    }
    double seconds = s_now () - start;
    for (long i = 0; i < connections; i++)
        bytes += kept[i].body_size; // the last bodies, still kept
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    double cpu = (double) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                 (double) (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    printf ("%s: %.0f requests/s (%ld requests, %ld failed, %zu body bytes, "
            "%.1f us of CPU a request)\n",
            fetcher ? "libcurl as the fetcher" : "bare libcurl multi", (double) total / seconds,
            total, failed, bytes, cpu * 1e6 / (double) total);
    for (long i = 0; i < connections; i++)
        free (kept[i].body);
    free (kept);
    curl_multi_cleanup (multi);
    curl_global_cleanup ();
    return failed ? 1 : 0;
}
