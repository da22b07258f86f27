/*
 * libcurl multi on the h2o loop. curl tells us which sockets it wants watched (on_curl_socket) and
 * when it next wants a timeout action (on_curl_timer); the loop watches the sockets with
 * H2O_SOCKET_FLAG_DONT_READ (h2o only notifies, curl reads) and runs the timer from the context's
 * zero timeout, so every curl callback, and every write our callers make from them, happens inside
 * a loop callback (STACK-NOTES.md Trap 1).
 */
#include "loop/s3_loop.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "base/err.h"
#include "base/log.h"

/* one socket of curl's, watched by the loop */
typedef struct st_watch_t {
    upd_s3_loop_t *l;
    curl_socket_t fd;
    h2o_socket_t *sock;
    bool want_write;
    struct st_watch_t *next;
} watch_t;

struct st_upd_s3_loop_t {
    h2o_loop_t *loop;
    h2o_timeout_t *zero_timeout;
    upd_s3_loop_conf_t conf;
    CURLM *multi;
    uint64_t timer_at; /* loop time (ms) of curl's next timeout action; UINT64_MAX: none */
    h2o_timeout_entry_t timer_entry;
    h2o_timeout_t first_byte_timeout, stall_timeout;
    watch_t *watches;
    watch_t *in_callback; /* the watch whose event is being handled (cleared if curl removes it meanwhile) */
    h2o_linklist_t gets;
    size_t active;
};

struct st_upd_s3_get_t {
    upd_s3_loop_t *l;
    CURL *easy;
    upd_s3_request_t req;
    const upd_s3_get_cb_t *cb;
    void *arg;
    h2o_linklist_t link;
    h2o_timeout_entry_t first_byte_entry, stall_entry, resume_entry;
    int status;              /* of the final response (after any 1xx) */
    uint64_t range_start;    /* from Content-Range */
    uint64_t range_total;    /* from Content-Range, UINT64_MAX when absent */
    bool head_sent;          /* on_head called */
    bool paused;
    bool aborted;            /* on_head or on_data asked to stop */
    upd_s3_outcome_kind_t forced; /* a timeout of ours ended it (UPD_S3_OK: none) */
    uint64_t bytes;
    char errbuf[CURL_ERROR_SIZE];
    char etag[80];
    char body[1024]; /* the start of a non-2xx answer's body, for S3's error code */
    size_t body_len;
};

const char *
upd_s3_outcome_name(upd_s3_outcome_kind_t k)
{
    static const char *const names[UPD_S3_OUTCOME_COUNT] = {"ok", "http", "connect", "first_byte", "stall", "transport", "aborted"};
    return k < UPD_S3_OUTCOME_COUNT ? names[k] : "unknown";
}

/* ---- sockets ---- */

static void on_socket_event(upd_s3_loop_t *l, watch_t *w, int ev);

static void
on_readable(h2o_socket_t *sock, const char *err)
{
    watch_t *w = sock->data;
    on_socket_event(w->l, w, CURL_CSELECT_IN | (err != NULL ? CURL_CSELECT_ERR : 0));
}

static void
on_writable(h2o_socket_t *sock, const char *err)
{
    watch_t *w = sock->data;
    on_socket_event(w->l, w, CURL_CSELECT_OUT | (err != NULL ? CURL_CSELECT_ERR : 0));
}

static void check_done(upd_s3_loop_t *l);

static void
on_socket_event(upd_s3_loop_t *l, watch_t *w, int ev)
{
    int running;
    l->in_callback = w;
    curl_multi_socket_action(l->multi, w->fd, ev, &running);
    /* h2o's write notification fires once: arm it again while curl still wants to write */
    if (l->in_callback != NULL && w->want_write && w->sock->_cb.write == NULL)
        h2o_socket_notify_write(w->sock, on_writable);
    l->in_callback = NULL;
    check_done(l);
}

/* Stops watching a socket without closing it: curl owns the descriptor. */
static void
unwatch(upd_s3_loop_t *l, watch_t *w)
{
    watch_t **pp = &l->watches;
    while (*pp != w)
        pp = &(*pp)->next;
    *pp = w->next;
    if (l->in_callback == w)
        l->in_callback = NULL;
    if (h2o_socket_is_reading(w->sock))
        h2o_socket_read_stop(w->sock);
    /* h2o_socket_export refuses a socket with a write notification armed; disarm it first */
    w->sock->_cb.write = NULL;
    h2o_socket_export_t info;
    if (h2o_socket_export(w->sock, &info) == 0)
        h2o_buffer_dispose(&info.input);
    curl_multi_assign(l->multi, w->fd, NULL);
    free(w);
}

