/*  zf_journal: the broker's write-ahead log. See zf_journal.h.

    Why an append-only log and not an embedded store such as LMDB: a
    broker's state is a queue, where every item is written once and deleted
    soon after. A log turns that into sequential writes, shares one
    fdatasync among all the records of a loop turn (group commit), and never
    rewrites a page; a B-tree would write and later rewrite pages for every
    item and make each commit a synchronous meta-page flush. What a log must
    add, checksums, torn-tail detection and compaction, is what this file
    does.
*/
#include "zf_journal.h"
#include "zf_thread.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEGMENT_MAGIC   "ZFJ1"
#define SEGMENT_HEADER  16 // magic, u32 version, u32 flags, u32 reserved
#define SEGMENT_VERSION 1
#define FLAG_SNAPSHOT   1 // the segment opens with a snapshot
#define RECORD_HEADER   9 // u32 size, u32 crc, u8 type
#define SEGMENT_MAX     (64ull << 20)
#define BUFFER_MAX      (1u << 20) // records buffered before they are written anyway
#define RETRY_MIN_MS    100        // before the first try to write again after a failed write
#define RETRY_MAX_MS    5000       // between tries at most (the wait doubles from RETRY_MIN_MS)

struct _zf_journal_t {
    char *dir;             // the journal's folder
    int lock_fd;           // DIR/LOCK, flocked while open
    int fd;                // the segment appended to, or -1 before replay
    uint64_t segment;      // its number
    uint64_t segment_size; // bytes written to it
    uint64_t segment_max;  // size past which a snapshot is wanted
    uint64_t snapshot;     // bytes of the snapshot that opens it (0: none)
    zf_sync_t sync;        // the mode
    int64_t interval;      // ms between batch syncs
    uint8_t *buf;          // records appended, not yet written
    size_t len;            // bytes in buf
    size_t cap;            // allocated at buf
    size_t open_at;        // offset in buf of the record being filled, or SIZE_MAX
    uint64_t appended;     // position after the last record reserved
    uint64_t written;      // position up to which records are written
    uint64_t durable;      // position up to which records are durable
    zf_thread_t *syncer;   // the thread that calls fdatasync
    bool syncing;          // a sync is asked and not answered
    bool hurry;            // the next batch sync need not wait for its interval
    int64_t last_sync;     // ms, when the last sync was asked
    char *failed;          // why writing stopped, or NULL
    bool retry;            // it was a write: tried again, backing off
    int64_t failed_at;     // ms, when it last failed
    int64_t backoff;       // ms after failed_at that the write is tried again
    bool readonly;         // opened by zf_journal_open_readonly: writes nothing
};

//  --------------------------------------------------------------------------
//  CRC-32C: the SSE 4.2 instruction where there is one, else bit by bit
//  (slow, but only on machines without it).

#if defined(__x86_64__)
__attribute__ ((target ("sse4.2"))) static uint32_t
s_crc32c_sse42 (uint32_t crc, const uint8_t *p, size_t size)
{
    uint64_t c = ~crc;
    for (; size >= 8; size -= 8, p += 8) {
        uint64_t word;
        memcpy (&word, p, 8);
        c = __builtin_ia32_crc32di (c, word);
    }
    uint32_t c32 = (uint32_t) c;
    for (; size; size--)
        c32 = __builtin_ia32_crc32qi (c32, *p++);
    return ~c32;
}
#endif

static uint32_t
s_crc32c_bits (uint32_t crc, const uint8_t *p, size_t size)
{
    crc = ~crc;
    while (size--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

uint32_t
zf_crc32c (uint32_t crc, const void *data, size_t size)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports ("sse4.2"))
        return s_crc32c_sse42 (crc, (const uint8_t *) data, size);
#endif
    return s_crc32c_bits (crc, (const uint8_t *) data, size);
}

//  --------------------------------------------------------------------------
//  Little-endian fields

