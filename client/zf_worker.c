/*  zf_worker: a session's worker role (include/zflow.h, "Consuming"): the
    items the broker delivers, held until acked or nacked, their outputs
    emitted as children, acks gathered in one ACK of up to 1024 ids, sent
    after the PUT of the outputs they made. zf_client.c is the session it
    rides on.
*/
#include "zflow.h"
#include "zf_client_impl.h"
#include "zf_alloc.h"
#include "zf_mp.h"
#include "zf_proto.h"

#include <czmq.h>

void
zf_client_item_destroy (zf_item_t **self_p)
{
    if (!*self_p)
        return;
    zf_item_t *self = *self_p;
    zframe_destroy (&self->body);
    free ((void *) self->env.headers);
    free (self);
    *self_p = NULL;
}

void
zf_client_send_acks (zf_client_t *self)
{
    zf_client_send_put (self); // outputs before the ACK of what made them
    if (self->put->nitems)
        return; // held until the broker's WELCOME: so are the acks
    self->pending_since = 0;
    if (self->nacks == 0)
        return;
    zf_proto_reset (self->out, ZF_ACK);
    memcpy (self->out->ids, self->acks, self->nacks * sizeof (zf_id_t));
    self->out->nids = self->nacks;
    self->done += self->nacks;
    self->nacks = 0;
    zf_client_send (self);
}

//  Whether what is buffered must go now: always without a linger; with
//  one, once the oldest has waited that long, or once a quarter of the
//  actor's credit waits to be acked (the broker sends no new items for
//  those until then), or a quarter of a PUT is filled.
static bool
s_linger_over (zf_client_t *self)
{
    uint32_t enough = self->concurrency >= 4 ? (uint32_t) self->concurrency / 4 : 1;
    return self->linger == 0 || !self->pending_since ||
           zclock_mono () - self->pending_since >= self->linger || self->nacks >= enough ||
           self->put->nitems >= ZF_BATCH_MAX / 4;
}

void
zf_client_on_deliver (zf_client_t *self)
{
    for (uint32_t i = 0; i < self->in->nitems; i++) {
        zf_env_t *env = &self->in->items[i];
        zf_item_t *item = (zf_item_t *) zf_alloc (sizeof (zf_item_t));
        item->env = *env;
        item->body = env->body;
        env->body = NULL;
        item->env.body = NULL;
        if (env->headers_size) {
            uint8_t *copy = (uint8_t *) zf_alloc (env->headers_size);
            memcpy (copy, env->headers, env->headers_size);
            item->env.headers = copy;
        }
        zlistx_add_end (self->inbox, item);
    }
}

void
zf_client_on_cancel (zf_client_t *self)
{
    const zf_id_t *root = &self->in->id;
    for (zf_item_t *item = (zf_item_t *) zlistx_first (self->held); item;
         item = (zf_item_t *) zlistx_next (self->held))
        if (zf_id_eq (zf_env_root (&item->env), root))
            item->cancelled = true;
    // Not yet taken: dropped here, acked so the broker frees them. The
    // handles are gathered first: deleting moves the list's cursor.
    zlistx_t *drop = zlistx_new ();
    for (zf_item_t *item = (zf_item_t *) zlistx_first (self->inbox); item;
         item = (zf_item_t *) zlistx_next (self->inbox))
        if (zf_id_eq (zf_env_root (&item->env), root))
            zlistx_add_end (drop, zlistx_cursor (self->inbox));
    for (void *handle = zlistx_first (drop); handle; handle = zlistx_next (drop)) {
        zf_item_t *item = (zf_item_t *) zlistx_handle_item (handle);
        if (self->nacks == ZF_IDS_MAX)
            zf_client_send_acks (self);
        self->acks[self->nacks++] = item->env.id;
        zlistx_delete (self->inbox, handle);
    }
    zlistx_destroy (&drop);
}

//  The actor's wait, up to timeout_ms (-1 for ever): first what is
//  buffered goes, unless its linger lasts, and then the wait ends when the
//  linger does, to send it. True if the wake socket ended it.
bool
zf_client_actor_wait (zf_client_t *self, int64_t timeout_ms)
{
    if (s_linger_over (self))
        zf_client_send_acks (self);
    int linger = zf_client_linger_left (self);
    if (linger >= 0 && (timeout_ms < 0 || timeout_ms > linger))
        timeout_ms = linger;
    return zf_client_pump_or_wake (self, timeout_ms, true);
}

zf_item_t *
zf_client_next (zf_client_t *self, int timeout_ms)
{
    zf_client_ready (self);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    // The socket is read at least once, even with no time to wait: what
    // has arrived is taken without waiting for it.
    for (bool read = false;; read = true) {
        zf_item_t *item = (zf_item_t *) zlistx_first (self->inbox);
        if (item) {
            zlistx_detach_cur (self->inbox);
            item->handle = zlistx_add_end (self->held, item);
            return item;
        }
        int64_t left = deadline - zclock_mono ();
        if ((left <= 0 && read) || zsys_interrupted || self->refused_hello) {
            if (s_linger_over (self))
                zf_client_send_acks (self);
            return NULL;
        }
        if (zf_client_actor_wait (self, left > 0 ? left : 0) && zlistx_size (self->inbox) == 0)
            return NULL; // the actor has something to look at
    }
}

