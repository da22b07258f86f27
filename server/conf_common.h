#ifndef UPD_CONF_COMMON_H
#define UPD_CONF_COMMON_H

#include <stddef.h>
#include "server/config.h"

/* Settings both servers take; each program's table starts with these (defaults differ per program). */
#define UPD_CONF_COMMON_DECLS(LISTEN_DEFAULT, MAX_BODY_DEFAULT)                                                                     \
    {"listen", UPD_CONF_STRLIST, offsetof(upd_conf_t, listen), 0, 0, LISTEN_DEFAULT, "--listen"},                                  \
    {"tls.cert", UPD_CONF_STRING, offsetof(upd_conf_t, tls_cert), 0, 0, "", "--tls-cert"},                                         \
    {"tls.key", UPD_CONF_STRING, offsetof(upd_conf_t, tls_key), 0, 0, "", "--tls-key"},                                            \
    {"data_dir", UPD_CONF_STRING, offsetof(upd_conf_t, data_dir), 0, 0, "./var", "--data"},                                        \
    {"storage_dir", UPD_CONF_STRING, offsetof(upd_conf_t, storage_dir), 0, 0, "", "--storage"},                                    \
    {"log.level", UPD_CONF_STRING, offsetof(upd_conf_t, log_level), 0, 0, "info", "--log-level"},                                  \
    {"log.access", UPD_CONF_STRING, offsetof(upd_conf_t, access_log), 0, 0, "-", "--access-log"},                                  \
    {"limits.max_header_bytes", UPD_CONF_UINT, offsetof(upd_conf_t, max_header_bytes), 1024, 1048576, "65536", NULL},             \
    {"limits.max_body_bytes", UPD_CONF_UINT, offsetof(upd_conf_t, max_body_bytes), 0, 1073741824, MAX_BODY_DEFAULT, NULL},         \
    {"limits.http2_max_streams", UPD_CONF_UINT, offsetof(upd_conf_t, http2_max_streams), 1, 256, "100", NULL},                     \
    {"limits.idle_timeout_ms", UPD_CONF_UINT, offsetof(upd_conf_t, idle_timeout_ms), 100, 3600000, "10000", NULL},                 \
    {"limits.shutdown_timeout_ms", UPD_CONF_UINT, offsetof(upd_conf_t, shutdown_timeout_ms), 0, 600000, "5000", NULL},             \
    {"lmdb.map_size_mib", UPD_CONF_UINT, offsetof(upd_conf_t, lmdb_map_mib), 16, 1048576, "1024", NULL}

#define UPD_CONF_COMMON_USAGE                                                                                                       \
    "  --config FILE        YAML configuration (see conf/)\n"                                                                    \
    "  --listen ADDR:PORT   listener, repeatable; https://ADDR:PORT for TLS; port 0 picks a free one\n"                          \
    "  --tls-cert FILE      certificate chain (PEM) for https:// listeners\n"                                                    \
    "  --tls-key FILE       private key (PEM)\n"                                                                                 \
    "  --data DIR           LMDB environment lives in DIR/lmdb (default ./var)\n"                                                \
    "  --storage DIR        local-directory object store (default DATA/storage)\n"                                               \
    "  --log-level LEVEL    error, warn, info (default), debug\n"                                                                \
    "  --access-log PATH    access log file, - for stdout (default), \"\" for none\n"                                            \
    "  --check              validate the configuration and exit\n"

#endif
