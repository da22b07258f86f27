#include "domain/rollout.h"

#include <string.h>

#define XXH_INLINE_ALL /* the bucket is computed on every personalised feed request: let the compiler inline XXH3 */
#include <xxhash.h>

#include "base/err.h"

uint32_t
upd_rollout_bucket(const char *client_id, size_t len, uint64_t seed)
{
    return (uint32_t)(XXH3_64bits_withSeed(client_id, len, seed) % UPD_ROLLOUT_BASIS_POINTS);
}

bool
upd_rollout_geo_allowed(const upd_rollout_t *r, const char *country)
{
    if (r->ncountries == 0)
        return true;
    if (country == NULL)
        return false; /* a restricted rollout must not leak to clients we cannot place */
    for (size_t i = 0; i != r->ncountries; ++i)
        if (memcmp(r->countries + 2 * i, country, 2) == 0)
            return true;
    return false;
}

upd_decision_t
upd_rollout_decide_bucket(const upd_rollout_t *r, uint32_t bucket, bool pinned, const char *country)
{
    /* r->paused is deliberately not read: pausing freezes the percentage, it does not change who is in. */
    if (pinned)
        return UPD_DECISION_PINNED;
    if (bucket >= r->percent_bp)
        return UPD_DECISION_OUT_PERCENT;
    if (!upd_rollout_geo_allowed(r, country))
        return UPD_DECISION_OUT_GEO;
    return UPD_DECISION_IN;
}

upd_decision_t
upd_rollout_decide(const upd_rollout_t *r, const char *client_id, size_t len, bool pinned, const char *country)
{
    return upd_rollout_decide_bucket(r, upd_rollout_bucket(client_id, len, r->seed), pinned, country);
}

bool
upd_decision_is_eligible(upd_decision_t d)
{
    return d == UPD_DECISION_PINNED || d == UPD_DECISION_IN;
}

const char *
upd_decision_name(upd_decision_t d)
{
    static const char *const names[UPD_DECISION_COUNT] = {"pinned", "in", "out_percent", "out_geo"};
    return (unsigned)d < UPD_DECISION_COUNT ? names[d] : "unknown";
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Grammar: 1*3DIGIT [ "." 1*2DIGIT ], value at most 100. ".5" and "5." are refused: the API and CLI print what they
 * store, so only the canonical spellings round-trip; leading zeros ("05") are accepted as the number they plainly are.
 */
int
upd_rollout_percent_parse(const char *s, size_t len, uint32_t *out_bp)
{
    size_t i = 0, nint = 0, nfrac = 0;
    uint32_t whole = 0, frac = 0;

    for (; i != len && is_digit(s[i]); ++i, ++nint) {
        if (nint == 3)
            return UPD_EINVAL; /* also keeps whole far from overflow */
        whole = whole * 10 + (uint32_t)(s[i] - '0');
    }
    if (nint == 0)
        return UPD_EINVAL;
    if (i != len) {
        if (s[i++] != '.')
            return UPD_EINVAL;
        for (; i != len && is_digit(s[i]); ++i, ++nfrac) {
            if (nfrac == 2)
                return UPD_EINVAL;
            frac = frac * 10 + (uint32_t)(s[i] - '0');
        }
        if (nfrac == 0 || i != len)
            return UPD_EINVAL;
        if (nfrac == 1)
            frac *= 10; /* "25.5" is 25.50 */
    }
    uint32_t bp = whole * 100 + frac;
    if (bp > UPD_ROLLOUT_BASIS_POINTS)
        return UPD_EINVAL;
    *out_bp = bp;
    return 0;
}
