#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "domain/hll.h"

static uint64_t
hash_of(const char *prefix, uint64_t i)
{
    char id[64];
    int len = snprintf(id, sizeof(id), "%s-%08llu", prefix, (unsigned long long)i);
    return upd_hll_hash(id, (size_t)len);
}

static void
add_ids(upd_hll_t *h, const char *prefix, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i != to; ++i)
        assert_int_equal(upd_hll_add(h, hash_of(prefix, i)), 0);
}

static double
rel_error(uint64_t got, uint64_t want)
{
    return fabs((double)got - (double)want) / (double)want;
}

static void
test_small_counts_are_exact_and_repeats_count_once(void **state)
{
    upd_hll_t h;
    upd_hll_init(&h);
    assert_int_equal(upd_hll_count(&h), 0);
    add_ids(&h, "c", 0, 1000);
    add_ids(&h, "c", 0, 1000);
    assert_int_equal(upd_hll_count(&h), 1000);
    add_ids(&h, "c", 0, UPD_HLL_SPARSE_MAX);
    assert_int_equal(upd_hll_count(&h), UPD_HLL_SPARSE_MAX);
    assert_false(h.dense);
    upd_hll_dispose(&h);
}

static void
test_large_counts_are_within_two_percent(void **state)
{
    static const uint64_t sizes[] = {UPD_HLL_SPARSE_MAX + 1, 50000, 200000, 1000000, 3000000};
    for (size_t k = 0; k != sizeof(sizes) / sizeof(sizes[0]); ++k) {
        upd_hll_t h;
        upd_hll_init(&h);
        add_ids(&h, "client", 0, sizes[k]);
        uint64_t got = upd_hll_count(&h);
        print_message("%llu distinct ids: estimate %llu (%.3f%% off)\n", (unsigned long long)sizes[k], (unsigned long long)got,
                      100 * rel_error(got, sizes[k]));
        assert_true(h.dense);
        assert_true(rel_error(got, sizes[k]) <= 0.02);
        upd_hll_dispose(&h);
    }
}

static void
test_merged_sketches_count_the_union_once(void **state)
{
    /* two origins: 0..150k and 100k..250k; together 250k distinct, 50k of them seen by both */
    upd_hll_t a, b, small;
    upd_hll_init(&a);
    upd_hll_init(&b);
    upd_hll_init(&small);
    add_ids(&a, "id", 0, 150000);
    add_ids(&b, "id", 100000, 250000);
    add_ids(&small, "id", 240000, 260000 - 16000); /* 4,000 ids, still sparse; 4,000 of them new */
    assert_false(small.dense);
    assert_int_equal(upd_hll_merge(&a, &b), 0);
    assert_true(rel_error(upd_hll_count(&a), 250000) <= 0.02);
    assert_int_equal(upd_hll_merge(&a, &small), 0);
    assert_true(rel_error(upd_hll_count(&a), 254000) <= 0.02);

    /* sparse with sparse stays exact */
    upd_hll_t x, y;
    upd_hll_init(&x);
    upd_hll_init(&y);
    add_ids(&x, "s", 0, 1500);
    add_ids(&y, "s", 1000, 2500);
    assert_int_equal(upd_hll_merge(&x, &y), 0);
    assert_int_equal(upd_hll_count(&x), 2500);
    /* a sparse union past the limit turns dense and stays close */
    add_ids(&y, "s", 2500, 20000);
    assert_int_equal(upd_hll_merge(&x, &y), 0);
    assert_true(x.dense);
    assert_true(rel_error(upd_hll_count(&x), 20000) <= 0.02);
    upd_hll_dispose(&a);
    upd_hll_dispose(&b);
    upd_hll_dispose(&small);
    upd_hll_dispose(&x);
    upd_hll_dispose(&y);
}

