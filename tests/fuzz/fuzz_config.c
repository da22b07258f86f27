/*
 * Fuzzes configuration loading (upd_conf_load_file, server/config.h) with YAML files.
 *
 * Input: the file's bytes, written to a memfd and loaded by its /proc/self/fd path over the defaults of a table with
 * every setting either program declares (conf/origin.yaml and conf/control.yaml).
 * Invariants: the result is 0 or -1; a refusal says "FILE:LINE: ..." for this file; whatever the outcome, every number
 * is within its declared bounds and every string and list item is set; disposing frees everything (LeakSanitizer).
 */
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include "server/conf_common.h"
#include "server/config.h"
#include "tests/fuzz/fuzz.h"

static const upd_conf_decl_t decls[] = {
    UPD_CONF_COMMON_DECLS("127.0.0.1:8080", "1024"),
    {"geoip.database", UPD_CONF_STRING, offsetof(upd_conf_t, geoip_database), 0, 0, "", "--geoip"},
    {"trusted_proxies", UPD_CONF_STRLIST, offsetof(upd_conf_t, trusted_proxies), 0, 0, "", "--trusted-proxy"},
    {"feeds.public_max_age", UPD_CONF_UINT, offsetof(upd_conf_t, feed_max_age), 0, 86400, "60", NULL},
    {"downloads.max_age", UPD_CONF_UINT, offsetof(upd_conf_t, download_max_age), 0, 86400, "60", NULL},
    {"clients_seen.queue", UPD_CONF_UINT, offsetof(upd_conf_t, clients_queue), 16, 16777216, "65536", NULL},
    {"public_url", UPD_CONF_STRING, offsetof(upd_conf_t, public_url), 0, 0, "http://127.0.0.1:8080", "--public-url"},
    UPD_CONF_END,
};

#define FIELD(conf, d) ((char *)(conf) + (d)->offset)

static void
check_values(const upd_conf_t *conf)
{
    for (const upd_conf_decl_t *d = decls; d->name != NULL; ++d) {
        switch (d->type) {
        case UPD_CONF_STRING:
            FUZZ_CHECK(*(char *const *)FIELD(conf, d) != NULL);
            break;
        case UPD_CONF_UINT: {
            uint64_t v = *(const uint64_t *)FIELD(conf, d);
            FUZZ_CHECK(v >= d->min && v <= d->max);
            break;
        }
        case UPD_CONF_STRLIST: {
            const upd_strlist_t *l = (const upd_strlist_t *)FIELD(conf, d);
            FUZZ_CHECK((l->size == 0) == (l->items == NULL));
            for (size_t i = 0; i < l->size; ++i)
                FUZZ_CHECK(l->items[i] != NULL);
            break;
        }
        case UPD_CONF_BOOL:
            break;
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        FUZZ_CHECK((fd = memfd_create("fuzz_config.yaml", 0)) >= 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    FUZZ_CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);

    upd_conf_t conf;
    memset(&conf, 0, sizeof(conf));
    upd_conf_defaults(decls, &conf);
    check_values(&conf);

    char err[512] = "";
    int ret = upd_conf_load_file(decls, &conf, path, err, sizeof(err));
    FUZZ_CHECK(ret == 0 || ret == -1);
    if (ret != 0) {
        size_t plen = strlen(path);
        FUZZ_CHECK(strncmp(err, path, plen) == 0 && err[plen] == ':');
    }
    check_values(&conf);
    upd_conf_dispose(decls, &conf);
    return 0;
}
