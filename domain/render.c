#include "domain/render.h"
#include "base/err.h"
#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* A growing NUL-terminated byte buffer; the YAML emitter and the RELEASES writer append to it. */
typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static int
buf_append(buf_t *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 512;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return UPD_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int
buf_printf(buf_t *b, const char *fmt, ...)
{
    char small[256], *s = small;
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return UPD_ENOMEM;
    if ((size_t)n >= sizeof(small)) {
        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
            return UPD_ENOMEM;
    }
    int ret = buf_append(b, s, (size_t)n);
    if (s != small)
        free(s);
    return ret;
}

/* Appends a NUL-terminated part to the key being built (the parts are fixed names: they always fit). */
static size_t
key_put(char *buf, size_t n, const char *part)
{
    size_t l = strlen(part);
    memcpy(buf + n, part, l + 1);
    return n + l;
}

/* Assembled with memcpy rather than snprintf: this runs on every update check. */
int
upd_feed_key(upd_feed_format_t fmt, upd_platform_t platform, upd_arch_t arch, int staged, char buf[UPD_FEED_KEY_MAX])
{
    size_t n;

    if ((unsigned)platform >= UPD_PLATFORM_COUNT || (unsigned)arch >= UPD_ARCH_COUNT)
        return UPD_EINVAL;
    switch (fmt) {
    case UPD_FEED_ELECTRON:
        if (platform != UPD_PLATFORM_LINUX) {
            /* latest.yml and latest-mac.yml list every arch's installer; the client picks its own */
            n = key_put(buf, key_put(buf, 0, "electron:"), upd_platform_name(platform));
        } else if (arch == UPD_ARCH_X64) {
            /* electron-updater asks for latest-linux.yml on x64 and latest-linux-ARCH.yml elsewhere */
            n = key_put(buf, 0, "electron:linux");
        } else if (arch == UPD_ARCH_UNIVERSAL) {
            return UPD_EINVAL;
        } else {
            n = key_put(buf, key_put(buf, 0, "electron:linux-"), upd_arch_name(arch));
        }
        break;
    case UPD_FEED_SQUIRREL_MAC:
        /* no native staging: a non-personalised answer is another release's plain variant */
        if (arch == UPD_ARCH_IA32 || staged)
            return UPD_EINVAL;
        n = key_put(buf, key_put(buf, 0, "squirrel-mac:"), upd_arch_name(arch));
        break;
    case UPD_FEED_SQUIRREL_WIN:
        if (arch == UPD_ARCH_UNIVERSAL)
            return UPD_EINVAL;
        n = key_put(buf, key_put(buf, 0, "squirrel-win:"), upd_arch_name(arch));
        break;
    case UPD_FEED_TAURI:
        /* Tauri clients report the machine's own arch, so "universal" is never asked for (a universal
         * file answers mac-x64 and mac-arm64 instead), and there is no 32-bit mac */
        if (staged || arch == UPD_ARCH_UNIVERSAL || (platform == UPD_PLATFORM_MAC && arch == UPD_ARCH_IA32))
            return UPD_EINVAL;
        n = key_put(buf, key_put(buf, key_put(buf, 0, "tauri:"), upd_platform_name(platform)), "-");
        n = key_put(buf, n, upd_arch_name(arch));
        break;
    default:
        return UPD_EINVAL;
    }
    if (staged)
        n = key_put(buf, n, "+staged");
    return (int)n;
}

static int
set_take(upd_feed_set_t *set, const char *key, char *body, size_t len)
{
    if (set->size == set->capacity) {
        size_t cap = set->capacity != 0 ? set->capacity * 2 : 16;
        upd_feed_t *entries = realloc(set->entries, cap * sizeof(*entries));
        if (entries == NULL) {
            free(body);
            return UPD_ENOMEM;
        }
        set->entries = entries;
        set->capacity = cap;
    }
    upd_feed_t *e = &set->entries[set->size++];
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->body = body;
    e->len = len;
    return 0;
}

void
upd_feed_set_dispose(upd_feed_set_t *set)
{
    for (size_t i = 0; i != set->size; ++i)
        free(set->entries[i].body);
    free(set->entries);
    set->entries = NULL;
    set->size = set->capacity = 0;
}

/* File names, app ids and versions are validated to URL-path-safe characters ([A-Za-z0-9._+-]; '+'
 * is literal in a path), so the URL needs no percent-encoding. */
static char *
artifact_url(const upd_release_t *rel, const upd_render_opts_t *opts, const upd_file_t *f)
{
    char *url;
    const char *base = opts->public_url != NULL ? opts->public_url : "";
    if (asprintf(&url, "%s/artifacts/%s/%s/%s", base, rel->app, rel->version, f->name) < 0)
        return NULL;
    return url;
}

static bool
file_is(const upd_file_t *f, upd_platform_t platform, int arch, upd_kind_t kind)
{
    return f->platform == platform && (arch < 0 || f->arch == (upd_arch_t)arch) && f->kind == kind;
}

/* Appends to idx the indices of the release's files of one platform, arch (-1: any) and kind, in release order. */
static void
collect(const upd_release_t *rel, upd_platform_t platform, int arch, upd_kind_t kind, size_t *idx, size_t *n)
{
    for (size_t i = 0; i != rel->nfiles; ++i)
        if (file_is(&rel->files[i], platform, arch, kind))
            idx[(*n)++] = i;
}

/* --- electron-updater YAML ------------------------------------------------------------------- */

static int
on_yaml_write(void *data, unsigned char *buffer, size_t size)
{
    return buf_append(data, buffer, size) == 0;
}

/* True when a YAML reader could resolve the plain scalar s to something other than a string: YAML
 * 1.1 and 1.2 numbers, dates and sexagesimals (js-yaml's default schema reads "1.10" as 1.1 and
 * "2026-11-29" as a Date), nulls and booleans. Deliberately broad: quoting a string that did not
 * need it costs two characters. */
static bool
plain_is_ambiguous(const char *s)
{
    static const char *const words[] = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"};
    if (*s == '\0' || strchr("0123456789+-.~", *s) != NULL)
        return true;
    for (size_t i = 0; i != sizeof(words) / sizeof(words[0]); ++i)
        if (strcasecmp(s, words[i]) == 0)
            return true;
    return false;
}

static int
emit_event(yaml_emitter_t *e, yaml_event_t *ev, int initialized)
{
    /* yaml_emitter_emit() takes the event and frees it even when it fails */
    return initialized && yaml_emitter_emit(e, ev) ? 0 : -1;
}

static int
emit_raw(yaml_emitter_t *e, const char *value, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    /* no tag, both implicit flags: the style decides how a reader resolves it */
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)value, (int)strlen(value), 1, 1, style);
    return emit_event(e, &ev, ok);
}

