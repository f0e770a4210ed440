/*  zf_cluster: the journal on a Raft group. See zf_cluster.h. */
#include "zf_cluster.h"
#include "zf_idmap.h"
#include "zf_value.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <raft.h>
#include <signal.h>
#include <raft/uv.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define ENTRY_VERSION   1
#define ENTRY_HEADER    23 // version, incarnation, node, u32 records' size, u16 endpoint size
#define SNAPSHOT_HEADER 5  // version, u32 records' size
#define RECORD_HEADER   5  // u32 size, u8 type
#define IN_FLIGHT_MAX   2  // entries proposed and not yet committed, at most
#define PENDING_MAX     (4 << 20) // bytes of committed records held before they are applied
#define QUIET_MAX       200       // ms the leader may hold back new work for a snapshot
#define QUIET_AGAIN     5000      // ms after which a leader whose snapshot did not come tries again
#define SNAPSHOT_BYTES  (64 << 20) // bytes of entries between snapshots: 3/4 to 5/4 of it
#define KEPT_BYTES      (8 << 20)  // bytes of entries kept after one, about
#define CONNECT_RETRY   250        // ms between tries to reach a node that is away
#define SNAPSHOT_EVERY  4096       // entries between snapshots
#define SNAPSHOT_KEPT   1024       // entries kept after one, for a node a little behind

//  An entry proposed and not yet committed.
typedef struct {
    struct raft_apply req;
    zf_cluster_t *cluster;
    uint64_t seq; // its number among this broker's entries
} s_apply_t;

//  A growing buffer: of raft_malloc'd memory, which Raft takes over; or,
//  own, of this module's (malloc).
typedef struct {
    uint8_t *data;
    size_t len, cap;
    bool own;
} s_buffer_t;

struct _zf_cluster_t {
    uv_loop_t loop;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    bool have_transport, have_io, have_raft; // what to close
    bool closing, closed;
    zf_cluster_hooks_t hooks;
    char addresses[ZF_NODES_MAX][256]; // HOST:PORT of each node
    int count;                         // nodes
    int node;                          // this one, 1-based
    char endpoint[256];                // where this broker's clients connect
    const char *endpoint_port;         // its port, in endpoint
    uint64_t incarnation;              // drawn at start: entries of this process
    int lock;                          // the folder's lock, or -1
    bool leading;                      // Raft says it leads; the barrier is asked
    bool serving;                      // the barrier is applied: it serves
    struct raft_barrier barrier;       // the entry every earlier one is applied before
    s_buffer_t entry;                  // this turn's entry, being filled
    bool announce;                     // the next commit goes out even with no records
    uint64_t submitted;                // entries proposed
    uint64_t durable;                  // of those, committed
    bool snapshotting;                 // records go to snapshot
    s_buffer_t snapshot;               // the snapshot being written
    bool applied;                      // the store holds what entries put there
    uint64_t announced_node;           // the last leader an entry came from
    char announced[256];               // its endpoint
    char derived[256];                 // a leader's endpoint guessed from its address
    char lost[256];                    // why it stopped serving, or ""
    s_buffer_t pending;                // records of committed entries, not yet applied (malloc'd)
    s_buffer_t spare;                  // the room pending had before the last settle
    zf_idmap_t *fins;                  // at a settle: id -> its FIN's offset in pending, plus one
    size_t held;          // bytes of them held on at the last settle: items not finished
    uint64_t every;       // entries between snapshots
    uint64_t since;       // entries applied since the last snapshot
    uint64_t since_bytes; // their bytes
    uint64_t limit;       // bytes of them at which the next snapshot comes
    uint64_t draw;        // the state of the draws of limit
    uint64_t threshold;   // entries at which Raft takes the next one
    int64_t quiet_since;  // when the leader stopped taking work for one, or 0
    uint64_t last_index;  // the Raft index of the last entry this broker proposed
    bool poked;           // an empty entry went, for Raft to try the snapshot
    size_t entry_size;    // room the next entry starts with
    size_t snapshot_size; // room the next snapshot starts with
};

//  Little-endian integers of bytes bytes, as the formats above have them.
static void
s_put (uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}

static uint64_t
s_get (const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t) p[i] << (8 * i);
    return v;
}

