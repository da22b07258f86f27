#ifndef UPD_RELEASE_H
#define UPD_RELEASE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "domain/ids.h"
#include "domain/version.h"

/*
 * A release: one version of one app on one channel, and the files it ships. Stored in LMDB as the
 * JSON produced by upd_release_to_json(); the origin never parses it on the hot path (feeds are
 * rendered at registration and file records are stored packed, see storage/store.h).
 */

typedef enum {
    UPD_KIND_UNKNOWN = 0,
    UPD_KIND_EXE,          /* Windows NSIS/Squirrel setup .exe */
    UPD_KIND_MSI,
    UPD_KIND_DMG,
    UPD_KIND_ZIP,          /* macOS update zip (Squirrel.Mac, electron-updater on mac) */
    UPD_KIND_APPIMAGE,
    UPD_KIND_DEB,
    UPD_KIND_RPM,
    UPD_KIND_NUPKG_FULL,   /* Squirrel.Windows NAME-VERSION-full.nupkg */
    UPD_KIND_NUPKG_DELTA,  /* Squirrel.Windows NAME-VERSION-delta.nupkg */
    UPD_KIND_TAR_GZ,       /* Tauri v1 update bundles (.app.tar.gz, .AppImage.tar.gz) */
    UPD_KIND_COUNT
} upd_kind_t;

#define UPD_SHA512_B64_LEN 88 /* base64 of 64 bytes, with padding */
#define UPD_SHA1_HEX_LEN 40
#define UPD_SIGNATURE_MAX 4096 /* minisign .sig text */
#define UPD_NOTES_MAX 65536
#define UPD_PULL_REASON_MAX 1024 /* why a release was pulled, as the operator wrote it */
#define UPD_RELEASE_MAX_FILES 64
/*
 * Block digests. Releases registered since store schema 4 carry SHA-256 per block; older ones XXH3-128 (canonical,
 * big-endian), which is not collision-resistant: the origin checks those blocks only to find a bad backend early and
 * keeps the sha512 of the whole as the proof (see loop/fetch.c).
 */
typedef enum {
    UPD_BLOCK_NONE = 0,     /* no block digests (a file of one block or less) */
    UPD_BLOCK_XXH3_128 = 1, /* registered before schema 4 */
    UPD_BLOCK_SHA256 = 2,
} upd_block_alg_t;
#define UPD_BLOCK_DIGEST_LEN 32      /* SHA-256: what registration records */
#define UPD_BLOCK_DIGEST_LEN_XXH3 16 /* XXH3-128 of releases registered before */
#define UPD_BLOCK_DIGEST_MAX 32      /* the longest of any algorithm */
#define UPD_BLOCK_SIZE_MIN (64u * 1024)
#define UPD_BLOCK_SIZE_MAX (256u * 1024 * 1024)
#define UPD_BLOCKS_MAX (1u << 20) /* digests per file: 32 MiB of them at most */

typedef struct st_upd_file_t {
    char name[UPD_FILENAME_MAX + 1];
    upd_platform_t platform;
    upd_arch_t arch;
    upd_kind_t kind;
    uint64_t size;
    char sha512[UPD_SHA512_B64_LEN + 1]; /* standard base64 with padding, as electron-builder writes it */
    char sha1[UPD_SHA1_HEX_LEN + 1];     /* lower-case hex; "" until computed from the stored bytes */
    int64_t blockmap_size;               /* size of NAME.blockmap in storage, or -1 when there is none */
    char blockmap_sha512[UPD_SHA512_B64_LEN + 1]; /* sha512 of NAME.blockmap (base64), "" when there is none */
    char *signature;                     /* Tauri minisign signature text, or NULL; owned by the file */
    /*
     * Per-block digests for verifying the bytes as they stream from object storage: SHA-256 of each
     * block_size bytes (the last block shorter), 32 bytes each (block_alg UPD_BLOCK_SHA256); releases
     * registered before store schema 4 have XXH3-128 in canonical form, 16 bytes each (UPD_BLOCK_XXH3_128).
     * Computed at registration for files over the block size; 0 blocks (NULL, UPD_BLOCK_NONE) for smaller
     * files, which the origin verifies whole with the sha512 before serving any of it.
     */
    uint32_t block_size;
    uint32_t nblocks;
    upd_block_alg_t block_alg;
    uint8_t *blocks; /* nblocks * upd_block_digest_len(block_alg) bytes, owned */
} upd_file_t;