/* A string that must read back as a string. libyaml only checks that a plain scalar is well-formed,
 * not what it resolves to, so the choice of quoting is made here. */
static int
emit_str(yaml_emitter_t *e, const char *value)
{
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    if (strchr(value, '\n') != NULL)
        style = YAML_LITERAL_SCALAR_STYLE; /* block scalars are always strings; libyaml falls back to double quotes */
    else if (plain_is_ambiguous(value))
        style = YAML_SINGLE_QUOTED_SCALAR_STYLE;
    return emit_raw(e, value, style);
}

static int
emit_uint(yaml_emitter_t *e, uint64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%" PRIu64, v);
    return emit_raw(e, s, YAML_PLAIN_SCALAR_STYLE);
}

static int
emit_mapping_start(yaml_emitter_t *e)
{
    yaml_event_t ev;
    int ok = yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    return emit_event(e, &ev, ok);
}

static int
emit_mapping_end(yaml_emitter_t *e)
{
    yaml_event_t ev;
    int ok = yaml_mapping_end_event_initialize(&ev);
    return emit_event(e, &ev, ok);
}

/* "2026-11-29T01:52:31Z" → "2026-11-29T01:52:31.000Z", as electron-builder writes releaseDate (JavaScript's
 * Date.toISOString()). A date that already has a fraction or no "Z" is passed through. */
static void
release_date(const char *pub_date, char out[48])
{
    size_t len = strlen(pub_date);
    if (len != 0 && len < 40 && pub_date[len - 1] == 'Z' && strchr(pub_date, '.') == NULL)
        snprintf(out, 48, "%.*s.000Z", (int)(len - 1), pub_date);
    else
        snprintf(out, 48, "%s", pub_date);
}