static uint8_t *s_grow (s_buffer_t *buffer, size_t size);

//  Gives an empty buffer room for size bytes at once: one that grows as
//  much as the last one did is not copied again and again on the way.
static void
s_room (s_buffer_t *buffer, size_t size)
{
    if (!buffer->data && size > 4096) {
        buffer->data = (uint8_t *) (buffer->own ? malloc (size) : raft_malloc (size));
        buffer->cap = buffer->data ? size : 0;
    }
}

//  Writes the size of the records, which start at byte from, as the u32 at
//  byte at; then pads the buffer to a multiple of 8 bytes, as libraft's
//  log needs its entries.
static void
s_seal (s_buffer_t *buffer, size_t at, size_t from)
{
    s_put (buffer->data + at, (uint32_t) (buffer->len - from), 4);
    size_t pad = (8 - buffer->len % 8) % 8;
    if (pad)
        memset (s_grow (buffer, pad), 0, pad);
}

static uint8_t *
s_grow (s_buffer_t *buffer, size_t size)
{
    if (buffer->len + size > buffer->cap) {
        size_t cap = buffer->cap ? buffer->cap : 4096;
        while (cap < buffer->len + size)
            cap *= 2;
        uint8_t *data = (uint8_t *) (buffer->own ? realloc (buffer->data, cap)
                                                 : raft_realloc (buffer->data, cap));
        if (!data) {
            zsys_error ("broker: out of memory for %zu bytes of the group's records", cap);
            abort (); // as the journal: the broker cannot go on without its log
        }
        buffer->data = data;
        buffer->cap = cap;
    }
    uint8_t *p = buffer->data + buffer->len;
    buffer->len += size;
    return p;
}

//  --------------------------------------------------------------------------
//  Starting again

//  This broker stops serving: it lost the lead (and holds what the log may
//  not: its own turns not committed), or it was sent a snapshot to replace
//  its store. Its owner starts it again from the group's log (zflow broker
//  execs itself); zf_cluster_lost says why.
static void
s_lose (zf_cluster_t *self, const char *why)
{
    if (self->closing || self->lost[0])
        return;
    snprintf (self->lost, sizeof self->lost, "node %d %s", self->node, why);
    zsys_warning ("broker: %s; it starts again from the group's log", self->lost);
}

//  --------------------------------------------------------------------------
//  The state machine

//  Calls the record hook on each record in data. With fins (id -> the
//  offset of its FIN, plus one), not on the PUT, ACK or RETRY of an item
//  whose FIN comes after them (it is gone by the end of data); with keep,
//  those of an item with no FIN in data go there instead, to be applied
//  with the records that come next.
static void
s_apply_records (zf_cluster_t *self, const uint8_t *data, size_t size, const char *what,
                 zf_idmap_t *fins, s_buffer_t *keep)
{
    size_t at = 0;
    while (at + RECORD_HEADER <= size) {
        uint32_t len = (uint32_t) s_get (data + at, 4);
        zf_jr_type_t type = (zf_jr_type_t) data[at + 4];
        if (len > size - at - RECORD_HEADER)
            break;
        const uint8_t *payload = data + at + RECORD_HEADER;
        uintptr_t fin = 0;
        bool of_item = fins && len >= ZF_ID_SIZE &&
                       (type == ZF_JR_PUT || type == ZF_JR_PUT_SHORT || type == ZF_JR_ACK ||
                        type == ZF_JR_RETRY);
        if (of_item)
            fin = (uintptr_t) zf_idmap_get (fins, (const zf_id_t *) payload);
        zf_error_t err;
        if (of_item && fin > at + 1)
            ; // finished later in data
        else if (of_item && !fin && keep)
            memcpy (s_grow (keep, RECORD_HEADER + len), data + at, RECORD_HEADER + len);
        else if (self->hooks.record (self->hooks.arg, type, payload, len, &err))
            zsys_error ("broker: %s: a record at byte %zu: %s (skipped)", what, at, err.text);
        at += RECORD_HEADER + len;
    }
    if (at != size)
        zsys_error ("broker: %s: %zu bytes at %zu are no record (skipped)", what, size - at, at);
}

