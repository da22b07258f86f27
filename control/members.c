/* Members and their roles (control/members.h): records in the members sub-database, changed on workers. */
#include "control/members.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "control/api_error.h"
#include "base/log.h"

#define ROLES_MAX 1024 /* scopes in one member's roles: "*" and one per app */

static upd_role_t
role_of(const json_t *v)
{
    int r = json_is_string(v) ? upd_role_parse(json_string_value(v)) : -1;
    return r > 0 ? (upd_role_t)r : UPD_ROLE_NONE;
}

upd_role_t
upd_members_role_on(const json_t *roles, const char *app)
{
    if (!json_is_object(roles))
        return UPD_ROLE_NONE;
    upd_role_t r = role_of(json_object_get(roles, "*"));
    if (app != NULL) {
        upd_role_t on_app = role_of(json_object_get(roles, app));
        if (on_app > r)
            r = on_app;
    }
    return r;
}

int
upd_members_get(upd_store_txn_t *txn, const char *member, json_t **out)
{
    const char *text;
    size_t len;
    *out = NULL;
    int err = upd_store_member_get(txn, member, &text, &len);
    if (err != 0)
        return err;
    if ((*out = json_loadb(text, len, 0, NULL)) == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return UPD_EINVAL;
    }
    return 0;
}

/* ---- validation ---- */

static int
fail(upd_reason_t *reason, int err, const char *code, const char *msg)
{
    return upd_reason_set(reason, err, code, "%s", msg);
}

/* name and email: a string (trimmed of nothing, stored as given) or null */
static int
check_text(json_t *v, const char *field, size_t max, bool email, upd_reason_t *reason)
{
    if (json_is_null(v))
        return 0;
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    bool ok = json_is_string(v) && len >= 1 && len <= max && memchr(s, '\0', len) == NULL;
    for (size_t i = 0; ok && i < len; ++i)
        ok = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f && (!email || s[i] != ' ');
    if (ok && email) {
        const char *at = strchr(s, '@');
        ok = at != NULL && at != s && at[1] != '\0' && strchr(at + 1, '@') == NULL;
    }
    if (!ok)
        return upd_reason_set(reason, UPD_EINVAL, "invalid", "%s: expected %s of 1-%zu bytes, or null", field,
                              email ? "an address (NAME@DOMAIN)" : "a string without control characters", max);
    return 0;
}

/*
 * Checks roles as sent: an object of "*" or app ids to role names (null too, when nulls_remove: a PATCH). Apps are
 * checked to exist in txn. @return 0, UPD_EINVAL, UPD_EMISMATCH "unknown_app"
 */
static int
check_roles(upd_store_txn_t *txn, json_t *roles, bool nulls_remove, upd_reason_t *reason)
{
    if (!json_is_object(roles) || json_object_size(roles) > ROLES_MAX)
        return upd_reason_set(reason, UPD_EINVAL, "invalid",
                              "roles: expected an object of at most %d scopes (\"*\" or an app id) to build, release or admin",
                              ROLES_MAX);
    const char *scope;
    json_t *v;
    json_object_foreach(roles, scope, v)
    {
        if (strcmp(scope, "*") != 0 && !upd_id_is_app(scope, strlen(scope)))
            return upd_reason_set(reason, UPD_EINVAL, "invalid", "roles: %.64s is neither \"*\" nor an app id", scope);
        if (!(nulls_remove && json_is_null(v)) && role_of(v) == UPD_ROLE_NONE)
            return upd_reason_set(reason, UPD_EINVAL, "invalid", "roles.%s: expected build, release or admin%s", scope,
                                  nulls_remove ? " (or null to remove it)" : "");
        const char *data;
        size_t len;
        if (strcmp(scope, "*") != 0 && !json_is_null(v) && upd_store_app_get(txn, scope, &data, &len) != 0)
            return upd_reason_set(reason, UPD_EMISMATCH, "unknown_app", "roles: no app %s", scope);
    }
    return 0;
}

/* Appends the record of the change and commits; the transaction ends either way. */
static int
commit(upd_store_txn_t *txn, upd_audit_ctx_t *audit, upd_reason_t *reason)
{
    int err = upd_audit_append(txn, audit);
    if (err != 0) {
        upd_store_txn_end(txn);
        return upd_api_store_fail(reason, err);
    }
    if ((err = upd_store_commit(txn)) != 0)
        return upd_api_store_fail(reason, err);
    return 0;
}

static int
put(upd_store_txn_t *txn, const char *id, const json_t *rec, bool create, upd_reason_t *reason)
{
    char *text = json_dumps(rec, JSON_COMPACT);
    int err = text != NULL ? upd_store_member_put(txn, id, text, create) : UPD_ENOMEM;
    free(text);
    if (err == UPD_EEXIST)
        return upd_reason_set(reason, err, "exists", "member %s exists", id);
    return err != 0 ? upd_api_store_fail(reason, err) : 0;
}

