#include "storage/keyfile.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAW_LEN 32

int
upd_keyfile_generate(EVP_PKEY **out)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (*out == NULL) {
        ERR_clear_error();
        return UPD_ENOMEM;
    }
    return 0;
}

static bool
is_ed25519_private(EVP_PKEY *key)
{
    size_t len = 0;
    /* with no buffer, only the length: tells whether the private half is there without copying it out */
    return key != NULL && EVP_PKEY_is_a(key, "ED25519") && EVP_PKEY_get_raw_private_key(key, NULL, &len) == 1 && len == RAW_LEN;
}

static bool
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* the new name outlives a crash only once its directory is on disk too */
static int
sync_parent(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return ENOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;
    free(copy);
    if (fd < 0)
        return errno;
    if (fsync(fd) != 0)
        err = errno;
    close(fd);
    return err;
}

int
upd_keyfile_write_private(const char *path, EVP_PKEY *key, upd_reason_t *why)
{
    if (!is_ed25519_private(key))
        return upd_reason_set(why, UPD_EINVAL, "malformed", "%s: only an Ed25519 private key is written", path);

    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long pem_len = 0;
    int fd = -1, r = 0, err;
    if (bio == NULL || PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        (pem_len = BIO_get_mem_data(bio, &pem)) <= 0) {
        ERR_clear_error();
        r = upd_reason_set(why, UPD_ENOMEM, NULL, "%s: OpenSSL could not encode the key", path);
        goto Exit;
    }
    /* O_EXCL: an existing file, or a link planted in its place, is never written through */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = errno;
        r = err == EEXIST ? upd_reason_set(why, UPD_EEXIST, "exists", "%s already exists: it is left as it is", path)
                          : upd_reason_set(why, UPD_EIO, NULL, "%s: cannot create it: %s", path, strerror(err));
        goto Exit;
    }
    if (!write_all(fd, pem, (size_t)pem_len) || fsync(fd) != 0) {
        err = errno;
        close(fd);
        fd = -1;
        unlink(path);
        r = upd_reason_set(why, UPD_EIO, NULL, "%s: cannot write it: %s", path, strerror(err));
        goto Exit;
    }
    err = close(fd) == 0 ? 0 : errno;
    fd = -1;
    if (err == 0)
        err = sync_parent(path);
    if (err != 0) {
        unlink(path);
        r = upd_reason_set(why, UPD_EIO, NULL, "%s: cannot write it: %s", path, strerror(err));
    }

Exit:
    if (fd >= 0)
        close(fd);
    if (pem != NULL && pem_len > 0)
        OPENSSL_cleanse(pem, (size_t)pem_len);
    BIO_free(bio);
    return r;
}

/* never prompt on a terminal for the passphrase of an encrypted key: such a file is refused */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

