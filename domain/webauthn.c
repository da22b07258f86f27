#include "domain/webauthn.h"
#include <cbor.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* a refusal by one of the checks of sections 7.1 and 7.2 */
#define FAIL(code, ...) upd_reason_set(why, UPD_EAUTH, code, __VA_ARGS__)
#define MALFORMED(...) upd_reason_set(why, UPD_EINVAL, "malformed", __VA_ARGS__)
#define NOMEM() upd_reason_set(why, UPD_ENOMEM, NULL, "out of memory")

#define RP_ID_HASH_LEN 32
#define AUTH_DATA_MIN 37                             /* rpIdHash, flags, signCount */
#define ATTESTED_MIN 18                              /* aaguid, credentialIdLength */
#define CBOR_DEPTH_MAX 8                             /* attestationObject > attStmt > x5c > cert is 3; extensions get some room */
#define FIDO_GEN_CE_AAGUID "1.3.6.1.4.1.45724.1.1.4" /* id-fido-gen-ce-aaguid, section 8.2.1 */

/* ---- CBOR ---------------------------------------------------------------------------------------------------------- */

/*
 * One pass of libcbor's streaming decoder over a single data item before cbor_load() builds it: it finds where the item
 * ends (authenticatorData holds the COSE key and the extensions back to back, with no length), and refuses what the
 * WebAuthn structures never contain and cbor_load() would handle poorly: indefinite lengths, tags, nesting deeper than
 * CBOR_DEPTH_MAX (libcbor frees nested items recursively) and containers that declare more items than there are bytes.
 */
struct span {
    size_t depth;
    uint64_t left[CBOR_DEPTH_MAX]; /* items still due in each open container */
    size_t avail;                  /* bytes of input: a container cannot hold more items than that */
    bool bad, done;
};

static void
span_item(void *ctx)
{
    struct span *s = ctx;
    while (s->depth > 0) {
        if (--s->left[s->depth - 1] > 0)
            return;
        s->depth--; /* the container is complete: it counts as an item of its parent */
    }
    s->done = true;
}

static void
span_open(struct span *s, uint64_t items)
{
    if (items == 0) {
        span_item(s);
    } else if (s->depth == CBOR_DEPTH_MAX || items > s->avail) {
        s->bad = true;
    } else {
        s->left[s->depth++] = items;
    }
}

static void
span_array(void *ctx, size_t n)
{
    span_open(ctx, n);
}

static void
span_map(void *ctx, size_t n)
{
    struct span *s = ctx;
    if (n > s->avail / 2)
        s->bad = true;
    else
        span_open(s, (uint64_t)n * 2);
}

static void
span_bad(void *ctx)
{
    ((struct span *)ctx)->bad = true;
}

static void
span_tag(void *ctx, uint64_t tag)
{
    span_bad(ctx);
}

static void
span_u8(void *ctx, uint8_t v)
{
    span_item(ctx);
}
static void
span_u16(void *ctx, uint16_t v)
{
    span_item(ctx);
}
static void
span_u32(void *ctx, uint32_t v)
{
    span_item(ctx);
}
static void
span_u64(void *ctx, uint64_t v)
{
    span_item(ctx);
}
static void
span_str(void *ctx, cbor_data d, size_t n)
{
    span_item(ctx);
}
static void
span_f(void *ctx, float v)
{
    span_item(ctx);
}
static void
span_d(void *ctx, double v)
{
    span_item(ctx);
}
static void
span_b(void *ctx, bool v)
{
    span_item(ctx);
}

static const struct cbor_callbacks span_callbacks = {
    .uint8 = span_u8,
    .uint16 = span_u16,
    .uint32 = span_u32,
    .uint64 = span_u64,
    .negint8 = span_u8,
    .negint16 = span_u16,
    .negint32 = span_u32,
    .negint64 = span_u64,
    .byte_string_start = span_bad,
    .byte_string = span_str,
    .string = span_str,
    .string_start = span_bad,
    .indef_array_start = span_bad,
    .array_start = span_array,
    .indef_map_start = span_bad,
    .map_start = span_map,
    .tag = span_tag,
    .float2 = span_f,
    .float4 = span_f,
    .float8 = span_d,
    .undefined = span_item,
    .null = span_item,
    .boolean = span_b,
    .indef_break = span_bad,
};

/* @return the length of the one CBOR item at the start of data, 0 if there is none acceptable */
static size_t
cbor_span(const uint8_t *data, size_t len)
{
    struct span s = {.avail = len};
    size_t pos = 0;
    while (!s.done && !s.bad && pos < len) {
        struct cbor_decoder_result r = cbor_stream_decode(data + pos, len - pos, &span_callbacks, &s);
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0)
            return 0;
        pos += r.read;
    }
    return s.done && !s.bad ? pos : 0;
}

/* Decodes exactly len bytes as one item (NULL if they are not); *nomem tells an allocation failure apart. */
static cbor_item_t *
cbor_parse(const uint8_t *data, size_t len, bool *nomem)
{
    *nomem = false;
    if (len == 0 || cbor_span(data, len) != len)
        return NULL;
    struct cbor_load_result res;
    cbor_item_t *item = cbor_load(data, len, &res);
    if (item == NULL) {
        *nomem = res.error.code == CBOR_ERR_MEMERROR;
        return NULL;
    }
    if (res.read != len) {
        cbor_decref(&item);
        return NULL;
    }
    return item;
}

static bool
cbor_int_value(const cbor_item_t *item, int64_t *v)
{
    if (!cbor_isa_uint(item) && !cbor_isa_negint(item))
        return false;
    uint64_t u = cbor_get_int(item);
    if (u > INT64_MAX)
        return false;
    *v = cbor_isa_uint(item) ? (int64_t)u : -1 - (int64_t)u;
    return true;
}

static bool
cbor_is_text(const cbor_item_t *item, const char *s)
{
    size_t n = strlen(s);
    return cbor_isa_string(item) && cbor_string_is_definite(item) && cbor_string_length(item) == n &&
           memcmp(cbor_string_handle(item), s, n) == 0;
}

