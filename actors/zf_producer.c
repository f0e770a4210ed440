/*  zf_producer: streams items from a source into a queue (the async
    generator pattern).

    Sources: file:PATH (format lines, jsonl or msgpack), stdin, seq:N (the
    integers 0..N-1) and list (the `items` section). It reads only as far as
    the broker's PUT window lets it, so any size of input streams in
    constant memory. Each item's id is derived from the producer and the
    item's position, and each PUT carries the position after it: a restarted
    producer resumes from the broker's checkpoint, and anything it puts
    twice is dropped by the broker's dedup. When the source ends it says
    END and exits 0.

    With `group-size = N`, every N consecutive items (fewer for the last)
    form one gather group: the producer reads a whole group before putting
    it, so that each member knows the group's size. The group's id is
    derived like an item's, from the source "PIPELINE/ACTOR#group" and the
    position of its first member, and is also the lineage root of its
    members: cancelling it (a gather in mode all) cancels them all. A
    checkpoint is taken only after a whole group, so a restart never
    splits one.
*/
#include "zf_actor.h"
#include "zf_json.h"
#include "zf_kinds.h"
#include "zf_mp.h"
#include "zf_id.h"
#include "zflow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STOP_FLUSH_MS 250 // a stop waits this long at most for the last confirms

static int
s_check_source (const char *value, zf_error_t *err)
{
    if (strcmp (value, "stdin") == 0 || strcmp (value, "list") == 0)
        return 0;
    if (strncmp (value, "file:", 5) == 0 && value[5])
        return 0;
    if (strncmp (value, "seq:", 4) == 0) {
        char *end;
        long long n = strtoll (value + 4, &end, 10);
        if (value[4] && !*end && n >= 0)
            return 0;
    }
    return zf_error_set (err, ZF_EVALUE,
                         "'%s' is not a source (expected file:PATH, stdin, seq:N or list)", value);
}

static const zf_key_t s_keys[] = {
    ZF_KEY_KIND,
    ZF_KEY_CURVE,
    ZF_KEY_OUTPUT,
    { .name = "source",
      ZF_FIELD (ZF_KEY_STRING, zf_producer_settings_t, source),
      .fallback = "list",
      .help = "file:PATH, stdin, seq:N, or list (the items section)",
      .flags = ZF_KEY_PATH,
      .check = s_check_source },
    { .name = "items",
      ZF_FIELD (ZF_KEY_SECTION, zf_producer_settings_t, items),
      .help = "inline items, one `item = VALUE` line each" },
    { .name = "format",
      ZF_FIELD (ZF_KEY_ENUM, zf_producer_settings_t, format),
      .fallback = "lines",
      .help = "how a file is read: one string per line, JSON lines, or msgpack",
      .choices = "lines|jsonl|msgpack" },
    { .name = "rate",
      ZF_FIELD (ZF_KEY_NUMBER, zf_producer_settings_t, rate),
      .fallback = "0",
      .help = "items per second at most; 0 for as fast as credit allows" },
    { .name = "group-size",
      ZF_FIELD (ZF_KEY_INT, zf_producer_settings_t, group_size),
      .fallback = "0",
      .help = "mark every N consecutive items as one gather group",
      .max = 1000000 },
    { .name = "on-bad-line",
      ZF_FIELD (ZF_KEY_ENUM, zf_producer_settings_t, on_bad_line),
      .fallback = "stop",
      .help = "what an unreadable line does",
      .choices = "skip|dead|stop" },
    { NULL },
};

#define MSGPACK_BUFFER (1024 * 1024) // largest msgpack item in a msgpack file

typedef enum { S_SEQ, S_FILE, S_LIST } s_source_kind_t;

typedef struct {
    zf_actor_args_t *args;                  // pipeline, actor, broker
    zf_client_t *client;                    // session with the broker
    s_source_kind_t kind;                   // what the source is
    char *name;                             // file path or "stdin", for messages
    FILE *file;                             // S_FILE: the open file
    zf_producer_format_t format;            // S_FILE: how the file is read
    uint64_t count;                         // S_SEQ: N
    zconfig_t *next_item;                   // S_LIST: the next item line
    uint64_t position;                      // items read so far (bad lines included)
    uint64_t line;                          // S_FILE: line number of the last line read
    uint64_t offset;                        // S_FILE: bytes read from it so far
    char *text;                             // getline buffer
    size_t text_cap;                        // its size
    uint8_t *mp;                            // S_FILE msgpack: read buffer
    size_t mp_len;                          // bytes in it
    char source_id[2 * ZF_NAME_MAX + 2];    // "pipeline/actor", for derived ids
    const char *output;                     // the queue written
    zf_bad_line_t on_bad_line;              // what an unreadable line does
    double rate;                            // items per second, 0 for no limit
    msgpack_sbuffer item;                   // the item being made
    uint32_t group_size;                    // items per group, 0 for none
    char group_source[2 * ZF_NAME_MAX + 8]; // "pipeline/actor#group"
    uint32_t group_count;                   // items read into the group
    uint64_t group_first;                   // position of its first item
    zf_id_t *group_ids;                     // their ids
    size_t *group_ends;                     // where each body ends in group_bodies
    msgpack_sbuffer group_bodies;           // their bodies, back to back
} self_t;

