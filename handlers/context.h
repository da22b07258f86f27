#ifndef UPD_CONTEXT_H
#define UPD_CONTEXT_H

#include <h2o.h>
#include "domain/cidr.h"
#include "loop/cache.h"
#include "loop/fetch.h"
#include "loop/s3_loop.h"
#include "loop/sync.h"
#include "server/config.h"
#include "server/metrics.h"
#include "storage/geo.h"
#include "storage/seen.h"
#include "storage/store.h"

/*
 * What every origin surface shares: the program's configuration, its store and object storage, its
 * metrics. A header of its own, apart from the dispatcher in handlers/origin.h, so that a surface can
 * reach the origin's state without depending on the file that calls it.
 */

/* Filled in by programs/origin.c and lives as long as the program; handlers read it and never free any of it. */
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

#endif
