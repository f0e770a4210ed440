/*  zf_intake: the broker's PULL socket, where any ZeroMQ PUSH client puts
    items as two frames, [queue][msgpack body] (schemas/zfp.md §8). Each
    gets a random id and is enqueued as a PUT would be; a malformed one is
    counted, made an error.protocol event, and dropped (PUSH has no reply).
    While any queue is full the broker stops reading it, and ZeroMQ pushes
    back on the senders.
*/
#ifndef ZF_INTAKE_H_INCLUDED
#define ZF_INTAKE_H_INCLUDED

#include "zf_server.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Takes one intake message.
void zf_intake_message (zf_server_t *server, zmsg_t *msg);

//  True while intake may be read.
bool zf_intake_open (zf_server_t *server);

#ifdef __cplusplus
}
#endif
#endif
