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
 * Always answers: 304, 206, 416 as HTTP has them; 404 for a file the release does not have; 502 or 503 (with
 * Retry-After) when object storage failed before the first byte; a response already under way is cut rather
 * than completed with bytes nobody verified; 503 on a store failure (upd_respond_store_error).
 * @param r  the parsed route (kind UPD_ROUTE_ARTIFACT or UPD_ROUTE_NUPKG), borrowed for the call
 */
void upd_artifact_handle(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r);

#endif
