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

/*
 * How an app that failed is tried again. A document refused as malformed, invalid or too big is skipped until the
 * published generation of the app moves on (a new document), or else after a backoff that doubles from REFUSED_RETRY_MS
 * to REFUSED_RETRY_MAX_MS (a document repaired in place under the same generation is still picked up). A document that
 * could not be downloaded from any backend, or a store failure, is tried again at the next poll, as before.
 */
#define REFUSED_RETRY_MS (60u * 1000)
#define REFUSED_RETRY_MAX_MS (30u * 60 * 1000)
#define BACKENDS_MAX 32 /* the candidates of an app are a bit mask */

enum { REASON_TOO_BIG, REASON_MALFORMED, REASON_INVALID, REASON_COUNT };
static const char *const reason_names[REASON_COUNT] = {"too_big", "malformed", "invalid_record"};

enum { INDEX_OK, INDEX_UNCHANGED, INDEX_MISSING, INDEX_REFUSED, INDEX_FAILED, INDEX_RESULT_COUNT };
static const char *const index_result_names[INDEX_RESULT_COUNT] = {"ok", "unchanged", "missing", "refused", "failed"};

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
    upd_reason_t why; /* of a refused document (err UPD_EINVAL) */
    bool committed; /* false also when this origin holds that generation already */
    bool dropped;   /* not committed because the module is stopping */
    uint64_t have, got;
    uint64_t ns;      /* the write transaction, begin to commit */
    double ended_at;  /* unix time, for /metrics */
} import_t;

/* One GET under way: an index (one per backend, all at once) or the document of the app being applied. */
typedef struct st_download_t {
    struct st_upd_sync_t *s;
    size_t backend;
    upd_s3_get_t *get;
    char *buf;
    size_t len, cap;
    bool too_big;
} download_t;

/* What a backend's index said, kept across polls: a 304 means "still this". */
typedef struct st_side_t {
    download_t dl;
    char etag[80];           /* of known, "" when none (the next GET is unconditional) */
    upd_state_index_t known; /* the last index this backend served */
    bool answered;           /* this poll: known is the backend's index now */
    uint64_t reads[INDEX_RESULT_COUNT];
} side_t;

/* An app of this poll that this origin is behind on: the newest generation any backend lists, and who lists it. */
typedef struct st_todo_t {
    char app[UPD_ID_MAX + 1];
    uint64_t generation;
    uint64_t have;  /* this origin's generation when the poll began */
    uint32_t tried; /* backends whose document was tried */
    int refused;    /* the first refusal's reason, -1 while none */
} todo_t;

/* An app whose document was refused: skipped until its generation moves or retry_at passes. */
typedef struct st_refused_t {
    char app[UPD_ID_MAX + 1];
    uint64_t generation;
    unsigned failures;
    uint64_t retry_at; /* ms, the loop's clock */
} refused_t;

struct st_upd_sync_t {
    h2o_loop_t *loop;
    upd_s3_loop_t *s3;
    const upd_s3_backend_t *backends;
    size_t n;
    upd_store_t *store;
    size_t doc_max;
    h2o_timeout_t poll_timeout;
    h2o_timeout_entry_t poll_entry;
    bool running, again, stopping;
    bool direct;            /* this poll fetches one app's document without reading the indexes (upd_sync_poll_app) */
    bool changed;           /* this poll: a backend answered other than 304 */
    side_t *sides;          /* n of them */
    size_t index_pending;   /* index GETs of this poll still under way */
    todo_t *todo;           /* the apps of this poll this origin is behind on */
    size_t ntodo, captodo;
    size_t itodo;           /* the app being applied, SIZE_MAX while the indexes are read */
    download_t doc;         /* the document of todo[itodo] */
    refused_t *refused;
    size_t nrefused, caprefused;
    size_t behind; /* apps left behind by the last poll (refused or failed) */
    h2o_linklist_t waiters;
    uint64_t polls_ok, polls_failed, unchanged, imports, import_failures, rejected[REASON_COUNT];
    uint64_t direct_fetches[2]; /* [caught up] */
    int64_t last_ok; /* unix time of the last successful poll */
    /*
     * The writer thread: an import is a JSON parse of up to doc_max bytes and an LMDB write transaction with its fsync,
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

static void next_app(upd_sync_t *s);
static void try_app(upd_sync_t *s);
static uint64_t local_generation(upd_sync_t *s, const char *app);

static void
finish_poll(upd_sync_t *s, bool ok)
{
    s->running = false;
    if (s->direct) {
        /* not a poll: the regular ones, their counters and their timer are as they were */
        s->direct = false;
        bool caught_up = s->ntodo != 0 && local_generation(s, s->todo[0].app) >= s->todo[0].generation;
        ++s->direct_fetches[caught_up];
        if (!caught_up)
            s->again = true; /* the full poll, which reads the indexes */
        ok = true;           /* the waiters look at the generation themselves */
    } else if (ok) {
        ++s->polls_ok;
        s->last_ok = (int64_t)time(NULL);
    } else {
        ++s->polls_failed;
    }
    s->ntodo = 0;
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
on_head(upd_s3_get_t *get, int status, uint64_t start, uint64_t total, void *arg)
{
    download_t *d = arg;
    if (total != UINT64_MAX && total > d->s->doc_max) {
        d->too_big = true; /* said by Content-Length: not a byte of it downloaded */
        return -1;
    }
    return 0;
}

