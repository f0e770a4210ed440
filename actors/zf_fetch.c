/*  zf_fetch: the fetcher's work on libcurl, in module "fetch": its requests
    and results, and the loop that runs them. See zf_fetch.h, and
    zf_fetcher.c for what it does. */
#include "zf_fetch.h"
#include "zf_actor.h"
#include "zf_kinds.h"
#include "zf_mp.h"
#include "zf_value.h"

#include <ctype.h>

#define MANY_HEADERS     64    // response headers indexed on the stack
#define STOP_GRACE       5000  // ms to finish the requests in flight when stopping
#define POLL_MAX         20    // ms between looks at the broker while requests run
#define FAILURE_TEXT     256   // room for a failure's words
#define LATENCIES        4096  // requests the latency percentiles are taken over
#define FIGURES_EVERY    1000  // ms between updates of the figures
#define SPARE_BUFFER_MAX 65536 // bytes a spare request's buffers keep at most

//  The kinds of failure, as counted in the figures.
static const char *s_kinds[] = { "dns",       "connect",   "network", "timeout", "tls",
                                 "too-large", "redirects", "status",  "input",   NULL };

void
zf_fetch_request_clear (zf_fetch_request_t *self)
{
    free (self->url);
    free (self->method);
    free (self->body);
    curl_slist_free_all (self->headers);
}

void
zf_fetch_request_destroy (zf_fetch_request_t **self_p)
{
    zf_fetch_request_t *self = *self_p;
    if (!self)
        return;
    if (self->easy)
        curl_easy_cleanup (self->easy);
    zf_fetch_request_clear (self);
    zchunk_destroy (&self->response);
    zchunk_destroy (&self->response_headers);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Reading an item as a request

static char *
s_strndup_mp (const char *str, uint32_t len)
{
    char *copy = (char *) malloc (len + 1);
    memcpy (copy, str, len);
    copy[len] = 0;
    return copy;
}

int
zf_fetch_parse (zf_fetch_request_t *req, int64_t default_timeout, char *why, size_t size)
{
    size_t body_size;
    const void *body = zf_item_body (req->item, &body_size);
    zf_mp_t mp;
    zf_mp_init (&mp, body, body_size);
    const char *str;
    uint32_t len, count;
    zf_error_t err;
    req->timeout = default_timeout;
    if (zf_mp_peek (&mp) == ZF_MP_STR) {
        zf_mp_str (&mp, &str, &len, NULL);
        req->url = s_strndup_mp (str, len);
    }
    else if (zf_mp_map (&mp, &count, &err) == 0) {
        for (uint32_t i = 0; i < count; i++) {
            if (zf_mp_str (&mp, &str, &len, &err)) {
                snprintf (why, size, "a key of the request is not a string: %.200s", err.text);
                return -1;
            }
            char key[16];
            snprintf (key, sizeof key, "%.*s", (int) (len < 15 ? len : 15), str);
            if (streq (key, "url") || streq (key, "method")) {
                if (zf_mp_str (&mp, &str, &len, &err)) {
                    snprintf (why, size, "'%s' is not a string", key);
                    return -1;
                }
                if (streq (key, "url")) {
                    free (req->url);
                    req->url = s_strndup_mp (str, len);
                }
                else {
                    free (req->method);
                    req->method = s_strndup_mp (str, len);
                }
            }
            else if (streq (key, "headers")) {
                uint32_t n;
                if (zf_mp_map (&mp, &n, &err)) {
                    snprintf (why, size, "'headers' is not a map of strings");
                    return -1;
                }
                for (uint32_t h = 0; h < n; h++) {
                    const char *value;
                    uint32_t value_len;
                    if (zf_mp_str (&mp, &str, &len, NULL) ||
                        zf_mp_str (&mp, &value, &value_len, NULL)) {
                        snprintf (why, size, "'headers' is not a map of strings");
                        return -1;
                    }
                    char *line =
                        zsys_sprintf ("%.*s: %.*s", (int) len, str, (int) value_len, value);
                    req->headers = curl_slist_append (req->headers, line);
                    zstr_free (&line);
                }
            }
            else if (streq (key, "body")) {
                const uint8_t *data;
                if (zf_mp_peek (&mp) == ZF_MP_STR)
                    zf_mp_str (&mp, (const char **) &data, &len, NULL);
                else if (zf_mp_bin (&mp, &data, &len, NULL)) {
                    snprintf (why, size, "'body' is not a string or bytes");
                    return -1;
                }
                free (req->body);
                req->body = (uint8_t *) malloc (len ? len : 1);
                memcpy (req->body, data, len);
                req->body_size = len;
            }
            else if (streq (key, "timeout")) {
                uint64_t ms;
                if (zf_mp_peek (&mp) == ZF_MP_STR) {
                    zf_mp_str (&mp, &str, &len, NULL);
                    char text[32];
                    snprintf (text, sizeof text, "%.*s", (int) (len < 31 ? len : 31), str);
                    if (zf_parse_duration (text, &req->timeout, &err) || req->timeout <= 0) {
                        snprintf (why, size, "'timeout': %.200s", err.text);
                        return -1;
                    }
                }
                else if (zf_mp_uint (&mp, &ms, NULL) == 0 && ms > 0 && ms < 86400000)
                    req->timeout = (int64_t) ms;
                else {
                    snprintf (why, size, "'timeout' is not a duration");
                    return -1;
                }
            }
            else if (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, &err)) {
                snprintf (why, size, "the request is not msgpack: %.200s", err.text);
                return -1;
            }
        }
    }
    else {
        snprintf (why, size, "an item must be a URL or a map with a url, not %s",
                  zf_mp_type_name (zf_mp_peek (&mp)));
        return -1;
    }
    if (!req->url || !*req->url) {
        snprintf (why, size, "the request has no url");
        return -1;
    }
    if (strncmp (req->url, "http://", 7) && strncmp (req->url, "https://", 8)) {
        snprintf (why, size, "'%.200s' is not an http:// or https:// URL", req->url);
        return -1;
    }
    // The host[:port], lower case, for the limits per host; libcurl checks
    // the rest of the URL.
    const char *host = strstr (req->url, "://") + 3;
    size_t host_len = strcspn (host, "/?#");
    const char *at = memchr (host, '@', host_len);
    if (at) {
        host_len -= (size_t) (at + 1 - host);
        host = at + 1;
    }
    if (host_len == 0 || host_len >= sizeof req->host) {
        snprintf (why, size, "'%.200s' has no host, or one too long", req->url);
        return -1;
    }
    for (size_t i = 0; i < host_len; i++)
        req->host[i] = (char) tolower ((unsigned char) host[i]);
    req->host[host_len] = 0;
    return 0;
}

