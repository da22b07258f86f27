#include "loop/fetch.h"
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "base/err.h"
#include "domain/release.h"
#include "base/log.h"

#define MAX_BACKENDS 4

typedef enum { BREAKER_CLOSED = 0, BREAKER_OPEN, BREAKER_HALF_OPEN } breaker_state_t;

typedef struct st_backend_t {
    const upd_s3_backend_t *conf;
    breaker_state_t state;
    uint32_t failures;   /* consecutive */
    uint64_t open_until; /* loop time, ms */
    bool probing;        /* the half-open probe is in flight */
    uint64_t outcomes[UPD_S3_OUTCOME_COUNT];
    uint64_t not_found, auth_errors, server_errors, integrity_failures, breaker_opens, bytes, connects;
    uint64_t failovers_to[MAX_BACKENDS];
} backend_t;

struct st_upd_backends_t {
    upd_s3_loop_t *loop;
    h2o_loop_t *hloop;
    backend_t b[MAX_BACKENDS];
    size_t n;
    uint32_t breaker_failures, breaker_open_ms;
};

struct st_upd_fetch_t {
    upd_backends_t *bs;
    char key[512];
    uint64_t size;
    uint8_t sha512[64];
    uint32_t block_size; /* the verification unit: the release's block size, or the whole file */
    uint8_t *blocks;
    size_t nblocks;
    const upd_fetch_sink_t *sink;
    void *arg;
    upd_s3_get_t *get;
    size_t cur;              /* backend of the transfer in progress */
    bool tried[MAX_BACKENDS];
    bool head_ok;            /* the current transfer's head was acceptable */
    bool integrity_abort;    /* the current transfer was stopped because a block failed */
    bool sink_failed;
    bool record_inconsistent; /* every block verified, the whole sha512 did not */
    bool starting;     /* inside upd_fetch_start: an end is reported after it returns */
    int start_result;  /* the result of an end reached while starting, 1 when none */
    int failures, not_found, integrity, skipped;
    uint64_t verified; /* bytes verified and handed to the sink */
    uint8_t *buf;      /* the block being received */
    size_t buf_len;
    EVP_MD_CTX *sha;
    char path[64];
};

/* ---- backends and breakers ---- */

upd_backends_t *
upd_backends_create(upd_s3_loop_t *loop, const upd_s3_backend_t *backends, size_t n, uint32_t breaker_failures, uint32_t breaker_open_ms)
{
    if (n > MAX_BACKENDS)
        return NULL;
    upd_backends_t *bs = calloc(1, sizeof(*bs));
    if (bs == NULL)
        return NULL;
    bs->loop = loop;
    bs->n = n;
    bs->breaker_failures = breaker_failures;
    bs->breaker_open_ms = breaker_open_ms;
    for (size_t i = 0; i < n; ++i)
        bs->b[i].conf = &backends[i];
    return bs;
}

void
upd_backends_destroy(upd_backends_t *bs)
{
    free(bs);
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether a fetch may use this backend now; in half-open state the first to ask becomes the probe. */
static bool
breaker_allow(upd_backends_t *bs, backend_t *b)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        return true;
    case BREAKER_OPEN:
        if (now_ms() < b->open_until)
            return false;
        b->state = BREAKER_HALF_OPEN;
        b->probing = false;
        /* fall through */
    case BREAKER_HALF_OPEN:
        if (b->probing)
            return false;
        b->probing = true;
        upd_log_info("backend %s: circuit half-open, probing", b->conf->name);
        return true;
    }
    return false;
}

static void
breaker_success(backend_t *b)
{
    if (b->state != BREAKER_CLOSED)
        upd_log_info("backend %s: circuit closed: it answers again", b->conf->name);
    b->state = BREAKER_CLOSED;
    b->failures = 0;
    b->probing = false;
}

