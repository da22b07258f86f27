/* The control API's state changes on the worker pool (control/jobs.h). */
#include "control/jobs.h"
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/log.h"
#include "domain/ids.h"
#include "domain/version.h"
#include "control/api_error.h"
#include "server/http.h"
#include "server/http_error.h"
#include "server/workers.h"

/* Everything a call needs, copied off the request: the worker never touches it (the client may leave meanwhile). */
typedef struct {
    upd_control_t *c;
    upd_call_fn fn;
    int success;
    char app[UPD_ID_MAX + 1], channel[UPD_ID_MAX + 1], version[UPD_VERSION_MAX + 1];
    bool has_app, has_channel, has_version;
    json_t *body;
} call_t;

/* on a worker */
static void
run_call(void *arg, upd_job_answer_t *answer)
{
    call_t *call = arg;
    json_t *out = NULL;
    upd_reason_t reason = {"", ""};
    upd_call_params_t p = {call->has_app ? call->app : NULL, call->has_channel ? call->channel : NULL,
                           call->has_version ? call->version : NULL};
    int err = call->fn(call->c, &p, call->body, &out, &reason);
    if (err != 0) {
        json_decref(out);
        upd_http_error_t e = upd_http_error_of(err, &reason);
        answer->status = e.status;
        out = upd_api_error(e.code, "%s", e.message);
    } else {
        answer->status = call->success;
        if (out == NULL) {
            answer->status = 500;
            out = upd_api_error("internal", "the call gave no answer");
        }
    }
    answer->content_type = "application/json";
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

static bool
copy(char *dst, size_t cap, const char *src)
{
    if (src == NULL)
        return false;
    size_t len = strlen(src);
    if (len >= cap)
        len = cap - 1; /* the router checked them against the same maxima */
    memcpy(dst, src, len);
    dst[len] = '\0';
    return true;
}

void
upd_jobs_submit(upd_control_t *c, h2o_req_t *req, upd_call_fn fn, const upd_call_params_t *p, json_t *body, int success)
{
    call_t *call = calloc(1, sizeof(*call));
    if (call == NULL)
        abort();
    call->c = c;
    call->fn = fn;
    call->success = success;
    call->has_app = copy(call->app, sizeof(call->app), p->app);
    call->has_channel = copy(call->channel, sizeof(call->channel), p->channel);
    call->has_version = copy(call->version, sizeof(call->version), p->version);
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
