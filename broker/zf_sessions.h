/*  zf_sessions: the broker's ROUTER side. Each message from a peer is
    decoded (zf_proto) and handed to one small function per command, which
    checks its input first; a peer that breaks the protocol gets ERROR, and
    one that keeps at it is dropped. Dispatch sends the store's ready items
    to workers with credit, in batches; heartbeats ping the quiet and bury
    the silent.
*/
#ifndef ZF_SESSIONS_H_INCLUDED
#define ZF_SESSIONS_H_INCLUDED

#include "zf_server.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Destructor of the sessions hash.
void zf_session_destroy (zf_session_t **self_p);

//  Handles one message of the ROUTER (routing id first); takes it.
void zf_sessions_message (zf_server_t *server, zmsg_t *msg);

//  Sends the ready items that workers have credit for.
void zf_sessions_dispatch (zf_server_t *server);

//  Tells every open session the config was reloaded (a PING with the
//  queues now keyed by URL), so that its writers key their next items by it.
void zf_sessions_reloaded (zf_server_t *server);

//  Heartbeats: pings sessions quiet for a heartbeat, buries those silent
//  for liveness heartbeats (their items go back, as failed).
void zf_sessions_heartbeat (zf_server_t *server, int64_t now);

//  A worker process of this host died (its supervisor saw it: zflow run):
//  the sessions of process pid, or else of worker number of actor, are
//  lost at once, each item they held failing with reason.
void zf_sessions_died (zf_server_t *server, const char *actor, uint32_t number, uint64_t pid,
                       const char *reason);

//  Sends server->out to session.
void zf_sessions_send (zf_server_t *server, zf_session_t *session);

//  Tells a worker holding an item of a cancelled lineage to drop it
//  (zf_cancel_fn; arg is the server).
void zf_sessions_tell_cancel (zf_worker_t *worker, zf_lineage_t *lineage, void *arg);

//  Sends a CONFIRM to the session it is for, if that is still there.
void zf_sessions_confirm (zf_server_t *server, const zf_confirm_t *confirm);

//  Answers the sessions waiting for a root's results whose lineage ended
//  or whose wait is over; forgets results past their ttl. Every turn.
void zf_sessions_answer (zf_server_t *server, int64_t now);

//  Tells a lineage's tracker it is over, with its results: in a DONE that
//  gathers the roots of one session that end in a turn.
void zf_sessions_done (zf_server_t *server, zf_lineage_t *lineage, const char *state);

//  Sends the DONE being filled. Every turn, before results may be let go
//  (its bodies are the kept results', lent).
void zf_sessions_flush_dones (zf_server_t *server);

#ifdef __cplusplus
}
#endif
#endif
