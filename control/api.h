#ifndef UPD_API_H
#define UPD_API_H

#include <h2o.h>
#include <stddef.h>

/*
 * The control API v1 (PROTOCOLS.md, docs/control-api.md) behind server/http.h: POST /v1/apps, POST|GET
 * /v1/apps/APP/releases, GET /v1/apps/APP/releases/VERSION, POST /v1/apps/APP/releases/VERSION/publish,
 * PUT /v1/apps/APP/channels/CHANNEL/rollout, GET|HEAD /v1/apps/APP/channels/CHANNEL,
 * POST /v1/apps/APP/releases/VERSION/pull, POST|GET /v1/members, GET|PATCH|DELETE /v1/members/ID, POST|GET /v1/keys,
 * DELETE /v1/keys/ID, POST /v1/login, GET /v1/audit (each with an API key, control/keys.h), and, without a key, /healthz and /metrics.
 * JSON in and out; every refusal is {"error":{"code","message"}} with the status server/http_error.h gives its UPD_E*
 * code, but for 405 (a method the path does not take, with Allow). A 401's code says why: "unauthorized", "expired" or
 * "revoked".
 */

/**
 * Answers a request (upd_http_opts_t.on_req); app is the upd_control_t. Blocking: a release's files are hashed and
 * sent to object storage on the calling thread.
 * @return 0: every request is answered, unknown paths with 404
 */
int upd_control_on_req(void *app, h2o_req_t *req);

/**
 * The metrics route of a request (upd_http_opts_t.route_of): the index of its route's label in
 * upd_control_route_labels(), by path alone (a wrong method or a bad parameter still counts under its route); the
 * index of "other" for any other path and for /metrics.
 */
size_t upd_control_route_of(const h2o_req_t *req);

/**
 * The route labels of updraft_requests_total, in the order /metrics lists them: "apps", "releases", "rollout",
 * "channel", "health", "pull", "publish", "members", "keys", "login", "audit", then "other", always last.
 * @param[out] n  how many
 * @return a static array, valid for the life of the program
 */
const char *const *upd_control_route_labels(size_t *n);

#endif
