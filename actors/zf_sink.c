/*  zf_sink: writes results to a file, stdout or nowhere, and acks each item
    only once it is written (and, unless sync = never, on disk).

    A file target is JSON lines (format body: the body as JSON; envelope:
    {"id", "queue", "attempt", "body"}) or msgpack values back to
    back (format msgpack). Beside it, PATH.ids records the id of every item
    written, 16 bytes each, in the same order: it is the commit record. At
    start the sink drops a torn last record, cuts the data back to the items
    whose ids are recorded (an item written but not recorded was never
    acked, and comes again), and remembers the last ids written, so an item
    delivered again after a crash is acked without being written twice.

    A write that fails (a full disk, a file size limit, an I/O error) is
    cut back off both files and tried again, with a backoff up to 5 s,
    holding the items unacked (the queue backs up behind them) for as long
    as disk-wait; only then do they fail, to be retried by the broker as
    any failure. Its figures say how it goes: write_failures, and
    waiting_ms while it waits.
*/
#include "zf_actor.h"
#include "zf_window.h"
#include "zf_json.h"
#include "zf_kinds.h"
#include "zf_mp.h"
#include "zflow.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
s_check_target (const char *value, zf_error_t *err)
{
    if (strcmp (value, "stdout") == 0 || strcmp (value, "null") == 0)
        return 0;
    if (strncmp (value, "file:", 5) == 0 && value[5])
        return 0;
    return zf_error_set (err, ZF_EVALUE,
                         "'%s' is not a target (expected file:PATH, stdout or null)", value);
}

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_CURVE,
    ZF_KEY_INPUT,
    ZF_KEY_FLOW,
    ZF_KEY_WORKERS,
    { .name = "concurrency",
      ZF_FIELD (ZF_KEY_INT, zf_sink_settings_t, concurrency),
      .fallback = "1024",
      .help = "items each worker holds at once, written and synced together (at most half "
              "its input's max-depth per worker)",
      .min = 1,
      .max = 1000000 },
    { .name = "target",
      ZF_FIELD (ZF_KEY_STRING, zf_sink_settings_t, target),
      .help = "file:PATH, stdout or null",
      .flags = ZF_KEY_REQUIRED | ZF_KEY_PATH,
      .check = s_check_target },
    { .name = "format",
      ZF_FIELD (ZF_KEY_ENUM, zf_sink_settings_t, format),
      .fallback = "body",
      .help = "each line: the body as JSON, the whole envelope, or msgpack",
      .choices = "body|envelope|msgpack" },
    { .name = "sync",
      ZF_FIELD (ZF_KEY_ENUM, zf_sink_settings_t, sync),
      .fallback = "interval",
      .help = "when the file is fsynced (acks wait for it)",
      .choices = "always|interval|never" },
    { .name = "sync-interval",
      ZF_FIELD (ZF_KEY_DURATION, zf_sink_settings_t, sync_interval),
      .fallback = "100ms",
      .help = "fsync period with sync = interval",
      .min = 1,
      .max = 60000 },
    { .name = "linger",
      ZF_FIELD (ZF_KEY_DURATION, zf_sink_settings_t, linger),
      .fallback = "5ms",
      .help = "acks wait this long at most to go to the broker together",
      .max = 1000 },
    { .name = "disk-wait",
      ZF_FIELD (ZF_KEY_DURATION, zf_sink_settings_t, disk_wait),
      .fallback = "10m",
      .help = "how long writes may keep failing (a full disk) while the sink holds its items "
              "and tries again; then they fail, retried by the broker" },
    { NULL },
};

