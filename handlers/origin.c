/*
 * The origin's front: routing and method rules. Each surface has its own file: update feeds, artifacts,
 * download links, health, metrics and the control plane's purge.
 */
#include "handlers/origin.h"
#include "base/err.h"
#include "base/log.h"
#include "domain/route.h"
#include "handlers/artifact.h"
#include "handlers/download.h"
#include "handlers/feed.h"
#include "handlers/health.h"
#include "handlers/origin_metrics.h"
#include "handlers/purge.h"
#include "server/http.h"
#include "server/http_error.h"

int
upd_origin_on_req(void *app, h2o_req_t *req)
{
    upd_origin_t *o = app;
    upd_route_t r;
    const char *why;
    if (h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/_updraft/purge"))) {
        upd_purge_handle(o, req);
        return 0;
    }
    int err = upd_route_parse(req->path.base, req->path.len, &r, &why);
    if (err == UPD_ENOTFOUND)
        return -1;
    if (!(h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
          h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))) {
        upd_http_send_405_get_head(req);
        return 0;
    }
    if (err != 0) {
        /* UPD_EINVAL: 400, logged at info (bad input is expected) */
        upd_http_error_t e = upd_http_error_of(err, NULL);
        upd_log(e.level, "%s: bad request: %s", upd_http_request_id(req), why);
        upd_http_send_text(req, e.status, "%s", why);
        return 0;
    }
    switch (r.kind) {
    case UPD_ROUTE_FEED:
        upd_feed_handle(o, req, &r);
        break;
    case UPD_ROUTE_NUPKG:
    case UPD_ROUTE_ARTIFACT:
        upd_artifact_handle(o, req, &r);
        break;
    case UPD_ROUTE_DOWNLOAD:
        upd_download_handle(o, req, &r);
        break;
    case UPD_ROUTE_HEALTHZ:
        upd_health_handle(o, req);
        break;
    case UPD_ROUTE_METRICS:
        upd_origin_metrics_handle(o, req);
        break;
    default:
        return -1;
    }
    return 0;
}

size_t
upd_origin_route_of(const h2o_req_t *req)
{
    return upd_route_label(req->input.path.base, req->input.path.len);
}
