#include "sts/api.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"
#include "domain/state_sig.h"
#include "server/http.h"
#include "server/http_error.h"
#include "domain/webauthn.h"
#include "sts/diff.h"
#include "sts/enrol.h"
#include "sts/pages.h"

enum { R_HEALTHZ, R_METRICS, R_PAGE, R_PROPOSE, R_PROPOSAL, R_CANCEL, R_SIGNED, R_ENROL_OPTIONS, R_ENROL, R_APPROVE_OPTIONS, R_APPROVE,
       R_ADMIN_OPTIONS, R_ADMIN, R_OTHER, R_COUNT };
static const char *const route_labels[R_COUNT] = {"healthz", "metrics", "page", "propose", "proposal", "cancel", "signed",
                                                  "enrol_options", "enrol", "approve_options", "approve",
                                                  "admin_options", "admin", "other"};

const char *const *
upd_sts_route_labels(size_t *n)
{
    *n = R_COUNT;
    return route_labels;
}

/* ---- paths ---- */

#define SEGS_MAX 5
typedef struct {
    const char *p;
    size_t n;
} seg_t;

static int
split(const h2o_req_t *req, seg_t *segs)
{
    const char *p = req->path_normalized.base, *end = p + req->path_normalized.len;
    int n = 0;
    while (p < end) {
        while (p < end && *p == '/')
            ++p;
        if (p == end)
            break;
        const char *s = p;
        while (p < end && *p != '/')
            ++p;
        if (n == SEGS_MAX)
            return -1;
        segs[n++] = (seg_t){s, (size_t)(p - s)};
    }
    return n;
}

static bool
seg_is(const seg_t *s, const char *lit)
{
    return s->n == strlen(lit) && memcmp(s->p, lit, s->n) == 0;
}

/* A proposal id: 32 lowercase hex digits. */
static bool
seg_is_id(const seg_t *s)
{
    if (s->n != 32)
        return false;
    for (size_t i = 0; i != 32; ++i)
        if (!((s->p[i] >= '0' && s->p[i] <= '9') || (s->p[i] >= 'a' && s->p[i] <= 'f')))
            return false;
    return true;
}

/* An app id as the control plane names them: [a-z0-9][a-z0-9._-]{0,62}. */
static bool
app_valid(const char *s, size_t n)
{
    char buf[64];
    if (n == 0 || n > 63)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return upd_sts_member_name_valid(buf);
}

size_t
upd_sts_route_of(const h2o_req_t *req)
{
    seg_t s[SEGS_MAX];
    int n = split(req, s);
    if (n == 1 && seg_is(&s[0], "healthz"))
        return R_HEALTHZ;
    if (n == 1 && seg_is(&s[0], "metrics"))
        return R_METRICS;
    if ((n == 1 && (seg_is(&s[0], "enrol") || seg_is(&s[0], "admin"))) || (n == 2 && seg_is(&s[0], "approve")))
        return R_PAGE;
    if (n >= 2 && seg_is(&s[0], "v1") && seg_is(&s[1], "proposals"))
        return n == 2                                 ? R_PROPOSE
               : n == 4 && seg_is(&s[3], "cancel")  ? R_CANCEL
               : n == 4 && seg_is(&s[3], "options") ? R_APPROVE_OPTIONS
               : n == 4 && seg_is(&s[3], "approve") ? R_APPROVE
                                                    : R_PROPOSAL;
    if (n == 2 && seg_is(&s[0], "v1") && seg_is(&s[1], "enrol"))
        return R_ENROL;
    if (n == 2 && seg_is(&s[0], "v1") && seg_is(&s[1], "admin"))
        return R_ADMIN;
    if (n == 3 && seg_is(&s[0], "v1") && seg_is(&s[1], "admin") && seg_is(&s[2], "options"))
        return R_ADMIN_OPTIONS;
    if (n == 3 && seg_is(&s[0], "v1") && seg_is(&s[1], "enrol") && seg_is(&s[2], "options"))
        return R_ENROL_OPTIONS;
    if (n >= 2 && seg_is(&s[0], "v1") && seg_is(&s[1], "signed"))
        return R_SIGNED;
    return R_OTHER;
}

/* ---- answers ---- */

static char *
error_body(const char *code, const char *message, size_t *len)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    *len = s != NULL ? strlen(s) : 0;
    return s;
}

static void
send_error(h2o_req_t *req, int status, const char *code, const char *message)
{
    size_t len;
    char *body = error_body(code, message, &len);
    upd_http_send(req, status, "application/json", body != NULL ? body : "", len);
    free(body);
}

static void
send_json(h2o_req_t *req, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s == NULL) {
        send_error(req, 500, "internal", "out of memory");
        return;
    }
    upd_http_send(req, status, "application/json", s, strlen(s));
    free(s);
}

static void
answer_json(upd_job_answer_t *a, int status, json_t *j)
{
    a->status = status;
    a->content_type = "application/json";
    a->body = json_dumps(j, JSON_COMPACT);
    a->len = a->body != NULL ? strlen(a->body) : 0;
    if (a->body == NULL)
        a->status = 500;
}

static void
answer_error(upd_job_answer_t *a, int status, const char *code, const char *message)
{
    a->status = status;
    a->content_type = "application/json";
    a->body = error_body(code, message, &a->len);
}

/* Maps an error of this module's functions to its answer, the reason's code when it has one. */
static void
answer_err(upd_job_answer_t *a, int err, const upd_reason_t *why)
{
    upd_http_error_t e = upd_http_error_of(err, why);
    answer_error(a, e.status, e.code, e.message);
}

/* ---- signing ---- */

static void
digest_of(const void *doc, size_t len, char out[72])
{
    unsigned char md[32];
    unsigned int n = 32;
    EVP_Digest(doc, len, md, &n, EVP_sha256(), NULL);
    memcpy(out, "sha256:", 7);
    upd_hex_encode(md, 32, out + 7);
}

/* The last generation signed for app, 0 when none. */
static int
last_signed(upd_sts_txn_t *txn, const char *app, uint64_t *gen)
{
    json_t *s;
    int ret = upd_sts_get_json(txn, UPD_STS_DB_SIGNED, app, strlen(app), &s);
    *gen = 0;
    if (ret == UPD_ENOTFOUND)
        return 0;
    if (ret != 0)
        return ret;
    *gen = (uint64_t)json_integer_value(json_object_get(s, "generation"));
    json_decref(s);
    return 0;
}

int
upd_sts_sign_state(upd_sts_t *sts, upd_sts_txn_t *txn, const char *app, uint64_t generation, const char *doc, size_t doc_len,
                   const char *proposal, char **envelope, upd_reason_t *why)
{
    uint64_t last;
    int64_t now = (int64_t)time(NULL), expires = now + (int64_t)sts->conf->sts_signing_ttl_s;
    char *env = NULL, digest[72];
    size_t env_len;
    json_t *rec;
    int ret;

    if ((ret = last_signed(txn, app, &last)) != 0)
        return upd_reason_set(why, ret, "store", "the STS store failed (see the log)");
    if (generation <= last)
        return upd_reason_set(why, UPD_ECONFLICT, "superseded", "generation %llu of %s is signed already (the last is %llu)",
                              (unsigned long long)generation, app, (unsigned long long)last);
    if ((ret = upd_state_sig_sign(sts->key, app, generation, expires, doc, doc_len, &env, &env_len, why)) != 0)
        return ret;
    digest_of(doc, doc_len, digest);
    rec = json_pack("{s:I,s:s,s:I,s:s%,s:I,s:s}", "generation", (json_int_t)generation, "digest", digest, "expires",
                    (json_int_t)expires, "envelope", env, env_len, "signed_at", (json_int_t)now, "proposal", proposal);
    if (rec == NULL) {
        free(env);
        return upd_reason_set(why, UPD_ENOMEM, "", "out of memory");
    }
    if ((ret = upd_sts_put_json(txn, UPD_STS_DB_SIGNED, app, strlen(app), rec)) == 0)
        ret = upd_sts_put(txn, UPD_STS_DB_SIGNED_DOCS, app, strlen(app), doc, doc_len);
    json_decref(rec);
    if (ret != 0) {
        free(env);
        return upd_reason_set(why, ret, "store", "the STS store failed (see the log)");
    }
    ++sts->signatures;
    if (envelope != NULL)
        *envelope = env;
    else
        free(env);
    return 0;
}

/* ---- proposals from the control plane ---- */

typedef struct {
    upd_sts_t *sts;
    char app[64];
    char *doc;
    size_t doc_len;
    char *action, *requested_by;
} propose_job_t;

static void
propose_free(void *arg)
{
    propose_job_t *j = arg;
    free(j->doc);
    free(j->action);
    free(j->requested_by);
    free(j);
}

/* The answer of a proposal record: the record itself plus "url". */
static json_t *
proposal_answer(upd_sts_t *sts, json_t *rec)
{
    json_t *a = json_deep_copy(rec);
    const char *id = json_string_value(json_object_get(rec, "id"));
    if (a != NULL && id != NULL)
        json_object_set_new(a, "url", json_sprintf("%s/approve/%s", sts->public_url, id));
    return a;
}