typedef struct {
    zf_actor_args_t *args; // pipeline, actor, broker
    zf_client_t *client;   // session with the broker
    char *path;            // data file, or NULL for stdout and null
    char *ids_path;        // its commit record
    int fd;                // data: the file, stdout, or -1 for null
    int ids_fd;            // commit record, or -1
    bool msgpack;          // format msgpack (else JSON lines)
    bool envelope;         // format envelope
    zf_sink_sync_t sync;   // when the files are synced
    int64_t sync_interval; // ms
    int64_t linger;        // ms acks may wait to go together
    zf_window_t *written;  // ids of the last items written; NULL for null
    zlistx_t *pending;     // zf_item_t written, waiting for the sync to be acked
    zchunk_t *data;        // bytes to write at the next flush
    zchunk_t *ids;         // ids to record at the next flush
    uint64_t count;        // items written
    off_t data_size;       // bytes of the data file committed
    off_t ids_size;        // bytes of the commit record committed
    int64_t disk_wait;     // ms writes may keep failing before the items fail
    int64_t failing_since; // when writes began to fail (monotonic ms), 0 while they work
    int64_t retry_at;      // when to try again, while they fail
    int64_t backoff;       // ms until the next try after this one fails
    uint64_t failures;     // writes that failed, ever
} self_t;

#define BACKOFF_MIN 100  // ms before the first try again
#define BACKOFF_MAX 5000 // ms between tries at most

//  How many of the last ids written a sink remembers. An item comes again
//  only if its ACK was lost: it was among the last few hundred written
//  before a crash, or acked on a session that lapsed moments before. A
//  window keeps memory flat however much the file holds.
#define WRITTEN_WINDOW 65536

//  Counts the records of a data file (lines, or msgpack values) up to
//  `keep` of them, reading in blocks: constant memory at any file size.
//  Returns the byte offset just after the last whole record counted, and
//  the count in *count.
static off_t
s_scan (int fd, bool msgpack, uint64_t keep, uint64_t *count)
{
    enum { BLOCK = 1 << 20 };
    uint8_t *data = (uint8_t *) malloc (2 * BLOCK);
    off_t end = 0;    // offset after the last whole record
    off_t offset = 0; // file offset of data[0]
    size_t have = 0;  // bytes in data
    *count = 0;
    while (data && *count < keep) {
        ssize_t n = pread (fd, data + have, 2 * BLOCK - have, offset + (off_t) have);
        if (n <= 0)
            break;
        have += (size_t) n;
        size_t used = 0; // bytes of data in whole records
        if (msgpack) {
            zf_mp_t mp;
            zf_mp_init (&mp, data, have);
            while (*count < keep && zf_mp_left (&mp) &&
                   zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, NULL) == 0) {
                (*count)++;
                used = (size_t) (mp.pos - data);
            }
        }
        else
            for (size_t i = 0; i < have && *count < keep; i++)
                if (data[i] == '\n') {
                    (*count)++;
                    used = i + 1;
                }
        end = offset + (off_t) used;
        if (used == 0 && have == 2 * BLOCK)
            break; // a record over 2 MiB: not written by a sink, stop here
        memmove (data, data + used, have - used);
        offset += (off_t) used;
        have -= used;
    }
    free (data);
    return end;
}

