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
    /* PUT: where the body comes from (fd with pread, or memory) */
    int fd;
    const char *mem;
    uint64_t size, offset;
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
        r = pread(x->fd, buf, want, (off_t)x->offset);
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
    int err = upd_s3_request_build(b, method, key, NULL, payload_hash, extra, n_extra, (int64_t)time(NULL), &req);
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

/* ---- listing (ListObjectsV2) ---- */

/*
 * Self-contained on purpose: the object key path of run() and upd_s3_request_build() has no query string, and a
 * listing is nothing but a query on the bucket. So the bucket's path is signed here with the query, and the answer (a
 * capped buffer) read with this thread's handle as run() does.
 */

typedef struct {
    char *data;
    size_t len;
    bool too_big;
} list_page_t;

static size_t
on_list_write(char *buf, size_t size, size_t n, void *arg)
{
    list_page_t *p = arg;
    size_t len = size * n;
    if (p->len + len > UPD_S3_LIST_PAGE_MAX) {
        p->too_big = true;
        return 0;
    }
    char *d = realloc(p->data, p->len + len + 1);
    if (d == NULL) {
        p->too_big = true;
        return 0;
    }
    memcpy(d + p->len, buf, len);
    p->data = d;
    p->len += len;
    p->data[p->len] = '\0';
    return len;
}

/* The text of the first <tag>...</tag> in [p, end) into out (XML's five entities decoded). @return where it ends, NULL */
static const char *
xml_text(const char *p, const char *end, const char *tag, char *out, size_t cap)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    size_t ol = strlen(open), cl = strlen(close);
    const char *s = NULL, *e = NULL;
    for (const char *q = p; q + ol <= end; ++q)
        if (memcmp(q, open, ol) == 0) {
            s = q + ol;
            break;
        }
    if (s == NULL)
        return NULL;
    for (const char *q = s; q + cl <= end; ++q)
        if (memcmp(q, close, cl) == 0) {
            e = q;
            break;
        }
    if (e == NULL)
        return NULL;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t n = 0;
    for (const char *q = s; q < e && n + 1 < cap;) {
        char c = *q++;
        if (c == '&')
            for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); ++i) {
                size_t el = strlen(ents[i].ent);
                if ((size_t)(e - q + 1) >= el && memcmp(q - 1, ents[i].ent, el) == 0) {
                    c = ents[i].c;
                    q += el - 1;
                    break;
                }
            }
        out[n++] = c;
    }
    out[n] = '\0';
    return e + cl;
}

