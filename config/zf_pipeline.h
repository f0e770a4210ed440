/*  zf_pipeline: the model of a pipeline config, and its validation.

    A pipeline file (ZPL) has four sections: `pipeline` (its name), `broker`
    (endpoints and timings), `queues` (one sub-section per declared queue) and
    `actors` (one sub-section per actor, whose `kind` picks its key table).
    Loading checks everything and collects every mistake as
    "FILE:LINE: what is wrong", so zflow validate can show them all at once.
*/
#ifndef ZF_PIPELINE_H_INCLUDED
#define ZF_PIPELINE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "zf_keys.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The key tables of the pipeline's own sections.
extern const zf_key_t zf_pipeline_keys[];
extern const zf_key_t zf_broker_keys[];
extern const zf_key_t zf_queue_keys[];

typedef struct {
    char *name;        // the queue's name
    int line;          // where it is declared or first named
    zconfig_t *node;   // its section under `queues`, or NULL if only named
    bool external;     // fed from outside (zflow put, intake, HTTP)
    zlistx_t *writers; // names of the actors that write it
    zlistx_t *readers; // names of the actors that read it
} zf_queue_conf_t;

typedef struct {
    char *name;            // the actor's name, also its consumer group
    int line;              // where its section starts
    const zf_kind_t *kind; // its kind; NULL if the kind is unknown
    zconfig_t *node;       // its section under `actors`
    const char *input;     // the queue it reads, or NULL
    const char *output;    // the queue it writes, or NULL
    int workers;           // processes to run
} zf_actor_conf_t;

typedef struct {
    char *file;            // the path as given
    char *dir;             // the folder relative paths are resolved against
    char *name;            // pipeline/name, or the file's base name
    zconfig_t *root;       // the whole tree
    zconfig_t *broker;     // the broker section, or NULL (defaults apply)
    zlistx_t *queues;      // zf_queue_conf_t, in order of appearance
    zlistx_t *actors;      // zf_actor_conf_t, in order of appearance
    zhashx_t *queue_index; // name -> zf_queue_conf_t, for lookups that keep list cursors
    zhashx_t *actor_index; // name -> zf_actor_conf_t
    void *zpl;             // the reader, which owns root and knows the lines
} zf_pipeline_t;

//  Load and check the pipeline at path, whose actors may be of the kinds
//  given (a list ended by NULL, which must outlive the model: zf_kinds ()
//  for the built-in ones). Every mistake is appended to errors as
//  "FILE:LINE: message" (a list from zf_errors_new). Returns the model, or
//  NULL if the file could not be read or any mistake was found.
zf_pipeline_t *zf_pipeline_load (const char *path, const zf_kind_t *const *kinds, zlistx_t *errors);

void zf_pipeline_destroy (zf_pipeline_t **self_p);

//  The actor named name, or NULL.
zf_actor_conf_t *zf_pipeline_actor (zf_pipeline_t *self, const char *name);

//  The queue named name, or NULL.
zf_queue_conf_t *zf_pipeline_queue (zf_pipeline_t *self, const char *name);

//  Whether every source is finite (no scheduler), so a run can end.
bool zf_pipeline_finite (zf_pipeline_t *self);

//  A value of section (which may be NULL) by the key table: the given value
//  or the table's default. NULL when neither.
const char *zf_conf_get (zconfig_t *section, const zf_key_t *keys, const char *key);

//  Typed forms of zf_conf_get; the value was checked at load, so these
//  return the default of their type only for a key the table lacks.
int64_t zf_conf_int (zconfig_t *section, const zf_key_t *keys, const char *key);
int64_t zf_conf_duration (zconfig_t *section, const zf_key_t *keys, const char *key);
int64_t zf_conf_size (zconfig_t *section, const zf_key_t *keys, const char *key);
bool zf_conf_bool (zconfig_t *section, const zf_key_t *keys, const char *key);
double zf_conf_number (zconfig_t *section, const zf_key_t *keys, const char *key);

//  A path from the config (with or without a file: prefix) made absolute
//  against the config's folder. Caller owns the result.
char *zf_pipeline_path (zf_pipeline_t *self, const char *value);

#ifdef __cplusplus
}
#endif
#endif
