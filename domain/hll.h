#ifndef UPD_HLL_H
#define UPD_HLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * How many distinct clients were offered a version: a bounded, mergeable distinct count.
 *
 * A sketch is exact while small: up to UPD_HLL_SPARSE_MAX (16,384) distinct 64-bit client hashes are kept as a list,
 * so the counts of a small rollout (or a test) are exact. Past that it turns into a HyperLogLog of 2^14 one-byte
 * registers (precision 14: a standard error of 1.04 / sqrt(16384) = 0.81%, so a count is within 2% of the truth
 * in 98.6% of cases), estimated with Ertl's improved estimator ("New
 * cardinality estimation algorithms for HyperLogLog sketches", 2017), which needs no empirical bias tables and is
 * unbiased from a few thousand up to billions. Either form takes at most UPD_HLL_ENCODED_MAX bytes, whatever the
 * clients send: storage per version is constant.
 *
 * Sketches merge (union of the lists, maximum of the registers), so the counts of several origins, or of one
 * origin over time, add up to the distinct count of the whole without double counting.
 *
 * The client hash is XXH3_64bits of the id, unseeded: every origin must hash a client the same way for merges to
 * count it once. Pure functions; a sketch is a plain struct the caller owns.
 */

#define UPD_HLL_P 14
#define UPD_HLL_REGISTERS (1u << UPD_HLL_P)
#define UPD_HLL_SPARSE_MAX 16384
#define UPD_HLL_HEADER 8
/* the larger of the two forms: 8-byte header + 16,384 hashes (128 KiB) */
#define UPD_HLL_ENCODED_MAX (UPD_HLL_HEADER + UPD_HLL_SPARSE_MAX * 8)

typedef struct st_upd_hll_t {
    bool dense;
    uint32_t n;       /* sparse: how many hashes are in the set */
    uint32_t cap;     /* sparse: slots of the open-addressing set (a power of two, 0 before the first add) */
    uint64_t *set;    /* sparse: the hashes, 0 for an empty slot (a hash of 0 is stored as 1) */
    uint8_t *regs;    /* dense: UPD_HLL_REGISTERS registers */
} upd_hll_t;

/** The hash a client is counted by (XXH3_64bits of its id). */
uint64_t upd_hll_hash(const char *client, size_t len);

/** An empty sketch; it allocates on first use. */
void upd_hll_init(upd_hll_t *h);
void upd_hll_dispose(upd_hll_t *h);

/** Counts one client by its hash. @return 0, or UPD_ENOMEM (the sketch is unchanged) */
int upd_hll_add(upd_hll_t *h, uint64_t hash);
/** Adds everything counted in src to dst (the union). @return 0 or UPD_ENOMEM */
int upd_hll_merge(upd_hll_t *dst, const upd_hll_t *src);
/** The distinct count: exact while sparse, the HyperLogLog estimate (rounded) once dense. */
uint64_t upd_hll_count(const upd_hll_t *h);

/**
 * Serialises a sketch (the format is described in hll.c; two sketches of the same clients encode alike) into out,
 * which has room for UPD_HLL_ENCODED_MAX bytes. @return the length written
 */
size_t upd_hll_encode(const upd_hll_t *h, uint8_t *out);
/**
 * Reads a serialised sketch into an empty one (upd_hll_init).
 * @return 0, UPD_EINVAL (not a sketch of this format and precision, or the lengths do not add up), UPD_ENOMEM
 */
int upd_hll_decode(upd_hll_t *h, const uint8_t *data, size_t len);

#endif
