/*  zf_tasks: zflow put, result and cancel. See zf_tasks.h. */
#include "zf_tasks.h"
#include "zf_cmd.h"
#include "zf_cron.h"
#include "zf_error.h"
#include "zf_json.h"
#include "zf_proto.h"
#include "zf_tools.h"
#include "zf_value.h"
#include "zflow.h"

#include <czmq.h>
#include <msgpack.h>

//  --at into opts. Returns 0, or -1 with a message.
static int
s_at (const char *command, const char *at, zf_put_opts_t *opts)
{
    zf_error_t err;
    zf_tz_t *utc = zf_tz_load ("UTC", &err);
    int rc = utc ? zf_cron_parse_time (utc, at, &opts->not_before, &err) : -1;
    zf_tz_destroy (&utc);
    if (rc)
        fprintf (stderr, "zflow %s: --at: %s\n", command, err.text);
    return rc;
}

//  --headers, a JSON object of strings, packed into buffer for opts.
//  Returns 0, or -1 with a message.
static int
s_headers (const char *command, const char *json, msgpack_sbuffer *buffer, zf_put_opts_t *opts)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    zf_error_t err;
    if (zf_json_to_msgpack (json, strlen (json), &pk, &err) ||
        zf_proto_check_headers (buffer->data, buffer->size, &err)) {
        fprintf (stderr, "zflow %s: --headers: %s (give a JSON object of strings)\n", command,
                 err.text);
        return -1;
    }
    opts->headers = buffer->data;
    opts->headers_size = buffer->size;
    return 0;
}

//  The puts of one zflow put: their ids are printed once the broker
//  confirmed them, so that no id stands for an item that was not stored.
typedef struct {
    zf_client_t *client;       // the session
    const char *endpoint;      // the broker, for what is said
    const char *queue;         // where the items go
    const zf_put_opts_t *opts; // their options
    int64_t timeout;           // ms a confirm may take
    zchunk_t *ids;             // the ids put and not yet confirmed
    int good;                  // items put
    bool failed;               // the broker did not confirm some: nothing more is put
} s_puts_t;

#define CONFIRM_EVERY 1024 // ids held before the broker is asked to confirm them

//  What was put is confirmed (its ids printed), or said why not.
static void
s_confirm (s_puts_t *puts)
{
    if (puts->failed || zchunk_size (puts->ids) == 0)
        return;
    if (zf_client_flush (puts->client, (int) puts->timeout) == 0) {
        size_t count = zchunk_size (puts->ids) / ZF_ID_SIZE;
        for (size_t i = 0; i < count; i++) {
            char hex[ZF_ID_HEX];
            printf ("%s\n",
                    zf_id_format ((zf_id_t *) (zchunk_data (puts->ids) + i * ZF_ID_SIZE), hex));
        }
        zchunk_set (puts->ids, NULL, 0);
        return;
    }
    const char *error = zf_client_last_error (puts->client);
    if (strncmp (error, "refused: ", 9) == 0)
        fprintf (stderr, "zflow put: the broker refused: %s\n", error + 9);
    else
        fprintf (stderr, "zflow put: %s\n", error);
    puts->failed = true;
}

//  Packs one JSON text as a body and puts it. Returns 0, or -1 with the
//  JSON error printed for where (an argument or a line).
static int
s_put_json (s_puts_t *puts, const char *text, size_t len, const char *where)
{
    if (puts->failed)
        return 0; // said already
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    zf_error_t err;
    int rc = zf_json_to_msgpack (text, len, &pk, &err);
    if (rc)
        fprintf (stderr, "zflow put: %s: bad JSON: %s\n", where, err.text);
    else {
        zf_id_t id;
        rc = zf_client_put_with (puts->client, puts->queue, buffer.data, buffer.size, puts->opts,
                                 &id);
        if (rc == 0) {
            zchunk_extend (puts->ids, id.bytes, ZF_ID_SIZE);
            puts->good++;
            if (zchunk_size (puts->ids) >= CONFIRM_EVERY * ZF_ID_SIZE)
                s_confirm (puts);
        }
        else
            fprintf (stderr, "zflow put: %s: %s\n", where, zf_client_last_error (puts->client));
    }
    msgpack_sbuffer_destroy (&buffer);
    return rc;
}

typedef struct {
    int64_t timeout;     // ms the broker may take to confirm
    int64_t delay;       // ms before the items are delivered
    const char *at;      // the time they are delivered, or NULL
    int64_t priority;    // 0..9
    const char *headers; // a JSON object of strings, or NULL
} s_put_options_t;

