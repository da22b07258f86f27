#ifndef UPD_ORIGIN_METRICS_H
#define UPD_ORIGIN_METRICS_H

#include <h2o.h>
#include <stdio.h>
#include "handlers/context.h"

/*
 * The origin's /metrics: the request and decision counters of server/metrics.h, followed by what only the
 * origin has (object storage, the disk cache, state polling, purges).
 */

/**
 * GET /metrics: the Prometheus text format (version 0.0.4), never cached. Always answers 200.
 */
void upd_origin_metrics_handle(upd_origin_t *o, h2o_req_t *req);

/**
 * Writes the purge, object-storage backend, cache and state-polling metrics to fp; those of a part that is not
 * configured are left out. An upd_metrics_add_renderer() callback: arg is the upd_origin_t, borrowed.
 */
void upd_origin_metrics_render(void *arg, FILE *fp);

#endif