static int
on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    upd_s3_loop_t *l = userp;
    watch_t *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w != NULL)
            unwatch(l, w);
        return 0;
    }
    if (w == NULL) {
        if ((w = calloc(1, sizeof(*w))) == NULL)
            return -1;
        w->l = l;
        w->fd = fd;
        w->sock = h2o_evloop_socket_create(l->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        w->sock->data = w;
        w->next = l->watches;
        l->watches = w;
        curl_multi_assign(l->multi, fd, w);
    }
    if ((what & CURL_POLL_IN) != 0) {
        if (!h2o_socket_is_reading(w->sock))
            h2o_socket_read_start(w->sock, on_readable);
    } else if (h2o_socket_is_reading(w->sock)) {
        h2o_socket_read_stop(w->sock);
    }
    w->want_write = (what & CURL_POLL_OUT) != 0;
    if (w->want_write && w->sock->_cb.write == NULL)
        h2o_socket_notify_write(w->sock, on_writable);
    return 0;
}

/* curl may close a socket it never reported as removed: stop watching it first */
static int
on_curl_close(void *userp, curl_socket_t fd)
{
    upd_s3_loop_t *l = userp;
    for (watch_t *w = l->watches; w != NULL; w = w->next) {
        if (w->fd == fd) {
            unwatch(l, w);
            break;
        }
    }
    return close(fd);
}

/* ---- curl's timer ---- */

static void
on_timer(h2o_timeout_entry_t *entry)
{
    upd_s3_loop_t *l = H2O_STRUCT_FROM_MEMBER(upd_s3_loop_t, timer_entry, entry);
    int running;
    l->timer_at = UINT64_MAX; /* curl sets the next one through on_curl_timer */
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(l);
}

static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    upd_s3_loop_t *l = userp;
    if (timeout_ms < 0) {
        l->timer_at = UINT64_MAX;
        if (h2o_timeout_is_linked(&l->timer_entry))
            h2o_timeout_unlink(&l->timer_entry);
        return 0;
    }
    l->timer_at = h2o_now(l->loop) + (uint64_t)timeout_ms;
    if (timeout_ms == 0 && !h2o_timeout_is_linked(&l->timer_entry))
        h2o_timeout_link(l->loop, l->zero_timeout, &l->timer_entry);
    return 0;
}

int32_t
upd_s3_loop_next_wait(upd_s3_loop_t *l)
{
    if (l == NULL || l->timer_at == UINT64_MAX)
        return INT32_MAX;
    uint64_t now = h2o_now(l->loop);
    if (now >= l->timer_at) {
        if (!h2o_timeout_is_linked(&l->timer_entry))
            h2o_timeout_link(l->loop, l->zero_timeout, &l->timer_entry);
        return 0;
    }
    uint64_t left = l->timer_at - now;
    return left > INT32_MAX ? INT32_MAX : (int32_t)left;
}

size_t
upd_s3_loop_active(const upd_s3_loop_t *l)
{
    return l->active;
}

/* ---- transfers ---- */

static void
get_free(upd_s3_get_t *g)
{
    upd_s3_loop_t *l = g->l;
    if (h2o_timeout_is_linked(&g->first_byte_entry))
        h2o_timeout_unlink(&g->first_byte_entry);
    if (h2o_timeout_is_linked(&g->stall_entry))
        h2o_timeout_unlink(&g->stall_entry);
    if (h2o_timeout_is_linked(&g->resume_entry))
        h2o_timeout_unlink(&g->resume_entry);
    h2o_linklist_unlink(&g->link);
    curl_multi_remove_handle(l->multi, g->easy);
    curl_easy_cleanup(g->easy);
    upd_s3_request_dispose(&g->req);
    free(g);
    --l->active;
}

