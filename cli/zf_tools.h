/*  zf_tools: the zflow commands that run or talk to a broker. */
#ifndef ZF_TOOLS_H_INCLUDED
#define ZF_TOOLS_H_INCLUDED

#include "zf_cmd.h"
#include "zf_pipeline.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Loads the pipeline at path, printing every mistake (and how many) and
//  every warning; NULL if there was a mistake.
zf_pipeline_t *zf_tools_load (const char *path);

//  The same, its relative paths of dir (NULL: the file's folder).
zf_pipeline_t *zf_tools_load_in (const char *path, const char *dir);

//  A path given on the command line, as the broker takes it: a relative
//  one is of the current folder (a key of the config file is of the file's
//  folder; a flag is not), written into buffer. NULL and "" stay as they are.
const char *zf_tools_path (const char *path, char *buffer, size_t size);

//  text (an item's key, a header: anyone's bytes) as a terminal may show it:
//  control bytes as '?', cut to fit out (size bytes, its NUL included).
const char *zf_tools_printable (const char *text, char *out, size_t size);

//  zflow broker PIPELINE: the broker of a pipeline alone, or one node of
//  its replicated group.
extern const zf_cmd_t zf_cmd_broker;

//  zflow status ENDPOINT [ID], zflow status --state DIR
extern const zf_cmd_t zf_cmd_status;

//  zflow journal repair DIR [--drop-later]: cuts a corrupt journal at its
//  first bad record, keeping a copy of what it cuts (zf_journal_repair).
extern const zf_cmd_t zf_cmd_journal;

//  zflow tap ENDPOINT [PATTERN ...]: live events and data taps.
extern const zf_cmd_t zf_cmd_tap;

//  zflow actor NAME PIPELINE [--broker E] [--worker N] [--dir DIR]: one
//  worker of a built-in actor (zflow run starts its workers so).
extern const zf_cmd_t zf_cmd_actor;

//  Runs worker number worker of conf, an actor of pipeline, on the broker
//  at endpoint (NULL: the pipeline's own) until it ends, as `zflow actor`
//  does; returns its exit status.
int zf_tools_actor (zf_pipeline_t *pipeline, zf_actor_conf_t *conf, const char *endpoint,
                    int worker);

//  zflow keygen NAME [--dir DIR]: a CURVE certificate pair, NAME and NAME_secret.
extern const zf_cmd_t zf_cmd_keygen;

//  zflow cron EXPR [--from TIME] [--count N] [--tz ZONE]: the next fire times.
extern const zf_cmd_t zf_cmd_cron;

//  zflow top EVENTS_ENDPOINT [--once] [--timeout D]: queues and actors, live
//  (cli/zf_top.c).
extern const zf_cmd_t zf_cmd_top;

#ifdef __cplusplus
}
#endif
#endif