static int
on_data(upd_s3_get_t *get, const uint8_t *p, size_t len, void *arg)
{
    download_t *d = arg;
    if (d->len + len > d->s->doc_max) {
        d->too_big = true;
        return -1;
    }
    if (d->len + len + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 64 * 1024;
        while (cap < d->len + len + 1)
            cap *= 2;
        char *b = realloc(d->buf, cap);
        if (b == NULL)
            return -1;
        d->buf = b;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, p, len);
    d->len += len;
    return 0;
}

static void
download_reset(download_t *d)
{
    d->len = 0;
    d->too_big = false;
}

static void
download_dispose(download_t *d)
{
    if (d->get != NULL)
        upd_s3_get_cancel(d->get);
    d->get = NULL;
    free(d->buf);
    d->buf = NULL;
    d->len = d->cap = 0;
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

static refused_t *
refused_find(upd_sync_t *s, const char *app)
{
    for (size_t i = 0; i < s->nrefused; ++i)
        if (strcmp(s->refused[i].app, app) == 0)
            return &s->refused[i];
    return NULL;
}

static void
refused_forget(upd_sync_t *s, const char *app)
{
    refused_t *r = refused_find(s, app);
    if (r != NULL)
        *r = s->refused[--s->nrefused];
}

/* Remembers a refusal of app at generation; returns the delay before it is tried again under that generation (ms). */
static uint64_t
refused_note(upd_sync_t *s, const char *app, uint64_t generation)
{
    refused_t *r = refused_find(s, app);
    if (r == NULL) {
        if (s->nrefused == s->caprefused) {
            size_t cap = s->caprefused ? s->caprefused * 2 : 8;
            refused_t *a = realloc(s->refused, cap * sizeof(*a));
            if (a == NULL)
                return 0; /* not remembered: tried again at the next poll */
            s->refused = a;
            s->caprefused = cap;
        }
        r = &s->refused[s->nrefused++];
        snprintf(r->app, sizeof(r->app), "%s", app);
        r->generation = 0;
    }
    if (r->generation != generation) {
        r->generation = generation;
        r->failures = 0;
    }
    uint64_t delay = REFUSED_RETRY_MS;
    for (unsigned i = 0; i < r->failures && delay < REFUSED_RETRY_MAX_MS; ++i)
        delay *= 2;
    if (delay > REFUSED_RETRY_MAX_MS)
        delay = REFUSED_RETRY_MAX_MS;
    ++r->failures;
    r->retry_at = h2o_now(s->loop) + delay;
    return delay;
}

/* Whether app at generation is one refused before, whose backoff has not ended. */
static bool
refused_skip(upd_sync_t *s, const char *app, uint64_t generation)
{
    refused_t *r = refused_find(s, app);
    return r != NULL && r->generation == generation && h2o_now(s->loop) < r->retry_at;
}

static int
todo_add(upd_sync_t *s, const char *app, uint64_t generation, uint64_t have)
{
    if (s->ntodo == s->captodo) {
        size_t cap = s->captodo ? s->captodo * 2 : 16;
        todo_t *a = realloc(s->todo, cap * sizeof(*a));
        if (a == NULL)
            return UPD_ENOMEM;
        s->todo = a;
        s->captodo = cap;
    }
    todo_t *t = &s->todo[s->ntodo++];
    snprintf(t->app, sizeof(t->app), "%s", app);
    t->generation = generation;
    t->have = have;
    t->tried = 0;
    t->refused = -1;
    return 0;
}

/*
 * Every backend that answered has said its index: the apps this origin is behind on are those for which any of them
 * lists a newer generation (a stale R2 that answers does not hide a newer S3). Apps refused at that very generation
 * wait for their backoff.
 */
static void
plan(upd_sync_t *s)
{
    size_t answered = 0, skipped = 0;
    for (size_t b = 0; b < s->n; ++b) {
        if (!s->sides[b].answered)
            continue;
        ++answered;
        const upd_state_index_t *ix = &s->sides[b].known;
        for (size_t i = 0; i < ix->n; ++i) {
            const char *app = ix->apps[i].app;
            bool seen = false;
            for (size_t t = 0; t < s->ntodo && !seen; ++t)
                seen = strcmp(s->todo[t].app, app) == 0;
            for (size_t e = 0; e < b && !seen; ++e)
                seen = s->sides[e].answered && upd_state_index_get(&s->sides[e].known, app) != 0;
            if (seen)
                continue; /* planned (or found current) from an earlier backend's index, which looked at every backend */
            uint64_t newest = 0;
            for (size_t e = b; e < s->n; ++e)
                if (s->sides[e].answered) {
                    uint64_t g = upd_state_index_get(&s->sides[e].known, app);
                    if (g > newest)
                        newest = g;
                }
            uint64_t have = local_generation(s, app);
            if (newest <= have)
                continue;
            if (refused_skip(s, app, newest)) {
                ++skipped;
                continue;
            }
            if (todo_add(s, app, newest, have) != 0)
                ++skipped; /* out of memory: the next poll */
        }
    }
    if (answered == 0) {
        finish_poll(s, false);
        return;
    }
    s->behind = skipped;
    if (!s->changed && s->ntodo == 0)
        ++s->unchanged; /* every backend said 304 and nothing is left to do */
    s->itodo = 0;
    next_app(s);
}

static void
on_index_done(upd_s3_get_t *get, const upd_s3_outcome_t *o, void *arg)
{
    download_t *d = arg;
    upd_sync_t *s = d->s;
    side_t *side = &s->sides[d->backend];
    const char *name = s->backends[d->backend].name;
    d->get = NULL;
    if (s->stopping)
        return;
    side->answered = false;
    if (o->kind == UPD_S3_HTTP && o->status == 304) {
        side->answered = true;
        ++side->reads[INDEX_UNCHANGED];
    } else if (o->kind == UPD_S3_HTTP && o->status == 404) {
        /* nothing published there (yet) */
        upd_state_index_dispose(&side->known);
        side->etag[0] = '\0';
        side->answered = true;
        ++side->reads[INDEX_MISSING];
    } else if (o->kind != UPD_S3_OK || d->too_big) {
        upd_log_warn("state: GET %s from %s: %s: %s", UPD_STATE_INDEX_KEY, name, upd_s3_outcome_name(o->kind),
                     d->too_big ? "larger than state.max_document_bytes" : o->message);
        ++side->reads[INDEX_FAILED];
    } else {
        upd_state_index_t ix;
        upd_reason_t why;
        upd_state_index_init(&ix);
        if (upd_state_index_parse(d->buf != NULL ? d->buf : "", d->len, &ix, &why) != 0) {
            upd_log_warn("state: %s from %s is refused: %s", UPD_STATE_INDEX_KEY, name, why.message);
            upd_state_index_dispose(&ix);
            ++side->reads[INDEX_REFUSED];
        } else {
            upd_state_index_dispose(&side->known);
            side->known = ix;
            snprintf(side->etag, sizeof(side->etag), "%s", o->etag);
            side->answered = true;
            ++side->reads[INDEX_OK];
        }
    }
    download_reset(d);
    if (!(o->kind == UPD_S3_HTTP && o->status == 304))
        s->changed = true;
    if (--s->index_pending == 0)
        plan(s);
}

static const upd_s3_get_cb_t index_cb = {on_head, on_data, on_index_done};

/* Reads every backend's index at once, each with If-None-Match of the one it served last. */
static void
start_indexes(upd_sync_t *s)
{
    s->index_pending = 0;
    s->changed = false;
    s->ntodo = 0;
    s->itodo = SIZE_MAX;
    for (size_t b = 0; b < s->n; ++b) {
        side_t *side = &s->sides[b];
        char inm[128];
        const char *extra[1];
        size_t n_extra = 0;
        side->answered = false;
        if (side->etag[0] != '\0') {
            snprintf(inm, sizeof(inm), "If-None-Match: %s", side->etag);
            extra[n_extra++] = inm;
        }
        download_reset(&side->dl);
        if ((side->dl.get = upd_s3_get_start(s->s3, &s->backends[b], UPD_STATE_INDEX_KEY, 0, extra, n_extra, &index_cb, &side->dl)) ==
            NULL) {
            ++side->reads[INDEX_FAILED];
            continue;
        }
        ++s->index_pending;
    }
    if (s->index_pending == 0)
        plan(s);
}

/* The app's backends not tried yet, the one listing the newest generation first (R2 on a tie). SIZE_MAX: none left. */
static size_t
next_backend(upd_sync_t *s, const todo_t *t)
{
    size_t best = SIZE_MAX;
    uint64_t best_gen = 0;
    if (s->direct) {
        /* no index read: every backend in turn, R2 first */
        for (size_t b = 0; b < s->n; ++b)
            if ((t->tried & (1u << b)) == 0)
                return b;
        return SIZE_MAX;
    }
    for (size_t b = 0; b < s->n; ++b) {
        if (!s->sides[b].answered || (t->tried & (1u << b)) != 0)
            continue;
        uint64_t g = upd_state_index_get(&s->sides[b].known, t->app);
        if (g > t->have && g > best_gen) {
            best = b;
            best_gen = g;
        }
    }
    return best;
}

/* The app is done with, imported or not: the next one, or the end of the poll. */
static void
next_app(upd_sync_t *s)
{
    if (s->itodo >= s->ntodo) {
        finish_poll(s, true);
        return;
    }
    try_app(s);
}

/* The app could not be imported from any backend: logged, counted, and remembered when its document was refused. */
static void
give_up(upd_sync_t *s, todo_t *t)
{
    if (s->direct) {
        /* the full poll that follows (finish_poll) reads the indexes, and counts and remembers what it cannot import */
        upd_log_info("state: %s: no backend's latest document is at generation %" PRIu64 " yet: polling", t->app, t->generation);
        ++s->itodo;
        next_app(s);
        return;
    }
    ++s->import_failures;
    ++s->behind;
    if (t->refused >= 0) {
        uint64_t delay = refused_note(s, t->app, t->generation);
        upd_log_error("state: %s: generation %" PRIu64 " is refused (%s); this origin keeps serving generation %" PRIu64
                      " and tries again when the published generation moves on, or in %" PRIu64 " s",
                      t->app, t->generation, reason_names[t->refused], t->have, delay / 1000);
    } else {
        upd_log_warn("state: %s: generation %" PRIu64 " could not be read from any backend; this origin keeps serving generation %" PRIu64
                     " and tries again at the next poll",
                     t->app, t->generation, t->have);
    }
    ++s->itodo;
    next_app(s);
}

/* One document of the app was refused by a backend: logged and counted, and the next backend is tried. */
static void
refuse(upd_sync_t *s, todo_t *t, size_t b, int reason, const char *why)
{
    ++s->rejected[reason];
    if (t->refused < 0)
        t->refused = reason;
    upd_log_warn("state: %s: the document of generation %" PRIu64 " from %s is refused (%s): %s", t->app,
                 upd_state_index_get(&s->sides[b].known, t->app), s->backends[b].name, reason_names[reason], why);
    try_app(s);
}

static void on_doc_done(upd_s3_get_t *get, const upd_s3_outcome_t *o, void *arg);
static const upd_s3_get_cb_t doc_cb = {on_head, on_data, on_doc_done};

/* GETs the app's newest document from the next backend that lists a generation newer than this origin's. */
static void
try_app(upd_sync_t *s)
{
    todo_t *t = &s->todo[s->itodo];
    char key[UPD_STATE_KEY_MAX];
    size_t b;
    while ((b = next_backend(s, t)) != SIZE_MAX) {
        t->tried |= 1u << b;
        /* cannot fail: the index's apps are app ids, and key is UPD_STATE_KEY_MAX */
        upd_state_latest_key(key, sizeof(key), t->app);
        download_reset(&s->doc);
        s->doc.backend = b;
        if ((s->doc.get = upd_s3_get_start(s->s3, &s->backends[b], key, 0, NULL, 0, &doc_cb, &s->doc)) != NULL)
            return;
    }
    give_up(s, t);
}

/* On the writer thread: whether upd_sync_stop is waiting for it */
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
    j->why.code[0] = j->why.message[0] = '\0';
    if (quitting(s)) {
        j->dropped = true;
    } else if ((j->err = upd_store_write_begin(s->store, &txn)) == 0) {
        upd_store_app_generation(txn, j->app, &j->have);
        j->err = upd_store_app_import(txn, j->app, j->doc, j->len, &j->got, &j->why);
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
    free(j->doc); /* freed here: up to doc_max bytes, no reason to keep them until the loop reads the answer */
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
    j->doc = s->doc.buf; /* taken: the next download starts a buffer of its own */
    j->len = s->doc.len;
    s->doc.buf = NULL;
    s->doc.len = s->doc.cap = 0;
    s->importing = true;
    upd_log_debug("state: %s: importing %zu bytes from %s on the writer thread", app, j->len, s->backends[s->doc.backend].name);
    pthread_mutex_lock(&s->mutex);
    s->job_ready = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mutex);
}

