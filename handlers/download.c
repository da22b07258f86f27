/*
 * Download links. They are stored at release time as feed variants "download:PLATFORM:ARCH:FORMAT" whose
 * body is the artifact path (see control/publish.c), so a redirect costs one lookup.
 */
#include "handlers/download.h"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "handlers/respond.h"
#include "handlers/tags.h"
#include "server/http.h"

void
upd_download_handle(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r)
{
    static const char *const default_format[UPD_PLATFORM_COUNT] = {"exe", "dmg", "appimage"};
    upd_store_txn_t *txn;
    int err;
    if ((err = upd_store_read_begin(o->store, &txn)) != 0) {
        upd_respond_store_error(o, req, err);
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
    upd_tags_add(req, r->app, r->channel, ch.stable);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, location, len);
    upd_http_send_text(req, 302, "%s", location);
}
