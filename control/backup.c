/* Backups of the LMDB environment to the object stores, read back before they count, and their restore (control/backup.h). */
#include "control/backup.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/err.h"
#include "base/log.h"
#include "control/audit.h"
#include "domain/audit.h"

#define PREFIX "_updraft/backups/"
#define DATA_NAME "data.mdb"
#define MANIFEST_NAME "manifest.json"
#define VERDICT_NAME "verdict.json"
#define MANIFEST_FORMAT 1
#define DOC_MAX (64u << 10) /* a manifest or a verdict is a few hundred bytes */
#define CATALOG_MAX 10000   /* backups kept in memory; more are logged and left out */
#define REASON_MAX 200
#define IO_CHUNK (1u << 20)

/* A sentence into a fixed buffer, cut at its end (paths and store messages can be long; the start says enough). */
__attribute__((format(printf, 3, 4))) static void
say(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* ---- the stores: S3-compatible backends, or the local storage directory ---- */

typedef struct {
    char name[UPD_S3_NAME_MAX + 1];
    const upd_s3_backend_t *s3; /* NULL: the local directory */
} target_t;

/* What one store holds of one backup. */
typedef struct {
    bool listed; /* any of its objects is there */
    bool has_data, has_manifest, has_verdict;
    bool manifest_ok; /* read and well formed: the fields below */
    uint64_t size;
    char sha256[65];
    uint32_t schema;
    uint64_t head_seq;
    char head_hash[UPD_AUDIT_HASH_HEX + 1];
    int verdict; /* 1 good, 0 not, -1 none yet */
    int64_t checked;
    char reason[REASON_MAX];
} copy_t;

typedef struct {
    char id[UPD_BACKUP_ID_LEN + 1];
    int64_t time;
    copy_t at[UPD_BACKUP_STORES_MAX];
} entry_t;

typedef struct {
    entry_t *e;
    size_t n, cap;
} catalog_t;

struct st_upd_backup_t {
    upd_backup_conf_t conf;
    char temp_dir[1024];
    upd_store_t *store;
    const upd_s3_timeouts_t *timeouts;
    int storage_fd;
    target_t targets[UPD_BACKUP_STORES_MAX];
    size_t ntargets;
    int64_t started_at;

    /* the catalog: written by the thread that runs backups (swapped under lock), read by the loop under lock */
    pthread_mutex_t lock;
    catalog_t catalog;
    bool catalog_loaded;
    uint64_t good_total[UPD_BACKUP_STORES_MAX], failed_total[UPD_BACKUP_STORES_MAX], deleted_total[UPD_BACKUP_STORES_MAX],
        list_failures[UPD_BACKUP_STORES_MAX];
    bool running;
    uint64_t last_size;
    double last_duration;
    int64_t last_id_time; /* of the newest id handed out or run */

    /* the thread */
    pthread_mutex_t request_lock; /* serialises upd_backup_request's commits */
    pthread_cond_t wake;
    pthread_t thread;
    bool started, stopping; /* stopping: also read by transfers (atomic) */
    bool pending;
    char pending_id[UPD_BACKUP_ID_LEN + 1];
};

static bool
cancelled(upd_backup_t *b)
{
    return __atomic_load_n(&b->stopping, __ATOMIC_RELAXED);
}

/* ---- local directory objects: keys are paths under the storage directory, never through a symbolic link ---- */

/* Opens (creating with create) the directory that holds key's last component. @return a descriptor and *name, or -1 */
static int
local_parent(int dirfd, const char *key, bool create, const char **name)
{
    int fd = dup(dirfd);
    const char *p = key;
    for (const char *slash; fd >= 0 && (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        char part[256];
        size_t len = (size_t)(slash - p);
        if (len == 0 || len >= sizeof(part)) {
            close(fd);
            errno = EINVAL;
            return -1;
        }
        memcpy(part, p, len);
        part[len] = '\0';
        if (create && mkdirat(fd, part, 0700) != 0 && errno != EEXIST) {
            close(fd);
            return -1;
        }
        int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        errno = e;
        fd = next;
    }
    *name = p;
    return fd;
}

/* Writes src's bytes (len, from offset 0) or buf's to key: a temporary name, fsync, rename. @return 0 or an errno */
static int
local_put(int dirfd, const char *key, int src, const void *buf, uint64_t len)
{
    const char *name;
    int dfd = local_parent(dirfd, key, true, &name);
    if (dfd < 0)
        return errno;
    char tmp[300];
    say(tmp, sizeof(tmp), ".%s.tmp", name);
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600), e = 0;
    if (fd < 0) {
        e = errno;
        close(dfd);
        return e;
    }
    if (buf != NULL) {
        for (uint64_t off = 0; off < len && e == 0;) {
            ssize_t w = write(fd, (const char *)buf + off, (size_t)(len - off));
            if (w < 0 && errno != EINTR)
                e = errno;
            else if (w > 0)
                off += (uint64_t)w;
        }
    } else {
        loff_t in = 0;
        while ((uint64_t)in < len && e == 0) {
            ssize_t c = copy_file_range(src, &in, fd, NULL, (size_t)(len - (uint64_t)in < (1u << 30) ? len - (uint64_t)in : (1u << 30)), 0);
            if (c < 0 && errno != EINTR)
                e = errno;
            else if (c == 0)
                e = EIO; /* the copy shrank under us */
        }
    }
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    close(fd);
    if (e == 0 && renameat(dfd, tmp, dfd, name) != 0)
        e = errno;
    if (e != 0)
        unlinkat(dfd, tmp, 0);
    else
        fsync(dfd);
    close(dfd);
    return e;
}

/* ---- one store's operations, whichever kind it is ---- */

typedef struct {
    char message[256];
} oerr_t;

static int
t_put_file(upd_backup_t *b, const target_t *t, const char *key, int fd, uint64_t size, upd_s3_progress_cb progress, void *arg,
           oerr_t *err)
{
    if (t->s3 == NULL) {
        int e = local_put(b->storage_fd, key, fd, NULL, size);
        if (e != 0)
            say(err->message, sizeof(err->message), "local: writing %s: %s", key, strerror(e));
        else if (progress != NULL)
            progress(size, size, arg);
        return e != 0 ? UPD_EIO : 0;
    }
    upd_s3_result_t res;
    int r = upd_s3_put_large(t->s3, b->timeouts, key, fd, size, b->conf.part_size, "application/octet-stream", b->conf.part_retries,
                             progress, arg, &res);
    if (r != 0)
        say(err->message, sizeof(err->message), "%s", res.message);
    return r != 0 ? UPD_EIO : 0;
}

static int
t_put_mem(upd_backup_t *b, const target_t *t, const char *key, const char *data, size_t len, oerr_t *err)
{
    if (t->s3 == NULL) {
        int e = local_put(b->storage_fd, key, -1, data, len);
        if (e != 0)
            say(err->message, sizeof(err->message), "local: writing %s: %s", key, strerror(e));
        return e != 0 ? UPD_EIO : 0;
    }
    upd_s3_result_t res;
    int r = upd_s3_put_mem(t->s3, b->timeouts, key, data, len, "application/json", &res);
    if (r == 0 && (res.status < 200 || res.status > 299))
        r = UPD_EIO;
    if (r != 0)
        say(err->message, sizeof(err->message), "PUT %s: %s", key, res.message);
    return r != 0 ? UPD_EIO : 0;
}

/* GET into sink. @return 0, UPD_ENOTFOUND (no such object), UPD_EIO */
static int
t_get(upd_backup_t *b, const target_t *t, const char *key, int (*sink)(const void *, size_t, void *), void *arg, oerr_t *err)
{
    if (t->s3 == NULL) {
        const char *name;
        int dfd = local_parent(b->storage_fd, key, false, &name), fd = -1;
        if (dfd >= 0) {
            fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            close(dfd);
        }
        if (fd < 0) {
            say(err->message, sizeof(err->message), "local: %s: %s", key, strerror(errno));
            return errno == ENOENT ? UPD_ENOTFOUND : UPD_EIO;
        }
        char *buf = malloc(IO_CHUNK);
        int ret = buf != NULL ? 0 : UPD_ENOMEM;
        while (ret == 0) {
            ssize_t r = read(fd, buf, IO_CHUNK);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                say(err->message, sizeof(err->message), "local: reading %s: %s", key, strerror(errno));
                ret = UPD_EIO;
            } else if (r == 0) {
                break;
            } else if (sink(buf, (size_t)r, arg) != 0) {
                say(err->message, sizeof(err->message), "local: reading %s: aborted", key);
                ret = UPD_EIO;
            }
        }
        free(buf);
        close(fd);
        return ret;
    }
    upd_s3_result_t res;
    int r = upd_s3_get(t->s3, b->timeouts, key, sink, arg, &res);
    say(err->message, sizeof(err->message), "GET %s: %s", key, res.message);
    if (r == 0 && res.status == 404)
        return UPD_ENOTFOUND;
    return r == 0 && res.status >= 200 && res.status <= 299 ? 0 : UPD_EIO;
}

