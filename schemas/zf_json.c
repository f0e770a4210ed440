/*  zf_json: JSON <-> msgpack. See zf_json.h. */
#include "zf_json.h"
#include "zf_mp.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  JSON in

typedef struct {
    const char *start; // the text
    const char *pos;   // next character
    const char *end;   // one past the last
    zf_error_t *err;   // where errors go
} s_parser_t;

static int
s_fail (s_parser_t *p, const char *what)
{
    char found[16];
    if (p->pos >= p->end)
        snprintf (found, sizeof found, "end of input");
    else if (isprint ((unsigned char) *p->pos))
        snprintf (found, sizeof found, "'%c'", *p->pos);
    else
        snprintf (found, sizeof found, "byte 0x%02x", (unsigned char) *p->pos);
    return zf_error_set (p->err, ZF_EVALUE, "column %zu: expected %s, found %s",
                         (size_t) (p->pos - p->start) + 1, what, found);
}

static void
s_space (s_parser_t *p)
{
    while (p->pos < p->end &&
           (*p->pos == ' ' || *p->pos == '\t' || *p->pos == '\n' || *p->pos == '\r'))
        p->pos++;
}

static bool
s_literal (s_parser_t *p, const char *word)
{
    size_t len = strlen (word);
    if ((size_t) (p->end - p->pos) >= len && memcmp (p->pos, word, len) == 0) {
        p->pos += len;
        return true;
    }
    return false;
}

static int
s_hex4 (const char *s, unsigned *value)
{
    *value = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        *value = *value << 4 | (unsigned) d;
    }
    return 0;
}

static size_t
s_utf8_put (char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xc0 | cp >> 6);
        out[1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xe0 | cp >> 12);
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char) (0xf0 | cp >> 18);
    out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char) (0x80 | (cp & 0x3f));
    return 4;
}

size_t
zf_utf8_len (const unsigned char *s, size_t left)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = (s[0] & 0xe0) == 0xc0   ? 2
               : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0 || n > left)
        return 0;
    unsigned cp = s[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    // No overlong forms, no surrogates, nothing past U+10FFFF.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

bool
zf_json_name_ok (const char *text)
{
    const unsigned char *s = (const unsigned char *) text;
    size_t left = strlen (text);
    while (left) {
        if (*s < 0x20 || *s == 0x7f)
            return false;
        size_t n = zf_utf8_len (s, left);
        if (n == 0)
            return false;
        s += n;
        left -= n;
    }
    return true;
}

//  Reads a string (at its opening quote) and packs it, or only checks it
//  when pk is NULL.
//  The end of the run of plain ASCII characters at s (no quote, no
//  backslash, no control character), at most end.
static const char *
s_plain_run (const char *s, const char *end)
{
    while (s < end) {
        unsigned char c = (unsigned char) *s;
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            break;
        s++;
    }
    return s;
}

//  Appends n bytes to the string at *out (len used of *cap), growing it.
//  Returns 0, or -1 out of memory (then *out is freed).
static int
s_append (char **out, size_t *cap, size_t len, const char *data, size_t n)
{
    if (len + n > *cap) {
        *cap = (len + n) * 2;
        char *bigger = (char *) realloc (*out, *cap);
        if (!bigger) {
            free (*out);
            *out = NULL;
            return -1;
        }
        *out = bigger;
    }
    memcpy (*out + len, data, n);
    return 0;
}

static int
s_string (s_parser_t *p, msgpack_packer *pk)
{
    p->pos++; // opening quote
    // Most strings are plain text: packed from the input as they are.
    const char *run = s_plain_run (p->pos, p->end);
    if (run < p->end && *run == '"') {
        if (pk)
            zf_mp_pack_strn (pk, p->pos, (size_t) (run - p->pos));
        p->pos = run + 1;
        return 0;
    }
    size_t cap = 64, len = 0;
    char *out = pk ? (char *) malloc (cap) : NULL;
    while (true) {
        if (p->pos >= p->end) {
            free (out);
            return s_fail (p, "'\"' to close the string");
        }
        run = s_plain_run (p->pos, p->end);
        if (run > p->pos) {
            // A run of plain text in one copy.
            size_t n = (size_t) (run - p->pos);
            if (out && s_append (&out, &cap, len, p->pos, n))
                return zf_error_set (p->err, ZF_ENOMEM, "out of memory");
            len += n;
            p->pos = run;
            continue;
        }
        unsigned char c = (unsigned char) *p->pos;
        char bytes[8];
        size_t n = 0;
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            free (out);
            return s_fail (p, "no control character in a string (escape it)");
        }
        if (c == '\\') {
            if (p->end - p->pos < 2) {
                free (out);
                return s_fail (p, "an escape");
            }
            char e = p->pos[1];
            const char *simple = strchr ("\"\\/bfnrt", e);
            if (simple && e) {
                static const char values[] = "\"\\/\b\f\n\r\t";
                bytes[n++] = values[simple - "\"\\/bfnrt"];
                p->pos += 2;
            }
            else if (e == 'u') {
                unsigned cp;
                if (p->end - p->pos < 6 || s_hex4 (p->pos + 2, &cp)) {
                    p->pos++;
                    free (out);
                    return s_fail (p, "4 hex digits after \\u");
                }
                p->pos += 6;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned low;
                    if (p->end - p->pos < 6 || p->pos[0] != '\\' || p->pos[1] != 'u' ||
                        s_hex4 (p->pos + 2, &low) || low < 0xdc00 || low > 0xdfff) {
                        free (out);
                        return s_fail (p, "a low surrogate \\uDC00..\\uDFFF");
                    }
                    p->pos += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                }
                else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    free (out);
                    return s_fail (p, "a high surrogate before a low one");
                }
                n = s_utf8_put (bytes, cp);
            }
            else {
                p->pos++;
                free (out);
                return s_fail (p, "one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
            }
        }
        else {
            n = zf_utf8_len ((const unsigned char *) p->pos, (size_t) (p->end - p->pos));
            if (n == 0) {
                free (out);
                return s_fail (p, "UTF-8 text");
            }
            memcpy (bytes, p->pos, n);
            p->pos += n;
        }
        if (out && s_append (&out, &cap, len, bytes, n))
            return zf_error_set (p->err, ZF_ENOMEM, "out of memory");
        len += n;
    }
    if (pk)
        zf_mp_pack_strn (pk, out, len);
    free (out);
    return 0;
}

