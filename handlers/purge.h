#ifndef UPD_PURGE_H
#define UPD_PURGE_H

#include <h2o.h>
#include <stdio.h>
#include "handlers/context.h"

/**
 * POST /_updraft/purge from the control plane (the protocol is at the top of handlers/purge.c): checks the
 * HMAC-SHA256 signature, the timestamp and the nonce, then answers 200 once this origin serves the app's
 * generation asked for, or 504 when it could not catch up within state.sync_timeout_ms. Waiting hangs on
 * req->pool: a control plane that hangs up ends it. Always answers: 404 when no purge secret is configured,
 * 405 for another method, 401 for a missing or bad signature, nonce or timestamp, 409 for a replayed nonce,
 * 400 for a malformed body, 500 when the HMAC cannot be computed, 503 when too many purges are in flight or on a store failure (upd_respond_store_error).
 */
void upd_purge_handle(upd_origin_t *o, h2o_req_t *req);

/** Writes updraft_purges_total{result="ok"|"behind"|"refused"} to fp, in the Prometheus text format. */
void upd_purge_metrics(FILE *fp);

#endif