static void
breaker_failure(upd_backends_t *bs, backend_t *b)
{
    ++b->failures;
    if (b->state == BREAKER_HALF_OPEN || (b->state == BREAKER_CLOSED && b->failures >= bs->breaker_failures)) {
        if (b->state == BREAKER_CLOSED)
            upd_log_warn("backend %s: circuit open after %u consecutive failures; retrying in %u ms", b->conf->name, b->failures,
                         bs->breaker_open_ms);
        else
            upd_log_warn("backend %s: probe failed; circuit open for %u ms more", b->conf->name, bs->breaker_open_ms);
        b->state = BREAKER_OPEN;
        b->open_until = now_ms() + bs->breaker_open_ms;
        b->probing = false;
        ++b->breaker_opens;
    }
}

bool
upd_backends_healthy(const upd_backends_t *bs, char *why, size_t cap)
{
    size_t open = 0;
    for (size_t i = 0; i < bs->n; ++i)
        if (bs->b[i].state == BREAKER_OPEN && now_ms() < bs->b[i].open_until)
            ++open;
    if (bs->n != 0 && open == bs->n) {
        snprintf(why, cap, "every object-storage backend failed lately (circuits open)");
        return false;
    }
    return true;
}

void
upd_backends_metrics(const upd_backends_t *bs, FILE *fp)
{
    fprintf(fp, "# HELP updraft_backend_requests_total Object-storage GETs by backend and how they ended.\n"
                "# TYPE updraft_backend_requests_total counter\n");
    for (size_t i = 0; i < bs->n; ++i)
        for (int k = 0; k < UPD_S3_OUTCOME_COUNT; ++k)
            fprintf(fp, "updraft_backend_requests_total{backend=\"%s\",outcome=\"%s\"} %" PRIu64 "\n", bs->b[i].conf->name,
                    upd_s3_outcome_name((upd_s3_outcome_kind_t)k), bs->b[i].outcomes[k]);
    fprintf(fp, "# HELP updraft_backend_errors_total Object-storage failures by backend and kind.\n"
                "# TYPE updraft_backend_errors_total counter\n");
    for (size_t i = 0; i < bs->n; ++i) {
        const backend_t *b = &bs->b[i];
        fprintf(fp, "updraft_backend_errors_total{backend=\"%s\",kind=\"auth\"} %" PRIu64 "\n", b->conf->name, b->auth_errors);
        fprintf(fp, "updraft_backend_errors_total{backend=\"%s\",kind=\"server\"} %" PRIu64 "\n", b->conf->name, b->server_errors);
        fprintf(fp, "updraft_backend_errors_total{backend=\"%s\",kind=\"not_found\"} %" PRIu64 "\n", b->conf->name, b->not_found);
        fprintf(fp, "updraft_backend_errors_total{backend=\"%s\",kind=\"integrity\"} %" PRIu64 "\n", b->conf->name,
                b->integrity_failures);
    }
    fprintf(fp, "# HELP updraft_backend_failovers_total Fetches that moved from one backend to another.\n"
                "# TYPE updraft_backend_failovers_total counter\n");
    for (size_t i = 0; i < bs->n; ++i)
        for (size_t j = 0; j < bs->n; ++j)
            if (i != j)
                fprintf(fp, "updraft_backend_failovers_total{from=\"%s\",to=\"%s\"} %" PRIu64 "\n", bs->b[i].conf->name,
                        bs->b[j].conf->name, bs->b[i].failovers_to[j]);
    fprintf(fp, "# HELP updraft_backend_breaker_state Circuit breaker per backend: 0 closed, 1 open, 2 half-open.\n"
                "# TYPE updraft_backend_breaker_state gauge\n");
    for (size_t i = 0; i < bs->n; ++i)
        fprintf(fp, "updraft_backend_breaker_state{backend=\"%s\"} %d\n", bs->b[i].conf->name, (int)bs->b[i].state);
    fprintf(fp, "# HELP updraft_backend_breaker_opens_total Times a backend's circuit opened.\n"
                "# TYPE updraft_backend_breaker_opens_total counter\n");
    for (size_t i = 0; i < bs->n; ++i)
        fprintf(fp, "updraft_backend_breaker_opens_total{backend=\"%s\"} %" PRIu64 "\n", bs->b[i].conf->name, bs->b[i].breaker_opens);
    fprintf(fp, "# HELP updraft_backend_connections_total Connections opened to each backend for artifact GETs (the rest reused one).\n"
                "# TYPE updraft_backend_connections_total counter\n");
    for (size_t i = 0; i < bs->n; ++i)
        fprintf(fp, "updraft_backend_connections_total{backend=\"%s\"} %" PRIu64 "\n", bs->b[i].conf->name, bs->b[i].connects);
    fprintf(fp, "# HELP updraft_backend_bytes_total Verified bytes received per backend.\n# TYPE updraft_backend_bytes_total counter\n");
    for (size_t i = 0; i < bs->n; ++i)
        fprintf(fp, "updraft_backend_bytes_total{backend=\"%s\"} %" PRIu64 "\n", bs->b[i].conf->name, bs->b[i].bytes);
}

