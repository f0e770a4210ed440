/*  zf_kinds: the list of built-in actor kinds. See zf_kinds.h. */
#include "zf_kinds.h"
#include "zf_cron.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const zf_kind_t *const s_kinds[] = {
    &zf_producer_kind, &zf_fetcher_kind, &zf_processor_kind, &zf_scheduler_kind,
    &zf_gather_kind,   &zf_sink_kind,    &zf_exec_kind,      NULL,
};

const zf_kind_t *const *
zf_kinds (void)
{
    return s_kinds;
}

const zf_kind_t *
zf_kind_find (const char *name)
{
    for (int i = 0; s_kinds[i]; i++)
        if (strcmp (s_kinds[i]->name, name) == 0)
            return s_kinds[i];
    return NULL;
}

int
zf_check_iso8601 (const char *value, zf_error_t *err)
{
    // The scheduler's own reader; times without an offset are checked as
    // wall-clock times in UTC (the zone only moves them).
    zf_tz_t *utc = zf_tz_load ("UTC", err);
    int64_t when;
    int rc = utc ? zf_cron_parse_time (utc, value, &when, err) : -1;
    zf_tz_destroy (&utc);
    return rc;
}

int
zf_check_cron (const char *value, zf_error_t *err)
{
    zf_cron_t *cron = zf_cron_new (value, err);
    if (!cron)
        return -1;
    zf_cron_destroy (&cron);
    return 0;
}

int
zf_check_zone (const char *value, zf_error_t *err)
{
    zf_tz_t *tz = zf_tz_load (value, err);
    if (!tz)
        return -1;
    zf_tz_destroy (&tz);
    return 0;
}
