/*  zf_gather: fan-in. Collects the members of a group and emits them as one
    list in index order (asyncio.gather), or fails the group at the first
    error and cancels the rest (TaskGroup).

    Items carry their group in the envelope (id, size, index): a producer
    with `group-size` makes groups of consecutive items, a processor with
    `group = true` makes one of each item's outputs, and stages in between
    pass the membership on. The gather holds the members unacked until
    their group is closed, so a gather that dies loses nothing: the broker
    delivers them again to the next one. Its result's id is derived from
    the group's id, so a group closed twice is put once.

    A member is an error when its body is a map with an "error" key (what a
    processor with on-error = emit, or a failed fetch, produces). A member
    dead-lettered on its way (out of attempts upstream) comes as one too:
    the broker puts {"error": its last reason, "dead": QUEUE.dead, "id"} in
    its place, in the gather's input, so no group waits for it for ever.

    - mode = collect: a complete group is emitted as the list of its
      members' bodies in index order, errors in their places.
    - mode = all: the first error fails the group: the rest of its lineage
      is cancelled (queued members are dropped, workers drop the ones they
      hold) as failed, so that its root ends dead with that error, and the
      failure is emitted as {"error", "group", "item"} or, with on-failure
      = dead, every member held goes to INPUT.dead.
    - timeout: a group still incomplete that long after its first member
      came is emitted with {"error": "missing", "index": I} in the gaps
      (on-timeout = emit), or failed as above (on-timeout = fail).

    Members that come after their group was closed are acked and dropped.
    Items with no group, a second member at the same index, or a group too
    large to ever fit within `concurrency` are dead-lettered with the reason.
    A gather has one worker: the members of a group must meet in one place.
*/
#include "zf_actor.h"
#include "zf_idmap.h"
#include "zf_window.h"
#include "zf_kinds.h"
#include "zf_mp.h"
#include "zf_proto.h"
#include "zflow.h"

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_CURVE,
    ZF_KEY_INPUT,
    ZF_KEY_FLOW,
    ZF_KEY_OUTPUT,
    { .name = "concurrency",
      ZF_FIELD (ZF_KEY_INT, zf_gather_settings_t, concurrency),
      .fallback = "10000",
      .help = "members held unacked while their groups fill (at most its input's max-depth)",
      .min = 1,
      .max = 10000000 },
    { .name = "mode",
      ZF_FIELD (ZF_KEY_ENUM, zf_gather_settings_t, mode),
      .fallback = "collect",
      .help = "collect keeps errors in place; all fails at the first",
      .choices = "collect|all" },
    { .name = "timeout",
      ZF_FIELD (ZF_KEY_DURATION, zf_gather_settings_t, timeout),
      .fallback = "0",
      .help = "an incomplete group is closed after this; 0 waits for ever" },
    { .name = "on-timeout",
      ZF_FIELD (ZF_KEY_ENUM, zf_gather_settings_t, on_timeout),
      .fallback = "emit",
      .help = "an incomplete group is emitted with gaps, or failed",
      .choices = "emit|fail" },
    { .name = "on-failure",
      ZF_FIELD (ZF_KEY_ENUM, zf_gather_settings_t, on_failure),
      .fallback = "emit",
      .help = "a failed group is passed on as an error item, or its members dead-lettered",
      .choices = "emit|dead" },
    { NULL },
};

#define CLOSED_MAX 65536 // closed groups remembered, to drop late members

//  A group being collected.
typedef struct {
    zf_id_t id;          // the group's id
    uint32_t size;       // members in all
    uint32_t have;       // members come so far
    zf_item_t **members; // by index, NULL where not come yet
    zlistx_t *copies;    // zf_item_t: deliveries again of members held, or NULL
    int64_t deadline;    // when it times out (ms, monotonic), INT64_MAX for never
    void *handle;        // in self->open
} s_group_t;

