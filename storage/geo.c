#include "storage/geo.h"

#include <maxminddb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

struct st_upd_geo_t {
    MMDB_s mmdb;
};

int
upd_geo_open(const char *path, upd_geo_t **out)
{
    upd_geo_t *geo;
    int status;

    if ((geo = calloc(1, sizeof(*geo))) == NULL)
        return UPD_ENOMEM;
    /* On failure MMDB_open frees what it allocated itself, so MMDB_close must not be called. */
    if ((status = MMDB_open(path, MMDB_MODE_MMAP, &geo->mmdb)) != MMDB_SUCCESS) {
        free(geo);
        switch (status) {
        case MMDB_FILE_OPEN_ERROR:
        case MMDB_IO_ERROR:
            return UPD_EIO;
        case MMDB_OUT_OF_MEMORY_ERROR:
            return UPD_ENOMEM;
        default: /* MMDB_INVALID_METADATA_ERROR, MMDB_UNKNOWN_DATABASE_FORMAT_ERROR, MMDB_INVALID_DATA_ERROR, ... */
            return UPD_EINVAL;
        }
    }
    *out = geo;
    return 0;
}

void
upd_geo_close(upd_geo_t *geo)
{
    if (geo == NULL)
        return;
    MMDB_close(&geo->mmdb);
    free(geo);
}

/* Copies path's value into country when it is a 2-letter upper-case code; a database with junk there gives no country. */
static bool
get_iso_code(MMDB_entry_s *entry, const char *field, char country[3])
{
    MMDB_entry_data_s data;

    if (MMDB_get_value(entry, &data, field, "iso_code", NULL) != MMDB_SUCCESS || !data.has_data ||
        data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size != 2)
        return false;
    for (int i = 0; i != 2; ++i)
        if (data.utf8_string[i] < 'A' || data.utf8_string[i] > 'Z')
            return false;
    memcpy(country, data.utf8_string, 2);
    country[2] = '\0';
    return true;
}

int
upd_geo_country(upd_geo_t *geo, const struct sockaddr *addr, char country[3])
{
    struct sockaddr_in v4;
    MMDB_lookup_result_s result;
    int mmdb_error;

    /* libmaxminddb reads anything that is not AF_INET6 as an IPv4 address, so other families must stop here. */
    if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
        return UPD_ENOTFOUND;

    /* A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d. Databases alias that subtree to their IPv4 data only
     * if their writer chose to, so look such peers up as the IPv4 address they are. */
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)addr;
        if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
            memset(&v4, 0, sizeof(v4));
            v4.sin_family = AF_INET;
            memcpy(&v4.sin_addr, &v6->sin6_addr.s6_addr[12], 4);
            addr = (const struct sockaddr *)&v4;
        }
    }

    result = MMDB_lookup_sockaddr(&geo->mmdb, addr, &mmdb_error);
    if (mmdb_error == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
        return UPD_ENOTFOUND; /* an IPv4-only database knows nothing of IPv6 clients */
    if (mmdb_error != MMDB_SUCCESS)
        return UPD_EINVAL; /* the search tree is corrupt */
    if (!result.found_entry)
        return UPD_ENOTFOUND;
    /* registered_country is where the network is registered: the best guess when the database has no country for it
     * (e.g. anycast or satellite networks in GeoIP2). */
    if (get_iso_code(&result.entry, "country", country) || get_iso_code(&result.entry, "registered_country", country))
        return 0;
    return UPD_ENOTFOUND;
}
