/*  zf_scheduler: interval, cron and one-shot triggers that put an item into
    a queue at each firing. One job per scheduler, given by its keys, or
    several, each in a sub-section of its own.

    Each firing has a scheduled time, and its item's id is derived from the
    job ("pipeline/actor/job") and that time: two schedulers running the
    same job put each firing once (the broker drops the copy). An interval
    job fires at `start` (or the Unix epoch) plus whole intervals, so that
    side-by-side schedulers agree; once running, it counts on the monotonic
    clock, so a wall-clock jump does not shift it. A cron job follows
    zf_cron in its `timezone`; an `at` job fires once.

    The item is the payload (a JSON value, or text) with "job",
    "scheduled" (ISO 8601) and "lateness_ms" added (a payload that is no
    map is put under "payload"). A firing later than `misfire-grace` after
    its time is skipped and counted; after a stall, `coalesce` fires once
    for all the missed times. The scheduled time of each job's last firing
    goes to the broker with the firing (its checkpoint, journaled as a
    producer's is): a scheduler started again runs the firings it missed
    while it was down, as misfire-grace and coalesce say, and logs each it
    skips (APScheduler's persistent job stores). With `max-instances`, no new firing is put
    while that many earlier ones are still being processed downstream (the
    broker reports when a firing's whole lineage is done, to the session
    that put it: firings put on an earlier session, before the broker
    restarted or the link lapsed, are asked about instead, and forgotten
    once the broker no longer holds their item).
*/
#include "zf_actor.h"
#include "zf_cron.h"
#include "zf_trigger.h"
#include "zf_json.h"
#include "zf_kinds.h"
#include "zf_mp.h"
#include "zf_proto.h"
#include "zf_id.h"
#include "zflow.h"

#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define JOB_KEYS(ST, IN)                                                                           \
    { .name = "every",                                                                             \
      ZF_FIELD (ZF_KEY_DURATION, ST, IN every),                                                    \
      .help = "fire at this interval (monotonic clock)",                                           \
      .min = 1,                                                                                    \
      .max = 366LL * 86400000 },                                                                   \
        { .name = "cron",                                                                          \
          ZF_FIELD (ZF_KEY_STRING, ST, IN cron),                                                   \
          .help = "fire at the times of a cron expression",                                        \
          .check = zf_cron_check },                                                                \
        { .name = "at",                                                                            \
          ZF_FIELD (ZF_KEY_STRING, ST, IN at),                                                     \
          .help = "fire once at an ISO 8601 time",                                                 \
          .check = zf_cron_check_time },                                                           \
        { .name = "timezone",                                                                      \
          ZF_FIELD (ZF_KEY_STRING, ST, IN timezone),                                               \
          .fallback = "UTC",                                                                       \
          .help = "IANA zone for cron and for times without offset",                               \
          .check = zf_tz_check },                                                                  \
        { .name = "start",                                                                         \
          ZF_FIELD (ZF_KEY_STRING, ST, IN start),                                                  \
          .help = "no firing before this ISO 8601 time",                                           \
          .check = zf_cron_check_time },                                                           \
        { .name = "end",                                                                           \
          ZF_FIELD (ZF_KEY_STRING, ST, IN end),                                                    \
          .help = "no firing after this ISO 8601 time",                                            \
          .check = zf_cron_check_time },                                                           \
        { .name = "jitter",                                                                        \
          ZF_FIELD (ZF_KEY_DURATION, ST, IN jitter),                                               \
          .fallback = "0",                                                                         \
          .help = "fire up to this much later, at random" },                                       \
        { .name = "misfire-grace",                                                                 \
          ZF_FIELD (ZF_KEY_DURATION, ST, IN misfire_grace),                                        \
          .fallback = "1s",                                                                        \
          .help = "a firing later than this is skipped" },                                         \
        { .name = "coalesce",                                                                      \
          ZF_FIELD (ZF_KEY_BOOL, ST, IN coalesce),                                                 \
          .fallback = "true",                                                                      \
          .help = "after a stall, fire once instead of catching up" },                             \
        { .name = "max-instances",                                                                 \
          ZF_FIELD (ZF_KEY_INT, ST, IN max_instances),                                             \
          .fallback = "0",                                                                         \
          .help = "firings of this job in progress downstream at once; 0 for no limit",            \
          .min = 0,                                                                                \
          .max = 100000 },                                                                         \
    {                                                                                              \
        .name = "payload", ZF_FIELD (ZF_KEY_STRING, ST, IN payload),                               \
        .help = "the item put at each firing (JSON or text)"                                       \
    }

