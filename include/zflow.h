/*  zflow.h: the public API of libzflow, for custom actors and for clients.

    One type, zf_client_t, is a session with the broker over ZFP/1
    (schemas/zfp.md). A program that only submits work and follows it uses
    put, flush and status, the way a web app uses Celery's delay() and
    AsyncResult. An actor also names an input queue: it takes items with
    next, emits outputs (their ids derived from the input's), and acks or
    nacks each item, possibly later and out of order (a fetcher holds many).

    The session heartbeats, batches PUTs and ACKs, keeps within the credit
    and PUT windows, and reconnects with backoff (1 s doubling to 32 s)
    after the broker goes away, sending again what was not confirmed.

    A client that submits work:

        zf_client_t *client = zf_client_new ("tcp://127.0.0.1:5670", "web", NULL, 0);
        zf_id_t id;
        zf_client_put (client, "jobs", body, size, &id);    // body: msgpack bytes
        zf_client_flush (client, 5000);                     // confirmed by the broker
        char state[32];
        zf_client_status (client, &id, state, sizeof state, 1000);   // "queued", "done", ...
        zf_client_destroy (&client);

    An actor (a complete one is pipelines/custom/upper.c):

        zf_client_t *actor = zf_client_new (endpoint, "upper", "words", 16);
        zf_item_t *item;
        while ((item = zf_client_next (actor, -1))) {
            size_t size;
            const void *body = zf_item_body (item, &size);
            ...
            zf_client_emit (actor, item, "shouted", out, out_size);
            zf_client_ack (actor, &item);
        }
        zf_client_destroy (&actor);

    Bodies are msgpack bytes, passed through unchanged; zf_client_put_str
    packs a string for you.

    This header is all a program needs besides libzflow (pkg-config
    --cflags --libs zflow): it includes no other header of zflow's, and the
    types it defines are the ones every layer of zflow uses.

    Changes in 0.2 (additions; what 0.1 had works as it did):
    - Requests ("Requests" below): puts and questions in flight at once on
      one session, each answered on its own (zf_client_put_request,
      zf_client_result_request, zf_client_item_request,
      zf_client_figures_request, zf_client_answered, zf_request_*), and
      zf_client_put_room; zf_request_refusal says why the broker refused a
      put or a control (zf_refusal_t).
    - zf_client_last_error (NULL) says why zf_client_new failed;
      zf_client_set_log takes what a client says of itself.
    - Steering (zf_client_control, zf_client_control_request, and the
      zf_result_total, _figures, _item_* and _schedules of its answer;
      zf_schedule_spec_t, zf_schedule_info_t); zf_figures_t has paused at
      its end.
    - Flow control: zf_group_figures_t has throttled and keys at its end;
      zf_client_keys and zf_request_take_keys give each group's busiest
      keys (zf_key_figures_t); zf_client_key_by_url, and every session
      keys items by URL for the queues its broker names in WELCOME.
    - zf_id_output: an output's id derives from the consumer group that
      made it too, so that two groups reading one queue (a fan-out) keep
      each its outputs; zf_client_emit and a gather's result use it (their
      ids are not 0.1's: an item 0.1 had half processed makes its outputs
      again under new ids).
*/
#ifndef ZFLOW_H_INCLUDED
#define ZFLOW_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  --------------------------------------------------------------------------
//  Ids. An id is 16 bytes, written as 32 lowercase hex digits. Ids are
//  derived deterministically wherever the same item can be produced twice
//  (a redelivered parent emitting its children again, a restarted producer
//  re-reading its source, two schedulers firing the same job), so the
//  broker's dedup and the sinks see the same id and write nothing twice;
//  schemas/zfp.md specifies the derivations, for any language.

#define ZF_ID_SIZE 16
#define ZF_ID_HEX  (ZF_ID_SIZE * 2 + 1)

typedef struct {
    uint8_t bytes[ZF_ID_SIZE]; // big-endian as on the wire
} zf_id_t;

//  The id of output number index that consumer group group (an actor's
//  name) makes of the item with id parent: the same on every attempt, so
//  the broker drops a redelivered item's second outputs, and another for
//  each group that reads the item, so the outputs of a fan-out's branches
//  are each kept. zf_client_emit gives its outputs these ids.
zf_id_t zf_id_output (const zf_id_t *parent, const char *group, uint32_t index);

//  The id derived from parent and index alone: what the broker gives the
//  copies it makes of an item (a dead letter is zf_id_child (id,
//  UINT32_MAX)).
zf_id_t zf_id_child (const zf_id_t *parent, uint32_t index);

