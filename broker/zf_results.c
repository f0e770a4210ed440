/*  zf_results: what each root's lineage produced. See zf_results.h. */
#include "zf_results.h"
#include "zf_alloc.h"
#include "zf_idmap.h"
#include "zf_records.h"

struct _zf_results_t {
    zf_idmap_t *answers; // root -> zf_answer_t
    zf_list_t ended;     // answers over, oldest end first (ttl is the same for all)
    zlistx_t *waiting;   // answers with waiters (not owned)
    int64_t ttl;         // ms an answer is kept after its end
    int64_t max_bytes;   // bytes of bodies kept at most
    uint64_t bytes;      // bytes of bodies kept now
};

#define S_ANSWER(p) ZF_CONTAINER_OR_NULL (p, zf_answer_t, link)

static void
s_waiter_destroy (void **item)
{
    zf_waiter_t *waiter = (zf_waiter_t *) *item;
    free (waiter->session);
    free (waiter);
    *item = NULL;
}

static void
s_answer_free (zf_results_t *self, zf_answer_t *answer)
{
    for (uint32_t i = 0; i < answer->nitems; i++) {
        self->bytes -= zframe_size (answer->items[i].body);
        zframe_destroy (&answer->items[i].body);
    }
    free (answer->items);
    free (answer->reason);
    free (answer->detail);
    zlistx_destroy (&answer->waiters);
    free (answer);
}

static void
s_free_only (void *value, void *arg)
{
    s_answer_free ((zf_results_t *) arg, (zf_answer_t *) value);
}

zf_results_t *
zf_results_new (int64_t ttl_ms, int64_t max_bytes)
{
    zf_results_t *self = (zf_results_t *) zf_alloc (sizeof (zf_results_t));
    self->answers = zf_idmap_new (64);
    self->waiting = zlistx_new ();
    self->ttl = ttl_ms;
    self->max_bytes = max_bytes;
    return self;
}

void
zf_results_destroy (zf_results_t **self_p)
{
    zf_results_t *self = *self_p;
    if (!self)
        return;
    zf_idmap_foreach (self->answers, s_free_only, self);
    zf_idmap_destroy (&self->answers);
    zlistx_destroy (&self->waiting);
    free (self);
    *self_p = NULL;
}

zf_answer_t *
zf_results_find (zf_results_t *self, const zf_id_t *root)
{
    return (zf_answer_t *) zf_idmap_get (self->answers, root);
}

bool
zf_results_empty (zf_results_t *self)
{
    return zf_idmap_size (self->answers) == 0;
}

static zf_answer_t *
s_answer (zf_results_t *self, const zf_id_t *root)
{
    zf_answer_t *answer = zf_results_find (self, root);
    if (!answer) {
        answer = (zf_answer_t *) zf_alloc (sizeof (zf_answer_t));
        answer->root = *root;
        zf_idmap_put (self->answers, root, answer);
    }
    return answer;
}

zf_answer_t *
zf_results_add (zf_results_t *self, const zf_id_t *root, const zf_env_t *env, const void *body,
                size_t size, char *why, size_t why_size)
{
    zf_answer_t *answer = zf_results_find (self, root);
    if (answer && answer->nitems >= ZF_RESULTS_PER_ROOT) {
        snprintf (why, why_size, "a root keeps %d results at most", ZF_RESULTS_PER_ROOT);
        return NULL;
    }
    if ((int64_t) (self->bytes + size) > self->max_bytes) {
        snprintf (why, why_size,
                  "the results kept would pass result-max-bytes (%" PRId64
                  " bytes); they are let go result-ttl after their lineage ends",
                  self->max_bytes);
        return NULL;
    }
    answer = s_answer (self, root);
    if (answer->nitems == 0 || (answer->nitems & (answer->nitems - 1)) == 0)
        answer->items = (zf_output_t *) zf_realloc (
            answer->items, (answer->nitems ? 2 * answer->nitems : 1) * sizeof (zf_output_t));
    zf_output_t *result = &answer->items[answer->nitems++];
    result->id = env->id;
    snprintf (result->queue, sizeof result->queue, "%s", env->queue);
    result->ts = env->ts;
    result->body = zframe_new (body, size);
    self->bytes += size;
    return answer;
}

zf_answer_t *
zf_results_fail (zf_results_t *self, const zf_id_t *root, const char *queue, const char *reason,
                 const char *detail, uint32_t attempts)
{
    zf_answer_t *answer = s_answer (self, root);
    free (answer->reason);
    answer->reason = reason ? zf_strdup (reason) : NULL;
    free (answer->detail);
    answer->detail = detail && *detail ? zf_strdup (detail) : NULL;
    answer->attempts = attempts;
    snprintf (answer->dead_queue, sizeof answer->dead_queue, "%s", queue);
    return answer;
}

