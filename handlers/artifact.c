/*
 * Artifacts: immutable bytes from the local-directory store, with strong ETags derived from the
 * release's sha512 (identical on every origin), single and multipart ranges in the order asked
 * (electron-updater's differential download depends on it), If-None-Match, If-Range and HEAD.
 *
 * h2o 2.2.5's h2o_file_send() does none of the conditional or range work (that lives in the file
 * handler's private code path), so this file streams with its own generator, one h2o_send() per
 * proceed callback, so a slow client holds back the reads. Where the bytes come from:
 *
 * - plain HTTP/1.x, a whole file or one range: sendfile() from the file (local store or cache) to
 *   the connection's socket once h2o has written the head (push_sendfile(): why that is safe with
 *   this h2o). No copy in user space, nothing mapped.
 * - otherwise (TLS, HTTP/2, multipart) from the cache: its memory map of the object, no read.
 * - otherwise from the local store: pread() into one pool buffer. Deliberately not a memory map:
 *   over TLS and HTTP/2 h2o copies the body in user space, and a file an operator truncates in the
 *   store would then raise SIGBUS and kill the origin; with pread() (and sendfile()) a truncated
 *   file only cuts the response. Over TLS the extra copy is small next to the encryption.
 */
#include "handlers/artifact.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"
#include "domain/range.h"
#include "handlers/respond.h"
#include "handlers/tags.h"
#include "loop/cache.h"
#include "server/http.h"
#include "server/http_error.h"
#include "storage/localdir.h"

#define CHUNK_SIZE (256 * 1024)
#define BOUNDARY "UPDRAFT-b7d1f0c9a3e5"

#define MAX_VECS 64
#define MAP_SEND_MAX (1024 * 1024) /* bytes of a memory-mapped object per send: fairness between connections */
#define SENDFILE_MAX (8 * 1024 * 1024) /* bytes per proceed through sendfile(): fairness between connections */
#define SENDFILE_MIN (64 * 1024)       /* bodies smaller than this go out in one writev() */
#define WAKE_BYTES (16 * 1024)         /* bytes handed to h2o after a sendfile(): see push_sendfile() */

