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

#define UPD_CONF_BACKEND_DECLS(NAME, REGION_DEFAULT)                                                                               \
    {"object_store." #NAME ".endpoint", UPD_CONF_STRING, offsetof(upd_conf_t, NAME.endpoint), 0, 0, "", NULL},                     \
    {"object_store." #NAME ".region", UPD_CONF_STRING, offsetof(upd_conf_t, NAME.region), 0, 0, REGION_DEFAULT, NULL},             \
    {"object_store." #NAME ".bucket", UPD_CONF_STRING, offsetof(upd_conf_t, NAME.bucket), 0, 0, "", NULL},                         \
    {"object_store." #NAME ".addressing", UPD_CONF_STRING, offsetof(upd_conf_t, NAME.addressing), 0, 0, "path", NULL},             \
    {"object_store." #NAME ".access_key", UPD_CONF_STRING, offsetof(upd_conf_t, NAME.access_key), 0, 0, "", NULL},                 \
    {"object_store." #NAME ".secret_key", UPD_CONF_STRING, offsetof(upd_conf_t, NAME.secret_key), 0, 0, "", NULL}

/* Object storage, shared by both servers: the control plane writes to it, the origin reads from it. */
#define UPD_CONF_OBJECT_STORE_DECLS                                                                                                 \
    {"object_store.kind", UPD_CONF_STRING, offsetof(upd_conf_t, object_store), 0, 0, "local", "--object-store"},                   \
    UPD_CONF_BACKEND_DECLS(r2, "auto"), UPD_CONF_BACKEND_DECLS(s3, "eu-west-1"),                                                    \
    {"object_store.connect_timeout_ms", UPD_CONF_UINT, offsetof(upd_conf_t, backend_connect_timeout_ms), 10, 600000, "2000", NULL}, \
    {"object_store.first_byte_timeout_ms", UPD_CONF_UINT, offsetof(upd_conf_t, backend_first_byte_timeout_ms), 10, 600000, "10000", \
     NULL},                                                                                                                          \
    {"object_store.stall_timeout_ms", UPD_CONF_UINT, offsetof(upd_conf_t, backend_stall_timeout_ms), 10, 600000, "10000", NULL},   \
    {"object_store.breaker.failures", UPD_CONF_UINT, offsetof(upd_conf_t, backend_breaker_failures), 1, 1000, "5", NULL},          \
    {"object_store.breaker.open_ms", UPD_CONF_UINT, offsetof(upd_conf_t, backend_breaker_open_ms), 10, 3600000, "10000", NULL}

#define UPD_CONF_COMMON_USAGE                                                                                                       \
    "  --config FILE        YAML configuration (see conf/)\n"                                                                    \
    "  --listen ADDR:PORT   listener, repeatable; https://ADDR:PORT for TLS; port 0 picks a free one\n"                          \
    "  --tls-cert FILE      certificate chain (PEM) for https:// listeners\n"                                                    \
    "  --tls-key FILE       private key (PEM)\n"                                                                                 \
    "  --data DIR           LMDB environment lives in DIR/lmdb (default ./var)\n"                                                \
    "  --storage DIR        local-directory object store (default DATA/storage)\n"                                               \
    "  --log-level LEVEL    error, warn, info (default), debug\n"                                                                \
    "  --access-log PATH    access log file, - for stdout (default), \"\" for none\n"                                            \
    "  --object-store KIND  local (the --storage directory, default) or s3 (object_store.r2, then .s3)\n"                     \
    "  --check              validate the configuration and exit\n"

#endif
