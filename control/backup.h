#ifndef UPD_CONTROL_BACKUP_H
#define UPD_CONTROL_BACKUP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "control/restore.h"
#include "domain/backup.h"
#include "storage/s3.h"
#include "storage/s3_sync.h"
#include "storage/store.h"

/*
 * Backups of the control plane's LMDB environment, to every object store it writes to (R2 and the S3 mirror, or the
 * local storage directory), and their restore.
 *
 * A run takes a compact copy of the environment (upd_store_copy_compact) into a temporary file, on the backup thread,
 * never on the event loop. A temporary file rather than a pipe: the manifest needs the copy's size, SHA-256, schema and
 * audit head before anything is uploaded; each part of a multipart upload is signed with its own SHA-256 and retried from
 * the file; the two stores are written one after the other from the same bytes, so a slow store never stalls the copy;
 * and the copy's read transaction lasts as long as writing local disk takes, not as long as the uploads do (a long
 * read transaction keeps LMDB from reusing pages, and the environment grows meanwhile). It costs disk space of the
 * copy's size in backup.temp_dir, and as much again while a copy is read back.
 *
 * Layout in each store (the same under the local storage directory):
 *
 *   _updraft/backups/ID/data.mdb       the compact copy (one PUT, or a multipart upload beyond backup.part_size_mib)
 *   _updraft/backups/ID/manifest.json  {"format":1,"id","time","size","sha256","schema","audit_head":{"seq","hash"}}
 *   _updraft/backups/ID/verdict.json   {"good":bool,"checked":UNIX,"reason":null|"...","sha256"}
 *
 * ID is the UTC second the backup was asked for (domain/backup.h). A backup is good in a store only once it was read
 * back from there: downloaded again, its SHA-256 and size compared with the manifest, opened with upd_store_open in a
 * temporary directory, its schema checked, and its audit chain verified from seq 1 (upd_audit_check) up to the head the
 * manifest names. The verdict is written beside it either way; a backup found without one (a run that was interrupted,
 * objects put there by hand) is read back by the next run. Retention then deletes, per store, the backups older than
 * backup.retention_days but never that store's newest good one (upd_backup_expired).
 *
 * What the program knows of the stores' backups (the catalog) is listed when the scheduler starts, after every run and
 * every backup.refresh_s; the API's list, /metrics and /healthz answer from it without touching a store.
 */

#define UPD_BACKUP_STORES_MAX 2

typedef struct st_upd_backup_conf_t {
    bool enabled;          /* scheduled runs; the API's and the host's runs work either way */
    uint64_t interval;     /* seconds between runs (upd_backup_next_run) */
    uint32_t at;           /* seconds after midnight UTC of the runs' offset */
    uint64_t retention;    /* seconds */
    uint64_t part_size;    /* bytes of each part of a multipart upload */
    unsigned part_retries; /* further attempts of a part (or a single PUT) that got no answer or a 5xx */
    uint64_t refresh;      /* seconds between listings of the stores */
    const char *temp_dir;  /* where copies are written and read back (copied) */
    size_t map_size;       /* LMDB map size to open copies with, bytes */
} upd_backup_conf_t;

typedef struct st_upd_backup_t upd_backup_t;

/**
 * Creates the backups of store to each of the backends (R2, then S3), or, with none, to the local storage directory
 * storage_fd (borrowed, like store, backends and timeouts: they outlive the result). Nothing runs until
 * upd_backup_start() or upd_backup_run_now().
 * @return NULL when out of memory
 */
upd_backup_t *upd_backup_create(const upd_backup_conf_t *conf, upd_store_t *store, const upd_s3_backend_t *backends,
                                size_t nbackends, const upd_s3_timeouts_t *timeouts, int storage_fd);
/** Stops the thread if need be and frees b. NULL is fine. */
void upd_backup_destroy(upd_backup_t *b);

/**
 * Starts the backup thread: it lists the stores, then runs on the schedule (when enabled) and on request. When the
 * newest good backup it finds is older than one interval (a run was missed while the program was down), one runs at once.
 * @return 0 or UPD_EIO (no thread)
 */
int upd_backup_start(upd_backup_t *b);
/**
 * Stops the thread: a run in progress is cancelled between two writes of a transfer (its temporary files removed; what
 * it left in a store has no verdict and is read back by a later run), then the thread is joined. Fine when not started.
 */
void upd_backup_stop(upd_backup_t *b);

/**
 * Asks the thread for a backup now, with id the backup it will be: the one already waiting to start if there is one (its
 * copy is not taken yet, so it will hold whatever is committed now), else a new one (the current second, or one after the
 * newest id so far). commit(id, arg) runs first, serialised with the other requests, and the backup is asked for only when
 * it returns 0 (the API appends its audit record there, so that the record is in the backup it asked for).
 * @return 0 with id, commit's error, or UPD_EUNAVAILABLE when the thread is not running
 */
