/*  zf_persist: the broker's journal. See zf_persist.h. */
#include "zf_persist.h"
#include "zf_alloc.h"
#include "zf_records.h"
#include "zf_schedules.h"

//  Whether the store's changes are recorded: there is a journal (or a
//  group) and it is not being replayed (nor, in a group, applied by a
//  broker that does not lead).
static bool
s_recording (zf_server_t *server)
{
    return (server->journal || server->cluster) && !server->replaying;
}

//  Appends record to the journal or to the group's entry of this turn,
//  unless nothing is recorded.
static void
s_append (zf_server_t *server, const zf_record_t *record)
{
    uint8_t *p = NULL;
    if (server->cluster)
        p = zf_cluster_reserve (server->cluster, record->type, zf_record_size (record));
    else if (server->journal && !server->replaying)
        p = zf_journal_reserve (server->journal, record->type, zf_record_size (record));
    if (p)
        zf_record_write (record, p);
}

static void
s_put (zf_server_t *server, zf_message_t *msg, uint32_t attempt)
{
    zf_record_t r = { .type = ZF_JR_PUT_SHORT, // its zero fields left out
                      .id = msg->id,
                      .parent = msg->parent,
                      .root = msg->root,
                      .ts = msg->ts,
                      .attempt = attempt,
                      .dead = msg->dead,
                      .fanin = msg->fanin,
                      .name = msg->queue->name,
                      .name_size = strlen (msg->queue->name),
                      .headers = msg->headers,
                      .headers_size = msg->headers_size,
                      .reason = msg->reason,
                      .reason_size = msg->reason ? strlen (msg->reason) : 0,
                      .detail = msg->detail,
                      .detail_size = msg->detail ? strlen (msg->detail) : 0,
                      .data = zframe_data (msg->body),
                      .data_size = zframe_size (msg->body),
                      .not_before = msg->not_before,
                      .priority = msg->priority };
    s_append (server, &r);
}

void
zf_persist_put (zf_server_t *server, zf_message_t *msg, uint32_t attempt)
{
    if (s_recording (server))
        s_put (server, msg, attempt);
}

//  A group's record: ACK (its delivery finished) or RETRY (attempts so far).
static void
s_group_record (zf_server_t *server, zf_jr_type_t type, zf_delivery_t *d, bool dead,
                uint32_t attempts)
{
    zf_record_t r = { .type = type,
                      .id = d->msg->id,
                      .dead = dead,
                      .attempt = attempts,
                      .name = d->group->name,
                      .name_size = strlen (d->group->name) };
    s_append (server, &r);
}

void
zf_persist_ack (zf_server_t *server, zf_delivery_t *d, bool dead)
{
    s_group_record (server, ZF_JR_ACK, d, dead, 0);
}

void
zf_persist_retry (zf_server_t *server, zf_delivery_t *d)
{
    s_group_record (server, ZF_JR_RETRY, d, false, d->attempt);
}

void
zf_persist_fin (zf_server_t *server, const zf_id_t *id, uint8_t outcome)
{
    zf_record_t r = { .type = ZF_JR_FIN, .id = *id, .outcome = outcome };
    s_append (server, &r);
}

//  A result of answer's root (result), or the end of its lineage (NULL).
static void
s_answer (zf_server_t *server, zf_answer_t *answer, const zf_output_t *result)
{
    zf_record_t r = { .type = ZF_JR_RESULT, .root = answer->root };
    if (result) {
        r.id = result->id;
        r.ts = result->ts;
        r.name = result->queue;
        r.data = zframe_data (result->body);
        r.data_size = zframe_size (result->body);
    }
    else {
        r.ts = answer->ended;
        r.outcome = answer->outcome ? answer->outcome : ZF_OUTCOME_LIVE; // 0: runs again
        r.attempt = answer->attempts;
        r.name = answer->dead_queue;
        r.reason = answer->reason;
        r.reason_size = answer->reason ? strlen (answer->reason) : 0;
        r.detail = answer->detail;
        r.detail_size = answer->detail ? strlen (answer->detail) : 0;
    }
    r.name_size = strlen (r.name);
    s_append (server, &r);
}

