#include "storage/localdir.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static int
open_walk(int dirfd, const char *app, const char *version, const char *name)
{
    /* fallback where openat2 is unavailable: one component at a time, each refusing links */
    int a = openat(dirfd, app, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (a < 0)
        return -1;
    int v = openat(a, version, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int saved = errno;
    close(a);
    if (v < 0) {
        errno = saved;
        return -1;
    }
    int fd = openat(v, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    saved = errno;
    close(v);
    errno = saved;
    return fd;
}

int
upd_localdir_open(int dirfd, const char *app, const char *version, const char *name, struct stat *st)
{
    char path[1024];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", app, version, name) >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* O_NONBLOCK: opening a FIFO (or a device) planted in the store must not wait for a writer, and so hold the
     * caller's event loop; what is not a regular file is refused below, and the flag is dropped again for the rest */
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
    int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    if (fd < 0 && (errno == ENOSYS || errno == EPERM))
        fd = open_walk(dirfd, app, version, name);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        errno = EISDIR;
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}