/* ---- the API's calls ---- */

int
upd_members_call_create(upd_control_t *c, upd_audit_ctx_t *audit, json_t *body, json_t **out, upd_reason_t *reason)
{
    const char *k, *id = NULL;
    json_t *v, *name = NULL, *email = NULL, *roles = NULL;
    *out = NULL;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "id") == 0)
            id = json_string_value(v);
        else if (strcmp(k, "name") == 0)
            name = v;
        else if (strcmp(k, "email") == 0)
            email = v;
        else if (strcmp(k, "roles") == 0)
            roles = v;
        else
            return upd_reason_set(reason, UPD_EINVAL, "invalid", "%s: unknown field (id, name, email, roles)", k);
    }
    if (id == NULL || json_string_length(json_object_get(body, "id")) != strlen(id) || !upd_id_is_app(id, strlen(id)))
        return fail(reason, UPD_EINVAL, "invalid", "id: expected [a-z0-9][a-z0-9-]{0,62}");
    int err;
    if ((name != NULL && (err = check_text(name, "name", UPD_MEMBER_NAME_MAX, false, reason)) != 0) ||
        (email != NULL && (err = check_text(email, "email", UPD_MEMBER_EMAIL_MAX, true, reason)) != 0))
        return err;
    snprintf(audit->target_member, sizeof(audit->target_member), "%s", id);

    upd_store_txn_t *txn;
    if ((err = upd_store_write_begin(c->store, &txn)) != 0)
        return upd_api_store_fail(reason, err);
    json_t *rec = NULL;
    if (roles != NULL && (err = check_roles(txn, roles, false, reason)) != 0)
        goto Exit;
    rec = json_pack("{s:s, s:O, s:O, s:o, s:I}", "id", id, "name", name != NULL ? name : json_null(), "email",
                    email != NULL ? email : json_null(), "roles", roles != NULL ? json_deep_copy(roles) : json_object(), "created",
                    (json_int_t)time(NULL));
    if ((err = put(txn, id, rec, true, reason)) != 0)
        goto Exit;
    upd_audit_detail(audit, "roles", json_deep_copy(json_object_get(rec, "roles")));
    err = commit(txn, audit, reason);
    txn = NULL;
    if (err != 0)
        goto Exit;
    upd_log_info("member %s created", id);
    *out = rec;
    rec = NULL;
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    json_decref(rec);
    return err;
}

static int
collect_member(const char *id, const char *json, size_t len, void *arg)
{
    (void)id;
    json_t *rec = json_loadb(json, len, 0, NULL);
    if (json_is_object(rec))
        json_array_append(arg, rec);
    json_decref(rec);
    return 0;
}

int
upd_members_call_list(upd_control_t *c, json_t **out, upd_reason_t *reason)
{
    upd_store_txn_t *txn;
    *out = NULL;
    int err = upd_store_read_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    json_t *members = json_array();
    err = upd_store_member_list(txn, collect_member, members);
    upd_store_txn_end(txn);
    if (err != 0) {
        json_decref(members);
        return upd_api_store_fail(reason, err);
    }
    *out = json_pack("{s:o}", "members", members);
    return 0;
}

/* the listing of one key, when it is the member's (GET /v1/members/ID) */
typedef struct {
    const char *member;
    upd_key_uses_t *uses;
    json_t *keys;
} keys_ctx_t;

static int
collect_key(const char *key_id, const char *json, size_t len, void *arg)
{
    keys_ctx_t *kc = arg;
    json_t *l = upd_keys_listing(json, len, upd_key_uses_last(kc->uses, key_id));
    if (l != NULL && json_is_string(json_object_get(l, "member")) &&
        strcmp(json_string_value(json_object_get(l, "member")), kc->member) == 0)
        json_array_append(kc->keys, l);
    json_decref(l);
    return 0;
}

int
upd_members_call_show(upd_control_t *c, const upd_principal_t *who, const char *member, json_t **out, upd_reason_t *reason)
{
    *out = NULL;
    if (who->role != UPD_ROLE_ADMIN && strcmp(who->member, member) != 0)
        return upd_reason_set(reason, UPD_EFORBIDDEN, "forbidden",
                              "reading another member needs the admin role account-wide; the key has %s", upd_role_name(who->role));
    upd_store_txn_t *txn;
    int err = upd_store_read_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    json_t *rec;
    if ((err = upd_members_get(txn, member, &rec)) != 0) {
        upd_store_txn_end(txn);
        if (err == UPD_ENOTFOUND)
            return upd_reason_set(reason, err, "not_found", "no member %s", member);
        return upd_api_store_fail(reason, err);
    }
    keys_ctx_t kc = {member, c->key_uses, json_array()};
    err = upd_store_key_list(txn, collect_key, &kc);
    upd_store_txn_end(txn);
    if (err != 0) {
        json_decref(kc.keys);
        json_decref(rec);
        return upd_api_store_fail(reason, err);
    }
    json_object_set_new(rec, "keys", kc.keys);
    *out = rec;
    return 0;
}

