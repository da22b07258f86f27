#ifndef UPD_KEYS_H
#define UPD_KEYS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/err.h"
#include "control/audit.h"
#include "control/control.h"
#include "domain/ids.h"
#include "storage/store.h"

/*
 * API keys of the control plane: "upd_<16 hex id>_<43 base64url secret>". The store keeps the id, a name, the key's
 * owner and scope, its expiry, revocation and last use, and the SHA-256 of the secret, never the secret itself. The
 * record (keys sub-database, KEY_ID -> JSON, this file owns its format):
 *
 *   {"id","name","member":M,"app":"*"|APP,"role":"build"|"release"|"admin","sha256":HEX,"created":T,
 *    "expires":T,"revoked":T,"last_used":T}
 *
 * Times are Unix seconds. "member" absent or null: the key belongs to nobody (a service key, or the host's bootstrap
 * key); "app" absent: "*"; "expires", "revoked", "last_used" absent or null: never, not revoked, never used. A record
 * written before members existed has neither "member" nor "app": an account-wide key of its role, owned by nobody.
 *
 * What a key may do on app A (upd_keys_effective_role): the key's scope's role when its app is "*" or A (else none),
 * lowered to its owner's role on A (control/members.h: the higher of roles["*"] and roles[A]) when it has an owner.
 * An account-wide call (A none) needs the key's app "*" and, for an owned key, the owner's roles["*"]. The owner's
 * roles are read at every request, so changing a member changes their keys at once.
 */

/** What a key may do; each role may do everything the ones below it may. */
typedef enum {
    UPD_ROLE_ANY_KEY = -1, /* what a route may ask for, never a key's role: any valid key, whatever its role and scope */
    UPD_ROLE_NONE = 0,     /* no key: the unauthenticated routes (health, metrics); a key without scope where it applies */
    UPD_ROLE_BUILD = 1,    /* read; register releases as drafts */
    UPD_ROLE_RELEASE = 2,  /* publish drafts, register releases on a channel, change rollouts, pull releases */
    UPD_ROLE_ADMIN = 3     /* create apps, manage members and keys */
} upd_role_t;

#define UPD_KEY_ID_HEX 16
#define UPD_KEY_LEN (4 + UPD_KEY_ID_HEX + 1 + 43) /* "upd_" ID "_" SECRET */
#define UPD_KEY_NAME_MAX 64

/**
 * Reads a role's name.
 * @return UPD_ROLE_BUILD, UPD_ROLE_RELEASE or UPD_ROLE_ADMIN for "build", "release", "admin"; -1 for anything else
 */
int upd_role_parse(const char *s);

/** @return "build", "release" or "admin", "none" for any other value; a static string */
const char *upd_role_name(upd_role_t r);

/** @return true when s is a key id: 16 lower-case hex digits */
bool upd_keys_is_id(const char *s, size_t len);

/**
 * What a key may do on app (NULL: account-wide), pure: see the rule above.
 * @param key_app      the key's scope: "*" or an app id
 * @param owner_roles  the owner's roles object ({"*"|APP: ROLE}), NULL for a key without an owner
 */
upd_role_t upd_keys_effective_role(const char *key_app, upd_role_t key_role, const json_t *owner_roles, const char *app);

/**
 * Reads an expiry as the API and the host command take it: "90d", "12h", "30m" (from now), or Unix seconds (digits).
 * @param[out] out  Unix seconds, after now
 * @return 0, or UPD_EINVAL (not one of those forms, a duration of 0 or over 10 years, a time not after now)
 */
int upd_keys_parse_expires(const char *s, int64_t now, int64_t *out);

/** A key to create. */
typedef struct st_upd_key_spec_t {
    const char *name;   /* the operator's name for it, 1-UPD_KEY_NAME_MAX bytes, stored as given */
    const char *member; /* its owner; NULL for none (a service key, the host's bootstrap key) */
    const char *app;    /* "*" or an app id; NULL means "*" */
    upd_role_t role;    /* its scope's role */
    int64_t expires;    /* Unix seconds; 0: never */
} upd_key_spec_t;

