/*  zf_ask: a session's questions to the broker (STATUS and its REPORT):
    an item's state, the figures of queues and groups, a root's result;
    and the results the broker pushes (DONE) for the roots tracked.
    See include/zflow.h.
*/
#include "zf_client_impl.h"
#include "zf_alloc.h"
#include "zf_mp.h"

//  What a listing tells of one item besides its id and body.
typedef struct {
    char queue[ZF_NAME_MAX + 1]; // its queue (a dead letter's: the one it left)
    uint32_t attempts;           // its attempts
    int64_t ts;                  // when it was stored (a dead letter: when it died)
    zf_id_t root;                // its root, or zero for a root
    uint8_t *headers;            // its headers (msgpack), owned, or NULL
    size_t headers_size;         // bytes at headers
} s_listed_t;

struct _zf_result_t {
    zf_id_t id;                    // the root asked about
    char state[ZF_CODE_MAX + 1];   // its lineage's state
    char reason[ZF_TEXT_MAX + 1];  // a dead-lettered item's last error, or ""
    char queue[ZF_NAME_MAX + 1];   // the queue it was dead-lettered from, or where the root is
    char *detail;                  // the reason's longer account, or NULL
    uint32_t progress;             // while it runs: thousandths done, as a worker last said
    char *note;                    // and what it is doing, or NULL
    uint32_t attempts;             // its attempts
    size_t count;                  // entries in ids and bodies
    zf_id_t *ids;                  // the results' ids
    zframe_t **bodies;             // their bodies
    s_listed_t *listed;            // a listing's: what else it tells of each, or NULL
    uint64_t total;                // a CONTROL's answer: items it listed in all, moved or dropped
    zf_figures_t *figures;         // a CONTROL's answer: its queue's figures, or NULL
    zf_schedule_info_t *schedules; // a CONTROL's answer: schedules, or NULL
    size_t nschedules;             // entries in schedules
};

void
zf_result_destroy (zf_result_t **self_p)
{
    zf_result_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        zframe_destroy (&self->bodies[i]);
        if (self->listed)
            free (self->listed[i].headers);
    }
    free (self->listed);
    free (self->figures);
    free (self->schedules);
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
    result->ids = (zf_id_t *) zf_alloc ((result->count + 1) * sizeof (zf_id_t));
    result->bodies = (zframe_t **) zf_alloc ((result->count + 1) * sizeof (zframe_t *));
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
    zf_result_t *result = (zf_result_t *) zf_alloc (sizeof (zf_result_t));
    result->id = *id;
    snprintf (result->state, sizeof result->state, "%s", state);
    snprintf (result->reason, sizeof result->reason, "%s", reason);
    result->detail = detail && *detail ? zf_strdup (detail) : NULL;
    snprintf (result->queue, sizeof result->queue, "%s", queue);
    result->attempts = attempts;
    return result;
}

