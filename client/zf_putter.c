/*  zf_putter: a session's puts (include/zflow.h, "Putting"): items gather
    in one PUT of up to 256, which goes out when full or when the session
    is about to wait; each PUT is kept until the broker confirms it, and
    sent again on a new session. Producers' checkpoints and END, clients'
    cancels and put requests. zf_client.c is the session they ride on.
*/
#include "zflow.h"
#include "zf_client_impl.h"
#include "zf_alloc.h"
#include "zf_json.h"
#include "zf_mp.h"
#include "zf_proto.h"

#include <ctype.h>
#include <czmq.h>
#include <strings.h>
#include <sys/random.h>

#define MAX_FRAME_MIN   1024 // the smallest max-frame a broker has
#define WELCOME_WAIT_MS 2000 // how long a first put waits for the broker's WELCOME

void
zf_client_unconfirmed_destroy (s_unconfirmed_t **self_p)
{
    if (!*self_p)
        return;
    zmsg_destroy (&(*self_p)->msg);
    free (*self_p);
    *self_p = NULL;
}

static void s_key_by_url (zf_client_t *self);

void
zf_client_send_put (zf_client_t *self)
{
    // Held until the broker first answered: its WELCOME names the queues
    // whose items are keyed by URL, which only the writer can key.
    if (self->put->nitems == 0 || !self->told)
        return;
    if (self->nacks == 0)
        self->pending_since = 0; // else the acks keep their time
    s_key_by_url (self);
    self->put->seq = ++self->seq;
    uint32_t count = self->put->nitems;
    self->put_requests = 0;
    zmsg_t *msg = zf_proto_encode (self->put, NULL);
    zf_proto_reset (self->put, ZF_PUT);
    zlistx_purge (self->put_headers);
    if (!msg)
        return;
    s_unconfirmed_t *u = (s_unconfirmed_t *) zf_alloc (sizeof (s_unconfirmed_t));
    u->seq = self->seq;
    u->count = count;
    u->msg = msg;
    zlistx_add_end (self->unconfirmed, u);
    self->unconfirmed_items += count;
    zf_client_send_kept (self, msg);
}

void
zf_client_on_confirm (zf_client_t *self)
{
    uint32_t count = 0; // items of the PUT confirmed
    for (s_unconfirmed_t *u = (s_unconfirmed_t *) zlistx_first (self->unconfirmed); u;
         u = (s_unconfirmed_t *) zlistx_next (self->unconfirmed))
        if (u->seq == self->in->seq) {
            count = u->count;
            self->unconfirmed_items -= u->count;
            zlistx_delete (self->unconfirmed, zlistx_cursor (self->unconfirmed));
            break;
        }
    if (zf_client_on_confirm_request (self, count))
        return; // its request tells its caller
    if (self->in->refused) {
        self->refused += self->in->refused;
        snprintf (self->last_error, sizeof self->last_error, "refused: %s", self->in->reason);
        zf_client_say (self, "warning", "the broker refused %u item%s: %s", self->in->refused,
                       self->in->refused == 1 ? "" : "s", self->in->reason);
    }
}

//  Appends an item to the PUT being filled, first waiting for confirms
//  while the PUT window is full; a wait that the wake socket ends, when
//  wake, gives up (-1: the item is not put). Takes the body. wait: the ms
//  the broker may hold it for room (0: as long as it takes); a PUT holds
//  items of one wait only.
//  --------------------------------------------------------------------------
//  Keys from URLs

void
zf_client_key_by_url (zf_client_t *self, const char *queue)
{
    if (!self->url_keyed) {
        self->url_keyed = zlistx_new ();
        zlistx_set_destructor (self->url_keyed, (zlistx_destructor_fn *) zstr_free);
        zlistx_set_duplicator (self->url_keyed, (zlistx_duplicator_fn *) strdup);
        zlistx_set_comparator (self->url_keyed, (zlistx_comparator_fn *) strcmp);
    }
    if (!zlistx_find (self->url_keyed, (void *) queue))
        zlistx_add_end (self->url_keyed, (void *) queue);
}

//  The URL of an item's body: a string, or the "url" string of a map.
static bool
s_body_url (zframe_t *body, const char **url, uint32_t *len)
{
    zf_mp_t mp;
    zf_mp_init (&mp, zframe_data (body), zframe_size (body));
    if (zf_mp_peek (&mp) == ZF_MP_STR)
        return zf_mp_str (&mp, url, len, NULL) == 0;
    uint32_t count;
    if (zf_mp_map (&mp, &count, NULL))
        return false;
    for (uint32_t i = 0; i < count; i++) {
        if (zf_mp_key_is (&mp, "url"))
            return zf_mp_str (&mp, url, len, NULL) == 0;
        if (zf_mp_skip_pair (&mp))
            return false;
    }
    return false;
}

