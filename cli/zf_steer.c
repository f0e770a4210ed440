/*  zf_steer: zflow dead, requeue, purge, pause, resume, reload and schedule.
    See zf_steer.h.
*/
#include "zf_steer.h"
#include "zf_alloc.h"
#include "zf_error.h"
#include "zf_json.h"
#include "zf_mp.h"
#include "zf_proto.h"
#include "zf_cron.h"
#include "zf_tasks.h"
#include "zf_tz.h"
#include "zf_value.h"

#include <czmq.h>
#include <time.h>
#include <unistd.h>

//  The value of header name in a msgpack map of str to str, as a new
//  string, or NULL.
static char *
s_header (const void *headers, size_t size, const char *name)
{
    uint32_t len;
    const char *value = zf_mp_header (headers, size, name, &len);
    return value ? strndup (value, len) : NULL;
}

//  A string as JSON (quoted, escaped), appended to out.
static void
s_json_string (zchunk_t *out, const char *text)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    zf_mp_pack_cstr (&pk, text ? text : "");
    char *json = zf_msgpack_to_json (buffer.data, buffer.size, NULL);
    zchunk_extend (out, json ? json : "\"\"", json ? strlen (json) : 2);
    free (json);
    msgpack_sbuffer_destroy (&buffer);
}

//  Msgpack bytes as JSON, appended to out ("null" if they are not JSON's).
static void
s_json_msgpack (zchunk_t *out, const void *data, size_t size)
{
    char *json = size ? zf_msgpack_to_json (data, size, NULL) : NULL;
    zchunk_extend (out, json ? json : "null", json ? strlen (json) : 4);
    free (json);
}

//  out's bytes as a string, out destroyed.
static char *
s_text (zchunk_t **out)
{
    zchunk_extend (*out, "", 1);
    char *text = zf_strdup ((const char *) zchunk_data (*out));
    zchunk_destroy (out);
    return text;
}

char *
zf_steer_letters_json (zf_result_t *listing)
{
    zchunk_t *out = zchunk_new (NULL, 512);
    char line[128], hex[ZF_ID_HEX];
    snprintf (line, sizeof line, "{\"count\":%llu,\"letters\":[",
              (unsigned long long) zf_result_total (listing));
    zchunk_extend (out, line, strlen (line));
    for (size_t i = 0; i < zf_result_count (listing); i++) {
        size_t headers_size, body_size;
        const void *headers = zf_result_item_headers (listing, i, &headers_size);
        const void *body = zf_result_body (listing, i, &body_size);
        char *error = s_header (headers, headers_size, "zflow-error");
        snprintf (line, sizeof line, "%s{\"id\":\"%s\",", i ? "," : "",
                  zf_id_format (zf_result_id (listing, i), hex));
        zchunk_extend (out, line, strlen (line));
        snprintf (line, sizeof line, "\"root\":\"%s\",\"queue\":",
                  zf_id_format (zf_result_item_root (listing, i), hex));
        zchunk_extend (out, line, strlen (line));
        s_json_string (out, zf_result_item_queue (listing, i));
        snprintf (line, sizeof line,
                  ",\"attempts\":%u,\"died\":%lld,\"error\":", zf_result_item_attempts (listing, i),
                  (long long) zf_result_item_ts (listing, i));
        zchunk_extend (out, line, strlen (line));
        s_json_string (out, error);
        zchunk_extend (out, ",\"headers\":", 11);
        s_json_msgpack (out, headers, headers_size);
        zchunk_extend (out, ",\"body\":", 8);
        s_json_msgpack (out, body, body_size);
        zchunk_extend (out, "}", 1);
        free (error);
    }
    zchunk_extend (out, "]}\n", 3);
    return s_text (&out);
}

char *
zf_steer_done_json (zf_result_t *done, const char *queue)
{
    zchunk_t *out = zchunk_new (NULL, 256);
    zchunk_extend (out, "{\"queue\":", 9);
    s_json_string (out, queue);
    const zf_figures_t *figures = zf_result_figures (done);
    char line[96];
    snprintf (line, sizeof line, ",\"count\":%llu,\"paused\":%s,\"note\":",
              (unsigned long long) zf_result_total (done),
              figures && figures->paused ? "true" : "false");
    zchunk_extend (out, line, strlen (line));
    s_json_string (out, zf_result_reason (done));
    zchunk_extend (out, "}\n", 2);
    return s_text (&out);
}

//  --------------------------------------------------------------------------
//  The commands

//  ZF_IDS_MAX as text, for the help of the commands that take ids.
#define S_TEXT(x)  S_TEXT_ (x)
#define S_TEXT_(x) #x
#define S_IDS_MAX  S_TEXT (ZF_IDS_MAX)

//  --where's value: a header's name, '=', the value it must have.
static int
s_check_where (const char *value, zf_error_t *err)
{
    const char *equals = strchr (value, '=');
    if (!equals || equals == value)
        return zf_error_set (err, ZF_EVALUE, "not HEADER=VALUE (e.g. tenant=acme)");
    return 0;
}