static void
propose_run(void *arg, upd_job_answer_t *answer)
{
    propose_job_t *j = arg;
    upd_sts_t *sts = j->sts;
    upd_reason_t why = {"", ""};
    upd_sts_diff_t diff = {NULL, false};
    upd_sts_txn_t *txn = NULL;
    json_t *doc = NULL, *rec = NULL, *audit = NULL, *ans = NULL;
    const void *prev = NULL;
    size_t prev_len = 0;
    uint64_t gen, last;
    uint8_t raw[16];
    char id[33], digest[72], *envelope = NULL;
    int64_t now = (int64_t)time(NULL);
    int ret;

    /* the contract's check first: a state document of this app */
    doc = json_loadb(j->doc, j->doc_len, JSON_REJECT_DUPLICATES, NULL);
    const char *doc_app = json_string_value(json_object_get(doc, "app"));
    json_int_t g = json_integer_value(json_object_get(doc, "generation"));
    if (!json_is_object(doc) || json_integer_value(json_object_get(doc, "format")) != 1 || doc_app == NULL ||
        strcmp(doc_app, j->app) != 0 || !json_is_integer(json_object_get(doc, "generation")) || g <= 0) {
        answer_error(answer, 422, "invalid_document", "not a state document of the app (format 1, app, generation > 0)");
        goto Exit;
    }
    gen = (uint64_t)g;
    if ((ret = upd_sts_txn_begin(sts->store, true, &txn)) != 0 || (ret = last_signed(txn, j->app, &last)) != 0) {
        answer_err(answer, ret, NULL);
        goto Exit;
    }
    if (gen <= last) {
        snprintf(why.message, sizeof(why.message), "generation %llu of %s is not above the last signed, %llu",
                 (unsigned long long)gen, j->app, (unsigned long long)last);
        answer_error(answer, 409, "rollback", why.message);
        goto Exit;
    }
    if ((ret = upd_sts_get(txn, UPD_STS_DB_SIGNED_DOCS, j->app, strlen(j->app), &prev, &prev_len)) != 0 && ret != UPD_ENOTFOUND) {
        answer_err(answer, ret, NULL);
        goto Exit;
    }
    if ((ret = upd_sts_diff(j->app, ret == 0 ? prev : NULL, ret == 0 ? prev_len : 0, j->doc, j->doc_len, &diff, &why)) != 0) {
        answer_error(answer, 422, "invalid_document", why.message);
        goto Exit;
    }
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        answer_error(answer, 500, "internal", "no random bytes");
        goto Exit;
    }
    upd_hex_encode(raw, sizeof(raw), id);
    digest_of(j->doc, j->doc_len, digest);
    rec = json_pack("{s:s,s:s,s:I,s:s,s:O,s:b,s:s,s:I,s:I,s:s,s:s,s:[],s:I}", "id", id, "app", j->app, "generation",
                    (json_int_t)gen, "digest", digest, "summary", diff.summary, "reduces_only", diff.reduces_only, "status",
                    "pending", "created", (json_int_t)now, "expires", (json_int_t)(now + (int64_t)sts->conf->sts_proposals_ttl_s),
                    "requested_by", j->requested_by, "action", j->action, "approvals", "needed", (json_int_t)1);
    if (rec == NULL) {
        answer_error(answer, 500, "internal", "out of memory");
        goto Exit;
    }
    /* a per-app policy (meta "policy/APP" {"approvers":N}) sets the quorum */
    char pkey[80];
    json_t *pol;
    int pn = snprintf(pkey, sizeof(pkey), "policy/%s", j->app);
    if (upd_sts_get_json(txn, UPD_STS_DB_META, pkey, (size_t)pn, &pol) == 0) {
        json_int_t n = json_integer_value(json_object_get(pol, "approvers"));
        if (n >= 1)
            json_object_set_new(rec, "needed", json_integer(n));
        json_decref(pol);
    }
    bool auto_signed = false;
    if (diff.reduces_only && sts->conf->sts_auto_sign_reductions) {
        if ((ret = upd_sts_sign_state(sts, txn, j->app, gen, j->doc, j->doc_len, id, &envelope, &why)) != 0) {
            answer_err(answer, ret, &why);
            goto Exit;
        }
        json_object_set_new(rec, "status", json_string("approved"));
        json_object_set_new(rec, "envelope", json_string(envelope));
        auto_signed = true;
    }
    audit = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s}", "action", "propose", "actor", "control", "proposal", id, "app", j->app,
                      "generation", (json_int_t)gen, "outcome", auto_signed ? "signed" : "pending", "requested_by", j->requested_by);
    if (audit == NULL || (ret = upd_sts_put_json(txn, UPD_STS_DB_PROPOSALS, id, 32, rec)) != 0 ||
        (ret = upd_sts_put(txn, UPD_STS_DB_PROPOSAL_DOCS, id, 32, j->doc, j->doc_len)) != 0 ||
        (ret = upd_sts_audit_append(txn, audit, NULL)) != 0) {
        answer_err(answer, audit == NULL ? UPD_ENOMEM : ret, NULL);
        goto Exit;
    }
    ret = upd_sts_txn_commit(txn);
    txn = NULL;
    if (ret != 0) {
        answer_err(answer, ret, NULL);
        goto Exit;
    }
    ++sts->proposals_created;
    upd_log_info("proposal %s: %s generation %llu from %s: %s", id, j->app, (unsigned long long)gen, j->requested_by,
                 auto_signed ? "reduces exposure only, signed" : "pending approval");
    ans = proposal_answer(sts, rec);
    answer_json(answer, auto_signed ? 200 : 201, ans);
Exit:
    upd_sts_txn_abort(txn);
    upd_sts_diff_dispose(&diff);
    json_decref(doc);
    json_decref(rec);
    json_decref(audit);
    json_decref(ans);
    free(envelope);
}

/* ---- cancel ---- */

typedef struct {
    upd_sts_t *sts;
    char id[33];
} cancel_job_t;

static void
cancel_run(void *arg, upd_job_answer_t *answer)
{
    cancel_job_t *j = arg;
    upd_sts_txn_t *txn = NULL;
    json_t *rec = NULL, *audit = NULL, *ans = NULL;
    int ret;
    if ((ret = upd_sts_txn_begin(j->sts->store, true, &txn)) != 0 ||
        (ret = upd_sts_get_json(txn, UPD_STS_DB_PROPOSALS, j->id, 32, &rec)) != 0) {
        if (ret == UPD_ENOTFOUND)
            answer_error(answer, 404, "not_found", "no such proposal");
        else
            answer_err(answer, ret, NULL);
        goto Exit;
    }
    if (strcmp(json_string_value(json_object_get(rec, "status")), "pending") != 0) {
        answer_error(answer, 409, "not_pending", "the proposal is not pending");
        goto Exit;
    }
    json_object_set_new(rec, "status", json_string("cancelled"));
    audit = json_pack("{s:s,s:s,s:s,s:s,s:s}", "action", "cancel", "actor", "control", "proposal", j->id, "app",
                      json_string_value(json_object_get(rec, "app")), "outcome", "cancelled");
    if (audit == NULL || (ret = upd_sts_put_json(txn, UPD_STS_DB_PROPOSALS, j->id, 32, rec)) != 0 ||
        (ret = upd_sts_audit_append(txn, audit, NULL)) != 0 || (ret = upd_sts_txn_commit(txn)) != 0) {
        txn = ret == 0 ? txn : NULL; /* a failed commit ended it */
        answer_err(answer, audit == NULL ? UPD_ENOMEM : ret, NULL);
        goto Exit;
    }
    txn = NULL;
    ans = proposal_answer(j->sts, rec);
    answer_json(answer, 200, ans);
Exit:
    upd_sts_txn_abort(txn);
    json_decref(rec);
    json_decref(audit);
    json_decref(ans);
}

/* ---- the loop side ---- */

static bool
control_authorized(upd_sts_t *sts, h2o_req_t *req)
{
    const h2o_iovec_t *h = upd_http_header(req, "authorization", 13);
    size_t tlen = strlen(sts->control_token);
    if (tlen == 0 || h == NULL || h->len != 7 + tlen || strncasecmp(h->base, "Bearer ", 7) != 0)
        return false;
    return CRYPTO_memcmp(h->base + 7, sts->control_token, tlen) == 0;
}

static void
submit(upd_sts_t *sts, h2o_req_t *req, upd_job_run_cb run, upd_job_free_cb free_arg, void *arg)
{
    int ret = upd_workers_submit(sts->workers, req, run, free_arg, arg);
    if (ret == 0)
        return;
    free_arg(arg);
    if (ret == UPD_ETOOBIG)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT(UPD_WORKERS_RETRY_AFTER));
    send_error(req, 503, "busy", "too much work under way: try again shortly");
}

static json_t *
body_json(h2o_req_t *req)
{
    if (req->entity.base == NULL || req->entity.len == 0)
        return NULL;
    json_t *j = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, NULL);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static void
on_propose(upd_sts_t *sts, h2o_req_t *req)
{
    json_t *b = body_json(req);
    const char *app = json_string_value(json_object_get(b, "app"));
    json_t *doc = json_object_get(b, "document");
    const char *action = json_string_value(json_object_get(b, "action"));
    const char *by = json_string_value(json_object_get(b, "requested_by"));
    propose_job_t *j;
    if (b == NULL) {
        send_error(req, 400, "invalid_json", "expected a JSON object");
        goto Exit;
    }
    if (app == NULL || !app_valid(app, strlen(app))) {
        send_error(req, 400, "invalid_app", "\"app\": expected an app id");
        goto Exit;
    }
    if (!json_is_string(doc) || json_string_length(doc) == 0) {
        send_error(req, 422, "invalid_document", "\"document\": expected the state document's bytes as a string");
        goto Exit;
    }
    if ((j = calloc(1, sizeof(*j))) == NULL) {
        send_error(req, 500, "internal", "out of memory");
        goto Exit;
    }
    j->sts = sts;
    snprintf(j->app, sizeof(j->app), "%s", app);
    j->doc_len = json_string_length(doc);
    j->doc = malloc(j->doc_len);
    j->action = strdup(action != NULL ? action : "");
    j->requested_by = strdup(by != NULL ? by : "");
    if (j->doc == NULL || j->action == NULL || j->requested_by == NULL) {
        propose_free(j);
        send_error(req, 500, "internal", "out of memory");
        goto Exit;
    }
    memcpy(j->doc, json_string_value(doc), j->doc_len);
    submit(sts, req, propose_run, propose_free, j);
Exit:
    json_decref(b);
}

