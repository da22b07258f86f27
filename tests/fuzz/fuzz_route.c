/*
 * Fuzzes the origin's router (domain/route.h) with request targets.
 *
 * Input: a request target (path and optional query) exactly as sent.
 * Invariants: the result is 0, UPD_ENOTFOUND or UPD_EINVAL (with a reason); on 0 every field that reaches the store or the
 * file system passed its grammar after decoding (app, channel, versions, file, client id, format), the enums are in range,
 * and the metrics label names the same route.
 */
#include <stdint.h>
#include "base/err.h"
#include "domain/route.h"
#include "tests/fuzz/fuzz.h"

static bool
terminated(const char *field, size_t cap)
{
    return memchr(field, '\0', cap) != NULL;
}

static bool
is_version(const char *s)
{
    upd_version_t v;
    return upd_version_parse(s, strlen(s), &v) == 0;
}

static size_t
expected_label(const upd_route_t *r)
{
    switch (r->kind) {
    case UPD_ROUTE_FEED:
        return (size_t)r->fmt; /* feed_electron, feed_squirrel_mac, feed_squirrel_win, feed_tauri */
    case UPD_ROUTE_NUPKG:
        return 4;
    case UPD_ROUTE_ARTIFACT:
        return 5;
    case UPD_ROUTE_DOWNLOAD:
        return 6;
    case UPD_ROUTE_HEALTHZ:
        return 7;
    case UPD_ROUTE_METRICS:
        return 8;
    default:
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *target = fuzz_dup(data, size);
    upd_route_t r;
    const char *err = "unset";

    int ret = upd_route_parse(target, size, &r, &err);
    size_t label = upd_route_label(target, size);
    FUZZ_CHECK(label < UPD_ROUTE_LABEL_COUNT && upd_route_labels[label] != NULL);
    FUZZ_CHECK(ret == 0 || ret == UPD_ENOTFOUND || ret == UPD_EINVAL);
    if (ret == UPD_EINVAL)
        FUZZ_CHECK(err != NULL && err[0] != '\0');

    if (ret == 0) {
        FUZZ_CHECK(err == NULL);
        FUZZ_CHECK((unsigned)r.kind < UPD_ROUTE_COUNT);
        FUZZ_CHECK(terminated(r.app, sizeof(r.app)) && terminated(r.channel, sizeof(r.channel)) &&
                   terminated(r.version, sizeof(r.version)) && terminated(r.current, sizeof(r.current)) &&
                   terminated(r.file, sizeof(r.file)) && terminated(r.client, sizeof(r.client)) &&
                   terminated(r.format, sizeof(r.format)));
        FUZZ_CHECK(upd_id_is_channel(r.channel, strlen(r.channel)));
        FUZZ_CHECK(r.client[0] == '\0' || upd_id_is_client(r.client, strlen(r.client)));
        for (const char *f = r.format; *f != '\0'; ++f)
            FUZZ_CHECK((*f >= 'a' && *f <= 'z') || (*f >= '0' && *f <= '9'));
        FUZZ_CHECK(r.arch >= -1 && r.arch < UPD_ARCH_COUNT);
        FUZZ_CHECK((unsigned)r.platform < UPD_PLATFORM_COUNT);
        if (r.kind != UPD_ROUTE_HEALTHZ && r.kind != UPD_ROUTE_METRICS)
            FUZZ_CHECK(upd_id_is_app(r.app, strlen(r.app)));
        switch (r.kind) {
        case UPD_ROUTE_FEED:
            FUZZ_CHECK((unsigned)r.fmt < UPD_FEED_COUNT);
            FUZZ_CHECK(r.arch >= 0);
            if (r.fmt == UPD_FEED_SQUIRREL_MAC || r.fmt == UPD_FEED_TAURI)
                FUZZ_CHECK(is_version(r.current));
            if (r.fmt == UPD_FEED_SQUIRREL_MAC)
                FUZZ_CHECK(r.platform == UPD_PLATFORM_MAC);
            if (r.fmt == UPD_FEED_SQUIRREL_WIN)
                FUZZ_CHECK(r.platform == UPD_PLATFORM_WINDOWS);
            break;
        case UPD_ROUTE_NUPKG: {
            size_t n = strlen(r.file);
            FUZZ_CHECK(upd_id_is_filename(r.file, n));
            FUZZ_CHECK(n > 6 && strcmp(r.file + n - 6, ".nupkg") == 0);
            FUZZ_CHECK(r.arch >= 0 && r.platform == UPD_PLATFORM_WINDOWS);
            break;
        }
        case UPD_ROUTE_ARTIFACT:
            FUZZ_CHECK(is_version(r.version));
            FUZZ_CHECK(upd_id_is_filename(r.file, strlen(r.file)));
            break;
        default:
            break;
        }
        FUZZ_CHECK(label == expected_label(&r));
    }
    free(target);
    return 0;
}
