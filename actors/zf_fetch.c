/*  zf_fetch: the fetcher's requests and results. See zf_fetch.h. */
#include "zf_fetch.h"
#include "zf_mp.h"
#include "zf_value.h"

#include <ctype.h>

#define MANY_HEADERS 64 // response headers indexed on the stack

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