typedef struct st_artifact_gen_t {
    h2o_generator_t super;
    h2o_req_t *req;
    upd_origin_t *o;
    int fd;                /* the local-directory store's file, or -1 */
    int sock_fd;           /* a plain HTTP/1.x connection's socket when the body may go out with sendfile(), or -1 */
    bool sent_head;        /* h2o wrote the response head (with the first h2o_send()) */
    upd_cache_obj_t *obj;  /* the cached object (or its fill in progress), or NULL */
    upd_cache_waiter_t waiter;
    bool started;          /* the response head went out */
    bool head;
    int status;
    char *backend_note;    /* the access log's backend= field */
    uint64_t size;
    const char *etag;
    const char *content_type;
    const char *app, *version; /* for the edge's purge tags; pool copies */
    upd_range_t *parts; /* NULL: the whole file or a single range */
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
    if (gen->obj != NULL) {
        upd_cache_obj_unwait(&gen->waiter);
        upd_cache_obj_release(gen->obj);
        gen->obj = NULL;
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
note_backend(artifact_gen_t *gen)
{
    if (gen->obj != NULL && gen->backend_note != NULL)
        snprintf(gen->backend_note, 64, "%s", upd_cache_obj_path(gen->obj));
}

static void on_fill_progress(upd_cache_waiter_t *w);

/*
 * Plain HTTP/1.x without sendfile in Debian's h2o 2.2.5: every byte h2o writes is copied from user memory into the
 * socket. So once h2o has written the head, the body goes out with sendfile() from the file straight to the
 * connection's socket, which the kernel does without that copy (and a file truncated under us only makes sendfile()
 * return 0: the response is cut, nothing faults). This is safe only because of how h2o 2.2.5's HTTP/1 connection and
 * evloop socket work (lib/http1.c, lib/common/socket/evloop.c.h): a proceed callback runs only once h2o's previous
 * write of this response has been handed to the kernel entirely, so its write queue is empty; the connection does
 * not read (nor answer a pipelined request) until this response ends; and without an output filter nothing else
 * writes to that socket. So bytes written here land in order behind everything h2o wrote.
 * h2o must still be told when to call proceed again, and must end the response itself: the caller hands the next
 * WAKE_BYTES to h2o_send(). When the socket is full, h2o waits for it to drain and then calls proceed, which refills
 * it here; only those few bytes per wake-up are copied. The body's last WAKE_BYTES always go through h2o, so that the
 * final h2o_send() carries bytes and h2o completes it from the loop later: a final send without bytes would end the
 * request (and start on a pipelined one) synchronously, inside a fill's callback.
 * @return false when the response was cut (the file shrank, the client went away, the disk failed)
 */
static bool
push_sendfile(artifact_gen_t *gen, h2o_req_t *req, int fd, uint64_t avail)
{
    uint64_t end = gen->off + (gen->left > WAKE_BYTES ? gen->left - WAKE_BYTES : 0), sent = 0;
    if (end > avail)
        end = avail;
    while (gen->off < end && sent < SENDFILE_MAX) {
        size_t want = (size_t)(end - gen->off < SENDFILE_MAX - sent ? end - gen->off : SENDFILE_MAX - sent);
        off_t pos = (off_t)gen->off;
        ssize_t r = sendfile(gen->sock_fd, fd, &pos, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            break;
        if (r <= 0) {
            /* 0: the file shrank under us (an operator truncated it); else the client went away (an expected event, as
             * when h2o's own write fails) or the disk failed */
            if (r < 0 && (errno == EPIPE || errno == ECONNRESET))
                upd_log_info("%s: client went away at offset %" PRIu64 ": %s", upd_http_request_id(req), gen->off, strerror(errno));
            else
                upd_log_error("%s: artifact sendfile failed at offset %" PRIu64 ": %s", upd_http_request_id(req), gen->off,
                              r == 0 ? "unexpected end of file" : strerror(errno));
            req->http1_is_persistent = 0;
            h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
            return false;
        }
        gen->off += (uint64_t)r;
        gen->left -= (uint64_t)r;
        sent += (uint64_t)r;
        req->bytes_sent += (uint64_t)r; /* the access log's count: h2o counts only what it writes */
        if ((size_t)r < want)
            break; /* the socket's buffer is full */
    }
    return true;
}

/*
 * Sends the next piece. On a sendfile() connection, first as much as the socket takes that way. Then bytes come from
 * the memory map of a cached object or of a fill in progress (no copy), or are pread() into the pool buffer (the
 * local-directory store, or when mapping failed). During a fill only verified bytes are sent; when the next byte is
 * not there yet the generator waits for the fill.
 */
static void
do_proceed(h2o_generator_t *_gen, h2o_req_t *req)
{
    artifact_gen_t *gen = (artifact_gen_t *)_gen;
    const uint8_t *map = NULL;
    uint64_t avail = UINT64_MAX;
    int fill_err = 0;
    if (gen->obj != NULL) {
        /* after a failed fill, what it verified is still good: only a reader that needs more is cut (below) */
        fill_err = upd_cache_obj_result(gen->obj);
        map = upd_cache_obj_map(gen->obj);
        avail = upd_cache_obj_available(gen->obj);
    }
    h2o_iovec_t vecs[MAX_VECS];
    size_t nv = 0, used = 0, total = 0, budget = MAP_SEND_MAX;
    bool final = false;

    if (gen->sock_fd >= 0) {
        int fd = gen->obj != NULL ? upd_cache_obj_fd(gen->obj) : gen->fd; /* -1: nothing to send from, h2o's path below */
        budget = WAKE_BYTES;
        if (gen->sent_head && fd >= 0 && !push_sendfile(gen, req, fd, avail))
            return;
    }

    while (nv + 2 <= MAX_VECS && used < CHUNK_SIZE && total < budget) {
        if (gen->parts != NULL && !gen->part_started) {
            if (gen->cur == gen->nparts) {
                if (CHUNK_SIZE - used < sizeof(closing))
                    break;
                memcpy(gen->buf + used, closing, sizeof(closing) - 1);
                vecs[nv++] = h2o_iovec_init(gen->buf + used, sizeof(closing) - 1);
                used += sizeof(closing) - 1;
                final = true;
                break;
            }
            char hdr[256];
            int hl = part_header(gen, gen->cur, hdr, sizeof(hdr));
            if ((size_t)hl > CHUNK_SIZE - used)
                break;
            memcpy(gen->buf + used, hdr, hl);
            vecs[nv++] = h2o_iovec_init(gen->buf + used, hl);
            used += hl;
            total += hl;
            gen->off = gen->parts[gen->cur].start;
            gen->left = gen->parts[gen->cur].len;
            gen->part_started = true;
        }
        if (gen->left > 0) {
            size_t n;
            if (gen->off >= avail)
                break; /* not verified yet */
            /* a part header may have filled this piece exactly: its data starts the next one (a read of 0 bytes here
             * would look like a truncated file) */
            if (total >= budget || (map == NULL && used >= CHUNK_SIZE))
                break;
            if (map != NULL) {
                n = (size_t)(gen->left < budget - total ? gen->left : budget - total);
                if (n > avail - gen->off)
                    n = (size_t)(avail - gen->off);
                vecs[nv++] = h2o_iovec_init((char *)map + gen->off, n);
            } else {
                size_t want = CHUNK_SIZE - used < budget - total ? CHUNK_SIZE - used : budget - total;
                if (want > gen->left)
                    want = (size_t)gen->left;
                if (want > avail - gen->off)
                    want = (size_t)(avail - gen->off);
                int fd = gen->obj != NULL ? upd_cache_obj_fd(gen->obj) : gen->fd;
                ssize_t r;
                while ((r = pread(fd, gen->buf + used, want, (off_t)gen->off)) == -1 && errno == EINTR)
                    ;
                if (r <= 0) {
                    /* the file shrank or the disk failed under us: cut the response rather than send short bytes */
                    upd_log_error("%s: artifact read failed at offset %" PRIu64 ": %s", upd_http_request_id(req), gen->off,
                                  r == 0 ? "unexpected end of file" : strerror(errno));
                    h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
                    return;
                }
                n = (size_t)r;
                vecs[nv++] = h2o_iovec_init(gen->buf + used, n);
                used += n;
            }
            total += n;
            gen->off += n;
            gen->left -= n;
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
    if (nv == 0 && !final && fill_err != 0) {
        /* the fill failed before the bytes this response needs: cut it rather than complete it with bytes nobody
         * verified */
        note_backend(gen);
        upd_log_error("%s: artifact fill failed at byte %" PRIu64 " (%s): closing the response", upd_http_request_id(req), gen->off,
                      upd_strerror(fill_err));
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    if (nv == 0 && !final) {
        /* nothing verified beyond what was sent: wait for the fill, and let it run up to here (a range far into
         * the file must not be held back by the fill's lead over readers) */
        upd_cache_obj_progress(gen->obj, gen->off);
        upd_cache_obj_wait(gen->obj, &gen->waiter);
        return;
    }
    if (gen->obj != NULL) {
        upd_cache_obj_progress(gen->obj, gen->off);
        note_backend(gen);
    }
    gen->sent_head = true;
    /* after a final send HTTP/2 may free the request and this generator at once: touch nothing after */
    h2o_send(req, vecs, nv, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void
do_stop(h2o_generator_t *_gen, h2o_req_t *req)
{
    /* the fd is closed and the cached object released when the pool is cleared */
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

/*
 * Decides the answer from the request and the file's size and ETag alone: 304, 416 and HEAD are
 * answered here (no bytes needed, so no fetch either). @return the generator, its status and parts
 * set, for start_response(); NULL when the request was answered
 */
static artifact_gen_t *
plan(upd_origin_t *o, h2o_req_t *req, uint64_t size, const char *etag, const char *content_type)
{
    /* linked to the pool: released, and the fd closed, when the request ends however it ends */
    artifact_gen_t *gen = h2o_mem_alloc_shared(&req->pool, sizeof(*gen), on_gen_dispose);
    memset(gen, 0, sizeof(*gen));
    gen->super.proceed = do_proceed;
    gen->super.stop = do_stop;
    gen->req = req;
    gen->o = o;
    gen->fd = -1;
    gen->sock_fd = -1;
    gen->size = size;
    gen->etag = etag;
    gen->content_type = content_type;
    gen->waiter.cb = on_fill_progress;
    gen->head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    gen->status = 200;

    if (upd_http_if_none_match(req, etag, strlen(etag))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag, strlen(etag));
        add_immutable(req);
        req->res.status = 304;
        req->res.reason = "Not Modified";
        h2o_send_inline(req, "", 0);
        return NULL;
    }
    const h2o_iovec_t *range = upd_http_header(req, H2O_STRLIT("range"));
    if (range != NULL) {
        /* If-Range: honour Range only when the validator is our strong ETag (dates never match: we send none) */
        const h2o_iovec_t *if_range = upd_http_header(req, H2O_STRLIT("if-range"));
        if (if_range == NULL || strong_match(if_range, etag)) {
            upd_range_t *parts = h2o_mem_alloc_pool(&req->pool, sizeof(*parts) * UPD_RANGE_MAX_PARTS);
            size_t n = 0;
            switch (upd_range_parse(range->base, range->len, size, parts, UPD_RANGE_MAX_PARTS, &n)) {
            case UPD_RANGE_PARTIAL:
                gen->status = 206;
                gen->parts = parts;
                gen->nparts = n;
                break;
            case UPD_RANGE_UNSATISFIABLE: {
                char *cr = h2o_mem_alloc_pool(&req->pool, 40);
                int crl = snprintf(cr, 40, "bytes */%" PRIu64, size);
                h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag, strlen(etag));
                h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCEPT_RANGES, NULL, H2O_STRLIT("bytes"));
                h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr, crl);
                upd_http_send_text(req, 416, "range not satisfiable for %" PRIu64 " bytes", size);
                return NULL;
            }
            case UPD_RANGE_WHOLE:
                break;
            }
        }
    }
    return gen;
}

/*
 * The connection's socket when this response's body may bypass h2o (push_sendfile() says why that is safe): plain
 * HTTP/1.x (over TLS and HTTP/2 h2o must frame or encrypt every byte), no output filter between this generator and
 * the connection (h2o_start_response() has installed them by now), one contiguous body (multipart keeps h2o's path),
 * and large enough to be worth it. @return the descriptor, or -1
 */
static int
sendfile_socket(h2o_req_t *req, const artifact_gen_t *gen)
{
    if (req->version >= 0x200 || gen->parts != NULL || req->res.content_length < SENDFILE_MIN || req->_ostr_top->next != NULL ||
        req->bytes_counted_by_ostream || req->conn->callbacks->get_socket == NULL)
        return -1;
    if (gen->obj == NULL ? gen->fd < 0 : upd_cache_obj_fd(gen->obj) < 0)
        return -1;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->ssl != NULL)
        return -1;
    return h2o_socket_get_fd(sock);
}

/* Adds the head and sends the first piece (HEAD and empty bodies end here). */
static void
start(artifact_gen_t *gen)
{
    h2o_req_t *req = gen->req;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, gen->etag, strlen(gen->etag));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCEPT_RANGES, NULL, H2O_STRLIT("bytes"));
    /* the bytes behind a URL never change */
    add_immutable(req);
    if (gen->app != NULL)
        upd_tags_add(req, gen->app, NULL, gen->version);
    req->res.status = gen->status;
    req->res.reason = upd_http_reason(gen->status);
    if (gen->status == 206 && gen->nparts == 1) {
        char *cr = h2o_mem_alloc_pool(&req->pool, 64);
        int crl = snprintf(cr, 64, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, gen->parts[0].start,
                           gen->parts[0].start + gen->parts[0].len - 1, gen->size);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr, crl);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, gen->content_type, strlen(gen->content_type));
        gen->off = gen->parts[0].start;
        gen->left = gen->parts[0].len;
        gen->parts = NULL; /* stream it like a whole file */
        req->res.content_length = gen->left;
    } else if (gen->status == 206) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("multipart/byteranges; boundary=" BOUNDARY));
        req->res.content_length = multipart_length(gen);
    } else {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, gen->content_type, strlen(gen->content_type));
        gen->off = 0;
        gen->left = gen->size;
        req->res.content_length = gen->size;
    }
    gen->started = true;
    if (gen->head || req->res.content_length == 0) {
        static h2o_generator_t none = {NULL, NULL};
        h2o_start_response(req, &none);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    uint64_t bufsz = req->res.content_length < CHUNK_SIZE ? req->res.content_length : CHUNK_SIZE;
    gen->buf = h2o_mem_alloc_pool(&req->pool, gen->parts != NULL ? CHUNK_SIZE : bufsz);
    h2o_start_response(req, &gen->super);
    gen->sock_fd = sendfile_socket(req, gen);
    do_proceed(&gen->super, req);
}

