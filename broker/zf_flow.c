/*  zf_flow: flow control of a consumer group, the store's part that keeps
    to its queue's rate, per-key limits and fair turns. See zf_store_impl.h.

    Rates are kept as GCRA, the virtual scheduling form of a token bucket
    (ATM's, and redis-cell's): one time per bucket, the "theoretical
    arrival time" tat, when the bucket would be empty. A delivery may go at
    now when tat - tolerance <= now, the tolerance being burst - 1
    intervals; it moves tat on by an interval. From max (tat, now) in
    GCRA; here from tat too when now is late by a little (the broker was
    busy: at most an interval, and 10 ms), so that the time lost is
    made up by the next delivery rather than lost for good, and the rate
    holds over time. Times are in nanoseconds on the monotonic clock, so
    that 3,000/s is 333,334 ns, neither 0 ms nor 333 us (3,003/s); the
    interval is rounded up, so the rate is never exceeded.

    The buckets' state is not journaled. A broker that resumes (it
    restored records: a recovery, a new leader) takes every bucket as
    emptied when it began, so no restart or failover hands out a burst the
    limit had not allowed; a new broker starts them full.

    A group with a key keeps each key's ready deliveries on a list of its
    own (the delivery's held link, which only an item in flight uses), as
    well as on the group's ready list (which walks, counts and steering
    read as before). A key is in one place at a time:

        runnable   on the group's heap of keys that may go, best first:
                   by priority, then by the oldest item (or, fair, by the
                   turns it had: start-time fair queueing's virtual time)
        waiting    on the store's timer heap, until its rate allows one
                   more (or, with nothing left, until its bucket is full:
                   then it is forgotten, so a key that comes back at once
                   is not given a new burst)
        full       as many in flight as max-in-flight-per-key: it waits
                   for one of them to end
        idle       nothing ready, items in flight

    Its ready items in waiting or full are the group's `throttled`.
*/
#include "zf_alloc.h"
#include "zf_json.h"
#include "zf_keys.h"
#include "zf_store.h"
#include "zf_store_impl.h"

#include <math.h>

#define S_TURN    (1u << 20)      // the virtual time of a turn of a key of weight 1
#define S_MS      1000000         // ns in a ms: the broker's clock ticks
#define S_FOREVER (INT64_MAX / 4) // ns no bucket waits past (some 73 years): sums stay in range
//  Keys of a group past which one with nothing left is forgotten at once,
//  rather than kept until its bucket is full: what many keys may cost.
#define S_KEYS_MAX 100000

typedef enum { S_NEW, S_RUNNABLE, S_WAITING, S_FULL, S_IDLE } s_where_t;

struct _zf_flowkey_t {
    char *name;          // the key; "" for items without one
    zf_flow_t *flow;     // the group's it is a key of
    zf_ready_t ready;    // its ready deliveries (by their held link)
    uint64_t inflight;   // its deliveries in flight
    int64_t tat;         // rate-per-key: when its bucket is empty (ns); 0: not set yet
    bool held;           // its bucket held an item back since its last delivery
    uint64_t vtime;      // fair: its virtual time
    uint32_t weight;     // fair: its share of the turns (1 to 1000)
    uint8_t where;       // s_where_t
    zf_heap_node_t node; // runnable: on the flow's heap; waiting: on the store's key timers
};

struct _zf_flow_t {
    zf_cgroup_t *group;            // whose flow it is
    int64_t interval;              // rate: ns between deliveries; 0: no rate
    int64_t tolerance;             // rate: burst - 1 intervals
    int64_t slack;                 // rate: how late a delivery may be and keep to the schedule
    int64_t burst;                 // rate: deliveries at once after a quiet spell
    int64_t key_interval;          // rate-per-key, as interval
    int64_t key_tolerance;         // and its tolerance
    int64_t key_slack;             // and its slack
    int64_t key_burst;             // and its burst
    uint64_t max_inflight;         // items of a key in flight at most; 0: no limit
    bool fair;                     // keys take turns
    const char *header;            // the header naming an item's key, or NULL: no keys
    const char *weight;            // fair: the header of a key's weight, or NULL
    int64_t epoch;                 // ns when it first dispatched, 0 before
    bool resumed;                  // its buckets start emptied at the epoch (else full)
    int64_t tat;                   // rate: when its bucket is empty (ns)
    bool held;                     // its bucket held an item back since its last delivery
    bool armed;                    // on the store's flow timers, waiting for its bucket
    zf_heap_node_t timer;          // its place there
    zhashx_t *keys;                // key name -> zf_flowkey_t, or NULL without a header
    zf_heap_t runnable;            // keys that may go (by node)
    uint64_t vclock;               // fair: the virtual time of the latest turn
    uint64_t throttled;            // ready deliveries of keys waiting or full
    uint64_t full;                 // of them, those of keys full (max-in-flight-per-key)
    char scratch[ZF_NAME_MAX + 1]; // a key's name, NUL-ended, while it is looked up
};

