/*  zf_module: modules loaded on first use. See zf_module.h. */
#include "zf_module.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MODULES_MAX 8 // modules one process loads at most

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char name[32];
    void *handle;
} s_loaded[MODULES_MAX];

//  Loads module name from libzflow's own folder (by path: a sanitizer's
//  loader would not search the program's runpath), or returns it if loaded.
static void *
s_load (const char *name, zf_error_t *err)
{
    for (int i = 0; i < MODULES_MAX; i++)
        if (s_loaded[i].handle && strcmp (s_loaded[i].name, name) == 0)
            return s_loaded[i].handle;
    Dl_info self;
    if (!dladdr ((void *) zf_module_symbol, &self) || !self.dli_fname) {
        zf_error_set (err, ZF_EIO, "module %s: cannot tell where libzflow is", name);
        return NULL;
    }
    const char *slash = strrchr (self.dli_fname, '/');
    int dir = slash ? (int) (slash - self.dli_fname) + 1 : 0;
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%.*slibzflow-%s.so", dir, self.dli_fname, name);
    // Local: what the module exports is reached through this file alone.
    void *handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror ();
        zf_error_set (err, ZF_EIO, "module %s: %s", name, why ? why : path);
        return NULL;
    }
    for (int i = 0; i < MODULES_MAX; i++)
        if (!s_loaded[i].handle) {
            snprintf (s_loaded[i].name, sizeof s_loaded[i].name, "%s", name);
            s_loaded[i].handle = handle;
            break;
        }
    return handle;
}

void *
zf_module_symbol (const char *name, const char *symbol, zf_error_t *err)
{
    pthread_mutex_lock (&s_lock);
    void *handle = s_load (name, err);
    void *address = handle ? dlsym (handle, symbol) : NULL;
    if (handle && !address)
        zf_error_set (err, ZF_EIO, "module %s has no %s: an installation of mixed versions", name,
                      symbol);
    pthread_mutex_unlock (&s_lock);
    return address;
}
