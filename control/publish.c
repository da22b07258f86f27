/*
 * Release and rollout state changes. Each runs in one LMDB write transaction: the release record,
 * its rendered feed bodies and download links, and the channel record (with a new generation) land
 * together or not at all. Feed bodies are rendered here, once, so the origin serialises nothing.
 */
#include "control/publish.h"
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "control/api_error.h"
#include "base/err.h"
#include "control/audit.h"
#include "control/mirror.h"
#include "domain/render.h"
#include "domain/version.h"
#include "base/log.h"

#define MAX_PINNED 10000

static int
fail(upd_reason_t *reason, int err, const char *code, const char *msg)
{
    return upd_reason_set(reason, err, code, "%s", msg);
}

/* A JSON number with at most two decimals, 0..100 → basis points. */
static int
percent_to_bp(json_t *v, uint32_t *bp)
{
    if (!json_is_number(v))
        return UPD_EINVAL;
    double p = json_number_value(v), scaled = p * 100.0, r = round(scaled);
    if (!(p >= 0.0 && p <= 100.0) || fabs(scaled - r) > 1e-6)
        return UPD_EINVAL;
    *bp = (uint32_t)r;
    return 0;
}

/* ---- rendering ---- */

static const struct {
    upd_platform_t platform;
    const char *format;
    upd_kind_t kind;
} download_formats[] = {
    {UPD_PLATFORM_WINDOWS, "exe", UPD_KIND_EXE},     {UPD_PLATFORM_WINDOWS, "msi", UPD_KIND_MSI},
    {UPD_PLATFORM_WINDOWS, "zip", UPD_KIND_ZIP},     {UPD_PLATFORM_MAC, "dmg", UPD_KIND_DMG},
    {UPD_PLATFORM_MAC, "zip", UPD_KIND_ZIP},         {UPD_PLATFORM_LINUX, "appimage", UPD_KIND_APPIMAGE},
    {UPD_PLATFORM_LINUX, "deb", UPD_KIND_DEB},       {UPD_PLATFORM_LINUX, "rpm", UPD_KIND_RPM},
    {UPD_PLATFORM_LINUX, "zip", UPD_KIND_ZIP},       {UPD_PLATFORM_LINUX, "tar.gz", UPD_KIND_TAR_GZ},
};

/* the arch a link without one prefers, per platform, in order */
static const upd_arch_t any_order[UPD_PLATFORM_COUNT][4] = {
    {UPD_ARCH_X64, UPD_ARCH_IA32, UPD_ARCH_ARM64, UPD_ARCH_UNIVERSAL},
    {UPD_ARCH_UNIVERSAL, UPD_ARCH_X64, UPD_ARCH_ARM64, UPD_ARCH_IA32},
    {UPD_ARCH_X64, UPD_ARCH_ARM64, UPD_ARCH_IA32, UPD_ARCH_UNIVERSAL},
};

static const upd_file_t *
find_download(const upd_release_t *rel, upd_platform_t p, upd_arch_t a, upd_kind_t k)
{
    for (size_t i = 0; i < rel->nfiles; ++i)
        if (rel->files[i].platform == p && rel->files[i].arch == a && rel->files[i].kind == k)
            return &rel->files[i];
    /* a universal mac build serves both Intel and Apple silicon */
    if (p == UPD_PLATFORM_MAC && (a == UPD_ARCH_X64 || a == UPD_ARCH_ARM64))
        return find_download(rel, p, UPD_ARCH_UNIVERSAL, k);
    return NULL;
}

static int
put_download(upd_store_txn_t *txn, const upd_release_t *rel, const char *platform, const char *arch, const char *format,
             const upd_file_t *f)
{
    char key[UPD_FEED_KEY_MAX + 32], path[UPD_ID_MAX + UPD_VERSION_MAX + UPD_FILENAME_MAX + 16];
    snprintf(key, sizeof(key), "download:%s:%s:%s", platform, arch, format);
    int len = snprintf(path, sizeof(path), "/artifacts/%s/%s/%s", rel->app, rel->version, f->name);
    return upd_store_feed_put(txn, rel->app, rel->version, key, path, (size_t)len);
}

static int
store_downloads(upd_store_txn_t *txn, const upd_release_t *rel)
{
    int err;
    for (size_t i = 0; i < sizeof(download_formats) / sizeof(download_formats[0]); ++i) {
        upd_platform_t p = download_formats[i].platform;
        const upd_file_t *any = NULL;
        for (int a = 0; a < UPD_ARCH_COUNT; ++a) {
            const upd_file_t *f = find_download(rel, p, (upd_arch_t)a, download_formats[i].kind);
            if (f != NULL && (err = put_download(txn, rel, upd_platform_name(p), upd_arch_name((upd_arch_t)a),
                                                 download_formats[i].format, f)) != 0)
                return err;
        }
        for (int j = 0; j < 4 && any == NULL; ++j)
            any = find_download(rel, p, any_order[p][j], download_formats[i].kind);
        if (any != NULL && (err = put_download(txn, rel, upd_platform_name(p), "any", download_formats[i].format, any)) != 0)
            return err;
    }
    return 0;
}

/* Renders every feed body of rel as the channel state ch now has it, replacing what was stored. */
static int
render_release(upd_control_t *c, upd_store_txn_t *txn, const upd_release_t *rel, const upd_channel_t *ch)
{
    bool in_rollout = strcmp(ch->rollout_version, rel->version) == 0;
    upd_release_t stable = {0};
    upd_render_opts_t opts = {.public_url = c->conf->public_url, .staged_percent = -1, .stable = NULL};
    int err;
    if (in_rollout) {
        /* stagingPercentage / #NN%: clients parseInt it, so the floor of the basis points */
        opts.staged_percent = (int)(ch->rollout.percent_bp / 100);
        if (ch->stable[0] != '\0' && upd_store_release_get(txn, rel->app, ch->stable, &stable) == 0)
            opts.stable = &stable;
    }
    upd_feed_set_t set = {0};
    if ((err = upd_store_feed_clear(txn, rel->app, rel->version)) == 0 && (err = upd_render_release(rel, &opts, &set)) == 0) {
        for (size_t i = 0; i < set.size && err == 0; ++i)
            err = upd_store_feed_put(txn, rel->app, rel->version, set.entries[i].key, set.entries[i].body, set.entries[i].len);
    }
    if (err == 0 && !in_rollout)
        err = store_downloads(txn, rel);
    upd_feed_set_dispose(&set);
    upd_release_dispose(&stable);
    return err;
}

