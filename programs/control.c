/* updraft-control: the control plane (members, API keys, apps, releases, drafts, rollouts). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "control/api.h"
#include "control/audit.h"
#include "control/audit_export.h"
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
    /* API keys' last use, noted in memory on the loop, written by a thread of its own (control/keys.h) */
    {"keys.last_used_interval_ms", UPD_CONF_UINT, offsetof(upd_conf_t, keys_last_used_interval_ms), 1000, 86400000, "60000", NULL},
    {"keys.last_used_max", UPD_CONF_UINT, offsetof(upd_conf_t, keys_last_used_max), 16, 10000000, "10000", NULL},
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
    /* the audit trail: its export to object storage (control/audit_export.h) and its query (control/audit_query.h) */
    {"audit.export_records", UPD_CONF_UINT, offsetof(upd_conf_t, audit_export_records), 1, 100000, "100", NULL},
    {"audit.export_interval_ms", UPD_CONF_UINT, offsetof(upd_conf_t, audit_export_interval_ms), 10, 86400000, "60000", NULL},
    {"audit.export_check_ms", UPD_CONF_UINT, offsetof(upd_conf_t, audit_export_check_ms), 10, 60000, "1000", NULL},
    {"audit.export_retry_initial_ms", UPD_CONF_UINT, offsetof(upd_conf_t, audit_export_retry_initial_ms), 10, 3600000, "1000", NULL},
    {"audit.export_retry_max_ms", UPD_CONF_UINT, offsetof(upd_conf_t, audit_export_retry_max_ms), 10, 86400000, "60000", NULL},
    {"audit.query_scan_max", UPD_CONF_UINT, offsetof(upd_conf_t, audit_query_scan_max), 1, 100000000, "100000", NULL},
    /* backups of the environment to the object stores (control/backup.h) */
    {"backup.enabled", UPD_CONF_BOOL, offsetof(upd_conf_t, backup_enabled), 0, 0, "true", NULL},
    {"backup.interval_s", UPD_CONF_UINT, offsetof(upd_conf_t, backup_interval_s), 1, 31536000, "86400", NULL},
    {"backup.at", UPD_CONF_STRING, offsetof(upd_conf_t, backup_at), 0, 0, "03:00", NULL},
    {"backup.retention_days", UPD_CONF_UINT, offsetof(upd_conf_t, backup_retention_days), 1, 36500, "42", NULL},
    {"backup.part_size_mib", UPD_CONF_UINT, offsetof(upd_conf_t, backup_part_size_mib), 5, 5120, "64", NULL},
    {"backup.part_retries", UPD_CONF_UINT, offsetof(upd_conf_t, backup_part_retries), 0, 10, "2", NULL},
    {"backup.refresh_s", UPD_CONF_UINT, offsetof(upd_conf_t, backup_refresh_s), 1, 86400, "600", NULL},
    {"backup.temp_dir", UPD_CONF_STRING, offsetof(upd_conf_t, backup_temp_dir), 0, 0, "", NULL},
    /* a restore's roll-forward reads published state documents (the origins' state.max_document_bytes, the same field) */
    {"backup.restore_max_document_bytes", UPD_CONF_UINT, offsetof(upd_conf_t, state_max_document_bytes), 4096, 1ull << 30,
     "268435456", NULL},
    UPD_CONF_END,
};

static const upd_program_t control_program = {
    "updraft-control",
    control_decls,
    UPD_CONF_COMMON_USAGE "  --public-url URL     prefix of artifact URLs in update feeds: the origin or CDN host\n"
                          "\nsubcommands:\n"
                          "  keys create --role admin|release|build --name NAME [--member M] [--app APP] [--expires D]\n"
                          "                       print a new API key (shown once); D: 90d, 12h, 30m or Unix seconds\n"
                          "  audit verify         check the audit chain and its exported copies\n"
                          "  backup now                       back the environment up to every object store now\n"
                          "  backup list                      the backups in the object stores, and whether each is good\n"
                          "  backup restore ID --data DIR [--force] [--from r2|s3|local] [--no-roll-forward]\n"
                          "                                   restore a backup into DIR/lmdb, rolled forward from the stores\n"
                          "                                   (stop the programs first)\n",
};

