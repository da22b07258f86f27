#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "base/err.h"
#include "domain/release.h"

/* 2023-11-14T22:13:20Z */
#define NOW 1700000000

/* The base64 sha512 of some bytes, as electron-builder writes it. */
static void
sha512_b64(const char *bytes, char out[UPD_SHA512_B64_LEN + 1])
{
    unsigned char d[64];
    unsigned int len;
    EVP_Digest(bytes, strlen(bytes), d, &len, EVP_sha512(), NULL);
    EVP_EncodeBlock((unsigned char *)out, d, 64);
}

/* The PROTOCOLS.md example body, with a real digest in place of "BASE64". */
static json_t *
example_body(void)
{
    char sha[UPD_SHA512_B64_LEN + 1];
    sha512_b64("Acme-Setup-1.2.0.exe bytes", sha);
    json_t *body = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:i, s:s}], s:{s:i}}", "version", "1.2.0", "channel", "latest",
                             "notes", "Fixes", "files", "name", "Acme-Setup-1.2.0.exe", "platform", "windows", "arch", "x64", "size",
                             123, "sha512", sha, "rollout", "percent", 10);
    assert_non_null(body);
    return body;
}

static json_t *
file0(json_t *body)
{
    return json_array_get(json_object_get(body, "files"), 0);
}

static void
test_from_request_accepts_the_protocols_example(void **state)
{
    json_t *body = example_body();
    upd_release_t rel;
    char err[256] = "";
    char sha[UPD_SHA512_B64_LEN + 1];
    sha512_b64("Acme-Setup-1.2.0.exe bytes", sha);

    assert_int_equal(upd_release_from_request("acme", body, NOW, &rel, err, sizeof(err)), 0);
    assert_string_equal(rel.app, "acme");
    assert_string_equal(rel.version, "1.2.0");
    assert_string_equal(rel.channel, "latest");
    assert_string_equal(rel.notes, "Fixes");
    assert_string_equal(rel.pub_date, "2023-11-14T22:13:20Z");
    assert_int_equal(rel.nfiles, 1);
    const upd_file_t *f = &rel.files[0];
    assert_string_equal(f->name, "Acme-Setup-1.2.0.exe");
    assert_int_equal(f->platform, UPD_PLATFORM_WINDOWS);
    assert_int_equal(f->arch, UPD_ARCH_X64);
    assert_int_equal(f->kind, UPD_KIND_EXE);
    assert_int_equal(f->size, 123);
    assert_string_equal(f->sha512, sha);
    assert_string_equal(f->sha1, "");
    assert_int_equal(f->blockmap_size, -1);
    assert_null(f->signature);
    upd_release_dispose(&rel);
    json_decref(body);
}

static void
test_from_request_without_a_channel_is_a_draft_and_arch_defaults_to_x64(void **state)
{
    json_t *body = example_body();
    json_object_del(body, "channel");
    json_object_del(body, "notes");
    json_object_del(file0(body), "arch");
    upd_release_t rel;
    char err[256];
    assert_int_equal(upd_release_from_request("acme", body, 0, &rel, err, sizeof(err)), 0);
    assert_string_equal(rel.channel, "");
    assert_int_equal(rel.files[0].arch, UPD_ARCH_X64);
    assert_null(rel.notes);
    assert_string_equal(rel.pub_date, "1970-01-01T00:00:00Z");
    upd_release_dispose(&rel);
    json_decref(body);
}

static void
test_from_request_accepts_client_aliases_explicit_kind_and_signature(void **state)
{
    json_t *body = example_body();
    char sha[UPD_SHA512_B64_LEN + 1];
    sha512_b64("mac bytes", sha);
    json_array_append_new(json_object_get(body, "files"),
                          json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s}", "name", "Acme-1.2.0-mac.bin", "platform", "darwin", "arch",
                                    "aarch64", "size", 0, "sha512", sha, "kind", "zip", "signature", "untrusted comment: x\nRWQ="));
    json_object_set_new(file0(body), "platform", json_string("win32"));
    json_object_set_new(body, "channel", json_string("beta-2"));
    upd_release_t rel;
    char err[256];
    assert_int_equal(upd_release_from_request("acme", body, NOW, &rel, err, sizeof(err)), 0);
    assert_string_equal(rel.channel, "beta-2");
    assert_int_equal(rel.nfiles, 2);
    assert_int_equal(rel.files[0].platform, UPD_PLATFORM_WINDOWS);
    assert_int_equal(rel.files[1].platform, UPD_PLATFORM_MAC);
    assert_int_equal(rel.files[1].arch, UPD_ARCH_ARM64);
    assert_int_equal(rel.files[1].kind, UPD_KIND_ZIP);
    assert_int_equal(rel.files[1].size, 0);
    assert_string_equal(rel.files[1].signature, "untrusted comment: x\nRWQ=");
    upd_release_dispose(&rel);
    json_decref(body);
}

