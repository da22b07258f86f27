#include "server/http.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <h2o/http1.h>
#include <h2o/http2.h>
#include "server/framing.h"
#include "base/hex.h"
#include "base/log.h"

typedef struct st_listener_t {
    h2o_socket_t *sock;
    h2o_accept_ctx_t accept_ctx;
} listener_t;

typedef struct st_upd_handler_t {
    h2o_handler_t super;
    const upd_http_opts_t *opts;
} upd_handler_t;

typedef struct st_access_logger_t {
    h2o_logger_t super;
    const upd_http_opts_t *opts;
} access_logger_t;

static h2o_globalconf_t globalconf;
static h2o_context_t ctx;
static listener_t *listeners;
static size_t nlisteners;
static SSL_CTX *ssl_ctx;
static int signal_pipe[2] = {-1, -1};
static volatile sig_atomic_t stop_requested;
static FILE *access_log;
static h2o_timeout_t flush_timeout;
static h2o_timeout_entry_t flush_entry;
static uint64_t request_seq;
static size_t requests_in_flight; /* paired exactly: +1 in on_req, -1 when the request's pool is cleared */
static char request_id_prefix[9];

h2o_context_t *
upd_http_context(void)
{
    return &ctx;
}

const char *
upd_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

void
upd_http_send(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = upd_http_reason(status);
    req->res.content_length = len; /* h2o_send_inline leaves it unset, and HTTP/1.1 would go chunked */
    if (content_type == NULL)
        content_type = "text/plain; charset=utf-8";
    /* an error is about this moment: no edge may keep it (a release could not purge an untagged 404) */
    if (status >= 400 && h2o_find_header(&req->res.headers, H2O_TOKEN_CACHE_CONTROL, -1) == -1)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_send_inline(req, body, len);
}

void
upd_http_send_text(h2o_req_t *req, int status, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    upd_http_send(req, status, NULL, buf, n);
}

void
upd_http_send_405_get_head(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD"));
    upd_http_send_text(req, 405, "method %.*s not allowed: use GET or HEAD", (int)(req->method.len > 16 ? 16 : req->method.len),
                       req->method.base);
}

const char *
upd_http_request_id(h2o_req_t *req)
{
    for (size_t i = 0; i != req->res.headers.size; ++i) {
        const h2o_header_t *h = req->res.headers.entries + i;
        if (h->name->len == 12 && memcmp(h->name->base, "x-request-id", 12) == 0)
            return h->value.base;
    }
    return "-";
}

socklen_t
upd_http_peer(h2o_req_t *req, struct sockaddr_storage *ss)
{
    return req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)ss);
}

const h2o_iovec_t *
upd_http_header(const h2o_req_t *req, const char *name, size_t name_len)
{
    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        if (h->name->len == name_len && memcmp(h->name->base, name, name_len) == 0)
            return &h->value;
    }
    return NULL;
}

bool
upd_http_if_none_match(const h2o_req_t *req, const char *etag, size_t etag_len)
{
    const h2o_iovec_t *inm = upd_http_header(req, H2O_STRLIT("if-none-match"));
    if (inm == NULL)
        return false;
    const char *p = inm->base, *end = inm->base + inm->len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            ++p;
        const char *s = p;
        while (p < end && *p != ',')
            ++p;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            --e;
        if (e - s >= 2 && s[0] == 'W' && s[1] == '/')
            s += 2;
        if (((size_t)(e - s) == etag_len && memcmp(s, etag, etag_len) == 0) || (e - s == 1 && *s == '*'))
            return true;
    }
    return false;
}

/* Runs the framing guard on an HTTP/1.x request: h2o keeps the raw head at the start of the
 * socket's input buffer until the response completes (see server/framing.h). */