//  --------------------------------------------------------------------------
//  Packing a result

//  True for text bodies: a text-like type, and valid UTF-8.
static bool
s_is_text (zf_fetch_request_t *req)
{
    const char *type = req->content_type;
    bool texty = strncmp (type, "text/", 5) == 0 || strstr (type, "json") || strstr (type, "xml") ||
                 strstr (type, "javascript") || strstr (type, "x-www-form-urlencoded");
    if (!texty)
        return false;
    const unsigned char *s = zchunk_data (req->response);
    size_t len = zchunk_size (req->response);
    size_t i = 0;
    for (uint64_t word; i + 8 <= len; i += 8) { // ASCII, eight bytes at a time
        memcpy (&word, s + i, 8);
        if (word & 0x8080808080808080ull)
            break;
    }
    while (i < len) {
        size_t n = s[i] < 0x80             ? 1
                   : (s[i] & 0xe0) == 0xc0 ? 2
                   : (s[i] & 0xf0) == 0xe0 ? 3
                   : (s[i] & 0xf8) == 0xf0 ? 4
                                           : 0;
        if (n == 0 || i + n > len)
            return false;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        i += n;
    }
    return true;
}

//  The headers of req's response, from its "name\0value\0" pairs, with
//  their lengths: up to max into headers. Returns how many there are.
typedef struct {
    const char *name, *value;
    size_t name_len, value_len;
} s_header_t;

static size_t
s_headers (zf_fetch_request_t *req, s_header_t *headers, size_t max)
{
    const char *at = (const char *) zchunk_data (req->response_headers);
    const char *end = at + zchunk_size (req->response_headers);
    size_t count = 0;
    for (; at < end; count++) {
        s_header_t h = { .name = at, .name_len = strlen (at) };
        h.value = at + h.name_len + 1;
        h.value_len = strlen (h.value);
        at = h.value + h.value_len + 1;
        if (count < max)
            headers[count] = h;
    }
    return count;
}

static bool
s_same_name (const s_header_t *a, const s_header_t *b)
{
    return a->name_len == b->name_len && memcmp (a->name, b->name, a->name_len) == 0;
}

