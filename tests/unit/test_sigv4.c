#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/err.h"
#include "storage/sigv4.h"

/*
 * Two groups. "sigv4" states the signer's behaviours, checked against the worked examples of the
 * S3 documentation (sig-v4-header-based-auth, sigv4-query-string-auth) and against its own rules.
 * "aws-sigv4 vectors" runs every case of the AWS test suite (aws-c-auth, in
 * $UPDRAFT_VECTORS_DIR/aws-sigv4) in both forms, one test per case and form, named
 * "header/CASE" and "query/CASE", and says which expected file differed and where.
 */

#define EXPECTED_CASES 38

/* ---- the S3 documentation's worked examples ---------------------------------------------------- */

/* AKIAIOSFODNN7EXAMPLE, examplebucket, us-east-1, 20130524T000000Z */
static const upd_sigv4_creds_t doc_creds = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};
static const time_t doc_time = 1369353600;
#define DOC_HOST "examplebucket.s3.amazonaws.com"

static bool
starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static upd_sigv4_result_t *
new_result(void)
{
    upd_sigv4_result_t *out = malloc(sizeof(*out));
    assert_non_null(out);
    return out;
}

static void
test_s3_get_object_matches_aws_documentation(void **state)
{
    upd_sigv4_header_t headers[] = {{"Host", DOC_HOST}, {"Range", "bytes=0-9"}};
    upd_sigv4_request_t req = {.method = "GET",
                               .path = "/test.txt",
                               .headers = headers,
                               .num_headers = 2,
                               .payload_hash = UPD_SIGV4_EMPTY_SHA256,
                               .region = "us-east-1",
                               .service = "s3",
                               .timestamp = doc_time,
                               .flags = UPD_SIGV4_FLAGS_S3};
    upd_sigv4_result_t *out = new_result();

    assert_int_equal(upd_sigv4_sign_headers(&doc_creds, &req, out), 0);
    assert_string_equal(out->canonical_request, "GET\n/test.txt\n\n"
                                                "host:examplebucket.s3.amazonaws.com\n"
                                                "range:bytes=0-9\n"
                                                "x-amz-content-sha256:" UPD_SIGV4_EMPTY_SHA256 "\n"
                                                "x-amz-date:20130524T000000Z\n\n"
                                                "host;range;x-amz-content-sha256;x-amz-date\n" UPD_SIGV4_EMPTY_SHA256);
    assert_string_equal(out->signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    assert_string_equal(out->authorization, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                                            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                                            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    /* what goes on the wire, in order */
    assert_int_equal(out->num_headers, 3);
    assert_string_equal(out->headers[0].name, "X-Amz-Date");
    assert_string_equal(out->headers[0].value, "20130524T000000Z");
    assert_string_equal(out->headers[1].name, "x-amz-content-sha256");
    assert_string_equal(out->headers[1].value, UPD_SIGV4_EMPTY_SHA256);
    assert_string_equal(out->headers[2].name, "Authorization");
    assert_ptr_equal(out->headers[2].value, out->authorization);
    assert_string_equal(out->query, "");
    free(out);
}

static void
test_s3_put_object_signs_dollar_in_key_escaped_once(void **state)
{
    static const char body[] = "Welcome to Amazon S3.";
    char hash[65];
    upd_sigv4_header_t headers[] = {
        {"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"Host", DOC_HOST}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
    upd_sigv4_request_t req = {.method = "PUT",
                               .path = "/test$file.text",
                               .headers = headers,
                               .num_headers = 3,
                               .payload_hash = hash,
                               .region = "us-east-1",
                               .service = "s3",
                               .timestamp = doc_time,
                               .flags = UPD_SIGV4_FLAGS_S3};
    upd_sigv4_result_t *out = new_result();

    assert_int_equal(upd_sigv4_sha256_hex(body, sizeof(body) - 1, hash), 0);
    assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    assert_int_equal(upd_sigv4_sign_headers(&doc_creds, &req, out), 0);
    assert_true(starts_with(out->canonical_request, "PUT\n/test%24file.text\n\n"));
    assert_string_equal(out->signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");

    /* the same key already escaped on the wire is not escaped again (S3: no double encoding) */
    req.path = "/test%24file.text";
    assert_int_equal(upd_sigv4_sign_headers(&doc_creds, &req, out), 0);
    assert_string_equal(out->signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    req.path = "/test%24file%2etext"; /* lower-case hex and an escaped unreserved byte: same canonical path */
    assert_int_equal(upd_sigv4_sign_headers(&doc_creds, &req, out), 0);
    assert_string_equal(out->signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    free(out);
}

static void
test_s3_list_objects_sorts_query_parameters(void **state)
{
    upd_sigv4_header_t headers[] = {{"Host", DOC_HOST}};
    upd_sigv4_request_t req = {.method = "GET",
                               .path = "/",
                               .query = "max-keys=2&prefix=J",
                               .headers = headers,
                               .num_headers = 1,
                               .payload_hash = UPD_SIGV4_EMPTY_SHA256,
                               .region = "us-east-1",
                               .service = "s3",
                               .timestamp = doc_time,
                               .flags = UPD_SIGV4_FLAGS_S3};
    upd_sigv4_result_t *out = new_result();

    assert_int_equal(upd_sigv4_sign_headers(&doc_creds, &req, out), 0);
    assert_string_equal(out->signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    req.query = "prefix=J&max-keys=2"; /* the order on the wire does not matter */
    assert_int_equal(upd_sigv4_sign_headers(&doc_creds, &req, out), 0);
    assert_string_equal(out->signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    free(out);
}

static void
test_s3_presigned_url_matches_aws_documentation(void **state)
{
    upd_sigv4_header_t headers[] = {{"Host", DOC_HOST}};
    upd_sigv4_request_t req = {.method = "GET",
                               .path = "/test.txt",
                               .headers = headers,
                               .num_headers = 1,
                               .payload_hash = UPD_SIGV4_UNSIGNED_PAYLOAD,
                               .region = "us-east-1",
                               .service = "s3",
                               .timestamp = doc_time,
                               .flags = UPD_SIGV4_FLAGS_S3};
    upd_sigv4_result_t *out = new_result();

    assert_int_equal(upd_sigv4_presign(&doc_creds, &req, 86400, out), 0);
    assert_string_equal(out->signature, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    assert_string_equal(out->query, "X-Amz-Algorithm=AWS4-HMAC-SHA256"
                                    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                                    "&X-Amz-Date=20130524T000000Z&X-Amz-SignedHeaders=host&X-Amz-Expires=86400"
                                    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    /* presign adds no header, and never x-amz-content-sha256 even with the S3 flags */
    assert_int_equal(out->num_headers, 0);
    assert_string_equal(out->authorization, "");
    assert_null(strstr(out->canonical_request, "x-amz-content-sha256"));
    free(out);
}

/* ---- the signer's own rules ------------------------------------------------------------------ */

static int
sign_path(const char *path, unsigned flags, upd_sigv4_result_t *out)
{
    upd_sigv4_header_t headers[] = {{"host", "b.example"}};
    upd_sigv4_request_t req = {.method = "GET",
                               .path = path,
                               .headers = headers,
                               .num_headers = 1,
                               .payload_hash = UPD_SIGV4_EMPTY_SHA256,
                               .region = "auto",
                               .service = "s3",
                               .timestamp = doc_time,
                               .flags = flags};
    return upd_sigv4_sign_headers(&doc_creds, &req, out);
}

static const char *
canonical_path(const upd_sigv4_result_t *out, char *buf, size_t cap)
{
    const char *p = strchr(out->canonical_request, '\n') + 1;
    size_t n = strcspn(p, "\n");
    snprintf(buf, cap, "%.*s", (int)n, p);
    return buf;
}

static void
test_s3_paths_are_neither_normalised_nor_encoded_twice(void **state)
{
    upd_sigv4_result_t *out = new_result();
    char buf[256];

    /* "a//b", "./" and "../" are distinct S3 keys; an escaped '/' stays escaped; the space is escaped once */
    assert_int_equal(sign_path("/bucket/a//b/./../c%2Fd e+f", UPD_SIGV4_FLAGS_S3, out), 0);
    assert_string_equal(canonical_path(out, buf, sizeof(buf)), "/bucket/a//b/./../c%2Fd%20e%2Bf");
    /* a '%' that starts no escape is a literal percent */
    assert_int_equal(sign_path("/bucket/100%", UPD_SIGV4_FLAGS_S3, out), 0);
    assert_string_equal(canonical_path(out, buf, sizeof(buf)), "/bucket/100%25");
    /* R2: region "auto" is just a region */
    assert_non_null(strstr(out->authorization, "Credential=AKIAIOSFODNN7EXAMPLE/20130524/auto/s3/aws4_request, "));
    free(out);
}

static void
test_service_paths_are_normalised_then_encoded_twice(void **state)
{
    upd_sigv4_result_t *out = new_result();
    char buf[256];

    assert_int_equal(sign_path("/a/./b//../c%2F", UPD_SIGV4_FLAGS_SERVICE, out), 0);
    assert_string_equal(canonical_path(out, buf, sizeof(buf)), "/a/c%252F");
    assert_int_equal(sign_path("/a/b/..", UPD_SIGV4_FLAGS_SERVICE, out), 0);
    assert_string_equal(canonical_path(out, buf, sizeof(buf)), "/a/");
    assert_int_equal(sign_path("/../..", UPD_SIGV4_FLAGS_SERVICE, out), 0);
    assert_string_equal(canonical_path(out, buf, sizeof(buf)), "/");
    free(out);
}

static void
test_query_plus_is_a_literal_plus_and_bare_names_get_an_equals(void **state)
{
    upd_sigv4_header_t headers[] = {{"host", "b.example"}};
    upd_sigv4_request_t req = {.method = "GET",
                               .path = "/",
                               .query = "b=x+y&a&&c=%7e%2f",
                               .headers = headers,
                               .num_headers = 1,
                               .payload_hash = UPD_SIGV4_EMPTY_SHA256,
                               .region = "auto",
                               .service = "s3",
                               .timestamp = doc_time,
                               .flags = UPD_SIGV4_FLAGS_S3};
    upd_sigv4_result_t *out = new_result();

    assert_int_equal(upd_sigv4_sign_headers(&doc_creds, &req, out), 0);
    assert_true(starts_with(out->canonical_request, "GET\n/\na=&b=x%2By&c=~%2F\n"));
    free(out);
}

static void
test_session_token_is_signed_in_both_forms(void **state)
{
    upd_sigv4_creds_t creds = doc_creds;
    upd_sigv4_header_t headers[] = {{"host", "b.example"}};
    upd_sigv4_request_t req = {.method = "GET",
                               .path = "/k",
                               .headers = headers,
                               .num_headers = 1,
                               .payload_hash = UPD_SIGV4_UNSIGNED_PAYLOAD,
                               .region = "eu-west-1",
                               .service = "s3",
                               .timestamp = doc_time,
                               .flags = UPD_SIGV4_FLAGS_S3};
    upd_sigv4_result_t *out = new_result();

    creds.session_token = "tok/en+=";
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), 0);
    assert_non_null(strstr(out->canonical_request, "\nx-amz-security-token:tok/en+=\n"));
    assert_string_equal(out->headers[0].name, "X-Amz-Security-Token");
    assert_string_equal(out->headers[0].value, "tok/en+=");
    assert_int_equal(upd_sigv4_presign(&creds, &req, 60, out), 0);
    assert_non_null(strstr(out->query, "&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-Signature="));
    assert_non_null(strstr(out->canonical_request, "&X-Amz-Security-Token=tok%2Fen%2B%3D&"));
    free(out);
}

static void
test_bad_requests_are_refused(void **state)
{
    upd_sigv4_header_t headers[3] = {{"Host", "b.example"}};
    upd_sigv4_request_t req = {.method = "GET",
                               .path = "/k",
                               .headers = headers,
                               .num_headers = 2,
                               .payload_hash = UPD_SIGV4_EMPTY_SHA256,
                               .region = "auto",
                               .service = "s3",
                               .timestamp = doc_time,
                               .flags = UPD_SIGV4_FLAGS_S3};
    upd_sigv4_creds_t creds = doc_creds;
    upd_sigv4_result_t *out = new_result();

    /* a value that would end the header line and start another */
    headers[1] = (upd_sigv4_header_t){"X-Meta", "a\r\nInjected: 1"};
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    assert_int_equal(out->num_headers, 0);
    headers[1] = (upd_sigv4_header_t){"X-Meta", "a\nb"};
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    headers[1] = (upd_sigv4_header_t){"X-Meta", "folded\r\n value"}; /* obs-fold is a value, not a new header */
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), 0);
    assert_non_null(strstr(out->canonical_request, "\nx-meta:folded value\n"));
    headers[1] = (upd_sigv4_header_t){"Bad Name", "v"};
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    /* headers the signer writes itself */
    headers[1] = (upd_sigv4_header_t){"X-Amz-Date", "20130524T000000Z"};
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    headers[1] = (upd_sigv4_header_t){"authorization", "x"};
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    headers[1] = (upd_sigv4_header_t){"X-Amz-Content-Sha256", UPD_SIGV4_EMPTY_SHA256};
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    req.flags = UPD_SIGV4_FLAGS_SERVICE; /* without the flag it is the caller's header like any other */
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), 0);
    req.flags = UPD_SIGV4_FLAGS_S3;
    req.num_headers = 1;
    /* no host */
    headers[0] = (upd_sigv4_header_t){"Hostname", "b.example"};
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    headers[0] = (upd_sigv4_header_t){"host", "b.example"};
    /* paths, queries and scope parts that would break the request line or the Authorization value */
    req.path = "k";
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    req.path = "/k?x=1";
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    req.path = "/k\r\n";
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    req.path = "/k";
    req.query = "a=1#frag";
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    req.query = NULL;
    req.region = "eu/west";
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    req.region = "";
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    req.region = "auto";
    creds.access_key = "AKID, Signature=0";
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    creds.access_key = doc_creds.access_key;
    creds.secret_key = "";
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    creds.secret_key = doc_creds.secret_key;
    creds.session_token = "with space";
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    creds.session_token = NULL;
    req.payload_hash = "not a hash";
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    req.payload_hash = UPD_SIGV4_EMPTY_SHA256;
    req.timestamp = (time_t)-100000000000LL; /* year < 1000: X-Amz-Date has four digits for the year */
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), UPD_EINVAL);
    req.timestamp = doc_time;
    assert_int_equal(upd_sigv4_sign_headers(&creds, &req, out), 0);
    free(out);
}

static void
test_presign_expiry_and_own_parameters_are_checked(void **state)
{
    upd_sigv4_header_t headers[] = {{"host", "b.example"}};
    upd_sigv4_request_t req = {.method = "GET",
                               .path = "/k",
                               .headers = headers,
                               .num_headers = 1,
                               .payload_hash = UPD_SIGV4_UNSIGNED_PAYLOAD,
                               .region = "auto",
                               .service = "s3",
                               .timestamp = doc_time,
                               .flags = UPD_SIGV4_FLAGS_S3};
    upd_sigv4_result_t *out = new_result();

    assert_int_equal(upd_sigv4_presign(&doc_creds, &req, 0, out), UPD_EINVAL);
    assert_int_equal(upd_sigv4_presign(&doc_creds, &req, UPD_SIGV4_MAX_EXPIRES + 1, out), UPD_EINVAL);
    assert_int_equal(upd_sigv4_presign(&doc_creds, &req, UPD_SIGV4_MAX_EXPIRES, out), 0);
    req.query = "response-content-type=text%2Fplain&x-amz-signature=00";
    assert_int_equal(upd_sigv4_presign(&doc_creds, &req, 60, out), UPD_EINVAL);
    req.query = "response-content-type=text%2Fplain";
    assert_int_equal(upd_sigv4_presign(&doc_creds, &req, 60, out), 0);
    assert_true(starts_with(out->query, "response-content-type=text%2Fplain&X-Amz-Algorithm="));
    free(out);
}

static void
test_oversized_requests_fail_with_toobig(void **state)
{
    upd_sigv4_header_t headers[UPD_SIGV4_MAX_HEADERS + 1];
    upd_sigv4_request_t req = {.method = "GET",
                               .path = "/k",
                               .headers = headers,
                               .num_headers = UPD_SIGV4_MAX_HEADERS + 1,
                               .payload_hash = UPD_SIGV4_EMPTY_SHA256,
                               .region = "auto",
                               .service = "s3",
                               .timestamp = doc_time,
                               .flags = UPD_SIGV4_FLAGS_S3};
    upd_sigv4_result_t *out = new_result();
    size_t big = UPD_SIGV4_CANONICAL_MAX;
    char *huge = malloc(big + 1);

    assert_non_null(huge);
    for (size_t i = 0; i < UPD_SIGV4_MAX_HEADERS + 1; i++)
        headers[i] = (upd_sigv4_header_t){"host", "b.example"};
    assert_int_equal(upd_sigv4_sign_headers(&doc_creds, &req, out), UPD_ETOOBIG);

    req.num_headers = 1;
    memset(huge, 'v', big);
    huge[0] = '/';
    huge[big] = '\0';
    req.path = huge;
    assert_int_equal(upd_sigv4_sign_headers(&doc_creds, &req, out), UPD_ETOOBIG);
    req.path = "/k";
    huge[0] = 'a';
    huge[1] = '=';
    req.query = huge;
    assert_int_equal(upd_sigv4_sign_headers(&doc_creds, &req, out), UPD_ETOOBIG);
    req.query = NULL;
    headers[0].value = huge;
    assert_int_equal(upd_sigv4_sign_headers(&doc_creds, &req, out), UPD_ETOOBIG);
    headers[0].value = "b.example";

    /* a query that fits the canonical request but not, with the presign's parameters, the URL */
    memset(huge, 'v', UPD_SIGV4_QUERY_MAX - 100);
    huge[0] = 'a';
    huge[1] = '=';
    huge[UPD_SIGV4_QUERY_MAX - 100] = '\0';
    req.query = huge;
    req.payload_hash = UPD_SIGV4_UNSIGNED_PAYLOAD;
    assert_int_equal(upd_sigv4_presign(&doc_creds, &req, 60, out), UPD_ETOOBIG);
    huge[200] = '\0';
    assert_int_equal(upd_sigv4_presign(&doc_creds, &req, 60, out), 0);
    free(huge);
    free(out);
}

static void
test_uri_encode_keeps_unreserved_and_optionally_slash(void **state)
{
    char buf[64];
    size_t n = 0;

    assert_int_equal(upd_sigv4_uri_encode("a b/c~d+é", strlen("a b/c~d+é"), true, buf, sizeof(buf), &n), 0);
    assert_string_equal(buf, "a%20b/c~d%2B%C3%A9");
    assert_int_equal(n, strlen(buf));
    assert_int_equal(upd_sigv4_uri_encode("a/%2F", 5, false, buf, sizeof(buf), NULL), 0);
    assert_string_equal(buf, "a%2F%252F");
    assert_int_equal(upd_sigv4_uri_encode("abc", 3, false, buf, 4, NULL), 0);
    assert_int_equal(upd_sigv4_uri_encode("abc", 3, false, buf, 3, NULL), UPD_ETOOBIG);
    assert_int_equal(upd_sigv4_uri_encode(" ", 1, false, buf, 3, NULL), UPD_ETOOBIG);
}

/* ---- the AWS test suite ------------------------------------------------------------------------ */

struct vcase {
    char name[NAME_MAX + 1];
    char dir[PATH_MAX + NAME_MAX + 2];
};

static char vectors_dir[PATH_MAX];
static struct vcase *cases;
static size_t num_cases;

static char *
slurp(const char *dir, const char *name, size_t *len)
{
    char path[PATH_MAX + NAME_MAX + 2 + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap * 2 + 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t r = fread(buf + n, 1, cap - n - 1, fp);
        n += r;
        if (r == 0)
            break;
    }
    fclose(fp);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

static int
cmp_case(const void *a, const void *b)
{
    return strcmp(((const struct vcase *)a)->name, ((const struct vcase *)b)->name);
}

/* $UPDRAFT_VECTORS_DIR/aws-sigv4, or ../shared/vectors/aws-sigv4 beside $UPDRAFT_SOURCE_DIR */
static void
find_cases(void)
{
    const char *env = getenv("UPDRAFT_VECTORS_DIR"), *src = getenv("UPDRAFT_SOURCE_DIR");
    if (env != NULL && env[0] != '\0')
        snprintf(vectors_dir, sizeof(vectors_dir), "%s/aws-sigv4", env);
    else
        snprintf(vectors_dir, sizeof(vectors_dir), "%s/../shared/vectors/aws-sigv4", src != NULL ? src : ".");
    DIR *d = opendir(vectors_dir);
    if (d == NULL)
        return;
    struct dirent *de;
    size_t cap = 0;
    while ((de = readdir(d)) != NULL) {
        struct vcase c;
        struct stat st;
        char ctx[sizeof(c.dir) + 16];
        if (de->d_name[0] == '.')
            continue;
        snprintf(c.name, sizeof(c.name), "%s", de->d_name);
        snprintf(c.dir, sizeof(c.dir), "%s/%s", vectors_dir, de->d_name);
        snprintf(ctx, sizeof(ctx), "%s/context.json", c.dir);
        if (stat(ctx, &st) != 0) /* README.md, LICENSE */
            continue;
        if (num_cases == cap) {
            cap = cap * 2 + 16;
            cases = realloc(cases, cap * sizeof(*cases));
            if (cases == NULL)
                abort();
        }
        cases[num_cases++] = c;
    }
    closedir(d);
    if (num_cases > 0)
        qsort(cases, num_cases, sizeof(*cases), cmp_case);
}

static void
test_vector_suite_has_all_38_cases(void **state)
{
    if (num_cases < EXPECTED_CASES)
        fail_msg("%s: %zu case folders with a context.json, expected %d (set UPDRAFT_VECTORS_DIR)", vectors_dir, num_cases,
                 EXPECTED_CASES);
}

/* One case: context.json and request.txt, read as aws-c-auth's runner reads them. */
struct vrequest {
    char *text; /* request.txt, owned */
    char *method, *target, *path, *query, *version;
    const char *header_block; /* the header lines as in the file, each with its "\n" */
    size_t header_block_len;
    upd_sigv4_header_t headers[UPD_SIGV4_MAX_HEADERS];
    size_t num_headers;
    const char *body;
    size_t body_len;
    /* context.json */
    upd_sigv4_creds_t creds;
    upd_sigv4_request_t req;
    unsigned expires;
    json_t *context;
    char payload_hash[65];
    char why[512]; /* set when the case could not be read */
};

static void
free_vrequest(struct vrequest *v)
{
    for (size_t i = 0; i < v->num_headers; i++) {
        free((char *)v->headers[i].name);
        free((char *)v->headers[i].value);
    }
    free(v->text);
    free(v->method);
    free(v->target);
    free(v->path);
    free(v->query);
    free(v->version);
    json_decref(v->context);
}

/* "METHOD TARGET VERSION": the target may hold spaces (get-space-*), so the version is after the last one */
static int
parse_request(struct vrequest *v, const struct vcase *c)
{
    size_t len;
    if ((v->text = slurp(c->dir, "request.txt", &len)) == NULL)
        return snprintf(v->why, sizeof(v->why), "cannot read request.txt"), -1;
    const char *eol = strchr(v->text, '\n');
    size_t line_len = eol != NULL ? (size_t)(eol - v->text) : len;
    const char *sp1 = memchr(v->text, ' ', line_len), *sp2 = NULL;
    for (const char *p = v->text + line_len; p > v->text; p--)
        if (p[-1] == ' ') {
            sp2 = p - 1;
            break;
        }
    if (sp1 == NULL || sp2 == NULL || sp2 <= sp1)
        return snprintf(v->why, sizeof(v->why), "bad request line"), -1;
    v->method = strndup(v->text, (size_t)(sp1 - v->text));
    v->target = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    v->version = strndup(sp2 + 1, (size_t)(v->text + line_len - sp2 - 1));
    const char *q = strchr(v->target, '?');
    v->path = q != NULL ? strndup(v->target, (size_t)(q - v->target)) : strdup(v->target);
    v->query = q != NULL ? strdup(q + 1) : NULL;

    /* headers up to an empty line or the end; a line starting with a blank continues the value (obs-fold) */
    const char *p = eol != NULL ? eol + 1 : v->text + len;
    v->header_block = p;
    while (*p != '\0' && *p != '\n') {
        const char *end = strchr(p, '\n');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (p[0] == ' ' || p[0] == '\t') {
            if (v->num_headers == 0)
                return snprintf(v->why, sizeof(v->why), "continuation line before any header"), -1;
            char **value = (char **)&v->headers[v->num_headers - 1].value;
            size_t old = strlen(*value);
            *value = realloc(*value, old + 1 + n + 1);
            assert_non_null(*value);
            (*value)[old] = '\n';
            memcpy(*value + old + 1, p, n);
            (*value)[old + 1 + n] = '\0';
        } else {
            const char *colon = memchr(p, ':', n);
            if (colon == NULL || v->num_headers == UPD_SIGV4_MAX_HEADERS)
                return snprintf(v->why, sizeof(v->why), "bad header line %.*s", (int)n, p), -1;
            v->headers[v->num_headers].name = strndup(p, (size_t)(colon - p));
            v->headers[v->num_headers].value = strndup(colon + 1, (size_t)(p + n - colon - 1));
            v->num_headers++;
        }
        p += n;
        if (*p == '\n')
            p++;
    }
    v->header_block_len = (size_t)(p - v->header_block);
    if (*p == '\n')
        p++;
    v->body = p;
    v->body_len = (size_t)(v->text + len - p);
    return 0;
}

static const char *
json_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int
parse_context(struct vrequest *v, const struct vcase *c)
{
    /* every key the suite uses; an unknown one means a flag this runner would silently ignore */
    static const char *const known[] = {"credentials", "expiration_in_seconds", "normalize", "region", "service", "sign_body",
                                        "timestamp",   "omit_session_token"};
    char path[sizeof(c->dir) + 16];
    json_error_t err;
    snprintf(path, sizeof(path), "%s/context.json", c->dir);
    if ((v->context = json_load_file(path, 0, &err)) == NULL || !json_is_object(v->context))
        return snprintf(v->why, sizeof(v->why), "context.json: %s", err.text), -1;
    const char *key;
    json_t *value;
    json_object_foreach(v->context, key, value)
    {
        size_t i = 0;
        while (i < sizeof(known) / sizeof(known[0]) && strcmp(known[i], key) != 0)
            i++;
        if (i == sizeof(known) / sizeof(known[0]))
            return snprintf(v->why, sizeof(v->why), "context.json: unknown key \"%s\": teach this runner what it means", key), -1;
    }
    json_t *creds = json_object_get(v->context, "credentials");
    const char *ts = json_str(v->context, "timestamp");
    json_t *expires = json_object_get(v->context, "expiration_in_seconds");
    v->creds.access_key = json_str(creds, "access_key_id");
    v->creds.secret_key = json_str(creds, "secret_access_key");
    v->creds.session_token = json_str(creds, "token");
    if (v->creds.access_key == NULL || v->creds.secret_key == NULL || ts == NULL || !json_is_integer(expires))
        return snprintf(v->why, sizeof(v->why), "context.json: credentials, timestamp or expiration_in_seconds missing"), -1;
    v->expires = (unsigned)json_integer_value(expires);

    struct tm tm = {0};
    if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return snprintf(v->why, sizeof(v->why), "context.json: timestamp %s", ts), -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;

    /* The suite signs for a generic service ("service"), which double-encodes the path: aws-c-auth's
     * runner sets use_double_uri_encode for every case; "normalize" chooses path normalisation.
     * sign_body adds x-amz-content-sha256 (header form only); omit_session_token sends the token
     * without signing it. The payload hash is the body's either way. */
    v->req.flags = UPD_SIGV4_DOUBLE_ENCODE;
    if (json_is_true(json_object_get(v->context, "normalize")))
        v->req.flags |= UPD_SIGV4_NORMALIZE_PATH;
    if (json_is_true(json_object_get(v->context, "sign_body")))
        v->req.flags |= UPD_SIGV4_CONTENT_SHA256;
    if (json_is_true(json_object_get(v->context, "omit_session_token")))
        v->req.flags |= UPD_SIGV4_UNSIGNED_TOKEN;
    v->req.region = json_str(v->context, "region");
    v->req.service = json_str(v->context, "service");
    v->req.timestamp = timegm(&tm);
    return 0;
}

static int
load_case(struct vrequest *v, const struct vcase *c)
{
    memset(v, 0, sizeof(*v));
    if (parse_request(v, c) != 0 || parse_context(v, c) != 0)
        return -1;
    assert_int_equal(upd_sigv4_sha256_hex(v->body, v->body_len, v->payload_hash), 0);
    v->req.method = v->method;
    v->req.path = v->path;
    v->req.query = v->query;
    v->req.headers = v->headers;
    v->req.num_headers = v->num_headers;
    v->req.payload_hash = v->payload_hash;
    return 0;
}

/* Compares with FORM-WHAT.txt; on a difference prints both and where they part. */
static bool
same_as_file(const struct vcase *c, const char *form, const char *what, const char *got, size_t got_len)
{
    char name[64];
    size_t len;
    snprintf(name, sizeof(name), "%s-%s.txt", form, what);
    char *expected = slurp(c->dir, name, &len);
    if (expected == NULL) {
        print_error("%s: %s: cannot read\n", c->name, name);
        return false;
    }
    bool same = len == got_len && memcmp(expected, got, len) == 0;
    if (!same) {
        size_t at = 0;
        while (at < len && at < got_len && expected[at] == got[at])
            at++;
        print_error("%s: %s differs at byte %zu\n--- expected (%zu bytes)\n%s\n--- got (%zu bytes)\n%.*s\n---\n", c->name, name, at,
                    len, expected, got_len, (int)got_len, got);
    }
    free(expected);
    return same;
}

static size_t
append(char *buf, size_t at, size_t cap, const char *s, size_t n)
{
    assert_true(at + n < cap);
    memcpy(buf + at, s, n);
    buf[at + n] = '\0';
    return at + n;
}

#define APPEND(s) (n = append(signed_req, n, cap, (s), strlen(s)))

static void
run_case(const struct vcase *c, bool presign)
{
    const char *form = presign ? "query" : "header";
    struct vrequest v;
    upd_sigv4_result_t *out = new_result();
    size_t cap = 65536, n = 0;
    char *signed_req = malloc(cap);
    int differ = 0, ret = 0;

    assert_non_null(signed_req);
    signed_req[0] = '\0';
    if (load_case(&v, c) != 0) {
        snprintf(signed_req, cap, "%s: %s", c->name, v.why);
        differ = -1;
        goto Done;
    }
    ret = presign ? upd_sigv4_presign(&v.creds, &v.req, v.expires, out) : upd_sigv4_sign_headers(&v.creds, &v.req, out);
    if (ret != 0) {
        snprintf(signed_req, cap, "%s: signer returned %d (%s)", c->name, ret, upd_strerror(ret));
        differ = -1;
        goto Done;
    }

    /* the signed request as the suite writes it: the request with the signer's headers or query added */
    APPEND(v.method);
    APPEND(" ");
    if (presign) {
        APPEND(v.path);
        APPEND("?");
        APPEND(out->query);
    } else {
        APPEND(v.target);
    }
    APPEND(" ");
    APPEND(v.version);
    APPEND("\n");
    n = append(signed_req, n, cap, v.header_block, v.header_block_len);
    for (size_t i = 0; i < out->num_headers; i++) {
        APPEND(out->headers[i].name);
        APPEND(":");
        APPEND(out->headers[i].value);
        APPEND("\n");
    }
    APPEND("\n");
    n = append(signed_req, n, cap, v.body, v.body_len);

    differ += !same_as_file(c, form, "canonical-request", out->canonical_request, strlen(out->canonical_request));
    differ += !same_as_file(c, form, "string-to-sign", out->string_to_sign, strlen(out->string_to_sign));
    differ += !same_as_file(c, form, "signature", out->signature, strlen(out->signature));
    differ += !same_as_file(c, form, "signed-request", signed_req, n);

Done:
    if (differ == 0) {
        free_vrequest(&v);
        free(signed_req);
        free(out);
        return;
    }
    char msg[1024];
    if (differ < 0)
        snprintf(msg, sizeof(msg), "%s", signed_req);
    else
        snprintf(msg, sizeof(msg), "%s/%s: %d of 4 %s-*.txt files differ (see above)", form, c->name, differ, form);
    free_vrequest(&v);
    free(signed_req);
    free(out);
    fail_msg("%s", msg);
}

static void
test_header_form(void **state)
{
    run_case(*state, false);
}

static void
test_query_form(void **state)
{
    run_case(*state, true);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3_get_object_matches_aws_documentation),
        cmocka_unit_test(test_s3_put_object_signs_dollar_in_key_escaped_once),
        cmocka_unit_test(test_s3_list_objects_sorts_query_parameters),
        cmocka_unit_test(test_s3_presigned_url_matches_aws_documentation),
        cmocka_unit_test(test_s3_paths_are_neither_normalised_nor_encoded_twice),
        cmocka_unit_test(test_service_paths_are_normalised_then_encoded_twice),
        cmocka_unit_test(test_query_plus_is_a_literal_plus_and_bare_names_get_an_equals),
        cmocka_unit_test(test_session_token_is_signed_in_both_forms),
        cmocka_unit_test(test_bad_requests_are_refused),
        cmocka_unit_test(test_presign_expiry_and_own_parameters_are_checked),
        cmocka_unit_test(test_oversized_requests_fail_with_toobig),
        cmocka_unit_test(test_uri_encode_keeps_unreserved_and_optionally_slash),
    };
    int failed = cmocka_run_group_tests_name("sigv4", tests, NULL, NULL);

    /* one test per case and form, built at run time from the folders found */
    find_cases();
    size_t num = 1 + 2 * num_cases;
    struct CMUnitTest *vtests = calloc(num, sizeof(*vtests));
    char **names = calloc(num, sizeof(*names));
    if (vtests == NULL || names == NULL)
        abort();
    vtests[0] = (struct CMUnitTest){"vector_suite_has_all_38_cases", test_vector_suite_has_all_38_cases, NULL, NULL, NULL};
    for (size_t i = 0; i < num_cases; i++) {
        for (int q = 0; q < 2; q++) {
            size_t at = 1 + (size_t)q * num_cases + i;
            if (asprintf(&names[at], "%s/%s", q ? "query" : "header", cases[i].name) < 0)
                abort();
            vtests[at] = (struct CMUnitTest){names[at], q ? test_query_form : test_header_form, NULL, NULL, &cases[i]};
        }
    }
    failed += _cmocka_run_group_tests("aws-sigv4 vectors", vtests, num, NULL, NULL);
    for (size_t i = 0; i < num; i++)
        free(names[i]);
    free(names);
    free(vtests);
    free(cases);
    return failed;
}