static const zf_key_t s_job_keys[] = {
    JOB_KEYS (zf_job_settings_t, ),
    { .name = "output",
      ZF_FIELD (ZF_KEY_QUEUE, zf_job_settings_t, output),
      .help = "the queue this job writes, if not the scheduler's" },
    { NULL },
};

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND, ZF_KEY_CURVE, ZF_KEY_OUTPUT, JOB_KEYS (zf_scheduler_settings_t, job.), { NULL },
};

//  One job.
typedef struct {
    char name[2 * ZF_NAME_MAX + 64]; // "pipeline/actor/job", for its firings' ids
    const char *label;               // the job's name, in messages and items
    const char *output;              // its queue
    zf_trigger_t trigger;            // when it fires
    int64_t jitter;                  // ms
    int64_t grace;                   // misfire-grace, ms
    bool coalesce;                   // fire once after a stall
    int64_t max_instances;           // firings in progress at most
    msgpack_sbuffer payload;         // the payload, msgpack
    uint32_t key;                    // a hash of its label, its key in the checkpoint
    int64_t last;                    // the scheduled time of its last firing handled, or INT64_MIN
    int64_t due;                  // the scheduled time of its next firing (ms, wall), or INT64_MAX
    int64_t due_mono;             // the same on the monotonic clock, in us
    zlistx_t *running;            // char *: hex ids of its firings in progress
    zlistx_t *unsure;             // the same, put on an earlier session: no DONE may come
    uint64_t fired, missed, busy; // firings put, skipped as late, skipped for max-instances
} s_job_t;

typedef struct {
    zf_actor_args_t *args; // pipeline, actor, broker
    zf_client_t *client;   // session with the broker
    zlistx_t *jobs;        // s_job_t
    unsigned seed;         // for jitter
    int sessions;          // the session's count of sessions when last looked at
    int64_t next_ask;      // when to ask about unsure firings next (ms, monotonic)
} self_t;

#define ASK_EVERY      1000  // ms between questions about firings put on an earlier session
#define CATCH_UP_MAX   10000 // missed firings of a job looked at, at most, on a start
#define SKIPS_LOGGED   20    // skipped firings of a job logged one by one on a start
#define ASK_BUDGET_MAX 200   // ms those questions may take at most

