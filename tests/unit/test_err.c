#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "base/err.h"

static void
test_every_updraft_code_has_its_own_description(void **state)
{
    for (int a = UPD_ELAST; a <= UPD_ENOTFOUND; ++a) {
        const char *da = upd_strerror(a);
        assert_non_null(da);
        assert_string_not_equal(da, "unknown error");
        for (int b = a + 1; b <= UPD_ENOTFOUND; ++b)
            assert_string_not_equal(da, upd_strerror(b));
    }
    assert_string_equal(upd_strerror(UPD_ENOTFOUND), "not found");
}

static void
test_positive_values_are_errno(void **state)
{
    assert_string_equal(upd_strerror(ENOENT), strerror(ENOENT));
    assert_string_equal(upd_strerror(EACCES), strerror(EACCES));
}

static void
test_zero_and_unknown_negative_codes_have_a_description(void **state)
{
    assert_string_equal(upd_strerror(0), "success");
    assert_string_equal(upd_strerror(-1), "unknown error");
    assert_string_equal(upd_strerror(UPD_ELAST - 1), "unknown error");
}

static void
test_a_reason_is_filled_and_the_error_returned(void **state)
{
    upd_reason_t r;
    assert_int_equal(upd_reason_set(&r, UPD_EMISMATCH, "size_mismatch", "files[%d]: %s", 0, "too short"), UPD_EMISMATCH);
    assert_string_equal(r.code, "size_mismatch");
    assert_string_equal(r.message, "files[0]: too short");
    assert_int_equal(upd_reason_set(&r, UPD_EINVAL, NULL, "plain"), UPD_EINVAL);
    assert_string_equal(r.code, "");
    assert_int_equal(upd_reason_set(NULL, UPD_ESTORE, "x", "y"), UPD_ESTORE);
}

static void
test_an_overlong_reason_is_truncated_not_overrun(void **state)
{
    upd_reason_t r;
    char big[2000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    upd_reason_set(&r, UPD_EINVAL, big, "%s", big);
    assert_int_equal(strlen(r.code), sizeof(r.code) - 1);
    assert_int_equal(strlen(r.message), sizeof(r.message) - 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_updraft_code_has_its_own_description),
        cmocka_unit_test(test_positive_values_are_errno),
        cmocka_unit_test(test_zero_and_unknown_negative_codes_have_a_description),
        cmocka_unit_test(test_a_reason_is_filled_and_the_error_returned),
        cmocka_unit_test(test_an_overlong_reason_is_truncated_not_overrun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
