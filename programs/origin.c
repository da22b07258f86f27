/* updraft-origin: the data plane. Answers update checks and serves artifacts. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/err.h"
#include "domain/route.h"
#include "handlers/origin.h"
#include "handlers/origin_metrics.h"
#include "server/conf_common.h"
#include "server/http.h"
#include "base/log.h"
#include "server/program.h"

static const upd_conf_decl_t origin_decls[] = {
    UPD_CONF_COMMON_DECLS("127.0.0.1:8080", "65536"),
    UPD_CONF_OBJECT_STORE_DECLS,
    {"purge.secret", UPD_CONF_STRING, offsetof(upd_conf_t, purge_secret), 0, 0, "", NULL},
    {"state.poll_ms", UPD_CONF_UINT, offsetof(upd_conf_t, state_poll_ms), 0, 3600000, "2500", NULL},
    {"state.sync_timeout_ms", UPD_CONF_UINT, offsetof(upd_conf_t, state_sync_timeout_ms), 10, 600000, "2000", NULL},
    {"state.max_document_bytes", UPD_CONF_UINT, offsetof(upd_conf_t, state_max_document_bytes), 4096, 1ull << 30, "268435456", NULL},
    {"cache.dir", UPD_CONF_STRING, offsetof(upd_conf_t, cache_dir), 0, 0, "", "--cache"},
    {"cache.max_mib", UPD_CONF_UINT, offsetof(upd_conf_t, cache_max_mib), 1, 1ull << 30, "10240", NULL},
    {"cache.fill_lead_mib", UPD_CONF_UINT, offsetof(upd_conf_t, cache_fill_lead_mib), 1, 65536, "16", NULL},
    {"cache.max_fills", UPD_CONF_UINT, offsetof(upd_conf_t, cache_max_fills), 1, 4096, "32", NULL},
    {"cache.fill_queue", UPD_CONF_UINT, offsetof(upd_conf_t, cache_fill_queue), 0, 1048576, "256", NULL},
    {"cache.scrub_mb_per_s", UPD_CONF_UINT, offsetof(upd_conf_t, cache_scrub_mb_per_s), 0, 100000, "50", NULL},
    /* 0: one per online CPU the origin may run on (upd_hash_pool_default_threads) */
    {"cache.hash_threads", UPD_CONF_UINT, offsetof(upd_conf_t, cache_hash_threads), 0, 64, "0", NULL},
    {"geoip.database", UPD_CONF_STRING, offsetof(upd_conf_t, geoip_database), 0, 0, "", "--geoip"},
    {"trusted_proxies", UPD_CONF_STRLIST, offsetof(upd_conf_t, trusted_proxies), 0, 0, "", "--trusted-proxy"},
    {"feeds.public_max_age", UPD_CONF_UINT, offsetof(upd_conf_t, feed_max_age), 0, 86400, "60", NULL},
    {"downloads.max_age", UPD_CONF_UINT, offsetof(upd_conf_t, download_max_age), 0, 86400, "60", NULL},
    {"clients_seen.queue", UPD_CONF_UINT, offsetof(upd_conf_t, clients_queue), 16, 16777216, "65536", NULL},
    {"clients_seen.flush_ms", UPD_CONF_UINT, offsetof(upd_conf_t, clients_flush_ms), 10, 60000, "1000", NULL},
    {"clients_seen.recent", UPD_CONF_UINT, offsetof(upd_conf_t, clients_recent), 1, 67108864, "1048576", NULL},
    UPD_CONF_END,
};

static const upd_program_t origin_program = {
    "updraft-origin",
    origin_decls,
    UPD_CONF_COMMON_USAGE "  --geoip FILE         MaxMind country database (.mmdb) for geo-targeted rollouts\n"
                          "  --trusted-proxy CIDR believe X-Forwarded-For from these peers, repeatable\n"
                          "  --cache DIR          verified artifacts from object storage (default DATA/cache)\n",
};

/* object storage lives on the loop: created once it exists, torn down after it stopped */
static int
on_loop_start(void *app, h2o_context_t *ctx)
{
    upd_origin_t *o = app;
    const upd_conf_t *conf = o->conf;
    h2o_timeout_init(ctx->loop, &o->purge_timeout, conf->state_sync_timeout_ms);
    if (o->nbackends == 0)
        return 0;
    upd_s3_loop_conf_t lc = {
        .connect_timeout_ms = (uint32_t)conf->backend_connect_timeout_ms,
        .first_byte_timeout_ms = (uint32_t)conf->backend_first_byte_timeout_ms,
        .stall_timeout_ms = (uint32_t)conf->backend_stall_timeout_ms,
    };
    if ((o->s3 = upd_s3_loop_create(ctx->loop, &ctx->zero_timeout, &lc)) == NULL ||
        (o->fetchers = upd_backends_create(o->s3, ctx->loop, o->backends, o->nbackends, (uint32_t)conf->backend_breaker_failures,
                                           (uint32_t)conf->backend_breaker_open_ms, (uint32_t)conf->cache_hash_threads)) == NULL) {
        upd_log_error("cannot start the object-storage client");
        return -1;
    }
    if (upd_mkdirs(conf->cache_dir) != 0) {
        upd_log_error("cache.dir %s: %s", conf->cache_dir, strerror(errno));
        return -1;
    }
    upd_cache_conf_t cc = {
        .max_bytes = conf->cache_max_mib << 20,
        .lead_bytes = conf->cache_fill_lead_mib << 20,
        .max_fills = (uint32_t)conf->cache_max_fills,
        .fill_queue = (uint32_t)conf->cache_fill_queue,
        .scrub_bytes_per_s = conf->cache_scrub_mb_per_s * 1000000,
    };
    if ((o->cache = upd_cache_open(conf->cache_dir, &cc, o->fetchers, ctx->loop, &ctx->zero_timeout)) == NULL)
        return -1;
    upd_log_info("object storage: %s (%s) first, then %s (%s); cache %s; %u hash threads", o->backends[0].name, o->backends[0].host,
                 o->backends[1].name, o->backends[1].host, conf->cache_dir, upd_backends_hash_threads(o->fetchers));
    if (conf->state_poll_ms != 0 &&
        (o->sync = upd_sync_start(ctx->loop, o->s3, o->backends, o->nbackends, o->store, (uint32_t)conf->state_poll_ms,
                                  (size_t)conf->state_max_document_bytes)) == NULL)
        return -1;
    return 0;
}