void
zf_fetch_pack_result (zf_fetch_request_t *req, long status, int64_t elapsed_ms,
                      msgpack_sbuffer *buffer)
{
    buffer->size = 0;
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 6);
    zf_mp_pack_cstr (&pk, "url");
    zf_mp_pack_cstr (&pk, req->url);
    zf_mp_pack_cstr (&pk, "status");
    msgpack_pack_long (&pk, status);
    // Headers: a repeated name has its values joined with ", ".
    zf_mp_pack_cstr (&pk, "headers");
    s_header_t few[MANY_HEADERS], *headers = few;
    size_t count = s_headers (req, few, MANY_HEADERS);
    if (count > MANY_HEADERS) {
        headers = (s_header_t *) malloc (count * sizeof (s_header_t));
        s_headers (req, headers, count);
    }
    uint32_t names = 0;
    for (size_t i = 0; i < count; i++) {
        size_t first = 0;
        while (first < i && !s_same_name (&headers[first], &headers[i]))
            first++;
        names += first == i;
    }
    msgpack_pack_map (&pk, names);
    for (size_t i = 0; i < count; i++) {
        size_t first = 0;
        while (first < i && !s_same_name (&headers[first], &headers[i]))
            first++;
        if (first != i)
            continue; // joined to the first of its name
        size_t len = headers[i].value_len;
        for (size_t o = i + 1; o < count; o++)
            if (s_same_name (&headers[o], &headers[i]))
                len += 2 + headers[o].value_len;
        zf_mp_pack_strn (&pk, headers[i].name, headers[i].name_len);
        msgpack_pack_str (&pk, len);
        msgpack_pack_str_body (&pk, headers[i].value, headers[i].value_len);
        for (size_t o = i + 1; o < count; o++)
            if (s_same_name (&headers[o], &headers[i])) {
                msgpack_pack_str_body (&pk, ", ", 2);
                msgpack_pack_str_body (&pk, headers[o].value, headers[o].value_len);
            }
    }
    zf_mp_pack_cstr (&pk, "body");
    size_t len = zchunk_size (req->response);
    if (s_is_text (req))
        zf_mp_pack_strn (&pk, (const char *) zchunk_data (req->response), len);
    else {
        msgpack_pack_bin (&pk, len);
        msgpack_pack_bin_body (&pk, zchunk_data (req->response), len);
    }
    zf_mp_pack_cstr (&pk, "elapsed_ms");
    msgpack_pack_int64 (&pk, elapsed_ms);
    zf_mp_pack_cstr (&pk, "attempt");
    msgpack_pack_int (&pk, req->attempt);
    if (headers != few)
        free (headers);
}

void
zf_fetch_pack_error (zf_fetch_request_t *req, const char *kind, const char *why, long status,
                     msgpack_sbuffer *buffer)
{
    buffer->size = 0;
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, status ? 5 : 4);
    zf_mp_pack_cstr (&pk, "url");
    if (req->url)
        zf_mp_pack_cstr (&pk, req->url);
    else
        msgpack_pack_nil (&pk);
    zf_mp_pack_cstr (&pk, "error");
    zf_mp_pack_cstr (&pk, why);
    zf_mp_pack_cstr (&pk, "kind");
    zf_mp_pack_cstr (&pk, kind);
    zf_mp_pack_cstr (&pk, "attempt");
    msgpack_pack_int (&pk, req->attempt);
    if (status) {
        zf_mp_pack_cstr (&pk, "status");
        msgpack_pack_long (&pk, status);
    }
}

typedef struct {
    zf_actor_args_t *args;              // pipeline, actor, broker
    zf_client_t *client;                // session with the broker
    int64_t now;                        // the clock (ms, monotonic), read once per round
    int64_t first_start;                // when the first request started (ms)
    int64_t last_end;                   // when the last one ended (ms)
    const char *name;                   // the actor's name
    const char *output;                 // the queue written
    CURLM *multi;                       // the transfers and their connection pool
    zlistx_t *idle;                     // CURL *: transfer handles to use again
    zlistx_t *waiting;                  // zf_fetch_request_t not yet started or between tries
    zlistx_t *running;                  // zf_fetch_request_t with a transfer
    zlistx_t *spare;                    // zf_fetch_request_t to use again, buffers kept
    msgpack_sbuffer result;             // a result being packed, its buffer kept
    int concurrency;                    // requests held at most
    int64_t timeout;                    // default ms for a whole request
    int64_t connect_timeout;            // ms
    int64_t read_timeout;               // ms without a byte
    int64_t max_body;                   // bytes
    long max_redirects;                 // 0: redirects are results
    const char *user_agent;             // User-Agent
    struct curl_slist *default_headers; // from the headers section
    bool tls_verify;                    // check certificates
    long dns_cache;                     // seconds
    char retry_on[128];                 // ",kind,kind," of failures to try again
    int max_retries;                    // tries again at most
    int64_t retry_base;                 // ms
    int64_t retry_max;                  // ms
    zf_fetcher_on_error_t on_error;     // what a request that failed for good becomes
    double rate_per_host;               // requests per second to one host, 0 for no limit
    zhashx_t *hosts;                    // host -> zf_fetch_host_t
    int max_connections;                // transfers running at most
    int max_per_host;                   // transfers running to one host at most
    int64_t linger;                     // ms results and acks may wait to go together
    unsigned seed;                      // for jitter
    uint64_t requests;                  // tries started
    uint64_t connections;               // connections opened
    uint64_t failures;                  // final failures
    uint64_t classes[6];                // answers by status class: [2] is 2xx...
    uint64_t errors[16];                // failed tries, by index in s_kinds
    uint64_t reused;                    // transfers on a connection opened before
    uint32_t latencies[LATENCIES];      // us, of the last answers, a ring
    uint64_t answered;                  // answers in all (the ring's position)
    int64_t figures_at;                 // when the figures were last given (ms)
} self_t;

//  The record of host, made on first use.
static zf_fetch_host_t *
s_host (self_t *self, const char *name)
{
    zf_fetch_host_t *host = (zf_fetch_host_t *) zhashx_lookup (self->hosts, name);
    if (!host) {
        host = (zf_fetch_host_t *) zmalloc (sizeof (zf_fetch_host_t));
        zhashx_insert (self->hosts, name, host);
    }
    return host;
}

