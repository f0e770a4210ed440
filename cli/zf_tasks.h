/*  zf_tasks: the zflow commands of the task front door: put work in (now,
    later, first), ask for its result, cancel it.
*/
#ifndef ZF_TASKS_H_INCLUDED
#define ZF_TASKS_H_INCLUDED

#include "zf_cmd.h"
#include "zflow.h"

#ifdef __cplusplus
extern "C" {
#endif

//  zflow put, zflow result and zflow cancel.
extern const zf_cmd_t zf_cmd_put;
extern const zf_cmd_t zf_cmd_result;
extern const zf_cmd_t zf_cmd_cancel;

//  The id argument text of command into id; -1 (having said why on
//  stderr) if it is not 32 hex digits or is all zero (no item's id).
int zf_tasks_id_arg (const char *command, const char *text, zf_id_t *id);

//  A root's result as JSON, {"id","state","results":[...]}, with "error",
//  "queue" and "attempts" when it is dead (zflow result, GET /results/ID).
//  Caller frees.
char *zf_tasks_result_json (zf_result_t *result, const char *hex);

//  An item's state as JSON, {"id", "state"} with "error", "queue" and
//  "attempts" for one that failed, and a newline (GET /messages/ID).
char *zf_tasks_item_json (zf_result_t *item, const char *hex);

#ifdef __cplusplus
}
#endif
#endif
