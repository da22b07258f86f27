#include "loop/sync.h"
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#include "base/log.h"
#include "domain/ids.h"
#include "domain/state_doc.h"

#define DOC_MAX (256u * 1024 * 1024) /* an app's state document: far above any real one */

/*
 * One import, handed by the loop to the writer thread and back as a message of the loop's queue. There is at most one
 * in flight: a poll applies one document at a time and waits for it, so this lives in upd_sync_t.
 */
typedef struct st_import_t {
    h2o_multithread_message_t super;
    /* set by the loop before it hands the import over */
    char app[UPD_ID_MAX + 1];
    char *doc; /* the downloaded bytes; the thread frees them */
    size_t len;
    /* set by the thread before it sends the message (the queue's mutex orders them before the loop reads) */
    int err;        /* of the write transaction, the import or the commit */
    bool committed; /* false also when this origin holds that generation already */
    bool dropped;   /* not committed because the module is stopping */
    uint64_t have, got;
    uint64_t ns;      /* the write transaction, begin to commit */
    double ended_at;  /* unix time, for /metrics */
} import_t;

struct st_upd_sync_t {
    h2o_loop_t *loop;
    upd_s3_loop_t *s3;
    const upd_s3_backend_t *backends;
    size_t n;
    upd_store_t *store;
    h2o_timeout_t poll_timeout;
    h2o_timeout_entry_t poll_entry;
    bool running, again, stopping;
    size_t backend;            /* the backend this step reads from */
    char index_etag[80];       /* of the last index fully applied */
    char pending_etag[80];     /* of the index being applied */
    upd_state_index_t todo;    /* the apps of the index this origin is behind on */
    size_t itodo;              /* the app being applied, SIZE_MAX while the index is read */
    upd_s3_get_t *get;
    char *buf;
    size_t len, cap;
    bool too_big;
    h2o_linklist_t waiters;
    uint64_t polls_ok, polls_failed, unchanged, imports, import_failures;
    int64_t last_ok; /* unix time of the last successful poll */
    /*
     * The writer thread: an import is a JSON parse of up to DOC_MAX bytes and an LMDB write transaction with its fsync,
     * which must not stall the loop's update checks (they read the previous commit meanwhile: LMDB readers never wait
     * for a writer). The loop hands the downloaded document over (job_ready), the thread imports it and answers through
     * the loop's h2o multithread queue; the poll carries on from there.
     */
    pthread_t writer;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool job_ready, quit; /* under mutex */
    bool importing;       /* loop: the job is with the thread */
    import_t job;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    uint64_t import_ns_sum, import_count, last_import_ns;
    double last_import_at;
};

static void step(upd_sync_t *s);
static void start_get(upd_sync_t *s);

static const char *
current_key(const upd_sync_t *s, char *buf, size_t cap)
{
    if (s->itodo == SIZE_MAX)
        return UPD_STATE_INDEX_KEY;
    /* cannot fail: the index's apps are app ids, and buf is UPD_STATE_KEY_MAX */
    upd_state_latest_key(buf, cap, s->todo.apps[s->itodo].app);
    return buf;
}

static void
finish_poll(upd_sync_t *s, bool ok)
{
    s->running = false;
    upd_state_index_dispose(&s->todo);
    if (ok) {
        ++s->polls_ok;
        s->last_ok = (int64_t)time(NULL);
    } else {
        ++s->polls_failed;
    }
    h2o_linklist_t list;
    h2o_linklist_init_anchor(&list);
    h2o_linklist_insert_list(&list, &s->waiters);
    while (!h2o_linklist_is_empty(&list)) {
        upd_sync_waiter_t *w = H2O_STRUCT_FROM_MEMBER(upd_sync_waiter_t, link, list.next);
        h2o_linklist_unlink(&w->link);
        w->cb(w, ok);
    }
    if (s->stopping)
        return;
    if (s->again) {
        s->again = false;
        upd_sync_poll_now(s);
    } else if (!h2o_timeout_is_linked(&s->poll_entry)) {
        h2o_timeout_link(s->loop, &s->poll_timeout, &s->poll_entry);
    }
}

static int
on_data(upd_s3_get_t *get, const uint8_t *p, size_t len, void *arg)
{
    upd_sync_t *s = arg;
    if (s->len + len > DOC_MAX) {
        s->too_big = true;
        return -1;
    }
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 64 * 1024;
        while (cap < s->len + len + 1)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (b == NULL)
            return -1;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, len);
    s->len += len;
    return 0;
}