static int
render_electron_yaml(const upd_release_t *rel, const upd_render_opts_t *opts, const size_t *idx, size_t n, int staged_percent,
                     buf_t *out)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    char *first_url = NULL, date[48];
    int ret = UPD_ENOMEM;

    if (!yaml_emitter_initialize(&e))
        return UPD_ENOMEM;
    yaml_emitter_set_output(&e, on_yaml_write, out);
    yaml_emitter_set_unicode(&e, 1); /* release notes in UTF-8 stay readable */
    yaml_emitter_set_width(&e, -1);  /* never fold long notes */

    if (emit_event(&e, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) != 0 ||
        emit_event(&e, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) != 0 || emit_mapping_start(&e) != 0)
        goto Exit;

    /* version is quoted when ambiguous (always, for SemVer): electron-updater's semver.parse() needs a string */
    if (emit_raw(&e, "version", YAML_PLAIN_SCALAR_STYLE) != 0 || emit_str(&e, rel->version) != 0)
        goto Exit;

    if (emit_raw(&e, "files", YAML_PLAIN_SCALAR_STYLE) != 0 ||
        emit_event(&e, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE)) != 0)
        goto Exit;
    for (size_t i = 0; i != n; ++i) {
        const upd_file_t *f = &rel->files[idx[i]];
        char *url = artifact_url(rel, opts, f);
        if (url == NULL)
            goto Exit;
        int failed = emit_mapping_start(&e) != 0 || emit_raw(&e, "url", YAML_PLAIN_SCALAR_STYLE) != 0 || emit_str(&e, url) != 0;
        if (i == 0)
            first_url = url;
        else
            free(url);
        if (failed || emit_raw(&e, "sha512", YAML_PLAIN_SCALAR_STYLE) != 0 || emit_str(&e, f->sha512) != 0 ||
            emit_raw(&e, "size", YAML_PLAIN_SCALAR_STYLE) != 0 || emit_uint(&e, f->size) != 0)
            goto Exit;
        if (f->blockmap_size >= 0 &&
            (emit_raw(&e, "blockMapSize", YAML_PLAIN_SCALAR_STYLE) != 0 || emit_uint(&e, (uint64_t)f->blockmap_size) != 0))
            goto Exit;
        if (emit_mapping_end(&e) != 0)
            goto Exit;
    }
    if (emit_event(&e, &ev, yaml_sequence_end_event_initialize(&ev)) != 0)
        goto Exit;

    /* path and sha512 are the deprecated single-file fields; electron-updater falls back to them only
     * when files is empty, and electron-builder still writes them for the first file */
    if (emit_raw(&e, "path", YAML_PLAIN_SCALAR_STYLE) != 0 || emit_str(&e, first_url) != 0 ||
        emit_raw(&e, "sha512", YAML_PLAIN_SCALAR_STYLE) != 0 || emit_str(&e, rel->files[idx[0]].sha512) != 0)
        goto Exit;
    release_date(rel->pub_date, date);
    if (emit_raw(&e, "releaseDate", YAML_PLAIN_SCALAR_STYLE) != 0 || emit_str(&e, date) != 0)
        goto Exit;
    if (rel->notes != NULL && (emit_raw(&e, "releaseNotes", YAML_PLAIN_SCALAR_STYLE) != 0 || emit_str(&e, rel->notes) != 0))
        goto Exit;
    if (staged_percent >= 0 &&
        (emit_raw(&e, "stagingPercentage", YAML_PLAIN_SCALAR_STYLE) != 0 || emit_uint(&e, (uint64_t)staged_percent) != 0))
        goto Exit;

    if (emit_mapping_end(&e) != 0 || emit_event(&e, &ev, yaml_document_end_event_initialize(&ev, 1)) != 0 ||
        emit_event(&e, &ev, yaml_stream_end_event_initialize(&ev)) != 0 || !yaml_emitter_flush(&e))
        goto Exit;
    ret = 0;

Exit:
    /* the only failures left once the input is validated are allocation failures (libyaml also
     * refuses invalid UTF-8, which the release's JSON origin already excludes) */
    free(first_url);
    yaml_emitter_delete(&e);
    return ret;
}

