#include "loop/cache.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"
#include "domain/release.h"

#define TMP_PREFIX ".fill-"
#define VERIFY_CHUNK (1024 * 1024) /* bytes read per step of a check or the scrub */

/*
 * FILLING: the fill runs, waits in the fill queue (queued), or the object waits for its first-serve check's verdict
 * to become one. CHECKING: found on disk at start-up and asked for before any check vouched for it: its bytes are
 * being hashed on the finisher thread, readers wait.
 */
typedef enum { OBJ_FILLING, OBJ_COMPLETE, OBJ_FAILED, OBJ_CHECKING } obj_state_t;

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
    bool verified;     /* its bytes matched its name in this run: filled here, or checked since start-up */
    bool counted;      /* its size is in the cache's used bytes */
    bool queued;       /* waiting in the fill queue for a slot */
    h2o_linklist_t queue_link;
    upd_fetch_spec_t spec; /* what a fill not yet started needs (key and digests owned), key NULL when none */
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

/*
 * Work done off the loop, answered through the cache's pipe: a verified fill to make durable and name (fsync of a
 * large file takes a while), on the finisher thread; a first-serve check of an object found at start-up, on the
 * finisher thread too; the verdict of the background scrub on one file, from the scrub thread.
 */
typedef enum { JOB_FINISH, JOB_CHECK, JOB_SCRUB } job_kind_t;

typedef struct st_finish_job_t {
    struct st_finish_job_t *next;
    job_kind_t kind;
    upd_cache_obj_t *o; /* FINISH and CHECK: holds a reference until the job is back on the loop; SCRUB: NULL */
    int fd, dirfd;      /* CHECK: the descriptor the check read (handed to the object when it passed), or -1 */
    char tmp_name[48], name[129];
    int err; /* FINISH: errno of fsync or rename, 0 when the object is in place; CHECK, SCRUB: of open or read */
    const char *what;
    bool ok;          /* CHECK, SCRUB: the bytes hash to the name */
    uint8_t sha512[64]; /* SCRUB: the name, decoded */
    dev_t dev;        /* SCRUB: the file checked, so that a newer file of the same name is not removed */
    ino_t ino;
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
    bool closing; /* upd_cache_close runs: checks that come back start no fill */
    /* the fill cap: fills at once, and misses waiting for a slot (FIFO) */
    uint32_t max_fills, fill_queue_cap;
    uint32_t fills_active, fills_active_max, queued;
    h2o_linklist_t fill_queue;
    h2o_timeout_entry_t pump_entry;
    /* the scrub thread: re-hashes every object at scrub_rate bytes/s (0: none) */
    uint64_t scrub_rate;
    pthread_t scrubber;
    bool scrubber_started, scrub_quit;
    pthread_mutex_t scrub_mutex;
    pthread_cond_t scrub_cond;
    uint64_t scrub_bytes, scrub_passes; /* written by the scrub thread (atomics) */
    uint64_t hits, misses, joins, evictions, fills, fill_failures, uncacheable;
    uint64_t fills_queued, fills_rejected;
    uint64_t checks_ok, checks_corrupt, scrub_ok, scrub_corrupt, scrub_removed;
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

/* Takes an object's bytes out of the cache's total (once). */
static void
uncount(upd_cache_t *c, upd_cache_obj_t *o)
{
    if (o->counted) {
        c->used -= o->size;
        o->counted = false;
    }
}

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
    free((char *)o->spec.key);
    free((uint8_t *)o->spec.blocks);
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
        uncount(c, victim);
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
    /* an object that has ended answers at once; a fill or a first-serve check wakes its readers when it moves */
    if (o->state == OBJ_COMPLETE || o->state == OBJ_FAILED)
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

static void fill_slot_free(upd_cache_t *c);

static void
on_fill_done(void *arg, int result, const char *path)
{
    upd_cache_obj_t *o = arg;
    upd_cache_t *c = o->c;
    char name[129];
    hex_name(o->sha512, name);
    o->fetch = NULL;
    fill_slot_free(c);
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
        uncount(c, o);
        if (o->indexed)
            index_remove(c, o);
    }
    wake(o);
    obj_unref(o); /* the fill's reference */
}