static uint64_t
local_generation(upd_sync_t *s, const char *app)
{
    upd_store_txn_t *txn;
    uint64_t gen = 0;
    if (upd_store_read_begin(s->store, &txn) == 0) {
        upd_store_app_generation(txn, app, &gen);
        upd_store_txn_end(txn);
    }
    return gen;
}

/* The index arrived: keep the apps this origin is behind on. */
static bool
apply_index(upd_sync_t *s)
{
    upd_reason_t why;
    if (upd_state_index_parse(s->buf != NULL ? s->buf : "", s->len, &s->todo, &why) != 0) {
        upd_log_warn("state: %s from %s is refused: %s", UPD_STATE_INDEX_KEY, s->backends[s->backend].name, why.message);
        return false;
    }
    size_t n = 0;
    for (size_t i = 0; i < s->todo.n; ++i)
        if (s->todo.apps[i].generation > local_generation(s, s->todo.apps[i].app))
            s->todo.apps[n++] = s->todo.apps[i];
    s->todo.n = n;
    return true;
}

static double
unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* On the writer thread: whether upd_sync_stop is waiting for it */
static bool
quitting(upd_sync_t *s)
{
    pthread_mutex_lock(&s->mutex);
    bool quit = s->quit;
    pthread_mutex_unlock(&s->mutex);
    return quit;
}

/* On the writer thread: the document into LMDB, unless this origin has caught up meanwhile or is stopping. */
static void
import_doc(upd_sync_t *s, import_t *j)
{
    upd_store_txn_t *txn;
    uint64_t start = mono_ns();
    j->committed = j->dropped = false;
    j->have = j->got = 0;
    j->err = 0;
    if (quitting(s)) {
        j->dropped = true;
    } else if ((j->err = upd_store_write_begin(s->store, &txn)) == 0) {
        upd_store_app_generation(txn, j->app, &j->have);
        j->err = upd_store_app_import(txn, j->app, j->doc, j->len, &j->got, NULL);
        if (j->err != 0 || j->got <= j->have) {
            upd_store_txn_end(txn);
        } else if (quitting(s)) {
            /* stopping: no commit (and no fsync) to wait for; the next start polls again */
            upd_store_txn_end(txn);
            j->dropped = true;
        } else {
            j->err = upd_store_commit(txn);
            j->committed = j->err == 0;
        }
    }
    free(j->doc); /* freed here: up to DOC_MAX bytes, no reason to keep them until the loop reads the answer */
    j->doc = NULL;
    j->ns = mono_ns() - start;
    j->ended_at = unix_now();
}

static void *
writer_main(void *arg)
{
    upd_sync_t *s = arg;
    pthread_mutex_lock(&s->mutex);
    for (;;) {
        while (!s->job_ready && !s->quit)
            pthread_cond_wait(&s->cond, &s->mutex);
        if (!s->job_ready)
            break; /* quit, with nothing handed over */
        s->job_ready = false;
        pthread_mutex_unlock(&s->mutex);
        import_doc(s, &s->job);
        h2o_multithread_send_message(&s->receiver, &s->job.super);
        pthread_mutex_lock(&s->mutex);
    }
    pthread_mutex_unlock(&s->mutex);
    return NULL;
}

/* An app's document arrived: the writer thread imports it; on_imported carries the poll on. */
static void
hand_over(upd_sync_t *s, const char *app)
{
    import_t *j = &s->job;
    snprintf(j->app, sizeof(j->app), "%s", app);
    j->doc = s->buf; /* taken: the next download starts a buffer of its own */
    j->len = s->len;
    s->buf = NULL;
    s->len = s->cap = 0;
    s->importing = true;
    upd_log_debug("state: %s: importing %zu bytes from %s on the writer thread", app, j->len, s->backends[s->backend].name);
    pthread_mutex_lock(&s->mutex);
    s->job_ready = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mutex);
}

static void
on_done(upd_s3_get_t *get, const upd_s3_outcome_t *o, void *arg)
{
    upd_sync_t *s = arg;
    s->get = NULL;
    char keybuf[UPD_STATE_KEY_MAX];
    const char *key = current_key(s, keybuf, sizeof(keybuf));
    if (s->stopping)
        return;
    if (o->kind == UPD_S3_HTTP && o->status == 304) {
        ++s->unchanged;
        finish_poll(s, true);
        return;
    }
    if (o->kind != UPD_S3_OK || s->too_big) {
        if (!(o->kind == UPD_S3_HTTP && o->status == 404 && s->itodo == SIZE_MAX))
            upd_log_warn("state: GET %s from %s: %s: %s", key, s->backends[s->backend].name, upd_s3_outcome_name(o->kind),
                         s->too_big ? "larger than any state document" : o->message);
        if (o->kind == UPD_S3_HTTP && o->status == 404 && s->itodo == SIZE_MAX && s->backend + 1 == s->n) {
            /* nothing published yet */
            finish_poll(s, true);
            return;
        }
        if (++s->backend < s->n) {
            start_get(s);
            return;
        }
        finish_poll(s, false);
        return;
    }
    if (s->itodo != SIZE_MAX) {
        hand_over(s, s->todo.apps[s->itodo].app);
        return;
    }
    if (!apply_index(s)) {
        finish_poll(s, false);
        return;
    }
    snprintf(s->pending_etag, sizeof(s->pending_etag), "%s", o->etag);
    s->itodo = 0;
    s->backend = 0;
    step(s);
}

