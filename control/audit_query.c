/* The audit trail's query (control/audit_query.h). */
#include "control/audit_query.h"
#include <inttypes.h>
#include <string.h>
#include "base/log.h"
#include "domain/audit.h"

typedef struct {
    const upd_audit_filter_t *f;
    uint64_t scan_max, scanned;
    json_t *records;
    size_t found;
    uint64_t next_before; /* 0: null */
    bool scan_limited;
} scan_t;

/* newest first; 1 stops the walk */
static int
on_record(uint64_t seq, const char *rec, size_t len, void *arg)
{
    scan_t *s = arg;
    ++s->scanned;
    json_error_t jerr;
    json_t *j = json_loadb(rec, len, 0, &jerr);
    if (j == NULL || !json_is_object(j)) {
        /* only a damaged store holds one: `updraft-control audit verify` says which and why */
        upd_log_warn("audit: record %" PRIu64 " is not a JSON object: left out of the query's answer", seq);
        json_decref(j);
    } else {
        int64_t t;
        if (s->f->has_since && upd_audit_rec_time(j, &t) && t < s->f->since_ms) {
            json_decref(j);
            return 1; /* older than since, and so is every record before it */
        }
        if (upd_audit_filter_match(s->f, j)) {
            json_array_append_new(s->records, j);
            if (++s->found == s->f->limit) {
                s->next_before = seq > 1 ? seq : 0;
                return 1;
            }
        } else {
            json_decref(j);
        }
    }
    if (s->scanned == s->scan_max) {
        s->scan_limited = seq > 1;
        s->next_before = seq > 1 ? seq : 0;
        return 1;
    }
    return 0;
}

int
upd_audit_query(upd_store_t *store, const char *query, size_t len, uint64_t scan_max, json_t **out, upd_reason_t *why)
{
    upd_audit_filter_t f;
    *out = NULL;
    int err = upd_audit_filter_parse(query, len, &f, why);
    if (err != 0)
        return err;
    scan_t s = {.f = &f, .scan_max = scan_max != 0 ? scan_max : 1, .records = json_array()};
    if (s.records == NULL)
        return UPD_ENOMEM;
    upd_store_txn_t *txn;
    if ((err = upd_store_read_begin(store, &txn)) != 0) {
        json_decref(s.records);
        return err;
    }
    /* the walk starts at `from` itself: before - 1 (before is 1 and up), or the newest record */
    err = upd_store_audit_walk(txn, f.before != 0 ? f.before - 1 : UINT64_MAX, true, on_record, &s);
    upd_store_txn_end(txn);
    if (err != 0) {
        json_decref(s.records);
        return err;
    }
    *out = json_pack("{s:o, s:o}", "records", s.records,
                     "next_before", s.next_before != 0 ? json_integer((json_int_t)s.next_before) : json_null());
    if (*out == NULL)
        return UPD_ENOMEM;
    if (s.scan_limited)
        json_object_set_new(*out, "scan_limited", json_true());
    return 0;
}
