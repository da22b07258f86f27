/* Control API v1 (PROTOCOLS.md): routing, authentication, JSON in and out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "control/control.h"
#include "control/jobs.h"
#include "base/err.h"
#include "domain/ids.h"
#include "domain/version.h"
#include "server/http.h"
#include "base/log.h"

const char *const upd_control_route_names[UPD_CONTROL_ROUTE_COUNT] = {"apps",   "releases", "rollout", "channel",
                                                                      "health", "pull",     "other"};
#define ROUTE_PULL 5 /* also the internal route number below; "other" stays last (server/metrics.c counts there) */
#define ROUTE_OTHER 6

static void
send_json(h2o_req_t *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    upd_http_send(req, status, "application/json", text, strlen(text));
    free(text);
}

static void
send_error(h2o_req_t *req, int status, const char *code, const char *msg)
{
    send_json(req, status, upd_api_error(code, "%s", msg));
}

typedef struct {
    const char *p;
    size_t len;
} seg_t;

/* splits "/v1/apps/APP/..." (no query) into at most 8 segments; @return the count, -1 when deeper or empty parts */
static int
split(const char *path, size_t len, seg_t *segs, char bufs[][UPD_ID_MAX + 1])
{
    const char *q = memchr(path, '?', len);
    if (q != NULL)
        len = (size_t)(q - path);
    int n = 0;
    const char *p = path + 1, *end = path + len;
    if (len == 0 || path[0] != '/')
        return -1;
    while (p <= end) {
        const char *slash = memchr(p, '/', end - p);
        if (slash == NULL)
            slash = end;
        if (n == 8 || slash == p)
            return -1;
        segs[n].p = p;
        segs[n].len = (size_t)(slash - p);
        if (segs[n].len <= UPD_ID_MAX) {
            memcpy(bufs[n], p, segs[n].len);
            bufs[n][segs[n].len] = '\0';
        } else {
            bufs[n][0] = '\0';
        }
        ++n;
        p = slash + 1;
    }
    return n;
}

static bool
seg_is(const seg_t *s, const char *lit)
{
    return s->len == strlen(lit) && memcmp(s->p, lit, s->len) == 0;
}

static int
authenticate(upd_control_t *c, h2o_req_t *req, upd_role_t *role)
{
    const h2o_iovec_t *auth = upd_http_header(req, H2O_STRLIT("authorization"));
    if (auth == NULL || auth->len < 7 || strncasecmp(auth->base, "Bearer ", 7) != 0)
        return UPD_EAUTH;
    const char *key = auth->base + 7;
    size_t len = auth->len - 7;
    while (len > 0 && *key == ' ')
        ++key, --len;
    upd_store_txn_t *txn;
    int err = upd_store_read_begin(c->store, &txn);
    if (err != 0)
        return err;
    err = upd_keys_verify(txn, key, len, role);
    upd_store_txn_end(txn);
    return err;
}

static json_t *
parse_body(h2o_req_t *req, char *msg, size_t cap)
{
    if (req->entity.base == NULL || req->entity.len == 0) {
        snprintf(msg, cap, "expected a JSON body");
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        snprintf(msg, cap, "body is not JSON: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    else if (!json_is_object(j)) {
        snprintf(msg, cap, "body must be a JSON object");
        json_decref(j);
        j = NULL;
    }
    return j;
}

static bool
method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static void
method_not_allowed(h2o_req_t *req, const char *allow)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    send_error(req, 405, "method_not_allowed", "method not allowed here");
}