//  The wall clock in ms, and both clocks in us.
static int64_t
s_clock_us (clockid_t which)
{
    struct timespec ts;
    clock_gettime (which, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
s_wall (void)
{
    return s_clock_us (CLOCK_REALTIME) / 1000;
}

//  The job's first scheduled time at or after from (ms, wall), or INT64_MAX.
static int64_t
s_next_after (s_job_t *job, int64_t from)
{
    return zf_trigger_next (&job->trigger, from);
}

static void
s_plan (s_job_t *job, int64_t due)
{
    job->due = due;
    job->due_mono = due == INT64_MAX
                        ? INT64_MAX
                        : s_clock_us (CLOCK_MONOTONIC) + (due * 1000 - s_clock_us (CLOCK_REALTIME));
}

//  Forgets the firings whose lineage the broker reported finished.
static void
s_reap_done (self_t *self)
{
    zf_id_t root;
    char state[32];
    while (zf_client_done (self->client, &root, state, sizeof state, 0) == 0) {
        char hex[ZF_ID_HEX];
        zf_id_format (&root, hex);
        for (s_job_t *job = (s_job_t *) zlistx_first (self->jobs); job;
             job = (s_job_t *) zlistx_next (self->jobs)) {
            void *handle = zlistx_find (job->running, hex);
            if (handle)
                zlistx_delete (job->running, handle);
            else if ((handle = zlistx_find (job->unsure, hex)))
                zlistx_delete (job->unsure, handle);
        }
    }
}

//  The broker tells the session that put a firing when its lineage is done.
//  After a new session (the broker restarted, or the link lapsed) that word
//  may never come for the firings put before: they are asked about, once
//  every ASK_EVERY, within budget_ms, and forgotten once the broker no
//  longer holds their item (done, dead, cancelled, or unknown to it: lost
//  with a broker that had no journal). Their children, if any, are not
//  waited for then.
static void
s_ask_unsure (self_t *self, int64_t budget_ms)
{
    int sessions = zf_client_sessions (self->client);
    if (sessions != self->sessions) {
        self->sessions = sessions;
        for (s_job_t *job = (s_job_t *) zlistx_first (self->jobs); job;
             job = (s_job_t *) zlistx_next (self->jobs)) {
            char *hex;
            while ((hex = (char *) zlistx_detach (job->running, NULL)))
                zlistx_add_end (job->unsure, hex);
        }
    }
    int64_t now = zclock_mono ();
    if (now < self->next_ask || budget_ms <= 0)
        return;
    if (budget_ms > ASK_BUDGET_MAX)
        budget_ms = ASK_BUDGET_MAX;
    self->next_ask = now + ASK_EVERY;
    int64_t until = now + budget_ms;
    for (s_job_t *job = (s_job_t *) zlistx_first (self->jobs); job;
         job = (s_job_t *) zlistx_next (self->jobs)) {
        for (char *hex = (char *) zlistx_first (job->unsure); hex;) {
            void *handle = zlistx_cursor (job->unsure);
            zf_id_t id;
            char state[32];
            int64_t left = until - zclock_mono ();
            if (left <= 0 || zf_id_parse (&id, hex) ||
                zf_client_status (self->client, &id, state, sizeof state, (int) left))
                return; // no time, or no answer: asked again later
            hex = (char *) zlistx_next (job->unsure);
            if (!streq (state, "queued") && !streq (state, "delivered") &&
                !streq (state, "retrying"))
                zlistx_delete (job->unsure, handle); // not the cursor: the walk goes on
        }
    }
}

//  The checkpoint: for each job (as many as fit), its key (u32) and the
//  scheduled time of its last firing handled (i64), little-endian, after a
//  version byte. It goes with the next firing put.
static void
s_checkpoint (self_t *self)
{
    uint8_t data[ZF_CHECKPOINT_MAX];
    size_t size = 1;
    data[0] = 1;
    for (s_job_t *job = (s_job_t *) zlistx_first (self->jobs); job && size + 12 <= sizeof data;
         job = (s_job_t *) zlistx_next (self->jobs)) {
        for (int i = 0; i < 4; i++)
            data[size++] = (uint8_t) (job->key >> (8 * i));
        for (int i = 0; i < 8; i++)
            data[size++] = (uint8_t) ((uint64_t) job->last >> (8 * i));
    }
    zf_client_checkpoint (self->client, data, size);
}

//  Puts the firing of job scheduled at `when`, `late` us after it.
static void
s_fire (self_t *self, s_job_t *job, int64_t when, int64_t late)
{
    size_t running = zlistx_size (job->running) + zlistx_size (job->unsure);
    if (job->max_instances && (int64_t) running >= job->max_instances) {
        // About to skip: the time a question takes costs no firing.
        s_ask_unsure (self, ASK_BUDGET_MAX);
        running = zlistx_size (job->running) + zlistx_size (job->unsure);
    }
    if (job->max_instances && (int64_t) running >= job->max_instances) {
        job->busy++;
        zsys_info ("%s: job %s: %zu firings still in progress (max-instances): skipped one",
                   self->args->conf->name, job->label, running);
        return;
    }
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    zf_trigger_item (&body, &job->trigger, job->label, when, late, job->payload.data,
                     job->payload.size);
    zf_id_t id = zf_id_firing (job->name, when);
    zf_put_opts_t opts = { .id = &id };
    job->last = when;
    s_checkpoint (self);
    zf_client_put_with (self->client, job->output, body.data, body.size, &opts, NULL);
    msgpack_sbuffer_destroy (&body);
    zf_client_flush (self->client, 0); // out now, not with a later batch
    if (job->max_instances) {
        char hex[ZF_ID_HEX];
        zlistx_add_end (job->running, strdup (zf_id_format (&id, hex)));
    }
    job->fired++;
}

//  Handles job's due time: fires it (or the last of those missed, with
//  coalesce), skips what is too late, and plans the next.
static void
s_due (self_t *self, s_job_t *job)
{
    int64_t now = s_wall ();
    int64_t when = job->due;
    int64_t next = s_next_after (job, when + 1);
    if (job->coalesce)
        while (next <= now) { // a stall: the missed times become one firing, the last
            when = next;
            next = s_next_after (job, when + 1);
        }
    // Lateness on the monotonic clock, from the time planned for job->due.
    int64_t late = s_clock_us (CLOCK_MONOTONIC) - (job->due_mono + (when - job->due) * 1000);
    job->last = when; // handled, fired or not
    if (late > job->grace * 1000) {
        job->missed++;
        char at[40];
        zsys_warning ("%s: job %s: the firing of %s missed by %lld ms (misfire-grace %lld ms)",
                      self->args->conf->name, job->label,
                      zf_cron_format (job->trigger.tz, when / 1000, at, sizeof at),
                      (long long) late / 1000, (long long) job->grace);
    }
    else
        s_fire (self, job, when, late);
    if (job->trigger.every && next != INT64_MAX) {
        // On the monotonic clock from the time just handled.
        job->due_mono += (next - job->due) * 1000;
        job->due = next;
    }
    else
        s_plan (job, next);
}

//  The firings missed while no scheduler ran: from the checkpoint the
//  broker kept, each job's times after its last firing and before now run
//  as misfire-grace and coalesce say (those later than the grace are
//  skipped, and each skip is logged; with coalesce the latest of the rest
//  runs alone), before the firings to come.
static void
s_catch_up (self_t *self)
{
    size_t size = 0;
    const uint8_t *data = (const uint8_t *) zf_client_resume_point (self->client, &size, 5000);
    if (!data || size < 1 || data[0] != 1)
        return; // a first start, or no broker to say: the firings to come
    const char *name = self->args->conf->name;
    int64_t now = s_wall ();
    for (size_t at = 1; at + 12 <= size; at += 12) {
        uint32_t key = 0;
        uint64_t last = 0;
        for (int i = 0; i < 4; i++)
            key |= (uint32_t) data[at + i] << (8 * i);
        for (int i = 0; i < 8; i++)
            last |= (uint64_t) data[at + 4 + i] << (8 * i);
        s_job_t *job = (s_job_t *) zlistx_first (self->jobs);
        while (job && job->key != key)
            job = (s_job_t *) zlistx_next (self->jobs);
        if (!job || (int64_t) last == INT64_MIN)
            continue; // a job no longer in the config, or that never fired
        job->last = (int64_t) last;
        uint64_t skipped = 0, looked = 0, ran = 0;
        int64_t runnable = INT64_MIN;
        for (int64_t t = s_next_after (job, job->last + 1); t < now && looked < CATCH_UP_MAX;
             t = s_next_after (job, t + 1), looked++) {
            if (now - t > job->grace) {
                if (++skipped <= SKIPS_LOGGED) {
                    char when[40];
                    zsys_warning ("%s: job %s: the firing of %s, missed while no scheduler ran, "
                                  "is %lld ms late (misfire-grace %lld ms): skipped",
                                  name, job->label,
                                  zf_cron_format (job->trigger.tz, t / 1000, when, sizeof when),
                                  (long long) (now - t), (long long) job->grace);
                }
                job->missed++;
                job->last = t;
                continue;
            }
            if (job->coalesce)
                runnable = t; // the latest alone
            else {
                s_fire (self, job, t, (now - t) * 1000);
                ran++;
            }
        }
        if (skipped > SKIPS_LOGGED)
            zsys_warning ("%s: job %s: %llu more firings missed while no scheduler ran were "
                          "skipped",
                          name, job->label, (unsigned long long) (skipped - SKIPS_LOGGED));
        if (looked == CATCH_UP_MAX)
            zsys_warning ("%s: job %s: more than %d firings were missed; those after them are "
                          "not run",
                          name, job->label, CATCH_UP_MAX);
        if (runnable != INT64_MIN) {
            s_fire (self, job, runnable, (now - runnable) * 1000);
            ran++;
        }
        if (looked)
            zsys_info ("%s: job %s: %llu firings missed while no scheduler ran: %llu run, %llu "
                       "skipped%s",
                       name, job->label, (unsigned long long) looked, (unsigned long long) ran,
                       (unsigned long long) skipped, job->coalesce ? " (coalesced)" : "");
    }
}

//  Reads one job from section (the actor's own keys when it has no jobs).
static s_job_t *
s_job_new (self_t *self, const zf_job_settings_t *js, const char *label)
{
    zf_actor_conf_t *conf = self->args->conf;
    s_job_t *job = (s_job_t *) zmalloc (sizeof (s_job_t));
    job->label = label;
    job->last = INT64_MIN;
    for (const char *p = label; *p; p++) // FNV-1a
        job->key = (job->key ^ (uint8_t) *p) * 16777619u;
    snprintf (job->name, sizeof job->name, "%s/%s/%s", self->args->pipeline->name, conf->name,
              label);
    job->output = js->output ? js->output : conf->output;
    zf_error_t err;
    zf_trigger_t *trigger = &job->trigger;
    trigger->tz = zf_tz_load (js->timezone, &err);
    if (!trigger->tz)
        trigger->tz = zf_tz_load ("UTC", &err);
    trigger->every = js->every;
    trigger->cron = js->cron ? zf_cron_new (js->cron, &err) : NULL;
    trigger->at = -1;
    int64_t seconds;
    if (js->at && zf_cron_parse_time (trigger->tz, js->at, &seconds, &err) == 0)
        trigger->at = seconds * 1000;
    trigger->start = INT64_MIN;
    trigger->end = INT64_MAX;
    if (js->start && zf_cron_parse_time (trigger->tz, js->start, &seconds, &err) == 0)
        trigger->start = seconds * 1000;
    if (js->end && zf_cron_parse_time (trigger->tz, js->end, &seconds, &err) == 0)
        trigger->end = seconds * 1000;
    job->jitter = js->jitter;
    job->grace = js->misfire_grace;
    job->coalesce = js->coalesce;
    job->max_instances = js->max_instances;
    job->running = zlistx_new ();
    zlistx_set_destructor (job->running, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (job->running, (zlistx_comparator_fn *) strcmp);
    job->unsure = zlistx_new ();
    zlistx_set_destructor (job->unsure, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (job->unsure, (zlistx_comparator_fn *) strcmp);
    msgpack_sbuffer_init (&job->payload);
    const char *payload = js->payload;
    if (payload) {
        msgpack_packer pk;
        msgpack_packer_init (&pk, &job->payload, msgpack_sbuffer_write);
        if (zf_json_to_msgpack (payload, strlen (payload), &pk, NULL)) {
            msgpack_sbuffer_clear (&job->payload);
            zf_mp_pack_cstr (&pk, payload); // not JSON: text
        }
    }
    s_plan (job, s_next_after (job, s_wall ()));
    return job;
}

static void
s_job_destroy (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    zf_cron_destroy (&job->trigger.cron);
    zf_tz_destroy (&job->trigger.tz);
    zlistx_destroy (&job->running);
    zlistx_destroy (&job->unsure);
    msgpack_sbuffer_destroy (&job->payload);
    free (job);
    *job_p = NULL;
}

void
zf_scheduler_actor (zsock_t *pipe, void *args)
{
    self_t self = { .args = (zf_actor_args_t *) args };
    zf_actor_conf_t *conf = self.args->conf;
    self.jobs = zlistx_new ();
    self.seed = (unsigned) zclock_time () ^ (unsigned) getpid ();
    for (zconfig_t *child = zconfig_child (conf->node); child; child = zconfig_next (child))
        if (zconfig_child (child) && !streq (zconfig_name (child), "payload")) {
            zf_job_settings_t js = { 0 };
            zf_keys_bind (s_job_keys, child, &js);
            zlistx_add_end (self.jobs, s_job_new (&self, &js, zconfig_name (child)));
        }
    if (zlistx_size (self.jobs) == 0) {
        const zf_scheduler_settings_t *settings = (const zf_scheduler_settings_t *) conf->settings;
        zlistx_add_end (self.jobs, s_job_new (&self, &settings->job, conf->name));
    }
    zsock_signal (pipe, 0);
    self.client = zf_actor_client (self.args, NULL, 0, pipe);
    if (!self.client) {
        s_job_t *job;
        while ((job = (s_job_t *) zlistx_detach (self.jobs, NULL)))
            s_job_destroy (&job);
        zlistx_destroy (&self.jobs);
        zf_actor_exit (pipe, ZF_EXIT_USAGE);
        return;
    }
    zf_client_track (self.client, true); // for max-instances: DONE per firing
    self.sessions = zf_client_sessions (self.client);
    s_catch_up (&self);
    // Far from a due time the session's own wait does; near one, a timerfd
    // armed for the exact microsecond wakes the actor.
    int timer = timerfd_create (CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    prctl (PR_SET_TIMERSLACK, 1UL, 0, 0, 0); // the kernel's 50 us of slack, gone

    while (!zf_actor_stopping (pipe) && !zsys_interrupted && !zf_client_refused (self.client)) {
        s_job_t *soonest = NULL;
        for (s_job_t *job = (s_job_t *) zlistx_first (self.jobs); job;
             job = (s_job_t *) zlistx_next (self.jobs))
            if (!soonest || job->due_mono < soonest->due_mono)
                soonest = job;
        int64_t wait = soonest && soonest->due_mono != INT64_MAX
                           ? soonest->due_mono - s_clock_us (CLOCK_MONOTONIC)
                           : 100000;
        if (wait > 3000) {
            int64_t ms = wait / 1000 - 2;
            zf_client_pump (self.client, (int) (ms < 100 ? ms : 100));
            s_reap_done (&self);
            // Questions take at most half the time left before the firing.
            s_ask_unsure (&self, (soonest->due_mono - s_clock_us (CLOCK_MONOTONIC)) / 2000);
            continue;
        }
        if (wait > 0 && timer >= 0) {
            struct itimerspec at = { .it_value = { .tv_sec = soonest->due_mono / 1000000,
                                                   .tv_nsec =
                                                       soonest->due_mono % 1000000 * 1000 } };
            timerfd_settime (timer, TFD_TIMER_ABSTIME, &at, NULL);
            zmq_pollitem_t items[] = { { NULL, timer, ZMQ_POLLIN, 0 },
                                       { NULL, zf_client_fd (self.client), ZMQ_POLLIN, 0 } };
            zmq_poll (items, 2, 5);
            uint64_t expirations;
            if (!(items[0].revents & ZMQ_POLLIN) ||
                read (timer, &expirations, sizeof expirations) != sizeof expirations) {
                zf_client_pump (self.client, 0); // the broker spoke first
                continue;
            }
        }
        else if (wait > 0)
            continue;
        if (soonest->jitter > 0) {
            int64_t delay = (int64_t) ((double) rand_r (&self.seed) / RAND_MAX * soonest->jitter);
            zf_client_pump (self.client, (int) delay);
        }
        s_due (&self, soonest);
    }
    for (s_job_t *job = (s_job_t *) zlistx_first (self.jobs); job;
         job = (s_job_t *) zlistx_next (self.jobs)) {
        zsys_info ("%s: job %s: %llu firings, %llu missed, %llu skipped for max-instances",
                   conf->name, job->label, (unsigned long long) job->fired,
                   (unsigned long long) job->missed, (unsigned long long) job->busy);
        s_job_destroy (&job);
    }
    zlistx_destroy (&self.jobs);
    if (timer >= 0)
        close (timer);
    zf_client_flush (self.client, 2000);
    int status = zf_actor_client_end (&self.client, 0);
    zf_actor_exit (pipe, status);
}

const zf_kind_t zf_scheduler_kind = {
    .name = "scheduler",
    .summary = "puts an item into a queue at intervals, cron times or a given time",
    .keys = s_keys,
    .settings_size = sizeof (zf_scheduler_settings_t),
    .job_settings_size = sizeof (zf_job_settings_t),
    .job = "job",
    .job_keys = s_job_keys,
    .flags = ZF_KIND_OUTPUT | ZF_KIND_SOURCE | ZF_KIND_TIMED,
    .one_of = "every|cron|at",
    .run = zf_scheduler_actor,
};