static void
on_proposal_get(upd_sts_t *sts, h2o_req_t *req, const seg_t *id)
{
    upd_sts_txn_t *txn;
    json_t *rec = NULL, *ans;
    int ret;
    bool with_doc = req->query_at != SIZE_MAX && h2o_strstr(req->path.base + req->query_at, req->path.len - req->query_at,
                                                           H2O_STRLIT("document=1")) != SIZE_MAX;
    if ((ret = upd_sts_txn_begin(sts->store, false, &txn)) != 0) {
        send_error(req, 503, "store_unavailable", "the STS store failed");
        return;
    }
    if ((ret = upd_sts_get_json(txn, UPD_STS_DB_PROPOSALS, id->p, 32, &rec)) != 0) {
        upd_sts_txn_abort(txn);
        if (ret == UPD_ENOTFOUND)
            send_error(req, 404, "not_found", "no such proposal");
        else
            send_error(req, 503, "store_unavailable", "the STS store failed");
        return;
    }
    ans = proposal_answer(sts, rec);
    /* a pending proposal past its expiry reads as expired (the record is rewritten by the next write that sees it) */
    if (strcmp(json_string_value(json_object_get(rec, "status")), "pending") == 0 &&
        json_integer_value(json_object_get(rec, "expires")) <= (json_int_t)time(NULL))
        json_object_set_new(ans, "status", json_string("expired"));
    if (with_doc) {
        const void *d;
        size_t n;
        if (upd_sts_get(txn, UPD_STS_DB_PROPOSAL_DOCS, id->p, 32, &d, &n) == 0)
            json_object_set_new(ans, "document", json_stringn(d, n));
    }
    upd_sts_txn_abort(txn);
    send_json(req, 200, ans);
    json_decref(rec);
    json_decref(ans);
}

static int
collect_signed(const void *key, size_t key_len, const void *val, size_t val_len, void *arg)
{
    json_t *rec = json_loadb(val, val_len, 0, NULL);
    if (rec == NULL)
        return 0;
    json_object_del(rec, "signed_at");
    json_object_del(rec, "proposal");
    json_object_set_new(rec, "app", json_stringn(key, key_len));
    json_array_append_new(arg, rec);
    return 0;
}

static void
on_signed(upd_sts_t *sts, h2o_req_t *req, const seg_t *app)
{
    upd_sts_txn_t *txn;
    json_t *apps = json_array(), *ans = NULL;
    if (upd_sts_txn_begin(sts->store, false, &txn) != 0) {
        json_decref(apps);
        send_error(req, 503, "store_unavailable", "the STS store failed");
        return;
    }
    if (app == NULL) {
        upd_sts_each(txn, UPD_STS_DB_SIGNED, NULL, 0, collect_signed, apps);
        ans = json_pack("{s:O}", "apps", apps);
        send_json(req, 200, ans);
    } else {
        const void *v;
        size_t n;
        if (app_valid(app->p, app->n) && upd_sts_get(txn, UPD_STS_DB_SIGNED, app->p, app->n, &v, &n) == 0) {
            collect_signed(app->p, app->n, v, n, apps);
            send_json(req, 200, json_array_get(apps, 0));
        } else {
            send_error(req, 404, "not_found", "nothing signed for this app");
        }
    }
    upd_sts_txn_abort(txn);
    json_decref(apps);
    json_decref(ans);
}

