#include "domain/release.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/err.h"
#include "base/hex.h"

/* ---- kinds ---- */

static const char *const kind_names[UPD_KIND_COUNT] = {
    [UPD_KIND_UNKNOWN] = "unknown",         [UPD_KIND_EXE] = "exe",   [UPD_KIND_MSI] = "msi",
    [UPD_KIND_DMG] = "dmg",                 [UPD_KIND_ZIP] = "zip",   [UPD_KIND_APPIMAGE] = "appimage",
    [UPD_KIND_DEB] = "deb",                 [UPD_KIND_RPM] = "rpm",   [UPD_KIND_NUPKG_FULL] = "nupkg-full",
    [UPD_KIND_NUPKG_DELTA] = "nupkg-delta", [UPD_KIND_TAR_GZ] = "tar.gz",
};

/*
 * Suffixes in the order they must be tried: ".tar.gz" before anything it contains (".AppImage.tar.gz" is a Tauri v1
 * bundle, not an AppImage), and the nupkg suffixes carry Squirrel's "-full"/"-delta" part. A bare ".nupkg" is neither.
 */
static const struct {
    const char *suffix;
    upd_kind_t kind;
} kind_suffixes[] = {
    {".tar.gz", UPD_KIND_TAR_GZ}, {"-full.nupkg", UPD_KIND_NUPKG_FULL}, {"-delta.nupkg", UPD_KIND_NUPKG_DELTA},
    {".exe", UPD_KIND_EXE},       {".msi", UPD_KIND_MSI},               {".dmg", UPD_KIND_DMG},
    {".zip", UPD_KIND_ZIP},       {".appimage", UPD_KIND_APPIMAGE},     {".deb", UPD_KIND_DEB},
    {".rpm", UPD_KIND_RPM},
};

upd_kind_t
upd_kind_from_name(const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i != sizeof(kind_suffixes) / sizeof(kind_suffixes[0]); ++i) {
        size_t sl = strlen(kind_suffixes[i].suffix);
        /* longer than the suffix: a file named just ".exe" has no name in front of its extension */
        if (len > sl && strcasecmp(name + len - sl, kind_suffixes[i].suffix) == 0)
            return kind_suffixes[i].kind;
    }
    return UPD_KIND_UNKNOWN;
}

int
upd_kind_parse(const char *s)
{
    /* from 1: "unknown" names no kind a file can have */
    for (int k = 1; k != UPD_KIND_COUNT; ++k)
        if (strcmp(s, kind_names[k]) == 0)
            return k;
    return -1;
}

const char *
upd_kind_name(upd_kind_t k)
{
    return (unsigned)k < UPD_KIND_COUNT ? kind_names[k] : NULL;
}

/* ---- lifetime ---- */

void
upd_release_dispose(upd_release_t *rel)
{
    if (rel->files != NULL) {
        for (size_t i = 0; i != rel->nfiles; ++i) {
            free(rel->files[i].signature);
            free(rel->files[i].blocks);
        }
    }
    free(rel->files);
    free(rel->notes);
    free(rel->pull_reason);
    memset(rel, 0, sizeof(*rel));
}

/* ---- validation helpers ---- */

static int
fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf != NULL && errlen != 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return UPD_EINVAL;
}

/*
 * electron-builder writes the sha512 as standard base64 of the 64-byte digest with "==" padding: exactly 88
 * characters. EVP_DecodeBlock alone is too lenient (it skips surrounding blanks and ignores the trailing bits of the
 * last group), so the digest is encoded again and must give back the very same text: only the canonical form passes,
 * and the store's raw copy always matches what feeds publish.
 */
static bool
sha512_is_canonical_b64(const char *s, size_t len)
{
    unsigned char raw[UPD_SHA512_B64_LEN / 4 * 3];
    char again[UPD_SHA512_B64_LEN + 1];
    if (len != UPD_SHA512_B64_LEN || memchr(s, '\0', len) != NULL)
        return false;
    if (EVP_DecodeBlock(raw, (const unsigned char *)s, (int)len) != (int)sizeof(raw))
        return false;
    EVP_EncodeBlock((unsigned char *)again, raw, 64);
    return memcmp(again, s, len) == 0;
}

