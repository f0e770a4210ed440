/*  zf_cli: the zflow command: a table of subcommands, each one function. */
#ifndef ZF_CLI_H_INCLUDED
#define ZF_CLI_H_INCLUDED

#include "zf_error.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Run the command line; returns the exit status. The first call's argv
//  is the process's own, the one zf_cli_retitle writes over.
int zf_cli_main (int argc, char **argv);

//  Shows words as the process's command line (ps, /proc/PID/cmdline), as
//  much of them as fits where the first zf_cli_main's arguments were: for
//  a worker that zflow run forked without a program of its own.
void zf_cli_retitle (const char *const *words);

#ifdef __cplusplus
}
#endif
#endif