//  Opens the target, repairs it after a crash, and loads the ids written.
static int
s_open (self_t *self)
{
    zf_actor_conf_t *conf = self->args->conf;
    const zf_sink_settings_t *set = (const zf_sink_settings_t *) conf->settings;
    const char *target = set->target;
    self->msgpack = set->format == ZF_SINK_MSGPACK;
    self->envelope = set->format == ZF_SINK_ENVELOPE;
    self->sync = (zf_sink_sync_t) set->sync;
    self->sync_interval = set->sync_interval;
    self->linger = set->linger;
    self->disk_wait = set->disk_wait;
    self->fd = self->ids_fd = -1;
    if (streq (target, "null")) {
        self->sync = ZF_SINK_SYNC_NEVER; // nothing is written: no id is worth remembering
        return 0;
    }
    self->written = zf_window_new (WRITTEN_WINDOW);
    if (streq (target, "stdout")) {
        self->fd = 1;
        self->sync = ZF_SINK_SYNC_NEVER; // a pipe or terminal has nothing to sync
        return 0;
    }
    self->path = zf_pipeline_path (self->args->pipeline, target);
    self->ids_path = zsys_sprintf ("%s.ids", self->path);
    char *dir = strdup (self->path);
    *strrchr (dir, '/') = 0;
    if (*dir && zsys_dir_create ("%s", dir) != 0)
        zsys_warning ("%s: cannot create %s: %s", conf->name, dir, strerror (errno));
    free (dir);
    self->fd = open (self->path, O_RDWR | O_CREAT | O_APPEND, 0644);
    self->ids_fd = open (self->ids_path, O_RDWR | O_CREAT | O_APPEND, 0644);
    if (self->fd < 0 || self->ids_fd < 0) {
        zsys_error ("%s: cannot open %s: %s", conf->name,
                    self->fd < 0 ? self->path : self->ids_path, strerror (errno));
        return -1;
    }
    // The commit record: whole ids only.
    off_t ids_size = lseek (self->ids_fd, 0, SEEK_END);
    uint64_t committed = (uint64_t) ids_size / ZF_ID_SIZE;
    if (ids_size % ZF_ID_SIZE && ftruncate (self->ids_fd, (off_t) committed * ZF_ID_SIZE) == 0)
        zsys_warning ("%s: dropped a torn id at the end of %s", conf->name, self->ids_path);
    // The data: no more records than ids, and no torn record.
    uint64_t records;
    off_t size = lseek (self->fd, 0, SEEK_END);
    off_t keep = s_scan (self->fd, self->msgpack, committed, &records);
    if (records < committed) {
        // Ids beyond the data: those items are not in the file; forget them.
        committed = records;
        if (ftruncate (self->ids_fd, (off_t) committed * ZF_ID_SIZE))
            zsys_warning ("%s: cannot repair %s", conf->name, self->ids_path);
    }
    if (keep < size) {
        zsys_warning ("%s: cut %lld bytes not committed from the end of %s (written, never "
                      "acked: they come again)",
                      conf->name, (long long) (size - keep), self->path);
        if (ftruncate (self->fd, keep))
            zsys_error ("%s: cannot repair %s: %s", conf->name, self->path, strerror (errno));
    }
    // The last ids written, up to the window.
    self->data_size = keep < size ? keep : size;
    self->ids_size = (off_t) committed * ZF_ID_SIZE;
    uint64_t first = committed > WRITTEN_WINDOW ? committed - WRITTEN_WINDOW : 0;
    zf_id_t id;
    for (uint64_t i = first; i < committed; i++)
        if (pread (self->ids_fd, id.bytes, ZF_ID_SIZE, (off_t) (i * ZF_ID_SIZE)) == ZF_ID_SIZE)
            zf_window_set (self->written, &id, 1, NULL);
    self->count = committed;
    return 0;
}

//  Appends one item's record to the write buffer.
static void
s_render (self_t *self, zf_item_t *item)
{
    size_t size;
    const void *body = zf_item_body (item, &size);
    if (self->msgpack) {
        zchunk_extend (self->data, body, size);
        return;
    }
    zf_error_t err;
    char *json = zf_msgpack_to_json (body, size, &err);
    char *line;
    if (!json) {
        // Not msgpack: kept as it came, in base64, with the reason.
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_bin (&pk, size);
        msgpack_pack_bin_body (&pk, body, size);
        char *raw = zf_msgpack_to_json (buffer.data, buffer.size, NULL);
        msgpack_sbuffer_destroy (&buffer);
        json = zsys_sprintf ("{\"$error\":\"body is not msgpack: %s\",\"$raw\":%s}", err.text,
                             raw ? raw : "null");
        free (raw);
    }
    if (self->envelope) {
        char hex[ZF_ID_HEX];
        line = zsys_sprintf ("{\"id\":\"%s\",\"queue\":\"%s\",\"attempt\":%u,\"body\":%s}\n",
                             zf_id_format (zf_item_id (item), hex), zf_item_queue (item),
                             zf_item_attempt (item), json);
    }
    else
        line = zsys_sprintf ("%s\n", json);
    zchunk_extend (self->data, line, strlen (line));
    zstr_free (&line);
    free (json);
}

