/*
 * The blocking S3 operations (storage/s3_sync.h: HEAD, PUT, GET into a sink) on libcurl's easy interface, for the control
 * plane. Each thread keeps one easy handle (a pthread key) and reuses it, options reset after every operation: the
 * handle's connection cache then keeps the connection to the backend open between operations, so a state change's
 * documents do not each pay a TCP (and TLS) handshake. libcurl does not support sharing one connection cache between
 * concurrent threads (CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT), hence one handle per thread rather than a share.
 *
 * Messages name the backend, the status and S3's error code, or libcurl's error text; never a header (the
 * Authorization value carries a signature) and never the secret.
 */
#include "storage/s3_sync.h"
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "base/err.h"
#include "storage/sigv4.h"

#define ERROR_BODY_MAX 8192 /* S3 error documents are a few hundred bytes; the rest is not read into memory */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;
static pthread_key_t easy_key;
static uint64_t requests_total, connections_total; /* atomics */

static void
easy_free(void *easy)
{
    curl_easy_cleanup(easy); /* closes the connections it keeps */
}

static void
global_init(void)
{
    /* curl_global_init is not thread-safe before 7.84 and must run once before any handle exists */
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (global_rc == CURLE_OK && pthread_key_create(&easy_key, easy_free) != 0)
        global_rc = CURLE_FAILED_INIT;
}

/* this thread's easy handle, created on first use; NULL when out of memory */
static CURL *
thread_easy(void)
{
    CURL *curl = pthread_getspecific(easy_key);
    if (curl == NULL && (curl = curl_easy_init()) != NULL && pthread_setspecific(easy_key, curl) != 0) {
        curl_easy_cleanup(curl);
        curl = NULL;
    }
    return curl;
}

void
upd_s3_sync_thread_done(void)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return;
    CURL *curl = pthread_getspecific(easy_key);
    if (curl != NULL) {
        pthread_setspecific(easy_key, NULL);
        curl_easy_cleanup(curl);
    }
}

void
upd_s3_sync_counts(uint64_t *requests, uint64_t *connections)
{
    *requests = __atomic_load_n(&requests_total, __ATOMIC_RELAXED);
    *connections = __atomic_load_n(&connections_total, __ATOMIC_RELAXED);
}

typedef struct {
    CURL *curl;
    upd_s3_result_t *res;
    /* error body of a non-2xx answer */
    char err_body[ERROR_BODY_MAX];
    size_t err_len;
    /* GET: where 2xx bytes go */
    int (*sink)(const void *data, size_t len, void *arg);
    void *sink_arg;
    bool sink_aborted;
    /* PUT: where the body comes from (fd with pread from base on, or memory) */
    int fd;
    const char *mem;
    uint64_t size, offset, base;
    /* a signed query string ("uploads", "list-type=2&prefix=..."), NULL for none */
    const char *query;
    int read_errno;
    /* the deadline that grows with the body (upd_s3_timeouts_t.body_min_rate) */
    const upd_s3_timeouts_t *t;
    uint64_t deadline_ms; /* of the transfer, once the body's size is known; 0 until then or without a rate */
    bool too_slow;
} xfer_t;

uint64_t
upd_s3_body_deadline_ms(const upd_s3_timeouts_t *t, uint64_t size)
{
    if (t->body_min_rate == 0)
        return 0;
    uint64_t body_ms = size / t->body_min_rate * 1000 + size % t->body_min_rate * 1000 / t->body_min_rate;
    return t->body_base_ms + body_ms;
}

/* a GET learns its size from Content-Length: its deadline starts counting from the start of the transfer all the same */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    xfer_t *x = arg;
    if (x->deadline_ms == 0 && dltotal > 0)
        x->deadline_ms = upd_s3_body_deadline_ms(x->t, (uint64_t)dltotal);
    if (x->deadline_ms == 0)
        return 0;
    curl_off_t us = 0;
    curl_easy_getinfo(x->curl, CURLINFO_TOTAL_TIME_T, &us);
    if ((uint64_t)us / 1000 > x->deadline_ms) {
        x->too_slow = true;
        return 1; /* CURLE_ABORTED_BY_CALLBACK */
    }
    return 0;
}

