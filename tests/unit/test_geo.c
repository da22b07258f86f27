#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/err.h"
#include "domain/rollout.h"
#include "storage/geo.h"

/* Databases written at test time by tests/support/make-test-mmdb.pl (MaxMind::DB::Writer), in a fresh temp dir. */
static char dir[64];
static char db_path[128], db_noalias_path[128], garbage_path[128], empty_path[128], missing_path[128];
static upd_geo_t *geo, *geo_noalias;

static int
write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (fp == NULL)
        return -1;
    size_t n = fwrite(data, 1, len, fp);
    return fclose(fp) == 0 && n == len ? 0 : -1;
}

static int
run_writer(const char *src, const char *out, const char *flag)
{
    char cmd[1024];
    /* single-quoted for the shell: refuse paths that would break out of the quotes */
    if (strchr(src, '\'') != NULL || strchr(out, '\'') != NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), "perl '%s/tests/support/make-test-mmdb.pl' '%s' %s", src, out, flag);
    return system(cmd) == 0 ? 0 : -1;
}

static int
setup(void **state)
{
    const char *src = getenv("UPDRAFT_SOURCE_DIR");
    static const char garbage[] = "this is not a MaxMind database, just some bytes that look nothing like one\n";

    if (src == NULL)
        src = ".";
    strcpy(dir, "/tmp/updraft-test-geo-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(db_path, sizeof(db_path), "%s/country.mmdb", dir);
    snprintf(db_noalias_path, sizeof(db_noalias_path), "%s/country-noalias.mmdb", dir);
    snprintf(garbage_path, sizeof(garbage_path), "%s/garbage.mmdb", dir);
    snprintf(empty_path, sizeof(empty_path), "%s/empty.mmdb", dir);
    snprintf(missing_path, sizeof(missing_path), "%s/missing.mmdb", dir);
    if (run_writer(src, db_path, "") != 0 || run_writer(src, db_noalias_path, "--no-ipv4-alias") != 0) {
        fprintf(stderr, "make-test-mmdb.pl failed (UPDRAFT_SOURCE_DIR=%s)\n", src);
        return -1;
    }
    if (write_file(garbage_path, garbage, sizeof(garbage) - 1) != 0 || write_file(empty_path, "", 0) != 0)
        return -1;
    if (upd_geo_open(db_path, &geo) != 0 || upd_geo_open(db_noalias_path, &geo_noalias) != 0)
        return -1;
    return 0;
}

static int
teardown(void **state)
{
    upd_geo_close(geo);
    upd_geo_close(geo_noalias);
    unlink(db_path);
    unlink(db_noalias_path);
    unlink(garbage_path);
    unlink(empty_path);
    rmdir(dir);
    return 0;
}

/* Looks an address string up; returns the error and, on success, the country in out. */
static int
lookup(upd_geo_t *g, const char *ip, char out[3])
{
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(443)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};

    if (inet_pton(AF_INET, ip, &v4.sin_addr) == 1)
        return upd_geo_country(g, (struct sockaddr *)&v4, out);
    if (inet_pton(AF_INET6, ip, &v6.sin6_addr) == 1)
        return upd_geo_country(g, (struct sockaddr *)&v6, out);
    fail_msg("bad address literal %s", ip);
    return 0;
}

static void
assert_country(upd_geo_t *g, const char *ip, const char *expected)
{
    char country[3] = "??";
    int ret = lookup(g, ip, country);
    if (ret != 0)
        fail_msg("%s: %s, expected %s", ip, upd_strerror(ret), expected);
    assert_string_equal(country, expected);
}

static void
assert_no_country(upd_geo_t *g, const char *ip)
{
    char country[3] = "??";
    int ret = lookup(g, ip, country);
    if (ret != UPD_ENOTFOUND)
        fail_msg("%s: returned %d (country %s), expected UPD_ENOTFOUND", ip, ret, country);
}

static void
test_ipv4_addresses_resolve_to_their_country(void **state)
{
    assert_country(geo, "81.2.69.160", "GB");
    assert_country(geo, "81.2.69.0", "GB");
    assert_country(geo, "81.2.69.255", "GB");
    assert_country(geo, "203.0.113.7", "FR");
    assert_country(geo, "198.51.100.1", "DE");
}

static void
test_ipv6_addresses_resolve_to_their_country(void **state)
{
    assert_country(geo, "2001:db8:1::5", "US");
    assert_country(geo, "2001:db8:1:ffff:ffff:ffff:ffff:ffff", "US");
}

static void
test_ipv4_mapped_ipv6_resolves_as_ipv4(void **state)
{
    assert_country(geo, "::ffff:81.2.69.160", "GB");
    assert_country(geo, "::ffff:198.51.100.1", "DE");
}

