/*
 * The LMDB store (see store.h for the layout). Two things shape this file:
 *
 * - The origin's hot path (read_begin, channel_get, pin_has, feed_get, client_seen_has, file_get, txn_end) must not
 *   allocate once a thread has used it: each thread keeps one read transaction in a pthread TLS slot, reset at the end
 *   and renewed at the next begin, and every key is built in a stack buffer bounded by the id maxima of ids.h.
 * - Several processes share the environment (updraft-control writes, updraft-origin reads and records clients), which
 *   LMDB supports through its lock file: so no MDB_NOLOCK. Without MDB_NOTLS LMDB binds a reader slot to a thread,
 *   which is what the per-thread reusable transaction needs anyway.
 */
#include "storage/store.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "base/err.h"
#include "base/le.h"
#include "base/log.h"
#include "domain/hll.h"

#define DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define MAX_DBS 16
#define MAX_READERS 126

/* Longest key any sub-database uses: APP/CHANNEL/VERSION/CLIENT in pins (321 bytes), under LMDB's default 511. */
#define KEY_MAX 512
/* Feed variants are short names chosen by the renderer ("electron:windows", "download:mac:arm64:dmg"). */
#define VARIANT_MAX 128
/* API key ids (hex) */
#define KEY_ID_MAX 128

enum {
    DB_META,
    DB_APPS,
    DB_CHANNELS,
    DB_PINS,
    DB_RELEASES,
    DB_FILES,
    DB_NUPKGS,
    DB_FEEDS,
    DB_OFFERED,
    DB_KEYS,
    DB_BLOCKS,
    DB_MEMBERS,
    DB_DRAFTS,
    DB_AUDIT,
    DB_COUNT
};

static const char *const db_names[DB_COUNT] = {"meta",  "apps",   "channels", "pins",    "releases", "files",  "nupkgs",
                                               "feeds", "offered", "keys",    "blocks",  "members",  "drafts", "audit"};

/* Schema 2 kept one record per client offered a version, in "clients"; schema 3 folds them into sketches. */
#define SCHEMA_WITH_CLIENT_RECORDS 2
static int migrate_clients(MDB_txn *txn, upd_store_t *store);
/* Schemas 2 and 3 kept blocks records without an algorithm: XXH3-128 digests; schema 4 tags each record. */
#define SCHEMA_WITH_UNTAGGED_BLOCKS 3
/* Schema 4 had no members, drafts or audit sub-databases: opening it for writing creates them (MDB_CREATE). */
#define SCHEMA_WITHOUT_RECORDS 4
static int migrate_blocks(MDB_txn *txn, upd_store_t *store);
static bool blocks_untagged(size_t len);
static void blocks_tag(uint8_t *out, const uint8_t *old, size_t len);
/* The blocks record: uint32 block size, uint8 algorithm, digests. */
#define BLOCKS_HEAD 5

struct st_upd_store_txn_t {
    upd_store_t *store;
    MDB_txn *txn;
    bool write;
    bool active; /* a reader between read_begin and txn_end */
    /* every thread's reader is linked into its store, so that closing the store frees them all */
    upd_store_txn_t *prev, *next;
};

struct st_upd_store_t {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    uint32_t schema_found;
    bool key_created;
    pthread_key_t reader_key;
    pthread_mutex_t readers_mutex;
    upd_store_txn_t *readers;
};

/* ---- helpers ---- */

static int
lmdb_fail(const char *what, int rc)
{
    upd_log_error("lmdb: %s: %s", what, mdb_strerror(rc));
    return UPD_ESTORE;
}







/* A key of '/'-separated parts, built on the stack. */
struct keybuf {
    size_t len;
    char buf[KEY_MAX];
};

/* Declares an empty key. Only len is set: an initializer would zero the whole buffer on every lookup of the hot path. */
#define KEYBUF(k)                                                                                                                  \
    struct keybuf k;                                                                                                               \
    k.len = 0

/* Appends one part; false when it is empty, longer than max, or holds the separator (it would alias another key). */
static bool
key_add(struct keybuf *k, const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max || memchr(s, '/', len) != NULL || k->len + 1 + len > sizeof(k->buf))
        return false;
    if (k->len != 0)
        k->buf[k->len++] = '/';
    memcpy(k->buf + k->len, s, len);
    k->len += len;
    return true;
}

/* strnlen bounds the scan: a string longer than max is refused without reading all of it */
static bool
key_add_str(struct keybuf *k, const char *s, size_t max)
{
    return key_add(k, s, strnlen(s, max + 1), max);
}

/* Ends a prefix with the separator, so "app/beta/" does not also match "app/beta-2/...". */
static void
key_end_prefix(struct keybuf *k)
{
    k->buf[k->len++] = '/';
}

static MDB_val
key_val(struct keybuf *k)
{
    return (MDB_val){.mv_size = k->len, .mv_data = k->buf};
}

static int
db_get(upd_store_txn_t *txn, int db, struct keybuf *k, MDB_val *v)
{
    MDB_val key = key_val(k);
    int rc = mdb_get(txn->txn, txn->store->dbi[db], &key, v);
    if (rc == MDB_NOTFOUND)
        return UPD_ENOTFOUND;
    return rc == 0 ? 0 : lmdb_fail("get", rc);
}

static int
db_put(upd_store_txn_t *txn, int db, struct keybuf *k, const void *data, size_t len, unsigned flags)
{
    MDB_val key = key_val(k), val = {.mv_size = len, .mv_data = (void *)data};
    int rc = mdb_put(txn->txn, txn->store->dbi[db], &key, &val, flags);
    if (rc == MDB_KEYEXIST)
        return UPD_EEXIST;
    return rc == 0 ? 0 : lmdb_fail("put", rc);
}

/*
 * Calls fn for every entry whose key starts with prefix, in key order. fn returns 0 to go on, 1 to stop, or a negative
 * UPD_E* code that ends the walk with it.
 */
static int
walk_prefix(upd_store_txn_t *txn, int db, struct keybuf *prefix, int (*fn)(MDB_val *key, MDB_val *val, void *arg), void *arg)
{
    MDB_cursor *cur;
    MDB_val key = key_val(prefix), val;
    int rc, ret = 0;

    if ((rc = mdb_cursor_open(txn->txn, txn->store->dbi[db], &cur)) != 0)
        return lmdb_fail("cursor open", rc);
    /* LMDB refuses an empty key for MDB_SET_RANGE: the empty prefix starts at the first entry */
    for (rc = mdb_cursor_get(cur, &key, &val, prefix->len == 0 ? MDB_FIRST : MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size < prefix->len || memcmp(key.mv_data, prefix->buf, prefix->len) != 0)
            break;
        if ((ret = fn(&key, &val, arg)) != 0)
            break;
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        ret = lmdb_fail("cursor get", rc);
    mdb_cursor_close(cur);
    return ret < 0 ? ret : 0;
}

/* Deletes every entry whose key starts with prefix. */
static int
delete_prefix(upd_store_txn_t *txn, int db, struct keybuf *prefix)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if ((rc = mdb_cursor_open(txn->txn, txn->store->dbi[db], &cur)) != 0)
        return lmdb_fail("cursor open", rc);
    /* seek again after each delete rather than rely on where mdb_cursor_del leaves the cursor */
    for (;;) {
        key = key_val(prefix);
        if ((rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE)) != 0)
            break;
        if (key.mv_size < prefix->len || memcmp(key.mv_data, prefix->buf, prefix->len) != 0)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : lmdb_fail("delete", rc);
}

/* ---- open and close ---- */

static int
mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; ++p) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}

/* Runs when a thread that used the store exits: its reader's transaction goes with it. */
static void
on_thread_exit(void *p)
{
    upd_store_txn_t *r = p;
    upd_store_t *store = r->store;
    pthread_mutex_lock(&store->readers_mutex);
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        store->readers = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&store->readers_mutex);
    mdb_txn_abort(r->txn);
    free(r);
}

/* Whether an environment of this schema is brought to UPD_STORE_SCHEMA when opened for writing. */
static bool
schema_migrates(uint32_t schema)
{
    return schema == SCHEMA_WITH_CLIENT_RECORDS || schema == SCHEMA_WITH_UNTAGGED_BLOCKS || schema == SCHEMA_WITHOUT_RECORDS;
}

