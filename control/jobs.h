#ifndef UPD_JOBS_H
#define UPD_JOBS_H

#include <h2o.h>
#include <jansson.h>
#include "base/err.h"
#include "control/audit.h"
#include "control/control.h"
#include "control/keys.h"

/*
 * The control API's state-changing calls (app create, release registration, rollout change, pull) run on the worker
 * pool (server/workers.h, c->workers): they open LMDB write transactions, upload to object storage and propagate,
 * all blocking. The loop routes, authorises and parses the request (control/api.c), then hands the call here; the
 * JSON answer is sent on the loop once the call returns. Reads (channel show, /healthz, /metrics) stay on the loop.
 */

/**
 * A call: the route's path parameters (checked before any key is; NULL when its path has none), the caller's role where
 * the call applies (control/keys.h: on app, or account-wide), and its audit context, whose target and detail the work
 * fills and whose record the work appends to its write transaction (control/audit.h).
 */
#define UPD_CALL_QUERY_MAX 512 /* a longer query string is refused (400) */

typedef struct st_upd_call_params_t {
    const char *app, *channel, *version;
    const char *id;    /* the path's {member} or {key}; NULL when it has none */
    const char *query; /* the request's query string (after '?'), NULL when none */
    upd_role_t role;
    const upd_principal_t *who; /* NULL on routes without a key */
    upd_audit_ctx_t *audit;     /* NULL on routes that change nothing */
} upd_call_params_t;

/**
 * The work of a route with a JSON answer: 0 with *out (a new reference), or a negative UPD_E* code and its reason,
 * answered as server/http_error.h maps them.
 */
typedef int (*upd_call_fn)(upd_control_t *c, const upd_call_params_t *p, json_t *body, json_t **out, upd_reason_t *reason);

/**
 * Runs fn on a worker and answers req on the loop: `success` with *out, or the mapped error. Takes body (a new
 * reference or NULL); the parameters are copied (the client may leave while the call runs: the call still completes,
 * and its answer is dropped). When the queue is full it answers 503 {"error":{"code":"busy"}} with Retry-After at
 * once. Either way req is answered (or will be): the caller returns 0 to h2o.
 */
void upd_jobs_submit(upd_control_t *c, h2o_req_t *req, upd_call_fn fn, const upd_call_params_t *p, json_t *body, int success);

/**
 * Answers a refusal found on the loop (401, 403, a malformed body of a state-changing call, a read refused to its key)
 * once its audit record is written on a worker: no refusal goes unrecorded. denied: the key's refusal (outcome
 * "denied"), else "failed". audit is copied (its detail taken). A full queue is answered 503 busy at once, as
 * upd_jobs_submit() does, and logged. A call run by upd_jobs_submit() that refuses with UPD_EFORBIDDEN is recorded
 * "denied" too.
 */
void upd_jobs_refuse(upd_control_t *c, h2o_req_t *req, upd_audit_ctx_t *audit, bool denied, int err, const upd_reason_t *reason);

#endif
