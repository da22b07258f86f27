#ifndef UPD_VERSION_H
#define UPD_VERSION_H

#include <stddef.h>
#include <stdint.h>

/*
 * SemVer 2.0.0 (https://semver.org): MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], no leading zeros in
 * numeric identifiers, no leading "v". Precedence per SemVer §11; build metadata is ignored.
 */

#define UPD_VERSION_MAX 64 /* longest version string accepted, in bytes */

typedef struct st_upd_version_t {
    uint64_t major, minor, patch;
    const char *pre; /* points into the parsed string; NULL when there is no pre-release part */
    size_t pre_len;
} upd_version_t;

/**
 * Parses a version string of exactly len bytes.
 * @param[out] out  its pre field points into s: valid while s is
 * @return 0, or UPD_EINVAL (bad grammar, numeric overflow, longer than UPD_VERSION_MAX)
 */
int upd_version_parse(const char *s, size_t len, upd_version_t *out);

/** Compares by SemVer precedence: <0, 0 or >0. */
int upd_version_cmp(const upd_version_t *a, const upd_version_t *b);

/**
 * Parses and compares two version strings.
 * @return <0, 0, >0; a string that does not parse sorts before every valid one (two invalid ones compare equal)
 */
int upd_version_cmp_str(const char *a, size_t alen, const char *b, size_t blen);

#endif
