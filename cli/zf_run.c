/*  zf_run: zflow run, the supervisor. It starts the broker in this process
    (unless --broker names a running one), then every worker of every actor
    as a process of its own (`zflow actor NAME PIPELINE --worker N`, or the
    command of a `kind = exec` actor; the first workers of built-in actors
    are forked before the broker starts and wait for it, with libzflow
    loaded already: s_prefork), restarts one that dies with a backoff,
    and fails the run if one keeps dying. A finite pipeline (no scheduler)
    is finished when its sources have ended and no item is left in any
    queue: zflow run then stops the actors and exits 0, or 1 if items ended
    in a dead-letter queue. SIGINT or SIGTERM stops every actor at once, with
    a grace period for each to finish or hand back what it holds (without a
    journal the sources stop first, and what they put drains through).
    SIGHUP, or zflow reload, reads the pipeline file again (s_reload).
    At the end it reports the peak memory and the CPU time of each worker:
    those of the processes of its group, an exec actor's program under a
    shell as well as the shell (s_reap).
*/
#include "zf_run.h"
#include "zf_progress.h"
#include "zf_broker.h"
#include "zf_cli.h"
#include "zf_curve.h"
#include "zf_gateway.h"
#include "zf_journal.h"
#include "zf_kinds.h"
#include "zf_tools.h"
#include "zf_value.h"
#include "zf_zpl.h"
#include "zflow.h"

#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <dirent.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define RESTARTS_MAX     5     // restarts of one worker within RESTART_WINDOW
#define RESTART_WINDOW   60000 // ms
#define LOOP_BACKOFF     1000  // ms: the first backoff of a crash loop, doubled at each death
#define LOOP_BACKOFF_MAX 60000 // ms: the longest
#define LOOP_QUIET       60000 // ms a worker runs without dying to end its crash loop

typedef struct {
    zf_actor_conf_t *conf;        // its actor
    int worker;                   // its number
    pid_t pid;                    // running process, or 0
    bool finished;                // a source that ended (exit 0): not restarted
    int restarts;                 // restarts within the window
    int64_t window_start;         // when the window began (ms)
    int64_t start_at;             // when to start it again (ms), after a backoff
    int64_t started_at;           // when it was last started (ms)
    int loops;                    // deaths in its crash loop (a service's), 0 when in none
    pid_t group;                  // the process group of its last start (its pid then), or 0
    long peak_kb;                 // the largest resident size of its processes so far
    int log;                      // the read end of its stderr, or -1
    int go;                       // forked ahead (s_prefork): the socket it waits on, or -1
    unsigned long long forked_at; // forked ahead: when its process started (s_start_time)
    char line[1024];              // a log line not yet ended
    size_t line_len;              // bytes in line
    double cpu_s;                 // CPU time of its processes that ended, user and system
    bool retiring;                // removed by a reload: stopped, finishing or handing back, not
                                  // started again
} s_worker_t;

//  What zflow run is given on its command line (s_options).
typedef struct {
    const char *broker; // a running broker (or group) the workers go to, or NULL: one of its own
    const char *only;   // the actors this run starts, "A,B", or NULL: all
    int64_t grace;      // ms a stopped actor has to finish or hand back what it holds
    const char *state;  // the state folder, as given, or NULL: the default one
    bool no_journal;    // the embedded broker keeps no journal
    bool fresh;         // the state an earlier run left is dropped first
    bool serve;         // serve until stopped, even a pipeline that would end by itself
    bool insecure;      // the embedded broker may listen beyond loopback without CURVE
    bool quiet;         // no progress, and no actors' info lines
    bool verbose;       // figures every 5 s even beside the live view
} s_options_t;

//  How a stop request stands: SIGINT and SIGTERM are read from a signalfd.
typedef enum { S_RUNNING, S_DRAINING, S_AT_ONCE } s_stop_t;

//  Totals over the queues, from the broker.
typedef struct {
    uint64_t depth;   // items waiting or in flight
    uint64_t dead;    // items dead-lettered
    uint64_t acked;   // items finished
    uint64_t letters; // items waiting in dead-letter queues (this run's and earlier)
    char where[512];  // "jobs.dead 2, pages.dead 1": the dead letters by queue
    bool answered;    // the broker answered
} s_totals_t;

typedef struct {
    zf_pipeline_t *pipeline;    // the config
    const s_options_t *options; // as given on the command line
    const char *path;           // the pipeline file, as given
    const char *state;          // the state folder (--state, made absolute), or NULL
    char state_path[8192];      // where state points when it was made absolute
    const char *endpoint;       // the broker
    const char *given;          // a broker of elsewhere (--broker, or the pipeline's group), or
                                // NULL: the one in this process
    zf_broker_t *broker;        // the broker in this process, or NULL
    zf_gateway_t *gateway;      // its HTTP gateway, or NULL
    char *journal;              // its journal, or NULL
    char *group;                // the endpoints of the pipeline's group of brokers, or NULL
    int listening;              // its socket, bound ahead for the workers forked ahead, or 0
    char bound[64];             // that socket's endpoint
    char self_path[4096];       // this program, to start `zflow actor`
    s_worker_t *workers;        // every worker
    int nworkers;               // entries in workers
    int signals;                // a signalfd of SIGINT, SIGTERM and SIGHUP, or -1
    int watch;                  // the write end of the watcher's pipe (s_watcher_start), or -1
    pid_t watcher;              // the watcher, or 0
    bool stopping;              // a stop was asked for: no worker is started again
    bool service;               // it serves until stopped: a crash loop backs off, never ends it
    zf_progress_t *progress;    // the live view on a terminal, or NULL
    zlistx_t *replaced;         // zf_pipeline_t: versions a reload replaced (their workers
                                // may run still), freed at the end
    bool reload;                // a reload was asked for (SIGHUP)
    zf_client_t *observer;      // its own session with the broker
    char copy_dir[512];         // a folder of its own, or "" when none could be made
    char copy[1024];            // the file's version it runs, for its workers; or "" (the file)
    int64_t started;            // when its workers were started (ms); 0: they were not
    s_stop_t stop;              // how a stop request stands
    int64_t drain_until;        // when a stop's drain must be over (ms), or 0
    bool drained;               // a stop request's drain finished in time
    s_totals_t totals;          // the broker's figures, as last asked
} s_run_t;