#define S_KEY(node) ZF_CONTAINER (node, zf_flowkey_t, node)

//  --------------------------------------------------------------------------
//  A key's ready list: as the group's (zf_ready_t), by the held link

static zf_delivery_t *
s_key_first (zf_flowkey_t *key)
{
    if (!key->ready.mask)
        return NULL;
    int level = 31 - __builtin_clz (key->ready.mask);
    return S_HELD (key->ready.levels[level].head);
}

static void
s_key_push (zf_flowkey_t *key, zf_delivery_t *d, bool front)
{
    zf_list_t *level = &key->ready.levels[d->msg->priority];
    if (front)
        zf_list_push_front (level, &d->held);
    else
        zf_list_push (level, &d->held);
    key->ready.mask |= 1u << d->msg->priority;
    key->ready.size++;
}

static void
s_key_remove (zf_flowkey_t *key, zf_delivery_t *d)
{
    zf_list_t *level = &key->ready.levels[d->msg->priority];
    zf_list_remove (level, &d->held);
    if (!level->size)
        key->ready.mask &= ~(1u << d->msg->priority);
    key->ready.size--;
}

//  --------------------------------------------------------------------------
//  Rates

//  a * b, or S_FOREVER when that is more (a slow rate's long burst).
static int64_t
s_times (int64_t a, int64_t b)
{
    int64_t product;
    return __builtin_mul_overflow (a, b, &product) || product > S_FOREVER ? S_FOREVER : product;
}

//  The interval of rate (a second's), in ns, rounded up; 0 for none.
static int64_t
s_interval (double rate)
{
    if (rate <= 0)
        return 0;
    double ns = ceil (1e9 / rate);
    return ns < 1 ? 1 : ns > (double) S_FOREVER ? S_FOREVER : (int64_t) ns;
}

//  The tolerance of a bucket of interval and burst: burst - 1 intervals;
//  and a rate faster than the broker's clock (1 ms) has the ms's worth at
//  each tick, or it would give one a ms whatever it says.
static int64_t
s_tolerance (int64_t interval, int64_t burst)
{
    int64_t tolerance = s_times (burst - 1, interval);
    return tolerance < S_MS - interval ? S_MS - interval : tolerance;
}

//  How late a delivery of a bucket of interval may be and keep to its
//  schedule: an interval, at most 10 ms.
static int64_t
s_slack (int64_t interval)
{
    return interval < 10 * S_MS ? interval : 10 * S_MS;
}

//  A delivery went at now: the bucket at *tat moves on by an interval:
//  from its schedule (tat) when it held this item back (*held) and the
//  broker looked a little late, else from now at the earliest (an item
//  that came after a quiet spell makes up no time).
static void
s_charge (int64_t *tat, bool *held, int64_t interval, int64_t slack, int64_t now)
{
    int64_t from = *tat > now ? *tat : now;
    if (*held && *tat >= now - slack)
        from = *tat;
    *tat = from + interval;
    *held = false;
}

//  The bucket at *tat (0: a new one: full, or on a broker that resumed,
//  taken as emptied at the epoch) lets one more go at now (ns); else sets
//  *until to when it does, and *held.
static bool
s_allows (zf_flow_t *flow, int64_t *tat, bool *held, int64_t interval, int64_t tolerance,
          int64_t burst, int64_t now, int64_t *until)
{
    if (!*tat)
        *tat = flow->resumed ? flow->epoch + s_times (burst, interval) : now;
    if (*tat - tolerance <= now)
        return true;
    *until = *tat - tolerance;
    *held = true;
    return false;
}

