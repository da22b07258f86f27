#include "cli/commands.h"

#include "cli/client.h"
#include "cli/credentials.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
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

/* ---- the records: tables and fields --------------------------------------------------------------------------- */

/*
 * Text from the server goes to a terminal: a control character in a member's name or an audit record's user agent
 * must not become an escape sequence there. Copies s with every C0 control and DEL as '?'.
 */
static char *
clean_dup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        abort();
    for (char *p = d; *p != '\0'; ++p)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = '?';
    return d;
}

/* Columns of a terminal a UTF-8 string takes, counting one per code point (good enough for names and ids). */
static size_t
text_width(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; ++s)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

typedef struct st_table_t {
    size_t ncols, nrows, cap;
    char **cells; /* row-major, row 0 the header; owned */
} table_t;

static void
table_init(table_t *t, size_t ncols)
{
    *t = (table_t){.ncols = ncols};
}

/* Adds a row of t->ncols cells; NULL shows as "-". */
static void
table_add(table_t *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap != 0 ? t->cap * 2 : 16;
        if ((t->cells = realloc(t->cells, t->cap * t->ncols * sizeof(*t->cells))) == NULL)
            abort();
    }
    for (size_t c = 0; c != t->ncols; ++c)
        t->cells[t->nrows * t->ncols + c] = clean_dup(cells[c] != NULL && cells[c][0] != '\0' ? cells[c] : "-");
    ++t->nrows;
}

/* Aligned columns two spaces apart, the last one not padded. */
static void
table_print(FILE *out, const table_t *t, const char *indent)
{
    size_t *width = calloc(t->ncols, sizeof(*width));
    if (width == NULL)
        abort();
    for (size_t r = 0; r != t->nrows; ++r)
        for (size_t c = 0; c != t->ncols; ++c)
            if (text_width(t->cells[r * t->ncols + c]) > width[c])
                width[c] = text_width(t->cells[r * t->ncols + c]);
    for (size_t r = 0; r != t->nrows; ++r) {
        fputs(indent, out);
        for (size_t c = 0; c != t->ncols; ++c) {
            const char *cell = t->cells[r * t->ncols + c];
            fputs(cell, out);
            if (c + 1 != t->ncols)
                fprintf(out, "%*s", (int)(width[c] - text_width(cell) + 2), "");
        }
        fputc('\n', out);
    }
    free(width);
}

static void
table_dispose(table_t *t)
{
    for (size_t i = 0; i != t->nrows * t->ncols; ++i)
        free(t->cells[i]);
    free(t->cells);
    *t = (table_t){0};
}

/* "label:  value" with the value cleaned; NULL or "" shows as "-". */
static void
field(FILE *out, const char *label, const char *value)
{
    char *v = clean_dup(value != NULL && value[0] != '\0' ? value : "-");
    fprintf(out, "  %-10s %s\n", label, v);
    free(v);
}

/* A time of a record: Unix seconds as RFC 3339 UTC, a string as given; NULL for null or absent. */
typedef struct st_timebuf_t {
    char s[32];
} timebuf_t;

static const char *
fmt_time(const json_t *v, timebuf_t *buf)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (!json_is_integer(v))
        return NULL;
    time_t t = (time_t)json_integer_value(v);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf->s, sizeof(buf->s), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf->s, sizeof(buf->s), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return buf->s;
}

/* A number member as text, NULL when absent. */
typedef struct st_numbuf_t {
    char s[32];
} numbuf_t;

static const char *
fmt_int(const json_t *v, numbuf_t *buf)
{
    if (!json_is_integer(v))
        return NULL;
    snprintf(buf->s, sizeof(buf->s), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return buf->s;
}

/* A member's roles, account-wide first: "*=build, acme=release"; "none" for none. malloc'ed. */
static char *
fmt_roles(const json_t *roles)
{
    char *text = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&text, &size);
    if (m == NULL)
        abort();
    const char *scope;
    json_t *role;
    bool any = false;
    if (json_is_string(json_object_get(roles, "*"))) {
        fprintf(m, "*=%s", json_string_value(json_object_get(roles, "*")));
        any = true;
    }
    json_object_foreach((json_t *)roles, scope, role)
    {
        if (strcmp(scope, "*") != 0 && json_is_string(role)) {
            fprintf(m, "%s%s=%s", any ? ", " : "", scope, json_string_value(role));
            any = true;
        }
    }
    if (!any)
        fputs("none", m);
    fclose(m);
    return text;
}

