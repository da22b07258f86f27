/* Error answers shared by the origin's surfaces. */
#include "handlers/respond.h"
#include "base/err.h"
#include "base/log.h"
#include "server/http.h"
#include "server/http_error.h"

void
upd_respond_store_error(upd_origin_t *o, h2o_req_t *req, int err)
{
    upd_http_error_t e = upd_http_error_of(err, NULL);
    /* a thread's first reader that could not be allocated leaves the state as unreadable as an LMDB failure does: 503 as
     * ever, not the mapping's 500 for UPD_ENOMEM */
    if (err == UPD_ENOMEM)
        e.status = 503;
    upd_metrics_add(o->metrics, UPD_COUNTER_STORE_ERRORS, 1);
    upd_log(e.level, "%s: store: %s", upd_http_request_id(req), upd_strerror(err));
    upd_http_send_text(req, e.status, "state store unavailable");
}
