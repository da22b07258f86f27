#ifndef UPD_PURGE_SIG_H
#define UPD_PURGE_SIG_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The signature of a purge from the control plane to an origin (POST /_updraft/purge): the control
 * plane signs, the origin checks, both with this one function.
 *
 *   X-Updraft-Signature: lower-case hex HMAC-SHA256(secret, TIMESTAMP "\n" NONCE "\n" BODY)
 */

/**
 * @param[out] hex  64 hex digits and a NUL
 * @return false only when OpenSSL could not compute it (out of memory)
 */
bool upd_purge_sign(const char *secret, size_t secret_len, const char *timestamp, const char *nonce, const char *body,
                    size_t body_len, char hex[65]);

#endif
