#include "storage/s3.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "storage/sigv4.h"

static int
bad(char *err, size_t errlen, const char *name, const char *what)
{
    snprintf(err, errlen, "object_store.%s.%s", name, what);
    return UPD_EINVAL;
}

static bool
copy(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(src);
    if (len >= cap)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

int
upd_s3_backend_init(upd_s3_backend_t *b, const char *name, const char *endpoint, const char *region, const char *bucket,
                    const char *addressing, const char *access_key, const char *secret_key, char *err, size_t errlen)
{
    memset(b, 0, sizeof(*b));
    if (!copy(b->name, sizeof(b->name), name))
        return bad(err, errlen, name, "name: too long");
    const char *rest;
    if (strncmp(endpoint, "https://", 8) == 0) {
        b->tls = true;
        rest = endpoint + 8;
    } else if (strncmp(endpoint, "http://", 7) == 0) {
        rest = endpoint + 7;
    } else {
        return bad(err, errlen, name, "endpoint: expected http://HOST[:PORT] or https://HOST[:PORT]");
    }
    size_t hl = strcspn(rest, "/?#");
    if (hl == 0 || hl > UPD_S3_HOST_MAX || rest[hl] == '?' || rest[hl] == '#')
        return bad(err, errlen, name, "endpoint: expected http://HOST[:PORT] or https://HOST[:PORT]");
    for (size_t i = 0; i < hl; ++i) {
        char c = rest[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
              c == '[' || c == ']'))
            return bad(err, errlen, name, "endpoint: the host holds a character a host name cannot have");
    }
    memcpy(b->host, rest, hl);
    b->host[hl] = '\0';
    const char *path = rest + hl;
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/')
        --pl;
    if (pl >= sizeof(b->base_path))
        return bad(err, errlen, name, "endpoint: path too long");
    memcpy(b->base_path, path, pl);
    b->base_path[pl] = '\0';

    if (region[0] == '\0' || !copy(b->region, sizeof(b->region), region))
        return bad(err, errlen, name, "region: required (\"auto\" for R2), at most 63 bytes");
    size_t bl = strlen(bucket);
    if (bl < 3 || bl > 63 || strspn(bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") != bl)
        return bad(err, errlen, name, "bucket: 3-63 bytes of a-z 0-9 . -");
    memcpy(b->bucket, bucket, bl + 1);
    if (strcmp(addressing, "path") == 0)
        b->virtual_hosted = false;
    else if (strcmp(addressing, "virtual") == 0)
        b->virtual_hosted = true;
    else
        return bad(err, errlen, name, "addressing: expected path or virtual");
    if (b->virtual_hosted && strlen(b->host) + bl + 1 > UPD_S3_HOST_MAX)
        return bad(err, errlen, name, "endpoint: too long for virtual-hosted addressing");
    if (access_key[0] == '\0' || !copy(b->access_key, sizeof(b->access_key), access_key))
        return bad(err, errlen, name, "access_key: required (or UPDRAFT_<NAME>_ACCESS_KEY_ID), at most 127 bytes");
    if (secret_key[0] == '\0' || !copy(b->secret_key, sizeof(b->secret_key), secret_key))
        return bad(err, errlen, name, "secret_key: required (or UPDRAFT_<NAME>_SECRET_ACCESS_KEY), at most 255 bytes");
    return 0;
}

static struct curl_slist *
add_header(struct curl_slist *list, const char *name, const char *value, bool *ok)
{
    char line[UPD_SIGV4_AUTH_MAX + 64];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(list, line);
    if (l == NULL)
        *ok = false;
    return l != NULL ? l : list;
}

int
upd_s3_request_build(const upd_s3_backend_t *b, const char *method, const char *key, const char *range, const char *payload_hash,
                     const char *const *extra, size_t n_extra, int64_t now, upd_s3_request_t *out)
{
    return upd_s3_request_build_query(b, method, key, NULL, range, payload_hash, extra, n_extra, now, out);
}

int
upd_s3_request_build_query(const upd_s3_backend_t *b, const char *method, const char *key, const char *query, const char *range,
                           const char *payload_hash, const char *const *extra, size_t n_extra, int64_t now, upd_s3_request_t *out)
{
    memset(out, 0, sizeof(*out));
    char host[UPD_S3_HOST_MAX + 1 + 64], path[1536], enc_key[1280];
    if (upd_sigv4_uri_encode(key, strlen(key), true, enc_key, sizeof(enc_key), NULL) != 0)
        return UPD_ETOOBIG;
    int pl;
    /* the empty key is the bucket itself (a listing): "/BUCKET", not "/BUCKET/" */
    if (b->virtual_hosted) {
        snprintf(host, sizeof(host), "%s.%s", b->bucket, b->host);
        pl = snprintf(path, sizeof(path), "%s/%s", b->base_path, enc_key);
    } else {
        snprintf(host, sizeof(host), "%s", b->host);
        pl = snprintf(path, sizeof(path), "%s/%s%s%s", b->base_path, b->bucket, key[0] != '\0' ? "/" : "", enc_key);
    }
    if ((size_t)pl >= sizeof(path))
        return UPD_ETOOBIG;
    if ((size_t)snprintf(out->url, sizeof(out->url), "%s://%s%s%s%s", b->tls ? "https" : "http", host, path, query != NULL ? "?" : "",
                         query != NULL ? query : "") >= sizeof(out->url))
        return UPD_ETOOBIG;

    /* host, range and the caller's headers are all signed; the signer adds x-amz-date, the payload hash and Authorization */
    upd_sigv4_header_t hdrs[2 + 16];
    char names[16][64];
    size_t nh = 0;
    hdrs[nh++] = (upd_sigv4_header_t){"host", host};
    if (range != NULL)
        hdrs[nh++] = (upd_sigv4_header_t){"range", range};
    if (n_extra > 16)
        return UPD_ETOOBIG;
    for (size_t i = 0; i < n_extra; ++i) {
        const char *colon = strchr(extra[i], ':');
        if (colon == NULL || (size_t)(colon - extra[i]) >= sizeof(names[i]))
            return UPD_EINVAL;
        memcpy(names[i], extra[i], (size_t)(colon - extra[i]));
        names[i][colon - extra[i]] = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            ++v;
        hdrs[nh++] = (upd_sigv4_header_t){names[i], v};
    }
    upd_sigv4_creds_t creds = {.access_key = b->access_key, .secret_key = b->secret_key};
    upd_sigv4_request_t req = {
        .method = method,
        .path = path,
        .query = query,
        .headers = hdrs,
        .num_headers = nh,
        .payload_hash = payload_hash != NULL ? payload_hash : UPD_SIGV4_EMPTY_SHA256,
        .region = b->region,
        .service = "s3",
        .timestamp = (time_t)now,
        .flags = UPD_SIGV4_FLAGS_S3,
    };
    upd_sigv4_result_t *sig = malloc(sizeof(*sig));
    if (sig == NULL)
        return UPD_ENOMEM;
    int err = upd_sigv4_sign_headers(&creds, &req, sig);
    if (err != 0) {
        free(sig);
        return err;
    }
    bool ok = true;
    /* libcurl derives Host from the URL; the other signed headers go as given */
    for (size_t i = 1; i < nh; ++i)
        out->headers = add_header(out->headers, hdrs[i].name, hdrs[i].value, &ok);
    for (size_t i = 0; i < sig->num_headers; ++i)
        out->headers = add_header(out->headers, sig->headers[i].name, sig->headers[i].value, &ok);
    /* no "Expect: 100-continue" round trip on uploads; no Accept header either (it would be unsigned) */
    out->headers = add_header(out->headers, "Expect", "", &ok);
    out->headers = add_header(out->headers, "Accept", "", &ok);
    free(sig);
    if (!ok) {
        upd_s3_request_dispose(out);
        return UPD_ENOMEM;
    }
    return 0;
}

void
upd_s3_request_dispose(upd_s3_request_t *r)
{
    curl_slist_free_all(r->headers);
    r->headers = NULL;
}

void
upd_s3_error_code(const char *body, size_t len, char *code, size_t cap)
{
    code[0] = '\0';
    const char *end = body + len;
    for (const char *p = body; p + 6 <= end; ++p) {
        if (memcmp(p, "<Code>", 6) != 0)
            continue;
        p += 6;
        size_t n = 0;
        while (p + n < end && p[n] != '<' && n + 1 < cap) {
            char c = p[n];
            code[n] = (c >= 0x20 && c < 0x7f) ? c : '?';
            ++n;
        }
        code[n] = '\0';
        return;
    }
}
