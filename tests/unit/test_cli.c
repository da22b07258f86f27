/*
 * The CLI's command line → control API request mapping (cli/args.c): every command, every usage error. args.c is
 * included rather than linked because the unit tests link updraft_server, not the CLI's sources; it has no libcurl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/args.c"

#define ARGV(...) ((char *[]){"updraft", __VA_ARGS__, NULL})

static const upd_cli_env_t default_env = {.server = "http://control.test:8080", .api_key = "k-123"};

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
    assert_string_equal(a.server, "http://control.test:8080");
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
    expect_error_env(&env, ARGV("channel", "show", "a", "b"), "no server: pass --server or set UPDRAFT_SERVER");
    env.server = "";
    expect_error_env(&env, ARGV("channel", "show", "a", "b"), "no server: pass --server or set UPDRAFT_SERVER");
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
