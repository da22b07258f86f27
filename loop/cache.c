#include "loop/cache.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"

#define TMP_PREFIX ".fill-"

typedef enum { OBJ_FILLING, OBJ_COMPLETE, OBJ_FAILED } obj_state_t;

struct st_upd_cache_obj_t {
    upd_cache_t *c;
    uint8_t sha512[64];
    uint64_t size;
    obj_state_t state;
    int result;
    int fd;            /* -1 until needed for an object found on disk */
    uint8_t *map;      /* the complete object, mapped on first use */
    bool map_failed;
    bool indexed;      /* in the hash index (and, once complete, in the LRU list) */
    bool cacheable;    /* fits under the cap: kept on disk once verified */
    bool paused;       /* the fill is held back for readers */
    size_t refs;       /* readers, the index, the fill */
    size_t readers;
    uint64_t available;
    uint64_t reader_max; /* the furthest any reader has sent */
    uint64_t used_seq;   /* when it was last asked for: the LRU order */
    upd_fetch_t *fetch;
    char tmp_name[48];
    char path[64];
    h2o_linklist_t waiters;
    h2o_timeout_entry_t wake_entry;
    h2o_linklist_t lru;
    upd_cache_obj_t *hnext;
};

/* A verified fill to make durable and name, off the loop (fsync of a large file takes a while). */
typedef struct st_finish_job_t {
    struct st_finish_job_t *next;
    upd_cache_obj_t *o; /* holds the fill's reference until the job is back on the loop */
    int fd, dirfd;
    char tmp_name[48], name[129];
    int err; /* errno of fsync or rename, 0 when the object is in place */
    const char *what;
} finish_job_t;

struct st_upd_cache_t {
    char *dir;
    int dirfd;
    uint64_t max_bytes, lead, used;
    upd_backends_t *bs;
    h2o_loop_t *loop;
    h2o_timeout_t *zero_timeout;
    upd_cache_obj_t **buckets;
    size_t nbuckets, count;
    h2o_linklist_t lru; /* complete indexed objects, most recently used first */
    uint64_t tmp_seq;
    uint64_t use_seq;
    /* the finisher thread: jobs in, completions back through a pipe the loop watches */
    pthread_t finisher;
    bool finisher_started;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    finish_job_t *jobs, **jobs_tail;
    bool quit;
    int pipe[2];
    h2o_socket_t *pipe_sock;
    uint64_t hits, misses, joins, evictions, fills, fill_failures, uncacheable;
};

static const upd_fetch_sink_t sink;

/* ---- index ---- */

static size_t
bucket_of(const upd_cache_t *c, const uint8_t *sha512)
{
    uint64_t h;
    memcpy(&h, sha512, sizeof(h)); /* a digest: its bytes are already uniform */
    return (size_t)(h & (c->nbuckets - 1));
}

static upd_cache_obj_t *
index_find(const upd_cache_t *c, const uint8_t *sha512)
{
    for (upd_cache_obj_t *o = c->buckets[bucket_of(c, sha512)]; o != NULL; o = o->hnext)
        if (memcmp(o->sha512, sha512, 64) == 0)
            return o;
    return NULL;
}

static void
index_insert(upd_cache_t *c, upd_cache_obj_t *o)
{
    if (c->count + 1 > c->nbuckets) {
        size_t n = c->nbuckets * 2;
        upd_cache_obj_t **b = calloc(n, sizeof(*b));
        if (b != NULL) {
            for (size_t i = 0; i < c->nbuckets; ++i) {
                upd_cache_obj_t *next;
                for (upd_cache_obj_t *x = c->buckets[i]; x != NULL; x = next) {
                    next = x->hnext;
                    size_t j;
                    uint64_t h;
                    memcpy(&h, x->sha512, sizeof(h));
                    j = (size_t)(h & (n - 1));
                    x->hnext = b[j];
                    b[j] = x;
                }
            }
            free(c->buckets);
            c->buckets = b;
            c->nbuckets = n;
        }
    }
    size_t i = bucket_of(c, o->sha512);
    o->hnext = c->buckets[i];
    c->buckets[i] = o;
    o->indexed = true;
    ++o->refs;
    ++c->count;
}

