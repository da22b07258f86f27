#ifndef UPD_API_H
#define UPD_API_H

#include <h2o.h>
#include <stddef.h>

int upd_control_on_req(void *app, h2o_req_t *req);
size_t upd_control_route_of(const h2o_req_t *req);
extern const char *const upd_control_route_names[];
#define UPD_CONTROL_ROUTE_COUNT 7

#endif
