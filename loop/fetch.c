/*
 * Verified fetches. How the bytes are proven (the verification path):
 *
 * - Releases registered since store schema 4 carry a SHA-256 digest per block of integrity.block_size, computed by
 *   the control plane (control/mirror.c) from the same bytes whose size and sha512 it checked and put in the release
 *   record, and stored beside that record in the same write transaction. Each block is checked against its SHA-256
 *   before a reader gets any of it; a block that does not match fails the backend over at that block.
 * - Once every block of a multi-block file matched, the whole-file sha512 is not computed again: the file is the
 *   concatenation of its blocks, each equal to the registered bytes at its offset (SHA-256 is collision-resistant:
 *   a hostile bucket cannot produce other bytes with the same digest), and the block list is bound to the release
 *   whose sha512 the feeds carry by the control plane, which derived both from one pass over the same bytes. So a
 *   second check of the whole would prove nothing the blocks did not; it cost 1.4 CPU-s/GB, most of a fill.
 * - A file of one block or less has no block digests: it is checked whole, with its sha512, before any of it is
 *   handed on (so the sha512 the feeds carry is still what proves it).
 * - Releases registered before schema 4 have XXH3-128 block digests, which are not collision-resistant: those
 *   blocks only find a bad backend early; such a file is still proven by its whole sha512, computed in order as the
 *   blocks arrive, and its last block is released only once the whole matched.
 *
 * The hashing (and, with a sink that has on_write, the copy into the cache file) runs on the hash pool's worker
 * threads (loop/hash_pool.h), not on the loop: the loop only moves bytes from libcurl into block buffers, hands each
 * full block to a worker, and passes blocks on in byte order as their verdicts come back. A fetch pauses its transfer
 * while BLOCKS_IN_FLIGHT blocks are with the workers (one for XXH3 files), so memory stays at a few blocks per fill;
 * an XXH3 file's blocks go to the workers one at a time, since its running sha512 takes them in order.
 */
#include "loop/fetch.h"
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "base/err.h"
#include "base/log.h"
#include "domain/release.h"
#include "loop/hash_pool.h"

#define MAX_BACKENDS 4
/* SHA-256 blocks a fetch may have with the hash threads before it pauses its transfer: enough for two workers to
 * hash while the loop receives the next block, at (BLOCKS_IN_FLIGHT + 1) blocks of memory per fill */
#define BLOCKS_IN_FLIGHT 3

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
    upd_hash_pool_t *hash;
    backend_t b[MAX_BACKENDS];
    size_t n;
    uint32_t breaker_failures, breaker_open_ms;
};

typedef struct st_block_job_t block_job_t;

struct st_upd_fetch_t {
    upd_backends_t *bs;
    char key[512];
    uint64_t size;
    uint8_t sha512[64];
    uint32_t block_size; /* the verification unit: the release's block size, or the whole file */
    upd_block_alg_t alg; /* UPD_BLOCK_NONE: one unit, checked with the sha512 */
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
    uint64_t received; /* bytes of the object taken from the current transfer, from `verified` on */
    uint32_t attempt;  /* bumped when a transfer is abandoned: verdicts of its blocks are dropped */
    /* blocks with the hash threads, in byte order (verdicts may come back out of order) */
    block_job_t *inflight, **inflight_tail;
    size_t ninflight, max_inflight;
    /* XXH3 files: blocks that wait for the one being hashed (the running sha512 takes them one at a time, in order;
     * one chunk from libcurl may complete more than one block) */
    block_job_t *waiting, **waiting_tail;
    size_t nrunning;      /* handed to the pool, not answered yet */
    bool hash_paused;     /* the transfer is held back until a block comes back */
    block_job_t *filling; /* the block being received */
    block_job_t *spare;   /* finished jobs, their buffers reused */
    bool awaiting;        /* the transfer ended; its outcome waits for the blocks in flight */
    upd_s3_outcome_t pending;
    EVP_MD_CTX *sha; /* XXH3 files: the whole file's sha512, updated in block order on the hash threads */
    char path[64];
};