int
upd_keyfile_read_private(const char *path, EVP_PKEY **out, upd_reason_t *why)
{
    *out = NULL;
    /* O_NONBLOCK: a FIFO in the key's place must not hang the open; fstat below refuses it */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), err;
    if (fd < 0) {
        err = errno;
        if (err == ENOENT)
            return upd_reason_set(why, UPD_ENOTFOUND, "not_found", "%s does not exist", path);
        if (err == ELOOP)
            return upd_reason_set(why, UPD_EINVAL, "malformed", "%s is a symbolic link: the key file must be a regular file", path);
        return upd_reason_set(why, UPD_EIO, NULL, "%s: cannot open it: %s", path, strerror(err));
    }
    char *buf = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    int r = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        err = errno;
        r = upd_reason_set(why, UPD_EIO, NULL, "%s: cannot stat it: %s", path, strerror(err));
        goto Exit;
    }
    if (!S_ISREG(st.st_mode)) {
        r = upd_reason_set(why, UPD_EINVAL, "malformed", "%s is not a regular file", path);
        goto Exit;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        r = upd_reason_set(why, UPD_EFORBIDDEN, "key_mode",
                           "%s is mode %04o, which lets group or others %s it: a private key must be readable by its owner only "
                           "(chmod 600 %s)",
                           path, (unsigned)(st.st_mode & 07777), (st.st_mode & (S_IRGRP | S_IROTH)) != 0 ? "read" : "write", path);
        goto Exit;
    }
    if (st.st_size > UPD_KEYFILE_MAX_BYTES) {
        r = upd_reason_set(why, UPD_ETOOBIG, "malformed", "%s is larger than %d bytes: not a key file", path,
                           UPD_KEYFILE_MAX_BYTES);
        goto Exit;
    }
    /* one byte more than the cap, to see a file that grew since fstat */
    if ((buf = malloc(UPD_KEYFILE_MAX_BYTES + 1)) == NULL) {
        r = upd_reason_set(why, UPD_ENOMEM, NULL, "out of memory");
        goto Exit;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, UPD_KEYFILE_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno;
            r = upd_reason_set(why, UPD_EIO, NULL, "%s: cannot read it: %s", path, strerror(err));
            goto Exit;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > UPD_KEYFILE_MAX_BYTES) {
            r = upd_reason_set(why, UPD_ETOOBIG, "malformed", "%s is larger than %d bytes: not a key file", path,
                               UPD_KEYFILE_MAX_BYTES);
            goto Exit;
        }
    }
    if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
        r = upd_reason_set(why, UPD_ENOMEM, NULL, "out of memory");
        goto Exit;
    }
    *out = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (*out == NULL) {
        r = upd_reason_set(why, UPD_EINVAL, "malformed", "%s is not an unencrypted PEM private key", path);
        goto Exit;
    }
    if (!is_ed25519_private(*out)) {
        EVP_PKEY_free(*out);
        *out = NULL;
        r = upd_reason_set(why, UPD_EINVAL, "malformed", "%s holds a private key that is not Ed25519", path);
        goto Exit;
    }

Exit:
    ERR_clear_error();
    BIO_free(bio);
    if (buf != NULL) {
        OPENSSL_cleanse(buf, UPD_KEYFILE_MAX_BYTES + 1);
        free(buf);
    }
    close(fd);
    return r;
}

int
upd_keyfile_public_format(EVP_PKEY *key, char out[UPD_KEYFILE_PUBLIC_MAX])
{
    unsigned char raw[RAW_LEN];
    size_t len = sizeof(raw);
    out[0] = '\0';
    if (key == NULL || !EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != RAW_LEN) {
        ERR_clear_error();
        return UPD_EINVAL;
    }
    memcpy(out, UPD_KEYFILE_PUBLIC_PREFIX, sizeof(UPD_KEYFILE_PUBLIC_PREFIX) - 1);
    EVP_EncodeBlock((unsigned char *)out + sizeof(UPD_KEYFILE_PUBLIC_PREFIX) - 1, raw, RAW_LEN);
    return 0;
}

int
upd_keyfile_public_parse(const char *text, size_t len, EVP_PKEY **out, upd_reason_t *why)
{
    const size_t prefix = sizeof(UPD_KEYFILE_PUBLIC_PREFIX) - 1, b64 = UPD_KEYFILE_PUBLIC_LEN - prefix;
    unsigned char raw[b64 / 4 * 3]; /* 33: EVP_DecodeBlock counts the one '=' of padding as a byte */
    char again[UPD_KEYFILE_PUBLIC_MAX];
    *out = NULL;
    if (text == NULL || len != UPD_KEYFILE_PUBLIC_LEN || memcmp(text, UPD_KEYFILE_PUBLIC_PREFIX, prefix) != 0)
        return upd_reason_set(why, UPD_EINVAL, "malformed", "a release key is \"ed25519:\" and 44 characters of base64");
    /* the spelling must be the one encoding gives back: EVP_DecodeBlock tolerates stray bits and blanks */
    if (EVP_DecodeBlock(raw, (const unsigned char *)text + prefix, (int)b64) != (int)sizeof(raw) ||
        EVP_EncodeBlock((unsigned char *)again, raw, RAW_LEN) != (int)b64 || memcmp(again, text + prefix, b64) != 0)
        return upd_reason_set(why, UPD_EINVAL, "malformed", "a release key's base64 is not that of 32 bytes");
    if ((*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, RAW_LEN)) == NULL) {
        ERR_clear_error();
        return upd_reason_set(why, UPD_ENOMEM, NULL, "OpenSSL could not make an Ed25519 key");
    }
    return 0;
}
