#include "cli/client.h"

#include "cli/args.h"
#include "base/err.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct st_upd_client_t {
    CURL *curl;
    char *server;
    struct curl_slist *headers; /* holds the Authorization line: never logged, never printed */
    char curl_err[CURL_ERROR_SIZE];
};

struct buffer {
    char *data;
    size_t len, cap;
    int too_big;
};

static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct buffer *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > UPD_CLIENT_BODY_MAX) {
        b->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (data == NULL)
            abort();
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

upd_client_t *
upd_client_create(const char *server, const char *api_key, long timeout_s)
{
    upd_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->server = strdup(server)) == NULL)
        abort();
    if ((c->curl = curl_easy_init()) == NULL) {
        fprintf(stderr, "updraft: cannot initialise libcurl\n");
        upd_client_destroy(c);
        return NULL;
    }

    c->headers = curl_slist_append(c->headers, "Accept: application/json");
    if (api_key != NULL) {
        char *auth;
        if (asprintf(&auth, "Authorization: Bearer %s", api_key) < 0)
            abort();
        c->headers = curl_slist_append(c->headers, auth);
        /* the slist keeps its own copy; wipe ours so the key lingers in one place only */
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    /* Without this, libcurl sends "Expect: 100-continue" for bodies over 1 KiB and waits up to a second. */
    c->headers = curl_slist_append(c->headers, "Expect:");

    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "updraft/" UPD_CLI_VERSION);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout_s < UPD_CLI_CONNECT_TIMEOUT ? timeout_s : (long)UPD_CLI_CONNECT_TIMEOUT);
    /* A redirect would replay a write elsewhere: the control API never redirects, so treat one as an answer. */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    return c;
}

void
upd_client_destroy(upd_client_t *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    free(c->server);
    free(c);
}

int
upd_client_call(upd_client_t *c, const char *method, const char *path, const char *body, size_t body_len,
                upd_client_response_t *res)
{
    CURL *h = c->curl;
    struct buffer buf = {NULL};
    struct curl_slist *headers = NULL;
    char *url = NULL;
    int ret = UPD_EIO;

    *res = (upd_client_response_t){0};
    if (asprintf(&url, "%s%s", c->server, path) < 0)
        abort();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &buf);
    c->curl_err[0] = '\0';

    if (body != NULL) {
        /* a per-request copy of the header list: Content-Type only where there is content */
        for (struct curl_slist *s = c->headers; s != NULL; s = s->next)
            headers = curl_slist_append(headers, s->data);
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    /* POSTFIELDS makes it a POST; PUT with a body in memory is that POST renamed */
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0 ? NULL : method);

    CURLcode cr = curl_easy_perform(h);
    if (cr != CURLE_OK) {
        if (buf.too_big)
            fprintf(stderr, "updraft: the answer from %s is larger than %d bytes\n", c->server, UPD_CLIENT_BODY_MAX);
        else
            fprintf(stderr, "updraft: cannot reach %s: %s\n", c->server,
                    c->curl_err[0] != '\0' ? c->curl_err : curl_easy_strerror(cr));
        goto Exit;
    }

    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
    res->raw = buf.data != NULL ? buf.data : strdup("");
    res->raw_len = buf.len;
    buf.data = NULL;
    if (res->raw_len != 0)
        res->json = json_loadb(res->raw, res->raw_len, 0, NULL);
    ret = 0;

Exit:
    /* the easy handle outlives this call: leave nothing pointing at our stack or at freed lists */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    curl_slist_free_all(headers);
    free(buf.data);
    free(url);
    return ret;
}

void
upd_client_response_dispose(upd_client_response_t *res)
{
    free(res->raw);
    json_decref(res->json);
    *res = (upd_client_response_t){0};
}

void
upd_client_print_error(const upd_client_response_t *res)
{
    json_t *err = json_object_get(res->json, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *message = json_string_value(json_object_get(err, "message"));
    if (code != NULL && message != NULL) {
        fprintf(stderr, "updraft: %s: %s (HTTP %ld)\n", code, message, res->status);
        return;
    }

    /* Not the API's error shape (a proxy in between, an old server): show the start of what came, on one line. */
    char excerpt[201];
    size_t n = 0;
    for (size_t i = 0; i != res->raw_len && n + 1 < sizeof(excerpt); ++i)
        excerpt[n++] = res->raw[i] >= ' ' && res->raw[i] != 0x7f ? res->raw[i] : ' ';
    excerpt[n] = '\0';
    fprintf(stderr, "updraft: the server answered HTTP %ld%s%s\n", res->status, n != 0 ? ": " : " with an empty body", excerpt);
}