//  A random id for items that have no origin to derive from (zflow put).
zf_id_t zf_id_random (void);

//  Writes 32 hex digits and a NUL into hex; returns hex.
char *zf_id_format (const zf_id_t *id, char hex[ZF_ID_HEX]);

//  Reads 32 hex digits (either case). Returns 0, or -1 if text is not an id.
int zf_id_parse (zf_id_t *id, const char *text);

bool zf_id_eq (const zf_id_t *a, const zf_id_t *b);

bool zf_id_is_zero (const zf_id_t *id);

//  --------------------------------------------------------------------------
//  Items, groups and figures

#define ZF_NAME_MAX    128  // bytes in a queue, actor or host name
#define ZF_FIGURES_MAX 4096 // bytes of a worker's figures map

//  Membership of a fan-in group (gather): item index of size.
typedef struct {
    zf_id_t id;     // the group's id
    uint32_t size;  // number of members; 0 means no group
    uint32_t index; // this member's position, 0-based
} zf_group_t;

//  Figures of one queue, as zflow status shows them.
typedef struct {
    char name[ZF_NAME_MAX + 1]; // queue name
    uint64_t depth;             // items waiting
    uint64_t inflight;          // items delivered, not yet acked
    uint64_t put;               // items accepted, ever
    uint64_t ack;               // items acked, ever
    uint64_t nack;              // NACKs and expiries, ever
    uint64_t dead;              // items moved to the dead-letter queue, ever
    uint32_t consumers;         // workers reading it now
    bool paused;                // nothing is delivered from it (zflow pause) until resumed
} zf_figures_t;

//  A schedule, as zflow schedule list shows it.
#define ZF_TRIGGER_MAX 255 // bytes of a schedule's trigger, in words
typedef struct {
    char name[ZF_NAME_MAX + 1];       // its name; a config file's job: ACTOR/JOB
    char queue[ZF_NAME_MAX + 1];      // where each firing goes
    char trigger[ZF_TRIGGER_MAX + 1]; // "cron 0 9 * * 1-5", "every 10s", "at 2026-12-24T18:00:00Z"
    char tz[64];                      // the zone of its times
    bool config;                      // a job of the config file: its scheduler actor fires it,
                                      // and it changes only with the file
    bool paused;                      // paused (zflow schedule pause): it does not fire
    int64_t next;                     // its next firing, ms since the Unix epoch; 0: none (or,
                                      // for a config job, not known to the broker)
    int64_t last;                     // its last firing handled, or 0
    uint64_t fired;                   // firings put since the broker started
    uint64_t missed;                  // firings skipped: later than misfire-grace, or
                                      // max-instances still running
} zf_schedule_info_t;

//  Figures of one consumer group of a queue, as zflow status shows them.
typedef struct {
    char queue[ZF_NAME_MAX + 1]; // the queue it reads
    char name[ZF_NAME_MAX + 1];  // the actor (or client) whose workers share it; "" while the
                                 // queue waits for its first reader
    uint32_t workers;            // workers connected now
    uint64_t ready;              // items waiting for one of them
    uint64_t inflight;           // items they hold
    uint64_t acked;              // deliveries acked, ever
    bool declared;               // read by an actor of the pipeline (else the broker forgets
                                 // it after group-expiry without a worker)
    uint64_t throttled;          // of ready, items that wait for their key's limit
    uint64_t keys;               // keys it holds items of (its queue has a key)
} zf_group_figures_t;

//  Figures of one key of a consumer group (its queue has a `key`): a
//  group's busiest keys, as zflow status shows them. A key is an item's
//  header; longer ones are told apart by their first ZF_NAME_MAX bytes.
#define ZF_TOP_KEYS 10 // keys of a group reported at most, by items waiting
typedef struct {
    char queue[ZF_NAME_MAX + 1]; // the queue
    char group[ZF_NAME_MAX + 1]; // the consumer group
    char key[ZF_NAME_MAX + 1];   // the key; "" for items without one
    uint64_t ready;              // its items waiting
    uint64_t inflight;           // its items held by workers
    bool throttled;              // its items wait for its limit (rate-per-key,
                                 // max-in-flight-per-key)
} zf_key_figures_t;

//  --------------------------------------------------------------------------
//  Sessions

typedef struct _zsock_t zsock_t; // czmq's socket, as czmq.h declares it
typedef struct _zf_client_t zf_client_t;
typedef struct _zf_item_t zf_item_t;

