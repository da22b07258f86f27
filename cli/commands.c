#include "cli/commands.h"

#include "cli/client.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RELEASE_FILE_MAX (1024 * 1024) /* a release description is a few KiB; refuse to slurp something else */

int
upd_cli_file_digest(const char *path, long long *size, char sha512_b64[89])
{
    unsigned char md[EVP_MAX_MD_SIZE], buf[65536];
    unsigned int md_len = 0;
    long long total = 0;
    struct stat st;
    EVP_MD_CTX *ctx = NULL;
    int fd, ret = 0;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno;
    if (fstat(fd, &st) != 0) {
        ret = errno;
        goto Exit;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = EINVAL;
        goto Exit;
    }
    if ((ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) != 1)
        abort();
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ret = errno;
            goto Exit;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        total += n;
    }
    EVP_DigestFinal_ex(ctx, md, &md_len);
    /* 64 bytes encode to exactly 88 characters, padding included, as the feeds carry them */
    EVP_EncodeBlock((unsigned char *)sha512_b64, md, (int)md_len);
    /* the size read, not st_size: it is what was hashed, should the file be growing */
    *size = total;

Exit:
    EVP_MD_CTX_free(ctx);
    close(fd);
    return ret;
}

/* ---- printing ------------------------------------------------------------------------------------------------- */

static const char *
str_or(const json_t *j, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s != NULL ? s : fallback;
}

/* "25", "25.5", "0.25": the server keeps basis points, so two decimals say it all */
static void
format_percent(double p, char *buf, size_t size)
{
    snprintf(buf, size, "%.2f", p);
    char *dot = strchr(buf, '.');
    if (dot != NULL) {
        char *end = buf + strlen(buf);
        while (end > dot + 1 && end[-1] == '0')
            *--end = '\0';
        if (end == dot + 1)
            *dot = '\0';
    }
}

static void
print_list(FILE *out, const char *label, const json_t *list, const char *if_empty)
{
    size_t i;
    json_t *v;
    fprintf(out, "%-11s", label);
    if (json_array_size(list) == 0) {
        fprintf(out, "%s\n", if_empty);
        return;
    }
    json_array_foreach(list, i, v)
    {
        fprintf(out, "%s%s", i != 0 ? ", " : "", json_string_value(v) != NULL ? json_string_value(v) : "?");
    }
    fputc('\n', out);
}

void
upd_cli_print_channel(FILE *out, const json_t *ch)
{
    const json_t *rollout = json_object_get(ch, "rollout"), *releases = json_object_get(ch, "releases");

    fprintf(out, "%s/%s", str_or(ch, "app", "?"), str_or(ch, "channel", "?"));
    if (json_is_integer(json_object_get(ch, "generation")))
        fprintf(out, " (generation %" JSON_INTEGER_FORMAT ")", json_integer_value(json_object_get(ch, "generation")));
    fputc('\n', out);
    fprintf(out, "%-11s%s\n", "stable:", str_or(ch, "stable", "none"));
    if (!json_is_object(rollout)) {
        fprintf(out, "%-11s%s\n", "rollout:", "none");
    } else {
        char pct[16] = "?";
        if (json_is_number(json_object_get(rollout, "percent")))
            format_percent(json_number_value(json_object_get(rollout, "percent")), pct, sizeof(pct));
        fprintf(out, "%-11s%s\n", "rollout:", str_or(rollout, "version", "?"));
        fprintf(out, "%-11s%s%%\n", "percent:", pct);
        fprintf(out, "%-11s%s\n", "paused:", json_is_true(json_object_get(rollout, "paused")) ? "yes" : "no");
        print_list(out, "countries:", json_object_get(rollout, "countries"), "all");
        print_list(out, "pinned:", json_object_get(rollout, "pinned"), "none");
    }

    if (json_array_size(releases) == 0) {
        fprintf(out, "%-11s%s\n", "releases:", "none");
        return;
    }
    fprintf(out, "releases:\n");
    size_t i, width = 7;
    json_t *r;
    json_array_foreach(releases, i, r)
    {
        if (strlen(str_or(r, "version", "?")) > width)
            width = strlen(str_or(r, "version", "?"));
    }
    fprintf(out, "  %-*s  %15s  %s\n", (int)width, "version", "clients offered", "published");
    json_array_foreach(releases, i, r)
    {
        const json_t *offered = json_object_get(r, "clients_offered");
        char count[32] = "?";
        if (json_is_integer(offered))
            snprintf(count, sizeof(count), "%" JSON_INTEGER_FORMAT, json_integer_value(offered));
        fprintf(out, "  %-*s  %15s  %s", (int)width, str_or(r, "version", "?"), count, str_or(r, "pub_date", ""));
        if (json_is_true(json_object_get(r, "pulled"))) {
            fprintf(out, "  PULLED %s", str_or(r, "pulled_at", ""));
            if (json_is_string(json_object_get(r, "pull_reason")))
                fprintf(out, ": %s", json_string_value(json_object_get(r, "pull_reason")));
        }
        fputc('\n', out);
    }
}