//  Applies the records of committed entries held: first finding where each
//  item's FIN is, so that an item put and finished among them costs the
//  store one record (what a snapshot would say of it), not three. Unless
//  all, the records of items not finished yet are held on: most finish
//  soon after (a follower's store then sees them only as done).
static void
s_settle (zf_cluster_t *self, bool all)
{
    if (!self->pending.len)
        return;
    const uint8_t *data = self->pending.data;
    size_t size = self->pending.len;
    // The map and the buffers are kept from one settle to the next: fresh
    // memory of this size each time cost more in page faults than the
    // records' work.
    if (!self->fins)
        self->fins = zf_idmap_new (PENDING_MAX / 256);
    zf_idmap_t *fins = self->fins;
    for (size_t at = 0; fins && at + RECORD_HEADER <= size;) {
        uint32_t len = (uint32_t) s_get (data + at, 4);
        if (len > size - at - RECORD_HEADER)
            break;
        if (data[at + 4] == ZF_JR_FIN && len >= ZF_ID_SIZE &&
            zf_idmap_put (fins, (const zf_id_t *) (data + at + RECORD_HEADER),
                          (void *) (uintptr_t) (at + 1))) {
            zf_idmap_clear (fins); // no memory: apply every record
            fins = NULL;
            break;
        }
        at += RECORD_HEADER + len;
    }
    s_buffer_t keep = self->spare;
    keep.len = 0;
    s_apply_records (self, data, size, "a Raft entry", fins, all || !fins ? NULL : &keep);
    if (fins)
        zf_idmap_clear (fins);
    self->spare = self->pending;
    self->pending = keep;
    self->held = keep.len;
}

//  Draws the bytes of entries before the next snapshot: 3/4 to 5/4 of
//  SNAPSHOT_BYTES, at random, so that the nodes' snapshots seldom fall
//  together (each holds its loop a while: a leader waiting for a moment
//  to take its own needs one follower that answers).
static void
s_draw_limit (zf_cluster_t *self)
{
    // xorshift64, seeded by the incarnation (drawn at random)
    uint64_t x = self->draw ? self->draw : self->incarnation | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->draw = x;
    self->limit = SNAPSHOT_BYTES / 4 * 3 + x % (SNAPSHOT_BYTES / 2);
}

static int
s_fsm_apply (struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    zf_cluster_t *self = (zf_cluster_t *) fsm->data;
    *result = NULL;
    // A snapshot every `every` entries, or sooner once they hold limit
    // bytes (about SNAPSHOT_BYTES): Raft keeps the entries since the last
    // in memory.
    self->since++;
    self->since_bytes += buf->len;
    if (self->since_bytes >= self->limit && self->since < self->threshold) {
        uint64_t kept = KEPT_BYTES / (self->since_bytes / self->since + 1);
        self->threshold = self->since;
        raft_set_snapshot_threshold (&self->raft, (unsigned) self->since);
        raft_set_snapshot_trailing (&self->raft, (unsigned) (kept < 1               ? 1
                                                             : kept > SNAPSHOT_KEPT ? SNAPSHOT_KEPT
                                                                                    : kept));
    }
    const uint8_t *p = (const uint8_t *) buf->base;
    size_t header = ENTRY_HEADER;
    if (buf->len < header || p[0] != ENTRY_VERSION) {
        zsys_error ("broker: a Raft entry of %zu bytes is not one of zflow's (skipped)", buf->len);
        return 0;
    }
    uint64_t incarnation = s_get (p + 1, 8), node = s_get (p + 9, 8);
    size_t records = (uint32_t) s_get (p + 17, 4);
    size_t n = (size_t) p[21] | (size_t) p[22] << 8;
    if (n >= sizeof self->announced || header + n + records > buf->len) {
        zsys_error ("broker: a Raft entry's sizes do not fit it (skipped)");
        return 0;
    }
    self->announced_node = node;
    memcpy (self->announced, p + header, n);
    self->announced[n] = 0;
    if (incarnation == self->incarnation)
        return 0; // made here: the store has it already
    self->applied = true;
    // Applied in batches: the records of an item that finished within one
    // need not be (s_settle).
    if (records)
        memcpy (s_grow (&self->pending, records), p + header + n, records);
    if (self->pending.len >= PENDING_MAX + 2 * self->held)
        s_settle (self, false);
    return 0;
}