static void
on_page(h2o_req_t *req, const char *name)
{
    size_t len;
    const char *html = upd_sts_page(name, &len);
    if (html == NULL) {
        send_error(req, 404, "not_found", "no such page");
        return;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL,
                   H2O_STRLIT("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                              "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
                              "frame-ancestors 'none'"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-frame-options"), 0, NULL, H2O_STRLIT("DENY"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("referrer-policy"), 0, NULL, H2O_STRLIT("no-referrer"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL, H2O_STRLIT("nosniff"));
    upd_http_send(req, 200, "text/html; charset=utf-8", html, len);
}

static bool
is_get(const h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
           h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

static bool
is_post(const h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
}

static void on_enrol_options(upd_sts_t *sts, h2o_req_t *req);
static void on_approve_options(upd_sts_t *sts, h2o_req_t *req, const seg_t *id);
static void on_ceremony(upd_sts_t *sts, h2o_req_t *req, const seg_t *proposal);
static void on_admin_options(upd_sts_t *sts, h2o_req_t *req);
static void on_admin(upd_sts_t *sts, h2o_req_t *req);

static void
method_not_allowed(h2o_req_t *req, const char *allow)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    send_error(req, 405, "method_not_allowed", "method not allowed on this route");
}

int
upd_sts_on_req(void *app, h2o_req_t *req)
{
    upd_sts_t *sts = app;
    seg_t s[SEGS_MAX];
    int n = split(req, s);
    switch (upd_sts_route_of(req)) {
    case R_HEALTHZ:
        if (!is_get(req))
            return upd_http_send_405_get_head(req), 0;
        upd_http_send_text(req, 200, "ok");
        return 0;
    case R_METRICS: {
        if (!is_get(req))
            return upd_http_send_405_get_head(req), 0;
        size_t len;
        char *text = upd_metrics_render(sts->metrics, &len);
        upd_http_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
        free(text);
        return 0;
    }
    case R_PAGE:
        if (!is_get(req))
            return upd_http_send_405_get_head(req), 0;
        if (n == 2 && !seg_is_id(&s[1])) {
            send_error(req, 404, "not_found", "no such proposal");
            return 0;
        }
        on_page(req, seg_is(&s[0], "approve") ? "approve" : seg_is(&s[0], "enrol") ? "enrol" : "admin");
        return 0;
    case R_PROPOSE:
        if (!is_post(req))
            return method_not_allowed(req, "POST"), 0;
        if (!control_authorized(sts, req)) {
            send_error(req, 401, "unauthorized", "this route needs the control plane's bearer token");
            return 0;
        }
        on_propose(sts, req);
        return 0;
    case R_PROPOSAL:
        if (n == 3 && seg_is_id(&s[2])) {
            if (!is_get(req))
                return upd_http_send_405_get_head(req), 0;
            on_proposal_get(sts, req, &s[2]);
            return 0;
        }
        break;
    case R_CANCEL:
        if (!seg_is_id(&s[2]))
            break;
        if (!is_post(req))
            return method_not_allowed(req, "POST"), 0;
        if (!control_authorized(sts, req)) {
            send_error(req, 401, "unauthorized", "this route needs the control plane's bearer token");
            return 0;
        }
        cancel_job_t *j = calloc(1, sizeof(*j));
        if (j == NULL) {
            send_error(req, 500, "internal", "out of memory");
            return 0;
        }
        j->sts = sts;
        memcpy(j->id, s[2].p, 32);
        submit(sts, req, cancel_run, free, j);
        return 0;
    case R_ENROL_OPTIONS:
    case R_ENROL:
        if (!is_post(req))
            return method_not_allowed(req, "POST"), 0;
        if (n == 3)
            on_enrol_options(sts, req);
        else
            on_ceremony(sts, req, NULL);
        return 0;
    case R_ADMIN_OPTIONS:
    case R_ADMIN:
        if (!is_post(req))
            return method_not_allowed(req, "POST"), 0;
        if (n == 3)
            on_admin_options(sts, req);
        else
            on_admin(sts, req);
        return 0;
    case R_APPROVE_OPTIONS:
    case R_APPROVE:
        if (!seg_is_id(&s[2]))
            break;
        if (!is_post(req))
            return method_not_allowed(req, "POST"), 0;
        if (seg_is(&s[3], "options"))
            on_approve_options(sts, req, &s[2]);
        else
            on_ceremony(sts, req, &s[2]);
        return 0;
    case R_SIGNED:
        if (n > 3)
            break;
        if (!is_get(req))
            return upd_http_send_405_get_head(req), 0;
        if (!control_authorized(sts, req)) {
            send_error(req, 401, "unauthorized", "this route needs the control plane's bearer token");
            return 0;
        }
        on_signed(sts, req, n == 3 ? &s[2] : NULL);
        return 0;
    }
    send_error(req, 404, "not_found", "no such route");
    return 0;
}

static int
count_status(const void *k, size_t kn, const void *v, size_t vn, void *arg)
{
    json_t *r = json_loadb(v, vn, 0, NULL);
    const char *st = json_string_value(json_object_get(r, "status"));
    if (st != NULL)
        json_object_set_new(arg, st, json_integer(json_integer_value(json_object_get(arg, st)) + 1));
    json_decref(r);
    return 0;
}

static int
count_suspect(const void *k, size_t kn, const void *v, size_t vn, void *arg)
{
    json_t *r = json_loadb(v, vn, 0, NULL);
    if (json_is_true(json_object_get(r, "suspect")))
        ++*(uint64_t *)arg;
    json_decref(r);
    return 0;
}

void
upd_sts_render_metrics(void *arg, FILE *fp)
{
    upd_sts_t *sts = arg;
    upd_sts_txn_t *txn;
    json_t *by_status = json_object(), *n;
    const char *st;
    uint64_t suspect = 0;
    fprintf(fp,
            "# TYPE updraft_sts_proposals_created_total counter\nupdraft_sts_proposals_created_total %llu\n"
            "# TYPE updraft_sts_ceremonies_total counter\nupdraft_sts_ceremonies_total{outcome=\"ok\"} %llu\n"
            "updraft_sts_ceremonies_total{outcome=\"refused\"} %llu\n"
            "# TYPE updraft_sts_signatures_total counter\nupdraft_sts_signatures_total %llu\n"
            "# TYPE updraft_sts_resigns_total counter\nupdraft_sts_resigns_total %llu\n",
            (unsigned long long)sts->proposals_created, (unsigned long long)sts->ceremonies_ok, (unsigned long long)sts->refusals,
            (unsigned long long)sts->signatures, (unsigned long long)sts->resigns);
    if (upd_sts_txn_begin(sts->store, false, &txn) == 0) {
        upd_sts_each(txn, UPD_STS_DB_PROPOSALS, NULL, 0, count_status, by_status);
        upd_sts_each(txn, UPD_STS_DB_CREDS, NULL, 0, count_suspect, &suspect);
        upd_sts_txn_abort(txn);
        fprintf(fp, "# TYPE updraft_sts_proposals gauge\n");
        json_object_foreach(by_status, st, n)
            fprintf(fp, "updraft_sts_proposals{status=\"%s\"} %lld\n", st, (long long)json_integer_value(n));
        fprintf(fp, "# TYPE updraft_sts_suspect_credentials gauge\nupdraft_sts_suspect_credentials %llu\n",
                (unsigned long long)suspect);
    }
    json_decref(by_status);
}

/* ---- WebAuthn ceremonies: enrolment and approvals ---- */

/*
 * Challenges live in memory only, on the loop thread: issued by an options route, taken (removed) by the first
 * attempt that names the ceremony, whatever its outcome. A restart forgets them (the page asks again).
 */
#define CHALLENGES_MAX 1024
enum { CH_ENROL = 1, CH_APPROVE, CH_ADMIN };
typedef struct {
    char cid[33];
    int kind;
    uint8_t chal[48];
    size_t chal_len;
    char proposal[33];    /* CH_APPROVE: the proposal */
    uint8_t token_hash[32]; /* CH_ENROL: the link's token */
    uint8_t user_id[16];
    int64_t expires;
} challenge_t;
static challenge_t challenges[CHALLENGES_MAX];

static challenge_t *
challenge_new(upd_sts_t *sts, int kind)
{
    int64_t now = (int64_t)time(NULL);
    challenge_t *free_slot = NULL, *oldest = &challenges[0];
    for (size_t i = 0; i != CHALLENGES_MAX; ++i) {
        challenge_t *c = &challenges[i];
        if (c->kind != 0 && c->expires <= now)
            c->kind = 0;
        if (c->kind == 0 && free_slot == NULL)
            free_slot = c;
        if (c->expires < oldest->expires)
            oldest = c;
    }
    challenge_t *c = free_slot != NULL ? free_slot : oldest; /* full: the oldest goes (its page asks again) */
    uint8_t raw[16];
    memset(c, 0, sizeof(*c));
    if (RAND_bytes(raw, sizeof(raw)) != 1 || RAND_bytes(c->chal, 16) != 1)
        return NULL;
    upd_hex_encode(raw, sizeof(raw), c->cid);
    c->kind = kind;
    c->chal_len = 16;
    c->expires = now + (int64_t)sts->conf->sts_challenge_ttl_s;
    return c;
}

/* Takes the ceremony cid out of the table: *out a copy; false when unknown or expired. */
static bool
challenge_take(const char *cid, challenge_t *out)
{
    if (cid == NULL || strlen(cid) != 32)
        return false;
    for (size_t i = 0; i != CHALLENGES_MAX; ++i) {
        challenge_t *c = &challenges[i];
        if (c->kind != 0 && memcmp(c->cid, cid, 32) == 0) {
            bool live = c->expires > (int64_t)time(NULL);
            *out = *c;
            memset(c, 0, sizeof(*c));
            return live;
        }
    }
    return false;
}

static json_t *
b64url_json(const void *p, size_t n)
{
    char *buf = malloc(4 * n / 3 + 8);
    json_t *j;
    if (buf == NULL)
        return NULL;
    upd_sts_b64url_encode(p, n, buf);
    j = json_string(buf);
    free(buf);
    return j;
}

/* Decodes a base64url JSON string member into a malloc'ed buffer. @return the length or -1 */
static long
b64url_member(json_t *obj, const char *name, uint8_t **out)
{
    const char *s = json_string_value(json_object_get(obj, name));
    size_t n = s != NULL ? strlen(s) : 0;
    long len;
    *out = NULL;
    if (s == NULL || n > 4 * 24 * 1024)
        return -1;
    if ((*out = malloc(n * 3 / 4 + 4)) == NULL)
        return -1;
    if (n > 4096) { /* upd_sts_b64url_decode takes 4 KiB at a time */
        len = 0;
        for (size_t off = 0; off < n; off += 4096) {
            size_t part = n - off < 4096 ? n - off : 4096;
            long l = upd_sts_b64url_decode(s + off, part, *out + len, n * 3 / 4 + 4 - (size_t)len);
            if (l < 0)
                goto Bad;
            len += l;
        }
        return len;
    }
    if ((len = upd_sts_b64url_decode(s, n, *out, n * 3 / 4 + 4)) >= 0)
        return len;
Bad:
    free(*out);
    *out = NULL;
    return -1;
}

static upd_webauthn_policy_t
policy_of(upd_sts_t *sts)
{
    static const int algs[] = {UPD_WEBAUTHN_ALG_ES256, UPD_WEBAUTHN_ALG_EDDSA, UPD_WEBAUTHN_ALG_RS256};
    return (upd_webauthn_policy_t){
        .rp_id = sts->conf->sts_rp_id,
        .origins = (const char *const *)sts->conf->sts_origins.items,
        .num_origins = sts->conf->sts_origins.size,
        .user_verification = UPD_WEBAUTHN_UV_REQUIRED,
        .algs = algs,
        .num_algs = sizeof(algs) / sizeof(algs[0]),
    };
}

typedef struct {
    json_t *list;
    const char *member; /* only this member's; NULL: every member in members (a JSON object used as a set) */
    json_t *members;
} creds_ctx_t;

static int
collect_creds(const void *key, size_t key_len, const void *val, size_t val_len, void *arg)
{
    creds_ctx_t *c = arg;
    json_t *rec = json_loadb(val, val_len, 0, NULL);
    const char *m = json_string_value(json_object_get(rec, "member"));
    if (m != NULL && !json_is_true(json_object_get(rec, "suspect")) &&
        (c->member != NULL ? strcmp(m, c->member) == 0 : json_object_get(c->members, m) != NULL))
        json_array_append_new(c->list, json_pack("{s:s,s:o}", "type", "public-key", "id", b64url_json(key, key_len)));
    json_decref(rec);
    return 0;
}

static int
collect_grantees(const void *key, size_t key_len, const void *val, size_t val_len, void *arg)
{
    const char *slash = memchr(key, '/', key_len);
    if (slash != NULL) {
        char name[64];
        size_t n = key_len - (size_t)(slash + 1 - (const char *)key);
        if (n < sizeof(name)) {
            memcpy(name, slash + 1, n);
            name[n] = '\0';
            json_object_set_new(arg, name, json_true());
        }
    }
    return 0;
}

/* POST /v1/enrol/options {"token"} */
static void
on_enrol_options(upd_sts_t *sts, h2o_req_t *req)
{
    json_t *b = body_json(req), *rec = NULL, *member = NULL, *ans = NULL;
    const char *token = json_string_value(json_object_get(b, "token"));
    upd_sts_txn_t *txn = NULL;
    uint8_t hash[32];
    challenge_t *c;
    if (token == NULL) {
        send_error(req, 401, "bad_token", "the enrolment link is unknown, used or expired");
        goto Exit;
    }
    upd_sts_token_hash(token, strlen(token), hash);
    if (upd_sts_txn_begin(sts->store, false, &txn) != 0) {
        send_error(req, 503, "store_unavailable", "the STS store failed");
        goto Exit;
    }
    if (upd_sts_get_json(txn, UPD_STS_DB_ENROL, hash, 32, &rec) != 0 ||
        json_integer_value(json_object_get(rec, "expires")) <= (json_int_t)time(NULL)) {
        send_error(req, 401, "bad_token", "the enrolment link is unknown, used or expired");
        goto Exit;
    }
    const char *name = json_string_value(json_object_get(rec, "member"));
    if ((c = challenge_new(sts, CH_ENROL)) == NULL) {
        send_error(req, 500, "internal", "no random bytes");
        goto Exit;
    }
    memcpy(c->token_hash, hash, 32);
    /* the user handle is fixed per member: the stored one, or a new one kept with the ceremony */
    const char *uid = NULL;
    if (upd_sts_get_json(txn, UPD_STS_DB_MEMBERS, name, strlen(name), &member) == 0)
        uid = json_string_value(json_object_get(member, "user_id"));
    if (uid == NULL || upd_sts_b64url_decode(uid, strlen(uid), c->user_id, 16) != 16)
        RAND_bytes(c->user_id, 16);
    creds_ctx_t cc = {json_array(), name, NULL};
    upd_sts_each(txn, UPD_STS_DB_CREDS, NULL, 0, collect_creds, &cc);
    ans = json_pack("{s:s,s:{s:o,s:{s:s,s:s},s:{s:o,s:s,s:s},s:[{s:s,s:i},{s:s,s:i},{s:s,s:i}],s:{s:s,s:s},s:s,s:I,s:o}}",
                    "ceremony", c->cid, "publicKey", "challenge", b64url_json(c->chal, c->chal_len), "rp", "id",
                    sts->conf->sts_rp_id, "name", "Updraft", "user", "id", b64url_json(c->user_id, 16), "name", name,
                    "displayName", name, "pubKeyCredParams", "type", "public-key", "alg", -7, "type", "public-key", "alg", -8,
                    "type", "public-key", "alg", -257, "authenticatorSelection", "userVerification", "required",
                    "residentKey", "preferred", "attestation", "none", "timeout",
                    (json_int_t)sts->conf->sts_challenge_ttl_s * 1000, "excludeCredentials", cc.list);
    send_json(req, 200, ans);
Exit:
    upd_sts_txn_abort(txn);
    json_decref(b);
    json_decref(rec);
    json_decref(member);
    json_decref(ans);
}

typedef struct {
    upd_sts_t *sts;
    challenge_t ch;
    bool ch_ok;
    json_t *body; /* the request's JSON */
    char proposal[33];
} ceremony_job_t;

static void
ceremony_free(void *arg)
{
    ceremony_job_t *j = arg;
    json_decref(j->body);
    free(j);
}

/* Writes one audit record of a ceremony in its own transaction (the refusals: nothing else changes). */
static void
audit_ceremony(upd_sts_t *sts, upd_sts_txn_t *txn, const char *action, const char *member, const char *credential,
               const char *proposal, const char *outcome, const char *code)
{
    json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "action", action, "member", member != NULL ? member : "", "credential",
                          credential != NULL ? credential : "", "proposal", proposal != NULL ? proposal : "", "outcome",
                          outcome, "reason", code != NULL ? code : "");
    if (r != NULL)
        upd_sts_audit_append(txn, r, NULL);
    json_decref(r);
    if (strcmp(outcome, "ok") != 0)
        ++sts->refusals;
    else
        ++sts->ceremonies_ok;
}

/* Ends a ceremony with a refusal: audit record committed, answer the error. */
static void
refuse(upd_sts_t *sts, upd_sts_txn_t **txn, upd_job_answer_t *answer, int status, const char *action, const char *member,
       const char *cred, const char *proposal, const char *code, const char *message)
{
    if (*txn != NULL) {
        audit_ceremony(sts, *txn, action, member, cred, proposal, "refused", code);
        upd_sts_txn_commit(*txn);
        *txn = NULL;
    }
    upd_log_info("%s %s: refused (%s): %s", action, proposal != NULL ? proposal : "", code, message);
    answer_error(answer, status, code, message);
}

static void
enrol_run(void *arg, upd_job_answer_t *answer)
{
    ceremony_job_t *j = arg;
    upd_sts_t *sts = j->sts;
    upd_sts_txn_t *txn = NULL;
    upd_reason_t why = {"", ""};
    upd_webauthn_policy_t pol = policy_of(sts);
    upd_webauthn_credential_t cred = {0};
    json_t *rec = NULL, *member = NULL, *ans = NULL, *cr = json_object_get(j->body, "credential");
    json_t *resp = json_object_get(cr, "response");
    const char *token = json_string_value(json_object_get(j->body, "token"));
    uint8_t hash[32], *cdj = NULL, *att = NULL;
    long cdj_len, att_len;
    int64_t now = (int64_t)time(NULL);
    char idbuf[1400] = "";
    int ret;

    if ((ret = upd_sts_txn_begin(sts->store, true, &txn)) != 0) {
        answer_err(answer, ret, NULL);
        goto Exit;
    }
    if (token == NULL) {
        refuse(sts, &txn, answer, 401, "enrol", NULL, NULL, NULL, "bad_token", "the enrolment link is unknown, used or expired");
        goto Exit;
    }
    upd_sts_token_hash(token, strlen(token), hash);
    if (upd_sts_get_json(txn, UPD_STS_DB_ENROL, hash, 32, &rec) != 0 ||
        json_integer_value(json_object_get(rec, "expires")) <= (json_int_t)now) {
        refuse(sts, &txn, answer, 401, "enrol", NULL, NULL, NULL, "bad_token", "the enrolment link is unknown, used or expired");
        goto Exit;
    }
    const char *name = json_string_value(json_object_get(rec, "member"));
    if (!j->ch_ok || j->ch.kind != CH_ENROL || memcmp(j->ch.token_hash, hash, 32) != 0) {
        refuse(sts, &txn, answer, 401, "enrol", name, NULL, NULL, "challenge",
               "the ceremony is unknown, expired, used or was issued for another link: ask for new options");
        goto Exit;
    }
    if ((cdj_len = b64url_member(resp, "clientDataJSON", &cdj)) < 0 || (att_len = b64url_member(resp, "attestationObject", &att)) < 0) {
        refuse(sts, &txn, answer, 400, "enrol", name, NULL, NULL, "malformed",
               "credential.response: expected clientDataJSON and attestationObject in base64url");
        goto Exit;
    }
    if ((ret = upd_webauthn_register(&pol, j->ch.chal, j->ch.chal_len, cdj, (size_t)cdj_len, att, (size_t)att_len, &cred, &why)) != 0) {
        refuse(sts, &txn, answer, ret == UPD_EAUTH ? 401 : 400, "enrol", name, NULL, NULL, why.code[0] ? why.code : "refused",
               why.message);
        goto Exit;
    }
    upd_sts_b64url_encode(cred.id, cred.id_len, idbuf);
    const void *v;
    size_t vn;
    if (upd_sts_get(txn, UPD_STS_DB_CREDS, cred.id, cred.id_len, &v, &vn) == 0) {
        refuse(sts, &txn, answer, 409, "enrol", name, idbuf, NULL, "credential_exists", "this credential is registered already");
        goto Exit;
    }
    bool admin = json_is_true(json_object_get(rec, "admin"));
    if (upd_sts_get_json(txn, UPD_STS_DB_MEMBERS, name, strlen(name), &member) != 0) {
        member = json_pack("{s:s,s:b,s:I,s:s,s:o}", "name", name, "admin", admin, "created", (json_int_t)now, "created_by",
                           json_string_value(json_object_get(rec, "created_by")), "user_id", b64url_json(j->ch.user_id, 16));
    } else if (admin) {
        json_object_set_new(member, "admin", json_true());
    }
    char aaguid[33];
    upd_hex_encode(cred.aaguid, 16, aaguid);
    json_t *crec = json_pack("{s:s,s:o,s:I,s:i,s:s,s:I,s:n,s:b}", "member", name, "public_key",
                             b64url_json(cred.public_key, cred.public_key_len), "sign_count", (json_int_t)cred.sign_count, "flags",
                             (int)cred.flags, "aaguid", aaguid, "created", (json_int_t)now, "last_used", "suspect", 0);
    ret = member == NULL || crec == NULL ? UPD_ENOMEM : 0;
    if (ret == 0 && (ret = upd_sts_put_json(txn, UPD_STS_DB_MEMBERS, name, strlen(name), member)) == 0 &&
        (ret = upd_sts_put_json(txn, UPD_STS_DB_CREDS, cred.id, cred.id_len, crec)) == 0)
        ret = upd_sts_del(txn, UPD_STS_DB_ENROL, hash, 32);
    json_decref(crec);
    /* the first admin (a link made on the host) approves every app: an explicit "*" grant */
    const char *by = json_string_value(json_object_get(rec, "created_by"));
    if (ret == 0 && admin && by != NULL && strcmp(by, "host") == 0) {
        char gk[80];
        int gn = snprintf(gk, sizeof(gk), "*/%s", name);
        json_t *g = json_pack("{s:s,s:I}", "granted_by", "host", "at", (json_int_t)now);
        ret = upd_sts_put_json(txn, UPD_STS_DB_GRANTS, gk, (size_t)gn, g);
        json_decref(g);
    }
    if (ret != 0) {
        answer_err(answer, ret, NULL);
        goto Exit;
    }
    audit_ceremony(sts, txn, "enrol", name, idbuf, NULL, "ok", NULL);
    ret = upd_sts_txn_commit(txn);
    txn = NULL;
    if (ret != 0) {
        answer_err(answer, ret, NULL);
        goto Exit;
    }
    upd_log_info("enrolled a credential of %s%s", name, admin ? " (admin)" : "");
    ans = json_pack("{s:s,s:s,s:b}", "member", name, "credential_id", idbuf, "admin", admin);
    answer_json(answer, 201, ans);
Exit:
    upd_sts_txn_abort(txn);
    upd_webauthn_credential_dispose(&cred);
    free(cdj);
    free(att);
    json_decref(rec);
    json_decref(member);
    json_decref(ans);
}

/* POST /v1/proposals/ID/options */
static void
on_approve_options(upd_sts_t *sts, h2o_req_t *req, const seg_t *id)
{
    upd_sts_txn_t *txn = NULL;
    json_t *rec = NULL, *ans = NULL, *grantees = json_object();
    const void *doc;
    size_t doc_len;
    challenge_t *c;
    if (upd_sts_txn_begin(sts->store, false, &txn) != 0) {
        send_error(req, 503, "store_unavailable", "the STS store failed");
        goto Exit;
    }
    if (upd_sts_get_json(txn, UPD_STS_DB_PROPOSALS, id->p, 32, &rec) != 0 ||
        upd_sts_get(txn, UPD_STS_DB_PROPOSAL_DOCS, id->p, 32, &doc, &doc_len) != 0) {
        send_error(req, 404, "not_found", "no such proposal");
        goto Exit;
    }
    if (strcmp(json_string_value(json_object_get(rec, "status")), "pending") != 0) {
        send_error(req, 409, "not_pending", "the proposal is not pending");
        goto Exit;
    }
    if ((c = challenge_new(sts, CH_APPROVE)) == NULL) {
        send_error(req, 500, "internal", "no random bytes");
        goto Exit;
    }
    unsigned int mdlen = 32;
    EVP_Digest(doc, doc_len, c->chal + 16, &mdlen, EVP_sha256(), NULL);
    c->chal_len = 48;
    memcpy(c->proposal, id->p, 32);
    const char *app = json_string_value(json_object_get(rec, "app"));
    char pre[80];
    int pn = snprintf(pre, sizeof(pre), "%s/", app);
    upd_sts_each(txn, UPD_STS_DB_GRANTS, pre, (size_t)pn, collect_grantees, grantees);
    upd_sts_each(txn, UPD_STS_DB_GRANTS, "*/", 2, collect_grantees, grantees);
    creds_ctx_t cc = {json_array(), NULL, grantees};
    upd_sts_each(txn, UPD_STS_DB_CREDS, NULL, 0, collect_creds, &cc);
    ans = json_pack("{s:s,s:{s:o,s:s,s:o,s:s,s:I}}", "ceremony", c->cid, "publicKey", "challenge", b64url_json(c->chal, c->chal_len),
                    "rpId", sts->conf->sts_rp_id, "allowCredentials", cc.list, "userVerification", "required", "timeout",
                    (json_int_t)sts->conf->sts_challenge_ttl_s * 1000);
    send_json(req, 200, ans);
Exit:
    upd_sts_txn_abort(txn);
    json_decref(rec);
    json_decref(ans);
    json_decref(grantees);
}

static bool
has_grant(upd_sts_txn_t *txn, const char *app, const char *member)
{
    char k[140];
    const void *v;
    size_t n;
    int kn = snprintf(k, sizeof(k), "%s/%s", app, member);
    if (upd_sts_get(txn, UPD_STS_DB_GRANTS, k, (size_t)kn, &v, &n) == 0)
        return true;
    kn = snprintf(k, sizeof(k), "*/%s", member);
    return upd_sts_get(txn, UPD_STS_DB_GRANTS, k, (size_t)kn, &v, &n) == 0;
}

static void
approve_run(void *arg, upd_job_answer_t *answer)
{
    ceremony_job_t *j = arg;
    upd_sts_t *sts = j->sts;
    upd_sts_txn_t *txn = NULL;
    upd_reason_t why = {"", ""};
    upd_webauthn_policy_t pol = policy_of(sts);
    upd_webauthn_credential_t cred = {0};
    upd_webauthn_assertion_t as;
    json_t *rec = NULL, *crec = NULL, *ans = NULL, *cr = json_object_get(j->body, "credential");
    json_t *resp = json_object_get(cr, "response");
    const char *decision = json_string_value(json_object_get(j->body, "decision"));
    const char *cid_s = json_string_value(json_object_get(cr, "id"));
    const char *action = decision != NULL && strcmp(decision, "reject") == 0 ? "reject" : "approve";
    uint8_t *cdj = NULL, *ad = NULL, *sig = NULL, *cid = NULL, *pk = NULL, md[32];
    long cdj_len, ad_len, sig_len, cid_len, pk_len;
    int64_t now = (int64_t)time(NULL);
    char *envelope = NULL;
    const char *member = NULL;
    int ret;

    if ((ret = upd_sts_txn_begin(sts->store, true, &txn)) != 0) {
        answer_err(answer, ret, NULL);
        goto Exit;
    }
    if (decision == NULL || (strcmp(decision, "approve") != 0 && strcmp(decision, "reject") != 0)) {
        refuse(sts, &txn, answer, 400, action, NULL, cid_s, j->proposal, "invalid_decision", "\"decision\": approve or reject");
        goto Exit;
    }
    const void *doc;
    size_t doc_len;
    if (upd_sts_get_json(txn, UPD_STS_DB_PROPOSALS, j->proposal, 32, &rec) != 0 ||
        upd_sts_get(txn, UPD_STS_DB_PROPOSAL_DOCS, j->proposal, 32, &doc, &doc_len) != 0) {
        refuse(sts, &txn, answer, 404, action, NULL, cid_s, j->proposal, "not_found", "no such proposal");
        goto Exit;
    }
    unsigned int mdlen = 32;
    EVP_Digest(doc, doc_len, md, &mdlen, EVP_sha256(), NULL);
    if (!j->ch_ok || j->ch.kind != CH_APPROVE || memcmp(j->ch.proposal, j->proposal, 32) != 0 || j->ch.chal_len != 48 ||
        memcmp(j->ch.chal + 16, md, 32) != 0) {
        refuse(sts, &txn, answer, 401, action, NULL, cid_s, j->proposal, "challenge",
               "the ceremony is unknown, expired, used or was issued for another proposal: ask for new options");
        goto Exit;
    }
    const char *status = json_string_value(json_object_get(rec, "status"));
    const char *app = json_string_value(json_object_get(rec, "app"));
    uint64_t gen = (uint64_t)json_integer_value(json_object_get(rec, "generation")), last;
    if (strcmp(status, "pending") != 0) {
        refuse(sts, &txn, answer, 409, action, NULL, cid_s, j->proposal, "not_pending", "the proposal is not pending");
        goto Exit;
    }
    if (json_integer_value(json_object_get(rec, "expires")) <= (json_int_t)now) {
        json_object_set_new(rec, "status", json_string("expired"));
        upd_sts_put_json(txn, UPD_STS_DB_PROPOSALS, j->proposal, 32, rec);
        refuse(sts, &txn, answer, 410, action, NULL, cid_s, j->proposal, "expired", "the proposal expired");
        goto Exit;
    }
    if (last_signed(txn, app, &last) == 0 && gen <= last) {
        json_object_set_new(rec, "status", json_string("superseded"));
        upd_sts_put_json(txn, UPD_STS_DB_PROPOSALS, j->proposal, 32, rec);
        refuse(sts, &txn, answer, 409, action, NULL, cid_s, j->proposal, "superseded", "a later generation was signed meanwhile");
        goto Exit;
    }
    if ((cid_len = b64url_member(cr, "id", &cid)) <= 0 || upd_sts_get_json(txn, UPD_STS_DB_CREDS, cid, (size_t)cid_len, &crec) != 0) {
        refuse(sts, &txn, answer, 401, action, NULL, cid_s, j->proposal, "unknown_credential", "this credential is not registered");
        goto Exit;
    }
    member = json_string_value(json_object_get(crec, "member"));
    if (json_is_true(json_object_get(crec, "suspect"))) {
        refuse(sts, &txn, answer, 401, action, member, cid_s, j->proposal, "suspect_credential",
               "this credential is suspect (its sign count went backwards): an admin must remove it");
        goto Exit;
    }
    if ((cdj_len = b64url_member(resp, "clientDataJSON", &cdj)) < 0 || (ad_len = b64url_member(resp, "authenticatorData", &ad)) < 0 ||
        (sig_len = b64url_member(resp, "signature", &sig)) < 0 || (pk_len = b64url_member(crec, "public_key", &pk)) < 0) {
        refuse(sts, &txn, answer, 400, action, member, cid_s, j->proposal, "malformed",
               "credential.response: expected clientDataJSON, authenticatorData and signature in base64url");
        goto Exit;
    }
    if ((ret = upd_webauthn_credential_load(&cred, cid, (size_t)cid_len, pk, (size_t)pk_len,
                                            (uint32_t)json_integer_value(json_object_get(crec, "sign_count")),
                                            (uint8_t)json_integer_value(json_object_get(crec, "flags")), &why)) != 0) {
        answer_err(answer, ret, &why);
        goto Exit;
    }
    if ((ret = upd_webauthn_assert(&pol, j->ch.chal, j->ch.chal_len, &cred, cdj, (size_t)cdj_len, ad, (size_t)ad_len, sig,
                                   (size_t)sig_len, &as, &why)) != 0) {
        if (strcmp(why.code, "sign_count") == 0) {
            json_object_set_new(crec, "suspect", json_true());
            upd_sts_put_json(txn, UPD_STS_DB_CREDS, cid, (size_t)cid_len, crec);
            audit_ceremony(sts, txn, "credential_suspect", member, cid_s, j->proposal, "suspect", "sign_count");
            upd_log_warn("credential %s of %s marked suspect: its sign count did not grow (a cloned authenticator?)", cid_s, member);
        }
        refuse(sts, &txn, answer, ret == UPD_EAUTH ? 401 : 400, action, member, cid_s, j->proposal,
               why.code[0] ? why.code : "refused", why.message);
        goto Exit;
    }
    /* the ceremony verified: the credential's count and use are recorded whatever the decision's fate */
    json_object_set_new(crec, "sign_count", json_integer(as.sign_count));
    json_object_set_new(crec, "last_used", json_integer((json_int_t)now));
    upd_sts_put_json(txn, UPD_STS_DB_CREDS, cid, (size_t)cid_len, crec);
    if (!has_grant(txn, app, member)) {
        refuse(sts, &txn, answer, 403, action, member, cid_s, j->proposal, "not_approver", "this member may not approve this app");
        goto Exit;
    }
    json_t *approvals = json_object_get(rec, "approvals"), *a;
    size_t i;
    json_array_foreach(approvals, i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "member")), member) == 0) {
            refuse(sts, &txn, answer, 409, action, member, cid_s, j->proposal, "already_approved",
                   "this member approved already: a quorum needs distinct members");
            goto Exit;
        }
    }
    if (strcmp(action, "reject") == 0) {
        json_object_set_new(rec, "status", json_string("rejected"));
        json_object_set_new(rec, "rejected_by", json_string(member));
    } else {
        json_array_append_new(approvals, json_pack("{s:s,s:s,s:I}", "member", member, "credential", cid_s, "at", (json_int_t)now));
        if ((json_int_t)json_array_size(approvals) >= json_integer_value(json_object_get(rec, "needed"))) {
            if ((ret = upd_sts_sign_state(sts, txn, app, gen, doc, doc_len, j->proposal, &envelope, &why)) != 0) {
                refuse(sts, &txn, answer, ret == UPD_ECONFLICT ? 409 : 500, action, member, cid_s, j->proposal,
                       why.code[0] ? why.code : "sign", why.message);
                goto Exit;
            }
            json_object_set_new(rec, "status", json_string("approved"));
            json_object_set_new(rec, "envelope", json_string(envelope));
        }
    }
    if ((ret = upd_sts_put_json(txn, UPD_STS_DB_PROPOSALS, j->proposal, 32, rec)) != 0) {
        answer_err(answer, ret, NULL);
        goto Exit;
    }
    audit_ceremony(sts, txn, action, member, cid_s, j->proposal, "ok", NULL);
    ret = upd_sts_txn_commit(txn);
    txn = NULL;
    if (ret != 0) {
        answer_err(answer, ret, NULL);
        goto Exit;
    }
    upd_log_info("proposal %s: %s by %s (%s)", j->proposal, action, member, json_string_value(json_object_get(rec, "status")));
    ans = proposal_answer(sts, rec);
    answer_json(answer, 200, ans);
