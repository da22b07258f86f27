/*
 * Release propagation (control/propagate.h): state documents to object storage, then signed origin purges, then
 * Varnish bans and Cloudflare tag purges, each step's requests in parallel on one libcurl multi handle, and the
 * background retries of what failed.
 *
 * Threads: first attempts run on the control plane's workers (control/jobs.h), several at once; retries run on the
 * propagator's own thread; state documents are written on its lanes (one long-lived thread per backend, each keeping
 * its connection), which run only under run_lock; /metrics reads the counters on the event loop. Two locks, always
 * taken in this order (a lane's mutex and a run's latest_t mutex are leaves: nothing is taken under them):
 *
 *   run_lock  held for the whole of a run, a republish or a round of retries: propagations happen one at a time, so
 *             the published state never goes backwards (a run exports the app's state when it holds the lock, so a
 *             later run always writes a generation at least as new, and index.json is rebuilt from the store by one
 *             writer at a time). Purges are bounded by propagation.timeout_ms and state writes by the object-store
 *             timeouts, so a run waits at most that long for another;
 *   lock      the pending list and the counters, held briefly (render and pending() take only this one).
 */
#include "control/propagate.h"
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#include "base/hex.h"
#include "domain/purge_sig.h"
#include "domain/ids.h"
#include "domain/state_doc.h"
#include "base/log.h"

#define RESPONSE_MAX 16384 /* answers are a few hundred bytes; more is not kept */
#define ERROR_MAX 512

typedef enum { KIND_STATE = 0, KIND_ORIGIN, KIND_VARNISH, KIND_CLOUDFLARE, KIND_COUNT } kind_t;
static const char *const kind_names[KIND_COUNT] = {"state", "origin", "varnish", "cloudflare"};

/* One target of one propagation: a backend's state documents, or one purge (Cloudflare: every batch). */
typedef struct st_item_t {
    struct st_item_t *next;
    kind_t kind;
    size_t target; /* backend, origin or Varnish index; 0 for Cloudflare */
    char app[UPD_ID_MAX + 1];
    uint64_t generation;
    json_t *tags; /* purges */
    char *doc;    /* state: the exported document, written again as is by a retry */
    size_t doc_len;
    unsigned retries; /* retries made so far */
    uint64_t due_ms;  /* monotonic */
    /* the last attempt */
    bool ok, final; /* final: failed in a way a retry cannot mend (no document) */
    uint64_t ms;
    char error[ERROR_MAX];
} item_t;

struct st_upd_propagate_t {
    char **origins, **varnish;
    size_t norigins, nvarnish;
    char *secret;
    size_t secret_len;
    bool cloudflare;
    char zone_id[33];
    char *api_token, *api_base;
    uint64_t timeout_ms, retry_initial_ms, retry_max_ms, retry_attempts;
    const upd_s3_backend_t *backends;
    size_t nbackends;
    upd_s3_timeouts_t timeouts;
    pthread_mutex_t run_lock; /* see the top of this file */
    upd_store_t *store; /* of the last run: retries rebuild the index from it (under run_lock) */
    /*
     * Under run_lock: the state writers (a lane per backend, started at the first write) and the purges' multi
     * handle. Both outlive a run so that their connections do: each lane's thread keeps its libcurl handle
     * (storage/s3_sync.c), hence its connection to its backend; the multi handle keeps the connections to the origins,
     * Varnish and Cloudflare in its cache.
     */
    struct st_lane_t *lanes; /* [2 * b]: the state writer of backend b; [2 * b + 1]: its GEN.json beside the index */
    bool lanes_tried;
    CURLM *multi;
    bool unlisted;      /* the store could not list its apps: index.json is merged from each backend's copy (atomic) */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* the retry thread waits on it (CLOCK_MONOTONIC) for the next due time or a new item */
    pthread_t thread;
    bool thread_started, stopping;
    /* under lock */
    item_t *pending;
    size_t npending;
    uint64_t results[KIND_COUNT][2]; /* [kind][ok] */
    uint64_t retries[KIND_COUNT], abandoned[KIND_COUNT];
    uint64_t requests[KIND_COUNT], connections[KIND_COUNT]; /* purges: HTTP requests, and new connections they opened */
};

/* ---- pure parts ---- */

bool
upd_propagate_tag_is_valid(const char *tag)
{
    size_t len = strlen(tag);
    if (len == 0 || len > UPD_PROPAGATE_TAG_MAX)
        return false;
    for (size_t i = 0; i < len; ++i) {
        char c = tag[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' || c == '/' || c == '.' || c == '_' || c == '+' ||
              c == '-'))
            return false;
    }
    return true;
}

static void
add_tag(json_t *tags, const char *prefix, const char *a, const char *b)
{
    char tag[UPD_PROPAGATE_TAG_MAX + 1];
    int n = snprintf(tag, sizeof(tag), "%s%s%s%s", prefix, a, b != NULL ? "/" : "", b != NULL ? b : "");
    if (n < 0 || (size_t)n >= sizeof(tag))
        return;
    for (char *p = tag; *p != '\0'; ++p)
        *p = (char)tolower((unsigned char)*p);
    if (!upd_propagate_tag_is_valid(tag)) {
        upd_log_warn("propagation: tag \"%s\" left out: only [a-z0-9:/._+-] may be purged", tag);
        return;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t)
    {
        if (strcmp(json_string_value(t), tag) == 0)
            return;
    }
    json_array_append_new(tags, json_string(tag));
}

json_t *
upd_propagate_tags(const char *app, const char *channel, const char *const *versions, size_t nversions)
{
    json_t *tags = json_array();
    add_tag(tags, "app:", app, NULL);
    if (channel != NULL)
        add_tag(tags, "chan:", app, channel);
    for (size_t i = 0; i < nversions; ++i)
        if (versions[i] != NULL && versions[i][0] != '\0')
            add_tag(tags, "rel:", app, versions[i]);
    return tags;
}

json_t *
upd_propagate_cloudflare_batches(const json_t *tags, size_t max_per_batch)
{
    json_t *batches = json_array(), *cur = NULL;
    size_t i;
    json_t *t;
    if (max_per_batch == 0)
        max_per_batch = 1;
    json_array_foreach(tags, i, t)
    {
        if (cur == NULL || json_array_size(cur) == max_per_batch) {
            cur = json_array();
            json_array_append_new(batches, json_pack("{s:o}", "tags", cur));
        }
        json_array_append(cur, t);
    }
    return batches;
}

uint64_t
upd_propagate_backoff_ms(uint64_t initial_ms, uint64_t max_ms, unsigned retry)
{
    uint64_t d = initial_ms;
    for (unsigned i = 1; i < retry && d < max_ms; ++i)
        d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
    return d < max_ms ? d : max_ms;
}

/* ---- settings ---- */