//  The host of url (scheme://[user@]host[:port][/...]), with its port when
//  it has one other than its scheme's (http 80, https 443), lowercased,
//  into out; false when it has none, one longer than out holds, or one that
//  is not UTF-8 or has a control character (a key is a header's text). The
//  authority ends at '/', '?', '#' or '\\' (as browsers read it), and the
//  host is after its last '@'.
static bool
s_url_host (const char *url, uint32_t len, char *out, size_t size)
{
    const char *end = url + len, *p = url;
    if (p == end || !isalpha ((unsigned char) *p))
        return false;
    while (p < end && (isalnum ((unsigned char) *p) || *p == '+' || *p == '-' || *p == '.'))
        p++;
    size_t scheme = (size_t) (p - url);
    if (end - p < 3 || memcmp (p, "://", 3) != 0)
        return false;
    p += 3;
    const char *stop = p;
    while (stop < end && *stop != '/' && *stop != '?' && *stop != '#' && *stop != '\\')
        stop++;
    for (const char *q = p; q < stop; q++)
        if (*q == '@')
            p = q + 1; // user info, not the host
    size_t n = (size_t) (stop - p);
    if ((scheme == 4 && strncasecmp (url, "http", 4) == 0 && n > 3 &&
         memcmp (stop - 3, ":80", 3) == 0) ||
        (scheme == 5 && strncasecmp (url, "https", 5) == 0 && n > 4 &&
         memcmp (stop - 4, ":443", 4) == 0))
        n = (size_t) ((const char *) memrchr (p, ':', n) - p); // the scheme's own port
    if (n == 0 || n >= size)
        return false;
    for (size_t i = 0, len; i < n; i += len) {
        len = zf_utf8_len ((const unsigned char *) p + i, n - i);
        if (len == 0 || (unsigned char) p[i] < 0x20 || p[i] == 0x7f)
            return false;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char) tolower ((unsigned char) p[i]);
    out[n] = 0;
    return true;
}

//  env's headers, with zflow-key the host of its body's URL (in place of
//  any zflow-key it had): a copy kept with the PUT's, or as they were when
//  the body has no URL or the headers no room.
static const uint8_t *
s_keyed_headers (zf_client_t *self, const zf_env_t *env, zframe_t *body, uint32_t *size)
{
    *size = env->headers_size;
    const char *url;
    uint32_t url_len;
    char host[256];
    if (!s_body_url (body, &url, &url_len) || !s_url_host (url, url_len, host, sizeof host))
        return env->headers;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    zf_mp_t mp;
    zf_mp_init (&mp, env->headers, env->headers_size);
    uint32_t count = 0, kept = 0;
    if (env->headers_size && zf_mp_map (&mp, &count, NULL))
        count = 0; // checked by the caller's put: cannot happen
    const char *keys[ZF_HEADERS_COUNT], *values[ZF_HEADERS_COUNT];
    uint32_t key_lens[ZF_HEADERS_COUNT], value_lens[ZF_HEADERS_COUNT];
    for (uint32_t i = 0; i < count && kept < ZF_HEADERS_COUNT; i++) {
        if (zf_mp_str (&mp, &keys[kept], &key_lens[kept], NULL) ||
            zf_mp_str (&mp, &values[kept], &value_lens[kept], NULL))
            break;
        if (!(key_lens[kept] == 9 && memcmp (keys[kept], "zflow-key", 9) == 0))
            kept++;
    }
    if (kept + 1 > ZF_HEADERS_COUNT) {
        msgpack_sbuffer_destroy (&buffer);
        return env->headers; // no room: the item keeps what it had
    }
    msgpack_pack_map (&pk, kept + 1);
    for (uint32_t i = 0; i < kept; i++) {
        zf_mp_pack_strn (&pk, keys[i], key_lens[i]);
        zf_mp_pack_strn (&pk, values[i], value_lens[i]);
    }
    zf_mp_pack_cstr (&pk, "zflow-key");
    zf_mp_pack_cstr (&pk, host);
    if (buffer.size > ZF_HEADERS_MAX) {
        msgpack_sbuffer_destroy (&buffer);
        return env->headers;
    }
    zlistx_add_end (self->put_headers, buffer.data); // freed with the PUT's
    *size = (uint32_t) buffer.size;
    return (const uint8_t *) buffer.data;
}

