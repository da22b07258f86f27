#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "domain/version.h"

static int
parse(const char *s, upd_version_t *v)
{
    return upd_version_parse(s, strlen(s), v);
}

static int
cmp(const char *a, const char *b)
{
    return upd_version_cmp_str(a, strlen(a), b, strlen(b));
}

static void
assert_valid(const char *s)
{
    upd_version_t v;
    if (parse(s, &v) != 0)
        fail_msg("\"%s\" should parse", s);
}

static void
assert_invalid(const char *s)
{
    upd_version_t v;
    if (parse(s, &v) != UPD_EINVAL)
        fail_msg("\"%s\" should be refused with UPD_EINVAL", s);
}

static void
test_parse_fills_core_and_points_pre_into_the_string(void **state)
{
    const char *s = "1.13.0-beta.2+build.7";
    upd_version_t v;
    assert_int_equal(parse(s, &v), 0);
    assert_int_equal(v.major, 1);
    assert_int_equal(v.minor, 13);
    assert_int_equal(v.patch, 0);
    assert_ptr_equal(v.pre, s + 7);
    assert_int_equal(v.pre_len, 6);
    assert_memory_equal(v.pre, "beta.2", 6);
}

static void
test_parse_without_pre_release_leaves_pre_null(void **state)
{
    upd_version_t v;
    assert_int_equal(parse("0.0.0", &v), 0);
    assert_null(v.pre);
    assert_int_equal(v.pre_len, 0);
    assert_int_equal(parse("2.0.1+20240101", &v), 0);
    assert_null(v.pre);
    assert_int_equal(v.patch, 1);
}

static void
test_parse_accepts_the_semver_grammar(void **state)
{
    assert_valid("0.0.0");
    assert_valid("10.20.30");
    assert_valid("1.0.0-alpha");
    assert_valid("1.0.0-0");
    assert_valid("1.0.0-0.3.7");
    assert_valid("1.0.0-x.7.z.92");
    assert_valid("1.0.0-x-y-z.--");
    assert_valid("1.0.0--");
    assert_valid("1.0.0-alpha0.valid");
    assert_valid("1.0.0-0alpha");
    assert_valid("1.0.0-00a");
    assert_valid("1.0.0+001");
    assert_valid("1.0.0+20130313144700");
    assert_valid("1.0.0-beta+exp.sha.5114f85");
    assert_valid("1.0.0+21AF26D3----117B344092BD");
    assert_valid("1.0.0-rc.1+build.1");
}

static void
test_parse_refuses_incomplete_or_extended_cores(void **state)
{
    assert_invalid("");
    assert_invalid("1");
    assert_invalid("1.2");
    assert_invalid("1.2.");
    assert_invalid("1..3");
    assert_invalid(".1.2.3");
    assert_invalid("1.2.3.4");
    assert_invalid("v1.2.3");
    assert_invalid("1.2.3 ");
    assert_invalid(" 1.2.3");
    assert_invalid("1.2.-3");
    assert_invalid("1.2.3a");
    assert_invalid("a.b.c");
    assert_invalid("1.2.3\n");
}

static void
test_parse_refuses_leading_zeros_in_core(void **state)
{
    assert_invalid("01.2.3");
    assert_invalid("1.02.3");
    assert_invalid("1.2.03");
    assert_invalid("00.0.0");
    assert_valid("0.10.0");
}

static void
test_parse_refuses_leading_zeros_in_numeric_pre_release_identifiers(void **state)
{
    assert_invalid("1.2.3-01");
    assert_invalid("1.2.3-alpha.01");
    assert_invalid("1.2.3-00");
    assert_valid("1.2.3-0");
    assert_valid("1.2.3-alpha.0");
    assert_valid("1.2.3-01a"); /* alphanumeric: a leading zero is just a character */
}

static void
test_parse_refuses_empty_identifiers(void **state)
{
    assert_invalid("1.2.3-");
    assert_invalid("1.2.3+");
    assert_invalid("1.2.3-+b");
    assert_invalid("1.2.3-a..b");
    assert_invalid("1.2.3-.a");
    assert_invalid("1.2.3-a.");
    assert_invalid("1.2.3+a..b");
    assert_invalid("1.2.3+.a");
    assert_invalid("1.2.3+a.");
}

static void
test_parse_refuses_characters_outside_identifiers(void **state)
{
    assert_invalid("1.2.3-alpha_1");
    assert_invalid("1.2.3-alpha+b+c");
    assert_invalid("1.2.3-al pha");
    assert_invalid("1.2.3-\xc3\xa9");
    assert_invalid("1.2.3+b/c");
}