static bool
is_http_url(const char *s)
{
    const char *host = strncmp(s, "http://", 7) == 0 ? s + 7 : strncmp(s, "https://", 8) == 0 ? s + 8 : NULL;
    if (host == NULL || *host == '\0' || *host == '/')
        return false;
    for (const char *p = s; *p != '\0'; ++p)
        if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

/* copies a list of base URLs without their trailing '/'; @return -1 with err naming the setting */
static int
copy_urls(const upd_strlist_t *l, const char *setting, char ***out, size_t *n, char *err, size_t errlen)
{
    *out = calloc(l->size + 1, sizeof(**out));
    *n = 0;
    for (size_t i = 0; i < l->size; ++i) {
        if (!is_http_url(l->items[i])) {
            snprintf(err, errlen, "%s[%zu]: expected an http:// or https:// base URL, not \"%s\"", setting, i, l->items[i]);
            return -1;
        }
        char *u = strdup(l->items[i]);
        size_t len = strlen(u);
        while (len > 0 && u[len - 1] == '/')
            u[--len] = '\0';
        (*out)[(*n)++] = u;
    }
    return 0;
}

static const char *
env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : fallback != NULL ? fallback : "";
}

upd_propagate_t *
upd_propagate_create(const upd_conf_t *conf, const upd_s3_backend_t *backends, size_t nbackends, const upd_s3_timeouts_t *timeouts,
                     char *err, size_t errlen)
{
    upd_propagate_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        abort();
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    p->backends = backends;
    p->nbackends = nbackends;
    p->timeouts = *timeouts;
    p->timeout_ms = conf->propagation_timeout_ms;
    p->retry_initial_ms = conf->propagation_retry_initial_ms;
    p->retry_max_ms = conf->propagation_retry_max_ms;
    p->retry_attempts = conf->propagation_retry_attempts;
    if (copy_urls(&conf->propagation_origins, "propagation.origins", &p->origins, &p->norigins, err, errlen) != 0 ||
        copy_urls(&conf->propagation_varnish, "propagation.varnish", &p->varnish, &p->nvarnish, err, errlen) != 0)
        goto Error;
    const char *secret = env_or("UPDRAFT_PURGE_SECRET", conf->propagation_secret);
    if (p->norigins != 0 && secret[0] == '\0') {
        snprintf(err, errlen, "propagation.origins is set but propagation.secret is empty (set it, or UPDRAFT_PURGE_SECRET): "
                              "origins refuse unsigned purges");
        goto Error;
    }
    p->secret = strdup(secret);
    p->secret_len = strlen(secret);
    const char *zone = conf->cloudflare_zone_id != NULL ? conf->cloudflare_zone_id : "";
    if (zone[0] != '\0') {
        size_t zl = strlen(zone);
        bool hex = zl == 32;
        for (size_t i = 0; hex && i < zl; ++i)
            hex = isxdigit((unsigned char)zone[i]) != 0;
        if (!hex) {
            snprintf(err, errlen, "propagation.cloudflare.zone_id: expected 32 hex digits");
            goto Error;
        }
        const char *token = env_or("UPDRAFT_CLOUDFLARE_API_TOKEN", conf->cloudflare_api_token);
        if (token[0] == '\0') {
            snprintf(err, errlen, "propagation.cloudflare.zone_id is set but there is no API token (propagation.cloudflare.api_token "
                                  "or UPDRAFT_CLOUDFLARE_API_TOKEN)");
            goto Error;
        }
        for (const char *t = token; *t != '\0'; ++t) {
            if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 0x7f) {
                snprintf(err, errlen, "propagation.cloudflare.api_token: not a token (control characters or spaces)");
                goto Error;
            }
        }
        const char *base = conf->cloudflare_api_base != NULL ? conf->cloudflare_api_base : "";
        if (!is_http_url(base)) {
            snprintf(err, errlen, "propagation.cloudflare.api_base: expected an http:// or https:// URL, not \"%s\"", base);
            goto Error;
        }
        p->cloudflare = true;
        memcpy(p->zone_id, zone, 32);
        p->zone_id[32] = '\0';
        for (char *z = p->zone_id; *z != '\0'; ++z)
            *z = (char)tolower((unsigned char)*z);
        p->api_token = strdup(token);
        p->api_base = strdup(base);
        size_t bl = strlen(p->api_base);
        while (bl > 0 && p->api_base[bl - 1] == '/')
            p->api_base[--bl] = '\0';
    }
    if (p->retry_max_ms < p->retry_initial_ms) {
        snprintf(err, errlen, "propagation.retry_max_ms (%" PRIu64 ") is below propagation.retry_initial_ms (%" PRIu64 ")",
                 p->retry_max_ms, p->retry_initial_ms);
        goto Error;
    }
    /* once, before any other thread could (libcurl < 7.84 needs this); refcounted with storage/s3_sync.c's */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl cannot be initialised");
        goto Error;
    }
    return p;
Error:
    upd_propagate_destroy(p);
    return NULL;
}

/* ---- lanes: threads that keep their connection to one backend ---- */

/*
 * One long-lived thread running one task at a time for the caller, who waits for it (lane_wait). A run's state writes
 * go to the same lanes every time, so every write to a backend finds the connection of the previous one (s3_sync.c
 * keeps one libcurl handle per thread). Used only under run_lock: never two callers at once.
 */
typedef struct st_lane_t {
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    void (*fn)(void *arg);
    void *arg;
    bool busy, quit, started;
} lane_t;

static void *
lane_main(void *arg)
{
    lane_t *l = arg;
    pthread_mutex_lock(&l->mutex);
    for (;;) {
        while (!l->busy && !l->quit)
            pthread_cond_wait(&l->cond, &l->mutex);
        if (!l->busy)
            break;
        pthread_mutex_unlock(&l->mutex);
        l->fn(l->arg);
        pthread_mutex_lock(&l->mutex);
        l->busy = false;
        pthread_cond_broadcast(&l->cond);
    }
    pthread_mutex_unlock(&l->mutex);
    upd_s3_sync_thread_done();
    return NULL;
}

/* Starts the lanes once (under run_lock); a lane whose thread could not start runs its tasks on the caller's thread. */
static void
lanes_ensure(upd_propagate_t *p)
{
    if (p->lanes_tried)
        return;
    p->lanes_tried = true;
    size_t n = 2 * p->nbackends;
    if (n == 0 || (p->lanes = calloc(n, sizeof(*p->lanes))) == NULL)
        return;
    for (size_t i = 0; i < n; ++i) {
        lane_t *l = &p->lanes[i];
        pthread_mutex_init(&l->mutex, NULL);
        pthread_cond_init(&l->cond, NULL);
        int rc = pthread_create(&l->thread, NULL, lane_main, l);
        l->started = rc == 0;
        if (rc != 0)
            upd_log_warn("propagation: cannot start a state writer thread (%s): writing on the caller's thread", strerror(rc));
    }
}

static lane_t *
lane_of(upd_propagate_t *p, size_t i)
{
    lanes_ensure(p);
    return p->lanes != NULL && p->lanes[i].started ? &p->lanes[i] : NULL;
}

/* Runs fn(arg) on the lane, or at once on this thread when l is NULL. */
static void
lane_run(lane_t *l, void (*fn)(void *), void *arg)
{
    if (l == NULL) {
        fn(arg);
        return;
    }
    pthread_mutex_lock(&l->mutex);
    l->fn = fn;
    l->arg = arg;
    l->busy = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mutex);
}

