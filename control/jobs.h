#ifndef UPD_JOBS_H
#define UPD_JOBS_H

#include <h2o.h>
#include <jansson.h>
#include "control/control.h"

/*
 * The control API's state-changing calls (app create, release registration, rollout change, pull) run on the worker
 * pool (server/workers.h, c->workers): they open LMDB write transactions, upload to object storage and propagate,
 * all blocking. The loop parses and authorises the request, then hands the call here; the JSON answer is sent on the
 * loop once the call returns. Reads (channel show, /healthz, /metrics) stay on the loop.
 */

/** A call as it runs on a worker: the path's strings ("" when the route has none) and the parsed body (may be NULL). */
typedef int (*upd_jobs_call_fn)(upd_control_t *c, const char *app, const char *channel, const char *version, json_t *body,
                                json_t **out);

/* The calls, in the shape above (control/publish.c does the work). @return an HTTP status, *out the JSON answer */
int upd_jobs_app_create(upd_control_t *c, const char *app, const char *channel, const char *version, json_t *body, json_t **out);
int upd_jobs_release(upd_control_t *c, const char *app, const char *channel, const char *version, json_t *body, json_t **out);
int upd_jobs_rollout(upd_control_t *c, const char *app, const char *channel, const char *version, json_t *body, json_t **out);
int upd_jobs_pull(upd_control_t *c, const char *app, const char *channel, const char *version, json_t *body, json_t **out);

/**
 * Runs fn on a worker and answers req with its JSON. Takes body (a new reference or NULL); app, channel and version
 * (NULL for none) are copied. When the queue is full it answers 503 {"error":{"code":"busy"}} with Retry-After at
 * once. Either way req is answered (or will be): the caller returns 0 to h2o.
 */
void upd_jobs_submit(upd_control_t *c, h2o_req_t *req, upd_jobs_call_fn fn, const char *app, const char *channel,
                     const char *version, json_t *body);

#endif
