/*
 * Control API v1 (PROTOCOLS.md): one table of routes, and the steps every request takes through it, in an order
 * clients can rely on: the path (404), the method (405), the path's parameters (400), the key (401), its role (403),
 * the body (400), then the work, whose UPD_E* code and reason become the answer through server/http_error.h.
 */
#include "control/api.h"
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#include "base/log.h"
#include "control/api_error.h"
#include "control/audit_query.h"
#include "control/backup.h"
#include "control/control.h"
#include "control/jobs.h"
#include "control/keys.h"
#include "control/members.h"
#include "control/publish.h"
#include "domain/ids.h"
#include "domain/version.h"
#include "server/http.h"
#include "server/http_error.h"

#define SEGMENTS_MAX 8 /* a deeper path is no route */

typedef upd_call_params_t params_t;

typedef enum {
    BODY_NONE,     /* any body is ignored */
    BODY_JSON,     /* a JSON object, required */
    BODY_OPTIONAL, /* a JSON object, or no body at all */
} body_t;

typedef struct {
    /* the methods the route takes, as a 405's Allow header lists them; NULL: any */
    const char *methods;
    /* the path's segments, NULL-terminated: literals, or the parameters "{app}", "{channel}", "{version}", "{member}" and
     * "{key}" (a key's id) */
    const char *shape[SEGMENTS_MAX + 1];
    /* the least role of the request's key where the call applies (on {app}, else account-wide); UPD_ROLE_NONE: no key
     * asked for; UPD_ROLE_ANY_KEY: any valid key, whatever its role and scope (serve checks what it must) */
    upd_role_t role;
    body_t body;
    /* the work, for a JSON answer: 0 with *out, answered with `success`, or a UPD_E* code and its reason */
    int (*serve)(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason);
    int success;
    /* or, instead of serve, a route that writes its own answer */
    void (*answer)(upd_control_t *c, h2o_req_t *req);
    /* its route in updraft_requests_total; "other" is where unknown paths are counted too */
    const char *label;
    /* a state change (LMDB writes, uploads, propagation): serve runs on a worker, off the loop (control/jobs.h) */
    bool worker;
    /* its action in the audit trail (control/audit.h): every state change and every refusal of a key is recorded */
    const char *action;
} route_t;

static int
serve_app_create(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    return upd_publish_app_create(c, p->audit, body, out, reason);
}

/* Without "channel" a draft, which build on the app may register; with one, the release is offered at once: release. */
static int
serve_release(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    json_t *channel = json_object_get(body, "channel");
    if (channel != NULL && !json_is_null(channel) && p->role < UPD_ROLE_RELEASE) {
        *out = NULL;
        upd_log_info("%s: refused: key %s has %s on %s, a release on a channel needs release", p->audit->request_id,
                     p->who != NULL ? p->who->key_id : "", upd_role_name(p->role), p->app);
        return upd_reason_set(reason, UPD_EFORBIDDEN, "forbidden",
                              "this needs the release role on app %s; the key has %s there (without \"channel\" the release is "
                              "registered as a draft)",
                              p->app, upd_role_name(p->role));
    }
    return upd_publish_release(c, p->audit, p->app, body, out, reason);
}

static int
serve_release_list(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)body;
    return upd_publish_release_list(c, p->app, out, reason);
}

static int
serve_release_show(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)body;
    return upd_publish_release_show(c, p->app, p->version, out, reason);
}

static int
serve_publish(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    return upd_publish_draft(c, p->audit, p->app, p->version, body, out, reason);
}

static int
serve_member_create(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    return upd_members_call_create(c, p->audit, body, out, reason);
}

static int
serve_member_list(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)p, (void)body;
    return upd_members_call_list(c, out, reason);
}

static int
serve_member_show(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)body;
    return upd_members_call_show(c, p->who, p->id, out, reason);
}

static int
serve_member_update(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    return upd_members_call_update(c, p->audit, p->id, body, out, reason);
}

static int
serve_member_remove(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)body;
    return upd_members_call_remove(c, p->audit, p->id, out, reason);
}

static int
serve_key_create(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    return upd_keys_call_create(c, p->audit, p->who, body, out, reason);
}

