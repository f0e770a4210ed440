/*  zf_cluster: a broker's journal replicated on a Raft group of brokers
    (libraft, canonical/raft, with its libuv I/O), so that the loss of one
    host loses nothing confirmed and stops nothing for long.

    Every broker of the group runs the same loop; one of them, the leader,
    serves. The records of one of its loop turns (zf_persist: PUT, ACK, FIN,
    ...) are one Raft entry, and the CONFIRMs of the PUTs among them wait
    until a majority of the group has the entry on disk (durable). The
    others apply each committed entry to their own store, as a journal is
    replayed at a start, and answer clients with the leader's endpoint. When
    the leader is lost, one of them is elected, applies what is left of the
    log, and serves: its items' deliveries start over, as after a restart.
    A broker that loses the lead stops, and starts again (zflow broker execs
    itself): what it held beyond the log is void. A Raft snapshot is the journal's compaction: the
    live state written as records.

    An entry is, its numbers little-endian,

        u8 version (1) | u64 incarnation | u64 node | u32 size | u16 n |
        endpoint[n] | records[size] | zeros to a multiple of 8 bytes

    where a record is u32 size | u8 type | payload (a journal record
    without its checksum: Raft checks its entries), incarnation is a random
    number a broker draws at its start (an entry of its own, it has applied
    already) and endpoint is where its clients connect. A snapshot is
    u8 version (1) | u32 size | records[size], padded the same way.

        zf_cluster_t *cluster = zf_cluster_new (&args, &hooks, &err);
        ... poll zf_cluster_fd, at most zf_cluster_due ms; then zf_cluster_run
        uint8_t *p = zf_cluster_reserve (cluster, ZF_JR_FIN, 17);
        zf_cluster_commit (cluster);
        if (zf_cluster_durable (cluster) >= lsn) ... confirm
*/
#ifndef ZF_CLUSTER_H_INCLUDED
#define ZF_CLUSTER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zf_error.h"
#include "zf_journal.h"
#include "zf_records.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_cluster_t zf_cluster_t;

//  What the broker does for the group.
typedef struct {
    void *arg;
    //  A record of an entry another broker made (or of a snapshot): apply
    //  it to the store, as a replay does.
    zf_journal_fn *record;
    //  Write the whole live state with zf_cluster_reserve (a snapshot).
    void (*snapshot) (void *arg);
    //  This broker leads and has applied every earlier entry: serve.
    void (*leading) (void *arg);
} zf_cluster_hooks_t;

typedef struct {
    const char *nodes;      // HOST:PORT,...: the Raft address of each node (zf_parse_nodes)
    int node;               // which one this broker is (1-based); 0 to find it
    const char *dir;        // its folder for the Raft log and snapshots
    const char *endpoint;   // the ROUTER's bound endpoint (tcp://0.0.0.0:P is shown with HOST)
    int64_t election_ms;    // election timeout
    int64_t snapshot_every; // entries between snapshots (0: 4096)
} zf_cluster_args_t;

//  Joins the group (bootstrapping it the first time), loading the log in
//  dir. NULL with err filled when the list is wrong, this node cannot be
//  told, or the log cannot be opened.
zf_cluster_t *zf_cluster_new (const zf_cluster_args_t *args, const zf_cluster_hooks_t *hooks,
                              zf_error_t *err);

//  Leaves the group (the log stays on disk); safe on NULL.
void zf_cluster_destroy (zf_cluster_t **self_p);

//  A file descriptor to poll for input, and the ms until the next timer
//  (-1 for none); then zf_cluster_run does what is due without waiting.
int zf_cluster_fd (zf_cluster_t *self);
int64_t zf_cluster_due (zf_cluster_t *self);
void zf_cluster_run (zf_cluster_t *self);

//  Why this broker must stop and start again from the group's log (it lost
//  the lead, or its store is to be replaced by a snapshot), or NULL. The
//  broker then sends nothing more: what it holds beyond the log is void.
const char *zf_cluster_lost (zf_cluster_t *self);

//  Whether the leader should take no new work this turn (read no requests,
//  run no timers): a snapshot is due, and it waits for a moment when all
//  the leader's entries are committed. At most a fraction of a second.
bool zf_cluster_quiet (zf_cluster_t *self, int64_t now);

//  Whether this broker leads and serves.
bool zf_cluster_serving (zf_cluster_t *self);

//  Where the leader's clients connect, or NULL while there is none known.
const char *zf_cluster_leader (zf_cluster_t *self);

//  This node's number, and a line about the group for the logs.
int zf_cluster_node (zf_cluster_t *self);

//  Room for a record in the entry of this turn (or in the snapshot being
//  written), or NULL when this broker records nothing (it does not serve).
uint8_t *zf_cluster_reserve (zf_cluster_t *self, zf_jr_type_t type, size_t size);

//  The entry the records reserved so far go in: durable once
//  zf_cluster_durable reaches it.
uint64_t zf_cluster_appended (zf_cluster_t *self);
uint64_t zf_cluster_durable (zf_cluster_t *self);

//  Proposes the turn's entry (when it holds records) to the group.
void zf_cluster_commit (zf_cluster_t *self);

#ifdef __cplusplus
}
#endif
#endif
