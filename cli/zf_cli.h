/*  zf_cli: the zflow command: a table of subcommands, each one function. */
#ifndef ZF_CLI_H_INCLUDED
#define ZF_CLI_H_INCLUDED

#include "zf_error.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Run the command line; returns the exit status.
int zf_cli_main (int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
