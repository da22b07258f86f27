#ifndef UPD_SYNC_H
#define UPD_SYNC_H

#include <h2o.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "loop/s3_loop.h"
#include "storage/store.h"

/*
 * Published state: how an origin with its own LMDB environment converges on the control plane's.
 *
 * The control plane writes, to both object stores, on every change of an app:
 *   _updraft/state/APP/GENERATION.json  the app's whole release state (upd_store_app_export), kept
 *   _updraft/state/APP.json             the same bytes: the newest
 *   _updraft/state/index.json           {"format":1,"apps":{"APP":GENERATION,...}}
 *
 * The origin polls the index every poll_ms with If-None-Match (a 304 costs one small request),
 * R2 first and the S3 mirror when R2 fails, fetches the document of every app whose generation is
 * newer than its own and imports it whole in one LMDB write transaction. A purge from the control
 * plane asks for a poll at once (upd_sync_poll_now). Runs on the loop thread.
 */

typedef struct st_upd_sync_t upd_sync_t;

#define UPD_SYNC_INDEX_KEY "_updraft/state/index.json"

upd_sync_t *upd_sync_start(h2o_loop_t *loop, upd_s3_loop_t *s3, const upd_s3_backend_t *backends, size_t n, upd_store_t *store,
                           uint32_t poll_ms);
void upd_sync_stop(upd_sync_t *s);
/** Polls now (or again right after the poll under way, which may have read the index too early). */
void upd_sync_poll_now(upd_sync_t *s);
void upd_sync_metrics(const upd_sync_t *s, FILE *fp);
/** Whether a poll has succeeded since start-up (before, this origin may answer from old state). */
bool upd_sync_ready(const upd_sync_t *s);

/** Called after each poll ends, successful or not. */
typedef struct st_upd_sync_waiter_t {
    h2o_linklist_t link;
    void (*cb)(struct st_upd_sync_waiter_t *w, bool ok);
} upd_sync_waiter_t;

void upd_sync_wait(upd_sync_t *s, upd_sync_waiter_t *w);
void upd_sync_unwait(upd_sync_waiter_t *w);

#endif