static void
finish(upd_s3_get_t *g, CURLcode rc)
{
    upd_s3_outcome_t o = {.kind = UPD_S3_OK, .status = g->status, .bytes = g->bytes};
    memcpy(o.etag, g->etag, sizeof(o.etag));
    long connects = 0;
    curl_easy_getinfo(g->easy, CURLINFO_NUM_CONNECTS, &connects);
    o.connects = connects > 0 ? (unsigned)connects : 0;
    if (g->forced != UPD_S3_OK) {
        o.kind = g->forced;
        snprintf(o.message, sizeof(o.message), "%s", o.kind == UPD_S3_FIRST_BYTE ? "no answer within the first-byte timeout"
                                                                                 : "no bytes within the stall timeout");
    } else if (g->aborted) {
        o.kind = UPD_S3_ABORTED;
        snprintf(o.message, sizeof(o.message), "stopped by the reader");
    } else if (rc == CURLE_OK && g->status >= 200 && g->status < 300) {
        if (!g->head_sent && g->cb->on_head != NULL) {
            /* an empty body: the head was never announced */
            g->head_sent = true;
            curl_off_t cl = -1;
            curl_easy_getinfo(g->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
            uint64_t total = g->range_total != UINT64_MAX ? g->range_total : cl >= 0 ? (uint64_t)cl : UINT64_MAX;
            if (g->cb->on_head(g, g->status, g->range_start, total, g->arg) != 0) {
                o.kind = UPD_S3_ABORTED;
                snprintf(o.message, sizeof(o.message), "stopped by the reader");
            }
        }
    } else if (rc == CURLE_OK) {
        o.kind = UPD_S3_HTTP;
        upd_s3_error_code(g->body, g->body_len, o.code, sizeof(o.code));
        snprintf(o.message, sizeof(o.message), "%d %s", g->status, o.code[0] ? o.code : "(no S3 error code)");
    } else {
        switch (rc) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_SSL_CONNECT_ERROR:
            o.kind = UPD_S3_CONNECT;
            break;
        case CURLE_OPERATION_TIMEDOUT: {
            /* libcurl's only clock here is the connect timeout */
            curl_off_t connect_us = 0;
            curl_easy_getinfo(g->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
            o.kind = connect_us == 0 ? UPD_S3_CONNECT : UPD_S3_FIRST_BYTE;
            break;
        }
        case CURLE_WRITE_ERROR:
            o.kind = UPD_S3_ABORTED;
            break;
        default:
            o.kind = UPD_S3_TRANSPORT;
            break;
        }
        snprintf(o.message, sizeof(o.message), "%.180s", g->errbuf[0] ? g->errbuf : curl_easy_strerror(rc));
    }
    g->cb->on_done(g, &o, g->arg);
    get_free(g);
}

static void
check_done(upd_s3_loop_t *l)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        upd_s3_get_t *g;
        CURLcode rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&g);
        finish(g, rc);
    }
}

/* Our own clocks end a transfer from a timeout callback (never inside curl): report it at once. */
static void
force_end(upd_s3_get_t *g, upd_s3_outcome_kind_t kind)
{
    g->forced = kind;
    finish(g, CURLE_OPERATION_TIMEDOUT);
}

static void
on_first_byte_timeout(h2o_timeout_entry_t *entry)
{
    force_end(H2O_STRUCT_FROM_MEMBER(upd_s3_get_t, first_byte_entry, entry), UPD_S3_FIRST_BYTE);
}

static void
on_stall_timeout(h2o_timeout_entry_t *entry)
{
    force_end(H2O_STRUCT_FROM_MEMBER(upd_s3_get_t, stall_entry, entry), UPD_S3_STALL);
}

static void
on_resume(h2o_timeout_entry_t *entry)
{
    upd_s3_get_t *g = H2O_STRUCT_FROM_MEMBER(upd_s3_get_t, resume_entry, entry);
    if (!g->paused)
        return;
    g->paused = false;
    h2o_timeout_link(g->l->loop, &g->l->stall_timeout, &g->stall_entry);
    /* may hand over the bytes curl held back at once (on_data runs inside this call) */
    curl_easy_pause(g->easy, CURLPAUSE_CONT);
    check_done(g->l);
}

void
upd_s3_get_resume(upd_s3_get_t *g)
{
    if (g->paused && !h2o_timeout_is_linked(&g->resume_entry))
        h2o_timeout_link(g->l->loop, g->l->zero_timeout, &g->resume_entry);
}

