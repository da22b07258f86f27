/*
 * The CLI's command line → control API request mapping (cli/args.c): every command, every usage error; the
 * credentials file (cli/credentials.c); and how answers are printed (cli/commands.c). The CLI's sources are included
 * rather than linked because the unit tests link updraft_core, not the CLI's program.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/args.c"
#include "cli/client.c"
#include "cli/commands.c"
#include "cli/credentials.c"

#include <dirent.h>

#define ARGV(...) ((char *[]){"updraft", __VA_ARGS__, NULL})

#define SAVED_PATH "/home/u/.config/updraft/credentials"
static const upd_cli_saved_t no_saved = {.path = SAVED_PATH};
static const upd_cli_env_t default_env = {.server = "https://control.test:8080", .api_key = "k-123", .saved = &no_saved};

static int
parse_env(upd_cli_args_t *a, const upd_cli_env_t *env, char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL)
        ++argc;
    return upd_cli_args_parse(a, argc, argv, env);
}

static int
parse(upd_cli_args_t *a, char **argv)
{
    return parse_env(a, &default_env, argv);
}

static void
join(char *buf, size_t size, char **argv)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 1; argv[i] != NULL && off < size; ++i)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", i > 1 ? " " : "", argv[i]);
}

/* Parses argv, expects success with this method, path and body (compact JSON, or NULL for none). */
static void
expect_request(char **argv, const char *method, const char *path, const char *body)
{
    upd_cli_args_t a;
    char cmd[512];
    join(cmd, sizeof(cmd), argv);
    if (parse(&a, argv) != 0)
        fail_msg("'%s' was refused: %s", cmd, a.err);
    assert_int_equal(a.action, UPD_CLI_RUN);
    assert_string_equal(a.method, method);
    assert_string_equal(a.path, path);
    if (body == NULL) {
        assert_null(a.body);
    } else {
        char *got = upd_cli_body_dump(a.body);
        if (strcmp(got, body) != 0)
            fail_msg("'%s': body %s, expected %s", cmd, got, body);
        free(got);
    }
    upd_cli_args_dispose(&a);
}

/* Parses argv with env, expects a usage error whose message contains want. */
static void
expect_error_env(const upd_cli_env_t *env, char **argv, const char *want)
{
    upd_cli_args_t a;
    char cmd[512];
    join(cmd, sizeof(cmd), argv);
    int r = parse_env(&a, env, argv);
    if (r != UPD_EINVAL)
        fail_msg("'%s': expected a usage error containing \"%s\", got %d (%s)", cmd, want, r, a.err);
    if (strstr(a.err, want) == NULL)
        fail_msg("'%s': message \"%s\" does not contain \"%s\"", cmd, a.err, want);
    upd_cli_args_dispose(&a);
}

static void
expect_error(char **argv, const char *want)
{
    expect_error_env(&default_env, argv, want);
}

/* ---- the requests ---- */

static void
test_apps_create_posts_id_and_name(void **state)
{
    expect_request(ARGV("apps", "create", "acme", "--name", "Acme Inc"), "POST", "/v1/apps",
                   "{\"id\":\"acme\",\"name\":\"Acme Inc\"}");
    expect_request(ARGV("apps", "create", "--name=Acme", "acme"), "POST", "/v1/apps", "{\"id\":\"acme\",\"name\":\"Acme\"}");
}

static void
test_apps_create_without_name_uses_the_id(void **state)
{
    expect_request(ARGV("apps", "create", "acme"), "POST", "/v1/apps", "{\"id\":\"acme\",\"name\":\"acme\"}");
}

static void
test_rollout_set_sends_percent_as_a_number(void **state)
{
    const char *path = "/v1/apps/acme/channels/latest/rollout";
    expect_request(ARGV("rollout", "set", "acme", "latest", "25"), "PUT", path, "{\"percent\":25}");
    expect_request(ARGV("rollout", "set", "acme", "latest", "25.5"), "PUT", path, "{\"percent\":25.5}");
    /* two decimals come out as typed, not as 25.350000000000001 */
    expect_request(ARGV("rollout", "set", "acme", "latest", "25.35"), "PUT", path, "{\"percent\":25.35}");
    expect_request(ARGV("rollout", "set", "acme", "latest", "99.99"), "PUT", path, "{\"percent\":99.99}");
    expect_request(ARGV("rollout", "set", "acme", "latest", "0.01"), "PUT", path, "{\"percent\":0.01}");
    expect_request(ARGV("rollout", "set", "acme", "latest", "25.50"), "PUT", path, "{\"percent\":25.5}");
    expect_request(ARGV("rollout", "set", "acme", "latest", "100"), "PUT", path, "{\"percent\":100}");
    expect_request(ARGV("rollout", "set", "acme", "latest", "0"), "PUT", path, "{\"percent\":0}");
    expect_request(ARGV("rollout", "set", "acme", "beta-2", "1"), "PUT", "/v1/apps/acme/channels/beta-2/rollout",
                   "{\"percent\":1}");
}

static void
test_rollout_pause_resume_halt(void **state)
{
    const char *path = "/v1/apps/acme/channels/beta/rollout";
    expect_request(ARGV("rollout", "pause", "acme", "beta"), "PUT", path, "{\"paused\":true}");
    expect_request(ARGV("rollout", "resume", "acme", "beta"), "PUT", path, "{\"paused\":false}");
    /* halt keeps the release: it is percent 0, not a delete */
    expect_request(ARGV("rollout", "halt", "acme", "beta"), "PUT", path, "{\"percent\":0}");
}

static void
test_rollout_countries_upper_cases_and_empty_means_all(void **state)
{
    const char *path = "/v1/apps/acme/channels/latest/rollout";
    expect_request(ARGV("rollout", "countries", "acme", "latest", "DE", "fr"), "PUT", path, "{\"countries\":[\"DE\",\"FR\"]}");
    expect_request(ARGV("rollout", "countries", "acme", "latest"), "PUT", path, "{\"countries\":[]}");
}

static void
test_rollout_pin_replaces_the_list(void **state)
{
    const char *path = "/v1/apps/acme/channels/latest/rollout";
    expect_request(ARGV("rollout", "pin", "acme", "latest", "client-a", "b:c.d_e"), "PUT", path,
                   "{\"pinned\":[\"client-a\",\"b:c.d_e\"]}");
    expect_request(ARGV("rollout", "pin", "acme", "latest"), "PUT", path, "{\"pinned\":[]}");
}

static void
test_channel_show_is_a_get_without_body(void **state)
{
    upd_cli_args_t a;
    expect_request(ARGV("channel", "show", "acme", "latest"), "GET", "/v1/apps/acme/channels/latest", NULL);
    assert_int_equal(parse(&a, ARGV("channel", "show", "acme", "latest")), 0);
    assert_int_equal(a.print, UPD_CLI_PRINT_CHANNEL);
    upd_cli_args_dispose(&a);
}

static void
test_releases_create_from_artifacts(void **state)
{
    upd_cli_args_t a;
    assert_int_equal(parse(&a, ARGV("releases", "create", "acme", "--version", "1.3.0-beta.2", "--channel", "beta", "--notes",
                                    "Fixes", "--rollout", "10.5", "--artifact", "Acme-Setup-1.3.0.exe:windows:x64:dist/setup.exe",
                                    "--artifact=Acme-1.3.0.dmg:darwin:universal:C:/odd:path.dmg")),
                     0);
    assert_string_equal(a.method, "POST");
    assert_string_equal(a.path, "/v1/apps/acme/releases");
    assert_int_equal(a.print, UPD_CLI_PRINT_RELEASE);
    assert_null(a.body_file);
    /* files[] in the given order, names as the API spells them (darwin → mac); size and sha512 come later */
    char *body = upd_cli_body_dump(a.body);
    assert_string_equal(body, "{\"version\":\"1.3.0-beta.2\",\"channel\":\"beta\",\"notes\":\"Fixes\",\"files\":["
                              "{\"name\":\"Acme-Setup-1.3.0.exe\",\"platform\":\"windows\",\"arch\":\"x64\"},"
                              "{\"name\":\"Acme-1.3.0.dmg\",\"platform\":\"mac\",\"arch\":\"universal\"}],"
                              "\"rollout\":{\"percent\":10.5}}");
    free(body);
    assert_int_equal(a.nartifacts, 2);
    assert_string_equal(a.artifacts[0].path, "dist/setup.exe");
    assert_string_equal(a.artifacts[1].path, "C:/odd:path.dmg"); /* the path keeps its colons */
    assert_ptr_equal(a.artifacts[1].file, json_array_get(json_object_get(a.body, "files"), 1));
    upd_cli_args_dispose(&a);
}

static void
test_releases_create_defaults_to_latest_and_full_rollout(void **state)
{
    expect_request(ARGV("releases", "create", "acme", "--version", "1.2.0", "--artifact", "a.AppImage:linux:arm64:a"), "POST",
                   "/v1/apps/acme/releases",
                   "{\"version\":\"1.2.0\",\"channel\":\"latest\",\"files\":[{\"name\":\"a.AppImage\",\"platform\":\"linux\","
                   "\"arch\":\"arm64\"}]}");
}

