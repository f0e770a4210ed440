/*  zf_ask: a session's questions to the broker (STATUS and its REPORT):
    an item's state, the figures of queues and groups, a root's result;
    and the results the broker pushes (DONE) for the roots tracked.
    See include/zflow.h.
*/
#include "zf_client_impl.h"

struct _zf_result_t {
    zf_id_t id;                   // the root asked about
    char state[ZF_CODE_MAX + 1];  // its lineage's state
    char reason[ZF_TEXT_MAX + 1]; // a dead-lettered item's last error, or ""
    char queue[ZF_NAME_MAX + 1];  // the queue it was dead-lettered from, or where the root is
    char *detail;                 // the reason's longer account, or NULL
    uint32_t progress;            // while it runs: thousandths done, as a worker last said
    char *note;                   // and what it is doing, or NULL
    uint32_t attempts;            // its attempts
    size_t count;                 // entries in ids and bodies
    zf_id_t *ids;                 // the results' ids
    zframe_t **bodies;            // their bodies
};

void
zf_result_destroy (zf_result_t **self_p)
{
    zf_result_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        zframe_destroy (&self->bodies[i]);
    free (self->bodies);
    free (self->ids);
    free (self->detail);
    free (self->note);
    free (self);
    *self_p = NULL;
}

//  Gives result the results in->items[first..end), their bodies taken.
static void
s_result_add_bodies (zf_result_t *result, zf_proto_t *in, uint32_t first, uint32_t end)
{
    result->count = end - first;
    result->ids = (zf_id_t *) malloc ((result->count + 1) * sizeof (zf_id_t));
    result->bodies = (zframe_t **) malloc ((result->count + 1) * sizeof (zframe_t *));
    for (uint32_t i = first; i < end; i++) {
        result->ids[i - first] = in->items[i].id;
        result->bodies[i - first] = in->items[i].body;
        in->items[i].body = NULL;
    }
}

//  A result without bodies yet; detail may be NULL.
static zf_result_t *
s_result_new (const zf_id_t *id, const char *state, const char *reason, const char *detail,
              const char *queue, uint32_t attempts)
{
    zf_result_t *result = (zf_result_t *) zmalloc (sizeof (zf_result_t));
    result->id = *id;
    snprintf (result->state, sizeof result->state, "%s", state);
    snprintf (result->reason, sizeof result->reason, "%s", reason);
    result->detail = detail && *detail ? strdup (detail) : NULL;
    snprintf (result->queue, sizeof result->queue, "%s", queue);
    result->attempts = attempts;
    return result;
}

//  Gives result a lineage's progress and note (may be "").
static void
s_result_progress (zf_result_t *result, uint32_t progress, const char *note)
{
    result->progress = progress;
    result->note = *note ? strdup (note) : NULL;
}

//  The result a REPORT in tells, its bodies taken from in.
static zf_result_t *
s_result_take (zf_proto_t *in)
{
    zf_result_t *result =
        s_result_new (&in->id, in->state, in->reason, in->detail, in->queue, in->attempt);
    s_result_progress (result, in->progress, in->note);
    s_result_add_bodies (result, in, 0, in->nitems);
    return result;
}

void
zf_client_forget_report (zf_client_t *self)
{
    free (self->report_queues);
    self->report_queues = NULL;
    self->report_nqueues = 0;
    free (self->report_groups);
    self->report_groups = NULL;
    self->report_ngroups = 0;
    zf_result_destroy (&self->report_result);
}

void
zf_client_on_report (zf_client_t *self)
{
    zf_proto_t *in = self->in;
    if (!self->report_wanted || !zf_id_eq (&in->id, &self->report_id))
        return; // the answer to a question given up on
    zf_client_forget_report (self);
    self->report_ready = true;
    snprintf (self->report_state, sizeof self->report_state, "%s", in->state);
    snprintf (self->report_queue, sizeof self->report_queue, "%s", in->queue);
    snprintf (self->report_reason, sizeof self->report_reason, "%s", in->reason);
    snprintf (self->report_detail, sizeof self->report_detail, "%s", in->detail);
    self->report_progress = in->progress;
    snprintf (self->report_note, sizeof self->report_note, "%s", in->note);
    self->report_attempt = in->attempt;
    if (in->nqueues) {
        self->report_queues = (zf_figures_t *) malloc (in->nqueues * sizeof (zf_figures_t));
        memcpy (self->report_queues, in->queues, in->nqueues * sizeof (zf_figures_t));
        self->report_nqueues = in->nqueues;
    }
    if (in->ngroups) {
        self->report_groups =
            (zf_group_figures_t *) malloc (in->ngroups * sizeof (zf_group_figures_t));
        memcpy (self->report_groups, in->groups, in->ngroups * sizeof (zf_group_figures_t));
        self->report_ngroups = in->ngroups;
    }
    if (self->report_results)
        self->report_result = s_result_take (in);
}

void
zf_client_on_done (zf_client_t *self)
{
    // Each root's results follow one another, in the order of the roots.
    zf_proto_t *in = self->in;
    uint32_t next = 0;
    for (uint32_t r = 0; r < in->ndones; r++) {
        zf_done_t *done = &in->dones[r];
        zf_result_t *result =
            s_result_new (&done->id, done->state, done->reason, NULL, done->queue, done->attempt);
        uint32_t first = next;
        while (next < in->nitems && zf_id_eq (&in->items[next].root, &done->id))
            next++;
        s_result_add_bodies (result, in, first, next);
        zlistx_add_end (self->dones, result);
    }
}

