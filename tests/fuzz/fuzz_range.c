/*
 * Fuzzes Range header parsing (domain/range.h).
 *
 * Input: "SIZE\nVALUE": the representation's size in decimal on the first line (digits only, taken modulo 2^64; no
 * newline means a 1 MiB file), then the header value.
 * Invariants, on UPD_RANGE_PARTIAL: 1..UPD_RANGE_MAX_PARTS parts, each with len > 0 and start + len <= size (no
 * overflow), strictly ascending and non-overlapping, adding up to at most size. A caller with room for one part gets the
 * same single part, or the whole file when more were asked for. An empty file is never partial.
 */
#include <stdint.h>
#include "domain/range.h"
#include "tests/fuzz/fuzz.h"

static void
check_parts(const upd_range_t *parts, size_t count, uint64_t size)
{
    uint64_t total = 0;
    FUZZ_CHECK(count >= 1 && count <= UPD_RANGE_MAX_PARTS);
    for (size_t i = 0; i < count; ++i) {
        FUZZ_CHECK(parts[i].len > 0);
        FUZZ_CHECK(parts[i].start < size);
        FUZZ_CHECK(parts[i].len <= size - parts[i].start); /* start + len <= size, without overflowing */
        if (i > 0)
            FUZZ_CHECK(parts[i].start >= parts[i - 1].start + parts[i - 1].len); /* ascending, disjoint */
        FUZZ_CHECK(parts[i].len <= size - total);
        total += parts[i].len;
    }
    FUZZ_CHECK(total <= size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t file_size = 1 << 20;
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl != NULL) {
        file_size = 0;
        for (const uint8_t *p = data; p < nl; ++p)
            if (*p >= '0' && *p <= '9')
                file_size = file_size * 10 + (uint64_t)(*p - '0');
        size -= (size_t)(nl + 1 - data);
        data = nl + 1;
    }
    char *value = fuzz_dup(data, size);
    upd_range_t *parts = malloc(UPD_RANGE_MAX_PARTS * sizeof(*parts)), *one = malloc(sizeof(*one));
    size_t count = SIZE_MAX, count1 = SIZE_MAX;

    upd_range_result_t r = upd_range_parse(value, size, file_size, parts, UPD_RANGE_MAX_PARTS, &count);
    FUZZ_CHECK(r == UPD_RANGE_PARTIAL || r == UPD_RANGE_WHOLE || r == UPD_RANGE_UNSATISFIABLE);
    if (r == UPD_RANGE_PARTIAL) {
        FUZZ_CHECK(file_size != 0);
        check_parts(parts, count, file_size);
    }

    upd_range_result_t r1 = upd_range_parse(value, size, file_size, one, 1, &count1);
    if (r == UPD_RANGE_PARTIAL && count > 1) {
        FUZZ_CHECK(r1 == UPD_RANGE_WHOLE);
    } else {
        FUZZ_CHECK(r1 == r);
        if (r == UPD_RANGE_PARTIAL)
            FUZZ_CHECK(count1 == 1 && one->start == parts[0].start && one->len == parts[0].len);
    }

    free(parts);
    free(one);
    free(value);
    return 0;
}
