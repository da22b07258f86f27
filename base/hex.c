#include "base/hex.h"

void
upd_hex_encode(const void *src, size_t n, char *dst)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = src;
    for (size_t i = 0; i != n; ++i) {
        dst[i * 2] = digits[p[i] >> 4];
        dst[i * 2 + 1] = digits[p[i] & 15];
    }
    dst[n * 2] = '\0';
}

static int
digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool
upd_hex_decode(const char *src, size_t n, uint8_t *dst)
{
    for (size_t i = 0; i != n; ++i) {
        int hi = digit(src[i * 2]), lo = digit(src[i * 2 + 1]);
        if (hi < 0 || lo < 0)
            return false;
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}
