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
extern const zf_key_t zf_flow_keys[]; // flow control: a queue's and an actor's `flow`
extern const zf_key_t zf_cluster_keys[];

//  The pipeline section's settings (zf_pipeline_keys).
//  The broker section's sync: when journal records reach the disk. In the
//  order of the key's choices (always|batch|never).
typedef enum {
    ZF_SYNC_ALWAYS, // fdatasync before every confirm (records of one loop turn share one)
    ZF_SYNC_BATCH,  // fdatasync at most every interval; confirms wait for it
    ZF_SYNC_NEVER   // write() only: survives a killed broker, not a crashed machine
} zf_sync_t;

typedef struct {
    const char *name; // the pipeline's name, or NULL for the file's
    const char
        *results; // the queues (comma-separated) whose items are kept as results too, or NULL
} zf_pipeline_settings_t;

//  The broker section's settings (zf_broker_keys).
typedef struct {
    const char *endpoint;         // where actors connect (ROUTER)
    const char *events;           // where monitors subscribe (XPUB)
    const char *intake;           // the PULL socket, or NULL
    const char *metrics;          // ADDRESS:PORT of the HTTP gateway, or NULL
    bool api;                     // the gateway serves the JSON API
    int64_t api_put_wait;         // ms a POSTed item waits for room in a full queue, then 503
    int64_t api_max_waiting;      // API requests waiting for the broker at most, then 503
    const char *api_token_file;   // the file of the token API requests must bear, or NULL
    int64_t http_max_connections; // HTTP connections at once at most
    int64_t http_max_per_address; // HTTP connections from one client address at most
    const char *https_cert;       // the HTTP server's certificate (PEM): HTTPS, or NULL
    const char *https_key;        // its private key (PEM)
    const char *journal;          // folder of the write-ahead log, or NULL
    int sync;                     // zf_sync_t: when journal records reach the disk
    int64_t sync_interval;        // ms a confirm waits for the disk at most (batch)
    int64_t journal_segment;      // bytes past which the journal is compacted
    const char *curve_secret;     // the broker's CURVE certificate, or NULL
    const char *curve_public;     // its public certificate, or NULL
    const char *curve_clients;    // folder of the clients allowed in, or NULL
    const char *curve_client;     // the certificate zflow's own clients use, or NULL
    int64_t heartbeat;            // ms between heartbeats
    int64_t liveness;             // heartbeats missed before a peer is dead
    int64_t dedup_window;         // ids remembered to drop duplicates
    int64_t group_expiry;         // ms a group of no declared actor lives without a worker
    int64_t max_groups;           // groups of no declared actor (clients') at most
    int64_t result_ttl;           // ms the results of a root are kept after its lineage ended
    int64_t result_max_bytes;     // bytes of results kept at most
    int64_t window;               // unconfirmed items a writer may have
    int64_t max_frame;            // bytes of a message at most
} zf_broker_settings_t;

//  The cluster section's settings (zf_cluster_keys): a Raft group of brokers.
typedef struct {
    const char *nodes;        // HOST:PORT,...: each broker's Raft address, or NULL for one broker
    int64_t election_timeout; // ms of silence from the leader before an election
    int64_t snapshot_every;   // entries between snapshots
} zf_cluster_settings_t;

//  A queue's settings (zf_queue_keys).
typedef struct {
    int64_t max_depth;    // items waiting at most
    int64_t max_attempts; // deliveries before QUEUE.dead
    int64_t timeout;      // ms an item may be held; 0 for ever
    int64_t retry_base;   // first backoff, ms
    int64_t retry_max;    // longest backoff, ms
    bool external;        // fed from outside (zflow put, intake, HTTP)
    //  Flow control: what every consumer group of the queue keeps to.
    double rate;                  // deliveries a second, all workers together; 0: no limit
    int64_t burst;                // deliveries at once the rates allow after a pause
    const char *key;              // what names an item's key: "header:NAME" or "url-host"
    double rate_per_key;          // deliveries a second of one key; 0: no limit
    int64_t max_inflight_per_key; // items of one key in flight at once; 0: no limit
    bool fair;                    // keys take turns (round robin), within a priority
    const char *weight_header;    // fair: the header giving a key's share (1 to 1000), or NULL
} zf_queue_settings_t;

//  The header an item's key is read from under settings' `key` ("zflow-key"
//  for url-host, which writers set), or NULL when the queue has no key.
const char *zf_queue_key_header (const zf_queue_settings_t *settings);

//  What the settings of every actor begin with: each kind's settings
//  struct has one of these as its first member (ZF_KEY_KIND and the other
//  shared keys are bound to it).
typedef struct {
    const char *kind;         // its kind's name
    const char *curve_secret; // its own CURVE certificate, or NULL
    const char *input;        // the queue it reads, or NULL
    const char *output;       // the queue it writes, or NULL
    int64_t workers;          // processes to run
    zconfig_t *flow;          // its consumer group's flow control, or NULL: its input's
} zf_actor_settings_t;

