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
    upd_call_fn fn; /* NULL: a refusal (err, reason) to record and answer */
    int success;
    char app[UPD_ID_MAX + 1], channel[UPD_ID_MAX + 1], version[UPD_VERSION_MAX + 1], id[UPD_ID_MAX + 1];
    char query[UPD_CALL_QUERY_MAX + 1];
    bool has_app, has_channel, has_version, has_id, has_query;
    upd_role_t role;
    upd_principal_t who;
    bool has_who;
    upd_audit_ctx_t audit;
    json_t *body;
    int err;
    bool denied; /* the refusal is the key's: 401, 403, or 404 for an app outside its scope */
    upd_reason_t reason;
} call_t;

/* on a worker */
static void
run_call(void *arg, upd_job_answer_t *answer)
{
    call_t *call = arg;
    json_t *out = NULL;
    upd_reason_t reason = {"", ""};
    upd_call_params_t p = {.app = call->has_app ? call->app : NULL,
                           .channel = call->has_channel ? call->channel : NULL,
                           .version = call->has_version ? call->version : NULL,
                           .id = call->has_id ? call->id : NULL,
                           .query = call->has_query ? call->query : NULL,
                           .role = call->role,
                           .who = call->has_who ? &call->who : NULL,
                           .audit = &call->audit};
    int err;
    if (call->fn != NULL) {
        call->audit.status = call->success;
        err = call->fn(call->c, &p, call->body, &out, &reason);
    } else {
        err = call->err;
        reason = call->reason;
    }
    if (err != 0) {
        json_decref(out);
        upd_http_error_t e = upd_http_error_of(err, &reason);
        /* a change that failed left nothing, its record included: the failure is recorded on its own; a call that
         * found the key may not do this (403) is the key's refusal, as the router's are */
        bool denied = call->fn == NULL ? call->denied : err == UPD_EFORBIDDEN;
        upd_audit_record(call->c->store, &call->audit, denied ? "denied" : "failed", e.status, e.code);
        answer->status = e.status;
        out = upd_api_error(e.code, "%s", e.message);
    } else {
        if (!call->audit.recorded) {
            /* every change appends its record to its own transaction (control/publish.h); one that did not is a bug */
            upd_log_error("%s: %s changed state without an audit record in its transaction: recorded now", call->audit.request_id,
                          call->audit.action);
            upd_audit_record(call->c->store, &call->audit, "ok", call->success, NULL);
        }
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
    upd_audit_ctx_dispose(&call->audit);
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

static void
submit(upd_control_t *c, h2o_req_t *req, call_t *call)
{
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

static call_t *
call_new(upd_control_t *c, upd_audit_ctx_t *audit)
{
    call_t *call = calloc(1, sizeof(*call));
    if (call == NULL)
        abort();
    call->c = c;
    if (audit != NULL) {
        call->audit = *audit;
        audit->detail = NULL; /* taken */
    }
    return call;
}

void
upd_jobs_submit(upd_control_t *c, h2o_req_t *req, upd_call_fn fn, const upd_call_params_t *p, json_t *body, int success)
{
    call_t *call = call_new(c, p->audit);
    call->fn = fn;
    call->success = success;
    call->has_app = copy(call->app, sizeof(call->app), p->app);
    call->has_channel = copy(call->channel, sizeof(call->channel), p->channel);
    call->has_version = copy(call->version, sizeof(call->version), p->version);
    call->has_id = copy(call->id, sizeof(call->id), p->id);
    call->has_query = copy(call->query, sizeof(call->query), p->query);
    call->role = p->role;
    if ((call->has_who = p->who != NULL))
        call->who = *p->who;
    call->body = body;
    submit(c, req, call);
}

void
upd_jobs_refuse(upd_control_t *c, h2o_req_t *req, upd_audit_ctx_t *audit, bool denied, int err, const upd_reason_t *reason)
{
    call_t *call = call_new(c, audit);
    call->err = err;
    call->denied = denied;
    call->reason = *reason;
    submit(c, req, call);
}