//  The options several commands share, as entries of their tables: each
//  command's struct names its own fields where, older and timeout.
#define S_WHERE(ST, what)                                                                          \
    {                                                                                              \
        .name = "where", .shown = "HEADER=VALUE",                                                  \
        .help = "only the " what " whose header HEADER has this value", .check = s_check_where,    \
        ZF_FIELD (ZF_KEY_STRING, ST, where)                                                        \
    }
#define S_OLDER_THAN(ST, what)                                                                     \
    {                                                                                              \
        .name = "older-than", .help = "only the " what " at least this long ago",                  \
        ZF_FIELD (ZF_KEY_DURATION, ST, older)                                                      \
    }
#define S_TIMEOUT(ST)                                                                              \
    {                                                                                              \
        .name = "timeout", .fallback = "5s", .min = 1, .max = INT32_MAX,                           \
        .help = "how long the broker may take to answer", ZF_FIELD (ZF_KEY_DURATION, ST, timeout)  \
    }

//  0 if endpoint names a broker (or a group's), else -1 having said why.
static int
s_endpoint (const char *command, const char *endpoint)
{
    zf_error_t err;
    if (zf_parse_endpoints (endpoint, &err) == 0)
        return 0;
    fprintf (stderr, "zflow %s: %s\n", command, err.text);
    return -1;
}

//  Asks the broker at endpoint to do control, for command, waiting at
//  most timeout ms. The answer (caller owns it), or NULL having said why
//  (status: what to exit with).
static zf_result_t *
s_ask (const char *command, const char *endpoint, int64_t timeout, zf_control_t *control,
       int *status)
{
    char name[64];
    snprintf (name, sizeof name, "zflow-%s", command);
    zf_client_t *client = zf_client_new (endpoint, name, NULL, 0);
    if (!client) {
        fprintf (stderr, "zflow %s: %s\n", command, zf_client_last_error (NULL));
        *status = ZF_EXIT_USAGE;
        return NULL;
    }
    zf_result_t *result = zf_client_control (client, control, (int) timeout);
    if (!result) {
        const char *why = zf_client_last_error (client);
        fprintf (stderr, "zflow %s: %s\n", command,
                 *why ? why : "no answer from the broker in time");
        // Refused (a mistake of the command's) or not answered (the broker's).
        bool late = !*why || strstr (why, "did not answer") || zsys_interrupted;
        *status = late && !zf_client_refused (client) ? ZF_EXIT_FAILED : ZF_EXIT_USAGE;
    }
    zf_client_destroy (&client);
    return result;
}

//  The dead-letter queue a command names: QUEUE.dead as given, or QUEUE
//  with .dead added.
static void
s_dead_queue (const char *given, char *name, size_t size)
{
    size_t len = strlen (given);
    bool dead = len > 5 && streq (given + len - 5, ".dead");
    snprintf (name, size, "%s%s", given, dead ? "" : ".dead");
}

//  A time in ms since the Unix epoch as ISO 8601 UTC, to the second.
static const char *
s_iso (int64_t ms, char *buffer, size_t size)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    strftime (buffer, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buffer;
}

//  The ids given as words into ids (room for ZF_IDS_MAX: the commands'
//  max_args hold them to it); -1 (having said why) if one is not an id.
static int
s_ids (const char *command, int count, char **words, zf_id_t *ids)
{
    for (int i = 0; i < count; i++)
        if (zf_tasks_id_arg (command, words[i], &ids[i]))
            return -1;
    return 0;
}

typedef struct {
    int64_t limit;     // letters listed at most
    bool json;         // as JSON, not a table
    const char *where; // HEADER=VALUE the letters have, or NULL
    int64_t older;     // ms they have been dead at least, or 0
    int64_t timeout;   // ms the broker may take to answer
} s_dead_options_t;

static const zf_key_t s_dead_options[] = {
    { .name = "limit",
      .fallback = "100",
      .min = 1,
      .max = ZF_BATCH_MAX,
      .help = "list at most this many letters, oldest first",
      ZF_FIELD (ZF_KEY_INT, s_dead_options_t, limit) },
    { .name = "json",
      .help = "print JSON: {\"count\", \"letters\"}, each with its headers and body",
      ZF_FIELD (ZF_KEY_BOOL, s_dead_options_t, json) },
    S_WHERE (s_dead_options_t, "letters"),
    S_OLDER_THAN (s_dead_options_t, "letters that died"),
    S_TIMEOUT (s_dead_options_t),
    { NULL }
};