//  ms on the monotonic clock at or after ns.
static int64_t
s_ms_after (int64_t ns)
{
    return (ns + S_MS - 1) / S_MS;
}

//  --------------------------------------------------------------------------
//  Keys

static void
s_key_destroy (zf_flowkey_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->name);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Where a key of flow ranks among those that may go: by priority, then
//  by its oldest item's order (fair: by its virtual time).
static int64_t
s_rank (zf_flow_t *flow, zf_flowkey_t *key)
{
    zf_delivery_t *head = s_key_first (key);
    uint64_t turn = flow->fair ? key->vtime : head->msg->order;
    return ((int64_t) (ZF_PRIORITY_MAX - head->msg->priority) << 56) |
           (int64_t) (turn & ((1ull << 56) - 1));
}

//  Moves key to where (at due, ms, when waiting), keeping the group's
//  throttled count; a key that may go again marks its group dirty.
static void
s_key_move (zf_store_t *self, zf_flow_t *flow, zf_flowkey_t *key, s_where_t where, int64_t due)
{
    s_where_t was = (s_where_t) key->where;
    if (was == S_RUNNABLE && where == S_RUNNABLE) {
        zf_heap_move (&flow->runnable, &key->node, s_rank (flow, key)); // its rank changed
        return;
    }
    if (was == S_RUNNABLE)
        zf_heap_remove (&flow->runnable, &key->node);
    else if (was == S_WAITING)
        zf_heap_remove (&self->key_timers, &key->node);
    if (was == S_WAITING || was == S_FULL)
        flow->throttled -= key->ready.size;
    if (where == S_WAITING || where == S_FULL)
        flow->throttled += key->ready.size;
    if (was == S_FULL)
        flow->full -= key->ready.size;
    if (where == S_FULL)
        flow->full += key->ready.size;
    key->where = (uint8_t) where;
    if (where == S_RUNNABLE) {
        if (key->vtime < flow->vclock)
            key->vtime = flow->vclock; // back in the turns: no credit for its absence
        zf_heap_push (&flow->runnable, &key->node, s_rank (flow, key));
        zf_store_mark_dirty (self, flow->group);
    }
    else if (where == S_WAITING)
        zf_heap_push (&self->key_timers, &key->node, due);
}

//  Puts key where its ready items, those in flight and its limit say. A
//  key waiting for its rate stays there until its timer; one with nothing
//  left is forgotten (once its bucket is full, with a rate).
static void
s_key_settle (zf_store_t *self, zf_flow_t *flow, zf_flowkey_t *key)
{
    if (key->where == S_WAITING)
        return;
    if (key->ready.size) {
        bool full = flow->max_inflight && key->inflight >= flow->max_inflight;
        s_key_move (self, flow, key, full ? S_FULL : S_RUNNABLE, 0);
    }
    else if (key->inflight)
        s_key_move (self, flow, key, S_IDLE, 0);
    else if (flow->key_interval && key->tat && zhashx_size (flow->keys) <= S_KEYS_MAX)
        s_key_move (self, flow, key, S_WAITING, s_ms_after (key->tat));
    else {
        s_key_move (self, flow, key, S_IDLE, 0);
        zhashx_delete (flow->keys, key->name);
    }
}

//  The key value (len bytes) names, as it is shown and sent (ZFP's text
//  is UTF-8), into out (size bytes, its NUL included): the characters of
//  value that fit whole, a byte that is not UTF-8 as '?'.
static void
s_key_text (const char *value, size_t len, char *out, size_t size)
{
    const unsigned char *s = (const unsigned char *) value;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = zf_utf8_len (s + i, len - i);
        if (o + (n ? n : 1) >= size)
            break; // keys are told apart by their first characters
        if (n)
            memcpy (out + o, s + i, n);
        else
            out[o] = '?';
        o += n ? n : 1;
        i += n ? n : 1;
    }
    out[o] = 0;
}

