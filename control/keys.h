#ifndef UPD_KEYS_H
#define UPD_KEYS_H

#include <stddef.h>
#include "domain/ids.h"
#include "storage/store.h"

/*
 * API keys of the control plane: "upd_<16 hex id>_<43 base64url secret>". The store keeps the id, a name, the role and
 * the SHA-256 of the secret, never the secret itself.
 */

/** What a key may do; each role may do everything the ones below it may. */
typedef enum {
    UPD_ROLE_NONE = 0,    /* no key: the unauthenticated routes (health, metrics) */
    UPD_ROLE_BUILD = 1,   /* read channels */
    UPD_ROLE_RELEASE = 2, /* register releases, change rollouts, pull releases */
    UPD_ROLE_ADMIN = 3    /* create apps */
} upd_role_t;

/**
 * Reads a role's name.
 * @return UPD_ROLE_BUILD, UPD_ROLE_RELEASE or UPD_ROLE_ADMIN for "build", "release", "admin"; -1 for anything else
 */
int upd_role_parse(const char *s);

/** @return "build", "release" or "admin", "none" for any other value; a static string */
const char *upd_role_name(upd_role_t r);

/**
 * Creates an API key of a role and stores its record (one write transaction of its own).
 * @param name      the operator's name for the key, stored as given
 * @param[out] key  the NUL-terminated key, shown once: cap must be at least 81 bytes
 * @return 0; UPD_EIO (no random bytes), UPD_ETOOBIG (cap too small, nothing stored), or the store's UPD_E* code
 */
int upd_keys_create(upd_store_t *store, upd_role_t role, const char *name, char *key, size_t cap);

/** Who a request is, once its key checked out. */
typedef struct st_upd_principal_t {
    char key_id[17];             /* the key's id (16 hex digits); also set on a refusal when the key was well formed */
    char member[UPD_ID_MAX + 1]; /* the key's owner, "" for a service key */
    upd_role_t role;             /* what the key may do where the call applies (see upd_keys_authorize) */
} upd_principal_t;

/**
 * Checks a presented key (its secret's SHA-256 against the stored one, in constant time) and works out its role where
 * a call applies.
 * @param key       len bytes, not NUL-terminated (the Authorization header's value after "Bearer ")
 * @param app       the app the call is about, NULL for an account-wide call (apps, members, keys, audit)
 * @param[out] out  the principal; out->role UPD_ROLE_NONE when the key is valid but has no scope there
 * @return 0, or UPD_EAUTH when the key is malformed, unknown or wrong (which of these is not told; out->key_id is set
 *         when the key had the shape of one, for the audit record)
 */
int upd_keys_authorize(upd_store_txn_t *txn, const char *key, size_t len, const char *app, upd_principal_t *out);

#endif
