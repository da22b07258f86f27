#ifndef UPD_SEEN_H
#define UPD_SEEN_H

#include <stdbool.h>
#include <stdint.h>
#include "storage/store.h"

/*
 * The clients-offered recorder: the origin learns which clients were offered which version on the update check, but
 * LMDB writes must not run on the event loop, and what clients send must not grow the store. A push hashes the client
 * (the same hash on every origin, so counts merge) and queues (app, channel, version, hash) in a bounded queue; a
 * background thread adds the hashes to one sketch per version in memory and merges the sketches into LMDB every
 * flush_ms (upd_store_offered_merge: one write transaction, at most UPD_HLL_ENCODED_MAX bytes per version whatever
 * clients send). A small cache of recent pushes keeps a client that asks again and again from being queued again.
 * When the queue is full the entry is dropped and counted: losing a count is better than stalling update checks.
 */

typedef struct st_upd_seen_t upd_seen_t;

typedef struct st_upd_seen_opts_t {
    size_t capacity;  /* queue length, in entries */
    uint32_t flush_ms; /* how often the sketches are merged into LMDB (and on upd_seen_stop) */
    size_t recent;     /* slots of the recent-push cache, 8 bytes each: a power of two (rounded down, at least 4), 4 ways a set */
} upd_seen_opts_t;

/**
 * Starts the writer thread.
 * @param on_commit called from the writer thread with the number of pushes merged by a commit (may be NULL)
 */
upd_seen_t *upd_seen_start(upd_store_t *store, const upd_seen_opts_t *opts, void (*on_commit)(size_t n, void *arg), void *arg);
/**
 * Counts a client as offered a version. Call it from one thread (the event loop): the cache of recent pushes is that
 * thread's. Ids longer than their maximum are cut (the caller validated them).
 * @return false when the queue was full and the entry dropped
 */
bool upd_seen_push(upd_seen_t *seen, const char *app, const char *channel, const char *version, const char *client, size_t client_len);
/** Merges what is queued and counted, stops the thread and frees everything. */
void upd_seen_stop(upd_seen_t *seen);

#endif
