/* updraft-sts: the release approval service: its release-signing key, its store and enrolment links (docs/sts.md). */
#include "base/err.h"
#include "base/log.h"
#include "server/conf_common.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/program.h"
#include "server/workers.h"
#include "storage/sts_store.h"
#include "sts/api.h"
#include "sts/enrol.h"
#include "sts/release_key.h"
#include "sts/resign.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const upd_conf_decl_t sts_decls[] = {
    UPD_CONF_COMMON_DECLS("127.0.0.1:8090", "65536"),
    {"public_url", UPD_CONF_STRING, offsetof(upd_conf_t, public_url), 0, 0, "", "--public-url"},
    {"webauthn.rp_id", UPD_CONF_STRING, offsetof(upd_conf_t, sts_rp_id), 0, 0, "", NULL},
    {"webauthn.origins", UPD_CONF_STRLIST, offsetof(upd_conf_t, sts_origins), 0, 0, "", NULL},
    {"webauthn.challenge_ttl_s", UPD_CONF_UINT, offsetof(upd_conf_t, sts_challenge_ttl_s), 1, 86400, "300", NULL},
    {"enrol.ttl_s", UPD_CONF_UINT, offsetof(upd_conf_t, sts_enrol_ttl_s), 60, 30 * 86400, "86400", NULL},
    {"proposals.ttl_s", UPD_CONF_UINT, offsetof(upd_conf_t, sts_proposals_ttl_s), 60, 365 * 86400, "86400", NULL},
    {"signing.ttl_s", UPD_CONF_UINT, offsetof(upd_conf_t, sts_signing_ttl_s), 3600, 366 * 86400, "1209600", NULL},
    {"signing.resign_before_s", UPD_CONF_UINT, offsetof(upd_conf_t, sts_resign_before_s), 0, 366 * 86400, "604800", NULL},
    {"signing.auto_sign_reductions", UPD_CONF_BOOL, offsetof(upd_conf_t, sts_auto_sign_reductions), 0, 0, "true", NULL},
    {"signing.resign_check_s", UPD_CONF_UINT, offsetof(upd_conf_t, sts_resign_check_s), 1, 3600, "60", NULL},
    {"control.token", UPD_CONF_STRING, offsetof(upd_conf_t, sts_control_token), 0, 0, "", NULL},
    {"workers.threads", UPD_CONF_UINT, offsetof(upd_conf_t, workers_threads), 1, 64, "2", NULL},
    {"workers.queue", UPD_CONF_UINT, offsetof(upd_conf_t, workers_queue), 1, 100000, "64", NULL},
    UPD_CONF_END,
};

static const upd_program_t sts_program = {
    "updraft-sts",
    sts_decls,
    UPD_CONF_COMMON_USAGE "  --public-url URL     the base of links and the WebAuthn origin (default http://localhost:PORT)\n",
};

#define DEFAULT_PUBLIC_URL "http://localhost:8090" /* the default listener, 127.0.0.1:8090 */
#define DEFAULT_ENROL_TTL_S 86400

#define USAGE                                                                                                                      \
    "usage: updraft-sts init --data DIR [--public-url URL] [--admin NAME]\n"                                                     \
    "           create DIR (0700), the release-signing key DIR/release-key.pem (0600), the store DIR/lmdb and a one-time\n"     \
    "           enrolment link for the first admin (default name admin)\n"                                                     \
    "       updraft-sts enrol-link --data DIR --member NAME [--admin] [--public-url URL]\n"                                     \
    "           a new one-time enrolment link for a member (valid 24 h)\n"                                                      \
    "       updraft-sts public-key --data DIR  print the release key's public line and key id again\n"                     \
    "       updraft-sts [serve] --data DIR [--listen ADDR:PORT] [--config FILE] [--public-url URL]  run the server\n"

static void
print_public(const upd_sts_public_t *pub)
{
    printf("%s\nkey id: %s\n", pub->line, pub->key_id);
}

/* Prints a new enrolment link for member into the store of dir. */
static int
make_link(const char *cmd, const char *dir, const char *public_url, const char *member, bool admin, const char *what)
{
    upd_sts_store_t *store = NULL;
    upd_reason_t why = {{0}};
    char link[UPD_STS_LINK_MAX];
    int r;
    if ((r = upd_sts_store_open(dir, strcmp(cmd, "init") == 0, &store)) != 0) {
        if (r == UPD_ENOTFOUND)
            fprintf(stderr, "updraft-sts: %s: no store in %s: run updraft-sts init --data %s first\n", cmd, dir, dir);
        else
            fprintf(stderr, "updraft-sts: %s: cannot open the store %s/lmdb: %s\n", cmd, dir, upd_strerror(r));
        return 1;
    }
    r = upd_sts_enrol_link_create(store, public_url, member, admin, "host", DEFAULT_ENROL_TTL_S, link, NULL, &why);
    upd_sts_store_close(store);
    if (r != 0) {
        fprintf(stderr, "updraft-sts: %s: %s\n", cmd, why.message);
        return 1;
    }
    printf("%s: %s (valid 24 h)\n", what, link);
    return 0;
}

