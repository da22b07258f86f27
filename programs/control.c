/* updraft-control: the control plane (API keys, apps, releases, rollouts). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "control/api.h"
#include "control/audit.h"
#include "control/backup.h"
#include "control/control.h"
#include "control/keys.h"
#include "base/err.h"
#include "server/conf_common.h"
#include "server/http.h"
#include "base/log.h"
#include "server/program.h"

static const upd_conf_decl_t control_decls[] = {
    UPD_CONF_COMMON_DECLS("127.0.0.1:8081", "1048576"),
    UPD_CONF_OBJECT_STORE_DECLS,
    /* an upload of SIZE bytes must be done within upload_timeout_base_ms + SIZE / upload_min_rate_kib (s3_sync.h) */
    {"object_store.upload_min_rate_kib", UPD_CONF_UINT, offsetof(upd_conf_t, upload_min_rate_kib), 1, 10485760, "256", NULL},
    {"object_store.upload_timeout_base_ms", UPD_CONF_UINT, offsetof(upd_conf_t, upload_timeout_base_ms), 100, 3600000, "30000", NULL},
    /* the threads that run state changes off the event loop (server/workers.h) */
    {"workers.threads", UPD_CONF_UINT, offsetof(upd_conf_t, workers_threads), 1, 64, "4", NULL},
    {"workers.queue", UPD_CONF_UINT, offsetof(upd_conf_t, workers_queue), 1, 100000, "64", NULL},
    {"integrity.block_size", UPD_CONF_UINT, offsetof(upd_conf_t, block_size), UPD_BLOCK_SIZE_MIN, UPD_BLOCK_SIZE_MAX, "1048576", NULL},
    {"public_url", UPD_CONF_STRING, offsetof(upd_conf_t, public_url), 0, 0, "http://127.0.0.1:8080", "--public-url"},
    /* release propagation (control/propagate.h) */
    {"propagation.origins", UPD_CONF_STRLIST, offsetof(upd_conf_t, propagation_origins), 0, 0, "", NULL},
    {"propagation.secret", UPD_CONF_STRING, offsetof(upd_conf_t, propagation_secret), 0, 0, "", NULL},
    {"propagation.varnish", UPD_CONF_STRLIST, offsetof(upd_conf_t, propagation_varnish), 0, 0, "", NULL},
    {"propagation.cloudflare.zone_id", UPD_CONF_STRING, offsetof(upd_conf_t, cloudflare_zone_id), 0, 0, "", NULL},
    {"propagation.cloudflare.api_token", UPD_CONF_STRING, offsetof(upd_conf_t, cloudflare_api_token), 0, 0, "", NULL},
    {"propagation.cloudflare.api_base", UPD_CONF_STRING, offsetof(upd_conf_t, cloudflare_api_base), 0, 0,
     "https://api.cloudflare.com/client/v4", NULL},
    {"propagation.timeout_ms", UPD_CONF_UINT, offsetof(upd_conf_t, propagation_timeout_ms), 100, 600000, "2000", NULL},
    {"propagation.retry_initial_ms", UPD_CONF_UINT, offsetof(upd_conf_t, propagation_retry_initial_ms), 10, 3600000, "500", NULL},
    {"propagation.retry_max_ms", UPD_CONF_UINT, offsetof(upd_conf_t, propagation_retry_max_ms), 10, 86400000, "30000", NULL},
    {"propagation.retry_attempts", UPD_CONF_UINT, offsetof(upd_conf_t, propagation_retry_attempts), 0, 1000, "10", NULL},
    /* backups of the environment to the object stores (control/backup.h) */
    {"backup.enabled", UPD_CONF_BOOL, offsetof(upd_conf_t, backup_enabled), 0, 0, "true", NULL},
    {"backup.interval_s", UPD_CONF_UINT, offsetof(upd_conf_t, backup_interval_s), 1, 31536000, "86400", NULL},
    {"backup.at", UPD_CONF_STRING, offsetof(upd_conf_t, backup_at), 0, 0, "03:00", NULL},
    {"backup.retention_days", UPD_CONF_UINT, offsetof(upd_conf_t, backup_retention_days), 1, 36500, "42", NULL},
    {"backup.part_size_mib", UPD_CONF_UINT, offsetof(upd_conf_t, backup_part_size_mib), 5, 5120, "64", NULL},
    {"backup.part_retries", UPD_CONF_UINT, offsetof(upd_conf_t, backup_part_retries), 0, 10, "2", NULL},
    {"backup.refresh_s", UPD_CONF_UINT, offsetof(upd_conf_t, backup_refresh_s), 1, 86400, "600", NULL},
    {"backup.temp_dir", UPD_CONF_STRING, offsetof(upd_conf_t, backup_temp_dir), 0, 0, "", NULL},
    UPD_CONF_END,
};

