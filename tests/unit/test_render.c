/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/err.h"
#include "domain/render.h"

/*
 * Feed bodies are checked the way clients read them: YAML through libyaml's parser, JSON through
 * jansson, RELEASES lines through Squirrel's own entry regex. Releases are built in C here, so these
 * tests depend on nothing but render.c and ids.c.
 */

#define PUBLIC_URL "https://cdn.example.com"
#define URL(file) PUBLIC_URL "/artifacts/acme/1.10.0/" file
/* the real sha512 of "111": base64 that starts with "+" and holds "/" and padding */
#define SHA512_PLUS "+xMbxXpHfIydBo8e5WIqwwQZWncWTMwtddgt/hpye6jWdO2H+WFDsrQWqs77VV4wRcNW+qI+bSHecrhYIuOf3Q=="

typedef struct {
    upd_release_t rel;
    upd_file_t files[UPD_RELEASE_MAX_FILES];
} fixture_t;

static void
fixture_init(fixture_t *fx, const char *version, const char *notes)
{
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->rel.app, sizeof(fx->rel.app), "acme");
    snprintf(fx->rel.channel, sizeof(fx->rel.channel), "latest");
    snprintf(fx->rel.version, sizeof(fx->rel.version), "%s", version);
    snprintf(fx->rel.pub_date, sizeof(fx->rel.pub_date), "2026-11-29T01:52:31Z");
    fx->rel.notes = (char *)notes; /* never disposed: the fixture owns nothing */
    fx->rel.files = fx->files;
}

/* Adds a file with a distinct, well-formed sha512 (base64 with '+', '/' and padding) and sha1. */
static upd_file_t *
add_file(fixture_t *fx, const char *name, upd_platform_t platform, upd_arch_t arch, upd_kind_t kind, uint64_t size)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = fx->rel.nfiles++;
    upd_file_t *f = &fx->files[n];

    snprintf(f->name, sizeof(f->name), "%s", name);
    f->platform = platform;
    f->arch = arch;
    f->kind = kind;
    f->size = size;
    for (size_t i = 0; i != UPD_SHA512_B64_LEN - 2; ++i)
        f->sha512[i] = b64[(n * 7 + i * 13 + 5) % 64];
    memcpy(f->sha512 + UPD_SHA512_B64_LEN - 2, "==", 3);
    for (size_t i = 0; i != UPD_SHA1_HEX_LEN; ++i)
        f->sha1[i] = "0123456789abcdef"[(n * 3 + i * 5) % 16];
    f->blockmap_size = -1;
    return f;
}

/* Every kind of file a desktop app ships, in the order a build pipeline would register them. */
static void
fixture_full_release(fixture_t *fx)
{
    fixture_init(fx, "1.10.0", "Fixes the sync bug");
    upd_file_t *exe = add_file(fx, "Acme-Setup-1.10.0.exe", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_EXE, 123456);
    exe->blockmap_size = 1234;
    exe->signature = "exe-signature";
    add_file(fx, "Acme-1.10.0.msi", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_MSI, 223456);
    add_file(fx, "Acme-1.10.0.dmg", UPD_PLATFORM_MAC, UPD_ARCH_X64, UPD_KIND_DMG, 323456);
    add_file(fx, "Acme-1.10.0-mac.zip", UPD_PLATFORM_MAC, UPD_ARCH_X64, UPD_KIND_ZIP, 423456)->blockmap_size = 4321;
    add_file(fx, "Acme-1.10.0-arm64-mac.zip", UPD_PLATFORM_MAC, UPD_ARCH_ARM64, UPD_KIND_ZIP, 523456);
    add_file(fx, "acme-1.10.0.x86_64.rpm", UPD_PLATFORM_LINUX, UPD_ARCH_X64, UPD_KIND_RPM, 623456);
    add_file(fx, "acme_1.10.0_amd64.deb", UPD_PLATFORM_LINUX, UPD_ARCH_X64, UPD_KIND_DEB, 723456);
    add_file(fx, "Acme-1.10.0.AppImage", UPD_PLATFORM_LINUX, UPD_ARCH_X64, UPD_KIND_APPIMAGE, 823456);
    add_file(fx, "Acme-1.10.0-arm64.AppImage", UPD_PLATFORM_LINUX, UPD_ARCH_ARM64, UPD_KIND_APPIMAGE, 923456);
    add_file(fx, "acme-1.10.0-full.nupkg", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_NUPKG_FULL, 1023456);
    add_file(fx, "acme-1.10.0-delta.nupkg", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_NUPKG_DELTA, 11234);
    add_file(fx, "acme-ia32-1.10.0-full.nupkg", UPD_PLATFORM_WINDOWS, UPD_ARCH_IA32, UPD_KIND_NUPKG_FULL, 1123456);
    add_file(fx, "Acme.app.tar.gz", UPD_PLATFORM_MAC, UPD_ARCH_UNIVERSAL, UPD_KIND_TAR_GZ, 1223456)->signature = "mac-signature";
    add_file(fx, "Acme.AppImage.tar.gz", UPD_PLATFORM_LINUX, UPD_ARCH_X64, UPD_KIND_TAR_GZ, 1323456)->signature = "linux-signature";
}

static const upd_render_opts_t plain_opts = {PUBLIC_URL, -1, NULL};

static void
render(const fixture_t *fx, const upd_render_opts_t *opts, upd_feed_set_t *set)
{
    memset(set, 0, sizeof(*set));
    assert_int_equal(upd_render_release(&fx->rel, opts, set), 0);
    for (size_t i = 0; i != set->size; ++i)
        assert_int_equal(strlen(set->entries[i].body), set->entries[i].len);
}

static const upd_feed_t *
find_feed(const upd_feed_set_t *set, const char *key)
{
    for (size_t i = 0; i != set->size; ++i)
        if (strcmp(set->entries[i].key, key) == 0)
            return &set->entries[i];
    return NULL;
}

static const upd_feed_t *
get_feed(const upd_feed_set_t *set, const char *key)
{
    const upd_feed_t *feed = find_feed(set, key);
    if (feed == NULL)
        fail_msg("no variant %s", key);
    return feed;
}

