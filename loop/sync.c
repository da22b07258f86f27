#include "loop/sync.h"
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#include "domain/ids.h"
#include "base/log.h"

#define DOC_MAX (256u * 1024 * 1024) /* an app's state document: far above any real one */

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
    char (*todo)[UPD_ID_MAX + 1];
    size_t ntodo, itodo;
    upd_s3_get_t *get;
    char *buf;
    size_t len, cap;
    bool too_big;
    h2o_linklist_t waiters;
    uint64_t polls_ok, polls_failed, unchanged, imports, import_failures;
    int64_t last_ok; /* unix time of the last successful poll */
};

static void step(upd_sync_t *s);
static void start_get(upd_sync_t *s);

static const char *
current_key(const upd_sync_t *s, char *buf, size_t cap)
{
    if (s->itodo == SIZE_MAX)
        return UPD_SYNC_INDEX_KEY;
    snprintf(buf, cap, "_updraft/state/%s.json", s->todo[s->itodo]);
    return buf;
}

static void
finish_poll(upd_sync_t *s, bool ok)
{
    s->running = false;
    free(s->todo);
    s->todo = NULL;
    s->ntodo = 0;
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

/* The index arrived: list the apps this origin is behind on. */
static bool
apply_index(upd_sync_t *s)
{
    json_error_t jerr;
    json_t *root = json_loadb(s->buf, s->len, 0, &jerr), *apps = json_object_get(root, "apps");
    if (!json_is_object(apps)) {
        upd_log_warn("state: %s is not a state index", UPD_SYNC_INDEX_KEY);
        json_decref(root);
        return false;
    }
    size_t n = json_object_size(apps);
    s->todo = calloc(n + 1, sizeof(*s->todo));
    s->ntodo = 0;
    const char *app;
    json_t *gen;
    json_object_foreach(apps, app, gen) {
        if (!json_is_integer(gen) || !upd_id_is_app(app, strlen(app)))
            continue;
        if ((uint64_t)json_integer_value(gen) > local_generation(s, app))
            snprintf(s->todo[s->ntodo++], UPD_ID_MAX + 1, "%s", app);
    }
    json_decref(root);
    return true;
}

/* An app's document arrived: import it unless this origin has caught up meanwhile. */
static bool
apply_app(upd_sync_t *s, const char *app)
{
    upd_store_txn_t *txn;
    int err;
    if ((err = upd_store_write_begin(s->store, &txn)) != 0)
        return false;
    uint64_t have = 0, got = 0;
    upd_store_app_generation(txn, app, &have);
    if ((err = upd_store_app_import(txn, app, s->buf, s->len, &got)) != 0 || got <= have) {
        upd_store_txn_end(txn);
        if (err != 0) {
            ++s->import_failures;
            upd_log_error("state: %s: the published document cannot be imported: %s", app, upd_strerror(err));
        }
        return err == 0;
    }
    if ((err = upd_store_commit(txn)) != 0) {
        ++s->import_failures;
        return false;
    }
    ++s->imports;
    upd_log_info("state: %s now at generation %" PRIu64 " (was %" PRIu64 ") from %s", app, got, have, s->backends[s->backend].name);
    return true;
}

static void
on_done(upd_s3_get_t *get, const upd_s3_outcome_t *o, void *arg)
{
    upd_sync_t *s = arg;
    s->get = NULL;
    char keybuf[UPD_ID_MAX + 32];
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
    bool ok;
    if (s->itodo == SIZE_MAX) {
        ok = apply_index(s);
        snprintf(s->pending_etag, sizeof(s->pending_etag), "%s", o->etag);
    } else {
        ok = apply_app(s, s->todo[s->itodo]);
    }
    if (!ok) {
        finish_poll(s, false);
        return;
    }
    ++s->itodo;
    s->backend = 0;
    step(s);
}

static const upd_s3_get_cb_t get_cb = {NULL, on_data, on_done};

static void
start_get(upd_sync_t *s)
{
    char keybuf[UPD_ID_MAX + 32], inm[128];
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
    if (s->itodo != SIZE_MAX && s->itodo >= s->ntodo) {
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
    while (!h2o_linklist_is_empty(&s->waiters))
        h2o_linklist_unlink(s->waiters.next);
    free(s->todo);
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
    fprintf(fp, "# HELP updraft_state_last_sync_timestamp_seconds When the published state was last read successfully.\n"
                "# TYPE updraft_state_last_sync_timestamp_seconds gauge\nupdraft_state_last_sync_timestamp_seconds %" PRId64 "\n",
            s->last_ok);
}
