#ifndef UPD_STORE_H
#define UPD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "domain/hll.h"
#include "domain/ids.h"
#include "domain/release.h"
#include "domain/rollout.h"
#include "domain/version.h"

/*
 * The LMDB store: one environment under DATA_DIR/lmdb, shared by updraft-control (the writer) and
 * updraft-origin (readers, plus its clients-seen writer thread) on one host. Named sub-databases:
 *
 *   meta      "schema" -> uint32 UPD_STORE_SCHEMA (checked at open)
 *   apps      APP -> JSON {"id","name","created"}
 *   channels  APP/CHANNEL -> packed channel record (generation, stable version, rollout, countries)
 *   pins      APP/CHANNEL/CLIENT -> "" (the rollout's pinned testers)
 *   releases  APP/VERSION -> release JSON (upd_release_to_json)
 *   files     APP/VERSION/NAME -> packed upd_file_rec_t (what the artifact route needs)
 *   nupkgs    APP/NAME -> VERSION (Squirrel.Windows asks for .nupkg files without a version in the path)
 *   feeds     APP/VERSION/VARIANT -> uint64 etag (XXH3 of the body, little-endian) + body
 *   offered   APP/CHANNEL/VERSION -> the distinct clients offered that version: a sketch (domain/hll.h), exact up to
 *             16,384 clients, a HyperLogLog after that; at most UPD_HLL_ENCODED_MAX bytes whatever clients send
 *   keys      KEY_ID -> JSON (control/keys.h owns its format: owner, scope, expiry, revocation, the secret's SHA-256)
 *   members   MEMBER -> JSON (control/members.h owns its format: name, roles per app)
 *   drafts    APP/VERSION -> release JSON of a release registered but not yet published to a channel
 *   audit     uint64 sequence number (big-endian, so key order is the chain's order) -> one audit record
 *             (domain/audit.h owns its format)
 *   blocks    APP/VERSION/NAME -> uint32 block size (little-endian) + uint8 digest algorithm (upd_block_alg_t) + the
 *             digest of each block (SHA-256, 32 bytes; XXH3-128, 16 bytes, for releases registered before schema 4).
 *             upd_store_blocks_get() is the one decoder of this record.
 *
 * '/' separates key parts: no id, version or file name may contain it.
 *
 * Reads go through upd_store_txn_t: a read transaction that is reused per thread (mdb_txn_reset /
 * mdb_txn_renew), so beginning one costs no allocation. Pointers returned by the getters point into
 * the memory map and are valid until upd_store_txn_end(). Writes go through a write transaction
 * (one writer at a time, across processes) and are visible to readers once committed.
 */

/* 2: blocks, and a files record for each NAME.blockmap; 3: clients offered as sketches (a schema 2 environment is
 * migrated when opened for writing: its per-client records are folded into sketches); 4: blocks records name their
 * digest algorithm (SHA-256 for new releases; a schema 2 or 3 environment opened for writing has each of its blocks
 * records tagged XXH3-128, which is what they hold); 5: members, drafts and audit (a schema 2 to 4 environment opened
 * for writing gains them, empty; an API key record of schema 4 is an account-wide key of its role) */
#define UPD_STORE_SCHEMA 5

typedef struct st_upd_store_t upd_store_t;
typedef struct st_upd_store_txn_t upd_store_txn_t;

typedef struct st_upd_store_opts_t {
    size_t map_size;   /* bytes; 0 means the default (1 GiB) */
    bool read_only;    /* open without creating anything (a reader may still record clients) */
} upd_store_opts_t;

/**
 * Opens (creating when absent and not read_only) DIR/lmdb and its sub-databases, and checks the schema.
 * @return 0; UPD_ESCHEMA when the environment has another schema version: *out is then still set to a
 *         closed handle that answers upd_store_schema_found() and must be passed to upd_store_close();
 *         UPD_EIO when the directory cannot be created; UPD_ESTORE on another LMDB error
 */
int upd_store_open(const char *data_dir, const upd_store_opts_t *opts, upd_store_t **out);
void upd_store_close(upd_store_t *store);
/** The schema version found in the environment (for error messages), 0 when none. */
uint32_t upd_store_schema_found(const upd_store_t *store);