/* A miss answers once the fill has verified bytes, ended, or failed: a failure before the first byte is a clean error. */
static void
start_when_ready(artifact_gen_t *gen)
{
    h2o_req_t *req = gen->req;
    int err = upd_cache_obj_result(gen->obj);
    if (err != 0) {
        note_backend(gen);
        /* the mapping's 404 (no backend has it), 502 (every backend failed, or sent bytes that did not verify) and 503
         * (every breaker open; or UPD_EBUSY: every fill slot taken and the queue full); a fill that failed on this origin
         * itself (UPD_EIO writing the cache, UPD_ENOMEM) is a 502 as well, as it always was, rather than the mapping's 503
         * and 500: the object could not be fetched */
        int status;
        switch (err) {
        case UPD_ENOTFOUND:
        case UPD_EBACKEND:
        case UPD_EINTEGRITY:
        case UPD_EUNAVAILABLE:
        case UPD_EBUSY:
            status = upd_http_error_of(err, NULL).status;
            break;
        default:
            status = 502;
            break;
        }
        upd_log_warn("%s: artifact unavailable: %s", upd_http_request_id(req), upd_strerror(err));
        if (status == 503)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("5"));
        upd_http_send_text(req, status, "artifact unavailable: %s", upd_strerror(err));
        return;
    }
    if (!upd_cache_obj_complete(gen->obj) && upd_cache_obj_available(gen->obj) == 0) {
        upd_cache_obj_wait(gen->obj, &gen->waiter);
        return;
    }
    start(gen);
}