static void
test_releases_create_from_file_sends_the_file(void **state)
{
    upd_cli_args_t a;
    assert_int_equal(parse(&a, ARGV("releases", "create", "acme", "--file", "release.json")), 0);
    assert_string_equal(a.method, "POST");
    assert_string_equal(a.path, "/v1/apps/acme/releases");
    assert_string_equal(a.body_file, "release.json");
    assert_null(a.body);
    assert_int_equal(a.nartifacts, 0);
    upd_cli_args_dispose(&a);
}

/* ---- global options and environment ---- */

static void
test_server_and_key_come_from_options_before_the_environment(void **state)
{
    upd_cli_args_t a;
    assert_int_equal(
        parse(&a, ARGV("--server", "https://ctl.example/base/", "--api-key=opt-key", "--json", "channel", "show", "a", "b")), 0);
    assert_string_equal(a.server, "https://ctl.example/base");
    assert_string_equal(a.api_key, "opt-key");
    assert_true(a.json);
    assert_int_equal(a.timeout_s, UPD_CLI_TIMEOUT_DEFAULT);
    upd_cli_args_dispose(&a);

    assert_int_equal(parse(&a, ARGV("channel", "show", "a", "b")), 0);
    assert_string_equal(a.server, "https://control.test:8080");
    assert_string_equal(a.api_key, "k-123");
    assert_false(a.json);
    upd_cli_args_dispose(&a);
}

static void
test_no_api_key_sends_no_authorization(void **state)
{
    upd_cli_env_t env = {.server = "http://s", .api_key = ""};
    upd_cli_args_t a;
    assert_int_equal(parse_env(&a, &env, ARGV("channel", "show", "a", "b")), 0);
    assert_null(a.api_key);
    upd_cli_args_dispose(&a);
}

static void
test_timeout_from_environment(void **state)
{
    upd_cli_env_t env = {.server = "http://s", .timeout = "5"};
    upd_cli_args_t a;
    assert_int_equal(parse_env(&a, &env, ARGV("channel", "show", "a", "b")), 0);
    assert_int_equal(a.timeout_s, 5);
    upd_cli_args_dispose(&a);
}

static void
test_help_and_version_need_no_server(void **state)
{
    static const upd_cli_env_t none = {0};
    /* automatic, not static: the compound literals of ARGV() are not constant initialisers */
    const struct {
        char **argv;
        upd_cli_action_t action;
        const char *topic;
    } cases[] = {
        {ARGV("--help"), UPD_CLI_HELP, NULL},
        {ARGV("-h"), UPD_CLI_HELP, NULL},
        {ARGV("help"), UPD_CLI_HELP, NULL},
        {ARGV("help", "rollout"), UPD_CLI_HELP, "rollout"},
        {ARGV("--help", "releases"), UPD_CLI_HELP, "releases"},
        {ARGV("rollout", "--help"), UPD_CLI_HELP, "rollout"},
        {ARGV("rollout", "set", "--help"), UPD_CLI_HELP, "rollout"},
        {ARGV("rollout", "set", "acme", "-h"), UPD_CLI_HELP, "rollout"},
        {ARGV("releases", "create", "--help"), UPD_CLI_HELP, "releases"},
        {ARGV("apps", "create", "--help"), UPD_CLI_HELP, "apps"},
        {ARGV("channel", "show", "--help"), UPD_CLI_HELP, "channel"},
        {ARGV("members", "--help"), UPD_CLI_HELP, "members"},
        {ARGV("members", "set-role", "a", "-h"), UPD_CLI_HELP, "members"},
        {ARGV("keys", "create", "--help"), UPD_CLI_HELP, "keys"},
        {ARGV("audit", "--help"), UPD_CLI_HELP, "audit"},
        {ARGV("help", "audit"), UPD_CLI_HELP, "audit"},
        {ARGV("backups", "now", "--help"), UPD_CLI_HELP, "backups"},
        {ARGV("releases", "publish", "--help"), UPD_CLI_HELP, "releases"},
        {ARGV("login", "--help"), UPD_CLI_HELP, "login"},
        {ARGV("logout", "--help"), UPD_CLI_HELP, "logout"},
        {ARGV("--version"), UPD_CLI_SHOW_VERSION, NULL},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        upd_cli_args_t a;
        assert_int_equal(parse_env(&a, &none, cases[i].argv), 0);
        assert_int_equal(a.action, cases[i].action);
        if (cases[i].topic == NULL) {
            assert_null(a.help_topic);
            assert_string_equal(upd_cli_usage(a.help_topic), usage_global);
        } else {
            assert_string_equal(a.help_topic, cases[i].topic);
            assert_ptr_not_equal(upd_cli_usage(a.help_topic), usage_global);
        }
        upd_cli_args_dispose(&a);
    }
}

static void
test_every_usage_mentions_its_commands(void **state)
{
    for (size_t i = 0; i != NCOMMANDS; ++i) {
        assert_non_null(strstr(upd_cli_usage(NULL), commands[i].name));
        char line[64];
        snprintf(line, sizeof(line), "updraft %s", commands[i].name);
        assert_non_null(strstr(upd_cli_usage(commands[i].group), line));
    }
}

/* ---- usage errors: each names what was wrong ---- */

static void
test_missing_server_is_a_usage_error(void **state)
{
    upd_cli_env_t env = {.api_key = "k"};
    expect_error_env(&env, ARGV("channel", "show", "a", "b"),
                     "no server: pass --server, set UPDRAFT_SERVER or run 'updraft login'");
    env.server = "";
    expect_error_env(&env, ARGV("channel", "show", "a", "b"),
                     "no server: pass --server, set UPDRAFT_SERVER or run 'updraft login'");
}

static void
test_bad_environment_is_a_usage_error(void **state)
{
    upd_cli_env_t env = {.server = "http://s", .timeout = "0"};
    expect_error_env(&env, ARGV("channel", "show", "a", "b"), "UPDRAFT_TIMEOUT '0'");
    env.timeout = "10s";
    expect_error_env(&env, ARGV("channel", "show", "a", "b"), "UPDRAFT_TIMEOUT '10s'");
    env.timeout = "99999999999999999999";
    expect_error_env(&env, ARGV("channel", "show", "a", "b"), "UPDRAFT_TIMEOUT");
    env = (upd_cli_env_t){.server = "ctl.example:8080"};
    expect_error_env(&env, ARGV("channel", "show", "a", "b"), "server 'ctl.example:8080' is not an http:// or https:// URL");
    env.server = "https://";
    expect_error_env(&env, ARGV("channel", "show", "a", "b"), "server 'https://' has no host");
    env.server = "https://ctl.example/?x=1";
    expect_error_env(&env, ARGV("channel", "show", "a", "b"), "must not have a query or fragment");
}

static void
test_api_key_errors_never_show_the_key(void **state)
{
    upd_cli_args_t a;
    assert_int_equal(parse(&a, ARGV("--api-key", "secret\r\nX-Injected: 1", "channel", "show", "a", "b")), UPD_EINVAL);
    assert_non_null(strstr(a.err, "API key"));
    assert_null(strstr(a.err, "secret"));
    upd_cli_args_dispose(&a);
    expect_error(ARGV("--api-key", "", "channel", "show", "a", "b"), "API key is empty");
}

