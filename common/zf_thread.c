/*  zf_thread: a czmq actor in a joined thread. See zf_thread.h. */
#include "zf_thread.h"

#include <pthread.h>

struct _zf_thread_t {
    zactor_fn *fn;    // the actor function
    void *args;       // its arguments
    zsock_t *pipe;    // our end
    zsock_t *theirs;  // the function's end, closed by its thread
    pthread_t thread; // runs fn
};

static void *
s_run (void *arg)
{
    zf_thread_t *self = (zf_thread_t *) arg;
    self->fn (self->theirs, self->args);
    zsock_set_sndtimeo (self->theirs, 0); // nobody may be reading any more
    zsock_signal (self->theirs, 0);       // it ended
    zsock_destroy (&self->theirs);
    return NULL;
}

zf_thread_t *
zf_thread_new (zactor_fn *fn, void *args)
{
    zf_thread_t *self = (zf_thread_t *) zmalloc (sizeof (zf_thread_t));
    self->fn = fn;
    self->args = args;
    self->pipe = zsys_create_pipe (&self->theirs);
    if (!self->pipe || pthread_create (&self->thread, NULL, s_run, self)) {
        zsock_destroy (&self->theirs);
        zsock_destroy (&self->pipe);
        free (self);
        return NULL;
    }
    zsock_wait (self->pipe);
    return self;
}

zsock_t *
zf_thread_sock (zf_thread_t *self)
{
    return self->pipe;
}

void
zf_thread_destroy (zf_thread_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zf_thread_t *self = *self_p;
    zsock_set_sndtimeo (self->pipe, 0);
    zstr_send (self->pipe, "$TERM"); // dropped if it has ended already
    pthread_join (self->thread, NULL);
    zsock_destroy (&self->pipe);
    free (self);
    *self_p = NULL;
}
