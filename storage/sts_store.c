#include "storage/sts_store.h"

#include <errno.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"

#define MAP_SIZE ((size_t)1 << 30) /* 1 GiB of address space: members, proposals and documents are small */

static const char *const db_names[UPD_STS_DB_COUNT] = {"members",       "creds",  "grants",      "enrol", "proposals",
                                                      "proposal_docs", "signed", "signed_docs", "audit", "meta"};

struct st_upd_sts_store_t {
    MDB_env *env;
    MDB_dbi dbi[UPD_STS_DB_COUNT];
};

struct st_upd_sts_txn_t {
    upd_sts_store_t *store;
    MDB_txn *txn;
};

static int
lmdb_fail(const char *what, int rc)
{
    upd_log_error("sts lmdb: %s: %s", what, mdb_strerror(rc));
    return UPD_ESTORE;
}

static int
open_dbs(upd_sts_store_t *store, bool create)
{
    MDB_txn *txn;
    MDB_val key = {.mv_size = 6, .mv_data = "schema"}, val;
    char schema[16];
    int rc, ret;

    if ((rc = mdb_txn_begin(store->env, NULL, 0, &txn)) != 0)
        return lmdb_fail("begin", rc);
    for (int i = 0; i != UPD_STS_DB_COUNT; ++i) {
        if ((rc = mdb_dbi_open(txn, db_names[i], create ? MDB_CREATE : 0, &store->dbi[i])) != 0) {
            ret = rc == MDB_NOTFOUND ? UPD_ENOTFOUND : lmdb_fail(db_names[i], rc);
            goto Exit;
        }
    }
    snprintf(schema, sizeof(schema), "%d", UPD_STS_STORE_SCHEMA);
    if ((rc = mdb_get(txn, store->dbi[UPD_STS_DB_META], &key, &val)) == MDB_NOTFOUND) {
        val = (MDB_val){.mv_size = strlen(schema), .mv_data = schema};
        if ((rc = mdb_put(txn, store->dbi[UPD_STS_DB_META], &key, &val, 0)) != 0) {
            ret = lmdb_fail("schema", rc);
            goto Exit;
        }
    } else if (rc != 0) {
        ret = lmdb_fail("schema", rc);
        goto Exit;
    } else if (val.mv_size != strlen(schema) || memcmp(val.mv_data, schema, val.mv_size) != 0) {
        upd_log_error("sts lmdb: schema %.*s, this build reads %s", (int)val.mv_size, (const char *)val.mv_data, schema);
        ret = UPD_ESCHEMA;
        goto Exit;
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? 0 : lmdb_fail("commit", rc);
Exit:
    mdb_txn_abort(txn);
    return ret;
}

int
upd_sts_store_open(const char *data_dir, bool create, upd_sts_store_t **out)
{
    char path[4096];
    upd_sts_store_t *store;
    struct stat st;
    int rc, ret;

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/lmdb", data_dir) >= (int)sizeof(path))
        return UPD_EINVAL;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT || !create)
            return errno == ENOENT ? UPD_ENOTFOUND : UPD_EIO;
        if (mkdir(path, 0700) != 0) {
            upd_log_error("sts lmdb: mkdir %s: %s", path, strerror(errno));
            return UPD_EIO;
        }
    }
    if ((store = calloc(1, sizeof(*store))) == NULL)
        return UPD_ENOMEM;
    if ((rc = mdb_env_create(&store->env)) != 0 || (rc = mdb_env_set_maxdbs(store->env, UPD_STS_DB_COUNT)) != 0 ||
        (rc = mdb_env_set_mapsize(store->env, MAP_SIZE)) != 0 || (rc = mdb_env_open(store->env, path, MDB_NOTLS, 0600)) != 0) {
        ret = lmdb_fail(path, rc);
        goto Fail;
    }
    if ((ret = open_dbs(store, create)) != 0)
        goto Fail;
    *out = store;
    return 0;
Fail:
    if (store->env != NULL)
        mdb_env_close(store->env);
    free(store);
    return ret;
}

void
upd_sts_store_close(upd_sts_store_t *store)
{
    if (store == NULL)
        return;
    mdb_env_close(store->env);
    free(store);
}

int
upd_sts_txn_begin(upd_sts_store_t *store, bool write, upd_sts_txn_t **out)
{
    upd_sts_txn_t *t;
    int rc;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return UPD_ENOMEM;
    t->store = store;
    if ((rc = mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, &t->txn)) != 0) {
        free(t);
        return lmdb_fail("begin", rc);
    }
    *out = t;
    return 0;
}