static int
init(const char *dir, const char *public_url, const char *admin)
{
    upd_sts_public_t pub;
    upd_reason_t why = {{0}};
    int r;
    if (!upd_sts_member_name_valid(admin)) {
        fprintf(stderr, "updraft-sts: init: --admin %s: a member name is [a-z0-9][a-z0-9._-]{0,62}\n", admin);
        return 2;
    }
    r = upd_sts_release_key_init(dir, &pub, &why);
    if (r != 0) {
        if (r == UPD_EEXIST)
            fprintf(stderr, "updraft-sts: init: %s; updraft-sts public-key --data %s prints its public key\n", why.message, dir);
        else
            fprintf(stderr, "updraft-sts: init: %s\n", why.message);
        return 1;
    }
    printf("Created the release-signing key %s (mode 0600). It never leaves this directory: keep it there, backed up "
           "as carefully as a code-signing key.\n\nIts public key:\n",
           pub.path);
    print_public(&pub);
    printf("\nEvery origin serves only state signed by a key it trusts. Add this key to each origin's config:\n\n"
           "  trust:\n    release_keys: [\"%s\"]\n\n"
           "During a rotation, list the new key beside the old one (at most two) until every app's state is signed by the "
           "new key, then drop the old one.\n",
           pub.line);
    printf("\n");
    return make_link("init", dir, public_url, admin, true, "Enrol the first admin");
}

static int
public_key(const char *dir)
{
    upd_sts_public_t pub;
    upd_reason_t why = {{0}};
    if (upd_sts_release_key_load(dir, NULL, &pub, &why) != 0) {
        fprintf(stderr, "updraft-sts: public-key: %s\n", why.message);
        return 1;
    }
    print_public(&pub);
    return 0;
}

static upd_sts_resign_t *resigner;

static int
on_loop_start(void *app, h2o_context_t *ctx)
{
    upd_sts_t *sts = app;
    if (upd_workers_start(sts->workers, ctx) != 0)
        return -1;
    return (resigner = upd_sts_resign_start(sts, sts->conf->sts_resign_check_s)) != NULL ? 0 : -1;
}

static void
on_loop_stop(void *app)
{
    upd_sts_t *sts = app;
    upd_sts_resign_stop(resigner);
    resigner = NULL;
    upd_workers_stop(sts->workers);
}

/* The default public URL: http://localhost:PORT of the first listener (https:// for a TLS one). */
static char *
default_public_url(const upd_conf_t *conf)
{
    const char *l = conf->listen.size != 0 ? conf->listen.items[0] : "127.0.0.1:8090";
    bool tls = strncmp(l, "https://", 8) == 0;
    const char *colon = strrchr(l, ':');
    char buf[256];
    snprintf(buf, sizeof(buf), "%s://localhost:%s", tls ? "https" : "http", colon != NULL ? colon + 1 : "8090");
    return strdup(buf);
}

