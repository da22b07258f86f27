#ifndef UPD_WEBAUTHN_H
#define UPD_WEBAUTHN_H

#include "base/err.h"
#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * The relying party's half of WebAuthn (W3C Web Authentication Level 3): verifying a registration (section 7.1,
 * "Registering a New Credential") and an authentication assertion (section 7.2, "Verifying an Authentication
 * Assertion"), as the release-approval service needs them. Pure: no I/O, no clock unless the policy leaves
 * verify_time at 0 (X.509 validity is then checked against the current time), no state. The caller issues each
 * challenge, keeps it server-side, passes it here once and forgets it whatever the outcome (single use is the
 * caller's to enforce: this module only compares), and keeps the credential record (id, COSE key, sign count, flags).
 *
 * Accepted: credential keys ES256, ES384, ES512 (DER signatures), EdDSA (Ed25519, Ed448), RS256 (RSASSA-PKCS1-v1_5,
 * a modulus of at least 2048 bits); attestation formats "none" and "packed" (self attestation, or an x5c chain to
 * one of the policy's trust anchors). Every other format is refused with the reason "attestation format FMT is not
 * accepted". CBOR is parsed by libcbor (definite lengths only, no tags, nesting at most 8 deep); JSON by jansson
 * (duplicate members refused); keys and signatures are OpenSSL 3's.
 *
 * Every refusal returns a negative UPD_E* code and fills the reason with a code naming the check that failed, in the
 * order the spec lists the checks (the first failing check wins):
 *
 *   "malformed"     UPD_EINVAL  clientDataJSON is not a JSON object with string "type", "challenge" and "origin"
 *                               (boolean "crossOrigin" and string "topOrigin" when present), or the attestation object,
 *                               authenticator data or COSE key is not well formed CBOR of the expected shape
 *   "too_big"       UPD_ETOOBIG an input is above its UPD_WEBAUTHN_*_MAX
 *   "policy"        UPD_EINVAL  the caller's policy or expected challenge is unusable (a bug, not the client's fault)
 *   "type"          UPD_EAUTH   clientData.type is not "webauthn.create" (registration) or "webauthn.get" (assertion)
 *   "challenge"     UPD_EAUTH   clientData.challenge is not base64url (unpadded) of the expected challenge
 *   "origin"        UPD_EAUTH   clientData.origin is not one of policy->origins
 *   "cross_origin"  UPD_EAUTH   clientData.crossOrigin is true and the policy does not accept cross-origin use
 *   "top_origin"    UPD_EAUTH   clientData.topOrigin is present and cross-origin use is not accepted, or it is not one
 *                               of policy->top_origins
 *   "rp_id_hash"    UPD_EAUTH   authenticatorData's rpIdHash is not SHA-256(policy->rp_id)
 *   "up"            UPD_EAUTH   the user-present flag is clear
 *   "uv"            UPD_EAUTH   the user-verified flag is clear and the policy requires user verification
 *   "be_bs"         UPD_EAUTH   backup state set without backup eligibility, or (assertion) the backup eligibility
 *                               differs from the stored credential's
 *   "alg"           UPD_EAUTH   the credential key's COSE algorithm is not supported or not in policy->algs
 *   "public_key"    UPD_EAUTH   the COSE key does not describe a usable key of its algorithm (wrong curve, point not on
 *                               the curve, RSA modulus too short)
 *   "credential_id" UPD_EINVAL  the credential id is empty or longer than UPD_WEBAUTHN_CREDENTIAL_ID_MAX bytes
 *   "attestation"   UPD_EAUTH   (registration) the format is not accepted, or its statement does not verify, or an x5c
 *                               chain does not lead to a trust anchor
 *   "signature"     UPD_EAUTH   (assertion) the signature over authenticatorData || SHA-256(clientDataJSON) does not verify
 *   "sign_count"    UPD_EAUTH   (assertion) either sign count is non-zero and the new one is not above the stored one:
 *                               a possibly cloned authenticator, always a refusal here
 *   ""              UPD_ENOMEM  OpenSSL or libcbor ran out of memory
 *
 * Reasons never quote the challenge; they may quote an origin, the format or an algorithm number.
 */

#define UPD_WEBAUTHN_CREDENTIAL_ID_MAX 1023 /* section 7.1: "credentialId ... at most 1023 bytes" */
#define UPD_WEBAUTHN_CHALLENGE_MIN 16       /* section 13.4.3: at least 16 random bytes */
#define UPD_WEBAUTHN_CHALLENGE_MAX 1024
#define UPD_WEBAUTHN_CLIENT_DATA_MAX 16384 /* clientDataJSON */
#define UPD_WEBAUTHN_AUTH_DATA_MAX 16384   /* authenticatorData, and the one inside an attestation object */
#define UPD_WEBAUTHN_ATTESTATION_MAX 65536 /* attestationObject: authData and an x5c chain */
#define UPD_WEBAUTHN_SIGNATURE_MAX 2048    /* an RSA-16384 signature fits */
#define UPD_WEBAUTHN_PUBLIC_KEY_MAX 2048   /* a COSE_Key; an RSA-8192 key fits */
#define UPD_WEBAUTHN_RSA_MIN_BITS 2048
#define UPD_WEBAUTHN_RSA_MAX_BITS 8192
#define UPD_WEBAUTHN_FMT_MAX 32

/* authenticatorData flags (section 6.1) */
#define UPD_WEBAUTHN_FLAG_UP 0x01 /* user present */
#define UPD_WEBAUTHN_FLAG_UV 0x04 /* user verified */
#define UPD_WEBAUTHN_FLAG_BE 0x08 /* backup eligible */
#define UPD_WEBAUTHN_FLAG_BS 0x10 /* backup state */
#define UPD_WEBAUTHN_FLAG_AT 0x40 /* attested credential data included */
#define UPD_WEBAUTHN_FLAG_ED 0x80 /* extension data included */

/* COSE algorithm identifiers (IANA "COSE Algorithms") that a credential key may have */
enum {
    UPD_WEBAUTHN_ALG_ES256 = -7,
    UPD_WEBAUTHN_ALG_EDDSA = -8, /* Ed25519 or Ed448, by the key's crv */
    UPD_WEBAUTHN_ALG_ED25519 = -19,
    UPD_WEBAUTHN_ALG_ES384 = -35,
    UPD_WEBAUTHN_ALG_ES512 = -36,
    UPD_WEBAUTHN_ALG_ED448 = -53,
    UPD_WEBAUTHN_ALG_RS256 = -257
};

/* userVerification. The zero value is "required", so that a policy left at its defaults requires it. */
typedef enum en_upd_webauthn_uv_t {
    UPD_WEBAUTHN_UV_REQUIRED = 0, /* UV must be set: the only value the release-approval service uses */
    UPD_WEBAUTHN_UV_PREFERRED     /* UV is not checked ("preferred" and "discouraged" verify alike) */
} upd_webauthn_uv_t;

typedef enum en_upd_webauthn_attestation_t {
    UPD_WEBAUTHN_ATTESTATION_NONE = 0, /* fmt "none" */
    UPD_WEBAUTHN_ATTESTATION_SELF,     /* fmt "packed", signed by the credential key itself */
    UPD_WEBAUTHN_ATTESTATION_X5C       /* fmt "packed" with x5c: Basic or AttCA, chained to a trust anchor */
} upd_webauthn_attestation_t;

/*
 * What the relying party accepts. Everything is borrowed for the duration of a call; a policy may be shared by
 * threads (X509_STORE is safe to verify against concurrently once filled).
 */
typedef struct st_upd_webauthn_policy_t {
    const char *rp_id;          /* "example.org": rpIdHash must be its SHA-256 */
    const char *const *origins; /* clientData.origin must equal one of them exactly ("https://example.org") */
    size_t num_origins;
    bool accept_cross_origin;       /* accept crossOrigin: true (the ceremony ran in a cross-origin iframe) */
    const char *const *top_origins; /* with accept_cross_origin: the top-level origins allowed to frame us */
    size_t num_top_origins;
    upd_webauthn_uv_t user_verification;
    const int *algs; /* the COSE algorithms accepted for new credentials; NULL: every one listed above */
    size_t num_algs;
    X509_STORE *trust_anchors; /* for packed x5c attestation; NULL: x5c statements are refused */
    time_t verify_time;        /* the time X.509 validity is checked at; 0: now */
} upd_webauthn_policy_t;

/*
 * A credential record: what registration produces and what an assertion is checked against. Zeroed by the functions
 * that fill it, so upd_webauthn_credential_dispose() is safe on one that failed to fill.
 */
typedef struct st_upd_webauthn_credential_t {
    uint8_t id[UPD_WEBAUTHN_CREDENTIAL_ID_MAX];
    size_t id_len;
    uint8_t *public_key; /* the COSE_Key bytes exactly as the authenticator sent them (malloc'ed, owned) */
    size_t public_key_len;
    int alg;        /* its COSE algorithm, UPD_WEBAUTHN_ALG_* */
    EVP_PKEY *pkey; /* the same key for OpenSSL (owned) */
    uint32_t sign_count;
    uint8_t flags; /* UPD_WEBAUTHN_FLAG_*: UV, BE and BS as registered; BE must not change afterwards */
    uint8_t aaguid[16];
    char fmt[UPD_WEBAUTHN_FMT_MAX]; /* "none", "packed"; "" for a record loaded with _load() */
    upd_webauthn_attestation_t attestation;
} upd_webauthn_credential_t;

/* What a verified assertion tells the caller to store. */
typedef struct st_upd_webauthn_assertion_t {
    uint32_t sign_count; /* the new sign count (store it) */
    uint8_t flags;       /* the assertion's flags: UV, and BS (which may change, section 7.2) */
} upd_webauthn_assertion_t;

/**
 * Verifies a registration (section 7.1): clientDataJSON and attestationObject as the browser returned them from
 * navigator.credentials.create(), against the challenge the caller issued for this ceremony. Checks type
 * "webauthn.create", challenge, origin, crossOrigin, topOrigin, rpIdHash, UP, UV (if required), BE/BS, the key's
 * algorithm, the credential id length and the attestation statement ("none", or "packed": self, or x5c with the
 * certificate requirements of section 8.2.1 and a chain to policy->trust_anchors).
 * It does not check that the credential id is new: the caller does, against its records.
 * @param challenge  the expected challenge, UPD_WEBAUTHN_CHALLENGE_MIN to _MAX raw bytes
 * @param[out] out  on success the new credential record, to be released with upd_webauthn_credential_dispose();
 *                  zeroed on failure (nothing to release)
 * @param why  NULL or the reason for a refusal (codes in the table above)
 * @return 0, UPD_EAUTH (a check failed), UPD_EINVAL ("malformed" input or a bad "policy"), UPD_ETOOBIG or UPD_ENOMEM
 */
int upd_webauthn_register(const upd_webauthn_policy_t *policy, const uint8_t *challenge, size_t challenge_len,
                          const uint8_t *client_data_json, size_t client_data_len, const uint8_t *attestation_object,
                          size_t attestation_len, upd_webauthn_credential_t *out, upd_reason_t *why);

/**
 * Verifies an authentication assertion (section 7.2) from navigator.credentials.get() for a credential the caller
 * found by its id (and whose user handle it checked): type "webauthn.get", challenge, origin, crossOrigin,
 * topOrigin, rpIdHash, UP, UV (if required), BE/BS, the signature over authenticatorData || SHA-256(clientDataJSON)
 * with the stored key, then the sign count, in that order.
 * @param stored  the credential record (from upd_webauthn_register() or upd_webauthn_credential_load()); read only
 * @param[out] out  on success the sign count and flags to store; untouched on failure
 * @return 0, UPD_EAUTH, UPD_EINVAL, UPD_ETOOBIG or UPD_ENOMEM, with the reason in why
 */
int upd_webauthn_assert(const upd_webauthn_policy_t *policy, const uint8_t *challenge, size_t challenge_len,
                        const upd_webauthn_credential_t *stored, const uint8_t *client_data_json, size_t client_data_len,
                        const uint8_t *authenticator_data, size_t auth_data_len, const uint8_t *signature, size_t signature_len,
                        upd_webauthn_assertion_t *out, upd_reason_t *why);

/**
 * Rebuilds a credential record from what the caller stored: id, COSE_Key bytes, sign count and flags (as
 * registration returned them). The key is parsed and checked as registration checks it (any supported algorithm:
 * policy->algs applies to new credentials only).
 * @param[out] out  zeroed first; on success release it with upd_webauthn_credential_dispose()
 * @return 0, UPD_EINVAL ("malformed", "credential_id"), UPD_EAUTH ("alg", "public_key"), UPD_ETOOBIG or UPD_ENOMEM
 */
int upd_webauthn_credential_load(upd_webauthn_credential_t *out, const uint8_t *id, size_t id_len, const uint8_t *cose_key,
                                 size_t cose_key_len, uint32_t sign_count, uint8_t flags, upd_reason_t *why);

/** Releases what a credential record owns and zeroes it; safe on a zeroed record. */
void upd_webauthn_credential_dispose(upd_webauthn_credential_t *cred);

/**
 * Builds the trust-anchor store for packed x5c attestation from PEM text holding one or more certificates (the file's
 * contents: reading it is the caller's).
 * @param[out] out  on success an X509_STORE to free with X509_STORE_free() once no policy uses it
 * @return 0, UPD_EINVAL (code "policy": no certificate, or text that is not PEM certificates) or UPD_ENOMEM
 */
int upd_webauthn_trust_from_pem(const char *pem, size_t len, X509_STORE **out, upd_reason_t *why);

#endif