//  Reads the next item into self->item. Returns 1 for an item, 0 at the end
//  of the source, -1 for a bad item (reason in err), -2 if reading failed.
static int
s_next (self_t *self, zf_error_t *err)
{
    msgpack_sbuffer_clear (&self->item);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &self->item, msgpack_sbuffer_write);
    if (self->kind == S_SEQ) {
        if (self->position >= self->count)
            return 0;
        msgpack_pack_uint64 (&pk, self->position);
        return 1;
    }
    if (self->kind == S_LIST) {
        zconfig_t *node = self->next_item;
        if (!node)
            return 0;
        self->next_item = zconfig_next (node);
        const char *value = zconfig_value (node) ? zconfig_value (node) : "";
        // A value that is JSON is that value; any other text is a string.
        if (zf_json_to_msgpack (value, strlen (value), &pk, NULL)) {
            msgpack_sbuffer_clear (&self->item);
            zf_mp_pack_cstr (&pk, value);
        }
        return 1;
    }
    if (self->format == ZF_FORMAT_MSGPACK) {
        // Values back to back: keep a buffer, take one value at a time.
        for (;;) {
            zf_mp_t mp;
            zf_mp_init (&mp, self->mp, self->mp_len);
            zf_error_t why;
            if (self->mp_len && zf_mp_skip (&mp, ZF_MP_MAX_DEPTH, &why) == 0) {
                size_t size = (size_t) (mp.pos - self->mp);
                msgpack_sbuffer_write (&self->item, (const char *) self->mp, size);
                memmove (self->mp, self->mp + size, self->mp_len - size);
                self->mp_len -= size;
                return 1;
            }
            if (self->mp_len && why.code != ZF_ETRUNC) {
                self->mp_len = 0; // nothing after a broken value can be framed
                return zf_error_set (err, ZF_EVALUE, "%s: item %llu: %s; the rest is skipped",
                                     self->name, (unsigned long long) self->position + 1, why.text);
            }
            if (self->mp_len == MSGPACK_BUFFER) {
                self->mp_len = 0;
                return zf_error_set (err, ZF_ETOOBIG, "%s: item %llu is larger than %d bytes",
                                     self->name, (unsigned long long) self->position + 1,
                                     MSGPACK_BUFFER);
            }
            size_t got =
                fread (self->mp + self->mp_len, 1, MSGPACK_BUFFER - self->mp_len, self->file);
            if (got == 0) {
                if (ferror (self->file))
                    return zf_error_set (err, ZF_EIO, "%s: %s", self->name, strerror (errno)) - 1;
                if (self->mp_len) {
                    self->mp_len = 0;
                    return zf_error_set (err, ZF_ETRUNC, "%s: the last item is cut short",
                                         self->name);
                }
                return 0;
            }
            self->mp_len += got;
            self->offset += got;
        }
    }
    ssize_t len = getline (&self->text, &self->text_cap, self->file);
    if (len < 0) {
        if (ferror (self->file))
            return zf_error_set (err, ZF_EIO, "%s: %s", self->name, strerror (errno)) - 1;
        return 0;
    }
    self->offset += (uint64_t) len;
    self->line++;
    while (len > 0 && (self->text[len - 1] == '\n' || self->text[len - 1] == '\r'))
        self->text[--len] = 0;
    if (self->format == ZF_FORMAT_JSONL) {
        zf_error_t why;
        if (zf_json_to_msgpack (self->text, (size_t) len, &pk, &why))
            return zf_error_set (err, ZF_EVALUE, "%s:%llu: bad JSON: %s", self->name,
                                 (unsigned long long) self->line, why.text);
    }
    else
        zf_mp_pack_strn (&pk, self->text, (size_t) len);
    return 1;
}

