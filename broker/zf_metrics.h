/*  zf_metrics: the broker's HTTP endpoint (`metrics = ADDRESS:PORT` in the
    broker section; off unless given, loopback unless an address is given):
    GET /metrics answers the figures of the broker's latest stats event as
    Prometheus text, GET /health answers 200 while stats come and 503 when
    none came for 5 s.
*/
#ifndef ZF_METRICS_H_INCLUDED
#define ZF_METRICS_H_INCLUDED

#include <czmq.h>

#include "zf_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_metrics_t zf_metrics_t;

//  Listens on address (ADDRESS:PORT, :PORT or PORT; port 0 picks one) and
//  follows the stats events at events. NULL with err if it cannot.
zf_metrics_t *zf_metrics_new (const char *address, const char *events, zf_error_t *err);

void zf_metrics_destroy (zf_metrics_t **self_p);

//  Where it listens, ADDRESS:PORT (the port it got, if it asked for 0).
const char *zf_metrics_address (zf_metrics_t *self);

#ifdef __cplusplus
}
#endif
#endif
