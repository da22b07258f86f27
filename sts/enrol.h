#ifndef UPD_STS_ENROL_H
#define UPD_STS_ENROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/sts_store.h"

/*
 * One-time enrolment links (docs/sts.md "Enrolment"): PUBLIC_URL/enrol#TOKEN, TOKEN 32 random bytes as unpadded
 * base64url. Only SHA-256(TOKEN's bytes as written, i.e. the 43 characters) is stored, in the enrol sub-database, with
 * the member, whether it becomes an admin, the expiry and who made it. Blocking (LMDB write): a host command or a worker.
 */

#define UPD_STS_TOKEN_LEN 43 /* 32 bytes as unpadded base64url */
#define UPD_STS_LINK_MAX 4200

/** Unpadded base64url of n bytes into dst (at least 4 * n / 3 + 4 bytes). @return the length written */
size_t upd_sts_b64url_encode(const void *src, size_t n, char *dst);
/** Decodes unpadded base64url into dst (cap bytes). @return the length, or -1 when malformed or too long */
long upd_sts_b64url_decode(const char *src, size_t n, uint8_t *dst, size_t cap);

/** The key a token is stored under: SHA-256 of its characters. */
void upd_sts_token_hash(const char *token, size_t len, uint8_t out[32]);

/**
 * Makes a one-time link for member and records it, with an audit record (action "enrol_link", actor created_by), in
 * one write transaction. link_out gets "PUBLIC_URL/enrol#TOKEN" (the only place the token appears).
 * @return 0; UPD_EINVAL (bad member name: why); UPD_ESTORE
 */
int upd_sts_enrol_link_create(upd_sts_store_t *store, const char *public_url, const char *member, bool admin,
                              const char *created_by, int64_t ttl_s, char link_out[UPD_STS_LINK_MAX], int64_t *expires,
                              upd_reason_t *why);

/**
 * As upd_sts_enrol_link_create, inside the caller's write transaction (an admin's invite): the link record and its
 * audit record are written to txn, which the caller commits.
 */
int upd_sts_enrol_link_put(upd_sts_txn_t *txn, const char *public_url, const char *member, bool admin, const char *created_by,
                           int64_t ttl_s, char link_out[UPD_STS_LINK_MAX], int64_t *expires, upd_reason_t *why);

#endif
