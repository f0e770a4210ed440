/*  zf_publish: the broker's XPUB side (schemas/zfp.md §7, encoded by
    zf_events): state events as things happen, stats once a second, and the
    data of tapped queues, sent only while someone subscribes.

    The items put to a tapped queue in one turn of the loop go out as one
    data event; a sampled tap (sample.N.data.QUEUE) gets one item in N, as
    an event of its own, so it costs the broker one event in N. The data
    events being filled go out at the end of the turn and before any other
    event, so events keep the order in which things happened. A slow
    subscriber loses events at its high-water mark; the broker never waits.
*/
#ifndef ZF_PUBLISH_H_INCLUDED
#define ZF_PUBLISH_H_INCLUDED

#include "zf_server.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZF_XPUB_HWM 1000 // events queued for a subscriber at most

//  A queue was made: the publisher's state of it (queue->tap).
void zf_publish_queue (zf_server_t *server, zf_queue_t *queue);

//  Frees a queue's publisher state; safe on NULL.
void zf_publish_queue_destroy (zf_queue_t *queue);

//  A subscription or an unsubscription came (an XPUB frame).
void zf_publish_subscription (zf_server_t *server, zframe_t *frame);

//  An item was put to queue (stored for its readers, or kept only as a
//  result): into the queue's data event if it is tapped.
void zf_publish_item (zf_server_t *server, zf_queue_t *queue, const zf_id_t *id, int64_t ts,
                      zframe_t *body);

//  Sends the data events being filled (at the end of each loop turn).
void zf_publish_flush (zf_server_t *server);

//  The events, one function each.
void zf_publish_crashloop (zf_server_t *server, const char *actor, uint32_t worker, uint64_t pid,
                           uint32_t deaths, uint64_t backoff, const char *reason);
void zf_publish_worker (zf_server_t *server, const char *topic, zf_session_t *session,
                        const char *reason);
void zf_publish_rejected (zf_server_t *server, const char *socket, const char *from,
                          const char *reason);
void zf_publish_dead (zf_server_t *server, zf_delivery_t *d);
void zf_publish_auth (zf_server_t *server, const char *address, const char *key,
                      const char *reason);

//  The stats event; elapsed_ms since the last one (for the rates).
void zf_publish_stats (zf_server_t *server, int64_t elapsed_ms);

#ifdef __cplusplus
}
#endif
#endif
