#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/state_sig.h"

/*
 * domain/state_sig.c: the envelope the release-signing key puts on an app's state document, and the origins' check of
 * it: which key, whose signature, which document, which app, which generation, how fresh. Key files and the
 * updraft-sts program: test_keyfile.c, tests/integration/test_sts_init.py.
 */

static const char DOC[] = "{\"format\":1,\"app\":\"acme\",\"generation\":7,\"channels\":{\"latest\":{\"version\":\"1.2.0\"}}}";
#define DOC_LEN (sizeof(DOC) - 1)
#define NOW 1767225600 /* 2026-01-01T00:00:00Z */
#define EXPIRES (NOW + 86400)

/* RFC 8032 section 7.1, TEST 1: a published secret key, so that the envelope's bytes can be pinned */
static const unsigned char RFC8032_SECRET[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
                                                 0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
                                                 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};

/* what the signer writes for RFC 8032's key, DOC, acme, generation 7, expiry 1767312000 */
#define GOLDEN                                                                                                                     \
    "{\"format\":1,\"app\":\"acme\",\"generation\":7,\"expires\":1767312000,"                                                      \
    "\"digest\":\"sha256:8eb3e9e95012d419742d2913d1b5d1134e58d8d3f7d61ba6952e9dc6bc23c432\",\"key_id\":\"21fe31dfa154a261\","      \
    "\"sig\":\"tF6vFkjsK4aHWjt5QSkfmJ7kDRbxoKoE/2JnlAtYlLyT9IIchxourCvD/HDPdT/R6M4zgjF2IAlXCErsOyZJBg==\"}"
/* the first 16 hex digits of SHA-256 of RFC 8032's public key d75a9801...f707511a */
#define GOLDEN_KEY_ID "21fe31dfa154a261"

static EVP_PKEY *
new_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    return k;
}

/* the public half alone, as origins hold it */
static EVP_PKEY *
public_of(EVP_PKEY *k)
{
    unsigned char raw[32];
    size_t len = sizeof(raw);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &len), 1);
    EVP_PKEY *p = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, len);
    assert_non_null(p);
    return p;
}

static char *
sign(EVP_PKEY *k, const char *app, uint64_t generation, int64_t expires, const char *doc, size_t doc_len)
{
    char *env = NULL;
    size_t len = 0;
    upd_reason_t why = {{0}};
    assert_int_equal(upd_state_sig_sign(k, app, generation, expires, doc, doc_len, &env, &len, &why), 0);
    assert_int_equal(strlen(env), len);
    return env;
}

/* a trust set of the public halves of up to two keys */
static void
trust(upd_state_sig_trust_t *t, EVP_PKEY *a, EVP_PKEY *b)
{
    upd_state_sig_trust_init(t);
    EVP_PKEY *keys[] = {a, b};
    for (size_t i = 0; i < 2; i++) {
        if (keys[i] == NULL)
            continue;
        EVP_PKEY *p = public_of(keys[i]);
        assert_int_equal(upd_state_sig_trust_add(t, p, NULL), 0);
        EVP_PKEY_free(p); /* the set holds its own reference */
    }
}

/* verifies env over DOC as acme, last generation 0, at NOW; returns the code and fills why */
static int
verify(const upd_state_sig_trust_t *t, const char *env, upd_reason_t *why)
{
    return upd_state_sig_verify(t, env, strlen(env), DOC, DOC_LEN, "acme", 0, NOW, NULL, why);
}

static void
assert_refused(const upd_state_sig_trust_t *t, const char *env, int err, const char *code)
{
    upd_reason_t why = {{0}};
    int r = verify(t, env, &why);
    if (r != err || strcmp(why.code, code) != 0)
        fail_msg("expected %s (%d), got %s (%d): %s\n  envelope: %s", code, err, why.code, r, why.message, env);
}