//  The items of the PUT being filled bound for a queue keyed by URL (as the
//  broker's WELCOME, or a reload's PING, says; or zf_client_key_by_url)
//  carry their URL's host as zflow-key.
static void
s_key_by_url (zf_client_t *self)
{
    if (!self->url_keyed && (!self->told_keyed || zhashx_size (self->told_keyed) == 0))
        return;
    for (uint32_t i = 0; i < self->put->nitems; i++) {
        zf_env_t *env = &self->put->items[i];
        if ((self->url_keyed && zlistx_find (self->url_keyed, env->queue)) ||
            (self->told_keyed && zhashx_lookup (self->told_keyed, env->queue))) {
            uint32_t size;
            const uint8_t *headers = s_keyed_headers (self, env, env->body, &size);
            env->headers = headers;
            env->headers_size = size;
        }
    }
}

//  Whether an item put with wait must wait before it goes into the PUT
//  being filled: the window is full, or the PUT (a batch at most, of one
//  wait and one track setting; held until the broker's WELCOME) is.
static bool
s_put_full (zf_client_t *self, uint32_t wait)
{
    uint32_t n = self->put->nitems;
    return self->unconfirmed_items + n >= self->window || n >= ZF_BATCH_MAX ||
           (n && (self->put->wait != wait || self->put->track != self->track));
}

//  --------------------------------------------------------------------------

int
zf_client_enqueue (zf_client_t *self, zf_env_t *env, zframe_t **body_p, bool wake, uint32_t wait)
{
    if (self->refused_hello) {
        zframe_destroy (body_p);
        return -1;
    }
    while (s_put_full (self, wait)) {
        zf_client_send_put (self);
        if (!s_put_full (self, wait))
            break; // sent: room in a new PUT
        if (zsys_interrupted || self->refused_hello ||
            (wake ? zf_client_pump_or_wake (self, 100, true)
                  : (zf_client_wait (self, 100), false))) {
            zframe_destroy (body_p);
            return -1;
        }
    }
    if (!self->pending_since)
        self->pending_since = zclock_mono ();
    if (self->put->nitems == 0) {
        self->put->wait = wait;
        self->put->track = self->track;
    }
    zf_env_t *slot = zf_proto_add_item (self->put, body_p);
    zframe_t *body = slot->body;
    *slot = *env;
    slot->body = body;
    if (slot->headers_size && slot->headers == env->headers) {
        // The caller's headers (or the input item's) may be gone by the
        // time the PUT is encoded.
        uint8_t *copy = (uint8_t *) zf_alloc (env->headers_size);
        memcpy (copy, env->headers, env->headers_size);
        zlistx_add_end (self->put_headers, copy);
        slot->headers = copy;
    }
    // A checkpoint is the position after this item: it goes with the PUT
    // that holds the item, never with one sent before it (whose confirm
    // would then cover an item the broker does not have).
    if (self->checkpoint_size) {
        memcpy (self->put->checkpoint, self->checkpoint, self->checkpoint_size);
        self->put->checkpoint_size = self->checkpoint_size;
        self->checkpoint_size = 0;
    }
    if (self->put->nitems == ZF_BATCH_MAX)
        zf_client_send_put (self);
    return 0;
}

int
zf_client_put_id (zf_client_t *self, const char *queue, const zf_id_t *id, const void *body,
                  size_t size)
{
    zf_put_opts_t opts = { .id = id };
    return zf_client_put_with (self, queue, body, size, &opts, NULL);
}

//  A random id from the session's pool: one getrandom call per 256 ids.
static zf_id_t
s_random_id (zf_client_t *self)
{
    if (self->random_pos + ZF_ID_SIZE > sizeof self->random) {
        size_t got = 0;
        while (got < sizeof self->random) {
            ssize_t rc = getrandom (self->random + got, sizeof self->random - got, 0);
            if (rc > 0)
                got += (size_t) rc;
        }
        self->random_pos = 0;
    }
    zf_id_t id;
    memcpy (id.bytes, self->random + self->random_pos, ZF_ID_SIZE);
    self->random_pos += ZF_ID_SIZE;
    return id;
}