//  A request for item: a spare one if there is one, its buffers kept.
static zf_fetch_request_t *
s_request_new (self_t *self, zf_item_t *item)
{
    zf_fetch_request_t *req = (zf_fetch_request_t *) zlistx_detach (self->spare, NULL);
    if (!req) {
        req = (zf_fetch_request_t *) zmalloc (sizeof (zf_fetch_request_t));
        req->response = zchunk_new (NULL, 4096);
        req->response_headers = zchunk_new (NULL, 512);
    }
    req->item = item;
    req->max_body = self->max_body;
    req->now = &self->now;
    req->retry_after = -1;
    return req;
}

//  Ends req: kept as a spare while there are fewer than concurrency.
static void
s_request_end (self_t *self, zf_fetch_request_t **req_p)
{
    zf_fetch_request_t *req = *req_p;
    if (!req)
        return;
    if (req->easy || zlistx_size (self->spare) >= (size_t) self->concurrency) {
        zf_fetch_request_destroy (req_p);
        return;
    }
    zf_fetch_request_clear (req);
    zchunk_t *response = req->response, *headers = req->response_headers;
    // Buffers that a large response grew are not kept.
    if (zchunk_max_size (response) > SPARE_BUFFER_MAX) {
        zchunk_destroy (&response);
        response = zchunk_new (NULL, 4096);
    }
    if (zchunk_max_size (headers) > SPARE_BUFFER_MAX) {
        zchunk_destroy (&headers);
        headers = zchunk_new (NULL, 512);
    }
    zchunk_set (response, NULL, 0);
    zchunk_set (headers, NULL, 0);
    memset (req, 0, sizeof *req);
    req->response = response;
    req->response_headers = headers;
    zlistx_add_start (self->spare, req); // the warmest first, its memory in cache
    *req_p = NULL;
}

//  --------------------------------------------------------------------------
//  Transfers

static size_t
s_on_body (char *data, size_t size, size_t count, void *arg)
{
    zf_fetch_request_t *req = (zf_fetch_request_t *) arg;
    size_t len = size * count;
    req->last_byte = *req->now;
    if ((int64_t) (zchunk_size (req->response) + len) > req->max_body) {
        req->too_large = true;
        return 0; // libcurl stops the transfer: CURLE_WRITE_ERROR
    }
    zchunk_extend (req->response, data, len);
    return len;
}

//  Keeps the headers of the last response (a redirect's are dropped).
static size_t
s_on_header (char *data, size_t size, size_t count, void *arg)
{
    zf_fetch_request_t *req = (zf_fetch_request_t *) arg;
    size_t len = size * count;
    req->last_byte = *req->now;
    if (len >= 5 && memcmp (data, "HTTP/", 5) == 0) {
        zchunk_set (req->response_headers, NULL, 0); // a new response begins
        req->content_type[0] = 0;
        req->retry_after = -1;
        return len;
    }
    const char *colon = memchr (data, ':', len);
    if (!colon)
        return len;
    size_t name_len = (size_t) (colon - data);
    const char *value = colon + 1;
    size_t value_len = len - name_len - 1;
    while (value_len && (*value == ' ' || *value == '\t'))
        value++, value_len--;
    while (value_len && (value[value_len - 1] == '\r' || value[value_len - 1] == '\n' ||
                         value[value_len - 1] == ' '))
        value_len--;
    char entry[1024];
    if (name_len + value_len + 2 > sizeof entry)
        return len; // a header this long is not kept
    for (size_t i = 0; i < name_len; i++)
        entry[i] = (char) tolower ((unsigned char) data[i]);
    entry[name_len] = 0;
    memcpy (entry + name_len + 1, value, value_len);
    entry[name_len + 1 + value_len] = 0;
    if (streq (entry, "content-type"))
        snprintf (req->content_type, sizeof req->content_type, "%s", entry + name_len + 1);
    else if (streq (entry, "retry-after")) {
        // Seconds, or an HTTP date.
        char *end;
        long seconds = strtol (entry + name_len + 1, &end, 10);
        if (end != entry + name_len + 1 && !*end && seconds >= 0)
            req->retry_after = (int64_t) seconds * 1000;
        else {
            time_t when = curl_getdate (entry + name_len + 1, NULL);
            if (when > 0)
                req->retry_after = when > time (NULL) ? (int64_t) (when - time (NULL)) * 1000 : 0;
        }
    }
    zchunk_extend (req->response_headers, entry, name_len + value_len + 2);
    return len;
}

