#include "loop/hash_pool.h"
#include <inttypes.h>
#include <sched.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"

struct st_upd_hash_pool_t {
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    pthread_mutex_t mutex;
    pthread_cond_t work; /* a job was queued, or quit */
    pthread_cond_t ran;  /* a job's run returned */
    upd_hash_job_t *head, **tail;
    bool quit;
    uint32_t nthreads;
    pthread_t threads[UPD_HASH_THREADS_MAX];
    uint64_t jobs;   /* under mutex */
    uint64_t cpu_ns; /* under mutex: thread CPU time spent in run */
};

uint32_t
upd_hash_pool_default_threads(void)
{
    /* the CPUs this process may run on: under `taskset -c 1` two threads would only take turns on one core */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0 && CPU_COUNT(&set) < n)
        n = CPU_COUNT(&set);
    if (n < 1)
        n = 1;
    return n > UPD_HASH_THREADS_MAX ? UPD_HASH_THREADS_MAX : (uint32_t)n;
}

static uint64_t
thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static void *
worker_main(void *arg)
{
    upd_hash_pool_t *p = arg;
    pthread_mutex_lock(&p->mutex);
    for (;;) {
        while (p->head == NULL && !p->quit)
            pthread_cond_wait(&p->work, &p->mutex);
        if (p->quit)
            break;
        upd_hash_job_t *job = p->head;
        if ((p->head = job->qnext) == NULL)
            p->tail = &p->head;
        pthread_mutex_unlock(&p->mutex);
        uint64_t t0 = thread_cpu_ns();
        job->run(job);
        uint64_t spent = thread_cpu_ns() - t0;
        pthread_mutex_lock(&p->mutex);
        job->ran = true;
        ++p->jobs;
        p->cpu_ns += spent;
        pthread_cond_broadcast(&p->ran);
        /* sent under the mutex: upd_hash_pool_wait() may free what the job points to once it sees ran, not the job */
        h2o_multithread_send_message(&p->receiver, &job->super);
    }
    pthread_mutex_unlock(&p->mutex);
    return NULL;
}

static void
on_answers(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        upd_hash_job_t *job = H2O_STRUCT_FROM_MEMBER(upd_hash_job_t, super.link, messages->next);
        h2o_linklist_unlink(&job->super.link);
        job->done(job);
    }
}

upd_hash_pool_t *
upd_hash_pool_create(h2o_loop_t *loop, uint32_t nthreads)
{
    if (nthreads == 0)
        nthreads = upd_hash_pool_default_threads();
    if (nthreads > UPD_HASH_THREADS_MAX)
        nthreads = UPD_HASH_THREADS_MAX;
    upd_hash_pool_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->ran, NULL);
    p->tail = &p->head;
    p->queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(p->queue, &p->receiver, on_answers);
    for (; p->nthreads < nthreads; ++p->nthreads) {
        int err = pthread_create(&p->threads[p->nthreads], NULL, worker_main, p);
        if (err != 0) {
            upd_log_error("cache: cannot start hash thread %u of %u: %s", p->nthreads + 1, nthreads, strerror(err));
            upd_hash_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

void
upd_hash_pool_destroy(upd_hash_pool_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mutex);
    p->quit = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mutex);
    for (uint32_t i = 0; i < p->nthreads; ++i)
        pthread_join(p->threads[i], NULL);
    /* answers the loop has not read yet: handed over now (their callers have gone: the jobs free themselves), since
     * unregistering wants the receiver's list empty */
    on_answers(&p->receiver, &p->receiver._messages);
    h2o_multithread_unregister_receiver(p->queue, &p->receiver);
    h2o_multithread_destroy_queue(p->queue);
    free(p->queue); /* h2o 2.2.5's evloop destroy_queue closes the pipe but frees the queue only under libuv */
    pthread_cond_destroy(&p->ran);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mutex);
    free(p);
}

void
upd_hash_pool_submit(upd_hash_pool_t *p, upd_hash_job_t *job)
{
    job->qnext = NULL;
    job->ran = false;
    memset(&job->super, 0, sizeof(job->super));
    pthread_mutex_lock(&p->mutex);
    *p->tail = job;
    p->tail = &job->qnext;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mutex);
}

void
upd_hash_pool_wait(upd_hash_pool_t *p, upd_hash_job_t *job)
{
    pthread_mutex_lock(&p->mutex);
    while (!job->ran)
        pthread_cond_wait(&p->ran, &p->mutex);
    pthread_mutex_unlock(&p->mutex);
}

uint32_t
upd_hash_pool_threads(const upd_hash_pool_t *p)
{
    return p->nthreads;
}

void
upd_hash_pool_metrics(const upd_hash_pool_t *p, FILE *fp)
{
    upd_hash_pool_t *mp = (upd_hash_pool_t *)p;
    pthread_mutex_lock(&mp->mutex);
    uint64_t jobs = p->jobs, ns = p->cpu_ns;
    pthread_mutex_unlock(&mp->mutex);
    fprintf(fp,
            "# HELP updraft_hash_threads Worker threads that verify fills off the event loop (cache.hash_threads).\n"
            "# TYPE updraft_hash_threads gauge\nupdraft_hash_threads %u\n"
            "# HELP updraft_hash_jobs_total Blocks verified (and written to the cache) on the hash threads.\n"
            "# TYPE updraft_hash_jobs_total counter\nupdraft_hash_jobs_total %" PRIu64 "\n"
            "# HELP updraft_hash_cpu_seconds_total CPU time the hash threads spent on those blocks.\n"
            "# TYPE updraft_hash_cpu_seconds_total counter\nupdraft_hash_cpu_seconds_total %.6f\n",
            p->nthreads, jobs, (double)ns / 1e9);
}
