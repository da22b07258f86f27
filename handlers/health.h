#ifndef UPD_HEALTH_H
#define UPD_HEALTH_H

#include <h2o.h>
#include "handlers/context.h"

/**
 * GET /healthz, for load balancers: 200 "ok" when this origin can answer from current state, else 503
 * "unhealthy: WHY": the state store cannot be read (whatever the error: a probe is healthy or not), the
 * published state has not been loaded once yet (state polling), or no object-storage backend may be tried.
 * Sent with Cache-Control: no-store (all but the store-failure answer, which carries none). Always answers.
 */
void upd_health_handle(upd_origin_t *o, h2o_req_t *req);

#endif
