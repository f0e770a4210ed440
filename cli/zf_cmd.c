/*  zf_cmd: one parser and one help for every command. See zf_cmd.h. */
#include "zf_cmd.h"
#include "zf_alloc.h"

#include <string.h>

//  The exit statuses of a command that says none of its own.
#define USUAL_EXITS "0 done\n1 it failed (stderr says why)\n2 a usage or config error"

//  How help names an option's value: as the table says, or by its type.
static const char *
s_shown (const zf_key_t *option)
{
    if (option->shown)
        return option->shown;
    switch (option->type) {
        case ZF_KEY_BOOL:
            return "";
        case ZF_KEY_ENUM:
        case ZF_KEY_SET:
            return option->choices;
        case ZF_KEY_INT:
            return "N";
        case ZF_KEY_STRING:
            return "TEXT";
        default: {
            // the type's name in capitals: DURATION, ENDPOINT
            static char name[32];
            const char *type = zf_key_type_name (option->type);
            size_t i = 0;
            for (; type[i] && i < sizeof name - 1; i++)
                name[i] = (char) (type[i] >= 'a' && type[i] <= 'z' ? type[i] - 32 : type[i]);
            name[i] = 0;
            return name;
        }
    }
}

int
zf_cmd_usage (const zf_cmd_t *command, const char *why)
{
    if (why)
        fprintf (stderr, "zflow %s: %s\n", command->name, why);
    fprintf (stderr, "usage: zflow %s%s%s%s\n(zflow %s --help says more)\n", command->name,
             *command->args ? " " : "", command->args, command->options ? " [options]" : "",
             command->name);
    return ZF_EXIT_USAGE;
}

//  The option of command named as word says ("name" of "--name=x"), or
//  NULL having said so (with the nearest name, when there is one).
static const zf_key_t *
s_option (const zf_cmd_t *command, const char *word, size_t len)
{
    char name[64];
    snprintf (name, sizeof name, "%.*s", (int) (len < sizeof name ? len : sizeof name - 1), word);
    const zf_key_t *option = zf_keys_find (command->options, name);
    if (option)
        return option;
    char why[160];
    const char *near = zf_keys_nearest (command->options, name);
    if (near)
        snprintf (why, sizeof why, "unknown option --%s (did you mean --%s?)", name, near);
    else
        snprintf (why, sizeof why, "unknown option --%s", name);
    zf_cmd_usage (command, why);
    return NULL;
}

//  Reads argv's options into values (one per option of the table, NULL
//  when not given) and its other words into args; -1 having said why when
//  they are wrong, 1 when help was asked for, else 0.
static int
s_read (const zf_cmd_t *command, int argc, char **argv, const char **values, char **args,
        int *nargs)
{
    bool words_only = false;
    for (int i = 1; i < argc; i++) {
        const char *word = argv[i];
        if (words_only || word[0] != '-' || word[1] != '-' || !word[2]) {
            if (!words_only && (streq (word, "-h") || streq (word, "--help")))
                return 1;
            if (!words_only && streq (word, "--")) {
                words_only = true;
                continue;
            }
            args[(*nargs)++] = argv[i];
            continue;
        }
        if (streq (word, "--help"))
            return 1;
        const char *name = word + 2;
        const char *equals = strchr (name, '=');
        size_t len = equals ? (size_t) (equals - name) : strlen (name);
        const zf_key_t *option = s_option (command, name, len);
        if (!option)
            return -1;
        char why[512];
        size_t at = (size_t) (option - command->options);
        if (values[at]) {
            snprintf (why, sizeof why, "--%s is given twice", option->name);
            zf_cmd_usage (command, why);
            return -1;
        }
        const char *value = equals ? equals + 1 : NULL;
        if (!value && option->type == ZF_KEY_BOOL)
            value = "true";
        else if (!value && i + 1 < argc)
            value = argv[++i];
        if (!value) {
            snprintf (why, sizeof why, "--%s needs a value (%s)", option->name, s_shown (option));
            zf_cmd_usage (command, why);
            return -1;
        }
        zf_error_t err;
        if (zf_key_check (option, value, &err)) {
            fprintf (stderr, "zflow %s: --%s '%s': %s\n", command->name, option->name, value,
                     err.text);
            return -1;
        }
        values[at] = value;
    }
    return 0;
}