static void
assert_keys_are(const upd_feed_set_t *set, const char *const *keys, size_t n)
{
    for (size_t i = 0; i != n; ++i)
        if (find_feed(set, keys[i]) == NULL)
            fail_msg("variant %s missing", keys[i]);
    for (size_t i = 0; i != set->size; ++i) {
        bool expected = false;
        for (size_t j = 0; j != n; ++j)
            expected = expected || strcmp(set->entries[i].key, keys[j]) == 0;
        if (!expected)
            fail_msg("unexpected variant %s", set->entries[i].key);
    }
    assert_int_equal(set->size, n);
}

/* --- YAML read back with libyaml's loader ------------------------------------------------------- */

typedef struct {
    yaml_document_t doc;
    yaml_node_t *root;
} yaml_t;

static void
yaml_load(const upd_feed_t *feed, yaml_t *y)
{
    yaml_parser_t parser;
    assert_true(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)feed->body, feed->len);
    if (!yaml_parser_load(&parser, &y->doc))
        fail_msg("%s does not parse: %s\n%s", feed->key, parser.problem, feed->body);
    yaml_parser_delete(&parser);
    y->root = yaml_document_get_root_node(&y->doc);
    assert_non_null(y->root);
    assert_int_equal(y->root->type, YAML_MAPPING_NODE);
}

static yaml_node_t *
yaml_get(yaml_t *y, yaml_node_t *map, const char *key)
{
    assert_int_equal(map->type, YAML_MAPPING_NODE);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p != map->data.mapping.pairs.top; ++p) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(&y->doc, p->value);
    }
    return NULL;
}

static const char *
yaml_str(yaml_t *y, yaml_node_t *map, const char *key)
{
    yaml_node_t *n = yaml_get(y, map, key);
    if (n == NULL)
        fail_msg("key %s missing", key);
    assert_int_equal(n->type, YAML_SCALAR_NODE);
    return (const char *)n->data.scalar.value;
}

/* Whether a scalar was written in a style no YAML schema resolves to a number, date, bool or null. */
static bool
yaml_is_quoted(yaml_t *y, yaml_node_t *map, const char *key)
{
    yaml_node_t *n = yaml_get(y, map, key);
    assert_non_null(n);
    return n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
}

static void
yaml_assert_keys(yaml_t *y, yaml_node_t *map, const char *const *keys, size_t n)
{
    for (size_t i = 0; i != n; ++i)
        if (yaml_get(y, map, keys[i]) == NULL)
            fail_msg("key %s missing", keys[i]);
    assert_int_equal(map->data.mapping.pairs.top - map->data.mapping.pairs.start, n);
}

static yaml_node_t *
yaml_files(yaml_t *y, size_t expected)
{
    yaml_node_t *files = yaml_get(y, y->root, "files");
    assert_non_null(files);
    assert_int_equal(files->type, YAML_SEQUENCE_NODE);
    assert_int_equal(files->data.sequence.items.top - files->data.sequence.items.start, expected);
    return files;
}

static yaml_node_t *
yaml_item(yaml_t *y, yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(&y->doc, seq->data.sequence.items.start[i]);
}

/* --- variant keys ------------------------------------------------------------------------------- */

static void
test_feed_key_names_every_variant_clients_ask_for(void **state)
{
    char key[UPD_FEED_KEY_MAX];

    assert_int_equal(upd_feed_key(UPD_FEED_ELECTRON, UPD_PLATFORM_WINDOWS, UPD_ARCH_ARM64, 0, key), strlen("electron:windows"));
    assert_string_equal(key, "electron:windows");
    assert_true(upd_feed_key(UPD_FEED_ELECTRON, UPD_PLATFORM_MAC, UPD_ARCH_UNIVERSAL, 0, key) > 0);
    assert_string_equal(key, "electron:mac");
    assert_true(upd_feed_key(UPD_FEED_ELECTRON, UPD_PLATFORM_LINUX, UPD_ARCH_X64, 0, key) > 0);
    assert_string_equal(key, "electron:linux");
    assert_true(upd_feed_key(UPD_FEED_ELECTRON, UPD_PLATFORM_LINUX, UPD_ARCH_ARM64, 1, key) > 0);
    assert_string_equal(key, "electron:linux-arm64+staged");
    assert_true(upd_feed_key(UPD_FEED_ELECTRON, UPD_PLATFORM_LINUX, UPD_ARCH_IA32, 0, key) > 0);
    assert_string_equal(key, "electron:linux-ia32");
    assert_true(upd_feed_key(UPD_FEED_SQUIRREL_MAC, UPD_PLATFORM_LINUX, UPD_ARCH_UNIVERSAL, 0, key) > 0);
    assert_string_equal(key, "squirrel-mac:universal");
    assert_int_equal(upd_feed_key(UPD_FEED_SQUIRREL_WIN, UPD_PLATFORM_MAC, UPD_ARCH_IA32, 1, key),
                     strlen("squirrel-win:ia32+staged"));
    assert_string_equal(key, "squirrel-win:ia32+staged");
    assert_true(upd_feed_key(UPD_FEED_TAURI, UPD_PLATFORM_MAC, UPD_ARCH_ARM64, 0, key) > 0);
    assert_string_equal(key, "tauri:mac-arm64");
    assert_true(upd_feed_key(UPD_FEED_TAURI, UPD_PLATFORM_WINDOWS, UPD_ARCH_IA32, 0, key) > 0);
    assert_string_equal(key, "tauri:windows-ia32");
}

