/*  zf_persist: the broker's journal, so that what it confirmed survives
    kill -9 and a restart (docs/durability.md).

    Every change of the store's state that must survive is a record
    (schemas/zf_records.h): an item stored (PUT), one group's delivery
    finished (ACK), an item finished (FIN, its outcome kept for the dedup
    window), a source's checkpoint, a failed delivery's count of attempts
    (RETRY, so that max-attempts holds across a restart), a result of a
    root kept or the end of its lineage (RESULT), a queue paused or resumed
    (QUEUE), a schedule added, changed or fired (SCHEDULE). The records of a
    loop turn go out in one write at its end, and the CONFIRMs of the PUTs
    they hold wait until they are durable. Deliveries are not recorded:
    after a restart every unfinished delivery is ready again, and one that
    was in flight does not count.
*/
#ifndef ZF_PERSIST_H_INCLUDED
#define ZF_PERSIST_H_INCLUDED

#include "zf_server.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Opens the journal at path and restores what it holds into the store.
//  Returns 0, or -1 with err filled (the broker must not start).
int zf_persist_open (zf_server_t *server, const char *path, zf_error_t *err);

//  Joins the Raft group of args instead (zf_cluster.h): the store is the
//  log's, applied as the leader's entries commit, and the broker serves
//  once it leads. Returns 0, or -1 with err filled.
int zf_persist_cluster (zf_server_t *server, const zf_cluster_args_t *args, zf_error_t *err);

//  Records of the store's changes; nothing without a journal or while
//  replaying it.
void zf_persist_put (zf_server_t *server, zf_message_t *msg, uint32_t attempt);
void zf_persist_ack (zf_server_t *server, zf_delivery_t *d, bool dead);
void zf_persist_retry (zf_server_t *server, zf_delivery_t *d);
void zf_persist_fin (zf_server_t *server, const zf_id_t *id, uint8_t outcome);
void zf_persist_answer (zf_server_t *server, zf_answer_t *answer, const zf_output_t *result);
void zf_persist_queue (zf_server_t *server, zf_queue_t *queue);
//  Any other record (a schedule's).
void zf_persist_record (zf_server_t *server, const zf_record_t *record);

//  Confirms put, all admitted, storing its checkpoint: at once without a
//  journal, else once the records written so far are durable.
void zf_persist_confirm (zf_server_t *server, zf_pending_t *put);

//  The end of a loop turn: the turn's records in one write, the CONFIRMs
//  that are durable now sent, and a snapshot when the log has grown.
void zf_persist_commit (zf_server_t *server, int64_t now);

//  The syncer said a sync is done: CONFIRMs may go.
void zf_persist_synced (zf_server_t *server, int64_t now);

#ifdef __cplusplus
}
#endif
#endif
