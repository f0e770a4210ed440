/*  zf_actor: what every built-in actor shares: its arguments, and how it
    ends. Each built-in kind's actor is a czmq actor function in its own file
    (zf_producer.c, zf_sink.c, ...), named in the kind's zf_kind_t; `zflow
    actor NAME PIPELINE` runs one as a process, and the tests run the same
    function in-process.

    An actor function signals its pipe once set up, runs until its work is
    done or $TERM arrives on the pipe, then sends "EXIT" and its exit status
    as two strings before it returns.
*/
#ifndef ZF_ACTOR_H_INCLUDED
#define ZF_ACTOR_H_INCLUDED

#include <czmq.h>

#include "zf_pipeline.h"
#include "zflow.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    zf_pipeline_t *pipeline; // the config, owned by the caller
    zf_actor_conf_t *conf;   // this actor's section of it
    const char *endpoint;    // the broker to connect to
    int worker;              // this worker's number, 0-based
} zf_actor_args_t;

//  Sends the closing "EXIT" message with status on pipe.
void zf_actor_exit (zsock_t *pipe, int status);

//  True once $TERM (or the end of the pipe) is waiting on pipe; reads it.
bool zf_actor_stopping (zsock_t *pipe);

//  The session of one of the actor's workers with the broker: its name,
//  input (NULL: it only writes) and concurrency, its worker number and
//  pipeline said in HELLO, and every wait of it ended by a message on pipe
//  (a stop). NULL, having said why, if it cannot be made (a CURVE setting
//  that cannot be read).
zf_client_t *zf_actor_client (zf_actor_args_t *args, const char *input, int concurrency,
                              zsock_t *pipe);

//  Ends the session made by zf_actor_client (*client_p may be NULL: none
//  was made) and nulls *client_p. Returns the actor's exit status:
//  ZF_EXIT_USAGE when the session was never made or the broker refused it
//  for good, status otherwise.
int zf_actor_client_end (zf_client_t **client_p, int status);

//  How many items one worker of the actor can hold at most before its
//  input queue is full (its max-depth shared by its workers). An actor that
//  waits for a batch, or a group, of more than this would wait for ever.
int64_t zf_actor_hold_limit (zf_actor_args_t *args);

//  Runs the actor of conf's kind in this thread's process until it ends or
//  the process is interrupted; returns its exit status. For zflow actor.
int zf_actor_run (zf_actor_args_t *args);

#ifdef __cplusplus
}
#endif
#endif
