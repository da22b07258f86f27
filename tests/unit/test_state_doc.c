#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/state_doc.h"

/*
 * domain/state_doc.c: the key names of the published state and its index document, as the control plane writes them
 * (control/propagate.c) and the origins read them (loop/sync.c). End to end: tests/integration/test_propagation*.py.
 */

/* ---- keys ---- */

static void
test_keys_are_the_published_names(void **state)
{
    char key[UPD_STATE_KEY_MAX];
    assert_int_equal(upd_state_doc_key(key, sizeof(key), "acme", 7), 0);
    assert_string_equal(key, "_updraft/state/acme/7.json");
    assert_int_equal(upd_state_latest_key(key, sizeof(key), "acme"), 0);
    assert_string_equal(key, "_updraft/state/acme.json");
    assert_int_equal(upd_state_index_key(key, sizeof(key)), 0);
    assert_string_equal(key, "_updraft/state/index.json");
    assert_string_equal(UPD_STATE_INDEX_KEY, "_updraft/state/index.json");
}

static void
test_the_longest_key_fits_the_max(void **state)
{
    char app[UPD_ID_MAX + 1], key[UPD_STATE_KEY_MAX];
    memset(app, 'a', UPD_ID_MAX);
    app[UPD_ID_MAX] = '\0';
    assert_int_equal(upd_state_doc_key(key, sizeof(key), app, UINT64_MAX), 0);
    assert_int_equal(strlen(key) + 1, sizeof(key)); /* exactly: the max is not padded */
    assert_int_equal(upd_state_latest_key(key, sizeof(key), app), 0);
}

static void
test_a_key_that_does_not_fit_is_refused_and_left_empty(void **state)
{
    char key[32];
    memset(key, 'x', sizeof(key));
    /* "_updraft/state/acme/7.json" is 26 bytes and its NUL */
    assert_int_equal(upd_state_doc_key(key, 26, "acme", 7), UPD_ETOOBIG);
    assert_string_equal(key, "");
    assert_int_equal(upd_state_doc_key(key, 27, "acme", 7), 0);
    assert_int_equal(upd_state_latest_key(key, 10, "acme"), UPD_ETOOBIG);
    assert_string_equal(key, "");
    assert_int_equal(upd_state_index_key(key, 25), UPD_ETOOBIG);
    assert_int_equal(upd_state_index_key(key, 0), UPD_ETOOBIG); /* and writes nothing */
}

static void
test_keys_refuse_what_is_not_an_app_id(void **state)
{
    char key[UPD_STATE_KEY_MAX];
    memset(key, 'x', sizeof(key));
    assert_int_equal(upd_state_doc_key(key, sizeof(key), "../keys", 1), UPD_EINVAL);
    assert_string_equal(key, "");
    assert_int_equal(upd_state_doc_key(key, sizeof(key), "acme", 0), 0); /* republished, never indexed */
    assert_string_equal(key, "_updraft/state/acme/0.json");
    assert_int_equal(upd_state_latest_key(key, sizeof(key), "Acme"), UPD_EINVAL);
    assert_int_equal(upd_state_latest_key(key, sizeof(key), ""), UPD_EINVAL);
    assert_int_equal(upd_state_latest_key(key, sizeof(key), "acme/beta"), UPD_EINVAL);
}

/* ---- the index ---- */

static void
test_an_index_formats_in_order_and_parses_back(void **state)
{
    upd_state_index_t ix, back;
    upd_state_index_init(&ix);
    upd_state_index_init(&back);
    assert_int_equal(upd_state_index_set(&ix, "zeta", 3), 0);
    assert_int_equal(upd_state_index_set(&ix, "acme", 12), 0);
    assert_int_equal(upd_state_index_set(&ix, "zeta", 4), 0); /* replaced in place */
    char *text;
    size_t len;
    assert_int_equal(upd_state_index_format(&ix, &text, &len), 0);
    assert_string_equal(text, "{\"format\":1,\"apps\":{\"zeta\":4,\"acme\":12}}");
    assert_int_equal(len, strlen(text));
    assert_int_equal(upd_state_index_parse(text, len, &back, NULL), 0);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.apps[0].app, "zeta");
    assert_int_equal(back.apps[0].generation, 4);
    assert_int_equal(upd_state_index_get(&back, "acme"), 12);
    assert_int_equal(upd_state_index_get(&back, "other"), 0);
    free(text);
    upd_state_index_dispose(&ix);
    upd_state_index_dispose(&back);
}

static void
test_an_empty_index_is_valid(void **state)
{
    upd_state_index_t ix;
    upd_state_index_init(&ix);
    char *text;
    size_t len;
    assert_int_equal(upd_state_index_format(&ix, &text, &len), 0);
    assert_string_equal(text, "{\"format\":1,\"apps\":{}}");
    assert_int_equal(upd_state_index_parse(text, len, &ix, NULL), 0);
    assert_int_equal(ix.n, 0);
    free(text);
    upd_state_index_dispose(&ix);
}

