/* Error answers shared by the origin's surfaces. */
#include "handlers/respond.h"
#include "base/err.h"
#include "base/log.h"
#include "server/http.h"

void
upd_respond_store_error(upd_origin_t *o, h2o_req_t *req, int err)
{
    upd_metrics_add(o->metrics, UPD_COUNTER_STORE_ERRORS, 1);
    upd_log_error("%s: store: %s", upd_http_request_id(req), upd_strerror(err));
    upd_http_send_text(req, 503, "state store unavailable");
}
