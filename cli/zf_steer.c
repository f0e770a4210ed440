/*  zf_steer: zflow dead, requeue, purge, pause and resume. See zf_steer.h. */
#include "zf_steer.h"
#include "zf_alloc.h"
#include "zf_error.h"
#include "zf_json.h"
#include "zf_mp.h"
#include "zf_proto.h"
#include "zf_cron.h"
#include "zf_tasks.h"
#include "zf_tools.h"
#include "zf_value.h"

#include <czmq.h>
#include <time.h>
#include <unistd.h>

#define ARGS_MAX (ZF_IDS_MAX + 8) // words a command line may have

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

//  What every steering command reads from its command line.
typedef struct {
    const char *command;    // its name
    const char *usage;      // its usage line
    char *args[ARGS_MAX];   // its words that are not options
    int nargs;              // entries in args
    const char *where;      // --where, or NULL
    int64_t older;          // --older-than, ms, or 0
    int64_t timeout;        // --timeout, ms
    const char *values[16]; // every option's value, by the command's names
} s_line_t;

//  Reads argv as names say (the last three are where, older-than and
//  timeout); false (having said why) when it is wrong or has fewer than
//  min or more than max words.
static bool
s_read (s_line_t *line, int argc, char **argv, const char **names, int min, int max)
{
    line->command = argv[0];
    if (argc > ARGS_MAX) {
        fprintf (stderr, "zflow %s: at most %d ids at once\n", argv[0], ZF_IDS_MAX);
        return false;
    }
    line->nargs = zf_tools_options (argc, argv, names, line->values, line->args, line->usage);
    if (line->nargs < 0)
        return false;
    int n = 0;
    while (names[n])
        n++;
    line->where = line->values[n - 3];
    line->older = zf_tools_duration (argv[0], line->values[n - 2], 0);
    line->timeout = zf_tools_duration (argv[0], line->values[n - 1], 5000);
    if (line->older < 0 || line->timeout < 0)
        return false;
    if (line->nargs < min || line->nargs > max) {
        fprintf (stderr, "usage: zflow %s\n", line->usage);
        return false;
    }
    if (line->where && !strchr (line->where, '=')) {
        fprintf (stderr, "zflow %s: --where '%s' is not HEADER=VALUE\n", argv[0], line->where);
        return false;
    }
    zf_error_t err;
    if (zf_parse_endpoints (line->args[0], &err)) {
        fprintf (stderr, "zflow %s: %s\n", argv[0], err.text);
        return false;
    }
    return true;
}