Exit:
    upd_sts_txn_abort(txn);
    upd_webauthn_credential_dispose(&cred);
    free(cdj);
    free(ad);
    free(sig);
    free(cid);
    free(pk);
    free(envelope);
    json_decref(rec);
    json_decref(crec);
    json_decref(ans);
}

/*
 * A ceremony's job, on the loop: the body parsed and its challenge taken (single use: whatever becomes of the
 * attempt). @return the job, or NULL with req answered (400 not a JSON object, 500 out of memory)
 */
static ceremony_job_t *
ceremony_job_new(upd_sts_t *sts, h2o_req_t *req)
{
    json_t *b = body_json(req);
    ceremony_job_t *j;
    if (b == NULL) {
        send_error(req, 400, "invalid_json", "expected a JSON object");
        return NULL;
    }
    if ((j = calloc(1, sizeof(*j))) == NULL) {
        json_decref(b);
        send_error(req, 500, "internal", "out of memory");
        return NULL;
    }
    j->sts = sts;
    j->body = b;
    j->ch_ok = challenge_take(json_string_value(json_object_get(b, "ceremony")), &j->ch);
    return j;
}

/* POST /v1/enrol and POST /v1/proposals/ID/approve: the challenge is taken on the loop, the rest runs on a worker. */
static void
on_ceremony(upd_sts_t *sts, h2o_req_t *req, const seg_t *proposal)
{
    ceremony_job_t *j = ceremony_job_new(sts, req);
    if (j == NULL)
        return;
    if (proposal != NULL)
        memcpy(j->proposal, proposal->p, 32);
    submit(sts, req, proposal != NULL ? approve_run : enrol_run, ceremony_free, j);
}

