/*  zf_fetch: the fetcher's work on libcurl, in module "fetch" (zf_module.h;
    zf_fetcher.c is the kind, loading it): the actor's loop, the record of
    one request, an item read as a request (a URL, or a map with url,
    method, headers, body and timeout), and a response or a failure packed
    as the result item (docs/config.md, "fetcher").
*/
#ifndef ZF_FETCH_H_INCLUDED
#define ZF_FETCH_H_INCLUDED

#include <czmq.h>
#include <curl/curl.h>
#include <msgpack.h>

#include "zflow.h"

#ifdef __cplusplus
extern "C" {
#endif

//  What the fetcher knows of one host.
typedef struct {
    int running;     // transfers to it now
    int64_t next_at; // when it may be asked next, with rate-per-host (ms, monotonic)
} zf_fetch_host_t;

//  One request: an item being fetched, waiting to start, or between tries.
typedef struct {
    zf_item_t *item;               // the item, held until its result goes
    CURL *easy;                    // the transfer, while it runs
    char *url;                     // as asked
    char host[256];                // its host[:port], for the limits per host
    zf_fetch_host_t *host_figures; // what the fetcher knows of that host
    char *method;                  // NULL for GET
    uint8_t *body;                 // request body, or NULL
    size_t body_size;              // its size
    struct curl_slist *headers;    // request headers
    int64_t timeout;               // ms for the whole request
    int attempt;                   // tries so far
    int64_t due;                   // when to start the next try (ms, monotonic)
    int64_t last_byte;             // when the last byte came (ms, monotonic)
    const int64_t *now;            // the fetcher's clock, read once per round
    bool stalled;                  // stopped for read-timeout
    bool too_large;                // stopped at max-body
    int64_t max_body;              // bytes allowed
    zchunk_t *response;            // the body so far
    zchunk_t *response_headers;    // "name\0value\0" pairs of the last response
    int64_t retry_after;           // ms the server asked to wait, -1 if it did not
    char content_type[128];        // of the last response
    void *handle;                  // in its list (waiting or running)
} zf_fetch_request_t;

//  The module's entry points, looked up by zf_fetcher.c: the fetcher actor
//  (a zf_actor_args_t in args), and libcurl's process-wide setup, made in
//  the main thread before the actor's thread starts.
void zf_fetch_actor (zsock_t *pipe, void *args);
void zf_fetch_init (void);

//  Frees what req holds for its item: its url, method, body and headers.
void zf_fetch_request_clear (zf_fetch_request_t *req);

//  Frees req, its transfer and its buffers; safe on NULL.
void zf_fetch_request_destroy (zf_fetch_request_t **req_p);

//  Fills req (its item set) from the item's body; a request without a
//  timeout of its own gets default_timeout (ms). Returns 0, or -1 with why
//  (at most size bytes) saying what is wrong with the item.
int zf_fetch_parse (zf_fetch_request_t *req, int64_t default_timeout, char *why, size_t size);

//  Packs the result of req's response into buffer (emptied first):
//  {url, status, headers, body, elapsed_ms, attempt}, a repeated header's
//  values joined with ", ", a body that is text as a string, else bytes.
void zf_fetch_pack_result (zf_fetch_request_t *req, long status, int64_t elapsed_ms,
                           msgpack_sbuffer *buffer);

//  Packs the error item of a request that failed for good:
//  {url, error, kind, attempt[, status]}.
void zf_fetch_pack_error (zf_fetch_request_t *req, const char *kind, const char *why, long status,
                          msgpack_sbuffer *buffer);

#ifdef __cplusplus
}
#endif
#endif