//  A new key of flow named name.
static zf_flowkey_t *
s_key_new (zf_flow_t *flow, const char *name)
{
    zf_flowkey_t *key = (zf_flowkey_t *) zf_alloc (sizeof (zf_flowkey_t));
    key->name = zf_strdup (name);
    key->flow = flow;
    key->weight = 1;
    key->vtime = flow->vclock;
    zhashx_insert (flow->keys, key->name, key);
    return key;
}

//  The key of d's message in flow, made if new.
static zf_flowkey_t *
s_key_of (zf_flow_t *flow, const zf_message_t *msg)
{
    uint32_t len = 0;
    const char *value = zf_store_header (msg, flow->header, &len);
    s_key_text (value ? value : "", value ? len : 0, flow->scratch, sizeof flow->scratch);
    zf_flowkey_t *key = (zf_flowkey_t *) zhashx_lookup (flow->keys, flow->scratch);
    return key ? key : s_key_new (flow, flow->scratch);
}

//  A key's weight, from the weight header of its latest item.
static void
s_key_weigh (zf_flow_t *flow, zf_flowkey_t *key, const zf_message_t *msg)
{
    uint32_t len = 0;
    const char *value = zf_store_header (msg, flow->weight, &len);
    uint32_t weight = 0;
    for (uint32_t i = 0; value && i < len && i < 5 && value[i] >= '0' && value[i] <= '9'; i++)
        weight = weight * 10 + (uint32_t) (value[i] - '0');
    key->weight = weight < 1 ? 1 : weight > 1000 ? 1000 : weight;
}

//  --------------------------------------------------------------------------
//  The flow of a group

zf_flow_t *
zf_flow_new (zf_cgroup_t *group)
{
    const zf_limits_t *limits = &group->limits;
    if (!zf_limits_on (limits))
        return NULL;
    zf_flow_t *self = (zf_flow_t *) zf_alloc (sizeof (zf_flow_t));
    self->group = group;
    self->interval = s_interval (limits->rate);
    self->burst = limits->burst > 0 ? limits->burst : 1;
    self->tolerance = s_tolerance (self->interval, self->burst);
    self->slack = s_slack (self->interval);
    self->key_interval = s_interval (limits->rate_per_key);
    self->key_burst = self->burst;
    self->key_tolerance = s_tolerance (self->key_interval, self->key_burst);
    self->key_slack = s_slack (self->key_interval);
    self->max_inflight = limits->max_inflight_per_key;
    self->fair = limits->fair;
    self->header = limits->header;
    self->weight = limits->weight_header;
    if (self->header) {
        self->keys = zhashx_new ();
        zhashx_set_destructor (self->keys, (zhashx_destructor_fn *) s_key_destroy);
    }
    return self;
}

void
zf_flow_destroy (zf_flow_t **self_p)
{
    if (!*self_p)
        return;
    zf_flow_t *self = *self_p;
    zhashx_destroy (&self->keys);
    zf_heap_destroy (&self->runnable);
    free (self);
    *self_p = NULL;
}

void
zf_flow_detach (zf_store_t *self, zf_flow_t *flow)
{
    if (!flow)
        return;
    if (flow->armed)
        zf_heap_remove (&self->flow_timers, &flow->timer);
    flow->armed = false;
    for (zf_flowkey_t *key = flow->keys ? (zf_flowkey_t *) zhashx_first (flow->keys) : NULL; key;
         key = (zf_flowkey_t *) zhashx_next (flow->keys))
        if (key->where == S_WAITING)
            zf_heap_remove (&self->key_timers, &key->node);
}

void
zf_flow_ready (zf_store_t *self, zf_delivery_t *d, bool front)
{
    zf_flow_t *flow = d->group->flow;
    if (!flow->keys)
        return;
    zf_flowkey_t *key = s_key_of (flow, d->msg);
    if (flow->weight)
        s_key_weigh (flow, key, d->msg);
    d->key = key;
    s_key_push (key, d, front);
    if (key->where == S_WAITING || key->where == S_FULL)
        flow->throttled++;
    if (key->where == S_FULL)
        flow->full++;
    if (key->where == S_WAITING && key->ready.size == 1 && !key->inflight)
        // It was kept only to remember its bucket (its timer forgets it):
        // whether its bucket lets this item go is zf_flow_first's to say.
        s_key_move (self, flow, key, S_IDLE, 0);
    else if (key->where == S_RUNNABLE && s_key_first (key) != d)
        return; // its rank is its first item's: unchanged
    s_key_settle (self, flow, key);
}