static int
t_delete(upd_backup_t *b, const target_t *t, const char *key, oerr_t *err)
{
    if (t->s3 == NULL) {
        const char *name;
        int dfd = local_parent(b->storage_fd, key, false, &name);
        int r = dfd >= 0 ? unlinkat(dfd, name, 0) : -1;
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        if (r != 0 && e != ENOENT) {
            say(err->message, sizeof(err->message), "local: deleting %s: %s", key, strerror(e));
            return UPD_EIO;
        }
        return 0;
    }
    upd_s3_result_t res;
    int r = upd_s3_delete(t->s3, b->timeouts, key, &res);
    if (r != 0 || !((res.status >= 200 && res.status <= 299) || res.status == 404)) {
        say(err->message, sizeof(err->message), "DELETE %s: %s", key, res.message);
        return UPD_EIO;
    }
    return 0;
}

/* cb(key, size) for every object under PREFIX. @return 0 or UPD_EIO */
static int
t_list(upd_backup_t *b, const target_t *t, int (*cb)(const char *key, uint64_t size, void *arg), void *arg, oerr_t *err)
{
    if (t->s3 != NULL) {
        upd_s3_result_t res;
        int r = upd_s3_list(t->s3, b->timeouts, PREFIX, cb, arg, &res);
        if (r != 0)
            say(err->message, sizeof(err->message), "listing %s: %s", PREFIX, res.message);
        return r != 0 ? UPD_EIO : 0;
    }
    const char *name;
    int dfd = local_parent(b->storage_fd, PREFIX "x", false, &name);
    if (dfd < 0) {
        if (errno == ENOENT)
            return 0; /* no backup yet */
        say(err->message, sizeof(err->message), "local: %s: %s", PREFIX, strerror(errno));
        return UPD_EIO;
    }
    DIR *top = fdopendir(dfd);
    if (top == NULL) {
        close(dfd);
        return UPD_EIO;
    }
    for (struct dirent *d; (d = readdir(top)) != NULL;) {
        if (d->d_name[0] == '.')
            continue;
        int idfd = openat(dirfd(top), d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *sub = idfd >= 0 ? fdopendir(idfd) : NULL;
        if (sub == NULL) {
            if (idfd >= 0)
                close(idfd);
            continue;
        }
        for (struct dirent *f; (f = readdir(sub)) != NULL;) {
            struct stat st;
            if (f->d_name[0] == '.' || fstatat(dirfd(sub), f->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
                continue;
            char key[600];
            snprintf(key, sizeof(key), PREFIX "%.64s/%.255s", d->d_name, f->d_name);
            cb(key, (uint64_t)st.st_size, arg);
        }
        closedir(sub);
    }
    closedir(top);
    return 0;
}

static void
key_of(char *key, size_t cap, const char *id, const char *name)
{
    snprintf(key, cap, PREFIX "%s/%s", id, name);
}

/* ---- temporary files ---- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int
mkdir_p(const char *path)
{
    char buf[1200];
    say(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p != '\0'; ++p) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- progress lines ---- */

typedef struct {
    upd_backup_t *b;
    FILE *fp; /* NULL: none */
    const char *what, *store;
    uint64_t total, done;
    struct timespec start, last;
} progress_t;

static double
since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
progress_begin(progress_t *p, upd_backup_t *b, FILE *fp, const char *what, const char *store, uint64_t total)
{
    *p = (progress_t){.b = b, .fp = fp, .what = what, .store = store, .total = total};
    clock_gettime(CLOCK_MONOTONIC, &p->start);
    p->last = p->start;
}

static void
progress_line(progress_t *p, bool last)
{
    if (p->fp == NULL)
        return;
    double s = since(&p->start);
    double rate = s > 0 ? (double)p->done / 1e6 / s : 0;
    if (p->total != 0)
        fprintf(p->fp, "%s: %s: %" PRIu64 " of %" PRIu64 " bytes (%d%%), %.1f MB/s%s\n", p->what, p->store, p->done, p->total,
                (int)(p->done * 100 / p->total), rate, last ? ", done" : "");
    else
        fprintf(p->fp, "%s: %s: %" PRIu64 " bytes, %.1f MB/s%s\n", p->what, p->store, p->done, rate, last ? ", done" : "");
    fflush(p->fp);
}

/* a line at most every second */
static void
progress_to(progress_t *p, uint64_t done)
{
    p->done = done;
    if (since(&p->last) >= 1.0) {
        clock_gettime(CLOCK_MONOTONIC, &p->last);
        progress_line(p, false);
    }
}

static int
on_upload_progress(uint64_t done, uint64_t total, void *arg)
{
    progress_t *p = arg;
    progress_to(p, done);
    return cancelled(p->b) ? 1 : 0;
}

/* ---- downloads into a file, hashed as they arrive ---- */

typedef struct {
    int fd;
    EVP_MD_CTX *md;
    uint64_t len, cap;
    int err; /* errno of a failed write */
    progress_t *progress;
    upd_backup_t *b;
} dl_t;

static int
to_file(const void *data, size_t len, void *arg)
{
    dl_t *d = arg;
    if (cancelled(d->b) || len > d->cap - d->len)
        return 1;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(d->fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            d->err = errno;
            return 1;
        }
        off += (size_t)w;
    }
    EVP_DigestUpdate(d->md, data, len);
    d->len += len;
    if (d->progress != NULL)
        progress_to(d->progress, d->len);
    return 0;
}

static void
hex_of(const unsigned char *md, size_t n, char *hex)
{
    for (size_t i = 0; i < n; ++i)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* Downloads key into path (created), its SHA-256 into sha. @return 0 with *size, or a UPD_E* code with why */
static int
download(upd_backup_t *b, const target_t *t, const char *key, const char *path, uint64_t cap, progress_t *progress, uint64_t *size,
         char sha[65], char *why, size_t why_cap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        say(why, why_cap, "cannot create %s: %s", path, strerror(errno));
        return UPD_EIO;
    }
    dl_t d = {.fd = fd, .md = EVP_MD_CTX_new(), .cap = cap, .progress = progress, .b = b};
    if (d.md == NULL || EVP_DigestInit_ex(d.md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(d.md);
        close(fd);
        return UPD_ENOMEM;
    }
    oerr_t err = {""};
    int r = t_get(b, t, key, to_file, &d, &err);
    if (r == 0 && fsync(fd) != 0)
        d.err = errno;
    close(fd);
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(d.md, md, &mdlen);
    EVP_MD_CTX_free(d.md);
    if (d.err != 0) {
        say(why, why_cap, "writing %s: %s", path, strerror(d.err));
        return UPD_EIO;
    }
    if (r != 0) {
        say(why, why_cap, "%s", cancelled(b) ? "cancelled: the program is stopping" : err.message);
        return r;
    }
    hex_of(md, 32, sha);
    *size = d.len;
    return 0;
}

static int
to_mem(const void *data, size_t len, void *arg)
{
    char **buf = arg;
    size_t have = *buf != NULL ? strlen(*buf) : 0;
    if (have + len > DOC_MAX || memchr(data, '\0', len) != NULL)
        return 1;
    char *n = realloc(*buf, have + len + 1);
    if (n == NULL)
        return 1;
    memcpy(n + have, data, len);
    n[have + len] = '\0';
    *buf = n;
    return 0;
}

/* GET of a small JSON document. @return it (a new reference), NULL with why and *code (UPD_ENOTFOUND, UPD_EIO, UPD_EINVAL) */
static json_t *
get_doc(upd_backup_t *b, const target_t *t, const char *key, char *why, size_t why_cap, int *code)
{
    char *text = NULL;
    oerr_t err = {""};
    int r = t_get(b, t, key, to_mem, &text, &err);
    json_t *j = NULL;
    *code = r;
    if (r != 0) {
        say(why, why_cap, "%s", err.message);
    } else {
        json_error_t je;
        if ((j = json_loads(text != NULL ? text : "", 0, &je)) == NULL || !json_is_object(j)) {
            say(why, why_cap, "%s is not a JSON object", key);
            *code = UPD_EINVAL;
            json_decref(j);
            j = NULL;
        }
    }
    free(text);
    return j;
}

/* ---- manifests ---- */

static bool
is_hex64(const char *s)
{
    return s != NULL && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* Reads a manifest into c's fields (manifest_ok). @return 0, or UPD_EINVAL with why */
static int
manifest_read(const json_t *m, const char *id, copy_t *c, char *why, size_t why_cap)
{
    json_t *head = json_object_get(m, "audit_head");
    const char *mid = json_string_value(json_object_get(m, "id")), *sha = json_string_value(json_object_get(m, "sha256")),
               *hh = json_string_value(json_object_get(head, "hash"));
    json_t *size = json_object_get(m, "size"), *schema = json_object_get(m, "schema"), *seq = json_object_get(head, "seq");
    if (json_integer_value(json_object_get(m, "format")) != MANIFEST_FORMAT || mid == NULL || strcmp(mid, id) != 0 ||
        !json_is_integer(size) || json_integer_value(size) < 0 || !is_hex64(sha) || !json_is_integer(schema) ||
        json_integer_value(schema) <= 0 || !json_is_integer(seq) || json_integer_value(seq) < 0 || !is_hex64(hh)) {
        say(why, why_cap, "the manifest is malformed or names another backup");
        return UPD_EINVAL;
    }
    c->size = (uint64_t)json_integer_value(size);
    memcpy(c->sha256, sha, 65);
    c->schema = (uint32_t)json_integer_value(schema);
    c->head_seq = (uint64_t)json_integer_value(seq);
    memcpy(c->head_hash, hh, UPD_AUDIT_HASH_HEX + 1);
    c->manifest_ok = true;
    return 0;
}

static char *
manifest_text(const char *id, int64_t time, const copy_t *c)
{
    json_t *m = json_pack("{s:i, s:s, s:I, s:I, s:s, s:i, s:{s:I, s:s}}", "format", MANIFEST_FORMAT, "id", id, "time", (json_int_t)time,
                          "size", (json_int_t)c->size, "sha256", c->sha256, "schema", (int)c->schema, "audit_head", "seq",
                          (json_int_t)c->head_seq, "hash", c->head_hash);
    char *text = m != NULL ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(m);
    return text;
}

/* ---- opening a copy: schema, audit chain ---- */

typedef struct {
    uint64_t expect;
    char prev[UPD_AUDIT_HASH_HEX + 1];
    upd_reason_t why;
} chain_t;

static int
on_record(uint64_t seq, const char *rec, size_t len, void *arg)
{
    chain_t *c = arg;
    if (upd_audit_check(rec, len, c->expect, c->prev, &c->why) != 0)
        return UPD_EINVAL;
    if (!upd_audit_hash(rec, len, c->prev))
        return UPD_ENOMEM;
    ++c->expect;
    return 0;
}

/*
 * Opens the environment in dir (DIR/lmdb/data.mdb) and checks it: the schema this program reads; the audit chain walked
 * from seq 1, each record's own sequence number and its predecessor's hash, up to the head the store's meta names.
 * @param[out] c  schema, head_seq and head_hash of what was found (may be NULL)
 * @param want    what the manifest says (NULL: nothing to compare with)
 * @return 0, or UPD_EINVAL / UPD_ESCHEMA / UPD_ESTORE with why
 */
static int
open_and_check(upd_backup_t *b, const char *dir, const copy_t *want, copy_t *found, char *why, size_t why_cap)
{
    upd_store_t *s = NULL;
    upd_store_opts_t opts = {.map_size = b->conf.map_size, .read_only = true};
    int r = upd_store_open(dir, &opts, &s);
    if (r != 0) {
        if (r == UPD_ESCHEMA)
            say(why, why_cap, "schema %u: this program reads schema %d", upd_store_schema_found(s), UPD_STORE_SCHEMA);
        else
            say(why, why_cap, "it does not open as an LMDB environment: %s", upd_strerror(r));
        upd_store_close(s);
        return r;
    }
    upd_store_txn_t *txn = NULL;
    chain_t chain = {.expect = 1};
    memcpy(chain.prev, upd_audit_genesis, sizeof(chain.prev));
    uint64_t head_seq = 0;
    char head_hash[UPD_AUDIT_HASH_HEX + 1];
    if ((r = upd_store_read_begin(s, &txn)) != 0) {
        say(why, why_cap, "no read transaction: %s", upd_strerror(r));
        goto Exit;
    }
    if ((r = upd_audit_head(txn, &head_seq, head_hash)) != 0) {
        say(why, why_cap, "its audit chain head is unreadable");
        goto Exit;
    }
    r = upd_store_audit_walk(txn, 1, false, on_record, &chain);
    if (r == UPD_EINVAL) {
        say(why, why_cap, "audit chain broken: %s", chain.why.message);
        goto Exit;
    }
    if (r != 0) {
        say(why, why_cap, "walking the audit chain: %s", upd_strerror(r));
        goto Exit;
    }
    if (chain.expect - 1 != head_seq || strcmp(chain.prev, head_hash) != 0) {
        say(why, why_cap, "audit chain ends at seq %" PRIu64 ", but its head says %" PRIu64, chain.expect - 1, head_seq);
        r = UPD_EINVAL;
        goto Exit;
    }
    if (want != NULL && (want->schema != UPD_STORE_SCHEMA || want->head_seq != head_seq || strcmp(want->head_hash, head_hash) != 0)) {
        say(why, why_cap, "the manifest says schema %u, audit head %" PRIu64 "; the copy has schema %d, head %" PRIu64, want->schema,
                 want->head_seq, UPD_STORE_SCHEMA, head_seq);
        r = UPD_EINVAL;
        goto Exit;
    }
    if (found != NULL) {
        found->schema = UPD_STORE_SCHEMA;
        found->head_seq = head_seq;
        memcpy(found->head_hash, head_hash, sizeof(head_hash));
    }
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    upd_store_close(s);
    return r;
}

/* ---- reading a backup back from one store ---- */

/*
 * Downloads the backup's manifest and data from t into work/, and checks them: the manifest well formed and naming id
 * (and, when expect_sha is given, the SHA-256 just uploaded), the data of its size and SHA-256, and the data opened and
 * checked (open_and_check). @return 0 (good), or a UPD_E* code with why
 */
static int
read_back(upd_backup_t *b, const target_t *t, const char *id, const char *expect_sha, const char *work, progress_t *progress,
          copy_t *c, char *why, size_t why_cap)
{
    char key[256], path[1200];
    key_of(key, sizeof(key), id, MANIFEST_NAME);
    int r;
    json_t *m = get_doc(b, t, key, why, why_cap, &r);
    if (m == NULL)
        return r;
    copy_t want = {0};
    r = manifest_read(m, id, &want, why, why_cap);
    json_decref(m);
    if (r != 0)
        return r;
    if (expect_sha != NULL && strcmp(want.sha256, expect_sha) != 0) {
        say(why, why_cap, "the manifest read back names SHA-256 %.12s..., not the copy's %.12s...", want.sha256, expect_sha);
        return UPD_EINVAL;
    }
    say(path, sizeof(path), "%s/lmdb", work);
    if (mkdir_p(path) != 0) {
        say(why, why_cap, "cannot create %s: %s", path, strerror(errno));
        return UPD_EIO;
    }
    say(path, sizeof(path), "%s/lmdb/" DATA_NAME, work);
    key_of(key, sizeof(key), id, DATA_NAME);
    uint64_t size = 0;
    char sha[65];
    if (progress != NULL)
        progress->total = want.size;
    if ((r = download(b, t, key, path, want.size, progress, &size, sha, why, why_cap)) != 0) {
        if (!cancelled(b) && r != UPD_ENOTFOUND && size == 0 && strstr(why, "aborted") != NULL)
            say(why, why_cap, "the data is larger than the manifest's %" PRIu64 " bytes", want.size);
        return r;
    }
    if (size != want.size || strcmp(sha, want.sha256) != 0) {
        say(why, why_cap, "the data read back is %" PRIu64 " bytes with SHA-256 %.12s...; the manifest says %" PRIu64 " bytes, %.12s...",
                 size, sha, want.size, want.sha256);
        return UPD_EMISMATCH;
    }
    if ((r = open_and_check(b, work, &want, NULL, why, why_cap)) != 0)
        return r;
    *c = want;
    return 0;
}

static void
write_verdict(upd_backup_t *b, const target_t *t, const char *id, bool good, const char *sha, const char *reason)
{
    char key[256];
    key_of(key, sizeof(key), id, VERDICT_NAME);
    json_t *v = json_pack("{s:b, s:I, s:s?, s:s?}", "good", good, "checked", (json_int_t)time(NULL), "reason", good ? NULL : reason,
                          "sha256", sha);
    char *text = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(v);
    oerr_t err = {""};
    if (text == NULL || t_put_mem(b, t, key, text, strlen(text), &err) != 0)
        upd_log_error("backup %s: %s: the verdict could not be written (%s): the next run reads it back again", id, t->name,
                      text == NULL ? "out of memory" : err.message);
    free(text);
}

/* ---- the catalog ---- */

static void
catalog_free(catalog_t *c)
{
    free(c->e);
    *c = (catalog_t){0};
}

static entry_t *
catalog_find(const catalog_t *c, const char *id)
{
    for (size_t i = 0; i < c->n; ++i)
        if (strcmp(c->e[i].id, id) == 0)
            return &c->e[i];
    return NULL;
}

static entry_t *
catalog_add(catalog_t *c, const char *id, int64_t time)
{
    entry_t *e = catalog_find(c, id);
    if (e != NULL)
        return e;
    if (c->n == CATALOG_MAX)
        return NULL;
    if (c->n == c->cap) {
        size_t cap = c->cap != 0 ? c->cap * 2 : 64;
        entry_t *n = realloc(c->e, cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        c->e = n;
        c->cap = cap;
    }
    e = &c->e[c->n++];
    memset(e, 0, sizeof(*e));
    memcpy(e->id, id, UPD_BACKUP_ID_LEN + 1);
    e->time = time;
    for (size_t i = 0; i < UPD_BACKUP_STORES_MAX; ++i)
        e->at[i].verdict = -1;
    return e;
}

static int
by_id(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->id, ((const entry_t *)b)->id);
}

typedef struct {
    catalog_t *c;
    size_t target;
    bool full;
} listing_t;

static int
on_listed(const char *key, uint64_t size, void *arg)
{
    listing_t *l = arg;
    size_t pl = strlen(PREFIX);
    if (strncmp(key, PREFIX, pl) != 0 || strlen(key) < pl + UPD_BACKUP_ID_LEN + 2 || key[pl + UPD_BACKUP_ID_LEN] != '/')
        return 0;
    char id[UPD_BACKUP_ID_LEN + 1];
    int64_t t;
    memcpy(id, key + pl, UPD_BACKUP_ID_LEN);
    id[UPD_BACKUP_ID_LEN] = '\0';
    if (upd_backup_id_parse(id, UPD_BACKUP_ID_LEN, &t) != 0)
        return 0; /* not one of ours */
    entry_t *e = catalog_add(l->c, id, t);
    if (e == NULL) {
        l->full = true;
        return 0;
    }
    const char *name = key + pl + UPD_BACKUP_ID_LEN + 1;
    copy_t *c = &e->at[l->target];
    c->listed = true;
    if (strcmp(name, DATA_NAME) == 0)
        c->has_data = true;
    else if (strcmp(name, MANIFEST_NAME) == 0)
        c->has_manifest = true;
    else if (strcmp(name, VERDICT_NAME) == 0)
        c->has_verdict = true;
    (void)size;
    return 0;
}

/* What a store's verdict document says, into c. */
static void
verdict_read(const json_t *v, copy_t *c)
{
    json_t *good = json_object_get(v, "good");
    const char *reason = json_string_value(json_object_get(v, "reason")), *sha = json_string_value(json_object_get(v, "sha256"));
    if (!json_is_boolean(good)) {
        c->verdict = 0;
        say(c->reason, sizeof(c->reason), "its verdict is malformed");
        return;
    }
    c->verdict = json_is_true(good) ? 1 : 0;
    c->checked = (int64_t)json_integer_value(json_object_get(v, "checked"));
    say(c->reason, sizeof(c->reason), "%s", reason != NULL ? reason : "");
    /* a verdict of other bytes than the manifest's (objects replaced since) is none */
    if (c->verdict == 1 && c->manifest_ok && (sha == NULL || strcmp(sha, c->sha256) != 0)) {
        c->verdict = -1;
        c->reason[0] = '\0';
    }
}

int
upd_backup_refresh(upd_backup_t *b)
{
    catalog_t nc = {0};
    const catalog_t *old = &b->catalog; /* only this thread writes it: no lock to read it */
    int ret = 0;
    bool failed[UPD_BACKUP_STORES_MAX] = {false};
    for (size_t i = 0; i < b->ntargets; ++i) {
        listing_t l = {.c = &nc, .target = i};
        oerr_t err = {""};
        if (t_list(b, &b->targets[i], on_listed, &l, &err) != 0) {
            upd_log_error("backups: %s: %s (what was known of its backups is kept)", b->targets[i].name, err.message);
            failed[i] = true;
            ret = UPD_EIO;
            /* forget what this listing half saw, keep what was known */
            for (size_t k = 0; k < nc.n; ++k)
                memset(&nc.e[k].at[i], 0, sizeof(copy_t)), nc.e[k].at[i].verdict = -1;
            for (size_t k = 0; k < old->n; ++k) {
                if (!old->e[k].at[i].listed)
                    continue;
                entry_t *e = catalog_add(&nc, old->e[k].id, old->e[k].time);
                if (e != NULL)
                    e->at[i] = old->e[k].at[i];
            }
        }
        if (l.full)
            upd_log_warn("backups: %s holds over %d backups: the catalog shows the first", b->targets[i].name, CATALOG_MAX);
    }
    /* manifests never change: read once; verdicts when one appears */
    for (size_t k = 0; k < nc.n; ++k) {
        entry_t *e = &nc.e[k];
        const entry_t *o = catalog_find(old, e->id);
        for (size_t i = 0; i < b->ntargets; ++i) {
            copy_t *c = &e->at[i];
            if (failed[i] || !c->listed)
                continue;
            const copy_t *oc = o != NULL && o->at[i].listed ? &o->at[i] : NULL;
            char why[REASON_MAX], key[256];
            if (oc != NULL && oc->manifest_ok && c->has_manifest) {
                c->manifest_ok = true;
                c->size = oc->size;
                memcpy(c->sha256, oc->sha256, sizeof(c->sha256));
                c->schema = oc->schema;
                c->head_seq = oc->head_seq;
                memcpy(c->head_hash, oc->head_hash, sizeof(c->head_hash));
            } else if (c->has_manifest) {
                key_of(key, sizeof(key), e->id, MANIFEST_NAME);
                int code;
                json_t *m = get_doc(b, &b->targets[i], key, why, sizeof(why), &code);
                if (m != NULL)
                    manifest_read(m, e->id, c, why, sizeof(why));
                json_decref(m);
            }
            if (oc != NULL && oc->verdict >= 0 && c->has_verdict) {
                c->verdict = oc->verdict;
                c->checked = oc->checked;
                memcpy(c->reason, oc->reason, sizeof(c->reason));
            } else if (c->has_verdict) {
                key_of(key, sizeof(key), e->id, VERDICT_NAME);
                int code;
                json_t *v = get_doc(b, &b->targets[i], key, why, sizeof(why), &code);
                if (v != NULL)
                    verdict_read(v, c);
                json_decref(v);
            }
        }
    }
    if (nc.n > 0)
        qsort(nc.e, nc.n, sizeof(*nc.e), by_id);
    pthread_mutex_lock(&b->lock);
    catalog_t gone = b->catalog;
    b->catalog = nc;
    b->catalog_loaded = true;
    for (size_t i = 0; i < b->ntargets; ++i)
        b->list_failures[i] += failed[i];
    for (size_t k = 0; k < nc.n; ++k)
        if (nc.e[k].time > b->last_id_time)
            b->last_id_time = nc.e[k].time;
    pthread_mutex_unlock(&b->lock);
    catalog_free(&gone);
    return ret;
}

/* ---- a run ---- */

/* SHA-256 of a whole file. @return 0 or an errno */
static int
hash_file(int fd, char sha[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char *buf = malloc(IO_CHUNK);
    int e = md == NULL || buf == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ? ENOMEM : 0;
    for (off_t off = 0; e == 0;) {
        ssize_t r = pread(fd, buf, IO_CHUNK, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            e = errno;
        if (r <= 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)r);
        off += r;
    }
    if (e == 0) {
        unsigned char d[32];
        unsigned int n = 0;
        EVP_DigestFinal_ex(md, d, &n);
        hex_of(d, 32, sha);
    }
    EVP_MD_CTX_free(md);
    free(buf);
    return e;
}

/* Reads back what a store holds without a verdict (a run interrupted before its read-back, objects copied by hand). */
static void
read_back_unchecked(upd_backup_t *b, const char *work, const char *skip_id, FILE *fp)
{
    for (size_t k = 0; k < b->catalog.n && !cancelled(b); ++k) {
        const entry_t *e = &b->catalog.e[k];
        for (size_t i = 0; i < b->ntargets && !cancelled(b); ++i) {
            const copy_t *c = &e->at[i];
            if (!c->has_manifest || c->verdict >= 0 || (skip_id != NULL && strcmp(e->id, skip_id) == 0))
                continue;
            char why[REASON_MAX] = "", dir[1200];
            copy_t got;
            say(dir, sizeof(dir), "%s/verify-%s-%s", work, e->id, b->targets[i].name);
            int r = read_back(b, &b->targets[i], e->id, NULL, dir, NULL, &got, why, sizeof(why));
            rm_rf(dir);
            if (cancelled(b))
                return;
            if (r == 0)
                upd_log_info("backup %s: %s: read back: good (it had no verdict)", e->id, b->targets[i].name);
            else
                upd_log_warn("backup %s: %s: read back: not good: %s", e->id, b->targets[i].name, why);
            if (fp != NULL)
                fprintf(fp, "backup %s: %s: read back (it had no verdict): %s%s\n", e->id, b->targets[i].name, r == 0 ? "good" : "not good: ",
                        r == 0 ? "" : why);
            write_verdict(b, &b->targets[i], e->id, r == 0, r == 0 ? got.sha256 : (c->manifest_ok ? c->sha256 : NULL), why);
        }
    }
}

/* Deletes, per store, what retention says (upd_backup_expired). */
static void
apply_retention(upd_backup_t *b, FILE *fp)
{
    int64_t now = (int64_t)time(NULL);
    size_t n = b->catalog.n;
    upd_backup_entry_t *es = calloc(n + 1, sizeof(*es));
    size_t *idx = calloc(n + 1, sizeof(*idx));
    bool *expire = calloc(n + 1, sizeof(*expire));
    if (es == NULL || idx == NULL || expire == NULL)
        goto Exit;
    for (size_t i = 0; i < b->ntargets && !cancelled(b); ++i) {
        size_t m = 0;
        for (size_t k = 0; k < n; ++k) {
            const entry_t *e = &b->catalog.e[k];
            if (!e->at[i].listed)
                continue;
            es[m] = (upd_backup_entry_t){.time = e->time, .good = e->at[i].verdict == 1};
            idx[m++] = k;
        }
        upd_backup_expired(es, m, now, b->conf.retention, expire);
        for (size_t j = 0; j < m; ++j) {
            if (!expire[j])
                continue;
            const entry_t *e = &b->catalog.e[idx[j]];
            static const char *const names[] = {VERDICT_NAME, MANIFEST_NAME, DATA_NAME};
            int r = 0;
            oerr_t err = {""};
            /* the verdict first, the data last: a deletion cut short leaves nothing that looks good */
            for (size_t q = 0; q < 3 && r == 0; ++q) {
                char key[256];
                key_of(key, sizeof(key), e->id, names[q]);
                r = t_delete(b, &b->targets[i], key, &err);
            }
            if (r == 0 && b->targets[i].s3 == NULL) {
                const char *name;
                int dfd = local_parent(b->storage_fd, PREFIX "x", false, &name);
                if (dfd >= 0) {
                    unlinkat(dfd, e->id, AT_REMOVEDIR);
                    close(dfd);
                }
            }
            if (r != 0) {
                upd_log_error("backup %s: %s: retention could not delete it: %s", e->id, b->targets[i].name, err.message);
                continue;
            }
            upd_log_info("backup %s: %s: deleted (older than %" PRIu64 " days)", e->id, b->targets[i].name, b->conf.retention / 86400);
            if (fp != NULL)
                fprintf(fp, "backup %s: %s: deleted by retention\n", e->id, b->targets[i].name);
            pthread_mutex_lock(&b->lock);
            ++b->deleted_total[i];
            pthread_mutex_unlock(&b->lock);
        }
    }
Exit:
    free(es);
    free(idx);
    free(expire);
}

static void
set_running(upd_backup_t *b, bool running)
{
    pthread_mutex_lock(&b->lock);
    b->running = running;
    pthread_mutex_unlock(&b->lock);
}

/* One backup: the copy, each store's upload and read-back and verdict, then what has no verdict, retention, the catalog. */
static int
run_backup(upd_backup_t *b, const char *id, FILE *fp)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t id_time;
    if (upd_backup_id_parse(id, strlen(id), &id_time) != 0)
        return UPD_EINVAL;
    set_running(b, true);
    pthread_mutex_lock(&b->lock);
    if (id_time > b->last_id_time)
        b->last_id_time = id_time;
    pthread_mutex_unlock(&b->lock);

    char work[1200], path[1300];
    say(work, sizeof(work), "%s/backup-%s.tmp", b->temp_dir, id);
    rm_rf(work); /* what a run killed half way left */
    say(path, sizeof(path), "%s/copy/lmdb", work);
    int fd = -1, ret = 0;
    copy_t made = {0};
    size_t good = 0;
    if (mkdir_p(path) != 0) {
        upd_log_error("backup %s: cannot create %s: %s", id, path, strerror(errno));
        ret = UPD_EIO;
        goto Exit;
    }
    say(path, sizeof(path), "%s/copy/lmdb/" DATA_NAME, work);
    if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        upd_log_error("backup %s: cannot create %s: %s", id, path, strerror(errno));
        ret = UPD_EIO;
        goto Exit;
    }
    /* the copy: a read transaction of its own, writers go on */
    if ((ret = upd_store_copy_compact(b->store, fd)) != 0 || fsync(fd) != 0) {
        upd_log_error("backup %s: the compact copy failed: %s", id, ret != 0 ? upd_strerror(ret) : strerror(errno));
        ret = ret != 0 ? ret : UPD_EIO;
        goto Exit;
    }
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : hash_file(fd, made.sha256);
    if (e != 0) {
        upd_log_error("backup %s: reading the copy: %s", id, strerror(e));
        ret = UPD_EIO;
        goto Exit;
    }
    made.size = (uint64_t)st.st_size;
    /* its schema and audit head, from the copy itself: what the manifest promises is what was copied */
    char why[REASON_MAX] = "";
    say(path, sizeof(path), "%s/copy", work);
    if ((ret = open_and_check(b, path, NULL, &made, why, sizeof(why))) != 0) {
        upd_log_error("backup %s: the copy does not check: %s", id, why);
        goto Exit;
    }
    if (fp != NULL)
        fprintf(fp, "backup %s: copied %" PRIu64 " bytes in %.1f s, SHA-256 %s, audit head %" PRIu64 "\n", id, made.size, since(&t0),
                made.sha256, made.head_seq);
    char *manifest = manifest_text(id, id_time, &made);
    if (manifest == NULL) {
        ret = UPD_ENOMEM;
        goto Exit;
    }
    for (size_t i = 0; i < b->ntargets && !cancelled(b); ++i) {
        const target_t *t = &b->targets[i];
        char key[256];
        oerr_t err = {""};
        progress_t p;
        bool ok = false;
        progress_begin(&p, b, fp, "backup upload", t->name, made.size);
        key_of(key, sizeof(key), id, DATA_NAME);
        int r = t_put_file(b, t, key, fd, made.size, on_upload_progress, &p, &err);
        if (r == 0) {
            p.done = made.size;
            progress_line(&p, true);
            key_of(key, sizeof(key), id, MANIFEST_NAME);
            r = t_put_mem(b, t, key, manifest, strlen(manifest), &err);
        }
        if (r != 0) {
            say(why, sizeof(why), "upload: %s", cancelled(b) ? "cancelled: the program is stopping" : err.message);
        } else {
            char dir[1300];
            copy_t got;
            say(dir, sizeof(dir), "%s/verify-%s", work, t->name);
            progress_begin(&p, b, fp, "backup read-back", t->name, made.size);
            r = read_back(b, t, id, made.sha256, dir, &p, &got, why, sizeof(why));
            rm_rf(dir);
            if (r == 0) {
                p.done = made.size;
                progress_line(&p, true);
                ok = true;
            }
            if (!cancelled(b))
                write_verdict(b, t, id, ok, made.sha256, why);
        }
        if (ok) {
            ++good;
            upd_log_info("backup %s: %s: good: %" PRIu64 " bytes, read back and opened, audit chain verified to seq %" PRIu64, id, t->name,
                         made.size, made.head_seq);
        } else {
            upd_log_error("backup %s: %s: not good: %s", id, t->name, why);
        }
        if (fp != NULL)
            fprintf(fp, "backup %s: %s: %s%s\n", id, t->name, ok ? "good" : "not good: ", ok ? "" : why);
        pthread_mutex_lock(&b->lock);
        if (ok)
            ++b->good_total[i];
        else
            ++b->failed_total[i];
        pthread_mutex_unlock(&b->lock);
    }
    free(manifest);
    close(fd);
    fd = -1;
    rm_rf(work); /* the copy is in the stores now, or failed: either way it goes before the read-backs below need room */
    if (!cancelled(b)) {
        upd_backup_refresh(b);
        if (mkdir_p(work) == 0) {
            read_back_unchecked(b, work, id, fp);
            rm_rf(work);
        }
        apply_retention(b, fp);
        upd_backup_refresh(b);
    }
    ret = good == b->ntargets ? 0 : UPD_EIO;

Exit:
    if (fd >= 0)
        close(fd);
    rm_rf(work);
    pthread_mutex_lock(&b->lock);
    b->running = false;
    if (made.size != 0) {
        b->last_size = made.size;
        b->last_duration = since(&t0);
    }
    pthread_mutex_unlock(&b->lock);
    return ret;
}

int
upd_backup_run_now(upd_backup_t *b, const char *id, FILE *progress)
{
    char own[UPD_BACKUP_ID_LEN + 1];
    if (id == NULL) {
        upd_backup_id_format((int64_t)time(NULL), own);
        id = own;
    }
    if (!b->catalog_loaded)
        upd_backup_refresh(b);
    return run_backup(b, id, progress);
}

/* ---- the thread ---- */

static void *
thread_main(void *arg)
{
    upd_backup_t *b = arg;
    upd_backup_refresh(b);
    int64_t now = (int64_t)time(NULL), next_refresh = now + (int64_t)b->conf.refresh;
    /* a run missed while the program was down: the newest good backup is older than one interval */
    int64_t newest = -1;
    for (size_t k = 0; k < b->catalog.n; ++k)
        for (size_t i = 0; i < b->ntargets; ++i)
            if (b->catalog.e[k].at[i].verdict == 1 && b->catalog.e[k].time > newest)
                newest = b->catalog.e[k].time;
    bool catch_up = b->conf.enabled && newest >= 0 && now - newest > (int64_t)b->conf.interval;
    pthread_mutex_lock(&b->lock);
    while (!b->stopping) {
        now = (int64_t)time(NULL);
        int64_t next = b->conf.enabled ? upd_backup_next_run(now, b->conf.interval, b->conf.at) : INT64_MAX;
        char id[UPD_BACKUP_ID_LEN + 1] = "";
        if (b->pending) {
            memcpy(id, b->pending_id, sizeof(id));
            b->pending = false;
        } else if (catch_up) {
            catch_up = false;
            upd_backup_id_format(now > b->last_id_time ? now : b->last_id_time + 1, id);
            upd_log_info("backup: the newest good one is from more than one interval ago: one runs now");
        } else {
            int64_t until = next < next_refresh ? next : next_refresh;
            struct timespec ts = {.tv_sec = (time_t)until};
            pthread_cond_timedwait(&b->wake, &b->lock, &ts);
            if (b->stopping || b->pending)
                continue;
            now = (int64_t)time(NULL);
            if (now >= next) {
                upd_backup_id_format(next > b->last_id_time ? next : b->last_id_time + 1, id);
            } else if (now >= next_refresh) {
                pthread_mutex_unlock(&b->lock);
                upd_backup_refresh(b);
                pthread_mutex_lock(&b->lock);
                next_refresh = (int64_t)time(NULL) + (int64_t)b->conf.refresh;
                continue;
            } else {
                continue;
            }
        }
        pthread_mutex_unlock(&b->lock);
        upd_log_info("backup %s: starting", id);
        run_backup(b, id, NULL);
        next_refresh = (int64_t)time(NULL) + (int64_t)b->conf.refresh;
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    upd_s3_sync_thread_done();
    return NULL;
}

upd_backup_t *
upd_backup_create(const upd_backup_conf_t *conf, upd_store_t *store, const upd_s3_backend_t *backends, size_t nbackends,
                  const upd_s3_timeouts_t *timeouts, int storage_fd)
{
    upd_backup_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->conf = *conf;
    snprintf(b->temp_dir, sizeof(b->temp_dir), "%s", conf->temp_dir);
    b->conf.temp_dir = b->temp_dir;
    if (b->conf.interval == 0)
        b->conf.interval = 86400;
    if (b->conf.refresh == 0)
        b->conf.refresh = 600;
    b->store = store;
    b->timeouts = timeouts;
    b->storage_fd = storage_fd;
    b->started_at = (int64_t)time(NULL);
    for (size_t i = 0; i < nbackends && i < UPD_BACKUP_STORES_MAX; ++i) {
        snprintf(b->targets[i].name, sizeof(b->targets[i].name), "%s", backends[i].name);
        b->targets[i].s3 = &backends[i];
        ++b->ntargets;
    }
    if (b->ntargets == 0) {
        snprintf(b->targets[0].name, sizeof(b->targets[0].name), "local");
        b->ntargets = 1;
    }
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->request_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME); /* the schedule is wall-clock time */
    pthread_cond_init(&b->wake, &ca);
    pthread_condattr_destroy(&ca);
    return b;
}

int
upd_backup_start(upd_backup_t *b)
{
    if (b->started)
        return 0;
    b->stopping = false;
    if (pthread_create(&b->thread, NULL, thread_main, b) != 0) {
        upd_log_error("backup: cannot start its thread: %s", strerror(errno));
        return UPD_EIO;
    }
    b->started = true;
    if (b->conf.enabled) {
        char next[UPD_BACKUP_ID_LEN + 1];
        upd_backup_id_format(upd_backup_next_run((int64_t)time(NULL), b->conf.interval, b->conf.at), next);
        upd_log_info("backup: every %" PRIu64 " s, the next at %s, kept %" PRIu64 " days, to %zu store(s)", b->conf.interval, next,
                     b->conf.retention / 86400, b->ntargets);
    }
    return 0;
}

void
upd_backup_stop(upd_backup_t *b)
{
    if (b == NULL || !b->started)
        return;
    pthread_mutex_lock(&b->lock);
    __atomic_store_n(&b->stopping, true, __ATOMIC_RELAXED);
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    b->started = false;
}

void
upd_backup_destroy(upd_backup_t *b)
{
    if (b == NULL)
        return;
    upd_backup_stop(b);
    catalog_free(&b->catalog);
    pthread_cond_destroy(&b->wake);
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->request_lock);
    free(b);
}

int
upd_backup_request(upd_backup_t *b, int (*commit)(const char *id, void *arg), void *arg, char id[UPD_BACKUP_ID_LEN + 1])
{
    pthread_mutex_lock(&b->request_lock);
    pthread_mutex_lock(&b->lock);
    bool up = b->started && !b->stopping;
    if (b->pending) {
        memcpy(id, b->pending_id, UPD_BACKUP_ID_LEN + 1);
    } else {
        int64_t now = (int64_t)time(NULL);
        upd_backup_id_format(now > b->last_id_time ? now : b->last_id_time + 1, id);
    }
    pthread_mutex_unlock(&b->lock);
    int err = up ? commit(id, arg) : UPD_EUNAVAILABLE;
    if (err == 0) {
        pthread_mutex_lock(&b->lock);
        if (!b->pending) {
            int64_t t = 0;
            upd_backup_id_parse(id, UPD_BACKUP_ID_LEN, &t);
            memcpy(b->pending_id, id, UPD_BACKUP_ID_LEN + 1);
            b->pending = true;
            if (t > b->last_id_time)
                b->last_id_time = t;
        }
        pthread_cond_signal(&b->wake);
        pthread_mutex_unlock(&b->lock);
    }
    pthread_mutex_unlock(&b->request_lock);
    return err;
}

/* ---- what the catalog says ---- */

/* The first store's copy with a manifest, a good one first. */
static const copy_t *
best_copy(const upd_backup_t *b, const entry_t *e)
{
    const copy_t *any = NULL;
    for (size_t i = 0; i < b->ntargets; ++i) {
        if (e->at[i].manifest_ok && e->at[i].verdict == 1)
            return &e->at[i];
        if (e->at[i].manifest_ok && any == NULL)
            any = &e->at[i];
    }
    return any;
}

json_t *
upd_backup_list_json(upd_backup_t *b)
{
    json_t *list = json_array();
    pthread_mutex_lock(&b->lock);
    for (size_t k = b->catalog.n; k-- > 0;) {
        const entry_t *e = &b->catalog.e[k];
        const copy_t *c = best_copy(b, e);
        json_t *stores = json_object();
        bool good = false;
        for (size_t i = 0; i < b->ntargets; ++i) {
            const copy_t *s = &e->at[i];
            if (!s->listed)
                continue;
            good = good || s->verdict == 1;
            json_t *reason = s->verdict == 1   ? json_null()
                             : s->verdict == 0 ? json_string(s->reason)
                             : json_string(s->has_manifest ? "not read back yet" : "incomplete: no manifest");
            json_object_set_new(stores, b->targets[i].name,
                                json_pack("{s:b, s:o, s:o}", "good", s->verdict == 1, "checked",
                                          s->verdict >= 0 ? json_integer(s->checked) : json_null(), "reason", reason));
        }
        json_t *item = json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:b, s:o}", "id", e->id, "time", (json_int_t)e->time, "size",
                                 c != NULL ? json_integer((json_int_t)c->size) : json_null(), "sha256",
                                 c != NULL ? json_string(c->sha256) : json_null(), "schema",
                                 c != NULL ? json_integer((json_int_t)c->schema) : json_null(), "audit_head",
                                 c != NULL ? json_pack("{s:I, s:s}", "seq", (json_int_t)c->head_seq, "hash", c->head_hash) : json_null(),
                                 "good", good, "stores", stores);
        json_array_append_new(list, item);
    }
    pthread_mutex_unlock(&b->lock);
    return json_pack("{s:o}", "backups", list);
}

