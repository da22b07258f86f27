#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "server/framing.h"

#define CHECK(s, expect)                                                                                                           \
    do {                                                                                                                           \
        upd_framing_info_t info;                                                                                                   \
        assert_int_equal(upd_framing_check(s, strlen(s), 65536, &info), expect);                                                   \
    } while (0)

static void
test_a_plain_get_passes(void **state)
{
    upd_framing_info_t info;
    const char *req = "GET /healthz HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
    assert_int_equal(upd_framing_check(req, strlen(req), 65536, &info), UPD_FRAMING_OK);
    assert_int_equal(info.head_len, strlen(req));
    assert_int_equal(info.content_length, -1);
    assert_int_equal(info.minor_version, 1);
}

static void
test_two_content_lengths_are_refused_even_when_equal(void **state)
{
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\n", UPD_FRAMING_DUP_CONTENT_LENGTH);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", UPD_FRAMING_DUP_CONTENT_LENGTH);
}

static void
test_content_length_must_be_plain_digits(void **state)
{
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", UPD_FRAMING_BAD_CONTENT_LENGTH);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", UPD_FRAMING_BAD_CONTENT_LENGTH);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", UPD_FRAMING_BAD_CONTENT_LENGTH);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", UPD_FRAMING_BAD_CONTENT_LENGTH);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  12 \r\n\r\n", UPD_FRAMING_OK);
}

static void
test_content_length_with_transfer_encoding_is_refused(void **state)
{
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", UPD_FRAMING_CL_AND_TE);
    CHECK("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", UPD_FRAMING_CL_AND_TE);
}

static void
test_transfer_encoding_alone_is_reported(void **state)
{
    upd_framing_info_t info;
    const char *req = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0_2e\r\n\r\n";
    assert_int_equal(upd_framing_check(req, strlen(req), 65536, &info), UPD_FRAMING_OK);
    assert_int_equal(info.transfer_encoding, 1);
}

static void
test_http11_needs_exactly_one_host(void **state)
{
    CHECK("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", UPD_FRAMING_NO_HOST);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n", UPD_FRAMING_DUP_HOST);
    CHECK("GET / HTTP/1.0\r\n\r\n", UPD_FRAMING_OK);
}

static void
test_malformed_lines_are_refused(void **state)
{
    CHECK("GET / HTTP/1.1\r\nHost: a\r\n folded: x\r\n\r\n", UPD_FRAMING_BAD_HEADER);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n", UPD_FRAMING_BAD_HEADER);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", UPD_FRAMING_BAD_HEADER);
    CHECK("GET / HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n", UPD_FRAMING_BAD_HEADER);
    CHECK("GET / HTTP/2.0\r\nHost: a\r\n\r\n", UPD_FRAMING_BAD_REQUEST_LINE);
    CHECK("GET\r\nHost: a\r\n\r\n", UPD_FRAMING_BAD_REQUEST_LINE);
    CHECK("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", UPD_FRAMING_BAD_REQUEST_LINE);
}

static void
test_bare_lf_heads_are_understood(void **state)
{
    CHECK("GET / HTTP/1.1\nHost: a\nContent-Length: 1\nContent-Length: 2\n\n", UPD_FRAMING_DUP_CONTENT_LENGTH);
    CHECK("GET / HTTP/1.1\nHost: a\n\n", UPD_FRAMING_OK);
}

static void
test_head_over_the_limit_is_too_large(void **state)
{
    char big[3000];
    int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ");
    memset(big + n, 'a', 2000);
    strcpy(big + n + 2000, "\r\n\r\n");
    upd_framing_info_t info;
    assert_int_equal(upd_framing_check(big, strlen(big), 1024, &info), UPD_FRAMING_TOO_LARGE);
    assert_int_equal(upd_framing_check(big, strlen(big), 4096, &info), UPD_FRAMING_OK);
    /* only the first head counts: a pipelined second request after it is not scanned */
    assert_int_equal(upd_framing_check(big, 100, 4096, &info), UPD_FRAMING_INCOMPLETE);
}

static void
test_only_the_first_request_of_a_pipeline_is_checked(void **state)
{
    const char *two = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    upd_framing_info_t info;
    assert_int_equal(upd_framing_check(two, strlen(two), 65536, &info), UPD_FRAMING_OK);
    assert_int_equal(info.head_len, strlen("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_plain_get_passes),
        cmocka_unit_test(test_two_content_lengths_are_refused_even_when_equal),
        cmocka_unit_test(test_content_length_must_be_plain_digits),
        cmocka_unit_test(test_content_length_with_transfer_encoding_is_refused),
        cmocka_unit_test(test_transfer_encoding_alone_is_reported),
        cmocka_unit_test(test_http11_needs_exactly_one_host),
        cmocka_unit_test(test_malformed_lines_are_refused),
        cmocka_unit_test(test_bare_lf_heads_are_understood),
        cmocka_unit_test(test_head_over_the_limit_is_too_large),
        cmocka_unit_test(test_only_the_first_request_of_a_pipeline_is_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
