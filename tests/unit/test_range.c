#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "domain/range.h"

static upd_range_t parts[UPD_RANGE_MAX_PARTS];
static size_t nparts;

static upd_range_result_t
parse(const char *value, uint64_t size)
{
    nparts = 12345; /* so a test sees whether count was written */
    return upd_range_parse(value, strlen(value), size, parts, UPD_RANGE_MAX_PARTS, &nparts);
}

static void
assert_part(size_t i, uint64_t start, uint64_t len)
{
    assert_true(i < nparts);
    if (parts[i].start != start || parts[i].len != len)
        fail_msg("part %zu is [%llu, +%llu), expected [%llu, +%llu)", i, (unsigned long long)parts[i].start,
                 (unsigned long long)parts[i].len, (unsigned long long)start, (unsigned long long)len);
}

static void
assert_whole(const char *value, uint64_t size)
{
    upd_range_result_t r = parse(value, size);
    if (r != UPD_RANGE_WHOLE)
        fail_msg("\"%s\" on %llu bytes gave %d, expected WHOLE", value, (unsigned long long)size, (int)r);
    assert_int_equal(nparts, 0);
}

static void
assert_unsatisfiable(const char *value, uint64_t size)
{
    upd_range_result_t r = parse(value, size);
    if (r != UPD_RANGE_UNSATISFIABLE)
        fail_msg("\"%s\" on %llu bytes gave %d, expected UNSATISFIABLE", value, (unsigned long long)size, (int)r);
}

/* "bytes=" followed by n ranges "start-start" stepping by `step` bytes, joined by sep; the caller frees it. */
static char *
many_ranges(size_t n, uint64_t step, const char *sep)
{
    size_t cap = 16 + n * (48 + strlen(sep)), off;
    char *s = malloc(cap);
    assert_non_null(s);
    off = (size_t)snprintf(s, cap, "bytes=");
    for (size_t i = 0; i != n; ++i)
        off += (size_t)snprintf(s + off, cap - off, "%s%llu-%llu", i == 0 ? "" : sep, (unsigned long long)(i * step),
                                (unsigned long long)(i * step + step / 2));
    return s;
}

static void
test_single_closed_range(void **state)
{
    assert_int_equal(parse("bytes=0-499", 10000), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 1);
    assert_part(0, 0, 500);
    assert_int_equal(parse("bytes=9999-9999", 10000), UPD_RANGE_PARTIAL);
    assert_part(0, 9999, 1);
}

static void
test_open_ended_range_runs_to_the_end(void **state)
{
    assert_int_equal(parse("bytes=9500-", 10000), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 1);
    assert_part(0, 9500, 500);
    assert_int_equal(parse("bytes=0-", 10000), UPD_RANGE_PARTIAL);
    assert_part(0, 0, 10000);
}

static void
test_suffix_range_takes_the_last_bytes(void **state)
{
    assert_int_equal(parse("bytes=-500", 10000), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 1);
    assert_part(0, 9500, 500);
    assert_int_equal(parse("bytes=-1", 1), UPD_RANGE_PARTIAL);
    assert_part(0, 0, 1);
}

static void
test_suffix_longer_than_the_file_is_the_whole_file_as_one_part(void **state)
{
    assert_int_equal(parse("bytes=-20000", 10000), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 1);
    assert_part(0, 0, 10000);
    assert_int_equal(parse("bytes=-10000", 10000), UPD_RANGE_PARTIAL);
    assert_part(0, 0, 10000);
}

static void
test_zero_suffix_is_unsatisfiable(void **state)
{
    assert_unsatisfiable("bytes=-0", 10000);
}

static void
test_last_beyond_the_end_is_clamped(void **state)
{
    assert_int_equal(parse("bytes=9000-99999", 10000), UPD_RANGE_PARTIAL);
    assert_part(0, 9000, 1000);
    assert_int_equal(parse("bytes=0-10000", 10000), UPD_RANGE_PARTIAL);
    assert_part(0, 0, 10000);
    assert_int_equal(parse("bytes=5-18446744073709551615", 10), UPD_RANGE_PARTIAL);
    assert_part(0, 5, 5);
}

