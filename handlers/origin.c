/*
 * The origin's front: routing, method rules, health, metrics and download links. Each update-feed
 * and artifact surface has its own file.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "handlers/origin.h"
#include "server/http.h"
#include "base/log.h"

void
upd_origin_store_error(upd_origin_t *o, h2o_req_t *req, int err)
{
    upd_metrics_add(o->metrics, UPD_COUNTER_STORE_ERRORS, 1);
    upd_log_error("%s: store: %s", upd_http_request_id(req), upd_strerror(err));
    upd_http_send_text(req, 503, "state store unavailable");
}

/* Download links are stored at release time as feed variants "download:PLATFORM:ARCH:FORMAT" whose
 * body is the artifact path (see control/publish.c), so a redirect costs one lookup. */
void
upd_download_handle(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r)
{
    static const char *const default_format[UPD_PLATFORM_COUNT] = {"exe", "dmg", "appimage"};
    upd_store_txn_t *txn;
    int err;
    if ((err = upd_store_read_begin(o->store, &txn)) != 0) {
        upd_origin_store_error(o, req, err);
        return;
    }
    upd_channel_t ch;
    if (upd_store_channel_get(txn, r->app, r->channel, &ch) != 0 || ch.stable[0] == '\0') {
        upd_store_txn_end(txn);
        upd_http_send_text(req, 404, "no fully released version of %s on channel %s", r->app, r->channel);
        return;
    }
    const char *format = r->format[0] != '\0' ? r->format : default_format[r->platform];
    char key[UPD_FEED_KEY_MAX + 32];
    int kl = snprintf(key, sizeof(key), "download:%s:%s:%s", upd_platform_name(r->platform),
                      r->arch < 0 ? "any" : upd_arch_name((upd_arch_t)r->arch), format);
    const char *body;
    size_t len;
    uint64_t etag;
    if (kl >= (int)sizeof(key) || upd_store_feed_get(txn, r->app, ch.stable, key, (size_t)kl, &body, &len, &etag) != 0) {
        upd_store_txn_end(txn);
        upd_http_send_text(req, 404, "release %s of %s has no %s installer for %s%s%s", ch.stable, r->app, format,
                           upd_platform_name(r->platform), r->arch < 0 ? "" : "/", r->arch < 0 ? "" : upd_arch_name((upd_arch_t)r->arch));
        return;
    }
    char *location = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(location, body, len);
    location[len] = '\0';
    upd_store_txn_end(txn);

    char *cc = h2o_mem_alloc_pool(&req->pool, 48);
    int cc_len = snprintf(cc, 48, "public, max-age=%" PRIu64 ", stale-if-error=86400", o->conf->download_max_age);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, cc, cc_len);
    upd_origin_add_tags(req, r->app, r->channel, ch.stable);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, location, len);
    upd_http_send_text(req, 302, "%s", location);
}

void
upd_origin_add_tags(h2o_req_t *req, const char *app, const char *channel, const char *version)
{
    /* Surrogate-Key (Varnish, Fastly: space-separated) and Cache-Tag (Cloudflare: comma-separated), the same tags */
    char *sk = h2o_mem_alloc_pool(&req->pool, 3 * UPD_ID_MAX + UPD_VERSION_MAX + 32);
    int n;
    if (channel != NULL && version != NULL && version[0] != '\0')
        n = sprintf(sk, "app:%s chan:%s/%s rel:%s/%s", app, app, channel, app, version);
    else if (channel != NULL)
        n = sprintf(sk, "app:%s chan:%s/%s", app, app, channel);
    else
        n = sprintf(sk, "app:%s rel:%s/%s", app, app, version);
    /* tags are lower-case (the control plane purges by lower-case tags; a version may hold capitals) */
    char *ct = h2o_mem_alloc_pool(&req->pool, (size_t)n + 1);
    for (int i = 0; i <= n; ++i) {
        if (sk[i] >= 'A' && sk[i] <= 'Z')
            sk[i] = (char)(sk[i] - 'A' + 'a');
        ct[i] = sk[i] == ' ' ? ',' : sk[i];
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("surrogate-key"), 0, NULL, sk, (size_t)n);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("cache-tag"), 0, NULL, ct, (size_t)n);
}

static void
handle_healthz(upd_origin_t *o, h2o_req_t *req)
{
    upd_store_txn_t *txn;
    int err = upd_store_read_begin(o->store, &txn);
    if (err != 0) {
        upd_log_warn("%s: healthz: store: %s", upd_http_request_id(req), upd_strerror(err));
        upd_http_send_text(req, 503, "unhealthy: state store: %s", upd_strerror(err));
        return;
    }
    upd_store_txn_end(txn);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    char why[128];
    if (o->sync != NULL && !upd_sync_ready(o->sync)) {
        /* until the published state has been read once, this origin may answer from an old copy: out of rotation */
        upd_http_send_text(req, 503, "unhealthy: published state not loaded yet");
        return;
    }
    if (o->fetchers != NULL && !upd_backends_healthy(o->fetchers, why, sizeof(why))) {
        upd_http_send_text(req, 503, "unhealthy: %s", why);
        return;
    }
    upd_http_send_text(req, 200, "ok");
}

void
upd_origin_render_metrics(void *arg, FILE *fp)
{
    const upd_origin_t *o = arg;
    upd_purge_metrics(fp);
    if (o->fetchers != NULL) {
        upd_backends_metrics(o->fetchers, fp);
        upd_cache_metrics(o->cache, fp);
    }
    if (o->sync != NULL)
        upd_sync_metrics(o->sync, fp);
}

static void
handle_metrics(upd_origin_t *o, h2o_req_t *req)
{
    size_t len;
    char *text = upd_metrics_render(o->metrics, &len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    upd_http_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

int
upd_origin_on_req(void *app, h2o_req_t *req)
{
    upd_origin_t *o = app;
    upd_route_t r;
    const char *why;
    if (h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/_updraft/purge"))) {
        upd_purge_handle(o, req);
        return 0;
    }
    int err = upd_route_parse(req->path.base, req->path.len, &r, &why);
    if (err == UPD_ENOTFOUND)
        return -1;
    if (!(h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
          h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))) {
        upd_http_send_405_get_head(req);
        return 0;
    }
    if (err != 0) {
        upd_log_info("%s: bad request: %s", upd_http_request_id(req), why);
        upd_http_send_text(req, 400, "%s", why);
        return 0;
    }
    switch (r.kind) {
    case UPD_ROUTE_FEED:
        upd_feed_handle(o, req, &r);
        break;
    case UPD_ROUTE_NUPKG:
    case UPD_ROUTE_ARTIFACT:
        upd_artifact_handle(o, req, &r);
        break;
    case UPD_ROUTE_DOWNLOAD:
        upd_download_handle(o, req, &r);
        break;
    case UPD_ROUTE_HEALTHZ:
        handle_healthz(o, req);
        break;
    case UPD_ROUTE_METRICS:
        handle_metrics(o, req);
        break;
    default:
        return -1;
    }
    return 0;
}

size_t
upd_origin_route_of(const h2o_req_t *req)
{
    return upd_route_label(req->input.path.base, req->input.path.len);
}
