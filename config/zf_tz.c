/*  zf_tz: a reader of TZif files (RFC 8536). See zf_tz.h. */
#include "zf_tz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZIF_MAX (1 << 20) // bytes of a zone file at most

struct _zf_tz_t {
    char name[64];        // as asked
    int64_t *times;       // transition instants, ascending
    int32_t *offsets;     // the offset from each transition on
    uint32_t count;       // transitions
    int32_t first_offset; // the offset before the first transition
};

static uint32_t
s_be32 (const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static int64_t
s_be64 (const uint8_t *p)
{
    return (int64_t) ((uint64_t) s_be32 (p) << 32 | s_be32 (p + 4));
}

//  Reads the data block at data (size bytes) with times of time_size bytes.
static int
s_parse (zf_tz_t *self, const uint8_t *data, size_t size, int time_size, zf_error_t *err)
{
    if (size < 44 || memcmp (data, "TZif", 4) != 0)
        return zf_error_set (err, ZF_EVALUE, "not a TZif file");
    uint32_t isutcnt = s_be32 (data + 20), isstdcnt = s_be32 (data + 24),
             leapcnt = s_be32 (data + 28), timecnt = s_be32 (data + 32),
             typecnt = s_be32 (data + 36), charcnt = s_be32 (data + 40);
    size_t need = 44 + (size_t) timecnt * (time_size + 1) + (size_t) typecnt * 6 + charcnt +
                  (size_t) leapcnt * (time_size + 4) + isstdcnt + isutcnt;
    if (typecnt == 0 || need > size || timecnt > 100000)
        return zf_error_set (err, ZF_ETRUNC, "a TZif file cut short or malformed");
    const uint8_t *times = data + 44;
    const uint8_t *types = times + (size_t) timecnt * time_size;
    const uint8_t *infos = types + timecnt;
    self->times = (int64_t *) calloc (timecnt ? timecnt : 1, sizeof (int64_t));
    self->offsets = (int32_t *) calloc (timecnt ? timecnt : 1, sizeof (int32_t));
    self->count = timecnt;
    for (uint32_t i = 0; i < timecnt; i++) {
        self->times[i] = time_size == 8 ? s_be64 (times + 8 * i) : (int32_t) s_be32 (times + 4 * i);
        uint8_t type = types[i];
        if (type >= typecnt)
            return zf_error_set (err, ZF_EVALUE, "a TZif transition names type %u of %u", type,
                                 typecnt);
        self->offsets[i] = (int32_t) s_be32 (infos + 6 * type);
    }
    // Before the first transition: the first standard-time type (RFC 8536).
    self->first_offset = (int32_t) s_be32 (infos);
    for (uint32_t t = 0; t < typecnt; t++)
        if (!infos[6 * t + 4]) {
            self->first_offset = (int32_t) s_be32 (infos + 6 * t);
            break;
        }
    return 0;
}

zf_tz_t *
zf_tz_load (const char *name, zf_error_t *err)
{
    zf_tz_t *self = (zf_tz_t *) calloc (1, sizeof (zf_tz_t));
    snprintf (self->name, sizeof self->name, "%s", name);
    if (strcmp (name, "UTC") == 0 || strcmp (name, "Etc/UTC") == 0)
        return self;
    if (!*name || name[0] == '/' || strstr (name, "..")) {
        zf_error_set (err, ZF_EVALUE, "'%s' is not a time zone name (e.g. Europe/London)", name);
        zf_tz_destroy (&self);
        return NULL;
    }
    const char *dir = getenv ("TZDIR") ? getenv ("TZDIR") : "/usr/share/zoneinfo";
    char path[512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen (path, "rb");
    if (!file) {
        zf_error_set (err, ZF_EVALUE, "unknown time zone '%s' (no %s: %s)", name, path,
                      strerror (errno));
        zf_tz_destroy (&self);
        return NULL;
    }
    uint8_t *data = (uint8_t *) malloc (TZIF_MAX);
    size_t size = fread (data, 1, TZIF_MAX, file);
    fclose (file);
    // Version 2 and later repeat the data with 64-bit times after the first block.
    int rc = s_parse (self, data, size, 4, err);
    if (rc == 0 && data[4] >= '2') {
        uint32_t isutcnt = s_be32 (data + 20), isstdcnt = s_be32 (data + 24),
                 leapcnt = s_be32 (data + 28), timecnt = s_be32 (data + 32),
                 typecnt = s_be32 (data + 36), charcnt = s_be32 (data + 40);
        size_t v1 = 44 + (size_t) timecnt * 5 + (size_t) typecnt * 6 + charcnt +
                    (size_t) leapcnt * 8 + isstdcnt + isutcnt;
        free (self->times);
        free (self->offsets);
        self->times = NULL;
        self->offsets = NULL;
        rc = s_parse (self, data + v1, size - v1, 8, err);
    }
    free (data);
    if (rc) {
        zf_error_prefix (err, "%s: ", path);
        zf_tz_destroy (&self);
    }
    return self;
}

void
zf_tz_destroy (zf_tz_t **self_p)
{
    zf_tz_t *self = *self_p;
    if (self) {
        free (self->times);
        free (self->offsets);
        free (self);
        *self_p = NULL;
    }
}

const char *
zf_tz_name (zf_tz_t *self)
{
    return self->name;
}

//  The index of the last transition at or before utc, or -1.
static int64_t
s_last_at (zf_tz_t *self, int64_t utc)
{
    int64_t low = 0, high = (int64_t) self->count - 1, found = -1;
    while (low <= high) {
        int64_t mid = (low + high) / 2;
        if (self->times[mid] <= utc) {
            found = mid;
            low = mid + 1;
        }
        else
            high = mid - 1;
    }
    return found;
}

int32_t
zf_tz_offset (zf_tz_t *self, int64_t utc)
{
    int64_t i = self->count ? s_last_at (self, utc) : -1;
    return i < 0 ? self->first_offset : self->offsets[i];
}

int64_t
zf_tz_next_change (zf_tz_t *self, int64_t utc)
{
    int32_t now = zf_tz_offset (self, utc);
    for (int64_t i = self->count ? s_last_at (self, utc) + 1 : 0; i < (int64_t) self->count; i++)
        if (self->offsets[i] != now)
            return self->times[i];
    return INT64_MAX;
}

int
zf_tz_check (const char *value, zf_error_t *err)
{
    zf_tz_t *tz = zf_tz_load (value, err);
    if (!tz)
        return -1;
    zf_tz_destroy (&tz);
    return 0;
}
