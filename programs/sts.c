/* updraft-sts: the release approval service. For now its release-signing key only: init and public-key. */
#include "base/err.h"
#include "base/log.h"
#include "sts/release_key.h"
#include <stdio.h>
#include <string.h>

#define USAGE                                                                                                                      \
    "usage: updraft-sts init --data DIR        create DIR (0700) and the release-signing key DIR/release-key.pem (0600)\n"         \
    "       updraft-sts public-key --data DIR  print that key's public line and key id again\n"

static void
print_public(const upd_sts_public_t *pub)
{
    printf("%s\nkey id: %s\n", pub->line, pub->key_id);
}

static int
init(const char *dir)
{
    upd_sts_public_t pub;
    upd_reason_t why = {{0}};
    int r = upd_sts_release_key_init(dir, &pub, &why);
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
    return 0;
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
    const char *cmd = NULL, *dir = NULL;
    upd_log_init("updraft-sts");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc && dir == NULL)
            dir = argv[++i];
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
    if (strcmp(cmd, "init") == 0)
        return init(dir);
    if (strcmp(cmd, "public-key") == 0)
        return public_key(dir);
    fprintf(stderr, "updraft-sts: unknown command %s\n" USAGE, cmd);
    return 2;
}