/* Opens the sub-databases and checks (or, in a new environment, writes) the schema, in one transaction. */
static int
open_dbs(upd_store_t *store, bool read_only)
{
    MDB_txn *txn;
    MDB_val key = {.mv_size = 6, .mv_data = "schema"}, val;
    uint8_t schema[4];
    int rc, ret = UPD_ESTORE;

    /* a read transaction may open existing sub-databases; only creating them needs the write lock */
    if ((rc = mdb_txn_begin(store->env, NULL, read_only ? MDB_RDONLY : 0, &txn)) != 0)
        return lmdb_fail("begin", rc);
    /* meta first: when the schema differs nothing else is opened, let alone created */
    for (int i = 0; i != DB_COUNT; ++i) {
        if ((rc = mdb_dbi_open(txn, db_names[i], read_only ? 0 : MDB_CREATE, &store->dbi[i])) != 0) {
            ret = rc == MDB_NOTFOUND ? UPD_ENOTFOUND : lmdb_fail(db_names[i], rc);
            goto Exit;
        }
        if (i != DB_META)
            continue;
        rc = mdb_get(txn, store->dbi[DB_META], &key, &val);
        if (rc == 0) {
            store->schema_found = val.mv_size == sizeof(schema) ? upd_get_le32(val.mv_data) : 0;
        } else if (rc == MDB_NOTFOUND && !read_only) {
            upd_put_le32(schema, UPD_STORE_SCHEMA);
            val = (MDB_val){.mv_size = sizeof(schema), .mv_data = schema};
            if ((rc = mdb_put(txn, store->dbi[DB_META], &key, &val, 0)) != 0) {
                ret = lmdb_fail("schema", rc);
                goto Exit;
            }
            store->schema_found = UPD_STORE_SCHEMA;
        } else {
            ret = rc == MDB_NOTFOUND ? UPD_ENOTFOUND : lmdb_fail("schema", rc);
            goto Exit;
        }
        if (store->schema_found != UPD_STORE_SCHEMA && !(schema_migrates(store->schema_found) && !read_only)) {
            ret = UPD_ESCHEMA;
            goto Exit;
        }
    }
    if (schema_migrates(store->schema_found)) {
        /* each step in the same transaction: an interrupted migration leaves the old schema as it was */
        if (store->schema_found == SCHEMA_WITH_CLIENT_RECORDS && (ret = migrate_clients(txn, store)) != 0)
            goto Exit;
        if (store->schema_found <= SCHEMA_WITH_UNTAGGED_BLOCKS && (ret = migrate_blocks(txn, store)) != 0)
            goto Exit;
        upd_put_le32(schema, UPD_STORE_SCHEMA);
        val = (MDB_val){.mv_size = sizeof(schema), .mv_data = schema};
        if ((rc = mdb_put(txn, store->dbi[DB_META], &key, &val, 0)) != 0) {
            ret = lmdb_fail("schema", rc);
            goto Exit;
        }
        upd_log_info("lmdb: schema %u migrated to %u (%s%smembers, drafts and audit sub-databases added)", store->schema_found,
                     UPD_STORE_SCHEMA,
                     store->schema_found == SCHEMA_WITH_CLIENT_RECORDS ? "clients offered are sketches now, " : "",
                     store->schema_found <= SCHEMA_WITH_UNTAGGED_BLOCKS ? "block digests tagged with their algorithm, " : "");
        store->schema_found = UPD_STORE_SCHEMA;
    }
    /* committing keeps the handles (a read transaction included); they stay valid until the env is closed */
    rc = mdb_txn_commit(txn);
    txn = NULL;
    ret = rc == 0 ? 0 : lmdb_fail("commit", rc);
Exit:
    if (txn != NULL)
        mdb_txn_abort(txn);
    return ret;
}

int
upd_store_open(const char *data_dir, const upd_store_opts_t *opts, upd_store_t **out)
{
    char path[4096];
    bool read_only = opts != NULL && opts->read_only;
    size_t map_size = opts != NULL && opts->map_size != 0 ? opts->map_size : DEFAULT_MAP_SIZE;
    upd_store_t *store;
    int rc, ret;

    *out = NULL;
    if ((size_t)snprintf(path, sizeof(path), "%s/lmdb", data_dir) >= sizeof(path))
        return UPD_EINVAL;
    if (!read_only && mkdir_p(path, 0700) != 0) {
        upd_log_error("cannot create %s: %s", path, strerror(errno));
        return UPD_EIO;
    }
    if (read_only) {
        /* mdb_env_open would create data.mdb in an existing, empty directory */
        char data[sizeof(path) + 16];
        struct stat st;
        snprintf(data, sizeof(data), "%s/data.mdb", path);
        if (stat(data, &st) != 0)
            return UPD_ENOTFOUND;
    }
    if ((store = calloc(1, sizeof(*store))) == NULL)
        return UPD_ENOMEM;
    pthread_mutex_init(&store->readers_mutex, NULL);

    if ((rc = mdb_env_create(&store->env)) != 0) {
        store->env = NULL;
        ret = lmdb_fail("env create", rc);
        goto Error;
    }
    if ((rc = mdb_env_set_maxdbs(store->env, MAX_DBS)) != 0 || (rc = mdb_env_set_maxreaders(store->env, MAX_READERS)) != 0 ||
        (rc = mdb_env_set_mapsize(store->env, map_size)) != 0) {
        ret = lmdb_fail("env settings", rc);
        goto Error;
    }
    if ((rc = mdb_env_open(store->env, path, 0, 0600)) != 0) {
        ret = read_only && rc == ENOENT ? UPD_ENOTFOUND : lmdb_fail(path, rc);
        goto Error;
    }
    /* slots left by a process that died inside a read transaction would pin old pages forever */
    int dead;
    mdb_reader_check(store->env, &dead);
    if ((ret = open_dbs(store, read_only)) != 0) {
        if (ret == UPD_ESCHEMA) {
            /* handed back so the caller can say which schema it found; it can do nothing else with it */
            mdb_env_close(store->env);
            store->env = NULL;
            *out = store;
            return ret;
        }
        goto Error;
    }
    if (pthread_key_create(&store->reader_key, on_thread_exit) != 0) {
        upd_log_error("lmdb: no thread-specific key left for the readers");
        ret = UPD_ESTORE;
        goto Error;
    }
    store->key_created = true;
    *out = store;
    return 0;

Error:
    upd_store_close(store);
    return ret;
}

void
upd_store_close(upd_store_t *store)
{
    if (store == NULL)
        return;
    /* the readers of threads still alive; their TLS slots die with the key (no destructor runs after the delete) */
    if (store->key_created)
        pthread_key_delete(store->reader_key);
    while (store->readers != NULL) {
        upd_store_txn_t *r = store->readers;
        store->readers = r->next;
        mdb_txn_abort(r->txn);
        free(r);
    }
    if (store->env != NULL)
        mdb_env_close(store->env);
    pthread_mutex_destroy(&store->readers_mutex);
    free(store);
}

uint32_t
upd_store_schema_found(const upd_store_t *store)
{
    return store->schema_found;
}

/* ---- transactions ---- */

int
upd_store_read_begin(upd_store_t *store, upd_store_txn_t **out)
{
    upd_store_txn_t *r = pthread_getspecific(store->reader_key);
    int rc;

    if (r == NULL) {
        /* this thread's first read: the only allocation a reader ever makes */
        if ((r = calloc(1, sizeof(*r))) == NULL)
            return UPD_ENOMEM;
        r->store = store;
        if ((rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &r->txn)) != 0) {
            free(r);
            return lmdb_fail("read begin", rc);
        }
        if (pthread_setspecific(store->reader_key, r) != 0) {
            mdb_txn_abort(r->txn);
            free(r);
            upd_log_error("lmdb: cannot keep this thread's reader");
            return UPD_ESTORE;
        }
        pthread_mutex_lock(&store->readers_mutex);
        if ((r->next = store->readers) != NULL)
            r->next->prev = r;
        store->readers = r;
        pthread_mutex_unlock(&store->readers_mutex);
    } else {
        /* LMDB binds one reader slot to a thread: a second read transaction here would fail inside LMDB anyway */
        if (r->active) {
            upd_log_error("lmdb: a read transaction is already open on this thread");
            return UPD_ESTORE;
        }
        if ((rc = mdb_txn_renew(r->txn)) != 0)
            return lmdb_fail("read renew", rc);
    }
    r->active = true;
    *out = r;
    return 0;
}

int
upd_store_write_begin(upd_store_t *store, upd_store_txn_t **out)
{
    upd_store_txn_t *w;
    int rc;

    if ((w = calloc(1, sizeof(*w))) == NULL)
        return UPD_ENOMEM;
    w->store = store;
    w->write = true;
    if ((rc = mdb_txn_begin(store->env, NULL, 0, &w->txn)) != 0) {
        free(w);
        return lmdb_fail("write begin", rc);
    }
    *out = w;
    return 0;
}

int
upd_store_commit(upd_store_txn_t *txn)
{
    if (!txn->write) {
        upd_store_txn_end(txn);
        return 0;
    }
    int rc = mdb_txn_commit(txn->txn); /* frees the MDB_txn, even when it fails */
    free(txn);
    return rc == 0 ? 0 : lmdb_fail("commit", rc);
}

void
upd_store_txn_end(upd_store_txn_t *txn)
{
    if (txn->write) {
        mdb_txn_abort(txn->txn);
        free(txn);
    } else if (txn->active) {
        /* reset, not abort: the MDB_txn and its reader slot are kept for this thread's next read */
        mdb_txn_reset(txn->txn);
        txn->active = false;
    }
}

/* ---- channel state ---- */

/*
 * The packed channel record, little-endian:
 *   "UC" u16 format | u64 generation | u64 seed | u32 percent_bp | u8 flags (bit 0: paused)
 *   | u8 len + stable | u8 len + rollout_version | u16 ncountries + 2 bytes each
 */
#define CHANNEL_FORMAT 1
#define CHANNEL_FIXED 25
#define CHANNEL_PAUSED 0x1
#define CHANNEL_MAX (CHANNEL_FIXED + 2 * (1 + UPD_VERSION_MAX) + 2 + 2 * UPD_ROLLOUT_MAX_COUNTRIES)

int
upd_store_channel_get(upd_store_txn_t *txn, const char *app, const char *channel, upd_channel_t *out)
{
    KEYBUF(k);
    MDB_val v;
    int err;

    if (!key_add_str(&k, app, UPD_ID_MAX) || !key_add_str(&k, channel, UPD_ID_MAX))
        return UPD_ENOTFOUND;
    if ((err = db_get(txn, DB_CHANNELS, &k, &v)) != 0)
        return err;

    const uint8_t *p = v.mv_data, *end = p + v.mv_size;
    if (v.mv_size < CHANNEL_FIXED + 1 || p[0] != 'U' || p[1] != 'C' || upd_get_le16(p + 2) != CHANNEL_FORMAT)
        goto Corrupt;
    out->generation = upd_get_le64(p + 4);
    out->rollout.seed = upd_get_le64(p + 12);
    out->rollout.percent_bp = upd_get_le32(p + 20);
    out->rollout.paused = (p[24] & CHANNEL_PAUSED) != 0;
    p += CHANNEL_FIXED;
    char *strs[2] = {out->stable, out->rollout_version};
    for (int i = 0; i != 2; ++i) {
        size_t len = *p++;
        if (len > UPD_VERSION_MAX || (size_t)(end - p) < len + 1)
            goto Corrupt;
        memcpy(strs[i], p, len);
        strs[i][len] = '\0';
        p += len;
    }
    if (end - p < 2)
        goto Corrupt;
    size_t n = upd_get_le16(p);
    p += 2;
    if (n > UPD_ROLLOUT_MAX_COUNTRIES || (size_t)(end - p) != 2 * n)
        goto Corrupt;
    /* points into the map even when empty, so callers may memcpy from it without a NULL check */
    out->rollout.countries = (const char *)p;
    out->rollout.ncountries = n;
    return 0;

Corrupt:
    upd_log_error("lmdb: channel record %.*s is corrupt", (int)k.len, k.buf);
    return UPD_ESTORE;
}