/* ---- channel JSON ---- */

static int
collect_pin(const char *client, void *arg)
{
    json_array_append_new(arg, json_string(client));
    return 0;
}

typedef struct {
    const char *channel;
    json_t *releases;
    upd_store_txn_t *txn;
} list_ctx_t;

static int
collect_release(const upd_release_t *rel, void *arg)
{
    list_ctx_t *lc = arg;
    if (strcmp(rel->channel, lc->channel) != 0)
        return 0;
    json_t *j = upd_release_to_json(rel);
    /* the API shows every field, stored or not */
    if (json_object_get(j, "notes") == NULL)
        json_object_set_new(j, "notes", json_null());
    if (json_object_get(j, "pulled") == NULL)
        json_object_set_new(j, "pulled", json_false());
    if (json_object_get(j, "pulled_at") == NULL)
        json_object_set_new(j, "pulled_at", json_null());
    if (json_object_get(j, "pull_reason") == NULL)
        json_object_set_new(j, "pull_reason", json_null());
    uint64_t n = 0;
    upd_store_clients_count(lc->txn, rel->app, rel->channel, rel->version, &n);
    json_object_set_new(j, "clients_offered", json_integer((json_int_t)n));
    json_array_append_new(lc->releases, j);
    return 0;
}

static int
cmp_release_desc(const void *a, const void *b)
{
    const char *va = json_string_value(json_object_get(*(json_t *const *)a, "version"));
    const char *vb = json_string_value(json_object_get(*(json_t *const *)b, "version"));
    return -upd_version_cmp_str(va, strlen(va), vb, strlen(vb));
}

static json_t *
channel_json(upd_store_txn_t *txn, const char *app, const char *channel)
{
    upd_channel_t ch;
    if (upd_store_channel_get(txn, app, channel, &ch) != 0)
        return NULL;
    json_t *pins = json_array();
    upd_store_pins_list(txn, app, channel, collect_pin, pins);
    json_t *rollout = json_null();
    if (ch.rollout_version[0] != '\0') {
        json_t *countries = json_array();
        for (size_t i = 0; i < ch.rollout.ncountries; ++i)
            json_array_append_new(countries, json_stringn(ch.rollout.countries + 2 * i, 2));
        char seed[17];
        snprintf(seed, sizeof(seed), "%016" PRIx64, ch.rollout.seed);
        rollout = json_pack("{s:s, s:f, s:i, s:b, s:o, s:O, s:s}", "version", ch.rollout_version, "percent",
                            ch.rollout.percent_bp / 100.0, "percent_bp", (int)ch.rollout.percent_bp, "paused", ch.rollout.paused,
                            "countries", countries, "pinned", pins, "seed", seed);
    }
    list_ctx_t lc = {channel, json_array(), txn};
    upd_store_release_list(txn, app, collect_release, &lc);
    /* newest first, by SemVer precedence */
    size_t n = json_array_size(lc.releases);
    json_t **items = calloc(n + 1, sizeof(*items));
    for (size_t i = 0; i < n; ++i)
        items[i] = json_incref(json_array_get(lc.releases, i));
    qsort(items, n, sizeof(*items), cmp_release_desc);
    json_array_clear(lc.releases);
    for (size_t i = 0; i < n; ++i)
        json_array_append_new(lc.releases, items[i]);
    free(items);
    return json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:o}", "app", app, "channel", channel, "generation",
                     (json_int_t)ch.generation, "stable", ch.stable[0] ? json_string(ch.stable) : json_null(), "rollout", rollout,
                     "pinned", pins, "releases", lc.releases);
}

int
upd_publish_channel_show(upd_control_t *c, const char *app, const char *channel, json_t **out, upd_reason_t *reason)
{
    upd_store_txn_t *txn;
    *out = NULL;
    int err = upd_store_read_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    *out = channel_json(txn, app, channel);
    upd_store_txn_end(txn);
    if (*out == NULL)
        return fail(reason, UPD_ENOTFOUND, "not_found", "no such app or channel");
    return 0;
}

/* ---- apps ---- */

int
upd_publish_app_create(upd_control_t *c, upd_audit_ctx_t *audit, json_t *body, json_t **out, upd_reason_t *reason)
{
    *out = NULL;
    const char *id = json_string_value(json_object_get(body, "id"));
    json_t *name_j = json_object_get(body, "name");
    if (id == NULL || !upd_id_is_app(id, strlen(id)))
        return fail(reason, UPD_EINVAL, "invalid", "id: expected [a-z0-9][a-z0-9-]{0,62}");
    if (name_j != NULL && (!json_is_string(name_j) || json_string_length(name_j) > 200))
        return fail(reason, UPD_EINVAL, "invalid", "name: expected a string of at most 200 bytes");
    const char *name = name_j != NULL ? json_string_value(name_j) : id;
    snprintf(audit->app, sizeof(audit->app), "%s", id);
    json_t *rec = json_pack("{s:s, s:s, s:I}", "id", id, "name", name, "created", (json_int_t)time(NULL));
    char *text = json_dumps(rec, JSON_COMPACT);
    upd_store_txn_t *txn;
    int err = upd_store_write_begin(c->store, &txn);
    if (err == 0) {
        if ((err = upd_store_app_create(txn, id, text)) == 0 && (err = upd_audit_append(txn, audit)) == 0)
            err = upd_store_commit(txn);
        else
            upd_store_txn_end(txn);
    }
    free(text);
    if (err == UPD_EEXIST) {
        json_decref(rec);
        return upd_reason_set(reason, UPD_EEXIST, "exists", "app %s already exists", id);
    }
    if (err != 0) {
        json_decref(rec);
        return upd_api_store_fail(reason, err);
    }
    upd_log_info("app %s created", id);
    *out = rec;
    return 0;
}

