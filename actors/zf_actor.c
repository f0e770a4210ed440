/*  zf_actor: shared actor plumbing. See zf_actor.h. */
#include "zf_actor.h"
#include "zf_cli.h"
#include "zf_kinds.h"

void
zf_actor_exit (zsock_t *pipe, int status)
{
    zstr_sendx (pipe, "EXIT", status == 0 ? "0" : status == 1 ? "1" : "2", NULL);
}

bool
zf_actor_stopping (zsock_t *pipe)
{
    if (!(zsock_events (pipe) & ZMQ_POLLIN))
        return false;
    char *command = zstr_recv (pipe);
    bool stop = !command || streq (command, "$TERM");
    zstr_free (&command);
    return stop;
}

int64_t
zf_actor_hold_limit (zf_actor_args_t *args)
{
    zf_actor_conf_t *conf = args->conf;
    zf_queue_conf_t *queue = zf_pipeline_queue (args->pipeline, conf->input);
    int64_t depth = queue ? zf_conf_int (queue->node, zf_queue_keys, "max-depth") : INT64_MAX;
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
    zactor_t *actor = zactor_new (kind->run, args);
    int status = ZF_EXIT_FAILED; // unless the actor says otherwise
    zpoller_t *poller = zpoller_new (actor, NULL);
    while (!zsys_interrupted) {
        if (!zpoller_wait (poller, 200))
            continue;
        char *word = NULL, *code = NULL;
        if (zstr_recvx (actor, &word, &code, NULL) >= 1 && word && streq (word, "EXIT"))
            status = code ? atoi (code) : ZF_EXIT_FAILED;
        zstr_free (&word);
        zstr_free (&code);
        break;
    }
    if (zsys_interrupted)
        status = ZF_EXIT_OK; // stopped on request: the actor handed back its work
    zpoller_destroy (&poller);
    zactor_destroy (&actor);
    return status;
}
