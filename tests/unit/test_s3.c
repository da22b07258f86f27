#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "storage/s3.h"
#include "storage/s3_sync.h"
#include "storage/sigv4.h"

/*
 * storage/s3.c and storage/s3_sync.c: a backend's settings are checked and each refusal names the setting; requests
 * are addressed path- or virtual-style with the key escaped, and signed with the range they carry (the S3
 * documentation's worked GET with a Range, signature included); S3 error codes are read from error documents. The
 * blocking operations run against a one-connection-at-a-time HTTP peer in a thread that answers canned responses and
 * keeps what it received.
 */

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static int
init(upd_s3_backend_t *b, const char *endpoint, const char *region, const char *bucket, const char *addressing, const char *access,
     const char *secret, char *err)
{
    return upd_s3_backend_init(b, "r2", endpoint, region, bucket, addressing, access, secret, err, 256);
}

static const char *
header_value(const struct curl_slist *h, const char *name)
{
    size_t nl = strlen(name);
    for (; h != NULL; h = h->next)
        if (strncasecmp(h->data, name, nl) == 0 && h->data[nl] == ':')
            return h->data + nl + 1 + (h->data[nl + 1] == ' ');
    return NULL;
}

/* ---- settings ---- */

static void
test_valid_settings_are_copied(void **state)
{
    upd_s3_backend_t b;
    char err[256] = "";
    assert_int_equal(init(&b, "https://acct.r2.cloudflarestorage.com:8443/prefix/", "auto", "updraft-artifacts", "path", "AK", SECRET, err), 0);
    assert_string_equal(b.name, "r2");
    assert_true(b.tls);
    assert_string_equal(b.host, "acct.r2.cloudflarestorage.com:8443");
    assert_string_equal(b.base_path, "/prefix");
    assert_string_equal(b.region, "auto");
    assert_false(b.virtual_hosted);
}

