/*  zf_taps: the broker's events as a monitor shows them. See zf_taps.h. */
#include "zf_taps.h"
#include "zf_alloc.h"
#include "zf_json.h"
#include "zf_mp.h"

#include <czmq.h>

struct _zf_taps_t {
    zhashx_t *next_seq; // topic -> the seq expected next
};

zf_taps_t *
zf_taps_new (void)
{
    zf_taps_t *self = (zf_taps_t *) zf_alloc (sizeof (zf_taps_t));
    self->next_seq = zhashx_new ();
    return self;
}

void
zf_taps_destroy (zf_taps_t **self_p)
{
    zf_taps_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->next_seq);
    free (self);
    *self_p = NULL;
}

//  What is read of an event's map: seq numbers the event (a data event,
//  its first item), and a data event has ts, queue and its items.
typedef struct {
    uint64_t seq;       // 0 if none
    int64_t ts;         // ms since the epoch
    const char *queue;  // not NUL-terminated
    uint32_t queue_len; // bytes at queue
    bool has_items;     // items is an array
    uint32_t count;     // entries in items
    zf_mp_t items;      // at the first entry
} s_event_t;

//  Reads those fields of the map of fields entries at mp, whatever their
//  order; the rest are skipped. Returns -1 if the map is unreadable.
static int
s_event_read (zf_mp_t mp, uint32_t fields, s_event_t *event)
{
    *event = (s_event_t){ .queue = "" };
    for (uint32_t i = 0; i < fields; i++) {
        int rc = 0;
        if (zf_mp_key_is (&mp, "seq"))
            rc = zf_mp_uint (&mp, &event->seq, NULL);
        else if (zf_mp_key_is (&mp, "ts"))
            rc = zf_mp_int (&mp, &event->ts, NULL);
        else if (zf_mp_key_is (&mp, "queue"))
            rc = zf_mp_peek (&mp) == ZF_MP_STR
                     ? zf_mp_str (&mp, &event->queue, &event->queue_len, NULL)
                     : zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL);
        else if (zf_mp_key_is (&mp, "items")) {
            event->items = mp;
            event->has_items = zf_mp_array (&event->items, &event->count, NULL) == 0;
            rc = zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL);
        }
        else
            rc = zf_mp_skip_pair (&mp);
        if (rc)
            return -1;
    }
    return 0;
}

//  A data event carries the items put to a queue in one turn of the
//  broker's loop ({seq, ts, queue, items: [{id, created, body}]}). Each is
//  shown as an event of its own: {seq, ts, id, queue, created} and its
//  body, seq numbering the items. Returns -1 if the event is unreadable
//  (the items before the unreadable one were shown).
static int
s_show_items (const char *topic, s_event_t *event, zf_taps_show_fn *show, void *arg)
{
    zf_mp_t items = event->items;
    msgpack_sbuffer buffer; // each item's fields
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    int rc = 0;
    for (uint32_t i = 0; i < event->count && !rc; i++) {
        uint32_t keys;
        if ((rc = zf_mp_map (&items, &keys, NULL)))
            break;
        const char *id = "";
        uint32_t id_len = 0;
        int64_t created = 0;
        const uint8_t *body = NULL;
        uint32_t body_size = 0;
        for (uint32_t k = 0; k < keys && !rc; k++)
            rc = zf_mp_key_is (&items, "id")        ? zf_mp_str (&items, &id, &id_len, NULL)
                 : zf_mp_key_is (&items, "created") ? zf_mp_int (&items, &created, NULL)
                 : zf_mp_key_is (&items, "body")    ? zf_mp_bin (&items, &body, &body_size, NULL)
                                                    : zf_mp_skip_pair (&items);
        if (rc)
            break;
        buffer.size = 0;
        msgpack_pack_map (&pk, 5);
        zf_mp_pack_cstr (&pk, "seq");
        msgpack_pack_uint64 (&pk, event->seq + i);
        zf_mp_pack_cstr (&pk, "ts");
        msgpack_pack_int64 (&pk, event->ts);
        zf_mp_pack_cstr (&pk, "id");
        zf_mp_pack_strn (&pk, id, id_len);
        zf_mp_pack_cstr (&pk, "queue");
        zf_mp_pack_strn (&pk, event->queue, event->queue_len);
        zf_mp_pack_cstr (&pk, "created");
        msgpack_pack_int64 (&pk, created);
        show (arg, topic, (const uint8_t *) buffer.data, buffer.size,
              body ? body : (const uint8_t *) "\xc0", body ? body_size : 1); // nil if none
    }
    msgpack_sbuffer_destroy (&buffer);
    return rc ? -1 : 0;
}

