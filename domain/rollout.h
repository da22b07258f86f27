#ifndef UPD_ROLLOUT_H
#define UPD_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The rollout decision (ARCHITECTURE.md): a pure function of the rollout's state, the client id and
 * the client's country, so every origin answers the same without talking to the others.
 *
 *   bucket   = XXH3_64bits_withSeed(client_id, len, seed) % 10000
 *   eligible = pinned || (bucket < percent_bp && geo_allowed(country))
 *
 * Monotonic: raising percent_bp only adds clients, since a client's bucket does not depend on it.
 */

#define UPD_ROLLOUT_BASIS_POINTS 10000
#define UPD_ROLLOUT_MAX_COUNTRIES 250

typedef struct st_upd_rollout_t {
    uint64_t seed;
    uint32_t percent_bp; /* 0..10000; 0 is "halted" */
    bool paused;         /* the percentage is frozen: decisions go on at percent_bp */
    const char *countries; /* ncountries ISO codes of 2 bytes each, packed without separators ("DEFR"); not owned */
    size_t ncountries;     /* 0: every country (and clients whose country is unknown) is allowed */
} upd_rollout_t;

typedef enum {
    UPD_DECISION_PINNED = 0,  /* eligible: a pinned tester */
    UPD_DECISION_IN,          /* eligible: bucket below the percentage, country allowed */
    UPD_DECISION_OUT_PERCENT, /* not eligible: bucket at or above the percentage */
    UPD_DECISION_OUT_GEO,     /* not eligible: bucket inside, country not allowed */
    UPD_DECISION_COUNT
} upd_decision_t;

/** The client's bucket in 0..9999. */
uint32_t upd_rollout_bucket(const char *client_id, size_t len, uint64_t seed);

/**
 * Whether a country may receive the rollout. country is 2 bytes or NULL when unknown; with a
 * non-empty country list an unknown country is not allowed.
 */
bool upd_rollout_geo_allowed(const upd_rollout_t *r, const char *country);

/**
 * Decides for a client whose bucket is already known (upd_rollout_bucket), so a caller that needed
 * the bucket first (to skip a geo lookup that cannot change the answer) does not hash the id twice.
 */
upd_decision_t upd_rollout_decide_bucket(const upd_rollout_t *r, uint32_t bucket, bool pinned, const char *country);

/**
 * Decides for one client. pinned says whether the client is on the rollout's pinned list (the
 * caller looks that up, since the list lives in the store).
 */
upd_decision_t upd_rollout_decide(const upd_rollout_t *r, const char *client_id, size_t len, bool pinned, const char *country);

/** true for UPD_DECISION_PINNED and UPD_DECISION_IN */
bool upd_decision_is_eligible(upd_decision_t d);
/** "pinned", "in", "out_percent", "out_geo" (metric labels) */
const char *upd_decision_name(upd_decision_t d);

/**
 * Parses a percentage with at most two decimals ("25", "25.5", "25.50", "100", "0") into basis points.
 * @return 0, or UPD_EINVAL for anything else (negative, above 100, three decimals, junk)
 */
int upd_rollout_percent_parse(const char *s, size_t len, uint32_t *out_bp);

#endif
