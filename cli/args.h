#ifndef UPD_CLI_ARGS_H
#define UPD_CLI_ARGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The command line of `updraft`, turned into the control API request it stands for (PROTOCOLS.md, "Control API
 * (updraft-control), version 1"). Pure: no I/O, no libcurl, the environment is passed in, so that the unit tests
 * can check every argv → request mapping and every usage error.
 */

#define UPD_CLI_VERSION "0.1.0"
#define UPD_CLI_TIMEOUT_DEFAULT 60 /* seconds for the whole request; connecting gets at most UPD_CLI_CONNECT_TIMEOUT */
#define UPD_CLI_TIMEOUT_MAX 86400
#define UPD_CLI_CONNECT_TIMEOUT 10
#define UPD_CLI_ERR_MAX 512

/* Process exit statuses; scripts tell a refusal from a typo from an unreachable server by these. */
enum {
    UPD_CLI_EXIT_OK = 0,
    UPD_CLI_EXIT_REFUSED = 1, /* the server answered 4xx/5xx (or an answer that is not the expected JSON) */
    UPD_CLI_EXIT_USAGE = 2,   /* bad command line, or a local file named on it cannot be used */
    UPD_CLI_EXIT_CONNECT = 3  /* no answer: DNS, connect, TLS, timeout */
};

typedef enum {
    UPD_CLI_RUN = 0,     /* send the request */
    UPD_CLI_HELP,        /* print upd_cli_usage(help_topic) on stdout and exit 0 */
    UPD_CLI_SHOW_VERSION /* print the program's version and exit 0 */
} upd_cli_action_t;

/* How a successful answer is printed when --json is not given. */
typedef enum {
    UPD_CLI_PRINT_APP = 0,        /* {"id","name",...} */
    UPD_CLI_PRINT_RELEASE,        /* {"release":{...},"channel":{...}}: releases create, releases publish */
    UPD_CLI_PRINT_CHANNEL,        /* the channel object */
    UPD_CLI_PRINT_DRAFT,          /* {"release":{... "draft":true},"backends":{...}} */
    UPD_CLI_PRINT_RELEASE_LIST,   /* {"releases":[...],"drafts":[...]} */
    UPD_CLI_PRINT_RELEASE_SHOW,   /* one release or draft */
    UPD_CLI_PRINT_MEMBER,         /* a member: members create, set-role, unset-role */
    UPD_CLI_PRINT_MEMBER_SHOW,    /* a member with "keys" */
    UPD_CLI_PRINT_MEMBER_LIST,    /* {"members":[...]} */
    UPD_CLI_PRINT_MEMBER_REMOVED, /* {"member","removed","keys_revoked"} */
    UPD_CLI_PRINT_KEY_CREATED,    /* {"key": the secret, then the listing fields} */
    UPD_CLI_PRINT_KEY_LIST,       /* {"keys":[...]} */
    UPD_CLI_PRINT_KEY_REVOKED,    /* a key listing with "revoked" set */
    UPD_CLI_PRINT_AUDIT,          /* {"records":[...],"next_before"} */
    UPD_CLI_PRINT_BACKUP_LIST,    /* {"backups":[...]} */
    UPD_CLI_PRINT_BACKUP_STARTED, /* {"id"} */
    UPD_CLI_PRINT_LOGIN           /* {"key":listing,"member":member|null} */
} upd_cli_print_t;

/* Commands that are not one request as parsed. */
typedef enum {
    UPD_CLI_REQUEST = 0, /* method, path and body say it all */
    UPD_CLI_LOGIN,       /* POST /v1/login with the key (read from stdin when key_from_stdin), then save it */
    UPD_CLI_LOGOUT       /* no request: remove the credentials file */
} upd_cli_kind_t;

/* One --artifact NAME:PLATFORM:ARCH:PATH; size and sha512 are computed from path before sending. */
typedef struct st_upd_cli_artifact_t {
    const char *path; /* points into argv */
    json_t *file;     /* borrowed: the matching element of body.files, still without size and sha512 */
} upd_cli_artifact_t;

