#ifndef UPD_CONFIG_H
#define UPD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Configuration: one YAML file per program (conf/origin.yaml, conf/control.yaml), every key declared
 * once in a table with its type, bounds and default (upd_conf_decl_t), then command-line overrides.
 * Errors name the file and line: "conf/origin.yaml:12: limits.max_header_bytes: above the maximum 1048576".
 */

typedef struct st_upd_strlist_t {
    char **items;
    size_t size;
} upd_strlist_t;

/* One S3-compatible backend (object_store.r2, object_store.s3). */
typedef struct st_upd_conf_backend_t {
    char *endpoint;   /* "https://ACCOUNT.r2.cloudflarestorage.com", "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000" */
    char *region;     /* "auto" for R2, "eu-west-1" for the S3 mirror */
    char *bucket;
    char *addressing; /* "path" (ENDPOINT/BUCKET/KEY) or "virtual" (BUCKET.HOST/KEY) */
    char *access_key; /* the environment's UPDRAFT_<NAME>_ACCESS_KEY_ID wins when set */
    char *secret_key; /* the environment's UPDRAFT_<NAME>_SECRET_ACCESS_KEY wins when set; never logged */
} upd_conf_backend_t;

typedef struct st_upd_conf_t {
    /* both programs */
    upd_strlist_t listen; /* "ADDR:PORT" or "https://ADDR:PORT"; [::1]:PORT for IPv6 */
    char *tls_cert, *tls_key;
    char *data_dir;    /* LMDB environment lives in DATA_DIR/lmdb */
    char *storage_dir; /* local-directory object store: STORAGE_DIR/APP/VERSION/FILE */
    char *log_level;
    char *access_log;  /* path, "-" for stdout, "" for none */
    uint64_t max_header_bytes;
    uint64_t max_body_bytes;
    uint64_t http2_max_streams;
    uint64_t idle_timeout_ms;
    uint64_t shutdown_timeout_ms;
    uint64_t lmdb_map_mib;
    /* object storage: "local" (storage_dir) or "s3" (R2 first, the S3 mirror when R2 fails) */
    char *object_store;
    upd_conf_backend_t r2, s3;
    uint64_t backend_connect_timeout_ms;
    uint64_t backend_first_byte_timeout_ms;
    uint64_t backend_stall_timeout_ms;
    uint64_t backend_breaker_failures;
    uint64_t backend_breaker_open_ms;
    /* updraft-origin */
    char *cache_dir;        /* verified artifacts; "" means DATA_DIR/cache */
    uint64_t cache_max_mib; /* size cap, least recently used evicted first */
    uint64_t cache_fill_lead_mib; /* how far a fill may run ahead of its fastest reader */
    uint64_t cache_max_fills;     /* backend fills at once; further misses queue */
    uint64_t cache_fill_queue;    /* misses waiting for a fill slot; beyond this 503 */
    uint64_t cache_scrub_mb_per_s; /* background re-verification of cached objects (MB/s; 0: off) */
    uint64_t cache_hash_threads;  /* threads verifying fills off the loop; 0 = one per online CPU */
    char *purge_secret;             /* purge.secret: HMAC key shared with the control plane; "" disables the endpoint */
    uint64_t state_poll_ms;         /* state.poll_ms: how often published state is polled (0: never) */
    uint64_t state_sync_timeout_ms; /* state.sync_timeout_ms: how long a purge waits for the origin to catch up */
    uint64_t state_max_document_bytes; /* state.max_document_bytes: a larger index or app document is refused */
    char *geoip_database;
    upd_strlist_t trusted_proxies;
    uint64_t feed_max_age;
    uint64_t download_max_age;
    uint64_t clients_queue;
    uint64_t clients_flush_ms;
    uint64_t clients_recent;
    /* updraft-control */
    char *public_url;
    uint64_t block_size; /* per-block digests for files over this size */
    /* updraft-control: release propagation (control/propagate.h) */
    upd_strlist_t propagation_origins; /* base URLs of origins purged (POST ORIGIN/_updraft/purge, signed) */
    char *propagation_secret;          /* the purge HMAC key; the environment's UPDRAFT_PURGE_SECRET wins; never logged */
    upd_strlist_t propagation_varnish; /* base URLs of Varnish listeners banned by tag */
    char *cloudflare_zone_id;          /* "" for no Cloudflare purge */
    char *cloudflare_api_token;        /* UPDRAFT_CLOUDFLARE_API_TOKEN wins; never logged */
    char *cloudflare_api_base;
    uint64_t propagation_timeout_ms;   /* each step's parallel purges */
    uint64_t propagation_retry_initial_ms, propagation_retry_max_ms, propagation_retry_attempts;
    /* updraft-control: the worker pool of state changes (server/workers.h) and the uploads' deadline */
    uint64_t workers_threads, workers_queue;
    uint64_t upload_min_rate_kib;    /* object_store.upload_min_rate_kib: slower uploads fail */
    uint64_t upload_timeout_base_ms; /* object_store.upload_timeout_base_ms: added to size / rate */
    /* updraft-control: the audit trail's export to object storage (control/audit_export.h) and its query */
    uint64_t audit_export_records;     /* audit.export_records: a segment once this many records wait */
    uint64_t audit_export_interval_ms; /* audit.export_interval_ms: or once the oldest waiting is this old */
    uint64_t audit_export_check_ms;    /* audit.export_check_ms: how often the exporter looks for new records */
    uint64_t audit_export_retry_initial_ms, audit_export_retry_max_ms; /* a failed backend's backoff */
    uint64_t audit_query_scan_max;     /* audit.query_scan_max: records GET /v1/audit reads at most per request */
    /* updraft-control: API keys' last use (control/keys.h) */
    uint64_t keys_last_used_interval_ms; /* keys.last_used_interval_ms: one write per key at most this often */
    uint64_t keys_last_used_max;         /* keys.last_used_max: keys whose use is held in memory */
    /* updraft-control: backups of the LMDB environment (control/backup.h) */
    bool backup_enabled;            /* backup.enabled: scheduled runs */
    uint64_t backup_interval_s;     /* backup.interval_s */
    char *backup_at;                /* backup.at: "HH:MM" UTC, the runs' offset */
    uint64_t backup_retention_days; /* backup.retention_days */
    uint64_t backup_part_size_mib;  /* backup.part_size_mib: multipart uploads beyond */
    uint64_t backup_part_retries;   /* backup.part_retries */
    uint64_t backup_refresh_s;      /* backup.refresh_s: how often the stores' backups are listed */
    char *backup_temp_dir;          /* backup.temp_dir: "" means DATA_DIR */
    /* updraft-sts (docs/sts.md "Configuration"); public_url above is its links' base */
    char *sts_rp_id;                /* webauthn.rp_id: "" means the host of public_url */
    upd_strlist_t sts_origins;      /* webauthn.origins: empty means [public_url] */
    uint64_t sts_challenge_ttl_s;   /* webauthn.challenge_ttl_s */
    uint64_t sts_enrol_ttl_s;       /* enrol.ttl_s: one-time enrolment links */
    uint64_t sts_proposals_ttl_s;   /* proposals.ttl_s: a pending proposal expires after */
    uint64_t sts_signing_ttl_s;     /* signing.ttl_s: an envelope's expiry after signing */
    uint64_t sts_resign_before_s;   /* signing.resign_before_s: re-sign when fewer seconds are left */
    uint64_t sts_resign_check_s;    /* signing.resign_check_s: how often the re-sign thread looks (60) */
    bool sts_auto_sign_reductions;  /* signing.auto_sign_reductions */
    char *sts_control_token;        /* control.token: UPDRAFT_STS_CONTROL_TOKEN wins; never logged */
} upd_conf_t;

