/*  zf_results: what each root item's lineage produced at its end, kept for
    whoever asks (zflow result, GET /results/ID, zf_client_result).

    An answer is kept per root: the items its lineage put on a results
    queue (a queue that actors write and none reads, or the pipeline's
    `results` queue), and once the lineage is over its outcome, with the
    reason and attempts of an item that went to a dead-letter queue. An
    answer that is over is forgotten result-ttl after it ended; the bodies
    of all answers together stay under result-max-bytes (an item that would
    pass it is refused, as is the 257th result of one root). Sessions that
    wait for a root's end are kept on its answer until it ends or their
    wait is over.

    No sockets: the store feeds it, the sessions module answers waiters,
    and the journal gets each change through the store's hooks.
*/
#ifndef ZF_RESULTS_H_INCLUDED
#define ZF_RESULTS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "zf_list.h"
#include "zf_proto.h"
#include "zflow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZF_RESULTS_PER_ROOT ZF_BATCH_MAX // results kept for one root at most

typedef struct _zf_results_t zf_results_t;

//  One result: an item a lineage put on a results queue.
typedef struct {
    zf_id_t id;                  // the item's id
    char queue[ZF_NAME_MAX + 1]; // the queue it was put on
    int64_t ts;                  // when it was made, ms since the Unix epoch
    zframe_t *body;              // its body, owned
} zf_output_t;

//  A session waiting for a root's lineage to end.
typedef struct {
    char *session;    // its key
    uint64_t tag;     // its STATUS's tag, for the REPORT
    int64_t deadline; // when its wait is over (ms, monotonic)
} zf_waiter_t;

//  What is kept of one root.
typedef struct {
    zf_id_t root;                     // the root item
    uint8_t outcome;                  // ZF_OUTCOME_DONE, _DEAD, _CANCELLED; 0 while running
    bool cancelled;                   // cancelled: its waiters are answered at once, even
                                      // while items of it still run
    int64_t ended;                    // when it ended, ms since the Unix epoch
    char *reason;                     // the dead-lettered item's last error (or the
                                      // cancel's reason), or NULL
    char *detail;                     // its longer account (a traceback), or NULL
    uint32_t attempts;                // its attempts
    char dead_queue[ZF_NAME_MAX + 1]; // the queue it was dead-lettered from, or ""
    zf_output_t *items;               // the results, in the order they came
    uint32_t nitems;                  // entries in items
    zlistx_t *waiters;                // zf_waiter_t, or NULL when none
    zf_link_t link;                   // ended: the results' expiry list
} zf_answer_t;

//  Results kept ttl_ms after their lineage ended, max_bytes of bodies in all.
zf_results_t *zf_results_new (int64_t ttl_ms, int64_t max_bytes);
void zf_results_destroy (zf_results_t **self_p);

//  The answer kept for root, or NULL.
zf_answer_t *zf_results_find (zf_results_t *self, const zf_id_t *root);

//  True when there is no answer at all (the store asks before looking one up).
bool zf_results_empty (zf_results_t *self);

//  Keeps a result of root's lineage (the body copied). Returns the answer,
//  or NULL when it would pass result-max-bytes or the results one root may
//  have; then why is filled with a reason naming the limit.
zf_answer_t *zf_results_add (zf_results_t *self, const zf_id_t *root, const zf_env_t *env,
                             const void *body, size_t size, char *why, size_t why_size);

//  Root's lineage had an item dead-lettered from queue after attempts,
//  failing with reason and its detail (either may be NULL).
zf_answer_t *zf_results_fail (zf_results_t *self, const zf_id_t *root, const char *queue,
                              const char *reason, const char *detail, uint32_t attempts);

//  Root's lineage was cancelled for reason: that is its failure, unless it
//  has one already (an item dead-lettered before: the first failure). Its
//  waiters are answered at the next tick, though items of it may still
//  run (their outputs are dropped when they come).
zf_answer_t *zf_results_cancel (zf_results_t *self, const zf_id_t *root, const char *reason);

//  Root's lineage is over with outcome at ended (ms since the Unix epoch).
//  Returns its answer if one is kept, else NULL. Its waiters are answered
//  at the next zf_results_tick; an answer with nothing to say (no result,
//  no failure, no cancel's reason) is forgotten then.
zf_answer_t *zf_results_end (zf_results_t *self, const zf_id_t *root, uint8_t outcome,
                             int64_t ended);

//  Root's lineage runs again (an item of it was requeued): its end, its
//  failure and its cancel are forgotten, its results kept. Returns its
//  answer, or NULL when none is kept.
zf_answer_t *zf_results_reopen (zf_results_t *self, const zf_id_t *root);

//  A session waits for root's end until deadline (monotonic ms).
//  tag: the STATUS's, for the REPORT that answers it.
zf_answer_t *zf_results_wait (zf_results_t *self, const zf_id_t *root, const char *session,
                              uint64_t tag, int64_t deadline);

//  Answers over for longer than the ttl at now (wall ms) are forgotten;
//  waiters of answers that ended, or whose deadline passed at mono
//  (monotonic ms), are given to fn (then answer->outcome says which), and
//  freed.
void zf_results_tick (zf_results_t *self, int64_t now, int64_t mono,
                      void (*fn) (zf_answer_t *answer, zf_waiter_t *waiter, void *arg), void *arg);

//  Every answer, in no order (for snapshots; fn must not change them).
void zf_results_foreach (zf_results_t *self, void (*fn) (zf_answer_t *answer, void *arg),
                         void *arg);

//  Answers kept, and bytes of their bodies.
size_t zf_results_size (zf_results_t *self);
uint64_t zf_results_bytes (zf_results_t *self);

//  The name of an outcome: "done", "dead", "cancelled"; NULL for 0.
const char *zf_outcome_name (uint8_t outcome);

#ifdef __cplusplus
}
#endif
#endif
