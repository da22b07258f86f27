/* domain/audit: the record's canonical form, the chain check, the segment format and the query's filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "domain/audit.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static upd_audit_rec_t
sample(uint64_t seq, const char *prev)
{
    upd_audit_rec_t r = {
        .seq = seq,
        .time_ms = 1796193333123, /* 2026-12-02T06:35:33.123Z */
        .member = "alice",
        .key = "0123456789abcdef",
        .source = "127.0.0.1",
        .user_agent = "updraft-cli/1",
        .request_id = "req-1",
        .action = "release.create",
        .app = "acme",
        .channel = "latest",
        .version = "1.2.0",
        .outcome = "ok",
        .status = 201,
    };
    memcpy(r.prev, prev, UPD_AUDIT_HASH_HEX + 1);
    return r;
}

static void
test_encode_is_canonical_and_stable(void **state)
{
    upd_audit_rec_t r = sample(12, upd_audit_genesis);
    json_t *detail = json_pack("{s:i, s:s}", "percent", 10, "a", "b");
    r.detail = detail;
    size_t len, len2;
    char *a = upd_audit_encode(&r, &len), *b = upd_audit_encode(&r, &len2);
    assert_non_null(a);
    assert_int_equal(len, len2);
    assert_memory_equal(a, b, len);
    /* keys sorted, no white space, the absent targets null, time in RFC 3339 with milliseconds */
    assert_string_equal(a, "{\"action\":\"release.create\",\"actor\":{\"host\":false,\"key\":\"0123456789abcdef\",\"member\":\"alice\"},"
                           "\"detail\":{\"a\":\"b\",\"percent\":10},\"error\":null,\"outcome\":\"ok\",\"prev\":\"" "0000000000000000"
                           "000000000000000000000000000000000000000000000000\",\"request_id\":\"req-1\",\"seq\":12,\"source\":"
                           "\"127.0.0.1\",\"status\":201,\"target\":{\"app\":\"acme\",\"channel\":\"latest\",\"key\":null,\"member\":"
                           "null,\"version\":\"1.2.0\"},\"time\":\"2026-12-02T06:35:33.123Z\",\"user_agent\":\"updraft-cli/1\"}");
    assert_int_equal(upd_audit_check(a, len, 12, upd_audit_genesis, NULL), 0);
    free(a);
    free(b);
    json_decref(detail);
}

static void
test_encode_escapes_so_a_record_is_one_line(void **state)
{
    upd_audit_rec_t r = sample(1, upd_audit_genesis);
    r.user_agent = "a\nb\xc3\xa9";
    size_t len;
    char *a = upd_audit_encode(&r, &len);
    assert_non_null(a);
    assert_null(memchr(a, '\n', len));
    assert_non_null(strstr(a, "\"user_agent\":\"a\\nb\\u00E9\""));
    assert_int_equal(upd_audit_check(a, len, 1, upd_audit_genesis, NULL), 0);
    free(a);
}

static void
test_check_refuses_a_changed_byte(void **state)
{
    upd_audit_rec_t r1 = sample(1, upd_audit_genesis);
    size_t l1, l2;
    char *a = upd_audit_encode(&r1, &l1);
    char h1[UPD_AUDIT_HASH_HEX + 1];
    assert_true(upd_audit_hash(a, l1, h1));
    upd_audit_rec_t r2 = sample(2, h1);
    char *b = upd_audit_encode(&r2, &l2);
    assert_int_equal(upd_audit_check(b, l2, 2, h1, NULL), 0);
    /* record 1 edited (a digit of its source address): still a canonical record, but record 2 no longer follows it */
    char *edited = strstr(a, "127.0.0.1");
    edited[8] = '2';
    assert_int_equal(upd_audit_check(a, l1, 1, upd_audit_genesis, NULL), 0);
    char h1b[UPD_AUDIT_HASH_HEX + 1];
    assert_true(upd_audit_hash(a, l1, h1b));
    upd_reason_t why;
    assert_int_equal(upd_audit_check(b, l2, 2, h1b, &why), UPD_EINVAL);
    assert_string_equal(why.code, "chain");
    assert_non_null(strstr(why.message, "record 2"));
    free(a);
    free(b);
}