static int
render_electron(const upd_release_t *rel, const upd_render_opts_t *opts, upd_platform_t platform, upd_arch_t arch, size_t *idx,
                upd_feed_set_t *out)
{
    size_t n = 0;

    switch (platform) {
    case UPD_PLATFORM_WINDOWS:
        collect(rel, platform, -1, UPD_KIND_EXE, idx, &n);
        if (n == 0)
            collect(rel, platform, -1, UPD_KIND_MSI, idx, &n);
        break;
    case UPD_PLATFORM_MAC:
        /* MacUpdater installs from the zip (Squirrel.Mac underneath): no zip, no feed. The zips come
         * first so that path names one; dmg files follow for clients that only display them. */
        collect(rel, platform, -1, UPD_KIND_ZIP, idx, &n);
        if (n == 0)
            return 0;
        collect(rel, platform, -1, UPD_KIND_DMG, idx, &n);
        break;
    case UPD_PLATFORM_LINUX:
        collect(rel, platform, arch, UPD_KIND_APPIMAGE, idx, &n);
        collect(rel, platform, arch, UPD_KIND_DEB, idx, &n);
        collect(rel, platform, arch, UPD_KIND_RPM, idx, &n);
        break;
    default:
        return 0;
    }
    if (n == 0)
        return 0;

    for (int staged = 0; staged <= (opts->staged_percent >= 0); ++staged) {
        char key[UPD_FEED_KEY_MAX];
        buf_t body = {NULL};
        int ret;
        if ((ret = upd_feed_key(UPD_FEED_ELECTRON, platform, arch, staged, key)) < 0)
            return ret;
        if ((ret = render_electron_yaml(rel, opts, idx, n, staged ? opts->staged_percent : -1, &body)) != 0) {
            free(body.p);
            return ret;
        }
        if ((ret = set_take(out, key, body.p, body.len)) != 0)
            return ret;
    }
    return 0;
}

/* --- JSON (Squirrel.Mac, Tauri) ------------------------------------------------------------------ */

static int
take_json(upd_feed_set_t *out, const char *key, json_t *obj)
{
    /* json_dumps() returns NULL for a NULL object too, which covers a failed json_object() */
    char *body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (body == NULL)
        return UPD_ENOMEM;
    return set_take(out, key, body, strlen(body));
}

/* json_object_set_new() steals the value even on failure and fails on a NULL value, so one check per key suffices. */
static int
set_str(json_t *obj, const char *key, const char *value)
{
    return obj != NULL && json_object_set_new(obj, key, json_string(value)) == 0 ? 0 : -1;
}

/* The first file of a platform, arch and kind; for a mac arch other than universal, a universal file
 * when that arch has none (one universal build serves both Intel and Apple silicon). */
static const upd_file_t *
find_file(const upd_release_t *rel, upd_platform_t platform, upd_arch_t arch, upd_kind_t kind, bool need_signature)
{
    for (int pass = 0; pass != 2; ++pass) {
        int want = pass == 0 ? (int)arch : (int)UPD_ARCH_UNIVERSAL;
        if (pass == 1 && (platform != UPD_PLATFORM_MAC || arch == UPD_ARCH_UNIVERSAL))
            break;
        for (size_t i = 0; i != rel->nfiles; ++i) {
            const upd_file_t *f = &rel->files[i];
            if (file_is(f, platform, want, kind) && (!need_signature || (f->signature != NULL && f->signature[0] != '\0')))
                return f;
        }
    }
    return NULL;
}

static int
render_squirrel_mac(const upd_release_t *rel, const upd_render_opts_t *opts, upd_arch_t arch, upd_feed_set_t *out)
{
    char key[UPD_FEED_KEY_MAX];
    const upd_file_t *f = find_file(rel, UPD_PLATFORM_MAC, arch, UPD_KIND_ZIP, false);
    int ret;

    if (f == NULL)
        return 0;
    if ((ret = upd_feed_key(UPD_FEED_SQUIRREL_MAC, UPD_PLATFORM_MAC, arch, 0, key)) < 0)
        return ret;
    char *url = artifact_url(rel, opts, f);
    if (url == NULL)
        return UPD_ENOMEM;
    json_t *obj = json_object();
    /* Squirrel.Mac reads url (required) and shows name, notes and pub_date; keys are written in that order */
    int failed = set_str(obj, "url", url) != 0 || set_str(obj, "name", rel->version) != 0 ||
                 set_str(obj, "notes", rel->notes != NULL ? rel->notes : "") != 0 || set_str(obj, "pub_date", rel->pub_date) != 0;
    free(url);
    if (failed) {
        json_decref(obj);
        return UPD_ENOMEM;
    }
    return take_json(out, key, obj);
}

