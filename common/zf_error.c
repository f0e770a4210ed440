/*  zf_error: error codes and their words. */
#include "zf_error.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name; // the wire name, stable across versions
    const char *text; // what zf_strerror says
} s_errors[ZF_ERROR_COUNT] = {
    [ZF_OK] = { "ok", "no error" },
    [ZF_ETRUNC] = { "truncated", "truncated input" },
    [ZF_ETYPE] = { "type", "wrong type" },
    [ZF_ETOOBIG] = { "too-big", "over a size limit" },
    [ZF_EDEPTH] = { "depth", "nested too deeply" },
    [ZF_ECMD] = { "command", "unknown command" },
    [ZF_EFIELD] = { "field", "missing required field" },
    [ZF_EVALUE] = { "value", "invalid value" },
    [ZF_EFRAMES] = { "frames", "wrong number of frames" },
    [ZF_EVERSION] = { "version", "unsupported protocol version" },
    [ZF_ENOMEM] = { "memory", "out of memory" },
    [ZF_ECONFIG] = { "config", "configuration error" },
    [ZF_EIO] = { "io", "input/output error" },
    [ZF_ESTATE] = { "state", "command out of order" },
    [ZF_ELEADER] = { "leader", "not the leader of the broker group" },
};

const char *
zf_strerror (zf_err_t code)
{
    if (code < 0 || code >= ZF_ERROR_COUNT)
        return "unknown error";
    return s_errors[code].text;
}

const char *
zf_errname (zf_err_t code)
{
    if (code < 0 || code >= ZF_ERROR_COUNT)
        return "unknown";
    return s_errors[code].name;
}

int
zf_error_set (zf_error_t *err, zf_err_t code, const char *format, ...)
{
    if (err) {
        err->code = code;
        va_list args;
        va_start (args, format);
        vsnprintf (err->text, sizeof err->text, format, args);
        va_end (args);
    }
    return -1;
}

void
zf_error_prefix (zf_error_t *err, const char *format, ...)
{
    if (!err)
        return;
    char prefix[128];
    va_list args;
    va_start (args, format);
    vsnprintf (prefix, sizeof prefix, format, args);
    va_end (args);
    // When the two do not fit, the text loses its tail: the prefix says
    // where, which matters most.
    size_t plen = strlen (prefix);
    size_t tlen = strlen (err->text);
    if (plen + tlen >= sizeof err->text)
        tlen = sizeof err->text - 1 - plen;
    memmove (err->text + plen, err->text, tlen);
    memcpy (err->text, prefix, plen);
    err->text[plen + tlen] = 0;
}