/* ---- admin actions ---- */

/* SHA-256 of "updraft-sts-admin-v1\n" + the action's canonical JSON (compact, sorted keys). @return 0 or -1 */
static int
admin_binding(const json_t *action, uint8_t out[32])
{
    char *s = json_dumps(action, JSON_COMPACT | JSON_SORT_KEYS);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 32;
    int ok = s != NULL && md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, "updraft-sts-admin-v1\n", 21) == 1 && EVP_DigestUpdate(md, s, strlen(s)) == 1 &&
             EVP_DigestFinal_ex(md, out, &n) == 1;
    EVP_MD_CTX_free(md);
    free(s);
    return ok ? 0 : -1;
}

static int
collect_admins(const void *key, size_t key_len, const void *val, size_t val_len, void *arg)
{
    json_t *rec = json_loadb(val, val_len, 0, NULL);
    if (json_is_true(json_object_get(rec, "admin")))
        json_object_set_new(arg, json_string_value(json_object_get(rec, "name")), json_true());
    json_decref(rec);
    return 0;
}

/* POST /v1/admin/options {"action"} */
static void
on_admin_options(upd_sts_t *sts, h2o_req_t *req)
{
    json_t *b = body_json(req), *action = json_object_get(b, "action"), *admins = json_object(), *ans = NULL;
    upd_sts_txn_t *txn = NULL;
    challenge_t *c;
    if (!json_is_object(action) || json_string_value(json_object_get(action, "op")) == NULL) {
        send_error(req, 400, "invalid_action", "\"action\": expected an object with \"op\"");
        goto Exit;
    }
    if (upd_sts_txn_begin(sts->store, false, &txn) != 0) {
        send_error(req, 503, "store_unavailable", "the STS store failed");
        goto Exit;
    }
    if ((c = challenge_new(sts, CH_ADMIN)) == NULL || admin_binding(action, c->chal + 16) != 0) {
        send_error(req, 500, "internal", "no random bytes");
        goto Exit;
    }
    c->chal_len = 48;
    upd_sts_each(txn, UPD_STS_DB_MEMBERS, NULL, 0, collect_admins, admins);
    creds_ctx_t cc = {json_array(), NULL, admins};
    upd_sts_each(txn, UPD_STS_DB_CREDS, NULL, 0, collect_creds, &cc);
    ans = json_pack("{s:s,s:{s:o,s:s,s:o,s:s,s:I}}", "ceremony", c->cid, "publicKey", "challenge", b64url_json(c->chal, c->chal_len),
                    "rpId", sts->conf->sts_rp_id, "allowCredentials", cc.list, "userVerification", "required", "timeout",
                    (json_int_t)sts->conf->sts_challenge_ttl_s * 1000);
    send_json(req, 200, ans);
Exit:
    upd_sts_txn_abort(txn);
    json_decref(b);
    json_decref(admins);
    json_decref(ans);
}

