/*
 * Fuzzes trusted-proxy ranges (upd_cidr_parse, upd_cidr_addr_parse, domain/cidr.h).
 *
 * Input: one range as written in the config ("10.0.0.0/8", "::1/128", "192.0.2.7").
 * Invariants: the result is 0 or UPD_EINVAL; an accepted range has a prefix of at most 128 bits (96 to 128 for IPv4,
 * stored IPv4-mapped), its address parses the same on its own (from a buffer without terminator), it contains its own
 * address and every address that differs only past the prefix, and no address that differs inside it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include "base/err.h"
#include "domain/cidr.h"
#include "tests/fuzz/fuzz.h"

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strdup(data, size);
    upd_cidr_t c;
    uint8_t addr[16];

    /* the whole input as an address, from a buffer with no terminator */
    char *raw = fuzz_dup(data, size);
    int ar = upd_cidr_addr_parse(raw, size, addr);
    FUZZ_CHECK(ar == 0 || ar == UPD_EINVAL);
    free(raw);

    int ret = upd_cidr_parse(s, &c);
    FUZZ_CHECK(ret == 0 || ret == UPD_EINVAL);
    if (ret == 0) {
        const char *slash = strchr(s, '/');
        size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
        bool v4 = memchr(s, ':', alen) == NULL;
        FUZZ_CHECK(c.bits <= 128);
        if (v4)
            FUZZ_CHECK(c.bits >= 96 && memcmp(c.addr, v4_mapped, 12) == 0);
        if (slash == NULL)
            FUZZ_CHECK(c.bits == 128);

        char *a = fuzz_dup(s, alen);
        FUZZ_CHECK(upd_cidr_addr_parse(a, alen, addr) == 0 && memcmp(addr, c.addr, 16) == 0);
        free(a);

        if (v4) {
            struct sockaddr_in sin = {.sin_family = AF_INET};
            memcpy(&sin.sin_addr, c.addr + 12, 4);
            FUZZ_CHECK(upd_cidr_addr_from_sockaddr((struct sockaddr *)&sin, addr) == 0 && memcmp(addr, c.addr, 16) == 0);
        } else {
            struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
            memcpy(&sin6.sin6_addr, c.addr, 16);
            FUZZ_CHECK(upd_cidr_addr_from_sockaddr((struct sockaddr *)&sin6, addr) == 0 && memcmp(addr, c.addr, 16) == 0);
        }

        FUZZ_CHECK(upd_cidr_contains(&c, 1, c.addr));
        for (unsigned bit = 0; bit < 128; ++bit) {
            memcpy(addr, c.addr, 16);
            addr[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
            FUZZ_CHECK(upd_cidr_contains(&c, 1, addr) == (bit >= c.bits));
        }
    }
    free(s);
    return 0;
}
