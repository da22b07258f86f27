#include "domain/purge_sig.h"
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>
#include "base/hex.h"

bool
upd_purge_sign(const char *secret, size_t secret_len, const char *timestamp, const char *nonce, const char *body, size_t body_len,
               char hex[65])
{
    unsigned char mac[32];
    size_t mac_len = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
    /* an empty key is legal for HMAC; OpenSSL wants a non-NULL pointer for it */
    bool ok = ctx != NULL && EVP_MAC_init(ctx, (const unsigned char *)(secret != NULL ? secret : ""), secret_len, params) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)timestamp, strlen(timestamp)) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)"\n", 1) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)nonce, strlen(nonce)) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)"\n", 1) == 1 &&
              (body_len == 0 || EVP_MAC_update(ctx, (const unsigned char *)body, body_len) == 1) &&
              EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) == 1 && mac_len == sizeof(mac);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
    if (ok)
        upd_hex_encode(mac, sizeof(mac), hex);
    return ok;
}
