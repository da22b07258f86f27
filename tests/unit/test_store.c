#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/err.h"
#include "tests/unit/tmpdir.h"
#include "domain/release.h"
#include "storage/store.h"

/* ---- counting allocations (not under ASan, which owns malloc itself) ---- */

#ifndef __SANITIZE_ADDRESS__
#define COUNT_ALLOCATIONS 1
/* glibc's own entry points, so that the counting wrappers below stay on the one allocator free() knows */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
static __thread int allocations = -1; /* -1: not counting on this thread */

void *
malloc(size_t size)
{
    if (allocations >= 0)
        ++allocations;
    return __libc_malloc(size);
}

void *
calloc(size_t n, size_t size)
{
    if (allocations >= 0)
        ++allocations;
    return __libc_calloc(n, size);
}

void *
realloc(void *p, size_t size)
{
    if (allocations >= 0)
        ++allocations;
    return __libc_realloc(p, size);
}
#endif

/* ---- fixture ---- */

struct fixture {
    char dir[64];
    upd_store_t *store;
};


static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (tmpdir_make(f->dir, sizeof(f->dir), "store") != 0)
        return -1;
    if (upd_store_open(f->dir, NULL, &f->store) != 0)
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

static upd_store_txn_t *
write_begin(upd_store_t *store)
{
    upd_store_txn_t *txn;
    assert_int_equal(upd_store_write_begin(store, &txn), 0);
    return txn;
}

static upd_store_txn_t *
read_begin(upd_store_t *store)
{
    upd_store_txn_t *txn;
    assert_int_equal(upd_store_read_begin(store, &txn), 0);
    return txn;
}

static void
digest(const char *bytes, unsigned char raw[64], char b64[UPD_SHA512_B64_LEN + 1])
{
    unsigned char d[64];
    unsigned int len;
    EVP_Digest(bytes, strlen(bytes), d, &len, EVP_sha512(), NULL);
    if (raw != NULL)
        memcpy(raw, d, 64);
    if (b64 != NULL)
        EVP_EncodeBlock((unsigned char *)b64, d, 64);
}

/* A release built the way the control plane builds one: from a request body. names are the files, NULL-terminated. */
static void
make_release(upd_release_t *rel, const char *version, const char *channel, const char *const *names)
{
    json_t *files = json_array();
    for (size_t i = 0; names[i] != NULL; ++i) {
        char b64[UPD_SHA512_B64_LEN + 1];
        digest(names[i], NULL, b64); /* the file's "bytes" are its name */
        const char *platform = upd_kind_from_name(names[i]) == UPD_KIND_DMG || upd_kind_from_name(names[i]) == UPD_KIND_ZIP ? "mac"
                               : upd_kind_from_name(names[i]) == UPD_KIND_APPIMAGE                                          ? "linux"
                                                                                                                           : "windows";
        json_array_append_new(files, json_pack("{s:s, s:s, s:s, s:I, s:s}", "name", names[i], "platform", platform, "arch", "x64",
                                               "size", (json_int_t)(1000 + strlen(names[i])), "sha512", b64));
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:o}", "version", version, "channel", channel, "notes", "Notes", "files", files);
    char err[256];
    if (upd_release_from_request("acme", body, 1700000000, rel, err, sizeof(err)) != 0)
        fail_msg("make_release: %s", err);
    json_decref(body);
}

static void
put_channel(upd_store_t *store, const char *app, const char *channel, uint64_t generation, const char *stable)
{
    upd_channel_t ch = {.generation = generation};
    strcpy(ch.stable, stable);
    upd_store_txn_t *txn = write_begin(store);
    assert_int_equal(upd_store_channel_put(txn, app, channel, &ch), 0);
    assert_int_equal(upd_store_commit(txn), 0);
}

static uint64_t
read_generation(upd_store_t *store, const char *app, const char *channel)
{
    upd_store_txn_t *txn = read_begin(store);
    upd_channel_t ch;
    uint64_t g = upd_store_channel_get(txn, app, channel, &ch) == 0 ? ch.generation : 0;
    upd_store_txn_end(txn);
    return g;
}

/* ---- opening ---- */