static void
test_set_refuses_bad_ids_and_generation_zero(void **state)
{
    upd_state_index_t ix;
    upd_state_index_init(&ix);
    assert_int_equal(upd_state_index_set(&ix, "Acme", 1), UPD_EINVAL);
    assert_int_equal(upd_state_index_set(&ix, "acme", 0), UPD_EINVAL);
    assert_int_equal(ix.n, 0);
    upd_state_index_dispose(&ix);
}

static void
test_many_apps_grow_the_index(void **state)
{
    upd_state_index_t ix;
    upd_state_index_init(&ix);
    char app[16];
    for (int i = 0; i < 1000; ++i) {
        snprintf(app, sizeof(app), "app-%d", i);
        assert_int_equal(upd_state_index_set(&ix, app, (uint64_t)i + 1), 0);
    }
    assert_int_equal(ix.n, 1000);
    assert_int_equal(upd_state_index_get(&ix, "app-999"), 1000);
    upd_state_index_dispose(&ix);
    assert_int_equal(ix.n, 0);
}

static void
assert_refused(const char *text, const char *why_has)
{
    upd_state_index_t ix;
    upd_reason_t why = {{0}};
    upd_state_index_init(&ix);
    assert_int_equal(upd_state_index_set(&ix, "stale", 1), 0); /* a failed parse leaves nothing of it */
    assert_int_equal(upd_state_index_parse(text, strlen(text), &ix, &why), UPD_EINVAL);
    assert_int_equal(ix.n, 0);
    assert_string_equal(why.code, "state_index");
    if (strstr(why.message, why_has) == NULL)
        fail_msg("refusing %s: \"%s\" does not say \"%s\"", text, why.message, why_has);
    upd_state_index_dispose(&ix);
}

static void
test_parse_refuses_a_damaged_index_whole(void **state)
{
    assert_refused("", "not JSON");
    assert_refused("{\"format\":1,\"apps\":{\"acme\":1}", "not JSON");
    assert_refused("[1]", "not a JSON object");
    assert_refused("{\"apps\":{\"acme\":1}}", "\"format\" is not 1");
    assert_refused("{\"format\":2,\"apps\":{\"acme\":1}}", "\"format\" is not 1");
    assert_refused("{\"format\":\"1\",\"apps\":{}}", "\"format\" is not 1");
    assert_refused("{\"format\":1}", "\"apps\" is not an object");
    assert_refused("{\"format\":1,\"apps\":[\"acme\"]}", "\"apps\" is not an object");
    assert_refused("{\"format\":1,\"apps\":{\"acme\":1,\"Bad App\":2}}", "\"Bad App\" is not an app id");
    assert_refused("{\"format\":1,\"apps\":{\"../keys\":2}}", "is not an app id");
    assert_refused("{\"format\":1,\"apps\":{\"acme\":0}}", "apps.acme: the generation is not a positive integer");
    assert_refused("{\"format\":1,\"apps\":{\"acme\":-3}}", "not a positive integer");
    assert_refused("{\"format\":1,\"apps\":{\"acme\":1.5}}", "not a positive integer");
    assert_refused("{\"format\":1,\"apps\":{\"acme\":\"7\"}}", "not a positive integer");
    assert_refused("{\"format\":1,\"apps\":{\"acme\":1,\"acme\":2}}", "not JSON"); /* which one would be meant? */
}

static void
test_parse_ignores_members_it_does_not_know(void **state)
{
    upd_state_index_t ix;
    upd_state_index_init(&ix);
    const char *text = "{\"written\":\"2026-01-01T00:00:00Z\",\"format\":1,\"apps\":{\"acme\":9}}";
    assert_int_equal(upd_state_index_parse(text, strlen(text), &ix, NULL), 0);
    assert_int_equal(upd_state_index_get(&ix, "acme"), 9);
    upd_state_index_dispose(&ix);
}

static void
test_parse_reads_only_len_bytes(void **state)
{
    upd_state_index_t ix;
    upd_state_index_init(&ix);
    const char *text = "{\"format\":1,\"apps\":{\"acme\":9}}GARBAGE";
    assert_int_equal(upd_state_index_parse(text, strlen(text) - 7, &ix, NULL), 0);
    assert_int_equal(upd_state_index_get(&ix, "acme"), 9);
    assert_int_equal(upd_state_index_parse(text, strlen(text), &ix, NULL), UPD_EINVAL);
    upd_state_index_dispose(&ix);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_are_the_published_names),
        cmocka_unit_test(test_the_longest_key_fits_the_max),
        cmocka_unit_test(test_a_key_that_does_not_fit_is_refused_and_left_empty),
        cmocka_unit_test(test_keys_refuse_what_is_not_an_app_id),
        cmocka_unit_test(test_an_index_formats_in_order_and_parses_back),
        cmocka_unit_test(test_an_empty_index_is_valid),
        cmocka_unit_test(test_set_refuses_bad_ids_and_generation_zero),
        cmocka_unit_test(test_many_apps_grow_the_index),
        cmocka_unit_test(test_parse_refuses_a_damaged_index_whole),
        cmocka_unit_test(test_parse_ignores_members_it_does_not_know),
        cmocka_unit_test(test_parse_reads_only_len_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
