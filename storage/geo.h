#ifndef UPD_GEO_H
#define UPD_GEO_H

#include <sys/socket.h>

/*
 * Country lookup through libmaxminddb (GeoIP2/GeoLite2 Country or City databases, or any .mmdb
 * with a country.iso_code field). The database is memory-mapped once at start-up.
 */

typedef struct st_upd_geo_t upd_geo_t;

/**
 * Opens a database.
 * @return 0, or UPD_EIO (file missing or unreadable) / UPD_EINVAL (not a MaxMind DB); *out untouched on error
 */
int upd_geo_open(const char *path, upd_geo_t **out);
void upd_geo_close(upd_geo_t *geo);

/**
 * Looks up the ISO 3166-1 alpha-2 country of an IPv4 or IPv6 address (IPv4-mapped IPv6 included).
 * @param[out] country  2 upper-case letters followed by a NUL
 * @return 0, or UPD_ENOTFOUND when the address or its country is not in the database
 */
int upd_geo_country(upd_geo_t *geo, const struct sockaddr *addr, char country[3]);

#endif
