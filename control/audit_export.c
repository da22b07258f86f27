/* The audit trail's export to object storage and its verification (control/audit_export.h). */
#include "control/audit_export.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"
#include "control/audit.h"
#include "domain/audit.h"

#define DESTS_MAX 2
#define MARK_PREFIX "audit_export_"
#define LOCAL_DIR "_updraft/audit"

/* ---- destinations: an S3 backend, or the local storage directory ---- */

typedef struct {
    const char *name;           /* "r2", "s3", "local": in logs, metrics and the mark's name */
    const upd_s3_backend_t *b;  /* NULL: local */
    const upd_s3_timeouts_t *t;
    int dir_fd;                 /* local: the storage directory */
} dest_t;

static void
mark_name(const dest_t *d, char out[64])
{
    snprintf(out, 64, MARK_PREFIX "%s", d->name);
}

/* Creates STORAGE/_updraft/audit (and its parent) when absent. @return 0 or UPD_EIO (errno set) */
static int
local_mkdirs(int dir_fd)
{
    if (mkdirat(dir_fd, "_updraft", 0700) != 0 && errno != EEXIST)
        return UPD_EIO;
    if (mkdirat(dir_fd, LOCAL_DIR, 0700) != 0 && errno != EEXIST)
        return UPD_EIO;
    return 0;
}