static int
s_fsm_snapshot (struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    zf_cluster_t *self = (zf_cluster_t *) fsm->data;
    // The leader's store is ahead of the log while its entries are in
    // flight: it writes its snapshot once they are all committed.
    if (self->serving && (raft_last_applied (&self->raft) < self->last_index || self->entry.len)) {
        return RAFT_BUSY;
    }
    s_settle (self, false);
    self->snapshot = (s_buffer_t){ 0 };
    s_room (&self->snapshot, self->snapshot_size);
    *s_grow (&self->snapshot, SNAPSHOT_HEADER) = ENTRY_VERSION;
    self->snapshotting = true;
    self->hooks.snapshot (self->hooks.arg);
    self->snapshotting = false;
    // A follower's records of items not finished yet follow the store's,
    // as they are: a restore applies them after it, as they would have been.
    if (self->pending.len)
        memcpy (s_grow (&self->snapshot, self->pending.len), self->pending.data, self->pending.len);
    s_seal (&self->snapshot, 1, SNAPSHOT_HEADER);
    *bufs = (struct raft_buffer *) raft_malloc (sizeof (struct raft_buffer));
    if (!*bufs) {
        raft_free (self->snapshot.data);
        self->snapshot = (s_buffer_t){ 0 };
        return RAFT_NOMEM;
    }
    (*bufs)[0].base = self->snapshot.data;
    (*bufs)[0].len = self->snapshot.len;
    *n_bufs = 1;
    self->snapshot_size = self->snapshot.len + self->snapshot.len / 4;
    self->snapshot = (s_buffer_t){ 0 }; // Raft's now
    self->since = self->since_bytes = 0;
    s_draw_limit (self);
    self->quiet_since = 0;
    if (self->threshold != self->every) {
        self->threshold = self->every;
        raft_set_snapshot_threshold (&self->raft, (unsigned) self->every);
        raft_set_snapshot_trailing (
            &self->raft, (unsigned) (self->every < SNAPSHOT_KEPT ? self->every : SNAPSHOT_KEPT));
    }
    return 0;
}

static int
s_fsm_restore (struct raft_fsm *fsm, struct raft_buffer *buf)
{
    zf_cluster_t *self = (zf_cluster_t *) fsm->data;
    // The leader sent a snapshot to a follower that fell behind: Raft has
    // it on disk; the store is emptied by starting again, which loads it.
    if (self->applied) {
        s_lose (self, "was sent a snapshot of the group's state");
        return RAFT_SHUTDOWN;
    }
    const uint8_t *p = (const uint8_t *) buf->base;
    if (buf->len < SNAPSHOT_HEADER || p[0] != ENTRY_VERSION ||
        (uint32_t) s_get (p + 1, 4) > buf->len - SNAPSHOT_HEADER) {
        zsys_error ("broker: a Raft snapshot of %zu bytes is not one of zflow's", buf->len);
        return RAFT_CORRUPT;
    }
    s_apply_records (self, p + SNAPSHOT_HEADER, (uint32_t) s_get (p + 1, 4), "the Raft snapshot",
                     NULL, NULL);
    self->applied = true;
    raft_free (buf->base); // the state machine's, once restored
    return 0;
}

//  --------------------------------------------------------------------------
//  Leading

static void
s_applied (struct raft_apply *req, int status, void *result)
{
    (void) result;
    s_apply_t *apply = (s_apply_t *) req;
    zf_cluster_t *self = apply->cluster;
    uint64_t seq = apply->seq;
    free (apply);
    if (self->closing)
        return;
    if (status != 0)
        s_lose (self, "lost the lead before an entry was committed");
    else if (seq > self->durable)
        self->durable = seq;
}

static void
s_barrier_done (struct raft_barrier *req, int status)
{
    zf_cluster_t *self = (zf_cluster_t *) req->data;
    if (self->closing)
        return;
    if (status != 0) {
        s_lose (self, "lost the lead while taking it");
        return;
    }
    s_settle (self, true); // every earlier entry is in the store
    self->serving = true;
    self->announce = true; // the followers learn where its clients connect
    zsys_info ("broker: node %d leads the group of %d (term %llu): clients connect to %s",
               self->node, self->count, (unsigned long long) self->raft.current_term,
               self->endpoint);
    self->hooks.leading (self->hooks.arg);
}