static long
status_of(CURL *curl)
{
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static size_t
on_header(char *buf, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = size * n;
    /* a new status line (after a 100 Continue, say) starts a new header block */
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0)
        x->res->etag[0] = '\0';
    if (len > 5 && strncasecmp(buf, "etag:", 5) == 0) {
        const char *v = buf + 5, *end = buf + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            ++v;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
            --end;
        size_t vl = (size_t)(end - v);
        if (vl < sizeof(x->res->etag)) {
            memcpy(x->res->etag, v, vl);
            x->res->etag[vl] = '\0';
        }
    }
    return len;
}

static size_t
on_write(char *buf, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = size * n;
    long status = status_of(x->curl);
    if (status >= 200 && status <= 299) {
        if (x->sink != NULL && x->sink(buf, len, x->sink_arg) != 0) {
            x->sink_aborted = true;
            return 0; /* libcurl stops with CURLE_WRITE_ERROR */
        }
        return len;
    }
    size_t room = sizeof(x->err_body) - 1 - x->err_len, take = len < room ? len : room;
    memcpy(x->err_body + x->err_len, buf, take);
    x->err_len += take;
    return len;
}

static size_t
on_read(char *buf, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t want = size * n;
    uint64_t left = x->size - x->offset;
    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (x->mem != NULL) {
        memcpy(buf, x->mem + x->offset, want);
        x->offset += want;
        return want;
    }
    ssize_t r;
    do
        r = pread(x->fd, buf, want, (off_t)(x->base + x->offset));
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
        /* a file that shrank under us must not be sent short: the signed hash would not match anyway */
        x->read_errno = r < 0 ? errno : EIO;
        return CURL_READFUNC_ABORT;
    }
    x->offset += (uint64_t)r;
    return (size_t)r;
}

static int
on_seek(void *arg, curl_off_t offset, int origin)
{
    xfer_t *x = arg;
    /* libcurl rewinds to resend a body (a connection that closed before the answer): offsets from the start only */
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->size)
        return CURL_SEEKFUNC_CANTSEEK;
    x->offset = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

/*
 * Runs one signed request. body: NULL for none (HEAD, GET), or the xfer's fd/mem of x->size bytes.
 * @return 0 when an HTTP answer came, UPD_EIO when none did, UPD_EINVAL/UPD_ETOOBIG/UPD_ENOMEM from signing
 */
