/*
 * Fuzzes the framing guard (server/framing.h) with raw HTTP/1 request heads.
 *
 * Input: the bytes of the socket's input buffer, as h2o hands them to the guard.
 * Invariants:
 * - every result is a known one with a reason; on OK the head is within the buffer and the limit, ends with its blank line,
 *   names HTTP/1.0 or 1.1 and never carries both Content-Length and Transfer-Encoding;
 * - the verdict depends on the head only: the head alone, or any longer buffer, gives the same answer (what follows is a
 *   body or a pipelined request);
 * - a larger limit does not change a verdict reached under the smallest configurable one (1024);
 * - against the parser h2o 2.2.5 itself runs (picohttpparser, exported by libh2o-evloop): whenever h2o would take the head
 *   as a complete request, the guard must not answer INCOMPLETE (the server lets such a request through unchecked), and
 *   when the guard says OK it must have checked the very head h2o parsed, with the same Content-Length, Host and
 *   Transfer-Encoding headers.
 */
#include <stdbool.h>
#include <stdint.h>
#include <strings.h>
#include "server/framing.h"
#include "tests/fuzz/fuzz.h"

/* picohttpparser's API, as bundled in libh2o-evloop (Debian installs no header for it). */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len);

#define H2O_MAX_HEADERS 100
#define H2O_MAX_REQLEN (8192 + 4096 * (H2O_MAX_HEADERS)) /* h2o.h */
#define DEFAULT_MAX_HEAD 65536                          /* limits.max_header_bytes */
#define SMALLEST_MAX_HEAD 1024

static bool
same_info(const upd_framing_info_t *a, const upd_framing_info_t *b)
{
    return a->head_len == b->head_len && a->content_length == b->content_length && a->transfer_encoding == b->transfer_encoding &&
           a->minor_version == b->minor_version;
}

static bool
name_is(const struct phr_header *h, const char *want)
{
    return h->name != NULL && h->name_len == strlen(want) && strncasecmp(h->name, want, h->name_len) == 0;
}

static void
check_result(const char *buf, size_t len, size_t max_head, upd_framing_result_t r, const upd_framing_info_t *info)
{
    FUZZ_CHECK((unsigned)r < UPD_FRAMING_COUNT);
    FUZZ_CHECK(strcmp(upd_framing_reason(r), "unknown") != 0);
    if (r == UPD_FRAMING_INCOMPLETE || r == UPD_FRAMING_TOO_LARGE)
        return;
    FUZZ_CHECK(info->head_len >= 2 && info->head_len <= len && info->head_len <= max_head);
    FUZZ_CHECK(buf[info->head_len - 1] == '\n');
    if (r == UPD_FRAMING_BAD_REQUEST_LINE)
        return;
    FUZZ_CHECK(info->minor_version == 0 || info->minor_version == 1);
    if (r != UPD_FRAMING_OK)
        return;
    FUZZ_CHECK(info->content_length >= -1);
    FUZZ_CHECK(info->transfer_encoding == 0 || info->transfer_encoding == 1);
    FUZZ_CHECK(!(info->content_length >= 0 && info->transfer_encoding));
}

/* h2o_strtosize: all digits, at most 20 of them; anything else h2o refuses with 400. */
static bool
h2o_size(const char *s, size_t len, int64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 18) /* the guard refuses more than 18 digits; h2o's own limit is higher */
        return false;
    for (size_t i = 0; i < len; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = (int64_t)v;
    return true;
}

static void
check_against_h2o(const char *buf, size_t len, upd_framing_result_t r, const upd_framing_info_t *info)
{
    const char *method, *path;
    size_t method_len, path_len, num_headers = H2O_MAX_HEADERS;
    int minor;
    struct phr_header headers[H2O_MAX_HEADERS];
    size_t inreqlen = len < H2O_MAX_REQLEN ? len : H2O_MAX_REQLEN;

    int reqlen = phr_parse_request(buf, inreqlen, &method, &method_len, &path, &path_len, &minor, headers, &num_headers, 0);
    if (reqlen <= 0)
        return; /* h2o answers 400 itself, or waits for more bytes: the guard never runs */
    FUZZ_CHECK(r != UPD_FRAMING_INCOMPLETE);
    if (r != UPD_FRAMING_OK)
        return;
    FUZZ_CHECK(info->head_len == (size_t)reqlen);
    FUZZ_CHECK(info->minor_version == minor);
    size_t cls = 0, hosts = 0, tes = 0;
    const struct phr_header *cl = NULL;
    for (size_t i = 0; i < num_headers; ++i) {
        FUZZ_CHECK(headers[i].name != NULL); /* obsolete line folding was refused */
        if (name_is(&headers[i], "content-length")) {
            ++cls;
            cl = &headers[i];
        } else if (name_is(&headers[i], "host")) {
            ++hosts;
        } else if (name_is(&headers[i], "transfer-encoding")) {
            ++tes;
        }
    }
    FUZZ_CHECK(cls <= 1);
    FUZZ_CHECK((cls == 1) == (info->content_length >= 0));
    int64_t h2o_cl;
    if (cl != NULL && h2o_size(cl->value, cl->value_len, &h2o_cl))
        FUZZ_CHECK(h2o_cl == info->content_length);
    FUZZ_CHECK((tes != 0) == (info->transfer_encoding != 0));
    FUZZ_CHECK(hosts <= 1);
    if (minor == 1)
        FUZZ_CHECK(hosts == 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = fuzz_dup(data, size);
    upd_framing_info_t info, again;

    upd_framing_result_t r = upd_framing_check(buf, size, DEFAULT_MAX_HEAD, &info);
    check_result(buf, size, DEFAULT_MAX_HEAD, r, &info);

    /* the head alone gives the same verdict */
    if (r != UPD_FRAMING_INCOMPLETE && r != UPD_FRAMING_TOO_LARGE) {
        char *head = fuzz_dup(buf, info.head_len);
        FUZZ_CHECK(upd_framing_check(head, info.head_len, DEFAULT_MAX_HEAD, &again) == r);
        FUZZ_CHECK(same_info(&info, &again));
        free(head);
    }

    /* a verdict reached on a prefix stands when more bytes arrive */
    for (size_t cut = size / 2; cut < size; cut = cut + 1 + (size - cut) / 2) {
        upd_framing_result_t rp = upd_framing_check(buf, cut, DEFAULT_MAX_HEAD, &again);
        check_result(buf, cut, DEFAULT_MAX_HEAD, rp, &again);
        if (rp != UPD_FRAMING_INCOMPLETE) {
            FUZZ_CHECK(rp == r);
            if (r != UPD_FRAMING_TOO_LARGE)
                FUZZ_CHECK(same_info(&info, &again));
        }
    }

    /* the smallest configurable limit: anything but "too large" is the same verdict as under the default */
    upd_framing_result_t rs = upd_framing_check(buf, size, SMALLEST_MAX_HEAD, &again);
    check_result(buf, size, SMALLEST_MAX_HEAD, rs, &again);
    if (rs != UPD_FRAMING_TOO_LARGE) {
        FUZZ_CHECK(rs == r);
        if (r != UPD_FRAMING_INCOMPLETE)
            FUZZ_CHECK(same_info(&info, &again));
    }

    check_against_h2o(buf, size, r, &info);
    free(buf);
    return 0;
}
