#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "storage/sts_store.h"
#include "tmpdir.h"

/* storage/sts_store.c: the approval service's LMDB environment, its JSON values and its audit chain. */

typedef struct {
    char dir[128];
    upd_sts_store_t *store;
} fixture_t;

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL || tmpdir_make(f->dir, sizeof(f->dir), "sts-store") != 0)
        return -1;
    if (upd_sts_store_open(f->dir, true, &f->store) != 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *f = *state;
    upd_sts_store_close(f->store);
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static void
open_without_create_refuses_a_missing_environment(void **state)
{
    upd_sts_store_t *s = NULL;
    char dir[128];
    assert_int_equal(tmpdir_make(dir, sizeof(dir), "sts-store-none"), 0);
    assert_int_equal(upd_sts_store_open(dir, false, &s), UPD_ENOTFOUND);
    assert_null(s);
    tmpdir_remove(dir);
}

static void
json_values_survive_reopen(void **state)
{
    fixture_t *f = *state;
    upd_sts_txn_t *t;
    json_t *v;
    assert_int_equal(upd_sts_txn_begin(f->store, true, &t), 0);
    v = json_pack("{s:s,s:b,s:I}", "name", "alice", "admin", 1, "created", (json_int_t)1700000000);
    assert_int_equal(upd_sts_put_json(t, UPD_STS_DB_MEMBERS, "alice", 5, v), 0);
    json_decref(v);
    assert_int_equal(upd_sts_put(t, UPD_STS_DB_PROPOSAL_DOCS, "p1", 2, "{\"format\":1}", 12), 0);
    assert_int_equal(upd_sts_txn_commit(t), 0);
    upd_sts_store_close(f->store);
    assert_int_equal(upd_sts_store_open(f->dir, false, &f->store), 0);

    assert_int_equal(upd_sts_txn_begin(f->store, false, &t), 0);
    assert_int_equal(upd_sts_get_json(t, UPD_STS_DB_MEMBERS, "alice", 5, &v), 0);
    assert_string_equal(json_string_value(json_object_get(v, "name")), "alice");
    assert_true(json_is_true(json_object_get(v, "admin")));
    json_decref(v);
    const void *b;
    size_t n;
    assert_int_equal(upd_sts_get(t, UPD_STS_DB_PROPOSAL_DOCS, "p1", 2, &b, &n), 0);
    assert_int_equal(n, 12);
    assert_memory_equal(b, "{\"format\":1}", 12);
    /* the sub-databases are apart: the same key in another is not found */
    assert_int_equal(upd_sts_get(t, UPD_STS_DB_PROPOSALS, "p1", 2, &b, &n), UPD_ENOTFOUND);
    upd_sts_txn_abort(t);
}

static void
an_aborted_write_leaves_nothing(void **state)
{
    fixture_t *f = *state;
    upd_sts_txn_t *t;
    const void *b;
    size_t n;
    assert_int_equal(upd_sts_txn_begin(f->store, true, &t), 0);
    assert_int_equal(upd_sts_put(t, UPD_STS_DB_ENROL, "0123456789abcdef0123456789abcdef", 32, "{}", 2), 0);
    upd_sts_txn_abort(t);
    assert_int_equal(upd_sts_txn_begin(f->store, true, &t), 0);
    assert_int_equal(upd_sts_get(t, UPD_STS_DB_ENROL, "0123456789abcdef0123456789abcdef", 32, &b, &n), UPD_ENOTFOUND);
    assert_int_equal(upd_sts_del(t, UPD_STS_DB_ENROL, "0123456789abcdef0123456789abcdef", 32), UPD_ENOTFOUND);
    upd_sts_txn_abort(t);
}

static int
collect(const void *key, size_t key_len, const void *val, size_t val_len, void *arg)
{
    json_t *a = arg;
    json_array_append_new(a, json_stringn(key, key_len));
    return 0;
}

static void
each_walks_a_prefix_in_key_order(void **state)
{
    fixture_t *f = *state;
    upd_sts_txn_t *t;
    json_t *keys = json_array();
    assert_int_equal(upd_sts_txn_begin(f->store, true, &t), 0);
    const char *k[] = {"acme/bob", "*/alice", "acme/alice", "acmex/carol"};
    for (size_t i = 0; i != 4; ++i)
        assert_int_equal(upd_sts_put(t, UPD_STS_DB_GRANTS, k[i], strlen(k[i]), "{}", 2), 0);
    assert_int_equal(upd_sts_each(t, UPD_STS_DB_GRANTS, "acme/", 5, collect, keys), 0);
    assert_int_equal(json_array_size(keys), 2);
    assert_string_equal(json_string_value(json_array_get(keys, 0)), "acme/alice");
    assert_string_equal(json_string_value(json_array_get(keys, 1)), "acme/bob");
    json_array_clear(keys);
    assert_int_equal(upd_sts_each(t, UPD_STS_DB_GRANTS, NULL, 0, collect, keys), 0);
    assert_int_equal(json_array_size(keys), 4);
    assert_string_equal(json_string_value(json_array_get(keys, 0)), "*/alice");
    upd_sts_txn_abort(t);
    json_decref(keys);
}

static void
member_names(void **state)
{
    assert_true(upd_sts_member_name_valid("admin"));
    assert_true(upd_sts_member_name_valid("a.b_c-9"));
    assert_false(upd_sts_member_name_valid(""));
    assert_false(upd_sts_member_name_valid("-a"));
    assert_false(upd_sts_member_name_valid("Alice"));
    assert_false(upd_sts_member_name_valid("a/b"));
    char long_name[65];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    assert_false(upd_sts_member_name_valid(long_name));
    long_name[63] = '\0';
    assert_true(upd_sts_member_name_valid(long_name));
}

static void
audit_chain_links_and_detects_a_changed_record(void **state)
{
    fixture_t *f = *state;
    upd_sts_txn_t *t;
    uint64_t seq = 0, count, bad;
    assert_int_equal(upd_sts_txn_begin(f->store, true, &t), 0);
    for (int i = 0; i != 3; ++i) {
        json_t *r = json_pack("{s:s,s:s,s:s}", "action", "approve", "member", "alice", "outcome", i == 1 ? "refused" : "ok");
        assert_int_equal(upd_sts_audit_append(t, r, &seq), 0);
        assert_int_equal(seq, (uint64_t)i + 1);
        json_decref(r);
    }
    assert_int_equal(upd_sts_audit_verify(t, &count, &bad), 0);
    assert_int_equal(count, 3);

    /* rewrite record 2's outcome, keeping its hash: the chain says where */
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 2};
    json_t *r;
    assert_int_equal(upd_sts_get_json(t, UPD_STS_DB_AUDIT, key, 8, &r), 0);
    assert_string_equal(json_string_value(json_object_get(r, "outcome")), "refused");
    assert_non_null(json_string_value(json_object_get(r, "prev")));
    json_object_set_new(r, "outcome", json_string("ok"));
    assert_int_equal(upd_sts_put_json(t, UPD_STS_DB_AUDIT, key, 8, r), 0);
    json_decref(r);
    assert_int_equal(upd_sts_audit_verify(t, &count, &bad), UPD_EINTEGRITY);
    assert_int_equal(bad, 2);
    upd_sts_txn_abort(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_without_create_refuses_a_missing_environment),
        cmocka_unit_test_setup_teardown(json_values_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(an_aborted_write_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(each_walks_a_prefix_in_key_order, setup, teardown),
        cmocka_unit_test(member_names),
        cmocka_unit_test_setup_teardown(audit_chain_links_and_detects_a_changed_record, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
