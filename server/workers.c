/*
 * The worker pool (workers.h). Two threads of control touch a job:
 *
 * - the loop thread: submit, the request pool's dispose hook, and the answer's delivery; job->req and job->hook are
 *   only ever read or written here, so a client leaving (the hook runs) and the answer arriving (on_answers) never
 *   race: both are loop callbacks;
 * - one worker: it pops the job from the queue under the mutex, runs it without any lock, and hands it back through
 *   h2o_multithread_send_message. After that call the worker never touches the job again.
 */
#include "server/workers.h"
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/log.h"
#include "server/http.h"

typedef struct st_hook_t hook_t;

typedef struct st_job_t {
    h2o_multithread_message_t super; /* first: the receiver hands back the message */
    struct st_job_t *next;           /* in the queue */
    upd_workers_t *pool;
    h2o_req_t *req; /* NULL once the request is gone (orphaned); loop thread only */
    hook_t *hook;   /* in req->pool; loop thread only */
    upd_job_run_cb run;
    upd_job_free_cb free_arg;
    void *arg;
    upd_job_answer_t answer;
} job_t;

/* Hung on the request's pool: its dispose tells the job the request is gone. */
struct st_hook_t {
    job_t *job; /* NULL once answered */
};

struct st_upd_workers_t {
    size_t nthreads, queue_max;
    pthread_t *threads;
    size_t nstarted;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    /* under mutex */
    job_t *head, *tail;
    size_t queued, busy;
    bool stopping;
    uint64_t jobs;
    /* loop thread only (rendered on the loop too) */
    h2o_context_t *ctx;
    h2o_multithread_receiver_t receiver;
    bool registered, dropping;
    size_t outstanding; /* submitted, not yet answered or dropped */
    uint64_t rejected, orphaned;
};

static void
job_free(job_t *job)
{
    if (job->arg != NULL && job->free_arg != NULL)
        job->free_arg(job->arg);
    free(job->answer.body);
    free(job);
}

/* ---- the loop side ---- */

static void
on_req_dispose(void *p)
{
    hook_t *hook = p;
    job_t *job = hook->job;
    if (job == NULL)
        return;
    /* the client left while its job runs (or waits): the job goes on, its answer will be dropped */
    job->req = NULL;
    job->hook = NULL;
    ++job->pool->orphaned;
}

static void
deliver(job_t *job)
{
    upd_workers_t *w = job->pool;
    h2o_req_t *req = job->req;
    --w->outstanding;
    if (req != NULL && !w->dropping) {
        /* before the send: HTTP/2 may free the request, and run the hook, inside the final h2o_send (Trap 2) */
        job->hook->job = NULL;
        upd_job_answer_t *a = &job->answer;
        if (a->status == 0)
            upd_http_send_text(req, 500, "internal error: the job gave no answer");
        else
            upd_http_send(req, a->status, a->content_type, a->body != NULL ? a->body : "", a->len);
    } else if (req != NULL) {
        job->hook->job = NULL;
    }
    job_free(job);
}

static void
on_answers(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        job_t *job = H2O_STRUCT_FROM_MEMBER(job_t, super.link, messages->next);
        h2o_linklist_unlink(&job->super.link);
        deliver(job);
    }
}

/* ---- the workers ---- */

static void *
worker_main(void *_w)
{
    upd_workers_t *w = _w;
    pthread_mutex_lock(&w->mutex);
    for (;;) {
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->cond, &w->mutex);
        if (w->stopping)
            break;
        job_t *job = w->head;
        if ((w->head = job->next) == NULL)
            w->tail = NULL;
        --w->queued;
        ++w->busy;
        pthread_mutex_unlock(&w->mutex);

        job->run(job->arg, &job->answer);
        if (job->free_arg != NULL)
            job->free_arg(job->arg);
        job->arg = NULL;

        pthread_mutex_lock(&w->mutex);
        --w->busy;
        ++w->jobs;
        pthread_mutex_unlock(&w->mutex);
        /* the last touch of the job on this thread: from here it belongs to the loop */
        h2o_multithread_send_message(&w->receiver, &job->super);
        pthread_mutex_lock(&w->mutex);
    }
    pthread_mutex_unlock(&w->mutex);
    return NULL;
}

upd_workers_t *
upd_workers_create(size_t nthreads, size_t queue_max)
{
    upd_workers_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        abort();
    w->nthreads = nthreads != 0 ? nthreads : 1;
    w->queue_max = queue_max != 0 ? queue_max : 1;
    if ((w->threads = calloc(w->nthreads, sizeof(*w->threads))) == NULL)
        abort();
    pthread_mutex_init(&w->mutex, NULL);
    pthread_cond_init(&w->cond, NULL);
    return w;
}

