/*  zf_cron: cron expressions. See zf_cron.h. */
#include "zf_cron.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEARCH_DAYS (366 * 8) // how far ahead a next time is looked for

struct _zf_cron_t {
    uint64_t seconds;   // bit s: second s
    uint64_t minutes;   // bit m: minute m
    uint32_t hours;     // bit h: hour h
    uint32_t days;      // bit d: day of month d (1..31)
    uint32_t nearest;   // bit d: the weekday nearest day d (dW)
    bool last_day;      // L: the last day of the month
    bool last_weekday;  // LW: the last weekday of the month
    uint16_t months;    // bit m: month m (1..12)
    uint8_t weekdays;   // bit w: day of week w (0 Sunday .. 6)
    uint8_t nth[7];     // per day of week, bit n-1: its nth in the month (fri#3)
    uint8_t last_of;    // bit w: the last such day of week in the month (5L)
    bool days_star;     // day of month starts with '*' (or is '?')
    bool weekdays_star; // day of week starts with '*' (or is '?')
};

//  --------------------------------------------------------------------------
//  The calendar (proleptic Gregorian, days since 1970-01-01)

static int64_t
s_days_from_civil (int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
s_civil_from_days (int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int
s_days_in_month (int64_t y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

//  0 Sunday .. 6 Saturday.
static int
s_weekday (int64_t days)
{
    int64_t w = (days + 4) % 7; // 1970-01-01 was a Thursday
    return (int) (w < 0 ? w + 7 : w);
}

static int64_t
s_floor_div (int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

//  --------------------------------------------------------------------------
//  Parsing

typedef struct {
    const char *name;         // for messages
    int min, max;             // the range of values
    const char *const *names; // value names from min, or NULL
} s_field_t;

static const char *const s_month_names[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
                                             "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const s_day_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

static const s_field_t s_fields[] = {
    { "second", 0, 59, NULL },         { "minute", 0, 59, NULL },
    { "hour", 0, 23, NULL },           { "day of month", 1, 31, NULL },
    { "month", 1, 12, s_month_names }, { "day of week", 0, 7, s_day_names },
};
enum { F_SECOND, F_MINUTE, F_HOUR, F_DAY, F_MONTH, F_WEEKDAY };

//  Reads a value (a number or a name) at *p; -1 if there is none.
static int
s_value (const s_field_t *field, const char **p)
{
    if (isdigit ((unsigned char) **p)) {
        int value = 0;
        while (isdigit ((unsigned char) **p) && value < 1000)
            value = value * 10 + (*(*p)++ - '0');
        return value;
    }
    for (int i = 0; field->names && field->names[i]; i++)
        if (strncasecmp (*p, field->names[i], 3) == 0) {
            *p += 3;
            return field->min + i;
        }
    return -1;
}

//  Parses one field's text into bits (bit v for value v), with the special
//  forms of the day fields into self. Returns 0, or -1 with err set.
static int
s_parse_field (zf_cron_t *self, int which, const char *text, uint64_t *bits, zf_error_t *err)
{
    const s_field_t *field = &s_fields[which];
    *bits = 0;
    const char *p = text;
    while (*p) {
        const char *item = p;
        int low, high, step = 1;
        if (which == F_DAY && (strncasecmp (p, "LW", 2) == 0)) {
            self->last_weekday = true;
            p += 2;
        }
        else if (which == F_DAY && (*p == 'L' || *p == 'l')) {
            self->last_day = true;
            p++;
        }
        else {
            if (*p == '*' || *p == '?') {
                low = field->min;
                high = field->max == 7 ? 6 : field->max;
                p++;
            }
            else {
                low = s_value (field, &p);
                if (low < 0)
                    return zf_error_set (err, ZF_EVALUE, "%s: '%s' is not a value", field->name,
                                         item);
                high = low;
                if (*p == '-') {
                    p++;
                    high = s_value (field, &p);
                    if (high < 0)
                        return zf_error_set (err, ZF_EVALUE, "%s: '%s' has a range with no end",
                                             field->name, item);
                }
                else if (*p == '/')
                    high = field->max == 7 ? 6 : field->max; // 5/15: from 5 on
                if (low < field->min || high > field->max)
                    return zf_error_set (err, ZF_EVALUE, "%s: %d is out of range %d-%d",
                                         field->name, low < field->min ? low : high, field->min,
                                         field->max);
                if (low > high)
                    return zf_error_set (err, ZF_EVALUE, "%s: the range %d-%d goes backwards",
                                         field->name, low, high);
                if (which == F_DAY && (*p == 'W' || *p == 'w')) {
                    if (low != high)
                        return zf_error_set (err, ZF_EVALUE, "%s: W takes one day, not a range",
                                             field->name);
                    self->nearest |= 1u << low;
                    p++;
                    goto next;
                }
                if (which == F_WEEKDAY && *p == '#') {
                    p++;
                    int n = s_value (field, &p);
                    if (low != high || n < 1 || n > 5)
                        return zf_error_set (err, ZF_EVALUE,
                                             "%s: '%s': # takes one day and a number 1-5",
                                             field->name, item);
                    self->nth[low % 7] |= (uint8_t) (1u << (n - 1));
                    goto next;
                }
                if (which == F_WEEKDAY && (*p == 'L' || *p == 'l')) {
                    if (low != high)
                        return zf_error_set (err, ZF_EVALUE, "%s: L takes one day, not a range",
                                             field->name);
                    self->last_of |= (uint8_t) (1u << (low % 7));
                    p++;
                    goto next;
                }
            }
            if (*p == '/') {
                p++;
                const char *digits = p;
                step = 0;
                while (isdigit ((unsigned char) *p) && step < 1000)
                    step = step * 10 + (*p++ - '0');
                if (p == digits || step < 1)
                    return zf_error_set (err, ZF_EVALUE, "%s: '%s' has a bad step", field->name,
                                         item);
            }
            for (int v = low; v <= high; v += step)
                *bits |= 1ull << (which == F_WEEKDAY ? v % 7 : v);
        }
    next:
        if (*p && *p != ',')
            return zf_error_set (err, ZF_EVALUE, "%s: unexpected '%c' in '%s'", field->name, *p,
                                 text);
        if (*p == ',' && !*++p)
            return zf_error_set (err, ZF_EVALUE, "%s: '%s' ends with a comma", field->name, text);
    }
    return 0;
}

zf_cron_t *
zf_cron_new (const char *expr, zf_error_t *err)
{
    static const struct {
        const char *name, *expr;
    } macros[] = { { "@yearly", "0 0 1 1 *" },  { "@annually", "0 0 1 1 *" },
                   { "@monthly", "0 0 1 * *" }, { "@weekly", "0 0 * * 0" },
                   { "@daily", "0 0 * * *" },   { "@midnight", "0 0 * * *" },
                   { "@hourly", "0 * * * *" },  { NULL, NULL } };
    while (isspace ((unsigned char) *expr))
        expr++;
    if (*expr == '@') {
        for (int i = 0; macros[i].name; i++)
            if (strcasecmp (expr, macros[i].name) == 0)
                return zf_cron_new (macros[i].expr, err);
        zf_error_set (err, ZF_EVALUE,
                      "unknown macro '%s' (expected @yearly, @monthly, @weekly, @daily or "
                      "@hourly)",
                      expr);
        return NULL;
    }
    char copy[256];
    snprintf (copy, sizeof copy, "%s", expr);
    char *fields[7];
    int count = 0;
    for (char *save = NULL, *f = strtok_r (copy, " \t", &save); f;
         f = strtok_r (NULL, " \t", &save))
        if (count < 7)
            fields[count++] = f;
        else
            count++;
    if (count != 5 && count != 6) {
        zf_error_set (err, ZF_EVALUE,
                      "'%s' has %d fields; expected 5 (minute hour day month weekday) or 6 (with "
                      "seconds first)",
                      expr, count);
        return NULL;
    }
    zf_cron_t *self = (zf_cron_t *) calloc (1, sizeof (zf_cron_t));
    int first = count == 6 ? F_SECOND : F_MINUTE;
    uint64_t bits[6] = { 1, 0, 0, 0, 0, 0 }; // second 0 by default
    for (int i = 0; i < count; i++)
        if (s_parse_field (self, first + i, fields[i], &bits[first + i], err)) {
            zf_cron_destroy (&self);
            return NULL;
        }
    self->seconds = bits[F_SECOND];
    self->minutes = bits[F_MINUTE];
    self->hours = (uint32_t) bits[F_HOUR];
    self->days = (uint32_t) bits[F_DAY];
    self->months = (uint16_t) bits[F_MONTH];
    self->weekdays = (uint8_t) bits[F_WEEKDAY];
    const char *day = fields[count - 3], *weekday = fields[count - 1];
    self->days_star = day[0] == '*' || day[0] == '?';
    self->weekdays_star = weekday[0] == '*' || weekday[0] == '?';
    return self;
}

void
zf_cron_destroy (zf_cron_t **self_p)
{
    free (*self_p);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Matching and searching

//  The day of the month (1..) that "the weekday nearest day n" names.
static int
s_nearest_weekday (int64_t y, int m, int n, int last)
{
    if (n > last)
        return -1;
    int w = s_weekday (s_days_from_civil (y, m, n));
    if (w == 6)
        return n == 1 ? 3 : n - 1; // Saturday: Friday, or Monday for the 1st
    if (w == 0)
        return n == last ? n - 2 : n + 1; // Sunday: Monday, or Friday at the end
    return n;
}

static bool
s_day_matches (zf_cron_t *self, int64_t days, int64_t y, int m, int d)
{
    int last = s_days_in_month (y, m);
    int w = s_weekday (days);
    bool by_day = (self->days >> d & 1) || (self->last_day && d == last);
    for (int n = 1; !by_day && self->nearest >> n; n++)
        by_day = (self->nearest >> n & 1) && s_nearest_weekday (y, m, n, last) == d;
    if (!by_day && self->last_weekday) {
        int lw = s_weekday (s_days_from_civil (y, m, last));
        by_day = d == (lw == 6 ? last - 1 : lw == 0 ? last - 2 : last);
    }
    bool by_weekday = (self->weekdays >> w & 1) || (self->nth[w] >> ((d - 1) / 7) & 1) ||
                      ((self->last_of >> w & 1) && d + 7 > last);
    if (self->days_star || self->weekdays_star)
        return by_day && by_weekday;
    return by_day || by_weekday;
}

//  The instant for wall-clock time local in tz after `after`, or -1 if it
//  has none after it. A skipped time is the change that skips it; of a
//  repeated time, the first occurrence after `after`.
static int64_t
s_resolve (zf_tz_t *tz, int64_t local, int64_t after)
{
    int32_t before = zf_tz_offset (tz, local - 50400), later = zf_tz_offset (tz, local + 50400);
    int64_t best = -1;
    int32_t offsets[2] = { before, later };
    bool valid_any = false;
    for (int i = 0; i < 2; i++) {
        int64_t u = local - offsets[i];
        if (zf_tz_offset (tz, u) == offsets[i]) {
            valid_any = true;
            if (u > after && (best < 0 || u < best))
                best = u;
        }
    }
    if (!valid_any) {
        int64_t change = zf_tz_next_change (tz, local - (before > later ? before : later));
        if (change != INT64_MAX && change > after)
            best = change;
    }
    return best;
}

int64_t
zf_cron_next (zf_cron_t *self, zf_tz_t *tz, int64_t after)
{
    int64_t start = after + 1;
    int64_t local = start + zf_tz_offset (tz, start);
    int64_t days = s_floor_div (local, 86400);
    int64_t second_of_day = local - days * 86400;
    for (int n = 0; n < SEARCH_DAYS; n++, days++, second_of_day = 0) {
        int64_t y;
        int m, d;
        s_civil_from_days (days, &y, &m, &d);
        if (!(self->months >> m & 1) || !s_day_matches (self, days, y, m, d))
            continue;
        int h0 = (int) (second_of_day / 3600), mi0 = (int) (second_of_day / 60 % 60),
            s0 = (int) (second_of_day % 60);
        for (int h = h0; h < 24; h++) {
            if (!(self->hours >> h & 1))
                continue;
            for (int mi = h == h0 ? mi0 : 0; mi < 60; mi++) {
                if (!(self->minutes >> mi & 1))
                    continue;
                for (int s = h == h0 && mi == mi0 ? s0 : 0; s < 60; s++) {
                    if (!(self->seconds >> s & 1))
                        continue;
                    int64_t u = s_resolve (tz, days * 86400 + h * 3600 + mi * 60 + s, after);
                    if (u >= 0)
                        return u;
                }
            }
        }
    }
    return INT64_MAX;
}

char *
zf_cron_format (zf_tz_t *tz, int64_t utc, char *buffer, size_t size)
{
    int32_t offset = zf_tz_offset (tz, utc);
    int64_t local = utc + offset;
    int64_t days = s_floor_div (local, 86400), second = local - days * 86400;
    int64_t y;
    int m, d;
    s_civil_from_days (days, &y, &m, &d);
    int32_t off = offset < 0 ? -offset : offset;
    snprintf (buffer, size, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (long long) y, m, d,
              (int) (second / 3600), (int) (second / 60 % 60), (int) (second % 60),
              offset < 0 ? '-' : '+', off / 3600, off / 60 % 60);
    return buffer;
}

int
zf_cron_parse_time (zf_tz_t *tz, const char *text, int64_t *utc, zf_error_t *err)
{
    int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
    if (sscanf (text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        goto bad;
    const char *p = text + n;
    if (*p == 'T' || *p == ' ') {
        if (sscanf (p + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5)
            goto bad;
        p += 1 + n;
        if (*p == ':') {
            if (sscanf (p + 1, "%2d%n", &s, &n) != 1 || n != 2)
                goto bad;
            p += 1 + n;
            if (*p == '.') { // fractions of a second: taken, not kept
                if (!isdigit ((unsigned char) *++p))
                    goto bad;
                while (isdigit ((unsigned char) *p))
                    p++;
            }
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > s_days_in_month (y, mo) || h > 23 || mi > 59 || s > 59)
        goto bad;
    int64_t local = s_days_from_civil (y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    if (*p == 'Z' && !p[1]) {
        *utc = local;
        return 0;
    }
    if ((*p == '+' || *p == '-') && strlen (p) == 6 && p[3] == ':') {
        int oh, om;
        if (sscanf (p + 1, "%2d:%2d", &oh, &om) != 2 || oh > 14 || om > 59)
            goto bad;
        *utc = local - (*p == '-' ? -1 : 1) * (oh * 3600 + om * 60);
        return 0;
    }
    if (*p)
        goto bad;
    *utc = s_resolve (tz, local, INT64_MIN);
    return 0;
bad:
    return zf_error_set (err, ZF_EVALUE,
                         "'%s' is not an ISO 8601 time (e.g. 2026-03-08T03:00:00-05:00)", text);
}

int
zf_cron_check (const char *value, zf_error_t *err)
{
    zf_cron_t *cron = zf_cron_new (value, err);
    if (!cron)
        return -1;
    zf_cron_destroy (&cron);
    return 0;
}

int
zf_cron_check_time (const char *value, zf_error_t *err)
{
    zf_tz_t *utc = zf_tz_load ("UTC", err);
    int64_t when;
    int rc = utc ? zf_cron_parse_time (utc, value, &when, err) : -1;
    zf_tz_destroy (&utc);
    return rc;
}
