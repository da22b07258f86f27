#include "domain/state_sig.h"
#include "base/hex.h"
#include <inttypes.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#define SIG_LEN 64
#define SIG_B64_LEN 88 /* 4 * ceil(64 / 3): two '=' of padding */
#define DIGEST_PREFIX "sha256:"
#define DIGEST_TEXT_LEN (sizeof(DIGEST_PREFIX) - 1 + 2 * SHA256_DIGEST_LENGTH)
/* the domain line, an app id, two uint64s in decimal, the digest text, three newlines, a NUL */
#define MESSAGE_MAX (sizeof(UPD_STATE_SIG_DOMAIN) - 1 + UPD_ID_MAX + 20 + 20 + DIGEST_TEXT_LEN + 3 + 1)

static bool
is_ed25519(EVP_PKEY *key)
{
    return key != NULL && EVP_PKEY_is_a(key, "ED25519");
}

int
upd_state_sig_key_id(EVP_PKEY *key, char out[UPD_STATE_SIG_KEY_ID_LEN + 1])
{
    unsigned char raw[32], md[SHA256_DIGEST_LENGTH];
    size_t len = sizeof(raw);
    out[0] = '\0';
    if (!is_ed25519(key) || EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof(raw))
        return UPD_EINVAL;
    SHA256(raw, len, md);
    upd_hex_encode(md, UPD_STATE_SIG_KEY_ID_LEN / 2, out);
    return 0;
}

static void
digest_text(const void *doc, size_t len, char out[DIGEST_TEXT_LEN + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(len != 0 ? doc : (const void *)"", len, md);
    memcpy(out, DIGEST_PREFIX, sizeof(DIGEST_PREFIX) - 1);
    upd_hex_encode(md, sizeof(md), out + sizeof(DIGEST_PREFIX) - 1);
}

/* the signed message; every input was checked, so it always fits */
static size_t
message(char buf[MESSAGE_MAX], const char *app, uint64_t generation, int64_t expires, const char *digest)
{
    int n = snprintf(buf, MESSAGE_MAX, UPD_STATE_SIG_DOMAIN "%s\n%" PRIu64 "\n%" PRId64 "\n%s", app, generation, expires, digest);
    return n > 0 && (size_t)n < MESSAGE_MAX ? (size_t)n : 0;
}

int
upd_state_sig_sign(EVP_PKEY *key, const char *app, uint64_t generation, int64_t expires, const void *doc, size_t doc_len,
                   char **out, size_t *out_len, upd_reason_t *why)
{
    *out = NULL;
    *out_len = 0;
    if (!is_ed25519(key))
        return upd_reason_set(why, UPD_EINVAL, "malformed", "the release-signing key is not an Ed25519 key");
    if (app == NULL || !upd_id_is_app(app, strlen(app)))
        return upd_reason_set(why, UPD_EINVAL, "malformed", "not an app id");
    if (generation == 0 || generation > INT64_MAX)
        return upd_reason_set(why, UPD_EINVAL, "malformed", "generation %" PRIu64 " is not between 1 and %" PRId64, generation,
                              INT64_MAX);
    if (expires <= 0)
        return upd_reason_set(why, UPD_EINVAL, "malformed", "expires %" PRId64 " is not a positive Unix time", expires);

    char digest[DIGEST_TEXT_LEN + 1], msg[MESSAGE_MAX], key_id[UPD_STATE_SIG_KEY_ID_LEN + 1], sig_b64[SIG_B64_LEN + 1];
    unsigned char sig[SIG_LEN];
    size_t sig_len = sizeof(sig);
    digest_text(doc, doc_len, digest);
    size_t msg_len = message(msg, app, generation, expires, digest);
    if (msg_len == 0 || upd_state_sig_key_id(key, key_id) != 0)
        return upd_reason_set(why, UPD_EINVAL, "malformed", "the message to sign cannot be formed");

    /* Ed25519 is one-shot: EVP_DigestSign with no digest, RFC 8032's pure variant */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool signed_ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
                     EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)msg, msg_len) == 1 && sig_len == SIG_LEN;
    EVP_MD_CTX_free(ctx);
    if (!signed_ok)
        return upd_reason_set(why, UPD_EINVAL, "malformed",
                              "OpenSSL could not sign with the release-signing key (not a private key?)");
    EVP_EncodeBlock((unsigned char *)sig_b64, sig, SIG_LEN);

    /* jansson keeps members in insertion order: the envelope reads in the documented order */
    json_t *o =
        json_pack("{s:i, s:s, s:I, s:I, s:s, s:s, s:s}", "format", UPD_STATE_SIG_FORMAT, "app", app, "generation",
                  (json_int_t)generation, "expires", (json_int_t)expires, "digest", digest, "key_id", key_id, "sig", sig_b64);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL)
        return upd_reason_set(why, UPD_ENOMEM, NULL, "out of memory formatting the envelope");
    *out = text;
    *out_len = strlen(text);
    return 0;
}

