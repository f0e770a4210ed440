/*  zf_zpl: a line-aware ZPL reader into zconfig. See zf_zpl.h. */
#include "zf_zpl.h"

#include <ctype.h>
#include <errno.h>

#define ZPL_MAX_DEPTH 16 // levels of indentation a file may use

struct _zf_zpl_t {
    char *file;       // file name, for messages
    zconfig_t *root;  // the tree
    zhashx_t *lines;  // node pointer -> line number
    zhashx_t *broken; // sections holding a line with a syntax error
    zlistx_t *errors; // where syntax errors go, not owned
};

zlistx_t *
zf_errors_new (void)
{
    zlistx_t *errors = zlistx_new ();
    if (errors)
        zlistx_set_destructor (errors, (zlistx_destructor_fn *) zstr_free);
    return errors;
}

void
zf_errors_add (zlistx_t *errors, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    if (text && errors)
        zlistx_add_end (errors, text);
    else
        zstr_free (&text);
}

static size_t
s_ptr_hash (const void *key)
{
    return (size_t) (uintptr_t) key >> 4;
}

static int
s_ptr_compare (const void *a, const void *b)
{
    return a == b ? 0 : a < b ? -1 : 1;
}

//  A hash table keyed by pointers, owning neither keys nor values.
static zhashx_t *
s_pointer_table (void)
{
    zhashx_t *table = zhashx_new ();
    zhashx_set_key_hasher (table, s_ptr_hash);
    zhashx_set_key_comparator (table, s_ptr_compare);
    zhashx_set_key_duplicator (table, NULL);
    zhashx_set_key_destructor (table, NULL);
    return table;
}

static bool
s_name_char (char c)
{
    return isalnum ((unsigned char) c) || strchr ("$-_@.&+/", c);
}

//  Substitutes ${VAR} and ${VAR:-default} in value. Returns a new string,
//  or NULL with an error added when a variable is unset and has no default.
static char *
s_substitute (zf_zpl_t *self, int line, const char *value)
{
    size_t cap = strlen (value) + 64, len = 0;
    char *out = (char *) malloc (cap);
    if (!out)
        return NULL;
    const char *p = value;
    while (*p) {
        const char *add = p;
        size_t add_len = 1;
        char *owned = NULL;
        if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr (p + 2, '}');
            if (!close) {
                zf_errors_add (self->errors, "%s:%d: '${' without a closing '}'", self->file, line);
                free (out);
                return NULL;
            }
            owned = strndup (p + 2, (size_t) (close - p - 2));
            char *fallback = strstr (owned, ":-");
            if (fallback) {
                *fallback = 0;
                fallback += 2;
            }
            const char *env = getenv (owned);
            if (env && (*env || !fallback))
                add = env;
            else if (fallback)
                add = fallback;
            else {
                zf_errors_add (self->errors,
                               "%s:%d: environment variable %s is not set (write ${%s:-default} "
                               "to give a default)",
                               self->file, line, owned, owned);
                free (owned);
                free (out);
                return NULL;
            }
            add_len = strlen (add);
            p = close + 1;
        }
        else
            p++;
        if (len + add_len + 1 > cap) {
            cap = (len + add_len + 1) * 2;
            char *bigger = (char *) realloc (out, cap);
            if (!bigger) {
                free (owned);
                free (out);
                return NULL;
            }
            out = bigger;
        }
        memcpy (out + len, add, add_len);
        len += add_len;
        free (owned);
    }
    out[len] = 0;
    return out;
}

