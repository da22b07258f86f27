/* The control API's state changes on the worker pool (control/jobs.h). */
#include "control/jobs.h"
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/log.h"
#include "domain/ids.h"
#include "domain/version.h"
#include "server/http.h"
#include "server/workers.h"

/* Everything a call needs, copied off the request: the worker never touches it (the client may leave meanwhile). */
typedef struct {
    upd_control_t *c;
    upd_jobs_call_fn fn;
    char app[UPD_ID_MAX + 1], channel[UPD_ID_MAX + 1], version[UPD_VERSION_MAX + 1];
    json_t *body;
} call_t;

int
upd_jobs_app_create(upd_control_t *c, const char *app, const char *channel, const char *version, json_t *body, json_t **out)
{
    return upd_publish_app_create(c, body, out);
}

int
upd_jobs_release(upd_control_t *c, const char *app, const char *channel, const char *version, json_t *body, json_t **out)
{
    return upd_publish_release(c, app, body, out);
}

int
upd_jobs_rollout(upd_control_t *c, const char *app, const char *channel, const char *version, json_t *body, json_t **out)
{
    return upd_publish_rollout(c, app, channel, body, out);
}

int
upd_jobs_pull(upd_control_t *c, const char *app, const char *channel, const char *version, json_t *body, json_t **out)
{
    return upd_publish_pull(c, app, version, body, out);
}

/* on a worker */
static void
run_call(void *arg, upd_job_answer_t *answer)
{
    call_t *call = arg;
    json_t *out = NULL;
    answer->status = call->fn(call->c, call->app, call->channel, call->version, call->body, &out);
    answer->content_type = "application/json";
    if (out == NULL)
        out = upd_api_error("internal", "the call gave no answer");
    answer->body = json_dumps(out, JSON_COMPACT);
    answer->len = answer->body != NULL ? strlen(answer->body) : 0;
    json_decref(out);
}

static void
free_call(void *arg)
{
    call_t *call = arg;
    json_decref(call->body);
    free(call);
}

static void
copy(char *dst, size_t cap, const char *src)
{
    size_t len = src != NULL ? strlen(src) : 0;
    if (len >= cap)
        len = cap - 1; /* the router checked them against the same maxima */
    memcpy(dst, src != NULL ? src : "", len);
    dst[len] = '\0';
}

void
upd_jobs_submit(upd_control_t *c, h2o_req_t *req, upd_jobs_call_fn fn, const char *app, const char *channel,
                const char *version, json_t *body)
{
    call_t *call = calloc(1, sizeof(*call));
    if (call == NULL)
        abort();
    call->c = c;
    call->fn = fn;
    copy(call->app, sizeof(call->app), app);
    copy(call->channel, sizeof(call->channel), channel);
    copy(call->version, sizeof(call->version), version);
    call->body = body;
    int err = upd_workers_submit(c->workers, req, run_call, free_call, call);
    if (err == 0)
        return;
    free_call(call);
    json_t *e = err == UPD_ETOOBIG ? upd_api_error("busy", "too many state changes in progress: retry in a moment")
                                   : upd_api_error("unavailable", "the control plane is shutting down");
    if (err == UPD_ETOOBIG) {
        upd_log_warn("%s: refused: the job queue is full", upd_http_request_id(req));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT(UPD_WORKERS_RETRY_AFTER));
    }
    char *text = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    upd_http_send(req, 503, "application/json", text, strlen(text));
    free(text);
}
