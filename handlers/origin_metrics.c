/* /metrics for the origin. */
#include "handlers/origin_metrics.h"
#include <stdlib.h>
#include "handlers/purge.h"
#include "server/http.h"

void
upd_origin_metrics_render(void *arg, FILE *fp)
{
    const upd_origin_t *o = arg;
    upd_purge_metrics(fp);
    if (o->fetchers != NULL) {
        upd_backends_metrics(o->fetchers, fp);
        upd_cache_metrics(o->cache, fp);
    }
    if (o->sync != NULL)
        upd_sync_metrics(o->sync, fp);
}

void
upd_origin_metrics_handle(upd_origin_t *o, h2o_req_t *req)
{
    size_t len;
    char *text = upd_metrics_render(o->metrics, &len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    upd_http_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}
