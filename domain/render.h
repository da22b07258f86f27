#ifndef UPD_RENDER_H
#define UPD_RENDER_H

#include <stddef.h>
#include "domain/release.h"

/*
 * Feed rendering: every update-feed body a release can answer, produced once when the release is
 * registered or its rollout changes, and stored in LMDB keyed by (app, version, variant key), so an
 * update check serialises nothing (PROTOCOLS.md "Update feeds").
 *
 * Variant keys (what the origin's router computes from a request, see upd_feed_key()):
 *   electron:windows  electron:mac  electron:linux  electron:linux-arm64  electron:linux-ia32
 *       electron-updater latest.yml / latest-mac.yml / latest-linux.yml / latest-linux-ARCH.yml
 *   squirrel-mac:ARCH       Squirrel.Mac JSON {"url","name","notes","pub_date"} (ARCH x64, arm64, universal)
 *   squirrel-win:ARCH       Squirrel.Windows RELEASES (ARCH x64, ia32, arm64)
 *   tauri:PLATFORM-ARCH     Tauri JSON {"version","notes","pub_date","url","signature"} (PLATFORM windows, mac, linux)
 * and, for a release in partial rollout, the non-personalised variants with a "+staged" suffix:
 *   electron:*+staged       the same YAML plus stagingPercentage
 *   squirrel-win:ARCH+staged  the stable release's lines, then this release's lines with "#NN%"
 */

typedef enum {
    UPD_FEED_ELECTRON = 0,
    UPD_FEED_SQUIRREL_MAC,
    UPD_FEED_SQUIRREL_WIN,
    UPD_FEED_TAURI,
    UPD_FEED_COUNT
} upd_feed_format_t;

#define UPD_FEED_KEY_MAX 48

/**
 * Writes the variant key of a format/platform/arch into buf (NUL-terminated).
 * For UPD_FEED_ELECTRON: windows and mac ignore arch; linux x64 is "electron:linux".
 * For UPD_FEED_SQUIRREL_MAC the platform is ignored (always mac); for UPD_FEED_SQUIRREL_WIN likewise (windows).
 * @return the key length, or UPD_EINVAL for a combination no client asks for
 */
int upd_feed_key(upd_feed_format_t fmt, upd_platform_t platform, upd_arch_t arch, int staged, char buf[UPD_FEED_KEY_MAX]);

typedef struct st_upd_feed_t {
    char key[UPD_FEED_KEY_MAX];
    char *body; /* owned, NUL-terminated for convenience; len excludes the NUL */
    size_t len;
} upd_feed_t;

typedef struct st_upd_feed_set_t {
    upd_feed_t *entries;
    size_t size, capacity;
} upd_feed_set_t;

typedef struct st_upd_render_opts_t {
    /* Prefix of artifact URLs, without a trailing slash: "https://cdn.example.com". URLs are
     * PUBLIC_URL/artifacts/APP/VERSION/FILE. Squirrel.Mac and Tauri need absolute URLs. */
    const char *public_url;
    /* -1: the release is fully released (no +staged variants); 0..99: render +staged variants with
     * this integer percentage (floor of the basis points / 100; clients parseInt it). */
    int staged_percent;
    /* the channel's newest fully released version, or NULL; only used by squirrel-win +staged */
    const upd_release_t *stable;
} upd_render_opts_t;

/**
 * Renders every variant the release can answer into out (appended). A variant is rendered only
 * when the release has a file for it: electron:PLATFORM needs an installer of that platform
 * (windows exe; mac zip; linux AppImage/deb/rpm per arch), squirrel-mac:ARCH a zip for that arch
 * (x64 and arm64 fall back to a universal zip), squirrel-win:ARCH a full nupkg, tauri:* a file
 * with a signature. YAML is emitted with libyaml, JSON with jansson.
 * @return 0, UPD_ENOMEM
 */
int upd_render_release(const upd_release_t *rel, const upd_render_opts_t *opts, upd_feed_set_t *out);

/** Frees every body and the array. */
void upd_feed_set_dispose(upd_feed_set_t *set);

#endif
