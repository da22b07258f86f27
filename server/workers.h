#ifndef UPD_WORKERS_H
#define UPD_WORKERS_H

#include <h2o.h>
#include <stddef.h>
#include <stdio.h>

/*
 * A pool of worker threads for blocking request work (LMDB write transactions, object-storage uploads, purges), so the
 * event loop keeps answering everything else meanwhile.
 *
 * The loop submits a job (a function, its argument, and the request it answers) into a bounded queue; a worker runs the
 * function, which fills in an answer (status, content type, body); the answer travels back to the loop thread through
 * h2o_multithread_send_message and is sent there, from a loop callback (STACK-NOTES Trap 1).
 *
 * A client may go away while its job runs: the request's pool then disposes a hook that marks the job orphaned, and
 * the loop drops the answer instead of touching the freed request. The job itself always runs to its end (a
 * registration is never left half done because a client left). The job function must not touch the request: whatever
 * it needs from it (path segments, the parsed body) is copied into its argument by the submitter.
 *
 * Every function here except the job functions themselves is called on the loop thread.
 */

typedef struct st_upd_workers_t upd_workers_t;

/** What a job answers. The pool frees body (malloc'ed) once the answer is sent or dropped. */
typedef struct st_upd_job_answer_t {
    int status;
    const char *content_type; /* a static string; NULL for text/plain */
    char *body;
    size_t len;
} upd_job_answer_t;

/** Runs on a worker thread; may block. Fills *answer (zeroed before the call: status 0 is answered as 500). */
typedef void (*upd_job_run_cb)(void *arg, upd_job_answer_t *answer);
/** Frees a job's argument once it ran, or when it is dropped unrun at shutdown. May be NULL. */
typedef void (*upd_job_free_cb)(void *arg);

/**
 * Creates a pool of nthreads workers (at least 1) over a queue of at most queue_max jobs waiting (at least 1). Nothing
 * runs until upd_workers_start().
 */
upd_workers_t *upd_workers_create(size_t nthreads, size_t queue_max);

/**
 * Starts the threads and registers the answers' receiver on the loop's queue (ctx->queue).
 * @return 0, or UPD_EIO when a thread could not be started (logged; the pool is then stopped)
 */
int upd_workers_start(upd_workers_t *w, h2o_context_t *ctx);

/**
 * Stops the pool: jobs still waiting in the queue are dropped unrun (logged, their arguments freed), running ones
 * finish, the threads are joined, and answers not yet sent are dropped. Call after the loop stopped serving; the store
 * and whatever the jobs use must outlive this call. Fine on a pool never started.
 */
void upd_workers_stop(upd_workers_t *w);

/** Stops the pool if need be and frees it. NULL is fine. */
void upd_workers_destroy(upd_workers_t *w);

/**
 * Queues run(arg) to answer req. On success the pool owns arg (free_arg frees it once run) and answers req later;
 * the caller must not answer it.
 * @return 0, or UPD_ETOOBIG when queue_max jobs are already waiting (arg stays the caller's and req unanswered: the caller
 *         answers 503 with Retry-After: UPD_WORKERS_RETRY_AFTER), UPD_EUNAVAILABLE when the pool is not running
 */
int upd_workers_submit(upd_workers_t *w, h2o_req_t *req, upd_job_run_cb run, upd_job_free_cb free_arg, void *arg);

/** The seconds a client refused for a full queue is told to wait (Retry-After). */
#define UPD_WORKERS_RETRY_AFTER "1"

/**
 * Appends the pool's metrics in the Prometheus text format: updraft_workers_threads, updraft_workers_busy,
 * updraft_workers_queued (gauges), updraft_workers_jobs_total, updraft_workers_rejected_total,
 * updraft_workers_orphaned_total (counters).
 */
void upd_workers_render_metrics(upd_workers_t *w, FILE *fp);

#endif