static void
print_member(FILE *out, const char *verb, const json_t *m)
{
    timebuf_t tb;
    char *roles = fmt_roles(json_object_get(m, "roles"));
    char *id = clean_dup(str_or(m, "id", "?"));
    fprintf(out, "%s%smember %s\n", verb != NULL ? verb : "", verb != NULL ? " " : "", id);
    field(out, "name:", str_or(m, "name", NULL));
    field(out, "email:", str_or(m, "email", NULL));
    field(out, "roles:", roles);
    field(out, "created:", fmt_time(json_object_get(m, "created"), &tb));
    free(id);
    free(roles);
}

static void
print_key_table(FILE *out, const json_t *keys, bool with_member, const char *indent)
{
    static const char *const head[] = {"ID", "NAME", "MEMBER", "APP", "ROLE", "CREATED", "EXPIRES", "LAST USED", "REVOKED"};
    table_t t;
    size_t i;
    json_t *k;
    /* without the member column: the cells from index 2 on shift left by one */
    const size_t ncols = with_member ? 9 : 8;
    table_init(&t, ncols);
    const char *row[9];
    for (size_t c = 0, o = 0; c != 9; ++c)
        if (with_member || c != 2)
            row[o++] = head[c];
    table_add(&t, row);
    json_array_foreach(keys, i, k)
    {
        timebuf_t created, expires, used, revoked;
        const char *cells[9] = {str_or(k, "id", "?"),
                                str_or(k, "name", NULL),
                                str_or(k, "member", "(service)"),
                                str_or(k, "app", NULL),
                                str_or(k, "role", NULL),
                                fmt_time(json_object_get(k, "created"), &created),
                                fmt_time(json_object_get(k, "expires"), &expires),
                                fmt_time(json_object_get(k, "last_used"), &used),
                                fmt_time(json_object_get(k, "revoked"), &revoked)};
        if (!json_is_string(json_object_get(k, "expires")) && !json_is_integer(json_object_get(k, "expires")))
            cells[6] = "never";
        for (size_t c = 0, o = 0; c != 9; ++c)
            if (with_member || c != 2)
                row[o++] = cells[c];
        table_add(&t, row);
    }
    table_print(out, &t, indent);
    table_dispose(&t);
}

/* Who made an audit record: "alice (key 0123456789abcdef)", "key 0123456789abcdef" (a service key), "host". */
static void
fmt_actor(const json_t *actor, char *buf, size_t size)
{
    if (json_is_string(actor)) {
        snprintf(buf, size, "%s", json_string_value(actor));
        return;
    }
    const char *member = str_or(actor, "member", ""), *key = str_or(actor, "key", "");
    if (json_is_true(json_object_get(actor, "host")))
        snprintf(buf, size, "host");
    else if (member[0] != '\0' && key[0] != '\0')
        snprintf(buf, size, "%s (key %s)", member, key);
    else if (key[0] != '\0')
        snprintf(buf, size, "key %s", key);
    else
        snprintf(buf, size, "nobody");
}

/* What an audit record is about: "acme/latest 1.2.0", "member bob", "key 0123456789abcdef", joined by ", ". */
static void
fmt_target(const json_t *target, char *buf, size_t size)
{
    const char *app = str_or(target, "app", ""), *channel = str_or(target, "channel", ""), *version = str_or(target, "version", ""),
               *member = str_or(target, "member", ""), *key = str_or(target, "key", "");
    size_t off = 0;
    buf[0] = '\0';
#define APPEND(...)                                                                                                                \
    do {                                                                                                                           \
        if (off < size)                                                                                                            \
            off += (size_t)snprintf(buf + off, size - off, __VA_ARGS__);                                                           \
    } while (0)
    if (json_is_string(target))
        APPEND("%s", json_string_value(target));
    if (app[0] != '\0')
        APPEND("%s%s%s%s%s", app, channel[0] != '\0' ? "/" : "", channel, version[0] != '\0' ? " " : "", version);
    if (member[0] != '\0')
        APPEND("%smember %s", off != 0 ? ", " : "", member);
    if (key[0] != '\0')
        APPEND("%skey %s", off != 0 ? ", " : "", key);
#undef APPEND
}

