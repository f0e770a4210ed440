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
    // YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]
    int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
    if (sscanf (value, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        goto bad;
    const char *p = value + n;
    if (*p == 'T' || *p == ' ') {
        if (sscanf (p + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5)
            goto bad;
        p += 1 + n;
        if (*p == ':') {
            if (sscanf (p + 1, "%2d%n", &s, &n) != 1 || n != 2)
                goto bad;
            p += 1 + n;
            if (*p == '.') {
                p++;
                if (!isdigit ((unsigned char) *p))
                    goto bad;
                while (isdigit ((unsigned char) *p))
                    p++;
            }
        }
        if (*p == 'Z')
            p++;
        else if (*p == '+' || *p == '-') {
            int oh, om;
            if (sscanf (p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 14 || om > 59)
                goto bad;
            p += 1 + n;
        }
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        goto bad;
    return 0;
bad:
    return zf_error_set (err, ZF_EVALUE,
                         "'%s' is not an ISO 8601 time (e.g. 2026-03-08T03:00:00-05:00)", value);
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
