/*  zf_curve: CURVE on the side that connects to a broker.

    A broker with `curve-secret` in its section takes only clients whose
    public key is among the certificates in its `curve-clients` folder.
    Every socket of zflow that connects to it (an actor's session, zflow
    put/status, the SUB sockets of tap, top and the live view) reads its
    settings from two environment variables, so that a custom actor or a
    tool gets them without a line of code:

        ZFLOW_CURVE_CERT     the client's certificate: the NAME_secret file
                             `zflow keygen NAME` wrote (or NAME, beside it)
        ZFLOW_CURVE_SERVER   the broker's public certificate

    `zflow actor` and `zflow run` set them from the pipeline: the actor's
    own `curve-secret`, else the broker section's `curve-client`, and the
    broker's `curve-public`.
*/
#ifndef ZF_CURVE_H_INCLUDED
#define ZF_CURVE_H_INCLUDED

#include <czmq.h>

#include "zf_error.h"
#include "zf_pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZF_CURVE_CERT_ENV   "ZFLOW_CURVE_CERT"
#define ZF_CURVE_SERVER_ENV "ZFLOW_CURVE_SERVER"

//  Loads the certificate at path; with secret, one that holds its secret
//  key. NULL with err naming the file and what is wrong.
zcert_t *zf_curve_load (const char *path, bool secret, zf_error_t *err);

//  The client's settings from the environment: *cert_p (caller owns) and
//  the server's public key (41 bytes of Z85) in server, or *cert_p NULL
//  when CURVE is not asked for. Returns 0, or -1 with err if it is asked
//  for and a certificate cannot be read.
int zf_curve_from_env (zcert_t **cert_p, char server[41], zf_error_t *err);

//  Makes sock (not yet connected) a CURVE client with cert and the server
//  key; nothing when cert is NULL.
void zf_curve_apply (zsock_t *sock, zcert_t *cert, const char *server);

//  Makes sock (not yet connected) a CURVE client as the environment says;
//  nothing when it does not ask for CURVE. Returns 0, or -1 with err if a
//  certificate cannot be read.
int zf_curve_client (zsock_t *sock, zf_error_t *err);

//  A SUB socket subscribed to topic and connected to endpoint, a CURVE
//  client as the environment says. NULL with err if the certificates
//  cannot be read or the endpoint is bad.
zsock_t *zf_curve_sub (const char *endpoint, const char *topic, zf_error_t *err);

//  The broker's public certificate for pipeline: `curve-public`, else
//  `curve-secret` less its `_secret`. NULL when the broker has no CURVE.
//  Caller frees.
char *zf_curve_server_path (zf_pipeline_t *pipeline);

//  Sets ZFLOW_CURVE_CERT and ZFLOW_CURVE_SERVER for this process and those
//  it starts, from pipeline's broker section and (when not NULL) actor's
//  own `curve-secret`; leaves them as they are when the broker has no
//  CURVE. Returns 0, or -1 with err when a certificate cannot be read.
int zf_curve_setenv (zf_pipeline_t *pipeline, zf_actor_conf_t *actor, zf_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
