#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cbor.h>
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/hex.h"
#include "domain/webauthn.h"

/*
 * Two groups. "webauthn" states the verifier's behaviours on ceremonies built here, signed with keys made here
 * (OpenSSL), encoded with libcbor and jansson. "webauthn vectors" runs every file of the W3C test vectors (in
 * $UPDRAFT_VECTORS_DIR/webauthn; README.md there explains the fields), one test per ceremony and policy:
 *
 *   valid case     register/CASE and assert/CASE under the case's rp_policy, and both again under userVerification
 *                  "required" (".../uv-required"), valid exactly when valid_if_uv_required says so. Registration of
 *                  tpm, android-key, apple and fido-u2f is refused as an unaccepted format; their assertion is checked
 *                  with the credential key from the case's `extracted` data.
 *   derived case   assert/CASE under its rp_policy, refused with exactly first_failing_check; and under each other
 *                  policy of expected_by_policy (".../uv-preferred").
 */

#define EXPECTED_VALID 15
#define EXPECTED_DERIVED 12
#define RP_ID "example.org"
#define ORIGIN "https://example.org"

static const char *const origins[] = {ORIGIN};
static X509_STORE *vector_anchors; /* attestation-root-cert.json, loaded through upd_webauthn_trust_from_pem() */

/* ---- helpers ---------------------------------------------------------------------------------------------------- */

static uint8_t *
unhex(const char *hex, size_t *len)
{
    assert_non_null(hex);
    size_t n = strlen(hex);
    assert_int_equal(n % 2, 0);
    uint8_t *out = malloc(n / 2 + 1);
    assert_non_null(out);
    assert_true(upd_hex_decode(hex, n / 2, out));
    *len = n / 2;
    return out;
}

static void
b64url(const uint8_t *in, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

static upd_webauthn_policy_t
default_policy(void)
{
    return (upd_webauthn_policy_t){.rp_id = RP_ID, .origins = origins, .num_origins = 1};
}

/* A credential key made here, with its COSE_Key. */
struct key {
    EVP_PKEY *pkey;
    int alg;
    uint8_t *cose;
    size_t cose_len;
};

static void
cose_add(cbor_item_t *map, int64_t k, cbor_item_t *v)
{
    cbor_item_t *key = k >= 0 ? cbor_build_uint8((uint8_t)k) : cbor_build_negint8((uint8_t)(-1 - k));
    assert_true(cbor_map_add(map, (struct cbor_pair){cbor_move(key), cbor_move(v)}));
}

static uint8_t *
serialize(cbor_item_t *item, size_t *len)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    *len = cbor_serialize_alloc(item, &buf, &cap);
    assert_true(*len > 0);
    cbor_decref(&item);
    return buf;
}

static struct key
make_key(int alg)
{
    struct key k = {.alg = alg};
    cbor_item_t *map = cbor_new_definite_map(5);
    uint8_t pub[133];
    size_t len = 0;
    if (alg == UPD_WEBAUTHN_ALG_ES256) {
        k.pkey = EVP_EC_gen("P-256");
        assert_non_null(k.pkey);
        assert_int_equal(EVP_PKEY_get_octet_string_param(k.pkey, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &len), 1);
        assert_int_equal(len, 65);
        cose_add(map, 1, cbor_build_uint8(2));
        cose_add(map, 3, cbor_build_negint8(6));
        cose_add(map, -1, cbor_build_uint8(1));
        cose_add(map, -2, cbor_build_bytestring(pub + 1, 32));
        cose_add(map, -3, cbor_build_bytestring(pub + 33, 32));
    } else {
        assert_int_equal(alg, UPD_WEBAUTHN_ALG_EDDSA);
        k.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_non_null(k.pkey);
        assert_int_equal(EVP_PKEY_get_octet_string_param(k.pkey, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &len), 1);
        cose_add(map, 1, cbor_build_uint8(1));
        cose_add(map, 3, cbor_build_negint8(7));
        cose_add(map, -1, cbor_build_uint8(6));
        cose_add(map, -2, cbor_build_bytestring(pub, len));
    }
    k.cose = serialize(map, &k.cose_len);
    return k;
}

static void
free_key(struct key *k)
{
    EVP_PKEY_free(k->pkey);
    free(k->cose);
}

static const uint8_t challenge[32] = "0123456789abcdef0123456789abcde";

/* clientDataJSON as a browser writes it, through jansson; extra members (crossOrigin, topOrigin...) from `extra` */
static char *
client_data(const char *type, const uint8_t *chal, size_t chal_len, const char *origin, json_t *extra)
{
    char b64[128];
    b64url(chal, chal_len, b64);
    json_t *c = json_pack("{s:s, s:s, s:s}", "type", type, "challenge", b64, "origin", origin);
    assert_non_null(c);
    if (extra != NULL) {
        assert_int_equal(json_object_update(c, extra), 0);
        json_decref(extra);
    }
    char *s = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(c);
    return s;
}

/* rpIdHash || flags || signCount, then `tail` (attested credential data, extensions) */
static size_t
auth_data(uint8_t *out, uint8_t flags, uint32_t count, const uint8_t *tail, size_t tail_len)
{
    assert_int_equal(EVP_Digest(RP_ID, strlen(RP_ID), out, NULL, EVP_sha256(), NULL), 1);
    out[32] = flags;
    out[33] = (uint8_t)(count >> 24);
    out[34] = (uint8_t)(count >> 16);
    out[35] = (uint8_t)(count >> 8);
    out[36] = (uint8_t)count;
    if (tail_len > 0)
        memcpy(out + 37, tail, tail_len);
    return 37 + tail_len;
}

/* signs authData || SHA-256(clientDataJSON) as an authenticator does */
static size_t
sign(const struct key *k, const uint8_t *ad, size_t ad_len, const char *cdj, uint8_t *sig, size_t cap)
{
    uint8_t msg[4096];
    assert_true(ad_len + 32 <= sizeof(msg));
    memcpy(msg, ad, ad_len);
    assert_int_equal(EVP_Digest(cdj, strlen(cdj), msg + ad_len, NULL, EVP_sha256(), NULL), 1);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = cap;
    assert_int_equal(
        EVP_DigestSignInit_ex(ctx, NULL, k->alg == UPD_WEBAUTHN_ALG_ES256 ? "SHA256" : NULL, NULL, NULL, k->pkey, NULL), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &len, msg, ad_len + 32), 1);
    EVP_MD_CTX_free(ctx);
    return len;
}

static void
load_cred(const struct key *k, uint32_t count, uint8_t flags, upd_webauthn_credential_t *cred)
{
    static const uint8_t id[16] = "credential-id-01";
    upd_reason_t why;
    assert_int_equal(upd_webauthn_credential_load(cred, id, sizeof(id), k->cose, k->cose_len, count, flags, &why), 0);
}

/* Builds and verifies one assertion; returns the result and the reason. */
static int
try_assert(const upd_webauthn_policy_t *p, const struct key *k, const upd_webauthn_credential_t *cred, const char *cdj,
           uint8_t flags, uint32_t count, upd_webauthn_assertion_t *out, upd_reason_t *why)
{
    uint8_t ad[64], sig[256];
    size_t ad_len = auth_data(ad, flags, count, NULL, 0);
    size_t sig_len = sign(k, ad, ad_len, cdj, sig, sizeof(sig));
    memset(why, 0, sizeof(*why));
    return upd_webauthn_assert(p, challenge, sizeof(challenge), cred, (const uint8_t *)cdj, strlen(cdj), ad, ad_len, sig, sig_len,
                               out, why);
}