static void
test_each_bad_setting_is_named(void **state)
{
    static const struct {
        const char *endpoint, *region, *bucket, *addressing, *access, *secret, *names;
    } cases[] = {
        {"ftp://host", "auto", "bucket", "path", "AK", SECRET, "object_store.r2.endpoint"},
        {"https://", "auto", "bucket", "path", "AK", SECRET, "object_store.r2.endpoint"},
        {"https://host?x=1", "auto", "bucket", "path", "AK", SECRET, "object_store.r2.endpoint"},
        {"https://ho st", "auto", "bucket", "path", "AK", SECRET, "object_store.r2.endpoint"},
        {"https://host", "", "bucket", "path", "AK", SECRET, "object_store.r2.region"},
        {"https://host", "auto", "Bad_Bucket", "path", "AK", SECRET, "object_store.r2.bucket"},
        {"https://host", "auto", "ab", "path", "AK", SECRET, "object_store.r2.bucket"},
        {"https://host", "auto", "bucket", "subdomain", "AK", SECRET, "object_store.r2.addressing"},
        {"https://host", "auto", "bucket", "path", "", SECRET, "object_store.r2.access_key"},
        {"https://host", "auto", "bucket", "path", "AK", "", "object_store.r2.secret_key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        upd_s3_backend_t b;
        char err[256] = "";
        int r = init(&b, cases[i].endpoint, cases[i].region, cases[i].bucket, cases[i].addressing, cases[i].access, cases[i].secret,
                     err);
        if (r != UPD_EINVAL || strncmp(err, cases[i].names, strlen(cases[i].names)) != 0)
            fail_msg("case %zu: got %d \"%s\", expected UPD_EINVAL naming %s", i, r, err, cases[i].names);
        assert_null(strstr(err, SECRET));
    }
}

/* ---- requests ---- */

static void
test_path_style_url_has_bucket_in_path(void **state)
{
    upd_s3_backend_t b;
    upd_s3_request_t r;
    char err[256];
    assert_int_equal(init(&b, "http://127.0.0.1:9000", "auto", "updraft-artifacts", "path", "AK", SECRET, err), 0);
    assert_int_equal(upd_s3_request_build(&b, "GET", "acme/1.2.0/Acme-1.2.0.exe", NULL, NULL, NULL, 0, 1369353600, &r), 0);
    assert_string_equal(r.url, "http://127.0.0.1:9000/updraft-artifacts/acme/1.2.0/Acme-1.2.0.exe");
    assert_null(header_value(r.headers, "range"));
    upd_s3_request_dispose(&r);

    /* an endpoint path comes before the bucket */
    assert_int_equal(init(&b, "https://gw.example.com/s3/", "eu-west-1", "updraft-artifacts", "path", "AK", SECRET, err), 0);
    assert_int_equal(upd_s3_request_build(&b, "HEAD", "a/1.0.0/f.zip", NULL, NULL, NULL, 0, 1369353600, &r), 0);
    assert_string_equal(r.url, "https://gw.example.com/s3/updraft-artifacts/a/1.0.0/f.zip");
    upd_s3_request_dispose(&r);
}

/* The S3 documentation's GET /test.txt with Range: bytes=0-9, built from a backend: the same signature, so the
 * virtual-hosted Host, the range and the empty payload hash are all signed as S3 expects. */
static void
test_virtual_hosted_url_and_signed_range_match_the_s3_example(void **state)
{
    upd_s3_backend_t b;
    upd_s3_request_t r;
    char err[256];
    assert_int_equal(init(&b, "https://s3.amazonaws.com", "us-east-1", "examplebucket", "virtual", "AKIAIOSFODNN7EXAMPLE", SECRET, err), 0);
    assert_int_equal(upd_s3_request_build(&b, "GET", "test.txt", "bytes=0-9", NULL, NULL, 0, 1369353600, &r), 0);
    assert_string_equal(r.url, "https://examplebucket.s3.amazonaws.com/test.txt");
    assert_string_equal(header_value(r.headers, "range"), "bytes=0-9");
    assert_string_equal(header_value(r.headers, "x-amz-content-sha256"), UPD_SIGV4_EMPTY_SHA256);
    assert_string_equal(header_value(r.headers, "x-amz-date"), "20130524T000000Z");
    const char *auth = header_value(r.headers, "authorization");
    assert_non_null(auth);
    assert_non_null(strstr(auth, "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"));
    assert_string_equal(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                              "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    /* no secret on the wire, and no Expect round trip or unsigned Accept */
    for (const struct curl_slist *h = r.headers; h != NULL; h = h->next)
        assert_null(strstr(h->data, SECRET));
    assert_string_equal(header_value(r.headers, "expect"), "");
    upd_s3_request_dispose(&r);
}

static void
test_extra_headers_are_signed_too(void **state)
{
    upd_s3_backend_t b;
    upd_s3_request_t r;
    char err[256];
    const char *extra[] = {"Content-Type: application/octet-stream"};
    assert_int_equal(init(&b, "http://127.0.0.1:9000", "auto", "bucket", "path", "AK", SECRET, err), 0);
    assert_int_equal(upd_s3_request_build(&b, "PUT", "a/1/f", NULL, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                                          extra, 1, 1369353600, &r),
                     0);
    assert_string_equal(header_value(r.headers, "Content-Type"), "application/octet-stream");
    assert_string_equal(header_value(r.headers, "x-amz-content-sha256"), "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_non_null(strstr(header_value(r.headers, "authorization"), "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,"));
    upd_s3_request_dispose(&r);
}

static void
test_key_is_escaped_with_slashes_kept(void **state)
{
    upd_s3_backend_t b;
    upd_s3_request_t r;
    char err[256];
    assert_int_equal(init(&b, "http://127.0.0.1:9000", "auto", "bucket", "path", "AK", SECRET, err), 0);
    assert_int_equal(upd_s3_request_build(&b, "GET", "acme/1.3.0-beta.2+build/My App (x64)~é.exe", NULL, NULL, NULL, 0, 1369353600, &r),
                     0);
    assert_string_equal(r.url, "http://127.0.0.1:9000/bucket/acme/1.3.0-beta.2%2Bbuild/My%20App%20%28x64%29~%C3%A9.exe");
    upd_s3_request_dispose(&r);

    /* a key longer than a URL may be is refused, not cut */
    char key[3000];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    assert_int_equal(upd_s3_request_build(&b, "GET", key, NULL, NULL, NULL, 0, 1369353600, &r), UPD_ETOOBIG);
}

/* ---- error documents ---- */

static void
test_error_code_is_read_from_the_document(void **state)
{
    char code[64];
    const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request "
                      "signature we calculated does not match</Message></Error>";
    upd_s3_error_code(doc, strlen(doc), code, sizeof(code));
    assert_string_equal(code, "SignatureDoesNotMatch");

    upd_s3_error_code("<Error><Message>no code</Message></Error>", 40, code, sizeof(code));
    assert_string_equal(code, "");
    upd_s3_error_code("", 0, code, sizeof(code));
    assert_string_equal(code, "");

    /* cut at the buffer, at the body's end (no NUL needed), and control bytes made harmless for logs */
    char small[5];
    upd_s3_error_code("<Code>NoSuchKey</Code>", 22, small, sizeof(small));
    assert_string_equal(small, "NoSu");
    upd_s3_error_code("<Code>NoSuchKeyXXXX", 15, code, sizeof(code));
    assert_string_equal(code, "NoSuchKey");
    upd_s3_error_code("<Code>A\nB\x01</Code>", 17, code, sizeof(code));
    assert_string_equal(code, "A?B?");
}

/* ---- blocking operations against a canned peer ---- */

#define MAX_EXCHANGES 4

typedef struct {
    int lfd, port;
    size_t n;
    const char *responses[MAX_EXCHANGES];
    char heads[MAX_EXCHANGES][8192];
    char *bodies[MAX_EXCHANGES];
    size_t body_lens[MAX_EXCHANGES];
    pthread_t thread;
} peer_t;

static void *
peer_run(void *arg)
{
    peer_t *p = arg;
    for (size_t i = 0; i < p->n; ++i) {
        int fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        size_t len = 0;
        char *end = NULL;
        while (end == NULL && len < sizeof(p->heads[i]) - 1) {
            ssize_t r = read(fd, p->heads[i] + len, sizeof(p->heads[i]) - 1 - len);
            if (r <= 0)
                break;
            len += (size_t)r;
            p->heads[i][len] = '\0';
            end = strstr(p->heads[i], "\r\n\r\n");
        }
        if (end != NULL) {
            size_t head_len = (size_t)(end + 4 - p->heads[i]), cl = 0;
            const char *h = strcasestr(p->heads[i], "\r\ncontent-length:");
            if (h != NULL && h < end)
                cl = strtoul(h + 17, NULL, 10);
            p->bodies[i] = malloc(cl + 1);
            size_t have = len - head_len;
            memcpy(p->bodies[i], p->heads[i] + head_len, have);
            while (have < cl) {
                ssize_t r = read(fd, p->bodies[i] + have, cl - have);
                if (r <= 0)
                    break;
                have += (size_t)r;
            }
            p->body_lens[i] = have;
            p->heads[i][head_len] = '\0';
        }
        /* the client may have given up (an aborted upload): no SIGPIPE for that */
        ssize_t w = send(fd, p->responses[i], strlen(p->responses[i]), MSG_NOSIGNAL);
        (void)w;
        close(fd);
    }
    return NULL;
}

static void
peer_start(peer_t *p, upd_s3_backend_t *b, size_t n, const char *const *responses)
{
    memset(p, 0, sizeof(*p));
    p->n = n;
    for (size_t i = 0; i < n; ++i)
        p->responses[i] = responses[i];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->lfd >= 0);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(p->lfd, 8), 0);
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sa, &sl), 0);
    p->port = ntohs(sa.sin_port);
    char endpoint[64], err[256];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", p->port);
    assert_int_equal(upd_s3_backend_init(b, "r2", endpoint, "auto", "updraft-artifacts", "path", "AK", SECRET, err, sizeof(err)), 0);
    assert_int_equal(pthread_create(&p->thread, NULL, peer_run, p), 0);
}

