/*  zf_taps: the broker's events as a monitor shows them, for zflow tap and
    the gateway's GET /events. A data event (the items put to a queue in
    one turn of the broker's loop) is shown as one event per item, its
    body beside its fields; a gap in a topic's sequence numbers (events the
    broker dropped for a slow subscriber) is said, with how many were
    missed.
*/
#ifndef ZF_TAPS_H_INCLUDED
#define ZF_TAPS_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_taps_t zf_taps_t;

//  One event as shown: its topic, its fields (a msgpack map) and, for an
//  item of a data event, the item's body (msgpack, or any bytes a raw
//  writer put), else NULL.
typedef void (zf_taps_show_fn) (void *arg, const char *topic, const uint8_t *map, size_t map_size,
                                const uint8_t *body, size_t body_size);

//  missed events of topic were not received.
typedef void (zf_taps_gap_fn) (void *arg, const char *topic, uint64_t missed);

//  A reader of one subscriber's events: it remembers the sequence number
//  each topic should have next.
zf_taps_t *zf_taps_new (void);

void zf_taps_destroy (zf_taps_t **self_p);

//  Reads one event, topic and its map (the message's second frame): its
//  gap first if there is one, then what it shows (a data event, each of
//  its items). Returns 0, or -1 if the event is unreadable (nothing shown).
int zf_taps_read (zf_taps_t *self, const char *topic, const uint8_t *map, size_t map_size,
                  zf_taps_show_fn *show, zf_taps_gap_fn *gap, void *arg);

//  The event as shown, {"topic": TOPIC, its fields..., "body": BODY}, as
//  msgpack into out (emptied first). A body that is not one msgpack value
//  goes as bin, so that the map stays whole.
void zf_taps_pack (msgpack_sbuffer *out, const char *topic, const uint8_t *map, size_t map_size,
                   const uint8_t *body, size_t body_size);

//  The same as one line of JSON (no newline; caller frees): a body that is
//  no JSON value (bytes that are not msgpack) is null.
char *zf_taps_json (const char *topic, const uint8_t *map, size_t map_size, const uint8_t *body,
                    size_t body_size);

//  The value of the string field key in the msgpack map at data, into
//  out; false if there is none.
bool zf_taps_field (const uint8_t *data, size_t size, const char *key, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