static void
test_feed_key_refuses_combinations_no_client_asks_for(void **state)
{
    char key[UPD_FEED_KEY_MAX];

    assert_int_equal(upd_feed_key(UPD_FEED_ELECTRON, UPD_PLATFORM_LINUX, UPD_ARCH_UNIVERSAL, 0, key), UPD_EINVAL);
    assert_int_equal(upd_feed_key(UPD_FEED_SQUIRREL_MAC, UPD_PLATFORM_MAC, UPD_ARCH_IA32, 0, key), UPD_EINVAL);
    assert_int_equal(upd_feed_key(UPD_FEED_SQUIRREL_MAC, UPD_PLATFORM_MAC, UPD_ARCH_X64, 1, key), UPD_EINVAL);
    assert_int_equal(upd_feed_key(UPD_FEED_SQUIRREL_WIN, UPD_PLATFORM_WINDOWS, UPD_ARCH_UNIVERSAL, 0, key), UPD_EINVAL);
    assert_int_equal(upd_feed_key(UPD_FEED_TAURI, UPD_PLATFORM_LINUX, UPD_ARCH_X64, 1, key), UPD_EINVAL);
    assert_int_equal(upd_feed_key(UPD_FEED_TAURI, UPD_PLATFORM_MAC, UPD_ARCH_UNIVERSAL, 0, key), UPD_EINVAL);
    assert_int_equal(upd_feed_key(UPD_FEED_TAURI, UPD_PLATFORM_MAC, UPD_ARCH_IA32, 0, key), UPD_EINVAL);
    assert_int_equal(upd_feed_key(UPD_FEED_COUNT, UPD_PLATFORM_MAC, UPD_ARCH_X64, 0, key), UPD_EINVAL);
    assert_int_equal(upd_feed_key(UPD_FEED_ELECTRON, UPD_PLATFORM_COUNT, UPD_ARCH_X64, 0, key), UPD_EINVAL);
    assert_int_equal(upd_feed_key(UPD_FEED_ELECTRON, UPD_PLATFORM_MAC, UPD_ARCH_COUNT, 0, key), UPD_EINVAL);
}

/* --- which variants exist ----------------------------------------------------------------------- */

static void
test_render_emits_exactly_the_variants_the_files_support(void **state)
{
    static const char *const keys[] = {
        "electron:windows",  "electron:mac",       "electron:linux",   "electron:linux-arm64",
        "squirrel-mac:x64",  "squirrel-mac:arm64", "squirrel-win:x64", "squirrel-win:ia32",
        "tauri:windows-x64", "tauri:mac-x64",      "tauri:mac-arm64",  "tauri:linux-x64",
    };
    fixture_t fx;
    upd_feed_set_t set;

    fixture_full_release(&fx);
    render(&fx, &plain_opts, &set);
    assert_keys_are(&set, keys, sizeof(keys) / sizeof(keys[0]));
    upd_feed_set_dispose(&set);
    assert_null(set.entries);
    assert_int_equal(set.size, 0);
}

static void
test_partial_rollout_adds_staged_electron_and_squirrel_win_variants_only(void **state)
{
    static const char *const keys[] = {
        "electron:windows",        "electron:mac",
        "electron:linux",          "electron:linux-arm64",
        "electron:windows+staged", "electron:mac+staged",
        "electron:linux+staged",   "electron:linux-arm64+staged",
        "squirrel-mac:x64",        "squirrel-mac:arm64",
        "squirrel-win:x64",        "squirrel-win:ia32",
        "squirrel-win:x64+staged", "squirrel-win:ia32+staged",
        "tauri:windows-x64",       "tauri:mac-x64",
        "tauri:mac-arm64",         "tauri:linux-x64",
    };
    const upd_render_opts_t opts = {PUBLIC_URL, 25, NULL};
    fixture_t fx;
    upd_feed_set_t set;

    fixture_full_release(&fx);
    render(&fx, &opts, &set);
    assert_keys_are(&set, keys, sizeof(keys) / sizeof(keys[0]));
    upd_feed_set_dispose(&set);
}

static void
test_release_without_files_renders_nothing(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;

    fixture_init(&fx, "1.0.0", NULL);
    render(&fx, &plain_opts, &set);
    assert_int_equal(set.size, 0);
    upd_feed_set_dispose(&set);
}

static void
test_render_appends_to_a_set_that_already_has_entries(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;

    fixture_init(&fx, "1.0.0", NULL);
    add_file(&fx, "Acme-Setup-1.0.0.exe", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_EXE, 10);
    render(&fx, &plain_opts, &set);
    assert_int_equal(set.size, 1);
    assert_int_equal(upd_render_release(&fx.rel, &plain_opts, &set), 0);
    assert_int_equal(set.size, 2);
    assert_string_equal(set.entries[0].key, "electron:windows");
    assert_string_equal(set.entries[1].body, set.entries[0].body);
    upd_feed_set_dispose(&set);
}

/* --- electron-updater YAML ---------------------------------------------------------------------- */

static void
test_electron_windows_yaml_reads_back_with_every_field(void **state)
{
    static const char *const top[] = {"version", "files", "path", "sha512", "releaseDate", "releaseNotes"};
    static const char *const file_keys[] = {"url", "sha512", "size", "blockMapSize"};
    fixture_t fx;
    upd_feed_set_t set;
    yaml_t y;

    fixture_full_release(&fx);
    render(&fx, &plain_opts, &set);
    const upd_feed_t *feed = get_feed(&set, "electron:windows");
    assert_int_equal(feed->body[feed->len - 1], '\n');
    yaml_load(feed, &y);

    yaml_assert_keys(&y, y.root, top, sizeof(top) / sizeof(top[0]));
    assert_string_equal(yaml_str(&y, y.root, "version"), "1.10.0");
    yaml_node_t *files = yaml_files(&y, 1); /* the exe only: the msi is a fallback */
    yaml_node_t *exe = yaml_item(&y, files, 0);
    yaml_assert_keys(&y, exe, file_keys, sizeof(file_keys) / sizeof(file_keys[0]));
    assert_string_equal(yaml_str(&y, exe, "url"), URL("Acme-Setup-1.10.0.exe"));
    assert_string_equal(yaml_str(&y, exe, "sha512"), fx.files[0].sha512);
    assert_string_equal(yaml_str(&y, exe, "size"), "123456");
    assert_false(yaml_is_quoted(&y, exe, "size"));
    assert_string_equal(yaml_str(&y, exe, "blockMapSize"), "1234");
    assert_false(yaml_is_quoted(&y, exe, "blockMapSize"));
    assert_string_equal(yaml_str(&y, y.root, "path"), URL("Acme-Setup-1.10.0.exe"));
    assert_string_equal(yaml_str(&y, y.root, "sha512"), fx.files[0].sha512);
    assert_string_equal(yaml_str(&y, y.root, "releaseDate"), "2026-11-29T01:52:31.000Z");
    assert_true(yaml_is_quoted(&y, y.root, "releaseDate")); /* else js-yaml reads a Date */
    assert_string_equal(yaml_str(&y, y.root, "releaseNotes"), "Fixes the sync bug");

    yaml_document_delete(&y.doc);
    upd_feed_set_dispose(&set);
}

