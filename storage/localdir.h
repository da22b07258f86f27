#ifndef UPD_LOCALDIR_H
#define UPD_LOCALDIR_H

#include <sys/stat.h>

/*
 * The local-directory object store: STORAGE_DIR/APP/VERSION/FILE. Opening never leaves the store
 * and never follows a symbolic link at any step (a link planted as a version directory or a file
 * could otherwise expose anything the process can read).
 */

/**
 * Opens APP/VERSION/FILE (each already validated: no "/", not "." or "..") under dirfd, read-only.
 * name may also be "FILE.blockmap"-style names: any single path component.
 * @param[out] st  the file's status
 * Never blocks on what is not a regular file (a FIFO, a device): it is opened non-blocking and refused.
 * @return a blocking descriptor, or -1 with errno (ENOENT, ELOOP for a link, EISDIR when not a regular file)
 */
int upd_localdir_open(int dirfd, const char *app, const char *version, const char *name, struct stat *st);

#endif