typedef struct {
    char *name;                   // the queue's name
    int line;                     // where it is declared or first named
    zconfig_t *node;              // its section under `queues`, or NULL if only named
    bool external;                // fed from outside (zflow put, intake, HTTP)
    bool results;                 // its items are kept as results of their root
    zf_queue_settings_t settings; // its settings (the defaults when only named)
    zlistx_t *writers;            // names of the actors that write it
    zlistx_t *readers;            // names of the actors that read it
} zf_queue_conf_t;

typedef struct {
    char *name;            // the actor's name, also its consumer group
    int line;              // where its section starts
    const zf_kind_t *kind; // its kind; NULL if the kind is unknown
    zconfig_t *node;       // its section under `actors`
    const char *input;     // the queue it reads, or NULL
    const char *output;    // the queue it writes, or NULL
    int workers;           // processes to run
    void *settings;        // its kind's settings struct, bound; NULL if the kind is unknown
} zf_actor_conf_t;

typedef struct {
    char *file;                             // the path as given
    char *dir;                              // the folder relative paths are resolved against
    char *name;                             // pipeline/name, or the file's base name
    zconfig_t *root;                        // the whole tree
    zf_pipeline_settings_t settings;        // the pipeline section's
    zconfig_t *broker;                      // the broker section, or NULL (defaults apply)
    zf_broker_settings_t broker_settings;   // its settings
    zf_cluster_settings_t cluster_settings; // the cluster section's (a Raft group of brokers)
    zf_queue_settings_t queue_defaults;     // the settings of a queue not declared
    zlistx_t *queues;                       // zf_queue_conf_t, in order of appearance
    zlistx_t *actors;                       // zf_actor_conf_t, in order of appearance
    zhashx_t *queue_index; // name -> zf_queue_conf_t, for lookups that keep list cursors
    zhashx_t *actor_index; // name -> zf_actor_conf_t
    void *zpl;             // the reader, which owns root and knows the lines
    zlistx_t *warnings;    // "FILE:LINE: warning: ..." of what loaded but looks wrong
} zf_pipeline_t;

//  Load and check the pipeline at path, whose actors may be of the kinds
//  given (a list ended by NULL, which must outlive the model: zf_kinds ()
//  for the built-in ones). Every mistake is appended to errors as
//  "FILE:LINE: message" (a list from zf_errors_new). Returns the model, or
//  NULL if the file could not be read or any mistake was found.
zf_pipeline_t *zf_pipeline_load (const char *path, const zf_kind_t *const *kinds, zlistx_t *errors);

//  The same, its relative paths (sources, targets, plugins, certificates)
//  of dir rather than of the file's own folder (dir NULL: the file's):
//  zflow run's workers read its copy of the file, kept elsewhere.
zf_pipeline_t *zf_pipeline_load_in (const char *path, const char *dir,
                                    const zf_kind_t *const *kinds, zlistx_t *errors);

void zf_pipeline_destroy (zf_pipeline_t **self_p);

//  The actor named name, or NULL.
zf_actor_conf_t *zf_pipeline_actor (zf_pipeline_t *self, const char *name);

//  The queue named name, or NULL.
zf_queue_conf_t *zf_pipeline_queue (zf_pipeline_t *self, const char *name);

//  Whether a queue is fed from outside (external = true): a run of it
//  serves until it is stopped.
bool zf_pipeline_fed_from_outside (zf_pipeline_t *self);

//  Whether name is a queue of the pipeline, or the dead-letter queue of one.
bool zf_pipeline_declares (zf_pipeline_t *self, const char *name);

//  True if items put to queue from can come back to queue to through the
//  pipeline's actors (each reading one queue and writing another), or
//  from is to: to is then downstream of from, and a queue of a cycle
//  waits on itself.
bool zf_pipeline_reaches (zf_pipeline_t *self, const char *from, const char *to);

//  Where the pipeline's clients connect: the broker's endpoint, or with a
//  cluster section, the endpoint of each broker of the group (its node's
//  host, the endpoint's port), comma-separated. The caller frees it.
char *zf_pipeline_brokers (zf_pipeline_t *self);

//  Whether every source is finite (no scheduler), so a run can end.
bool zf_pipeline_finite (zf_pipeline_t *self);

//  The settings of the queue named name: its own if it is declared, else
//  the defaults. Never NULL.
const zf_queue_settings_t *zf_pipeline_queue_settings (zf_pipeline_t *self, const char *name);

//  A path from the config (with or without a file: prefix) made absolute
//  against the config's folder. Caller owns the result.
char *zf_pipeline_path (zf_pipeline_t *self, const char *value);

#ifdef __cplusplus
}
#endif
#endif