void
upd_backup_print(upd_backup_t *b, FILE *fp)
{
    pthread_mutex_lock(&b->lock);
    fprintf(fp, "%-16s  %12s  %-12s  %6s  %10s", "ID", "SIZE", "SHA-256", "SCHEMA", "AUDIT-HEAD");
    for (size_t i = 0; i < b->ntargets; ++i)
        fprintf(fp, "  %-8s", b->targets[i].name);
    fprintf(fp, "\n");
    for (size_t k = b->catalog.n; k-- > 0;) {
        const entry_t *e = &b->catalog.e[k];
        const copy_t *c = best_copy(b, e);
        if (c != NULL)
            fprintf(fp, "%-16s  %12" PRIu64 "  %-12.12s  %6u  %10" PRIu64, e->id, c->size, c->sha256, c->schema, c->head_seq);
        else
            fprintf(fp, "%-16s  %12s  %-12s  %6s  %10s", e->id, "-", "-", "-", "-");
        for (size_t i = 0; i < b->ntargets; ++i) {
            const copy_t *s = &e->at[i];
            fprintf(fp, "  %-8s", !s->listed ? "absent" : s->verdict == 1 ? "good" : s->verdict == 0 ? "BAD" : s->has_manifest ? "unchecked" : "partial");
        }
        fprintf(fp, "\n");
    }
    for (size_t k = b->catalog.n; k-- > 0;)
        for (size_t i = 0; i < b->ntargets; ++i)
            if (b->catalog.e[k].at[i].verdict == 0)
                fprintf(fp, "%s on %s: %s\n", b->catalog.e[k].id, b->targets[i].name, b->catalog.e[k].at[i].reason);
    pthread_mutex_unlock(&b->lock);
}