void
zf_persist_answer (zf_server_t *server, zf_answer_t *answer, const zf_output_t *result)
{
    if (s_recording (server))
        s_answer (server, answer, result);
}

//  A queue's state set at run time.
static void
s_queue (zf_server_t *server, zf_queue_t *queue)
{
    zf_record_t r = { .type = ZF_JR_QUEUE,
                      .name = queue->name,
                      .name_size = strlen (queue->name),
                      .flags = queue->paused ? ZF_QUEUE_PAUSED : 0 };
    s_append (server, &r);
}

void
zf_persist_queue (zf_server_t *server, zf_queue_t *queue)
{
    if (s_recording (server))
        s_queue (server, queue);
}

void
zf_persist_record (zf_server_t *server, const zf_record_t *record)
{
    if (s_recording (server))
        s_append (server, record);
}

static void
s_snapshot_answer (zf_answer_t *answer, void *arg)
{
    for (uint32_t i = 0; i < answer->nitems; i++)
        s_answer ((zf_server_t *) arg, answer, &answer->items[i]);
    if (answer->outcome)
        s_answer ((zf_server_t *) arg, answer, NULL);
}

static void
s_checkpoint (zf_server_t *server, const char *actor, const void *data, size_t size)
{
    zf_record_t r = { .type = ZF_JR_CHECKPOINT,
                      .name = actor,
                      .name_size = strlen (actor),
                      .data = (const uint8_t *) data,
                      .data_size = size };
    s_append (server, &r);
}

//  --------------------------------------------------------------------------
//  CONFIRMs

static void
s_confirm_destroy (void **item)
{
    free (*item);
    *item = NULL;
}

void
zf_persist_confirm (zf_server_t *server, zf_pending_t *put)
{
    if (put->checkpoint_size) {
        zf_store_set_checkpoint (server->store, put->actor, put->checkpoint, put->checkpoint_size);
        s_checkpoint (server, put->actor, put->checkpoint, put->checkpoint_size);
    }
    zf_confirm_t now = { .seq = put->seq,
                         .accepted = put->accepted,
                         .duplicates = put->duplicates,
                         .refused = put->refused,
                         .refusal_kind = put->refused ? put->refusal_kind : ZF_REFUSAL_NONE };
    snprintf (now.session, sizeof now.session, "%s", put->session);
    snprintf (now.refusal, sizeof now.refusal, "%s", put->refused ? put->refusal : "");
    if (!server->journal && !server->cluster) {
        server->confirm (server, &now);
        return;
    }
    // Its items' records, and those of any earlier PUT of the same items
    // that made these duplicates, are written by now: durable at lsn (a
    // journal's position, or the number of the group's entry).
    zf_confirm_t *confirm = (zf_confirm_t *) zf_alloc (sizeof (zf_confirm_t));
    *confirm = now;
    confirm->lsn = server->cluster ? zf_cluster_appended (server->cluster)
                                   : zf_journal_appended (server->journal);
    zlistx_add_end (server->confirms, confirm);
    // Writers stall once their window is used up: with half a window of
    // items waiting for the disk, the next sync does not wait its turn; nor
    // does it when a writer waits for this very CONFIRM (a request).
    server->confirm_items += put->accepted + put->duplicates;
    if (server->journal && (put->urgent || server->confirm_items >= server->window / 2))
        zf_journal_hurry (server->journal);
}

//  Sends the CONFIRMs whose records are durable now.
static void
s_send_durable_confirms (zf_server_t *server)
{
    uint64_t durable = server->cluster ? zf_cluster_durable (server->cluster)
                                       : zf_journal_durable (server->journal);
    zf_confirm_t *confirm;
    while ((confirm = (zf_confirm_t *) zlistx_first (server->confirms)) &&
           confirm->lsn <= durable) {
        server->confirm (server, confirm);
        server->confirm_items -= confirm->accepted + confirm->duplicates;
        zlistx_delete (server->confirms, zlistx_cursor (server->confirms));
    }
}

//  --------------------------------------------------------------------------
//  Recovery and snapshots

