#ifndef UPD_STS_API_H
#define UPD_STS_API_H

#include <h2o.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/workers.h"
#include "storage/sts_store.h"

/*
 * The approval service's HTTP routes (docs/sts.md "Routes"): the browser pages, the control plane's proposals, their
 * status and cancellation, the signed states, health and metrics. Every LMDB write and every signature runs on a
 * worker (server/workers.h); reads run on the loop.
 */

typedef struct st_upd_sts_t {
    const upd_conf_t *conf;
    upd_sts_store_t *store;
    EVP_PKEY *key;            /* the release-signing key (sts/release_key.h) */
    upd_workers_t *workers;
    upd_metrics_t *metrics;
    const char *public_url;   /* without a trailing slash */
    const char *control_token; /* "" refuses every control route */
    _Atomic uint64_t proposals_created, signatures, resigns, refusals, ceremonies_ok;
} upd_sts_t;

/** The route labels of /metrics, "other" last. */
const char *const *upd_sts_route_labels(size_t *n);
/** Maps a request to its route label index. */
size_t upd_sts_route_of(const h2o_req_t *req);
/** Answers a request (upd_http_opts_t.on_req). @return 0 */
int upd_sts_on_req(void *app, h2o_req_t *req);
/** Appends the STS's own counters and gauges to /metrics (a renderer of server/metrics.h). */
void upd_sts_render_metrics(void *arg, FILE *fp);

/**
 * Signs doc as app's state at generation (expires now + signing.ttl_s) and records it as the app's signed state, in
 * txn (a write transaction: a worker or a host command). Refuses a generation <= the last signed.
 * @param[out] envelope  malloc'ed, the caller frees it (NULL: not wanted)
 * @return 0; UPD_ECONFLICT "superseded"; UPD_ENOMEM; UPD_ESTORE
 */
int upd_sts_sign_state(upd_sts_t *sts, upd_sts_txn_t *txn, const char *app, uint64_t generation, const char *doc, size_t doc_len,
                       const char *proposal, char **envelope, upd_reason_t *why);

#endif