//  Open a session with the broker at endpoint. name is the actor's name
//  (its workers form one consumer group) or the client's; input is the
//  queue to consume, or NULL for a client that only puts; concurrency is
//  how many items it may hold at once (ignored without input). Connecting
//  is asynchronous: calls wait for the broker as needed. NULL on bad
//  arguments or a CURVE setting that cannot be read:
//  zf_client_last_error (NULL) says why.
zf_client_t *zf_client_new (const char *endpoint, const char *name, const char *input,
                            int concurrency);

//  Close the session: send what is buffered, say BYE (the broker hands the
//  items this session still holds to other workers), and free everything.
//  Items not yet acked must not be used after. Safe on NULL.
void zf_client_destroy (zf_client_t **self_p);

//  The worker number shown in monitoring (default 0); call before use.
void zf_client_set_worker (zf_client_t *self, int worker);

//  The pipeline this session belongs to (call before use): a broker that
//  runs another pipeline refuses the session. Without it, any broker takes it.
void zf_client_set_pipeline (zf_client_t *self, const char *pipeline);

//  Items this session puts into queue carry the header zflow-key, the host
//  (and port, when given) of their URL (a string body, or a map's "url"
//  string), lowercased, in place of any zflow-key they had (one inherited
//  from the item they were made from): what a queue with `key = url-host`
//  limits them by. Every session does so already for the queues its broker
//  keys by URL (its WELCOME names them: a first put waits up to 2 s for it,
//  and puts are held, not sent, until it came): call this for a queue the
//  broker does not know of.
void zf_client_key_by_url (zf_client_t *self, const char *queue);

//  Put a body (msgpack bytes, copied) into queue, with a random id (written
//  to *id if not NULL). Buffered: it is sent with the next batch. Blocks
//  while the PUT window is full. Returns 0, or -1 if the session is closed
//  or the wake socket (zf_client_set_wake) became readable while it waited
//  for room: then the item is not put (a source that is told to stop puts
//  no more, and reads it again from its checkpoint next time).
int zf_client_put (zf_client_t *self, const char *queue, const void *body, size_t size,
                   zf_id_t *id);

//  The same with a given id (deterministic ids make puts idempotent).
int zf_client_put_id (zf_client_t *self, const char *queue, const zf_id_t *id, const void *body,
                      size_t size);

//  Ask (true) or stop asking for a DONE for every root item put from now
//  on: zf_client_done reports when all of its lineage (the item and every
//  item made from it, downstream) is finished.
void zf_client_track (zf_client_t *self, bool track);

//  The next finished tracked root: its id, and its state ("done", "dead"
//  when an item of its lineage was dead-lettered, "cancelled"). Waits up to
//  timeout_ms; returns 0, or -1 if none came. The broker tells the session
//  that put the root, and does not keep that across a restart: for roots
//  put before zf_client_sessions last changed, ask zf_client_status (the
//  scheduler's max-instances does).
int zf_client_done (zf_client_t *self, zf_id_t *root, char *state, size_t size, int timeout_ms);

//  The same as a result (zf_client_result's, with the lineage's results
//  and a dead item's reason), for a client with many tasks in flight that
//  takes their results as they end rather than asking for each. NULL if
//  none came within timeout_ms. The caller destroys it.
typedef struct _zf_result_t zf_result_t;
zf_result_t *zf_client_next_result (zf_client_t *self, int timeout_ms);

//  Cancel what is left of the lineage of root (the TaskGroup pattern: a
//  group failed, its other members need not run): the broker drops its
//  queued items, and workers holding its items see zf_item_cancelled.
void zf_client_cancel (zf_client_t *self, const zf_id_t *root, const char *reason);

//  The same because the lineage failed (a TaskGroup whose member failed):
//  its root ends "dead", not "cancelled", with reason (its first error) as
//  its failure.
void zf_client_cancel_dead (zf_client_t *self, const zf_id_t *root, const char *reason);