static int
s_dead (const void *options, int argc, char **args)
{
    const s_dead_options_t *o = (const s_dead_options_t *) options;
    if (s_endpoint ("dead", args[0]))
        return ZF_EXIT_USAGE;
    char queue[ZF_NAME_MAX + 8] = "";
    if (argc == 2)
        s_dead_queue (args[1], queue, sizeof queue);
    zf_control_t control = { .op = "dead",
                             .queue = queue,
                             .limit = (uint32_t) o->limit,
                             .where = o->where,
                             .older_ms = o->older };
    int status = ZF_EXIT_OK;
    zf_result_t *listing = s_ask ("dead", args[0], o->timeout, &control, &status);
    if (!listing)
        return status;
    if (o->json) {
        char *json = zf_steer_letters_json (listing);
        fputs (json, stdout);
        free (json);
    }
    else {
        printf ("%-32s  %-32s  %-20s %8s  %-20s  %s\n", "ID", "ROOT", "QUEUE", "ATTEMPTS", "DIED",
                "ERROR");
        for (size_t i = 0; i < zf_result_count (listing); i++) {
            char id[ZF_ID_HEX], root[ZF_ID_HEX], died[32];
            size_t size;
            const void *headers = zf_result_item_headers (listing, i, &size);
            char *error = s_header (headers, size, "zflow-error");
            zf_id_format (zf_result_id (listing, i), id);
            zf_id_format (zf_result_item_root (listing, i), root);
            printf ("%-32s  %-32s  %-20s %8u  %-20s  %s\n", id, streq (id, root) ? "-" : root,
                    zf_result_item_queue (listing, i), zf_result_item_attempts (listing, i),
                    s_iso (zf_result_item_ts (listing, i), died, sizeof died), error ? error : "");
            free (error);
        }
    }
    if (zf_result_total (listing) > zf_result_count (listing))
        fprintf (stderr, "zflow dead: %zu of %llu dead letters shown (--limit, up to %d)\n",
                 zf_result_count (listing), (unsigned long long) zf_result_total (listing),
                 ZF_BATCH_MAX);
    zf_result_destroy (&listing);
    return ZF_EXIT_OK;
}

const zf_cmd_t zf_cmd_dead = {
    .name = "dead",
    .args = "ENDPOINT [QUEUE]",
    .min_args = 1,
    .max_args = 2,
    .summary = "list a running broker's dead letters",
    .help = "Lists the letters of QUEUE.dead (QUEUE or QUEUE.dead may be given), or of every\n"
            "dead-letter queue, oldest first: id, root (- for a root), queue, attempts, when\n"
            "it died and its last error. When there are more than --limit, stderr says so.",
    .exits = "0 listed\n"
             "1 the broker did not answer in time\n"
             "2 a usage error, or the broker refused (no such queue)",
    .options = s_dead_options,
    .options_size = sizeof (s_dead_options_t),
    .run = s_dead,
};

typedef struct {
    bool all;          // every letter of the queue
    const char *where; // HEADER=VALUE the letters have, or NULL
    int64_t older;     // ms they have been dead at least, or 0
    int64_t timeout;   // ms the broker may take to answer
} s_requeue_options_t;

static const zf_key_t s_requeue_options[] = {
    { .name = "all",
      .help = "requeue every letter of the queue (with no ids)",
      ZF_FIELD (ZF_KEY_BOOL, s_requeue_options_t, all) },
    S_WHERE (s_requeue_options_t, "letters"),
    S_OLDER_THAN (s_requeue_options_t, "letters that died"),
    S_TIMEOUT (s_requeue_options_t),
    { NULL }
};

static int
s_requeue (const void *options, int argc, char **args)
{
    const s_requeue_options_t *o = (const s_requeue_options_t *) options;
    if (s_endpoint ("requeue", args[0]))
        return ZF_EXIT_USAGE;
    int nids = argc - 2;
    if (!nids && !o->all && !o->where && !o->older) {
        fprintf (stderr, "zflow requeue: name the letters (their ids), or choose them with "
                         "--where or --older-than, or take them all with --all\n");
        return ZF_EXIT_USAGE;
    }
    if (nids && o->all) {
        fprintf (stderr, "zflow requeue: ids and --all together: which is meant?\n");
        return ZF_EXIT_USAGE;
    }
    zf_id_t ids[ZF_IDS_MAX];
    if (s_ids ("requeue", nids, args + 2, ids))
        return ZF_EXIT_USAGE;
    char queue[ZF_NAME_MAX + 8];
    s_dead_queue (args[1], queue, sizeof queue);
    zf_control_t control = { .op = "requeue",
                             .queue = queue,
                             .ids = nids ? ids : NULL,
                             .nids = (size_t) nids,
                             .where = o->where,
                             .older_ms = o->older };
    int status = ZF_EXIT_OK;
    zf_result_t *done = s_ask ("requeue", args[0], o->timeout, &control, &status);
    if (!done)
        return status;
    printf ("requeued %llu from %s\n", (unsigned long long) zf_result_total (done), queue);
    if (*zf_result_reason (done)) {
        fprintf (stderr, "zflow requeue: %s\n", zf_result_reason (done));
        status = ZF_EXIT_FAILED; // not all of what was named went
    }
    zf_result_destroy (&done);
    return status;
}