static void
print_files(FILE *out, const json_t *files)
{
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        fprintf(out, "  %s  %s/%s", str_or(f, "name", "?"), str_or(f, "platform", "?"), str_or(f, "arch", "?"));
        if (json_is_integer(json_object_get(f, "size")))
            fprintf(out, "  %" JSON_INTEGER_FORMAT " bytes", json_integer_value(json_object_get(f, "size")));
        fputc('\n', out);
    }
}

/* What registration did on each object-storage backend: "r2: uploaded Acme-1.2.0.exe (1048576 bytes)". None locally. */
static void
print_backends(FILE *out, const json_t *backends)
{
    const char *name;
    json_t *list;
    /* jansson keeps the order of the answer: the server lists the backends in the order it wrote to them */
    json_object_foreach((json_t *)backends, name, list)
    {
        size_t i;
        json_t *item;
        json_array_foreach(list, i, item)
        {
            fprintf(out, "%s: %s %s", name, str_or(item, "action", "?"), str_or(item, "file", "?"));
            if (json_is_integer(json_object_get(item, "bytes")))
                fprintf(out, " (%" JSON_INTEGER_FORMAT " bytes)", json_integer_value(json_object_get(item, "bytes")));
            fputc('\n', out);
        }
    }
}

/*
 * What happened after the change was committed (control/propagate.h), one line per target:
 *   state r2: ok
 *   purge origin http://10.0.0.5:8080: ok (12 ms)
 *   purge varnish http://127.0.0.1:6081: FAILED: connect: Connection refused (retrying)
 * Nothing when the answer has no "propagation" (a server without it, or channel show).
 */
static void
print_propagation(FILE *out, const json_t *prop)
{
    static const struct {
        const char *member, *verb;
    } parts[] = {{"state", "state"}, {"purges", "purge"}};
    if (!json_is_object(prop))
        return;
    const json_t *gen = json_object_get(prop, "generation");
    if (json_array_size(json_object_get(prop, "state")) + json_array_size(json_object_get(prop, "purges")) == 0)
        return;
    fputc('\n', out);
    if (json_is_integer(gen))
        fprintf(out, "propagation of generation %" JSON_INTEGER_FORMAT ":\n", json_integer_value(gen));
    for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); ++k) {
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(prop, parts[k].member), i, t)
        {
            fprintf(out, "%s %s: ", parts[k].verb, str_or(t, "target", "?"));
            if (json_is_true(json_object_get(t, "ok"))) {
                fputs("ok", out);
                if (json_is_integer(json_object_get(t, "ms")))
                    fprintf(out, " (%" JSON_INTEGER_FORMAT " ms)", json_integer_value(json_object_get(t, "ms")));
            } else {
                fprintf(out, "FAILED: %s", str_or(t, "error", "unknown error"));
                if (json_is_true(json_object_get(t, "retrying")))
                    fputs(" (retrying)", out);
            }
            fputc('\n', out);
        }
    }
}

/* Readable output; returns false when the answer does not have the shape the command expects. */
static bool
print_answer(const upd_cli_args_t *a, const json_t *body, const json_t *answer)
{
    switch (a->print) {
    case UPD_CLI_PRINT_APP:
        if (!json_is_object(answer))
            return false;
        printf("created app %s (%s)\n", str_or(answer, "id", str_or(body, "id", "?")),
               str_or(answer, "name", str_or(body, "name", "?")));
        return true;
    case UPD_CLI_PRINT_RELEASE: {
        const json_t *release = json_object_get(answer, "release"), *channel = json_object_get(answer, "channel");
        if (!json_is_object(release) || !json_is_object(channel))
            return false;
        /* the files as registered; what we sent when the answer leaves them out */
        const json_t *files = json_object_get(release, "files");
        if (!json_is_array(files))
            files = json_object_get(body, "files");
        printf("registered %s %s on channel %s, files:\n", str_or(channel, "app", "?"),
               str_or(release, "version", str_or(body, "version", "?")), str_or(channel, "channel", str_or(body, "channel", "?")));
        print_files(stdout, files);
        print_backends(stdout, json_object_get(answer, "backends"));
        printf("\n");
        upd_cli_print_channel(stdout, channel);
        print_propagation(stdout, json_object_get(answer, "propagation"));
        return true;
    }
    case UPD_CLI_PRINT_CHANNEL:
        if (!json_is_object(answer))
            return false;
        if (a->command != NULL && strcmp(a->command, "releases pull") == 0) {
            /* the version is the path's next-to-last part: /v1/apps/APP/releases/VERSION/pull */
            const char *end = strrchr(a->path, '/'), *v = end;
            while (v > a->path && v[-1] != '/')
                --v;
            printf("pulled %s %.*s from channel %s\n\n", str_or(answer, "app", "?"), (int)(end - v), v,
                   str_or(answer, "channel", "?"));
        }
        upd_cli_print_channel(stdout, answer);
        print_propagation(stdout, json_object_get(answer, "propagation"));
        return true;
    }
    return false;
}