//  Gives result a lineage's progress and note (may be "").
static void
s_result_progress (zf_result_t *result, uint32_t progress, const char *note)
{
    result->progress = progress;
    result->note = *note ? zf_strdup (note) : NULL;
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

//  --------------------------------------------------------------------------
//  Requests

void
zf_client_requests_new (zf_client_t *self)
{
    self->pending = zlistx_new ();
    self->answered = zlistx_new ();
    self->asking = zhashx_new ();
}

//  Frees a request's answer.
static void
s_request_free (zf_request_t *r)
{
    zf_result_destroy (&r->result);
    free (r->error);
    free (r->queues);
    free (r->groups);
    free (r->keys);
    if (r->control)
        free (r->control->ids);
    if (r->control)
        free (r->control->spec);
    free (r->control);
    free (r);
}

void
zf_client_requests_destroy (zf_client_t *self)
{
    zf_request_t *r;
    while ((r = (zf_request_t *) zlistx_detach (self->pending, NULL)))
        s_request_free (r);
    while ((r = (zf_request_t *) zlistx_detach (self->answered, NULL)))
        s_request_free (r);
    zlistx_destroy (&self->pending);
    zlistx_destroy (&self->answered);
    zhashx_destroy (&self->asking);
    zf_heap_destroy (&self->deadlines);
}

//  The key of a request in self->asking: "p" and a PUT's seq, or "t" and a
//  STATUS tag.
static const char *
s_key (zf_ask_t ask, uint64_t key, char *buffer, size_t size)
{
    snprintf (buffer, size, "%c%llu", ask == ZF_ASK_PUT ? 'p' : 't', (unsigned long long) key);
    return buffer;
}

//  A new request, pending on the session from now.
static zf_request_t *
s_request_new (zf_client_t *self, zf_ask_t ask, uint64_t key, const zf_id_t *id, int64_t timeout_ms,
               bool listed, void *arg)
{
    zf_request_t *r = (zf_request_t *) zf_alloc (sizeof (zf_request_t));
    r->client = self;
    r->ask = ask;
    r->key = key;
    if (id)
        r->id = *id;
    r->deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    if (timeout_ms >= 0) {
        zf_heap_push (&self->deadlines, &r->timer, r->deadline);
        r->timed = true;
    }
    r->listed = listed;
    r->arg = arg;
    r->handle = zlistx_add_end (self->pending, r);
    char buffer[32];
    zhashx_insert (self->asking, s_key (ask, key, buffer, sizeof buffer), r);
    return r;
}

//  r is answered (outcome, with its error when not DONE): off the pending
//  list, on to the answered one unless a blocking call waits for it.
static void
s_answer (zf_client_t *self, zf_request_t *r, zf_request_outcome_t outcome, const char *error)
{
    r->outcome = outcome;
    free (r->error); // a request is answered once; kept small until then
    r->error = error && *error ? zf_strdup (error) : NULL;
    char buffer[32];
    zhashx_delete (self->asking, s_key (r->ask, r->key, buffer, sizeof buffer));
    zlistx_delete (self->pending, r->handle);
    if (r->timed)
        zf_heap_remove (&self->deadlines, &r->timer);
    r->timed = false;
    r->handle = r->listed ? zlistx_add_end (self->answered, r) : NULL;
}

//  A put request's key: its PUT's sequence number and its place in it.
static uint64_t
s_put_key (uint64_t seq, uint32_t index)
{
    return seq << 16 | index;
}

zf_request_t *
zf_client_put_asked (zf_client_t *self, uint64_t seq, uint32_t index, const zf_id_t *id,
                     int timeout_ms, void *arg)
{
    return s_request_new (self, ZF_ASK_PUT, s_put_key (seq, index), id, timeout_ms, true, arg);
}

bool
zf_client_on_confirm_request (zf_client_t *self, uint32_t count)
{
    // The broker stores a PUT's items in order: when a full queue's wait
    // passed, the first accepted + duplicates are in and the rest refused.
    // Any other refusal of some items only (a results queue past its
    // bytes) does not say which: those requests are answered as not
    // confirmed, never as stored or as refused.
    zf_proto_t *in = self->in;
    uint32_t stored = in->accepted + in->duplicates;
    zf_refusal_t refusal = zf_refusal_parse (in->code);
    bool in_order = !in->refused || !stored || refusal == ZF_REFUSAL_FULL;
    bool any = false;
    char buffer[32];
    for (uint32_t i = 0; i < count; i++) {
        zf_request_t *r = (zf_request_t *) zhashx_lookup (
            self->asking, s_key (ZF_ASK_PUT, s_put_key (in->seq, i), buffer, sizeof buffer));
        if (!r)
            continue;
        any = true;
        if (!in_order)
            s_answer (self, r, ZF_REQUEST_TIMEOUT,
                      "the broker stored some items of its PUT and refused others: its state "
                      "says which");
        else if (i < stored)
            s_answer (self, r, ZF_REQUEST_DONE, NULL);
        else {
            s_answer (self, r, ZF_REQUEST_REFUSED, in->reason);
            r->refusal = refusal != ZF_REFUSAL_NONE ? refusal : ZF_REFUSAL_OTHER; // unsaid
        }
    }
    return any;
}

//  Sends r's CONTROL.
static void
s_ask_control (zf_client_t *self, zf_request_t *r)
{
    zf_proto_t *out = self->out;
    zf_control_ask_t *c = r->control;
    zf_proto_reset (out, ZF_CONTROL);
    snprintf (out->op, sizeof out->op, "%s", c->op);
    snprintf (out->queue, sizeof out->queue, "%s", c->queue);
    if (c->nids)
        memcpy (out->ids, c->ids, c->nids * sizeof (zf_id_t));
    out->nids = c->nids;
    snprintf (out->where, sizeof out->where, "%s", c->where);
    out->older = c->older;
    out->limit = c->limit;
    out->tag = r->key;
    snprintf (out->name, sizeof out->name, "%s", c->name);
    out->figures = c->spec;
    out->figures_size = (uint32_t) c->spec_size;
    zf_client_send (self);
}

//  Sends r's STATUS (or CONTROL).
static void
s_ask (zf_client_t *self, zf_request_t *r)
{
    if (r->ask == ZF_ASK_CONTROL) {
        s_ask_control (self, r);
        return;
    }
    zf_proto_reset (self->out, ZF_STATUS);
    self->out->id = r->id;
    self->out->results = r->ask == ZF_ASK_RESULT;
    self->out->wait = r->wait;
    self->out->tag = r->key;
    zf_client_send (self);
}

void
zf_client_ask_again (zf_client_t *self)
{
    // The broker that lost the session lost its questions too.
    for (zf_request_t *r = (zf_request_t *) zlistx_first (self->pending); r;
         r = (zf_request_t *) zlistx_next (self->pending))
        if (r->ask != ZF_ASK_PUT)
            s_ask (self, r);
}

//  A new question, asked now; control: a CONTROL's fields, taken.
static zf_request_t *
s_question (zf_client_t *self, zf_ask_t ask, const zf_id_t *id, int wait_ms, int timeout_ms,
            bool listed, void *arg, zf_control_ask_t *control)
{
    if (wait_ms < 0)
        wait_ms = 0;
    zf_client_prepare (self);
    zf_request_t *r =
        s_request_new (self, ask, ++self->tag, id,
                       timeout_ms < 0 ? -1 : (int64_t) wait_ms + timeout_ms, listed, arg);
    r->wait = (uint32_t) wait_ms;
    r->control = control;
    if (self->refused_hello)
        s_answer (self, r, ZF_REQUEST_FAILED, self->last_error);
    else
        s_ask (self, r);
    return r;
}

//  The answer to a CONTROL that REPORT in tells, its bodies taken from in.
static zf_result_t *
s_control_take (zf_proto_t *in)
{
    zf_result_t *result = s_result_new (&in->id, in->state, in->reason, NULL, in->queue, 0);
    result->total = in->count;
    s_result_add_bodies (result, in, 0, in->nitems);
    result->listed = (s_listed_t *) zf_alloc ((in->nitems + 1) * sizeof (s_listed_t));
    for (uint32_t i = 0; i < in->nitems; i++) {
        zf_env_t *env = &in->items[i];
        s_listed_t *listed = &result->listed[i];
        snprintf (listed->queue, sizeof listed->queue, "%s", env->queue);
        listed->attempts = env->attempt;
        listed->ts = env->ts;
        listed->root = env->root;
        if (env->headers_size) {
            listed->headers = (uint8_t *) zf_alloc (env->headers_size);
            memcpy (listed->headers, env->headers, env->headers_size);
            listed->headers_size = env->headers_size;
        }
    }
    if (in->nqueues) {
        result->figures = (zf_figures_t *) zf_alloc (sizeof (zf_figures_t));
        *result->figures = in->queues[0];
    }
    if (in->nschedules) {
        result->schedules =
            (zf_schedule_info_t *) zf_alloc (in->nschedules * sizeof (zf_schedule_info_t));
        memcpy (result->schedules, in->schedules, in->nschedules * sizeof (zf_schedule_info_t));
        result->nschedules = in->nschedules;
    }
    return result;
}

void
zf_client_on_report (zf_client_t *self)
{
    zf_proto_t *in = self->in;
    char buffer[32];
    zf_request_t *r = (zf_request_t *) zhashx_lookup (
        self->asking, s_key (ZF_ASK_ITEM, in->tag, buffer, sizeof buffer));
    if (!r)
        return; // the answer to a question given up on, or asked twice
    if (r->ask == ZF_ASK_CONTROL && streq (in->state, "refused")) {
        s_answer (self, r, ZF_REQUEST_REFUSED, in->reason);
        zf_refusal_t refusal = zf_refusal_parse (in->code);
        r->refusal = refusal != ZF_REFUSAL_NONE ? refusal : ZF_REFUSAL_OTHER; // unsaid
        return;
    }
    if (r->ask == ZF_ASK_CONTROL)
        r->result = s_control_take (in);
    else if (r->ask == ZF_ASK_RESULT)
        r->result = s_result_take (in);
    else if (r->ask == ZF_ASK_ITEM) {
        r->result =
            s_result_new (&r->id, in->state, in->reason, in->detail, in->queue, in->attempt);
        s_result_progress (r->result, in->progress, in->note);
    }
    else {
        r->queues = (zf_figures_t *) zf_alloc ((in->nqueues + 1) * sizeof (zf_figures_t));
        memcpy (r->queues, in->queues, in->nqueues * sizeof (zf_figures_t));
        r->nqueues = in->nqueues;
        r->groups =
            (zf_group_figures_t *) zf_alloc ((in->ngroups + 1) * sizeof (zf_group_figures_t));
        memcpy (r->groups, in->groups, in->ngroups * sizeof (zf_group_figures_t));
        r->ngroups = in->ngroups;
        r->keys = (zf_key_figures_t *) zf_alloc ((in->nkeys + 1) * sizeof (zf_key_figures_t));
        if (in->nkeys) // none when no queue has a key: in->keys is NULL then
            memcpy (r->keys, in->keys, in->nkeys * sizeof (zf_key_figures_t));
        r->nkeys = in->nkeys;
    }
    s_answer (self, r, ZF_REQUEST_DONE, NULL);
}

void
zf_client_expire (zf_client_t *self, int64_t now, bool refused)
{
    if (refused) {
        zf_request_t *r;
        while ((r = (zf_request_t *) zlistx_first (self->pending)))
            s_answer (self, r, ZF_REQUEST_FAILED, self->last_error);
        return;
    }
    // Those due, soonest first: as cheap with 10,000 pending as with one.
    zf_heap_node_t *node;
    while ((node = zf_heap_first (&self->deadlines)) && node->due <= now) {
        zf_request_t *r = ZF_CONTAINER (node, zf_request_t, timer);
        s_answer (self, r, ZF_REQUEST_TIMEOUT,
                  r->ask == ZF_ASK_PUT
                      ? "not confirmed in time: it is sent again until the broker confirms it"
                      : "the broker did not answer in time");
    }
}

zf_request_t *
zf_client_result_request (zf_client_t *self, const zf_id_t *id, int wait_ms, int timeout_ms,
                          void *arg)
{
    return s_question (self, ZF_ASK_RESULT, id, wait_ms, timeout_ms, true, arg, NULL);
}

zf_request_t *
zf_client_item_request (zf_client_t *self, const zf_id_t *id, int timeout_ms, void *arg)
{
    return s_question (self, ZF_ASK_ITEM, id, 0, timeout_ms, true, arg, NULL);
}

zf_request_t *
zf_client_figures_request (zf_client_t *self, int timeout_ms, void *arg)
{
    return s_question (self, ZF_ASK_FIGURES, NULL, 0, timeout_ms, true, arg, NULL);
}

zf_request_t *
zf_client_answered (zf_client_t *self)
{
    zf_request_t *r = (zf_request_t *) zlistx_detach (self->answered, NULL);
    if (r) {
        r->client = NULL;
        r->handle = NULL;
    }
    return r;
}

void
zf_request_destroy (zf_request_t **self_p)
{
    zf_request_t *r = *self_p;
    if (!r)
        return;
    if (r->client && r->outcome == ZF_REQUEST_PENDING) {
        char buffer[32];
        zhashx_delete (r->client->asking, s_key (r->ask, r->key, buffer, sizeof buffer));
        zlistx_delete (r->client->pending, r->handle);
        if (r->timed)
            zf_heap_remove (&r->client->deadlines, &r->timer);
    }
    else if (r->client && r->handle)
        zlistx_delete (r->client->answered, r->handle);
    s_request_free (r);
    *self_p = NULL;
}

zf_request_outcome_t
zf_request_outcome (zf_request_t *self)
{
    return self->outcome;
}

const char *
zf_request_error (zf_request_t *self)
{
    return self->error ? self->error : "";
}

zf_refusal_t
zf_request_refusal (zf_request_t *self)
{
    return self->refusal;
}

const zf_id_t *
zf_request_id (zf_request_t *self)
{
    return &self->id;
}

void *
zf_request_arg (zf_request_t *self)
{
    return self->arg;
}

zf_result_t *
zf_request_take_result (zf_request_t *self)
{
    zf_result_t *result = self->result;
    self->result = NULL;
    return result;
}

zf_figures_t *
zf_request_take_queues (zf_request_t *self, size_t *count)
{
    zf_figures_t *queues = self->queues;
    *count = queues ? self->nqueues : 0;
    self->queues = NULL;
    return queues;
}

zf_group_figures_t *
zf_request_take_groups (zf_request_t *self, size_t *count)
{
    zf_group_figures_t *groups = self->groups;
    *count = groups ? self->ngroups : 0;
    self->groups = NULL;
    return groups;
}

zf_key_figures_t *
zf_request_take_keys (zf_request_t *self, size_t *count)
{
    zf_key_figures_t *keys = self->keys;
    *count = keys ? self->nkeys : 0;
    self->keys = NULL;
    return keys;
}

static zf_request_t *s_wait_for (zf_client_t *self, zf_request_t *r);

//  A schedule's spec into c, as CONTROL's spec map: only what is given.
static void
s_spec (zf_control_ask_t *c, const zf_schedule_spec_t *spec)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    uint32_t count = (spec->cron != NULL) + (spec->every_ms > 0) + (spec->at != NULL) +
                     (spec->tz != NULL) + (spec->payload_size > 0) + (spec->misfire_grace_ms > 0) +
                     spec->no_coalesce + (spec->max_instances > 0);
    msgpack_pack_map (&pk, count);
    if (spec->cron) {
        zf_mp_pack_cstr (&pk, "cron");
        zf_mp_pack_cstr (&pk, spec->cron);
    }
    if (spec->every_ms > 0) {
        zf_mp_pack_cstr (&pk, "every");
        msgpack_pack_uint64 (&pk, (uint64_t) spec->every_ms);
    }
    if (spec->at) {
        zf_mp_pack_cstr (&pk, "at");
        zf_mp_pack_cstr (&pk, spec->at);
    }
    if (spec->tz) {
        zf_mp_pack_cstr (&pk, "tz");
        zf_mp_pack_cstr (&pk, spec->tz);
    }
    if (spec->payload_size) {
        zf_mp_pack_cstr (&pk, "payload");
        msgpack_pack_bin (&pk, spec->payload_size);
        msgpack_pack_bin_body (&pk, spec->payload, spec->payload_size);
    }
    if (spec->misfire_grace_ms > 0) {
        zf_mp_pack_cstr (&pk, "misfire_grace");
        msgpack_pack_uint64 (&pk, (uint64_t) spec->misfire_grace_ms);
    }
    if (spec->no_coalesce) {
        zf_mp_pack_cstr (&pk, "coalesce");
        msgpack_pack_false (&pk);
    }
    if (spec->max_instances) {
        zf_mp_pack_cstr (&pk, "max_instances");
        msgpack_pack_uint32 (&pk, spec->max_instances);
    }
    c->spec = (uint8_t *) buffer.data; // the buffer's, now c's
    c->spec_size = buffer.size;
}