static bool
print_audit(FILE *out, const json_t *answer)
{
    const json_t *records = json_object_get(answer, "records"), *next = json_object_get(answer, "next_before");
    if (!json_is_array(records))
        return false;
    if (json_array_size(records) == 0) {
        fprintf(out, "no audit records match\n");
    } else {
        table_t t;
        table_init(&t, 6);
        table_add(&t, (const char *const[]){"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME"});
        size_t i;
        json_t *r;
        json_array_foreach(records, i, r)
        {
            numbuf_t seq;
            timebuf_t tb;
            char actor[256], target[512], outcome[128];
            fmt_actor(json_object_get(r, "actor"), actor, sizeof(actor));
            fmt_target(json_object_get(r, "target"), target, sizeof(target));
            const char *o = str_or(r, "outcome", "?"), *err = str_or(r, "error", NULL);
            if (err != NULL)
                snprintf(outcome, sizeof(outcome), "%s (%s)", o, err);
            else
                snprintf(outcome, sizeof(outcome), "%s", o);
            table_add(&t, (const char *const[]){fmt_int(json_object_get(r, "seq"), &seq), fmt_time(json_object_get(r, "time"), &tb),
                                                actor, str_or(r, "action", NULL), target, outcome});
        }
        table_print(out, &t, "");
        table_dispose(&t);
    }
    if (json_is_integer(next))
        fprintf(out, "\nolder records: the same command with --before %" JSON_INTEGER_FORMAT "\n", json_integer_value(next));
    return true;
}

static const char *
release_state(const json_t *r, bool draft)
{
    if (draft || json_is_true(json_object_get(r, "draft")))
        return "draft";
    return json_is_true(json_object_get(r, "pulled")) ? "pulled" : "published";
}

static void
release_rows(table_t *t, const json_t *list, bool drafts)
{
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        timebuf_t tb;
        numbuf_t nfiles;
        json_t *count = json_integer((json_int_t)json_array_size(json_object_get(r, "files")));
        const char *when = json_is_string(json_object_get(r, "pub_date")) ? json_string_value(json_object_get(r, "pub_date"))
                                                                          : fmt_time(json_object_get(r, "created"), &tb);
        table_add(t, (const char *const[]){str_or(r, "version", "?"), drafts ? NULL : str_or(r, "channel", NULL),
                                           release_state(r, drafts), when, fmt_int(count, &nfiles)});
        json_decref(count);
    }
}

static bool
print_release_list(FILE *out, const json_t *answer)
{
    const json_t *releases = json_object_get(answer, "releases"), *drafts = json_object_get(answer, "drafts");
    if (!json_is_array(releases))
        return false;
    if (json_array_size(releases) + json_array_size(drafts) == 0) {
        fprintf(out, "no releases and no drafts\n");
        return true;
    }
    table_t t;
    table_init(&t, 5);
    table_add(&t, (const char *const[]){"VERSION", "CHANNEL", "STATE", "DATE", "FILES"});
    release_rows(&t, releases, false);
    release_rows(&t, drafts, true);
    table_print(out, &t, "");
    table_dispose(&t);
    return true;
}

static bool
print_release_show(FILE *out, const json_t *r)
{
    if (!json_is_object(r) || !json_is_string(json_object_get(r, "version")))
        return false;
    timebuf_t tb;
    bool draft = json_is_true(json_object_get(r, "draft"));
    char *app = clean_dup(str_or(r, "app", "?")), *version = clean_dup(str_or(r, "version", "?"));
    fprintf(out, "%s %s\n", app, version);
    field(out, "state:", release_state(r, draft));
    field(out, "channel:", draft ? "none until published" : str_or(r, "channel", NULL));
    field(out, "date:",
          json_is_string(json_object_get(r, "pub_date")) ? str_or(r, "pub_date", NULL)
                                                         : fmt_time(json_object_get(r, "created"), &tb));
    if (json_is_true(json_object_get(r, "pulled"))) {
        field(out, "pulled:", str_or(r, "pulled_at", NULL));
        field(out, "reason:", str_or(r, "pull_reason", NULL));
    }
    field(out, "notes:", str_or(r, "notes", NULL));
    fprintf(out, "files:\n");
    print_files(out, json_object_get(r, "files"));
    free(app);
    free(version);
    return true;
}

