#include "domain/route.h"
#include <string.h>
#include "base/err.h"

const char *const upd_route_labels[UPD_ROUTE_LABEL_COUNT] = {"feed_electron", "feed_squirrel_mac", "feed_squirrel_win", "feed_tauri",
                                                             "nupkg",         "artifact",          "download",          "healthz",
                                                             "metrics",       "other"};

#define MAX_SEGMENTS 10

typedef struct {
    const char *p;
    size_t len;
} slice_t;

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s into out (cap bytes, NUL-terminated). @return the length, or -1 when malformed or too long */
static int
decode(slice_t s, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; ++i) {
        char c = s.p[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= s.len || (hi = hexval(s.p[i + 1])) < 0 || (lo = hexval(s.p[i + 2])) < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0' || n + 1 >= cap)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return (int)n;
}

static int
take(slice_t s, char *out, size_t cap, bool (*valid)(const char *, size_t))
{
    int n = decode(s, out, cap);
    return n > 0 && valid(out, (size_t)n) ? 0 : -1;
}

static bool
valid_version(const char *s, size_t len)
{
    upd_version_t v;
    return upd_version_parse(s, len, &v) == 0;
}

static bool
valid_format(const char *s, size_t len)
{
    for (size_t i = 0; i < len; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static bool
seg_is(slice_t s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static bool
ends_with(slice_t s, const char *lit, size_t *stem)
{
    size_t l = strlen(lit);
    if (s.len <= l || memcmp(s.p + s.len - l, lit, l) != 0)
        return false;
    *stem = s.len - l;
    return true;
}

static int
parse_query(const char *q, size_t len, upd_route_t *out, const char **err)
{
    const char *end = q + len;
    while (q < end) {
        const char *amp = memchr(q, '&', end - q);
        if (amp == NULL)
            amp = end;
        const char *eq = memchr(q, '=', amp - q);
        if (eq != NULL) {
            slice_t name = {q, (size_t)(eq - q)}, value = {eq + 1, (size_t)(amp - eq - 1)};
            if (seg_is(name, "channel")) {
                if (take(value, out->channel, sizeof(out->channel), upd_id_is_channel) != 0) {
                    *err = "channel: expected [a-z0-9][a-z0-9-]{0,62}";
                    return UPD_EINVAL;
                }
            } else if (seg_is(name, "client_id")) {
                if (out->client[0] == '\0' && take(value, out->client, sizeof(out->client), upd_id_is_client) != 0) {
                    *err = "client_id: expected 1-128 bytes of [A-Za-z0-9._:-]";
                    return UPD_EINVAL;
                }
            } else if (seg_is(name, "format")) {
                if (take(value, out->format, sizeof(out->format), valid_format) != 0) {
                    *err = "format: expected a file format such as dmg, exe, appimage, deb, rpm, zip";
                    return UPD_EINVAL;
                }
            }
        }
        q = amp + 1;
    }
    return 0;
}

static int
parse_arch(slice_t s, upd_route_t *out, const char **err)
{
    char buf[16];
    int a;
    if (decode(s, buf, sizeof(buf)) < 0 || (a = upd_arch_parse(buf, strlen(buf))) < 0) {
        *err = "arch: expected x64, arm64, ia32 or universal";
        return UPD_EINVAL;
    }
    out->arch = a;
    return 0;
}

static int
parse_update(slice_t *seg, size_t n, upd_route_t *out, const char **err)
{
    /* seg[0] = "update", seg[1] = APP */
    if (n == 3) {
        size_t stem;
        slice_t f = seg[2];
        if (!ends_with(f, ".yml", &stem))
            return UPD_ENOTFOUND;
        slice_t name = {f.p, stem};
        out->kind = UPD_ROUTE_FEED;
        out->fmt = UPD_FEED_ELECTRON;
        out->platform = UPD_PLATFORM_WINDOWS;
        out->arch = UPD_ARCH_X64;
        size_t cut;
        if (ends_with(name, "-mac", &cut)) {
            out->platform = UPD_PLATFORM_MAC;
            name.len = cut;
        } else if (ends_with(name, "-linux", &cut)) {
            out->platform = UPD_PLATFORM_LINUX;
            name.len = cut;
        } else {
            const char *dash = NULL;
            for (size_t i = name.len; i > 0; --i)
                if (name.p[i - 1] == '-') {
                    dash = name.p + i - 1;
                    break;
                }
            slice_t linux_stem;
            if (dash != NULL && ends_with((slice_t){name.p, (size_t)(dash - name.p)}, "-linux", &cut)) {
                linux_stem.p = name.p;
                linux_stem.len = cut;
                slice_t arch = {dash + 1, (size_t)(name.p + name.len - dash - 1)};
                if (parse_arch(arch, out, err) != 0)
                    return UPD_EINVAL;
                out->platform = UPD_PLATFORM_LINUX;
                name = linux_stem;
            }
        }
        if (take(name, out->channel, sizeof(out->channel), upd_id_is_channel) != 0) {
            *err = "channel file: expected CHANNEL.yml, CHANNEL-mac.yml, CHANNEL-linux.yml or CHANNEL-linux-ARCH.yml";
            return UPD_EINVAL;
        }
        return 0;
    }
    if (n < 4)
        return UPD_ENOTFOUND;
    slice_t kind = seg[2];
    if (seg_is(kind, "darwin") || seg_is(kind, "tauri")) {
        bool tauri = seg_is(kind, "tauri");
        if (n != (tauri ? 6u : 5u))
            return UPD_ENOTFOUND;
        out->kind = UPD_ROUTE_FEED;
        out->fmt = tauri ? UPD_FEED_TAURI : UPD_FEED_SQUIRREL_MAC;
        out->platform = UPD_PLATFORM_MAC;
        if (tauri) {
            char target[16];
            int p;
            if (decode(seg[3], target, sizeof(target)) < 0 || (p = upd_platform_parse(target, strlen(target))) < 0) {
                *err = "target: expected linux, windows or darwin";
                return UPD_EINVAL;
            }
            out->platform = (upd_platform_t)p;
        }
        if (parse_arch(seg[n - 2], out, err) != 0)
            return UPD_EINVAL;
        if (take(seg[n - 1], out->current, sizeof(out->current), valid_version) != 0) {
            *err = "current version: expected SemVer 2.0 (1.2.3, 1.3.0-beta.2)";
            return UPD_EINVAL;
        }
        return 0;
    }
    if (seg_is(kind, "win32")) {
        /* win32/ARCH/[CHANNEL/][c/CLIENT/](RELEASES|FILE.nupkg) */
        if (n < 5 || n > 8)
            return UPD_ENOTFOUND;
        out->platform = UPD_PLATFORM_WINDOWS;
        if (parse_arch(seg[3], out, err) != 0)
            return UPD_EINVAL;
        slice_t last = seg[n - 1];
        size_t middle = n - 5, i = 4, stem;
        if (middle == 1 || middle == 3) {
            if (take(seg[i], out->channel, sizeof(out->channel), upd_id_is_channel) != 0) {
                *err = "channel: expected [a-z0-9][a-z0-9-]{0,62}";
                return UPD_EINVAL;
            }
            ++i;
        }
        if (middle >= 2) {
            if (!seg_is(seg[i], "c"))
                return UPD_ENOTFOUND;
            if (take(seg[i + 1], out->client, sizeof(out->client), upd_id_is_client) != 0) {
                *err = "client id: expected 1-128 bytes of [A-Za-z0-9._:-]";
                return UPD_EINVAL;
            }
        }
        if (seg_is(last, "RELEASES")) {
            out->kind = UPD_ROUTE_FEED;
            out->fmt = UPD_FEED_SQUIRREL_WIN;
            return 0;
        }
        if (ends_with(last, ".nupkg", &stem)) {
            if (take(last, out->file, sizeof(out->file), upd_id_is_filename) != 0) {
                *err = "package file name: expected [A-Za-z0-9._+-]{1,200}";
                return UPD_EINVAL;
            }
            out->kind = UPD_ROUTE_NUPKG;
            return 0;
        }
        return UPD_ENOTFOUND;
    }
    return UPD_ENOTFOUND;
}

int
upd_route_parse(const char *target, size_t len, upd_route_t *out, const char **err)
{
    memset(out, 0, sizeof(*out));
    strcpy(out->channel, "latest");
    out->arch = -1;
    *err = NULL;

    const char *q = memchr(target, '?', len);
    size_t path_len = q != NULL ? (size_t)(q - target) : len;
    if (path_len == 0 || target[0] != '/')
        return UPD_ENOTFOUND;

    slice_t seg[MAX_SEGMENTS];
    size_t n = 0;
    const char *p = target + 1, *end = target + path_len;
    while (p <= end) {
        const char *slash = memchr(p, '/', end - p);
        if (slash == NULL)
            slash = end;
        if (n == MAX_SEGMENTS)
            return UPD_ENOTFOUND;
        seg[n++] = (slice_t){p, (size_t)(slash - p)};
        p = slash + 1;
    }
    for (size_t i = 0; i < n; ++i)
        if (seg[i].len == 0)
            return UPD_ENOTFOUND; /* "//", trailing slash */

    if (q != NULL) {
        int r = parse_query(q + 1, len - path_len - 1, out, err);
        if (r != 0)
            return r;
    }

    if (n == 1 && seg_is(seg[0], "healthz")) {
        out->kind = UPD_ROUTE_HEALTHZ;
        return 0;
    }
    if (n == 1 && seg_is(seg[0], "metrics")) {
        out->kind = UPD_ROUTE_METRICS;
        return 0;
    }
    if (n < 2 || !(seg_is(seg[0], "update") || seg_is(seg[0], "artifacts") || seg_is(seg[0], "download")))
        return UPD_ENOTFOUND;
    if (take(seg[1], out->app, sizeof(out->app), upd_id_is_app) != 0) {
        *err = "app id: expected [a-z0-9][a-z0-9-]{0,62}";
        return UPD_EINVAL;
    }
    if (seg_is(seg[0], "update"))
        return parse_update(seg, n, out, err);
    if (seg_is(seg[0], "artifacts")) {
        if (n != 4)
            return UPD_ENOTFOUND;
        if (take(seg[2], out->version, sizeof(out->version), valid_version) != 0) {
            *err = "version: expected SemVer 2.0 (1.2.3, 1.3.0-beta.2)";
            return UPD_EINVAL;
        }
        if (take(seg[3], out->file, sizeof(out->file), upd_id_is_filename) != 0) {
            *err = "file name: expected [A-Za-z0-9._+-]{1,200}, not . or ..";
            return UPD_EINVAL;
        }
        out->kind = UPD_ROUTE_ARTIFACT;
        return 0;
    }
    /* download */
    if (n != 3 && n != 4)
        return UPD_ENOTFOUND;
    char platform[16];
    int pl;
    if (decode(seg[2], platform, sizeof(platform)) < 0 || (pl = upd_platform_parse(platform, strlen(platform))) < 0) {
        *err = "platform: expected windows, mac or linux";
        return UPD_EINVAL;
    }
    out->platform = (upd_platform_t)pl;
    if (n == 4 && parse_arch(seg[3], out, err) != 0)
        return UPD_EINVAL;
    out->kind = UPD_ROUTE_DOWNLOAD;
    return 0;
}

/* A cheap classifier for metrics and the access log, run once per request after the response: it
 * looks at the shape of the path only, without decoding or validating (that was the handler's job). */
size_t
upd_route_label(const char *target, size_t len)
{
    const char *q = memchr(target, '?', len);
    slice_t path = {target, q != NULL ? (size_t)(q - target) : len};
    slice_t seg[4] = {{NULL, 0}};
    size_t n = 0;
    const char *p = path.p + 1, *end = path.p + path.len;
    while (path.len > 0 && p <= end && n < 4) {
        const char *slash = memchr(p, '/', end - p);
        if (slash == NULL)
            slash = end;
        seg[n++] = (slice_t){p, (size_t)(slash - p)};
        p = slash + 1;
    }
    size_t stem;
    if (n == 1 && seg_is(seg[0], "healthz"))
        return 7;
    if (n == 1 && seg_is(seg[0], "metrics"))
        return 8;
    if (n >= 3 && seg_is(seg[0], "artifacts"))
        return 5;
    if (n >= 3 && seg_is(seg[0], "download"))
        return 6;
    if (n >= 3 && seg_is(seg[0], "update")) {
        if (n == 3)
            return 0;
        if (seg_is(seg[2], "darwin"))
            return 1;
        if (seg_is(seg[2], "tauri"))
            return 3;
        if (seg_is(seg[2], "win32"))
            return ends_with(path, ".nupkg", &stem) ? 4 : 2;
    }
    return UPD_ROUTE_LABEL_COUNT - 1;
}