/* One block on its way through a hash thread. */
struct st_block_job_t {
    upd_hash_job_t super;
    upd_fetch_t *f; /* NULL once the fetch has gone: the answer frees the job */
    block_job_t *next;
    block_job_t *wnext; /* in the fetch's waiting list */
    bool submitted;     /* handed to the pool (else waiting, or never run) */
    uint32_t attempt;
    uint64_t off;
    size_t len;
    upd_block_alg_t alg;
    uint8_t expect[64]; /* the block's digest (SHA-256, XXH3-128) or, for UPD_BLOCK_NONE, the sha512 */
    EVP_MD_CTX *whole;  /* XXH3: the running sha512 (the fetch's; one such job in flight at a time) */
    bool last;          /* XXH3: the last block, after which the whole is compared with `sha512` */
    uint8_t sha512[64];
    int (*write)(void *arg, uint64_t off, const uint8_t *p, size_t len);
    void *write_arg;
    bool answered, ok, whole_mismatch, write_failed;
    uint8_t *buf;
};

/* ---- backends and breakers ---- */

upd_backends_t *
upd_backends_create(upd_s3_loop_t *loop, h2o_loop_t *hloop, const upd_s3_backend_t *backends, size_t n, uint32_t breaker_failures,
                    uint32_t breaker_open_ms, uint32_t hash_threads)
{
    if (n > MAX_BACKENDS)
        return NULL;
    upd_backends_t *bs = calloc(1, sizeof(*bs));
    if (bs == NULL)
        return NULL;
    if ((bs->hash = upd_hash_pool_create(hloop, hash_threads)) == NULL) {
        free(bs);
        return NULL;
    }
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
    if (bs == NULL)
        return;
    upd_hash_pool_destroy(bs->hash);
    free(bs);
}

uint32_t
upd_backends_hash_threads(const upd_backends_t *bs)
{
    return upd_hash_pool_threads(bs->hash);
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
    upd_hash_pool_metrics(bs->hash, fp);
}

/* ---- one fetch ---- */

static const upd_s3_get_cb_t get_cb;

/* The length of the block that starts at `off`. */
static size_t
block_len_at(const upd_fetch_t *f, uint64_t off)
{
    uint64_t left = f->size - off;
    return left < f->block_size ? (size_t)left : f->block_size;
}

static void
path_add(upd_fetch_t *f, const char *name)
{
    size_t len = strlen(f->path);
    snprintf(f->path + len, sizeof(f->path) - len, "%s%s", len == 0 ? "" : ">", name);
}

static void
job_free(block_job_t *j)
{
    free(j->buf);
    free(j);
}

/* A job with a buffer for one block, reused when one is spare. */
static block_job_t *
job_get(upd_fetch_t *f)
{
    block_job_t *j = f->spare;
    if (j != NULL) {
        f->spare = j->next;
    } else if ((j = calloc(1, sizeof(*j))) == NULL || (j->buf = malloc(f->block_size != 0 ? f->block_size : 1)) == NULL) {
        free(j);
        return NULL;
    }
    j->next = NULL;
    j->len = 0;
    return j;
}

static void
job_recycle(upd_fetch_t *f, block_job_t *j)
{
    j->next = f->spare;
    f->spare = j;
}