/* the newest good backup's time in store i (any store: i == ntargets), -1 for none; under lock */
static int64_t
newest_good(const upd_backup_t *b, size_t i)
{
    int64_t t = -1;
    for (size_t k = 0; k < b->catalog.n; ++k)
        for (size_t s = 0; s < b->ntargets; ++s)
            if ((i == b->ntargets || s == i) && b->catalog.e[k].at[s].verdict == 1 && b->catalog.e[k].time > t)
                t = b->catalog.e[k].time;
    return t;
}

void
upd_backup_render_metrics(upd_backup_t *b, FILE *fp)
{
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&b->lock);
    int64_t any = newest_good(b, b->ntargets);
    fprintf(fp, "# HELP updraft_backup_age_seconds Age of the newest backup that is good in at least one store.\n"
                "# TYPE updraft_backup_age_seconds gauge\n");
    if (any >= 0)
        fprintf(fp, "updraft_backup_age_seconds %" PRId64 "\n", now - any);
    fprintf(fp, "# HELP updraft_backup_store_age_seconds Age of the newest good backup in each store.\n"
                "# TYPE updraft_backup_store_age_seconds gauge\n");
    for (size_t i = 0; i < b->ntargets; ++i) {
        int64_t t = newest_good(b, i);
        if (t >= 0)
            fprintf(fp, "updraft_backup_store_age_seconds{store=\"%s\"} %" PRId64 "\n", b->targets[i].name, now - t);
    }
    fprintf(fp, "# HELP updraft_backups_total Backups made by this process, per store and outcome (good: read back and checked).\n"
                "# TYPE updraft_backups_total counter\n");
    for (size_t i = 0; i < b->ntargets; ++i)
        fprintf(fp, "updraft_backups_total{store=\"%s\",outcome=\"good\"} %" PRIu64 "\nupdraft_backups_total{store=\"%s\",outcome=\"failed\"} %" PRIu64 "\n",
                b->targets[i].name, b->good_total[i], b->targets[i].name, b->failed_total[i]);
    fprintf(fp, "# HELP updraft_backup_deleted_total Backups deleted by retention, per store.\n"
                "# TYPE updraft_backup_deleted_total counter\n");
    for (size_t i = 0; i < b->ntargets; ++i)
        fprintf(fp, "updraft_backup_deleted_total{store=\"%s\"} %" PRIu64 "\n", b->targets[i].name, b->deleted_total[i]);
    fprintf(fp, "# HELP updraft_backup_list_failures_total Listings of a store's backups that failed.\n"
                "# TYPE updraft_backup_list_failures_total counter\n");
    for (size_t i = 0; i < b->ntargets; ++i)
        fprintf(fp, "updraft_backup_list_failures_total{store=\"%s\"} %" PRIu64 "\n", b->targets[i].name, b->list_failures[i]);
    fprintf(fp, "# HELP updraft_backup_running 1 while a backup runs.\n# TYPE updraft_backup_running gauge\nupdraft_backup_running %d\n",
            b->running ? 1 : 0);
    fprintf(fp, "# HELP updraft_backup_last_size_bytes Size of the last compact copy.\n# TYPE updraft_backup_last_size_bytes gauge\n"
                "updraft_backup_last_size_bytes %" PRIu64 "\n",
            b->last_size);
    fprintf(fp, "# HELP updraft_backup_last_duration_seconds How long the last run took, read-backs and retention included.\n"
                "# TYPE updraft_backup_last_duration_seconds gauge\nupdraft_backup_last_duration_seconds %.3f\n",
            b->last_duration);
    pthread_mutex_unlock(&b->lock);
}