static int
serve_key_list(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)body;
    return upd_keys_call_list(c, p->query, out, reason);
}

static int
serve_key_revoke(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)body;
    return upd_keys_call_revoke(c, p->audit, p->who, p->id, out, reason);
}

static int
serve_login(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)body;
    return upd_keys_call_login(c, p->audit, p->who, out, reason);
}

static int
serve_rollout(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    return upd_publish_rollout(c, p->audit, p->app, p->channel, body, out, reason);
}

static int
serve_channel(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)body;
    return upd_publish_channel_show(c, p->app, p->channel, out, reason);
}

static int
serve_pull(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    return upd_publish_pull(c, p->audit, p->app, p->version, body, out, reason);
}

/* on the loop: one read transaction, at most audit.query_scan_max records read (control/audit_query.h) */
static int
serve_audit(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)body;
    return upd_audit_query(c->store, p->query, p->query != NULL ? strlen(p->query) : 0, c->conf->audit_query_scan_max, out, reason);
}

/* GET /v1/backups: what the object stores hold, from memory (control/backup.h) */
static int
serve_backups_list(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)p;
    (void)body;
    if (c->backup == NULL)
        return upd_reason_set(reason, UPD_EUNAVAILABLE, "unavailable", "backups are not set up");
    if ((*out = upd_backup_list_json(c->backup)) == NULL)
        return upd_reason_set(reason, UPD_ENOMEM, "", "out of memory");
    return 0;
}

typedef struct {
    upd_control_t *c;
    upd_audit_ctx_t *audit;
} backup_commit_t;

/* the backup.create record, in a write transaction of its own, committed before the copy is taken: the backup holds it */
static int
commit_backup_record(const char *id, void *arg)
{
    backup_commit_t *bc = arg;
    upd_audit_detail(bc->audit, "backup", json_string(id));
    upd_store_txn_t *txn;
    int err = upd_store_write_begin(bc->c->store, &txn);
    if (err != 0)
        return err;
    if ((err = upd_audit_append(txn, bc->audit)) != 0) {
        upd_store_txn_end(txn);
        return err;
    }
    return upd_store_commit(txn);
}

/* POST /v1/backups (on a worker): a backup starts now; 202 {"id"} */
static int
serve_backup_create(upd_control_t *c, const params_t *p, json_t *body, json_t **out, upd_reason_t *reason)
{
    (void)body;
    if (c->backup == NULL)
        return upd_reason_set(reason, UPD_EUNAVAILABLE, "unavailable", "backups are not set up");
    backup_commit_t bc = {c, p->audit};
    char id[UPD_BACKUP_ID_LEN + 1];
    int err = upd_backup_request(c->backup, commit_backup_record, &bc, id);
    if (err == UPD_EUNAVAILABLE)
        return upd_reason_set(reason, err, "unavailable", "the backup thread is not running (the control plane is stopping)");
    if (err != 0)
        return upd_reason_set(reason, err, "", "the backup's audit record could not be written: %s", upd_strerror(err));
    *out = json_pack("{s:s}", "id", id);
    return 0;
}

/*
 * 200 while the state store opens a read transaction: what a load balancer's health check asks. A backup problem is a
 * warning line under the 200 ("ok\nwarning: backups: ..."), not a 503: the API works, and a 503 would take a healthy
 * control plane out of its load balancer for what an operator has to fix (updraft_backup_age_seconds is the alert).
 */
static void
answer_health(upd_control_t *c, h2o_req_t *req)
{
    upd_store_txn_t *txn;
    if (upd_store_read_begin(c->store, &txn) != 0) {
        upd_http_send_text(req, 503, "unhealthy: state store unavailable");
        return;
    }
    upd_store_txn_end(txn);
    char warn[1000];
    if (c->backup != NULL && upd_backup_health(c->backup, (int64_t)time(NULL), warn, sizeof(warn)) > 0)
        upd_http_send_text(req, 200, "ok\n%s", warn);
    else
        upd_http_send_text(req, 200, "ok");
}

