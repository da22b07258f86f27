/* /healthz: whether this origin should be in rotation. */
#include "handlers/health.h"
#include "base/err.h"
#include "base/log.h"
#include "server/http.h"

void
upd_health_handle(upd_origin_t *o, h2o_req_t *req)
{
    upd_store_txn_t *txn;
    int err = upd_store_read_begin(o->store, &txn);
    if (err != 0) {
        upd_log_warn("%s: healthz: store: %s", upd_http_request_id(req), upd_strerror(err));
        upd_http_send_text(req, 503, "unhealthy: state store: %s", upd_strerror(err));
        return;
    }
    upd_store_txn_end(txn);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    char why[128];
    if (o->sync != NULL && !upd_sync_ready(o->sync)) {
        /* until the published state has been read once, this origin may answer from an old copy: out of rotation */
        upd_http_send_text(req, 503, "unhealthy: published state not loaded yet");
        return;
    }
    if (o->fetchers != NULL && !upd_backends_healthy(o->fetchers, why, sizeof(why))) {
        upd_http_send_text(req, 503, "unhealthy: %s", why);
        return;
    }
    upd_http_send_text(req, 200, "ok");
}
