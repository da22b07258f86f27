#ifndef UPD_STS_STORE_H
#define UPD_STS_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The approval service's own LMDB environment, DIR/lmdb (docs/sts.md "Data"): members, credentials, grants, one-time
 * enrolment links, proposals and their document bytes, the last signed state of every app and its bytes, the STS's
 * audit chain and meta. Values are JSON objects (jansson, compact, sorted keys) except the document bytes. Blocking:
 * the server calls the write functions from its workers, never from the event loop. LMDB is multi-process, so the
 * host commands (enrol-link) use the same environment while the server runs.
 */

typedef struct st_upd_sts_store_t upd_sts_store_t;
typedef struct st_upd_sts_txn_t upd_sts_txn_t;

/* The sub-databases (names as in the contract). */
typedef enum {
    UPD_STS_DB_MEMBERS = 0, /* NAME -> {"name","admin","created","created_by"} */
    UPD_STS_DB_CREDS,       /* credential id (raw bytes) -> {"member","public_key","sign_count",...} */
    UPD_STS_DB_GRANTS,      /* "APP/MEMBER" -> {"granted_by","at"}; APP "*" is every app */
    UPD_STS_DB_ENROL,       /* SHA-256(token) (32 raw bytes) -> {"member","admin","expires","created_by"} */
    UPD_STS_DB_PROPOSALS,   /* ID -> the proposal record */
    UPD_STS_DB_PROPOSAL_DOCS, /* ID -> the document bytes */
    UPD_STS_DB_SIGNED,      /* APP -> {"generation","digest","expires","envelope","signed_at","proposal"} */
    UPD_STS_DB_SIGNED_DOCS, /* APP -> the last signed document's bytes */
    UPD_STS_DB_AUDIT,       /* big-endian uint64 seq -> one audit record */
    UPD_STS_DB_META,        /* "schema", "audit_head", "policy/APP" and the like */
    UPD_STS_DB_COUNT
} upd_sts_db_t;

#define UPD_STS_STORE_SCHEMA 1

/**
 * Opens (creating when create is true) DIR/lmdb.
 * @return 0; UPD_ENOTFOUND (no environment and create false), UPD_ESCHEMA, UPD_ESTORE, UPD_EIO
 */
int upd_sts_store_open(const char *data_dir, bool create, upd_sts_store_t **out);
/** Closes the environment (every transaction must be done). NULL is fine. */
void upd_sts_store_close(upd_sts_store_t *store);

/** Begins a transaction (write: one at a time, across processes). @return 0 or UPD_ESTORE */
int upd_sts_txn_begin(upd_sts_store_t *store, bool write, upd_sts_txn_t **out);
/** Commits (a read transaction: just ends it). @return 0 or UPD_ESTORE; the transaction is gone either way */
int upd_sts_txn_commit(upd_sts_txn_t *txn);
/** Aborts. NULL is fine. */
void upd_sts_txn_abort(upd_sts_txn_t *txn);

/** Raw get: *val points into the map, valid until the transaction ends. @return 0, UPD_ENOTFOUND, UPD_ESTORE */
int upd_sts_get(upd_sts_txn_t *txn, upd_sts_db_t db, const void *key, size_t key_len, const void **val, size_t *val_len);
/** Raw put (replaces). @return 0, UPD_EINVAL (empty or too long key), UPD_ESTORE */
int upd_sts_put(upd_sts_txn_t *txn, upd_sts_db_t db, const void *key, size_t key_len, const void *val, size_t val_len);
/** Deletes. @return 0, UPD_ENOTFOUND, UPD_ESTORE */
int upd_sts_del(upd_sts_txn_t *txn, upd_sts_db_t db, const void *key, size_t key_len);
/** A JSON value: *out a new reference. @return 0, UPD_ENOTFOUND, UPD_EINVAL (stored bytes not a JSON object), UPD_ESTORE */
int upd_sts_get_json(upd_sts_txn_t *txn, upd_sts_db_t db, const void *key, size_t key_len, json_t **out);
/** Stores a JSON object compactly with sorted keys. @return as upd_sts_put */
int upd_sts_put_json(upd_sts_txn_t *txn, upd_sts_db_t db, const void *key, size_t key_len, const json_t *val);
/**
 * Calls fn for every entry whose key starts with prefix (prefix_len 0: all), in key order; fn returns non-zero to stop
 * (that value is returned). @return 0, fn's value, UPD_ESTORE
 */
int upd_sts_each(upd_sts_txn_t *txn, upd_sts_db_t db, const void *prefix, size_t prefix_len,
                 int (*fn)(const void *key, size_t key_len, const void *val, size_t val_len, void *arg), void *arg);

/** Whether name is a member name: [a-z0-9][a-z0-9._-]{0,62}. */
bool upd_sts_member_name_valid(const char *name);

/**
 * Appends an audit record: the record object gets "seq", "at" (now unless present), "prev" (the previous record's
 * "hash", "" for the first) and "hash" (lowercase hex SHA-256 of the record's compact sorted-keys JSON without "hash").
 * The chain head is kept in meta "audit_head". record is modified. @return 0, UPD_ESTORE, UPD_ENOMEM
 */
int upd_sts_audit_append(upd_sts_txn_t *txn, json_t *record, uint64_t *seq_out);
/**
 * Checks the audit chain from the first record: every "prev" and "hash" as upd_sts_audit_append wrote them and the
 * head in meta. @return 0; UPD_EINTEGRITY (*bad_seq the first bad record); UPD_ESTORE
 */
int upd_sts_audit_verify(upd_sts_txn_t *txn, uint64_t *count, uint64_t *bad_seq);

#endif
