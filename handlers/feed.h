#ifndef UPD_FEED_H
#define UPD_FEED_H

#include <h2o.h>
#include "domain/route.h"
#include "handlers/context.h"

/**
 * Answers an update check in any of the four client formats (electron-updater, Squirrel.Mac, Squirrel.Windows,
 * Tauri; PROTOCOLS.md "Update feeds") from the body rendered at release time: the version this client is
 * offered (the rollout decides when a client id comes with the request; pins override), 200 with a strong ETag,
 * 304 on If-None-Match, 204 for "no update" where the format has one. Personalised answers are private; the
 * others are cacheable and tagged for purges. Always answers: 400 for a malformed client id, 404 for an unknown
 * app, channel or feed variant, 503 on a store failure (upd_respond_store_error).
 * @param r  the parsed route (kind UPD_ROUTE_FEED), borrowed for the call
 */
void upd_feed_handle(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r);

#endif