//  A CONTROL's fields from control, checked; NULL with the session's last
//  error set when they are out of range.
static zf_control_ask_t *
s_control_new (zf_client_t *self, const zf_control_t *control)
{
    const char *queue = control->queue ? control->queue : "";
    if (!control->op || strlen (control->op) > ZF_CODE_MAX || strlen (queue) > ZF_NAME_MAX ||
        (control->name && strlen (control->name) > ZF_NAME_MAX) || control->nids > ZF_IDS_MAX ||
        (control->nids && !control->ids) ||
        (control->where && strlen (control->where) > ZF_TEXT_MAX) || control->older_ms < 0) {
        snprintf (self->last_error, sizeof self->last_error,
                  "a control out of range: an op, a queue and a name of at most %d bytes, at "
                  "most %d ids, a where of at most %d bytes",
                  ZF_NAME_MAX, ZF_IDS_MAX, ZF_TEXT_MAX);
        return NULL;
    }
    zf_control_ask_t *c = (zf_control_ask_t *) zf_alloc (sizeof (zf_control_ask_t));
    snprintf (c->op, sizeof c->op, "%s", control->op);
    snprintf (c->queue, sizeof c->queue, "%s", queue);
    if (control->nids) {
        c->ids = (zf_id_t *) zf_alloc (control->nids * sizeof (zf_id_t));
        memcpy (c->ids, control->ids, control->nids * sizeof (zf_id_t));
        c->nids = (uint32_t) control->nids;
    }
    snprintf (c->where, sizeof c->where, "%s", control->where ? control->where : "");
    c->older = (uint64_t) control->older_ms;
    c->limit = control->limit;
    snprintf (c->name, sizeof c->name, "%s", control->name ? control->name : "");
    if (control->schedule)
        s_spec (c, control->schedule);
    if (c->spec_size > ZF_FIGURES_MAX) {
        snprintf (self->last_error, sizeof self->last_error,
                  "a schedule of %zu bytes: at most %d, its payload included", c->spec_size,
                  ZF_FIGURES_MAX);
        free (c->ids);
        free (c->spec);
        free (c);
        return NULL;
    }
    return c;
}