/*
 * The value under a text key (skey) or an integer key (ikey when skey is NULL).
 * @return 1 found, 0 absent, -1 the key appears twice
 */
static int
map_get(const cbor_item_t *map, const char *skey, int64_t ikey, cbor_item_t **out)
{
    struct cbor_pair *pairs = cbor_map_handle(map);
    size_t n = cbor_map_size(map);
    int found = 0;
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        int64_t k;
        bool match = skey != NULL ? cbor_is_text(pairs[i].key, skey) : cbor_int_value(pairs[i].key, &k) && k == ikey;
        if (!match)
            continue;
        if (found)
            return -1;
        found = 1;
        *out = pairs[i].value;
    }
    return found;
}

static bool
is_bytes(const cbor_item_t *item)
{
    return item != NULL && cbor_isa_bytestring(item) && cbor_bytestring_is_definite(item);
}

/* ---- COSE keys ----------------------------------------------------------------------------------------------------- */

/* COSE key parameters (RFC 9052 section 7, RFC 9053 section 7) */
#define COSE_KTY 1
#define COSE_ALG 3
#define COSE_CRV -1
#define COSE_X -2
#define COSE_Y -3
#define COSE_RSA_N -1
#define COSE_RSA_E -2
#define COSE_KTY_OKP 1
#define COSE_KTY_EC2 2
#define COSE_KTY_RSA 3

static bool
alg_is_known(int64_t alg)
{
    switch (alg) {
    case UPD_WEBAUTHN_ALG_ES256:
    case UPD_WEBAUTHN_ALG_ES384:
    case UPD_WEBAUTHN_ALG_ES512:
    case UPD_WEBAUTHN_ALG_EDDSA:
    case UPD_WEBAUTHN_ALG_ED25519:
    case UPD_WEBAUTHN_ALG_ED448:
    case UPD_WEBAUTHN_ALG_RS256:
        return true;
    default:
        return false;
    }
}

/* the digest a signature of alg is made over; NULL for EdDSA, which hashes inside the algorithm */
static const char *
alg_digest(int alg)
{
    switch (alg) {
    case UPD_WEBAUTHN_ALG_ES256:
    case UPD_WEBAUTHN_ALG_RS256:
        return "SHA256";
    case UPD_WEBAUTHN_ALG_ES384:
        return "SHA384";
    case UPD_WEBAUTHN_ALG_ES512:
        return "SHA512";
    default:
        return NULL;
    }
}

static const char *
alg_ec_group(int alg)
{
    switch (alg) {
    case UPD_WEBAUTHN_ALG_ES256:
        return "prime256v1";
    case UPD_WEBAUTHN_ALG_ES384:
        return "secp384r1";
    case UPD_WEBAUTHN_ALG_ES512:
        return "secp521r1";
    default:
        return NULL;
    }
}

/* Whether an OpenSSL key (an attestation certificate's) is of the kind alg signs with. */
static bool
key_fits_alg(EVP_PKEY *pkey, int alg)
{
    const char *group = alg_ec_group(alg);
    if (group != NULL) {
        char name[64];
        size_t n = 0;
        return EVP_PKEY_is_a(pkey, "EC") &&
               EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &n) == 1 &&
               strcmp(name, group) == 0;
    }
    switch (alg) {
    case UPD_WEBAUTHN_ALG_RS256:
        return EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= UPD_WEBAUTHN_RSA_MIN_BITS &&
               EVP_PKEY_get_bits(pkey) <= UPD_WEBAUTHN_RSA_MAX_BITS;
    case UPD_WEBAUTHN_ALG_EDDSA:
        return EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448");
    case UPD_WEBAUTHN_ALG_ED25519:
        return EVP_PKEY_is_a(pkey, "ED25519");
    case UPD_WEBAUTHN_ALG_ED448:
        return EVP_PKEY_is_a(pkey, "ED448");
    default:
        return false;
    }
}

static int
pkey_from_params(const char *type, const OSSL_PARAM *params, EVP_PKEY **out, upd_reason_t *why)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY_CTX *check = NULL;
    EVP_PKEY *pkey = NULL;
    int ret;

    if (ctx == NULL) {
        ret = NOMEM();
        goto exit;
    }
    /* EVP_PKEY_fromdata refuses an EC point off its curve; the public check adds what it does not look at */
    if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)params) != 1 ||
        (check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL || EVP_PKEY_public_check(check) != 1) {
        ret = FAIL("public_key", "the credential public key is not a valid %s key", type);
        goto exit;
    }
    *out = pkey;
    pkey = NULL;
    ret = 0;
exit:
    ERR_clear_error();
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ret;
}

static int
cose_ec2(const cbor_item_t *key, int alg, EVP_PKEY **out, upd_reason_t *why)
{
    static const struct {
        int64_t crv;
        size_t len;
    } curves[] = {{0, 0}, {1, 32}, {2, 48}, {3, 66}}; /* COSE crv P-256, P-384, P-521 */
    size_t want = alg == UPD_WEBAUTHN_ALG_ES256 ? 1 : alg == UPD_WEBAUTHN_ALG_ES384 ? 2 : 3;
    cbor_item_t *crv, *x, *y;
    int64_t c;
    if (map_get(key, NULL, COSE_CRV, &crv) != 1 || !cbor_int_value(crv, &c) || c != curves[want].crv)
        return FAIL("public_key", "COSE algorithm %d needs crv %d", alg, (int)curves[want].crv);
    size_t len = curves[want].len;
    /* y is a byte string: the compressed form (a boolean) is not for WebAuthn (section 5.8.5) */
    if (map_get(key, NULL, COSE_X, &x) != 1 || map_get(key, NULL, COSE_Y, &y) != 1 || !is_bytes(x) || !is_bytes(y) ||
        cbor_bytestring_length(x) != len || cbor_bytestring_length(y) != len)
        return FAIL("public_key", "the EC2 key needs x and y of %zu bytes each", len);
    uint8_t point[1 + 2 * 66];
    point[0] = 0x04; /* SEC 1 uncompressed */
    memcpy(point + 1, cbor_bytestring_handle(x), len);
    memcpy(point + 1 + len, cbor_bytestring_handle(y), len);
    char group[16];
    snprintf(group, sizeof(group), "%s", alg_ec_group(alg));
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                           OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * len),
                           OSSL_PARAM_construct_end()};
    return pkey_from_params("EC", params, out, why);
}

