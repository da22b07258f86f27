#ifndef UPD_CLI_CLIENT_H
#define UPD_CLI_CLIENT_H

#include <jansson.h>
#include <stddef.h>

/*
 * One blocking HTTP exchange with the control API (libcurl easy): JSON in and out, `Authorization: Bearer KEY`.
 * The key is only ever put into that header; no message of this module shows it.
 */

#define UPD_CLIENT_BODY_MAX (16 * 1024 * 1024) /* an answer larger than this is refused rather than buffered */

typedef struct st_upd_client_t upd_client_t;

typedef struct st_upd_client_response_t {
    long status; /* the HTTP status */
    char *raw;   /* the body as received, NUL-terminated (owned) */
    size_t raw_len;
    json_t *json; /* the body parsed, or NULL when it was empty or not JSON (owned) */
} upd_client_response_t;

/**
 * Creates a client for one server.
 * @param server     base URL without a trailing slash; paths are appended to it
 * @param api_key    sent as a Bearer token; NULL sends no Authorization header
 * @param timeout_s  for the whole exchange; connecting gets min(timeout_s, UPD_CLI_CONNECT_TIMEOUT)
 * @return the client, or NULL when libcurl could not be set up (message printed)
 */
upd_client_t *upd_client_create(const char *server, const char *api_key, long timeout_s);
void upd_client_destroy(upd_client_t *c);

/**
 * Sends a request and reads the whole answer, whatever its status.
 * @param body       sent as Content-Type: application/json when not NULL (body_len bytes)
 * @param[out] res   on 0: filled; release with upd_client_response_dispose()
 * @return 0 when an HTTP answer arrived (check res->status), or UPD_EIO when none did — DNS, connect, TLS, timeout,
 *         an answer over UPD_CLIENT_BODY_MAX — with the reason printed on stderr
 */
int upd_client_call(upd_client_t *c, const char *method, const char *path, const char *body, size_t body_len,
                    upd_client_response_t *res);

void upd_client_response_dispose(upd_client_response_t *res);

/**
 * Prints why the server refused a request: "updraft: CODE: MESSAGE (HTTP STATUS)" from the API's error body
 * {"error":{"code","message"}}, or the status and the start of the body when the body is not of that shape.
 */
void upd_client_print_error(const upd_client_response_t *res);

#endif