/* ---- running -------------------------------------------------------------------------------------------------- */

/* Reads the --file body. It is sent byte for byte; parsing it here only catches a wrong file before the network. */
static int
read_release_file(const char *path, char **data, size_t *len, json_t **parsed)
{
    FILE *fp = fopen(path, "re");
    if (fp == NULL) {
        fprintf(stderr, "updraft: cannot open release file '%s': %s\n", path, strerror(errno));
        return UPD_EIO;
    }
    char *buf = malloc(RELEASE_FILE_MAX + 1);
    if (buf == NULL)
        abort();
    size_t n = fread(buf, 1, RELEASE_FILE_MAX + 1, fp);
    int read_err = ferror(fp);
    fclose(fp);
    if (read_err) {
        fprintf(stderr, "updraft: cannot read release file '%s'\n", path);
        goto Fail;
    }
    if (n > RELEASE_FILE_MAX) {
        fprintf(stderr, "updraft: release file '%s' is larger than %d bytes\n", path, RELEASE_FILE_MAX);
        goto Fail;
    }
    buf[n] = '\0';
    json_error_t jerr;
    json_t *j = json_loadb(buf, n, 0, &jerr);
    if (j == NULL) {
        fprintf(stderr, "updraft: release file '%s', line %d: %s\n", path, jerr.line, jerr.text);
        goto Fail;
    }
    if (!json_is_object(j)) {
        fprintf(stderr, "updraft: release file '%s' is not a JSON object\n", path);
        json_decref(j);
        goto Fail;
    }
    *data = buf;
    *len = n;
    *parsed = j;
    return 0;

Fail:
    free(buf);
    return UPD_EINVAL;
}

/* Fills in size and sha512 of every --artifact from its local file. */
static int
digest_artifacts(upd_cli_args_t *a)
{
    for (size_t i = 0; i != a->nartifacts; ++i) {
        const upd_cli_artifact_t *art = &a->artifacts[i];
        long long size;
        char sha512[89];
        int err = upd_cli_file_digest(art->path, &size, sha512);
        if (err != 0) {
            fprintf(stderr, "updraft: --artifact %s: cannot read '%s': %s\n", json_string_value(json_object_get(art->file, "name")),
                    art->path, err == EINVAL ? "not a regular file" : strerror(err));
            return UPD_EIO;
        }
        json_object_set_new(art->file, "size", json_integer(size));
        json_object_set_new(art->file, "sha512", json_string(sha512));
    }
    return 0;
}

int
upd_cli_run(upd_cli_args_t *a)
{
    upd_client_t *client = NULL;
    upd_client_response_t res = {0};
    json_t *file_body = NULL;
    char *body = NULL;
    size_t body_len = 0;
    int status = UPD_CLI_EXIT_USAGE;

    if (a->body_file != NULL) {
        if (read_release_file(a->body_file, &body, &body_len, &file_body) != 0)
            goto Exit;
    } else {
        if (digest_artifacts(a) != 0)
            goto Exit;
        if (a->body != NULL) {
            if ((body = upd_cli_body_dump(a->body)) == NULL)
                abort();
            body_len = strlen(body);
        }
    }

    status = UPD_CLI_EXIT_CONNECT;
    if ((client = upd_client_create(a->server, a->api_key, a->timeout_s)) == NULL)
        goto Exit;
    if (upd_client_call(client, a->method, a->path, body, body_len, &res) != 0)
        goto Exit;

    if (res.status < 200 || res.status > 299) {
        upd_client_print_error(&res);
        status = UPD_CLI_EXIT_REFUSED;
        goto Exit;
    }
    status = UPD_CLI_EXIT_OK;
    if (a->json) {
        fwrite(res.raw, 1, res.raw_len, stdout);
        if (res.raw_len != 0 && res.raw[res.raw_len - 1] != '\n')
            fputc('\n', stdout);
    } else if (!print_answer(a, file_body != NULL ? file_body : a->body, res.json)) {
        /* The server did it (2xx) but answered in a shape this version cannot lay out: show it as it came. */
        fprintf(stderr, "updraft: done (HTTP %ld), but the answer is not in the expected form; as received:\n", res.status);
        fwrite(res.raw, 1, res.raw_len, stdout);
        if (res.raw_len != 0 && res.raw[res.raw_len - 1] != '\n')
            fputc('\n', stdout);
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "updraft: cannot write the output: %s\n", strerror(errno));
        status = UPD_CLI_EXIT_USAGE;
    }

Exit:
    upd_client_response_dispose(&res);
    upd_client_destroy(client);
    json_decref(file_body);
    free(body);
    return status;
}
