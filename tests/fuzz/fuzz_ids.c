/*
 * Fuzzes every identifier validator and name parser (domain/ids.h) against the grammars written out again here.
 *
 * Input: one candidate identifier; each validator sees the whole input, and the first line alone, through buffers with
 * no terminator (so reading past len is caught).
 * Invariants: each validator accepts exactly its grammar (PROTOCOLS.md "Common rules"); platform and arch names parse to
 * a value whose canonical name parses back to the same value, and only the documented names and aliases parse.
 */
#include <stdbool.h>
#include <stdint.h>
#include "domain/ids.h"
#include "tests/fuzz/fuzz.h"

static bool
in(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

#define LOWER_DIGIT "abcdefghijklmnopqrstuvwxyz0123456789"
#define ALNUM LOWER_DIGIT "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

static bool
all_in(const char *s, size_t len, const char *set)
{
    for (size_t i = 0; i < len; ++i)
        if (!in(s[i], set))
            return false;
    return true;
}

/* [a-z0-9][a-z0-9-]{0,62} */
static bool
ref_app(const char *s, size_t len)
{
    return len >= 1 && len <= 63 && in(s[0], LOWER_DIGIT) && all_in(s, len, LOWER_DIGIT "-");
}

/* [A-Za-z0-9._+-]{1,200}, not "." nor ".." */
static bool
ref_filename(const char *s, size_t len)
{
    return len >= 1 && len <= 200 && all_in(s, len, ALNUM "._+-") && !(len == 1 && s[0] == '.') &&
           !(len == 2 && s[0] == '.' && s[1] == '.');
}

/* [A-Za-z0-9._:-]{1,128} */
static bool
ref_client(const char *s, size_t len)
{
    return len >= 1 && len <= 128 && all_in(s, len, ALNUM "._:-");
}

static bool
ref_country(const char *s, size_t len)
{
    return len == 2 && all_in(s, len, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
}

static int
ref_lookup(const char *const *names, const int *values, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; ++i)
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
            return values[i];
    return -1;
}

static void
check(const char *s, size_t len)
{
    FUZZ_CHECK(upd_id_is_app(s, len) == ref_app(s, len));
    FUZZ_CHECK(upd_id_is_channel(s, len) == ref_app(s, len));
    FUZZ_CHECK(upd_id_is_filename(s, len) == ref_filename(s, len));
    FUZZ_CHECK(upd_id_is_client(s, len) == ref_client(s, len));
    FUZZ_CHECK(upd_id_is_country(s, len) == ref_country(s, len));

    static const char *const platforms[] = {"windows", "mac", "linux", "win32", "darwin"};
    static const int platform_values[] = {UPD_PLATFORM_WINDOWS, UPD_PLATFORM_MAC, UPD_PLATFORM_LINUX, UPD_PLATFORM_WINDOWS,
                                          UPD_PLATFORM_MAC};
    int p = upd_platform_parse(s, len);
    FUZZ_CHECK(p == ref_lookup(platforms, platform_values, 5, s, len));
    if (p >= 0) {
        const char *name = upd_platform_name((upd_platform_t)p);
        FUZZ_CHECK(name != NULL && upd_platform_parse(name, strlen(name)) == p);
    }

    static const char *const arches[] = {"x64", "arm64", "ia32", "universal", "x86_64", "aarch64", "i686", "x86"};
    static const int arch_values[] = {UPD_ARCH_X64, UPD_ARCH_ARM64, UPD_ARCH_IA32, UPD_ARCH_UNIVERSAL,
                                      UPD_ARCH_X64, UPD_ARCH_ARM64, UPD_ARCH_IA32, UPD_ARCH_IA32};
    int a = upd_arch_parse(s, len);
    FUZZ_CHECK(a == ref_lookup(arches, arch_values, 8, s, len));
    if (a >= 0) {
        const char *name = upd_arch_name((upd_arch_t)a);
        FUZZ_CHECK(name != NULL && upd_arch_parse(name, strlen(name)) == a);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_dup(data, size);
    check(s, size);
    const char *nl = memchr(s, '\n', size);
    if (nl != NULL) {
        size_t len = (size_t)(nl - s);
        char *line = fuzz_dup(s, len);
        check(line, len);
        free(line);
    }
    free(s);
    return 0;
}