zf_answer_t *
zf_results_cancel (zf_results_t *self, const zf_id_t *root, const char *reason)
{
    zf_answer_t *answer = s_answer (self, root);
    if (!answer->reason && !answer->dead_queue[0])
        answer->reason = zf_strdup (reason ? reason : "cancelled");
    answer->cancelled = true;
    return answer;
}

zf_answer_t *
zf_results_end (zf_results_t *self, const zf_id_t *root, uint8_t outcome, int64_t ended)
{
    zf_answer_t *answer = zf_results_find (self, root);
    if (!answer || answer->outcome)
        return answer;
    answer->outcome = outcome;
    answer->ended = ended;
    zf_list_push (&self->ended, &answer->link);
    return answer;
}

zf_answer_t *
zf_results_reopen (zf_results_t *self, const zf_id_t *root)
{
    zf_answer_t *answer = zf_results_find (self, root);
    if (!answer)
        return NULL;
    if (answer->outcome)
        zf_list_remove (&self->ended, &answer->link);
    answer->outcome = 0;
    answer->ended = 0;
    answer->cancelled = false;
    free (answer->reason);
    answer->reason = NULL;
    free (answer->detail);
    answer->detail = NULL;
    answer->attempts = 0;
    answer->dead_queue[0] = 0;
    return answer;
}

zf_answer_t *
zf_results_wait (zf_results_t *self, const zf_id_t *root, const char *session, uint64_t tag,
                 int64_t deadline)
{
    zf_answer_t *answer = s_answer (self, root);
    if (!answer->waiters) {
        answer->waiters = zlistx_new ();
        zlistx_set_destructor (answer->waiters, s_waiter_destroy);
        zlistx_add_end (self->waiting, answer);
    }
    zf_waiter_t *waiter = (zf_waiter_t *) zf_alloc (sizeof (zf_waiter_t));
    waiter->session = zf_strdup (session);
    waiter->tag = tag;
    waiter->deadline = deadline;
    zlistx_add_end (answer->waiters, waiter);
    return answer;
}

//  Frees answer if it holds nothing worth keeping: no result, no failure,
//  no waiter. A running root's answer goes too: it was made for a waiter.
static void
s_drop_if_empty (zf_results_t *self, zf_answer_t *answer)
{
    if (answer->nitems || answer->dead_queue[0] || answer->reason || answer->waiters)
        return;
    if (answer->outcome)
        zf_list_remove (&self->ended, &answer->link);
    zf_idmap_remove (self->answers, &answer->root);
    s_answer_free (self, answer);
}

void
zf_results_tick (zf_results_t *self, int64_t now, int64_t mono,
                 void (*fn) (zf_answer_t *answer, zf_waiter_t *waiter, void *arg), void *arg)
{
    zf_answer_t *answer;
    while ((answer = S_ANSWER (self->ended.head)) && answer->ended + self->ttl <= now &&
           !answer->waiters) {
        zf_list_remove (&self->ended, &answer->link);
        zf_idmap_remove (self->answers, &answer->root);
        s_answer_free (self, answer);
    }
    answer = (zf_answer_t *) zlistx_first (self->waiting);
    while (answer) {
        zf_waiter_t *waiter = (zf_waiter_t *) zlistx_first (answer->waiters);
        while (waiter) {
            void *handle = zlistx_cursor (answer->waiters);
            zf_waiter_t *next = (zf_waiter_t *) zlistx_next (answer->waiters);
            if (waiter->deadline <= mono || answer->outcome || answer->cancelled) {
                fn (answer, waiter, arg);
                zlistx_delete (answer->waiters, handle);
            }
            waiter = next;
        }
        void *handle = zlistx_cursor (self->waiting);
        zf_answer_t *next = (zf_answer_t *) zlistx_next (self->waiting);
        if (zlistx_size (answer->waiters) == 0) {
            zlistx_delete (self->waiting, handle);
            zlistx_destroy (&answer->waiters);
            s_drop_if_empty (self, answer);
        }
        answer = next;
    }
}

typedef struct {
    void (*fn) (zf_answer_t *answer, void *arg);
    void *arg;
} s_visit_t;

static void
s_each (void *value, void *arg)
{
    s_visit_t *visit = (s_visit_t *) arg;
    visit->fn ((zf_answer_t *) value, visit->arg);
}

void
zf_results_foreach (zf_results_t *self, void (*fn) (zf_answer_t *answer, void *arg), void *arg)
{
    s_visit_t visit = { fn, arg };
    zf_idmap_foreach (self->answers, s_each, &visit);
}

size_t
zf_results_size (zf_results_t *self)
{
    return zf_idmap_size (self->answers);
}

uint64_t
zf_results_bytes (zf_results_t *self)
{
    return self->bytes;
}

const char *
zf_outcome_name (uint8_t outcome)
{
    switch (outcome) {
        case ZF_OUTCOME_DONE:
            return "done";
        case ZF_OUTCOME_DEAD:
            return "dead";
        case ZF_OUTCOME_CANCELLED:
            return "cancelled";
        default:
            return NULL;
    }
}
