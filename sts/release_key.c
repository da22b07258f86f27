#include "sts/release_key.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int
key_path(const char *dir, upd_sts_public_t *pub, upd_reason_t *why)
{
    memset(pub, 0, sizeof(*pub));
    int n = snprintf(pub->path, sizeof(pub->path), "%s/%s", dir, UPD_STS_RELEASE_KEY_FILE);
    if (n < 0 || (size_t)n >= sizeof(pub->path))
        return upd_reason_set(why, UPD_EINVAL, NULL, "the data directory's path is too long");
    return 0;
}

static int
describe(EVP_PKEY *key, upd_sts_public_t *pub, upd_reason_t *why)
{
    if (upd_keyfile_public_format(key, pub->line) != 0 || upd_state_sig_key_id(key, pub->key_id) != 0)
        return upd_reason_set(why, UPD_EINVAL, "malformed", "%s: not an Ed25519 key", pub->path);
    return 0;
}

int
upd_sts_release_key_init(const char *dir, upd_sts_public_t *pub, upd_reason_t *why)
{
    EVP_PKEY *key = NULL;
    int r = key_path(dir, pub, why);
    if (r != 0)
        return r;
    if (mkdir(dir, 0700) != 0) {
        int err = errno;
        struct stat st;
        if (err != EEXIST)
            return upd_reason_set(why, UPD_EIO, NULL, "cannot create the data directory %s: %s%s", dir, strerror(err),
                                  err == ENOENT ? " (its parent directory must exist)" : "");
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return upd_reason_set(why, UPD_EINVAL, NULL, "%s exists and is not a directory", dir);
    }
    /* looked for before a key is made, so that a refusal costs nothing; O_EXCL below still decides a race */
    struct stat st;
    if (lstat(pub->path, &st) == 0)
        return upd_reason_set(why, UPD_EEXIST, "exists", "%s already exists: it is left as it is", pub->path);
    if ((r = upd_keyfile_generate(&key)) != 0)
        return upd_reason_set(why, r, NULL, "OpenSSL could not generate an Ed25519 key");
    if ((r = upd_keyfile_write_private(pub->path, key, why)) == 0)
        r = describe(key, pub, why);
    EVP_PKEY_free(key);
    return r;
}

int
upd_sts_release_key_load(const char *dir, EVP_PKEY **key, upd_sts_public_t *pub, upd_reason_t *why)
{
    upd_sts_public_t local;
    EVP_PKEY *k = NULL;
    if (pub == NULL)
        pub = &local;
    if (key != NULL)
        *key = NULL;
    int r = key_path(dir, pub, why);
    if (r == 0 && (r = upd_keyfile_read_private(pub->path, &k, why)) == 0 && (r = describe(k, pub, why)) == 0 && key != NULL) {
        *key = k;
        k = NULL;
    }
    EVP_PKEY_free(k);
    return r;
}
