#ifndef UPD_CLI_COMMANDS_H
#define UPD_CLI_COMMANDS_H

#include "cli/args.h"

#include <jansson.h>
#include <stdio.h>

/**
 * Runs a parsed command (a->action == UPD_CLI_RUN): reads the --file body or completes each --artifact with the size
 * and sha512 of its local file, sends the request, and prints the answer (as received with --json, else readable).
 * Errors are printed on stderr.
 * @return the process exit status, one of UPD_CLI_EXIT_*: unlike the 0/negative convention, because the caller's
 *         only use of it is exit() and the distinction it carries (refused, usage, unreachable) is the contract
 */
int upd_cli_run(upd_cli_args_t *a);

/**
 * Computes what the control API checks a file against: its size and its sha512 in base64 (as electron-updater's
 * feeds carry it).
 * @param[out] sha512_b64  88 characters and a NUL
 * @return 0, or a positive errno value (the file cannot be opened or read, or is not a regular file: EINVAL)
 */
int upd_cli_file_digest(const char *path, long long *size, char sha512_b64[89]);

/** Prints a channel object (the answer of GET /v1/apps/APP/channels/CHANNEL) as a readable summary. */
void upd_cli_print_channel(FILE *out, const json_t *channel);

#endif
