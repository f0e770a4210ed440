/*  zflow_plugin.h: the interface of a processor plugin.

    A processor with `plugin = PATH.so` loads that shared library once per
    worker and calls its zflow_process for every item, in the worker's own
    thread, one item at a time. The library needs nothing from libzflow:
    this header is all of the interface, and bodies are msgpack bytes.

    The library exports:

        int zflow_process (zflow_call_t *call);         // required

    which reads call->body, passes on zero or more outputs with
    call->emit (call, body, size), and returns 0; or returns -1 with a
    reason written to call->error: the item then fails (retried, or passed
    on as {"error": REASON, "item": BODY} with on-error = emit) and the
    outputs it emitted are dropped. Outputs are copied: the plugin keeps
    ownership of what it passes to emit.

    Optionally it also exports:

        void *zflow_open (const char *actor, int worker);   // state, or NULL
        void zflow_close (void *state);

    zflow_open runs once when the worker starts; what it returns is passed
    to each call as call->state, and to zflow_close when the worker stops.

    An identity plugin (pipelines/custom/identity.c):

        #include <zflow_plugin.h>
        int
        zflow_process (zflow_call_t *call)
        {
            return call->emit (call, call->body, call->size);
        }

    Built with: cc -shared -fPIC -I include -o identity.so identity.c

    A plugin runs inside the worker: a crash takes the worker down (it is
    restarted and its items are delivered again), and the per-item timeout
    does not apply (a plugin that may hang belongs in a command).
*/
#ifndef ZFLOW_PLUGIN_H_INCLUDED
#define ZFLOW_PLUGIN_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  The version of this interface; a plugin may check call->abi.
#define ZFLOW_PLUGIN_ABI 1

typedef struct zflow_call zflow_call_t;

//  Passes on one output (msgpack bytes, copied). Returns 0, or -1 if the
//  output is refused (not valid msgpack): the call should then fail.
typedef int (zflow_emit_fn) (zflow_call_t *call, const void *body, size_t size);

struct zflow_call {
    int abi;             // ZFLOW_PLUGIN_ABI
    const void *body;    // the item's body, msgpack
    size_t size;         // its size in bytes
    const uint8_t *id;   // the item's id, 16 bytes
    uint32_t attempt;    // its delivery attempt, 1 on the first
    void *state;         // what zflow_open returned, or NULL
    zflow_emit_fn *emit; // passes on an output
    char *error;         // where a failing call writes its reason
    size_t error_size;   // room at error, terminating NUL included
    void *internal;      // the processor's own; do not touch
};

//  The function a plugin exports, and the optional ones.
typedef int (zflow_process_fn) (zflow_call_t *call);
typedef void *(zflow_open_fn) (const char *actor, int worker);
typedef void (zflow_close_fn) (void *state);

#ifdef __cplusplus
}
#endif
#endif
