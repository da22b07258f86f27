#ifndef UPD_ORIGIN_H
#define UPD_ORIGIN_H

#include <h2o.h>
#include "domain/route.h"
#include "domain/cidr.h"
#include "server/config.h"
#include "server/metrics.h"
#include "loop/cache.h"
#include "loop/fetch.h"
#include "storage/geo.h"
#include "loop/s3_loop.h"
#include "loop/sync.h"
#include "storage/seen.h"
#include "storage/store.h"

/* What every origin handler shares. Lives as long as the program. */
typedef struct st_upd_origin_t {
    const upd_conf_t *conf;
    upd_store_t *store;
    upd_geo_t *geo;         /* NULL when no database is configured: country lists then allow nobody unknown */
    upd_cidr_t *trusted;    /* proxies whose X-Forwarded-For is believed */
    size_t ntrusted;
    int storage_fd;         /* the local-directory object store, opened once (object_store.kind local) */
    /* object_store.kind s3: the backends, their client on the loop, and the verified disk cache (else NULL) */
    upd_s3_backend_t backends[2];
    size_t nbackends;
    upd_s3_loop_t *s3;
    upd_backends_t *fetchers;
    upd_cache_t *cache;
    upd_sync_t *sync;            /* polls the published state (kind s3 with state.poll_ms), else NULL */
    const char *purge_secret;    /* purge.secret or UPDRAFT_PURGE_SECRET; NULL or "": no purge endpoint */
    h2o_timeout_t purge_timeout; /* state.sync_timeout_ms */
    upd_metrics_t *metrics;
    upd_seen_t *seen;
    char feed_cache_control[64]; /* "public, max-age=N, stale-if-error=86400", formatted once at start-up */
    size_t feed_cache_control_len;
} upd_origin_t;

/** The origin's request entry point (upd_http_opts_t.on_req). */
int upd_origin_on_req(void *app, h2o_req_t *req);
/** Metrics label of a request (upd_http_opts_t.route_of). */
size_t upd_origin_route_of(const h2o_req_t *req);

/* one file per surface */
void upd_feed_handle(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r);
void upd_artifact_handle(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r);
void upd_download_handle(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r);


/** Object storage, cache, state and purge metrics (an upd_metrics_add_renderer callback; arg: the origin). */
void upd_origin_render_metrics(void *arg, FILE *fp);

/** POST /_updraft/purge from the control plane (handlers/purge.c). */
void upd_purge_handle(upd_origin_t *o, h2o_req_t *req);
void upd_purge_metrics(FILE *fp);

/**
 * Adds Surrogate-Key ("app:A chan:A/C rel:A/V") and Cache-Tag (the same, comma-separated) so edges
 * can purge by tag on release. channel NULL: an artifact (app and release only); version NULL or
 * "": no release tag.
 */
void upd_origin_add_tags(h2o_req_t *req, const char *app, const char *channel, const char *version);

/** Sends an error for a store failure (503) and counts it. */
void upd_origin_store_error(upd_origin_t *o, h2o_req_t *req, int err);

#endif