static void s_log (s_run_t *run, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  The bytes of the file at path (NUL-ended, *size of them), or NULL.
static char *
s_read_file (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *data = NULL;
    size_t cap = 0;
    *size = 0;
    while (true) {
        if (*size + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            data = (char *) realloc (data, cap);
        }
        size_t n = fread (data + *size, 1, cap - *size - 1, file);
        *size += n;
        if (n == 0)
            break;
    }
    fclose (file);
    data[*size] = 0;
    return data;
}

//  Keeps data, the version of the pipeline file the run runs, as its copy:
//  a worker started later (again after a death, or by a reload) reads the
//  version the run accepted, not the file as it is on disk now.
static void
s_keep_copy (s_run_t *run, const char *data, size_t size)
{
    if (!run->copy_dir[0] || !data)
        return;
    char *name = strdup (run->pipeline->file);
    char temp[1100];
    snprintf (run->copy, sizeof run->copy, "%s/%s", run->copy_dir, basename (name));
    snprintf (temp, sizeof temp, "%s.new", run->copy);
    free (name);
    FILE *file = fopen (temp, "wb");
    bool written = file && fwrite (data, 1, size, file) == size;
    if (file && fclose (file))
        written = false;
    if (!written || rename (temp, run->copy)) {
        unlink (temp);
        s_log (run, "cannot keep a copy of %s in %s (%s): workers read the file itself",
               run->pipeline->file, run->copy_dir, strerror (errno));
        run->copy[0] = 0;
    }
}

static void
s_log (s_run_t *run, const char *format, ...)
{
    if (run->options->quiet)
        return;
    zf_progress_clear (run->progress);
    char stamp[32];
    time_t now = time (NULL);
    strftime (stamp, sizeof stamp, "%H:%M:%S", localtime (&now));
    va_list args;
    va_start (args, format);
    fprintf (stderr, "%s zflow run: ", stamp);
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n");
    va_end (args);
}

//  Prints what worker wrote to its stderr, each line prefixed with its
//  name and number; with flush, also a last line not ended.
static void
s_drain_log (s_run_t *run, s_worker_t *worker, bool flush)
{
    char data[4096];
    ssize_t n;
    while (worker->log >= 0 && (n = read (worker->log, data, sizeof data)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            bool end = data[i] == '\n';
            if (!end && worker->line_len < sizeof worker->line - 1)
                worker->line[worker->line_len++] = data[i];
            if (end || worker->line_len == sizeof worker->line - 1) {
                bool info = worker->line_len > 2 && memcmp (worker->line, "I:", 2) == 0;
                if (!(run->options->quiet && info)) {
                    zf_progress_clear (run->progress);
                    fprintf (stderr, "%s/%d | %.*s\n", worker->conf->name, worker->worker,
                             (int) worker->line_len, worker->line);
                }
                worker->line_len = 0;
            }
        }
    if (flush && worker->line_len) {
        zf_progress_clear (run->progress);
        fprintf (stderr, "%s/%d | %.*s\n", worker->conf->name, worker->worker,
                 (int) worker->line_len, worker->line);
        worker->line_len = 0;
    }
}

//  Closes the log of a worker that exited, printing what is left.
static void
s_close_log (s_run_t *run, s_worker_t *worker)
{
    s_drain_log (run, worker, true);
    if (worker->log >= 0)
        close (worker->log);
    worker->log = -1;
}

//  The shell line for an exec actor's command: a simple command is run with
//  `exec` in front, so that the program is the process zflow run started
//  (its exit status, its parent-death signal and its pid are its own, not
//  a shell's). A line the shell must stay for (a list, a pipe, a loop, a
//  builtin, an assignment first) is left as it is. Caller frees.
static char *
s_exec_line (const char *command)
{
    static const char *shell_words[] = {
        "!",      "{",        "}",       "case",  "do",      "done",     "elif",  "else",
        "esac",   "fi",       "for",     "if",    "in",      "then",     "until", "while",
        "alias",  "bg",       "break",   "cd",    "command", "continue", ".",     "eval",
        "exec",   "exit",     "export",  "fg",    "getopts", "hash",     "jobs",  "local",
        "read",   "readonly", "return",  "set",   "shift",   "times",    "trap",  "type",
        "ulimit", "umask",    "unalias", "unset", "wait",    NULL
    };
    const char *start = command + strspn (command, " \t");
    size_t first = strcspn (start, " \t");
    bool simple = first > 0 && !strpbrk (command, ";&|()`\n") && !memchr (start, '=', first);
    for (int i = 0; simple && shell_words[i]; i++)
        if (strlen (shell_words[i]) == first && memcmp (start, shell_words[i], first) == 0)
            simple = false;
    return simple ? zsys_sprintf ("exec %s", start) : strdup (command);
}

//  Forks worker's process, its stderr a pipe to us; returns 0 in the child,
//  its pid in this process, or -1 having said why it could not.
static pid_t
s_fork (s_run_t *run, s_worker_t *worker)
{
    // Its stderr comes to us, to be prefixed with its name.
    int pipes[2] = { -1, -1 };
    if (pipe (pipes) == 0) {
        fcntl (pipes[0], F_SETFL, O_NONBLOCK);
        fcntl (pipes[0], F_SETFD, FD_CLOEXEC);
    }
    fflush (stdout); // else a child that does not exec would print it again
    fflush (stderr);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid < 0) {
        s_log (run, "cannot start %s/%d: %s", worker->conf->name, worker->worker, strerror (errno));
        if (pipes[0] >= 0) {
            close (pipes[0]);
            close (pipes[1]);
        }
        return -1;
    }
    if (pid == 0) {
        // An actor does not outlive its supervisor, and takes signals itself:
        // in a process group of its own, a Ctrl-C at the terminal reaches
        // zflow run alone, which stops the actors in order.
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        if (getppid () != parent)
            _exit (0); // it died before the signal was asked for
        setpgid (0, 0);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        if (pipes[1] >= 0) {
            dup2 (pipes[1], 2);
            close (pipes[0]);
            close (pipes[1]);
        }
        return 0;
    }
    if (pipes[1] >= 0)
        close (pipes[1]);
    setpgid (pid, pid); // as the child does: whichever comes first makes the group
    // The pid is free, so no process is left of a group of that number an
    // earlier worker had: its processes ended are not this one's.
    for (int i = 0; i < run->nworkers; i++)
        if (run->workers[i].group == pid)
            run->workers[i].group = 0;
    worker->pid = pid;
    worker->group = pid;
    worker->started_at = zclock_mono ();
    s_close_log (run, worker);
    worker->log = pipes[0];
    return pid;
}

//  Starts worker: `zflow actor` for a built-in kind, the command of an exec
//  actor (from a shell).
static void
s_start (s_run_t *run, s_worker_t *worker)
{
    if (s_fork (run, worker) == 0) {
        const char *kind = worker->conf->kind->name;
        if (streq (kind, "exec")) {
            // As `zflow actor` does for a built-in one: its own certificate,
            // when it names one, for the libzflow inside it.
            zf_error_t err;
            if (zf_curve_setenv (run->pipeline, worker->conf, &err)) {
                fprintf (stderr, "%s\n", err.text);
                _exit (ZF_EXIT_USAGE);
            }
            char number[16];
            snprintf (number, sizeof number, "%d", worker->worker);
            setenv ("ZFLOW_ENDPOINT", run->endpoint, 1);
            setenv ("ZFLOW_ACTOR", worker->conf->name, 1);
            setenv ("ZFLOW_PIPELINE", run->pipeline->name, 1);
            setenv ("ZFLOW_WORKER", number, 1);
            setenv ("ZFLOW_INPUT", worker->conf->input ? worker->conf->input : "", 1);
            setenv ("ZFLOW_OUTPUT", worker->conf->output ? worker->conf->output : "", 1);
            const zf_exec_settings_t *set = (const zf_exec_settings_t *) worker->conf->settings;
            // A key left out is no variable, not even one zflow run was
            // given: the pipeline decides, and the program's default holds.
            zf_exec_env_t env[ZF_EXEC_ENV_MAX];
            zf_exec_environment (set, env);
            for (int i = 0; i < ZF_EXEC_ENV_MAX; i++)
                if (env[i].value[0])
                    setenv (env[i].name, env[i].value, 1);
                else
                    unsetenv (env[i].name);
            if (chdir (run->pipeline->dir))
                _exit (126);
            char *line = s_exec_line (set->command);
            execl ("/bin/sh", "sh", "-c", line, (char *) NULL);
        }
        else {
            char number[16];
            snprintf (number, sizeof number, "%d", worker->worker);
            if (run->copy[0])
                execl (run->self_path, run->self_path, "actor", worker->conf->name, run->copy,
                       "--dir", run->pipeline->dir, "--broker", run->endpoint, "--worker", number,
                       (char *) NULL);
            else
                execl (run->self_path, run->self_path, "actor", worker->conf->name,
                       run->pipeline->file, "--broker", run->endpoint, "--worker", number,
                       (char *) NULL);
        }
        _exit (127);
    }
}

//  When process pid started (the 22nd field of /proc/PID/stat, clock ticks
//  since boot), or 0 when it is gone or a zombie: with the pid, it names
//  one process, not another given the same pid later. Only system calls,
//  no allocation: the watcher calls it too.
static unsigned long long
s_start_time (pid_t pid)
{
    char path[32] = "/proc/", digits[16], stat[1024];
    int n = 0;
    do
        digits[n++] = (char) ('0' + pid % 10);
    while ((pid /= 10) > 0 && n < (int) sizeof digits);
    size_t at = 6;
    while (n)
        path[at++] = digits[--n];
    memcpy (path + at, "/stat", 6);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t size = read (fd, stat, sizeof stat - 1);
    close (fd);
    if (size <= 0)
        return 0;
    stat[size] = 0;
    char *c = strrchr (stat, ')'); // the name before it may hold anything
    if (!c || c[1] != ' ' || c[2] == 'Z')
        return 0;
    for (int spaces = 0; *c && spaces < 20; c++)
        spaces += *c == ' ';
    unsigned long long ticks = 0;
    for (; *c >= '0' && *c <= '9'; c++)
        ticks = ticks * 10 + (unsigned long long) (*c - '0');
    return ticks;
}

//  In a child of the run: moves fd to descriptor 3 and closes every
//  descriptor above it, so that it holds none of the run's sockets and
//  files (the broker's, its journal's lock). Returns 3.
static int
s_keep_only (int fd)
{
    if (fd != 3)
        dup2 (fd, 3);
    long limit = sysconf (_SC_OPEN_MAX);
#ifdef SYS_close_range
    if (syscall (SYS_close_range, 4, ~0U, 0) == 0)
        limit = 0;
#endif
    for (int i = 4; i < limit; i++)
        close (i);
    return 3;
}

//  The child of s_prefork: waits on fd for its broker's endpoint, a line,
//  then runs as `zflow actor` would, on the pipeline as the run loaded it.
//  An end without one is a run that stopped before it started its workers.
static void
s_forked (s_run_t *run, s_worker_t *worker, int fd)
{
    // Nothing of the run's but the socket.
    int go = s_keep_only (fd);
    // A stop is taken from here on as the actor takes it, once it runs
    // (zf_actor_run reads these from a signalfd): not by czmq's handler,
    // which the warm-up below installs and which would only mark the
    // process interrupted.
    sigset_t stops;
    sigemptyset (&stops);
    sigaddset (&stops, SIGINT);
    sigaddset (&stops, SIGTERM);
    sigprocmask (SIG_BLOCK, &stops, NULL);
    // What every worker starts first, done while the broker starts: czmq
    // and its ZeroMQ context with their threads.
    zsock_t *warm = zsock_new (ZMQ_PAIR);
    zsock_destroy (&warm);
    char endpoint[4096];
    size_t size = 0;
    while (size < sizeof endpoint - 1) {
        ssize_t n = read (go, endpoint + size, sizeof endpoint - 1 - size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size += (size_t) n;
    }
    close (go);
    if (!size || endpoint[size - 1] != '\n')
        _exit (0);
    endpoint[size - 1] = 0;
    char number[16];
    snprintf (number, sizeof number, "%d", worker->worker);
    const char *title[] = { "zflow", "actor", worker->conf->name, "--worker", number, NULL };
    zf_cli_retitle (title);
    exit (zf_tools_actor (run->pipeline, worker->conf, endpoint, worker->worker));
}

//  The broker's ROUTER endpoint, when it is on loopback over IPv4 (as a
//  pipeline's is unless it says otherwise), bound and listening here:
//  its socket, the endpoint with its port in bound; else 0. Workers forked
//  ahead can then connect while the broker starts, which takes the socket
//  (zf_broker_args_t.listening).
static int
s_listen (const char *endpoint, char *bound, size_t size)
{
    unsigned a, b, c, d;
    char port[8];
    int end = 0;
    if (!endpoint ||
        sscanf (endpoint, "tcp://%3u.%3u.%3u.%3u:%7[0-9*]%n", &a, &b, &c, &d, port, &end) != 5 ||
        endpoint[end] || a != 127 || b > 255 || c > 255 || d > 255 ||
        (strcmp (port, "*") && (atoi (port) < 1 || atoi (port) > 65535)))
        return 0;
    struct sockaddr_in address = { .sin_family = AF_INET,
                                   .sin_port = htons ((uint16_t) atoi (port)),
                                   .sin_addr.s_addr = htonl (a << 24 | b << 16 | c << 8 | d) };
    socklen_t length = sizeof address;
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), on = 1;
    if (fd > 0 && setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 &&
        bind (fd, (struct sockaddr *) &address, sizeof address) == 0 && listen (fd, 100) == 0 &&
        getsockname (fd, (struct sockaddr *) &address, &length) == 0) {
        snprintf (bound, size, "tcp://%u.%u.%u.%u:%u", a, b, c, d, ntohs (address.sin_port));
        return fd;
    }
    if (fd >= 0)
        close (fd); // the broker binds, and says what is wrong
    return 0;
}

//  A built-in actor's worker forked ahead, while this process has no
//  thread and czmq has not started: it waits for the broker (s_release), and
//  then runs in the process forked, with no program to load again. What
//  starts later (a restart, a reload) is forked from a process with
//  threads, where a child may only exec: s_start.
static void
s_prefork (s_run_t *run, s_worker_t *worker)
{
    int pair[2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair))
        return; // it starts as the others do
    pid_t pid = s_fork (run, worker);
    if (pid == 0) {
        close (pair[0]);
        s_forked (run, worker, pair[1]);
    }
    close (pair[1]);
    if (pid > 0) {
        worker->go = pair[0];
        worker->forked_at = s_start_time (pid);
    }
    else
        close (pair[0]);
}