static void
test_check_refuses_a_wrong_seq(void **state)
{
    upd_audit_rec_t r = sample(7, upd_audit_genesis);
    size_t len;
    char *a = upd_audit_encode(&r, &len);
    upd_reason_t why;
    assert_int_equal(upd_audit_check(a, len, 8, upd_audit_genesis, &why), UPD_EINVAL);
    assert_string_equal(why.code, "seq");
    assert_string_equal(why.message, "record 8 says it is record 7");
    free(a);
}

static void
test_check_refuses_a_broken_prev(void **state)
{
    upd_audit_rec_t r = sample(3, upd_audit_genesis);
    size_t len;
    char *a = upd_audit_encode(&r, &len);
    char other[UPD_AUDIT_HASH_HEX + 1];
    memset(other, 'a', UPD_AUDIT_HASH_HEX);
    other[UPD_AUDIT_HASH_HEX] = '\0';
    upd_reason_t why;
    assert_int_equal(upd_audit_check(a, len, 3, other, &why), UPD_EINVAL);
    assert_string_equal(why.code, "chain");
    free(a);
}

static void
test_check_refuses_non_canonical_spacing_and_order(void **state)
{
    upd_audit_rec_t r = sample(1, upd_audit_genesis);
    size_t len;
    char *a = upd_audit_encode(&r, &len);
    upd_reason_t why;
    /* a space after the first colon: the same JSON, other bytes */
    char *spaced = malloc(len + 2);
    char *colon = strchr(a, ':');
    size_t head = (size_t)(colon - a) + 1;
    memcpy(spaced, a, head);
    spaced[head] = ' ';
    memcpy(spaced + head + 1, a + head, len - head);
    assert_int_equal(upd_audit_check(spaced, len + 1, 1, upd_audit_genesis, &why), UPD_EINVAL);
    assert_string_equal(why.code, "malformed");
    /* keys out of order */
    static const char unsorted[] = "{\"seq\":1,\"action\":\"x\",\"outcome\":\"ok\",\"prev\":\"0\"}";
    assert_int_equal(upd_audit_check(S(unsorted), 1, upd_audit_genesis, &why), UPD_EINVAL);
    assert_string_equal(why.code, "malformed");
    /* not JSON at all, and a trailing newline */
    assert_int_equal(upd_audit_check(S("{\"seq\":"), 1, upd_audit_genesis, &why), UPD_EINVAL);
    memcpy(spaced, a, len);
    spaced[len] = '\n';
    assert_int_equal(upd_audit_check(spaced, len + 1, 1, upd_audit_genesis, &why), UPD_EINVAL);
    free(spaced);
    free(a);
}

static void
test_segment_names_are_twenty_digits_each_and_parse_back(void **state)
{
    char name[UPD_AUDIT_SEGMENT_NAME_MAX + 1];
    upd_audit_segment_name(1, 100, name);
    assert_string_equal(name, "_updraft/audit/00000000000000000001-00000000000000000100.jsonl");
    assert_int_equal(strlen(name), UPD_AUDIT_SEGMENT_NAME_MAX);
    uint64_t f, l;
    assert_true(upd_audit_segment_parse_name(name, strlen(name), &f, &l));
    assert_int_equal(f, 1);
    assert_int_equal(l, 100);
    upd_audit_segment_name(UINT64_MAX, UINT64_MAX, name);
    assert_true(upd_audit_segment_parse_name(name, strlen(name), &f, &l));
    assert_true(f == UINT64_MAX && l == UINT64_MAX);
}