static int
s_number (s_parser_t *p, msgpack_packer *pk)
{
    const char *start = p->pos;
    const char *s = p->pos;
    bool whole = true;
    if (s < p->end && *s == '-')
        s++;
    if (s >= p->end || !isdigit ((unsigned char) *s))
        return s_fail (p, "a value");
    if (*s == '0' && s + 1 < p->end && isdigit ((unsigned char) s[1])) {
        p->pos = s + 1;
        return s_fail (p, "no leading zero");
    }
    while (s < p->end && isdigit ((unsigned char) *s))
        s++;
    if (s < p->end && *s == '.') {
        whole = false;
        s++;
        if (s >= p->end || !isdigit ((unsigned char) *s)) {
            p->pos = s;
            return s_fail (p, "a digit after '.'");
        }
        while (s < p->end && isdigit ((unsigned char) *s))
            s++;
    }
    if (s < p->end && (*s == 'e' || *s == 'E')) {
        whole = false;
        s++;
        if (s < p->end && (*s == '+' || *s == '-'))
            s++;
        if (s >= p->end || !isdigit ((unsigned char) *s)) {
            p->pos = s;
            return s_fail (p, "a digit in the exponent");
        }
        while (s < p->end && isdigit ((unsigned char) *s))
            s++;
    }
    p->pos = s;
    if (!pk)
        return 0;
    char text[64];
    size_t len = (size_t) (s - start);
    if (len >= sizeof text) {
        whole = false; // too long for an integer: a double, as JSON allows
        len = sizeof text - 1;
    }
    memcpy (text, start, len);
    text[len] = 0;
    if (whole) {
        errno = 0;
        if (text[0] == '-') {
            long long v = strtoll (text, NULL, 10);
            if (!errno) {
                msgpack_pack_int64 (pk, v);
                return 0;
            }
        }
        else {
            unsigned long long v = strtoull (text, NULL, 10);
            if (!errno) {
                msgpack_pack_uint64 (pk, v);
                return 0;
            }
        }
    }
    msgpack_pack_double (pk, strtod (text, NULL));
    return 0;
}

static int s_value (s_parser_t *p, msgpack_packer *pk, int depth);