//  Position and file offset after the items put so far, big-endian.
static void
s_checkpoint (self_t *self)
{
    uint8_t data[16];
    uint64_t offset = self->offset;
    if (self->file && self->format == ZF_FORMAT_MSGPACK)
        offset -= self->mp_len; // read ahead but not yet put
    for (int i = 0; i < 8; i++) {
        data[i] = (uint8_t) (self->position >> (56 - 8 * i));
        data[8 + i] = (uint8_t) (offset >> (56 - 8 * i));
    }
    zf_client_checkpoint (self->client, data, sizeof data);
}

//  Moves the source to the checkpoint the broker kept, if any.
static void
s_resume (self_t *self)
{
    size_t size;
    const uint8_t *data = (const uint8_t *) zf_client_resume_point (self->client, &size, 5000);
    if (!data || size != 16)
        return;
    uint64_t position = 0, offset = 0;
    for (int i = 0; i < 8; i++) {
        position = position << 8 | data[i];
        offset = offset << 8 | data[8 + i];
    }
    if (self->kind == S_FILE && self->file != stdin) {
        if (fseeko (self->file, (off_t) offset, SEEK_SET))
            return; // cannot seek: start over; dedup drops what was put already
        self->offset = offset;
    }
    self->position = position;
    if (self->kind == S_LIST)
        for (uint64_t i = 0; i < position && self->next_item; i++)
            self->next_item = zconfig_next (self->next_item);
    zsys_info ("%s: resuming at item %llu", self->args->conf->name, (unsigned long long) position);
}

//  Puts the group read so far, the checkpoint with its last item. Returns
//  0, or -1 if the session is closed.
static int
s_put_group (self_t *self)
{
    zf_group_t group = { .id = zf_id_source (self->group_source, self->group_first),
                         .size = self->group_count };
    size_t start = 0;
    for (uint32_t i = 0; i < self->group_count; i++) {
        group.index = i;
        zf_put_opts_t opts = { .id = &self->group_ids[i], .root = &group.id, .group = &group };
        if (i + 1 == self->group_count)
            s_checkpoint (self);
        if (zf_client_put_with (self->client, self->output, self->group_bodies.data + start,
                                self->group_ends[i] - start, &opts, NULL))
            return -1;
        start = self->group_ends[i];
    }
    self->group_count = 0;
    msgpack_sbuffer_clear (&self->group_bodies);
    return 0;
}

//  Puts the item just read (at position), or adds it to the group being
//  read. Returns 0, or -1 if the session is closed.
static int
s_put (self_t *self, uint64_t position)
{
    zf_id_t id = zf_id_source (self->source_id, position);
    if (!self->group_size) {
        s_checkpoint (self);
        return zf_client_put_id (self->client, self->output, &id, self->item.data, self->item.size);
    }
    if (self->group_count == 0)
        self->group_first = position;
    self->group_ids[self->group_count] = id;
    msgpack_sbuffer_write (&self->group_bodies, self->item.data, self->item.size);
    self->group_ends[self->group_count++] = self->group_bodies.size;
    return self->group_count == self->group_size ? s_put_group (self) : 0;
}

static int
s_open (self_t *self)
{
    zf_actor_conf_t *conf = self->args->conf;
    const zf_producer_settings_t *set = (const zf_producer_settings_t *) conf->settings;
    const char *source = set->source;
    self->format = (zf_producer_format_t) set->format;
    if (strncmp (source, "seq:", 4) == 0) {
        self->kind = S_SEQ;
        self->count = strtoull (source + 4, NULL, 10);
        self->name = strdup (source);
    }
    else if (streq (source, "list")) {
        self->kind = S_LIST;
        zconfig_t *items = set->items;
        self->next_item = items ? zconfig_child (items) : NULL;
        self->name = strdup ("items");
    }
    else {
        self->kind = S_FILE;
        if (streq (source, "stdin")) {
            self->file = stdin;
            self->name = strdup ("stdin");
        }
        else {
            self->name = zf_pipeline_path (self->args->pipeline, source);
            self->file = fopen (self->name, "rb");
            if (!self->file) {
                zsys_error ("%s: cannot read %s: %s", conf->name, self->name, strerror (errno));
                return -1;
            }
        }
        if (self->format == ZF_FORMAT_MSGPACK)
            self->mp = (uint8_t *) malloc (MSGPACK_BUFFER);
    }
    return 0;
}

static void
s_close (self_t *self)
{
    if (self->file && self->file != stdin)
        fclose (self->file);
    free (self->mp);
    free (self->text);
    free (self->name);
    free (self->group_ids);
    free (self->group_ends);
    msgpack_sbuffer_destroy (&self->item);
    msgpack_sbuffer_destroy (&self->group_bodies);
}

