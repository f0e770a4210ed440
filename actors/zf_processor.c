/*  zf_processor: user logic per item, in any language: a coprocess that
    speaks JSON lines.

    Each worker runs `concurrency` copies of `command` (through /bin/sh, in
    the config file's folder), and gives each one item at a time. For an
    item it writes one line to the coprocess's stdin: the item's body as
    JSON. The coprocess answers on stdout with zero or more lines, each a
    JSON value to pass on to the output queue, then one empty line that
    ends the item. A line starting with '!' instead reports a failure (the
    rest of the line is the reason): the outputs of that item are dropped,
    and the item is retried (on-error = retry) or passed on as
    {"error": REASON, "item": BODY} (on-error = emit). What it writes on
    stderr goes to the actor's log, a whole line at a time, each prefixed
    with the coprocess's number ([0], [1], ...).

    An item that takes longer than `timeout`, or whose coprocess exits, is
    retried, and the coprocess is started again: after 100 ms, the wait
    doubling up to 5 s while it keeps ending before it answers (a program
    that fails as it starts does not take the CPU with restarts). The log
    says how each one ended, with the last lines of its stderr, and its
    items fail with that reason.

    With `protocol = envelope` the line is the item's envelope instead,
    {"id": HEX, "attempt": N, "queue": Q, "headers": {...}, "body": BODY},
    so that a program can tag, log and deduplicate; outputs are the same.

    A processor in Python:

        import json, sys
        for line in sys.stdin:
            page = json.loads(line)
            print(json.dumps({"url": page["url"], "size": len(page["body"])}))
            print(flush=True)                  # the empty line: item done

    The same protocol in C is pipelines/custom/wordcount.c; docs/processor.md
    describes it in full.

    With `plugin = PATH.so` the worker instead loads a shared library and
    calls its zflow_process for each item (include/zflow_plugin.h).

    With `group = true`, the outputs of one item form a gather group: the
    group's id is the item's id, and a gather downstream collects them back
    into one list (one URL fanned out into its pages, gathered again).
*/
#include "zf_actor.h"
#include "zf_json.h"
#include "zf_kinds.h"
#include "zf_mp.h"
#include "zf_value.h"
#include "zflow.h"
#include "zflow_plugin.h"

#include <sys/prctl.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_CURVE,
    ZF_KEY_INPUT,
    ZF_KEY_FLOW,
    ZF_KEY_OUTPUT,
    ZF_KEY_WORKERS,
    { .name = "concurrency",
      ZF_FIELD (ZF_KEY_INT, zf_processor_settings_t, concurrency),
      .fallback = "1",
      .help = "items each worker holds at once (a plugin worker at least 256)",
      .min = 1,
      .max = 100000 },
    { .name = "command",
      ZF_FIELD (ZF_KEY_STRING, zf_processor_settings_t, command),
      .help = "a program fed one JSON line per item (give this or plugin)",
      .flags = ZF_KEY_PATH },
    { .name = "plugin",
      ZF_FIELD (ZF_KEY_STRING, zf_processor_settings_t, plugin),
      .help = "a shared library exporting zflow_process (or command)",
      .flags = ZF_KEY_PATH },
    { .name = "timeout",
      ZF_FIELD (ZF_KEY_DURATION, zf_processor_settings_t, timeout),
      .fallback = "30s",
      .help = "time allowed per item",
      .min = 1,
      .max = 86400000 },
    { .name = "on-error",
      ZF_FIELD (ZF_KEY_ENUM, zf_processor_settings_t, on_error),
      .fallback = "retry",
      .help = "a failed item is retried, or passed on as {error, item}",
      .choices = "retry|emit" },
    { .name = "group",
      ZF_FIELD (ZF_KEY_BOOL, zf_processor_settings_t, group),
      .fallback = "false",
      .help = "the outputs of each item form one group, for a gather" },
    { .name = "protocol",
      ZF_FIELD (ZF_KEY_ENUM, zf_processor_settings_t, protocol),
      .fallback = "lines",
      .help = "the command gets each item's body, or its envelope: {id, attempt, queue, "
              "headers, body}, or a line of envelopes (batch) answered by one line",
      .choices = "lines|envelope|batch" },
    { .name = "batch",
      ZF_FIELD (ZF_KEY_INT, zf_processor_settings_t, batch),
      .fallback = "64",
      .help = "protocol = batch: items at most in one line",
      .min = 1,
      .max = 1024 },
    { NULL },
};

#define PLUGIN_PREFETCH 256  // items a plugin worker holds at least
#define RESTART_FIRST   100  // ms before a coprocess that ended is started again
#define RESTART_MAX     5000 // ms at most, doubling while it ends without answering
#define TAIL_LINES      3    // lines of a coprocess's stderr kept to tell how it ended
#define TAIL_LINE       200  // bytes kept of each