static void
test_first_at_or_beyond_the_end_is_unsatisfiable(void **state)
{
    assert_unsatisfiable("bytes=10000-", 10000);
    assert_unsatisfiable("bytes=10000-10005", 10000);
    assert_unsatisfiable("bytes=20000-30000", 10000);
    assert_unsatisfiable("bytes=10000-10001, 20000-", 10000);
    assert_unsatisfiable("bytes=18446744073709551615-", 10000);
}

static void
test_unsatisfiable_parts_are_dropped_from_a_mixed_set(void **state)
{
    assert_int_equal(parse("bytes=0-9, 20000-20010, 50-59", 100), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 2);
    assert_part(0, 0, 10);
    assert_part(1, 50, 10);
    assert_int_equal(parse("bytes=-0,90-", 100), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 1);
    assert_part(0, 90, 10);
}

static void
test_every_range_on_an_empty_file_is_unsatisfiable(void **state)
{
    assert_unsatisfiable("bytes=0-", 0);
    assert_unsatisfiable("bytes=0-0", 0);
    assert_unsatisfiable("bytes=-1", 0);
    assert_unsatisfiable("bytes=-0", 0);
    assert_unsatisfiable("bytes=0-1,5-9", 0);
}

static void
test_multiple_ranges_with_comma_space_keep_their_order_and_lengths(void **state)
{
    /* the shape electron-updater's differential downloader sends */
    assert_int_equal(parse("bytes=0-99, 200-299, 1000-1499", 5000), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 3);
    assert_part(0, 0, 100);
    assert_part(1, 200, 100);
    assert_part(2, 1000, 500);
}

static void
test_multiple_ranges_without_space_are_accepted(void **state)
{
    assert_int_equal(parse("bytes=0-99,200-299,1000-1499", 5000), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 3);
    assert_part(1, 200, 100);
}

static void
test_whitespace_around_commas_is_allowed(void **state)
{
    assert_int_equal(parse("bytes=0-9 ,\t20-29 \t, 40-49", 100), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 3);
    assert_part(2, 40, 10);
}

static void
test_whitespace_around_the_value_is_ignored(void **state)
{
    assert_int_equal(parse(" \tbytes=0-9 ", 100), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 1);
    assert_part(0, 0, 10);
}

static void
test_whitespace_inside_a_range_or_around_equals_means_whole(void **state)
{
    assert_whole("bytes =0-9", 100);
    assert_whole("bytes= 0-9", 100);
    assert_whole("bytes=0 -9", 100);
    assert_whole("bytes=0- 9", 100);
    assert_whole("bytes=- 9", 100);
}

static void
test_touching_ranges_are_kept_apart(void **state)
{
    assert_int_equal(parse("bytes=0-9,10-19,20-29", 100), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 3);
    assert_part(0, 0, 10);
    assert_part(1, 10, 10);
    assert_part(2, 20, 10);
}

static void
test_overlapping_ranges_mean_whole(void **state)
{
    assert_whole("bytes=0-9,9-19", 100);
    assert_whole("bytes=0-50,25-75", 100);
    assert_whole("bytes=0-,50-60", 100);
    assert_whole("bytes=0-9,0-9", 100);
    assert_whole("bytes=50-,-10", 100); /* the suffix resolves to 90-99, inside 50-99 */
}

static void
test_unsorted_ranges_mean_whole(void **state)
{
    assert_whole("bytes=20-29,0-9", 100);
    assert_whole("bytes=-10,0-9", 100);
}

static void
test_suffix_after_earlier_ranges_is_fine_when_ascending(void **state)
{
    assert_int_equal(parse("bytes=0-9,-10", 100), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 2);
    assert_part(1, 90, 10);
}

static void
test_clamped_range_overlapping_a_later_one_means_whole(void **state)
{
    /* 50-1000 clamps to 50-99 */
    assert_whole("bytes=50-1000,80-89", 100);
}

