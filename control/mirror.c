/*
 * A release's files before registration: hashed from the staging directory or from the backends, and put on every
 * object-storage backend. The origin serves a file from R2 and falls back to the S3 mirror, verifying the bytes against
 * the digests computed here, so both must hold exactly the registered bytes before any client is offered them.
 *
 * Two passes: first every staged file is hashed and checked against its declaration (no network, so a wrong
 * declaration is refused before anything is uploaded), then each file goes to the backends in order.
 */
#include "control/mirror.h"
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"
#include "storage/localdir.h"

#define READ_CHUNK (1 << 20)
#define CONTENT_TYPE "application/octet-stream"
#define KEY_MAX (UPD_ID_MAX + UPD_VERSION_MAX + UPD_FILENAME_MAX + 32) /* APP/VERSION/NAME.blockmap */

/* ---- digests: everything registration needs, in one pass over the bytes ---- */

typedef struct {
    EVP_MD_CTX *sha512, *sha1, *sha256;
    EVP_MD_CTX *block; /* SHA-256 of the current block; NULL: no block digests wanted */
    uint32_t block_size;
    uint32_t in_block; /* bytes of the current block so far */
    uint64_t size;
    uint64_t limit;    /* refuse more bytes than this (a backend's copy longer than declared) */
    uint8_t *blocks;
    size_t nblocks, cap;
    bool over, toobig;
} digest_t;

typedef struct {
    uint64_t size;
    char sha512[UPD_SHA512_B64_LEN + 1];
    char sha1[UPD_SHA1_HEX_LEN + 1];
    char sha256[65];
    uint8_t *blocks; /* owned; NULL when the size is not over one block */
    uint32_t nblocks;
} digest_out_t;