//  Parses one line into stack (the last node seen at each depth). Adds an
//  error and returns -1 on a syntax error.
static int
s_parse_line (zf_zpl_t *self, int line, char *text, zconfig_t **stack, int *depth)
{
    size_t n = strlen (text);
    if (n && text[n - 1] == '\r')
        text[--n] = 0;
    char *p = text;
    int spaces = 0;
    while (*p == ' ' || *p == '\t') {
        if (*p == '\t') {
            zf_errors_add (self->errors, "%s:%d: tab in indentation (ZPL indents with 4 spaces)",
                           self->file, line);
            return -1;
        }
        spaces++;
        p++;
    }
    if (*p == 0 || *p == '#')
        return 0; // blank or comment
    if (spaces % 4) {
        zf_errors_add (self->errors, "%s:%d: indented by %d spaces; ZPL indents by 4 per level",
                       self->file, line, spaces);
        return -1;
    }
    int level = spaces / 4;
    if (level > *depth + 1 || level >= ZPL_MAX_DEPTH) {
        zf_errors_add (self->errors, "%s:%d: indented %d levels under its parent; expected 1",
                       self->file, line, level - *depth);
        return -1;
    }
    // From here on a mistake belongs to a known section: mark it, so that
    // checks of that section do not add "missing key" to the real error.
    zconfig_t *parent = level == 0 ? self->root : stack[level - 1];
    zhashx_insert (self->broken, parent, parent);
    char *name = p;
    while (*p && s_name_char (*p))
        p++;
    if (p == name) {
        zf_errors_add (self->errors, "%s:%d: '%c' cannot start a name", self->file, line, *p);
        return -1;
    }
    char *name_end = p;
    while (*p == ' ' || *p == '\t')
        p++;
    char *value = NULL;
    bool literal = false;
    bool quoted = false;
    if (*p == '=') {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '"' || *p == '\'') {
            char quote = *p++;
            quoted = true;
            literal = quote == '\'';
            value = p;
            while (*p && *p != quote)
                p++;
            if (!*p) {
                zf_errors_add (self->errors, "%s:%d: value has no closing %c", self->file, line,
                               quote);
                return -1;
            }
            *p++ = 0;
        }
        else {
            value = p;
            while (*p && *p != ' ' && *p != '\t' && *p != '#')
                p++;
            if (*p && *p != '#')
                *p++ = 0;
            else if (*p == '#') {
                zf_errors_add (self->errors,
                               "%s:%d: '#' right after a value; put a space before a comment or "
                               "quote the value",
                               self->file, line);
                return -1;
            }
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && *p != '#' && quoted) {
            zf_errors_add (self->errors,
                           "%s:%d: '%s' after the closing quote (ZPL has no escapes: hold a "
                           "quote inside the other kind, \"it's\")",
                           self->file, line, p);
            return -1;
        }
        if (*p && *p != '#') {
            *name_end = 0;
            // The rest up to a comment ("  # ..."), as the hint quotes it:
            // in double quotes, or in single ones when it holds a double
            // quote (a JSON value), for ZPL has no escapes.
            char *rest = p;
            for (char *c = p + 1; *c; c++)
                if (*c == '#' && (c[-1] == ' ' || c[-1] == '\t')) {
                    *c = 0;
                    break;
                }
            size_t len = strlen (rest);
            while (len && (rest[len - 1] == ' ' || rest[len - 1] == '\t'))
                rest[--len] = 0;
            bool doubles = strchr (value, '"') || strchr (rest, '"');
            bool singles = strchr (value, '\'') || strchr (rest, '\'');
            if (doubles && singles)
                zf_errors_add (self->errors,
                               "%s:%d: value '%s' is followed by '%s': a value that holds spaces "
                               "is quoted, and ZPL has no escapes: this one holds both kinds of "
                               "quote",
                               self->file, line, value, rest);
            else
                zf_errors_add (self->errors,
                               "%s:%d: value '%s' is followed by '%s': quote a value that holds "
                               "spaces (%s = %c%s %s%c)",
                               self->file, line, value, rest, name, doubles ? '\'' : '"', value,
                               rest, doubles ? '\'' : '"');
            return -1;
        }
    }
    if (*p && *p != '#') {
        zf_errors_add (self->errors, "%s:%d: unexpected '%s' (expected 'name' or 'name = value')",
                       self->file, line, p);
        return -1;
    }
    *name_end = 0;
    zhashx_delete (self->broken, parent);
    zconfig_t *node = zconfig_new (name, parent);
    if (value) {
        char *expanded = literal ? strdup (value) : s_substitute (self, line, value);
        if (!expanded) {
            zconfig_set_value (node, "%s", "");
            stack[level] = node;
            *depth = level;
            zhashx_insert (self->lines, node, (void *) (intptr_t) line);
            return -1;
        }
        zconfig_set_value (node, "%s", expanded);
        free (expanded);
    }
    zhashx_insert (self->lines, node, (void *) (intptr_t) line);
    stack[level] = node;
    *depth = level;
    return 0;
}

