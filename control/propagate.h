#ifndef UPD_PROPAGATE_H
#define UPD_PROPAGATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "server/config.h"
#include "storage/s3.h"
#include "storage/s3_sync.h"
#include "storage/store.h"

/*
 * Release propagation: after a release or rollout change is committed to LMDB, the control plane
 *
 *   1. publishes the app's state to every object-storage backend (object_store.kind s3), the backends at once, each
 *      on long-lived threads of the propagator's (so each keeps its connections): _updraft/state/APP.json (latest),
 *      then, once that is written, _updraft/state/index.json {"format":1,"apps":{APP:GEN,...}} and
 *      _updraft/state/APP/GEN.json (immutable, the same bytes as APP.json, read by nothing) at once;
 *   2. once every backend's APP.json is written (or failed), purges every origin (propagation.origins): POST
 *      ORIGIN/_updraft/purge, HMAC-SHA256 signed, answered 200 {"app","generation"} once the origin holds that
 *      generation (it fetches APP.json at once, loop/sync.h upd_sync_poll_app). The index and GEN.json wait for these
 *      answers, at most 100 ms, so that a backend serves the origins' reads first;
 *   3. then purges the edges together: every Varnish listener (BAN / with X-Updraft-Tags) and Cloudflare
 *      (POST API_BASE/zones/ZONE/purge_cache {"tags":[...]}, at most 30 tags a request).
 * The run returns once all of it is done, the index writes included.
 *
 * The purges of a step run in parallel (libcurl multi, blocking, bounded by propagation.timeout_ms), on one multi
 * handle kept from run to run, whose connection cache keeps the targets' connections open. Origins come before edges:
 * an edge purged before the origins hold the new state could fetch the old answer again.
 *
 * A target that fails is retried in the background on the propagator's own thread (upd_propagate_start), with
 * exponential backoff (retry_initial_ms, doubling, capped at retry_max_ms, at most retry_attempts retries). A newer
 * propagation of the same app to the same target supersedes a pending retry. Never on the event loop: first attempts
 * run on the control plane's workers (control/jobs.h), retries on that thread. Propagations (first attempts, retries,
 * the republish) run one at a time, so the published state never goes backwards; every function below is safe to
 * call from any thread. When a retried origin purge
 * succeeds and no other origin purge of that app is still pending, the edges are purged again: the first edge purge
 * may have let an edge refetch the old answer from that origin. Pending retries are dropped (and logged) at exit;
 * origins that missed a purge converge by polling object storage.
 *
 * Tags are "app:APP", "chan:APP/CHANNEL", "rel:APP/VERSION": lower-cased (SemVer pre-release identifiers may have
 * upper-case letters; Cloudflare compares tags case-insensitively and Varnish bans splice them into a regex), and
 * only [a-z0-9:/._+-]. Origins must tag their answers (Surrogate-Key / Cache-Tag / xkey) the same way.
 *
 * Never logged or returned: propagation.secret, the Cloudflare API token, signatures.
 */

#define UPD_PROPAGATE_TAG_MAX 1024         /* Cloudflare's limit per tag */
#define UPD_PROPAGATE_CLOUDFLARE_TAGS_MAX 30 /* tags per purge_cache request */
#define UPD_PROPAGATE_NONCE_LEN 32           /* lowercase hex of 16 random bytes */

typedef struct st_upd_propagate_t upd_propagate_t;

/* ---- pure parts (unit-tested) ---- */

/** @return true when tag is 1..UPD_PROPAGATE_TAG_MAX bytes of [a-z0-9:/._+-] */
bool upd_propagate_tag_is_valid(const char *tag);

/**
 * The tags of a change of app on channel touching versions (NULL or "" entries skipped): "app:APP",
 * "chan:APP/CHANNEL" (when channel is not NULL), "rel:APP/VERSION" for each version, lower-cased, without
 * duplicates, in that order. A tag that would still hold another character is left out (logged).
 * @return a new JSON array of strings
 */
json_t *upd_propagate_tags(const char *app, const char *channel, const char *const *versions, size_t nversions);

