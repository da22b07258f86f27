#ifndef UPD_CONTROL_RESTORE_H
#define UPD_CONTROL_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "domain/audit.h"
#include "storage/store.h"

/*
 * Rolling a restored environment forward from the object stores: a backup holds the environment as it was when the
 * copy was taken, but release state and the audit trail are also published on every change (control/propagate.h,
 * control/audit_export.h), so what changed after the backup is still in the stores. upd_restore_roll_forward() takes it
 * back, on the calling thread (a host command: no event loop), before the restore says done.
 *
 * Release state. Every store's _updraft/state/index.json (domain/state_doc.h) is read; per app, the newest generation
 * any store lists wins. An app whose published generation is newer than the environment's (or that the environment
 * lacks) is imported whole from its document (upd_store_app_import, which validates it) in a write transaction of its
 * own: _updraft/state/APP.json, else _updraft/state/APP/GEN.json, from a store that lists that generation, then from a
 * store that lists an older one still newer than the environment's. A document that is refused, unreadable or older than
 * its store's index says is reported and the next one tried; an app no document of which is accepted stays at the
 * backup's state, and is reported. An app the environment holds at a generation at least as new is left alone (its
 * publication may have failed: the control plane republishes it at start). Only release state is published: API keys,
 * members and drafts made after the backup are not in the stores, and stay as the backup has them.
 *
 * Audit trail. Every store's segments (_updraft/audit/FIRST-LAST.jsonl) are listed; from the environment's chain head
 * on, the segment that holds the next record is read (from the first store that has one), and each record past the head
 * is appended byte for byte as exported once it chains (upd_audit_check: its own seq the next one, its "prev" the hash
 * of the one before). A record that does not chain ends what that store contributes (reported with its sequence number
 * and why); the other store may carry on from there. All of it lands in one write transaction with the new chain head
 * (meta "audit_head") and, per store that could be listed, its export mark (meta "audit_export_<NAME>", control/
 * audit_export.h) set to the last record its segments hold without a gap from record 1, capped at the new head and
 * below a record of that store that did not chain, so that the exporter sends each store what it lacks, and nothing
 * it holds.
 *
 * A store that cannot be read is reported and the others are used; what only it held is then missed.
 */

/** GET sink: returns non-zero to stop the transfer. */
typedef int (*upd_restore_sink_cb)(const void *data, size_t len, void *arg);

/** One object store as the roll-forward reads it (the caller's: S3 backends, or the local storage directory). */
typedef struct st_upd_restore_source_t {
    const char *name; /* "r2", "s3", "local": in progress lines and in the export mark's name */
    /**
     * GET of one object, its bytes handed to sink as they arrive.
     * @return 0, UPD_ENOTFOUND (no such object), UPD_EIO (unreadable, or sink stopped it) with msg filled
     */
    int (*get)(void *ctx, const char *key, upd_restore_sink_cb sink, void *arg, char *msg, size_t cap);
    /**
     * cb(key, size, arg) for each object whose key starts with prefix (which ends with '/'), in any order; a non-zero
     * return of cb stops the listing and is returned.
     * @return 0, cb's non-zero return, UPD_EIO with msg filled
     */
    int (*list)(void *ctx, const char *prefix, int (*cb)(const char *key, uint64_t size, void *arg), void *arg, char *msg,
                size_t cap);
    void *ctx;
} upd_restore_source_t;

#define UPD_RESTORE_SOURCES_MAX 2
#define UPD_RESTORE_LIST_MAX 1000 /* bytes of the ids named in a report's lists; cut with "..." beyond */

typedef struct st_upd_restore_opts_t {
    size_t doc_max; /* the largest index or state document read, bytes (a larger one is refused as unreadable) */
} upd_restore_opts_t;

/** What a roll-forward did, for the command's summary. */
typedef struct st_upd_restore_report_t {
    size_t apps_rolled;                      /* apps whose newer published state was imported */
    size_t apps_refused;                     /* apps left at the backup's state: no document of theirs was accepted */
    char refused[UPD_RESTORE_LIST_MAX + 1];  /* their ids, ", " between */
    size_t state_unread;                     /* stores whose index could not be read or was refused */
    uint64_t audit_from, audit_to;           /* the chain head's sequence number before and after */
    char audit_hash[UPD_AUDIT_HASH_HEX + 1]; /* the new head's hash */
    uint64_t audit_held;                     /* the highest sequence number a readable store's segments name */
    bool audit_broken;                       /* some store holds a record past the head that does not chain */
    size_t audit_unread;                     /* stores whose segments could not be listed */
} upd_restore_report_t;

/**
 * Rolls store (open read-write, used by nothing else) forward from sources (1 to UPD_RESTORE_SOURCES_MAX, tried in
 * order), as the top of this file says, printing one line per app rolled forward ("restore: acme: generation 5 -> 7 from
 * r2"), per refusal, per store that could not be read, and the audit trail's outcome to progress (NULL: to the log instead).
 * @return 0 when the environment holds everything the stores that answered publish (it may still be that some store
 *         did not answer: report->state_unread, audit_unread); UPD_EINTEGRITY when something published was left out (an
 *         app refused on every store, or audit records past a record that does not chain on any store: the rest is
 *         rolled forward and committed all the same); UPD_EIO when no store could be read at all (nothing changed);
 *         UPD_ESTORE or UPD_ENOMEM when the environment could not be written (what was committed before stays: the
 *         caller discards the environment)
 */
int upd_restore_roll_forward(upd_store_t *store, const upd_restore_source_t *sources, size_t n, const upd_restore_opts_t *opts,
                             FILE *progress, upd_restore_report_t *report);

#endif
