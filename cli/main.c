/*  zflow: the command. Everything lives in libzflow (see zf_cli.c), which
    this loads when a command needs it: `zflow version` answers without it,
    so that a process that only says its version starts in a few ms rather
    than after the loader has mapped some fifty libraries. */
#include "zf_version.h"

#include <dlfcn.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

//  libzflow, looked for beside this program (the build), in the lib folder
//  beside its bin (installed), then where the loader looks. By path: a
//  sanitizer's dlopen would not read this program's runpath.
static void *
s_load (void)
{
    char self[PATH_MAX];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    char *slash = len > 0 ? memrchr (self, '/', (size_t) len) : NULL;
    if (slash) {
        static const char *places[] = { "libzflow.so.0", "../" ZFLOW_LIBDIR "/libzflow.so.0" };
        for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
            char path[PATH_MAX + 64];
            snprintf (path, sizeof path, "%.*s/%s", (int) (slash - self), self, places[i]);
            // Global: the plugins libzflow loads (custom actors) use its symbols.
            void *lib = access (path, F_OK) == 0 ? dlopen (path, RTLD_NOW | RTLD_GLOBAL) : NULL;
            if (lib)
                return lib;
        }
    }
    return dlopen ("libzflow.so.0", RTLD_NOW | RTLD_GLOBAL);
}

int
main (int argc, char **argv)
{
    if (argc == 2 && (strcmp (argv[1], "version") == 0 || strcmp (argv[1], "--version") == 0)) {
        zf_version_print (stdout);
        return 0;
    }
    void *lib = s_load ();
    int (*cli_main) (int, char **) = NULL;
    if (lib)
        *(void **) &cli_main = dlsym (lib, "zf_cli_main");
    if (!cli_main) {
        fprintf (stderr, "zflow: cannot load libzflow: %s\n", dlerror ());
        return 70; // EX_SOFTWARE: the installation is broken
    }
    return cli_main (argc, argv);
}