void
zf_cluster_run (zf_cluster_t *self)
{
    uv_run (&self->loop, UV_RUN_NOWAIT);
    int state = raft_state (&self->raft);
    if (state == RAFT_LEADER && !self->leading) {
        self->leading = true;
        self->barrier.data = self;
        if (raft_barrier (&self->raft, &self->barrier, s_barrier_done) != 0)
            s_lose (self, "could not take the lead");
    }
    else if (state != RAFT_LEADER && self->leading)
        s_lose (self, "lost the lead");
}

//  --------------------------------------------------------------------------
//  Records

static void
s_entry_header (zf_cluster_t *self)
{
    size_t n = strlen (self->endpoint);
    s_room (&self->entry, self->entry_size); // as much as the last entry held
    uint8_t *p = s_grow (&self->entry, ENTRY_HEADER + n);
    p[0] = ENTRY_VERSION;
    s_put (p + 1, self->incarnation, 8);
    s_put (p + 9, (uint64_t) self->node, 8);
    s_put (p + 17, 0, 4); // records' size, once they are all in
    p[21] = (uint8_t) n;
    p[22] = (uint8_t) (n >> 8);
    memcpy (p + ENTRY_HEADER, self->endpoint, n);
}

uint8_t *
zf_cluster_reserve (zf_cluster_t *self, zf_jr_type_t type, size_t size)
{
    s_buffer_t *buffer;
    if (self->snapshotting)
        buffer = &self->snapshot;
    else if (self->serving) {
        buffer = &self->entry;
        if (buffer->len == 0)
            s_entry_header (self);
    }
    else
        return NULL;
    if (size > UINT32_MAX - RECORD_HEADER) {
        zsys_error ("broker: a record of %zu bytes does not fit a Raft entry", size);
        abort ();
    }
    uint8_t *p = s_grow (buffer, RECORD_HEADER + size);
    uint32_t len = (uint32_t) size;
    p[0] = (uint8_t) len;
    p[1] = (uint8_t) (len >> 8);
    p[2] = (uint8_t) (len >> 16);
    p[3] = (uint8_t) (len >> 24);
    p[4] = (uint8_t) type;
    return p + RECORD_HEADER;
}

uint64_t
zf_cluster_appended (zf_cluster_t *self)
{
    return self->entry.len ? self->submitted + 1 : self->submitted;
}

uint64_t
zf_cluster_durable (zf_cluster_t *self)
{
    return self->durable;
}

void
zf_cluster_commit (zf_cluster_t *self)
{
    if (!self->serving || self->lost[0] || (self->entry.len == 0 && !self->announce))
        return;
    // While the group is behind, the turns that wait join the next entry:
    // fewer, larger entries, each a write and a round trip.
    if (self->submitted - self->durable >= IN_FLIGHT_MAX)
        return;
    if (self->entry.len == 0)
        s_entry_header (self);
    s_seal (&self->entry, 17, ENTRY_HEADER + strlen (self->endpoint));
    self->announce = false;
    s_apply_t *apply = (s_apply_t *) malloc (sizeof (s_apply_t));
    if (!apply) {
        zsys_error ("broker: out of memory for a Raft request");
        abort ();
    }
    apply->cluster = self;
    apply->seq = self->submitted + 1;
    struct raft_buffer buf = { .base = self->entry.data, .len = self->entry.len };
    int rc = raft_apply (&self->raft, &apply->req, &buf, 1, s_applied);
    if (rc != 0) {
        free (apply);
        s_lose (self, "lost the lead before proposing an entry");
        return;
    }
    self->entry_size = self->entry.len + self->entry.len / 4;
    self->entry = (s_buffer_t){ 0 }; // Raft's now
    self->submitted++;
    self->last_index = apply->req.index;
}

//  --------------------------------------------------------------------------
//  Joining

