#ifndef UPD_CONTROL_AUDIT_H
#define UPD_CONTROL_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include "domain/audit.h"
#include "domain/ids.h"
#include "domain/version.h"
#include "storage/store.h"

/*
 * The control plane's audit trail: one record (domain/audit.h) for every state-changing call, every refusal (401, 403)
 * and every host command that changes a record, chained by SHA-256 and kept in the store's audit sub-database.
 *
 * A change and its record land in the same write transaction: the code that commits a change calls
 * upd_audit_append() on that transaction just before committing, so there is no change without its record (and an
 * aborted change leaves none). Refusals and failures, which change nothing, are recorded by upd_audit_record() in a
 * write transaction of their own. Either way the chain's head (the last sequence number and its hash) is kept in the
 * store's meta under "audit_head", written with the record.
 */

#define UPD_AUDIT_KEY_ID_MAX 16

/** A call as the trail sees it: filled by the router (who, from where, which action) and by the work (the target). */
typedef struct st_upd_audit_ctx_t {
    bool host;                                 /* the host's bootstrap commands */
    char member[UPD_ID_MAX + 1];               /* the key's owner, "" for a service key or none */
    char key[UPD_AUDIT_KEY_ID_MAX + 1];        /* the key's id, "" when none was presented */
    char source[UPD_AUDIT_SOURCE_MAX + 1];     /* the peer address */
    char user_agent[UPD_AUDIT_UA_MAX + 1];
    char request_id[UPD_AUDIT_REQUEST_ID_MAX + 1];
    char action[UPD_AUDIT_ACTION_MAX + 1];     /* "release.create", "rollout.set", "key.revoke", "auth.sign_in" ... */
    char app[UPD_ID_MAX + 1], channel[UPD_ID_MAX + 1], version[UPD_VERSION_MAX + 1];
    char target_member[UPD_ID_MAX + 1], target_key[UPD_AUDIT_KEY_ID_MAX + 1];
    int status;                                /* what a success answers (201, 200); 0 for host commands */
    json_t *detail;                            /* owned (upd_audit_ctx_dispose), NULL for none; never a secret */
    bool recorded;                             /* set once a record of this call was appended */
} upd_audit_ctx_t;

/** Frees what ctx owns (its detail). */
void upd_audit_ctx_dispose(upd_audit_ctx_t *ctx);

/** Sets detail[name] = value (a new reference, taken). */
void upd_audit_detail(upd_audit_ctx_t *ctx, const char *name, json_t *value);

/**
 * Appends the record of a successful change to txn, the change's own write transaction (outcome "ok", status
 * ctx->status), and moves the chain's head. Call it last before upd_store_commit(): if the commit fails, neither the
 * change nor its record exists. Sets ctx->recorded.
 * @return 0, UPD_ENOMEM, UPD_ESTORE (the caller aborts the change), UPD_EINVAL (a corrupt chain head)
 */
int upd_audit_append(upd_store_txn_t *txn, upd_audit_ctx_t *ctx);

/**
 * Records a refusal or a failure in a write transaction of its own, with its outcome ("denied": the key may not do
 * this, "failed": anything else refused; "ok" only for a change whose own transaction missed its record), the status
 * answered and the error code. Blocking (an LMDB write): never on an event loop. Sets ctx->recorded.
 * @return 0, UPD_ENOMEM, UPD_ESTORE (logged: the refusal is answered anyway)
 */
int upd_audit_record(upd_store_t *store, upd_audit_ctx_t *ctx, const char *outcome, int status, const char *error);

/**
 * The chain's head: the last record's sequence number and hash (0 and upd_audit_genesis when there is none).
 * @return 0, UPD_ESTORE, UPD_EINVAL (a corrupt head)
 */
int upd_audit_head(upd_store_txn_t *txn, uint64_t *seq, char hash[UPD_AUDIT_HASH_HEX + 1]);

#endif