static void
fetch_free(upd_fetch_t *f)
{
    /* blocks still with the hash threads: wait until none uses what the fetch owns (the sha512 context, the sink's
     * file), then leave each job to free itself when its answer arrives */
    for (block_job_t *j = f->inflight, *next; j != NULL; j = next) {
        next = j->next;
        if (!j->submitted) {
            job_free(j); /* waiting: never with the pool */
            continue;
        }
        upd_hash_pool_wait(f->bs->hash, &j->super);
        j->f = NULL;
        if (j->answered)
            job_free(j);
    }
    if (f->filling != NULL)
        job_free(f->filling);
    for (block_job_t *j = f->spare, *next; j != NULL; j = next) {
        next = j->next;
        job_free(j);
    }
    EVP_MD_CTX_free(f->sha);
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
    if (f->filling != NULL) {
        /* a block begun on the last backend: received again from the first unverified byte */
        job_recycle(f, f->filling);
        f->filling = NULL;
    }
    f->received = f->verified;
    f->hash_paused = false;
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

/* ---- on a hash thread ---- */

static void
run_block(upd_hash_job_t *hj)
{
    block_job_t *j = H2O_STRUCT_FROM_MEMBER(block_job_t, super, hj);
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned dl;
    switch (j->alg) {
    case UPD_BLOCK_SHA256:
        j->ok = EVP_Digest(j->buf, j->len, d, &dl, EVP_sha256(), NULL) == 1 && memcmp(d, j->expect, UPD_BLOCK_DIGEST_LEN) == 0;
        break;
    case UPD_BLOCK_XXH3_128: {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(j->buf, j->len));
        j->ok = memcmp(c.digest, j->expect, UPD_BLOCK_DIGEST_LEN_XXH3) == 0;
        /* XXH3 proves nothing against a hostile bucket: the whole sha512 still does, in block order */
        if (j->ok && EVP_DigestUpdate(j->whole, j->buf, j->len) != 1)
            j->ok = false;
        if (j->ok && j->last)
            j->whole_mismatch = EVP_DigestFinal_ex(j->whole, d, &dl) != 1 || memcmp(d, j->sha512, 64) != 0;
        break;
    }
    default:
        /* a file within one block: its sha512 is the check */
        j->ok = EVP_Digest(j->buf, j->len, d, &dl, EVP_sha512(), NULL) == 1 && memcmp(d, j->expect, 64) == 0;
        break;
    }
    if (j->ok && !j->whole_mismatch && j->write != NULL)
        j->write_failed = j->write(j->write_arg, j->off, j->buf, j->len) != 0;
}

/* ---- back on the loop ---- */

static void on_block_done(upd_hash_job_t *hj);
static void transfer_ended(upd_fetch_t *f, const upd_s3_outcome_t *o);

static void
submit(upd_fetch_t *f, block_job_t *j)
{
    j->super.run = run_block;
    j->super.done = on_block_done;
    j->f = f;
    j->attempt = f->attempt;
    j->alg = f->alg;
    j->answered = j->ok = j->whole_mismatch = j->write_failed = false;
    j->whole = NULL;
    j->last = false;
    if (f->alg == UPD_BLOCK_NONE) {
        memcpy(j->expect, f->sha512, 64);
    } else {
        size_t dlen = upd_block_digest_len(f->alg), i = (size_t)(j->off / f->block_size);
        memcpy(j->expect, f->blocks + i * dlen, dlen);
        if (f->alg == UPD_BLOCK_XXH3_128) {
            j->whole = f->sha;
            j->last = j->off + j->len == f->size;
            memcpy(j->sha512, f->sha512, 64);
        }
    }
    j->write = f->sink->on_write;
    j->write_arg = f->arg;
    j->next = NULL;
    *f->inflight_tail = j;
    f->inflight_tail = &j->next;
    ++f->ninflight;
    j->submitted = false;
    if (f->alg == UPD_BLOCK_XXH3_128 && f->nrunning != 0) {
        j->wnext = NULL;
        *f->waiting_tail = j;
        f->waiting_tail = &j->wnext;
        return;
    }
    j->submitted = true;
    ++f->nrunning;
    upd_hash_pool_submit(f->bs->hash, &j->super);
}

/*
 * Hands the next waiting block of an XXH3 file to the pool once none runs. A waiting block of a transfer given up is
 * never run (it would feed the running sha512 bytes that are not the file's): it is marked answered, to be dropped.
 * @return whether such a block was dropped (the caller takes answers from the head again)
 */