static int
guard_http1(const upd_http_opts_t *opts, h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (sock == NULL || sock->input == NULL)
        return 0;
    upd_framing_info_t info;
    upd_framing_result_t r = upd_framing_check(sock->input->bytes, sock->input->size, opts->conf->max_header_bytes, &info);
    if (r == UPD_FRAMING_OK) {
        if (info.transfer_encoding) {
            /* chunked bodies are where h2o 2.2.5's decoder is lenient ("0_2e"): Content-Length only */
            upd_log_info("%s: refused: Transfer-Encoding in request", upd_http_request_id(req));
            req->http1_is_persistent = 0;
            upd_http_send_text(req, opts->allow_bodies ? 411 : 400, "Transfer-Encoding is not accepted%s",
                               opts->allow_bodies ? ": send a Content-Length" : "");
            upd_metrics_add(opts->metrics, UPD_COUNTER_FRAMING_REJECTED, 1);
            return -1;
        }
        return 0;
    }
    if (r == UPD_FRAMING_INCOMPLETE)
        return 0; /* h2o parsed a complete head, so this cannot happen; do not refuse on our own shortcoming */
    upd_log_info("%s: refused: %s", upd_http_request_id(req), upd_framing_reason(r));
    upd_metrics_add(opts->metrics, UPD_COUNTER_FRAMING_REJECTED, 1);
    req->http1_is_persistent = 0; /* whatever follows on this connection cannot be trusted */
    upd_http_send_text(req, r == UPD_FRAMING_TOO_LARGE ? 431 : 400, "%s", upd_framing_reason(r));
    return -1;
}

static void
on_request_done(void *unused)
{
    --requests_in_flight;
}

static int
on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    upd_handler_t *self = (upd_handler_t *)_self;
    const upd_http_opts_t *opts = self->opts;

    ++requests_in_flight;
    h2o_mem_alloc_shared(&req->pool, 1, on_request_done);

    /* PREFIX-SEQ, formatted by hand: this runs on every request */
    char *rid = h2o_mem_alloc_pool(&req->pool, 32), digits[20];
    int nd = 0;
    for (uint64_t seq = ++request_seq; seq != 0 || nd == 0; seq /= 10)
        digits[nd++] = (char)('0' + seq % 10);
    memcpy(rid, request_id_prefix, 8);
    rid[8] = '-';
    for (int i = 0; i < nd; ++i)
        rid[9 + i] = digits[nd - 1 - i];
    rid[9 + nd] = '\0';
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SERVER, NULL, H2O_STRLIT("updraft"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, rid, 9 + nd);

    if (req->version < 0x200 && guard_http1(opts, req) != 0)
        return 0;
    if (!opts->allow_bodies && req->entity.base != NULL && req->entity.len != 0 &&
        !(opts->accepts_body != NULL && opts->accepts_body(req))) {
        if (req->version < 0x200)
            req->http1_is_persistent = 0;
        upd_http_send_text(req, 400, "request bodies are not accepted here");
        return 0;
    }
    if (opts->on_req(opts->app, req) != 0)
        upd_http_send_text(req, 404, "not found");
    return 0;
}

char *
upd_http_log_field(h2o_req_t *req, const char *key, size_t cap)
{
    char *buf = h2o_mem_alloc_pool(&req->pool, cap);
    buf[0] = '\0';
    /* req->env is h2o's per-request key/value list (unused by the handlers we run): the logger reads it back */
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = h2o_iovec_init(key, strlen(key));
    req->env.entries[req->env.size++] = h2o_iovec_init(buf, cap);
    return buf;
}

/* The access log line is assembled by hand (memcpy and small integer writers, no printf): one is written per request. */
typedef struct {
    char buf[2048];
    size_t len;
} line_t;

static void
line_put(line_t *l, const char *s, size_t n)
{
    if (l->len + n > sizeof(l->buf)) {
        fwrite(l->buf, 1, l->len, access_log);
        l->len = 0;
        if (n > sizeof(l->buf)) {
            fwrite(s, 1, n, access_log);
            return;
        }
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

#define LINE_LIT(l, s) line_put((l), (s), sizeof(s) - 1)

static void
line_str(line_t *l, const char *s)
{
    line_put(l, s, strlen(s));
}

/* decimal, as %" PRIu64 " would write it */
static size_t
u64_dec(uint64_t v, char out[20])
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i != n; ++i)
        out[i] = tmp[n - 1 - i];
    return n;
}

static void
line_u64(line_t *l, uint64_t v)
{
    char d[20];
    line_put(l, d, u64_dec(v, d));
}

/* the peer's address as inet_ntop writes it; IPv4 by hand (glibc's inet_ntop formats it with sprintf) */
static void
line_peer(line_t *l, h2o_req_t *req)
{
    struct sockaddr_storage ss;
    char peer[INET6_ADDRSTRLEN];
    if (upd_http_peer(req, &ss) == 0) {
        LINE_LIT(l, "-");
    } else if (ss.ss_family == AF_INET) {
        const uint8_t *a = (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr;
        size_t n = 0;
        for (int i = 0; i != 4; ++i) {
            if (i != 0)
                peer[n++] = '.';
            n += u64_dec(a[i], peer + n);
        }
        line_put(l, peer, n);
    } else if (ss.ss_family == AF_INET6 &&
               inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer, sizeof(peer)) != NULL) {
        line_str(l, peer);
    } else {
        LINE_LIT(l, "-");
    }
}