int
upd_sts_txn_commit(upd_sts_txn_t *txn)
{
    int rc = mdb_txn_commit(txn->txn);
    free(txn);
    return rc == 0 ? 0 : lmdb_fail("commit", rc);
}

void
upd_sts_txn_abort(upd_sts_txn_t *txn)
{
    if (txn == NULL)
        return;
    mdb_txn_abort(txn->txn);
    free(txn);
}

int
upd_sts_get(upd_sts_txn_t *txn, upd_sts_db_t db, const void *key, size_t key_len, const void **val, size_t *val_len)
{
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key}, v;
    int rc;
    if (key_len == 0 || key_len > 511)
        return UPD_ENOTFOUND;
    if ((rc = mdb_get(txn->txn, txn->store->dbi[db], &k, &v)) != 0)
        return rc == MDB_NOTFOUND ? UPD_ENOTFOUND : lmdb_fail(db_names[db], rc);
    *val = v.mv_data;
    *val_len = v.mv_size;
    return 0;
}

int
upd_sts_put(upd_sts_txn_t *txn, upd_sts_db_t db, const void *key, size_t key_len, const void *val, size_t val_len)
{
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key}, v = {.mv_size = val_len, .mv_data = (void *)val};
    int rc;
    if (key_len == 0 || key_len > 511)
        return UPD_EINVAL;
    if ((rc = mdb_put(txn->txn, txn->store->dbi[db], &k, &v, 0)) != 0)
        return lmdb_fail(db_names[db], rc);
    return 0;
}

int
upd_sts_del(upd_sts_txn_t *txn, upd_sts_db_t db, const void *key, size_t key_len)
{
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    int rc;
    if (key_len == 0 || key_len > 511)
        return UPD_ENOTFOUND;
    if ((rc = mdb_del(txn->txn, txn->store->dbi[db], &k, NULL)) != 0)
        return rc == MDB_NOTFOUND ? UPD_ENOTFOUND : lmdb_fail(db_names[db], rc);
    return 0;
}

int
upd_sts_get_json(upd_sts_txn_t *txn, upd_sts_db_t db, const void *key, size_t key_len, json_t **out)
{
    const void *v;
    size_t n;
    int ret;
    if ((ret = upd_sts_get(txn, db, key, key_len, &v, &n)) != 0)
        return ret;
    if ((*out = json_loadb(v, n, JSON_REJECT_DUPLICATES, NULL)) == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        upd_log_error("sts lmdb: %s: a stored value is not a JSON object", db_names[db]);
        return UPD_EINVAL;
    }
    return 0;
}

int
upd_sts_put_json(upd_sts_txn_t *txn, upd_sts_db_t db, const void *key, size_t key_len, const json_t *val)
{
    char *s = json_dumps(val, JSON_COMPACT | JSON_SORT_KEYS);
    int ret;
    if (s == NULL)
        return UPD_ENOMEM;
    ret = upd_sts_put(txn, db, key, key_len, s, strlen(s));
    free(s);
    return ret;
}

int
upd_sts_each(upd_sts_txn_t *txn, upd_sts_db_t db, const void *prefix, size_t prefix_len,
             int (*fn)(const void *key, size_t key_len, const void *val, size_t val_len, void *arg), void *arg)
{
    MDB_cursor *cur;
    MDB_val k = {.mv_size = prefix_len, .mv_data = (void *)prefix}, v;
    int rc, ret = 0;
    if ((rc = mdb_cursor_open(txn->txn, txn->store->dbi[db], &cur)) != 0)
        return lmdb_fail(db_names[db], rc);
    for (rc = mdb_cursor_get(cur, &k, &v, prefix_len == 0 ? MDB_FIRST : MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (prefix_len != 0 && (k.mv_size < prefix_len || memcmp(k.mv_data, prefix, prefix_len) != 0))
            break;
        if ((ret = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND)
        return lmdb_fail(db_names[db], rc);
    return ret;
}

bool
upd_sts_member_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i != n; ++i) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

/* ---- audit ---- */

static void
put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; --i, v >>= 8)
        p[i] = (uint8_t)v;
}

