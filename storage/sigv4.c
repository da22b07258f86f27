#include "storage/sigv4.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "base/err.h"

/* ---- capped string builder ------------------------------------------------------------------ */

/* Appends into a fixed buffer and remembers an overflow instead of failing at each call, so the
 * builders below read as the grammar they emit and the cap is checked once at the end. */
struct sbuf {
    char *p;
    size_t len, cap; /* cap counts the NUL */
    bool over;
};

static void
sb_init(struct sbuf *b, char *p, size_t cap)
{
    b->p = p;
    b->len = 0;
    b->cap = cap;
    b->over = false;
    p[0] = '\0';
}

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->over)
        return;
    if (n >= b->cap - b->len) {
        b->over = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void
sb_chr(struct sbuf *b, char c)
{
    sb_add(b, &c, 1);
}

/* ---- character classes (ASCII only: never the locale's) ------------------------------------- */

static bool
is_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* RFC 3986 section 2.3: the only bytes SigV4 leaves unescaped */
static bool
is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 9110 section 5.6.2 tchar */
static bool
is_tchar(unsigned char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* what the canonical form trims and collapses in a header value: blanks and the line breaks of obs-fold */
static bool
is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static unsigned char
lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* ---- percent-encoding ---------------------------------------------------------------------- */

/* Encodes src with the unreserved set. With canonicalize, existing %XX escapes are decoded first so
 * that an already-encoded string comes out as it went in (modulo hex case) instead of encoded twice;
 * a byte that arrived escaped stays escaped even when it is '/', which would otherwise change the
 * path's segments. */
static void
sb_encode(struct sbuf *b, const char *src, size_t len, bool keep_slash, bool canonicalize)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        bool escaped = false;
        if (canonicalize && c == '%' && i + 2 < len) {
            int hi = OPENSSL_hexchar2int((unsigned char)src[i + 1]), lo = OPENSSL_hexchar2int((unsigned char)src[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (unsigned char)(hi << 4 | lo);
                i += 2;
                escaped = true;
            }
        }
        if (is_unreserved(c) || (c == '/' && keep_slash && !escaped)) {
            sb_chr(b, (char)c);
        } else {
            /* upper-case hex, as SigV4 requires; OpenSSL's buf2hexstr writes exactly that */
            char esc[4] = {'%'};
            OPENSSL_buf2hexstr_ex(esc + 1, sizeof(esc) - 1, NULL, &c, 1, '\0');
            sb_add(b, esc, 3);
        }
    }
}

int
upd_sigv4_uri_encode(const char *src, size_t len, bool keep_slash, char *dst, size_t cap, size_t *dst_len)
{
    struct sbuf b;
    if (cap == 0)
        return UPD_ETOOBIG;
    sb_init(&b, dst, cap);
    sb_encode(&b, src, len, keep_slash, false);
    if (b.over)
        return UPD_ETOOBIG;
    if (dst_len != NULL)
        *dst_len = b.len;
    return 0;
}

/* ---- hashing ---------------------------------------------------------------------------------- */

static void
to_lower_hex(const unsigned char *md, size_t len, char *hex)
{
    /* SigV4 wants lower-case hex; OPENSSL_buf2hexstr_ex writes upper case, so fold it afterwards */
    OPENSSL_buf2hexstr_ex(hex, len * 2 + 1, NULL, md, len, '\0');
    for (size_t i = 0; i < len * 2; i++)
        hex[i] = (char)lower((unsigned char)hex[i]);
}

/* Fetching an algorithm is the costly part of a one-shot OpenSSL call: with EVP_Q_mac() and
 * EVP_sha256() a signature (five HMACs, one digest) took 70 us, 9 us with the algorithms fetched
 * once per process. The handles are immutable and may be shared by every thread. */
static EVP_MD *sha256_md;
static EVP_MAC *hmac_mac;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void
fetch_algorithms(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static int
fetched(void)
{
    pthread_once(&fetch_once, fetch_algorithms);
    return sha256_md != NULL && hmac_mac != NULL ? 0 : UPD_ENOMEM;
}

int
upd_sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (fetched() != 0 || !EVP_Digest(data, len, md, &md_len, sha256_md, NULL) || md_len != 32)
        return UPD_ENOMEM;
    to_lower_hex(md, 32, hex);
    return 0;
}

/* One context re-keyed for each link of the chain: EVP_MAC_init() with a new key starts afresh. */
static int
hmac_sha256(EVP_MAC_CTX *ctx, const void *key, size_t key_len, const void *data, size_t len, unsigned char out[32])
{
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0), OSSL_PARAM_construct_end()};
    size_t out_len = 0;
    if (!EVP_MAC_init(ctx, key, key_len, params) || !EVP_MAC_update(ctx, data, len) || !EVP_MAC_final(ctx, out, &out_len, 32) ||
        out_len != 32)
        return UPD_ENOMEM;
    return 0;
}

