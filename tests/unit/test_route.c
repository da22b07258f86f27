#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "base/err.h"
#include "domain/route.h"

static int
parse(const char *target, upd_route_t *r)
{
    const char *err;
    return upd_route_parse(target, strlen(target), r, &err);
}

static void
test_electron_channel_files_select_platform_and_arch(void **state)
{
    upd_route_t r;
    assert_int_equal(parse("/update/acme/latest.yml?noCache=1abc", &r), 0);
    assert_int_equal(r.kind, UPD_ROUTE_FEED);
    assert_int_equal(r.fmt, UPD_FEED_ELECTRON);
    assert_int_equal(r.platform, UPD_PLATFORM_WINDOWS);
    assert_string_equal(r.app, "acme");
    assert_string_equal(r.channel, "latest");
    assert_int_equal(parse("/update/acme/beta-mac.yml", &r), 0);
    assert_int_equal(r.platform, UPD_PLATFORM_MAC);
    assert_string_equal(r.channel, "beta");
    assert_int_equal(parse("/update/acme/latest-linux.yml", &r), 0);
    assert_int_equal(r.platform, UPD_PLATFORM_LINUX);
    assert_int_equal(r.arch, UPD_ARCH_X64);
    assert_int_equal(parse("/update/acme/latest-linux-arm64.yml", &r), 0);
    assert_int_equal(r.platform, UPD_PLATFORM_LINUX);
    assert_int_equal(r.arch, UPD_ARCH_ARM64);
    assert_string_equal(r.channel, "latest");
    /* a channel name with dashes that is not a platform suffix stays whole */
    assert_int_equal(parse("/update/acme/early-access.yml", &r), 0);
    assert_string_equal(r.channel, "early-access");
    assert_int_equal(r.platform, UPD_PLATFORM_WINDOWS);
}

static void
test_squirrel_mac_and_tauri_routes_carry_the_current_version(void **state)
{
    upd_route_t r;
    assert_int_equal(parse("/update/acme/darwin/arm64/1.2.3?client_id=abc.1&channel=beta", &r), 0);
    assert_int_equal(r.fmt, UPD_FEED_SQUIRREL_MAC);
    assert_int_equal(r.arch, UPD_ARCH_ARM64);
    assert_string_equal(r.current, "1.2.3");
    assert_string_equal(r.client, "abc.1");
    assert_string_equal(r.channel, "beta");
    /* Tauri percent-encodes the + of build metadata */
    assert_int_equal(parse("/update/acme/tauri/darwin/aarch64/1.2.3%2Bbuild.5", &r), 0);
    assert_int_equal(r.fmt, UPD_FEED_TAURI);
    assert_int_equal(r.platform, UPD_PLATFORM_MAC);
    assert_int_equal(r.arch, UPD_ARCH_ARM64);
    assert_string_equal(r.current, "1.2.3+build.5");
    assert_int_equal(parse("/update/acme/tauri/linux/x86_64/0.1.0", &r), 0);
    assert_int_equal(r.platform, UPD_PLATFORM_LINUX);
}

static void
test_squirrel_windows_paths_carry_channel_and_client(void **state)
{
    upd_route_t r;
    assert_int_equal(parse("/update/acme/win32/x64/RELEASES?id=Acme&localVersion=1.0.0&arch=amd64", &r), 0);
    assert_int_equal(r.fmt, UPD_FEED_SQUIRREL_WIN);
    assert_string_equal(r.channel, "latest");
    assert_string_equal(r.client, "");
    assert_int_equal(parse("/update/acme/win32/x64/beta/RELEASES", &r), 0);
    assert_string_equal(r.channel, "beta");
    assert_int_equal(parse("/update/acme/win32/x64/c/client-7/RELEASES", &r), 0);
    assert_string_equal(r.channel, "latest");
    assert_string_equal(r.client, "client-7");
    assert_int_equal(parse("/update/acme/win32/ia32/beta/c/client-7/RELEASES", &r), 0);
    assert_string_equal(r.channel, "beta");
    assert_string_equal(r.client, "client-7");
    assert_int_equal(r.arch, UPD_ARCH_IA32);
    assert_int_equal(parse("/update/acme/win32/x64/beta/c/client-7/Acme-1.2.0-full.nupkg", &r), 0);
    assert_int_equal(r.kind, UPD_ROUTE_NUPKG);
    assert_string_equal(r.file, "Acme-1.2.0-full.nupkg");
    assert_int_equal(parse("/update/acme/win32/x64/beta/x/client-7/RELEASES", &r), UPD_ENOTFOUND);
}

