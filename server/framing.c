#include "server/framing.h"
#include <string.h>
#include <strings.h>

static int
is_tchar(unsigned char c)
{
    /* RFC 9110 §5.6.2 token characters */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

upd_framing_result_t
upd_framing_check(const char *buf, size_t len, size_t max_head, upd_framing_info_t *info)
{
    info->head_len = 0;
    info->content_length = -1;
    info->transfer_encoding = 0;
    info->minor_version = -1;

    /* find the end of the head: an empty line (CRLF CRLF, or bare LF as picohttpparser accepts) */
    size_t end = 0, scan = len < max_head + 4 ? len : max_head + 4;
    for (size_t i = 0; i < scan; ++i) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n') {
            end = i + 2;
            break;
        }
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
            end = i + 3;
            break;
        }
    }
    if (end == 0)
        return scan < len || len > max_head ? UPD_FRAMING_TOO_LARGE : UPD_FRAMING_INCOMPLETE;
    if (end > max_head)
        return UPD_FRAMING_TOO_LARGE;
    info->head_len = end;

    /* request line */
    const char *p = buf, *head_end = buf + end;
    const char *eol = memchr(p, '\n', head_end - p);
    size_t line_len = eol - p;
    if (line_len > 0 && p[line_len - 1] == '\r')
        --line_len;
    const char *sp1 = memchr(p, ' ', line_len);
    if (sp1 == NULL || sp1 == p)
        return UPD_FRAMING_BAD_REQUEST_LINE;
    for (const char *m = p; m < sp1; ++m)
        if (!is_tchar((unsigned char)*m))
            return UPD_FRAMING_BAD_REQUEST_LINE;
    if (line_len < 9 || memcmp(p + line_len - 9, " HTTP/1.", 8) != 0 || p + line_len - 9 <= sp1)
        return UPD_FRAMING_BAD_REQUEST_LINE;
    char minor = p[line_len - 1];
    if (minor != '0' && minor != '1')
        return UPD_FRAMING_BAD_REQUEST_LINE;
    info->minor_version = minor - '0';

    /* header lines */
    int hosts = 0, cls = 0;
    for (p = eol + 1; p < head_end;) {
        eol = memchr(p, '\n', head_end - p);
        line_len = eol - p;
        if (line_len > 0 && p[line_len - 1] == '\r')
            --line_len;
        if (line_len == 0)
            break; /* the blank line */
        if (*p == ' ' || *p == '\t')
            return UPD_FRAMING_BAD_HEADER; /* obsolete line folding (RFC 9112 §5.2) */
        const char *colon = memchr(p, ':', line_len);
        if (colon == NULL || colon == p)
            return UPD_FRAMING_BAD_HEADER;
        for (const char *c = p; c < colon; ++c)
            if (!is_tchar((unsigned char)*c))
                return UPD_FRAMING_BAD_HEADER; /* includes "Content-Length :" with a space before the colon */
        size_t name_len = colon - p;
        const char *v = colon + 1, *v_end = p + line_len;
        while (v < v_end && (*v == ' ' || *v == '\t'))
            ++v;
        while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
            --v_end;
        if (name_is(p, name_len, "content-length")) {
            if (++cls > 1)
                return UPD_FRAMING_DUP_CONTENT_LENGTH;
            if (v == v_end || v_end - v > 18)
                return UPD_FRAMING_BAD_CONTENT_LENGTH;
            int64_t n = 0;
            for (const char *d = v; d < v_end; ++d) {
                if (*d < '0' || *d > '9')
                    return UPD_FRAMING_BAD_CONTENT_LENGTH;
                n = n * 10 + (*d - '0');
            }
            info->content_length = n;
        } else if (name_is(p, name_len, "transfer-encoding")) {
            info->transfer_encoding = 1;
        } else if (name_is(p, name_len, "host")) {
            ++hosts;
        }
        p = eol + 1;
    }
    if (info->content_length >= 0 && info->transfer_encoding)
        return UPD_FRAMING_CL_AND_TE;
    if (hosts > 1)
        return UPD_FRAMING_DUP_HOST;
    if (hosts == 0 && info->minor_version == 1)
        return UPD_FRAMING_NO_HOST;
    return UPD_FRAMING_OK;
}

const char *
upd_framing_reason(upd_framing_result_t r)
{
    static const char *const reasons[UPD_FRAMING_COUNT] = {
        "ok",
        "incomplete request head",
        "request head too large",
        "malformed request line",
        "malformed header line",
        "more than one Content-Length header",
        "malformed Content-Length",
        "Content-Length together with Transfer-Encoding",
        "HTTP/1.1 request without Host",
        "more than one Host header",
    };
    return (unsigned)r < UPD_FRAMING_COUNT ? reasons[r] : "unknown";
}