#define KEYS_CREATE_USAGE                                                                                                          \
    "usage: updraft-control [--data DIR] keys create --role admin|release|build --name NAME [--member M] [--app APP]"              \
    " [--expires 90d|12h|30m|UNIX_SECONDS]\n"

/*
 * updraft-control [flags] keys create --role ROLE --name NAME [--member M] [--app APP] [--expires D]: the host's
 * bootstrap. The key and its audit record (actor: the host) land in one write transaction.
 */
static int
keys_create(upd_conf_t *conf, int argc, char **argv)
{
    const char *role_s = NULL, *name = NULL, *member = NULL, *app = "*", *expires_s = NULL;
    for (int i = 0; i < argc; ++i) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role_s = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--member") == 0 && i + 1 < argc)
            member = argv[++i];
        else if (strcmp(argv[i], "--app") == 0 && i + 1 < argc)
            app = argv[++i];
        else if (strcmp(argv[i], "--expires") == 0 && i + 1 < argc)
            expires_s = argv[++i];
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            free(conf->data_dir);
            conf->data_dir = strdup(argv[++i]);
        } else {
            fprintf(stderr, "updraft-control: keys create: unexpected %s\n" KEYS_CREATE_USAGE, argv[i]);
            return 2;
        }
    }
    int role = role_s != NULL ? upd_role_parse(role_s) : -1;
    if (role < 0 || name == NULL || name[0] == '\0' || strlen(name) > UPD_KEY_NAME_MAX) {
        fprintf(stderr,
                "updraft-control: keys create needs --role admin|release|build and --name NAME (1-64 bytes)\n" KEYS_CREATE_USAGE);
        return 2;
    }
    if (member != NULL && !upd_id_is_app(member, strlen(member))) {
        fprintf(stderr, "updraft-control: keys create: --member %s: expected a member id ([a-z0-9][a-z0-9-]{0,62})\n", member);
        return 2;
    }
    if (strcmp(app, "*") != 0 && !upd_id_is_app(app, strlen(app))) {
        fprintf(stderr, "updraft-control: keys create: --app %s: expected \"*\" or an app id ([a-z0-9][a-z0-9-]{0,62})\n", app);
        return 2;
    }
    int64_t now = (int64_t)time(NULL), expires = 0;
    if (expires_s != NULL && upd_keys_parse_expires(expires_s, now, &expires) != 0) {
        fprintf(stderr,
                "updraft-control: keys create: --expires %s: expected 90d, 12h, 30m (at most ten years) or Unix seconds "
                "after now\n",
                expires_s);
        return 2;
    }
    upd_store_t *store = NULL;
    if (upd_program_open_store(conf, &store) != 0)
        return 1;
    char key[UPD_KEY_LEN + 1];
    const char *data;
    size_t len;
    json_t *listing = NULL;
    upd_audit_ctx_t audit = {.host = true};
    upd_store_txn_t *txn;
    int r = upd_store_write_begin(store, &txn), ret = 1;
    if (r != 0)
        goto Exit;
    if (member != NULL && upd_store_member_get(txn, member, &data, &len) != 0) {
        fprintf(stderr, "updraft-control: keys create: --member %s: no such member\n", member);
        upd_store_txn_end(txn);
        goto Exit;
    }
    if (strcmp(app, "*") != 0 && upd_store_app_get(txn, app, &data, &len) != 0) {
        fprintf(stderr, "updraft-control: keys create: --app %s: no such app\n", app);
        upd_store_txn_end(txn);
        goto Exit;
    }
    upd_key_spec_t spec = {name, member, app, (upd_role_t)role, expires};
    if ((r = upd_keys_create(txn, &spec, now, key, sizeof(key), &listing)) != 0) {
        upd_store_txn_end(txn);
        goto Exit;
    }
    snprintf(audit.action, sizeof(audit.action), "key.create");
    snprintf(audit.target_key, sizeof(audit.target_key), "%s", json_string_value(json_object_get(listing, "id")));
    snprintf(audit.target_member, sizeof(audit.target_member), "%s", member != NULL ? member : "");
    if (strcmp(app, "*") != 0)
        snprintf(audit.app, sizeof(audit.app), "%s", app);
    upd_audit_detail(&audit, "scope", json_pack("{s:s, s:s}", "app", app, "role", role_s));
    upd_audit_detail(&audit, "name", json_string(name));
    upd_audit_detail(&audit, "expires", expires != 0 ? json_integer((json_int_t)expires) : json_null());
    if ((r = upd_audit_append(txn, &audit)) != 0) {
        upd_store_txn_end(txn);
        goto Exit;
    }
    if ((r = upd_store_commit(txn)) != 0)
        goto Exit;
    printf("%s\n", key);
    fprintf(stderr, "updraft-control: created %s key %s \"%s\" on %s%s%s; it is shown only this once\n", role_s, audit.target_key,
            name, app, member != NULL ? " for " : "", member != NULL ? member : "");
    ret = 0;