//  Whether address's host is this machine: its host name, or an address of
//  one of its interfaces (a socket can be bound to it).
static bool
s_is_here (const char *address)
{
    char host[256];
    snprintf (host, sizeof host, "%.*s", (int) (strrchr (address, ':') - address), address);
    char name[256] = "";
    if (gethostname (name, sizeof name) == 0 && *name) {
        size_t label = strcspn (host, ".");
        if (streq (host, name) || (strlen (name) == label && strncmp (host, name, label) == 0))
            return true;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM };
    struct addrinfo *found = NULL;
    if (getaddrinfo (host, NULL, &hints, &found) != 0)
        return false;
    bool here = false;
    for (struct addrinfo *a = found; a && !here; a = a->ai_next) {
        int fd = socket (a->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            here = bind (fd, a->ai_addr, a->ai_addrlen) == 0;
            close (fd);
        }
    }
    freeaddrinfo (found);
    return here;
}

static bool
s_is_ipv4 (const char *host)
{
    struct in_addr addr;
    return inet_pton (AF_INET, host, &addr) == 1;
}

//  Which node this broker is: the one given, or the only one here.
static int
s_find_node (zf_cluster_t *self, int node, zf_error_t *err)
{
    if (node) {
        if (node < 1 || node > self->count)
            return zf_error_set (err, ZF_EVALUE, "cluster: --node %d: the group has nodes 1 to %d",
                                 node, self->count);
        return node;
    }
    int found = 0;
    for (int i = 0; i < self->count; i++)
        if (s_is_here (self->addresses[i])) {
            if (found)
                return zf_error_set (err, ZF_EVALUE,
                                     "cluster: nodes %d (%s) and %d (%s) are both on this host: "
                                     "say which this is with --node N",
                                     found, self->addresses[found - 1], i + 1, self->addresses[i]);
            found = i + 1;
        }
    if (!found)
        return zf_error_set (err, ZF_EVALUE,
                             "cluster: none of the nodes %s is on this host: say which this is "
                             "with --node N",
                             self->addresses[0]);
    return found;
}

//  Where clients reach this broker: its endpoint, with the node's host for
//  an address of every interface.
static void
s_advertise (zf_cluster_t *self, const char *endpoint)
{
    const char *address = self->addresses[self->node - 1];
    int host = (int) (strrchr (address, ':') - address);
    const char *after = strstr (endpoint, "://");
    const char *port = strrchr (endpoint, ':');
    if (after && port && port > after &&
        (strncmp (after + 3, "0.0.0.0:", 8) == 0 || strncmp (after + 3, "*:", 2) == 0))
        snprintf (self->endpoint, sizeof self->endpoint, "%.*s%.*s%s", (int) (after + 3 - endpoint),
                  endpoint, host, address, port);
    else
        snprintf (self->endpoint, sizeof self->endpoint, "%s", endpoint);
    self->endpoint_port = strrchr (self->endpoint, ':') + 1;
}

static int
s_lock (zf_cluster_t *self, const char *dir, zf_error_t *err)
{
    if (zsys_dir_create ("%s", dir) != 0)
        return zf_error_set (err, ZF_EIO, "cluster: cannot make the folder %s: %s", dir,
                             strerror (errno));
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/LOCK", dir);
    self->lock = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->lock < 0)
        return zf_error_set (err, ZF_EIO, "cluster: cannot open %s: %s", path, strerror (errno));
    if (flock (self->lock, LOCK_EX | LOCK_NB) != 0)
        return zf_error_set (err, ZF_EIO, "cluster: %s is in use by another broker", dir);
    return 0;
}

//  Whether the group in the log (its first start wrote it there) is not
//  the one this broker was given: its Raft would only ever reach the old
//  addresses, and wait for them for ever. Says so in err.
static bool
s_group_differs (zf_cluster_t *self, const char *dir, zf_error_t *err)
{
    const struct raft_configuration *conf = &self->raft.configuration;
    bool differs = conf->n != (unsigned) self->count;
    for (unsigned i = 0; i < conf->n && !differs; i++)
        differs = conf->servers[i].id != i + 1 ||
                  strcmp (conf->servers[i].address, self->addresses[i]) != 0;
    if (differs) {
        char logged[ZF_NODES_MAX * 257] = "";
        for (unsigned i = 0; i < conf->n; i++) {
            size_t len = strlen (logged);
            snprintf (logged + len, sizeof logged - len, "%s%s", i ? "," : "",
                      conf->servers[i].address);
        }
        zf_error_set (err, ZF_ECONFIG,
                      "cluster: the Raft log in %s is of the group %s, not of the nodes given: "
                      "give the group's nodes as they were (in their order), or an empty folder "
                      "for a new group",
                      dir, logged);
    }
    return differs;
}

