#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
/* The library's exported (non-inline) XXH3, to check the inlined one in rollout.c against an independent build. */
#include <xxhash.h>

#include "base/err.h"
#include "domain/rollout.h"

#define NIDS 100000
#define ID_LEN 36

/* 100k client ids shaped like the UUIDs electron-updater sends in x-user-staging-id, from a fixed splitmix64 stream. */
static char ids[NIDS][ID_LEN + 1];

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int
make_ids(void **state)
{
    uint64_t x = 20240601;
    for (size_t i = 0; i != NIDS; ++i) {
        uint64_t a = splitmix64(&x), b = splitmix64(&x);
        snprintf(ids[i], sizeof(ids[i]), "%08llx-%04llx-4%03llx-%04llx-%012llx", (unsigned long long)(a >> 32),
                 (unsigned long long)((a >> 16) & 0xffff), (unsigned long long)(a & 0xfff),
                 (unsigned long long)(0x8000 | ((b >> 48) & 0x3fff)), (unsigned long long)(b & 0xffffffffffffULL));
    }
    return 0;
}

static bool
eligible(const upd_rollout_t *r, size_t i)
{
    return upd_decision_is_eligible(upd_rollout_decide(r, ids[i], ID_LEN, false, NULL));
}

static size_t
count_eligible(const upd_rollout_t *r)
{
    size_t n = 0;
    for (size_t i = 0; i != NIDS; ++i)
        n += eligible(r, i);
    return n;
}

static void
test_generated_ids_are_distinct_uuids(void **state)
{
    assert_int_equal(strlen(ids[0]), ID_LEN);
    assert_int_equal(ids[0][14], '4');
    assert_string_not_equal(ids[0], ids[1]);
    assert_string_not_equal(ids[NIDS - 2], ids[NIDS - 1]);
}

static void
test_bucket_is_deterministic_across_calls(void **state)
{
    for (size_t i = 0; i != 1000; ++i) {
        uint32_t b = upd_rollout_bucket(ids[i], ID_LEN, 7);
        assert_true(b < UPD_ROLLOUT_BASIS_POINTS);
        assert_int_equal(upd_rollout_bucket(ids[i], ID_LEN, 7), b);
        char copy[ID_LEN + 1];
        memcpy(copy, ids[i], sizeof(copy)); /* depends on the bytes, not the pointer */
        assert_int_equal(upd_rollout_bucket(copy, ID_LEN, 7), b);
    }
}

static void
test_bucket_matches_the_xxhash_library(void **state)
{
    for (size_t i = 0; i != NIDS; ++i) {
        uint64_t seed = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
        uint32_t expected = (uint32_t)(XXH3_64bits_withSeed(ids[i], ID_LEN, seed) % 10000);
        if (upd_rollout_bucket(ids[i], ID_LEN, seed) != expected)
            fail_msg("bucket of %s differs from libxxhash", ids[i]);
    }
}

static void
test_bucket_regression_values_stay_pinned(void **state)
{
    /* Every origin and every release of Updraft must put a client in the same bucket: a change of hash, seed handling or
     * modulus would silently reshuffle live rollouts. XXH3_64bits("") = 2D06800538D394C2 is xxHash's published value. */
    assert_true(XXH3_64bits_withSeed("", 0, 0) == 0x2d06800538d394c2ULL);
    assert_int_equal(upd_rollout_bucket("", 0, 0), 0x2d06800538d394c2ULL % 10000); /* 3138 */
    assert_true(XXH3_64bits_withSeed("client-a", 8, 0) == 0xb907ab1bd072159fULL);
    assert_int_equal(upd_rollout_bucket("client-a", 8, 0), 7007);
    assert_true(XXH3_64bits_withSeed("3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", 36, 42) == 0xea7436a85f87263aULL);
    assert_int_equal(upd_rollout_bucket("3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", 36, 42), 1418);
}

static void
test_bucket_depends_on_the_seed(void **state)
{
    size_t same = 0;
    for (size_t i = 0; i != 10000; ++i)
        same += upd_rollout_bucket(ids[i], ID_LEN, 1) == upd_rollout_bucket(ids[i], ID_LEN, 2);
    assert_true(same < 10); /* ~1 expected by chance */
}

