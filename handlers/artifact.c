/*
 * Artifacts: immutable bytes from the local-directory store, with strong ETags derived from the
 * release's sha512 (identical on every origin), single and multipart ranges in the order asked
 * (electron-updater's differential download depends on it), If-None-Match, If-Range and HEAD.
 *
 * h2o 2.2.5's h2o_file_send() does none of the conditional or range work (that lives in the file
 * handler's private code path), so this file streams with its own generator: pread() into one
 * pool buffer, one h2o_send() per proceed callback, so a slow client holds back the reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "domain/err.h"
#include "domain/range.h"
#include "handlers/origin.h"
#include "server/http.h"
#include "server/log.h"
#include "storage/localdir.h"

#define CHUNK_SIZE (256 * 1024)
#define BOUNDARY "UPDRAFT-b7d1f0c9a3e5"

typedef struct st_artifact_gen_t {
    h2o_generator_t super;
    h2o_req_t *req;
    int fd;
    uint64_t size;
    const char *content_type;
    upd_range_t *parts; /* NULL: the whole file */
    size_t nparts, cur;
    uint64_t off, left; /* within the current part */
    bool part_started;
    char *buf;
} artifact_gen_t;

static void
on_gen_dispose(void *_gen)
{
    artifact_gen_t *gen = _gen;
    if (gen->fd >= 0) {
        close(gen->fd);
        gen->fd = -1;
    }
}

static int
part_header(const artifact_gen_t *gen, size_t i, char *buf, size_t cap)
{
    /* the CRLF that ends the previous part's data belongs to this delimiter (RFC 2046 §5.1.1) */
    return snprintf(buf, cap, "%s--" BOUNDARY "\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n\r\n",
                    i == 0 ? "" : "\r\n", gen->content_type, gen->parts[i].start, gen->parts[i].start + gen->parts[i].len - 1,
                    gen->size);
}

static const char closing[] = "\r\n--" BOUNDARY "--\r\n";

static uint64_t
multipart_length(const artifact_gen_t *gen)
{
    char tmp[256];
    uint64_t total = sizeof(closing) - 1;
    for (size_t i = 0; i < gen->nparts; ++i)
        total += (uint64_t)part_header(gen, i, tmp, sizeof(tmp)) + gen->parts[i].len;
    return total;
}

