#ifndef UPD_CONTROL_H
#define UPD_CONTROL_H

#include <h2o.h>
#include <jansson.h>
#include "server/config.h"
#include "server/metrics.h"
#include "storage/store.h"

/* updraft-control: the only writer of release and rollout state (ARCHITECTURE.md). */
typedef struct st_upd_control_t {
    const upd_conf_t *conf;
    upd_store_t *store;
    int storage_fd; /* the local-directory object store */
    upd_metrics_t *metrics;
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
 * {"error":{"code","message"}} */
int upd_publish_release(upd_control_t *c, const char *app, json_t *body, json_t **out);
int upd_publish_rollout(upd_control_t *c, const char *app, const char *channel, json_t *body, json_t **out);
int upd_publish_channel_show(upd_control_t *c, const char *app, const char *channel, json_t **out);
int upd_publish_app_create(upd_control_t *c, json_t *body, json_t **out);
/** {"error":{"code":code,"message":message}} */
json_t *upd_api_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* control/api.c */
int upd_control_on_req(void *app, h2o_req_t *req);
size_t upd_control_route_of(const h2o_req_t *req);
extern const char *const upd_control_route_names[];
#define UPD_CONTROL_ROUTE_COUNT 6

#endif