zf_cluster_t *
zf_cluster_new (const zf_cluster_args_t *args, const zf_cluster_hooks_t *hooks, zf_error_t *err)
{
    zf_cluster_t *self = (zf_cluster_t *) zmalloc (sizeof (zf_cluster_t));
    self->lock = -1;
    self->pending.own = true; // the records waiting are copies of ours
    self->spare.own = true;
    self->hooks = *hooks;
    bool known = false;
    if (zf_parse_nodes (args->nodes, self->addresses, &self->count, err))
        zf_error_prefix (err, "cluster: ");
    else if ((self->node = s_find_node (self, args->node, err)) > 0)
        known = s_lock (self, args->dir, err) == 0;
    if (!known) {
        zf_cluster_destroy (&self);
        return NULL;
    }
    s_advertise (self, args->endpoint);
    // libuv writes to its peers with write(): a peer that died must not
    // kill this process with SIGPIPE.
    signal (SIGPIPE, SIG_IGN);
    while (self->incarnation == 0)
        if (getrandom (&self->incarnation, sizeof self->incarnation, 0) != sizeof self->incarnation)
            self->incarnation = (uint64_t) zclock_time () ^ ((uint64_t) getpid () << 32);
    s_draw_limit (self);
    uv_loop_init (&self->loop);
    const char *address = self->addresses[self->node - 1];
    char host[256], bind[300];
    snprintf (host, sizeof host, "%.*s", (int) (strrchr (address, ':') - address), address);
    // A name is reached at its address, which only the resolver knows:
    // then every interface listens.
    snprintf (bind, sizeof bind, "%s%s", s_is_ipv4 (host) ? host : "0.0.0.0",
              strrchr (address, ':'));
    int rc = raft_uv_tcp_init (&self->transport, &self->loop);
    self->have_transport = rc == 0;
    if (rc == 0)
        rc = raft_uv_tcp_set_bind_address (&self->transport, bind);
    if (rc == 0) {
        rc = raft_uv_init (&self->io, &self->loop, args->dir, &self->transport);
        self->have_io = rc == 0;
        if (rc)
            zf_error_set (err, ZF_EIO, "cluster: cannot open the Raft log in %s: %s", args->dir,
                          self->io.errmsg[0] ? self->io.errmsg : raft_strerror (rc));
    }
    else
        zf_error_set (err, ZF_EIO, "cluster: cannot listen on %s: %s", bind, raft_strerror (rc));
    if (rc) {
        zf_cluster_destroy (&self);
        return NULL;
    }
    raft_uv_set_connect_retry_delay (&self->io, CONNECT_RETRY);
    self->fsm = (struct raft_fsm){ .version = 1,
                                   .data = self,
                                   .apply = s_fsm_apply,
                                   .snapshot = s_fsm_snapshot,
                                   .restore = s_fsm_restore };
    rc = raft_init (&self->raft, &self->io, &self->fsm, (raft_id) self->node, address);
    self->have_raft = rc == 0;
    if (rc == 0) {
        unsigned election = args->election_ms > 0 ? (unsigned) args->election_ms : 1000;
        raft_set_election_timeout (&self->raft, election);
        raft_set_heartbeat_timeout (&self->raft, election / 10 ? election / 10 : 1);
        raft_set_pre_vote (&self->raft, true);
        unsigned every =
            args->snapshot_every > 0 ? (unsigned) args->snapshot_every : SNAPSHOT_EVERY;
        raft_set_snapshot_threshold (&self->raft, every);
        self->every = self->threshold = every;
        raft_set_snapshot_trailing (&self->raft, every < SNAPSHOT_KEPT ? every : SNAPSHOT_KEPT);
        struct raft_configuration conf;
        raft_configuration_init (&conf);
        for (int i = 0; i < self->count && rc == 0; i++)
            rc = raft_configuration_add (&conf, (raft_id) (i + 1), self->addresses[i], RAFT_VOTER);
        // The first start of a node writes the group into its log; later
        // ones find it there.
        if (rc == 0) {
            rc = raft_bootstrap (&self->raft, &conf);
            if (rc == RAFT_CANTBOOTSTRAP)
                rc = 0;
        }
        raft_configuration_close (&conf);
        if (rc == 0) {
            rc = raft_start (&self->raft);
        }
    }
    if (rc == 0 && s_group_differs (self, args->dir, err)) {
        zf_cluster_destroy (&self);
        return NULL;
    }
    if (rc) {
        const char *why = self->have_raft ? raft_errmsg (&self->raft) : NULL;
        zf_error_set (err, ZF_EIO, "cluster: cannot start node %d in %s: %s", self->node, args->dir,
                      why && *why ? why : raft_strerror (rc));
        zf_cluster_destroy (&self);
        return NULL;
    }
    zsys_info ("broker: node %d of %d (%s), Raft log in %s", self->node, self->count, address,
               args->dir);
    return self;
}