#define assert_refused(call_, err_, code_)                                                                                         \
    do {                                                                                                                           \
        upd_reason_t *why_ = &why;                                                                                                 \
        memset(why_, 0, sizeof(*why_));                                                                                            \
        int ret_ = (call_);                                                                                                        \
        if (ret_ != (err_) || strcmp(why_->code, (code_)) != 0)                                                                    \
            fail_msg("%s: got %d \"%s\" (%s), expected %d \"%s\"", #call_, ret_, why_->code, why_->message, (err_), (code_));      \
    } while (0)

/* ---- assertions ------------------------------------------------------------------------------------------------- */

#define UP UPD_WEBAUTHN_FLAG_UP
#define UV UPD_WEBAUTHN_FLAG_UV
#define BE UPD_WEBAUTHN_FLAG_BE
#define BS UPD_WEBAUTHN_FLAG_BS

static void
test_a_policy_left_at_its_defaults_requires_user_verification(void **state)
{
    struct key k = make_key(UPD_WEBAUTHN_ALG_ES256);
    upd_webauthn_credential_t cred;
    upd_webauthn_assertion_t out = {0};
    upd_reason_t why;
    upd_webauthn_policy_t p = default_policy();
    char *cdj = client_data("webauthn.get", challenge, sizeof(challenge), ORIGIN, NULL);

    load_cred(&k, 0, UP | UV, &cred);
    assert_refused(try_assert(&p, &k, &cred, cdj, UP, 0, &out, &why), UPD_EAUTH, "uv");
    assert_int_equal(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), 0);
    assert_int_equal(out.flags, UP | UV);
    p.user_verification = UPD_WEBAUTHN_UV_PREFERRED;
    assert_int_equal(try_assert(&p, &k, &cred, cdj, UP, 0, &out, &why), 0);
    /* user presence is never optional */
    assert_refused(try_assert(&p, &k, &cred, cdj, UV, 0, &out, &why), UPD_EAUTH, "up");
    free(cdj);
    upd_webauthn_credential_dispose(&cred);
    free_key(&k);
}

static void
test_a_sign_count_that_does_not_increase_is_refused(void **state)
{
    struct key k = make_key(UPD_WEBAUTHN_ALG_EDDSA);
    upd_webauthn_credential_t cred;
    upd_webauthn_assertion_t out = {0};
    upd_reason_t why;
    upd_webauthn_policy_t p = default_policy();
    char *cdj = client_data("webauthn.get", challenge, sizeof(challenge), ORIGIN, NULL);

    load_cred(&k, 5, UP | UV, &cred);
    assert_int_equal(try_assert(&p, &k, &cred, cdj, UP | UV, 6, &out, &why), 0);
    assert_int_equal(out.sign_count, 6);
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 5, &out, &why), UPD_EAUTH, "sign_count");
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 4, &out, &why), UPD_EAUTH, "sign_count");
    /* an authenticator that stops counting after counting is refused too */
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), UPD_EAUTH, "sign_count");
    upd_webauthn_credential_dispose(&cred);
    /* both zero: an authenticator without a counter */
    load_cred(&k, 0, UP | UV, &cred);
    assert_int_equal(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), 0);
    assert_int_equal(try_assert(&p, &k, &cred, cdj, UP | UV, 1, &out, &why), 0);
    assert_int_equal(out.sign_count, 1);
    free(cdj);
    upd_webauthn_credential_dispose(&cred);
    free_key(&k);
}

static void
test_backup_eligibility_is_fixed_and_backup_state_needs_it(void **state)
{
    struct key k = make_key(UPD_WEBAUTHN_ALG_ES256);
    upd_webauthn_credential_t cred;
    upd_webauthn_assertion_t out = {0};
    upd_reason_t why;
    upd_webauthn_policy_t p = default_policy();
    char *cdj = client_data("webauthn.get", challenge, sizeof(challenge), ORIGIN, NULL);

    load_cred(&k, 0, UP | UV | BE, &cred);
    assert_int_equal(try_assert(&p, &k, &cred, cdj, UP | UV | BE | BS, 0, &out, &why), 0);
    assert_int_equal(out.flags & BS, BS); /* backup state may change: the caller stores it */
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), UPD_EAUTH, "be_bs");
    upd_webauthn_credential_dispose(&cred);
    load_cred(&k, 0, UP | UV, &cred);
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV | BS, 0, &out, &why), UPD_EAUTH, "be_bs");
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV | BE, 0, &out, &why), UPD_EAUTH, "be_bs");
    free(cdj);
    upd_webauthn_credential_dispose(&cred);
    free_key(&k);
}

static void
test_client_data_is_checked_in_the_order_of_the_spec(void **state)
{
    struct key k = make_key(UPD_WEBAUTHN_ALG_ES256);
    upd_webauthn_credential_t cred;
    upd_webauthn_assertion_t out = {0};
    upd_reason_t why;
    upd_webauthn_policy_t p = default_policy();
    static const char *const tops[] = {"https://portal.example.com"};
    char *cdj;

    load_cred(&k, 0, UP | UV, &cred);
    /* a wrong type and a wrong challenge: the type is named */
    cdj = client_data("webauthn.create", (const uint8_t *)"another challenge, 32 bytes long", 32, ORIGIN, NULL);
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), UPD_EAUTH, "type");
    free(cdj);
    cdj = client_data("webauthn.get", (const uint8_t *)"another challenge, 32 bytes long", 32, "https://evil.example", NULL);
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), UPD_EAUTH, "challenge");
    assert_null(strstr(why.message, "another")); /* a reason never quotes a challenge */
    free(cdj);
    cdj = client_data("webauthn.get", challenge, sizeof(challenge), "https://example.org:8443", NULL);
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), UPD_EAUTH, "origin");
    assert_non_null(strstr(why.message, "https://example.org:8443"));
    free(cdj);
    /* a prefix of the challenge is another challenge */
    cdj = client_data("webauthn.get", challenge, 31, ORIGIN, NULL);
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), UPD_EAUTH, "challenge");
    free(cdj);

    cdj = client_data("webauthn.get", challenge, sizeof(challenge), ORIGIN, json_pack("{s:b}", "crossOrigin", 1));
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), UPD_EAUTH, "cross_origin");
    p.accept_cross_origin = true;
    assert_int_equal(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), 0);
    free(cdj);
    cdj = client_data("webauthn.get", challenge, sizeof(challenge), ORIGIN,
                      json_pack("{s:b, s:s}", "crossOrigin", 1, "topOrigin", "https://portal.example.com"));
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), UPD_EAUTH, "top_origin");
    p.top_origins = tops;
    p.num_top_origins = 1;
    assert_int_equal(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), 0);
    p.accept_cross_origin = false;
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), UPD_EAUTH, "cross_origin");
    free(cdj);
    /* a control character in an origin does not reach the reason (and so the log) */
    cdj = client_data("webauthn.get", challenge, sizeof(challenge), "https://a\nb", NULL);
    assert_refused(try_assert(&p, &k, &cred, cdj, UP | UV, 0, &out, &why), UPD_EAUTH, "origin");
    assert_null(strchr(why.message, '\n'));
    free(cdj);
    upd_webauthn_credential_dispose(&cred);
    free_key(&k);
}