/* env with one member replaced by the JSON value `value`, compact as the signer writes */
static char *
with_member(const char *env, const char *name, const char *value)
{
    json_t *o = json_loads(env, 0, NULL), *v = json_loads(value, JSON_DECODE_ANY, NULL);
    assert_non_null(o);
    assert_non_null(v);
    assert_int_equal(json_object_set_new(o, name, v), 0);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* ---- signing and verifying ---- */

static void
test_a_signed_state_verifies_with_its_key(void **state)
{
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *env = sign(k, "acme", 7, EXPIRES, DOC, DOC_LEN);

    upd_state_sig_info_t info;
    upd_reason_t why = {{0}};
    assert_int_equal(upd_state_sig_verify(&t, env, strlen(env), DOC, DOC_LEN, "acme", 0, NOW, &info, &why), 0);
    assert_int_equal(info.generation, 7);
    assert_int_equal(info.expires, EXPIRES);
    assert_string_equal(info.key_id, t.keys[0].key_id);
    assert_false(info.expired);

    char id[UPD_STATE_SIG_KEY_ID_LEN + 1];
    assert_int_equal(upd_state_sig_key_id(k, id), 0); /* a private key has its public half's id */
    assert_string_equal(id, t.keys[0].key_id);

    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

static void
test_the_envelope_is_the_documented_bytes(void **state)
{
    /* Ed25519 is deterministic: RFC 8032's key over DOC gives one envelope. The signature was checked independently
     * with `openssl pkeyutl -sign -rawin` over the message of docs/sts.md. */
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, RFC8032_SECRET, sizeof(RFC8032_SECRET));
    assert_non_null(k);
    char *env = sign(k, "acme", 7, 1767312000, DOC, DOC_LEN);
    assert_string_equal(env, GOLDEN);
    char id[UPD_STATE_SIG_KEY_ID_LEN + 1];
    assert_int_equal(upd_state_sig_key_id(k, id), 0);
    assert_string_equal(id, GOLDEN_KEY_ID);
    free(env);
    EVP_PKEY_free(k);
}

static void
test_an_empty_document_is_signed_like_any_other(void **state)
{
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *env = sign(k, "acme", 1, EXPIRES, "", 0);
    assert_non_null(strstr(env, "\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\""));
    upd_reason_t why = {{0}};
    assert_int_equal(upd_state_sig_verify(&t, env, strlen(env), "", 0, "acme", 0, NOW, NULL, &why), 0);
    assert_int_equal(upd_state_sig_verify(&t, env, strlen(env), DOC, DOC_LEN, "acme", 0, NOW, NULL, &why), UPD_EMISMATCH);
    assert_string_equal(why.code, "digest_mismatch");
    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

/* ---- rotation ---- */

static void
test_either_of_two_trusted_keys_is_accepted(void **state)
{
    EVP_PKEY *old = new_key(), *next = new_key();
    upd_state_sig_trust_t t;
    trust(&t, old, next);
    char *by_old = sign(old, "acme", 7, EXPIRES, DOC, DOC_LEN), *by_next = sign(next, "acme", 7, EXPIRES, DOC, DOC_LEN);
    upd_state_sig_info_t info;
    assert_int_equal(upd_state_sig_verify(&t, by_old, strlen(by_old), DOC, DOC_LEN, "acme", 7, NOW, &info, NULL), 0);
    assert_string_equal(info.key_id, t.keys[0].key_id);
    assert_int_equal(upd_state_sig_verify(&t, by_next, strlen(by_next), DOC, DOC_LEN, "acme", 7, NOW, &info, NULL), 0);
    assert_string_equal(info.key_id, t.keys[1].key_id);

    /* after the rotation only the new key is listed: the old one's envelopes are refused */
    upd_state_sig_trust_t after;
    trust(&after, next, NULL);
    assert_refused(&after, by_old, UPD_EAUTH, "unknown_key");
    upd_reason_t why = {{0}};
    assert_int_equal(verify(&after, by_next, &why), 0);

    free(by_old);
    free(by_next);
    upd_state_sig_trust_dispose(&t);
    upd_state_sig_trust_dispose(&after);
    EVP_PKEY_free(old);
    EVP_PKEY_free(next);
}

static void
test_a_trust_set_holds_two_distinct_ed25519_keys(void **state)
{
    EVP_PKEY *a = new_key(), *b = new_key(), *c = new_key();
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ec);
    upd_state_sig_trust_t t;
    upd_state_sig_trust_init(&t);
    upd_reason_t why = {{0}};
    assert_int_equal(upd_state_sig_trust_add(&t, ec, &why), UPD_EINVAL);
    assert_int_equal(upd_state_sig_trust_add(&t, NULL, &why), UPD_EINVAL);
    assert_int_equal(upd_state_sig_trust_add(&t, a, &why), 0);
    assert_int_equal(upd_state_sig_trust_add(&t, a, &why), UPD_EEXIST);
    assert_string_equal(why.code, "duplicate_key");
    assert_int_equal(upd_state_sig_trust_add(&t, b, &why), 0);
    assert_int_equal(upd_state_sig_trust_add(&t, c, &why), UPD_ETOOBIG);
    assert_string_equal(why.code, "too_many_keys");
    assert_int_equal(t.n, 2);
    upd_state_sig_trust_dispose(&t);
    assert_int_equal(t.n, 0);
    assert_int_equal(upd_state_sig_trust_add(&t, c, &why), 0); /* usable again */
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    EVP_PKEY_free(c);
    EVP_PKEY_free(ec);
}

/* ---- refusals ---- */

static void
test_an_unknown_key_is_refused(void **state)
{
    EVP_PKEY *k = new_key(), *other = new_key();
    upd_state_sig_trust_t t, none;
    trust(&t, other, NULL);
    upd_state_sig_trust_init(&none);
    char *env = sign(k, "acme", 7, EXPIRES, DOC, DOC_LEN);
    assert_refused(&t, env, UPD_EAUTH, "unknown_key");
    assert_refused(&none, env, UPD_EAUTH, "unknown_key");
    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

static void
test_a_key_id_naming_the_other_trusted_key_is_a_bad_signature(void **state)
{
    EVP_PKEY *a = new_key(), *b = new_key();
    upd_state_sig_trust_t t;
    trust(&t, a, b);
    char *env = sign(a, "acme", 7, EXPIRES, DOC, DOC_LEN), quoted[32];
    snprintf(quoted, sizeof(quoted), "\"%s\"", t.keys[1].key_id);
    char *moved = with_member(env, "key_id", quoted);
    assert_refused(&t, moved, UPD_EAUTH, "bad_signature");
    free(env);
    free(moved);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static void
test_a_signed_field_changed_is_a_bad_signature(void **state)
{
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *env = sign(k, "acme", 7, EXPIRES, DOC, DOC_LEN);
    static const char *const changes[][2] = {
        {"generation", "8"},
        {"generation", "70"},
        {"expires", "1767398400"}, /* a later expiry: freshness cannot be bought without the key */
        {"expires", "1767312001"},
        {"app", "\"acmf\""}, /* checked as acmf below */
        {"digest", "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\""},
    };
    for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        char *changed = with_member(env, changes[i][0], changes[i][1]);
        upd_reason_t why = {{0}};
        const char *app = strcmp(changes[i][0], "app") == 0 ? "acmf" : "acme";
        int r = upd_state_sig_verify(&t, changed, strlen(changed), DOC, DOC_LEN, app, 0, NOW, NULL, &why);
        if (r != UPD_EAUTH || strcmp(why.code, "bad_signature") != 0)
            fail_msg("%s: %s: expected bad_signature, got %s: %s", changes[i][0], changes[i][1], why.code, why.message);
        free(changed);
    }
    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

static void
test_a_swapped_document_with_its_own_digest_is_a_bad_signature(void **state)
{
    /* the attacker holding the bucket writes another document and puts its digest in the envelope */
    static const char EVIL[] = "{\"format\":1,\"app\":\"acme\",\"generation\":7,\"channels\":{\"latest\":{\"version\":\"6.6.6\"}}}";
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *env = sign(k, "acme", 7, EXPIRES, DOC, DOC_LEN), *evil_env = sign(k, "acme", 7, EXPIRES, EVIL, sizeof(EVIL) - 1);
    json_t *o = json_loads(evil_env, 0, NULL);
    char digest[80];
    snprintf(digest, sizeof(digest), "\"%s\"", json_string_value(json_object_get(o, "digest")));
    json_decref(o);
    char *swapped = with_member(env, "digest", digest);
    upd_reason_t why = {{0}};
    assert_int_equal(upd_state_sig_verify(&t, swapped, strlen(swapped), EVIL, sizeof(EVIL) - 1, "acme", 0, NOW, NULL, &why),
                     UPD_EAUTH);
    assert_string_equal(why.code, "bad_signature");
    free(env);
    free(evil_env);
    free(swapped);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

static void
test_every_one_byte_change_of_the_document_is_a_digest_mismatch(void **state)
{
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *env = sign(k, "acme", 7, EXPIRES, DOC, DOC_LEN), doc[DOC_LEN + 1];
    for (size_t i = 0; i < DOC_LEN; i++) {
        memcpy(doc, DOC, DOC_LEN);
        doc[i] ^= 0x01;
        upd_reason_t why = {{0}};
        int r = upd_state_sig_verify(&t, env, strlen(env), doc, DOC_LEN, "acme", 0, NOW, NULL, &why);
        if (r != UPD_EMISMATCH || strcmp(why.code, "digest_mismatch") != 0)
            fail_msg("byte %zu: expected digest_mismatch, got %s", i, why.code);
    }
    upd_reason_t why = {{0}};
    /* one byte more or less */
    memcpy(doc, DOC, DOC_LEN);
    doc[DOC_LEN] = ' ';
    assert_int_equal(upd_state_sig_verify(&t, env, strlen(env), doc, DOC_LEN + 1, "acme", 0, NOW, NULL, &why), UPD_EMISMATCH);
    assert_int_equal(upd_state_sig_verify(&t, env, strlen(env), DOC, DOC_LEN - 1, "acme", 0, NOW, NULL, &why), UPD_EMISMATCH);
    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

static void
test_every_bit_of_the_signature_matters(void **state)
{
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *env = sign(k, "acme", 7, EXPIRES, DOC, DOC_LEN);
    json_t *o = json_loads(env, 0, NULL);
    unsigned char sig[66];
    assert_int_equal(EVP_DecodeBlock(sig, (const unsigned char *)json_string_value(json_object_get(o, "sig")), 88), 66);
    json_decref(o);
    for (size_t bit = 0; bit < 64 * 8; bit++) {
        unsigned char flipped[64];
        char b64[96];
        memcpy(flipped, sig, 64);
        flipped[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        b64[0] = '"';
        EVP_EncodeBlock((unsigned char *)b64 + 1, flipped, 64);
        strcat(b64, "\"");
        char *changed = with_member(env, "sig", b64);
        upd_reason_t why = {{0}};
        if (verify(&t, changed, &why) != UPD_EAUTH || strcmp(why.code, "bad_signature") != 0)
            fail_msg("bit %zu: expected bad_signature, got %s", bit, why.code);
        free(changed);
    }
    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

static void
test_every_one_byte_change_of_the_envelope_is_refused(void **state)
{
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *env = sign(k, "acme", 7, EXPIRES, DOC, DOC_LEN);
    size_t len = strlen(env);
    char *changed = malloc(len + 1);
    static const unsigned char subs[] = {'0', '9', 'a', 'A', '+', '/', '=', '"', ' ', ',', '\\', '\0'};
    for (size_t i = 0; i < len; i++) {
        for (size_t s = 0; s < sizeof(subs) + 2; s++) {
            unsigned char orig = (unsigned char)env[i];
            unsigned char with = s < sizeof(subs)    ? subs[s]
                                 : s == sizeof(subs) ? (unsigned char)(orig ^ 0x01)
                                                     : (unsigned char)(orig ^ 0x20);
            if (with == orig)
                continue;
            memcpy(changed, env, len + 1);
            changed[i] = (char)with;
            upd_reason_t why = {{0}};
            if (upd_state_sig_verify(&t, changed, len, DOC, DOC_LEN, "acme", 0, NOW, NULL, &why) == 0)
                fail_msg("byte %zu changed to 0x%02x was accepted: %.*s", i, with, (int)len, changed);
        }
    }
    free(changed);
    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

static void
test_a_signature_for_another_app_is_wrong_app(void **state)
{
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    /* the bucket's attacker copies beta's genuine document and envelope over acme's */
    char *env = sign(k, "beta", 9, EXPIRES, DOC, DOC_LEN);
    assert_refused(&t, env, UPD_EMISMATCH, "wrong_app");
    upd_reason_t why = {{0}};
    assert_int_equal(upd_state_sig_verify(&t, env, strlen(env), DOC, DOC_LEN, "beta", 0, NOW, NULL, &why), 0);
    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

static void
test_a_generation_below_the_last_accepted_is_a_rollback(void **state)
{
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *env = sign(k, "acme", 7, EXPIRES, DOC, DOC_LEN);
    upd_reason_t why = {{0}};
    size_t len = strlen(env);
    assert_int_equal(upd_state_sig_verify(&t, env, len, DOC, DOC_LEN, "acme", 8, NOW, NULL, &why), UPD_ECONFLICT);
    assert_string_equal(why.code, "rollback");
    assert_non_null(strstr(why.message, "generation 7, below 8"));
    assert_int_equal(upd_state_sig_verify(&t, env, len, DOC, DOC_LEN, "acme", UINT64_MAX, NOW, NULL, &why), UPD_ECONFLICT);
    /* the same generation again (a re-read, or re-signed with a later expiry) and a newer one are accepted */
    assert_int_equal(upd_state_sig_verify(&t, env, len, DOC, DOC_LEN, "acme", 7, NOW, NULL, &why), 0);
    assert_int_equal(upd_state_sig_verify(&t, env, len, DOC, DOC_LEN, "acme", 6, NOW, NULL, &why), 0);
    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

static void
test_an_expired_envelope_is_valid_but_stale(void **state)
{
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *env = sign(k, "acme", 7, EXPIRES, DOC, DOC_LEN);
    upd_state_sig_info_t info;
    size_t len = strlen(env);
    assert_int_equal(upd_state_sig_verify(&t, env, len, DOC, DOC_LEN, "acme", 0, EXPIRES - 1, &info, NULL), 0);
    assert_false(info.expired);
    assert_int_equal(upd_state_sig_verify(&t, env, len, DOC, DOC_LEN, "acme", 0, EXPIRES, &info, NULL), 0);
    assert_true(info.expired);
    assert_int_equal(info.generation, 7);
    assert_int_equal(upd_state_sig_verify(&t, env, len, DOC, DOC_LEN, "acme", 0, EXPIRES + 365 * 86400, &info, NULL), 0);
    assert_true(info.expired);
    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

static void
test_malformed_envelopes_are_refused(void **state)
{
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *env = sign(k, "acme", 7, EXPIRES, DOC, DOC_LEN);
    static const char *const members[][2] = {
        {"format", "2"},
        {"format", "\"1\""},
        {"format", "1.0"},
        {"app", "\"Acme\""},
        {"app", "\"\""},
        {"app", "7"},
        {"generation", "0"},
        {"generation", "-7"},
        {"generation", "\"7\""},
        {"generation", "7.0"},
        {"expires", "0"},
        {"expires", "-1"},
        {"expires", "null"},
        {"digest", "\"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\""},
        {"digest", "\"sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\""},
        {"digest", "\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85\""},
        {"key_id", "\"0123456789ABCDEF\""},
        {"key_id", "\"0123456789abcde\""},
        {"sig", "\"\""},
        {"sig", "\"AAAA\""},
        {"sig", "[]"},
        {"extra", "1"}, /* nothing unsigned rides along */
    };
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        char *changed = with_member(env, members[i][0], members[i][1]);
        assert_refused(&t, changed, UPD_EINVAL, "malformed");
        free(changed);
    }

    /* a member missing */
    static const char *const names[] = {"format", "app", "generation", "expires", "digest", "key_id", "sig"};
    for (size_t i = 0; i < 7; i++) {
        json_t *o = json_loads(env, 0, NULL);
        json_object_del(o, names[i]);
        char *s = json_dumps(o, JSON_COMPACT);
        assert_refused(&t, s, UPD_EINVAL, "malformed");
        free(s);
        json_decref(o);
    }

    /* a base64 spelling the encoder never writes: the same 64 bytes, stray bits in the last character */
    json_t *o = json_loads(env, 0, NULL);
    char sig[96];
    snprintf(sig, sizeof(sig), "\"%s\"", json_string_value(json_object_get(o, "sig")));
    json_decref(o);
    /* 64 bytes end in one byte of a last group: two characters and "=="; the second's low 4 bits are unused */
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *p = sig + 1 + 85;
    *p = B64[(strchr(B64, *p) - B64) ^ 0x01];
    char *stray = with_member(env, "sig", sig);
    assert_refused(&t, stray, UPD_EINVAL, "malformed");
    free(stray);
    upd_reason_t why = {{0}};

    /* not an envelope at all */
    char dup[8192];
    snprintf(dup, sizeof(dup), "%.*s,\"app\":\"acme\"}", (int)strlen(env) - 1, env);
    static const char *const texts[] = {"", "null", "[]", "\"x\"", "{", "{}", "{\"format\":1}"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        assert_refused(&t, texts[i], UPD_EINVAL, "malformed");
    assert_refused(&t, dup, UPD_EINVAL, "malformed");
    assert_int_equal(upd_state_sig_verify(&t, env, strlen(env) - 1, DOC, DOC_LEN, "acme", 0, NOW, NULL, &why), UPD_EINVAL);
    assert_int_equal(upd_state_sig_verify(&t, NULL, 0, DOC, DOC_LEN, "acme", 0, NOW, NULL, &why), UPD_EINVAL);

    /* larger than the cap: refused unread, whatever it holds */
    char *big = malloc(UPD_STATE_SIG_ENVELOPE_MAX + 2);
    memset(big, ' ', UPD_STATE_SIG_ENVELOPE_MAX + 1);
    memcpy(big, env, strlen(env));
    big[UPD_STATE_SIG_ENVELOPE_MAX + 1] = '\0';
    assert_int_equal(upd_state_sig_verify(&t, big, UPD_STATE_SIG_ENVELOPE_MAX + 1, DOC, DOC_LEN, "acme", 0, NOW, NULL, &why),
                     UPD_EINVAL);
    assert_string_equal(why.code, "malformed");
    assert_int_equal(upd_state_sig_verify(&t, big, UPD_STATE_SIG_ENVELOPE_MAX, DOC, DOC_LEN, "acme", 0, NOW, NULL, &why), 0);
    free(big);

    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

static void
test_a_refusal_names_neither_key_nor_signature(void **state)
{
    EVP_PKEY *k = new_key();
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *env = sign(k, "acme", 7, EXPIRES, DOC, DOC_LEN);
    json_t *o = json_loads(env, 0, NULL);
    char sig[89];
    snprintf(sig, sizeof(sig), "%s", json_string_value(json_object_get(o, "sig")));
    json_decref(o);
    char *changed = with_member(env, "generation", "8");
    upd_reason_t why = {{0}};
    assert_int_equal(verify(&t, changed, &why), UPD_EAUTH);
    assert_null(strstr(why.message, sig));
    assert_null(strstr(why.message, sig + 40));
    free(changed);
    free(env);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
}

static void
test_signing_refuses_what_it_cannot_vouch_for(void **state)
{
    EVP_PKEY *k = new_key(), *pub = public_of(k);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char *env = (char *)"untouched";
    size_t len = 99;
    upd_reason_t why = {{0}};
    assert_int_equal(upd_state_sig_sign(k, "acme", 0, EXPIRES, DOC, DOC_LEN, &env, &len, &why), UPD_EINVAL);
    assert_null(env);
    assert_int_equal(len, 0);
    assert_string_equal(why.code, "malformed");
    assert_int_equal(upd_state_sig_sign(k, "acme", (uint64_t)INT64_MAX + 1, EXPIRES, DOC, DOC_LEN, &env, &len, &why), UPD_EINVAL);
    assert_int_equal(upd_state_sig_sign(k, "acme", 7, 0, DOC, DOC_LEN, &env, &len, &why), UPD_EINVAL);
    assert_int_equal(upd_state_sig_sign(k, "acme", 7, -5, DOC, DOC_LEN, &env, &len, &why), UPD_EINVAL);
    assert_int_equal(upd_state_sig_sign(k, "Acme", 7, EXPIRES, DOC, DOC_LEN, &env, &len, &why), UPD_EINVAL);
    assert_int_equal(upd_state_sig_sign(k, NULL, 7, EXPIRES, DOC, DOC_LEN, &env, &len, &why), UPD_EINVAL);
    assert_int_equal(upd_state_sig_sign(ec, "acme", 7, EXPIRES, DOC, DOC_LEN, &env, &len, &why), UPD_EINVAL);
    assert_int_equal(upd_state_sig_sign(NULL, "acme", 7, EXPIRES, DOC, DOC_LEN, &env, &len, &why), UPD_EINVAL);
    assert_int_equal(upd_state_sig_sign(pub, "acme", 7, EXPIRES, DOC, DOC_LEN, &env, &len, &why), UPD_EINVAL); /* origins' keys */
    assert_null(env);
    char id[UPD_STATE_SIG_KEY_ID_LEN + 1];
    assert_int_equal(upd_state_sig_key_id(ec, id), UPD_EINVAL);
    assert_string_equal(id, "");

    /* the largest generation a JSON integer holds is signed and verified */
    upd_state_sig_trust_t t;
    trust(&t, k, NULL);
    char *top = sign(k, "acme", INT64_MAX, INT64_MAX, DOC, DOC_LEN);
    upd_state_sig_info_t info;
    assert_int_equal(upd_state_sig_verify(&t, top, strlen(top), DOC, DOC_LEN, "acme", INT64_MAX, NOW, &info, &why), 0);
    assert_int_equal(info.generation, INT64_MAX);
    free(top);
    upd_state_sig_trust_dispose(&t);
    EVP_PKEY_free(k);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(ec);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_signed_state_verifies_with_its_key),
        cmocka_unit_test(test_the_envelope_is_the_documented_bytes),
        cmocka_unit_test(test_an_empty_document_is_signed_like_any_other),
        cmocka_unit_test(test_either_of_two_trusted_keys_is_accepted),
        cmocka_unit_test(test_a_trust_set_holds_two_distinct_ed25519_keys),
        cmocka_unit_test(test_an_unknown_key_is_refused),
        cmocka_unit_test(test_a_key_id_naming_the_other_trusted_key_is_a_bad_signature),
        cmocka_unit_test(test_a_signed_field_changed_is_a_bad_signature),
        cmocka_unit_test(test_a_swapped_document_with_its_own_digest_is_a_bad_signature),
        cmocka_unit_test(test_every_one_byte_change_of_the_document_is_a_digest_mismatch),
        cmocka_unit_test(test_every_bit_of_the_signature_matters),
        cmocka_unit_test(test_every_one_byte_change_of_the_envelope_is_refused),
        cmocka_unit_test(test_a_signature_for_another_app_is_wrong_app),
        cmocka_unit_test(test_a_generation_below_the_last_accepted_is_a_rollback),
        cmocka_unit_test(test_an_expired_envelope_is_valid_but_stale),
        cmocka_unit_test(test_malformed_envelopes_are_refused),
        cmocka_unit_test(test_a_refusal_names_neither_key_nor_signature),
        cmocka_unit_test(test_signing_refuses_what_it_cannot_vouch_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
