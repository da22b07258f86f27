#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domain/state_sig.h"
#include "storage/keyfile.h"
#include "tmpdir.h"

/*
 * storage/keyfile.c: the release-signing key on disk (PEM PKCS#8, 0600, never overwritten, refused when others may
 * read it) and the public key line the origins are configured with. The program around it:
 * tests/integration/test_sts_init.py.
 */

typedef struct {
    char dir[128];
    char path[256];
} fixture_t;

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL || tmpdir_make(f->dir, sizeof(f->dir), "keyfile") != 0)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/release-key.pem", f->dir);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *f = *state;
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static EVP_PKEY *
generated(void)
{
    EVP_PKEY *k = NULL;
    assert_int_equal(upd_keyfile_generate(&k), 0);
    assert_non_null(k);
    assert_true(EVP_PKEY_is_a(k, "ED25519"));
    return k;
}

static size_t
slurp(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return n;
}

static void
spit(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

static void
assert_same_public(EVP_PKEY *a, EVP_PKEY *b)
{
    char la[UPD_KEYFILE_PUBLIC_MAX], lb[UPD_KEYFILE_PUBLIC_MAX];
    assert_int_equal(upd_keyfile_public_format(a, la), 0);
    assert_int_equal(upd_keyfile_public_format(b, lb), 0);
    assert_string_equal(la, lb);
}

/* ---- the private key file ---- */

static void
test_a_written_key_is_a_0600_pkcs8_pem_that_reads_back(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *k = generated(), *back = NULL;
    upd_reason_t why = {{0}};
    mode_t old = umask(0); /* the file's own mode, not the umask's */
    int r = upd_keyfile_write_private(f->path, k, &why);
    umask(old);
    assert_int_equal(r, 0);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    char text[4096];
    size_t n = slurp(f->path, text, sizeof(text));
    assert_true(strncmp(text, "-----BEGIN PRIVATE KEY-----\n", 28) == 0); /* PKCS#8, unencrypted */
    assert_non_null(strstr(text, "-----END PRIVATE KEY-----\n"));
    assert_true(n < 200);

    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), 0);
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(k, back), 1);
    assert_same_public(k, back);
    EVP_PKEY_free(k);
    EVP_PKEY_free(back);
}

static void
test_two_generated_keys_differ(void **state)
{
    EVP_PKEY *a = generated(), *b = generated();
    assert_int_not_equal(EVP_PKEY_eq(a, b), 1);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static void
test_a_key_file_is_never_overwritten(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *first = generated(), *second = generated(), *back = NULL;
    upd_reason_t why = {{0}};
    assert_int_equal(upd_keyfile_write_private(f->path, first, &why), 0);
    char before[4096], after[4096];
    slurp(f->path, before, sizeof(before));
    assert_int_equal(upd_keyfile_write_private(f->path, second, &why), UPD_EEXIST);
    assert_string_equal(why.code, "exists");
    assert_non_null(strstr(why.message, "already exists"));
    slurp(f->path, after, sizeof(after));
    assert_string_equal(before, after);
    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), 0);
    assert_int_equal(EVP_PKEY_eq(first, back), 1);
    EVP_PKEY_free(first);
    EVP_PKEY_free(second);
    EVP_PKEY_free(back);
}

static void
test_a_link_in_the_key_files_place_is_not_written_through(void **state)
{
    fixture_t *f = *state;
    char target[300];
    snprintf(target, sizeof(target), "%s/elsewhere.pem", f->dir);
    assert_int_equal(symlink(target, f->path), 0); /* dangling: O_CREAT alone would create the target */
    EVP_PKEY *k = generated();
    upd_reason_t why = {{0}};
    assert_int_equal(upd_keyfile_write_private(f->path, k, &why), UPD_EEXIST);
    assert_int_not_equal(access(target, F_OK), 0);
    EVP_PKEY_free(k);
}