static void
test_malformed_client_data_is_refused(void **state)
{
    struct key k = make_key(UPD_WEBAUTHN_ALG_ES256);
    upd_webauthn_credential_t cred;
    upd_webauthn_assertion_t out = {0};
    upd_reason_t why;
    upd_webauthn_policy_t p = default_policy();
    char b64[64], buf[512];
    static const char *const bad[] = {
        "",
        "[]",
        "\"webauthn.get\"",
        "{\"type\":\"webauthn.get\"",
        "{\"type\":\"webauthn.get\",\"type\":\"webauthn.get\",\"challenge\":\"%s\",\"origin\":\"" ORIGIN "\"}",
        "{\"type\":\"webauthn.get\",\"origin\":\"" ORIGIN "\"}",
        "{\"type\":1,\"challenge\":\"%s\",\"origin\":\"" ORIGIN "\"}",
        "{\"type\":\"webauthn.get\",\"challenge\":\"%s\",\"origin\":\"" ORIGIN "\",\"crossOrigin\":\"false\"}",
        "{\"type\":\"webauthn.get\",\"challenge\":\"%s\",\"origin\":\"" ORIGIN "\",\"topOrigin\":null}",
        "{\"type\":\"webauthn.get\",\"challenge\":\"%s\",\"origin\":\"" ORIGIN "\"} trailing",
    };

    b64url(challenge, sizeof(challenge), b64);
    load_cred(&k, 0, UP | UV, &cred);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf), bad[i], b64);
        assert_refused(try_assert(&p, &k, &cred, buf, UP | UV, 0, &out, &why), UPD_EINVAL, "malformed");
    }
    /* members the spec may add later are ignored */
    snprintf(buf, sizeof(buf), "{\"type\":\"webauthn.get\",\"challenge\":\"%s\",\"origin\":\"" ORIGIN "\",\"other\":[1,{}]}", b64);
    assert_int_equal(try_assert(&p, &k, &cred, buf, UP | UV, 0, &out, &why), 0);
    upd_webauthn_credential_dispose(&cred);
    free_key(&k);
}

static void
test_malformed_authenticator_data_is_refused(void **state)
{
    struct key k = make_key(UPD_WEBAUTHN_ALG_ES256);
    upd_webauthn_credential_t cred;
    upd_webauthn_assertion_t out = {0};
    upd_reason_t why;
    upd_webauthn_policy_t p = default_policy();
    char *cdj = client_data("webauthn.get", challenge, sizeof(challenge), ORIGIN, NULL);
    uint8_t ad[128], sig[128];
    size_t ad_len, sig_len;
    static const uint8_t ext_map[] = {0xa1, 0x6b, 'c', 'r', 'e', 'd', 'P', 'r', 'o', 't', 'e', 'c', 't', 0x02};
    upd_reason_t *why_ = &why; /* for the calls outside assert_refused */

    load_cred(&k, 0, UP | UV, &cred);
#define ASSERT_WITH(flags, tail, tail_len)                                                                                         \
    (ad_len = auth_data(ad, (flags), 0, (tail), (tail_len)), sig_len = sign(&k, ad, ad_len, cdj, sig, sizeof(sig)),                \
     upd_webauthn_assert(&p, challenge, sizeof(challenge), &cred, (const uint8_t *)cdj, strlen(cdj), ad, ad_len, sig, sig_len,     \
                         &out, why_))
    /* extensions: one CBOR map ending the data */
    assert_int_equal(ASSERT_WITH(UP | UV | UPD_WEBAUTHN_FLAG_ED, ext_map, sizeof(ext_map)), 0);
    assert_refused(ASSERT_WITH(UP | UV | UPD_WEBAUTHN_FLAG_ED, NULL, 0), UPD_EINVAL, "malformed");
    assert_refused(ASSERT_WITH(UP | UV | UPD_WEBAUTHN_FLAG_ED, ext_map, sizeof(ext_map) - 1), UPD_EINVAL, "malformed");
    assert_refused(ASSERT_WITH(UP | UV | UPD_WEBAUTHN_FLAG_ED, (const uint8_t *)"\x81\x01", 2), UPD_EINVAL, "malformed");
    /* bytes after the end, attested data in an assertion */
    assert_refused(ASSERT_WITH(UP | UV, ext_map, sizeof(ext_map)), UPD_EINVAL, "malformed");
    assert_refused(ASSERT_WITH(UP | UV | UPD_WEBAUTHN_FLAG_AT, ext_map, sizeof(ext_map)), UPD_EINVAL, "malformed");
#undef ASSERT_WITH
    /* shorter than rpIdHash, flags and signCount */
    ad_len = auth_data(ad, UP | UV, 0, NULL, 0);
    assert_refused(upd_webauthn_assert(&p, challenge, sizeof(challenge), &cred, (const uint8_t *)cdj, strlen(cdj), ad, 36, sig,
                                       sig_len, &out, why_),
                   UPD_EINVAL, "malformed");
    /* a signature of another message, an empty one, a wrong rpIdHash */
    assert_refused(upd_webauthn_assert(&p, challenge, sizeof(challenge), &cred, (const uint8_t *)cdj, strlen(cdj), ad, ad_len, sig,
                                       0, &out, why_),
                   UPD_EAUTH, "signature");
    p.rp_id = "example.com";
    assert_refused(upd_webauthn_assert(&p, challenge, sizeof(challenge), &cred, (const uint8_t *)cdj, strlen(cdj), ad, ad_len, sig,
                                       sig_len, &out, why_),
                   UPD_EAUTH, "rp_id_hash");
    free(cdj);
    upd_webauthn_credential_dispose(&cred);
    free_key(&k);
}

static void
test_oversized_inputs_and_unusable_policies_are_refused(void **state)
{
    struct key k = make_key(UPD_WEBAUTHN_ALG_ES256);
    upd_webauthn_credential_t cred, reg;
    upd_webauthn_assertion_t out = {0};
    upd_reason_t why;
    upd_webauthn_policy_t p = default_policy();
    char *big = malloc(UPD_WEBAUTHN_ATTESTATION_MAX + 2);
    uint8_t ad[64], sig[UPD_WEBAUTHN_SIGNATURE_MAX + 1] = {0};
    size_t ad_len = auth_data(ad, UP | UV, 0, NULL, 0);

    assert_non_null(big);
    memset(big, ' ', UPD_WEBAUTHN_CLIENT_DATA_MAX + 1);
    big[UPD_WEBAUTHN_CLIENT_DATA_MAX + 1] = '\0';
    load_cred(&k, 0, UP | UV, &cred);
    assert_refused(upd_webauthn_assert(&p, challenge, sizeof(challenge), &cred, (const uint8_t *)big, strlen(big), ad, ad_len, sig,
                                       64, &out, why_),
                   UPD_ETOOBIG, "too_big");
    assert_refused(upd_webauthn_assert(&p, challenge, sizeof(challenge), &cred, (const uint8_t *)"{}", 2, ad, ad_len, sig,
                                       sizeof(sig), &out, why_),
                   UPD_ETOOBIG, "too_big");
    assert_refused(upd_webauthn_register(&p, challenge, sizeof(challenge), (const uint8_t *)"{}", 2, (const uint8_t *)big,
                                         UPD_WEBAUTHN_ATTESTATION_MAX + 1, &reg, why_),
                   UPD_ETOOBIG, "too_big");
    /* the caller's mistakes */
    assert_refused(upd_webauthn_assert(&p, challenge, UPD_WEBAUTHN_CHALLENGE_MIN - 1, &cred, (const uint8_t *)"{}", 2, ad, ad_len,
                                       sig, 64, &out, why_),
                   UPD_EINVAL, "policy");
    p.num_origins = 0;
    assert_refused(
        upd_webauthn_assert(&p, challenge, sizeof(challenge), &cred, (const uint8_t *)"{}", 2, ad, ad_len, sig, 64, &out, why_),
        UPD_EINVAL, "policy");
    p = default_policy();
    p.rp_id = "";
    assert_refused(upd_webauthn_register(&p, challenge, sizeof(challenge), (const uint8_t *)"{}", 2, ad, ad_len, &reg, why_),
                   UPD_EINVAL, "policy");
    free(big);
    upd_webauthn_credential_dispose(&cred);
    free_key(&k);
}