//  Whether the broker has answered, waiting for its first WELCOME up to
//  WELCOME_WAIT_MS in all (from the first wait).
static bool
s_told (zf_client_t *self)
{
    if (!self->told && !self->told_by)
        self->told_by = zclock_mono () + WELCOME_WAIT_MS;
    while (!self->told && !self->refused_hello && !zsys_interrupted &&
           zclock_mono () < self->told_by)
        zf_client_wait (self, 50);
    return self->told;
}

//  Whether an item of size bytes is over the broker's max-frame (last_error
//  says so). A first put waits for the broker's WELCOME (s_told), which
//  says it and the queues keyed by URL, so that puts go at once, not held.
static bool
s_over_max_frame (zf_client_t *self, size_t size)
{
    if (!s_told (self) || size <= MAX_FRAME_MIN || !self->max_frame || size <= self->max_frame)
        return false;
    snprintf (self->last_error, sizeof self->last_error,
              "an item of %zu bytes is over the broker's max-frame (%u bytes): not put", size,
              self->max_frame);
    return true;
}

int
zf_client_put (zf_client_t *self, const char *queue, const void *body, size_t size, zf_id_t *id)
{
    return zf_client_put_with (self, queue, body, size, NULL, id);
}

int
zf_client_put_with (zf_client_t *self, const char *queue, const void *body, size_t size,
                    const zf_put_opts_t *opts, zf_id_t *id)
{
    if (!queue || strlen (queue) > ZF_NAME_MAX ||
        (opts && (opts->priority < 0 || opts->priority > ZF_PRIORITY_MAX)))
        return -1;
    if (opts && opts->headers_size) {
        zf_error_t err;
        if (zf_proto_check_headers (opts->headers, opts->headers_size, &err)) {
            snprintf (self->last_error, sizeof self->last_error, "headers: %s", err.text);
            return -1;
        }
    }
    zf_client_ready (self);
    if (s_over_max_frame (self, size))
        return -1;
    zf_env_t env = { .ts = zclock_time () };
    env.id = opts && opts->id ? *opts->id : s_random_id (self);
    if (opts && opts->root)
        env.root = *opts->root;
    if (opts && opts->group)
        env.group = *opts->group;
    if (opts) {
        env.priority = (uint32_t) opts->priority;
        env.headers = (const uint8_t *) opts->headers;
        env.headers_size = (uint32_t) opts->headers_size;
        env.not_before = opts->not_before;
        // A delay past the end of time is the end of time, not a wrap.
        int64_t due = opts->delay_ms > INT64_MAX - env.ts ? INT64_MAX : env.ts + opts->delay_ms;
        if (opts->delay_ms > 0 && due > env.not_before)
            env.not_before = due;
    }
    if (id)
        *id = env.id;
    snprintf (env.queue, sizeof env.queue, "%s", queue);
    zframe_t *frame = zframe_new (body, size);
    int64_t wait = opts && opts->wait_ms > 0 ? opts->wait_ms : 0;
    return zf_client_enqueue (self, &env, &frame, true,
                              wait > UINT32_MAX ? UINT32_MAX : (uint32_t) wait);
}

uint32_t
zf_client_put_room (zf_client_t *self)
{
    uint64_t used = self->unconfirmed_items + self->put->nitems;
    return used < self->window ? (uint32_t) (self->window - used) : 0;
}

zf_request_t *
zf_client_put_request (zf_client_t *self, const char *queue, const void *body, size_t size,
                       const zf_put_opts_t *opts, zf_id_t *id, int timeout_ms, void *arg)
{
    zf_client_ready (self);
    if (self->refused_hello)
        return NULL;
    // A request is answered by its PUT's CONFIRM, and PUTs are held until
    // the broker's first WELCOME: one that does not come in 2 s (in all)
    // refuses the request rather than keep it.
    if (!s_told (self)) {
        snprintf (self->last_error, sizeof self->last_error,
                  "no answer from the broker yet (within %d ms): try again", WELCOME_WAIT_MS);
        return NULL;
    }
    // Requests to one queue, put one after another, share a PUT, sent at
    // the next pump: an event loop's requests of one turn go together, and
    // share the broker's work and its journal's sync. Other items, or
    // another queue's, go first in a PUT of their own: a full queue then
    // holds up only its own puts.
    if (self->put->nitems &&
        (self->put_requests != self->put->nitems || strcmp (self->put->items[0].queue, queue)))
        zf_client_send_put (self);
    if (zf_client_put_room (self) == 0) {
        snprintf (self->last_error, sizeof self->last_error,
                  "the PUT window is full (%u items unconfirmed): try again once some are",
                  self->window);
        return NULL;
    }
    zf_id_t put_id;
    self->put->urgent = true; // a caller waits for its answer (if it goes as it fills)
    if (zf_client_put_with (self, queue, body, size, opts, &put_id))
        return NULL;
    // The item is the last of the PUT being filled, whose sequence number
    // is the next; or, if that PUT filled up and went, the last of it.
    uint64_t seq = self->seq + 1;
    uint32_t index = self->put->nitems - 1;
    if (self->put->nitems == 0) {
        seq = self->seq;
        index = ZF_BATCH_MAX - 1;
    }
    self->put->urgent = self->put->nitems > 0;
    self->put_requests = self->put->nitems;
    if (id)
        *id = put_id;
    return zf_client_put_asked (self, seq, index, &put_id, timeout_ms, arg);
}