static void
on_loop_stop(void *app)
{
    upd_origin_t *o = app;
    upd_sync_stop(o->sync);
    o->sync = NULL;
    h2o_timeout_dispose(upd_http_context()->loop, &o->purge_timeout);
    upd_cache_close(o->cache);
    o->cache = NULL;
    upd_backends_destroy(o->fetchers);
    o->fetchers = NULL;
    upd_s3_loop_destroy(o->s3);
    o->s3 = NULL;
}

/* bodies only for the control plane's purge; every public route refuses them */
static bool
accepts_body(const h2o_req_t *req)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/_updraft/purge"));
}

static int32_t
next_wait(void *app)
{
    return upd_s3_loop_next_wait(((upd_origin_t *)app)->s3);
}

static void
on_seen_commit(size_t n, void *arg)
{
    upd_metrics_add(arg, UPD_COUNTER_CLIENTS_RECORDED, n);
}

int
main(int argc, char **argv)
{
    upd_conf_t conf = {0};
    upd_origin_t origin = {.storage_fd = -1};
    bool check;
    int rest, ret = 1;
    upd_log_init("updraft-origin");
    int r = upd_program_configure(&origin_program, argc, argv, &conf, &check, &rest);
    if (r != 0)
        return r == 2 ? 0 : 1;
    if (rest != argc) {
        fprintf(stderr, "updraft-origin: unexpected argument %s (see --help)\n", argv[rest]);
        return 1;
    }
    origin.conf = &conf;
    origin.ntrusted = conf.trusted_proxies.size;
    origin.trusted = calloc(origin.ntrusted + 1, sizeof(*origin.trusted));
    for (size_t i = 0; i < conf.trusted_proxies.size; ++i) {
        if (upd_cidr_parse(conf.trusted_proxies.items[i], &origin.trusted[i]) != 0) {
            fprintf(stderr, "updraft-origin: trusted_proxies: \"%s\" is not an address or CIDR range\n", conf.trusted_proxies.items[i]);
            goto Exit;
        }
    }
    if (conf.geoip_database[0] != '\0' && (r = upd_geo_open(conf.geoip_database, &origin.geo)) != 0) {
        fprintf(stderr, "updraft-origin: geoip.database %s: %s\n", conf.geoip_database, upd_strerror(r));
        goto Exit;
    }
    if (upd_program_object_store("updraft-origin", &conf, origin.backends, &origin.nbackends) != 0)
        goto Exit;
    const char *env_secret = getenv("UPDRAFT_PURGE_SECRET");
    origin.purge_secret = env_secret != NULL && env_secret[0] != '\0' ? env_secret : conf.purge_secret;
    if (conf.cache_dir[0] == '\0') {
        free(conf.cache_dir);
        if (asprintf(&conf.cache_dir, "%s/cache", conf.data_dir) < 0)
            abort();
    }
    if (check) {
        printf("updraft-origin: configuration ok\n");
        ret = 0;
        goto Exit;
    }

    if (upd_program_open_store(&conf, &origin.store) != 0 || (origin.storage_fd = upd_program_open_storage(&conf)) < 0)
        goto Exit;
    origin.feed_cache_control_len = (size_t)snprintf(origin.feed_cache_control, sizeof(origin.feed_cache_control),
                                                     "public, max-age=%llu, stale-if-error=86400",
                                                     (unsigned long long)conf.feed_max_age);
    origin.metrics = upd_metrics_create("origin", upd_route_labels, UPD_ROUTE_LABEL_COUNT);
    upd_metrics_add_renderer(origin.metrics, upd_origin_metrics_render, &origin);
    upd_seen_opts_t seen_opts = {conf.clients_queue, (uint32_t)conf.clients_flush_ms, conf.clients_recent};
    origin.seen = upd_seen_start(origin.store, &seen_opts, on_seen_commit, origin.metrics);

    upd_http_opts_t opts = {
        .program = "updraft-origin",
        .conf = &conf,
        .on_req = upd_origin_on_req,
        .route_of = upd_origin_route_of,
        .route_names = upd_route_labels,
        .nroutes = UPD_ROUTE_LABEL_COUNT,
        .app = &origin,
        .allow_bodies = false,
        .metrics = origin.metrics,
        .on_loop_start = on_loop_start,
        .on_loop_stop = on_loop_stop,
        .next_wait = next_wait,
        .accepts_body = accepts_body,
    };
    ret = upd_http_run(&opts);

Exit:
    upd_seen_stop(origin.seen);
    if (origin.store != NULL)
        upd_store_close(origin.store);
    if (origin.geo != NULL)
        upd_geo_close(origin.geo);
    if (origin.storage_fd >= 0)
        close(origin.storage_fd);
    upd_metrics_destroy(origin.metrics);
    free(origin.trusted);
    upd_conf_dispose(origin_decls, &conf);
    return ret;
}
