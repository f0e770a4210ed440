/*  zf_broker: the broker, a czmq actor.

    One event loop: a ROUTER socket for actors (ZFP/1, schemas/zfp.md), an
    XPUB socket for monitoring (stats every second, state events, data taps
    sent only while someone subscribes), and optionally a PULL socket where
    any ZeroMQ PUSH client can enqueue [queue][msgpack body].

    Queues, consumer groups and their settings come from the pipeline: each
    actor whose input names a queue is a consumer group of it, whether or not
    its workers have connected yet, so no item is lost to a late start.

        zf_broker_t *broker = zf_broker_new (pipeline, &err);
        printf ("actors connect to %s\n", zf_broker_endpoint (broker));
        ...
        zf_broker_destroy (&broker);
*/
#ifndef ZF_BROKER_H_INCLUDED
#define ZF_BROKER_H_INCLUDED

#include <czmq.h>

#include "zf_error.h"
#include "zf_pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_broker_t zf_broker_t;

//  Start a broker for pipeline (which must outlive it), bound to the
//  pipeline's endpoints; endpoint, events and intake override those when not
//  NULL (tcp://127.0.0.1:* picks a free port). Returns NULL with err filled
//  if a socket cannot be bound.
zf_broker_t *zf_broker_new (zf_pipeline_t *pipeline, const char *endpoint, const char *events,
                            const char *intake, zf_error_t *err);

//  Stop the broker (in-flight items stay unacked: their writers and workers
//  retry elsewhere), safe on NULL.
void zf_broker_destroy (zf_broker_t **self_p);

//  A broker of a group stops when it loses the lead (zf_cluster.h): then
//  why, and its owner starts one again on the same folder; else NULL.
const char *zf_broker_lost (zf_broker_t *self);

//  Tells the broker that process pid, worker number of actor, died on this
//  host, and why ("worker died: exit 3"): the items it held fail at once
//  with that reason, instead of "worker lost" when its heartbeats run out.
void zf_broker_died (zf_broker_t *self, const char *actor, int number, int pid, const char *reason);
//  True once after a client asked for the config to be read again
//  (zflow reload): the owner reloads it, then zf_broker_reload.
bool zf_broker_reload_asked (zf_broker_t *self);

//  Tells the broker its config is now pipeline (a reload: it must outlive
//  the broker, as the first one): queue settings, new queues and readers;
//  renames ("OLD=NEW,...") are actors replaced by others on the same
//  queue, which take over their consumer groups (zf_store_reconfigure).
void zf_broker_reload (zf_broker_t *self, zf_pipeline_t *pipeline, const char *renames);

//  Tells the broker that worker number of actor (last as process pid)
//  keeps dying, deaths times within a minute, the last for reason, and is
//  restarted in backoff ms: it publishes actor.crashloop, and names the
//  worker in its stats (crashloops) until told a backoff of 0: it is over.
void zf_broker_crashloop (zf_broker_t *self, const char *actor, int number, int pid, int deaths,
                          int64_t backoff, const char *reason);
//  The endpoints actually bound, with real port numbers ("" when off).
const char *zf_broker_endpoint (zf_broker_t *self);
const char *zf_broker_events (zf_broker_t *self);
const char *zf_broker_intake (zf_broker_t *self);

//  What a broker starts with: its config and the settings that override
//  the config's.
typedef struct {
    zf_pipeline_t *pipeline; // the config
    const char *endpoint;    // overrides, or NULL
    const char *events;      // override, or NULL
    const char *intake;      // override, or NULL
    const char *journal;     // override: a folder, "" for none, NULL for the config's
    bool insecure;           // may bind beyond loopback without CURVE (with a warning)
    const char *cluster;     // override: the Raft group's nodes, HOST:PORT,... (NULL: the config's)
    int node;                // which of them this broker is, 1-based; 0 to find it
    int listening;           // a TCP socket bound and listening at endpoint, for the ROUTER
                             // to take (ZMQ_USE_FD), or 0: it binds its own
} zf_broker_args_t;

//  As zf_broker_new, with every override; the strings must outlive the
//  broker. A journal that cannot be read (corrupt, locked) fails the start.
zf_broker_t *zf_broker_start (const zf_broker_args_t *args, zf_error_t *err);

//  The actor function, for zf_thread_new (or zactor_new); args is a
//  zf_broker_args_t.
void zf_broker_actor (zsock_t *pipe, void *args);

#ifdef __cplusplus
}
#endif
#endif
