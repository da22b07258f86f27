#ifndef UPD_STATE_SIG_H
#define UPD_STATE_SIG_H

#include "base/err.h"
#include "domain/ids.h"
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The signed state envelope: the release-signing key of the approval service (updraft-sts) vouches for one app's
 * state document (upd_store_app_export, published as _updraft/state/APP.json) at one generation, until an expiry.
 * Origins hold only public keys, at most UPD_STATE_SIG_KEYS_MAX of them (a rotation lists the new key beside the
 * old one), and serve only state an envelope covers. The format (docs/sts.md "Release signatures"):
 *
 *   {"format":1,"app":"acme","generation":7,"expires":1767225600,
 *    "digest":"sha256:<64 lower-case hex: SHA-256 of the exact document bytes>",
 *    "key_id":"<16 lower-case hex: the first 8 bytes of SHA-256 of the raw 32-byte Ed25519 public key>",
 *    "sig":"<standard base64, padded, of the 64-byte Ed25519 signature>"}
 *
 * The signature is pure Ed25519 (RFC 8032, no pre-hash, no context) over the message
 *
 *   "updraft-state-v1\n" APP "\n" GENERATION "\n" EXPIRES "\n" DIGEST
 *
 * APP as in the envelope, GENERATION and EXPIRES in decimal without sign or leading zeros, DIGEST the envelope's
 * "sha256:..." text, no newline at the end. The first line separates these signatures from any other the key could
 * make; key_id and format are not signed (a wrong key_id only finds the wrong key, and the message names its
 * version). The envelope is read strictly: exactly these seven members, no duplicates, each spelt as the signer
 * writes it (lower-case hex, canonical base64), so that one signature has one spelling.
 *
 * Pure: keys are OpenSSL 3 EVP_PKEYs of type ED25519; no I/O. Reading and writing key files: storage/keyfile.h.
 */

#define UPD_STATE_SIG_FORMAT 1
#define UPD_STATE_SIG_DOMAIN "updraft-state-v1\n" /* the first line of every signed message */
#define UPD_STATE_SIG_KEY_ID_LEN 16               /* hex digits of a key id */
#define UPD_STATE_SIG_KEYS_MAX 2                  /* trusted keys at once: the current one and, in a rotation, the next */
#define UPD_STATE_SIG_ENVELOPE_MAX 4096           /* a longer envelope is refused unread (one is about 300 bytes) */

/**
 * Computes a key's id: the first 16 lower-case hex digits of SHA-256 of its raw 32-byte public key. A private key
 * gives the id of its public half.
 * @param[out] out  16 hex digits and a NUL
 * @return 0; UPD_EINVAL when key is not an Ed25519 key
 */
int upd_state_sig_key_id(EVP_PKEY *key, char out[UPD_STATE_SIG_KEY_ID_LEN + 1]);

/**
 * Signs an app's state document: builds the envelope above.
 * @param key         an Ed25519 private key; borrowed
 * @param generation  1 to INT64_MAX (what JSON integers hold; the index never names generation 0)
 * @param expires     Unix seconds, > 0: after it origins still serve the state but report it stale
 * @param[out] out    malloc'ed, NUL-terminated compact JSON, *out_len bytes before the NUL; the caller frees it
 * @param why         filled on failure (NULL is fine), code "malformed" for bad arguments
 * @return 0; UPD_EINVAL (not an Ed25519 private key, app not an app id, generation or expires out of range);
 *         UPD_ENOMEM (OpenSSL or jansson failed)
 */
int upd_state_sig_sign(EVP_PKEY *key, const char *app, uint64_t generation, int64_t expires, const void *doc, size_t doc_len,
                       char **out, size_t *out_len, upd_reason_t *why);

/* ---- verifying ---- */

/** The public keys an origin trusts; embedded: upd_state_sig_trust_init / upd_state_sig_trust_dispose. */
typedef struct st_upd_state_sig_trust_t {
    size_t n;
    struct {
        char key_id[UPD_STATE_SIG_KEY_ID_LEN + 1];
        EVP_PKEY *key; /* a reference of the set's own */
    } keys[UPD_STATE_SIG_KEYS_MAX];
} upd_state_sig_trust_t;

void upd_state_sig_trust_init(upd_state_sig_trust_t *t);
/** Drops the set's references; the set is empty (and may be used again) afterwards. */
void upd_state_sig_trust_dispose(upd_state_sig_trust_t *t);

/**
 * Adds a trusted public key; the set takes a reference of its own (EVP_PKEY_up_ref), the caller keeps its own.
 * Only the public half is ever used, so a private key works too (tests); origins are given public keys only.
 * @param why  filled on failure (NULL is fine)
 * @return 0; UPD_EINVAL (not an Ed25519 key); UPD_ETOOBIG (the set holds UPD_STATE_SIG_KEYS_MAX keys already);
 *         UPD_EEXIST (a key with this key id is in the set: the same key twice)
 */
int upd_state_sig_trust_add(upd_state_sig_trust_t *t, EVP_PKEY *key, upd_reason_t *why);

/** What a valid envelope said. */
typedef struct st_upd_state_sig_info_t {
    uint64_t generation;
    int64_t expires;
    char key_id[UPD_STATE_SIG_KEY_ID_LEN + 1]; /* the trusted key that signed */
    bool expired;                              /* now >= expires: valid but stale */
} upd_state_sig_info_t;

/**
 * Checks that an envelope covers a document, in this order (the first failure is the one reported):
 *
 *   malformed        UPD_EINVAL     not the envelope above (larger than UPD_STATE_SIG_ENVELOPE_MAX, not JSON, a member
 *                                   missing, extra, duplicated or misspelt, format other than 1)
 *   unknown_key      UPD_EAUTH      no trusted key has the envelope's key_id
 *   bad_signature    UPD_EAUTH      the signature is not that key's over the envelope's fields
 *   wrong_app        UPD_EMISMATCH  signed for another app than the caller reads
 *   digest_mismatch  UPD_EMISMATCH  the document's SHA-256 is not the signed digest
 *   rollback         UPD_ECONFLICT  the generation is below last_generation
 *
 * The same generation as last_generation is accepted: the signer re-signs a generation with a later expiry, and an
 * origin reads the state it already serves again. Expiry is not a refusal: an expired envelope is valid, info->expired
 * set, and the origin keeps serving that state and says it is stale.
 * @param app              the app the caller reads (the document's name in object storage)
 * @param last_generation  the generation last accepted for app (0: none yet)
 * @param now              Unix seconds
 * @param[out] info        filled on success (NULL is fine)
 * @param why              filled on failure with the code above and a sentence (NULL is fine); never a key or signature
 * @return 0 or one of the codes above; UPD_ENOMEM
 */
int upd_state_sig_verify(const upd_state_sig_trust_t *t, const char *envelope, size_t envelope_len, const void *doc, size_t doc_len,
                         const char *app, uint64_t last_generation, int64_t now, upd_state_sig_info_t *info, upd_reason_t *why);

#endif
