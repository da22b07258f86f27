/*
 * Fuzzes rollout percentage parsing (upd_rollout_percent_parse, domain/rollout.h), as the CLI's "rollout set" reads it.
 *
 * Input: the percentage text.
 * Invariants: accepted values are at most 10000 basis points, and exactly the inputs of the form DIGITS[.DIGITS] with
 * 1-3 integer digits, 1-2 decimals and a value of at most 100 are accepted, with the value the text says.
 */
#include <stdbool.h>
#include <stdint.h>
#include "base/err.h"
#include "domain/rollout.h"
#include "tests/fuzz/fuzz.h"

static bool
digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The grammar written out again: 1-3 digits, optionally "." and 1-2 digits; at most 100.00. */
static bool
ref_parse(const char *s, size_t len, uint32_t *bp)
{
    size_t i = 0;
    uint32_t whole = 0, frac = 0;
    while (i < len && digit(s[i]))
        whole = whole * 10 + (uint32_t)(s[i++] - '0');
    if (i == 0 || i > 3)
        return false;
    if (i < len) {
        size_t dot = i++;
        while (i < len && digit(s[i]))
            frac = frac * 10 + (uint32_t)(s[i++] - '0');
        if (i != len || i - dot - 1 < 1 || i - dot - 1 > 2 || s[dot] != '.')
            return false;
        if (i - dot - 1 == 1)
            frac *= 10;
    }
    *bp = whole * 100 + frac;
    return *bp <= 10000;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_dup(data, size);
    uint32_t bp = UINT32_MAX, want = UINT32_MAX;

    if (size > 16) { /* the reference's arithmetic is only meant for short strings; longer ones must fail anyway */
        FUZZ_CHECK(upd_rollout_percent_parse(s, size, &bp) == UPD_EINVAL);
        free(s);
        return 0;
    }
    int ret = upd_rollout_percent_parse(s, size, &bp);
    FUZZ_CHECK(ret == 0 || ret == UPD_EINVAL);
    bool ok = ref_parse(s, size, &want);
    FUZZ_CHECK((ret == 0) == ok);
    if (ret == 0) {
        FUZZ_CHECK(bp <= UPD_ROLLOUT_BASIS_POINTS);
        FUZZ_CHECK(bp == want);
    }
    free(s);
    return 0;
}