//  Tells a worker forked ahead where its broker is: it starts.
static void
s_release (s_run_t *run, s_worker_t *worker)
{
    if (worker->go < 0)
        return;
    char *said = zsys_sprintf ("%s\n", run->endpoint);
    size_t size = strlen (said);
    // A worker that died meanwhile is reaped, and restarted, as any other.
    if (send (worker->go, said, size, MSG_NOSIGNAL) != (ssize_t) size)
        s_log (run, "cannot start %s/%d: %s", worker->conf->name, worker->worker, strerror (errno));
    zstr_free (&said);
    close (worker->go);
    worker->go = -1;
}

static s_totals_t
s_totals (zf_client_t *client)
{
    s_totals_t totals = { 0 };
    size_t count;
    zf_figures_t *queues = zf_client_queues (client, &count, 2000);
    if (!queues)
        return totals;
    totals.answered = true;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen (queues[i].name);
        bool dead_queue = len > 5 && streq (queues[i].name + len - 5, ".dead");
        if (!dead_queue)
            totals.depth += queues[i].depth;
        else if (queues[i].depth) {
            totals.letters += queues[i].depth;
            size_t used = strlen (totals.where);
            snprintf (totals.where + used, sizeof totals.where - used, "%s%s %llu",
                      used ? ", " : "", queues[i].name, (unsigned long long) queues[i].depth);
        }
        totals.dead += queues[i].dead;
        totals.acked += dead_queue ? 0 : queues[i].ack;
    }
    free (queues);
    return totals;
}

//  Reaps a child like waitpid (pid: that one; -1: any; less: any of the
//  process group -pid), and counts its peak resident size and its CPU time
//  in the worker whose process group it was in: the worker's process, or
//  one its shell left (this process is their subreaper, s_prepare). The
//  figures of wait4 are the process's with those of the descendants it
//  waited for: the largest peak of them, the sum of their CPU times.
static pid_t
s_reap (s_run_t *run, pid_t pid, int *status, int options)
{
    // Its group is read while it is a zombie still (WNOWAIT): reaped, it
    // has none.
    siginfo_t info = { 0 };
    idtype_t type = pid > 0 ? P_PID : pid == -1 ? P_ALL : P_PGID;
    id_t id = (id_t) (pid > 0 ? pid : pid == -1 ? 0 : -pid);
    if (waitid (type, id, &info, WEXITED | WNOWAIT | options))
        return -1;
    if (info.si_pid == 0)
        return 0; // WNOHANG, and none has ended
    pid_t group = getpgid (info.si_pid);
    struct rusage usage;
    pid_t reaped = wait4 (info.si_pid, status, 0, &usage);
    for (int i = 0; reaped > 0 && group > 0 && i < run->nworkers; i++)
        if (run->workers[i].group == group) {
            s_worker_t *w = &run->workers[i];
            if (usage.ru_maxrss > w->peak_kb)
                w->peak_kb = usage.ru_maxrss;
            w->cpu_s += (double) usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 +
                        (double) usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
            break;
        }
    return reaped;
}

