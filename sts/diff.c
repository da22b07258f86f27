/* Placeholder: the summary names the generation only and nothing counts as a reduction (so nothing is auto-signed). */
#include "sts/diff.h"

#include <string.h>

int
upd_sts_diff(const char *app, const char *prev, size_t prev_len, const char *next, size_t next_len, upd_sts_diff_t *out,
             upd_reason_t *why)
{
    json_t *doc = json_loadb(next, next_len, JSON_REJECT_DUPLICATES, NULL);
    const char *doc_app;
    json_int_t gen;
    out->summary = NULL;
    out->reduces_only = false;
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        return upd_reason_set(why, UPD_EINVAL, "invalid_document", "the document is not a JSON object");
    }
    doc_app = json_string_value(json_object_get(doc, "app"));
    gen = json_integer_value(json_object_get(doc, "generation"));
    if (json_integer_value(json_object_get(doc, "format")) != 1 || doc_app == NULL || strcmp(doc_app, app) != 0 || gen <= 0) {
        json_decref(doc);
        return upd_reason_set(why, UPD_EINVAL, "invalid_document", "not a state document of %s (format 1, app, generation > 0)", app);
    }
    out->summary = json_array();
    json_array_append_new(out->summary, json_sprintf("%s: generation %lld (summary pending)", app, (long long)gen));
    json_decref(doc);
    return 0;
}

void
upd_sts_diff_dispose(upd_sts_diff_t *d)
{
    json_decref(d->summary);
    d->summary = NULL;
}
