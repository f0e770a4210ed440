/*  zf_module: the parts of libzflow that need large libraries live in
    modules of their own, loaded the first time a process uses them, so
    that a process that does not (every actor but the fetcher, every
    command but those that serve HTTP) never maps those libraries nor runs
    their start-up code: the fetcher's libcurl (module "fetch") and the
    HTTP gateway's libmicrohttpd (module "gateway"). Module NAME is the
    file libzflow-NAME.so beside libzflow, in the build and once installed.
*/
#ifndef ZF_MODULE_H_INCLUDED
#define ZF_MODULE_H_INCLUDED

#include "zf_error.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The address of symbol in module name, loaded on first use and kept for
//  the life of the process; NULL with err naming the module and the loader's
//  reason when it cannot be loaded or lacks symbol. Safe from any thread.
void *zf_module_symbol (const char *name, const char *symbol, zf_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