static void
test_segment_names_of_another_shape_are_refused(void **state)
{
    uint64_t f, l;
    static const char *const bad[] = {
        "_updraft/audit/00000000000000000000-00000000000000000001.jsonl", /* seq 0 */
        "_updraft/audit/00000000000000000002-00000000000000000001.jsonl", /* first > last */
        "_updraft/audit/0000000000000000001-00000000000000000001.jsonl",  /* 19 digits */
        "_updraft/audit/00000000000000000001-00000000000000000001.json",
        "_updraft/audit/00000000000000000001_00000000000000000001.jsonl",
        "_updraft/audit/.tmp-00000000000000000001-00000000000000000001.jsonl",
        "_updraft/state/00000000000000000001-00000000000000000001.jsonl",
        "_updraft/audit/99999999999999999999-99999999999999999999.jsonl", /* over 2^64 */
        "_updraft/audit/0000000000000000000a-00000000000000000001.jsonl",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        assert_false(upd_audit_segment_parse_name(bad[i], strlen(bad[i]), &f, &l));
}

typedef struct {
    char lines[8][64];
    size_t n;
    int stop_at; /* 1-based: return 7 on that line */
} lines_t;

static int
on_line(const char *rec, size_t len, void *arg)
{
    lines_t *l = arg;
    memcpy(l->lines[l->n], rec, len);
    l->lines[l->n][len] = '\0';
    ++l->n;
    return l->stop_at != 0 && (int)l->n == l->stop_at ? 7 : 0;
}

static void
test_segment_reader_splits_lines_across_pieces(void **state)
{
    static const char seg[] = "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
    /* every piece size from 1 byte to the whole */
    for (size_t piece = 1; piece <= sizeof(seg) - 1; ++piece) {
        lines_t l = {.n = 0};
        upd_audit_seg_reader_t r;
        assert_int_equal(upd_audit_seg_reader_init(&r, on_line, &l), 0);
        for (size_t off = 0; off < sizeof(seg) - 1; off += piece) {
            size_t n = sizeof(seg) - 1 - off < piece ? sizeof(seg) - 1 - off : piece;
            assert_int_equal(upd_audit_seg_reader_feed(&r, seg + off, n), 0);
        }
        assert_int_equal(upd_audit_seg_reader_end(&r), 0);
        assert_int_equal(l.n, 3);
        assert_int_equal(r.records, 3);
        assert_string_equal(l.lines[0], "{\"a\":1}");
        assert_string_equal(l.lines[2], "{\"c\":3}");
        upd_audit_seg_reader_dispose(&r);
    }
}

static void
test_segment_reader_refuses_a_cut_segment_and_an_overlong_line(void **state)
{
    lines_t l = {.n = 0};
    upd_audit_seg_reader_t r;
    assert_int_equal(upd_audit_seg_reader_init(&r, on_line, &l), 0);
    assert_int_equal(upd_audit_seg_reader_feed(&r, S("{\"a\":1}\n{\"b\"")), 0);
    assert_int_equal(upd_audit_seg_reader_end(&r), UPD_EINVAL);
    assert_int_equal(l.n, 1);
    upd_audit_seg_reader_dispose(&r);

    assert_int_equal(upd_audit_seg_reader_init(&r, on_line, &l), 0);
    char *big = malloc(UPD_AUDIT_RECORD_MAX + 1);
    memset(big, 'x', UPD_AUDIT_RECORD_MAX + 1);
    assert_int_equal(upd_audit_seg_reader_feed(&r, big, UPD_AUDIT_RECORD_MAX), 0);
    assert_int_equal(upd_audit_seg_reader_feed(&r, big, 1), UPD_ETOOBIG);
    free(big);
    upd_audit_seg_reader_dispose(&r);
}

static void
test_segment_reader_stops_when_the_callback_says_so(void **state)
{
    lines_t l = {.n = 0, .stop_at = 2};
    upd_audit_seg_reader_t r;
    assert_int_equal(upd_audit_seg_reader_init(&r, on_line, &l), 0);
    assert_int_equal(upd_audit_seg_reader_feed(&r, S("a\nb\nc\n")), 7);
    assert_int_equal(l.n, 2);
    upd_audit_seg_reader_dispose(&r);
}

static void
test_times_parse_as_unix_seconds_or_rfc3339(void **state)
{
    int64_t ms;
    assert_int_equal(upd_audit_time_parse(S("1796193333"), &ms), 0);
    assert_int_equal(ms, 1796193333000);
    assert_int_equal(upd_audit_time_parse(S("2026-12-02T06:35:33Z"), &ms), 0);
    assert_int_equal(ms, 1796193333000);
    assert_int_equal(upd_audit_time_parse(S("2026-12-02T06:35:33.123Z"), &ms), 0);
    assert_int_equal(ms, 1796193333123);
    assert_int_equal(upd_audit_time_parse(S("2026-12-02t08:35:33.1+02:00"), &ms), 0);
    assert_int_equal(ms, 1796193333100);
    assert_int_equal(upd_audit_time_parse(S("1970-01-01T00:00:00Z"), &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(upd_audit_time_parse(S("2024-02-29T00:00:00Z"), &ms), 0);
    /* what upd_audit_time writes parses back */
    char out[25];
    upd_audit_time(1796193333123, out);
    assert_int_equal(upd_audit_time_parse(out, strlen(out), &ms), 0);
    assert_int_equal(ms, 1796193333123);
    static const char *const bad[] = {"", "yesterday", "2026-12-02", "2026-12-02T06:35:33", "2026-13-02T06:35:33Z",
                                      "2025-02-29T00:00:00Z", "2026-12-02T24:00:00Z", "2026-12-02T06:35:33.Z",
                                      "2026-12-02T06:35:33+2:00", "-5", "1e9", "99999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        assert_int_equal(upd_audit_time_parse(bad[i], strlen(bad[i]), &ms), UPD_EINVAL);
}

static void
test_filter_parses_every_parameter(void **state)
{
    upd_audit_filter_t f;
    assert_int_equal(upd_audit_filter_parse(NULL, 0, &f, NULL), 0);
    assert_int_equal(f.limit, UPD_AUDIT_QUERY_LIMIT_DEFAULT);
    assert_int_equal(f.before, 0);
    assert_false(f.has_since);
    static const char q[] = "app=acme&actor=alice&action=release.create&outcome=denied&since=2026-12-02T08%3A35%3A33%2B02%3A00"
                            "&before=42&limit=1000";
    assert_int_equal(upd_audit_filter_parse(S(q), &f, NULL), 0);
    assert_string_equal(f.app, "acme");
    assert_string_equal(f.actor, "alice");
    assert_string_equal(f.action, "release.create");
    assert_string_equal(f.outcome, "denied");
    assert_true(f.has_since);
    assert_int_equal(f.since_ms, 1796193333000);
    assert_int_equal(f.before, 42);
    assert_int_equal(f.limit, 1000);
}

static void
test_filter_refuses_unknown_repeated_and_malformed_parameters(void **state)
{
    static const char *const bad[] = {"limit=0", "limit=1001", "limit=x", "before=0", "before=-1", "outcome=maybe",
                                      "app=Acme", "actor=a%2Fb", "action=release%20create", "since=soon", "app=acme&app=acme",
                                      "color=red", "limit", "app=%zz", "app=a%00b"};
    upd_audit_filter_t f;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        upd_reason_t why = {"", ""};
        assert_int_equal(upd_audit_filter_parse(bad[i], strlen(bad[i]), &f, &why), UPD_EINVAL);
        assert_string_equal(why.code, "invalid");
    }
}

static void
test_filter_matches_actor_by_member_or_key(void **state)
{
    upd_audit_rec_t r = sample(1, upd_audit_genesis);
    size_t len;
    char *a = upd_audit_encode(&r, &len);
    json_t *j = json_loadb(a, len, 0, NULL);
    upd_audit_filter_t f;
    assert_int_equal(upd_audit_filter_parse(S("actor=alice"), &f, NULL), 0);
    assert_true(upd_audit_filter_match(&f, j));
    assert_int_equal(upd_audit_filter_parse(S("actor=0123456789abcdef&app=acme&outcome=ok&action=release.create"), &f, NULL), 0);
    assert_true(upd_audit_filter_match(&f, j));
    assert_int_equal(upd_audit_filter_parse(S("actor=bob"), &f, NULL), 0);
    assert_false(upd_audit_filter_match(&f, j));
    assert_int_equal(upd_audit_filter_parse(S("app=other"), &f, NULL), 0);
    assert_false(upd_audit_filter_match(&f, j));
    assert_int_equal(upd_audit_filter_parse(S("outcome=denied"), &f, NULL), 0);
    assert_false(upd_audit_filter_match(&f, j));
    assert_int_equal(upd_audit_filter_parse(S("since=1796193333"), &f, NULL), 0);
    assert_true(upd_audit_filter_match(&f, j));
    assert_int_equal(upd_audit_filter_parse(S("since=1796193334"), &f, NULL), 0);
    assert_false(upd_audit_filter_match(&f, j));
    json_decref(j);
    free(a);
}

/* Regression: Unix seconds were recognised with strspn, which read past a buffer without a terminator (found by
 * tests/fuzz/fuzz_audit.c). The buffer here has exactly the digits: ASan stops any read beyond. */
static void
test_time_parse_reads_only_the_bytes_it_is_given(void **state)
{
    (void)state;
    char *digits = malloc(10);
    memcpy(digits, "1796193734", 10);
    int64_t ms;
    assert_int_equal(upd_audit_time_parse(digits, 10, &ms), 0);
    assert_int_equal(ms, (int64_t)1796193734 * 1000);
    assert_int_equal(upd_audit_time_parse(digits, 4, &ms), 0); /* "1796": a prefix is a time of its own */
    assert_int_equal(ms, (int64_t)1796 * 1000);
    free(digits);
}

static void
test_a_segment_list_keeps_segments_only_in_the_chains_order(void **state)
{
    (void)state;
    upd_audit_seg_list_t l = {NULL, 0, 0};
    const char *keys[] = {UPD_AUDIT_SEGMENT_PREFIX "00000000000000000101-00000000000000000200.jsonl",
                          UPD_AUDIT_SEGMENT_PREFIX ".tmp-00000000000000000001",
                          UPD_AUDIT_SEGMENT_PREFIX "00000000000000000001-00000000000000000100.jsonl",
                          UPD_AUDIT_SEGMENT_PREFIX "00000000000000000001-00000000000000000050.jsonl"};
    for (size_t i = 0; i < 4; ++i)
        assert_int_equal(upd_audit_seg_list_add(&l, keys[i], strlen(keys[i])), 0);
    upd_audit_seg_list_sort(&l);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.segs[0].first, 1);
    assert_int_equal(l.segs[0].last, 50);
    assert_int_equal(l.segs[1].last, 100);
    assert_int_equal(l.segs[2].first, 101);
    assert_string_equal(l.segs[2].key, keys[0]);
    free(l.segs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_is_canonical_and_stable),
        cmocka_unit_test(test_time_parse_reads_only_the_bytes_it_is_given),
        cmocka_unit_test(test_a_segment_list_keeps_segments_only_in_the_chains_order),
        cmocka_unit_test(test_encode_escapes_so_a_record_is_one_line),
        cmocka_unit_test(test_check_refuses_a_changed_byte),
        cmocka_unit_test(test_check_refuses_a_wrong_seq),
        cmocka_unit_test(test_check_refuses_a_broken_prev),
        cmocka_unit_test(test_check_refuses_non_canonical_spacing_and_order),
        cmocka_unit_test(test_segment_names_are_twenty_digits_each_and_parse_back),
        cmocka_unit_test(test_segment_names_of_another_shape_are_refused),
        cmocka_unit_test(test_segment_reader_splits_lines_across_pieces),
        cmocka_unit_test(test_segment_reader_refuses_a_cut_segment_and_an_overlong_line),
        cmocka_unit_test(test_segment_reader_stops_when_the_callback_says_so),
        cmocka_unit_test(test_times_parse_as_unix_seconds_or_rfc3339),
        cmocka_unit_test(test_filter_parses_every_parameter),
        cmocka_unit_test(test_filter_refuses_unknown_repeated_and_malformed_parameters),
        cmocka_unit_test(test_filter_matches_actor_by_member_or_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
