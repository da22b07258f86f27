/*
 * control/publish.c and control/mirror.c against a real LMDB store and staging directory: each refusal is a UPD_E*
 * code with a reason, and server/http_error.h derives from them the status the control API has always answered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "control/publish.h"
#include "tests/unit/tmpdir.h"
#include "server/http_error.h"

struct fixture {
    char dir[64];
    upd_conf_t conf;
    upd_control_t c;
    upd_audit_ctx_t audit;
};


static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char path[128];
    if (f == NULL)
        return -1;
    if (tmpdir_make(f->dir, sizeof(f->dir), "publish") != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/storage", f->dir);
    if (mkdir(path, 0700) != 0 || (f->c.storage_fd = open(path, O_RDONLY | O_DIRECTORY)) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/data", f->dir);
    if (mkdir(path, 0700) != 0 || upd_store_open(path, NULL, &f->c.store) != 0)
        return -1;
    f->conf.public_url = "http://127.0.0.1:8080";
    f->conf.block_size = 1048576;
    f->c.conf = &f->conf;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    upd_audit_ctx_dispose(&f->audit);
    upd_store_close(f->c.store);
    close(f->c.storage_fd);
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
app_create(struct fixture *f, const char *id)
{
    char text[128];
    snprintf(text, sizeof(text), "{\"id\":\"%s\"}", id);
    json_t *body = parse(text), *out = NULL;
    upd_reason_t r = {"", ""};
    assert_int_equal(upd_publish_app_create(&f->c, &f->audit, body, &out, &r), 0);
    assert_string_equal(json_string_value(json_object_get(out, "id")), id);
    json_decref(out);
    json_decref(body);
}

/* Stages STORAGE/APP/VERSION/NAME and returns its files[] entry (sha512 as electron-builder writes it). */
static json_t *
stage(struct fixture *f, const char *app, const char *version, const char *name, const char *bytes)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/storage/%s", f->dir, app);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/storage/%s/%s", f->dir, app, version);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/storage/%s/%s/%s", f->dir, app, version, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(bytes, fp);
    fclose(fp);
    unsigned char md[64];
    unsigned int len;
    char b64[100];
    EVP_Digest(bytes, strlen(bytes), md, &len, EVP_sha512(), NULL);
    EVP_EncodeBlock((unsigned char *)b64, md, 64);
    return json_pack("{s:s, s:I, s:s, s:s, s:s}", "name", name, "size", (json_int_t)strlen(bytes), "sha512", b64, "platform",
                     "windows", "arch", "x64");
}

static int
release(struct fixture *f, const char *app, const char *version, json_t *file, upd_reason_t *r)
{
    json_t *body = json_pack("{s:s, s:s, s:[o]}", "version", version, "channel", "latest", "files", file), *out = NULL;
    int err = upd_publish_release(&f->c, &f->audit, app, body, &out, r);
    if (err == 0)
        assert_non_null(json_object_get(out, "release"));
    else
        assert_null(out);
    json_decref(out);
    json_decref(body);
    return err;
}

/* The refusal as the API answers it. */
static void
assert_answer(int err, const upd_reason_t *r, int status, const char *code)
{
    upd_http_error_t e = upd_http_error_of(err, r);
    assert_int_equal(e.status, status);
    assert_string_equal(e.code, code);
    assert_true(e.message[0] != '\0');
}

/* ---- apps ---- */

static void
test_an_app_is_created_once(void **state)
{
    struct fixture *f = *state;
    app_create(f, "demo");
    json_t *body = parse("{\"id\":\"demo\"}"), *out = NULL;
    upd_reason_t r = {"", ""};
    int err = upd_publish_app_create(&f->c, &f->audit, body, &out, &r);
    assert_int_equal(err, UPD_EEXIST);
    assert_null(out);
    assert_answer(err, &r, 409, "exists");
    assert_string_equal(r.message, "app demo already exists");
    json_decref(body);
}