static zf_zpl_t *
s_new (const char *name, zlistx_t *errors)
{
    zf_zpl_t *self = (zf_zpl_t *) zmalloc (sizeof (zf_zpl_t));
    self->file = strdup (name);
    self->root = zconfig_new ("root", NULL);
    self->lines = s_pointer_table ();
    self->broken = s_pointer_table ();
    self->errors = errors;
    return self;
}

zf_zpl_t *
zf_zpl_load_text (const char *text, const char *name, zlistx_t *errors)
{
    zf_zpl_t *self = s_new (name, errors);
    char *copy = strdup (text);
    zconfig_t *stack[ZPL_MAX_DEPTH] = { NULL };
    int depth = -1;
    int line = 0;
    // strtok would skip empty lines and so lose count: split by hand.
    char *p = copy;
    while (p) {
        char *eol = strchr (p, '\n');
        if (eol)
            *eol = 0;
        line++;
        if (strlen (p) > 4096)
            zf_errors_add (errors, "%s:%d: line longer than 4096 bytes", self->file, line);
        else
            s_parse_line (self, line, p, stack, &depth);
        p = eol ? eol + 1 : NULL;
    }
    free (copy);
    return self;
}

zf_zpl_t *
zf_zpl_load (const char *path, zlistx_t *errors)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        zf_errors_add (errors, "%s: cannot read: %s", path, strerror (errno));
        return NULL;
    }
    zchunk_t *chunk = zchunk_read (file, 16 * 1024 * 1024);
    bool too_big = fgetc (file) != EOF;
    fclose (file);
    if (!chunk || too_big) {
        zf_errors_add (errors, "%s: cannot read: %s", path,
                       too_big ? "larger than 16 MiB" : "read failed");
        zchunk_destroy (&chunk);
        return NULL;
    }
    size_t size = zchunk_size (chunk);
    const char *data = (const char *) zchunk_data (chunk);
    if (memchr (data, 0, size)) {
        zf_errors_add (errors, "%s: not a text file (holds NUL bytes)", path);
        zchunk_destroy (&chunk);
        return NULL;
    }
    char *text = strndup (data, size);
    zchunk_destroy (&chunk);
    zf_zpl_t *self = zf_zpl_load_text (text, path, errors);
    free (text);
    return self;
}

void
zf_zpl_destroy (zf_zpl_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zf_zpl_t *self = *self_p;
    zhashx_destroy (&self->lines);
    zhashx_destroy (&self->broken);
    zconfig_destroy (&self->root);
    free (self->file);
    free (self);
    *self_p = NULL;
}

zconfig_t *
zf_zpl_root (zf_zpl_t *self)
{
    return self->root;
}

int
zf_zpl_line (zf_zpl_t *self, zconfig_t *node)
{
    return (int) (intptr_t) zhashx_lookup (self->lines, node);
}

bool
zf_zpl_broken (zf_zpl_t *self, zconfig_t *node)
{
    return zhashx_lookup (self->broken, node) != NULL;
}

const char *
zf_zpl_file (zf_zpl_t *self)
{
    return self->file;
}
