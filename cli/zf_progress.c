/*  zf_progress: zflow run's live view. See zf_progress.h. */
#include "zf_progress.h"
#include "zf_curve.h"
#include "zf_events.h"
#include "zf_kinds.h"

#include <czmq.h>

#define REDRAW_MS 250 // between redraws at most
#define BAR_WIDTH 24  // characters of a bar

//  What the view knows of one actor.
typedef struct {
    zf_actor_conf_t *conf; // the actor
    uint64_t total;        // items its source has in all, or 0 if unknown
    uint64_t done;         // items it finished (put, for a source)
    uint64_t inflight;     // items its workers hold
    uint64_t errors;       // items it failed
    uint32_t workers;      // workers connected
    double rate;           // items per second, smoothed
    uint64_t last_done;    // done at the previous event
    int64_t last_at;       // when that was (ms)
    uint32_t crashloops;   // its workers in a crash loop now
    bool ended;            // a source that said END
} s_actor_t;

struct _zf_progress_t {
    FILE *out;         // the terminal
    zsock_t *events;   // SUB to the broker's stats
    s_actor_t *actors; // one per actor of the pipeline
    size_t nactors;    // entries in actors
    int drawn;         // lines of the view on screen now
    int64_t drawn_at;  // when it was drawn (ms)
    int64_t started;   // when the view began (ms)
    uint64_t taken;    // stats events taken
    zf_stats_t *stats; // the last one, decoded
};

//  The number of items a source has, when the config says: seq:N, or the
//  lines of its items section; 0 otherwise.
static uint64_t
s_source_total (zf_actor_conf_t *conf)
{
    if (!streq (conf->kind->name, "producer"))
        return 0;
    const zf_producer_settings_t *set = (const zf_producer_settings_t *) conf->settings;
    const char *source = set->source;
    if (strncmp (source, "seq:", 4) == 0)
        return strtoull (source + 4, NULL, 10);
    if (streq (source, "list")) {
        zconfig_t *items = set->items;
        uint64_t count = 0;
        for (zconfig_t *item = items ? zconfig_child (items) : NULL; item;
             item = zconfig_next (item))
            count++;
        return count;
    }
    return 0;
}

zf_progress_t *
zf_progress_new (zf_pipeline_t *pipeline, const char *events, FILE *out)
{
    zf_error_t err;
    zsock_t *sub = events ? zf_curve_sub (events, "stats", &err) : NULL;
    if (!sub)
        return NULL;
    zf_progress_t *self = (zf_progress_t *) zmalloc (sizeof (zf_progress_t));
    self->out = out;
    self->events = sub;
    self->nactors = zlistx_size (pipeline->actors);
    self->actors = (s_actor_t *) zmalloc (self->nactors * sizeof (s_actor_t));
    size_t i = 0;
    for (zf_actor_conf_t *a = (zf_actor_conf_t *) zlistx_first (pipeline->actors); a;
         a = (zf_actor_conf_t *) zlistx_next (pipeline->actors), i++) {
        self->actors[i].conf = a;
        self->actors[i].total = s_source_total (a);
    }
    self->started = zclock_mono ();
    self->stats = zf_stats_new ();
    return self;
}

void
zf_progress_destroy (zf_progress_t **self_p)
{
    zf_progress_t *self = *self_p;
    if (self) {
        zf_progress_clear (self);
        zsock_destroy (&self->events);
        zf_stats_destroy (&self->stats);
        free (self->actors);
        free (self);
        *self_p = NULL;
    }
}

static s_actor_t *
s_actor (zf_progress_t *self, const char *name)
{
    for (size_t i = 0; i < self->nactors; i++)
        if (streq (self->actors[i].conf->name, name))
            return &self->actors[i];
    return NULL;
}