int
upd_backup_health(upd_backup_t *b, int64_t now, char *out, size_t cap)
{
    int lines = 0;
    size_t len = 0;
    out[0] = '\0';
    if (!b->conf.enabled)
        return 0;
    int64_t limit = 2 * (int64_t)b->conf.interval;
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->ntargets && len < cap; ++i) {
        int64_t t = newest_good(b, i);
        int n = 0;
        if (t >= 0 && now - t > limit)
            n = snprintf(out + len, cap - len, "%swarning: backups: %s: the newest good backup is %" PRId64 " s old, over twice the interval (%" PRIu64 " s)",
                         lines ? "\n" : "", b->targets[i].name, now - t, b->conf.interval);
        else if (t < 0 && now - b->started_at > limit)
            n = snprintf(out + len, cap - len, "%swarning: backups: %s: no good backup, and the control plane started %" PRId64 " s ago (over twice the interval, %" PRIu64 " s)",
                         lines ? "\n" : "", b->targets[i].name, now - b->started_at, b->conf.interval);
        if (n > 0) {
            len += (size_t)n < cap - len ? (size_t)n : cap - len - 1;
            ++lines;
        }
    }
    pthread_mutex_unlock(&b->lock);
    return lines;
}

/* ---- restore ---- */

/* Whether path holds nothing (it may not exist), the storage directory in use aside (it lives in DATA_DIR by default). */
static bool
dir_is_empty(const char *path, int storage_fd)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOENT;
    struct stat storage;
    bool empty = true, has_storage = storage_fd >= 0 && fstat(storage_fd, &storage) == 0;
    for (struct dirent *e; empty && (e = readdir(d)) != NULL;) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (has_storage && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == storage.st_dev &&
            st.st_ino == storage.st_ino)
            continue;
        empty = false;
    }
    closedir(d);
    return empty;
}

