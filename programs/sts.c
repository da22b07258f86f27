/* updraft-sts: the release approval service: its release-signing key, its store and enrolment links (docs/sts.md). */
#include "base/err.h"
#include "base/log.h"
#include "storage/sts_store.h"
#include "sts/enrol.h"
#include "sts/release_key.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PUBLIC_URL "http://localhost:8090" /* the default listener, 127.0.0.1:8090 */
#define DEFAULT_ENROL_TTL_S 86400

#define USAGE                                                                                                                      \
    "usage: updraft-sts init --data DIR [--public-url URL] [--admin NAME]\n"                                                     \
    "           create DIR (0700), the release-signing key DIR/release-key.pem (0600), the store DIR/lmdb and a one-time\n"     \
    "           enrolment link for the first admin (default name admin)\n"                                                     \
    "       updraft-sts enrol-link --data DIR --member NAME [--admin] [--public-url URL]\n"                                     \
    "           a new one-time enrolment link for a member (valid 24 h)\n"                                                      \
    "       updraft-sts public-key --data DIR  print the release key's public line and key id again\n"

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

int
main(int argc, char **argv)
{
    const char *cmd = NULL, *dir = NULL, *public_url = NULL, *member = NULL, *admin_name = NULL;
    bool admin = false;
    upd_log_init("updraft-sts");
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
