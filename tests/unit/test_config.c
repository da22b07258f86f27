#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "domain/cidr.h"
#include "server/conf_common.h"
#include "server/config.h"

static const upd_conf_decl_t decls[] = {
    UPD_CONF_COMMON_DECLS("127.0.0.1:8080", "1024"),
    {"trusted_proxies", UPD_CONF_STRLIST, offsetof(upd_conf_t, trusted_proxies), 0, 0, "", "--trusted-proxy"},
    UPD_CONF_END,
};

static char *
write_temp(const char *text)
{
    char *path = strdup("/tmp/updraft-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void
test_defaults_fill_every_field(void **state)
{
    upd_conf_t c = {0};
    upd_conf_defaults(decls, &c);
    assert_int_equal(c.listen.size, 1);
    assert_string_equal(c.listen.items[0], "127.0.0.1:8080");
    assert_string_equal(c.data_dir, "./var");
    assert_int_equal(c.max_header_bytes, 65536);
    assert_int_equal(c.max_body_bytes, 1024);
    upd_conf_dispose(decls, &c);
}

static void
test_file_values_override_defaults_and_nest(void **state)
{
    char *path = write_temp("listen: [\"127.0.0.1:1\", \"https://[::1]:2\"]\ndata_dir: /srv/u\nlimits:\n  max_header_bytes: 2048\n");
    upd_conf_t c = {0};
    char err[256];
    upd_conf_defaults(decls, &c);
    assert_int_equal(upd_conf_load_file(decls, &c, path, err, sizeof(err)), 0);
    assert_int_equal(c.listen.size, 2);
    assert_string_equal(c.listen.items[1], "https://[::1]:2");
    assert_string_equal(c.data_dir, "/srv/u");
    assert_int_equal(c.max_header_bytes, 2048);
    upd_conf_dispose(decls, &c);
    unlink(path);
    free(path);
}

static void
test_errors_name_file_line_and_key(void **state)
{
    char *path = write_temp("data_dir: x\nlimits:\n  max_header_bytes: 12\n");
    upd_conf_t c = {0};
    char err[256], want[512];
    upd_conf_defaults(decls, &c);
    assert_int_equal(upd_conf_load_file(decls, &c, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:3: limits.max_header_bytes: 12 is outside 1024..1048576", path);
    assert_string_equal(err, want);
    unlink(path);
    free(path);

    path = write_temp("data_dir: x\nbogus: 1\n");
    assert_int_equal(upd_conf_load_file(decls, &c, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: bogus: unknown setting", path);
    assert_string_equal(err, want);
    unlink(path);
    free(path);

    path = write_temp("limits:\n  idle_timeout_ms: soon\n");
    assert_int_equal(upd_conf_load_file(decls, &c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ":2: limits.idle_timeout_ms: not a non-negative integer"));
    unlink(path);
    free(path);
    upd_conf_dispose(decls, &c);
}

static void
test_flags_override_and_repeat_lists(void **state)
{
    upd_conf_t c = {0};
    char err[256];
    uint64_t reset = 0;
    upd_conf_defaults(decls, &c);
    assert_int_equal(upd_conf_apply_flag(decls, &c, "--listen", "127.0.0.1:0", &reset, err, sizeof(err)), 1);
    assert_int_equal(upd_conf_apply_flag(decls, &c, "--listen", "127.0.0.1:1", &reset, err, sizeof(err)), 1);
    assert_int_equal(upd_conf_apply_flag(decls, &c, "--trusted-proxy", "10.0.0.0/8", &reset, err, sizeof(err)), 1);
    assert_int_equal(c.listen.size, 2); /* the default was replaced, then appended to */
    assert_string_equal(c.listen.items[0], "127.0.0.1:0");
    assert_int_equal(c.trusted_proxies.size, 1);
    assert_int_equal(upd_conf_apply_flag(decls, &c, "--nope", "x", &reset, err, sizeof(err)), 0);
    upd_conf_dispose(decls, &c);
}

static void
test_cidr_matching_covers_v4_v6_and_mapped(void **state)
{
    upd_cidr_t list[3];
    uint8_t a[16];
    assert_int_equal(upd_cidr_parse("10.0.0.0/8", &list[0]), 0);
    assert_int_equal(upd_cidr_parse("2001:db8::/32", &list[1]), 0);
    assert_int_equal(upd_cidr_parse("192.0.2.7", &list[2]), 0);
    assert_int_equal(upd_cidr_addr_parse("10.200.1.1", 10, a), 0);
    assert_true(upd_cidr_contains(list, 3, a));
    assert_int_equal(upd_cidr_addr_parse("11.0.0.1", 8, a), 0);
    assert_false(upd_cidr_contains(list, 3, a));
    assert_int_equal(upd_cidr_addr_parse("2001:db8:ffff::1", 16, a), 0);
    assert_true(upd_cidr_contains(list, 3, a));
    assert_int_equal(upd_cidr_addr_parse("::ffff:192.0.2.7", 16, a), 0);
    assert_true(upd_cidr_contains(list, 3, a));
    assert_int_equal(upd_cidr_addr_parse("192.0.2.8", 9, a), 0);
    assert_false(upd_cidr_contains(list, 3, a));
    upd_cidr_t bad;
    assert_int_not_equal(upd_cidr_parse("10.0.0.0/33", &bad), 0);
    assert_int_not_equal(upd_cidr_parse("10.0.0.0/", &bad), 0);
    assert_int_not_equal(upd_cidr_parse("example.com", &bad), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_fill_every_field),
        cmocka_unit_test(test_file_values_override_defaults_and_nest),
        cmocka_unit_test(test_errors_name_file_line_and_key),
        cmocka_unit_test(test_flags_override_and_repeat_lists),
        cmocka_unit_test(test_cidr_matching_covers_v4_v6_and_mapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