void
zf_flow_unready (zf_store_t *self, zf_delivery_t *d)
{
    zf_flowkey_t *key = d->key;
    zf_flow_t *flow = key->flow;
    s_key_remove (key, d);
    d->key = NULL;
    if (key->where == S_WAITING || key->where == S_FULL)
        flow->throttled--;
    if (key->where == S_FULL)
        flow->full--;
    s_key_settle (self, flow, key);
}

zf_delivery_t *
zf_flow_first (zf_store_t *self, zf_cgroup_t *group, int64_t now_ms)
{
    zf_flow_t *flow = group->flow;
    if (!group->ready.size)
        return NULL; // nothing held back
    int64_t now = now_ms * S_MS, until;
    if (!flow->epoch) {
        flow->epoch = now;
        flow->resumed = self->resumed;
    }
    if (flow->interval && !s_allows (flow, &flow->tat, &flow->held, flow->interval, flow->tolerance,
                                     flow->burst, now, &until)) {
        if (!flow->armed) {
            zf_heap_push (&self->flow_timers, &flow->timer, s_ms_after (until));
            flow->armed = true;
        }
        return NULL;
    }
    if (!flow->keys)
        return zf_ready_first (&group->ready);
    zf_heap_node_t *node;
    while ((node = zf_heap_first (&flow->runnable))) {
        zf_flowkey_t *key = S_KEY (node);
        if (flow->key_interval && !s_allows (flow, &key->tat, &key->held, flow->key_interval,
                                             flow->key_tolerance, flow->key_burst, now, &until)) {
            s_key_move (self, flow, key, S_WAITING, s_ms_after (until));
            continue;
        }
        return s_key_first (key);
    }
    return NULL;
}

void
zf_flow_taken (zf_store_t *self, zf_delivery_t *d, int64_t now_ms)
{
    zf_flow_t *flow = d->group->flow;
    int64_t now = now_ms * S_MS;
    if (flow->interval)
        s_charge (&flow->tat, &flow->held, flow->interval, flow->slack, now);
    zf_flowkey_t *key = d->key;
    if (!key)
        return;
    s_key_remove (key, d);
    key->inflight++;
    if (flow->key_interval)
        s_charge (&key->tat, &key->held, flow->key_interval, flow->key_slack, now);
    if (flow->fair) {
        flow->vclock = key->vtime;
        key->vtime += S_TURN / key->weight;
    }
    s_key_settle (self, flow, key); // its rank moved on, or it waits
}

void
zf_flow_returned (zf_store_t *self, zf_delivery_t *d)
{
    zf_flowkey_t *key = d->key;
    d->key = NULL;
    key->inflight--;
    s_key_settle (self, key->flow, key);
}

void
zf_flow_wake (zf_store_t *self, int64_t now_ms)
{
    zf_heap_node_t *node;
    while ((node = zf_heap_first (&self->flow_timers)) && node->due <= now_ms) {
        zf_heap_remove (&self->flow_timers, node);
        zf_flow_t *flow = ZF_CONTAINER (node, zf_flow_t, timer);
        flow->armed = false;
        zf_store_mark_dirty (self, flow->group);
    }
    while ((node = zf_heap_first (&self->key_timers)) && node->due <= now_ms) {
        zf_flowkey_t *key = S_KEY (node);
        zf_flow_t *flow = key->flow;
        zf_heap_remove (&self->key_timers, node);
        flow->throttled -= key->ready.size;
        key->where = S_NEW;
        if (!key->ready.size && !key->inflight && key->tat > now_ms * S_MS) {
            key->where = S_WAITING; // its bucket fills later than its timer said
            zf_heap_push (&self->key_timers, &key->node, s_ms_after (key->tat));
            continue;
        }
        if (!key->ready.size && !key->inflight)
            key->tat = 0; // full: forgotten, as a key never seen
        s_key_settle (self, flow, key);
    }
}

