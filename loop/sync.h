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
 * The origin polls the index every poll_ms on every backend at once, each with If-None-Match of the index that backend
 * served last (a 304 costs one small request; the index it names is kept). Per app it takes the newest generation any
 * backend lists, so a stale R2 that still answers does not hide a newer S3, and fetches that app's newest document
 * from the backend that lists it (R2 on a tie), falling back to the next backend that lists a generation newer than
 * this origin's when the GET fails or the document is refused. Each app is imported whole in one LMDB write
 * transaction, on its own: a document that is larger than max_document_bytes, malformed or whose records do not
 * validate (upd_store_app_import) is logged (app, backend, generation, why), counted and skipped; the other apps import,
 * and this origin keeps serving the refused app's last good state. A refused app is tried again when its published
 * generation moves on, or after a backoff from 1 to 30 minutes (doubling) under the same generation; an app whose
 * document no backend delivered is tried again at the next poll.
 *
 * The polling runs on the loop thread; the imports do not. An import (a JSON parse of up to max_document_bytes
 * and a write transaction with its fsync) runs on a writer thread the module owns: the loop hands the downloaded bytes
 * over, the thread imports and answers through an h2o multithread queue on the loop, and the poll goes on from there.
 * Update checks meanwhile answer from the previous commit. A poll ends (and its waiters are called) only once its
 * imports are committed; it succeeds when at least one backend's index was read, whatever became of the apps.
 *
 * A purge from the control plane fetches the app it names at once (upd_sync_poll_app), or asks for a poll.
 */

typedef struct st_upd_sync_t upd_sync_t;

#define UPD_SYNC_INDEX_KEY UPD_STATE_INDEX_KEY

/**
 * Starts polling (the first poll at once) and the writer thread. backends and store must outlive it.
 * @param max_document_bytes  an index or app document larger than this is refused (state.max_document_bytes)
 * @return the poller, or NULL when the writer thread cannot be started or n is over 32 (logged)
 */
upd_sync_t *upd_sync_start(h2o_loop_t *loop, upd_s3_loop_t *s3, const upd_s3_backend_t *backends, size_t n, upd_store_t *store,
                           uint32_t poll_ms, size_t max_document_bytes);
/**
 * Stops on the loop thread: cancels the download under way, joins the writer thread (an import under way is
 * dropped before its commit: the next start polls again) and frees everything. Waiters are dropped uncalled.
 * NULL is fine.
 */
void upd_sync_stop(upd_sync_t *s);
/** Polls now (or again right after the poll under way, which may have read the index too early). */
void upd_sync_poll_now(upd_sync_t *s);
/**
 * For a purge that names the app and the generation: fetches the app's latest document (APP.json) at once, from each
 * backend in turn (R2 first) until one holds that generation, without reading the indexes first: the control plane
 * writes the latest document of every backend before it purges, and the index beside the purges. The waiters are
 * called when it ends, as after a poll; if this origin is still behind then, a full poll follows. Not a poll: the
 * regular polls, their timer and counters are untouched. While a poll runs, or when this origin holds that generation
 * already, this is upd_sync_poll_now.
 * @return whether the fetch started (false: upd_sync_poll_now was called instead)
 */
bool upd_sync_poll_app(upd_sync_t *s, const char *app, uint64_t generation);
/**
 * Appends the metrics: updraft_state_polls_total{result}, updraft_state_index_reads_total{backend,result},
 * updraft_state_imports_total{result}, updraft_state_import_rejected_total{reason} (too_big, malformed,
 * invalid_record), updraft_state_apps_behind,
 * updraft_state_direct_fetches_total{result}, updraft_state_import_duration_seconds (summary), updraft_state_last_import_duration_seconds,
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