//  Counts the entries of the array or object at p->pos (checking them), so
//  the msgpack header can be written before them.
static int
s_count (s_parser_t *p, char close, int depth, uint32_t *count)
{
    s_parser_t scan = *p;
    scan.pos++;
    *count = 0;
    s_space (&scan);
    if (scan.pos < scan.end && *scan.pos == close)
        return 0;
    while (true) {
        s_space (&scan);
        if (close == '}') {
            if (scan.pos >= scan.end || *scan.pos != '"')
                return s_fail (&scan, "'\"' to start a key");
            if (s_string (&scan, NULL))
                return -1;
            s_space (&scan);
            if (scan.pos >= scan.end || *scan.pos != ':')
                return s_fail (&scan, "':'");
            scan.pos++;
        }
        if (s_value (&scan, NULL, depth + 1))
            return -1;
        (*count)++;
        s_space (&scan);
        if (scan.pos < scan.end && *scan.pos == ',') {
            scan.pos++;
            continue;
        }
        if (scan.pos < scan.end && *scan.pos == close)
            return 0;
        return s_fail (&scan, close == '}' ? "',' or '}'" : "',' or ']'");
    }
}

static int
s_container (s_parser_t *p, msgpack_packer *pk, int depth, char close)
{
    if (depth >= ZF_JSON_MAX_DEPTH)
        return zf_error_set (p->err, ZF_EDEPTH, "column %zu: nested deeper than %d levels",
                             (size_t) (p->pos - p->start) + 1, ZF_JSON_MAX_DEPTH);
    uint32_t count = 0;
    if (pk) {
        if (s_count (p, close, depth, &count))
            return -1;
        if (close == '}')
            msgpack_pack_map (pk, count);
        else
            msgpack_pack_array (pk, count);
    }
    p->pos++;
    s_space (p);
    if (p->pos < p->end && *p->pos == close) {
        p->pos++;
        return 0;
    }
    while (true) {
        s_space (p);
        if (close == '}') {
            if (p->pos >= p->end || *p->pos != '"')
                return s_fail (p, "'\"' to start a key");
            if (s_string (p, pk))
                return -1;
            s_space (p);
            if (p->pos >= p->end || *p->pos != ':')
                return s_fail (p, "':'");
            p->pos++;
        }
        if (s_value (p, pk, depth + 1))
            return -1;
        s_space (p);
        if (p->pos < p->end && *p->pos == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->end && *p->pos == close) {
            p->pos++;
            return 0;
        }
        return s_fail (p, close == '}' ? "',' or '}'" : "',' or ']'");
    }
}

static int
s_value (s_parser_t *p, msgpack_packer *pk, int depth)
{
    s_space (p);
    if (p->pos >= p->end)
        return s_fail (p, "a value");
    switch (*p->pos) {
        case '{':
            return s_container (p, pk, depth, '}');
        case '[':
            return s_container (p, pk, depth, ']');
        case '"':
            return s_string (p, pk);
        case 't':
            if (!s_literal (p, "true"))
                return s_fail (p, "a value");
            if (pk)
                msgpack_pack_true (pk);
            return 0;
        case 'f':
            if (!s_literal (p, "false"))
                return s_fail (p, "a value");
            if (pk)
                msgpack_pack_false (pk);
            return 0;
        case 'n':
            if (!s_literal (p, "null"))
                return s_fail (p, "a value");
            if (pk)
                msgpack_pack_nil (pk);
            return 0;
        default:
            return s_number (p, pk);
    }
}

int
zf_json_to_msgpack (const char *text, size_t len, msgpack_packer *pk, zf_error_t *err)
{
    s_parser_t p = { text, text, text + len, err };
    if (s_value (&p, pk, 0))
        return -1;
    s_space (&p);
    if (p.pos < p.end)
        return s_fail (&p, "end of input after the value");
    return 0;
}

//  --------------------------------------------------------------------------
//  msgpack out

typedef struct {
    char *data;  // the text
    size_t len;  // bytes used
    size_t cap;  // bytes allocated
    bool failed; // out of memory
} s_text_t;

//  Room for len more bytes (and the NUL): where they go, or NULL when
//  out of memory.
static char *
s_room (s_text_t *t, size_t len)
{
    if (t->failed)
        return NULL;
    if (t->len + len + 1 > t->cap) {
        size_t cap = (t->len + len + 1) * 2;
        char *bigger = (char *) realloc (t->data, cap);
        if (!bigger) {
            t->failed = true;
            return NULL;
        }
        t->data = bigger;
        t->cap = cap;
    }
    return t->data + t->len;
}

static void
s_add (s_text_t *t, const char *data, size_t len)
{
    char *at = s_room (t, len);
    if (!at)
        return;
    memcpy (at, data, len);
    t->len += len;
    t->data[t->len] = 0;
}