static const upd_fetch_sink_t sink = {on_verified, should_pause, on_fill_done, write_block};

/* ---- the fill cap: at most max_fills fills at once, the next misses wait in a bounded FIFO ---- */

/* Keeps what a fill not started yet needs: the caller's spec points into a read transaction that ends. */
static int
spec_save(upd_cache_obj_t *o, const upd_fetch_spec_t *spec)
{
    if (o->spec.key != NULL)
        return 0;
    o->spec = *spec;
    o->spec.sha512 = o->sha512;
    o->spec.blocks = NULL;
    if ((o->spec.key = strdup(spec->key)) == NULL)
        return UPD_ENOMEM;
    if (spec->nblocks != 0) {
        size_t len = spec->nblocks * upd_block_digest_len(spec->block_alg); /* 16 bytes each for XXH3-128 releases */
        uint8_t *b = malloc(len);
        if (b == NULL)
            return UPD_ENOMEM;
        memcpy(b, spec->blocks, len);
        o->spec.blocks = b;
    }
    return 0;
}

static void
spec_free(upd_cache_obj_t *o)
{
    free((char *)o->spec.key);
    free((uint8_t *)o->spec.blocks);
    memset(&o->spec, 0, sizeof(o->spec));
}

/* A fill that never ran ends: its readers get err, the index forgets the object, the fill's reference goes. */
static void
fill_fail(upd_cache_t *c, upd_cache_obj_t *o, int err)
{
    o->state = OBJ_FAILED;
    o->result = err;
    uncount(c, o);
    spec_free(o);
    if (o->indexed)
        index_remove(c, o);
    wake(o);
    obj_unref(o); /* the fill's reference */
}

