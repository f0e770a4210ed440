/*  zf_schedules: schedules added to a running broker (zflow schedule add,
    PUT /schedules/NAME), kept, journaled, and fired by the broker itself.

    A schedule fires as a scheduler actor's job does (config/zf_trigger.h:
    cron, every or at, in a zone; misfire-grace, coalesce, max-instances),
    each firing an item put to its queue with an id derived from
    "PIPELINE/schedule/NAME" and its time, as a scheduler's firings are: put
    once, however often asked. The broker that serves fires them: in a Raft
    group, the leader; each firing, and each change, is a SCHEDULE record,
    so that a restart or a new leader goes on from the last firing (those
    missed meanwhile run as misfire-grace and coalesce say).

    The jobs of the config file's scheduler actors are listed beside them,
    as `config`: their actors fire them, and they change with the file.
*/
#ifndef ZF_SCHEDULES_H_INCLUDED
#define ZF_SCHEDULES_H_INCLUDED

#include "zf_server.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The broker's schedules, none at first; freed with them.
zf_schedules_t *zf_schedules_new (void);
void zf_schedules_destroy (zf_schedules_t **self_p);

//  The CONTROL being handled (op schedules or schedule-*), done and its
//  REPORT filled in server->out: ZF_REFUSAL_NONE; or refused, the kind of
//  it, with why filled.
zf_refusal_t zf_schedules_control (zf_server_t *server, char *why, size_t why_size);

//  Fires the schedules due now. Only a broker that serves. Costs nothing
//  (not even a look at the clock) when there are none: every loop turn.
void zf_schedules_run (zf_server_t *server);

//  Ms until the next firing is due, or -1 when none is.
int64_t zf_schedules_due (zf_server_t *server);

//  A SCHEDULE record, replayed (a journal, or a group's entry).
void zf_schedules_restore (zf_server_t *server, const zf_record_t *record);

//  Every schedule as a record, to fn (a snapshot).
void zf_schedules_foreach (zf_server_t *server,
                           void (*fn) (zf_server_t *server, const zf_record_t *record));

#ifdef __cplusplus
}
#endif
#endif