typedef enum { UPD_CONF_STRING, UPD_CONF_UINT, UPD_CONF_BOOL, UPD_CONF_STRLIST } upd_conf_type_t;

typedef struct st_upd_conf_decl_t {
    const char *name; /* dotted path in the YAML file: "limits.max_header_bytes" */
    upd_conf_type_t type;
    size_t offset; /* of the field in upd_conf_t */
    uint64_t min, max;
    const char *def; /* default, as it would be written in the file; NULL for none */
    const char *flag; /* command-line override ("--data"), or NULL */
} upd_conf_decl_t;

#define UPD_CONF_END {NULL}

/** Sets every declared field to its default. */
void upd_conf_defaults(const upd_conf_decl_t *decls, upd_conf_t *conf);
/**
 * Reads a YAML file over the current values. Unknown keys, wrong types and out-of-range values are errors.
 * @return 0, or -1 with a message ("FILE:LINE: KEY: reason") in err
 */
int upd_conf_load_file(const upd_conf_decl_t *decls, upd_conf_t *conf, const char *path, char *err, size_t errlen);
/**
 * Applies one "--flag value" override. A list flag given repeatedly appends, replacing the file's list on first use
 * (tracked per declaration in *lists_reset, which starts at 0).
 * @return 1 when the flag is declared and applied, 0 when not declared, -1 on a bad value (message in err)
 */
int upd_conf_apply_flag(const upd_conf_decl_t *decls, upd_conf_t *conf, const char *flag, const char *value, uint64_t *lists_reset,
                        char *err, size_t errlen);
/** Frees every string and list. */
void upd_conf_dispose(const upd_conf_decl_t *decls, upd_conf_t *conf);

#endif