static void
lane_wait(lane_t *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mutex);
    while (l->busy)
        pthread_cond_wait(&l->cond, &l->mutex);
    pthread_mutex_unlock(&l->mutex);
}

static void
lanes_stop(upd_propagate_t *p)
{
    if (p->lanes == NULL)
        return;
    for (size_t i = 0; i < 2 * p->nbackends; ++i) {
        lane_t *l = &p->lanes[i];
        if (l->started) {
            pthread_mutex_lock(&l->mutex);
            l->quit = true;
            pthread_cond_broadcast(&l->cond);
            pthread_mutex_unlock(&l->mutex);
            pthread_join(l->thread, NULL);
        }
        pthread_cond_destroy(&l->cond);
        pthread_mutex_destroy(&l->mutex);
    }
    free(p->lanes);
    p->lanes = NULL;
}

static void
item_free(item_t *it)
{
    json_decref(it->tags);
    free(it->doc);
    free(it);
}

static void
free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void
upd_propagate_destroy(upd_propagate_t *p)
{
    if (p == NULL)
        return;
    upd_propagate_stop(p);
    lanes_stop(p);
    if (p->multi != NULL)
        curl_multi_cleanup(p->multi); /* closes the purges' cached connections */
    if (p->npending != 0)
        upd_log_warn("propagation: %zu pending retr%s dropped at exit; origins converge by polling object storage", p->npending,
                     p->npending == 1 ? "y" : "ies");
    while (p->pending != NULL) {
        item_t *it = p->pending;
        p->pending = it->next;
        item_free(it);
    }
    for (size_t i = 0; i < p->norigins; ++i)
        free(p->origins[i]);
    for (size_t i = 0; i < p->nvarnish; ++i)
        free(p->varnish[i]);
    free(p->origins);
    free(p->varnish);
    free_secret(p->secret);
    free_secret(p->api_token);
    free(p->api_base);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->run_lock);
    free(p);
}

void
upd_propagate_log_targets(const upd_propagate_t *p)
{
    for (size_t i = 0; i < p->nbackends; ++i)
        upd_log_info("propagation: state documents to %s", p->backends[i].name);
    for (size_t i = 0; i < p->norigins; ++i)
        upd_log_info("propagation: purges origin %s (signed)", p->origins[i]);
    for (size_t i = 0; i < p->nvarnish; ++i)
        upd_log_info("propagation: bans on varnish %s", p->varnish[i]);
    if (p->cloudflare)
        upd_log_info("propagation: purges Cloudflare zone %s at %s", p->zone_id, p->api_base);
}

/* ---- items ---- */

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static item_t *
item_new(kind_t kind, size_t target, const char *app, uint64_t generation, const json_t *tags)
{
    item_t *it = calloc(1, sizeof(*it));
    if (it == NULL)
        abort();
    it->kind = kind;
    it->target = target;
    snprintf(it->app, sizeof(it->app), "%s", app);
    it->generation = generation;
    if (tags != NULL)
        it->tags = json_deep_copy(tags);
    return it;
}

static void
target_name(const upd_propagate_t *p, const item_t *it, char *buf, size_t cap)
{
    switch (it->kind) {
    case KIND_STATE:
        snprintf(buf, cap, "%s", p->backends[it->target].name);
        break;
    case KIND_ORIGIN:
        snprintf(buf, cap, "origin %s", p->origins[it->target]);
        break;
    case KIND_VARNISH:
        snprintf(buf, cap, "varnish %s", p->varnish[it->target]);
        break;
    default:
        snprintf(buf, cap, "cloudflare");
        break;
    }
}

