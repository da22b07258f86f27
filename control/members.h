#ifndef UPD_MEMBERS_H
#define UPD_MEMBERS_H

#include <jansson.h>
#include "base/err.h"
#include "control/audit.h"
#include "control/control.h"
#include "control/keys.h"
#include "storage/store.h"

/*
 * Members of the account: the people who hold roles, per app or account-wide, and own API keys (control/keys.h). The
 * record (members sub-database, MEMBER -> JSON, this file owns its format):
 *
 *   {"id","name":S|null,"email":S|null,"roles":{"*"|APP: "build"|"release"|"admin"},"created":T}
 *
 * The id has the app-id grammar ([a-z0-9][a-z0-9-]{0,62}); "created" is Unix seconds. A member's role on an app is the
 * higher of roles["*"] and roles[APP]; account-wide it is roles["*"].
 */

#define UPD_MEMBER_NAME_MAX 128
#define UPD_MEMBER_EMAIL_MAX 254

/**
 * A member's role where a call applies, pure.
 * @param roles  the record's "roles" object (NULL: none)
 * @param app    an app id, NULL for account-wide
 * @return max(roles["*"], roles[app]) (roles["*"] alone for NULL), UPD_ROLE_NONE when neither is set; a value that is
 *         not a role's name counts as none
 */
upd_role_t upd_members_role_on(const json_t *roles, const char *app);

/**
 * Reads a member's record.
 * @param[out] out  the parsed record, a new reference
 * @return 0, UPD_ENOTFOUND, UPD_EINVAL (a record that is not JSON)
 */
int upd_members_get(upd_store_txn_t *txn, const char *member, json_t **out);

/* ---- the API's calls (control/api.c; PROTOCOLS: docs/control-api.md "Members") ---- */

/*
 * As control/keys.h's calls: 0 with *out a new reference, or a UPD_E* code with *reason. Changes run on a worker and
 * append their audit record (member.create, member.update, member.remove; target_member, the roles in its detail) to
 * their own write transaction. The router checked the role (account-wide admin), except where said.
 */

/**
 * POST /v1/members {"id","name"?,"email"?,"roles"}: the new record.
 * @return 0; UPD_EINVAL; UPD_EMISMATCH "unknown_app" (a scope of roles that is no app); UPD_EEXIST "exists"; UPD_ESTORE
 */
int upd_members_call_create(upd_control_t *c, upd_audit_ctx_t *audit, json_t *body, json_t **out, upd_reason_t *reason);

/** GET /v1/members: {"members":[record...]} in id order. @return 0, UPD_ESTORE */
int upd_members_call_list(upd_control_t *c, json_t **out, upd_reason_t *reason);

/**
 * GET /v1/members/ID (an account-wide admin, or the member themself: checked here): the record with "keys", the
 * listings of the member's keys (control/keys.h).
 * @return 0; UPD_EFORBIDDEN; UPD_ENOTFOUND; UPD_ESTORE
 */
int upd_members_call_show(upd_control_t *c, const upd_principal_t *who, const char *member, json_t **out, upd_reason_t *reason);

/**
 * PATCH /v1/members/ID {"name"?,"email"?,"roles"?}: roles are merged into the record's, a null removing that scope.
 * @return 0 with the record after the change; UPD_EINVAL; UPD_EMISMATCH "unknown_app"; UPD_ENOTFOUND; UPD_ESTORE
 */
int upd_members_call_update(upd_control_t *c, upd_audit_ctx_t *audit, const char *member, json_t *body, json_t **out,
                            upd_reason_t *reason);

/**
 * DELETE /v1/members/ID: removes the record and revokes the member's keys in the same transaction.
 * @param[out] out  {"member","removed":true,"keys_revoked":N}
 * @return 0; UPD_ENOTFOUND; UPD_ESTORE
 */
int upd_members_call_remove(upd_control_t *c, upd_audit_ctx_t *audit, const char *member, json_t **out, upd_reason_t *reason);

#endif