static void obj_unref(upd_cache_obj_t *o);

static void
index_remove(upd_cache_t *c, upd_cache_obj_t *o)
{
    upd_cache_obj_t **pp = &c->buckets[bucket_of(c, o->sha512)];
    while (*pp != o)
        pp = &(*pp)->hnext;
    *pp = o->hnext;
    o->indexed = false;
    --c->count;
    if (h2o_linklist_is_linked(&o->lru))
        h2o_linklist_unlink(&o->lru);
    obj_unref(o);
}

static void
hex_name(const uint8_t *sha512, char out[129])
{
    upd_hex_encode(sha512, 64, out);
}

static void
obj_free(upd_cache_obj_t *o)
{
    if (h2o_timeout_is_linked(&o->wake_entry))
        h2o_timeout_unlink(&o->wake_entry);
    if (o->map != NULL)
        munmap(o->map, o->size);
    if (o->fd >= 0)
        close(o->fd);
    free(o);
}

static void
obj_unref(upd_cache_obj_t *o)
{
    if (--o->refs == 0)
        obj_free(o);
}

/* Drops the least recently used complete objects until `need` more bytes fit under the cap. */
static void
make_room(upd_cache_t *c, uint64_t need)
{
    while (c->used + need > c->max_bytes && !h2o_linklist_is_empty(&c->lru)) {
        upd_cache_obj_t *victim = H2O_STRUCT_FROM_MEMBER(upd_cache_obj_t, lru, c->lru.prev);
        char name[129];
        hex_name(victim->sha512, name);
        /* readers still streaming it keep their mapping or descriptor: unlinking only drops the name */
        if (unlinkat(c->dirfd, name, 0) != 0 && errno != ENOENT)
            upd_log_warn("cache: cannot remove %s/%s: %s", c->dir, name, strerror(errno));
        c->used -= victim->size;
        ++c->evictions;
        upd_log_debug("cache: evicted %s (%" PRIu64 " bytes)", name, victim->size);
        index_remove(c, victim);
    }
}

/* ---- waking readers ---- */

static void
on_wake(h2o_timeout_entry_t *entry)
{
    upd_cache_obj_t *o = H2O_STRUCT_FROM_MEMBER(upd_cache_obj_t, wake_entry, entry);
    h2o_linklist_t list;
    h2o_linklist_init_anchor(&list);
    h2o_linklist_insert_list(&list, &o->waiters);
    ++o->refs; /* a reader finishing in its callback may drop the last reference */
    while (!h2o_linklist_is_empty(&list)) {
        upd_cache_waiter_t *w = H2O_STRUCT_FROM_MEMBER(upd_cache_waiter_t, link, list.next);
        h2o_linklist_unlink(&w->link);
        w->cb(w);
    }
    obj_unref(o);
}

/*
 * Wakes the waiting readers at once. Called from the fill's own progress, inside libcurl's callbacks: libcurl reads
 * many blocks per socket event, so a wake deferred to the loop's next turn would hold readers back until it yields.
 * Readers only send from here (h2o completes writes later), and the fill's reference keeps the object alive.
 */
static void
wake_now(upd_cache_obj_t *o)
{
    if (h2o_linklist_is_empty(&o->waiters))
        return;
    if (h2o_timeout_is_linked(&o->wake_entry))
        h2o_timeout_unlink(&o->wake_entry);
    on_wake(&o->wake_entry);
}

static void
wake(upd_cache_obj_t *o)
{
    if (!h2o_linklist_is_empty(&o->waiters) && !h2o_timeout_is_linked(&o->wake_entry))
        h2o_timeout_link(o->c->loop, o->c->zero_timeout, &o->wake_entry);
}

