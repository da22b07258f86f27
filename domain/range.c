#include "domain/range.h"

#include <stdbool.h>
#include <strings.h>

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static const char *
skip_ows(const char *p, const char *end)
{
    while (p != end && is_ows(*p))
        ++p;
    return p;
}

/* 1*DIGIT into *out; false when there is no digit or the value does not fit 64 bits (a hostile header, not a range). */
static bool
parse_u64(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (s == end || *s < '0' || *s > '9')
        return false;
    for (; s != end && *s >= '0' && *s <= '9'; ++s) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

/*
 * Parses one range-spec at *p and resolves it against size. Returns false on a syntax error; otherwise *keep says whether
 * the part is satisfiable and, if so, *part holds it.
 */
static bool
parse_part(const char **p, const char *end, uint64_t size, upd_range_t *part, bool *keep)
{
    uint64_t first, last;

    if (*p != end && **p == '-') {
        ++*p;
        if (!parse_u64(p, end, &last))
            return false;
        /* suffix-range: the last `last` bytes; longer than the file means all of it, 0 bytes is unsatisfiable */
        *keep = last != 0 && size != 0;
        if (*keep) {
            part->len = last < size ? last : size;
            part->start = size - part->len;
        }
        return true;
    }

    if (!parse_u64(p, end, &first) || *p == end || **p != '-')
        return false;
    ++*p;
    if (*p != end && **p >= '0' && **p <= '9') {
        if (!parse_u64(p, end, &last) || last < first) /* RFC 9110 §14.1.1: last < first is invalid */
            return false;
    } else {
        last = UINT64_MAX; /* open-ended: to the end */
    }
    *keep = first < size;
    if (*keep) {
        if (last >= size)
            last = size - 1;
        part->start = first;
        part->len = last - first + 1;
    }
    return true;
}

upd_range_result_t
upd_range_parse(const char *value, size_t len, uint64_t size, upd_range_t *out, size_t cap, size_t *count)
{
    static const char unit[] = "bytes=";
    const char *p = value, *end = value + len;
    size_t nparts = 0, nkept = 0;
    uint64_t total = 0, next_start = 0; /* a kept part must start at or after next_start (the previous part's last + 1) */

    *count = 0;

    /* Surrounding whitespace is not part of a field value (RFC 9110 §5.5); the server may or may not have trimmed it. */
    p = skip_ows(p, end);
    while (end != p && is_ows(end[-1]))
        --end;
    if ((size_t)(end - p) < sizeof(unit) - 1 || strncasecmp(p, unit, sizeof(unit) - 1) != 0)
        return UPD_RANGE_WHOLE;
    p += sizeof(unit) - 1;

    while (1) {
        upd_range_t part;
        bool keep;

        /* Counting every part, kept or not, bounds the work any header can cost us. */
        if (++nparts > UPD_RANGE_MAX_PARTS)
            return UPD_RANGE_WHOLE;
        if (!parse_part(&p, end, size, &part, &keep))
            return UPD_RANGE_WHOLE;
        if (keep) {
            /* Ascending and disjoint, or the response could repeat the file many times over (amplification). */
            if (nkept != 0 && part.start < next_start)
                return UPD_RANGE_WHOLE;
            if (part.len > size - total)
                return UPD_RANGE_WHOLE;
            if (nkept == cap)
                return UPD_RANGE_WHOLE; /* the caller cannot hold the parts: serving the whole file is still correct */
            total += part.len;
            next_start = part.start + part.len;
            out[nkept++] = part;
        }
        p = skip_ows(p, end);
        if (p == end)
            break;
        if (*p++ != ',')
            return UPD_RANGE_WHOLE;
        p = skip_ows(p, end);
    }

    if (nkept == 0)
        return UPD_RANGE_UNSATISFIABLE;
    *count = nkept;
    return UPD_RANGE_PARTIAL;
}
