/* API keys: "upd_<id>_<secret>". The id finds the record; the secret is checked against its stored
 * SHA-256 with a constant-time comparison, so neither timing nor a stolen database reveals a key. */
#include "control/keys.h"
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#include "base/hex.h"

#define ID_HEX 16
#define SECRET_BYTES 32

static const char *const role_names[] = {NULL, "build", "release", "admin"};

int
upd_role_parse(const char *s)
{
    for (int i = 1; i <= 3; ++i)
        if (strcmp(s, role_names[i]) == 0)
            return i;
    return -1;
}

const char *
upd_role_name(upd_role_t r)
{
    return r >= UPD_ROLE_BUILD && r <= UPD_ROLE_ADMIN ? role_names[r] : "none";
}

static void
sha256(const char *data, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

int
upd_keys_create(upd_store_t *store, upd_role_t role, const char *name, char *key, size_t cap)
{
    unsigned char id[ID_HEX / 2], secret[SECRET_BYTES], digest[32];
    char id_hex[ID_HEX + 1], secret_b64[64], digest_hex[65];
    if (RAND_bytes(id, sizeof(id)) != 1 || RAND_bytes(secret, sizeof(secret)) != 1)
        return UPD_EIO;
    upd_hex_encode(id, sizeof(id), id_hex);
    int n = EVP_EncodeBlock((unsigned char *)secret_b64, secret, sizeof(secret));
    /* base64url without padding: the key travels in headers and shells unquoted */
    while (n > 0 && secret_b64[n - 1] == '=')
        secret_b64[--n] = '\0';
    for (int i = 0; i < n; ++i)
        secret_b64[i] = secret_b64[i] == '+' ? '-' : secret_b64[i] == '/' ? '_' : secret_b64[i];
    sha256(secret_b64, (size_t)n, digest);
    upd_hex_encode(digest, sizeof(digest), digest_hex);
    if ((size_t)snprintf(key, cap, "upd_%s_%s", id_hex, secret_b64) >= cap)
        return UPD_ETOOBIG;

    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", id_hex, "name", name, "role", upd_role_name(role), "sha256",
                            digest_hex, "created", (json_int_t)time(NULL));
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    upd_store_txn_t *txn;
    int err = upd_store_write_begin(store, &txn);
    if (err == 0 && (err = upd_store_key_put(txn, id_hex, text)) == 0)
        err = upd_store_commit(txn);
    else if (err == 0)
        upd_store_txn_end(txn);
    free(text);
    OPENSSL_cleanse(secret, sizeof(secret));
    return err;
}

int
upd_keys_authorize(upd_store_txn_t *txn, const char *key, size_t len, const char *app, upd_principal_t *out)
{
    (void)app; /* every key is account-wide */
    memset(out, 0, sizeof(*out));
    /* upd_ + 16 hex + _ + 43 base64url */
    if (len != 4 + ID_HEX + 1 + 43 || memcmp(key, "upd_", 4) != 0 || key[4 + ID_HEX] != '_')
        return UPD_EAUTH;
    char id[ID_HEX + 1];
    memcpy(id, key + 4, ID_HEX);
    id[ID_HEX] = '\0';
    for (int i = 0; i < ID_HEX; ++i)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return UPD_EAUTH;
    memcpy(out->key_id, id, sizeof(id));
    const char *text;
    size_t text_len;
    if (upd_store_key_get(txn, id, &text, &text_len) != 0)
        return UPD_EAUTH;
    json_t *rec = json_loadb(text, text_len, 0, NULL);
    const char *stored = rec != NULL ? json_string_value(json_object_get(rec, "sha256")) : NULL;
    const char *role_name = rec != NULL ? json_string_value(json_object_get(rec, "role")) : NULL;
    int ret = UPD_EAUTH;
    if (stored != NULL && role_name != NULL && strlen(stored) == 64) {
        unsigned char digest[32];
        char digest_hex[65];
        sha256(key + 4 + ID_HEX + 1, 43, digest);
        upd_hex_encode(digest, sizeof(digest), digest_hex);
        int r = upd_role_parse(role_name);
        if (CRYPTO_memcmp(digest_hex, stored, 64) == 0 && r > 0) {
            out->role = (upd_role_t)r;
            ret = 0;
        }
    }
    json_decref(rec);
    return ret;
}