/* ---- registrations ---------------------------------------------------------------------------------------------- */

/* attestationObject {"fmt": fmt, "attStmt": stmt (NULL: {}), "authData": authData with k's attested credential data} */
static uint8_t *
attestation(const char *fmt, cbor_item_t *stmt, uint8_t flags, const uint8_t *cose, size_t cose_len, size_t id_len, size_t *len)
{
    static uint8_t ad[4096];
    uint8_t tail[4096] = {0};
    size_t n = 0;
    assert_true(18 + id_len + cose_len <= sizeof(tail));
    memcpy(tail, "AAGUID-0123456789", 16);
    tail[16] = (uint8_t)(id_len >> 8);
    tail[17] = (uint8_t)id_len;
    memset(tail + 18, 0xc1, id_len);
    n = 18 + id_len;
    memcpy(tail + n, cose, cose_len);
    n += cose_len;
    size_t ad_len = auth_data(ad, flags | UPD_WEBAUTHN_FLAG_AT, 0, tail, n);
    cbor_item_t *obj = cbor_new_definite_map(3);
    assert_true(cbor_map_add(obj, (struct cbor_pair){cbor_move(cbor_build_string("fmt")), cbor_move(cbor_build_string(fmt))}));
    assert_true(cbor_map_add(obj, (struct cbor_pair){cbor_move(cbor_build_string("attStmt")),
                                                     cbor_move(stmt != NULL ? stmt : cbor_new_definite_map(0))}));
    assert_true(cbor_map_add(
        obj, (struct cbor_pair){cbor_move(cbor_build_string("authData")), cbor_move(cbor_build_bytestring(ad, ad_len))}));
    return serialize(obj, len);
}

static int
try_register(const upd_webauthn_policy_t *p, const uint8_t *att, size_t att_len, upd_webauthn_credential_t *cred, upd_reason_t *why)
{
    char *cdj = client_data("webauthn.create", challenge, sizeof(challenge), ORIGIN, NULL);
    memset(why, 0, sizeof(*why));
    int ret = upd_webauthn_register(p, challenge, sizeof(challenge), (const uint8_t *)cdj, strlen(cdj), att, att_len, cred, why);
    free(cdj);
    return ret;
}

static void
test_registration_accepts_none_and_refuses_other_formats_by_name(void **state)
{
    struct key k = make_key(UPD_WEBAUTHN_ALG_ES256);
    upd_webauthn_credential_t cred;
    upd_reason_t why;
    upd_webauthn_policy_t p = default_policy();
    size_t len;
    uint8_t *att = attestation("none", NULL, UP | UV | BE, k.cose, k.cose_len, 16, &len);

    assert_int_equal(try_register(&p, att, len, &cred, &why), 0);
    assert_string_equal(cred.fmt, "none");
    assert_int_equal(cred.attestation, UPD_WEBAUTHN_ATTESTATION_NONE);
    assert_int_equal(cred.alg, UPD_WEBAUTHN_ALG_ES256);
    assert_int_equal(cred.id_len, 16);
    assert_int_equal(cred.flags, UP | UV | BE | UPD_WEBAUTHN_FLAG_AT);
    assert_memory_equal(cred.public_key, k.cose, k.cose_len);
    assert_memory_equal(cred.aaguid, "AAGUID-012345678", 16);
    upd_webauthn_credential_dispose(&cred);
    free(att);

    static const char *const others[] = {"tpm", "android-key", "android-safetynet", "fido-u2f", "apple", "compound", "Packed"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        char want[96];
        att = attestation(others[i], NULL, UP | UV, k.cose, k.cose_len, 16, &len);
        assert_refused(try_register(&p, att, len, &cred, why_), UPD_EAUTH, "attestation");
        snprintf(want, sizeof(want), "attestation format %s is not accepted", others[i]);
        assert_string_equal(why.message, want);
        assert_null(cred.pkey);
        free(att);
    }
    /* "none" with a statement */
    cbor_item_t *stmt = cbor_new_definite_map(1);
    assert_true(
        cbor_map_add(stmt, (struct cbor_pair){cbor_move(cbor_build_string("sig")), cbor_move(cbor_build_bytestring(k.cose, 4))}));
    att = attestation("none", stmt, UP | UV, k.cose, k.cose_len, 16, &len);
    assert_refused(try_register(&p, att, len, &cred, why_), UPD_EINVAL, "malformed");
    free(att);
    /* a format name that is not a short printable name */
    att = attestation("a\nb", NULL, UP | UV, k.cose, k.cose_len, 16, &len);
    assert_refused(try_register(&p, att, len, &cred, why_), UPD_EINVAL, "malformed");
    free(att);
    free_key(&k);
}

static void
test_registration_checks_the_credential_key_and_id(void **state)
{
    struct key k = make_key(UPD_WEBAUTHN_ALG_ES256), ed = make_key(UPD_WEBAUTHN_ALG_EDDSA);
    upd_webauthn_credential_t cred;
    upd_reason_t why;
    upd_webauthn_policy_t p = default_policy();
    static const int only_ed[] = {UPD_WEBAUTHN_ALG_EDDSA};
    size_t len;
    uint8_t *att;

    p.algs = only_ed;
    p.num_algs = 1;
    att = attestation("none", NULL, UP | UV, k.cose, k.cose_len, 16, &len);
    assert_refused(try_register(&p, att, len, &cred, why_), UPD_EAUTH, "alg");
    free(att);
    att = attestation("none", NULL, UP | UV, ed.cose, ed.cose_len, 16, &len);
    assert_int_equal(try_register(&p, att, len, &cred, &why), 0);
    assert_int_equal(cred.alg, UPD_WEBAUTHN_ALG_EDDSA);
    upd_webauthn_credential_dispose(&cred);
    free(att);
    p = default_policy();

    /* the longest credential id passes, one byte more does not */
    att = attestation("none", NULL, UP | UV, k.cose, k.cose_len, UPD_WEBAUTHN_CREDENTIAL_ID_MAX, &len);
    assert_int_equal(try_register(&p, att, len, &cred, &why), 0);
    assert_int_equal(cred.id_len, UPD_WEBAUTHN_CREDENTIAL_ID_MAX);
    upd_webauthn_credential_dispose(&cred);
    free(att);
    att = attestation("none", NULL, UP | UV, k.cose, k.cose_len, UPD_WEBAUTHN_CREDENTIAL_ID_MAX + 1, &len);
    assert_refused(try_register(&p, att, len, &cred, why_), UPD_EINVAL, "credential_id");
    free(att);

    /* a point off the curve: y changed */
    uint8_t bad[256];
    memcpy(bad, k.cose, k.cose_len);
    bad[k.cose_len - 1] ^= 0x01;
    att = attestation("none", NULL, UP | UV, bad, k.cose_len, 16, &len);
    assert_refused(try_register(&p, att, len, &cred, why_), UPD_EAUTH, "public_key");
    free(att);
    /* an algorithm the verifier does not know: RS1 (-65535) */
    cbor_item_t *map = cbor_new_definite_map(2);
    cose_add(map, 1, cbor_build_uint8(3));
    assert_true(cbor_map_add(map, (struct cbor_pair){cbor_move(cbor_build_uint8(3)), cbor_move(cbor_build_negint16(65534))}));
    size_t cose_len;
    uint8_t *cose = serialize(map, &cose_len);
    att = attestation("none", NULL, UP | UV, cose, cose_len, 16, &len);
    assert_refused(try_register(&p, att, len, &cred, why_), UPD_EAUTH, "alg");
    free(att);
    free(cose);
    /* ES256 with an Ed25519 key's parameters */
    map = cbor_new_definite_map(4);
    cose_add(map, 1, cbor_build_uint8(1));
    cose_add(map, 3, cbor_build_negint8(6));
    cose_add(map, -1, cbor_build_uint8(6));
    cose_add(map, -2, cbor_build_bytestring(k.cose, 32));
    cose = serialize(map, &cose_len);
    att = attestation("none", NULL, UP | UV, cose, cose_len, 16, &len);
    assert_refused(try_register(&p, att, len, &cred, why_), UPD_EAUTH, "public_key");
    free(att);
    free(cose);
    /* a short RSA key */
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    BIGNUM *n = NULL, *e = NULL;
    uint8_t nb[128], eb[8];
    assert_non_null(rsa);
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    map = cbor_new_definite_map(4);
    cose_add(map, 1, cbor_build_uint8(3));
    assert_true(cbor_map_add(map, (struct cbor_pair){cbor_move(cbor_build_uint8(3)), cbor_move(cbor_build_negint16(256))}));
    cose_add(map, -1, cbor_build_bytestring(nb, (size_t)BN_bn2bin(n, nb)));
    cose_add(map, -2, cbor_build_bytestring(eb, (size_t)BN_bn2bin(e, eb)));
    cose = serialize(map, &cose_len);
    att = attestation("none", NULL, UP | UV, cose, cose_len, 16, &len);
    assert_refused(try_register(&p, att, len, &cred, why_), UPD_EAUTH, "public_key");
    assert_non_null(strstr(why.message, "1024 bits"));
    free(att);
    free(cose);
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(rsa);
    free_key(&k);
    free_key(&ed);
}