int64_t
zf_flow_next_due (zf_store_t *self)
{
    zf_heap_node_t *group = zf_heap_first (&self->flow_timers);
    zf_heap_node_t *key = zf_heap_first (&self->key_timers);
    if (!group)
        return key ? key->due : -1;
    return !key || group->due < key->due ? group->due : key->due;
}

bool
zf_flow_throttled (const zf_delivery_t *d)
{
    return d->key && (d->key->where == S_WAITING || d->key->where == S_FULL);
}

uint64_t
zf_flow_throttled_count (const zf_flow_t *flow)
{
    return flow ? flow->throttled : 0;
}

uint64_t
zf_flow_full_count (const zf_flow_t *flow)
{
    return flow ? flow->full : 0;
}

size_t
zf_flow_key_count (const zf_flow_t *flow)
{
    size_t count = 0;
    for (zf_flowkey_t *key = flow && flow->keys ? (zf_flowkey_t *) zhashx_first (flow->keys) : NULL;
         key; key = (zf_flowkey_t *) zhashx_next (flow->keys))
        count += key->ready.size || key->inflight;
    return count;
}

size_t
zf_flow_top_keys (zf_flow_t *flow, zf_key_figures_t *top, size_t max)
{
    size_t count = 0;
    if (!flow || !flow->keys || !max)
        return 0;
    for (zf_flowkey_t *key = (zf_flowkey_t *) zhashx_first (flow->keys); key;
         key = (zf_flowkey_t *) zhashx_next (flow->keys)) {
        uint64_t backlog = key->ready.size;
        if (!backlog && !key->inflight)
            continue;
        // Insertion into the top max, by backlog, then by name (a stable order).
        size_t at = count;
        while (at > 0 && (top[at - 1].ready < backlog || (top[at - 1].ready == backlog &&
                                                          strcmp (top[at - 1].key, key->name) > 0)))
            at--;
        if (at >= max)
            continue;
        size_t moved = (count < max ? count : max - 1) - at;
        memmove (&top[at + 1], &top[at], moved * sizeof *top);
        zf_key_figures_t *row = &top[at];
        memset (row, 0, sizeof *row);
        snprintf (row->queue, sizeof row->queue, "%s", flow->group->queue->name);
        snprintf (row->group, sizeof row->group, "%s", flow->group->name);
        snprintf (row->key, sizeof row->key, "%s", key->name);
        row->ready = backlog;
        row->inflight = key->inflight;
        row->throttled = key->where == S_WAITING || key->where == S_FULL;
        if (count < max)
            count++;
    }
    return count;
}

//  --------------------------------------------------------------------------
//  Settings

bool
zf_limits_on (const zf_limits_t *limits)
{
    return limits->rate > 0 || limits->header;
}

//  True if a and b are the same limits.
static bool
s_limits_eq (const zf_limits_t *a, const zf_limits_t *b)
{
    return a->rate == b->rate && a->burst == b->burst && a->rate_per_key == b->rate_per_key &&
           a->max_inflight_per_key == b->max_inflight_per_key && a->fair == b->fair &&
           !a->header == !b->header && (!a->header || streq (a->header, b->header)) &&
           !a->weight_header == !b->weight_header &&
           (!a->weight_header || streq (a->weight_header, b->weight_header));
}