//  What a put or an emit may say besides the body. Each field is optional
//  (NULL): a put's id is random and an emit's is derived from its input;
//  a put is the root of its own lineage (an emit joins its input's); an
//  item belongs to no fan-in group.
typedef struct {
    const zf_id_t *id;       // the item's id (deterministic ids make puts idempotent)
    const zf_id_t *root;     // put only: the lineage it joins, e.g. its group's id, so
                             // that cancelling that id cancels the whole group
    const zf_group_t *group; // its membership of a gather group
    int64_t not_before;      // put only: not delivered before, ms since the Unix epoch (0: now)
    int64_t delay_ms;        // put only: not delivered for this long (with not_before: the later)
    int priority;            // 0 (the default) to 9: within a queue higher goes first
    const void *headers;     // put only: a msgpack map of str to str (at most 64 entries,
                             // 4 KiB), copied; an emit keeps its input's, so they travel
    size_t headers_size;     // with the lineage (a tenant, a trace id). Bytes at headers
    int64_t wait_ms;         // put only: the longest the broker holds it while a queue it goes
                             // to is full (max-depth); past it the item is refused, and
                             // zf_client_flush returns -1 with "refused: queue 'Q' is full
                             // (max-depth N)" in zf_client_last_error. 0: it waits for room
                             // as long as it takes (the backpressure of a pipeline)
} zf_put_opts_t;

//  zf_client_put with options (opts may be NULL). Writes the id used to
//  *id if not NULL. -1 also for options out of range (a priority past 9,
//  headers that are not a map of str to str: zf_client_last_error says),
//  and for a body over the broker's max-frame, which its WELCOME says (a
//  body over 1 KiB waits up to 2 s for the session's WELCOME first):
//  "an item of N bytes is over the broker's max-frame (M bytes): not put".
//  zf_client_emit_with refuses an output over it the same way.
int zf_client_put_with (zf_client_t *self, const char *queue, const void *body, size_t size,
                        const zf_put_opts_t *opts, zf_id_t *id);

//  Put a string, packed as a msgpack str.
int zf_client_put_str (zf_client_t *self, const char *queue, const char *text, zf_id_t *id);

//  Attach a source position to the next item put (the position after it):
//  the broker stores it when the PUT holding that item is confirmed, and
//  gives it back in WELCOME after a restart.
void zf_client_checkpoint (zf_client_t *self, const void *data, size_t size);

//  The checkpoint the broker gave at WELCOME (NULL if none); valid until
//  the session ends. Waits up to timeout_ms for the WELCOME.
const void *zf_client_resume_point (zf_client_t *self, size_t *size, int timeout_ms);

//  Send what is buffered and wait until every put is confirmed. Returns 0,
//  or -1 if timeout_ms passed first (-1 waits for ever) or if the broker
//  refused an item put since the last flush: one for a queue its pipeline
//  lacks, or a result past its limits (zf_client_last_error says why).
int zf_client_flush (zf_client_t *self, int timeout_ms);

//  Tell the broker this source is exhausted (after flushing). count is the
//  number of items it produced.
int zf_client_end (zf_client_t *self, uint64_t count);

//  The next delivered item, waiting up to timeout_ms (-1 for ever, 0 not
//  at all). NULL on timeout or when zsys_interrupted is set. The caller
//  owns the item until it acks or nacks it.
zf_item_t *zf_client_next (zf_client_t *self, int timeout_ms);

//  Send what is buffered and handle the broker's traffic for up to
//  timeout_ms, without taking items: an actor busy with its items calls it
//  at least once a heartbeat (1 s) so that the broker knows it is alive.
void zf_client_pump (zf_client_t *self, int timeout_ms);

//  Let outputs and acks wait up to ms for more to join them in one message
//  (0, the default: they go whenever the session is about to wait). They
//  go sooner once a quarter of the actor's credit waits to be acked, or a
//  quarter of a PUT is filled. Fewer, larger messages cost the broker and
//  the actor less per item. The session's own waits end when the linger
//  does; an actor that waits on descriptors of its own waits at most
//  zf_client_linger_left before it calls zf_client_pump again.
void zf_client_set_linger (zf_client_t *self, int ms);

//  ms until what is buffered must go (0: now), or -1 if nothing is.
int zf_client_linger_left (zf_client_t *self);

//  A socket that ends zf_client_next's and zf_client_pump's waits when it
//  becomes readable (NULL for none): an actor gives its pipe, so that a
//  stop is seen at once, not after the wait. The client never reads it.
void zf_client_set_wake (zf_client_t *self, zsock_t *wake);

//  The actor's own figures (a msgpack map of at most ZF_FIGURES_MAX bytes,
//  copied), sent to the broker with a heartbeat at most once a heartbeat
//  interval, and published with this worker in the broker's `stats` event
//  (zflow tap, zflow top). A fetcher gives its requests, answers by status
//  class, errors by kind, connections and latency. Returns 0, or -1 if map
//  is not one msgpack map or is too large.
int zf_client_set_figures (zf_client_t *self, const void *map, size_t size);