static bool
print_backups(FILE *out, const json_t *answer)
{
    const json_t *backups = json_object_get(answer, "backups");
    if (!json_is_array(backups))
        return false;
    if (json_array_size(backups) == 0) {
        fprintf(out, "no backups\n");
        return true;
    }
    table_t t;
    table_init(&t, 6);
    table_add(&t, (const char *const[]){"ID", "TIME", "SIZE", "SCHEMA", "AUDIT HEAD", "GOOD"});
    size_t i;
    json_t *b;
    json_array_foreach(backups, i, b)
    {
        timebuf_t tb;
        numbuf_t size, schema, seq;
        const json_t *good = json_object_get(b, "good");
        table_add(&t,
                  (const char *const[]){str_or(b, "id", "?"), fmt_time(json_object_get(b, "time"), &tb),
                                        fmt_int(json_object_get(b, "size"), &size), fmt_int(json_object_get(b, "schema"), &schema),
                                        fmt_int(json_object_get(json_object_get(b, "audit_head"), "seq"), &seq),
                                        json_is_boolean(good) ? (json_is_true(good) ? "yes" : "NO") : NULL});
    }
    table_print(out, &t, "");
    table_dispose(&t);
    return true;
}

/* "release on *", "build on acme": what a key may do at most */
static void
fmt_scope(const json_t *key, char *buf, size_t size)
{
    snprintf(buf, size, "%s on %s", str_or(key, "role", "?"), str_or(key, "app", "?"));
}

static bool
print_login(FILE *out, const upd_cli_args_t *a, const json_t *answer)
{
    const json_t *key = json_object_get(answer, "key"), *member = json_object_get(answer, "member");
    if (!json_is_object(key))
        return false;
    char scope[160], line[512];
    fmt_scope(key, scope, sizeof(scope));
    if (json_is_object(member))
        snprintf(line, sizeof(line), "signed in to %s as %s, with key %s \"%s\" (scope: %s)", a->server, str_or(member, "id", "?"),
                 str_or(key, "id", "?"), str_or(key, "name", ""), scope);
    else
        snprintf(line, sizeof(line), "signed in to %s with key %s \"%s\", of no member (scope: %s)", a->server,
                 str_or(key, "id", "?"), str_or(key, "name", ""), scope);
    char *text = clean_dup(line);
    fprintf(out, "%s\n", text);
    free(text);
    if (json_is_object(member)) {
        char *roles = fmt_roles(json_object_get(member, "roles"));
        field(out, "roles:", roles);
        free(roles);
    }
    timebuf_t tb;
    if (json_is_integer(json_object_get(key, "expires")) || json_is_string(json_object_get(key, "expires")))
        field(out, "expires:", fmt_time(json_object_get(key, "expires"), &tb));
    fprintf(out, "credentials saved to %s\n", a->credentials_path);
    return true;
}

/* The secret on stdout alone, so that KEY=$(updraft keys create ...) holds just it; the rest for people, on stderr. */
static bool
print_key_created(const json_t *answer)
{
    const char *secret = json_string_value(json_object_get(answer, "key"));
    if (secret == NULL)
        return false;
    char scope[160], line[512];
    fmt_scope(answer, scope, sizeof(scope));
    timebuf_t tb;
    const char *expires = fmt_time(json_object_get(answer, "expires"), &tb);
    snprintf(line, sizeof(line), "created key %s \"%s\" for %s%s (scope: %s; expires: %s)", str_or(answer, "id", "?"),
             str_or(answer, "name", ""), json_is_string(json_object_get(answer, "member")) ? "member " : "",
             str_or(answer, "member", "no member (a service key)"), scope, expires != NULL ? expires : "never");
    char *text = clean_dup(line);
    fprintf(stderr, "%s:\n", text);
    free(text);
    fflush(stderr);
    char *clean = clean_dup(secret);
    printf("%s\n", clean);
    explicit_bzero(clean, strlen(clean));
    free(clean);
    fflush(stdout);
    fprintf(stderr, "This key will not be shown again: store it now.\n");
    return true;
}

