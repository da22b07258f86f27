#ifndef UPD_CONTROL_AUDIT_EXPORT_H
#define UPD_CONTROL_AUDIT_EXPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/err.h"
#include "storage/s3.h"
#include "storage/s3_sync.h"
#include "storage/store.h"

/*
 * The audit trail outside the control plane: its records exported to every object store, and the check that the
 * trail in LMDB and every exported copy still agree (`updraft-control audit verify`).
 *
 * Export. Each destination — every S3 backend of object_store.kind s3 (R2, then the S3 mirror), or, for kind local,
 * the storage directory — has a thread of its own, so that a backend that is down or hangs never holds up the other.
 * A thread writes the records it has not exported yet as one segment (domain/audit.h: _updraft/audit/FIRST-LAST.jsonl,
 * the stored bytes, one record a line) once `records` of them wait or the oldest waiting is `interval_ms` old,
 * looking every `check_ms`. A segment holds at most `records` records: a destination that was down catches up with
 * several. What each destination holds is its high-water mark in the store's meta, "audit_export_<NAME>" (decimal,
 * the last sequence number exported), moved only once the segment is written; a crash between the two writes the
 * segment again, whole, at the next start (possibly spanning more records: segments may overlap, never leave a gap).
 * A failed write is retried after retry_initial_ms, doubling up to retry_max_ms, and counted.
 *
 * Local segments are written to a temporary file in STORAGE/_updraft/audit/, synced, and renamed into place.
 *
 * Verify. upd_audit_verify() reads the store only (open it read-only) and every destination's segments.
 */

typedef struct st_upd_audit_export_t upd_audit_export_t;

typedef struct st_upd_audit_export_opts_t {
    uint64_t records;     /* audit.export_records: a segment once this many wait; also a segment's most records */
    uint64_t interval_ms; /* audit.export_interval_ms: or once the oldest waiting is this old */
    uint64_t check_ms;    /* audit.export_check_ms: how often a thread looks at the chain's head */
    uint64_t retry_initial_ms, retry_max_ms;
} upd_audit_export_opts_t;

/**
 * Creates the exporter (nothing runs until upd_audit_export_start()). backends (nbackends of them, at most
 * UPD_BACKENDS) and timeouts are borrowed and must outlive it; nbackends 0: the local store at storage_fd (borrowed).
 * @return the exporter; NULL when out of memory
 */
upd_audit_export_t *upd_audit_export_create(upd_store_t *store, const upd_s3_backend_t *backends, size_t nbackends,
                                            const upd_s3_timeouts_t *timeouts, int storage_fd, const upd_audit_export_opts_t *opts);

/** Starts one thread per destination. @return 0, or UPD_EIO when a thread could not be started (logged; none runs then) */
int upd_audit_export_start(upd_audit_export_t *x);

/**
 * Stops the threads: a write under way finishes (bounded by the object-store timeouts) and is recorded, then each
 * destination gets what still waits, however young (one try per segment; what fails is exported at the next start). Fine on an exporter never started, and twice. NULL is fine.
 */
void upd_audit_export_stop(upd_audit_export_t *x);

/** Stops it if need be and frees it. NULL is fine. */
void upd_audit_export_destroy(upd_audit_export_t *x);

/**
 * Appends the trail's metrics in the Prometheus text format: updraft_audit_records_total (the records in the trail:
 * its head's sequence number), and per destination (label backend: r2, s3 or local) updraft_audit_exported_seq and
 * updraft_audit_export_pending (gauges), updraft_audit_export_segments_total and updraft_audit_export_failures_total
 * (counters). Reads the store's head in a read transaction of the calling thread.
 */
void upd_audit_export_render_metrics(upd_audit_export_t *x, FILE *fp);

/**
 * Checks the trail: the chain in the store from record 1 (upd_audit_check() for each, no sequence number missing, the
 * head in meta naming the last record), then every segment of every destination (backends, or nbackends 0: the local
 * store at storage_fd): each of its records byte for byte the store's, no gap between segments from record 1, and
 * nothing missing below the destination's export mark. Reads only: the store may be open read-only (and in use).
 * @param[out] summary  on 0: "audit: N records, chain head N HASH; r2: S segments to record M, s3: ..., all match"
 * @param why  on UPD_EINTEGRITY: code "chain", and "record N: why" for the record with the lowest sequence number that
 *             breaks; on another error, what could not be read
 * @return 0; UPD_EINTEGRITY (a break); UPD_EIO (a destination could not be listed or read), UPD_ESTORE, UPD_ENOMEM
 */
int upd_audit_verify(upd_store_t *store, const upd_s3_backend_t *backends, size_t nbackends, const upd_s3_timeouts_t *timeouts,
                     int storage_fd, char *summary, size_t cap, upd_reason_t *why);

#endif