/* Lowercase hex SHA-256 of the record's compact sorted JSON without "hash". */
static int
record_hash(const json_t *record, char hex[65])
{
    json_t *copy = json_deep_copy(record);
    unsigned char md[32];
    unsigned int mdlen = 0;
    char *s;
    if (copy == NULL)
        return UPD_ENOMEM;
    json_object_del(copy, "hash");
    s = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    if (s == NULL)
        return UPD_ENOMEM;
    if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        free(s);
        return UPD_ENOMEM;
    }
    free(s);
    upd_hex_encode(md, 32, hex);
    hex[64] = '\0';
    return 0;
}

/* The head: {"seq":N,"hash":"..."}; seq 0 and "" when the chain is empty. */
static int
audit_head(upd_sts_txn_t *txn, uint64_t *seq, char hash[65])
{
    json_t *head;
    int ret = upd_sts_get_json(txn, UPD_STS_DB_META, "audit_head", 10, &head);
    *seq = 0;
    hash[0] = '\0';
    if (ret == UPD_ENOTFOUND)
        return 0;
    if (ret != 0)
        return ret;
    *seq = (uint64_t)json_integer_value(json_object_get(head, "seq"));
    snprintf(hash, 65, "%s", json_string_value(json_object_get(head, "hash")) != NULL ? json_string_value(json_object_get(head, "hash")) : "");
    json_decref(head);
    return 0;
}

int
upd_sts_audit_append(upd_sts_txn_t *txn, json_t *record, uint64_t *seq_out)
{
    uint64_t seq;
    char prev[65], hash[65];
    uint8_t key[8];
    json_t *head;
    int ret;

    if ((ret = audit_head(txn, &seq, prev)) != 0)
        return ret;
    ++seq;
    json_object_set_new(record, "seq", json_integer((json_int_t)seq));
    if (json_object_get(record, "at") == NULL)
        json_object_set_new(record, "at", json_integer((json_int_t)time(NULL)));
    json_object_set_new(record, "prev", json_string(prev));
    if ((ret = record_hash(record, hash)) != 0)
        return ret;
    json_object_set_new(record, "hash", json_string(hash));
    put_be64(key, seq);
    if ((ret = upd_sts_put_json(txn, UPD_STS_DB_AUDIT, key, sizeof(key), record)) != 0)
        return ret;
    head = json_pack("{s:I,s:s}", "seq", (json_int_t)seq, "hash", hash);
    if (head == NULL)
        return UPD_ENOMEM;
    ret = upd_sts_put_json(txn, UPD_STS_DB_META, "audit_head", 10, head);
    json_decref(head);
    if (ret == 0 && seq_out != NULL)
        *seq_out = seq;
    return ret;
}

struct verify_ctx {
    uint64_t count, bad;
    char prev[65];
};

static int
verify_one(const void *key, size_t key_len, const void *val, size_t val_len, void *arg)
{
    struct verify_ctx *c = arg;
    json_t *r = json_loadb(val, val_len, 0, NULL);
    char hash[65];
    const char *stored, *prev;
    int bad = 1;
    c->bad = c->count + 1;
    if (r != NULL && (uint64_t)json_integer_value(json_object_get(r, "seq")) == c->count + 1 &&
        (stored = json_string_value(json_object_get(r, "hash"))) != NULL &&
        (prev = json_string_value(json_object_get(r, "prev"))) != NULL && strcmp(prev, c->prev) == 0 &&
        record_hash(r, hash) == 0 && strcmp(hash, stored) == 0) {
        bad = 0;
        ++c->count;
        memcpy(c->prev, hash, sizeof(hash));
    }
    json_decref(r);
    return bad;
}

int
upd_sts_audit_verify(upd_sts_txn_t *txn, uint64_t *count, uint64_t *bad_seq)
{
    struct verify_ctx c = {0};
    uint64_t head_seq;
    char head_hash[65];
    int ret = upd_sts_each(txn, UPD_STS_DB_AUDIT, NULL, 0, verify_one, &c);
    *count = c.count;
    *bad_seq = 0;
    if (ret < 0)
        return ret;
    if (ret > 0) {
        *bad_seq = c.bad;
        return UPD_EINTEGRITY;
    }
    if ((ret = audit_head(txn, &head_seq, head_hash)) != 0)
        return ret;
    if (head_seq != c.count || strcmp(head_hash, c.prev) != 0) {
        *bad_seq = c.count + 1;
        return UPD_EINTEGRITY;
    }
    return 0;
}
