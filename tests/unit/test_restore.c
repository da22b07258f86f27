/*
 * control/restore.c against real LMDB environments and in-memory object stores: a restored environment takes in the
 * release state published after its backup and the audit records exported after it, each store's trouble reported and
 * the other store used.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "control/audit.h"
#include "control/restore.h"
#include "domain/release.h"
#include "domain/state_doc.h"
#include "tests/unit/tmpdir.h"

/* ---- an object store in memory ---- */

#define OBJECTS_MAX 32

typedef struct {
    const char *name;
    bool down; /* every call fails */
    size_t n;
    char *key[OBJECTS_MAX];
    char *data[OBJECTS_MAX];
    size_t len[OBJECTS_MAX];
} mem_store_t;

static void
mem_put(mem_store_t *m, const char *key, const char *data, size_t len)
{
    for (size_t i = 0; i < m->n; ++i)
        if (strcmp(m->key[i], key) == 0) {
            free(m->data[i]);
            m->data[i] = malloc(len + 1);
            memcpy(m->data[i], data, len);
            m->len[i] = len;
            return;
        }
    assert_true(m->n < OBJECTS_MAX);
    m->key[m->n] = strdup(key);
    m->data[m->n] = malloc(len + 1);
    memcpy(m->data[m->n], data, len);
    m->len[m->n++] = len;
}

static void
mem_free(mem_store_t *m)
{
    for (size_t i = 0; i < m->n; ++i) {
        free(m->key[i]);
        free(m->data[i]);
    }
    m->n = 0;
}

static int
mem_get(void *ctx, const char *key, upd_restore_sink_cb sink, void *arg, char *msg, size_t cap)
{
    mem_store_t *m = ctx;
    if (m->down) {
        snprintf(msg, cap, "%s: connection refused", m->name);
        return UPD_EIO;
    }
    for (size_t i = 0; i < m->n; ++i)
        if (strcmp(m->key[i], key) == 0) {
            /* in pieces of 7 bytes: a reader must not count on whole lines */
            for (size_t off = 0; off < m->len[i]; off += 7)
                if (sink(m->data[i] + off, m->len[i] - off < 7 ? m->len[i] - off : 7, arg) != 0) {
                    snprintf(msg, cap, "aborted");
                    return UPD_EIO;
                }
            return 0;
        }
    snprintf(msg, cap, "%s: 404", key);
    return UPD_ENOTFOUND;
}

static int
mem_list(void *ctx, const char *prefix, int (*cb)(const char *key, uint64_t size, void *arg), void *arg, char *msg, size_t cap)
{
    mem_store_t *m = ctx;
    if (m->down) {
        snprintf(msg, cap, "%s: connection refused", m->name);
        return UPD_EIO;
    }
    for (size_t i = m->n; i-- > 0;) /* in reverse: the order is the reader's to make */
        if (strncmp(m->key[i], prefix, strlen(prefix)) == 0) {
            int r = cb(m->key[i], m->len[i], arg);
            if (r != 0)
                return r;
        }
    return 0;
}

/* ---- the fixture: the environment as it was lost (live), a backup of it taken earlier, and two stores ---- */

struct fixture {
    char dir[64];
    upd_store_t *live, *backup;
    mem_store_t r2, s3;
    upd_restore_source_t src[2];
};

static upd_store_txn_t *
write_begin(upd_store_t *s)
{
    upd_store_txn_t *txn;
    assert_int_equal(upd_store_write_begin(s, &txn), 0);
    return txn;
}

static upd_store_txn_t *
read_begin(upd_store_t *s)
{
    upd_store_txn_t *txn;
    assert_int_equal(upd_store_read_begin(s, &txn), 0);
    return txn;
}

