#ifndef UPD_STS_RESIGN_H
#define UPD_STS_RESIGN_H

#include <stdint.h>

#include "sts/api.h"

/*
 * The re-sign thread: every check_s seconds it re-signs the current state of every app whose envelope expires in
 * fewer than signing.resign_before_s seconds (same document, same generation, expiry now + signing.ttl_s), in one
 * write transaction with an audit record per app. Its own thread, never the event loop; the control plane fetches the
 * new envelopes from GET /v1/signed.
 */

typedef struct st_upd_sts_resign_t upd_sts_resign_t;

/** Starts the thread. @return NULL when it could not start (logged) */
upd_sts_resign_t *upd_sts_resign_start(upd_sts_t *sts, uint64_t check_s);
/** One pass now, on the caller's thread (blocking). @return the number of apps re-signed, or a negative UPD_E* code */
int upd_sts_resign_pass(upd_sts_t *sts);
/** Stops and joins the thread. NULL is fine. */
void upd_sts_resign_stop(upd_sts_resign_t *r);

#endif