/* ---- transactions ---- */

/**
 * Begins a read transaction on this thread's reusable reader (renewed, not allocated, after the first).
 * One read transaction per thread at a time.
 * @return 0 or UPD_ESTORE
 */
int upd_store_read_begin(upd_store_t *store, upd_store_txn_t **out);
/** Begins the write transaction (blocks while another process writes). @return 0 or UPD_ESTORE */
int upd_store_write_begin(upd_store_t *store, upd_store_txn_t **out);
/** Commits a write transaction; frees it. @return 0 or UPD_ESTORE (nothing was written) */
int upd_store_commit(upd_store_txn_t *txn);
/** Ends a read transaction (reset, kept for reuse) or aborts a write transaction (freed). */
void upd_store_txn_end(upd_store_txn_t *txn);

/* ---- channel state ---- */

typedef struct st_upd_channel_t {
    uint64_t generation;                  /* bumped on every change of the channel */
    char stable[UPD_VERSION_MAX + 1];     /* newest fully released version, "" when none */
    char rollout_version[UPD_VERSION_MAX + 1]; /* release in partial rollout, "" when none */
    upd_rollout_t rollout;                /* meaningful when rollout_version[0]; countries point into the txn */
} upd_channel_t;

/** @return 0 or UPD_ENOTFOUND */
int upd_store_channel_get(upd_store_txn_t *txn, const char *app, const char *channel, upd_channel_t *out);
/** Writes the channel record (countries copied from out->rollout). @return 0, UPD_ETOOBIG, UPD_ESTORE */
int upd_store_channel_put(upd_store_txn_t *txn, const char *app, const char *channel, const upd_channel_t *ch);
/**
 * Lists the channel names of an app, in key order: cb(name, arg) for each; stops when cb returns non-zero.
 * @return 0 or UPD_ESTORE
 */
int upd_store_channel_list(upd_store_txn_t *txn, const char *app, int (*cb)(const char *channel, void *arg), void *arg);

/** @return true when the client is pinned on the channel's rollout */
bool upd_store_pin_has(upd_store_txn_t *txn, const char *app, const char *channel, const char *client, size_t client_len);
/** Replaces the pinned list. @return 0 or UPD_ESTORE */
int upd_store_pins_set(upd_store_txn_t *txn, const char *app, const char *channel, const char *const *clients, size_t n);
/** cb for each pinned client id (NUL-terminated copy valid during the call). @return 0 or UPD_ESTORE */
int upd_store_pins_list(upd_store_txn_t *txn, const char *app, const char *channel, int (*cb)(const char *client, void *arg),
                        void *arg);

/* ---- apps ---- */

/** @return 0, UPD_EEXIST */
int upd_store_app_create(upd_store_txn_t *txn, const char *app, const char *json);
/** @param[out] json  points into the txn, NUL not guaranteed: use json_len. @return 0 or UPD_ENOTFOUND */
int upd_store_app_get(upd_store_txn_t *txn, const char *app, const char **json, size_t *json_len);

/* ---- releases and their files ---- */

/**
 * Stores a release: its JSON under releases, one packed record per file under files, and the nupkg
 * index. @return 0, UPD_EEXIST (that version exists for the app), UPD_ECONFLICT (a .nupkg name is
 * already used by another version), UPD_ESTORE
 */
int upd_store_release_put(upd_store_txn_t *txn, const upd_release_t *rel);
/**
 * Rewrites the JSON record of a registered release (its pulled mark, say); its file records, blocks and
 * nupkg index stay as registered. @return 0, UPD_ENOTFOUND, UPD_ENOMEM, UPD_ESTORE
 */
int upd_store_release_replace(upd_store_txn_t *txn, const upd_release_t *rel);
/** Reads a release back (heap copy; dispose with upd_release_dispose). @return 0, UPD_ENOTFOUND, UPD_ESTORE */
int upd_store_release_get(upd_store_txn_t *txn, const char *app, const char *version, upd_release_t *out);
/** cb for each release of an app (all channels), in key order; stops when cb returns non-zero. */
int upd_store_release_list(upd_store_txn_t *txn, const char *app, int (*cb)(const upd_release_t *rel, void *arg), void *arg);