int
upd_workers_start(upd_workers_t *w, h2o_context_t *ctx)
{
    w->ctx = ctx;
    h2o_multithread_register_receiver(ctx->queue, &w->receiver, on_answers);
    w->registered = true;
    for (size_t i = 0; i < w->nthreads; ++i) {
        int rc = pthread_create(&w->threads[i], NULL, worker_main, w);
        if (rc != 0) {
            upd_log_error("workers: cannot start thread %zu of %zu: %s", i + 1, w->nthreads, strerror(rc));
            upd_workers_stop(w);
            return UPD_EIO;
        }
        ++w->nstarted;
    }
    upd_log_info("workers: %zu threads, at most %zu jobs waiting", w->nthreads, w->queue_max);
    return 0;
}

int
upd_workers_submit(upd_workers_t *w, h2o_req_t *req, upd_job_run_cb run, upd_job_free_cb free_arg, void *arg)
{
    if (w->nstarted == 0)
        return UPD_EUNAVAILABLE;
    job_t *job = calloc(1, sizeof(*job));
    if (job == NULL)
        abort();
    pthread_mutex_lock(&w->mutex);
    if (w->stopping || w->queued >= w->queue_max) {
        int err = w->stopping ? UPD_EUNAVAILABLE : UPD_ETOOBIG;
        pthread_mutex_unlock(&w->mutex);
        free(job);
        if (err == UPD_ETOOBIG)
            ++w->rejected;
        return err;
    }
    /* hooked before the job can run, so that the request's fate is known to the job whatever happens next */
    hook_t *hook = h2o_mem_alloc_shared(&req->pool, sizeof(*hook), on_req_dispose);
    hook->job = job;
    *job = (job_t){.pool = w, .req = req, .hook = hook, .run = run, .free_arg = free_arg, .arg = arg};
    if (w->tail != NULL)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    ++w->queued;
    ++w->outstanding;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mutex);
    return 0;
}

void
upd_workers_stop(upd_workers_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mutex);
    w->stopping = true;
    job_t *dropped = w->head;
    size_t ndropped = w->queued;
    w->head = w->tail = NULL;
    w->queued = 0;
    pthread_cond_broadcast(&w->cond);
    size_t running = w->busy;
    pthread_mutex_unlock(&w->mutex);
    if (ndropped != 0)
        upd_log_warn("workers: %zu waiting job%s dropped at exit, never started", ndropped, ndropped == 1 ? "" : "s");
    if (running != 0)
        upd_log_info("workers: waiting for %zu running job%s to finish", running, running == 1 ? "" : "s");
    while (dropped != NULL) {
        job_t *next = dropped->next;
        --w->outstanding;
        if (dropped->hook != NULL)
            dropped->hook->job = NULL;
        job_free(dropped);
        dropped = next;
    }
    for (size_t i = 0; i < w->nstarted; ++i)
        pthread_join(w->threads[i], NULL);
    w->nstarted = 0;
    if (!w->registered)
        return;
    /* answers sent but not yet received: one more turn of the loop hands them over (read from the queue's pipe) and
     * they are dropped: the server is no longer answering. */
    w->dropping = true;
    for (int turn = 0; turn < 100 && w->outstanding != 0; ++turn)
        h2o_evloop_run(w->ctx->loop, 10);
    if (w->outstanding != 0) {
        /* cannot happen while the loop runs: the receiver keeps its messages, so it stays registered */
        upd_log_error("workers: %zu answers never arrived", w->outstanding);
        return;
    }
    h2o_multithread_unregister_receiver(w->ctx->queue, &w->receiver);
    w->registered = false;
}

void
upd_workers_destroy(upd_workers_t *w)
{
    if (w == NULL)
        return;
    upd_workers_stop(w);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mutex);
    free(w->threads);
    free(w);
}

void
upd_workers_render_metrics(upd_workers_t *w, FILE *fp)
{
    pthread_mutex_lock(&w->mutex);
    size_t busy = w->busy, queued = w->queued;
    uint64_t jobs = w->jobs;
    pthread_mutex_unlock(&w->mutex);
    fprintf(fp,
            "# HELP updraft_workers_threads Worker threads running blocking API work (state changes, uploads, purges).\n"
            "# TYPE updraft_workers_threads gauge\nupdraft_workers_threads %zu\n"
            "# HELP updraft_workers_busy Workers running a job now.\n# TYPE updraft_workers_busy gauge\nupdraft_workers_busy %zu\n"
            "# HELP updraft_workers_queued Jobs waiting for a worker.\n# TYPE updraft_workers_queued gauge\n"
            "updraft_workers_queued %zu\n"
            "# HELP updraft_workers_jobs_total Jobs run to their end.\n# TYPE updraft_workers_jobs_total counter\n"
            "updraft_workers_jobs_total %" PRIu64 "\n"
            "# HELP updraft_workers_rejected_total Requests answered 503 because the job queue was full.\n"
            "# TYPE updraft_workers_rejected_total counter\nupdraft_workers_rejected_total %" PRIu64 "\n"
            "# HELP updraft_workers_orphaned_total Jobs whose client left before the answer (the job still ran).\n"
            "# TYPE updraft_workers_orphaned_total counter\nupdraft_workers_orphaned_total %" PRIu64 "\n",
            w->nthreads, busy, queued, jobs, w->rejected, w->orphaned);
}