/* A JSON string of 1..max bytes without NUL; NULL otherwise. */
static const char *
string_of(json_t *v, size_t max, size_t *len)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    size_t l = json_string_length(v);
    if (l == 0 || l > max || memchr(s, '\0', l) != NULL)
        return NULL;
    *len = l;
    return s;
}

static int
file_from_request(json_t *jf, size_t i, upd_file_t *f, char *errbuf, size_t errlen)
{
    const char *s;
    size_t len;
    json_t *v;

    if (!json_is_object(jf))
        return fail(errbuf, errlen, "files[%zu]: expected an object", i);

    if ((s = string_of(json_object_get(jf, "name"), UPD_FILENAME_MAX, &len)) == NULL || !upd_id_is_filename(s, len))
        return fail(errbuf, errlen, "files[%zu].name: expected 1-%d bytes of [A-Za-z0-9._+-], not \".\" or \"..\"", i,
                    UPD_FILENAME_MAX);
    memcpy(f->name, s, len + 1);

    int p;
    if ((s = string_of(json_object_get(jf, "platform"), 16, &len)) == NULL || (p = upd_platform_parse(s, len)) < 0)
        return fail(errbuf, errlen, "files[%zu].platform: expected windows, mac or linux", i);
    f->platform = (upd_platform_t)p;

    /* arch may be left out: x64 is what a build is when nobody says otherwise (electron-builder's default) */
    int a = UPD_ARCH_X64;
    if ((v = json_object_get(jf, "arch")) != NULL && ((s = string_of(v, 16, &len)) == NULL || (a = upd_arch_parse(s, len)) < 0))
        return fail(errbuf, errlen, "files[%zu].arch: expected x64, arm64, ia32 or universal", i);
    f->arch = (upd_arch_t)a;

    v = json_object_get(jf, "size");
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail(errbuf, errlen, "files[%zu].size: expected a byte count (an integer >= 0)", i);
    f->size = (uint64_t)json_integer_value(v);

    if ((s = string_of(json_object_get(jf, "sha512"), UPD_SHA512_B64_LEN, &len)) == NULL || !sha512_is_canonical_b64(s, len))
        return fail(errbuf, errlen, "files[%zu].sha512: not %d characters of base64 (the 64-byte digest, padded)", i,
                    UPD_SHA512_B64_LEN);
    memcpy(f->sha512, s, len + 1);

    if ((v = json_object_get(jf, "signature")) != NULL && !json_is_null(v)) {
        if ((s = string_of(v, UPD_SIGNATURE_MAX, &len)) == NULL)
            return fail(errbuf, errlen, "files[%zu].signature: expected the text of the .sig file (1-%d bytes)", i,
                        UPD_SIGNATURE_MAX);
        if ((f->signature = strndup(s, len)) == NULL)
            abort();
    }

    if ((v = json_object_get(jf, "kind")) != NULL && !json_is_null(v)) {
        int k = json_is_string(v) ? upd_kind_parse(json_string_value(v)) : -1;
        if (k < 0)
            return fail(errbuf, errlen,
                        "files[%zu].kind: expected exe, msi, dmg, zip, appimage, deb, rpm, nupkg-full, nupkg-delta or tar.gz", i);
        f->kind = (upd_kind_t)k;
    } else if ((f->kind = upd_kind_from_name(f->name)) == UPD_KIND_UNKNOWN) {
        return fail(errbuf, errlen, "files[%zu].name: the extension says nothing of the file's kind: give \"kind\"", i);
    }
    return 0;
}

void
upd_release_format_time(int64_t now, char out[32])
{
    time_t t = (time_t)now;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        strcpy(out, "1970-01-01T00:00:00Z");
}