//  A transfer handle with the options every request shares.
static CURL *
s_new_transfer (self_t *self)
{
    CURL *easy = curl_easy_init ();
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) self->connect_timeout);
    curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, self->max_redirects > 0 ? 1L : 0L);
    curl_easy_setopt (easy, CURLOPT_MAXREDIRS, self->max_redirects);
    curl_easy_setopt (easy, CURLOPT_USERAGENT, self->user_agent);
    curl_easy_setopt (easy, CURLOPT_ACCEPT_ENCODING, ""); // every decoder libcurl has
    curl_easy_setopt (easy, CURLOPT_SSL_VERIFYPEER, self->tls_verify ? 1L : 0L);
    curl_easy_setopt (easy, CURLOPT_SSL_VERIFYHOST, self->tls_verify ? 2L : 0L);
    curl_easy_setopt (easy, CURLOPT_DNS_CACHE_TIMEOUT, self->dns_cache);
    curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    return easy;
}

//  Starts the next try of req.
static void
s_start (self_t *self, zf_fetch_request_t *req)
{
    req->attempt++;
    if (self->requests++ == 0)
        self->first_start = zclock_mono ();
    zchunk_set (req->response, NULL, 0);
    zchunk_set (req->response_headers, NULL, 0);
    req->content_type[0] = 0;
    req->retry_after = -1;
    req->too_large = req->stalled = false;
    req->last_byte = zclock_mono ();
    CURL *easy = (CURL *) zlistx_detach (self->idle, NULL);
    if (!easy)
        easy = s_new_transfer (self);
    req->easy = easy;
    // What differs from one request to the next; the rest was set once.
    curl_easy_setopt (easy, CURLOPT_URL, req->url);
    curl_easy_setopt (easy, CURLOPT_PRIVATE, req);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, req);
    curl_easy_setopt (easy, CURLOPT_HEADERDATA, req);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) req->timeout);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER,
                      req->headers ? req->headers : self->default_headers);
    if (req->body) {
        curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_size);
        curl_easy_setopt (easy, CURLOPT_POSTFIELDS, (char *) req->body);
    }
    else
        curl_easy_setopt (easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt (easy, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt (easy, CURLOPT_NOBODY, req->method && streq (req->method, "HEAD") ? 1L : 0L);
    curl_multi_add_handle (self->multi, easy);
    req->handle = zlistx_add_end (self->running, req);
}

//  Ends req's transfer, if it has one.
static void
s_stop_transfer (self_t *self, zf_fetch_request_t *req)
{
    if (!req->easy)
        return;
    long connects = 0;
    curl_easy_getinfo (req->easy, CURLINFO_NUM_CONNECTS, &connects);
    self->connections += (uint64_t) connects;
    self->reused += connects == 0;
    curl_multi_remove_handle (self->multi, req->easy);
    if (zlistx_size (self->idle) < (size_t) self->concurrency)
        zlistx_add_start (self->idle, req->easy); // the warmest first
    else
        curl_easy_cleanup (req->easy);
    req->easy = NULL;
    zlistx_delete (self->running, req->handle);
    req->handle = NULL;
    req->host_figures->running--;
}

//  Emits the result of req and acks its item; ends req.
static void
s_emit_result (self_t *self, zf_fetch_request_t *req, long status, int64_t elapsed_ms)
{
    msgpack_sbuffer *buffer = &self->result;
    zf_fetch_pack_result (req, status, elapsed_ms, buffer);
    zf_client_emit (self->client, req->item, self->output, buffer->data, buffer->size);
    zf_client_ack (self->client, &req->item);
    s_request_end (self, &req);
    if (buffer->alloc > SPARE_BUFFER_MAX) {
        // A large result grew it: give the memory back.
        msgpack_sbuffer_destroy (buffer);
        msgpack_sbuffer_init (buffer);
    }
}

//  The request failed for good (kind, why): an error item, a NACK or
//  nothing, per on-error. Frees req.
static void
s_fail (self_t *self, zf_fetch_request_t *req, const char *kind, const char *why, long status)
{
    self->failures++;
    if (self->on_error == ZF_FETCHER_RETRY)
        zf_client_nack (self->client, &req->item, why, false, 0);
    else if (self->on_error == ZF_FETCHER_DROP) {
        zsys_warning ("%s: %s: %s (dropped)", self->name, req->url ? req->url : "?", why);
        zf_client_ack (self->client, &req->item);
    }
    else {
        msgpack_sbuffer *buffer = &self->result;
        zf_fetch_pack_error (req, kind, why, status, buffer);
        zf_client_emit (self->client, req->item, self->output, buffer->data, buffer->size);
        zf_client_ack (self->client, &req->item);
    }
    s_request_end (self, &req);
}

//  Tries again later if kind may be retried and tries are left; true then.
static bool
s_retry (self_t *self, zf_fetch_request_t *req, const char *kind)
{
    char token[16];
    snprintf (token, sizeof token, ",%s,", kind);
    if (!strstr (self->retry_on, token) || req->attempt > self->max_retries)
        return false;
    // Full jitter: anywhere up to base * 2^(tries - 1), capped.
    int64_t ceiling = self->retry_base << (req->attempt - 1 < 20 ? req->attempt - 1 : 20);
    if (ceiling > self->retry_max || ceiling <= 0)
        ceiling = self->retry_max;
    int64_t delay = (int64_t) ((double) rand_r (&self->seed) / RAND_MAX * (double) ceiling);
    if (req->retry_after > delay)
        delay = req->retry_after < self->retry_max ? req->retry_after : self->retry_max;
    req->due = zclock_mono () + delay;
    req->handle = zlistx_add_end (self->waiting, req);
    return true;
}

//  A transfer ended with result.
static void
s_done (self_t *self, zf_fetch_request_t *req, CURLcode result)
{
    long status = 0;
    double total = 0;
    curl_easy_getinfo (req->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo (req->easy, CURLINFO_TOTAL_TIME, &total);
    const char *error = curl_easy_strerror (result);
    s_stop_transfer (self, req);
    self->last_end = self->now;
    const char *kind = NULL;
    char why[FAILURE_TEXT];
    if (req->stalled) {
        kind = "timeout";
        snprintf (why, sizeof why, "no data for %lld ms (read-timeout)",
                  (long long) self->read_timeout);
    }
    else if (req->too_large) {
        kind = "too-large";
        snprintf (why, sizeof why, "the body is larger than max-body (%lld bytes)",
                  (long long) self->max_body);
    }
    else if (result != CURLE_OK) {
        switch (result) {
            case CURLE_COULDNT_RESOLVE_HOST:
            case CURLE_COULDNT_RESOLVE_PROXY:
                kind = "dns";
                break;
            case CURLE_COULDNT_CONNECT:
                kind = "connect";
                break;
            case CURLE_OPERATION_TIMEDOUT:
                kind = "timeout";
                break;
            case CURLE_SSL_CONNECT_ERROR:
            case CURLE_PEER_FAILED_VERIFICATION:
            case CURLE_SSL_CERTPROBLEM:
            case CURLE_SSL_CIPHER:
            case CURLE_SSL_CACERT_BADFILE:
            case CURLE_SSL_ISSUER_ERROR:
                kind = "tls";
                break;
            case CURLE_TOO_MANY_REDIRECTS:
                kind = "redirects";
                break;
            case CURLE_URL_MALFORMAT:
                kind = "input";
                break;
            default:
                kind = "network";
        }
        snprintf (why, sizeof why, "%s", error);
    }
    else if (status == 429 || status >= 500) {
        kind = "status";
        snprintf (why, sizeof why, "HTTP %ld", status);
    }
    if (status >= 100 && status < 600) {
        self->classes[status / 100]++;
        self->latencies[self->answered++ % LATENCIES] = (uint32_t) (total * 1e6);
    }
    if (!kind) {
        s_emit_result (self, req, status, (int64_t) (total * 1000));
        return;
    }
    for (int k = 0; s_kinds[k]; k++)
        if (streq (s_kinds[k], kind))
            self->errors[k]++;
    const char *retry_kind = streq (kind, "status") ? (status == 429 ? "429" : "5xx") : kind;
    if (s_retry (self, req, retry_kind))
        return;
    if (req->attempt > 1) {
        size_t len = strlen (why);
        snprintf (why + len, sizeof why - len, " after %d attempts", req->attempt);
    }
    s_fail (self, req, kind, why, streq (kind, "status") ? status : 0);
}

//  --------------------------------------------------------------------------
//  The loop

//  Takes an item as a new request, waiting to start.
static void
s_take (self_t *self, zf_item_t *item)
{
    if (zf_item_cancelled (item)) {
        zf_client_ack (self->client, &item);
        return;
    }
    zf_fetch_request_t *req = s_request_new (self, item);
    char why[FAILURE_TEXT];
    if (zf_fetch_parse (req, self->timeout, why, sizeof why)) {
        zsys_warning ("%s: %s", self->name, why);
        req->attempt = 1;
        s_fail (self, req, "input", why, 0);
        return;
    }
    for (struct curl_slist *h = self->default_headers; req->headers && h; h = h->next)
        req->headers = curl_slist_append (req->headers, h->data);
    req->host_figures = s_host (self, req->host);
    req->due = zclock_mono ();
    req->handle = zlistx_add_end (self->waiting, req);
}

//  Starts the waiting requests that are due, as far as max-connections and
//  max-per-host allow (libcurl would queue the rest itself, at a cost on
//  every transfer), spacing each host's requests with rate-per-host.
//  Returns the ms until the next one is due (or max).
static int64_t
s_start_due (self_t *self, int64_t max)
{
    int64_t now = zclock_mono (), next = max;
    zf_fetch_request_t *req = (zf_fetch_request_t *) zlistx_first (self->waiting);
    while (req && (int) zlistx_size (self->running) < self->max_connections) {
        zf_fetch_request_t *following = (zf_fetch_request_t *) zlistx_next (self->waiting);
        zf_fetch_host_t *host = req->host_figures;
        int64_t due = req->due > host->next_at ? req->due : host->next_at;
        if (due <= now && host->running < self->max_per_host) {
            if (self->rate_per_host > 0)
                host->next_at = now + (int64_t) (1000.0 / self->rate_per_host);
            host->running++;
            zlistx_delete (self->waiting, req->handle);
            s_start (self, req);
        }
        else if (due > now && due - now < next)
            next = due - now;
        req = following;
    }
    return next;
}

//  Stops the transfers that have had no byte for read-timeout.
static void
s_check_stalls (self_t *self)
{
    int64_t now = self->now;
    zf_fetch_request_t *req = (zf_fetch_request_t *) zlistx_first (self->running);
    while (req) {
        zf_fetch_request_t *following = (zf_fetch_request_t *) zlistx_next (self->running);
        if (now - req->last_byte >= self->read_timeout) {
            req->stalled = true;
            s_done (self, req, CURLE_OPERATION_TIMEDOUT);
        }
        req = following;
    }
}

//  Runs the transfers and handles those that ended.
static void
s_perform (self_t *self)
{
    int running;
    curl_multi_perform (self->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (self->multi, &left)))
        if (msg->msg == CURLMSG_DONE) {
            zf_fetch_request_t *req;
            curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &req);
            s_done (self, req, msg->data.result);
        }
}