/**
 * Splits tags into Cloudflare purge bodies of at most max_per_batch tags each ({"tags":[...]}, in order).
 * @return a new JSON array of objects; empty when tags is
 */
json_t *upd_propagate_cloudflare_batches(const json_t *tags, size_t max_per_batch);

/**
 * The wait before retry number `retry` (1 for the first): initial_ms * 2^(retry-1), at most max_ms.
 */
uint64_t upd_propagate_backoff_ms(uint64_t initial_ms, uint64_t max_ms, unsigned retry);

/* ---- the propagator ---- */

/**
 * Checks the propagation.* settings and copies them: origin and Varnish URLs must be http:// or https:// (a trailing
 * '/' is dropped); origins need a secret (UPDRAFT_PURGE_SECRET wins over propagation.secret); a Cloudflare zone id is
 * 32 hex digits and needs an API token (UPDRAFT_CLOUDFLARE_API_TOKEN wins over propagation.cloudflare.api_token);
 * retry_max_ms is at least retry_initial_ms.
 * @param backends  object-storage backends to publish state to (copied by pointer: must outlive the propagator);
 *                  nbackends 0 for kind local
 * @param timeouts  for the state writes (copied)
 * @param[out] err  the reason, naming the setting (never a secret), on failure
 * @return the propagator, or NULL
 */
upd_propagate_t *upd_propagate_create(const upd_conf_t *conf, const upd_s3_backend_t *backends, size_t nbackends,
                                      const upd_s3_timeouts_t *timeouts, char *err, size_t errlen);
/** Stops the retry thread if it runs, drops pending retries (logging how many) and frees everything. NULL is fine. */
void upd_propagate_destroy(upd_propagate_t *p);

/** Logs the configured targets (names and URLs only). */
void upd_propagate_log_targets(const upd_propagate_t *p);

/**
 * Propagates the committed state of app: state documents, origin purges, then edge purges; failed targets are queued
 * for retry. Blocking, on the caller's thread (a worker, never the event loop), with no store transaction open on it;
 * waits for a propagation already running (at most its timeouts) to end first.
 * @param tags  from upd_propagate_tags (borrowed)
 * @return a new reference: {"generation":GEN,"state":[{"target","ok",("error","retrying")}...],
 *         "purges":[{"target":"origin URL"|"varnish URL"|"cloudflare","ok",("ms")|("error","retrying")}...]}
 */
json_t *upd_propagate_run(upd_propagate_t *p, upd_store_t *store, const char *app, const json_t *tags);

/**
 * Writes the state documents of every app again (no purges), so that a change committed just before the
 * control plane died is published all the same; failures are retried like any other. Call at start-up.
 * @return the number of apps
 */
size_t upd_propagate_republish(upd_propagate_t *p, upd_store_t *store);

/**
 * Starts the thread that runs the retries as they fall due. Retries queued before it starts wait for it.
 * @return 0, or UPD_EIO when the thread cannot be created (logged)
 */
int upd_propagate_start(upd_propagate_t *p);
/**
 * Stops the retry thread (a round of retries in progress ends first) and joins it; pending retries stay queued until
 * upd_propagate_destroy. Call before the store closes. NULL, or a propagator never started, is fine.
 */
void upd_propagate_stop(upd_propagate_t *p);
/** Runs every due retry now, on the caller's thread (the retry thread's work; tests call it). */
void upd_propagate_run_due(upd_propagate_t *p);

/** Number of targets waiting for a retry. */
size_t upd_propagate_pending(upd_propagate_t *p);

/**
 * Appends the propagation metrics in the Prometheus text format: updraft_propagation_total{kind,result},
 * updraft_propagation_retries_total{kind}, updraft_propagation_abandoned_total{kind},
 * updraft_propagation_requests_total{kind} and updraft_propagation_connections_total{kind} (purges: requests, and the
 * connections they opened), updraft_object_store_requests_total and updraft_object_store_connections_total (the
 * process's blocking object-store client, storage/s3_sync.h), updraft_propagation_pending.
 */
void upd_propagate_render_metrics(upd_propagate_t *p, FILE *fp);

#endif
