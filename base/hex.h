#ifndef UPD_HEX_H
#define UPD_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Lower-case hex, the one form Updraft writes digests, names and signatures in: cache object names,
 * block digests in release records, ETags, purge signatures and nonces.
 */

/** Writes 2 * n lower-case hex digits of src and a NUL to dst (2 * n + 1 bytes). */
void upd_hex_encode(const void *src, size_t n, char *dst);

/**
 * Reads n bytes from 2 * n lower-case hex digits (upper case is refused: every such text Updraft reads
 * it wrote itself, so another spelling is not the same name).
 * @return false when a character is not a lower-case hex digit (dst is then unspecified)
 */
bool upd_hex_decode(const char *src, size_t n, uint8_t *dst);

#endif
