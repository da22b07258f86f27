/*
 * updraft: the command-line client of the control API. Parsing lives in args.c (pure, unit-tested), the HTTP exchange
 * in client.c, running and printing in commands.c, the credentials file of 'updraft login' in credentials.c; this file
 * only wires them to the process.
 */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/credentials.h"
#include "base/err.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    /* The credentials file is read before parsing, so that parsing stays pure; it is only used where it is needed. */
    upd_cli_credentials_t saved_file = {NULL};
    upd_reason_t why;
    upd_cli_saved_t saved = {.path = upd_cli_credentials_path(getenv("XDG_CONFIG_HOME"), getenv("HOME"))};
    if (saved.path != NULL) {
        int r = upd_cli_credentials_load(saved.path, &saved_file, &why);
        if (r == 0) {
            saved.server = saved_file.server;
            saved.api_key = saved_file.api_key;
        } else if (r != UPD_ENOTFOUND) {
            saved.error = why.message;
        }
    }
    upd_cli_env_t env = {.server = getenv("UPDRAFT_SERVER"),
                         .api_key = getenv("UPDRAFT_API_KEY"),
                         .timeout = getenv("UPDRAFT_TIMEOUT"),
                         .saved = &saved};
    upd_cli_args_t args;
    int status;

    if (upd_cli_args_parse(&args, argc, argv, &env) != 0) {
        fprintf(stderr, "updraft: %s\n", args.err);
        if (args.help_topic != NULL)
            fprintf(stderr, "Run 'updraft %s --help' for its usage.\n", args.help_topic);
        else
            fprintf(stderr, "Run 'updraft --help' for usage.\n");
        status = UPD_CLI_EXIT_USAGE;
        goto Exit;
    }

    switch (args.action) {
    case UPD_CLI_HELP:
        fputs(upd_cli_usage(args.help_topic), stdout);
        status = UPD_CLI_EXIT_OK;
        break;
    case UPD_CLI_SHOW_VERSION:
        printf("updraft %s (%s)\n", UPD_CLI_VERSION, curl_version());
        status = UPD_CLI_EXIT_OK;
        break;
    default:
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "updraft: cannot initialise libcurl\n");
            status = UPD_CLI_EXIT_CONNECT;
            break;
        }
        status = upd_cli_run(&args);
        curl_global_cleanup();
        break;
    }

Exit:
    upd_cli_args_dispose(&args);
    upd_cli_credentials_dispose(&saved_file);
    free((char *)saved.path);
    return status;
}