static int
run(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *method, const char *key, const char *payload_hash,
    const char *content_type, bool upload, xfer_t *x)
{
    upd_s3_result_t *res = x->res;
    memset(res, 0, sizeof(*res));
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        snprintf(res->message, sizeof(res->message), "%s: libcurl cannot be initialised", b->name);
        return UPD_EIO;
    }

    char ct_line[160];
    const char *extra[1];
    size_t n_extra = 0;
    if (content_type != NULL) {
        snprintf(ct_line, sizeof(ct_line), "Content-Type: %s", content_type);
        extra[n_extra++] = ct_line;
    }
    upd_s3_request_t req;
    int err = upd_s3_request_build_query(b, method, key, x->query, NULL, payload_hash, extra, n_extra, (int64_t)time(NULL), &req);
    if (err != 0) {
        snprintf(res->message, sizeof(res->message), "%s: cannot sign %s %s: %s", b->name, method, key, upd_strerror(err));
        return err;
    }
    CURL *curl = thread_easy();
    if (curl == NULL) {
        upd_s3_request_dispose(&req);
        snprintf(res->message, sizeof(res->message), "%s: out of memory", b->name);
        return UPD_ENOMEM;
    }
    x->curl = curl;
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, req.url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, req.headers);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM for DNS timeouts: this runs among other threads */
    curl_easy_setopt(curl, CURLOPT_PROXY, "");    /* no proxy from the environment: the backends are named precisely */
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect would not carry a valid signature */
    curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)(t->connect_ms != 0 ? t->connect_ms : 2000));
    x->t = t;
    uint64_t total_ms = t->total_ms;
    if (upload && t->body_min_rate != 0) {
        /* a PUT's size is known now: libcurl's own timeout holds the deadline */
        uint64_t d = upd_s3_body_deadline_ms(t, x->size);
        if (total_ms == 0 || d < total_ms)
            total_ms = d;
        x->deadline_ms = d;
    } else if (t->body_min_rate != 0) {
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, x);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    }
    if (total_ms != 0)
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(total_ms > LONG_MAX ? LONG_MAX : total_ms));
    if (t->stall_ms != 0) {
        /* below 1 byte/s for the whole period: a stalled backend, or one that never sends the first byte */
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)((t->stall_ms + 999) / 1000));
    }
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, x);
    if (strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method); /* a POST's body comes from the read callback as a PUT's */
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (upload) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L); /* PUT */
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->size);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, x);
        curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(curl, CURLOPT_SEEKDATA, x);
    }

    CURLcode rc = curl_easy_perform(curl);
    long status = status_of(curl), connects = 0;
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
    __atomic_add_fetch(&requests_total, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&connections_total, (uint64_t)(connects > 0 ? connects : 0), __ATOMIC_RELAXED);
    if (rc == CURLE_OK) {
        res->status = (int)status;
        curl_off_t cl = -1;
        if (curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl >= 0)
            res->content_length = (uint64_t)cl;
        if (status < 200 || status > 299) {
            upd_s3_error_code(x->err_body, x->err_len, res->code, sizeof(res->code));
            snprintf(res->message, sizeof(res->message), "%s: %d%s%s", b->name, res->status, res->code[0] ? " " : "", res->code);
        } else {
            snprintf(res->message, sizeof(res->message), "%s: %d", b->name, res->status);
        }
        err = 0;
    } else {
        /* the status line may have come before the failure (a GET cut short): keep it for the message, not as an answer */
        res->status = 0;
        if (x->sink_aborted)
            snprintf(res->message, sizeof(res->message), "%s: %s %s: aborted", b->name, method, key);
        else if (x->too_slow || (rc == CURLE_OPERATION_TIMEDOUT && x->deadline_ms != 0 &&
                                  (t->total_ms == 0 || x->deadline_ms < t->total_ms)))
            snprintf(res->message, sizeof(res->message), "%s: %s %.100s: slower than %" PRIu64 " KiB/s: not done within %" PRIu64
                     " ms", b->name, method, key, t->body_min_rate / 1024, x->deadline_ms);
        else if (x->read_errno != 0)
            snprintf(res->message, sizeof(res->message), "%s: %s %.100s: reading the upload: %.100s", b->name, method, key,
                     strerror(x->read_errno));
        else
            snprintf(res->message, sizeof(res->message), "%s: %s %.100s: %.120s", b->name, method, key,
                     curl_err[0] ? curl_err : curl_easy_strerror(rc));
        if (status != 0 && !x->sink_aborted) {
            size_t ml = strlen(res->message);
            snprintf(res->message + ml, sizeof(res->message) - ml, " (after HTTP %ld)", status);
        }
        err = UPD_EIO;
    }
    /* the options point at this call's stack and headers: reset now; the connection stays in the handle's cache */
    curl_easy_reset(curl);
    upd_s3_request_dispose(&req);
    return err;
}

/* a 2xx to the explanatory GET of upd_s3_head(): the object is readable after all, nothing to learn from its bytes */
static int
refuse_bytes(const void *data, size_t len, void *arg)
{
    return 1;
}