/* A newer propagation of app to this target replaces a pending retry (which would publish or purge older state). */
static void
supersede(upd_propagate_t *p, kind_t kind, size_t target, const char *app)
{
    pthread_mutex_lock(&p->lock);
    for (item_t **pp = &p->pending; *pp != NULL;) {
        item_t *it = *pp;
        if (it->kind == kind && it->target == target && strcmp(it->app, app) == 0) {
            *pp = it->next;
            --p->npending;
            item_free(it);
        } else {
            pp = &it->next;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

static bool
has_pending(upd_propagate_t *p, kind_t kind, const char *app)
{
    bool found = false;
    pthread_mutex_lock(&p->lock);
    for (const item_t *it = p->pending; it != NULL && !found; it = it->next)
        found = it->kind == kind && strcmp(it->app, app) == 0;
    pthread_mutex_unlock(&p->lock);
    return found;
}

static bool
will_retry(const upd_propagate_t *p, const item_t *it)
{
    return !it->ok && !it->final && it->retries < p->retry_attempts;
}

/*
 * Counts the attempt; a failure is logged and queued for its next retry, or given up. Takes ownership of it.
 */
static void
settle(upd_propagate_t *p, item_t *it)
{
    char name[300];
    pthread_mutex_lock(&p->lock);
    ++p->results[it->kind][it->ok ? 1 : 0];
    if (!it->ok && !will_retry(p, it) && (it->retries != 0 || p->retry_attempts != 0))
        ++p->abandoned[it->kind];
    pthread_mutex_unlock(&p->lock);
    if (it->ok) {
        item_free(it);
        return;
    }
    target_name(p, it, name, sizeof(name));
    const char *what = it->kind == KIND_STATE ? "state" : "purge";
    if (!will_retry(p, it)) {
        upd_log_error("propagation: %s %s of %s generation %" PRIu64 ": FAILED: %s; %s", what, name, it->app, it->generation,
                      it->error, it->final ? "not retried" : it->retries != 0 ? "giving up" : "no retries configured");
        item_free(it);
        return;
    }
    uint64_t delay = upd_propagate_backoff_ms(p->retry_initial_ms, p->retry_max_ms, it->retries + 1);
    upd_log_warn("propagation: %s %s of %s generation %" PRIu64 ": FAILED: %s; retry %u of %" PRIu64 " in %" PRIu64 " ms", what,
                 name, it->app, it->generation, it->error, it->retries + 1, p->retry_attempts, delay);
    it->due_ms = now_ms() + delay;
    pthread_mutex_lock(&p->lock);
    it->next = p->pending;
    p->pending = it;
    ++p->npending;
    pthread_cond_signal(&p->cond); /* the retry thread may be waiting for a later item, or for none */
    pthread_mutex_unlock(&p->lock);
}

/* ---- state documents ---- */

static int
collect_app(const char *app, void *arg)
{
    json_array_append_new(arg, json_string(app));
    return 0;
}

/*
 * {"format":1,"apps":{APP:GEN,...}} of every app in the store, or NULL (err set). *unlisted is set when the store
 * could not list its apps (see merge_index).
 */
static char *
build_index(upd_store_t *store, bool *unlisted, char *err, size_t errlen)
{
    upd_store_txn_t *txn;
    *unlisted = false;
    int e = upd_store_read_begin(store, &txn);
    if (e != 0) {
        snprintf(err, errlen, "store: %s", upd_strerror(e));
        return NULL;
    }
    json_t *names = json_array();
    upd_state_index_t ix;
    upd_state_index_init(&ix);
    if ((e = upd_store_app_list(txn, collect_app, names)) != 0)
        *unlisted = true;
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        uint64_t gen = 0;
        /* an app at generation 0 (no channel yet) has published nothing: the index leaves it out */
        if (e == 0 && (e = upd_store_app_generation(txn, json_string_value(n), &gen)) == 0 && gen != 0)
            upd_state_index_set(&ix, json_string_value(n), gen);
    }
    upd_store_txn_end(txn);
    json_decref(names);
    char *text = NULL;
    size_t text_len;
    if (e == 0)
        e = upd_state_index_format(&ix, &text, &text_len);
    if (e != 0)
        snprintf(err, errlen, "store: %s", upd_strerror(e));
    upd_state_index_dispose(&ix);
    return text;
}

typedef struct {
    char *buf;
    size_t len;
} sink_t;

static int
to_sink(const void *data, size_t len, void *arg)
{
    sink_t *s = arg;
    if (s->len + len > 4 * 1024 * 1024)
        return 1; /* an index is a few bytes per app */
    char *b = realloc(s->buf, s->len + len + 1);
    if (b == NULL)
        return 1;
    memcpy(b + s->len, data, len);
    s->len += len;
    b[s->len] = '\0';
    s->buf = b;
    return 0;
}

/*
 * The index as the backend has it with this app's generation set: the fallback when the store cannot list its apps
 * (upd_store_app_list fails on the store of this commit: a cursor set to an empty key). The control plane is the only
 * writer of the index, so reading and rewriting it loses nothing; it then lists what this backend was given.
 */
static char *
merge_index(const upd_propagate_t *p, const item_t *it, char *err, size_t errlen)
{
    sink_t sink = {NULL, 0};
    upd_s3_result_t res;
    upd_state_index_t ix;
    if (upd_s3_get(&p->backends[it->target], &p->timeouts, UPD_STATE_INDEX_KEY, to_sink, &sink, &res) != 0 ||
        (res.status != 200 && res.status != 404)) {
        snprintf(err, errlen, "reading index.json: %s", res.message);
        free(sink.buf);
        return NULL;
    }
    upd_state_index_init(&ix);
    /* absent or damaged: begun afresh with this app */
    upd_reason_t why;
    if (res.status == 200 && upd_state_index_parse(sink.buf != NULL ? sink.buf : "", sink.len, &ix, &why) != 0)
        upd_log_warn("propagation: %s's index.json is refused (%s): written afresh", p->backends[it->target].name, why.message);
    free(sink.buf);
    if (upd_state_index_get(&ix, it->app) < it->generation)
        upd_state_index_set(&ix, it->app, it->generation);
    char *text = NULL;
    size_t text_len;
    if (upd_state_index_format(&ix, &text, &text_len) != 0)
        snprintf(err, errlen, "index: %s", upd_strerror(UPD_ENOMEM));
    upd_state_index_dispose(&ix);
    return text;
}

static bool
put_doc(const upd_propagate_t *p, size_t backend, const char *key, const char *data, size_t len, char *error, size_t errlen)
{
    const upd_s3_backend_t *b = &p->backends[backend];
    upd_s3_result_t res;
    if (upd_s3_put_mem(b, &p->timeouts, key, data, len, "application/json", &res) == 0 && res.status >= 200 && res.status <= 299)
        return true;
    /* res.message names the backend, the status and S3's code, or the transport error; never a credential */
    snprintf(error, errlen, "PUT %s: %s", key, res.message);
    return false;
}

/*
 * How long a state writer holds its index and GEN.json back for the origins' purges, at most. A purged origin needs only
 * the latest document, and a backend then serves its reads first; an origin that falls back to a full poll (its fetch
 * failed) needs the index, so the wait is short.
 */
#define INDEX_HOLD_MS 100

/*
 * A run's two meeting points with its state writers: left counts down the backends whose latest document is written
 * (or failed), and the origins are purged at zero; each writer then waits for purged (at most INDEX_HOLD_MS) before it
 * writes the index and GEN.json.
 */
typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    size_t left;
    bool purged;
} latest_t;

static void
latest_done(latest_t *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mutex);
    if (--l->left == 0)
        pthread_cond_broadcast(&l->cond);
    uint64_t until = now_ms() + INDEX_HOLD_MS;
    struct timespec ts = {.tv_sec = (time_t)(until / 1000), .tv_nsec = (long)(until % 1000) * 1000000};
    while (!l->purged && pthread_cond_timedwait(&l->cond, &l->mutex, &ts) == 0)
        ;
    pthread_mutex_unlock(&l->mutex);
}

/* GEN.json of an item, on the backend's second lane while the first writes the index */
typedef struct {
    const upd_propagate_t *p;
    const item_t *it;
    bool ok;
    char error[ERROR_MAX];
} history_t;

static void
put_history(void *arg)
{
    history_t *h = arg;
    char key[UPD_STATE_KEY_MAX];
    /* it->app is an app id (the API checked it) and key has room for any: neither can fail */
    upd_state_doc_key(key, sizeof(key), h->it->app, h->it->generation);
    h->ok = put_doc(h->p, h->it->target, key, h->it->doc, h->it->doc_len, h->error, sizeof(h->error));
}

/*
 * APP.json, then index.json and GEN.json at once: a reader that finds the index finds the latest document it names,
 * and origins read only those two (GEN.json is the history, which nothing reads back). On a lane of the backend, or
 * on any thread (GEN.json goes to the backend's second lane either way); one writer per backend at a time (run_lock). latest (NULL for none) is counted down once APP.json is written
 * or failed: the origins are then purged, and the index waits for that (latest_done).
 */
static void
publish_state(upd_propagate_t *p, item_t *it, latest_t *latest)
{
    uint64_t start = now_ms();
    char key[UPD_STATE_KEY_MAX];
    it->ok = false;
    if (it->doc == NULL) {
        it->final = true;
        latest_done(latest);
        return; /* it->error says why there is no document */
    }
    /* it->app is an app id (the API checked it) and key has room for any: neither can fail */
    upd_state_latest_key(key, sizeof(key), it->app);
    bool latest_ok = put_doc(p, it->target, key, it->doc, it->doc_len, it->error, sizeof(it->error));
    latest_done(latest);
    if (!latest_ok)
        return;
    history_t history = {p, it, false, ""};
    lane_t *history_lane = lane_of(p, 2 * it->target + 1);
    lane_run(history_lane, put_history, &history);
    char why[300];
    /* read once: the backends of a run publish on threads of their own (publish_states) */
    bool unlisted = false, was_unlisted = __atomic_load_n(&p->unlisted, __ATOMIC_ACQUIRE);
    char *index = was_unlisted ? NULL : build_index(p->store, &unlisted, why, sizeof(why));
    if (unlisted) {
        /* from now on, in this process: each attempt would log the store's failure again */
        upd_log_warn("propagation: the store cannot list its apps (%s): each backend's index.json is updated in place", why);
        __atomic_store_n(&p->unlisted, true, __ATOMIC_RELEASE);
    }
    if (was_unlisted || unlisted)
        index = merge_index(p, it, why, sizeof(why));
    bool ok = false;
    if (index == NULL) {
        snprintf(it->error, sizeof(it->error), "index: %s", why);
    } else {
        ok = put_doc(p, it->target, UPD_STATE_INDEX_KEY, index, strlen(index), it->error, sizeof(it->error));
        free(index);
    }
    lane_wait(history_lane); /* history lives on this stack */
    if (ok && !history.ok)
        snprintf(it->error, sizeof(it->error), "%s", history.error);
    it->ok = ok && history.ok;
    it->ms = now_ms() - start;
}

