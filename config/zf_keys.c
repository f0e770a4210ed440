/*  zf_keys: checking values against key tables. See zf_keys.h. */
#include "zf_keys.h"
#include "zf_value.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void
zf_key_bind (const zf_key_t *key, const char *value, void *settings)
{
    if (!key->field)
        return;
    void *at = (char *) settings + key->field - 1;
    switch (key->type) {
        case ZF_KEY_INT: {
            int64_t n = 0;
            if (value)
                zf_parse_int (value, &n, NULL);
            *(int64_t *) at = n;
            break;
        }
        case ZF_KEY_DURATION: {
            int64_t ms = 0;
            if (value)
                zf_parse_duration (value, &ms, NULL);
            *(int64_t *) at = ms;
            break;
        }
        case ZF_KEY_SIZE: {
            int64_t bytes = 0;
            if (value)
                zf_parse_size (value, &bytes, NULL);
            *(int64_t *) at = bytes;
            break;
        }
        case ZF_KEY_NUMBER: {
            double d = 0;
            if (value)
                zf_parse_number (value, &d, NULL);
            *(double *) at = d;
            break;
        }
        case ZF_KEY_RATE: {
            double per_second = 0;
            if (value)
                zf_parse_rate (value, &per_second, NULL);
            *(double *) at = per_second;
            break;
        }
        case ZF_KEY_BOOL: {
            bool flag = false;
            if (value)
                zf_parse_bool (value, &flag, NULL);
            *(bool *) at = flag;
            break;
        }
        case ZF_KEY_ENUM: {
            // Its place among the choices; -1 for none given, and no default.
            int place = -1, n = 0;
            size_t len = value ? strlen (value) : 0;
            for (const char *p = key->choices; value && p && *p && place < 0; n++) {
                const char *bar = strchr (p, '|');
                size_t size = bar ? (size_t) (bar - p) : strlen (p);
                if (size == len && strncmp (p, value, len) == 0)
                    place = n;
                p = bar ? bar + 1 : NULL;
            }
            *(int *) at = place;
            break;
        }
        case ZF_KEY_SECTION:
            break; // bound to its node by zf_keys_bind
        default:
            *(const char **) at = value;
            break;
    }
}

void
zf_keys_bind (const zf_key_t *keys, zconfig_t *section, void *settings)
{
    for (const zf_key_t *key = keys; key->name; key++) {
        if (!key->field)
            continue;
        zconfig_t *node = section ? zconfig_locate (section, key->name) : NULL;
        if (key->type == ZF_KEY_SECTION)
            *(zconfig_t **) ((char *) settings + key->field - 1) = node;
        else
            zf_key_bind (key, node && zconfig_value (node) ? zconfig_value (node) : key->fallback,
                         settings);
    }
}

const zf_kind_t *
zf_kind_lookup (const zf_kind_t *const *kinds, const char *name)
{
    for (; *kinds; kinds++)
        if (strcmp ((*kinds)->name, name) == 0)
            return *kinds;
    return NULL;
}

const zf_key_t *
zf_keys_find (const zf_key_t *keys, const char *name)
{
    for (; keys && keys->name; keys++)
        if (strcmp (keys->name, name) == 0)
            return keys;
    return NULL;
}

const char *
zf_key_type_name (zf_key_type_t type)
{
    static const char *names[] = { "string",   "integer", "number",  "bool",  "duration", "size",
                                   "endpoint", "choice",  "choices", "queue", "section",  "rate" };
    return type <= ZF_KEY_RATE ? names[type] : "?";
}

//  True if word is one of choices ("a|b|c").
static bool
s_in_choices (const char *choices, const char *word, size_t len)
{
    const char *p = choices;
    while (*p) {
        const char *bar = strchr (p, '|');
        size_t n = bar ? (size_t) (bar - p) : strlen (p);
        if (n == len && strncmp (p, word, len) == 0)
            return true;
        p = bar ? bar + 1 : p + n;
    }
    return false;
}

static int
s_bounds (const zf_key_t *key, int64_t value, const char *text, zf_error_t *err)
{
    if (key->max > key->min && (value < key->min || value > key->max)) {
        if (key->type == ZF_KEY_DURATION) {
            char lo[32], hi[32];
            return zf_error_set (err, ZF_EVALUE, "%s is out of range %s..%s", text,
                                 zf_format_duration (key->min, lo, sizeof lo),
                                 zf_format_duration (key->max, hi, sizeof hi));
        }
        return zf_error_set (err, ZF_EVALUE, "%s is out of range %lld..%lld", text,
                             (long long) key->min, (long long) key->max);
    }
    return 0;
}

static int
s_queue_name (const char *value, zf_error_t *err)
{
    size_t len = strlen (value);
    if (len == 0 || len > 128)
        return zf_error_set (err, ZF_EVALUE, "a queue name has 1 to 128 characters");
    for (const char *p = value; *p; p++)
        if (!isalnum ((unsigned char) *p) && !strchr ("-_.", *p))
            return zf_error_set (
                err, ZF_EVALUE, "'%s' is not a queue name (letters, digits, '-', '_', '.')", value);
    return 0;
}

