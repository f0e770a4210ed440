/*  zf_zpl: reads a ZPL file (ZeroMQ RFC 4, the format of czmq's zconfig)
    into a zconfig tree, remembering the line of every node.

    zconfig_load stops at the first syntax error and keeps no line numbers;
    zflow validate needs both, so this reader records each node's line,
    reports every syntax error as "FILE:LINE: what", skips the bad line and
    goes on. It also substitutes ${VAR} and ${VAR:-default} from the
    environment in values (not in single-quoted ones, as in a shell).
*/
#ifndef ZF_ZPL_H_INCLUDED
#define ZF_ZPL_H_INCLUDED

#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zf_zpl_t zf_zpl_t;

//  Read path. Appends a "FILE:LINE: message" string to errors (a zlistx of
//  strings that owns them) for every syntax error. Returns NULL only when
//  the file cannot be read at all, with that reason appended to errors.
zf_zpl_t *zf_zpl_load (const char *path, zlistx_t *errors);

//  The same from text in memory; name stands for the file in messages.
zf_zpl_t *zf_zpl_load_text (const char *text, const char *name, zlistx_t *errors);

void zf_zpl_destroy (zf_zpl_t **self_p);

//  The root of the tree (named "root"); owned by self.
zconfig_t *zf_zpl_root (zf_zpl_t *self);

//  The line number of a node, 1-based; 0 if the node is not from the file.
int zf_zpl_line (zf_zpl_t *self, zconfig_t *node);

//  True if a line directly inside node had a syntax error (so node may
//  lack keys that the file meant to give it).
bool zf_zpl_broken (zf_zpl_t *self, zconfig_t *node);

//  The file name given to load.
const char *zf_zpl_file (zf_zpl_t *self);

//  Append a formatted message to a list of errors (helper for callers).
void zf_errors_add (zlistx_t *errors, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  A list of owned strings, for errors.
zlistx_t *zf_errors_new (void);

#ifdef __cplusplus
}
#endif
#endif