/* A release of app with one Windows installer, offered on channel latest at generation gen. */
static void
put_release(upd_store_t *s, const char *app, const char *version, uint64_t gen, bool create_app)
{
    char name[64], json[64], b64[UPD_SHA512_B64_LEN + 1];
    unsigned char md[64];
    snprintf(name, sizeof(name), "%s-Setup-%s.exe", app, version);
    EVP_Digest(name, strlen(name), md, NULL, EVP_sha512(), NULL);
    EVP_EncodeBlock((unsigned char *)b64, md, 64);
    json_t *files =
        json_pack("[{s:s, s:s, s:s, s:i, s:s}]", "name", name, "platform", "windows", "arch", "x64", "size", 1000, "sha512", b64);
    json_t *body = json_pack("{s:s, s:s, s:o}", "version", version, "channel", "latest", "files", files);
    upd_release_t rel;
    char err[256];
    assert_int_equal(upd_release_from_request(app, body, 1700000000, &rel, err, sizeof(err)), 0);
    json_decref(body);
    upd_store_txn_t *txn = write_begin(s);
    if (create_app) {
        snprintf(json, sizeof(json), "{\"id\":\"%s\"}", app);
        assert_int_equal(upd_store_app_create(txn, app, json), 0);
    }
    assert_int_equal(upd_store_release_put(txn, &rel), 0);
    upd_channel_t ch = {.generation = gen};
    strcpy(ch.stable, version);
    assert_int_equal(upd_store_channel_put(txn, app, "latest", &ch), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    upd_release_dispose(&rel);
}

/* A refusal in the trail, as jobs.c records one. */
static void
refusal(upd_store_t *s, const char *app)
{
    upd_audit_ctx_t ctx = {0};
    snprintf(ctx.action, sizeof(ctx.action), "rollout.set");
    snprintf(ctx.app, sizeof(ctx.app), "%s", app);
    snprintf(ctx.request_id, sizeof(ctx.request_id), "req");
    assert_int_equal(upd_audit_record(s, &ctx, "denied", 403, "forbidden"), 0);
}

static uint64_t
head_of(upd_store_t *s, char hash[UPD_AUDIT_HASH_HEX + 1])
{
    upd_store_txn_t *txn = read_begin(s);
    uint64_t seq;
    char h[UPD_AUDIT_HASH_HEX + 1];
    assert_int_equal(upd_audit_head(txn, &seq, hash != NULL ? hash : h), 0);
    upd_store_txn_end(txn);
    return seq;
}

static uint64_t
generation_of(upd_store_t *s, const char *app)
{
    upd_store_txn_t *txn = read_begin(s);
    uint64_t gen = 0;
    const char *json;
    size_t len;
    if (upd_store_app_get(txn, app, &json, &len) == 0)
        assert_int_equal(upd_store_app_generation(txn, app, &gen), 0);
    upd_store_txn_end(txn);
    return gen;
}

static char *export(upd_store_t *s, const char *app, size_t *len, uint64_t *gen)
{
    upd_store_txn_t *txn = read_begin(s);
    char *doc;
    assert_int_equal(upd_store_app_export(txn, app, &doc, len, gen), 0);
    upd_store_txn_end(txn);
    return doc;
}

/* Copies the live environment's state of app and its audit records 1..head into the backup. */
static void
take_backup(struct fixture *f, const char *app)
{
    size_t len;
    uint64_t gen, got;
    char *doc = export(f->live, app, &len, &gen);
    upd_store_txn_t *from = read_begin(f->live), *to = write_begin(f->backup);
    assert_int_equal(upd_store_app_import(to, app, doc, len, &got, NULL), 0);
    uint64_t head;
    char hash[UPD_AUDIT_HASH_HEX + 1], val[96];
    assert_int_equal(upd_audit_head(from, &head, hash), 0);
    for (uint64_t seq = 1; seq <= head; ++seq) {
        const char *rec;
        size_t rlen;
        assert_int_equal(upd_store_audit_get(from, seq, &rec, &rlen), 0);
        assert_int_equal(upd_store_audit_put(to, seq, rec, rlen), 0);
    }
    int n = snprintf(val, sizeof(val), "%llu %s", (unsigned long long)head, hash);
    assert_int_equal(upd_store_meta_put(to, "audit_head", val, (size_t)n), 0);
    upd_store_txn_end(from);
    assert_int_equal(upd_store_commit(to), 0);
    free(doc);
}

/* Publishes the live environment's state of the apps to store m as control/propagate.c does. */
static void
publish(struct fixture *f, mem_store_t *m, const char *const *apps)
{
    upd_state_index_t ix;
    upd_state_index_init(&ix);
    for (size_t i = 0; apps[i] != NULL; ++i) {
        size_t len;
        uint64_t gen;
        char *doc = export(f->live, apps[i], &len, &gen), key[UPD_STATE_KEY_MAX];
        upd_state_doc_key(key, sizeof(key), apps[i], gen);
        mem_put(m, key, doc, len);
        upd_state_latest_key(key, sizeof(key), apps[i]);
        mem_put(m, key, doc, len);
        assert_int_equal(upd_state_index_set(&ix, apps[i], gen), 0);
        free(doc);
    }
    char *text;
    size_t len;
    assert_int_equal(upd_state_index_format(&ix, &text, &len), 0);
    mem_put(m, UPD_STATE_INDEX_KEY, text, len);
    free(text);
    upd_state_index_dispose(&ix);
}

/* Exports the live records first..last to store m as one segment, as control/audit_export.c does. */
static void
export_segment(struct fixture *f, mem_store_t *m, uint64_t first, uint64_t last)
{
    char *buf = malloc(1 << 20), key[UPD_AUDIT_SEGMENT_NAME_MAX + 1];
    size_t len = 0;
    upd_store_txn_t *txn = read_begin(f->live);
    for (uint64_t seq = first; seq <= last; ++seq) {
        const char *rec;
        size_t rlen;
        assert_int_equal(upd_store_audit_get(txn, seq, &rec, &rlen), 0);
        memcpy(buf + len, rec, rlen);
        len += rlen;
        buf[len++] = '\n';
    }
    upd_store_txn_end(txn);
    upd_audit_segment_name(first, last, key);
    mem_put(m, key, buf, len);
    free(buf);
}

static uint64_t
mark_of(upd_store_t *s, const char *name)
{
    upd_store_txn_t *txn = read_begin(s);
    const char *data;
    size_t len;
    char buf[32] = "";
    if (upd_store_meta_get(txn, name, &data, &len) == 0)
        memcpy(buf, data, len < sizeof(buf) - 1 ? len : sizeof(buf) - 1);
    upd_store_txn_end(txn);
    return strtoull(buf, NULL, 10);
}

/*
 * The story all tests share: acme at generation 1 and three refusals, backed up; then acme moves to 1.1.0 (generation
 * 2), beta appears, three more refusals, all of it published and exported to both stores.
 */
static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char path[128];
    if (f == NULL || tmpdir_make(f->dir, sizeof(f->dir), "restore") != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/live", f->dir);
    if (upd_store_open(path, NULL, &f->live) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/backup", f->dir);
    if (upd_store_open(path, NULL, &f->backup) != 0)
        return -1;
    f->r2.name = "r2";
    f->s3.name = "s3";
    f->src[0] = (upd_restore_source_t){.name = "r2", .get = mem_get, .list = mem_list, .ctx = &f->r2};
    f->src[1] = (upd_restore_source_t){.name = "s3", .get = mem_get, .list = mem_list, .ctx = &f->s3};

    put_release(f->live, "acme", "1.0.0", 1, true);
    for (int i = 0; i < 3; ++i)
        refusal(f->live, "acme");
    take_backup(f, "acme");
    export_segment(f, &f->r2, 1, 3);
    export_segment(f, &f->s3, 1, 3);

    put_release(f->live, "acme", "1.1.0", 2, false);
    put_release(f->live, "beta", "0.1.0", 1, true);
    for (int i = 0; i < 3; ++i)
        refusal(f->live, "beta");
    static const char *const apps[] = {"acme", "beta", NULL};
    publish(f, &f->r2, apps);
    publish(f, &f->s3, apps);
    export_segment(f, &f->r2, 4, 6);
    export_segment(f, &f->s3, 4, 5);
    export_segment(f, &f->s3, 6, 6);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    upd_store_close(f->live);
    upd_store_close(f->backup);
    mem_free(&f->r2);
    mem_free(&f->s3);
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static const upd_restore_opts_t opts = {.doc_max = 1 << 20};

/* Records first..last of a and b are the same bytes. */
static void
assert_same_records(upd_store_t *a, upd_store_t *b, uint64_t first, uint64_t last)
{
    upd_store_txn_t *ta = read_begin(a);
    upd_store_txn_t *tb;
    for (uint64_t seq = first; seq <= last; ++seq) {
        const char *ra, *rb;
        size_t la, lb;
        assert_int_equal(upd_store_audit_get(ta, seq, &ra, &la), 0);
        char *copy = malloc(la);
        memcpy(copy, ra, la);
        upd_store_txn_end(ta);
        tb = read_begin(b);
        assert_int_equal(upd_store_audit_get(tb, seq, &rb, &lb), 0);
        assert_int_equal(lb, la);
        assert_memory_equal(rb, copy, la);
        upd_store_txn_end(tb);
        free(copy);
        ta = read_begin(a);
    }
    upd_store_txn_end(ta);
}

/* ---- tests ---- */

static void
test_newer_published_state_and_exported_records_are_taken_in(void **state)
{
    struct fixture *f = *state;
    upd_restore_report_t rep;
    char live_hash[UPD_AUDIT_HASH_HEX + 1], hash[UPD_AUDIT_HASH_HEX + 1];
    assert_int_equal(head_of(f->backup, NULL), 3);
    assert_int_equal(upd_restore_roll_forward(f->backup, f->src, 2, &opts, NULL, &rep), 0);
    assert_int_equal(rep.apps_rolled, 2);
    assert_int_equal(rep.apps_refused, 0);
    assert_int_equal(generation_of(f->backup, "acme"), 2);
    assert_int_equal(generation_of(f->backup, "beta"), 1);
    /* the documents replayed exactly: the restored state exports the very bytes the live one does */
    size_t la, lb;
    uint64_t g;
    char *a = export(f->live, "acme", &la, &g), *b = export(f->backup, "acme", &lb, &g);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    assert_int_equal(head_of(f->backup, hash), head_of(f->live, live_hash));
    assert_string_equal(hash, live_hash);
    assert_int_equal(rep.audit_from, 3);
    assert_int_equal(rep.audit_to, 6);
    assert_same_records(f->live, f->backup, 1, 6);
    assert_int_equal(mark_of(f->backup, "audit_export_r2"), 6);
    assert_int_equal(mark_of(f->backup, "audit_export_s3"), 6);
    /* and the chain goes on from there */
    refusal(f->backup, "acme");
    assert_int_equal(head_of(f->backup, NULL), 7);
}

/* 1.1.0 was a draft when the backup was taken and published after it: rolled forward, it is a release and no draft */
static void
test_a_draft_published_after_the_backup_is_a_release_only(void **state)
{
    struct fixture *f = *state;
    upd_store_txn_t *txn = write_begin(f->backup);
    assert_int_equal(upd_store_draft_put(txn, "acme", "1.1.0", "{}"), 0);
    assert_int_equal(upd_store_draft_put(txn, "acme", "1.2.0", "{}"), 0); /* still a draft: stays */
    assert_int_equal(upd_store_commit(txn), 0);
    upd_restore_report_t rep;
    assert_int_equal(upd_restore_roll_forward(f->backup, f->src, 2, &opts, NULL, &rep), 0);
    txn = read_begin(f->backup);
    const char *json;
    size_t len;
    upd_release_t rel = {0};
    assert_int_equal(upd_store_release_get(txn, "acme", "1.1.0", &rel), 0);
    upd_release_dispose(&rel);
    assert_int_equal(upd_store_draft_get(txn, "acme", "1.1.0", &json, &len), UPD_ENOTFOUND);
    assert_int_equal(upd_store_draft_get(txn, "acme", "1.2.0", &json, &len), 0);
    upd_store_txn_end(txn);
}

static void
test_a_second_roll_forward_changes_nothing(void **state)
{
    struct fixture *f = *state;
    upd_restore_report_t rep;
    assert_int_equal(upd_restore_roll_forward(f->backup, f->src, 2, &opts, NULL, &rep), 0);
    assert_int_equal(upd_restore_roll_forward(f->backup, f->src, 2, &opts, NULL, &rep), 0);
    assert_int_equal(rep.apps_rolled, 0);
    assert_int_equal(rep.audit_to, 6);
    assert_int_equal(rep.audit_from, 6);
}

static void
test_a_refused_document_on_one_store_gives_way_to_the_others(void **state)
{
    struct fixture *f = *state;
    char key[UPD_STATE_KEY_MAX];
    upd_state_latest_key(key, sizeof(key), "acme");
    mem_put(&f->r2, key, "{\"format\":1,\"app\":\"acme\",\"generation\":2,\"records\":{}}", 52);
    upd_state_doc_key(key, sizeof(key), "acme", 2);
    mem_put(&f->r2, key, "not json", 8);
    upd_restore_report_t rep;
    assert_int_equal(upd_restore_roll_forward(f->backup, f->src, 2, &opts, NULL, &rep), 0);
    assert_int_equal(rep.apps_rolled, 2);
    assert_int_equal(generation_of(f->backup, "acme"), 2);
}

static void
test_an_app_refused_on_every_store_stays_as_backed_up_and_is_reported(void **state)
{
    struct fixture *f = *state;
    char key[UPD_STATE_KEY_MAX];
    mem_store_t *stores[] = {&f->r2, &f->s3};
    for (size_t i = 0; i < 2; ++i) {
        upd_state_latest_key(key, sizeof(key), "acme");
        mem_put(stores[i], key, "[]", 2);
        upd_state_doc_key(key, sizeof(key), "acme", 2);
        mem_put(stores[i], key, "[]", 2);
    }
    upd_restore_report_t rep;
    assert_int_equal(upd_restore_roll_forward(f->backup, f->src, 2, &opts, NULL, &rep), UPD_EINTEGRITY);
    assert_int_equal(rep.apps_refused, 1);
    assert_string_equal(rep.refused, "acme");
    assert_int_equal(generation_of(f->backup, "acme"), 1);
    assert_int_equal(generation_of(f->backup, "beta"), 1);
    assert_int_equal(rep.audit_to, 6); /* the rest is rolled forward all the same */
}

static void
test_audit_records_stop_at_one_that_does_not_chain_unless_another_store_has_it(void **state)
{
    struct fixture *f = *state;
    char key[UPD_AUDIT_SEGMENT_NAME_MAX + 1];
    upd_audit_segment_name(4, 6, key);
    for (size_t i = 0; i < f->r2.n; ++i)
        if (strcmp(f->r2.key[i], key) == 0) {
            /* record 5 rewritten to name another predecessor: a well-formed record that does not chain */
            char *second = (char *)memchr(f->r2.data[i], '\n', f->r2.len[i]) + 1, *o = strstr(second, "\"prev\":\"");
            assert_non_null(o);
            o[8] = o[8] == '0' ? '1' : '0';
        }
    /* with S3 down, the chain stops before record 5 */
    f->s3.down = true;
    upd_restore_report_t rep;
    assert_int_equal(upd_restore_roll_forward(f->backup, f->src, 2, &opts, NULL, &rep), UPD_EINTEGRITY);
    assert_true(rep.audit_broken);
    assert_int_equal(rep.audit_to, 4);
    assert_int_equal(rep.audit_held, 6);
    assert_int_equal(head_of(f->backup, NULL), 4);
    assert_int_equal(mark_of(f->backup, "audit_export_r2"), 4);
    assert_int_equal(rep.state_unread, 1);
    assert_int_equal(rep.audit_unread, 1);
    /* with S3 back, its copy carries on from there; R2's mark stays below its record that does not chain */
    f->s3.down = false;
    assert_int_equal(upd_restore_roll_forward(f->backup, f->src, 2, &opts, NULL, &rep), 0);
    assert_true(rep.audit_broken);
    assert_int_equal(rep.audit_to, 6);
    assert_same_records(f->live, f->backup, 1, 6);
    assert_int_equal(mark_of(f->backup, "audit_export_r2"), 4);
    assert_int_equal(mark_of(f->backup, "audit_export_s3"), 6);
}

static void
test_a_store_missing_segments_gets_a_mark_where_its_gap_begins(void **state)
{
    struct fixture *f = *state;
    char key[UPD_AUDIT_SEGMENT_NAME_MAX + 1];
    upd_audit_segment_name(4, 5, key);
    for (size_t i = 0; i < f->s3.n; ++i)
        if (strcmp(f->s3.key[i], key) == 0)
            strcpy(f->s3.key[i], "_updraft/audit/.tmp-x");
    upd_restore_report_t rep;
    assert_int_equal(upd_restore_roll_forward(f->backup, f->src, 2, &opts, NULL, &rep), 0);
    assert_int_equal(rep.audit_to, 6);
    assert_int_equal(mark_of(f->backup, "audit_export_r2"), 6);
    assert_int_equal(mark_of(f->backup, "audit_export_s3"), 3); /* the exporter sends it 4 to 6 again */
}

static void
test_no_store_answering_changes_nothing_and_says_so(void **state)
{
    struct fixture *f = *state;
    f->r2.down = f->s3.down = true;
    upd_restore_report_t rep;
    assert_int_equal(upd_restore_roll_forward(f->backup, f->src, 2, &opts, NULL, &rep), UPD_EIO);
    assert_int_equal(generation_of(f->backup, "acme"), 1);
    assert_int_equal(generation_of(f->backup, "beta"), 0);
    assert_int_equal(head_of(f->backup, NULL), 3);
}

static void
test_a_document_over_the_limit_is_not_read(void **state)
{
    struct fixture *f = *state;
    upd_restore_opts_t small = {.doc_max = 100}; /* the index fits; the documents do not */
    upd_restore_report_t rep;
    assert_int_equal(upd_restore_roll_forward(f->backup, f->src, 2, &small, NULL, &rep), UPD_EINTEGRITY);
    assert_int_equal(rep.apps_refused, 2);
    assert_string_equal(rep.refused, "acme, beta");
    assert_int_equal(generation_of(f->backup, "acme"), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_newer_published_state_and_exported_records_are_taken_in, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_second_roll_forward_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_draft_published_after_the_backup_is_a_release_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_document_on_one_store_gives_way_to_the_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_app_refused_on_every_store_stays_as_backed_up_and_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_records_stop_at_one_that_does_not_chain_unless_another_store_has_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_store_missing_segments_gets_a_mark_where_its_gap_begins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_store_answering_changes_nothing_and_says_so, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_document_over_the_limit_is_not_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