int
upd_s3_head(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, upd_s3_result_t *res)
{
    xfer_t x = {.res = res, .fd = -1};
    int err = run(b, t, "HEAD", key, NULL, NULL, false, &x);
    if (err != 0 || res->status < 400 || res->status == 404)
        return err;
    /*
     * A HEAD answer has no body, so no S3 error code: a 403 could be a wrong secret, a clock skew or a policy. Ask the
     * same with a GET, whose error document says which. The HEAD's status stays the answer.
     */
    upd_s3_result_t why;
    xfer_t g = {.res = &why, .fd = -1, .sink = refuse_bytes};
    if (run(b, t, "GET", key, NULL, NULL, false, &g) == 0 && why.code[0] != '\0') {
        memcpy(res->code, why.code, sizeof(res->code));
        snprintf(res->message, sizeof(res->message), "%s: %d %s", b->name, res->status, res->code);
    }
    return 0;
}

int
upd_s3_put_fd(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, int fd, uint64_t size,
              const char *sha256_hex, const char *content_type, upd_s3_result_t *res)
{
    xfer_t x = {.res = res, .fd = fd, .size = size};
    return run(b, t, "PUT", key, sha256_hex, content_type, true, &x);
}

int
upd_s3_put_mem(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, const void *data, size_t len,
               const char *content_type, upd_s3_result_t *res)
{
    char hash[65];
    static const char empty[1];
    if (upd_sigv4_sha256_hex(data, len, hash) != 0) {
        memset(res, 0, sizeof(*res));
        snprintf(res->message, sizeof(res->message), "%s: out of memory", b->name);
        return UPD_ENOMEM;
    }
    xfer_t x = {.res = res, .fd = -1, .mem = data != NULL ? data : empty, .size = len};
    return run(b, t, "PUT", key, hash, content_type, true, &x);
}

int
upd_s3_get(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, int (*sink)(const void *data, size_t len, void *arg),
           void *arg, upd_s3_result_t *res)
{
    xfer_t x = {.res = res, .fd = -1, .sink = sink, .sink_arg = arg};
    return run(b, t, "GET", key, NULL, NULL, false, &x);
}

/* ---- large objects, listings and deletes (storage/s3_sync.h; the control plane's backups) ---- */

#define LIST_PAGE_MAX (8u << 20)  /* a ListObjectsV2 page of 1,000 keys is a few hundred KiB */
#define SMALL_BODY_MAX (64u << 10) /* CreateMultipartUpload's and CompleteMultipartUpload's answers */
#define HASH_CHUNK (1u << 20)


/* A 2xx body read into memory, up to cap bytes (then the transfer is aborted). */
typedef struct {
    char *data;
    size_t len, cap;
    bool too_big;
} body_t;

static int
to_body(const void *data, size_t len, void *arg)
{
    body_t *bd = arg;
    if (len > bd->cap - bd->len) {
        bd->too_big = true;
        return 1;
    }
    char *n = realloc(bd->data, bd->len + len + 1);
    if (n == NULL)
        return 1;
    bd->data = n;
    memcpy(bd->data + bd->len, data, len);
    bd->len += len;
    bd->data[bd->len] = '\0';
    return 0;
}

/* The text of the first <name>...</name> in [p, end), XML's five entities and numeric ASCII references decoded. @return
 * a pointer past the closing tag, NULL when there is none or it does not fit in cap */
static const char *
xml_text(const char *p, const char *end, const char *name, char *out, size_t cap)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", name);
    snprintf(close, sizeof(close), "</%s>", name);
    const char *s = memmem(p, (size_t)(end - p), open, strlen(open));
    if (s == NULL)
        return NULL;
    s += strlen(open);
    const char *e = memmem(s, (size_t)(end - s), close, strlen(close));
    if (e == NULL)
        return NULL;
    size_t n = 0;
    for (const char *c = s; c < e; ++c) {
        char ch = *c;
        if (ch == '&') {
            static const struct {
                const char *ent;
                char ch;
            } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
            size_t k = 0, left = (size_t)(e - c);
            for (; k < sizeof(ents) / sizeof(ents[0]); ++k)
                if (left >= strlen(ents[k].ent) && memcmp(c, ents[k].ent, strlen(ents[k].ent)) == 0)
                    break;
            if (k < sizeof(ents) / sizeof(ents[0])) {
                ch = ents[k].ch;
                c += strlen(ents[k].ent) - 1;
            } else if (left > 3 && c[1] == '#') {
                char *stop;
                bool hex = c[2] == 'x';
                long v = strtol(c + 2 + hex, &stop, hex ? 16 : 10);
                if (stop >= e || *stop != ';' || v <= 0 || v > 0x7f)
                    return NULL; /* our keys are ASCII: anything else is no key of ours */
                ch = (char)v;
                c = stop;
            } else {
                return NULL;
            }
        }
        if (n + 1 >= cap)
            return NULL;
        out[n++] = ch;
    }
    out[n] = '\0';
    return e + strlen(close);
}

