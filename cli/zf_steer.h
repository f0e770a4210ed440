/*  zf_steer: the zflow commands that steer a running broker: list, requeue
    and purge dead letters, pause, resume and purge queues, reload its
    pipeline file, add and change schedules (docs/operations.md).
*/
#ifndef ZF_STEER_H_INCLUDED
#define ZF_STEER_H_INCLUDED

#include "zf_cmd.h"
#include "zflow.h"

#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

//  zflow dead, requeue, purge, pause, resume, reload (the run or broker
//  serving there reads its pipeline file again, as SIGHUP does) and
//  schedule (add, list, pause, resume, remove, run).
extern const zf_cmd_t zf_cmd_dead;
extern const zf_cmd_t zf_cmd_requeue;
extern const zf_cmd_t zf_cmd_purge;
extern const zf_cmd_t zf_cmd_pause;
extern const zf_cmd_t zf_cmd_resume;
extern const zf_cmd_t zf_cmd_reload;
extern const zf_cmd_t zf_cmd_schedule;

//  A listing of dead letters as JSON (zflow dead --json, GET
//  /queues/Q/dead): {"count": N, "letters": [{"id", "root", "queue",
//  "attempts", "died" (ms since the Unix epoch), "error", "headers",
//  "body"}]}, and a newline. Caller frees.
char *zf_steer_letters_json (zf_result_t *listing);

//  Schedules as JSON (GET /schedules, zflow schedule list --json): an
//  array; with only, that one schedule's object, or NULL when there is
//  none. A newline after. Caller frees.
char *zf_steer_schedules_json (zf_result_t *answer, const char *only);

//  A schedule as a PUT /schedules/NAME body gives it ({"cron" | "every" |
//  "at", "tz", "queue", "payload", "misfire_grace", "coalesce",
//  "max_instances"}) into spec, whose strings and payload point into keep
//  (the caller's, destroyed after); its queue into queue. 0, or -1 with
//  why filled.
int zf_steer_spec_json (const char *json, zf_schedule_spec_t *spec, msgpack_sbuffer *keep,
                        char *queue, size_t queue_size, char *why, size_t why_size);

//  What a steering command did as JSON ({"queue", "count", "paused",
//  "note"}) and a newline (the HTTP routes). Caller frees.
char *zf_steer_done_json (zf_result_t *done, const char *queue);

#ifdef __cplusplus
}
#endif
#endif
