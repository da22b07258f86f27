#include "domain/version.h"

#include <stdbool.h>
#include <string.h>

#include "base/err.h"

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* A numeric identifier of the core: "0" or [1-9][0-9]*, at most UINT64_MAX. Advances *p past it. */
static int
parse_number(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (s == end || !is_digit(*s))
        return UPD_EINVAL;
    if (*s == '0' && s + 1 != end && is_digit(s[1]))
        return UPD_EINVAL; /* SemVer §2: no leading zeros */
    for (; s != end && is_digit(*s); ++s) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return UPD_EINVAL;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

/*
 * Checks a dot-separated identifier list (pre-release or build), from s to end. Empty identifiers are refused in both;
 * leading zeros only in the numeric identifiers of a pre-release (SemVer §9), since build identifiers are not numbers (§10).
 */
static int
check_idents(const char *s, const char *end, bool numeric_no_leading_zero)
{
    while (1) {
        const char *id = s;
        bool numeric = true;
        for (; s != end && *s != '.'; ++s) {
            if (!is_ident_char(*s))
                return UPD_EINVAL;
            if (!is_digit(*s))
                numeric = false;
        }
        size_t n = (size_t)(s - id);
        if (n == 0)
            return UPD_EINVAL;
        if (numeric_no_leading_zero && numeric && n > 1 && id[0] == '0')
            return UPD_EINVAL;
        if (s == end)
            return 0;
        ++s; /* the dot; a trailing one leaves an empty identifier, refused on the next turn */
    }
}

int
upd_version_parse(const char *s, size_t len, upd_version_t *out)
{
    const char *p = s, *end = s + len, *pre = NULL, *pre_end = NULL;
    upd_version_t v;
    int ret;

    if (len == 0 || len > UPD_VERSION_MAX)
        return UPD_EINVAL;
    if ((ret = parse_number(&p, end, &v.major)) != 0)
        return ret;
    if (p == end || *p++ != '.')
        return UPD_EINVAL;
    if ((ret = parse_number(&p, end, &v.minor)) != 0)
        return ret;
    if (p == end || *p++ != '.')
        return UPD_EINVAL;
    if ((ret = parse_number(&p, end, &v.patch)) != 0)
        return ret;

    if (p != end && *p == '-') {
        pre = ++p;
        while (p != end && *p != '+')
            ++p;
        pre_end = p;
        if ((ret = check_idents(pre, pre_end, true)) != 0)
            return ret;
    }
    if (p != end) {
        if (*p++ != '+')
            return UPD_EINVAL;
        if ((ret = check_idents(p, end, false)) != 0)
            return ret;
    }

    v.pre = pre;
    v.pre_len = pre != NULL ? (size_t)(pre_end - pre) : 0;
    *out = v;
    return 0;
}

static int
cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

static bool
all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i != n; ++i)
        if (!is_digit(s[i]))
            return false;
    return true;
}

/* SemVer §11.4.1-3 for one pair of identifiers. */
static int
cmp_ident(const char *a, size_t an, const char *b, size_t bn)
{
    bool anum = all_digits(a, an), bnum = all_digits(b, bn);

    if (anum && bnum) {
        /* Compared as digit strings, which cannot overflow: without leading zeros the longer one is the larger. */
        if (an != bn)
            return an < bn ? -1 : 1;
        int c = memcmp(a, b, an);
        return c < 0 ? -1 : c > 0;
    }
    if (anum != bnum)
        return anum ? -1 : 1; /* numeric identifiers have lower precedence than alphanumeric ones */
    /* ASCII order; a prefix sorts first */
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return cmp_u64(an, bn);
}

int
upd_version_cmp(const upd_version_t *a, const upd_version_t *b)
{
    int c;

    if ((c = cmp_u64(a->major, b->major)) != 0 || (c = cmp_u64(a->minor, b->minor)) != 0 || (c = cmp_u64(a->patch, b->patch)) != 0)
        return c;
    /* §11.3: a pre-release version has lower precedence than the normal version */
    if (a->pre == NULL || b->pre == NULL)
        return (a->pre == NULL) - (b->pre == NULL);

    const char *ap = a->pre, *aend = a->pre + a->pre_len, *bp = b->pre, *bend = b->pre + b->pre_len;
    while (1) {
        const char *aid = ap, *bid = bp;
        while (ap != aend && *ap != '.')
            ++ap;
        while (bp != bend && *bp != '.')
            ++bp;
        if ((c = cmp_ident(aid, (size_t)(ap - aid), bid, (size_t)(bp - bid))) != 0)
            return c;
        /* §11.4.4: with all preceding identifiers equal, the larger set has the higher precedence */
        if (ap == aend || bp == bend)
            return (ap != aend) - (bp != bend);
        ++ap;
        ++bp;
    }
}

int
upd_version_cmp_str(const char *a, size_t alen, const char *b, size_t blen)
{
    upd_version_t va, vb;
    bool aok = upd_version_parse(a, alen, &va) == 0, bok = upd_version_parse(b, blen, &vb) == 0;

    if (!aok || !bok)
        return aok - bok;
    return upd_version_cmp(&va, &vb);
}
