#include "domain/hll.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "base/err.h"
#include "base/le.h"

/*
 * Encoded form (little-endian):
 *   0  'U' 'H'
 *   2  format 1
 *   3  form: 0 sparse, 1 dense
 *   4  precision (UPD_HLL_P)
 *   5  reserved, 0
 *   6  uint16 n: sparse, the number of hashes that follow (8 bytes each, ascending, distinct); dense, 0
 *   8  sparse: n hashes; dense: UPD_HLL_REGISTERS register bytes
 */
#define FORMAT 1
#define Q (64 - UPD_HLL_P) /* bits of the hash left after the register index; register values are 0..Q+1 */

uint64_t
upd_hll_hash(const char *client, size_t len)
{
    return XXH3_64bits(client, len);
}

void
upd_hll_init(upd_hll_t *h)
{
    memset(h, 0, sizeof(*h));
}

void
upd_hll_dispose(upd_hll_t *h)
{
    free(h->set);
    free(h->regs);
    upd_hll_init(h);
}

static void
dense_add(uint8_t *regs, uint64_t hash)
{
    uint32_t idx = (uint32_t)(hash >> Q);
    uint64_t w = hash << UPD_HLL_P;
    uint8_t rho = w == 0 ? Q + 1 : (uint8_t)(__builtin_clzll(w) + 1);
    if (regs[idx] < rho)
        regs[idx] = rho;
}

static int
to_dense(upd_hll_t *h)
{
    uint8_t *regs = calloc(UPD_HLL_REGISTERS, 1);
    if (regs == NULL)
        return UPD_ENOMEM;
    for (uint32_t i = 0; i != h->cap; ++i)
        if (h->set[i] != 0)
            dense_add(regs, h->set[i]);
    free(h->set);
    h->set = NULL;
    h->n = h->cap = 0;
    h->regs = regs;
    h->dense = true;
    return 0;
}

/* Inserts into the open-addressing set; false when it was there already. The set has room (cap > 2n). */
static bool
set_insert(uint64_t *set, uint32_t cap, uint64_t hash)
{
    for (uint32_t i = (uint32_t)(hash ^ hash >> 32) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (set[i] == hash)
            return false;
        if (set[i] == 0) {
            set[i] = hash;
            return true;
        }
    }
}

static int
set_grow(upd_hll_t *h)
{
    uint32_t cap = h->cap == 0 ? 64 : h->cap * 2;
    uint64_t *set = calloc(cap, sizeof(*set));
    if (set == NULL)
        return UPD_ENOMEM;
    for (uint32_t i = 0; i != h->cap; ++i)
        if (h->set[i] != 0)
            set_insert(set, cap, h->set[i]);
    free(h->set);
    h->set = set;
    h->cap = cap;
    return 0;
}

int
upd_hll_add(upd_hll_t *h, uint64_t hash)
{
    if (h->dense) {
        dense_add(h->regs, hash);
        return 0;
    }
    if (hash == 0)
        hash = 1; /* 0 marks an empty slot */
    int err;
    if ((uint64_t)(h->n + 1) * 2 > h->cap && (err = set_grow(h)) != 0)
        return err;
    if (!set_insert(h->set, h->cap, hash))
        return 0;
    if (++h->n > UPD_HLL_SPARSE_MAX)
        return to_dense(h);
    return 0;
}

int
upd_hll_merge(upd_hll_t *dst, const upd_hll_t *src)
{
    int err;
    if (src->dense) {
        if (!dst->dense && (err = to_dense(dst)) != 0)
            return err;
        for (uint32_t i = 0; i != UPD_HLL_REGISTERS; ++i)
            if (dst->regs[i] < src->regs[i])
                dst->regs[i] = src->regs[i];
        return 0;
    }
    for (uint32_t i = 0; i != src->cap; ++i)
        if (src->set[i] != 0 && (err = upd_hll_add(dst, src->set[i])) != 0)
            return err;
    return 0;
}

