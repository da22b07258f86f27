#ifndef UPD_ORIGIN_H
#define UPD_ORIGIN_H

#include <h2o.h>
#include "handlers/route.h"
#include "server/cidr.h"
#include "server/config.h"
#include "server/metrics.h"
#include "storage/cache.h"
#include "storage/fetch.h"
#include "storage/geo.h"
#include "storage/s3_loop.h"
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
    upd_metrics_t *metrics;
    upd_seen_t *seen;
    char feed_cache_control[48]; /* "public, max-age=N", formatted once at start-up */
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

/**
 * Streams a file of the local store with ETag, Range (single and multipart), If-None-Match,
 * If-Range, HEAD, 416 and immutable caching. The descriptor is owned by the request from here on.
 * @param etag  the strong validator, with quotes
 */
void upd_artifact_send(upd_origin_t *o, h2o_req_t *req, int fd, uint64_t size, const char *etag, const char *content_type);

/** Sends an error for a store failure (503) and counts it. */
void upd_origin_store_error(upd_origin_t *o, h2o_req_t *req, int err);

#endif