static void
test_raising_percent_never_removes_a_client(void **state)
{
    static const uint32_t sweep[] = {0, 1, 50, 100, 1000, 2550, 5000, 7500, 9900, 9999, 10000};
    upd_rollout_t lo = {.seed = 0x5eed}, hi = {.seed = 0x5eed};
    for (size_t k = 0; k + 1 != sizeof(sweep) / sizeof(sweep[0]); ++k) {
        lo.percent_bp = sweep[k];
        hi.percent_bp = sweep[k + 1];
        size_t nlo = 0, nhi = 0;
        for (size_t i = 0; i != NIDS; ++i) {
            bool in_lo = eligible(&lo, i), in_hi = eligible(&hi, i);
            if (in_lo && !in_hi)
                fail_msg("%s is in at %u bp but out at %u bp", ids[i], lo.percent_bp, hi.percent_bp);
            nlo += in_lo;
            nhi += in_hi;
        }
        assert_true(nlo <= nhi);
    }
}

static void
test_eligible_fraction_is_within_half_a_point_of_percent(void **state)
{
    static const uint32_t bps[] = {100, 1000, 2550, 5000, 9900};
    for (size_t k = 0; k != sizeof(bps) / sizeof(bps[0]); ++k) {
        upd_rollout_t r = {.seed = 0xc0ffee, .percent_bp = bps[k]};
        double got = 100.0 * (double)count_eligible(&r) / NIDS, want = bps[k] / 100.0;
        if (got < want - 0.5 || got > want + 0.5)
            fail_msg("%.2f%% eligible at %.2f%%", got, want);
    }
}

static void
test_full_rollout_takes_everyone(void **state)
{
    upd_rollout_t r = {.seed = 99, .percent_bp = UPD_ROLLOUT_BASIS_POINTS};
    assert_int_equal(count_eligible(&r), NIDS);
}

static void
test_rollouts_with_different_seeds_pick_independent_clients(void **state)
{
    upd_rollout_t a = {.seed = 1111, .percent_bp = 5000}, b = {.seed = 2222, .percent_bp = 5000};
    size_t both = 0;
    for (size_t i = 0; i != NIDS; ++i)
        both += eligible(&a, i) && eligible(&b, i);
    double overlap = 100.0 * (double)both / NIDS;
    if (overlap < 24.0 || overlap > 26.0)
        fail_msg("overlap at 50%%/50%% is %.2f%%, expected 25%% +- 1", overlap);

    /* at 10% each: ~1% in both (not 10%, as it would be if a new seed picked the same first clients) */
    a.percent_bp = b.percent_bp = 1000;
    size_t ina = 0, inb = 0;
    both = 0;
    for (size_t i = 0; i != NIDS; ++i) {
        bool ea = eligible(&a, i), eb = eligible(&b, i);
        ina += ea;
        inb += eb;
        both += ea && eb;
    }
    overlap = 100.0 * (double)both / NIDS;
    if (overlap < 0.5 || overlap > 1.5)
        fail_msg("overlap at 10%%/10%% is %.2f%%, expected 1%% +- 0.5", overlap);
    assert_true(both < ina && both < inb);
}

static void
test_pinned_client_is_eligible_even_when_halted(void **state)
{
    static const char countries[] = "DEFR";
    upd_rollout_t r = {.seed = 3, .percent_bp = 0, .countries = countries, .ncountries = 2};
    assert_int_equal(upd_rollout_decide(&r, ids[0], ID_LEN, true, NULL), UPD_DECISION_PINNED);
    assert_int_equal(upd_rollout_decide(&r, ids[0], ID_LEN, true, "US"), UPD_DECISION_PINNED);
    r.paused = true;
    assert_int_equal(upd_rollout_decide(&r, ids[0], ID_LEN, true, "DE"), UPD_DECISION_PINNED);
    assert_true(upd_decision_is_eligible(UPD_DECISION_PINNED));
}

static void
test_halted_rollout_offers_nobody_but_pinned(void **state)
{
    upd_rollout_t r = {.seed = 3, .percent_bp = 0};
    for (size_t i = 0; i != NIDS; ++i) {
        upd_decision_t d = upd_rollout_decide(&r, ids[i], ID_LEN, false, "DE");
        if (d != UPD_DECISION_OUT_PERCENT)
            fail_msg("%s gets %s from a halted rollout", ids[i], upd_decision_name(d));
    }
    assert_int_equal(upd_rollout_decide(&r, ids[0], ID_LEN, true, "DE"), UPD_DECISION_PINNED);
}

