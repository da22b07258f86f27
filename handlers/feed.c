/*
 * Update checks: electron-updater, Squirrel.Mac, Squirrel.Windows and Tauri (PROTOCOLS.md "Update
 * feeds"). The hot path: one read transaction, one channel record, at most a pin lookup and a
 * clients-offered push (two hashes and, for a client new to the version, a queue slot), one pre-rendered body copied into
 * the request pool. Nothing is serialised.
 */
#include "handlers/feed.h"
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include "base/err.h"
#include "base/hex.h"
#include "domain/rollout.h"
#include "handlers/respond.h"
#include "handlers/tags.h"
#include "server/http.h"
#include "server/http_error.h"

static const char *const feed_names[UPD_FEED_COUNT] = {"electron-updater", "Squirrel.Mac", "Squirrel.Windows", "Tauri"};

static const char *const content_types[UPD_FEED_COUNT] = {
    "text/yaml; charset=utf-8",  /* electron-updater */
    "application/json",          /* Squirrel.Mac */
    "text/plain; charset=utf-8", /* Squirrel.Windows RELEASES */
    "application/json",          /* Tauri */
};

/* The client id: X-Updraft-Client, then ?client_id= (or Squirrel.Windows' c/ID path part), then
 * x-user-staging-id, which stock electron-updater sends on every feed request. First found wins. */
static int
find_client(h2o_req_t *req, const upd_route_t *r, const char **id, size_t *len, const char **which)
{
    const h2o_iovec_t *h;
    *id = NULL;
    *len = 0;
    if ((h = upd_http_header(req, H2O_STRLIT("x-updraft-client"))) != NULL) {
        *which = "X-Updraft-Client";
        *id = h->base;
        *len = h->len;
    } else if (r->client[0] != '\0') {
        *which = "client_id";
        *id = r->client;
        *len = strlen(r->client);
        return 0; /* validated by the router */
    } else if ((h = upd_http_header(req, H2O_STRLIT("x-user-staging-id"))) != NULL) {
        *which = "x-user-staging-id";
        *id = h->base;
        *len = h->len;
    } else {
        return 0;
    }
    return upd_id_is_client(*id, *len) ? 0 : UPD_EINVAL;
}

/* The client's address for geo-targeting: the peer, or the right-most X-Forwarded-For entry that is
 * not itself a trusted proxy, when the peer is one. */
static int
client_address(upd_origin_t *o, h2o_req_t *req, uint8_t addr[16])
{
    struct sockaddr_storage ss;
    if (upd_http_peer(req, &ss) == 0 || upd_cidr_addr_from_sockaddr((struct sockaddr *)&ss, addr) != 0)
        return -1;
    if (o->ntrusted == 0 || !upd_cidr_contains(o->trusted, o->ntrusted, addr))
        return 0;
    const h2o_iovec_t *xff = upd_http_header(req, H2O_STRLIT("x-forwarded-for"));
    if (xff == NULL)
        return 0;
    const char *start = xff->base, *end = xff->base + xff->len;
    while (end > start) {
        const char *comma = end;
        while (comma > start && comma[-1] != ',')
            --comma;
        const char *a = comma, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            ++a;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            --b;
        uint8_t hop[16];
        if (upd_cidr_addr_parse(a, b - a, hop) != 0)
            return 0; /* a malformed hop: trust nothing beyond the peer */
        memcpy(addr, hop, 16);
        if (!upd_cidr_contains(o->trusted, o->ntrusted, hop))
            return 0;
        end = comma > start ? comma - 1 : start;
    }
    return 0;
}

static const char *
client_country(upd_origin_t *o, h2o_req_t *req, char country[3])
{
    uint8_t addr[16];
    if (o->geo == NULL || client_address(o, req, addr) != 0)
        return NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, addr + 12, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, addr, 16);
    }
    return upd_geo_country(o->geo, (struct sockaddr *)&ss, country) == 0 ? country : NULL;
}

static void
send_no_content(h2o_req_t *req, int status)
{
    /* no Content-Length on 204/304 (RFC 9110 §8.6); h2o then sends neither a length nor chunks */
    req->res.status = status;
    req->res.reason = upd_http_reason(status);
    h2o_send_inline(req, "", 0);
}

/* Personalised answers are private; the others may be cached by edges for a short while, tagged so a
 * release can purge them, and vary on the identity headers since the same URL answers differently
 * once a client id comes with it. */
static void
add_cache_headers(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r, bool personal, const char *version)
{
    if (personal) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("private, no-cache"));
        return;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, o->feed_cache_control, o->feed_cache_control_len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("X-Updraft-Client, X-User-Staging-Id"));
    upd_tags_add(req, r->app, r->channel, version);
}

