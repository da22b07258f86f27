#ifndef UPD_SEEN_H
#define UPD_SEEN_H

#include <stdbool.h>
#include "storage/store.h"

/*
 * The clients-seen recorder: the origin learns which clients were offered which version on the
 * update check, but LMDB writes must not run on the event loop. Entries go into a bounded queue
 * that a background thread commits in batches (one write transaction per batch). When the queue is
 * full the entry is dropped and counted: losing a count is better than stalling update checks.
 */

typedef struct st_upd_seen_t upd_seen_t;

/**
 * Starts the writer thread.
 * @param capacity  queue length, in entries
 * @param on_commit  called from the writer thread with the number committed (may be NULL)
 */
upd_seen_t *upd_seen_start(upd_store_t *store, size_t capacity, void (*on_commit)(size_t n, void *arg), void *arg);
/** Queues one entry. @return false when the queue was full and the entry dropped */
bool upd_seen_push(upd_seen_t *seen, const char *app, const char *channel, const char *version, const char *client, size_t client_len);
/** Commits what is queued, stops the thread and frees everything. */
void upd_seen_stop(upd_seen_t *seen);

#endif