static const zf_key_t s_put_options[] = {
    { .name = "delay",
      .help = "deliver the items this long from now",
      ZF_FIELD (ZF_KEY_DURATION, s_put_options_t, delay) },
    { .name = "at",
      .shown = "TIME",
      .help = "deliver them at this time, ISO 8601 (2026-12-24T18:00:00Z)",
      ZF_FIELD (ZF_KEY_STRING, s_put_options_t, at) },
    { .name = "priority",
      .fallback = "0",
      .min = 0,
      .max = 9,
      .help = "higher first, 0 to 9",
      ZF_FIELD (ZF_KEY_INT, s_put_options_t, priority) },
    { .name = "headers",
      .shown = "JSON",
      .help = "headers of every item, a JSON object of strings",
      ZF_FIELD (ZF_KEY_STRING, s_put_options_t, headers) },
    { .name = "timeout",
      .fallback = "30s",
      .min = 1,
      .max = INT32_MAX,
      .help = "how long the broker may take to confirm them",
      ZF_FIELD (ZF_KEY_DURATION, s_put_options_t, timeout) },
    { NULL }
};

static int
s_put (const void *options, int argc, char **args)
{
    const s_put_options_t *o = (const s_put_options_t *) options;
    zf_put_opts_t opts = { .delay_ms = o->delay, .priority = (int) o->priority };
    // The broker gives up on a full queue before this waits no more, so
    // that its answer (which queue is full) comes within the timeout.
    opts.wait_ms = o->timeout > 2000 ? o->timeout - 1000 : o->timeout / 2 > 0 ? o->timeout / 2 : 1;
    if (o->delay && o->at) {
        fprintf (stderr, "zflow put: give --delay or --at, not both\n");
        return ZF_EXIT_USAGE;
    }
    zf_error_t err;
    if (zf_parse_endpoints (args[0], &err)) {
        fprintf (stderr, "zflow put: %s\n", err.text);
        return ZF_EXIT_USAGE;
    }
    if (o->at && s_at ("put", o->at, &opts))
        return ZF_EXIT_USAGE;
    msgpack_sbuffer headers;
    msgpack_sbuffer_init (&headers);
    zf_client_t *client = NULL;
    int status = ZF_EXIT_USAGE;
    if (o->headers && s_headers ("put", o->headers, &headers, &opts))
        goto done;
    client = zf_client_new (args[0], "zflow-put", NULL, 0);
    if (!client) {
        fprintf (stderr, "zflow put: %s\n", zf_client_last_error (NULL));
        goto done;
    }
    s_puts_t puts = { .client = client,
                      .endpoint = args[0],
                      .queue = args[1],
                      .opts = &opts,
                      .timeout = o->timeout,
                      .ids = zchunk_new (NULL, CONFIRM_EVERY * ZF_ID_SIZE) };
    int bad = 0;
    if (argc > 2)
        for (int i = 2; i < argc; i++) {
            char where[32];
            snprintf (where, sizeof where, "argument %d", i - 1);
            bad += s_put_json (&puts, args[i], strlen (args[i]), where) != 0;
        }
    else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        for (int number = 1; (len = getline (&line, &cap, stdin)) >= 0; number++) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = 0;
            if (len == 0)
                continue; // blank lines separate nothing
            char where[32];
            snprintf (where, sizeof where, "stdin:%d", number);
            bad += s_put_json (&puts, line, (size_t) len, where) != 0;
        }
        free (line);
    }
    s_confirm (&puts);
    status = puts.failed ? ZF_EXIT_FAILED : bad ? ZF_EXIT_USAGE : ZF_EXIT_OK;
    zchunk_destroy (&puts.ids);
done:
    zf_client_destroy (&client);
    msgpack_sbuffer_destroy (&headers);
    return status;
}

const zf_cmd_t zf_cmd_put = {
    .name = "put",
    .args = "ENDPOINT QUEUE [JSON ...]",
    .min_args = 2,
    .max_args = -1,
    .summary = "put items (JSON; stdin lines if none); print their ids once confirmed",
    .help = "Each JSON word is an item's body; with none, each line of stdin is one (blank\n"
            "lines skipped). An id is printed only once the broker confirmed the item.",
    .exits = "0 every item was put and confirmed\n"
             "1 the broker did not confirm some in time, or refused them (a full queue)\n"
             "2 a usage error, or an item that is not JSON (the others are put)",
    .options = s_put_options,
    .options_size = sizeof (s_put_options_t),
    .run = s_put,
};

int
zf_tasks_id_arg (const char *command, const char *text, zf_id_t *id)
{
    if (zf_id_parse (id, text) == 0 && !zf_id_is_zero (id))
        return 0;
    fprintf (stderr, "zflow %s: '%s' is not an id (32 hex digits, not all zero)\n", command, text);
    return -1;
}

