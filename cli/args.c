#include "cli/args.h"

#include "base/err.h"
#include "domain/audit.h"
#include "domain/ids.h"
#include "domain/rollout.h"
#include "domain/version.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- usage texts ---------------------------------------------------------------------------------------------- */

static const char usage_global[] =
    "Usage: updraft [--server URL] [--api-key KEY] [--insecure] [--json] COMMAND [ARGS...]\n"
    "\n"
    "Manages apps, releases, rollouts, members, API keys, the audit trail and backups through the Updraft control API\n"
    "(updraft-control).\n"
    "\n"
    "Commands:\n"
    "  login [--server URL] [--api-key KEY]\n"
    "  logout\n"
    "  apps create APP [--name NAME]\n"
    "  releases create APP --file release.json\n"
    "  releases create APP --version V [--channel C | --draft] [--notes TEXT] [--rollout PERCENT]\n"
    "                      --artifact NAME:PLATFORM:ARCH:PATH [--artifact ...]\n"
    "  releases publish APP VERSION --channel C [--rollout PERCENT]\n"
    "  releases list APP\n"
    "  releases show APP VERSION\n"
    "  releases pull APP VERSION [--reason TEXT]\n"
    "  rollout set APP CHANNEL PERCENT\n"
    "  rollout pause APP CHANNEL\n"
    "  rollout resume APP CHANNEL\n"
    "  rollout halt APP CHANNEL\n"
    "  rollout countries APP CHANNEL [CC ...]\n"
    "  rollout pin APP CHANNEL [CLIENT ...]\n"
    "  channel show APP CHANNEL\n"
    "  members list\n"
    "  members show ID\n"
    "  members create ID [--name NAME] [--email EMAIL] [--role ROLE [--app APP]]\n"
    "  members set-role ID ROLE [--app APP]\n"
    "  members unset-role ID [--app APP]\n"
    "  members remove ID\n"
    "  keys list [--member ID]\n"
    "  keys create --name NAME [--member ID] [--app APP] [--role ROLE] [--expires DURATION]\n"
    "  keys revoke KEY-ID\n"
    "  audit [--app APP] [--actor ID] [--action ACTION] [--outcome OUTCOME] [--since TIME] [--before SEQ]\n"
    "        [--limit N]\n"
    "  backups list\n"
    "  backups now\n"
    "  help [COMMAND]\n"
    "\n"
    "Global options (before the command):\n"
    "  --server URL    control API base URL (default: $UPDRAFT_SERVER, then the credentials file)\n"
    "  --api-key KEY   API key, sent as a Bearer token (default: $UPDRAFT_API_KEY, then the credentials file's key\n"
    "                  when the server is the one it was saved for; the environment or 'updraft login' is better:\n"
    "                  other local users can read a command line)\n"
    "  --insecure      allow sending the key over plain http:// to a host that is not loopback (127.0.0.0/8, ::1,\n"
    "                  localhost); without it that is refused, as the key would cross the network in clear text\n"
    "  --json          print the server's JSON answers as received\n"
    "  --help, -h      print this help; 'updraft COMMAND --help' describes a command\n"
    "  --version       print the version of updraft\n"
    "\n"
    "Credentials:\n"
    "  'updraft login' checks a key with the server and saves the server and the key in\n"
    "  $XDG_CONFIG_HOME/updraft/credentials (default ~/.config/updraft/credentials; readable by you only), which\n"
    "  later commands use when neither an option nor the environment names them. 'updraft logout' removes it.\n"
    "\n"
    "Environment:\n"
    "  UPDRAFT_SERVER, UPDRAFT_API_KEY  defaults for --server and --api-key\n"
    "  UPDRAFT_TIMEOUT                  seconds allowed for a whole request (default 60; connecting takes at most 10)\n"
    "  XDG_CONFIG_HOME, HOME            where the credentials file is\n"
    "\n"
    "Exit status: 0 done, 1 the server refused, 2 usage error, 3 the server could not be reached.\n";

static const char usage_login[] =
    "Usage: updraft login [--server URL] [--api-key KEY]\n"
    "       updraft logout\n"
    "\n"
    "'login' checks an API key with the server (POST /v1/login) and, when the server accepts it, saves the server\n"
    "and the key in $XDG_CONFIG_HOME/updraft/credentials (default ~/.config/updraft/credentials): the directory\n"
    "is made readable by you only (0700), the file is written as a new file of mode 0600 and renamed into place.\n"
    "Later commands use them when neither an option nor the environment names a server or a key; the saved key is\n"
    "only ever sent to the server it was saved for. Prints who signed in: the member, the key's id and its scope.\n"
    "\n"
    "  --server URL   the control API (default: $UPDRAFT_SERVER, then the server saved before)\n"
    "  --api-key KEY  the key (default: $UPDRAFT_API_KEY, else one line read from stdin, without echo on a\n"
    "                 terminal); reading it from stdin keeps it off the command line and out of the environment\n"
    "\n"
    "When the server refuses the key, its reason is printed and nothing is saved (exit status 1).\n"
    "\n"
    "'logout' removes the credentials file; it says so also when there was none.\n";

static const char usage_apps[] = "Usage: updraft apps create APP [--name NAME]\n"
                                 "\n"
                                 "Creates an app. APP is its id ([a-z0-9][a-z0-9-]{0,62}); NAME is shown to people\n"
                                 "(default: the id).\n";

static const char usage_releases[] =
    "Usage: updraft releases create APP --file release.json\n"
    "       updraft releases create APP --version V [--channel C | --draft] [--notes TEXT] [--rollout PERCENT]\n"
    "                               --artifact NAME:PLATFORM:ARCH:PATH [--artifact ...]\n"
    "       updraft releases publish APP VERSION --channel C [--rollout PERCENT]\n"
    "       updraft releases list APP\n"
    "       updraft releases show APP VERSION\n"
    "       updraft releases pull APP VERSION [--reason TEXT]\n"
    "\n"
    "'create' registers a release whose files are already uploaded to storage under APP/VERSION/NAME.\n"
    "The control plane checks each file's size and sha512 against storage and registers nothing on a mismatch.\n"
    "With object storage (R2 and the S3 mirror), it also uploads each staged file to both backends, or checks the\n"
    "copies already there.\n"
    "\n"
    "  --file FILE       send FILE's JSON as the release (see PROTOCOLS.md); no other option goes with it\n"
    "  --version V       the release's SemVer 2.0 version (1.2.3, 1.3.0-beta.2)\n"
    "  --channel C       the channel to release on (default: latest); needs the release role on APP\n"
    "  --draft           register a draft instead: no channel is sent, the release is offered to nobody until\n"
    "                    'releases publish'; the build role on APP suffices\n"
    "  --notes TEXT      release notes\n"
    "  --rollout PERCENT start as a partial rollout to PERCENT of clients (0-100, two decimals; default 100)\n"
    "  --artifact NAME:PLATFORM:ARCH:PATH\n"
    "                    a file of the release: its name in storage, the platform (windows, mac, linux), the arch\n"
    "                    (x64, arm64, ia32, universal) and the local copy to take size and sha512 from; repeatable\n"
    "\n"
    "Prints the registered files, what was uploaded or verified on each backend, and the channel's resulting state.\n"
    "\n"
    "'publish' puts a draft on a channel (the release role on APP), exactly as if it had been created there; the\n"
    "draft is gone afterwards. The channel is required.\n"
    "\n"
    "  --channel C       the channel to publish on\n"
    "  --rollout PERCENT start as a partial rollout to PERCENT of clients (default 100)\n"
    "\n"
    "'list' prints APP's releases and drafts; 'show' prints one of them with its files.\n"
    "\n"
    "'pull' withdraws a bad release from its channel. The release is kept, marked pulled, and its files stay\n"
    "downloadable, but it is never offered again. Its rollout ends when it was rolling out; when it was the stable\n"
    "version, the newest older release not itself pulled becomes stable (clients already on the pulled version are\n"
    "not offered a downgrade). Pulling an older, superseded release only marks it, so it is never fallen back to.\n"
    "\n"
    "  --reason TEXT     why, kept with the release and logged\n"
    "\n"
    "Prints the channel's resulting state and what the change reached (state, origin and edge purges).\n";