/* Applies one change to the example body and expects a refusal whose message names the field. */
static void
assert_refused(json_t *body, const char *field)
{
    upd_release_t rel;
    char err[256] = "";
    memset(&rel, 0x5a, sizeof(rel));
    int r = upd_release_from_request("acme", body, NOW, &rel, err, sizeof(err));
    if (r != UPD_EINVAL)
        fail_msg("expected UPD_EINVAL for %s, got %d", field, r);
    if (strncmp(err, field, strlen(field)) != 0 || (err[strlen(field)] != ':' && err[strlen(field)] != ' '))
        fail_msg("message \"%s\" should start with the field \"%s\"", err, field);
    /* disposed on error: nothing to free, nothing dangling */
    assert_null(rel.files);
    assert_null(rel.notes);
    assert_int_equal(rel.nfiles, 0);
    json_decref(body);
}

static json_t *
with(const char *key, json_t *value)
{
    json_t *body = example_body();
    if (value != NULL)
        json_object_set_new(body, key, value);
    else
        json_object_del(body, key);
    return body;
}

static json_t *
with_file(const char *key, json_t *value)
{
    json_t *body = example_body();
    if (value != NULL)
        json_object_set_new(file0(body), key, value);
    else
        json_object_del(file0(body), key);
    return body;
}

static void
test_from_request_refuses_malformed_release_fields_naming_them(void **state)
{
    assert_refused(with("version", NULL), "version");
    assert_refused(with("version", json_string("1.2")), "version");
    assert_refused(with("version", json_string("v1.2.0")), "version");
    assert_refused(with("version", json_string("1.2.0/x")), "version");
    assert_refused(with("version", json_integer(1)), "version");
    assert_refused(with("channel", json_string("Beta")), "channel");
    assert_refused(with("channel", json_string("")), "channel");
    assert_refused(with("channel", json_true()), "channel");
    assert_refused(with("notes", json_integer(5)), "notes");
    char *long_notes = malloc(UPD_NOTES_MAX + 2);
    memset(long_notes, 'n', UPD_NOTES_MAX + 1);
    long_notes[UPD_NOTES_MAX + 1] = '\0';
    assert_refused(with("notes", json_string(long_notes)), "notes");
    free(long_notes);
    assert_refused(with("files", NULL), "files");
    assert_refused(with("files", json_array()), "files");
    assert_refused(with("files", json_object()), "files");

    json_t *many = example_body();
    json_t *files = json_object_get(many, "files");
    for (int i = 1; i <= UPD_RELEASE_MAX_FILES; ++i) {
        json_t *f = json_deep_copy(file0(many));
        char name[32];
        snprintf(name, sizeof(name), "Acme-%d.exe", i);
        json_object_set_new(f, "name", json_string(name));
        json_array_append_new(files, f);
    }
    assert_refused(many, "files");

    json_t *not_object = example_body();
    json_array_set_new(json_object_get(not_object, "files"), 0, json_string("Acme.exe"));
    assert_refused(not_object, "files[0]");

    upd_release_t rel;
    char err[256];
    json_t *array_body = json_array();
    assert_int_equal(upd_release_from_request("acme", array_body, NOW, &rel, err, sizeof(err)), UPD_EINVAL);
    json_decref(array_body);
    json_t *body = example_body();
    assert_int_equal(upd_release_from_request("Acme", body, NOW, &rel, err, sizeof(err)), UPD_EINVAL);
    assert_string_equal(err, "app: expected [a-z0-9][a-z0-9-]{0,62}");
    json_decref(body);
}

