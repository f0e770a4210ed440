/*  zf_server: the state of a running broker, which its modules share.

    One thread runs a broker: its loop (zf_broker.c) polls the sockets and
    hands each message to the module whose business it is, and each module
    works on this struct:

        zf_store      what the broker holds: queues, items, retries (no sockets;
                      zf_delivery.c is the life of a delivery in it, zf_steer.c
                      an operator's changes)
        zf_schedules  schedules added at run time, fired by the broker
        zf_control    CONTROL: an operator's commands
        zf_sessions   the ROUTER: one function per ZFP command, dispatch, heartbeats
        zf_publish    the XPUB: events, data taps, stats
        zf_persist    the journal: records of the store's changes, replay,
                      snapshots, CONFIRMs held until durable
        zf_cluster    the journal on a Raft group of brokers instead
        zf_auth       CURVE and ZAP: who gets in
        zf_intake     the PULL socket

    The store calls back through its hooks (zf_store_hooks_t), which the
    loop wires to these modules.
*/
#ifndef ZF_SERVER_H_INCLUDED
#define ZF_SERVER_H_INCLUDED

#include <czmq.h>
#include <msgpack.h>

#include "zf_cluster.h"
#include "zf_journal.h"
#include "zf_pipeline.h"
#include "zf_proto.h"
#include "zf_store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_schedules_t zf_schedules_t;

//  A session: one peer of the ROUTER socket, from its HELLO to its BYE or
//  its last heartbeat.
typedef struct {
    char key[ZF_SESSION_KEY_MAX]; // hex routing id
    zframe_t *routing_id;         // for sending
    bool welcomed;                // HELLO done
    char name[ZF_NAME_MAX + 1];   // actor name
    char host[ZF_NAME_MAX + 1];   // host
    uint32_t number;              // worker number within its actor
    uint64_t pid;                 // process id
    zf_worker_t worker;           // its side in the store, when it consumes
    int64_t last_seen;            // ms, any message
    int64_t last_sent;            // ms, any message
    uint64_t errors;              // protocol errors
    bool ended;                   // sent END
    uint8_t *figures;             // its last figures (a msgpack map), or NULL
    uint32_t figures_size;        // bytes at figures
} zf_session_t;

//  A CONFIRM held until the journal has the PUT's records on disk.
typedef struct {
    char session[ZF_SESSION_KEY_MAX]; // who to send it to
    uint64_t seq;                     // the PUT's seq
    uint32_t accepted;                // items enqueued
    uint32_t duplicates;              // items dropped as seen
    uint32_t refused;                 // items refused
    uint64_t lsn;                     // journal position (or Raft entry) that makes it durable
    char refusal[ZF_TEXT_MAX + 1];    // why the first refused item was, or ""
    zf_refusal_t refusal_kind;        // and the kind of it
} zf_confirm_t;

typedef struct _zf_server_t zf_server_t;
struct _zf_server_t {
    zsock_t *pipe;                      // to the owner
    zf_pipeline_t *pipeline;            // the config
    zf_store_t *store;                  // what it holds
    zf_schedules_t *schedules;          // schedules added at run time (zf_schedules)
    zsock_t *router;                    // actors
    zsock_t *events;                    // XPUB
    zsock_t *intake;                    // PULL, or NULL
    char endpoint[256];                 // the ROUTER's bound endpoint, real port
    char events_endpoint[256];          // the XPUB's
    char intake_endpoint[256];          // the PULL's, or ""
    int64_t heartbeat;                  // ms
    int64_t max_frame;                  // bytes a frame may have (its sockets refuse more)
    int64_t max_groups;                 // client groups (of no declared actor) at most
    int64_t liveness;                   // heartbeats missed before death
    uint32_t window;                    // PUT items a session may have unconfirmed
    zhashx_t *sessions;                 // key -> zf_session_t
    zhashx_t *ended;                    // actor name -> "" for sources that ended
    zhashx_t *crashloops;               // "ACTOR/N" -> "" for workers in a crash loop now
    zf_proto_t *in;                     // the message being handled
    zf_proto_t *out;                    // the message being sent
    zf_proto_t *dones;                  // the DONE being filled this turn, for one session
    char dones_for[ZF_SESSION_KEY_MAX]; // that session
    zhashx_t *subscriptions;            // topic prefixes someone subscribes to
    zhashx_t *topic_seq;                // topic -> last sequence number sent on it
    zlistx_t *tapped;                   // queues with a data event being filled (not owned)
    zcert_t *curve;                     // the broker's CURVE certificate, or NULL
    zsock_t *zap;                       // ZAP handler (REP) deciding who gets in, with curve
    zcertstore_t *allowed;              // the public certificates of the clients allowed in
    char *allowed_dir;                  // their folder
    zf_journal_t *journal;              // the write-ahead log, or NULL
    zf_cluster_t *cluster;              // the log on a Raft group instead, or NULL
    bool replaying;                     // applying the journal: record nothing, tell no one
    zlistx_t *confirms;                 // zf_confirm_t waiting for their records to be durable
    //  Sends a CONFIRM to its session (zf_sessions_confirm, wired by the
    //  loop: the journal's side calls it, and the sessions' side it).
    void (*confirm) (zf_server_t *server, const zf_confirm_t *confirm);
    uint64_t confirm_items;   // items in confirms
    uint64_t compactions;     // journal snapshots written
    int64_t compaction_ms;    // time they took, in all
    uint64_t rejected;        // frames refused on any socket
    int64_t intake_logged;    // when an intake refusal was last logged (monotonic ms)
    uint64_t intake_unlogged; // intake refusals since, not logged
    uint64_t late_acks;       // acks of items no longer held
    bool terminated;          // $TERM received
};

//  The clock of every timer of the broker (ms, monotonic).
static inline int64_t
zf_server_now (void)
{
    return zclock_mono ();
}

#ifdef __cplusplus
}
#endif
#endif