/* ---- canonical path ---------------------------------------------------------------------------- */

/* RFC 3986 section 5.2.4 remove_dot_segments, plus empty segments ("//") dropped, as AWS's generic
 * services normalise. A trailing '/' (or a final "." or "..", which name a directory) is kept. */
static void
sb_normalized_path(struct sbuf *b, const char *path)
{
    size_t start = b->len;
    bool dir = false;
    const char *p = path + 1; /* path starts with '/' */
    for (;;) {
        const char *end = strchr(p, '/');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            dir = true;
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (!b->over && b->len > start && b->p[b->len - 1] != '/')
                b->len--;
            if (!b->over && b->len > start)
                b->len--;
            if (!b->over)
                b->p[b->len] = '\0';
            dir = true;
        } else {
            sb_chr(b, '/');
            sb_add(b, p, n);
            dir = false;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    if (b->len == start || dir)
        sb_chr(b, '/');
}

/* ---- headers ----------------------------------------------------------------------------------- */

struct hdr {
    const char *name;
    size_t name_len;
    const char *value;
    size_t order; /* position given: repeated names keep it (get-header-value-order) */
};

static int
cmp_hdr(const void *pa, const void *pb)
{
    const struct hdr *a = pa, *b = pb;
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = lower((unsigned char)a->name[i]), y = lower((unsigned char)b->name[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    if (a->name_len != b->name_len)
        return a->name_len < b->name_len ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static bool
same_name(const struct hdr *a, const struct hdr *b)
{
    if (a->name_len != b->name_len)
        return false;
    for (size_t i = 0; i < a->name_len; i++)
        if (lower((unsigned char)a->name[i]) != lower((unsigned char)b->name[i]))
            return false;
    return true;
}

static bool
name_is(const struct hdr *h, const char *lower_name)
{
    size_t n = strlen(lower_name);
    if (h->name_len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)h->name[i]) != (unsigned char)lower_name[i])
            return false;
    return true;
}

/* A value may hold obs-fold line breaks (CRLF or LF followed by a blank), which the canonical form
 * collapses; any other CR or LF would let a value smuggle a header of its own, so it is refused. */
static bool
value_is_valid(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        if (*p == '\r' && p[1] == '\n')
            p++;
        if (*p == '\n') {
            if (p[1] != ' ' && p[1] != '\t')
                return false;
        } else if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

static void
sb_lower(struct sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sb_chr(b, (char)lower((unsigned char)s[i]));
}

/* trimmed, inner runs of blanks turned into one space (the spec's Trimall) */
static void
sb_header_value(struct sbuf *b, const char *v)
{
    bool gap = false, seen = false;
    for (; *v != '\0'; v++) {
        if (is_blank((unsigned char)*v)) {
            gap = seen;
            continue;
        }
        if (gap)
            sb_chr(b, ' ');
        gap = false;
        seen = true;
        sb_chr(b, *v);
    }
}

/* ---- query parameters -------------------------------------------------------------------------- */

struct param {
    const char *key, *value; /* encoded, in the scratch buffer */
    size_t key_len, value_len;
    size_t order;
};

static int
cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen;
}

/* by encoded name, then encoded value: the spec sorts on the encoded bytes, not the decoded ones */
static int
cmp_param(const void *pa, const void *pb)
{
    const struct param *a = pa, *b = pb;
    int r = cmp_bytes(a->key, a->key_len, b->key, b->key_len);
    if (r == 0)
        r = cmp_bytes(a->value, a->value_len, b->value, b->value_len);
    if (r == 0)
        r = a->order < b->order ? -1 : a->order > b->order;
    return r;
}

/* the parameters a presign adds: the caller's query must not carry them already */
static const char *const presign_params[] = {"X-Amz-Algorithm",     "X-Amz-Credential", "X-Amz-Date",          "X-Amz-Expires",
                                             "X-Amz-SignedHeaders", "X-Amz-Signature",  "X-Amz-Security-Token"};

static bool
is_presign_param(const char *key, size_t len)
{
    for (size_t i = 0; i < sizeof(presign_params) / sizeof(presign_params[0]); i++) {
        if (strlen(presign_params[i]) != len)
            continue;
        size_t j = 0;
        while (j < len && lower((unsigned char)key[j]) == lower((unsigned char)presign_params[i][j]))
            j++;
        if (j == len)
            return true;
    }
    return false;
}

struct params {
    struct param list[UPD_SIGV4_MAX_PARAMS];
    size_t num;
    struct sbuf scratch;
};

static int
add_param(struct params *ps, const char *key, size_t key_len, const char *value, size_t value_len, bool canonicalize)
{
    if (ps->num == UPD_SIGV4_MAX_PARAMS)
        return UPD_ETOOBIG;
    struct param *p = &ps->list[ps->num];
    size_t at = ps->scratch.len;
    sb_encode(&ps->scratch, key, key_len, false, canonicalize);
    size_t mid = ps->scratch.len;
    sb_encode(&ps->scratch, value, value_len, false, canonicalize);
    if (ps->scratch.over)
        return UPD_ETOOBIG;
    p->key = ps->scratch.p + at;
    p->key_len = mid - at;
    p->value = ps->scratch.p + mid;
    p->value_len = ps->scratch.len - mid;
    p->order = ps->num++;
    return 0;
}

/* ---- validation -------------------------------------------------------------------------------- */

/* region, service, access key id: they are joined with '/' into the scope and sit in a header value
 * split on ',' and ' ', so none of those may appear in them */
static bool
is_scope_part(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == ',' || c == '=')
            return false;
    }
    return n > 0 && n <= UPD_SIGV4_MAX_NAME;
}

