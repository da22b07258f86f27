#ifndef UPD_CLI_CREDENTIALS_H
#define UPD_CLI_CREDENTIALS_H

#include "base/err.h"

#include <stddef.h>

/*
 * The credentials file of `updraft login`: one JSON object {"server":URL,"api_key":KEY} in
 * $XDG_CONFIG_HOME/updraft/credentials (default ~/.config/updraft/credentials). It holds a secret, so it is only ever
 * written as a new file of mode 0600 renamed over the old one, in a directory of mode 0700: no reader sees it
 * half-written, and no moment exists when others could read it. No message of this module shows the key.
 */

#define UPD_CLI_CREDENTIALS_MAX 65536 /* a file larger than this is not ours: refused rather than read */

typedef struct st_upd_cli_credentials_t {
    char *server;  /* owned; NULL when the file has none */
    char *api_key; /* owned, wiped on dispose; NULL when the file has none */
} upd_cli_credentials_t;

/**
 * Where the credentials file is: $XDG_CONFIG_HOME/updraft/credentials when XDG_CONFIG_HOME is an absolute path (the
 * XDG Base Directory rule: a relative one is ignored), else $HOME/.config/updraft/credentials. Pure: both values are
 * passed in, so that tests choose them.
 * @return a malloc'ed path (caller frees), or NULL when neither variable gives one
 */
char *upd_cli_credentials_path(const char *xdg_config_home, const char *home);

/**
 * Reads the credentials file.
 * @param[out] out  zeroed first; filled on 0, release with upd_cli_credentials_dispose() whatever the result
 * @param[out] why  on UPD_EINVAL and UPD_EIO, a sentence naming the file and what is wrong with it (never the key)
 * @return 0; UPD_ENOTFOUND when there is no file; UPD_EINVAL when it is not a regular file, larger than
 *         UPD_CLI_CREDENTIALS_MAX or not a JSON object with string members; UPD_EIO when it cannot be read
 */
int upd_cli_credentials_load(const char *path, upd_cli_credentials_t *out, upd_reason_t *why);

void upd_cli_credentials_dispose(upd_cli_credentials_t *c);

/**
 * Saves a server and key: creates the missing directories above path with mode 0700 (and narrows the file's own
 * directory to 0700 when it is ours and wider), writes the JSON to a new temporary file of mode 0600 beside path,
 * syncs it, and renames it over path. On failure the old file, if any, is left as it was.
 * @return 0, or UPD_EIO with why naming the file or directory and the system's reason
 */
int upd_cli_credentials_save(const char *path, const char *server, const char *api_key, upd_reason_t *why);

/**
 * Removes the credentials file.
 * @return 0 when it was removed, UPD_ENOTFOUND when there was none, UPD_EIO with why
 */
int upd_cli_credentials_remove(const char *path, upd_reason_t *why);

#endif
