/*  A processor plugin for the tests: each item a msgpack string or integer.
    "fail" fails with a reason, "twice" gives two outputs, "bad" tries to
    emit something that is not msgpack, "crash" kills the worker process
    (SIGSEGV, as a plugin's bug would), a number below 64 gives twice it,
    anything else itself. Each call counts itself in the state zflow_open
    made, which shows the state reaches the calls. */
#include <zflow_plugin.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *zflow_open (const char *actor, int worker);
void zflow_close (void *state);
int zflow_process (zflow_call_t *call);

void *
zflow_open (const char *actor, int worker)
{
    (void) actor;
    (void) worker;
    return calloc (1, sizeof (unsigned long));
}

void
zflow_close (void *state)
{
    free (state);
}

static int
s_is (zflow_call_t *call, const char *text)
{
    size_t len = strlen (text);
    const unsigned char *body = (const unsigned char *) call->body;
    return call->size == len + 1 && body[0] == (0xa0 | len) && memcmp (body + 1, text, len) == 0;
}

int
zflow_process (zflow_call_t *call)
{
    ++*(unsigned long *) call->state;
    if (call->abi != ZFLOW_PLUGIN_ABI)
        return -1;
    if (s_is (call, "fail")) {
        snprintf (call->error, call->error_size, "asked to fail");
        return -1;
    }
    if (s_is (call, "crash")) {
        signal (SIGSEGV, SIG_DFL); // the sanitizers' handler would abort instead
        raise (SIGSEGV);
    }
    if (s_is (call, "twice"))
        return call->emit (call, call->body, call->size) ||
               call->emit (call, call->body, call->size);
    if (s_is (call, "bad")) {
        unsigned char never = 0xc1; // a byte no msgpack value starts with
        if (call->emit (call, &never, 1) != 0)
            snprintf (call->error, call->error_size, "emit refused a bad output");
        return -1;
    }
    const unsigned char *body = (const unsigned char *) call->body;
    if (call->size == 1 && body[0] < 0x40) { // positive fixint
        unsigned char out = (unsigned char) (body[0] * 2);
        return call->emit (call, &out, 1);
    }
    return call->emit (call, call->body, call->size);
}