/* no byte that would end or split a request line: controls, and '?' / '#' where they would change the URL's parts */
static bool
is_wire_text(const char *s, const char *refused)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f || strchr(refused, *p) != NULL)
            return false;
    return true;
}

static bool
is_token(const char *s, size_t max, bool (*ok)(unsigned char))
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!ok((unsigned char)s[n]))
            return false;
    return n > 0 && n <= max;
}

static bool
is_hash_char(unsigned char c)
{
    return is_alnum(c) || c == '-';
}

static bool
is_visible(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* ---- the signer -------------------------------------------------------------------------------- */

struct work {
    struct hdr hdrs[UPD_SIGV4_MAX_HEADERS + 3]; /* + x-amz-date, x-amz-security-token, x-amz-content-sha256 */
    size_t num_hdrs;
    char signed_headers[UPD_SIGV4_AUTH_MAX];
    char scope[UPD_SIGV4_MAX_NAME * 2 + 32];
    struct params params;
    char scratch[UPD_SIGV4_CANONICAL_MAX];    /* encoded parameters: they cannot outgrow the canonical request */
    char normalized[UPD_SIGV4_CANONICAL_MAX]; /* the normalised path, before encoding (which cannot run in place) */
};

static int
sign(const upd_sigv4_creds_t *creds, const upd_sigv4_request_t *req, bool presign, unsigned expires, upd_sigv4_result_t *out,
     struct work *w)
{
    const char *token = creds->session_token != NULL && creds->session_token[0] != '\0' ? creds->session_token : NULL;
    bool sign_token = token != NULL && (req->flags & UPD_SIGV4_UNSIGNED_TOKEN) == 0;
    bool content_header = !presign && (req->flags & UPD_SIGV4_CONTENT_SHA256) != 0;
    unsigned char key[32], mac[32];
    char secret[4 + UPD_SIGV4_MAX_SECRET + 1];
    EVP_MAC_CTX *mac_ctx = NULL; /* set only once nothing before it can return */
    struct sbuf b;
    int ret;

    out->amz_date[0] = out->canonical_request[0] = out->string_to_sign[0] = out->signature[0] = '\0';
    out->authorization[0] = out->query[0] = out->payload_hash[0] = '\0';
    out->num_headers = 0;

    /* inputs */
    if (creds->access_key == NULL || creds->secret_key == NULL || req->method == NULL || req->path == NULL ||
        req->payload_hash == NULL || req->region == NULL || req->service == NULL || (req->num_headers != 0 && req->headers == NULL))
        return UPD_EINVAL;
    if (!is_scope_part(creds->access_key) || !is_scope_part(req->region) || !is_scope_part(req->service))
        return UPD_EINVAL;
    if (creds->secret_key[0] == '\0' || strlen(creds->secret_key) > UPD_SIGV4_MAX_SECRET)
        return UPD_EINVAL;
    if (token != NULL && !is_token(token, SIZE_MAX, is_visible))
        return UPD_EINVAL;
    if (!is_token(req->method, 32, is_tchar) || !is_token(req->payload_hash, 64, is_hash_char))
        return UPD_EINVAL;
    if (req->path[0] != '/' || !is_wire_text(req->path, "?#") || (req->query != NULL && !is_wire_text(req->query, "#")))
        return UPD_EINVAL;
    if (presign && (expires < 1 || expires > UPD_SIGV4_MAX_EXPIRES))
        return UPD_EINVAL;
    if (req->num_headers > UPD_SIGV4_MAX_HEADERS)
        return UPD_ETOOBIG;
    strcpy(out->payload_hash, req->payload_hash);

    /* time: X-Amz-Date and the scope's date must come from the same instant */
    struct tm tm;
    if (gmtime_r(&req->timestamp, &tm) == NULL || tm.tm_year < 1000 - 1900 || tm.tm_year > 9999 - 1900)
        return UPD_EINVAL;
    if (strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm) != 16)
        return UPD_EINVAL;
    snprintf(w->scope, sizeof(w->scope), "%.8s/%s/%s/aws4_request", out->amz_date, req->region, req->service);

    /* headers: the caller's, then the ones the header form signs itself */
    bool has_host = false;
    w->num_hdrs = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        struct hdr *h = &w->hdrs[w->num_hdrs];
        if (req->headers[i].name == NULL || req->headers[i].value == NULL)
            return UPD_EINVAL;
        *h = (struct hdr){req->headers[i].name, strlen(req->headers[i].name), req->headers[i].value, w->num_hdrs};
        if (!is_token(h->name, 256, is_tchar) || !value_is_valid(h->value))
            return UPD_EINVAL;
        /* a header the signer adds must not also come from the caller: the peer would see two */
        if (name_is(h, "authorization") || (!presign && name_is(h, "x-amz-date")) ||
            (!presign && token != NULL && name_is(h, "x-amz-security-token")) ||
            (content_header && name_is(h, "x-amz-content-sha256")))
            return UPD_EINVAL;
        has_host |= name_is(h, "host");
        w->num_hdrs++;
    }
    if (!has_host)
        return UPD_EINVAL;
    if (!presign) {
        w->hdrs[w->num_hdrs] = (struct hdr){"x-amz-date", 10, out->amz_date, w->num_hdrs};
        w->num_hdrs++;
        if (sign_token) {
            w->hdrs[w->num_hdrs] = (struct hdr){"x-amz-security-token", 20, token, w->num_hdrs};
            w->num_hdrs++;
        }
        if (content_header) {
            w->hdrs[w->num_hdrs] = (struct hdr){"x-amz-content-sha256", 20, out->payload_hash, w->num_hdrs};
            w->num_hdrs++;
        }
    }
    qsort(w->hdrs, w->num_hdrs, sizeof(w->hdrs[0]), cmp_hdr);

    sb_init(&b, w->signed_headers, sizeof(w->signed_headers));
    for (size_t i = 0; i < w->num_hdrs; i++) {
        if (i > 0 && same_name(&w->hdrs[i], &w->hdrs[i - 1]))
            continue;
        if (b.len > 0)
            sb_chr(&b, ';');
        sb_lower(&b, w->hdrs[i].name, w->hdrs[i].name_len);
    }
    if (b.over)
        return UPD_ETOOBIG;

    /* query parameters, the presign's own among them */
    w->params.num = 0;
    sb_init(&w->params.scratch, w->scratch, sizeof(w->scratch));
    for (const char *p = req->query != NULL ? req->query : ""; *p != '\0';) {
        size_t n = strcspn(p, "&");
        if (n > 0) {
            const char *eq = memchr(p, '=', n);
            size_t key_len = eq != NULL ? (size_t)(eq - p) : n;
            const char *value = eq != NULL ? eq + 1 : p + n;
            if ((ret = add_param(&w->params, p, key_len, value, n - key_len - (eq != NULL), true)) != 0)
                return ret;
            const struct param *added = &w->params.list[w->params.num - 1];
            if (presign && is_presign_param(added->key, added->key_len))
                return UPD_EINVAL;
        }
        p += n;
        if (*p == '&')
            p++;
    }
    if (presign) {
        char credential[UPD_SIGV4_MAX_NAME * 3 + 32], expires_s[16];
        snprintf(credential, sizeof(credential), "%s/%s", creds->access_key, w->scope);
        snprintf(expires_s, sizeof(expires_s), "%u", expires);
        const char *kv[][2] = {{"X-Amz-Algorithm", UPD_SIGV4_ALGORITHM},
                               {"X-Amz-Credential", credential},
                               {"X-Amz-Date", out->amz_date},
                               {"X-Amz-Expires", expires_s},
                               {"X-Amz-SignedHeaders", w->signed_headers},
                               {"X-Amz-Security-Token", sign_token ? token : NULL}};
        for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
            if (kv[i][1] != NULL &&
                (ret = add_param(&w->params, kv[i][0], strlen(kv[i][0]), kv[i][1], strlen(kv[i][1]), false)) != 0)
                return ret;
    }
    qsort(w->params.list, w->params.num, sizeof(w->params.list[0]), cmp_param);

    /* canonical request */
    sb_init(&b, out->canonical_request, sizeof(out->canonical_request));
    sb_str(&b, req->method);
    sb_chr(&b, '\n');
    const char *path = req->path;
    if (req->flags & UPD_SIGV4_NORMALIZE_PATH) {
        struct sbuf nb;
        sb_init(&nb, w->normalized, sizeof(w->normalized));
        sb_normalized_path(&nb, req->path);
        if (nb.over)
            return UPD_ETOOBIG;
        path = w->normalized;
    }
    sb_encode(&b, path, strlen(path), true, (req->flags & UPD_SIGV4_DOUBLE_ENCODE) == 0);
    sb_chr(&b, '\n');
    for (size_t i = 0; i < w->params.num; i++) {
        const struct param *p = &w->params.list[i];
        if (i > 0)
            sb_chr(&b, '&');
        sb_add(&b, p->key, p->key_len);
        sb_chr(&b, '=');
        sb_add(&b, p->value, p->value_len);
    }
    sb_chr(&b, '\n');
    for (size_t i = 0; i < w->num_hdrs; i++) {
        /* repeated names: one line, values joined with ',' in the order given */
        if (i > 0 && same_name(&w->hdrs[i], &w->hdrs[i - 1])) {
            sb_chr(&b, ',');
        } else {
            if (i > 0)
                sb_chr(&b, '\n');
            sb_lower(&b, w->hdrs[i].name, w->hdrs[i].name_len);
            sb_chr(&b, ':');
        }
        sb_header_value(&b, w->hdrs[i].value);
    }
    sb_str(&b, "\n\n");
    sb_str(&b, w->signed_headers);
    sb_chr(&b, '\n');
    sb_str(&b, req->payload_hash);
    if (b.over)
        return UPD_ETOOBIG;

    /* string to sign */
    char digest[65];
    if ((ret = upd_sigv4_sha256_hex(out->canonical_request, b.len, digest)) != 0)
        return ret;
    sb_init(&b, out->string_to_sign, sizeof(out->string_to_sign));
    sb_str(&b, UPD_SIGV4_ALGORITHM "\n");
    sb_str(&b, out->amz_date);
    sb_chr(&b, '\n');
    sb_str(&b, w->scope);
    sb_chr(&b, '\n');
    sb_str(&b, digest);
    if (b.over)
        return UPD_ETOOBIG;

    /* signing key: HMAC chain over the scope's parts, keyed first by "AWS4" + secret */
    if ((ret = fetched()) != 0)
        return ret;
    if ((mac_ctx = EVP_MAC_CTX_new(hmac_mac)) == NULL)
        return UPD_ENOMEM;
    int secret_len = snprintf(secret, sizeof(secret), "AWS4%s", creds->secret_key);
    const char *parts[] = {req->region, req->service, "aws4_request"};
    if ((ret = hmac_sha256(mac_ctx, secret, (size_t)secret_len, out->amz_date, 8, key)) != 0)
        goto Exit;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if ((ret = hmac_sha256(mac_ctx, key, sizeof(key), parts[i], strlen(parts[i]), key)) != 0)
            goto Exit;
    if ((ret = hmac_sha256(mac_ctx, key, sizeof(key), out->string_to_sign, b.len, mac)) != 0)
        goto Exit;
    to_lower_hex(mac, sizeof(mac), out->signature);

    if (presign) {
        sb_init(&b, out->query, sizeof(out->query));
        if (req->query != NULL && req->query[0] != '\0') {
            sb_str(&b, req->query);
            sb_chr(&b, '&');
        }
        /* the order AWS's own signers write; the server does not care, but it keeps URLs comparable */
        sb_str(&b, "X-Amz-Algorithm=" UPD_SIGV4_ALGORITHM "&X-Amz-Credential=");
        sb_encode(&b, creds->access_key, strlen(creds->access_key), false, false);
        sb_str(&b, "%2F");
        sb_encode(&b, w->scope, strlen(w->scope), false, false);
        sb_str(&b, "&X-Amz-Date=");
        sb_str(&b, out->amz_date);
        sb_str(&b, "&X-Amz-SignedHeaders=");
        sb_encode(&b, w->signed_headers, strlen(w->signed_headers), false, false);
        sb_str(&b, "&X-Amz-Expires=");
        char expires_s[16];
        snprintf(expires_s, sizeof(expires_s), "%u", expires);
        sb_str(&b, expires_s);
        if (token != NULL) {
            /* an unsigned token still travels, after the signed parameters */
            sb_str(&b, "&X-Amz-Security-Token=");
            sb_encode(&b, token, strlen(token), false, false);
        }
        sb_str(&b, "&X-Amz-Signature=");
        sb_str(&b, out->signature);
    } else {
        sb_init(&b, out->authorization, sizeof(out->authorization));
        sb_str(&b, UPD_SIGV4_ALGORITHM " Credential=");
        sb_str(&b, creds->access_key);
        sb_chr(&b, '/');
        sb_str(&b, w->scope);
        sb_str(&b, ", SignedHeaders=");
        sb_str(&b, w->signed_headers);
        sb_str(&b, ", Signature=");
        sb_str(&b, out->signature);
        if (token != NULL)
            out->headers[out->num_headers++] = (upd_sigv4_header_t){"X-Amz-Security-Token", token};
        out->headers[out->num_headers++] = (upd_sigv4_header_t){"X-Amz-Date", out->amz_date};
        if (content_header)
            out->headers[out->num_headers++] = (upd_sigv4_header_t){"x-amz-content-sha256", out->payload_hash};
        out->headers[out->num_headers++] = (upd_sigv4_header_t){"Authorization", out->authorization};
    }
    ret = b.over ? UPD_ETOOBIG : 0;

Exit:
    /* the secret and every key derived from it leave no copy behind on the stack */
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(mac, sizeof(mac));
    EVP_MAC_CTX_free(mac_ctx); /* OpenSSL clears the key it copied */
    return ret;
}

static int
run(const upd_sigv4_creds_t *creds, const upd_sigv4_request_t *req, bool presign, unsigned expires, upd_sigv4_result_t *out)
{
    /* about 60 KiB of working space: on the heap rather than on an event-loop thread's stack */
    struct work *w = malloc(sizeof(*w));
    if (w == NULL)
        return UPD_ENOMEM;
    int ret = sign(creds, req, presign, expires, out, w);
    free(w);
    if (ret != 0)
        out->num_headers = 0;
    return ret;
}

int
upd_sigv4_sign_headers(const upd_sigv4_creds_t *creds, const upd_sigv4_request_t *req, upd_sigv4_result_t *out)
{
    return run(creds, req, false, 0, out);
}

int
upd_sigv4_presign(const upd_sigv4_creds_t *creds, const upd_sigv4_request_t *req, unsigned expires, upd_sigv4_result_t *out)
{
    return run(creds, req, true, expires, out);
}