static void
on_doc_done(upd_s3_get_t *get, const upd_s3_outcome_t *o, void *arg)
{
    download_t *d = arg;
    upd_sync_t *s = d->s;
    d->get = NULL;
    if (s->stopping)
        return;
    todo_t *t = &s->todo[s->itodo];
    if (d->too_big) {
        char why[96];
        snprintf(why, sizeof(why), "larger than state.max_document_bytes (%zu)", s->doc_max);
        refuse(s, t, d->backend, REASON_TOO_BIG, why);
        return;
    }
    if (o->kind != UPD_S3_OK) {
        char key[UPD_STATE_KEY_MAX];
        upd_state_latest_key(key, sizeof(key), t->app);
        upd_log_warn("state: GET %s from %s: %s: %s", key, s->backends[d->backend].name, upd_s3_outcome_name(o->kind), o->message);
        try_app(s); /* the next backend that lists a newer generation, if any */
        return;
    }
    hand_over(s, t->app);
}

/* On the loop: the writer thread's answer. The poll goes on with the next backend or app, or ends. */
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
        todo_t *t = &s->todo[s->itodo];
        if (j->err == UPD_EINVAL) {
            refuse(s, t, s->doc.backend, strcmp(j->why.code, "invalid_record") == 0 ? REASON_INVALID : REASON_MALFORMED,
                   j->why.message);
            continue;
        }
        if (j->err != 0) {
            /* the store, not the document: another backend's copy would fare no better */
            upd_log_error("state: %s: the document from %s cannot be written: %s", j->app, s->backends[s->doc.backend].name,
                          upd_strerror(j->err));
            give_up(s, t);
            continue;
        }
        if (j->committed) {
            ++s->imports;
            upd_log_info("state: %s now at generation %" PRIu64 " (was %" PRIu64 ") from %s: %zu bytes imported in %" PRIu64 " ms",
                         j->app, j->got, j->have, s->backends[s->doc.backend].name, j->len, j->ns / 1000000);
        }
        refused_forget(s, j->app);
        if (s->direct && (j->committed ? j->got : j->have) < t->generation) {
            /* this backend's latest document is older than the purge said (its write failed?): the next backend */
            try_app(s);
            continue;
        }
        ++s->itodo;
        next_app(s);
    }
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
    start_indexes(s);
}

