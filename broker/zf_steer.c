/*  zf_steer: what an operator does to a running broker's store: pause and
    resume a queue, list its items, requeue dead letters, purge a queue.
    See zf_store.h ("Steering").

    Each change goes through the store's usual paths, so that the journal
    (and a Raft group) records it as it records the traffic: a requeue is
    the letter finished (FIN) and its item stored again (PUT), after a
    RESULT that says its root's lineage runs again; a purge is a cancel of
    the lineages of the items dropped; a pause is a QUEUE record.
*/
#include "zf_alloc.h"
#include "zf_mp.h"
#include "zf_store_impl.h"

void
zf_store_pause (zf_store_t *self, zf_queue_t *queue, bool paused)
{
    if (queue->paused == paused)
        return;
    queue->paused = paused;
    if (!paused)
        for (size_t g = 0; g < queue->ngroups; g++)
            if (queue->groups[g]->ready.size)
                zf_store_mark_dirty (self, queue->groups[g]);
    self->hooks.paused (self->hooks.arg, queue);
}

void
zf_store_restore_queue (zf_store_t *self, const zf_record_t *r)
{
    char name[ZF_NAME_MAX + 1];
    snprintf (name, sizeof name, "%.*s", (int) r->name_size, r->name);
    zf_store_queue (self, name)->paused = (r->flags & ZF_QUEUE_PAUSED) != 0;
}

//  --------------------------------------------------------------------------
//  Reload

//  The group of queue named name, or NULL.
static zf_cgroup_t *
s_group_named (zf_queue_t *queue, const char *name)
{
    for (size_t g = 0; g < queue->ngroups; g++)
        if (streq (queue->groups[g]->name, name))
            return queue->groups[g];
    return NULL;
}

void
zf_store_rename_groups (zf_store_t *self, const char *renames)
{
    char *list = zf_strdup (renames ? renames : "");
    for (char *pair = strtok (list, ","); pair; pair = strtok (NULL, ",")) {
        char *to = strchr (pair, '=');
        if (!to)
            continue;
        *to++ = 0;
        for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
             queue = (zf_queue_t *) zlistx_next (self->queue_order)) {
            zf_cgroup_t *group = s_group_named (queue, pair);
            if (group && !s_group_named (queue, to)) {
                free (group->name);
                group->name = zf_strdup (to);
                zf_flow_group (self, group); // the new actor's limits
            }
        }
    }
    free (list);
}

void
zf_store_reconfigure (zf_store_t *self, zf_pipeline_t *pipeline, const char *renames)
{
    self->pipeline = pipeline;
    self->group_expiry = pipeline->broker_settings.group_expiry;
    // A reader replaced by another takes over its group, and what it held.
    zf_store_rename_groups (self, renames);
    // Every queue's settings as the file says now; a group is declared
    // while an actor of the pipeline reads it (one that is not expires
    // after group-expiry without a worker).
    for (zf_queue_conf_t *q = (zf_queue_conf_t *) zlistx_first (pipeline->queues); q;
         q = (zf_queue_conf_t *) zlistx_next (pipeline->queues))
        zf_store_queue (self, q->name);
    for (zf_queue_t *queue = (zf_queue_t *) zlistx_first (self->queue_order); queue;
         queue = (zf_queue_t *) zlistx_next (self->queue_order)) {
        const zf_queue_settings_t *settings = zf_pipeline_queue_settings (pipeline, queue->name);
        int64_t was = queue->max_depth;
        if (!queue->dead_letters)
            queue->max_depth = settings->max_depth;
        queue->max_attempts = settings->max_attempts;
        queue->timeout = settings->timeout;
        queue->retry_base = settings->retry_base;
        queue->retry_max = settings->retry_max;
        zf_flow_configure (self, queue, settings);
        zf_queue_conf_t *conf = zf_pipeline_queue (pipeline, queue->name);
        queue->collects = conf && conf->results;
        queue->keeps = !queue->collects || zlistx_size (conf->readers) || conf->external;
        for (size_t g = 0; g < queue->ngroups; g++) {
            zf_cgroup_t *group = queue->groups[g];
            if (group->anonymous)
                continue;
            zf_actor_conf_t *actor = zf_pipeline_actor (pipeline, group->name);
            group->declared = actor && actor->input && streq (actor->input, queue->name);
            if (!group->declared && !group->nworkers && !group->idle_since)
                group->idle_since = zclock_mono (); // expires from now
        }
        for (const char *reader = conf ? (const char *) zlistx_first (conf->readers) : NULL; reader;
             reader = (const char *) zlistx_next (conf->readers)) {
            zf_cgroup_t *group = zf_store_group (self, queue, reader);
            zf_actor_conf_t *actor = zf_pipeline_actor (pipeline, reader);
            group->declared = true;
            group->together = actor && (actor->kind->flags & ZF_KIND_FANIN);
        }
        if (queue->max_depth > was)
            zf_store_resume_waiting (self, queue);
    }
}

