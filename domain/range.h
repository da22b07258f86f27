#ifndef UPD_RANGE_H
#define UPD_RANGE_H

#include <stddef.h>
#include <stdint.h>

/*
 * HTTP Range header parsing for artifacts (RFC 9110 §14, PROTOCOLS.md "Artifacts and downloads").
 *
 * electron-updater's differential download sends up to 1,000 ascending ranges in one header and
 * requires the parts back in the requested order with exact lengths, never merged. Anything that
 * could amplify a response (overlapping or unsorted ranges, more than UPD_RANGE_MAX_PARTS parts,
 * parts adding up to more than the file) is answered with the whole file instead.
 */

#define UPD_RANGE_MAX_PARTS 1000

typedef struct st_upd_range_t {
    uint64_t start; /* first byte, < size */
    uint64_t len;   /* > 0; start + len <= size */
} upd_range_t;

typedef enum {
    UPD_RANGE_PARTIAL = 0,       /* out[0..*count) hold the satisfiable parts: answer 206 */
    UPD_RANGE_WHOLE = 1,         /* ignore the header and answer 200 with the whole file */
    UPD_RANGE_UNSATISFIABLE = 2  /* answer 416 with Content-Range: bytes * / SIZE */
} upd_range_result_t;

/**
 * Parses a Range header value for a representation of `size` bytes.
 *
 * Grammar: "bytes=" range *( "," OWS range ) with range = first "-" [last] / "-" suffix; OWS
 * (spaces, tabs) allowed around commas; the unit is case-insensitive. Results:
 * - syntax errors, another unit, empty list: UPD_RANGE_WHOLE (RFC 9110 lets a server ignore Range);
 * - parts with first >= size are dropped; if none is left: UPD_RANGE_UNSATISFIABLE (so is a
 *   suffix of 0 bytes, and any range on an empty file);
 * - last >= size is clamped to size - 1; a suffix longer than the file means the whole file;
 * - more than UPD_RANGE_MAX_PARTS parts, parts not strictly ascending or overlapping (a part must
 *   start after the previous part's last byte), or a total length above size: UPD_RANGE_WHOLE.
 *
 * @param out  room for `cap` parts; cap >= UPD_RANGE_MAX_PARTS is needed to accept every legal header
 * @param[out] count  parts written when UPD_RANGE_PARTIAL
 */
upd_range_result_t upd_range_parse(const char *value, size_t len, uint64_t size, upd_range_t *out, size_t cap, size_t *count);

#endif
