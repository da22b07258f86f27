#ifndef UPD_S3_H
#define UPD_S3_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One S3-compatible object store (Cloudflare R2 with region "auto", AWS S3 eu-west-1, or a test
 * server on loopback): where it is, how objects are addressed, and the credentials that sign each
 * request with AWS Signature V4 (storage/sigv4.h). Object keys are APP/VERSION/NAME, the layout of
 * the local-directory store.
 *
 * This file builds requests (URL and signed headers) and runs the control plane's blocking ones
 * (HEAD, PUT, GET into a sink) with libcurl's easy interface. The origin's streaming GETs run on its
 * event loop instead (loop/s3_loop.h). Nothing here logs a secret: messages name the backend, the
 * key and S3's error code only.
 */

#define UPD_S3_NAME_MAX 15
#define UPD_S3_HOST_MAX 255
#define UPD_S3_URL_MAX 2048

typedef struct st_upd_s3_backend_t {
    char name[UPD_S3_NAME_MAX + 1]; /* "r2", "s3": in logs and metrics */
    bool tls;                        /* https */
    char host[UPD_S3_HOST_MAX + 1];  /* the endpoint's host[:port] */
    char base_path[256];             /* the endpoint's path, without a trailing '/' ("" mostly) */
    char region[64];
    char bucket[64];
    bool virtual_hosted; /* BUCKET.HOST/KEY instead of HOST/BUCKET/KEY */
    char access_key[128];
    char secret_key[256];
} upd_s3_backend_t;

/**
 * Checks and copies a backend's settings.
 * @param endpoint    "http[s]://HOST[:PORT][/PATH]"
 * @param addressing  "path" or "virtual"
 * @param[out] err    what is wrong, naming the setting, on failure
 * @return 0 or UPD_EINVAL
 */
int upd_s3_backend_init(upd_s3_backend_t *b, const char *name, const char *endpoint, const char *region, const char *bucket,
                        const char *addressing, const char *access_key, const char *secret_key, char *err, size_t errlen);

/** A request ready for libcurl: its URL and its headers (signed), valid until upd_s3_request_dispose(). */
typedef struct st_upd_s3_request_t {
    char url[UPD_S3_URL_MAX];
    struct curl_slist *headers;
} upd_s3_request_t;

/**
 * Builds a signed request in the header form.
 * @param method        "GET", "HEAD", "PUT", "DELETE"
 * @param key           the object key (APP/VERSION/NAME); encoded here
 * @param range         a Range value ("bytes=N-") or NULL; signed along
 * @param payload_hash  hex SHA-256 of the body, UPD_SIGV4_UNSIGNED_PAYLOAD, or NULL for the empty body
 * @param extra         more headers to send and sign ("Name: value" strings, may be NULL), n_extra of them
 * @param now           signing time (unix seconds)
 * @return 0, UPD_EINVAL (key or headers the signer refuses), UPD_ETOOBIG (URL too long), UPD_ENOMEM
 */
int upd_s3_request_build(const upd_s3_backend_t *b, const char *method, const char *key, const char *range,
                         const char *payload_hash, const char *const *extra, size_t n_extra, int64_t now, upd_s3_request_t *out);
/**
 * upd_s3_request_build() with a query string, signed along: S3's sub-resources and parameters ("uploads",
 * "partNumber=2&uploadId=...", "list-type=2&prefix=..."), already encoded as SigV4 wants them (sorted, each name and value
 * URI-encoded). The empty key is the bucket itself (a listing).
 * @param query  NULL for none (then exactly upd_s3_request_build())
 */
int upd_s3_request_build_query(const upd_s3_backend_t *b, const char *method, const char *key, const char *query, const char *range,
                               const char *payload_hash, const char *const *extra, size_t n_extra, int64_t now,
                               upd_s3_request_t *out);
void upd_s3_request_dispose(upd_s3_request_t *r);

/**
 * Reads S3's error code (<Code>...</Code>) from an error body into code ("" when there is none).
 * R2 and S3 send XML error documents; s3rver too.
 */
void upd_s3_error_code(const char *body, size_t len, char *code, size_t cap);

#endif
