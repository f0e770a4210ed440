/*  zf_metrics: the broker's HTTP endpoint (`metrics = ADDRESS:PORT` in the
    broker section; off unless given, loopback unless an address is given):
    GET /metrics answers the figures of the broker's latest stats event as
    Prometheus text, GET /health answers 200 while stats come and 503 when
    none came for 5 s. With `api = true`, a JSON API for web apps in any
    language: POST /queues/QUEUE with a JSON body puts it as one item and
    answers {"id": ID} once the broker confirmed it; GET /messages/ID answers
    {"id", "state"} (as zflow status); GET /queues answers the queues'
    figures. Bad JSON is a 400 with the reason.
*/
#ifndef ZF_METRICS_H_INCLUDED
#define ZF_METRICS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

#include "zf_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_metrics_t zf_metrics_t;

//  Listens on address (ADDRESS:PORT, :PORT or PORT; port 0 picks one) and
//  follows the stats events at events; with api, serves the JSON API as a
//  client of the broker at broker. NULL with err if it cannot.
zf_metrics_t *zf_metrics_new (const char *address, const char *events, const char *broker, bool api,
                              zf_error_t *err);

void zf_metrics_destroy (zf_metrics_t **self_p);

//  Where it listens, ADDRESS:PORT (the port it got, if it asked for 0).
const char *zf_metrics_address (zf_metrics_t *self);

#ifdef __cplusplus
}
#endif
#endif
