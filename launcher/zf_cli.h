/*  zf_cli: the zflow command: a table of subcommands, each one function. */
#ifndef ZF_CLI_H_INCLUDED
#define ZF_CLI_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  Exit statuses of every zflow command.
#define ZF_EXIT_OK     0 // done
#define ZF_EXIT_FAILED 1 // the run failed (e.g. items dead-lettered)
#define ZF_EXIT_USAGE  2 // usage or config error

//  Run the command line; returns the exit status.
int zf_cli_main (int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