static void
test_a_malformed_app_id_is_invalid(void **state)
{
    struct fixture *f = *state;
    json_t *body = parse("{\"id\":\"Not An Id\"}"), *out = NULL;
    upd_reason_t r = {"", ""};
    int err = upd_publish_app_create(&f->c, &f->audit, body, &out, &r);
    assert_int_equal(err, UPD_EINVAL);
    assert_answer(err, &r, 400, "invalid");
    json_decref(body);
}

/* ---- releases ---- */

static void
test_a_release_of_an_unknown_app_is_not_found(void **state)
{
    struct fixture *f = *state;
    upd_reason_t r = {"", ""};
    int err = release(f, "nobody", "1.0.0", stage(f, "nobody", "1.0.0", "A.exe", "bytes"), &r);
    assert_int_equal(err, UPD_ENOTFOUND);
    assert_answer(err, &r, 404, "not_found");
    assert_string_equal(r.message, "unknown app");
}

static void
test_a_release_without_its_file_is_refused_as_file_missing(void **state)
{
    struct fixture *f = *state;
    app_create(f, "demo");
    json_t *file = stage(f, "demo", "0.0.1", "A.exe", "bytes"); /* staged under another version */
    upd_reason_t r = {"", ""};
    int err = release(f, "demo", "1.0.0", file, &r);
    assert_int_equal(err, UPD_EMISMATCH);
    assert_answer(err, &r, 422, "file_missing");
}

static void
test_a_staged_file_of_another_size_is_a_size_mismatch(void **state)
{
    struct fixture *f = *state;
    app_create(f, "demo");
    json_t *file = stage(f, "demo", "1.0.0", "A.exe", "bytes");
    json_object_set_new(file, "size", json_integer(6));
    upd_reason_t r = {"", ""};
    int err = release(f, "demo", "1.0.0", file, &r);
    assert_int_equal(err, UPD_EMISMATCH);
    assert_answer(err, &r, 422, "size_mismatch");
}

static void
test_a_staged_file_of_other_bytes_is_a_checksum_mismatch(void **state)
{
    struct fixture *f = *state;
    app_create(f, "demo");
    json_t *declared = stage(f, "demo", "1.0.0", "A.exe", "right");
    json_decref(stage(f, "demo", "1.0.0", "A.exe", "wrong"));
    upd_reason_t r = {"", ""};
    int err = release(f, "demo", "1.0.0", declared, &r);
    assert_int_equal(err, UPD_EMISMATCH);
    assert_answer(err, &r, 422, "checksum_mismatch");
}

static void
test_a_release_registers_once_and_only_newer_versions_follow(void **state)
{
    struct fixture *f = *state;
    app_create(f, "demo");
    upd_reason_t r = {"", ""};
    assert_int_equal(release(f, "demo", "1.1.0", stage(f, "demo", "1.1.0", "A.exe", "one"), &r), 0);
    int err = release(f, "demo", "1.1.0", stage(f, "demo", "1.1.0", "A.exe", "one"), &r);
    assert_int_equal(err, UPD_ECONFLICT);
    assert_answer(err, &r, 409, "not_newer");
    err = release(f, "demo", "1.0.0", stage(f, "demo", "1.0.0", "A.exe", "zero"), &r);
    assert_answer(err, &r, 409, "not_newer");
}

/* ---- rollouts, channels, pulls ---- */

static void
test_a_rollout_of_an_unknown_channel_is_not_found(void **state)
{
    struct fixture *f = *state;
    app_create(f, "demo");
    json_t *body = parse("{\"percent\":10}"), *out = NULL;
    upd_reason_t r = {"", ""};
    int err = upd_publish_rollout(&f->c, &f->audit, "demo", "latest", body, &out, &r);
    assert_int_equal(err, UPD_ENOTFOUND);
    assert_answer(err, &r, 404, "not_found");
    json_decref(body);
}

static void
test_a_percentage_without_a_rollout_is_a_conflict(void **state)
{
    struct fixture *f = *state;
    app_create(f, "demo");
    upd_reason_t r = {"", ""};
    assert_int_equal(release(f, "demo", "1.0.0", stage(f, "demo", "1.0.0", "A.exe", "one"), &r), 0);
    json_t *body = parse("{\"percent\":10}"), *out = NULL;
    int err = upd_publish_rollout(&f->c, &f->audit, "demo", "latest", body, &out, &r);
    assert_int_equal(err, UPD_ECONFLICT);
    assert_answer(err, &r, 409, "no_rollout");
    json_decref(body);
    body = parse("{\"speed\":1}");
    err = upd_publish_rollout(&f->c, &f->audit, "demo", "latest", body, &out, &r);
    assert_answer(err, &r, 400, "invalid");
    json_decref(body);
}

