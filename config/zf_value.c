/*  zf_value: config value parsers. See zf_value.h. */
#include "zf_value.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
zf_parse_duration (const char *text, int64_t *ms, zf_error_t *err)
{
    static const struct {
        const char *unit; // suffix
        int64_t ms;       // milliseconds per unit
    } units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 } };
    const char *p = text;
    int64_t total = 0;
    if (!*p)
        return zf_error_set (err, ZF_EVALUE, "empty duration: expected e.g. 250ms, 30s, 5m, 1h");
    if (strcmp (p, "0") == 0) {
        *ms = 0;
        return 0;
    }
    while (*p) {
        if (!isdigit ((unsigned char) *p))
            return zf_error_set (err, ZF_EVALUE,
                                 "'%s' is not a duration: expected e.g. 250ms, 30s, 5m, 1h", text);
        char *end;
        errno = 0;
        long long n = strtoll (p, &end, 10);
        if (errno || n > INT32_MAX)
            return zf_error_set (err, ZF_EVALUE, "duration '%s' is too long", text);
        size_t len = 0;
        while (isalpha ((unsigned char) end[len]))
            len++;
        int u;
        for (u = 0; u < (int) (sizeof units / sizeof units[0]); u++)
            if (strlen (units[u].unit) == len && strncmp (end, units[u].unit, len) == 0)
                break;
        if (u == (int) (sizeof units / sizeof units[0]))
            return zf_error_set (err, ZF_EVALUE,
                                 "'%s' is not a duration: each number needs a unit of ms, s, m, "
                                 "h or d (e.g. 250ms, 30s, 1h30m)",
                                 text);
        total += n * units[u].ms;
        if (total > (int64_t) 100 * 365 * 86400000)
            return zf_error_set (err, ZF_EVALUE, "duration '%s' is too long", text);
        p = end + len;
    }
    *ms = total;
    return 0;
}

int
zf_parse_size (const char *text, int64_t *bytes, zf_error_t *err)
{
    static const struct {
        const char *unit; // suffix, matched without regard to case
        int64_t bytes;    // bytes per unit
    } units[] = { { "", 1 },
                  { "b", 1 },
                  { "kb", 1000 },
                  { "mb", 1000000 },
                  { "gb", 1000000000 },
                  { "kib", 1024 },
                  { "mib", 1024 * 1024 },
                  { "gib", 1024 * 1024 * 1024 },
                  { "k", 1024 },
                  { "m", 1024 * 1024 },
                  { "g", 1024 * 1024 * 1024 } };
    char *end;
    if (!isdigit ((unsigned char) *text))
        return zf_error_set (err, ZF_EVALUE,
                             "'%s' is not a size: expected e.g. 512, 64KiB, 10MB, 1GiB", text);
    errno = 0;
    long long n = strtoll (text, &end, 10);
    if (errno)
        return zf_error_set (err, ZF_EVALUE, "size '%s' is too large", text);
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
        if (strcasecmp (end, units[u].unit) == 0) {
            if (n > INT64_MAX / units[u].bytes)
                return zf_error_set (err, ZF_EVALUE, "size '%s' is too large", text);
            *bytes = n * units[u].bytes;
            return 0;
        }
    return zf_error_set (err, ZF_EVALUE, "'%s' is not a size: expected e.g. 512, 64KiB, 10MB, 1GiB",
                         text);
}

int
zf_parse_int (const char *text, int64_t *value, zf_error_t *err)
{
    char digits[32];
    size_t n = 0;
    const char *p = text;
    if (*p == '-' || *p == '+')
        digits[n++] = *p++;
    bool any = false;
    for (; *p && n < sizeof digits - 1; p++) {
        if (isdigit ((unsigned char) *p)) {
            digits[n++] = *p;
            any = true;
        }
        else if ((*p == '_' || *p == ',') && any && isdigit ((unsigned char) p[1]))
            continue;
        else
            break;
    }
    digits[n] = 0;
    if (!any || *p)
        return zf_error_set (err, ZF_EVALUE, "'%s' is not a whole number", text);
    errno = 0;
    long long v = strtoll (digits, NULL, 10);
    if (errno)
        return zf_error_set (err, ZF_EVALUE, "'%s' is too large", text);
    *value = v;
    return 0;
}

int
zf_parse_number (const char *text, double *value, zf_error_t *err)
{
    char *end;
    errno = 0;
    double v = strtod (text, &end);
    if (end == text || *end || errno || !isfinite (v))
        return zf_error_set (err, ZF_EVALUE, "'%s' is not a number", text);
    *value = v;
    return 0;
}

