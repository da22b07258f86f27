#ifndef UPD_HTTP_ERROR_H
#define UPD_HTTP_ERROR_H

#include "base/err.h"
#include "base/log.h"

/*
 * The one mapping from an error to what an HTTP client is told, for every server (as nginx's static module maps
 * ENOENT to 404 and the rest to 500): the status, the machine code of the {"error":{"code","message"}} body or of the
 * plain-text answer, and the level its log line takes. Bad input is expected (4xx, logged at info); failures of the
 * server or of what it depends on are 5xx, logged as errors.
 */
typedef struct st_upd_http_error_t {
    int status;
    const char *code;      /* the reason's code when it has one, else the default code of err */
    const char *message;   /* the reason's message when it has one, else upd_strerror(err) */
    upd_log_level_t level; /* UPD_LOG_INFO for refusals of input, UPD_LOG_ERROR for server-side failures */
} upd_http_error_t;

/**
 * Maps a negative UPD_E* code (or a positive errno) and its optional reason:
 *   UPD_EINVAL 400 invalid, UPD_EAUTH 401 unauthorized, UPD_EFORBIDDEN 403 forbidden, UPD_ENOTFOUND 404 not_found,
 *   UPD_ECONFLICT 409 conflict, UPD_EEXIST 409 exists, UPD_ETOOBIG 422 too_big, UPD_EMISMATCH 422 mismatch,
 *   UPD_EBACKEND 502 backend_error, UPD_EINTEGRITY 502 integrity, UPD_EUNAVAILABLE 503 unavailable,
 *   UPD_EBUSY 503 busy, UPD_ESTORE / UPD_ESCHEMA 503 store_unavailable, UPD_EIO 503 storage_error,
 *   anything else 500 internal.
 * @param reason  NULL, or what the failing call filled in; its strings are borrowed (valid as long as it is)
 */
upd_http_error_t upd_http_error_of(int err, const upd_reason_t *reason);

#endif
