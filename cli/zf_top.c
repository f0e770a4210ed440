/*  zf_top: zflow top, a live view of a broker from its stats events: the
    queues (depth, in flight, in/s, out/s, retries, dead) and the actors
    (workers, hosts, in flight, done, errors, and the figures their workers
    publish, such as a fetcher's requests, connections and latency). It needs
    nothing but the events endpoint: a SUB socket, from any machine.

    On a terminal it redraws every second; keys: s sorts the queues by name,
    depth or rate in turn, q quits. With --once, or when stdout is not a
    terminal, it prints one snapshot and exits.
*/
#include "zf_cli.h"
#include "zf_curve.h"
#include "zf_events.h"
#include "zf_json.h"
#include "zf_proto.h"
#include "zf_tools.h"
#include "zf_mp.h"
#include "zf_value.h"

#include <czmq.h>
#include <sys/ioctl.h>
#include <termios.h>

#define QUEUES_MAX  256 // queues shown at most
#define ACTORS_MAX  256 // actors shown at most
#define FIGURES_MAX 400 // characters of an actor's own figures shown

typedef struct {
    char name[ZF_NAME_MAX + 1];
    uint64_t depth, inflight, nack, dead;
    double put_rate, ack_rate;
    char groups[FIGURES_MAX]; // its consumer groups: "name: workers w, ready r; ..."
} s_queue_t;

typedef struct {
    char name[ZF_NAME_MAX + 1];
    uint32_t workers;
    char hosts[4][ZF_NAME_MAX + 1]; // distinct hosts seen (the first four)
    uint32_t nhosts;
    uint64_t inflight, done, failed;
    char figures[FIGURES_MAX]; // one worker's figures, as JSON
} s_actor_t;

typedef struct {
    s_queue_t queues[QUEUES_MAX];
    size_t nqueues;
    s_actor_t actors[ACTORS_MAX];
    size_t nactors;
    char journal[FIGURES_MAX];    // the broker's journal figures, as JSON, or ""
    char crashloops[FIGURES_MAX]; // "work/0, work/1": the workers in a crash loop, or ""
} s_view_t;

//  Renders a msgpack value as JSON into out (cut to size).
//  A group's flow control, after its figures in queue's line: its items
//  throttled, and its three busiest keys.
static void
s_keys (s_queue_t *queue, const zf_stats_group_t *group)
{
    size_t used = strlen (queue->groups);
    if (group->throttled)
        snprintf (queue->groups + used, sizeof queue->groups - used, ", %llu throttled",
                  (unsigned long long) group->throttled);
    for (uint32_t k = 0; k < group->ntop && k < 3; k++) {
        char key[40];
        used = strlen (queue->groups);
        snprintf (
            queue->groups + used, sizeof queue->groups - used, "%s%s %llu%s", k ? ", " : " (keys: ",
            group->top[k].key[0] ? zf_tools_printable (group->top[k].key, key, sizeof key) : "\"\"",
            (unsigned long long) group->top[k].ready, group->top[k].throttled ? " throttled" : "");
    }
    if (group->ntop) {
        used = strlen (queue->groups);
        snprintf (queue->groups + used, sizeof queue->groups - used, ")");
    }
}

static void
s_json (const uint8_t *data, size_t size, char *out, size_t out_size)
{
    char *json = zf_msgpack_to_json (data, size, NULL);
    snprintf (out, out_size, "%s", json ? json : "");
    free (json);
}