zf_request_t *
zf_client_control_request (zf_client_t *self, const zf_control_t *control, int timeout_ms,
                           void *arg)
{
    zf_control_ask_t *c = s_control_new (self, control);
    return c ? s_question (self, ZF_ASK_CONTROL, NULL, 0, timeout_ms, true, arg, c) : NULL;
}

zf_result_t *
zf_client_control (zf_client_t *self, const zf_control_t *control, int timeout_ms)
{
    zf_control_ask_t *c = s_control_new (self, control);
    if (!c)
        return NULL;
    zf_request_t *r = s_question (self, ZF_ASK_CONTROL, NULL, 0, timeout_ms, false, NULL, c);
    r = s_wait_for (self, r);
    zf_result_t *result = r ? zf_request_take_result (r) : NULL;
    zf_request_destroy (&r);
    return result;
}

//  --------------------------------------------------------------------------
//  Questions that wait for their answer

//  Waits for r, the caller's: answered DONE, or NULL (timed out, refused,
//  interrupted: then the reason is the session's last error).
static zf_request_t *
s_wait_for (zf_client_t *self, zf_request_t *r)
{
    while (r->outcome == ZF_REQUEST_PENDING && !zsys_interrupted) {
        int64_t left = r->deadline - zclock_mono ();
        zf_client_wait (self, left < 100 ? (left > 0 ? left : 0) : 100);
    }
    if (r->outcome != ZF_REQUEST_DONE) {
        if (r->outcome != ZF_REQUEST_PENDING)
            snprintf (self->last_error, sizeof self->last_error, "%s", zf_request_error (r));
        zf_request_destroy (&r); // forgotten if still pending (interrupted)
    }
    return r;
}

