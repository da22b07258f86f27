#include "storage/seen.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>
#include "base/log.h"
#include "domain/hll.h"

#define BATCH_MAX 4096
#define RECENT_WAYS 4   /* the cache of recent pushes: slots per set */
#define SKETCHES_MAX 64 /* versions counted between two flushes before a flush is forced (at most 256 KiB each) */

typedef struct {
    char app[UPD_ID_MAX + 1];
    char channel[UPD_ID_MAX + 1];
    char version[UPD_VERSION_MAX + 1];
    uint64_t hash; /* upd_hll_hash of the client */
} entry_t;

typedef struct {
    entry_t key; /* hash unused */
    upd_hll_t sketch;
    size_t pushes;
} pending_t;

struct st_upd_seen_t {
    upd_store_t *store;
    uint32_t flush_ms;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    entry_t *ring;
    size_t capacity, head, count;
    bool stopping;
    void (*on_commit)(size_t, void *);
    void *arg;
    /* the pushing thread's: (version, client) pairs queued lately, in sets of four ways (32 bytes, aligned: within one cache
     * line). A collision only queues a repeat, but polling clients visit the cache in turn: with one way about 9% of 100,000
     * of them share a slot with another and evict each other on every poll, with two ways 1.6% (three in a set), with four
     * 0.08%. */
    uint64_t *recent;
    size_t recent_mask;
    /* the writer thread's: one sketch per version since the last flush */
    pending_t pending[SKETCHES_MAX];
    size_t npending;
};

static bool
same_key(const entry_t *a, const entry_t *b)
{
    return strcmp(a->version, b->version) == 0 && strcmp(a->channel, b->channel) == 0 && strcmp(a->app, b->app) == 0;
}

/* Merges the pending sketches into the store and forgets them. On a store error the counts are lost (and logged). */
static void
flush(upd_seen_t *seen)
{
    if (seen->npending == 0)
        return;
    upd_offered_t list[SKETCHES_MAX];
    size_t pushes = 0;
    for (size_t i = 0; i != seen->npending; ++i) {
        pending_t *p = &seen->pending[i];
        list[i] = (upd_offered_t){p->key.app, p->key.channel, p->key.version, &p->sketch};
        pushes += p->pushes;
    }
    if (upd_store_offered_merge(seen->store, list, seen->npending) == 0) {
        if (seen->on_commit != NULL)
            seen->on_commit(pushes, seen->arg);
    } else {
        upd_log_error("clients-seen: lost a batch of %zu entries (store error)", pushes);
    }
    for (size_t i = 0; i != seen->npending; ++i)
        upd_hll_dispose(&seen->pending[i].sketch);
    seen->npending = 0;
}

static void
count_entry(upd_seen_t *seen, const entry_t *e)
{
    pending_t *p = NULL;
    for (size_t i = 0; i != seen->npending && p == NULL; ++i)
        if (same_key(&seen->pending[i].key, e))
            p = &seen->pending[i];
    if (p == NULL) {
        if (seen->npending == SKETCHES_MAX)
            flush(seen);
        p = &seen->pending[seen->npending++];
        p->key = *e;
        p->pushes = 0;
        upd_hll_init(&p->sketch);
    }
    if (upd_hll_add(&p->sketch, e->hash) != 0)
        upd_log_error("clients-seen: out of memory: a client went uncounted");
    ++p->pushes;
}

static void
deadline_after(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000;
    }
}

static void *
writer_main(void *_seen)
{
    upd_seen_t *seen = _seen;
    entry_t *batch = malloc(BATCH_MAX * sizeof(*batch));
    if (batch == NULL)
        abort();
    struct timespec next_flush;
    deadline_after(&next_flush, seen->flush_ms);
    pthread_mutex_lock(&seen->mutex);
    for (;;) {
        int rc = 0;
        while (seen->count == 0 && !seen->stopping && rc == 0)
            rc = pthread_cond_timedwait(&seen->cond, &seen->mutex, &next_flush);
        size_t n = 0;
        while (seen->count > 0 && n < BATCH_MAX) {
            batch[n++] = seen->ring[seen->head];
            seen->head = (seen->head + 1) % seen->capacity;
            --seen->count;
        }
        bool stopping = seen->stopping && seen->count == 0;
        pthread_mutex_unlock(&seen->mutex);
        for (size_t i = 0; i != n; ++i)
            count_entry(seen, &batch[i]);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (stopping || now.tv_sec > next_flush.tv_sec || (now.tv_sec == next_flush.tv_sec && now.tv_nsec >= next_flush.tv_nsec)) {
            flush(seen);
            deadline_after(&next_flush, seen->flush_ms);
        }
        pthread_mutex_lock(&seen->mutex);
        if (stopping)
            break;
    }
    pthread_mutex_unlock(&seen->mutex);
    free(batch);
    return NULL;
}