const zf_cmd_t zf_cmd_requeue = {
    .name = "requeue",
    .args = "ENDPOINT QUEUE.dead [ID ...]",
    .min_args = 2,
    .max_args = 2 + ZF_IDS_MAX,
    .summary = "move dead letters back to their queue, to be tried again",
    .help = "The letters are named by their ids (at most " S_IDS_MAX "), chosen by\n"
            "--where or --older-than, or all taken with --all. Each goes back to the queue\n"
            "it failed in, its attempts starting over; its root's result follows the\n"
            "replay. Prints how many were requeued.",
    .exits = "0 every letter named or chosen was requeued\n"
             "1 some named were not (stderr says which), or the broker did not answer in time\n"
             "2 a usage error, or the broker refused (no such queue)",
    .options = s_requeue_options,
    .options_size = sizeof (s_requeue_options_t),
    .run = s_requeue,
};

typedef struct {
    bool yes;          // no question at a terminal
    const char *where; // HEADER=VALUE the items have, or NULL
    int64_t older;     // ms since they were stored, at least, or 0
    int64_t timeout;   // ms the broker may take to answer
} s_purge_options_t;

static const zf_key_t s_purge_options[] = {
    { .name = "yes",
      .help = "do not ask first at a terminal (a script is never asked)",
      ZF_FIELD (ZF_KEY_BOOL, s_purge_options_t, yes) },
    S_WHERE (s_purge_options_t, "items"),
    S_OLDER_THAN (s_purge_options_t, "items stored"),
    S_TIMEOUT (s_purge_options_t),
    { NULL }
};

static int
s_purge (const void *options, int argc, char **args)
{
    const s_purge_options_t *o = (const s_purge_options_t *) options;
    if (s_endpoint ("purge", args[0]))
        return ZF_EXIT_USAGE;
    int nids = argc - 2;
    zf_id_t ids[ZF_IDS_MAX];
    if (s_ids ("purge", nids, args + 2, ids))
        return ZF_EXIT_USAGE;
    // Dropping work cannot be undone: a person at a terminal says so.
    if (!o->yes && isatty (0)) {
        fprintf (stderr,
                 "zflow purge: drop %s waiting in %s%s? Their lineages end cancelled. "
                 "Type yes: ",
                 nids ? "the items named" : "every item", args[1],
                 o->where || o->older ? " (of those chosen)" : "");
        char answer[16] = "";
        if (!fgets (answer, sizeof answer, stdin) || strcmp (answer, "yes\n") != 0) {
            fprintf (stderr, "zflow purge: nothing dropped\n");
            return ZF_EXIT_FAILED;
        }
    }
    zf_control_t control = { .op = "purge",
                             .queue = args[1],
                             .ids = nids ? ids : NULL,
                             .nids = (size_t) nids,
                             .where = o->where,
                             .older_ms = o->older };
    int status = ZF_EXIT_OK;
    zf_result_t *done = s_ask ("purge", args[0], o->timeout, &control, &status);
    if (!done)
        return status;
    printf ("purged %llu from %s\n", (unsigned long long) zf_result_total (done), args[1]);
    if (*zf_result_reason (done))
        fprintf (stderr, "zflow purge: %s\n", zf_result_reason (done));
    zf_result_destroy (&done);
    return status;
}

const zf_cmd_t zf_cmd_purge = {
    .name = "purge",
    .args = "ENDPOINT QUEUE [ID ...]",
    .min_args = 2,
    .max_args = 2 + ZF_IDS_MAX,
    .summary = "drop the items waiting in a queue (their lineages end cancelled)",
    .help = "Drops the items waiting in QUEUE (queued, delayed, retrying: not those a\n"
            "worker holds): all, or those named by id (at most " S_IDS_MAX ") or chosen by\n"
            "--where or --older-than. At a terminal it asks first (type yes). Prints how\n"
            "many were dropped.",
    .exits = "0 purged\n"
             "1 not confirmed at the terminal (nothing dropped), or the broker did not answer\n"
             "2 a usage error, or the broker refused (no such queue)",
    .options = s_purge_options,
    .options_size = sizeof (s_purge_options_t),
    .run = s_purge,
};

//  pause, resume and reload take the timeout alone.
typedef struct {
    int64_t timeout; // ms the broker may take to answer
} s_timeout_options_t;

static const zf_key_t s_timeout_options[] = { S_TIMEOUT (s_timeout_options_t), { NULL } };

//  zflow pause and zflow resume.
static int
s_pause_or_resume (const s_timeout_options_t *o, char **args, bool pause)
{
    const char *command = pause ? "pause" : "resume";
    if (s_endpoint (command, args[0]))
        return ZF_EXIT_USAGE;
    zf_control_t control = { .op = command, .queue = args[1] };
    int status = ZF_EXIT_OK;
    zf_result_t *done = s_ask (command, args[0], o->timeout, &control, &status);
    if (!done)
        return status;
    printf ("%s %s (items stored: %llu)\n", args[1], pause ? "paused" : "resumed",
            (unsigned long long) zf_result_total (done));
    zf_result_destroy (&done);
    return status;
}

