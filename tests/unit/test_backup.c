#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "domain/backup.h"

/*
 * domain/backup.c: backup ids round-trip and refuse what is not a UTC second; the next scheduled run from a clock
 * (across midnight, the end of a month and of a year, short intervals for tests); retention deletes what is older than
 * the retention, never the newest good backup.
 */

#define DAY 86400
#define H(h) ((uint32_t)(h) * 3600)

/* 2026-12-31T00:00:00Z */
#define DEC31 INT64_C(1798675200)

static int64_t
at(const char *id)
{
    int64_t t = -1;
    if (upd_backup_id_parse(id, strlen(id), &t) != 0)
        fail_msg("\"%s\" should parse", id);
    return t;
}

static const char *
id_of(int64_t t)
{
    static char id[UPD_BACKUP_ID_LEN + 1];
    upd_backup_id_format(t, id);
    return id;
}

/* ---- ids ---- */

static void
test_id_is_the_utc_second_in_basic_format(void **state)
{
    assert_string_equal(id_of(DEC31 + H(3)), "20261231T030000Z");
    assert_int_equal(at("20261231T030000Z"), DEC31 + H(3));
    assert_int_equal(at("19700101T000000Z"), 0);
    assert_string_equal(id_of(at("20240229T235959Z")), "20240229T235959Z");
}

static void
test_id_that_is_not_a_real_second_is_refused(void **state)
{
    static const char *const bad[] = {
        "20261231T030000",   "20261231T030000ZZ", "20261231 030000Z", "2026123lT030000Z", "20260230T000000Z",
        "20250229T000000Z",  "20261231T240000Z",  "20261231T236000Z", "20261231T235960Z", "19691231T235959Z",
        "20261301T000000Z",  "20261200T000000Z",  "../../etc/passwdZ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        int64_t t;
        if (upd_backup_id_parse(bad[i], strlen(bad[i]), &t) != UPD_EINVAL)
            fail_msg("\"%s\" should be refused", bad[i]);
    }
}