/**
 * Creates an API key and stores its record in txn, a write transaction of the caller's (which also appends the audit
 * record and commits). The caller checked the spec (member and app exist).
 * @param[out] key      the NUL-terminated key, shown once: cap must be at least UPD_KEY_LEN + 1 bytes
 * @param[out] listing  NULL, or the key's listing (upd_keys_listing), a new reference
 * @return 0; UPD_EIO (no random bytes), UPD_ETOOBIG (cap too small), UPD_EINVAL (a name outside 1-64 bytes), or the
 *         store's UPD_E* code
 */
int upd_keys_create(upd_store_txn_t *txn, const upd_key_spec_t *spec, int64_t now, char *key, size_t cap, json_t **listing);

/** Who a request is, once its key checked out (or why it did not). */
typedef struct st_upd_principal_t {
    char key_id[UPD_KEY_ID_HEX + 1]; /* the key's id; also set on a refusal when the key was well formed */
    char member[UPD_ID_MAX + 1];     /* the key's owner, "" for none */
    char key_app[UPD_ID_MAX + 1];    /* the key's scope: "*" or an app id */
    upd_role_t key_role;             /* the key's scope's role */
    upd_role_t role;                 /* what the key may do where the call applies (upd_keys_effective_role) */
    const char *refusal;             /* with UPD_EAUTH: "unauthorized", "expired" or "revoked" (static); NULL otherwise */
} upd_principal_t;

/**
 * Checks a presented key (its secret's SHA-256 against the stored one, in constant time), then its revocation, its
 * expiry and its owner, and works out its role where a call applies. Reads only (safe on the loop).
 * @param key       len bytes, not NUL-terminated (the Authorization header's value after "Bearer ")
 * @param app       the app the call is about, NULL for an account-wide call (apps, members, keys, audit)
 * @param[out] out  the principal; out->role UPD_ROLE_NONE when the key is valid but has no scope there
 * @return 0, or UPD_EAUTH with out->refusal: "unauthorized" (malformed, unknown or wrong: which of these is not told),
 *         "revoked" (revoked, or its owner is no longer a member), "expired"; out->key_id is set when the key had the
 *         shape of one, for the audit record
 */
int upd_keys_authorize(upd_store_txn_t *txn, const char *key, size_t len, const char *app, upd_principal_t *out);

/* ---- records ---- */

/**
 * A key's listing, as the API shows it: {"id","name","member"|null,"app","role","created","expires"|null,
 * "revoked"|null,"last_used"|null}, never the secret's hash.
 * @param last_used  a use newer than the record's (upd_key_uses_last), 0 for none
 * @return a new reference, NULL when the record is not a key record
 */
json_t *upd_keys_listing(const char *json, size_t len, int64_t last_used);

/**
 * Revokes a key (its record's "revoked" set to now) in the caller's write transaction.
 * @param[out] listing  NULL, or the listing after the change (a new reference)
 * @return 0, UPD_ENOTFOUND, UPD_ECONFLICT (already revoked), UPD_EINVAL (a corrupt record), UPD_ESTORE
 */
int upd_keys_revoke(upd_store_txn_t *txn, const char *key_id, int64_t now, json_t **listing);

/**
 * Revokes every key of a member not revoked yet, in the caller's write transaction (removing a member).
 * @param[out] n  how many were revoked
 * @return 0, UPD_ESTORE
 */
int upd_keys_revoke_member(upd_store_txn_t *txn, const char *member, int64_t now, size_t *n);

/* ---- last use: noted on the loop, persisted off it ---- */

/*
 * The loop never writes LMDB, so a key's use is noted in a table in memory (upd_key_uses_note, under a mutex, no I/O)
 * and written to the key's record ("last_used") by a thread of the table's own, at most once per interval per key:
 * the first use of a key is written at once, later ones when interval_ms has passed since its last write. Listings
 * show the newer of the record's and the table's (upd_key_uses_last). The table holds at most `max` keys: when it is
 * full of uses not yet written, a use of another key is dropped (counted in updraft_key_uses_dropped_total); written
 * entries are forgotten to make room. Stopping writes every use not yet written.
 */
typedef struct st_upd_key_uses_t upd_key_uses_t;