/* Commits a change (the transaction ends either way), with the channel as GET shows it, read inside the same
 * transaction so the answer is exactly what was committed. *chj is NULL on failure. */
static int
commit_with_channel(upd_store_txn_t *txn, upd_audit_ctx_t *audit, const char *app, const char *channel, json_t **chj)
{
    *chj = channel_json(txn, app, channel);
    snprintf(audit->app, sizeof(audit->app), "%s", app);
    snprintf(audit->channel, sizeof(audit->channel), "%s", channel);
    /* the record goes in with the change, or neither does */
    int err = upd_audit_append(txn, audit);
    if (err != 0) {
        upd_store_txn_end(txn);
        json_decref(*chj);
        *chj = NULL;
        return err;
    }
    err = upd_store_commit(txn);
    if (err != 0) {
        json_decref(*chj);
        *chj = NULL;
    }
    return err;
}

/* After a committed change: publish the app's state, purge origins and edges by the change's tags, and report it
 * all in the answer's "propagation" (control/propagate.h). */
static void
attach_propagation(upd_control_t *c, json_t *out, const char *app, const char *channel, const char *const *versions, size_t n)
{
    if (c->propagate == NULL)
        return;
    json_t *tags = upd_propagate_tags(app, channel, versions, n);
    json_object_set_new(out, "propagation", upd_propagate_run(c->propagate, c->store, app, tags));
    json_decref(tags);
}

/* ---- releases ---- */

/* A release must be newer than the newest of its channel. @return 0 with *ch the channel (zeroed when new), or
 * UPD_ECONFLICT "not_newer" */
static int
check_newer(upd_store_txn_t *txn, const upd_release_t *rel, upd_channel_t *ch, upd_reason_t *reason)
{
    if (upd_store_channel_get(txn, rel->app, rel->channel, ch) != 0)
        memset(ch, 0, sizeof(*ch));
    const char *newest = ch->rollout_version[0] ? ch->rollout_version : ch->stable;
    if (newest[0] != '\0' && upd_version_cmp_str(rel->version, strlen(rel->version), newest, strlen(newest)) <= 0) {
        return upd_reason_set(reason, UPD_ECONFLICT, "not_newer", "version %s is not newer than %s, the newest on channel %s",
                              rel->version, newest, rel->channel);
    }
    return 0;
}

/* A version is registered once: as a release or as a draft, never both. @return 0 or UPD_EEXIST "exists" */
static int
check_unregistered(upd_store_txn_t *txn, const char *app, const char *version, upd_reason_t *reason)
{
    upd_release_t existing = {0};
    const char *json;
    size_t len;
    if (upd_store_release_get(txn, app, version, &existing) == 0) {
        upd_release_dispose(&existing);
        return upd_reason_set(reason, UPD_EEXIST, "exists", "version %s of %s is already registered", version, app);
    }
    if (upd_store_draft_get(txn, app, version, &json, &len) == 0)
        return upd_reason_set(reason, UPD_EEXIST, "exists", "version %s of %s is already registered as a draft", version, app);
    return 0;
}

/* A .nupkg name is one version's (Squirrel.Windows asks for it without a version): a draft is held to it too, so that
 * publishing it later does not fail on it. @return 0 or UPD_ECONFLICT "conflict" */
static int
check_nupkgs(upd_store_txn_t *txn, const upd_release_t *rel, upd_reason_t *reason)
{
    for (size_t i = 0; i < rel->nfiles; ++i) {
        const upd_file_t *f = &rel->files[i];
        char version[UPD_VERSION_MAX + 1];
        if ((f->kind == UPD_KIND_NUPKG_FULL || f->kind == UPD_KIND_NUPKG_DELTA) &&
            upd_store_nupkg_version(txn, rel->app, f->name, strlen(f->name), version) == 0 && strcmp(version, rel->version) != 0)
            return upd_reason_set(reason, UPD_ECONFLICT, "conflict", "%s is already a package of release %s", f->name, version);
    }
    return 0;
}

/* A release or a draft as the API shows it: every field, stored or not, and whether it is a draft. */
static json_t *
release_view(const upd_release_t *rel, bool draft)
{
    json_t *j = upd_release_to_json(rel);
    if (j == NULL)
        return NULL;
    if (json_object_get(j, "notes") == NULL)
        json_object_set_new(j, "notes", json_null());
    if (json_object_get(j, "pulled") == NULL)
        json_object_set_new(j, "pulled", json_false());
    if (json_object_get(j, "pulled_at") == NULL)
        json_object_set_new(j, "pulled_at", json_null());
    if (json_object_get(j, "pull_reason") == NULL)
        json_object_set_new(j, "pull_reason", json_null());
    json_object_set_new(j, "draft", json_boolean(draft));
    return j;
}

/*
 * Offers a release on its channel, in txn (a write transaction, ended here either way): the release stored, the
 * channel moved to it (stable at 100%, else a rollout with a fresh seed), its feeds rendered, the audit record appended,
 * committed, then propagated. A draft being published is deleted in the same transaction. *out as the one-call form.
 */
