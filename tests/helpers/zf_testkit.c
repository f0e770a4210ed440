/*  Helpers shared by the tests that run brokers and actor processes. */
#include "zf_testkit.h"
#include "zf_mp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

zf_pipeline_t *
zf_test_pipeline (const char *text)
{
    char path[] = "/tmp/zflow-test-XXXXXX.zpl";
    int fd = mkstemps (path, 4);
    if (fd < 0)
        return NULL;
    size_t len = strlen (text);
    if (write (fd, text, len) != (ssize_t) len) {
        close (fd);
        return NULL;
    }
    close (fd);
    zlistx_t *errors = zf_errors_new ();
    zf_pipeline_t *pipeline = zf_pipeline_load (path, zf_kinds (), errors);
    for (char *e = (char *) zlistx_first (errors); e; e = (char *) zlistx_next (errors))
        fprintf (stderr, "%s\n", e);
    zlistx_destroy (&errors);
    unlink (path);
    return pipeline;
}

#define MAX_CHILDREN 64
static pid_t s_children[MAX_CHILDREN]; // processes started and not yet reaped
static int s_nchildren;                // entries in s_children

int
zf_test_kill_all (void **state)
{
    for (int i = 0; i < s_nchildren; i++)
        if (kill (s_children[i], SIGKILL) == 0)
            waitpid (s_children[i], NULL, 0);
    s_nchildren = 0;
    return 0;
}

pid_t
zf_test_spawn (char *const argv[], int *out_fd)
{
    int fds[2];
    if (pipe (fds))
        return -1;
    pid_t pid = fork ();
    if (pid == 0) {
        dup2 (fds[1], 1);
        close (fds[0]);
        close (fds[1]);
        execv (argv[0], argv);
        _exit (127);
    }
    close (fds[1]);
    *out_fd = fds[0];
    if (s_nchildren < MAX_CHILDREN)
        s_children[s_nchildren++] = pid;
    return pid;
}

int
zf_test_read_line (int fd, char *buffer, size_t size, int timeout_ms)
{
    size_t n = 0;
    int64_t deadline = zclock_mono () + timeout_ms;
    while (n + 1 < size) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return -1;
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll (&p, 1, (int) left) <= 0)
            continue;
        char c;
        if (read (fd, &c, 1) != 1)
            return -1;
        if (c == '\n')
            break;
        buffer[n++] = c;
    }
    buffer[n] = 0;
    return 0;
}

int
zf_test_reap (pid_t pid, int timeout_ms)
{
    for (int i = 0; i < s_nchildren; i++)
        if (s_children[i] == pid) {
            s_children[i] = s_children[--s_nchildren];
            break;
        }
    int status = 0;
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        if (waitpid (pid, &status, WNOHANG) == pid)
            return status;
        zclock_sleep (10); // bounded poll for a child's exit
    }
    kill (pid, SIGKILL);
    waitpid (pid, &status, 0);
    return status;
}

static char *
s_slurp_fd (int fd)
{
    size_t cap = 4096, len = 0;
    char *text = (char *) malloc (cap);
    ssize_t n;
    while ((n = read (fd, text + len, cap - len - 1)) > 0) {
        len += (size_t) n;
        if (cap - len < 2) {
            cap *= 2;
            text = (char *) realloc (text, cap);
        }
    }
    text[len] = 0;
    return text;
}

zf_test_result_t
zf_test_run (char *const argv[], const char *input)
{
    char out_path[] = "/tmp/zflow-run-out-XXXXXX", err_path[] = "/tmp/zflow-run-err-XXXXXX";
    int out = mkstemp (out_path), err = mkstemp (err_path);
    int in[2];
    zf_test_result_t result = { -1, NULL, NULL };
    if (out < 0 || err < 0 || pipe (in))
        return result;
    pid_t pid = fork ();
    if (pid == 0) {
        dup2 (in[0], 0);
        dup2 (out, 1);
        dup2 (err, 2);
        close (in[1]);
        alarm (30);
        execv (argv[0], argv);
        _exit (127);
    }
    close (in[0]);
    if (input && write (in[1], input, strlen (input)) < 0)
        perror ("write");
    close (in[1]);
    int status = zf_test_reap (pid, 35000);
    result.status = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
    lseek (out, 0, SEEK_SET);
    lseek (err, 0, SEEK_SET);
    result.out = s_slurp_fd (out);
    result.err = s_slurp_fd (err);
    close (out);
    close (err);
    unlink (out_path);
    unlink (err_path);
    return result;
}

