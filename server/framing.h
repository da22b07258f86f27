#ifndef UPD_FRAMING_H
#define UPD_FRAMING_H

#include <stddef.h>
#include <stdint.h>

/*
 * The framing guard: checks the raw head of an HTTP/1.x request before any handler runs.
 *
 * Debian's h2o 2.2.5 takes the first of two Content-Length values and parses the rest as a second
 * request, reads chunk sizes like "0_2e" as 0, keeps the connection open on Content-Length with
 * Transfer-Encoding, and accepts HTTP/1.1 without or with two Host headers (STACK-NOTES.md). It
 * also consumes Host, Content-Length and Transfer-Encoding itself, so they never reach the handler's
 * header list: the only place to see them is the raw bytes, which h2o keeps at the start of the
 * socket's input buffer until the response is done.
 */

typedef enum {
    UPD_FRAMING_OK = 0,
    UPD_FRAMING_INCOMPLETE,       /* no end of head within the bytes given */
    UPD_FRAMING_TOO_LARGE,        /* the head is longer than the limit: 431 */
    UPD_FRAMING_BAD_REQUEST_LINE, /* not "METHOD SP TARGET SP HTTP/1.x" */
    UPD_FRAMING_BAD_HEADER,       /* a line without a colon, a bad name, obsolete line folding */
    UPD_FRAMING_DUP_CONTENT_LENGTH,
    UPD_FRAMING_BAD_CONTENT_LENGTH,
    UPD_FRAMING_CL_AND_TE,
    UPD_FRAMING_NO_HOST,
    UPD_FRAMING_DUP_HOST,
    UPD_FRAMING_COUNT
} upd_framing_result_t;

typedef struct st_upd_framing_info_t {
    size_t head_len;        /* bytes up to and including the blank line */
    int64_t content_length; /* -1 when absent */
    int transfer_encoding;  /* 1 when a Transfer-Encoding header is present */
    int minor_version;      /* the x of HTTP/1.x */
} upd_framing_info_t;

/**
 * Checks the request head at the start of buf.
 * @param max_head  the longest head accepted, in bytes
 */
upd_framing_result_t upd_framing_check(const char *buf, size_t len, size_t max_head, upd_framing_info_t *info);

/** A one-line reason for the response body and the log ("two Content-Length headers"). */
const char *upd_framing_reason(upd_framing_result_t r);

#endif