//  --------------------------------------------------------------------------
//  Headers

const char *
zf_store_header (const zf_message_t *msg, const char *name, uint32_t *len)
{
    return zf_mp_header (msg->headers, msg->headers_size, name, len);
}

//  True if msg has the header where says ("NAME=VALUE"; NULL: any).
static bool
s_header_matches (const zf_message_t *msg, const char *where)
{
    if (!where || !*where)
        return true;
    const char *equals = strchr (where, '=');
    if (!equals)
        return false;
    char name[ZF_TEXT_MAX + 1];
    snprintf (name, sizeof name, "%.*s", (int) (equals - where), where);
    uint32_t len;
    const char *value = zf_store_header (msg, name, &len);
    return value && len == strlen (equals + 1) && memcmp (value, equals + 1, len) == 0;
}

//  --------------------------------------------------------------------------
//  Selecting

typedef struct {
    zf_queue_t *queue;        // of this queue
    const zf_select_t *which; // taken so
    zf_message_t **msgs;      // they
    size_t count;             // entries in msgs
} s_taken_t;

static bool
s_takes (const zf_select_t *which, const zf_message_t *msg)
{
    return s_header_matches (msg, which->where) && (!which->before || msg->ts < which->before);
}

static void
s_take_one (void *value, void *arg)
{
    s_taken_t *taken = (s_taken_t *) arg;
    zf_message_t *msg = (zf_message_t *) value;
    if (msg->queue == taken->queue && s_takes (taken->which, msg))
        taken->msgs[taken->count++] = msg;
}

static int
s_by_order (const void *a, const void *b)
{
    uint64_t x = (*(zf_message_t *const *) a)->order, y = (*(zf_message_t *const *) b)->order;
    return x < y ? -1 : x > y;
}

//  The stored message of queue that id names: its own, or (in a
//  dead-letter queue) the letter of the item id; NULL if none.
static zf_message_t *
s_named (zf_store_t *self, zf_queue_t *queue, const zf_id_t *id)
{
    zf_message_t *msg = (zf_message_t *) zf_idmap_get (self->live, id);
    if (msg && msg->queue == queue)
        return msg;
    if (!queue->dead_letters)
        return NULL;
    zf_id_t letter = zf_id_child (id, UINT32_MAX);
    msg = (zf_message_t *) zf_idmap_get (self->live, &letter);
    return msg && msg->queue == queue ? msg : NULL;
}

//  The messages of queue which takes, oldest first, in a new array (its
//  count in taken->count); ids named and not there counted in *missing.
static void
s_select (zf_store_t *self, zf_queue_t *queue, const zf_select_t *which, s_taken_t *taken,
          size_t *missing)
{
    *taken = (s_taken_t){ .queue = queue, .which = which };
    if (which->ids) {
        taken->msgs = (zf_message_t **) zf_alloc ((which->nids + 1) * sizeof (void *));
        for (size_t i = 0; i < which->nids; i++) {
            zf_message_t *msg = s_named (self, queue, &which->ids[i]);
            bool twice = false; // an id named twice, or an item and its letter
            for (size_t j = 0; msg && j < taken->count; j++)
                twice |= taken->msgs[j] == msg;
            if (!msg)
                (*missing)++;
            else if (!twice && s_takes (which, msg))
                taken->msgs[taken->count++] = msg;
        }
    }
    else {
        taken->msgs = (zf_message_t **) zf_alloc ((queue->depth + 1) * sizeof (void *));
        zf_idmap_foreach (self->live, s_take_one, taken);
    }
    qsort (taken->msgs, taken->count, sizeof (zf_message_t *), s_by_order);
}