static void
test_a_channel_is_shown_once_it_exists(void **state)
{
    struct fixture *f = *state;
    app_create(f, "demo");
    json_t *out = NULL;
    upd_reason_t r = {"", ""};
    int err = upd_publish_channel_show(&f->c, "demo", "latest", &out, &r);
    assert_int_equal(err, UPD_ENOTFOUND);
    assert_null(out);
    assert_int_equal(release(f, "demo", "1.0.0", stage(f, "demo", "1.0.0", "A.exe", "one"), &r), 0);
    assert_int_equal(upd_publish_channel_show(&f->c, "demo", "latest", &out, &r), 0);
    assert_string_equal(json_string_value(json_object_get(out, "stable")), "1.0.0");
    json_decref(out);
}

static void
test_a_release_is_pulled_once(void **state)
{
    struct fixture *f = *state;
    app_create(f, "demo");
    upd_reason_t r = {"", ""};
    assert_int_equal(release(f, "demo", "1.0.0", stage(f, "demo", "1.0.0", "A.exe", "one"), &r), 0);
    json_t *out = NULL;
    assert_int_equal(upd_publish_pull(&f->c, &f->audit, "demo", "1.0.0", NULL, &out, &r), 0);
    assert_true(json_is_null(json_object_get(out, "stable")));
    json_decref(out);
    int err = upd_publish_pull(&f->c, &f->audit, "demo", "1.0.0", NULL, &out, &r);
    assert_int_equal(err, UPD_ECONFLICT);
    assert_answer(err, &r, 409, "pulled");
    err = upd_publish_pull(&f->c, &f->audit, "demo", "2.0.0", NULL, &out, &r);
    assert_int_equal(err, UPD_ENOTFOUND);
    assert_string_equal(r.message, "demo has no release 2.0.0");
}

/* Counts the records in the audit sub-database and checks the chain from the first. */
static uint64_t
audit_records(struct fixture *f)
{
    upd_store_txn_t *txn;
    assert_int_equal(upd_store_read_begin(f->c.store, &txn), 0);
    char prev[UPD_AUDIT_HASH_HEX + 1], head[UPD_AUDIT_HASH_HEX + 1];
    memcpy(prev, upd_audit_genesis, sizeof(prev));
    uint64_t n = 0, head_seq;
    const char *rec;
    size_t len;
    while (upd_store_audit_get(txn, n + 1, &rec, &len) == 0) {
        upd_reason_t why = {"", ""};
        assert_int_equal(upd_audit_check(rec, len, n + 1, prev, &why), 0);
        assert_true(upd_audit_hash(rec, len, prev));
        ++n;
    }
    assert_int_equal(upd_audit_head(txn, &head_seq, head), 0);
    assert_int_equal(head_seq, n);
    assert_string_equal(head, prev);
    upd_store_txn_end(txn);
    return n;
}

static void
test_every_committed_change_has_its_audit_record_and_a_refused_one_none(void **state)
{
    struct fixture *f = *state;
    snprintf(f->audit.action, sizeof(f->audit.action), "app.create");
    app_create(f, "demo");
    assert_int_equal(audit_records(f), 1);
    /* refused: exists; nothing changed, nothing recorded here (the caller records the failure) */
    json_t *body = parse("{\"id\":\"demo\"}"), *out = NULL;
    upd_reason_t r = {"", ""};
    assert_int_equal(upd_publish_app_create(&f->c, &f->audit, body, &out, &r), UPD_EEXIST);
    json_decref(body);
    assert_int_equal(audit_records(f), 1);

    upd_store_txn_t *txn;
    assert_int_equal(upd_store_read_begin(f->c.store, &txn), 0);
    const char *rec;
    size_t len;
    assert_int_equal(upd_store_audit_get(txn, 1, &rec, &len), 0);
    json_t *j = json_loadb(rec, len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "action")), "app.create");
    assert_string_equal(json_string_value(json_object_get(j, "outcome")), "ok");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "target"), "app")), "demo");
    json_decref(j);
    upd_store_txn_end(txn);
    upd_audit_ctx_dispose(&f->audit);
}