typedef struct {
    upd_propagate_t *p;
    item_t *it;
    latest_t *latest;
} publish_arg_t;

static void
publish_main(void *arg)
{
    publish_arg_t *a = arg;
    publish_state(a->p, a->it, a->latest);
}

/*
 * Starts publishing items[] at once, each on its backend's first lane: a change then waits for the slowest backend, not
 * for the sum of them, and each write reuses the lane's connection. Each item must be for another backend (each
 * backend's index.json has one writer at a time, and its documents keep their order). args has room for n; latest
 * (or NULL) is counted down from n as each backend's APP.json is written. publish_wait() waits for the end.
 */
static void
publish_start(upd_propagate_t *p, item_t **items, size_t n, publish_arg_t *args, latest_t *latest)
{
    for (size_t i = 0; i < n; ++i) {
        lane_t *lane = lane_of(p, 2 * items[i]->target);
        args[i] = (publish_arg_t){p, items[i], lane != NULL ? latest : NULL};
        lane_run(lane, publish_main, &args[i]);
        if (lane == NULL && latest != NULL) {
            /* written on this thread, index included */
            pthread_mutex_lock(&latest->mutex);
            --latest->left;
            pthread_mutex_unlock(&latest->mutex);
        }
    }
}

static void
publish_wait(upd_propagate_t *p, item_t **items, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        lane_wait(lane_of(p, 2 * items[i]->target));
}

static void
publish_states(upd_propagate_t *p, item_t **items, size_t n)
{
    publish_arg_t *args = calloc(n + 1, sizeof(*args));
    if (args == NULL)
        abort();
    publish_start(p, items, n, args, NULL);
    publish_wait(p, items, n);
    free(args);
}

/* ---- purges ---- */

typedef struct {
    item_t *item;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char errbuf[CURL_ERROR_SIZE];
    char resp[RESPONSE_MAX + 1];
    size_t resp_len;
    CURLcode rc;
    long status;
    uint64_t ms;
} req_t;

static size_t
on_write(char *buf, size_t size, size_t n, void *arg)
{
    req_t *r = arg;
    size_t len = size * n, room = RESPONSE_MAX - r->resp_len, take = len < room ? len : room;
    memcpy(r->resp + r->resp_len, buf, take);
    r->resp_len += take;
    r->resp[r->resp_len] = '\0';
    return len;
}

static void
random_nonce(char out[UPD_PROPAGATE_NONCE_LEN + 1])
{
    unsigned char raw[UPD_PROPAGATE_NONCE_LEN / 2];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        abort(); /* the CSPRNG failing is not something to carry on from */
    upd_hex_encode(raw, sizeof(raw), out);
}

static req_t *
req_new(const upd_propagate_t *p, item_t *it, const char *url)
{
    req_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->easy = curl_easy_init()) == NULL)
        abort();
    r->item = it;
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* the targets are named precisely: no proxy from the environment */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    return r;
}

static void
req_post_json(req_t *r, char *body)
{
    r->body = body;
    r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
    r->headers = curl_slist_append(r->headers, "Accept: application/json");
    r->headers = curl_slist_append(r->headers, "Expect:"); /* no 100-continue round trip for a small body */
    curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
}

static void
add_header(req_t *r, const char *name, const char *value)
{
    char line[UPD_PROPAGATE_TAG_MAX * 4];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    r->headers = curl_slist_append(r->headers, line);
}

/* The requests of one purge item (Cloudflare: one per batch of 30 tags), appended to reqs. */
static void
build_reqs(const upd_propagate_t *p, item_t *it, req_t ***reqs, size_t *n)
{
    char url[2048];
    size_t cap = *n + 1;
    json_t *batches = NULL;
    if (it->kind == KIND_CLOUDFLARE) {
        batches = upd_propagate_cloudflare_batches(it->tags, UPD_PROPAGATE_CLOUDFLARE_TAGS_MAX);
        cap = *n + json_array_size(batches);
    }
    *reqs = realloc(*reqs, (cap + 1) * sizeof(**reqs));
    if (*reqs == NULL)
        abort();
    switch (it->kind) {
    case KIND_ORIGIN: {
        snprintf(url, sizeof(url), "%s/_updraft/purge", p->origins[it->target]);
        req_t *r = req_new(p, it, url);
        json_t *b = json_pack("{s:s, s:I, s:O}", "app", it->app, "generation", (json_int_t)it->generation, "tags", it->tags);
        char *body = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(b);
        char ts[32], nonce[UPD_PROPAGATE_NONCE_LEN + 1], sig[65];
        snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
        random_nonce(nonce);
        if (!upd_purge_sign(p->secret, p->secret_len, ts, nonce, body, strlen(body), sig))
            abort(); /* HMAC-SHA256 is always there in OpenSSL 3: failing here is an allocation failure */
        req_post_json(r, body);
        add_header(r, "X-Updraft-Timestamp", ts);
        add_header(r, "X-Updraft-Nonce", nonce);
        add_header(r, "X-Updraft-Signature", sig);
        curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
        (*reqs)[(*n)++] = r;
        break;
    }
    case KIND_VARNISH: {
        snprintf(url, sizeof(url), "%s/", p->varnish[it->target]);
        req_t *r = req_new(p, it, url);
        /* "app:acme chan:acme/latest rel:acme/1.3.0": the VCL bans objects whose tag header has any of them */
        char line[UPD_PROPAGATE_TAG_MAX * 4] = "";
        size_t len = 0, i;
        json_t *t;
        json_array_foreach(it->tags, i, t)
        {
            int w = snprintf(line + len, sizeof(line) - len, "%s%s", i != 0 ? " " : "", json_string_value(t));
            if (w < 0 || (size_t)w >= sizeof(line) - len)
                break;
            len += (size_t)w;
        }
        add_header(r, "X-Updraft-Tags", line);
        curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, "BAN");
        curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
        (*reqs)[(*n)++] = r;
        break;
    }
    default: {
        snprintf(url, sizeof(url), "%s/zones/%s/purge_cache", p->api_base, p->zone_id);
        size_t i;
        json_t *batch;
        json_array_foreach(batches, i, batch)
        {
            req_t *r = req_new(p, it, url);
            req_post_json(r, json_dumps(batch, JSON_COMPACT));
            char auth[1024];
            snprintf(auth, sizeof(auth), "Bearer %s", p->api_token);
            add_header(r, "Authorization", auth);
            OPENSSL_cleanse(auth, sizeof(auth));
            curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
            (*reqs)[(*n)++] = r;
        }
        break;
    }
    }
    json_decref(batches);
}

static void
req_free(req_t *r)
{
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r);
}

