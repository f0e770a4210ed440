/*  zf_client_impl: the inside of a session, which its parts share: the
    session itself (zf_client.c: connecting, HELLO, heartbeats, following
    the leader, the traffic), and the roles on it: puts (zf_putter.c),
    the worker's deliveries (zf_worker.c), and questions to the broker
    (zf_ask.c: status, figures, results). No other module includes it.
*/
#ifndef ZF_CLIENT_IMPL_H_INCLUDED
#define ZF_CLIENT_IMPL_H_INCLUDED

#include "zf_heap.h"
#include "zf_list.h"
#include "zf_proto.h"
#include "zflow.h"

#include <czmq.h>

struct _zf_item_t {
    zf_env_t env;     // the envelope (headers copied)
    zframe_t *body;   // the body
    uint32_t emitted; // outputs so far: the index of the next child id
    bool cancelled;   // the broker cancelled its lineage
    void *handle;     // in the session's held list
};

//  A PUT sent and not yet confirmed, kept to send again on a new session.
typedef struct {
    uint64_t seq;   // its seq
    uint32_t count; // items in it
    zmsg_t *msg;    // a copy of what was sent
} s_unconfirmed_t;

//  What a request asks.
typedef enum {
    ZF_ASK_PUT,     // a PUT of one item: answered by its CONFIRM
    ZF_ASK_ITEM,    // STATUS of an item
    ZF_ASK_RESULT,  // STATUS of a root's lineage, with its results
    ZF_ASK_FIGURES, // STATUS of every queue and group
    ZF_ASK_CONTROL, // CONTROL: an operator's command
} zf_ask_t;

//  A CONTROL's fields, kept to ask again on a new session.
typedef struct {
    char op[ZF_CODE_MAX + 1];    // what to do
    char queue[ZF_NAME_MAX + 1]; // to which queue
    zf_id_t *ids;                // the items named, owned, or NULL
    uint32_t nids;               // entries in ids
    char where[ZF_TEXT_MAX + 1]; // HEADER=VALUE, or ""
    uint64_t older;              // ms, or 0
    uint32_t limit;              // letters listed at most, or 0
    char name[ZF_NAME_MAX + 1];  // a schedule's name, or ""
    uint8_t *spec;               // a schedule's spec (msgpack map), owned, or NULL
    size_t spec_size;            // bytes at spec
} zf_control_ask_t;

//  A put or a question in flight (include/zflow.h).
struct _zf_request_t {
    zf_client_t *client;          // its session while it owns it, else NULL
    zf_ask_t ask;                 // what it asks
    uint64_t key;                 // a PUT: its seq; a question: its STATUS tag
    zf_id_t id;                   // the item put or asked about (zero: figures)
    uint32_t wait;                // a result: ms the broker may wait for the end
    int64_t deadline;             // when it times out (ms, monotonic)
    zf_heap_node_t timer;         // on the session's deadlines while pending, if it has one
    bool timed;                   // it is on them
    bool listed;                  // answered, it goes to the answered list (a
                                  // blocking call's own request does not)
    zf_request_outcome_t outcome; // what became of it
    char *error;                  // why it was refused, failed or timed out, or NULL
    zf_refusal_t refusal;         // a put the broker refused: the kind of it
    zf_result_t *result;          // an item's or result's answer, owned
    zf_figures_t *queues;         // the figures' answer, owned
    size_t nqueues;               // entries in queues
    zf_group_figures_t *groups;   // and of the groups, owned
    size_t ngroups;               // entries in groups
    zf_key_figures_t *keys;       // and of the groups' busiest keys, owned
    size_t nkeys;                 // entries in keys
    zf_control_ask_t *control;    // a CONTROL's fields, owned, or NULL
    void *arg;                    // the caller's
    void *handle;                 // in the session's pending or answered list
};

//  Brokers a session may go to: those it was given, and leaders named.
#define ZF_ENDPOINTS_MAX 16