/* On the loop: the writer thread's answer. The poll goes on with the next app, or ends. */
static void
on_imported(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    upd_sync_t *s = H2O_STRUCT_FROM_MEMBER(upd_sync_t, receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        import_t *j = H2O_STRUCT_FROM_MEMBER(import_t, super.link, messages->next);
        h2o_linklist_unlink(&j->super.link);
        s->importing = false;
        ++s->import_count;
        s->import_ns_sum += j->ns;
        s->last_import_ns = j->ns;
        s->last_import_at = j->ended_at;
        if (j->err != 0) {
            ++s->import_failures;
            upd_log_error("state: %s: the published document cannot be imported: %s", j->app, upd_strerror(j->err));
            finish_poll(s, false);
            continue;
        }
        if (j->committed) {
            ++s->imports;
            upd_log_info("state: %s now at generation %" PRIu64 " (was %" PRIu64 ") from %s: %zu bytes imported in %" PRIu64 " ms",
                         j->app, j->got, j->have, s->backends[s->backend].name, j->len, j->ns / 1000000);
        }
        ++s->itodo;
        s->backend = 0;
        step(s);
    }
}

static const upd_s3_get_cb_t get_cb = {NULL, on_data, on_done};

static void
start_get(upd_sync_t *s)
{
    char keybuf[UPD_STATE_KEY_MAX], inm[128];
    const char *key = current_key(s, keybuf, sizeof(keybuf));
    const char *extra[1];
    size_t n_extra = 0;
    if (s->itodo == SIZE_MAX && s->index_etag[0] != '\0' && s->backend == 0) {
        snprintf(inm, sizeof(inm), "If-None-Match: %s", s->index_etag);
        extra[n_extra++] = inm;
    }
    s->len = 0;
    s->too_big = false;
    while (s->backend < s->n) {
        if ((s->get = upd_s3_get_start(s->s3, &s->backends[s->backend], key, 0, extra, n_extra, &get_cb, s)) != NULL)
            return;
        ++s->backend;
        n_extra = 0;
    }
    finish_poll(s, false);
}

/* The next document of this poll, or the end of it. */
static void
step(upd_sync_t *s)
{
    if (s->itodo != SIZE_MAX && s->itodo >= s->todo.n) {
        /* every app applied: the index is ours */
        memcpy(s->index_etag, s->pending_etag, sizeof(s->index_etag));
        finish_poll(s, true);
        return;
    }
    start_get(s);
}

void
upd_sync_poll_now(upd_sync_t *s)
{
    if (s->running) {
        s->again = true;
        return;
    }
    if (h2o_timeout_is_linked(&s->poll_entry))
        h2o_timeout_unlink(&s->poll_entry);
    s->running = true;
    s->backend = 0;
    s->itodo = SIZE_MAX; /* the index first */
    step(s);
}

static void
on_poll_timer(h2o_timeout_entry_t *entry)
{
    upd_sync_t *s = H2O_STRUCT_FROM_MEMBER(upd_sync_t, poll_entry, entry);
    upd_sync_poll_now(s);
}

upd_sync_t *
upd_sync_start(h2o_loop_t *loop, upd_s3_loop_t *s3, const upd_s3_backend_t *backends, size_t n, upd_store_t *store, uint32_t poll_ms)
{
    upd_sync_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->loop = loop;
    s->s3 = s3;
    s->backends = backends;
    s->n = n;
    s->store = store;
    h2o_linklist_init_anchor(&s->waiters);
    upd_state_index_init(&s->todo);
    pthread_mutex_init(&s->mutex, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(s->queue, &s->receiver, on_imported);
    int err;
    if ((err = pthread_create(&s->writer, NULL, writer_main, s)) != 0) {
        upd_log_error("state: cannot start the writer thread: %s", strerror(err));
        h2o_multithread_unregister_receiver(s->queue, &s->receiver);
        h2o_multithread_destroy_queue(s->queue);
        free(s->queue); /* see upd_sync_stop */
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->mutex);
        free(s);
        return NULL;
    }
    h2o_timeout_init(loop, &s->poll_timeout, poll_ms);
    s->poll_entry.cb = on_poll_timer;
    upd_sync_poll_now(s); /* at start-up: an empty data dir converges at once */
    return s;
}

