/*
 * Fuzzes the WebAuthn verifier (domain/webauthn.h): registration, assertion and the loading of a stored COSE key.
 *
 * Input: one byte choosing the call (0 mod 3: upd_webauthn_register, 1: upd_webauthn_assert, 2:
 * upd_webauthn_credential_load), then for the first two a 2-byte big-endian length and that many bytes of clientDataJSON;
 * the registration takes the rest as the attestationObject, the assertion another 2-byte length and the authenticator
 * data, then the rest as the signature. The expected challenges and the stored credential are those of the W3C vector
 * packed-es256, so that the seeds (tests/fuzz/corpus/webauthn, made from the vectors) get through to the signature.
 * Invariants: the result is 0, UPD_EINVAL, UPD_EAUTH or UPD_ETOOBIG; a refusal has a code and a one-line message and
 * leaves the credential zeroed; an accepted registration has UP and AT set, a 1 to 1023-byte id, a format "none" or
 * "packed", and its COSE key loads back with the same algorithm; an accepted assertion has UP set and reports the
 * flags and sign count of its authenticator data.
 *
 * The anchor, challenges and key below, and the seeds, are byte strings of the W3C test vectors: Copyright (c) 2023
 * W3C(R). This software or document includes material copied from or derived from Web Authentication: An API for
 * accessing Public Key Credentials - Level 3, https://www.w3.org/TR/webauthn-3/ (https://w3c.github.io/webauthn/).
 */
#include "base/err.h"
#include "base/hex.h"
#include "domain/webauthn.h"
#include "tests/fuzz/fuzz.h"
#include <openssl/x509.h>
#include <stdint.h>

/* attestation_ca_cert of the vectors' attestation-root-cert.json */
static const char anchor_hex[] = "30820207308201ada003020102021100ed7f905d8bd0b414d1784913170a90b6300a06082a8648ce3d0403023062311e"
                                 "301c06035504030c15576562417574686e207465737420766563746f7273310c300a060355040a0c0357334331253023"
                                 "060355040b0c1c41757468656e74696361746f72204174746573746174696f6e204341310b3009060355040613024141"
                                 "3020170d3234303130313030303030305a180f33303234303130313030303030305a3062311e301c06035504030c1557"
                                 "6562417574686e207465737420766563746f7273310c300a060355040a0c0357334331253023060355040b0c1c417574"
                                 "68656e74696361746f72204174746573746174696f6e204341310b30090603550406130241413059301306072a8648ce"
                                 "3d020106082a8648ce3d030107034200043269300e5ff7b699015f70cf80a8763bf705bc2e2af0c1b39cff718b7c3588"
                                 "0ca30f319078d91b03389a006fdfc8a1dcd84edfa07d30aa13474a248a0dab5baaa3423040300f0603551d130101ff04"
                                 "0530030101ff300e0603551d0f0101ff040403020106301d0603551d0e0416041445aff715b0dd786741fee996ebc165"
                                 "47a3931b1e300a06082a8648ce3d04030203480030450220483063b6bb08dcc83da33a02c11d2f42203176893554d138"
                                 "c614a36908724cc8022100f5ef2c912d4500b3e2f5b591d0622491e9f220dfd1f9734ec484bb7e90887663";
/* packed-es256: its registration and authentication challenges and its credential key */
static const char reg_challenge_hex[] = "c1184a5fddf8045e13dc47f54b61f5a656b666b59018f16d870e9256e9952012";
static const char auth_challenge_hex[] = "b1106fa46a57bef1781511c0557dc898a03413d5f0f17d244630c194c7e1adb5";
static const char cose_hex[] =
    "a50102032620012158201cf27f25da591208a4239c2e324f104f585525479a29edeedd830f48e77aeae522582059e4b7da6c0106e206"
    "ce390c93ab98a15a5ec3887e57f0cc2bece803b920c423";

static const char *const origins[] = {"https://example.org"};
static const char *const top_origins[] = {"https://example.com"};
static upd_webauthn_policy_t policy;
static upd_webauthn_credential_t stored;
static uint8_t reg_challenge[32], auth_challenge[32];

static void
setup(void)
{
    static uint8_t der[sizeof(anchor_hex) / 2], cose[sizeof(cose_hex) / 2];
    const unsigned char *p = der;
    FUZZ_CHECK(upd_hex_decode(anchor_hex, sizeof(der), der));
    X509 *cert = d2i_X509(NULL, &p, (long)sizeof(der));
    X509_STORE *store = X509_STORE_new();
    FUZZ_CHECK(cert != NULL && store != NULL && X509_STORE_add_cert(store, cert) == 1);
    X509_free(cert);
    FUZZ_CHECK(upd_hex_decode(reg_challenge_hex, 32, reg_challenge) && upd_hex_decode(auth_challenge_hex, 32, auth_challenge));
    FUZZ_CHECK(upd_hex_decode(cose_hex, sizeof(cose), cose));
    FUZZ_CHECK(upd_webauthn_credential_load(&stored, (const uint8_t *)"id", 2, cose, sizeof(cose), 0, 0x4d, NULL) == 0);
    policy = (upd_webauthn_policy_t){.rp_id = "example.org",
                                     .origins = origins,
                                     .num_origins = 1,
                                     .accept_cross_origin = true,
                                     .top_origins = top_origins,
                                     .num_top_origins = 1,
                                     .user_verification = UPD_WEBAUTHN_UV_PREFERRED, /* reaches more of the checks */
                                     .trust_anchors = store,
                                     .verify_time = 1764380000}; /* 2025-11-29 */
}

