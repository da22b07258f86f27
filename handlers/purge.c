/*
 * POST /_updraft/purge: the control plane tells an origin that an app changed, and waits until the
 * origin serves the new state. Authenticated with HMAC-SHA256 over the timestamp, a nonce and the
 * body with a secret shared with the control plane (purge.secret); a timestamp more than
 * MAX_SKEW_S away is refused, and a nonce is accepted once (replays within the window get 409).
 *
 *   body     {"app":"acme","generation":12,"tags":["app:acme","chan:acme/latest","rel:acme/1.3.0"]}
 *   headers  X-Updraft-Timestamp: UNIX_SECONDS, X-Updraft-Nonce: 16-64 of [A-Za-z0-9],
 *            X-Updraft-Signature: hex(HMAC-SHA256(secret, TIMESTAMP "\n" NONCE "\n" BODY))
 *   200      {"app":"acme","generation":G}, G >= the generation asked: this origin answers from it
 *   504      the same with a smaller G: it could not catch up within state.sync_timeout_ms
 *
 * Feeds and download links are read from LMDB on every request and artifacts are immutable and
 * content-addressed, so an origin has no other cache to drop: catching up is the purge.
 */
#include "handlers/purge.h"
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>
#include "base/err.h"
#include "base/log.h"
#include "domain/ids.h"
#include "domain/purge_sig.h"
#include "handlers/respond.h"
#include "server/http.h"

#define MAX_SKEW_S 30
#define NONCE_SLOTS 16384 /* nonces remembered for 2 * MAX_SKEW_S: far more purges than a control plane sends */
#define NONCE_PROBES 64

typedef struct {
    uint64_t hash;
    int64_t expires;
} nonce_slot_t;

static nonce_slot_t nonces[NONCE_SLOTS];
static uint64_t purges_ok, purges_behind, purges_refused;

/* Remembers a nonce until it expires. @return 1 when new, 0 when seen, -1 when the table is full */
static int
nonce_remember(const char *nonce, size_t len, int64_t now)
{
    uint64_t h = XXH3_64bits(nonce, len) | 1; /* 0 marks a free slot */
    for (size_t i = 0; i < NONCE_PROBES; ++i) {
        nonce_slot_t *s = &nonces[(h + i) % NONCE_SLOTS];
        if (s->hash == h && s->expires > now)
            return 0;
        if (s->hash == 0 || s->expires <= now) {
            s->hash = h;
            s->expires = now + 2 * MAX_SKEW_S;
            return 1;
        }
    }
    return -1;
}

typedef struct st_purge_wait_t {
    upd_sync_waiter_t waiter;
    h2o_timeout_entry_t deadline;
    h2o_req_t *req;
    upd_origin_t *o;
    char app[UPD_ID_MAX + 1];
    uint64_t want;
    bool done;
    bool direct; /* the app's document was fetched at once (upd_sync_poll_app) */
} purge_wait_t;

static uint64_t
generation_of(upd_origin_t *o, const char *app, int *err)
{
    upd_store_txn_t *txn;
    uint64_t gen = 0;
    if ((*err = upd_store_read_begin(o->store, &txn)) != 0)
        return 0;
    upd_store_app_generation(txn, app, &gen);
    upd_store_txn_end(txn);
    return gen;
}

static void
reply(h2o_req_t *req, int status, const char *app, uint64_t gen)
{
    char body[160];
    int n = snprintf(body, sizeof(body), "{\"app\":\"%s\",\"generation\":%" PRIu64 "}\n", app, gen);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    upd_http_send(req, status, "application/json", body, (size_t)n);
}

static void
finish(purge_wait_t *w, bool timed_out)
{
    int err;
    uint64_t have = generation_of(w->o, w->app, &err);
    if (have < w->want && !timed_out) {
        /* the poll that just ended may have read the index before the change was published: poll again (the app at
         * once if a poll under way kept that from happening when the purge came) */
        upd_sync_wait(w->o->sync, &w->waiter);
        if (w->direct)
            upd_sync_poll_now(w->o->sync);
        else
            w->direct = upd_sync_poll_app(w->o->sync, w->app, w->want);
        return;
    }
    w->done = true;
    upd_sync_unwait(&w->waiter);
    if (h2o_timeout_is_linked(&w->deadline))
        h2o_timeout_unlink(&w->deadline);
    if (have >= w->want) {
        ++purges_ok;
        reply(w->req, 200, w->app, have);
    } else {
        ++purges_behind;
        upd_log_warn("%s: purge of %s: still at generation %" PRIu64 " of %" PRIu64 " after %" PRIu64 " ms", upd_http_request_id(w->req),
                     w->app, have, w->want, w->o->conf->state_sync_timeout_ms);
        reply(w->req, 504, w->app, have);
    }
}

static void
on_synced(upd_sync_waiter_t *waiter, bool ok)
{
    purge_wait_t *w = H2O_STRUCT_FROM_MEMBER(purge_wait_t, waiter, waiter);
    if (!ok) {
        /* the backends failed this poll: wait for the next regular one rather than hammer them, or for the deadline */
        upd_sync_wait(w->o->sync, &w->waiter);
        return;
    }
    finish(w, false);
}

static void
on_deadline(h2o_timeout_entry_t *entry)
{
    finish(H2O_STRUCT_FROM_MEMBER(purge_wait_t, deadline, entry), true);
}

