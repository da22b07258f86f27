#ifndef UPD_CIDR_H
#define UPD_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Address ranges ("10.0.0.0/8", "::1/128", "192.0.2.7") for the trusted-proxy list. */

typedef struct st_upd_cidr_t {
    uint8_t addr[16]; /* IPv4 stored as IPv4-mapped IPv6 */
    unsigned bits;    /* prefix length over the 128-bit form */
} upd_cidr_t;

/** @return 0 or UPD_EINVAL */
int upd_cidr_parse(const char *s, upd_cidr_t *out);
/** Parses a textual address (no prefix) into the 16-byte form. @return 0 or UPD_EINVAL */
int upd_cidr_addr_parse(const char *s, size_t len, uint8_t out[16]);
/** Converts a sockaddr (AF_INET/AF_INET6) to the 16-byte form. @return 0 or UPD_EINVAL */
int upd_cidr_addr_from_sockaddr(const struct sockaddr *sa, uint8_t out[16]);
bool upd_cidr_contains(const upd_cidr_t *list, size_t n, const uint8_t addr[16]);

#endif
