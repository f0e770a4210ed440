/*  zflow: the command. Everything lives in libzflow; see zf_cli.c. */
#include "zf_cli.h"

int
main (int argc, char **argv)
{
    return zf_cli_main (argc, argv);
}