static void
test_registration_refuses_cbor_outside_what_webauthn_sends(void **state)
{
    struct key k = make_key(UPD_WEBAUTHN_ALG_ES256);
    upd_webauthn_credential_t cred;
    upd_reason_t why;
    upd_webauthn_policy_t p = default_policy();
    size_t len;
    uint8_t *att = attestation("none", NULL, UP | UV, k.cose, k.cose_len, 16, &len);
    uint8_t buf[4096];

    /* trailing bytes after the attestation object */
    memcpy(buf, att, len);
    buf[len] = 0x00;
    assert_refused(try_register(&p, buf, len + 1, &cred, why_), UPD_EINVAL, "malformed");
    /* cut short */
    assert_refused(try_register(&p, att, len - 1, &cred, why_), UPD_EINVAL, "malformed");
    /* the same map with an indefinite length (0xbf ... 0xff) */
    buf[0] = 0xbf;
    memcpy(buf + 1, att + 1, len - 1);
    buf[len] = 0xff;
    assert_refused(try_register(&p, buf, len + 1, &cred, why_), UPD_EINVAL, "malformed");
    /* behind a tag */
    buf[0] = 0xd8;
    buf[1] = 0x18;
    memcpy(buf + 2, att, len);
    assert_refused(try_register(&p, buf, len + 2, &cred, why_), UPD_EINVAL, "malformed");
    /* nested deeper than any WebAuthn structure, and a container that claims more items than there are bytes */
    memset(buf, 0x81, 64);
    buf[64] = 0x00;
    assert_refused(try_register(&p, buf, 65, &cred, why_), UPD_EINVAL, "malformed");
    static const uint8_t huge[] = {0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    assert_refused(try_register(&p, huge, sizeof(huge), &cred, why_), UPD_EINVAL, "malformed");
    static const uint8_t huge_map[] = {0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    assert_refused(try_register(&p, huge_map, sizeof(huge_map), &cred, why_), UPD_EINVAL, "malformed");
    static const uint8_t huge_bytes[] = {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb, 0x00, 0x00};
    assert_refused(try_register(&p, huge_bytes, sizeof(huge_bytes), &cred, why_), UPD_EINVAL, "malformed");
    free(att);
    /* "fmt" twice */
    cbor_item_t *obj = cbor_new_definite_map(4);
    assert_true(cbor_map_add(obj, (struct cbor_pair){cbor_move(cbor_build_string("fmt")), cbor_move(cbor_build_string("none"))}));
    assert_true(cbor_map_add(obj, (struct cbor_pair){cbor_move(cbor_build_string("fmt")), cbor_move(cbor_build_string("none"))}));
    assert_true(
        cbor_map_add(obj, (struct cbor_pair){cbor_move(cbor_build_string("attStmt")), cbor_move(cbor_new_definite_map(0))}));
    assert_true(
        cbor_map_add(obj, (struct cbor_pair){cbor_move(cbor_build_string("authData")), cbor_move(cbor_build_bytestring(buf, 37))}));
    att = serialize(obj, &len);
    assert_refused(try_register(&p, att, len, &cred, why_), UPD_EINVAL, "malformed");
    free(att);
    free_key(&k);
}

static void
test_trust_anchors_load_from_pem(void **state)
{
    X509_STORE *store = NULL;
    upd_reason_t why;
    static const char not_pem[] = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";

    assert_refused(upd_webauthn_trust_from_pem("", 0, &store, why_), UPD_EINVAL, "policy");
    assert_null(store);
    assert_refused(upd_webauthn_trust_from_pem("just text\n", 10, &store, why_), UPD_EINVAL, "policy");
    assert_refused(upd_webauthn_trust_from_pem(not_pem, strlen(not_pem), &store, why_), UPD_EINVAL, "policy");
    assert_null(store);
}

/* ---- the W3C test vectors --------------------------------------------------------------------------------------- */

enum vkind { V_REGISTER, V_ASSERT, V_DERIVED };

struct vtest {
    char name[NAME_MAX + 64];
    char path[PATH_MAX + NAME_MAX + 2];
    enum vkind kind;
    bool uv_required_variant;    /* valid case: run again under "required" */
    const char *policy_override; /* derived case: "required"/"preferred" instead of rp_policy's */
};

static char vectors_dir[PATH_MAX];
static struct vtest *vtests;
static size_t num_vtests, num_valid, num_derived;
static json_t *root_cert;

static json_t *
load_json(const char *path)
{
    json_error_t err;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL)
        fail_msg("%s:%d: %s", path, err.line, err.text);
    return j;
}

static const char *
str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s == NULL)
        fail_msg("vector field \"%s\" missing or not a string", key);
    return s;
}

/* the vectors spell check names as WebAuthn's members are spelled; the reason codes are snake_case */
static const char *
reason_code(const char *check)
{
    static const char *const map[][2] = {
        {"crossOrigin", "cross_origin"}, {"topOrigin", "top_origin"}, {"rpIdHash", "rp_id_hash"}, {"signCount", "sign_count"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(check, map[i][0]) == 0)
            return map[i][1];
    return check;
}

/* rp_policy as a policy; the strings stay in the JSON, the arrays in *o and *t */
static upd_webauthn_policy_t
vector_policy(json_t *rp, const char *uv, const char **o, const char **t)
{
    upd_webauthn_policy_t p = {.rp_id = str(rp, "rpId"), .origins = o, .top_origins = t, .trust_anchors = vector_anchors};
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rp, "expected_origins"), i, v)
    {
        assert_true(i < 8);
        o[p.num_origins++] = json_string_value(v);
    }
    json_array_foreach(json_object_get(rp, "expected_topOrigins"), i, v)
    {
        assert_true(i < 8);
        t[p.num_top_origins++] = json_string_value(v);
    }
    p.accept_cross_origin = json_is_true(json_object_get(rp, "accept_crossOrigin_true"));
    if (uv == NULL)
        uv = str(rp, "userVerification");
    assert_true(strcmp(uv, "required") == 0 || strcmp(uv, "preferred") == 0 || strcmp(uv, "discouraged") == 0);
    p.user_verification = strcmp(uv, "required") == 0 ? UPD_WEBAUTHN_UV_REQUIRED : UPD_WEBAUTHN_UV_PREFERRED;
    return p;
}