static void
test_pausing_does_not_change_any_decision(void **state)
{
    static const char countries[] = "DE";
    upd_rollout_t run = {.seed = 77, .percent_bp = 2550, .countries = countries, .ncountries = 1};
    upd_rollout_t paused = run;
    paused.paused = true;
    for (size_t i = 0; i != NIDS; ++i) {
        const char *country = (i % 3 == 0) ? "DE" : (i % 3 == 1) ? "FR" : NULL;
        assert_int_equal(upd_rollout_decide(&run, ids[i], ID_LEN, false, country),
                         upd_rollout_decide(&paused, ids[i], ID_LEN, false, country));
    }
}

static void
test_empty_country_list_allows_every_country_and_unknown(void **state)
{
    upd_rollout_t r = {.seed = 1, .percent_bp = 10000};
    assert_true(upd_rollout_geo_allowed(&r, "DE"));
    assert_true(upd_rollout_geo_allowed(&r, "US"));
    assert_true(upd_rollout_geo_allowed(&r, NULL));
    assert_int_equal(upd_rollout_decide(&r, ids[0], ID_LEN, false, NULL), UPD_DECISION_IN);
}

static void
test_country_list_allows_only_listed_countries(void **state)
{
    static const char countries[] = "DEFRIT";
    upd_rollout_t r = {.seed = 1, .percent_bp = 10000, .countries = countries, .ncountries = 3};
    assert_true(upd_rollout_geo_allowed(&r, "DE"));
    assert_true(upd_rollout_geo_allowed(&r, "FR"));
    assert_true(upd_rollout_geo_allowed(&r, "IT"));
    assert_false(upd_rollout_geo_allowed(&r, "US"));
    assert_false(upd_rollout_geo_allowed(&r, "EF")); /* straddles "DE" and "FR": codes are matched on 2-byte boundaries */
    assert_false(upd_rollout_geo_allowed(&r, "RI"));
    assert_false(upd_rollout_geo_allowed(&r, "de"));
}

static void
test_country_list_refuses_unknown_country(void **state)
{
    static const char countries[] = "DE";
    upd_rollout_t r = {.seed = 1, .percent_bp = 10000, .countries = countries, .ncountries = 1};
    assert_false(upd_rollout_geo_allowed(&r, NULL));
    assert_int_equal(upd_rollout_decide(&r, ids[0], ID_LEN, false, NULL), UPD_DECISION_OUT_GEO);
}

static void
test_decision_reports_percent_before_geo(void **state)
{
    static const char countries[] = "DE";
    upd_rollout_t r = {.seed = 5, .percent_bp = 5000, .countries = countries, .ncountries = 1};
    size_t in = 0, out_percent = 0, out_geo = 0;
    for (size_t i = 0; i != NIDS; ++i) {
        bool inside = upd_rollout_bucket(ids[i], ID_LEN, r.seed) < r.percent_bp;
        upd_decision_t de = upd_rollout_decide(&r, ids[i], ID_LEN, false, "DE");
        upd_decision_t us = upd_rollout_decide(&r, ids[i], ID_LEN, false, "US");
        assert_int_equal(de, inside ? UPD_DECISION_IN : UPD_DECISION_OUT_PERCENT);
        assert_int_equal(us, inside ? UPD_DECISION_OUT_GEO : UPD_DECISION_OUT_PERCENT);
        in += de == UPD_DECISION_IN;
        out_percent += de == UPD_DECISION_OUT_PERCENT;
        out_geo += us == UPD_DECISION_OUT_GEO;
    }
    assert_int_equal(in, out_geo);
    assert_int_equal(in + out_percent, NIDS);
}

static void
test_decision_eligibility_and_names(void **state)
{
    assert_true(upd_decision_is_eligible(UPD_DECISION_PINNED));
    assert_true(upd_decision_is_eligible(UPD_DECISION_IN));
    assert_false(upd_decision_is_eligible(UPD_DECISION_OUT_PERCENT));
    assert_false(upd_decision_is_eligible(UPD_DECISION_OUT_GEO));
    assert_string_equal(upd_decision_name(UPD_DECISION_PINNED), "pinned");
    assert_string_equal(upd_decision_name(UPD_DECISION_IN), "in");
    assert_string_equal(upd_decision_name(UPD_DECISION_OUT_PERCENT), "out_percent");
    assert_string_equal(upd_decision_name(UPD_DECISION_OUT_GEO), "out_geo");
}