static const char usage_rollout[] =
    "Usage: updraft rollout set APP CHANNEL PERCENT\n"
    "       updraft rollout pause APP CHANNEL\n"
    "       updraft rollout resume APP CHANNEL\n"
    "       updraft rollout halt APP CHANNEL\n"
    "       updraft rollout countries APP CHANNEL [CC ...]\n"
    "       updraft rollout pin APP CHANNEL [CLIENT ...]\n"
    "\n"
    "Changes the rollout of the newest release of a channel.\n"
    "\n"
    "  set        offer the release to PERCENT of clients (0-100, at most two decimals: 25, 25.5, 0.25);\n"
    "             raising it only ever adds clients\n"
    "  pause      freeze the percentage; resume undoes it\n"
    "  halt       percentage 0: nobody new gets the release, the release is kept\n"
    "  countries  limit the rollout to these ISO 3166-1 countries (DE FR ...); none means every country\n"
    "  pin        replace the list of clients that always get the release; none empties it\n"
    "\n"
    "Prints the channel's resulting state.\n";

static const char usage_channel[] = "Usage: updraft channel show APP CHANNEL\n"
                                    "\n"
                                    "Prints a channel's stable version, its rollout (version, percentage, paused,\n"
                                    "countries, pinned clients) and, per release, how many distinct clients were offered it.\n";

static const char usage_members[] =
    "Usage: updraft members list\n"
    "       updraft members show ID\n"
    "       updraft members create ID [--name NAME] [--email EMAIL] [--role ROLE [--app APP]]\n"
    "       updraft members set-role ID ROLE [--app APP]\n"
    "       updraft members unset-role ID [--app APP]\n"
    "       updraft members remove ID\n"
    "\n"
    "Manages the members of the account: the people whose keys act on its apps. Every command but 'show' needs an\n"
    "account-wide admin key; 'show' also works with a key of the member shown.\n"
    "\n"
    "A member holds a role per app and/or account-wide (build < release < admin); their role on an app is the\n"
    "higher of the two. ID is [a-z0-9][a-z0-9-]{0,62}; ROLE is build, release or admin; APP is an app's id, or *\n"
    "for account-wide, the default.\n"
    "\n"
    "  list        every member, with their roles\n"
    "  show        one member, with their keys\n"
    "  create      a new member; --role gives them ROLE on --app (default: account-wide), none gives no role\n"
    "  set-role    give the member ROLE on APP (replacing the one they had there); their keys follow at once\n"
    "  unset-role  take away the member's role on APP\n"
    "  remove      remove the member; their keys are revoked with it\n";

static const char usage_keys[] =
    "Usage: updraft keys list [--member ID]\n"
    "       updraft keys create --name NAME [--member ID] [--app APP] [--role ROLE] [--expires DURATION]\n"
    "       updraft keys revoke KEY-ID\n"
    "\n"
    "Manages API keys. What a key may do is its own scope (APP and ROLE) intersected with its member's roles.\n"
    "\n"
    "  list      every key (an account-wide admin key), or those of one --member; never a secret\n"
    "  create    a new key named NAME, for --member (a service key when none: it must then name one --app and a\n"
    "            --role), scoped to --app (an app's id, or * for account-wide, the default) and --role (build,\n"
    "            release, admin); --expires makes it expire after DURATION: a number of minutes, hours or days\n"
    "            (30m, 12h, 90d). Any key may create a key for its own member.\n"
    "  revoke    revoke the key with this id (16 hex digits, as 'keys list' shows): the key is refused from its\n"
    "            next request on\n"
    "\n"
    "'create' prints the new key once, alone on stdout, and its description on stderr: it is not shown again, so\n"
    "store it now (KEY=$(updraft keys create ...) keeps only the key).\n";

static const char usage_audit[] =
    "Usage: updraft audit [--app APP] [--actor ID] [--action ACTION] [--outcome OUTCOME] [--since TIME]\n"
    "                     [--before SEQ] [--limit N]\n"
    "\n"
    "Prints the audit trail, newest first, as a table: sequence number, time, actor, action, target and outcome.\n"
    "Every change and every refused request is a record. Needs an account-wide admin key.\n"
    "\n"
    "  --app APP          records about this app\n"
    "  --actor ID         records of this member, or of this key (its id)\n"
    "  --action ACTION    records of this action (release.publish, member.update, key.create, auth.sign_in, ...)\n"
    "  --outcome OUTCOME  ok, denied (401, 403) or failed (any other refusal)\n"
    "  --since TIME       records from TIME on: Unix seconds, or RFC 3339 (2026-05-01T00:00:00Z)\n"
    "  --before SEQ       records older than sequence number SEQ: the next page, as the end of a page says\n"
    "  --limit N          at most N records (1-1000; default 100)\n"
    "\n"
    "With --json, the server's answer as received: {\"records\":[...],\"next_before\":SEQ|null}.\n";

static const char usage_backups[] = "Usage: updraft backups list\n"
                                    "       updraft backups now\n"
                                    "\n"
                                    "'list' prints the control plane's backups: id, time, size, store schema, the audit\n"
                                    "record it ends with and whether it checked out. 'now' starts a backup at once and\n"
                                    "prints its id. Both need an account-wide admin key.\n";

static const struct {
    const char *topic;
    const char *text;
} usages[] = {{"apps", usage_apps},       {"releases", usage_releases}, {"rollout", usage_rollout}, {"channel", usage_channel},
              {"members", usage_members}, {"keys", usage_keys},         {"audit", usage_audit},     {"backups", usage_backups},
              {"login", usage_login},     {"logout", usage_login}};

const char *
upd_cli_usage(const char *topic)
{
    if (topic != NULL)
        for (size_t i = 0; i != sizeof(usages) / sizeof(usages[0]); ++i)
            if (strcmp(usages[i].topic, topic) == 0)
                return usages[i].text;
    return usage_global;
}

/* ---- helpers -------------------------------------------------------------------------------------------------- */

static int usage_error(upd_cli_args_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
usage_error(upd_cli_args_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof(a->err), fmt, ap);
    va_end(ap);
    return UPD_EINVAL;
}