int
zf_taps_read (zf_taps_t *self, const char *topic, const uint8_t *map, size_t map_size,
              zf_taps_show_fn *show, zf_taps_gap_fn *gap, void *arg)
{
    zf_mp_t mp;
    zf_mp_init (&mp, map, map_size);
    uint32_t fields;
    s_event_t event;
    bool data = strncmp (topic, "data.", 5) == 0 || strncmp (topic, "sample.", 7) == 0;
    if (zf_mp_map (&mp, &fields, NULL) || s_event_read (mp, fields, &event) ||
        (data && !event.has_items))
        return -1;
    // Gaps: each topic numbers its events (a data event, its items).
    uint64_t seq = event.seq;
    uintptr_t expected = (uintptr_t) zhashx_lookup (self->next_seq, topic);
    if (expected && seq > expected)
        gap (arg, topic, seq - expected);
    if (seq)
        zhashx_update (self->next_seq, topic,
                       (void *) (uintptr_t) (seq + (event.has_items ? event.count : 1)));
    if (!data) {
        show (arg, topic, map, map_size, NULL, 0);
        return 0;
    }
    return s_show_items (topic, &event, show, arg);
}

void
zf_taps_pack (msgpack_sbuffer *out, const char *topic, const uint8_t *map, size_t map_size,
              const uint8_t *body, size_t body_size)
{
    out->size = 0;
    zf_mp_t mp;
    zf_mp_init (&mp, map, map_size);
    uint32_t count = 0;
    zf_mp_map (&mp, &count, NULL);
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, count + 1 + (body != NULL));
    zf_mp_pack_cstr (&pk, "topic");
    zf_mp_pack_cstr (&pk, topic);
    msgpack_sbuffer_write (out, (const char *) mp.pos, zf_mp_left (&mp));
    if (body) {
        zf_mp_pack_cstr (&pk, "body");
        zf_mp_t check;
        zf_mp_init (&check, body, body_size);
        if (zf_mp_skip (&check, ZF_MP_MAX_DEPTH, NULL) == 0 && zf_mp_left (&check) == 0)
            msgpack_sbuffer_write (out, (const char *) body, body_size);
        else {
            msgpack_pack_bin (&pk, body_size);
            msgpack_pack_bin_body (&pk, body, body_size);
        }
    }
}

char *
zf_taps_json (const char *topic, const uint8_t *map, size_t map_size, const uint8_t *body,
              size_t body_size)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init (&out);
    zf_taps_pack (&out, topic, map, map_size, body, body_size);
    char *json = zf_msgpack_to_json (out.data, out.size, NULL);
    if (!json && body) {
        // A body that is not msgpack: a null body beside the fields.
        zf_taps_pack (&out, topic, map, map_size, (const uint8_t *) "\xc0", 1);
        json = zf_msgpack_to_json (out.data, out.size, NULL);
    }
    if (!json) {
        // Fields that are no JSON: the topic alone.
        zf_taps_pack (&out, topic, (const uint8_t *) "\x80", 1, NULL, 0);
        json = zf_msgpack_to_json (out.data, out.size, NULL);
    }
    msgpack_sbuffer_destroy (&out);
    return json ? json : zf_strdup ("{}");
}

bool
zf_taps_field (const uint8_t *data, size_t size, const char *key, char *out, size_t out_size)
{
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    uint32_t count;
    if (zf_mp_map (&mp, &count, NULL))
        return false;
    for (uint32_t i = 0; i < count; i++) {
        if (zf_mp_key_is (&mp, key)) {
            const char *str;
            uint32_t len;
            if (zf_mp_str (&mp, &str, &len, NULL))
                return false;
            snprintf (out, out_size, "%.*s", (int) len, str);
            return true;
        }
        if (zf_mp_skip_pair (&mp))
            return false;
    }
    return false;
}