int
zf_parse_rate (const char *text, double *per_second, zf_error_t *err)
{
    static const struct {
        const char *unit;
        double seconds;
    } units[] = { { "s", 1 },  { "sec", 1 },  { "min", 60 },
                  { "m", 60 }, { "h", 3600 }, { "d", 86400 } };
    char *end;
    errno = 0;
    double v = strtod (text, &end);
    if (end == text || errno || !isfinite (v) || v < 0 || isspace ((unsigned char) *text))
        return zf_error_set (err, ZF_EVALUE, "'%s' is not a rate (100/s, 5/min, 2000/h, 50/d)",
                             text);
    double seconds = 1;
    if (*end) {
        size_t i, count = sizeof units / sizeof units[0];
        for (i = 0; i < count; i++)
            if (*end == '/' && strcmp (end + 1, units[i].unit) == 0)
                break;
        if (i == count)
            return zf_error_set (
                err, ZF_EVALUE, "'%s' is not a rate (100/s, 5/min, 2000/h, 50/d): per what?", text);
        seconds = units[i].seconds;
    }
    double rate = v / seconds;
    if (rate != 0 && (rate < 1 / 86400.0 || rate > 1e9))
        return zf_error_set (err, ZF_EVALUE,
                             "'%s' is out of range: 0 (no limit), or 1/d to 1000000000/s", text);
    *per_second = rate;
    return 0;
}

int
zf_parse_bool (const char *text, bool *value, zf_error_t *err)
{
    static const char *yes[] = { "true", "yes", "on", "1" };
    static const char *no[] = { "false", "no", "off", "0" };
    for (int i = 0; i < 4; i++) {
        if (strcasecmp (text, yes[i]) == 0) {
            *value = true;
            return 0;
        }
        if (strcasecmp (text, no[i]) == 0) {
            *value = false;
            return 0;
        }
    }
    return zf_error_set (err, ZF_EVALUE, "'%s' is not true or false", text);
}

int
zf_parse_endpoint (const char *text, zf_error_t *err)
{
    if (strncmp (text, "ipc://", 6) == 0 || strncmp (text, "inproc://", 9) == 0) {
        const char *rest = strchr (text, '/') + 2;
        if (!*rest)
            return zf_error_set (err, ZF_EVALUE, "endpoint '%s' has no name after the //", text);
        return 0;
    }
    if (strncmp (text, "tcp://", 6) != 0)
        return zf_error_set (err, ZF_EVALUE,
                             "'%s' is not an endpoint: expected tcp://HOST:PORT, ipc://PATH or "
                             "inproc://NAME",
                             text);
    const char *host = text + 6;
    const char *colon = strrchr (host, ':');
    if (!colon || colon == host)
        return zf_error_set (err, ZF_EVALUE,
                             "endpoint '%s' needs a host and a port (tcp://HOST:PORT)", text);
    const char *port = colon + 1;
    if (strcmp (port, "*") == 0)
        return 0;
    int64_t n;
    if (zf_parse_int (port, &n, NULL) || n < 1 || n > 65535 || strchr (port, '_') ||
        strchr (port, ','))
        return zf_error_set (err, ZF_EVALUE, "endpoint '%s': port '%s' is not 1..65535 or *", text,
                             port);
    return 0;
}

int
zf_parse_endpoints (const char *text, zf_error_t *err)
{
    if (!*text)
        return zf_error_set (err, ZF_EVALUE, "no endpoint given");
    for (const char *p = text; *p;) {
        size_t len = strcspn (p, ",");
        char one[512];
        if (len == 0 || len >= sizeof one)
            return zf_error_set (err, ZF_EVALUE, "'%s': an endpoint in the list is %s", text,
                                 len ? "too long" : "empty");
        memcpy (one, p, len);
        one[len] = 0;
        if (zf_parse_endpoint (one, err))
            return -1;
        p += len;
        if (*p && !*++p)
            return zf_error_set (err, ZF_EVALUE, "'%s' ends with a comma", text);
    }
    return 0;
}

char *
zf_format_duration (int64_t ms, char *buf, size_t size)
{
    if (ms == 0)
        snprintf (buf, size, "0");
    else if (ms % 3600000 == 0)
        snprintf (buf, size, "%lldh", (long long) (ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf (buf, size, "%lldm", (long long) (ms / 60000));
    else if (ms % 1000 == 0)
        snprintf (buf, size, "%llds", (long long) (ms / 1000));
    else
        snprintf (buf, size, "%lldms", (long long) ms);
    return buf;
}

int
zf_parse_nodes (const char *nodes, char (*addresses)[256], int *count, zf_error_t *err)
{
    *count = 0;
    const char *p = nodes ? nodes : "";
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t len = strcspn (p, ", ");
        if (*count == ZF_NODES_MAX)
            return zf_error_set (err, ZF_EVALUE, "more than %d nodes", ZF_NODES_MAX);
        if (len >= 256)
            return zf_error_set (err, ZF_EVALUE, "node %d: longer than 255 bytes", *count + 1);
        char *address = addresses[*count];
        memcpy (address, p, len);
        address[len] = 0;
        char *colon = strrchr (address, ':');
        char *end = NULL;
        long port = colon ? strtol (colon + 1, &end, 10) : 0;
        if (!colon || colon == address || !end || *end || port < 1 || port > 65535)
            return zf_error_set (err, ZF_EVALUE, "node %d is '%s' (expected HOST:PORT)", *count + 1,
                                 address);
        for (int i = 0; i < *count; i++)
            if (strcmp (addresses[i], address) == 0)
                return zf_error_set (err, ZF_EVALUE, "node %d is '%s' again", *count + 1, address);
        (*count)++;
        p += len;
    }
    if (*count == 0)
        return zf_error_set (err, ZF_EVALUE, "no nodes (expected HOST:PORT,HOST:PORT,...)");
    return 0;
}