//  One running copy of the command.
typedef struct {
    pid_t pid;           // the coprocess, or 0 when not running
    int in;              // its stdin (we write)
    int out;             // its stdout (we read)
    int err;             // its stderr (we read and pass on a whole line at a time), or -1
    char err_line[1024]; // a line of its stderr not yet ended
    size_t err_len;      // bytes in err_line
    int index;           // its number among the actor's coprocesses, for its stderr lines
    zf_item_t *item;     // the item it is on, or NULL when idle
    zf_item_t **batch;   // protocol = batch: the items of the line it is on
    int nbatch;          // entries in batch; 0 when idle
    int64_t deadline;    // when that item times out (ms, monotonic)
    char *error;         // the failure it reported for the item, or NULL
    int64_t retry_in;    // ms it asked the retry to wait at least (!retry-in), or 0
    zlistx_t *outputs;   // zchunk_t: msgpack outputs of the item so far
    zchunk_t *line;      // output not yet ended by a newline
    uint64_t lines;      // output lines of the item, for messages

    char tail[TAIL_LINES][TAIL_LINE]; // its last stderr lines since it started, oldest first
    int tail_count;                   // lines in tail
    int64_t start_at;                 // when it may start again (ms, monotonic); 0: at once
    int64_t backoff;                  // ms its next restart waits; 0 once it answers
} s_coproc_t;

//  A loaded plugin.
typedef struct {
    void *library;             // from dlopen
    zflow_process_fn *process; // its zflow_process
    zflow_close_fn *close;     // its zflow_close, or NULL
    void *state;               // what its zflow_open returned
    zlistx_t *outputs;         // zchunk_t: outputs of the item in hand
} s_plugin_t;

typedef struct {
    zf_actor_args_t *args; // pipeline, actor, broker
    zf_client_t *client;   // session with the broker
    const char *command;   // the program, or NULL for a plugin
    const char *output;    // the queue written
    bool emit_errors;      // on-error = emit
    bool group;            // an item's outputs form a group
    bool envelope;         // protocol = envelope or batch
    int batch;             // protocol = batch: items at most a line; 0 otherwise
    int64_t timeout;       // ms per item
    s_coproc_t *procs;     // the coprocesses
    int nprocs;            // entries in procs
    s_plugin_t plugin;     // the plugin, when there is one
} self_t;

//  Writes one line of proc's stderr to ours, prefixed with its number, in
//  one write (a pipe takes up to PIPE_BUF bytes whole), so that the lines
//  of several coprocesses and of the actor never mix mid-line.
static void
s_write_line (s_coproc_t *proc)
{
    char line[sizeof proc->err_line + 16];
    int len = snprintf (line, sizeof line, "[%d] %.*s\n", proc->index, (int) proc->err_len,
                        proc->err_line);
    ssize_t written = write (2, line, (size_t) len);
    (void) written; // stderr gone: nothing to tell it with
    // Kept too, for the line that says how it ended.
    if (proc->tail_count == TAIL_LINES) {
        memmove (proc->tail[0], proc->tail[1], (TAIL_LINES - 1) * sizeof proc->tail[0]);
        proc->tail_count--;
    }
    snprintf (proc->tail[proc->tail_count++], TAIL_LINE, "%.*s", (int) proc->err_len,
              proc->err_line);
    proc->err_len = 0;
}