/* A draft as registered: offered to nobody, so no channel to show; how to publish it instead. */
static bool
print_draft(const json_t *body, const json_t *answer)
{
    const json_t *release = json_object_get(answer, "release");
    if (!json_is_object(release))
        return false;
    const json_t *files = json_object_get(release, "files");
    if (!json_is_array(files))
        files = json_object_get(body, "files");
    const char *app = str_or(release, "app", "?"), *version = str_or(release, "version", str_or(body, "version", "?"));
    printf("registered draft %s %s (offered to nobody until published), files:\n", app, version);
    print_files(stdout, files);
    print_backends(stdout, json_object_get(answer, "backends"));
    printf("\npublish it with: updraft releases publish %s %s --channel CHANNEL\n", app, version);
    return true;
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
        /* a --file without "channel" registers a draft */
        if (json_is_object(release) && json_is_true(json_object_get(release, "draft")))
            return print_draft(body, answer);
        if (!json_is_object(release) || !json_is_object(channel))
            return false;
        /* the files as registered; what we sent when the answer leaves them out */
        const json_t *files = json_object_get(release, "files");
        if (!json_is_array(files))
            files = json_object_get(body, "files");
        bool publish = strcmp(a->command, "releases publish") == 0;
        printf("%s %s %s on channel %s, files:\n", publish ? "published" : "registered", str_or(channel, "app", "?"),
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
    case UPD_CLI_PRINT_DRAFT:
        return print_draft(body, answer);
    case UPD_CLI_PRINT_RELEASE_LIST:
        return print_release_list(stdout, answer);
    case UPD_CLI_PRINT_RELEASE_SHOW:
        return print_release_show(stdout, answer);
    case UPD_CLI_PRINT_MEMBER:
        if (!json_is_object(answer))
            return false;
        print_member(stdout, strcmp(a->command, "members create") == 0 ? "created" : "updated", answer);
        return true;
    case UPD_CLI_PRINT_MEMBER_SHOW:
        if (!json_is_object(answer))
            return false;
        print_member(stdout, NULL, answer);
        if (json_array_size(json_object_get(answer, "keys")) == 0) {
            printf("  %-10s none\n", "keys:");
        } else {
            printf("  keys:\n");
            print_key_table(stdout, json_object_get(answer, "keys"), false, "    ");
        }
        return true;
    case UPD_CLI_PRINT_MEMBER_LIST: {
        const json_t *members = json_object_get(answer, "members");
        if (!json_is_array(members))
            return false;
        if (json_array_size(members) == 0) {
            printf("no members\n");
            return true;
        }
        table_t t;
        table_init(&t, 5);
        table_add(&t, (const char *const[]){"ID", "NAME", "EMAIL", "ROLES", "CREATED"});
        size_t i;
        json_t *m;
        json_array_foreach(members, i, m)
        {
            timebuf_t tb;
            char *roles = fmt_roles(json_object_get(m, "roles"));
            table_add(&t, (const char *const[]){str_or(m, "id", "?"), str_or(m, "name", NULL), str_or(m, "email", NULL), roles,
                                                fmt_time(json_object_get(m, "created"), &tb)});
            free(roles);
        }
        table_print(stdout, &t, "");
        table_dispose(&t);
        return true;
    }
    case UPD_CLI_PRINT_MEMBER_REMOVED: {
        if (!json_is_object(answer))
            return false;
        numbuf_t n;
        char *id = clean_dup(str_or(answer, "member", "?"));
        const char *revoked = fmt_int(json_object_get(answer, "keys_revoked"), &n);
        printf("removed member %s; %s of their keys revoked\n", id, revoked != NULL ? revoked : "?");
        free(id);
        return true;
    }
    case UPD_CLI_PRINT_KEY_CREATED:
        return print_key_created(answer);
    case UPD_CLI_PRINT_KEY_LIST:
        if (!json_is_array(json_object_get(answer, "keys")))
            return false;
        if (json_array_size(json_object_get(answer, "keys")) == 0)
            printf("no keys\n");
        else
            print_key_table(stdout, json_object_get(answer, "keys"), true, "");
        return true;
    case UPD_CLI_PRINT_KEY_REVOKED: {
        if (!json_is_object(answer))
            return false;
        char line[256];
        snprintf(line, sizeof(line), "revoked key %s \"%s\": it is refused from its next request on", str_or(answer, "id", "?"),
                 str_or(answer, "name", ""));
        char *text = clean_dup(line);
        printf("%s\n", text);
        free(text);
        return true;
    }
    case UPD_CLI_PRINT_AUDIT:
        return print_audit(stdout, answer);
    case UPD_CLI_PRINT_BACKUP_LIST:
        return print_backups(stdout, answer);
    case UPD_CLI_PRINT_BACKUP_STARTED: {
        if (!json_is_string(json_object_get(answer, "id")))
            return false;
        char *id = clean_dup(str_or(answer, "id", "?"));
        printf("backup %s started; 'updraft backups list' shows it once it is written\n", id);
        free(id);
        return true;
    }
    case UPD_CLI_PRINT_LOGIN:
        return print_login(stdout, a, answer);
    }
    return false;
}