int upd_backup_request(upd_backup_t *b, int (*commit)(const char *id, void *arg), void *arg, char id[UPD_BACKUP_ID_LEN + 1]);

/**
 * Runs one backup now on the calling thread (blocking: minutes for a large environment), then reads back what has no
 * verdict and applies retention, as a scheduled run does. Progress lines go to progress (NULL: the log only).
 * @param id  the backup's id (upd_backup_id_format), NULL for the current second
 * @return 0 when the backup is good in every store, UPD_EIO when it is not good in at least one (each store's outcome is
 *         printed and logged), another UPD_E* code when no copy could be taken
 */
int upd_backup_run_now(upd_backup_t *b, const char *id, FILE *progress);

/**
 * Lists the stores again (blocking). @return 0, or UPD_EIO when a store could not be listed (what it held is then
 * what was known before, and the failure is logged)
 */
int upd_backup_refresh(upd_backup_t *b);

/**
 * The catalog as the API answers it: {"backups":[{"id","time","size","sha256","schema","audit_head":{"seq","hash"},
 * "good","stores":{"r2":{"good","checked","reason"},...}}...]}, newest first; "good" when at least one store holds a good
 * copy. From memory: safe on the event loop. @return a new reference, NULL when out of memory
 */
json_t *upd_backup_list_json(upd_backup_t *b);

/**
 * Prints the catalog as a table for the host command `backup list`, one line per backup: id, size, SHA-256 (first 12
 * digits), schema, audit head, and each store's verdict.
 */
void upd_backup_print(upd_backup_t *b, FILE *fp);

/**
 * Appends /metrics: updraft_backup_age_seconds (the newest backup good in at least one store; absent while there is
 * none), updraft_backup_store_age_seconds{store}, updraft_backups_total{store,outcome="good"|"failed"} (runs of this
 * process), updraft_backup_deleted_total{store}, updraft_backup_list_failures_total{store}, updraft_backup_running,
 * updraft_backup_last_size_bytes and updraft_backup_last_duration_seconds. Safe on the event loop.
 */
void upd_backup_render_metrics(upd_backup_t *b, FILE *fp);

/**
 * The warning /healthz adds while scheduled backups run (enabled): for each store whose newest good backup is older than
 * twice the interval (or, with none, since the program started that long ago), one line "warning: ...". Safe on the
 * event loop.
 * @return the number of lines written to out (cap bytes, NUL-terminated)
 */
int upd_backup_health(upd_backup_t *b, int64_t now, char *out, size_t cap);

/** How a restore runs (the host command's flags). */
typedef struct st_upd_backup_restore_opts_t {
    bool force;        /* replace what data_dir holds; without it a data_dir that exists and is not empty is refused */
    const char *from;  /* the store to download from ("r2", "s3", "local"); NULL: each in turn, R2 first */
    bool roll_forward; /* false (--no-roll-forward): the backup exactly as it was, for forensics */
    size_t doc_max;    /* the roll-forward's largest state document or index, bytes (backup.restore_max_document_bytes) */
} upd_backup_restore_opts_t;

/**
 * Restores backup id into data_dir/lmdb: downloads its data.mdb from store opts->from, or from each store in turn (R2,
 * then S3) until one copy verifies, printing progress lines with bytes and rate to progress; checks its size and
 * SHA-256 against that store's manifest, opens it, checks its schema and its audit chain from seq 1 up to the manifest's
 * head. Then, unless opts->roll_forward is false, rolls it forward from every store (control/restore.h: the release
 * state and the audit records published after the backup; one line per app rolled forward), and only then moves it
 * into place. An existing data_dir/lmdb is kept beside it as data_dir/lmdb.replaced-ID-OF-NOW. Stop every program
 * using the environment first.
 * @param[out] report  what the roll-forward did (zeros without one)
 * @param why          filled on failure: a sentence for the operator
 * @return 0; UPD_EINTEGRITY when the environment is in place but not rolled forward completely (an app refused on every
 *         store, audit records that do not chain, or no store readable: why and the progress lines say which);
 *         UPD_EEXIST (data_dir not empty, no force), UPD_EINVAL (a malformed id, an unknown store), UPD_ENOTFOUND (no
 *         store holds the backup), UPD_EIO (no copy verified, the copy could not be rolled forward, or writing data_dir
 *         failed: nothing was moved into place)
 */
int upd_backup_restore(upd_backup_t *b, const char *id, const char *data_dir, const upd_backup_restore_opts_t *opts, FILE *progress,
                       upd_restore_report_t *report, char *why, size_t why_cap);

#endif