static const upd_program_t control_program = {
    "updraft-control",
    control_decls,
    UPD_CONF_COMMON_USAGE "  --public-url URL     prefix of artifact URLs in update feeds: the origin or CDN host\n"
                          "\nsubcommands:\n"
                          "  keys create --role admin|release|build --name NAME   print a new API key (shown once)\n"
                          "  backup now                       back the environment up to every object store now\n"
                          "  backup list                      the backups in the object stores, and whether each is good\n"
                          "  backup restore ID --data DIR [--force] [--from r2|s3|local]\n"
                          "                                   restore a backup into DIR/lmdb (stop the programs first)\n",
};

/* updraft-control [flags] keys create --role ROLE --name NAME */
static int
keys_create(upd_conf_t *conf, int argc, char **argv)
{
    const char *role_s = NULL, *name = NULL;
    for (int i = 0; i < argc; ++i) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role_s = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            free(conf->data_dir);
            conf->data_dir = strdup(argv[++i]);
        } else {
            fprintf(stderr, "updraft-control: keys create: unexpected %s\nusage: updraft-control [--data DIR] keys create --role "
                            "admin|release|build --name NAME\n",
                    argv[i]);
            return 2;
        }
    }
    int role = role_s != NULL ? upd_role_parse(role_s) : -1;
    if (role < 0 || name == NULL || name[0] == '\0' || strlen(name) > 64) {
        fprintf(stderr, "updraft-control: keys create needs --role admin|release|build and --name NAME (1-64 bytes)\n");
        return 2;
    }
    upd_store_t *store = NULL;
    if (upd_program_open_store(conf, &store) != 0)
        return 1;
    char key[128];
    int r = upd_keys_create(store, (upd_role_t)role, name, key, sizeof(key));
    upd_store_close(store);
    if (r != 0) {
        fprintf(stderr, "updraft-control: keys create: %s\n", upd_strerror(r));
        return 1;
    }
    printf("%s\n", key);
    fprintf(stderr, "updraft-control: created %s key \"%s\"; it is shown only this once\n", role_s, name);
    return 0;
}

/* backup.* as control/backup.h takes them. @return 0, or -1 with the reason printed */
static int
backup_conf(const upd_conf_t *conf, upd_backup_conf_t *out)
{
    uint32_t at;
    if (upd_backup_parse_at(conf->backup_at, &at) != 0) {
        fprintf(stderr, "updraft-control: backup.at: expected HH:MM or HH:MM:SS (UTC), not \"%s\"\n", conf->backup_at);
        return -1;
    }
    const char *temp = conf->backup_temp_dir[0] != '\0' ? conf->backup_temp_dir : conf->data_dir;
    if (strlen(temp) > 900) {
        fprintf(stderr, "updraft-control: backup.temp_dir: at most 900 bytes\n");
        return -1;
    }
    *out = (upd_backup_conf_t){
        .enabled = conf->backup_enabled,
        .interval = conf->backup_interval_s,
        .at = at,
        .retention = conf->backup_retention_days * 86400,
        .part_size = conf->backup_part_size_mib << 20,
        .part_retries = (unsigned)conf->backup_part_retries,
        .refresh = conf->backup_refresh_s,
        .temp_dir = temp,
        .map_size = (size_t)conf->lmdb_map_mib << 20,
    };
    return 0;
}

static int
backup_usage(const char *why)
{
    fprintf(stderr, "updraft-control: backup: %s\nusage: updraft-control [--config FILE] [--data DIR] backup now | list | restore ID --data DIR "
                    "[--force] [--from r2|s3|local]\n",
            why);
    return 2;
}