typedef struct st_upd_release_t {
    char app[UPD_ID_MAX + 1];
    char channel[UPD_ID_MAX + 1]; /* "" for a draft: registered, its files checked, not yet published to a channel */
    char version[UPD_VERSION_MAX + 1];
    char *notes;     /* NULL when none; owned */
    char pub_date[32]; /* RFC 3339 UTC, "2026-11-29T01:52:31Z" */
    size_t nfiles;
    upd_file_t *files; /* owned */
    /*
     * Pulled (withdrawn from its channel, control/publish.c): kept, its files still served, but never again offered
     * as the channel's stable or rollout version. pulled_at is RFC 3339 UTC ("" unless pulled); pull_reason NULL
     * when none was given (owned).
     */
    bool pulled;
    char pulled_at[32];
    char *pull_reason;
} upd_release_t;

/**
 * Infers a file's kind from its name: .exe .msi .dmg .zip .AppImage .deb .rpm -full.nupkg
 * -delta.nupkg .tar.gz (case-insensitive extensions). @return UPD_KIND_UNKNOWN when none fits
 */
upd_kind_t upd_kind_from_name(const char *name);
/** Parses a kind name ("exe", "msi", "dmg", "zip", "appimage", "deb", "rpm", "nupkg-full", "nupkg-delta", "tar.gz"); -1 when unknown */
int upd_kind_parse(const char *s);
const char *upd_kind_name(upd_kind_t k);

/**
 * Number of blocks of a file of `size` bytes cut in `block_size` pieces (the last one shorter):
 * 0 when the file is not over one block, which then has no block digests.
 */
uint64_t upd_blocks_count(uint64_t size, uint32_t block_size);

/** Bytes of one block digest of that algorithm: 32 (SHA-256), 16 (XXH3-128), 0 (none or unknown). */
size_t upd_block_digest_len(upd_block_alg_t alg);
/** "sha256", "xxh3-128", or "none". */
const char *upd_block_alg_name(upd_block_alg_t alg);

/** Frees what the release owns (notes, files and their signatures) and zeroes it. */
void upd_release_dispose(upd_release_t *rel);

/**
 * Builds a release from the control API's JSON body (PROTOCOLS.md "POST /v1/apps/APP/releases"):
 * version, channel (absent or null: none, a draft), notes, files[] {name, platform, arch, size, sha512,
 * signature?, kind?}. Validates every field; sha1 and blockmap_size are left empty (-1) for the
 * caller to fill from storage; pub_date is set from `now`.
 * @param[out] err  a message naming the field that was wrong (static or in errbuf), on error
 * @return 0, or UPD_EINVAL
 */
int upd_release_from_request(const char *app, json_t *body, int64_t now, upd_release_t *out, char *errbuf, size_t errlen);

/** Writes the RFC 3339 UTC form of a unix time ("2026-11-29T01:52:31Z"), as pub_date and pulled_at hold it. */
void upd_release_format_time(int64_t t, char out[32]);

/**
 * Serialises a release (every field) for storage, and reads it back. "pulled", "pulled_at" and "pull_reason" are
 * written only for a pulled release (records written before pulling existed read back as not pulled); a draft's
 * "channel" is null.
 * @return a new reference; NULL on allocation failure
 */
json_t *upd_release_to_json(const upd_release_t *rel);
/** @return 0, or UPD_EINVAL when the JSON is not a release written by upd_release_to_json */
int upd_release_from_json(json_t *json, upd_release_t *out);

#endif
