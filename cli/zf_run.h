/*  zf_run: zflow run, the supervisor of a pipeline's processes. */
#ifndef ZF_RUN_H_INCLUDED
#define ZF_RUN_H_INCLUDED

#include "zf_cmd.h"

#ifdef __cplusplus
extern "C" {
#endif

//  zflow run PIPELINE [--broker E] [--only A,B] [--grace D] [--quiet] ...
extern const zf_cmd_t zf_cmd_run;

#ifdef __cplusplus
}
#endif
#endif
