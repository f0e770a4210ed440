/*  zf_run: zflow run, the supervisor of a pipeline's processes. */
#ifndef ZF_RUN_H_INCLUDED
#define ZF_RUN_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  zflow run PIPELINE [--broker E] [--only A,B] [--grace D] [--quiet]
int zf_cmd_run (int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