static void
test_parse_refuses_nul_inside_len(void **state)
{
    upd_version_t v;
    assert_int_equal(upd_version_parse("1.2.3\0", 6, &v), UPD_EINVAL);
    assert_int_equal(upd_version_parse("1.2\0.3", 6, &v), UPD_EINVAL);
    assert_int_equal(upd_version_parse("1.2.3-a\0b", 9, &v), UPD_EINVAL);
}

static void
test_parse_reads_only_len_bytes(void **state)
{
    upd_version_t v;
    assert_int_equal(upd_version_parse("1.2.3junk", 5, &v), 0);
    assert_int_equal(upd_version_parse("1.2.3-rc.1/x", 10, &v), 0);
    assert_int_equal(v.pre_len, 4);
}

static void
test_parse_accepts_uint64_max_and_refuses_overflow(void **state)
{
    upd_version_t v;
    assert_int_equal(parse("18446744073709551615.0.0", &v), 0);
    assert_true(v.major == UINT64_MAX);
    assert_int_equal(parse("0.18446744073709551615.18446744073709551615", &v), 0);
    assert_true(v.minor == UINT64_MAX && v.patch == UINT64_MAX);
    assert_invalid("18446744073709551616.0.0");
    assert_invalid("0.18446744073709551616.0");
    assert_invalid("0.0.18446744073709551616");
    assert_invalid("99999999999999999999999.0.0");
}

static void
test_parse_refuses_strings_longer_than_the_max(void **state)
{
    char buf[UPD_VERSION_MAX + 2];
    upd_version_t v;

    /* "1.0.0-" then 'a's up to exactly UPD_VERSION_MAX bytes */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "1.0.0-", 6);
    assert_int_equal(upd_version_parse(buf, UPD_VERSION_MAX, &v), 0);
    assert_int_equal(v.pre_len, UPD_VERSION_MAX - 6);
    assert_int_equal(upd_version_parse(buf, UPD_VERSION_MAX + 1, &v), UPD_EINVAL);
}

static void
test_parse_leaves_out_untouched_on_error(void **state)
{
    upd_version_t v = {.major = 7, .minor = 8, .patch = 9, .pre = NULL, .pre_len = 0};
    assert_int_equal(parse("1.2.3-", &v), UPD_EINVAL);
    assert_int_equal(v.major, 7);
    assert_int_equal(v.patch, 9);
}

static void
test_semver_org_precedence_chain(void **state)
{
    static const char *const chain[] = {
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
        "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
        "1.0.0-rc.1",  "1.0.0",         "2.0.0",
        "2.1.0",       "2.1.1",
    };
    size_t n = sizeof(chain) / sizeof(chain[0]);
    for (size_t i = 0; i != n; ++i) {
        for (size_t j = 0; j != n; ++j) {
            int c = cmp(chain[i], chain[j]);
            if ((i < j && c >= 0) || (i == j && c != 0) || (i > j && c <= 0))
                fail_msg("cmp(\"%s\", \"%s\") = %d", chain[i], chain[j], c);
        }
    }
}

static void
test_core_compares_numerically_not_lexically(void **state)
{
    assert_true(cmp("1.10.0", "1.9.0") > 0);
    assert_true(cmp("10.0.0", "9.99.99") > 0);
    assert_true(cmp("1.2.10", "1.2.9") > 0);
    assert_true(cmp("18446744073709551615.0.0", "18446744073709551614.99.99") > 0);
}

static void
test_numeric_pre_release_identifiers_compare_numerically(void **state)
{
    assert_true(cmp("1.0.0-2", "1.0.0-10") < 0);
    assert_true(cmp("1.0.0-beta.9", "1.0.0-beta.10") < 0);
    /* beyond 64 bits: compared as digit strings, no overflow */
    assert_true(cmp("1.0.0-99999999999999999999", "1.0.0-100000000000000000000") < 0);
    assert_int_equal(cmp("1.0.0-99999999999999999999", "1.0.0-99999999999999999999"), 0);
}

static void
test_numeric_pre_release_identifier_sorts_below_alphanumeric(void **state)
{
    assert_true(cmp("1.0.0-999", "1.0.0-a") < 0);
    assert_true(cmp("1.0.0-1", "1.0.0--") < 0);
    assert_true(cmp("1.0.0-alpha.99", "1.0.0-alpha.a") < 0);
    assert_true(cmp("1.0.0-9", "1.0.0-0a") < 0); /* "0a" is alphanumeric */
}

