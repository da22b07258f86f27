#ifndef UPD_CONTROL_H
#define UPD_CONTROL_H

#include <stddef.h>
#include "control/audit_export.h"
#include "control/propagate.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/program.h"
#include "server/workers.h"
#include "storage/s3.h"
#include "storage/s3_sync.h"
#include "storage/store.h"

/*
 * updraft-control: the only writer of release and rollout state (ARCHITECTURE.md). One context, filled by
 * programs/control.c at start-up and read (never changed) by every request: the API (control/api.h), registration
 * (control/publish.h), the object-storage checks (control/mirror.h) and propagation (control/propagate.h).
 */
typedef struct st_upd_control_t {
    const upd_conf_t *conf;
    upd_store_t *store;
    int storage_fd; /* the local-directory object store: with object storage, the staging directory */
    upd_metrics_t *metrics;
    /* object_store.kind s3: every registered file is on each of these (R2, then the S3 mirror); none for local */
    upd_s3_backend_t backends[UPD_BACKENDS];
    size_t nbackends;
    upd_s3_timeouts_t timeouts;
    /* after each committed release or rollout change: state to object storage, purges of origins and edges; NULL for
     * none (the answers then have no "propagation" member) */
    upd_propagate_t *propagate;
    /* the state-changing API calls run here (control/jobs.h) */
    upd_workers_t *workers;
    /* the audit trail's export to object storage, on threads of its own */
    upd_audit_export_t *audit_export;
    /* the API keys' last uses, noted on the loop and written by a thread of their own (control/keys.h); NULL: none */
    struct st_upd_key_uses_t *key_uses;
    /* backups of the environment to the object stores (control/backup.h); NULL when not set up */
    struct st_upd_backup_t *backup;
} upd_control_t;

#endif