static void
test_open_creates_a_private_environment_with_this_builds_schema(void **state)
{
    struct fixture *f = *state;
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/lmdb", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/lmdb/data.mdb", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(upd_store_schema_found(f->store), UPD_STORE_SCHEMA);

    /* reopening finds what the first open wrote */
    upd_store_close(f->store);
    assert_int_equal(upd_store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(upd_store_schema_found(f->store), UPD_STORE_SCHEMA);
}

static void
test_open_creates_missing_parent_directories(void **state)
{
    struct fixture *f = *state;
    char dir[128];
    upd_store_t *store;
    snprintf(dir, sizeof(dir), "%s/a/b/c", f->dir);
    assert_int_equal(upd_store_open(dir, NULL, &store), 0);
    upd_store_close(store);
}

/* Opens DIR/lmdb with plain liblmdb and begins a transaction, as another build's program would (flags: 0 or
 * MDB_RDONLY, for both). */
static MDB_txn *
raw_begin(const char *dir, unsigned flags, MDB_env **env)
{
    char path[128];
    MDB_txn *txn;
    snprintf(path, sizeof(path), "%s/lmdb", dir);
    assert_int_equal(mdb_env_create(env), 0);
    assert_int_equal(mdb_env_set_maxdbs(*env, 16), 0);
    assert_int_equal(mdb_env_open(*env, path, flags, 0600), 0);
    assert_int_equal(mdb_txn_begin(*env, NULL, flags, &txn), 0);
    return txn;
}

/* Writes meta/schema in a raw transaction. */
static void
raw_put_schema(MDB_txn *txn, uint32_t schema)
{
    MDB_dbi dbi;
    uint8_t le[4] = {(uint8_t)schema, (uint8_t)(schema >> 8), (uint8_t)(schema >> 16), (uint8_t)(schema >> 24)};
    MDB_val key = {6, "schema"}, val = {4, le};
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
}

/* Rewrites meta/schema with plain liblmdb, as a build with another schema would have left it. */
static void
write_raw_schema(const char *dir, uint32_t schema)
{
    MDB_env *env;
    MDB_txn *txn = raw_begin(dir, 0, &env);
    raw_put_schema(txn, schema);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
test_open_refuses_another_schema_and_reports_the_one_found(void **state)
{
    struct fixture *f = *state;
    upd_store_close(f->store);
    f->store = NULL;
    write_raw_schema(f->dir, 7);

    upd_store_t *store;
    assert_int_equal(upd_store_open(f->dir, NULL, &store), UPD_ESCHEMA);
    assert_non_null(store);
    assert_int_equal(upd_store_schema_found(store), 7);
    upd_store_close(store);
    upd_store_opts_t ro = {.read_only = true};
    assert_int_equal(upd_store_open(f->dir, &ro, &store), UPD_ESCHEMA);
    assert_int_equal(upd_store_schema_found(store), 7);
    upd_store_close(store);

    /* the refused open changed nothing: putting the schema back makes the environment usable again */
    write_raw_schema(f->dir, UPD_STORE_SCHEMA);
    assert_int_equal(upd_store_open(f->dir, NULL, &f->store), 0);
}

/* A schema 4 environment: no members, drafts or audit sub-databases. */
static void
test_a_schema_4_store_gains_the_control_planes_records_when_opened_for_writing(void **state)
{
    struct fixture *f = *state;
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_key_put(txn, "00000000000000aa", "{\"role\":\"admin\"}"), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    upd_store_close(f->store);
    f->store = NULL;
    MDB_env *env;
    MDB_txn *raw = raw_begin(f->dir, 0, &env);
    const char *added[] = {"members", "drafts", "audit"};
    for (size_t i = 0; i < 3; ++i) {
        MDB_dbi dbi;
        assert_int_equal(mdb_dbi_open(raw, added[i], 0, &dbi), 0);
        assert_int_equal(mdb_drop(raw, dbi, 1), 0);
    }
    raw_put_schema(raw, 4);
    assert_int_equal(mdb_txn_commit(raw), 0);
    mdb_env_close(env);

    /* a reader cannot migrate: it refuses, naming schema 4 */
    upd_store_t *store;
    upd_store_opts_t ro = {.read_only = true};
    assert_int_equal(upd_store_open(f->dir, &ro, &store), UPD_ESCHEMA);
    assert_int_equal(upd_store_schema_found(store), 4);
    upd_store_close(store);
    /* the writer migrates: the old key is still there, the new sub-databases exist and are empty */
    assert_int_equal(upd_store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(upd_store_schema_found(f->store), UPD_STORE_SCHEMA);
    txn = read_begin(f->store);
    const char *json;
    size_t len;
    uint64_t seq;
    assert_int_equal(upd_store_key_get(txn, "00000000000000aa", &json, &len), 0);
    assert_int_equal(upd_store_audit_last(txn, &seq, &json, &len), UPD_ENOTFOUND);
    assert_int_equal(upd_store_member_get(txn, "alice", &json, &len), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
}

static void
test_a_compact_copy_opens_as_a_store_with_the_same_records(void **state)
{
    struct fixture *f = *state;
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_key_put(txn, "00000000000000aa", "{\"role\":\"admin\"}"), 0);
    assert_int_equal(upd_store_audit_put(txn, 1, "r1", 2), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    char dir[160], file[200];
    snprintf(dir, sizeof(dir), "%s/copy", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(file, sizeof(file), "%s/lmdb", dir);
    assert_int_equal(mkdir(file, 0700), 0);
    snprintf(file, sizeof(file), "%s/lmdb/data.mdb", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(upd_store_copy_compact(f->store, fd), 0);
    close(fd);
    upd_store_t *copy;
    upd_store_opts_t ro = {.read_only = true};
    assert_int_equal(upd_store_open(dir, &ro, &copy), 0);
    upd_store_txn_t *ctx;
    const char *json;
    size_t len;
    assert_int_equal(upd_store_read_begin(copy, &ctx), 0);
    assert_int_equal(upd_store_key_get(ctx, "00000000000000aa", &json, &len), 0);
    assert_int_equal(upd_store_audit_get(ctx, 1, &json, &len), 0);
    assert_memory_equal(json, "r1", 2);
    upd_store_txn_end(ctx);
    upd_store_close(copy);
}

static void
test_read_only_open_creates_nothing_but_can_record_clients(void **state)
{
    struct fixture *f = *state;
    char missing[128];
    upd_store_t *store = (upd_store_t *)1;
    upd_store_opts_t ro = {.read_only = true};
    snprintf(missing, sizeof(missing), "%s/missing", f->dir);
    assert_int_equal(upd_store_open(missing, &ro, &store), UPD_ENOTFOUND);
    assert_null(store);
    assert_int_equal(access(missing, F_OK), -1);
    /* a directory that exists but holds no environment stays empty */
    char empty[160];
    snprintf(empty, sizeof(empty), "%s/lmdb", missing);
    assert_int_equal(mkdir(missing, 0700), 0);
    assert_int_equal(mkdir(empty, 0700), 0);
    assert_int_equal(upd_store_open(missing, &ro, &store), UPD_ENOTFOUND);
    strcat(empty, "/data.mdb");
    assert_int_equal(access(empty, F_OK), -1);

    put_channel(f->store, "acme", "latest", 3, "1.0.0");
    assert_int_equal(upd_store_open(f->dir, &ro, &store), 0);
    assert_int_equal(read_generation(store, "acme", "latest"), 3);
    upd_hll_t one;
    upd_hll_init(&one);
    assert_int_equal(upd_hll_add(&one, upd_hll_hash("c1", 2)), 0);
    upd_offered_t offered = {"acme", "latest", "1.0.0", &one};
    assert_int_equal(upd_store_offered_merge(store, &offered, 1), 0);
    upd_hll_dispose(&one);
    upd_store_close(store);

    uint64_t count;
    upd_store_txn_t *txn = read_begin(f->store);
    assert_int_equal(upd_store_clients_count(txn, "acme", "latest", "1.0.0", &count), 0);
    assert_int_equal(count, 1);
    upd_store_txn_end(txn);
}

/* ---- channels and pins ---- */

static void
test_channel_round_trip_keeps_generation_versions_rollout_and_countries(void **state)
{
    struct fixture *f = *state;
    upd_channel_t ch = {.generation = 0x0123456789abcdefULL,
                        .rollout = {.seed = 0xfedcba9876543210ULL, .percent_bp = 2550, .paused = true, .countries = "DEFRUS", .ncountries = 3}};
    strcpy(ch.stable, "1.2.0");
    strcpy(ch.rollout_version, "1.3.0-beta.2+build.64");
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_channel_put(txn, "acme", "beta", &ch), 0);
    assert_int_equal(upd_store_commit(txn), 0);

    upd_channel_t got;
    memset(&got, 0x5a, sizeof(got));
    txn = read_begin(f->store);
    assert_int_equal(upd_store_channel_get(txn, "acme", "beta", &got), 0);
    assert_int_equal(got.generation, 0x0123456789abcdefULL);
    assert_string_equal(got.stable, "1.2.0");
    assert_string_equal(got.rollout_version, "1.3.0-beta.2+build.64");
    assert_int_equal(got.rollout.seed, 0xfedcba9876543210ULL);
    assert_int_equal(got.rollout.percent_bp, 2550);
    assert_true(got.rollout.paused);
    assert_int_equal(got.rollout.ncountries, 3);
    assert_memory_equal(got.rollout.countries, "DEFRUS", 6);
    assert_int_equal(upd_store_channel_get(txn, "acme", "alpha", &got), UPD_ENOTFOUND);
    assert_int_equal(upd_store_channel_get(txn, "other", "beta", &got), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
}

static void
test_channel_with_no_rollout_reads_back_empty_and_unpaused(void **state)
{
    struct fixture *f = *state;
    put_channel(f->store, "acme", "latest", 1, "1.0.0");
    upd_channel_t got;
    upd_store_txn_t *txn = read_begin(f->store);
    assert_int_equal(upd_store_channel_get(txn, "acme", "latest", &got), 0);
    assert_string_equal(got.rollout_version, "");
    assert_false(got.rollout.paused);
    assert_int_equal(got.rollout.percent_bp, 0);
    assert_int_equal(got.rollout.ncountries, 0);
    assert_non_null(got.rollout.countries); /* safe to memcpy 0 bytes from */
    upd_store_txn_end(txn);
}

static void
test_channel_put_refuses_more_countries_than_the_cap(void **state)
{
    struct fixture *f = *state;
    static char countries[2 * (UPD_ROLLOUT_MAX_COUNTRIES + 1)];
    memset(countries, 'A', sizeof(countries));
    upd_channel_t ch = {.generation = 1, .rollout = {.countries = countries, .ncountries = UPD_ROLLOUT_MAX_COUNTRIES + 1}};
    strcpy(ch.rollout_version, "1.0.0");
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_channel_put(txn, "acme", "latest", &ch), UPD_ETOOBIG);
    ch.rollout.ncountries = UPD_ROLLOUT_MAX_COUNTRIES;
    assert_int_equal(upd_store_channel_put(txn, "acme", "latest", &ch), 0);
    upd_channel_t got;
    assert_int_equal(upd_store_channel_get(txn, "acme", "latest", &got), 0);
    assert_int_equal(got.rollout.ncountries, UPD_ROLLOUT_MAX_COUNTRIES);
    upd_store_txn_end(txn);
}

static int
collect_name(const char *name, void *arg)
{
    char *out = arg;
    strcat(out, name);
    strcat(out, ",");
    return 0;
}

static int
stop_after_first(const char *name, void *arg)
{
    ++*(int *)arg;
    return 1;
}

static void
test_channel_list_names_only_that_apps_channels_in_key_order(void **state)
{
    struct fixture *f = *state;
    put_channel(f->store, "acme", "latest", 1, "1.0.0");
    put_channel(f->store, "acme", "beta", 1, "1.0.0");
    put_channel(f->store, "acme", "beta-2", 1, "1.0.0");
    put_channel(f->store, "acme-pro", "latest", 1, "1.0.0");
    put_channel(f->store, "acm", "latest", 1, "1.0.0");
    char names[256] = "";
    int calls = 0;
    upd_store_txn_t *txn = read_begin(f->store);
    assert_int_equal(upd_store_channel_list(txn, "acme", collect_name, names), 0);
    assert_string_equal(names, "beta,beta-2,latest,");
    assert_int_equal(upd_store_channel_list(txn, "acme", stop_after_first, &calls), 0);
    assert_int_equal(calls, 1);
    names[0] = '\0';
    assert_int_equal(upd_store_channel_list(txn, "nobody", collect_name, names), 0);
    assert_string_equal(names, "");
    upd_store_txn_end(txn);
}

static void
test_pins_set_replaces_the_pinned_list(void **state)
{
    struct fixture *f = *state;
    const char *first[] = {"client-a", "client-b", "client-c"};
    const char *second[] = {"client-c", "client-d"};
    const char *other[] = {"client-a"};
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_pins_set(txn, "acme", "beta", first, 3), 0);
    assert_int_equal(upd_store_pins_set(txn, "acme", "beta-2", other, 1), 0);
    assert_int_equal(upd_store_commit(txn), 0);

    txn = read_begin(f->store);
    assert_true(upd_store_pin_has(txn, "acme", "beta", "client-a", 8));
    assert_true(upd_store_pin_has(txn, "acme", "beta", "client-b", 8));
    assert_false(upd_store_pin_has(txn, "acme", "beta", "client-d", 8));
    assert_false(upd_store_pin_has(txn, "acme", "latest", "client-a", 8));
    /* only client_len bytes count */
    assert_true(upd_store_pin_has(txn, "acme", "beta", "client-a-and-more", 8));
    upd_store_txn_end(txn);

    txn = write_begin(f->store);
    assert_int_equal(upd_store_pins_set(txn, "acme", "beta", second, 2), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    char names[256] = "";
    txn = read_begin(f->store);
    assert_int_equal(upd_store_pins_list(txn, "acme", "beta", collect_name, names), 0);
    assert_string_equal(names, "client-c,client-d,");
    assert_false(upd_store_pin_has(txn, "acme", "beta", "client-a", 8));
    /* another channel whose name starts the same keeps its pins */
    assert_true(upd_store_pin_has(txn, "acme", "beta-2", "client-a", 8));
    upd_store_txn_end(txn);

    txn = write_begin(f->store);
    assert_int_equal(upd_store_pins_set(txn, "acme", "beta", NULL, 0), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    names[0] = '\0';
    txn = read_begin(f->store);
    assert_int_equal(upd_store_pins_list(txn, "acme", "beta", collect_name, names), 0);
    assert_string_equal(names, "");
    upd_store_txn_end(txn);
}

/* ---- apps and keys ---- */

static void
test_app_create_twice_is_eexist_and_keeps_the_first(void **state)
{
    struct fixture *f = *state;
    const char *json;
    size_t len;
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_app_create(txn, "acme", "{\"id\":\"acme\",\"name\":\"Acme\"}"), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    txn = write_begin(f->store);
    assert_int_equal(upd_store_app_create(txn, "acme", "{\"id\":\"acme\",\"name\":\"Other\"}"), UPD_EEXIST);
    upd_store_txn_end(txn);

    txn = read_begin(f->store);
    assert_int_equal(upd_store_app_get(txn, "acme", &json, &len), 0);
    assert_int_equal(len, strlen("{\"id\":\"acme\",\"name\":\"Acme\"}"));
    assert_memory_equal(json, "{\"id\":\"acme\",\"name\":\"Acme\"}", len);
    assert_int_equal(upd_store_app_get(txn, "acm", &json, &len), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
}

static void
test_key_put_twice_is_eexist_and_get_returns_the_record(void **state)
{
    struct fixture *f = *state;
    const char *json;
    size_t len;
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_key_put(txn, "0a1b2c3d", "{\"role\":\"admin\"}"), 0);
    assert_int_equal(upd_store_key_put(txn, "0a1b2c3d", "{\"role\":\"build\"}"), UPD_EEXIST);
    assert_int_equal(upd_store_commit(txn), 0);
    txn = read_begin(f->store);
    assert_int_equal(upd_store_key_get(txn, "0a1b2c3d", &json, &len), 0);
    assert_int_equal(len, 16);
    assert_memory_equal(json, "{\"role\":\"admin\"}", 16);
    assert_int_equal(upd_store_key_get(txn, "0a1b2c3e", &json, &len), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
}

/* ---- the control plane's records (schema 5) ---- */

struct collected {
    char ids[8][64];
    size_t n;
};

static int
collect(const char *id, const char *json, size_t len, void *arg)
{
    (void)json;
    (void)len;
    struct collected *c = arg;
    snprintf(c->ids[c->n++], sizeof(c->ids[0]), "%s", id);
    return c->n == 8;
}

static void
test_keys_are_replaced_listed_and_a_missing_one_is_not_created_by_replace(void **state)
{
    struct fixture *f = *state;
    const char *json;
    size_t len;
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_key_put(txn, "00000000000000bb", "{\"role\":\"build\"}"), 0);
    assert_int_equal(upd_store_key_put(txn, "00000000000000aa", "{\"role\":\"admin\"}"), 0);
    assert_int_equal(upd_store_key_replace(txn, "00000000000000aa", "{\"role\":\"admin\",\"revoked\":1}"), 0);
    assert_int_equal(upd_store_key_replace(txn, "00000000000000cc", "{}"), UPD_ENOTFOUND);
    assert_int_equal(upd_store_commit(txn), 0);
    txn = read_begin(f->store);
    assert_int_equal(upd_store_key_get(txn, "00000000000000aa", &json, &len), 0);
    assert_int_equal(len, strlen("{\"role\":\"admin\",\"revoked\":1}"));
    assert_int_equal(upd_store_key_get(txn, "00000000000000cc", &json, &len), UPD_ENOTFOUND);
    struct collected c = {.n = 0};
    assert_int_equal(upd_store_key_list(txn, collect, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], "00000000000000aa"); /* key order */
    assert_string_equal(c.ids[1], "00000000000000bb");
    upd_store_txn_end(txn);
}

static void
test_members_are_created_once_replaced_listed_and_deleted(void **state)
{
    struct fixture *f = *state;
    const char *json;
    size_t len;
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_member_put(txn, "alice", "{\"v\":1}", true), 0);
    assert_int_equal(upd_store_member_put(txn, "alice", "{\"v\":2}", true), UPD_EEXIST);
    assert_int_equal(upd_store_member_put(txn, "alice", "{\"v\":3}", false), 0);
    assert_int_equal(upd_store_member_put(txn, "bob", "{}", true), 0);
    assert_int_equal(upd_store_member_put(txn, "a/b", "{}", true), UPD_EINVAL);
    assert_int_equal(upd_store_commit(txn), 0);
    txn = read_begin(f->store);
    assert_int_equal(upd_store_member_get(txn, "alice", &json, &len), 0);
    assert_memory_equal(json, "{\"v\":3}", len);
    struct collected c = {.n = 0};
    assert_int_equal(upd_store_member_list(txn, collect, &c), 0);
    assert_int_equal(c.n, 2);
    upd_store_txn_end(txn);
    txn = write_begin(f->store);
    assert_int_equal(upd_store_member_del(txn, "alice"), 0);
    assert_int_equal(upd_store_member_del(txn, "alice"), UPD_ENOTFOUND);
    assert_int_equal(upd_store_commit(txn), 0);
    txn = read_begin(f->store);
    assert_int_equal(upd_store_member_get(txn, "alice", &json, &len), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
}

static void
test_drafts_are_listed_per_app_and_left_out_of_the_published_state(void **state)
{
    struct fixture *f = *state;
    const char *json;
    size_t len;
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_app_create(txn, "acme", "{\"id\":\"acme\",\"name\":\"acme\",\"created\":1}"), 0);
    assert_int_equal(upd_store_draft_put(txn, "acme", "1.0.0", "{\"d\":1}"), 0);
    assert_int_equal(upd_store_draft_put(txn, "acme", "1.0.0", "{\"d\":2}"), UPD_EEXIST);
    assert_int_equal(upd_store_draft_put(txn, "acme", "1.1.0", "{}"), 0);
    /* "acme-2" shares the prefix "acme" but not "acme/" */
    assert_int_equal(upd_store_draft_put(txn, "acme-2", "9.0.0", "{}"), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    txn = read_begin(f->store);
    assert_int_equal(upd_store_draft_get(txn, "acme", "1.0.0", &json, &len), 0);
    assert_memory_equal(json, "{\"d\":1}", len);
    struct collected c = {.n = 0};
    assert_int_equal(upd_store_draft_list(txn, "acme", collect, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], "1.0.0");
    assert_string_equal(c.ids[1], "1.1.0");
    char *doc;
    size_t doc_len;
    uint64_t gen;
    assert_int_equal(upd_store_app_export(txn, "acme", &doc, &doc_len, &gen), 0);
    assert_null(strstr(doc, "drafts"));
    free(doc);
    upd_store_txn_end(txn);
    txn = write_begin(f->store);
    assert_int_equal(upd_store_draft_del(txn, "acme", "1.0.0"), 0);
    assert_int_equal(upd_store_draft_del(txn, "acme", "1.0.0"), UPD_ENOTFOUND);
    assert_int_equal(upd_store_commit(txn), 0);
}

static int
collect_seq(uint64_t seq, const char *rec, size_t len, void *arg)
{
    (void)rec;
    (void)len;
    struct collected *c = arg;
    snprintf(c->ids[c->n++], sizeof(c->ids[0]), "%llu", (unsigned long long)seq);
    return c->n == 3 ? 1 : 0;
}

static void
test_audit_records_keep_sequence_order_past_255_and_are_never_overwritten(void **state)
{
    struct fixture *f = *state;
    const char *rec;
    size_t len;
    uint64_t seq;
    upd_store_txn_t *txn = read_begin(f->store);
    assert_int_equal(upd_store_audit_last(txn, &seq, &rec, &len), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
    txn = write_begin(f->store);
    /* big-endian keys: 256 sorts after 255, which little-endian or decimal text keys would get wrong */
    for (uint64_t s = 250; s <= 260; ++s) {
        char text[32];
        snprintf(text, sizeof(text), "r%llu", (unsigned long long)s);
        assert_int_equal(upd_store_audit_put(txn, s, text, strlen(text)), 0);
    }
    assert_int_equal(upd_store_audit_put(txn, 255, "x", 1), UPD_EEXIST);
    assert_int_equal(upd_store_audit_put(txn, 0, "x", 1), UPD_EINVAL);
    assert_int_equal(upd_store_meta_put(txn, "schema", "x", 1), UPD_EINVAL);
    assert_int_equal(upd_store_meta_put(txn, "audit_head", "260 abc", 7), 0);
    assert_int_equal(upd_store_commit(txn), 0);

    txn = read_begin(f->store);
    assert_int_equal(upd_store_audit_last(txn, &seq, &rec, &len), 0);
    assert_int_equal(seq, 260);
    assert_memory_equal(rec, "r260", len);
    assert_int_equal(upd_store_audit_get(txn, 255, &rec, &len), 0);
    assert_memory_equal(rec, "r255", len);
    struct collected c = {.n = 0};
    assert_int_equal(upd_store_audit_walk(txn, 254, false, collect_seq, &c), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.ids[0], "254");
    assert_string_equal(c.ids[2], "256");
    c.n = 0;
    assert_int_equal(upd_store_audit_walk(txn, 1000, true, collect_seq, &c), 0);
    assert_string_equal(c.ids[0], "260");
    assert_string_equal(c.ids[2], "258");
    c.n = 0;
    assert_int_equal(upd_store_audit_walk(txn, 255, true, collect_seq, &c), 0);
    assert_string_equal(c.ids[0], "255");
    assert_string_equal(c.ids[2], "253");
    c.n = 0;
    assert_int_equal(upd_store_audit_walk(txn, 249, true, collect_seq, &c), 0);
    assert_int_equal(c.n, 0);
    const char *head;
    assert_int_equal(upd_store_meta_get(txn, "audit_head", &head, &len), 0);
    assert_memory_equal(head, "260 abc", len);
    assert_int_equal(upd_store_meta_get(txn, "nothing", &head, &len), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
}

static void
test_aborted_write_leaves_nothing_behind(void **state)
{
    struct fixture *f = *state;
    const char *json;
    size_t len;
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_app_create(txn, "acme", "{}"), 0);
    upd_store_txn_end(txn);
    txn = read_begin(f->store);
    assert_int_equal(upd_store_app_get(txn, "acme", &json, &len), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
}

/* ---- releases and files ---- */

static const char *const windows_files[] = {"Acme-Setup-1.2.0.exe", "acme-1.2.0-full.nupkg", "acme-1.2.0-delta.nupkg", NULL};

static void
test_release_round_trips_through_the_store(void **state)
{
    struct fixture *f = *state;
    upd_release_t rel, got, none;
    make_release(&rel, "1.2.0", "latest", windows_files);
    strcpy(rel.files[0].sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    rel.files[0].blockmap_size = 777;
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_release_put(txn, &rel), 0);
    assert_int_equal(upd_store_commit(txn), 0);

    txn = read_begin(f->store);
    assert_int_equal(upd_store_release_get(txn, "acme", "1.2.0", &got), 0);
    assert_int_equal(upd_store_release_get(txn, "acme", "1.2.1", &none), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
    assert_string_equal(got.app, "acme");
    assert_string_equal(got.version, "1.2.0");
    assert_string_equal(got.channel, "latest");
    assert_string_equal(got.notes, "Notes");
    assert_string_equal(got.pub_date, rel.pub_date);
    assert_int_equal(got.nfiles, 3);
    for (size_t i = 0; i != 3; ++i) {
        assert_string_equal(got.files[i].name, rel.files[i].name);
        assert_int_equal(got.files[i].kind, rel.files[i].kind);
        assert_int_equal(got.files[i].size, rel.files[i].size);
        assert_string_equal(got.files[i].sha512, rel.files[i].sha512);
        assert_string_equal(got.files[i].sha1, rel.files[i].sha1);
        assert_int_equal(got.files[i].blockmap_size, rel.files[i].blockmap_size);
    }
    upd_release_dispose(&got);
    upd_release_dispose(&rel);
}

/* A registered release's record can be rewritten (pulled), its file records untouched; an unknown one cannot. */
static void
test_release_replace_marks_a_release_pulled(void **state)
{
    struct fixture *f = *state;
    upd_release_t rel, got;
    make_release(&rel, "1.2.0", "latest", windows_files);
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_release_put(txn, &rel), 0);
    rel.pulled = true;
    strcpy(rel.pulled_at, "2026-11-29T05:00:00Z");
    assert_int_equal(upd_store_release_replace(txn, &rel), 0);
    upd_release_t other;
    make_release(&other, "9.9.9", "latest", windows_files);
    assert_int_equal(upd_store_release_replace(txn, &other), UPD_ENOTFOUND);
    upd_release_dispose(&other);
    assert_int_equal(upd_store_commit(txn), 0);
    txn = read_begin(f->store);
    assert_int_equal(upd_store_release_get(txn, "acme", "1.2.0", &got), 0);
    upd_file_rec_t fr;
    assert_int_equal(upd_store_file_get(txn, "acme", "1.2.0", rel.files[0].name, strlen(rel.files[0].name), &fr), 0);
    upd_store_txn_end(txn);
    assert_true(got.pulled);
    assert_string_equal(got.pulled_at, "2026-11-29T05:00:00Z");
    upd_release_dispose(&got);
    upd_release_dispose(&rel);
}

/* Blocks and a blockmap record survive the trip too. */
static void
test_release_blocks_and_blockmap_records(void **state)
{
    struct fixture *f = *state;
    upd_release_t rel;
    make_release(&rel, "1.2.0", "latest", windows_files);
    upd_file_t *big = &rel.files[0];
    big->size = 3 * 65536 + 5;
    big->block_size = 65536;
    big->nblocks = 4;
    big->block_alg = UPD_BLOCK_SHA256;
    big->blocks = malloc(4 * UPD_BLOCK_DIGEST_LEN);
    for (size_t i = 0; i < 4 * UPD_BLOCK_DIGEST_LEN; ++i)
        big->blocks[i] = (uint8_t)i;
    big->blockmap_size = 99;
    digest("blockmap", NULL, big->blockmap_sha512);
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_release_put(txn, &rel), 0);
    assert_int_equal(upd_store_commit(txn), 0);

    txn = read_begin(f->store);
    uint32_t bs;
    upd_block_alg_t alg;
    const uint8_t *d;
    size_t n;
    assert_int_equal(upd_store_blocks_get(txn, "acme", "1.2.0", big->name, strlen(big->name), &bs, &alg, &d, &n), 0);
    assert_int_equal(bs, 65536);
    assert_int_equal(alg, UPD_BLOCK_SHA256);
    assert_int_equal(n, 4);
    assert_memory_equal(d, big->blocks, 4 * UPD_BLOCK_DIGEST_LEN);
    assert_int_equal(upd_store_blocks_get(txn, "acme", "1.2.0", rel.files[1].name, strlen(rel.files[1].name), &bs, &alg, &d, &n),
                     UPD_ENOTFOUND);
    upd_file_rec_t bm;
    char bm_name[300];
    snprintf(bm_name, sizeof(bm_name), "%s.blockmap", big->name);
    assert_int_equal(upd_store_file_get(txn, "acme", "1.2.0", bm_name, strlen(bm_name), &bm), 0);
    assert_int_equal(bm.size, 99);
    assert_int_equal(bm.flags, UPD_FILE_REC_BLOCKMAP);
    unsigned char raw[64];
    digest("blockmap", raw, NULL);
    assert_memory_equal(bm.sha512, raw, 64);
    upd_release_t got;
    assert_int_equal(upd_store_release_get(txn, "acme", "1.2.0", &got), 0);
    upd_store_txn_end(txn);
    assert_int_equal(got.files[0].nblocks, 4);
    assert_int_equal(got.files[0].block_size, 65536);
    assert_int_equal(got.files[0].block_alg, UPD_BLOCK_SHA256);
    assert_memory_equal(got.files[0].blocks, big->blocks, 4 * UPD_BLOCK_DIGEST_LEN);
    assert_string_equal(got.files[0].blockmap_sha512, big->blockmap_sha512);
    upd_release_dispose(&got);
    upd_release_dispose(&rel);
}

static int
collect_app(const char *app, void *arg)
{
    strcat(arg, app);
    strcat(arg, " ");
    return 0;
}

/* What one host exports another imports exactly, and an app's document cannot touch another app. */
static void
test_app_export_import_replays_the_state_on_another_store(void **state)
{
    struct fixture *f = *state;
    upd_release_t rel;
    make_release(&rel, "1.2.0", "latest", windows_files);
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_app_create(txn, "acme", "{\"id\":\"acme\"}"), 0);
    assert_int_equal(upd_store_app_create(txn, "other", "{\"id\":\"other\"}"), 0);
    assert_int_equal(upd_store_release_put(txn, &rel), 0);
    assert_int_equal(upd_store_feed_put(txn, "acme", "1.2.0", "latest.yml", "version: 1.2.0\n", 15), 0);
    const char *pins[] = {"tester-1"};
    assert_int_equal(upd_store_pins_set(txn, "acme", "latest", pins, 1), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    put_channel(f->store, "acme", "latest", 3, "1.2.0");
    put_channel(f->store, "acme", "beta", 4, "1.2.0");
    put_channel(f->store, "other", "latest", 9, "2.0.0");

    txn = read_begin(f->store);
    char listed[64] = "";
    assert_int_equal(upd_store_app_list(txn, collect_app, listed), 0);
    assert_string_equal(listed, "acme other ");
    char *doc;
    size_t len;
    uint64_t gen;
    assert_int_equal(upd_store_app_export(txn, "acme", &doc, &len, &gen), 0);
    assert_int_equal(upd_store_app_export(txn, "nope", &doc, &len, &gen), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
    assert_int_equal(gen, 7); /* 3 + 4: the sum of the app's channel generations */
    assert_null(strstr(doc, "other"));

    char dir[64];
    assert_int_equal(tmpdir_make(dir, sizeof(dir), "store2"), 0);
    upd_store_t *b;
    assert_int_equal(upd_store_open(dir, NULL, &b), 0);
    txn = write_begin(b);
    uint64_t got_gen;
    assert_int_equal(upd_store_app_import(txn, "other", doc, len, &got_gen, NULL), UPD_EINVAL); /* another app's document */
    assert_int_equal(upd_store_app_import(txn, "acme", doc, len, &got_gen, NULL), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    assert_int_equal(got_gen, 7);

    txn = read_begin(b);
    upd_channel_t ch;
    assert_int_equal(upd_store_channel_get(txn, "acme", "beta", &ch), 0);
    assert_int_equal(ch.generation, 4);
    assert_true(upd_store_pin_has(txn, "acme", "latest", "tester-1", 8));
    const char *body;
    size_t blen;
    uint64_t etag;
    assert_int_equal(upd_store_feed_get(txn, "acme", "1.2.0", "latest.yml", 10, &body, &blen, &etag), 0);
    assert_memory_equal(body, "version: 1.2.0\n", 15);
    upd_file_rec_t fr;
    assert_int_equal(upd_store_file_get(txn, "acme", "1.2.0", rel.files[0].name, strlen(rel.files[0].name), &fr), 0);
    assert_int_equal(fr.size, rel.files[0].size);
    char *doc2;
    size_t len2;
    assert_int_equal(upd_store_app_generation(txn, "acme", &gen), 0);
    assert_int_equal(gen, 7);
    assert_int_equal(upd_store_app_export(txn, "acme", &doc2, &len2, &gen), 0);
    assert_int_equal(upd_store_channel_get(txn, "other", "latest", &ch), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
    /* the replay exports the very same document */
    assert_int_equal(len2, len);
    assert_memory_equal(doc2, doc, len);

    /* a record key of another app smuggled into the document is refused, and nothing is written */
    char *evil = strdup(doc);
    char *k = strstr(evil, "\"acme/beta\"");
    assert_non_null(k);
    memcpy(k + 1, "acmf", 4);
    txn = write_begin(b);
    assert_int_equal(upd_store_app_import(txn, "acme", evil, len, &got_gen, NULL), UPD_EINVAL);
    upd_store_txn_end(txn);
    free(evil);
    free(doc);
    free(doc2);
    upd_store_close(b);
    tmpdir_remove(dir);
    upd_release_dispose(&rel);
}

/* The document with one record of one sub-database replaced (value NULL: removed), or its generation changed. */
static char *
patched(const char *doc, const char *db, const char *key, const char *value_b64, json_int_t generation)
{
    json_t *root = json_loads(doc, 0, NULL);
    assert_non_null(root);
    if (db != NULL) {
        json_t *recs = json_object_get(json_object_get(root, "records"), db);
        assert_non_null(recs);
        if (value_b64 != NULL)
            json_object_set_new(recs, key, json_string(value_b64));
        else
            json_object_del(recs, key);
    }
    if (generation >= 0)
        json_object_set_new(root, "generation", json_integer(generation));
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

static char *
b64_of(const uint8_t *raw, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, raw, (int)len);
    return out;
}

/* A document whose records do not validate is refused whole: the app keeps its last good state. */
static void
test_app_import_refuses_a_document_with_an_invalid_record_and_keeps_the_last_state(void **state)
{
    struct fixture *f = *state;
    upd_release_t rel;
    make_release(&rel, "1.2.0", "latest", windows_files);
    upd_file_t *big = &rel.files[0];
    big->size = 3 * 65536 + 5;
    big->block_size = 65536;
    big->nblocks = 4;
    big->block_alg = UPD_BLOCK_SHA256;
    big->blocks = calloc(4, UPD_BLOCK_DIGEST_LEN);
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_app_create(txn, "acme", "{\"id\":\"acme\"}"), 0);
    assert_int_equal(upd_store_release_put(txn, &rel), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    put_channel(f->store, "acme", "latest", 3, "1.2.0");
    txn = read_begin(f->store);
    char *doc;
    size_t len;
    uint64_t gen;
    assert_int_equal(upd_store_app_export(txn, "acme", &doc, &len, &gen), 0);
    upd_store_txn_end(txn);

    char bkey[256], fkey[256];
    snprintf(bkey, sizeof(bkey), "acme/1.2.0/%s", big->name);
    snprintf(fkey, sizeof(fkey), "acme/1.2.0/%s", rel.files[1].name);
    /* uint32 block size, the algorithm, the digests */
    uint8_t blocks0[5 + 4 * UPD_BLOCK_DIGEST_LEN] = {0, 0, 0, 0, UPD_BLOCK_SHA256}; /* block size 0 */
    uint8_t blocks_few[5 + 2 * UPD_BLOCK_DIGEST_LEN] = {0, 0, 1, 0, UPD_BLOCK_SHA256}; /* 65536, two digests for four blocks */
    /* generation 3, a stable version "9.9.9" that is no release of the document, no rollout, no countries */
    uint8_t channel_bad[40] = {'U', 'C', 1, 0, 3};
    channel_bad[25] = 5;
    memcpy(channel_bad + 26, "9.9.9", 5);
    char *b_blocks0 = b64_of(blocks0, sizeof(blocks0)), *b_few = b64_of(blocks_few, sizeof(blocks_few));
    char *b_chan = b64_of(channel_bad, 25 + 1 + 0 + 1 + 5 + 2), *b_junk = b64_of((const uint8_t *)"junk", 4);
    json_t *jdoc = json_loads(doc, 0, NULL);
    const char *file_val = json_string_value(json_object_get(json_object_get(json_object_get(jdoc, "records"), "files"), fkey));
    struct {
        char *doc;
        const char *why;
    } bad[] = {
        {patched(doc, "blocks", bkey, b_blocks0, -1), "block size 0"},
        {patched(doc, "blocks", bkey, b_few, -1), "2 digests"},
        {patched(doc, "files", "acme/1.2.0/bad name", file_val, -1), "not a file name"},
        {patched(doc, "files", "acme/1.2.0/X.exe", b_junk, -1), "not a file record"},
        {patched(doc, "files", "acme/0.1/X.exe", file_val, -1), "not a release"},
        {patched(doc, "channels", "acme/latest", b_chan, -1), "not a release of the document"},
        {patched(doc, "releases", "acme/1.2.0", b_junk, -1), "not a release record"},
        {patched(doc, NULL, NULL, NULL, 99), "not the sum"},
        {patched(doc, "apps", "acme", NULL, -1), "no app record"},
    };
    json_decref(jdoc);

    char dir[64];
    assert_int_equal(tmpdir_make(dir, sizeof(dir), "store3"), 0);
    upd_store_t *b;
    assert_int_equal(upd_store_open(dir, NULL, &b), 0);
    txn = write_begin(b);
    uint64_t got;
    assert_int_equal(upd_store_app_import(txn, "acme", doc, len, &got, NULL), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        upd_reason_t why = {{0}};
        txn = write_begin(b);
        assert_int_equal(upd_store_app_import(txn, "acme", bad[i].doc, strlen(bad[i].doc), &got, &why), UPD_EINVAL);
        assert_string_equal(why.code, "invalid_record");
        if (strstr(why.message, bad[i].why) == NULL)
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, why.message, bad[i].why);
        /* committing what the caller's transaction holds commits nothing of the refused document */
        assert_int_equal(upd_store_commit(txn), 0);
        free(bad[i].doc);
    }
    upd_reason_t why = {{0}};
    txn = write_begin(b);
    assert_int_equal(upd_store_app_import(txn, "acme", "{\"format\":1", 11, &got, &why), UPD_EINVAL);
    assert_string_equal(why.code, "malformed");
    upd_store_txn_end(txn);

    /* the last good state is whole */
    txn = read_begin(b);
    char *again;
    size_t again_len;
    assert_int_equal(upd_store_app_export(txn, "acme", &again, &again_len, &gen), 0);
    upd_store_txn_end(txn);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, doc, len);
    free(again);
    free(doc);
    free(b_blocks0);
    free(b_few);
    free(b_chan);
    free(b_junk);
    upd_store_close(b);
    tmpdir_remove(dir);
    upd_release_dispose(&rel);
}

static void
test_release_put_of_a_registered_version_is_eexist(void **state)
{
    struct fixture *f = *state;
    upd_release_t rel, again;
    make_release(&rel, "1.2.0", "latest", windows_files);
    make_release(&again, "1.2.0", "beta", (const char *const[]){"Acme-1.2.0.dmg", NULL});
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_release_put(txn, &rel), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    txn = write_begin(f->store);
    assert_int_equal(upd_store_release_put(txn, &again), UPD_EEXIST);
    /* refused before anything was written: the other release's file is not there */
    upd_file_rec_t rec;
    assert_int_equal(upd_store_file_get(txn, "acme", "1.2.0", "Acme-1.2.0.dmg", 14, &rec), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
    upd_release_dispose(&rel);
    upd_release_dispose(&again);
}

static void
test_nupkg_name_of_another_version_is_a_conflict_and_writes_nothing(void **state)
{
    struct fixture *f = *state;
    upd_release_t rel, clash;
    char version[UPD_VERSION_MAX + 1];
    make_release(&rel, "1.2.0", "latest", windows_files);
    /* a build that reused the old package name for a new version */
    make_release(&clash, "1.3.0", "latest", (const char *const[]){"Acme-Setup-1.3.0.exe", "acme-1.2.0-full.nupkg", NULL});
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_release_put(txn, &rel), 0);
    assert_int_equal(upd_store_commit(txn), 0);

    txn = write_begin(f->store);
    assert_int_equal(upd_store_release_put(txn, &clash), UPD_ECONFLICT);
    upd_release_t got;
    assert_int_equal(upd_store_release_get(txn, "acme", "1.3.0", &got), UPD_ENOTFOUND);
    upd_store_txn_end(txn);

    txn = read_begin(f->store);
    assert_int_equal(upd_store_nupkg_version(txn, "acme", "acme-1.2.0-full.nupkg", 21, version), 0);
    assert_string_equal(version, "1.2.0");
    assert_int_equal(upd_store_nupkg_version(txn, "acme", "acme-1.2.0-delta.nupkg", 22, version), 0);
    assert_string_equal(version, "1.2.0");
    assert_int_equal(upd_store_nupkg_version(txn, "acme", "Acme-Setup-1.2.0.exe", 20, version), UPD_ENOTFOUND);
    assert_int_equal(upd_store_nupkg_version(txn, "other", "acme-1.2.0-full.nupkg", 21, version), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
    upd_release_dispose(&rel);
    upd_release_dispose(&clash);
}

static void
test_file_get_returns_size_kind_and_the_raw_sha512(void **state)
{
    struct fixture *f = *state;
    upd_release_t rel;
    upd_file_rec_t rec;
    unsigned char raw[64];
    make_release(&rel, "1.2.0", "latest", windows_files);
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_release_put(txn, &rel), 0);
    assert_int_equal(upd_store_commit(txn), 0);

    txn = read_begin(f->store);
    for (size_t i = 0; windows_files[i] != NULL; ++i) {
        const char *name = windows_files[i];
        memset(&rec, 0, sizeof(rec));
        assert_int_equal(upd_store_file_get(txn, "acme", "1.2.0", name, strlen(name), &rec), 0);
        assert_int_equal(rec.size, 1000 + strlen(name));
        digest(name, raw, NULL);
        assert_memory_equal(rec.sha512, raw, 64);
        assert_int_equal(rec.platform, UPD_PLATFORM_WINDOWS);
        assert_int_equal(rec.arch, UPD_ARCH_X64);
        assert_int_equal(rec.kind, upd_kind_from_name(name));
    }
    /* name_len bytes count, so the artifact route can look up FILE for FILE.blockmap without a copy */
    assert_int_equal(upd_store_file_get(txn, "acme", "1.2.0", "Acme-Setup-1.2.0.exe.blockmap", 20, &rec), 0);
    assert_int_equal(upd_store_file_get(txn, "acme", "1.2.0", "Acme-Setup-1.2.0.exe.blockmap", 29, &rec), UPD_ENOTFOUND);
    assert_int_equal(upd_store_file_get(txn, "acme", "1.2.1", "Acme-Setup-1.2.0.exe", 20, &rec), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
    upd_release_dispose(&rel);
}

static int
collect_version(const upd_release_t *rel, void *arg)
{
    strcat(arg, rel->version);
    strcat(arg, ",");
    return 0;
}

static void
test_release_list_walks_one_apps_releases_in_key_order(void **state)
{
    struct fixture *f = *state;
    static const char *const versions[] = {"1.10.0", "1.2.0", "1.3.0-beta.1"};
    upd_store_txn_t *txn = write_begin(f->store);
    for (size_t i = 0; i != 3; ++i) {
        upd_release_t rel;
        char name[64];
        snprintf(name, sizeof(name), "Acme-%s.dmg", versions[i]);
        make_release(&rel, versions[i], i == 2 ? "beta" : "latest", (const char *const[]){name, NULL});
        assert_int_equal(upd_store_release_put(txn, &rel), 0);
        upd_release_dispose(&rel);
    }
    upd_release_t other;
    make_release(&other, "9.9.9", "latest", (const char *const[]){"Other.dmg", NULL});
    strcpy(other.app, "acme-pro");
    assert_int_equal(upd_store_release_put(txn, &other), 0);
    upd_release_dispose(&other);
    assert_int_equal(upd_store_commit(txn), 0);

    char seen[256] = "";
    txn = read_begin(f->store);
    assert_int_equal(upd_store_release_list(txn, "acme", collect_version, seen), 0);
    upd_store_txn_end(txn);
    assert_string_equal(seen, "1.10.0,1.2.0,1.3.0-beta.1,");
}

/* ---- feeds ---- */

static void
test_feed_put_get_clear_and_the_etag_is_xxh3_of_the_body(void **state)
{
    struct fixture *f = *state;
    const char *yml = "version: 1.2.0\nfiles:\n  - url: /artifacts/acme/1.2.0/Acme-Setup-1.2.0.exe\n";
    const char *body;
    size_t len;
    uint64_t etag;
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_feed_put(txn, "acme", "1.2.0", "electron:windows", yml, strlen(yml)), 0);
    assert_int_equal(upd_store_feed_put(txn, "acme", "1.2.0", "electron:mac", "mac", 3), 0);
    assert_int_equal(upd_store_feed_put(txn, "acme", "1.2.0", "empty", "", 0), 0);
    /* a version whose string starts with the other one's must survive the clear */
    assert_int_equal(upd_store_feed_put(txn, "acme", "1.2.0-beta.1", "electron:windows", "beta", 4), 0);
    assert_int_equal(upd_store_commit(txn), 0);

    txn = read_begin(f->store);
    assert_int_equal(upd_store_feed_get(txn, "acme", "1.2.0", "electron:windows", 16, &body, &len, &etag), 0);
    assert_int_equal(len, strlen(yml));
    assert_memory_equal(body, yml, len);
    assert_int_equal(etag, XXH3_64bits(yml, strlen(yml)));
    assert_int_equal(upd_store_feed_get(txn, "acme", "1.2.0", "empty", 5, &body, &len, &etag), 0);
    assert_int_equal(len, 0);
    assert_int_equal(etag, XXH3_64bits("", 0));
    assert_int_equal(upd_store_feed_get(txn, "acme", "1.2.0", "electron:linux", 14, &body, &len, &etag), UPD_ENOTFOUND);
    upd_store_txn_end(txn);

    txn = write_begin(f->store);
    assert_int_equal(upd_store_feed_clear(txn, "acme", "1.2.0"), 0);
    assert_int_equal(upd_store_feed_put(txn, "acme", "1.2.0", "electron:mac", "mac2", 4), 0);
    assert_int_equal(upd_store_commit(txn), 0);

    txn = read_begin(f->store);
    assert_int_equal(upd_store_feed_get(txn, "acme", "1.2.0", "electron:windows", 16, &body, &len, &etag), UPD_ENOTFOUND);
    assert_int_equal(upd_store_feed_get(txn, "acme", "1.2.0", "empty", 5, &body, &len, &etag), UPD_ENOTFOUND);
    assert_int_equal(upd_store_feed_get(txn, "acme", "1.2.0", "electron:mac", 12, &body, &len, &etag), 0);
    assert_memory_equal(body, "mac2", 4);
    assert_int_equal(etag, XXH3_64bits("mac2", 4));
    assert_int_equal(upd_store_feed_get(txn, "acme", "1.2.0-beta.1", "electron:windows", 16, &body, &len, &etag), 0);
    assert_memory_equal(body, "beta", 4);
    upd_store_txn_end(txn);
}

/* ---- clients seen ---- */

static void
add_clients(upd_hll_t *h, int from, int to, int step)
{
    for (int i = from; i < to; i += step) {
        char client[64];
        int len = snprintf(client, sizeof(client), "2f0e8a4c-%05d-4d7b-9a31-%012d", i % 100000, i);
        assert_int_equal(upd_hll_add(h, upd_hll_hash(client, (size_t)len)), 0);
    }
}

static void
test_offered_merges_are_idempotent_exact_while_small_and_within_two_percent_after(void **state)
{
    struct fixture *f = *state;
    /* 4,000 clients offered 1.2.0 (exact), 40,000 offered 1.3.0 (estimated); each merged in two halves, twice */
    for (int round = 0; round != 2; ++round) {
        for (int half = 0; half != 2; ++half) {
            upd_hll_t a, b;
            upd_hll_init(&a);
            upd_hll_init(&b);
            add_clients(&a, half * 2000, half * 2000 + 2000, 1);
            add_clients(&b, half * 20000, half * 20000 + 20000, 1);
            upd_offered_t list[] = {{"acme", "latest", "1.2.0", &a}, {"acme", "latest", "1.3.0", &b}};
            assert_int_equal(upd_store_offered_merge(f->store, list, 2), 0);
            upd_hll_dispose(&a);
            upd_hll_dispose(&b);
        }
    }

    uint64_t count;
    upd_store_txn_t *txn = read_begin(f->store);
    assert_int_equal(upd_store_clients_count(txn, "acme", "latest", "1.2.0", &count), 0);
    assert_int_equal(count, 4000);
    assert_int_equal(upd_store_clients_count(txn, "acme", "latest", "1.3.0", &count), 0);
    assert_true(count >= 39200 && count <= 40800);
    assert_int_equal(upd_store_clients_count(txn, "acme", "beta", "1.2.0", &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(upd_store_clients_count(txn, "acme", "latest", "1.2", &count), 0);
    assert_int_equal(count, 0);
    upd_store_txn_end(txn);
}

/* A release with XXH3-128 block digests, as a build before schema 4 registered it: its release JSON has no
 * "block_digest" (that is the same either way) and its blocks record no algorithm byte (rewritten raw below). */
static void
put_xxh3_release(struct fixture *f, upd_release_t *rel)
{
    make_release(rel, "1.0.0", "latest", windows_files);
    for (size_t k = 0; k < 2; ++k) {
        /* two records: the migration rewrites one after another in place */
        upd_file_t *big = &rel->files[k];
        big->size = 2 * 65536 + 1;
        big->block_size = 65536;
        big->nblocks = 3;
        big->block_alg = UPD_BLOCK_XXH3_128;
        big->blocks = malloc(3 * UPD_BLOCK_DIGEST_LEN_XXH3);
        for (size_t i = 0; i < 3 * UPD_BLOCK_DIGEST_LEN_XXH3; ++i)
            big->blocks[i] = (uint8_t)(0xa0 + i + 7 * k);
    }
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_app_create(txn, "acme", "{\"id\":\"acme\"}"), 0);
    assert_int_equal(upd_store_release_put(txn, rel), 0);
    assert_int_equal(upd_store_commit(txn), 0);
}

/* Turns the environment back into schema 3: meta/schema 3 and every blocks record without its algorithm byte. */
static void
write_schema3_blocks(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn = raw_begin(dir, 0, &env);
    MDB_dbi blocks;
    MDB_cursor *cur;
    MDB_val k, v;
    raw_put_schema(txn, 3);
    assert_int_equal(mdb_dbi_open(txn, "blocks", 0, &blocks), 0);
    assert_int_equal(mdb_cursor_open(txn, blocks, &cur), 0);
    int n = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint8_t old[4096];
        assert_true(v.mv_size <= sizeof(old) && v.mv_size > 5);
        memcpy(old, v.mv_data, 4);
        memcpy(old + 4, (const uint8_t *)v.mv_data + 5, v.mv_size - 5);
        char kb[512];
        assert_true(k.mv_size <= sizeof(kb));
        memcpy(kb, k.mv_data, k.mv_size); /* the cursor's key moves while a record changes size */
        MDB_val nk = {k.mv_size, kb}, nv = {v.mv_size - 1, old};
        assert_int_equal(mdb_cursor_put(cur, &nk, &nv, MDB_CURRENT), 0);
        ++n;
    }
    assert_int_equal(n, 2);
    mdb_cursor_close(cur);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
test_a_schema_3_store_is_migrated_with_its_block_digests_tagged_xxh3(void **state)
{
    struct fixture *f = *state;
    upd_release_t rel;
    put_xxh3_release(f, &rel);
    upd_store_close(f->store);
    f->store = NULL;
    write_schema3_blocks(f->dir);

    /* read-only refuses it, as for any schema it cannot migrate without writing */
    upd_store_t *store;
    upd_store_opts_t ro = {.read_only = true};
    assert_int_equal(upd_store_open(f->dir, &ro, &store), UPD_ESCHEMA);
    assert_int_equal(upd_store_schema_found(store), 3);
    upd_store_close(store);

    assert_int_equal(upd_store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(upd_store_schema_found(f->store), UPD_STORE_SCHEMA);
    upd_store_txn_t *txn = read_begin(f->store);
    uint32_t bs;
    upd_block_alg_t alg;
    const uint8_t *d;
    size_t n;
    assert_int_equal(upd_store_blocks_get(txn, "acme", "1.0.0", rel.files[0].name, strlen(rel.files[0].name), &bs, &alg, &d, &n),
                     0);
    assert_int_equal(alg, UPD_BLOCK_XXH3_128);
    assert_int_equal(bs, 65536);
    assert_int_equal(n, 3);
    assert_memory_equal(d, rel.files[0].blocks, 3 * UPD_BLOCK_DIGEST_LEN_XXH3);
    assert_int_equal(upd_store_blocks_get(txn, "acme", "1.0.0", rel.files[1].name, strlen(rel.files[1].name), &bs, &alg, &d, &n),
                     0);
    assert_int_equal(alg, UPD_BLOCK_XXH3_128);
    assert_memory_equal(d, rel.files[1].blocks, 3 * UPD_BLOCK_DIGEST_LEN_XXH3);
    upd_release_t got;
    assert_int_equal(upd_store_release_get(txn, "acme", "1.0.0", &got), 0);
    assert_int_equal(got.files[0].block_alg, UPD_BLOCK_XXH3_128);
    assert_memory_equal(got.files[0].blocks, rel.files[0].blocks, 3 * UPD_BLOCK_DIGEST_LEN_XXH3);
    upd_release_dispose(&got);

    /* a state document published before schema 4 carries the untagged record: imported, it is tagged too */
    char *doc;
    size_t doc_len;
    uint64_t gen;
    assert_int_equal(upd_store_app_export(txn, "acme", &doc, &doc_len, &gen), 0);
    upd_store_txn_end(txn);
    json_t *root = json_loadb(doc, doc_len, 0, NULL);
    free(doc);
    assert_non_null(root);
    json_t *recs = json_object_get(json_object_get(root, "records"), "blocks");
    assert_int_equal(json_object_size(recs), 2);
    const char *rk;
    json_t *rv;
    json_object_foreach(recs, rk, rv) {
        uint8_t raw[4096], old[4096];
        int len = EVP_DecodeBlock(raw, (const unsigned char *)json_string_value(rv), (int)json_string_length(rv));
        assert_true(len > 5);
        len = 5 + 3 * UPD_BLOCK_DIGEST_LEN_XXH3; /* without the padding EVP_DecodeBlock counts */
        assert_int_equal(raw[4], UPD_BLOCK_XXH3_128);
        memcpy(old, raw, 4);
        memcpy(old + 4, raw + 5, (size_t)len - 5);
        char b64[8192];
        int bl = EVP_EncodeBlock((unsigned char *)b64, old, len - 1);
        json_object_set_new(recs, rk, json_stringn(b64, (size_t)bl));
    }
    doc = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    txn = write_begin(f->store);
    assert_int_equal(upd_store_app_import(txn, "acme", doc, strlen(doc), &gen, NULL), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    free(doc);
    txn = read_begin(f->store);
    assert_int_equal(upd_store_blocks_get(txn, "acme", "1.0.0", rel.files[0].name, strlen(rel.files[0].name), &bs, &alg, &d, &n),
                     0);
    assert_int_equal(alg, UPD_BLOCK_XXH3_128);
    assert_int_equal(n, 3);
    assert_memory_equal(d, rel.files[0].blocks, 3 * UPD_BLOCK_DIGEST_LEN_XXH3);
    upd_store_txn_end(txn);
    upd_release_dispose(&rel);
}

/* Writes a schema 2 environment as a build of that schema left it: meta/schema 2 and one "clients" record per client
 * offered a version (APP/CHANNEL/VERSION/CLIENT -> int64 time). */
static void
write_schema2_clients(const char *dir, int n)
{
    MDB_env *env;
    MDB_txn *txn = raw_begin(dir, 0, &env);
    MDB_dbi clients;
    uint8_t at[8] = {1};
    raw_put_schema(txn, 2);
    assert_int_equal(mdb_dbi_open(txn, "clients", MDB_CREATE, &clients), 0);
    for (int i = 0; i != n; ++i) {
        char k[128];
        for (int v = 0; v != 2; ++v) {
            if (v == 1 && i % 4 != 0)
                continue;
            int len = snprintf(k, sizeof(k), "acme/latest/%s/client-%05d", v == 0 ? "1.0.0" : "1.1.0", i);
            MDB_val kv = {(size_t)len, k}, vv = {8, at};
            assert_int_equal(mdb_put(txn, clients, &kv, &vv, 0), 0);
        }
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
test_a_schema_2_store_is_migrated_with_its_clients_counted(void **state)
{
    struct fixture *f = *state;
    upd_store_close(f->store);
    f->store = NULL;
    write_schema2_clients(f->dir, 3000);

    /* read-only (no writes allowed to migrate) refuses it as before */
    upd_store_t *store;
    upd_store_opts_t ro = {.read_only = true};
    assert_int_equal(upd_store_open(f->dir, &ro, &store), UPD_ESCHEMA);
    assert_int_equal(upd_store_schema_found(store), 2);
    upd_store_close(store);

    assert_int_equal(upd_store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(upd_store_schema_found(f->store), UPD_STORE_SCHEMA);
    uint64_t count;
    upd_store_txn_t *txn = read_begin(f->store);
    assert_int_equal(upd_store_clients_count(txn, "acme", "latest", "1.0.0", &count), 0);
    assert_int_equal(count, 3000);
    assert_int_equal(upd_store_clients_count(txn, "acme", "latest", "1.1.0", &count), 0);
    assert_int_equal(count, 750);
    upd_store_txn_end(txn);
    /* the per-client records are gone, and a later client of the same id is counted once */
    upd_hll_t again;
    upd_hll_init(&again);
    assert_int_equal(upd_hll_add(&again, upd_hll_hash("client-00007", 12)), 0);
    assert_int_equal(upd_hll_add(&again, upd_hll_hash("client-99999", 12)), 0);
    upd_offered_t list = {"acme", "latest", "1.0.0", &again};
    assert_int_equal(upd_store_offered_merge(f->store, &list, 1), 0);
    upd_hll_dispose(&again);
    txn = read_begin(f->store);
    assert_int_equal(upd_store_clients_count(txn, "acme", "latest", "1.0.0", &count), 0);
    assert_int_equal(count, 3001);
    upd_store_txn_end(txn);
    upd_store_close(f->store);
    f->store = NULL;

    MDB_env *env;
    MDB_txn *raw = raw_begin(f->dir, MDB_RDONLY, &env);
    MDB_dbi dbi;
    assert_int_equal(mdb_dbi_open(raw, "clients", 0, &dbi), MDB_NOTFOUND);
    mdb_txn_abort(raw);
    mdb_env_close(env);
    assert_int_equal(upd_store_open(f->dir, NULL, &f->store), 0);
}

/* ---- limits ---- */

static void
test_over_long_or_separator_bearing_keys_are_never_found(void **state)
{
    struct fixture *f = *state;
    char long_client[UPD_CLIENT_ID_MAX + 2], long_variant[300], long_app[UPD_ID_MAX + 2];
    memset(long_client, 'c', sizeof(long_client));
    memset(long_variant, 'v', sizeof(long_variant));
    memset(long_app, 'a', sizeof(long_app) - 1);
    long_app[sizeof(long_app) - 1] = '\0';
    const char *body;
    size_t len;
    uint64_t etag;
    upd_file_rec_t rec;
    upd_channel_t ch;

    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_app_create(txn, long_app, "{}"), UPD_EINVAL);
    assert_int_equal(upd_store_app_create(txn, "a/b", "{}"), UPD_EINVAL);
    assert_int_equal(upd_store_feed_put(txn, "acme", "1.0.0", "x/y", "b", 1), UPD_EINVAL);
    /* "acme" + channel "b/c" must not read or write the key of channel "b" and client "c/..." */
    const char *pins[] = {"c/d"};
    assert_int_equal(upd_store_pins_set(txn, "acme", "b", pins, 1), UPD_EINVAL);
    assert_int_equal(upd_store_commit(txn), 0);

    txn = read_begin(f->store);
    assert_false(upd_store_pin_has(txn, "acme", "beta", long_client, sizeof(long_client)));
    uint64_t offered = 1;
    assert_int_equal(upd_store_clients_count(txn, "acme", "latest/1.0.0", "x", &offered), 0);
    assert_int_equal(offered, 0);
    assert_int_equal(upd_store_feed_get(txn, "acme", "1.0.0", long_variant, sizeof(long_variant), &body, &len, &etag), UPD_ENOTFOUND);
    assert_int_equal(upd_store_file_get(txn, "acme", "1.0.0", "../x", 4, &rec), UPD_ENOTFOUND);
    assert_int_equal(upd_store_channel_get(txn, long_app, "latest", &ch), UPD_ENOTFOUND);
    assert_int_equal(upd_store_channel_get(txn, "acme", "", &ch), UPD_ENOTFOUND);
    upd_store_txn_end(txn);
}

/* ---- read transactions ---- */

static void
test_read_transaction_is_reused_and_sees_commits_made_after_it_ended(void **state)
{
    struct fixture *f = *state;
    upd_store_txn_t *first = NULL;
    for (uint64_t g = 1; g <= 1000; ++g) {
        upd_store_txn_t *txn = read_begin(f->store);
        if (first == NULL)
            first = txn;
        assert_ptr_equal(txn, first); /* the thread's one reader, renewed */
        upd_channel_t ch;
        int err = upd_store_channel_get(txn, "acme", "latest", &ch);
        assert_int_equal(err, g == 1 ? UPD_ENOTFOUND : 0);
        if (g != 1)
            assert_int_equal(ch.generation, g - 1);
        upd_store_txn_end(txn);
        put_channel(f->store, "acme", "latest", g, "1.0.0");
    }
    assert_int_equal(read_generation(f->store, "acme", "latest"), 1000);
}

static void
test_read_transaction_keeps_its_snapshot_while_a_write_commits(void **state)
{
    struct fixture *f = *state;
    put_channel(f->store, "acme", "latest", 1, "1.0.0");
    upd_store_txn_t *txn = read_begin(f->store);
    put_channel(f->store, "acme", "latest", 2, "1.1.0");
    upd_channel_t ch;
    assert_int_equal(upd_store_channel_get(txn, "acme", "latest", &ch), 0);
    assert_int_equal(ch.generation, 1);
    assert_string_equal(ch.stable, "1.0.0");
    upd_store_txn_end(txn);
    assert_int_equal(read_generation(f->store, "acme", "latest"), 2);
}

static void
test_second_read_begin_on_one_thread_is_refused(void **state)
{
    struct fixture *f = *state;
    upd_store_txn_t *txn = read_begin(f->store), *again;
    assert_int_equal(upd_store_read_begin(f->store, &again), UPD_ESTORE);
    upd_store_txn_end(txn);
    again = read_begin(f->store);
    upd_store_txn_end(again);
}

#ifdef COUNT_ALLOCATIONS
static void
test_read_path_allocates_nothing_after_the_first_use(void **state)
{
    struct fixture *f = *state;
    upd_release_t rel;
    make_release(&rel, "1.2.0", "latest", windows_files);
    upd_store_txn_t *txn = write_begin(f->store);
    assert_int_equal(upd_store_release_put(txn, &rel), 0);
    assert_int_equal(upd_store_feed_put(txn, "acme", "1.2.0", "electron:windows", "yml", 3), 0);
    const char *pins[] = {"client-a"};
    assert_int_equal(upd_store_pins_set(txn, "acme", "latest", pins, 1), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    upd_release_dispose(&rel);
    put_channel(f->store, "acme", "latest", 1, "1.2.0");

    /* the first use on this thread may allocate (its reader, LMDB's slot); none after */
    upd_store_txn_end(read_begin(f->store));
    allocations = 0;
    for (int i = 0; i != 100; ++i) {
        upd_store_txn_t *r;
        upd_channel_t ch;
        const char *body;
        size_t len;
        uint64_t etag;
        upd_file_rec_t rec;
        bool ok = upd_store_read_begin(f->store, &r) == 0 && upd_store_channel_get(r, "acme", "latest", &ch) == 0 &&
                  upd_store_pin_has(r, "acme", "latest", "client-a", 8) &&
                  upd_store_feed_get(r, "acme", ch.stable, "electron:windows", 16, &body, &len, &etag) == 0 &&
                  upd_store_file_get(r, "acme", ch.stable, "Acme-Setup-1.2.0.exe", 20, &rec) == 0;
        upd_store_txn_end(r);
        if (!ok) {
            allocations = -1;
            fail_msg("read %d failed", i);
        }
    }
    int n = allocations;
    allocations = -1;
    assert_int_equal(n, 0);
}
#endif

/* ---- concurrency ---- */

/* Two processes (control and origin) on one environment: a forked child opens its own handle, as the other program would. */
static void
test_two_processes_see_each_others_commits(void **state)
{
    struct fixture *f = *state;
    int to_child[2], to_parent[2];
    char byte = 'x';
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(to_parent), 0);
    put_channel(f->store, "acme", "latest", 1, "1.0.0");

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* never touch the parent's handle here: an LMDB environment must not be used across fork() */
        upd_store_t *own;
        upd_store_txn_t *txn;
        upd_channel_t ch = {.generation = 2};
        int code = 0;
        strcpy(ch.stable, "1.1.0");
        if (upd_store_open(f->dir, NULL, &own) != 0)
            _exit(10);
        if (read_generation(own, "acme", "latest") != 1)
            code = 11;
        else if (upd_store_write_begin(own, &txn) != 0 || upd_store_channel_put(txn, "acme", "latest", &ch) != 0 ||
                 upd_store_commit(txn) != 0)
            code = 12;
        if (write(to_parent[1], &byte, 1) != 1 || read(to_child[0], &byte, 1) != 1)
            code = 13;
        if (code == 0 && read_generation(own, "acme", "latest") != 3)
            code = 14;
        upd_store_close(own);
        _exit(code);
    }
    assert_int_equal(read(to_parent[0], &byte, 1), 1);
    assert_int_equal(read_generation(f->store, "acme", "latest"), 2);
    put_channel(f->store, "acme", "latest", 3, "1.2.0");
    assert_int_equal(write(to_child[1], &byte, 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    for (int i = 0; i != 2; ++i) {
        close(to_child[i]);
        close(to_parent[i]);
    }
}

enum { WRITES = 200 };

struct reader_run {
    upd_store_t *store;
    int snapshots, failures;
    char failure[256];
};

/* Reads until it has seen the writer's last generation; every snapshot must be whole. */
static void *
reader_main(void *arg)
{
    struct reader_run *run = arg;
    uint64_t last = 0;
    while (last != WRITES) {
        upd_store_txn_t *txn;
        upd_channel_t ch;
        const char *body;
        size_t len;
        uint64_t etag;
        char expect[32];
        if (upd_store_read_begin(run->store, &txn) != 0) {
            snprintf(run->failure, sizeof(run->failure), "read_begin failed");
            ++run->failures;
            return NULL;
        }
        if (upd_store_channel_get(txn, "acme", "latest", &ch) == 0) {
            ++run->snapshots;
            snprintf(expect, sizeof(expect), "1.0.%" PRIu64, ch.generation);
            /* the channel, its version and that version's feed were committed together: seen together or not at all */
            if (ch.generation < last || strcmp(ch.stable, expect) != 0 ||
                upd_store_feed_get(txn, "acme", ch.stable, "electron:windows", 16, &body, &len, &etag) != 0 ||
                len != strlen(expect) || memcmp(body, expect, len) != 0) {
                snprintf(run->failure, sizeof(run->failure), "generation %" PRIu64 " after %" PRIu64 ", stable %s", ch.generation,
                         last, ch.stable);
                ++run->failures;
                upd_store_txn_end(txn);
                return NULL;
            }
            last = ch.generation;
        }
        upd_store_txn_end(txn);
    }
    return NULL;
}

static void
test_reader_thread_sees_whole_commits_while_a_writer_runs(void **state)
{
    struct fixture *f = *state;
    struct reader_run run = {.store = f->store};
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, reader_main, &run), 0);
    for (uint64_t g = 1; g <= WRITES; ++g) {
        char version[32];
        snprintf(version, sizeof(version), "1.0.%" PRIu64, g);
        upd_channel_t ch = {.generation = g};
        strcpy(ch.stable, version);
        upd_store_txn_t *txn = write_begin(f->store);
        assert_int_equal(upd_store_feed_put(txn, "acme", version, "electron:windows", version, strlen(version)), 0);
        assert_int_equal(upd_store_channel_put(txn, "acme", "latest", &ch), 0);
        assert_int_equal(upd_store_commit(txn), 0);
    }
    assert_int_equal(pthread_join(reader, NULL), 0);
    if (run.failures != 0)
        fail_msg("reader: %s", run.failure);
    assert_true(run.snapshots >= 1);
    /* the reader thread has exited: its transaction went with it, and the store still serves this thread */
    assert_int_equal(read_generation(f->store, "acme", "latest"), WRITES);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_a_private_environment_with_this_builds_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_creates_missing_parent_directories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_another_schema_and_reports_the_one_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_open_creates_nothing_but_can_record_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_round_trip_keeps_generation_versions_rollout_and_countries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_with_no_rollout_reads_back_empty_and_unpaused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_put_refuses_more_countries_than_the_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_list_names_only_that_apps_channels_in_key_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pins_set_replaces_the_pinned_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_create_twice_is_eexist_and_keeps_the_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_put_twice_is_eexist_and_get_returns_the_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aborted_write_leaves_nothing_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_round_trips_through_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_blocks_and_blockmap_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_replace_marks_a_release_pulled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_export_import_replays_the_state_on_another_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_import_refuses_a_document_with_an_invalid_record_and_keeps_the_last_state, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_release_put_of_a_registered_version_is_eexist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nupkg_name_of_another_version_is_a_conflict_and_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_get_returns_size_kind_and_the_raw_sha512, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_list_walks_one_apps_releases_in_key_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feed_put_get_clear_and_the_etag_is_xxh3_of_the_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_schema_2_store_is_migrated_with_its_clients_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_schema_3_store_is_migrated_with_its_block_digests_tagged_xxh3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offered_merges_are_idempotent_exact_while_small_and_within_two_percent_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_long_or_separator_bearing_keys_are_never_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_transaction_is_reused_and_sees_commits_made_after_it_ended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_transaction_keeps_its_snapshot_while_a_write_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_read_begin_on_one_thread_is_refused, setup, teardown),
#ifdef COUNT_ALLOCATIONS
        cmocka_unit_test_setup_teardown(test_read_path_allocates_nothing_after_the_first_use, setup, teardown),
#endif
        cmocka_unit_test_setup_teardown(test_two_processes_see_each_others_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_thread_sees_whole_commits_while_a_writer_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_schema_4_store_gains_the_control_planes_records_when_opened_for_writing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_compact_copy_opens_as_a_store_with_the_same_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_are_replaced_listed_and_a_missing_one_is_not_created_by_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members_are_created_once_replaced_listed_and_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drafts_are_listed_per_app_and_left_out_of_the_published_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_records_keep_sequence_order_past_255_and_are_never_overwritten, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
