#include "storage/seen.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/log.h"

#define BATCH_MAX 1024

struct st_upd_seen_t {
    upd_store_t *store;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    upd_client_seen_t *ring;
    size_t capacity, head, count;
    bool stopping;
    void (*on_commit)(size_t, void *);
    void *arg;
};

static void *
writer_main(void *_seen)
{
    upd_seen_t *seen = _seen;
    upd_client_seen_t *batch = malloc(BATCH_MAX * sizeof(*batch));
    if (batch == NULL)
        abort();
    pthread_mutex_lock(&seen->mutex);
    for (;;) {
        while (seen->count == 0 && !seen->stopping)
            pthread_cond_wait(&seen->cond, &seen->mutex);
        if (seen->count == 0 && seen->stopping)
            break;
        size_t n = 0;
        while (seen->count > 0 && n < BATCH_MAX) {
            batch[n++] = seen->ring[seen->head];
            seen->head = (seen->head + 1) % seen->capacity;
            --seen->count;
        }
        pthread_mutex_unlock(&seen->mutex);
        if (upd_store_clients_record(seen->store, batch, n) == 0) {
            if (seen->on_commit != NULL)
                seen->on_commit(n, seen->arg);
        } else {
            upd_log_error("clients-seen: lost a batch of %zu entries (store error)", n);
        }
        pthread_mutex_lock(&seen->mutex);
    }
    pthread_mutex_unlock(&seen->mutex);
    free(batch);
    return NULL;
}

upd_seen_t *
upd_seen_start(upd_store_t *store, size_t capacity, void (*on_commit)(size_t n, void *arg), void *arg)
{
    upd_seen_t *seen = calloc(1, sizeof(*seen));
    if (seen == NULL || (seen->ring = calloc(capacity, sizeof(*seen->ring))) == NULL)
        abort();
    seen->store = store;
    seen->capacity = capacity;
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
    pthread_mutex_lock(&seen->mutex);
    if (seen->count == seen->capacity) {
        pthread_mutex_unlock(&seen->mutex);
        return false;
    }
    upd_client_seen_t *e = &seen->ring[(seen->head + seen->count) % seen->capacity];
    copy_field(e->app, sizeof(e->app), app, strlen(app));
    copy_field(e->channel, sizeof(e->channel), channel, strlen(channel));
    copy_field(e->version, sizeof(e->version), version, strlen(version));
    copy_field(e->client, sizeof(e->client), client, client_len);
    e->at = (int64_t)time(NULL);
    ++seen->count;
    pthread_cond_signal(&seen->cond);
    pthread_mutex_unlock(&seen->mutex);
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
    free(seen);
}