static int
s_replay_record (void *arg, zf_jr_type_t type, const uint8_t *payload, size_t size, zf_error_t *err)
{
    zf_server_t *server = (zf_server_t *) arg;
    zf_record_t record;
    if (zf_record_read (&record, type, payload, size, err))
        return -1;
    switch (record.type) { // a PUT_SHORT reads as a PUT
        case ZF_JR_PUT:
            zf_store_restore_put (server->store, &record);
            return 0;
        case ZF_JR_ACK:
            zf_store_restore_ack (server->store, &record);
            return 0;
        case ZF_JR_FIN:
            zf_store_restore_fin (server->store, &record);
            return 0;
        case ZF_JR_RETRY:
            zf_store_restore_retry (server->store, &record);
            return 0;
        case ZF_JR_RESULT:
            zf_store_restore_result (server->store, &record);
            return 0;
        case ZF_JR_QUEUE:
            zf_store_restore_queue (server->store, &record);
            return 0;
        case ZF_JR_SCHEDULE:
            zf_schedules_restore (server, &record);
            return 0;
        case ZF_JR_CHECKPOINT: {
            char actor[ZF_NAME_MAX + 1];
            snprintf (actor, sizeof actor, "%.*s", (int) record.name_size, record.name);
            zf_store_set_checkpoint (server->store, actor, record.data, record.data_size);
            return 0;
        }
        default:
            return zf_error_set (err, ZF_EVALUE, "record type %d out of place", (int) type);
    }
}

int
zf_persist_open (zf_server_t *server, const char *path, zf_error_t *err)
{
    server->confirms = zlistx_new ();
    zlistx_set_destructor (server->confirms, s_confirm_destroy);
    const zf_broker_settings_t *set = &server->pipeline->broker_settings;
    server->journal = zf_journal_open (path, (zf_sync_t) set->sync, set->sync_interval, err);
    if (!server->journal)
        return -1;
    zf_journal_set_segment_max (server->journal, (uint64_t) set->journal_segment);
    zf_journal_report_t report;
    server->replaying = true;
    int rc = zf_journal_replay (server->journal, s_replay_record, server, &report, err);
    server->replaying = false;
    if (rc && err->code == ZF_EVALUE)
        // Said apart from err, whose text holds the file and the offset.
        zsys_error ("broker: journal %s is corrupt and was left as it is: `zflow journal repair "
                    "%s` cuts it at its first bad record, keeping a copy of what it cuts; or "
                    "restore the journal",
                    path, path);
    if (rc)
        return -1;
    zf_store_restored (server->store);
    size_t restored = zf_store_size (server->store);
    if (restored || report.records)
        zsys_info ("broker: journal %s: %zu items restored from %" PRIu64 " records (%.1f MB) in "
                   "%" PRId64 " ms",
                   path, restored, report.records, report.bytes / 1e6, report.elapsed_ms);
    return 0;
}

static void
s_snapshot_seen (const zf_id_t *id, uint8_t outcome, void *arg)
{
    if (outcome != ZF_OUTCOME_LIVE) // stored items come with their PUT
        zf_persist_fin ((zf_server_t *) arg, id, outcome);
}

typedef struct {
    zf_message_t **msgs; // stored messages
    size_t count;        // entries
} s_msg_list_t;

static void
s_collect (zf_message_t *msg, void *arg)
{
    s_msg_list_t *list = (s_msg_list_t *) arg;
    list->msgs[list->count++] = msg;
}

static int
s_order_cmp (const void *a, const void *b)
{
    uint64_t x = (*(zf_message_t *const *) a)->order, y = (*(zf_message_t *const *) b)->order;
    return x < y ? -1 : x > y;
}

//  The attempts of d that are over: one in flight does not count yet.
static uint32_t
s_attempts_over (const zf_delivery_t *d)
{
    return d->state == ZF_D_INFLIGHT && d->attempt ? d->attempt - 1 : d->attempt;
}

