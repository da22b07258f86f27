#ifndef UPD_METRICS_H
#define UPD_METRICS_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include "domain/rollout.h"

/*
 * In-process counters, rendered in the Prometheus text format on /metrics. Updated from the event
 * loop thread only (the programs run one loop), so plain integers suffice.
 */

typedef struct st_upd_metrics_t upd_metrics_t;

typedef enum {
    UPD_COUNTER_FRAMING_REJECTED = 0, /* requests refused by the framing guard */
    UPD_COUNTER_CLIENTS_RECORDED,     /* clients-seen entries committed */
    UPD_COUNTER_CLIENTS_DROPPED,      /* clients-seen entries dropped because the queue was full */
    UPD_COUNTER_STORE_ERRORS,         /* LMDB failures answered with 5xx */
    UPD_COUNTER_COUNT
} upd_counter_t;

/** route_names: the program's route labels (static strings), index = route id. */
upd_metrics_t *upd_metrics_create(const char *program, const char *const *route_names, size_t nroutes);
void upd_metrics_destroy(upd_metrics_t *m);

void upd_metrics_request(upd_metrics_t *m, size_t route, int status, uint64_t duration_us);
void upd_metrics_decision(upd_metrics_t *m, upd_decision_t d);
void upd_metrics_add(upd_metrics_t *m, upd_counter_t c, uint64_t n);

/**
 * Adds the metric families of another module (object storage, the cache, propagation): fn writes them, in the
 * Prometheus text format, after the built-in ones on every render. At most 8.
 */
void upd_metrics_add_renderer(upd_metrics_t *m, void (*fn)(void *arg, FILE *fp), void *arg);

/** Renders every metric. @return a malloc'ed NUL-terminated text, *len its length */
char *upd_metrics_render(const upd_metrics_t *m, size_t *len);

#endif