static void
test_artifacts_and_downloads(void **state)
{
    upd_route_t r;
    assert_int_equal(parse("/artifacts/acme/1.3.0-beta.2/Acme-1.3.0-beta.2.dmg", &r), 0);
    assert_int_equal(r.kind, UPD_ROUTE_ARTIFACT);
    assert_string_equal(r.version, "1.3.0-beta.2");
    assert_string_equal(r.file, "Acme-1.3.0-beta.2.dmg");
    assert_int_equal(parse("/download/acme/linux?format=deb&channel=beta", &r), 0);
    assert_int_equal(r.kind, UPD_ROUTE_DOWNLOAD);
    assert_int_equal(r.arch, -1);
    assert_string_equal(r.format, "deb");
    assert_int_equal(parse("/download/acme/mac/arm64", &r), 0);
    assert_int_equal(r.arch, UPD_ARCH_ARM64);
    assert_int_equal(parse("/healthz", &r), 0);
    assert_int_equal(r.kind, UPD_ROUTE_HEALTHZ);
    assert_int_equal(parse("/metrics", &r), 0);
}

static void
test_traversal_and_encoded_separators_never_pass(void **state)
{
    upd_route_t r;
    assert_int_equal(parse("/artifacts/acme/1.0.0/..", &r), UPD_EINVAL);
    assert_int_equal(parse("/artifacts/acme/1.0.0/.", &r), UPD_EINVAL);
    assert_int_equal(parse("/artifacts/acme/1.0.0/%2e%2e", &r), UPD_EINVAL);
    assert_int_equal(parse("/artifacts/acme/1.0.0/..%2F..%2Fetc%2Fpasswd", &r), UPD_EINVAL);
    assert_int_equal(parse("/artifacts/acme/1.0.0/a%00b", &r), UPD_EINVAL);
    assert_int_equal(parse("/artifacts/acme/1.0.0/a%2", &r), UPD_EINVAL);
    assert_int_equal(parse("/artifacts/acme/../1.0.0/x", &r), UPD_ENOTFOUND);
    assert_int_equal(parse("/artifacts/acme/1.0.0/../../x", &r), UPD_ENOTFOUND);
    assert_int_equal(parse("/artifacts/acme//x", &r), UPD_ENOTFOUND);
}

static void
test_malformed_parts_are_400_with_a_reason(void **state)
{
    upd_route_t r;
    const char *err;
    assert_int_equal(upd_route_parse("/update/ACME/latest.yml", 23, &r, &err), UPD_EINVAL);
    assert_non_null(strstr(err, "app id"));
    const char *t = "/update/acme/latest.yml?client_id=bad%20id";
    assert_int_equal(upd_route_parse(t, strlen(t), &r, &err), UPD_EINVAL);
    assert_non_null(strstr(err, "client_id"));
    t = "/update/acme/darwin/x64/1.02.3";
    assert_int_equal(upd_route_parse(t, strlen(t), &r, &err), UPD_EINVAL);
    assert_non_null(strstr(err, "version"));
    t = "/update/acme/darwin/sparc/1.2.3";
    assert_int_equal(upd_route_parse(t, strlen(t), &r, &err), UPD_EINVAL);
    assert_non_null(strstr(err, "arch"));
    t = "/update/acme/latest.yml?channel=Beta";
    assert_int_equal(upd_route_parse(t, strlen(t), &r, &err), UPD_EINVAL);
    assert_int_equal(parse("/nothing/here", &r), UPD_ENOTFOUND);
    assert_int_equal(parse("", &r), UPD_ENOTFOUND);
}

static void
test_labels_follow_the_route_shape(void **state)
{
    assert_string_equal(upd_route_labels[upd_route_label("/update/a/latest.yml", 20)], "feed_electron");
    const char *t = "/update/a/darwin/x64/1.0.0";
    assert_string_equal(upd_route_labels[upd_route_label(t, strlen(t))], "feed_squirrel_mac");
    t = "/update/a/win32/x64/RELEASES?id=1";
    assert_string_equal(upd_route_labels[upd_route_label(t, strlen(t))], "feed_squirrel_win");
    t = "/update/a/win32/x64/A-1.0.0-full.nupkg";
    assert_string_equal(upd_route_labels[upd_route_label(t, strlen(t))], "nupkg");
    t = "/artifacts/a/1.0.0/x.exe";
    assert_string_equal(upd_route_labels[upd_route_label(t, strlen(t))], "artifact");
    assert_string_equal(upd_route_labels[upd_route_label("/x", 2)], "other");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_electron_channel_files_select_platform_and_arch),
        cmocka_unit_test(test_squirrel_mac_and_tauri_routes_carry_the_current_version),
        cmocka_unit_test(test_squirrel_windows_paths_carry_channel_and_client),
        cmocka_unit_test(test_artifacts_and_downloads),
        cmocka_unit_test(test_traversal_and_encoded_separators_never_pass),
        cmocka_unit_test(test_malformed_parts_are_400_with_a_reason),
        cmocka_unit_test(test_labels_follow_the_route_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
