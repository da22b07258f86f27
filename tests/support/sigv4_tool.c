/*
 * sigv4-tool: storage/sigv4.c on the command line, for tests that talk to a real S3 peer
 * (tests/integration/test_sigv4_s3rver.py). Not installed, not used by the servers.
 *
 *   sigv4-tool sign    --method M --url URL --region R --service S --access-key K --secret-key S
 *                      [--session-token T] [--payload-hash H | --body-file F] [--header 'Name: value']...
 *                      [--time UNIX_SECONDS]
 *   sigv4-tool presign ... the same ... [--expires SECONDS]
 *
 * URL is http(s)://HOST[:PORT]/PATH[?QUERY] with PATH and QUERY already percent-encoded as they go
 * on the wire; Host is signed as HOST[:PORT]. Service "s3" signs the S3 way (path as sent,
 * x-amz-content-sha256 signed), any other service the generic way (path normalised, encoded twice).
 * The payload hash defaults to the empty body's for sign and to UNSIGNED-PAYLOAD for presign;
 * --expires defaults to 3600; --time to now.
 *
 * sign prints the headers to add, one "Name: value" a line; presign prints the URL. Exit status 0,
 * 1 when the signer refuses (reason on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "storage/sigv4.h"

#define MAX_EXTRA_HEADERS 16

static int
usage(const char *why)
{
    fprintf(stderr,
            "sigv4-tool: %s\n"
            "usage: sigv4-tool sign|presign --method M --url URL --region R --service S --access-key K --secret-key S\n"
            "                  [--session-token T] [--payload-hash H | --body-file F] [--header 'Name: value']...\n"
            "                  [--time UNIX_SECONDS] [--expires SECONDS]\n",
            why);
    return 2;
}

static int
parse_long(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int
hash_file(const char *path, char hex[65])
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return -1;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL)
            break;
        len += fread(buf + len, 1, cap - len, fp);
        if (len < cap)
            break;
        char *grown = realloc(buf, cap *= 2);
        if (grown == NULL) {
            free(buf);
            buf = NULL;
        } else {
            buf = grown;
        }
    }
    int ret = buf != NULL && !ferror(fp) && upd_sigv4_sha256_hex(buf, len, hex) == 0 ? 0 : -1;
    fclose(fp);
    free(buf);
    return ret;
}

int
main(int argc, char **argv)
{
    static const struct option options[] = {{"method", required_argument, NULL, 'm'},
                                            {"url", required_argument, NULL, 'u'},
                                            {"region", required_argument, NULL, 'r'},
                                            {"service", required_argument, NULL, 's'},
                                            {"access-key", required_argument, NULL, 'a'},
                                            {"secret-key", required_argument, NULL, 'k'},
                                            {"session-token", required_argument, NULL, 't'},
                                            {"payload-hash", required_argument, NULL, 'p'},
                                            {"body-file", required_argument, NULL, 'b'},
                                            {"header", required_argument, NULL, 'H'},
                                            {"time", required_argument, NULL, 'T'},
                                            {"expires", required_argument, NULL, 'e'},
                                            {NULL, 0, NULL, 0}};
    upd_sigv4_creds_t creds = {NULL};
    upd_sigv4_request_t req = {NULL};
    upd_sigv4_header_t headers[MAX_EXTRA_HEADERS + 1];
    char *header_copies[MAX_EXTRA_HEADERS] = {NULL};
    const char *url = NULL, *body_file = NULL;
    char body_hash[65], host[256], *path = NULL;
    long long when = (long long)time(NULL), expires = 3600, v;
    size_t num_extra = 0;
    int opt, ret = 2;

    if (argc < 2 || (strcmp(argv[1], "sign") != 0 && strcmp(argv[1], "presign") != 0))
        return usage("the first argument is sign or presign");
    bool presign = strcmp(argv[1], "presign") == 0;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'm':
            req.method = optarg;
            break;
        case 'u':
            url = optarg;
            break;
        case 'r':
            req.region = optarg;
            break;
        case 's':
            req.service = optarg;
            break;
        case 'a':
            creds.access_key = optarg;
            break;
        case 'k':
            creds.secret_key = optarg;
            break;
        case 't':
            creds.session_token = optarg;
            break;
        case 'p':
            req.payload_hash = optarg;
            break;
        case 'b':
            body_file = optarg;
            break;
        case 'H': {
            char *colon = strchr(optarg, ':');
            if (colon == NULL || num_extra == MAX_EXTRA_HEADERS) {
                usage("--header 'Name: value', at most 16 times");
                goto Exit;
            }
            char *copy = header_copies[num_extra] = strdup(optarg);
            if (copy == NULL)
                goto Exit;
            copy[colon - optarg] = '\0';
            headers[num_extra++] = (upd_sigv4_header_t){copy, copy + (colon - optarg) + 1};
            break;
        }
        case 'T':
            if (parse_long(optarg, 0, 253402300799LL, &when) != 0) {
                usage("--time is seconds since 1970");
                goto Exit;
            }
            break;
        case 'e':
            if (parse_long(optarg, 1, UPD_SIGV4_MAX_EXPIRES, &v) != 0) {
                usage("--expires is 1 to 604800 seconds");
                goto Exit;
            }
            expires = v;
            break;
        default:
            usage("unknown option");
            goto Exit;
        }
    }
    if (optind != argc || req.method == NULL || url == NULL || req.region == NULL || req.service == NULL ||
        creds.access_key == NULL || creds.secret_key == NULL) {
        usage("--method, --url, --region, --service, --access-key and --secret-key are required");
        goto Exit;
    }
    if (body_file != NULL) {
        if (req.payload_hash != NULL) {
            usage("--payload-hash and --body-file exclude each other");
            goto Exit;
        }
        if (hash_file(body_file, body_hash) != 0) {
            fprintf(stderr, "sigv4-tool: %s: cannot read\n", body_file);
            ret = 1;
            goto Exit;
        }
        req.payload_hash = body_hash;
    }
    if (req.payload_hash == NULL)
        req.payload_hash = presign ? UPD_SIGV4_UNSIGNED_PAYLOAD : UPD_SIGV4_EMPTY_SHA256;

    /* scheme://authority/path?query */
    const char *rest = strstr(url, "://");
    if (rest == NULL || strchr(url, '#') != NULL) {
        usage("--url is http(s)://HOST[:PORT]/PATH[?QUERY]");
        goto Exit;
    }
    rest += 3;
    size_t host_len = strcspn(rest, "/?");
    if (host_len == 0 || host_len >= sizeof(host)) {
        usage("--url has no host");
        goto Exit;
    }
    snprintf(host, sizeof(host), "%.*s", (int)host_len, rest);
    rest += host_len;
    size_t path_len = strcspn(rest, "?");
    if (asprintf(&path, "%s%.*s", path_len == 0 ? "/" : "", (int)path_len, rest) < 0) {
        path = NULL;
        goto Exit;
    }
    req.path = path;
    req.query = rest[path_len] == '?' ? rest + path_len + 1 : NULL;
    headers[num_extra] = (upd_sigv4_header_t){"Host", host};
    req.headers = headers;
    req.num_headers = num_extra + 1;
    req.timestamp = (time_t)when;
    req.flags = strcmp(req.service, "s3") == 0 ? UPD_SIGV4_FLAGS_S3 : UPD_SIGV4_FLAGS_SERVICE;

    upd_sigv4_result_t *out = malloc(sizeof(*out));
    if (out == NULL)
        goto Exit;
    int err = presign ? upd_sigv4_presign(&creds, &req, (unsigned)expires, out) : upd_sigv4_sign_headers(&creds, &req, out);
    if (err != 0) {
        fprintf(stderr, "sigv4-tool: %s\n", upd_strerror(err));
        ret = 1;
    } else if (presign) {
        printf("%.*s%s?%s\n", (int)(rest + path_len - url), url, path_len == 0 ? "/" : "", out->query);
        ret = 0;
    } else {
        for (size_t i = 0; i < out->num_headers; i++)
            printf("%s: %s\n", out->headers[i].name, out->headers[i].value);
        ret = 0;
    }
    free(out);

Exit:
    for (size_t i = 0; i < num_extra; i++)
        free(header_copies[i]);
    free(path);
    return ret;
}