struct _zf_client_t {
    char *endpoint;                        // the broker, or a comma-separated group of them
    char *endpoints[ZF_ENDPOINTS_MAX];     // each of them (and leaders they named)
    int nendpoints;                        // entries in endpoints
    int current;                           // the one this session is with
    zsock_t *monitor;                      // its socket's disconnections, with several
    int64_t reopen_at;                     // when to try the next one (ms), or 0
    char name[ZF_NAME_MAX + 1];            // actor or client name
    char input[ZF_NAME_MAX + 1];           // queue consumed, or ""
    char host[ZF_NAME_MAX + 1];            // for monitoring
    char pipeline[ZF_NAME_MAX + 1];        // the pipeline it belongs to, or ""
    int concurrency;                       // items held at once
    int worker;                            // worker number
    zsock_t *sock;                         // DEALER to the broker
    bool welcomed;                         // WELCOME seen on this session
    bool refused_hello;                    // the broker refused the session for good:
                                           // another pipeline's, or another version
    int sessions;                          // sessions opened
    uint64_t done;                         // items acked, over all its sessions (ids sent)
    uint64_t failed;                       // items nacked, over all its sessions
    uint32_t heartbeat;                    // ms
    uint32_t liveness;                     // missed heartbeats before the broker is dead
    uint32_t window;                       // unconfirmed PUT items allowed
    uint32_t max_frame;                    // the broker's max-frame (WELCOME), 0 unsaid
    int64_t last_recv;                     // ms
    int64_t last_send;                     // ms
    int64_t backoff;                       // ms to wait for WELCOME before a new session
    int64_t hello_at;                      // ms, when HELLO was sent
    zf_proto_t *in;                        // message received
    zf_proto_t *out;                       // message sent (not PUT)
    zf_proto_t *put;                       // the PUT being filled
    uint64_t seq;                          // last PUT seq
    zlistx_t *unconfirmed;                 // s_unconfirmed_t, oldest first
    uint64_t unconfirmed_items;            // items in unconfirmed
    uint32_t put_requests;                 // items of put that requests put (all to one queue)
    zf_id_t acks[ZF_IDS_MAX];              // ids to ack
    uint32_t nacks;                        // entries in acks
    zlistx_t *inbox;                       // zf_item_t delivered, not yet taken
    zlistx_t *held;                        // zf_item_t taken, not yet acked
    uint8_t checkpoint[ZF_CHECKPOINT_MAX]; // for the PUT of the next item
    uint32_t checkpoint_size;              // 0 when none
    uint8_t resume[ZF_CHECKPOINT_MAX];     // from WELCOME
    uint32_t resume_size;                  // 0 when none
    bool has_resume;                       // WELCOME carried a checkpoint
    zlistx_t *pending;                     // zf_request_t asked, not yet answered
    zf_heap_t deadlines;                   // pending requests' timers, soonest first
    zlistx_t *answered;                    // zf_request_t answered, for zf_client_answered
    zhashx_t *asking;                      // "p" seq or "t" tag -> pending zf_request_t
    uint64_t tag;                          // the last STATUS tag
    uint32_t refused;                      // items the broker refused since the last flush
    char last_error[ZF_TEXT_MAX + 64];     // why the last call failed, or the last ERROR
    zf_client_log_fn *log;                 // takes what the client says, or NULL: the log
    void *log_arg;                         // for log
    uint8_t random[4096];                  // random bytes for new ids, used from random_pos
    size_t random_pos;                     // sizeof random when used up
    bool track;                            // PUTs ask for DONE
    zcert_t *curve;                        // its CURVE certificate, or NULL
    char curve_server[41];                 // the broker's public key (Z85) with curve
    uint8_t figures[ZF_FIGURES_MAX];       // the actor's own figures, a msgpack map
    uint32_t figures_size;                 // bytes in figures; 0 when none
    bool figures_new;                      // changed since they were last sent
    int64_t figures_sent;                  // when they were last sent (ms)
    zlistx_t *dones;                       // DONE received: zf_result_t, oldest first
    zlistx_t *url_keyed;                   // queues whose items get zflow-key from their
                                           // URL (zf_client_key_by_url), or NULL
    zhashx_t *told_keyed;                  // the same, as the broker's WELCOME (or a PING
                                           // after a reload) said: a set of names
    bool told;                             // a WELCOME came, on this session or one before
    int64_t told_by;                       // until then puts wait for one (ms); 0: none yet
    zlistx_t *put_headers;                 // copies of the headers of the items in put,
                                           // freed once it is encoded
    int linger;                            // ms outputs and acks may wait for company
    zsock_t *wake;                         // ends the actor's waits when readable, or NULL
    int64_t pending_since;                 // when the oldest unsent one was made; 0 if none
};