static int
cose_okp(const cbor_item_t *key, int alg, EVP_PKEY **out, upd_reason_t *why)
{
    cbor_item_t *crv, *x;
    int64_t c;
    if (map_get(key, NULL, COSE_CRV, &crv) != 1 || !cbor_int_value(crv, &c))
        return FAIL("public_key", "the OKP key has no crv");
    /* crv 6 Ed25519, 7 Ed448; -8 names either, -19 and -53 (RFC 9864) one each */
    if (!(c == 6 && (alg == UPD_WEBAUTHN_ALG_EDDSA || alg == UPD_WEBAUTHN_ALG_ED25519)) &&
        !(c == 7 && (alg == UPD_WEBAUTHN_ALG_EDDSA || alg == UPD_WEBAUTHN_ALG_ED448)))
        return FAIL("public_key", "COSE algorithm %d does not go with crv %lld", alg, (long long)c);
    size_t len = c == 6 ? 32 : 57;
    if (map_get(key, NULL, COSE_X, &x) != 1 || !is_bytes(x) || cbor_bytestring_length(x) != len)
        return FAIL("public_key", "the OKP key needs x of %zu bytes", len);
    uint8_t pub[57];
    memcpy(pub, cbor_bytestring_handle(x), len);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, len), OSSL_PARAM_construct_end()};
    return pkey_from_params(c == 6 ? "ED25519" : "ED448", params, out, why);
}