/* ---- the stores as the roll-forward reads them (control/restore.h) ---- */

typedef struct {
    upd_backup_t *b;
    const target_t *t;
} source_t;

static int
source_get(void *ctx, const char *key, upd_restore_sink_cb sink, void *arg, char *msg, size_t cap)
{
    const source_t *s = ctx;
    oerr_t err = {""};
    int r = t_get(s->b, s->t, key, sink, arg, &err);
    if (r != 0)
        say(msg, cap, "%s", err.message);
    return r;
}

/* The objects under prefix: a listing of an S3 backend, or the regular files of that directory of the local one. */
static int
source_list(void *ctx, const char *prefix, int (*cb)(const char *key, uint64_t size, void *arg), void *arg, char *msg, size_t cap)
{
    const source_t *s = ctx;
    if (s->t->s3 != NULL) {
        upd_s3_result_t res;
        int r = upd_s3_list(s->t->s3, s->b->timeouts, prefix, cb, arg, &res);
        if (r == UPD_EIO || r == UPD_ETOOBIG)
            say(msg, cap, "listing %s: %s", prefix, res.message);
        return r == UPD_ETOOBIG ? UPD_EIO : r;
    }
    char probe[600];
    const char *name;
    say(probe, sizeof(probe), "%sx", prefix);
    int dfd = local_parent(s->b->storage_fd, probe, false, &name);
    if (dfd < 0) {
        if (errno == ENOENT)
            return 0; /* nothing there yet */
        say(msg, cap, "local: %s: %s", prefix, strerror(errno));
        return UPD_EIO;
    }
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        say(msg, cap, "local: %s: %s", prefix, strerror(errno));
        close(dfd);
        return UPD_EIO;
    }
    int r = 0;
    for (struct dirent *e; r == 0 && (e = readdir(d)) != NULL;) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        char key[600];
        say(key, sizeof(key), "%s%.255s", prefix, e->d_name);
        r = cb(key, (uint64_t)st.st_size, arg);
    }
    closedir(d);
    return r;
}