static void
test_version_is_quoted_so_no_yaml_reader_takes_it_for_a_number(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;
    yaml_t y;

    fixture_full_release(&fx);
    render(&fx, &plain_opts, &set);
    const upd_feed_t *feed = get_feed(&set, "electron:windows");
    yaml_load(feed, &y);
    assert_string_equal(yaml_str(&y, y.root, "version"), "1.10.0");
    assert_true(yaml_is_quoted(&y, y.root, "version"));
    assert_non_null(strstr(feed->body, "version: '1.10.0'\n"));
    yaml_document_delete(&y.doc);
    upd_feed_set_dispose(&set);
}

static void
test_sha512_with_plus_slash_and_padding_reads_back_unchanged(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;
    yaml_t y;

    fixture_init(&fx, "2.0.0", NULL);
    upd_file_t *f = add_file(&fx, "Acme-Setup-2.0.0.exe", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_EXE, 5);
    assert_int_equal(strlen(SHA512_PLUS), UPD_SHA512_B64_LEN);
    memcpy(f->sha512, SHA512_PLUS, sizeof(SHA512_PLUS));
    render(&fx, &plain_opts, &set);
    yaml_load(get_feed(&set, "electron:windows"), &y);
    assert_string_equal(yaml_str(&y, yaml_item(&y, yaml_files(&y, 1), 0), "sha512"), SHA512_PLUS);
    assert_string_equal(yaml_str(&y, y.root, "sha512"), SHA512_PLUS);
    yaml_document_delete(&y.doc);
    upd_feed_set_dispose(&set);
}

static void
test_blockmap_size_appears_only_for_files_with_a_blockmap(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;
    yaml_t y;

    fixture_full_release(&fx);
    render(&fx, &plain_opts, &set);
    yaml_load(get_feed(&set, "electron:mac"), &y);
    yaml_node_t *files = yaml_files(&y, 3);
    assert_string_equal(yaml_str(&y, yaml_item(&y, files, 0), "blockMapSize"), "4321");
    assert_null(yaml_get(&y, yaml_item(&y, files, 1), "blockMapSize"));
    assert_null(yaml_get(&y, yaml_item(&y, files, 2), "blockMapSize"));
    yaml_document_delete(&y.doc);
    upd_feed_set_dispose(&set);
}

static void
test_windows_feed_falls_back_to_msi_when_there_is_no_exe(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;
    yaml_t y;

    fixture_init(&fx, "1.10.0", NULL);
    add_file(&fx, "Acme-1.10.0.msi", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_MSI, 77);
    render(&fx, &plain_opts, &set);
    yaml_load(get_feed(&set, "electron:windows"), &y);
    assert_string_equal(yaml_str(&y, yaml_item(&y, yaml_files(&y, 1), 0), "url"), URL("Acme-1.10.0.msi"));
    assert_string_equal(yaml_str(&y, y.root, "path"), URL("Acme-1.10.0.msi"));
    yaml_document_delete(&y.doc);
    upd_feed_set_dispose(&set);
}

static void
test_mac_feed_lists_zips_before_dmgs_and_points_path_at_a_zip(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;
    yaml_t y;

    fixture_full_release(&fx);
    render(&fx, &plain_opts, &set);
    yaml_load(get_feed(&set, "electron:mac"), &y);
    yaml_node_t *files = yaml_files(&y, 3);
    assert_string_equal(yaml_str(&y, yaml_item(&y, files, 0), "url"), URL("Acme-1.10.0-mac.zip"));
    assert_string_equal(yaml_str(&y, yaml_item(&y, files, 1), "url"), URL("Acme-1.10.0-arm64-mac.zip"));
    assert_string_equal(yaml_str(&y, yaml_item(&y, files, 2), "url"), URL("Acme-1.10.0.dmg"));
    assert_string_equal(yaml_str(&y, y.root, "path"), URL("Acme-1.10.0-mac.zip"));
    assert_string_equal(yaml_str(&y, y.root, "sha512"), fx.files[3].sha512);
    assert_string_equal(yaml_str(&y, yaml_item(&y, files, 2), "size"), "323456");
    yaml_document_delete(&y.doc);
    upd_feed_set_dispose(&set);
}

static void
test_mac_without_zip_has_no_electron_feed(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;

    fixture_init(&fx, "1.10.0", NULL);
    add_file(&fx, "Acme-1.10.0.dmg", UPD_PLATFORM_MAC, UPD_ARCH_UNIVERSAL, UPD_KIND_DMG, 77);
    render(&fx, &plain_opts, &set);
    assert_int_equal(set.size, 0);
    upd_feed_set_dispose(&set);
}

static void
test_linux_feeds_are_per_arch_appimage_then_deb_then_rpm(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;
    yaml_t y;

    fixture_full_release(&fx);
    render(&fx, &plain_opts, &set);
    yaml_load(get_feed(&set, "electron:linux"), &y);
    yaml_node_t *files = yaml_files(&y, 3);
    assert_string_equal(yaml_str(&y, yaml_item(&y, files, 0), "url"), URL("Acme-1.10.0.AppImage"));
    assert_string_equal(yaml_str(&y, yaml_item(&y, files, 1), "url"), URL("acme_1.10.0_amd64.deb"));
    assert_string_equal(yaml_str(&y, yaml_item(&y, files, 2), "url"), URL("acme-1.10.0.x86_64.rpm"));
    assert_string_equal(yaml_str(&y, y.root, "path"), URL("Acme-1.10.0.AppImage"));
    yaml_document_delete(&y.doc);

    yaml_load(get_feed(&set, "electron:linux-arm64"), &y);
    files = yaml_files(&y, 1);
    assert_string_equal(yaml_str(&y, yaml_item(&y, files, 0), "url"), URL("Acme-1.10.0-arm64.AppImage"));
    assert_string_equal(yaml_str(&y, yaml_item(&y, files, 0), "size"), "923456");
    yaml_document_delete(&y.doc);
    assert_null(find_feed(&set, "electron:linux-ia32"));
    upd_feed_set_dispose(&set);
}

