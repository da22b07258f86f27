#ifndef UPD_S3_LOOP_H
#define UPD_S3_LOOP_H

#include <h2o.h>
#include <stdint.h>
#include "storage/s3.h"

/*
 * Streaming GETs from S3-compatible backends on the origin's h2o event loop: libcurl's multi
 * interface with curl's sockets watched by the loop (STACK-NOTES.md "libcurl multi on the h2o
 * loop"). Bytes reach the caller as they arrive; the caller can pause a transfer (backpressure
 * toward the backend) and resume it. Connections are reused across requests (curl's connection
 * cache lives in the multi handle).
 *
 * Each transfer has three clocks: connect (libcurl's), first byte (from the request going out on a
 * connection to the response's first body byte or end; not while the transfer waits for one of
 * libcurl's per-host connections), and stall (no byte for that long while not paused). Everything here
 * runs on the loop thread; callbacks are called from loop callbacks, so writes made in them are
 * flushed at once.
 */

typedef struct st_upd_s3_loop_t upd_s3_loop_t;
typedef struct st_upd_s3_get_t upd_s3_get_t;

typedef struct st_upd_s3_loop_conf_t {
    uint32_t connect_timeout_ms;
    uint32_t first_byte_timeout_ms;
    uint32_t stall_timeout_ms;
} upd_s3_loop_conf_t;

/** How a transfer ended. */
typedef enum {
    UPD_S3_OK = 0,        /* a 2xx answer, every byte delivered */
    UPD_S3_HTTP,          /* a non-2xx answer: status and S3 code set */
    UPD_S3_CONNECT,       /* could not connect (refused, unreachable, connect timeout) */
    UPD_S3_FIRST_BYTE,    /* connected, but no answer within the first-byte timeout */
    UPD_S3_STALL,         /* the answer stopped for the stall timeout */
    UPD_S3_TRANSPORT,     /* the connection broke or the answer was cut short */
    UPD_S3_ABORTED,       /* the caller's on_data asked to stop */
    UPD_S3_OUTCOME_COUNT
} upd_s3_outcome_kind_t;

/** A metrics label for each kind: "ok", "http", "connect", "first_byte", "stall", "transport", "aborted". */
const char *upd_s3_outcome_name(upd_s3_outcome_kind_t k);

typedef struct st_upd_s3_outcome_t {
    upd_s3_outcome_kind_t kind;
    int status;        /* HTTP status when one came, else 0 */
    char code[64];     /* S3 error code of a non-2xx answer ("" when none) */
    char message[192]; /* for logs: libcurl's error text or "STATUS CODE" */
    uint64_t bytes;    /* body bytes delivered to on_data */
    char etag[80];     /* the answer's ETag, quotes included ("" when none) */
    unsigned connects; /* new connections this transfer opened (0: it reused one) */
} upd_s3_outcome_t;

#define UPD_S3_PAUSE 1

typedef struct st_upd_s3_get_cb_t {
    /**
     * A 2xx answer's head, before its first byte. total: the object's size from Content-Range (206)
     * or Content-Length (200), or UINT64_MAX when unknown; start: the first byte's offset (0 for 200).
     * @return 0 to go on, -1 to abort (outcome UPD_S3_ABORTED)
     */
    int (*on_head)(upd_s3_get_t *get, int status, uint64_t start, uint64_t total, void *arg);
    /**
     * Body bytes of a 2xx answer. @return 0 when taken; UPD_S3_PAUSE when not taken (the same bytes
     * come again after upd_s3_get_resume()); -1 to abort (outcome UPD_S3_ABORTED). Never cancel the
     * transfer from here.
     */
    int (*on_data)(upd_s3_get_t *get, const uint8_t *p, size_t len, void *arg);
    /** The end, called once (not after upd_s3_get_cancel); the transfer is freed when it returns. */
    void (*on_done)(upd_s3_get_t *get, const upd_s3_outcome_t *outcome, void *arg);
} upd_s3_get_cb_t;

/**
 * @param zero_timeout  the context's zero timeout: libcurl's timer and deferred resumes run from it
 */
upd_s3_loop_t *upd_s3_loop_create(h2o_loop_t *loop, h2o_timeout_t *zero_timeout, const upd_s3_loop_conf_t *conf);
/** Cancels every transfer (no on_done) and frees the client. */
void upd_s3_loop_destroy(upd_s3_loop_t *l);
/**
 * How long the loop may sleep before libcurl's next timer (pass to h2o_evloop_run); when the timer
 * is due its work is queued on the zero timeout and 0 is returned.
 */
int32_t upd_s3_loop_next_wait(upd_s3_loop_t *l);
/** Transfers in progress. */
size_t upd_s3_loop_active(const upd_s3_loop_t *l);

/**
 * Starts GET KEY from a backend, from byte `from` (Range: bytes=FROM- when not 0).
 * @param extra  more request headers ("Name: value", signed along; e.g. If-None-Match), n_extra of them
 * @return the transfer, or NULL when it could not be started (signing or libcurl failed; logged)
 */
upd_s3_get_t *upd_s3_get_start(upd_s3_loop_t *l, const upd_s3_backend_t *b, const char *key, uint64_t from,
                               const char *const *extra, size_t n_extra, const upd_s3_get_cb_t *cb, void *arg);
/** Resumes a transfer paused by on_data (deferred to the next loop turn). */
void upd_s3_get_resume(upd_s3_get_t *get);
/** Stops a transfer and frees it; on_done is not called. Not from inside its own callbacks. */
void upd_s3_get_cancel(upd_s3_get_t *get);

#endif