//  Reads a stats event into view: its queues, and its workers summed up by
//  actor. Returns 0, or -1 if it is malformed.
static int
s_read (s_view_t *view, const uint8_t *data, size_t size)
{
    memset (view, 0, sizeof *view);
    zf_stats_t *stats = zf_stats_new ();
    zf_error_t err;
    if (zf_stats_decode (stats, data, size, &err)) {
        zf_stats_destroy (&stats);
        return -1;
    }
    for (uint32_t q = 0; q < stats->nqueues && view->nqueues < QUEUES_MAX; q++) {
        zf_stats_queue_t *from = &stats->queues[q];
        s_queue_t *queue = &view->queues[view->nqueues++];
        snprintf (queue->name, sizeof queue->name, "%s", from->figures.name);
        queue->depth = from->figures.depth;
        queue->inflight = from->figures.inflight;
        queue->nack = from->figures.nack;
        queue->dead = from->figures.dead;
        queue->put_rate = from->put_rate;
        queue->ack_rate = from->ack_rate;
        if (from->figures.paused) // the first thing said of its groups
            snprintf (queue->groups, sizeof queue->groups, "PAUSED");
        for (uint32_t g = 0; g < from->ngroups; g++) {
            size_t used = strlen (queue->groups);
            snprintf (queue->groups + used, sizeof queue->groups - used, "%s%s: %llu w, %llu ready",
                      used ? "; " : "",
                      from->groups[g].name[0] ? from->groups[g].name : "(none yet)",
                      (unsigned long long) from->groups[g].workers,
                      (unsigned long long) from->groups[g].ready);
            s_keys (queue, &from->groups[g]);
        }
    }
    for (uint32_t w = 0; w < stats->nworkers; w++) {
        zf_stats_worker_t *worker = &stats->workers[w];
        s_actor_t *actor = NULL;
        for (size_t a = 0; a < view->nactors && !actor; a++)
            if (streq (view->actors[a].name, worker->actor))
                actor = &view->actors[a];
        if (!actor && view->nactors < ACTORS_MAX) {
            actor = &view->actors[view->nactors++];
            snprintf (actor->name, sizeof actor->name, "%s", worker->actor);
        }
        if (!actor)
            continue;
        actor->workers++;
        actor->inflight += worker->inflight;
        actor->done += worker->done;
        actor->failed += worker->failed;
        bool known = false;
        for (uint32_t h = 0; h < actor->nhosts; h++)
            known |= streq (actor->hosts[h], worker->host);
        if (!known && actor->nhosts < 4)
            snprintf (actor->hosts[actor->nhosts++], ZF_NAME_MAX + 1, "%s", worker->host);
        if (worker->figures)
            s_json (worker->figures, worker->figures_size, actor->figures, sizeof actor->figures);
    }
    for (uint32_t c = 0; c < stats->ncrashloops; c++) {
        size_t used = strlen (view->crashloops);
        snprintf (view->crashloops + used, sizeof view->crashloops - used, "%s%s", c ? ", " : "",
                  stats->crashloops[c]);
    }
    if (stats->journal.present) {
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        zf_stats_journal_encode (&stats->journal, &pk);
        s_json ((const uint8_t *) buffer.data, buffer.size, view->journal, sizeof view->journal);
        msgpack_sbuffer_destroy (&buffer);
    }
    zf_stats_destroy (&stats);
    return 0;
}

static int s_sort_by; // 0 name, 1 depth, 2 rate

static int
s_compare_queues (const void *a, const void *b)
{
    const s_queue_t *x = (const s_queue_t *) a, *y = (const s_queue_t *) b;
    if (s_sort_by == 1 && x->depth != y->depth)
        return x->depth > y->depth ? -1 : 1;
    if (s_sort_by == 2 && x->put_rate != y->put_rate)
        return x->put_rate > y->put_rate ? -1 : 1;
    return strcmp (x->name, y->name);
}

//  Prints line cut to width (0: no limit).
static void
s_line (FILE *out, int width, const char *format, ...)
{
    char line[1024];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    if (width > 0 && (int) strlen (line) > width)
        line[width] = 0;
    fprintf (out, "%s\n", line);
}

static void
s_render (FILE *out, s_view_t *view, const char *endpoint, int width)
{
    static const char *sorts[] = { "name", "depth", "rate" };
    qsort (view->queues, view->nqueues, sizeof (s_queue_t), s_compare_queues);
    char stamp[32];
    time_t now = time (NULL);
    strftime (stamp, sizeof stamp, "%H:%M:%S", localtime (&now));
    s_line (out, width, "zflow top %s  %s  %zu queues, %zu actors  (sorted by %s)", endpoint, stamp,
            view->nqueues, view->nactors, sorts[s_sort_by]);
    if (view->journal[0])
        s_line (out, width, "journal %s", view->journal);
    if (view->crashloops[0])
        s_line (out, width, "crash loop (restarted 1 s to 60 s apart): %s", view->crashloops);
    s_line (out, width, "%-24s %10s %10s %10s %10s %9s %8s  %s", "QUEUE", "DEPTH", "IN FLIGHT",
            "IN/S", "OUT/S", "RETRIES", "DEAD", "GROUPS");
    for (size_t i = 0; i < view->nqueues; i++) {
        s_queue_t *q = &view->queues[i];
        s_line (out, width, "%-24s %10llu %10llu %10.0f %10.0f %9llu %8llu  %s", q->name,
                (unsigned long long) q->depth, (unsigned long long) q->inflight, q->put_rate,
                q->ack_rate, (unsigned long long) q->nack, (unsigned long long) q->dead, q->groups);
    }
    s_line (out, width, "%-24s %7s %5s %10s %12s %8s  %s", "ACTOR", "WORKERS", "HOSTS", "IN FLIGHT",
            "DONE", "ERRORS", "FIGURES");
    for (size_t i = 0; i < view->nactors; i++) {
        s_actor_t *a = &view->actors[i];
        s_line (out, width, "%-24s %7u %5u %10llu %12llu %8llu  %s", a->name, a->workers, a->nhosts,
                (unsigned long long) a->inflight, (unsigned long long) a->done,
                (unsigned long long) a->failed, a->figures);
    }
}