static void
do_proceed(h2o_generator_t *_gen, h2o_req_t *req)
{
    artifact_gen_t *gen = (artifact_gen_t *)_gen;
    size_t used = 0;
    bool final = false;

    while (used < CHUNK_SIZE) {
        if (gen->parts != NULL && !gen->part_started) {
            if (gen->cur == gen->nparts) {
                if (CHUNK_SIZE - used < sizeof(closing))
                    break;
                memcpy(gen->buf + used, closing, sizeof(closing) - 1);
                used += sizeof(closing) - 1;
                final = true;
                break;
            }
            char hdr[256];
            int hl = part_header(gen, gen->cur, hdr, sizeof(hdr));
            if ((size_t)hl > CHUNK_SIZE - used)
                break;
            memcpy(gen->buf + used, hdr, hl);
            used += hl;
            gen->off = gen->parts[gen->cur].start;
            gen->left = gen->parts[gen->cur].len;
            gen->part_started = true;
        }
        size_t want = CHUNK_SIZE - used;
        if (want > gen->left)
            want = (size_t)gen->left;
        if (want > 0) {
            ssize_t n;
            while ((n = pread(gen->fd, gen->buf + used, want, (off_t)gen->off)) == -1 && errno == EINTR)
                ;
            if (n <= 0) {
                /* the file shrank or the disk failed under us: cut the response rather than send short bytes */
                upd_log_error("%s: artifact read failed at offset %" PRIu64 ": %s", upd_http_request_id(req), gen->off,
                              n == 0 ? "unexpected end of file" : strerror(errno));
                h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
                return;
            }
            used += (size_t)n;
            gen->off += (uint64_t)n;
            gen->left -= (uint64_t)n;
        }
        if (gen->left == 0) {
            if (gen->parts == NULL) {
                final = true;
                break;
            }
            gen->part_started = false;
            ++gen->cur;
        }
    }
    h2o_iovec_t vec = h2o_iovec_init(gen->buf, used);
    /* after a final send HTTP/2 may free the request and this generator at once: touch nothing after */
    h2o_send(req, &vec, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void
do_stop(h2o_generator_t *_gen, h2o_req_t *req)
{
    /* the fd is closed when the pool is cleared */
}

static bool
strong_match(const h2o_iovec_t *v, const char *etag)
{
    size_t el = strlen(etag);
    return v->len == el && memcmp(v->base, etag, el) == 0;
}

static void
add_immutable(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("public, max-age=31536000, immutable"));
}

void
upd_artifact_send(upd_origin_t *o, h2o_req_t *req, int fd, uint64_t size, const char *etag, const char *content_type)
{
    /* linked to the pool: released, and the fd closed, when the request ends however it ends */
    artifact_gen_t *gen = h2o_mem_alloc_shared(&req->pool, sizeof(*gen), on_gen_dispose);
    memset(gen, 0, sizeof(*gen));
    gen->super.proceed = do_proceed;
    gen->super.stop = do_stop;
    gen->req = req;
    gen->fd = fd;
    gen->size = size;
    gen->content_type = content_type;

    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag, strlen(etag));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCEPT_RANGES, NULL, H2O_STRLIT("bytes"));

    if (upd_http_if_none_match(req, etag, strlen(etag))) {
        add_immutable(req);
        req->res.status = 304;
        req->res.reason = "Not Modified";
        h2o_send_inline(req, "", 0);
        return;
    }

    int status = 200;
    const h2o_iovec_t *range = upd_http_header(req, H2O_STRLIT("range"));
    if (range != NULL) {
        /* If-Range: honour Range only when the validator is our strong ETag (dates never match: we send none) */
        const h2o_iovec_t *if_range = upd_http_header(req, H2O_STRLIT("if-range"));
        if (if_range == NULL || strong_match(if_range, etag)) {
            upd_range_t *parts = h2o_mem_alloc_pool(&req->pool, sizeof(*parts) * UPD_RANGE_MAX_PARTS);
            size_t n = 0;
            switch (upd_range_parse(range->base, range->len, size, parts, UPD_RANGE_MAX_PARTS, &n)) {
            case UPD_RANGE_PARTIAL:
                status = 206;
                gen->parts = parts;
                gen->nparts = n;
                break;
            case UPD_RANGE_UNSATISFIABLE: {
                char *cr = h2o_mem_alloc_pool(&req->pool, 40);
                int crl = snprintf(cr, 40, "bytes */%" PRIu64, size);
                h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr, crl);
                upd_http_send_text(req, 416, "range not satisfiable for %" PRIu64 " bytes", size);
                return;
            }
            case UPD_RANGE_WHOLE:
                break;
            }
        }
    }

    /* the bytes behind a URL never change; a 416 is about the request, not the bytes, and is not marked */
    add_immutable(req);
    req->res.status = status;
    req->res.reason = upd_http_reason(status);
    if (status == 206 && gen->nparts == 1) {
        char *cr = h2o_mem_alloc_pool(&req->pool, 64);
        int crl = snprintf(cr, 64, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, gen->parts[0].start,
                           gen->parts[0].start + gen->parts[0].len - 1, size);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr, crl);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
        gen->off = gen->parts[0].start;
        gen->left = gen->parts[0].len;
        gen->parts = NULL; /* stream it like a whole file */
        req->res.content_length = gen->left;
    } else if (status == 206) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("multipart/byteranges; boundary=" BOUNDARY));
        req->res.content_length = multipart_length(gen);
    } else {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
        gen->off = 0;
        gen->left = size;
        req->res.content_length = size;
    }

    if (head || req->res.content_length == 0) {
        static h2o_generator_t none = {NULL, NULL};
        h2o_start_response(req, &none);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    uint64_t bufsz = req->res.content_length < CHUNK_SIZE ? req->res.content_length : CHUNK_SIZE;
    gen->buf = h2o_mem_alloc_pool(&req->pool, gen->parts != NULL ? CHUNK_SIZE : bufsz);
    h2o_start_response(req, &gen->super);
    do_proceed(&gen->super, req);
}

