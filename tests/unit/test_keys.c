/*
 * control/keys.c and control/members.c against a real LMDB store: what a key may do where (its scope intersected with
 * its owner's roles), the refusals that say why (revoked, expired), records written before keys had owners, and the
 * last use written off the loop at most once per interval.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "control/keys.h"
#include "control/members.h"
#include "tests/unit/tmpdir.h"

struct fixture {
    char dir[64];
    upd_store_t *store;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char path[128];
    if (f == NULL || tmpdir_make(f->dir, sizeof(f->dir), "keys") != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/data", f->dir);
    if (mkdir(path, 0700) != 0 || upd_store_open(path, NULL, &f->store) != 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    upd_store_close(f->store);
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static json_t *
parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void
put_member(struct fixture *f, const char *id, const char *roles)
{
    char text[512];
    snprintf(text, sizeof(text), "{\"id\":\"%s\",\"name\":null,\"email\":null,\"roles\":%s,\"created\":1}", id, roles);
    upd_store_txn_t *txn;
    assert_int_equal(upd_store_write_begin(f->store, &txn), 0);
    assert_int_equal(upd_store_member_put(txn, id, text, false), 0);
    assert_int_equal(upd_store_commit(txn), 0);
}

/* Creates a key; key holds UPD_KEY_LEN + 1 bytes. */
static void
create(struct fixture *f, const char *member, const char *app, upd_role_t role, int64_t expires, char *key)
{
    upd_key_spec_t spec = {"test", member, app, role, expires};
    upd_store_txn_t *txn;
    assert_int_equal(upd_store_write_begin(f->store, &txn), 0);
    assert_int_equal(upd_keys_create(txn, &spec, (int64_t)time(NULL), key, UPD_KEY_LEN + 1, NULL), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    assert_int_equal(strlen(key), UPD_KEY_LEN);
}

static int
authorize(struct fixture *f, const char *key, const char *app, upd_principal_t *who)
{
    upd_store_txn_t *txn;
    assert_int_equal(upd_store_read_begin(f->store, &txn), 0);
    int err = upd_keys_authorize(txn, key, strlen(key), app, who);
    upd_store_txn_end(txn);
    return err;
}

static void
key_id_of(const char *key, char id[UPD_KEY_ID_HEX + 1])
{
    memcpy(id, key + 4, UPD_KEY_ID_HEX);
    id[UPD_KEY_ID_HEX] = '\0';
}

/* the record's "last_used", 0 when none */
static int64_t
stored_last_used(struct fixture *f, const char *id)
{
    upd_store_txn_t *txn;
    const char *text;
    size_t len;
    assert_int_equal(upd_store_read_begin(f->store, &txn), 0);
    assert_int_equal(upd_store_key_get(txn, id, &text, &len), 0);
    json_t *rec = json_loadb(text, len, 0, NULL);
    upd_store_txn_end(txn);
    json_t *v = json_object_get(rec, "last_used");
    int64_t t = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    json_decref(rec);
    return t;
}

/* ---- role resolution ---- */

static void
test_a_members_role_on_an_app_is_the_higher_of_account_wide_and_that_app(void **state)
{
    (void)state;
    json_t *roles = parse("{\"*\":\"build\",\"acme\":\"release\",\"zeta\":\"bogus\"}");
    assert_int_equal(upd_members_role_on(roles, "acme"), UPD_ROLE_RELEASE);
    assert_int_equal(upd_members_role_on(roles, "other"), UPD_ROLE_BUILD);
    assert_int_equal(upd_members_role_on(roles, NULL), UPD_ROLE_BUILD);
    assert_int_equal(upd_members_role_on(roles, "zeta"), UPD_ROLE_BUILD); /* not a role: none */
    json_decref(roles);

    roles = parse("{\"*\":\"admin\",\"acme\":\"build\"}");
    assert_int_equal(upd_members_role_on(roles, "acme"), UPD_ROLE_ADMIN); /* a lower per-app role takes nothing away */
    json_decref(roles);

    roles = parse("{\"acme\":\"admin\"}");
    assert_int_equal(upd_members_role_on(roles, NULL), UPD_ROLE_NONE); /* an app's admin is no account-wide admin */
    assert_int_equal(upd_members_role_on(roles, "acme"), UPD_ROLE_ADMIN);
    json_decref(roles);
    assert_int_equal(upd_members_role_on(NULL, "acme"), UPD_ROLE_NONE);
}

static void
test_a_keys_role_is_its_scope_intersected_with_its_owners_roles(void **state)
{
    (void)state;
    json_t *owner = parse("{\"*\":\"build\",\"acme\":\"admin\"}");
    /* an account-wide admin key of this member: what the member may, no more */
    assert_int_equal(upd_keys_effective_role("*", UPD_ROLE_ADMIN, owner, "acme"), UPD_ROLE_ADMIN);
    assert_int_equal(upd_keys_effective_role("*", UPD_ROLE_ADMIN, owner, "other"), UPD_ROLE_BUILD);
    assert_int_equal(upd_keys_effective_role("*", UPD_ROLE_ADMIN, owner, NULL), UPD_ROLE_BUILD);
    /* a narrower key: no more than its scope */
    assert_int_equal(upd_keys_effective_role("*", UPD_ROLE_BUILD, owner, "acme"), UPD_ROLE_BUILD);
    assert_int_equal(upd_keys_effective_role("acme", UPD_ROLE_RELEASE, owner, "acme"), UPD_ROLE_RELEASE);
    /* a key of one app has nothing elsewhere, account-wide included */
    assert_int_equal(upd_keys_effective_role("acme", UPD_ROLE_RELEASE, owner, "other"), UPD_ROLE_NONE);
    assert_int_equal(upd_keys_effective_role("acme", UPD_ROLE_ADMIN, owner, NULL), UPD_ROLE_NONE);
    json_decref(owner);
    /* no owner: the scope alone */
    assert_int_equal(upd_keys_effective_role("*", UPD_ROLE_RELEASE, NULL, "acme"), UPD_ROLE_RELEASE);
    assert_int_equal(upd_keys_effective_role("*", UPD_ROLE_RELEASE, NULL, NULL), UPD_ROLE_RELEASE);
    assert_int_equal(upd_keys_effective_role("acme", UPD_ROLE_BUILD, NULL, "acme"), UPD_ROLE_BUILD);
    assert_int_equal(upd_keys_effective_role("acme", UPD_ROLE_BUILD, NULL, "beta"), UPD_ROLE_NONE);
}

/* ---- key checks ---- */

static void
test_a_service_key_has_its_role_on_its_app_and_nothing_elsewhere(void **state)
{
    struct fixture *f = *state;
    char key[UPD_KEY_LEN + 1];
    upd_principal_t who;
    create(f, NULL, "acme", UPD_ROLE_BUILD, 0, key);
    assert_int_equal(authorize(f, key, "acme", &who), 0);
    assert_int_equal(who.role, UPD_ROLE_BUILD);
    assert_string_equal(who.member, "");
    assert_string_equal(who.key_app, "acme");
    assert_int_equal(who.key_role, UPD_ROLE_BUILD);
    assert_null(who.refusal);
    assert_int_equal(authorize(f, key, "beta", &who), 0);
    assert_int_equal(who.role, UPD_ROLE_NONE);
    assert_int_equal(authorize(f, key, NULL, &who), 0);
    assert_int_equal(who.role, UPD_ROLE_NONE);
}

static void
test_a_members_key_follows_the_members_roles_at_every_check(void **state)
{
    struct fixture *f = *state;
    char key[UPD_KEY_LEN + 1];
    upd_principal_t who;
    put_member(f, "alice", "{\"acme\":\"release\"}");
    create(f, "alice", "*", UPD_ROLE_ADMIN, 0, key);
    assert_int_equal(authorize(f, key, "acme", &who), 0);
    assert_int_equal(who.role, UPD_ROLE_RELEASE);
    assert_string_equal(who.member, "alice");
    assert_int_equal(authorize(f, key, NULL, &who), 0);
    assert_int_equal(who.role, UPD_ROLE_NONE);
    /* the member is made an account-wide admin: the same key may now do that */
    put_member(f, "alice", "{\"*\":\"admin\"}");
    assert_int_equal(authorize(f, key, NULL, &who), 0);
    assert_int_equal(who.role, UPD_ROLE_ADMIN);
}

static void
test_a_wrong_secret_an_unknown_id_and_a_malformed_key_are_unauthorized(void **state)
{
    struct fixture *f = *state;
    char key[UPD_KEY_LEN + 1], other[UPD_KEY_LEN + 1];
    upd_principal_t who;
    create(f, NULL, "*", UPD_ROLE_ADMIN, 0, key);
    memcpy(other, key, sizeof(other));
    other[UPD_KEY_LEN - 1] = other[UPD_KEY_LEN - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(authorize(f, other, NULL, &who), UPD_EAUTH);
    assert_string_equal(who.refusal, "unauthorized");
    assert_int_equal(strncmp(who.key_id, key + 4, UPD_KEY_ID_HEX), 0); /* the id claimed, for the audit record */
    memcpy(other, key, sizeof(other));
    other[4] = other[4] == '0' ? '1' : '0';
    assert_int_equal(authorize(f, other, NULL, &who), UPD_EAUTH);
    assert_string_equal(who.refusal, "unauthorized");
    assert_int_equal(authorize(f, "upd_short", NULL, &who), UPD_EAUTH);
    assert_string_equal(who.key_id, "");
}

static void
test_a_revoked_key_is_refused_as_revoked_from_the_next_check(void **state)
{
    struct fixture *f = *state;
    char key[UPD_KEY_LEN + 1], id[UPD_KEY_ID_HEX + 1];
    upd_principal_t who;
    create(f, NULL, "*", UPD_ROLE_RELEASE, 0, key);
    key_id_of(key, id);
    assert_int_equal(authorize(f, key, "acme", &who), 0);
    upd_store_txn_t *txn;
    json_t *listing;
    assert_int_equal(upd_store_write_begin(f->store, &txn), 0);
    assert_int_equal(upd_keys_revoke(txn, id, 1234, &listing), 0);
    assert_int_equal(upd_keys_revoke(txn, id, 1235, NULL), UPD_ECONFLICT);
    assert_int_equal(upd_store_commit(txn), 0);
    assert_int_equal(json_integer_value(json_object_get(listing, "revoked")), 1234);
    json_decref(listing);
    assert_int_equal(authorize(f, key, "acme", &who), UPD_EAUTH);
    assert_string_equal(who.refusal, "revoked");
    /* a wrong secret of a revoked key tells nothing about it */
    key[UPD_KEY_LEN - 1] = key[UPD_KEY_LEN - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(authorize(f, key, "acme", &who), UPD_EAUTH);
    assert_string_equal(who.refusal, "unauthorized");
}

static void
test_an_expired_key_is_refused_as_expired(void **state)
{
    struct fixture *f = *state;
    char key[UPD_KEY_LEN + 1], later[UPD_KEY_LEN + 1];
    upd_principal_t who;
    int64_t now = (int64_t)time(NULL);
    create(f, NULL, "*", UPD_ROLE_ADMIN, now - 1, key);
    create(f, NULL, "*", UPD_ROLE_ADMIN, now + 3600, later);
    assert_int_equal(authorize(f, key, NULL, &who), UPD_EAUTH);
    assert_string_equal(who.refusal, "expired");
    assert_int_equal(authorize(f, later, NULL, &who), 0);
    assert_int_equal(who.role, UPD_ROLE_ADMIN);
}

static void
test_removing_a_member_revokes_their_keys_and_an_orphaned_key_is_refused(void **state)
{
    struct fixture *f = *state;
    char a1[UPD_KEY_LEN + 1], a2[UPD_KEY_LEN + 1], b[UPD_KEY_LEN + 1];
    upd_principal_t who;
    put_member(f, "alice", "{\"*\":\"release\"}");
    put_member(f, "bob", "{\"*\":\"release\"}");
    create(f, "alice", "*", UPD_ROLE_ADMIN, 0, a1);
    create(f, "alice", "acme", UPD_ROLE_BUILD, 0, a2);
    create(f, "bob", "*", UPD_ROLE_ADMIN, 0, b);
    upd_store_txn_t *txn;
    size_t n;
    assert_int_equal(upd_store_write_begin(f->store, &txn), 0);
    assert_int_equal(upd_store_member_del(txn, "alice"), 0);
    assert_int_equal(upd_keys_revoke_member(txn, "alice", 99, &n), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    assert_int_equal(n, 2);
    assert_int_equal(authorize(f, a1, "acme", &who), UPD_EAUTH);
    assert_string_equal(who.refusal, "revoked");
    assert_int_equal(authorize(f, a2, "acme", &who), UPD_EAUTH);
    assert_int_equal(authorize(f, b, "acme", &who), 0);
    /* a key whose owner is gone without its keys revoked (a record from elsewhere) is refused all the same */
    assert_int_equal(upd_store_write_begin(f->store, &txn), 0);
    assert_int_equal(upd_store_member_del(txn, "bob"), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    assert_int_equal(authorize(f, b, "acme", &who), UPD_EAUTH);
    assert_string_equal(who.refusal, "revoked");
}

static void
test_a_key_record_of_schema_4_is_an_account_wide_key_of_its_role_owned_by_nobody(void **state)
{
    struct fixture *f = *state;
    char key[UPD_KEY_LEN + 1], id[UPD_KEY_ID_HEX + 1];
    upd_principal_t who;
    create(f, NULL, "*", UPD_ROLE_RELEASE, 0, key);
    key_id_of(key, id);
    /* the record as schema 4 wrote it: no member, no app, no expiry */
    upd_store_txn_t *txn;
    const char *text;
    size_t len;
    assert_int_equal(upd_store_write_begin(f->store, &txn), 0);
    assert_int_equal(upd_store_key_get(txn, id, &text, &len), 0);
    json_t *rec = json_loadb(text, len, 0, NULL);
    json_t *old =
        json_pack("{s:O, s:s, s:O, s:O, s:I}", "id", json_object_get(rec, "id"), "name", "ops", "role",
                  json_object_get(rec, "role"), "sha256", json_object_get(rec, "sha256"), "created", (json_int_t)1700000000);
    char *old_text = json_dumps(old, JSON_COMPACT);
    assert_int_equal(upd_store_key_replace(txn, id, old_text), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    assert_int_equal(authorize(f, key, NULL, &who), 0);
    assert_int_equal(who.role, UPD_ROLE_RELEASE);
    assert_string_equal(who.key_app, "*");
    assert_string_equal(who.member, "");
    assert_int_equal(authorize(f, key, "acme", &who), 0);
    assert_int_equal(who.role, UPD_ROLE_RELEASE);
    json_t *listing = upd_keys_listing(old_text, strlen(old_text), 0);
    assert_non_null(listing);
    assert_true(json_is_null(json_object_get(listing, "member")));
    assert_string_equal(json_string_value(json_object_get(listing, "app")), "*");
    assert_true(json_is_null(json_object_get(listing, "expires")));
    assert_true(json_is_null(json_object_get(listing, "last_used")));
    assert_null(json_object_get(listing, "sha256"));
    json_decref(listing);
    free(old_text);
    json_decref(old);
    json_decref(rec);
}

static void
test_a_listing_never_holds_the_secrets_hash(void **state)
{
    struct fixture *f = *state;
    char key[UPD_KEY_LEN + 1];
    upd_key_spec_t spec = {"ci", NULL, "acme", UPD_ROLE_BUILD, 2000000000};
    upd_store_txn_t *txn;
    json_t *listing;
    assert_int_equal(upd_store_write_begin(f->store, &txn), 0);
    assert_int_equal(upd_keys_create(txn, &spec, 1000, key, sizeof(key), &listing), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    const char *fields[] = {"id", "name", "member", "app", "role", "created", "expires", "revoked", "last_used"};
    assert_int_equal(json_object_size(listing), sizeof(fields) / sizeof(fields[0]));
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); ++i)
        assert_non_null(json_object_get(listing, fields[i]));
    assert_int_equal(json_integer_value(json_object_get(listing, "expires")), 2000000000);
    char *text = json_dumps(listing, 0);
    assert_null(strstr(text, key + 4 + UPD_KEY_ID_HEX + 1));
    free(text);
    json_decref(listing);
}

static void
test_expiry_is_a_duration_or_unix_seconds_after_now(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(upd_keys_parse_expires("90d", 1000, &t), 0);
    assert_int_equal(t, 1000 + 90 * 86400);
    assert_int_equal(upd_keys_parse_expires("12h", 1000, &t), 0);
    assert_int_equal(t, 1000 + 12 * 3600);
    assert_int_equal(upd_keys_parse_expires("30m", 1000, &t), 0);
    assert_int_equal(t, 1000 + 30 * 60);
    assert_int_equal(upd_keys_parse_expires("1767225600", 1000, &t), 0);
    assert_int_equal(t, 1767225600);
    const char *bad[] = {"", "d", "0d", "90", "-5d", "5w", "5dd", "1.5h", "99999d", " 5d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        assert_int_equal(upd_keys_parse_expires(bad[i], 1000, &t), UPD_EINVAL);
}

/* ---- last use ---- */

static void
test_a_keys_last_use_is_written_at_once_then_at_most_once_per_interval(void **state)
{
    struct fixture *f = *state;
    char key[UPD_KEY_LEN + 1], id[UPD_KEY_ID_HEX + 1];
    create(f, NULL, "*", UPD_ROLE_BUILD, 0, key);
    key_id_of(key, id);
    upd_key_uses_t *u = upd_key_uses_create(f->store, 3600000, 16);
    assert_int_equal(upd_key_uses_last(u, id), 0);
    upd_key_uses_note(u, id, 1000);
    assert_int_equal(upd_key_uses_last(u, id), 1000);
    /* never written before: due at once */
    assert_int_equal(upd_key_uses_flush(u, false), 0);
    assert_int_equal(stored_last_used(f, id), 1000);
    /* within the interval: held in memory, shown by the table */
    upd_key_uses_note(u, id, 1030);
    assert_int_equal(upd_key_uses_flush(u, false), 0);
    assert_int_equal(stored_last_used(f, id), 1000);
    assert_int_equal(upd_key_uses_last(u, id), 1030);
    upd_store_txn_t *txn;
    const char *text;
    size_t len;
    assert_int_equal(upd_store_read_begin(f->store, &txn), 0);
    assert_int_equal(upd_store_key_get(txn, id, &text, &len), 0);
    json_t *listing = upd_keys_listing(text, len, upd_key_uses_last(u, id));
    upd_store_txn_end(txn);
    assert_int_equal(json_integer_value(json_object_get(listing, "last_used")), 1030);
    json_decref(listing);
    /* stopping writes what is left */
    upd_key_uses_stop(u);
    assert_int_equal(stored_last_used(f, id), 1030);
    upd_key_uses_destroy(u);
}

static void
test_writing_a_last_use_keeps_a_revocation_made_meanwhile(void **state)
{
    struct fixture *f = *state;
    char key[UPD_KEY_LEN + 1], id[UPD_KEY_ID_HEX + 1];
    upd_principal_t who;
    create(f, NULL, "*", UPD_ROLE_BUILD, 0, key);
    key_id_of(key, id);
    upd_key_uses_t *u = upd_key_uses_create(f->store, 1000, 16);
    upd_key_uses_note(u, id, 2000);
    upd_store_txn_t *txn;
    assert_int_equal(upd_store_write_begin(f->store, &txn), 0);
    assert_int_equal(upd_keys_revoke(txn, id, 1999, NULL), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    assert_int_equal(upd_key_uses_flush(u, true), 0);
    assert_int_equal(stored_last_used(f, id), 2000);
    assert_int_equal(authorize(f, key, NULL, &who), UPD_EAUTH);
    assert_string_equal(who.refusal, "revoked");
    upd_key_uses_destroy(u);
}

static void
test_a_full_table_drops_uses_of_new_keys_and_forgets_written_ones(void **state)
{
    struct fixture *f = *state;
    upd_key_uses_t *u = upd_key_uses_create(f->store, 3600000, 16);
    char id[UPD_KEY_ID_HEX + 1];
    for (int i = 0; i < 16; ++i) {
        snprintf(id, sizeof(id), "%016x", i + 1);
        upd_key_uses_note(u, id, 100);
    }
    upd_key_uses_note(u, "00000000000000ff", 100);
    assert_int_equal(upd_key_uses_last(u, "00000000000000ff"), 0);
    /* written (there are no such records: nothing to write them into), then forgotten to make room */
    assert_int_equal(upd_key_uses_flush(u, true), 0);
    upd_key_uses_note(u, "00000000000000ff", 200);
    assert_int_equal(upd_key_uses_last(u, "00000000000000ff"), 200);
    char *text;
    size_t len;
    FILE *fp = open_memstream(&text, &len);
    upd_key_uses_render_metrics(u, fp);
    fclose(fp);
    assert_non_null(strstr(text, "updraft_key_uses_dropped_total 1\n"));
    assert_non_null(strstr(text, "updraft_key_uses_tracked 1\n"));
    free(text);
    upd_key_uses_destroy(u);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_members_role_on_an_app_is_the_higher_of_account_wide_and_that_app),
        cmocka_unit_test(test_a_keys_role_is_its_scope_intersected_with_its_owners_roles),
        cmocka_unit_test_setup_teardown(test_a_service_key_has_its_role_on_its_app_and_nothing_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_members_key_follows_the_members_roles_at_every_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_wrong_secret_an_unknown_id_and_a_malformed_key_are_unauthorized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_revoked_key_is_refused_as_revoked_from_the_next_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_expired_key_is_refused_as_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removing_a_member_revokes_their_keys_and_an_orphaned_key_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_key_record_of_schema_4_is_an_account_wide_key_of_its_role_owned_by_nobody, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_listing_never_holds_the_secrets_hash, setup, teardown),
        cmocka_unit_test(test_expiry_is_a_duration_or_unix_seconds_after_now),
        cmocka_unit_test_setup_teardown(test_a_keys_last_use_is_written_at_once_then_at_most_once_per_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writing_a_last_use_keeps_a_revocation_made_meanwhile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_table_drops_uses_of_new_keys_and_forgets_written_ones, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
