/*
 * In-process micro-benchmark for bench/run: the cost of the pure functions on the update check's
 * and the artifact's paths, in ns per call, without any server around them.
 *
 *   upd_rollout_decide  over N pre-generated client ids of 36 bytes (UUIDv4 text), 25% rollout,
 *                       no country list (the update check's case)
 *   upd_route_parse     "/update/acme/latest.yml?client_id=ID" over 1M pre-generated targets
 *   upd_range_parse     one header of 40 ascending ranges on a 100 MB file
 *
 * Built by bench/run (gcc -O2 -I. against domain/rollout.c, domain/range.c, domain/route.c and
 * what they need); prints one JSON line. Each figure is the median of PASSES timed passes.
 *
 *   decision_bench [N_IDS [SEED]]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "domain/range.h"
#include "domain/rollout.h"
#include "domain/route.h"

#define ID_LEN 36
#define PASSES 5
#define ROUTE_TARGETS 1000000
#define RANGE_PARTS 40
#define RANGE_ITERS 200000
#define FILE_SIZE (100ull * 1024 * 1024)

static uint64_t rng_state;

static uint64_t
rng(void)
{
    /* splitmix64: enough for ids, and the same ids for the same seed on every machine */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* a UUIDv4 as text, 36 bytes, no NUL */
static void
make_id(char *out)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = rng(), b = rng();
    int n = 0;
    for (int i = 0; i < ID_LEN; ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            out[i] = '-';
        } else if (i == 14) {
            out[i] = '4';
        } else if (i == 19) {
            out[i] = hex[8 + (a & 3)];
            a >>= 2;
        } else {
            uint64_t *src = n < 16 ? &a : &b;
            out[i] = hex[*src & 15];
            *src >>= 4;
            ++n;
        }
    }
}

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
median_of(double *v, int n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return v[n / 2];
}

int
main(int argc, char **argv)
{
    size_t nids = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    if (nids == 0) {
        fprintf(stderr, "usage: decision_bench [N_IDS [SEED]]\n");
        return 2;
    }

    /* ids, packed at a 36-byte stride as they would sit in a request buffer */
    char *ids = malloc(nids * ID_LEN);
    if (ids == NULL) {
        perror("malloc");
        return 1;
    }
    for (size_t i = 0; i != nids; ++i)
        make_id(ids + i * ID_LEN);

    upd_rollout_t r = {.seed = 0x5eed5eed5eedull, .percent_bp = 2500};
    double decide_ns[PASSES];
    size_t in = 0;
    for (int p = 0; p != PASSES; ++p) {
        in = 0;
        double t0 = now_ns();
        for (size_t i = 0; i != nids; ++i)
            in += upd_decision_is_eligible(upd_rollout_decide(&r, ids + i * ID_LEN, ID_LEN, false, NULL));
        decide_ns[p] = (now_ns() - t0) / (double)nids;
    }

    /* feed URLs as electron-updater would send them, with the id in the query (h2load's form) */
    static const char prefix[] = "/update/acme/latest.yml?client_id=";
    const size_t tlen = sizeof(prefix) - 1 + ID_LEN;
    size_t ntargets = nids < ROUTE_TARGETS ? nids : ROUTE_TARGETS;
    char *targets = malloc(ntargets * tlen);
    if (targets == NULL) {
        perror("malloc");
        return 1;
    }
    for (size_t i = 0; i != ntargets; ++i) {
        memcpy(targets + i * tlen, prefix, sizeof(prefix) - 1);
        memcpy(targets + i * tlen + sizeof(prefix) - 1, ids + i * ID_LEN, ID_LEN);
    }
    upd_route_t route;
    const char *err;
    if (upd_route_parse(targets, tlen, &route, &err) != 0 || route.kind != UPD_ROUTE_FEED ||
        memcmp(route.client, ids, ID_LEN) != 0) {
        fprintf(stderr, "decision_bench: upd_route_parse did not see a feed request with the client id\n");
        return 1;
    }
    double route_ns[PASSES];
    size_t route_ok = 0;
    for (int p = 0; p != PASSES; ++p) {
        route_ok = 0;
        double t0 = now_ns();
        for (size_t i = 0; i != ntargets; ++i)
            route_ok += upd_route_parse(targets + i * tlen, tlen, &route, &err) == 0;
        route_ns[p] = (now_ns() - t0) / (double)ntargets;
    }

    /* 40 ascending 64 KiB ranges spread over the file, like a differential download's header */
    char header[RANGE_PARTS * 48];
    size_t hl = (size_t)snprintf(header, sizeof(header), "bytes=");
    for (int i = 0; i != RANGE_PARTS; ++i) {
        uint64_t start = (uint64_t)i * (FILE_SIZE / RANGE_PARTS) + (rng() % 4096);
        hl += (size_t)snprintf(header + hl, sizeof(header) - hl, "%s%" PRIu64 "-%" PRIu64, i ? "," : "", start,
                               start + 65535);
    }
    static upd_range_t parts[UPD_RANGE_MAX_PARTS];
    size_t nparts = 0;
    if (upd_range_parse(header, hl, FILE_SIZE, parts, UPD_RANGE_MAX_PARTS, &nparts) != UPD_RANGE_PARTIAL ||
        nparts != RANGE_PARTS) {
        fprintf(stderr, "decision_bench: upd_range_parse did not accept the 40-range header\n");
        return 1;
    }
    double range_ns[PASSES];
    size_t range_parts = 0;
    for (int p = 0; p != PASSES; ++p) {
        range_parts = 0;
        double t0 = now_ns();
        for (size_t i = 0; i != RANGE_ITERS; ++i) {
            size_t n = 0;
            upd_range_parse(header, hl, FILE_SIZE, parts, UPD_RANGE_MAX_PARTS, &n);
            range_parts += n;
        }
        range_ns[p] = (now_ns() - t0) / RANGE_ITERS;
    }

    printf("{\"ids\":%zu,\"id_bytes\":%d,\"passes\":%d,\"rollout_decide_ns\":%.3f,\"eligible_share\":%.4f,"
           "\"route_targets\":%zu,\"route_target_bytes\":%zu,\"route_parse_ns\":%.2f,\"route_ok\":%zu,"
           "\"range_header_bytes\":%zu,\"range_parts\":%d,\"range_parse_ns\":%.1f,\"range_parts_seen\":%zu}\n",
           nids, ID_LEN, PASSES, median_of(decide_ns, PASSES), (double)in / (double)nids, ntargets, tlen,
           median_of(route_ns, PASSES), route_ok, hl, RANGE_PARTS, median_of(range_ns, PASSES), range_parts);
    free(targets);
    free(ids);
    return 0;
}
