#ifndef UPD_STS_RELEASE_KEY_H
#define UPD_STS_RELEASE_KEY_H

#include "base/err.h"
#include "domain/state_sig.h"
#include "storage/keyfile.h"
#include <openssl/evp.h>

/*
 * The approval service's release-signing key in its data directory: DIR/release-key.pem (storage/keyfile.h, mode
 * 0600), DIR itself mode 0700 when the service creates it. The key signs state envelopes (domain/state_sig.h); its
 * public half is what every origin trusts (trust.release_keys). The private key never leaves DIR: nothing here
 * prints, logs or returns its bytes. Blocking file I/O.
 */

#define UPD_STS_RELEASE_KEY_FILE "release-key.pem"

/** A key's public face: what an operator copies into the origins' config. */
typedef struct st_upd_sts_public_t {
    char path[4096];                           /* DIR/release-key.pem */
    char line[UPD_KEYFILE_PUBLIC_MAX];         /* "ed25519:..." */
    char key_id[UPD_STATE_SIG_KEY_ID_LEN + 1]; /* as in the envelopes it signs */
} upd_sts_public_t;

/**
 * Creates the release-signing key: DIR (mode 0700; an existing directory is used as it is) and a new key in
 * DIR/release-key.pem. An existing key file is never replaced.
 * @param[out] pub  the new key's public face
 * @param why       filled on failure (NULL is fine)
 * @return 0; UPD_EEXIST (the key file exists: nothing changed); UPD_EINVAL (DIR is not a directory, or the path is
 *         too long); UPD_EIO; UPD_ENOMEM
 */
int upd_sts_release_key_init(const char *dir, upd_sts_public_t *pub, upd_reason_t *why);

/**
 * Reads the release-signing key of DIR (upd_keyfile_read_private: refused when group or others may read it).
 * @param[out] key  the private key (NULL: not wanted); the caller frees it with EVP_PKEY_free
 * @param[out] pub  its public face (NULL: not wanted)
 * @return 0 or an error of upd_keyfile_read_private (UPD_ENOTFOUND: no key yet, updraft-sts init makes one)
 */
int upd_sts_release_key_load(const char *dir, EVP_PKEY **key, upd_sts_public_t *pub, upd_reason_t *why);

#endif
