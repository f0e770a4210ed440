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
    char journal[FIGURES_MAX]; // the broker's journal figures, as JSON, or ""
} s_view_t;

static bool
s_str (zf_mp_t *mp, char *out, size_t size)
{
    const char *str;
    uint32_t len;
    if (zf_mp_str (mp, &str, &len, NULL))
        return false;
    snprintf (out, size, "%.*s", (int) len, str);
    return true;
}

static double
s_number (zf_mp_t *mp)
{
    const uint8_t *at = mp->pos;
    uint64_t value;
    if (zf_mp_uint (mp, &value, NULL) == 0)
        return (double) value;
    mp->pos = at;
    // A float or a double (what the broker sends for rates).
    if (zf_mp_left (mp) >= 9 && *at == 0xcb) {
        uint64_t raw = 0;
        for (int i = 1; i <= 8; i++)
            raw = raw << 8 | at[i];
        double d;
        memcpy (&d, &raw, 8);
        mp->pos += 9;
        return d;
    }
    zf_mp_skip (mp, ZF_MP_MAX_DEPTH, NULL);
    return 0;
}

//  Reads a stats event into view. Returns 0, or -1 if it is malformed.
static int
s_read (s_view_t *view, const uint8_t *data, size_t size)
{
    memset (view, 0, sizeof *view);
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    uint32_t count, n;
    if (zf_mp_map (&mp, &count, NULL))
        return -1;
    for (uint32_t k = 0; k < count; k++) {
        if (zf_mp_key_is (&mp, "queues") && zf_mp_array (&mp, &n, NULL) == 0)
            for (uint32_t q = 0; q < n; q++) {
                uint32_t fields;
                if (zf_mp_map (&mp, &fields, NULL))
                    return -1;
                s_queue_t scratch,
                    *queue = view->nqueues < QUEUES_MAX ? &view->queues[view->nqueues++] : &scratch;
                for (uint32_t f = 0; f < fields; f++) {
                    if (zf_mp_key_is (&mp, "name"))
                        s_str (&mp, queue->name, sizeof queue->name);
                    else if (zf_mp_key_is (&mp, "depth"))
                        queue->depth = zf_mp_uint_or_skip (&mp);
                    else if (zf_mp_key_is (&mp, "inflight"))
                        queue->inflight = zf_mp_uint_or_skip (&mp);
                    else if (zf_mp_key_is (&mp, "nack"))
                        queue->nack = zf_mp_uint_or_skip (&mp);
                    else if (zf_mp_key_is (&mp, "dead"))
                        queue->dead = zf_mp_uint_or_skip (&mp);
                    else if (zf_mp_key_is (&mp, "put_rate"))
                        queue->put_rate = s_number (&mp);
                    else if (zf_mp_key_is (&mp, "ack_rate"))
                        queue->ack_rate = s_number (&mp);
                    else if (zf_mp_skip_pair (&mp))
                        return -1;
                }
            }
        else if (zf_mp_key_is (&mp, "workers") && zf_mp_array (&mp, &n, NULL) == 0)
            for (uint32_t w = 0; w < n; w++) {
                uint32_t fields;
                if (zf_mp_map (&mp, &fields, NULL))
                    return -1;
                char name[ZF_NAME_MAX + 1] = "", host[ZF_NAME_MAX + 1] = "";
                uint64_t inflight = 0, done = 0, failed = 0;
                char figures[FIGURES_MAX] = "";
                for (uint32_t f = 0; f < fields; f++) {
                    if (zf_mp_key_is (&mp, "actor"))
                        s_str (&mp, name, sizeof name);
                    else if (zf_mp_key_is (&mp, "host"))
                        s_str (&mp, host, sizeof host);
                    else if (zf_mp_key_is (&mp, "inflight"))
                        inflight = zf_mp_uint_or_skip (&mp);
                    else if (zf_mp_key_is (&mp, "done"))
                        done = zf_mp_uint_or_skip (&mp);
                    else if (zf_mp_key_is (&mp, "failed"))
                        failed = zf_mp_uint_or_skip (&mp);
                    else if (zf_mp_key_is (&mp, "figures")) {
                        const uint8_t *start = mp.pos;
                        if (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL))
                            return -1;
                        char *json = zf_msgpack_to_json (start, (size_t) (mp.pos - start), NULL);
                        snprintf (figures, sizeof figures, "%s", json ? json : "");
                        free (json);
                    }
                    else if (zf_mp_skip_pair (&mp))
                        return -1;
                }
                s_actor_t *actor = NULL;
                for (size_t a = 0; a < view->nactors && !actor; a++)
                    if (streq (view->actors[a].name, name))
                        actor = &view->actors[a];
                if (!actor && view->nactors < ACTORS_MAX) {
                    actor = &view->actors[view->nactors++];
                    snprintf (actor->name, sizeof actor->name, "%s", name);
                }
                if (!actor)
                    continue;
                actor->workers++;
                actor->inflight += inflight;
                actor->done += done;
                actor->failed += failed;
                bool known = false;
                for (uint32_t h = 0; h < actor->nhosts; h++)
                    known |= streq (actor->hosts[h], host);
                if (!known && actor->nhosts < 4)
                    snprintf (actor->hosts[actor->nhosts++], ZF_NAME_MAX + 1, "%s", host);
                if (*figures)
                    snprintf (actor->figures, sizeof actor->figures, "%s", figures);
            }
        else if (zf_mp_key_is (&mp, "journal")) {
            const uint8_t *start = mp.pos;
            if (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL))
                return -1;
            char *json = zf_msgpack_to_json (start, (size_t) (mp.pos - start), NULL);
            snprintf (view->journal, sizeof view->journal, "%s", json ? json : "");
            free (json);
        }
        else if (zf_mp_skip_pair (&mp))
            return -1;
    }
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
    s_line (out, width, "%-24s %10s %10s %10s %10s %9s %8s", "QUEUE", "DEPTH", "IN FLIGHT", "IN/S",
            "OUT/S", "RETRIES", "DEAD");
    for (size_t i = 0; i < view->nqueues; i++) {
        s_queue_t *q = &view->queues[i];
        s_line (out, width, "%-24s %10llu %10llu %10.0f %10.0f %9llu %8llu", q->name,
                (unsigned long long) q->depth, (unsigned long long) q->inflight, q->put_rate,
                q->ack_rate, (unsigned long long) q->nack, (unsigned long long) q->dead);
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

int
zf_cmd_top (int argc, char **argv)
{
    const char *endpoint = NULL;
    bool once = false;
    int64_t timeout = 5000;
    for (int i = 1; i < argc; i++) {
        if (streq (argv[i], "--once"))
            once = true;
        else if (streq (argv[i], "--timeout") && i + 1 < argc) {
            zf_error_t err;
            if (zf_parse_duration (argv[++i], &timeout, &err)) {
                fprintf (stderr, "zflow top: --timeout: %s\n", err.text);
                return ZF_EXIT_USAGE;
            }
        }
        else if (argv[i][0] != '-' && !endpoint)
            endpoint = argv[i];
        else {
            fprintf (stderr, "usage: zflow top EVENTS_ENDPOINT [--once] [--timeout 5s]\n");
            return ZF_EXIT_USAGE;
        }
    }
    if (!endpoint) {
        fprintf (stderr, "usage: zflow top EVENTS_ENDPOINT [--once] [--timeout 5s]\n");
        return ZF_EXIT_USAGE;
    }
    zf_error_t err;
    zsock_t *events = zf_curve_sub (endpoint, "stats", &err);
    if (!events) {
        fprintf (stderr, "zflow top: %s\n", err.text);
        return ZF_EXIT_USAGE;
    }
    s_view_t *view = (s_view_t *) zmalloc (sizeof (s_view_t));
    int status = ZF_EXIT_OK;
    if (once || !isatty (1)) {
        if (s_next (events, view, (int) timeout) == 0)
            s_render (stdout, view, endpoint, 0);
        else {
            fprintf (stderr, "zflow top: no stats from %s within %lld ms\n", endpoint,
                     (long long) timeout);
            status = ZF_EXIT_FAILED;
        }
    }
    else {
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
    free (view);
    zsock_destroy (&events);
    return status;
}