/* "2026-11-29T01:52:31Z", formatted once per second */
static const char *
log_timestamp(void)
{
    static time_t last = (time_t)-1;
    static char ts[32];
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        last = now;
    }
    return ts;
}

/* key=value access log, one line per request; the path is quoted with \" \\ and \xNN escapes. */
static void
log_access(h2o_logger_t *_self, h2o_req_t *req)
{
    access_logger_t *self = (access_logger_t *)_self;
    const upd_http_opts_t *opts = self->opts;
    int64_t dur_us = 0;
    if (!h2o_timeval_is_null(&req->timestamps.request_begin_at)) {
        struct timeval now = *h2o_get_timestamp(&ctx, NULL, NULL);
        dur_us = (now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000LL +
                 (now.tv_usec - req->timestamps.request_begin_at.tv_usec);
        if (dur_us < 0)
            dur_us = 0;
    }
    size_t route = opts->route_of(req);
    upd_metrics_request(opts->metrics, route, req->res.status, (uint64_t)dur_us);
    if (access_log == NULL)
        return;

    static const char hex[] = "0123456789abcdef";
    char path[1024];
    size_t pl = 0;
    for (size_t i = 0; i < req->input.path.len && pl < sizeof(path) - 8; ++i) {
        unsigned char c = (unsigned char)req->input.path.base[i];
        if (c == '"' || c == '\\') {
            path[pl++] = '\\';
            path[pl++] = c;
        } else if (c < 0x20 || c >= 0x7f) {
            path[pl++] = '\\';
            path[pl++] = 'x';
            path[pl++] = hex[c >> 4];
            path[pl++] = hex[c & 15];
        } else {
            path[pl++] = c;
        }
    }
    const char *proto = req->version >= 0x200 ? "h2" : (req->version == 0x101 ? "http/1.1" : "http/1.0");
    line_t l;
    l.len = 0;
    LINE_LIT(&l, "ts=");
    line_str(&l, log_timestamp());
    LINE_LIT(&l, " id=");
    line_str(&l, upd_http_request_id(req));
    LINE_LIT(&l, " remote=");
    line_peer(&l, req);
    LINE_LIT(&l, " proto=");
    line_str(&l, proto);
    if (req->scheme == &H2O_URL_SCHEME_HTTPS)
        LINE_LIT(&l, "+tls");
    LINE_LIT(&l, " method=");
    /* %.*s: up to 16 bytes, and no further than a NUL */
    size_t ml = req->input.method.len > 16 ? 16 : req->input.method.len;
    line_put(&l, req->input.method.base, ml != 0 ? strnlen(req->input.method.base, ml) : 0);
    LINE_LIT(&l, " path=\"");
    line_put(&l, path, strnlen(path, pl));
    LINE_LIT(&l, "\" route=");
    line_str(&l, opts->route_names[route]);
    LINE_LIT(&l, " status=");
    if (req->res.status < 0) {
        LINE_LIT(&l, "-");
        line_u64(&l, (uint64_t)(-(int64_t)req->res.status));
    } else {
        line_u64(&l, (uint64_t)req->res.status);
    }
    LINE_LIT(&l, " bytes=");
    line_u64(&l, req->bytes_sent);
    LINE_LIT(&l, " dur_us=");
    line_u64(&l, (uint64_t)dur_us);
    for (size_t i = 0; i + 1 < req->env.size; i += 2) {
        const h2o_iovec_t *k = &req->env.entries[i], *v = &req->env.entries[i + 1];
        size_t vl = strnlen(v->base, v->len);
        if (vl != 0) {
            LINE_LIT(&l, " ");
            line_put(&l, k->base, strnlen(k->base, k->len));
            LINE_LIT(&l, "=");
            line_put(&l, v->base, vl);
        }
    }
    LINE_LIT(&l, "\n");
    fwrite(l.buf, 1, l.len, access_log);
}

static void
on_flush_timeout(h2o_timeout_entry_t *entry)
{
    fflush(access_log);
    h2o_timeout_link(ctx.loop, &flush_timeout, entry);
}

static void
on_accept(h2o_socket_t *sock, const char *err)
{
    if (err != NULL)
        return;
    listener_t *l = sock->data;
    h2o_socket_t *conn = h2o_evloop_socket_accept(sock);
    if (conn != NULL)
        h2o_accept(&l->accept_ctx, conn);
}

static void
on_signal(int signo)
{
    stop_requested = 1;
    if (signal_pipe[1] >= 0) {
        ssize_t r = write(signal_pipe[1], "x", 1);
        (void)r;
    }
}

static void
on_signal_pipe(h2o_socket_t *sock, const char *err)
{
    /* the bytes only wake the loop; stop_requested says what to do */
    h2o_buffer_consume(&sock->input, sock->input->size);
}

/* "127.0.0.1:8080", "[::1]:0", "https://0.0.0.0:8443", "localhost:8080" */
static int
open_listener(const char *spec, listener_t *l, const upd_http_opts_t *opts)
{
    bool tls = false;
    const char *hostport = spec;
    if (strncmp(spec, "https://", 8) == 0) {
        tls = true;
        hostport += 8;
    } else if (strncmp(spec, "http://", 7) == 0) {
        hostport += 7;
    }
    char host[256];
    const char *colon = strrchr(hostport, ':'), *port;
    if (colon == NULL || colon == hostport || colon[1] == '\0') {
        upd_log_error("listen %s: expected ADDR:PORT", spec);
        return -1;
    }
    size_t hl = colon - hostport;
    if (hostport[0] == '[' && hl >= 2 && hostport[hl - 1] == ']') {
        ++hostport;
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        upd_log_error("listen %s: address too long", spec);
        return -1;
    }
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    port = colon + 1;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res;
    int gai = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res);
    if (gai != 0) {
        upd_log_error("listen %s: %s", spec, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
        upd_log_error("listen %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    if (tls && ssl_ctx == NULL) {
        upd_log_error("listen %s: TLS needs tls.cert and tls.key (--tls-cert/--tls-key)", spec);
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);

    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char addr[INET6_ADDRSTRLEN];
    int bound_port;
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
        bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
        bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    /* tests and scripts read this line to learn the port when 0 was asked for */
    printf("%s: listening on %s://%s%s%s:%d\n", opts->program, tls ? "https" : "http", ss.ss_family == AF_INET6 ? "[" : "", addr,
           ss.ss_family == AF_INET6 ? "]" : "", bound_port);
    fflush(stdout);

    l->accept_ctx.ctx = &ctx;
    l->accept_ctx.hosts = globalconf.hosts;
    l->accept_ctx.ssl_ctx = tls ? ssl_ctx : NULL;
    l->sock = h2o_evloop_socket_create(ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    l->sock->data = l;
    h2o_socket_read_start(l->sock, on_accept);
    return 0;
}

static int
setup_tls(const upd_conf_t *conf)
{
    if (conf->tls_cert == NULL || conf->tls_cert[0] == '\0' || conf->tls_key == NULL || conf->tls_key[0] == '\0')
        return 0;
    ssl_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx, conf->tls_cert) != 1) {
        upd_log_error("tls.cert %s: cannot load: %s", conf->tls_cert, ERR_reason_error_string(ERR_get_error()));
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ssl_ctx, conf->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ssl_ctx) != 1) {
        upd_log_error("tls.key %s: cannot load or does not match the certificate: %s", conf->tls_key,
                      ERR_reason_error_string(ERR_get_error()));
        return -1;
    }
    h2o_ssl_register_alpn_protocols(ssl_ctx, h2o_http2_alpn_protocols);
    return 0;
}