int
zf_key_check (const zf_key_t *key, const char *value, zf_error_t *err)
{
    int64_t n;
    double d;
    bool b;
    switch (key->type) {
        case ZF_KEY_STRING:
        case ZF_KEY_SECTION:
            break;
        case ZF_KEY_INT:
            if (zf_parse_int (value, &n, err) || s_bounds (key, n, value, err))
                return -1;
            break;
        case ZF_KEY_NUMBER:
            if (zf_parse_number (value, &d, err))
                return -1;
            if (d < 0)
                return zf_error_set (err, ZF_EVALUE, "%s is negative", value);
            break;
        case ZF_KEY_RATE:
            if (zf_parse_rate (value, &d, err))
                return -1;
            break;
        case ZF_KEY_BOOL:
            if (zf_parse_bool (value, &b, err))
                return -1;
            break;
        case ZF_KEY_DURATION:
            if (zf_parse_duration (value, &n, err) || s_bounds (key, n, value, err))
                return -1;
            break;
        case ZF_KEY_SIZE:
            if (zf_parse_size (value, &n, err) || s_bounds (key, n, value, err))
                return -1;
            break;
        case ZF_KEY_ENDPOINT:
            if (zf_parse_endpoint (value, err))
                return -1;
            break;
        case ZF_KEY_ENUM:
            if (!s_in_choices (key->choices, value, strlen (value)))
                return zf_error_set (err, ZF_EVALUE, "'%s' is not one of %s", value, key->choices);
            break;
        case ZF_KEY_SET: {
            const char *p = value;
            while (*p) {
                while (*p == ' ' || *p == ',')
                    p++;
                size_t len = strcspn (p, ", ");
                if (len && !s_in_choices (key->choices, p, len))
                    return zf_error_set (err, ZF_EVALUE, "'%.*s' is not one of %s", (int) len, p,
                                         key->choices);
                p += len;
            }
            break;
        }
        case ZF_KEY_QUEUE:
            if (s_queue_name (value, err))
                return -1;
            break;
    }
    if (key->check && key->check (value, err))
        return -1;
    return 0;
}

//  Optimal string alignment distance (edits, with adjacent swaps).
static size_t
s_distance (const char *a, const char *b)
{
    size_t la = strlen (a), lb = strlen (b);
    if (la > 64 || lb > 64)
        return 99;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

const char *
zf_nearest (const char *name, const char *const *candidates)
{
    const char *best = NULL;
    size_t best_distance = 0;
    for (; *candidates; candidates++) {
        size_t distance = s_distance (name, *candidates);
        if (!best || distance < best_distance) {
            best = *candidates;
            best_distance = distance;
        }
    }
    // Near enough: up to a third of the word's length, at least 1, at most 3.
    size_t limit = strlen (name) / 3;
    if (limit < 1)
        limit = 1;
    if (limit > 3)
        limit = 3;
    return best && best_distance <= limit ? best : NULL;
}

const char *
zf_keys_nearest (const zf_key_t *keys, const char *name)
{
    const char *names[128];
    size_t n = 0;
    for (; keys && keys->name && n < 127; keys++)
        names[n++] = keys->name;
    names[n] = NULL;
    return zf_nearest (name, names);
}

void
zf_keys_print (const zf_key_t *keys, FILE *out)
{
    for (; keys && keys->name; keys++) {
        char type[96];
        if (keys->type == ZF_KEY_ENUM || keys->type == ZF_KEY_SET)
            snprintf (type, sizeof type, "%s", keys->choices);
        else
            snprintf (type, sizeof type, "%s", zf_key_type_name (keys->type));
        fprintf (out, "    %-16s %-22s %-12s %s%s\n", keys->name, type,
                 keys->flags & ZF_KEY_REQUIRED ? "(required)"
                 : keys->fallback              ? keys->fallback
                                               : "-",
                 keys->help, keys->flags & ZF_KEY_PATH ? " (relative to the config file)" : "");
    }
}

void
zf_keys_print_markdown (const zf_key_t *keys, FILE *out)
{
    fprintf (out, "| key | type | default | meaning |\n|---|---|---|---|\n");
    for (; keys && keys->name; keys++) {
        char type[96];
        if (keys->type == ZF_KEY_ENUM || keys->type == ZF_KEY_SET) {
            // a | inside a table cell must be escaped
            size_t n = 0;
            for (const char *p = keys->choices; *p && n < sizeof type - 3; p++) {
                if (*p == '|')
                    type[n++] = '\\';
                type[n++] = *p;
            }
            type[n] = 0;
        }
        else
            snprintf (type, sizeof type, "%s", zf_key_type_name (keys->type));
        fprintf (out, "| `%s` | %s%s | %s%s%s | %s%s |\n", keys->name, type,
                 keys->type == ZF_KEY_SET ? " (comma-separated)" : "",
                 keys->flags & ZF_KEY_REQUIRED ? "**required**"
                 : keys->fallback              ? "`"
                                               : "",
                 keys->flags & ZF_KEY_REQUIRED ? ""
                 : keys->fallback              ? keys->fallback
                                               : "-",
                 !(keys->flags & ZF_KEY_REQUIRED) && keys->fallback ? "`" : "", keys->help,
                 keys->flags & ZF_KEY_PATH ? " (relative to the config file)" : "");
    }
}
