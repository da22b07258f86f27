#ifndef UPD_FETCH_H
#define UPD_FETCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "loop/s3_loop.h"

/*
 * Verified fetches from object storage with failover: R2 first, the S3 mirror when R2 fails.
 *
 * A fetch reads one registered file. Bytes are checked block by block as they arrive (XXH3-128
 * per block of the release's block size; a file without blocks is checked whole with its sha512)
 * and handed to the sink only once their block verified; the whole sha512 is checked at the end.
 * When a backend fails (connect error, first-byte or stall timeout, 5xx, 403, a broken connection,
 * a block that does not verify, a size that does not match) the fetch continues on the next
 * backend from the first byte not yet verified (Range: bytes=N-), so the sink sees one unbroken,
 * verified byte stream. A 404 is checked on the next backend too: the mirror may be ahead.
 *
 * Each backend has a circuit breaker: after K consecutive failures it opens and fetches skip the
 * backend; after the open period one fetch probes it (half-open), and a good answer closes it.
 */

typedef struct st_upd_backends_t upd_backends_t;
typedef struct st_upd_fetch_t upd_fetch_t;

upd_backends_t *upd_backends_create(upd_s3_loop_t *loop, const upd_s3_backend_t *backends, size_t n, uint32_t breaker_failures,
                                    uint32_t breaker_open_ms);
void upd_backends_destroy(upd_backends_t *bs);
/** Prometheus text: requests by backend and outcome, failovers, breaker states, bytes. */
void upd_backends_metrics(const upd_backends_t *bs, FILE *fp);
/** false, with the reason, when every backend's breaker is open (for /healthz) */
bool upd_backends_healthy(const upd_backends_t *bs, char *why, size_t cap);

typedef struct st_upd_fetch_sink_t {
    /** Verified bytes [off, off + len), in order. @return 0, or -1 to stop (a disk error: the fetch ends with UPD_EIO) */
    int (*on_verified)(void *arg, uint64_t off, const uint8_t *p, size_t len);
    /** Whether to hold the backend back for now (readers far behind); the sink calls upd_fetch_resume() later. */
    bool (*should_pause)(void *arg, uint64_t verified);
    /**
     * The end, once: 0 (every byte verified, sha512 included), UPD_ENOTFOUND (404 on every backend),
     * UPD_EBACKEND (backends failed), UPD_EUNAVAILABLE (every breaker open: nothing tried),
     * UPD_EINTEGRITY (no backend served bytes that verify), UPD_EIO (the sink failed).
     * path: the backends used, in order ("r2", "s3", "r2>s3"). The fetch is freed after it returns.
     */
    void (*on_done)(void *arg, int result, const char *path);
} upd_fetch_sink_t;

typedef struct st_upd_fetch_spec_t {
    const char *key; /* APP/VERSION/NAME */
    uint64_t size;
    const uint8_t *sha512; /* 64 bytes */
    uint32_t block_size;   /* 0 with no blocks */
    const uint8_t *blocks; /* nblocks digests (copied) */
    size_t nblocks;
} upd_fetch_spec_t;

/**
 * Starts a fetch. The sink's callbacks run on the loop (on_verified inside libcurl's callbacks:
 * write, do not send). When no backend can be tried at all, on_done is called before this returns.
 * @return the fetch; NULL when it ended already (on_done was called, also with UPD_ENOMEM)
 */
upd_fetch_t *upd_fetch_start(upd_backends_t *bs, const upd_fetch_spec_t *spec, const upd_fetch_sink_t *sink, void *arg);
/** The backends used so far ("r2", "r2>s3"). */
const char *upd_fetch_path(const upd_fetch_t *f);
/** Readers caught up: let the backend transfer go on. */
void upd_fetch_resume(upd_fetch_t *f);
/** Stops a fetch; on_done is not called. */
void upd_fetch_cancel(upd_fetch_t *f);

#endif
