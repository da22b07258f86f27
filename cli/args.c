#include "cli/args.h"

#include "base/err.h"
#include "domain/ids.h"
#include "domain/rollout.h"
#include "domain/version.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- usage texts ---------------------------------------------------------------------------------------------- */

static const char usage_global[] =
    "Usage: updraft [--server URL] [--api-key KEY] [--json] COMMAND [ARGS...]\n"
    "\n"
    "Manages apps, releases and rollouts through the Updraft control API (updraft-control).\n"
    "\n"
    "Commands:\n"
    "  apps create APP [--name NAME]\n"
    "  releases create APP --file release.json\n"
    "  releases create APP --version V [--channel C] [--notes TEXT] [--rollout PERCENT]\n"
    "                      --artifact NAME:PLATFORM:ARCH:PATH [--artifact ...]\n"
    "  releases pull APP VERSION [--reason TEXT]\n"
    "  rollout set APP CHANNEL PERCENT\n"
    "  rollout pause APP CHANNEL\n"
    "  rollout resume APP CHANNEL\n"
    "  rollout halt APP CHANNEL\n"
    "  rollout countries APP CHANNEL [CC ...]\n"
    "  rollout pin APP CHANNEL [CLIENT ...]\n"
    "  channel show APP CHANNEL\n"
    "  help [COMMAND]\n"
    "\n"
    "Global options (before the command):\n"
    "  --server URL    control API base URL (default: $UPDRAFT_SERVER)\n"
    "  --api-key KEY   API key, sent as a Bearer token (default: $UPDRAFT_API_KEY, which is better: other\n"
    "                  local users can read a command line, not the environment)\n"
    "  --json          print the server's JSON answers as received\n"
    "  --help, -h      print this help; 'updraft COMMAND --help' describes a command\n"
    "  --version       print the version of updraft\n"
    "\n"
    "Environment:\n"
    "  UPDRAFT_SERVER, UPDRAFT_API_KEY  defaults for --server and --api-key\n"
    "  UPDRAFT_TIMEOUT                  seconds allowed for a whole request (default 60; connecting takes at most 10)\n"
    "\n"
    "Exit status: 0 done, 1 the server refused, 2 usage error, 3 the server could not be reached.\n";

static const char usage_apps[] = "Usage: updraft apps create APP [--name NAME]\n"
                                 "\n"
                                 "Creates an app. APP is its id ([a-z0-9][a-z0-9-]{0,62}); NAME is shown to people\n"
                                 "(default: the id).\n";

static const char usage_releases[] =
    "Usage: updraft releases create APP --file release.json\n"
    "       updraft releases create APP --version V [--channel C] [--notes TEXT] [--rollout PERCENT]\n"
    "                               --artifact NAME:PLATFORM:ARCH:PATH [--artifact ...]\n"
    "       updraft releases pull APP VERSION [--reason TEXT]\n"
    "\n"
    "'create' registers a release whose files are already uploaded to storage under APP/VERSION/NAME.\n"
    "The control plane checks each file's size and sha512 against storage and registers nothing on a mismatch.\n"
    "With object storage (R2 and the S3 mirror), it also uploads each staged file to both backends, or checks the\n"
    "copies already there.\n"
    "\n"
    "  --file FILE       send FILE's JSON as the release (see PROTOCOLS.md); no other option goes with it\n"
    "  --version V       the release's SemVer 2.0 version (1.2.3, 1.3.0-beta.2)\n"
    "  --channel C       the channel to release on (default: latest)\n"
    "  --notes TEXT      release notes\n"
    "  --rollout PERCENT start as a partial rollout to PERCENT of clients (0-100, two decimals; default 100)\n"
    "  --artifact NAME:PLATFORM:ARCH:PATH\n"
    "                    a file of the release: its name in storage, the platform (windows, mac, linux), the arch\n"
    "                    (x64, arm64, ia32, universal) and the local copy to take size and sha512 from; repeatable\n"
    "\n"
    "Prints the registered files, what was uploaded or verified on each backend, and the channel's resulting state.\n"
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

static const struct {
    const char *topic;
    const char *text;
} usages[] = {{"apps", usage_apps}, {"releases", usage_releases}, {"rollout", usage_rollout}, {"channel", usage_channel}};

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
    static const char *const names[] = {"--server", "--api-key", "--json", "--version"};
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
            usage_error(a, "--file cannot be combined with %.*s: the file describes the whole release",
                        (int)strcspn(first_release_option, "="), first_release_option);
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
    if (channel == NULL)
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
    json_object_set_new(a->body, "channel", json_string(channel));
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