static const char *
content_type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return "application/octet-stream";
    if (strcasecmp(dot, ".yml") == 0)
        return "text/yaml; charset=utf-8";
    if (strcasecmp(dot, ".zip") == 0)
        return "application/zip";
    if (strcasecmp(dot, ".dmg") == 0)
        return "application/x-apple-diskimage";
    if (strcasecmp(dot, ".deb") == 0)
        return "application/vnd.debian.binary-package";
    if (strcasecmp(dot, ".rpm") == 0)
        return "application/x-rpm";
    if (strcasecmp(dot, ".msi") == 0)
        return "application/x-msi";
    /* .blockmap is gzip data the client gunzips itself: octet-stream, never Content-Encoding */
    return "application/octet-stream";
}

static void
serve(upd_origin_t *o, h2o_req_t *req, const char *app, const char *version, const char *file)
{
    upd_store_txn_t *txn;
    int err;
    if ((err = upd_store_read_begin(o->store, &txn)) != 0) {
        upd_origin_store_error(o, req, err);
        return;
    }
    upd_file_rec_t rec;
    bool registered = upd_store_file_get(txn, app, version, file, strlen(file), &rec) == 0, blockmap = false;
    size_t fl = strlen(file);
    if (!registered && fl > 9 && strcmp(file + fl - 9, ".blockmap") == 0) {
        /* FILE.blockmap is served when FILE belongs to the release (electron-updater derives its URL) */
        blockmap = upd_store_file_get(txn, app, version, file, fl - 9, &rec) == 0;
    }
    upd_store_txn_end(txn);
    if (!registered && !blockmap) {
        upd_http_send_text(req, 404, "no artifact %s in release %s of %s", file, version, app);
        return;
    }

    struct stat st;
    int fd = upd_localdir_open(o->storage_fd, app, version, file, &st);
    if (fd < 0) {
        upd_log_error("%s: artifact %s/%s/%s: %s", upd_http_request_id(req), app, version, file, strerror(errno));
        upd_http_send_text(req, errno == ENOENT ? 404 : 500, "artifact %s is not in storage", file);
        return;
    }
    char *etag = h2o_mem_alloc_pool(&req->pool, 48);
    if (registered) {
        if ((uint64_t)st.st_size != rec.size) {
            close(fd);
            upd_log_error("%s: artifact %s/%s/%s: %lld bytes in storage, release says %" PRIu64, upd_http_request_id(req), app,
                          version, file, (long long)st.st_size, rec.size);
            upd_http_send_text(req, 500, "artifact %s does not match its release record", file);
            return;
        }
        /* a strong validator every origin computes alike: the first 128 bits of the sha512 */
        char *p = etag;
        *p++ = '"';
        for (int i = 0; i < 16; ++i)
            p += sprintf(p, "%02x", rec.sha512[i]);
        *p++ = '"';
        *p = '\0';
    } else {
        snprintf(etag, 48, "\"bm-%llx-%llx\"", (unsigned long long)st.st_size, (unsigned long long)st.st_mtime);
    }
    upd_artifact_send(o, req, fd, (uint64_t)st.st_size, etag, content_type_of(file));
}

void
upd_artifact_handle(upd_origin_t *o, h2o_req_t *req, const upd_route_t *r)
{
    if (r->kind == UPD_ROUTE_ARTIFACT) {
        serve(o, req, r->app, r->version, r->file);
        return;
    }
    /* Squirrel.Windows: .nupkg next to RELEASES, without a version in the path */
    upd_store_txn_t *txn;
    int err;
    if ((err = upd_store_read_begin(o->store, &txn)) != 0) {
        upd_origin_store_error(o, req, err);
        return;
    }
    char version[UPD_VERSION_MAX + 1];
    err = upd_store_nupkg_version(txn, r->app, r->file, strlen(r->file), version);
    upd_store_txn_end(txn);
    if (err != 0) {
        upd_http_send_text(req, 404, "no package %s for %s", r->file, r->app);
        return;
    }
    serve(o, req, r->app, version, r->file);
}