/* Opens the copy in work/ read-write and rolls it forward from every store. @return as upd_restore_roll_forward */
static int
roll_forward(upd_backup_t *b, const char *work, const upd_backup_restore_opts_t *opts, FILE *progress, upd_restore_report_t *report)
{
    source_t ctx[UPD_BACKUP_STORES_MAX];
    upd_restore_source_t src[UPD_BACKUP_STORES_MAX];
    for (size_t i = 0; i < b->ntargets; ++i) {
        ctx[i] = (source_t){b, &b->targets[i]};
        src[i] = (upd_restore_source_t){.name = b->targets[i].name, .get = source_get, .list = source_list, .ctx = &ctx[i]};
    }
    upd_store_t *s = NULL;
    upd_store_opts_t sopts = {.map_size = b->conf.map_size};
    int r = upd_store_open(work, &sopts, &s);
    if (r != 0) {
        upd_store_close(s);
        memset(report, 0, sizeof(*report));
        return r;
    }
    upd_restore_opts_t ropts = {.doc_max = opts->doc_max};
    r = upd_restore_roll_forward(s, src, b->ntargets, &ropts, progress, report);
    upd_store_close(s);
    return r;
}

/* What a roll-forward left out, as one sentence. */
static void
incomplete_why(int r, const upd_restore_report_t *rep, const char *lmdb, char *why, size_t why_cap)
{
    size_t len = 0;
    len += (size_t)snprintf(why + len, why_cap - len, "restored into %s, but not rolled forward completely:", lmdb);
    if (r == UPD_EIO && len < why_cap)
        len += (size_t)snprintf(why + len, why_cap - len, " no store could be read, so changes made after the backup are missing;");
    if (rep->apps_refused != 0 && len < why_cap)
        len += (size_t)snprintf(why + len, why_cap - len, " left at the backup's state (no published document accepted): %s;",
                                rep->refused);
    if (rep->audit_held > rep->audit_to && len < why_cap)
        len += (size_t)snprintf(why + len, why_cap - len, " the audit chain continues to record %" PRIu64 " of the %" PRIu64
                                                          " the stores name;", rep->audit_to, rep->audit_held);
    if (len < why_cap)
        snprintf(why + len, why_cap - len, " see the lines above, and do not start the control plane on it before they are mended");
}

