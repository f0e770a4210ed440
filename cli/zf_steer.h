/*  zf_steer: the zflow commands that steer a running broker: list, requeue
    and purge dead letters, pause, resume and purge queues
    (docs/operations.md).
*/
#ifndef ZF_STEER_H_INCLUDED
#define ZF_STEER_H_INCLUDED

#include "zflow.h"

#ifdef __cplusplus
extern "C" {
#endif

//  zflow dead ENDPOINT [QUEUE] [--limit N] [--where H=V] [--json]
int zf_cmd_dead (int argc, char **argv);

//  zflow requeue ENDPOINT QUEUE.dead [ID ...] [--all] [--where H=V]
int zf_cmd_requeue (int argc, char **argv);

//  zflow purge ENDPOINT QUEUE [--older-than D] [--where H=V] [--yes]
int zf_cmd_purge (int argc, char **argv);

//  zflow pause ENDPOINT QUEUE, zflow resume ENDPOINT QUEUE
int zf_cmd_pause (int argc, char **argv);
int zf_cmd_resume (int argc, char **argv);

//  A listing of dead letters as JSON (zflow dead --json, GET
//  /queues/Q/dead): {"count": N, "letters": [{"id", "root", "queue",
//  "attempts", "died" (ms since the Unix epoch), "error", "headers",
//  "body"}]}, and a newline. Caller frees.
char *zf_steer_letters_json (zf_result_t *listing);

//  What a steering command did as JSON ({"queue", "count", "paused",
//  "note"}) and a newline (the HTTP routes). Caller frees.
char *zf_steer_done_json (zf_result_t *done, const char *queue);

#ifdef __cplusplus
}
#endif
#endif
