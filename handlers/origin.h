#ifndef UPD_ORIGIN_H
#define UPD_ORIGIN_H

#include <h2o.h>
#include <stddef.h>
#include "handlers/context.h"

/*
 * The origin's front: it parses the route, applies the method rules (GET and HEAD, POST for the purge
 * endpoint only) and hands the request to the file of its surface. The surfaces know nothing of this file.
 */

/**
 * The origin's request entry point (upd_http_opts_t.on_req).
 * @param app  the upd_origin_t, borrowed for the program's lifetime
 * @return 0 when the request was answered (also with 400 or 405), -1 to decline: no route has that shape (404)
 */
int upd_origin_on_req(void *app, h2o_req_t *req);

/**
 * The metrics label of a request (upd_http_opts_t.route_of): an index into the route names of domain/route.h.
 * Pure and cheap; it runs once per request.
 */
size_t upd_origin_route_of(const h2o_req_t *req);

#endif