int
zf_cmd_main (const zf_cmd_t *command, int argc, char **argv)
{
    size_t noptions = 0;
    while (command->options && command->options[noptions].name)
        noptions++;
    const char **values = (const char **) zf_alloc ((noptions + 1) * sizeof (char *));
    char **args = (char **) zf_alloc ((size_t) argc * sizeof (char *));
    int nargs = 0;
    int read = s_read (command, argc, argv, values, args, &nargs);
    int status = ZF_EXIT_USAGE;
    if (read == 1) {
        zf_cmd_print_help (command, stdout);
        status = ZF_EXIT_OK;
    }
    else if (read == 0 && nargs < command->min_args)
        zf_cmd_usage (command, nargs ? "a word is missing" : NULL);
    else if (read == 0 && command->max_args >= 0 && nargs > command->max_args) {
        char why[160];
        snprintf (why, sizeof why, "one word too many: '%.100s'", args[command->max_args]);
        if (nargs > command->max_args + 1)
            snprintf (why, sizeof why, "%d words too many, from '%.100s'",
                      nargs - command->max_args, args[command->max_args]);
        zf_cmd_usage (command, why);
    }
    else if (read == 0) {
        void *options = command->options_size ? zf_alloc (command->options_size) : NULL;
        for (size_t i = 0; options && i < noptions; i++) {
            const zf_key_t *option = &command->options[i];
            zf_key_bind (option, values[i] ? values[i] : option->fallback, options);
        }
        status = command->run (options, nargs, args);
        free (options);
    }
    free (args);
    free (values);
    return status;
}

//  The exit statuses of command, a line each.
static const char *
s_exits (const zf_cmd_t *command)
{
    return command->exits ? command->exits : USUAL_EXITS;
}

void
zf_cmd_print_help (const zf_cmd_t *command, FILE *out)
{
    fprintf (out, "usage: zflow %s%s%s%s\n\n%s\n", command->name, *command->args ? " " : "",
             command->args, command->options ? " [options]" : "", command->summary);
    if (command->help)
        fprintf (out, "\n%s\n", command->help);
    fprintf (out, "\noptions:\n");
    for (const zf_key_t *o = command->options; o && o->name; o++) {
        char left[96];
        const char *shown = s_shown (o);
        snprintf (left, sizeof left, "--%s%s%s", o->name, *shown ? " " : "", shown);
        fprintf (out, "  %-28s %s", left, o->help);
        if (o->fallback && o->type != ZF_KEY_BOOL)
            fprintf (out, " (default %s)", o->fallback);
        fprintf (out, "\n");
    }
    fprintf (out, "  %-28s %s\n", "-h, --help", "this help");
    fprintf (out, "\nexit status:\n");
    for (const char *line = s_exits (command); *line;) {
        size_t len = strcspn (line, "\n");
        fprintf (out, "  %.*s\n", (int) len, line);
        line += len + (line[len] == '\n');
    }
}

//  text with each '|' escaped, for a Markdown table's cell.
static void
s_cell (const char *text, FILE *out)
{
    for (; *text; text++) {
        if (*text == '|')
            fputc ('\\', out);
        fputc (*text, out);
    }
}

void
zf_cmd_print_markdown (const zf_cmd_t *command, FILE *out)
{
    fprintf (out, "## zflow %s\n\n```\nzflow %s%s%s%s\n```\n\n%s.\n", command->name, command->name,
             *command->args ? " " : "", command->args, command->options ? " [options]" : "",
             command->summary);
    if (command->help)
        fprintf (out, "\n%s\n", command->help);
    if (command->options && command->options->name) {
        fprintf (out, "\n| option | value | default | meaning |\n|---|---|---|---|\n");
        for (const zf_key_t *o = command->options; o->name; o++) {
            fprintf (out, "| `--%s` | ", o->name);
            s_cell (*s_shown (o) ? s_shown (o) : "(a flag)", out);
            fprintf (out, " | %s%s%s | ", o->fallback && o->type != ZF_KEY_BOOL ? "`" : "",
                     o->fallback && o->type != ZF_KEY_BOOL ? o->fallback : "-",
                     o->fallback && o->type != ZF_KEY_BOOL ? "`" : "");
            s_cell (o->help, out);
            fprintf (out, " |\n");
        }
    }
    fprintf (out, "\nExit status:\n\n");
    for (const char *line = s_exits (command); *line;) {
        size_t len = strcspn (line, "\n");
        fprintf (out, "- `%c`%.*s\n", line[0], (int) len - 1, line + 1);
        line += len + (line[len] == '\n');
    }
    fprintf (out, "\n");
}
