#ifndef UPD_FETCH_H
#define UPD_FETCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "domain/release.h"
#include "loop/s3_loop.h"

/*
 * Verified fetches from object storage with failover: R2 first, the S3 mirror when R2 fails.
 *
 * A fetch reads one registered file. Bytes are checked block by block as they arrive (SHA-256 per
 * block of the release's block size; a file without blocks is checked whole with its sha512) and
 * handed to the sink only once their block verified. A multi-block file with SHA-256 digests is not
 * hashed whole again (see loop/fetch.c for why that is sound); one registered with XXH3-128 block
 * digests (before store schema 4) is, with its sha512, before its last block is handed on. The
 * hashing runs on a pool of worker threads (loop/hash_pool.h), not on the loop.
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

/**
 * The backends and their fetches' hash threads (hash_threads workers, 0 = one per online CPU, at most 64; they answer
 * on hloop). Destroy only once every fetch has ended or been cancelled.
 * @return NULL on failure (too many backends, no memory, a thread that could not start)
 */
upd_backends_t *upd_backends_create(upd_s3_loop_t *loop, h2o_loop_t *hloop, const upd_s3_backend_t *backends, size_t n,
                                    uint32_t breaker_failures, uint32_t breaker_open_ms, uint32_t hash_threads);
void upd_backends_destroy(upd_backends_t *bs);
/** The number of hash threads started. */
uint32_t upd_backends_hash_threads(const upd_backends_t *bs);
/** Prometheus text: requests by backend and outcome, failovers, breaker states, bytes. */
void upd_backends_metrics(const upd_backends_t *bs, FILE *fp);
/** false, with the reason, when every backend's breaker is open (for /healthz) */
bool upd_backends_healthy(const upd_backends_t *bs, char *why, size_t cap);

typedef struct st_upd_fetch_sink_t {
    /**
     * Verified bytes [off, off + len), in order, on the loop. @return 0, or -1 to stop (a disk error: the fetch ends
     * with UPD_EIO)
     */
    int (*on_verified)(void *arg, uint64_t off, const uint8_t *p, size_t len);
    /** Whether to hold the backend back for now (readers far behind); the sink calls upd_fetch_resume() later. */
    bool (*should_pause)(void *arg, uint64_t verified);
    /**
     * The end, once: 0 (every byte verified: by its SHA-256 block, or the sha512 where that is the proof),
     * UPD_ENOTFOUND (404 on every backend), UPD_EBACKEND (backends failed), UPD_EUNAVAILABLE (every breaker open: nothing tried),
     * UPD_EINTEGRITY (no backend served bytes that verify), UPD_EIO (the sink failed).
     * path: the backends used, in order ("r2", "s3", "r2>s3"). The fetch is freed after it returns.
     */
    void (*on_done)(void *arg, int result, const char *path);
    /**
     * Optional (NULL: none): verified bytes [off, off + len) on a hash thread, before on_verified is called with the
     * same block on the loop. Calls for different blocks may run at the same time, in any order; a block may be
     * written again after a failover (the same bytes: they verified). It may touch only what stays put while the
     * fetch lives (a file descriptor): upd_fetch_cancel() waits until no call is running.
     * @return 0, or -1 (a disk error: the fetch ends with UPD_EIO)
     */
    int (*on_write)(void *arg, uint64_t off, const uint8_t *p, size_t len);
} upd_fetch_sink_t;

typedef struct st_upd_fetch_spec_t {
    const char *key; /* APP/VERSION/NAME */
    uint64_t size;
    const uint8_t *sha512; /* 64 bytes */
    uint32_t block_size;       /* 0 with no blocks */
    upd_block_alg_t block_alg; /* UPD_BLOCK_SHA256, or UPD_BLOCK_XXH3_128 (releases registered before schema 4) */
    const uint8_t *blocks;     /* nblocks digests of upd_block_digest_len(block_alg) bytes (copied) */
    size_t nblocks;
} upd_fetch_spec_t;

/**
 * Starts a fetch. The sink's callbacks run on the loop (should_pause inside libcurl's callbacks;
 * on_verified and on_done from loop callbacks), on_write on a hash thread. When no backend can be
 * tried at all, on_done is called before this returns.
 * @return the fetch; NULL when it ended already (on_done was called, also with UPD_ENOMEM)
 */
upd_fetch_t *upd_fetch_start(upd_backends_t *bs, const upd_fetch_spec_t *spec, const upd_fetch_sink_t *sink, void *arg);
/** The backends used so far ("r2", "r2>s3"). */
const char *upd_fetch_path(const upd_fetch_t *f);
/** Readers caught up: let the backend transfer go on. */
void upd_fetch_resume(upd_fetch_t *f);
/** Stops a fetch; on_done is not called. Waits for its blocks being hashed or written (a block's work at most). */
void upd_fetch_cancel(upd_fetch_t *f);

#endif