typedef struct {
    json_t *members, *credentials, *grants, *policies, *pending;
} list_ctx_t;

static int
list_member(const void *k, size_t kn, const void *v, size_t vn, void *arg)
{
    json_t *r = json_loadb(v, vn, 0, NULL);
    if (r != NULL) {
        json_object_del(r, "user_id");
        json_array_append_new(((list_ctx_t *)arg)->members, r);
    }
    return 0;
}

static int
list_cred(const void *k, size_t kn, const void *v, size_t vn, void *arg)
{
    json_t *r = json_loadb(v, vn, 0, NULL);
    if (r != NULL) {
        json_t *o = json_pack("{s:o,s:O,s:O,s:O,s:O}", "id", b64url_json(k, kn), "member", json_object_get(r, "member"), "created",
                              json_object_get(r, "created"), "last_used", json_object_get(r, "last_used"), "suspect",
                              json_object_get(r, "suspect"));
        if (o != NULL)
            json_array_append_new(((list_ctx_t *)arg)->credentials, o);
        json_decref(r);
    }
    return 0;
}

static int
list_grant(const void *k, size_t kn, const void *v, size_t vn, void *arg)
{
    const char *slash = memchr(k, '/', kn);
    json_t *r = json_loadb(v, vn, 0, NULL);
    if (slash != NULL && r != NULL) {
        json_object_set_new(r, "app", json_stringn(k, (size_t)(slash - (const char *)k)));
        json_object_set_new(r, "member", json_stringn(slash + 1, kn - (size_t)(slash + 1 - (const char *)k)));
        json_array_append_new(((list_ctx_t *)arg)->grants, r);
    } else {
        json_decref(r);
    }
    return 0;
}

static int
list_policy(const void *k, size_t kn, const void *v, size_t vn, void *arg)
{
    json_t *r = json_loadb(v, vn, 0, NULL);
    if (r != NULL) {
        json_object_set_new(r, "app", json_stringn((const char *)k + 7, kn - 7));
        json_array_append_new(((list_ctx_t *)arg)->policies, r);
    }
    return 0;
}

static int
list_pending(const void *k, size_t kn, const void *v, size_t vn, void *arg)
{
    json_t *r = json_loadb(v, vn, 0, NULL);
    if (r != NULL && strcmp(json_string_value(json_object_get(r, "status")) ?: "", "pending") == 0)
        json_array_append(((list_ctx_t *)arg)->pending, r);
    json_decref(r);
    return 0;
}