static bool
start_waiting(upd_fetch_t *f)
{
    bool dropped = false;
    while (f->waiting != NULL && f->nrunning == 0) {
        block_job_t *j = f->waiting;
        if ((f->waiting = j->wnext) == NULL)
            f->waiting_tail = &f->waiting;
        if (j->attempt != f->attempt) {
            j->answered = true;
            dropped = true;
            continue;
        }
        j->submitted = true;
        ++f->nrunning;
        upd_hash_pool_submit(f->bs->hash, &j->super);
    }
    return dropped;
}

static int
on_data(upd_s3_get_t *get, const uint8_t *p, size_t len, void *arg)
{
    upd_fetch_t *f = arg;
    if (f->sink->should_pause(f->arg, f->verified))
        return UPD_S3_PAUSE;
    if (f->ninflight >= f->max_inflight) {
        /* the hash threads are behind: hold the backend back until a block comes back */
        f->hash_paused = true;
        return UPD_S3_PAUSE;
    }
    while (len > 0) {
        if (f->received == f->size) {
            /* more bytes than the object has */
            f->integrity_abort = true;
            return -1;
        }
        if (f->filling == NULL) {
            if ((f->filling = job_get(f)) == NULL) {
                f->sink_failed = true;
                return -1;
            }
            f->filling->off = f->received;
        }
        block_job_t *j = f->filling;
        size_t want = block_len_at(f, j->off) - j->len, take = len < want ? len : want;
        memcpy(j->buf + j->len, p, take);
        j->len += take;
        f->received += take;
        p += take;
        len -= take;
        if (j->len == block_len_at(f, j->off)) {
            f->filling = NULL;
            submit(f, j);
        }
    }
    return 0;
}

/*
 * Gives up the transfer in progress after a block that failed (or a sink that did): the blocks still with the hash
 * threads are dropped as they come back, and once none is left the transfer counts as ended (on_block_done).
 */
static void
abandon_transfer(upd_fetch_t *f, bool integrity)
{
    ++f->attempt;
    if (integrity)
        f->integrity_abort = true;
    if (f->get != NULL) {
        upd_s3_get_cancel(f->get);
        f->get = NULL;
        /* cancelled: no outcome comes from the transfer, so this is it */
        ++f->bs->b[f->cur].outcomes[UPD_S3_ABORTED];
        f->awaiting = true;
        f->pending = (upd_s3_outcome_t){.kind = UPD_S3_ABORTED};
    }
}

/*
 * A block's verdict. Blocks are passed on in byte order: the answers are taken from the head of the list while they
 * are there. Whatever ends the transfer waits until the last of its blocks is back (awaiting), then decides.
 */
static void
on_block_done(upd_hash_job_t *hj)
{
    block_job_t *j = H2O_STRUCT_FROM_MEMBER(block_job_t, super, hj);
    upd_fetch_t *f = j->f;
    if (f == NULL) {
        job_free(j); /* its fetch has gone */
        return;
    }
    j->answered = true;
    --f->nrunning;
Again:
    while (f->inflight != NULL && f->inflight->answered) {
        j = f->inflight;
        if ((f->inflight = j->next) == NULL)
            f->inflight_tail = &f->inflight;
        --f->ninflight;
        if (j->attempt != f->attempt || f->sink_failed || f->record_inconsistent) {
            job_recycle(f, j); /* from a transfer given up already */
            continue;
        }
        backend_t *b = &f->bs->b[f->cur];
        if (j->write_failed) {
            job_recycle(f, j);
            f->sink_failed = true;
            abandon_transfer(f, false);
            continue;
        }
        if (!j->ok) {
            upd_log_warn("backend %s: %s: block at byte %" PRIu64 " (%zu bytes) does not match its %s", b->conf->name, f->key,
                         j->off, j->len, f->alg == UPD_BLOCK_NONE ? "sha512" : "digest");
            job_recycle(f, j);
            abandon_transfer(f, true);
            continue;
        }
        if (j->whole_mismatch) {
            /* every block matched but the whole does not: the release record itself is inconsistent */
            upd_log_error("object %s: every block verified but the sha512 differs: refusing it", f->key);
            job_recycle(f, j);
            f->record_inconsistent = true;
            abandon_transfer(f, false);
            continue;
        }
        int r = f->sink->on_verified(f->arg, j->off, j->buf, j->len);
        job_recycle(f, j);
        if (r != 0) {
            f->sink_failed = true;
            abandon_transfer(f, false);
            continue;
        }
        f->verified += j->len;
        b->bytes += j->len;
    }
    if (start_waiting(f))
        goto Again;
    if (f->awaiting) {
        if (f->ninflight == 0) {
            f->awaiting = false;
            upd_s3_outcome_t o = f->pending;
            transfer_ended(f, &o); /* may end the fetch */
        }
        return;
    }
    if (f->hash_paused && f->get != NULL && f->ninflight < f->max_inflight) {
        f->hash_paused = false;
        upd_s3_get_resume(f->get);
    }
}

