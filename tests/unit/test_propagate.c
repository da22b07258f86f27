#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/propagate.h"
#include "domain/purge_sig.h"

/*
 * control/propagate.c, the parts without I/O: the purge signature (against values computed independently with
 * `openssl dgst -sha256 -hmac`), the tags of a change, Cloudflare's 30-tag batches, the retry schedule, and the
 * settings a control plane refuses to start with. The requests themselves are checked end to end by
 * tests/integration/test_propagation_control.py.
 */

/* ---- signature ---- */

static void
test_the_signature_is_hmac_sha256_of_timestamp_nonce_and_body(void **state)
{
    /* printf '1767225600\n0123456789abcdef0123456789abcdef\n{"app":...}' | openssl dgst -sha256 -hmac 'purge-secret-for-tests' */
    const char *secret = "purge-secret-for-tests";
    const char *body = "{\"app\":\"acme\",\"generation\":7,\"tags\":[\"app:acme\",\"chan:acme/latest\",\"rel:acme/1.3.0\"]}";
    char hex[65];
    upd_purge_sign(secret, strlen(secret), "1767225600", "0123456789abcdef0123456789abcdef", body, strlen(body), hex);
    assert_string_equal(hex, "b650768c9894c9ce4ea1813d24a9ed6f8e02b93e74538d81b9eb130ef5cf8299");
}

static void
test_the_signature_of_an_empty_body_still_covers_both_newlines(void **state)
{
    /* printf '1\n2\n' | openssl dgst -sha256 -hmac 'k' */
    char hex[65];
    upd_purge_sign("k", 1, "1", "2", "", 0, hex);
    assert_string_equal(hex, "abfcf5c6d3de01b6105f6c79642c998e8ea008082f5361c7e7f3b588bc2a9434");
}

static void
test_any_change_of_secret_timestamp_nonce_or_body_changes_the_signature(void **state)
{
    char base[65], other[65];
    upd_purge_sign("secret", 6, "100", "aa", "{}", 2, base);
    upd_purge_sign("secreT", 6, "100", "aa", "{}", 2, other);
    assert_string_not_equal(base, other);
    upd_purge_sign("secret", 6, "101", "aa", "{}", 2, other);
    assert_string_not_equal(base, other);
    upd_purge_sign("secret", 6, "100", "ab", "{}", 2, other);
    assert_string_not_equal(base, other);
    upd_purge_sign("secret", 6, "100", "aa", "{ }", 3, other);
    assert_string_not_equal(base, other);
    /* the separators are part of what is signed: moving a byte across one is another message */
    upd_purge_sign("secret", 6, "10", "0\naa", "{}", 2, other);
    assert_string_not_equal(base, other);
}

/* ---- tags ---- */

static void
assert_tags(json_t *tags, const char *const *want, size_t n)
{
    assert_int_equal(json_array_size(tags), n);
    for (size_t i = 0; i < n; ++i)
        assert_string_equal(json_string_value(json_array_get(tags, i)), want[i]);
    json_decref(tags);
}

static void
test_a_release_is_tagged_by_app_channel_and_version(void **state)
{
    const char *versions[] = {"1.3.0"};
    const char *want[] = {"app:acme", "chan:acme/latest", "rel:acme/1.3.0"};
    assert_tags(upd_propagate_tags("acme", "latest", versions, 1), want, 3);
}

static void
test_rollout_tags_skip_empty_versions_and_duplicates_and_are_lower_case(void **state)
{
    /* rollout version, stable before, stable after: a promotion makes the last two the same */
    const char *versions[] = {"2.0.0-RC.1+Build.7", "", NULL, "1.9.0", "1.9.0", "2.0.0-rc.1+build.7"};
    const char *want[] = {"app:acme", "chan:acme/beta", "rel:acme/2.0.0-rc.1+build.7", "rel:acme/1.9.0"};
    assert_tags(upd_propagate_tags("acme", "beta", versions, 6), want, 4);
}