void
zf_test_result_free (zf_test_result_t *result)
{
    free (result->out);
    free (result->err);
    result->out = result->err = NULL;
}

zf_test_result_t
zf_test_zflow (const char *input, const char *arg, ...)
{
    char *argv[24] = { (char *) ZFLOW_BIN };
    int argc = 1;
    va_list args;
    va_start (args, arg);
    for (const char *a = arg; a && argc < 23; a = va_arg (args, const char *))
        argv[argc++] = (char *) a;
    va_end (args);
    argv[argc] = NULL;
    return zf_test_run (argv, input);
}

int
zf_test_dir_new (char *dir, size_t size, const char *name)
{
    snprintf (dir, size, "/tmp/zflow-test-%s-XXXXXX", name);
    return mkdtemp (dir) ? 0 : -1;
}

int
zf_test_dir_remove (const char *dir)
{
    if (getenv ("ZFLOW_TEST_KEEP")) {
        fprintf (stderr, "kept %s (ZFLOW_TEST_KEEP)\n", dir);
        return 0;
    }
    char command[600];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    return system (command) == 0 ? 0 : -1;
}

int
zf_test_write (const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    if (!file)
        return -1;
    fputs (text, file);
    return fclose (file) ? -1 : 0;
}

char *
zf_test_slurp (const char *dir, const char *name)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    zchunk_t *chunk = zchunk_slurp (path, 0);
    if (!chunk)
        return NULL;
    char *text = strndup ((char *) zchunk_data (chunk), zchunk_size (chunk));
    zchunk_destroy (&chunk);
    return text;
}

zf_broker_t *
zf_test_broker (const char *dir, const char *text, zf_pipeline_t **pipeline_p)
{
    if (zf_test_write (dir, "p.zpl", text))
        return NULL;
    char path[512];
    snprintf (path, sizeof path, "%s/p.zpl", dir);
    zlistx_t *errors = zf_errors_new ();
    *pipeline_p = zf_pipeline_load (path, zf_kinds (), errors);
    for (char *e = (char *) zlistx_first (errors); e; e = (char *) zlistx_next (errors))
        fprintf (stderr, "%s\n", e);
    zlistx_destroy (&errors);
    if (!*pipeline_p)
        return NULL;
    zf_error_t err;
    zf_broker_t *broker =
        zf_broker_new (*pipeline_p, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", NULL, &err);
    if (!broker)
        fprintf (stderr, "broker: %s\n", err.text);
    return broker;
}

pid_t
zf_test_actor (const char *dir, zf_broker_t *broker, const char *name)
{
    return zf_test_actor_at (dir, zf_broker_endpoint (broker), name);
}

pid_t
zf_test_actor_at (const char *dir, const char *endpoint, const char *name)
{
    char command[1400];
    // exec: the shell becomes zflow, so the pid is the actor's
    snprintf (command, sizeof command,
              "exec '%s' actor %s '%s/p.zpl' --broker %s >/dev/null 2>>'%s/%s.log'", ZFLOW_BIN,
              name, dir, endpoint, dir, name);
    char *argv[] = { "/bin/sh", "-c", command, NULL };
    int out = -1;
    pid_t pid = zf_test_spawn (argv, &out);
    close (out);
    return pid;
}

int
zf_test_count_lines (const char *dir, const char *name, int *seen, int range)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    memset (seen, 0, range * sizeof (int));
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    int lines = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline (&line, &cap, file) > 0) {
        int value = atoi (line);
        if (value >= 0 && value < range)
            seen[value]++;
        lines++;
    }
    free (line);
    fclose (file);
    return lines;
}