//  True while a process of group is this process's to reap, running or
//  ended: the group is there, and kill (-group) reaches it and no other.
static bool
s_group_left (pid_t group)
{
    siginfo_t info;
    return group > 0 && waitid (P_PGID, (id_t) group, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

//  Logs the peak resident size and the CPU time of this process (the
//  broker) and of each worker, one line.
static void
s_log_resources (s_run_t *run)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    double cpu = (double) usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 +
                 (double) usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
    char line[4096];
    int len = snprintf (line, sizeof line, "peak memory and CPU time: broker %.1f MB %.2f s",
                        usage.ru_maxrss / 1024.0, cpu);
    for (int i = 0; i < run->nworkers && len < (int) sizeof line; i++)
        len += snprintf (line + len, sizeof line - len, ", %s/%d %.1f MB %.2f s",
                         run->workers[i].conf->name, run->workers[i].worker,
                         run->workers[i].peak_kb / 1024.0, run->workers[i].cpu_s);
    s_log (run, "%s", line);
}

//  Says where the results are: each sink's file, with the items in it (from
//  its commit record, 16 bytes an item).
static void
s_log_results (s_run_t *run)
{
    for (zf_actor_conf_t *a = (zf_actor_conf_t *) zlistx_first (run->pipeline->actors); a;
         a = (zf_actor_conf_t *) zlistx_next (run->pipeline->actors)) {
        if (!streq (a->kind->name, "sink"))
            continue;
        const char *target = ((const zf_sink_settings_t *) a->settings)->target;
        if (strncmp (target, "file:", 5) != 0)
            continue;
        char *path = zf_pipeline_path (run->pipeline, target + 5);
        char *ids = zsys_sprintf ("%s.ids", path);
        struct stat info;
        long long items = stat (ids, &info) == 0 ? (long long) info.st_size / ZF_ID_SIZE : 0;
        s_log (run, "results of %s: %s (%lld item%s)", a->name, path, items, items == 1 ? "" : "s");
        zstr_free (&ids);
        free (path);
    }
}

//  Reads the signals that came: the first SIGINT or SIGTERM starts a
//  graceful stop, a second SIGINT makes it immediate. SIGHUP asks for a
//  reload (s_reload); while stopping it is logged and
//  ignored: a run started from a terminal that closes keeps serving.
static s_stop_t
s_signals (s_run_t *run, int fd, s_stop_t state)
{
    struct signalfd_siginfo info;
    while (fd >= 0 && read (fd, &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGHUP && state == S_RUNNING)
            run->reload = true; // read the pipeline file again
        else if (info.ssi_signo == SIGHUP)
            s_log (run, "SIGHUP from pid %u ignored: the run is stopping", info.ssi_pid);
        else if (state == S_RUNNING)
            state = S_DRAINING;
        else if (info.ssi_signo == SIGINT)
            state = S_AT_ONCE;
    }
    return state;
}

//  The watcher's search: every process but itself whose environment holds
//  needle (ZFLOW_SUPERVISOR_PID=N, NUL-ended) gets sig. Only system calls,
//  no allocation: it runs in a child forked from a process with threads.
//  Returns how many it signalled.
static int
s_watcher_signal (const char *needle, size_t needle_len, int sig)
{
    int signalled = 0;
    int proc = open ("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc < 0)
        return 0;
    // The kernel aligns each record to 8 bytes within the buffer: so must
    // the buffer be, for its fields to be read in place.
    _Alignas(8) char entries[8192];
    char path[64], env[32768];
    long n;
    while ((n = syscall (SYS_getdents64, proc, entries, sizeof entries)) > 0)
        for (long at = 0; at < n;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *entry = (void *) (entries + at);
            at += entry->reclen;
            pid_t pid = 0;
            const char *c = entry->name;
            for (; *c >= '0' && *c <= '9'; c++)
                pid = pid * 10 + (*c - '0');
            if (*c || pid <= 1 || pid == getpid ())
                continue;
            // "/proc/" + the digits + "/environ", without snprintf
            memcpy (path, "/proc/", 6);
            size_t len = strlen (entry->name);
            memcpy (path + 6, entry->name, len);
            memcpy (path + 6 + len, "/environ", 9);
            int fd = open (path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            ssize_t size = read (fd, env, sizeof env);
            close (fd);
            for (ssize_t i = 0; i + (ssize_t) needle_len <= size;) {
                if (memcmp (env + i, needle, needle_len) == 0) {
                    kill (pid, sig);
                    signalled++;
                    break;
                }
                while (i < size && env[i])
                    i++;
                i++; // the next variable
            }
        }
    close (proc);
    return signalled;
}

//  Sends sig to each worker forked ahead (s_prefork) that is still the
//  process it was, and to its group: the environment of such a worker is
//  the run's from before it set ZFLOW_SUPERVISOR_PID, where the watcher's
//  search does not see it. Returns how many it signalled. Only system
//  calls: the watcher calls it.
static int
s_forked_signal (const s_run_t *run, int sig)
{
    int signalled = 0;
    for (int i = 0; i < run->nworkers; i++) {
        const s_worker_t *w = &run->workers[i];
        if (w->forked_at && w->pid > 0 && s_start_time (w->pid) == w->forked_at) {
            kill (-w->pid, sig);
            kill (w->pid, sig);
            signalled++;
        }
    }
    return signalled;
}

//  Starts the watcher: a process that outlives a zflow run killed with
//  SIGKILL by a moment, to end every process the run started and left (a
//  shell's children escape the parent-death signal, and so would a worker
//  that ignores it). It waits for the end of the pipe whose write end is
//  returned (close-on-exec, or -1): a byte first says the run ended in
//  order; an end without one sends SIGTERM to every process with this
//  run's ZFLOW_SUPERVISOR_PID and to the workers forked ahead, and SIGKILL
//  a second later to those left.
static int
s_watcher_start (const s_run_t *run, pid_t *watcher)
{
    char needle[64];
    int needle_len = snprintf (needle, sizeof needle, "ZFLOW_SUPERVISOR_PID=%d", (int) getpid ());
    needle_len++; // its NUL: pid 12 is not pid 123
    int fds[2];
    if (pipe2 (fds, O_CLOEXEC))
        return -1;
    pid_t pid = fork ();
    if (pid < 0) {
        close (fds[0]);
        close (fds[1]);
        return -1;
    }
    if (pid == 0) {
        // The broker's sockets and its journal's lock stay the run's: every
        // descriptor goes but the pipe's end, moved to 3; and the run's
        // output is not held open by a process that prints nothing.
        int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
        for (int fd = 0; null >= 0 && fd < 3; fd++)
            dup2 (null, fd);
        int end = s_keep_only (fds[0]);
        signal (SIGHUP, SIG_IGN);
        char byte;
        ssize_t got;
        while ((got = read (end, &byte, 1)) < 0 && errno == EINTR)
            ;
        if (got != 0)
            _exit (0); // a byte: the run ended in order (or no pipe to watch)
        if (s_watcher_signal (needle, needle_len, SIGTERM) + s_forked_signal (run, SIGTERM)) {
            struct timespec second = { 1, 0 };
            nanosleep (&second, NULL); // their time to hand back what they hold
            s_watcher_signal (needle, needle_len, SIGKILL);
            s_forked_signal (run, SIGKILL);
        }
        _exit (0);
    }
    close (fds[0]);
    *watcher = pid;
    return fds[1];
}

//  Sends sig to a worker's process group (it made one of its own), so that
//  what an exec actor's shell started gets it too; to the worker alone
//  while the group is not made yet.
static void
s_signal (pid_t pid, int sig)
{
    if (kill (-pid, sig))
        kill (pid, sig);
}

//  Stops every worker: SIGTERM, then SIGKILL after grace_ms, or at once
//  when a signal comes on signals (a second Ctrl-C) meanwhile. A worker
//  is stopped when no process of its group is left: the shell of an exec
//  actor's command, which a SIGTERM ends at once, leaves its program
//  handing back what it holds, and to be reaped with its figures.
static void
s_stop_all (s_run_t *run, int64_t grace_ms, int signals)
{
    run->stopping = true;
    for (int i = 0; i < run->nworkers; i++)
        if (run->workers[i].pid > 0)
            s_signal (run->workers[i].pid, SIGTERM);
        else if (s_group_left (run->workers[i].group))
            kill (-run->workers[i].group, SIGTERM); // what its shell left, the worker ended
    int64_t deadline = zclock_mono () + grace_ms;
    for (int i = 0; i < run->nworkers; i++) {
        s_worker_t *w = &run->workers[i];
        bool killed = false;
        while (w->pid > 0 || s_group_left (w->group)) {
            int status;
            // The worker first, then what is left of its group.
            pid_t reaped =
                s_reap (run, w->pid > 0 ? w->pid : -w->group, &status, killed ? 0 : WNOHANG);
            if (reaped > 0) {
                if (reaped == w->pid)
                    w->pid = 0;
            }
            else if (signals >= 0 && s_signals (run, signals, S_DRAINING) == S_AT_ONCE)
                deadline = 0; // asked again: at once
            else if (zclock_mono () >= deadline) {
                if (w->pid > 0)
                    s_signal (w->pid, SIGKILL);
                else
                    kill (-w->group, SIGKILL);
                killed = true; // each is waited for from here on
            }
            else {
                for (int k = 0; k < run->nworkers; k++)
                    s_drain_log (run, &run->workers[k], false); // what they say as they stop
                zclock_sleep (10);                              // bounded by the grace period
            }
        }
    }
    for (int i = 0; i < run->nworkers; i++)
        s_close_log (run, &run->workers[i]);
}

//  How a worker ended, for the log and for the items it held.
static void
s_death (int status, char *reason, size_t size)
{
    if (WIFSIGNALED (status))
        snprintf (reason, size, "worker died: killed by signal %d (%s)", WTERMSIG (status),
                  strsignal (WTERMSIG (status)));
    else
        snprintf (reason, size, "worker died: exit %d", WEXITSTATUS (status));
}

//  Handles a worker's exit: a source that ended is done; anything else is
//  restarted after a backoff. One that keeps dying fails a finite run
//  (returns -1 then); in a service it is in a crash loop, restarted after
//  a backoff that doubles from 1 s to 60 s until it runs a quiet minute:
//  one bad item or a lost dependency never ends the service.
static int
s_exited (s_run_t *run, s_worker_t *worker, int status)
{
    pid_t pid = worker->pid;
    worker->pid = 0;
    s_close_log (run, worker);
    if (worker->retiring) {
        s_log (run, "%s/%d: stopped by the reload", worker->conf->name, worker->worker);
        return 0;
    }
    if (run->stopping) {
        worker->finished = true; // stopped as asked: not started again
        return 0;
    }
    bool clean = WIFEXITED (status) && WEXITSTATUS (status) == 0;
    if (clean && (worker->conf->kind->flags & ZF_KIND_SOURCE)) {
        worker->finished = true;
        s_log (run, "%s/%d: source ended", worker->conf->name, worker->worker);
        return 0;
    }
    char reason[128];
    s_death (status, reason, sizeof reason);
    if (run->broker && !clean)
        // What it held failed with its death, now, and says how: the items
        // that kill their workers end dead-lettered with that reason after
        // their attempts, rather than "worker lost" seconds later.
        zf_broker_died (run->broker, worker->conf->name, worker->worker, pid, reason);
    int64_t now = zclock_mono ();
    if (worker->loops && now - worker->started_at >= LOOP_QUIET)
        worker->loops = 0; // it ran a quiet minute before this death
    if (now - worker->window_start > RESTART_WINDOW) {
        worker->window_start = now;
        worker->restarts = 0;
    }
    if (++worker->restarts > RESTARTS_MAX && !run->service) {
        fprintf (stderr,
                 "zflow run: %s/%d keeps dying (%d times in %d s); stopping the run (its log is "
                 "above)\n",
                 worker->conf->name, worker->worker, RESTARTS_MAX + 1, RESTART_WINDOW / 1000);
        return -1;
    }
    if (worker->restarts > RESTARTS_MAX || worker->loops) {
        int64_t backoff = worker->loops >= 6 ? LOOP_BACKOFF_MAX : LOOP_BACKOFF << worker->loops;
        if (backoff > LOOP_BACKOFF_MAX)
            backoff = LOOP_BACKOFF_MAX;
        worker->loops++;
        worker->start_at = now + backoff;
        s_log (run,
               "%s/%d keeps dying (%d times in %d s; %s): crash loop, restarting it in %lld s; "
               "the run goes on",
               worker->conf->name, worker->worker, worker->restarts, RESTART_WINDOW / 1000,
               reason + strlen ("worker died: "), (long long) backoff / 1000);
        if (run->broker)
            zf_broker_crashloop (run->broker, worker->conf->name, worker->worker, pid,
                                 worker->restarts, backoff, reason);
        return 0;
    }
    int64_t backoff = 200LL << (worker->restarts - 1);
    worker->start_at = now + backoff;
    if (WIFEXITED (status))
        s_log (run, "%s/%d exited with status %d: restarting it in %lld ms", worker->conf->name,
               worker->worker, WEXITSTATUS (status), (long long) backoff);
    else
        s_log (run, "%s/%d was killed by signal %d: restarting it in %lld ms", worker->conf->name,
               worker->worker, WTERMSIG (status), (long long) backoff);
    return 0;
}

//  The journal of the embedded broker: the config's, else one in the state
//  folder (--state, or one per pipeline file under $XDG_STATE_HOME/zflow,
//  when *fallback is set true); NULL with --no-journal. Caller frees.
static char *
s_journal_path (zf_pipeline_t *pipeline, const char *state, bool no_journal, bool *fallback)
{
    *fallback = false;
    const char *configured = pipeline->broker_settings.journal;
    if (configured)
        return zf_pipeline_path (pipeline, configured);
    if (no_journal)
        return NULL;
    if (state)
        return zsys_sprintf ("%s/journal", state);
    *fallback = true;
    // One state folder per pipeline file: two pipelines of the same name in
    // different folders do not share one.
    char real[PATH_MAX];
    const char *file = realpath (pipeline->file, real) ? real : pipeline->file;
    uint32_t hash = 2166136261u; // FNV-1a
    for (const char *p = file; *p; p++)
        hash = (hash ^ (uint8_t) *p) * 16777619u;
    const char *xdg = getenv ("XDG_STATE_HOME");
    const char *home = getenv ("HOME");
    if (xdg && *xdg)
        return zsys_sprintf ("%s/zflow/%s-%08x/journal", xdg, pipeline->name, hash);
    return zsys_sprintf ("%s/.local/state/zflow/%s-%08x/journal", home && *home ? home : "/tmp",
                         pipeline->name, hash);
}

//  True when the broker of this run starts by reading a journal (one is
//  there, and not --fresh): that may take longer than a worker waits for
//  its WELCOME before it tries a new session, so the workers wait for it.
static bool
s_recovers (zf_pipeline_t *pipeline, const char *state, bool no_journal, bool fresh)
{
    bool fallback;
    char *path = s_journal_path (pipeline, state, no_journal, &fallback);
    DIR *dir = path && !fresh ? opendir (path) : NULL;
    bool found = false;
    for (struct dirent *entry; dir && !found && (entry = readdir (dir));)
        found = entry->d_name[0] != '.' && strcmp (entry->d_name, "LOCK") != 0;
    if (dir)
        closedir (dir);
    zstr_free (&path);
    return found;
}

//  --------------------------------------------------------------------------
//  Reload

//  True if sections a and b say the same, but for the key skip.
static bool
s_same_section (zconfig_t *a, zconfig_t *b, const char *skip)
{
    zconfig_t *x = zconfig_child (a), *y = zconfig_child (b);
    while (x || y) {
        while (x && skip && streq (zconfig_name (x), skip))
            x = zconfig_next (x);
        while (y && skip && streq (zconfig_name (y), skip))
            y = zconfig_next (y);
        if (!x || !y)
            return !x && !y;
        const char *vx = zconfig_value (x), *vy = zconfig_value (y);
        if (!streq (zconfig_name (x), zconfig_name (y)) || !streq (vx ? vx : "", vy ? vy : "") ||
            !s_same_section (x, y, NULL))
            return false;
        x = zconfig_next (x);
        y = zconfig_next (y);
    }
    return true;
}

//  0 if every name of only ("A,B"; NULL: all) is an actor of pipeline;
//  else ZF_EXIT_USAGE, having said which is not and what the actors are.
static int
s_check_only (zf_pipeline_t *pipeline, const char *only)
{
    if (!only)
        return ZF_EXIT_OK;
    char *list = strdup (only), *rest = list, *name;
    int status = ZF_EXIT_OK;
    while (status == ZF_EXIT_OK && (name = strsep (&rest, ",")))
        if (!zf_pipeline_actor (pipeline, name)) {
            fprintf (stderr, "zflow run: --only: no actor '%s' in pipeline %s; its actors:", name,
                     pipeline->name);
            zlistx_t *actors = pipeline->actors;
            for (zf_actor_conf_t *a = (zf_actor_conf_t *) zlistx_first (actors); a;
                 a = (zf_actor_conf_t *) zlistx_next (actors))
                fprintf (stderr, " %s", a->name);
            fprintf (stderr, "\n");
            status = ZF_EXIT_USAGE;
        }
    free (list);
    return status;
}

//  True if the actor named is among only ("A,B"; NULL: all).
static bool
s_chosen (const char *only, const char *name)
{
    if (!only)
        return true;
    char *list = zsys_sprintf (",%s,", only), *item = zsys_sprintf (",%s,", name);
    bool chosen = strstr (list, item) != NULL;
    zstr_free (&list);
    zstr_free (&item);
    return chosen;
}

//  Appends a worker of actor number n to the run, and starts it.
static void
s_add_worker (s_run_t *run, zf_actor_conf_t *actor, int n)
{
    run->workers = (s_worker_t *) realloc (run->workers, (run->nworkers + 1) * sizeof (s_worker_t));
    s_worker_t *worker = &run->workers[run->nworkers++];
    *worker = (s_worker_t){ .conf = actor, .worker = n, .log = -1, .go = -1 };
    s_start (run, worker);
}

//  Stops worker for good: it finishes or hands back what it holds.
static void
s_retire (s_worker_t *worker)
{
    worker->retiring = worker->finished = true;
    if (worker->pid > 0)
        s_signal (worker->pid, SIGTERM);
}

//  SIGHUP: the pipeline file read again. A file with mistakes is refused
//  (they are printed, FILE:LINE) and the running pipeline goes on. Else
//  the broker takes the new queues and their settings, actors removed
//  stop (finishing or handing back what they hold), actors added start,
//  an actor whose section changed starts again with it, and a changed
//  workers count starts or stops the difference. An actor added that
//  reads the queue of one removed takes over its consumer group: what was
//  queued for the old one goes to the new one.
static void
s_reload (s_run_t *run, const char *why)
{
    zf_pipeline_t *old = run->pipeline;
    s_log (run, "%s: reading %s again", why, old->file);
    size_t size = 0;
    char *data = s_read_file (old->file, &size); // the version that is loaded next
    zf_pipeline_t *next = zf_tools_load (old->file);
    if (!next) {
        s_log (run, "reload refused: %s has mistakes (above); the running pipeline goes on",
               old->file);
        free (data);
        return;
    }
    const char *refusal = streq (next->name, old->name)
                              ? NULL
                              : "the pipeline's name changed (items' ids derive from it): a new "
                                "name is a new run";
    for (zf_actor_conf_t *a = (zf_actor_conf_t *) zlistx_first (next->actors); a && !refusal;
         a = (zf_actor_conf_t *) zlistx_next (next->actors))
        if (!a->kind->run && !streq (a->kind->name, "exec"))
            refusal = "an actor's kind cannot run in this build";
    if (refusal) {
        s_log (run, "reload refused: %s; the running pipeline goes on", refusal);
        zf_pipeline_destroy (&next);
        free (data);
        return;
    }
    s_keep_copy (run, data, size); // the workers started from now on read this version
    free (data);
    if (old->broker && next->broker && !s_same_section (old->broker, next->broker, NULL))
        s_log (run, "the broker section changed: its settings apply at the next start (queue "
                    "settings apply now)");
    // Replacements: an actor added that reads the queue of one removed.
    char renames[4096] = "";
    zhashx_t *taken = zhashx_new ();
    for (zf_actor_conf_t *gone = (zf_actor_conf_t *) zlistx_first (old->actors); gone;
         gone = (zf_actor_conf_t *) zlistx_next (old->actors)) {
        if (zf_pipeline_actor (next, gone->name) || !gone->input)
            continue;
        for (zf_actor_conf_t *a = (zf_actor_conf_t *) zlistx_first (next->actors); a;
             a = (zf_actor_conf_t *) zlistx_next (next->actors))
            if (!zf_pipeline_actor (old, a->name) && a->input && streq (a->input, gone->input) &&
                !zhashx_lookup (taken, a->name)) {
                zhashx_insert (taken, a->name, (void *) "");
                size_t used = strlen (renames);
                snprintf (renames + used, sizeof renames - used, "%s%s=%s", used ? "," : "",
                          gone->name, a->name);
                s_log (run, "%s replaces %s: it takes over what was queued for it", a->name,
                       gone->name);
                break;
            }
    }
    zhashx_destroy (&taken);
    if (run->broker)
        zf_broker_reload (run->broker, next, renames);
    else if (*renames) {
        // A broker of its own: it renames the groups now, before the new
        // workers come.
        zf_control_t control = { .op = "reload", .queue = "", .where = renames };
        zf_result_t *done = zf_client_control (run->observer, &control, 5000);
        if (!done)
            s_log (run,
                   "the broker did not take the replacements (%s): %s; what was queued for "
                   "the actors replaced waits for them",
                   renames, zf_client_last_error (run->observer));
        zf_result_destroy (&done);
    }
    // Workers: kept (on the new config), stopped, started.
    int added = 0, stopped = 0, before = run->nworkers;
    for (int i = 0; i < before; i++) {
        s_worker_t *w = &run->workers[i];
        if (w->retiring)
            continue;
        zf_actor_conf_t *now = zf_pipeline_actor (next, w->conf->name);
        if (now && w->worker < now->workers && s_same_section (w->conf->node, now->node, "workers"))
            w->conf = now;
        else {
            s_retire (w);
            stopped++;
        }
    }
    for (zf_actor_conf_t *a = (zf_actor_conf_t *) zlistx_first (next->actors); a;
         a = (zf_actor_conf_t *) zlistx_next (next->actors)) {
        if (!s_chosen (run->options->only, a->name))
            continue;
        bool *have = (bool *) calloc ((size_t) a->workers + 1, sizeof (bool));
        for (int i = 0; i < run->nworkers; i++) {
            s_worker_t *w = &run->workers[i];
            if (!w->retiring && w->conf == a && w->worker < a->workers)
                have[w->worker] = true;
        }
        for (int n = 0; n < a->workers; n++)
            if (!have[n]) {
                s_add_worker (run, a, n);
                added++;
            }
        free (have);
    }
    if (!run->replaced) {
        run->replaced = zlistx_new ();
        zlistx_set_destructor (run->replaced, (zlistx_destructor_fn *) zf_pipeline_destroy);
    }
    zlistx_add_end (run->replaced, old);
    run->pipeline = next;
    s_log (run, "reloaded %s: %d worker process%s started, %d stopped", next->file, added,
           added == 1 ? "" : "es", stopped);
}

//  --------------------------------------------------------------------------
//  zflow run (s_run): s_prepare reads the pipeline; s_fork_ahead,
//  s_start_broker, s_observe and s_start_workers start it, in that order
//  (the first workers are forked before anything starts a thread);
//  s_supervise tends it; s_finish ends it, however far it got.

//  Reads the pipeline and lists its workers, before anything starts.
//  Returns 0, or ZF_EXIT_USAGE having said why.
static int
s_prepare (s_run_t *run)
{
    // Signals are read from a signalfd (made before any thread starts, so
    // that all of them block these); the actors unblock them after fork.
    sigset_t stops;
    sigemptyset (&stops);
    sigaddset (&stops, SIGINT);
    sigaddset (&stops, SIGTERM);
    sigaddset (&stops, SIGHUP);
    pthread_sigmask (SIG_BLOCK, &stops, NULL);
    run->signals = signalfd (-1, &stops, SFD_CLOEXEC | SFD_NONBLOCK);
    // The processes a worker's shell leaves when it ends first (a SIGTERM
    // ends it at once, its program may take the grace period) come to this
    // process, not to init: they are reaped here and counted in their
    // worker's figures (s_reap), and a stop waits for them (s_stop_all).
    prctl (PR_SET_CHILD_SUBREAPER, 1);
    // A relative --state is of the folder zflow run was started in.
    run->state = zf_tools_path (run->options->state, run->state_path, sizeof run->state_path);
    run->pipeline = zf_tools_load (run->path);
    if (!run->pipeline || s_check_only (run->pipeline, run->options->only))
        return ZF_EXIT_USAGE;
    // Its own clients, and the actors it starts (unless they name their
    // own), use the pipeline's client certificate.
    zf_error_t err;
    if (zf_curve_setenv (run->pipeline, NULL, &err)) {
        fprintf (stderr, "zflow run: %s\n", err.text);
        return ZF_EXIT_USAGE;
    }
    ssize_t len = readlink ("/proc/self/exe", run->self_path, sizeof run->self_path - 1);
    run->self_path[len > 0 ? len : 0] = 0;
    // The workers to run; kinds that cannot run yet are a config error.
    int status = ZF_EXIT_OK;
    zlistx_t *actors = run->pipeline->actors;
    for (zf_actor_conf_t *a = (zf_actor_conf_t *) zlistx_first (actors); a;
         a = (zf_actor_conf_t *) zlistx_next (actors)) {
        if (!s_chosen (run->options->only, a->name))
            continue;
        if (!a->kind->run && !streq (a->kind->name, "exec")) {
            fprintf (stderr, "zflow run: %s:%d: actor '%s': kind %s cannot run in this build yet\n",
                     run->pipeline->file, a->line, a->name, a->kind->name);
            status = ZF_EXIT_USAGE;
        }
        run->workers = (s_worker_t *) realloc (run->workers,
                                               (run->nworkers + a->workers) * sizeof (s_worker_t));
        for (int w = 0; w < a->workers; w++)
            run->workers[run->nworkers++] =
                (s_worker_t){ .conf = a, .worker = w, .log = -1, .go = -1 };
    }
    return status;
}

//  Forks the first worker of each built-in actor (s_prefork), then the
//  watcher. This runs while the process has no thread and czmq has not
//  started: nothing that starts either may come before it.
static void
s_fork_ahead (s_run_t *run)
{
    // Every process started from here on carries this run's pid, for the
    // watcher to find what is left, and for a worker to see its supervisor
    // is gone (clients/python: it stops, handing back what it holds).
    char supervisor[16];
    snprintf (supervisor, sizeof supervisor, "%d", (int) getpid ());
    setenv ("ZFLOW_SUPERVISOR_PID", supervisor, 1);
    // libzmq's one-time setup (the lookups its PGM transport makes when a
    // first context is made) done once here, not again in each worker.
    zmq_ctx_term (zmq_ctx_new ());
    // A broker of this run's own, on loopback, with no journal to read
    // first: its port is known now, and the workers forked ahead go at
    // once, connecting while it starts.
    zf_pipeline_t *pipeline = run->pipeline;
    const s_options_t *o = run->options;
    if (!o->broker && !pipeline->cluster_settings.nodes &&
        !s_recovers (pipeline, run->state, o->no_journal, o->fresh))
        run->listening =
            s_listen (pipeline->broker_settings.endpoint, run->bound, sizeof run->bound);
    if (run->listening)
        run->endpoint = run->bound;
    for (int i = 0; i < run->nworkers; i++)
        if (run->workers[i].conf->kind->run) {
            s_prefork (run, &run->workers[i]);
            if (run->listening)
                s_release (run, &run->workers[i]);
        }
    // From here on the watcher ends what this run started if the run dies
    // without saying it ended in order (kill -9).
    run->watch = s_watcher_start (run, &run->watcher);
}

//  The broker the workers go to: the one given, the pipeline's group, or
//  one started in this process, with its journal and its HTTP gateway.
//  Returns 0, or ZF_EXIT_FAILED having said why.
static int
s_start_broker (s_run_t *run)
{
    zf_pipeline_t *pipeline = run->pipeline;
    const s_options_t *o = run->options;
    // A pipeline whose broker is a group: its actors go to the group, which
    // runs on its own (zflow broker --cluster on each of its hosts).
    run->given = o->broker;
    if (!run->given && pipeline->cluster_settings.nodes)
        run->given = run->group = zf_pipeline_brokers (pipeline);
    if (run->given) {
        run->endpoint = run->given;
        return ZF_EXIT_OK;
    }
    bool fallback;
    zf_error_t err;
    run->journal = s_journal_path (pipeline, run->state, o->no_journal, &fallback);
    if (run->journal && fallback && zf_journal_dir_create (run->journal) != 0) {
        // The default place is not writable (a read-only home): run, and
        // say what that costs. A folder asked for must work.
        fprintf (stderr,
                 "zflow run: cannot keep state in %s (%s): running without a journal, so a "
                 "killed run starts over; --state DIR keeps it elsewhere\n",
                 run->journal, strerror (errno));
        zstr_free (&run->journal);
    }
    if (run->journal && o->fresh && zf_journal_remove (run->journal, &err))
        fprintf (stderr, "zflow run: --fresh: %s\n", err.text);
    zf_broker_args_t args = { .pipeline = pipeline,
                              .endpoint = run->listening ? run->bound : NULL,
                              .journal = run->journal ? run->journal : "",
                              .insecure = o->insecure,
                              .listening = run->listening };
    run->broker = zf_broker_start (&args, &err);
    if (!run->broker ||
        zf_gateway_for (pipeline, zf_broker_endpoint (run->broker), zf_broker_events (run->broker),
                        o->insecure, &run->gateway, &err)) {
        fprintf (stderr, "zflow run: %s\n", err.text);
        return ZF_EXIT_FAILED;
    }
    run->endpoint = zf_broker_endpoint (run->broker);
    return ZF_EXIT_OK;
}

//  Opens the run's own session with the broker, says how the run will
//  end, and starts the live view. Returns 0, or ZF_EXIT_USAGE having said
//  why (no session, or a broker given that runs another pipeline).
static int
s_observe (s_run_t *run)
{
    zf_pipeline_t *pipeline = run->pipeline;
    const s_options_t *o = run->options;
    run->observer = zf_client_new (run->endpoint, "zflow-run", NULL, 0);
    if (!run->observer) {
        fprintf (stderr, "zflow run: %s\n", zf_client_last_error (NULL));
        return ZF_EXIT_USAGE;
    }
    zf_client_set_pipeline (run->observer, pipeline->name);
    if (run->given) {
        // A broker given: a word with it first, so that one of another
        // pipeline or version ends the run at once with one line (the
        // client's), not with each worker refused again and again.
        size_t size;
        zf_client_resume_point (run->observer, &size, 2000);
        if (zf_client_refused (run->observer))
            return ZF_EXIT_USAGE;
    }
    // A run ends on its own only when all its input comes from its own
    // finite sources; else it serves until it is stopped, and says why.
    bool outside = zf_pipeline_fed_from_outside (pipeline);
    bool finite = zf_pipeline_finite (pipeline) && !o->only && !o->serve && !outside;
    run->service = !finite;
    const char *why =
        finite     ? "; ends when its sources have ended and every item is through"
        : o->serve ? "; serves until stopped (--serve): Ctrl-C or SIGTERM ends it"
        : outside  ? "; serves until stopped, as a queue is fed from outside (external = "
                     "true): Ctrl-C or SIGTERM ends it"
        : o->only  ? "; runs until stopped (--only: the rest of the pipeline is elsewhere)"
                   : "; runs until stopped (a scheduler fires for ever): Ctrl-C or "
                     "SIGTERM ends it";
    s_log (run, "pipeline %s: broker at %s, %d worker process%s%s", pipeline->name, run->endpoint,
           run->nworkers, run->nworkers == 1 ? "" : "es", why);
    // On a terminal, a live view; elsewhere, log lines.
    const char *term = getenv ("TERM");
    if (!o->quiet && isatty (2) && term && !streq (term, "dumb"))
        run->progress = zf_progress_new (pipeline,
                                         run->broker ? zf_broker_events (run->broker)
                                                     : pipeline->broker_settings.events,
                                         stderr);
    return ZF_EXIT_OK;
}

//  Starts every worker: the ones forked ahead are told their broker, the
//  others are started as processes of their own.
static void
s_start_workers (s_run_t *run)
{
    run->started = zclock_mono ();
    // The workers forked ahead first: all they wait for is the broker.
    for (int i = 0; i < run->nworkers; i++)
        s_release (run, &run->workers[i]);
    // The version of the file this run runs, for the workers started from
    // here on (a reload replaces it; a file edited meanwhile is not read
    // until then).
    const char *tmp = getenv ("TMPDIR");
    snprintf (run->copy_dir, sizeof run->copy_dir, "%s/zflow-run-XXXXXX",
              tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp (run->copy_dir))
        run->copy_dir[0] = 0;
    size_t data_size = 0;
    char *data = s_read_file (run->path, &data_size);
    s_keep_copy (run, data, data_size);
    free (data);
    for (int i = 0; i < run->nworkers; i++)
        if (!run->workers[i].pid)
            s_start (run, &run->workers[i]);
}

//  Reads the signals that came. The first SIGINT or SIGTERM starts a stop:
//  the sources stop first, what they put drains through the pipeline
//  within the grace period, then the rest stops. Returns true when the
//  supervision ends now: a stop at once, or one whose queued items stay
//  with the broker.
static bool
s_stop_asked (s_run_t *run)
{
    s_stop_t was = run->stop;
    run->stop = s_signals (run, run->signals, run->stop);
    if (run->stop != S_DRAINING || was != S_RUNNING)
        return run->stop == S_AT_ONCE;
    int64_t grace = run->options->grace;
    run->drain_until = zclock_mono () + grace;
    run->stopping = true;
    if (run->journal || run->given) {
        // What is queued stays with the broker (in its journal, or in the
        // broker that outlives this run): every actor stops now, finishing
        // or handing back what it holds.
        s_log (run,
               "stopping: every actor finishes or hands back the items it holds (grace %lld ms; "
               "Ctrl-C again to stop at once)",
               (long long) grace);
        return true;
    }
    // Without a journal what is queued would be lost: the sources stop, and
    // what they put drains through within the grace.
    s_log (run,
           "stopping: sources stop, what is in flight drains (grace %lld ms; Ctrl-C again to stop "
           "at once)",
           (long long) grace);
    for (int i = 0; i < run->nworkers; i++) {
        s_worker_t *w = &run->workers[i];
        if (w->conf->kind->flags & ZF_KIND_SOURCE) {
            w->finished = true; // not started again
            if (w->pid > 0)
                s_signal (w->pid, SIGTERM);
        }
    }
    return false;
}

//  Starts the workers whose backoff is over and ends the crash loops of
//  those that ran a quiet minute. Returns true while a source is left.
static bool
s_tend (s_run_t *run, int64_t now)
{
    bool sources_left = false;
    for (int i = 0; i < run->nworkers; i++) {
        s_worker_t *w = &run->workers[i];
        if (!w->pid && !w->finished && now >= w->start_at)
            s_start (run, w);
        if (w->loops && w->pid > 0 && now - w->started_at >= LOOP_QUIET) {
            s_log (run, "%s/%d ran a quiet minute: its crash loop is over", w->conf->name,
                   w->worker);
            w->loops = 0;
            if (run->broker)
                zf_broker_crashloop (run->broker, w->conf->name, w->worker, w->pid, 0, 0, "");
        }
        sources_left |= (w->conf->kind->flags & ZF_KIND_SOURCE) && !w->finished;
    }
    return sources_left;
}

//  True when the run is through: a finite one's sources ended, or a
//  stop's drain, and nothing is left in any queue; or the grace is over.
static bool
s_through (s_run_t *run, bool sources_left)
{
    bool draining = run->stop == S_DRAINING;
    bool sources_gone = !sources_left;
    for (int i = 0; draining && i < run->nworkers; i++)
        if (run->workers[i].conf->kind->flags & ZF_KIND_SOURCE)
            sources_gone &= run->workers[i].pid <= 0;
    if ((!run->service && !sources_left) || (draining && sources_gone)) {
        run->totals = s_totals (run->observer);
        if (run->totals.answered && run->totals.depth == 0) {
            run->drained = true;
            return true;
        }
    }
    if (draining && zclock_mono () >= run->drain_until) {
        run->totals = s_totals (run->observer);
        s_log (run, "the grace period is over with %llu items still in the queues",
               (unsigned long long) run->totals.depth);
        return true;
    }
    return false;
}

//  Tends the workers until the run is through, stopped or failed: restarts
//  the ones that die, reloads the pipeline when asked, reports. Returns
//  ZF_EXIT_FAILED when a worker kept dying, ZF_EXIT_USAGE when the broker
//  was replaced by another's, else 0.
static int
s_supervise (s_run_t *run)
{
    int status = ZF_EXIT_OK;
    int64_t last_report = run->started;
    while (!s_stop_asked (run)) {
        if (run->reload || (run->broker && zf_broker_reload_asked (run->broker))) {
            s_reload (run, run->reload ? "SIGHUP" : "zflow reload");
            run->reload = false;
        }
        // Exits and restarts.
        int wstatus;
        pid_t pid;
        while ((pid = s_reap (run, -1, &wstatus, WNOHANG)) > 0)
            for (int i = 0; i < run->nworkers; i++)
                if (run->workers[i].pid == pid && s_exited (run, &run->workers[i], wstatus))
                    status = ZF_EXIT_FAILED;
        if (status)
            break;
        if (zf_client_refused (run->observer)) {
            status = ZF_EXIT_USAGE; // the broker was replaced by another's: said once
            break;
        }
        int64_t now = zclock_mono ();
        if (s_through (run, s_tend (run, now)))
            break;
        if (now - last_report >= 5000 && (!run->progress || run->options->verbose)) {
            run->totals = s_totals (run->observer);
            s_log (run, "%llu items done, %llu waiting or in flight, %llu dead",
                   (unsigned long long) run->totals.acked, (unsigned long long) run->totals.depth,
                   (unsigned long long) run->totals.dead);
            last_report = now;
        }
        for (int i = 0; i < run->nworkers; i++)
            s_drain_log (run, &run->workers[i], false);
        zf_progress_update (run->progress);
        zf_client_pump (run->observer, 50); // also the loop's pace
    }
    return status;
}

//  Stops every worker within grace_ms (SIGKILL after), then tells the
//  watcher the run ended in order: nothing is left for it to end.
static void
s_stop_workers (s_run_t *run, int64_t grace_ms)
{
    // A worker forked ahead and never told its broker ends at the end of
    // its socket (s_forked).
    for (int i = 0; i < run->nworkers; i++)
        if (run->workers[i].go >= 0) {
            close (run->workers[i].go);
            run->workers[i].go = -1;
        }
    s_stop_all (run, grace_ms, run->signals);
    if (run->signals >= 0)
        close (run->signals);
    run->signals = -1;
    if (run->watch >= 0) {
        if (write (run->watch, "", 1) != 1)
            s_log (run, "cannot tell the watcher the run ended: %s", strerror (errno));
        close (run->watch);
        waitpid (run->watcher, NULL, 0);
    }
    run->watch = -1;
}

//  Says how a run that started its workers ended, and what it leaves.
//  Returns status, or ZF_EXIT_FAILED when items ended as dead letters.
static int
s_report (s_run_t *run, int status)
{
    double seconds = (zclock_mono () - run->started) / 1000.0;
    const s_totals_t *totals = &run->totals;
    bool interrupted = run->stop != S_RUNNING;
    if (interrupted)
        s_log (run, "stopped after %.1f s%s", seconds,
               run->stop == S_AT_ONCE ? ", at once"
               : run->drained         ? ": sources stopped, everything they put went through"
               : run->journal         ? ": what is queued waits in the journal for the next run"
               : run->given           ? ": what is queued waits in the broker"
                                      : "");
    else if (!status && (totals->dead || totals->letters)) {
        fprintf (stderr,
                 "zflow run: done in %.1f s, but %llu item%s ended in a dead-letter queue (%s)",
                 seconds, (unsigned long long) totals->letters, totals->letters == 1 ? "" : "s",
                 totals->where);
        if (run->journal)
            fprintf (stderr,
                     ": they stay in %s; `zflow status --state %s` lists them with their "
                     "reasons\n",
                     run->journal, run->journal);
        else
            fprintf (stderr, "; without a journal they are gone with the broker\n");
        status = ZF_EXIT_FAILED;
    }
    else if (!status)
        s_log (run, "done in %.1f s: %llu items handled in all queues", seconds,
               (unsigned long long) totals->acked);
    if (!status && !interrupted)
        s_log_results (run);
    s_log_resources (run);
    return status;
}

//  Ends the run, however far it got: stops its workers, says how it ended
//  and frees what it holds, the one way out. Returns the exit status:
//  status, or ZF_EXIT_FAILED when items ended as dead letters.
static int
s_finish (s_run_t *run, int status)
{
    bool interrupted = run->stop != S_RUNNING;
    // Every item through to a sink: nothing is left to resume, and the state
    // goes. A run stopped, or failed on the way, keeps it, and so does one
    // with dead letters: they wait there until they are dealt with.
    if (run->started && !interrupted && !status)
        run->totals = s_totals (run->observer);
    bool completed = run->started && !interrupted && !status && !run->totals.letters;
    zf_progress_destroy (&run->progress); // the lines below say how it ended
    zf_client_destroy (&run->observer);
    // A run that failed before its workers were started stops the ones
    // forked ahead at once: it was never running, and waits for none.
    int64_t left = !run->started || run->stop == S_AT_ONCE ? 0
                   : run->drain_until                      ? run->drain_until - zclock_mono ()
                                                           : run->options->grace;
    s_stop_workers (run, left > 0 ? left : 0);
    if (run->started)
        status = s_report (run, status);
    zf_gateway_destroy (&run->gateway);
    zf_broker_destroy (&run->broker);
    if (run->journal && completed) {
        // The next run starts from the beginning.
        zf_error_t err;
        if (zf_journal_remove (run->journal, &err))
            fprintf (stderr, "zflow run: %s\n", err.text);
        char *folder = strdup (run->journal);
        rmdir (dirname (folder)); // the state folder zflow run made, if now empty
        free (folder);
    }
    else if (run->journal && run->started)
        s_log (run,
               "state kept in %s: the next run resumes where this one stopped (--fresh "
               "starts over)",
               run->journal);
    zstr_free (&run->journal);
    zstr_free (&run->group);
    free (run->workers);
    if (run->copy[0])
        unlink (run->copy);
    if (run->copy_dir[0])
        rmdir (run->copy_dir);
    zf_pipeline_destroy (&run->pipeline); // the latest version; the others with it
    zlistx_destroy (&run->replaced);
    return status;
}

//  zflow run PIPELINE: each step runs only if the ones before it went well,
//  and every way out goes through s_finish.
static int
s_run (const void *options, int argc, char **args)
{
    (void) argc;
    s_run_t run = {
        .options = (const s_options_t *) options, .path = args[0], .signals = -1, .watch = -1
    };
    int status = s_prepare (&run);
    if (!status) {
        // First, while no thread runs: the workers forked ahead.
        s_fork_ahead (&run);
        status = s_start_broker (&run);
    }
    if (!status)
        status = s_observe (&run);
    if (!status) {
        s_start_workers (&run);
        status = s_supervise (&run);
    }
    return s_finish (&run, status);
}

static const zf_key_t s_options[] = {
    { .name = "broker",
      .check = zf_parse_endpoints,
      .shown = "ENDPOINT",
      .help = "use the broker running there (a group: comma-separated), not one of its own",
      ZF_FIELD (ZF_KEY_STRING, s_options_t, broker) },
    { .name = "only",
      .shown = "ACTOR,...",
      .help = "start only these actors (the others run elsewhere); serve until stopped",
      ZF_FIELD (ZF_KEY_STRING, s_options_t, only) },
    { .name = "grace",
      .fallback = "10s",
      .help = "how long a stopping actor may take to finish or hand back its items",
      ZF_FIELD (ZF_KEY_DURATION, s_options_t, grace) },
    { .name = "state",
      .shown = "DIR",
      .help = "keep the journal in DIR/journal, not under $XDG_STATE_HOME/zflow",
      ZF_FIELD (ZF_KEY_STRING, s_options_t, state) },
    { .name = "no-journal",
      .help = "keep no journal, even with --state: a killed run starts over",
      ZF_FIELD (ZF_KEY_BOOL, s_options_t, no_journal) },
    { .name = "fresh",
      .help = "drop the journal an earlier run left: start from the beginning",
      ZF_FIELD (ZF_KEY_BOOL, s_options_t, fresh) },
    { .name = "serve",
      .help = "serve until stopped, even a pipeline that would end by itself",
      ZF_FIELD (ZF_KEY_BOOL, s_options_t, serve) },
    { .name = "insecure",
      .help = "let the broker listen beyond loopback without CURVE (or a token)",
      ZF_FIELD (ZF_KEY_BOOL, s_options_t, insecure) },
    { .name = "quiet",
      .help = "no live view, no progress lines, no actors' info lines",
      ZF_FIELD (ZF_KEY_BOOL, s_options_t, quiet) },
    { .name = "verbose",
      .help = "a line of figures every 5 s, even beside the live view",
      ZF_FIELD (ZF_KEY_BOOL, s_options_t, verbose) },
    { NULL }
};

const zf_cmd_t zf_cmd_run = {
    .name = "run",
    .args = "PIPELINE",
    .min_args = 1,
    .max_args = 1,
    .summary = "launch a pipeline: broker and every actor",
    .help = "Starts the broker in this process (unless --broker names one, or the pipeline's\n"
            "cluster section a group), then every worker of every actor as a process of its\n"
            "own, restarting one that dies: 6 deaths in a minute fail a run that ends by\n"
            "itself, and put a worker of a serving run in a crash loop (restarted 1 s to 60 s\n"
            "apart). A pipeline whose input all comes from its own finite sources (no\n"
            "scheduler, no queue with external = true, neither --only nor --serve) ends by\n"
            "itself once its sources have ended and every item is through; any other serves\n"
            "until SIGINT or SIGTERM. A stop gives every actor --grace to finish or hand back\n"
            "what it holds; a second Ctrl-C stops at once. SIGHUP, or zflow reload, reads\n"
            "the pipeline file again.\n"
            "\n"
            "The broker of the run keeps a journal in a state folder (the broker's journal\n"
            "key, else --state DIR, else $XDG_STATE_HOME/zflow/NAME-HASH): a run killed,\n"
            "stopped or failed resumes from it at the next zflow run of the file, and one\n"
            "that gets every item through leaves none. --fresh drops it first. With\n"
            "--no-journal what is queued ends with the run, so a stop lets what the sources\n"
            "put drain through first.",
    .exits = "0 done, every item through; or stopped by SIGINT or SIGTERM\n"
             "1 items ended as dead letters, a worker kept dying, or the broker failed to start\n"
             "2 a usage or config error, or a broker given that runs another pipeline",
    .options = s_options,
    .options_size = sizeof (s_options_t),
    .run = s_run,
};