static void
digest_init(digest_t *d, uint32_t block_size, uint64_t limit)
{
    memset(d, 0, sizeof(*d));
    if ((d->sha512 = EVP_MD_CTX_new()) == NULL || (d->sha1 = EVP_MD_CTX_new()) == NULL || (d->sha256 = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestInit_ex(d->sha512, EVP_sha512(), NULL) != 1 || EVP_DigestInit_ex(d->sha1, EVP_sha1(), NULL) != 1 ||
        EVP_DigestInit_ex(d->sha256, EVP_sha256(), NULL) != 1)
        abort();
    if (block_size != 0) {
        if ((d->block = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(d->block, EVP_sha256(), NULL) != 1)
            abort();
        d->block_size = block_size;
    }
    d->limit = limit;
}

static void
block_done(digest_t *d)
{
    if (d->nblocks == UPD_BLOCKS_MAX) {
        d->toobig = true;
        return;
    }
    if (d->nblocks == d->cap) {
        d->cap = d->cap != 0 ? d->cap * 2 : 64;
        if ((d->blocks = realloc(d->blocks, d->cap * UPD_BLOCK_DIGEST_LEN)) == NULL)
            abort();
    }
    unsigned int len;
    if (EVP_DigestFinal_ex(d->block, d->blocks + d->nblocks++ * UPD_BLOCK_DIGEST_LEN, &len) != 1 ||
        EVP_DigestInit_ex(d->block, EVP_sha256(), NULL) != 1)
        abort();
    d->in_block = 0;
}

/* @return 0, or -1 past the limit or the block cap (nothing more is hashed) */
static int
digest_update(digest_t *d, const void *data, size_t len)
{
    if (d->over || d->toobig)
        return -1;
    if (len > d->limit - d->size) {
        d->over = true;
        return -1;
    }
    EVP_DigestUpdate(d->sha512, data, len);
    EVP_DigestUpdate(d->sha1, data, len);
    EVP_DigestUpdate(d->sha256, data, len);
    d->size += len;
    const uint8_t *p = data;
    while (d->block != NULL && len > 0) {
        size_t take = d->block_size - d->in_block;
        if (take > len)
            take = len;
        EVP_DigestUpdate(d->block, p, take);
        d->in_block += (uint32_t)take;
        p += take;
        len -= take;
        if (d->in_block == d->block_size)
            block_done(d);
    }
    return d->toobig ? -1 : 0;
}

static void
digest_final(digest_t *d, digest_out_t *o)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len;
    memset(o, 0, sizeof(*o));
    o->size = d->size;
    EVP_DigestFinal_ex(d->sha512, md, &len);
    EVP_EncodeBlock((unsigned char *)o->sha512, md, 64);
    EVP_DigestFinal_ex(d->sha1, md, &len);
    upd_hex_encode(md, 20, o->sha1);
    EVP_DigestFinal_ex(d->sha256, md, &len);
    upd_hex_encode(md, 32, o->sha256);
    if (d->block != NULL && d->in_block != 0)
        block_done(d);
    /* a file of one block or less has no block digests: the origin checks it whole against the sha512 */
    if (d->block != NULL && !d->toobig && upd_blocks_count(d->size, d->block_size) != 0) {
        o->blocks = d->blocks;
        o->nblocks = (uint32_t)d->nblocks;
        d->blocks = NULL;
    }
}

static void
digest_dispose(digest_t *d)
{
    EVP_MD_CTX_free(d->sha512);
    EVP_MD_CTX_free(d->sha1);
    EVP_MD_CTX_free(d->sha256);
    EVP_MD_CTX_free(d->block);
    free(d->blocks);
    memset(d, 0, sizeof(*d));
}

/* Hashes a whole descriptor. @return 0, or an errno value */
static int
digest_fd(int fd, digest_t *d, digest_out_t *o)
{
    char *buf = malloc(READ_CHUNK);
    if (buf == NULL)
        abort();
    ssize_t n;
    int ret = 0;
    while ((n = read(fd, buf, READ_CHUNK)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ret = errno;
            break;
        }
        if (digest_update(d, buf, (size_t)n) != 0)
            break; /* toobig: reported by the caller */
    }
    free(buf);
    if (ret == 0)
        digest_final(d, o);
    return ret;
}

static int
sink_digest(const void *data, size_t len, void *arg)
{
    return digest_update(arg, data, len);
}

/* ---- per-release state ---- */

typedef struct {
    int fd;          /* the staged copy, kept open from hashing to uploading; -1 when not staged */
    uint64_t size;
    char sha512[UPD_SHA512_B64_LEN + 1];
    char sha256[65];
} staged_t;

typedef struct {
    upd_control_t *c;
    const upd_release_t *rel;
    json_t *actions; /* {"r2": [...], "s3": [...]} */
    upd_reason_t *reason;
} mirror_t;

static void
object_key(const upd_release_t *rel, const char *name, char *key, size_t cap)
{
    snprintf(key, cap, "%s/%s/%s", rel->app, rel->version, name);
}

/* A backend failed or refused (anything but the answers the flow expects): logged. */
static int
backend_fail(mirror_t *m, size_t i, const char *name, const char *op, const char *key, const upd_s3_result_t *res)
{
    upd_log_error("object storage: %s %s: %s", op, key, res->message);
    return upd_reason_set(m->reason, UPD_EBACKEND, "backend_error", "files[%zu] %s: %s %s: %s", i, name, op, key, res->message);
}

static void
record(mirror_t *m, const upd_s3_backend_t *b, const char *name, const char *action, uint64_t bytes)
{
    json_t *list = json_object_get(m->actions, b->name);
    if (list == NULL) {
        list = json_array();
        json_object_set_new(m->actions, b->name, list);
    }
    json_array_append_new(list, json_pack("{s:s, s:s, s:I}", "file", name, "action", action, "bytes", (json_int_t)bytes));
}

/* ---- first pass: the staging directory ---- */

/*
 * Opens and hashes STAGING/APP/VERSION/NAME. @return 0 with s->fd open and *d filled, 0 with s->fd -1 when it is not
 * there (ENOENT; anything that cannot be opened when optional), or a refusal: a negative UPD_E* code, m->reason filled
 */
static int
stage_open(mirror_t *m, size_t i, const char *name, uint32_t block_size, bool optional, staged_t *s, digest_out_t *d)
{
    const upd_release_t *rel = m->rel;
    struct stat st;
    char key[KEY_MAX];
    object_key(rel, name, key, sizeof(key));
    s->fd = upd_localdir_open(m->c->storage_fd, rel->app, rel->version, name, &st);
    if (s->fd < 0) {
        if (errno == ENOENT || optional)
            return 0;
        return upd_reason_set(m->reason, UPD_EMISMATCH, "file_missing", "files[%zu] %s: not in storage at %s (%s)", i, name, key,
                              errno == ELOOP    ? "a symbolic link"
                              : errno == EISDIR ? "not a regular file"
                                                : strerror(errno));
    }
    digest_t dg;
    digest_init(&dg, block_size, UINT64_MAX);
    int e = digest_fd(s->fd, &dg, d);
    bool toobig = dg.toobig;
    digest_dispose(&dg);
    if (e != 0)
        return upd_reason_set(m->reason, UPD_EIO, "storage_error", "files[%zu] %s: cannot read from storage: %s", i, name,
                              strerror(e));
    if (toobig)
        return upd_reason_set(m->reason, UPD_ETOOBIG, "too_big", "files[%zu] %s: more than %u blocks of %" PRIu32 " bytes", i, name,
                              UPD_BLOCKS_MAX, block_size);
    s->size = d->size;
    memcpy(s->sha512, d->sha512, sizeof(s->sha512));
    memcpy(s->sha256, d->sha256, sizeof(s->sha256));
    return 0;
}

static int
stage_file(mirror_t *m, size_t i, upd_file_t *f, staged_t *s)
{
    digest_out_t d;
    int err = stage_open(m, i, f->name, (uint32_t)m->c->conf->block_size, false, s, &d);
    if (err != 0 || s->fd < 0)
        return err;
    if (d.size != f->size) {
        free(d.blocks);
        return upd_reason_set(m->reason, UPD_EMISMATCH, "size_mismatch",
                              "files[%zu] %s: size is %" PRIu64 " in storage, %" PRIu64 " declared", i, f->name, d.size, f->size);
    }
    if (strcmp(d.sha512, f->sha512) != 0) {
        free(d.blocks);
        return upd_reason_set(m->reason, UPD_EMISMATCH, "checksum_mismatch",
                              "files[%zu] %s: sha512 of the stored bytes differs from the declared one", i, f->name);
    }
    memcpy(f->sha1, d.sha1, sizeof(f->sha1));
    free(f->blocks);
    f->blocks = d.blocks;
    f->nblocks = d.nblocks;
    f->block_size = d.nblocks != 0 ? (uint32_t)m->c->conf->block_size : 0;
    f->block_alg = d.nblocks != 0 ? UPD_BLOCK_SHA256 : UPD_BLOCK_NONE;
    return 0;
}

/*
 * FILE.blockmap beside FILE (electron-updater's differential download): its size and sha512 when staged. One that
 * cannot be opened (a symbolic link, say) counts as absent, as it always has.
 */
static int
stage_blockmap(mirror_t *m, size_t i, upd_file_t *f, staged_t *s)
{
    char bm_name[UPD_FILENAME_MAX + 16];
    snprintf(bm_name, sizeof(bm_name), "%s.blockmap", f->name);
    digest_out_t d;
    int err = stage_open(m, i, bm_name, 0, true, s, &d);
    if (err != 0 || s->fd < 0)
        return err;
    f->blockmap_size = (int64_t)d.size;
    memcpy(f->blockmap_sha512, d.sha512, sizeof(f->blockmap_sha512));
    return 0;
}

/* ---- second pass: the backends ---- */

/*
 * Reads an object through the digest. @return 0 with *res the answer (check res->status; d filled on 2xx), 1 when the
 * copy is longer than limit, or a refusal (too many blocks, transport failure): a negative UPD_E* code
 */
static int
fetch(mirror_t *m, size_t i, const char *name, const upd_s3_backend_t *b, const char *key, uint32_t block_size, uint64_t limit,
      upd_s3_result_t *res, digest_out_t *d)
{
    digest_t dg;
    digest_init(&dg, block_size, limit);
    int err = upd_s3_get(b, &m->c->timeouts, key, sink_digest, &dg, res);
    int ret = 0;
    memset(d, 0, sizeof(*d));
    if (dg.toobig)
        ret = upd_reason_set(m->reason, UPD_ETOOBIG, "too_big", "files[%zu] %s: more than %u blocks of %" PRIu32 " bytes on %s", i,
                             name, UPD_BLOCKS_MAX, block_size, b->name);
    else if (dg.over)
        ret = 1;
    else if (err != 0)
        ret = backend_fail(m, i, name, "GET", key, res);
    else if (res->status >= 200 && res->status <= 299)
        digest_final(&dg, d);
    digest_dispose(&dg);
    return ret;
}

/*
 * A staged object onto one backend: HEAD; absent → PUT (signed with the payload's SHA-256); present → read back and
 * compared with the staged bytes. @return 0 or a refusal (a negative UPD_E* code)
 */
static int
push(mirror_t *m, size_t i, const char *name, const upd_s3_backend_t *b, const staged_t *s)
{
    char key[KEY_MAX];
    object_key(m->rel, name, key, sizeof(key));
    upd_s3_result_t res;
    if (upd_s3_head(b, &m->c->timeouts, key, &res) != 0)
        return backend_fail(m, i, name, "HEAD", key, &res);
    if (res.status == 404) {
        if (upd_s3_put_fd(b, &m->c->timeouts, key, s->fd, s->size, s->sha256, CONTENT_TYPE, &res) != 0 || res.status < 200 ||
            res.status > 299)
            return backend_fail(m, i, name, "PUT", key, &res);
        upd_log_info("object storage: uploaded %s to %s (%" PRIu64 " bytes)", key, b->name, s->size);
        record(m, b, name, "uploaded", s->size);
        return 0;
    }
    if (res.status != 200)
        return backend_fail(m, i, name, "HEAD", key, &res);
    /* a copy of another length differs without reading it */
    if (res.content_length == s->size) {
        digest_out_t d;
        int r = fetch(m, i, name, b, key, 0, s->size, &res, &d);
        if (r < 0)
            return r;
        if (r == 0 && !(res.status >= 200 && res.status <= 299))
            return backend_fail(m, i, name, "GET", key, &res);
        if (r == 0 && d.size == s->size && strcmp(d.sha512, s->sha512) == 0) {
            record(m, b, name, "verified", s->size);
            return 0;
        }
    }
    upd_log_warn("object storage: %s on %s differs from the staged copy", key, b->name);
    return upd_reason_set(m->reason, UPD_EMISMATCH, "backend_mismatch",
                          "files[%zu] %s: the copy on %s at %s differs from the staged one", i, name, b->name, key);
}

/* A file that is not staged: every backend's copy is read and must be the declared bytes. */
static int
check_remote_file(mirror_t *m, size_t i, upd_file_t *f)
{
    char key[KEY_MAX];
    object_key(m->rel, f->name, key, sizeof(key));
    for (size_t k = 0; k < m->c->nbackends; ++k) {
        const upd_s3_backend_t *b = &m->c->backends[k];
        upd_s3_result_t res;
        digest_out_t d;
        int r = fetch(m, i, f->name, b, key, (uint32_t)m->c->conf->block_size, f->size, &res, &d);
        if (r < 0)
            return r;
        if (r == 0 && res.status == 404 && strcmp(res.code, "NoSuchBucket") != 0)
            return upd_reason_set(m->reason, UPD_EMISMATCH, "file_missing",
                                  "files[%zu] %s: neither staged nor on %s (%s): upload it to every backend or stage it", i,
                                  f->name, b->name, key);
        if (r == 0 && !(res.status >= 200 && res.status <= 299))
            return backend_fail(m, i, f->name, "GET", key, &res);
        if (r == 1 || d.size != f->size || strcmp(d.sha512, f->sha512) != 0) {
            free(d.blocks);
            upd_log_warn("object storage: %s on %s differs from the declared file", key, b->name);
            return upd_reason_set(m->reason, UPD_EMISMATCH, "backend_mismatch",
                                  "files[%zu] %s: the copy on %s at %s differs from the declared size and sha512", i, f->name,
                                  b->name, key);
        }
        if (k == 0) {
            /* equal sha512, equal bytes: the first copy's digests are every copy's */
            memcpy(f->sha1, d.sha1, sizeof(f->sha1));
            free(f->blocks);
            f->blocks = d.blocks;
            f->nblocks = d.nblocks;
            f->block_size = d.nblocks != 0 ? (uint32_t)m->c->conf->block_size : 0;
            f->block_alg = d.nblocks != 0 ? UPD_BLOCK_SHA256 : UPD_BLOCK_NONE;
        } else {
            free(d.blocks);
        }
        record(m, b, f->name, "verified", d.size);
    }
    return 0;
}

/* A blockmap that is not staged: taken from the backends when every one has the same, none when none has one. */
static int
check_remote_blockmap(mirror_t *m, size_t i, upd_file_t *f)
{
    char bm_name[UPD_FILENAME_MAX + 16], key[KEY_MAX];
    snprintf(bm_name, sizeof(bm_name), "%s.blockmap", f->name);
    object_key(m->rel, bm_name, key, sizeof(key));
    f->blockmap_size = -1;
    f->blockmap_sha512[0] = '\0';
    const char *absent_on = NULL, *present_on = NULL;
    for (size_t k = 0; k < m->c->nbackends; ++k) {
        const upd_s3_backend_t *b = &m->c->backends[k];
        upd_s3_result_t res;
        digest_out_t d;
        /* the first copy found sets the length the others may have */
        uint64_t limit = present_on != NULL ? (uint64_t)f->blockmap_size : UINT64_MAX;
        int r = fetch(m, i, bm_name, b, key, 0, limit, &res, &d);
        if (r < 0)
            return r;
        if (r == 0 && res.status == 404 && strcmp(res.code, "NoSuchBucket") != 0) {
            absent_on = absent_on != NULL ? absent_on : b->name;
        } else if (r == 0 && !(res.status >= 200 && res.status <= 299)) {
            return backend_fail(m, i, bm_name, "GET", key, &res);
        } else if (present_on == NULL) {
            present_on = b->name;
            f->blockmap_size = (int64_t)d.size;
            memcpy(f->blockmap_sha512, d.sha512, sizeof(f->blockmap_sha512));
        } else if (r == 1 || d.size != (uint64_t)f->blockmap_size || strcmp(d.sha512, f->blockmap_sha512) != 0) {
            return upd_reason_set(m->reason, UPD_EMISMATCH, "backend_mismatch",
                                  "files[%zu] %s: the copy on %s at %s differs from the one on %s", i, bm_name, b->name, key,
                                  present_on);
        }
        if (present_on != NULL && absent_on != NULL)
            return upd_reason_set(m->reason, UPD_EMISMATCH, "file_missing",
                                  "files[%zu] %s: on %s but not on %s (%s), and not staged", i, bm_name, present_on, absent_on,
                                  key);
    }
    if (present_on != NULL)
        for (size_t k = 0; k < m->c->nbackends; ++k)
            record(m, &m->c->backends[k], bm_name, "verified", (uint64_t)f->blockmap_size);
    return 0;
}

int
upd_mirror_release(upd_control_t *c, upd_release_t *rel, json_t **backends, upd_reason_t *reason)
{
    staged_t *files = calloc(rel->nfiles + 1, sizeof(*files)), *maps = calloc(rel->nfiles + 1, sizeof(*maps));
    if (files == NULL || maps == NULL)
        abort();
    for (size_t i = 0; i < rel->nfiles; ++i)
        files[i].fd = maps[i].fd = -1;
    mirror_t m = {.c = c, .rel = rel, .actions = json_object(), .reason = reason};
    int err = 0;

    for (size_t i = 0; i < rel->nfiles && err == 0; ++i) {
        upd_file_t *f = &rel->files[i];
        f->blockmap_size = -1;
        f->blockmap_sha512[0] = '\0';
        if ((err = stage_file(&m, i, f, &files[i])) != 0)
            break;
        if (files[i].fd < 0 && c->nbackends == 0) {
            char key[KEY_MAX];
            object_key(rel, f->name, key, sizeof(key));
            err = upd_reason_set(reason, UPD_EMISMATCH, "file_missing", "files[%zu] %s: not in storage at %s (%s)", i, f->name, key,
                                 strerror(ENOENT));
            break;
        }
        err = stage_blockmap(&m, i, f, &maps[i]);
    }

    for (size_t i = 0; i < rel->nfiles && err == 0 && c->nbackends != 0; ++i) {
        upd_file_t *f = &rel->files[i];
        if (files[i].fd >= 0) {
            for (size_t k = 0; k < c->nbackends && err == 0; ++k)
                err = push(&m, i, f->name, &c->backends[k], &files[i]);
        } else {
            err = check_remote_file(&m, i, f);
        }
        if (err != 0)
            break;
        if (maps[i].fd >= 0) {
            char bm_name[UPD_FILENAME_MAX + 16];
            snprintf(bm_name, sizeof(bm_name), "%s.blockmap", f->name);
            for (size_t k = 0; k < c->nbackends && err == 0; ++k)
                err = push(&m, i, bm_name, &c->backends[k], &maps[i]);
        } else {
            err = check_remote_blockmap(&m, i, f);
        }
    }

    for (size_t i = 0; i < rel->nfiles; ++i) {
        if (files[i].fd >= 0)
            close(files[i].fd);
        if (maps[i].fd >= 0)
            close(maps[i].fd);
    }
    free(files);
    free(maps);
    if (err != 0) {
        json_decref(m.actions);
        *backends = NULL;
        return err;
    }
    *backends = m.actions;
    return 0;
}