//  Passes on the stderr lines of proc that have come; with all, also what
//  is left of a line.
static void
s_pass_stderr (s_coproc_t *proc, bool all)
{
    char data[4096];
    ssize_t n;
    while (proc->err >= 0 && (n = read (proc->err, data, sizeof data)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            if (data[i] != '\n')
                proc->err_line[proc->err_len++] = data[i];
            if (data[i] == '\n' || proc->err_len == sizeof proc->err_line - 1)
                s_write_line (proc);
        }
    if (all && proc->err_len)
        s_write_line (proc);
}

//  Ends proc: its process group, the shell and what it started (SIGKILL
//  to the shell alone left its program running, never waited for). Each
//  process is reaped here, the shell's children too (this process is
//  their subreaper, s_run_command): their memory and CPU time count in
//  this worker's, which zflow run reports.
static void
s_stop (s_coproc_t *proc)
{
    if (proc->pid > 0) {
        // Not reaped yet (s_restart only looks), the shell holds the
        // group's number: the signal reaches this group and no other.
        bool group = kill (-proc->pid, SIGKILL) == 0;
        if (!group)
            kill (proc->pid, SIGKILL); // it has no group of its own yet
        pid_t reaped, which = group ? -proc->pid : proc->pid;
        while ((reaped = waitpid (which, NULL, 0)) > 0 || (reaped < 0 && errno == EINTR))
            ;
    }
    if (proc->in >= 0)
        close (proc->in);
    if (proc->out >= 0)
        close (proc->out);
    s_pass_stderr (proc, true);
    if (proc->err >= 0)
        close (proc->err);
    proc->pid = 0;
    proc->in = proc->out = proc->err = -1;
    zchunk_set (proc->line, NULL, 0);
}

static int
s_start (self_t *self, s_coproc_t *proc)
{
    int to_child[2], from_child[2], err_child[2];
    if (pipe (to_child) || pipe (from_child) || pipe (err_child))
        return -1;
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        // The worker blocks SIGINT and SIGTERM (zf_actor_run): not the command.
        // In a process group of its own, a Ctrl-C at the terminal does not
        // reach it (the actor ends it: SIGKILL to the group, s_stop), and
        // it does not outlive the actor.
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        setpgid (0, 0);
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        dup2 (to_child[0], 0);
        dup2 (from_child[1], 1);
        dup2 (err_child[1], 2);
        close (to_child[0]);
        close (to_child[1]);
        close (from_child[0]);
        close (from_child[1]);
        close (err_child[0]);
        close (err_child[1]);
        if (chdir (self->args->pipeline->dir))
            _exit (126);
        execl ("/bin/sh", "sh", "-c", self->command, (char *) NULL);
        _exit (127);
    }
    setpgid (pid, pid); // as the child does: whichever comes first makes the group
    close (to_child[0]);
    close (from_child[1]);
    close (err_child[1]);
    fcntl (from_child[0], F_SETFL, O_NONBLOCK);
    fcntl (err_child[0], F_SETFL, O_NONBLOCK);
    fcntl (err_child[0], F_SETFD, FD_CLOEXEC);
    proc->err = err_child[0];
    fcntl (to_child[1], F_SETFD, FD_CLOEXEC);
    fcntl (from_child[0], F_SETFD, FD_CLOEXEC);
    proc->pid = pid;
    proc->in = to_child[1];
    proc->out = from_child[0];
    proc->tail_count = 0;
    return 0;
}

static void
s_discard_outputs (s_coproc_t *proc)
{
    zlistx_purge (proc->outputs);
    free (proc->error);
    proc->error = NULL;
    proc->retry_in = 0;
    proc->lines = 0;
}