//  Asks, and waits for the answer: the request answered DONE, or NULL
//  (timed out, refused, interrupted).
static zf_request_t *
s_ask_and_wait (zf_client_t *self, zf_ask_t ask, const zf_id_t *id, int wait_ms, int timeout_ms)
{
    zf_request_t *r = s_question (self, ask, id, wait_ms, timeout_ms, false, NULL, NULL);
    return s_wait_for (self, r);
}

int
zf_client_status (zf_client_t *self, const zf_id_t *id, char *state, size_t size, int timeout_ms)
{
    zf_request_t *r = s_ask_and_wait (self, ZF_ASK_ITEM, id, 0, timeout_ms);
    if (!r)
        return -1;
    snprintf (state, size, "%s", r->result->state);
    zf_request_destroy (&r);
    return 0;
}

zf_result_t *
zf_client_item (zf_client_t *self, const zf_id_t *id, int timeout_ms)
{
    zf_request_t *r = s_ask_and_wait (self, ZF_ASK_ITEM, id, 0, timeout_ms);
    zf_result_t *item = r ? zf_request_take_result (r) : NULL;
    zf_request_destroy (&r);
    return item;
}

zf_figures_t *
zf_client_queues (zf_client_t *self, size_t *count, int timeout_ms)
{
    zf_request_t *r = s_ask_and_wait (self, ZF_ASK_FIGURES, NULL, 0, timeout_ms);
    zf_figures_t *queues = r ? zf_request_take_queues (r, count) : NULL;
    zf_request_destroy (&r);
    return queues;
}