/* SHA-256 of len bytes of fd from off, hex. @return 0, or an errno */
static int
hash_range(int fd, uint64_t off, uint64_t len, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(HASH_CHUNK), md[32];
    int ret = ENOMEM;
    if (ctx == NULL || buf == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto Exit;
    while (len > 0) {
        size_t want = len < HASH_CHUNK ? (size_t)len : HASH_CHUNK;
        ssize_t r = pread(fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ret = r < 0 ? errno : EIO;
            goto Exit;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)r);
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (unsigned i = 0; i < 32; ++i)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    ret = 0;
Exit:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return ret;
}

static bool
ok_status(const upd_s3_result_t *res)
{
    return res->status >= 200 && res->status <= 299;
}

/* res's message prefixed with what was being done (the step and part), kept within the buffer */
static void
explain(upd_s3_result_t *res, const char *fmt, const char *key, unsigned part)
{
    char what[160], msg[sizeof(res->message)];
    snprintf(what, sizeof(what), fmt, key, part);
    snprintf(msg, sizeof(msg), "%.100s: %.150s", what, res->message);
    memcpy(res->message, msg, sizeof(msg));
}

static void
abort_upload(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, const char *query)
{
    upd_s3_result_t res;
    xfer_t x = {.res = &res, .fd = -1, .query = query};
    run(b, t, "DELETE", key, NULL, NULL, false, &x); /* best effort: a store that keeps the parts expires them itself */
}

int
upd_s3_put_large(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, int fd, uint64_t size, uint64_t part_size,
                 const char *content_type, unsigned retries, upd_s3_progress_cb progress, void *arg, upd_s3_result_t *res)
{
    char hex[65];
    int e;
    if (part_size < UPD_S3_PART_MIN)
        part_size = UPD_S3_PART_MIN;
    if (size <= part_size) {
        if ((e = hash_range(fd, 0, size, hex)) != 0) {
            memset(res, 0, sizeof(*res));
            snprintf(res->message, sizeof(res->message), "%s: reading %s: %s", b->name, key, strerror(e));
            return UPD_EIO;
        }
        int err = 0;
        for (unsigned attempt = 0; attempt <= retries; ++attempt) {
            xfer_t x = {.res = res, .fd = fd, .size = size};
            err = run(b, t, "PUT", key, hex, content_type, true, &x);
            if (err == 0 && (ok_status(res) || res->status < 500))
                break;
        }
        if (err == 0 && !ok_status(res))
            err = UPD_EIO;
        if (err == 0 && progress != NULL && progress(size, size, arg) != 0) {
            snprintf(res->message, sizeof(res->message), "%s: %s: cancelled", b->name, key);
            return UPD_EIO;
        }
        return err;
    }
    while ((size + part_size - 1) / part_size > UPD_S3_PARTS_MAX)
        part_size *= 2;
    unsigned nparts = (unsigned)((size + part_size - 1) / part_size);

    /* CreateMultipartUpload: the upload id from <UploadId> */
    body_t bd = {.cap = SMALL_BODY_MAX};
    char upload_id[512], query[640], *complete = NULL;
    static const char empty[1];
    xfer_t x = {.res = res, .fd = -1, .mem = empty, .size = 0, .sink = to_body, .sink_arg = &bd, .query = "uploads"};
    char ct[128];
    snprintf(ct, sizeof(ct), "%s", content_type != NULL ? content_type : "application/octet-stream");
    int err = run(b, t, "POST", key, NULL, ct, true, &x);
    if (err != 0 || !ok_status(res) || bd.data == NULL ||
        xml_text(bd.data, bd.data + bd.len, "UploadId", upload_id, sizeof(upload_id)) == NULL) {
        if (err == 0 && ok_status(res))
            snprintf(res->message, sizeof(res->message), "%s: %d without an UploadId", b->name, res->status);
        explain(res, "CreateMultipartUpload %.100s%.0u", key, 0);
        free(bd.data);
        return err != 0 ? err : UPD_EIO;
    }
    free(bd.data);
    char enc_id[1600];
    if (upd_sigv4_uri_encode(upload_id, strlen(upload_id), false, enc_id, sizeof(enc_id), NULL) != 0 ||
        (size_t)snprintf(query, sizeof(query), "uploadId=%s", enc_id) >= sizeof(query)) {
        snprintf(res->message, sizeof(res->message), "%s: CreateMultipartUpload %.100s: the upload id is too long", b->name, key);
        return UPD_EIO;
    }

    /* the parts, each with its ETag for the completion document */
    size_t cap = 128 + (size_t)nparts * (64 + sizeof(res->etag)), len = 0;
    if ((complete = malloc(cap)) == NULL)
        return UPD_ENOMEM;
    len += (size_t)snprintf(complete + len, cap - len, "<CompleteMultipartUpload>");
    for (unsigned part = 1; part <= nparts; ++part) {
        uint64_t off = (uint64_t)(part - 1) * part_size, plen = size - off < part_size ? size - off : part_size;
        if ((e = hash_range(fd, off, plen, hex)) != 0) {
            snprintf(res->message, sizeof(res->message), "%s: reading %.100s: %s", b->name, key, strerror(e));
            err = UPD_EIO;
            goto Abort;
        }
        char pq[sizeof(query) + 32];
        snprintf(pq, sizeof(pq), "partNumber=%u&%s", part, query);
        for (unsigned attempt = 0; attempt <= retries; ++attempt) {
            xfer_t px = {.res = res, .fd = fd, .size = plen, .base = off, .query = pq};
            err = run(b, t, "PUT", key, hex, NULL, true, &px);
            if (err == 0 && (ok_status(res) || res->status < 500))
                break;
        }
        if (err == 0 && (!ok_status(res) || res->etag[0] == '\0')) {
            if (ok_status(res))
                snprintf(res->message, sizeof(res->message), "%s: %d without an ETag", b->name, res->status);
            err = UPD_EIO;
        }
        if (err != 0) {
            explain(res, "UploadPart %.100s part %u", key, part);
            goto Abort;
        }
        /* an ETag is a quoted token of hex digits (and '-'): nothing XML would need escaped */
        if (strpbrk(res->etag, "<>&") != NULL) {
            snprintf(res->message, sizeof(res->message), "%s: UploadPart %.100s part %u: a malformed ETag", b->name, key, part);
            err = UPD_EIO;
            goto Abort;
        }
        len += (size_t)snprintf(complete + len, cap - len, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", part, res->etag);
        if (progress != NULL && progress(off + plen, size, arg) != 0) {
            snprintf(res->message, sizeof(res->message), "%s: %.100s: cancelled", b->name, key);
            err = UPD_EIO;
            goto Abort;
        }
    }
    len += (size_t)snprintf(complete + len, cap - len, "</CompleteMultipartUpload>");

    /* CompleteMultipartUpload may answer 200 and still fail: the error is then the body's */
    {
        body_t cb = {.cap = SMALL_BODY_MAX};
        char hash[65];
        upd_sigv4_sha256_hex(complete, len, hash);
        xfer_t cx = {.res = res, .fd = -1, .mem = complete, .size = len, .sink = to_body, .sink_arg = &cb, .query = query};
        err = run(b, t, "POST", key, hash, "application/xml", true, &cx);
        if (err == 0 && ok_status(res) && (cb.data == NULL || strstr(cb.data, "<Error>") != NULL ||
                                            strstr(cb.data, "CompleteMultipartUploadResult") == NULL)) {
            if (cb.data != NULL)
                upd_s3_error_code(cb.data, cb.len, res->code, sizeof(res->code));
            snprintf(res->message, sizeof(res->message), "%s: %d %s", b->name, res->status, res->code[0] ? res->code : "without a result");
            err = UPD_EIO;
        } else if (err == 0 && !ok_status(res)) {
            err = UPD_EIO;
        }
        free(cb.data);
        if (err != 0) {
            explain(res, "CompleteMultipartUpload %.100s%.0u", key, 0);
            goto Abort;
        }
    }
    free(complete);
    return 0;

Abort:
    free(complete);
    abort_upload(b, t, key, query);
    return err;
}

int
upd_s3_list(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *prefix,
            int (*cb)(const char *key, uint64_t size, void *arg), void *arg, upd_s3_result_t *res)
{
    char token[1024] = "", enc_prefix[1280], enc_token[3200], query[4800], key[1100], num[32];
    if (upd_sigv4_uri_encode(prefix, strlen(prefix), false, enc_prefix, sizeof(enc_prefix), NULL) != 0)
        return UPD_ETOOBIG;
    for (;;) {
        if (token[0] != '\0') {
            if (upd_sigv4_uri_encode(token, strlen(token), false, enc_token, sizeof(enc_token), NULL) != 0)
                return UPD_ETOOBIG;
            snprintf(query, sizeof(query), "continuation-token=%s&list-type=2&prefix=%s", enc_token, enc_prefix);
        } else {
            snprintf(query, sizeof(query), "list-type=2&prefix=%s", enc_prefix);
        }
        body_t bd = {.cap = LIST_PAGE_MAX};
        /* the bucket itself is listed: the empty key */
        xfer_t x = {.res = res, .fd = -1, .sink = to_body, .sink_arg = &bd, .query = query};
        int err = run(b, t, "GET", "", NULL, NULL, false, &x);
        if (err != 0 || !ok_status(res)) {
            if (bd.too_big)
                snprintf(res->message, sizeof(res->message), "%s: a listing page over %u bytes", b->name, LIST_PAGE_MAX);
            free(bd.data);
            return bd.too_big ? UPD_ETOOBIG : UPD_EIO;
        }
        const char *p = bd.data != NULL ? bd.data : "", *end = p + bd.len;
        if (memmem(p, bd.len, "<ListBucketResult", 17) == NULL) {
            snprintf(res->message, sizeof(res->message), "%s: %d: not a listing", b->name, res->status);
            free(bd.data);
            return UPD_EIO;
        }
        int stop = 0;
        for (const char *c; stop == 0 && (c = memmem(p, (size_t)(end - p), "<Contents>", 10)) != NULL;) {
            const char *ce = memmem(c, (size_t)(end - c), "</Contents>", 11);
            if (ce == NULL)
                break;
            if (xml_text(c, ce, "Key", key, sizeof(key)) != NULL && xml_text(c, ce, "Size", num, sizeof(num)) != NULL)
                stop = cb(key, strtoull(num, NULL, 10), arg);
            p = ce + 11;
        }
        char truncated[8] = "";
        const char *all = bd.data != NULL ? bd.data : "";
        xml_text(all, all + bd.len, "IsTruncated", truncated, sizeof(truncated));
        bool more = strcmp(truncated, "true") == 0 && xml_text(all, all + bd.len, "NextContinuationToken", token, sizeof(token)) != NULL;
        free(bd.data);
        if (stop != 0 || !more)
            return stop < 0 ? stop : 0;
    }
}

int
upd_s3_delete(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, upd_s3_result_t *res)
{
    xfer_t x = {.res = res, .fd = -1};
    return run(b, t, "DELETE", key, NULL, NULL, false, &x);
}