void
upd_s3_get_cancel(upd_s3_get_t *g)
{
    get_free(g);
}

static uint64_t
parse_u64(const char **p, const char *end, bool *ok)
{
    uint64_t v = 0;
    const char *s = *p;
    if (s == end || *s < '0' || *s > '9')
        *ok = false;
    while (s < end && *s >= '0' && *s <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            *ok = false;
        v = v * 10 + (uint64_t)(*s++ - '0');
    }
    *p = s;
    return v;
}

static size_t
on_header(char *buf, size_t size, size_t n, void *arg)
{
    upd_s3_get_t *g = arg;
    size_t len = size * n;
    const char *end = buf + len;
    if (len > 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* a new response (after a 1xx, or a redirect we do not follow): forget the previous one's fields */
        const char *sp = memchr(buf, ' ', len);
        g->status = sp != NULL && end - sp > 4 ? atoi(sp + 1) : 0;
        g->range_start = 0;
        g->range_total = UINT64_MAX;
        g->etag[0] = '\0';
    } else if (len > 5 && strncasecmp(buf, "etag:", 5) == 0) {
        const char *p = buf + 5;
        while (p < end && *p == ' ')
            ++p;
        size_t n = 0;
        while (p + n < end && p[n] != '\r' && p[n] != '\n' && n + 1 < sizeof(g->etag))
            ++n;
        memcpy(g->etag, p, n);
        g->etag[n] = '\0';
    } else if (len > 14 && strncasecmp(buf, "content-range:", 14) == 0) {
        /* Content-Range: bytes START-END/TOTAL */
        const char *p = buf + 14;
        while (p < end && *p == ' ')
            ++p;
        if (end - p > 6 && memcmp(p, "bytes ", 6) == 0) {
            bool ok = true;
            p += 6;
            uint64_t start = parse_u64(&p, end, &ok);
            if (p < end && *p == '-')
                ++p;
            parse_u64(&p, end, &ok);
            if (p < end && *p == '/')
                ++p;
            uint64_t total = parse_u64(&p, end, &ok);
            if (ok) {
                g->range_start = start;
                g->range_total = total;
            }
        }
    }
    return len;
}

/*
 * The first-byte clock starts here, when libcurl is about to send the request on a connection it has (new or
 * reused): CURLOPT_PREREQFUNCTION runs after the connection (and TLS) is up and before the request goes out. A
 * transfer added to the multi handle may first wait behind CURLMOPT_MAX_HOST_CONNECTIONS for a connection; the
 * backend has not been asked anything yet, so that wait must not count as a slow answer (100 cold misses at once
 * would otherwise time out the ones that queued, and open a healthy backend's breaker). Connecting is bounded by
 * libcurl's own CURLOPT_CONNECTTIMEOUT_MS, which counts from when the transfer leaves that wait. The other signals
 * are wrong for this: the first response header is what the clock waits for, and CURLINFO_PRETRANSFER_TIME_T is
 * only a timestamp to read afterwards, with no callback.
 */
static int
on_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    upd_s3_get_t *g = arg;
    if (!g->head_sent && !h2o_timeout_is_linked(&g->first_byte_entry))
        h2o_timeout_link(g->l->loop, &g->l->first_byte_timeout, &g->first_byte_entry);
    return CURL_PREREQFUNC_OK;
}

