#include "domain/cidr.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"

int
upd_cidr_addr_parse(const char *s, size_t len, uint8_t out[16])
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof(buf))
        return UPD_EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, buf, out) == 1 ? 0 : UPD_EINVAL;
}

int
upd_cidr_addr_from_sockaddr(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return UPD_EINVAL;
}

int
upd_cidr_parse(const char *s, upd_cidr_t *out)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (upd_cidr_addr_parse(s, alen, out->addr) != 0)
        return UPD_EINVAL;
    bool v4 = memcmp(out->addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0 && memchr(s, ':', alen) == NULL;
    unsigned max = v4 ? 32 : 128;
    out->bits = 128;
    if (slash != NULL) {
        char *end;
        if (slash[1] < '0' || slash[1] > '9')
            return UPD_EINVAL;
        unsigned long b = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || b > max)
            return UPD_EINVAL;
        out->bits = (unsigned)b + (v4 ? 96 : 0);
    }
    return 0;
}

bool
upd_cidr_contains(const upd_cidr_t *list, size_t n, const uint8_t addr[16])
{
    for (size_t i = 0; i < n; ++i) {
        unsigned full = list[i].bits / 8, rest = list[i].bits % 8;
        if (memcmp(list[i].addr, addr, full) != 0)
            continue;
        if (rest != 0) {
            uint8_t mask = (uint8_t)(0xff << (8 - rest));
            if ((list[i].addr[full] & mask) != (addr[full] & mask))
                continue;
        }
        return true;
    }
    return false;
}