int
upd_release_from_request(const char *app, json_t *body, int64_t now, upd_release_t *out, char *errbuf, size_t errlen)
{
    const char *s;
    size_t len;
    json_t *v;
    upd_version_t ver;
    int err = UPD_EINVAL;

    memset(out, 0, sizeof(*out));
    if (!upd_id_is_app(app, strlen(app))) {
        fail(errbuf, errlen, "app: expected [a-z0-9][a-z0-9-]{0,62}");
        goto Error;
    }
    strcpy(out->app, app);
    if (!json_is_object(body)) {
        fail(errbuf, errlen, "expected a JSON object");
        goto Error;
    }

    if ((s = string_of(json_object_get(body, "version"), UPD_VERSION_MAX, &len)) == NULL || upd_version_parse(s, len, &ver) != 0) {
        fail(errbuf, errlen, "version: expected SemVer 2.0 (1.2.3, 1.3.0-beta.2), at most %d bytes", UPD_VERSION_MAX);
        goto Error;
    }
    memcpy(out->version, s, len + 1);

    if ((v = json_object_get(body, "channel")) == NULL || json_is_null(v)) {
        out->channel[0] = '\0'; /* a draft: published to a channel later */
    } else if ((s = string_of(v, UPD_ID_MAX, &len)) != NULL && upd_id_is_channel(s, len)) {
        memcpy(out->channel, s, len + 1);
    } else {
        fail(errbuf, errlen, "channel: expected [a-z0-9][a-z0-9-]{0,62}");
        goto Error;
    }

    if ((v = json_object_get(body, "notes")) != NULL && !json_is_null(v)) {
        /* empty notes are as good as none: feeds then leave releaseNotes out */
        if (!json_is_string(v) || json_string_length(v) > UPD_NOTES_MAX ||
            memchr(json_string_value(v), '\0', json_string_length(v)) != NULL) {
            fail(errbuf, errlen, "notes: expected a string of at most %d bytes", UPD_NOTES_MAX);
            goto Error;
        }
        if (json_string_length(v) != 0 && (out->notes = strdup(json_string_value(v))) == NULL)
            abort();
    }

    json_t *files = json_object_get(body, "files");
    if (!json_is_array(files) || json_array_size(files) == 0 || json_array_size(files) > UPD_RELEASE_MAX_FILES) {
        fail(errbuf, errlen, "files: expected an array of 1 to %d files", UPD_RELEASE_MAX_FILES);
        goto Error;
    }
    if ((out->files = calloc(json_array_size(files), sizeof(*out->files))) == NULL)
        abort();
    for (size_t i = 0; i != json_array_size(files); ++i) {
        upd_file_t *f = &out->files[i];
        f->blockmap_size = -1;
        ++out->nfiles; /* counted before it is filled, so dispose frees a signature of a file that failed later */
        if (file_from_request(json_array_get(files, i), i, f, errbuf, errlen) != 0)
            goto Error;
        /* two files of one name would be one object in storage and one key in the store */
        for (size_t k = 0; k != i; ++k) {
            if (strcmp(out->files[k].name, f->name) == 0) {
                fail(errbuf, errlen, "files[%zu].name: %s is already files[%zu]", i, f->name, k);
                goto Error;
            }
        }
    }

    upd_release_format_time(now, out->pub_date);
    return 0;

Error:
    upd_release_dispose(out);
    return err;
}

uint64_t
upd_blocks_count(uint64_t size, uint32_t block_size)
{
    if (block_size == 0 || size <= block_size)
        return 0;
    return (size + block_size - 1) / block_size;
}

size_t
upd_block_digest_len(upd_block_alg_t alg)
{
    switch (alg) {
    case UPD_BLOCK_SHA256:
        return UPD_BLOCK_DIGEST_LEN;
    case UPD_BLOCK_XXH3_128:
        return UPD_BLOCK_DIGEST_LEN_XXH3;
    default:
        return 0;
    }
}

const char *
upd_block_alg_name(upd_block_alg_t alg)
{
    switch (alg) {
    case UPD_BLOCK_SHA256:
        return "sha256";
    case UPD_BLOCK_XXH3_128:
        return "xxh3-128";
    default:
        return "none";
    }
}

/* ---- storage form ---- */

static json_t *
hex_string(const uint8_t *p, size_t n)
{
    char *s = malloc(n * 2 + 1);
    if (s == NULL)
        return NULL;
    upd_hex_encode(p, n, s);
    json_t *j = json_stringn(s, n * 2);
    free(s);
    return j;
}