int
upd_control_on_req(void *app, h2o_req_t *req)
{
    upd_control_t *c = app;
    seg_t segs[8];
    char bufs[8][UPD_ID_MAX + 1];
    int n = split(req->path.base, req->path.len, segs, bufs);

    if (n == 1 && seg_is(&segs[0], "healthz")) {
        upd_store_txn_t *txn;
        if (upd_store_read_begin(c->store, &txn) != 0) {
            upd_http_send_text(req, 503, "unhealthy: state store unavailable");
            return 0;
        }
        upd_store_txn_end(txn);
        upd_http_send_text(req, 200, "ok");
        return 0;
    }
    if (n == 1 && seg_is(&segs[0], "metrics")) {
        size_t len;
        char *text = upd_metrics_render(c->metrics, &len);
        upd_http_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
        free(text);
        return 0;
    }
    if (n < 2 || !seg_is(&segs[0], "v1") || !seg_is(&segs[1], "apps")) {
        send_error(req, 404, "not_found", "no such API route");
        return 0;
    }

    /* which route, and which method it takes */
    const char *allow;
    int route;
    if (n == 2) {
        route = 0;
        allow = "POST";
    } else if (n == 4 && seg_is(&segs[3], "releases")) {
        route = 1;
        allow = "POST";
    } else if (n == 6 && seg_is(&segs[3], "channels") && seg_is(&segs[5], "rollout")) {
        route = 2;
        allow = "PUT";
    } else if (n == 5 && seg_is(&segs[3], "channels")) {
        route = 3;
        allow = "GET, HEAD";
    } else if (n == 6 && seg_is(&segs[3], "releases") && seg_is(&segs[5], "pull")) {
        route = ROUTE_PULL;
        allow = "POST";
    } else {
        send_error(req, 404, "not_found", "no such API route");
        return 0;
    }
    if (!(method_is(req, allow) || (route == 3 && (method_is(req, "GET") || method_is(req, "HEAD"))))) {
        method_not_allowed(req, allow);
        return 0;
    }
    const char *app_id = n >= 3 ? bufs[2] : NULL, *channel = route == 2 || route == 3 ? bufs[4] : NULL;
    if (app_id != NULL && !upd_id_is_app(app_id, strlen(app_id))) {
        send_error(req, 400, "invalid", "app id: expected [a-z0-9][a-z0-9-]{0,62}");
        return 0;
    }
    if (channel != NULL && !upd_id_is_channel(channel, strlen(channel))) {
        send_error(req, 400, "invalid", "channel: expected [a-z0-9][a-z0-9-]{0,62}");
        return 0;
    }
    char version[UPD_VERSION_MAX + 1] = "";
    if (route == ROUTE_PULL) {
        upd_version_t v;
        if (segs[4].len > UPD_VERSION_MAX || upd_version_parse(segs[4].p, segs[4].len, &v) != 0) {
            send_error(req, 400, "invalid", "version: expected SemVer 2.0 (1.2.3, 1.3.0-beta.2)");
            return 0;
        }
        memcpy(version, segs[4].p, segs[4].len);
        version[segs[4].len] = '\0';
    }

    upd_role_t role;
    int err = authenticate(c, req, &role);
    if (err != 0) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
        upd_log_info("%s: refused: missing or invalid API key", upd_http_request_id(req));
        send_error(req, 401, "unauthorized", "missing or invalid API key (Authorization: Bearer KEY)");
        return 0;
    }
    upd_role_t need = route == 0 ? UPD_ROLE_ADMIN : route == 3 ? UPD_ROLE_BUILD : UPD_ROLE_RELEASE;
    if (role < need) {
        char msg[128];
        snprintf(msg, sizeof(msg), "this needs the %s role; the key has %s", upd_role_name(need), upd_role_name(role));
        send_error(req, 403, "forbidden", msg);
        return 0;
    }

    json_t *out = NULL, *body = NULL;
    int status;
    /* pulling takes an optional body */
    if (route != 3 && !(route == ROUTE_PULL && (req->entity.base == NULL || req->entity.len == 0))) {
        char msg[256];
        if ((body = parse_body(req, msg, sizeof(msg))) == NULL) {
            send_error(req, 400, "invalid", msg);
            return 0;
        }
    }
    /* ---- dispatch: state changes run on a worker and are answered on the loop (control/jobs.h); reads stay here ---- */
    upd_jobs_call_fn call = route == 0 ? upd_jobs_app_create
                            : route == 1 ? upd_jobs_release
                            : route == 2 ? upd_jobs_rollout
                            : route == ROUTE_PULL ? upd_jobs_pull
                                                  : NULL;
    if (call != NULL) {
        upd_jobs_submit(c, req, call, app_id, channel, version, body); /* takes body */
        return 0;
    }
    status = upd_publish_channel_show(c, app_id, channel, &out);
    /* ---- end of dispatch ---- */
    json_decref(body);
    send_json(req, status, out);
    return 0;
}

size_t
upd_control_route_of(const h2o_req_t *req)
{
    const char *p = req->input.path.base;
    size_t len = req->input.path.len;
    if (len >= 8 && memcmp(p, "/healthz", 8) == 0)
        return 4;
    if (len < 8 || memcmp(p, "/v1/apps", 8) != 0)
        return ROUTE_OTHER;
    if (len == 8 || p[8] == '?')
        return 0;
    /* /v1/apps/APP/... : count the slashes; /v1/apps/APP/releases/VERSION/pull has as many as a rollout */
    int slashes = 0;
    size_t after_app = 0;
    for (size_t i = 0; i < len && p[i] != '?'; ++i)
        if (p[i] == '/' && ++slashes == 4)
            after_app = i + 1;
    if (slashes == 6 && len - after_app > 9 && memcmp(p + after_app, "releases/", 9) == 0)
        return ROUTE_PULL;
    return slashes == 4 ? 1 : slashes == 6 ? 2 : slashes == 5 ? 3 : ROUTE_OTHER;
}
