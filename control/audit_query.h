#ifndef UPD_CONTROL_AUDIT_QUERY_H
#define UPD_CONTROL_AUDIT_QUERY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "storage/store.h"

/*
 * The audit trail's query (GET /v1/audit, docs/control-api.md): the stored records that pass a filter
 * (upd_audit_filter_t, domain/audit.h), newest first, a page at a time.
 *
 * It runs on the event loop, in one read transaction, and stays bounded there: it reads at most scan_max records per
 * request (audit.query_scan_max), newest first from `before`, and stops at the first record older than `since` (the
 * trail is written in time order by its one writer; a wall clock stepped back by hand may hide the few records written
 * just before the step from a `since` query, never from a query without one).
 */

/**
 * Answers a query string (without '?', NULL for none).
 * @param[out] out  {"records":[record...],"next_before":SEQ|null}, plus "scan_limited":true when scan_max records were
 *                  read before `limit` of them matched (next_before then says where to go on); records are the stored
 *                  ones parsed back into JSON objects
 * @return 0; UPD_EINVAL (a malformed parameter: why says which, code "invalid"); UPD_ESTORE; UPD_ENOMEM
 */
int upd_audit_query(upd_store_t *store, const char *query, size_t len, uint64_t scan_max, json_t **out, upd_reason_t *why);

#endif
