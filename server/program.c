#include "server/program.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include "base/err.h"
#include "base/log.h"

int
upd_mkdirs(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return UPD_EINVAL;
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; ++p) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return UPD_EIO;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? UPD_EIO : 0;
}

int
upd_program_object_store(const char *prog, const upd_conf_t *conf, upd_s3_backend_t backends[UPD_BACKENDS], size_t *n)
{
    *n = 0;
    if (strcmp(conf->object_store, "local") == 0)
        return 0;
    if (strcmp(conf->object_store, "s3") != 0) {
        fprintf(stderr, "%s: object_store.kind: expected local or s3, not \"%s\"\n", prog, conf->object_store);
        return UPD_EINVAL;
    }
    const struct {
        const char *name, *env_key, *env_secret;
        const upd_conf_backend_t *c;
    } list[UPD_BACKENDS] = {
        {"r2", "UPDRAFT_R2_ACCESS_KEY_ID", "UPDRAFT_R2_SECRET_ACCESS_KEY", &conf->r2},
        {"s3", "UPDRAFT_S3_ACCESS_KEY_ID", "UPDRAFT_S3_SECRET_ACCESS_KEY", &conf->s3},
    };
    for (size_t i = 0; i < UPD_BACKENDS; ++i) {
        const char *key = getenv(list[i].env_key), *secret = getenv(list[i].env_secret);
        char err[256];
        if (upd_s3_backend_init(&backends[i], list[i].name, list[i].c->endpoint, list[i].c->region, list[i].c->bucket,
                                list[i].c->addressing, key != NULL && key[0] ? key : list[i].c->access_key,
                                secret != NULL && secret[0] ? secret : list[i].c->secret_key, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s: %s\n", prog, err);
            return UPD_EINVAL;
        }
    }
    *n = UPD_BACKENDS;
    return 0;
}

static int configure(const upd_program_t *prog, int argc, char **argv, upd_conf_t *conf, bool *check, int *rest);

int
upd_program_configure(const upd_program_t *prog, int argc, char **argv, upd_conf_t *conf, bool *check, int *rest)
{
    int r = configure(prog, argc, argv, conf, check, rest);
    if (r != 0)
        upd_conf_dispose(prog->decls, conf);
    return r;
}

int
upd_program_open_store(const upd_conf_t *conf, upd_store_t **store)
{
    *store = NULL;
    if (upd_mkdirs(conf->data_dir) != 0) {
        upd_log_error("cannot create %s: %s", conf->data_dir, strerror(errno));
        return UPD_EIO;
    }
    upd_store_opts_t sopts = {.map_size = (size_t)conf->lmdb_map_mib << 20};
    int r = upd_store_open(conf->data_dir, &sopts, store);
    if (r == 0)
        return 0;
    if (r == UPD_ESCHEMA && *store != NULL) {
        /* on a schema mismatch the store hands back a closed handle that says which schema it found */
        upd_log_error("%s/lmdb has schema %u, this build needs %u: migrate it or use another --data", conf->data_dir,
                      upd_store_schema_found(*store), UPD_STORE_SCHEMA);
    } else {
        upd_log_error("cannot open the store in %s: %s", conf->data_dir, upd_strerror(r));
    }
    if (*store != NULL)
        upd_store_close(*store);
    *store = NULL;
    return r;
}

int
upd_program_open_storage(upd_conf_t *conf)
{
    if (conf->storage_dir[0] == '\0') {
        free(conf->storage_dir);
        if (asprintf(&conf->storage_dir, "%s/storage", conf->data_dir) < 0)
            abort();
    }
    int fd = -1;
    if (upd_mkdirs(conf->storage_dir) != 0 || (fd = open(conf->storage_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        upd_log_error("storage_dir %s: %s", conf->storage_dir, strerror(errno));
    return fd;
}

static int
configure(const upd_program_t *prog, int argc, char **argv, upd_conf_t *conf, bool *check, int *rest)
{
    char err[512];
    const char *config_file = NULL;
    *check = false;
    *rest = argc;
    upd_conf_defaults(prog->decls, conf);

    /* first pass: --config and --help, so that the file is read before the flags override it */
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s [--config FILE] [flags] [--check]\n\n%s", prog->name, prog->usage);
            return 2;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: --config needs a file\n", prog->name);
                return 1;
            }
            config_file = argv[++i];
        } else if (argv[i][0] != '-') {
            break;
        } else if (strcmp(argv[i], "--check") != 0) {
            ++i; /* every other flag takes a value */
        }
    }
    if (config_file != NULL && upd_conf_load_file(prog->decls, conf, config_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", prog->name, err);
        return 1;
    }

    uint64_t lists_reset = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--config") == 0) {
            ++i;
            continue;
        }
        if (strcmp(argv[i], "--check") == 0) {
            *check = true;
            continue;
        }
        if (argv[i][0] != '-') {
            *rest = i;
            break;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value (see --help)\n", prog->name, argv[i]);
            return 1;
        }
        int r = upd_conf_apply_flag(prog->decls, conf, argv[i], argv[i + 1], &lists_reset, err, sizeof(err));
        if (r < 0) {
            fprintf(stderr, "%s: %s\n", prog->name, err);
            return 1;
        }
        if (r == 0) {
            fprintf(stderr, "%s: unknown flag %s (see --help)\n", prog->name, argv[i]);
            return 1;
        }
        ++i;
    }

    upd_log_level_t level;
    if (upd_log_level_parse(conf->log_level, &level) != 0) {
        fprintf(stderr, "%s: log.level: expected error, warn, info or debug, not \"%s\"\n", prog->name, conf->log_level);
        return 1;
    }
    upd_log_level = level;
    if ((conf->tls_cert[0] == '\0') != (conf->tls_key[0] == '\0')) {
        fprintf(stderr, "%s: tls.cert and tls.key go together\n", prog->name);
        return 1;
    }
    for (size_t i = 0; i < conf->listen.size; ++i) {
        if (strncmp(conf->listen.items[i], "https://", 8) == 0 && conf->tls_cert[0] == '\0') {
            fprintf(stderr, "%s: listen %s: TLS needs tls.cert and tls.key (--tls-cert/--tls-key)\n", prog->name, conf->listen.items[i]);
            return 1;
        }
    }
    return 0;
}