/* "connect: Connection refused", "timeout after 2000 ms", "HTTP 504: ..." */
static void
transport_error(const upd_propagate_t *p, const req_t *r, char *out, size_t cap)
{
    long oserr = 0;
    switch (r->rc) {
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
        snprintf(out, cap, "connect: %s", oserr != 0 ? strerror((int)oserr) : r->errbuf[0] ? r->errbuf : "failed");
        break;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(out, cap, "timeout after %" PRIu64 " ms", p->timeout_ms);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(out, cap, "resolve: %s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->rc));
        break;
    default:
        snprintf(out, cap, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->rc));
        break;
    }
}

/* the error code or message of a JSON error answer ({"error":{"code"}}, {"error":"..."}), or NULL */
static const char *
error_word(json_t *j)
{
    json_t *e = json_object_get(j, "error");
    if (json_is_string(e))
        return json_string_value(e);
    if (json_is_string(json_object_get(e, "code")))
        return json_string_value(json_object_get(e, "code"));
    return NULL;
}

/* @return true when the request did what it should; else *out says why */
static bool
judge(const upd_propagate_t *p, const req_t *r, char *out, size_t cap)
{
    const item_t *it = r->item;
    if (r->rc != CURLE_OK) {
        transport_error(p, r, out, cap);
        return false;
    }
    json_t *j = json_loadb(r->resp, r->resp_len, 0, NULL);
    bool ok = false;
    switch (it->kind) {
    case KIND_ORIGIN: {
        json_t *g = json_object_get(j, "generation");
        if (r->status == 200 && json_is_integer(g) && json_integer_value(g) >= 0 &&
            (uint64_t)json_integer_value(g) >= it->generation) {
            ok = true;
        } else if (r->status == 200) {
            if (json_is_integer(g))
                snprintf(out, cap, "origin answered generation %" JSON_INTEGER_FORMAT ", expected %" PRIu64 " or newer",
                         json_integer_value(g), it->generation);
            else
                snprintf(out, cap, "HTTP 200 without a generation");
        } else if (r->status == 504 && json_is_integer(g)) {
            snprintf(out, cap, "HTTP 504: origin at generation %" JSON_INTEGER_FORMAT ", could not catch up to %" PRIu64,
                     json_integer_value(g), it->generation);
        } else {
            const char *w = error_word(j);
            snprintf(out, cap, "HTTP %ld%s%s", r->status, w != NULL ? ": " : "", w != NULL ? w : "");
        }
        break;
    }
    case KIND_VARNISH:
        ok = r->status == 200;
        if (!ok)
            snprintf(out, cap, "HTTP %ld", r->status);
        break;
    default: {
        ok = r->status == 200 && json_is_true(json_object_get(j, "success"));
        if (!ok) {
            json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
            const char *msg = json_string_value(json_object_get(e0, "message"));
            json_t *code = json_object_get(e0, "code");
            if (msg != NULL)
                snprintf(out, cap, "HTTP %ld: %" JSON_INTEGER_FORMAT " %s", r->status, json_integer_value(code), msg);
            else
                snprintf(out, cap, "HTTP %ld%s", r->status, r->status == 200 ? " without \"success\": true" : "");
        }
        break;
    }
    }
    json_decref(j);
    return ok;
}

/* Runs every purge of items[] at once and records each item's outcome. Blocking: at most timeout_ms. */
static void
run_purges(upd_propagate_t *p, item_t **items, size_t nitems)
{
    req_t **reqs = NULL;
    size_t n = 0;
    if (nitems == 0)
        return;
    for (size_t i = 0; i < nitems; ++i) {
        items[i]->ok = true; /* until one of its requests fails (Cloudflare: every batch must pass) */
        items[i]->ms = 0;
        items[i]->error[0] = '\0';
        build_reqs(p, items[i], &reqs, &n);
    }
    /* kept from run to run (under run_lock): its connection cache keeps the targets' connections open */
    if (p->multi == NULL && (p->multi = curl_multi_init()) == NULL)
        abort();
    CURLM *m = p->multi;
    for (size_t i = 0; i < n; ++i) {
        reqs[i]->rc = CURLE_FAILED_INIT;
        curl_multi_add_handle(m, reqs[i]->easy);
    }
    int running = 0;
    for (;;) {
        CURLMcode mc = curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            ((req_t *)priv)->rc = msg->data.result;
        }
        if (mc != CURLM_OK || running == 0)
            break;
        /* each handle has its own CURLOPT_TIMEOUT_MS: this ends within timeout_ms */
        curl_multi_poll(m, NULL, 0, 200, NULL);
    }
    for (size_t i = 0; i < n; ++i) {
        req_t *r = reqs[i];
        item_t *it = r->item;
        curl_off_t us = 0;
        long connects = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &us);
        curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &connects);
        pthread_mutex_lock(&p->lock);
        ++p->requests[it->kind];
        p->connections[it->kind] += (uint64_t)(connects > 0 ? connects : 0);
        pthread_mutex_unlock(&p->lock);
        r->ms = (uint64_t)us / 1000;
        if (r->ms > it->ms)
            it->ms = r->ms;
        char why[ERROR_MAX];
        if (!judge(p, r, why, sizeof(why)) && it->ok) {
            it->ok = false;
            snprintf(it->error, sizeof(it->error), "%s", why);
        }
        curl_multi_remove_handle(m, r->easy); /* the connection stays in the multi handle's cache */
        req_free(r);
    }
    free(reqs);
}

/* ---- running ---- */

static json_t *
item_json(const upd_propagate_t *p, const item_t *it)
{
    char name[300];
    target_name(p, it, name, sizeof(name));
    if (it->ok)
        return it->kind == KIND_STATE ? json_pack("{s:s, s:b}", "target", name, "ok", 1)
                                      : json_pack("{s:s, s:b, s:I}", "target", name, "ok", 1, "ms", (json_int_t)it->ms);
    return json_pack("{s:s, s:b, s:s, s:b}", "target", name, "ok", 0, "error", it->error, "retrying", will_retry(p, it));
}

/* the edges' items for a purge of app (every Varnish listener, then Cloudflare), appended to list */
static size_t
add_edge_items(upd_propagate_t *p, const char *app, uint64_t generation, const json_t *tags, item_t **list, size_t n)
{
    for (size_t i = 0; i < p->nvarnish; ++i) {
        supersede(p, KIND_VARNISH, i, app);
        list[n++] = item_new(KIND_VARNISH, i, app, generation, tags);
    }
    if (p->cloudflare) {
        supersede(p, KIND_CLOUDFLARE, 0, app);
        list[n++] = item_new(KIND_CLOUDFLARE, 0, app, generation, tags);
    }
    return n;
}