typedef struct {
    zf_actor_args_t *args; // pipeline, actor, broker
    zf_client_t *client;   // session with the broker
    const char *name;      // the actor's name, for messages
    const char *output;    // the queue written
    int64_t concurrency;   // members held at most
    bool fail_fast;        // mode = all
    int64_t timeout;       // ms, 0 for none
    bool fail_on_timeout;  // on-timeout = fail
    bool dead_on_failure;  // on-failure = dead
    zf_idmap_t *groups;    // group id -> s_group_t
    zlistx_t *open;        // s_group_t, oldest first (timeouts come in this order)
    zf_window_t *closed;   // ids of the groups closed last
    uint64_t late;         // members dropped because their group was closed
} self_t;

//  True if the body is a map with an "error" key; *reason then points at
//  its value when that is a string.
static bool
s_is_error (const void *body, size_t size, const char **reason, uint32_t *len)
{
    zf_mp_t mp;
    zf_mp_init (&mp, body, size);
    uint32_t count;
    if (zf_mp_map (&mp, &count, NULL))
        return false;
    for (uint32_t i = 0; i < count; i++) {
        if (zf_mp_key_is (&mp, "error")) {
            if (zf_mp_str (&mp, reason, len, NULL)) {
                *reason = "error";
                *len = 5;
            }
            return true;
        }
        if (zf_mp_skip_pair (&mp))
            return false;
    }
    return false;
}

//  The group's members as one msgpack list, with gaps marked.
static void
s_pack_list (s_group_t *group, msgpack_sbuffer *buffer)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, group->size);
    for (uint32_t i = 0; i < group->size; i++) {
        if (group->members[i]) {
            size_t size;
            const void *body = zf_item_body (group->members[i], &size);
            msgpack_sbuffer_write (buffer, (const char *) body, size);
        }
        else {
            msgpack_pack_map (&pk, 2);
            zf_mp_pack_cstr (&pk, "error");
            zf_mp_pack_cstr (&pk, "missing");
            zf_mp_pack_cstr (&pk, "index");
            msgpack_pack_uint32 (&pk, i);
        }
    }
}

//  Emits body as the group's one result.
static void
s_emit (self_t *self, s_group_t *group, const void *body, size_t size)
{
    zf_item_t *parent = NULL;
    for (uint32_t i = 0; !parent && i < group->size; i++)
        parent = group->members[i];
    zf_id_t id = zf_id_output (&group->id, self->name, ZF_GROUP_RESULT);
    zf_group_t none = { .size = 0 };
    zf_put_opts_t opts = { .id = &id, .group = &none };
    zf_client_emit_with (self->client, parent, self->output, body, size, &opts);
}

//  Closes the group: acks its members (or dead-letters them with reason),
//  forgets it, and remembers it was closed.
static void
s_close (self_t *self, s_group_t *group, const char *dead_reason)
{
    for (uint32_t i = 0; i < group->size; i++)
        if (group->members[i]) {
            if (dead_reason)
                zf_client_nack (self->client, &group->members[i], dead_reason, true, 0);
            else
                zf_client_ack (self->client, &group->members[i]);
        }
    if (group->copies) {
        zf_item_t *copy;
        while ((copy = (zf_item_t *) zlistx_detach (group->copies, NULL)))
            zf_client_ack (self->client, &copy);
        zlistx_destroy (&group->copies);
    }
    zf_idmap_remove (self->groups, &group->id);
    zlistx_delete (self->open, group->handle);
    zf_window_set (self->closed, &group->id, 1, NULL);
    free (group->members);
    free (group);
}

