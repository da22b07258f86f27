#ifndef UPD_DOWNLOAD_H
#define UPD_DOWNLOAD_H

#include <h2o.h>
#include "domain/route.h"
#include "handlers/context.h"

/**
 * GET /download/APP/PLATFORM[/ARCH][?format=F]: a 302 to the installer of the channel's fully released
 * version, cacheable for downloads.max_age and tagged for purges. Always answers: 404 when the channel has no
 * fully released version or that release has no such installer, 503 on a store failure (upd_respond_store_error).
 * @param r  the parsed route (kind UPD_ROUTE_DOWNLOAD), borrowed for the call
 */
void upd_download_handle(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r);

#endif
