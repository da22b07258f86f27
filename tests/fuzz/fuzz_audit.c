/*
 * Fuzzes the audit trail's parsers of outside input (domain/audit.h): the query of GET /v1/audit, RFC 3339 times,
 * segment names and segments as they arrive from an object store, and the check of a stored record.
 *
 * Input: the first byte picks where the rest is cut in two (the segment reader gets the halves as two pieces).
 * Invariants: every parser answers 0 or its documented refusal; an accepted query has a limit of 1 to
 * UPD_AUDIT_QUERY_LIMIT_MAX; a parsed segment name formats back to the same bytes; the segment reader hands over the
 * same lines whether the bytes come in one piece or two; a record that passes upd_audit_check is canonical JSON, so
 * it encodes back to itself.
 */
#include <jansson.h>
#include <stdint.h>
#include "base/err.h"
#include "domain/audit.h"
#include "tests/fuzz/fuzz.h"

struct lines {
    uint64_t n;
    uint64_t sum; /* a running digest of the lines' lengths and first bytes */
};

static int
on_line(const char *rec, size_t len, void *arg)
{
    struct lines *l = arg;
    ++l->n;
    l->sum = l->sum * 1000003u + len + (len != 0 ? (unsigned char)rec[0] : 0);
    return 0;
}

static int
read_segment(const uint8_t *data, size_t size, size_t cut, struct lines *l)
{
    upd_audit_seg_reader_t r;
    FUZZ_CHECK(upd_audit_seg_reader_init(&r, on_line, l) == 0);
    int ret = upd_audit_seg_reader_feed(&r, data, cut);
    if (ret == 0)
        ret = upd_audit_seg_reader_feed(&r, data + cut, size - cut);
    if (ret == 0)
        ret = upd_audit_seg_reader_end(&r);
    upd_audit_seg_reader_dispose(&r);
    FUZZ_CHECK(ret == 0 || ret == UPD_ETOOBIG || ret == UPD_EINVAL);
    return ret;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t cut = size > 1 ? data[0] % size : 0;
    ++data, --size;
    if (cut > size)
        cut = size;
    char *raw = fuzz_dup(data, size);

    upd_audit_filter_t f;
    upd_reason_t why;
    int ret = upd_audit_filter_parse(raw, size, &f, &why);
    FUZZ_CHECK(ret == 0 || ret == UPD_EINVAL);
    if (ret == 0)
        FUZZ_CHECK(f.limit >= 1 && f.limit <= UPD_AUDIT_QUERY_LIMIT_MAX);

    int64_t ms;
    ret = upd_audit_time_parse(raw, size, &ms);
    FUZZ_CHECK(ret == 0 || ret == UPD_EINVAL);

    uint64_t first, last;
    if (upd_audit_segment_parse_name(raw, size, &first, &last)) {
        char name[UPD_AUDIT_SEGMENT_NAME_MAX + 1];
        upd_audit_segment_name(first, last, name);
        FUZZ_CHECK(first <= last);
        FUZZ_CHECK(size == strlen(name) && memcmp(raw, name, size) == 0);
    }

    struct lines whole = {0, 0}, halves = {0, 0};
    int r1 = read_segment(data, size, size, &whole), r2 = read_segment(data, size, cut, &halves);
    FUZZ_CHECK(r1 == r2);
    if (r1 == 0)
        FUZZ_CHECK(whole.n == halves.n && whole.sum == halves.sum);

    if (upd_audit_check(raw, size, 1, upd_audit_genesis, &why) == 0) {
        json_t *j = json_loadb(raw, size, 0, NULL);
        FUZZ_CHECK(j != NULL);
        char *again = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        FUZZ_CHECK(again != NULL && strlen(again) == size && memcmp(again, raw, size) == 0);
        free(again);
        json_decref(j);
    }
    free(raw);
    return 0;
}