static void
test_repeated_whole_file_requests_mean_whole(void **state)
{
    /* the amplification attack: many parts each asking for everything */
    assert_whole("bytes=0-,0-,0-,0-", 100);
    assert_whole("bytes=-100,-100", 100);
}

static void
test_unit_is_case_insensitive(void **state)
{
    assert_int_equal(parse("Bytes=0-9", 100), UPD_RANGE_PARTIAL);
    assert_int_equal(parse("BYTES=0-9", 100), UPD_RANGE_PARTIAL);
}

static void
test_other_units_mean_whole(void **state)
{
    assert_whole("items=0-9", 100);
    assert_whole("byte=0-9", 100);
    assert_whole("bytesx=0-9", 100);
    assert_whole("bytes", 100);
    assert_whole("bytes0-9", 100);
    assert_whole("0-9", 100);
    assert_whole("", 100);
}

static void
test_syntax_errors_mean_whole(void **state)
{
    assert_whole("bytes=", 100);
    assert_whole("bytes=,", 100);
    assert_whole("bytes=0-9,", 100);
    assert_whole("bytes=,0-9", 100);
    assert_whole("bytes=0-9,,20-29", 100);
    assert_whole("bytes=-", 100);
    assert_whole("bytes=9", 100);
    assert_whole("bytes=a-b", 100);
    assert_whole("bytes=0x0-9", 100);
    assert_whole("bytes=+1-9", 100);
    assert_whole("bytes=1-2-3", 100);
    assert_whole("bytes=--5", 100);
    assert_whole("bytes=0-9;20-29", 100);
    assert_whole("bytes=0-9 20-29", 100);
}

static void
test_last_before_first_means_whole(void **state)
{
    assert_whole("bytes=9-0", 100);
    /* even when the part would be dropped as unsatisfiable: it is invalid, not just out of range */
    assert_whole("bytes=500-400", 100);
}

static void
test_syntax_error_after_valid_parts_means_whole(void **state)
{
    assert_whole("bytes=0-9,20-29,x", 100);
    assert_whole("bytes=0-9,200-300,junk", 100);
}

static void
test_overflowing_numbers_mean_whole(void **state)
{
    assert_whole("bytes=18446744073709551616-", 100);
    assert_whole("bytes=0-18446744073709551616", 100);
    assert_whole("bytes=-18446744073709551616", 100);
    assert_whole("bytes=0-99999999999999999999999999999999999999999999999999", 100);
    assert_whole("bytes=99999999999999999999999999999999999999999999999999-1", 100);
}

static void
test_largest_representation_size_does_not_overflow(void **state)
{
    assert_int_equal(parse("bytes=-1", UINT64_MAX), UPD_RANGE_PARTIAL);
    assert_part(0, UINT64_MAX - 1, 1);
    assert_int_equal(parse("bytes=0-", UINT64_MAX), UPD_RANGE_PARTIAL);
    assert_part(0, 0, UINT64_MAX);
    assert_int_equal(parse("bytes=0-18446744073709551615", UINT64_MAX), UPD_RANGE_PARTIAL);
    assert_part(0, 0, UINT64_MAX);
    assert_whole("bytes=0-,-1", UINT64_MAX);
}

static void
test_nul_byte_inside_the_value_means_whole(void **state)
{
    assert_int_equal(upd_range_parse("bytes=0-9\0,20-29", 16, 100, parts, UPD_RANGE_MAX_PARTS, &nparts), UPD_RANGE_WHOLE);
}

static void
test_parser_reads_only_len_bytes(void **state)
{
    assert_int_equal(upd_range_parse("bytes=0-9,20-29", 9, 100, parts, UPD_RANGE_MAX_PARTS, &nparts), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 1);
    assert_part(0, 0, 10);
}

static void
test_1000_parts_are_served(void **state)
{
    char *s = many_ranges(UPD_RANGE_MAX_PARTS, 10, ", ");
    assert_int_equal(parse(s, 100000), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, UPD_RANGE_MAX_PARTS);
    assert_part(0, 0, 6);
    assert_part(999, 9990, 6);
    free(s);

    s = many_ranges(UPD_RANGE_MAX_PARTS, 10, ",");
    assert_int_equal(parse(s, 100000), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, UPD_RANGE_MAX_PARTS);
    free(s);
}