static void s_addf (s_text_t *t, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_addf (s_text_t *t, const char *format, ...)
{
    char buffer[64];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (buffer, sizeof buffer, format, args);
    va_end (args);
    if (n > 0)
        s_add (t, buffer, (size_t) n < sizeof buffer ? (size_t) n : sizeof buffer - 1);
}

//  A whole number in decimal, without printf's format parsing (a tap
//  renders several per event).
static void
s_add_uint (s_text_t *t, uint64_t u, bool negative)
{
    char digits[21];
    size_t at = sizeof digits;
    do
        digits[--at] = (char) ('0' + u % 10);
    while (u /= 10);
    if (negative)
        s_add (t, "-", 1);
    s_add (t, digits + at, sizeof digits - at);
}

static void
s_quote (s_text_t *t, const char *s, size_t len)
{
    s_add (t, "\"", 1);
    size_t i = 0;
    while (i < len) {
        // A run of plain ASCII goes in with one copy.
        size_t run = i;
        while (run < len && (unsigned char) s[run] >= 0x20 && (unsigned char) s[run] < 0x80 &&
               s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            s_add (t, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = (unsigned char) s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char) c };
            s_add (t, esc, 2);
            i++;
        }
        else if (c < 0x20) {
            switch (c) {
                case '\n':
                    s_add (t, "\\n", 2);
                    break;
                case '\r':
                    s_add (t, "\\r", 2);
                    break;
                case '\t':
                    s_add (t, "\\t", 2);
                    break;
                default:
                    s_addf (t, "\\u%04x", c);
            }
            i++;
        }
        else {
            size_t n = zf_utf8_len ((const unsigned char *) s + i, len - i);
            if (n == 0) {
                s_add (t, "\\ufffd", 6);
                i++;
            }
            else {
                s_add (t, s + i, n);
                i += n;
            }
        }
    }
    s_add (t, "\"", 1);
}

static void
s_base64 (s_text_t *t, const uint8_t *data, size_t size)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = s_room (t, 2 + (size + 2) / 3 * 4); // written in place: quotes and digits
    if (!out)
        return;
    *out++ = '"';
    for (size_t i = 0; i < size; i += 3) {
        uint32_t v = (uint32_t) data[i] << 16;
        if (i + 1 < size)
            v |= (uint32_t) data[i + 1] << 8;
        if (i + 2 < size)
            v |= data[i + 2];
        *out++ = digits[v >> 18];
        *out++ = digits[(v >> 12) & 63];
        *out++ = i + 1 < size ? digits[(v >> 6) & 63] : '=';
        *out++ = i + 2 < size ? digits[v & 63] : '=';
    }
    *out++ = '"';
    *out = 0;
    t->len = (size_t) (out - t->data);
}

static int s_render (zf_mp_t *mp, s_text_t *t, int depth, zf_error_t *err);

