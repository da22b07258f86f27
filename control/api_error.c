/* The control API's error body: one shape for every refusal, whichever file refuses. */
#include "control/api_error.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "base/log.h"

/* A message cut at a cap (here or in an upd_reason_t) may end inside a UTF-8 sequence, which jansson refuses: the
 * partial character goes. */
static void
trim_partial_utf8(char *s)
{
    size_t len = strlen(s), i = len;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
        --i;
    if (i == 0 || (unsigned char)s[i - 1] < 0xc0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    if (len - (i - 1) < need)
        s[i - 1] = '\0';
}

json_t *
upd_api_error(const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    trim_partial_utf8(msg);
    json_t *body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
    if (body == NULL) /* bytes that are not UTF-8 inside the message: the code alone still tells what happened */
        body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", "(message not valid UTF-8)");
    return body;
}

int
upd_api_store_fail(upd_reason_t *reason, int err)
{
    if (err == UPD_ENOTFOUND)
        return upd_reason_set(reason, UPD_ENOTFOUND, "not_found", "%s", upd_strerror(err));
    upd_log_error("store: %s", upd_strerror(err));
    return upd_reason_set(reason, UPD_ESTORE, "store_unavailable", "%s", upd_strerror(err));
}
