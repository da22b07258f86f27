/*
 * Fuzzes SemVer parsing and precedence (domain/version.h).
 *
 * Input: up to three version strings separated by newlines.
 * Invariants: a parsed version prints back as the text before its build metadata (numbers without leading zeros, the
 * pre-release as written), and build metadata never changes precedence; upd_version_cmp is reflexive, antisymmetric and
 * transitive over the parsed strings, and upd_version_cmp_str agrees with it (an unparsable string sorts first).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include "base/err.h"
#include "domain/version.h"
#include "tests/fuzz/fuzz.h"

#define MAX_STRINGS 3

typedef struct {
    char *s;
    size_t len;
    bool ok;
    upd_version_t v;
} item_t;

static void
check_parsed(const item_t *it)
{
    const upd_version_t *v = &it->v;
    const char *plus = memchr(it->s, '+', it->len);
    size_t core_len = plus != NULL ? (size_t)(plus - it->s) : it->len;

    FUZZ_CHECK(it->len >= 5 && it->len <= UPD_VERSION_MAX);
    if (v->pre != NULL) {
        FUZZ_CHECK(v->pre > it->s && v->pre[-1] == '-');
        FUZZ_CHECK(v->pre_len >= 1 && v->pre + v->pre_len == it->s + core_len);
    }
    /* canonical: MAJOR.MINOR.PATCH[-PRE] prints back as the text before "+" */
    char again[UPD_VERSION_MAX + 80];
    int n = snprintf(again, sizeof(again), "%" PRIu64 ".%" PRIu64 ".%" PRIu64 "%s%.*s", v->major, v->minor, v->patch,
                     v->pre != NULL ? "-" : "", (int)v->pre_len, v->pre != NULL ? v->pre : "");
    FUZZ_CHECK(n > 0 && (size_t)n == core_len && memcmp(again, it->s, core_len) == 0);
    FUZZ_CHECK(upd_version_cmp(v, v) == 0);

    /* build metadata is ignored: the core alone is the same version */
    if (plus != NULL) {
        upd_version_t core;
        char *c = fuzz_dup(it->s, core_len);
        FUZZ_CHECK(upd_version_parse(c, core_len, &core) == 0);
        FUZZ_CHECK(upd_version_cmp(&core, v) == 0 && upd_version_cmp(v, &core) == 0);
        free(c);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    item_t items[MAX_STRINGS];
    size_t n = 0;
    const uint8_t *p = data, *end = data + size;

    while (n < MAX_STRINGS) {
        const uint8_t *nl = n + 1 < MAX_STRINGS ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        const uint8_t *e = nl != NULL ? nl : end;
        items[n].len = (size_t)(e - p);
        items[n].s = fuzz_dup(p, items[n].len);
        int ret = upd_version_parse(items[n].s, items[n].len, &items[n].v);
        FUZZ_CHECK(ret == 0 || ret == UPD_EINVAL);
        items[n].ok = ret == 0;
        if (items[n].ok)
            check_parsed(&items[n]);
        ++n;
        if (nl == NULL)
            break;
        p = nl + 1;
    }

    int c[MAX_STRINGS][MAX_STRINGS];
    for (size_t i = 0; i < n; ++i) {
        for (size_t j = 0; j < n; ++j) {
            int s = fuzz_sign(upd_version_cmp_str(items[i].s, items[i].len, items[j].s, items[j].len));
            if (items[i].ok && items[j].ok) {
                c[i][j] = fuzz_sign(upd_version_cmp(&items[i].v, &items[j].v));
                FUZZ_CHECK(s == c[i][j]);
            } else {
                c[i][j] = (int)items[i].ok - (int)items[j].ok; /* an unparsable string sorts first */
                FUZZ_CHECK(s == c[i][j]);
            }
        }
    }
    for (size_t i = 0; i < n; ++i) {
        FUZZ_CHECK(c[i][i] == 0);
        for (size_t j = 0; j < n; ++j) {
            FUZZ_CHECK(c[i][j] == -c[j][i]);
            for (size_t k = 0; k < n; ++k) {
                if (c[i][j] <= 0 && c[j][k] <= 0)
                    FUZZ_CHECK(c[i][k] <= 0);
                if (c[i][j] == 0)
                    FUZZ_CHECK(c[i][k] == c[j][k]);
            }
        }
    }

    for (size_t i = 0; i < n; ++i)
        free(items[i].s);
    return 0;
}
