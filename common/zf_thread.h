/*  zf_thread: a czmq actor (a function at the end of a pipe) in a thread
    that is joined when it is destroyed.

    czmq's zactor leaves its thread to close its end of the pipe after
    zactor_destroy has returned. If the process then exits, czmq's exit
    handler finds that socket still open and waits 200 ms for it: a
    process exit in two took 200 ms longer. A zf_thread is gone when
    zf_thread_destroy returns.

    The function has zactor's contract: it signals the pipe once set up
    (zf_thread_new waits for that), and returns when "$TERM" arrives. When
    it returns, the thread signals the pipe once more, so that whoever
    waits for a message from it learns that it ended.
*/
#ifndef ZF_THREAD_H_INCLUDED
#define ZF_THREAD_H_INCLUDED

#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_thread_t zf_thread_t;

//  Starts fn (pipe, args) in a new thread and waits for its first signal.
//  NULL if the thread cannot be started.
zf_thread_t *zf_thread_new (zactor_fn *fn, void *args);

//  Our end of the pipe.
zsock_t *zf_thread_sock (zf_thread_t *self);

//  Sends "$TERM" (unless the function has already returned), waits for
//  the thread to end, and closes the pipe.
void zf_thread_destroy (zf_thread_t **self_p);

#ifdef __cplusplus
}
#endif
#endif