static int
s_compare_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

//  Gives the broker the fetcher's figures, for the stats event: requests,
//  answers by status class, failed tries by kind, connections opened and
//  reused, and latency percentiles over the last LATENCIES answers.
static void
s_figures (self_t *self)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 6);
    zf_mp_pack_cstr (&pk, "requests");
    msgpack_pack_uint64 (&pk, self->requests);
    zf_mp_pack_cstr (&pk, "in_flight");
    msgpack_pack_uint64 (&pk, zlistx_size (self->running));
    zf_mp_pack_cstr (&pk, "responses");
    msgpack_pack_map (&pk, 5);
    for (int c = 1; c <= 5; c++) {
        char name[4] = { (char) ('0' + c), 'x', 'x', 0 };
        zf_mp_pack_cstr (&pk, name);
        msgpack_pack_uint64 (&pk, self->classes[c]);
    }
    zf_mp_pack_cstr (&pk, "errors");
    uint32_t kinds = 0;
    while (s_kinds[kinds])
        kinds++;
    msgpack_pack_map (&pk, kinds);
    for (uint32_t k = 0; k < kinds; k++) {
        zf_mp_pack_cstr (&pk, s_kinds[k]);
        msgpack_pack_uint64 (&pk, self->errors[k]);
    }
    zf_mp_pack_cstr (&pk, "connections");
    msgpack_pack_map (&pk, 2);
    zf_mp_pack_cstr (&pk, "opened");
    msgpack_pack_uint64 (&pk, self->connections);
    zf_mp_pack_cstr (&pk, "reused");
    msgpack_pack_uint64 (&pk, self->reused);
    zf_mp_pack_cstr (&pk, "latency_ms");
    size_t n = self->answered < LATENCIES ? (size_t) self->answered : LATENCIES;
    msgpack_pack_map (&pk, 2);
    uint32_t sorted[LATENCIES];
    memcpy (sorted, self->latencies, n * sizeof (uint32_t));
    qsort (sorted, n, sizeof (uint32_t), s_compare_u32);
    zf_mp_pack_cstr (&pk, "p50");
    msgpack_pack_double (&pk, n ? sorted[n / 2] / 1000.0 : 0.0);
    zf_mp_pack_cstr (&pk, "p99");
    msgpack_pack_double (&pk, n ? sorted[n * 99 / 100] / 1000.0 : 0.0);
    zf_client_set_figures (self->client, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    self->figures_at = self->now;
}

