/*  zflow: the command. Everything lives in libzflow (see zf_cli.c), which
    this loads when a command needs it: `zflow version` answers without it,
    so that a process that only says its version starts in a few ms rather
    than after the loader has mapped some fifty libraries. */
#include "zf_version.h"

#include <dlfcn.h>
#include <string.h>

int
main (int argc, char **argv)
{
    if (argc == 2 && (strcmp (argv[1], "version") == 0 || strcmp (argv[1], "--version") == 0)) {
        zf_version_print (stdout);
        return 0;
    }
    // Global: the plugins libzflow loads (custom actors) use its symbols.
    void *lib = dlopen ("libzflow.so.0", RTLD_NOW | RTLD_GLOBAL);
    int (*cli_main) (int, char **) = NULL;
    if (lib)
        *(void **) &cli_main = dlsym (lib, "zf_cli_main");
    if (!cli_main) {
        fprintf (stderr, "zflow: cannot load libzflow: %s\n", dlerror ());
        return 70; // EX_SOFTWARE: the installation is broken
    }
    return cli_main (argc, argv);
}