static size_t
on_write(char *buf, size_t size, size_t n, void *arg)
{
    upd_s3_get_t *g = arg;
    size_t len = size * n;
    if (!(g->status >= 200 && g->status < 300)) {
        /* an error answer: keep its start for the S3 error code */
        size_t room = sizeof(g->body) - g->body_len;
        size_t take = len < room ? len : room;
        memcpy(g->body + g->body_len, buf, take);
        g->body_len += take;
        return len;
    }
    if (h2o_timeout_is_linked(&g->first_byte_entry))
        h2o_timeout_unlink(&g->first_byte_entry);
    if (!g->head_sent) {
        g->head_sent = true;
        curl_off_t cl = -1;
        curl_easy_getinfo(g->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        uint64_t total = g->range_total != UINT64_MAX ? g->range_total : cl >= 0 ? (uint64_t)cl : UINT64_MAX;
        if (g->cb->on_head != NULL && g->cb->on_head(g, g->status, g->range_start, total, g->arg) != 0) {
            g->aborted = true;
            return 0; /* CURLE_WRITE_ERROR */
        }
    }
    int r = g->cb->on_data(g, (const uint8_t *)buf, len, g->arg);
    if (r == UPD_S3_PAUSE) {
        g->paused = true;
        if (h2o_timeout_is_linked(&g->stall_entry))
            h2o_timeout_unlink(&g->stall_entry);
        return CURL_WRITEFUNC_PAUSE;
    }
    if (r != 0) {
        g->aborted = true;
        return 0;
    }
    g->bytes += len;
    /* the stall clock restarts with every byte */
    if (h2o_timeout_is_linked(&g->stall_entry))
        h2o_timeout_unlink(&g->stall_entry);
    h2o_timeout_link(g->l->loop, &g->l->stall_timeout, &g->stall_entry);
    return len;
}

upd_s3_get_t *
upd_s3_get_start(upd_s3_loop_t *l, const upd_s3_backend_t *b, const char *key, uint64_t from, const char *const *extra,
                 size_t n_extra, const upd_s3_get_cb_t *cb, void *arg)
{
    upd_s3_get_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->l = l;
    g->cb = cb;
    g->arg = arg;
    g->range_total = UINT64_MAX;
    g->first_byte_entry.cb = on_first_byte_timeout;
    g->stall_entry.cb = on_stall_timeout;
    g->resume_entry.cb = on_resume;
    char range[48];
    if (from != 0)
        snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", from);
    int err = upd_s3_request_build(b, "GET", key, from != 0 ? range : NULL, NULL, extra, n_extra, (int64_t)time(NULL), &g->req);
    if (err != 0) {
        upd_log_error("backend %s: cannot sign GET %s: %s", b->name, key, upd_strerror(err));
        free(g);
        return NULL;
    }
    if ((g->easy = curl_easy_init()) == NULL) {
        upd_s3_request_dispose(&g->req);
        free(g);
        return NULL;
    }
    CURL *e = g->easy;
    curl_easy_setopt(e, CURLOPT_URL, g->req.url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, g->req.headers);
    curl_easy_setopt(e, CURLOPT_PRIVATE, g);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, g);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, g->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never an environment proxy between the origin and its backends */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)l->conf.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_curl_close);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, l);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, g);
    h2o_linklist_insert(&l->gets, &g->link);
    ++l->active;
    if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
        upd_log_error("backend %s: libcurl refused a transfer", b->name);
        h2o_linklist_unlink(&g->link);
        --l->active;
        curl_easy_cleanup(e);
        upd_s3_request_dispose(&g->req);
        free(g);
        return NULL;
    }
    return g;
}

upd_s3_loop_t *
upd_s3_loop_create(h2o_loop_t *loop, h2o_timeout_t *zero_timeout, const upd_s3_loop_conf_t *conf)
{
    static bool curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = true;
    }
    upd_s3_loop_t *l = calloc(1, sizeof(*l));
    if (l == NULL || (l->multi = curl_multi_init()) == NULL) {
        free(l);
        return NULL;
    }
    l->loop = loop;
    l->zero_timeout = zero_timeout;
    l->conf = *conf;
    l->timer_at = UINT64_MAX;
    l->timer_entry.cb = on_timer;
    h2o_linklist_init_anchor(&l->gets);
    h2o_timeout_init(loop, &l->first_byte_timeout, conf->first_byte_timeout_ms);
    h2o_timeout_init(loop, &l->stall_timeout, conf->stall_timeout_ms);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, 64L);
    return l;
}

void
upd_s3_loop_destroy(upd_s3_loop_t *l)
{
    if (l == NULL)
        return;
    while (!h2o_linklist_is_empty(&l->gets))
        get_free(H2O_STRUCT_FROM_MEMBER(upd_s3_get_t, link, l->gets.next));
    curl_multi_cleanup(l->multi); /* closes the cached connections through on_curl_close */
    while (l->watches != NULL)
        unwatch(l, l->watches);
    if (h2o_timeout_is_linked(&l->timer_entry))
        h2o_timeout_unlink(&l->timer_entry);
    h2o_timeout_dispose(l->loop, &l->first_byte_timeout);
    h2o_timeout_dispose(l->loop, &l->stall_timeout);
    free(l);
}