/* ---- verifying ---- */

void
upd_state_sig_trust_init(upd_state_sig_trust_t *t)
{
    memset(t, 0, sizeof(*t));
}

void
upd_state_sig_trust_dispose(upd_state_sig_trust_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        EVP_PKEY_free(t->keys[i].key);
    upd_state_sig_trust_init(t);
}

int
upd_state_sig_trust_add(upd_state_sig_trust_t *t, EVP_PKEY *key, upd_reason_t *why)
{
    char id[UPD_STATE_SIG_KEY_ID_LEN + 1];
    if (upd_state_sig_key_id(key, id) != 0)
        return upd_reason_set(why, UPD_EINVAL, "malformed", "a release key must be an Ed25519 public key");
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->keys[i].key_id, id) == 0)
            return upd_reason_set(why, UPD_EEXIST, "duplicate_key", "release key %s is listed twice", id);
    if (t->n == UPD_STATE_SIG_KEYS_MAX)
        return upd_reason_set(why, UPD_ETOOBIG, "too_many_keys",
                              "at most %d release keys are trusted at once (the current one "
                              "and the next, during a rotation)",
                              UPD_STATE_SIG_KEYS_MAX);
    if (EVP_PKEY_up_ref(key) != 1)
        return upd_reason_set(why, UPD_ENOMEM, NULL, "out of memory");
    memcpy(t->keys[t->n].key_id, id, sizeof(id));
    t->keys[t->n].key = key;
    t->n++;
    return 0;
}

static bool
is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* a string member of exactly len bytes (0: any length up to max), NULL otherwise */
static const char *
string_member(json_t *o, const char *name, size_t *len)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    *len = json_string_length(v);
    return strlen(s) == *len ? s : NULL; /* no NUL inside */
}

/* a JSON integer member in [min, INT64_MAX] */
static bool
integer_member(json_t *o, const char *name, json_int_t min, json_int_t *out)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return false;
    *out = json_integer_value(v);
    return true;
}

/* the fields of an envelope, each checked for its one spelling */
typedef struct {
    const char *app, *digest, *key_id;
    json_int_t generation, expires;
    unsigned char sig[SIG_LEN];
} fields_t;

static int
parse(json_t *o, fields_t *f, upd_reason_t *why)
{
    static const char *const members[] = {"format", "app", "generation", "expires", "digest", "key_id", "sig"};
    size_t len;
    json_int_t format;
    if (!json_is_object(o))
        return upd_reason_set(why, UPD_EINVAL, "malformed", "the state signature is not a JSON object");
    const char *name;
    json_t *v;
    json_object_foreach(o, name, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(members) / sizeof(members[0]) && !known; i++)
            known = strcmp(name, members[i]) == 0;
        if (!known)
            return upd_reason_set(why, UPD_EINVAL, "malformed", "the state signature has an unknown member \"%.64s\"", name);
    }
    if (!integer_member(o, "format", 0, &format) || format != UPD_STATE_SIG_FORMAT)
        return upd_reason_set(why, UPD_EINVAL, "malformed", "the state signature's \"format\" is not %d", UPD_STATE_SIG_FORMAT);
    if ((f->app = string_member(o, "app", &len)) == NULL || !upd_id_is_app(f->app, len))
        return upd_reason_set(why, UPD_EINVAL, "malformed", "the state signature's \"app\" is not an app id");
    if (!integer_member(o, "generation", 1, &f->generation))
        return upd_reason_set(why, UPD_EINVAL, "malformed", "the state signature's \"generation\" is not a positive integer");
    if (!integer_member(o, "expires", 1, &f->expires))
        return upd_reason_set(why, UPD_EINVAL, "malformed", "the state signature's \"expires\" is not a positive Unix time");
    if ((f->digest = string_member(o, "digest", &len)) == NULL || len != DIGEST_TEXT_LEN ||
        memcmp(f->digest, DIGEST_PREFIX, sizeof(DIGEST_PREFIX) - 1) != 0 ||
        !is_lower_hex(f->digest + sizeof(DIGEST_PREFIX) - 1, len - (sizeof(DIGEST_PREFIX) - 1)))
        return upd_reason_set(why, UPD_EINVAL, "malformed",
                              "the state signature's \"digest\" is not sha256: and 64 lower-case hex digits");
    if ((f->key_id = string_member(o, "key_id", &len)) == NULL || len != UPD_STATE_SIG_KEY_ID_LEN || !is_lower_hex(f->key_id, len))
        return upd_reason_set(why, UPD_EINVAL, "malformed", "the state signature's \"key_id\" is not %d lower-case hex digits",
                              UPD_STATE_SIG_KEY_ID_LEN);
    /* base64 of 64 bytes is 88 characters ending "=="; EVP_DecodeBlock counts the padding as bytes and tolerates
     * spellings the encoder never writes (stray bits, blanks), so the text must be what encoding the bytes gives back */
    const char *sig = string_member(o, "sig", &len);
    unsigned char decoded[SIG_B64_LEN / 4 * 3];
    char again[SIG_B64_LEN + 1];
    if (sig == NULL || len != SIG_B64_LEN || EVP_DecodeBlock(decoded, (const unsigned char *)sig, SIG_B64_LEN) != sizeof(decoded) ||
        EVP_EncodeBlock((unsigned char *)again, decoded, SIG_LEN) != SIG_B64_LEN || memcmp(again, sig, SIG_B64_LEN) != 0)
        return upd_reason_set(why, UPD_EINVAL, "malformed", "the state signature's \"sig\" is not the base64 of 64 bytes");
    memcpy(f->sig, decoded, SIG_LEN);
    return 0;
}