json_t *
upd_propagate_run(upd_propagate_t *p, upd_store_t *store, const char *app, const json_t *tags)
{
    char *doc = NULL, why[200] = "";
    size_t doc_len = 0;
    uint64_t generation = 0;
    upd_store_txn_t *txn;
    pthread_mutex_lock(&p->run_lock);
    p->store = store;

    /* exported under run_lock: a run that waited for another publishes a state at least as new as the other did */
    int err = upd_store_read_begin(store, &txn);
    if (err == 0) {
        err = upd_store_app_export(txn, app, &doc, &doc_len, &generation);
        upd_store_txn_end(txn);
    }
    if (err != 0) {
        snprintf(why, sizeof(why), "exporting the state: %s", upd_strerror(err));
        upd_log_error("propagation: %s: %s", app, why);
    }

    size_t nstate = p->nbackends, nedge = p->nvarnish + (p->cloudflare ? 1 : 0);
    item_t **state = calloc(nstate + 1, sizeof(*state)), **origins = calloc(p->norigins + 1, sizeof(*origins)),
           **edges = calloc(nedge + 1, sizeof(*edges));
    if (state == NULL || origins == NULL || edges == NULL)
        abort();
    json_t *state_j = json_array(), *purges_j = json_array();

    /* 1. state documents, every backend at once */
    for (size_t i = 0; i < nstate; ++i) {
        supersede(p, KIND_STATE, i, app);
        item_t *it = state[i] = item_new(KIND_STATE, i, app, generation, NULL);
        if (doc != NULL) {
            it->doc = malloc(doc_len + 1);
            memcpy(it->doc, doc, doc_len + 1);
            it->doc_len = doc_len;
        } else {
            snprintf(it->error, sizeof(it->error), "%s", why);
        }
    }
    /*
     * 2. every origin at once, as soon as every backend's latest document is written (or failed): a purged origin
     * fetches that document at once (loop/sync.h, upd_sync_poll_app), so the index is written beside the purges;
     * 3. then the edges together, once the origins hold the change.
     */
    uint64_t t0 = now_ms();
    latest_t latest = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, nstate, false};
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* now_ms()'s clock: INDEX_HOLD_MS is not moved by a clock step */
    pthread_cond_init(&latest.cond, &ca);
    pthread_condattr_destroy(&ca);
    publish_arg_t *args = calloc(nstate + 1, sizeof(*args));
    if (args == NULL)
        abort();
    publish_start(p, state, nstate, args, &latest);
    pthread_mutex_lock(&latest.mutex);
    while (latest.left != 0)
        pthread_cond_wait(&latest.cond, &latest.mutex);
    pthread_mutex_unlock(&latest.mutex);
    uint64_t t1 = now_ms();
    for (size_t i = 0; i < p->norigins; ++i) {
        supersede(p, KIND_ORIGIN, i, app);
        origins[i] = item_new(KIND_ORIGIN, i, app, generation, tags);
    }
    run_purges(p, origins, p->norigins);
    uint64_t t2 = now_ms();
    pthread_mutex_lock(&latest.mutex);
    latest.purged = true; /* the writers go on with the indexes while the edges are purged */
    pthread_cond_broadcast(&latest.cond);
    pthread_mutex_unlock(&latest.mutex);
    nedge = add_edge_items(p, app, generation, tags, edges, 0);
    run_purges(p, edges, nedge);
    uint64_t t3 = now_ms();
    publish_wait(p, state, nstate); /* the indexes: the answer reports every write */
    free(args);
    free(doc);
    pthread_cond_destroy(&latest.cond);
    pthread_mutex_destroy(&latest.mutex);
    upd_log_info("propagation: %s generation %" PRIu64 ": latest documents %" PRIu64 " ms, origins %" PRIu64 " ms, edges %" PRIu64
                 " ms, indexes done %" PRIu64 " ms after the edges", app, generation, t1 - t0, t2 - t1, t3 - t2, now_ms() - t3);

    for (size_t i = 0; i < nstate; ++i) {
        json_array_append_new(state_j, item_json(p, state[i]));
        settle(p, state[i]);
    }
    for (size_t i = 0; i < p->norigins; ++i) {
        json_array_append_new(purges_j, item_json(p, origins[i]));
        settle(p, origins[i]);
    }
    for (size_t i = 0; i < nedge; ++i) {
        json_array_append_new(purges_j, item_json(p, edges[i]));
        settle(p, edges[i]);
    }
    free(state);
    free(origins);
    free(edges);
    pthread_mutex_unlock(&p->run_lock);
    return json_pack("{s:I, s:o, s:o}", "generation", (json_int_t)generation, "state", state_j, "purges", purges_j);
}

struct republish {
    upd_propagate_t *p;
    char (*apps)[UPD_ID_MAX + 1];
    size_t n, cap;
};

static int
collect_for_republish(const char *app, void *arg)
{
    struct republish *r = arg;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        if ((r->apps = realloc(r->apps, r->cap * sizeof(*r->apps))) == NULL)
            abort();
    }
    snprintf(r->apps[r->n++], UPD_ID_MAX + 1, "%s", app);
    return 0;
}

size_t
upd_propagate_republish(upd_propagate_t *p, upd_store_t *store)
{
    if (p->nbackends == 0)
        return 0;
    pthread_mutex_lock(&p->run_lock);
    p->store = store;
    struct republish r = {p, NULL, 0, 0};
    upd_store_txn_t *txn;
    if (upd_store_read_begin(store, &txn) != 0) {
        pthread_mutex_unlock(&p->run_lock);
        return 0;
    }
    upd_store_app_list(txn, collect_for_republish, &r);
    upd_store_txn_end(txn);
    size_t failed = 0;
    for (size_t a = 0; a < r.n; ++a) {
        char *doc = NULL;
        size_t doc_len = 0;
        uint64_t generation = 0;
        if (upd_store_read_begin(store, &txn) != 0)
            break;
        int err = upd_store_app_export(txn, r.apps[a], &doc, &doc_len, &generation);
        upd_store_txn_end(txn);
        if (err != 0)
            continue;
        size_t n = p->nbackends;
        item_t **items = calloc(n, sizeof(*items));
        if (items == NULL)
            abort();
        for (size_t i = 0; i < n; ++i) {
            supersede(p, KIND_STATE, i, r.apps[a]);
            item_t *it = items[i] = item_new(KIND_STATE, i, r.apps[a], generation, NULL);
            it->doc = malloc(doc_len + 1);
            memcpy(it->doc, doc, doc_len + 1);
            it->doc_len = doc_len;
        }
        publish_states(p, items, n); /* every backend at once, as a run does */
        for (size_t i = 0; i < n; ++i) {
            if (!items[i]->ok)
                ++failed;
            settle(p, items[i]); /* a failure is retried like any other */
        }
        free(items);
        free(doc);
    }
    pthread_mutex_unlock(&p->run_lock);
    free(r.apps);
    if (r.n != 0)
        upd_log_info("propagation: republished the state of %zu app(s) at start-up%s", r.n, failed ? "; some writes failed and will be retried" : "");
    return r.n;
}

