#ifndef UPD_ROUTE_H
#define UPD_ROUTE_H

#include <stddef.h>
#include "domain/ids.h"
#include "domain/render.h"
#include "domain/version.h"

/*
 * The origin's routes (PROTOCOLS.md), parsed from the raw request target. Pure: no h2o, no I/O.
 * Each path segment is percent-decoded once and then checked against its strict grammar, so an
 * encoded "/" or ".." can never reach the store or the file system.
 *
 *   /update/APP/{channel}[-mac|-linux|-linux-ARCH].yml        electron-updater
 *   /update/APP/darwin/ARCH/CURRENT                            Squirrel.Mac
 *   /update/APP/win32/ARCH/[CHANNEL/][c/CLIENT/]RELEASES       Squirrel.Windows (and FILE.nupkg there)
 *   /update/APP/tauri/TARGET/ARCH/CURRENT                      Tauri
 *   /artifacts/APP/VERSION/FILE
 *   /download/APP/PLATFORM[/ARCH]
 *   /healthz  /metrics
 * Query: channel=NAME, client_id=ID, format=FMT (download); other parameters (noCache, id,
 * localVersion, arch) are ignored.
 *
 * A channel name that ends in "-mac" or "-linux[-ARCH]" cannot be told apart from a platform suffix
 * in electron-updater's file names; the suffix wins.
 */

typedef enum {
    UPD_ROUTE_FEED = 0, /* fmt says which client */
    UPD_ROUTE_NUPKG,    /* Squirrel.Windows package download */
    UPD_ROUTE_ARTIFACT,
    UPD_ROUTE_DOWNLOAD,
    UPD_ROUTE_HEALTHZ,
    UPD_ROUTE_METRICS,
    UPD_ROUTE_COUNT
} upd_route_kind_t;

typedef struct st_upd_route_t {
    upd_route_kind_t kind;
    upd_feed_format_t fmt;
    upd_platform_t platform;
    int arch; /* upd_arch_t, or -1 when the route did not say (download) */
    char app[UPD_ID_MAX + 1];
    char channel[UPD_ID_MAX + 1];              /* "latest" unless the path or ?channel= says otherwise */
    char version[UPD_VERSION_MAX + 1];         /* artifact */
    char current[UPD_VERSION_MAX + 1];         /* Squirrel.Mac and Tauri: the client's version */
    char file[UPD_FILENAME_MAX + 1];           /* artifact, nupkg */
    char client[UPD_CLIENT_ID_MAX + 1];        /* from the path (Squirrel.Windows) or ?client_id=, "" when none */
    char format[16];                           /* download ?format= , "" when none */
} upd_route_t;

/**
 * Parses a request target (path and optional query, as sent).
 * @param[out] err  on UPD_EINVAL, a static message naming the part that was wrong
 * @return 0; UPD_ENOTFOUND when no route has that shape (404); UPD_EINVAL when a route matched but
 *         a part is malformed (400)
 */
int upd_route_parse(const char *target, size_t len, upd_route_t *out, const char **err);

/** The route's metrics label: "feed_electron", "feed_squirrel_mac", ..., "other" for UPD_ENOTFOUND. */
size_t upd_route_label(const char *target, size_t len);
extern const char *const upd_route_labels[];
#define UPD_ROUTE_LABEL_COUNT 10

#endif