//  The item failed (reason): retried, or passed on as an error item.
static void
s_fail_item (self_t *self, zf_item_t *item, const char *reason, int64_t retry_in)
{
    if (!self->emit_errors) {
        zf_client_nack (self->client, &item, reason, false,
                        (int) (retry_in > INT32_MAX ? INT32_MAX : retry_in));
        return;
    }
    size_t size;
    const void *body = zf_item_body (item, &size);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    zf_mp_pack_cstr (&pk, "error");
    zf_mp_pack_cstr (&pk, reason);
    zf_mp_pack_cstr (&pk, "item");
    msgpack_sbuffer_write (&buffer, (const char *) body, size);
    zf_client_emit (self->client, item, self->output, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    zf_client_ack (self->client, &item);
}

//  The item of proc failed.
static void
s_fail (self_t *self, s_coproc_t *proc, const char *reason)
{
    zf_item_t *item = proc->item;
    proc->item = NULL;
    int64_t retry_in = proc->retry_in;
    s_discard_outputs (proc);
    s_fail_item (self, item, reason, retry_in);
}

//  The item succeeded: its outputs (zchunk_t) go on, as one group if so
//  configured, then it is acked. Empties outputs.
static void
s_pass_on (self_t *self, zf_item_t *item, zlistx_t *outputs)
{
    zf_group_t group = { .id = *zf_item_id (item), .size = (uint32_t) zlistx_size (outputs) };
    zf_put_opts_t opts = { .group = self->group ? &group : NULL };
    for (zchunk_t *out = (zchunk_t *) zlistx_first (outputs); out;
         out = (zchunk_t *) zlistx_next (outputs), group.index++)
        zf_client_emit_with (self->client, item, self->output, zchunk_data (out), zchunk_size (out),
                             &opts);
    zlistx_purge (outputs);
    zf_client_ack (self->client, &item);
}

//  The coprocess is gone (dying: it closed its output or its input) or
//  stuck (why says how): fail its items, and start it again after a
//  backoff that grows while it keeps ending without an answer. One that
//  is dying is given 100 ms to exit by itself, so that the log and the
//  items' reason can say how it ended.
static void
s_restart (self_t *self, s_coproc_t *proc, const char *why, bool dying)
{
    // How it ended is looked at, not reaped (WNOWAIT): s_stop ends and
    // reaps its whole group.
    siginfo_t ended = { 0 };
    int tries = proc->pid > 0 ? (dying ? 50 : 1) : 0;
    for (int i = 0; i < tries && !ended.si_pid; i++) {
        waitid (P_PID, (id_t) proc->pid, &ended, WEXITED | WNOHANG | WNOWAIT);
        if (!ended.si_pid && i + 1 < tries)
            zclock_sleep (2);
    }
    s_stop (proc); // its last stderr lines to the log, and to its tail
    char how[128];
    if (ended.si_pid && ended.si_code == CLD_EXITED)
        snprintf (how, sizeof how, "exited with status %d", ended.si_status);
    else if (ended.si_pid)
        snprintf (how, sizeof how, "was killed by signal %d", ended.si_status);
    else
        snprintf (how, sizeof how, "%s", why);
    proc->backoff = proc->backoff ? proc->backoff * 2 : RESTART_FIRST;
    if (proc->backoff > RESTART_MAX)
        proc->backoff = RESTART_MAX;
    proc->start_at = zclock_mono () + proc->backoff;

    char tail[TAIL_LINES * (TAIL_LINE + 3)] = "";
    for (int i = 0; i < proc->tail_count; i++) {
        size_t used = strlen (tail);
        snprintf (tail + used, sizeof tail - used, "%s%s", i ? " | " : "", proc->tail[i]);
    }
    zsys_warning ("%s: `%s` %s; starting it again in %lld ms%s%s", self->args->conf->name,
                  self->command, how, (long long) proc->backoff,
                  proc->tail_count ? "; the end of its stderr: " : "", tail);
    // The reason says how it ended, and its last word when it had one.
    char reason[TAIL_LINE + 160];
    snprintf (reason, sizeof reason, "the command %s%s%s", how, proc->tail_count ? ": " : "",
              proc->tail_count ? proc->tail[proc->tail_count - 1] : "");
    if (proc->item)
        s_fail (self, proc, reason);
    for (int i = 0; i < proc->nbatch; i++)
        s_fail_item (self, proc->batch[i], reason, 0);
    proc->nbatch = 0;
    proc->tail_count = 0;
}

//  True if proc is working on an item or a line of them.
static bool
s_busy (const s_coproc_t *proc)
{
    return proc->item || proc->nbatch;
}

//  Fails the entry of item in a batch answer that mp is at, a map:
//  {"error": REASON, "retry_in": DURATION}; the other keys are skipped.
static void
s_batch_failure (self_t *self, zf_item_t *item, zf_mp_t *mp)
{
    uint32_t count = 0;
    char reason[1024] = "the command failed it";
    int64_t retry_in = 0;
    zf_mp_map (mp, &count, NULL);
    for (uint32_t k = 0; k < count; k++) {
        const char *text;
        uint32_t len;
        if (zf_mp_key_is (mp, "error") && zf_mp_str (mp, &text, &len, NULL) == 0)
            snprintf (reason, sizeof reason, "%.*s", (int) len, text);
        else if (zf_mp_key_is (mp, "retry_in") && zf_mp_str (mp, &text, &len, NULL) == 0) {
            char duration[32];
            zf_error_t err;
            snprintf (duration, sizeof duration, "%.*s", (int) (len < 31 ? len : 31), text);
            if (zf_parse_duration (duration, &retry_in, &err))
                retry_in = 0;
        }
        else
            zf_mp_skip_pair (mp);
    }
    s_fail_item (self, item, reason, retry_in);
}

//  Handles proc's answer to its line of items (protocol = batch): a JSON
//  array with one entry per item, in order: the array of its outputs, or
//  {"error": REASON} for one that failed. An answer of another shape
//  fails every item of the line, saying why.
static void
s_batch_line (self_t *self, s_coproc_t *proc, const char *text, size_t len)
{
    if (!proc->nbatch) {
        s_restart (self, proc, "wrote output with no items to work on", false);
        return;
    }
    if (len == 0)
        return; // an empty line between answers says nothing
    // It answers: a restart to come, if any, is a first one again.
    proc->backoff = 0;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    zf_error_t err;
    char why[400] = "";
    uint32_t count = 0;
    zf_mp_t mp;
    if (zf_json_to_msgpack (text, len, &pk, &err))
        snprintf (why, sizeof why, "its answer is not JSON: %s", err.text);
    else {
        zf_mp_init (&mp, buffer.data, buffer.size);
        if (zf_mp_peek (&mp) != ZF_MP_ARRAY || zf_mp_array (&mp, &count, NULL) ||
            count != (uint32_t) proc->nbatch)
            snprintf (why, sizeof why,
                      "its answer is not an array of %d entries, one for each item of the line",
                      proc->nbatch);
    }
    for (int i = 0; i < proc->nbatch; i++) {
        zf_item_t *item = proc->batch[i];
        zf_mp_type_t type = why[0] ? ZF_MP_NIL : zf_mp_peek (&mp);
        if (why[0])
            s_fail_item (self, item, why, 0);
        else if (type == ZF_MP_ARRAY) {
            uint32_t outputs = 0;
            zf_mp_array (&mp, &outputs, NULL);
            for (uint32_t o = 0; o < outputs; o++) {
                const uint8_t *at = mp.pos;
                zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL); // JSON made it: it is whole
                zlistx_add_end (proc->outputs, zchunk_new (at, (size_t) (mp.pos - at)));
            }
            s_pass_on (self, item, proc->outputs);
        }
        else if (type == ZF_MP_MAP)
            s_batch_failure (self, item, &mp);
        else {
            zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL);
            s_fail_item (self, item,
                         "its answer for the item is neither an array of outputs nor {\"error\"}",
                         0);
        }
    }
    if (why[0])
        zsys_warning ("%s: `%s`: %s", self->args->conf->name, self->command, why);
    proc->nbatch = 0;
    msgpack_sbuffer_destroy (&buffer);
}