int
upd_store_channel_put(upd_store_txn_t *txn, const char *app, const char *channel, const upd_channel_t *ch)
{
    KEYBUF(k);
    uint8_t rec[CHANNEL_MAX], *p = rec;

    if (!key_add_str(&k, app, UPD_ID_MAX) || !key_add_str(&k, channel, UPD_ID_MAX))
        return UPD_EINVAL;
    if (ch->rollout.ncountries > UPD_ROLLOUT_MAX_COUNTRIES)
        return UPD_ETOOBIG;
    /* built in full before the put: ch->rollout.countries may point into a page the put rewrites */
    p[0] = 'U';
    p[1] = 'C';
    upd_put_le16(p + 2, CHANNEL_FORMAT);
    upd_put_le64(p + 4, ch->generation);
    upd_put_le64(p + 12, ch->rollout.seed);
    upd_put_le32(p + 20, ch->rollout.percent_bp);
    p[24] = ch->rollout.paused ? CHANNEL_PAUSED : 0;
    p += CHANNEL_FIXED;
    const char *strs[2] = {ch->stable, ch->rollout_version};
    for (int i = 0; i != 2; ++i) {
        size_t len = strnlen(strs[i], UPD_VERSION_MAX + 1);
        if (len > UPD_VERSION_MAX)
            return UPD_ETOOBIG;
        *p++ = (uint8_t)len;
        memcpy(p, strs[i], len);
        p += len;
    }
    upd_put_le16(p, (uint16_t)ch->rollout.ncountries);
    p += 2;
    if (ch->rollout.ncountries != 0) {
        memcpy(p, ch->rollout.countries, 2 * ch->rollout.ncountries);
        p += 2 * ch->rollout.ncountries;
    }
    return db_put(txn, DB_CHANNELS, &k, rec, (size_t)(p - rec), 0);
}

struct name_walk {
    size_t skip; /* the prefix's length */
    size_t max;
    int (*cb)(const char *name, void *arg);
    void *arg;
};

/* Hands the key's last part to the callback as a NUL-terminated copy. */
static int
on_name(MDB_val *key, MDB_val *val, void *arg)
{
    struct name_walk *w = arg;
    char name[UPD_CLIENT_ID_MAX + 1];
    size_t len = key->mv_size - w->skip;
    if (len > w->max || len >= sizeof(name))
        return 0; /* not a key this store writes */
    memcpy(name, (const char *)key->mv_data + w->skip, len);
    name[len] = '\0';
    return w->cb(name, w->arg) != 0;
}

int
upd_store_channel_list(upd_store_txn_t *txn, const char *app, int (*cb)(const char *channel, void *arg), void *arg)
{
    KEYBUF(k);
    if (!key_add_str(&k, app, UPD_ID_MAX))
        return 0; /* no such app: nothing to list */
    key_end_prefix(&k);
    struct name_walk w = {.skip = k.len, .max = UPD_ID_MAX, .cb = cb, .arg = arg};
    return walk_prefix(txn, DB_CHANNELS, &k, on_name, &w);
}

bool
upd_store_pin_has(upd_store_txn_t *txn, const char *app, const char *channel, const char *client, size_t client_len)
{
    KEYBUF(k);
    MDB_val v;
    if (!key_add_str(&k, app, UPD_ID_MAX) || !key_add_str(&k, channel, UPD_ID_MAX) ||
        !key_add(&k, client, client_len, UPD_CLIENT_ID_MAX))
        return false;
    return db_get(txn, DB_PINS, &k, &v) == 0;
}

int
upd_store_pins_set(upd_store_txn_t *txn, const char *app, const char *channel, const char *const *clients, size_t n)
{
    KEYBUF(prefix);
    int err;

    if (!key_add_str(&prefix, app, UPD_ID_MAX) || !key_add_str(&prefix, channel, UPD_ID_MAX))
        return UPD_EINVAL;
    struct keybuf k = prefix;
    key_end_prefix(&prefix);
    if ((err = delete_prefix(txn, DB_PINS, &prefix)) != 0)
        return err;
    for (size_t i = 0; i != n; ++i) {
        struct keybuf ck = k;
        if (!key_add_str(&ck, clients[i], UPD_CLIENT_ID_MAX))
            return UPD_EINVAL;
        if ((err = db_put(txn, DB_PINS, &ck, "", 0, 0)) != 0)
            return err;
    }
    return 0;
}

int
upd_store_pins_list(upd_store_txn_t *txn, const char *app, const char *channel, int (*cb)(const char *client, void *arg),
                    void *arg)
{
    KEYBUF(k);
    if (!key_add_str(&k, app, UPD_ID_MAX) || !key_add_str(&k, channel, UPD_ID_MAX))
        return 0;
    key_end_prefix(&k);
    struct name_walk w = {.skip = k.len, .max = UPD_CLIENT_ID_MAX, .cb = cb, .arg = arg};
    return walk_prefix(txn, DB_PINS, &k, on_name, &w);
}

/* ---- apps ---- */

/* A JSON document stored under one id (apps, keys): created once, never overwritten. */
static int
json_record_create(upd_store_txn_t *txn, int db, const char *id, size_t max, const char *json)
{
    KEYBUF(k);
    if (!key_add_str(&k, id, max))
        return UPD_EINVAL;
    return db_put(txn, db, &k, json, strlen(json), MDB_NOOVERWRITE);
}

static int
json_record_get(upd_store_txn_t *txn, int db, const char *id, size_t max, const char **json, size_t *json_len)
{
    KEYBUF(k);
    MDB_val v;
    int err;
    if (!key_add_str(&k, id, max))
        return UPD_ENOTFOUND;
    if ((err = db_get(txn, db, &k, &v)) != 0)
        return err;
    *json = v.mv_data;
    *json_len = v.mv_size;
    return 0;
}

int
upd_store_app_create(upd_store_txn_t *txn, const char *app, const char *json)
{
    return json_record_create(txn, DB_APPS, app, UPD_ID_MAX, json);
}

int
upd_store_app_get(upd_store_txn_t *txn, const char *app, const char **json, size_t *json_len)
{
    return json_record_get(txn, DB_APPS, app, UPD_ID_MAX, json, json_len);
}

/* ---- releases and their files ---- */

static bool
is_nupkg(upd_kind_t kind)
{
    return kind == UPD_KIND_NUPKG_FULL || kind == UPD_KIND_NUPKG_DELTA;
}

/* The raw digest behind the release's base64 (64 bytes: 88 characters ending in "=="). */
static int
decode_sha512(const char *b64, uint8_t out[64])
{
    uint8_t raw[UPD_SHA512_B64_LEN / 4 * 3];
    /* EVP_DecodeBlock counts the padding as decoded zero bytes: 88 characters always give 66 */
    if (strnlen(b64, UPD_SHA512_B64_LEN + 1) != UPD_SHA512_B64_LEN || b64[86] != '=' || b64[87] != '=' ||
        EVP_DecodeBlock(raw, (const unsigned char *)b64, UPD_SHA512_B64_LEN) != (int)sizeof(raw))
        return UPD_EINVAL;
    memcpy(out, raw, 64);
    return 0;
}

int
upd_store_release_put(upd_store_txn_t *txn, const upd_release_t *rel)
{
    KEYBUF(rk);
    MDB_val v;
    size_t vlen = strnlen(rel->version, UPD_VERSION_MAX + 1);
    int err;

    if (!key_add_str(&rk, rel->app, UPD_ID_MAX) || !key_add(&rk, rel->version, vlen, UPD_VERSION_MAX))
        return UPD_EINVAL;

    /* every check before the first write, so a refused release leaves the transaction as it was */
    if ((err = db_get(txn, DB_RELEASES, &rk, &v)) != UPD_ENOTFOUND)
        return err == 0 ? UPD_EEXIST : err;
    for (size_t i = 0; i != rel->nfiles; ++i) {
        const upd_file_t *f = &rel->files[i];
        KEYBUF(fk);
        uint8_t digest[64];
        if (!key_add_str(&fk, rel->app, UPD_ID_MAX) || !key_add(&fk, rel->version, vlen, UPD_VERSION_MAX) ||
            !key_add_str(&fk, f->name, UPD_FILENAME_MAX) || decode_sha512(f->sha512, digest) != 0)
            return UPD_EINVAL;
        if (!is_nupkg(f->kind))
            continue;
        KEYBUF(nk);
        key_add_str(&nk, rel->app, UPD_ID_MAX);
        key_add_str(&nk, f->name, UPD_FILENAME_MAX);
        if ((err = db_get(txn, DB_NUPKGS, &nk, &v)) == 0 && !(v.mv_size == vlen && memcmp(v.mv_data, rel->version, vlen) == 0))
            return UPD_ECONFLICT;
        if (err != 0 && err != UPD_ENOTFOUND)
            return err;
    }

    json_t *j = upd_release_to_json(rel);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL)
        return UPD_ENOMEM;
    err = db_put(txn, DB_RELEASES, &rk, text, strlen(text), MDB_NOOVERWRITE);
    free(text);
    if (err != 0)
        return err;

    for (size_t i = 0; i != rel->nfiles; ++i) {
        const upd_file_t *f = &rel->files[i];
        KEYBUF(fk);
        upd_file_rec_t rec = {.size = f->size, .platform = (uint8_t)f->platform, .arch = (uint8_t)f->arch, .kind = (uint8_t)f->kind};
        key_add_str(&fk, rel->app, UPD_ID_MAX);
        key_add(&fk, rel->version, vlen, UPD_VERSION_MAX);
        key_add_str(&fk, f->name, UPD_FILENAME_MAX);
        decode_sha512(f->sha512, rec.sha512);
        if ((err = db_put(txn, DB_FILES, &fk, &rec, sizeof(rec), 0)) != 0)
            return err;
        if (f->nblocks != 0) {
            /* little-endian block size, the algorithm, then the digests */
            size_t dlen = upd_block_digest_len(f->block_alg);
            if (dlen == 0)
                return UPD_EINVAL;
            size_t len = BLOCKS_HEAD + (size_t)f->nblocks * dlen;
            uint8_t *packed = malloc(len);
            if (packed == NULL)
                return UPD_ENOMEM;
            upd_put_le32(packed, f->block_size);
            packed[4] = (uint8_t)f->block_alg;
            memcpy(packed + BLOCKS_HEAD, f->blocks, len - BLOCKS_HEAD);
            err = db_put(txn, DB_BLOCKS, &fk, packed, len, 0);
            free(packed);
            if (err != 0)
                return err;
        }
        if (f->blockmap_size >= 0 && f->blockmap_sha512[0] != '\0') {
            /* NAME.blockmap gets a record of its own, so it is served and verified like any file */
            KEYBUF(bk);
            char bm_name[UPD_FILENAME_MAX + 16];
            snprintf(bm_name, sizeof(bm_name), "%s.blockmap", f->name);
            upd_file_rec_t bm = {.size = (uint64_t)f->blockmap_size, .platform = rec.platform, .arch = rec.arch,
                                 .kind = UPD_KIND_UNKNOWN, .flags = UPD_FILE_REC_BLOCKMAP};
            key_add_str(&bk, rel->app, UPD_ID_MAX);
            key_add(&bk, rel->version, vlen, UPD_VERSION_MAX);
            if (!key_add_str(&bk, bm_name, UPD_FILENAME_MAX + 9) || decode_sha512(f->blockmap_sha512, bm.sha512) != 0)
                return UPD_EINVAL;
            if ((err = db_put(txn, DB_FILES, &bk, &bm, sizeof(bm), 0)) != 0)
                return err;
        }
        if (is_nupkg(f->kind)) {
            KEYBUF(nk);
            key_add_str(&nk, rel->app, UPD_ID_MAX);
            key_add_str(&nk, f->name, UPD_FILENAME_MAX);
            if ((err = db_put(txn, DB_NUPKGS, &nk, rel->version, vlen, 0)) != 0)
                return err;
        }
    }
    return 0;
}

