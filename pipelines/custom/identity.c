/*  identity: a processor plugin that passes every item on unchanged.

    The smallest complete plugin (include/zflow_plugin.h), and the one the
    stream benchmark uses. Built by CMake as build/identity.so; by hand:

        cc -shared -fPIC -I include -o identity.so pipelines/custom/identity.c

    and named in a pipeline with `plugin = PATH/identity.so`.
*/
#include <zflow_plugin.h>

int zflow_process (zflow_call_t *call);

int
zflow_process (zflow_call_t *call)
{
    return call->emit (call, call->body, call->size);
}
