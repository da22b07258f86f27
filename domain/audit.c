/* Audit records and their hash chain (domain/audit.h). */
#include "domain/audit.h"
#include <openssl/evp.h>
#include <stdint.h>
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

/* ---- times ---- */

/* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil) */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* n decimal digits at s. @return false when one is not a digit */
static bool
digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

int
upd_audit_time_parse(const char *s, size_t len, int64_t *ms)
{
    unsigned y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0;
    if (len == 0)
        return UPD_EINVAL;
    size_t ndigits = 0;
    while (ndigits < len && s[ndigits] >= '0' && s[ndigits] <= '9')
        ++ndigits;
    /* len bytes, not a C string: a bounded scan (strspn would read past an unterminated buffer) */
    if (ndigits == len) {
        /* Unix seconds: up to 9999-12-31 */
        if (len > 12)
            return UPD_EINVAL;
        int64_t v = 0;
        for (size_t i = 0; i < len; ++i)
            v = v * 10 + (s[i] - '0');
        if (v > 253402300799)
            return UPD_EINVAL;
        *ms = v * 1000;
        return 0;
    }
    /* YYYY-MM-DDTHH:MM:SS, then .FRACTION, then Z or +HH:MM / -HH:MM */
    if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return UPD_EINVAL;
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 60)
        return UPD_EINVAL;
    size_t i = 19;
    if (s[i] == '.') {
        size_t n = 0;
        for (++i; i < len && s[i] >= '0' && s[i] <= '9'; ++i, ++n)
            if (n < 3)
                frac = frac * 10 + (unsigned)(s[i] - '0');
        if (n == 0)
            return UPD_EINVAL;
        for (; n < 3; ++n)
            frac *= 10;
    }
    int sign = 0;
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        sign = 0;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 2, &oh) && s[i + 3] == ':' &&
               digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59) {
        sign = s[i] == '+' ? 1 : -1;
    } else {
        return UPD_EINVAL;
    }
    if (sec == 60)
        sec = 59; /* a leap second: the instant before the next minute */
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - sign * (int64_t)(oh * 3600 + om * 60);
    *ms = t * 1000 + frac;
    return 0;
}

bool
upd_audit_rec_time(const json_t *rec, int64_t *ms)
{
    const char *t = json_string_value(json_object_get(rec, "time"));
    return t != NULL && upd_audit_time_parse(t, strlen(t), ms) == 0;
}

/* ---- segments ---- */

void
upd_audit_segment_name(uint64_t first, uint64_t last, char out[UPD_AUDIT_SEGMENT_NAME_MAX + 1])
{
    snprintf(out, UPD_AUDIT_SEGMENT_NAME_MAX + 1, UPD_AUDIT_SEGMENT_PREFIX "%020llu-%020llu.jsonl", (unsigned long long)first,
             (unsigned long long)last);
}

static bool
seq20(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 20; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned dgt = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            return false;
        v = v * 10 + dgt;
    }
    *out = v;
    return true;
}

bool
upd_audit_segment_parse_name(const char *key, size_t len, uint64_t *first, uint64_t *last)
{
    static const char prefix[] = UPD_AUDIT_SEGMENT_PREFIX;
    const size_t pl = sizeof(prefix) - 1;
    if (len != UPD_AUDIT_SEGMENT_NAME_MAX || memcmp(key, prefix, pl) != 0 || key[pl + 20] != '-' ||
        memcmp(key + pl + 41, ".jsonl", 6) != 0)
        return false;
    uint64_t f, l;
    if (!seq20(key + pl, &f) || !seq20(key + pl + 21, &l) || f == 0 || f > l)
        return false;
    *first = f;
    *last = l;
    return true;
}

int
upd_audit_seg_reader_init(upd_audit_seg_reader_t *r, int (*on_record)(const char *rec, size_t len, void *arg), void *arg)
{
    memset(r, 0, sizeof(*r));
    r->on_record = on_record;
    r->arg = arg;
    return (r->line = malloc(UPD_AUDIT_RECORD_MAX)) != NULL ? 0 : UPD_ENOMEM;
}

int
upd_audit_seg_reader_feed(upd_audit_seg_reader_t *r, const void *data, size_t len)
{
    const char *p = data, *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = (size_t)((nl != NULL ? nl : end) - p);
        if (take > UPD_AUDIT_RECORD_MAX - r->len)
            return UPD_ETOOBIG;
        memcpy(r->line + r->len, p, take);
        r->len += take;
        p += take;
        if (nl == NULL)
            break;
        ++p; /* the "\n" */
        size_t n = r->len;
        r->len = 0;
        ++r->records;
        int ret = r->on_record(r->line, n, r->arg);
        if (ret != 0)
            return ret;
    }
    return 0;
}

int
upd_audit_seg_reader_end(upd_audit_seg_reader_t *r)
{
    return r->len == 0 ? 0 : UPD_EINVAL;
}

void
upd_audit_seg_reader_dispose(upd_audit_seg_reader_t *r)
{
    free(r->line);
    r->line = NULL;
}

/* ---- the query ---- */

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes s[0..len) into out (cap bytes with the NUL). @return false on a bad escape, a NUL or too long */
static bool
pct_decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return false;
            if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
                return false;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0' || n + 1 >= cap)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