//  The next stats event into view, waiting up to timeout_ms. 0, or -1.
static int
s_next (zsock_t *events, s_view_t *view, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (!zsys_interrupted) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return -1;
        zpoller_t *poller = zpoller_new (events, NULL);
        bool ready = zpoller_wait (poller, (int) left) != NULL;
        zpoller_destroy (&poller);
        if (!ready)
            continue;
        zmsg_t *msg = zmsg_recv (events);
        zframe_t *topic = msg ? zmsg_first (msg) : NULL;
        zframe_t *body = msg ? zmsg_next (msg) : NULL;
        int rc = topic && body && zframe_streq (topic, "stats")
                     ? s_read (view, zframe_data (body), zframe_size (body))
                     : 1;
        zmsg_destroy (&msg);
        if (rc == 0)
            return 0;
    }
    return -1;
}

typedef struct {
    bool once;       // one snapshot, not a live view
    int64_t timeout; // ms to wait for a snapshot's stats
} s_top_options_t;

static const zf_key_t s_top_options[] = {
    { .name = "once",
      .help = "print one snapshot and exit (as when stdout is not a terminal)",
      ZF_FIELD (ZF_KEY_BOOL, s_top_options_t, once) },
    { .name = "timeout",
      .fallback = "5s",
      .min = 1,
      .max = INT32_MAX,
      .help = "how long a snapshot waits for the broker's stats",
      ZF_FIELD (ZF_KEY_DURATION, s_top_options_t, timeout) },
    { NULL }
};

//  The live view on a terminal: redrawn as stats come, until q or a signal.
static void
s_top_live (zsock_t *events, s_view_t *view, const char *endpoint)
{
    // Keys without Enter, and no echo, until it ends.
    struct termios saved, raw;
    bool keys = tcgetattr (0, &saved) == 0;
    if (keys) {
        raw = saved;
        raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr (0, TCSANOW, &raw);
    }
    printf ("\033[?1049h"); // the terminal's other screen, given back at the end
    bool quit = false;
    while (!quit && !zsys_interrupted) {
        if (s_next (events, view, 1000) == 0) {
            struct winsize size;
            int width = ioctl (1, TIOCGWINSZ, &size) == 0 ? size.ws_col : 0;
            printf ("\033[H\033[J");
            s_render (stdout, view, endpoint, width);
            printf ("keys: s sort, q quit\n");
            fflush (stdout);
        }
        char key;
        while (keys && read (0, &key, 1) == 1) {
            if (key == 'q')
                quit = true;
            else if (key == 's')
                s_sort_by = (s_sort_by + 1) % 3;
        }
    }
    printf ("\033[?1049l");
    fflush (stdout);
    if (keys)
        tcsetattr (0, TCSANOW, &saved);
}

static int
s_top (const void *options, int argc, char **args)
{
    (void) argc;
    const s_top_options_t *o = (const s_top_options_t *) options;
    const char *endpoint = args[0];
    zf_error_t err;
    zsock_t *events = zf_curve_sub (endpoint, "stats", &err);
    if (!events) {
        fprintf (stderr, "zflow top: %s\n", err.text);
        return ZF_EXIT_USAGE;
    }
    s_view_t *view = (s_view_t *) zmalloc (sizeof (s_view_t));
    int status = ZF_EXIT_OK;
    if (!o->once && isatty (1))
        s_top_live (events, view, endpoint);
    else if (s_next (events, view, (int) o->timeout) == 0)
        s_render (stdout, view, endpoint, 0);
    else {
        fprintf (stderr, "zflow top: no stats from %s within %lld ms\n", endpoint,
                 (long long) o->timeout);
        status = ZF_EXIT_FAILED;
    }
    free (view);
    zsock_destroy (&events);
    return status;
}

const zf_cmd_t zf_cmd_top = {
    .name = "top",
    .args = "EVENTS_ENDPOINT",
    .min_args = 1,
    .max_args = 1,
    .summary = "queues and actors of a running broker, live",
    .help = "From the broker's stats events alone: each queue's depth, in flight, rates,\n"
            "retries and dead letters, with its consumer groups; each actor's workers,\n"
            "hosts, done, errors and its own figures. On a terminal it redraws every\n"
            "second; keys: s sorts the queues (by name, depth, rate), q quits.",
    .exits = "0 shown, or quit\n"
             "1 no stats came for the snapshot within --timeout\n"
             "2 a usage error, CURVE settings that cannot be read, or an endpoint it cannot "
             "connect to",
    .options = s_top_options,
    .options_size = sizeof (s_top_options_t),
    .run = s_top,
};
