#include "server/http_error.h"
#include <stddef.h>

upd_http_error_t
upd_http_error_of(int err, const upd_reason_t *reason)
{
    upd_http_error_t e = {500, "internal", upd_strerror(err), UPD_LOG_ERROR};
    switch (err) {
    case UPD_EINVAL:
        e.status = 400, e.code = "invalid";
        break;
    case UPD_EAUTH:
        e.status = 401, e.code = "unauthorized";
        break;
    case UPD_EFORBIDDEN:
        e.status = 403, e.code = "forbidden";
        break;
    case UPD_ENOTFOUND:
        e.status = 404, e.code = "not_found";
        break;
    case UPD_ECONFLICT:
        e.status = 409, e.code = "conflict";
        break;
    case UPD_EEXIST:
        e.status = 409, e.code = "exists";
        break;
    case UPD_ETOOBIG:
        e.status = 422, e.code = "too_big";
        break;
    case UPD_EMISMATCH:
        e.status = 422, e.code = "mismatch";
        break;
    case UPD_EBACKEND:
        e.status = 502, e.code = "backend_error";
        break;
    case UPD_EINTEGRITY:
        e.status = 502, e.code = "integrity";
        break;
    case UPD_EUNAVAILABLE:
        e.status = 503, e.code = "unavailable";
        break;
    case UPD_EBUSY:
        e.status = 503, e.code = "busy";
        break;
    case UPD_ESTORE:
    case UPD_ESCHEMA:
        e.status = 503, e.code = "store_unavailable";
        break;
    case UPD_EIO:
        e.status = 503, e.code = "storage_error";
        break;
    default:
        break;
    }
    if (e.status < 500)
        e.level = UPD_LOG_INFO;
    if (reason != NULL && reason->code[0] != '\0')
        e.code = reason->code;
    if (reason != NULL && reason->message[0] != '\0')
        e.message = reason->message;
    return e;
}