bool
upd_sync_poll_app(upd_sync_t *s, const char *app, uint64_t generation)
{
    if (s->running || s->stopping || s->n == 0) {
        upd_sync_poll_now(s);
        return false;
    }
    uint64_t have = local_generation(s, app);
    s->ntodo = 0;
    if (have >= generation || todo_add(s, app, generation, have) != 0) {
        upd_sync_poll_now(s);
        return false;
    }
    s->running = s->direct = true;
    s->itodo = 0;
    try_app(s);
    return true;
}

static void
on_poll_timer(h2o_timeout_entry_t *entry)
{
    upd_sync_t *s = H2O_STRUCT_FROM_MEMBER(upd_sync_t, poll_entry, entry);
    upd_sync_poll_now(s);
}

upd_sync_t *
upd_sync_start(h2o_loop_t *loop, upd_s3_loop_t *s3, const upd_s3_backend_t *backends, size_t n, upd_store_t *store, uint32_t poll_ms,
               size_t max_document_bytes)
{
    if (n > BACKENDS_MAX) {
        upd_log_error("state: %zu backends: at most %d are polled", n, BACKENDS_MAX);
        return NULL;
    }
    upd_sync_t *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->sides = calloc(n != 0 ? n : 1, sizeof(*s->sides))) == NULL) {
        free(s);
        return NULL;
    }
    s->loop = loop;
    s->s3 = s3;
    s->backends = backends;
    s->n = n;
    s->store = store;
    s->doc_max = max_document_bytes;
    for (size_t b = 0; b < n; ++b) {
        s->sides[b].dl = (download_t){.s = s, .backend = b};
        upd_state_index_init(&s->sides[b].known);
    }
    s->doc = (download_t){.s = s};
    h2o_linklist_init_anchor(&s->waiters);
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
        free(s->sides);
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
    for (size_t b = 0; b < s->n; ++b)
        download_dispose(&s->sides[b].dl);
    download_dispose(&s->doc);
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
    for (size_t b = 0; b < s->n; ++b)
        upd_state_index_dispose(&s->sides[b].known);
    free(s->sides);
    free(s->todo);
    free(s->refused);
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
            "# HELP updraft_state_direct_fetches_total Purges answered by fetching the app's latest document at once, without "
            "reading the indexes, by whether that caught up (behind: a full poll followed).\n"
            "# TYPE updraft_state_direct_fetches_total counter\nupdraft_state_direct_fetches_total{result=\"ok\"} %" PRIu64
            "\nupdraft_state_direct_fetches_total{result=\"behind\"} %" PRIu64 "\n",
            s->direct_fetches[1], s->direct_fetches[0]);
    fprintf(fp, "# HELP updraft_state_index_reads_total Reads of the state index by backend and result.\n"
                "# TYPE updraft_state_index_reads_total counter\n");
    for (size_t b = 0; b < s->n; ++b)
        for (int r = 0; r < INDEX_RESULT_COUNT; ++r)
            fprintf(fp, "updraft_state_index_reads_total{backend=\"%s\",result=\"%s\"} %" PRIu64 "\n", s->backends[b].name,
                    index_result_names[r], s->sides[b].reads[r]);
    fprintf(fp,
            "# HELP updraft_state_imports_total Apps whose published state was imported, or could not be (failed: refused on "
            "every backend, unreadable, or unwritable).\n"
            "# TYPE updraft_state_imports_total counter\nupdraft_state_imports_total{result=\"ok\"} %" PRIu64
            "\nupdraft_state_imports_total{result=\"failed\"} %" PRIu64 "\n",
            s->imports, s->import_failures);
    fprintf(fp, "# HELP updraft_state_import_rejected_total App state documents refused, by reason (each backend's copy counts).\n"
                "# TYPE updraft_state_import_rejected_total counter\n");
    for (int r = 0; r < REASON_COUNT; ++r)
        fprintf(fp, "updraft_state_import_rejected_total{reason=\"%s\"} %" PRIu64 "\n", reason_names[r], s->rejected[r]);
    fprintf(fp,
            "# HELP updraft_state_apps_behind Apps the last poll left at an older generation than published (refused or "
            "unreadable documents).\n# TYPE updraft_state_apps_behind gauge\nupdraft_state_apps_behind %zu\n",
            s->behind);
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
