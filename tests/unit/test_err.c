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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_updraft_code_has_its_own_description),
        cmocka_unit_test(test_positive_values_are_errno),
        cmocka_unit_test(test_zero_and_unknown_negative_codes_have_a_description),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