/* ---- login and logout ----------------------------------------------------------------------------------------- */

#define KEY_LINE_MAX 1024 /* a key is 81 characters; a longer line is not one */

/* The terminal's settings while the key is typed without echo, for the signal handler to put back. */
static struct termios tty_saved;
static volatile sig_atomic_t tty_quiet;
static const int tty_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void
on_signal_restore_tty(int sig)
{
    /* tcsetattr, signal and raise are async-signal-safe: a Ctrl-C at the prompt must not leave the echo off */
    if (tty_quiet)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

/*
 * Reads one line from stdin as the API key: with a prompt on stderr and without echo when stdin is a terminal (as
 * getpass() did), as it comes otherwise (a pipe, a file). Surrounding white space is dropped.
 * @return 0, or UPD_EINVAL / UPD_EIO with the reason printed
 */
static int
read_key(const char *server, char *buf, size_t size)
{
    struct sigaction restore = {.sa_handler = on_signal_restore_tty}, old[sizeof(tty_signals) / sizeof(tty_signals[0])];
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &tty_saved) == 0;
    size_t len = 0;
    bool too_long = false;
    int err = 0;

    if (tty) {
        struct termios quiet = tty_saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL; /* the Enter still moves to the next line */
        sigemptyset(&restore.sa_mask);
        for (size_t i = 0; i != sizeof(tty_signals) / sizeof(tty_signals[0]); ++i)
            sigaction(tty_signals[i], &restore, &old[i]);
        tty_quiet = 1;
        /* the echo goes off before the prompt appears, so that nothing typed after the prompt is ever shown */
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) {
            fprintf(stderr, "updraft: cannot turn off the terminal's echo: %s\n", strerror(errno));
            err = -1;
        } else {
            fprintf(stderr, "API key for %s: ", server);
            fflush(stderr);
        }
    }
    /* byte by byte: nothing after the line is consumed, and no stdio buffer keeps a copy of the key */
    while (err == 0) {
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = errno;
        if (n <= 0 || c == '\n')
            break;
        if (len + 1 < size)
            buf[len++] = c;
        else
            too_long = true;
    }
    buf[len] = '\0';
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
        tty_quiet = 0;
        for (size_t i = 0; i != sizeof(tty_signals) / sizeof(tty_signals[0]); ++i)
            sigaction(tty_signals[i], &old[i], NULL);
    }
    if (err < 0)
        return UPD_EIO;
    if (err > 0) {
        fprintf(stderr, "updraft: cannot read the API key from stdin: %s\n", strerror(err));
        return UPD_EIO;
    }
    if (too_long) {
        fprintf(stderr, "updraft: the line read from stdin is longer than %d bytes: not an API key\n", KEY_LINE_MAX - 1);
        return UPD_EINVAL;
    }
    while (len != 0 && (buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        buf[--len] = '\0';
    size_t lead = strspn(buf, " \t");
    memmove(buf, buf + lead, len - lead + 1);
    if (buf[0] == '\0') {
        fprintf(stderr, "updraft: no API key: pass --api-key, set UPDRAFT_API_KEY or give it on stdin\n");
        return UPD_EINVAL;
    }
    return 0;
}

/* The id of a key "upd_<16 hex>_<secret>", or "" when it has not that shape. */
static void
key_id_of(const char *key, char id[17])
{
    id[0] = '\0';
    if (strncmp(key, "upd_", 4) != 0 || strlen(key) < 21 || key[20] != '_' || strspn(key + 4, "0123456789abcdef") < 16)
        return;
    memcpy(id, key + 4, 16);
    id[16] = '\0';
}

static int
run_logout(const upd_cli_args_t *a)
{
    upd_cli_credentials_t saved;
    upd_reason_t why;
    char id[17] = "";
    if (upd_cli_credentials_load(a->credentials_path, &saved, &why) == 0 && saved.api_key != NULL)
        key_id_of(saved.api_key, id);
    upd_cli_credentials_dispose(&saved);

    int r = upd_cli_credentials_remove(a->credentials_path, &why);
    if (r == UPD_ENOTFOUND) {
        printf("not signed in: there is no %s\n", a->credentials_path);
    } else if (r != 0) {
        fprintf(stderr, "updraft: %s\n", why.message);
        return UPD_CLI_EXIT_USAGE;
    } else {
        printf("signed out: removed %s\n", a->credentials_path);
        /* removing the file forgets the key here; it still works wherever else it is kept */
        if (id[0] != '\0')
            printf("the key itself stays valid until revoked: updraft keys revoke %s\n", id);
    }
    return fflush(stdout) == 0 ? UPD_CLI_EXIT_OK : UPD_CLI_EXIT_USAGE;
}

/* After the server accepted the key: saves it. @return an exit status */
static int
save_login(const upd_cli_args_t *a, const char *key, const json_t *answer)
{
    upd_reason_t why;
    if (!json_is_object(json_object_get(answer, "key"))) {
        fprintf(stderr, "updraft: the server accepted the key, but its answer is not a sign-in answer: nothing was saved\n");
        return UPD_CLI_EXIT_REFUSED;
    }
    if (upd_cli_credentials_save(a->credentials_path, a->server, key, &why) != 0) {
        fprintf(stderr, "updraft: the key is good, but cannot be saved: %s\n", why.message);
        return UPD_CLI_EXIT_USAGE;
    }
    return UPD_CLI_EXIT_OK;
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
    char stdin_key[KEY_LINE_MAX];
    const char *api_key = a->api_key;
    int status = UPD_CLI_EXIT_USAGE;

    stdin_key[0] = '\0';
    if (a->kind == UPD_CLI_LOGOUT)
        return run_logout(a);
    if (a->key_from_stdin) {
        if (read_key(a->server, stdin_key, sizeof(stdin_key)) != 0)
            goto Exit;
        upd_cli_args_t check = {0};
        if (upd_cli_api_key_check(&check, stdin_key) != 0) {
            fprintf(stderr, "updraft: %s\n", check.err);
            goto Exit;
        }
        api_key = stdin_key;
    }

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
    if ((client = upd_client_create(a->server, api_key, a->timeout_s)) == NULL)
        goto Exit;
    if (upd_client_call(client, a->method, a->path, body, body_len, &res) != 0)
        goto Exit;

    if (res.status < 200 || res.status > 299) {
        upd_client_print_error(&res);
        if (res.status == 401 && a->withheld_for != NULL)
            fprintf(stderr,
                    "updraft: the saved key was not sent: it was saved for %s, not for %s (pass --api-key, or run "
                    "'updraft login --server %s')\n",
                    a->withheld_for, a->server, a->server);
        if (a->kind == UPD_CLI_LOGIN)
            fprintf(stderr, "updraft: not signed in; nothing was saved\n");
        status = UPD_CLI_EXIT_REFUSED;
        goto Exit;
    }
    if (a->kind == UPD_CLI_LOGIN && (status = save_login(a, api_key, res.json)) != UPD_CLI_EXIT_OK)
        goto Exit;
    status = UPD_CLI_EXIT_OK;
    if (a->json) {
        if (a->print == UPD_CLI_PRINT_KEY_CREATED)
            fprintf(stderr, "updraft: the key in this answer will not be shown again: store it now\n");
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
    /* the answer to keys create holds a new key: leave no copy of it, nor of the key read, in freed memory */
    if (res.raw != NULL)
        explicit_bzero(res.raw, res.raw_len);
    upd_client_response_dispose(&res);
    upd_client_destroy(client);
    json_decref(file_body);
    free(body);
    explicit_bzero(stdin_key, sizeof(stdin_key));
    return status;
}
