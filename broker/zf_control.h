/*  zf_control: an operator's commands to a running broker (CONTROL, from
    zflow dead, requeue, purge, pause and resume, and their HTTP routes),
    each done at once and answered with a REPORT of its tag:

        op       queue        does
        dead     Q.dead, ""   lists dead letters (all dead-letter queues for "")
        requeue  Q.dead       moves dead letters back to their queue
        purge    Q            drops the items waiting in Q
        pause    Q            stops delivering from Q (puts go on)
        resume   Q            delivers again

    Schedules (zf_schedules.h): `schedules` lists them; `schedule-add`
    (name, queue, spec), `-remove`, `-pause`, `-resume`, `-run` (fire now).

    The REPORT says `state` "ok" with `count` (letters listed in all,
    items moved or dropped) and the queue's figures (`queues`, one row: its
    depth, whether it is paused), or "refused" with `reason`. A listing's
    letters are its `results`: each the envelope of the item that died (its
    id, the queue it left, its attempts, its root, when it died as `ts`,
    the letter's headers with zflow-error) and its body.
*/
#ifndef ZF_CONTROL_H_INCLUDED
#define ZF_CONTROL_H_INCLUDED

#include "zf_server.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Handles server->in, a CONTROL from session.
void zf_control_handle (zf_server_t *server, zf_session_t *session);

#ifdef __cplusplus
}
#endif
#endif