static void
test_staging_percentage_appears_only_in_staged_variants(void **state)
{
    static const char *const plain_keys[] = {"electron:windows", "electron:mac", "electron:linux", "electron:linux-arm64"};
    const upd_render_opts_t opts = {PUBLIC_URL, 7, NULL};
    fixture_t fx;
    upd_feed_set_t set;

    fixture_full_release(&fx);
    render(&fx, &opts, &set);
    for (size_t i = 0; i != sizeof(plain_keys) / sizeof(plain_keys[0]); ++i) {
        char staged_key[UPD_FEED_KEY_MAX];
        yaml_t plain, staged;

        snprintf(staged_key, sizeof(staged_key), "%s+staged", plain_keys[i]);
        yaml_load(get_feed(&set, plain_keys[i]), &plain);
        yaml_load(get_feed(&set, staged_key), &staged);
        assert_null(yaml_get(&plain, plain.root, "stagingPercentage"));
        assert_string_equal(yaml_str(&staged, staged.root, "stagingPercentage"), "7");
        assert_false(yaml_is_quoted(&staged, staged.root, "stagingPercentage")); /* an integer */
        /* otherwise the same answer */
        assert_string_equal(yaml_str(&staged, staged.root, "path"), yaml_str(&plain, plain.root, "path"));
        assert_int_equal(staged.root->data.mapping.pairs.top - staged.root->data.mapping.pairs.start,
                         plain.root->data.mapping.pairs.top - plain.root->data.mapping.pairs.start + 1);
        yaml_document_delete(&plain.doc);
        yaml_document_delete(&staged.doc);
    }
    upd_feed_set_dispose(&set);
}

static void
test_release_notes_round_trip_as_strings(void **state)
{
    static const char *const notes[] = {"Line one\nLine two: with a colon\n\n- not a list\n",
                                        "true",
                                        "1.5",
                                        "# not a comment",
                                        "Ünïcödé ✓",
                                        "  leading spaces",
                                        "trailing space "};
    for (size_t i = 0; i != sizeof(notes) / sizeof(notes[0]); ++i) {
        fixture_t fx;
        upd_feed_set_t set;
        yaml_t y;

        fixture_init(&fx, "1.10.0", notes[i]);
        add_file(&fx, "Acme-Setup-1.10.0.exe", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_EXE, 5);
        render(&fx, &plain_opts, &set);
        yaml_load(get_feed(&set, "electron:windows"), &y);
        assert_string_equal(yaml_str(&y, y.root, "releaseNotes"), notes[i]);
        if (strcmp(notes[i], "true") == 0 || strcmp(notes[i], "1.5") == 0)
            assert_true(yaml_is_quoted(&y, y.root, "releaseNotes"));
        yaml_document_delete(&y.doc);
        upd_feed_set_dispose(&set);
    }
}

static void
test_no_release_notes_key_when_the_release_has_none(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;
    yaml_t y;

    fixture_init(&fx, "1.10.0", NULL);
    add_file(&fx, "Acme-Setup-1.10.0.exe", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_EXE, 5);
    render(&fx, &plain_opts, &set);
    yaml_load(get_feed(&set, "electron:windows"), &y);
    assert_null(yaml_get(&y, y.root, "releaseNotes"));
    yaml_document_delete(&y.doc);
    upd_feed_set_dispose(&set);
}

static void
test_without_public_url_electron_urls_are_absolute_paths(void **state)
{
    const upd_render_opts_t opts = {NULL, -1, NULL};
    fixture_t fx;
    upd_feed_set_t set;
    yaml_t y;

    fixture_init(&fx, "1.10.0", NULL);
    add_file(&fx, "Acme-Setup-1.10.0.exe", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_EXE, 5);
    render(&fx, &opts, &set);
    yaml_load(get_feed(&set, "electron:windows"), &y);
    assert_string_equal(yaml_str(&y, yaml_item(&y, yaml_files(&y, 1), 0), "url"), "/artifacts/acme/1.10.0/Acme-Setup-1.10.0.exe");
    yaml_document_delete(&y.doc);
    upd_feed_set_dispose(&set);
}

/* --- Squirrel.Windows RELEASES ------------------------------------------------------------------ */

/* Squirrel's ReleaseEntry regex ^([0-9a-fA-F]{40})\s+(\S+)\s+(\d+)[\r]*$ in POSIX ERE. */
#define ENTRY_RE "^([0-9a-fA-F]{40})[[:space:]]+([^[:space:]]+)[[:space:]]+([0-9]+)"

/* Splits a RELEASES body into lines (modifies it) and returns how many. */
static size_t
split_lines(char *body, char **lines, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *line = strtok_r(body, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        assert_true(n < max);
        lines[n++] = line;
    }
    return n;
}

static void
assert_entry(const char *line, const char *suffix_re, const upd_file_t *f)
{
    char re_text[256], sha1[UPD_SHA1_HEX_LEN + 1], size[24];
    regex_t re;
    regmatch_t m[4];

    snprintf(re_text, sizeof(re_text), "%s%s$", ENTRY_RE, suffix_re);
    assert_int_equal(regcomp(&re, re_text, REG_EXTENDED), 0);
    if (regexec(&re, line, 4, m, 0) != 0)
        fail_msg("'%s' does not match %s", line, re_text);
    regfree(&re);
    for (size_t i = 0; i != UPD_SHA1_HEX_LEN; ++i)
        sha1[i] = (char)toupper((unsigned char)f->sha1[i]);
    sha1[UPD_SHA1_HEX_LEN] = '\0';
    snprintf(size, sizeof(size), "%" PRIu64, f->size);
    assert_int_equal(m[1].rm_eo - m[1].rm_so, UPD_SHA1_HEX_LEN);
    assert_memory_equal(line + m[1].rm_so, sha1, UPD_SHA1_HEX_LEN); /* upper case, as Squirrel writes it */
    assert_int_equal(m[2].rm_eo - m[2].rm_so, strlen(f->name));
    assert_memory_equal(line + m[2].rm_so, f->name, strlen(f->name)); /* a file name, never a URL */
    assert_int_equal(m[3].rm_eo - m[3].rm_so, strlen(size));
    assert_memory_equal(line + m[3].rm_so, size, strlen(size));
}