/*
 * Reads "block_size", "blocks" (lower-case hex) and "block_digest" of a stored file; no block_size and no blocks means
 * no blocks. "block_digest" is "sha256"; records written before it existed have none and hold XXH3-128 digests.
 */
static int
blocks_from_json(json_t *jf, upd_file_t *f)
{
    json_t *bs = json_object_get(jf, "block_size"), *bl = json_object_get(jf, "blocks"), *alg = json_object_get(jf, "block_digest");
    if (bs == NULL && bl == NULL && alg == NULL)
        return 0;
    if (!json_is_integer(bs) || json_integer_value(bs) < UPD_BLOCK_SIZE_MIN || json_integer_value(bs) > UPD_BLOCK_SIZE_MAX ||
        !json_is_string(bl))
        return UPD_EINVAL;
    if (alg == NULL)
        f->block_alg = UPD_BLOCK_XXH3_128;
    else if (json_is_string(alg) && strcmp(json_string_value(alg), "sha256") == 0)
        f->block_alg = UPD_BLOCK_SHA256;
    else
        return UPD_EINVAL;
    size_t dlen = upd_block_digest_len(f->block_alg);
    f->block_size = (uint32_t)json_integer_value(bs);
    uint64_t n = upd_blocks_count(f->size, f->block_size);
    const char *hex = json_string_value(bl);
    if (n == 0 || n > UPD_BLOCKS_MAX || json_string_length(bl) != n * dlen * 2)
        return UPD_EINVAL;
    if ((f->blocks = malloc(n * dlen)) == NULL)
        abort();
    f->nblocks = (uint32_t)n;
    return upd_hex_decode(hex, n * dlen, f->blocks) ? 0 : UPD_EINVAL;
}

json_t *
upd_release_to_json(const upd_release_t *rel)
{
    json_t *files = json_array(), *root = NULL;
    if (files == NULL)
        return NULL;
    for (size_t i = 0; i != rel->nfiles; ++i) {
        const upd_file_t *f = &rel->files[i];
        json_t *jf = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:I}", "name", f->name, "platform",
                               upd_platform_name(f->platform), "arch", upd_arch_name(f->arch), "kind", upd_kind_name(f->kind),
                               "size", (json_int_t)f->size, "sha512", f->sha512, "sha1", f->sha1, "blockmap_size",
                               (json_int_t)f->blockmap_size);
        if (jf == NULL || (f->signature != NULL && json_object_set_new(jf, "signature", json_string(f->signature)) != 0) ||
            (f->blockmap_sha512[0] != '\0' && json_object_set_new(jf, "blockmap_sha512", json_string(f->blockmap_sha512)) != 0) ||
            (f->nblocks != 0 &&
             (json_object_set_new(jf, "block_size", json_integer(f->block_size)) != 0 ||
              json_object_set_new(jf, "blocks", hex_string(f->blocks, (size_t)f->nblocks * upd_block_digest_len(f->block_alg))) !=
                  0 ||
              (f->block_alg == UPD_BLOCK_SHA256 && json_object_set_new(jf, "block_digest", json_string("sha256")) != 0))) ||
            json_array_append_new(files, jf) != 0) {
            json_decref(jf);
            goto Error;
        }
    }
    root = json_pack("{s:s, s:o, s:s, s:s, s:o}", "app", rel->app, "channel",
                     rel->channel[0] != '\0' ? json_string(rel->channel) : json_null(), "version", rel->version, "pub_date",
                     rel->pub_date, "files", files);
    files = NULL; /* "o" stole the reference, even when json_pack failed */
    if (root == NULL || (rel->notes != NULL && json_object_set_new(root, "notes", json_string(rel->notes)) != 0))
        goto Error;
    if (rel->pulled && (json_object_set_new(root, "pulled", json_true()) != 0 ||
                        json_object_set_new(root, "pulled_at", json_string(rel->pulled_at)) != 0 ||
                        (rel->pull_reason != NULL && json_object_set_new(root, "pull_reason", json_string(rel->pull_reason)) != 0)))
        goto Error;
    return root;

Error:
    json_decref(files);
    json_decref(root);
    return NULL;
}