/* ---- one fetch ---- */

static const upd_s3_get_cb_t get_cb;

static size_t
block_len(const upd_fetch_t *f)
{
    uint64_t left = f->size - f->verified;
    return left < f->block_size ? (size_t)left : f->block_size;
}

static void
path_add(upd_fetch_t *f, const char *name)
{
    size_t len = strlen(f->path);
    snprintf(f->path + len, sizeof(f->path) - len, "%s%s", len == 0 ? "" : ">", name);
}

static void
fetch_free(upd_fetch_t *f)
{
    EVP_MD_CTX_free(f->sha);
    free(f->buf);
    free(f->blocks);
    free(f);
}

static void
end(upd_fetch_t *f, int result)
{
    if (f->starting) {
        f->start_result = result;
        return;
    }
    const upd_fetch_sink_t *sink = f->sink;
    void *arg = f->arg;
    char path[sizeof(f->path)];
    memcpy(path, f->path, sizeof(path));
    fetch_free(f);
    sink->on_done(arg, result, path);
}

/* Starts the next backend that is untried and allowed; ends the fetch when none is left. */
static void
next_backend(upd_fetch_t *f)
{
    upd_backends_t *bs = f->bs;
    for (size_t i = 0; i < bs->n; ++i) {
        if (f->tried[i])
            continue;
        f->tried[i] = true;
        if (!breaker_allow(bs, &bs->b[i])) {
            ++f->skipped;
            continue;
        }
        f->cur = i;
        f->head_ok = false;
        f->integrity_abort = false;
        f->buf_len = 0;
        path_add(f, bs->b[i].conf->name);
        if ((f->get = upd_s3_get_start(bs->loop, bs->b[i].conf, f->key, f->verified, NULL, 0, &get_cb, f)) != NULL)
            return;
        ++f->failures;
    }
    int result;
    if (f->sink_failed)
        result = UPD_EIO;
    else if (f->failures == 0 && f->integrity == 0 && f->not_found == 0)
        result = UPD_EUNAVAILABLE; /* every breaker open: nothing was tried */
    else if (f->failures == 0 && f->integrity == 0)
        result = UPD_ENOTFOUND;
    else if (f->failures == 0)
        result = UPD_EINTEGRITY;
    else
        result = UPD_EBACKEND;
    upd_log_warn("object %s: no backend could serve it (%s, %" PRIu64 " of %" PRIu64 " bytes verified, via %s)", f->key,
                 upd_strerror(result), f->verified, f->size, f->path[0] ? f->path : "none");
    end(f, result);
}

static int
on_head(upd_s3_get_t *get, int status, uint64_t start, uint64_t total, void *arg)
{
    upd_fetch_t *f = arg;
    backend_t *b = &f->bs->b[f->cur];
    if (start != f->verified || total != f->size || (f->verified == 0 && status != 200 && status != 206)) {
        upd_log_warn("backend %s: %s: answered %d for bytes %" PRIu64 "-/%" PRIu64 " with %" PRIu64 "-/%" PRIu64
                     ": not the registered object",
                     b->conf->name, f->key, status, f->verified, f->size, start, total);
        f->integrity_abort = true;
        return -1;
    }
    /* the backend answers: that is what the breaker tracks */
    breaker_success(b);
    f->head_ok = true;
    return 0;
}