static void
test_from_request_refuses_malformed_file_fields_naming_them(void **state)
{
    char sha[UPD_SHA512_B64_LEN + 1];
    sha512_b64("Acme-Setup-1.2.0.exe bytes", sha);

    assert_refused(with_file("name", NULL), "files[0].name");
    assert_refused(with_file("name", json_string("..")), "files[0].name");
    assert_refused(with_file("name", json_string("a/b.exe")), "files[0].name");
    assert_refused(with_file("name", json_string("Acme Setup.exe")), "files[0].name");
    assert_refused(with_file("platform", NULL), "files[0].platform");
    assert_refused(with_file("platform", json_string("solaris")), "files[0].platform");
    assert_refused(with_file("platform", json_string("Windows")), "files[0].platform");
    assert_refused(with_file("arch", json_string("sparc")), "files[0].arch");
    assert_refused(with_file("arch", json_integer(64)), "files[0].arch");
    assert_refused(with_file("size", NULL), "files[0].size");
    assert_refused(with_file("size", json_integer(-1)), "files[0].size");
    assert_refused(with_file("size", json_string("123")), "files[0].size");
    assert_refused(with_file("size", json_real(1.5)), "files[0].size");
    assert_refused(with_file("sha512", NULL), "files[0].sha512");
    /* hex, as some tools write it */
    assert_refused(with_file("sha512", json_string("cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8"
                                                   "318d2877eec2f63b931bd47417a81a538327af927da3e")),
                   "files[0].sha512");
    char shorter[UPD_SHA512_B64_LEN + 1];
    memcpy(shorter, sha, UPD_SHA512_B64_LEN - 2);
    strcpy(shorter + UPD_SHA512_B64_LEN - 2, "=");
    assert_refused(with_file("sha512", json_string(shorter)), "files[0].sha512");
    char bad_char[UPD_SHA512_B64_LEN + 1];
    strcpy(bad_char, sha);
    bad_char[10] = '*';
    assert_refused(with_file("sha512", json_string(bad_char)), "files[0].sha512");
    /* non-zero bits after the last byte: decodes, but is not how the digest is encoded */
    char loose[UPD_SHA512_B64_LEN + 1];
    strcpy(loose, sha);
    loose[85] = loose[85] == 'A' ? 'B' : (loose[85] == 'Q' ? 'R' : loose[85] ^ 1);
    assert_refused(with_file("sha512", json_string(loose)), "files[0].sha512");
    /* 66 bytes' worth of base64 without padding: right length, wrong digest size */
    char unpadded[UPD_SHA512_B64_LEN + 1];
    memset(unpadded, 'A', UPD_SHA512_B64_LEN);
    unpadded[UPD_SHA512_B64_LEN] = '\0';
    assert_refused(with_file("sha512", json_string(unpadded)), "files[0].sha512");
    assert_refused(with_file("signature", json_integer(5)), "files[0].signature");
    char *long_sig = malloc(UPD_SIGNATURE_MAX + 2);
    memset(long_sig, 's', UPD_SIGNATURE_MAX + 1);
    long_sig[UPD_SIGNATURE_MAX + 1] = '\0';
    assert_refused(with_file("signature", json_string(long_sig)), "files[0].signature");
    free(long_sig);
    assert_refused(with_file("kind", json_string("apk")), "files[0].kind");
    assert_refused(with_file("kind", json_string("unknown")), "files[0].kind");
    assert_refused(with_file("name", json_string("Acme-1.2.0.bin")), "files[0].name");

    json_t *dup = example_body();
    json_array_append(json_object_get(dup, "files"), file0(dup));
    assert_refused(dup, "files[1].name");

    /* an error on a later file, after an earlier one took a signature: freed (ASan watches) */
    json_t *later = example_body();
    json_object_set_new(file0(later), "signature", json_string("sig"));
    json_t *second = json_deep_copy(file0(later));
    json_object_set_new(second, "name", json_string("Acme-2.exe"));
    json_object_set_new(second, "size", json_integer(-5));
    json_array_append_new(json_object_get(later, "files"), second);
    assert_refused(later, "files[1].size");
}

static void
test_kind_is_inferred_from_every_extension(void **state)
{
    static const struct {
        const char *name;
        upd_kind_t kind;
    } cases[] = {
        {"Acme-Setup-1.2.0.exe", UPD_KIND_EXE},
        {"ACME-SETUP.EXE", UPD_KIND_EXE},
        {"Acme-1.2.0.msi", UPD_KIND_MSI},
        {"Acme-1.2.0-arm64.dmg", UPD_KIND_DMG},
        {"Acme-1.2.0-mac.zip", UPD_KIND_ZIP},
        {"Acme_1.2.0_x64-setup.nsis.zip", UPD_KIND_ZIP},
        {"Acme-1.2.0.AppImage", UPD_KIND_APPIMAGE},
        {"acme-1.2.0.appimage", UPD_KIND_APPIMAGE},
        {"acme_1.2.0_amd64.deb", UPD_KIND_DEB},
        {"acme-1.2.0.x86_64.rpm", UPD_KIND_RPM},
        {"Acme-1.2.0-full.nupkg", UPD_KIND_NUPKG_FULL},
        {"Acme-1.2.0-FULL.NUPKG", UPD_KIND_NUPKG_FULL},
        {"Acme-1.2.0-delta.nupkg", UPD_KIND_NUPKG_DELTA},
        {"Acme.app.tar.gz", UPD_KIND_TAR_GZ},
        {"acme_1.2.0_amd64.AppImage.tar.gz", UPD_KIND_TAR_GZ},
        {"Acme-1.2.0.nupkg", UPD_KIND_UNKNOWN},
        {"Acme-1.2.0.exe.blockmap", UPD_KIND_UNKNOWN},
        {"Acme.app.tar.gz.sig", UPD_KIND_UNKNOWN},
        {"Acme.gz", UPD_KIND_UNKNOWN},
        {"latest.yml", UPD_KIND_UNKNOWN},
        {".exe", UPD_KIND_UNKNOWN},
        {"exe", UPD_KIND_UNKNOWN},
        {"", UPD_KIND_UNKNOWN},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i)
        if (upd_kind_from_name(cases[i].name) != cases[i].kind)
            fail_msg("%s: expected kind %d, got %d", cases[i].name, cases[i].kind, upd_kind_from_name(cases[i].name));
}