/* one page: GET BUCKET?continuation-token=&list-type=2&prefix= */
static int
list_page(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *prefix, const char *token, list_page_t *page,
          upd_s3_result_t *res)
{
    char host[UPD_S3_HOST_MAX + 1 + 64], path[512], query[4096], enc_prefix[1024], enc_token[2048], url[UPD_S3_URL_MAX];
    if (upd_sigv4_uri_encode(prefix, strlen(prefix), false, enc_prefix, sizeof(enc_prefix), NULL) != 0 ||
        upd_sigv4_uri_encode(token, strlen(token), false, enc_token, sizeof(enc_token), NULL) != 0)
        return UPD_ETOOBIG;
    if (b->virtual_hosted) {
        snprintf(host, sizeof(host), "%s.%s", b->bucket, b->host);
        snprintf(path, sizeof(path), "%s/", b->base_path);
    } else {
        snprintf(host, sizeof(host), "%s", b->host);
        snprintf(path, sizeof(path), "%s/%s", b->base_path, b->bucket);
    }
    if ((size_t)snprintf(query, sizeof(query), "%s%s%slist-type=2&prefix=%s", token[0] != '\0' ? "continuation-token=" : "",
                         enc_token, token[0] != '\0' ? "&" : "", enc_prefix) >= sizeof(query))
        return UPD_ETOOBIG;
    if ((size_t)snprintf(url, sizeof(url), "%s://%s%s?%s", b->tls ? "https" : "http", host, path, query) >= sizeof(url))
        return UPD_ETOOBIG;
    upd_sigv4_header_t hdrs[1] = {{"host", host}};
    upd_sigv4_creds_t creds = {.access_key = b->access_key, .secret_key = b->secret_key};
    upd_sigv4_request_t sreq = {
        .method = "GET",
        .path = path,
        .query = query,
        .headers = hdrs,
        .num_headers = 1,
        .payload_hash = UPD_SIGV4_EMPTY_SHA256,
        .region = b->region,
        .service = "s3",
        .timestamp = time(NULL),
        .flags = UPD_SIGV4_FLAGS_S3,
    };
    upd_sigv4_result_t *sig = malloc(sizeof(*sig));
    if (sig == NULL)
        return UPD_ENOMEM;
    int err = upd_sigv4_sign_headers(&creds, &sreq, sig);
    struct curl_slist *headers = NULL;
    for (size_t i = 0; err == 0 && i < sig->num_headers; ++i) {
        char line[UPD_SIGV4_AUTH_MAX + 64];
        snprintf(line, sizeof(line), "%s: %s", sig->headers[i].name, sig->headers[i].value);
        struct curl_slist *h = curl_slist_append(headers, line);
        if (h == NULL)
            err = UPD_ENOMEM;
        else
            headers = h;
    }
    free(sig);
    CURL *curl = err == 0 ? thread_easy() : NULL;
    if (curl == NULL) {
        curl_slist_free_all(headers);
        snprintf(res->message, sizeof(res->message), "%s: cannot sign the listing: %s", b->name,
                 upd_strerror(err != 0 ? err : UPD_ENOMEM));
        return err != 0 ? err : UPD_ENOMEM;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)(t->connect_ms != 0 ? t->connect_ms : 2000));
    if (t->total_ms != 0)
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)t->total_ms);
    if (t->stall_ms != 0) {
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)((t->stall_ms + 999) / 1000));
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_list_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, page);
    CURLcode rc = curl_easy_perform(curl);
    long status = status_of(curl), connects = 0;
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
    __atomic_add_fetch(&requests_total, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&connections_total, (uint64_t)(connects > 0 ? connects : 0), __ATOMIC_RELAXED);
    curl_easy_reset(curl);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        snprintf(res->message, sizeof(res->message), "%s: listing %.100s: %.120s", b->name, prefix,
                 page->too_big ? "the answer is too large" : curl_err[0] ? curl_err : curl_easy_strerror(rc));
        return page->too_big ? UPD_ETOOBIG : UPD_EIO;
    }
    res->status = (int)status;
    if (status < 200 || status > 299) {
        upd_s3_error_code(page->data != NULL ? page->data : "", page->len, res->code, sizeof(res->code));
        snprintf(res->message, sizeof(res->message), "%s: listing %.100s: %d%s%s", b->name, prefix, res->status,
                 res->code[0] ? " " : "", res->code);
        return UPD_EIO;
    }
    snprintf(res->message, sizeof(res->message), "%s: %d", b->name, res->status);
    return 0;
}

int
upd_s3_list(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *prefix,
            int (*cb)(const char *key, uint64_t size, void *arg), void *arg, upd_s3_result_t *res)
{
    char token[1024] = "";
    memset(res, 0, sizeof(*res));
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        snprintf(res->message, sizeof(res->message), "%s: libcurl cannot be initialised", b->name);
        return UPD_EIO;
    }
    for (;;) {
        list_page_t page = {NULL, 0, false};
        int err = list_page(b, t, prefix, token, &page, res);
        if (err != 0) {
            free(page.data);
            return err;
        }
        const char *p = page.data != NULL ? page.data : "", *end = p + page.len;
        char truncated[8] = "";
        /* the answer's own fields, outside the <Contents> elements, come before them in S3's and R2's answers */
        const char *first = end;
        for (const char *q = p; q + 10 <= end; ++q)
            if (memcmp(q, "<Contents>", 10) == 0) {
                first = q;
                break;
            }
        xml_text(p, first, "IsTruncated", truncated, sizeof(truncated));
        char next[sizeof(token)] = "";
        if (strcmp(truncated, "true") == 0 && xml_text(p, end, "NextContinuationToken", next, sizeof(next)) == NULL) {
            free(page.data);
            snprintf(res->message, sizeof(res->message), "%s: listing %.100s: a truncated page without a continuation token",
                     b->name, prefix);
            return UPD_EIO;
        }
        for (const char *q = first; q < end;) {
            const char *cend = NULL;
            for (const char *r = q; r + 11 <= end; ++r)
                if (memcmp(r, "</Contents>", 11) == 0) {
                    cend = r + 11;
                    break;
                }
            if (cend == NULL)
                break;
            char key[1024], size[32] = "0";
            if (xml_text(q, cend, "Key", key, sizeof(key)) != NULL) {
                xml_text(q, cend, "Size", size, sizeof(size));
                int r = cb(key, strtoull(size, NULL, 10), arg);
                if (r != 0) {
                    free(page.data);
                    return r;
                }
            }
            q = cend;
        }
        free(page.data);
        if (strcmp(truncated, "true") != 0)
            return 0;
        memcpy(token, next, sizeof(token));
    }
}