int
upd_store_blocks_get(upd_store_txn_t *txn, const char *app, const char *version, const char *name, size_t name_len,
                     uint32_t *block_size, upd_block_alg_t *alg, const uint8_t **digests, size_t *n)
{
    KEYBUF(k);
    MDB_val v;
    int err;
    if (!key_add_str(&k, app, UPD_ID_MAX) || !key_add_str(&k, version, UPD_VERSION_MAX) ||
        !key_add(&k, name, name_len, UPD_FILENAME_MAX))
        return UPD_ENOTFOUND;
    if ((err = db_get(txn, DB_BLOCKS, &k, &v)) != 0)
        return err;
    const uint8_t *p = v.mv_data;
    size_t dlen = v.mv_size >= BLOCKS_HEAD ? upd_block_digest_len((upd_block_alg_t)p[4]) : 0;
    if (dlen == 0 || v.mv_size < BLOCKS_HEAD + dlen || (v.mv_size - BLOCKS_HEAD) % dlen != 0)
        return UPD_ESTORE;
    *block_size = upd_get_le32(p);
    *alg = (upd_block_alg_t)p[4];
    *digests = p + BLOCKS_HEAD;
    *n = (v.mv_size - BLOCKS_HEAD) / dlen;
    return 0;
}

int
upd_store_release_replace(upd_store_txn_t *txn, const upd_release_t *rel)
{
    KEYBUF(rk);
    MDB_val v;
    int err;
    if (!key_add_str(&rk, rel->app, UPD_ID_MAX) || !key_add_str(&rk, rel->version, UPD_VERSION_MAX))
        return UPD_EINVAL;
    if ((err = db_get(txn, DB_RELEASES, &rk, &v)) != 0)
        return err;
    json_t *j = upd_release_to_json(rel);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL)
        return UPD_ENOMEM;
    err = db_put(txn, DB_RELEASES, &rk, text, strlen(text), 0);
    free(text);
    return err;
}

static int
release_parse(MDB_val *v, upd_release_t *out)
{
    json_error_t jerr;
    json_t *j = json_loadb(v->mv_data, v->mv_size, 0, &jerr);
    int err = j != NULL ? upd_release_from_json(j, out) : UPD_EINVAL;
    json_decref(j);
    if (err != 0) {
        upd_log_error("lmdb: a release record is corrupt");
        return UPD_ESTORE;
    }
    return 0;
}

int
upd_store_release_get(upd_store_txn_t *txn, const char *app, const char *version, upd_release_t *out)
{
    KEYBUF(k);
    MDB_val v;
    int err;
    if (!key_add_str(&k, app, UPD_ID_MAX) || !key_add_str(&k, version, UPD_VERSION_MAX))
        return UPD_ENOTFOUND;
    if ((err = db_get(txn, DB_RELEASES, &k, &v)) != 0)
        return err;
    return release_parse(&v, out);
}

struct release_walk {
    int (*cb)(const upd_release_t *rel, void *arg);
    void *arg;
};

static int
on_release(MDB_val *key, MDB_val *val, void *arg)
{
    struct release_walk *w = arg;
    upd_release_t rel;
    int err;
    if ((err = release_parse(val, &rel)) != 0)
        return err;
    int stop = w->cb(&rel, w->arg) != 0;
    upd_release_dispose(&rel);
    return stop;
}

int
upd_store_release_list(upd_store_txn_t *txn, const char *app, int (*cb)(const upd_release_t *rel, void *arg), void *arg)
{
    KEYBUF(k);
    if (!key_add_str(&k, app, UPD_ID_MAX))
        return 0;
    key_end_prefix(&k);
    struct release_walk w = {.cb = cb, .arg = arg};
    return walk_prefix(txn, DB_RELEASES, &k, on_release, &w);
}

int
upd_store_file_get(upd_store_txn_t *txn, const char *app, const char *version, const char *name, size_t name_len,
                   upd_file_rec_t *out)
{
    KEYBUF(k);
    MDB_val v;
    int err;
    if (!key_add_str(&k, app, UPD_ID_MAX) || !key_add_str(&k, version, UPD_VERSION_MAX) ||
        !key_add(&k, name, name_len, UPD_FILENAME_MAX))
        return UPD_ENOTFOUND;
    if ((err = db_get(txn, DB_FILES, &k, &v)) != 0)
        return err;
    if (v.mv_size != sizeof(*out)) {
        upd_log_error("lmdb: file record %.*s is corrupt", (int)k.len, k.buf);
        return UPD_ESTORE;
    }
    /* memcpy: LMDB aligns values to 2 bytes only */
    memcpy(out, v.mv_data, sizeof(*out));
    return 0;
}

int
upd_store_nupkg_version(upd_store_txn_t *txn, const char *app, const char *name, size_t name_len, char version[UPD_VERSION_MAX + 1])
{
    KEYBUF(k);
    MDB_val v;
    int err;
    if (!key_add_str(&k, app, UPD_ID_MAX) || !key_add(&k, name, name_len, UPD_FILENAME_MAX))
        return UPD_ENOTFOUND;
    if ((err = db_get(txn, DB_NUPKGS, &k, &v)) != 0)
        return err;
    if (v.mv_size == 0 || v.mv_size > UPD_VERSION_MAX) {
        upd_log_error("lmdb: nupkg record %.*s is corrupt", (int)k.len, k.buf);
        return UPD_ESTORE;
    }
    memcpy(version, v.mv_data, v.mv_size);
    version[v.mv_size] = '\0';
    return 0;
}

/* ---- rendered feeds ---- */

#define ETAG_LEN 8

int
upd_store_feed_put(upd_store_txn_t *txn, const char *app, const char *version, const char *variant, const char *body,
                   size_t len)
{
    KEYBUF(k);
    if (!key_add_str(&k, app, UPD_ID_MAX) || !key_add_str(&k, version, UPD_VERSION_MAX) ||
        !key_add_str(&k, variant, VARIANT_MAX))
        return UPD_EINVAL;
    /* MDB_RESERVE: the etag and the body are written straight into the page, with no copy assembled first */
    MDB_val key = key_val(&k), val = {.mv_size = ETAG_LEN + len};
    int rc = mdb_put(txn->txn, txn->store->dbi[DB_FEEDS], &key, &val, MDB_RESERVE);
    if (rc != 0)
        return lmdb_fail("feed put", rc);
    upd_put_le64(val.mv_data, XXH3_64bits(body, len));
    if (len != 0)
        memcpy((uint8_t *)val.mv_data + ETAG_LEN, body, len);
    return 0;
}

int
upd_store_feed_clear(upd_store_txn_t *txn, const char *app, const char *version)
{
    KEYBUF(k);
    if (!key_add_str(&k, app, UPD_ID_MAX) || !key_add_str(&k, version, UPD_VERSION_MAX))
        return UPD_EINVAL;
    key_end_prefix(&k);
    return delete_prefix(txn, DB_FEEDS, &k);
}

int
upd_store_feed_get(upd_store_txn_t *txn, const char *app, const char *version, const char *variant, size_t variant_len,
                   const char **body, size_t *len, uint64_t *etag)
{
    KEYBUF(k);
    MDB_val v;
    int err;
    if (!key_add_str(&k, app, UPD_ID_MAX) || !key_add_str(&k, version, UPD_VERSION_MAX) ||
        !key_add(&k, variant, variant_len, VARIANT_MAX))
        return UPD_ENOTFOUND;
    if ((err = db_get(txn, DB_FEEDS, &k, &v)) != 0)
        return err;
    if (v.mv_size < ETAG_LEN) {
        upd_log_error("lmdb: feed record %.*s is corrupt", (int)k.len, k.buf);
        return UPD_ESTORE;
    }
    *etag = upd_get_le64(v.mv_data);
    *body = (const char *)v.mv_data + ETAG_LEN;
    *len = v.mv_size - ETAG_LEN;
    return 0;
}

