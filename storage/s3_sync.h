#ifndef UPD_S3_SYNC_H
#define UPD_S3_SYNC_H

#include <stdint.h>
#include <stddef.h>
#include "storage/s3.h"

/*
 * Blocking S3 operations (libcurl easy) on the caller's thread, for the control plane and other threads that may block;
 * never call them from an event loop (loop/s3_loop.h is the non-blocking client). Requests are signed by
 * upd_s3_request_build(); nothing here logs or returns a secret. Each thread reuses one libcurl handle, so its
 * connections to a backend stay open between operations (upd_s3_sync_counts says how many were opened).
 */

typedef struct st_upd_s3_result_t {
    int status;          /* HTTP status, 0 when the exchange failed before one (see message) */
    char code[64];       /* S3 error code of a non-2xx answer ("NoSuchKey", "SignatureDoesNotMatch"), or "" */
    char message[256];   /* human-readable: transport error or status and code */
    uint64_t content_length;
    char etag[80];       /* as sent, quotes included */
} upd_s3_result_t;

typedef struct st_upd_s3_timeouts_t {
    uint32_t connect_ms;
    uint32_t total_ms; /* 0: none (large uploads) */
    uint32_t stall_ms; /* abort when below 1 byte/s for this long; 0: none */
    /*
     * A deadline that grows with the body: a transfer whose body size is known (a PUT's, or a GET's Content-Length)
     * must be done within body_base_ms + size / body_min_rate seconds, or it fails ("slower than ... KiB/s") as a
     * stall does. body_min_rate 0 (bytes per second): none. With total_ms too, the earlier deadline wins.
     */
    uint32_t body_base_ms;
    uint64_t body_min_rate;
} upd_s3_timeouts_t;

/** The deadline body_base_ms + size / body_min_rate of a transfer of size bytes, in ms (0 when there is no rate). */
uint64_t upd_s3_body_deadline_ms(const upd_s3_timeouts_t *t, uint64_t size);

/**
 * HEAD of an object. @return 0 when an HTTP answer came (res->status tells: 200, 404, 403...),
 * UPD_EIO when none did (res->message says why)
 */
int upd_s3_head(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, upd_s3_result_t *res);

/**
 * PUT of size bytes read from fd at offset 0, signed with the payload's SHA-256 (sha256_hex, hex) so
 * the store checks what it received, and with Content-Type. @return as upd_s3_head()
 */
int upd_s3_put_fd(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, int fd, uint64_t size,
                  const char *sha256_hex, const char *content_type, upd_s3_result_t *res);

/** PUT of a buffer (small documents). @return as upd_s3_head() */
int upd_s3_put_mem(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, const void *data, size_t len,
                   const char *content_type, upd_s3_result_t *res);

/**
 * GET of an object, its bytes handed to sink as they arrive (only on a 2xx answer; an error body is
 * read into res->code). sink returns 0 to go on, non-zero to abort (then UPD_EIO, message "aborted").
 * @return as upd_s3_head()
 */
int upd_s3_get(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key,
               int (*sink)(const void *data, size_t len, void *arg), void *arg, upd_s3_result_t *res);

/**
 * Closes the calling thread's cached handle and the connections it keeps. Optional: a thread's handle is closed when the
 * thread exits; a thread that keeps running (the main thread at shutdown) calls this to let them go earlier.
 */
void upd_s3_sync_thread_done(void);

/**
 * Requests made by the functions above in this process, and the connections they had to open for them (the rest reused
 * one kept open by their thread's handle). For /metrics; safe from any thread.
 */
void upd_s3_sync_counts(uint64_t *requests, uint64_t *connections);

/* ---- large objects, listings and deletes (the control plane's backups, control/backup.h) ---- */

#define UPD_S3_PART_MIN (5u << 20) /* S3's smallest part but the last */
#define UPD_S3_PARTS_MAX 10000     /* S3's most parts in one upload */

/**
 * Told by upd_s3_put_large() that done of total bytes are stored (after each part, or once after a single PUT).
 * @return 0 to go on, non-zero to stop: the upload is then aborted and fails (UPD_EIO, message "cancelled")
 */
typedef int (*upd_s3_progress_cb)(uint64_t done, uint64_t total, void *arg);

/**
 * Stores size bytes of fd (from offset 0) as key. Up to part_size bytes go in one PUT signed with their SHA-256 (as
 * upd_s3_put_fd()); a larger object as a multipart upload: CreateMultipartUpload, UploadPart of part_size bytes each (the
 * last shorter), each part signed with its own SHA-256 (so the store checks every part it receives) and tried 1 + retries
 * times when it gets no answer or a 5xx, then CompleteMultipartUpload (whose 200 may still carry an error document: that
 * is a failure). An upload that fails after it began is aborted (AbortMultipartUpload, best effort: a store that refuses
 * keeps the parts until its lifecycle rules expire them). Each request has the deadline of its own body
 * (upd_s3_timeouts_t.body_min_rate).
 * @param part_size  at least UPD_S3_PART_MIN (raised to it); doubled until the object fits in UPD_S3_PARTS_MAX parts
 * @param progress   NULL for none
 * @return 0 when the object is stored (res holds the last answer), UPD_EIO when it is not (res->message names the step
 *         and the part, with the status and S3's error code or the transport error), UPD_ENOMEM
 */
int upd_s3_put_large(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, int fd, uint64_t size, uint64_t part_size,
                     const char *content_type, unsigned retries, upd_s3_progress_cb progress, void *arg, upd_s3_result_t *res);

/**
 * ListObjectsV2 of every object whose key starts with prefix, page after page (continuation tokens), in key order:
 * cb(key, size, arg) for each, key NUL-terminated and valid during the call (keys with characters outside ASCII, or over
 * 1,099 bytes, are skipped). cb returns 0 to go on, a positive value to stop the listing (0 is then returned), or a
 * negative UPD_E* code that stops it and is returned.
 * @return 0 when the listing was read to its end or cb stopped it; cb's negative code; UPD_EIO when a page failed (res:
 *         a non-2xx status and S3's code, no answer, or an answer that is not a listing); UPD_ETOOBIG (a page over 8 MiB,
 *         a prefix over 1 KiB)
 */
int upd_s3_list(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *prefix,
                int (*cb)(const char *key, uint64_t size, void *arg), void *arg, upd_s3_result_t *res);

/** DELETE of an object. @return as upd_s3_head(); S3 answers 204 whether the object existed or not */
int upd_s3_delete(const upd_s3_backend_t *b, const upd_s3_timeouts_t *t, const char *key, upd_s3_result_t *res);

#endif