Exit:
    if (r != 0)
        fprintf(stderr, "updraft-control: keys create: %s\n", upd_strerror(r));
    OPENSSL_cleanse(key, sizeof(key));
    json_decref(listing);
    upd_audit_ctx_dispose(&audit);
    upd_store_close(store);
    return ret;
}

/*
 * updraft-control [--config F] [--data DIR] audit verify: the chain in the store, then every exported segment against
 * it. The store is opened read-only; the control plane may be running. Exit 0 (all match), 1 (a break, or a store or
 * backend that cannot be read), 2 (usage).
 */
static int
audit_verify(upd_conf_t *conf, int argc, char **argv)
{
    for (int i = 0; i < argc; ++i) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            free(conf->data_dir);
            conf->data_dir = strdup(argv[++i]);
        } else {
            fprintf(stderr, "updraft-control: audit verify: unexpected %s\nusage: updraft-control [--config FILE] [--data DIR] "
                            "audit verify\n",
                    argv[i]);
            return 2;
        }
    }
    upd_s3_backend_t backends[UPD_BACKENDS];
    size_t nbackends = 0;
    if (upd_program_object_store("updraft-control", conf, backends, &nbackends) != 0)
        return 2;
    upd_s3_timeouts_t timeouts = {
        .connect_ms = (uint32_t)conf->backend_connect_timeout_ms,
        .stall_ms = (uint32_t)conf->backend_stall_timeout_ms,
        .body_base_ms = (uint32_t)conf->upload_timeout_base_ms,
        .body_min_rate = conf->upload_min_rate_kib * 1024,
    };
    upd_store_t *store = NULL;
    upd_store_opts_t sopts = {.map_size = (size_t)conf->lmdb_map_mib << 20, .read_only = true};
    int r = upd_store_open(conf->data_dir, &sopts, &store);
    if (r != 0) {
        fprintf(stderr, "updraft-control: audit verify: cannot open the store in %s: %s\n", conf->data_dir,
                r == UPD_ENOTFOUND ? "no store there" : upd_strerror(r));
        if (store != NULL)
            upd_store_close(store);
        return 1;
    }
    /* the local object store, read only: not created when absent */
    int storage_fd = -1;
    if (nbackends == 0) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", conf->storage_dir[0] != '\0' ? conf->storage_dir : conf->data_dir);
        if (conf->storage_dir[0] == '\0')
            snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/storage");
        if ((storage_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
            fprintf(stderr, "updraft-control: audit verify: storage_dir %s: %s\n", dir, strerror(errno));
            upd_store_close(store);
            return 1;
        }
    }
    char summary[1024];
    upd_reason_t why = {"", ""};
    r = upd_audit_verify(store, backends, nbackends, &timeouts, storage_fd, summary, sizeof(summary), &why);
    upd_store_close(store);
    if (storage_fd >= 0)
        close(storage_fd);
    upd_s3_sync_thread_done();
    if (r == 0) {
        printf("%s\n", summary);
        return 0;
    }
    if (r == UPD_EINTEGRITY)
        fprintf(stderr, "updraft-control: audit verify: the trail breaks at %s\n", why.message);
    else
        fprintf(stderr, "updraft-control: audit verify: %s\n", why.message);
    return 1;
}