size_t
zf_store_list (zf_store_t *self, zf_queue_t *queue, const zf_select_t *select, size_t limit,
               void (*fn) (zf_message_t *msg, void *arg), void *arg)
{
    s_taken_t taken;
    size_t missing = 0;
    s_select (self, queue, select, &taken, &missing);
    for (size_t i = 0; i < taken.count && i < limit; i++)
        fn (taken.msgs[i], arg);
    free (taken.msgs);
    return taken.count;
}

//  True if a delivery of msg is in flight: a worker holds it.
static bool
s_held (const zf_message_t *msg)
{
    for (uint32_t g = 0; g < msg->ndeliveries; g++)
        if (msg->deliveries[g].state == ZF_D_INFLIGHT)
            return true;
    return false;
}

//  Finishes every delivery of msg, none in flight, and frees it with
//  outcome.
static void
s_drop (zf_store_t *self, zf_message_t *msg, uint8_t outcome)
{
    for (uint32_t g = 0; g < msg->ndeliveries; g++) {
        zf_delivery_t *d = &msg->deliveries[g];
        if (d->state == ZF_D_READY)
            zf_store_unready (self, d);
        else if (d->state == ZF_D_DELAYED)
            zf_heap_remove (&self->delayed, &d->retry);
        d->state = ZF_D_FINISHED;
    }
    msg->pending = 0;
    zf_queue_t *queue = msg->queue;
    zf_store_msg_free (self, msg, outcome);
    zf_store_resume_waiting (self, queue);
}

//  --------------------------------------------------------------------------
//  Requeue

//  The headers of letter's item as it goes back: the letter's without
//  those the broker added to it, and zflow-requeued one more than it had.
bool
zf_store_broker_header (const char *key, size_t len)
{
    static const char *ours[] = { "zflow-queue", "zflow-consumer", "zflow-attempts",
                                  "zflow-root",  "zflow-group",    "zflow-error" };
    for (size_t o = 0; o < sizeof ours / sizeof ours[0]; o++)
        if (len == strlen (ours[o]) && memcmp (key, ours[o], len) == 0)
            return true;
    return false;
}

static void
s_requeued_headers (const zf_message_t *letter, msgpack_sbuffer *buffer)
{
    zf_mp_t mp;
    zf_mp_init (&mp, letter->headers, letter->headers_size);
    uint32_t count = 0, kept = 0;
    if (letter->headers_size && zf_mp_map (&mp, &count, NULL))
        count = 0; // checked when it was put: cannot happen
    const char *keys[ZF_HEADERS_COUNT], *values[ZF_HEADERS_COUNT];
    uint32_t key_lens[ZF_HEADERS_COUNT], value_lens[ZF_HEADERS_COUNT];
    unsigned long times = 0;
    for (uint32_t i = 0; i < count && kept < ZF_HEADERS_COUNT - 1; i++) { // room for ours
        const char *key, *value;
        uint32_t key_len, value_len;
        if (zf_mp_str (&mp, &key, &key_len, NULL) || zf_mp_str (&mp, &value, &value_len, NULL))
            break;
        if (key_len == 14 && memcmp (key, "zflow-requeued", 14) == 0) {
            char number[24];
            snprintf (number, sizeof number, "%.*s", (int) (value_len < 23 ? value_len : 23),
                      value);
            times = strtoul (number, NULL, 10);
            continue;
        }
        if (zf_store_broker_header (key, key_len))
            continue;
        keys[kept] = key, key_lens[kept] = key_len;
        values[kept] = value, value_lens[kept] = value_len;
        kept++;
    }
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, kept + 1);
    for (uint32_t i = 0; i < kept; i++) {
        zf_mp_pack_strn (&pk, keys[i], key_lens[i]);
        zf_mp_pack_strn (&pk, values[i], value_lens[i]);
    }
    char number[24];
    snprintf (number, sizeof number, "%lu", times + 1);
    zf_mp_pack_cstr (&pk, "zflow-requeued");
    zf_mp_pack_cstr (&pk, number);
}