//  The live state as records: what a snapshot holds.
static void
s_snapshot_records (void *arg)
{
    zf_server_t *server = (zf_server_t *) arg;
    zlistx_t *queues = zf_store_queues (server->store);
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (queues); queue;
         queue = (zf_queue_t *) zlistx_next (queues))
        if (queue->paused)
            s_queue (server, queue);
    zf_schedules_foreach (server, s_append);
    zf_store_foreach_seen (server->store, s_snapshot_seen, server);
    // The stored items in the order they came, so a restart keeps each
    // queue's order.
    s_msg_list_t list = { (zf_message_t **) zf_alloc ((zf_store_size (server->store) + 1) *
                                                      sizeof (zf_message_t *)),
                          0 };
    zf_store_foreach_message (server->store, s_collect, &list);
    qsort (list.msgs, list.count, sizeof (zf_message_t *), s_order_cmp);
    for (size_t i = 0; i < list.count; i++) {
        zf_message_t *msg = list.msgs[i];
        uint32_t attempt = UINT32_MAX;
        for (uint32_t g = 0; g < msg->ndeliveries; g++)
            if (s_attempts_over (&msg->deliveries[g]) < attempt)
                attempt = s_attempts_over (&msg->deliveries[g]);
        s_put (server, msg, attempt);
        for (uint32_t g = 0; g < msg->ndeliveries; g++) {
            zf_delivery_t *d = &msg->deliveries[g];
            uint32_t over = s_attempts_over (d);
            if (!d->group)
                continue; // a group forgotten since
            if (d->state == ZF_D_FINISHED)
                s_group_record (server, ZF_JR_ACK, d, false, 0);
            else if (over > attempt)
                s_group_record (server, ZF_JR_RETRY, d, false, over); // more than the PUT says
        }
    }
    free (list.msgs);
    zf_results_foreach (zf_store_results (server->store), s_snapshot_answer, server);
    zhashx_t *checkpoints = zf_store_checkpoints (server->store);
    for (zchunk_t *chunk = (zchunk_t *) zhashx_first (checkpoints); chunk;
         chunk = (zchunk_t *) zhashx_next (checkpoints))
        s_checkpoint (server, (const char *) zhashx_cursor (checkpoints), zchunk_data (chunk),
                      zchunk_size (chunk));
}

//  Compaction: the live state into a new segment, the old ones deleted.
//  The loop waits meanwhile, for time in proportion to what is stored.
static void
s_snapshot (zf_server_t *server)
{
    int64_t started = zclock_mono ();
    zf_error_t err;
    if (zf_journal_snapshot_begin (server->journal, &err)) {
        zsys_error ("broker: %s", err.text);
        return;
    }
    s_snapshot_records (server);
    if (zf_journal_snapshot_end (server->journal, &err))
        zsys_error ("broker: %s", err.text);
    server->compactions++;
    server->compaction_ms += zclock_mono () - started;
}

//  --------------------------------------------------------------------------
//  On a Raft group

//  This broker leads: what the log holds is applied, and it serves.
static void
s_leading (void *arg)
{
    zf_server_t *server = (zf_server_t *) arg;
    server->replaying = false;
    zf_store_restored (server->store);
    size_t stored = zf_store_size (server->store);
    if (stored)
        zsys_info ("broker: %zu items stored take up their deliveries again", stored);
}

int
zf_persist_cluster (zf_server_t *server, const zf_cluster_args_t *args, zf_error_t *err)
{
    server->confirms = zlistx_new ();
    zlistx_set_destructor (server->confirms, s_confirm_destroy);
    // A follower applies the leader's records as a replay does, until it
    // leads.
    server->replaying = true;
    zf_cluster_hooks_t hooks = { .arg = server,
                                 .record = s_replay_record,
                                 .snapshot = s_snapshot_records,
                                 .leading = s_leading };
    server->cluster = zf_cluster_new (args, &hooks, err);
    return server->cluster ? 0 : -1;
}

void
zf_persist_commit (zf_server_t *server, int64_t now)
{
    if (server->cluster) {
        zf_cluster_commit (server->cluster);
        s_send_durable_confirms (server);
        return;
    }
    if (!server->journal)
        return;
    zf_journal_commit (server->journal, now);
    s_send_durable_confirms (server);
    if (zf_journal_wants_snapshot (server->journal)) {
        s_snapshot (server);
        s_send_durable_confirms (server);
    }
}

void
zf_persist_synced (zf_server_t *server, int64_t now)
{
    zf_journal_synced (server->journal, now);
}
