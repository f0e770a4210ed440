/*  zf_schedules: schedules added to a running broker. See zf_schedules.h. */
#include "zf_schedules.h"
#include "zf_alloc.h"
#include "zf_id.h"
#include "zf_json.h"
#include "zf_mp.h"
#include "zf_persist.h"
#include "zf_trigger.h"
#include "zf_tz.h"
#include "zf_value.h"

#define GRACE_DEFAULT 1000 // ms a firing may be late, when the spec says nothing

//  One schedule.
typedef struct {
    char name[ZF_NAME_MAX + 1];        // its name
    char queue[ZF_NAME_MAX + 1];       // where it puts
    char job[2 * ZF_NAME_MAX + 16];    // PIPELINE/schedule/NAME: its firings' ids
    uint8_t *spec;                     // as the CONTROL gave it (msgpack map), owned
    size_t spec_size;                  // bytes at spec
    zf_trigger_t trigger;              // when it fires
    char words[ZF_TRIGGER_MAX + 1];    // the same, in words
    char tz[64];                       // the zone's name
    const uint8_t *payload;            // the payload, msgpack (a view into spec), or NULL
    size_t payload_size;               // bytes at payload
    int64_t grace;                     // misfire-grace, ms
    bool coalesce;                     // after a stall, once for all missed
    uint32_t max_instances;            // firings running at most; 0: no limit
    bool paused;                       // fires nothing
    bool full;                         // its last firing found its queue full (said once)
    uint64_t missed_run;               // firings missed as late in a row
    int64_t last;                      // its last firing handled (ms, wall), or INT64_MIN
    int64_t due;                       // its next (ms, wall), or INT64_MAX
    uint64_t fired, missed;            // since the broker started
    zf_id_t running[ZF_SCHEDULES_MAX]; // with max-instances: firings that may still run
    uint32_t nrunning;                 // entries in running
} s_schedule_t;

struct _zf_schedules_t {
    zhashx_t *all; // name -> s_schedule_t
};

static void
s_schedule_destroy (void **item)
{
    s_schedule_t *schedule = (s_schedule_t *) *item;
    zf_cron_destroy (&schedule->trigger.cron);
    zf_tz_destroy (&schedule->trigger.tz);
    free (schedule->spec);
    free (schedule);
    *item = NULL;
}

zf_schedules_t *
zf_schedules_new (void)
{
    zf_schedules_t *self = (zf_schedules_t *) zf_alloc (sizeof (zf_schedules_t));
    self->all = zhashx_new ();
    zhashx_set_destructor (self->all, s_schedule_destroy);
    return self;
}