//  A JSON string of text, escaped, into buffer.
static void
s_json_string (zchunk_t *buffer, const char *text)
{
    zchunk_extend (buffer, "\"", 1);
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        char escaped[8];
        if (*p == '"' || *p == '\\')
            snprintf (escaped, sizeof escaped, "\\%c", *p);
        else if (*p < 0x20)
            snprintf (escaped, sizeof escaped, "\\u%04x", *p);
        else
            snprintf (escaped, sizeof escaped, "%c", *p);
        zchunk_extend (buffer, escaped, strlen (escaped));
    }
    zchunk_extend (buffer, "\"", 1);
}

//  {"id", "state", and for a failure "error", "queue", "attempts" (for an
//  item failed on a queue) and its "detail" when it has one (for a task
//  cancelled, "error" says why); while a worker reports it, "progress" (a
//  fraction: 0.42) and its "note"; into out, the map left open.
static void
s_state_json (zchunk_t *out, zf_result_t *result, const char *hex)
{
    zchunk_extend (out, "{\"id\":", 6);
    s_json_string (out, hex);
    zchunk_extend (out, ",\"state\":", 9);
    s_json_string (out, zf_result_state (result));
    if (*zf_result_reason (result) || streq (zf_result_state (result), "dead")) {
        zchunk_extend (out, ",\"error\":", 9);
        s_json_string (out, zf_result_reason (result));
        if (*zf_result_queue (result)) {
            zchunk_extend (out, ",\"queue\":", 9);
            s_json_string (out, zf_result_queue (result));
            char attempts[32];
            snprintf (attempts, sizeof attempts, ",\"attempts\":%u", zf_result_attempts (result));
            zchunk_extend (out, attempts, strlen (attempts));
        }
        if (*zf_result_detail (result)) {
            zchunk_extend (out, ",\"detail\":", 10);
            s_json_string (out, zf_result_detail (result));
        }
    }
    if (zf_result_progress (result) || *zf_result_note (result)) {
        char progress[48];
        snprintf (progress, sizeof progress, ",\"progress\":%g",
                  zf_result_progress (result) / 1000.0);
        zchunk_extend (out, progress, strlen (progress));
        if (*zf_result_note (result)) {
            zchunk_extend (out, ",\"note\":", 8);
            s_json_string (out, zf_result_note (result));
        }
    }
}

//  The text of out, which it frees.
static char *
s_text (zchunk_t **out_p)
{
    zchunk_extend (*out_p, "", 1); // its NUL
    char *text = strdup ((const char *) zchunk_data (*out_p));
    zchunk_destroy (out_p);
    return text;
}

char *
zf_tasks_item_json (zf_result_t *item, const char *hex)
{
    zchunk_t *out = zchunk_new (NULL, 256);
    s_state_json (out, item, hex);
    zchunk_extend (out, "}\n", 2);
    return s_text (&out);
}

char *
zf_tasks_result_json (zf_result_t *result, const char *hex)
{
    zchunk_t *out = zchunk_new (NULL, 256);
    s_state_json (out, result, hex);
    zchunk_extend (out, ",\"results\":[", 12);
    for (size_t i = 0; i < zf_result_count (result); i++) {
        size_t size;
        const void *body = zf_result_body (result, i, &size);
        zf_error_t err;
        char *json = zf_msgpack_to_json (body, size, &err);
        if (i)
            zchunk_extend (out, ",", 1);
        if (json)
            zchunk_extend (out, json, strlen (json));
        else
            zchunk_extend (out, "null", 4);
        free (json);
    }
    zchunk_extend (out, "]}", 2);
    return s_text (&out);
}

typedef struct {
    int64_t wait;    // ms to wait for the lineage to end
    int64_t timeout; // ms the broker may take to answer
} s_result_options_t;

static const zf_key_t s_result_options[] = {
    { .name = "wait",
      .fallback = "0",
      .min = 0,
      .max = INT32_MAX,
      .help = "wait this long for the item's lineage to end",
      ZF_FIELD (ZF_KEY_DURATION, s_result_options_t, wait) },
    { .name = "timeout",
      .fallback = "5s",
      .min = 1,
      .max = INT32_MAX,
      .help = "how long the broker may take to answer, beyond the wait",
      ZF_FIELD (ZF_KEY_DURATION, s_result_options_t, timeout) },
    { NULL }
};