static void set_path(upd_cli_args_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_path(upd_cli_args_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Every piece spliced in was validated against the id grammar first, so nothing here needs percent-encoding. */
    if (vasprintf(&a->path, fmt, ap) < 0)
        abort(); /* small internal allocation: STYLE.md §4.3 */
    va_end(ap);
}

static bool
is_option_word(const char *w)
{
    /* Only "--..." and "-h" are options: a lone dash starts a value ("-5" is then refused as a percentage, with a
     * message that says so, instead of as an unknown option). */
    return strncmp(w, "--", 2) == 0 || strcmp(w, "-h") == 0;
}

static bool
is_help_word(const char *w)
{
    return strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0;
}

static bool
is_global_option(const char *w)
{
    static const char *const names[] = {"--server", "--api-key", "--insecure", "--json", "--version"};
    size_t n = strcspn(w, "=");
    for (size_t i = 0; i != sizeof(names) / sizeof(names[0]); ++i)
        if (strlen(names[i]) == n && strncmp(w, names[i], n) == 0)
            return true;
    return false;
}

/*
 * Matches "--NAME VALUE" and "--NAME=VALUE" at w[*i]. Returns 1 and advances *i past the value on a match, 0 when
 * w[*i] is another word, UPD_EINVAL when the value is missing or *value was already set (an option given twice
 * would otherwise silently lose one of its values).
 */
static int
take_value(upd_cli_args_t *a, int n, char **w, int *i, const char *name, const char **value)
{
    size_t len = strlen(name);
    if (strncmp(w[*i], name, len) != 0)
        return 0;
    if (w[*i][len] != '=' && w[*i][len] != '\0')
        return 0;
    if (*value != NULL)
        return usage_error(a, "%s given twice", name);
    if (w[*i][len] == '=') {
        *value = w[*i] + len + 1;
        ++*i;
        return 1;
    }
    if (*i + 1 >= n)
        return usage_error(a, "%s needs a value", name);
    *value = w[*i + 1];
    *i += 2;
    return 1;
}

static json_t *
utf8_string(upd_cli_args_t *a, const char *what, const char *s)
{
    /* json_string() refuses what is not UTF-8: the server would refuse it too, so say so here */
    json_t *j = json_string(s);
    if (j == NULL)
        usage_error(a, "%s is not valid UTF-8", what);
    return j;
}

static int
check_app(upd_cli_args_t *a, const char *s)
{
    if (!upd_id_is_app(s, strlen(s)))
        return usage_error(a, "app id '%s' is not valid: expected [a-z0-9][a-z0-9-]{0,62}", s);
    return 0;
}

static int
check_channel(upd_cli_args_t *a, const char *s)
{
    if (!upd_id_is_channel(s, strlen(s)))
        return usage_error(a, "channel '%s' is not valid: expected [a-z0-9][a-z0-9-]{0,62}", s);
    return 0;
}

/* A percentage as a JSON number: an integer when whole, else a real with two decimals at most. */
static int
percent_json(upd_cli_args_t *a, const char *what, const char *s, json_t **out)
{
    uint32_t bp;
    if (upd_rollout_percent_parse(s, strlen(s), &bp) != 0)
        return usage_error(a, "%s '%s' is not valid: expected 0 to 100 with at most two decimals (25, 25.5, 0.25)", what, s);
    *out = bp % 100 == 0 ? json_integer(bp / 100) : json_real(bp / 100.0);
    return 0;
}

/* ---- commands ------------------------------------------------------------------------------------------------- */

static int
apps_create(upd_cli_args_t *a, int n, char **w)
{
    const char *app = NULL, *name = NULL;
    for (int i = 0; i < n;) {
        int r;
        if ((r = take_value(a, n, w, &i, "--name", &name)) != 0) {
            if (r < 0)
                return r;
        } else if (is_option_word(w[i])) {
            return usage_error(a, "unknown option '%s' for 'apps create'%s", w[i],
                               is_global_option(w[i]) ? " (global options go before the command)" : "");
        } else if (app == NULL) {
            app = w[i++];
        } else {
            return usage_error(a, "unexpected argument '%s': 'apps create' takes one APP", w[i]);
        }
    }
    if (app == NULL)
        return usage_error(a, "'apps create' needs APP");
    if (check_app(a, app) != 0)
        return UPD_EINVAL;
    if (name != NULL && name[0] == '\0')
        return usage_error(a, "--name is empty");

    json_t *jname = utf8_string(a, "--name", name != NULL ? name : app);
    if (jname == NULL)
        return UPD_EINVAL;
    a->method = "POST";
    set_path(a, "/v1/apps");
    a->body = json_object();
    json_object_set_new(a->body, "id", json_string(app));
    json_object_set_new(a->body, "name", jname);
    a->print = UPD_CLI_PRINT_APP;
    return 0;
}

/* NAME:PLATFORM:ARCH:PATH; PATH may itself contain colons, the other three cannot. */
static int
parse_artifact(upd_cli_args_t *a, const char *spec, json_t *files)
{
    const char *c1 = strchr(spec, ':'), *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL,
               *c3 = c2 != NULL ? strchr(c2 + 1, ':') : NULL;
    if (c3 == NULL || c3[1] == '\0')
        return usage_error(a, "--artifact '%s' is not NAME:PLATFORM:ARCH:PATH", spec);

    size_t name_len = (size_t)(c1 - spec), platform_len = (size_t)(c2 - c1 - 1), arch_len = (size_t)(c3 - c2 - 1);
    if (!upd_id_is_filename(spec, name_len))
        return usage_error(a, "--artifact '%s': file name '%.*s' is not valid: expected [A-Za-z0-9._+-]{1,200}, not . or ..", spec,
                           (int)name_len, spec);
    int platform = upd_platform_parse(c1 + 1, platform_len);
    if (platform < 0)
        return usage_error(a, "--artifact '%s': platform '%.*s' is not one of windows, mac, linux", spec, (int)platform_len,
                           c1 + 1);
    int arch = upd_arch_parse(c2 + 1, arch_len);
    if (arch < 0)
        return usage_error(a, "--artifact '%s': arch '%.*s' is not one of x64, arm64, ia32, universal", spec, (int)arch_len,
                           c2 + 1);

    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *other = json_string_value(json_object_get(f, "name"));
        if (strlen(other) == name_len && memcmp(other, spec, name_len) == 0)
            return usage_error(a, "--artifact: file name '%s' given twice", other);
    }

    /* Names as the API spells them: the parsers also take client aliases (darwin, x86_64) that the API does not. */
    f = json_object();
    json_object_set_new(f, "name", json_stringn(spec, name_len));
    json_object_set_new(f, "platform", json_string(upd_platform_name((upd_platform_t)platform)));
    json_object_set_new(f, "arch", json_string(upd_arch_name((upd_arch_t)arch)));
    json_array_append_new(files, f);
    a->artifacts[a->nartifacts++] = (upd_cli_artifact_t){.path = c3 + 1, .file = f};
    return 0;
}

static int
releases_create(upd_cli_args_t *a, int n, char **w)
{
    const char *app = NULL, *file = NULL, *version = NULL, *channel = NULL, *notes = NULL, *rollout = NULL, *artifact = NULL;
    const char *first_release_option = NULL;
    bool draft = false;
    json_t *files = json_array();
    int ret = UPD_EINVAL;

    /* at most one artifact per remaining word */
    a->artifacts = calloc((size_t)n + 1, sizeof(*a->artifacts));
    if (a->artifacts == NULL)
        abort();

    for (int i = 0; i < n;) {
        const char *opt = w[i];
        int r;
        if ((r = take_value(a, n, w, &i, "--artifact", &artifact)) != 0) {
            if (r < 0 || parse_artifact(a, artifact, files) != 0)
                goto Exit;
            artifact = NULL; /* the one option that may repeat */
        } else if ((r = take_value(a, n, w, &i, "--file", &file)) != 0 ||
                   (r = take_value(a, n, w, &i, "--version", &version)) != 0 ||
                   (r = take_value(a, n, w, &i, "--channel", &channel)) != 0 ||
                   (r = take_value(a, n, w, &i, "--notes", &notes)) != 0 ||
                   (r = take_value(a, n, w, &i, "--rollout", &rollout)) != 0) {
            if (r < 0)
                goto Exit;
        } else if (strcmp(w[i], "--draft") == 0) {
            if (draft) {
                usage_error(a, "--draft given twice");
                goto Exit;
            }
            draft = true;
            ++i;
        } else if (is_option_word(w[i])) {
            usage_error(a, "unknown option '%s' for 'releases create'%s", w[i],
                        is_global_option(w[i]) ? " (global options go before the command)" : "");
            goto Exit;
        } else if (app == NULL) {
            app = w[i++];
            continue;
        } else {
            usage_error(a, "unexpected argument '%s': 'releases create' takes one APP", w[i]);
            goto Exit;
        }
        if (strncmp(opt, "--file", 6) != 0 && first_release_option == NULL)
            first_release_option = opt;
    }

    if (app == NULL) {
        usage_error(a, "'releases create' needs APP");
        goto Exit;
    }
    if (check_app(a, app) != 0)
        goto Exit;

    a->method = "POST";
    set_path(a, "/v1/apps/%s/releases", app);
    a->print = UPD_CLI_PRINT_RELEASE;

    if (file != NULL) {
        if (first_release_option != NULL) {
            usage_error(a, "--file cannot be combined with %.*s: the file describes the whole release%s",
                        (int)strcspn(first_release_option, "="), first_release_option,
                        draft ? " (one without \"channel\" is registered as a draft)" : "");
            goto Exit;
        }
        if (file[0] == '\0') {
            usage_error(a, "--file is empty");
            goto Exit;
        }
        a->body_file = file;
        ret = 0;
        goto Exit;
    }

    if (version == NULL) {
        usage_error(a, "'releases create' needs --file FILE, or --version V with at least one --artifact");
        goto Exit;
    }
    upd_version_t v;
    if (upd_version_parse(version, strlen(version), &v) != 0) {
        usage_error(a, "version '%s' is not a SemVer 2.0 version (such as 1.2.3 or 1.3.0-beta.2)", version);
        goto Exit;
    }
    if (draft && channel != NULL) {
        usage_error(a, "--draft and --channel cannot go together: a draft is on no channel until 'releases publish'");
        goto Exit;
    }
    if (draft && rollout != NULL) {
        usage_error(a, "--draft and --rollout cannot go together: a draft's rollout is given to 'releases publish'");
        goto Exit;
    }
    if (draft)
        channel = NULL; /* the contract: a release without "channel" is a draft */
    else if (channel == NULL)
        channel = "latest"; /* PROTOCOLS.md: "latest" is the stable channel */
    else if (check_channel(a, channel) != 0)
        goto Exit;
    if (a->nartifacts == 0) {
        usage_error(a, "'releases create' needs at least one --artifact NAME:PLATFORM:ARCH:PATH");
        goto Exit;
    }

    json_t *jnotes = NULL, *jpercent = NULL;
    if (notes != NULL && (jnotes = utf8_string(a, "--notes", notes)) == NULL)
        goto Exit;
    if (rollout != NULL && percent_json(a, "--rollout", rollout, &jpercent) != 0) {
        json_decref(jnotes);
        goto Exit;
    }

    /* Keys in the order PROTOCOLS.md shows them; jansson keeps insertion order. */
    a->body = json_object();
    json_object_set_new(a->body, "version", json_string(version));
    if (channel != NULL)
        json_object_set_new(a->body, "channel", json_string(channel));
    else
        a->print = UPD_CLI_PRINT_DRAFT;
    if (jnotes != NULL)
        json_object_set_new(a->body, "notes", jnotes);
    json_object_set(a->body, "files", files);
    if (jpercent != NULL)
        json_object_set_new(a->body, "rollout", json_pack("{s:o}", "percent", jpercent));
    ret = 0;

Exit:
    /* a->artifacts[].file stay valid: a->body holds its own reference to the array */
    json_decref(files);
    if (ret != 0 || a->body == NULL) {
        free(a->artifacts);
        a->artifacts = NULL;
        a->nartifacts = 0;
    }
    return ret;
}