static void
expect(int ret, const upd_reason_t *why, const char *code, const char *what)
{
    if (code == NULL && ret != 0)
        fail_msg("%s: expected valid, refused with %d \"%s\": %s", what, ret, why->code, why->message);
    if (code != NULL && (ret == 0 || strcmp(why->code, code) != 0))
        fail_msg("%s: expected refusal \"%s\", got %d \"%s\": %s", what, code, ret, why->code,
                 ret == 0 ? "accepted" : why->message);
}

static bool
fmt_is_accepted(const char *fmt)
{
    return strcmp(fmt, "none") == 0 || strcmp(fmt, "packed") == 0;
}

/* Registers a valid case's credential: from its attestation object (none, packed) or from `extracted` (other formats). */
static int
vector_credential(json_t *c, const upd_webauthn_policy_t *p, upd_webauthn_credential_t *cred, upd_reason_t *why)
{
    json_t *reg = json_object_get(c, "registration"), *ex = json_object_get(json_object_get(c, "extracted"), "registration");
    size_t chal_len, cdj_len, att_len;
    uint8_t *chal = unhex(str(reg, "challenge"), &chal_len), *cdj = unhex(str(reg, "clientDataJSON"), &cdj_len);
    uint8_t *att = unhex(str(reg, "attestationObject"), &att_len);
    int ret = upd_webauthn_register(p, chal, chal_len, cdj, cdj_len, att, att_len, cred, why);
    free(chal);
    free(cdj);
    free(att);
    if (!fmt_is_accepted(str(ex, "fmt")) && ret == UPD_EAUTH && strcmp(why->code, "attestation") == 0) {
        size_t id_len, key_len;
        uint8_t *id = unhex(str(ex, "credentialId"), &id_len), *key = unhex(str(ex, "credentialPublicKey"), &key_len);
        json_t *flags = json_object_get(ex, "flags");
        assert_true(json_is_integer(flags));
        upd_reason_t lwhy;
        int lret = upd_webauthn_credential_load(cred, id, id_len, key, key_len, 0, (uint8_t)json_integer_value(flags), &lwhy);
        free(id);
        free(key);
        if (lret != 0)
            fail_msg("loading the extracted credential key: %d \"%s\" %s", lret, lwhy.code, lwhy.message);
    }
    return ret;
}

static void
run_register(json_t *c, const struct vtest *t)
{
    json_t *er = json_object_get(json_object_get(c, "expected_results"), "registration");
    json_t *ex = json_object_get(json_object_get(c, "extracted"), "registration");
    const char *o[8], *tp[8];
    upd_webauthn_policy_t p = vector_policy(json_object_get(json_object_get(c, "expected_results"), "rp_policy"),
                                            t->uv_required_variant ? "required" : NULL, o, tp);
    upd_webauthn_credential_t cred;
    upd_reason_t why = {{0}};
    const char *fmt = str(ex, "fmt");
    bool uv_fails = t->uv_required_variant && !json_is_true(json_object_get(er, "valid_if_uv_required"));
    int ret = vector_credential(c, &p, &cred, &why);

    if (uv_fails) {
        expect(ret, &why, "uv", t->name);
    } else if (!fmt_is_accepted(fmt)) {
        char want[96];
        expect(ret, &why, "attestation", t->name);
        snprintf(want, sizeof(want), "attestation format %s is not accepted", fmt);
        assert_string_equal(why.message, want);
    } else {
        expect(ret, &why, NULL, t->name);
        size_t n;
        uint8_t *b = unhex(str(ex, "credentialId"), &n);
        assert_int_equal(cred.id_len, n);
        assert_memory_equal(cred.id, b, n);
        free(b);
        b = unhex(str(ex, "credentialPublicKey"), &n);
        assert_int_equal(cred.public_key_len, n);
        assert_memory_equal(cred.public_key, b, n);
        free(b);
        b = unhex(str(ex, "aaguid"), &n);
        assert_memory_equal(cred.aaguid, b, 16);
        free(b);
        assert_int_equal(cred.alg, json_integer_value(json_object_get(ex, "cose_alg")));
        assert_int_equal(cred.sign_count, json_integer_value(json_object_get(ex, "signCount")));
        assert_int_equal(cred.flags, json_integer_value(json_object_get(ex, "flags")));
        assert_string_equal(cred.fmt, fmt);
        const char *type = json_string_value(json_object_get(er, "attestation_type"));
        assert_non_null(type);
        upd_webauthn_attestation_t want = strcmp(fmt, "none") == 0    ? UPD_WEBAUTHN_ATTESTATION_NONE
                                          : strcmp(type, "Self") == 0 ? UPD_WEBAUTHN_ATTESTATION_SELF
                                                                      : UPD_WEBAUTHN_ATTESTATION_X5C;
        assert_int_equal(cred.attestation, want);
    }
    upd_webauthn_credential_dispose(&cred);
}

static void
run_assert(json_t *c, const struct vtest *t)
{
    json_t *results = json_object_get(c, "expected_results");
    json_t *ea = json_object_get(results, "authentication"), *auth = json_object_get(c, "authentication");
    const char *o[8], *tp[8];
    upd_webauthn_policy_t p =
        vector_policy(json_object_get(results, "rp_policy"), t->uv_required_variant ? "required" : NULL, o, tp);
    upd_webauthn_credential_t cred;
    upd_webauthn_assertion_t out = {0};
    upd_reason_t why = {{0}};

    /* the credential as the case registers it, under the case's own policy */
    const char *ro[8], *rtp[8];
    upd_webauthn_policy_t reg_policy = vector_policy(json_object_get(results, "rp_policy"), NULL, ro, rtp);
    int ret = vector_credential(c, &reg_policy, &cred, &why);
    if (ret != 0 && cred.pkey == NULL)
        fail_msg("%s: registering the credential: %d \"%s\" %s", t->name, ret, why.code, why.message);
    cred.sign_count = (uint32_t)json_integer_value(json_object_get(ea, "stored_signCount_before"));

    size_t chal_len, cdj_len, ad_len, sig_len;
    uint8_t *chal = unhex(str(auth, "challenge"), &chal_len), *cdj = unhex(str(auth, "clientDataJSON"), &cdj_len);
    uint8_t *ad = unhex(str(auth, "authenticatorData"), &ad_len), *sig = unhex(str(auth, "signature"), &sig_len);
    memset(&why, 0, sizeof(why));
    ret = upd_webauthn_assert(&p, chal, chal_len, &cred, cdj, cdj_len, ad, ad_len, sig, sig_len, &out, &why);
    bool uv_fails = t->uv_required_variant && !json_is_true(json_object_get(ea, "valid_if_uv_required"));
    expect(ret, &why, uv_fails ? "uv" : NULL, t->name);
    if (ret == 0) {
        json_t *exa = json_object_get(json_object_get(c, "extracted"), "authentication");
        assert_int_equal(out.sign_count, json_integer_value(json_object_get(exa, "signCount")));
        assert_int_equal(out.flags, json_integer_value(json_object_get(exa, "flags")));
    }
    free(chal);
    free(cdj);
    free(ad);
    free(sig);
    upd_webauthn_credential_dispose(&cred);
}