//  Group's flow made anew under its queue's limits: every delivery ready
//  or in flight is on its key again, in its order.
static void
s_rebuild (zf_store_t *self, zf_cgroup_t *group)
{
    zf_flow_detach (self, group->flow);
    for (zf_delivery_t *d = zf_ready_first (&group->ready); d; d = zf_ready_next (&group->ready, d))
        d->key = NULL;
    for (zf_delivery_t *d = S_DELIVERY (group->queue->inflight.head); d;
         d = S_DELIVERY (d->link.next))
        if (d->group == group)
            d->key = NULL;
    zf_flow_t *old = group->flow;
    group->flow = zf_flow_new (group);
    zf_flow_t *flow = group->flow;
    if (flow && old) {
        // What was spent stays spent: a reload hands out no new burst.
        flow->epoch = old->epoch;
        flow->resumed = old->resumed;
        flow->tat = old->tat;
        flow->vclock = old->vclock;
    }
    if (flow) {
        for (zf_delivery_t *d = zf_ready_first (&group->ready); d;
             d = zf_ready_next (&group->ready, d))
            zf_flow_ready (self, d, false);
        for (zf_delivery_t *d = S_DELIVERY (group->queue->inflight.head); d && flow->keys;
             d = S_DELIVERY (d->link.next))
            if (d->group == group) {
                d->key = s_key_of (flow, d->msg);
                d->key->inflight++;
                s_key_settle (self, flow, d->key);
            }
    }
    // Each key's bucket and turns carry over too; a key with nothing left
    // is kept until its bucket is full, as any other.
    for (zf_flowkey_t *was = flow && flow->keys && old && old->keys
                                 ? (zf_flowkey_t *) zhashx_first (old->keys)
                                 : NULL;
         was; was = (zf_flowkey_t *) zhashx_next (old->keys)) {
        zf_flowkey_t *key = (zf_flowkey_t *) zhashx_lookup (flow->keys, was->name);
        if (!key && (!flow->key_interval || !was->tat))
            continue;
        if (!key) {
            key = s_key_new (flow, was->name);
            key->where = S_WAITING;
            zf_heap_push (&self->key_timers, &key->node, s_ms_after (was->tat));
        }
        key->tat = was->tat;
        key->vtime = was->vtime;
        if (key->where == S_RUNNABLE)
            s_key_move (self, flow, key, S_RUNNABLE, 0); // its rank, by its turns
    }
    zf_flow_destroy (&old);
}

//  The limits settings say, for queue.
static void
s_limits (zf_queue_t *queue, const zf_queue_settings_t *settings, zf_limits_t *limits)
{
    memset (limits, 0, sizeof *limits);
    if (queue->dead_letters)
        return; // letters wait for a reader, unlimited
    limits->rate = settings->rate;
    limits->burst = settings->burst;
    limits->header = zf_queue_key_header (settings);
    limits->rate_per_key = settings->rate_per_key;
    limits->max_inflight_per_key = (uint64_t) settings->max_inflight_per_key;
    limits->fair = settings->fair;
    limits->weight_header = settings->fair ? settings->weight_header : NULL;
}

//  Group's limits: its actor's `flow` section's, when its actor has one,
//  else its queue's (queue_limits).
static void
s_group_limits (zf_store_t *self, zf_cgroup_t *group, const zf_limits_t *queue_limits,
                zf_limits_t *limits)
{
    zf_actor_conf_t *actor =
        group->name[0] ? zf_pipeline_actor (self->pipeline, group->name) : NULL;
    zf_actor_settings_t *set = actor ? (zf_actor_settings_t *) actor->settings : NULL;
    if (!set || !set->flow || !actor->input || !streq (actor->input, group->queue->name)) {
        *limits = *queue_limits;
        return;
    }
    zf_queue_settings_t settings;
    zf_keys_bind (zf_flow_keys, set->flow, &settings);
    s_limits (group->queue, &settings, limits);
}

//  Group's flow made anew if its limits changed.
static void
s_settle_group (zf_store_t *self, zf_cgroup_t *group, const zf_limits_t *queue_limits)
{
    zf_limits_t limits;
    s_group_limits (self, group, queue_limits, &limits);
    if (s_limits_eq (&group->limits, &limits))
        return;
    group->limits = limits;
    s_rebuild (self, group);
}

void
zf_flow_configure (zf_store_t *self, zf_queue_t *queue, const zf_queue_settings_t *settings)
{
    zf_limits_t limits;
    s_limits (queue, settings, &limits);
    for (size_t g = 0; g < queue->ngroups; g++)
        s_settle_group (self, queue->groups[g], &limits);
}

void
zf_flow_group (zf_store_t *self, zf_cgroup_t *group)
{
    zf_limits_t limits;
    s_limits (group->queue, zf_pipeline_queue_settings (self->pipeline, group->queue->name),
              &limits);
    s_settle_group (self, group, &limits);
}