static void
check_refusal(int ret, const upd_reason_t *why)
{
    FUZZ_CHECK(ret == UPD_EINVAL || ret == UPD_EAUTH || ret == UPD_ETOOBIG);
    FUZZ_CHECK(why->code[0] != '\0' && why->message[0] != '\0');
    FUZZ_CHECK(memchr(why->message, '\0', sizeof(why->message)) != NULL && strchr(why->message, '\n') == NULL);
}

static void
check_credential(const upd_webauthn_credential_t *c)
{
    FUZZ_CHECK(c->id_len >= 1 && c->id_len <= UPD_WEBAUTHN_CREDENTIAL_ID_MAX);
    FUZZ_CHECK(c->pkey != NULL && c->public_key != NULL && c->public_key_len > 0);
    FUZZ_CHECK((c->flags & UPD_WEBAUTHN_FLAG_UP) && (c->flags & UPD_WEBAUTHN_FLAG_AT));
    FUZZ_CHECK(strcmp(c->fmt, "none") == 0 || strcmp(c->fmt, "packed") == 0);
    upd_webauthn_credential_t back;
    FUZZ_CHECK(upd_webauthn_credential_load(&back, c->id, c->id_len, c->public_key, c->public_key_len, c->sign_count, c->flags,
                                            NULL) == 0);
    FUZZ_CHECK(back.alg == c->alg && back.public_key_len == c->public_key_len);
    upd_webauthn_credential_dispose(&back);
}

static bool
take(const uint8_t **data, size_t *size, const uint8_t **out, size_t *len)
{
    if (*size < 2)
        return false;
    size_t n = (size_t)(*data)[0] << 8 | (*data)[1];
    if (*size - 2 < n)
        return false;
    *out = *data + 2;
    *len = n;
    *data += 2 + n;
    *size -= 2 + n;
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 3;
    data++;
    size--;

    upd_reason_t why = {{0}};
    const uint8_t *cdj, *ad;
    size_t cdj_len, ad_len;
    if (mode == 0) {
        if (!take(&data, &size, &cdj, &cdj_len))
            return 0;
        char *c = fuzz_dup(cdj, cdj_len), *att = fuzz_dup(data, size);
        upd_webauthn_credential_t cred;
        int ret =
            upd_webauthn_register(&policy, reg_challenge, 32, (const uint8_t *)c, cdj_len, (const uint8_t *)att, size, &cred, &why);
        if (ret == 0) {
            check_credential(&cred);
        } else {
            check_refusal(ret, &why);
            FUZZ_CHECK(cred.pkey == NULL && cred.public_key == NULL && cred.id_len == 0);
        }
        upd_webauthn_credential_dispose(&cred);
        free(c);
        free(att);
    } else if (mode == 1) {
        if (!take(&data, &size, &cdj, &cdj_len) || !take(&data, &size, &ad, &ad_len))
            return 0;
        char *c = fuzz_dup(cdj, cdj_len), *a = fuzz_dup(ad, ad_len), *sig = fuzz_dup(data, size);
        upd_webauthn_assertion_t out = {0};
        int ret = upd_webauthn_assert(&policy, auth_challenge, 32, &stored, (const uint8_t *)c, cdj_len, (const uint8_t *)a, ad_len,
                                      (const uint8_t *)sig, size, &out, &why);
        if (ret == 0)
            FUZZ_CHECK(ad_len >= 37 && (out.flags & UPD_WEBAUTHN_FLAG_UP) && out.flags == ad[32] &&
                       out.sign_count == ((uint32_t)ad[33] << 24 | (uint32_t)ad[34] << 16 | (uint32_t)ad[35] << 8 | ad[36]));
        else
            check_refusal(ret, &why);
        free(c);
        free(a);
        free(sig);
    } else {
        char *key = fuzz_dup(data, size);
        upd_webauthn_credential_t cred;
        int ret = upd_webauthn_credential_load(&cred, (const uint8_t *)"id", 2, (const uint8_t *)key, size, 0, 0, &why);
        if (ret == 0)
            FUZZ_CHECK(cred.pkey != NULL && cred.public_key_len == size && memcmp(cred.public_key, key, size) == 0);
        else
            check_refusal(ret, &why);
        upd_webauthn_credential_dispose(&cred);
        free(key);
    }
    return 0;
}
