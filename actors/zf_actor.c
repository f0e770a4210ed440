/*  zf_actor: shared actor plumbing. See zf_actor.h. */
#include "zf_actor.h"
#include "zf_error.h"
#include "zf_kinds.h"
#include "zf_thread.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

void
zf_actor_exit (zsock_t *pipe, int status)
{
    zstr_sendx (pipe, "EXIT", status == 0 ? "0" : status == 1 ? "1" : "2", NULL);
}

//  Each look at the pipe is a system call or two (ZeroMQ checks its
//  mailbox), and actors ask once an item: the pipe is looked at once a
//  millisecond at most. A stop waiting on it also ends the session's waits
//  (zf_client_set_wake), so an idle actor sees it within that millisecond.
#define STOP_LOOK_US 1000

bool
zf_actor_stopping (zsock_t *pipe)
{
    static _Thread_local int64_t next_look;
    int64_t now = zclock_usecs ();
    if (now < next_look)
        return false;
    next_look = now + STOP_LOOK_US;
    if (!(zsock_events (pipe) & ZMQ_POLLIN))
        return false;
    char *command = zstr_recv (pipe);
    bool stop = !command || streq (command, "$TERM");
    zstr_free (&command);
    return stop;
}

zf_client_t *
zf_actor_client (zf_actor_args_t *args, const char *input, int concurrency, zsock_t *pipe)
{
    zf_client_t *client = zf_client_new (args->endpoint, args->conf->name, input, concurrency);
    if (!client) {
        zsys_error ("%s: cannot open a session with the broker: %s", args->conf->name,
                    zf_client_last_error (NULL));
        return NULL;
    }
    zf_client_set_worker (client, args->worker);
    zf_client_set_pipeline (client, args->pipeline->name);
    zf_client_set_wake (client, pipe); // a stop ends its waits
    return client;
}

int
zf_actor_client_end (zf_client_t **client_p, int status)
{
    // No session, or a broker of another pipeline: the config is wrong,
    // whatever the actor's work came to.
    if (!*client_p || zf_client_refused (*client_p))
        status = ZF_EXIT_USAGE;
    zf_client_destroy (client_p);
    return status;
}

int64_t
zf_actor_hold_limit (zf_actor_args_t *args)
{
    zf_actor_conf_t *conf = args->conf;
    int64_t depth = conf->input
                        ? zf_pipeline_queue_settings (args->pipeline, conf->input)->max_depth
                        : INT64_MAX;
    int64_t limit = depth / (conf->workers > 0 ? conf->workers : 1);
    return limit > 0 ? limit : 1;
}

int
zf_actor_run (zf_actor_args_t *args)
{
    const zf_kind_t *kind = args->conf->kind;
    if (!kind || !kind->run) {
        fprintf (stderr, "zflow actor %s: kind '%s' cannot run as a built-in actor\n",
                 args->conf->name, kind ? kind->name : "?");
        return ZF_EXIT_USAGE;
    }
    // SIGINT and SIGTERM are taken here, from a signalfd, and passed to the
    // actor as $TERM: it stops the way it would be told to, finishing and
    // handing back its work, with its session still working (czmq's own
    // handler would mark the whole process interrupted). The actor's thread
    // inherits the blocked signals; a second signal stops at once.
    sigset_t stops, before;
    sigemptyset (&stops);
    sigaddset (&stops, SIGINT);
    sigaddset (&stops, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stops, &before);
    int signals = signalfd (-1, &stops, SFD_CLOEXEC | SFD_NONBLOCK);
    if (kind->init)
        kind->init ();
    // In a thread that is joined, not czmq's zactor: see zf_thread.h.
    zf_thread_t *thread = zf_thread_new (kind->run, args);
    if (!thread) {
        fprintf (stderr, "zflow actor %s: cannot start its thread\n", args->conf->name);
        return ZF_EXIT_FAILED;
    }
    zsock_t *actor = zf_thread_sock (thread);
    int status = ZF_EXIT_FAILED; // unless the actor says otherwise
    bool stopping = false;
    int first = 0; // the signal that stopped it
    for (;;) {
        zmq_pollitem_t items[] = { { zsock_resolve (actor), 0, ZMQ_POLLIN, 0 },
                                   { NULL, signals, ZMQ_POLLIN, 0 } };
        if (zmq_poll (items, signals >= 0 ? 2 : 1, 200) <= 0)
            continue;
        if (items[1].revents & ZMQ_POLLIN) {
            struct signalfd_siginfo info;
            if (read (signals, &info, sizeof info) == sizeof info) {
                // A second SIGINT (Ctrl-C twice) stops at once; a SIGTERM
                // after it, from a supervisor passing the stop on, does not.
                if (stopping && info.ssi_signo == SIGINT && first == SIGINT)
                    _exit (ZF_EXIT_OK);
                if (!stopping) {
                    stopping = true;
                    first = (int) info.ssi_signo;
                    zstr_send (actor, "$TERM");
                }
            }
        }
        if (items[0].revents & ZMQ_POLLIN) {
            char *word = NULL, *code = NULL;
            if (zstr_recvx (actor, &word, &code, NULL) >= 1 && word && streq (word, "EXIT"))
                status = code ? atoi (code) : ZF_EXIT_FAILED;
            zstr_free (&word);
            zstr_free (&code);
            break;
        }
    }
    if (stopping && status != ZF_EXIT_USAGE)
        status = ZF_EXIT_OK;     // stopped on request: the actor handed back its work
    zf_thread_destroy (&thread); // it returns once it has said EXIT
    if (signals >= 0)
        close (signals);
    pthread_sigmask (SIG_SETMASK, &before, NULL);
    return status;
}