//  Asks the broker at line's endpoint to do control. The answer, or NULL
//  having said why (status: what to exit with).
static zf_result_t *
s_ask (s_line_t *line, zf_control_t *control, int *status)
{
    control->where = line->where;
    control->older_ms = line->older;
    char name[64];
    snprintf (name, sizeof name, "zflow-%s", line->command);
    zf_client_t *client = zf_client_new (line->args[0], name, NULL, 0);
    if (!client) {
        fprintf (stderr, "zflow %s: %s\n", line->command, zf_client_last_error (NULL));
        *status = ZF_EXIT_USAGE;
        return NULL;
    }
    zf_result_t *result = zf_client_control (client, control, (int) line->timeout);
    if (!result) {
        const char *why = zf_client_last_error (client);
        fprintf (stderr, "zflow %s: %s\n", line->command,
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

int
zf_cmd_dead (int argc, char **argv)
{
    static const char *names[] = { "limit", "!json", "where", "older-than", "timeout", NULL };
    s_line_t line = { .usage = "dead ENDPOINT [QUEUE] [--limit N] [--where HEADER=VALUE] "
                               "[--older-than D] [--json] [--timeout D]" };
    if (!s_read (&line, argc, argv, names, 1, 2))
        return ZF_EXIT_USAGE;
    char *end = NULL;
    long limit = line.values[0] ? strtol (line.values[0], &end, 10) : 100;
    if (line.values[0] && (*end || limit < 1 || limit > ZF_BATCH_MAX)) {
        fprintf (stderr, "zflow dead: --limit %s: a number from 1 to %d\n", line.values[0],
                 ZF_BATCH_MAX);
        return ZF_EXIT_USAGE;
    }
    char queue[ZF_NAME_MAX + 8] = "";
    if (line.nargs == 2)
        s_dead_queue (line.args[1], queue, sizeof queue);
    zf_control_t control = { .op = "dead", .queue = queue, .limit = (uint32_t) limit };
    int status = ZF_EXIT_OK;
    zf_result_t *listing = s_ask (&line, &control, &status);
    if (!listing)
        return status;
    if (line.values[1]) {
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

//  The ids of line's words from the third on into ids; -1 (having said
//  why) if one is not an id.
static int
s_ids (s_line_t *line, zf_id_t *ids)
{
    if (line->nargs - 2 > ZF_IDS_MAX) {
        fprintf (stderr, "zflow %s: %d ids: at most %d at once\n", line->command, line->nargs - 2,
                 ZF_IDS_MAX);
        return -1;
    }
    for (int i = 2; i < line->nargs; i++)
        if (zf_tasks_id_arg (line->command, line->args[i], &ids[i - 2]))
            return -1;
    return 0;
}

int
zf_cmd_requeue (int argc, char **argv)
{
    static const char *names[] = { "!all", "where", "older-than", "timeout", NULL };
    s_line_t line = { .usage = "requeue ENDPOINT QUEUE.dead [ID ...] [--all] "
                               "[--where HEADER=VALUE] [--older-than D] [--timeout D]" };
    if (!s_read (&line, argc, argv, names, 2, ARGS_MAX))
        return ZF_EXIT_USAGE;
    bool all = line.values[0] != NULL;
    int nids = line.nargs - 2;
    if (!nids && !all && !line.where && !line.older) {
        fprintf (stderr, "zflow requeue: name the letters (their ids), or choose them with "
                         "--where or --older-than, or take them all with --all\n");
        return ZF_EXIT_USAGE;
    }
    if (nids && all) {
        fprintf (stderr, "zflow requeue: ids and --all together: which is meant?\n");
        return ZF_EXIT_USAGE;
    }
    zf_id_t ids[ZF_IDS_MAX];
    if (s_ids (&line, ids))
        return ZF_EXIT_USAGE;
    char queue[ZF_NAME_MAX + 8];
    s_dead_queue (line.args[1], queue, sizeof queue);
    zf_control_t control = {
        .op = "requeue", .queue = queue, .ids = nids ? ids : NULL, .nids = (size_t) nids
    };
    int status = ZF_EXIT_OK;
    zf_result_t *done = s_ask (&line, &control, &status);
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

int
zf_cmd_purge (int argc, char **argv)
{
    static const char *names[] = { "!yes", "where", "older-than", "timeout", NULL };
    s_line_t line = { .usage = "purge ENDPOINT QUEUE [ID ...] [--where HEADER=VALUE] "
                               "[--older-than D] [--yes] [--timeout D]" };
    if (!s_read (&line, argc, argv, names, 2, ARGS_MAX))
        return ZF_EXIT_USAGE;
    int nids = line.nargs - 2;
    zf_id_t ids[ZF_IDS_MAX];
    if (s_ids (&line, ids))
        return ZF_EXIT_USAGE;
    // Dropping work cannot be undone: a person at a terminal says so.
    if (!line.values[0] && isatty (0)) {
        fprintf (stderr,
                 "zflow purge: drop %s waiting in %s%s? Their lineages end cancelled. "
                 "Type yes: ",
                 nids ? "the items named" : "every item", line.args[1],
                 line.where || line.older ? " (of those chosen)" : "");
        char answer[16] = "";
        if (!fgets (answer, sizeof answer, stdin) || strcmp (answer, "yes\n") != 0) {
            fprintf (stderr, "zflow purge: nothing dropped\n");
            return ZF_EXIT_FAILED;
        }
    }
    zf_control_t control = {
        .op = "purge", .queue = line.args[1], .ids = nids ? ids : NULL, .nids = (size_t) nids
    };
    int status = ZF_EXIT_OK;
    zf_result_t *done = s_ask (&line, &control, &status);
    if (!done)
        return status;
    printf ("purged %llu from %s\n", (unsigned long long) zf_result_total (done), line.args[1]);
    if (*zf_result_reason (done))
        fprintf (stderr, "zflow purge: %s\n", zf_result_reason (done));
    zf_result_destroy (&done);
    return status;
}

//  zflow pause and zflow resume.
static int
s_pause (int argc, char **argv, bool pause)
{
    static const char *names[] = { "where", "older-than", "timeout", NULL };
    s_line_t line = { .usage = pause ? "pause ENDPOINT QUEUE [--timeout D]"
                                     : "resume ENDPOINT QUEUE [--timeout D]" };
    if (!s_read (&line, argc, argv, names, 2, 2))
        return ZF_EXIT_USAGE;
    if (line.where || line.older) {
        fprintf (stderr,
                 "zflow %s: a whole queue is %s; --where and --older-than are for "
                 "requeue and purge\n",
                 argv[0], pause ? "paused" : "resumed");
        return ZF_EXIT_USAGE;
    }
    zf_control_t control = { .op = pause ? "pause" : "resume", .queue = line.args[1] };
    int status = ZF_EXIT_OK;
    zf_result_t *done = s_ask (&line, &control, &status);
    if (!done)
        return status;
    printf ("%s %s (items stored: %llu)\n", line.args[1], pause ? "paused" : "resumed",
            (unsigned long long) zf_result_total (done));
    zf_result_destroy (&done);
    return status;
}

int
zf_cmd_pause (int argc, char **argv)
{
    return s_pause (argc, argv, true);
}

int
zf_cmd_resume (int argc, char **argv)
{
    return s_pause (argc, argv, false);
}

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

int
zf_cmd_schedule (int argc, char **argv)
{
    static const char *names[] = {
        "cron",          "every",         "at",        "tz",           "queue", "payload",
        "misfire-grace", "max-instances", "!coalesce", "!no-coalesce", "!json", "where",
        "older-than",    "timeout",       NULL
    };
    s_line_t line = { .usage = "schedule ENDPOINT add NAME --cron EXPR|--every D|--at TIME "
                               "--queue Q [--tz ZONE] [--payload JSON] [--misfire-grace D] "
                               "[--no-coalesce] [--max-instances N]\n"
                               "       zflow schedule ENDPOINT list [--json]\n"
                               "       zflow schedule ENDPOINT pause|resume|remove|run NAME" };
    if (!s_read (&line, argc, argv, names, 2, 3))
        return ZF_EXIT_USAGE;
    const char **v = line.values;
    const char *verb = line.args[1];
    static const struct {
        const char *verb, *op;
    } verbs[] = { { "list", "schedules" },         { "add", "schedule-add" },
                  { "remove", "schedule-remove" }, { "pause", "schedule-pause" },
                  { "resume", "schedule-resume" }, { "run", "schedule-run" } };
    const char *op = NULL;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (streq (verb, verbs[i].verb))
            op = verbs[i].op;
    if (!op || (streq (verb, "list") != (line.nargs == 2))) {
        fprintf (stderr, "usage: zflow %s\n", line.usage);
        return ZF_EXIT_USAGE;
    }
    bool adding = streq (verb, "add");
    for (int n = 0; n < 10 && !adding; n++) // the options of a schedule's spec
        if (v[n]) {
            fprintf (stderr, "zflow schedule %s: --%s is for add\n", verb,
                     names[n] + (names[n][0] == '!'));
            return ZF_EXIT_USAGE;
        }
    if (line.where || line.older) {
        fprintf (stderr, "zflow schedule: --where and --older-than are for requeue and purge\n");
        return ZF_EXIT_USAGE;
    }
    zf_schedule_spec_t spec = { .cron = v[0], .at = v[2], .tz = v[3] };
    msgpack_sbuffer payload;
    msgpack_sbuffer_init (&payload);
    int status = ZF_EXIT_USAGE;
    if (adding) {
        if ((v[0] != NULL) + (v[1] != NULL) + (v[2] != NULL) != 1 || !v[4]) {
            fprintf (stderr, "zflow schedule add: one of --cron, --every and --at, and "
                             "--queue\n");
            goto done;
        }
        zf_error_t err;
        if (v[0] && zf_cron_check (v[0], &err)) {
            fprintf (stderr, "zflow schedule add: --cron '%s': %s\n", v[0], err.text);
            goto done;
        }
        if (v[1] && (zf_parse_duration (v[1], &spec.every_ms, &err) || spec.every_ms <= 0)) {
            fprintf (stderr, "zflow schedule add: --every '%s': %s\n", v[1],
                     spec.every_ms <= 0 ? "more than 0" : err.text);
            goto done;
        }
        if (v[6] && (zf_parse_duration (v[6], &spec.misfire_grace_ms, &err))) {
            fprintf (stderr, "zflow schedule add: --misfire-grace '%s': %s\n", v[6], err.text);
            goto done;
        }
        char *end = NULL;
        long instances = v[7] ? strtol (v[7], &end, 10) : 0;
        if (v[7] && (*end || instances < 1 || instances > 100000)) {
            fprintf (stderr, "zflow schedule add: --max-instances %s: from 1 to 100000\n", v[7]);
            goto done;
        }
        spec.max_instances = (uint32_t) instances;
        spec.no_coalesce = v[9] != NULL;
        if (v[5]) {
            msgpack_packer pk;
            msgpack_packer_init (&pk, &payload, msgpack_sbuffer_write);
            if (zf_json_to_msgpack (v[5], strlen (v[5]), &pk, &err)) {
                fprintf (stderr, "zflow schedule add: --payload is not JSON: %s\n", err.text);
                goto done;
            }
            spec.payload = payload.data;
            spec.payload_size = payload.size;
        }
    }
    zf_control_t control = { .op = op,
                             .queue = adding ? v[4] : "",
                             .name = line.nargs == 3 ? line.args[2] : NULL,
                             .schedule = adding ? &spec : NULL };
    status = ZF_EXIT_OK;
    zf_result_t *answer = s_ask (&line, &control, &status);
    if (answer) {
        s_print_schedules (answer, v[10] != NULL);
        if (streq (verb, "remove"))
            fprintf (stderr, "zflow schedule: %s removed\n", line.args[2]);
        zf_result_destroy (&answer);
    }
done:
    msgpack_sbuffer_destroy (&payload);
    return status;
}

int
zf_cmd_reload (int argc, char **argv)
{
    static const char *names[] = { "where", "older-than", "timeout", NULL };
    s_line_t line = { .usage = "reload ENDPOINT [--timeout D]" };
    if (!s_read (&line, argc, argv, names, 1, 1))
        return ZF_EXIT_USAGE;
    zf_control_t control = { .op = "reload", .queue = "" };
    int status = ZF_EXIT_OK;
    zf_result_t *done = s_ask (&line, &control, &status);
    if (!done)
        return status;
    printf ("reload asked of %s: the run (or broker) reads its pipeline file again, and its "
            "log says what changed, or what is wrong in the file\n",
            line.args[0]);
    zf_result_destroy (&done);
    return status;
}