/*
 * The rollout commands: "APP CHANNEL" then between min and max words of the verb's own (max -1: no limit); no
 * options. Sets method and path.
 */
static int
releases_pull(upd_cli_args_t *a, int n, char **w)
{
    const char *app = NULL, *version = NULL, *reason = NULL;
    for (int i = 0; i < n;) {
        int r;
        if ((r = take_value(a, n, w, &i, "--reason", &reason)) != 0) {
            if (r < 0)
                return r;
        } else if (is_option_word(w[i])) {
            return usage_error(a, "unknown option '%s' for 'releases pull'%s", w[i],
                               is_global_option(w[i]) ? " (global options go before the command)" : "");
        } else if (app == NULL) {
            app = w[i++];
        } else if (version == NULL) {
            version = w[i++];
        } else {
            return usage_error(a, "unexpected argument '%s': 'releases pull' takes APP VERSION", w[i]);
        }
    }
    if (version == NULL)
        return usage_error(a, "'releases pull' needs APP VERSION");
    if (check_app(a, app) != 0)
        return UPD_EINVAL;
    upd_version_t v;
    if (strlen(version) > UPD_VERSION_MAX || upd_version_parse(version, strlen(version), &v) != 0)
        return usage_error(a, "version '%s' is not a SemVer 2.0 version (such as 1.2.3 or 1.3.0-beta.2)", version);
    a->body = json_object();
    if (reason != NULL) {
        json_t *jreason = utf8_string(a, "--reason", reason);
        if (jreason == NULL)
            return UPD_EINVAL;
        json_object_set_new(a->body, "reason", jreason);
    }
    a->method = "POST";
    /* SemVer's characters ([0-9A-Za-z.+-]) need no escaping in a path */
    set_path(a, "/v1/apps/%s/releases/%s/pull", app, version);
    a->print = UPD_CLI_PRINT_CHANNEL; /* commands.c says what was pulled first (a->command) */
    return 0;
}

static int
rollout_target(upd_cli_args_t *a, const char *verb, const char *extra_name, int n, char **w, int min, int max)
{
    for (int i = 0; i != n; ++i)
        if (is_option_word(w[i]))
            return usage_error(a, "unknown option '%s' for 'rollout %s'%s", w[i], verb,
                               is_global_option(w[i]) ? " (global options go before the command)" : "");
    if (n < 2 + min)
        return usage_error(a, "'rollout %s' needs APP CHANNEL%s%s", verb, extra_name[0] != '\0' ? " " : "", extra_name);
    if (max >= 0 && n > 2 + max)
        return usage_error(a, "unexpected argument '%s': 'rollout %s' takes APP CHANNEL%s%s", w[2 + max], verb,
                           extra_name[0] != '\0' ? " " : "", extra_name);
    if (check_app(a, w[0]) != 0 || check_channel(a, w[1]) != 0)
        return UPD_EINVAL;
    a->method = "PUT";
    set_path(a, "/v1/apps/%s/channels/%s/rollout", w[0], w[1]);
    a->print = UPD_CLI_PRINT_CHANNEL;
    return 0;
}

static int
rollout_set(upd_cli_args_t *a, int n, char **w)
{
    json_t *percent = NULL; /* set by percent_json on success; -O3 cannot see that */
    if (rollout_target(a, "set", "PERCENT", n, w, 1, 1) != 0 || percent_json(a, "percent", w[2], &percent) != 0)
        return UPD_EINVAL;
    a->body = json_pack("{s:o}", "percent", percent);
    return 0;
}

static int
rollout_pause(upd_cli_args_t *a, int n, char **w)
{
    if (rollout_target(a, "pause", "", n, w, 0, 0) != 0)
        return UPD_EINVAL;
    a->body = json_pack("{s:b}", "paused", 1);
    return 0;
}

static int
rollout_resume(upd_cli_args_t *a, int n, char **w)
{
    if (rollout_target(a, "resume", "", n, w, 0, 0) != 0)
        return UPD_EINVAL;
    a->body = json_pack("{s:b}", "paused", 0);
    return 0;
}

static int
rollout_halt(upd_cli_args_t *a, int n, char **w)
{
    if (rollout_target(a, "halt", "", n, w, 0, 0) != 0)
        return UPD_EINVAL;
    /* PROTOCOLS.md: halt is percent 0 with the release kept */
    a->body = json_pack("{s:i}", "percent", 0);
    return 0;
}

static int
rollout_countries(upd_cli_args_t *a, int n, char **w)
{
    if (rollout_target(a, "countries", "[CC ...]", n, w, 0, -1) != 0)
        return UPD_EINVAL;
    if (n - 2 > UPD_ROLLOUT_MAX_COUNTRIES)
        return usage_error(a, "'rollout countries' takes at most %d countries, got %d", UPD_ROLLOUT_MAX_COUNTRIES, n - 2);
    json_t *list = json_array();
    for (int i = 2; i < n; ++i) {
        /* The API takes upper case only; "de" is what people type, so accept it. */
        char cc[UPD_COUNTRY_LEN + 1] = "";
        if (strlen(w[i]) == UPD_COUNTRY_LEN)
            for (size_t j = 0; j != UPD_COUNTRY_LEN; ++j)
                cc[j] = w[i][j] >= 'a' && w[i][j] <= 'z' ? (char)(w[i][j] - 'a' + 'A') : w[i][j];
        if (!upd_id_is_country(cc, strlen(cc))) {
            json_decref(list);
            return usage_error(a, "country '%s' is not valid: expected a two-letter ISO 3166-1 code such as DE", w[i]);
        }
        json_array_append_new(list, json_string(cc));
    }
    /* an empty list is meaningful: every country */
    a->body = json_pack("{s:o}", "countries", list);
    return 0;
}

static int
rollout_pin(upd_cli_args_t *a, int n, char **w)
{
    if (rollout_target(a, "pin", "[CLIENT ...]", n, w, 0, -1) != 0)
        return UPD_EINVAL;
    json_t *list = json_array();
    for (int i = 2; i < n; ++i) {
        if (!upd_id_is_client(w[i], strlen(w[i]))) {
            json_decref(list);
            return usage_error(a, "client id '%s' is not valid: expected 1-128 characters of [A-Za-z0-9._:-]", w[i]);
        }
        json_array_append_new(list, json_string(w[i]));
    }
    /* the list replaces the pinned clients: none empties it */
    a->body = json_pack("{s:o}", "pinned", list);
    return 0;
}