static int
s_result (const void *options, int argc, char **args)
{
    (void) argc;
    const s_result_options_t *o = (const s_result_options_t *) options;
    zf_id_t id;
    zf_error_t err;
    if (zf_parse_endpoints (args[0], &err)) {
        fprintf (stderr, "zflow result: %s\n", err.text);
        return ZF_EXIT_USAGE;
    }
    if (zf_tasks_id_arg ("result", args[1], &id))
        return ZF_EXIT_USAGE;
    zf_client_t *client = zf_client_new (args[0], "zflow-result", NULL, 0);
    if (!client) {
        fprintf (stderr, "zflow result: %s\n", zf_client_last_error (NULL));
        return ZF_EXIT_USAGE;
    }
    zf_result_t *result = zf_client_result (client, &id, (int) o->wait, (int) o->timeout);
    int status;
    if (!result) {
        fprintf (stderr, "zflow result: no answer from %s within %lld ms\n", args[0],
                 (long long) (o->wait + o->timeout));
        status = ZF_EXIT_FAILED;
    }
    else {
        char *json = zf_tasks_result_json (result, args[1]);
        printf ("%s\n", json);
        free (json);
        if (streq (zf_result_state (result), "unknown")) {
            fprintf (stderr,
                     "zflow result: %s is not known to the broker (never put, or "
                     "forgotten: results are kept result-ttl after the end)\n",
                     args[1]);
            status = ZF_EXIT_USAGE;
        }
        else if (!zf_result_over (result)) {
            if (o->wait)
                fprintf (stderr, "zflow result: %s is still %s after %lld ms\n", args[1],
                         zf_result_state (result), (long long) o->wait);
            status = ZF_EXIT_FAILED;
        }
        else
            status = ZF_EXIT_OK;
    }
    zf_result_destroy (&result);
    zf_client_destroy (&client);
    return status;
}

const zf_cmd_t zf_cmd_result = {
    .name = "result",
    .args = "ENDPOINT ID",
    .min_args = 2,
    .max_args = 2,
    .summary = "a root item's state and results, as JSON",
    .help = "Prints {\"id\", \"state\", \"results\": [...]}, with \"error\", \"queue\" and\n"
            "\"attempts\" for an item that failed, and \"progress\" while a worker reports it.",
    .exits = "0 the item's lineage is over (done, dead or cancelled)\n"
             "1 it is not over yet (after --wait), or the broker did not answer\n"
             "2 a usage error, or an id the broker does not know",
    .options = s_result_options,
    .options_size = sizeof (s_result_options_t),
    .run = s_result,
};

typedef struct {
    const char *reason; // why, kept with the cancelled items
    int64_t timeout;    // ms the broker may take to answer
} s_cancel_options_t;

static const zf_key_t s_cancel_options[] = {
    { .name = "reason",
      .fallback = "cancelled by zflow cancel",
      .help = "why, kept as the cancelled items' error",
      ZF_FIELD (ZF_KEY_STRING, s_cancel_options_t, reason) },
    { .name = "timeout",
      .fallback = "5s",
      .min = 1,
      .max = INT32_MAX,
      .help = "how long the broker may take to answer",
      ZF_FIELD (ZF_KEY_DURATION, s_cancel_options_t, timeout) },
    { NULL }
};

static int
s_cancel (const void *options, int argc, char **args)
{
    (void) argc;
    const s_cancel_options_t *o = (const s_cancel_options_t *) options;
    zf_id_t id;
    zf_error_t err;
    if (zf_parse_endpoints (args[0], &err)) {
        fprintf (stderr, "zflow cancel: %s\n", err.text);
        return ZF_EXIT_USAGE;
    }
    if (zf_tasks_id_arg ("cancel", args[1], &id))
        return ZF_EXIT_USAGE;
    zf_client_t *client = zf_client_new (args[0], "zflow-cancel", NULL, 0);
    if (!client) {
        fprintf (stderr, "zflow cancel: %s\n", zf_client_last_error (NULL));
        return ZF_EXIT_USAGE;
    }
    // The answer to a STATUS after the CANCEL, on the same session, says it
    // was handled (the broker takes a session's messages in order).
    zf_client_cancel (client, &id, o->reason);
    char state[32];
    int status = ZF_EXIT_OK;
    if (zf_client_status (client, &id, state, sizeof state, (int) o->timeout)) {
        fprintf (stderr, "zflow cancel: no answer from %s within %lld ms\n", args[0],
                 (long long) o->timeout);
        status = ZF_EXIT_FAILED;
    }
    else if (streq (state, "unknown")) {
        fprintf (stderr, "zflow cancel: %s is not known to the broker\n", args[1]);
        status = ZF_EXIT_USAGE;
    }
    else
        printf ("%s %s\n", args[1], state);
    zf_client_destroy (&client);
    return status;
}

const zf_cmd_t zf_cmd_cancel = {
    .name = "cancel",
    .args = "ENDPOINT ID",
    .min_args = 2,
    .max_args = 2,
    .summary = "cancel what is left of a root item's lineage; print its state",
    .help = "Items of the lineage still waiting are dropped; a running task's later\n"
            "outputs are dropped; the lineage's result reads cancelled.",
    .exits = "0 cancelled (or already over: its state is printed)\n"
             "1 the broker did not answer in time\n"
             "2 a usage error, or an id the broker does not know",
    .options = s_cancel_options,
    .options_size = sizeof (s_cancel_options_t),
    .run = s_cancel,
};
