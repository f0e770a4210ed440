/*  zf_proto: the ZFP/1 codec, between actors and the broker.

    A ZFP message is a ZeroMQ multipart message: frame 0 the command name in
    ASCII, frame 1 a msgpack map (the header), then for PUT and DELIVER one
    frame per item holding its body (opaque msgpack bytes). schemas/zfp.md is
    the specification; this module follows it field for field, driven by one
    field table per command.

    A zf_proto_t is a reusable message: decode fills it (and checks every
    size and type: bad input gives -1 and a reason, never an assert or a read
    past the frame), encode turns it into a zmsg_t. Strings live in fixed
    buffers of the struct; an envelope's headers are a view into the header
    frame, valid until the next decode or destroy.
*/
#ifndef ZF_PROTO_H_INCLUDED
#define ZF_PROTO_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "zf_error.h"
#include "zflow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZF_PROTO_VERSION  1
#define ZF_TEXT_MAX       1024  // bytes in a reason
#define ZF_DETAIL_MAX     8192  // bytes in a failure's detail (a traceback)
#define ZF_CODE_MAX       32    // bytes in an error code or a state name
#define ZF_ENDPOINT_MAX   255   // bytes in an endpoint (ERROR's leader)
#define ZF_LIST_MAX       16    // names in inputs / outputs
#define ZF_BATCH_MAX      256   // items in one PUT or DELIVER
#define ZF_IDS_MAX        1024  // ids in one ACK
#define ZF_HEADERS_MAX    4096  // bytes of an envelope's headers map
#define ZF_HEADERS_COUNT  64    // entries in an envelope's headers map
#define ZF_CHECKPOINT_MAX 256   // bytes of a producer checkpoint
#define ZF_QUEUES_MAX     4096  // queues in one REPORT
#define ZF_GROUPS_MAX     16384 // consumer groups in one REPORT
#define ZF_KEYS_MAX       16384 // keys in one REPORT
#define ZF_SCHEDULES_MAX  1024  // schedules in one REPORT
#define ZF_PRIORITY_MAX   9     // the highest priority of an item
#define ZF_PROGRESS_MAX   1000  // progress of a task, in thousandths: done

typedef enum {
    ZF_HELLO = 1,
    ZF_WELCOME,
    ZF_PUT,
    ZF_CONFIRM,
    ZF_CREDIT,
    ZF_DELIVER,
    ZF_ACK,
    ZF_NACK,
    ZF_PING,
    ZF_PONG,
    ZF_ERROR,
    ZF_END,
    ZF_CANCEL,
    ZF_DONE,
    ZF_STATUS,
    ZF_REPORT,
    ZF_BYE,
    ZF_PROGRESS,
    ZF_CONTROL,
    ZF_COMMAND_COUNT
} zf_command_t;

//  One finished root of a DONE.
typedef struct {
    zf_id_t id;                   // the root
    char state[ZF_CODE_MAX + 1];  // done, dead or cancelled
    char queue[ZF_NAME_MAX + 1];  // dead: the queue its dead-lettered item left, or ""
    uint32_t attempt;             // dead: that item's attempts
    char reason[ZF_TEXT_MAX + 1]; // dead: its last error, or ""
} zf_done_t;

//  A queue whose items are keyed by the host of their URL (WELCOME, PING):
//  its writers set their zflow-key header.
typedef struct {
    char queue[ZF_NAME_MAX + 1];
} zf_keyed_t;

//  The envelope of one item, and its body.
typedef struct {
    zf_id_t id;                  // the item's id
    char queue[ZF_NAME_MAX + 1]; // the queue it is put to or delivered from
    uint32_t attempt;            // delivery attempt, 1-based; 0 in a PUT
    int64_t ts;                  // creation time, ms since the Unix epoch
    zf_id_t parent;              // the item it was made from; zero for a root
    zf_id_t root;                // the root of its lineage; zero means the item itself
    zf_group_t group;            // fan-in membership; size 0 when none
    int64_t not_before;          // not to be delivered before, ms since the Unix epoch; 0: now
    uint32_t priority;           // 0 (the default) to ZF_PRIORITY_MAX: higher goes first
    const uint8_t *headers;      // msgpack map of str to str, or NULL
    uint32_t headers_size;       // bytes at headers
    zframe_t *body;              // the body frame, owned
} zf_env_t;