//  A file descriptor that becomes readable when the broker may have sent
//  something, for an actor that also waits on other descriptors (sockets
//  of its own, a pipe): when it is readable, or at least once a heartbeat,
//  call zf_client_pump or zf_client_next with no wait. Like ZeroMQ's
//  ZMQ_FD it is edge-triggered, and it changes after a reconnect: ask for
//  it before each wait.
int zf_client_fd (zf_client_t *self);

//  Emit an output of item into queue: its id is derived from the item's id,
//  this session's name (its consumer group) and the output's index
//  (zf_id_output), so a redelivered item emits the same ids and the broker
//  drops the copies. It joins the item's lineage and keeps its group
//  membership. Buffered; sent before the item's ACK.
int zf_client_emit (zf_client_t *self, zf_item_t *item, const char *queue, const void *body,
                    size_t size);

//  zf_client_emit with options (opts may be NULL; its root is ignored: an
//  output stays in its input's lineage). An output keeps its input's group
//  membership unless opts gives one (a group of size 0 for none), so a
//  group made upstream reaches the gather through one-to-one stages. A
//  gather gives the id of its result (zf_id_output of the group's id, its
//  name and ZF_GROUP_RESULT); a processor that fans an item out gives each output
//  its place in a new group.
int zf_client_emit_with (zf_client_t *self, zf_item_t *item, const char *queue, const void *body,
                         size_t size, const zf_put_opts_t *opts);

//  The output index reserved for the result of a gather group: the
//  result's id is zf_id_output (group id, the gather's name,
//  ZF_GROUP_RESULT). zf_client_emit gives no
//  item that many outputs.
#define ZF_GROUP_RESULT 0xFFFFFFFFu

//  The item is done: ack it (after its outputs) and free it; nulls *item_p.
int zf_client_ack (zf_client_t *self, zf_item_t **item_p);

//  Report how far the work on item is: progress in thousandths (0 to 1000)
//  and a note of at most 1 KiB (may be NULL): "resizing images". The broker
//  keeps the latest report of the item's lineage while it runs, for
//  zf_result_progress (zflow status, GET /messages/ID). Sent at once; a
//  worker reports when it has something new to say, not in a tight loop.
//  Returns 0, or -1 if progress is past 1000.
int zf_client_progress (zf_client_t *self, zf_item_t *item, uint32_t progress, const char *note);

//  The item failed: the broker retries it later (after at least delay_ms),
//  or dead-letters it if final or out of attempts. Frees it; nulls *item_p.
int zf_client_nack (zf_client_t *self, zf_item_t **item_p, const char *reason, bool final,
                    int delay_ms);

//  The same with the longer account of the failure (a traceback, at most
//  8 KiB; may be NULL): the broker keeps it beside the reason, with the
//  item's last failure, its dead letter and its root's result.
int zf_client_nack_detail (zf_client_t *self, zf_item_t **item_p, const char *reason,
                           const char *detail, bool final, int delay_ms);

//  Ask the broker the state of an item: "queued", "delivered", "retrying",
//  "done", "dead", "cancelled" or "unknown". Returns 0, or -1 on timeout.
int zf_client_status (zf_client_t *self, const zf_id_t *id, char *state, size_t size,
                      int timeout_ms);

//  The result of the root item id: the state of its lineage and the items
//  it put on results queues (a queue that actors write and none reads, or
//  the pipeline's `results` queue), kept result-ttl after it ended. With
//  wait_ms > 0 the broker answers once the lineage is over, or when
//  wait_ms passed. NULL if no answer came within wait_ms + timeout_ms.
zf_result_t *zf_client_result (zf_client_t *self, const zf_id_t *id, int wait_ms, int timeout_ms);
void zf_result_destroy (zf_result_t **self_p);

//  Its state: "done", "dead" (an item of it was dead-lettered) or
//  "cancelled" once over; "queued", "delayed", "delivered", "retrying" or
//  "running" (items made from it at work) while not; "unknown".
const char *zf_result_state (zf_result_t *self);
bool zf_result_over (zf_result_t *self);

//  The root it is the result of.
const zf_id_t *zf_result_root (zf_result_t *self);

//  For a dead lineage: the last error of the item dead-lettered, the queue
//  it left and its attempts ("" and 0 otherwise); its longer account (a
//  traceback, "" when none was given).
const char *zf_result_reason (zf_result_t *self);
const char *zf_result_detail (zf_result_t *self);