static int
channel_show(upd_cli_args_t *a, int n, char **w)
{
    for (int i = 0; i != n; ++i)
        if (is_option_word(w[i]))
            return usage_error(a, "unknown option '%s' for 'channel show'%s", w[i],
                               is_global_option(w[i]) ? " (global options go before the command)" : "");
    if (n < 2)
        return usage_error(a, "'channel show' needs APP CHANNEL");
    if (n > 2)
        return usage_error(a, "unexpected argument '%s': 'channel show' takes APP CHANNEL", w[2]);
    if (check_app(a, w[0]) != 0 || check_channel(a, w[1]) != 0)
        return UPD_EINVAL;
    a->method = "GET";
    set_path(a, "/v1/apps/%s/channels/%s", w[0], w[1]);
    a->print = UPD_CLI_PRINT_CHANNEL;
    return 0;
}

/* ---- the records of the account: members, keys, audit, backups; drafts; sign-in ------------------------------ */

typedef struct st_opt_t {
    const char *name;
    const char **value;
} opt_t;

static int
unknown_option(upd_cli_args_t *a, const char *word)
{
    return usage_error(a, "unknown option '%s' for '%s'%s", word, a->command,
                       is_global_option(word) ? " (global options go before the command)" : "");
}

/*
 * The words of a command: positional arguments, in order (at least need, at most npos), and options that take a
 * value, each at most once. `takes` names the positionals for the messages ("ID ROLE"; "" for none).
 */
static int
take_words(upd_cli_args_t *a, int n, char **w, const char *takes, const char **pos, int need, int npos, const opt_t *opts,
           size_t nopts)
{
    int got = 0;
    for (int i = 0; i < n;) {
        int r = 0;
        for (size_t k = 0; k != nopts && r == 0; ++k)
            r = take_value(a, n, w, &i, opts[k].name, opts[k].value);
        if (r < 0)
            return r;
        if (r > 0)
            continue;
        if (is_option_word(w[i]))
            return unknown_option(a, w[i]);
        if (got == npos)
            return takes[0] == '\0' ? usage_error(a, "unexpected argument '%s': '%s' takes no arguments", w[i], a->command)
                                    : usage_error(a, "unexpected argument '%s': '%s' takes %s", w[i], a->command, takes);
        pos[got++] = w[i++];
    }
    if (got < need)
        return usage_error(a, "'%s' needs %s", a->command, takes);
    return 0;
}

static int
check_member(upd_cli_args_t *a, const char *s)
{
    if (!upd_id_is_app(s, strlen(s)))
        return usage_error(a, "member id '%s' is not valid: expected [a-z0-9][a-z0-9-]{0,62}", s);
    return 0;
}

/* An --app that names a scope: an app, or "*" for account-wide. */
static int
check_scope(upd_cli_args_t *a, const char *s)
{
    if (strcmp(s, "*") != 0 && !upd_id_is_app(s, strlen(s)))
        return usage_error(a, "--app '%s' is not valid: expected an app id ([a-z0-9][a-z0-9-]{0,62}) or * for account-wide", s);
    return 0;
}

static int
check_role(upd_cli_args_t *a, const char *s)
{
    if (strcmp(s, "build") != 0 && strcmp(s, "release") != 0 && strcmp(s, "admin") != 0)
        return usage_error(a, "role '%s' is not one of build, release, admin", s);
    return 0;
}

static int
check_version(upd_cli_args_t *a, const char *s)
{
    upd_version_t v;
    if (strlen(s) > UPD_VERSION_MAX || upd_version_parse(s, strlen(s), &v) != 0)
        return usage_error(a, "version '%s' is not a SemVer 2.0 version (such as 1.2.3 or 1.3.0-beta.2)", s);
    return 0;
}

/* A key's id: the 16 hex digits of "upd_<id>_<secret>" (control/keys.h). */
static int
check_key_id(upd_cli_args_t *a, const char *s)
{
    /* someone pasting the key itself: say so without repeating it, since it is a secret */
    if (strncmp(s, "upd_", 4) == 0)
        return usage_error(a, "that is a key, not a key's id: pass the 16 hex digits after 'upd_' (the key is not shown)");
    size_t len = strlen(s);
    bool hex = len == 16;
    for (size_t i = 0; hex && i != len; ++i)
        hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (!hex)
        return usage_error(a, "key id '%.64s' is not valid: expected 16 hex digits, as 'updraft keys list' shows", s);
    return 0;
}

/* A text option: not empty, UTF-8. */
static json_t *
text_option(upd_cli_args_t *a, const char *what, const char *s)
{
    if (s[0] == '\0') {
        usage_error(a, "%s is empty", what);
        return NULL;
    }
    return utf8_string(a, what, s);
}

static bool
all_digits(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; ++n)
        ;
    return n != 0 && n <= max && s[n] == '\0';
}

/* RFC 3339: 2026-05-01T12:00:00Z, with optional fraction, Z or an offset (+02:00). The server checks the ranges. */
static bool
is_rfc3339(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;
    for (; shape[i] != '\0'; ++i) {
        char c = s[i];
        bool ok = shape[i] == 'd' ? c >= '0' && c <= '9' : shape[i] == 'T' ? c == 'T' || c == 't' : c == shape[i];
        if (!ok)
            return false;
    }
    if (s[i] == '.') {
        size_t start = ++i;
        while (s[i] >= '0' && s[i] <= '9')
            ++i;
        if (i == start || i - start > 9)
            return false;
    }
    if (s[i] == 'Z' || s[i] == 'z')
        return s[i + 1] == '\0';
    if (s[i] != '+' && s[i] != '-')
        return false;
    const char *o = s + i + 1;
    return o[0] >= '0' && o[0] <= '9' && o[1] >= '0' && o[1] <= '9' && o[2] == ':' && o[3] >= '0' && o[3] <= '9' && o[4] >= '0' &&
           o[4] <= '9' && o[5] == '\0';
}

/* Appends "&name=value" (the first one with "?") to a path, the value percent-encoded (RFC 3986 unreserved kept). */
static void
query_add(char **path, const char *name, const char *value)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t plen = strlen(*path), vlen = strlen(value);
    char *p = realloc(*path, plen + 1 + strlen(name) + 1 + vlen * 3 + 1);
    if (p == NULL)
        abort();
    char *o = p + plen;
    *o++ = strchr(p, '?') == NULL ? '?' : '&';
    o = stpcpy(o, name);
    *o++ = '=';
    for (const unsigned char *v = (const unsigned char *)value; *v != '\0'; ++v) {
        if ((*v >= 'A' && *v <= 'Z') || (*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9') || strchr("-._~", *v) != NULL) {
            *o++ = (char)*v;
        } else {
            *o++ = '%';
            *o++ = hexd[*v >> 4];
            *o++ = hexd[*v & 15];
        }
    }
    *o = '\0';
    *path = p;
}

static int
members_list(upd_cli_args_t *a, int n, char **w)
{
    if (take_words(a, n, w, "", NULL, 0, 0, NULL, 0) != 0)
        return UPD_EINVAL;
    a->method = "GET";
    set_path(a, "/v1/members");
    a->print = UPD_CLI_PRINT_MEMBER_LIST;
    return 0;
}

static int
members_show(upd_cli_args_t *a, int n, char **w)
{
    const char *id = NULL;
    if (take_words(a, n, w, "ID", &id, 1, 1, NULL, 0) != 0 || check_member(a, id) != 0)
        return UPD_EINVAL;
    a->method = "GET";
    set_path(a, "/v1/members/%s", id);
    a->print = UPD_CLI_PRINT_MEMBER_SHOW;
    return 0;
}

