/*  zf_events: the codec of the broker's events (schemas/zfp.md §7), the
    two-frame messages of its XPUB socket: [topic][msgpack map], every map
    with `seq` (per topic) and `ts`.

    The `stats` event, once a second, is the one that monitors read: zflow
    top, zflow run's live view and the HTTP gateway's /metrics all decode it
    here, into a zf_stats_t, and the broker encodes it from one. The other
    events are written by one function each. Test vectors, written by an
    independent msgpack implementation, are in schemas/vectors/events/.

        zf_stats_t *stats = zf_stats_new ();
        if (zf_stats_decode (stats, zframe_data (body), zframe_size (body), &err) == 0)
            for (uint32_t q = 0; q < stats->nqueues; q++)
                printf ("%s %" PRIu64 "\n", stats->queues[q].name, stats->queues[q].depth);
        zf_stats_destroy (&stats);
*/
#ifndef ZF_EVENTS_H_INCLUDED
#define ZF_EVENTS_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "zf_error.h"
#include "zf_proto.h"
#include "zflow.h"

#ifdef __cplusplus
extern "C" {
#endif

//  A key of a consumer group, among its busiest, as the stats event shows it.
typedef struct {
    char key[ZF_NAME_MAX + 1]; // the key ("" for items without one)
    uint64_t ready;            // its items waiting
    uint64_t inflight;         // its items held by workers
    bool throttled;            // its items wait for its limit
} zf_stats_key_t;

//  A consumer group of a queue, as the stats event shows it.
typedef struct {
    char name[ZF_NAME_MAX + 1];      // the actor that reads the queue
    uint64_t workers;                // its workers connected now
    uint64_t ready;                  // items waiting for one of them
    uint64_t acked;                  // deliveries acked, ever
    uint64_t throttled;              // of ready, those waiting for their key's limit
    uint64_t keys;                   // keys it holds items of (its queue has a key)
    zf_stats_key_t top[ZF_TOP_KEYS]; // its keys with most items waiting
    uint32_t ntop;                   // entries in top
} zf_stats_group_t;

typedef struct {
    zf_figures_t figures;     // name, depth, inflight, put, ack, nack, dead (consumers:
                              // the workers of its groups, not in the event)
    double put_rate;          // items put a second, since the last event
    double ack_rate;          // items finished a second, since the last event
    zf_stats_group_t *groups; // its consumer groups
    uint32_t ngroups;         // entries in groups
    uint32_t groups_cap;      // entries allocated
} zf_stats_queue_t;

typedef struct {
    char actor[ZF_NAME_MAX + 1]; // its actor
    uint32_t worker;             // its number within the actor
    char host[ZF_NAME_MAX + 1];  // where it runs
    uint64_t pid;                // its process
    uint64_t inflight;           // items it holds
    uint64_t done;               // items it acked
    uint64_t failed;             // items it nacked
    const uint8_t *figures;      // its own figures, a msgpack map (a view), or NULL
    uint32_t figures_size;       // bytes at figures
} zf_stats_worker_t;

typedef struct {
    bool present;                 // the broker keeps a journal
    uint64_t written;             // bytes appended
    uint64_t durable;             // bytes on disk
    uint64_t waiting;             // CONFIRMs held for the disk
    uint64_t compactions;         // snapshots written
    int64_t compaction_ms;        // time they took
    char failed[ZF_TEXT_MAX + 1]; // why it stopped writing, or ""
} zf_stats_journal_t;

typedef struct {
    uint64_t seq;                        // the event's number on its topic
    int64_t ts;                          // when it was made, ms since the Unix epoch
    zf_stats_queue_t *queues;            // every queue, in order of creation
    uint32_t nqueues;                    // entries in queues
    zf_stats_worker_t *workers;          // every session
    uint32_t nworkers;                   // entries in workers
    uint64_t lineages;                   // roots whose lineage is not finished
    char (*ended)[ZF_NAME_MAX + 1];      // the sources that said END
    uint32_t nended;                     // entries in ended
    char (*crashloops)[ZF_NAME_MAX + 1]; // the workers in a crash loop now, "ACTOR/N"
    uint32_t ncrashloops;                // entries in crashloops
    uint32_t crashloops_cap;             // entries allocated
    uint64_t rejected;                   // frames refused, ever
    uint64_t late_acks;                  // acks of items no longer held, ever
    zf_stats_journal_t journal;          // the journal's figures
    uint32_t queues_cap, workers_cap;    // entries allocated
    uint32_t ended_cap;                  // entries allocated
} zf_stats_t;

//  An empty stats event; never NULL (zf_alloc's policy).
zf_stats_t *zf_stats_new (void);

void zf_stats_destroy (zf_stats_t **self_p);

//  Empties it for reuse, keeping what it allocated.
void zf_stats_clear (zf_stats_t *self);

//  Room for one more queue, group of queue, worker; zeroed.
zf_stats_queue_t *zf_stats_add_queue (zf_stats_t *self);
zf_stats_group_t *zf_stats_add_group (zf_stats_queue_t *queue);
zf_stats_worker_t *zf_stats_add_worker (zf_stats_t *self);

//  Adds a source that ended.
void zf_stats_add_ended (zf_stats_t *self, const char *actor);
void zf_stats_add_crashloop (zf_stats_t *self, const char *worker);

//  Packs the event's map; the journal's map alone (as in the event).
void zf_stats_encode (const zf_stats_t *self, msgpack_packer *pk);
void zf_stats_journal_encode (const zf_stats_journal_t *journal, msgpack_packer *pk);

//  Reads an event's map into self (cleared first), by the tables of
//  zf_table: keys it does not know are skipped and a string longer than
//  its field is cut, so a newer broker's event reads; a key twice is
//  refused. Worker figures are views into data. Returns 0, or -1 with err
//  saying what is wrong and where ("stats: queues[2].depth: ...").
int zf_stats_decode (zf_stats_t *self, const uint8_t *data, size_t size, zf_error_t *err);

//  --------------------------------------------------------------------------
//  The other events, one function each: each packs a whole map.

//  worker.joined, worker.left, worker.lost, source.ended.
void zf_event_worker (msgpack_packer *pk, uint64_t seq, int64_t ts, const char *actor,
                      uint32_t worker, const char *host, uint64_t pid, const char *reason);

//  dead.QUEUE: an item dead-lettered.
void zf_event_dead (msgpack_packer *pk, uint64_t seq, int64_t ts, const zf_id_t *id,
                    const char *queue, const char *group, uint32_t attempt, const char *reason);

//  actor.crashloop: worker of actor (on host, last as pid) keeps dying:
//  deaths within the last minute, restarted in backoff ms, reason its
//  last death.
void zf_event_crashloop (msgpack_packer *pk, uint64_t seq, int64_t ts, const char *actor,
                         uint32_t worker, const char *host, uint64_t pid, uint32_t deaths,
                         uint64_t backoff, const char *reason);

//  error.protocol: a frame refused on socket ("router", "intake").
void zf_event_protocol (msgpack_packer *pk, uint64_t seq, int64_t ts, const char *socket,
                        const char *from, const char *reason);

//  auth.refused: a CURVE handshake refused.
void zf_event_auth (msgpack_packer *pk, uint64_t seq, int64_t ts, const char *address,
                    const char *key, const char *reason);

//  data.QUEUE and sample.N.data.QUEUE: items put. A data event is filled as
//  items come: begin writes {seq, ts, queue, items: [ with a 16-bit count
//  to be written at the end (at the offset it returns), add writes one
//  item, and end writes the count.
size_t zf_event_data_begin (msgpack_sbuffer *buffer, msgpack_packer *pk, uint64_t seq, int64_t ts,
                            const char *queue);
void zf_event_data_add (msgpack_packer *pk, const zf_id_t *id, int64_t created, const void *body,
                        size_t size);
void zf_event_data_end (msgpack_sbuffer *buffer, size_t count_at, uint32_t count);

#ifdef __cplusplus
}
#endif
#endif