//  While it runs: the latest progress a worker reported within its lineage
//  (zf_client_progress), in thousandths, and its note; 0 and "" when none
//  was (or once it is over).
uint32_t zf_result_progress (zf_result_t *self);
const char *zf_result_note (zf_result_t *self);
const char *zf_result_queue (zf_result_t *self);
uint32_t zf_result_attempts (zf_result_t *self);

//  The results: how many, and each one's id and body (msgpack bytes).
size_t zf_result_count (zf_result_t *self);
const zf_id_t *zf_result_id (zf_result_t *self, size_t index);
const void *zf_result_body (zf_result_t *self, size_t index, size_t *size);

//  One item's state (zf_client_status's), with its queue, its last attempt
//  and the reason of its last failure (a retrying or dead item's), as a
//  result without results (zf_result_state, _queue, _attempts, _reason,
//  _detail, and its lineage's _progress and _note; zf_result_root is the
//  item). NULL on timeout.
zf_result_t *zf_client_item (zf_client_t *self, const zf_id_t *id, int timeout_ms);

//  The figures of every queue (depth, in flight, counts), as zflow status
//  shows them. Returns a new array the caller frees, with *count entries;
//  NULL on timeout.
zf_figures_t *zf_client_queues (zf_client_t *self, size_t *count, int timeout_ms);

//  The figures of every consumer group of every queue. Returns a new array
//  the caller frees, with *count entries; NULL on timeout.
zf_group_figures_t *zf_client_groups (zf_client_t *self, size_t *count, int timeout_ms);

//  The busiest keys (at most ZF_TOP_KEYS, by items waiting) of every
//  consumer group whose queue has a key. Returns a new array the caller
//  frees, with *count entries (0 when no queue has a key); NULL on timeout.
zf_key_figures_t *zf_client_keys (zf_client_t *self, size_t *count, int timeout_ms);

//  --------------------------------------------------------------------------
//  Steering a running broker: what zflow dead, requeue, purge, pause and
//  resume do (docs/operations.md). Each is done by the broker at once,
//  journaled and replicated like the traffic.

typedef struct {
    const char *op;     // "dead" (list dead letters), "requeue" (move them back to their
                        // queue), "purge" (drop what waits in a queue), "pause", "resume";
                        // "schedules" (list), "schedule-add", "schedule-remove",
                        // "schedule-pause", "schedule-resume", "schedule-run"
    const char *queue;  // the queue: QUEUE.dead for dead letters (with "dead", NULL or ""
                        // lists every dead-letter queue)
    const zf_id_t *ids; // only these items (an item's id, or its dead letter's), or NULL: all
    size_t nids;        // entries in ids, at most 1,024
    const char *where;  // only items with this header, "NAME=VALUE", or NULL
    int64_t older_ms;   // only items stored (a dead letter: dead) longer ago than this, or 0
    uint32_t limit;     // "dead": letters listed at most (0: 100; at most 256)
    const char *name;   // the schedule-* ops: the schedule's name
    const struct _zf_schedule_spec_t *schedule; // "schedule-add": what it is
} zf_control_t;

//  A schedule added at run time ("schedule-add", with the queue it puts
//  to as zf_control_t's queue): exactly one of cron, every_ms and at. The
//  broker fires it, as a scheduler actor fires a job of the config file
//  (docs/actors, scheduler): each firing's item is the payload with "job",
//  "scheduled" and "lateness_ms", its id derived from the schedule's name
//  and time.
typedef struct _zf_schedule_spec_t {
    const char *cron;         // a cron expression (zflow cron), or NULL
    int64_t every_ms;         // an interval, or 0
    const char *at;           // an ISO 8601 time, once, or NULL
    const char *tz;           // its zone (IANA), or NULL: UTC
    const void *payload;      // msgpack, or NULL
    size_t payload_size;      // bytes at payload
    int64_t misfire_grace_ms; // a firing later than this is skipped; 0: 1 s
    bool no_coalesce;         // after a stall, fire each missed time within the grace,
                              // not once for all
    uint32_t max_instances;   // firings whose lineage runs at once at most; 0: no limit
} zf_schedule_spec_t;

