/*  zf_error: one error enum for zflow, an error detail that names what was
    wrong and where, and the exit statuses of its processes.

    Functions return 0 or -1 (or NULL); those whose callers need to tell
    failures apart fill a zf_error_t, whose text is ready for a user or for
    an ERROR reply on the wire.
*/
#ifndef ZF_ERROR_H_INCLUDED
#define ZF_ERROR_H_INCLUDED

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Exit statuses of every zflow command and actor process.
#define ZF_EXIT_OK     0 // done
#define ZF_EXIT_FAILED 1 // the run failed (e.g. items dead-lettered)
#define ZF_EXIT_USAGE  2 // usage or config error

typedef enum {
    ZF_OK = 0,
    ZF_ETRUNC,   // input ends before the value it announces
    ZF_ETYPE,    // a value of the wrong msgpack type
    ZF_ETOOBIG,  // a length or count over its limit
    ZF_EDEPTH,   // msgpack nested deeper than allowed
    ZF_ECMD,     // unknown command name
    ZF_EFIELD,   // a required field is missing
    ZF_EVALUE,   // a value of the right type but out of range or malformed
    ZF_EFRAMES,  // wrong number of frames for the command
    ZF_EVERSION, // unsupported protocol version
    ZF_ENOMEM,   // out of memory
    ZF_ECONFIG,  // a configuration mistake
    ZF_EIO,      // a file or socket failed
    ZF_ESTATE,   // a command out of order for the peer's state
    ZF_ELEADER,  // a broker of a group that does not lead: the reason names the leader
    ZF_ERROR_COUNT
} zf_err_t;

//  An error with the reason in words. text is always NUL-terminated.
typedef struct {
    zf_err_t code;  // what kind of failure
    char text[256]; // what was wrong and where, for a person
} zf_error_t;

//  Short description of an error code; never NULL.
const char *zf_strerror (zf_err_t code);

//  Stable wire name of an error code ("truncated", "type", ...), used in ERROR
//  replies; never NULL.
const char *zf_errname (zf_err_t code);

//  Fill err (may be NULL) and return -1, so that a check reads
//  `return zf_error_set (err, ZF_ETYPE, "field '%s'", name);`
int zf_error_set (zf_error_t *err, zf_err_t code, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Put a prefix before an error's text ("HELLO: " + text), keeping the code.
void zf_error_prefix (zf_error_t *err, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