upd_seen_t *
upd_seen_start(upd_store_t *store, const upd_seen_opts_t *opts, void (*on_commit)(size_t n, void *arg), void *arg)
{
    size_t slots = RECENT_WAYS; /* one set at least */
    while (slots * 2 <= opts->recent)
        slots *= 2;
    upd_seen_t *seen = calloc(1, sizeof(*seen));
    if (seen == NULL || (seen->ring = calloc(opts->capacity, sizeof(*seen->ring))) == NULL ||
        (seen->recent = aligned_alloc(RECENT_WAYS * sizeof(uint64_t), slots * sizeof(uint64_t))) == NULL)
        abort();
    memset(seen->recent, 0, slots * sizeof(uint64_t));
    seen->recent_mask = slots - 1;
    seen->store = store;
    seen->capacity = opts->capacity;
    seen->flush_ms = opts->flush_ms != 0 ? opts->flush_ms : 1;
    seen->on_commit = on_commit;
    seen->arg = arg;
    pthread_mutex_init(&seen->mutex, NULL);
    pthread_cond_init(&seen->cond, NULL);
    if (pthread_create(&seen->thread, NULL, writer_main, seen) != 0)
        abort();
    return seen;
}

static void
copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

bool
upd_seen_push(upd_seen_t *seen, const char *app, const char *channel, const char *version, const char *client, size_t client_len)
{
    uint64_t hash = upd_hll_hash(client, client_len);
    /* the pair (version, client), for the cache of recent pushes */
    size_t al = strlen(app), cl = strlen(channel), vl = strlen(version);
    uint64_t pair = XXH3_64bits_withSeed(version, vl, XXH3_64bits_withSeed(channel, cl, XXH3_64bits_withSeed(app, al, hash)));
    uint64_t *set = &seen->recent[pair & seen->recent_mask & ~(size_t)(RECENT_WAYS - 1)];
    pair |= 1; /* 0 marks an empty slot */
    if (set[0] == pair || set[1] == pair || set[2] == pair || set[3] == pair)
        return true; /* queued lately: counting it again would change nothing */

    pthread_mutex_lock(&seen->mutex);
    if (seen->count == seen->capacity) {
        pthread_cond_signal(&seen->cond);
        pthread_mutex_unlock(&seen->mutex);
        return false;
    }
    entry_t *e = &seen->ring[(seen->head + seen->count) % seen->capacity];
    copy_field(e->app, sizeof(e->app), app, al);
    copy_field(e->channel, sizeof(e->channel), channel, cl);
    copy_field(e->version, sizeof(e->version), version, vl);
    e->hash = hash;
    /* The writer drains the queue when its flush is due anyway, so it is woken early only once the queue is half full:
     * a wake-up per push cost a futex call and two context switches on the loop's core for every new client. */
    if (++seen->count >= seen->capacity / 2)
        pthread_cond_signal(&seen->cond);
    pthread_mutex_unlock(&seen->mutex);
    memmove(set + 1, set, (RECENT_WAYS - 1) * sizeof(*set)); /* the oldest way goes */
    set[0] = pair;
    return true;
}

void
upd_seen_stop(upd_seen_t *seen)
{
    if (seen == NULL)
        return;
    pthread_mutex_lock(&seen->mutex);
    seen->stopping = true;
    pthread_cond_signal(&seen->cond);
    pthread_mutex_unlock(&seen->mutex);
    pthread_join(seen->thread, NULL);
    pthread_mutex_destroy(&seen->mutex);
    pthread_cond_destroy(&seen->cond);
    free(seen->ring);
    free(seen->recent);
    free(seen);
}