static int
s_pause (const void *options, int argc, char **args)
{
    (void) argc;
    return s_pause_or_resume ((const s_timeout_options_t *) options, args, true);
}

static int
s_resume (const void *options, int argc, char **args)
{
    (void) argc;
    return s_pause_or_resume ((const s_timeout_options_t *) options, args, false);
}

const zf_cmd_t zf_cmd_pause = {
    .name = "pause",
    .args = "ENDPOINT QUEUE",
    .min_args = 2,
    .max_args = 2,
    .summary = "deliver nothing from a queue (puts go on) until resumed",
    .help = "What workers hold already they finish. The queue stays paused across restarts\n"
            "and failovers. Prints the queue and how many items it stores.",
    .exits = "0 paused\n"
             "1 the broker did not answer in time\n"
             "2 a usage error, or the broker refused (no such queue)",
    .options = s_timeout_options,
    .options_size = sizeof (s_timeout_options_t),
    .run = s_pause,
};

const zf_cmd_t zf_cmd_resume = {
    .name = "resume",
    .args = "ENDPOINT QUEUE",
    .min_args = 2,
    .max_args = 2,
    .summary = "deliver from a paused queue again",
    .help = "Prints the queue and how many items it stores.",
    .exits = "0 resumed\n"
             "1 the broker did not answer in time\n"
             "2 a usage error, or the broker refused (no such queue)",
    .options = s_timeout_options,
    .options_size = sizeof (s_timeout_options_t),
    .run = s_resume,
};

static int
s_reload (const void *options, int argc, char **args)
{
    (void) argc;
    const s_timeout_options_t *o = (const s_timeout_options_t *) options;
    if (s_endpoint ("reload", args[0]))
        return ZF_EXIT_USAGE;
    zf_control_t control = { .op = "reload", .queue = "" };
    int status = ZF_EXIT_OK;
    zf_result_t *done = s_ask ("reload", args[0], o->timeout, &control, &status);
    if (!done)
        return status;
    printf ("reload asked of %s: the run (or broker) reads its pipeline file again, and its "
            "log says what changed, or what is wrong in the file\n",
            args[0]);
    zf_result_destroy (&done);
    return status;
}

const zf_cmd_t zf_cmd_reload = {
    .name = "reload",
    .args = "ENDPOINT",
    .min_args = 1,
    .max_args = 1,
    .summary = "the run or broker there reads its pipeline file again (as SIGHUP)",
    .help = "What changed, or what is wrong in the file, is in the run's (or broker's) log;\n"
            "a file with mistakes is refused and the run goes on as it was.",
    .exits = "0 asked\n"
             "1 the broker did not answer in time\n"
             "2 a usage error, or the broker refused",
    .options = s_timeout_options,
    .options_size = sizeof (s_timeout_options_t),
    .run = s_reload,
};
//  --------------------------------------------------------------------------
//  zflow schedule

//  A time in ms since the Unix epoch as ISO 8601 UTC, or "-" for 0.
static const char *
s_when (int64_t ms, char *buffer, size_t size)
{
    return ms ? s_iso (ms, buffer, size) : "-";
}

//  One schedule as JSON, appended to out.
static void
s_schedule_json (zchunk_t *out, const zf_schedule_info_t *row)
{
    zchunk_extend (out, "{\"name\":", 8);
    s_json_string (out, row->name);
    zchunk_extend (out, ",\"queue\":", 9);
    s_json_string (out, row->queue);
    zchunk_extend (out, ",\"trigger\":", 11);
    s_json_string (out, row->trigger);
    zchunk_extend (out, ",\"tz\":", 6);
    s_json_string (out, row->tz);
    char tail[192];
    snprintf (tail, sizeof tail,
              ",\"next\":%lld,\"last\":%lld,\"fired\":%llu,\"missed\":%llu,\"state\":\"%s\"}",
              (long long) row->next, (long long) row->last, (unsigned long long) row->fired,
              (unsigned long long) row->missed,
              row->config   ? "config"
              : row->paused ? "paused"
                            : "active");
    zchunk_extend (out, tail, strlen (tail));
}

char *
zf_steer_schedules_json (zf_result_t *answer, const char *only)
{
    size_t count;
    const zf_schedule_info_t *rows = zf_result_schedules (answer, &count);
    zchunk_t *out = zchunk_new (NULL, 256);
    if (!only)
        zchunk_extend (out, "[", 1);
    bool any = false;
    for (size_t i = 0; i < count; i++) {
        if (only && !streq (rows[i].name, only))
            continue;
        if (any)
            zchunk_extend (out, ",", 1);
        s_schedule_json (out, &rows[i]);
        any = true;
        if (only)
            break;
    }
    if (only && !any) {
        zchunk_destroy (&out);
        return NULL;
    }
    zchunk_extend (out, only ? "\n" : "]\n", only ? 1 : 2);
    return s_text (&out);
}