static void
test_only_an_ed25519_private_key_is_written(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *k = generated(), *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *pub = NULL;
    char line[UPD_KEYFILE_PUBLIC_MAX];
    assert_int_equal(upd_keyfile_public_format(k, line), 0);
    assert_int_equal(upd_keyfile_public_parse(line, strlen(line), &pub, NULL), 0);
    upd_reason_t why = {{0}};
    assert_int_equal(upd_keyfile_write_private(f->path, ec, &why), UPD_EINVAL);
    assert_int_equal(upd_keyfile_write_private(f->path, pub, &why), UPD_EINVAL); /* a public key has nothing to keep */
    assert_int_equal(upd_keyfile_write_private(f->path, NULL, &why), UPD_EINVAL);
    assert_int_not_equal(access(f->path, F_OK), 0); /* and no file is left */
    EVP_PKEY_free(k);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(pub);
}

static void
test_a_key_file_in_a_missing_directory_is_an_io_error(void **state)
{
    fixture_t *f = *state;
    char path[300];
    snprintf(path, sizeof(path), "%s/no/such/dir/release-key.pem", f->dir);
    EVP_PKEY *k = generated();
    upd_reason_t why = {{0}};
    assert_int_equal(upd_keyfile_write_private(path, k, &why), UPD_EIO);
    assert_non_null(strstr(why.message, "No such file or directory"));
    EVP_PKEY_free(k);
}

static void
test_a_private_key_group_or_others_may_read_is_refused(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *k = generated(), *back = NULL;
    assert_int_equal(upd_keyfile_write_private(f->path, k, NULL), 0);
    static const mode_t refused[] = {0644, 0640, 0604, 0660, 0606, 0620, 0602, 0400 | 0040, 0777};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(chmod(f->path, refused[i]), 0);
        upd_reason_t why = {{0}};
        back = (EVP_PKEY *)"untouched";
        int r = upd_keyfile_read_private(f->path, &back, &why);
        if (r != UPD_EFORBIDDEN)
            fail_msg("mode %04o: expected UPD_EFORBIDDEN, got %d", (unsigned)refused[i], r);
        assert_null(back);
        assert_string_equal(why.code, "key_mode");
        assert_non_null(strstr(why.message, "group or others"));
        assert_non_null(strstr(why.message, "chmod 600"));
    }
    upd_reason_t why = {{0}};
    assert_int_equal(chmod(f->path, 0644), 0);
    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), UPD_EFORBIDDEN);
    assert_non_null(strstr(why.message, "mode 0644, which lets group or others read it"));
    /* the owner's own bits are the owner's business: read-only is fine */
    assert_int_equal(chmod(f->path, 0400), 0);
    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), 0);
    EVP_PKEY_free(back);
    EVP_PKEY_free(k);
}

static void
test_a_missing_key_file_is_not_found(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *back = NULL;
    upd_reason_t why = {{0}};
    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), UPD_ENOTFOUND);
    assert_null(back);
    assert_non_null(strstr(why.message, "does not exist"));
}

static void
test_a_key_file_that_is_a_link_or_not_a_file_is_refused(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *k = generated(), *back = NULL;
    char real[300], sub[300];
    snprintf(real, sizeof(real), "%s/real.pem", f->dir);
    assert_int_equal(upd_keyfile_write_private(real, k, NULL), 0);
    assert_int_equal(symlink(real, f->path), 0);
    upd_reason_t why = {{0}};
    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), UPD_EINVAL);
    assert_non_null(strstr(why.message, "symbolic link"));
    snprintf(sub, sizeof(sub), "%s/sub", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(upd_keyfile_read_private(sub, &back, &why), UPD_EINVAL);
    assert_non_null(strstr(why.message, "not a regular file"));
    assert_null(back);
    EVP_PKEY_free(k);
}