/* ---- drafts ---- */

static int
draft(struct fixture *f, const char *app, const char *version, json_t *file, json_t **out, upd_reason_t *r)
{
    json_t *body = json_pack("{s:s, s:[o]}", "version", version, "files", file);
    int err = upd_publish_release(&f->c, &f->audit, app, body, out, r);
    json_decref(body);
    return err;
}

static int
publish(struct fixture *f, const char *app, const char *version, const char *body_text, json_t **out, upd_reason_t *r)
{
    json_t *body = parse(body_text);
    int err = upd_publish_draft(&f->c, &f->audit, app, version, body, out, r);
    json_decref(body);
    return err;
}

static bool
has_draft(struct fixture *f, const char *app, const char *version)
{
    upd_store_txn_t *txn;
    const char *json;
    size_t len;
    assert_int_equal(upd_store_read_begin(f->c.store, &txn), 0);
    bool found = upd_store_draft_get(txn, app, version, &json, &len) == 0;
    upd_store_txn_end(txn);
    return found;
}

static bool
has_release(struct fixture *f, const char *app, const char *version)
{
    upd_store_txn_t *txn;
    upd_release_t rel = {0};
    assert_int_equal(upd_store_read_begin(f->c.store, &txn), 0);
    bool found = upd_store_release_get(txn, app, version, &rel) == 0;
    upd_store_txn_end(txn);
    upd_release_dispose(&rel);
    return found;
}

static void
test_a_release_without_a_channel_is_a_draft_offered_to_nobody_until_published(void **state)
{
    struct fixture *f = *state;
    upd_reason_t r = {"", ""};
    json_t *out = NULL;
    app_create(f, "demo");
    assert_int_equal(draft(f, "demo", "1.0.0", stage(f, "demo", "1.0.0", "A.exe", "bytes"), &out, &r), 0);
    json_t *rel = json_object_get(out, "release");
    assert_true(json_is_true(json_object_get(rel, "draft")));
    assert_true(json_is_null(json_object_get(rel, "channel")));
    assert_non_null(json_object_get(out, "backends"));
    assert_null(json_object_get(out, "channel"));
    assert_string_equal(f->audit.action, "release.draft");
    json_decref(out);
    assert_true(has_draft(f, "demo", "1.0.0"));
    assert_false(has_release(f, "demo", "1.0.0"));
    upd_store_txn_t *txn;
    upd_channel_t ch;
    assert_int_equal(upd_store_read_begin(f->c.store, &txn), 0);
    assert_int_equal(upd_store_channel_get(txn, "demo", "latest", &ch), UPD_ENOTFOUND);
    upd_store_txn_end(txn);

    /* the version is taken, as a draft or as a release */
    int err = draft(f, "demo", "1.0.0", stage(f, "demo", "1.0.0", "A.exe", "bytes"), &out, &r);
    assert_answer(err, &r, 409, "exists");
    err = release(f, "demo", "1.0.0", stage(f, "demo", "1.0.0", "A.exe", "bytes"), &r);
    assert_answer(err, &r, 409, "exists");

    assert_int_equal(upd_publish_release_list(&f->c, "demo", &out, &r), 0);
    assert_int_equal(json_array_size(json_object_get(out, "releases")), 0);
    assert_int_equal(json_array_size(json_object_get(out, "drafts")), 1);
    json_decref(out);

    snprintf(f->audit.action, sizeof(f->audit.action), "release.publish");
    assert_int_equal(publish(f, "demo", "1.0.0", "{\"channel\":\"latest\",\"rollout\":{\"percent\":25}}", &out, &r), 0);
    assert_true(json_is_false(json_object_get(json_object_get(out, "release"), "draft")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "release"), "channel")), "latest");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(out, "channel"), "rollout"), "version")),
                        "1.0.0");
    json_decref(out);
    assert_false(has_draft(f, "demo", "1.0.0"));
    assert_true(has_release(f, "demo", "1.0.0"));
    assert_int_equal(upd_publish_release_show(&f->c, "demo", "1.0.0", &out, &r), 0);
    assert_true(json_is_false(json_object_get(out, "draft")));
    json_decref(out);

    err = publish(f, "demo", "1.0.0", "{\"channel\":\"latest\"}", &out, &r);
    assert_answer(err, &r, 409, "exists");
    err = publish(f, "demo", "9.9.9", "{\"channel\":\"latest\"}", &out, &r);
    assert_answer(err, &r, 404, "not_found");
    err = upd_publish_release_show(&f->c, "demo", "9.9.9", &out, &r);
    assert_answer(err, &r, 404, "not_found");
    upd_audit_ctx_dispose(&f->audit);
}