int
upd_members_call_update(upd_control_t *c, upd_audit_ctx_t *audit, const char *member, json_t *body, json_t **out,
                        upd_reason_t *reason)
{
    const char *k;
    json_t *v, *name = NULL, *email = NULL, *roles = NULL;
    int err;
    *out = NULL;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "name") == 0)
            name = v;
        else if (strcmp(k, "email") == 0)
            email = v;
        else if (strcmp(k, "roles") == 0)
            roles = v;
        else
            return upd_reason_set(reason, UPD_EINVAL, "invalid", "%s: unknown field (name, email, roles)", k);
    }
    if ((name != NULL && (err = check_text(name, "name", UPD_MEMBER_NAME_MAX, false, reason)) != 0) ||
        (email != NULL && (err = check_text(email, "email", UPD_MEMBER_EMAIL_MAX, true, reason)) != 0))
        return err;
    snprintf(audit->target_member, sizeof(audit->target_member), "%s", member);

    upd_store_txn_t *txn;
    if ((err = upd_store_write_begin(c->store, &txn)) != 0)
        return upd_api_store_fail(reason, err);
    json_t *rec = NULL;
    if ((err = upd_members_get(txn, member, &rec)) != 0) {
        err = err == UPD_ENOTFOUND ? upd_reason_set(reason, err, "not_found", "no member %s", member) : upd_api_store_fail(reason, err);
        goto Exit;
    }
    if (roles != NULL && (err = check_roles(txn, roles, true, reason)) != 0)
        goto Exit;
    json_t *fields = json_array();
    if (name != NULL) {
        json_object_set(rec, "name", name);
        json_array_append_new(fields, json_string("name"));
    }
    if (email != NULL) {
        json_object_set(rec, "email", email);
        json_array_append_new(fields, json_string("email"));
    }
    if (roles != NULL) {
        json_t *now = json_object_get(rec, "roles");
        if (!json_is_object(now)) {
            now = json_object();
            json_object_set_new(rec, "roles", now);
        }
        json_object_foreach(roles, k, v)
        {
            if (json_is_null(v))
                json_object_del(now, k);
            else
                json_object_set(now, k, v);
        }
        if (json_object_size(now) > ROLES_MAX) {
            json_decref(fields);
            err = upd_reason_set(reason, UPD_EINVAL, "invalid", "roles: at most %d scopes", ROLES_MAX);
            goto Exit;
        }
        upd_audit_detail(audit, "change", json_deep_copy(roles));
    }
    upd_audit_detail(audit, "roles", json_deep_copy(json_object_get(rec, "roles")));
    upd_audit_detail(audit, "fields", fields);
    if ((err = put(txn, member, rec, false, reason)) != 0)
        goto Exit;
    err = commit(txn, audit, reason);
    txn = NULL;
    if (err != 0)
        goto Exit;
    upd_log_info("member %s updated", member);
    *out = rec;
    rec = NULL;
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    json_decref(rec);
    return err;
}

int
upd_members_call_remove(upd_control_t *c, upd_audit_ctx_t *audit, const char *member, json_t **out, upd_reason_t *reason)
{
    *out = NULL;
    snprintf(audit->target_member, sizeof(audit->target_member), "%s", member);
    upd_store_txn_t *txn;
    int err = upd_store_write_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    size_t revoked = 0;
    if ((err = upd_store_member_del(txn, member)) != 0) {
        err = err == UPD_ENOTFOUND ? upd_reason_set(reason, err, "not_found", "no member %s", member) : upd_api_store_fail(reason, err);
        upd_store_txn_end(txn);
        return err;
    }
    /* their keys go with them, in the same transaction: none outlives its owner for a moment */
    if ((err = upd_keys_revoke_member(txn, member, (int64_t)time(NULL), &revoked)) != 0) {
        upd_store_txn_end(txn);
        return upd_api_store_fail(reason, err);
    }
    upd_audit_detail(audit, "keys_revoked", json_integer((json_int_t)revoked));
    if ((err = commit(txn, audit, reason)) != 0)
        return err;
    upd_log_info("member %s removed, %zu keys revoked", member, revoked);
    *out = json_pack("{s:s, s:b, s:I}", "member", member, "removed", 1, "keys_revoked", (json_int_t)revoked);
    return 0;
}