static bool
verify_block(upd_fetch_t *f)
{
    if (f->nblocks == 0) {
        /* a file within one block: its sha512 is the check */
        uint8_t d[64];
        unsigned dl;
        EVP_Digest(f->buf, f->buf_len, d, &dl, EVP_sha512(), NULL);
        return memcmp(d, f->sha512, 64) == 0;
    }
    size_t i = (size_t)(f->verified / f->block_size);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(f->buf, f->buf_len));
    return i < f->nblocks && memcmp(c.digest, f->blocks + i * UPD_BLOCK_DIGEST_LEN, UPD_BLOCK_DIGEST_LEN) == 0;
}

static int
on_data(upd_s3_get_t *get, const uint8_t *p, size_t len, void *arg)
{
    upd_fetch_t *f = arg;
    if (f->sink->should_pause(f->arg, f->verified))
        return UPD_S3_PAUSE;
    backend_t *b = &f->bs->b[f->cur];
    while (len > 0) {
        size_t want = block_len(f) - f->buf_len;
        if (want == 0) {
            /* more bytes than the object has */
            f->integrity_abort = true;
            return -1;
        }
        size_t take = len < want ? len : want;
        memcpy(f->buf + f->buf_len, p, take);
        f->buf_len += take;
        p += take;
        len -= take;
        if (f->buf_len < block_len(f))
            continue;
        if (!verify_block(f)) {
            upd_log_warn("backend %s: %s: block at byte %" PRIu64 " (%zu bytes) does not match its digest", b->conf->name, f->key,
                         f->verified, f->buf_len);
            f->integrity_abort = true;
            return -1;
        }
        if (f->nblocks != 0) {
            EVP_DigestUpdate(f->sha, f->buf, f->buf_len);
            if (f->verified + f->buf_len == f->size) {
                /* the last block: the whole must match before any reader gets it */
                uint8_t d[64];
                unsigned dl;
                EVP_DigestFinal_ex(f->sha, d, &dl);
                if (memcmp(d, f->sha512, 64) != 0) {
                    /* every block matched but the whole does not: the release record itself is inconsistent */
                    upd_log_error("object %s: every block verified but the sha512 differs: refusing it", f->key);
                    f->record_inconsistent = true;
                    return -1;
                }
            }
        }
        if (f->sink->on_verified(f->arg, f->verified, f->buf, f->buf_len) != 0) {
            f->sink_failed = true;
            return -1;
        }
        f->verified += f->buf_len;
        b->bytes += f->buf_len;
        f->buf_len = 0;
    }
    return 0;
}