//  Waits up to timeout_ms for a DONE; true if one is there.
static bool
s_await_done (zf_client_t *self, int timeout_ms)
{
    zf_client_prepare (self);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    while (zlistx_size (self->dones) == 0) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0 || zsys_interrupted || self->refused_hello)
            return false;
        zf_client_wait (self, left);
    }
    return true;
}

int
zf_client_done (zf_client_t *self, zf_id_t *root, char *state, size_t size, int timeout_ms)
{
    if (!s_await_done (self, timeout_ms))
        return -1;
    zf_result_t *result = (zf_result_t *) zlistx_detach (self->dones, NULL);
    *root = result->id;
    snprintf (state, size, "%s", result->state);
    zf_result_destroy (&result);
    return 0;
}

zf_result_t *
zf_client_next_result (zf_client_t *self, int timeout_ms)
{
    if (!s_await_done (self, timeout_ms))
        return NULL;
    return (zf_result_t *) zlistx_detach (self->dones, NULL);
}

//  Sends STATUS (for id, or for every queue when NULL; with results, for
//  its lineage's results, the broker waiting up to wait_ms for its end)
//  and waits for the REPORT. Returns 0, or -1 on timeout.
static int
s_ask (zf_client_t *self, const zf_id_t *id, bool results, uint32_t wait_ms, int timeout_ms)
{
    zf_client_prepare (self);
    zf_proto_reset (self->out, ZF_STATUS);
    memset (&self->report_id, 0, sizeof self->report_id);
    if (id)
        self->report_id = *id;
    self->report_results = results;
    self->report_wait = wait_ms;
    self->out->id = self->report_id;
    self->out->results = results;
    self->out->wait = wait_ms;
    self->report_ready = false;
    self->report_wanted = true;
    zf_client_send (self);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    while (!self->report_ready) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0 || zsys_interrupted || self->refused_hello) {
            self->report_wanted = false;
            return -1;
        }
        zf_client_wait (self, left);
    }
    self->report_wanted = false;
    return 0;
}

int
zf_client_status (zf_client_t *self, const zf_id_t *id, char *state, size_t size, int timeout_ms)
{
    if (s_ask (self, id, false, 0, timeout_ms))
        return -1;
    snprintf (state, size, "%s", self->report_state);
    return 0;
}

zf_result_t *
zf_client_item (zf_client_t *self, const zf_id_t *id, int timeout_ms)
{
    if (s_ask (self, id, false, 0, timeout_ms))
        return NULL;
    zf_result_t *item =
        s_result_new (id, self->report_state, self->report_reason, self->report_detail,
                      self->report_queue, self->report_attempt);
    s_result_progress (item, self->report_progress, self->report_note);
    return item;
}

zf_figures_t *
zf_client_queues (zf_client_t *self, size_t *count, int timeout_ms)
{
    if (s_ask (self, NULL, false, 0, timeout_ms))
        return NULL;
    zf_figures_t *figures = self->report_queues;
    *count = self->report_nqueues;
    self->report_queues = NULL;
    self->report_nqueues = 0;
    return figures ? figures : (zf_figures_t *) calloc (1, sizeof (zf_figures_t));
}

zf_group_figures_t *
zf_client_groups (zf_client_t *self, size_t *count, int timeout_ms)
{
    if (s_ask (self, NULL, false, 0, timeout_ms))
        return NULL;
    zf_group_figures_t *groups = self->report_groups;
    *count = self->report_ngroups;
    self->report_groups = NULL;
    self->report_ngroups = 0;
    return groups ? groups : (zf_group_figures_t *) calloc (1, sizeof (zf_group_figures_t));
}

zf_result_t *
zf_client_result (zf_client_t *self, const zf_id_t *id, int wait_ms, int timeout_ms)
{
    if (wait_ms < 0)
        wait_ms = 0;
    int total = timeout_ms < 0 ? -1 : wait_ms + timeout_ms;
    if (s_ask (self, id, true, (uint32_t) wait_ms, total))
        return NULL;
    zf_result_t *result = self->report_result;
    self->report_result = NULL;
    return result;
}

const char *
zf_result_state (zf_result_t *self)
{
    return self->state;
}

const zf_id_t *
zf_result_root (zf_result_t *self)
{
    return &self->id;
}

bool
zf_result_over (zf_result_t *self)
{
    return streq (self->state, "done") || streq (self->state, "dead") ||
           streq (self->state, "cancelled");
}

const char *
zf_result_reason (zf_result_t *self)
{
    return self->reason;
}

const char *
zf_result_detail (zf_result_t *self)
{
    return self->detail ? self->detail : "";
}

uint32_t
zf_result_progress (zf_result_t *self)
{
    return self->progress;
}

const char *
zf_result_note (zf_result_t *self)
{
    return self->note ? self->note : "";
}

const char *
zf_result_queue (zf_result_t *self)
{
    return self->queue;
}

uint32_t
zf_result_attempts (zf_result_t *self)
{
    return self->attempts;
}

size_t
zf_result_count (zf_result_t *self)
{
    return self->count;
}

const zf_id_t *
zf_result_id (zf_result_t *self, size_t index)
{
    return index < self->count ? &self->ids[index] : NULL;
}

const void *
zf_result_body (zf_result_t *self, size_t index, size_t *size)
{
    if (index >= self->count) {
        *size = 0;
        return NULL;
    }
    *size = zframe_size (self->bodies[index]);
    return zframe_data (self->bodies[index]);
}
