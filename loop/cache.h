#ifndef UPD_CACHE_H
#define UPD_CACHE_H

#include <h2o.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "loop/fetch.h"

/*
 * The origin's disk cache of verified artifacts, filled from object storage.
 *
 * Objects are named by their sha512 (DIR/<128 hex>), so one copy serves every release that ships the
 * same bytes and a name can never hold other bytes. A miss starts one fill: verified bytes go to a
 * temporary file (DIR/.fill-*), readers of that object, however many, stream from it as it grows,
 * and the whole file is fsync'ed and renamed into place once its sha512 matched. A crash leaves
 * only temporary files, removed at start-up; the index is rebuilt from the names on disk. A fill
 * runs at most `lead` bytes ahead of its fastest reader (backpressure toward the backend) and at
 * full speed once no reader is left. The total size (fills included) stays under the cap by
 * evicting the least recently used objects; an object over the cap is streamed but not kept.
 * Complete objects are memory-mapped once, so hits are served without copying.
 *
 * Fills are capped: at most max_fills run at once (joining one under way takes no slot); the next misses wait in a
 * FIFO of fill_queue entries and start as slots free; a miss that finds the queue full fails at once with UPD_EBUSY.
 *
 * Objects on disk are not trusted forever. A scrub thread re-hashes every object against its name, continuously at a
 * bounded rate, and removes any that does not match (the next request refills it). An object found at start-up is
 * hashed whole before its first serve (its first readers wait for the verdict; a bad one is removed and refilled
 * for them, so no reader sees its bytes).
 *
 * Everything but the hashing, fsync and rename (on the cache's threads) runs on the loop thread.
 */

typedef struct st_upd_cache_t upd_cache_t;
typedef struct st_upd_cache_obj_t upd_cache_obj_t;

typedef struct st_upd_cache_conf_t {
    uint64_t max_bytes;         /* the size cap */
    uint64_t lead_bytes;        /* how far a fill may run ahead of its fastest reader */
    uint32_t max_fills;         /* fills from object storage at once; further misses wait in the queue */
    uint32_t fill_queue;        /* misses that may wait for a slot; beyond that they fail with UPD_EBUSY */
    uint64_t scrub_bytes_per_s; /* the background scrub's read rate; 0: no scrub */
} upd_cache_conf_t;

/**
 * Opens DIR (creating it), removes leftover temporary files and indexes the objects found (each is checked against
 * its name before its first serve, unless the scrub vouched for it first). Starts the finisher thread and, with a
 * scrub rate, the scrub thread.
 * @return NULL with the reason logged
 */
upd_cache_t *upd_cache_open(const char *dir, const upd_cache_conf_t *conf, upd_backends_t *backends, h2o_loop_t *loop,
                            h2o_timeout_t *zero_timeout);
/** Cancels fills and frees the index (the files stay). */
void upd_cache_close(upd_cache_t *c);
void upd_cache_metrics(const upd_cache_t *c, FILE *fp);

typedef enum { UPD_CACHE_HIT, UPD_CACHE_MISS, UPD_CACHE_JOINED } upd_cache_lookup_t;

/**
 * Finds an object by the file's registered sha512 or starts filling it. Takes a reference.
 * @param spec  the object key and what verifies it (copied)
 * @param[out] how  hit, miss (this call started the fill) or joined (a fill was under way)
 * @return the object (check upd_cache_obj_result: a fill can fail at once); NULL only when out of memory
 */
upd_cache_obj_t *upd_cache_get(upd_cache_t *c, const upd_fetch_spec_t *spec, upd_cache_lookup_t *how);
void upd_cache_obj_release(upd_cache_obj_t *o);

/** Bytes [0, n) are verified and readable (still after a failed fill). */
uint64_t upd_cache_obj_available(const upd_cache_obj_t *o);
bool upd_cache_obj_complete(const upd_cache_obj_t *o);
/**
 * 0 while filling, queued, checked or complete; the fill's error after a failure: UPD_EBACKEND, UPD_EUNAVAILABLE,
 * UPD_ENOTFOUND, UPD_EINTEGRITY, UPD_EIO, UPD_ENOMEM, or UPD_EBUSY (every fill slot taken and the queue full).
 */
int upd_cache_obj_result(const upd_cache_obj_t *o);
/** Backends used by the fill ("r2", "r2>s3"), "" for an object found on disk. */
const char *upd_cache_obj_path(const upd_cache_obj_t *o);
/** The descriptor to pread the available bytes from. */
int upd_cache_obj_fd(const upd_cache_obj_t *o);
/**
 * The whole object mapped in memory (NULL for an empty object, or when mapping failed: pread then). During a fill
 * only the first upd_cache_obj_available() bytes of it may be read.
 */
const uint8_t *upd_cache_obj_map(upd_cache_obj_t *o);
/** A reader has sent everything before `off`: lets the fill run up to `lead` beyond the fastest reader. */
void upd_cache_obj_progress(upd_cache_obj_t *o, uint64_t off);

/** Called (from a loop callback, never from inside the fill) when more bytes are available or the fill ended. */
typedef struct st_upd_cache_waiter_t {
    h2o_linklist_t link;
    void (*cb)(struct st_upd_cache_waiter_t *w);
} upd_cache_waiter_t;

/** Waits once for progress: the callback fires after the next change (then wait again if needed). */
void upd_cache_obj_wait(upd_cache_obj_t *o, upd_cache_waiter_t *w);
void upd_cache_obj_unwait(upd_cache_waiter_t *w);

#endif
