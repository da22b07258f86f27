#ifndef UPD_KEYFILE_H
#define UPD_KEYFILE_H

#include "base/err.h"
#include <openssl/evp.h>
#include <stddef.h>

/*
 * Ed25519 key files: the release-signing key of the approval service (updraft-sts) on its disk, and the one-line
 * public form the origins are configured with (trust.release_keys). The signed format itself: domain/state_sig.h.
 *
 *   private key file   PEM, PKCS#8 ("-----BEGIN PRIVATE KEY-----"), unencrypted, mode 0600, created once and never
 *                      overwritten; a file group or others may read or write is refused, as ssh refuses one
 *   public key line    "ed25519:" and the standard base64 (padded, 44 characters) of the raw 32-byte public key
 *
 * Keys are OpenSSL 3 EVP_PKEYs (free them with EVP_PKEY_free, which wipes the private half). Every buffer of this
 * module that held private bytes is wiped (OPENSSL_cleanse) before it is freed. Blocking file I/O: never call these
 * on an event loop.
 */

#define UPD_KEYFILE_PUBLIC_PREFIX "ed25519:"
#define UPD_KEYFILE_PUBLIC_LEN (sizeof(UPD_KEYFILE_PUBLIC_PREFIX) - 1 + 44)
#define UPD_KEYFILE_PUBLIC_MAX (UPD_KEYFILE_PUBLIC_LEN + 1) /* a public key line and its NUL */
#define UPD_KEYFILE_MAX_BYTES 16384                         /* a private key file larger than this is refused unread */

/**
 * Generates a new Ed25519 key pair from OpenSSL's random generator.
 * @param[out] out  the key; the caller frees it with EVP_PKEY_free
 * @return 0; UPD_ENOMEM when OpenSSL could not generate it
 */
int upd_keyfile_generate(EVP_PKEY **out);

/**
 * Writes a private key to a new file: PEM PKCS#8, created with O_CREAT|O_EXCL|O_NOFOLLOW mode 0600 (the umask may
 * only narrow it), written whole, fsync'ed, and its directory fsync'ed, so that the key outlives a crash. A file
 * that is already there (or a link in its place) is never touched. When writing fails after the file was created,
 * the partial file is removed.
 * @param key  an Ed25519 private key; borrowed
 * @param why  filled on failure (NULL is fine), naming the path; never key bytes
 * @return 0; UPD_EEXIST (path exists: left as it is); UPD_EINVAL (not an Ed25519 private key); UPD_EIO (errno in
 *         why's message); UPD_ENOMEM
 */
int upd_keyfile_write_private(const char *path, EVP_PKEY *key, upd_reason_t *why);

/**
 * Reads a private key file of upd_keyfile_write_private. Refused before it is read: a file that is not a regular file
 * (a link is not followed), larger than UPD_KEYFILE_MAX_BYTES, or whose mode lets group or others read or write it
 * ("mode 0644 lets group or others read it: chmod 600 PATH"). Refused after: not a PEM private key (an encrypted one
 * is refused, never prompted for), not Ed25519.
 * @param[out] out  the key; the caller frees it with EVP_PKEY_free
 * @param why       filled on failure (NULL is fine); never key bytes
 * @return 0; UPD_ENOTFOUND (no such file); UPD_EFORBIDDEN (the mode); UPD_EINVAL (not an Ed25519 private key in PEM,
 *         not a regular file); UPD_ETOOBIG; UPD_EIO
 */
int upd_keyfile_read_private(const char *path, EVP_PKEY **out, upd_reason_t *why);

/**
 * Formats a key's public half as its one-line text, "ed25519:<base64>".
 * @param key  an Ed25519 key, public or private; borrowed
 * @param[out] out  UPD_KEYFILE_PUBLIC_LEN characters and a NUL
 * @return 0; UPD_EINVAL when key is not Ed25519
 */
int upd_keyfile_public_format(EVP_PKEY *key, char out[UPD_KEYFILE_PUBLIC_MAX]);

/**
 * Parses a public key line of upd_keyfile_public_format (exactly: the prefix, 44 characters of canonical base64,
 * nothing around them).
 * @param[out] out  a public key; the caller frees it with EVP_PKEY_free
 * @param why       filled on failure (NULL is fine)
 * @return 0; UPD_EINVAL (code "malformed"); UPD_ENOMEM
 */
int upd_keyfile_public_parse(const char *text, size_t len, EVP_PKEY **out, upd_reason_t *why);

#endif