static int
offer(upd_control_t *c, upd_store_txn_t *txn, upd_audit_ctx_t *audit, upd_release_t *rel, uint32_t bp, bool from_draft,
      json_t *backends, json_t **out, upd_reason_t *reason)
{
    const char *app = rel->app;
    int err;
    upd_channel_t ch;
    if ((err = check_newer(txn, rel, &ch, reason)) != 0)
        goto Exit;
    if ((err = upd_store_release_put(txn, rel)) != 0) {
        if (err == UPD_EEXIST)
            upd_reason_set(reason, err, "exists", "version %s of %s is already registered", rel->version, app);
        else if (err == UPD_ECONFLICT)
            upd_reason_set(reason, err, "conflict", "a .nupkg of release %s has the name of another version's package",
                           rel->version);
        else
            err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    if (from_draft && (err = upd_store_draft_del(txn, app, rel->version)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    /* a new release supersedes any rollout in progress; the countries of the old one are not carried over */
    ch.rollout.countries = NULL;
    ch.rollout.ncountries = 0;
    ch.rollout.paused = false;
    if (bp == UPD_ROLLOUT_BASIS_POINTS) {
        strcpy(ch.stable, rel->version);
        ch.rollout_version[0] = '\0';
        ch.rollout.percent_bp = 0;
        ch.rollout.seed = 0;
    } else {
        strcpy(ch.rollout_version, rel->version);
        ch.rollout.percent_bp = bp;
        /* a fresh seed per rollout, so the same clients are not always first */
        if (RAND_bytes((unsigned char *)&ch.rollout.seed, sizeof(ch.rollout.seed)) != 1) {
            err = fail(reason, UPD_EIO, "entropy", "no random bytes for the rollout seed");
            goto Exit;
        }
    }
    ++ch.generation;
    if ((err = render_release(c, txn, rel, &ch)) != 0 || (err = upd_store_channel_put(txn, app, rel->channel, &ch)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    json_t *chj;
    upd_audit_detail(audit, "percent", json_real(bp / 100.0));
    upd_audit_detail(audit, "files", json_integer((json_int_t)rel->nfiles));
    snprintf(audit->version, sizeof(audit->version), "%s", rel->version);
    err = commit_with_channel(txn, audit, app, rel->channel, &chj);
    txn = NULL;
    if (err != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    upd_log_info("release %s %s %s on %s at %u.%02u%%", app, rel->version, from_draft ? "published" : "registered", rel->channel,
                 bp / 100, bp % 100);
    *out = json_pack("{s:o, s:o, s:o}", "release", release_view(rel, false), "channel", chj, "backends",
                     backends != NULL ? json_incref(backends) : json_object());
    const char *versions[] = {rel->version};
    attach_propagation(c, *out, app, rel->channel, versions, 1);
    err = 0;
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    return err;
}

/* A release without a channel: checked and mirrored as any, then kept in drafts, offered to nobody. */
static int
register_draft(upd_control_t *c, upd_audit_ctx_t *audit, upd_release_t *rel, json_t *body, json_t **out, upd_reason_t *reason)
{
    const char *app = rel->app;
    upd_store_txn_t *txn = NULL;
    json_t *backends = NULL, *rec = NULL;
    char *text = NULL;
    int err;
    snprintf(audit->action, sizeof(audit->action), "release.draft");
    audit->channel[0] = '\0';
    json_t *rollout = json_object_get(body, "rollout");
    if (rollout != NULL && !json_is_null(rollout))
        return fail(reason, UPD_EINVAL, "invalid",
                    "rollout: a draft has no rollout; give it when publishing (POST /v1/apps/APP/releases/VERSION/publish)");
    /* refused before any file is hashed when it would be refused anyway; checked again in the write transaction */
    if ((err = upd_store_read_begin(c->store, &txn)) != 0)
        return upd_api_store_fail(reason, err);
    const char *app_json;
    size_t app_len;
    if (upd_store_app_get(txn, app, &app_json, &app_len) != 0)
        err = fail(reason, UPD_ENOTFOUND, "not_found", "unknown app");
    else if ((err = check_unregistered(txn, app, rel->version, reason)) == 0)
        err = check_nupkgs(txn, rel, reason);
    upd_store_txn_end(txn);
    txn = NULL;
    if (err != 0)
        return err;
    if ((err = upd_mirror_release(c, rel, &backends, reason)) != 0)
        return err;

    if ((err = upd_store_write_begin(c->store, &txn)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    if ((err = check_unregistered(txn, app, rel->version, reason)) != 0 || (err = check_nupkgs(txn, rel, reason)) != 0)
        goto Exit;
    /* the draft's record: the release as it will be stored, and what its registration put on which backend */
    if ((rec = upd_release_to_json(rel)) == NULL || json_object_set(rec, "backends", backends) != 0 ||
        (text = json_dumps(rec, JSON_COMPACT)) == NULL) {
        err = fail(reason, UPD_ENOMEM, "internal", "out of memory");
        goto Exit;
    }
    if ((err = upd_store_draft_put(txn, app, rel->version, text)) != 0) {
        if (err == UPD_EEXIST)
            upd_reason_set(reason, err, "exists", "version %s of %s is already registered as a draft", rel->version, app);
        else
            err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    snprintf(audit->app, sizeof(audit->app), "%s", app);
    upd_audit_detail(audit, "files", json_integer((json_int_t)rel->nfiles));
    if ((err = upd_audit_append(txn, audit)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    err = upd_store_commit(txn);
    txn = NULL;
    if (err != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    upd_log_info("release %s %s registered as a draft", app, rel->version);
    *out = json_pack("{s:o, s:O}", "release", release_view(rel, true), "backends", backends);
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    free(text);
    json_decref(rec);
    json_decref(backends);
    return err;
}

int
upd_publish_release(upd_control_t *c, upd_audit_ctx_t *audit, const char *app, json_t *body, json_t **out, upd_reason_t *reason)
{
    char errbuf[512];
    upd_release_t rel = {0};
    uint32_t bp = UPD_ROLLOUT_BASIS_POINTS;
    int err;
    upd_store_txn_t *txn = NULL;
    json_t *backends = NULL;

    *out = NULL;
    if (upd_release_from_request(app, body, (int64_t)time(NULL), &rel, errbuf, sizeof(errbuf)) != 0)
        return fail(reason, UPD_EINVAL, "invalid", errbuf);
    snprintf(audit->version, sizeof(audit->version), "%s", rel.version);
    snprintf(audit->channel, sizeof(audit->channel), "%s", rel.channel);
    if (rel.channel[0] == '\0') {
        err = register_draft(c, audit, &rel, body, out, reason);
        upd_release_dispose(&rel);
        return err;
    }
    json_t *rollout = json_object_get(body, "rollout");
    if (rollout != NULL && !json_is_null(rollout)) {
        json_t *p = json_object_get(rollout, "percent");
        if (!json_is_object(rollout) || (p != NULL && percent_to_bp(p, &bp) != 0)) {
            err = fail(reason, UPD_EINVAL, "invalid", "rollout.percent: expected a number from 0 to 100 with at most two decimals");
            goto Exit;
        }
    }

    /* the app must exist before any file is hashed */
    if ((err = upd_store_read_begin(c->store, &txn)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    const char *app_json;
    size_t app_len;
    err = upd_store_app_get(txn, app, &app_json, &app_len);
    if (err != 0) {
        err = fail(reason, UPD_ENOTFOUND, "not_found", "unknown app");
        goto Exit;
    }
    /*
     * A release that would be refused anyway is refused before its files are hashed and sent to object storage. The
     * write transaction checks again: another registration may land in between.
     */
    upd_channel_t ch_before;
    if ((err = check_newer(txn, &rel, &ch_before, reason)) != 0 || (err = check_unregistered(txn, app, rel.version, reason)) != 0)
        goto Exit;
    upd_store_txn_end(txn);
    txn = NULL;
    /* staged files hashed and checked, then put on (or checked against) every backend: before any state changes */
    if ((err = upd_mirror_release(c, &rel, &backends, reason)) != 0)
        goto Exit;

    if ((err = upd_store_write_begin(c->store, &txn)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    if ((err = check_unregistered(txn, app, rel.version, reason)) != 0)
        goto Exit;
    err = offer(c, txn, audit, &rel, bp, false, backends, out, reason);
    txn = NULL;
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    json_decref(backends);
    upd_release_dispose(&rel);
    return err;
}

/* ---- drafts ---- */

/* Reads a draft's record: the release and the backends its registration reported. @return 0, UPD_ENOTFOUND, UPD_ESTORE
 * (a record that does not read back) */
static int
draft_get(upd_store_txn_t *txn, const char *app, const char *version, upd_release_t *rel, json_t **backends)
{
    const char *text;
    size_t len;
    int err = upd_store_draft_get(txn, app, version, &text, &len);
    if (err != 0)
        return err;
    json_t *rec = json_loadb(text, len, 0, NULL);
    err = rec != NULL && upd_release_from_json(rec, rel) == 0 ? 0 : UPD_ESTORE;
    if (err == 0 && backends != NULL) {
        json_t *b = json_object_get(rec, "backends");
        *backends = json_is_object(b) ? json_incref(b) : json_object();
    }
    json_decref(rec);
    if (err != 0)
        upd_log_error("store: the draft %s %s does not read back as a release", app, version);
    return err;
}

int
upd_publish_draft(upd_control_t *c, upd_audit_ctx_t *audit, const char *app, const char *version, json_t *body, json_t **out,
                  upd_reason_t *reason)
{
    const char *k, *channel = NULL;
    json_t *v;
    uint32_t bp = UPD_ROLLOUT_BASIS_POINTS;
    *out = NULL;
    snprintf(audit->app, sizeof(audit->app), "%s", app);
    snprintf(audit->version, sizeof(audit->version), "%s", version);
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "channel") == 0) {
            channel = json_string_value(v);
            if (channel == NULL || json_string_length(v) != strlen(channel) || !upd_id_is_channel(channel, strlen(channel)))
                return fail(reason, UPD_EINVAL, "invalid", "channel: expected [a-z0-9][a-z0-9-]{0,62}");
        } else if (strcmp(k, "rollout") == 0) {
            json_t *p = json_object_get(v, "percent");
            if (!json_is_null(v) && (!json_is_object(v) || (p != NULL && percent_to_bp(p, &bp) != 0)))
                return fail(reason, UPD_EINVAL, "invalid",
                            "rollout.percent: expected a number from 0 to 100 with at most two decimals");
        } else {
            return upd_reason_set(reason, UPD_EINVAL, "invalid", "%s: unknown field (channel, rollout)", k);
        }
    }
    if (channel == NULL)
        return fail(reason, UPD_EINVAL, "invalid", "channel: required, the channel to publish the draft to");
    snprintf(audit->channel, sizeof(audit->channel), "%s", channel);

    upd_store_txn_t *txn;
    upd_release_t rel = {0};
    json_t *backends = NULL;
    int err = upd_store_write_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    const char *app_json;
    size_t app_len;
    if (upd_store_app_get(txn, app, &app_json, &app_len) != 0) {
        err = fail(reason, UPD_ENOTFOUND, "not_found", "unknown app");
        goto Exit;
    }
    if ((err = draft_get(txn, app, version, &rel, &backends)) != 0) {
        if (err == UPD_ENOTFOUND) {
            upd_release_t existing = {0};
            if (upd_store_release_get(txn, app, version, &existing) == 0)
                err = upd_reason_set(reason, UPD_EEXIST, "exists", "version %s of %s is already published (on %s)", version, app,
                                     existing.channel);
            else
                upd_reason_set(reason, err, "not_found", "%s has no draft %s", app, version);
            upd_release_dispose(&existing);
        } else {
            err = upd_api_store_fail(reason, err);
        }
        goto Exit;
    }
    snprintf(rel.channel, sizeof(rel.channel), "%s", channel);
    /* its date is the day it is offered */
    upd_release_format_time((int64_t)time(NULL), rel.pub_date);
    err = offer(c, txn, audit, &rel, bp, true, backends, out, reason);
    txn = NULL;
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    json_decref(backends);
    upd_release_dispose(&rel);
    return err;
}

/* ---- reading releases ---- */

static int
app_exists(upd_store_txn_t *txn, const char *app)
{
    const char *json;
    size_t len;
    return upd_store_app_get(txn, app, &json, &len);
}

static int
collect_view(const upd_release_t *rel, void *arg)
{
    json_t *j = release_view(rel, false);
    if (j != NULL)
        json_array_append_new(arg, j);
    return 0;
}

static int
collect_draft(const char *version, const char *text, size_t len, void *arg)
{
    json_t *rec = json_loadb(text, len, 0, NULL);
    upd_release_t rel;
    if (rec != NULL && upd_release_from_json(rec, &rel) == 0) {
        json_t *j = release_view(&rel, true);
        if (j != NULL)
            json_array_append_new(arg, j);
        upd_release_dispose(&rel);
    } else {
        upd_log_error("store: the draft %s does not read back as a release: left out", version);
    }
    json_decref(rec);
    return 0;
}

/* Sorts an array of releases newest first, by SemVer precedence. */
static void
sort_newest_first(json_t *a)
{
    size_t n = json_array_size(a);
    json_t **items = calloc(n + 1, sizeof(*items));
    if (items == NULL)
        abort();
    for (size_t i = 0; i < n; ++i)
        items[i] = json_incref(json_array_get(a, i));
    qsort(items, n, sizeof(*items), cmp_release_desc);
    json_array_clear(a);
    for (size_t i = 0; i < n; ++i)
        json_array_append_new(a, items[i]);
    free(items);
}

int
upd_publish_release_list(upd_control_t *c, const char *app, json_t **out, upd_reason_t *reason)
{
    upd_store_txn_t *txn;
    *out = NULL;
    int err = upd_store_read_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    json_t *releases = json_array(), *drafts = json_array();
    if (app_exists(txn, app) != 0)
        err = fail(reason, UPD_ENOTFOUND, "not_found", "unknown app");
    else if ((err = upd_store_release_list(txn, app, collect_view, releases)) != 0 ||
             (err = upd_store_draft_list(txn, app, collect_draft, drafts)) != 0)
        err = upd_api_store_fail(reason, err);
    upd_store_txn_end(txn);
    if (err != 0) {
        json_decref(releases);
        json_decref(drafts);
        return err;
    }
    sort_newest_first(releases);
    sort_newest_first(drafts);
    *out = json_pack("{s:o, s:o}", "releases", releases, "drafts", drafts);
    return 0;
}

int
upd_publish_release_show(upd_control_t *c, const char *app, const char *version, json_t **out, upd_reason_t *reason)
{
    upd_store_txn_t *txn;
    upd_release_t rel = {0};
    *out = NULL;
    int err = upd_store_read_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    if (app_exists(txn, app) != 0) {
        err = fail(reason, UPD_ENOTFOUND, "not_found", "unknown app");
    } else if ((err = upd_store_release_get(txn, app, version, &rel)) == 0) {
        *out = release_view(&rel, false);
    } else if (err == UPD_ENOTFOUND && (err = draft_get(txn, app, version, &rel, NULL)) == 0) {
        *out = release_view(&rel, true);
    } else if (err == UPD_ENOTFOUND) {
        upd_reason_set(reason, err, "not_found", "%s has no release or draft %s", app, version);
    } else {
        err = upd_api_store_fail(reason, err);
    }
    upd_store_txn_end(txn);
    upd_release_dispose(&rel);
    return err;
}

/* ---- rollouts ---- */

int
upd_publish_rollout(upd_control_t *c, upd_audit_ctx_t *audit, const char *app, const char *channel, json_t *body, json_t **out,
                    upd_reason_t *reason)
{
    json_t *percent = NULL, *paused = NULL, *countries = NULL, *pinned = NULL;
    const char *key;
    json_t *value;
    uint32_t bp = 0;
    char country_buf[2 * UPD_ROLLOUT_MAX_COUNTRIES];
    size_t ncountries = 0;

    *out = NULL;
    if (!json_is_object(body))
        return fail(reason, UPD_EINVAL, "invalid", "expected a JSON object");
    json_object_foreach(body, key, value)
    {
        if (strcmp(key, "percent") == 0)
            percent = value;
        else if (strcmp(key, "paused") == 0)
            paused = value;
        else if (strcmp(key, "countries") == 0)
            countries = value;
        else if (strcmp(key, "pinned") == 0)
            pinned = value;
        else {
            return upd_reason_set(reason, UPD_EINVAL, "invalid", "%s: unknown field (percent, paused, countries, pinned)", key);
        }
    }
    if (percent != NULL && percent_to_bp(percent, &bp) != 0)
        return fail(reason, UPD_EINVAL, "invalid", "percent: expected a number from 0 to 100 with at most two decimals");
    if (paused != NULL && !json_is_boolean(paused))
        return fail(reason, UPD_EINVAL, "invalid", "paused: expected true or false");
    if (countries != NULL) {
        if (!json_is_array(countries) || json_array_size(countries) > UPD_ROLLOUT_MAX_COUNTRIES)
            return fail(reason, UPD_EINVAL, "invalid", "countries: expected a list of at most 250 ISO 3166-1 alpha-2 codes");
        size_t i;
        json_t *cj;
        json_array_foreach(countries, i, cj)
        {
            const char *cc = json_string_value(cj);
            if (cc == NULL || !upd_id_is_country(cc, strlen(cc))) {
                return upd_reason_set(reason, UPD_EINVAL, "invalid", "countries[%zu]: expected two upper-case letters (DE, FR)", i);
            }
            bool dup = false;
            for (size_t k = 0; k < ncountries; ++k)
                dup = dup || memcmp(country_buf + 2 * k, cc, 2) == 0;
            if (!dup)
                memcpy(country_buf + 2 * ncountries++, cc, 2);
        }
    }
    const char **pins = NULL;
    size_t npins = 0;
    if (pinned != NULL) {
        if (!json_is_array(pinned) || json_array_size(pinned) > MAX_PINNED)
            return fail(reason, UPD_EINVAL, "invalid", "pinned: expected a list of at most 10000 client ids");
        pins = calloc(json_array_size(pinned) + 1, sizeof(*pins));
        size_t i;
        json_t *pj;
        json_array_foreach(pinned, i, pj)
        {
            const char *id = json_string_value(pj);
            if (id == NULL || !upd_id_is_client(id, strlen(id))) {
                free(pins);
                return upd_reason_set(reason, UPD_EINVAL, "invalid", "pinned[%zu]: expected 1-128 bytes of [A-Za-z0-9._:-]", i);
            }
            pins[npins++] = id;
        }
    }

    upd_store_txn_t *txn;
    upd_release_t rel = {0};
    int err = upd_store_write_begin(c->store, &txn);
    if (err != 0) {
        free(pins);
        return upd_api_store_fail(reason, err);
    }
    upd_channel_t ch;
    if (upd_store_channel_get(txn, app, channel, &ch) != 0) {
        err = fail(reason, UPD_ENOTFOUND, "not_found", "no such app or channel (register a release first)");
        goto Exit;
    }
    /* the versions whose answers this change can touch, for the purge tags */
    char rollout_before[UPD_VERSION_MAX + 1], stable_before[UPD_VERSION_MAX + 1];
    strcpy(rollout_before, ch.rollout_version);
    strcpy(stable_before, ch.stable);
    /* the record's countries point into the map, which a put in this transaction may move */
    char old_countries[2 * UPD_ROLLOUT_MAX_COUNTRIES];
    memcpy(old_countries, ch.rollout.countries, 2 * ch.rollout.ncountries);
    ch.rollout.countries = old_countries;
    bool has_rollout = ch.rollout_version[0] != '\0';
    if ((percent != NULL || paused != NULL || countries != NULL) && !has_rollout) {
        err = upd_reason_set(reason, UPD_ECONFLICT, "no_rollout", "channel %s of %s has no rollout in progress", channel, app);
        goto Exit;
    }
    bool will_pause = paused != NULL ? json_is_true(paused) : ch.rollout.paused;
    if (percent != NULL && will_pause && bp != ch.rollout.percent_bp) {
        err =
            fail(reason, UPD_ECONFLICT, "paused", "the rollout is paused: resume it (paused:false) before changing the percentage");
        goto Exit;
    }
    if (has_rollout) {
        ch.rollout.paused = will_pause;
        if (countries != NULL) {
            ch.rollout.countries = country_buf;
            ch.rollout.ncountries = ncountries;
        }
    }
    bool rerender = percent != NULL && bp != ch.rollout.percent_bp;
    if (has_rollout && (err = upd_store_release_get(txn, app, ch.rollout_version, &rel)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    if (percent != NULL) {
        if (bp == UPD_ROLLOUT_BASIS_POINTS) {
            /* fully released: the rollout version becomes the channel's stable one */
            strcpy(ch.stable, ch.rollout_version);
            ch.rollout_version[0] = '\0';
            ch.rollout.ncountries = 0;
            ch.rollout.paused = false;
            rerender = true;
        }
        ch.rollout.percent_bp = bp == UPD_ROLLOUT_BASIS_POINTS ? 0 : bp;
    }
    if (pinned != NULL && (err = upd_store_pins_set(txn, app, channel, pins, npins)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    ++ch.generation;
    if ((rerender && (err = render_release(c, txn, &rel, &ch)) != 0) || (err = upd_store_channel_put(txn, app, channel, &ch)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    json_t *chj;
    /* what was asked: the percentage, pause, countries and pinned testers as sent */
    upd_audit_detail(audit, "rollout", json_deep_copy(body));
    err = commit_with_channel(txn, audit, app, channel, &chj);
    txn = NULL;
    if (err != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    upd_log_info("rollout of %s/%s updated (generation %" PRIu64 ")", app, channel, ch.generation);
    *out = chj;
    const char *versions[] = {rollout_before, stable_before, ch.stable};
    attach_propagation(c, *out, app, channel, versions, 3);
    err = 0;
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    upd_release_dispose(&rel);
    free(pins);
    return err;
}

/* ---- pulling a release ---- */

typedef struct {
    const char *channel, *below;
    char best[UPD_VERSION_MAX + 1]; /* "" until one is found */
} fallback_ctx_t;

/* The newest release of the channel older than the pulled one, not itself pulled. */
static int
find_fallback(const upd_release_t *rel, void *arg)
{
    fallback_ctx_t *fc = arg;
    size_t vl = strlen(rel->version);
    if (rel->pulled || strcmp(rel->channel, fc->channel) != 0 ||
        upd_version_cmp_str(rel->version, vl, fc->below, strlen(fc->below)) >= 0)
        return 0;
    if (fc->best[0] == '\0' || upd_version_cmp_str(rel->version, vl, fc->best, strlen(fc->best)) > 0)
        strcpy(fc->best, rel->version);
    return 0;
}

/* Re-renders a release of the channel as ch now has it (none when version is ""). */
static int
rerender(upd_control_t *c, upd_store_txn_t *txn, const char *app, const char *version, const upd_channel_t *ch)
{
    upd_release_t rel = {0};
    int err;
    if (version[0] == '\0')
        return 0;
    if ((err = upd_store_release_get(txn, app, version, &rel)) == 0)
        err = render_release(c, txn, &rel, ch);
    upd_release_dispose(&rel);
    return err;
}

int
upd_publish_pull(upd_control_t *c, upd_audit_ctx_t *audit, const char *app, const char *version, json_t *body, json_t **out,
                 upd_reason_t *reason)
{
    const char *why_given = NULL, *key;
    json_t *value;

    *out = NULL;
    snprintf(audit->app, sizeof(audit->app), "%s", app);
    snprintf(audit->version, sizeof(audit->version), "%s", version);
    if (body != NULL) {
        if (!json_is_object(body))
            return fail(reason, UPD_EINVAL, "invalid", "expected a JSON object");
        json_object_foreach(body, key, value)
        {
            if (strcmp(key, "reason") != 0) {
                return upd_reason_set(reason, UPD_EINVAL, "invalid", "%s: unknown field (reason)", key);
            }
            if (json_is_null(value))
                continue;
            if (!json_is_string(value) || json_string_length(value) > UPD_PULL_REASON_MAX ||
                memchr(json_string_value(value), '\0', json_string_length(value)) != NULL) {
                return upd_reason_set(reason, UPD_EINVAL, "invalid", "reason: expected a string of at most %d bytes",
                                      UPD_PULL_REASON_MAX);
            }
            if (json_string_length(value) != 0)
                why_given = json_string_value(value);
        }
    }

    upd_store_txn_t *txn;
    upd_release_t rel = {0};
    int err = upd_store_write_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    const char *app_json;
    size_t app_len;
    if (upd_store_app_get(txn, app, &app_json, &app_len) != 0) {
        err = fail(reason, UPD_ENOTFOUND, "not_found", "unknown app");
        goto Exit;
    }
    if ((err = upd_store_release_get(txn, app, version, &rel)) != 0) {
        if (err == UPD_ENOTFOUND)
            upd_reason_set(reason, err, "not_found", "%s has no release %s", app, version);
        else
            err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    if (rel.pulled) {
        err = upd_reason_set(reason, UPD_ECONFLICT, "pulled", "release %s of %s was already pulled (at %s)", version, app,
                             rel.pulled_at);
        goto Exit;
    }
    upd_channel_t ch;
    if ((err = upd_store_channel_get(txn, app, rel.channel, &ch)) != 0) {
        /* a registered release always has its channel */
        err = upd_api_store_fail(reason, err == UPD_ENOTFOUND ? UPD_ESTORE : err);
        goto Exit;
    }
    /* the record's countries point into the map, which the rewrite below moves */
    char countries[2 * UPD_ROLLOUT_MAX_COUNTRIES];
    if (ch.rollout.ncountries != 0)
        memcpy(countries, ch.rollout.countries, 2 * ch.rollout.ncountries);
    ch.rollout.countries = countries;

    rel.pulled = true;
    upd_release_format_time((int64_t)time(NULL), rel.pulled_at);
    if (why_given != NULL && (rel.pull_reason = strdup(why_given)) == NULL)
        abort();
    /* its feeds go (nothing may offer it again); its files stay: clients mid-download finish, and the .nupkg and
     * blockmaps stay where electron-updater and Squirrel.Windows look for them */
    if ((err = upd_store_release_replace(txn, &rel)) != 0 || (err = upd_store_feed_clear(txn, app, version)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    enum { WAS_ROLLOUT, WAS_STABLE, WAS_SUPERSEDED } was;
    static const char *const was_names[] = {"rollout", "stable", "superseded"};
    if (strcmp(ch.rollout_version, version) == 0) {
        /* the rollout ends: everyone is offered the stable version again */
        was = WAS_ROLLOUT;
        ch.rollout_version[0] = '\0';
        ch.rollout.percent_bp = 0;
        ch.rollout.seed = 0;
        ch.rollout.paused = false;
        ch.rollout.ncountries = 0;
    } else if (strcmp(ch.stable, version) == 0) {
        /* the newest older release not itself pulled, or none: the channel then has no stable version */
        was = WAS_STABLE;
        fallback_ctx_t fc = {.channel = rel.channel, .below = version};
        if ((err = upd_store_release_list(txn, app, find_fallback, &fc)) != 0) {
            err = upd_api_store_fail(reason, err);
            goto Exit;
        }
        strcpy(ch.stable, fc.best);
    } else {
        /* already superseded: marked, so that it is never a fallback; what clients are offered does not change */
        was = WAS_SUPERSEDED;
    }
    ++ch.generation;
    /* the stable version's feeds and download links, and a rollout's staged Squirrel.Windows answer, which lists the
     * stable release's packages */
    if ((was != WAS_SUPERSEDED && (err = rerender(c, txn, app, ch.stable, &ch)) != 0) ||
        (was == WAS_STABLE && (err = rerender(c, txn, app, ch.rollout_version, &ch)) != 0) ||
        (err = upd_store_channel_put(txn, app, rel.channel, &ch)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    json_t *chj;
    err = commit_with_channel(txn, audit, app, rel.channel, &chj);
    txn = NULL;
    if (err != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    /* the reason as one log line: control characters become spaces */
    char why[UPD_PULL_REASON_MAX + 1];
    snprintf(why, sizeof(why), "%s", why_given != NULL ? why_given : "no reason given");
    for (char *p = why; *p != '\0'; ++p)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    upd_log_info("release %s %s pulled from %s: %s", app, version, rel.channel, why);
    upd_log_info("channel %s/%s after the pull of %s %s: stable %s, rollout %s (generation %" PRIu64 ")", app, rel.channel,
                 was_names[was], version, ch.stable[0] ? ch.stable : "none", ch.rollout_version[0] ? ch.rollout_version : "none",
                 ch.generation);
    *out = chj;
    const char *versions[] = {version, ch.stable, ch.rollout_version};
    attach_propagation(c, *out, app, rel.channel, versions, 3);
    err = 0;
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    upd_release_dispose(&rel);
    return err;
}