static void
test_time_of_day_takes_minutes_or_seconds(void **state)
{
    uint32_t s;
    assert_int_equal(upd_backup_parse_at("03:00", &s), 0);
    assert_int_equal(s, H(3));
    assert_int_equal(upd_backup_parse_at("23:59:59", &s), 0);
    assert_int_equal(s, DAY - 1);
    assert_int_equal(upd_backup_parse_at("00:00", &s), 0);
    assert_int_equal(s, 0);
    static const char *const bad[] = {"24:00", "3:00", "03:60", "03:00:60", "03:00:", "0300", "", "03:00 ", "aa:bb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        if (upd_backup_parse_at(bad[i], &s) != UPD_EINVAL)
            fail_msg("\"%s\" should be refused", bad[i]);
}

/* ---- schedule ---- */

static void
test_daily_run_is_later_the_same_day_before_its_time(void **state)
{
    assert_string_equal(id_of(upd_backup_next_run(DEC31 + H(2) + 3599, DAY, H(3))), "20261231T030000Z");
    assert_string_equal(id_of(upd_backup_next_run(DEC31, DAY, H(3))), "20261231T030000Z");
}

static void
test_daily_run_crosses_midnight_into_the_next_year(void **state)
{
    /* just after the run, in the evening, a second before midnight: all the next day's 03:00 */
    assert_string_equal(id_of(upd_backup_next_run(DEC31 + H(3) + 1, DAY, H(3))), "20270101T030000Z");
    assert_string_equal(id_of(upd_backup_next_run(DEC31 + H(21), DAY, H(3))), "20270101T030000Z");
    assert_string_equal(id_of(upd_backup_next_run(DEC31 + DAY - 1, DAY, H(3))), "20270101T030000Z");
}

static void
test_run_at_exactly_its_time_schedules_the_next_one(void **state)
{
    assert_string_equal(id_of(upd_backup_next_run(DEC31 + H(3), DAY, H(3))), "20270101T030000Z");
}

static void
test_midnight_run_is_the_next_midnight(void **state)
{
    assert_string_equal(id_of(upd_backup_next_run(DEC31 + DAY - 1, DAY, 0)), "20270101T000000Z");
    assert_string_equal(id_of(upd_backup_next_run(DEC31, DAY, 0)), "20270101T000000Z");
}

static void
test_daily_run_crosses_the_end_of_february(void **state)
{
    /* 2028 is a leap year: 29 February comes between */
    int64_t feb28 = at("20280228T220000Z");
    assert_string_equal(id_of(upd_backup_next_run(feb28, DAY, H(3))), "20280229T030000Z");
    assert_string_equal(id_of(upd_backup_next_run(at("20270228T220000Z"), DAY, H(3))), "20270301T030000Z");
}

static void
test_hourly_and_second_intervals_keep_the_offset(void **state)
{
    assert_string_equal(id_of(upd_backup_next_run(DEC31 + H(5) + 600, 3600, H(3) + 15 * 60)), "20261231T051500Z");
    assert_string_equal(id_of(upd_backup_next_run(DEC31 + H(23) + 3000, 3600, 0)), "20270101T000000Z");
    /* every 5 s: the next multiple, strictly after now */
    assert_int_equal(upd_backup_next_run(1000, 5, 0), 1005);
    assert_int_equal(upd_backup_next_run(1003, 5, 0), 1005);
    assert_int_equal(upd_backup_next_run(1004, 5, 1), 1006);
    assert_int_equal(upd_backup_next_run(0, 1, 0), 1);
    /* an offset larger than now still gives the next step after now */
    assert_int_equal(upd_backup_next_run(10, DAY, H(3)), H(3));
    assert_int_equal(upd_backup_next_run(10, 7, H(3)), 13); /* 10800 = 6 mod 7 */
}

/* ---- retention ---- */

#define RET (42 * DAY)

static void
test_retention_deletes_only_what_is_older_than_it(void **state)
{
    int64_t now = DEC31 + H(3);
    upd_backup_entry_t e[] = {
        {now - 50 * DAY, true}, {now - RET - 1, true}, {now - RET, true}, {now - 41 * DAY, false}, {now, true},
    };
    bool x[5];
    assert_int_equal(upd_backup_expired(e, 5, now, RET, x), 2);
    assert_true(x[0]);
    assert_true(x[1]);
    assert_false(x[2]); /* exactly the retention old: kept */
    assert_false(x[3]); /* not good, but young: kept for the operator to look at */
    assert_false(x[4]);
}

static void
test_newest_good_backup_is_kept_however_old(void **state)
{
    int64_t now = DEC31;
    /* the store's backups have failed for two months: its last good one stays, the failed ones around it go */
    upd_backup_entry_t e[] = {
        {now - 90 * DAY, true}, {now - 70 * DAY, true}, {now - 60 * DAY, false}, {now - 50 * DAY, false}, {now - 10 * DAY, false},
    };
    bool x[5];
    assert_int_equal(upd_backup_expired(e, 5, now, RET, x), 3);
    assert_true(x[0]);
    assert_false(x[1]);
    assert_true(x[2]);
    assert_true(x[3]);
    assert_false(x[4]);
}

static void
test_newest_good_is_found_in_any_order(void **state)
{
    int64_t now = DEC31;
    upd_backup_entry_t e[] = {{now - 80 * DAY, true}, {now - 100 * DAY, true}, {now - 70 * DAY, true}, {now - 75 * DAY, true}};
    bool x[4];
    assert_int_equal(upd_backup_expired(e, 4, now, RET, x), 3);
    assert_true(x[0]);
    assert_true(x[1]);
    assert_false(x[2]);
    assert_true(x[3]);
}

static void
test_without_a_good_backup_the_old_ones_go(void **state)
{
    int64_t now = DEC31;
    upd_backup_entry_t e[] = {{now - 80 * DAY, false}, {now - 1, false}};
    bool x[2];
    assert_int_equal(upd_backup_expired(e, 2, now, RET, x), 1);
    assert_true(x[0]);
    assert_false(x[1]);
    assert_int_equal(upd_backup_expired(NULL, 0, now, RET, x), 0);
}

static void
test_single_old_good_backup_is_never_deleted(void **state)
{
    upd_backup_entry_t e[] = {{0, true}};
    bool x[1];
    assert_int_equal(upd_backup_expired(e, 1, DEC31, 1, x), 0);
    assert_false(x[0]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_is_the_utc_second_in_basic_format),
        cmocka_unit_test(test_id_that_is_not_a_real_second_is_refused),
        cmocka_unit_test(test_time_of_day_takes_minutes_or_seconds),
        cmocka_unit_test(test_daily_run_is_later_the_same_day_before_its_time),
        cmocka_unit_test(test_daily_run_crosses_midnight_into_the_next_year),
        cmocka_unit_test(test_run_at_exactly_its_time_schedules_the_next_one),
        cmocka_unit_test(test_midnight_run_is_the_next_midnight),
        cmocka_unit_test(test_daily_run_crosses_the_end_of_february),
        cmocka_unit_test(test_hourly_and_second_intervals_keep_the_offset),
        cmocka_unit_test(test_retention_deletes_only_what_is_older_than_it),
        cmocka_unit_test(test_newest_good_backup_is_kept_however_old),
        cmocka_unit_test(test_newest_good_is_found_in_any_order),
        cmocka_unit_test(test_without_a_good_backup_the_old_ones_go),
        cmocka_unit_test(test_single_old_good_backup_is_never_deleted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