static int
s_write_all (int fd, const uint8_t *data, size_t size)
{
    while (size) {
        ssize_t n = write (fd, data, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        size -= (size_t) n;
    }
    return 0;
}

//  The sink's figures, for the stats event and /metrics.
static void
s_figures (self_t *self)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    zf_mp_pack_cstr (&pk, "written");
    msgpack_pack_uint64 (&pk, self->count);
    zf_mp_pack_cstr (&pk, "write_failures");
    msgpack_pack_uint64 (&pk, self->failures);
    zf_mp_pack_cstr (&pk, "waiting_ms");
    msgpack_pack_int64 (&pk, self->failing_since ? zclock_mono () - self->failing_since : 0);
    zf_client_set_figures (self->client, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
}

//  Writes the buffered records, then their ids, syncing both unless
//  sync = never. Returns 0, or -1 with errno set and both files cut back
//  to what they held before.
static int
s_write (self_t *self)
{
    if (self->fd < 0)
        return 0;
    int rc = s_write_all (self->fd, zchunk_data (self->data), zchunk_size (self->data));
    if (rc == 0 && self->sync != ZF_SINK_SYNC_NEVER && self->fd != 1)
        rc = fdatasync (self->fd);
    if (rc == 0 && self->ids_fd >= 0)
        rc = s_write_all (self->ids_fd, zchunk_data (self->ids), zchunk_size (self->ids));
    if (rc == 0 && self->sync != ZF_SINK_SYNC_NEVER && self->ids_fd >= 0)
        rc = fdatasync (self->ids_fd);
    if (rc == 0) {
        self->data_size += (off_t) zchunk_size (self->data);
        self->ids_size += (off_t) zchunk_size (self->ids);
        return 0;
    }
    // A part may have gone in: cut it off, so the next try starts clean.
    int error = errno;
    if (self->fd != 1 && ftruncate (self->fd, self->data_size))
        zsys_error ("%s: cannot cut %s back: %s", self->args->conf->name, self->path,
                    strerror (errno));
    if (self->ids_fd >= 0 && ftruncate (self->ids_fd, self->ids_size))
        zsys_error ("%s: cannot cut %s back: %s", self->args->conf->name, self->ids_path,
                    strerror (errno));
    errno = error;
    return -1;
}

//  Writes what is buffered and acks it. A failed write keeps it all for
//  the next try (at self->retry_at), until writes have failed for
//  disk-wait: then the items fail, and come again from the broker.
static int
s_flush (self_t *self)
{
    if (zlistx_size (self->pending) == 0)
        return 0;
    const char *name = self->args->conf->name;
    const char *path = self->path ? self->path : "stdout";
    int64_t now = zclock_mono ();
    if (s_write (self)) {
        int error = errno;
        self->failures++;
        if (!self->failing_since) {
            self->failing_since = now;
            self->backoff = BACKOFF_MIN;
            zsys_error ("%s: cannot write %s: %s; holding %zu items and trying again for up to "
                        "%lld ms (disk-wait)",
                        name, path, strerror (error), zlistx_size (self->pending),
                        (long long) self->disk_wait);
        }
        self->retry_at = now + self->backoff;
        self->backoff = self->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : self->backoff * 2;
        s_figures (self);
        if (now - self->failing_since < self->disk_wait)
            return -1;
        zsys_error ("%s: cannot write %s for %lld ms: %s; %zu items fail", name, path,
                    (long long) (now - self->failing_since), strerror (error),
                    zlistx_size (self->pending));
        char reason[256];
        snprintf (reason, sizeof reason, "sink cannot write %s: %s", path, strerror (error));
        zf_item_t *item;
        while ((item = (zf_item_t *) zlistx_detach (self->pending, NULL)))
            zf_client_nack (self->client, &item, reason, false, BACKOFF_MAX);
        zchunk_set (self->data, NULL, 0);
        zchunk_set (self->ids, NULL, 0);
        self->failing_since = 0;
        s_figures (self);
        return -1;
    }
    zchunk_set (self->data, NULL, 0);
    zchunk_set (self->ids, NULL, 0);
    if (self->failing_since) {
        zsys_info ("%s: writing %s again after %lld ms", name, path,
                   (long long) (now - self->failing_since));
        self->failing_since = 0;
    }
    zf_item_t *item;
    while ((item = (zf_item_t *) zlistx_detach (self->pending, NULL))) {
        if (self->written)
            zf_window_set (self->written, zf_item_id (item), 1, NULL);
        self->count++;
        zf_client_ack (self->client, &item);
    }
    if (self->failures)
        s_figures (self);
    return 0;
}

void
zf_sink_actor (zsock_t *pipe, void *args)
{
    self_t self = { .args = (zf_actor_args_t *) args };
    zf_actor_conf_t *conf = self.args->conf;
    int64_t concurrency = ((const zf_sink_settings_t *) conf->settings)->concurrency;
    // A batch waits to fill: it must fill before the queue is full with it.
    int64_t limit = zf_actor_hold_limit (self.args) / 2;
    if (concurrency > limit) {
        if (zconfig_locate (conf->node, "concurrency")) // said so: say why it is not
            zsys_info ("%s: batches of %lld items at most: half the max-depth of %s per worker",
                       conf->name, (long long) (limit > 0 ? limit : 1), conf->input);
        concurrency = limit > 0 ? limit : 1;
    }
    zsock_signal (pipe, 0);
    self.pending = zlistx_new ();
    self.data = zchunk_new (NULL, 64 * 1024);
    self.ids = zchunk_new (NULL, 4096);
    int status = 0;
    if (s_open (&self))
        status = 1;
    else {
        self.client = zf_actor_client (self.args, conf->input, (int) concurrency, pipe);
        if (!self.client)
            status = ZF_EXIT_USAGE;
    }
    if (self.client) {
        zf_client_set_linger (self.client, (int) self.linger);
        int64_t next_sync = zclock_mono () + self.sync_interval;
        while (!zf_actor_stopping (pipe) && !zf_client_refused (self.client)) {
            // With nothing to write, wait for an item. With a batch to write,
            // take only what is there, unless sync = interval says to wait
            // for its time: then wait for more until then.
            int64_t wait = 100;
            if (self.failing_since)
                wait = self.retry_at - zclock_mono (); // the disk's next try
            else if (zlistx_size (self.pending)) {
                int64_t until = next_sync - zclock_mono ();
                wait = self.sync == ZF_SINK_SYNC_INTERVAL && until > 0 ? until : 0;
            }
            if (wait < 0)
                wait = 0;
            zf_item_t *item = zf_client_next (self.client, (int) wait);
            if (item) {
                if (self.written && zf_window_get (self.written, zf_item_id (item)))
                    zf_client_ack (self.client, &item); // written before a restart
                else {
                    if (self.fd >= 0)
                        s_render (&self, item);
                    if (self.ids_fd >= 0)
                        zchunk_extend (self.ids, zf_item_id (item), ZF_ID_SIZE);
                    zlistx_add_end (self.pending, item);
                }
            }
            bool full = (int64_t) zlistx_size (self.pending) >= concurrency;
            // An item tried again that comes while nothing else is held is
            // likely one of those a dead worker held, which the broker hands
            // out one at a time: written now, not after the sync interval,
            // else a thousand of them take a hundred seconds.
            bool alone = item && !self.failing_since && zf_item_attempt (item) > 1 &&
                         zlistx_size (self.pending) == 1;
            bool due = self.sync != ZF_SINK_SYNC_INTERVAL || zclock_mono () >= next_sync;
            // Write when the credit is used up, when the burst is over, or on
            // time; with sync = interval, at most once per interval; while
            // writes fail, at the next try.
            if (self.failing_since)
                due = full = zclock_mono () >= self.retry_at;
            if (full || alone || (!item && due) ||
                (self.sync == ZF_SINK_SYNC_INTERVAL && due && zlistx_size (self.pending))) {
                s_flush (&self);
                next_sync = zclock_mono () + self.sync_interval;
            }
        }
        s_flush (&self);
        status = zf_actor_client_end (&self.client, status);
    }
    if (self.fd > 1)
        close (self.fd);
    if (self.ids_fd >= 0)
        close (self.ids_fd);
    zlistx_destroy (&self.pending);
    zchunk_destroy (&self.data);
    zchunk_destroy (&self.ids);
    zf_window_destroy (&self.written);
    free (self.path);
    zstr_free (&self.ids_path);
    zf_actor_exit (pipe, status);
}

const zf_kind_t zf_sink_kind = {
    .name = "sink",
    .summary = "writes each item to a file (JSON lines), stdout, or nowhere",
    .keys = s_keys,
    .settings_size = sizeof (zf_sink_settings_t),
    .flags = ZF_KIND_INPUT,
    .run = zf_sink_actor,
};