static void
run_derived(json_t *c, const struct vtest *t)
{
    json_t *rp = json_object_get(c, "rp_policy"), *auth = json_object_get(c, "authentication");
    const char *o[8], *tp[8];
    upd_webauthn_policy_t p = vector_policy(rp, t->policy_override, o, tp);
    upd_webauthn_credential_t cred;
    upd_webauthn_assertion_t out = {0};
    upd_reason_t why = {{0}};

    /* the stored credential: rp_policy's key and count, with the flags the base case registered (BE is compared) */
    char base_path[PATH_MAX + NAME_MAX + 8];
    snprintf(base_path, sizeof(base_path), "%s/%s.json", vectors_dir, str(c, "base_case"));
    json_t *base = load_json(base_path);
    json_t *flags = json_object_get(json_object_get(json_object_get(base, "extracted"), "registration"), "flags");
    assert_true(json_is_integer(flags));
    size_t id_len, key_len;
    uint8_t *id = unhex(str(rp, "credentialId"), &id_len), *key = unhex(str(rp, "credentialPublicKey"), &key_len);
    json_t *stored = json_object_get(rp, "stored_signCount");
    assert_true(json_is_integer(stored));
    int ret = upd_webauthn_credential_load(&cred, id, id_len, key, key_len, (uint32_t)json_integer_value(stored),
                                           (uint8_t)json_integer_value(flags), &why);
    if (ret != 0)
        fail_msg("%s: loading rp_policy's credential: %d \"%s\" %s", t->name, ret, why.code, why.message);
    free(id);
    free(key);
    json_decref(base);

    /* the expected outcome: first_failing_check under rp_policy; expected_by_policy under another */
    const char *want = str(c, "first_failing_check");
    if (t->policy_override != NULL) {
        const char *by = str(json_object_get(c, "expected_by_policy"), t->policy_override);
        if (strcmp(by, "valid") == 0)
            want = NULL;
        else if (strcmp(t->policy_override, "required") != 0 && json_object_get(c, "first_failing_check_if_uv_not_required"))
            want = str(c, "first_failing_check_if_uv_not_required");
    }
    if (want != NULL)
        want = reason_code(want);

    size_t chal_len, cdj_len, ad_len, sig_len;
    uint8_t *chal = unhex(str(rp, "challenge"), &chal_len), *cdj = unhex(str(auth, "clientDataJSON"), &cdj_len);
    uint8_t *ad = unhex(str(auth, "authenticatorData"), &ad_len), *sig = unhex(str(auth, "signature"), &sig_len);
    ret = upd_webauthn_assert(&p, chal, chal_len, &cred, cdj, cdj_len, ad, ad_len, sig, sig_len, &out, &why);
    expect(ret, &why, want, t->name);
    if (want != NULL)
        assert_int_equal(ret, UPD_EAUTH);
    free(chal);
    free(cdj);
    free(ad);
    free(sig);
    upd_webauthn_credential_dispose(&cred);
}

static void
test_vector(void **state)
{
    const struct vtest *t = *state;
    json_t *c = load_json(t->path);
    if (t->kind == V_REGISTER)
        run_register(c, t);
    else if (t->kind == V_ASSERT)
        run_assert(c, t);
    else
        run_derived(c, t);
    json_decref(c);
}

static void
test_vector_set_is_complete(void **state)
{
    if (root_cert == NULL || vector_anchors == NULL)
        fail_msg("%s: attestation-root-cert.json missing or unusable (set UPDRAFT_VECTORS_DIR)", vectors_dir);
    if (num_valid != EXPECTED_VALID || num_derived != EXPECTED_DERIVED)
        fail_msg("%s: %zu valid and %zu derived cases, expected %d and %d", vectors_dir, num_valid, num_derived, EXPECTED_VALID,
                 EXPECTED_DERIVED);
}

/* the vectors' packed x5c statements: without the anchor, with another one, after the certificates expire */
static void
test_x5c_attestation_needs_its_trust_anchor_and_validity(void **state)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/packed-es256.json", vectors_dir);
    json_t *c = load_json(path);
    const char *o[8], *tp[8];
    upd_webauthn_policy_t p = vector_policy(json_object_get(json_object_get(c, "expected_results"), "rp_policy"), NULL, o, tp);
    upd_webauthn_credential_t cred;
    upd_reason_t why;

    assert_int_equal(vector_credential(c, &p, &cred, &why), 0);
    assert_int_equal(cred.attestation, UPD_WEBAUTHN_ATTESTATION_X5C);
    upd_webauthn_credential_dispose(&cred);
    p.trust_anchors = NULL;
    assert_refused(vector_credential(c, &p, &cred, why_), UPD_EAUTH, "attestation");
    assert_string_equal(why.message, "no trust anchor is configured for x5c attestation");

    /* an anchor of our own */
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *other = X509_new();
    X509_STORE *store = X509_STORE_new();
    assert_non_null(key);
    assert_int_equal(X509_set_version(other, X509_VERSION_3), 1);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(other), "CN", MBSTRING_ASC, (const unsigned char *)"Other CA", -1, -1, 0);
    assert_int_equal(X509_set_issuer_name(other, X509_get_subject_name(other)), 1);
    X509_gmtime_adj(X509_getm_notBefore(other), -3600);
    X509_gmtime_adj(X509_getm_notAfter(other), 3600);
    assert_int_equal(X509_set_pubkey(other, key), 1);
    assert_true(X509_sign(other, key, EVP_sha256()) > 0);
    assert_int_equal(X509_STORE_add_cert(store, other), 1);
    p.trust_anchors = store;
    assert_refused(vector_credential(c, &p, &cred, why_), UPD_EAUTH, "attestation");
    assert_non_null(strstr(why.message, "does not chain to a trust anchor"));
    X509_STORE_free(store);
    X509_free(other);
    EVP_PKEY_free(key);

    /* the vectors' certificates end on 3024-01-01 */
    p.trust_anchors = vector_anchors;
    p.verify_time = (time_t)33000000000LL; /* 3015 */
    assert_int_equal(vector_credential(c, &p, &cred, &why), 0);
    upd_webauthn_credential_dispose(&cred);
    p.verify_time = (time_t)33200000000LL; /* 3022 */
    assert_int_equal(vector_credential(c, &p, &cred, &why), 0);
    upd_webauthn_credential_dispose(&cred);
    p.verify_time = (time_t)33300000000LL; /* 3025 */
    assert_refused(vector_credential(c, &p, &cred, why_), UPD_EAUTH, "attestation");
    assert_non_null(strstr(why.message, "expired"));
    json_decref(c);
}

/* a credential stored as registration returned it verifies the same assertion after a load */
static void
test_a_stored_credential_loads_back(void **state)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/packed-rs256.json", vectors_dir);
    json_t *c = load_json(path);
    json_t *auth = json_object_get(c, "authentication");
    const char *o[8], *tp[8];
    upd_webauthn_policy_t p = vector_policy(json_object_get(json_object_get(c, "expected_results"), "rp_policy"), NULL, o, tp);
    upd_webauthn_credential_t reg, cred;
    upd_webauthn_assertion_t out;
    upd_reason_t why;

    assert_int_equal(vector_credential(c, &p, &reg, &why), 0);
    assert_int_equal(upd_webauthn_credential_load(&cred, reg.id, reg.id_len, reg.public_key, reg.public_key_len, reg.sign_count,
                                                  reg.flags, &why),
                     0);
    assert_int_equal(cred.alg, UPD_WEBAUTHN_ALG_RS256);
    size_t chal_len, cdj_len, ad_len, sig_len;
    uint8_t *chal = unhex(str(auth, "challenge"), &chal_len), *cdj = unhex(str(auth, "clientDataJSON"), &cdj_len);
    uint8_t *ad = unhex(str(auth, "authenticatorData"), &ad_len), *sig = unhex(str(auth, "signature"), &sig_len);
    assert_int_equal(upd_webauthn_assert(&p, chal, chal_len, &cred, cdj, cdj_len, ad, ad_len, sig, sig_len, &out, &why), 0);
    /* the stored bytes with one more byte are not one COSE key */
    uint8_t longer[UPD_WEBAUTHN_PUBLIC_KEY_MAX];
    memcpy(longer, reg.public_key, reg.public_key_len);
    longer[reg.public_key_len] = 0;
    upd_webauthn_credential_dispose(&cred);
    assert_refused(upd_webauthn_credential_load(&cred, reg.id, reg.id_len, longer, reg.public_key_len + 1, 0, reg.flags, why_),
                   UPD_EINVAL, "malformed");
    assert_refused(upd_webauthn_credential_load(&cred, reg.id, 0, reg.public_key, reg.public_key_len, 0, reg.flags, why_),
                   UPD_EINVAL, "credential_id");
    free(chal);
    free(cdj);
    free(ad);
    free(sig);
    upd_webauthn_credential_dispose(&reg);
    json_decref(c);
}

