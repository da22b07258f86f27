#ifndef UPD_ARTIFACT_H
#define UPD_ARTIFACT_H

#include <h2o.h>
#include "domain/route.h"
#include "handlers/context.h"

/**
 * Serves a release's file (/artifacts/APP/VERSION/FILE) or a Squirrel.Windows package next to RELEASES
 * (FILE.nupkg, its release looked up by name): from the local-directory store, or from the verified disk
 * cache that fills from object storage on a miss. Strong ETags from the sha512, single and multipart ranges,
 * If-None-Match, If-Range and HEAD; the bytes stream from a generator whose resources hang on req->pool.
 * Always answers: 304, 206 and 416 as HTTP has them; 404 for a file the release does not have or the local store
 * lacks; 500 when the local store cannot open it or holds another size than the release records; from object
 * storage, 404 when no backend has it, 502 when the backends failed or sent bytes that did not verify (or the
 * cache could not keep them), 503 with Retry-After when every circuit breaker is open, 503 when out of memory;
 * 503 on a store failure (upd_respond_store_error). A response already under way is cut rather than completed
 * with bytes nobody verified.
 * @param r  the parsed route (kind UPD_ROUTE_ARTIFACT or UPD_ROUTE_NUPKG), borrowed for the call
 */
void upd_artifact_handle(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r);

#endif