static int
render_tauri(const upd_release_t *rel, const upd_render_opts_t *opts, upd_platform_t platform, upd_arch_t arch, upd_feed_set_t *out)
{
    /* What each platform's Tauri updater installs, best first: v2 takes installers as they are, v1 the
     * zipped or tarred bundles (.msi.zip, .AppImage.tar.gz, .app.tar.gz). A mac .zip is not listed:
     * Tauri unpacks only .tar.gz there. */
    static const upd_kind_t prefs[UPD_PLATFORM_COUNT][5] = {
        [UPD_PLATFORM_WINDOWS] = {UPD_KIND_EXE, UPD_KIND_MSI, UPD_KIND_ZIP},
        [UPD_PLATFORM_MAC] = {UPD_KIND_TAR_GZ},
        [UPD_PLATFORM_LINUX] = {UPD_KIND_APPIMAGE, UPD_KIND_TAR_GZ, UPD_KIND_DEB, UPD_KIND_RPM},
    };
    char key[UPD_FEED_KEY_MAX];
    const upd_file_t *f = NULL;

    if (upd_feed_key(UPD_FEED_TAURI, platform, arch, 0, key) < 0)
        return 0; /* a combination no Tauri client asks for */
    for (size_t i = 0; f == NULL && i != sizeof(prefs[0]) / sizeof(prefs[0][0]) && prefs[platform][i] != UPD_KIND_UNKNOWN; ++i)
        f = find_file(rel, platform, arch, prefs[platform][i], true);
    if (f == NULL)
        return 0; /* the signature is mandatory for Tauri clients: a file without one is not offered */

    char *url = artifact_url(rel, opts, f);
    if (url == NULL)
        return UPD_ENOMEM;
    json_t *obj = json_object();
    int failed = set_str(obj, "version", rel->version) != 0 || set_str(obj, "notes", rel->notes != NULL ? rel->notes : "") != 0 ||
                 set_str(obj, "pub_date", rel->pub_date) != 0 || set_str(obj, "url", url) != 0 ||
                 set_str(obj, "signature", f->signature) != 0;
    free(url);
    if (failed) {
        json_decref(obj);
        return UPD_ENOMEM;
    }
    return take_json(out, key, obj);
}

/* --- Squirrel.Windows RELEASES ------------------------------------------------------------------- */

static bool
sha1_is_valid(const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0'; ++i)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return i == UPD_SHA1_HEX_LEN;
}

/* Appends a release's lines for one arch, the delta before the full package as Squirrel's own
 * WriteReleaseFile orders them, lines joined by "\n" with none after the last (also Squirrel's). A
 * file whose SHA-1 is not known is left out: one unparsable line makes Squirrel reject the file.
 * staged_percent >= 0 appends "# NN%" right after the size (PROTOCOLS.md "Update feeds"): Squirrel.Windows
 * (ReleaseEntry.cs) reads its staging from `#\s+(\d{1,3})%$` and strips anything else after '#' as a comment, so
 * "#NN%" would stage nothing; clients older than 1.4.0 need the '#' to touch the size, hence no space before it. */