static uint32_t
s_get32 (const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void
s_put32 (uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

//  --------------------------------------------------------------------------
//  The syncer: a thread that calls fdatasync, so the broker's loop goes on
//  reading and appending while the disk works. Asked [SYNC][lsn][fd], it
//  answers [lsn][errno or 0].

static void
s_syncer (zsock_t *pipe, void *args)
{
    zsock_signal (pipe, 0);
    for (;;) {
        char *command = NULL;
        uint64_t lsn = 0;
        uint32_t fd = 0;
        if (zsock_recv (pipe, "s84", &command, &lsn, &fd) == -1 || !command ||
            streq (command, "$TERM")) {
            zstr_free (&command);
            break;
        }
        zstr_free (&command);
        int rc = fdatasync ((int) fd) == 0 ? 0 : errno;
        zsock_send (pipe, "84", lsn, (uint32_t) rc);
    }
}

//  --------------------------------------------------------------------------
//  Files

static char *
s_segment_path (zf_journal_t *self, uint64_t number)
{
    return zsys_sprintf ("%s/%016" PRIx64 ".zfj", self->dir, number);
}

//  Syncs the folder, so that files made or removed in it stay so.
static void
s_sync_dir (zf_journal_t *self)
{
    int fd = open (self->dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync (fd);
        close (fd);
    }
}

static int
s_write_all (int fd, const uint8_t *data, size_t size)
{
    while (size) {
        ssize_t n = write (fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        size -= (size_t) n;
    }
    return 0;
}

//  Writing can go on no more: confirms stop for good. (After a failed
//  fdatasync the kernel may have dropped the pages it could not write: what
//  was written cannot be trusted to be on disk.)
static void
s_fail (zf_journal_t *self, const char *what)
{
    if (self->retry) {
        // A write waiting to be tried again: this failure is the final word.
        int error = errno;
        zstr_free (&self->failed);
        errno = error;
        self->retry = false;
    }
    if (!self->failed) {
        self->failed = zsys_sprintf ("journal %s: %s: %s; confirms stop until the broker is "
                                     "restarted",
                                     self->dir, what, strerror (errno));
        zsys_error ("%s", self->failed);
    }
}

//  A write failed (a full disk, say). The records stay buffered, confirms
//  wait, and the write is tried again (s_retry) after RETRY_MIN_MS, the wait
//  doubling up to RETRY_MAX_MS.
static void
s_fail_write (zf_journal_t *self)
{
    self->failed_at = zclock_mono ();
    self->backoff = RETRY_MIN_MS;
    self->failed = zsys_sprintf ("journal %s: write failed: %s; confirms wait, and the write is "
                                 "tried again, every %d ms at most",
                                 self->dir, strerror (errno), RETRY_MAX_MS);
    self->retry = true;
    zsys_error ("%s", self->failed);
}

//  Writes a segment's header at fd's position. Returns 0 or -1.
static int
s_write_header (int fd, uint32_t flags)
{
    uint8_t header[SEGMENT_HEADER] = SEGMENT_MAGIC;
    s_put32 (header + 4, SEGMENT_VERSION);
    s_put32 (header + 8, flags);
    return s_write_all (fd, header, sizeof header);
}

//  Starts segment number with flags, and makes it the one appended to.
static int
s_segment_new (zf_journal_t *self, uint64_t number, uint32_t flags, zf_error_t *err)
{
    char *path = s_segment_path (self, number);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || s_write_header (fd, flags)) {
        zf_error_set (err, ZF_EIO, "cannot write %s: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        free (path);
        return -1;
    }
    free (path);
    if (self->fd >= 0)
        close (self->fd);
    self->fd = fd;
    self->segment = number;
    self->segment_size = SEGMENT_HEADER;
    self->snapshot = 0;
    return 0;
}

//  --------------------------------------------------------------------------
//  Open and destroy

//  Locks dir/LOCK: a writer (a broker, a repair) exclusively, noting its
//  pid in the file; a reader shared, opening the file read-only and
//  writing nothing. A reader of a folder without LOCK (a copy) reads
//  unlocked: *fd_p is -1. Returns 0, or -1 with err filled.
static int
s_lock (const char *dir, bool writer, int *fd_p, zf_error_t *err)
{
    char *path = zsys_sprintf ("%s/LOCK", dir);
    int fd = writer ? open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)
                    : open (path, O_RDONLY | O_CLOEXEC);
    free (path);
    *fd_p = -1;
    if (fd < 0 && !writer && errno == ENOENT)
        return 0;
    if (fd < 0)
        return zf_error_set (err, ZF_EIO, "cannot open %s/LOCK: %s", dir, strerror (errno));
    if (flock (fd, (writer ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
        if (writer && flock (fd, LOCK_SH | LOCK_NB) == 0) {
            // Only readers hold it: no broker runs, one is looking.
            zf_error_set (err, ZF_EIO,
                          "journal %s is being read (zflow status --state): try again once it "
                          "has finished",
                          dir);
            close (fd);
            return -1;
        }
        char holder[32] = "";
        ssize_t n = pread (fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = 0;
        holder[strcspn (holder, "\n")] = 0;
        zf_error_set (err, ZF_EIO, "journal %s is in use by %s broker%s%s", dir,
                      writer ? "another" : "a", holder[0] ? " (pid " : "", holder[0] ? holder : "");
        if (holder[0])
            strncat (err->text, ")", sizeof err->text - strlen (err->text) - 1);
        close (fd);
        return -1;
    }
    if (writer) {
        char pid[32];
        int pid_len = snprintf (pid, sizeof pid, "%d\n", (int) getpid ());
        if (ftruncate (fd, 0) == 0 && pwrite (fd, pid, (size_t) pid_len, 0) < 0)
            zsys_warning ("journal %s: cannot note the pid in LOCK", dir);
    }
    *fd_p = fd;
    return 0;
}

int
zf_journal_dir_create (const char *dir)
{
    if (!*dir) {
        errno = ENOENT;
        return -1;
    }
    char *path = strdup (dir);
    int rc = 0;
    // Each folder of the path in turn, the whole path last.
    for (char *slash = path + 1;; slash++) {
        bool last = *slash == 0;
        if (*slash != '/' && !last)
            continue;
        *slash = 0;
        if (mkdir (path, 0700) != 0 && errno != EEXIST) {
            rc = -1;
            break;
        }
        if (last)
            break;
        *slash = '/';
    }
    struct stat st;
    if (rc == 0 && stat (dir, &st) != 0)
        rc = -1;
    else if (rc == 0 && !S_ISDIR (st.st_mode)) {
        errno = ENOTDIR;
        rc = -1;
    }
    free (path);
    return rc;
}

zf_journal_t *
zf_journal_open (const char *dir, zf_sync_t sync, int64_t interval_ms, zf_error_t *err)
{
    if (zf_journal_dir_create (dir) != 0) {
        zf_error_set (err, ZF_EIO, "cannot make the journal folder %s: %s", dir, strerror (errno));
        return NULL;
    }
    int lock_fd;
    if (s_lock (dir, true, &lock_fd, err))
        return NULL;
    zf_journal_t *self = (zf_journal_t *) zmalloc (sizeof (zf_journal_t));
    self->dir = strdup (dir);
    self->lock_fd = lock_fd;
    self->fd = -1;
    self->sync = sync;
    self->interval = interval_ms > 0 ? interval_ms : 1;
    self->segment_max = SEGMENT_MAX;
    self->open_at = SIZE_MAX;
    self->syncer = zf_thread_new (s_syncer, NULL);
    return self;
}

zf_journal_t *
zf_journal_open_readonly (const char *dir, zf_error_t *err)
{
    struct stat st;
    if (stat (dir, &st) != 0) {
        zf_error_set (err, ZF_EIO, "no journal folder %s: %s", dir, strerror (errno));
        return NULL;
    }
    if (!S_ISDIR (st.st_mode)) {
        zf_error_set (err, ZF_EIO, "no journal folder %s: not a folder", dir);
        return NULL;
    }
    int lock_fd;
    if (s_lock (dir, false, &lock_fd, err))
        return NULL;
    zf_journal_t *self = (zf_journal_t *) zmalloc (sizeof (zf_journal_t));
    self->dir = strdup (dir);
    self->lock_fd = lock_fd;
    self->fd = -1;
    self->sync = ZF_SYNC_NEVER;
    self->interval = 1;
    self->segment_max = SEGMENT_MAX;
    self->open_at = SIZE_MAX;
    self->readonly = true; // and no syncer: nothing is ever written
    return self;
}

//  Waits for the sync in progress, if any.
static void
s_sync_wait (zf_journal_t *self)
{
    if (self->syncing)
        zf_journal_synced (self, INT64_MAX);
}

void
zf_journal_destroy (zf_journal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zf_journal_t *self = *self_p;
    if (self->fd >= 0) {
        zf_journal_commit (self, 0);
        s_sync_wait (self);
        if (self->sync != ZF_SYNC_NEVER && !self->failed)
            fdatasync (self->fd);
        close (self->fd);
    }
    zf_thread_destroy (&self->syncer);
    if (self->lock_fd >= 0)
        close (self->lock_fd); // releases the lock
    free (self->buf);
    free (self->failed);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Replay

typedef struct {
    uint64_t number;   // segment number
    char *path;        // its file
    const uint8_t *at; // mapped bytes, or NULL when empty
    size_t size;       // bytes
    uint32_t flags;    // from its header
} s_segment_t;

static int
s_number_cmp (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

//  The segment numbers in the folder, sorted; caller frees. -1 on error.
static int
s_list (zf_journal_t *self, uint64_t **numbers_p, size_t *count_p, zf_error_t *err)
{
    DIR *dir = opendir (self->dir);
    if (!dir)
        return zf_error_set (err, ZF_EIO, "cannot read %s: %s", self->dir, strerror (errno));
    uint64_t *numbers = NULL;
    size_t count = 0, cap = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        const char *name = entry->d_name;
        if (strlen (name) != 20 || !streq (name + 16, ".zfj") ||
            strspn (name, "0123456789abcdef") != 16)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            numbers = (uint64_t *) realloc (numbers, cap * sizeof *numbers);
        }
        numbers[count++] = strtoull (name, NULL, 16);
    }
    closedir (dir);
    if (count)
        qsort (numbers, count, sizeof *numbers, s_number_cmp);
    *numbers_p = numbers;
    *count_p = count;
    return 0;
}

static void
s_segment_close (s_segment_t *segment)
{
    if (segment->at)
        munmap ((void *) segment->at, segment->size);
    free (segment->path);
    memset (segment, 0, sizeof *segment);
}

static int
s_segment_map (zf_journal_t *self, uint64_t number, s_segment_t *segment, zf_error_t *err)
{
    memset (segment, 0, sizeof *segment);
    segment->number = number;
    segment->path = s_segment_path (self, number);
    int fd = open (segment->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) != 0) {
        zf_error_set (err, ZF_EIO, "cannot read %s: %s", segment->path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    segment->size = (size_t) st.st_size;
    if (segment->size) {
        void *at = mmap (NULL, segment->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (at == MAP_FAILED) {
            close (fd);
            return zf_error_set (err, ZF_EIO, "cannot map %s: %s", segment->path, strerror (errno));
        }
        segment->at = (const uint8_t *) at;
    }
    close (fd);
    if (segment->size >= SEGMENT_HEADER && memcmp (segment->at, SEGMENT_MAGIC, 4) == 0 &&
        s_get32 (segment->at + 4) == SEGMENT_VERSION)
        segment->flags = s_get32 (segment->at + 8);
    return 0;
}

static bool
s_all_zero (const uint8_t *p, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (p[i])
            return false;
    return true;
}

static bool
s_type_known (uint8_t type)
{
    return type > 0 && type < ZF_JR_TYPE_COUNT;
}

//  --------------------------------------------------------------------------
//  The CRC-32C of any range of a segment in about constant time, so that
//  the scan after a bad record costs one pass over the bytes however many
//  candidate records it checks (checking each with a CRC over its own
//  bytes costs about the cube of a torn record's size: near a minute for
//  64 MiB of random bytes, hours for 19 MiB of 0x01 bytes, a record
//  header at every offset). crc32c (B) = crc32c (A B) ^ crc32c (A) x^(8|B|)
//  modulo the polynomial (zlib's crc32_combine), so the CRC of [a, b) comes
//  from the CRCs of the prefixes [0, a) and [0, b), and those come from one
//  kept every CRC_MARK bytes.

#define CRC_POLY 0x82F63B78u // CRC-32C, reflected: bit 31 is x^0
#define CRC_MARK 512         // bytes between prefix CRCs kept

typedef struct {
    const uint8_t *data; // the bytes, from where the prefixes start
    size_t size;         // how many
    uint32_t *marks;     // crc32c of data[0, i * CRC_MARK), for i < count
    size_t count;        // marks computed so far
    uint32_t x2n[40];    // x^(2^k) modulo the polynomial
    uint64_t power_n;    // the last n asked of s_crcs_power
    uint32_t power;      // x^(8 n) for it
} s_crcs_t;

//  a (not 0) times b, modulo the polynomial (zlib's multmodp).
static uint32_t
s_multmodp (uint32_t a, uint32_t b)
{
    uint32_t m = 1u << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0)
                break;
        }
        m >>= 1;
        b = b & 1 ? (b >> 1) ^ CRC_POLY : b >> 1;
    }
    return p;
}

//  Ready to give CRCs of ranges of data; -1 if out of memory.
static int
s_crcs_init (s_crcs_t *self, const uint8_t *data, size_t size)
{
    memset (self, 0, sizeof *self);
    self->data = data;
    self->size = size;
    self->marks = (uint32_t *) malloc ((size / CRC_MARK + 1) * sizeof (uint32_t));
    if (!self->marks)
        return -1;
    self->marks[0] = 0;
    self->count = 1;
    uint32_t p = 1u << 30; // x^1
    for (size_t k = 0; k < sizeof self->x2n / sizeof self->x2n[0]; k++) {
        self->x2n[k] = p;
        p = s_multmodp (p, p);
    }
    self->power_n = 0;
    self->power = 1u << 31; // x^0
    return 0;
}

//  x^(8 n) modulo the polynomial. Scans ask the same n over and over (a
//  run of like bytes): the last is kept.
static uint32_t
s_crcs_power (s_crcs_t *self, uint64_t n)
{
    if (n != self->power_n) {
        self->power_n = n;
        uint32_t p = 1u << 31;
        for (size_t k = 3; n; n >>= 1, k++)
            if (n & 1)
                p = s_multmodp (self->x2n[k], p);
        self->power = p;
    }
    return self->power;
}

//  crc32c of data[0, at).
static uint32_t
s_crcs_prefix (s_crcs_t *self, size_t at)
{
    size_t mark = at / CRC_MARK;
    for (; self->count <= mark; self->count++)
        self->marks[self->count] = zf_crc32c (self->marks[self->count - 1],
                                              self->data + (self->count - 1) * CRC_MARK, CRC_MARK);
    return zf_crc32c (self->marks[mark], self->data + mark * CRC_MARK, at - mark * CRC_MARK);
}

//  crc32c of data[from, to).
static uint32_t
s_crcs_range (s_crcs_t *self, size_t from, size_t to)
{
    uint32_t head = s_crcs_prefix (self, from);
    return s_crcs_prefix (self, to) ^ s_multmodp (s_crcs_power (self, to - from), head);
}

//  --------------------------------------------------------------------------
//  Torn or corrupt

//  Candidates the scan after a bad record checks by their CRC at most: far
//  more than random bytes give (131,000 in a torn 1 GiB record, growing as
//  the square of its size), fewer than a run of record-like bytes can
//  (19 MiB of 0x01 bytes give 3 million; the limit is reached in 0.3 s).
#define SCAN_CHECKS (1u << 22)

typedef enum {
    S_TORN,     // a write cut short: never confirmed, to be cut off
    S_WHOLE,    // the bad record is whole: a checksum or type that is wrong
    S_FOLLOWED, // a whole record follows the bad one
    S_UNSURE    // too many record-like bytes follow to check them all
} s_tail_t;

//  Whether the record at p, with left bytes to the end, is whole: its size
//  fits, its type is known, its checksum matches.
static bool
s_whole (const uint8_t *p, size_t left)
{
    if (left < RECORD_HEADER)
        return false;
    uint64_t size = s_get32 (p);
    return size <= left - RECORD_HEADER && s_type_known (p[8]) &&
           zf_crc32c (0, p + 8, 1 + size) == s_get32 (p + 4);
}

//  Whether a whole record starts anywhere after at, in data[0, end) whose
//  bytes from nonzero on are all zero. Cheap tests first (the size fits,
//  the type is known, and so is the type of the record after it, unless
//  that one is cut short), the CRC last. S_FOLLOWED (*follow the offset),
//  S_TORN (none), or S_UNSURE.
static s_tail_t
s_scan (const uint8_t *data, size_t at, size_t nonzero, size_t end, size_t *follow)
{
    s_crcs_t crcs;
    bool ready = false;
    s_tail_t verdict = S_TORN;
    uint32_t checks = 0;
    // A record's type byte is not zero: it lies before nonzero.
    for (size_t o = at + 1; o + 8 < nonzero; o++) {
        uint64_t size = s_get32 (data + o);
        if (size > end - o - RECORD_HEADER || !s_type_known (data[o + 8]))
            continue;
        size_t next = o + RECORD_HEADER + (size_t) size;
        if (next + RECORD_HEADER <= nonzero && !s_type_known (data[next + 8]))
            continue;
        if (!ready && s_crcs_init (&crcs, data + at, end - at)) {
            verdict = S_UNSURE; // out of memory: cannot tell
            break;
        }
        ready = true;
        if (++checks > SCAN_CHECKS) {
            verdict = S_UNSURE;
            break;
        }
        if (s_crcs_range (&crcs, o + 8 - at, next - at) == s_get32 (data + o + 4)) {
            *follow = o;
            verdict = S_FOLLOWED;
            break;
        }
    }
    if (ready)
        free (crcs.marks);
    return verdict;
}

//  Whether the bad record at at, in the last segment, is a torn tail. A
//  crash in the middle of a write leaves a prefix of what it wrote: the
//  file ends inside its last record, perhaps followed by zeros where the
//  file system had extended the file. So a bad record is torn only when it
//  is cut short (the file, its zeros at the end set aside, ends inside it)
//  and no whole record follows it. A flipped bit leaves the records after
//  it: a whole record whose checksum fails, or a size grown past the end
//  with whole records after it, is corruption. *follow: where a whole
//  record after it starts, when one was seen (else SIZE_MAX).
static s_tail_t
s_tail (const s_segment_t *segment, size_t at, size_t *follow)
{
    const uint8_t *data = segment->at;
    size_t end = segment->size, nonzero = end;
    while (nonzero > at && data[nonzero - 1] == 0)
        nonzero--;
    *follow = SIZE_MAX;
    if (nonzero - at >= RECORD_HEADER &&
        at + RECORD_HEADER + (uint64_t) s_get32 (data + at) <= nonzero) {
        size_t next = at + RECORD_HEADER + s_get32 (data + at);
        if (next < end && s_whole (data + next, end - next))
            *follow = next;
        return S_WHOLE;
    }
    return s_scan (data, at, nonzero, end, follow);
}

//  Walks the records of segment, calling fn on each (fn NULL: only
//  checks) and counting them in report (unless NULL). On the last segment
//  a torn tail ends the walk. *good is where the walk stopped: the end of
//  the last whole record, where a torn tail or a bad record starts (0 when
//  the segment's header itself is bad). A bad record (or header) fails
//  with err, ZF_EVALUE for corruption. *ended is set if a SNAPSHOT_END
//  record was seen.
static int
s_walk (s_segment_t *segment, bool last, zf_journal_fn *fn, void *arg, zf_journal_report_t *report,
        size_t *good, bool *ended, zf_error_t *err)
{
    *good = 0;
    if (ended)
        *ended = false;
    const char *how = "move the journal folder aside to start empty, or restore it";
    if (segment->size < SEGMENT_HEADER) {
        if (last && s_all_zero (segment->at, segment->size))
            return 0; // the header itself was torn: an empty segment
        return zf_error_set (err, ZF_EVALUE, "journal %s: %zu bytes, not a segment (corrupt); %s",
                             segment->path, segment->size, how);
    }
    if (memcmp (segment->at, SEGMENT_MAGIC, 4) != 0)
        return zf_error_set (err, ZF_EVALUE, "journal %s: not a zflow journal segment; %s",
                             segment->path, how);
    if (s_get32 (segment->at + 4) != SEGMENT_VERSION)
        return zf_error_set (err, ZF_EVERSION,
                             "journal %s: segment version %u; this zflow reads version %d",
                             segment->path, s_get32 (segment->at + 4), SEGMENT_VERSION);
    size_t at = SEGMENT_HEADER;
    while (at < segment->size) {
        size_t left = segment->size - at;
        const uint8_t *p = segment->at + at;
        const char *problem = NULL;
        uint64_t size = 0;
        if (left < RECORD_HEADER)
            problem = "a record header cut short";
        else {
            size = s_get32 (p);
            if (size > left - RECORD_HEADER)
                problem = "a record cut short";
            else if (zf_crc32c (0, p + 8, 1 + size) != s_get32 (p + 4))
                problem = "a checksum mismatch";
            else if (!s_type_known (p[8]))
                problem = "an unknown record type";
        }
        if (problem) {
            *good = at;
            size_t follow = SIZE_MAX;
            s_tail_t tail = last ? s_tail (segment, at, &follow) : S_WHOLE;
            if (tail == S_TORN) {
                if (report)
                    report->torn += left;
                return 0;
            }
            char why[80] = "";
            if (follow != SIZE_MAX)
                snprintf (why, sizeof why, ": a whole record follows at byte %zu", follow);
            else if (tail == S_WHOLE && last)
                snprintf (why, sizeof why, ": the record is whole, not cut short");
            else if (tail == S_UNSURE)
                snprintf (why, sizeof why, ": too many record-like bytes follow to tell it torn");
            return zf_error_set (err, ZF_EVALUE,
                                 "journal %s: %s at byte %zu (corrupt%s); the broker will not "
                                 "start on a corrupt journal",
                                 segment->path, problem, at, why);
        }
        zf_jr_type_t type = (zf_jr_type_t) p[8];
        if (type == ZF_JR_SNAPSHOT_END && ended)
            *ended = true;
        if (type != ZF_JR_SNAPSHOT_END) {
            zf_error_t why;
            if (fn && fn (arg, type, p + RECORD_HEADER, (size_t) size, &why)) {
                *good = at;
                return zf_error_set (err, ZF_EVALUE,
                                     "journal %s: record at byte %zu: %s (corrupt); the broker "
                                     "will not start on a corrupt journal",
                                     segment->path, at, why.text);
            }
            if (report)
                report->records++;
        }
        at += RECORD_HEADER + (size_t) size;
    }
    *good = at;
    return 0;
}

static void
s_unlink_segment (zf_journal_t *self, uint64_t number)
{
    char *path = s_segment_path (self, number);
    if (unlink (path) != 0 && errno != ENOENT)
        zsys_warning ("journal: cannot remove %s: %s", path, strerror (errno));
    free (path);
}

//  What reading a journal found: what a writer then changes, or where a
//  repair cuts.
typedef struct {
    uint64_t *numbers; // the segment numbers in the folder, in order
    size_t total;      // how many
    size_t count;      // those up to count are the journal; after it, unfinished snapshots
    size_t start;      // the first read: the newest snapshot (those before it are replaced)
    size_t bad;        // the segment where a bad record stopped the read, or SIZE_MAX
    size_t good;       // in it, or in the last segment read, where the walk stopped
    uint32_t flags;    // the last segment's flags
} s_read_t;

//  Reads the journal without writing anything: fn on each record, the
//  report filled. Returns 0, or -1 with err (read->bad says where, if it
//  was a bad record or header). Free read->numbers.
static int
s_read (zf_journal_t *self, zf_journal_fn *fn, void *arg, zf_journal_report_t *report,
        s_read_t *read, zf_error_t *err)
{
    memset (read, 0, sizeof *read);
    read->bad = SIZE_MAX;
    if (s_list (self, &read->numbers, &read->total, err))
        return -1;
    read->count = read->total;
    s_segment_t segment = { 0 };
    int rc = -1;

    // An unfinished snapshot (the broker died writing it) can only be the
    // last segment, and the ones before it are whole: it is left out (a
    // writer deletes it). A corrupt one is refused like any corrupt segment.
    while (read->count > 1) {
        size_t last = read->count - 1;
        if (s_segment_map (self, read->numbers[last], &segment, err))
            goto done;
        bool ended = true;
        bool snapshot = segment.flags & FLAG_SNAPSHOT;
        if (snapshot && s_walk (&segment, true, NULL, NULL, NULL, &read->good, &ended, err)) {
            read->bad = last;
            goto done;
        }
        s_segment_close (&segment);
        if (!snapshot || ended)
            break;
        read->count--;
    }
    // Read from the newest snapshot on; what is older was compacted into it.
    for (size_t i = read->count; i-- > 0;) {
        if (s_segment_map (self, read->numbers[i], &segment, err))
            goto done;
        bool snapshot = segment.flags & FLAG_SNAPSHOT;
        s_segment_close (&segment);
        if (snapshot) {
            read->start = i;
            break;
        }
    }
    read->good = 0;
    for (size_t i = read->start; i < read->count; i++) {
        if (s_segment_map (self, read->numbers[i], &segment, err))
            goto done;
        bool last = i + 1 == read->count;
        if (s_walk (&segment, last, fn, arg, report, &read->good, NULL, err)) {
            read->bad = i;
            goto done;
        }
        report->segments++;
        report->bytes += segment.size;
        read->flags = segment.flags;
        s_segment_close (&segment);
    }
    rc = 0;
done:
    s_segment_close (&segment);
    return rc;
}

//  After a whole read, readies a writer's journal for appending: deletes
//  the unfinished snapshots and the segments replaced by a snapshot, cuts
//  a torn tail off the last segment, and opens it. Returns 0 or -1.
static int
s_ready (zf_journal_t *self, s_read_t *read, zf_journal_report_t *report, zf_error_t *err)
{
    for (size_t i = read->count; i < read->total; i++) {
        char *path = s_segment_path (self, read->numbers[i]);
        zsys_warning ("journal %s: dropped an unfinished snapshot", path);
        free (path);
        s_unlink_segment (self, read->numbers[i]);
    }
    for (size_t i = 0; i < read->start; i++)
        s_unlink_segment (self, read->numbers[i]);
    if (read->count == 0) {
        if (s_segment_new (self, 1, 0, err))
            return -1;
        s_sync_dir (self);
        return 0;
    }
    // Append to the last segment, after its last good record.
    size_t good = read->good;
    char *path = s_segment_path (self, read->numbers[read->count - 1]);
    if (report->torn)
        zsys_warning ("journal %s: cut a torn record of %" PRIu64
                      " bytes from the end (written as the broker stopped, never confirmed)",
                      path, report->torn);
    int rc = -1;
    int fd = open (path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate (fd, (off_t) (good < SEGMENT_HEADER ? 0 : good)) != 0) {
        zf_error_set (err, ZF_EIO, "cannot open %s to append: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        goto done;
    }
    self->fd = fd;
    self->segment = read->numbers[read->count - 1];
    self->segment_size = good;
    if (good < SEGMENT_HEADER) {
        // Its header was torn: write it again.
        if (lseek (fd, 0, SEEK_SET) != 0 || s_write_header (fd, 0)) {
            zf_error_set (err, ZF_EIO, "cannot write %s: %s", path, strerror (errno));
            goto done;
        }
        self->segment_size = SEGMENT_HEADER;
    }
    if (lseek (fd, (off_t) self->segment_size, SEEK_SET) < 0) {
        zf_error_set (err, ZF_EIO, "cannot seek %s: %s", path, strerror (errno));
        goto done;
    }
    if (read->flags & FLAG_SNAPSHOT)
        self->snapshot = self->segment_size; // what follows the snapshot is new
    rc = 0;
done:
    free (path);
    return rc;
}

int
zf_journal_replay (zf_journal_t *self, zf_journal_fn *fn, void *arg, zf_journal_report_t *report,
                   zf_error_t *err)
{
    zf_journal_report_t local = { 0 };
    if (!report)
        report = &local;
    memset (report, 0, sizeof *report);
    int64_t started = zclock_mono ();
    // Nothing is written until all of the journal has read well: a
    // journal refused is left as it was found.
    s_read_t read;
    int rc = s_read (self, fn, arg, report, &read, err);
    if (rc == 0 && !self->readonly)
        rc = s_ready (self, &read, report, err);
    free (read.numbers);
    report->elapsed_ms = zclock_mono () - started;
    return rc;
}

//  --------------------------------------------------------------------------
//  Appending

//  Finishes the record being filled: its checksum.
static void
s_seal (zf_journal_t *self)
{
    if (self->open_at == SIZE_MAX)
        return;
    uint8_t *p = self->buf + self->open_at;
    s_put32 (p + 4, zf_crc32c (0, p + 8, 1 + (size_t) s_get32 (p)));
    self->open_at = SIZE_MAX;
}

//  Writes the records buffered. Returns 0 or -1.
static int
s_write_out (zf_journal_t *self)
{
    if (s_write_all (self->fd, self->buf, self->len))
        return -1;
    self->written += self->len;
    self->segment_size += self->len;
    self->len = 0;
    return 0;
}

//  Writes the records buffered (not asking for a sync). Returns 0 or -1.
static int
s_write_buffered (zf_journal_t *self)
{
    if (self->failed || !self->len)
        return self->failed ? -1 : 0;
    if (s_write_out (self)) {
        s_fail_write (self);
        return -1;
    }
    return 0;
}

uint8_t *
zf_journal_reserve (zf_journal_t *self, zf_jr_type_t type, size_t size)
{
    assert (size <= ZF_JOURNAL_RECORD_MAX);
    assert (!self->readonly);
    s_seal (self);
    // A busy turn or a snapshot writes as it goes: the buffer stays small.
    if (self->len >= BUFFER_MAX)
        s_write_buffered (self);
    size_t need = self->len + RECORD_HEADER + size;
    if (need > self->cap) {
        size_t cap = self->cap ? self->cap : 64 * 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *grown = (uint8_t *) realloc (self->buf, cap);
        if (!grown) {
            zsys_error ("journal %s: out of memory for %zu bytes of records", self->dir, cap);
            abort ();
        }
        self->buf = grown;
        self->cap = cap;
    }
    uint8_t *p = self->buf + self->len;
    s_put32 (p, (uint32_t) size);
    p[8] = (uint8_t) type;
    self->open_at = self->len;
    self->len = need;
    self->appended += RECORD_HEADER + size;
    return p + RECORD_HEADER;
}

uint64_t
zf_journal_appended (zf_journal_t *self)
{
    return self->appended;
}

uint64_t
zf_journal_durable (zf_journal_t *self)
{
    return self->durable;
}

static void
s_ask_sync (zf_journal_t *self, int64_t now)
{
    if (self->syncing || self->failed || self->durable == self->written)
        return;
    if (self->sync == ZF_SYNC_BATCH && !self->hurry && now - self->last_sync < self->interval)
        return; // zf_journal_due tells the loop when
    zsock_send (zf_thread_sock (self->syncer), "s84", "SYNC", self->written, (uint32_t) self->fd);
    self->syncing = true;
    self->hurry = false;
    self->last_sync = now;
}

//  After a failed write, once its backoff has passed: cuts off what the
//  failed write left of a record and lets the buffered records be written
//  again.
static void
s_retry (zf_journal_t *self, int64_t now_ms)
{
    if (!self->retry || now_ms - self->failed_at < self->backoff)
        return;
    self->failed_at = now_ms;
    if (ftruncate (self->fd, (off_t) self->segment_size) ||
        lseek (self->fd, (off_t) self->segment_size, SEEK_SET) < 0 || s_write_out (self)) {
        // Not yet: quietly (the failure was told), and less often.
        self->backoff = self->backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : self->backoff * 2;
        return;
    }
    zsys_info ("journal %s: writing again; confirms go on", self->dir);
    zstr_free (&self->failed);
    self->retry = false;
}

int
zf_journal_commit (zf_journal_t *self, int64_t now_ms)
{
    s_seal (self);
    s_retry (self, now_ms);
    if (s_write_buffered (self))
        return -1;
    if (self->cap > 2 * BUFFER_MAX) {
        // One large record grew it: give the memory back.
        free (self->buf);
        self->buf = NULL;
        self->cap = 0;
    }
    if (self->sync == ZF_SYNC_NEVER)
        self->durable = self->written;
    else
        s_ask_sync (self, now_ms);
    return 0;
}

zsock_t *
zf_journal_pipe (zf_journal_t *self)
{
    return zf_thread_sock (self->syncer);
}

void
zf_journal_synced (zf_journal_t *self, int64_t now_ms)
{
    uint64_t lsn = 0;
    uint32_t rc = 0;
    if (zsock_recv (zf_thread_sock (self->syncer), "84", &lsn, &rc) == -1)
        return;
    self->syncing = false;
    if (rc) {
        errno = (int) rc;
        s_fail (self, "fdatasync failed");
        return;
    }
    if (lsn > self->durable)
        self->durable = lsn;
    if (self->durable == self->written)
        self->hurry = false; // nothing waits: the next sync may wait its interval
    if (now_ms != INT64_MAX)
        s_ask_sync (self, now_ms);
}

void
zf_journal_hurry (zf_journal_t *self)
{
    self->hurry = true;
}

int64_t
zf_journal_due (zf_journal_t *self, int64_t now_ms)
{
    if (self->retry) {
        int64_t wait = self->failed_at + self->backoff - now_ms;
        return wait > 0 ? wait : 0;
    }
    if (self->sync != ZF_SYNC_BATCH || self->syncing || self->failed ||
        self->durable == self->written)
        return -1;
    int64_t wait = self->last_sync + self->interval - now_ms;
    return wait > 0 && !self->hurry ? wait : 0;
}

const char *
zf_journal_failed (zf_journal_t *self)
{
    return self->failed;
}

//  --------------------------------------------------------------------------
//  Snapshots

void
zf_journal_set_segment_max (zf_journal_t *self, uint64_t bytes)
{
    self->segment_max = bytes;
}

bool
zf_journal_wants_snapshot (zf_journal_t *self)
{
    // Grown past the limit and past the snapshot's own size: compaction
    // then costs at most as much as the writing that made it needed.
    uint64_t grown = self->segment_size - self->snapshot;
    return !self->failed && grown > self->segment_max && grown > self->snapshot;
}

//  Writes what is appended and puts it on disk now (not in mode never).
static int
s_flush_now (zf_journal_t *self, zf_error_t *err)
{
    if (zf_journal_commit (self, 0))
        return zf_error_set (err, ZF_EIO, "%s", self->failed);
    s_sync_wait (self);
    if (self->sync != ZF_SYNC_NEVER && fdatasync (self->fd) != 0) {
        s_fail (self, "fdatasync failed");
        return zf_error_set (err, ZF_EIO, "%s", self->failed);
    }
    self->durable = self->written;
    return 0;
}

int
zf_journal_snapshot_begin (zf_journal_t *self, zf_error_t *err)
{
    assert (!self->readonly);
    if (s_flush_now (self, err))
        return -1;
    if (s_segment_new (self, self->segment + 1, FLAG_SNAPSHOT, err)) {
        s_fail (self, "cannot start a snapshot segment");
        return -1;
    }
    return 0;
}

int
zf_journal_snapshot_end (zf_journal_t *self, zf_error_t *err)
{
    zf_journal_reserve (self, ZF_JR_SNAPSHOT_END, 0);
    if (s_flush_now (self, err))
        return -1;
    s_sync_dir (self); // the new segment exists before the old go
    self->snapshot = self->segment_size;
    uint64_t *numbers = NULL;
    size_t count = 0;
    if (s_list (self, &numbers, &count, err) == 0) {
        for (size_t i = 0; i < count; i++)
            if (numbers[i] < self->segment)
                s_unlink_segment (self, numbers[i]);
        s_sync_dir (self);
    }
    free (numbers);
    return 0;
}

int
zf_journal_remove (const char *dir, zf_error_t *err)
{
    zf_journal_t *self = zf_journal_open (dir, ZF_SYNC_NEVER, 1, err);
    if (!self)
        return -1;
    uint64_t *numbers = NULL;
    size_t count = 0;
    int rc = s_list (self, &numbers, &count, err);
    for (size_t i = 0; rc == 0 && i < count; i++)
        s_unlink_segment (self, numbers[i]);
    free (numbers);
    char *lock = zsys_sprintf ("%s/LOCK", dir);
    unlink (lock);
    free (lock);
    zf_journal_destroy (&self);
    rmdir (dir); // left alone if anything else is in it
    return rc;
}

//  --------------------------------------------------------------------------
//  Repair

//  Writes data[0, size) into a new file at path and syncs it. Returns 0, or
//  -1 with err (and no file).
static int
s_copy_out (const uint8_t *data, size_t size, const char *path, zf_error_t *err)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return zf_error_set (err, ZF_EIO, "cannot make %s: %s", path, strerror (errno));
    if (s_write_all (fd, data, size) || fsync (fd) != 0) {
        zf_error_set (err, ZF_EIO, "cannot write %s: %s", path, strerror (errno));
        close (fd);
        unlink (path);
        return -1;
    }
    close (fd);
    return 0;
}

//  A name for a file to be made: -1 with err if something has it (a copy
//  an earlier repair made: never overwritten).
static int
s_name_free (const char *path, zf_error_t *err)
{
    struct stat st;
    if (lstat (path, &st) == 0)
        return zf_error_set (
            err, ZF_EIO, "%s exists (from an earlier repair?): move it aside, then repair again",
            path);
    return 0;
}

int
zf_journal_repair (const char *dir, bool drop_later, zf_journal_fn *check, void *arg,
                   zf_journal_repair_t *report, zf_error_t *err)
{
    memset (report, 0, sizeof *report);
    zf_journal_t self = { .dir = (char *) dir, .fd = -1, .lock_fd = -1, .readonly = true };
    uint64_t *numbers = NULL;
    size_t total = 0;
    // No LOCK made in a folder that is not a journal (a mistyped path).
    if (s_list (&self, &numbers, &total, err))
        return -1;
    free (numbers);
    if (total == 0)
        return zf_error_set (err, ZF_EIO, "%s holds no journal segments", dir);
    if (s_lock (dir, true, &self.lock_fd, err))
        return -1;

    int rc = -1;
    s_read_t read = { 0 }, after = { 0 };
    s_segment_t segment = { 0 };
    char *path = NULL, *target = NULL;
    zf_journal_report_t found = { 0 };
    if (s_read (&self, check, arg, &found, &read, err) == 0) {
        report->records = found.records; // nothing to cut: a torn tail is the broker's
        report->torn = found.torn;
        rc = 0;
        goto done;
    }
    if (read.bad == SIZE_MAX || err->code != ZF_EVALUE)
        goto done; // it could not be read (a file, a version): nothing to cut
    if (read.good < SEGMENT_HEADER) {
        char text[sizeof err->text];
        snprintf (text, sizeof text, "%s", err->text);
        zf_error_set (err, ZF_EVALUE, "%s; a repair cuts bad records, not a segment's header",
                      text);
        goto done;
    }
    report->corrupt = true;
    path = s_segment_path (&self, read.numbers[read.bad]);
    snprintf (report->file, sizeof report->file, "%s", path);
    report->offset = read.good;
    snprintf (report->problem, sizeof report->problem, "%s", err->text);
    for (size_t i = read.bad + 1; i < read.count; i++) {
        char *later = s_segment_path (&self, read.numbers[i]);
        struct stat st;
        if (stat (later, &st) == 0)
            report->later_size += (uint64_t) st.st_size;
        report->later++;
        free (later);
    }
    if (report->later && !drop_later) {
        zf_error_set (err, ZF_EVALUE,
                      "%s is not the last segment: cutting it drops the %" PRIu64
                      " segments after it too; not done",
                      path, report->later);
        goto done;
    }
    if (s_segment_map (&self, read.numbers[read.bad], &segment, err))
        goto done;
    snprintf (report->cut_file, sizeof report->cut_file, "%s.cut-%zu", path, read.good);
    report->kept = read.good;
    report->cut = segment.size - read.good;
    // Every name is checked free before anything changes.
    if (s_name_free (report->cut_file, err))
        goto done;
    for (size_t i = read.bad + 1; i < read.count; i++) {
        char *later = s_segment_path (&self, read.numbers[i]);
        zstr_free (&target);
        target = zsys_sprintf ("%s.cut-0", later);
        free (later);
        if (s_name_free (target, err))
            goto done;
    }
    // The later segments go aside first, newest first, then the cut bytes
    // are copied, then cut: at each step the journal is a prefix of what
    // it was, and a repair stopped half way can be run again.
    for (size_t i = read.count; i-- > read.bad + 1;) {
        char *later = s_segment_path (&self, read.numbers[i]);
        zstr_free (&target);
        target = zsys_sprintf ("%s.cut-0", later);
        int moved = rename (later, target);
        free (later);
        if (moved != 0) {
            zf_error_set (err, ZF_EIO, "cannot move %s aside: %s", target, strerror (errno));
            goto done;
        }
    }
    if (s_copy_out (segment.at + read.good, (size_t) report->cut, report->cut_file, err))
        goto done;
    s_sync_dir (&self); // the copies exist before the cut
    int fd = open (path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate (fd, (off_t) read.good) != 0 || fsync (fd) != 0) {
        zf_error_set (err, ZF_EIO, "cannot cut %s: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        goto done;
    }
    close (fd);
    report->repaired = true;
    // What a broker reads now.
    memset (&found, 0, sizeof found);
    if (s_read (&self, check, arg, &found, &after, err))
        goto done;
    report->records = found.records;
    rc = 0;
done:
    s_segment_close (&segment);
    free (read.numbers);
    free (after.numbers);
    free (path);
    zstr_free (&target);
    close (self.lock_fd);
    return rc;
}
