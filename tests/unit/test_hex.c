#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "base/hex.h"

static void
test_encode_is_lower_case_and_terminated(void **state)
{
    const uint8_t raw[] = {0x00, 0x0f, 0xa5, 0xff};
    char out[9];
    memset(out, 'x', sizeof(out));
    upd_hex_encode(raw, sizeof(raw), out);
    assert_string_equal(out, "000fa5ff");
    upd_hex_encode(raw, 0, out);
    assert_string_equal(out, "");
}

static void
test_decode_round_trips_and_refuses_other_spellings(void **state)
{
    uint8_t raw[4], back[4];
    for (int i = 0; i < 256; ++i) {
        raw[0] = (uint8_t)i, raw[1] = (uint8_t)(255 - i), raw[2] = (uint8_t)(i * 7), raw[3] = (uint8_t)(i ^ 0x5a);
        char hex[9];
        upd_hex_encode(raw, 4, hex);
        assert_true(upd_hex_decode(hex, 4, back));
        assert_memory_equal(raw, back, 4);
    }
    assert_false(upd_hex_decode("000FA5ff", 4, back)); /* upper case is another name */
    assert_false(upd_hex_decode("0g", 1, back));
    assert_false(upd_hex_decode("-1", 1, back));
    assert_true(upd_hex_decode("", 0, back));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_is_lower_case_and_terminated),
        cmocka_unit_test(test_decode_round_trips_and_refuses_other_spellings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
