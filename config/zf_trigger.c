/*  zf_trigger: when a scheduled job fires. See zf_trigger.h. */
#include "zf_trigger.h"
#include "zf_mp.h"

int64_t
zf_trigger_next (const zf_trigger_t *self, int64_t from)
{
    int64_t t = INT64_MAX;
    if (self->every) {
        int64_t origin = self->start != INT64_MIN ? self->start : 0;
        int64_t k = from <= origin ? 0 : (from - origin + self->every - 1) / self->every;
        t = origin + k * self->every;
    }
    else if (self->cron) {
        int64_t s =
            zf_cron_next (self->cron, self->tz, (from - 1) / 1000 - ((from - 1) % 1000 < 0));
        t = s == INT64_MAX ? INT64_MAX : s * 1000;
        if (t != INT64_MAX && t < from)
            t = INT64_MAX;
    }
    else if (self->at >= from)
        t = self->at;
    if (t < self->start && t != INT64_MAX)
        return zf_trigger_next (self, self->start);
    return t > self->end ? INT64_MAX : t;
}

//  True if the msgpack value at data is a map.
static bool
s_is_map (const void *data, size_t size)
{
    uint8_t first = size ? *(const uint8_t *) data : 0;
    return size && ((first & 0xf0) == 0x80 || first == 0xde || first == 0xdf);
}

void
zf_trigger_item (msgpack_sbuffer *out, const zf_trigger_t *self, const char *job, int64_t when,
                 int64_t late_us, const void *payload, size_t size)
{
    // The scheduled time to the millisecond: 2026-03-08T03:00:00.250-04:00.
    char seconds[40], scheduled[48];
    zf_cron_format (self->tz, when / 1000, seconds, sizeof seconds);
    snprintf (scheduled, sizeof scheduled, "%.19s.%03d%s", seconds, (int) (when % 1000),
              seconds + 19);
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    bool map = s_is_map (payload, size);
    uint32_t count = 0;
    const char *rest = (const char *) payload;
    size_t rest_size = size;
    if (map) {
        zf_mp_t mp;
        zf_mp_init (&mp, payload, size);
        zf_mp_map (&mp, &count, NULL);
        rest = (const char *) mp.pos;
        rest_size = zf_mp_left (&mp);
    }
    msgpack_pack_map (&pk, count + 3 + (size && !map));
    zf_mp_pack_cstr (&pk, "job");
    zf_mp_pack_cstr (&pk, job);
    zf_mp_pack_cstr (&pk, "scheduled");
    zf_mp_pack_cstr (&pk, scheduled);
    zf_mp_pack_cstr (&pk, "lateness_ms");
    msgpack_pack_double (&pk, (double) late_us / 1000.0);
    if (size && !map)
        zf_mp_pack_cstr (&pk, "payload");
    msgpack_sbuffer_write (out, rest, rest_size);
}