void
zf_client_set_linger (zf_client_t *self, int ms)
{
    self->linger = ms > 0 ? ms : 0;
}

int
zf_client_linger_left (zf_client_t *self)
{
    if (!self->pending_since)
        return -1;
    int64_t left = self->pending_since + self->linger - zclock_mono ();
    return left > 0 ? (int) left : 0;
}

int
zf_client_set_figures (zf_client_t *self, const void *map, size_t size)
{
    zf_mp_t mp;
    zf_mp_init (&mp, map, size);
    if (size > ZF_FIGURES_MAX || zf_mp_peek (&mp) != ZF_MP_MAP ||
        zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL) || zf_mp_left (&mp))
        return -1;
    memcpy (self->figures, map, size);
    self->figures_size = (uint32_t) size;
    self->figures_new = true;
    return 0;
}

int
zf_client_emit (zf_client_t *self, zf_item_t *item, const char *queue, const void *body,
                size_t size)
{
    return zf_client_emit_with (self, item, queue, body, size, NULL);
}

int
zf_client_emit_with (zf_client_t *self, zf_item_t *item, const char *queue, const void *body,
                     size_t size, const zf_put_opts_t *opts)
{
    if (!queue || strlen (queue) > ZF_NAME_MAX)
        return -1;
    if (self->max_frame && size > self->max_frame) {
        snprintf (self->last_error, sizeof self->last_error,
                  "an output of %zu bytes is over the broker's max-frame (%u bytes): not put", size,
                  self->max_frame);
        return -1;
    }
    zf_env_t env = { .ts = zclock_time (), .parent = item->env.id };
    if (opts && opts->id)
        env.id = *opts->id;
    else if (item->emitted == ZF_GROUP_RESULT)
        return -1; // the last index names a gather's result
    else
        env.id = zf_id_output (&item->env.id, self->name, item->emitted++);
    env.root = *zf_env_root (&item->env);
    env.group = opts && opts->group ? *opts->group : item->env.group;
    env.headers = item->env.headers; // what the put said travels with its lineage
    env.headers_size = item->env.headers_size;
    snprintf (env.queue, sizeof env.queue, "%s", queue);
    zframe_t *frame = zframe_new (body, size);
    // An output waits for room whatever comes: its input is acked after it.
    return zf_client_enqueue (self, &env, &frame, false, 0);
}

int
zf_client_ack (zf_client_t *self, zf_item_t **item_p)
{
    zf_item_t *item = *item_p;
    if (!item)
        return -1;
    if (self->nacks == ZF_IDS_MAX)
        zf_client_send_acks (self);
    self->acks[self->nacks++] = item->env.id;
    if (!self->pending_since)
        self->pending_since = zclock_mono ();
    zlistx_delete (self->held, item->handle);
    *item_p = NULL;
    return 0;
}

int
zf_client_progress (zf_client_t *self, zf_item_t *item, uint32_t progress, const char *note)
{
    if (!item || progress > ZF_PROGRESS_MAX)
        return -1;
    zf_proto_reset (self->out, ZF_PROGRESS);
    self->out->id = item->env.id;
    self->out->progress = progress;
    snprintf (self->out->note, sizeof self->out->note, "%s", note ? note : "");
    zf_client_send (self);
    return 0;
}

int
zf_client_nack (zf_client_t *self, zf_item_t **item_p, const char *reason, bool final, int delay_ms)
{
    return zf_client_nack_detail (self, item_p, reason, NULL, final, delay_ms);
}

int
zf_client_nack_detail (zf_client_t *self, zf_item_t **item_p, const char *reason,
                       const char *detail, bool final, int delay_ms)
{
    zf_item_t *item = *item_p;
    if (!item)
        return -1;
    zf_client_send_acks (self);
    zf_proto_reset (self->out, ZF_NACK);
    self->out->id = item->env.id;
    snprintf (self->out->reason, sizeof self->out->reason, "%s", reason ? reason : "");
    snprintf (self->out->detail, sizeof self->out->detail, "%s", detail ? detail : "");
    self->out->final = final;
    self->out->delay = delay_ms > 0 ? (uint32_t) delay_ms : 0;
    zf_client_send (self);
    self->failed++;
    zlistx_delete (self->held, item->handle);
    *item_p = NULL;
    return 0;
}

const zf_id_t *
zf_item_id (zf_item_t *item)
{
    return &item->env.id;
}

const char *
zf_item_queue (zf_item_t *item)
{
    return item->env.queue;
}

uint32_t
zf_item_attempt (zf_item_t *item)
{
    return item->env.attempt;
}

const void *
zf_item_body (zf_item_t *item, size_t *size)
{
    if (size)
        *size = zframe_size (item->body);
    return zframe_data (item->body);
}

const zf_id_t *
zf_item_root (zf_item_t *item)
{
    return zf_env_root (&item->env);
}

const zf_group_t *
zf_item_group (zf_item_t *item)
{
    return item->env.group.size ? &item->env.group : NULL;
}

const void *
zf_item_headers (zf_item_t *item, size_t *size)
{
    *size = item->env.headers_size;
    return item->env.headers_size ? item->env.headers : NULL;
}

bool
zf_item_cancelled (zf_item_t *item)
{
    return item->cancelled;
}
