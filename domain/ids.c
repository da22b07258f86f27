#include "domain/ids.h"

#include <stdint.h>
#include <string.h>

/* Explicit ASCII ranges rather than <ctype.h>: isalnum() depends on the locale, and these grammars are byte-exact. */
static bool
is_lower_digit(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
is_alnum(char c)
{
    return is_lower_digit(c) || (c >= 'A' && c <= 'Z');
}

static bool
all_of(const char *s, size_t len, const char *extra)
{
    for (size_t i = 0; i != len; ++i) {
        /* memchr, not strchr: strchr would accept a NUL byte inside len since it finds the terminator */
        if (!is_alnum(s[i]) && memchr(extra, s[i], strlen(extra)) == NULL)
            return false;
    }
    return true;
}

bool
upd_id_is_app(const char *s, size_t len)
{
    if (len == 0 || len > UPD_ID_MAX || !is_lower_digit(s[0]))
        return false;
    for (size_t i = 1; i != len; ++i)
        if (!is_lower_digit(s[i]) && s[i] != '-')
            return false;
    return true;
}

bool
upd_id_is_channel(const char *s, size_t len)
{
    return upd_id_is_app(s, len);
}

bool
upd_id_is_filename(const char *s, size_t len)
{
    if (len == 0 || len > UPD_FILENAME_MAX || !all_of(s, len, "._+-"))
        return false;
    /* "." and ".." would walk the artifact path up a directory */
    if (s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.')))
        return false;
    return true;
}

/* [A-Za-z0-9._:-], one bit per ASCII code: every update check validates its client id, so no memchr per byte */
static const uint64_t client_bits[2] = {0x07ff600000000000ull, 0x07fffffe87fffffeull};

bool
upd_id_is_client(const char *s, size_t len)
{
    if (len == 0 || len > UPD_CLIENT_ID_MAX)
        return false;
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 128 || (client_bits[c >> 6] >> (c & 63) & 1) == 0)
            return false;
    }
    return true;
}

bool
upd_id_is_country(const char *s, size_t len)
{
    if (len != UPD_COUNTRY_LEN)
        return false;
    for (size_t i = 0; i != len; ++i)
        if (s[i] < 'A' || s[i] > 'Z')
            return false;
    return true;
}

struct name_map {
    const char *name;
    int value;
};

/* Names are matched exactly (case-sensitive): every client we serve sends them in lower case. */
static int
lookup(const struct name_map *map, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i != n; ++i)
        if (strlen(map[i].name) == len && memcmp(map[i].name, s, len) == 0)
            return map[i].value;
    return -1;
}

static const char *const platform_names[UPD_PLATFORM_COUNT] = {"windows", "mac", "linux"};
static const char *const arch_names[UPD_ARCH_COUNT] = {"x64", "arm64", "ia32", "universal"};

int
upd_platform_parse(const char *s, size_t len)
{
    static const struct name_map map[] = {
        {"windows", UPD_PLATFORM_WINDOWS}, {"mac", UPD_PLATFORM_MAC},    {"linux", UPD_PLATFORM_LINUX},
        {"win32", UPD_PLATFORM_WINDOWS},   {"darwin", UPD_PLATFORM_MAC},
    };
    return lookup(map, sizeof(map) / sizeof(map[0]), s, len);
}

const char *
upd_platform_name(upd_platform_t p)
{
    return (unsigned)p < UPD_PLATFORM_COUNT ? platform_names[p] : NULL;
}

int
upd_arch_parse(const char *s, size_t len)
{
    static const struct name_map map[] = {
        {"x64", UPD_ARCH_X64},    {"arm64", UPD_ARCH_ARM64},   {"ia32", UPD_ARCH_IA32}, {"universal", UPD_ARCH_UNIVERSAL},
        {"x86_64", UPD_ARCH_X64}, {"aarch64", UPD_ARCH_ARM64}, {"i686", UPD_ARCH_IA32}, {"x86", UPD_ARCH_IA32},
    };
    return lookup(map, sizeof(map) / sizeof(map[0]), s, len);
}

const char *
upd_arch_name(upd_arch_t a)
{
    return (unsigned)a < UPD_ARCH_COUNT ? arch_names[a] : NULL;
}
