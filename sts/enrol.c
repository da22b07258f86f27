#include "sts/enrol.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

size_t
upd_sts_b64url_encode(const void *src, size_t n, char *dst)
{
    int len = EVP_EncodeBlock((unsigned char *)dst, src, (int)n);
    while (len > 0 && dst[len - 1] == '=')
        --len;
    for (int i = 0; i != len; ++i)
        dst[i] = dst[i] == '+' ? '-' : dst[i] == '/' ? '_' : dst[i];
    dst[len] = '\0';
    return (size_t)len;
}

long
upd_sts_b64url_decode(const char *src, size_t n, uint8_t *dst, size_t cap)
{
    char buf[4 * 1024 + 4] = {0};
    unsigned char out[3 * 1024 + 3];
    size_t m = n;
    int len;
    if (n % 4 == 1 || n > 4 * 1024)
        return -1;
    for (size_t i = 0; i != n; ++i) {
        char c = src[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return -1;
        buf[i] = c;
    }
    while (m % 4 != 0)
        buf[m++] = '=';
    if ((len = EVP_DecodeBlock(out, (unsigned char *)buf, (int)m)) < 0)
        return -1;
    len -= (int)(m - n); /* EVP_DecodeBlock counts the padding as zero bytes */
    if (len < 0 || (size_t)len > cap)
        return -1;
    memcpy(dst, out, (size_t)len);
    return len;
}

void
upd_sts_token_hash(const char *token, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    EVP_Digest(token, len, out, &n, EVP_sha256(), NULL);
}

int
upd_sts_enrol_link_create(upd_sts_store_t *store, const char *public_url, const char *member, bool admin,
                          const char *created_by, int64_t ttl_s, char link_out[UPD_STS_LINK_MAX], int64_t *expires,
                          upd_reason_t *why)
{
    upd_sts_txn_t *txn;
    int ret;
    if ((ret = upd_sts_txn_begin(store, true, &txn)) != 0)
        return upd_reason_set(why, ret, "store", "the STS store could not record the link (see the log)");
    if ((ret = upd_sts_enrol_link_put(txn, public_url, member, admin, created_by, ttl_s, link_out, expires, why)) != 0) {
        upd_sts_txn_abort(txn);
        return ret;
    }
    if ((ret = upd_sts_txn_commit(txn)) != 0)
        return upd_reason_set(why, ret, "store", "the STS store could not record the link (see the log)");
    return 0;
}

int
upd_sts_enrol_link_put(upd_sts_txn_t *txn, const char *public_url, const char *member, bool admin, const char *created_by,
                       int64_t ttl_s, char link_out[UPD_STS_LINK_MAX], int64_t *expires, upd_reason_t *why)
{
    uint8_t raw[32], hash[32];
    char token[UPD_STS_TOKEN_LEN + 8];
    size_t url_len = strlen(public_url);
    json_t *rec = NULL, *audit = NULL;
    int64_t exp = (int64_t)time(NULL) + ttl_s;
    int ret;

    if (!upd_sts_member_name_valid(member))
        return upd_reason_set(why, UPD_EINVAL, "invalid_member", "a member name is [a-z0-9][a-z0-9._-]{0,62}");
    while (url_len > 0 && public_url[url_len - 1] == '/')
        --url_len;
    if (url_len + 8 + sizeof(token) > UPD_STS_LINK_MAX)
        return upd_reason_set(why, UPD_EINVAL, "invalid_public_url", "the public URL is too long");
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return upd_reason_set(why, UPD_ENOMEM, "random", "no random bytes");
    upd_sts_b64url_encode(raw, sizeof(raw), token);
    upd_sts_token_hash(token, UPD_STS_TOKEN_LEN, hash);
    rec = json_pack("{s:s,s:b,s:I,s:s}", "member", member, "admin", admin, "expires", (json_int_t)exp, "created_by", created_by);
    audit = json_pack("{s:s,s:s,s:s,s:b,s:s}", "action", "enrol_link", "actor", created_by, "member", member, "admin", admin,
                      "outcome", "ok");
    if (rec == NULL || audit == NULL) {
        ret = upd_reason_set(why, UPD_ENOMEM, "", "out of memory");
        goto Exit;
    }
    if ((ret = upd_sts_put_json(txn, UPD_STS_DB_ENROL, hash, 32, rec)) == 0)
        ret = upd_sts_audit_append(txn, audit, NULL);
    if (ret != 0) {
        upd_reason_set(why, ret, "store", "the STS store could not record the link (see the log)");
        goto Exit;
    }
    snprintf(link_out, UPD_STS_LINK_MAX, "%.*s/enrol#%s", (int)url_len, public_url, token);
    if (expires != NULL)
        *expires = exp;
Exit:
    json_decref(rec);
    json_decref(audit);
    OPENSSL_cleanse(token, sizeof(token));
    OPENSSL_cleanse(raw, sizeof(raw));
    return ret;
}
