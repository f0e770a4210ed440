/*  zf_sse: a Server-Sent Events stream of the broker's events. See
    zf_sse.h.
*/
#include "zf_sse.h"
#include "zf_alloc.h"
#include "zf_json.h"
#include "zf_taps.h"

#include <czmq.h>

struct _zf_sse_t {
    struct MHD_Connection *connection; // its connection
    char **prefixes;                   // the topics it follows
    size_t count;                      // entries in prefixes
    zf_taps_t *taps;                   // reads its events (gaps per topic)
    char *data;                        // what is to go out: data[sent..len)
    size_t len, sent, cap;             //
    size_t limit;                      // bytes held for the reader at most
    uint64_t dropped;                  // events dropped since the last said
    bool suspended;                    // its connection waits for events
    bool ending;                       // the gateway stops: end after what it holds
    int64_t last_at;                   // when something was last queued (ms, monotonic)
    zf_sse_closed_fn *closed;          // tells its owner it is gone
    void *arg;                         // for closed
};

//  Appends text to what goes out, and wakes the connection.
static void
s_add (zf_sse_t *self, const char *text, size_t len)
{
    if (self->sent && self->sent >= self->len / 2) {
        memmove (self->data, self->data + self->sent, self->len - self->sent);
        self->len -= self->sent;
        self->sent = 0;
    }
    if (self->len + len > self->cap) {
        self->cap = (self->len + len) * 2;
        self->data = (char *) zf_realloc (self->data, self->cap);
    }
    memcpy (self->data + self->len, text, len);
    self->len += len;
    self->last_at = zclock_mono ();
    if (self->suspended) {
        self->suspended = false;
        MHD_resume_connection (self->connection);
    }
}

//  One SSE event of JSON text, unless the reader has too much waiting;
//  what was dropped before is said first.
static void
s_send (zf_sse_t *self, const char *json)
{
    size_t len = strlen (json);
    if (self->len - self->sent + len > self->limit) {
        self->dropped++;
        return;
    }
    if (self->dropped) {
        char gap[96];
        int n = snprintf (gap, sizeof gap, "data: {\"topic\":\"tap.gap\",\"dropped\":%llu}\n\n",
                          (unsigned long long) self->dropped);
        s_add (self, gap, (size_t) n);
        self->dropped = 0;
    }
    s_add (self, "data: ", 6);
    s_add (self, json, len);
    s_add (self, "\n\n", 2);
}

static void
s_show (void *arg, const char *topic, const uint8_t *map, size_t map_size, const uint8_t *body,
        size_t body_size)
{
    char *json = zf_taps_json (topic, map, map_size, body, body_size);
    s_send ((zf_sse_t *) arg, json);
    free (json);
}

static void
s_gap (void *arg, const char *topic, uint64_t missed)
{
    // The topic as a JSON string: through msgpack, which escapes it.
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_str_with_body (&pk, topic, strlen (topic));
    char *of = zf_msgpack_to_json (buffer.data, buffer.size, NULL);
    msgpack_sbuffer_destroy (&buffer);
    char *json = zsys_sprintf ("{\"topic\":\"tap.gap\",\"of\":%s,\"missed\":%llu}",
                               of ? of : "null", (unsigned long long) missed);
    s_send ((zf_sse_t *) arg, json);
    free (json);
    free (of);
}

//  libmicrohttpd asks for what goes out next: what is held, or (none
//  held) the connection waits, suspended, for the next event.
static ssize_t
s_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    zf_sse_t *self = (zf_sse_t *) cls;
    if (self->sent < self->len) {
        size_t n = self->len - self->sent < max ? self->len - self->sent : max;
        memcpy (buf, self->data + self->sent, n);
        self->sent += n;
        if (self->sent == self->len)
            self->sent = self->len = 0;
        return (ssize_t) n;
    }
    if (self->ending)
        return MHD_CONTENT_READER_END_OF_STREAM;
    self->suspended = true;
    MHD_suspend_connection (self->connection);
    return 0;
}

//  The response is freed: the connection is gone.
static void
s_free (void *cls)
{
    zf_sse_t *self = (zf_sse_t *) cls;
    self->closed (self->arg, self);
    for (size_t i = 0; i < self->count; i++)
        free (self->prefixes[i]);
    free (self->prefixes);
    zf_taps_destroy (&self->taps);
    free (self->data);
    free (self);
}

zf_sse_t *
zf_sse_new (struct MHD_Connection *connection, const char *const *prefixes, size_t count,
            size_t buffer, zf_sse_closed_fn *closed, void *arg)
{
    zf_sse_t *self = (zf_sse_t *) zf_alloc (sizeof (zf_sse_t));
    self->connection = connection;
    self->prefixes = (char **) zf_alloc (count * sizeof (char *) + 1);
    for (size_t i = 0; i < count; i++)
        self->prefixes[i] = zf_strdup (prefixes[i]);
    self->count = count;
    self->taps = zf_taps_new ();
    self->limit = buffer;
    self->closed = closed;
    self->arg = arg;
    struct MHD_Response *response =
        MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 16 * 1024, s_read, self, s_free);
    if (!response) {
        self->closed = NULL;
        for (size_t i = 0; i < count; i++)
            free (self->prefixes[i]);
        free (self->prefixes);
        zf_taps_destroy (&self->taps);
        free (self);
        return NULL;
    }
    MHD_add_response_header (response, "Content-Type", "text/event-stream");
    MHD_add_response_header (response, "Cache-Control", "no-cache");
    // The first bytes say the stream is open before any event comes.
    s_add (self, ": zflow events\n\n", 16);
    bool queued = MHD_queue_response (connection, 200, response) == MHD_YES;
    MHD_destroy_response (response); // freed (s_free) with the connection
    return queued ? self : NULL;
}

size_t
zf_sse_prefixes (zf_sse_t *self, const char *const **prefixes)
{
    *prefixes = (const char *const *) self->prefixes;
    return self->count;
}

struct MHD_Connection *
zf_sse_connection (zf_sse_t *self)
{
    return self->connection;
}

bool
zf_sse_waiting (zf_sse_t *self)
{
    return self->suspended;
}

bool
zf_sse_follows (zf_sse_t *self, const char *topic)
{
    for (size_t i = 0; i < self->count; i++)
        if (strncmp (topic, self->prefixes[i], strlen (self->prefixes[i])) == 0)
            return true;
    return false;
}

void
zf_sse_event (zf_sse_t *self, const char *topic, const uint8_t *map, size_t map_size)
{
    if (!zf_sse_follows (self, topic))
        return;
    if (zf_taps_read (self->taps, topic, map, map_size, s_show, s_gap, self)) {
        char *json = zf_taps_json ("tap.unreadable", (const uint8_t *) "\x80", 1, NULL, 0);
        s_send (self, json);
        free (json);
    }
}

void
zf_sse_ping (zf_sse_t *self, int64_t now, int64_t ping_ms)
{
    if (now - self->last_at >= ping_ms)
        s_add (self, ": ping\n\n", 8);
}

void
zf_sse_end (zf_sse_t *self)
{
    self->ending = true;
    if (self->suspended) {
        self->suspended = false;
        MHD_resume_connection (self->connection);
    }
}