static void
s_raft_closed (struct raft *raft)
{
    ((zf_cluster_t *) raft->data)->closed = true;
}

void
zf_cluster_destroy (zf_cluster_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zf_cluster_t *self = *self_p;
    self->closing = true;
    if (self->have_raft) {
        self->raft.data = self;
        raft_close (&self->raft, s_raft_closed);
        while (!self->closed)
            uv_run (&self->loop, UV_RUN_ONCE);
    }
    if (self->have_io)
        raft_uv_close (&self->io);
    if (self->have_transport)
        raft_uv_tcp_close (&self->transport);
    if (self->have_transport) {
        uv_run (&self->loop, UV_RUN_DEFAULT);
        uv_loop_close (&self->loop);
    }
    raft_free (self->entry.data);
    raft_free (self->snapshot.data);
    free (self->pending.data);
    free (self->spare.data);
    zf_idmap_destroy (&self->fins);
    if (self->lock >= 0)
        close (self->lock);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  The loop's view

int
zf_cluster_fd (zf_cluster_t *self)
{
    return uv_backend_fd (&self->loop);
}

int64_t
zf_cluster_due (zf_cluster_t *self)
{
    return uv_backend_timeout (&self->loop);
}

bool
zf_cluster_quiet (zf_cluster_t *self, int64_t now)
{
    // The leader's store is ahead of the log while it has entries in
    // flight, and its snapshot must wait for a moment with none: when one
    // is due, it takes no new work until its last entries are committed
    // (a round trip), for QUIET_MAX ms at most.
    if (!self->serving || self->since < self->threshold)
        return false;
    if (self->quiet_since && now - self->quiet_since >= QUIET_AGAIN)
        self->quiet_since = 0; // no moment came: another try
    if (!self->quiet_since) {
        self->quiet_since = now;
        self->poked = false;
    }
    if (!self->poked && self->submitted == self->durable && !self->entry.len) {
        // Raft tries a snapshot as it applies an entry: an empty one.
        self->announce = true;
        self->poked = true;
    }
    return now - self->quiet_since < QUIET_MAX;
}

bool
zf_cluster_serving (zf_cluster_t *self)
{
    return self->serving && !self->lost[0];
}

const char *
zf_cluster_lost (zf_cluster_t *self)
{
    return self->lost[0] ? self->lost : NULL;
}

int
zf_cluster_node (zf_cluster_t *self)
{
    return self->node;
}

const char *
zf_cluster_leader (zf_cluster_t *self)
{
    raft_id id = 0;
    const char *address = NULL;
    raft_leader (&self->raft, &id, &address);
    if (id == 0 || !address)
        return NULL;
    if (id == (raft_id) self->node)
        return self->serving ? self->endpoint : NULL;
    if (id == self->announced_node && self->announced[0])
        return self->announced;
    // Not heard from yet: its host, with the port this broker's clients use.
    snprintf (self->derived, sizeof self->derived, "tcp://%.*s:%s",
              (int) (strrchr (address, ':') - address), address, self->endpoint_port);
    return self->derived;
}