static void
on_get_done(upd_s3_get_t *get, const upd_s3_outcome_t *o, void *arg)
{
    upd_fetch_t *f = arg;
    upd_backends_t *bs = f->bs;
    backend_t *b = &bs->b[f->cur];
    f->get = NULL;
    ++b->outcomes[o->kind];
    b->connects += o->connects;

    if (f->sink_failed) {
        end(f, UPD_EIO);
        return;
    }
    if (f->record_inconsistent) {
        /* no backend can help: the digests recorded at registration contradict each other */
        ++b->integrity_failures;
        end(f, UPD_EINTEGRITY);
        return;
    }
    if (o->kind == UPD_S3_OK && f->verified == f->size && !(f->size == 0 && !verify_block(f))) {
        end(f, 0);
        return;
    }

    /* this backend failed this fetch: say why, count it, and go on with the next from the first unverified byte */
    const char *what;
    if (f->integrity_abort || (o->kind == UPD_S3_OK && f->verified != f->size)) {
        ++b->integrity_failures;
        ++f->integrity;
        what = "bytes that do not verify";
    } else if (o->kind == UPD_S3_HTTP && o->status == 404) {
        ++b->not_found;
        ++f->not_found;
        breaker_success(b); /* a 404 is an answer: the backend is up */
        what = "404 (not there)";
    } else {
        if (o->kind == UPD_S3_HTTP && (o->status == 401 || o->status == 403)) {
            ++b->auth_errors;
            upd_log_error("backend %s: GET %s: authentication failed: %s (check object_store.%s credentials)", b->conf->name,
                          f->key, o->message, b->conf->name);
        } else if (o->kind == UPD_S3_HTTP) {
            ++b->server_errors;
        }
        ++f->failures;
        breaker_failure(bs, b);
        what = upd_s3_outcome_name(o->kind);
    }
    /* a probe that ended on an integrity failure or a 404 leaves the breaker half-open with no probe: let another try */
    if (b->state == BREAKER_HALF_OPEN)
        b->probing = false;
    f->buf_len = 0;
    upd_log_warn("backend %s: GET %s from byte %" PRIu64 ": %s%s%s", b->conf->name, f->key, f->verified, what,
                 o->message[0] ? ": " : "", o->message);
    for (size_t i = 0; i < bs->n; ++i) {
        if (!f->tried[i]) {
            ++b->failovers_to[i];
            upd_log_warn("object %s: continuing from backend %s at byte %" PRIu64, f->key, bs->b[i].conf->name, f->verified);
            break;
        }
    }
    next_backend(f);
}

static const upd_s3_get_cb_t get_cb = {on_head, on_data, on_get_done};

upd_fetch_t *
upd_fetch_start(upd_backends_t *bs, const upd_fetch_spec_t *spec, const upd_fetch_sink_t *sink, void *arg)
{
    upd_fetch_t *f = calloc(1, sizeof(*f));
    if (f == NULL || strlen(spec->key) >= sizeof(f->key))
        goto Fail;
    f->bs = bs;
    strcpy(f->key, spec->key);
    f->size = spec->size;
    memcpy(f->sha512, spec->sha512, 64);
    f->nblocks = spec->nblocks;
    if (spec->nblocks != 0) {
        f->block_size = spec->block_size;
        if ((f->blocks = malloc(spec->nblocks * UPD_BLOCK_DIGEST_LEN)) == NULL)
            goto Fail;
        memcpy(f->blocks, spec->blocks, spec->nblocks * UPD_BLOCK_DIGEST_LEN);
    } else {
        /* one unit, the whole file: nothing of it reaches a reader before its sha512 matched */
        f->block_size = spec->size > UINT32_MAX ? UINT32_MAX : (uint32_t)spec->size;
    }
    if ((f->buf = malloc(f->block_size != 0 ? f->block_size : 1)) == NULL || (f->sha = EVP_MD_CTX_new()) == NULL)
        goto Fail;
    EVP_DigestInit_ex(f->sha, EVP_sha512(), NULL);
    f->sink = sink;
    f->arg = arg;
    f->starting = true;
    f->start_result = 1;
    next_backend(f);
    f->starting = false;
    if (f->start_result != 1) {
        /* ended before any transfer started (every breaker open): report it now, as documented */
        int result = f->start_result;
        char path[sizeof(f->path)];
        memcpy(path, f->path, sizeof(path));
        fetch_free(f);
        sink->on_done(arg, result, path);
        return NULL;
    }
    return f;
Fail:
    if (f != NULL)
        fetch_free(f);
    sink->on_done(arg, UPD_ENOMEM, "");
    return NULL;
}

const char *
upd_fetch_path(const upd_fetch_t *f)
{
    return f->path;
}

void
upd_fetch_resume(upd_fetch_t *f)
{
    if (f->get != NULL)
        upd_s3_get_resume(f->get);
}

void
upd_fetch_cancel(upd_fetch_t *f)
{
    if (f->get != NULL)
        upd_s3_get_cancel(f->get);
    fetch_free(f);
}
