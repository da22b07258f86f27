#ifndef UPD_RESPOND_H
#define UPD_RESPOND_H

#include <h2o.h>
#include "handlers/context.h"

/*
 * Answers the origin's surfaces share for failures below them. The status comes from the one mapping of
 * an error to HTTP (server/http_error.h).
 */

/**
 * Answers a failure of the state store (a read transaction or a record that could not be read) with 503
 * "state store unavailable", logs it once as an error with the request id, and counts it in
 * updraft_store_errors_total. The client is told no more than that: the LMDB detail is in the log.
 * @param err  what the store call returned: UPD_ESTORE or UPD_ESCHEMA (503 in the mapping), or UPD_ENOMEM when a
 *             thread's first reader could not be allocated (answered 503 too: this origin cannot read its state now)
 */
void upd_respond_store_error(upd_origin_t *o, h2o_req_t *req, int err);

#endif