static void
test_usage_errors(void **state)
{
    const struct {
        char **argv;
        const char *want;
    } cases[] = {
        /* the command line as a whole */
        {ARGV("--json"), "no command given"},
        {ARGV("--bogus"), "unknown option '--bogus'"},
        {ARGV("--server"), "--server needs a value"},
        {ARGV("--server", "http://a", "--server", "http://b", "channel", "show", "a", "b"), "--server given twice"},
        {ARGV("deploy"), "unknown command 'deploy'"},
        {ARGV("rollout"), "'rollout' needs a subcommand: set, pause, resume, halt, countries, pin"},
        {ARGV("rollout", "stop", "a", "b"), "unknown command 'rollout stop'"},
        {ARGV("apps", "delete", "a"), "unknown command 'apps delete'"},
        {ARGV("channel", "show", "a", "b", "--json"),
         "unknown option '--json' for 'channel show' (global options go before the command)"},
        /* apps create */
        {ARGV("apps", "create"), "'apps create' needs APP"},
        {ARGV("apps", "create", "Acme"), "app id 'Acme' is not valid"},
        {ARGV("apps", "create", "-acme"), "app id '-acme' is not valid"},
        {ARGV("apps", "create", "a", "b"), "unexpected argument 'b'"},
        {ARGV("apps", "create", "a", "--name"), "--name needs a value"},
        {ARGV("apps", "create", "a", "--name", ""), "--name is empty"},
        {ARGV("apps", "create", "a", "--name", "\xff"), "--name is not valid UTF-8"},
        {ARGV("apps", "create", "a", "--name", "x", "--name", "y"), "--name given twice"},
        {ARGV("apps", "create", "a", "--title", "x"), "unknown option '--title' for 'apps create'"},
        /* releases create */
        {ARGV("releases", "create"), "'releases create' needs APP"},
        {ARGV("releases", "create", "a"), "needs --file FILE, or --version V with at least one --artifact"},
        {ARGV("releases", "create", "a", "b", "--version", "1.0.0"), "unexpected argument 'b'"},
        {ARGV("releases", "create", "A_pp", "--file", "r.json"), "app id 'A_pp' is not valid"},
        {ARGV("releases", "create", "a", "--file", "r.json", "--version", "1.0.0"), "--file cannot be combined with --version"},
        {ARGV("releases", "create", "a", "--artifact", "x:linux:x64:p", "--file", "r.json"),
         "--file cannot be combined with --artifact"},
        {ARGV("releases", "create", "a", "--file", ""), "--file is empty"},
        {ARGV("releases", "create", "a", "--version", "1.0.0"), "needs at least one --artifact NAME:PLATFORM:ARCH:PATH"},
        {ARGV("releases", "create", "a", "--version", "v1.0.0", "--artifact", "x:linux:x64:p"),
         "version 'v1.0.0' is not a SemVer 2.0 version"},
        {ARGV("releases", "create", "a", "--version", "1.0", "--artifact", "x:linux:x64:p"),
         "version '1.0' is not a SemVer 2.0 version"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--version", "1.0.1"), "--version given twice"},
        {ARGV("releases", "create", "a", "--version"), "--version needs a value"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--channel", "Beta", "--artifact", "x:linux:x64:p"),
         "channel 'Beta' is not valid"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--rollout", "101", "--artifact", "x:linux:x64:p"),
         "--rollout '101' is not valid"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--notes", "\xc3", "--artifact", "x:linux:x64:p"),
         "--notes is not valid UTF-8"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--artifact", "x:linux:x64"),
         "--artifact 'x:linux:x64' is not NAME:PLATFORM:ARCH:PATH"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--artifact", "x:linux:x64:"), "is not NAME:PLATFORM:ARCH:PATH"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--artifact", "x"), "--artifact 'x' is not NAME:PLATFORM:ARCH:PATH"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--artifact", ":linux:x64:p"), "file name '' is not valid"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--artifact", "..:linux:x64:p"), "file name '..' is not valid"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--artifact", "a b:linux:x64:p"), "file name 'a b' is not valid"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--artifact", "x:freebsd:x64:p"),
         "platform 'freebsd' is not one of windows, mac, linux"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--artifact", "x:linux:mips:p"),
         "arch 'mips' is not one of x64, arm64, ia32, universal"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--artifact", "x:linux:x64:p", "--artifact", "x:mac:arm64:q"),
         "file name 'x' given twice"},
        {ARGV("releases", "create", "a", "--sign", "k"), "unknown option '--sign' for 'releases create'"},
        /* rollout */
        {ARGV("rollout", "set"), "'rollout set' needs APP CHANNEL PERCENT"},
        {ARGV("rollout", "set", "a", "b"), "'rollout set' needs APP CHANNEL PERCENT"},
        {ARGV("rollout", "set", "a", "b", "5", "6"), "unexpected argument '6'"},
        {ARGV("rollout", "set", "a", "b", "101"), "percent '101' is not valid: expected 0 to 100 with at most two decimals"},
        {ARGV("rollout", "set", "a", "b", "-1"), "percent '-1' is not valid"},
        {ARGV("rollout", "set", "a", "b", "25.555"), "percent '25.555' is not valid"},
        {ARGV("rollout", "set", "a", "b", "25%"), "percent '25%' is not valid"},
        {ARGV("rollout", "set", "a", "b", "1e1"), "percent '1e1' is not valid"},
        {ARGV("rollout", "set", "a", "b", ""), "percent '' is not valid"},
        {ARGV("rollout", "set", "a", "b", "100.01"), "percent '100.01' is not valid"},
        {ARGV("rollout", "set", "a", "b", "--force"), "unknown option '--force' for 'rollout set'"},
        {ARGV("rollout", "set", "a/b", "c", "5"), "app id 'a/b' is not valid"},
        {ARGV("rollout", "set", "a", "../c", "5"), "channel '../c' is not valid"},
        {ARGV("rollout", "pause", "a"), "'rollout pause' needs APP CHANNEL"},
        {ARGV("rollout", "pause", "a", "b", "c"), "unexpected argument 'c': 'rollout pause' takes APP CHANNEL"},
        {ARGV("rollout", "resume", "a"), "'rollout resume' needs APP CHANNEL"},
        {ARGV("rollout", "halt", "a", "b", "0"), "unexpected argument '0': 'rollout halt' takes APP CHANNEL"},
        {ARGV("rollout", "countries", "a"), "'rollout countries' needs APP CHANNEL"},
        {ARGV("rollout", "countries", "a", "b", "DEU"), "country 'DEU' is not valid"},
        {ARGV("rollout", "countries", "a", "b", "D1"), "country 'D1' is not valid"},
        {ARGV("rollout", "pin", "a"), "'rollout pin' needs APP CHANNEL"},
        {ARGV("rollout", "pin", "a", "b", "bad id"), "client id 'bad id' is not valid"},
        {ARGV("rollout", "pin", "a", "b", "x/y"), "client id 'x/y' is not valid"},
        /* channel show */
        {ARGV("channel", "show", "a"), "'channel show' needs APP CHANNEL"},
        {ARGV("channel", "show", "a", "b", "c"), "unexpected argument 'c'"},
        {ARGV("channel", "show", "a", "B"), "channel 'B' is not valid"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i)
        expect_error(cases[i].argv, cases[i].want);
}

static void
test_too_many_countries_is_refused(void **state)
{
    /* "updraft rollout countries a b", then one country too many, then the terminating NULL */
    char *argv[5 + UPD_ROLLOUT_MAX_COUNTRIES + 1 + 1] = {"updraft", "rollout", "countries", "a", "b"};
    for (int i = 0; i != UPD_ROLLOUT_MAX_COUNTRIES + 1; ++i)
        argv[5 + i] = "DE";
    argv[5 + UPD_ROLLOUT_MAX_COUNTRIES + 1] = NULL;
    expect_error(argv, "'rollout countries' takes at most 250 countries, got 251");
}

static void
test_a_command_error_is_reported_before_a_missing_server(void **state)
{
    static const upd_cli_env_t none = {0};
    expect_error_env(&none, ARGV("rollout", "set", "a", "b", "200"), "percent '200' is not valid");
}

/* ---- the records: members, keys, audit, drafts, backups ---- */

static void
test_members_commands_map_to_the_members_routes(void **state)
{
    expect_request(ARGV("members", "list"), "GET", "/v1/members", NULL);
    expect_request(ARGV("members", "show", "alice"), "GET", "/v1/members/alice", NULL);
    expect_request(ARGV("members", "create", "alice"), "POST", "/v1/members", "{\"id\":\"alice\",\"roles\":{}}");
    expect_request(ARGV("members", "create", "alice", "--name", "Alice Example", "--email=alice@example.com", "--role", "build"),
                   "POST", "/v1/members",
                   "{\"id\":\"alice\",\"name\":\"Alice Example\",\"email\":\"alice@example.com\",\"roles\":{\"*\":\"build\"}}");
    expect_request(ARGV("members", "create", "--role", "release", "--app", "acme", "bob"), "POST", "/v1/members",
                   "{\"id\":\"bob\",\"roles\":{\"acme\":\"release\"}}");
    expect_request(ARGV("members", "create", "bob", "--role", "admin", "--app", "*"), "POST", "/v1/members",
                   "{\"id\":\"bob\",\"roles\":{\"*\":\"admin\"}}");
    /* roles are merged by the server: one scope per call, null removes it */
    expect_request(ARGV("members", "set-role", "alice", "release", "--app", "acme"), "PATCH", "/v1/members/alice",
                   "{\"roles\":{\"acme\":\"release\"}}");
    expect_request(ARGV("members", "set-role", "alice", "admin"), "PATCH", "/v1/members/alice", "{\"roles\":{\"*\":\"admin\"}}");
    expect_request(ARGV("members", "unset-role", "alice", "--app", "acme"), "PATCH", "/v1/members/alice",
                   "{\"roles\":{\"acme\":null}}");
    expect_request(ARGV("members", "unset-role", "alice"), "PATCH", "/v1/members/alice", "{\"roles\":{\"*\":null}}");
    expect_request(ARGV("members", "remove", "alice"), "DELETE", "/v1/members/alice", NULL);
}

static void
test_keys_commands_map_to_the_keys_routes(void **state)
{
    expect_request(ARGV("keys", "list"), "GET", "/v1/keys", NULL);
    expect_request(ARGV("keys", "list", "--member", "alice"), "GET", "/v1/keys?member=alice", NULL);
    expect_request(ARGV("keys", "create", "--name", "laptop"), "POST", "/v1/keys", "{\"name\":\"laptop\"}");
    expect_request(ARGV("keys", "create", "--name", "ci deploy", "--app", "acme", "--role", "build", "--expires", "90d"), "POST",
                   "/v1/keys", "{\"name\":\"ci deploy\",\"app\":\"acme\",\"role\":\"build\",\"expires\":\"90d\"}");
    expect_request(ARGV("keys", "create", "--member=alice", "--name=a", "--app=*", "--role=release", "--expires=12h"), "POST",
                   "/v1/keys", "{\"name\":\"a\",\"member\":\"alice\",\"app\":\"*\",\"role\":\"release\",\"expires\":\"12h\"}");
    expect_request(ARGV("keys", "create", "--name", "short", "--expires", "30m"), "POST", "/v1/keys",
                   "{\"name\":\"short\",\"expires\":\"30m\"}");
    expect_request(ARGV("keys", "revoke", "0123456789abcdef"), "DELETE", "/v1/keys/0123456789abcdef", NULL);
}