typedef struct st_upd_file_rec_t {
    uint64_t size;
    uint8_t sha512[64]; /* raw digest */
    uint8_t platform, arch, kind, flags; /* flags: UPD_FILE_REC_* */
} upd_file_rec_t;

#define UPD_FILE_REC_BLOCKMAP 1 /* NAME.blockmap of a registered NAME, not a release file of its own */

/**
 * The per-block digests of a file over its release's block size.
 * @param[out] alg      UPD_BLOCK_SHA256, or UPD_BLOCK_XXH3_128 for a release registered before schema 4
 * @param[out] digests  n * upd_block_digest_len(*alg) bytes, pointing into the txn
 * @return 0, UPD_ENOTFOUND (a file without blocks: verify it whole), UPD_ESTORE (a corrupt record: an unknown
 *         algorithm, a length that is not whole digests)
 */
int upd_store_blocks_get(upd_store_txn_t *txn, const char *app, const char *version, const char *name, size_t name_len,
                         uint32_t *block_size, upd_block_alg_t *alg, const uint8_t **digests, size_t *n);

/** Looks up one file of a release. @return 0 or UPD_ENOTFOUND */
int upd_store_file_get(upd_store_txn_t *txn, const char *app, const char *version, const char *name, size_t name_len,
                       upd_file_rec_t *out);
/** Finds the version that ships a .nupkg of that name. @param[out] version  NUL-terminated copy. @return 0 or UPD_ENOTFOUND */
int upd_store_nupkg_version(upd_store_txn_t *txn, const char *app, const char *name, size_t name_len,
                            char version[UPD_VERSION_MAX + 1]);

/* ---- rendered feeds ---- */

/** Stores one feed body; its etag is XXH3-64 of the body. @return 0 or UPD_ESTORE */
int upd_store_feed_put(upd_store_txn_t *txn, const char *app, const char *version, const char *variant, const char *body,
                       size_t len);
/** Deletes every variant stored for a release (before rendering it again). @return 0 or UPD_ESTORE */
int upd_store_feed_clear(upd_store_txn_t *txn, const char *app, const char *version);
/**
 * Looks up a feed body.
 * @param[out] body  points into the txn; valid until upd_store_txn_end()
 * @return 0 or UPD_ENOTFOUND
 */
int upd_store_feed_get(upd_store_txn_t *txn, const char *app, const char *version, const char *variant, size_t variant_len,
                       const char **body, size_t *len, uint64_t *etag);

/* ---- clients offered ---- */

typedef struct st_upd_offered_t {
    const char *app;
    const char *channel;
    const char *version;
    const upd_hll_t *sketch; /* the clients to add (borrowed) */
} upd_offered_t;

/**
 * Adds each sketch to what is stored for its app, channel and version (a union: a client already counted is not
 * counted again), in one write transaction of its own. Entries with malformed ids are skipped and logged. Safe to
 * call from any thread that has no transaction open.
 * @return 0, UPD_ENOMEM or UPD_ESTORE (nothing is written then)
 */
int upd_store_offered_merge(upd_store_t *store, const upd_offered_t *sketches, size_t n);
/**
 * How many distinct clients were offered a version: exact up to 16,384, then an estimate within 2% (domain/hll.h).
 * A stored sketch that cannot be read counts as none (and is logged).
 * @return 0, UPD_ENOMEM or UPD_ESTORE
 */
int upd_store_clients_count(upd_store_txn_t *txn, const char *app, const char *channel, const char *version, uint64_t *count);

/* ---- published state ---- */

/**
 * An app's generation: the sum of its channels' generations, so it grows by one with every change of
 * the app's release state (a release, a rollout move). @return 0, UPD_EINVAL, UPD_ESTORE
 */