zf_answer_t *
zf_store_reopen (zf_store_t *self, const zf_id_t *root)
{
    zf_lineage_t *lineage = (zf_lineage_t *) zf_idmap_get (self->lineages, root);
    if (lineage)
        lineage->dead = false;
    return zf_results_reopen (self->results, root);
}

//  The root of the lineage letter's item was of: zflow-root, or the item
//  itself. False if the header is there but no id.
static bool
s_letter_root (const zf_message_t *letter, zf_id_t *root)
{
    uint32_t len;
    const char *hex = zf_store_header (letter, "zflow-root", &len);
    *root = letter->parent;
    if (!hex)
        return true;
    char text[ZF_ID_HEX];
    snprintf (text, sizeof text, "%.*s", (int) (len < ZF_ID_HEX - 1 ? len : ZF_ID_HEX - 1), hex);
    return len == ZF_ID_HEX - 1 && zf_id_parse (root, text) == 0;
}

//  The deliveries of msg, just stored, but for the consumer group named
//  (the letter's zflow-consumer), are finished at once: a requeue goes to
//  the group that failed it, not again to those that had it done. When
//  no group has that name now, every group gets it.
static void
s_only_for (zf_store_t *self, zf_message_t *msg, const char *group, uint32_t len)
{
    bool found = false;
    for (uint32_t g = 0; g < msg->ndeliveries && !found; g++)
        found = strlen (msg->deliveries[g].group->name) == len &&
                memcmp (msg->deliveries[g].group->name, group, len) == 0;
    for (uint32_t g = 0; g < msg->ndeliveries && found; g++) {
        zf_delivery_t *d = &msg->deliveries[g];
        if (strlen (d->group->name) == len && memcmp (d->group->name, group, len) == 0)
            continue;
        if (d->state == ZF_D_READY)
            zf_store_unready (self, d);
        else if (d->state == ZF_D_DELAYED)
            zf_heap_remove (&self->delayed, &d->retry);
        d->state = ZF_D_FINISHED;
        msg->pending--;
        self->hooks.acked (self->hooks.arg, d, false); // journaled: not delivered again
    }
}

//  Moves letter back to the queue its item failed in (QUEUE of QUEUE.dead),
//  for the consumer group that failed it; false when it stays (busy). Its
//  root's lineage runs again: its end and failure forgotten, unless
//  another letter of it waits still (kept, those of others: it is dead
//  until all are through).
static bool
s_requeue_one (zf_store_t *self, zf_message_t *letter, zf_idmap_t *kept)
{
    char queue_name[ZF_NAME_MAX + 1];
    snprintf (queue_name, sizeof queue_name, "%.*s", (int) (strlen (letter->queue->name) - 5),
              letter->queue->name);
    zf_id_t root;
    uint32_t len;
    if (!s_letter_root (letter, &root) || s_held (letter) ||
        zf_store_header (letter, "zflow-group", &len) ||
        zf_idmap_get (self->live, &letter->parent) || zf_id_is_zero (&letter->parent))
        return false;
    bool is_root = zf_id_eq (&root, &letter->parent);
    zf_env_t env = { .id = letter->parent,
                     .parent = letter->id,
                     .root = is_root ? (zf_id_t){ { 0 } } : root,
                     .ts = zclock_time () };
    msgpack_sbuffer headers;
    msgpack_sbuffer_init (&headers);
    s_requeued_headers (letter, &headers);
    env.headers = (const uint8_t *) headers.data;
    env.headers_size = (uint32_t) headers.size;
    if (!zf_idmap_get (kept, &root)) {
        zf_answer_t *answer = zf_store_reopen (self, &root);
        if (answer)
            self->hooks.answered (self->hooks.arg, answer, NULL); // journaled: it runs again
    }
    zf_lineage_t *lineage = is_root ? NULL : zf_store_hold (self, &root);
    zframe_t *body = zframe_dup (letter->body);
    zf_message_t *msg =
        zf_store_msg_new (self, zf_store_queue (self, queue_name), &env, &body, lineage);
    msgpack_sbuffer_destroy (&headers);
    const char *consumer = zf_store_header (letter, "zflow-consumer", &len);
    if (consumer)
        s_only_for (self, msg, consumer, len);
    s_drop (self, letter, ZF_OUTCOME_DONE);
    return true;
}