void
upd_propagate_run_due(upd_propagate_t *p)
{
    pthread_mutex_lock(&p->run_lock);
    pthread_mutex_lock(&p->lock);
    uint64_t now = now_ms();
    size_t cap = p->npending + 1;
    item_t **state = calloc(cap, sizeof(*state)), **origins = calloc(cap, sizeof(*origins));
    size_t nstate = 0, norigins = 0, nedge = 0, edge_cap = cap;
    item_t **edges = calloc(edge_cap, sizeof(*edges));
    if (state == NULL || origins == NULL || edges == NULL)
        abort();
    /* take every due item out of the list: settle() puts the failures back with their next due time */
    for (item_t **pp = &p->pending; *pp != NULL;) {
        item_t *it = *pp;
        if (it->due_ms > now) {
            pp = &it->next;
            continue;
        }
        *pp = it->next;
        --p->npending;
        it->next = NULL;
        ++it->retries;
        ++p->retries[it->kind];
        if (it->kind == KIND_STATE)
            state[nstate++] = it;
        else if (it->kind == KIND_ORIGIN)
            origins[norigins++] = it;
        else
            edges[nedge++] = it;
    }
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < nstate; ++i)
        publish_state(p, state[i], NULL);
    run_purges(p, origins, norigins);
    /*
     * An origin that now holds the state may have answered an edge the old state after the first edge purge: once no
     * origin purge of the app is left to retry, purge its edges again.
     */
    for (size_t i = 0; i < norigins; ++i) {
        item_t *o = origins[i];
        bool others = has_pending(p, KIND_ORIGIN, o->app);
        for (size_t k = 0; k < norigins && !others; ++k)
            others = !origins[k]->ok && strcmp(origins[k]->app, o->app) == 0;
        for (size_t k = 0; k < i && !others; ++k)
            others = strcmp(origins[k]->app, o->app) == 0; /* this app's edges are already added */
        if (!o->ok || others || p->nvarnish + (p->cloudflare ? 1 : 0) == 0)
            continue;
        /* a due retry of the same edge is superseded by the fresh one */
        for (size_t k = 0; k < nedge;) {
            if (strcmp(edges[k]->app, o->app) == 0) {
                item_free(edges[k]);
                edges[k] = edges[--nedge];
            } else {
                ++k;
            }
        }
        upd_log_info("propagation: the origins of %s hold generation %" PRIu64 ": purging the edges again", o->app, o->generation);
        edge_cap = nedge + p->nvarnish + 2;
        edges = realloc(edges, edge_cap * sizeof(*edges));
        if (edges == NULL)
            abort();
        nedge = add_edge_items(p, o->app, o->generation, o->tags, edges, nedge);
    }
    run_purges(p, edges, nedge);
    for (size_t i = 0; i < nstate; ++i)
        settle(p, state[i]);
    for (size_t i = 0; i < norigins; ++i)
        settle(p, origins[i]);
    for (size_t i = 0; i < nedge; ++i)
        settle(p, edges[i]);
    free(state);
    free(origins);
    free(edges);
    pthread_mutex_unlock(&p->run_lock);
}

/* ---- the retry thread ---- */

/* @return the earliest due time of a pending item, UINT64_MAX for none; under lock */
static uint64_t
next_due(const upd_propagate_t *p)
{
    uint64_t due = UINT64_MAX;
    for (const item_t *it = p->pending; it != NULL; it = it->next)
        if (it->due_ms < due)
            due = it->due_ms;
    return due;
}

static void *
retry_main(void *arg)
{
    upd_propagate_t *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        uint64_t due = next_due(p);
        if (due <= now_ms()) {
            pthread_mutex_unlock(&p->lock);
            upd_propagate_run_due(p); /* takes run_lock, then lock: never with lock held */
            pthread_mutex_lock(&p->lock);
        } else if (due == UINT64_MAX) {
            pthread_cond_wait(&p->cond, &p->lock);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(due / 1000), .tv_nsec = (long)(due % 1000) * 1000000};
            pthread_cond_timedwait(&p->cond, &p->lock, &ts);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int
upd_propagate_start(upd_propagate_t *p)
{
    if (p->thread_started)
        return 0;
    p->stopping = false;
    int rc = pthread_create(&p->thread, NULL, retry_main, p);
    if (rc != 0) {
        upd_log_error("propagation: cannot start the retry thread: %s", strerror(rc));
        return UPD_EIO;
    }
    p->thread_started = true;
    return 0;
}

void
upd_propagate_stop(upd_propagate_t *p)
{
    if (p == NULL || !p->thread_started)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL); /* a round of retries in progress ends first: bounded by the timeouts */
    p->thread_started = false;
}

size_t
upd_propagate_pending(upd_propagate_t *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->npending;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void
upd_propagate_render_metrics(upd_propagate_t *p, FILE *fp)
{
    pthread_mutex_lock(&p->lock);
    fprintf(fp, "# HELP updraft_propagation_total State writes and purges after a release or rollout change, by kind and "
                "result (first attempts and retries).\n# TYPE updraft_propagation_total counter\n");
    for (int k = 0; k < KIND_COUNT; ++k)
        for (int ok = 1; ok >= 0; --ok)
            fprintf(fp, "updraft_propagation_total{kind=\"%s\",result=\"%s\"} %" PRIu64 "\n", kind_names[k], ok ? "ok" : "failed",
                    p->results[k][ok]);
    fprintf(fp, "# HELP updraft_propagation_retries_total Background retries of failed propagation targets.\n"
                "# TYPE updraft_propagation_retries_total counter\n");
    for (int k = 0; k < KIND_COUNT; ++k)
        fprintf(fp, "updraft_propagation_retries_total{kind=\"%s\"} %" PRIu64 "\n", kind_names[k], p->retries[k]);
    fprintf(fp, "# HELP updraft_propagation_abandoned_total Propagation targets given up after their last retry.\n"
                "# TYPE updraft_propagation_abandoned_total counter\n");
    for (int k = 0; k < KIND_COUNT; ++k)
        fprintf(fp, "updraft_propagation_abandoned_total{kind=\"%s\"} %" PRIu64 "\n", kind_names[k], p->abandoned[k]);
    fprintf(fp, "# HELP updraft_propagation_requests_total HTTP requests of purges (Cloudflare: one per batch of tags).\n"
                "# TYPE updraft_propagation_requests_total counter\n");
    for (int k = KIND_ORIGIN; k < KIND_COUNT; ++k)
        fprintf(fp, "updraft_propagation_requests_total{kind=\"%s\"} %" PRIu64 "\n", kind_names[k], p->requests[k]);
    fprintf(fp, "# HELP updraft_propagation_connections_total Connections the purges had to open (the others reused one kept "
                "open from an earlier purge).\n# TYPE updraft_propagation_connections_total counter\n");
    for (int k = KIND_ORIGIN; k < KIND_COUNT; ++k)
        fprintf(fp, "updraft_propagation_connections_total{kind=\"%s\"} %" PRIu64 "\n", kind_names[k], p->connections[k]);
    uint64_t s3_requests, s3_connections;
    upd_s3_sync_counts(&s3_requests, &s3_connections);
    fprintf(fp,
            "# HELP updraft_object_store_requests_total Blocking object-store requests of this process (state documents, "
            "uploads, read-backs).\n# TYPE updraft_object_store_requests_total counter\nupdraft_object_store_requests_total %" PRIu64
            "\n# HELP updraft_object_store_connections_total Connections those requests had to open (each thread keeps its own "
            "open between requests).\n# TYPE updraft_object_store_connections_total counter\n"
            "updraft_object_store_connections_total %" PRIu64 "\n",
            s3_requests, s3_connections);
    fprintf(fp, "# HELP updraft_propagation_pending Propagation targets waiting for a retry.\n"
                "# TYPE updraft_propagation_pending gauge\nupdraft_propagation_pending %zu\n",
            p->npending);
    pthread_mutex_unlock(&p->lock);
}