static void
on_wait_dispose(void *p)
{
    /* the control plane hung up before the answer: forget the wait */
    purge_wait_t *w = p;
    upd_sync_unwait(&w->waiter);
    if (h2o_timeout_is_linked(&w->deadline))
        h2o_timeout_unlink(&w->deadline);
}

static void
refuse(h2o_req_t *req, int status, const char *why)
{
    ++purges_refused;
    upd_log_warn("%s: purge refused: %s", upd_http_request_id(req), why);
    upd_http_send_text(req, status, "purge refused: %s", why);
}

static bool
header_str(h2o_req_t *req, const char *name, size_t name_len, char *buf, size_t cap)
{
    const h2o_iovec_t *v = upd_http_header(req, name, name_len);
    if (v == NULL || v->len == 0 || v->len >= cap)
        return false;
    memcpy(buf, v->base, v->len);
    buf[v->len] = '\0';
    return true;
}

void
upd_purge_handle(upd_origin_t *o, h2o_req_t *req)
{
    if (o->purge_secret == NULL || o->purge_secret[0] == '\0') {
        upd_http_send_text(req, 404, "not found");
        return;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        upd_http_send_text(req, 405, "use POST");
        return;
    }
    char ts[24], nonce[72], sig[72];
    if (!header_str(req, H2O_STRLIT("x-updraft-timestamp"), ts, sizeof(ts)) ||
        !header_str(req, H2O_STRLIT("x-updraft-nonce"), nonce, sizeof(nonce)) ||
        !header_str(req, H2O_STRLIT("x-updraft-signature"), sig, sizeof(sig))) {
        refuse(req, 401, "X-Updraft-Timestamp, X-Updraft-Nonce and X-Updraft-Signature are required");
        return;
    }
    size_t nl = strlen(nonce);
    if (nl < 16 || nl > 64 || strspn(nonce, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != nl) {
        refuse(req, 401, "the nonce is 16-64 letters and digits");
        return;
    }
    char *end;
    long long t = strtoll(ts, &end, 10);
    int64_t now = (int64_t)time(NULL);
    if (*end != '\0' || t < now - MAX_SKEW_S || t > now + MAX_SKEW_S) {
        refuse(req, 401, "the timestamp is not within 30 s of this origin's clock");
        return;
    }
    /* the control plane's signature (domain/purge_sig.h), compared in constant time */
    char hex[65];
    if (!upd_purge_sign(o->purge_secret, strlen(o->purge_secret), ts, nonce, req->entity.base,
                        req->entity.base != NULL ? req->entity.len : 0, hex)) {
        refuse(req, 500, "HMAC failed");
        return;
    }
    if (strlen(sig) != 64 || CRYPTO_memcmp(hex, sig, 64) != 0) {
        refuse(req, 401, "bad signature");
        return;
    }
    int seen = nonce_remember(nonce, nl, now);
    if (seen == 0) {
        refuse(req, 409, "this nonce was used already (a replay)");
        return;
    }
    if (seen < 0) {
        refuse(req, 503, "too many purges at once");
        return;
    }

    json_error_t jerr;
    json_t *body = req->entity.base != NULL ? json_loadb(req->entity.base, req->entity.len, 0, &jerr) : NULL, *v;
    const char *app = json_string_value(json_object_get(body, "app"));
    if (app == NULL || !upd_id_is_app(app, strlen(app)) || !json_is_integer(v = json_object_get(body, "generation")) ||
        json_integer_value(v) < 0) {
        json_decref(body);
        refuse(req, 400, "expected {\"app\":ID,\"generation\":N,\"tags\":[...]}");
        return;
    }
    purge_wait_t *w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), on_wait_dispose);
    memset(w, 0, sizeof(*w));
    w->req = req;
    w->o = o;
    w->want = (uint64_t)json_integer_value(v);
    snprintf(w->app, sizeof(w->app), "%s", app);
    json_decref(body);
    w->waiter.cb = on_synced;
    w->deadline.cb = on_deadline;

    int err;
    uint64_t have = generation_of(o, w->app, &err);
    if (err != 0) {
        upd_respond_store_error(o, req, err);
        return;
    }
    if (have >= w->want || o->sync == NULL) {
        /* on the control plane's host the LMDB is shared: the change is here already */
        if (have >= w->want)
            ++purges_ok;
        else
            ++purges_behind;
        reply(req, have >= w->want ? 200 : 504, w->app, have);
        return;
    }
    upd_log_info("%s: purge of %s: at generation %" PRIu64 ", catching up to %" PRIu64, upd_http_request_id(req), w->app, have, w->want);
    h2o_timeout_link(upd_http_context()->loop, &o->purge_timeout, &w->deadline);
    upd_sync_wait(o->sync, &w->waiter);
    /* the purge names the app: its latest document at once, without reading the indexes first (loop/sync.h) */
    w->direct = upd_sync_poll_app(o->sync, w->app, w->want);
}

void
upd_purge_metrics(FILE *fp)
{
    fprintf(fp,
            "# HELP updraft_purges_total Purges from the control plane: ok (serving that generation), behind (504), refused.\n"
            "# TYPE updraft_purges_total counter\nupdraft_purges_total{result=\"ok\"} %" PRIu64
            "\nupdraft_purges_total{result=\"behind\"} %" PRIu64 "\nupdraft_purges_total{result=\"refused\"} %" PRIu64 "\n",
            purges_ok, purges_behind, purges_refused);
}