static void
test_tags_hold_only_the_characters_a_varnish_ban_can_take(void **state)
{
    assert_true(upd_propagate_tag_is_valid("rel:acme/1.3.0-beta.2+exp_1"));
    assert_false(upd_propagate_tag_is_valid(""));
    assert_false(upd_propagate_tag_is_valid("app:Acme"));
    assert_false(upd_propagate_tag_is_valid("app:acme latest"));
    assert_false(upd_propagate_tag_is_valid("app:acme|.*"));
    assert_false(upd_propagate_tag_is_valid("app:(acme)"));
    assert_false(upd_propagate_tag_is_valid("app:acme\n"));
    char big[UPD_PROPAGATE_TAG_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_false(upd_propagate_tag_is_valid(big));
    big[UPD_PROPAGATE_TAG_MAX] = '\0';
    assert_true(upd_propagate_tag_is_valid(big));
}

/* ---- Cloudflare batches ---- */

static void
test_cloudflare_purges_carry_at_most_30_tags_each_in_order(void **state)
{
    json_t *tags = json_array();
    char tag[32];
    for (int i = 0; i < 65; ++i) {
        snprintf(tag, sizeof(tag), "rel:acme/1.0.%d", i);
        json_array_append_new(tags, json_string(tag));
    }
    json_t *batches = upd_propagate_cloudflare_batches(tags, UPD_PROPAGATE_CLOUDFLARE_TAGS_MAX);
    assert_int_equal(json_array_size(batches), 3);
    size_t sizes[] = {30, 30, 5}, seen = 0;
    for (size_t b = 0; b < 3; ++b) {
        json_t *body = json_array_get(batches, b);
        assert_int_equal(json_object_size(body), 1); /* exactly {"tags":[...]} */
        json_t *bt = json_object_get(body, "tags");
        assert_int_equal(json_array_size(bt), sizes[b]);
        for (size_t i = 0; i < json_array_size(bt); ++i, ++seen)
            assert_string_equal(json_string_value(json_array_get(bt, i)), json_string_value(json_array_get(tags, seen)));
    }
    char *text = json_dumps(json_array_get(batches, 2), JSON_COMPACT);
    assert_string_equal(text, "{\"tags\":[\"rel:acme/1.0.60\",\"rel:acme/1.0.61\",\"rel:acme/1.0.62\",\"rel:acme/1.0.63\","
                              "\"rel:acme/1.0.64\"]}");
    free(text);
    json_decref(batches);

    /* exactly 30: one request; none: no request */
    json_array_remove(tags, 64);
    while (json_array_size(tags) > 30)
        json_array_remove(tags, json_array_size(tags) - 1);
    batches = upd_propagate_cloudflare_batches(tags, UPD_PROPAGATE_CLOUDFLARE_TAGS_MAX);
    assert_int_equal(json_array_size(batches), 1);
    json_decref(batches);
    json_array_clear(tags);
    batches = upd_propagate_cloudflare_batches(tags, UPD_PROPAGATE_CLOUDFLARE_TAGS_MAX);
    assert_int_equal(json_array_size(batches), 0);
    json_decref(batches);
    json_decref(tags);
}

/* ---- retry schedule ---- */

static void
test_retries_back_off_by_doubling_up_to_the_cap(void **state)
{
    static const uint64_t want[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000};
    for (unsigned r = 1; r <= 10; ++r)
        assert_int_equal(upd_propagate_backoff_ms(500, 30000, r), want[r - 1]);
    /* far along, no overflow: still the cap */
    assert_int_equal(upd_propagate_backoff_ms(500, 30000, 1000), 30000);
    assert_int_equal(upd_propagate_backoff_ms(3600000, 86400000, 200), 86400000);
    /* a cap at the first wait: every wait is the cap */
    assert_int_equal(upd_propagate_backoff_ms(700, 700, 1), 700);
    assert_int_equal(upd_propagate_backoff_ms(700, 700, 5), 700);
}

/* ---- settings ---- */

typedef struct {
    upd_conf_t conf;
    char *origins[2], *varnish[2];
} settings_t;

static void
settings_init(settings_t *s)
{
    memset(s, 0, sizeof(*s));
    s->conf.propagation_secret = "";
    s->conf.cloudflare_zone_id = "";
    s->conf.cloudflare_api_token = "";
    s->conf.cloudflare_api_base = "https://api.cloudflare.com/client/v4";
    s->conf.propagation_timeout_ms = 2000;
    s->conf.propagation_retry_initial_ms = 500;
    s->conf.propagation_retry_max_ms = 30000;
    s->conf.propagation_retry_attempts = 10;
    s->conf.propagation_origins.items = s->origins;
    s->conf.propagation_varnish.items = s->varnish;
}

static upd_propagate_t *
create(settings_t *s, char *err)
{
    upd_s3_timeouts_t t = {.connect_ms = 1000};
    err[0] = '\0';
    return upd_propagate_create(&s->conf, NULL, 0, &t, err, 512);
}

static void
test_settings_a_control_plane_refuses_to_start_with(void **state)
{
    settings_t s;
    char err[512];
    unsetenv("UPDRAFT_PURGE_SECRET");
    unsetenv("UPDRAFT_CLOUDFLARE_API_TOKEN");

    settings_init(&s);
    upd_propagate_t *p = create(&s, err);
    assert_non_null(p); /* nothing configured: nothing to do, and fine */
    assert_int_equal(upd_propagate_pending(p), 0);
    upd_propagate_destroy(p);

    s.origins[0] = "http://127.0.0.1:8080";
    s.conf.propagation_origins.size = 1;
    assert_null(create(&s, err));
    assert_non_null(strstr(err, "propagation.secret"));

    /* the environment's secret is enough; the file's is never echoed */
    setenv("UPDRAFT_PURGE_SECRET", "from-the-environment", 1);
    assert_non_null(p = create(&s, err));
    upd_propagate_destroy(p);
    unsetenv("UPDRAFT_PURGE_SECRET");

    s.conf.propagation_secret = "s3cr3t-value";
    s.origins[0] = "ftp://127.0.0.1:8080";
    assert_null(create(&s, err));
    assert_non_null(strstr(err, "propagation.origins[0]"));
    assert_null(strstr(err, "s3cr3t-value"));
    s.origins[0] = "http://127.0.0.1:8080/";

    s.varnish[0] = "127.0.0.1:6081";
    s.conf.propagation_varnish.size = 1;
    assert_null(create(&s, err));
    assert_non_null(strstr(err, "propagation.varnish[0]"));
    s.varnish[0] = "http://127.0.0.1:6081";

    s.conf.cloudflare_zone_id = "023e105f4ecef8ad9ca31a8372d0c35"; /* 31 digits */
    assert_null(create(&s, err));
    assert_non_null(strstr(err, "propagation.cloudflare.zone_id"));
    s.conf.cloudflare_zone_id = "023e105f4ecef8ad9ca31a8372d0c353";
    assert_null(create(&s, err));
    assert_non_null(strstr(err, "api_token"));
    s.conf.cloudflare_api_token = "cf-token-value";
    s.conf.cloudflare_api_base = "api.cloudflare.com";
    assert_null(create(&s, err));
    assert_non_null(strstr(err, "propagation.cloudflare.api_base"));
    assert_null(strstr(err, "cf-token-value"));
    s.conf.cloudflare_api_base = "https://api.cloudflare.com/client/v4/";

    s.conf.propagation_retry_max_ms = 100;
    assert_null(create(&s, err));
    assert_non_null(strstr(err, "propagation.retry_max_ms"));
    s.conf.propagation_retry_max_ms = 30000;

    assert_non_null(p = create(&s, err));
    upd_propagate_destroy(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_signature_is_hmac_sha256_of_timestamp_nonce_and_body),
        cmocka_unit_test(test_the_signature_of_an_empty_body_still_covers_both_newlines),
        cmocka_unit_test(test_any_change_of_secret_timestamp_nonce_or_body_changes_the_signature),
        cmocka_unit_test(test_a_release_is_tagged_by_app_channel_and_version),
        cmocka_unit_test(test_rollout_tags_skip_empty_versions_and_duplicates_and_are_lower_case),
        cmocka_unit_test(test_tags_hold_only_the_characters_a_varnish_ban_can_take),
        cmocka_unit_test(test_cloudflare_purges_carry_at_most_30_tags_each_in_order),
        cmocka_unit_test(test_retries_back_off_by_doubling_up_to_the_cap),
        cmocka_unit_test(test_settings_a_control_plane_refuses_to_start_with),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