int
zf_client_put_str (zf_client_t *self, const char *queue, const char *text, zf_id_t *id)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    zf_mp_pack_cstr (&pk, text);
    int rc = zf_client_put (self, queue, buffer.data, buffer.size, id);
    msgpack_sbuffer_destroy (&buffer);
    return rc;
}

void
zf_client_track (zf_client_t *self, bool track)
{
    zf_client_send_put (self); // items buffered so far keep the setting they were put with
    self->track = track;
}

//  Sends CANCEL of root, for reason; dead: the lineage failed.
static void
s_cancel (zf_client_t *self, const zf_id_t *root, const char *reason, bool dead)
{
    zf_client_ready (self);
    zf_client_send_acks (self);
    zf_proto_reset (self->out, ZF_CANCEL);
    self->out->id = *root;
    snprintf (self->out->reason, sizeof self->out->reason, "%s", reason ? reason : "");
    self->out->dead = dead;
    zf_client_send (self);
}

void
zf_client_cancel (zf_client_t *self, const zf_id_t *root, const char *reason)
{
    s_cancel (self, root, reason, false);
}

void
zf_client_cancel_dead (zf_client_t *self, const zf_id_t *root, const char *reason)
{
    s_cancel (self, root, reason, true);
}

void
zf_client_checkpoint (zf_client_t *self, const void *data, size_t size)
{
    if (size > ZF_CHECKPOINT_MAX)
        size = ZF_CHECKPOINT_MAX;
    memcpy (self->checkpoint, data, size);
    self->checkpoint_size = (uint32_t) size;
}

const void *
zf_client_resume_point (zf_client_t *self, size_t *size, int timeout_ms)
{
    zf_client_ready (self);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    while (!self->welcomed && !self->refused_hello && !zsys_interrupted &&
           zclock_mono () < deadline)
        zf_client_wait (self, 50);
    *size = self->resume_size;
    return self->has_resume ? self->resume : NULL;
}

int
zf_client_flush (zf_client_t *self, int timeout_ms)
{
    zf_client_ready (self);
    self->put->urgent = self->put->nitems > 0; // the caller waits for its confirm
    zf_client_send_acks (self);
    if (self->refused_hello)
        return -1;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    while (self->unconfirmed_items > 0 || self->put->nitems > 0) { // sent, or held for WELCOME
        int64_t left = deadline - zclock_mono ();
        if (self->refused_hello)
            return -1; // its words are said
        if (zsys_interrupted) {
            snprintf (self->last_error, sizeof self->last_error,
                      "interrupted before the broker confirmed %" PRIu64 " items",
                      (uint64_t) self->unconfirmed_items + self->put->nitems);
            return -1;
        }
        if (left <= 0) {
            // Nothing heard at all is not a broker that is slow to confirm.
            const char *endpoint = self->endpoints[self->current];
            if (self->told)
                snprintf (self->last_error, sizeof self->last_error,
                          "the broker at %s did not confirm %" PRIu64 " items within %d ms",
                          endpoint, (uint64_t) self->unconfirmed_items + self->put->nitems,
                          timeout_ms);
            else
                snprintf (self->last_error, sizeof self->last_error,
                          "no broker answered at %s within %d ms (none listening there, or "
                          "one whose CURVE keys are not these)",
                          endpoint, timeout_ms);
            return -1;
        }
        zf_client_wait (self, left < 100 ? left : 100);
    }
    uint32_t refused = self->refused;
    self->refused = 0;
    return refused ? -1 : 0;
}

int
zf_client_end (zf_client_t *self, uint64_t count)
{
    if (zf_client_flush (self, -1))
        return -1;
    zf_proto_reset (self->out, ZF_END);
    self->out->count = count;
    zf_client_send (self);
    return 0;
}