static void
add_vtest(const char *file, const char *path, enum vkind kind, bool uv_required, const char *override)
{
    static size_t cap;
    if (num_vtests == cap) {
        cap = cap * 2 + 32;
        vtests = realloc(vtests, cap * sizeof(*vtests));
        if (vtests == NULL)
            abort();
    }
    struct vtest *t = &vtests[num_vtests++];
    memset(t, 0, sizeof(*t));
    int n = (int)(strlen(file) - strlen(".json"));
    snprintf(t->name, sizeof(t->name), "%s/%.*s%s%s", kind == V_REGISTER ? "register" : "assert", n, file,
             uv_required        ? "/uv-required"
             : override != NULL ? "/uv-"
                                : "",
             override != NULL ? override : "");
    snprintf(t->path, sizeof(t->path), "%s", path);
    t->kind = kind;
    t->uv_required_variant = uv_required;
    t->policy_override = override;
}

static int
cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* $UPDRAFT_VECTORS_DIR/webauthn, or ../shared/vectors/webauthn beside $UPDRAFT_SOURCE_DIR */
static void
find_vectors(void)
{
    const char *env = getenv("UPDRAFT_VECTORS_DIR"), *src = getenv("UPDRAFT_SOURCE_DIR");
    if (env != NULL && env[0] != '\0')
        snprintf(vectors_dir, sizeof(vectors_dir), "%s/webauthn", env);
    else
        snprintf(vectors_dir, sizeof(vectors_dir), "%s/../shared/vectors/webauthn", src != NULL ? src : ".");
    DIR *d = opendir(vectors_dir);
    if (d == NULL)
        return;
    char *names[256];
    size_t num = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && num < 256) {
        size_t n = strlen(de->d_name);
        if (n > 5 && strcmp(de->d_name + n - 5, ".json") == 0)
            names[num++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, num, sizeof(names[0]), cmp_name);

    for (size_t i = 0; i < num; i++) {
        char path[PATH_MAX + NAME_MAX + 2];
        json_error_t err;
        if (snprintf(path, sizeof(path), "%s/%s", vectors_dir, names[i]) >= (int)sizeof(path))
            abort();
        json_t *c = json_load_file(path, 0, &err);
        if (c != NULL && strcmp(names[i], "attestation-root-cert.json") == 0) {
            root_cert = c;
            free(names[i]);
            continue;
        }
        if (c == NULL) {
            add_vtest(names[i], path, V_DERIVED, false, NULL); /* fails, naming the file */
        } else if (json_is_true(json_object_get(c, "derived"))) {
            num_derived++;
            add_vtest(names[i], path, V_DERIVED, false, NULL);
            const char *stated = json_string_value(json_object_get(json_object_get(c, "rp_policy"), "userVerification"));
            json_t *by = json_object_get(c, "expected_by_policy");
            if (by != NULL && stated != NULL) {
                /* "discouraged" verifies as "preferred": run each distinct policy once */
                const char *other = strcmp(stated, "required") == 0 ? "preferred" : "required";
                add_vtest(names[i], path, V_DERIVED, false, other);
            }
        } else {
            num_valid++;
            add_vtest(names[i], path, V_REGISTER, false, NULL);
            add_vtest(names[i], path, V_REGISTER, true, NULL);
            add_vtest(names[i], path, V_ASSERT, false, NULL);
            add_vtest(names[i], path, V_ASSERT, true, NULL);
        }
        json_decref(c);
        free(names[i]);
    }

    /* the trust anchor, through the PEM loader the service uses */
    const char *hex = json_string_value(json_object_get(root_cert, "attestation_ca_cert"));
    if (hex == NULL)
        return;
    size_t der_len = strlen(hex) / 2;
    uint8_t *der = malloc(der_len);
    const unsigned char *p = der;
    X509 *cert = der != NULL && upd_hex_decode(hex, der_len, der) ? d2i_X509(NULL, &p, (long)der_len) : NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long pem_len = 0;
    upd_reason_t why;
    if (cert != NULL && bio != NULL && PEM_write_bio_X509(bio, cert) == 1 && (pem_len = BIO_get_mem_data(bio, &pem)) > 0 &&
        upd_webauthn_trust_from_pem(pem, (size_t)pem_len, &vector_anchors, &why) != 0)
        fprintf(stderr, "attestation-root-cert.json: %s\n", why.message);
    BIO_free(bio);
    X509_free(cert);
    free(der);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_policy_left_at_its_defaults_requires_user_verification),
        cmocka_unit_test(test_a_sign_count_that_does_not_increase_is_refused),
        cmocka_unit_test(test_backup_eligibility_is_fixed_and_backup_state_needs_it),
        cmocka_unit_test(test_client_data_is_checked_in_the_order_of_the_spec),
        cmocka_unit_test(test_malformed_client_data_is_refused),
        cmocka_unit_test(test_malformed_authenticator_data_is_refused),
        cmocka_unit_test(test_oversized_inputs_and_unusable_policies_are_refused),
        cmocka_unit_test(test_registration_accepts_none_and_refuses_other_formats_by_name),
        cmocka_unit_test(test_registration_checks_the_credential_key_and_id),
        cmocka_unit_test(test_registration_refuses_cbor_outside_what_webauthn_sends),
        cmocka_unit_test(test_trust_anchors_load_from_pem),
    };
    int failed = cmocka_run_group_tests_name("webauthn", tests, NULL, NULL);

    /* one test per vector file, ceremony and policy, built at run time from the files found */
    find_vectors();
    size_t num = 3 + num_vtests;
    struct CMUnitTest *vt = calloc(num, sizeof(*vt));
    if (vt == NULL)
        abort();
    vt[0] = (struct CMUnitTest){"vector_set_is_complete", test_vector_set_is_complete, NULL, NULL, NULL};
    vt[1] = (struct CMUnitTest){"x5c_attestation_needs_its_trust_anchor_and_validity",
                                test_x5c_attestation_needs_its_trust_anchor_and_validity, NULL, NULL, NULL};
    vt[2] = (struct CMUnitTest){"a_stored_credential_loads_back", test_a_stored_credential_loads_back, NULL, NULL, NULL};
    for (size_t i = 0; i < num_vtests; i++)
        vt[3 + i] = (struct CMUnitTest){vtests[i].name, test_vector, NULL, NULL, &vtests[i]};
    failed += _cmocka_run_group_tests("webauthn vectors", vt, num, NULL, NULL);
    free(vt);
    free(vtests);
    json_decref(root_cert);
    X509_STORE_free(vector_anchors);
    return failed;
}