/* Starts a fill now: its temporary file, its place under the cap, its fetch. Takes a slot. */
static void
fill_run(upd_cache_t *c, upd_cache_obj_t *o)
{
    uint64_t prefix;
    memcpy(&prefix, o->sha512, sizeof(prefix));
    snprintf(o->tmp_name, sizeof(o->tmp_name), TMP_PREFIX "%016" PRIx64 "-%" PRIu64, prefix, ++c->tmp_seq);
    if ((o->fd = openat(c->dirfd, o->tmp_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        upd_log_error("cache: cannot create %s/%s: %s", c->dir, o->tmp_name, strerror(errno));
        ++c->fill_failures;
        fill_fail(c, o, UPD_EIO);
        return;
    }
    if (o->size != 0 && ftruncate(o->fd, (off_t)o->size) == 0) {
        /* the file at its final size (sparse until written) and mapped once: readers of the fill send the verified
         * part from the mapping, and keep it when the fill completes (same inode after the rename) */
        void *p = mmap(NULL, o->size, PROT_READ, MAP_SHARED, o->fd, 0);
        if (p != MAP_FAILED)
            o->map = p;
    }
    if (o->cacheable && !o->counted) {
        make_room(c, o->size);
        c->used += o->size;
        o->counted = true;
    }
    if (++c->fills_active > c->fills_active_max)
        c->fills_active_max = c->fills_active;
    /* the fetch may end before it returns (every breaker open), and with it the fill's reference */
    ++o->refs;
    o->fetch = upd_fetch_start(c->bs, &o->spec, &sink, o); /* copies the spec */
    spec_free(o);
    obj_unref(o);
}

static void
on_pump(h2o_timeout_entry_t *entry)
{
    upd_cache_t *c = H2O_STRUCT_FROM_MEMBER(upd_cache_t, pump_entry, entry);
    while (c->fills_active < c->max_fills && !h2o_linklist_is_empty(&c->fill_queue)) {
        upd_cache_obj_t *o = H2O_STRUCT_FROM_MEMBER(upd_cache_obj_t, queue_link, c->fill_queue.next);
        h2o_linklist_unlink(&o->queue_link);
        o->queued = false;
        --c->queued;
        fill_run(c, o);
    }
}

/* A fill ended: its slot goes to the first queued miss, from the loop's next turn (not from inside the fetch). */
static void
fill_slot_free(upd_cache_t *c)
{
    --c->fills_active;
    if (!h2o_linklist_is_empty(&c->fill_queue) && !h2o_timeout_is_linked(&c->pump_entry))
        h2o_timeout_link(c->loop, c->zero_timeout, &c->pump_entry);
}

/*
 * Fills an object (indexed, FILLING, holding the fill's reference, its spec saved): at once when a slot is free and
 * nobody waits before it, else at the end of the queue, else (the queue full) not at all: UPD_EBUSY, the 503 that
 * tells a client to come back rather than a backend asked for more than it should serve at once.
 */
static void
fill_begin(upd_cache_t *c, upd_cache_obj_t *o)
{
    if (c->fills_active < c->max_fills && h2o_linklist_is_empty(&c->fill_queue)) {
        fill_run(c, o);
    } else if (c->queued < c->fill_queue_cap) {
        o->queued = true;
        h2o_linklist_insert(&c->fill_queue, &o->queue_link);
        ++c->queued;
        ++c->fills_queued;
    } else {
        ++c->fills_rejected;
        fill_fail(c, o, UPD_EBUSY);
    }
}

/* ---- hashing off the loop: first-serve checks and the scrub ---- */

static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleeps until `ns` (monotonic) or until the scrub is told to quit. @return false when it must quit */
static bool
scrub_sleep_until(upd_cache_t *c, uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    pthread_mutex_lock(&c->scrub_mutex);
    while (!c->scrub_quit && mono_ns() < ns)
        if (pthread_cond_timedwait(&c->scrub_cond, &c->scrub_mutex, &ts) == ETIMEDOUT)
            break;
    bool go_on = !c->scrub_quit;
    pthread_mutex_unlock(&c->scrub_mutex);
    return go_on;
}

/* The scrub's pace: started at t0, `done` bytes since; resets after an idle spell so that it never bursts to catch up. */
typedef struct {
    uint64_t t0, done;
} pace_t;

/*
 * Whether the file's bytes hash to `sha512`, read in chunks into buf (VERIFY_CHUNK bytes). With a pace, at most
 * c->scrub_rate bytes a second (and it stops early when the scrub must quit: *err = ECANCELED).
 * @return true when they match; false when they do not or cannot be read (*err: the errno, 0 for a mismatch)
 */
static bool
hash_matches(upd_cache_t *c, int fd, const uint8_t *sha512, uint8_t *buf, pace_t *pace, int *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    *err = 0;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha512(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        *err = ENOMEM;
        return false;
    }
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, VERIFY_CHUNK, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = errno;
            break;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)n);
        off += n;
        if (pace != NULL) {
            __atomic_add_fetch(&c->scrub_bytes, (uint64_t)n, __ATOMIC_RELAXED);
            uint64_t now = mono_ns();
            pace->done += (uint64_t)n;
            uint64_t due = pace->t0 + (uint64_t)((double)pace->done * 1e9 / (double)c->scrub_rate);
            if (due + 1000000000u < now) {
                pace->t0 = now;
                pace->done = 0;
            } else if (due > now && !scrub_sleep_until(c, due)) {
                *err = ECANCELED;
                break;
            }
        }
    }
    uint8_t d[64];
    unsigned dl = 0;
    bool ok = *err == 0 && EVP_DigestFinal_ex(md, d, &dl) == 1 && memcmp(d, sha512, 64) == 0;
    EVP_MD_CTX_free(md);
    return ok;
}

/* Hands a finished job to the loop. The pipe is non-blocking: when it is full, wait until the loop drained some. */
static void
post(upd_cache_t *c, finish_job_t *j)
{
    for (;;) {
        ssize_t n = write(c->pipe[1], &j, sizeof(j));
        if (n == (ssize_t)sizeof(j))
            return;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = c->pipe[1], .events = POLLOUT};
            poll(&p, 1, 100);
        } else if (!(n < 0 && errno == EINTR)) {
            upd_log_error("cache: cannot hand a job back to the loop: %s", n < 0 ? strerror(errno) : "short write");
            return;
        }
    }
}

