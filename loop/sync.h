#ifndef UPD_SYNC_H
#define UPD_SYNC_H

#include <h2o.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "domain/state_doc.h"
#include "loop/s3_loop.h"
#include "storage/store.h"

/*
 * Published state: how an origin with its own LMDB environment converges on the control plane's.
 *
 * The control plane writes, to both object stores, on every change of an app, the documents of
 * domain/state_doc.h: APP/GENERATION.json, APP.json (the newest) and index.json.
 *
 * The origin polls the index every poll_ms with If-None-Match (a 304 costs one small request),
 * R2 first and the S3 mirror when R2 fails, fetches the newest document of every app whose
 * generation is newer than its own and imports it whole in one LMDB write transaction.
 *
 * The polling runs on the loop thread; the imports do not. An import (a JSON parse of up to 256 MiB
 * and a write transaction with its fsync) runs on a writer thread the module owns: the loop hands
 * the downloaded bytes over, the thread imports and answers through an h2o multithread queue on the
 * loop, and the poll goes on from there. Update checks meanwhile answer from the previous commit.
 * A poll ends (and its waiters are called) only once its imports are committed.
 *
 * A purge from the control plane asks for a poll at once (upd_sync_poll_now).
 */

typedef struct st_upd_sync_t upd_sync_t;

#define UPD_SYNC_INDEX_KEY UPD_STATE_INDEX_KEY

/**
 * Starts polling (the first poll at once) and the writer thread. backends and store must outlive it.
 * @return the poller, or NULL when the writer thread cannot be started (logged)
 */
upd_sync_t *upd_sync_start(h2o_loop_t *loop, upd_s3_loop_t *s3, const upd_s3_backend_t *backends, size_t n, upd_store_t *store,
                           uint32_t poll_ms);
/**
 * Stops on the loop thread: cancels the download under way, joins the writer thread (an import under way is
 * dropped before its commit: the next start polls again) and frees everything. Waiters are dropped uncalled.
 * NULL is fine.
 */
void upd_sync_stop(upd_sync_t *s);
/** Polls now (or again right after the poll under way, which may have read the index too early). */
void upd_sync_poll_now(upd_sync_t *s);
/**
 * Appends the metrics: updraft_state_polls_total{result}, updraft_state_imports_total{result},
 * updraft_state_import_duration_seconds (summary), updraft_state_last_import_duration_seconds,
 * updraft_state_last_import_timestamp_seconds, updraft_state_importing, updraft_state_last_sync_timestamp_seconds.
 */
void upd_sync_metrics(const upd_sync_t *s, FILE *fp);
/** Whether a poll has succeeded since start-up (before, this origin may answer from old state). */
bool upd_sync_ready(const upd_sync_t *s);

/** Called on the loop after each poll ends, successful or not: after its imports are committed. */
typedef struct st_upd_sync_waiter_t {
    h2o_linklist_t link;
    void (*cb)(struct st_upd_sync_waiter_t *w, bool ok);
} upd_sync_waiter_t;

void upd_sync_wait(upd_sync_t *s, upd_sync_waiter_t *w);
void upd_sync_unwait(upd_sync_waiter_t *w);

#endif