//  Handles one line of output of proc's item.
static void
s_line (self_t *self, s_coproc_t *proc, const char *text, size_t len)
{
    if (self->batch) {
        s_batch_line (self, proc, text, len);
        return;
    }
    if (!proc->item) {
        s_restart (self, proc, "wrote output with no item to work on", false);
        return;
    }
    if (len == 0) {
        // The end of the item: its outputs go on, then it is acked.
        zf_item_t *item = proc->item;
        proc->item = NULL;
        proc->backoff = 0; // it answers: a restart to come is a first one again
        if (proc->error) {
            char *reason = proc->error;
            proc->error = NULL;
            proc->item = item;
            s_fail (self, proc, reason);
            free (reason);
            return;
        }
        s_pass_on (self, item, proc->outputs);
        s_discard_outputs (proc);
        return;
    }
    proc->lines++;
    if (proc->error)
        return; // failed already: the rest is not used
    if (len > 10 && memcmp (text, "!retry-in ", 10) == 0) {
        // !retry-in DURATION REASON: a failure whose retry waits that long.
        char duration[32];
        const char *space = memchr (text + 10, ' ', len - 10);
        size_t size = (size_t) ((space ? space : text + len) - (text + 10));
        zf_error_t err;
        snprintf (duration, sizeof duration, "%.*s", (int) (size < 31 ? size : 31), text + 10);
        if (size < 32 && zf_parse_duration (duration, &proc->retry_in, &err) == 0) {
            proc->error = space ? strndup (space + 1, (size_t) (text + len - space - 1))
                                : strdup ("asked to retry");
            return;
        }
    }
    if (text[0] == '!') {
        proc->error = strndup (text + 1, len - 1);
        return;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    zf_error_t err;
    if (zf_json_to_msgpack (text, len, &pk, &err)) {
        proc->error = zsys_sprintf ("output line %llu is not JSON: %s",
                                    (unsigned long long) proc->lines, err.text);
        zsys_warning ("%s: `%s`: %s", self->args->conf->name, self->command, proc->error);
    }
    else
        zlistx_add_end (proc->outputs, zchunk_new (buffer.data, buffer.size));
    msgpack_sbuffer_destroy (&buffer);
}

//  Reads what proc wrote and handles each whole line.
static void
s_read (self_t *self, s_coproc_t *proc)
{
    char data[65536];
    ssize_t n;
    while ((n = read (proc->out, data, sizeof data)) > 0) {
        size_t start = 0;
        for (size_t i = 0; i < (size_t) n; i++)
            if (data[i] == '\n') {
                zchunk_extend (proc->line, data + start, i - start);
                size_t len = zchunk_size (proc->line);
                if (len && ((char *) zchunk_data (proc->line))[len - 1] == '\r')
                    len--;
                // zchunk data is not NUL-terminated: copy for the parsers
                char *text = strndup ((char *) zchunk_data (proc->line), len);
                zchunk_set (proc->line, NULL, 0);
                s_line (self, proc, text, len);
                free (text);
                start = i + 1;
                if (proc->out < 0)
                    return; // restarted while handling the line
            }
        zchunk_extend (proc->line, data + start, (size_t) n - start);
    }
    if (n == 0)
        s_restart (self, proc, "closed its output", true);
}

//  Writes all of data to fd. Returns 0, or -1 if fd does not take it.
static int
s_write_all (int fd, const char *data, size_t left)
{
    while (left) {
        ssize_t n = write (fd, data, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        left -= (size_t) n;
    }
    return 0;
}

//  The JSON line of an item, without its newline: its body, or with
//  envelope {"id", "attempt", "queue", "headers", "body"}. NULL with err
//  filled if the body is not msgpack.
static char *
s_item_json (self_t *self, zf_item_t *item, zf_error_t *err)
{
    size_t size;
    const void *body = zf_item_body (item, &size);
    if (!self->envelope)
        return zf_msgpack_to_json (body, size, err);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    char hex[ZF_ID_HEX];
    size_t headers_size;
    const void *headers = zf_item_headers (item, &headers_size);
    msgpack_pack_map (&pk, 5);
    zf_mp_pack_cstr (&pk, "id");
    zf_mp_pack_cstr (&pk, zf_id_format (zf_item_id (item), hex));
    zf_mp_pack_cstr (&pk, "attempt");
    msgpack_pack_uint32 (&pk, zf_item_attempt (item));
    zf_mp_pack_cstr (&pk, "queue");
    zf_mp_pack_cstr (&pk, zf_item_queue (item));
    zf_mp_pack_cstr (&pk, "headers");
    if (headers)
        msgpack_sbuffer_write (&buffer, (const char *) headers, headers_size);
    else
        msgpack_pack_map (&pk, 0);
    zf_mp_pack_cstr (&pk, "body");
    msgpack_sbuffer_write (&buffer, (const char *) body, size);
    char *json = zf_msgpack_to_json (buffer.data, buffer.size, err);
    msgpack_sbuffer_destroy (&buffer);
    return json;
}

//  Gives proc an item: its body (or envelope) as one JSON line.
static void
s_give (self_t *self, s_coproc_t *proc, zf_item_t *item)
{
    if (zf_item_cancelled (item)) {
        zf_client_ack (self->client, &item); // its group failed: no need to run it
        return;
    }
    if (proc->pid == 0 && s_start (self, proc)) {
        zf_client_nack (self->client, &item, "cannot start the command", false, 1000);
        return;
    }
    zf_error_t err;
    char *json = s_item_json (self, item, &err);
    proc->item = item;
    proc->deadline = zclock_mono () + self->timeout;
    if (!json) {
        char reason[300];
        snprintf (reason, sizeof reason, "body is not msgpack: %s", err.text);
        s_fail (self, proc, reason);
        return;
    }
    size_t len = strlen (json);
    json[len] = '\n'; // in place of the NUL: one write for the line
    int rc = s_write_all (proc->in, json, len + 1);
    free (json);
    if (rc)
        s_restart (self, proc, "does not read its input", true);
}

//  Gives proc a line of items (protocol = batch): a JSON array of their
//  envelopes. Takes the items.
static void
s_give_batch (self_t *self, s_coproc_t *proc, zf_item_t **items, int count)
{
    if (proc->pid == 0 && s_start (self, proc)) {
        for (int i = 0; i < count; i++)
            zf_client_nack (self->client, &items[i], "cannot start the command", false, 1000);
        return;
    }
    zchunk_t *line = zchunk_new ("[", 1);
    proc->nbatch = 0;
    for (int i = 0; i < count; i++) {
        zf_error_t err;
        char *json = s_item_json (self, items[i], &err);
        if (!json) {
            char reason[300];
            snprintf (reason, sizeof reason, "body is not msgpack: %s", err.text);
            s_fail_item (self, items[i], reason, 0);
            continue;
        }
        if (proc->nbatch)
            zchunk_extend (line, ",", 1);
        zchunk_extend (line, json, strlen (json));
        free (json);
        proc->batch[proc->nbatch++] = items[i];
    }
    zchunk_extend (line, "]\n", 2);
    proc->deadline = zclock_mono () + self->timeout;
    int rc = proc->nbatch
                 ? s_write_all (proc->in, (const char *) zchunk_data (line), zchunk_size (line))
                 : 0;
    zchunk_destroy (&line);
    if (rc)
        s_restart (self, proc, "does not read its input", true);
}

//  Serves the input with the command's coprocesses until told to stop.
static void
s_run_command (self_t *self, zsock_t *pipe)
{
    signal (SIGPIPE, SIG_IGN); // a coprocess that dies shows as a write error
    // What a coprocess's shell leaves when it ends first comes to this
    // process, not to init, and is reaped here (s_stop).
    prctl (PR_SET_CHILD_SUBREAPER, 1);
    self->procs = (s_coproc_t *) zmalloc (self->nprocs * sizeof (s_coproc_t));
    for (int i = 0; i < self->nprocs; i++) {
        self->procs[i].in = self->procs[i].out = self->procs[i].err = -1;
        self->procs[i].index = i;
        self->procs[i].outputs = zlistx_new ();
        zlistx_set_destructor (self->procs[i].outputs, (zlistx_destructor_fn *) zchunk_destroy);
        self->procs[i].line = zchunk_new (NULL, 256);
        if (self->batch)
            self->procs[i].batch = (zf_item_t **) zmalloc (self->batch * sizeof (zf_item_t *));
    }
    zf_item_t **taken =
        self->batch ? (zf_item_t **) zmalloc (self->batch * sizeof (zf_item_t *)) : NULL;
    zmq_pollitem_t *items =
        (zmq_pollitem_t *) zmalloc ((2 * self->nprocs + 1) * sizeof (zmq_pollitem_t));
    while (!zf_actor_stopping (pipe) && !zf_client_refused (self->client)) {
        // Give idle coprocesses work: waiting for an item only when all are
        // idle. One that ended waits out its backoff before it takes any:
        // they stay with the session, unacked, meanwhile.
        bool busy = false, waited = false;
        int64_t now = zclock_mono (), rest = 100; // ms until a backoff ends, at most 100
        for (int i = 0; i < self->nprocs; i++)
            busy |= s_busy (&self->procs[i]);
        for (int i = 0; i < self->nprocs; i++)
            if (!s_busy (&self->procs[i])) {
                s_coproc_t *proc = &self->procs[i];
                if (proc->pid == 0 && proc->start_at > now) {
                    rest = proc->start_at - now < rest ? proc->start_at - now : rest;
                    continue;
                }
                waited |= !busy;
                zf_item_t *item = zf_client_next (self->client, busy ? 0 : 100);
                if (!item)
                    break;
                if (!self->batch) {
                    s_give (self, &self->procs[i], item);
                    busy = true;
                    continue;
                }
                // A line takes what is at hand, up to batch items.
                int count = 0;
                for (; item; item = count < self->batch ? zf_client_next (self->client, 0) : NULL)
                    if (zf_item_cancelled (item))
                        zf_client_ack (self->client, &item);
                    else
                        taken[count++] = item;
                if (count)
                    s_give_batch (self, &self->procs[i], taken, count);
                busy |= s_busy (&self->procs[i]);
            }
        if (!busy && !waited) {
            // Every copy idle, waiting out a backoff: nothing to poll but
            // the session.
            zf_client_pump (self->client, (int) rest);
            continue;
        }
        // Wait for output, at most until the nearest deadline.
        int count = 0;
        int64_t wait = 100;
        now = zclock_mono ();
        for (int i = 0; i < self->nprocs; i++)
            if (self->procs[i].err >= 0)
                items[count++] = (zmq_pollitem_t){ NULL, self->procs[i].err, ZMQ_POLLIN, 0 };
        int logs = count;
        for (int i = 0; i < self->nprocs; i++)
            if (s_busy (&self->procs[i]) && self->procs[i].out >= 0) {
                items[count++] = (zmq_pollitem_t){ NULL, self->procs[i].out, ZMQ_POLLIN, 0 };
                if (self->procs[i].deadline - now < wait)
                    wait = self->procs[i].deadline - now > 0 ? self->procs[i].deadline - now : 0;
            }
        if (count > logs) {
            zmq_poll (items, count, (long) wait);
            zf_client_pump (self->client, 0); // heartbeats while every copy is busy
        }
        for (int i = 0; i < self->nprocs; i++) {
            s_coproc_t *proc = &self->procs[i];
            s_pass_stderr (proc, false);
            if (s_busy (proc) && proc->out >= 0)
                s_read (self, proc);
            if (s_busy (proc) && zclock_mono () >= proc->deadline) {
                char why[64];
                snprintf (why, sizeof why, "took longer than the timeout of %lld ms",
                          (long long) self->timeout);
                s_restart (self, proc, why, false);
            }
        }
    }
    // Stopping: what is unfinished goes back to the broker with the session.
    for (int i = 0; i < self->nprocs; i++) {
        s_stop (&self->procs[i]);
        zlistx_destroy (&self->procs[i].outputs);
        zchunk_destroy (&self->procs[i].line);
        free (self->procs[i].error);
        free (self->procs[i].batch);
    }
    free (taken);
    free (items);
    free (self->procs);
}

//  The plugin's emit: checks the output is one msgpack value and keeps a copy.
static int
s_plugin_emit (zflow_call_t *call, const void *body, size_t size)
{
    s_plugin_t *plugin = (s_plugin_t *) call->internal;
    zf_mp_t mp;
    zf_mp_init (&mp, body, size);
    if (!body || zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL) || zf_mp_left (&mp))
        return -1;
    zlistx_add_end (plugin->outputs, zchunk_new (body, size));
    return 0;
}

//  Loads the plugin. Returns 0, or -1 after logging why not.
static int
s_plugin_open (self_t *self, const char *path)
{
    const char *name = self->args->conf->name;
    s_plugin_t *plugin = &self->plugin;
    char *full = zf_pipeline_path (self->args->pipeline, path);
    plugin->library = dlopen (full, RTLD_NOW | RTLD_LOCAL);
    free (full);
    if (!plugin->library) {
        zsys_error ("%s: cannot load plugin: %s", name, dlerror ());
        return -1;
    }
    *(void **) &plugin->process = dlsym (plugin->library, "zflow_process");
    if (!plugin->process) {
        zsys_error ("%s: plugin %s does not export zflow_process (see include/zflow_plugin.h)",
                    name, path);
        return -1;
    }
    zflow_open_fn *open_fn;
    *(void **) &open_fn = dlsym (plugin->library, "zflow_open");
    *(void **) &plugin->close = dlsym (plugin->library, "zflow_close");
    if (open_fn)
        plugin->state = open_fn (name, self->args->worker);
    plugin->outputs = zlistx_new ();
    zlistx_set_destructor (plugin->outputs, (zlistx_destructor_fn *) zchunk_destroy);
    return 0;
}

static void
s_plugin_close (s_plugin_t *plugin)
{
    if (plugin->close)
        plugin->close (plugin->state);
    if (plugin->library)
        dlclose (plugin->library);
    zlistx_destroy (&plugin->outputs);
}

//  Serves the input with the plugin until told to stop.
static void
s_run_plugin (self_t *self, zsock_t *pipe)
{
    s_plugin_t *plugin = &self->plugin;
    char error[256];
    uint64_t taken = 0; // in a row: $TERM is looked for every 256, and when idle
    while ((taken & 255) != 0 || !zf_actor_stopping (pipe)) {
        zf_item_t *item = zf_client_next (self->client, 100);
        if (!item) {
            if (zsys_interrupted || zf_client_refused (self->client))
                break;
            taken = 0;
            continue;
        }
        taken++;
        if (zf_item_cancelled (item)) {
            zf_client_ack (self->client, &item);
            continue;
        }
        zflow_call_t call = { .abi = ZFLOW_PLUGIN_ABI,
                              .id = zf_item_id (item)->bytes,
                              .attempt = zf_item_attempt (item),
                              .state = plugin->state,
                              .emit = s_plugin_emit,
                              .error = error,
                              .error_size = sizeof error,
                              .internal = plugin };
        call.body = zf_item_body (item, &call.size);
        error[0] = 0;
        if (plugin->process (&call) == 0)
            s_pass_on (self, item, plugin->outputs);
        else {
            zlistx_purge (plugin->outputs);
            error[sizeof error - 1] = 0;
            s_fail_item (self, item, error[0] ? error : "the plugin failed", 0);
        }
    }
}

void
zf_processor_actor (zsock_t *pipe, void *args)
{
    self_t self = { .args = (zf_actor_args_t *) args };
    zf_actor_conf_t *conf = self.args->conf;
    const zf_processor_settings_t *set = (const zf_processor_settings_t *) conf->settings;
    self.command = set->command;
    self.output = conf->output;
    self.emit_errors = set->on_error == ZF_PROCESSOR_EMIT;
    self.group = set->group;
    self.envelope = set->protocol != ZF_PROTOCOL_LINES;
    self.batch = set->protocol == ZF_PROTOCOL_BATCH ? (int) set->batch : 0;
    self.timeout = set->timeout;
    self.nprocs = (int) set->concurrency;
    zsock_signal (pipe, 0);
    const char *plugin = set->plugin;
    if (!self.command && s_plugin_open (&self, plugin)) {
        s_plugin_close (&self.plugin);
        zf_actor_exit (pipe, 2);
        return;
    }
    // A plugin takes one item at a time, but items queued at the worker
    // spare it a round trip to the broker per item.
    int credit = self.command || self.nprocs > PLUGIN_PREFETCH ? self.nprocs : PLUGIN_PREFETCH;
    if (self.command && self.batch)
        credit = 2 * self.nprocs * self.batch; // the next line's items wait at hand
    self.client = zf_actor_client (self.args, conf->input, credit, pipe);
    if (self.client && self.command)
        s_run_command (&self, pipe);
    else if (self.client)
        s_run_plugin (&self, pipe);
    int status = zf_actor_client_end (&self.client, 0);
    if (!self.command)
        s_plugin_close (&self.plugin);
    zf_actor_exit (pipe, status);
}

const zf_kind_t zf_processor_kind = {
    .name = "processor",
    .summary = "runs user logic on each item: a program speaking JSON lines, or a plugin",
    .keys = s_keys,
    .settings_size = sizeof (zf_processor_settings_t),
    .flags = ZF_KIND_INPUT | ZF_KIND_OUTPUT,
    .one_of = "command|plugin",
    .run = zf_processor_actor,
};