static int
members_create(upd_cli_args_t *a, int n, char **w)
{
    const char *id = NULL, *name = NULL, *email = NULL, *role = NULL, *app = NULL;
    const opt_t opts[] = {{"--name", &name}, {"--email", &email}, {"--role", &role}, {"--app", &app}};
    json_t *jname = NULL, *jemail = NULL;
    if (take_words(a, n, w, "ID", &id, 1, 1, opts, sizeof(opts) / sizeof(opts[0])) != 0 || check_member(a, id) != 0)
        return UPD_EINVAL;
    if (app != NULL && role == NULL)
        return usage_error(a, "--app goes with --role: it says where the member gets that role");
    if ((role != NULL && check_role(a, role) != 0) || (app != NULL && check_scope(a, app) != 0))
        return UPD_EINVAL;
    if ((name != NULL && (jname = text_option(a, "--name", name)) == NULL) ||
        (email != NULL && (jemail = text_option(a, "--email", email)) == NULL)) {
        json_decref(jname);
        return UPD_EINVAL;
    }
    a->body = json_object();
    json_object_set_new(a->body, "id", json_string(id));
    if (jname != NULL)
        json_object_set_new(a->body, "name", jname);
    if (jemail != NULL)
        json_object_set_new(a->body, "email", jemail);
    json_t *roles = json_object();
    if (role != NULL)
        json_object_set_new(roles, app != NULL ? app : "*", json_string(role));
    json_object_set_new(a->body, "roles", roles);
    a->method = "POST";
    set_path(a, "/v1/members");
    a->print = UPD_CLI_PRINT_MEMBER;
    return 0;
}

/* set-role and unset-role: one PATCH of "roles", merged by the server; null removes the scope. */
static int
members_patch_role(upd_cli_args_t *a, const char *id, const char *app, json_t *role)
{
    if (check_member(a, id) != 0 || (app != NULL && check_scope(a, app) != 0)) {
        json_decref(role);
        return UPD_EINVAL;
    }
    json_t *roles = json_object();
    json_object_set_new(roles, app != NULL ? app : "*", role);
    a->body = json_pack("{s:o}", "roles", roles);
    a->method = "PATCH";
    set_path(a, "/v1/members/%s", id);
    a->print = UPD_CLI_PRINT_MEMBER;
    return 0;
}

static int
members_set_role(upd_cli_args_t *a, int n, char **w)
{
    const char *pos[2] = {NULL, NULL}, *app = NULL;
    const opt_t opts[] = {{"--app", &app}};
    if (take_words(a, n, w, "ID ROLE", pos, 2, 2, opts, 1) != 0 || check_role(a, pos[1]) != 0)
        return UPD_EINVAL;
    return members_patch_role(a, pos[0], app, json_string(pos[1]));
}

static int
members_unset_role(upd_cli_args_t *a, int n, char **w)
{
    const char *id = NULL, *app = NULL;
    const opt_t opts[] = {{"--app", &app}};
    if (take_words(a, n, w, "ID", &id, 1, 1, opts, 1) != 0)
        return UPD_EINVAL;
    return members_patch_role(a, id, app, json_null());
}

static int
members_remove(upd_cli_args_t *a, int n, char **w)
{
    const char *id = NULL;
    if (take_words(a, n, w, "ID", &id, 1, 1, NULL, 0) != 0 || check_member(a, id) != 0)
        return UPD_EINVAL;
    a->method = "DELETE";
    set_path(a, "/v1/members/%s", id);
    a->print = UPD_CLI_PRINT_MEMBER_REMOVED;
    return 0;
}

static int
keys_list(upd_cli_args_t *a, int n, char **w)
{
    const char *member = NULL;
    const opt_t opts[] = {{"--member", &member}};
    if (take_words(a, n, w, "", NULL, 0, 0, opts, 1) != 0 || (member != NULL && check_member(a, member) != 0))
        return UPD_EINVAL;
    a->method = "GET";
    set_path(a, "/v1/keys");
    if (member != NULL)
        query_add(&a->path, "member", member);
    a->print = UPD_CLI_PRINT_KEY_LIST;
    return 0;
}

/* 30m, 12h, 90d: a whole number of minutes, hours or days, sent as written (the server turns it into a time). */
static bool
is_duration(const char *s)
{
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        ++n;
    return n >= 1 && n <= 6 && s[0] != '0' && (s[n] == 'm' || s[n] == 'h' || s[n] == 'd') && s[n + 1] == '\0';
}

static int
keys_create(upd_cli_args_t *a, int n, char **w)
{
    const char *name = NULL, *member = NULL, *app = NULL, *role = NULL, *expires = NULL;
    const opt_t opts[] = {{"--name", &name}, {"--member", &member}, {"--app", &app}, {"--role", &role}, {"--expires", &expires}};
    if (take_words(a, n, w, "", NULL, 0, 0, opts, sizeof(opts) / sizeof(opts[0])) != 0)
        return UPD_EINVAL;
    if (name == NULL)
        return usage_error(a, "'keys create' needs --name NAME");
    if ((member != NULL && check_member(a, member) != 0) || (app != NULL && check_scope(a, app) != 0) ||
        (role != NULL && check_role(a, role) != 0))
        return UPD_EINVAL;
    if (expires != NULL && !is_duration(expires))
        return usage_error(a, "--expires '%s' is not valid: expected minutes, hours or days such as 30m, 12h, 90d", expires);
    json_t *jname = text_option(a, "--name", name);
    if (jname == NULL)
        return UPD_EINVAL;
    a->body = json_object();
    json_object_set_new(a->body, "name", jname);
    if (member != NULL)
        json_object_set_new(a->body, "member", json_string(member));
    if (app != NULL)
        json_object_set_new(a->body, "app", json_string(app));
    if (role != NULL)
        json_object_set_new(a->body, "role", json_string(role));
    if (expires != NULL)
        json_object_set_new(a->body, "expires", json_string(expires));
    a->method = "POST";
    set_path(a, "/v1/keys");
    a->print = UPD_CLI_PRINT_KEY_CREATED;
    return 0;
}

static int
keys_revoke(upd_cli_args_t *a, int n, char **w)
{
    const char *id = NULL;
    if (take_words(a, n, w, "KEY-ID", &id, 1, 1, NULL, 0) != 0 || check_key_id(a, id) != 0)
        return UPD_EINVAL;
    a->method = "DELETE";
    set_path(a, "/v1/keys/%s", id);
    a->print = UPD_CLI_PRINT_KEY_REVOKED;
    return 0;
}

static int
audit(upd_cli_args_t *a, int n, char **w)
{
    const char *app = NULL, *actor = NULL, *action = NULL, *outcome = NULL, *since = NULL, *before = NULL, *limit = NULL;
    const opt_t opts[] = {{"--app", &app},     {"--actor", &actor},   {"--action", &action}, {"--outcome", &outcome},
                          {"--since", &since}, {"--before", &before}, {"--limit", &limit}};
    if (take_words(a, n, w, "", NULL, 0, 0, opts, sizeof(opts) / sizeof(opts[0])) != 0)
        return UPD_EINVAL;
    if (app != NULL && check_app(a, app) != 0)
        return UPD_EINVAL;
    if (actor != NULL && !upd_id_is_app(actor, strlen(actor)))
        return usage_error(a, "--actor '%s' is not valid: expected a member id or a key id", actor);
    if (action != NULL) {
        size_t len = strlen(action);
        bool ok = len != 0 && len <= UPD_AUDIT_ACTION_MAX;
        for (size_t i = 0; ok && i != len; ++i)
            ok = (action[i] >= 'a' && action[i] <= 'z') || (action[i] >= '0' && action[i] <= '9') ||
                 strchr("._-", action[i]) != NULL;
        if (!ok)
            return usage_error(a, "--action '%s' is not valid: expected an action such as release.publish", action);
    }
    if (outcome != NULL && strcmp(outcome, "ok") != 0 && strcmp(outcome, "denied") != 0 && strcmp(outcome, "failed") != 0)
        return usage_error(a, "--outcome '%s' is not one of ok, denied, failed", outcome);
    if (since != NULL && !all_digits(since, 12) && !is_rfc3339(since))
        return usage_error(a, "--since '%s' is not valid: expected Unix seconds or RFC 3339 (2026-05-01T00:00:00Z)", since);
    if (before != NULL && (!all_digits(before, 19) || strspn(before, "0") == strlen(before)))
        return usage_error(a, "--before '%s' is not valid: expected a sequence number (1 or more)", before);
    if (limit != NULL && (!all_digits(limit, 4) || atoi(limit) < 1 || atoi(limit) > 1000))
        return usage_error(a, "--limit '%s' is not valid: expected 1 to 1000", limit);

    a->method = "GET";
    set_path(a, "/v1/audit");
    const struct {
        const char *name, *value;
    } q[] = {{"app", app},     {"actor", actor},   {"action", action}, {"outcome", outcome},
             {"since", since}, {"before", before}, {"limit", limit}};
    for (size_t i = 0; i != sizeof(q) / sizeof(q[0]); ++i)
        if (q[i].value != NULL)
            query_add(&a->path, q[i].name, q[i].value);
    a->print = UPD_CLI_PRINT_AUDIT;
    return 0;
}

