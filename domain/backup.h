#ifndef UPD_BACKUP_PLAN_H
#define UPD_BACKUP_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The arithmetic of the control plane's backups (control/backup.h), pure so that it is tested without a clock or a store:
 * a backup's id, when the next one runs, and which ones retention deletes.
 *
 * A backup's id is the UTC time it was asked for, to the second, in ISO 8601's basic format: "20261202T030000Z". Ids
 * sort as their times do, so an object store's key order is the backups' order.
 */

#define UPD_BACKUP_ID_LEN 16 /* "YYYYMMDDTHHMMSSZ" */

/** Formats Unix seconds as a backup id (years 1970-9999). */
void upd_backup_id_format(int64_t t, char id[UPD_BACKUP_ID_LEN + 1]);

/**
 * Parses a backup id: exactly UPD_BACKUP_ID_LEN bytes of a valid UTC date and time (no leap second), as
 * upd_backup_id_format() writes it.
 * @return 0 with *t, or UPD_EINVAL
 */
int upd_backup_id_parse(const char *id, size_t len, int64_t *t);

/**
 * Parses a time of day "HH:MM" or "HH:MM:SS" (UTC, 00:00:00 to 23:59:59) into seconds after midnight.
 * @return 0 or UPD_EINVAL
 */
int upd_backup_parse_at(const char *s, uint32_t *seconds);

/**
 * When the next scheduled backup runs: the first instant after now (strictly) of the form at + k * interval seconds,
 * k a whole number (negative ones too), counted from 1970-01-01T00:00:00Z. With interval 86400 that is every day at the
 * time of day `at`; with 3600, every hour at at's minute and second; with 5, every five seconds.
 * @param interval  seconds, at least 1
 */
int64_t upd_backup_next_run(int64_t now, uint64_t interval, uint32_t at);

/** What retention knows of one backup in one object store. */
typedef struct st_upd_backup_entry_t {
    int64_t time; /* its id's time */
    bool good;    /* read back, opened and checked there */
} upd_backup_entry_t;

/**
 * Which backups of one object store retention deletes: those older than `retention` seconds (time < now - retention),
 * except the newest good one, which is kept whatever its age, so that a store whose backups keep failing still holds
 * the last one that can be restored. A backup that is not good counts for nothing else: it goes once it is old.
 * @param[out] expire  n flags, set for each backup to delete
 * @return how many are to be deleted
 */
size_t upd_backup_expired(const upd_backup_entry_t *entries, size_t n, int64_t now, uint64_t retention, bool *expire);

#endif