//  The group failed (why): the rest of its lineage is cancelled, its root
//  to end dead with why (not cancelled: nobody changed their mind), and
//  the failure passed on or its members dead-lettered. item is the body
//  reported with the failure (the failing member, or the partial list).
static void
s_fail (self_t *self, s_group_t *group, const char *why, const void *item, size_t size)
{
    zf_item_t *member = NULL;
    for (uint32_t i = 0; !member && i < group->size; i++)
        member = group->members[i];
    zf_client_cancel_dead (self->client, zf_item_root (member), why);
    if (self->dead_on_failure) {
        s_close (self, group, why);
        return;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    zf_mp_pack_cstr (&pk, "error");
    zf_mp_pack_cstr (&pk, why);
    zf_mp_pack_cstr (&pk, "group");
    char hex[ZF_ID_HEX];
    zf_id_format (&group->id, hex);
    zf_mp_pack_cstr (&pk, hex);
    zf_mp_pack_cstr (&pk, "item");
    msgpack_sbuffer_write (&buffer, (const char *) item, size);
    s_emit (self, group, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    s_close (self, group, NULL);
}

//  The group has all its members: its list goes on.
static void
s_complete (self_t *self, s_group_t *group)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    s_pack_list (group, &buffer);
    s_emit (self, group, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    s_close (self, group, NULL);
}

//  The group's time is up.
static void
s_expire (self_t *self, s_group_t *group)
{
    char why[128];
    snprintf (why, sizeof why, "group timed out with %u of %u members", group->have, group->size);
    zsys_warning ("%s: %s", self->name, why);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    s_pack_list (group, &buffer);
    if (self->fail_on_timeout)
        s_fail (self, group, why, buffer.data, buffer.size);
    else {
        s_emit (self, group, buffer.data, buffer.size);
        s_close (self, group, NULL);
    }
    msgpack_sbuffer_destroy (&buffer);
}

//  Dead-letters an item that cannot join a group, saying why.
static void
s_refuse (self_t *self, zf_item_t *item, const char *why)
{
    char hex[ZF_ID_HEX];
    zf_id_format (zf_item_id (item), hex);
    zsys_warning ("%s: item %s: %s", self->name, hex, why);
    zf_client_nack (self->client, &item, why, true, 0);
}

//  Takes one delivered item.
static void
s_take (self_t *self, zf_item_t *item)
{
    const zf_group_t *member = zf_item_group (item);
    if (!member) {
        s_refuse (self, item,
                  "has no group (items come in groups from a producer with group-size or a "
                  "processor with group = true)");
        return;
    }
    if (zf_item_cancelled (item) || zf_window_get (self->closed, &member->id)) {
        self->late++;
        zf_client_ack (self->client, &item);
        return;
    }
    s_group_t *group = (s_group_t *) zf_idmap_get (self->groups, &member->id);
    if (!group) {
        if (member->size > self->concurrency) {
            char why[160];
            snprintf (why, sizeof why,
                      "its group has %u members, more than the gather can hold (%lld: its "
                      "concurrency, and its input's max-depth)",
                      member->size, (long long) self->concurrency);
            s_refuse (self, item, why);
            return;
        }
        group = (s_group_t *) zmalloc (sizeof (s_group_t));
        group->id = member->id;
        group->size = member->size;
        group->members = (zf_item_t **) zmalloc (member->size * sizeof (zf_item_t *));
        group->deadline = self->timeout ? zclock_mono () + self->timeout : INT64_MAX;
        group->handle = zlistx_add_end (self->open, group);
        zf_idmap_put (self->groups, &group->id, group);
    }
    if (member->size != group->size) {
        char why[128];
        snprintf (why, sizeof why, "says its group has %u members where others say %u",
                  member->size, group->size);
        s_refuse (self, item, why);
        return;
    }
    zf_item_t *held = group->members[member->index];
    if (held) {
        if (!zf_id_eq (zf_item_id (held), zf_item_id (item))) {
            char why[96];
            snprintf (why, sizeof why, "a second item at index %u of its group", member->index);
            s_refuse (self, item, why);
            return;
        }
        // The same member again (its delivery timed out): ack it with the group.
        if (!group->copies)
            group->copies = zlistx_new ();
        zlistx_add_end (group->copies, item);
        return;
    }
    group->members[member->index] = item;
    group->have++;
    size_t size;
    const void *body = zf_item_body (item, &size);
    const char *reason;
    uint32_t len;
    if (self->fail_fast && s_is_error (body, size, &reason, &len)) {
        char why[ZF_TEXT_MAX];
        snprintf (why, sizeof why, "member %u of %u failed: %.*s", member->index, member->size,
                  (int) (len > 200 ? 200 : len), reason);
        s_fail (self, group, why, body, size);
    }
    else if (group->have == group->size)
        s_complete (self, group);
}

void
zf_gather_actor (zsock_t *pipe, void *args)
{
    self_t self = { .args = (zf_actor_args_t *) args };
    zf_actor_conf_t *conf = self.args->conf;
    const zf_gather_settings_t *set = (const zf_gather_settings_t *) conf->settings;
    self.name = conf->name;
    self.output = conf->output;
    self.concurrency = set->concurrency;
    // Members held fill the input queue: a group larger than it never completes.
    int64_t limit = zf_actor_hold_limit (self.args);
    if (self.concurrency > limit)
        self.concurrency = limit;
    self.fail_fast = set->mode == ZF_GATHER_ALL;
    self.timeout = set->timeout;
    self.fail_on_timeout = set->on_timeout == ZF_ON_TIMEOUT_FAIL;
    self.dead_on_failure = set->on_failure == ZF_ON_FAILURE_DEAD;
    self.groups = zf_idmap_new (1024);
    self.closed = zf_window_new (CLOSED_MAX);
    self.open = zlistx_new ();
    zsock_signal (pipe, 0);
    self.client = zf_actor_client (self.args, conf->input, (int) self.concurrency, pipe);
    uint64_t taken = 0;
    while (self.client && ((taken & 255) != 0 || !zf_actor_stopping (pipe))) {
        int64_t wait = 100;
        s_group_t *oldest = (s_group_t *) zlistx_first (self.open);
        if (oldest) {
            int64_t left = oldest->deadline - zclock_mono ();
            wait = left < 0 ? 0 : left < wait ? left : wait;
        }
        zf_item_t *item = zf_client_next (self.client, (int) wait);
        if (item) {
            taken++;
            s_take (&self, item);
        }
        else if (zsys_interrupted || zf_client_refused (self.client))
            break;
        else
            taken = 0;
        int64_t now = zclock_mono ();
        while ((oldest = (s_group_t *) zlistx_first (self.open)) && oldest->deadline <= now)
            s_expire (&self, oldest);
    }
    // Stopping: the groups still open go back to the broker with the session.
    if (self.late)
        zsys_info ("%s: %llu members came after their group was closed", self.name,
                   (unsigned long long) self.late);
    int status = zf_actor_client_end (&self.client, 0);
    for (s_group_t *group = (s_group_t *) zlistx_first (self.open); group;
         group = (s_group_t *) zlistx_next (self.open)) {
        zlistx_destroy (&group->copies);
        free (group->members);
        free (group);
    }
    zlistx_destroy (&self.open);
    zf_idmap_destroy (&self.groups);
    zf_window_destroy (&self.closed);
    zf_actor_exit (pipe, status);
}

//  A gather without a timeout waits for ever for a member that never comes.
static const char *
s_advise (zconfig_t *section)
{
    if (zconfig_locate (section, "timeout"))
        return NULL; // said so, 0 (for ever) included
    return "no timeout: a group whose member never comes (dropped by a processor, or lost "
           "upstream) waits for ever; give timeout (e.g. 5m), or timeout = 0 to mean it";
}

const zf_kind_t zf_gather_kind = {
    .advise = s_advise,
    .name = "gather",
    .summary = "collects the members of each group into one list, in order",
    .keys = s_keys,
    .settings_size = sizeof (zf_gather_settings_t),
    .flags = ZF_KIND_INPUT | ZF_KIND_OUTPUT | ZF_KIND_FANIN,
    .run = zf_gather_actor,
};