static void
test_releases_lines_match_squirrels_entry_regex(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;
    char *lines[8];

    fixture_full_release(&fx);
    render(&fx, &plain_opts, &set);
    const upd_feed_t *x64 = get_feed(&set, "squirrel-win:x64");
    assert_int_not_equal(x64->body[x64->len - 1], '\n'); /* Squirrel joins lines with "\n", none after the last */
    char *body = strdup(x64->body);
    assert_int_equal(split_lines(body, lines, 8), 2);
    assert_entry(lines[0], "", &fx.files[10]); /* the delta first, as Squirrel orders them */
    assert_entry(lines[1], "", &fx.files[9]);
    free(body);

    body = strdup(get_feed(&set, "squirrel-win:ia32")->body);
    assert_int_equal(split_lines(body, lines, 8), 1);
    assert_entry(lines[0], "", &fx.files[11]);
    free(body);
    upd_feed_set_dispose(&set);
}

static void
test_staged_releases_lists_stable_lines_first_then_suffixed_lines(void **state)
{
    fixture_t stable, fx;
    upd_feed_set_t set;
    char *lines[8];

    fixture_init(&stable, "1.9.0", NULL);
    add_file(&stable, "acme-1.9.0-full.nupkg", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_NUPKG_FULL, 999);
    add_file(&stable, "acme-1.9.0-arm64-full.nupkg", UPD_PLATFORM_WINDOWS, UPD_ARCH_ARM64, UPD_KIND_NUPKG_FULL, 998);
    fixture_full_release(&fx);
    const upd_render_opts_t opts = {PUBLIC_URL, 25, &stable.rel};
    render(&fx, &opts, &set);

    char *body = strdup(get_feed(&set, "squirrel-win:x64+staged")->body);
    assert_int_equal(split_lines(body, lines, 8), 3);
    assert_entry(lines[0], "", &stable.files[0]);
    assert_entry(lines[1], "# 25%", &fx.files[10]);
    assert_entry(lines[2], "# 25%", &fx.files[9]);
    free(body);

    /* the stable release has nothing for ia32: only the staged lines */
    body = strdup(get_feed(&set, "squirrel-win:ia32+staged")->body);
    assert_int_equal(split_lines(body, lines, 8), 1);
    assert_entry(lines[0], "# 25%", &fx.files[11]);
    free(body);

    /* the plain variant, for personalised answers, carries no suffix */
    body = strdup(get_feed(&set, "squirrel-win:x64")->body);
    assert_int_equal(split_lines(body, lines, 8), 2);
    assert_entry(lines[1], "", &fx.files[9]);
    free(body);

    /* the release has no arm64 package, so the stable one's is not served as if staged */
    assert_null(find_feed(&set, "squirrel-win:arm64+staged"));
    upd_feed_set_dispose(&set);
}

/* Regression: the staging suffix was "#25%", which Squirrel.Windows strips as a comment (its staging pattern is
 * #\s+(\d{1,3})%$), so a partial release reached every non-personalised client. Byte for byte, then through
 * Squirrel's own two patterns. */
static void
test_staged_releases_suffix_is_what_squirrel_windows_parses_as_staging(void **state)
{
    fixture_t stable, fx;
    upd_feed_set_t set;
    char want[1024], sha1[3][UPD_SHA1_HEX_LEN + 1];

    fixture_init(&stable, "1.9.0", NULL);
    add_file(&stable, "acme-1.9.0-full.nupkg", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_NUPKG_FULL, 999);
    fixture_full_release(&fx);
    const upd_render_opts_t opts = {PUBLIC_URL, 25, &stable.rel};
    render(&fx, &opts, &set);
    const upd_file_t *files[3] = {&stable.files[0], &fx.files[10], &fx.files[9]};
    for (size_t k = 0; k != 3; ++k) {
        for (size_t i = 0; i != UPD_SHA1_HEX_LEN; ++i)
            sha1[k][i] = (char)toupper((unsigned char)files[k]->sha1[i]);
        sha1[k][UPD_SHA1_HEX_LEN] = '\0';
    }
    snprintf(want, sizeof(want), "%s %s %" PRIu64 "\n%s %s %" PRIu64 "# 25%%\n%s %s %" PRIu64 "# 25%%", sha1[0], files[0]->name,
             files[0]->size, sha1[1], files[1]->name, files[1]->size, sha1[2], files[2]->name, files[2]->size);
    const upd_feed_t *staged = get_feed(&set, "squirrel-win:x64+staged");
    assert_int_equal(staged->len, strlen(want));
    assert_memory_equal(staged->body, want, staged->len);

    /* Squirrel.Windows: staging from #\s+(\d{1,3})%$, then the entry with the comment stripped */
    regex_t staging, comment, entry;
    regmatch_t m[2];
    assert_int_equal(regcomp(&staging, "#[[:space:]]+([0-9]{1,3})%$", REG_EXTENDED), 0);
    assert_int_equal(regcomp(&comment, "[[:space:]]*#.*$", REG_EXTENDED), 0);
    assert_int_equal(regcomp(&entry, "^[0-9a-fA-F]{40}[[:space:]]+[^[:space:]]+[[:space:]]+[0-9]+$", REG_EXTENDED), 0);
    char *body = strdup(staged->body), *lines[8];
    assert_int_equal(split_lines(body, lines, 8), 3);
    for (size_t k = 1; k != 3; ++k) {
        assert_int_equal(regexec(&staging, lines[k], 2, m, 0), 0);
        assert_int_equal(atoi(lines[k] + m[1].rm_so), 25);
        assert_int_equal(regexec(&comment, lines[k], 1, m, 0), 0);
        lines[k][m[0].rm_so] = '\0';
        assert_int_equal(regexec(&entry, lines[k], 0, NULL, 0), 0);
    }
    assert_int_not_equal(regexec(&staging, lines[0], 0, NULL, 0), 0); /* the stable line is not staged */
    free(body);
    regfree(&staging);
    regfree(&comment);
    regfree(&entry);

    /* the plain variant (personalised answers) is the release's lines alone, without a suffix */
    const upd_feed_t *plain = get_feed(&set, "squirrel-win:x64");
    snprintf(want, sizeof(want), "%s %s %" PRIu64 "\n%s %s %" PRIu64, sha1[1], files[1]->name, files[1]->size, sha1[2],
             files[2]->name, files[2]->size);
    assert_int_equal(plain->len, strlen(want));
    assert_memory_equal(plain->body, want, plain->len);
    upd_feed_set_dispose(&set);
}