//  The session (zf_client.c)

//  What the client has to say of itself (a session lost, a broker's
//  refusal, a bad message): to the log function the caller set, or to the
//  log as "zflow NAME: TEXT". Why a call failed is zf_client_last_error's.
void zf_client_say (zf_client_t *self, const char *level, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  The session opens at first use, so that settings made after new count.
void zf_client_ready (zf_client_t *self);

//  Sends msg (a PUT kept to be sent again: a copy goes).
void zf_client_send_kept (zf_client_t *self, zmsg_t *msg);

//  Handles the broker's traffic for up to timeout_ms (-1: no end); with
//  wake, returns once the wake socket is readable too. True if it was.
bool zf_client_pump_or_wake (zf_client_t *self, int64_t timeout_ms, bool wake);

//  Puts (zf_putter.c)

//  A PUT of the items gathered goes out, kept until confirmed.
void zf_client_send_put (zf_client_t *self);

//  A CONFIRM came (self->in): its PUT is forgotten; a refusal is said.
void zf_client_on_confirm (zf_client_t *self);

//  env and its body (taken) join the PUT being gathered; with wake, a
//  full window waits on the wake socket too; wait: ms the broker may hold
//  it for room. 0, or -1 (last_error says why).
int zf_client_enqueue (zf_client_t *self, zf_env_t *env, zframe_t **body_p, bool wake,
                       uint32_t wait);

void zf_client_unconfirmed_destroy (s_unconfirmed_t **self_p);

//  The worker (zf_worker.c)

//  The ACK of what was acked goes out, after the PUT of its outputs.
void zf_client_send_acks (zf_client_t *self);

//  A DELIVER came (self->in): its items join the inbox.
void zf_client_on_deliver (zf_client_t *self);

//  A CANCEL came (self->in): the items of that lineage held or waiting are
//  marked (their outputs would be dropped).
void zf_client_on_cancel (zf_client_t *self);

//  Waits for the broker up to timeout_ms as an actor does: what is
//  buffered goes out when its linger is over. True if the wake socket
//  ended the wait.
bool zf_client_actor_wait (zf_client_t *self, int64_t timeout_ms);

void zf_client_item_destroy (zf_item_t **self_p);

//  Questions (zf_ask.c)

//  The session is open and what is buffered is sent (before a question).
void zf_client_prepare (zf_client_t *self);

//  Sends self->out.
void zf_client_send (zf_client_t *self);

//  Handles the broker's traffic for up to timeout_ms.
void zf_client_wait (zf_client_t *self, int64_t timeout_ms);

//  A REPORT came (self->in): the answer of the question it tags.
void zf_client_on_report (zf_client_t *self);

//  A CONFIRM came (self->in) of a PUT of count items: the answers of the
//  put requests among them. True if there were any (they tell their
//  callers of a refusal).
bool zf_client_on_confirm_request (zf_client_t *self, uint32_t count);

//  A new session: the questions pending are asked of it again.
void zf_client_ask_again (zf_client_t *self);

//  Pending requests past their deadline at now time out; with refused
//  (the session refused for good), all of them fail.
void zf_client_expire (zf_client_t *self, int64_t now, bool refused);

//  A new put request for the item at index of the PUT of seq (sent, or
//  being filled).
zf_request_t *zf_client_put_asked (zf_client_t *self, uint64_t seq, uint32_t index,
                                   const zf_id_t *id, int timeout_ms, void *arg);

//  Sets up and frees a session's requests.
void zf_client_requests_new (zf_client_t *self);
void zf_client_requests_destroy (zf_client_t *self);

//  A DONE came (self->in): its result joins self->dones.
void zf_client_on_done (zf_client_t *self);

#endif