static int
releases_publish(upd_cli_args_t *a, int n, char **w)
{
    const char *pos[2] = {NULL, NULL}, *channel = NULL, *rollout = NULL;
    const opt_t opts[] = {{"--channel", &channel}, {"--rollout", &rollout}};
    json_t *jpercent = NULL;
    if (take_words(a, n, w, "APP VERSION", pos, 2, 2, opts, 2) != 0 || check_app(a, pos[0]) != 0 || check_version(a, pos[1]) != 0)
        return UPD_EINVAL;
    if (channel == NULL)
        return usage_error(a, "'releases publish' needs --channel C: the channel to publish the draft on");
    if (check_channel(a, channel) != 0 || (rollout != NULL && percent_json(a, "--rollout", rollout, &jpercent) != 0))
        return UPD_EINVAL;
    a->body = json_object();
    json_object_set_new(a->body, "channel", json_string(channel));
    if (jpercent != NULL)
        json_object_set_new(a->body, "rollout", json_pack("{s:o}", "percent", jpercent));
    a->method = "POST";
    set_path(a, "/v1/apps/%s/releases/%s/publish", pos[0], pos[1]);
    a->print = UPD_CLI_PRINT_RELEASE;
    return 0;
}

static int
releases_list(upd_cli_args_t *a, int n, char **w)
{
    const char *app = NULL;
    if (take_words(a, n, w, "APP", &app, 1, 1, NULL, 0) != 0 || check_app(a, app) != 0)
        return UPD_EINVAL;
    a->method = "GET";
    set_path(a, "/v1/apps/%s/releases", app);
    a->print = UPD_CLI_PRINT_RELEASE_LIST;
    return 0;
}

static int
releases_show(upd_cli_args_t *a, int n, char **w)
{
    const char *pos[2] = {NULL, NULL};
    if (take_words(a, n, w, "APP VERSION", pos, 2, 2, NULL, 0) != 0 || check_app(a, pos[0]) != 0 || check_version(a, pos[1]) != 0)
        return UPD_EINVAL;
    a->method = "GET";
    set_path(a, "/v1/apps/%s/releases/%s", pos[0], pos[1]);
    a->print = UPD_CLI_PRINT_RELEASE_SHOW;
    return 0;
}

static int
backups_list(upd_cli_args_t *a, int n, char **w)
{
    if (take_words(a, n, w, "", NULL, 0, 0, NULL, 0) != 0)
        return UPD_EINVAL;
    a->method = "GET";
    set_path(a, "/v1/backups");
    a->print = UPD_CLI_PRINT_BACKUP_LIST;
    return 0;
}

static int
backups_now(upd_cli_args_t *a, int n, char **w)
{
    if (take_words(a, n, w, "", NULL, 0, 0, NULL, 0) != 0)
        return UPD_EINVAL;
    a->method = "POST";
    set_path(a, "/v1/backups");
    a->body = json_object(); /* a POST with an empty object: a route that takes no body ignores it */
    a->print = UPD_CLI_PRINT_BACKUP_STARTED;
    return 0;
}

/* login's --server and --api-key are the global options, given after the command: each still at most once. */
static int
login(upd_cli_args_t *a, int n, char **w)
{
    const opt_t opts[] = {{"--server", &a->flag_server}, {"--api-key", &a->flag_api_key}};
    if (take_words(a, n, w, "", NULL, 0, 0, opts, 2) != 0)
        return UPD_EINVAL;
    a->kind = UPD_CLI_LOGIN;
    a->method = "POST";
    set_path(a, "/v1/login");
    a->body = json_object();
    a->print = UPD_CLI_PRINT_LOGIN;
    return 0;
}

static int
logout(upd_cli_args_t *a, int n, char **w)
{
    if (take_words(a, n, w, "", NULL, 0, 0, NULL, 0) != 0)
        return UPD_EINVAL;
    a->kind = UPD_CLI_LOGOUT;
    return 0;
}

/*
 * The commands. verb NULL: the group is the command itself (audit, login, logout). The global usage and each
 * group's usage name every command here (the unit tests check it).
 */
static const struct command {
    const char *group, *verb, *name;
    int (*parse)(upd_cli_args_t *a, int n, char **w);
} commands[] = {
    {"login", NULL, "login", login},
    {"logout", NULL, "logout", logout},
    {"apps", "create", "apps create", apps_create},
    {"releases", "create", "releases create", releases_create},
    {"releases", "publish", "releases publish", releases_publish},
    {"releases", "list", "releases list", releases_list},
    {"releases", "show", "releases show", releases_show},
    {"releases", "pull", "releases pull", releases_pull},
    {"rollout", "set", "rollout set", rollout_set},
    {"rollout", "pause", "rollout pause", rollout_pause},
    {"rollout", "resume", "rollout resume", rollout_resume},
    {"rollout", "halt", "rollout halt", rollout_halt},
    {"rollout", "countries", "rollout countries", rollout_countries},
    {"rollout", "pin", "rollout pin", rollout_pin},
    {"channel", "show", "channel show", channel_show},
    {"members", "list", "members list", members_list},
    {"members", "show", "members show", members_show},
    {"members", "create", "members create", members_create},
    {"members", "set-role", "members set-role", members_set_role},
    {"members", "unset-role", "members unset-role", members_unset_role},
    {"members", "remove", "members remove", members_remove},
    {"keys", "list", "keys list", keys_list},
    {"keys", "create", "keys create", keys_create},
    {"keys", "revoke", "keys revoke", keys_revoke},
    {"audit", NULL, "audit", audit},
    {"backups", "list", "backups list", backups_list},
    {"backups", "now", "backups now", backups_now},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The verbs of a group, for "'rollout' needs a subcommand: set, pause, ...", read off the table above. */
static void
list_verbs(const char *group, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i != NCOMMANDS && off < size; ++i)
        if (strcmp(commands[i].group, group) == 0 && commands[i].verb != NULL)
            off += (size_t)snprintf(buf + off, size - off, "%s%s", off != 0 ? ", " : "", commands[i].verb);
}

static const struct command *
find_group(const char *word)
{
    for (size_t i = 0; i != NCOMMANDS; ++i)
        if (strcmp(commands[i].group, word) == 0)
            return &commands[i];
    return NULL;
}

/* ---- the whole command line ----------------------------------------------------------------------------------- */

static int
parse_timeout(upd_cli_args_t *a, const char *s)
{
    long v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9' && v <= UPD_CLI_TIMEOUT_MAX; ++p)
        v = v * 10 + (*p - '0');
    if (p == s || *p != '\0' || v < 1 || v > UPD_CLI_TIMEOUT_MAX)
        return usage_error(a, "UPDRAFT_TIMEOUT '%s' is not a whole number of seconds from 1 to %d", s, UPD_CLI_TIMEOUT_MAX);
    a->timeout_s = v;
    return 0;
}

static int
set_server(upd_cli_args_t *a, const char *url)
{
    /* libcurl would guess a scheme for "host:port"; the key must not go out over plain text by a guess */
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return usage_error(a, "server '%s' is not an http:// or https:// URL", url);
    if (strpbrk(url, "?#") != NULL)
        return usage_error(a, "server '%s' must not have a query or fragment: API paths are appended to it", url);
    for (const char *p = url; *p != '\0'; ++p)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return usage_error(a, "server '%s' has a space or a character that a URL cannot hold (percent-encode it)", url);
    size_t len = strlen(url), host = strchr(url, ':') - url + 3;
    while (len > host && url[len - 1] == '/')
        --len; /* paths are appended as "/v1/..." */
    if (len == host)
        return usage_error(a, "server '%s' has no host", url);
    a->server = strndup(url, len);
    if (a->server == NULL)
        abort();
    return 0;
}