static void
assert_percent(const char *s, uint32_t bp)
{
    uint32_t got = 123456;
    int ret = upd_rollout_percent_parse(s, strlen(s), &got);
    if (ret != 0 || got != bp)
        fail_msg("\"%s\" gave %d / %u bp, expected %u bp", s, ret, got, bp);
}

static void
assert_percent_refused(const char *s, size_t len)
{
    uint32_t got = 123456;
    int ret = upd_rollout_percent_parse(s, len, &got);
    if (ret != UPD_EINVAL || got != 123456)
        fail_msg("\"%.*s\" gave %d / %u bp, expected UPD_EINVAL and no output", (int)len, s, ret, got);
}

#define REFUSED(lit) assert_percent_refused((lit), sizeof(lit) - 1)

static void
test_deciding_from_a_known_bucket_matches_deciding_from_the_id(void **state)
{
    static const char countries[] = "DEFR";
    upd_rollout_t r = {.seed = 42, .percent_bp = 2550, .countries = countries, .ncountries = 2};
    static const char *const where[] = {NULL, "DE", "GB"};
    for (size_t i = 0; i != NIDS; ++i) {
        const char *country = where[i % 3];
        bool pinned = i % 97 == 0;
        uint32_t bucket = upd_rollout_bucket(ids[i], ID_LEN, r.seed);
        assert_int_equal(upd_rollout_decide_bucket(&r, bucket, pinned, country),
                         upd_rollout_decide(&r, ids[i], ID_LEN, pinned, country));
    }
}

static void
test_percent_parses_up_to_two_decimals_into_basis_points(void **state)
{
    assert_percent("25", 2500);
    assert_percent("25.5", 2550);
    assert_percent("25.50", 2550);
    assert_percent("25.05", 2505);
    assert_percent("0", 0);
    assert_percent("0.01", 1);
    assert_percent("99.99", 9999);
    assert_percent("100", 10000);
    assert_percent("100.0", 10000);
    assert_percent("100.00", 10000);
    assert_percent("05", 500);
}

static void
test_percent_refuses_out_of_range_and_junk(void **state)
{
    REFUSED("-1");
    REFUSED("-0");
    REFUSED("100.01");
    REFUSED("101");
    REFUSED("1000");
    REFUSED("25.555");
    REFUSED("");
    REFUSED(".5"); /* refused: only the spellings the API prints back are accepted */
    REFUSED("5.");
    REFUSED(".");
    REFUSED("1e2");
    REFUSED(" 5");
    REFUSED("5 ");
    REFUSED("+5");
    REFUSED("abc");
    REFUSED("25,5");
    REFUSED("0x10");
    REFUSED("25.5.5");
    REFUSED("5%");
    REFUSED("5\0");
    REFUSED("99999999999999999999");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_ids_are_distinct_uuids),
        cmocka_unit_test(test_bucket_is_deterministic_across_calls),
        cmocka_unit_test(test_bucket_matches_the_xxhash_library),
        cmocka_unit_test(test_bucket_regression_values_stay_pinned),
        cmocka_unit_test(test_bucket_depends_on_the_seed),
        cmocka_unit_test(test_raising_percent_never_removes_a_client),
        cmocka_unit_test(test_eligible_fraction_is_within_half_a_point_of_percent),
        cmocka_unit_test(test_full_rollout_takes_everyone),
        cmocka_unit_test(test_rollouts_with_different_seeds_pick_independent_clients),
        cmocka_unit_test(test_pinned_client_is_eligible_even_when_halted),
        cmocka_unit_test(test_halted_rollout_offers_nobody_but_pinned),
        cmocka_unit_test(test_pausing_does_not_change_any_decision),
        cmocka_unit_test(test_empty_country_list_allows_every_country_and_unknown),
        cmocka_unit_test(test_country_list_allows_only_listed_countries),
        cmocka_unit_test(test_country_list_refuses_unknown_country),
        cmocka_unit_test(test_decision_reports_percent_before_geo),
        cmocka_unit_test(test_decision_eligibility_and_names),
        cmocka_unit_test(test_deciding_from_a_known_bucket_matches_deciding_from_the_id),
        cmocka_unit_test(test_percent_parses_up_to_two_decimals_into_basis_points),
        cmocka_unit_test(test_percent_refuses_out_of_range_and_junk),
    };
    return cmocka_run_group_tests(tests, make_ids, NULL);
}
