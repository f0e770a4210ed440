/*  zf_version: what `zflow version` says, from the headers zflow was built
    with, so that it needs none of the libraries loaded (cli/main.c answers
    it before loading libzflow). */
#ifndef ZF_VERSION_H_INCLUDED
#define ZF_VERSION_H_INCLUDED

#include <curl/curlver.h>
#include <microhttpd.h>
#include <stdio.h>
#include <zmq.h>

#include <czmq_library.h>

#define ZF_VERSION_PROTO 1 // ZF_PROTO_VERSION, checked in zf_cli.c

//  Prints "zflow X (ZFP/1, libzmq ..., czmq ..., libcurl ..., libmicrohttpd ...)".
static inline void
zf_version_print (FILE *out)
{
    unsigned long mhd = MHD_VERSION;
    fprintf (out,
             "zflow %s (ZFP/%d, libzmq %d.%d.%d, czmq %d.%d.%d, libcurl %s, libmicrohttpd "
             "%lx.%lx.%lx)\n",
             ZFLOW_VERSION, ZF_VERSION_PROTO, ZMQ_VERSION_MAJOR, ZMQ_VERSION_MINOR,
             ZMQ_VERSION_PATCH, CZMQ_VERSION_MAJOR, CZMQ_VERSION_MINOR, CZMQ_VERSION_PATCH,
             LIBCURL_VERSION, (mhd >> 24) & 0xff, (mhd >> 16) & 0xff, (mhd >> 8) & 0xff);
}

#endif