/* h2o 2.2.5 has no shutdown hook for HTTP/1, so idle keep-alive connections would linger until their
 * timeout: wait for the requests, not the connections, and drop what is idle (as nginx does). */
static bool
has_work(void)
{
    return requests_in_flight != 0;
}

int
upd_http_run(const upd_http_opts_t *opts)
{
    const upd_conf_t *conf = opts->conf;
    signal(SIGPIPE, SIG_IGN);

    {
        /* request ids: a random prefix per process, then a counter */
        uint8_t rnd[4];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            memset(rnd, 0, sizeof(rnd));
        upd_hex_encode(rnd, sizeof(rnd), request_id_prefix);
    }

    h2o_config_init(&globalconf);
    /* no server_name: h2o 2.2.5 would write it with a sprintf of its own on every HTTP/1 response; on_req adds the header */
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT(""));
    globalconf.max_request_entity_size = conf->max_body_bytes;
    globalconf.http1.req_timeout = conf->idle_timeout_ms;
    globalconf.http2.idle_timeout = conf->idle_timeout_ms;
    globalconf.http2.graceful_shutdown_timeout = conf->shutdown_timeout_ms;
    globalconf.http2.max_concurrent_requests_per_connection = conf->http2_max_streams;
    h2o_hostconf_t *hostconf = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    upd_handler_t *handler = (upd_handler_t *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->opts = opts;
    access_logger_t *logger = (access_logger_t *)h2o_create_logger(pathconf, sizeof(*logger));
    logger->super.log_access = log_access;
    logger->opts = opts;

    if (conf->access_log != NULL && conf->access_log[0] != '\0') {
        if (strcmp(conf->access_log, "-") == 0) {
            access_log = stdout;
        } else if ((access_log = fopen(conf->access_log, "a")) == NULL) {
            upd_log_error("log.access %s: %s", conf->access_log, strerror(errno));
            return 1;
        }
        /* fully buffered, flushed once a second: a write per request would cost more than the request */
        setvbuf(access_log, NULL, _IOFBF, 64 * 1024);
    }

    h2o_context_init(&ctx, h2o_evloop_create(), &globalconf);
    if (setup_tls(conf) != 0)
        return 1;
    if (opts->on_loop_start != NULL && opts->on_loop_start(opts->app, &ctx) != 0)
        return 1;
    if (access_log != NULL) {
        h2o_timeout_init(ctx.loop, &flush_timeout, 1000);
        flush_entry.cb = on_flush_timeout;
        h2o_timeout_link(ctx.loop, &flush_timeout, &flush_entry);
    }
    if (conf->listen.size == 0) {
        upd_log_error("no listener: set listen in the config file or pass --listen");
        return 1;
    }
    listeners = calloc(conf->listen.size, sizeof(*listeners));
    for (size_t i = 0; i < conf->listen.size; ++i) {
        if (open_listener(conf->listen.items[i], &listeners[i], opts) != 0)
            return 1;
        ++nlisteners;
    }

    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        upd_log_error("pipe: %s", strerror(errno));
        return 1;
    }
    h2o_socket_t *sigsock = h2o_evloop_socket_create(ctx.loop, signal_pipe[0], 0);
    h2o_socket_read_start(sigsock, on_signal_pipe);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    while (!stop_requested)
        h2o_evloop_run(ctx.loop, opts->next_wait != NULL ? opts->next_wait(opts->app) : INT32_MAX);

    /* graceful shutdown: stop accepting, ask h2o to wind down (HTTP/2 GOAWAY, no more keep-alive),
     * and let in-flight responses finish within the bound */
    upd_log_info("shutting down: no longer accepting connections");
    for (size_t i = 0; i < nlisteners; ++i) {
        h2o_socket_read_stop(listeners[i].sock);
        h2o_socket_close(listeners[i].sock);
    }
    h2o_context_request_shutdown(&ctx);
    uint64_t deadline = h2o_now(ctx.loop) + conf->shutdown_timeout_ms;
    while (has_work() && h2o_now(ctx.loop) < deadline) {
        int32_t wait = opts->next_wait != NULL ? opts->next_wait(opts->app) : 50;
        h2o_evloop_run(ctx.loop, wait < 50 ? wait : 50);
    }
    if (has_work())
        upd_log_warn("shutdown: %zu requests still open after %" PRIu64 " ms; closing them", requests_in_flight,
                     conf->shutdown_timeout_ms);
    h2o_socket_read_stop(sigsock);
    h2o_socket_close(sigsock);
    /* one more turn: flushes responses finished in the last callback and completes the close */
    h2o_evloop_run(ctx.loop, 0);
    if (opts->on_loop_stop != NULL)
        opts->on_loop_stop(opts->app);
    if (access_log != NULL) {
        h2o_timeout_unlink(&flush_entry);
        h2o_timeout_dispose(ctx.loop, &flush_timeout);
        if (access_log != stdout)
            fclose(access_log);
        else
            fflush(access_log);
    }
    upd_log_info("stopped");
    return 0;
}
