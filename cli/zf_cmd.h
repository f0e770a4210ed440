/*  zf_cmd: a zflow command as a table: its words, options and help.

    Every command describes its options as a table of zf_key_t bound to a
    struct of its own (ZF_FIELD), as a config section does, with the same
    types, bounds and checks. One parser, zf_cmd_main, reads them:

        --name VALUE, --name=VALUE   an option with a value
        --name                       a flag (a BOOL option): true
        --                           the words after it are not options
        -h, --help                   the command's help, exit 0

    It checks each value against its key, says the nearest option for a
    misspelt one, refuses an option given twice, counts the command's
    words, and fills the struct with what was given and the defaults
    before the command runs. A word that starts with one '-' is a word
    ("-1" is a JSON number to zflow put). The same table prints `zflow CMD
    --help`, `zflow help CMD` and docs/commands.md.

        typedef struct { int64_t timeout; bool json; } s_options_t;
        static const zf_key_t s_options[] = {
            { .name = "timeout", .fallback = "5s",
              .help = "how long to wait for the broker",
              ZF_FIELD (ZF_KEY_DURATION, s_options_t, timeout) }, ...
            { NULL } };
        const zf_cmd_t zf_command_status = {
            .name = "status", .args = "ENDPOINT [ID]", .min_args = 1, .max_args = 2,
            .summary = "...", .options = s_options,
            .options_size = sizeof (s_options_t), .run = s_status };
*/
#ifndef ZF_CMD_H_INCLUDED
#define ZF_CMD_H_INCLUDED

#include "zf_keys.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *name;        // as typed: zflow NAME
    const char *args;        // its words, for the usage line ("ENDPOINT QUEUE [JSON ...]")
    int min_args;            // how many words it takes, at least
    int max_args;            // and at most; -1: any number
    const char *summary;     // one line, for zflow help
    const char *help;        // what more a user needs to know, or NULL
    const char *exits;       // its exit statuses, a line each ("0 ..."); NULL: the usual
    const zf_key_t *options; // its options, ended by an entry with a NULL name; NULL: none
    size_t options_size;     // bytes of the struct the options are bound to
    //  Runs the command with its options (filled, or NULL when it has none)
    //  and its words (argc of them); returns the exit status.
    int (*run) (const void *options, int argc, char **args);
} zf_cmd_t;

//  Runs command on argv (argv[0] the command's name, as typed): reads its
//  options and words, or prints its help; returns the exit status
//  (ZF_EXIT_USAGE, having said what was wrong, when they do not fit).
int zf_cmd_main (const zf_cmd_t *command, int argc, char **argv);

//  Says that command was given the wrong words: "zflow NAME: why", its
//  usage and where its help is, on stderr. Returns ZF_EXIT_USAGE.
int zf_cmd_usage (const zf_cmd_t *command, const char *why);

//  Prints command's help for a terminal: usage, what it does, options
//  and exit statuses.
void zf_cmd_print_help (const zf_cmd_t *command, FILE *out);

//  The same as a Markdown section, for docs/commands.md.
void zf_cmd_print_markdown (const zf_cmd_t *command, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