static void
test_squirrel_win_needs_a_full_package_with_a_known_sha1(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;

    fixture_init(&fx, "1.10.0", NULL);
    add_file(&fx, "acme-1.10.0-delta.nupkg", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_NUPKG_DELTA, 5);
    add_file(&fx, "acme-arm64-1.10.0-full.nupkg", UPD_PLATFORM_WINDOWS, UPD_ARCH_ARM64, UPD_KIND_NUPKG_FULL, 5)->sha1[0] = '\0';
    render(&fx, &plain_opts, &set);
    assert_int_equal(set.size, 0);
    upd_feed_set_dispose(&set);
}

/* --- Squirrel.Mac JSON -------------------------------------------------------------------------- */

static json_t *
json_load_feed(const upd_feed_t *feed, const char *const *keys, size_t n)
{
    json_error_t err;
    json_t *obj = json_loadb(feed->body, feed->len, 0, &err);
    if (obj == NULL)
        fail_msg("%s: %s", feed->key, err.text);
    assert_true(json_is_object(obj));
    for (size_t i = 0; i != n; ++i)
        if (!json_is_string(json_object_get(obj, keys[i])))
            fail_msg("%s: no string %s", feed->key, keys[i]);
    assert_int_equal(json_object_size(obj), n);
    return obj;
}

