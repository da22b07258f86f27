#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "domain/ids.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* A string of n copies of c (n < sizeof buf). */
static const char *
repeat(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

static void
test_app_id_accepts_lowercase_digits_and_inner_hyphens(void **state)
{
    assert_true(upd_id_is_app(S("acme")));
    assert_true(upd_id_is_app(S("a")));
    assert_true(upd_id_is_app(S("7")));
    assert_true(upd_id_is_app(S("acme-desktop-2")));
    assert_true(upd_id_is_app(S("a-")));
    assert_true(upd_id_is_app(S("a--b")));
}

static void
test_app_id_length_is_1_to_63(void **state)
{
    char buf[128];
    assert_false(upd_id_is_app("", 0));
    assert_true(upd_id_is_app(repeat(buf, 'a', 1), 1));
    assert_true(upd_id_is_app(repeat(buf, 'a', UPD_ID_MAX), UPD_ID_MAX));
    assert_false(upd_id_is_app(repeat(buf, 'a', UPD_ID_MAX + 1), UPD_ID_MAX + 1));
}

static void
test_app_id_refuses_leading_hyphen_uppercase_and_other_chars(void **state)
{
    assert_false(upd_id_is_app(S("-acme")));
    assert_false(upd_id_is_app(S("Acme")));
    assert_false(upd_id_is_app(S("acmE")));
    assert_false(upd_id_is_app(S("ac_me")));
    assert_false(upd_id_is_app(S("ac.me")));
    assert_false(upd_id_is_app(S("ac me")));
    assert_false(upd_id_is_app(S("ac/me")));
    assert_false(upd_id_is_app(S("..")));
    assert_false(upd_id_is_app(S("acm\xc3\xa9")));
    assert_false(upd_id_is_app(S("acme\n")));
}

static void
test_app_id_refuses_nul_inside_len(void **state)
{
    assert_false(upd_id_is_app("ac\0me", 5));
    assert_false(upd_id_is_app("acme\0", 5));
}

static void
test_app_id_reads_only_len_bytes(void **state)
{
    /* the byte after len is invalid: only the first 4 count */
    assert_true(upd_id_is_app("acme/../x", 4));
}

static void
test_channel_shares_the_app_grammar(void **state)
{
    char buf[128];
    assert_true(upd_id_is_channel(S("latest")));
    assert_true(upd_id_is_channel(S("beta-2")));
    assert_false(upd_id_is_channel(S("")));
    assert_false(upd_id_is_channel(S("Beta")));
    assert_false(upd_id_is_channel(S("-beta")));
    assert_true(upd_id_is_channel(repeat(buf, 'b', UPD_ID_MAX), UPD_ID_MAX));
    assert_false(upd_id_is_channel(repeat(buf, 'b', UPD_ID_MAX + 1), UPD_ID_MAX + 1));
}

static void
test_filename_accepts_its_whole_alphabet(void **state)
{
    assert_true(upd_id_is_filename(S("Acme-Setup-1.2.0.exe")));
    assert_true(upd_id_is_filename(S("acme_1.2.0+build.5_amd64.deb")));
    assert_true(upd_id_is_filename(S("Acme-1.2.0-full.nupkg")));
    assert_true(upd_id_is_filename(S("RELEASES")));
    assert_true(upd_id_is_filename(S("x")));
    assert_true(upd_id_is_filename(S(".hidden")));
    assert_true(upd_id_is_filename(S("...")));
    assert_true(upd_id_is_filename(S("..a")));
}

static void
test_filename_length_is_1_to_200(void **state)
{
    char buf[256];
    assert_false(upd_id_is_filename("", 0));
    assert_true(upd_id_is_filename(repeat(buf, 'F', 1), 1));
    assert_true(upd_id_is_filename(repeat(buf, 'F', UPD_FILENAME_MAX), UPD_FILENAME_MAX));
    assert_false(upd_id_is_filename(repeat(buf, 'F', UPD_FILENAME_MAX + 1), UPD_FILENAME_MAX + 1));
}

static void
test_filename_refuses_dot_and_dotdot(void **state)
{
    assert_false(upd_id_is_filename(S(".")));
    assert_false(upd_id_is_filename(S("..")));
}

static void
test_filename_refuses_separators_spaces_and_other_chars(void **state)
{
    assert_false(upd_id_is_filename(S("a/b")));
    assert_false(upd_id_is_filename(S("a\\b")));
    assert_false(upd_id_is_filename(S("../etc")));
    assert_false(upd_id_is_filename(S("a b")));
    assert_false(upd_id_is_filename(S("a:b")));
    assert_false(upd_id_is_filename(S("a%2fb")));
    assert_false(upd_id_is_filename(S("a?b")));
    assert_false(upd_id_is_filename(S("a#b")));
    assert_false(upd_id_is_filename(S("caf\xc3\xa9")));
    assert_false(upd_id_is_filename("a\0b", 3));
    assert_false(upd_id_is_filename("\0", 1));
}

static void
test_client_id_accepts_uuid_and_its_alphabet(void **state)
{
    assert_true(upd_id_is_client(S("3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d")));
    assert_true(upd_id_is_client(S("client-a")));
    assert_true(upd_id_is_client(S("host:1.2_X")));
}

static void
test_client_id_length_is_1_to_128(void **state)
{
    char buf[256];
    assert_false(upd_id_is_client("", 0));
    assert_true(upd_id_is_client(repeat(buf, 'Z', 1), 1));
    assert_true(upd_id_is_client(repeat(buf, 'Z', UPD_CLIENT_ID_MAX), UPD_CLIENT_ID_MAX));
    assert_false(upd_id_is_client(repeat(buf, 'Z', UPD_CLIENT_ID_MAX + 1), UPD_CLIENT_ID_MAX + 1));
}

static void
test_client_id_refuses_other_chars(void **state)
{
    assert_false(upd_id_is_client(S("a b")));
    assert_false(upd_id_is_client(S("a+b")));
    assert_false(upd_id_is_client(S("a/b")));
    assert_false(upd_id_is_client(S("a,b")));
    assert_false(upd_id_is_client(S("a\"b")));
    assert_false(upd_id_is_client(S("a\r\nb")));
    assert_false(upd_id_is_client("ab\0", 3));
}

static void
test_country_is_two_uppercase_letters(void **state)
{
    assert_true(upd_id_is_country(S("DE")));
    assert_true(upd_id_is_country(S("AZ")));
    assert_false(upd_id_is_country(S("de")));
    assert_false(upd_id_is_country(S("De")));
    assert_false(upd_id_is_country(S("D")));
    assert_false(upd_id_is_country(S("DEU")));
    assert_false(upd_id_is_country("", 0));
    assert_false(upd_id_is_country(S("D1")));
    assert_false(upd_id_is_country(S("D-")));
    assert_false(upd_id_is_country("D\0", 2));
    assert_false(upd_id_is_country(S("@[")));
}

static void
test_platform_parses_names_and_client_aliases(void **state)
{
    assert_int_equal(upd_platform_parse(S("windows")), UPD_PLATFORM_WINDOWS);
    assert_int_equal(upd_platform_parse(S("mac")), UPD_PLATFORM_MAC);
    assert_int_equal(upd_platform_parse(S("linux")), UPD_PLATFORM_LINUX);
    assert_int_equal(upd_platform_parse(S("win32")), UPD_PLATFORM_WINDOWS);
    assert_int_equal(upd_platform_parse(S("darwin")), UPD_PLATFORM_MAC);
}

static void
test_platform_refuses_unknown_prefixes_and_case(void **state)
{
    assert_int_equal(upd_platform_parse("", 0), -1);
    assert_int_equal(upd_platform_parse(S("win")), -1);
    assert_int_equal(upd_platform_parse(S("win64")), -1);
    assert_int_equal(upd_platform_parse(S("Windows")), -1);
    assert_int_equal(upd_platform_parse(S("macos")), -1);
    assert_int_equal(upd_platform_parse(S("linux ")), -1);
    assert_int_equal(upd_platform_parse("linux\0", 6), -1);
    assert_int_equal(upd_platform_parse("linuxx", 5), UPD_PLATFORM_LINUX); /* only len bytes count */
}

static void
test_platform_name_round_trips(void **state)
{
    for (int p = 0; p != UPD_PLATFORM_COUNT; ++p) {
        const char *name = upd_platform_name((upd_platform_t)p);
        assert_non_null(name);
        assert_int_equal(upd_platform_parse(name, strlen(name)), p);
    }
    assert_string_equal(upd_platform_name(UPD_PLATFORM_WINDOWS), "windows");
    assert_string_equal(upd_platform_name(UPD_PLATFORM_MAC), "mac");
    assert_string_equal(upd_platform_name(UPD_PLATFORM_LINUX), "linux");
    assert_null(upd_platform_name(UPD_PLATFORM_COUNT));
}

static void
test_arch_parses_names_and_tauri_rust_aliases(void **state)
{
    assert_int_equal(upd_arch_parse(S("x64")), UPD_ARCH_X64);
    assert_int_equal(upd_arch_parse(S("arm64")), UPD_ARCH_ARM64);
    assert_int_equal(upd_arch_parse(S("ia32")), UPD_ARCH_IA32);
    assert_int_equal(upd_arch_parse(S("universal")), UPD_ARCH_UNIVERSAL);
    assert_int_equal(upd_arch_parse(S("x86_64")), UPD_ARCH_X64);
    assert_int_equal(upd_arch_parse(S("aarch64")), UPD_ARCH_ARM64);
    assert_int_equal(upd_arch_parse(S("i686")), UPD_ARCH_IA32);
    assert_int_equal(upd_arch_parse(S("x86")), UPD_ARCH_IA32);
}

static void
test_arch_refuses_unknown_prefixes_and_case(void **state)
{
    assert_int_equal(upd_arch_parse("", 0), -1);
    assert_int_equal(upd_arch_parse(S("x6")), -1);
    assert_int_equal(upd_arch_parse(S("X64")), -1);
    assert_int_equal(upd_arch_parse(S("amd64")), -1);
    assert_int_equal(upd_arch_parse(S("arm")), -1);
    assert_int_equal(upd_arch_parse(S("i386")), -1);
    assert_int_equal(upd_arch_parse("x64\0", 4), -1);
}

static void
test_arch_name_round_trips(void **state)
{
    static const char *const expected[UPD_ARCH_COUNT] = {"x64", "arm64", "ia32", "universal"};
    for (int a = 0; a != UPD_ARCH_COUNT; ++a) {
        const char *name = upd_arch_name((upd_arch_t)a);
        assert_string_equal(name, expected[a]);
        assert_int_equal(upd_arch_parse(name, strlen(name)), a);
    }
    assert_null(upd_arch_name(UPD_ARCH_COUNT));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_id_accepts_lowercase_digits_and_inner_hyphens),
        cmocka_unit_test(test_app_id_length_is_1_to_63),
        cmocka_unit_test(test_app_id_refuses_leading_hyphen_uppercase_and_other_chars),
        cmocka_unit_test(test_app_id_refuses_nul_inside_len),
        cmocka_unit_test(test_app_id_reads_only_len_bytes),
        cmocka_unit_test(test_channel_shares_the_app_grammar),
        cmocka_unit_test(test_filename_accepts_its_whole_alphabet),
        cmocka_unit_test(test_filename_length_is_1_to_200),
        cmocka_unit_test(test_filename_refuses_dot_and_dotdot),
        cmocka_unit_test(test_filename_refuses_separators_spaces_and_other_chars),
        cmocka_unit_test(test_client_id_accepts_uuid_and_its_alphabet),
        cmocka_unit_test(test_client_id_length_is_1_to_128),
        cmocka_unit_test(test_client_id_refuses_other_chars),
        cmocka_unit_test(test_country_is_two_uppercase_letters),
        cmocka_unit_test(test_platform_parses_names_and_client_aliases),
        cmocka_unit_test(test_platform_refuses_unknown_prefixes_and_case),
        cmocka_unit_test(test_platform_name_round_trips),
        cmocka_unit_test(test_arch_parses_names_and_tauri_rust_aliases),
        cmocka_unit_test(test_arch_refuses_unknown_prefixes_and_case),
        cmocka_unit_test(test_arch_name_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
