/*  zf_value: parsing of the values a config holds: durations, sizes,
    integers, booleans, numbers and endpoints. Each parser returns 0, or -1
    with a message in err saying what was expected.
*/
#ifndef ZF_VALUE_H_INCLUDED
#define ZF_VALUE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zf_error.h"

#ifdef __cplusplus
extern "C" {
#endif

//  "250ms", "30s", "5m", "1h", "2d", "1h30m", "0"; result in milliseconds.
int zf_parse_duration (const char *text, int64_t *ms, zf_error_t *err);

//  "512", "64KiB", "10MB", "1GiB" (KB = 1000, KiB = 1024); result in bytes.
int zf_parse_size (const char *text, int64_t *bytes, zf_error_t *err);

//  A decimal integer, optionally with _ or , between digit groups.
int zf_parse_int (const char *text, int64_t *value, zf_error_t *err);

//  A decimal number ("2.5", "10").
int zf_parse_number (const char *text, double *value, zf_error_t *err);

//  A rate: "100/s", "5/min", "2000/h", "50/d", or a bare number (a
//  second's); "0" for none, else 1/d to 1,000,000,000/s. Result in events
//  a second.
int zf_parse_rate (const char *text, double *per_second, zf_error_t *err);

//  true/false, yes/no, on/off, 1/0.
int zf_parse_bool (const char *text, bool *value, zf_error_t *err);

//  A ZeroMQ endpoint zflow binds or connects: tcp://HOST:PORT (PORT may be
//  * when binding), ipc://PATH or inproc://NAME.
int zf_parse_endpoint (const char *text, zf_error_t *err);

//  One endpoint or several, comma-separated: the brokers of a group, which
//  a client tries in turn and leaves for the one that leads.
int zf_parse_endpoints (const char *text, zf_error_t *err);

//  A Raft group's nodes: HOST:PORT entries, comma-separated, at most
//  ZF_NODES_MAX, none twice, each under 256 bytes. Fills addresses and
//  count; returns 0, or -1 with err naming the entry that is wrong.
#define ZF_NODES_MAX 9
int zf_parse_nodes (const char *text, char (*addresses)[256], int *count, zf_error_t *err);

//  Writes a duration as the shortest exact text ("1500ms", "2m"); returns buf.
char *zf_format_duration (int64_t ms, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