//  Takes one stats event: each queue's put count is its writer's progress
//  (for sources), each consumer group's acked count its reader's, and the
//  workers give what is in flight and what failed.
static void
s_take (zf_progress_t *self, const uint8_t *data, size_t size)
{
    zf_error_t err;
    if (zf_stats_decode (self->stats, data, size, &err))
        return; // not one of ours: the next one will do
    for (size_t i = 0; i < self->nactors; i++)
        self->actors[i].inflight = self->actors[i].errors = self->actors[i].workers =
            self->actors[i].crashloops = 0;
    zf_stats_t *stats = self->stats;
    for (uint32_t q = 0; q < stats->nqueues; q++) {
        zf_stats_queue_t *queue = &stats->queues[q];
        for (uint32_t g = 0; g < queue->ngroups; g++) {
            s_actor_t *reader = s_actor (self, queue->groups[g].name);
            if (reader)
                reader->done = queue->groups[g].acked;
        }
        // A source's progress: what it put into its output.
        for (size_t i = 0; i < self->nactors; i++) {
            zf_actor_conf_t *conf = self->actors[i].conf;
            if ((conf->kind->flags & ZF_KIND_SOURCE) && conf->output &&
                streq (conf->output, queue->figures.name))
                self->actors[i].done = queue->figures.put;
        }
    }
    for (uint32_t w = 0; w < stats->nworkers; w++) {
        s_actor_t *actor = s_actor (self, stats->workers[w].actor);
        if (actor) {
            actor->inflight += stats->workers[w].inflight;
            actor->errors += stats->workers[w].failed;
            actor->workers++;
        }
    }
    for (uint32_t c = 0; c < stats->ncrashloops; c++) {
        // "ACTOR/N": the actor's name is all before the last slash.
        const char *worker = stats->crashloops[c];
        const char *slash = strrchr (worker, '/');
        for (size_t i = 0; slash && i < self->nactors; i++) {
            const char *name = self->actors[i].conf->name;
            if (strlen (name) == (size_t) (slash - worker) &&
                memcmp (name, worker, strlen (name)) == 0)
                self->actors[i].crashloops++;
        }
    }
    for (uint32_t e = 0; e < stats->nended; e++) {
        s_actor_t *actor = s_actor (self, stats->ended[e]);
        if (actor)
            actor->ended = true;
    }
    // Rates, smoothed over the events.
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < self->nactors; i++) {
        s_actor_t *a = &self->actors[i];
        if (a->last_at && now > a->last_at) {
            double instant =
                (double) (a->done - a->last_done) * 1000.0 / (double) (now - a->last_at);
            a->rate = a->rate ? 0.5 * a->rate + 0.5 * instant : instant;
        }
        a->last_done = a->done;
        a->last_at = now;
    }
}

void
zf_progress_clear (zf_progress_t *self)
{
    if (!self || !self->drawn)
        return;
    fprintf (self->out, "\033[%dA\033[J", self->drawn); // up, and erase below
    self->drawn = 0;
    fflush (self->out);
}

//  A count in short form: 950, 12.3k, 4.56M.
static const char *
s_count (double value, char *buffer, size_t size)
{
    if (value < 10000)
        snprintf (buffer, size, "%.0f", value);
    else if (value < 1000000)
        snprintf (buffer, size, "%.1fk", value / 1000);
    else
        snprintf (buffer, size, "%.2fM", value / 1000000);
    return buffer;
}

static void
s_draw (zf_progress_t *self)
{
    int width = 0;
    for (size_t i = 0; i < self->nactors; i++) {
        int len = (int) strlen (self->actors[i].conf->name);
        width = len > width ? len : width;
    }
    for (size_t i = 0; i < self->nactors; i++) {
        s_actor_t *a = &self->actors[i];
        char done[16], rate[16], total[16];
        fprintf (self->out, "%-*s %-9s ", width, a->conf->name, a->conf->kind->name);
        if (a->total) {
            double part = a->done >= a->total ? 1.0 : (double) a->done / (double) a->total;
            int full = (int) (part * BAR_WIDTH);
            fputc ('[', self->out);
            for (int b = 0; b < BAR_WIDTH; b++)
                fputc (b < full ? '#' : '.', self->out);
            fprintf (self->out, "] %s/%s", s_count ((double) a->done, done, sizeof done),
                     s_count ((double) a->total, total, sizeof total));
        }
        else
            fprintf (self->out, "%s done", s_count ((double) a->done, done, sizeof done));
        fprintf (self->out, "  %s/s", s_count (a->rate, rate, sizeof rate));
        if (a->inflight)
            fprintf (self->out, "  %llu in flight", (unsigned long long) a->inflight);
        if (a->errors)
            fprintf (self->out, "  %llu errors", (unsigned long long) a->errors);
        if (a->crashloops)
            fprintf (self->out, "  CRASH LOOP (%u worker%s restarted 1 s to 60 s apart)",
                     a->crashloops, a->crashloops > 1 ? "s" : "");
        if (a->ended)
            fprintf (self->out, "  ended");
        else if (a->total && a->rate > 0 && a->done < a->total)
            fprintf (self->out, "  ETA %.0fs", (double) (a->total - a->done) / a->rate);
        fputc ('\n', self->out);
    }
    self->drawn = (int) self->nactors;
    self->drawn_at = zclock_mono ();
    fflush (self->out);
}

void
zf_progress_update (zf_progress_t *self)
{
    if (!self)
        return;
    while (zsock_events (self->events) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv (self->events);
        if (!msg)
            break;
        zframe_t *topic = zmsg_first (msg);
        zframe_t *body = zmsg_next (msg);
        if (topic && body && zframe_streq (topic, "stats")) {
            s_take (self, zframe_data (body), zframe_size (body));
            self->taken++;
        }
        zmsg_destroy (&msg);
    }
    if (!self->taken || (self->drawn && zclock_mono () - self->drawn_at < REDRAW_MS))
        return; // nothing known yet, or drawn a moment ago
    zf_progress_clear (self);
    s_draw (self);
}