/* ---- the finisher thread: fills made durable and named, first-serve checks ---- */

static void *
finisher_main(void *arg)
{
    upd_cache_t *c = arg;
    uint8_t *buf = NULL;
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
        if (j->kind == JOB_CHECK) {
            /* the whole object against its name, at full speed: a reader waits for the verdict */
            if (buf == NULL && (buf = malloc(VERIFY_CHUNK)) == NULL)
                abort();
            if ((j->fd = openat(j->dirfd, j->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
                j->err = errno;
            } else {
                j->ok = hash_matches(c, j->fd, j->o->sha512, buf, NULL, &j->err);
            }
        } else if (fsync(j->fd) != 0) {
            /* durable bytes first, then the name: a crash leaves either the temporary file or the whole object */
            j->err = errno;
            j->what = "fsync";
        } else if (renameat(j->dirfd, j->tmp_name, j->dirfd, j->name) != 0) {
            j->err = errno;
            j->what = "rename";
        }
        post(c, j);
        pthread_mutex_lock(&c->mutex);
    }
    pthread_mutex_unlock(&c->mutex);
    free(buf);
    return NULL;
}

/* ---- the scrub thread: every object re-hashed, over and over, at scrub_rate bytes a second ---- */

static void *
scrubber_main(void *arg)
{
    upd_cache_t *c = arg;
    uint8_t *buf = malloc(VERIFY_CHUNK);
    if (buf == NULL)
        abort();
    pace_t pace = {mono_ns(), 0};
    bool go_on = true;
    while (go_on) {
        /* a descriptor of its own: readdir's position is not shared with anyone */
        int dfd = openat(c->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (d == NULL) {
            upd_log_error("cache: scrub cannot read %s: %s", c->dir, strerror(errno));
            if (dfd >= 0)
                close(dfd);
        }
        struct dirent *de;
        while (go_on && d != NULL && (de = readdir(d)) != NULL) {
            uint8_t sha[64];
            if (strlen(de->d_name) != 128 || !upd_hex_decode(de->d_name, 64, sha))
                continue; /* fills in progress, strangers */
            int fd = openat(c->dirfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            struct stat st;
            if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                if (fd >= 0)
                    close(fd);
                continue; /* evicted meanwhile */
            }
            posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
            finish_job_t *j = calloc(1, sizeof(*j));
            if (j == NULL)
                abort();
            j->kind = JOB_SCRUB;
            j->fd = -1;
            memcpy(j->sha512, sha, 64);
            memcpy(j->name, de->d_name, 129);
            j->dev = st.st_dev;
            j->ino = st.st_ino;
            j->ok = hash_matches(c, fd, sha, buf, &pace, &j->err);
            /* drop the pages read for the check (pages a reader has mapped stay): the scrub must not push hot
             * objects out of the page cache */
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
            if (j->err == ECANCELED) {
                free(j);
                go_on = false;
                break;
            }
            post(c, j);
        }
        if (d != NULL)
            closedir(d);
        __atomic_add_fetch(&c->scrub_passes, 1, __ATOMIC_RELAXED);
        /* a pause between passes, so that an empty or tiny cache is not listed in a loop */
        go_on = go_on && scrub_sleep_until(c, mono_ns() + 1000000000u);
    }
    free(buf);
    return NULL;
}

/* ---- the loop's side of the jobs ---- */

static void
complete_finish(upd_cache_t *c, finish_job_t *j)
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
        uncount(c, o);
        if (o->indexed)
            index_remove(c, o);
    }
    wake(o);
    obj_unref(o); /* the fill's reference */
}

/*
 * A first-serve check came back. Passed: the object is served from the descriptor the check read. Failed (bytes that
 * do not match their name, or a file gone or unreadable): the file goes, and the object becomes a fill its waiting
 * readers follow like any miss's, so none of them ever sees the bad bytes.
 */