int upd_store_app_generation(upd_store_txn_t *txn, const char *app, uint64_t *generation);
/** cb for each app id, in key order; stops when cb returns non-zero. @return 0 or UPD_ESTORE */
int upd_store_app_list(upd_store_txn_t *txn, int (*cb)(const char *app, void *arg), void *arg);
/**
 * Exports an app's release state: every record of the app in apps, channels, pins, releases, files,
 * nupkgs, feeds and blocks (not clients seen, keys, members, drafts or audit records), as one JSON document
 * {"format":1,"app","generation","records":{DB:{KEY:BASE64}}}, what the control plane publishes to
 * object storage. Another host's origin replays it with upd_store_app_import and answers exactly
 * alike (same seeds, same rendered bodies).
 * @param[out] out  malloc'ed JSON, *out_len bytes; *generation the app's generation
 * @return 0, UPD_ENOTFOUND (no such app), UPD_ENOMEM, UPD_ESTORE
 */
int upd_store_app_export(upd_store_txn_t *txn, const char *app, char **out, size_t *out_len, uint64_t *generation);
/**
 * Replaces an app's release state with a document of upd_store_app_export (in a write transaction), whole or not at
 * all: every record is checked to belong to the app before the first write, the records are then staged in a nested
 * transaction and validated there (upd_store_app_validate), and only a document that validates reaches txn. A refused
 * document leaves txn as it was (the caller may still commit what else it holds). Blocks records of a document written
 * before schema 4 (no algorithm byte) are stored tagged XXH3-128, as the schema migration does.
 * @param why  filled on failure (NULL is fine): code "malformed" (not JSON, not a state document of this app, a key of
 *             another app, a value that is not base64) or "invalid_record" (a record that does not validate), a
 *             message naming the sub-database and the key; code "" for a store error
 * @return 0 with *generation the document's, UPD_EINVAL (refused), UPD_ENOMEM, UPD_ESTORE
 */
int upd_store_app_import(upd_store_txn_t *txn, const char *app, const char *doc, size_t len, uint64_t *generation,
                         upd_reason_t *why);
/**
 * Validates an app's release state as it is in txn, every record read back through the getter that serves it
 * (upd_store_channel_get, upd_store_release_get, upd_store_file_get, upd_store_blocks_get, upd_store_nupkg_version,
 * upd_store_feed_get, upd_store_pin_has, upd_store_app_get), so that the rules follow the records' formats. On top of
 * what those decoders refuse: the key's parts (channel names, client ids and file names by domain/ids.h, versions by
 * SemVer); the app record's id; releases of this app and version whose channel, file names, sha512 (64 bytes of
 * base64), sha1 (40 hex digits or none) and blocks (1 to UPD_BLOCK_SIZE_MAX bytes, integrity.block_size's bounds, as
 * many as the size needs) are well formed; file, feed, nupkg and blocks records of a release of the app; blocks of a
 * file record, 1 to UPD_BLOCK_SIZE_MAX bytes, one digest per block of the file's size; a feed's etag that is its body's;
 * channels whose rollout is 0-100% over country codes and whose versions are releases of the app; and a generation that
 * is the sum of the channels'.
 * @param why  code "invalid_record" and a message naming the sub-database and the key (NULL is fine)
 * @return 0, UPD_EINVAL, UPD_ESTORE
 */
int upd_store_app_validate(upd_store_txn_t *txn, const char *app, uint64_t generation, upd_reason_t *why);

/* ---- API keys, members, drafts (the control plane's records; JSON whose format their owners define) ---- */

/*
 * Common to the getters: *json points into the txn, is not NUL-terminated (use *json_len) and is valid until
 * upd_store_txn_end(). Common to the lists: cb(id, json, len, arg) for each record in key order, id a NUL-terminated
 * copy valid during the call; the walk stops when cb returns non-zero; they return 0 or UPD_ESTORE.
 */

/** @return 0, UPD_EEXIST */
int upd_store_key_put(upd_store_txn_t *txn, const char *key_id, const char *json);
/** @return 0 or UPD_ENOTFOUND */
int upd_store_key_get(upd_store_txn_t *txn, const char *key_id, const char **json, size_t *json_len);
/** Rewrites an existing key's record (revocation, last use). @return 0, UPD_ENOTFOUND, UPD_ESTORE */
int upd_store_key_replace(upd_store_txn_t *txn, const char *key_id, const char *json);
int upd_store_key_list(upd_store_txn_t *txn, int (*cb)(const char *key_id, const char *json, size_t len, void *arg), void *arg);