/* Performs an admin action in txn. @return 0 with *result, or an HTTP status with code and message */
static int
admin_do(upd_sts_t *sts, upd_sts_txn_t *txn, const char *admin, json_t *action, json_t **result, const char **code, char *msg,
         size_t msg_cap)
{
    const char *op = json_string_value(json_object_get(action, "op"));
    const char *member = json_string_value(json_object_get(action, "member"));
    const char *app = json_string_value(json_object_get(action, "app"));
    int64_t now = (int64_t)time(NULL);
    upd_reason_t why = {"", ""};
    char key[140];
    int kn;
    *result = NULL;
#define REFUSE(status, c, ...)                                                                                                     \
    do {                                                                                                                           \
        *code = c;                                                                                                                 \
        snprintf(msg, msg_cap, __VA_ARGS__);                                                                                       \
        return status;                                                                                                             \
    } while (0)
    if (strcmp(op, "invite") == 0) {
        char link[UPD_STS_LINK_MAX];
        int64_t expires;
        if (member == NULL || !upd_sts_member_name_valid(member))
            REFUSE(400, "invalid_member", "\"member\": a member name is [a-z0-9][a-z0-9._-]{0,62}");
        if (upd_sts_enrol_link_put(txn, sts->public_url, member, json_is_true(json_object_get(action, "admin")), admin,
                                   (int64_t)sts->conf->sts_enrol_ttl_s, link, &expires, &why) != 0)
            REFUSE(503, "store_unavailable", "%s", why.message);
        *result = json_pack("{s:s,s:s,s:I}", "member", member, "link", link, "expires", (json_int_t)expires);
        return 0;
    }
    if (strcmp(op, "grant") == 0 || strcmp(op, "revoke") == 0) {
        if (member == NULL || !upd_sts_member_name_valid(member))
            REFUSE(400, "invalid_member", "\"member\": a member name is [a-z0-9][a-z0-9._-]{0,62}");
        if (app == NULL || !(strcmp(app, "*") == 0 || app_valid(app, strlen(app))))
            REFUSE(400, "invalid_app", "\"app\": an app id or *");
        kn = snprintf(key, sizeof(key), "%s/%s", app, member);
        if (op[0] == 'g') {
            json_t *g = json_pack("{s:s,s:I}", "granted_by", admin, "at", (json_int_t)now);
            int r = upd_sts_put_json(txn, UPD_STS_DB_GRANTS, key, (size_t)kn, g);
            json_decref(g);
            if (r != 0)
                REFUSE(503, "store_unavailable", "the STS store failed");
        } else if (upd_sts_del(txn, UPD_STS_DB_GRANTS, key, (size_t)kn) == UPD_ENOTFOUND) {
            REFUSE(404, "not_found", "%s has no grant for %s", member, app);
        }
        *result = json_pack("{s:s,s:s,s:s}", "op", op, "member", member, "app", app);
        return 0;
    }
    if (strcmp(op, "policy") == 0) {
        json_int_t n = json_integer_value(json_object_get(action, "approvers"));
        if (app == NULL || !app_valid(app, strlen(app)))
            REFUSE(400, "invalid_app", "\"app\": an app id");
        if (n < 1 || n > 16)
            REFUSE(400, "invalid_approvers", "\"approvers\": 1 to 16");
        kn = snprintf(key, sizeof(key), "policy/%s", app);
        json_t *p = json_pack("{s:I,s:s,s:I}", "approvers", n, "set_by", admin, "at", (json_int_t)now);
        int r = upd_sts_put_json(txn, UPD_STS_DB_META, key, (size_t)kn, p);
        json_decref(p);
        if (r != 0)
            REFUSE(503, "store_unavailable", "the STS store failed");
        *result = json_pack("{s:s,s:I}", "app", app, "approvers", n);
        return 0;
    }
    if (strcmp(op, "remove_credential") == 0) {
        uint8_t *id = NULL;
        long n = b64url_member(action, "credential", &id);
        int r = n > 0 ? upd_sts_del(txn, UPD_STS_DB_CREDS, id, (size_t)n) : UPD_ENOTFOUND;
        free(id);
        if (r != 0)
            REFUSE(404, "not_found", "no such credential");
        *result = json_pack("{s:O}", "removed", json_object_get(action, "credential"));
        return 0;
    }
    if (strcmp(op, "list") == 0) {
        list_ctx_t l = {json_array(), json_array(), json_array(), json_array(), json_array()};
        upd_sts_each(txn, UPD_STS_DB_MEMBERS, NULL, 0, list_member, &l);
        upd_sts_each(txn, UPD_STS_DB_CREDS, NULL, 0, list_cred, &l);
        upd_sts_each(txn, UPD_STS_DB_GRANTS, NULL, 0, list_grant, &l);
        upd_sts_each(txn, UPD_STS_DB_META, "policy/", 7, list_policy, &l);
        upd_sts_each(txn, UPD_STS_DB_PROPOSALS, NULL, 0, list_pending, &l);
        *result = json_pack("{s:o,s:o,s:o,s:o,s:o}", "members", l.members, "credentials", l.credentials, "grants", l.grants,
                            "policies", l.policies, "pending", l.pending);
        return 0;
    }
    REFUSE(400, "invalid_action", "unknown op (invite, grant, revoke, policy, remove_credential, list)");
#undef REFUSE
}

static void
admin_run(void *arg, upd_job_answer_t *answer)
{
    ceremony_job_t *j = arg;
    upd_sts_t *sts = j->sts;
    upd_sts_txn_t *txn = NULL;
    upd_reason_t why = {"", ""};
    upd_webauthn_policy_t pol = policy_of(sts);
    upd_webauthn_credential_t cred = {0};
    upd_webauthn_assertion_t as;
    json_t *crec = NULL, *m = NULL, *result = NULL, *cr = json_object_get(j->body, "credential");
    json_t *resp = json_object_get(cr, "response"), *action = json_object_get(j->body, "action");
    const char *cid_s = json_string_value(json_object_get(cr, "id")), *member = NULL, *code = "";
    const char *op = json_string_value(json_object_get(action, "op"));
    char what[64], msg[1100];
    uint8_t *cdj = NULL, *ad = NULL, *sig = NULL, *cid = NULL, *pk = NULL, bind[32];
    long cdj_len, ad_len, sig_len, cid_len, pk_len;
    int ret, status;

    snprintf(what, sizeof(what), "admin %s", op != NULL ? op : "?");
    if ((ret = upd_sts_txn_begin(sts->store, true, &txn)) != 0) {
        answer_err(answer, ret, NULL);
        goto Exit;
    }
    if (!json_is_object(action) || op == NULL || admin_binding(action, bind) != 0 || !j->ch_ok || j->ch.kind != CH_ADMIN ||
        j->ch.chal_len != 48 || memcmp(j->ch.chal + 16, bind, 32) != 0) {
        refuse(sts, &txn, answer, 401, what, NULL, cid_s, NULL, "challenge",
               "the ceremony is unknown, expired, used or was issued for another action: ask for new options");
        goto Exit;
    }
    if ((cid_len = b64url_member(cr, "id", &cid)) <= 0 || upd_sts_get_json(txn, UPD_STS_DB_CREDS, cid, (size_t)cid_len, &crec) != 0) {
        refuse(sts, &txn, answer, 401, what, NULL, cid_s, NULL, "unknown_credential", "this credential is not registered");
        goto Exit;
    }
    member = json_string_value(json_object_get(crec, "member"));
    if (json_is_true(json_object_get(crec, "suspect"))) {
        refuse(sts, &txn, answer, 401, what, member, cid_s, NULL, "suspect_credential", "this credential is suspect");
        goto Exit;
    }
    if ((cdj_len = b64url_member(resp, "clientDataJSON", &cdj)) < 0 || (ad_len = b64url_member(resp, "authenticatorData", &ad)) < 0 ||
        (sig_len = b64url_member(resp, "signature", &sig)) < 0 || (pk_len = b64url_member(crec, "public_key", &pk)) < 0) {
        refuse(sts, &txn, answer, 400, what, member, cid_s, NULL, "malformed", "credential.response: base64url fields expected");
        goto Exit;
    }
    if ((ret = upd_webauthn_credential_load(&cred, cid, (size_t)cid_len, pk, (size_t)pk_len,
                                            (uint32_t)json_integer_value(json_object_get(crec, "sign_count")),
                                            (uint8_t)json_integer_value(json_object_get(crec, "flags")), &why)) != 0) {
        answer_err(answer, ret, &why);
        goto Exit;
    }
    if ((ret = upd_webauthn_assert(&pol, j->ch.chal, j->ch.chal_len, &cred, cdj, (size_t)cdj_len, ad, (size_t)ad_len, sig,
                                   (size_t)sig_len, &as, &why)) != 0) {
        if (strcmp(why.code, "sign_count") == 0) {
            json_object_set_new(crec, "suspect", json_true());
            upd_sts_put_json(txn, UPD_STS_DB_CREDS, cid, (size_t)cid_len, crec);
            audit_ceremony(sts, txn, "credential_suspect", member, cid_s, NULL, "suspect", "sign_count");
        }
        refuse(sts, &txn, answer, ret == UPD_EAUTH ? 401 : 400, what, member, cid_s, NULL, why.code[0] ? why.code : "refused",
               why.message);
        goto Exit;
    }
    json_object_set_new(crec, "sign_count", json_integer(as.sign_count));
    json_object_set_new(crec, "last_used", json_integer((json_int_t)time(NULL)));
    upd_sts_put_json(txn, UPD_STS_DB_CREDS, cid, (size_t)cid_len, crec);
    if (upd_sts_get_json(txn, UPD_STS_DB_MEMBERS, member, strlen(member), &m) != 0 || !json_is_true(json_object_get(m, "admin"))) {
        refuse(sts, &txn, answer, 403, what, member, cid_s, NULL, "not_admin", "this member is not an admin");
        goto Exit;
    }
    if ((status = admin_do(sts, txn, member, action, &result, &code, msg, sizeof(msg))) != 0) {
        refuse(sts, &txn, answer, status, what, member, cid_s, NULL, code, msg);
        goto Exit;
    }
    audit_ceremony(sts, txn, what, member, cid_s, NULL, "ok", NULL);
    ret = upd_sts_txn_commit(txn);
    txn = NULL;
    if (ret != 0) {
        answer_err(answer, ret, NULL);
        goto Exit;
    }
    upd_log_info("%s by %s", what, member);
    answer_json(answer, 200, result);
Exit:
    upd_sts_txn_abort(txn);
    upd_webauthn_credential_dispose(&cred);
    free(cdj);
    free(ad);
    free(sig);
    free(cid);
    free(pk);
    json_decref(crec);
    json_decref(m);
    json_decref(result);
}

static void
on_admin(upd_sts_t *sts, h2o_req_t *req)
{
    ceremony_job_t *j = ceremony_job_new(sts, req);
    if (j == NULL)
        return;
    submit(sts, req, admin_run, ceremony_free, j);
}