static void
test_a_file_that_is_not_an_ed25519_private_key_is_refused(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *back = NULL;
    upd_reason_t why = {{0}};

    spit(f->path, "not a key\n", 0600);
    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), UPD_EINVAL);
    assert_string_equal(why.code, "malformed");
    unlink(f->path);
    spit(f->path, "", 0600);
    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), UPD_EINVAL);
    unlink(f->path);

    /* another algorithm's key */
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FILE *fp = fopen(f->path, "wb");
    assert_int_equal(PEM_write_PKCS8PrivateKey(fp, ec, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fp);
    chmod(f->path, 0600);
    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), UPD_EINVAL);
    assert_non_null(strstr(why.message, "not Ed25519"));
    unlink(f->path);
    EVP_PKEY_free(ec);

    /* an encrypted one: refused without a prompt (the test would hang on one with a terminal) */
    EVP_PKEY *k = generated();
    fp = fopen(f->path, "wb");
    assert_int_equal(PEM_write_PKCS8PrivateKey(fp, k, EVP_aes_256_cbc(), "passphrase", 10, NULL, NULL), 1);
    fclose(fp);
    chmod(f->path, 0600);
    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), UPD_EINVAL);
    assert_non_null(strstr(why.message, "unencrypted"));
    unlink(f->path);

    /* only the public half */
    fp = fopen(f->path, "wb");
    assert_int_equal(PEM_write_PUBKEY(fp, k), 1);
    fclose(fp);
    chmod(f->path, 0600);
    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), UPD_EINVAL);
    assert_null(back);
    EVP_PKEY_free(k);
}

static void
test_a_key_file_larger_than_the_cap_is_refused_unread(void **state)
{
    fixture_t *f = *state;
    char *big = malloc(UPD_KEYFILE_MAX_BYTES + 2);
    memset(big, '#', UPD_KEYFILE_MAX_BYTES + 1);
    big[UPD_KEYFILE_MAX_BYTES + 1] = '\0';
    spit(f->path, big, 0600);
    free(big);
    EVP_PKEY *back = NULL;
    upd_reason_t why = {{0}};
    assert_int_equal(upd_keyfile_read_private(f->path, &back, &why), UPD_ETOOBIG);
    assert_null(back);
}

/* ---- the public key line ---- */

static void
test_a_public_key_line_round_trips(void **state)
{
    EVP_PKEY *k = generated(), *pub = NULL;
    char line[UPD_KEYFILE_PUBLIC_MAX], again[UPD_KEYFILE_PUBLIC_MAX];
    assert_int_equal(upd_keyfile_public_format(k, line), 0);
    assert_int_equal(strlen(line), UPD_KEYFILE_PUBLIC_LEN);
    assert_int_equal(strlen(line), 52);
    assert_true(strncmp(line, "ed25519:", 8) == 0);
    assert_int_equal(line[51], '='); /* 32 bytes: one '=' of padding */
    assert_int_equal(upd_keyfile_public_parse(line, strlen(line), &pub, NULL), 0);
    assert_int_equal(upd_keyfile_public_format(pub, again), 0);
    assert_string_equal(line, again);
    assert_int_equal(EVP_PKEY_eq(k, pub), 1); /* the public halves match */

    char id_priv[UPD_STATE_SIG_KEY_ID_LEN + 1], id_pub[UPD_STATE_SIG_KEY_ID_LEN + 1];
    assert_int_equal(upd_state_sig_key_id(k, id_priv), 0);
    assert_int_equal(upd_state_sig_key_id(pub, id_pub), 0);
    assert_string_equal(id_priv, id_pub);
    EVP_PKEY_free(k);
    EVP_PKEY_free(pub);
}

static void
test_the_public_line_of_a_known_key(void **state)
{
    /* RFC 8032 section 7.1, TEST 1: public key d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a */
    static const char LINE[] = "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    EVP_PKEY *pub = NULL;
    char again[UPD_KEYFILE_PUBLIC_MAX], id[UPD_STATE_SIG_KEY_ID_LEN + 1];
    unsigned char raw[32];
    size_t len = sizeof(raw);
    assert_int_equal(upd_keyfile_public_parse(LINE, sizeof(LINE) - 1, &pub, NULL), 0);
    assert_int_equal(EVP_PKEY_get_raw_public_key(pub, raw, &len), 1);
    assert_int_equal(raw[0], 0xd7);
    assert_int_equal(raw[31], 0x1a);
    assert_int_equal(upd_keyfile_public_format(pub, again), 0);
    assert_string_equal(again, LINE);
    assert_int_equal(upd_state_sig_key_id(pub, id), 0);
    assert_string_equal(id, "21fe31dfa154a261"); /* as in test_state_sig.c's pinned envelope */
    EVP_PKEY_free(pub);
}