//  Schedules as a table, or as JSON lines.
static void
s_print_schedules (zf_result_t *answer, bool json)
{
    size_t count;
    const zf_schedule_info_t *rows = zf_result_schedules (answer, &count);
    if (!json)
        printf ("%-24s %-16s %-24s %-16s %-20s %-20s %7s %7s  %s\n", "NAME", "QUEUE", "TRIGGER",
                "TZ", "NEXT", "LAST", "FIRED", "MISSED", "STATE");
    for (size_t i = 0; i < count; i++) {
        const zf_schedule_info_t *row = &rows[i];
        if (json) {
            zchunk_t *out = zchunk_new (NULL, 256);
            s_schedule_json (out, row);
            char *text = s_text (&out);
            puts (text);
            free (text);
            continue;
        }
        char next[32], last[32];
        printf ("%-24s %-16s %-24s %-16s %-20s %-20s %7llu %7llu  %s\n", row->name, row->queue,
                row->trigger, row->tz, s_when (row->next, next, sizeof next),
                s_when (row->last, last, sizeof last), (unsigned long long) row->fired,
                (unsigned long long) row->missed,
                row->config   ? "config"
                : row->paused ? "paused"
                              : "active");
    }
}

//  A duration given in JSON, as text ("10s") or a number of ms, into *ms;
//  -1 if it is neither.
static int
s_json_duration (zf_mp_t *mp, int64_t *ms)
{
    const char *text;
    uint32_t len;
    uint64_t number;
    if (zf_mp_peek (mp) == ZF_MP_UINT)
        return zf_mp_uint (mp, &number, NULL) || number > INT64_MAX ? -1
                                                                    : (*ms = (int64_t) number, 0);
    char duration[64];
    if (zf_mp_str (mp, &text, &len, NULL) || len >= sizeof duration)
        return -1;
    snprintf (duration, sizeof duration, "%.*s", (int) len, text);
    return zf_parse_duration (duration, ms, NULL);
}

static int s_spec_read (const uint8_t *data, size_t size, zf_schedule_spec_t *spec,
                        msgpack_sbuffer *keep, char *queue, size_t queue_size, char *why,
                        size_t why_size);

int
zf_steer_spec_json (const char *json, zf_schedule_spec_t *spec, msgpack_sbuffer *keep, char *queue,
                    size_t queue_size, char *why, size_t why_size)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, keep, msgpack_sbuffer_write);
    zf_error_t err;
    if (zf_json_to_msgpack (json, strlen (json), &pk, &err)) {
        snprintf (why, why_size, "the body is not JSON: %s", err.text);
        return -1;
    }
    // The map is read from a copy; keep gets the spec's strings (as C
    // strings) and payload, for spec to point into once it is whole.
    size_t map_size = keep->size;
    uint8_t *map = (uint8_t *) zf_alloc (map_size);
    memcpy (map, keep->data, map_size);
    msgpack_sbuffer_clear (keep);
    int rc = s_spec_read (map, map_size, spec, keep, queue, queue_size, why, why_size);
    free (map);
    return rc;
}