/* waits for the canned exchanges to end; what was received stays readable until peer_dispose() */
static void
peer_stop(peer_t *p)
{
    pthread_join(p->thread, NULL);
    close(p->lfd);
}

static void
peer_dispose(peer_t *p)
{
    for (size_t i = 0; i < MAX_EXCHANGES; ++i)
        free(p->bodies[i]);
    memset(p->bodies, 0, sizeof(p->bodies));
}

static const upd_s3_timeouts_t timeouts = {.connect_ms = 2000, .total_ms = 10000, .stall_ms = 5000};

#define SIG_ERROR_DOC "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>"

static void
test_head_reports_status_length_etag_and_explains_a_refusal(void **state)
{
    upd_s3_backend_t b;
    upd_s3_result_t res;
    peer_t p;
    const char *ok[] = {"HTTP/1.1 200 OK\r\nContent-Length: 3145728\r\nETag: \"abc123\"\r\nConnection: close\r\n\r\n"};
    peer_start(&p, &b, 1, ok);
    assert_int_equal(upd_s3_head(&b, &timeouts, "acme/1.0.0/A.exe", &res), 0);
    peer_stop(&p);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.content_length, 3145728);
    assert_string_equal(res.etag, "\"abc123\"");
    assert_true(strncmp(p.heads[0], "HEAD /updraft-artifacts/acme/1.0.0/A.exe HTTP/1.1\r\n", 51) == 0);
    assert_non_null(strcasestr(p.heads[0], "\r\nauthorization: AWS4-HMAC-SHA256 Credential=AK/"));
    assert_null(strstr(p.heads[0], SECRET));

    /* a HEAD answer has no body: the code of a 403 comes from asking the same with a GET */
    const char *refused[] = {"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                             "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: 91\r\nConnection: close\r\n\r\n" SIG_ERROR_DOC};
    assert_int_equal(strlen(SIG_ERROR_DOC), 91);
    peer_dispose(&p);
    peer_start(&p, &b, 2, refused);
    assert_int_equal(upd_s3_head(&b, &timeouts, "acme/1.0.0/A.exe", &res), 0);
    peer_stop(&p);
    assert_int_equal(res.status, 403);
    assert_string_equal(res.code, "SignatureDoesNotMatch");
    assert_string_equal(res.message, "r2: 403 SignatureDoesNotMatch");
    assert_true(strncmp(p.heads[1], "GET /updraft-artifacts/acme/1.0.0/A.exe ", 40) == 0);

    /* 404 is an answer, not a failure, and needs no explanation */
    const char *absent[] = {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"};
    peer_dispose(&p);
    peer_start(&p, &b, 1, absent);
    assert_int_equal(upd_s3_head(&b, &timeouts, "acme/1.0.0/A.exe", &res), 0);
    peer_stop(&p);
    assert_int_equal(res.status, 404);
    peer_dispose(&p);
}

static int
collect(const void *data, size_t len, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf);
    if (have + len >= 64)
        return 1;
    memcpy(buf + have, data, len);
    buf[have + len] = '\0';
    return 0;
}