static int
write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes a segment. @return 0, or UPD_EIO with msg */
static int
dest_put(const dest_t *d, const char *key, const char *data, size_t len, char *msg, size_t cap)
{
    if (d->b != NULL) {
        upd_s3_result_t res;
        int err = upd_s3_put_mem(d->b, d->t, key, data, len, "application/x-ndjson", &res);
        if (err == 0 && res.status >= 200 && res.status <= 299)
            return 0;
        snprintf(msg, cap, "%s", res.message);
        return UPD_EIO;
    }
    /* a temporary file, synced, renamed into place, the directory synced: a segment is there whole or not at all */
    char tmp[UPD_AUDIT_SEGMENT_NAME_MAX + 16];
    snprintf(tmp, sizeof(tmp), LOCAL_DIR "/.tmp-%s", key + sizeof(UPD_AUDIT_SEGMENT_PREFIX) - 1);
    int fd = -1, dfd = -1, ret = UPD_EIO;
    if (local_mkdirs(d->dir_fd) != 0) {
        snprintf(msg, cap, "local: cannot create %s: %s", LOCAL_DIR, strerror(errno));
        return UPD_EIO;
    }
    if ((fd = openat(d->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 || write_all(fd, data, len) != 0 ||
        fsync(fd) != 0) {
        snprintf(msg, cap, "local: writing %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    close(fd);
    fd = -1;
    if (renameat(d->dir_fd, tmp, d->dir_fd, key) != 0) {
        snprintf(msg, cap, "local: renaming %s to %s: %s", tmp, key, strerror(errno));
        goto Exit;
    }
    if ((dfd = openat(d->dir_fd, LOCAL_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
        fsync(dfd);
    ret = 0;
Exit:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (ret != 0)
        unlinkat(d->dir_fd, tmp, 0);
    return ret;
}

typedef upd_audit_seg_t seg_t;
typedef upd_audit_seg_list_t seg_list_t;

static int
on_listed(const char *key, uint64_t size, void *arg)
{
    (void)size;
    return upd_audit_seg_list_add(arg, key, strlen(key));
}

/* Lists a destination's segments, sorted by first, then last. @return 0, UPD_EIO (msg), UPD_ENOMEM */
static int
dest_list(const dest_t *d, seg_list_t *l, char *msg, size_t cap)
{
    int err = 0;
    if (d->b != NULL) {
        upd_s3_result_t res;
        if ((err = upd_s3_list(d->b, d->t, UPD_AUDIT_SEGMENT_PREFIX, on_listed, l, &res)) != 0 && err != UPD_ENOMEM)
            snprintf(msg, cap, "%s", res.message);
    } else {
        int fd = openat(d->dir_fd, LOCAL_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
        if (dir == NULL) {
            if (fd >= 0)
                close(fd);
            if (errno != ENOENT) {
                snprintf(msg, cap, "local: cannot read %s: %s", LOCAL_DIR, strerror(errno));
                err = UPD_EIO;
            }
        } else {
            struct dirent *e;
            char key[512];
            while (err == 0 && (e = readdir(dir)) != NULL) {
                snprintf(key, sizeof(key), UPD_AUDIT_SEGMENT_PREFIX "%s", e->d_name);
                err = on_listed(key, 0, l);
            }
            closedir(dir);
        }
    }
    if (err == 0)
        upd_audit_seg_list_sort(l);
    return err;
}

/* Reads a segment into sink. @return 0, UPD_EIO (msg; also when sink stopped it: the caller knows), UPD_ENOTFOUND */
static int
dest_get(const dest_t *d, const char *key, int (*sink)(const void *data, size_t len, void *arg), void *arg, char *msg,
         size_t cap)
{
    if (d->b != NULL) {
        upd_s3_result_t res;
        int err = upd_s3_get(d->b, d->t, key, sink, arg, &res);
        if (err == 0 && res.status >= 200 && res.status <= 299)
            return 0;
        snprintf(msg, cap, "%s", res.message);
        return err == 0 && res.status == 404 ? UPD_ENOTFOUND : UPD_EIO;
    }
    int fd = openat(d->dir_fd, key, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(msg, cap, "local: %s: %s", key, strerror(errno));
        return errno == ENOENT ? UPD_ENOTFOUND : UPD_EIO;
    }
    char buf[65536];
    int ret = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(msg, cap, "local: reading %s: %s", key, strerror(errno));
            ret = UPD_EIO;
            break;
        }
        if (r == 0)
            break;
        if (sink(buf, (size_t)r, arg) != 0) {
            snprintf(msg, cap, "local: %s: aborted", key);
            ret = UPD_EIO;
            break;
        }
    }
    close(fd);
    return ret;
}

/* The destination's export mark in txn: the last sequence number exported, 0 for none. @return 0 or UPD_EINVAL */
static int
mark_get(upd_store_txn_t *txn, const dest_t *d, uint64_t *mark)
{
    char name[64], buf[32];
    const char *data;
    size_t len;
    mark_name(d, name);
    *mark = 0;
    if (upd_store_meta_get(txn, name, &data, &len) != 0)
        return 0;
    if (len == 0 || len >= sizeof(buf))
        return UPD_EINVAL;
    memcpy(buf, data, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno != 0 || *end != '\0' || buf[0] < '0' || buf[0] > '9')
        return UPD_EINVAL;
    *mark = v;
    return 0;
}

static void
init_dests(dest_t *dests, size_t *n, const upd_s3_backend_t *backends, size_t nbackends, const upd_s3_timeouts_t *t,
           int storage_fd)
{
    *n = 0;
    for (size_t i = 0; i < nbackends && i < DESTS_MAX; ++i)
        dests[(*n)++] = (dest_t){backends[i].name, &backends[i], t, -1};
    if (nbackends == 0)
        dests[(*n)++] = (dest_t){"local", NULL, t, storage_fd};
}

/* ---- the exporter ---- */

typedef struct st_dest_state_t {
    struct st_upd_audit_export_t *x;
    dest_t d;
    pthread_t thread;
    bool started;
    bool rolled_back_logged;
    /* under x->lock: for /metrics */
    uint64_t exported, segments, failures;
} dest_state_t;

struct st_upd_audit_export_t {
    upd_store_t *store;
    upd_audit_export_opts_t opts;
    dest_state_t dests[DESTS_MAX];
    size_t n;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC: the threads wait on it between looks, stop wakes them */
    bool stopping;
};

static int64_t
realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
    char *data;
    size_t len, cap;
    uint64_t last, left;
} segbuf_t;

static int
on_export_record(uint64_t seq, const char *rec, size_t len, void *arg)
{
    segbuf_t *b = arg;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 65536;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL)
            return UPD_ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, rec, len);
    b->len += len;
    b->data[b->len++] = '\n';
    b->last = seq;
    return --b->left == 0 ? 1 : 0;
}

/*
 * One look at a destination: exports one segment when it is due (flush: whenever a record waits, however young).
 * @return 1 when a segment was written (look again at once), 0 when none is due (*wait_ms until the next look), -1 when
 *         the write failed (logged and counted: the caller backs off)
 */
static int
export_step(dest_state_t *ds, bool flush, uint64_t *wait_ms)
{
    upd_audit_export_t *x = ds->x;
    const upd_audit_export_opts_t *o = &x->opts;
    upd_store_txn_t *txn;
    uint64_t head, mark;
    char hash[UPD_AUDIT_HASH_HEX + 1], msg[512];
    *wait_ms = o->check_ms;
    if (upd_store_read_begin(x->store, &txn) != 0)
        return 0;
    if (upd_audit_head(txn, &head, hash) != 0 || mark_get(txn, &ds->d, &mark) != 0) {
        upd_store_txn_end(txn);
        if (!ds->rolled_back_logged)
            upd_log_error("audit: %s: the chain head or the export mark in the store is unreadable: nothing is exported "
                          "(run updraft-control audit verify)", ds->d.name);
        ds->rolled_back_logged = true;
        return 0;
    }
    if (mark > head) {
        upd_store_txn_end(txn);
        if (!ds->rolled_back_logged)
            upd_log_error("audit: %s: records up to %" PRIu64 " were exported but the chain ends at %" PRIu64
                          ": the trail went back; nothing is exported (run updraft-control audit verify)",
                          ds->d.name, mark, head);
        ds->rolled_back_logged = true;
        return 0;
    }
    ds->rolled_back_logged = false;
    uint64_t pending = head - mark;
    if (pending == 0) {
        upd_store_txn_end(txn);
        return 0;
    }
    if (pending < o->records && !flush) {
        /* fewer than a segment's worth: due once the oldest of them is interval_ms old */
        const char *rec;
        size_t len;
        json_t *j = NULL;
        int64_t t;
        if (upd_store_audit_get(txn, mark + 1, &rec, &len) == 0 && (j = json_loadb(rec, len, 0, NULL)) != NULL &&
            upd_audit_rec_time(j, &t)) {
            int64_t age = realtime_ms() - t;
            if (age >= 0 && (uint64_t)age < o->interval_ms) {
                uint64_t due = o->interval_ms - (uint64_t)age;
                *wait_ms = due < o->check_ms ? due : o->check_ms;
                json_decref(j);
                upd_store_txn_end(txn);
                return 0;
            }
        }
        json_decref(j);
    }
    segbuf_t b = {.left = pending < o->records ? pending : o->records};
    int err = upd_store_audit_walk(txn, mark + 1, false, on_export_record, &b);
    upd_store_txn_end(txn);
    if (err != 0 || b.len == 0) {
        free(b.data);
        upd_log_error("audit: %s: cannot read the records after %" PRIu64 ": %s", ds->d.name, mark,
                      upd_strerror(err != 0 ? err : UPD_ENOTFOUND));
        return -1;
    }
    char key[UPD_AUDIT_SEGMENT_NAME_MAX + 1];
    upd_audit_segment_name(mark + 1, b.last, key);
    err = dest_put(&ds->d, key, b.data, b.len, msg, sizeof(msg));
    free(b.data);
    if (err == 0) {
        /* the mark moves only once the segment is there: a crash in between writes the segment again */
        char name[64], val[24];
        int n = snprintf(val, sizeof(val), "%" PRIu64, b.last);
        mark_name(&ds->d, name);
        if ((err = upd_store_write_begin(x->store, &txn)) == 0) {
            if ((err = upd_store_meta_put(txn, name, val, (size_t)n)) == 0)
                err = upd_store_commit(txn);
            else
                upd_store_txn_end(txn);
        }
        if (err != 0)
            snprintf(msg, sizeof(msg), "%s: wrote %s but cannot record it in the store: %s", ds->d.name, key, upd_strerror(err));
    }
    pthread_mutex_lock(&x->lock);
    if (err == 0) {
        ds->exported = b.last;
        ++ds->segments;
    } else {
        ++ds->failures;
    }
    pthread_mutex_unlock(&x->lock);
    if (err != 0) {
        upd_log_warn("audit: %s: exporting records %" PRIu64 "-%" PRIu64 " failed: %s; retrying", ds->d.name, mark + 1, b.last, msg);
        return -1;
    }
    upd_log_debug("audit: %s: exported records %" PRIu64 "-%" PRIu64 " as %s", ds->d.name, mark + 1, b.last, key);
    return 1;
}

static void *
export_main(void *arg)
{
    dest_state_t *ds = arg;
    upd_audit_export_t *x = ds->x;
    uint64_t backoff = 0;
    pthread_mutex_lock(&x->lock);
    while (!x->stopping) {
        pthread_mutex_unlock(&x->lock);
        uint64_t wait_ms;
        int r = export_step(ds, false, &wait_ms);
        if (r < 0) {
            backoff = backoff == 0 ? x->opts.retry_initial_ms : backoff * 2;
            if (backoff > x->opts.retry_max_ms)
                backoff = x->opts.retry_max_ms;
            wait_ms = backoff;
        } else if (r > 0) {
            backoff = 0;
            wait_ms = 0;
        }
        pthread_mutex_lock(&x->lock);
        if (wait_ms != 0 && !x->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + wait_ms % 1000 * 1000000;
            ts.tv_sec += (time_t)(wait_ms / 1000 + ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&x->cond, &x->lock, &ts);
        }
    }
    pthread_mutex_unlock(&x->lock);
    /*
     * Stopping: what is still waiting goes out now, whatever its age, so that a control plane stopped and then lost
     * loses no record. One try per segment: a store that fails keeps the rest for the next start (and the shutdown is
     * held up by at most its timeouts).
     */
    uint64_t ignored;
    while (export_step(ds, true, &ignored) > 0)
        ;
    return NULL;
}

upd_audit_export_t *
upd_audit_export_create(upd_store_t *store, const upd_s3_backend_t *backends, size_t nbackends, const upd_s3_timeouts_t *timeouts,
                        int storage_fd, const upd_audit_export_opts_t *opts)
{
    upd_audit_export_t *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->store = store;
    x->opts = *opts;
    if (x->opts.records == 0)
        x->opts.records = 1;
    if (x->opts.check_ms == 0)
        x->opts.check_ms = 1;
    if (x->opts.retry_initial_ms == 0)
        x->opts.retry_initial_ms = 1;
    if (x->opts.retry_max_ms < x->opts.retry_initial_ms)
        x->opts.retry_max_ms = x->opts.retry_initial_ms;
    dest_t dests[DESTS_MAX];
    init_dests(dests, &x->n, backends, nbackends, timeouts, storage_fd);
    for (size_t i = 0; i < x->n; ++i)
        x->dests[i] = (dest_state_t){.x = x, .d = dests[i]};
    pthread_mutex_init(&x->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&x->cond, &ca);
    pthread_condattr_destroy(&ca);
    return x;
}

int
upd_audit_export_start(upd_audit_export_t *x)
{
    /* the marks as they stand, so that /metrics says where each destination is before its first segment */
    upd_store_txn_t *txn;
    if (upd_store_read_begin(x->store, &txn) == 0) {
        for (size_t i = 0; i < x->n; ++i)
            mark_get(txn, &x->dests[i].d, &x->dests[i].exported);
        upd_store_txn_end(txn);
    }
    x->stopping = false;
    for (size_t i = 0; i < x->n; ++i) {
        int rc = pthread_create(&x->dests[i].thread, NULL, export_main, &x->dests[i]);
        if (rc != 0) {
            upd_log_error("audit: cannot start the export thread of %s: %s", x->dests[i].d.name, strerror(rc));
            upd_audit_export_stop(x);
            return UPD_EIO;
        }
        x->dests[i].started = true;
    }
    upd_log_info("audit: exporting to %zu destination%s every %" PRIu64 " records or %" PRIu64 " ms", x->n, x->n == 1 ? "" : "s",
                 x->opts.records, x->opts.interval_ms);
    return 0;
}

void
upd_audit_export_stop(upd_audit_export_t *x)
{
    if (x == NULL)
        return;
    pthread_mutex_lock(&x->lock);
    x->stopping = true;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    for (size_t i = 0; i < x->n; ++i)
        if (x->dests[i].started) {
            pthread_join(x->dests[i].thread, NULL);
            x->dests[i].started = false;
        }
}

void
upd_audit_export_destroy(upd_audit_export_t *x)
{
    if (x == NULL)
        return;
    upd_audit_export_stop(x);
    pthread_cond_destroy(&x->cond);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

void
upd_audit_export_render_metrics(upd_audit_export_t *x, FILE *fp)
{
    uint64_t head = 0;
    char hash[UPD_AUDIT_HASH_HEX + 1];
    upd_store_txn_t *txn;
    if (upd_store_read_begin(x->store, &txn) == 0) {
        if (upd_audit_head(txn, &head, hash) != 0)
            head = 0;
        upd_store_txn_end(txn);
    }
    pthread_mutex_lock(&x->lock);
    fprintf(fp, "# HELP updraft_audit_records_total Records in the audit trail (its chain head's sequence number).\n"
                "# TYPE updraft_audit_records_total counter\nupdraft_audit_records_total %" PRIu64 "\n",
            head);
    fprintf(fp, "# HELP updraft_audit_exported_seq The last audit record exported to each object store.\n"
                "# TYPE updraft_audit_exported_seq gauge\n");
    for (size_t i = 0; i < x->n; ++i)
        fprintf(fp, "updraft_audit_exported_seq{backend=\"%s\"} %" PRIu64 "\n", x->dests[i].d.name, x->dests[i].exported);
    fprintf(fp, "# HELP updraft_audit_export_pending Audit records not yet exported to each object store.\n"
                "# TYPE updraft_audit_export_pending gauge\n");
    for (size_t i = 0; i < x->n; ++i)
        fprintf(fp, "updraft_audit_export_pending{backend=\"%s\"} %" PRIu64 "\n", x->dests[i].d.name,
                head > x->dests[i].exported ? head - x->dests[i].exported : 0);
    fprintf(fp, "# HELP updraft_audit_export_segments_total Audit segments written to each object store.\n"
                "# TYPE updraft_audit_export_segments_total counter\n");
    for (size_t i = 0; i < x->n; ++i)
        fprintf(fp, "updraft_audit_export_segments_total{backend=\"%s\"} %" PRIu64 "\n", x->dests[i].d.name, x->dests[i].segments);
    fprintf(fp, "# HELP updraft_audit_export_failures_total Failed audit segment writes to each object store (each retried "
                "with backoff).\n# TYPE updraft_audit_export_failures_total counter\n");
    for (size_t i = 0; i < x->n; ++i)
        fprintf(fp, "updraft_audit_export_failures_total{backend=\"%s\"} %" PRIu64 "\n", x->dests[i].d.name, x->dests[i].failures);
    pthread_mutex_unlock(&x->lock);
}

/* ---- verify ---- */

typedef struct {
    uint64_t seq; /* the lowest record found breaking so far; UINT64_MAX: none */
    upd_reason_t why;
} brk_t;

static void brk_note(brk_t *k, uint64_t seq, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Keeps the break of the lowest record. */
static void
brk_note(brk_t *k, uint64_t seq, const char *fmt, ...)
{
    if (seq >= k->seq)
        return;
    char text[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    k->seq = seq;
    upd_reason_set(&k->why, UPD_EINTEGRITY, "chain", "record %" PRIu64 ": %s", seq, text);
}

typedef struct {
    upd_store_txn_t *txn;
    const dest_t *d;
    const seg_t *seg;
    upd_audit_seg_reader_t reader;
    brk_t *brk;
    bool stopped; /* a break was found: the rest of the segment is not read */
    int err;      /* UPD_ENOMEM from the reader */
} seg_check_t;

static int
on_seg_record(const char *rec, size_t len, void *arg)
{
    seg_check_t *c = arg;
    uint64_t seq = c->seg->first + c->reader.records - 1;
    const char *mine;
    size_t mine_len;
    if (seq > c->seg->last) {
        brk_note(c->brk, seq, "%s's segment %s holds more records than its name says", c->d->name, c->seg->key);
        return 1;
    }
    int err = upd_store_audit_get(c->txn, seq, &mine, &mine_len);
    if (err == UPD_ENOTFOUND) {
        brk_note(c->brk, seq, "it is in %s's segment %s but missing from the store", c->d->name, c->seg->key);
        return 1;
    }
    if (err != 0) {
        c->err = err;
        return 1;
    }
    if (mine_len != len || memcmp(mine, rec, len) != 0) {
        brk_note(c->brk, seq, "the store's copy and %s's copy in segment %s differ", c->d->name, c->seg->key);
        return 1;
    }
    return 0;
}

static int
seg_sink(const void *data, size_t len, void *arg)
{
    seg_check_t *c = arg;
    int r = upd_audit_seg_reader_feed(&c->reader, data, len);
    if (r == UPD_ETOOBIG) {
        brk_note(c->brk, c->seg->first + c->reader.records, "%s's segment %s has a line longer than any record", c->d->name,
                 c->seg->key);
    }
    if (r != 0)
        c->stopped = true;
    return r;
}

/* Checks one destination's segments against the store (txn). @return 0 (breaks noted), or an error with msg */
static int
verify_dest(upd_store_txn_t *txn, const dest_t *d, const seg_list_t *l, uint64_t mark, brk_t *brk, uint64_t *covered_out,
            char *msg, size_t cap)
{
    uint64_t covered = 0;
    bool broke = false;
    for (size_t i = 0; i < l->n && !broke; ++i) {
        const seg_t *s = &l->segs[i];
        if (s->first > covered + 1) {
            brk_note(brk, covered + 1, "records %" PRIu64 " to %" PRIu64 " are in no segment on %s (one is missing)", covered + 1,
                     s->first - 1, d->name);
            broke = true;
            break;
        }
        seg_check_t c = {.txn = txn, .d = d, .seg = s, .brk = brk};
        if (upd_audit_seg_reader_init(&c.reader, on_seg_record, &c) != 0)
            return UPD_ENOMEM;
        int err = dest_get(d, s->key, seg_sink, &c, msg, cap);
        if (c.err != 0) {
            upd_audit_seg_reader_dispose(&c.reader);
            snprintf(msg, cap, "the store: %s", upd_strerror(c.err));
            return c.err;
        }
        if (err != 0 && !c.stopped) {
            upd_audit_seg_reader_dispose(&c.reader);
            return err == UPD_ENOTFOUND ? UPD_EIO : err;
        }
        if (!c.stopped) {
            uint64_t got = c.reader.records;
            if (upd_audit_seg_reader_end(&c.reader) != 0) {
                brk_note(brk, s->first + got, "%s's segment %s ends inside a record", d->name, s->key);
                broke = true;
            } else if (got < s->last - s->first + 1) {
                brk_note(brk, s->first + got, "%s's segment %s ends before it (its name says %" PRIu64 "-%" PRIu64 ")", d->name,
                         s->key, s->first, s->last);
                broke = true;
            }
        }
        upd_audit_seg_reader_dispose(&c.reader);
        /* after this destination's first break, later segments hold later records: they are not read */
        broke = broke || c.stopped;
        if (s->last > covered)
            covered = s->last;
    }
    if (!broke && mark > covered)
        brk_note(brk, covered + 1, "%s was sent records up to %" PRIu64 " (its export mark) but holds no segment with it",
                 d->name, mark);
    *covered_out = covered;
    return 0;
}

typedef struct {
    uint64_t expected, count;
    char prev[UPD_AUDIT_HASH_HEX + 1];
    brk_t *brk;
} chain_walk_t;

static int
on_chain_record(uint64_t seq, const char *rec, size_t len, void *arg)
{
    chain_walk_t *w = arg;
    upd_reason_t why;
    if (seq != w->expected) {
        brk_note(w->brk, w->expected, "missing from the store (the next record there is %" PRIu64 ")", seq);
        return 1;
    }
    if (upd_audit_check(rec, len, seq, w->prev, &why) != 0) {
        /* why names the record itself: keep its sentence after ours */
        brk_note(w->brk, seq, "in the store: %s", why.message);
        return 1;
    }
    if (!upd_audit_hash(rec, len, w->prev))
        return UPD_ENOMEM;
    ++w->expected;
    ++w->count;
    return 0;
}

int
upd_audit_verify(upd_store_t *store, const upd_s3_backend_t *backends, size_t nbackends, const upd_s3_timeouts_t *timeouts,
                 int storage_fd, char *summary, size_t cap, upd_reason_t *why)
{
    dest_t dests[DESTS_MAX];
    size_t n;
    uint64_t marks[DESTS_MAX] = {0}, covered[DESTS_MAX] = {0};
    seg_list_t lists[DESTS_MAX];
    brk_t brk = {.seq = UINT64_MAX};
    char msg[512] = "";
    upd_store_txn_t *txn = NULL;
    int err;
    memset(lists, 0, sizeof(lists));
    init_dests(dests, &n, backends, nbackends, timeouts, storage_fd);

    /*
     * The order matters while the control plane runs: the marks first (each is moved only after its segment is
     * written, so every segment a mark names is listed next), then the listings, then the records (every listed
     * segment's records were committed before it was written).
     */
    if ((err = upd_store_read_begin(store, &txn)) != 0) {
        upd_reason_set(why, err, "store", "cannot read the store: %s", upd_strerror(err));
        return err;
    }
    for (size_t i = 0; i < n; ++i)
        if (mark_get(txn, &dests[i], &marks[i]) != 0)
            brk_note(&brk, 1, "%s's export mark in the store is malformed", dests[i].name);
    upd_store_txn_end(txn);
    txn = NULL;
    for (size_t i = 0; i < n; ++i)
        if ((err = dest_list(&dests[i], &lists[i], msg, sizeof(msg))) != 0) {
            upd_reason_set(why, err, "unreadable", "cannot list %s's segments: %s", dests[i].name,
                           err == UPD_ENOMEM ? "out of memory" : msg);
            goto Exit;
        }
    if ((err = upd_store_read_begin(store, &txn)) != 0) {
        upd_reason_set(why, err, "store", "cannot read the store: %s", upd_strerror(err));
        goto Exit;
    }

    /* the chain in the store, from record 1 */
    chain_walk_t w = {.expected = 1, .brk = &brk};
    memcpy(w.prev, upd_audit_genesis, sizeof(w.prev));
    if ((err = upd_store_audit_walk(txn, 1, false, on_chain_record, &w)) != 0) {
        upd_reason_set(why, err, "store", "cannot read the store's audit records: %s", upd_strerror(err));
        goto Exit;
    }
    uint64_t last = w.expected - 1, head;
    char head_hash[UPD_AUDIT_HASH_HEX + 1];
    if (brk.seq == UINT64_MAX) {
        if (upd_audit_head(txn, &head, head_hash) != 0)
            brk_note(&brk, last + 1, "the chain head in the store's meta is malformed");
        else if (head > last)
            brk_note(&brk, last + 1, "missing from the store: the chain head names record %" PRIu64, head);
        else if (head < last)
            brk_note(&brk, head + 1, "in the store past the chain head (record %" PRIu64 ")", head);
        else if (strcmp(head_hash, w.prev) != 0)
            brk_note(&brk, last, "the chain head in the store's meta names another hash for it");
    }

    /* every destination's segments against the store */
    for (size_t i = 0; i < n; ++i)
        if ((err = verify_dest(txn, &dests[i], &lists[i], marks[i], &brk, &covered[i], msg, sizeof(msg))) != 0) {
            upd_reason_set(why, err, "unreadable", "cannot read %s's segments: %s", dests[i].name, msg);
            goto Exit;
        }
    if (brk.seq != UINT64_MAX) {
        *why = brk.why;
        err = UPD_EINTEGRITY;
        goto Exit;
    }
    size_t off = (size_t)snprintf(summary, cap, "audit: %" PRIu64 " records, chain head %" PRIu64 " %s", last, last,
                                  last != 0 ? w.prev : "(none)");
    for (size_t i = 0; i < n && off < cap; ++i)
        off += (size_t)snprintf(summary + off, cap - off, "%s %s: %zu segment%s to record %" PRIu64, i == 0 ? ";" : ",",
                                dests[i].name, lists[i].n, lists[i].n == 1 ? "" : "s", covered[i]);
    if (off < cap)
        snprintf(summary + off, cap - off, ", all match");
    err = 0;
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    for (size_t i = 0; i < n; ++i)
        free(lists[i].segs);
    return err;
}