static void
test_kind_names_parse_back_and_unknown_names_do_not(void **state)
{
    static const char *const names[] = {"exe", "msi", "dmg", "zip", "appimage", "deb", "rpm", "nupkg-full", "nupkg-delta", "tar.gz"};
    assert_int_equal(sizeof(names) / sizeof(names[0]), UPD_KIND_COUNT - 1);
    for (int k = 1; k != UPD_KIND_COUNT; ++k) {
        assert_string_equal(upd_kind_name((upd_kind_t)k), names[k - 1]);
        assert_int_equal(upd_kind_parse(names[k - 1]), k);
    }
    assert_int_equal(upd_kind_parse("unknown"), -1);
    assert_int_equal(upd_kind_parse("EXE"), -1);
    assert_int_equal(upd_kind_parse("nupkg"), -1);
    assert_int_equal(upd_kind_parse(""), -1);
    assert_null(upd_kind_name(UPD_KIND_COUNT));
}

static void
assert_releases_equal(const upd_release_t *a, const upd_release_t *b)
{
    assert_string_equal(a->app, b->app);
    assert_string_equal(a->channel, b->channel);
    assert_string_equal(a->version, b->version);
    assert_string_equal(a->pub_date, b->pub_date);
    if (a->notes == NULL || b->notes == NULL)
        assert_ptr_equal(a->notes, b->notes);
    else
        assert_string_equal(a->notes, b->notes);
    assert_int_equal(a->nfiles, b->nfiles);
    for (size_t i = 0; i != a->nfiles; ++i) {
        const upd_file_t *x = &a->files[i], *y = &b->files[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->platform, y->platform);
        assert_int_equal(x->arch, y->arch);
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(x->size, y->size);
        assert_string_equal(x->sha512, y->sha512);
        assert_string_equal(x->sha1, y->sha1);
        assert_int_equal(x->blockmap_size, y->blockmap_size);
        if (x->signature == NULL || y->signature == NULL)
            assert_ptr_equal(x->signature, y->signature);
        else
            assert_string_equal(x->signature, y->signature);
    }
}

/* to_json, then text (as LMDB stores it), then from_json */
static void
round_trip(const upd_release_t *rel)
{
    json_t *j = upd_release_to_json(rel);
    assert_non_null(j);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    json_error_t jerr;
    json_t *back_j = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(back_j);
    upd_release_t back;
    assert_int_equal(upd_release_from_json(back_j, &back), 0);
    json_decref(back_j);
    assert_releases_equal(rel, &back);
    upd_release_dispose(&back);
}