static void
test_audit_filters_become_the_query(void **state)
{
    expect_request(ARGV("audit"), "GET", "/v1/audit", NULL);
    expect_request(
        ARGV("audit", "--app", "acme", "--actor", "alice", "--action", "release.publish", "--outcome", "denied", "--since",
             "1767225600", "--before", "120", "--limit", "50"),
        "GET", "/v1/audit?app=acme&actor=alice&action=release.publish&outcome=denied&since=1767225600&before=120&limit=50", NULL);
    /* an RFC 3339 offset's "+" would be read as a space: it is percent-encoded, as is the ":" */
    expect_request(ARGV("audit", "--since", "2026-05-01T12:00:00.5+02:00"), "GET",
                   "/v1/audit?since=2026-05-01T12%3A00%3A00.5%2B02%3A00", NULL);
    expect_request(ARGV("audit", "--since=2026-05-01T12:00:00Z", "--limit=1000"), "GET",
                   "/v1/audit?since=2026-05-01T12%3A00%3A00Z&limit=1000", NULL);
    expect_request(ARGV("audit", "--actor", "0123456789abcdef", "--action", "auth.sign_in"), "GET",
                   "/v1/audit?actor=0123456789abcdef&action=auth.sign_in", NULL);
    upd_cli_args_t a;
    assert_int_equal(parse(&a, ARGV("audit")), 0);
    assert_int_equal(a.print, UPD_CLI_PRINT_AUDIT);
    upd_cli_args_dispose(&a);
}

static void
test_releases_draft_sends_no_channel(void **state)
{
    upd_cli_args_t a;
    expect_request(ARGV("releases", "create", "acme", "--version", "1.3.0", "--draft", "--notes", "Soon", "--artifact",
                        "a.AppImage:linux:x64:a"),
                   "POST", "/v1/apps/acme/releases",
                   "{\"version\":\"1.3.0\",\"notes\":\"Soon\",\"files\":[{\"name\":\"a.AppImage\",\"platform\":\"linux\","
                   "\"arch\":\"x64\"}]}");
    assert_int_equal(parse(&a, ARGV("releases", "create", "acme", "--draft", "--version", "1.3.0", "--artifact", "a:linux:x64:a")),
                     0);
    assert_int_equal(a.print, UPD_CLI_PRINT_DRAFT);
    assert_int_equal(a.nartifacts, 1);
    upd_cli_args_dispose(&a);
    /* without --draft the one-call form is unchanged: a channel, latest by default */
    assert_int_equal(parse(&a, ARGV("releases", "create", "acme", "--version", "1.3.0", "--artifact", "a:linux:x64:a")), 0);
    assert_int_equal(a.print, UPD_CLI_PRINT_RELEASE);
    assert_string_equal(json_string_value(json_object_get(a.body, "channel")), "latest");
    upd_cli_args_dispose(&a);
}

static void
test_releases_publish_list_show(void **state)
{
    expect_request(ARGV("releases", "publish", "acme", "1.3.0", "--channel", "beta"), "POST",
                   "/v1/apps/acme/releases/1.3.0/publish", "{\"channel\":\"beta\"}");
    expect_request(ARGV("releases", "publish", "acme", "1.3.0-rc.1", "--rollout", "12.5", "--channel=latest"), "POST",
                   "/v1/apps/acme/releases/1.3.0-rc.1/publish", "{\"channel\":\"latest\",\"rollout\":{\"percent\":12.5}}");
    expect_request(ARGV("releases", "list", "acme"), "GET", "/v1/apps/acme/releases", NULL);
    expect_request(ARGV("releases", "show", "acme", "1.3.0+build.5"), "GET", "/v1/apps/acme/releases/1.3.0+build.5", NULL);
    upd_cli_args_t a;
    assert_int_equal(parse(&a, ARGV("releases", "publish", "acme", "1.3.0", "--channel", "beta")), 0);
    assert_int_equal(a.print, UPD_CLI_PRINT_RELEASE);
    upd_cli_args_dispose(&a);
}

static void
test_backups_commands(void **state)
{
    expect_request(ARGV("backups", "list"), "GET", "/v1/backups", NULL);
    /* a POST with an empty object: a route taking no body ignores it, one taking an optional body accepts it */
    expect_request(ARGV("backups", "now"), "POST", "/v1/backups", "{}");
}

/* ---- login, logout and where the server and key come from ---- */

static void
test_login_posts_to_login_and_takes_its_options_after_the_command(void **state)
{
    upd_cli_env_t env = {.saved = &no_saved};
    upd_cli_args_t a;
    assert_int_equal(parse_env(&a, &env, ARGV("login", "--server", "https://ctl.example/", "--api-key", "upd_k")), 0);
    assert_int_equal(a.kind, UPD_CLI_LOGIN);
    assert_string_equal(a.method, "POST");
    assert_string_equal(a.path, "/v1/login");
    assert_string_equal(a.server, "https://ctl.example");
    assert_string_equal(a.api_key, "upd_k");
    assert_false(a.key_from_stdin);
    assert_string_equal(a.credentials_path, SAVED_PATH);
    assert_int_equal(a.print, UPD_CLI_PRINT_LOGIN);
    upd_cli_args_dispose(&a);

    /* the same options before the command */
    assert_int_equal(parse_env(&a, &env, ARGV("--server", "https://ctl.example", "--api-key=upd_k", "login")), 0);
    assert_string_equal(a.api_key, "upd_k");
    upd_cli_args_dispose(&a);
}

static void
test_login_key_from_environment_else_stdin_never_the_saved_one(void **state)
{
    const upd_cli_saved_t saved = {.path = SAVED_PATH, .server = "https://ctl.example", .api_key = "upd_old"};
    upd_cli_env_t env = {.api_key = "upd_env", .saved = &saved};
    upd_cli_args_t a;
    assert_int_equal(parse_env(&a, &env, ARGV("login")), 0);
    assert_string_equal(a.server, "https://ctl.example"); /* the saved server, when none is given */
    assert_string_equal(a.api_key, "upd_env");
    assert_false(a.key_from_stdin);
    upd_cli_args_dispose(&a);

    env.api_key = NULL;
    assert_int_equal(parse_env(&a, &env, ARGV("login")), 0);
    assert_null(a.api_key);
    assert_true(a.key_from_stdin);
    upd_cli_args_dispose(&a);
}

static void
test_logout_needs_no_server(void **state)
{
    upd_cli_env_t env = {.saved = &no_saved};
    upd_cli_args_t a;
    assert_int_equal(parse_env(&a, &env, ARGV("logout")), 0);
    assert_int_equal(a.kind, UPD_CLI_LOGOUT);
    assert_null(a.method);
    assert_null(a.server);
    assert_string_equal(a.credentials_path, SAVED_PATH);
    upd_cli_args_dispose(&a);

    /* a credentials file that cannot be read is no reason not to remove it */
    const upd_cli_saved_t broken = {.path = SAVED_PATH, .error = "it is not JSON"};
    env.saved = &broken;
    assert_int_equal(parse_env(&a, &env, ARGV("logout")), 0);
    upd_cli_args_dispose(&a);
}

static void
test_credentials_file_comes_after_options_and_environment(void **state)
{
    const upd_cli_saved_t saved = {.path = SAVED_PATH, .server = "https://saved.example/", .api_key = "upd_saved"};
    upd_cli_env_t env = {.saved = &saved};
    upd_cli_args_t a;

    /* nothing else given: the file's server and key */
    assert_int_equal(parse_env(&a, &env, ARGV("members", "list")), 0);
    assert_string_equal(a.server, "https://saved.example");
    assert_string_equal(a.api_key, "upd_saved");
    assert_null(a.withheld_for);
    upd_cli_args_dispose(&a);

    /* the environment's key over the file's */
    env.api_key = "upd_env";
    assert_int_equal(parse_env(&a, &env, ARGV("members", "list")), 0);
    assert_string_equal(a.api_key, "upd_env");
    upd_cli_args_dispose(&a);

    /* the option over both */
    assert_int_equal(parse_env(&a, &env, ARGV("--api-key", "upd_flag", "members", "list")), 0);
    assert_string_equal(a.api_key, "upd_flag");
    assert_string_equal(a.server, "https://saved.example");
    upd_cli_args_dispose(&a);

    /* the saved server named again, with or without a slash: still its key */
    env.api_key = NULL;
    assert_int_equal(parse_env(&a, &env, ARGV("--server", "https://saved.example", "members", "list")), 0);
    assert_string_equal(a.api_key, "upd_saved");
    upd_cli_args_dispose(&a);
}

