/*  zf_cron: cron expressions, and when they next fire in a time zone.

    Five fields (minute hour day-of-month month day-of-week) or six with a
    leading seconds field; in each, `*`, numbers, ranges `a-b`, steps `/n`
    and lists `a,b`; month names (jan..dec) and day names (sun..sat, 7 is
    Sunday too). Day of month also takes `L` (the last day), `NW` (the
    weekday nearest day N, within the month) and `LW` (the last weekday);
    day of week takes `D#N` (the Nth D of the month, fri#3) and `DL` (the
    last D of the month). Macros: @yearly (@annually), @monthly, @weekly,
    @daily (@midnight), @hourly.

    Day of month and day of week combine as in Vixie cron: when either
    field starts with `*` a day must match both, otherwise either.

    Times are wall-clock times in the zone. A time that a daylight-saving
    change skips fires once, at the first instant after the gap (the
    change itself); a time that a change repeats fires once, at its first
    occurrence (a scheduler that starts in the repeated hour fires at the
    second).
*/
#ifndef ZF_CRON_H_INCLUDED
#define ZF_CRON_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "zf_error.h"
#include "zf_tz.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_cron_t zf_cron_t;

//  Parses expr; NULL with err naming the field and what is wrong in it.
zf_cron_t *zf_cron_new (const char *expr, zf_error_t *err);

void zf_cron_destroy (zf_cron_t **self_p);

//  The first time it fires strictly after `after` (seconds since the epoch,
//  UTC) in zone tz, or INT64_MAX if it never does (within 8 years).
int64_t zf_cron_next (zf_cron_t *self, zf_tz_t *tz, int64_t after);

//  Formats utc as ISO 8601 with tz's offset: 2026-03-08T03:00:00-04:00.
char *zf_cron_format (zf_tz_t *tz, int64_t utc, char *buffer, size_t size);

//  Parses an ISO 8601 time (YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM]); one with no
//  offset is a wall-clock time in tz. Returns 0 with *utc set, or -1.
int zf_cron_parse_time (zf_tz_t *tz, const char *text, int64_t *utc, zf_error_t *err);

//  Config checks (zf_key_t.check): a cron expression; an ISO 8601 time
//  (one without an offset is checked as a wall-clock time in UTC: the zone
//  only moves it). Each returns 0, or -1 with err saying what is wrong.
int zf_cron_check (const char *value, zf_error_t *err);
int zf_cron_check_time (const char *value, zf_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