static void
s_configure (self_t *self)
{
    zf_actor_conf_t *conf = self->args->conf;
    const zf_fetcher_settings_t *set = (const zf_fetcher_settings_t *) conf->settings;
    self->name = conf->name;
    self->output = conf->output;
    self->concurrency = (int) set->concurrency;
    self->timeout = set->timeout;
    self->connect_timeout = set->connect_timeout;
    self->read_timeout = set->read_timeout;
    self->max_body = set->max_body;
    self->max_redirects = (long) set->follow_redirects;
    self->user_agent = set->user_agent;
    self->tls_verify = set->tls_verify;
    self->dns_cache = (long) (set->dns_cache / 1000);
    snprintf (self->retry_on, sizeof self->retry_on, ",%s,", set->retry_on);
    for (char *c = self->retry_on; *c; c++)
        if (*c == ' ')
            *c = ',';
    self->max_retries = (int) set->max_retries;
    self->retry_base = set->retry_base;
    self->retry_max = set->retry_max;
    self->on_error = (zf_fetcher_on_error_t) set->on_error;
    self->rate_per_host = set->rate_per_host;
    self->linger = set->linger;
    for (zconfig_t *h = set->headers ? zconfig_child (set->headers) : NULL; h;
         h = zconfig_next (h)) {
        char *line = zsys_sprintf ("%s: %s", zconfig_name (h), zconfig_value (h));
        self->default_headers = curl_slist_append (self->default_headers, line);
        zstr_free (&line);
    }
    if (!self->tls_verify)
        zsys_warning ("%s: tls-verify = false: servers' certificates are not checked", self->name);
    self->multi = curl_multi_init ();
    curl_multi_setopt (self->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) set->max_connections);
    curl_multi_setopt (self->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) set->max_per_host);
    curl_multi_setopt (self->multi, CURLMOPT_MAXCONNECTS, (long) set->max_connections);
    self->waiting = zlistx_new ();
    self->running = zlistx_new ();
    self->spare = zlistx_new ();
    msgpack_sbuffer_init (&self->result);
    self->idle = zlistx_new ();
    self->hosts = zhashx_new ();
    zhashx_set_destructor (self->hosts, (zhashx_destructor_fn *) zstr_free);
    self->max_connections = (int) set->max_connections;
    self->max_per_host = (int) set->max_per_host;
    self->seed = (unsigned) zclock_time () ^ (unsigned) getpid ();
}