/* updraft-control [flags] backup now | list | restore ID --data DIR [--force] [--from STORE] */
static int
backup_command(upd_conf_t *conf, int argc, char **argv)
{
    if (argc < 1)
        return backup_usage("expected now, list or restore");
    const char *cmd = argv[0], *id = NULL, *target = NULL, *from = NULL;
    bool force = false;
    bool now = strcmp(cmd, "now") == 0, list = strcmp(cmd, "list") == 0, restore = strcmp(cmd, "restore") == 0;
    if (!now && !list && !restore)
        return backup_usage("expected now, list or restore");
    for (int i = 1; i < argc; ++i) {
        if (restore && strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            target = argv[++i];
        else if (restore && strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            from = argv[++i];
        else if (restore && strcmp(argv[i], "--force") == 0)
            force = true;
        else if (restore && id == NULL && argv[i][0] != '-')
            id = argv[i];
        else if (!restore && strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            free(conf->data_dir);
            conf->data_dir = strdup(argv[++i]);
        } else {
            char why[160];
            snprintf(why, sizeof(why), "%s: unexpected %.100s", cmd, argv[i]);
            return backup_usage(why);
        }
    }
    if (restore && (id == NULL || target == NULL))
        return backup_usage("restore needs the backup's ID and --data DIR (the directory to restore into)");
    upd_backup_conf_t bc;
    upd_s3_backend_t backends[UPD_BACKENDS];
    size_t nbackends = 0;
    if (backup_conf(conf, &bc) != 0 || upd_program_object_store("updraft-control", conf, backends, &nbackends) != 0)
        return 1;
    upd_s3_timeouts_t timeouts = {
        .connect_ms = (uint32_t)conf->backend_connect_timeout_ms,
        .stall_ms = (uint32_t)conf->backend_stall_timeout_ms,
        .body_base_ms = (uint32_t)conf->upload_timeout_base_ms,
        .body_min_rate = conf->upload_min_rate_kib * 1024,
    };
    upd_store_t *store = NULL;
    int storage_fd = -1, ret = 1;
    upd_backup_t *b = NULL;
    /* restore and list never open the environment: restore may be putting one where it would be */
    if (now && upd_program_open_store(conf, &store) != 0)
        goto Exit;
    if ((storage_fd = upd_program_open_storage(conf)) < 0)
        goto Exit;
    if ((b = upd_backup_create(&bc, store, backends, nbackends, &timeouts, storage_fd)) == NULL)
        goto Exit;
    if (now) {
        /* the host's backup is recorded as the API's is: in a transaction of its own, before the copy holds it */
        upd_audit_ctx_t audit = {.host = true};
        char bid[UPD_BACKUP_ID_LEN + 1];
        upd_backup_id_format((int64_t)time(NULL), bid);
        snprintf(audit.action, sizeof(audit.action), "backup.create");
        snprintf(audit.request_id, sizeof(audit.request_id), "host");
        upd_audit_detail(&audit, "backup", json_string(bid));
        upd_store_txn_t *txn;
        int r = upd_store_write_begin(store, &txn);
        if (r == 0 && (r = upd_audit_append(txn, &audit)) == 0)
            r = upd_store_commit(txn);
        else if (r == 0)
            upd_store_txn_end(txn);
        upd_audit_ctx_dispose(&audit);
        if (r != 0) {
            fprintf(stderr, "updraft-control: backup now: the audit record could not be written: %s\n", upd_strerror(r));
            goto Exit;
        }
        r = upd_backup_run_now(b, bid, stdout);
        if (r == 0)
            printf("backup %s: good in every store\n", bid);
        else
            fprintf(stderr, "updraft-control: backup %s: %s\n", bid,
                    r == UPD_EIO ? "not good in every store (see above)" : upd_strerror(r));
        ret = r == 0 ? 0 : 1;
    } else if (list) {
        int r = upd_backup_refresh(b);
        upd_backup_print(b, stdout);
        if (r != 0)
            fprintf(stderr, "updraft-control: backup list: a store could not be listed (see the log)\n");
        ret = r == 0 ? 0 : 1;
    } else {
        char why[1024];
        int r = upd_backup_restore(b, id, target, force, from, stdout, why, sizeof(why));
        if (r != 0)
            fprintf(stderr, "updraft-control: backup restore %s: %s\n", id, why);
        ret = r == 0 ? 0 : 1;
    }
Exit:
    upd_backup_destroy(b);
    if (store != NULL)
        upd_store_close(store);
    if (storage_fd >= 0)
        close(storage_fd);
    upd_s3_sync_thread_done();
    return ret;
}

/* the propagation counters live with the propagator: appended to /metrics */
static void
render_propagation(void *arg, FILE *fp)
{
    upd_propagate_render_metrics(arg, fp);
}

static void
render_workers(void *arg, FILE *fp)
{
    upd_workers_render_metrics(arg, fp);
}

static void
render_backup(void *arg, FILE *fp)
{
    upd_backup_render_metrics(arg, fp);
}

/* Before the listeners open: the workers (their answers come back through this loop) and the retry thread. */
static int
on_loop_start(void *app, h2o_context_t *ctx)
{
    upd_control_t *c = app;
    /*
     * A change committed just before a crash or kill was never published: publish every app's state again. Before
     * the listeners open (so the state is out once the API answers), bounded by the object-store timeouts per write;
     * failures go to the retry thread.
     */
    upd_propagate_republish(c->propagate, c->store);
    if (upd_propagate_start(c->propagate) != 0 || upd_workers_start(c->workers, ctx) != 0 || upd_backup_start(c->backup) != 0)
        return -1;
    return 0;
}

/* After the loop stopped serving: running jobs finish (a registration is never left half done), then retries stop. */
static void
on_loop_stop(void *app)
{
    upd_control_t *c = app;
    upd_workers_stop(c->workers);
    upd_backup_stop(c->backup); /* a backup in progress is cancelled: a later run reads back what it left */
    upd_propagate_stop(c->propagate);
}

int
main(int argc, char **argv)
{
    upd_conf_t conf = {0};
    upd_control_t control = {.storage_fd = -1};
    bool check;
    int rest, ret = 1;
    upd_log_init("updraft-control");
    int r = upd_program_configure(&control_program, argc, argv, &conf, &check, &rest);
    if (r != 0)
        return r == 2 ? 0 : 1;
    if (rest != argc) {
        if (rest + 1 < argc && strcmp(argv[rest], "keys") == 0 && strcmp(argv[rest + 1], "create") == 0)
            ret = keys_create(&conf, argc - rest - 2, argv + rest + 2);
        else if (strcmp(argv[rest], "backup") == 0)
            ret = backup_command(&conf, argc - rest - 1, argv + rest + 1);
        else
            fprintf(stderr, "updraft-control: unknown command %s (see --help)\n", argv[rest]);
        upd_conf_dispose(control_decls, &conf);
        return ret;
    }
    size_t ul = strlen(conf.public_url);
    if (!(strncmp(conf.public_url, "http://", 7) == 0 || strncmp(conf.public_url, "https://", 8) == 0) || ul < 9) {
        fprintf(stderr, "updraft-control: public_url: expected an absolute http:// or https:// URL, not \"%s\"\n", conf.public_url);
        goto Exit;
    }
    while (ul > 0 && conf.public_url[ul - 1] == '/')
        conf.public_url[--ul] = '\0';
    /* object_store.kind s3: registration puts every file on R2 and on the S3 mirror (control/mirror.c) */
    if (upd_program_object_store("updraft-control", &conf, control.backends, &control.nbackends) != 0)
        goto Exit;
    control.timeouts = (upd_s3_timeouts_t){
        .connect_ms = (uint32_t)conf.backend_connect_timeout_ms,
        .total_ms = 0, /* large installers take long: their deadline grows with their size instead */
        .stall_ms = (uint32_t)conf.backend_stall_timeout_ms,
        .body_base_ms = (uint32_t)conf.upload_timeout_base_ms,
        .body_min_rate = conf.upload_min_rate_kib * 1024,
    };
    char perr[512];
    if ((control.propagate = upd_propagate_create(&conf, control.backends, control.nbackends, &control.timeouts, perr,
                                                  sizeof(perr))) == NULL) {
        fprintf(stderr, "updraft-control: %s\n", perr);
        goto Exit;
    }
    upd_backup_conf_t backup_settings;
    if (backup_conf(&conf, &backup_settings) != 0)
        goto Exit;
    if (check) {
        printf("updraft-control: configuration ok\n");
        ret = 0;
        goto Exit;
    }
    if (upd_program_open_store(&conf, &control.store) != 0 || (control.storage_fd = upd_program_open_storage(&conf)) < 0)
        goto Exit;
    control.conf = &conf;
    for (size_t i = 0; i < control.nbackends; ++i)
        upd_log_info("object storage: %s at %s://%s, bucket %s (%s-style)", control.backends[i].name,
                     control.backends[i].tls ? "https" : "http", control.backends[i].host, control.backends[i].bucket,
                     control.backends[i].virtual_hosted ? "virtual" : "path");
    upd_propagate_log_targets(control.propagate);
    size_t nroutes;
    const char *const *route_labels = upd_control_route_labels(&nroutes);
    control.metrics = upd_metrics_create("control", route_labels, nroutes);
    if (control.propagate != NULL)
        upd_metrics_add_renderer(control.metrics, render_propagation, control.propagate);
    control.workers = upd_workers_create(conf.workers_threads, conf.workers_queue);
    upd_metrics_add_renderer(control.metrics, render_workers, control.workers);
    if ((control.backup = upd_backup_create(&backup_settings, control.store, control.backends, control.nbackends, &control.timeouts,
                                            control.storage_fd)) == NULL)
        goto Exit;
    upd_metrics_add_renderer(control.metrics, render_backup, control.backup);
    upd_http_opts_t opts = {
        .program = "updraft-control",
        .conf = &conf,
        .on_req = upd_control_on_req,
        .route_of = upd_control_route_of,
        .route_names = route_labels,
        .nroutes = nroutes,
        .app = &control,
        .allow_bodies = true,
        .metrics = control.metrics,
        .on_loop_start = on_loop_start,
        .on_loop_stop = on_loop_stop,
    };
    ret = upd_http_run(&opts);
Exit:
    upd_workers_destroy(control.workers); /* stopped already, unless start-up failed half way */
    upd_backup_destroy(control.backup);
    upd_propagate_stop(control.propagate);
    if (control.store != NULL)
        upd_store_close(control.store);
    if (control.storage_fd >= 0)
        close(control.storage_fd);
    upd_propagate_destroy(control.propagate);
    upd_metrics_destroy(control.metrics);
    upd_conf_dispose(control_decls, &conf);
    return ret;
}