/* ---- clients offered ---- */

static bool
offered_key(struct keybuf *k, const char *app, const char *channel, const char *version)
{
    return key_add_str(k, app, UPD_ID_MAX) && key_add_str(k, channel, UPD_ID_MAX) && key_add_str(k, version, UPD_VERSION_MAX);
}

/* Reads the stored sketch of k into h (initialised; left empty when there is none or it is unreadable). */
static int
offered_load(upd_store_txn_t *txn, struct keybuf *k, upd_hll_t *h)
{
    MDB_val v;
    upd_hll_init(h);
    int err = db_get(txn, DB_OFFERED, k, &v);
    if (err == UPD_ENOTFOUND)
        return 0;
    if (err != 0)
        return err;
    if ((err = upd_hll_decode(h, v.mv_data, v.mv_size)) == UPD_EINVAL) {
        upd_log_error("lmdb: clients-offered sketch %.*s is corrupt: counted afresh", (int)k->len, k->buf);
        return 0;
    }
    return err;
}

static int
offered_store(upd_store_txn_t *txn, struct keybuf *k, const upd_hll_t *h)
{
    uint8_t *buf = malloc(UPD_HLL_ENCODED_MAX);
    if (buf == NULL)
        return UPD_ENOMEM;
    size_t len = upd_hll_encode(h, buf);
    int err = db_put(txn, DB_OFFERED, k, buf, len, 0);
    free(buf);
    return err;
}

int
upd_store_offered_merge(upd_store_t *store, const upd_offered_t *sketches, size_t n)
{
    upd_store_txn_t *txn;
    size_t malformed = 0;
    int err;

    if ((err = upd_store_write_begin(store, &txn)) != 0)
        return err;
    for (size_t i = 0; i != n; ++i) {
        KEYBUF(k);
        upd_hll_t h;
        if (!offered_key(&k, sketches[i].app, sketches[i].channel, sketches[i].version)) {
            ++malformed; /* one bad entry must not cost the batch */
            continue;
        }
        if ((err = offered_load(txn, &k, &h)) != 0 || (err = upd_hll_merge(&h, sketches[i].sketch)) != 0 ||
            (err = offered_store(txn, &k, &h)) != 0) {
            upd_hll_dispose(&h);
            upd_store_txn_end(txn);
            return err;
        }
        upd_hll_dispose(&h);
    }
    if (malformed != 0)
        upd_log_error("clients-seen: skipped %zu malformed entries", malformed);
    return upd_store_commit(txn);
}

int
upd_store_clients_count(upd_store_txn_t *txn, const char *app, const char *channel, const char *version, uint64_t *count)
{
    KEYBUF(k);
    upd_hll_t h;
    *count = 0;
    if (!offered_key(&k, app, channel, version))
        return 0;
    int err = offered_load(txn, &k, &h);
    if (err == 0)
        *count = upd_hll_count(&h);
    upd_hll_dispose(&h);
    return err;
}

/* Schema 2 to 3: every "clients" record APP/CHANNEL/VERSION/CLIENT is added to the sketch of APP/CHANNEL/VERSION, in
 * key order (one sketch at a time), then the old sub-database is deleted. Runs inside the opening write transaction,
 * so an interrupted migration leaves schema 2 as it was. */
static int
migrate_clients(MDB_txn *mtxn, upd_store_t *store)
{
    MDB_dbi old;
    MDB_cursor *cur;
    MDB_val key, val;
    int rc, ret = 0;
    size_t migrated = 0;
    upd_store_txn_t txn = {.store = store, .txn = mtxn, .write = true};
    KEYBUF(cur_key);
    upd_hll_t h;

    if ((rc = mdb_dbi_open(mtxn, "clients", 0, &old)) == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return lmdb_fail("clients", rc);
    if ((rc = mdb_cursor_open(mtxn, old, &cur)) != 0)
        return lmdb_fail("cursor open", rc);
    upd_hll_init(&h);
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        const char *p = key.mv_data, *slash = memrchr(p, '/', key.mv_size);
        if (slash == NULL || slash == p || (size_t)(slash - p) >= sizeof(cur_key.buf))
            continue;
        size_t prefix = (size_t)(slash - p), client_len = key.mv_size - prefix - 1;
        if (prefix != cur_key.len || memcmp(p, cur_key.buf, prefix) != 0) {
            if (cur_key.len != 0 && (ret = offered_store(&txn, &cur_key, &h)) != 0)
                break;
            upd_hll_dispose(&h);
            memcpy(cur_key.buf, p, prefix);
            cur_key.len = prefix;
        }
        if ((ret = upd_hll_add(&h, upd_hll_hash(slash + 1, client_len))) != 0)
            break;
        ++migrated;
    }
    if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND)
        ret = lmdb_fail("cursor get", rc);
    mdb_cursor_close(cur);
    if (ret == 0 && cur_key.len != 0)
        ret = offered_store(&txn, &cur_key, &h);
    upd_hll_dispose(&h);
    if (ret == 0 && (rc = mdb_drop(mtxn, old, 1)) != 0)
        ret = lmdb_fail("drop clients", rc);
    if (ret == 0)
        upd_log_info("lmdb: %zu clients-seen records folded into sketches", migrated);
    return ret;
}

/*
 * Whether a blocks record of len bytes is one written before schema 4 (uint32 block size + 16-byte XXH3-128 digests,
 * no algorithm byte). Unambiguous: those are 4 mod 16 bytes long, tagged ones 5 mod 16 (a 5-byte head and 16- or
 * 32-byte digests).
 */
static bool
blocks_untagged(size_t len)
{
    return len >= 4 + UPD_BLOCK_DIGEST_LEN_XXH3 && (len - 4) % UPD_BLOCK_DIGEST_LEN_XXH3 == 0;
}

/* Writes the tagged form of an untagged record of len bytes into out (len + 1 bytes). */
static void
blocks_tag(uint8_t *out, const uint8_t *old, size_t len)
{
    memcpy(out, old, 4);
    out[4] = UPD_BLOCK_XXH3_128;
    memcpy(out + BLOCKS_HEAD, old + 4, len - 4);
}

/* Schemas 2 and 3 to 4: every blocks record (uint32 block size + XXH3-128 digests) gets the algorithm byte after the
 * block size. Its release JSON needs nothing: files without "block_digest" read back as XXH3-128. A record that is not
 * whole digests is left as it is and reads back as corrupt (UPD_ESTORE), as before. Runs inside the opening write
 * transaction. */
static int
migrate_blocks(MDB_txn *mtxn, upd_store_t *store)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc, ret = 0;
    size_t migrated = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;

    if ((rc = mdb_cursor_open(mtxn, store->dbi[DB_BLOCKS], &cur)) != 0)
        return lmdb_fail("cursor open", rc);
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (!blocks_untagged(val.mv_size))
            continue;
        size_t len = val.mv_size + 1;
        if (len > cap && (buf = realloc(buf, cap = len)) == NULL)
            abort();
        blocks_tag(buf, val.mv_data, val.mv_size);
        /* the key too is copied out of the page: a record that changes size is deleted and added again on that page,
         * which moves the bytes the cursor's key points to while the put runs */
        uint8_t kb[KEY_MAX];
        if (key.mv_size > sizeof(kb))
            continue;
        memcpy(kb, key.mv_data, key.mv_size);
        MDB_val nk = {.mv_size = key.mv_size, .mv_data = kb}, nv = {.mv_size = len, .mv_data = buf};
        if ((rc = mdb_cursor_put(cur, &nk, &nv, MDB_CURRENT)) != 0) {
            ret = lmdb_fail("blocks", rc);
            break;
        }
        ++migrated;
    }
    if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND)
        ret = lmdb_fail("cursor get", rc);
    mdb_cursor_close(cur);
    free(buf);
    if (ret == 0)
        upd_log_info("lmdb: %zu blocks records tagged XXH3-128", migrated);
    return ret;
}

/* ---- API keys ---- */

int
upd_store_key_put(upd_store_txn_t *txn, const char *key_id, const char *json)
{
    return json_record_create(txn, DB_KEYS, key_id, KEY_ID_MAX, json);
}

int
upd_store_key_get(upd_store_txn_t *txn, const char *key_id, const char **json, size_t *json_len)
{
    return json_record_get(txn, DB_KEYS, key_id, KEY_ID_MAX, json, json_len);
}

int
upd_store_key_replace(upd_store_txn_t *txn, const char *key_id, const char *json)
{
    KEYBUF(k);
    MDB_val v;
    int err;
    if (!key_add_str(&k, key_id, KEY_ID_MAX))
        return UPD_ENOTFOUND;
    if ((err = db_get(txn, DB_KEYS, &k, &v)) != 0)
        return err;
    return db_put(txn, DB_KEYS, &k, json, strlen(json), 0);
}

/* A walk over records keyed by one id (keys, members): cb(id, json, len, arg). */
struct record_walk {
    int (*cb)(const char *id, const char *json, size_t len, void *arg);
    void *arg;
    size_t skip; /* a prefix to leave out of the id handed to cb ("APP/" in drafts) */
};

static int
on_record(MDB_val *key, MDB_val *val, void *arg)
{
    struct record_walk *w = arg;
    char id[KEY_MAX + 1];
    if (key->mv_size <= w->skip || key->mv_size > KEY_MAX)
        return 0;
    memcpy(id, (const char *)key->mv_data + w->skip, key->mv_size - w->skip);
    id[key->mv_size - w->skip] = '\0';
    return w->cb(id, val->mv_data, val->mv_size, w->arg) != 0 ? 1 : 0;
}

int
upd_store_key_list(upd_store_txn_t *txn, int (*cb)(const char *key_id, const char *json, size_t len, void *arg), void *arg)
{
    KEYBUF(k);
    struct record_walk w = {cb, arg, 0};
    return walk_prefix(txn, DB_KEYS, &k, on_record, &w);
}

