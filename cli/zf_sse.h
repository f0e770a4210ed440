/*  zf_sse: a Server-Sent Events stream of the broker's events, for the
    gateway's GET /events?topic=PREFIX: each event as one `data:` line of
    JSON, as zflow tap --format json shows it (a data event's items one by
    one, bodies decoded). A reader slower than the events loses some, never
    the gateway's memory: at most a set number of bytes wait for it, the
    rest are dropped and counted, and the next event it gets is preceded by
    {"topic":"tap.gap","dropped":N}; events the broker dropped before they
    reached the gateway are said as zflow tap says them,
    {"topic":"tap.gap","of":TOPIC,"missed":N}. A quiet stream gets a
    comment line every few seconds, so that proxies keep it open and a
    reader that left is noticed.
*/
#ifndef ZF_SSE_H_INCLUDED
#define ZF_SSE_H_INCLUDED

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_sse_t zf_sse_t;

//  Called once the stream's connection is gone (the stream is freed next).
typedef void (zf_sse_closed_fn) (void *arg, zf_sse_t *stream);

//  A stream on connection of the events whose topics start with one of
//  the count prefixes (copied), holding at most buffer bytes for its
//  reader. Queues its response (200, text/event-stream); NULL if it could
//  not. closed is called with arg when the connection goes.
zf_sse_t *zf_sse_new (struct MHD_Connection *connection, const char *const *prefixes, size_t count,
                      size_t buffer, zf_sse_closed_fn *closed, void *arg);

//  Its prefixes.
size_t zf_sse_prefixes (zf_sse_t *self, const char *const **prefixes);

//  Its connection, and whether it waits (suspended) for the next event.
struct MHD_Connection *zf_sse_connection (zf_sse_t *self);
bool zf_sse_waiting (zf_sse_t *self);

//  True if it follows topic.
bool zf_sse_follows (zf_sse_t *self, const char *topic);

//  One event of the broker's (topic, the map of its second frame) to
//  send, if it follows topic.
void zf_sse_event (zf_sse_t *self, const char *topic, const uint8_t *map, size_t map_size);

//  A comment line if nothing went out for ping_ms before now (ms,
//  monotonic).
void zf_sse_ping (zf_sse_t *self, int64_t now, int64_t ping_ms);

//  Ends the stream: what it holds goes out, then the end (the gateway
//  stops).
void zf_sse_end (zf_sse_t *self);

#ifdef __cplusplus
}
#endif
#endif