void
zf_schedules_destroy (zf_schedules_t **self_p)
{
    if (!*self_p)
        return;
    zhashx_destroy (&(*self_p)->all);
    free (*self_p);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  A schedule's spec

//  A new schedule name of queue from spec (a msgpack map: cron, every, at,
//  tz, payload, misfire_grace, coalesce, max_instances); NULL with why
//  filled when the spec is wrong.
static s_schedule_t *
s_schedule_new (const char *pipeline, const char *name, const char *queue, const uint8_t *spec,
                size_t size, char *why, size_t why_size)
{
    s_schedule_t *s = (s_schedule_t *) zf_alloc (sizeof (s_schedule_t));
    snprintf (s->name, sizeof s->name, "%s", name);
    snprintf (s->queue, sizeof s->queue, "%s", queue);
    snprintf (s->job, sizeof s->job, "%s/schedule/%s", pipeline, name);
    s->spec = (uint8_t *) zf_alloc (size + 1);
    memcpy (s->spec, spec, size);
    s->spec_size = size;
    s->trigger.at = -1;
    s->trigger.start = INT64_MIN;
    s->trigger.end = INT64_MAX;
    s->grace = GRACE_DEFAULT;
    s->coalesce = true;
    s->last = INT64_MIN;
    s->due = INT64_MAX;
    snprintf (s->tz, sizeof s->tz, "UTC");
    char cron[ZF_TRIGGER_MAX - 4] = "", at[64] = ""; // "cron " and it fit the words
    zf_mp_t mp;
    zf_mp_init (&mp, s->spec, s->spec_size);
    uint32_t count;
    zf_error_t err = { 0 };
    if (zf_mp_map (&mp, &count, &err)) {
        snprintf (why, why_size, "a schedule's spec is a map: %s", err.text);
        goto wrong;
    }
    for (uint32_t i = 0; i < count; i++) {
        const char *key, *text;
        uint32_t key_len, len;
        uint64_t number;
        if (zf_mp_str (&mp, &key, &key_len, &err)) {
            snprintf (why, why_size, "a key of the spec: %s", err.text);
            goto wrong;
        }
#define S_KEY(k) (key_len == strlen (k) && memcmp (key, k, key_len) == 0)
        int rc = 0;
        if (S_KEY ("cron") || S_KEY ("at") || S_KEY ("tz")) {
            rc = zf_mp_str (&mp, &text, &len, &err);
            char *into = S_KEY ("cron") ? cron : S_KEY ("at") ? at : s->tz;
            size_t room = S_KEY ("cron") ? sizeof cron : S_KEY ("at") ? sizeof at : sizeof s->tz;
            if (!rc && len >= room) {
                snprintf (why, why_size, "%.*s: at most %zu bytes", (int) key_len, key, room - 1);
                goto wrong;
            }
            if (!rc)
                snprintf (into, room, "%.*s", (int) len, text);
        }
        else if (S_KEY ("every") || S_KEY ("misfire_grace") || S_KEY ("max_instances")) {
            rc = zf_mp_uint (&mp, &number, &err);
            if (!rc && S_KEY ("every"))
                s->trigger.every = number > 366ULL * 86400000 ? -1 : (int64_t) number;
            else if (!rc && S_KEY ("misfire_grace"))
                s->grace = number > 366ULL * 86400000 ? 366LL * 86400000 : (int64_t) number;
            else if (!rc)
                s->max_instances = number > 100000 ? 100000 : (uint32_t) number;
            if (!rc && S_KEY ("every") && s->trigger.every <= 0) {
                snprintf (why, why_size, "every: from 1 ms to 366 days");
                goto wrong;
            }
        }
        else if (S_KEY ("coalesce"))
            rc = zf_mp_bool (&mp, &s->coalesce, &err);
        else if (S_KEY ("payload")) {
            const uint8_t *data;
            rc = zf_mp_bin (&mp, &data, &len, &err);
            zf_mp_t check;
            zf_mp_init (&check, data, len);
            if (!rc && len && (zf_mp_skip (&check, ZF_MP_MAX_DEPTH, &err) || zf_mp_left (&check))) {
                snprintf (why, why_size, "payload: not one msgpack value");
                goto wrong;
            }
            if (!rc) {
                s->payload = len ? data : NULL;
                s->payload_size = len;
            }
        }
        else {
            snprintf (why, why_size,
                      "'%.*s' is not a key of a schedule: cron, every, at, tz, payload, "
                      "misfire_grace, coalesce, max_instances",
                      (int) (key_len < 64 ? key_len : 64), key);
            goto wrong;
        }
#undef S_KEY
        if (rc) {
            snprintf (why, why_size, "%.*s: %s", (int) (key_len < 64 ? key_len : 64), key,
                      err.text);
            goto wrong;
        }
    }
    if ((*cron != 0) + (s->trigger.every > 0) + (*at != 0) != 1) {
        snprintf (why, why_size, "a schedule fires on one of cron, every or at");
        goto wrong;
    }
    s->trigger.tz = zf_tz_load (s->tz, &err);
    if (!s->trigger.tz) {
        snprintf (why, why_size, "tz: %s", err.text);
        goto wrong;
    }
    if (*cron) {
        s->trigger.cron = zf_cron_new (cron, &err);
        if (!s->trigger.cron) {
            snprintf (why, why_size, "cron: %s", err.text);
            goto wrong;
        }
        snprintf (s->words, sizeof s->words, "cron %s", cron);
    }
    else if (*at) {
        int64_t seconds;
        if (zf_cron_parse_time (s->trigger.tz, at, &seconds, &err)) {
            snprintf (why, why_size, "at: %s", err.text);
            goto wrong;
        }
        s->trigger.at = seconds * 1000;
        snprintf (s->words, sizeof s->words, "at %s", at);
    }
    else {
        char duration[32];
        zf_format_duration (s->trigger.every, duration, sizeof duration);
        snprintf (s->words, sizeof s->words, "every %s", duration);
    }
    return s;
wrong:;
    void *item = s;
    s_schedule_destroy (&item);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Journal

//  The SCHEDULE record of s (removed: its removal), journaled.
static void
s_record (zf_server_t *server, s_schedule_t *s, bool removed, zf_record_t *r)
{
    *r = (zf_record_t){ .type = ZF_JR_SCHEDULE,
                        .name = s->name,
                        .name_size = strlen (s->name),
                        .flags = (uint8_t) ((s->paused ? ZF_SCHEDULE_PAUSED : 0) |
                                            (removed ? ZF_SCHEDULE_REMOVED : 0)),
                        .ts = s->last,
                        .target = s->queue,
                        .target_size = strlen (s->queue),
                        .data = s->spec,
                        .data_size = s->spec_size };
    (void) server;
}

static void
s_journal (zf_server_t *server, s_schedule_t *s, bool removed)
{
    zf_record_t r;
    s_record (server, s, removed, &r);
    zf_persist_record (server, &r);
}

void
zf_schedules_foreach (zf_server_t *server,
                      void (*fn) (zf_server_t *server, const zf_record_t *record))
{
    for (s_schedule_t *s = (s_schedule_t *) zhashx_first (server->schedules->all); s;
         s = (s_schedule_t *) zhashx_next (server->schedules->all)) {
        zf_record_t r;
        s_record (server, s, false, &r);
        fn (server, &r);
    }
}

//  When s fires next, from its last firing on (or from now for a new one).
static void
s_plan (s_schedule_t *s, int64_t now)
{
    s->due = zf_trigger_next (&s->trigger, s->last == INT64_MIN ? now : s->last + 1);
}

void
zf_schedules_restore (zf_server_t *server, const zf_record_t *r)
{
    char name[ZF_NAME_MAX + 1], queue[ZF_NAME_MAX + 1], why[256];
    snprintf (name, sizeof name, "%.*s", (int) r->name_size, r->name);
    snprintf (queue, sizeof queue, "%.*s", (int) r->target_size, r->target);
    zhashx_delete (server->schedules->all, name);
    if (r->flags & ZF_SCHEDULE_REMOVED)
        return;
    s_schedule_t *s = s_schedule_new (server->pipeline->name, name, queue, r->data, r->data_size,
                                      why, sizeof why);
    if (!s) { // written by this broker, so read as it was
        zsys_warning ("broker: schedule '%s' of the journal is not restored: %s", name, why);
        return;
    }
    s->paused = (r->flags & ZF_SCHEDULE_PAUSED) != 0;
    s->last = r->ts;
    s_plan (s, zclock_time ());
    zhashx_insert (server->schedules->all, name, s);
}

//  --------------------------------------------------------------------------
//  Firing

//  True if the firing id may still run: its lineage is not over.
static bool
s_running (zf_server_t *server, const zf_id_t *id)
{
    zf_message_t *msg;
    const char *state = zf_store_lineage_state (server->store, id, &msg);
    return !streq (state, "done") && !streq (state, "dead") && !streq (state, "cancelled") &&
           !streq (state, "unknown");
}

//  Puts the firing of s scheduled at when, late ms after it; false when it
//  was skipped (max-instances, or the queue refused it).
static bool
s_fire (zf_server_t *server, s_schedule_t *s, int64_t when, int64_t late)
{
    if (s->max_instances) {
        uint32_t kept = 0;
        for (uint32_t i = 0; i < s->nrunning; i++)
            if (s_running (server, &s->running[i]))
                s->running[kept++] = s->running[i];
        s->nrunning = kept;
        if (s->nrunning >= s->max_instances) {
            zsys_info ("broker: schedule %s: %u firings still in progress (max-instances): "
                       "skipped one",
                       s->name, s->nrunning);
            return false;
        }
    }
    // A full queue skips the firing (missed), as a late one: a firing
    // waiting for room would come late, and they would pile up.
    zf_queue_t *queue = zf_store_lookup (server->store, s->queue);
    if (queue && (int64_t) queue->depth >= queue->max_depth) {
        if (!s->full)
            zsys_warning ("broker: schedule %s: queue %s is full (max-depth %lld): its firings "
                          "are skipped until there is room",
                          s->name, s->queue, (long long) queue->max_depth);
        s->full = true;
        return false;
    }
    s->full = false;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    zf_trigger_item (&body, &s->trigger, s->name, when, late * 1000, s->payload, s->payload_size);
    zf_pending_t *put = zf_store_pending_new (1);
    zf_env_t *env = &put->items[0];
    env->id = zf_id_firing (s->job, when);
    env->ts = zclock_time ();
    snprintf (env->queue, sizeof env->queue, "%s", s->queue);
    env->body = zframe_new (body.data, body.size);
    msgpack_sbuffer_destroy (&body);
    zf_id_t id = env->id;
    bool in = zf_store_admit (server->store, put); // else it waits for room, and goes in then
    if (put->refused)
        zsys_warning ("broker: schedule %s: its firing is refused: %s", s->name, put->refusal);
    bool fired = !put->refused;
    if (in)
        zf_store_pending_destroy (&put);
    if (fired && s->max_instances && s->nrunning < ZF_SCHEDULES_MAX)
        s->running[s->nrunning++] = id;
    return fired;
}

void
zf_schedules_run (zf_server_t *server)
{
    if (!zhashx_size (server->schedules->all))
        return;
    int64_t now = zclock_time ();
    for (s_schedule_t *s = (s_schedule_t *) zhashx_first (server->schedules->all); s;
         s = (s_schedule_t *) zhashx_next (server->schedules->all)) {
        if (s->paused || s->due > now)
            continue;
        int64_t when = s->due, next = zf_trigger_next (&s->trigger, when + 1);
        if (s->coalesce)
            while (next <= now) { // a stall: the missed times become one firing, the last
                when = next;
                next = zf_trigger_next (&s->trigger, when + 1);
            }
        int64_t late = now - when;
        if (late > s->grace) {
            // Said for the first of a run of misses, and how many once it ends.
            if (s->missed_run++ == 0)
                zsys_warning ("broker: schedule %s: the firing of %lld missed by %lld ms "
                              "(misfire-grace %lld ms)",
                              s->name, (long long) when, (long long) late, (long long) s->grace);
            s->missed++;
        }
        else {
            if (s->missed_run > 1)
                zsys_warning ("broker: schedule %s: %llu firings in a row were missed", s->name,
                              (unsigned long long) s->missed_run);
            s->missed_run = 0;
            if (s_fire (server, s, when, late))
                s->fired++;
            else
                s->missed++;
        }
        s->last = when;
        s->due = next;
        // A restart goes on from here: journaled at each firing; while
        // catching up on missed ones, every 1,000th and the last.
        if (!s->missed_run || s->missed_run % 1000 == 1 || next > now)
            s_journal (server, s, false);
    }
}

int64_t
zf_schedules_due (zf_server_t *server)
{
    if (!zhashx_size (server->schedules->all))
        return -1;
    int64_t now = zclock_time (), soonest = INT64_MAX;
    for (s_schedule_t *s = (s_schedule_t *) zhashx_first (server->schedules->all); s;
         s = (s_schedule_t *) zhashx_next (server->schedules->all))
        if (!s->paused && s->due < soonest)
            soonest = s->due;
    return soonest == INT64_MAX ? -1 : soonest <= now ? 0 : soonest - now;
}

//  --------------------------------------------------------------------------
//  CONTROL

//  A row of the REPORT for s.
static void
s_row (zf_proto_t *out, s_schedule_t *s)
{
    zf_schedule_info_t *row = zf_proto_add_schedule (out);
    if (!row)
        return;
    snprintf (row->name, sizeof row->name, "%s", s->name);
    snprintf (row->queue, sizeof row->queue, "%s", s->queue);
    snprintf (row->trigger, sizeof row->trigger, "%s", s->words);
    snprintf (row->tz, sizeof row->tz, "%s", s->tz);
    row->paused = s->paused;
    row->next = s->due == INT64_MAX ? 0 : s->due;
    row->last = s->last == INT64_MIN ? 0 : s->last;
    row->fired = s->fired;
    row->missed = s->missed;
}

//  A row of a config file's job: name, its section node, its queue.
static void
s_config_row (zf_proto_t *out, const char *name, zconfig_t *node, const char *queue)
{
    zf_schedule_info_t *row = zf_proto_add_schedule (out);
    if (!row)
        return;
    const char *cron = zconfig_get (node, "cron", NULL), *every = zconfig_get (node, "every", NULL);
    snprintf (row->name, sizeof row->name, "%s", name);
    snprintf (row->queue, sizeof row->queue, "%s", queue ? queue : "");
    snprintf (row->trigger, sizeof row->trigger, "%s %s",
              cron    ? "cron"
              : every ? "every"
                      : "at",
              cron    ? cron
              : every ? every
                      : zconfig_get (node, "at", ""));
    snprintf (row->tz, sizeof row->tz, "%s", zconfig_get (node, "timezone", "UTC"));
    row->config = true;
}

//  The rows of the config file's scheduler jobs: each actor's sub-sections
//  with a trigger, or the actor itself.
static void
s_config_rows (zf_server_t *server, zf_proto_t *out)
{
    zlistx_t *actors = server->pipeline->actors;
    for (zf_actor_conf_t *actor = (zf_actor_conf_t *) zlistx_first (actors); actor;
         actor = (zf_actor_conf_t *) zlistx_next (actors)) {
        if (!actor->kind || !streq (actor->kind->name, "scheduler"))
            continue;
        bool jobs = false;
        for (zconfig_t *job = zconfig_child (actor->node); job; job = zconfig_next (job)) {
            if (!zconfig_child (job) || streq (zconfig_name (job), "payload"))
                continue;
            jobs = true;
            char name[2 * ZF_NAME_MAX + 2];
            snprintf (name, sizeof name, "%s/%s", actor->name, zconfig_name (job));
            s_config_row (out, name, job, zconfig_get (job, "output", actor->output));
        }
        if (!jobs)
            s_config_row (out, actor->name, actor->node, actor->output);
    }
}

//  True if name may be a job of the config file (an actor's name, or any
//  ACTOR/JOB: a runtime schedule's name has no slash): not changed at run
//  time.
static bool
s_of_config (zf_server_t *server, const char *name)
{
    return strchr (name, '/') || zf_pipeline_actor (server->pipeline, name);
}

//  A one-shot s (just added) whose time passed: fired now, late, if within
//  its misfire-grace; else refused (-1, why), as it would never fire.
static int
s_passed (s_schedule_t *s, int64_t now, char *why, size_t why_size)
{
    int64_t at = s->trigger.at;
    if (at < 0 || at >= now || (s->last != INT64_MIN && s->last >= at))
        return 0;
    if (now - at <= s->grace) {
        s->due = at;
        return 0;
    }
    snprintf (why, why_size,
              "%s is %lld s past (misfire-grace %lld ms): it would never fire; give a time to "
              "come",
              s->words, (long long) ((now - at) / 1000), (long long) s->grace);
    return -1;
}

static int
s_by_name (const void *a, const void *b)
{
    return strcmp (((const zf_schedule_info_t *) a)->name, ((const zf_schedule_info_t *) b)->name);
}

zf_refusal_t
zf_schedules_control (zf_server_t *server, char *why, size_t why_size)
{
    zf_proto_t *in = server->in, *out = server->out;
    const char *op = in->op, *name = in->name;
    zhashx_t *all = server->schedules->all;
    if (streq (op, "schedules")) {
        s_config_rows (server, out);
        for (s_schedule_t *s = (s_schedule_t *) zhashx_first (all); s;
             s = (s_schedule_t *) zhashx_next (all))
            s_row (out, s);
        qsort (out->schedules, out->nschedules, sizeof (zf_schedule_info_t), s_by_name);
        out->count = out->nschedules;
        return ZF_REFUSAL_NONE;
    }
    if (!*name) {
        snprintf (why, why_size, "%s: name the schedule", op);
        return ZF_REFUSAL_INVALID;
    }
    s_schedule_t *s = (s_schedule_t *) zhashx_lookup (all, name);
    if ((!s || streq (op, "schedule-add")) && s_of_config (server, name)) {
        snprintf (why, why_size,
                  "'%s' is %s of the config file: it changes with the file, "
                  "not at run time",
                  name, strchr (name, '/') ? "a job" : "an actor");
        return ZF_REFUSAL_INVALID;
    }
    if (streq (op, "schedule-add")) {
        if (!zf_json_name_ok (name)) {
            snprintf (why, why_size, "'%s' is no schedule name (printable UTF-8)", name);
            return ZF_REFUSAL_INVALID;
        }
        if (!zf_store_lookup (server->store, in->queue) &&
            !zf_pipeline_queue (server->pipeline, in->queue)) {
            snprintf (why, why_size, "no queue '%s' in this broker", in->queue);
            return ZF_REFUSAL_NO_QUEUE;
        }
        if (!s && zhashx_size (all) >= ZF_SCHEDULES_MAX / 2) {
            snprintf (why, why_size, "%zu schedules already: no more are taken", zhashx_size (all));
            return ZF_REFUSAL_INVALID;
        }
        s_schedule_t *added = s_schedule_new (server->pipeline->name, name, in->queue, in->figures,
                                              in->figures_size, why, why_size);
        if (!added)
            return ZF_REFUSAL_INVALID;
        if (s) { // replaced: goes on from the old one's last firing
            added->paused = s->paused;
            added->last = s->last;
        }
        int64_t now = zclock_time ();
        s_plan (added, now);
        if (s_passed (added, now, why, why_size)) {
            void *item = added;
            s_schedule_destroy (&item);
            return ZF_REFUSAL_INVALID;
        }
        zhashx_update (all, name, added);
        s = added;
        s_journal (server, s, false);
    }
    else if (!s) {
        snprintf (why, why_size, "no schedule '%s' (zflow schedule ENDPOINT list)", name);
        return ZF_REFUSAL_NO_SCHEDULE;
    }
    else if (streq (op, "schedule-remove")) {
        s_journal (server, s, true);
        s_row (out, s);
        zhashx_delete (all, name);
        return ZF_REFUSAL_NONE;
    }
    else if (streq (op, "schedule-pause") || streq (op, "schedule-resume")) {
        s->paused = streq (op, "schedule-pause");
        if (!s->paused) { // no catching up on what fell in the pause, now or after a restart
            int64_t now = zclock_time ();
            if (s->last < now - 1)
                s->last = now - 1;
            s->due = zf_trigger_next (&s->trigger, now);
        }
        s_journal (server, s, false);
    }
    else if (streq (op, "schedule-run")) {
        int64_t now = zclock_time ();
        if (s_fire (server, s, now, 0))
            s->fired++;
        else {
            snprintf (why, why_size,
                      "schedule %s: not fired (max-instances, or its queue "
                      "refused it: the broker's log says)",
                      name);
            return ZF_REFUSAL_INVALID;
        }
    }
    else {
        snprintf (why, why_size, "unknown op '%s'", op);
        return ZF_REFUSAL_INVALID;
    }
    s_row (out, s);
    out->count = 1;
    return ZF_REFUSAL_NONE;
}