//  zf_steer_spec_json's reading of the map at data.
static int
s_spec_read (const uint8_t *data, size_t size, zf_schedule_spec_t *spec, msgpack_sbuffer *keep,
             char *queue, size_t queue_size, char *why, size_t why_size)
{
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    uint32_t count;
    if (zf_mp_map (&mp, &count, NULL)) {
        snprintf (why, why_size,
                  "the body is not a JSON object such as {\"every\": \"10s\", "
                  "\"queue\": \"tasks\"}");
        return -1;
    }
    *queue = 0;
    size_t offsets[4] = { 0 }; // cron, at, tz, payload: where in keep
    size_t payload_size = 0;
    bool has[4] = { false };
    for (uint32_t i = 0; i < count; i++) {
        const char *key, *text;
        uint32_t key_len, len;
        if (zf_mp_str (&mp, &key, &key_len, NULL)) {
            snprintf (why, why_size, "a key of the body is not a string");
            return -1;
        }
        char name[32];
        snprintf (name, sizeof name, "%.*s", (int) (key_len < 31 ? key_len : 31), key);
        int slot = streq (name, "cron") ? 0 : streq (name, "at") ? 1 : streq (name, "tz") ? 2 : -1;
        if (slot >= 0 || streq (name, "queue")) {
            if (zf_mp_str (&mp, &text, &len, NULL) || len > ZF_TEXT_MAX || memchr (text, 0, len)) {
                snprintf (why, why_size, "%s: a string (with no NUL)", name);
                return -1;
            }
            if (slot < 0) {
                if (len >= queue_size) {
                    snprintf (why, why_size, "queue: at most %zu bytes", queue_size - 1);
                    return -1;
                }
                snprintf (queue, queue_size, "%.*s", (int) len, text);
                continue;
            }
            offsets[slot] = keep->size;
            has[slot] = true;
            msgpack_sbuffer_write (keep, text, len);
            msgpack_sbuffer_write (keep, "", 1);
        }
        else if (streq (name, "every") || streq (name, "misfire_grace")) {
            int64_t *into = streq (name, "every") ? &spec->every_ms : &spec->misfire_grace_ms;
            if (s_json_duration (&mp, into) || *into <= 0) {
                snprintf (why, why_size, "%s: a duration, \"10s\" or a number of ms over 0", name);
                return -1;
            }
        }
        else if (streq (name, "coalesce")) {
            bool coalesce;
            if (zf_mp_bool (&mp, &coalesce, NULL)) {
                snprintf (why, why_size, "coalesce: true or false");
                return -1;
            }
            spec->no_coalesce = !coalesce;
        }
        else if (streq (name, "max_instances")) {
            uint64_t number;
            if (zf_mp_uint (&mp, &number, NULL) || number < 1 || number > 100000) {
                snprintf (why, why_size, "max_instances: from 1 to 100000");
                return -1;
            }
            spec->max_instances = (uint32_t) number;
        }
        else if (streq (name, "payload")) {
            const uint8_t *start = mp.pos;
            if (zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL)) {
                snprintf (why, why_size, "payload: too deep");
                return -1;
            }
            offsets[3] = keep->size;
            has[3] = true;
            payload_size = (size_t) (mp.pos - start);
            msgpack_sbuffer_write (keep, (const char *) start, payload_size);
        }
        else {
            snprintf (why, why_size,
                      "'%s' is not a key of a schedule: cron, every, at, tz, queue, payload, "
                      "misfire_grace, coalesce, max_instances",
                      name);
            return -1;
        }
    }
    const char **strings[3] = { &spec->cron, &spec->at, &spec->tz };
    for (int i = 0; i < 3; i++)
        if (has[i])
            *strings[i] = keep->data + offsets[i];
    if (has[3]) {
        spec->payload = keep->data + offsets[3];
        spec->payload_size = payload_size;
    }
    if (!*queue) {
        snprintf (why, why_size, "queue: the queue each firing goes to");
        return -1;
    }
    return 0;
}

typedef struct {
    const char *cron;      // a cron expression it fires at, or NULL
    int64_t every;         // ms between its firings, or 0
    const char *at;        // the one time it fires, or NULL
    const char *tz;        // the zone of cron and of times without offset, or NULL: UTC
    const char *queue;     // where each firing goes
    const char *payload;   // JSON put by each firing, or NULL
    int64_t misfire_grace; // ms a firing may be late, or 0: the broker's 1 s
    int64_t max_instances; // firings at work at once, at most, or 0: any number
    bool no_coalesce;      // after a stall, each missed time fires
    bool json;             // schedules as JSON lines, not a table
    int64_t timeout;       // ms the broker may take to answer
} s_schedule_options_t;

static const zf_key_t s_schedule_options[] = {
    { .name = "cron",
      .shown = "EXPR",
      .help = "add: fire at the times of this cron expression",
      .check = zf_cron_check,
      ZF_FIELD (ZF_KEY_STRING, s_schedule_options_t, cron) },
    { .name = "every",
      .min = 1,
      .max = 366LL * 86400000,
      .help = "add: fire at this interval, counted from the Unix epoch",
      ZF_FIELD (ZF_KEY_DURATION, s_schedule_options_t, every) },
    { .name = "at",
      .shown = "TIME",
      .help = "add: fire once, at this ISO 8601 time (2030-12-24T18:00:00Z); a time past by "
              "more than --misfire-grace is refused",
      .check = zf_cron_check_time,
      ZF_FIELD (ZF_KEY_STRING, s_schedule_options_t, at) },
    { .name = "tz",
      .shown = "ZONE",
      .help = "add: the IANA zone of --cron, and of --at without offset (default UTC)",
      .check = zf_tz_check,
      ZF_FIELD (ZF_KEY_STRING, s_schedule_options_t, tz) },
    { .name = "queue",
      .help = "add: the queue each firing puts its item to",
      ZF_FIELD (ZF_KEY_QUEUE, s_schedule_options_t, queue) },
    { .name = "payload",
      .shown = "JSON",
      .help = "add: the body each firing puts (job, scheduled, lateness_ms added)",
      ZF_FIELD (ZF_KEY_STRING, s_schedule_options_t, payload) },
    { .name = "misfire-grace",
      .min = 1,
      .max = 366LL * 86400000,
      .help = "add: skip a firing later than this, counted as missed (default 1s)",
      ZF_FIELD (ZF_KEY_DURATION, s_schedule_options_t, misfire_grace) },
    { .name = "max-instances",
      .min = 1,
      .max = 100000,
      .help = "add: skip a firing while this many earlier ones are at work",
      ZF_FIELD (ZF_KEY_INT, s_schedule_options_t, max_instances) },
    { .name = "no-coalesce",
      .help = "add: after a stall, fire each missed time within the grace",
      ZF_FIELD (ZF_KEY_BOOL, s_schedule_options_t, no_coalesce) },
    { .name = "json",
      .help = "print the schedules as JSON lines, not a table",
      ZF_FIELD (ZF_KEY_BOOL, s_schedule_options_t, json) },
    S_TIMEOUT (s_schedule_options_t),
    { NULL }
};

