/*  zf_trigger: when a scheduled job fires, and the item each firing puts;
    shared by the scheduler actor (jobs of the config file) and the broker
    (schedules added at run time).

    A trigger fires every `every` ms from `start` (or the Unix epoch), so
    that side-by-side schedulers agree; or at the times of a cron
    expression in its zone; or once `at` a time; never before start nor
    after end.

    The item of a firing is the payload (msgpack) with "job", "scheduled"
    (ISO 8601, to the millisecond, in the trigger's zone) and "lateness_ms"
    added; a payload that is no map goes under "payload".
*/
#ifndef ZF_TRIGGER_H_INCLUDED
#define ZF_TRIGGER_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "zf_cron.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t every;      // ms, or 0
    zf_cron_t *cron;    // or NULL
    zf_tz_t *tz;        // its zone, never NULL
    int64_t at;         // ms (wall) of a one-shot, or -1
    int64_t start, end; // ms: no firing before, after (INT64_MIN, INT64_MAX for none)
} zf_trigger_t;

//  The trigger's first time at or after from (ms, wall), or INT64_MAX.
int64_t zf_trigger_next (const zf_trigger_t *self, int64_t from);

//  The item of the firing of job scheduled at when (ms), late_us after it,
//  into out: payload (msgpack, size bytes; none when size is 0) with the
//  job's fields added.
void zf_trigger_item (msgpack_sbuffer *out, const zf_trigger_t *self, const char *job, int64_t when,
                      int64_t late_us, const void *payload, size_t size);

#ifdef __cplusplus
}
#endif
#endif