void
upd_feed_handle(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r)
{
    const char *client, *which = NULL;
    size_t client_len;
    int err;
    if ((err = find_client(req, r, &client, &client_len, &which)) != 0) {
        upd_http_send_text(req, upd_http_error_of(err, NULL).status, "%s: expected 1-128 bytes of [A-Za-z0-9._:-]", which);
        return;
    }
    bool personal = client != NULL;

    upd_store_txn_t *txn;
    if ((err = upd_store_read_begin(o->store, &txn)) != 0) {
        upd_respond_store_error(o, req, err);
        return;
    }
    upd_channel_t ch;
    if ((err = upd_store_channel_get(txn, r->app, r->channel, &ch)) != 0) {
        const char *json;
        size_t json_len;
        bool app_known = upd_store_app_get(txn, r->app, &json, &json_len) == 0;
        upd_store_txn_end(txn);
        if (app_known)
            upd_http_send_text(req, 404, "app %s has no channel %s", r->app, r->channel);
        else
            upd_http_send_text(req, 404, "unknown app %s", r->app);
        return;
    }

    /* which version this client is offered */
    const char *version = ch.stable;
    bool staged = false, rollout = ch.rollout_version[0] != '\0';
    if (rollout) {
        if (personal) {
            char cbuf[3];
            const char *country = NULL;
            uint32_t bucket = upd_rollout_bucket(client, client_len, ch.rollout.seed);
            if (bucket < ch.rollout.percent_bp && ch.rollout.ncountries != 0)
                country = client_country(o, req, cbuf); /* the geo lookup only when it can change the answer */
            upd_decision_t d = upd_rollout_decide_bucket(&ch.rollout, bucket, false, country);
            if (!upd_decision_is_eligible(d) && upd_store_pin_has(txn, r->app, r->channel, client, client_len))
                d = UPD_DECISION_PINNED;
            upd_metrics_decision(o->metrics, d);
            if (upd_decision_is_eligible(d))
                version = ch.rollout_version;
        } else if (r->fmt == UPD_FEED_ELECTRON || r->fmt == UPD_FEED_SQUIRREL_WIN) {
            /* the client filters itself with stagingPercentage / #NN% (its native staging) */
            version = ch.rollout_version;
            staged = true;
        }
    }
    if (version[0] == '\0') {
        /* only a partial rollout so far, and this client is not in it: Squirrel.Mac and Tauri understand
         * "no update"; electron-updater and Squirrel.Windows need a file, and none may be given yet */
        upd_store_txn_end(txn);
        if (r->fmt == UPD_FEED_SQUIRREL_MAC || r->fmt == UPD_FEED_TAURI) {
            add_cache_headers(o, req, r, personal, NULL);
            send_no_content(req, 204);
        } else {
            upd_http_send_text(req, 404, "channel %s of %s has no fully released version yet", r->channel, r->app);
        }
        return;
    }

    char key[UPD_FEED_KEY_MAX];
    int key_len = upd_feed_key(r->fmt, r->platform, r->arch < 0 ? UPD_ARCH_X64 : (upd_arch_t)r->arch, staged, key);
    const char *body;
    size_t len;
    uint64_t etag_bits;
    if (key_len < 0 || upd_store_feed_get(txn, r->app, version, key, (size_t)key_len, &body, &len, &etag_bits) != 0) {
        upd_store_txn_end(txn);
        upd_http_send_text(req, 404, "release %s of %s has no %s update for %s/%s", version, r->app, feed_names[r->fmt],
                           upd_platform_name(r->platform), r->arch < 0 ? "x64" : upd_arch_name((upd_arch_t)r->arch));
        return;
    }

    /* Squirrel.Mac installs whatever it is given, even the version it runs: never offer current or older */
    if ((r->fmt == UPD_FEED_SQUIRREL_MAC || r->fmt == UPD_FEED_TAURI) &&
        upd_version_cmp_str(version, strlen(version), r->current, strlen(r->current)) <= 0) {
        upd_store_txn_end(txn);
        add_cache_headers(o, req, r, personal, version);
        send_no_content(req, 204);
        return;
    }

    /* offered: counted once per client and version (a 204 above offered nothing) */
    if (personal && !upd_seen_push(o->seen, r->app, r->channel, version, client, client_len))
        upd_metrics_add(o->metrics, UPD_COUNTER_CLIENTS_DROPPED, 1);

    /* "%016x" in quotes, without printf on the hot path: the 64 bits most significant first, in hex */
    uint8_t be[8];
    for (int i = 0; i < 8; ++i)
        be[i] = (uint8_t)(etag_bits >> (56 - 8 * i));
    const int etag_len = 18;
    char *etag = h2o_mem_alloc_pool(&req->pool, etag_len);
    etag[0] = '"';
    upd_hex_encode(be, sizeof(be), etag + 1); /* its NUL lands on etag[17], the closing quote */
    etag[17] = '"';
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag, etag_len);
    add_cache_headers(o, req, r, personal, version);
    if (upd_http_if_none_match(req, etag, (size_t)etag_len)) {
        upd_store_txn_end(txn);
        send_no_content(req, 304);
        return;
    }
    /* h2o copies the body into the pool before sending; the transaction can end right after */
    upd_http_send(req, 200, content_types[r->fmt], body, len);
    upd_store_txn_end(txn);
}