static int
s_schedule (const void *options, int argc, char **args)
{
    const s_schedule_options_t *o = (const s_schedule_options_t *) options;
    const char *verb = args[1];
    static const struct {
        const char *verb; // as typed
        const char *op;   // the CONTROL that does it
    } verbs[] = { { "list", "schedules" },         { "add", "schedule-add" },
                  { "remove", "schedule-remove" }, { "pause", "schedule-pause" },
                  { "resume", "schedule-resume" }, { "run", "schedule-run" } };
    const char *op = NULL;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (streq (verb, verbs[i].verb))
            op = verbs[i].op;
    char why[160];
    if (!op) {
        snprintf (why, sizeof why, "'%.64s' is not add, list, pause, resume, remove or run", verb);
        return zf_cmd_usage (&zf_cmd_schedule, why);
    }
    bool listing = streq (verb, "list"), adding = streq (verb, "add");
    if (listing != (argc == 2)) {
        snprintf (why, sizeof why, listing ? "list takes no NAME" : "%s needs the schedule's NAME",
                  verb);
        return zf_cmd_usage (&zf_cmd_schedule, why);
    }
    // The options of a schedule's spec, which only add takes.
    const struct {
        const char *name; // the option
        bool given;       // on this command line
    } spec_options[] = { { "cron", o->cron },
                         { "every", o->every },
                         { "at", o->at },
                         { "tz", o->tz },
                         { "queue", o->queue },
                         { "payload", o->payload },
                         { "misfire-grace", o->misfire_grace },
                         { "max-instances", o->max_instances },
                         { "no-coalesce", o->no_coalesce } };
    for (size_t i = 0; i < sizeof spec_options / sizeof spec_options[0] && !adding; i++)
        if (spec_options[i].given) {
            fprintf (stderr, "zflow schedule %s: --%s is for add\n", verb, spec_options[i].name);
            return ZF_EXIT_USAGE;
        }
    if (adding && ((o->cron != NULL) + (o->every != 0) + (o->at != NULL) != 1 || !o->queue)) {
        fprintf (stderr, "zflow schedule add: one of --cron, --every and --at, and --queue\n");
        return ZF_EXIT_USAGE;
    }
    if (s_endpoint ("schedule", args[0]))
        return ZF_EXIT_USAGE;
    zf_schedule_spec_t spec = { .cron = o->cron,
                                .every_ms = o->every,
                                .at = o->at,
                                .tz = o->tz,
                                .misfire_grace_ms = o->misfire_grace,
                                .max_instances = (uint32_t) o->max_instances,
                                .no_coalesce = o->no_coalesce };
    msgpack_sbuffer payload;
    msgpack_sbuffer_init (&payload);
    int status = ZF_EXIT_USAGE;
    if (o->payload) {
        msgpack_packer pk;
        msgpack_packer_init (&pk, &payload, msgpack_sbuffer_write);
        zf_error_t err;
        if (zf_json_to_msgpack (o->payload, strlen (o->payload), &pk, &err)) {
            fprintf (stderr, "zflow schedule add: --payload is not JSON: %s\n", err.text);
            goto done;
        }
        spec.payload = payload.data;
        spec.payload_size = payload.size;
    }
    zf_control_t control = { .op = op,
                             .queue = adding ? o->queue : "",
                             .name = argc == 3 ? args[2] : NULL,
                             .schedule = adding ? &spec : NULL };
    status = ZF_EXIT_OK;
    zf_result_t *answer = s_ask ("schedule", args[0], o->timeout, &control, &status);
    if (answer) {
        s_print_schedules (answer, o->json);
        if (streq (verb, "remove"))
            fprintf (stderr, "zflow schedule: %s removed\n", args[2]);
        zf_result_destroy (&answer);
    }
done:
    msgpack_sbuffer_destroy (&payload);
    return status;
}

const zf_cmd_t zf_cmd_schedule = {
    .name = "schedule",
    .args = "ENDPOINT add|list|pause|resume|remove|run [NAME]",
    .min_args = 2,
    .max_args = 3,
    .summary = "schedules of a running broker: added, listed, paused, fired now",
    .help = "add NAME takes one of --cron, --every and --at, --queue, and the options\n"
            "marked add (a schedule of that name is replaced); list shows every schedule,\n"
            "the config file's too; pause, resume, remove and run (fire now, once) take a\n"
            "schedule's NAME. Each prints the schedules it touched: name, queue, trigger,\n"
            "zone, next and last firing, fired, missed and state.",
    .exits = "0 done\n"
             "1 the broker did not answer in time\n"
             "2 a usage error, or refused (no such schedule or queue, or the config file's)",
    .options = s_schedule_options,
    .options_size = sizeof (s_schedule_options_t),
    .run = s_schedule,
};