static void
test_malformed_public_key_lines_are_refused(void **state)
{
    static const char *const lines[] = {
        "",
        "ed25519:",
        "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",         /* no prefix */
        "ED25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", /* another spelling */
        "ecdsa:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo",    /* no padding */
        "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n", /* a newline pasted along */
        " ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURp=", /* stray bits in the last character */
        "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHU==",  /* 31 bytes */
        "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcH URo=",
        "ed25519:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=", /* base64url */
        "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=AAAA",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        EVP_PKEY *pub = (EVP_PKEY *)"untouched";
        upd_reason_t why = {{0}};
        int r = upd_keyfile_public_parse(lines[i], strlen(lines[i]), &pub, &why);
        if (r != UPD_EINVAL)
            fail_msg("\"%s\": expected UPD_EINVAL, got %d", lines[i], r);
        assert_null(pub);
        assert_string_equal(why.code, "malformed");
    }
    EVP_PKEY *pub = NULL;
    assert_int_equal(upd_keyfile_public_parse(NULL, 0, &pub, NULL), UPD_EINVAL);
    char line[UPD_KEYFILE_PUBLIC_MAX];
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_int_equal(upd_keyfile_public_format(ec, line), UPD_EINVAL);
    assert_string_equal(line, "");
    EVP_PKEY_free(ec);
}

/* ---- together: what updraft-sts and the origins will do ---- */

static void
test_a_key_read_from_its_file_signs_what_its_public_line_verifies(void **state)
{
    fixture_t *f = *state;
    static const char DOC[] = "{\"format\":1}";
    EVP_PKEY *k = generated(), *signer = NULL, *pub = NULL;
    char line[UPD_KEYFILE_PUBLIC_MAX];
    assert_int_equal(upd_keyfile_write_private(f->path, k, NULL), 0);
    assert_int_equal(upd_keyfile_public_format(k, line), 0);
    EVP_PKEY_free(k);

    assert_int_equal(upd_keyfile_read_private(f->path, &signer, NULL), 0);
    char *env = NULL;
    size_t env_len = 0;
    assert_int_equal(upd_state_sig_sign(signer, "acme", 3, 2000000000, DOC, sizeof(DOC) - 1, &env, &env_len, NULL), 0);
    EVP_PKEY_free(signer);

    assert_int_equal(upd_keyfile_public_parse(line, strlen(line), &pub, NULL), 0);
    upd_state_sig_trust_t t;
    upd_state_sig_trust_init(&t);
    assert_int_equal(upd_state_sig_trust_add(&t, pub, NULL), 0);
    EVP_PKEY_free(pub);
    upd_state_sig_info_t info;
    assert_int_equal(upd_state_sig_verify(&t, env, env_len, DOC, sizeof(DOC) - 1, "acme", 2, 1900000000, &info, NULL), 0);
    assert_int_equal(info.generation, 3);
    assert_false(info.expired);
    free(env);
    upd_state_sig_trust_dispose(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_written_key_is_a_0600_pkcs8_pem_that_reads_back, setup, teardown),
        cmocka_unit_test(test_two_generated_keys_differ),
        cmocka_unit_test_setup_teardown(test_a_key_file_is_never_overwritten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_link_in_the_key_files_place_is_not_written_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_an_ed25519_private_key_is_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_key_file_in_a_missing_directory_is_an_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_private_key_group_or_others_may_read_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_missing_key_file_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_key_file_that_is_a_link_or_not_a_file_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_that_is_not_an_ed25519_private_key_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_key_file_larger_than_the_cap_is_refused_unread, setup, teardown),
        cmocka_unit_test(test_a_public_key_line_round_trips),
        cmocka_unit_test(test_the_public_line_of_a_known_key),
        cmocka_unit_test(test_malformed_public_key_lines_are_refused),
        cmocka_unit_test_setup_teardown(test_a_key_read_from_its_file_signs_what_its_public_line_verifies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