static void
answer_metrics(upd_control_t *c, h2o_req_t *req)
{
    size_t len;
    char *text = upd_metrics_render(c->metrics, &len);
    upd_http_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

/*
 * The routes. Their order is the order of the route labels in /metrics, "other" last: keep it when adding one (a new
 * label goes before the "other" row).
 */
/* clang-format off */
static const route_t routes[] = {
    /* methods    path shape                                                 role              body
     *            serve, success status / answer                            label, on a worker, audit action */
    {"POST",      {"v1", "apps"},                                            UPD_ROLE_ADMIN,   BODY_JSON,
                  serve_app_create, 201, NULL,                               "apps", true, "app.create"},
    {"POST",      {"v1", "apps", "{app}", "releases"},                       UPD_ROLE_BUILD,   BODY_JSON,
                  serve_release, 201, NULL,                                  "releases", true, "release.create"},
    {"PUT",       {"v1", "apps", "{app}", "channels", "{channel}", "rollout"}, UPD_ROLE_RELEASE, BODY_JSON,
                  serve_rollout, 200, NULL,                                  "rollout", true, "rollout.set"},
    {"GET, HEAD", {"v1", "apps", "{app}", "channels", "{channel}"},          UPD_ROLE_BUILD,   BODY_NONE,
                  serve_channel, 200, NULL,                                  "channel", false, "channel.read"},
    {NULL,        {"healthz"},                                               UPD_ROLE_NONE,    BODY_NONE,
                  NULL, 0, answer_health,                                    "health", false, NULL},
    {"POST",      {"v1", "apps", "{app}", "releases", "{version}", "pull"},  UPD_ROLE_RELEASE, BODY_OPTIONAL,
                  serve_pull, 200, NULL,                                     "pull", true, "release.pull"},
    {"GET, HEAD", {"v1", "apps", "{app}", "releases"},                       UPD_ROLE_BUILD,   BODY_NONE,
                  serve_release_list, 200, NULL,                             "releases", false, "release.list"},
    {"GET, HEAD", {"v1", "apps", "{app}", "releases", "{version}"},          UPD_ROLE_BUILD,   BODY_NONE,
                  serve_release_show, 200, NULL,                             "releases", false, "release.read"},
    {"POST",      {"v1", "apps", "{app}", "releases", "{version}", "publish"}, UPD_ROLE_RELEASE, BODY_JSON,
                  serve_publish, 201, NULL,                                  "publish", true, "release.publish"},
    {"POST",      {"v1", "members"},                                         UPD_ROLE_ADMIN,   BODY_JSON,
                  serve_member_create, 201, NULL,                            "members", true, "member.create"},
    {"GET, HEAD", {"v1", "members"},                                         UPD_ROLE_ADMIN,   BODY_NONE,
                  serve_member_list, 200, NULL,                              "members", false, "member.list"},
    {"GET, HEAD", {"v1", "members", "{member}"},                             UPD_ROLE_ANY_KEY, BODY_NONE,
                  serve_member_show, 200, NULL,                              "members", false, "member.read"},
    {"PATCH",     {"v1", "members", "{member}"},                             UPD_ROLE_ADMIN,   BODY_JSON,
                  serve_member_update, 200, NULL,                            "members", true, "member.update"},
    {"DELETE",    {"v1", "members", "{member}"},                             UPD_ROLE_ADMIN,   BODY_NONE,
                  serve_member_remove, 200, NULL,                            "members", true, "member.remove"},
    {"POST",      {"v1", "keys"},                                            UPD_ROLE_ANY_KEY, BODY_JSON,
                  serve_key_create, 201, NULL,                               "keys", true, "key.create"},
    {"GET, HEAD", {"v1", "keys"},                                            UPD_ROLE_ADMIN,   BODY_NONE,
                  serve_key_list, 200, NULL,                                 "keys", false, "key.list"},
    {"DELETE",    {"v1", "keys", "{key}"},                                   UPD_ROLE_ANY_KEY, BODY_NONE,
                  serve_key_revoke, 200, NULL,                               "keys", true, "key.revoke"},
    {"POST",      {"v1", "login"},                                           UPD_ROLE_ANY_KEY, BODY_OPTIONAL,
                  serve_login, 200, NULL,                                    "login", true, "auth.sign_in"},
    {"GET, HEAD", {"v1", "audit"},                                           UPD_ROLE_ADMIN,   BODY_NONE,
                  serve_audit, 200, NULL,                                    "audit", false, "audit.read"},
    {"GET, HEAD", {"v1", "backups"},                                         UPD_ROLE_ADMIN,   BODY_NONE,
                  serve_backups_list, 200, NULL,                             "backups", false, "backup.list"},
    {"POST",      {"v1", "backups"},                                         UPD_ROLE_ADMIN,   BODY_NONE,
                  serve_backup_create, 202, NULL,                            "backups", true, "backup.create"},
    {NULL,        {"metrics"},                                               UPD_ROLE_NONE,    BODY_NONE,
                  NULL, 0, answer_metrics,                                   "other", false, NULL},
};
/* clang-format on */
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---- route labels, derived from the table once ---- */

static const char *labels[NROUTES + 1];
static size_t nlabels, label_of_route[NROUTES], label_other;
static pthread_once_t labels_once = PTHREAD_ONCE_INIT;

static void
labels_init(void)
{
    for (size_t i = 0; i < NROUTES; ++i) {
        size_t k = 0;
        while (k < nlabels && strcmp(labels[k], routes[i].label) != 0)
            ++k;
        if (k == nlabels && strcmp(routes[i].label, "other") != 0)
            labels[nlabels++] = routes[i].label;
        label_of_route[i] = k;
    }
    /* last: server/metrics.c counts an index past the end there */
    label_other = nlabels;
    labels[nlabels++] = "other";
    for (size_t i = 0; i < NROUTES; ++i)
        if (strcmp(routes[i].label, "other") == 0)
            label_of_route[i] = label_other;
}

const char *const *
upd_control_route_labels(size_t *n)
{
    pthread_once(&labels_once, labels_init);
    *n = nlabels;
    return labels;
}

/* ---- matching ---- */

typedef struct {
    const char *p;
    size_t len;
} seg_t;

/* Splits "/v1/apps/APP/..." (up to a query) into its segments. @return their count, -1 when deeper than SEGMENTS_MAX
 * or when a segment is empty ("//", a trailing "/") */
static int
split(const char *path, size_t len, seg_t *segs)
{
    const char *q = memchr(path, '?', len);
    if (q != NULL)
        len = (size_t)(q - path);
    if (len == 0 || path[0] != '/')
        return -1;
    int n = 0;
    const char *p = path + 1, *end = path + len;
    while (p <= end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        if (slash == NULL)
            slash = end;
        if (n == SEGMENTS_MAX || slash == p)
            return -1;
        segs[n].p = p;
        segs[n].len = (size_t)(slash - p);
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

static bool
is_param(const char *shape_seg)
{
    return shape_seg[0] == '{';
}

/* Segment by segment: a literal must be the same bytes, a parameter takes any segment (it is checked later). */
static bool
shape_matches(const route_t *r, const seg_t *segs, int n)
{
    int k = 0;
    for (; k < n && r->shape[k] != NULL; ++k)
        if (!is_param(r->shape[k]) && !seg_is(&segs[k], r->shape[k]))
            return false;
    return k == n && r->shape[k] == NULL;
}

static bool
method_in(const h2o_req_t *req, const char *methods)
{
    if (methods == NULL)
        return true;
    for (const char *m = methods; *m != '\0';) {
        size_t len = strcspn(m, ", ");
        if (h2o_memis(req->method.base, req->method.len, m, len))
            return true;
        m += len;
        m += strspn(m, ", ");
    }
    return false;
}

size_t
upd_control_route_of(const h2o_req_t *req)
{
    pthread_once(&labels_once, labels_init);
    seg_t segs[SEGMENTS_MAX];
    int n = split(req->input.path.base, req->input.path.len, segs);
    for (size_t i = 0; i < NROUTES; ++i)
        if (shape_matches(&routes[i], segs, n))
            return label_of_route[i];
    return label_other;
}

/* ---- a request's steps ---- */

typedef struct {
    params_t p;
    char app[UPD_ID_MAX + 1], channel[UPD_ID_MAX + 1], version[UPD_VERSION_MAX + 1], id[UPD_ID_MAX + 1];
    char query[UPD_CALL_QUERY_MAX + 1];
} param_bufs_t;

static void
copy_seg(const seg_t *s, char *dst)
{
    memcpy(dst, s->p, s->len);
    dst[s->len] = '\0';
}

/* Checks and copies the path's parameters, in path order, and the query string. @return 0, or UPD_EINVAL with the reason */
static int
take_params(const route_t *r, const seg_t *segs, const h2o_req_t *req, param_bufs_t *b, upd_reason_t *reason)
{
    memset(&b->p, 0, sizeof(b->p));
    const char *q = memchr(req->path.base, '?', req->path.len);
    if (q != NULL) {
        size_t len = req->path.len - (size_t)(q + 1 - req->path.base);
        if (len > UPD_CALL_QUERY_MAX)
            return upd_reason_set(reason, UPD_EINVAL, "invalid", "query string: longer than %d bytes", UPD_CALL_QUERY_MAX);
        memcpy(b->query, q + 1, len);
        b->query[len] = '\0';
        b->p.query = b->query;
    }
    for (int k = 0; r->shape[k] != NULL; ++k) {
        const seg_t *s = &segs[k];
        if (strcmp(r->shape[k], "{app}") == 0) {
            if (!upd_id_is_app(s->p, s->len))
                return upd_reason_set(reason, UPD_EINVAL, "invalid", "app id: expected [a-z0-9][a-z0-9-]{0,62}");
            copy_seg(s, b->app);
            b->p.app = b->app;
        } else if (strcmp(r->shape[k], "{channel}") == 0) {
            if (!upd_id_is_channel(s->p, s->len))
                return upd_reason_set(reason, UPD_EINVAL, "invalid", "channel: expected [a-z0-9][a-z0-9-]{0,62}");
            copy_seg(s, b->channel);
            b->p.channel = b->channel;
        } else if (strcmp(r->shape[k], "{version}") == 0) {
            upd_version_t v;
            if (s->len > UPD_VERSION_MAX || upd_version_parse(s->p, s->len, &v) != 0)
                return upd_reason_set(reason, UPD_EINVAL, "invalid", "version: expected SemVer 2.0 (1.2.3, 1.3.0-beta.2)");
            copy_seg(s, b->version);
            b->p.version = b->version;
        } else if (strcmp(r->shape[k], "{member}") == 0) {
            if (!upd_id_is_app(s->p, s->len))
                return upd_reason_set(reason, UPD_EINVAL, "invalid", "member id: expected [a-z0-9][a-z0-9-]{0,62}");
            copy_seg(s, b->id);
            b->p.id = b->id;
        } else if (strcmp(r->shape[k], "{key}") == 0) {
            if (!upd_keys_is_id(s->p, s->len))
                return upd_reason_set(reason, UPD_EINVAL, "invalid", "key id: expected 16 lower-case hex digits");
            copy_seg(s, b->id);
            b->p.id = b->id;
        }
    }
    return 0;
}

static void
send_json(h2o_req_t *req, int status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        upd_http_send_text(req, 500, "internal error: out of memory");
        return;
    }
    upd_http_send(req, status, "application/json", text, strlen(text));
    free(text);
}

/* The one way a refusal is answered: status and code from server/http_error.h, the {"error"} body. */
static void
send_error(h2o_req_t *req, int err, const upd_reason_t *reason)
{
    upd_http_error_t e = upd_http_error_of(err, reason);
    send_json(req, e.status, upd_api_error(e.code, "%s", e.message));
}

/* Checks the request's key where the call applies (app, or account-wide when NULL). @return 0 or UPD_EAUTH (who->refusal
 * says why), or the store's UPD_E* code */
static int
authenticate(upd_control_t *c, h2o_req_t *req, const char *app, upd_principal_t *who)
{
    memset(who, 0, sizeof(*who));
    who->refusal = "unauthorized";
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
    err = upd_keys_authorize(txn, key, len, app, who);
    upd_store_txn_end(txn);
    if (err == 0)
        upd_key_uses_note(c->key_uses, who->key_id, (int64_t)time(NULL)); /* no I/O: written off the loop */
    return err;
}

/* Copies up to cap - 1 bytes of a header value, bytes outside printable ASCII replaced by '?' (a log-safe copy). */
static void
copy_header(h2o_req_t *req, const char *name, size_t name_len, char *dst, size_t cap)
{
    const h2o_iovec_t *v = upd_http_header(req, name, name_len);
    size_t n = v != NULL ? (v->len < cap - 1 ? v->len : cap - 1) : 0;
    for (size_t i = 0; i < n; ++i)
        dst[i] = v->base[i] >= 0x20 && v->base[i] < 0x7f ? v->base[i] : '?';
    dst[n] = '\0';
}

/* Who asks and from where, for the audit trail: filled before any check, so a refusal is recorded with it. */
static void
audit_begin(h2o_req_t *req, const route_t *r, const param_bufs_t *params, upd_audit_ctx_t *a)
{
    memset(a, 0, sizeof(*a));
    struct sockaddr_storage ss;
    socklen_t sl = upd_http_peer(req, &ss);
    if (sl != 0 && ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a->source, sizeof(a->source));
    else if (sl != 0 && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a->source, sizeof(a->source));
    copy_header(req, H2O_STRLIT("user-agent"), a->user_agent, sizeof(a->user_agent));
    snprintf(a->request_id, sizeof(a->request_id), "%s", upd_http_request_id(req));
    snprintf(a->action, sizeof(a->action), "%s", r->action != NULL ? r->action : r->label);
    if (params->p.app != NULL)
        snprintf(a->app, sizeof(a->app), "%s", params->p.app);
    if (params->p.channel != NULL)
        snprintf(a->channel, sizeof(a->channel), "%s", params->p.channel);
    if (params->p.version != NULL)
        snprintf(a->version, sizeof(a->version), "%s", params->p.version);
}

/* @return the body, NULL with the reason filled (UPD_EINVAL) */
static json_t *
parse_body(h2o_req_t *req, upd_reason_t *reason)
{
    if (req->entity.base == NULL || req->entity.len == 0) {
        upd_reason_set(reason, UPD_EINVAL, "invalid", "expected a JSON body");
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        upd_reason_set(reason, UPD_EINVAL, "invalid", "body is not JSON: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    } else if (!json_is_object(j)) {
        upd_reason_set(reason, UPD_EINVAL, "invalid", "body must be a JSON object");
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* 405 with the methods the path takes (every route of its shape) */
static void
method_not_allowed(h2o_req_t *req, const seg_t *segs, int n)
{
    char allow[64] = "";
    for (size_t i = 0; i < NROUTES; ++i)
        if (routes[i].methods != NULL && shape_matches(&routes[i], segs, n))
            snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", allow[0] != '\0' ? ", " : "", routes[i].methods);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, h2o_strdup(&req->pool, allow, SIZE_MAX).base,
                   strlen(allow));
    /* no UPD_E* code means "wrong method": the router answers this one itself */
    send_json(req, 405, upd_api_error("method_not_allowed", "method not allowed here"));
}

int
upd_control_on_req(void *app, h2o_req_t *req)
{
    upd_control_t *c = app;
    upd_reason_t reason = {"", ""};
    seg_t segs[SEGMENTS_MAX];
    int n = split(req->path.base, req->path.len, segs);

    const route_t *r = NULL;
    bool shaped = false;
    for (size_t i = 0; i < NROUTES && r == NULL; ++i) {
        if (!shape_matches(&routes[i], segs, n))
            continue;
        shaped = true;
        if (method_in(req, routes[i].methods))
            r = &routes[i];
    }
    if (r == NULL) {
        if (shaped)
            method_not_allowed(req, segs, n);
        else
            send_error(req, upd_reason_set(&reason, UPD_ENOTFOUND, "not_found", "no such API route"), &reason);
        return 0;
    }
    if (r->answer != NULL) {
        r->answer(c, req);
        return 0;
    }

    param_bufs_t params;
    int err = take_params(r, segs, req, &params, &reason);
    if (err != 0) {
        send_error(req, err, &reason);
        return 0;
    }
    upd_audit_ctx_t audit;
    upd_principal_t who;
    memset(&who, 0, sizeof(who));
    audit_begin(req, r, &params, &audit);
    params.p.audit = r->worker ? &audit : NULL;
    if (r->role != UPD_ROLE_NONE) {
        err = authenticate(c, req, params.p.app, &who);
        memcpy(audit.key, who.key_id, sizeof(audit.key));
        if (err != 0) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
            const char *why = err == UPD_EAUTH && who.refusal != NULL ? who.refusal : "unauthorized";
            upd_log_info("%s: refused: %s API key %s", upd_http_request_id(req), why, who.key_id);
            if (strcmp(why, "revoked") == 0)
                upd_reason_set(&reason, UPD_EAUTH, why, "the API key %s was revoked", who.key_id);
            else if (strcmp(why, "expired") == 0)
                upd_reason_set(&reason, UPD_EAUTH, why, "the API key %s has expired", who.key_id);
            else
                upd_reason_set(&reason, UPD_EAUTH, why, "missing or invalid API key (Authorization: Bearer KEY)");
            upd_jobs_refuse(c, req, &audit, true, UPD_EAUTH, &reason);
            return 0;
        }
        snprintf(audit.member, sizeof(audit.member), "%s", who.member);
        params.p.who = &who;
        params.p.role = who.role;
        if (r->role == UPD_ROLE_ANY_KEY) {
            /* any valid key: what the call may do is its own check */
        } else if (who.role == UPD_ROLE_NONE && params.p.app != NULL) {
            /* another app's resources look like no app at all to a key without scope there */
            upd_log_info("%s: refused: key %s has no scope on app %s", upd_http_request_id(req), who.key_id, params.p.app);
            upd_reason_set(&reason, UPD_ENOTFOUND, "not_found", "unknown app");
            upd_jobs_refuse(c, req, &audit, true, UPD_ENOTFOUND, &reason);
            return 0;
        } else if (who.role < r->role) {
            upd_log_info("%s: refused: key %s has %s, %s needs %s", upd_http_request_id(req), who.key_id, upd_role_name(who.role),
                         audit.action, upd_role_name(r->role));
            if (params.p.app != NULL)
                upd_reason_set(&reason, UPD_EFORBIDDEN, "forbidden", "this needs the %s role on app %s; the key has %s there",
                               upd_role_name(r->role), params.p.app, upd_role_name(who.role));
            else
                upd_reason_set(&reason, UPD_EFORBIDDEN, "forbidden", "this needs the %s role account-wide; the key has %s",
                               upd_role_name(r->role), upd_role_name(who.role));
            upd_jobs_refuse(c, req, &audit, true, UPD_EFORBIDDEN, &reason);
            return 0;
        }
    }

    json_t *body = NULL, *out = NULL;
    bool has_body = req->entity.base != NULL && req->entity.len != 0;
    if (r->body == BODY_JSON || (r->body == BODY_OPTIONAL && has_body)) {
        if ((body = parse_body(req, &reason)) == NULL) {
            if (r->worker)
                upd_jobs_refuse(c, req, &audit, false, UPD_EINVAL, &reason); /* a state change refused: recorded */
            else
                send_error(req, UPD_EINVAL, &reason);
            return 0;
        }
    }
    if (r->worker) {
        upd_jobs_submit(c, req, r->serve, &params.p, body, r->success); /* takes body */
        return 0;
    }
    err = r->serve(c, &params.p, body, &out, &reason);
    json_decref(body);
    if (err != 0) {
        json_decref(out);
        if (err == UPD_EFORBIDDEN) {
            /* a read the key may not make (another member's record): a refusal of the key, recorded */
            upd_log_info("%s: refused: key %s: %s", upd_http_request_id(req), who.key_id, reason.message);
            upd_jobs_refuse(c, req, &audit, true, err, &reason);
        } else {
            send_error(req, err, &reason);
        }
        return 0;
    }
    send_json(req, r->success, out);
    return 0;
}
