#ifndef UPD_STS_DIFF_H
#define UPD_STS_DIFF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

/*
 * The approval service's own summary of a proposed state document: what changes against the last document it signed
 * for the app, one line each, and whether the change only reduces exposure (then it may be signed without a security
 * key: signing.auto_sign_reductions).
 */

typedef struct st_upd_sts_diff_t {
    json_t *summary;   /* array of strings, one line each, e.g. "acme / latest: 1.3.0 to 10% of clients (was 5%), 1.2.0 stays stable" */
    bool reduces_only; /* nothing is offered to anyone who was not offered it before */
} upd_sts_diff_t;
/** prev NULL: the app's first signed state. @return 0; UPD_EINVAL (not a state document of app: why) */
int upd_sts_diff(const char *app, const char *prev, size_t prev_len, const char *next, size_t next_len,
                 upd_sts_diff_t *out, upd_reason_t *why);
void upd_sts_diff_dispose(upd_sts_diff_t *d);

#endif