static void
test_a_draft_older_than_its_channels_newest_is_not_newer_and_stays_a_draft(void **state)
{
    struct fixture *f = *state;
    upd_reason_t r = {"", ""};
    json_t *out = NULL;
    app_create(f, "demo");
    assert_int_equal(draft(f, "demo", "1.5.0", stage(f, "demo", "1.5.0", "A.exe", "older"), &out, &r), 0);
    json_decref(out);
    assert_int_equal(release(f, "demo", "2.0.0", stage(f, "demo", "2.0.0", "A.exe", "newer"), &r), 0);
    int err = publish(f, "demo", "1.5.0", "{\"channel\":\"latest\"}", &out, &r);
    assert_answer(err, &r, 409, "not_newer");
    assert_true(has_draft(f, "demo", "1.5.0"));
    assert_false(has_release(f, "demo", "1.5.0"));
    /* another channel takes it */
    assert_int_equal(publish(f, "demo", "1.5.0", "{\"channel\":\"lts\"}", &out, &r), 0);
    json_decref(out);
    assert_false(has_draft(f, "demo", "1.5.0"));
    upd_audit_ctx_dispose(&f->audit);
}

static void
test_a_draft_has_no_rollout_and_publishing_needs_a_channel(void **state)
{
    struct fixture *f = *state;
    upd_reason_t r = {"", ""};
    json_t *out = NULL;
    app_create(f, "demo");
    json_t *file = stage(f, "demo", "1.0.0", "A.exe", "b");
    json_t *body = json_pack("{s:s, s:[o], s:{s:i}}", "version", "1.0.0", "files", file, "rollout", "percent", 10);
    int err = upd_publish_release(&f->c, &f->audit, "demo", body, &out, &r);
    json_decref(body);
    assert_answer(err, &r, 400, "invalid");
    assert_false(has_draft(f, "demo", "1.0.0"));
    assert_int_equal(draft(f, "demo", "1.0.0", stage(f, "demo", "1.0.0", "A.exe", "b"), &out, &r), 0);
    json_decref(out);
    const char *bad[] = {"{}", "{\"channel\":\"Bad\"}", "{\"channel\":\"latest\",\"rollout\":{\"percent\":101}}",
                         "{\"channel\":\"latest\",\"extra\":1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        err = publish(f, "demo", "1.0.0", bad[i], &out, &r);
        assert_answer(err, &r, 400, "invalid");
    }
    assert_true(has_draft(f, "demo", "1.0.0"));
    upd_audit_ctx_dispose(&f->audit);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_an_app_is_created_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_malformed_app_id_is_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_release_of_an_unknown_app_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_release_without_its_file_is_refused_as_file_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_staged_file_of_another_size_is_a_size_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_staged_file_of_other_bytes_is_a_checksum_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_release_registers_once_and_only_newer_versions_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_rollout_of_an_unknown_channel_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_percentage_without_a_rollout_is_a_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_channel_is_shown_once_it_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_release_is_pulled_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_committed_change_has_its_audit_record_and_a_refused_one_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_release_without_a_channel_is_a_draft_offered_to_nobody_until_published, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_draft_older_than_its_channels_newest_is_not_newer_and_stays_a_draft, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_draft_has_no_rollout_and_publishing_needs_a_channel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