//  Does control; its answer is a result (zf_result_state "ok") whose
//  zf_result_total is how many items it moved or dropped (with "dead": how
//  many letters there are), whose zf_result_reason says what it left out,
//  whose zf_result_figures are its queue's after it, and, with "dead", whose
//  items are the letters listed, oldest first: for each the id of the item
//  that died, its body, and zf_result_item_queue (the queue it left),
//  _attempts, _ts (when it died), _root and _headers (with zflow-error).
//  NULL when it was refused (no such queue, an unknown op) or timed out:
//  zf_client_last_error says why.
zf_result_t *zf_client_control (zf_client_t *self, const zf_control_t *control, int timeout_ms);
uint64_t zf_result_total (zf_result_t *self);
const zf_figures_t *zf_result_figures (zf_result_t *self);
const char *zf_result_item_queue (zf_result_t *self, size_t index);
uint32_t zf_result_item_attempts (zf_result_t *self, size_t index);
int64_t zf_result_item_ts (zf_result_t *self, size_t index);
const zf_id_t *zf_result_item_root (zf_result_t *self, size_t index);
const void *zf_result_item_headers (zf_result_t *self, size_t index, size_t *size);

//  With "schedules" (every schedule, the config file's jobs among them) or
//  a schedule-* op (the one named, after it): the schedules, *count of them.
const zf_schedule_info_t *zf_result_schedules (zf_result_t *self, size_t *count);

//  --------------------------------------------------------------------------
//  Requests: puts and questions in flight while the caller goes on, any
//  number at once on one session, answered in any order (an HTTP server
//  with many clients waiting, an event loop). The caller drives the
//  session (zf_client_pump, or zf_client_fd in a poll of its own, then
//  zf_client_pump (self, 0)) and takes what was answered, in the order it
//  was, with zf_client_answered. A request that was asked again of a new
//  session (a broker restarted, a leader changed) is answered once.
//
//  The session owns a request until zf_client_answered gives it to the
//  caller, who destroys it; zf_request_destroy of one not yet answered
//  forgets it (its answer, if any comes, is dropped). zf_client_destroy
//  frees those it still owns.

typedef struct _zf_request_t zf_request_t;

//  What became of a request.
typedef enum {
    ZF_REQUEST_PENDING = 0, // asked, not answered yet
    ZF_REQUEST_DONE,        // answered: a put confirmed (or found a duplicate), a question
                            // answered
    ZF_REQUEST_REFUSED,     // the broker refused it (zf_request_error says why): a put to a
                            // queue it lacks, or one that found its queue full past wait_ms
    ZF_REQUEST_TIMEOUT,     // no answer within its timeout. A put may be stored still: it
                            // is sent again, with each new session, until confirmed. Also
                            // a put whose shared PUT the broker stored in part, for a
                            // reason it cannot say of each item (a results queue past
                            // result-max-bytes): the item's state says whether it is in
    ZF_REQUEST_FAILED       // the session was refused for good (zf_client_refused)
} zf_request_outcome_t;

//  Puts one item, as zf_client_put_with; the request is answered on its
//  PUT's CONFIRM, or after timeout_ms (-1: never times out). Requests to
//  one queue made one after another share a PUT, sent at the next
//  zf_client_pump: call it once a turn's requests are made (before a poll
//  of zf_client_fd). NULL when it cannot be sent now: options out of range, a
//  body over max-frame, a refused session, or a full PUT window (the
//  items unconfirmed are the broker's `window`: zf_client_put_room says
//  when there is room again); zf_client_last_error says which. arg is the
//  caller's, given back by zf_request_arg.
zf_request_t *zf_client_put_request (zf_client_t *self, const char *queue, const void *body,
                                     size_t size, const zf_put_opts_t *opts, zf_id_t *id,
                                     int timeout_ms, void *arg);

//  Items a put may add now before the PUT window is full.
uint32_t zf_client_put_room (zf_client_t *self);

//  Asks for the result of root id (zf_client_result): with wait_ms > 0 the
//  broker answers once its lineage is over, or when wait_ms passed. The
//  request times out timeout_ms after that (-1: never).
zf_request_t *zf_client_result_request (zf_client_t *self, const zf_id_t *id, int wait_ms,
                                        int timeout_ms, void *arg);

//  Asks for one item's state (zf_client_item).
zf_request_t *zf_client_item_request (zf_client_t *self, const zf_id_t *id, int timeout_ms,
                                      void *arg);

//  Asks for the figures of every queue and consumer group.
zf_request_t *zf_client_figures_request (zf_client_t *self, int timeout_ms, void *arg);

//  Asks the broker to do control (zf_client_control); refused with the
//  broker's reason (no such queue, an unknown op). NULL when control is
//  out of range (zf_client_last_error says so).
zf_request_t *zf_client_control_request (zf_client_t *self, const zf_control_t *control,
                                         int timeout_ms, void *arg);

//  The next request answered (or timed out), oldest answer first, now the
//  caller's; NULL when there is none. It does not wait.
zf_request_t *zf_client_answered (zf_client_t *self);