static int
serve(int argc, char **argv)
{
    upd_conf_t conf = {0};
    upd_sts_t sts = {0};
    upd_reason_t why = {{0}};
    bool check;
    int rest, ret = 1;
    int r = upd_program_configure(&sts_program, argc, argv, &conf, &check, &rest);
    if (r != 0)
        return r == 2 ? 0 : 1;
    if (rest != argc) {
        fprintf(stderr, "updraft-sts: unexpected %s\n" USAGE, argv[rest]);
        upd_conf_dispose(sts_decls, &conf);
        return 2;
    }
    if (conf.public_url[0] == '\0') {
        free(conf.public_url);
        conf.public_url = default_public_url(&conf);
    }
    size_t ul = strlen(conf.public_url);
    if (!(strncmp(conf.public_url, "http://", 7) == 0 || strncmp(conf.public_url, "https://", 8) == 0) || ul < 9) {
        fprintf(stderr, "updraft-sts: public_url: expected an absolute http:// or https:// URL, not \"%s\"\n", conf.public_url);
        goto Exit;
    }
    while (ul > 0 && conf.public_url[ul - 1] == '/')
        conf.public_url[--ul] = '\0';
    if (conf.sts_rp_id[0] == '\0') {
        const char *h = strstr(conf.public_url, "://") + 3, *e = h + strcspn(h, ":/");
        free(conf.sts_rp_id);
        conf.sts_rp_id = strndup(h, (size_t)(e - h));
    }
    if (conf.sts_origins.size == 0) {
        conf.sts_origins.items = calloc(1, sizeof(char *));
        conf.sts_origins.items[0] = strdup(conf.public_url);
        conf.sts_origins.size = 1;
    }
    if (getenv("UPDRAFT_STS_CONTROL_TOKEN") != NULL) {
        free(conf.sts_control_token);
        conf.sts_control_token = strdup(getenv("UPDRAFT_STS_CONTROL_TOKEN"));
    }
    if (check) {
        printf("updraft-sts: configuration ok\n");
        ret = 0;
        goto Exit;
    }
    if (upd_sts_release_key_load(conf.data_dir, &sts.key, NULL, &why) != 0) {
        fprintf(stderr, "updraft-sts: %s; run updraft-sts init --data %s first\n", why.message, conf.data_dir);
        goto Exit;
    }
    if ((r = upd_sts_store_open(conf.data_dir, false, &sts.store)) != 0) {
        fprintf(stderr, "updraft-sts: cannot open the store %s/lmdb: %s%s\n", conf.data_dir, upd_strerror(r),
                r == UPD_ENOTFOUND ? " (run updraft-sts init)" : "");
        goto Exit;
    }
    if (conf.sts_control_token[0] == '\0')
        upd_log_warn("control.token is empty: every control route answers 401 (set it or UPDRAFT_STS_CONTROL_TOKEN)");
    upd_log_info("public URL %s, WebAuthn rp_id %s", conf.public_url, conf.sts_rp_id);
    sts.conf = &conf;
    sts.public_url = conf.public_url;
    sts.control_token = conf.sts_control_token;
    size_t nroutes;
    const char *const *labels = upd_sts_route_labels(&nroutes);
    sts.metrics = upd_metrics_create("sts", labels, nroutes);
    upd_metrics_add_renderer(sts.metrics, upd_sts_render_metrics, &sts);
    sts.workers = upd_workers_create(conf.workers_threads, conf.workers_queue);
    upd_http_opts_t opts = {
        .program = "updraft-sts",
        .conf = &conf,
        .on_req = upd_sts_on_req,
        .route_of = upd_sts_route_of,
        .route_names = labels,
        .nroutes = nroutes,
        .app = &sts,
        .allow_bodies = true,
        .metrics = sts.metrics,
        .on_loop_start = on_loop_start,
        .on_loop_stop = on_loop_stop,
    };
    ret = upd_http_run(&opts);
Exit:
    upd_workers_destroy(sts.workers);
    upd_sts_store_close(sts.store);
    EVP_PKEY_free(sts.key);
    upd_metrics_destroy(sts.metrics);
    upd_conf_dispose(sts_decls, &conf);
    return ret;
}

int
main(int argc, char **argv)
{
    const char *cmd = NULL, *dir = NULL, *public_url = NULL, *member = NULL, *admin_name = NULL;
    bool admin = false;
    upd_log_init("updraft-sts");
    bool host_command = false;
    for (int i = 1; i < argc; i++)
        host_command |= strcmp(argv[i], "init") == 0 || strcmp(argv[i], "public-key") == 0 || strcmp(argv[i], "enrol-link") == 0;
    if (argc > 1 && strcmp(argv[1], "serve") == 0)
        return serve(argc - 1, argv + 1);
    if (!host_command && argc > 1 && argv[1][0] == '-' && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0)
        return serve(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc && dir == NULL)
            dir = argv[++i];
        else if (strcmp(argv[i], "--public-url") == 0 && i + 1 < argc && public_url == NULL)
            public_url = argv[++i];
        else if (strcmp(argv[i], "--member") == 0 && i + 1 < argc && member == NULL)
            member = argv[++i];
        else if (strcmp(argv[i], "--admin") == 0 && i + 1 < argc && argv[i + 1][0] != '-' && cmd != NULL && strcmp(cmd, "init") == 0)
            admin_name = argv[++i];
        else if (strcmp(argv[i], "--admin") == 0)
            admin = true;
        else if (cmd == NULL && argv[i][0] != '-')
            cmd = argv[i];
        else {
            fprintf(stderr, "updraft-sts: unexpected %s\n" USAGE, argv[i]);
            return 2;
        }
    }
    if (cmd == NULL || dir == NULL || dir[0] == '\0') {
        fprintf(stderr, "updraft-sts: %s\n" USAGE, cmd == NULL ? "expected a command" : "expected --data DIR");
        return 2;
    }
    if (public_url == NULL)
        public_url = getenv("UPDRAFT_STS_PUBLIC_URL") != NULL ? getenv("UPDRAFT_STS_PUBLIC_URL") : DEFAULT_PUBLIC_URL;
    if (strcmp(cmd, "init") == 0)
        return init(dir, public_url, admin_name != NULL ? admin_name : "admin");
    if (strcmp(cmd, "enrol-link") == 0) {
        if (member == NULL) {
            fprintf(stderr, "updraft-sts: enrol-link: expected --member NAME\n" USAGE);
            return 2;
        }
        return make_link("enrol-link", dir, public_url, member, admin, "Enrolment link");
    }
    if (strcmp(cmd, "public-key") == 0)
        return public_key(dir);
    fprintf(stderr, "updraft-sts: unknown command %s\n" USAGE, cmd);
    return 2;
}