static void
test_alphanumeric_identifiers_compare_in_ascii_order(void **state)
{
    assert_true(cmp("1.0.0-RC", "1.0.0-rc") < 0); /* 'R' < 'r' in ASCII */
    assert_true(cmp("1.0.0-alpha", "1.0.0-alphb") < 0);
    assert_true(cmp("1.0.0-alp", "1.0.0-alpha") < 0);
    assert_true(cmp("1.0.0--", "1.0.0-0a") < 0); /* '-' < '0' */
}

static void
test_shorter_pre_release_set_sorts_lower(void **state)
{
    assert_true(cmp("1.0.0-alpha", "1.0.0-alpha.0") < 0);
    assert_true(cmp("1.0.0-a.b.c", "1.0.0-a.b.c.d") < 0);
    assert_true(cmp("1.0.0-a.b.c.d", "1.0.0-a.b.c") > 0);
}

static void
test_pre_release_sorts_below_its_release_only(void **state)
{
    assert_true(cmp("1.0.0-rc.1", "1.0.0") < 0);
    assert_true(cmp("1.0.1-alpha", "1.0.0") > 0);
    assert_true(cmp("1.0.0", "1.0.0-zzz") > 0);
}

static void
test_build_metadata_is_ignored(void **state)
{
    assert_int_equal(cmp("1.0.0+a", "1.0.0+b"), 0);
    assert_int_equal(cmp("1.0.0+a", "1.0.0"), 0);
    assert_int_equal(cmp("1.0.0-rc.1+x.1", "1.0.0-rc.1+y.2"), 0);
    assert_true(cmp("1.0.0-rc.1+zzz", "1.0.0-rc.2+aaa") < 0);
}

static void
test_cmp_on_parsed_versions_matches_cmp_str(void **state)
{
    upd_version_t a, b;
    assert_int_equal(parse("1.3.0-beta.2", &a), 0);
    assert_int_equal(parse("1.3.0-beta.10", &b), 0);
    assert_true(upd_version_cmp(&a, &b) < 0);
    assert_true(upd_version_cmp(&b, &a) > 0);
    assert_int_equal(upd_version_cmp(&a, &a), 0);
}

static void
test_invalid_strings_sort_before_every_valid_one(void **state)
{
    assert_true(cmp("garbage", "0.0.0-0") < 0);
    assert_true(cmp("0.0.0-0", "garbage") > 0);
    assert_true(cmp("", "0.0.0") < 0);
    assert_true(cmp("01.0.0", "0.0.0") < 0);
    assert_int_equal(cmp("garbage", "v1.0.0"), 0);
    assert_int_equal(cmp("", ""), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fills_core_and_points_pre_into_the_string),
        cmocka_unit_test(test_parse_without_pre_release_leaves_pre_null),
        cmocka_unit_test(test_parse_accepts_the_semver_grammar),
        cmocka_unit_test(test_parse_refuses_incomplete_or_extended_cores),
        cmocka_unit_test(test_parse_refuses_leading_zeros_in_core),
        cmocka_unit_test(test_parse_refuses_leading_zeros_in_numeric_pre_release_identifiers),
        cmocka_unit_test(test_parse_refuses_empty_identifiers),
        cmocka_unit_test(test_parse_refuses_characters_outside_identifiers),
        cmocka_unit_test(test_parse_refuses_nul_inside_len),
        cmocka_unit_test(test_parse_reads_only_len_bytes),
        cmocka_unit_test(test_parse_accepts_uint64_max_and_refuses_overflow),
        cmocka_unit_test(test_parse_refuses_strings_longer_than_the_max),
        cmocka_unit_test(test_parse_leaves_out_untouched_on_error),
        cmocka_unit_test(test_semver_org_precedence_chain),
        cmocka_unit_test(test_core_compares_numerically_not_lexically),
        cmocka_unit_test(test_numeric_pre_release_identifiers_compare_numerically),
        cmocka_unit_test(test_numeric_pre_release_identifier_sorts_below_alphanumeric),
        cmocka_unit_test(test_alphanumeric_identifiers_compare_in_ascii_order),
        cmocka_unit_test(test_shorter_pre_release_set_sorts_lower),
        cmocka_unit_test(test_pre_release_sorts_below_its_release_only),
        cmocka_unit_test(test_build_metadata_is_ignored),
        cmocka_unit_test(test_cmp_on_parsed_versions_matches_cmp_str),
        cmocka_unit_test(test_invalid_strings_sort_before_every_valid_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
