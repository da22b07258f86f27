#ifndef UPD_HTTP_H
#define UPD_HTTP_H

#include <h2o.h>
#include <stdbool.h>
#include "server/config.h"
#include "server/metrics.h"

/*
 * The HTTP front shared by updraft-origin and updraft-control: listeners (plain HTTP/1.1 and h2c,
 * or TLS 1.2+ with ALPN h2), the framing guard in front of every handler, the access log, request
 * metrics, and graceful shutdown on SIGTERM/SIGINT.
 */

typedef struct st_upd_http_opts_t {
    const char *program;
    const upd_conf_t *conf;
    /* Handles a request that passed the guard. @return 0 when it answered, -1 for 404 */
    int (*on_req)(void *app, h2o_req_t *req);
    /* Maps a request to its metrics route label index (must be cheap: it runs once per request). */
    size_t (*route_of)(const h2o_req_t *req);
    const char *const *route_names;
    size_t nroutes;
    void *app;
    /* Public origin routes take no request body at all; the control API takes Content-Length bodies. */
    bool allow_bodies;
    /* Optional, with allow_bodies false: the requests that may carry a body all the same (an internal route). */
    bool (*accepts_body)(const h2o_req_t *req);
    upd_metrics_t *metrics;
    /* Optional: called once the loop exists, before listening (@return 0, or -1 to stop start-up), and after it stopped. */
    int (*on_loop_start)(void *app, h2o_context_t *ctx);
    void (*on_loop_stop)(void *app);
    /* Optional: the longest the loop may sleep (a timer of the app's, e.g. libcurl's), INT32_MAX for none. */
    int32_t (*next_wait)(void *app);
} upd_http_opts_t;

/**
 * Binds every listener, prints "PROGRAM: listening on URL" for each (the bound port when 0 was
 * asked), and runs the event loop until SIGTERM/SIGINT, then stops accepting, lets open requests
 * finish for up to shutdown_timeout_ms, and returns.
 * @return 0 on a clean shutdown, 1 when start-up failed (the reason was logged)
 */
int upd_http_run(const upd_http_opts_t *opts);

/** The loop's context (valid inside handlers). */
h2o_context_t *upd_http_context(void);

/** The standard reason phrase of a status. */
const char *upd_http_reason(int status);

/**
 * Answers with a body copied into the request's pool, Content-Length set, HEAD honoured.
 * content_type NULL: text/plain; charset=utf-8.
 */
void upd_http_send(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len);
/** Answers text/plain with a formatted one-line message followed by a newline. */
void upd_http_send_text(h2o_req_t *req, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** 405 with Allow: GET, HEAD */
void upd_http_send_405_get_head(h2o_req_t *req);
/** The request id (also sent as X-Request-Id), for log lines about this request. */
const char *upd_http_request_id(h2o_req_t *req);

/** The peer address of the connection. @return its length, 0 on failure */
socklen_t upd_http_peer(h2o_req_t *req, struct sockaddr_storage *ss);

/**
 * Whether If-None-Match lists this entity tag (weak comparison, RFC 9110 §13.1.2) or is "*".
 * @param etag  with its quotes
 */
bool upd_http_if_none_match(const h2o_req_t *req, const char *etag, size_t etag_len);

/**
 * A field of this request's access-log line ("KEY=VALUE", after the standard ones), filled by the
 * handler while the request runs: returns a NUL-terminated buffer of cap bytes in the request's
 * pool, empty (and left out of the line) until written. key must be a static string.
 */
char *upd_http_log_field(h2o_req_t *req, const char *key, size_t cap);

/** Finds a request header by lower-case name. @return NULL when absent */
const h2o_iovec_t *upd_http_header(const h2o_req_t *req, const char *name, size_t name_len);

#endif