int
upd_backup_restore(upd_backup_t *b, const char *id, const char *data_dir, const upd_backup_restore_opts_t *opts, FILE *progress,
                   upd_restore_report_t *report, char *why, size_t why_cap)
{
    int64_t t;
    memset(report, 0, sizeof(*report));
    if (upd_backup_id_parse(id, strlen(id), &t) != 0) {
        say(why, why_cap, "%s is no backup id (YYYYMMDDTHHMMSSZ, as `backup list` shows)", id);
        return UPD_EINVAL;
    }
    size_t order[UPD_BACKUP_STORES_MAX], n = 0;
    for (size_t i = 0; i < b->ntargets; ++i)
        if (opts->from == NULL || strcmp(opts->from, b->targets[i].name) == 0)
            order[n++] = i;
    if (n == 0) {
        say(why, why_cap, "--from %s: this configuration has no such store (it has %s%s%s)", opts->from, b->targets[0].name,
                 b->ntargets > 1 ? " and " : "", b->ntargets > 1 ? b->targets[1].name : "");
        return UPD_EINVAL;
    }
    if (!dir_is_empty(data_dir, b->storage_fd) && !opts->force) {
        say(why, why_cap, "%s is not empty: restore into an empty directory, or pass --force to replace its lmdb/ (kept beside it "
                               "as lmdb.replaced-ID)", data_dir);
        return UPD_EEXIST;
    }
    char work[1200], lmdb[1200];
    say(work, sizeof(work), "%s/.restore-%s", data_dir, id);
    say(lmdb, sizeof(lmdb), "%s/lmdb", data_dir);
    if (mkdir_p(data_dir) != 0) {
        say(why, why_cap, "cannot create %s: %s", data_dir, strerror(errno));
        return UPD_EIO;
    }
    int ret = UPD_ENOTFOUND;
    why[0] = '\0';
    for (size_t k = 0; k < n; ++k) {
        const target_t *tg = &b->targets[order[k]];
        rm_rf(work);
        progress_t p;
        progress_begin(&p, b, progress, "restore", tg->name, 0);
        copy_t got;
        char reason[REASON_MAX] = "";
        int r = read_back(b, tg, id, NULL, work, &p, &got, reason, sizeof(reason));
        if (r != 0) {
            rm_rf(work);
            if (progress != NULL)
                fprintf(progress, "restore: %s: %s%s\n", tg->name, reason, k + 1 < n ? ": trying the next store" : "");
            size_t wl = strlen(why);
            say(why + wl, why_cap - wl, "%s%s: %s", wl ? "; " : "", tg->name, reason);
            if (r != UPD_ENOTFOUND)
                ret = UPD_EIO;
            continue;
        }
        p.total = p.done = got.size;
        progress_line(&p, true);
        double s = since(&p.start);
        if (progress != NULL)
            fprintf(progress, "restore: %s: SHA-256 %s matches the manifest; opened: schema %u, audit chain verified from seq 1 to %" PRIu64 "\n",
                    tg->name, got.sha256, got.schema, got.head_seq);
        /*
         * Rolled forward before it is moved into place, so that DATA_DIR/lmdb is either what it was or the whole result.
         * What failed to roll forward (a refused document) leaves the rest in place all the same, and is said.
         */
        int rolled = 0;
        if (opts->roll_forward) {
            if (progress != NULL)
                fprintf(progress, "restore: rolling forward from the stores: release state and audit records published after the backup\n");
            rolled = roll_forward(b, work, opts, progress, report);
            if (rolled != 0 && rolled != UPD_EINTEGRITY && rolled != UPD_EIO) {
                say(why, why_cap, "the restored environment could not be rolled forward: %s; nothing was moved into %s", upd_strerror(rolled),
                    lmdb);
                rm_rf(work);
                return UPD_EIO;
            }
        } else if (progress != NULL) {
            fprintf(progress, "restore: not rolled forward (--no-roll-forward): the environment is exactly as backed up at %s; release "
                              "state and audit records the stores hold from after it are left out, so a control plane started on it "
                              "would publish that older state again\n",
                    id);
        }
        /* into place: the old environment kept aside, the new one renamed in, its lock file left to LMDB */
        char lock[1300], aside[1300];
        say(lock, sizeof(lock), "%s/lmdb/lock.mdb", work);
        unlink(lock);
        struct stat st;
        if (stat(lmdb, &st) == 0) {
            char now_id[UPD_BACKUP_ID_LEN + 1];
            upd_backup_id_format((int64_t)time(NULL), now_id);
            say(aside, sizeof(aside), "%s/lmdb.replaced-%s", data_dir, now_id);
            if (rename(lmdb, aside) != 0) {
                say(why, why_cap, "cannot move %s aside: %s", lmdb, strerror(errno));
                rm_rf(work);
                return UPD_EIO;
            }
            if (progress != NULL)
                fprintf(progress, "restore: the environment it replaces is kept as %s\n", aside);
        }
        char from_dir[1300];
        say(from_dir, sizeof(from_dir), "%s/lmdb", work);
        if (rename(from_dir, lmdb) != 0) {
            say(why, why_cap, "cannot move the restored environment to %s: %s", lmdb, strerror(errno));
            rm_rf(work);
            return UPD_EIO;
        }
        rm_rf(work);
        int dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        if (progress != NULL)
            fprintf(progress, "restore: done: backup %s from %s, %" PRIu64 " bytes in %.1f s (%.1f MB/s), %s, in %s\n", id, tg->name,
                    got.size, s, s > 0 ? (double)got.size / 1e6 / s : 0.0,
                    !opts->roll_forward ? "not rolled forward" : rolled == 0 ? "rolled forward" : "rolled forward INCOMPLETELY", lmdb);
        if (rolled != 0) {
            incomplete_why(rolled, report, lmdb, why, why_cap);
            return UPD_EINTEGRITY;
        }
        return 0;
    }
    if (ret == UPD_ENOTFOUND) {
        size_t wl = strlen(why);
        say(why + wl, why_cap - wl, " (no store holds backup %s)", id);
    }
    return ret;
}
