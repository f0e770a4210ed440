/*  zf_gateway: the broker's HTTP gateway (`metrics = ADDRESS:PORT` in the
    broker section; off unless given, loopback unless an address is given):
    GET /metrics answers the figures of the broker's latest stats event as
    Prometheus text, GET /health answers 200 while stats come and 503 when
    none came for 5 s. With `api = true`, a JSON API for web apps in any
    language: POST /queues/QUEUE with a JSON body puts it as one item and
    answers {"id": ID} once the broker confirmed it; GET /messages/ID answers
    {"id", "state"} (as zflow status); GET /queues answers the queues'
    figures. Bad JSON is a 400 with the reason.
*/
#ifndef ZF_GATEWAY_H_INCLUDED
#define ZF_GATEWAY_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

#include "zf_error.h"
#include "zf_pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_gateway_t zf_gateway_t;

//  What a gateway serves, and how.
typedef struct {
    const char *address;             // ADDRESS:PORT, :PORT or PORT (port 0 picks one)
    const char *events;              // the broker's events endpoint (stats, taps)
    const char *broker;              // its ROUTER endpoint, for the API
    const zf_broker_settings_t *set; // api, api-*, http-*
    const char *token;               // what API requests must bear, or NULL
    const char *cert;                // the certificate (PEM text) for HTTPS, or NULL
    const char *key;                 // its private key (PEM text)
    bool insecure;                   // may serve the API beyond loopback without a token
} zf_gateway_args_t;

//  The gateway pipeline's broker section asks for (`metrics`, `api`, the
//  token and certificate files read), for the broker at endpoint whose
//  events are at events: in *gateway_p, or NULL when the section asks for
//  none. Returns 0, or -1 with err.
int zf_gateway_for (zf_pipeline_t *pipeline, const char *endpoint, const char *events,
                    bool insecure, zf_gateway_t **gateway_p, zf_error_t *err);

//  Stops the gateway and frees it; safe on NULL.
void zf_gateway_destroy (zf_gateway_t **self_p);

//  Where it listens, ADDRESS:PORT (the port it got, if it asked for 0).
const char *zf_gateway_address (zf_gateway_t *self);

//  Module "gateway" (zf_gateway_server.c), which the functions above load:
//  listens on args' address and follows the stats events; with `api`,
//  serves the JSON API as a client of the broker. An API needs a token
//  when the address is not loopback (unless insecure: then a warning) and
//  when the broker has CURVE. NULL with err if it cannot.
zf_gateway_t *zf_gateway_server_new (const zf_gateway_args_t *args, zf_error_t *err);
void zf_gateway_server_destroy (zf_gateway_t **self_p);
const char *zf_gateway_server_address (zf_gateway_t *self);

#ifdef __cplusplus
}
#endif
#endif