typedef struct {
    zf_idmap_t *chosen; // letters to requeue, by id
    zf_idmap_t *kept;   // roots of the letters that stay, by root
} s_stay_t;

static void
s_note_staying (void *value, void *arg)
{
    zf_message_t *msg = (zf_message_t *) value;
    s_stay_t *stay = (s_stay_t *) arg;
    zf_id_t root;
    if (msg->queue->dead_letters && !zf_idmap_get (stay->chosen, &msg->id) &&
        s_letter_root (msg, &root))
        zf_idmap_put (stay->kept, &root, msg);
}

void
zf_store_requeue (zf_store_t *self, zf_queue_t *dead, const zf_select_t *select,
                  zf_steered_t *steered)
{
    *steered = (zf_steered_t){ 0 };
    if (!dead->dead_letters)
        return;
    s_taken_t taken;
    s_select (self, dead, select, &taken, &steered->missing);
    // The roots with letters that stay: their lineages stay dead.
    s_stay_t stay = { zf_idmap_new (taken.count + 1), zf_idmap_new (64) };
    for (size_t i = 0; i < taken.count; i++)
        zf_idmap_put (stay.chosen, &taken.msgs[i]->id, taken.msgs[i]);
    zf_idmap_foreach (self->live, s_note_staying, &stay);
    for (size_t i = 0; i < taken.count; i++)
        if (s_requeue_one (self, taken.msgs[i], stay.kept))
            steered->done++;
        else
            steered->busy++;
    zf_idmap_destroy (&stay.chosen);
    zf_idmap_destroy (&stay.kept);
    free (taken.msgs);
}

//  --------------------------------------------------------------------------
//  Purge

void
zf_store_purge (zf_store_t *self, zf_queue_t *queue, const zf_select_t *select, zf_cancel_fn *fn,
                void *arg, zf_steered_t *steered)
{
    *steered = (zf_steered_t){ 0 };
    s_taken_t taken;
    s_select (self, queue, select, &taken, &steered->missing);
    char why[ZF_NAME_MAX + 32];
    snprintf (why, sizeof why, "purged from %s", queue->name);
    // Items of a lineage go with it, in one sweep for all lineages; the
    // rest (roots that made nothing, dead letters) one by one.
    zf_lineage_t **lineages = (zf_lineage_t **) zf_alloc ((taken.count + 1) * sizeof (void *));
    size_t nlineages = 0;
    for (size_t i = 0; i < taken.count; i++) {
        zf_message_t *msg = taken.msgs[i];
        if (s_held (msg))
            steered->busy++;
        else if (msg->lineage) {
            if (!msg->lineage->sweep) {
                msg->lineage->sweep = true; // listed once
                lineages[nlineages++] = msg->lineage;
            }
            steered->done++;
        }
        else {
            if (zf_id_is_zero (&msg->root) && !queue->dead_letters)
                zf_results_cancel (self->results, &msg->id, why);
            s_drop (self, msg, ZF_OUTCOME_CANCELLED);
            steered->done++;
        }
    }
    free (taken.msgs);
    if (nlineages)
        zf_store_cancel_all (self, lineages, nlineages, "", why, fn, arg);
    free (lineages);
}