void
upd_cache_obj_wait(upd_cache_obj_t *o, upd_cache_waiter_t *w)
{
    h2o_linklist_insert(&o->waiters, &w->link);
    if (o->state != OBJ_FILLING)
        wake(o);
}

void
upd_cache_obj_unwait(upd_cache_waiter_t *w)
{
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
}

/* ---- the fill ---- */

/* On a hash thread (loop/fetch.h on_write): the copy into the fill file, off the loop. Touches only the fd and names,
 * which stay put while the fill lives (cancelling a fill waits for this). */
static int
write_block(void *arg, uint64_t off, const uint8_t *p, size_t len)
{
    const upd_cache_obj_t *o = arg;
    while (len > 0) {
        ssize_t n = pwrite(o->fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            upd_log_error("cache: writing %s/%s: %s", o->c->dir, o->tmp_name, n < 0 ? strerror(errno) : "no progress");
            return -1;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* On the loop: a verified block is in the fill file (write_block put it there); readers may have it. */
static int
on_verified(void *arg, uint64_t off, const uint8_t *p, size_t len)
{
    upd_cache_obj_t *o = arg;
    off += len;
    /* the first block starts the waiting responses at once; later ones wake readers on the loop's next turn, which
     * batches their sends behind libcurl's reads (waking them per block measured slower) */
    bool first = o->available == 0;
    o->available = off;
    if (first)
        wake_now(o);
    else
        wake(o);
    return 0;
}

static bool
should_pause(void *arg, uint64_t verified)
{
    upd_cache_obj_t *o = arg;
    /* with no reader left the fill runs at full speed: the cache still wants the object */
    o->paused = o->readers > 0 && verified >= o->reader_max + o->c->lead;
    return o->paused;
}

static void
on_fill_done(void *arg, int result, const char *path)
{
    upd_cache_obj_t *o = arg;
    upd_cache_t *c = o->c;
    char name[129];
    hex_name(o->sha512, name);
    o->fetch = NULL;
    snprintf(o->path, sizeof(o->path), "%s", path);
    if (result == 0 && o->cacheable && o->indexed) {
        /* every byte is verified and readable now; making the file durable and naming it happens on the finisher
         * thread, and the object counts as cached once that is done (the fill's reference goes with the job) */
        finish_job_t *j = calloc(1, sizeof(*j));
        if (j == NULL)
            abort();
        j->o = o;
        j->fd = o->fd;
        j->dirfd = c->dirfd;
        memcpy(j->tmp_name, o->tmp_name, sizeof(j->tmp_name));
        memcpy(j->name, name, sizeof(j->name));
        pthread_mutex_lock(&c->mutex);
        *c->jobs_tail = j;
        c->jobs_tail = &j->next;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mutex);
        wake(o);
        return;
    }
    if (result == 0) {
        /* over the cap: streamed to its readers, not kept */
        unlinkat(c->dirfd, o->tmp_name, 0);
        o->state = OBJ_COMPLETE;
        ++c->fills;
        if (o->indexed)
            index_remove(c, o);
    }
    if (result != 0) {
        unlinkat(c->dirfd, o->tmp_name, 0);
        o->state = OBJ_FAILED;
        o->result = result;
        ++c->fill_failures;
        if (o->cacheable)
            c->used -= o->size;
        if (o->indexed)
            index_remove(c, o);
    }
    wake(o);
    obj_unref(o); /* the fill's reference */
}

static const upd_fetch_sink_t sink = {on_verified, should_pause, on_fill_done, write_block};

/* ---- the finisher thread ---- */

static void *
finisher_main(void *arg)
{
    upd_cache_t *c = arg;
    pthread_mutex_lock(&c->mutex);
    for (;;) {
        while (c->jobs == NULL && !c->quit)
            pthread_cond_wait(&c->cond, &c->mutex);
        if (c->jobs == NULL)
            break;
        finish_job_t *j = c->jobs;
        if ((c->jobs = j->next) == NULL)
            c->jobs_tail = &c->jobs;
        pthread_mutex_unlock(&c->mutex);
        /* durable bytes first, then the name: a crash leaves either the temporary file or the whole object */
        if (fsync(j->fd) != 0) {
            j->err = errno;
            j->what = "fsync";
        } else if (renameat(j->dirfd, j->tmp_name, j->dirfd, j->name) != 0) {
            j->err = errno;
            j->what = "rename";
        }
        ssize_t n;
        while ((n = write(c->pipe[1], &j, sizeof(j))) < 0 && errno == EINTR)
            ;
        pthread_mutex_lock(&c->mutex);
    }
    pthread_mutex_unlock(&c->mutex);
    return NULL;
}

static void
complete_job(upd_cache_t *c, finish_job_t *j)
{
    upd_cache_obj_t *o = j->o;
    if (j->err == 0) {
        o->state = OBJ_COMPLETE;
        if (o->indexed) {
            /* by when it was last asked for: it may have been served again while the finisher worked */
            h2o_linklist_t *at = c->lru.next;
            while (at != &c->lru && H2O_STRUCT_FROM_MEMBER(upd_cache_obj_t, lru, at)->used_seq > o->used_seq)
                at = at->next;
            h2o_linklist_insert(at, &o->lru);
        }
        ++c->fills;
    } else {
        /* the bytes were verified and their readers keep them; they are just not kept on disk */
        upd_log_error("cache: %s %s/%s: %s; not keeping the object", j->what, c->dir, j->tmp_name, strerror(j->err));
        unlinkat(c->dirfd, j->tmp_name, 0);
        o->state = OBJ_COMPLETE;
        ++c->fill_failures;
        c->used -= o->size;
        if (o->indexed)
            index_remove(c, o);
    }
    wake(o);
    obj_unref(o); /* the fill's reference */
    free(j);
}

static void
on_finished(h2o_socket_t *sock, const char *err)
{
    upd_cache_t *c = sock->data;
    finish_job_t *j;
    ssize_t n;
    while ((n = read(c->pipe[0], &j, sizeof(j))) == (ssize_t)sizeof(j))
        complete_job(c, j);
}

upd_cache_obj_t *
upd_cache_get(upd_cache_t *c, const upd_fetch_spec_t *spec, upd_cache_lookup_t *how)
{
    upd_cache_obj_t *o = index_find(c, spec->sha512);
    if (o != NULL && o->state == OBJ_COMPLETE && o->size != spec->size) {
        /* a file on disk whose size disagrees with the release cannot be those bytes: drop it */
        char name[129];
        hex_name(o->sha512, name);
        upd_log_warn("cache: %s has %" PRIu64 " bytes, the release says %" PRIu64 ": removing it", name, o->size, spec->size);
        unlinkat(c->dirfd, name, 0);
        c->used -= o->size;
        index_remove(c, o);
        o = NULL;
    }
    if (o != NULL) {
        if (o->state == OBJ_COMPLETE || (o->state == OBJ_FILLING && o->fetch == NULL && o->available == o->size)) {
            if (o->fd < 0) {
                char name[129];
                hex_name(o->sha512, name);
                if ((o->fd = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
                    upd_log_warn("cache: %s/%s vanished: %s; fetching it again", c->dir, name, strerror(errno));
                    c->used -= o->size;
                    index_remove(c, o);
                    return upd_cache_get(c, spec, how);
                }
            }
            if (h2o_linklist_is_linked(&o->lru)) { /* not yet while the finisher names it */
                h2o_linklist_unlink(&o->lru);
                h2o_linklist_insert(c->lru.next, &o->lru);
            }
            ++c->hits;
            *how = UPD_CACHE_HIT;
        } else {
            ++c->joins;
            *how = UPD_CACHE_JOINED;
        }
        o->used_seq = ++c->use_seq;
        ++o->refs;
        ++o->readers;
        return o;
    }

    if ((o = calloc(1, sizeof(*o))) == NULL)
        return NULL;
    o->c = c;
    memcpy(o->sha512, spec->sha512, 64);
    o->size = spec->size;
    o->state = OBJ_FILLING;
    o->fd = -1;
    o->used_seq = ++c->use_seq;
    o->wake_entry.cb = on_wake;
    h2o_linklist_init_anchor(&o->waiters);
    o->cacheable = spec->size <= c->max_bytes;
    uint64_t prefix;
    memcpy(&prefix, spec->sha512, sizeof(prefix));
    snprintf(o->tmp_name, sizeof(o->tmp_name), TMP_PREFIX "%016" PRIx64 "-%" PRIu64, prefix, ++c->tmp_seq);
    if ((o->fd = openat(c->dirfd, o->tmp_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        upd_log_error("cache: cannot create %s/%s: %s", c->dir, o->tmp_name, strerror(errno));
        o->state = OBJ_FAILED;
        o->result = UPD_EIO;
        o->refs = 1;
        o->readers = 1;
        *how = UPD_CACHE_MISS;
        return o;
    }
    if (o->size != 0 && ftruncate(o->fd, (off_t)o->size) == 0) {
        /* the file at its final size (sparse until written) and mapped once: readers of the fill send the verified
         * part from the mapping, and keep it when the fill completes (same inode after the rename) */
        void *p = mmap(NULL, o->size, PROT_READ, MAP_SHARED, o->fd, 0);
        if (p != MAP_FAILED)
            o->map = p;
    }
    if (o->cacheable) {
        make_room(c, o->size);
        c->used += o->size;
    } else {
        ++c->uncacheable;
    }
    ++c->misses;
    *how = UPD_CACHE_MISS;
    index_insert(c, o); /* concurrent misses for these bytes join this fill */
    o->refs += 2;       /* this reader, the fill */
    o->readers = 1;
    o->fetch = upd_fetch_start(c->bs, spec, &sink, o); /* may have ended (and failed) already */
    return o;
}

void
upd_cache_obj_release(upd_cache_obj_t *o)
{
    --o->readers;
    if (o->readers == 0 && o->paused && o->fetch != NULL) {
        o->paused = false;
        upd_fetch_resume(o->fetch);
    }
    obj_unref(o);
}

void
upd_cache_obj_progress(upd_cache_obj_t *o, uint64_t off)
{
    if (off > o->reader_max)
        o->reader_max = off;
    if (o->paused && o->fetch != NULL && o->available < o->reader_max + o->c->lead) {
        o->paused = false;
        upd_fetch_resume(o->fetch);
    }
}

uint64_t
upd_cache_obj_available(const upd_cache_obj_t *o)
{
    return o->state == OBJ_COMPLETE ? o->size : o->available;
}

bool
upd_cache_obj_complete(const upd_cache_obj_t *o)
{
    return o->state == OBJ_COMPLETE;
}

int
upd_cache_obj_result(const upd_cache_obj_t *o)
{
    return o->state == OBJ_FAILED ? o->result : 0;
}

const char *
upd_cache_obj_path(const upd_cache_obj_t *o)
{
    return o->fetch != NULL ? upd_fetch_path(o->fetch) : o->path;
}

int
upd_cache_obj_fd(const upd_cache_obj_t *o)
{
    return o->fd;
}

const uint8_t *
upd_cache_obj_map(upd_cache_obj_t *o)
{
    if (o->state == OBJ_FAILED || o->size == 0 || o->map_failed || o->fd < 0 || o->map != NULL)
        return o->map; /* after a failure too: its first upd_cache_obj_available() bytes were verified */
    if (o->state != OBJ_COMPLETE)
        return NULL; /* a fill that could not be mapped: its readers pread */
    if (o->map == NULL) {
        void *p = mmap(NULL, o->size, PROT_READ, MAP_SHARED, o->fd, 0);
        if (p == MAP_FAILED) {
            upd_log_warn("cache: mmap of %" PRIu64 " bytes: %s; serving with reads", o->size, strerror(errno));
            o->map_failed = true;
            return NULL;
        }
        o->map = p;
    }
    return o->map;
}

/* ---- start-up ---- */

typedef struct {
    upd_cache_obj_t *o;
    int64_t mtime;
} found_t;

static int
cmp_mtime(const void *a, const void *b)
{
    const found_t *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Indexes the objects on disk (least recently modified evicted first) and removes interrupted fills. */
static int
rebuild(upd_cache_t *c)
{
    int fd = dup(c->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    found_t *found = NULL;
    size_t n = 0, cap = 0, removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0) {
            /* a fill a crash or kill interrupted: never verified whole, never served again */
            if (unlinkat(c->dirfd, de->d_name, 0) == 0)
                ++removed;
            continue;
        }
        uint8_t sha[64];
        bool ok = strlen(de->d_name) == 128 && upd_hex_decode(de->d_name, 64, sha);
        struct stat st;
        if (!ok || fstatat(c->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        upd_cache_obj_t *o = calloc(1, sizeof(*o));
        if (o == NULL || (n == cap && (found = realloc(found, (cap = cap ? cap * 2 : 64) * sizeof(*found))) == NULL))
            abort();
        o->c = c;
        memcpy(o->sha512, sha, 64);
        o->size = (uint64_t)st.st_size;
        o->state = OBJ_COMPLETE;
        o->cacheable = true;
        o->fd = -1;
        o->wake_entry.cb = on_wake;
        h2o_linklist_init_anchor(&o->waiters);
        found[n++] = (found_t){o, (int64_t)st.st_mtime};
    }
    closedir(d);
    if (n != 0)
        qsort(found, n, sizeof(*found), cmp_mtime);
    for (size_t i = 0; i < n; ++i) {
        index_insert(c, found[i].o);
        h2o_linklist_insert(c->lru.next, &found[i].o->lru); /* newest ends up first */
        c->used += found[i].o->size;
    }
    free(found);
    if (removed != 0)
        upd_log_warn("cache: removed %zu interrupted fill(s) from %s", removed, c->dir);
    upd_log_info("cache: %zu object(s), %" PRIu64 " bytes in %s (cap %" PRIu64 ")", n, c->used, c->dir, c->max_bytes);
    make_room(c, 0);
    return 0;
}

upd_cache_t *
upd_cache_open(const char *dir, uint64_t max_bytes, uint64_t lead_bytes, upd_backends_t *backends, h2o_loop_t *loop,
               h2o_timeout_t *zero_timeout)
{
    upd_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->dir = strdup(dir);
    c->max_bytes = max_bytes;
    c->lead = lead_bytes;
    c->bs = backends;
    c->loop = loop;
    c->zero_timeout = zero_timeout;
    c->nbuckets = 1024;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    h2o_linklist_init_anchor(&c->lru);
    c->pipe[0] = c->pipe[1] = -1;
    pthread_mutex_init(&c->mutex, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->jobs_tail = &c->jobs;
    if ((c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || rebuild(c) != 0) {
        upd_log_error("cache: %s: %s", dir, strerror(errno));
        upd_cache_close(c);
        return NULL;
    }
    if (pipe2(c->pipe, O_CLOEXEC | O_NONBLOCK) != 0 || pthread_create(&c->finisher, NULL, finisher_main, c) != 0) {
        upd_log_error("cache: cannot start its finisher thread: %s", strerror(errno));
        upd_cache_close(c);
        return NULL;
    }
    c->finisher_started = true;
    /* the loop watches the read end (and leaves the reading to on_finished); the thread writes one pointer per
     * finished job */
    c->pipe_sock = h2o_evloop_socket_create(loop, c->pipe[0], H2O_SOCKET_FLAG_DONT_READ);
    c->pipe_sock->data = c;
    h2o_socket_read_start(c->pipe_sock, on_finished);
    return c;
}

void
upd_cache_close(upd_cache_t *c)
{
    if (c == NULL)
        return;
    if (c->finisher_started) {
        /* let the thread finish what it has, then complete those jobs here */
        pthread_mutex_lock(&c->mutex);
        c->quit = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mutex);
        pthread_join(c->finisher, NULL);
        finish_job_t *j;
        while (read(c->pipe[0], &j, sizeof(j)) == (ssize_t)sizeof(j))
            complete_job(c, j);
    }
    if (c->pipe_sock != NULL) {
        h2o_socket_read_stop(c->pipe_sock);
        h2o_socket_close(c->pipe_sock); /* closes pipe[0] */
    } else if (c->pipe[0] >= 0) {
        close(c->pipe[0]);
    }
    if (c->pipe[1] >= 0)
        close(c->pipe[1]);
    for (size_t i = 0; c->buckets != NULL && i < c->nbuckets; ++i) {
        upd_cache_obj_t *next;
        for (upd_cache_obj_t *o = c->buckets[i]; o != NULL; o = next) {
            next = o->hnext;
            if (o->fetch != NULL) {
                /* an unfinished fill: cancel it and drop its temporary file */
                upd_fetch_cancel(o->fetch);
                o->fetch = NULL;
                unlinkat(c->dirfd, o->tmp_name, 0);
                --o->refs;
            }
            if (h2o_linklist_is_linked(&o->lru))
                h2o_linklist_unlink(&o->lru);
            if (h2o_timeout_is_linked(&o->wake_entry))
                h2o_timeout_unlink(&o->wake_entry);
            o->indexed = false;
            if (--o->refs == 0)
                obj_free(o);
        }
    }
    free(c->buckets);
    if (c->dirfd >= 0)
        close(c->dirfd);
    free(c->dir);
    free(c);
}

void
upd_cache_metrics(const upd_cache_t *c, FILE *fp)
{
    fprintf(fp,
            "# HELP updraft_cache_lookups_total Artifact lookups in the disk cache: hit, miss (a fill started), joined (a fill under way).\n"
            "# TYPE updraft_cache_lookups_total counter\n"
            "updraft_cache_lookups_total{result=\"hit\"} %" PRIu64 "\nupdraft_cache_lookups_total{result=\"miss\"} %" PRIu64
            "\nupdraft_cache_lookups_total{result=\"joined\"} %" PRIu64 "\n",
            c->hits, c->misses, c->joins);
    fprintf(fp, "# HELP updraft_cache_fills_total Fills by how they ended.\n# TYPE updraft_cache_fills_total counter\n"
                "updraft_cache_fills_total{result=\"verified\"} %" PRIu64 "\nupdraft_cache_fills_total{result=\"failed\"} %" PRIu64
                "\n",
            c->fills, c->fill_failures);
    fprintf(fp, "# HELP updraft_cache_evictions_total Objects evicted to stay under the size cap.\n"
                "# TYPE updraft_cache_evictions_total counter\nupdraft_cache_evictions_total %" PRIu64 "\n",
            c->evictions);
    fprintf(fp, "# HELP updraft_cache_bytes Bytes held in the cache, fills under way included.\n# TYPE updraft_cache_bytes gauge\n"
                "updraft_cache_bytes %" PRIu64 "\n# HELP updraft_cache_max_bytes The cache's size cap.\n"
                "# TYPE updraft_cache_max_bytes gauge\nupdraft_cache_max_bytes %" PRIu64 "\n",
            c->used, c->max_bytes);
    fprintf(fp, "# HELP updraft_cache_objects Objects in the cache's index.\n# TYPE updraft_cache_objects gauge\nupdraft_cache_objects %zu\n",
            c->count);
}