static void
test_saved_key_is_never_sent_to_another_server(void **state)
{
    const upd_cli_saved_t saved = {.path = SAVED_PATH, .server = "https://saved.example", .api_key = "upd_saved"};
    upd_cli_env_t env = {.saved = &saved};
    upd_cli_args_t a;
    assert_int_equal(parse_env(&a, &env, ARGV("--server", "https://other.example", "members", "list")), 0);
    assert_null(a.api_key);
    assert_string_equal(a.withheld_for, "https://saved.example");
    upd_cli_args_dispose(&a);

    env.server = "https://saved.example.evil";
    assert_int_equal(parse_env(&a, &env, ARGV("members", "list")), 0);
    assert_null(a.api_key);
    upd_cli_args_dispose(&a);
}

static void
test_an_unusable_credentials_file_matters_only_where_needed(void **state)
{
    const upd_cli_saved_t broken = {.path = SAVED_PATH, .error = SAVED_PATH " is not JSON (line 1, column 1)"};
    upd_cli_env_t env = {.saved = &broken};
    expect_error_env(&env, ARGV("members", "list"),
                     "no server given, and the credentials file cannot be used: " SAVED_PATH " is not JSON");
    env.server = "https://s.example";
    expect_error_env(&env, ARGV("members", "list"), "no API key given, and the credentials file cannot be used");
    env.api_key = "upd_env";
    upd_cli_args_t a;
    assert_int_equal(parse_env(&a, &env, ARGV("members", "list")), 0);
    upd_cli_args_dispose(&a);
    /* login writes a new one */
    env.api_key = NULL;
    assert_int_equal(parse_env(&a, &env, ARGV("login")), 0);
    assert_true(a.key_from_stdin);
    upd_cli_args_dispose(&a);
}

static void
test_login_and_logout_need_a_place_for_the_file(void **state)
{
    const upd_cli_saved_t nowhere = {0};
    upd_cli_env_t env = {.server = "https://s.example", .api_key = "k", .saved = &nowhere};
    expect_error_env(&env, ARGV("login"), "cannot tell where the credentials file goes: set HOME or XDG_CONFIG_HOME");
    expect_error_env(&env, ARGV("logout"), "cannot tell where the credentials file goes");
    env.saved = NULL;
    expect_error_env(&env, ARGV("logout"), "cannot tell where the credentials file goes");
    /* other commands do without */
    upd_cli_args_t a;
    assert_int_equal(parse_env(&a, &env, ARGV("members", "list")), 0);
    upd_cli_args_dispose(&a);
}

/* ---- a key never crosses the network in clear text ---- */

static void
test_plain_http_to_a_remote_host_is_refused_with_a_key(void **state)
{
    static const char *const refused[] = {
        "http://192.0.2.1:8080",
        "http://control.example",
        "http://10.0.0.5/base/",
        "HTTP://203.0.113.9",
        "http://127.0.0.1.nip.io:8080", /* a name that starts like a loopback address */
        "http://localhost.example.com",
        "http://127.0.0.1@192.0.2.1:8080", /* userinfo: the host is what follows the @ */
        "http://127.1:8080",               /* not a literal in the strict sense: a name */
        "http://[::2]:8080",
        "http://[fe80::1%25lo]:8080",
        "http://0.0.0.0:8080",
    };
    for (size_t i = 0; i != sizeof(refused) / sizeof(refused[0]); ++i) {
        upd_cli_env_t env = {.server = refused[i], .api_key = "upd_secret", .saved = &no_saved};
        upd_cli_args_t a;
        if (parse_env(&a, &env, ARGV("members", "list")) != UPD_EINVAL)
            fail_msg("%s: the key would have gone over plain http://", refused[i]);
        assert_non_null(strstr(a.err, "refusing to send the API key to "));
        assert_non_null(strstr(a.err, "over plain http://: the key would cross the network in clear text"));
        assert_non_null(strstr(a.err, "--insecure"));
        assert_null(strstr(a.err, "upd_secret"));
        upd_cli_args_dispose(&a);
        /* login refuses before reading a key from stdin */
        env.api_key = NULL;
        assert_int_equal(parse_env(&a, &env, ARGV("login")), UPD_EINVAL);
        assert_non_null(strstr(a.err, "over plain http://"));
        upd_cli_args_dispose(&a);
    }
}

static void
test_plain_http_is_allowed_to_loopback_without_a_key_or_with_insecure(void **state)
{
    static const char *const loopback[] = {
        "http://127.0.0.1:8080", "http://127.255.0.9", "http://localhost:8080/",      "http://LocalHost",
        "http://localhost.:1",   "http://[::1]:8080",  "http://[::ffff:127.0.0.1]:1", "http://user@127.0.0.1:8080",
        "https://192.0.2.1",
    };
    upd_cli_args_t a;
    for (size_t i = 0; i != sizeof(loopback) / sizeof(loopback[0]); ++i) {
        upd_cli_env_t env = {.server = loopback[i], .api_key = "upd_k", .saved = &no_saved};
        if (parse_env(&a, &env, ARGV("members", "list")) != 0)
            fail_msg("%s refused: %s", loopback[i], a.err);
        upd_cli_args_dispose(&a);
    }
    upd_cli_env_t env = {.server = "http://192.0.2.1:8080", .api_key = "upd_k", .saved = &no_saved};
    assert_int_equal(parse_env(&a, &env, ARGV("--insecure", "members", "list")), 0);
    assert_true(a.insecure);
    assert_string_equal(a.api_key, "upd_k");
    upd_cli_args_dispose(&a);
    /* no key, nothing to protect */
    env.api_key = NULL;
    assert_int_equal(parse_env(&a, &env, ARGV("members", "list")), 0);
    upd_cli_args_dispose(&a);
    /* --insecure is a global option */
    env.api_key = "upd_k";
    expect_error_env(&env, ARGV("members", "list", "--insecure"),
                     "unknown option '--insecure' for 'members list' (global options go before the command)");
}

/* ---- usage errors of the new commands ---- */