/* ---- members ---- */

int
upd_store_member_put(upd_store_txn_t *txn, const char *member, const char *json, bool create)
{
    KEYBUF(k);
    if (!key_add_str(&k, member, UPD_ID_MAX))
        return UPD_EINVAL;
    return db_put(txn, DB_MEMBERS, &k, json, strlen(json), create ? MDB_NOOVERWRITE : 0);
}

int
upd_store_member_get(upd_store_txn_t *txn, const char *member, const char **json, size_t *json_len)
{
    return json_record_get(txn, DB_MEMBERS, member, UPD_ID_MAX, json, json_len);
}

/* Deletes one record of an id. @return 0, UPD_ENOTFOUND, UPD_ESTORE */
static int
db_del(upd_store_txn_t *txn, int db, struct keybuf *k)
{
    MDB_val key = key_val(k);
    int rc = mdb_del(txn->txn, txn->store->dbi[db], &key, NULL);
    if (rc == MDB_NOTFOUND)
        return UPD_ENOTFOUND;
    return rc == 0 ? 0 : lmdb_fail("del", rc);
}

int
upd_store_member_del(upd_store_txn_t *txn, const char *member)
{
    KEYBUF(k);
    if (!key_add_str(&k, member, UPD_ID_MAX))
        return UPD_ENOTFOUND;
    return db_del(txn, DB_MEMBERS, &k);
}

int
upd_store_member_list(upd_store_txn_t *txn, int (*cb)(const char *member, const char *json, size_t len, void *arg), void *arg)
{
    KEYBUF(k);
    struct record_walk w = {cb, arg, 0};
    return walk_prefix(txn, DB_MEMBERS, &k, on_record, &w);
}

/* ---- drafts ---- */

static bool
draft_key(struct keybuf *k, const char *app, const char *version)
{
    return key_add_str(k, app, UPD_ID_MAX) && key_add_str(k, version, UPD_VERSION_MAX);
}

int
upd_store_draft_put(upd_store_txn_t *txn, const char *app, const char *version, const char *json)
{
    KEYBUF(k);
    if (!draft_key(&k, app, version))
        return UPD_EINVAL;
    return db_put(txn, DB_DRAFTS, &k, json, strlen(json), MDB_NOOVERWRITE);
}

int
upd_store_draft_get(upd_store_txn_t *txn, const char *app, const char *version, const char **json, size_t *json_len)
{
    KEYBUF(k);
    MDB_val v;
    int err;
    if (!draft_key(&k, app, version))
        return UPD_ENOTFOUND;
    if ((err = db_get(txn, DB_DRAFTS, &k, &v)) != 0)
        return err;
    *json = v.mv_data;
    *json_len = v.mv_size;
    return 0;
}

int
upd_store_draft_del(upd_store_txn_t *txn, const char *app, const char *version)
{
    KEYBUF(k);
    if (!draft_key(&k, app, version))
        return UPD_ENOTFOUND;
    return db_del(txn, DB_DRAFTS, &k);
}

int
upd_store_draft_list(upd_store_txn_t *txn, const char *app,
                     int (*cb)(const char *version, const char *json, size_t len, void *arg), void *arg)
{
    KEYBUF(k);
    if (!key_add_str(&k, app, UPD_ID_MAX))
        return UPD_EINVAL;
    key_end_prefix(&k);
    struct record_walk w = {cb, arg, k.len};
    return walk_prefix(txn, DB_DRAFTS, &k, on_record, &w);
}

/* ---- audit records ---- */

/* Keys are big-endian sequence numbers, so that LMDB's key order is the chain's order. */
static MDB_val
seq_key(uint64_t seq, uint8_t buf[8])
{
    for (int i = 7; i >= 0; --i, seq >>= 8)
        buf[i] = (uint8_t)seq;
    return (MDB_val){.mv_size = 8, .mv_data = buf};
}

static uint64_t
seq_of(const MDB_val *key)
{
    uint64_t seq = 0;
    for (size_t i = 0; i < 8 && i < key->mv_size; ++i)
        seq = seq << 8 | ((const uint8_t *)key->mv_data)[i];
    return seq;
}

int
upd_store_audit_put(upd_store_txn_t *txn, uint64_t seq, const void *rec, size_t len)
{
    uint8_t buf[8];
    MDB_val key = seq_key(seq, buf), val = {.mv_size = len, .mv_data = (void *)rec};
    if (seq == 0)
        return UPD_EINVAL;
    int rc = mdb_put(txn->txn, txn->store->dbi[DB_AUDIT], &key, &val, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return UPD_EEXIST;
    return rc == 0 ? 0 : lmdb_fail("audit put", rc);
}

int
upd_store_audit_get(upd_store_txn_t *txn, uint64_t seq, const char **rec, size_t *len)
{
    uint8_t buf[8];
    MDB_val key = seq_key(seq, buf), val;
    int rc = mdb_get(txn->txn, txn->store->dbi[DB_AUDIT], &key, &val);
    if (rc == MDB_NOTFOUND)
        return UPD_ENOTFOUND;
    if (rc != 0)
        return lmdb_fail("audit get", rc);
    *rec = val.mv_data;
    *len = val.mv_size;
    return 0;
}

int
upd_store_audit_last(upd_store_txn_t *txn, uint64_t *seq, const char **rec, size_t *len)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;
    if ((rc = mdb_cursor_open(txn->txn, txn->store->dbi[DB_AUDIT], &cur)) != 0)
        return lmdb_fail("cursor open", rc);
    rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return UPD_ENOTFOUND;
    if (rc != 0)
        return lmdb_fail("audit last", rc);
    *seq = seq_of(&key);
    *rec = val.mv_data;
    *len = val.mv_size;
    return 0;
}

int
upd_store_audit_walk(upd_store_txn_t *txn, uint64_t from, bool backward,
                     int (*cb)(uint64_t seq, const char *rec, size_t len, void *arg), void *arg)
{
    MDB_cursor *cur;
    uint8_t buf[8];
    MDB_val key = seq_key(from, buf), val;
    int rc, ret = 0;
    if ((rc = mdb_cursor_open(txn->txn, txn->store->dbi[DB_AUDIT], &cur)) != 0)
        return lmdb_fail("cursor open", rc);
    if (!backward) {
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    } else if ((rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE)) == 0) {
        /* at or after from: step back when after */
        if (seq_of(&key) > from)
            rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
    } else if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    }
    for (; rc == 0; rc = mdb_cursor_get(cur, &key, &val, backward ? MDB_PREV : MDB_NEXT)) {
        int r = cb(seq_of(&key), val.mv_data, val.mv_size, arg);
        if (r != 0) {
            ret = r < 0 ? r : 0;
            break;
        }
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        ret = lmdb_fail("audit walk", rc);
    mdb_cursor_close(cur);
    return ret;
}

/* ---- meta ---- */

int
upd_store_meta_put(upd_store_txn_t *txn, const char *name, const void *data, size_t len)
{
    KEYBUF(k);
    if (!key_add_str(&k, name, 64) || strcmp(name, "schema") == 0)
        return UPD_EINVAL;
    return db_put(txn, DB_META, &k, data, len, 0);
}