/* The credentials file (cli/credentials.h) as the caller found it: args.c reads no file itself. */
typedef struct st_upd_cli_saved_t {
    const char *path;    /* where it is or would be; NULL when neither XDG_CONFIG_HOME nor HOME says */
    const char *server;  /* its server, NULL when there is no file or none in it */
    const char *api_key; /* its key, NULL likewise */
    const char *error;   /* why the file cannot be used (it exists but is not readable or not ours), or NULL */
} upd_cli_saved_t;

typedef struct st_upd_cli_env_t {
    const char *server;           /* UPDRAFT_SERVER, or NULL */
    const char *api_key;          /* UPDRAFT_API_KEY, or NULL */
    const char *timeout;          /* UPDRAFT_TIMEOUT, or NULL */
    const upd_cli_saved_t *saved; /* the credentials file, or NULL for none */
} upd_cli_env_t;

typedef struct st_upd_cli_args_t {
    upd_cli_action_t action;
    const char *help_topic; /* for UPD_CLI_HELP and for the hint after a usage error: NULL (global) or a command */

    char *server;        /* owned; no trailing slash */
    const char *api_key; /* NULL when none was given: the request then goes without Authorization */
    bool json;           /* print the answer's JSON as received */
    bool insecure;       /* --insecure: the key may go over plain http:// to a host that is not loopback */
    long timeout_s;

    upd_cli_kind_t kind;
    bool key_from_stdin;          /* login without --api-key or UPDRAFT_API_KEY: the key is read from stdin */
    const char *credentials_path; /* login, logout: the credentials file (borrowed from env->saved) */
    const char *withheld_for;     /* the saved key was not sent: it belongs to this server, not to a->server */

    /* --server and --api-key as given on the command line, before or (login) after the command; NULL when not */
    const char *flag_server, *flag_api_key;

    const char *command;   /* "rollout set", for messages */
    const char *method;    /* "GET", "POST", "PUT", "PATCH", "DELETE"; NULL for logout */
    char *path;            /* owned, e.g. "/v1/apps/acme/channels/latest/rollout" */
    json_t *body;          /* owned; NULL for GET */
    const char *body_file; /* releases create --file: the body is this file, sent as is (read by the caller); body is NULL */
    upd_cli_artifact_t *artifacts; /* owned array */
    size_t nartifacts;
    upd_cli_print_t print;

    char err[UPD_CLI_ERR_MAX]; /* the reason when parsing fails; never contains the API key */
} upd_cli_args_t;

/**
 * Parses `updraft [GLOBAL OPTIONS] COMMAND ...` (argv[0] is the program name).
 * Precedence, for the server and the key alike: the options, then the environment, then the credentials file
 * (env->saved). The saved key only goes to the saved server: with another --server or UPDRAFT_SERVER the request goes
 * without it (a->withheld_for says so). A key is never sent over plain http:// to a host that is not loopback
 * (127.0.0.0/8, ::1, localhost) unless --insecure is given: that is a usage error, found before any connection.
 * @param[out] a  zeroed first; release with upd_cli_args_dispose() whatever the result. Pointers into argv and env
 *                stay valid as long as argv and env do.
 * @return 0 (see a->action), or UPD_EINVAL with a->err saying which argument was wrong
 */
int upd_cli_args_parse(upd_cli_args_t *a, int argc, char **argv, const upd_cli_env_t *env);

void upd_cli_args_dispose(upd_cli_args_t *a);

/**
 * The usage text for a topic: NULL for the program, or a command name ("apps", "releases", "rollout", "channel",
 * "members", "keys", "audit", "backups", "login", "logout"). Static storage.
 */
const char *upd_cli_usage(const char *topic);

/**
 * Serialises a request body the way it goes on the wire. Percentages are the only non-integer numbers we send, and
 * two decimals need at most five significant digits ("99.99"); jansson's default of 17 would turn 25.35 into
 * 25.350000000000001.
 * @return a malloc'ed string (caller frees), or NULL on allocation failure
 */
char *upd_cli_body_dump(const json_t *body);

/**
 * Checks that an API key can go into an Authorization header (not empty; printable ASCII, no space). For keys that
 * do not come through the command line (read from stdin).
 * @param[out] a  a->err says what is wrong; the message never contains the key
 * @return 0 or UPD_EINVAL
 */
int upd_cli_api_key_check(upd_cli_args_t *a, const char *key);

#endif
