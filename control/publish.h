#ifndef UPD_PUBLISH_H
#define UPD_PUBLISH_H

#include <jansson.h>
#include "base/err.h"
#include "control/audit.h"
#include "control/control.h"

/*
 * The control plane's state changes and reads (PROTOCOLS.md, control API v1). Each change runs in one LMDB write
 * transaction: the release record, its rendered feed bodies and download links, and the channel record (with a new
 * generation) land together or not at all. A committed release or rollout change is then propagated
 * (control/propagate.h): the answer's "propagation" says what reached which target; a failed target does not undo the
 * change, it is retried. Without a propagator (c->propagate NULL) answers have no "propagation".
 *
 * Every function here returns 0 with *out a new reference (the caller owns it), or a negative UPD_E* code with *out
 * NULL and *reason (NULL: not wanted) filled with a stable code and a sentence for a person; server/http_error.h turns
 * the two into the HTTP answer. Common to all of them:
 *   UPD_EINVAL    "invalid"            the body or a field of it is malformed (the message names the field)
 *   UPD_ENOTFOUND "not_found"          the app, channel or release does not exist
 *   UPD_ESTORE    "store_unavailable"  LMDB failed (logged; the message is upd_strerror of the store's code)
 * Blocking: they run on the caller's thread.
 *
 * Each change appends its audit record (control/audit.h) to its own write transaction, so a committed change always has
 * its record: audit is the call's context, its target (app, channel, version) and detail filled here. A function that
 * fails records nothing; the caller records the failure (control/jobs.c).
 */

/**
 * Registers a release (POST /v1/apps/APP/releases): body as upd_release_from_request() reads it, with an optional
 * "rollout":{"percent"} (100 when absent: the release becomes stable at once). Its files are checked and put on object
 * storage first (upd_mirror_release()), before any state changes.
 *
 * Without "channel" (absent or null) the release is a draft: checked and mirrored alike, then stored in the drafts
 * sub-database only, offered to nobody and left out of the app's published state, until upd_publish_draft(). Its
 * record there is the release as upd_release_to_json() writes it ("channel" null) with "backends", what its
 * registration reported. Its audit record's action is then "release.draft" (audit->action is set here). A draft has
 * no rollout (UPD_EINVAL when the body gives one). Who may register which of the two is the caller's concern.
 * @param[out] out  {"release","channel","backends","propagation"}; a draft: {"release","backends"}. "release" as
 *                  upd_publish_release_show() shows it ("draft" true or false)
 * @return 0; UPD_EINVAL; UPD_ENOTFOUND "not_found" (unknown app); UPD_ECONFLICT "not_newer" (not newer than the
 *         channel's newest), "conflict" (a .nupkg has another version's package name); UPD_EEXIST "exists" (already
 *         registered, as a release or as a draft); whatever upd_mirror_release() refuses with; UPD_EIO "entropy" (no
 *         random bytes for the rollout seed); UPD_ESTORE
 */
int upd_publish_release(upd_control_t *c, upd_audit_ctx_t *audit, const char *app, json_t *body, json_t **out,
                        upd_reason_t *reason);

/**
 * Publishes a draft (POST /v1/apps/APP/releases/VERSION/publish, body {"channel","rollout"?:{"percent"}}) exactly as the
 * one-call form of upd_publish_release() registers a release on a channel: the release stored (its pub_date the time of
 * publishing), the channel moved, its feeds rendered, the audit record appended and the draft deleted, all in one write
 * transaction, then propagated. Its files are not checked again: they were when the draft was registered.
 * @param version   a valid SemVer (the caller checked it)
 * @param[out] out  {"release","channel","backends" (the draft's registration's),"propagation"}
 * @return 0; UPD_EINVAL (body); UPD_ENOTFOUND (app, or no such draft); UPD_ECONFLICT "not_newer", "conflict"; UPD_EEXIST
 *         "exists" (the version is a published release already); UPD_EIO "entropy"; UPD_ESTORE
 */
int upd_publish_draft(upd_control_t *c, upd_audit_ctx_t *audit, const char *app, const char *version, json_t *body, json_t **out,
                      upd_reason_t *reason);

/**
 * Lists an app's releases (GET /v1/apps/APP/releases): {"releases":[...],"drafts":[...]}, each newest first, each as
 * upd_publish_release_show() shows one.
 * @return 0; UPD_ENOTFOUND (no such app); UPD_ESTORE
 */
int upd_publish_release_list(upd_control_t *c, const char *app, json_t **out, upd_reason_t *reason);

/**
 * Reads one release or draft (GET /v1/apps/APP/releases/VERSION): its stored fields, every optional one present (notes,
 * pulled, pulled_at, pull_reason: null or false when unset) and "draft" true or false ("channel" null for a draft).
 * @return 0; UPD_ENOTFOUND (app, or neither a release nor a draft of that version); UPD_ESTORE
 */
int upd_publish_release_show(upd_control_t *c, const char *app, const char *version, json_t **out, upd_reason_t *reason);

/**
 * Changes a channel's rollout (PUT /v1/apps/APP/channels/CHANNEL/rollout), body {"percent","paused","countries",
 * "pinned"}, each optional. 100 percent makes the rollout version stable.
 * @param[out] out  the channel as upd_publish_channel_show() gives it, with "propagation"
 * @return 0; UPD_EINVAL; UPD_ENOTFOUND (no such app or channel); UPD_ECONFLICT "no_rollout" (percent, paused or
 *         countries without a rollout in progress), "paused" (a new percentage while paused); UPD_ESTORE
 */
int upd_publish_rollout(upd_control_t *c, upd_audit_ctx_t *audit, const char *app, const char *channel, json_t *body, json_t **out,
                        upd_reason_t *reason);

/**
 * Pulls a release (POST /v1/apps/APP/releases/VERSION/pull, body NULL or {"reason"}): marks it pulled (kept, files
 * still served, never again stable or rollout, its feed bodies dropped) and withdraws it from its channel. The
 * channel's rollout version: the rollout ends. Its stable version: the newest older release of the channel not itself
 * pulled becomes stable (none: the channel has no stable version; a rollout in progress goes on). Another, already
 * superseded version: only marked. The generation is bumped, what is now offered re-rendered, and the change
 * propagated like a rollout change (tags app, channel, the pulled version and the versions now offered).
 * @param version   a valid SemVer (the caller checked it)
 * @param[out] out  the channel with "propagation"
 * @return 0; UPD_EINVAL (body); UPD_ENOTFOUND (app or version); UPD_ECONFLICT "pulled" (already); UPD_ESTORE
 */
int upd_publish_pull(upd_control_t *c, upd_audit_ctx_t *audit, const char *app, const char *version, json_t *body, json_t **out,
                     upd_reason_t *reason);

/**
 * Reads a channel (GET /v1/apps/APP/channels/CHANNEL): generation, stable, rollout (version, percent, paused,
 * countries, pinned, seed) or null, the pinned clients and every release of the channel, newest first.
 * @return 0; UPD_ENOTFOUND (no such app or channel); UPD_ESTORE
 */
int upd_publish_channel_show(upd_control_t *c, const char *app, const char *channel, json_t **out, upd_reason_t *reason);

/**
 * Creates an app (POST /v1/apps), body {"id","name"} (name defaults to the id).
 * @param[out] out  the app's record {"id","name","created"}
 * @return 0; UPD_EINVAL (id or name); UPD_EEXIST "exists"; UPD_ESTORE
 */
int upd_publish_app_create(upd_control_t *c, upd_audit_ctx_t *audit, json_t *body, json_t **out, upd_reason_t *reason);

#endif