//  The fields before `checkpoint` are cleared by every reset and decode; the
//  arrays after it are valid only up to their counts (a string up to its
//  NUL, its first byte cleared), so that reusing a message costs no more
//  than the fields it uses.
typedef struct {
    zf_command_t command;                  // which command this is
    uint32_t version;                      // HELLO, WELCOME: protocol version
    char name[ZF_NAME_MAX + 1];            // HELLO: actor name (its consumer group); CONTROL:
                                           // a schedule's name
    char host[ZF_NAME_MAX + 1];            // HELLO: host name of the worker
    char pipeline[ZF_NAME_MAX + 1];        // HELLO: the pipeline the actor belongs to, or ""
    uint32_t worker;                       // HELLO: worker number within the actor
    uint64_t pid;                          // HELLO: process id
    uint64_t done;                         // HELLO: items the worker acked on its earlier
                                           // sessions
    uint64_t failed;                       // HELLO: items it nacked on them
    uint32_t heartbeat;                    // HELLO, WELCOME: heartbeat interval, ms
    uint32_t liveness;                     // WELCOME: heartbeats missed before death
    uint32_t window;                       // WELCOME: unconfirmed PUT items allowed
    uint32_t timeout;                      // WELCOME: the first input queue's timeout, ms; 0 none
    uint32_t max_frame;                    // WELCOME: the broker's max-frame, bytes; 0 unsaid
    uint32_t checkpoint_size;              // WELCOME, PUT: bytes in checkpoint; 0 when none
    uint64_t seq;                          // PUT, CONFIRM: the PUT's sequence number
    bool track;                            // PUT: report DONE for each root
    bool urgent;                           // PUT: its writer waits for the CONFIRM
    uint32_t accepted;                     // CONFIRM: items enqueued
    uint32_t duplicates;                   // CONFIRM: items dropped as seen before
    uint32_t refused;                      // CONFIRM: items refused (reason says why)
    uint32_t credit;                       // CREDIT: more items the worker can take
    zf_id_t id;                            // NACK, CANCEL, DONE, STATUS, REPORT, PROGRESS: an item
    bool results;                          // STATUS: ask for the item's results too
    uint64_t tag;                          // STATUS, CONTROL: the asker's number for it; REPORT:
                                           // the same
    uint32_t wait;                         // STATUS: ms to wait for the lineage to end; PUT: ms
                                           // the broker may hold it for room, 0 as long as it takes
    bool final;                            // NACK: dead-letter now, no retry
    bool dead;                             // CANCEL: the lineage failed: its root ends dead
    uint32_t delay;                        // NACK: retry no sooner than this, ms
    char code[ZF_CODE_MAX + 1];            // ERROR: zf_errname of the error; CONFIRM: the
                                           // kind of the first refusal, REPORT of a CONTROL
                                           // refused: of that (zf_refusal_name)
    char leader[ZF_ENDPOINT_MAX + 1];      // ERROR leader: where the group's leader is, or ""
    uint64_t count;                        // END: items the source produced; REPORT to a
                                           // CONTROL: items it listed, moved or dropped
    char op[ZF_CODE_MAX + 1];              // CONTROL: what to do (dead, requeue, purge, ...)
    uint64_t older;                        // CONTROL: only items older than this, ms
    uint32_t limit;                        // CONTROL: items listed at most
    char state[ZF_CODE_MAX + 1];           // DONE, REPORT: an item's state
    char queue[ZF_NAME_MAX + 1];           // REPORT: the item's queue; CONTROL: the queue
    uint32_t attempt;                      // REPORT: the item's attempt
    uint32_t progress;                     // PROGRESS, REPORT: thousandths of a task done
    char reason[ZF_TEXT_MAX + 1];          // CONFIRM, NACK, ERROR, CANCEL, REPORT: why, in words
    uint32_t ninputs;                      // HELLO: entries in inputs
    uint32_t noutputs;                     // HELLO: entries in outputs
    uint32_t nitems;                       // PUT, DELIVER, REPORT: entries in items
    uint32_t nids;                         // ACK, CONTROL: entries in ids
    uint32_t nqueues;                      // REPORT: entries in queues
    uint32_t ngroups;                      // REPORT: entries in groups
    uint32_t ndones;                       // DONE: entries in dones
    uint32_t nschedules;                   // REPORT: entries in schedules
    uint32_t nkeys;                        // REPORT: entries in keys
    uint32_t nkeyed;                       // WELCOME, PING: entries in keyed
    bool reloaded;                         // PING: the config was reloaded: keyed replaces
                                           // what WELCOME said
    bool borrowed;                         // item bodies are the caller's: never destroyed here
    const uint8_t *figures;                // PING: the worker's figures; CONTROL: a schedule's
                                           // spec; a msgpack map (a view)
    uint32_t figures_size;                 // bytes at figures; 0 when none
    uint8_t checkpoint[ZF_CHECKPOINT_MAX]; // WELCOME, PUT: producer position
    char detail[ZF_DETAIL_MAX + 1];        // NACK, REPORT: the longer account of a failure
    char note[ZF_TEXT_MAX + 1];            // PROGRESS, REPORT: what a task is doing, in words
    char where[ZF_TEXT_MAX + 1];           // CONTROL: HEADER=VALUE, the items it applies to
    char inputs[ZF_LIST_MAX][ZF_NAME_MAX + 1];  // HELLO: queues it reads
    char outputs[ZF_LIST_MAX][ZF_NAME_MAX + 1]; // HELLO: queues it writes
    zf_env_t items[ZF_BATCH_MAX];               // PUT, DELIVER: the items; REPORT, DONE: the
                                                // results (in a DONE each names its root)
    zf_id_t ids[ZF_IDS_MAX];                    // ACK: ids of the items done; CONTROL: the
                                                // items it applies to
    zf_figures_t *queues;                       // REPORT: queue figures, owned
    uint32_t queues_cap;                        // REPORT: entries allocated in queues
    zf_group_figures_t *groups;                 // REPORT: consumer group figures, owned
    uint32_t groups_cap;                        // REPORT: entries allocated in groups
    zf_done_t *dones;                           // DONE: the roots finished, owned
    uint32_t dones_cap;                         // DONE: entries allocated in dones
    zf_schedule_info_t *schedules;              // REPORT: schedules, owned
    uint32_t schedules_cap;                     // REPORT: entries allocated in schedules
    zf_key_figures_t *keys;                     // REPORT: the groups' busiest keys, owned
    uint32_t keys_cap;                          // REPORT: entries allocated in keys
    zf_keyed_t *keyed;                          // WELCOME, PING: the queues keyed by URL, owned
    uint32_t keyed_cap;                         // WELCOME, PING: entries allocated in keyed
    zframe_t *frame;                            // the decoded header frame, viewed by headers
} zf_proto_t;