static const char *
jstr(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static const char *const squirrel_mac_keys[] = {"url", "name", "notes", "pub_date"};

static void
test_squirrel_mac_json_has_url_name_notes_pub_date(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;

    fixture_full_release(&fx);
    render(&fx, &plain_opts, &set);
    json_t *obj = json_load_feed(get_feed(&set, "squirrel-mac:x64"), squirrel_mac_keys, 4);
    assert_string_equal(jstr(obj, "url"), URL("Acme-1.10.0-mac.zip"));
    assert_string_equal(jstr(obj, "name"), "1.10.0");
    assert_string_equal(jstr(obj, "notes"), "Fixes the sync bug");
    assert_string_equal(jstr(obj, "pub_date"), "2026-11-29T01:52:31Z");
    json_decref(obj);

    obj = json_load_feed(get_feed(&set, "squirrel-mac:arm64"), squirrel_mac_keys, 4);
    assert_string_equal(jstr(obj, "url"), URL("Acme-1.10.0-arm64-mac.zip"));
    json_decref(obj);
    upd_feed_set_dispose(&set);
}

static void
test_squirrel_mac_falls_back_to_a_universal_zip(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;

    fixture_init(&fx, "1.10.0", NULL);
    add_file(&fx, "Acme-1.10.0-universal-mac.zip", UPD_PLATFORM_MAC, UPD_ARCH_UNIVERSAL, UPD_KIND_ZIP, 5);
    add_file(&fx, "Acme-1.10.0-arm64-mac.zip", UPD_PLATFORM_MAC, UPD_ARCH_ARM64, UPD_KIND_ZIP, 5);
    render(&fx, &plain_opts, &set);
    json_t *obj = json_load_feed(get_feed(&set, "squirrel-mac:x64"), squirrel_mac_keys, 4);
    assert_string_equal(jstr(obj, "url"), URL("Acme-1.10.0-universal-mac.zip"));
    assert_string_equal(jstr(obj, "notes"), ""); /* no notes: an empty string, the key kept */
    json_decref(obj);
    obj = json_load_feed(get_feed(&set, "squirrel-mac:arm64"), squirrel_mac_keys, 4);
    assert_string_equal(jstr(obj, "url"), URL("Acme-1.10.0-arm64-mac.zip")); /* its own arch wins */
    json_decref(obj);
    obj = json_load_feed(get_feed(&set, "squirrel-mac:universal"), squirrel_mac_keys, 4);
    assert_string_equal(jstr(obj, "url"), URL("Acme-1.10.0-universal-mac.zip"));
    json_decref(obj);
    upd_feed_set_dispose(&set);
}

/* --- Tauri JSON --------------------------------------------------------------------------------- */

static const char *const tauri_keys[] = {"version", "notes", "pub_date", "url", "signature"};

static void
test_tauri_json_carries_the_files_signature(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;

    fixture_full_release(&fx);
    render(&fx, &plain_opts, &set);
    json_t *obj = json_load_feed(get_feed(&set, "tauri:windows-x64"), tauri_keys, 5);
    assert_string_equal(jstr(obj, "version"), "1.10.0");
    assert_string_equal(jstr(obj, "notes"), "Fixes the sync bug");
    assert_string_equal(jstr(obj, "pub_date"), "2026-11-29T01:52:31Z");
    assert_string_equal(jstr(obj, "url"), URL("Acme-Setup-1.10.0.exe"));
    assert_string_equal(jstr(obj, "signature"), "exe-signature");
    json_decref(obj);

    /* a universal bundle answers both mac arches */
    for (int i = 0; i != 2; ++i) {
        obj = json_load_feed(get_feed(&set, i == 0 ? "tauri:mac-x64" : "tauri:mac-arm64"), tauri_keys, 5);
        assert_string_equal(jstr(obj, "url"), URL("Acme.app.tar.gz"));
        assert_string_equal(jstr(obj, "signature"), "mac-signature");
        json_decref(obj);
    }

    /* the AppImage has no signature, so its signed .tar.gz is offered */
    obj = json_load_feed(get_feed(&set, "tauri:linux-x64"), tauri_keys, 5);
    assert_string_equal(jstr(obj, "url"), URL("Acme.AppImage.tar.gz"));
    assert_string_equal(jstr(obj, "signature"), "linux-signature");
    json_decref(obj);
    upd_feed_set_dispose(&set);
}

static void
test_tauri_prefers_installers_in_each_platforms_order(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;

    fixture_init(&fx, "1.10.0", NULL);
    add_file(&fx, "Acme_1.10.0_x64_en-US.msi.zip", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_ZIP, 5)->signature = "z";
    add_file(&fx, "Acme_1.10.0_x64_en-US.msi", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_MSI, 5)->signature = "m";
    add_file(&fx, "acme_1.10.0_amd64.deb", UPD_PLATFORM_LINUX, UPD_ARCH_X64, UPD_KIND_DEB, 5)->signature = "d";
    add_file(&fx, "acme_1.10.0_amd64.AppImage", UPD_PLATFORM_LINUX, UPD_ARCH_X64, UPD_KIND_APPIMAGE, 5)->signature = "a";
    add_file(&fx, "Acme-arm64.app.zip", UPD_PLATFORM_MAC, UPD_ARCH_ARM64, UPD_KIND_ZIP, 5)->signature = "mz";
    render(&fx, &plain_opts, &set);

    json_t *obj = json_load_feed(get_feed(&set, "tauri:windows-x64"), tauri_keys, 5);
    assert_string_equal(jstr(obj, "signature"), "m");
    assert_string_equal(jstr(obj, "notes"), "");
    json_decref(obj);
    obj = json_load_feed(get_feed(&set, "tauri:linux-x64"), tauri_keys, 5);
    assert_string_equal(jstr(obj, "signature"), "a");
    json_decref(obj);
    /* Tauri unpacks only .tar.gz on mac: a signed zip is not offered */
    assert_null(find_feed(&set, "tauri:mac-arm64"));
    upd_feed_set_dispose(&set);
}

static void
test_tauri_platforms_without_a_signed_file_are_absent(void **state)
{
    fixture_t fx;
    upd_feed_set_t set;

    fixture_init(&fx, "1.10.0", NULL);
    add_file(&fx, "Acme-Setup-1.10.0.exe", UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, UPD_KIND_EXE, 5);
    add_file(&fx, "Acme-Setup-1.10.0-arm64.exe", UPD_PLATFORM_WINDOWS, UPD_ARCH_ARM64, UPD_KIND_EXE, 5)->signature = "";
    add_file(&fx, "Acme.app.tar.gz", UPD_PLATFORM_MAC, UPD_ARCH_ARM64, UPD_KIND_TAR_GZ, 5)->signature = "s";
    render(&fx, &plain_opts, &set);
    for (size_t i = 0; i != set.size; ++i)
        if (strncmp(set.entries[i].key, "tauri:", 6) == 0)
            assert_string_equal(set.entries[i].key, "tauri:mac-arm64");
    assert_non_null(find_feed(&set, "tauri:mac-arm64"));
    assert_null(find_feed(&set, "tauri:mac-x64")); /* an arm64 bundle does not answer x64 */
    upd_feed_set_dispose(&set);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feed_key_names_every_variant_clients_ask_for),
        cmocka_unit_test(test_feed_key_refuses_combinations_no_client_asks_for),
        cmocka_unit_test(test_render_emits_exactly_the_variants_the_files_support),
        cmocka_unit_test(test_partial_rollout_adds_staged_electron_and_squirrel_win_variants_only),
        cmocka_unit_test(test_release_without_files_renders_nothing),
        cmocka_unit_test(test_render_appends_to_a_set_that_already_has_entries),
        cmocka_unit_test(test_electron_windows_yaml_reads_back_with_every_field),
        cmocka_unit_test(test_version_is_quoted_so_no_yaml_reader_takes_it_for_a_number),
        cmocka_unit_test(test_sha512_with_plus_slash_and_padding_reads_back_unchanged),
        cmocka_unit_test(test_blockmap_size_appears_only_for_files_with_a_blockmap),
        cmocka_unit_test(test_windows_feed_falls_back_to_msi_when_there_is_no_exe),
        cmocka_unit_test(test_mac_feed_lists_zips_before_dmgs_and_points_path_at_a_zip),
        cmocka_unit_test(test_mac_without_zip_has_no_electron_feed),
        cmocka_unit_test(test_linux_feeds_are_per_arch_appimage_then_deb_then_rpm),
        cmocka_unit_test(test_staging_percentage_appears_only_in_staged_variants),
        cmocka_unit_test(test_release_notes_round_trip_as_strings),
        cmocka_unit_test(test_no_release_notes_key_when_the_release_has_none),
        cmocka_unit_test(test_without_public_url_electron_urls_are_absolute_paths),
        cmocka_unit_test(test_releases_lines_match_squirrels_entry_regex),
        cmocka_unit_test(test_staged_releases_lists_stable_lines_first_then_suffixed_lines),
        cmocka_unit_test(test_staged_releases_suffix_is_what_squirrel_windows_parses_as_staging),
        cmocka_unit_test(test_squirrel_win_needs_a_full_package_with_a_known_sha1),
        cmocka_unit_test(test_squirrel_mac_json_has_url_name_notes_pub_date),
        cmocka_unit_test(test_squirrel_mac_falls_back_to_a_universal_zip),
        cmocka_unit_test(test_tauri_json_carries_the_files_signature),
        cmocka_unit_test(test_tauri_prefers_installers_in_each_platforms_order),
        cmocka_unit_test(test_tauri_platforms_without_a_signed_file_are_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