/*
 * Whether the server's host is this machine: 127.0.0.0/8, ::1 (or ::ffff:127.x.y.z) or localhost. Only literal
 * addresses count, so that no resolver is asked and "127.1" (which inet_aton would take) is refused like any name.
 */
static bool
host_is_loopback(const char *url)
{
    const char *h = strstr(url, "://") + 3;
    size_t len = strcspn(h, "/");
    const char *at = memrchr(h, '@', len); /* user:password@host */
    if (at != NULL) {
        len -= (size_t)(at + 1 - h);
        h = at + 1;
    }
    char host[256];
    if (h[0] == '[') {
        const char *end = memchr(h, ']', len);
        struct in6_addr a6;
        if (end == NULL || (size_t)(end - h - 1) >= sizeof(host))
            return false;
        memcpy(host, h + 1, (size_t)(end - h - 1));
        host[end - h - 1] = '\0';
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return false;
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    }
    size_t hlen = strcspn(h, ":/");
    if (hlen > len)
        hlen = len;
    if (hlen >= sizeof(host))
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
        return true;
    struct in_addr a4;
    return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* The server a saved key was saved for, compared as set_server() normalises it (no trailing slash). */
static bool
is_saved_server(const char *server, const char *saved)
{
    size_t len = strlen(saved);
    while (len != 0 && saved[len - 1] == '/')
        --len;
    return strlen(server) == len && strncmp(server, saved, len) == 0;
}

int
upd_cli_api_key_check(upd_cli_args_t *a, const char *key)
{
    /* The key goes into a header line: a CR or LF would end it. The message never shows the key. */
    if (key[0] == '\0')
        return usage_error(a, "the API key is empty");
    for (const char *p = key; *p != '\0'; ++p)
        if (*p <= ' ' || *p >= 0x7f)
            return usage_error(a, "the API key contains a character not allowed in an HTTP header (the key is not shown)");
    return 0;
}

static bool
is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/*
 * Where the request goes and with which key: options, then environment, then the credentials file. Checked after the
 * command, so that a mistyped command is reported as such even without a server.
 */
static int
resolve_target(upd_cli_args_t *a, const upd_cli_env_t *env)
{
    const upd_cli_saved_t *saved = env != NULL ? env->saved : NULL;
    const char *server = a->flag_server, *api_key = a->flag_api_key;

    if (a->kind == UPD_CLI_LOGIN || a->kind == UPD_CLI_LOGOUT) {
        if (saved == NULL || saved->path == NULL)
            return usage_error(a, "cannot tell where the credentials file goes: set HOME or XDG_CONFIG_HOME");
        a->credentials_path = saved->path;
        if (a->kind == UPD_CLI_LOGOUT)
            return 0; /* a local command: no server, no key */
    }
    /* a file that cannot be used only matters where it is needed; login replaces it */
    const char *saved_error = saved != NULL && a->kind != UPD_CLI_LOGIN ? saved->error : NULL;

    if (server == NULL && env != NULL && is_set(env->server))
        server = env->server;
    if (server == NULL && saved_error != NULL)
        return usage_error(
            a, "no server given, and the credentials file cannot be used: %s (pass --server, or run 'updraft login')", saved_error);
    if (server == NULL && saved != NULL && is_set(saved->server))
        server = saved->server;
    if (server == NULL)
        return usage_error(a, "no server: pass --server, set UPDRAFT_SERVER or run 'updraft login'");
    if (set_server(a, server) != 0)
        return UPD_EINVAL;

    if (api_key == NULL && env != NULL && is_set(env->api_key))
        api_key = env->api_key;
    if (api_key == NULL && a->kind == UPD_CLI_LOGIN) {
        a->key_from_stdin = true; /* never the saved key: logging in is checking a new one */
    } else if (api_key == NULL && saved_error != NULL) {
        return usage_error(a,
                           "no API key given, and the credentials file cannot be used: %s (pass --api-key, or run 'updraft login')",
                           saved_error);
    } else if (api_key == NULL && saved != NULL && is_set(saved->api_key) && is_set(saved->server)) {
        /* The saved key was checked with its server: another server must not receive it. */
        if (is_saved_server(a->server, saved->server))
            api_key = saved->api_key;
        else
            a->withheld_for = saved->server;
    }
    if (api_key != NULL && upd_cli_api_key_check(a, api_key) != 0)
        return UPD_EINVAL;
    a->api_key = api_key;

    if ((a->api_key != NULL || a->key_from_stdin) && !a->insecure && strncasecmp(a->server, "http://", 7) == 0 &&
        !host_is_loopback(a->server))
        return usage_error(a,
                           "refusing to send the API key to %s over plain http://: the key would cross the network in clear "
                           "text, for anyone on the way to read and reuse; use https://, or pass --insecure (before the "
                           "command) if the network between is trusted",
                           a->server);
    return 0;
}

int
upd_cli_args_parse(upd_cli_args_t *a, int argc, char **argv, const upd_cli_env_t *env)
{
    bool help = false;
    int i = 1, r;

    *a = (upd_cli_args_t){.timeout_s = UPD_CLI_TIMEOUT_DEFAULT};

    /* Global options come before the command: after it, words belong to the command (a release's --version). */
    while (i < argc && is_option_word(argv[i])) {
        if ((r = take_value(a, argc, argv, &i, "--server", &a->flag_server)) != 0 ||
            (r = take_value(a, argc, argv, &i, "--api-key", &a->flag_api_key)) != 0) {
            if (r < 0)
                return r;
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = true;
            ++i;
        } else if (strcmp(argv[i], "--insecure") == 0) {
            a->insecure = true;
            ++i;
        } else if (is_help_word(argv[i])) {
            help = true;
            ++i;
        } else if (strcmp(argv[i], "--version") == 0) {
            a->action = UPD_CLI_SHOW_VERSION;
            return 0;
        } else if (strcmp(argv[i], "--") == 0) {
            ++i;
            break;
        } else {
            return usage_error(
                a, "unknown option '%s' (global options: --server, --api-key, --insecure, --json, --help, --version)", argv[i]);
        }
    }

    if (i < argc && strcmp(argv[i], "help") == 0) {
        help = true;
        ++i;
    }
    if (i == argc) {
        if (help) {
            a->action = UPD_CLI_HELP;
            return 0;
        }
        return usage_error(a, "no command given");
    }

    const struct command *cmd = find_group(argv[i]);
    if (cmd == NULL)
        return help ? (a->action = UPD_CLI_HELP, 0) : usage_error(a, "unknown command '%s'", argv[i]);
    const char *group = cmd->group;
    a->help_topic = group;
    ++i;

    /* "updraft rollout set --help" and "updraft rollout --help": the group's usage, whatever else is there */
    for (int j = i; j < argc && !help; ++j)
        help = is_help_word(argv[j]);
    if (help) {
        a->action = UPD_CLI_HELP;
        return 0;
    }

    if (cmd->verb != NULL) {
        char verbs[128];
        list_verbs(group, verbs, sizeof(verbs));
        if (i == argc)
            return usage_error(a, "'%s' needs a subcommand: %s", group, verbs);
        cmd = NULL;
        for (size_t k = 0; k != NCOMMANDS && cmd == NULL; ++k)
            if (strcmp(commands[k].group, group) == 0 && strcmp(commands[k].verb, argv[i]) == 0)
                cmd = &commands[k];
        if (cmd == NULL)
            return usage_error(a, "unknown command '%s %s' (expected one of: %s)", group, argv[i], verbs);
        ++i;
    }
    a->command = cmd->name;
    if ((r = cmd->parse(a, argc - i, argv + i)) != 0)
        return r;

    if (resolve_target(a, env) != 0)
        return UPD_EINVAL;
    if (env != NULL && is_set(env->timeout) && parse_timeout(a, env->timeout) != 0)
        return UPD_EINVAL;
    return 0;
}

void
upd_cli_args_dispose(upd_cli_args_t *a)
{
    free(a->server);
    free(a->path);
    json_decref(a->body);
    free(a->artifacts);
    *a = (upd_cli_args_t){0};
}

char *
upd_cli_body_dump(const json_t *body)
{
    return json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(5));
}