void zf_request_destroy (zf_request_t **self_p);
zf_request_outcome_t zf_request_outcome (zf_request_t *self);

//  Why it was refused, failed or timed out; "" when it was answered.
const char *zf_request_error (zf_request_t *self);

//  Why the broker refused a put or a control, as a kind to act on
//  (zf_request_error says it in words).
typedef enum {
    ZF_REFUSAL_NONE = 0,    // not refused by the broker
    ZF_REFUSAL_FULL,        // its queue stayed full (max-depth) past the put's wait_ms: busy,
                            // try again later
    ZF_REFUSAL_NO_QUEUE,    // no queue of that name in the broker's pipeline
    ZF_REFUSAL_RESULTS,     // a result past the results store's limits (result-max-bytes, or
                            // 256 results of one root)
    ZF_REFUSAL_NO_SCHEDULE, // a control: no schedule of that name
    ZF_REFUSAL_INVALID,     // a control the broker cannot do as asked (an unknown op, a bad
                            // spec or filter, a schedule of the config file)
    ZF_REFUSAL_OTHER        // a kind this library does not know (a newer broker's), or none
                            // said (a broker older than the kinds)
} zf_refusal_t;

//  The kind of a put's or a control's refusal (ZF_REQUEST_REFUSED by the
//  broker).
zf_refusal_t zf_request_refusal (zf_request_t *self);

//  The item put, or asked about (zero for figures).
const zf_id_t *zf_request_id (zf_request_t *self);
void *zf_request_arg (zf_request_t *self);

//  A result or item request's answer, now the caller's (NULL unless DONE,
//  or once taken).
zf_result_t *zf_request_take_result (zf_request_t *self);

//  A figures request's answer: arrays now the caller's to free, with
//  *count entries (NULL unless DONE, or once taken).
zf_figures_t *zf_request_take_queues (zf_request_t *self, size_t *count);
zf_group_figures_t *zf_request_take_groups (zf_request_t *self, size_t *count);
zf_key_figures_t *zf_request_take_keys (zf_request_t *self, size_t *count);

//  Why the client's last call failed (a put refused, a question not
//  answered, the session refused), or the last ERROR the broker sent, or
//  "". With NULL: why zf_client_new last failed on this thread.
const char *zf_client_last_error (zf_client_t *self);

//  What a client says of itself as it runs (level "error", "warning" or
//  "info"): a session refused or lost, items the broker refused, a bad
//  message from the broker. By default it goes to the log (stderr) as
//  "zflow NAME: TEXT"; fn takes it instead (a web app's own logger, or
//  nothing).
typedef void (zf_client_log_fn) (void *arg, const char *level, const char *text);
void zf_client_set_log (zf_client_t *self, zf_client_log_fn *fn, void *arg);

//  True once the broker refused the session for good: its HELLO was
//  answered with ERROR `version` (another protocol version) or `value` (a
//  broker of another pipeline, or a name it does not take). No new session
//  is tried; every put, flush and question fails at once from then on,
//  waits return at once (or when the wake socket is readable), and
//  zf_client_last_error says why ("value: this broker runs pipeline ...").
//  A program that meets it should end (zflow's own exit with status 2).
bool zf_client_refused (zf_client_t *self);

//  Sessions opened so far: 1 normally, more after reconnects.
int zf_client_sessions (zf_client_t *self);

//  The broker the session is with: the endpoint given, or, with a group of
//  brokers (endpoints comma-separated), the one it went to (the leader,
//  once welcomed; a leader a broker named may be added to those given).
const char *zf_client_broker (zf_client_t *self);

//  Accessors of a delivered item.
const zf_id_t *zf_item_id (zf_item_t *item);
const char *zf_item_queue (zf_item_t *item);
uint32_t zf_item_attempt (zf_item_t *item);
//  The body (msgpack bytes) and its size.
const void *zf_item_body (zf_item_t *item, size_t *size);
//  The root of its lineage (its own id for a root).
const zf_id_t *zf_item_root (zf_item_t *item);
//  Its membership of a gather group, or NULL when it has none.
const zf_group_t *zf_item_group (zf_item_t *item);
//  Its headers (a msgpack map of str to str) and their size, or NULL.
const void *zf_item_headers (zf_item_t *item, size_t *size);
//  True once the broker cancelled the item's lineage: ack it without work.
bool zf_item_cancelled (zf_item_t *item);

#ifdef __cplusplus
}
#endif
#endif