static int
cose_rsa(const cbor_item_t *key, EVP_PKEY **out, upd_reason_t *why)
{
    cbor_item_t *n, *e;
    if (map_get(key, NULL, COSE_RSA_N, &n) != 1 || map_get(key, NULL, COSE_RSA_E, &e) != 1 || !is_bytes(n) || !is_bytes(e))
        return FAIL("public_key", "the RSA key needs n and e");
    size_t nlen = cbor_bytestring_length(n), elen = cbor_bytestring_length(e);
    const uint8_t *nb = cbor_bytestring_handle(n);
    /* RFC 8230 section 4: n and e are unsigned big-endian with no leading zero byte */
    if (nlen == 0 || nb[0] == 0 || elen == 0 || elen > 8 || cbor_bytestring_handle(e)[0] == 0)
        return FAIL("public_key", "the RSA key's n or e is not a minimal unsigned integer");
    size_t bits = nlen * 8;
    for (uint8_t top = nb[0]; (top & 0x80) == 0; top <<= 1)
        bits--;
    if (bits < UPD_WEBAUTHN_RSA_MIN_BITS || bits > UPD_WEBAUTHN_RSA_MAX_BITS)
        return FAIL("public_key", "an RSA modulus of %zu bits is outside %d to %d", bits, UPD_WEBAUTHN_RSA_MIN_BITS,
                    UPD_WEBAUTHN_RSA_MAX_BITS);

    BIGNUM *bn_n = BN_bin2bn(nb, (int)nlen, NULL), *bn_e = BN_bin2bn(cbor_bytestring_handle(e), (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    int ret;
    if (bn_n == NULL || bn_e == NULL || bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1 || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
        ret = NOMEM();
    } else if (!BN_is_odd(bn_e) || BN_is_one(bn_e)) {
        ret = FAIL("public_key", "the RSA public exponent is not an odd number above 1");
    } else {
        ret = pkey_from_params("RSA", params, out, why);
    }
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return ret;
}

/* Parses a COSE_Key (exactly len bytes) into its algorithm and an OpenSSL key. */
static int
parse_cose(const uint8_t *data, size_t len, int *alg_out, EVP_PKEY **out, upd_reason_t *why)
{
    bool nomem;
    cbor_item_t *key = cbor_parse(data, len, &nomem);
    cbor_item_t *kty_item, *alg_item;
    int64_t kty, alg;
    int ret;

    *out = NULL;
    if (key == NULL)
        return nomem ? NOMEM() : MALFORMED("the credential public key is not a CBOR item");
    if (!cbor_isa_map(key) || map_get(key, NULL, COSE_KTY, &kty_item) != 1 || !cbor_int_value(kty_item, &kty) ||
        map_get(key, NULL, COSE_ALG, &alg_item) != 1 || !cbor_int_value(alg_item, &alg)) {
        ret = MALFORMED("the credential public key is not a COSE_Key with one kty and one alg");
        goto exit;
    }
    if (!alg_is_known(alg)) {
        ret = FAIL("alg", "COSE algorithm %lld is not supported", (long long)alg);
        goto exit;
    }
    *alg_out = (int)alg;
    int64_t want = alg_ec_group((int)alg) != NULL ? COSE_KTY_EC2 : alg == UPD_WEBAUTHN_ALG_RS256 ? COSE_KTY_RSA : COSE_KTY_OKP;
    if (kty != want) {
        ret = FAIL("public_key", "COSE algorithm %lld does not go with kty %lld", (long long)alg, (long long)kty);
        goto exit;
    }
    if (kty == COSE_KTY_EC2)
        ret = cose_ec2(key, (int)alg, out, why);
    else if (kty == COSE_KTY_OKP)
        ret = cose_okp(key, (int)alg, out, why);
    else
        ret = cose_rsa(key, out, why);
exit:
    cbor_decref(&key);
    return ret;
}

/*
 * Verifies sig over authData || clientDataHash (sections 6.3.3 and 7.2): ECDSA in DER (OpenSSL refuses any other
 * encoding of the same numbers), RSASSA-PKCS1-v1_5 (OpenSSL's default RSA padding), or pure EdDSA.
 * @return 1 valid, 0 not, UPD_ENOMEM
 */
static int
verify_sig(EVP_PKEY *pkey, int alg, const uint8_t *auth_data, size_t auth_data_len, const uint8_t cdh[32], const uint8_t *sig,
           size_t sig_len)
{
    uint8_t *msg = malloc(auth_data_len + 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ret;
    if (msg == NULL || ctx == NULL) {
        ret = UPD_ENOMEM;
        goto exit;
    }
    memcpy(msg, auth_data, auth_data_len);
    memcpy(msg + auth_data_len, cdh, 32);
    ret = sig_len > 0 && EVP_DigestVerifyInit_ex(ctx, NULL, alg_digest(alg), NULL, NULL, pkey, NULL) == 1 &&
          EVP_DigestVerify(ctx, sig, sig_len, msg, auth_data_len + 32) == 1;
exit:
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    free(msg);
    return ret;
}

/* ---- clientDataJSON and authenticatorData ------------------------------------------------------------------------- */

static bool
json_str_is(const json_t *s, const char *want)
{
    size_t n = strlen(want);
    return json_string_length(s) == n && memcmp(json_string_value(s), want, n) == 0;
}

/* A client's text for a reason: at most cap - 1 bytes, anything but printable ASCII as '?', so a log line stays one line. */
static const char *
printable(const char *s, char *buf, size_t cap)
{
    size_t i = 0;
    for (; s[i] != '\0' && i < cap - 1; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

static bool
in_list(const json_t *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] != NULL && json_str_is(s, list[i]))
            return true;
    return false;
}

/* Whether clientData.challenge is the unpadded base64url of the expected challenge (section 5.8.1: "base64url encoding"). */
static bool
challenge_matches(const json_t *got, const uint8_t *challenge, size_t len)
{
    char b64[(UPD_WEBAUTHN_CHALLENGE_MAX + 2) / 3 * 4 + 1];
    int n = EVP_EncodeBlock((unsigned char *)b64, challenge, (int)len);
    while (n > 0 && b64[n - 1] == '=')
        n--;
    for (int i = 0; i < n; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    /* not secret once issued, but compared without a data-dependent time all the same */
    return json_string_length(got) == (size_t)n && CRYPTO_memcmp(json_string_value(got), b64, (size_t)n) == 0;
}

/* Sections 7.1 steps 7-10 and 7.2 steps 10-13: type, challenge, origin, crossOrigin, topOrigin, in that order. */
static int
check_client_data(const upd_webauthn_policy_t *policy, const char *type, const uint8_t *challenge, size_t challenge_len,
                  const uint8_t *cdj, size_t cdj_len, upd_reason_t *why)
{
    json_error_t jerr;
    char shown[128];
    json_t *c = json_loadb((const char *)cdj, cdj_len, JSON_REJECT_DUPLICATES, &jerr);
    int ret;
    if (!json_is_object(c)) {
        ret = MALFORMED("clientDataJSON is not a JSON object");
        goto exit;
    }
    json_t *t = json_object_get(c, "type"), *ch = json_object_get(c, "challenge"), *o = json_object_get(c, "origin");
    json_t *xo = json_object_get(c, "crossOrigin"), *top = json_object_get(c, "topOrigin");
    if (!json_is_string(t) || !json_is_string(ch) || !json_is_string(o) || (xo != NULL && !json_is_boolean(xo)) ||
        (top != NULL && !json_is_string(top))) {
        ret = MALFORMED("clientDataJSON needs string type, challenge and origin (boolean crossOrigin, string topOrigin)");
        goto exit;
    }
    if (!json_str_is(t, type)) {
        ret = FAIL("type", "clientData.type is not \"%s\"", type);
        goto exit;
    }
    if (!challenge_matches(ch, challenge, challenge_len)) {
        ret = FAIL("challenge", "clientData.challenge is not the challenge issued for this ceremony");
        goto exit;
    }
    if (!in_list(o, policy->origins, policy->num_origins)) {
        ret = FAIL("origin", "origin \"%s\" is not an expected origin", printable(json_string_value(o), shown, sizeof(shown)));
        goto exit;
    }
    if (json_is_true(xo) && !policy->accept_cross_origin) {
        ret = FAIL("cross_origin", "the ceremony ran in a cross-origin iframe, which is not accepted");
        goto exit;
    }
    if (top != NULL && (!policy->accept_cross_origin || !in_list(top, policy->top_origins, policy->num_top_origins))) {
        ret = FAIL("top_origin", "top origin \"%s\" is not an expected top-level origin",
                   printable(json_string_value(top), shown, sizeof(shown)));
        goto exit;
    }
    ret = 0;
exit:
    json_decref(c);
    return ret;
}

typedef struct st_auth_data_t {
    const uint8_t *rp_id_hash;
    uint8_t flags;
    uint32_t sign_count;
    /* attested credential data (section 6.5.2), when AT is set */
    const uint8_t *aaguid;
    const uint8_t *cred_id;
    size_t cred_id_len;
    const uint8_t *cose;
    size_t cose_len;
} auth_data_t;

/* Splits authenticatorData (section 6.1); attested: whether AT must be set (registration) or must not (assertion). */
static int
parse_auth_data(const uint8_t *d, size_t n, bool attested, auth_data_t *out, upd_reason_t *why)
{
    memset(out, 0, sizeof(*out));
    if (n > UPD_WEBAUTHN_AUTH_DATA_MAX)
        return upd_reason_set(why, UPD_ETOOBIG, "too_big", "authenticatorData is above %d bytes", UPD_WEBAUTHN_AUTH_DATA_MAX);
    if (n < AUTH_DATA_MIN)
        return MALFORMED("authenticatorData is %zu bytes, shorter than %d", n, AUTH_DATA_MIN);
    out->rp_id_hash = d;
    out->flags = d[32];
    out->sign_count = (uint32_t)d[33] << 24 | (uint32_t)d[34] << 16 | (uint32_t)d[35] << 8 | d[36];
    size_t pos = AUTH_DATA_MIN;
    if (((out->flags & UPD_WEBAUTHN_FLAG_AT) != 0) != attested)
        return MALFORMED(attested ? "authenticatorData has no attested credential data"
                                  : "authenticatorData of an assertion carries attested credential data");
    if (attested) {
        if (n - pos < ATTESTED_MIN)
            return MALFORMED("the attested credential data is cut short");
        out->aaguid = d + pos;
        out->cred_id_len = (size_t)d[pos + 16] << 8 | d[pos + 17];
        pos += ATTESTED_MIN;
        if (out->cred_id_len > UPD_WEBAUTHN_CREDENTIAL_ID_MAX)
            return upd_reason_set(why, UPD_EINVAL, "credential_id", "the credential id is %zu bytes, above %d", out->cred_id_len,
                                  UPD_WEBAUTHN_CREDENTIAL_ID_MAX);
        if (out->cred_id_len == 0 || n - pos < out->cred_id_len)
            return MALFORMED("the credential id is empty or cut short");
        out->cred_id = d + pos;
        pos += out->cred_id_len;
        out->cose = d + pos;
        out->cose_len = cbor_span(d + pos, n - pos);
        if (out->cose_len == 0)
            return MALFORMED("the credential public key is not a CBOR item");
        if (out->cose_len > UPD_WEBAUTHN_PUBLIC_KEY_MAX)
            return upd_reason_set(why, UPD_ETOOBIG, "too_big", "the credential public key is above %d bytes",
                                  UPD_WEBAUTHN_PUBLIC_KEY_MAX);
        pos += out->cose_len;
    }
    if (out->flags & UPD_WEBAUTHN_FLAG_ED) {
        /* extensions are not acted upon, but must be the one CBOR map that ends the data */
        bool nomem;
        cbor_item_t *ext = cbor_parse(d + pos, n - pos, &nomem);
        bool ok = ext != NULL && cbor_isa_map(ext);
        if (ext != NULL)
            cbor_decref(&ext);
        if (!ok)
            return nomem ? NOMEM() : MALFORMED("the extensions in authenticatorData are not one CBOR map");
        pos = n;
    }
    if (pos != n)
        return MALFORMED("authenticatorData has %zu bytes after its end", n - pos);
    return 0;
}

/* Sections 7.1 steps 13-17 and 7.2 steps 15-18: rpIdHash, UP, UV, BE/BS, in that order. */
static int
check_auth_data(const upd_webauthn_policy_t *policy, const auth_data_t *ad, upd_reason_t *why)
{
    uint8_t want[RP_ID_HASH_LEN];
    if (EVP_Digest(policy->rp_id, strlen(policy->rp_id), want, NULL, EVP_sha256(), NULL) != 1)
        return NOMEM();
    if (CRYPTO_memcmp(ad->rp_id_hash, want, RP_ID_HASH_LEN) != 0)
        return FAIL("rp_id_hash", "rpIdHash is not the SHA-256 of RP ID \"%.200s\"", policy->rp_id);
    if (!(ad->flags & UPD_WEBAUTHN_FLAG_UP))
        return FAIL("up", "the authenticator did not report user presence");
    if (policy->user_verification == UPD_WEBAUTHN_UV_REQUIRED && !(ad->flags & UPD_WEBAUTHN_FLAG_UV))
        return FAIL("uv", "user verification is required and the authenticator did not verify the user");
    if ((ad->flags & UPD_WEBAUTHN_FLAG_BS) && !(ad->flags & UPD_WEBAUTHN_FLAG_BE))
        return FAIL("be_bs", "the credential reports backup state without backup eligibility");
    return 0;
}

static int
check_policy(const upd_webauthn_policy_t *policy, size_t challenge_len, size_t client_data_len, upd_reason_t *why)
{
    if (policy == NULL || policy->rp_id == NULL || policy->rp_id[0] == '\0' || policy->num_origins == 0 ||
        policy->origins == NULL || (policy->num_top_origins > 0 && policy->top_origins == NULL) ||
        (policy->num_algs > 0 && policy->algs == NULL) || policy->user_verification > UPD_WEBAUTHN_UV_PREFERRED)
        return upd_reason_set(why, UPD_EINVAL, "policy", "the WebAuthn policy needs an RP ID and at least one origin");
    if (challenge_len < UPD_WEBAUTHN_CHALLENGE_MIN || challenge_len > UPD_WEBAUTHN_CHALLENGE_MAX)
        return upd_reason_set(why, UPD_EINVAL, "policy", "an expected challenge of %zu bytes is outside %d to %d", challenge_len,
                              UPD_WEBAUTHN_CHALLENGE_MIN, UPD_WEBAUTHN_CHALLENGE_MAX);
    if (client_data_len > UPD_WEBAUTHN_CLIENT_DATA_MAX)
        return upd_reason_set(why, UPD_ETOOBIG, "too_big", "clientDataJSON is above %d bytes", UPD_WEBAUTHN_CLIENT_DATA_MAX);
    return 0;
}

/* ---- packed attestation (section 8.2) ------------------------------------------------------------------------------ */

static bool
name_has(const X509_NAME *name, int nid, const char *want)
{
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0)
        return false;
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    if (s == NULL || ASN1_STRING_length(s) <= 0)
        return false;
    if (want == NULL)
        return true;
    size_t n = strlen(want);
    return (size_t)ASN1_STRING_length(s) == n && memcmp(ASN1_STRING_get0_data(s), want, n) == 0;
}

/* Section 8.2.1: the attestation certificate's version, subject, basic constraints and AAGUID extension. */
static int
check_attestation_cert(X509 *cert, const uint8_t aaguid[16], upd_reason_t *why)
{
    const X509_NAME *subject = X509_get_subject_name(cert);
    if (X509_get_version(cert) != X509_VERSION_3)
        return FAIL("attestation", "the attestation certificate is not X.509 version 3");
    if (!name_has(subject, NID_countryName, NULL) || !name_has(subject, NID_organizationName, NULL) ||
        !name_has(subject, NID_organizationalUnitName, "Authenticator Attestation") || !name_has(subject, NID_commonName, NULL))
        return FAIL("attestation", "the attestation certificate's subject lacks C, O, CN or OU \"Authenticator Attestation\"");
    if (X509_get_extension_flags(cert) & (EXFLAG_CA | EXFLAG_INVALID))
        return FAIL("attestation", "the attestation certificate is a CA certificate or has invalid extensions");

    ASN1_OBJECT *oid = OBJ_txt2obj(FIDO_GEN_CE_AAGUID, 1);
    if (oid == NULL)
        return NOMEM();
    int at = X509_get_ext_by_OBJ(cert, oid, -1);
    ASN1_OBJECT_free(oid);
    if (at < 0)
        return 0;
    X509_EXTENSION *ext = X509_get_ext(cert, at);
    /* the extension value is an OCTET STRING holding the 16-byte AAGUID; it must not be critical */
    const ASN1_OCTET_STRING *outer = X509_EXTENSION_get_data(ext);
    const unsigned char *p = ASN1_STRING_get0_data(outer);
    long len = ASN1_STRING_length(outer);
    ASN1_OCTET_STRING *inner = d2i_ASN1_OCTET_STRING(NULL, &p, len);
    bool ok = inner != NULL && p == ASN1_STRING_get0_data(outer) + len && ASN1_STRING_length(inner) == 16 &&
              memcmp(ASN1_STRING_get0_data(inner), aaguid, 16) == 0 && !X509_EXTENSION_get_critical(ext);
    ASN1_OCTET_STRING_free(inner);
    ERR_clear_error();
    return ok ? 0 : FAIL("attestation", "the attestation certificate's AAGUID extension does not match the authenticator data");
}

static int
verify_chain(const upd_webauthn_policy_t *policy, X509 *leaf, STACK_OF(X509) * intermediates, upd_reason_t *why)
{
    if (policy->trust_anchors == NULL)
        return FAIL("attestation", "no trust anchor is configured for x5c attestation");
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ret;
    if (ctx == NULL || X509_STORE_CTX_init(ctx, policy->trust_anchors, leaf, intermediates) != 1) {
        ret = NOMEM();
        goto exit;
    }
    if (policy->verify_time != 0)
        X509_STORE_CTX_set_time(ctx, 0, policy->verify_time);
    if (X509_verify_cert(ctx) != 1) {
        ret = FAIL("attestation", "the attestation certificate does not chain to a trust anchor: %s",
                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto exit;
    }
    ret = 0;
exit:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return ret;
}

static int
verify_packed(const upd_webauthn_policy_t *policy, const cbor_item_t *stmt, const uint8_t *auth_data, size_t auth_data_len,
              const uint8_t cdh[32], const auth_data_t *ad, const upd_webauthn_credential_t *cred, upd_webauthn_attestation_t *type,
              upd_reason_t *why)
{
    cbor_item_t *alg_item, *sig, *x5c, *ecdaa;
    int64_t alg;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *cert_key = NULL;
    int ret, has_x5c;

    if (map_get(stmt, "alg", 0, &alg_item) != 1 || !cbor_int_value(alg_item, &alg) || map_get(stmt, "sig", 0, &sig) != 1 ||
        !is_bytes(sig) || (has_x5c = map_get(stmt, "x5c", 0, &x5c)) < 0 ||
        (has_x5c && (!cbor_isa_array(x5c) || cbor_array_size(x5c) == 0))) {
        ret = MALFORMED("the packed attestation statement needs alg, sig and (if any) a non-empty x5c");
        goto exit;
    }
    if (map_get(stmt, "ecdaaKeyId", 0, &ecdaa) != 0) {
        ret = FAIL("attestation", "ECDAA attestation is not accepted");
        goto exit;
    }
    if (!alg_is_known(alg)) {
        ret = FAIL("attestation", "attestation algorithm %lld is not supported", (long long)alg);
        goto exit;
    }
    const uint8_t *sig_bytes = cbor_bytestring_handle(sig);
    size_t sig_len = cbor_bytestring_length(sig);

    if (!has_x5c) {
        /* self attestation: the credential key signs, with its own algorithm */
        if (alg != cred->alg) {
            ret = FAIL("attestation", "the self attestation's alg %lld is not the credential key's %d", (long long)alg, cred->alg);
            goto exit;
        }
        ret = verify_sig(cred->pkey, cred->alg, auth_data, auth_data_len, cdh, sig_bytes, sig_len);
        if (ret == 1) {
            *type = UPD_WEBAUTHN_ATTESTATION_SELF;
            ret = 0;
        } else if (ret == 0) {
            ret = FAIL("attestation", "the packed self attestation signature does not verify");
        }
        goto exit;
    }

    if ((chain = sk_X509_new_null()) == NULL) {
        ret = NOMEM();
        goto exit;
    }
    cbor_item_t **certs = cbor_array_handle(x5c);
    for (size_t i = 0; i < cbor_array_size(x5c); i++) {
        if (!is_bytes(certs[i])) {
            ret = MALFORMED("x5c holds something other than a certificate");
            goto exit;
        }
        const unsigned char *p = cbor_bytestring_handle(certs[i]);
        size_t len = cbor_bytestring_length(certs[i]);
        X509 *cert = d2i_X509(NULL, &p, (long)len);
        if (cert == NULL || p != cbor_bytestring_handle(certs[i]) + len || !sk_X509_push(chain, cert)) {
            X509_free(cert);
            ret = MALFORMED("x5c[%zu] is not a DER certificate", i);
            goto exit;
        }
    }
    X509 *leaf = sk_X509_shift(chain); /* x5c[0] is the attestation certificate, the rest lead to the anchor */
    if ((ret = check_attestation_cert(leaf, ad->aaguid, why)) != 0 || (ret = verify_chain(policy, leaf, chain, why)) != 0) {
        X509_free(leaf);
        goto exit;
    }
    cert_key = X509_get_pubkey(leaf);
    X509_free(leaf);
    if (cert_key == NULL || !key_fits_alg(cert_key, (int)alg)) {
        ret = FAIL("attestation", "the attestation certificate's key does not go with alg %lld", (long long)alg);
        goto exit;
    }
    ret = verify_sig(cert_key, (int)alg, auth_data, auth_data_len, cdh, sig_bytes, sig_len);
    if (ret == 1) {
        *type = UPD_WEBAUTHN_ATTESTATION_X5C;
        ret = 0;
    } else if (ret == 0) {
        ret = FAIL("attestation", "the packed attestation signature does not verify with the attestation certificate");
    }
exit:
    ERR_clear_error();
    EVP_PKEY_free(cert_key);
    sk_X509_pop_free(chain, X509_free);
    return ret;
}

/* ---- the two ceremonies -------------------------------------------------------------------------------------------- */

static bool
alg_allowed(const upd_webauthn_policy_t *policy, int alg)
{
    if (policy->algs == NULL)
        return true;
    for (size_t i = 0; i < policy->num_algs; i++)
        if (policy->algs[i] == alg)
            return true;
    return false;
}

static bool
fmt_is_printable(const cbor_item_t *fmt)
{
    size_t n = cbor_string_length(fmt);
    const uint8_t *s = cbor_string_handle(fmt);
    if (n == 0 || n >= UPD_WEBAUTHN_FMT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

int
upd_webauthn_register(const upd_webauthn_policy_t *policy, const uint8_t *challenge, size_t challenge_len,
                      const uint8_t *client_data_json, size_t client_data_len, const uint8_t *attestation_object,
                      size_t attestation_len, upd_webauthn_credential_t *out, upd_reason_t *why)
{
    upd_webauthn_credential_t cred = {0};
    cbor_item_t *obj = NULL, *fmt, *stmt, *auth;
    auth_data_t ad;
    uint8_t cdh[32];
    int ret;

    memset(out, 0, sizeof(*out));
    if ((ret = check_policy(policy, challenge_len, client_data_len, why)) != 0)
        return ret;
    if (attestation_len > UPD_WEBAUTHN_ATTESTATION_MAX)
        return upd_reason_set(why, UPD_ETOOBIG, "too_big", "attestationObject is above %d bytes", UPD_WEBAUTHN_ATTESTATION_MAX);
    if ((ret = check_client_data(policy, "webauthn.create", challenge, challenge_len, client_data_json, client_data_len, why)) != 0)
        return ret;
    if (EVP_Digest(client_data_json, client_data_len, cdh, NULL, EVP_sha256(), NULL) != 1)
        return NOMEM();

    bool nomem;
    if ((obj = cbor_parse(attestation_object, attestation_len, &nomem)) == NULL) {
        ret = nomem ? NOMEM() : MALFORMED("attestationObject is not one CBOR item");
        goto exit;
    }
    if (!cbor_isa_map(obj) || map_get(obj, "fmt", 0, &fmt) != 1 || !cbor_isa_string(fmt) || !cbor_string_is_definite(fmt) ||
        map_get(obj, "attStmt", 0, &stmt) != 1 || !cbor_isa_map(stmt) || map_get(obj, "authData", 0, &auth) != 1 ||
        !is_bytes(auth)) {
        ret = MALFORMED("attestationObject is not a map of one fmt, attStmt and authData");
        goto exit;
    }
    if (!fmt_is_printable(fmt)) {
        ret = MALFORMED("the attestation format is not a short printable name");
        goto exit;
    }
    const uint8_t *auth_data = cbor_bytestring_handle(auth);
    size_t auth_data_len = cbor_bytestring_length(auth);
    if ((ret = parse_auth_data(auth_data, auth_data_len, true, &ad, why)) != 0 || (ret = check_auth_data(policy, &ad, why)) != 0)
        goto exit;

    /* the credential key (section 7.1 step 19: its alg must be one the RP asked for) */
    if ((ret = parse_cose(ad.cose, ad.cose_len, &cred.alg, &cred.pkey, why)) != 0)
        goto exit;
    if (!alg_allowed(policy, cred.alg)) {
        ret = FAIL("alg", "COSE algorithm %d is not accepted", cred.alg);
        goto exit;
    }

    /* the attestation statement (steps 21-24) */
    snprintf(cred.fmt, sizeof(cred.fmt), "%.*s", (int)cbor_string_length(fmt), (const char *)cbor_string_handle(fmt));
    if (strcmp(cred.fmt, "none") == 0) {
        if (cbor_map_size(stmt) != 0) {
            ret = MALFORMED("a \"none\" attestation has a non-empty attStmt");
            goto exit;
        }
        cred.attestation = UPD_WEBAUTHN_ATTESTATION_NONE;
    } else if (strcmp(cred.fmt, "packed") == 0) {
        if ((ret = verify_packed(policy, stmt, auth_data, auth_data_len, cdh, &ad, &cred, &cred.attestation, why)) != 0)
            goto exit;
    } else {
        ret = FAIL("attestation", "attestation format %s is not accepted", cred.fmt);
        goto exit;
    }

    if ((cred.public_key = malloc(ad.cose_len)) == NULL) {
        ret = NOMEM();
        goto exit;
    }
    memcpy(cred.public_key, ad.cose, ad.cose_len);
    cred.public_key_len = ad.cose_len;
    memcpy(cred.id, ad.cred_id, ad.cred_id_len);
    cred.id_len = ad.cred_id_len;
    memcpy(cred.aaguid, ad.aaguid, sizeof(cred.aaguid));
    cred.sign_count = ad.sign_count;
    cred.flags = ad.flags;
    *out = cred;
    memset(&cred, 0, sizeof(cred));
    ret = 0;
exit:
    if (obj != NULL)
        cbor_decref(&obj);
    upd_webauthn_credential_dispose(&cred);
    return ret;
}

int
upd_webauthn_assert(const upd_webauthn_policy_t *policy, const uint8_t *challenge, size_t challenge_len,
                    const upd_webauthn_credential_t *stored, const uint8_t *client_data_json, size_t client_data_len,
                    const uint8_t *authenticator_data, size_t auth_data_len, const uint8_t *signature, size_t signature_len,
                    upd_webauthn_assertion_t *out, upd_reason_t *why)
{
    auth_data_t ad;
    uint8_t cdh[32];
    int ret;

    if ((ret = check_policy(policy, challenge_len, client_data_len, why)) != 0)
        return ret;
    if (stored == NULL || stored->pkey == NULL)
        return upd_reason_set(why, UPD_EINVAL, "policy", "no stored credential key to verify the assertion with");
    if (signature_len > UPD_WEBAUTHN_SIGNATURE_MAX)
        return upd_reason_set(why, UPD_ETOOBIG, "too_big", "the signature is above %d bytes", UPD_WEBAUTHN_SIGNATURE_MAX);
    if ((ret = check_client_data(policy, "webauthn.get", challenge, challenge_len, client_data_json, client_data_len, why)) != 0)
        return ret;
    if ((ret = parse_auth_data(authenticator_data, auth_data_len, false, &ad, why)) != 0 ||
        (ret = check_auth_data(policy, &ad, why)) != 0)
        return ret;
    /* section 7.2 step 18: backup eligibility is fixed when the credential is created */
    if ((ad.flags & UPD_WEBAUTHN_FLAG_BE) != (stored->flags & UPD_WEBAUTHN_FLAG_BE))
        return FAIL("be_bs", "the credential's backup eligibility changed since it was registered");
    if (EVP_Digest(client_data_json, client_data_len, cdh, NULL, EVP_sha256(), NULL) != 1)
        return NOMEM();
    ret = verify_sig(stored->pkey, stored->alg, authenticator_data, auth_data_len, cdh, signature, signature_len);
    if (ret < 0)
        return NOMEM();
    if (ret == 0)
        return FAIL("signature", "the assertion signature does not verify with the credential's key");
    /* step 22: a count that does not move forward may mean a cloned authenticator; the approval service never accepts it */
    if ((ad.sign_count != 0 || stored->sign_count != 0) && ad.sign_count <= stored->sign_count)
        return FAIL("sign_count", "the sign count %u is not above the stored %u: the authenticator may be cloned",
                    (unsigned)ad.sign_count, (unsigned)stored->sign_count);
    out->sign_count = ad.sign_count;
    out->flags = ad.flags;
    return 0;
}

int
upd_webauthn_credential_load(upd_webauthn_credential_t *out, const uint8_t *id, size_t id_len, const uint8_t *cose_key,
                             size_t cose_key_len, uint32_t sign_count, uint8_t flags, upd_reason_t *why)
{
    upd_webauthn_credential_t cred = {0};
    int ret;

    memset(out, 0, sizeof(*out));
    if (id_len == 0 || id_len > UPD_WEBAUTHN_CREDENTIAL_ID_MAX)
        return upd_reason_set(why, UPD_EINVAL, "credential_id", "a credential id of %zu bytes is outside 1 to %d", id_len,
                              UPD_WEBAUTHN_CREDENTIAL_ID_MAX);
    if (cose_key_len > UPD_WEBAUTHN_PUBLIC_KEY_MAX)
        return upd_reason_set(why, UPD_ETOOBIG, "too_big", "the credential public key is above %d bytes",
                              UPD_WEBAUTHN_PUBLIC_KEY_MAX);
    if ((ret = parse_cose(cose_key, cose_key_len, &cred.alg, &cred.pkey, why)) != 0)
        goto exit;
    if ((cred.public_key = malloc(cose_key_len)) == NULL) {
        ret = NOMEM();
        goto exit;
    }
    memcpy(cred.public_key, cose_key, cose_key_len);
    cred.public_key_len = cose_key_len;
    memcpy(cred.id, id, id_len);
    cred.id_len = id_len;
    cred.sign_count = sign_count;
    cred.flags = flags;
    *out = cred;
    memset(&cred, 0, sizeof(cred));
exit:
    upd_webauthn_credential_dispose(&cred);
    return ret;
}

void
upd_webauthn_credential_dispose(upd_webauthn_credential_t *cred)
{
    free(cred->public_key);
    EVP_PKEY_free(cred->pkey);
    memset(cred, 0, sizeof(*cred));
}

int
upd_webauthn_trust_from_pem(const char *pem, size_t len, X509_STORE **out, upd_reason_t *why)
{
    BIO *bio = len <= INT32_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
    X509_STORE *store = X509_STORE_new();
    X509 *cert = NULL;
    size_t count = 0;
    int ret;

    *out = NULL;
    ERR_clear_error(); /* the end of the text is told by the error the last read leaves */
    if (bio == NULL || store == NULL) {
        ret = NOMEM();
        goto exit;
    }
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, cert) != 1) {
            ret = upd_reason_set(why, UPD_EINVAL, "policy", "trust anchor %zu could not be added (a duplicate?)", count + 1);
            goto exit;
        }
        X509_free(cert);
        cert = NULL;
        count++;
    }
    /* the loop ends at the end of the text (PEM_R_NO_START_LINE) or at something that is not a certificate */
    unsigned long err = ERR_peek_last_error();
    if (count == 0 || (err != 0 && ERR_GET_REASON(err) != PEM_R_NO_START_LINE)) {
        ret = upd_reason_set(why, UPD_EINVAL, "policy", "the trust anchors are not PEM certificates");
        goto exit;
    }
    *out = store;
    store = NULL;
    ret = 0;
exit:
    ERR_clear_error();
    X509_free(cert);
    X509_STORE_free(store);
    BIO_free(bio);
    return ret;
}