//  Waits until due (ms, monotonic) unless $TERM comes first: false then.
//  Keeps the session alive meanwhile, however long the wait.
static bool
s_pace (zsock_t *pipe, zf_client_t *client, int64_t due)
{
    for (int64_t wait; (wait = due - zclock_mono ()) > 0;) {
        zpoller_t *poller = zpoller_new (pipe, NULL);
        bool expired = zpoller_wait (poller, (int) (wait < 200 ? wait : 200)) == NULL;
        zpoller_destroy (&poller);
        if (!expired && zf_actor_stopping (pipe))
            return false;
        zf_client_pump (client, 0);
    }
    return true;
}

void
zf_producer_actor (zsock_t *pipe, void *args)
{
    self_t self = { .args = (zf_actor_args_t *) args };
    zf_actor_conf_t *conf = self.args->conf;
    const zf_producer_settings_t *set = (const zf_producer_settings_t *) conf->settings;
    snprintf (self.source_id, sizeof self.source_id, "%s/%s", self.args->pipeline->name,
              conf->name);
    self.output = conf->output;
    self.on_bad_line = (zf_bad_line_t) set->on_bad_line;
    self.rate = set->rate;
    msgpack_sbuffer_init (&self.item);
    msgpack_sbuffer_init (&self.group_bodies);
    self.group_size = (uint32_t) set->group_size;
    if (self.group_size) {
        snprintf (self.group_source, sizeof self.group_source, "%s#group", self.source_id);
        self.group_ids = (zf_id_t *) malloc (self.group_size * sizeof (zf_id_t));
        self.group_ends = (size_t *) malloc (self.group_size * sizeof (size_t));
    }
    zsock_signal (pipe, 0);
    if (s_open (&self)) {
        s_close (&self);
        zf_actor_exit (pipe, 1);
        return;
    }
    self.client = zf_actor_client (self.args, NULL, 0, pipe);
    if (!self.client) {
        s_close (&self);
        zf_actor_exit (pipe, ZF_EXIT_USAGE);
        return;
    }
    s_resume (&self);

    int status = 0;
    bool ended = false, stopped = false;
    double due = (double) zclock_mono (); // ms: fractions add up at high rates
    while (!ended && !stopped) {
        zf_error_t err;
        int rc = s_next (&self, &err);
        if (rc == 0) {
            ended = true;
            break;
        }
        uint64_t position = self.position++;
        if (rc == -2) {
            zsys_error ("%s: %s", conf->name, err.text);
            status = 1;
            break;
        }
        if (rc == -1) {
            zsys_warning ("%s: %s", conf->name, err.text);
            if (self.on_bad_line == ZF_BAD_LINE_STOP) {
                status = 1;
                break;
            }
            if (self.on_bad_line == ZF_BAD_LINE_DEAD) {
                // The reason, as a string, where a person will look.
                char queue[ZF_NAME_MAX + 8];
                snprintf (queue, sizeof queue, "%s.dead", self.output);
                msgpack_sbuffer_clear (&self.item);
                msgpack_packer pk;
                msgpack_packer_init (&pk, &self.item, msgpack_sbuffer_write);
                zf_mp_pack_cstr (&pk, err.text);
                zf_id_t id = zf_id_source (self.source_id, position);
                zf_client_put_id (self.client, queue, &id, self.item.data, self.item.size);
            }
            continue;
        }
        if (s_put (&self, position)) {
            stopped = true;
            break;
        }
        if (self.rate > 0) {
            due += 1000.0 / self.rate;
            stopped = !s_pace (pipe, self.client, (int64_t) due);
        }
        else if ((position & 255) == 0)
            stopped = zf_actor_stopping (pipe);
    }
    if (ended && self.group_count && s_put_group (&self))
        ended = false; // the session closed under it
    if (ended) {
        zf_client_end (self.client, self.position);
        zsys_info ("%s: source %s ended after %llu items", conf->name, self.name,
                   (unsigned long long) self.position);
    }
    else
        // What was sent is confirmed if the broker has room for it; what is
        // not is read again from the checkpoint by the next run: a stop
        // does not wait for consumers that are stopping too.
        zf_client_flush (self.client, STOP_FLUSH_MS);
    status = zf_actor_client_end (&self.client, status);
    s_close (&self);
    zf_actor_exit (pipe, status);
}

const zf_kind_t zf_producer_kind = {
    .name = "producer",
    .summary = "streams items from a file, stdin, a sequence or a list into a queue",
    .keys = s_keys,
    .settings_size = sizeof (zf_producer_settings_t),
    .flags = ZF_KIND_OUTPUT | ZF_KIND_SOURCE,
    .run = zf_producer_actor,
};