static void
test_1001_parts_mean_whole(void **state)
{
    char *s = many_ranges(UPD_RANGE_MAX_PARTS + 1, 10, ", ");
    assert_whole(s, 100000);
    free(s);
}

static void
test_1001_parts_mean_whole_even_if_some_are_unsatisfiable(void **state)
{
    /* parts 0..1000 step 10: the last ones start beyond 9000 bytes and would be dropped */
    char *s = many_ranges(UPD_RANGE_MAX_PARTS + 1, 10, ",");
    assert_whole(s, 9000);
    free(s);
}

static void
test_more_parts_than_the_callers_room_mean_whole(void **state)
{
    upd_range_t small[2];
    size_t n = 99;
    assert_int_equal(upd_range_parse("bytes=0-0,2-2", 13, 100, small, 2, &n), UPD_RANGE_PARTIAL);
    assert_int_equal(n, 2);
    assert_int_equal(upd_range_parse("bytes=0-0,2-2,4-4", 17, 100, small, 2, &n), UPD_RANGE_WHOLE);
}

static void
test_parts_adding_up_to_exactly_the_size_are_served(void **state)
{
    assert_int_equal(parse("bytes=0-49,50-99", 100), UPD_RANGE_PARTIAL);
    assert_int_equal(nparts, 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_closed_range),
        cmocka_unit_test(test_open_ended_range_runs_to_the_end),
        cmocka_unit_test(test_suffix_range_takes_the_last_bytes),
        cmocka_unit_test(test_suffix_longer_than_the_file_is_the_whole_file_as_one_part),
        cmocka_unit_test(test_zero_suffix_is_unsatisfiable),
        cmocka_unit_test(test_last_beyond_the_end_is_clamped),
        cmocka_unit_test(test_first_at_or_beyond_the_end_is_unsatisfiable),
        cmocka_unit_test(test_unsatisfiable_parts_are_dropped_from_a_mixed_set),
        cmocka_unit_test(test_every_range_on_an_empty_file_is_unsatisfiable),
        cmocka_unit_test(test_multiple_ranges_with_comma_space_keep_their_order_and_lengths),
        cmocka_unit_test(test_multiple_ranges_without_space_are_accepted),
        cmocka_unit_test(test_whitespace_around_commas_is_allowed),
        cmocka_unit_test(test_whitespace_around_the_value_is_ignored),
        cmocka_unit_test(test_whitespace_inside_a_range_or_around_equals_means_whole),
        cmocka_unit_test(test_touching_ranges_are_kept_apart),
        cmocka_unit_test(test_overlapping_ranges_mean_whole),
        cmocka_unit_test(test_unsorted_ranges_mean_whole),
        cmocka_unit_test(test_suffix_after_earlier_ranges_is_fine_when_ascending),
        cmocka_unit_test(test_clamped_range_overlapping_a_later_one_means_whole),
        cmocka_unit_test(test_repeated_whole_file_requests_mean_whole),
        cmocka_unit_test(test_unit_is_case_insensitive),
        cmocka_unit_test(test_other_units_mean_whole),
        cmocka_unit_test(test_syntax_errors_mean_whole),
        cmocka_unit_test(test_last_before_first_means_whole),
        cmocka_unit_test(test_syntax_error_after_valid_parts_means_whole),
        cmocka_unit_test(test_overflowing_numbers_mean_whole),
        cmocka_unit_test(test_largest_representation_size_does_not_overflow),
        cmocka_unit_test(test_nul_byte_inside_the_value_means_whole),
        cmocka_unit_test(test_parser_reads_only_len_bytes),
        cmocka_unit_test(test_1000_parts_are_served),
        cmocka_unit_test(test_1001_parts_mean_whole),
        cmocka_unit_test(test_1001_parts_mean_whole_even_if_some_are_unsatisfiable),
        cmocka_unit_test(test_more_parts_than_the_callers_room_mean_whole),
        cmocka_unit_test(test_parts_adding_up_to_exactly_the_size_are_served),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