/* dst holds cap bytes; the caller checked that src fits */
static void
copy_in(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static bool
is_action(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= UPD_AUDIT_ACTION_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static bool
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20 || strspn(s, "0123456789") != n)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int
upd_audit_filter_parse(const char *query, size_t len, upd_audit_filter_t *f, upd_reason_t *why)
{
    static const char *const names[] = {"app", "actor", "action", "outcome", "since", "before", "limit"};
    unsigned seen = 0;
    memset(f, 0, sizeof(*f));
    f->limit = UPD_AUDIT_QUERY_LIMIT_DEFAULT;
    const char *p = query, *end = query != NULL ? query + len : NULL;
    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pend = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        if (pend == p) {
            p = pend + 1;
            continue; /* "&&" */
        }
        char name[16], value[128];
        if (eq == NULL || !pct_decode(p, (size_t)(eq - p), name, sizeof(name)))
            return upd_reason_set(why, UPD_EINVAL, "invalid", "query: expected NAME=VALUE parameters (app, actor, action, outcome, "
                                                              "since, before, limit)");
        size_t k = 0;
        while (k < sizeof(names) / sizeof(names[0]) && strcmp(names[k], name) != 0)
            ++k;
        if (k == sizeof(names) / sizeof(names[0]))
            return upd_reason_set(why, UPD_EINVAL, "invalid", "query: unknown parameter \"%s\" (app, actor, action, outcome, since, "
                                                              "before, limit)", name);
        if (seen & (1u << k))
            return upd_reason_set(why, UPD_EINVAL, "invalid", "query: %s given twice", name);
        seen |= 1u << k;
        if (!pct_decode(eq + 1, (size_t)(pend - eq - 1), value, sizeof(value)))
            return upd_reason_set(why, UPD_EINVAL, "invalid", "%s: malformed or too long", name);
        uint64_t n;
        switch (k) {
        case 0:
            if (!upd_id_is_app(value, strlen(value)))
                return upd_reason_set(why, UPD_EINVAL, "invalid", "app: expected [a-z0-9][a-z0-9-]{0,62}");
            copy_in(f->app, sizeof(f->app), value);
            break;
        case 1:
            if (!upd_id_is_app(value, strlen(value)))
                return upd_reason_set(why, UPD_EINVAL, "invalid", "actor: expected a member id or a key id");
            copy_in(f->actor, sizeof(f->actor), value);
            break;
        case 2:
            if (!is_action(value))
                return upd_reason_set(why, UPD_EINVAL, "invalid", "action: expected an action such as release.create");
            copy_in(f->action, sizeof(f->action), value);
            break;
        case 3:
            if (strcmp(value, "ok") != 0 && strcmp(value, "denied") != 0 && strcmp(value, "failed") != 0)
                return upd_reason_set(why, UPD_EINVAL, "invalid", "outcome: expected ok, denied or failed");
            copy_in(f->outcome, sizeof(f->outcome), value);
            break;
        case 4:
            if (upd_audit_time_parse(value, strlen(value), &f->since_ms) != 0)
                return upd_reason_set(why, UPD_EINVAL, "invalid",
                                      "since: expected Unix seconds or an RFC 3339 time (2026-12-02T06:35:33Z)");
            f->has_since = true;
            break;
        case 5:
            if (!parse_u64(value, UINT64_MAX, &n) || n == 0)
                return upd_reason_set(why, UPD_EINVAL, "invalid", "before: expected a sequence number (1 and up)");
            f->before = n;
            break;
        default:
            if (!parse_u64(value, UPD_AUDIT_QUERY_LIMIT_MAX, &n) || n == 0)
                return upd_reason_set(why, UPD_EINVAL, "invalid", "limit: expected 1 to %d", UPD_AUDIT_QUERY_LIMIT_MAX);
            f->limit = (size_t)n;
            break;
        }
        p = pend + 1;
    }
    return 0;
}

static bool
str_is(const json_t *v, const char *s)
{
    const char *t = json_string_value(v);
    return t != NULL && strcmp(t, s) == 0;
}

bool
upd_audit_filter_match(const upd_audit_filter_t *f, const json_t *rec)
{
    if (f->app[0] != '\0' && !str_is(json_object_get(json_object_get(rec, "target"), "app"), f->app))
        return false;
    if (f->actor[0] != '\0') {
        const json_t *actor = json_object_get(rec, "actor");
        if (!str_is(json_object_get(actor, "member"), f->actor) && !str_is(json_object_get(actor, "key"), f->actor))
            return false;
    }
    if (f->action[0] != '\0' && !str_is(json_object_get(rec, "action"), f->action))
        return false;
    if (f->outcome[0] != '\0' && !str_is(json_object_get(rec, "outcome"), f->outcome))
        return false;
    int64_t t;
    if (f->has_since && (!upd_audit_rec_time(rec, &t) || t < f->since_ms))
        return false;
    return true;
}

int
upd_audit_seg_list_add(upd_audit_seg_list_t *l, const char *key, size_t len)
{
    upd_audit_seg_t s;
    if (len > UPD_AUDIT_SEGMENT_NAME_MAX || !upd_audit_segment_parse_name(key, len, &s.first, &s.last))
        return 0;
    memcpy(s.key, key, len);
    s.key[len] = '\0';
    if (l->n == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 64;
        upd_audit_seg_t *p = realloc(l->segs, cap * sizeof(*p));
        if (p == NULL)
            return UPD_ENOMEM;
        l->segs = p;
        l->cap = cap;
    }
    l->segs[l->n++] = s;
    return 0;
}

static int
seg_cmp(const void *a, const void *b)
{
    const upd_audit_seg_t *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return x->last < y->last ? -1 : x->last > y->last ? 1 : 0;
}

void
upd_audit_seg_list_sort(upd_audit_seg_list_t *l)
{
    if (l->n > 1)
        qsort(l->segs, l->n, sizeof(l->segs[0]), seg_cmp);
}