int
upd_store_meta_get(upd_store_txn_t *txn, const char *name, const char **data, size_t *len)
{
    KEYBUF(k);
    MDB_val v;
    int err;
    if (!key_add_str(&k, name, 64))
        return UPD_ENOTFOUND;
    if ((err = db_get(txn, DB_META, &k, &v)) != 0)
        return err;
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

/* ---- backups ---- */

int
upd_store_copy_compact(upd_store_t *store, int fd)
{
    int rc = mdb_env_copyfd2(store->env, fd, MDB_CP_COMPACT);
    return rc == 0 ? 0 : lmdb_fail("copy", rc);
}

/* ---- published state: an app's release state as one document ---- */

/* The sub-databases whose records make up an app's release state (clients seen and keys stay per host). */
static const int state_dbs[] = {DB_APPS, DB_CHANNELS, DB_PINS, DB_RELEASES, DB_FILES, DB_NUPKGS, DB_FEEDS, DB_BLOCKS};

struct gen_walk {
    uint64_t sum;
};

static int
on_channel_gen(MDB_val *key, MDB_val *val, void *arg)
{
    struct gen_walk *w = arg;
    if (val->mv_size >= 12)
        w->sum += upd_get_le64((const uint8_t *)val->mv_data + 4);
    return 0;
}

int
upd_store_app_generation(upd_store_txn_t *txn, const char *app, uint64_t *generation)
{
    KEYBUF(k);
    struct gen_walk w = {0};
    *generation = 0;
    if (!key_add_str(&k, app, UPD_ID_MAX))
        return UPD_EINVAL;
    key_end_prefix(&k);
    int err = walk_prefix(txn, DB_CHANNELS, &k, on_channel_gen, &w);
    *generation = w.sum;
    return err;
}

struct app_walk {
    int (*cb)(const char *app, void *arg);
    void *arg;
};

static int
on_app(MDB_val *key, MDB_val *val, void *arg)
{
    struct app_walk *w = arg;
    char app[UPD_ID_MAX + 1];
    if (key->mv_size > UPD_ID_MAX)
        return 0;
    memcpy(app, key->mv_data, key->mv_size);
    app[key->mv_size] = '\0';
    return w->cb(app, w->arg) != 0;
}

int
upd_store_app_list(upd_store_txn_t *txn, int (*cb)(const char *app, void *arg), void *arg)
{
    KEYBUF(k);
    struct app_walk w = {cb, arg};
    return walk_prefix(txn, DB_APPS, &k, on_app, &w);
}

struct export_walk {
    json_t *obj;
    int err;
};

static int
on_export(MDB_val *key, MDB_val *val, void *arg)
{
    struct export_walk *w = arg;
    size_t cap = 4 * ((val->mv_size + 2) / 3) + 1;
    char *b64 = malloc(cap);
    if (b64 == NULL)
        return UPD_ENOMEM;
    int n = EVP_EncodeBlock((unsigned char *)b64, val->mv_data, (int)val->mv_size);
    int err = json_object_setn_new(w->obj, key->mv_data, key->mv_size, json_stringn(b64, (size_t)n)) == 0 ? 0 : UPD_ENOMEM;
    free(b64);
    return err;
}

int
upd_store_app_export(upd_store_txn_t *txn, const char *app, char **out, size_t *out_len, uint64_t *generation)
{
    int err;
    KEYBUF(k);
    if (!key_add_str(&k, app, UPD_ID_MAX))
        return UPD_EINVAL;
    MDB_val v;
    if ((err = db_get(txn, DB_APPS, &k, &v)) != 0)
        return err;
    if ((err = upd_store_app_generation(txn, app, generation)) != 0)
        return err;
    json_t *records = json_object();
    json_t *root = json_pack("{s:i, s:s, s:I, s:o}", "format", 1, "app", app, "generation", (json_int_t)*generation, "records", records);
    if (root == NULL)
        return UPD_ENOMEM;
    for (size_t i = 0; i < sizeof(state_dbs) / sizeof(state_dbs[0]); ++i) {
        int db = state_dbs[i];
        struct export_walk w = {json_object(), 0};
        json_object_set_new(records, db_names[db], w.obj);
        KEYBUF(p);
        key_add_str(&p, app, UPD_ID_MAX);
        if (db == DB_APPS) {
            /* the app's own record: exactly its id */
            MDB_val key = key_val(&p);
            if ((err = on_export(&key, &v, &w)) != 0)
                goto Error;
            continue;
        }
        key_end_prefix(&p);
        if ((err = walk_prefix(txn, db, &p, on_export, &w)) != 0)
            goto Error;
    }
    if ((*out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
        err = UPD_ENOMEM;
        goto Error;
    }
    *out_len = strlen(*out);
    json_decref(root);
    return 0;
Error:
    json_decref(root);
    return err;
}

/* Whether a record key belongs to the app: "APP" in apps, "APP/..." elsewhere. */
static bool
key_of_app(int db, const char *key, size_t len, const char *app, size_t app_len)
{
    if (len > KEY_MAX || len < app_len || memcmp(key, app, app_len) != 0)
        return false;
    return db == DB_APPS ? len == app_len : len > app_len + 1 && key[app_len] == '/';
}

/*
 * Validation of an imported app, record by record, through the decoders the getters use: each record is read back
 * with its own getter (upd_store_channel_get, upd_store_blocks_get, ...), so a change of a record's format changes what
 * is accepted here with it. On top of what the decoders check: the key's parts (ids.h, SemVer), and the values the
 * origin relies on (a block size within integrity.block_size's bounds, digests of their length, channels naming
 * releases of the document, a generation that is the sum of the channels').
 */
struct validate_walk {
    upd_store_txn_t *txn;
    int db;
    const char *app;
    size_t prefix; /* "APP/" */
    upd_reason_t *why;
};

/* Splits the key after "APP/" into exactly n parts, NUL-terminated copies in parts (each buffer KEY_MAX). */
static bool
key_parts(const MDB_val *key, size_t prefix, size_t n, char parts[][KEY_MAX])
{
    const char *p = (const char *)key->mv_data + prefix, *end = (const char *)key->mv_data + key->mv_size;
    for (size_t i = 0; i != n; ++i) {
        const char *slash = i + 1 == n ? end : memchr(p, '/', (size_t)(end - p));
        if (slash == NULL || slash == p || (i + 1 == n && memchr(p, '/', (size_t)(end - p)) != NULL))
            return false;
        memcpy(parts[i], p, (size_t)(slash - p));
        parts[i][slash - p] = '\0';
        p = slash + 1;
    }
    return true;
}

static bool
is_semver(const char *s)
{
    upd_version_t v;
    return upd_version_parse(s, strlen(s), &v) == 0;
}

static bool
is_hex_lower(const char *s, size_t len)
{
    if (strlen(s) != len)
        return false;
    for (size_t i = 0; i != len; ++i)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Whether the release APP/VERSION is in the transaction (a file, a channel or a feed of the document names it). */
static bool
has_release(upd_store_txn_t *txn, const char *app, const char *version)
{
    KEYBUF(k);
    MDB_val v;
    return key_add_str(&k, app, UPD_ID_MAX) && key_add_str(&k, version, UPD_VERSION_MAX) && db_get(txn, DB_RELEASES, &k, &v) == 0;
}

static bool
is_block_size(uint32_t block_size)
{
    return block_size > 0 && block_size <= UPD_BLOCK_SIZE_MAX;
}

static int
validate_release(struct validate_walk *w, const char *version, const char *rec_key)
{
    upd_release_t rel;
    int err;
    if (!is_semver(version))
        return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "releases %s: the version is not SemVer", rec_key);
    if ((err = upd_store_release_get(w->txn, w->app, version, &rel)) != 0)
        return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "releases %s: not a release record", rec_key);
    err = UPD_EINVAL;
    if (strcmp(rel.app, w->app) != 0 || strcmp(rel.version, version) != 0) {
        upd_reason_set(w->why, err, "invalid_record", "releases %s: the record is of another release", rec_key);
        goto Exit;
    }
    if (!upd_id_is_channel(rel.channel, strlen(rel.channel))) {
        upd_reason_set(w->why, err, "invalid_record", "releases %s: the channel is not a channel name", rec_key);
        goto Exit;
    }
    for (size_t i = 0; i != rel.nfiles; ++i) {
        const upd_file_t *f = &rel.files[i];
        uint8_t digest[64];
        const char *bad = NULL;
        if (!upd_id_is_filename(f->name, strlen(f->name)))
            bad = "a file name is not a file name";
        else if (decode_sha512(f->sha512, digest) != 0)
            bad = "a sha512 is not 64 bytes of base64";
        else if (f->sha1[0] != '\0' && !is_hex_lower(f->sha1, UPD_SHA1_HEX_LEN))
            bad = "a sha1 is not 40 hex digits";
        else if (f->blockmap_sha512[0] != '\0' && decode_sha512(f->blockmap_sha512, digest) != 0)
            bad = "a blockmap sha512 is not 64 bytes of base64";
        else if (f->nblocks != 0 && (!is_block_size(f->block_size) || f->nblocks != upd_blocks_count(f->size, f->block_size)))
            bad = "a file's block size or block count is out of bounds";
        if (bad != NULL) {
            upd_reason_set(w->why, err, "invalid_record", "releases %s: %s", rec_key, bad);
            goto Exit;
        }
    }
    err = 0;
Exit:
    upd_release_dispose(&rel);
    return err;
}

static int
on_validate(MDB_val *key, MDB_val *val, void *arg)
{
    struct validate_walk *w = arg;
    char parts[2][KEY_MAX], rec_key[KEY_MAX + 1];
    const char *db = db_names[w->db];
    size_t nparts = w->db == DB_RELEASES || w->db == DB_NUPKGS || w->db == DB_CHANNELS ? 1 : 2;
    /* the key, for messages: it came from outside, so printable characters only */
    size_t klen = key->mv_size < KEY_MAX ? key->mv_size : KEY_MAX;
    for (size_t i = 0; i != klen; ++i) {
        char c = ((const char *)key->mv_data)[i];
        rec_key[i] = c >= 0x20 && c < 0x7f ? c : '?';
    }
    rec_key[klen] = '\0';
    if (!key_parts(key, w->prefix, nparts, parts))
        return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "%s %s: the key does not have %zu parts", db, rec_key, nparts);

    switch (w->db) {
    case DB_CHANNELS: {
        upd_channel_t ch;
        if (!upd_id_is_channel(parts[0], strlen(parts[0])))
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "channels %s: not a channel name", rec_key);
        if (upd_store_channel_get(w->txn, w->app, parts[0], &ch) != 0)
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "channels %s: not a channel record", rec_key);
        if (ch.rollout.percent_bp > UPD_ROLLOUT_BASIS_POINTS)
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "channels %s: the rollout is over 100%%", rec_key);
        for (size_t i = 0; i != ch.rollout.ncountries; ++i)
            if (!upd_id_is_country(ch.rollout.countries + 2 * i, 2))
                return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "channels %s: a rollout country is not a country code",
                                      rec_key);
        const char *versions[2] = {ch.stable, ch.rollout_version};
        for (int i = 0; i != 2; ++i)
            if (versions[i][0] != '\0' && (!is_semver(versions[i]) || !has_release(w->txn, w->app, versions[i])))
                return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "channels %s: %s is not a release of the document",
                                      rec_key, i == 0 ? "the stable version" : "the rollout version");
        return 0;
    }
    case DB_PINS:
        if (!upd_id_is_channel(parts[0], strlen(parts[0])) || !upd_id_is_client(parts[1], strlen(parts[1])))
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "pins %s: not a channel and a client id", rec_key);
        if (!upd_store_pin_has(w->txn, w->app, parts[0], parts[1], strlen(parts[1])))
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "pins %s: not a pin record", rec_key);
        return 0;
    case DB_RELEASES:
        return validate_release(w, parts[0], rec_key);
    case DB_FILES: {
        upd_file_rec_t rec;
        size_t len = strlen(parts[1]);
        bool blockmap = len > 9 && strcmp(parts[1] + len - 9, ".blockmap") == 0;
        if (!is_semver(parts[0]) || !has_release(w->txn, w->app, parts[0]))
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "files %s: not a release of the document", rec_key);
        /* NAME.blockmap may be up to 9 bytes over a file name: its NAME is the file name */
        if (!upd_id_is_filename(parts[1], blockmap ? len - 9 : len) || len > UPD_FILENAME_MAX + 9)
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "files %s: not a file name", rec_key);
        if (len > UPD_FILENAME_MAX)
            return 0; /* beyond what upd_store_file_get looks up: never served, and so harmless */
        if (upd_store_file_get(w->txn, w->app, parts[0], parts[1], len, &rec) != 0)
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "files %s: not a file record", rec_key);
        if (rec.platform >= UPD_PLATFORM_COUNT || rec.arch >= UPD_ARCH_COUNT || rec.kind >= UPD_KIND_COUNT ||
            (rec.flags & ~UPD_FILE_REC_BLOCKMAP) != 0 || ((rec.flags & UPD_FILE_REC_BLOCKMAP) != 0) != blockmap)
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "files %s: a platform, arch, kind or flag out of range",
                                  rec_key);
        return 0;
    }
    case DB_NUPKGS: {
        char version[UPD_VERSION_MAX + 1];
        if (!upd_id_is_filename(parts[0], strlen(parts[0])))
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "nupkgs %s: not a file name", rec_key);
        if (upd_store_nupkg_version(w->txn, w->app, parts[0], strlen(parts[0]), version) != 0 || !is_semver(version) ||
            !has_release(w->txn, w->app, version))
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "nupkgs %s: not a release of the document", rec_key);
        return 0;
    }
    case DB_FEEDS: {
        const char *body;
        size_t len;
        uint64_t etag;
        if (!is_semver(parts[0]) || !has_release(w->txn, w->app, parts[0]))
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "feeds %s: not a release of the document", rec_key);
        if (upd_store_feed_get(w->txn, w->app, parts[0], parts[1], strlen(parts[1]), &body, &len, &etag) != 0)
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "feeds %s: not a feed record", rec_key);
        if (etag != XXH3_64bits(body, len))
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "feeds %s: the etag is not the body's", rec_key);
        return 0;
    }
    case DB_BLOCKS: {
        upd_file_rec_t rec;
        uint32_t block_size;
        upd_block_alg_t alg;
        const uint8_t *digests;
        size_t n, len = strlen(parts[1]);
        if (!is_semver(parts[0]) || !upd_id_is_filename(parts[1], len))
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "blocks %s: not a version and a file name", rec_key);
        if (upd_store_blocks_get(w->txn, w->app, parts[0], parts[1], len, &block_size, &alg, &digests, &n) != 0)
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "blocks %s: not a blocks record", rec_key);
        if (!is_block_size(block_size))
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "blocks %s: block size %" PRIu32 " is not 1 to %u", rec_key,
                                  block_size, UPD_BLOCK_SIZE_MAX);
        if (upd_store_file_get(w->txn, w->app, parts[0], parts[1], len, &rec) != 0)
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "blocks %s: not the blocks of a file of the document",
                                  rec_key);
        if (n > UPD_BLOCKS_MAX || n != upd_blocks_count(rec.size, block_size))
            return upd_reason_set(w->why, UPD_EINVAL, "invalid_record", "blocks %s: %zu digests for a file of %" PRIu64 " bytes",
                                  rec_key, n, rec.size);
        return 0;
    }
    }
    (void)val;
    return 0;
}