static void
test_records_usage_errors(void **state)
{
    const struct {
        char **argv;
        const char *want;
    } cases[] = {
        {ARGV("members"), "'members' needs a subcommand: list, show, create, set-role, unset-role, remove"},
        {ARGV("members", "add", "x"), "unknown command 'members add'"},
        {ARGV("members", "list", "x"), "unexpected argument 'x': 'members list' takes no arguments"},
        {ARGV("members", "show"), "'members show' needs ID"},
        {ARGV("members", "show", "a", "b"), "unexpected argument 'b': 'members show' takes ID"},
        {ARGV("members", "show", "Alice"), "member id 'Alice' is not valid"},
        {ARGV("members", "create"), "'members create' needs ID"},
        {ARGV("members", "create", "a_b"), "member id 'a_b' is not valid"},
        {ARGV("members", "create", "a", "--role", "owner"), "role 'owner' is not one of build, release, admin"},
        {ARGV("members", "create", "a", "--app", "acme"), "--app goes with --role"},
        {ARGV("members", "create", "a", "--role", "build", "--app", "Acme"), "--app 'Acme' is not valid"},
        {ARGV("members", "create", "a", "--name", ""), "--name is empty"},
        {ARGV("members", "create", "a", "--email", "\xff"), "--email is not valid UTF-8"},
        {ARGV("members", "create", "a", "--role", "build", "--role", "admin"), "--role given twice"},
        {ARGV("members", "create", "a", "--admin"), "unknown option '--admin' for 'members create'"},
        {ARGV("members", "set-role", "a"), "'members set-role' needs ID ROLE"},
        {ARGV("members", "set-role", "a", "boss"), "role 'boss' is not one of build, release, admin"},
        {ARGV("members", "set-role", "a", "build", "x"), "unexpected argument 'x': 'members set-role' takes ID ROLE"},
        {ARGV("members", "set-role", "a", "build", "--app"), "--app needs a value"},
        {ARGV("members", "set-role", "a", "build", "--app", "a/b"), "--app 'a/b' is not valid"},
        {ARGV("members", "unset-role"), "'members unset-role' needs ID"},
        {ARGV("members", "unset-role", "a", "build"), "unexpected argument 'build': 'members unset-role' takes ID"},
        {ARGV("members", "remove"), "'members remove' needs ID"},
        {ARGV("members", "remove", "../x"), "member id '../x' is not valid"},
        {ARGV("keys"), "'keys' needs a subcommand: list, create, revoke"},
        {ARGV("keys", "list", "--member", "A"), "member id 'A' is not valid"},
        {ARGV("keys", "list", "alice"), "unexpected argument 'alice': 'keys list' takes no arguments"},
        {ARGV("keys", "create"), "'keys create' needs --name NAME"},
        {ARGV("keys", "create", "--name", ""), "--name is empty"},
        {ARGV("keys", "create", "laptop"), "unexpected argument 'laptop': 'keys create' takes no arguments"},
        {ARGV("keys", "create", "--name", "k", "--role", "root"), "role 'root' is not one of build, release, admin"},
        {ARGV("keys", "create", "--name", "k", "--app", "*x"), "--app '*x' is not valid"},
        {ARGV("keys", "create", "--name", "k", "--member", "Bob"), "member id 'Bob' is not valid"},
        {ARGV("keys", "create", "--name", "k", "--expires", "90"), "--expires '90' is not valid: expected minutes, hours or days"},
        {ARGV("keys", "create", "--name", "k", "--expires", "1w"), "--expires '1w' is not valid"},
        {ARGV("keys", "create", "--name", "k", "--expires", "0d"), "--expires '0d' is not valid"},
        {ARGV("keys", "create", "--name", "k", "--expires", "-1d"), "--expires '-1d' is not valid"},
        {ARGV("keys", "create", "--name", "k", "--expires", "1234567d"), "--expires '1234567d' is not valid"},
        {ARGV("keys", "create", "--name", "k", "--expires", "d"), "--expires 'd' is not valid"},
        {ARGV("keys", "revoke"), "'keys revoke' needs KEY-ID"},
        {ARGV("keys", "revoke", "0123456789ABCDEF"), "key id '0123456789ABCDEF' is not valid: expected 16 hex digits"},
        {ARGV("keys", "revoke", "0123"), "key id '0123' is not valid"},
        {ARGV("keys", "revoke", "a", "b"), "unexpected argument 'b': 'keys revoke' takes KEY-ID"},
        {ARGV("audit", "acme"), "unexpected argument 'acme': 'audit' takes no arguments"},
        {ARGV("audit", "--app", "A"), "app id 'A' is not valid"},
        {ARGV("audit", "--actor", "x y"), "--actor 'x y' is not valid: expected a member id or a key id"},
        {ARGV("audit", "--action", "Release.Create"), "--action 'Release.Create' is not valid"},
        {ARGV("audit", "--action", ""), "--action '' is not valid"},
        {ARGV("audit", "--outcome", "refused"), "--outcome 'refused' is not one of ok, denied, failed"},
        {ARGV("audit", "--since", "yesterday"), "--since 'yesterday' is not valid: expected Unix seconds or RFC 3339"},
        {ARGV("audit", "--since", "2026-05-01"), "--since '2026-05-01' is not valid"},
        {ARGV("audit", "--since", "2026-05-01T00:00:00"), "--since '2026-05-01T00:00:00' is not valid"},
        {ARGV("audit", "--since", "2026-05-01T00:00:00+0200"), "is not valid"},
        {ARGV("audit", "--since", "-5"), "--since '-5' is not valid"},
        {ARGV("audit", "--before", "0"), "--before '0' is not valid: expected a sequence number"},
        {ARGV("audit", "--before", "x1"), "--before 'x1' is not valid"},
        {ARGV("audit", "--limit", "0"), "--limit '0' is not valid: expected 1 to 1000"},
        {ARGV("audit", "--limit", "1001"), "--limit '1001' is not valid"},
        {ARGV("audit", "--limit", "10k"), "--limit '10k' is not valid"},
        {ARGV("audit", "--limit", "5", "--limit", "6"), "--limit given twice"},
        {ARGV("audit", "--json"), "unknown option '--json' for 'audit' (global options go before the command)"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--draft", "--channel", "beta", "--artifact", "x:linux:x64:p"),
         "--draft and --channel cannot go together: a draft is on no channel until 'releases publish'"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--draft", "--rollout", "5", "--artifact", "x:linux:x64:p"),
         "--draft and --rollout cannot go together"},
        {ARGV("releases", "create", "a", "--version", "1.0.0", "--draft", "--draft", "--artifact", "x:linux:x64:p"),
         "--draft given twice"},
        {ARGV("releases", "create", "a", "--file", "r.json", "--draft"), "--file cannot be combined with --draft"},
        {ARGV("releases", "create", "a", "--draft"), "needs --file FILE, or --version V with at least one --artifact"},
        {ARGV("releases", "publish", "a", "1.0.0"), "'releases publish' needs --channel C"},
        {ARGV("releases", "publish", "a"), "'releases publish' needs APP VERSION"},
        {ARGV("releases", "publish", "a", "1.0", "--channel", "c"), "version '1.0' is not a SemVer 2.0 version"},
        {ARGV("releases", "publish", "A", "1.0.0", "--channel", "c"), "app id 'A' is not valid"},
        {ARGV("releases", "publish", "a", "1.0.0", "--channel", "C"), "channel 'C' is not valid"},
        {ARGV("releases", "publish", "a", "1.0.0", "--channel", "c", "--rollout", "150"), "--rollout '150' is not valid"},
        {ARGV("releases", "publish", "a", "1.0.0", "--channel", "c", "--draft"), "unknown option '--draft' for 'releases publish'"},
        {ARGV("releases", "publish", "a", "1.0.0", "x", "--channel", "c"),
         "unexpected argument 'x': 'releases publish' takes APP VERSION"},
        {ARGV("releases", "list"), "'releases list' needs APP"},
        {ARGV("releases", "list", "a", "b"), "unexpected argument 'b': 'releases list' takes APP"},
        {ARGV("releases", "show", "a"), "'releases show' needs APP VERSION"},
        {ARGV("releases", "show", "a", "v1"), "version 'v1' is not a SemVer 2.0 version"},
        {ARGV("backups"), "'backups' needs a subcommand: list, now"},
        {ARGV("backups", "restore", "x"), "unknown command 'backups restore' (expected one of: list, now)"},
        {ARGV("backups", "now", "x"), "unexpected argument 'x': 'backups now' takes no arguments"},
        {ARGV("login", "x"), "unexpected argument 'x': 'login' takes no arguments"},
        {ARGV("login", "--json"), "unknown option '--json' for 'login' (global options go before the command)"},
        {ARGV("--server", "https://a", "login", "--server", "https://b"), "--server given twice"},
        {ARGV("--api-key", "k", "login", "--api-key=j"), "--api-key given twice"},
        {ARGV("login", "--api-key", "bad key"), "the API key contains a character not allowed in an HTTP header"},
        {ARGV("logout", "now"), "unexpected argument 'now': 'logout' takes no arguments"},
        {ARGV("logout", "--all"), "unknown option '--all' for 'logout'"},
        {ARGV("--server", "https://ctl .example", "members", "list"), "server 'https://ctl .example' has a space"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i)
        expect_error(cases[i].argv, cases[i].want);
}

static void
test_a_pasted_key_is_not_taken_for_an_id_nor_shown(void **state)
{
    upd_cli_args_t a;
    assert_int_equal(parse(&a, ARGV("keys", "revoke", "upd_0123456789abcdef_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0")),
                     UPD_EINVAL);
    assert_non_null(strstr(a.err, "that is a key, not a key's id"));
    assert_null(strstr(a.err, "c2VjcmV0"));
    upd_cli_args_dispose(&a);
}

/* ---- the credentials file ---- */

static char *
temp_dir(void)
{
    char *dir = strdup("/tmp/test_cli.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void
remove_tree(const char *dir)
{
    char *cmd;
    assert_true(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void
test_credentials_path_follows_xdg_then_home(void **state)
{
    char *p = upd_cli_credentials_path("/x/config", "/home/u");
    assert_string_equal(p, "/x/config/updraft/credentials");
    free(p);
    /* a relative XDG_CONFIG_HOME is to be ignored (XDG Base Directory) */
    p = upd_cli_credentials_path("config", "/home/u");
    assert_string_equal(p, "/home/u/.config/updraft/credentials");
    free(p);
    p = upd_cli_credentials_path("", "/home/u");
    assert_string_equal(p, "/home/u/.config/updraft/credentials");
    free(p);
    p = upd_cli_credentials_path(NULL, "/home/u");
    assert_string_equal(p, "/home/u/.config/updraft/credentials");
    free(p);
    assert_null(upd_cli_credentials_path(NULL, NULL));
    assert_null(upd_cli_credentials_path("rel", ""));
}

static void
test_credentials_are_saved_owner_only_and_read_back(void **state)
{
    char *home = temp_dir(), *path = upd_cli_credentials_path(NULL, home), *config;
    upd_reason_t why;
    struct stat st;
    assert_true(asprintf(&config, "%s/.config", home) > 0);

    /* even with a umask that would let everybody read */
    mode_t old_umask = umask(0);
    int r = upd_cli_credentials_save(path, "https://ctl.example", "upd_0123456789abcdef_secret", &why);
    umask(old_umask);
    if (r != 0)
        fail_msg("save: %s", why.message);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(config, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    char *dir = strdup(path);
    assert_int_equal(stat(dirname(dir), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    upd_cli_credentials_t c;
    assert_int_equal(upd_cli_credentials_load(path, &c, &why), 0);
    assert_string_equal(c.server, "https://ctl.example");
    assert_string_equal(c.api_key, "upd_0123456789abcdef_secret");
    upd_cli_credentials_dispose(&c);

    /* saved again: replaced, and no temporary file left beside it */
    assert_int_equal(upd_cli_credentials_save(path, "https://other.example", "upd_k2", &why), 0);
    assert_int_equal(upd_cli_credentials_load(path, &c, &why), 0);
    assert_string_equal(c.server, "https://other.example");
    upd_cli_credentials_dispose(&c);
    DIR *d = opendir(dirname(dir));
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            ++entries;
    closedir(d);
    assert_int_equal(entries, 1);

    assert_int_equal(upd_cli_credentials_remove(path, &why), 0);
    assert_int_equal(upd_cli_credentials_remove(path, &why), UPD_ENOTFOUND);
    assert_int_equal(upd_cli_credentials_load(path, &c, &why), UPD_ENOTFOUND);
    upd_cli_credentials_dispose(&c);

    remove_tree(home);
    free(dir);
    free(config);
    free(path);
    free(home);
}

static void
test_an_existing_config_dir_is_narrowed_to_its_owner(void **state)
{
    char *xdg = temp_dir(), *path = upd_cli_credentials_path(xdg, NULL), *dir;
    upd_reason_t why;
    struct stat st;
    assert_true(asprintf(&dir, "%s/updraft", xdg) > 0);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(upd_cli_credentials_save(path, "https://s", "k", &why), 0);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    remove_tree(xdg);
    free(dir);
    free(path);
    free(xdg);
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
test_a_bad_credentials_file_is_named_never_quoted(void **state)
{
    char *dir = temp_dir(), *path;
    upd_reason_t why;
    upd_cli_credentials_t c;
    assert_true(asprintf(&path, "%s/credentials", dir) > 0);
    const struct {
        const char *text, *want;
    } cases[] = {
        {"{\"server\":\"https://s\",\"api_key\":\"upd_secret\"", "is not JSON (line"},
        {"upd_secret", "is not JSON"},
        {"[\"upd_secret\"]", "is not a JSON object"},
        {"{\"server\":\"https://s\",\"api_key\":17}", "\"server\" and \"api_key\" must be strings"},
        {"{\"server\":\"https://s\",\"api_key\":\"upd_secret\",\"api_key\":\"upd_secret\"}", "is not JSON"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        write_file(path, cases[i].text);
        assert_int_equal(upd_cli_credentials_load(path, &c, &why), UPD_EINVAL);
        if (strstr(why.message, cases[i].want) == NULL || strstr(why.message, path) == NULL)
            fail_msg("%s: \"%s\" does not say \"%s\" about %s", cases[i].text, why.message, cases[i].want, path);
        assert_null(strstr(why.message, "upd_secret"));
        upd_cli_credentials_dispose(&c);
    }
    /* a server without a key, or nothing at all, is a file without them */
    write_file(path, "{\"server\":\"https://s\"}");
    assert_int_equal(upd_cli_credentials_load(path, &c, &why), 0);
    assert_string_equal(c.server, "https://s");
    assert_null(c.api_key);
    upd_cli_credentials_dispose(&c);

    /* not a regular file, too large */
    assert_int_equal(upd_cli_credentials_load(dir, &c, &why), UPD_EINVAL);
    assert_non_null(strstr(why.message, "not a regular file"));
    char *big = malloc(UPD_CLI_CREDENTIALS_MAX + 2);
    memset(big, ' ', UPD_CLI_CREDENTIALS_MAX + 1);
    big[UPD_CLI_CREDENTIALS_MAX + 1] = '\0';
    write_file(path, big);
    free(big);
    assert_int_equal(upd_cli_credentials_load(path, &c, &why), UPD_EINVAL);
    assert_non_null(strstr(why.message, "too large"));

    /* a file where the directory should be: saving fails with a reason and changes nothing */
    char *blocked;
    assert_true(asprintf(&blocked, "%s/updraft/credentials", path) > 0);
    assert_int_equal(upd_cli_credentials_save(blocked, "https://s", "k", &why), UPD_EIO);
    assert_non_null(strstr(why.message, path));

    remove_tree(dir);
    free(blocked);
    free(path);
    free(dir);
}

/* ---- printing ---- */

/* Parses argv, prints `answer` (JSON) as the command would, and returns what went to stdout and stderr. */
static void
print_for(char **argv, const char *answer, char **out, char **err)
{
    upd_cli_args_t a;
    if (parse(&a, argv) != 0)
        fail_msg("refused: %s", a.err);
    json_t *j = json_loads(answer, 0, NULL);
    assert_non_null(j);

    FILE *o = tmpfile(), *e = tmpfile();
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    dup2(fileno(o), STDOUT_FILENO);
    dup2(fileno(e), STDERR_FILENO);
    bool ok = print_answer(&a, a.body, j);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, STDOUT_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_out);
    close(saved_err);
    assert_true(ok);

    FILE *files[2] = {o, e};
    char **texts[2] = {out, err};
    for (int i = 0; i != 2; ++i) {
        long n = ftell(files[i]);
        rewind(files[i]);
        *texts[i] = calloc(1, (size_t)n + 1);
        assert_int_equal(fread(*texts[i], 1, (size_t)n, files[i]), (size_t)n);
        fclose(files[i]);
    }
    json_decref(j);
    upd_cli_args_dispose(&a);
}

static void
expect_printed(char **argv, const char *answer, const char *want_out, const char *want_err)
{
    char *out, *err;
    print_for(argv, answer, &out, &err);
    if (strcmp(out, want_out) != 0)
        fail_msg("stdout:\n%s\nexpected:\n%s", out, want_out);
    if (want_err != NULL && strcmp(err, want_err) != 0)
        fail_msg("stderr:\n%s\nexpected:\n%s", err, want_err);
    free(out);
    free(err);
}

static void
test_audit_prints_an_aligned_table_and_the_next_page(void **state)
{
    expect_printed(
        ARGV("audit"),
        "{\"records\":[{\"seq\":12,\"time\":\"2026-12-02T06:35:33.123Z\",\"action\":\"release.publish\","
        "\"actor\":{\"host\":false,\"key\":\"0123456789abcdef\",\"member\":\"alice\"},\"outcome\":\"ok\",\"error\":null,"
        "\"target\":{\"app\":\"acme\",\"channel\":\"latest\",\"version\":\"1.2.0\",\"key\":null,\"member\":null}},"
        "{\"seq\":9,\"time\":\"2026-12-01T00:00:00.000Z\",\"action\":\"member.update\",\"actor\":{\"host\":true,"
        "\"key\":\"\",\"member\":\"\"},\"outcome\":\"ok\",\"error\":null,\"target\":{\"member\":\"bob\"}},"
        "{\"seq\":8,\"time\":\"2026-12-01T00:00:00.000Z\",\"action\":\"key.create\",\"actor\":{\"host\":false,"
        "\"key\":\"fedcba9876543210\",\"member\":\"\"},\"outcome\":\"denied\",\"error\":\"forbidden\","
        "\"target\":{\"key\":null}}],\"next_before\":8}",
        "SEQ  TIME                      ACTOR                         ACTION           TARGET             OUTCOME\n"
        "12   2026-12-02T06:35:33.123Z  alice (key 0123456789abcdef)  release.publish  acme/latest 1.2.0  ok\n"
        "9    2026-12-01T00:00:00.000Z  host                          member.update    member bob         ok\n"
        "8    2026-12-01T00:00:00.000Z  key fedcba9876543210          key.create       -                  denied (forbidden)\n"
        "\n"
        "older records: the same command with --before 8\n",
        "");
    expect_printed(ARGV("audit", "--limit", "5"), "{\"records\":[],\"next_before\":null}", "no audit records match\n", "");
}

static void
test_members_print_roles_account_wide_first(void **state)
{
    expect_printed(ARGV("members", "list"),
                   "{\"members\":[{\"id\":\"alice\",\"name\":\"Alice\",\"email\":\"a@example.com\",\"roles\":{\"acme\":\"release\","
                   "\"*\":\"build\"},\"created\":1767225600},{\"id\":\"bob\",\"name\":null,\"email\":null,\"roles\":{},"
                   "\"created\":1767312000}]}",
                   "ID     NAME   EMAIL          ROLES                  CREATED\n"
                   "alice  Alice  a@example.com  *=build, acme=release  2026-01-01T00:00:00Z\n"
                   "bob    -      -              none                   2026-01-02T00:00:00Z\n",
                   "");
    expect_printed(ARGV("members", "remove", "bob"), "{\"member\":\"bob\",\"removed\":true,\"keys_revoked\":2}",
                   "removed member bob; 2 of their keys revoked\n", "");
    expect_printed(ARGV("members", "set-role", "bob", "admin"),
                   "{\"id\":\"bob\",\"name\":\"Bob\",\"email\":null,\"roles\":{\"*\":\"admin\"},\"created\":0}",
                   "updated member bob\n"
                   "  name:      Bob\n"
                   "  email:     -\n"
                   "  roles:     *=admin\n"
                   "  created:   1970-01-01T00:00:00Z\n",
                   "");
}

static void
test_keys_create_prints_the_key_alone_on_stdout(void **state)
{
    expect_printed(
        ARGV("keys", "create", "--name", "ci", "--app", "acme", "--role", "build"),
        "{\"key\":\"upd_0123456789abcdef_c2VjcmV0\",\"id\":\"0123456789abcdef\",\"name\":\"ci\",\"member\":null,"
        "\"app\":\"acme\",\"role\":\"build\",\"created\":1767225600,\"expires\":null,\"revoked\":null,\"last_used\":null}",
        "upd_0123456789abcdef_c2VjcmV0\n",
        "created key 0123456789abcdef \"ci\" for no member (a service key) (scope: build on acme; expires: never):\n"
        "This key will not be shown again: store it now.\n");
    expect_printed(
        ARGV("keys", "list"),
        "{\"keys\":[{\"id\":\"0123456789abcdef\",\"name\":\"laptop\",\"member\":\"alice\",\"app\":\"*\",\"role\":\"admin\","
        "\"created\":1767225600,\"expires\":1774915200,\"revoked\":null,\"last_used\":null}]}",
        "ID                NAME    MEMBER  APP  ROLE   CREATED               EXPIRES               LAST USED  REVOKED\n"
        "0123456789abcdef  laptop  alice   *    admin  2026-01-01T00:00:00Z  2026-03-31T00:00:00Z  -          -\n",
        "");
}

static void
test_server_text_cannot_reach_the_terminal_as_escapes(void **state)
{
    expect_printed(
        ARGV("members", "list"),
        "{\"members\":[{\"id\":\"eve\",\"name\":\"\\u001b]0;owned\\u0007\",\"email\":null,\"roles\":{},\"created\":null}]}",
        "ID   NAME        EMAIL  ROLES  CREATED\n"
        "eve  ?]0;owned?  -      none   -\n",
        "");
}

static void
test_drafts_and_releases_print(void **state)
{
    expect_printed(ARGV("releases", "create", "acme", "--draft", "--version", "1.3.0", "--artifact", "a.AppImage:linux:x64:a"),
                   "{\"release\":{\"app\":\"acme\",\"version\":\"1.3.0\",\"draft\":true,\"channel\":null,\"files\":[{\"name\":"
                   "\"a.AppImage\",\"platform\":\"linux\",\"arch\":\"x64\",\"size\":10}]},\"backends\":{}}",
                   "registered draft acme 1.3.0 (offered to nobody until published), files:\n"
                   "  a.AppImage  linux/x64  10 bytes\n"
                   "\n"
                   "publish it with: updraft releases publish acme 1.3.0 --channel CHANNEL\n",
                   "");
    expect_printed(
        ARGV("releases", "list", "acme"),
        "{\"releases\":[{\"app\":\"acme\",\"version\":\"1.2.0\",\"channel\":\"latest\",\"pub_date\":\"2026-01-01T00:00:00.000Z\","
        "\"files\":[{},{}]},{\"version\":\"1.1.0\",\"channel\":\"latest\",\"pulled\":true,\"pub_date\":\"2025-12-01T00:00:00."
        "000Z\","
        "\"files\":[{}]}],\"drafts\":[{\"version\":\"1.3.0\",\"draft\":true,\"channel\":null,\"created\":1767225600,\"files\":[{}]}"
        "]}",
        "VERSION  CHANNEL  STATE      DATE                      FILES\n"
        "1.2.0    latest   published  2026-01-01T00:00:00.000Z  2\n"
        "1.1.0    latest   pulled     2025-12-01T00:00:00.000Z  1\n"
        "1.3.0    -        draft      2026-01-01T00:00:00Z      1\n",
        "");
}

static void
test_login_prints_who_signed_in_and_where_it_is_saved(void **state)
{
    expect_printed(
        ARGV("login"),
        "{\"key\":{\"id\":\"0123456789abcdef\",\"name\":\"laptop\",\"member\":\"alice\",\"app\":\"*\",\"role\":\"release\","
        "\"created\":1767225600,\"expires\":null,\"revoked\":null,\"last_used\":null},\"member\":{\"id\":\"alice\","
        "\"name\":\"Alice\",\"email\":null,\"roles\":{\"acme\":\"admin\",\"*\":\"release\"},\"created\":1767225600}}",
        "signed in to https://control.test:8080 as alice, with key 0123456789abcdef \"laptop\" (scope: release on *)\n"
        "  roles:     *=release, acme=admin\n"
        "credentials saved to " SAVED_PATH "\n",
        "");
    expect_printed(
        ARGV("login"),
        "{\"key\":{\"id\":\"fedcba9876543210\",\"name\":\"bootstrap\",\"member\":null,\"app\":\"*\",\"role\":\"admin\","
        "\"created\":1767225600,\"expires\":1767312000,\"revoked\":null,\"last_used\":null},\"member\":null}",
        "signed in to https://control.test:8080 with key fedcba9876543210 \"bootstrap\", of no member (scope: admin on *)\n"
        "  expires:   2026-01-02T00:00:00Z\n"
        "credentials saved to " SAVED_PATH "\n",
        "");
}

static void
test_backups_print(void **state)
{
    expect_printed(ARGV("backups", "list"),
                   "{\"backups\":[{\"id\":\"20260101T000000Z\",\"time\":1767225600,\"size\":40960,\"sha256\":\"ab\",\"schema\":5,"
                   "\"audit_head\":{\"seq\":12,\"hash\":\"cd\"},\"good\":true}]}",
                   "ID                TIME                  SIZE   SCHEMA  AUDIT HEAD  GOOD\n"
                   "20260101T000000Z  2026-01-01T00:00:00Z  40960  5       12          yes\n",
                   "");
    expect_printed(ARGV("backups", "now"), "{\"id\":\"20260101T000000Z\"}",
                   "backup 20260101T000000Z started; 'updraft backups list' shows it once it is written\n", "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apps_create_posts_id_and_name),
        cmocka_unit_test(test_apps_create_without_name_uses_the_id),
        cmocka_unit_test(test_rollout_set_sends_percent_as_a_number),
        cmocka_unit_test(test_rollout_pause_resume_halt),
        cmocka_unit_test(test_rollout_countries_upper_cases_and_empty_means_all),
        cmocka_unit_test(test_rollout_pin_replaces_the_list),
        cmocka_unit_test(test_channel_show_is_a_get_without_body),
        cmocka_unit_test(test_releases_create_from_artifacts),
        cmocka_unit_test(test_releases_create_defaults_to_latest_and_full_rollout),
        cmocka_unit_test(test_releases_create_from_file_sends_the_file),
        cmocka_unit_test(test_server_and_key_come_from_options_before_the_environment),
        cmocka_unit_test(test_no_api_key_sends_no_authorization),
        cmocka_unit_test(test_timeout_from_environment),
        cmocka_unit_test(test_help_and_version_need_no_server),
        cmocka_unit_test(test_every_usage_mentions_its_commands),
        cmocka_unit_test(test_missing_server_is_a_usage_error),
        cmocka_unit_test(test_bad_environment_is_a_usage_error),
        cmocka_unit_test(test_api_key_errors_never_show_the_key),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_too_many_countries_is_refused),
        cmocka_unit_test(test_a_command_error_is_reported_before_a_missing_server),
        cmocka_unit_test(test_members_commands_map_to_the_members_routes),
        cmocka_unit_test(test_keys_commands_map_to_the_keys_routes),
        cmocka_unit_test(test_audit_filters_become_the_query),
        cmocka_unit_test(test_releases_draft_sends_no_channel),
        cmocka_unit_test(test_releases_publish_list_show),
        cmocka_unit_test(test_backups_commands),
        cmocka_unit_test(test_login_posts_to_login_and_takes_its_options_after_the_command),
        cmocka_unit_test(test_login_key_from_environment_else_stdin_never_the_saved_one),
        cmocka_unit_test(test_logout_needs_no_server),
        cmocka_unit_test(test_credentials_file_comes_after_options_and_environment),
        cmocka_unit_test(test_saved_key_is_never_sent_to_another_server),
        cmocka_unit_test(test_an_unusable_credentials_file_matters_only_where_needed),
        cmocka_unit_test(test_login_and_logout_need_a_place_for_the_file),
        cmocka_unit_test(test_plain_http_to_a_remote_host_is_refused_with_a_key),
        cmocka_unit_test(test_plain_http_is_allowed_to_loopback_without_a_key_or_with_insecure),
        cmocka_unit_test(test_records_usage_errors),
        cmocka_unit_test(test_a_pasted_key_is_not_taken_for_an_id_nor_shown),
        cmocka_unit_test(test_credentials_path_follows_xdg_then_home),
        cmocka_unit_test(test_credentials_are_saved_owner_only_and_read_back),
        cmocka_unit_test(test_an_existing_config_dir_is_narrowed_to_its_owner),
        cmocka_unit_test(test_a_bad_credentials_file_is_named_never_quoted),
        cmocka_unit_test(test_audit_prints_an_aligned_table_and_the_next_page),
        cmocka_unit_test(test_members_print_roles_account_wide_first),
        cmocka_unit_test(test_keys_create_prints_the_key_alone_on_stdout),
        cmocka_unit_test(test_server_text_cannot_reach_the_terminal_as_escapes),
        cmocka_unit_test(test_drafts_and_releases_print),
        cmocka_unit_test(test_login_prints_who_signed_in_and_where_it_is_saved),
        cmocka_unit_test(test_backups_print),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
