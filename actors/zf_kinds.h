/*  zf_kinds: the built-in actor kinds and their config key tables.

    Each kind is defined in its own file under actors/ (zf_fetcher.c, ...),
    beside the code that runs it; this module lists them.
*/
#ifndef ZF_KINDS_H_INCLUDED
#define ZF_KINDS_H_INCLUDED

#include "zf_keys.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const zf_kind_t zf_producer_kind;
extern const zf_kind_t zf_processor_kind;
extern const zf_kind_t zf_exec_kind;
extern const zf_kind_t zf_fetcher_kind;
extern const zf_kind_t zf_scheduler_kind;
extern const zf_kind_t zf_gather_kind;
extern const zf_kind_t zf_sink_kind;

//  The actor functions of the kinds that have one (args: zf_actor_args_t).
void zf_producer_actor (zsock_t *pipe, void *args);
void zf_sink_actor (zsock_t *pipe, void *args);

//  All kinds, ended by NULL.
const zf_kind_t *const *zf_kinds (void);

//  Keys every actor has.
#define ZF_KEY_KIND                                                                                \
    {                                                                                              \
        .name = "kind", .type = ZF_KEY_STRING,                                                     \
        .help = "what the actor does (zflow help lists the kinds)", .flags = ZF_KEY_REQUIRED       \
    }
#define ZF_KEY_CURVE                                                                               \
    {                                                                                              \
        .name = "curve-secret", .type = ZF_KEY_STRING,                                             \
        .help = "its CURVE certificate (the NAME_secret file of zflow keygen), when the broker "   \
                "has curve-secret; default: the broker section's curve-client",                    \
        .flags = ZF_KEY_PATH                                                                       \
    }
#define ZF_KEY_WORKERS                                                                             \
    {                                                                                              \
        .name = "workers", .type = ZF_KEY_INT, .fallback = "1",                                    \
        .help = "processes of this actor, sharing its input", .min = 1, .max = 1024                \
    }
#define ZF_KEY_INPUT                                                                               \
    {                                                                                              \
        .name = "input", .type = ZF_KEY_QUEUE, .help = "the queue it reads",                       \
        .flags = ZF_KEY_REQUIRED                                                                   \
    }
#define ZF_KEY_OUTPUT                                                                              \
    {                                                                                              \
        .name = "output", .type = ZF_KEY_QUEUE, .help = "the queue it writes",                     \
        .flags = ZF_KEY_REQUIRED                                                                   \
    }

#ifdef __cplusplus
}
#endif
#endif
