#ifndef UPD_TEST_TMPDIR_H
#define UPD_TEST_TMPDIR_H

/* Temporary directories of the unit tests that open real LMDB environments and staging directories. */

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int
tmpdir_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/** Makes /tmp/updraft-NAME-XXXXXX into dir (at least 64 bytes). @return 0 or -1 */
static inline int
tmpdir_make(char *dir, size_t cap, const char *name)
{
    snprintf(dir, cap, "/tmp/updraft-%s-XXXXXX", name);
    return mkdtemp(dir) != NULL ? 0 : -1;
}

/** Removes dir and everything below it, links not followed. */
static inline void
tmpdir_remove(const char *dir)
{
    nftw(dir, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