static int
s_render (zf_mp_t *mp, s_text_t *t, int depth, zf_error_t *err)
{
    if (depth > ZF_MP_MAX_DEPTH)
        return zf_error_set (err, ZF_EDEPTH, "msgpack nested deeper than %d levels",
                             ZF_MP_MAX_DEPTH);
    uint32_t count, len;
    const char *str;
    const uint8_t *bin;
    zf_mp_type_t type = zf_mp_peek (mp);
    switch (type) {
        case ZF_MP_NIL:
            mp->pos++;
            s_add (t, "null", 4);
            return 0;
        case ZF_MP_BOOL: {
            bool b;
            zf_mp_bool (mp, &b, NULL);
            s_add (t, b ? "true" : "false", b ? 4 : 5);
            return 0;
        }
        case ZF_MP_UINT: {
            uint64_t u;
            if (zf_mp_uint (mp, &u, err))
                return -1;
            s_add_uint (t, u, false);
            return 0;
        }
        case ZF_MP_INT: {
            int64_t i;
            if (zf_mp_int (mp, &i, err))
                return -1;
            s_add_uint (t, i < 0 ? 0 - (uint64_t) i : (uint64_t) i, i < 0);
            return 0;
        }
        case ZF_MP_FLOAT: {
            uint8_t b = *mp->pos;
            size_t size = b == 0xca ? 4 : 8;
            if (zf_mp_left (mp) < size + 1)
                return zf_error_set (err, ZF_ETRUNC, "float runs past the end of the input");
            double d;
            if (size == 4) {
                uint32_t raw = (uint32_t) mp->pos[1] << 24 | (uint32_t) mp->pos[2] << 16 |
                               (uint32_t) mp->pos[3] << 8 | mp->pos[4];
                float f;
                memcpy (&f, &raw, 4);
                d = f;
            }
            else {
                uint64_t raw = 0;
                for (int i = 1; i <= 8; i++)
                    raw = raw << 8 | mp->pos[i];
                memcpy (&d, &raw, 8);
            }
            mp->pos += size + 1;
            if (isfinite (d)) {
                // The shortest of 15, 16 or 17 digits that reads back the same.
                char text[32];
                for (int digits = 15; digits <= 17; digits++) {
                    snprintf (text, sizeof text, "%.*g", digits, d);
                    if (strtod (text, NULL) == d)
                        break;
                }
                s_add (t, text, strlen (text));
            }
            else
                s_add (t, "null", 4);
            return 0;
        }
        case ZF_MP_STR:
            if (zf_mp_str (mp, &str, &len, err))
                return -1;
            s_quote (t, str, len);
            return 0;
        case ZF_MP_BIN:
            if (zf_mp_bin (mp, &bin, &len, err))
                return -1;
            s_add (t, "{\"$base64\":", 11);
            s_base64 (t, bin, len);
            s_add (t, "}", 1);
            return 0;
        case ZF_MP_EXT: {
            const uint8_t *start = mp->pos;
            if (zf_mp_skip (mp, 1, err))
                return -1;
            // fixext: 0xd4..0xd8, type at 1; ext 8/16/32: type after the length
            size_t header = *start >= 0xd4 && *start <= 0xd8 ? 2
                            : *start == 0xc7                 ? 3
                            : *start == 0xc8                 ? 4
                                                             : 6;
            s_addf (t, "{\"$ext\":%d,\"$base64\":", (int8_t) start[header - 1]);
            s_base64 (t, start + header, (size_t) (mp->pos - start) - header);
            s_add (t, "}", 1);
            return 0;
        }
        case ZF_MP_ARRAY:
            if (zf_mp_array (mp, &count, err))
                return -1;
            s_add (t, "[", 1);
            for (uint32_t i = 0; i < count; i++) {
                if (i)
                    s_add (t, ",", 1);
                if (s_render (mp, t, depth + 1, err))
                    return -1;
            }
            s_add (t, "]", 1);
            return 0;
        case ZF_MP_MAP:
            if (zf_mp_map (mp, &count, err))
                return -1;
            s_add (t, "{", 1);
            for (uint32_t i = 0; i < count; i++) {
                if (i)
                    s_add (t, ",", 1);
                if (zf_mp_peek (mp) == ZF_MP_STR) {
                    if (s_render (mp, t, depth + 1, err))
                        return -1;
                }
                else {
                    // A key that is not a string: its JSON text, quoted.
                    s_text_t key = { 0 };
                    int rc = s_render (mp, &key, depth + 1, err);
                    if (!rc)
                        s_quote (t, key.data ? key.data : "", key.len);
                    free (key.data);
                    if (rc)
                        return -1;
                }
                s_add (t, ":", 1);
                if (s_render (mp, t, depth + 1, err))
                    return -1;
            }
            s_add (t, "}", 1);
            return 0;
        case ZF_MP_END:
            return zf_error_set (err, ZF_ETRUNC, "value expected, found end of input");
        case ZF_MP_INVALID:
            return zf_error_set (err, ZF_ETYPE, "byte 0xc1 is not msgpack");
    }
    return zf_error_set (err, ZF_ETYPE, "unknown msgpack type");
}

char *
zf_msgpack_to_json (const void *data, size_t size, zf_error_t *err)
{
    zf_mp_t mp;
    zf_mp_init (&mp, data, size);
    // Room for most renderings at once (bytes grow by a third in base64,
    // a little more with quotes and escapes), so it is seldom grown.
    s_text_t t = { 0 };
    t.cap = 64 + size * 2;
    t.data = (char *) malloc (t.cap);
    t.failed = !t.data;
    if (t.data)
        t.data[0] = 0;
    if (s_render (&mp, &t, 0, err)) {
        free (t.data);
        return NULL;
    }
    if (zf_mp_left (&mp)) {
        free (t.data);
        zf_error_set (err, ZF_EVALUE, "%zu bytes after the value", zf_mp_left (&mp));
        return NULL;
    }
    if (t.failed) {
        free (t.data);
        zf_error_set (err, ZF_ENOMEM, "out of memory");
        return NULL;
    }
    return t.data ? t.data : strdup ("");
}
