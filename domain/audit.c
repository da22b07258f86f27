/* Audit records and their hash chain (domain/audit.h). */
#include "domain/audit.h"
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/hex.h"

const char upd_audit_genesis[UPD_AUDIT_HASH_HEX + 1] = "0000000000000000000000000000000000000000000000000000000000000000";

void
upd_audit_time(int64_t time_ms, char out[25])
{
    time_t t = (time_t)(time_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 25, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 25 - n, ".%03uZ", (unsigned)(time_ms % 1000) % 1000u);
}

static json_t *
str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *
to_json(const upd_audit_rec_t *r, bool with_detail)
{
    char time[25];
    upd_audit_time(r->time_ms, time);
    json_t *actor = json_pack("{s:b, s:o, s:o}", "host", r->host, "member", str_or_null(r->member), "key", str_or_null(r->key));
    json_t *target = json_pack("{s:o, s:o, s:o, s:o, s:o}", "app", str_or_null(r->app), "channel", str_or_null(r->channel),
                               "version", str_or_null(r->version), "member", str_or_null(r->target_member), "key",
                               str_or_null(r->target_key));
    json_t *detail = r->detail != NULL && with_detail ? json_deep_copy(r->detail)
                     : r->detail != NULL              ? json_pack("{s:b}", "truncated", 1)
                                                      : json_null();
    /* json_string refuses invalid UTF-8 (a User-Agent may be anything): such a value is recorded as null */
    return json_pack("{s:s, s:o, s:o, s:o, s:s, s:s, s:o, s:I, s:o, s:i, s:o, s:s, s:o}", "action", r->action, "actor", actor,
                     "detail", detail, "error", str_or_null(r->error), "outcome", r->outcome, "prev", r->prev, "request_id",
                     str_or_null(r->request_id), "seq", (json_int_t)r->seq, "source", str_or_null(r->source), "status", r->status,
                     "target", target, "time", time, "user_agent", str_or_null(r->user_agent));
}

char *
upd_audit_encode(const upd_audit_rec_t *r, size_t *len)
{
    for (int with_detail = 1; with_detail >= 0; --with_detail) {
        json_t *j = to_json(r, with_detail);
        if (j == NULL)
            return NULL;
        char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        json_decref(j);
        if (text == NULL)
            return NULL;
        *len = strlen(text);
        if (*len <= UPD_AUDIT_RECORD_MAX || r->detail == NULL)
            return text;
        free(text);
    }
    return NULL;
}

bool
upd_audit_hash(const char *rec, size_t len, char hex[UPD_AUDIT_HASH_HEX + 1])
{
    unsigned char md[32];
    unsigned int n = sizeof(md);
    if (EVP_Digest(rec, len, md, &n, EVP_sha256(), NULL) != 1)
        return false;
    upd_hex_encode(md, sizeof(md), hex);
    return true;
}

int
upd_audit_check(const char *rec, size_t len, uint64_t seq, const char prev[UPD_AUDIT_HASH_HEX + 1], upd_reason_t *why)
{
    json_error_t jerr;
    json_t *j = json_loadb(rec, len, JSON_REJECT_DUPLICATES, &jerr);
    int ret = UPD_EINVAL;
    if (j == NULL || !json_is_object(j)) {
        upd_reason_set(why, UPD_EINVAL, "malformed", "record %llu is not a JSON object", (unsigned long long)seq);
        goto Exit;
    }
    /* canonical: the same bytes come out again, so a record cannot carry a second meaning in its white space */
    char *again = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    bool canonical = again != NULL && strlen(again) == len && memcmp(again, rec, len) == 0;
    free(again);
    json_t *s = json_object_get(j, "seq");
    const char *p = json_string_value(json_object_get(j, "prev"));
    if (!canonical || !json_is_integer(s) || p == NULL || json_string_value(json_object_get(j, "action")) == NULL ||
        json_string_value(json_object_get(j, "outcome")) == NULL) {
        upd_reason_set(why, UPD_EINVAL, "malformed", "record %llu is not a canonical audit record", (unsigned long long)seq);
        goto Exit;
    }
    if ((uint64_t)json_integer_value(s) != seq) {
        upd_reason_set(why, UPD_EINVAL, "seq", "record %llu says it is record %lld", (unsigned long long)seq,
                       (long long)json_integer_value(s));
        goto Exit;
    }
    if (strcmp(p, prev) != 0) {
        upd_reason_set(why, UPD_EINVAL, "chain", "record %llu does not follow record %llu: its prev is not that record's hash",
                       (unsigned long long)seq, (unsigned long long)(seq - 1));
        goto Exit;
    }
    ret = 0;
Exit:
    json_decref(j);
    return ret;
}