static void
test_get_hands_bytes_to_the_sink_and_errors_to_the_code(void **state)
{
    upd_s3_backend_t b;
    upd_s3_result_t res;
    peer_t p;
    char got[64] = "";
    const char *ok[] = {"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world"};
    peer_start(&p, &b, 1, ok);
    assert_int_equal(upd_s3_get(&b, &timeouts, "a/1.0.0/f.txt", collect, got, &res), 0);
    peer_stop(&p);
    assert_int_equal(res.status, 200);
    assert_string_equal(got, "hello world");
    assert_int_equal(res.content_length, 11);

    /* an error document never reaches the sink */
    got[0] = '\0';
    const char *missing[] = {"HTTP/1.1 404 Not Found\r\nContent-Length: 37\r\nConnection: close\r\n\r\n<Error><Code>NoSuchKey</Code></Error>"};
    peer_dispose(&p);
    peer_start(&p, &b, 1, missing);
    assert_int_equal(upd_s3_get(&b, &timeouts, "a/1.0.0/f.txt", collect, got, &res), 0);
    peer_stop(&p);
    assert_int_equal(res.status, 404);
    assert_string_equal(res.code, "NoSuchKey");
    assert_string_equal(got, "");

    /* the sink may stop the transfer */
    got[0] = '\0';
    char big[256];
    snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n%0100d", 0);
    const char *toolong[] = {big};
    peer_dispose(&p);
    peer_start(&p, &b, 1, toolong);
    assert_int_equal(upd_s3_get(&b, &timeouts, "a/1.0.0/f.txt", collect, got, &res), UPD_EIO);
    peer_stop(&p);
    assert_int_equal(res.status, 0);
    assert_non_null(strstr(res.message, "aborted"));
    peer_dispose(&p);
}