zf_group_figures_t *
zf_client_groups (zf_client_t *self, size_t *count, int timeout_ms)
{
    zf_request_t *r = s_ask_and_wait (self, ZF_ASK_FIGURES, NULL, 0, timeout_ms);
    zf_group_figures_t *groups = r ? zf_request_take_groups (r, count) : NULL;
    zf_request_destroy (&r);
    return groups;
}

zf_key_figures_t *
zf_client_keys (zf_client_t *self, size_t *count, int timeout_ms)
{
    zf_request_t *r = s_ask_and_wait (self, ZF_ASK_FIGURES, NULL, 0, timeout_ms);
    zf_key_figures_t *keys = r ? zf_request_take_keys (r, count) : NULL;
    zf_request_destroy (&r);
    return keys;
}

zf_result_t *
zf_client_result (zf_client_t *self, const zf_id_t *id, int wait_ms, int timeout_ms)
{
    zf_request_t *r = s_ask_and_wait (self, ZF_ASK_RESULT, id, wait_ms, timeout_ms);
    zf_result_t *result = r ? zf_request_take_result (r) : NULL;
    zf_request_destroy (&r);
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

uint64_t
zf_result_total (zf_result_t *self)
{
    return self->total;
}

const zf_figures_t *
zf_result_figures (zf_result_t *self)
{
    return self->figures;
}

const char *
zf_result_item_queue (zf_result_t *self, size_t index)
{
    return self->listed && index < self->count ? self->listed[index].queue : "";
}

uint32_t
zf_result_item_attempts (zf_result_t *self, size_t index)
{
    return self->listed && index < self->count ? self->listed[index].attempts : 0;
}

int64_t
zf_result_item_ts (zf_result_t *self, size_t index)
{
    return self->listed && index < self->count ? self->listed[index].ts : 0;
}

const zf_id_t *
zf_result_item_root (zf_result_t *self, size_t index)
{
    if (!self->listed || index >= self->count)
        return NULL;
    const zf_id_t *root = &self->listed[index].root;
    return zf_id_is_zero (root) ? &self->ids[index] : root;
}

const void *
zf_result_item_headers (zf_result_t *self, size_t index, size_t *size)
{
    *size = self->listed && index < self->count ? self->listed[index].headers_size : 0;
    return *size ? self->listed[index].headers : NULL;
}

const zf_schedule_info_t *
zf_result_schedules (zf_result_t *self, size_t *count)
{
    *count = self->nschedules;
    return self->schedules;
}
