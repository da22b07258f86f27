#ifndef UPD_HASH_POOL_H
#define UPD_HASH_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <h2o.h>
#include <h2o/multithread.h>

/*
 * A bounded pool of worker threads for CPU-heavy work that must stay off the event loop: hashing the blocks of a
 * fill as they arrive (loop/fetch.c) and writing them into the cache file. The loop only moves bytes; a job is
 * queued here, run on a worker, and its result handed back to the loop through h2o's multithread queue, where the
 * job's done callback runs (a loop callback: sends made there go out at once).
 *
 * Jobs are taken in the order they were submitted (one FIFO for all workers), so two jobs of one caller may run at
 * the same time on two workers: a caller that needs an order keeps one job of its own in flight at a time.
 */

typedef struct st_upd_hash_pool_t upd_hash_pool_t;
typedef struct st_upd_hash_job_t upd_hash_job_t;

struct st_upd_hash_job_t {
    /** On a worker thread: the work. It may touch only what the job owns or what the submitter keeps unchanged. */
    void (*run)(upd_hash_job_t *job);
    /** On the loop, after run returned: the result. The job is the caller's again (free or resubmit it). */
    void (*done)(upd_hash_job_t *job);
    /* private */
    h2o_multithread_message_t super;
    upd_hash_job_t *qnext;
    bool ran;
};

/**
 * What cache.hash_threads: 0 means: the number of online CPUs, or of those in the process's affinity mask when that is
 * fewer (an origin pinned with taskset to one core gets one thread), at most UPD_HASH_THREADS_MAX.
 */
uint32_t upd_hash_pool_default_threads(void);
#define UPD_HASH_THREADS_MAX 64

/**
 * Starts nthreads workers (1..UPD_HASH_THREADS_MAX; 0 means upd_hash_pool_default_threads()) that answer on `loop`.
 * @return the pool, or NULL when a thread could not be started (logged)
 */
upd_hash_pool_t *upd_hash_pool_create(h2o_loop_t *loop, uint32_t nthreads);
/**
 * Stops the workers (a job running finishes first; jobs still queued are not run) and frees the pool. Call it on the
 * loop thread once no caller waits for a done callback any more: answers not yet read are dropped.
 */
void upd_hash_pool_destroy(upd_hash_pool_t *p);
/** Queues a job; its done callback runs on the loop later, never inside this call. */
void upd_hash_pool_submit(upd_hash_pool_t *p, upd_hash_job_t *job);
/**
 * Blocks until the job's run has returned (for a caller that is going away and must not leave a worker using what it
 * owns). Its done callback still runs on the loop later. Bounded by one job's work: the queue is FIFO.
 */
void upd_hash_pool_wait(upd_hash_pool_t *p, upd_hash_job_t *job);
uint32_t upd_hash_pool_threads(const upd_hash_pool_t *p);
/** Prometheus text: workers, jobs run, seconds of worker CPU time spent in them. */
void upd_hash_pool_metrics(const upd_hash_pool_t *p, FILE *fp);

#endif
