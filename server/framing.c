#include "server/framing.h"
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 §5.6.2 token characters (ALPHA, DIGIT and "!#$%&'*+-.^_`|~"), one bit per ASCII code */
static const uint64_t tchar_bits[2] = {0x03ff6cfa00000000ull, 0x57ffffffc7fffffeull};

static inline bool
is_tchar(unsigned char c)
{
    return c < 128 && (tchar_bits[c >> 6] >> (c & 63) & 1) != 0;
}

static int
name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/*
 * The head nearly every client sends: "GET " or "HEAD ", a target, " HTTP/1.1" (or 1.0), every line ending in CRLF, header
 * names of token characters each followed by its colon, one Host, no Content-Length and no Transfer-Encoding. For such a head
 * this answers true and fills info exactly as check_full would answer OK; for anything else (including what it merely does
 * not expect) it answers false and the full check decides. So it can refuse nothing on its own, and every refusal stays
 * check_full's. One pass: the name scan finds the colon, one memchr the end of each line; values are never looked at.
 */
static bool
check_fast(const char *buf, size_t len, size_t max_head, upd_framing_info_t *info)
{
    /* a head that fits ends within lim; one that does not is the full check's to call too large */
    const char *p = buf, *lim = buf + (len < max_head ? len : max_head);
    size_t method_len;
    if (lim - p >= 4 && memcmp(p, "GET ", 4) == 0)
        method_len = 3;
    else if (lim - p >= 5 && memcmp(p, "HEAD ", 5) == 0)
        method_len = 4;
    else
        return false;
    const char *eol = memchr(p, '\n', lim - p);
    /* "METHOD SP target SP HTTP/1.x CR": a target of at least one byte between the two spaces */
    if (eol == NULL || eol - p < (ptrdiff_t)method_len + 12 || eol[-1] != '\r')
        return false;
    const char *version = eol - 10;
    if (memcmp(version, " HTTP/1.", 8) != 0 || (version[8] != '0' && version[8] != '1'))
        return false;

    int hosts = 0;
    for (p = eol + 1;;) {
        if (lim - p < 2)
            return false;
        if (p[0] == '\r' && p[1] == '\n')
            break; /* the blank line */
        const char *name = p;
        while (p < lim && is_tchar((unsigned char)*p))
            ++p;
        /* an empty name, a bare LF, folding, a space before the colon: the full check's cases */
        if (p == name || p == lim || *p != ':')
            return false;
        size_t name_len = p - name;
        if ((eol = memchr(p, '\n', lim - p)) == NULL || eol[-1] != '\r')
            return false;
        if (name_len == 4) {
            hosts += (name[0] | 0x20) == 'h' && (name[1] | 0x20) == 'o' && (name[2] | 0x20) == 's' && (name[3] | 0x20) == 't';
        } else if ((name_len == 14 && strncasecmp(name, "content-length", 14) == 0) ||
                   (name_len == 17 && strncasecmp(name, "transfer-encoding", 17) == 0)) {
            return false; /* a body on an update check is rare: its rules are the full check's */
        }
        p = eol + 1;
    }
    if (hosts != 1)
        return false;
    info->head_len = (size_t)(p + 2 - buf);
    info->content_length = -1;
    info->transfer_encoding = 0;
    info->minor_version = version[8] - '0';
    return true;
}

/* Every rule, line by line: the verdict for whatever check_fast does not accept. */
static upd_framing_result_t
check_full(const char *buf, size_t len, size_t max_head, upd_framing_info_t *info)
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

upd_framing_result_t
upd_framing_check(const char *buf, size_t len, size_t max_head, upd_framing_info_t *info)
{
    return check_fast(buf, len, max_head, info) ? UPD_FRAMING_OK : check_full(buf, len, max_head, info);
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