int
upd_store_app_validate(upd_store_txn_t *txn, const char *app, uint64_t generation, upd_reason_t *why)
{
    const char *json;
    size_t json_len;
    uint64_t sum;
    int err;
    if (!upd_id_is_app(app, strnlen(app, UPD_ID_MAX + 1)))
        return upd_reason_set(why, UPD_EINVAL, "malformed", "not an app id");
    if (upd_store_app_get(txn, app, &json, &json_len) != 0)
        return upd_reason_set(why, UPD_EINVAL, "invalid_record", "apps %s: no app record", app);
    json_error_t jerr;
    json_t *j = json_loadb(json, json_len, 0, &jerr), *id = json_object_get(j, "id");
    bool ok = json_is_string(id) && strcmp(json_string_value(id), app) == 0;
    json_decref(j);
    if (!ok)
        return upd_reason_set(why, UPD_EINVAL, "invalid_record", "apps %s: not the app's record", app);
    /* channels last: they name releases, which are checked by then */
    static const int dbs[] = {DB_RELEASES, DB_FILES, DB_BLOCKS, DB_NUPKGS, DB_FEEDS, DB_PINS, DB_CHANNELS};
    for (size_t i = 0; i != sizeof(dbs) / sizeof(dbs[0]); ++i) {
        KEYBUF(p);
        key_add_str(&p, app, UPD_ID_MAX);
        key_end_prefix(&p);
        struct validate_walk w = {txn, dbs[i], app, p.len, why};
        if ((err = walk_prefix(txn, dbs[i], &p, on_validate, &w)) != 0)
            return err == UPD_EINVAL ? err : upd_reason_set(why, err, "", "%s", upd_strerror(err));
    }
    if ((err = upd_store_app_generation(txn, app, &sum)) != 0)
        return upd_reason_set(why, err, "", "%s", upd_strerror(err));
    if (sum != generation)
        return upd_reason_set(why, UPD_EINVAL, "invalid_record",
                              "generation %" PRIu64 " is not the sum of the channels' generations (%" PRIu64 ")", generation, sum);
    return 0;
}

int
upd_store_app_import(upd_store_txn_t *txn, const char *app, const char *doc, size_t len, uint64_t *generation, upd_reason_t *why)
{
    json_error_t jerr;
    json_t *root = json_loadb(doc, len, 0, &jerr), *records, *v;
    int err = UPD_EINVAL, rc;
    size_t app_len = strnlen(app, UPD_ID_MAX + 1);
    /* the app's records are staged in a nested transaction: a refused document leaves txn as it was */
    upd_store_txn_t stage = {.store = txn->store, .txn = NULL, .write = true};
    if (root == NULL) {
        upd_reason_set(why, err, "malformed", "not JSON: %s (line %d)", jerr.text, jerr.line);
        goto Exit;
    }
    if (!json_is_integer(v = json_object_get(root, "format")) || json_integer_value(v) != 1 ||
        !json_is_string(v = json_object_get(root, "app")) || strcmp(json_string_value(v), app) != 0 ||
        !json_is_integer(v = json_object_get(root, "generation")) || json_integer_value(v) < 0 ||
        !json_is_object(records = json_object_get(root, "records"))) {
        upd_reason_set(why, err, "malformed", "not a state document of %s (format 1, app, generation, records)", app);
        goto Exit;
    }
    *generation = (uint64_t)json_integer_value(v);
    /* check every record before the first write: a document is applied whole or not at all */
    for (size_t i = 0; i < sizeof(state_dbs) / sizeof(state_dbs[0]); ++i) {
        json_t *recs = json_object_get(records, db_names[state_dbs[i]]);
        const char *key;
        json_t *val;
        if (!json_is_object(recs)) {
            upd_reason_set(why, err, "malformed", "records.%s is not an object", db_names[state_dbs[i]]);
            goto Exit;
        }
        json_object_foreach(recs, key, val) {
            if (!key_of_app(state_dbs[i], key, strlen(key), app, app_len) || !json_is_string(val) || json_string_length(val) % 4 != 0) {
                upd_reason_set(why, err, "malformed", "records.%s: a key of another app or a value that is not base64",
                               db_names[state_dbs[i]]);
                goto Exit;
            }
        }
    }
    if ((rc = mdb_txn_begin(txn->store->env, txn->txn, 0, &stage.txn)) != 0) {
        stage.txn = NULL;
        err = lmdb_fail("nested begin", rc);
        upd_reason_set(why, err, "", "%s", upd_strerror(err));
        goto Exit;
    }
    for (size_t i = 0; i < sizeof(state_dbs) / sizeof(state_dbs[0]); ++i) {
        int db = state_dbs[i];
        KEYBUF(p);
        key_add_str(&p, app, UPD_ID_MAX);
        if (db == DB_APPS) {
            MDB_val key = key_val(&p);
            rc = mdb_del(stage.txn, txn->store->dbi[db], &key, NULL);
            if (rc != 0 && rc != MDB_NOTFOUND) {
                err = lmdb_fail("delete", rc);
                goto Failed;
            }
        } else {
            key_end_prefix(&p);
            if ((err = delete_prefix(&stage, db, &p)) != 0)
                goto Failed;
        }
        json_t *recs = json_object_get(records, db_names[db]);
        const char *key;
        json_t *val;
        json_object_foreach(recs, key, val) {
            size_t b64_len = json_string_length(val);
            uint8_t *raw = malloc(b64_len / 4 * 3 + 1);
            if (raw == NULL) {
                err = UPD_ENOMEM;
                goto Failed;
            }
            int n = EVP_DecodeBlock(raw, (const unsigned char *)json_string_value(val), (int)b64_len);
            if (n < 0) {
                free(raw);
                err = upd_reason_set(why, UPD_EINVAL, "malformed", "records.%s: a value that is not base64", db_names[db]);
                goto Exit;
            }
            /* EVP_DecodeBlock counts padding as decoded zero bytes */
            const char *s = json_string_value(val);
            if (b64_len >= 1 && s[b64_len - 1] == '=')
                --n;
            if (b64_len >= 2 && s[b64_len - 2] == '=')
                --n;
            KEYBUF(rk);
            memcpy(rk.buf, key, strlen(key));
            rk.len = strlen(key);
            uint8_t *tagged = NULL;
            if (db == DB_BLOCKS && blocks_untagged((size_t)n)) {
                /* published by a control plane before schema 4: XXH3-128 digests, tagged as the migration does */
                if ((tagged = malloc((size_t)n + 1)) == NULL)
                    abort();
                blocks_tag(tagged, raw, (size_t)n);
                ++n;
            }
            err = db_put(&stage, db, &rk, tagged != NULL ? tagged : raw, (size_t)n, 0);
            free(tagged);
            free(raw);
            if (err != 0)
                goto Failed;
        }
    }
    /* every record read back through its getter before any of it reaches txn */
    if ((err = upd_store_app_validate(&stage, app, *generation, why)) != 0)
        goto Exit;
    rc = mdb_txn_commit(stage.txn);
    stage.txn = NULL;
    if (rc != 0) {
        err = lmdb_fail("nested commit", rc);
        goto Failed;
    }
    err = 0;
    goto Exit;
Failed:
    upd_reason_set(why, err, "", "%s", upd_strerror(err));
Exit:
    if (stage.txn != NULL)
        mdb_txn_abort(stage.txn);
    json_decref(root);
    return err;
}
