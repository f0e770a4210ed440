/*  zf_auth: who gets into the broker. Without CURVE its sockets bind to
    loopback only, unless told --insecure; with CURVE (ZeroMQ RFC 26) every
    socket is a CURVE server, and every handshake asks the ZAP handler
    (RFC 27) here, which lets in the keys of the certificates in
    curve-clients and nobody else, and makes each refusal an event.
*/
#ifndef ZF_AUTH_H_INCLUDED
#define ZF_AUTH_H_INCLUDED

#include "zf_server.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Loads the broker's certificate and the allowed clients, and binds the
//  ZAP handler, when the broker section asks for CURVE. Returns 0 or -1.
int zf_auth_open (zf_server_t *server, zf_error_t *err);

//  Answers the ZAP request waiting on server->zap.
void zf_auth_request (zf_server_t *server);

//  A socket of type bound to endpoint (its real endpoint in bound): a
//  CURVE server when the broker has CURVE, else only on loopback unless
//  insecure (with a warning). With listening (> 0), it takes that socket,
//  already bound to endpoint and listening, as its own. NULL with err if
//  it cannot be.
zsock_t *zf_auth_bind (zf_server_t *server, int type, const char *endpoint, int listening,
                       char *bound, size_t size, int64_t max_frame, bool insecure, zf_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
