/* control/api.c: the route table's metrics labels, which /metrics has always listed in this order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "control/api.h"

static const char *
label_of(const char *path)
{
    h2o_req_t req;
    memset(&req, 0, sizeof(req));
    req.input.path = h2o_iovec_init(path, strlen(path));
    size_t n;
    const char *const *labels = upd_control_route_labels(&n);
    size_t i = upd_control_route_of(&req);
    assert_true(i < n);
    return labels[i];
}

static void
test_the_labels_keep_their_names_and_order_with_other_last(void **state)
{
    static const char *const want[] = {"apps", "releases", "rollout", "channel", "health", "pull", "publish",
                                       "members", "keys", "login", "audit", "backups", "other"};
    size_t n;
    const char *const *labels = upd_control_route_labels(&n);
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; ++i)
        assert_string_equal(labels[i], want[i]);
}

static void
test_every_route_counts_under_its_own_label(void **state)
{
    assert_string_equal(label_of("/v1/apps"), "apps");
    assert_string_equal(label_of("/v1/apps?x=1"), "apps");
    assert_string_equal(label_of("/v1/apps/demo/releases"), "releases");
    assert_string_equal(label_of("/v1/apps/demo/channels/latest/rollout"), "rollout");
    assert_string_equal(label_of("/v1/apps/demo/channels/latest"), "channel");
    assert_string_equal(label_of("/v1/apps/demo/channels/latest?pretty"), "channel");
    assert_string_equal(label_of("/v1/apps/demo/releases/1.2.3/pull"), "pull");
    assert_string_equal(label_of("/v1/audit?limit=5"), "audit");
    assert_string_equal(label_of("/healthz"), "health");
    assert_string_equal(label_of("/healthz?probe=lb"), "health");
    assert_string_equal(label_of("/v1/apps/demo/releases/1.2.3"), "releases");
    assert_string_equal(label_of("/v1/apps/demo/releases/1.2.3/publish"), "publish");
    assert_string_equal(label_of("/v1/members"), "members");
    assert_string_equal(label_of("/v1/members/alice"), "members");
    assert_string_equal(label_of("/v1/keys"), "keys");
    assert_string_equal(label_of("/v1/keys?member=alice"), "keys");
    assert_string_equal(label_of("/v1/keys/0123456789abcdef"), "keys");
    assert_string_equal(label_of("/v1/login"), "login");
    assert_string_equal(label_of("/v1/backups"), "backups");
}

static void
test_a_bad_parameter_still_counts_under_its_route(void **state)
{
    /* refused with 400 after routing: the path's shape is the route's */
    assert_string_equal(label_of("/v1/apps/NOT_AN_ID/releases"), "releases");
    assert_string_equal(label_of("/v1/apps/demo/channels/Bad!/rollout"), "rollout");
    assert_string_equal(label_of("/v1/apps/demo/releases/not-semver/pull"), "pull");
}

static void
test_unknown_paths_and_metrics_count_as_other(void **state)
{
    assert_string_equal(label_of("/metrics"), "other");
    assert_string_equal(label_of("/"), "other");
    assert_string_equal(label_of(""), "other");
    assert_string_equal(label_of("/v1"), "other");
    assert_string_equal(label_of("/v1/apps/demo"), "other");
    assert_string_equal(label_of("/v1/apps/demo/nonsense"), "other");
    assert_string_equal(label_of("/v1/apps/demo/channels/latest/nonsense"), "other");
    assert_string_equal(label_of("/v1/apps/demo/releases/1.2.3/nonsense"), "other");
    assert_string_equal(label_of("/v1/members/alice/keys"), "other");
    assert_string_equal(label_of("/v1/apps//releases"), "other");
    assert_string_equal(label_of("/v1/apps/demo/releases/"), "other");
    assert_string_equal(label_of("/v2/apps"), "other");
    assert_string_equal(label_of("/healthzz"), "other");
    assert_string_equal(label_of("/a/b/c/d/e/f/g/h/i"), "other");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_labels_keep_their_names_and_order_with_other_last),
        cmocka_unit_test(test_every_route_counts_under_its_own_label),
        cmocka_unit_test(test_a_bad_parameter_still_counts_under_its_route),
        cmocka_unit_test(test_unknown_paths_and_metrics_count_as_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