/* Ertl (2017), algorithm 6: sigma and tau of the improved raw estimator */
static double
sigma(double x)
{
    if (x == 1)
        return INFINITY;
    double y = 1, z = x, zp;
    do {
        x *= x;
        zp = z;
        z += x * y;
        y += y;
    } while (z != zp);
    return z;
}

static double
tau(double x)
{
    if (x == 0 || x == 1)
        return 0;
    double y = 1, z = 1 - x, zp;
    do {
        x = sqrt(x);
        zp = z;
        y *= 0.5;
        z -= (1 - x) * (1 - x) * y;
    } while (z != zp);
    return z / 3;
}

uint64_t
upd_hll_count(const upd_hll_t *h)
{
    if (!h->dense)
        return h->n;
    uint32_t c[Q + 2] = {0};
    for (uint32_t i = 0; i != UPD_HLL_REGISTERS; ++i)
        ++c[h->regs[i]];
    const double m = UPD_HLL_REGISTERS;
    double z = m * tau((m - c[Q + 1]) / m);
    for (int k = Q; k >= 1; --k)
        z = 0.5 * (z + c[k]);
    z += m * sigma(c[0] / m);
    if (isinf(z))
        return 0;
    return (uint64_t)llround(m * m / (2 * log(2)) / z);
}



static int
cmp_le64(const void *a, const void *b)
{
    uint64_t x = upd_get_le64(a), y = upd_get_le64(b);
    return x < y ? -1 : x > y;
}

size_t
upd_hll_encode(const upd_hll_t *h, uint8_t *out)
{
    out[0] = 'U', out[1] = 'H', out[2] = FORMAT, out[3] = h->dense, out[4] = UPD_HLL_P, out[5] = 0;
    if (h->dense) {
        out[6] = out[7] = 0;
        memcpy(out + UPD_HLL_HEADER, h->regs, UPD_HLL_REGISTERS);
        return UPD_HLL_HEADER + UPD_HLL_REGISTERS;
    }
    out[6] = (uint8_t)h->n, out[7] = (uint8_t)(h->n >> 8);
    uint8_t *p = out + UPD_HLL_HEADER;
    for (uint32_t i = 0; i != h->cap; ++i)
        if (h->set[i] != 0)
            upd_put_le64(p, h->set[i]), p += 8;
    /* ascending, so that two sketches of the same clients encode alike */
    qsort(out + UPD_HLL_HEADER, h->n, 8, cmp_le64);
    return UPD_HLL_HEADER + (size_t)h->n * 8;
}

int
upd_hll_decode(upd_hll_t *h, const uint8_t *data, size_t len)
{
    if (len < UPD_HLL_HEADER || data[0] != 'U' || data[1] != 'H' || data[2] != FORMAT || data[4] != UPD_HLL_P || data[3] > 1)
        return UPD_EINVAL;
    upd_hll_init(h);
    if (data[3] == 1) {
        if (len != UPD_HLL_HEADER + UPD_HLL_REGISTERS)
            return UPD_EINVAL;
        for (uint32_t i = 0; i != UPD_HLL_REGISTERS; ++i)
            if (data[UPD_HLL_HEADER + i] > Q + 1)
                return UPD_EINVAL;
        if ((h->regs = malloc(UPD_HLL_REGISTERS)) == NULL)
            return UPD_ENOMEM;
        memcpy(h->regs, data + UPD_HLL_HEADER, UPD_HLL_REGISTERS);
        h->dense = true;
        return 0;
    }
    size_t n = (size_t)data[6] | (size_t)data[7] << 8;
    if (n > UPD_HLL_SPARSE_MAX || len != UPD_HLL_HEADER + n * 8)
        return UPD_EINVAL;
    for (size_t i = 0; i != n; ++i) {
        int err = upd_hll_add(h, upd_get_le64(data + UPD_HLL_HEADER + 8 * i));
        if (err != 0) {
            upd_hll_dispose(h);
            return err;
        }
    }
    return 0;
}