void
zf_fetch_actor (zsock_t *pipe, void *args)
{
    self_t self = { .args = (zf_actor_args_t *) args };
    s_configure (&self);
    zsock_signal (pipe, 0);
    self.client = zf_actor_client (self.args, self.args->conf->input, self.concurrency, pipe);
    if (self.client)
        zf_client_set_linger (self.client, (int) self.linger);
    int64_t stop_by = 0; // when stopping: the end of the grace period
    int64_t last_stall_check = 0;
    while (self.client && !zsys_interrupted && !zf_client_refused (self.client)) {
        self.now = zclock_mono ();
        if (!stop_by && zf_actor_stopping (pipe))
            stop_by = zclock_mono () + STOP_GRACE;
        size_t held = zlistx_size (self.waiting) + zlistx_size (self.running);
        if (stop_by && (zlistx_size (self.running) == 0 || zclock_mono () >= stop_by))
            break; // what waits, or still runs, goes back with the session
        // Take new items while there is room, waiting for one only when
        // idle; each look also sends the results and acks made so far.
        if (stop_by || held >= (size_t) self.concurrency)
            zf_client_pump (self.client, 0);
        while (!stop_by && held < (size_t) self.concurrency) {
            zf_item_t *item = zf_client_next (self.client, held ? 0 : 100);
            if (!item)
                break;
            s_take (&self, item);
            held++;
        }
        int64_t wait = stop_by ? POLL_MAX : s_start_due (&self, POLL_MAX);
        if (self.now - self.figures_at >= FIGURES_EVERY && self.requests)
            s_figures (&self);
        if (zlistx_size (self.running) == 0) {
            if (zlistx_size (self.waiting))
                zf_client_pump (self.client, (int) wait); // between tries
            continue;
        }
        int linger = zf_client_linger_left (self.client);
        if (linger >= 0 && linger < wait)
            wait = linger;
        struct curl_waitfd broker = { .fd = zf_client_fd (self.client),
                                      .events = CURL_WAIT_POLLIN };
        curl_multi_poll (self.multi, &broker, 1, (int) wait, NULL);
        self.now = zclock_mono ();
        s_perform (&self);
        if (self.now - last_stall_check >= 50) {
            s_check_stalls (&self);
            last_stall_check = self.now;
        }
        if (self.now - self.figures_at >= FIGURES_EVERY)
            s_figures (&self);
    }
    double busy = (double) (self.last_end - self.first_start) / 1000.0;
    zsys_info ("%s: %llu requests in %.2f s (%.0f/s), %llu connections opened, %llu failed",
               self.name, (unsigned long long) self.requests, busy,
               busy > 0 ? (double) self.requests / busy : 0.0,
               (unsigned long long) self.connections, (unsigned long long) self.failures);
    // Unfinished requests: their items go back to the broker with the session.
    zf_fetch_request_t *req;
    while ((req = (zf_fetch_request_t *) zlistx_first (self.running))) {
        s_stop_transfer (&self, req);
        zf_fetch_request_destroy (&req);
    }
    while ((req = (zf_fetch_request_t *) zlistx_detach (self.waiting, NULL)))
        zf_fetch_request_destroy (&req);
    while ((req = (zf_fetch_request_t *) zlistx_detach (self.spare, NULL)))
        zf_fetch_request_destroy (&req);
    zlistx_destroy (&self.spare);
    msgpack_sbuffer_destroy (&self.result);
    int status = zf_actor_client_end (&self.client, 0);
    CURL *easy;
    while ((easy = (CURL *) zlistx_detach (self.idle, NULL)))
        curl_easy_cleanup (easy);
    zlistx_destroy (&self.idle);
    zlistx_destroy (&self.waiting);
    zlistx_destroy (&self.running);
    zhashx_destroy (&self.hosts);
    curl_slist_free_all (self.default_headers);
    curl_multi_cleanup (self.multi);
    zf_actor_exit (pipe, status);
}

void
zf_fetch_init (void)
{
    // libcurl's global setup (OpenSSL's with it) runs once in the main
    // thread: its per-thread state is then the main thread's, freed at
    // exit, not left behind by the actor's thread as it ends.
    curl_global_init (CURL_GLOBAL_DEFAULT);
}
