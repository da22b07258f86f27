#ifndef UPD_SIGV4_H
#define UPD_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/*
 * AWS Signature Version 4 (AWS4-HMAC-SHA256): signs a request for S3 and S3-compatible stores
 * (AWS S3, Cloudflare R2 with region "auto") and for other AWS services, in either form:
 *
 *   - header form (upd_sigv4_sign_headers): the caller adds X-Amz-Date, Authorization and, as
 *     asked, X-Amz-Security-Token and x-amz-content-sha256 to the request it sends;
 *   - query form (upd_sigv4_presign): a presigned URL, the whole authorisation in its query.
 *
 * Pure computation, safe from any thread: no I/O, no global state but OpenSSL's SHA-256 and HMAC
 * handles (fetched once per process), one temporary allocation for working space (about 60 KiB,
 * kept off the caller's stack). About 10 us per signature. Every output is written into a
 * caller-owned upd_sigv4_result_t whose buffers are capped; an input that would overflow one fails
 * with UPD_ETOOBIG. Nothing here logs, so nothing here can leak a secret; the result holds the
 * signature but never the secret key or the signing key.
 *
 * The request as the caller gives it:
 *
 *   - path: the path exactly as it goes on the wire, starting with '/'. Use upd_sigv4_uri_encode()
 *     to build it from an S3 object key. Without UPD_SIGV4_DOUBLE_ENCODE (S3) the canonical path is
 *     that path with its escapes made canonical: %XX escapes are decoded and every byte re-encoded
 *     with the RFC 3986 unreserved set, '/' kept (an escaped "%2F" stays escaped), so a correctly
 *     encoded path is signed as it is and is never encoded twice. With UPD_SIGV4_DOUBLE_ENCODE
 *     (every other AWS service) the path is encoded once more, '%' included, as those services
 *     expect. UPD_SIGV4_NORMALIZE_PATH first removes "." and ".." segments and empty segments
 *     ("//"); S3 must never have it, since "a//b" and "a/./b" are distinct S3 keys.
 *   - query: the raw query string as on the wire, without '?', or NULL. Parameters are split on
 *     '&' (empty pieces ignored) and at the first '='; each name and value is %XX-decoded and
 *     re-encoded with the unreserved set, then sorted by encoded name, then encoded value. '+' is
 *     a literal plus (%2B), not a space: encode spaces as %20.
 *   - headers: every header given is signed, so pass the headers sent and meant to be covered,
 *     host included (required). Names are matched case-insensitively and written lower-case;
 *     values are trimmed and runs of blanks (space, tab, and the line breaks of a folded value)
 *     become one space; repeated headers are joined with ',' in the order given.
 *   - payload_hash: lower-case hex SHA-256 of the body (upd_sigv4_sha256_hex), or
 *     UPD_SIGV4_UNSIGNED_PAYLOAD (what S3 expects in presigned URLs).
 */

#define UPD_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define UPD_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/** SHA-256 of the empty string: the payload hash of a request without a body */
#define UPD_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/** Flags of upd_sigv4_request_t. */
enum {
    /** remove dot segments and collapse "//" before encoding the path (not for S3) */
    UPD_SIGV4_NORMALIZE_PATH = 1u << 0,
    /** encode the wire path again, '%' included (not for S3) */
    UPD_SIGV4_DOUBLE_ENCODE = 1u << 1,
    /** header form: add and sign x-amz-content-sha256 with payload_hash (S3 requires it); no effect on presign */
    UPD_SIGV4_CONTENT_SHA256 = 1u << 2,
    /** send the session token but leave it out of the signature (services that want it added after signing) */
    UPD_SIGV4_UNSIGNED_TOKEN = 1u << 3,
};
/** S3 and S3-compatible stores (R2): path signed as sent, x-amz-content-sha256 signed */
#define UPD_SIGV4_FLAGS_S3 (UPD_SIGV4_CONTENT_SHA256)
/** every other AWS service */
#define UPD_SIGV4_FLAGS_SERVICE (UPD_SIGV4_NORMALIZE_PATH | UPD_SIGV4_DOUBLE_ENCODE)

#define UPD_SIGV4_MAX_HEADERS 64         /* headers in one request, repeated names counted each time */
#define UPD_SIGV4_MAX_PARAMS 128         /* query parameters, X-Amz-* of a presign included */
#define UPD_SIGV4_MAX_NAME 64            /* region, service, access key id: bytes */
#define UPD_SIGV4_MAX_SECRET 256         /* secret access key: bytes */
#define UPD_SIGV4_MAX_EXPIRES 604800     /* presign lifetime cap AWS enforces: 7 days */
#define UPD_SIGV4_CANONICAL_MAX 16384    /* canonical request, NUL included */
#define UPD_SIGV4_STRING_TO_SIGN_MAX 320 /* fixed shape; region and service are capped */
#define UPD_SIGV4_AUTH_MAX 2048          /* Authorization value: scope + signed header names + signature */
#define UPD_SIGV4_QUERY_MAX 8192         /* presigned query string, the caller's parameters included */

typedef struct st_upd_sigv4_creds_t {
    const char *access_key;    /* access key id: visible ASCII, no '/', ',' or '=' */
    const char *secret_key;    /* secret access key */
    const char *session_token; /* temporary credentials' token, or NULL */
} upd_sigv4_creds_t;

typedef struct st_upd_sigv4_header_t {
    const char *name;  /* an HTTP token, any case */
    const char *value; /* may hold folded lines ("\r\n " or "\n "); no other control bytes but tab */
} upd_sigv4_header_t;

typedef struct st_upd_sigv4_request_t {
    const char *method;                /* "GET", "PUT", ...: sent as given */
    const char *path;                  /* wire path, see above */
    const char *query;                 /* raw query without '?', or NULL */
    const upd_sigv4_header_t *headers; /* num_headers entries, host among them */
    size_t num_headers;
    const char *payload_hash; /* 64 lower-case hex digits, UPD_SIGV4_UNSIGNED_PAYLOAD or another token of S3's */
    const char *region;       /* "eu-west-1", "auto" (R2), "us-east-1" */
    const char *service;      /* "s3", ... */
    time_t timestamp;         /* signing time, UTC seconds: becomes X-Amz-Date and the scope's date */
    unsigned flags;           /* UPD_SIGV4_FLAGS_S3, UPD_SIGV4_FLAGS_SERVICE, or UPD_SIGV4_* ORed */
} upd_sigv4_request_t;

typedef struct st_upd_sigv4_result_t {
    char amz_date[17];                               /* "YYYYMMDDTHHMMSSZ" */
    char canonical_request[UPD_SIGV4_CANONICAL_MAX]; /* for debugging a SignatureDoesNotMatch */
    char string_to_sign[UPD_SIGV4_STRING_TO_SIGN_MAX];
    char signature[65];                     /* lower-case hex */
    char authorization[UPD_SIGV4_AUTH_MAX]; /* header form: the Authorization value; presign: "" */
    char query[UPD_SIGV4_QUERY_MAX];        /* presign: the query to send, without '?'; header form: "" */
    char payload_hash[65];                  /* copy of the request's, for headers[] */
    /**
     * Header form: the headers to add to the request, in this order (X-Amz-Security-Token when there
     * is a token, X-Amz-Date, x-amz-content-sha256 with UPD_SIGV4_CONTENT_SHA256, Authorization).
     * Names are static; values point into this struct or to creds->session_token, so they are valid
     * while both live and this struct is not copied or moved. Presign: none.
     */
    upd_sigv4_header_t headers[4];
    size_t num_headers;
} upd_sigv4_result_t;

/**
 * Signs a request in the header form.
 * @param[out] out  filled on success; on error its content is unspecified
 * @return 0, UPD_EINVAL (a missing or malformed field: no host header, a header that the signer
 *         itself adds (authorization, x-amz-date, and x-amz-security-token or x-amz-content-sha256
 *         when it adds those), a control byte in a header value, a path not starting with '/', a
 *         timestamp outside years 1000-9999, ...), UPD_ETOOBIG (more than UPD_SIGV4_MAX_HEADERS headers
 *         or UPD_SIGV4_MAX_PARAMS parameters, or a result buffer's cap reached) or UPD_ENOMEM
 *         (out of memory, in malloc or in OpenSSL)
 */
int upd_sigv4_sign_headers(const upd_sigv4_creds_t *creds, const upd_sigv4_request_t *req, upd_sigv4_result_t *out);

/**
 * Presigns a request: the query form. out->query is req->query (if any) followed by X-Amz-Algorithm,
 * X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Expires, X-Amz-Security-Token (when
 * there is a token) and X-Amz-Signature, values percent-encoded: append it to the path after '?'.
 * The headers given are signed too (at least host), and must be sent with the URL.
 * @param expires  lifetime in seconds, 1 to UPD_SIGV4_MAX_EXPIRES
 * @return as upd_sigv4_sign_headers(); also UPD_EINVAL for expires out of range or a query that
 *         already holds one of the X-Amz-* parameters above
 */
int upd_sigv4_presign(const upd_sigv4_creds_t *creds, const upd_sigv4_request_t *req, unsigned expires, upd_sigv4_result_t *out);

/**
 * Hex SHA-256 of a body, for upd_sigv4_request_t.payload_hash.
 * @param[out] hex  64 lower-case hex digits and a NUL
 * @return 0 or UPD_ENOMEM
 */
int upd_sigv4_sha256_hex(const void *data, size_t len, char hex[65]);

/**
 * Percent-encodes bytes with the RFC 3986 unreserved set (A-Z a-z 0-9 - . _ ~), upper-case hex, as
 * SigV4 wants them: an S3 object key for the path (keep_slash) or a query name or value.
 * @param[out] dst  NUL-terminated on success; *dst_len (may be NULL) its length
 * @return 0, or UPD_ETOOBIG when the encoded bytes and the NUL do not fit in cap
 */
int upd_sigv4_uri_encode(const char *src, size_t len, bool keep_slash, char *dst, size_t cap, size_t *dst_len);

#endif
