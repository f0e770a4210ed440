/*  Helpers shared by the tests that run brokers and actor processes. */
#include "zf_testkit.h"

#include <poll.h>
#include <signal.h>
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
    zf_pipeline_t *pipeline = zf_pipeline_load (path, errors);
    for (char *e = (char *) zlistx_first (errors); e; e = (char *) zlistx_next (errors))
        fprintf (stderr, "%s\n", e);
    zlistx_destroy (&errors);
    unlink (path);
    return pipeline;
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