static void
complete_check(upd_cache_t *c, finish_job_t *j)
{
    upd_cache_obj_t *o = j->o;
    if (j->ok && !c->closing) {
        if (o->fd < 0)
            o->fd = j->fd;
        else
            close(j->fd);
        o->state = OBJ_COMPLETE;
        o->verified = true;
        spec_free(o);
        ++c->checks_ok;
        if (o->indexed)
            h2o_linklist_insert(c->lru.next, &o->lru);
        upd_log_debug("cache: %s verified before its first serve", j->name);
    } else {
        if (j->fd >= 0)
            close(j->fd);
        if (c->closing) {
            o->state = OBJ_FAILED;
            o->result = UPD_EIO;
        } else {
            ++c->checks_corrupt;
            upd_log_warn("cache: %s/%s failed its check before its first serve since start-up (%s): removing it and "
                         "fetching it again",
                         c->dir, j->name, j->err != 0 ? strerror(j->err) : "its bytes do not match its sha512");
            if (unlinkat(c->dirfd, j->name, 0) != 0 && errno != ENOENT)
                upd_log_warn("cache: cannot remove %s/%s: %s", c->dir, j->name, strerror(errno));
            o->state = OBJ_FILLING;
            o->verified = true; /* a fill verifies every byte as it arrives */
            o->available = 0;
            ++o->refs; /* the fill's */
            ++c->misses;
            if (o->indexed)
                fill_begin(c, o);
            else
                fill_fail(c, o, UPD_EINTEGRITY);
        }
    }
    wake(o);
    obj_unref(o); /* the check's reference */
}