static const struct command {
    const char *group, *verb, *name;
    int (*parse)(upd_cli_args_t *a, int n, char **w);
} commands[] = {
    {"apps", "create", "apps create", apps_create},
    {"releases", "create", "releases create", releases_create},
    {"releases", "pull", "releases pull", releases_pull},
    {"rollout", "set", "rollout set", rollout_set},
    {"rollout", "pause", "rollout pause", rollout_pause},
    {"rollout", "resume", "rollout resume", rollout_resume},
    {"rollout", "halt", "rollout halt", rollout_halt},
    {"rollout", "countries", "rollout countries", rollout_countries},
    {"rollout", "pin", "rollout pin", rollout_pin},
    {"channel", "show", "channel show", channel_show},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The verbs of a group, for "'rollout' needs a subcommand: set, pause, ...", read off the table above. */
static void
list_verbs(const char *group, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i != NCOMMANDS && off < size; ++i)
        if (strcmp(commands[i].group, group) == 0)
            off += (size_t)snprintf(buf + off, size - off, "%s%s", off != 0 ? ", " : "", commands[i].verb);
}

static const char *
find_group(const char *word)
{
    for (size_t i = 0; i != NCOMMANDS; ++i)
        if (strcmp(commands[i].group, word) == 0)
            return commands[i].group;
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

static int
check_api_key(upd_cli_args_t *a, const char *key)
{
    /* The key goes into a header line: a CR or LF would end it. The message never shows the key. */
    if (key[0] == '\0')
        return usage_error(a, "the API key is empty");
    for (const char *p = key; *p != '\0'; ++p)
        if (*p <= ' ' || *p >= 0x7f)
            return usage_error(a, "the API key contains a character not allowed in an HTTP header (the key is not shown)");
    return 0;
}

int
upd_cli_args_parse(upd_cli_args_t *a, int argc, char **argv, const upd_cli_env_t *env)
{
    const char *server = NULL, *api_key = NULL;
    bool help = false;
    int i = 1, r;

    *a = (upd_cli_args_t){.timeout_s = UPD_CLI_TIMEOUT_DEFAULT};

    /* Global options come before the command: after it, words belong to the command (a release's --version). */
    while (i < argc && is_option_word(argv[i])) {
        if ((r = take_value(a, argc, argv, &i, "--server", &server)) != 0 ||
            (r = take_value(a, argc, argv, &i, "--api-key", &api_key)) != 0) {
            if (r < 0)
                return r;
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = true;
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
            return usage_error(a, "unknown option '%s' (global options: --server, --api-key, --json, --help, --version)", argv[i]);
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

    const char *group = find_group(argv[i]);
    if (group == NULL)
        return help ? (a->action = UPD_CLI_HELP, 0) : usage_error(a, "unknown command '%s'", argv[i]);
    a->help_topic = group;
    ++i;

    /* "updraft rollout set --help" and "updraft rollout --help": the group's usage, whatever else is there */
    for (int j = i; j < argc && !help; ++j)
        help = is_help_word(argv[j]);
    if (help) {
        a->action = UPD_CLI_HELP;
        return 0;
    }

    char verbs[128];
    list_verbs(group, verbs, sizeof(verbs));
    if (i == argc)
        return usage_error(a, "'%s' needs a subcommand: %s", group, verbs);
    const struct command *cmd = NULL;
    for (size_t k = 0; k != NCOMMANDS && cmd == NULL; ++k)
        if (strcmp(commands[k].group, group) == 0 && strcmp(commands[k].verb, argv[i]) == 0)
            cmd = &commands[k];
    if (cmd == NULL)
        return usage_error(a, "unknown command '%s %s' (expected one of: %s)", group, argv[i], verbs);
    ++i;
    a->command = cmd->name;
    if ((r = cmd->parse(a, argc - i, argv + i)) != 0)
        return r;

    /* Checked after the command, so that a mistyped command is reported as such even without a server. */
    if (server == NULL && env != NULL && env->server != NULL && env->server[0] != '\0')
        server = env->server;
    if (server == NULL)
        return usage_error(a, "no server: pass --server or set UPDRAFT_SERVER");
    if (set_server(a, server) != 0)
        return UPD_EINVAL;
    if (api_key == NULL && env != NULL && env->api_key != NULL && env->api_key[0] != '\0')
        api_key = env->api_key;
    if (api_key != NULL && check_api_key(a, api_key) != 0)
        return UPD_EINVAL;
    a->api_key = api_key;
    if (env != NULL && env->timeout != NULL && env->timeout[0] != '\0' && parse_timeout(a, env->timeout) != 0)
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
