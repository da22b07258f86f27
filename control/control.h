#ifndef UPD_CONTROL_H
#define UPD_CONTROL_H

#include <h2o.h>
#include <jansson.h>
#include "control/propagate.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/program.h"
#include "server/workers.h"
#include "storage/s3.h"
#include "storage/s3_sync.h"
#include "storage/store.h"

/* updraft-control: the only writer of release and rollout state (ARCHITECTURE.md). */
typedef struct st_upd_control_t {
    const upd_conf_t *conf;
    upd_store_t *store;
    int storage_fd; /* the local-directory object store: with object storage, the staging directory */
    upd_metrics_t *metrics;
    /* object_store.kind s3: every registered file is on each of these (R2, then the S3 mirror); none for local */
    upd_s3_backend_t backends[UPD_BACKENDS];
    size_t nbackends;
    upd_s3_timeouts_t timeouts;
    /* after each committed release or rollout change: state to object storage, purges of origins and edges; NULL for
     * none (the answers then have no "propagation" member) */
    upd_propagate_t *propagate;
    /* the state-changing API calls run here (control/jobs.h) */
    upd_workers_t *workers;
} upd_control_t;

typedef enum { UPD_ROLE_BUILD = 1, UPD_ROLE_RELEASE = 2, UPD_ROLE_ADMIN = 3 } upd_role_t;

/* control/keys.c */
/** "build", "release", "admin" → role; -1 when unknown */
int upd_role_parse(const char *s);
const char *upd_role_name(upd_role_t r);
/**
 * Creates an API key "upd_<16 hex id>_<43 base64url secret>"; only SHA-256 of the secret is stored.
 * @param[out] key  the key, shown once (at least 80 bytes)
 * @return 0 or a UPD_E* code
 */
int upd_keys_create(upd_store_t *store, upd_role_t role, const char *name, char *key, size_t cap);
/**
 * Checks a presented key (constant-time comparison of the secret's hash).
 * @return 0 with *role set, UPD_EAUTH when unknown or wrong
 */
int upd_keys_verify(upd_store_txn_t *txn, const char *key, size_t len, upd_role_t *role);

/* control/publish.c: each returns an HTTP status and a JSON body (new reference), errors as
 * {"error":{"code","message"}}. A release (201 {"release","channel","backends","propagation"}) and a rollout change
 * (200, the channel with "propagation") are propagated once committed (control/propagate.h): the answer's
 * "propagation" says what reached which target; a failed target does not undo the change, it is retried. */
int upd_publish_release(upd_control_t *c, const char *app, json_t *body, json_t **out);
int upd_publish_rollout(upd_control_t *c, const char *app, const char *channel, json_t *body, json_t **out);
/**
 * Pulls a release (POST /v1/apps/APP/releases/VERSION/pull, body NULL or {"reason"}): marks it pulled (kept, files
 * still served, never again stable or rollout, its feed bodies dropped) and withdraws it from its channel. The
 * channel's rollout version: the rollout ends. Its stable version: the newest older release of the channel not itself
 * pulled becomes stable (none: the channel has no stable version; a rollout in progress goes on). Another, already
 * superseded version: only marked. The generation is bumped, what is now offered re-rendered, and the change
 * propagated like a rollout change (tags app, channel, the pulled version and the versions now offered).
 * @return 200 with the channel and "propagation"; 400 (body), 404 (app or version), 409 "pulled" (already), 503
 */
int upd_publish_pull(upd_control_t *c, const char *app, const char *version, json_t *body, json_t **out);
int upd_publish_channel_show(upd_control_t *c, const char *app, const char *channel, json_t **out);
int upd_publish_app_create(upd_control_t *c, json_t *body, json_t **out);
/** {"error":{"code":code,"message":message}} */
json_t *upd_api_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* control/mirror.c */
/**
 * Checks every file of a release before it is registered and fills in what only the bytes tell: sha1, the block
 * digests (XXH3-128 per conf->block_size bytes, files over one block), the size and sha512 of NAME.blockmap.
 *
 * A file staged under the storage directory is hashed there and must have its declared size and sha512. With object
 * storage (c->nbackends != 0) each file and its NAME.blockmap must then be on every backend: a staged one that a
 * backend lacks is uploaded (signed with its SHA-256), one a backend has is read back and must be the same bytes; a
 * file not staged is read from every backend and each copy must be the declared bytes (a blockmap not staged is taken
 * from the backends when they all have the same one). Runs on the caller's thread, blocking.
 *
 * Objects uploaded before a later file is refused stay on the backends: they hold the declared bytes under
 * APP/VERSION/NAME, which is what a retry verifies.
 * @param[out] backends  on success, a new reference: {"r2":[{"file","action":"uploaded"|"verified","bytes"}, ...],
 *                       "s3":[...]}, in file order, each file followed by its blockmap; {} without object storage
 * @param[out] out       on refusal, the error body ({"error":{"code","message"}}), a new reference
 * @return 0, or the HTTP status of the refusal: 422 file_missing, size_mismatch, checksum_mismatch (the staged copy),
 *         backend_mismatch (a backend's copy differs), too_big (more blocks than UPD_BLOCKS_MAX); 502 backend_error
 *         (a backend failed or refused: its name, status and S3 code; logged); 503 storage_error (staging unreadable)
 */
int upd_mirror_release(upd_control_t *c, upd_release_t *rel, json_t **backends, json_t **out);

/* control/api.c */
int upd_control_on_req(void *app, h2o_req_t *req);
size_t upd_control_route_of(const h2o_req_t *req);
extern const char *const upd_control_route_names[];
#define UPD_CONTROL_ROUTE_COUNT 7

#endif
