#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "server/http_error.h"

static void
test_every_updraft_code_maps_to_a_4xx_or_5xx_with_a_code(void **state)
{
    for (int e = UPD_ELAST; e <= UPD_ENOTFOUND; ++e) {
        upd_http_error_t m = upd_http_error_of(e, NULL);
        assert_true(m.status >= 400 && m.status <= 599);
        assert_non_null(m.code);
        assert_true(strlen(m.code) > 0);
        assert_string_equal(m.message, upd_strerror(e));
        assert_int_equal(m.level, m.status < 500 ? UPD_LOG_INFO : UPD_LOG_ERROR);
    }
}

static void
test_statuses_the_api_documents(void **state)
{
    assert_int_equal(upd_http_error_of(UPD_EINVAL, NULL).status, 400);
    assert_int_equal(upd_http_error_of(UPD_EAUTH, NULL).status, 401);
    assert_int_equal(upd_http_error_of(UPD_EFORBIDDEN, NULL).status, 403);
    assert_int_equal(upd_http_error_of(UPD_ENOTFOUND, NULL).status, 404);
    assert_int_equal(upd_http_error_of(UPD_ECONFLICT, NULL).status, 409);
    assert_int_equal(upd_http_error_of(UPD_EEXIST, NULL).status, 409);
    assert_int_equal(upd_http_error_of(UPD_EMISMATCH, NULL).status, 422);
    assert_int_equal(upd_http_error_of(UPD_EBACKEND, NULL).status, 502);
    assert_int_equal(upd_http_error_of(UPD_EUNAVAILABLE, NULL).status, 503);
    assert_int_equal(upd_http_error_of(UPD_EBUSY, NULL).status, 503);
    assert_string_equal(upd_http_error_of(UPD_EBUSY, NULL).code, "busy");
    assert_string_equal(upd_http_error_of(UPD_ESTORE, NULL).code, "store_unavailable");
}

static void
test_a_reason_names_the_code_and_message_but_not_the_status(void **state)
{
    upd_reason_t r;
    upd_reason_set(&r, UPD_EMISMATCH, "checksum_mismatch", "files[0] A.exe: sha512 differs");
    upd_http_error_t m = upd_http_error_of(UPD_EMISMATCH, &r);
    assert_int_equal(m.status, 422);
    assert_string_equal(m.code, "checksum_mismatch");
    assert_string_equal(m.message, "files[0] A.exe: sha512 differs");
}

static void
test_errno_and_unknown_codes_are_internal_errors(void **state)
{
    assert_int_equal(upd_http_error_of(-1, NULL).status, 500);
    assert_int_equal(upd_http_error_of(5 /* EIO */, NULL).status, 500);
    assert_string_equal(upd_http_error_of(-1, NULL).code, "internal");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_updraft_code_maps_to_a_4xx_or_5xx_with_a_code),
        cmocka_unit_test(test_statuses_the_api_documents),
        cmocka_unit_test(test_a_reason_names_the_code_and_message_but_not_the_status),
        cmocka_unit_test(test_errno_and_unknown_codes_are_internal_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
