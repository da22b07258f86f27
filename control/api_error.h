#ifndef UPD_API_ERROR_H
#define UPD_API_ERROR_H

#include <jansson.h>
#include "base/err.h"

/*
 * The body of every refusal of the control API (PROTOCOLS.md): {"error":{"code":CODE,"message":MESSAGE}}, the code
 * stable for programs, the message for a person.
 */

/**
 * Builds an error body.
 * @param code  the machine code ("invalid", "size_mismatch"; see server/http_error.h for the defaults)
 * @param fmt   printf-style message, truncated to 1023 bytes
 * @return a new reference (the caller owns it); NULL only when jansson cannot allocate
 */
json_t *upd_api_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * What the API tells of a store failure: a missing record is UPD_ENOTFOUND "not_found"; anything else UPD_ESTORE
 * "store_unavailable", logged here once.
 * @return the code it filled reason with (reason NULL is fine)
 */
int upd_api_store_fail(upd_reason_t *reason, int err);

#endif