static void
on_fill_progress(upd_cache_waiter_t *w)
{
    artifact_gen_t *gen = H2O_STRUCT_FROM_MEMBER(artifact_gen_t, waiter, w);
    if (!gen->started)
        start_when_ready(gen);
    else
        do_proceed(&gen->super, gen->req);
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
format_etag(char *etag, const uint8_t *sha512)
{
    /* a strong validator every origin computes alike: the first 128 bits of the sha512 */
    etag[0] = '"';
    upd_hex_encode(sha512, 16, etag + 1);
    etag[33] = '"';
    etag[34] = '\0';
}

/* Object storage: the verified disk cache, filled from R2 or the S3 mirror on a miss. */
static void
serve_cached(upd_origin_t *o, h2o_req_t *req, upd_store_txn_t *txn, const char *app, const char *version, const char *file,
             const upd_file_rec_t *rec)
{
    char *etag = h2o_mem_alloc_pool(&req->pool, 48);
    format_etag(etag, rec->sha512);
    artifact_gen_t *gen = plan(o, req, rec->size, etag, content_type_of(file));
    if (gen != NULL) {
        gen->app = h2o_strdup(&req->pool, app, SIZE_MAX).base;
        gen->version = h2o_strdup(&req->pool, version, SIZE_MAX).base;
    }
    if (gen == NULL || gen->head) {
        /* 304, 416 and HEAD need no bytes, so no fetch */
        upd_store_txn_end(txn);
        if (gen != NULL)
            start(gen);
        return;
    }
    char key[UPD_ID_MAX + UPD_VERSION_MAX + UPD_FILENAME_MAX + 16];
    snprintf(key, sizeof(key), "%s/%s/%s", app, version, file);
    upd_fetch_spec_t spec = {.key = key, .size = rec->size, .sha512 = rec->sha512};
    int err = upd_store_blocks_get(txn, app, version, file, strlen(file), &spec.block_size, &spec.block_alg, &spec.blocks,
                                   &spec.nblocks);
    if (err != 0 && err != UPD_ENOTFOUND) {
        upd_store_txn_end(txn);
        upd_respond_store_error(o, req, err);
        return;
    }
    upd_cache_lookup_t how;
    gen->obj = upd_cache_get(o->cache, &spec, &how); /* copies the digests: the transaction may end */
    upd_store_txn_end(txn);
    if (gen->obj == NULL) {
        upd_http_send_text(req, 503, "out of memory");
        return;
    }
    static const char *const how_names[] = {"hit", "miss", "joined"};
    strcpy(upd_http_log_field(req, "cache", 8), how_names[how]);
    if (how != UPD_CACHE_HIT)
        gen->backend_note = upd_http_log_field(req, "backend", 64);
    start_when_ready(gen);
}

static void
serve(upd_origin_t *o, h2o_req_t *req, const char *app, const char *version, const char *file)
{
    upd_store_txn_t *txn;
    int err;
    if ((err = upd_store_read_begin(o->store, &txn)) != 0) {
        upd_respond_store_error(o, req, err);
        return;
    }
    upd_file_rec_t rec;
    bool registered = upd_store_file_get(txn, app, version, file, strlen(file), &rec) == 0, blockmap = false;
    size_t fl = strlen(file);
    if (registered && o->cache != NULL) {
        serve_cached(o, req, txn, app, version, file, &rec);
        return;
    }
    if (!registered && o->cache == NULL && fl > 9 && strcmp(file + fl - 9, ".blockmap") == 0) {
        /* FILE.blockmap of a release registered without its digest: served from the local store as it is */
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
        format_etag(etag, rec.sha512);
    } else {
        snprintf(etag, 48, "\"bm-%llx-%llx\"", (unsigned long long)st.st_size, (unsigned long long)st.st_mtime);
    }
    artifact_gen_t *gen = plan(o, req, (uint64_t)st.st_size, etag, content_type_of(file));
    if (gen == NULL) {
        close(fd);
        return;
    }
    gen->fd = fd;
    gen->app = h2o_strdup(&req->pool, app, SIZE_MAX).base;
    gen->version = h2o_strdup(&req->pool, version, SIZE_MAX).base;
    start(gen);
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
        upd_respond_store_error(o, req, err);
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