static void
test_ipv4_mapped_ipv6_resolves_without_the_databases_alias(void **state)
{
    /* this database has no ::ffff:0:0/96 alias: only our own unmapping finds the IPv4 data */
    assert_country(geo_noalias, "81.2.69.160", "GB");
    assert_country(geo_noalias, "::ffff:81.2.69.160", "GB");
    assert_country(geo_noalias, "::ffff:203.0.113.7", "FR");
}

static void
test_registered_country_is_the_fallback(void **state)
{
    assert_country(geo, "192.0.2.1", "SE");
}

static void
test_unknown_addresses_have_no_country(void **state)
{
    assert_no_country(geo, "8.8.8.8");
    assert_no_country(geo, "81.2.70.1");
    assert_no_country(geo, "2001:db8:3::1");
    assert_no_country(geo, "::1");
    assert_no_country(geo, "::ffff:8.8.8.8");
}

static void
test_known_network_without_country_has_no_country(void **state)
{
    assert_no_country(geo, "2001:db8:2::1");
}

static void
test_malformed_country_code_in_the_database_is_not_reported(void **state)
{
    assert_no_country(geo, "100.64.0.1");
}

static void
test_non_ip_address_family_has_no_country(void **state)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char country[3];
    strcpy(un.sun_path, "/tmp/x.sock");
    assert_int_equal(upd_geo_country(geo, (struct sockaddr *)&un, country), UPD_ENOTFOUND);
}

static void
test_missing_file_is_an_io_error(void **state)
{
    static char sentinel;
    upd_geo_t *g = (upd_geo_t *)&sentinel; /* *out must be left untouched on error */
    assert_int_equal(upd_geo_open(missing_path, &g), UPD_EIO);
    assert_ptr_equal(g, &sentinel);
}

static void
test_garbage_file_is_invalid(void **state)
{
    upd_geo_t *g = NULL;
    assert_int_equal(upd_geo_open(garbage_path, &g), UPD_EINVAL);
    assert_null(g);
}

static void
test_empty_file_is_an_io_error(void **state)
{
    upd_geo_t *g = NULL;
    /* libmaxminddb cannot map 0 bytes and says so with MMDB_IO_ERROR, before looking for metadata */
    assert_int_equal(upd_geo_open(empty_path, &g), UPD_EIO);
    assert_null(g);
}

static void
test_directory_is_an_io_error(void **state)
{
    upd_geo_t *g = NULL;
    assert_int_equal(upd_geo_open(dir, &g), UPD_EIO);
    assert_null(g);
}

static void
test_close_accepts_null(void **state)
{
    upd_geo_close(NULL);
}

static void
test_geo_lookup_feeds_the_rollout_country_allow_list(void **state)
{
    static const char countries[] = "DEFR";
    upd_rollout_t r = {.seed = 1, .percent_bp = UPD_ROLLOUT_BASIS_POINTS, .countries = countries, .ncountries = 2};
    static const struct {
        const char *ip;
        bool allowed;
    } cases[] = {
        {"198.51.100.1", true},        /* DE */
        {"203.0.113.7", true},         /* FR */
        {"::ffff:198.51.100.9", true}, /* DE through a dual-stack listener */
        {"81.2.69.160", false},        /* GB */
        {"2001:db8:1::5", false},      /* US */
        {"8.8.8.8", false},            /* unknown: refused by a non-empty list */
    };

    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        char buf[3];
        const char *country = lookup(geo, cases[i].ip, buf) == 0 ? buf : NULL;
        if (upd_rollout_geo_allowed(&r, country) != cases[i].allowed)
            fail_msg("%s (%s) should be %s", cases[i].ip, country ? country : "unknown", cases[i].allowed ? "allowed" : "denied");
        upd_decision_t d = upd_rollout_decide(&r, "client-a", 8, false, country);
        assert_int_equal(d, cases[i].allowed ? UPD_DECISION_IN : UPD_DECISION_OUT_GEO);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_addresses_resolve_to_their_country),
        cmocka_unit_test(test_ipv6_addresses_resolve_to_their_country),
        cmocka_unit_test(test_ipv4_mapped_ipv6_resolves_as_ipv4),
        cmocka_unit_test(test_ipv4_mapped_ipv6_resolves_without_the_databases_alias),
        cmocka_unit_test(test_registered_country_is_the_fallback),
        cmocka_unit_test(test_unknown_addresses_have_no_country),
        cmocka_unit_test(test_known_network_without_country_has_no_country),
        cmocka_unit_test(test_malformed_country_code_in_the_database_is_not_reported),
        cmocka_unit_test(test_non_ip_address_family_has_no_country),
        cmocka_unit_test(test_missing_file_is_an_io_error),
        cmocka_unit_test(test_garbage_file_is_invalid),
        cmocka_unit_test(test_empty_file_is_an_io_error),
        cmocka_unit_test(test_directory_is_an_io_error),
        cmocka_unit_test(test_close_accepts_null),
        cmocka_unit_test(test_geo_lookup_feeds_the_rollout_country_allow_list),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