/* Copies a JSON string into a fixed buffer; fails when it is absent, not a string or does not fit. */
static int
copy_string(json_t *obj, const char *key, char *dst, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return UPD_EINVAL;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int
name_of(json_t *obj, const char *key, int (*parse)(const char *, size_t))
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? parse(json_string_value(v), json_string_length(v)) : -1;
}

/* unlike upd_kind_parse, reads back "unknown" too: the storage form holds whatever kind the release had */
static int
kind_parse_len(const char *s, size_t len)
{
    return strcmp(s, upd_kind_name(UPD_KIND_UNKNOWN)) == 0 ? UPD_KIND_UNKNOWN : upd_kind_parse(s);
}

int
upd_release_from_json(json_t *json, upd_release_t *out)
{
    json_t *v, *files;

    memset(out, 0, sizeof(*out));
    /* a draft's channel is null */
    json_t *channel = json_object_get(json, "channel");
    if (!json_is_object(json) || copy_string(json, "app", out->app, sizeof(out->app)) != 0 ||
        (!json_is_null(channel) && copy_string(json, "channel", out->channel, sizeof(out->channel)) != 0) ||
        copy_string(json, "version", out->version, sizeof(out->version)) != 0 ||
        copy_string(json, "pub_date", out->pub_date, sizeof(out->pub_date)) != 0)
        goto Error;
    if ((v = json_object_get(json, "notes")) != NULL) {
        if (!json_is_string(v))
            goto Error;
        if ((out->notes = strdup(json_string_value(v))) == NULL)
            abort();
    }
    if ((v = json_object_get(json, "pulled")) != NULL) {
        if (!json_is_boolean(v))
            goto Error;
        out->pulled = json_is_true(v);
    }
    if (out->pulled && copy_string(json, "pulled_at", out->pulled_at, sizeof(out->pulled_at)) != 0)
        goto Error;
    if (out->pulled && (v = json_object_get(json, "pull_reason")) != NULL) {
        if (!json_is_string(v))
            goto Error;
        if ((out->pull_reason = strdup(json_string_value(v))) == NULL)
            abort();
    }
    files = json_object_get(json, "files");
    if (!json_is_array(files) || json_array_size(files) > UPD_RELEASE_MAX_FILES)
        goto Error;
    if (json_array_size(files) != 0 && (out->files = calloc(json_array_size(files), sizeof(*out->files))) == NULL)
        abort();
    for (size_t i = 0; i != json_array_size(files); ++i) {
        json_t *jf = json_array_get(files, i);
        upd_file_t *f = &out->files[i];
        int p, a, k;
        ++out->nfiles;
        if (!json_is_object(jf) || copy_string(jf, "name", f->name, sizeof(f->name)) != 0 ||
            copy_string(jf, "sha512", f->sha512, sizeof(f->sha512)) != 0 || copy_string(jf, "sha1", f->sha1, sizeof(f->sha1)) != 0 ||
            (p = name_of(jf, "platform", upd_platform_parse)) < 0 || (a = name_of(jf, "arch", upd_arch_parse)) < 0 ||
            (k = name_of(jf, "kind", kind_parse_len)) < 0)
            goto Error;
        f->platform = (upd_platform_t)p;
        f->arch = (upd_arch_t)a;
        f->kind = (upd_kind_t)k;
        if (!json_is_integer(v = json_object_get(jf, "size")) || json_integer_value(v) < 0)
            goto Error;
        f->size = (uint64_t)json_integer_value(v);
        if (!json_is_integer(v = json_object_get(jf, "blockmap_size")) || json_integer_value(v) < -1)
            goto Error;
        f->blockmap_size = json_integer_value(v);
        if ((v = json_object_get(jf, "blockmap_sha512")) != NULL &&
            copy_string(jf, "blockmap_sha512", f->blockmap_sha512, sizeof(f->blockmap_sha512)) != 0)
            goto Error;
        if (blocks_from_json(jf, f) != 0)
            goto Error;
        if ((v = json_object_get(jf, "signature")) != NULL) {
            if (!json_is_string(v))
                goto Error;
            if ((f->signature = strdup(json_string_value(v))) == NULL)
                abort();
        }
    }
    return 0;

Error:
    upd_release_dispose(out);
    return UPD_EINVAL;
}