/** Creates the table (nothing runs until upd_key_uses_start). interval_ms and max are clamped to at least 1. */
upd_key_uses_t *upd_key_uses_create(upd_store_t *store, uint64_t interval_ms, size_t max);
/** Starts the writer thread. @return 0 or UPD_EIO (logged) */
int upd_key_uses_start(upd_key_uses_t *u);
/** Stops the writer thread after a last write of every use noted. Fine on a table never started and on NULL. */
void upd_key_uses_stop(upd_key_uses_t *u);
/** Stops it if need be and frees it. NULL is fine. */
void upd_key_uses_destroy(upd_key_uses_t *u);
/** Notes a use of key_id at now (Unix seconds); on any thread, no I/O. NULL u: nothing. */
void upd_key_uses_note(upd_key_uses_t *u, const char *key_id, int64_t now);
/** @return the last use noted of key_id (Unix seconds), 0 when none; NULL u: 0 */
int64_t upd_key_uses_last(upd_key_uses_t *u, const char *key_id);
/**
 * Writes the uses due (all: every use not yet written) in one write transaction, on the calling thread (blocking).
 * The writer thread calls it; so may tests. @return 0 or the store's UPD_E* code (the uses stay due)
 */
int upd_key_uses_flush(upd_key_uses_t *u, bool all);
/**
 * Appends updraft_key_uses_tracked (gauge), updraft_key_uses_written_total, updraft_key_uses_dropped_total and
 * updraft_key_uses_write_failures_total (counters) in the Prometheus text format.
 */
void upd_key_uses_render_metrics(upd_key_uses_t *u, FILE *fp);

/* ---- the API's calls (control/api.c; PROTOCOLS: docs/control-api.md "API keys", "Sign-in") ---- */

/*
 * Each returns 0 with *out a new reference, or a negative UPD_E* code with *reason filled (as control/publish.h). The
 * ones that change state run on a worker and append their audit record (action, target, detail) to their own write
 * transaction. `who` is the caller; its role is its account-wide one (these routes have no app).
 */

/**
 * POST /v1/keys {"name","member"?,"app"?,"role"?,"expires"?}. An account-wide admin may create any key (no member: a
 * service key, which names one app and a role; member: that member's key, role "admin" by default, which is then the
 * owner's role). Any other key may create a key for its own member only ("member" defaults to it), within its own scope
 * (the same app unless it is "*", a role no higher; the role defaults to its own).
 * @param[out] out  {"key", then the listing fields}
 * @return 0; UPD_EINVAL (a field); UPD_EFORBIDDEN (beyond what the caller may grant); UPD_EMISMATCH "unknown_app",
 *         "unknown_member"; UPD_EIO; UPD_ESTORE
 */
int upd_keys_call_create(upd_control_t *c, upd_audit_ctx_t *audit, const upd_principal_t *who, json_t *body, json_t **out,
                         upd_reason_t *reason);

/**
 * GET /v1/keys[?member=M] (the caller is an account-wide admin): {"keys":[listing...]} in id order.
 * @param query  the request's query string (after '?'), NULL for none; only "member" is known
 * @return 0; UPD_EINVAL (a malformed member or an unknown parameter); UPD_ESTORE
 */
int upd_keys_call_list(upd_control_t *c, const char *query, json_t **out, upd_reason_t *reason);

/**
 * DELETE /v1/keys/ID (an account-wide admin, or the key's owner): the listing with "revoked" set. The key is refused
 * from the next request on.
 * @return 0; UPD_ENOTFOUND; UPD_EFORBIDDEN (another's key, and the caller is not an admin); UPD_ECONFLICT "revoked"
 *         (already); UPD_ESTORE
 */
int upd_keys_call_revoke(upd_control_t *c, upd_audit_ctx_t *audit, const upd_principal_t *who, const char *key_id, json_t **out,
                         upd_reason_t *reason);

/**
 * POST /v1/login (any valid key): {"key":listing,"member":member record|null}, and the audit record auth.sign_in.
 * @return 0; UPD_ESTORE
 */
int upd_keys_call_login(upd_control_t *c, upd_audit_ctx_t *audit, const upd_principal_t *who, json_t **out, upd_reason_t *reason);

#endif