static void
test_put_fd_streams_the_file_signed_with_its_hash(void **state)
{
    upd_s3_backend_t b;
    upd_s3_result_t res;
    peer_t p;
    /* larger than one read callback's buffer, so pread runs at several offsets */
    size_t size = 300 * 1024 + 17;
    unsigned char *data = malloc(size);
    for (size_t i = 0; i < size; ++i)
        data[i] = (unsigned char)(i * 131 + (i >> 9));
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    assert_int_equal(fwrite(data, 1, size, tmp), size);
    fflush(tmp);
    char hash[65];
    assert_int_equal(upd_sigv4_sha256_hex(data, size, hash), 0);

    const char *ok[] = {"HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"};
    peer_start(&p, &b, 1, ok);
    assert_int_equal(upd_s3_put_fd(&b, &timeouts, "a/1.0.0/big.bin", fileno(tmp), size, hash, "application/octet-stream", &res), 0);
    peer_stop(&p);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.etag, "\"e1\"");
    assert_true(strncmp(p.heads[0], "PUT /updraft-artifacts/a/1.0.0/big.bin HTTP/1.1\r\n", 49) == 0);
    char want[128];
    snprintf(want, sizeof(want), "\r\nx-amz-content-sha256: %s\r\n", hash);
    assert_non_null(strcasestr(p.heads[0], want));
    assert_non_null(strcasestr(p.heads[0], "\r\nContent-Type: application/octet-stream\r\n"));
    assert_null(strcasestr(p.heads[0], "\r\nExpect:"));
    assert_int_equal(p.body_lens[0], size);
    assert_memory_equal(p.bodies[0], data, size);

    /* a file shorter than announced is an I/O failure, never a short upload */
    assert_int_equal(ftruncate(fileno(tmp), 1000), 0);
    const char *never[] = {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"};
    peer_dispose(&p);
    peer_start(&p, &b, 1, never);
    assert_int_equal(upd_s3_put_fd(&b, &timeouts, "a/1.0.0/big.bin", fileno(tmp), size, hash, "application/octet-stream", &res),
                     UPD_EIO);
    peer_stop(&p);
    assert_non_null(strstr(res.message, "reading the upload"));
    fclose(tmp);

    /* a buffer: its own hash is computed */
    peer_dispose(&p);
    peer_start(&p, &b, 1, ok);
    assert_int_equal(upd_s3_put_mem(&b, &timeouts, "a/1.0.0/doc.json", "{}", 2, "application/json", &res), 0);
    peer_stop(&p);
    assert_int_equal(upd_sigv4_sha256_hex("{}", 2, hash), 0);
    snprintf(want, sizeof(want), "\r\nx-amz-content-sha256: %s\r\n", hash);
    assert_non_null(strcasestr(p.heads[0], want));
    assert_int_equal(p.body_lens[0], 2);
    free(data);
    peer_dispose(&p);
}

static void
test_no_answer_is_eio_with_a_message_and_no_secret(void **state)
{
    upd_s3_backend_t b;
    upd_s3_result_t res;
    char err[256];
    /* a port that was just bound and closed: refused (whatever races for it, it will not speak S3 here) */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(upd_s3_backend_init(&b, "s3", endpoint, "eu-west-1", "updraft-artifacts", "path", "AK", SECRET, err, sizeof(err)), 0);
    assert_int_equal(upd_s3_head(&b, &timeouts, "a/1.0.0/f", &res), UPD_EIO);
    assert_int_equal(res.status, 0);
    assert_true(strncmp(res.message, "s3: HEAD a/1.0.0/f: ", 20) == 0);
    assert_null(strstr(res.message, SECRET));
}

static void
test_upload_deadline_is_base_plus_size_over_the_minimum_rate(void **state)
{
    upd_s3_timeouts_t t = {.body_base_ms = 30000, .body_min_rate = 256 * 1024};
    assert_int_equal(upd_s3_body_deadline_ms(&t, 0), 30000);
    /* 200 MiB at 256 KiB/s: 800 s */
    assert_int_equal(upd_s3_body_deadline_ms(&t, 200ull * 1024 * 1024), 30000 + 800000);
    /* a part-second is counted, not rounded away; sizes near the top of uint64_t do not overflow */
    assert_int_equal(upd_s3_body_deadline_ms(&t, 128 * 1024), 30500);
    assert_true(upd_s3_body_deadline_ms(&t, UINT64_MAX / 2) > UINT64_MAX / 2 / t.body_min_rate);
    /* no rate: no deadline */
    t.body_min_rate = 0;
    assert_int_equal(upd_s3_body_deadline_ms(&t, 1ull << 40), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_settings_are_copied),
        cmocka_unit_test(test_each_bad_setting_is_named),
        cmocka_unit_test(test_path_style_url_has_bucket_in_path),
        cmocka_unit_test(test_virtual_hosted_url_and_signed_range_match_the_s3_example),
        cmocka_unit_test(test_extra_headers_are_signed_too),
        cmocka_unit_test(test_key_is_escaped_with_slashes_kept),
        cmocka_unit_test(test_error_code_is_read_from_the_document),
        cmocka_unit_test(test_head_reports_status_length_etag_and_explains_a_refusal),
        cmocka_unit_test(test_get_hands_bytes_to_the_sink_and_errors_to_the_code),
        cmocka_unit_test(test_put_fd_streams_the_file_signed_with_its_hash),
        cmocka_unit_test(test_no_answer_is_eio_with_a_message_and_no_secret),
        cmocka_unit_test(test_upload_deadline_is_base_plus_size_over_the_minimum_rate),
    };
    return cmocka_run_group_tests_name("s3", tests, NULL, NULL);
}