static void
render_audit(void *arg, FILE *fp)
{
    upd_audit_export_render_metrics(arg, fp);
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
                    "[--force] [--from r2|s3|local] [--no-roll-forward]\n",
            why);
    return 2;
}

/* updraft-control [flags] backup now | list | restore ID --data DIR [--force] [--from STORE] [--no-roll-forward] */
static int
backup_command(upd_conf_t *conf, int argc, char **argv)
{
    if (argc < 1)
        return backup_usage("expected now, list or restore");
    const char *cmd = argv[0], *id = NULL, *target = NULL, *from = NULL;
    bool force = false, roll_forward = true;
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
        else if (restore && strcmp(argv[i], "--no-roll-forward") == 0)
            roll_forward = false;
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
        /* exit 1 also when the environment is in place but not rolled forward completely: do not start on it unseen */
        char why[2048];
        upd_backup_restore_opts_t ro = {
            .force = force, .from = from, .roll_forward = roll_forward, .doc_max = (size_t)conf->state_max_document_bytes};
        upd_restore_report_t report;
        int r = upd_backup_restore(b, id, target, &ro, stdout, &report, why, sizeof(why));
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
render_key_uses(void *arg, FILE *fp)
{
    upd_key_uses_render_metrics(arg, fp);
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
    if (upd_propagate_start(c->propagate) != 0 || upd_key_uses_start(c->key_uses) != 0 || upd_workers_start(c->workers, ctx) != 0 ||
        upd_audit_export_start(c->audit_export) != 0 || upd_backup_start(c->backup) != 0)
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
    upd_key_uses_stop(c->key_uses); /* the last uses noted are written */
    upd_audit_export_stop(c->audit_export); /* after the workers: their last records are in the store, and go out now */
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
        else if (rest + 1 < argc && strcmp(argv[rest], "audit") == 0 && strcmp(argv[rest + 1], "verify") == 0)
            ret = audit_verify(&conf, argc - rest - 2, argv + rest + 2);
        else if (strcmp(argv[rest], "audit") == 0) {
            fprintf(stderr, "updraft-control: audit: expected verify\nusage: updraft-control [--config FILE] [--data DIR] audit "
                            "verify\n");
            ret = 2;
        }
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
    if (conf.audit_export_retry_max_ms < conf.audit_export_retry_initial_ms) {
        fprintf(stderr, "updraft-control: audit.export_retry_max_ms (%llu) is below audit.export_retry_initial_ms (%llu)\n",
                (unsigned long long)conf.audit_export_retry_max_ms, (unsigned long long)conf.audit_export_retry_initial_ms);
        goto Exit;
    }
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
    upd_audit_export_opts_t xopts = {
        .records = conf.audit_export_records,
        .interval_ms = conf.audit_export_interval_ms,
        .check_ms = conf.audit_export_check_ms,
        .retry_initial_ms = conf.audit_export_retry_initial_ms,
        .retry_max_ms = conf.audit_export_retry_max_ms,
    };
    if ((control.audit_export = upd_audit_export_create(control.store, control.backends, control.nbackends, &control.timeouts,
                                                        control.storage_fd, &xopts)) == NULL)
        goto Exit;
    upd_metrics_add_renderer(control.metrics, render_audit, control.audit_export);
    control.key_uses = upd_key_uses_create(control.store, conf.keys_last_used_interval_ms, (size_t)conf.keys_last_used_max);
    upd_metrics_add_renderer(control.metrics, render_key_uses, control.key_uses);
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
    upd_audit_export_destroy(control.audit_export);
    upd_backup_destroy(control.backup);
    upd_propagate_stop(control.propagate);
    upd_key_uses_destroy(control.key_uses); /* before the store it writes to */
    if (control.store != NULL)
        upd_store_close(control.store);
    if (control.storage_fd >= 0)
        close(control.storage_fd);
    upd_propagate_destroy(control.propagate);
    upd_metrics_destroy(control.metrics);
    upd_conf_dispose(control_decls, &conf);
    return ret;
}