int
upd_state_sig_verify(const upd_state_sig_trust_t *t, const char *envelope, size_t envelope_len, const void *doc, size_t doc_len,
                     const char *app, uint64_t last_generation, int64_t now, upd_state_sig_info_t *info, upd_reason_t *why)
{
    if (info != NULL)
        memset(info, 0, sizeof(*info));
    if (envelope_len > UPD_STATE_SIG_ENVELOPE_MAX)
        return upd_reason_set(why, UPD_EINVAL, "malformed", "the state signature is larger than %d bytes",
                              UPD_STATE_SIG_ENVELOPE_MAX);

    json_error_t jerr;
    json_t *o = json_loadb(envelope != NULL ? envelope : "", envelope_len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL)
        return upd_reason_set(why, UPD_EINVAL, "malformed", "the state signature is not JSON: %s", jerr.text);
    fields_t f;
    int r = parse(o, &f, why);
    if (r != 0)
        goto Exit;

    EVP_PKEY *key = NULL;
    for (size_t i = 0; i < t->n && key == NULL; i++)
        if (strcmp(t->keys[i].key_id, f.key_id) == 0)
            key = t->keys[i].key;
    if (key == NULL) {
        r = upd_reason_set(why, UPD_EAUTH, "unknown_key", "the state of %s is signed by key %s, which this origin does not trust",
                           f.app, f.key_id);
        goto Exit;
    }

    char msg[MESSAGE_MAX];
    size_t msg_len = message(msg, f.app, (uint64_t)f.generation, (int64_t)f.expires, f.digest);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        r = upd_reason_set(why, UPD_ENOMEM, NULL, "out of memory");
        goto Exit;
    }
    bool good = msg_len != 0 && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
                EVP_DigestVerify(ctx, f.sig, SIG_LEN, (const unsigned char *)msg, msg_len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!good) {
        r = upd_reason_set(why, UPD_EAUTH, "bad_signature", "the state signature of %s is not key %s's", f.app, f.key_id);
        goto Exit;
    }

    /* authentic from here on: what remains is whether it is the signature of this document */
    if (app == NULL || strcmp(f.app, app) != 0) {
        r = upd_reason_set(why, UPD_EMISMATCH, "wrong_app", "the state signature is for %s, not %.64s", f.app,
                           app != NULL ? app : "");
        goto Exit;
    }
    char digest[DIGEST_TEXT_LEN + 1];
    digest_text(doc, doc_len, digest);
    if (strcmp(digest, f.digest) != 0) {
        r = upd_reason_set(why, UPD_EMISMATCH, "digest_mismatch",
                           "the state document of %s (%zu bytes) is not the one signed at generation %" PRId64, f.app, doc_len,
                           (int64_t)f.generation);
        goto Exit;
    }
    if ((uint64_t)f.generation < last_generation) {
        r = upd_reason_set(why, UPD_ECONFLICT, "rollback",
                           "the signed state of %s is at generation %" PRId64 ", below %" PRIu64 " already accepted", f.app,
                           (int64_t)f.generation, last_generation);
        goto Exit;
    }
    if (info != NULL) {
        info->generation = (uint64_t)f.generation;
        info->expires = (int64_t)f.expires;
        memcpy(info->key_id, f.key_id, sizeof(info->key_id));
        info->expired = now >= (int64_t)f.expires;
    }

Exit:
    json_decref(o);
    return r;
}