void
upd_sync_stop(upd_sync_t *s)
{
    if (s == NULL)
        return;
    s->stopping = true;
    if (s->get != NULL)
        upd_s3_get_cancel(s->get);
    if (h2o_timeout_is_linked(&s->poll_entry))
        h2o_timeout_unlink(&s->poll_entry);
    h2o_timeout_dispose(s->loop, &s->poll_timeout);
    /* an import under way ends without its commit (the thread looks before committing) */
    pthread_mutex_lock(&s->mutex);
    s->quit = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mutex);
    pthread_join(s->writer, NULL);
    if (s->importing && s->job.dropped)
        upd_log_info("state: %s: the import under way was dropped before its commit; the next start polls again", s->job.app);
    /* an answer sent that the loop has not read: nobody will (unregistering wants the receiver's list empty) */
    if (h2o_linklist_is_linked(&s->job.super.link))
        h2o_linklist_unlink(&s->job.super.link);
    free(s->job.doc);
    h2o_multithread_unregister_receiver(s->queue, &s->receiver);
    h2o_multithread_destroy_queue(s->queue);
    free(s->queue); /* h2o 2.2.5's evloop destroy_queue closes the pipe but frees the queue only under libuv */
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mutex);
    while (!h2o_linklist_is_empty(&s->waiters))
        h2o_linklist_unlink(s->waiters.next);
    upd_state_index_dispose(&s->todo);
    free(s->buf);
    free(s);
}

void
upd_sync_wait(upd_sync_t *s, upd_sync_waiter_t *w)
{
    h2o_linklist_insert(&s->waiters, &w->link);
}

void
upd_sync_unwait(upd_sync_waiter_t *w)
{
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
}

bool
upd_sync_ready(const upd_sync_t *s)
{
    return s->polls_ok != 0;
}

void
upd_sync_metrics(const upd_sync_t *s, FILE *fp)
{
    fprintf(fp,
            "# HELP updraft_state_polls_total Polls of the published state by result.\n# TYPE updraft_state_polls_total counter\n"
            "updraft_state_polls_total{result=\"ok\"} %" PRIu64 "\nupdraft_state_polls_total{result=\"unchanged\"} %" PRIu64
            "\nupdraft_state_polls_total{result=\"failed\"} %" PRIu64 "\n",
            s->polls_ok - s->unchanged, s->unchanged, s->polls_failed);
    fprintf(fp,
            "# HELP updraft_state_imports_total App state documents imported (failed: refused as malformed or unwritable).\n"
            "# TYPE updraft_state_imports_total counter\nupdraft_state_imports_total{result=\"ok\"} %" PRIu64
            "\nupdraft_state_imports_total{result=\"failed\"} %" PRIu64 "\n",
            s->imports, s->import_failures);
    fprintf(fp,
            "# HELP updraft_state_import_duration_seconds App state documents imported on the writer thread: JSON parse and LMDB "
            "write transaction, commit included.\n# TYPE updraft_state_import_duration_seconds summary\n"
            "updraft_state_import_duration_seconds_sum %.6f\nupdraft_state_import_duration_seconds_count %" PRIu64 "\n",
            (double)s->import_ns_sum / 1e9, s->import_count);
    fprintf(fp,
            "# HELP updraft_state_last_import_duration_seconds How long the last import took.\n"
            "# TYPE updraft_state_last_import_duration_seconds gauge\nupdraft_state_last_import_duration_seconds %.6f\n"
            "# HELP updraft_state_last_import_timestamp_seconds When the last import ended.\n"
            "# TYPE updraft_state_last_import_timestamp_seconds gauge\nupdraft_state_last_import_timestamp_seconds %.3f\n"
            "# HELP updraft_state_importing Whether the writer thread is importing a document now.\n"
            "# TYPE updraft_state_importing gauge\nupdraft_state_importing %d\n",
            (double)s->last_import_ns / 1e9, s->last_import_at, s->importing ? 1 : 0);
    fprintf(fp, "# HELP updraft_state_last_sync_timestamp_seconds When the published state was last read successfully.\n"
                "# TYPE updraft_state_last_sync_timestamp_seconds gauge\nupdraft_state_last_sync_timestamp_seconds %" PRId64 "\n",
            s->last_ok);
}