static void
test_encoding_round_trips_and_is_bounded(void **state)
{
    uint8_t *buf = malloc(UPD_HLL_ENCODED_MAX);
    upd_hll_t h, back, again;
    upd_hll_init(&h);
    size_t len = upd_hll_encode(&h, buf);
    assert_int_equal(len, UPD_HLL_HEADER);
    assert_int_equal(upd_hll_decode(&back, buf, len), 0);
    assert_int_equal(upd_hll_count(&back), 0);
    upd_hll_dispose(&back);

    add_ids(&h, "e", 0, 3000);
    len = upd_hll_encode(&h, buf);
    assert_int_equal(len, UPD_HLL_HEADER + 3000 * 8);
    assert_int_equal(upd_hll_decode(&back, buf, len), 0);
    assert_int_equal(upd_hll_count(&back), 3000);
    /* the same clients added in another order encode byte for byte alike */
    upd_hll_init(&again);
    for (uint64_t i = 3000; i-- > 0;)
        assert_int_equal(upd_hll_add(&again, hash_of("e", i)), 0);
    uint8_t *buf2 = malloc(UPD_HLL_ENCODED_MAX);
    assert_int_equal(upd_hll_encode(&again, buf2), len);
    assert_memory_equal(buf, buf2, len);
    upd_hll_dispose(&back);
    upd_hll_dispose(&again);

    add_ids(&h, "e", 3000, 100000);
    len = upd_hll_encode(&h, buf);
    assert_int_equal(len, UPD_HLL_HEADER + UPD_HLL_REGISTERS);
    assert_true(len <= UPD_HLL_ENCODED_MAX);
    assert_int_equal(upd_hll_decode(&back, buf, len), 0);
    assert_int_equal(upd_hll_count(&back), upd_hll_count(&h));
    upd_hll_dispose(&back);
    upd_hll_dispose(&h);
    free(buf);
    free(buf2);
}

static void
test_malformed_encodings_are_refused(void **state)
{
    uint8_t buf[UPD_HLL_HEADER + 16] = {'U', 'H', 1, 0, UPD_HLL_P, 0, 2, 0};
    upd_hll_t h;
    assert_int_equal(upd_hll_decode(&h, buf, sizeof(buf)), 0); /* two zero hashes, counted as one client */
    upd_hll_dispose(&h);
    assert_int_equal(upd_hll_decode(&h, buf, sizeof(buf) - 1), UPD_EINVAL); /* length does not add up */
    assert_int_equal(upd_hll_decode(&h, buf, 4), UPD_EINVAL);
    buf[4] = UPD_HLL_P + 1;
    assert_int_equal(upd_hll_decode(&h, buf, sizeof(buf)), UPD_EINVAL); /* another precision */
    buf[4] = UPD_HLL_P;
    buf[0] = 'X';
    assert_int_equal(upd_hll_decode(&h, buf, sizeof(buf)), UPD_EINVAL);
    buf[0] = 'U';
    buf[3] = 1; /* dense, but not 2^14 registers long */
    assert_int_equal(upd_hll_decode(&h, buf, sizeof(buf)), UPD_EINVAL);
    buf[3] = 0, buf[6] = 0xff, buf[7] = 0xff; /* more hashes than a sparse sketch holds */
    assert_int_equal(upd_hll_decode(&h, buf, sizeof(buf)), UPD_EINVAL);

    uint8_t *dense = calloc(1, UPD_HLL_HEADER + UPD_HLL_REGISTERS);
    memcpy(dense, (uint8_t[]){'U', 'H', 1, 1, UPD_HLL_P, 0, 0, 0}, 8);
    assert_int_equal(upd_hll_decode(&h, dense, UPD_HLL_HEADER + UPD_HLL_REGISTERS), 0);
    upd_hll_dispose(&h);
    dense[UPD_HLL_HEADER + 7] = 64 - UPD_HLL_P + 2; /* a register value no hash gives */
    assert_int_equal(upd_hll_decode(&h, dense, UPD_HLL_HEADER + UPD_HLL_REGISTERS), UPD_EINVAL);
    free(dense);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_counts_are_exact_and_repeats_count_once),
        cmocka_unit_test(test_large_counts_are_within_two_percent),
        cmocka_unit_test(test_merged_sketches_count_the_union_once),
        cmocka_unit_test(test_encoding_round_trips_and_is_bounded),
        cmocka_unit_test(test_malformed_encodings_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
