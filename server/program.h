#ifndef UPD_PROGRAM_H
#define UPD_PROGRAM_H

#include <stdbool.h>
#include "server/config.h"
#include "storage/s3.h"
#include "storage/store.h"

/* Start-up shared by both servers: defaults, --config FILE, then flag overrides, then --check. */

typedef struct st_upd_program_t {
    const char *name;            /* "updraft-origin" */
    const upd_conf_decl_t *decls;
    const char *usage;           /* the flags section of --help */
} upd_program_t;

/**
 * Fills conf from the defaults, the --config file and the flags.
 * @param[out] check  set when --check was given (validate and exit)
 * @param[out] rest   index of the first non-flag argument (a subcommand), argc when none
 * @return 0; 1 when start-up must stop with an error (printed); 2 after --help (printed). On 1 and 2 conf
 *         has been disposed of already.
 */
int upd_program_configure(const upd_program_t *prog, int argc, char **argv, upd_conf_t *conf, bool *check, int *rest);

/**
 * Opens the LMDB store in conf->data_dir (creating the directory), logging why when it cannot.
 * @return 0, or the UPD_E* code of the failure (logged) with *store NULL
 */
int upd_program_open_store(const upd_conf_t *conf, upd_store_t **store);

/**
 * Resolves storage_dir (default DATA_DIR/storage), creates it and opens it as a directory.
 * @return the descriptor, or -1 (logged)
 */
int upd_program_open_storage(upd_conf_t *conf);

/** Backends of object_store.kind s3, in the order they are tried: R2 first, then the S3 mirror. */
#define UPD_BACKENDS 2

/**
 * Reads object_store.kind and, for "s3", both backends from the configuration, the credentials
 * from the environment when set there (UPDRAFT_R2_ACCESS_KEY_ID, UPDRAFT_R2_SECRET_ACCESS_KEY,
 * UPDRAFT_S3_ACCESS_KEY_ID, UPDRAFT_S3_SECRET_ACCESS_KEY), else from the file.
 * @param[out] n  0 for "local", UPD_BACKENDS for "s3"
 * @return 0, or UPD_EINVAL with the reason printed (never a secret)
 */
int upd_program_object_store(const char *prog, const upd_conf_t *conf, upd_s3_backend_t backends[UPD_BACKENDS], size_t *n);

/** Creates a directory and its parents (mode 0700 for new ones). @return 0, or UPD_EINVAL / UPD_EIO with errno set */
int upd_mkdirs(const char *path);

#endif