static bool
same_file(upd_cache_t *c, const finish_job_t *j)
{
    struct stat st;
    return fstatat(c->dirfd, j->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == j->dev && st.st_ino == j->ino;
}

/* The scrub's verdict on one file: a good one vouches for an object found at start-up, a bad one is removed. */
static void
complete_scrub(upd_cache_t *c, finish_job_t *j)
{
    upd_cache_obj_t *o = index_find(c, j->sha512);
    if (j->ok) {
        ++c->scrub_ok;
        if (o != NULL && o->state == OBJ_COMPLETE && !o->verified && same_file(c, j))
            o->verified = true;
        return;
    }
    ++c->scrub_corrupt;
    /* only the file that was read, and not while a check or a fill owns the name (they decide for themselves) */
    if ((o != NULL && o->state != OBJ_COMPLETE) || !same_file(c, j))
        return;
    upd_log_warn("cache: scrub: %s/%s %s: removing it (the next request fetches it again)", c->dir, j->name,
                 j->err != 0 ? strerror(j->err) : "does not match its sha512");
    if (unlinkat(c->dirfd, j->name, 0) != 0 && errno != ENOENT) {
        upd_log_warn("cache: cannot remove %s/%s: %s", c->dir, j->name, strerror(errno));
        return;
    }
    ++c->scrub_removed;
    if (o != NULL) {
        uncount(c, o);
        index_remove(c, o); /* readers streaming it keep their mapping */
    }
}

static void
complete_job(upd_cache_t *c, finish_job_t *j)
{
    switch (j->kind) {
    case JOB_FINISH:
        complete_finish(c, j);
        break;
    case JOB_CHECK:
        complete_check(c, j);
        break;
    case JOB_SCRUB:
        if (!c->closing)
            complete_scrub(c, j);
        break;
    }
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

static void
submit(upd_cache_t *c, finish_job_t *j)
{
    pthread_mutex_lock(&c->mutex);
    *c->jobs_tail = j;
    c->jobs_tail = &j->next;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mutex);
}

/*
 * An object found on disk at start-up, asked for the first time, that the scrub has not vouched for yet: hashed
 * whole on the finisher thread before any byte of it is served (a crash, a bad disk or a hand may have changed it
 * while the origin was down). Its readers wait, as they wait for a fill's first block: about 2 ms per MB at SHA-512's
 * speed here. Checks share the finisher's queue, so a fill's fsync and rename may wait behind one; both only delay
 * naming or a first serve after start-up, never bytes already verified.
 */
static int
check_begin(upd_cache_t *c, upd_cache_obj_t *o, const upd_fetch_spec_t *spec)
{
    int err = spec_save(o, spec); /* for the fill that replaces it if it fails */
    if (err != 0)
        return err;
    finish_job_t *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return UPD_ENOMEM;
    j->kind = JOB_CHECK;
    j->o = o;
    j->fd = -1;
    j->dirfd = c->dirfd;
    hex_name(o->sha512, j->name);
    o->state = OBJ_CHECKING;
    if (h2o_linklist_is_linked(&o->lru))
        h2o_linklist_unlink(&o->lru); /* not evicted while checked */
    ++o->refs;
    submit(c, j);
    return 0;
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
        uncount(c, o);
        index_remove(c, o);
        o = NULL;
    }
    if (o != NULL && o->state == OBJ_COMPLETE && !o->verified) {
        if (check_begin(c, o, spec) != 0)
            return NULL;
        ++c->hits;
        *how = UPD_CACHE_HIT;
    } else if (o != NULL) {
        if (o->state == OBJ_COMPLETE || (o->state == OBJ_FILLING && o->fetch == NULL && !o->queued && o->available == o->size)) {
            if (o->fd < 0) {
                char name[129];
                hex_name(o->sha512, name);
                if ((o->fd = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
                    upd_log_warn("cache: %s/%s vanished: %s; fetching it again", c->dir, name, strerror(errno));
                    uncount(c, o);
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
            /* a fill under way or queued, or a first-serve check: no second fill, no slot */
            ++c->joins;
            *how = UPD_CACHE_JOINED;
        }
    }
    if (o != NULL) {
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
    o->verified = true; /* a fill verifies every byte as it arrives */
    o->fd = -1;
    o->used_seq = ++c->use_seq;
    o->wake_entry.cb = on_wake;
    h2o_linklist_init_anchor(&o->waiters);
    o->cacheable = spec->size <= c->max_bytes;
    if (!o->cacheable)
        ++c->uncacheable;
    ++c->misses;
    *how = UPD_CACHE_MISS;
    index_insert(c, o); /* concurrent misses for these bytes join this fill, even while it waits for a slot */
    o->refs += 2;       /* this reader, the fill */
    o->readers = 1;
    if (spec_save(o, spec) != 0) {
        fill_fail(c, o, UPD_ENOMEM);
        return o;
    }
    fill_begin(c, o); /* may have ended (and failed) already */
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
        o->counted = true;
        o->verified = false; /* checked before its first serve, unless the scrub gets there first */
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
upd_cache_open(const char *dir, const upd_cache_conf_t *conf, upd_backends_t *backends, h2o_loop_t *loop,
               h2o_timeout_t *zero_timeout)
{
    upd_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->dir = strdup(dir);
    c->max_bytes = conf->max_bytes;
    c->lead = conf->lead_bytes;
    c->max_fills = conf->max_fills != 0 ? conf->max_fills : 1;
    c->fill_queue_cap = conf->fill_queue;
    c->scrub_rate = conf->scrub_bytes_per_s;
    h2o_linklist_init_anchor(&c->fill_queue);
    c->pump_entry.cb = on_pump;
    pthread_mutex_init(&c->scrub_mutex, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the scrub's pace is kept on the monotonic clock */
    pthread_cond_init(&c->scrub_cond, &ca);
    pthread_condattr_destroy(&ca);
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
    if (c->scrub_rate != 0) {
        if (pthread_create(&c->scrubber, NULL, scrubber_main, c) != 0) {
            upd_log_error("cache: cannot start its scrub thread: %s", strerror(errno));
            upd_cache_close(c);
            return NULL;
        }
        c->scrubber_started = true;
    }
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
    c->closing = true;
    if (c->scrubber_started) {
        pthread_mutex_lock(&c->scrub_mutex);
        c->scrub_quit = true;
        pthread_cond_signal(&c->scrub_cond);
        pthread_mutex_unlock(&c->scrub_mutex);
        pthread_join(c->scrubber, NULL);
    }
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
            } else if (o->queued) {
                /* a fill that never started: no file, only the fill's reference */
                h2o_linklist_unlink(&o->queue_link);
                o->queued = false;
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
    if (h2o_timeout_is_linked(&c->pump_entry))
        h2o_timeout_unlink(&c->pump_entry);
    pthread_mutex_destroy(&c->scrub_mutex);
    pthread_cond_destroy(&c->scrub_cond);
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
    fprintf(fp,
            "# HELP updraft_cache_fill_slots Fills from object storage allowed at once (cache.max_fills).\n"
            "# TYPE updraft_cache_fill_slots gauge\nupdraft_cache_fill_slots %" PRIu32 "\n"
            "# HELP updraft_cache_fills_active Fills from object storage under way now.\n"
            "# TYPE updraft_cache_fills_active gauge\nupdraft_cache_fills_active %" PRIu32 "\n"
            "# HELP updraft_cache_fills_active_max The most fills under way at once since start-up.\n"
            "# TYPE updraft_cache_fills_active_max gauge\nupdraft_cache_fills_active_max %" PRIu32 "\n"
            "# HELP updraft_cache_fill_queue Misses waiting for a fill slot now (at most cache.fill_queue).\n"
            "# TYPE updraft_cache_fill_queue gauge\nupdraft_cache_fill_queue %" PRIu32 "\n"
            "# HELP updraft_cache_fills_queued_total Misses that waited for a fill slot.\n"
            "# TYPE updraft_cache_fills_queued_total counter\nupdraft_cache_fills_queued_total %" PRIu64 "\n"
            "# HELP updraft_cache_fills_rejected_total Misses answered 503 because every fill slot was taken and the queue full.\n"
            "# TYPE updraft_cache_fills_rejected_total counter\nupdraft_cache_fills_rejected_total %" PRIu64 "\n",
            c->max_fills, c->fills_active, c->fills_active_max, c->queued, c->fills_queued, c->fills_rejected);
    fprintf(fp,
            "# HELP updraft_cache_verifications_total Cached objects re-hashed against their sha512: before the first serve "
            "after start-up, and by the background scrub.\n"
            "# TYPE updraft_cache_verifications_total counter\n"
            "updraft_cache_verifications_total{when=\"first_serve\",result=\"ok\"} %" PRIu64 "\n"
            "updraft_cache_verifications_total{when=\"first_serve\",result=\"corrupt\"} %" PRIu64 "\n"
            "updraft_cache_verifications_total{when=\"scrub\",result=\"ok\"} %" PRIu64 "\n"
            "updraft_cache_verifications_total{when=\"scrub\",result=\"corrupt\"} %" PRIu64 "\n"
            "# HELP updraft_cache_scrub_removed_total Objects the scrub found corrupt and removed.\n"
            "# TYPE updraft_cache_scrub_removed_total counter\nupdraft_cache_scrub_removed_total %" PRIu64 "\n"
            "# HELP updraft_cache_scrub_bytes_total Bytes the scrub has read (at most cache.scrub_mb_per_s).\n"
            "# TYPE updraft_cache_scrub_bytes_total counter\nupdraft_cache_scrub_bytes_total %" PRIu64 "\n"
            "# HELP updraft_cache_scrub_passes_total Complete passes of the scrub over the cache.\n"
            "# TYPE updraft_cache_scrub_passes_total counter\nupdraft_cache_scrub_passes_total %" PRIu64 "\n",
            c->checks_ok, c->checks_corrupt, c->scrub_ok, c->scrub_corrupt, c->scrub_removed,
            __atomic_load_n(&c->scrub_bytes, __ATOMIC_RELAXED), __atomic_load_n(&c->scrub_passes, __ATOMIC_RELAXED));
}