static void
on_get_done(upd_s3_get_t *get, const upd_s3_outcome_t *o, void *arg)
{
    upd_fetch_t *f = arg;
    backend_t *b = &f->bs->b[f->cur];
    f->get = NULL;
    ++b->outcomes[o->kind];
    b->connects += o->connects;
    if (f->ninflight != 0) {
        /* the verdicts of the last blocks decide how this transfer ended */
        f->awaiting = true;
        f->pending = *o;
        return;
    }
    transfer_ended(f, o);
}

/* Whether an empty file is the registered one (no block ever comes for it). */
static bool
empty_file_matches(const upd_fetch_t *f)
{
    uint8_t d[64];
    unsigned dl;
    return EVP_Digest("", 0, d, &dl, EVP_sha512(), NULL) == 1 && memcmp(d, f->sha512, 64) == 0;
}

/* The transfer has ended and every block of it has been answered: the fetch ends or goes on with the next backend. */
static void
transfer_ended(upd_fetch_t *f, const upd_s3_outcome_t *o)
{
    upd_backends_t *bs = f->bs;
    backend_t *b = &bs->b[f->cur];
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
    if (o->kind == UPD_S3_OK && !f->integrity_abort && f->verified == f->size && (f->size != 0 || empty_file_matches(f))) {
        end(f, 0);
        return;
    }

    /* this backend failed this fetch: say why, count it, and go on with the next from the first unverified byte */
    const char *what;
    if (f->integrity_abort || o->kind == UPD_S3_OK) {
        /* a block that failed, a short or overlong body, or an empty file that is not the registered one */
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
    f->inflight_tail = &f->inflight;
    f->waiting_tail = &f->waiting;
    f->nblocks = spec->nblocks;
    if (spec->nblocks != 0) {
        size_t dlen = upd_block_digest_len(spec->block_alg);
        if (dlen == 0 || spec->block_size == 0 || upd_blocks_count(spec->size, spec->block_size) != spec->nblocks) {
            upd_log_error("object %s: its block digests do not fit the file (%zu of %s): refusing it", spec->key, spec->nblocks,
                          upd_block_alg_name(spec->block_alg));
            free(f);
            sink->on_done(arg, UPD_EINTEGRITY, "");
            return NULL;
        }
        f->alg = spec->block_alg;
        f->block_size = spec->block_size;
        if ((f->blocks = malloc(spec->nblocks * dlen)) == NULL)
            goto Fail;
        memcpy(f->blocks, spec->blocks, spec->nblocks * dlen);
    } else {
        /* one unit, the whole file: nothing of it reaches a reader before its sha512 matched */
        f->alg = UPD_BLOCK_NONE;
        f->block_size = spec->size > UINT32_MAX ? UINT32_MAX : (uint32_t)spec->size;
    }
    /* XXH3 files keep a running sha512, which needs its blocks in order: one at a time */
    f->max_inflight = f->alg == UPD_BLOCK_SHA256 ? BLOCKS_IN_FLIGHT : 1;
    if (f->alg == UPD_BLOCK_XXH3_128 && ((f->sha = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(f->sha, EVP_sha512(), NULL) != 1))
        goto Fail;
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
