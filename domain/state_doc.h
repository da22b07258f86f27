#ifndef UPD_STATE_DOC_H
#define UPD_STATE_DOC_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "domain/ids.h"

/*
 * The published-state format: what the control plane writes to object storage (control/propagate.c) and every
 * origin with its own LMDB environment reads back (loop/sync.c). The one owner of its key names and of the index.
 *
 *   _updraft/state/APP/GENERATION.json  the app's whole release state at that generation (upd_store_app_export); kept
 *   _updraft/state/APP.json             the same bytes: the newest
 *   _updraft/state/index.json           {"format":1,"apps":{"APP":GENERATION,...}}
 *
 * The control plane writes them in that order, so a reader that finds the index finds the documents it names. The
 * index lists the apps that have published state: generations are positive (an app's generation is the sum of its
 * channels', so an app with no channel yet has nothing to publish).
 *
 * Pure: no I/O. Keys are formatted into the caller's buffer; UPD_STATE_KEY_MAX always fits.
 */

#define UPD_STATE_PREFIX "_updraft/state/"
#define UPD_STATE_INDEX_KEY UPD_STATE_PREFIX "index.json"
#define UPD_STATE_FORMAT 1
/* the longest key with its NUL: prefix, an app id, '/', 20 digits of a uint64, ".json" */
#define UPD_STATE_KEY_MAX (sizeof(UPD_STATE_PREFIX) - 1 + UPD_ID_MAX + 1 + 20 + sizeof(".json"))

/**
 * Formats the key of an app's document at one generation: "_updraft/state/APP/GENERATION.json".
 * @param[out] buf  the NUL-terminated key on success, "" on failure (when cap > 0)
 * (Generation 0, an app without a channel, has a key too: the control plane republishes every app at start-up;
 * the index never names it.)
 * @return 0; UPD_EINVAL when app is not an app id; UPD_ETOOBIG when the key and its NUL do not fit in cap bytes
 *         (a buffer of UPD_STATE_KEY_MAX always does)
 */
int upd_state_doc_key(char *buf, size_t cap, const char *app, uint64_t generation);

/**
 * Formats the key of an app's newest document: "_updraft/state/APP.json".
 * @return 0, UPD_EINVAL (not an app id), UPD_ETOOBIG (as upd_state_doc_key)
 */
int upd_state_latest_key(char *buf, size_t cap, const char *app);

/**
 * Formats the key of the index, "_updraft/state/index.json" (UPD_STATE_INDEX_KEY).
 * @return 0 or UPD_ETOOBIG (as upd_state_doc_key)
 */
int upd_state_index_key(char *buf, size_t cap);

/* ---- the index ---- */

typedef struct st_upd_state_index_entry_t {
    char app[UPD_ID_MAX + 1];
    uint64_t generation; /* > 0 */
} upd_state_index_entry_t;

/** The apps of an index in document order; embedded: upd_state_index_init / upd_state_index_dispose. */
typedef struct st_upd_state_index_t {
    upd_state_index_entry_t *apps;
    size_t n, cap;
} upd_state_index_t;

void upd_state_index_init(upd_state_index_t *ix);
/** Frees the entries; the index is empty (and may be used again) afterwards. */
void upd_state_index_dispose(upd_state_index_t *ix);

/**
 * Sets app's generation: appended when the app is new, replaced in place otherwise. A linear search: an index names
 * one deployment's apps (tens to hundreds), not clients.
 * @return 0; UPD_EINVAL when app is not an app id or generation is 0 (nothing published), the index unchanged
 */
int upd_state_index_set(upd_state_index_t *ix, const char *app, uint64_t generation);

/** @return the app's generation in the index, 0 when it is not listed */
uint64_t upd_state_index_get(const upd_state_index_t *ix, const char *app);

/**
 * Formats the index document, {"format":1,"apps":{"APP":GENERATION,...}}, compact, apps in index order.
 * @param[out] out  malloc'ed, NUL-terminated, *out_len bytes before the NUL; the caller frees it
 * @return 0 or UPD_ENOMEM
 */
int upd_state_index_format(const upd_state_index_t *ix, char **out, size_t *out_len);

/**
 * Parses an index document into ix (emptied first). Refused whole, so that a reader never acts on part of a damaged
 * index: not JSON, not an object, a duplicate key, "format" other than the integer 1, "apps" not an object, a key of
 * "apps" that is not an app id, a generation that is not a positive integer. Other top-level members are ignored
 * (room for later fields).
 * @param why  filled with the reason on failure (NULL is fine): code "state_index", a message naming the member
 * @return 0; UPD_EINVAL (ix then empty); UPD_ENOMEM
 */
int upd_state_index_parse(const char *text, size_t len, upd_state_index_t *ix, upd_reason_t *why);

#endif