/**
 * Writes a member's record.
 * @param create  true: refuse to overwrite (UPD_EEXIST); false: create or replace
 * @return 0, UPD_EEXIST, UPD_EINVAL (an id that is not 1-63 bytes without '/'), UPD_ESTORE
 */
int upd_store_member_put(upd_store_txn_t *txn, const char *member, const char *json, bool create);
/** @return 0 or UPD_ENOTFOUND */
int upd_store_member_get(upd_store_txn_t *txn, const char *member, const char **json, size_t *json_len);
/** @return 0, UPD_ENOTFOUND, UPD_ESTORE */
int upd_store_member_del(upd_store_txn_t *txn, const char *member);
int upd_store_member_list(upd_store_txn_t *txn, int (*cb)(const char *member, const char *json, size_t len, void *arg), void *arg);

/**
 * Stores a draft: a release registered (its files checked and mirrored) but offered to no client, not part of the
 * app's published state (upd_store_app_export leaves drafts out). @return 0, UPD_EEXIST, UPD_EINVAL, UPD_ESTORE
 */
int upd_store_draft_put(upd_store_txn_t *txn, const char *app, const char *version, const char *json);
/** @return 0 or UPD_ENOTFOUND */
int upd_store_draft_get(upd_store_txn_t *txn, const char *app, const char *version, const char **json, size_t *json_len);
/** @return 0, UPD_ENOTFOUND, UPD_ESTORE */
int upd_store_draft_del(upd_store_txn_t *txn, const char *app, const char *version);
/** The drafts of one app; the id handed to cb is the version. @return 0, UPD_EINVAL (app), UPD_ESTORE */
int upd_store_draft_list(upd_store_txn_t *txn, const char *app,
                         int (*cb)(const char *version, const char *json, size_t len, void *arg), void *arg);

/* ---- audit records ---- */

/**
 * Appends one record under its sequence number (1 and up). The caller (control/audit.h) chains the records; the store
 * only refuses to overwrite one. @return 0, UPD_EEXIST, UPD_EINVAL (seq 0), UPD_ESTORE
 */
int upd_store_audit_put(upd_store_txn_t *txn, uint64_t seq, const void *rec, size_t len);
/** @param[out] rec  points into the txn. @return 0, UPD_ENOTFOUND, UPD_ESTORE */
int upd_store_audit_get(upd_store_txn_t *txn, uint64_t seq, const char **rec, size_t *len);
/** The record with the highest sequence number. @return 0, UPD_ENOTFOUND (none yet), UPD_ESTORE */
int upd_store_audit_last(upd_store_txn_t *txn, uint64_t *seq, const char **rec, size_t *len);
/**
 * cb for each record from the one at `from` (or the nearest after it; backward: before it) in sequence order (backward:
 * newest first); stops when cb returns non-zero (a negative UPD_E* code is then returned). @return 0, UPD_ESTORE, cb's
 */
int upd_store_audit_walk(upd_store_txn_t *txn, uint64_t from, bool backward,
                         int (*cb)(uint64_t seq, const char *rec, size_t len, void *arg), void *arg);

/* ---- meta: small named values of the control plane (the audit chain's head, what was exported, backups) ---- */

/** @return 0, UPD_EINVAL (no name, over 64 bytes, or "schema", which only the store writes), UPD_ESTORE */
int upd_store_meta_put(upd_store_txn_t *txn, const char *name, const void *data, size_t len);
/** @param[out] data  points into the txn. @return 0 or UPD_ENOTFOUND */
int upd_store_meta_get(upd_store_txn_t *txn, const char *name, const char **data, size_t *len);

/* ---- backups ---- */

/**
 * Writes a compact copy of the whole environment to fd (mdb_env_copyfd2 with MDB_CP_COMPACT: free pages left out),
 * from a read transaction of its own: writers go on meanwhile. Blocking and as long as the environment is large: call it
 * on a thread of its own, never on an event loop. @return 0 or UPD_ESTORE (fd's errno is logged)
 */
int upd_store_copy_compact(upd_store_t *store, int fd);

#endif