int
zf_test_wait_lines (const char *dir, const char *name, int *seen, int range, int expect)
{
    int lines = 0;
    for (int tries = 0;
         tries < 600 && (lines = zf_test_count_lines (dir, name, seen, range)) < expect; tries++)
        zclock_sleep (100); // bounded poll of a file another process writes
    return lines;
}

//  How many times dir/broker.out says the broker started.
static int
s_broker_starts (const char *dir)
{
    char *text = zf_test_slurp (dir, "broker.out");
    int starts = 0;
    for (const char *p = text; p && (p = strstr (p, "actors connect to")); p++)
        starts++;
    free (text);
    return starts;
}

pid_t
zf_test_broker_process (const char *dir)
{
    int before = s_broker_starts (dir);
    char command[1400];
    snprintf (command, sizeof command,
              "exec '%s' broker '%s/p.zpl' >>'%s/broker.out' 2>>'%s/broker.log'", ZFLOW_BIN, dir,
              dir, dir);
    char *argv[] = { "/bin/sh", "-c", command, NULL };
    int out = -1;
    pid_t pid = zf_test_spawn (argv, &out);
    close (out);
    for (int tries = 0; tries < 1000 && s_broker_starts (dir) == before; tries++) {
        if (waitpid (pid, NULL, WNOHANG) == pid)
            return -1;     // it stopped: broker.log says why
        zclock_sleep (10); // bounded poll of a file another process writes
    }
    return s_broker_starts (dir) > before ? pid : -1;
}

int
zf_test_put_ints (zf_client_t *client, const char *queue, int count, zf_id_t *ids)
{
    for (int i = 0; i < count; i++) {
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_int (&pk, i);
        int rc = zf_client_put (client, queue, buffer.data, buffer.size, ids ? &ids[i] : NULL);
        msgpack_sbuffer_destroy (&buffer);
        if (rc)
            return -1;
    }
    return 0;
}

int64_t
zf_test_body_int (zf_item_t *item)
{
    size_t size;
    const void *body = zf_item_body (item, &size);
    zf_mp_t mp;
    zf_mp_init (&mp, body, size);
    int64_t value = -1;
    zf_mp_int (&mp, &value, NULL);
    return value;
}

int
zf_test_take (zf_client_t *worker, int n, int *seen, int *redelivered)
{
    return zf_test_take_range (worker, n, seen, n, redelivered);
}

int
zf_test_take_range (zf_client_t *worker, int n, int *seen, int range, int *redelivered)
{
    int got = 0;
    int64_t deadline = zclock_mono () + 20000;
    while (got < n && zclock_mono () < deadline) {
        zf_item_t *item = zf_client_next (worker, 100);
        if (!item)
            continue;
        int64_t value = zf_test_body_int (item);
        if (value >= 0 && value < range)
            seen[value]++;
        else
            seen[0] += 1000; // no such item: shows as a duplicate
        if (redelivered)
            *redelivered += zf_item_attempt (item) > 1;
        got++;
        zf_client_ack (worker, &item);
    }
    return got;
}

void
zf_test_count (const int *seen, int n, int *lost, int *duplicated)
{
    *lost = *duplicated = 0;
    for (int i = 0; i < n; i++) {
        *lost += seen[i] == 0;
        *duplicated += seen[i] > 1;
    }
}

int
zf_test_free_port (void)
{
    int port = -1;
    for (int tries = 0; tries < 100 && (port < 0 || port >= 49152); tries++) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = { .sin_family = AF_INET,
                                    .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
        socklen_t size = sizeof addr;
        if (fd >= 0 && bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0 &&
            getsockname (fd, (struct sockaddr *) &addr, &size) == 0)
            port = ntohs (addr.sin_port);
        if (fd >= 0)
            close (fd);
    }
    return port < 49152 ? port : -1;
}