//  Create a message; NULL if out of memory.
zf_proto_t *zf_proto_new (void);

//  Destroy a message and the bodies it holds; safe on NULL, nulls *self_p.
void zf_proto_destroy (zf_proto_t **self_p);

//  Empty it for reuse as command (destroys held bodies).
void zf_proto_reset (zf_proto_t *self, zf_command_t command);

//  Name of a command ("HELLO"), or NULL if out of range.
const char *zf_proto_command_name (zf_command_t command);

//  A refusal's kind as CONFIRM's and a refused REPORT's `code` say it
//  ("full", "no-queue", "results", "no-schedule", "invalid"; "" for
//  none), and back (a name it does not know is ZF_REFUSAL_OTHER).
const char *zf_refusal_name (zf_refusal_t kind);
zf_refusal_t zf_refusal_parse (const char *name);

//  Command for a name, or 0 if unknown.
zf_command_t zf_proto_command_for (const char *name, size_t len);

//  Decode *msg_p into self. Takes ownership of the message and nulls
//  *msg_p whatever happens. Returns 0, or -1 with err saying what was wrong.
int zf_proto_decode (zf_proto_t *self, zmsg_t **msg_p, zf_error_t *err);

//  Encode self into a new message; caller owns it. Moves the item bodies
//  into it (they are NULL in self after). Returns NULL if a field cannot be
//  encoded (a body missing, too many items), with err filled.
zmsg_t *zf_proto_encode (zf_proto_t *self, zf_error_t *err);

//  Send self on sock, after routing_id when not NULL (a ROUTER's peer).
//  Bodies are sent without being copied or given up: they stay in self
//  (ZeroMQ shares their bytes), so a message can be sent again. Returns 0,
//  or -1 with err filled.
int zf_proto_send (zf_proto_t *self, void *sock, zframe_t *routing_id, zf_error_t *err);

//  Checks that data is one envelope's headers: a msgpack map of str to str,
//  at most ZF_HEADERS_COUNT entries and ZF_HEADERS_MAX bytes. Returns 0, or
//  -1 with err saying what was wrong.
int zf_proto_check_headers (const void *data, size_t size, zf_error_t *err);

//  Append an item to a PUT or DELIVER, taking ownership of *body_p.
//  Returns the envelope to fill in, or NULL if the batch is full.
zf_env_t *zf_proto_add_item (zf_proto_t *self, zframe_t **body_p);

//  Append an item whose body stays the caller's (it must outlive the next
//  send); for forwarding without a copy. Sets self->borrowed.
zf_env_t *zf_proto_add_borrowed (zf_proto_t *self, zframe_t *body);

//  Append queue figures, or group figures, to a REPORT (zeroed); NULL if
//  full or out of memory.
zf_figures_t *zf_proto_add_queue (zf_proto_t *self);
zf_group_figures_t *zf_proto_add_group (zf_proto_t *self);

//  Append a schedule to a REPORT (zeroed); NULL if full (ZF_SCHEDULES_MAX).
zf_schedule_info_t *zf_proto_add_schedule (zf_proto_t *self);
zf_key_figures_t *zf_proto_add_key (zf_proto_t *self);

//  Append a queue keyed by URL to a WELCOME or PING (zeroed); NULL if full
//  (ZF_QUEUES_MAX).
zf_keyed_t *zf_proto_add_keyed (zf_proto_t *self);

//  Append a finished root to a DONE (zeroed); NULL if full (ZF_BATCH_MAX).
zf_done_t *zf_proto_add_done (zf_proto_t *self);

//  The root of an envelope's lineage: its root, or its own id for a root.
const zf_id_t *zf_env_root (const zf_env_t *env);

#ifdef __cplusplus
}
#endif
#endif