static void
test_json_round_trip_keeps_every_field(void **state)
{
    json_t *body = example_body();
    char sha[UPD_SHA512_B64_LEN + 1];
    sha512_b64("tauri bundle", sha);
    json_array_append_new(json_object_get(body, "files"),
                          json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "name", "Acme.app.tar.gz", "platform", "mac", "arch",
                                    "universal", "size", (json_int_t)5000000000LL, "sha512", sha, "signature",
                                    "untrusted comment: signature from tauri secret key\nRUQ=\ntrusted comment: x\n"));
    json_array_append_new(json_object_get(body, "files"), json_pack("{s:s, s:s, s:s, s:i, s:s}", "name", "Acme-1.2.0-full.nupkg",
                                                                    "platform", "windows", "arch", "ia32", "size", 77, "sha512", sha));
    json_object_set_new(body, "notes", json_string("Fixes \"quotes\", ünïcode and\nnew lines"));
    upd_release_t rel;
    char err[256];
    assert_int_equal(upd_release_from_request("acme", body, NOW, &rel, err, sizeof(err)), 0);
    /* what the control plane fills in from storage */
    strcpy(rel.files[0].sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    rel.files[0].blockmap_size = 4321;
    rel.files[2].blockmap_size = 0;
    round_trip(&rel);

    /* and without the optional parts */
    free(rel.notes);
    rel.notes = NULL;
    free(rel.files[1].signature);
    rel.files[1].signature = NULL;
    round_trip(&rel);

    /* a draft: no channel yet, stored as null */
    rel.channel[0] = '\0';
    json_t *draft = upd_release_to_json(&rel);
    assert_true(json_is_null(json_object_get(draft, "channel")));
    json_decref(draft);
    round_trip(&rel);
    upd_release_dispose(&rel);
    json_decref(body);
}

static void
test_json_written_for_storage_names_fields_for_readers(void **state)
{
    json_t *body = example_body();
    upd_release_t rel;
    char err[256];
    assert_int_equal(upd_release_from_request("acme", body, NOW, &rel, err, sizeof(err)), 0);
    json_t *j = upd_release_to_json(&rel);
    json_t *f = file0(j);
    assert_string_equal(json_string_value(json_object_get(j, "version")), "1.2.0");
    assert_string_equal(json_string_value(json_object_get(j, "pub_date")), "2023-11-14T22:13:20Z");
    assert_string_equal(json_string_value(json_object_get(f, "platform")), "windows");
    assert_string_equal(json_string_value(json_object_get(f, "arch")), "x64");
    assert_string_equal(json_string_value(json_object_get(f, "kind")), "exe");
    assert_int_equal(json_integer_value(json_object_get(f, "size")), 123);
    assert_null(json_object_get(f, "signature"));
    assert_null(json_object_get(j, "rollout"));
    json_decref(j);
    upd_release_dispose(&rel);
    json_decref(body);
}

static void
test_from_json_refuses_what_to_json_never_writes(void **state)
{
    json_t *body = example_body();
    upd_release_t rel, back;
    char err[256];
    assert_int_equal(upd_release_from_request("acme", body, NOW, &rel, err, sizeof(err)), 0);
    json_t *good = upd_release_to_json(&rel);

    json_t *cases[] = {
        json_string("release"),
        json_deep_copy(good),
        json_deep_copy(good),
        json_deep_copy(good),
        json_deep_copy(good),
        json_deep_copy(good),
    };
    json_object_del(cases[1], "files");
    json_object_set_new(cases[2], "version", json_string("1.2.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    json_object_set_new(file0(cases[3]), "platform", json_string("beos"));
    json_object_set_new(file0(cases[4]), "size", json_string("123"));
    json_object_set_new(file0(cases[5]), "signature", json_integer(1));
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        if (upd_release_from_json(cases[i], &back) != UPD_EINVAL)
            fail_msg("case %zu should be refused", i);
        assert_null(back.files);
        json_decref(cases[i]);
    }
    json_decref(good);
    upd_release_dispose(&rel);
    json_decref(body);
}

static void
test_dispose_frees_and_zeroes(void **state)
{
    json_t *body = example_body();
    json_object_set_new(file0(body), "signature", json_string("sig"));
    upd_release_t rel, zero;
    char err[256];
    assert_int_equal(upd_release_from_request("acme", body, NOW, &rel, err, sizeof(err)), 0);
    upd_release_dispose(&rel);
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&rel, &zero, sizeof(rel));
    upd_release_dispose(&rel); /* twice is harmless */
    json_decref(body);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_request_accepts_the_protocols_example),
        cmocka_unit_test(test_from_request_without_a_channel_is_a_draft_and_arch_defaults_to_x64),
        cmocka_unit_test(test_from_request_accepts_client_aliases_explicit_kind_and_signature),
        cmocka_unit_test(test_from_request_refuses_malformed_release_fields_naming_them),
        cmocka_unit_test(test_from_request_refuses_malformed_file_fields_naming_them),
        cmocka_unit_test(test_kind_is_inferred_from_every_extension),
        cmocka_unit_test(test_kind_names_parse_back_and_unknown_names_do_not),
        cmocka_unit_test(test_json_round_trip_keeps_every_field),
        cmocka_unit_test(test_json_written_for_storage_names_fields_for_readers),
        cmocka_unit_test(test_from_json_refuses_what_to_json_never_writes),
        cmocka_unit_test(test_dispose_frees_and_zeroes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
