#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *
upd_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case UPD_ENOTFOUND:
        return "not found";
    case UPD_EINVAL:
        return "malformed input";
    case UPD_ESCHEMA:
        return "store has another schema version";
    case UPD_ESTORE:
        return "store failure";
    case UPD_ETOOBIG:
        return "input too big";
    case UPD_ECONFLICT:
        return "conflicts with the current state";
    case UPD_EMISMATCH:
        return "content does not match what was declared";
    case UPD_EIO:
        return "I/O error";
    case UPD_ENOMEM:
        return "out of memory";
    case UPD_EEXIST:
        return "already exists";
    case UPD_EAUTH:
        return "missing or wrong credentials";
    case UPD_EBACKEND:
        return "object storage failed";
    case UPD_EUNAVAILABLE:
        return "object storage unavailable (circuit open)";
    case UPD_EINTEGRITY:
        return "object storage bytes failed verification";
    case UPD_EBUSY:
        return "too many backend fills under way and their queue is full; retry shortly";
    case UPD_EFORBIDDEN:
        return "forbidden for this role";
    default:
        break;
    }
    /* strerror() (not strerror_r) since the result must be static; glibc's table is, and for an unknown value it
     * returns a per-thread buffer, which is still fine for a log line. */
    if (err > 0)
        return strerror(err);
    return "unknown error";
}

int
upd_reason_set(upd_reason_t *r, int err, const char *code, const char *fmt, ...)
{
    if (r == NULL)
        return err;
    snprintf(r->code, sizeof(r->code), "%s", code != NULL ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
    return err;
}