static int
append_releases_lines(const upd_release_t *rel, upd_arch_t arch, int staged_percent, buf_t *out, size_t *nfull)
{
    static const upd_kind_t order[] = {UPD_KIND_NUPKG_DELTA, UPD_KIND_NUPKG_FULL};

    for (size_t k = 0; k != sizeof(order) / sizeof(order[0]); ++k) {
        for (size_t i = 0; i != rel->nfiles; ++i) {
            const upd_file_t *f = &rel->files[i];
            char sha1[UPD_SHA1_HEX_LEN + 1];
            if (!file_is(f, UPD_PLATFORM_WINDOWS, arch, order[k]) || !sha1_is_valid(f->sha1))
                continue;
            for (size_t j = 0; j != sizeof(sha1); ++j)
                sha1[j] = (char)toupper((unsigned char)f->sha1[j]); /* Squirrel writes upper-case hex */
            if ((out->len != 0 && buf_append(out, "\n", 1) != 0) ||
                buf_printf(out, "%s %s %" PRIu64, sha1, f->name, f->size) != 0 ||
                (staged_percent >= 0 && buf_printf(out, "# %d%%", staged_percent) != 0))
                return UPD_ENOMEM;
            if (order[k] == UPD_KIND_NUPKG_FULL && nfull != NULL)
                ++*nfull;
        }
    }
    return 0;
}

static int
render_squirrel_win(const upd_release_t *rel, const upd_render_opts_t *opts, upd_arch_t arch, upd_feed_set_t *out)
{
    for (int staged = 0; staged <= (opts->staged_percent >= 0); ++staged) {
        char key[UPD_FEED_KEY_MAX];
        buf_t body = {NULL};
        size_t nfull = 0;
        int ret;

        if ((ret = upd_feed_key(UPD_FEED_SQUIRREL_WIN, UPD_PLATFORM_WINDOWS, arch, staged, key)) < 0)
            return ret;
        ret = 0;
        /* the staged answer keeps the stable release for clients outside the stage: Squirrel takes the
         * newest entry it is eligible for, and lists entries oldest first */
        if (staged && opts->stable != NULL)
            ret = append_releases_lines(opts->stable, arch, -1, &body, NULL);
        if (ret == 0)
            ret = append_releases_lines(rel, arch, staged ? opts->staged_percent : -1, &body, &nfull);
        if (ret != 0 || nfull == 0) {
            /* without a full package of its own the release has nothing to offer on this arch: no variant */
            free(body.p);
            return ret;
        }
        if ((ret = set_take(out, key, body.p, body.len)) != 0)
            return ret;
    }
    return 0;
}

/* --- all variants -------------------------------------------------------------------------------- */

int
upd_render_release(const upd_release_t *rel, const upd_render_opts_t *opts, upd_feed_set_t *out)
{
    /* the machine arches: electron-updater's linux files and Squirrel.Windows are per arch, never universal */
    static const upd_arch_t machine_arches[] = {UPD_ARCH_X64, UPD_ARCH_ARM64, UPD_ARCH_IA32};
    static const upd_arch_t squirrel_mac_arches[] = {UPD_ARCH_X64, UPD_ARCH_ARM64, UPD_ARCH_UNIVERSAL};
    size_t *idx = NULL;
    int ret = 0;

    if (rel->nfiles == 0)
        return 0;
    if ((idx = malloc(rel->nfiles * sizeof(*idx))) == NULL)
        return UPD_ENOMEM;

    if ((ret = render_electron(rel, opts, UPD_PLATFORM_WINDOWS, UPD_ARCH_X64, idx, out)) != 0 ||
        (ret = render_electron(rel, opts, UPD_PLATFORM_MAC, UPD_ARCH_X64, idx, out)) != 0)
        goto Exit;
    for (size_t i = 0; i != sizeof(machine_arches) / sizeof(machine_arches[0]); ++i)
        if ((ret = render_electron(rel, opts, UPD_PLATFORM_LINUX, machine_arches[i], idx, out)) != 0)
            goto Exit;
    for (size_t i = 0; i != sizeof(squirrel_mac_arches) / sizeof(squirrel_mac_arches[0]); ++i)
        if ((ret = render_squirrel_mac(rel, opts, squirrel_mac_arches[i], out)) != 0)
            goto Exit;
    for (size_t i = 0; i != sizeof(machine_arches) / sizeof(machine_arches[0]); ++i)
        if ((ret = render_squirrel_win(rel, opts, machine_arches[i], out)) != 0)
            goto Exit;
    for (int p = 0; p != UPD_PLATFORM_COUNT; ++p)
        for (int a = 0; a != UPD_ARCH_COUNT; ++a)
            if ((ret = render_tauri(rel, opts, (upd_platform_t)p, (upd_arch_t)a, out)) != 0)
                goto Exit;

Exit:
    free(idx);
    return ret;
}
