/*  zf_tz: time zones from the system's tz database (TZif files under
    /usr/share/zoneinfo, or $TZDIR), read once, asked without touching the
    process's TZ: the UTC offset in force at any instant.

    Beyond the last transition a file lists (2037 in Debian's "fat" files)
    the last offset holds.
*/
#ifndef ZF_TZ_H_INCLUDED
#define ZF_TZ_H_INCLUDED

#include <stdint.h>

#include "zf_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_tz_t zf_tz_t;

//  The zone named name ("UTC", "Europe/London", ...), or NULL with err set.
zf_tz_t *zf_tz_load (const char *name, zf_error_t *err);

void zf_tz_destroy (zf_tz_t **self_p);

//  Its name.
const char *zf_tz_name (zf_tz_t *self);

//  Seconds east of UTC in force at utc (seconds since the epoch).
int32_t zf_tz_offset (zf_tz_t *self, int64_t utc);

//  The first instant after utc at which the offset changes, or INT64_MAX.
int64_t zf_tz_next_change (zf_tz_t *self, int64_t utc);

//  Config check (zf_key_t.check): a zone this machine knows. Returns 0, or
//  -1 with err.
int zf_tz_check (const char *value, zf_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
