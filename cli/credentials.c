#include "cli/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_MODE 0700
#define FILE_MODE 0600

char *
upd_cli_credentials_path(const char *xdg_config_home, const char *home)
{
    char *path = NULL;
    int r;
    if (xdg_config_home != NULL && xdg_config_home[0] == '/')
        r = asprintf(&path, "%s/updraft/credentials", xdg_config_home);
    else if (home != NULL && home[0] != '\0')
        r = asprintf(&path, "%s/.config/updraft/credentials", home);
    else
        return NULL;
    if (r < 0)
        abort(); /* small internal allocation: STYLE.md section 4.3 */
    return path;
}

void
upd_cli_credentials_dispose(upd_cli_credentials_t *c)
{
    free(c->server);
    if (c->api_key != NULL) {
        explicit_bzero(c->api_key, strlen(c->api_key));
        free(c->api_key);
    }
    *c = (upd_cli_credentials_t){NULL};
}

/* A string member, copied; NULL when absent. @return false when present but not a string */
static bool
take_string(const json_t *obj, const char *name, char **out)
{
    const json_t *v = json_object_get(obj, name);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return false;
    if ((*out = strdup(json_string_value(v))) == NULL)
        abort();
    return true;
}

int
upd_cli_credentials_load(const char *path, upd_cli_credentials_t *out, upd_reason_t *why)
{
    char *buf = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    struct stat st;
    int fd, ret = UPD_EIO;

    *out = (upd_cli_credentials_t){NULL};
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            return UPD_ENOTFOUND;
        return upd_reason_set(why, UPD_EIO, NULL, "cannot open %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        upd_reason_set(why, UPD_EIO, NULL, "cannot read %s: %s", path, strerror(errno));
        goto Exit;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > UPD_CLI_CREDENTIALS_MAX) {
        ret = upd_reason_set(why, UPD_EINVAL, NULL, "%s is %s", path,
                             !S_ISREG(st.st_mode) ? "not a regular file" : "too large to be a credentials file");
        goto Exit;
    }
    if ((buf = malloc(UPD_CLI_CREDENTIALS_MAX + 1)) == NULL)
        abort();
    for (;;) {
        ssize_t n = read(fd, buf + len, UPD_CLI_CREDENTIALS_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            upd_reason_set(why, UPD_EIO, NULL, "cannot read %s: %s", path, strerror(errno));
            goto Exit;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > UPD_CLI_CREDENTIALS_MAX) {
            ret = upd_reason_set(why, UPD_EINVAL, NULL, "%s is too large to be a credentials file", path);
            goto Exit;
        }
    }

    /* jansson's error text may quote the input, which holds the key: say where, not what */
    json_error_t jerr;
    if ((doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL || !json_is_object(doc)) {
        ret = doc == NULL
                  ? upd_reason_set(why, UPD_EINVAL, NULL, "%s is not JSON (line %d, column %d)", path, jerr.line, jerr.column)
                  : upd_reason_set(why, UPD_EINVAL, NULL, "%s is not a JSON object", path);
        goto Exit;
    }
    if (!take_string(doc, "server", &out->server) || !take_string(doc, "api_key", &out->api_key)) {
        upd_cli_credentials_dispose(out);
        ret = upd_reason_set(why, UPD_EINVAL, NULL, "%s: \"server\" and \"api_key\" must be strings", path);
        goto Exit;
    }
    ret = 0;

Exit:
    if (buf != NULL) {
        explicit_bzero(buf, len);
        free(buf);
    }
    json_decref(doc);
    close(fd);
    return ret;
}

/* Creates dir and the missing directories above it, each with DIR_MODE; dir itself is narrowed to DIR_MODE. */
static int
make_dirs(char *dir, upd_reason_t *why)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return upd_reason_set(why, UPD_EIO, NULL, "%s is not a directory", dir);
        /* The directory is ours alone (the XDG rule for config dirs); narrowing one we do not own is not our call. */
        if ((st.st_mode & 077) != 0 && st.st_uid == geteuid() && chmod(dir, DIR_MODE) != 0)
            return upd_reason_set(why, UPD_EIO, NULL, "cannot restrict %s to its owner: %s", dir, strerror(errno));
        return 0;
    }
    if (errno != ENOENT)
        return upd_reason_set(why, UPD_EIO, NULL, "cannot use %s: %s", dir, strerror(errno));

    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        int r = make_dirs(dir, why);
        *slash = '/';
        if (r != 0)
            return r;
    }
    /* mkdir applies the umask, which only ever narrows DIR_MODE */
    if (mkdir(dir, DIR_MODE) != 0 && errno != EEXIST)
        return upd_reason_set(why, UPD_EIO, NULL, "cannot create %s: %s", dir, strerror(errno));
    return 0;
}

static int
write_all(int fd, const char *p, size_t len)
{
    while (len != 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int
upd_cli_credentials_save(const char *path, const char *server, const char *api_key, upd_reason_t *why)
{
    char *dir_buf = NULL, *tmp = NULL, *text = NULL;
    int fd = -1, ret = UPD_EIO;

    if ((dir_buf = strdup(path)) == NULL)
        abort();
    char *dir = dirname(dir_buf);
    if (make_dirs(dir, why) != 0)
        goto Exit;

    json_t *doc = json_pack("{s:s, s:s}", "server", server, "api_key", api_key);
    if (doc == NULL) {
        upd_reason_set(why, UPD_EIO, NULL, "cannot save the server URL: it is not valid UTF-8");
        goto Exit;
    }
    text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    if (text == NULL)
        abort();

    /* mkostemp creates the file with mode 0600 whatever the umask: it is never readable by others, not even briefly */
    if (asprintf(&tmp, "%s/.credentials.XXXXXX", dir) < 0)
        abort();
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        upd_reason_set(why, UPD_EIO, NULL, "cannot create a file in %s: %s", dir, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto Exit;
    }
    if (fchmod(fd, FILE_MODE) != 0 || write_all(fd, text, strlen(text)) != 0 || write_all(fd, "\n", 1) != 0 || fsync(fd) != 0) {
        upd_reason_set(why, UPD_EIO, NULL, "cannot write %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    if (close(fd) != 0) {
        fd = -1;
        upd_reason_set(why, UPD_EIO, NULL, "cannot write %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        upd_reason_set(why, UPD_EIO, NULL, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto Exit;
    }
    free(tmp);
    tmp = NULL; /* renamed: nothing to remove */

    /* the rename is durable once the directory is synced; a failure here leaves a correct file, so it is not one */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    ret = 0;

Exit:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    if (text != NULL) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
    free(dir_buf);
    return ret;
}

int
upd_cli_credentials_remove(const char *path, upd_reason_t *why)
{
    if (unlink(path) == 0)
        return 0;
    if (errno == ENOENT)
        return UPD_ENOTFOUND;
    return upd_reason_set(why, UPD_EIO, NULL, "cannot remove %s: %s", path, strerror(errno));
}
