#ifndef UPD_AUDIT_REC_H
#define UPD_AUDIT_REC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "domain/ids.h"

/*
 * One audit record of the control plane, and the hash chain that binds the records together. A record is stored and
 * exported as the exact bytes upd_audit_encode() gives: canonical JSON (keys sorted, no white space), so that its
 * SHA-256 is well defined:
 *
 *   {"action":"release.create","actor":{"host":false,"key":"0123456789abcdef","member":"alice"},
 *    "detail":{...},"error":null,"outcome":"ok","prev":"<64 hex>","request_id":"...","seq":12,"source":"127.0.0.1",
 *    "status":201,"target":{"app":"acme","channel":"latest","key":null,"member":null,"version":"1.2.0"},
 *    "time":"2026-12-02T06:35:33.123Z","user_agent":"updraft-cli/1"}
 *
 * "prev" is the lower-case hex SHA-256 of the previous record's bytes (64 zeros before the first record, seq 1).
 * "outcome" is "ok", "denied" (401/403) or "failed" (any other refusal, with "error" its code).
 */

#define UPD_AUDIT_HASH_HEX 64
#define UPD_AUDIT_UA_MAX 256      /* a longer User-Agent is cut there */
#define UPD_AUDIT_SOURCE_MAX 64   /* an IPv6 address with its port fits */
#define UPD_AUDIT_ACTION_MAX 64
#define UPD_AUDIT_REQUEST_ID_MAX 64
#define UPD_AUDIT_RECORD_MAX 65536 /* an encoded record; detail is dropped (and marked) beyond */

/** The hash "prev" of the first record: 64 '0'. */
extern const char upd_audit_genesis[UPD_AUDIT_HASH_HEX + 1];

typedef struct st_upd_audit_rec_t {
    uint64_t seq;
    int64_t time_ms; /* Unix time in milliseconds */
    /* who: a key (with its member, "" for a service key), the host (the bootstrap command), or nobody (no valid key:
     * key is then the id the request claimed, "" when none) */
    bool host;
    const char *member, *key;
    const char *source, *user_agent, *request_id;
    const char *action;
    /* what it was about; NULL or "" for none */
    const char *app, *channel, *version, *target_member, *target_key;
    const char *outcome; /* "ok", "denied", "failed" */
    const char *error;   /* the error code for denied and failed; NULL for ok */
    int status;          /* the HTTP status answered (0 for the host's commands) */
    const json_t *detail; /* borrowed, NULL for none: what changed (a role, a percent), never a secret */
    char prev[UPD_AUDIT_HASH_HEX + 1];
} upd_audit_rec_t;

/**
 * Encodes a record (canonical JSON).
 * @return malloc'ed bytes (*len of them, NUL-terminated), NULL when out of memory
 */
char *upd_audit_encode(const upd_audit_rec_t *r, size_t *len);

/** The record's hash: lower-case hex SHA-256 of its bytes. @return false only when OpenSSL fails */
bool upd_audit_hash(const char *rec, size_t len, char hex[UPD_AUDIT_HASH_HEX + 1]);

/**
 * Checks one stored record: canonical JSON as upd_audit_encode() writes it, its "seq" the expected one, its "prev" the
 * previous record's hash.
 * @param why  code "malformed" (not a canonical record), "seq" or "chain", and a sentence naming the record
 * @return 0 or UPD_EINVAL
 */
int upd_audit_check(const char *rec, size_t len, uint64_t seq, const char prev[UPD_AUDIT_HASH_HEX + 1], upd_reason_t *why);

/** Formats Unix milliseconds as RFC 3339 UTC with milliseconds ("2026-12-02T06:35:33.123Z"); out holds 25 bytes. */
void upd_audit_time(int64_t time_ms, char out[25]);

/**
 * Parses a time as the audit query takes it: Unix seconds (decimal digits), or RFC 3339 ("2026-12-02T06:35:33Z",
 * "2026-12-02T06:35:33.123Z", "2026-12-02T08:35:33+02:00"; 't' and 'z' in lower case too), into Unix milliseconds.
 * @return 0 or UPD_EINVAL
 */
int upd_audit_time_parse(const char *s, size_t len, int64_t *ms);

/* ---- segments: the trail as exported to object storage ---- */

/*
 * A segment holds records first..last, in order, one a line: each record's stored bytes followed by "\n" (a record has
 * no raw line break: its JSON is encoded with \u escapes, JSON_ENSURE_ASCII). Its object key says which records:
 *
 *   _updraft/audit/<first, 20 digits>-<last, 20 digits>.jsonl
 *
 * so that listing the keys in byte order lists the segments in the chain's order.
 */
#define UPD_AUDIT_SEGMENT_PREFIX "_updraft/audit/"
#define UPD_AUDIT_SEGMENT_NAME_MAX (sizeof(UPD_AUDIT_SEGMENT_PREFIX) - 1 + 20 + 1 + 20 + 6)

/** Writes the segment key of records first..last. */
void upd_audit_segment_name(uint64_t first, uint64_t last, char out[UPD_AUDIT_SEGMENT_NAME_MAX + 1]);

/**
 * Reads a segment key (the whole key, prefix included). @return true, with first and last (1 <= first <= last), when it
 * is exactly the shape upd_audit_segment_name() writes
 */
bool upd_audit_segment_parse_name(const char *key, size_t len, uint64_t *first, uint64_t *last);

/**
 * Splits a segment into its records as its bytes arrive in pieces of any size (an object store's GET), holding at most
 * one record (UPD_AUDIT_RECORD_MAX bytes) at a time.
 */
typedef struct st_upd_audit_seg_reader_t {
    /* called for each complete line, without its "\n"; a non-zero return stops the reader and is returned by feed */
    int (*on_record)(const char *rec, size_t len, void *arg);
    void *arg;
    char *line; /* malloc'ed, UPD_AUDIT_RECORD_MAX bytes */
    size_t len;
    uint64_t records; /* lines handed to on_record so far */
} upd_audit_seg_reader_t;

/** @return 0 or UPD_ENOMEM */
int upd_audit_seg_reader_init(upd_audit_seg_reader_t *r, int (*on_record)(const char *rec, size_t len, void *arg), void *arg);
/** @return 0, on_record's non-zero return, or UPD_ETOOBIG (a line longer than UPD_AUDIT_RECORD_MAX) */
int upd_audit_seg_reader_feed(upd_audit_seg_reader_t *r, const void *data, size_t len);
/** After the last byte. @return 0, or UPD_EINVAL when bytes follow the last "\n" (a segment cut short) */
int upd_audit_seg_reader_end(upd_audit_seg_reader_t *r);
void upd_audit_seg_reader_dispose(upd_audit_seg_reader_t *r);

/** A segment as a listing names it. */
typedef struct st_upd_audit_seg_t {
    uint64_t first, last;
    char key[UPD_AUDIT_SEGMENT_NAME_MAX + 1];
} upd_audit_seg_t;

/** The segments of one store, as its listing is read; embedded, zeroed to start, freed with free(segs). */
typedef struct st_upd_audit_seg_list_t {
    upd_audit_seg_t *segs;
    size_t n, cap;
} upd_audit_seg_list_t;

/**
 * Adds a listed key when it is a segment's (upd_audit_segment_parse_name); any other key under the prefix (an exporter's
 * temporary file) is skipped. @return 0 or UPD_ENOMEM
 */
int upd_audit_seg_list_add(upd_audit_seg_list_t *l, const char *key, size_t len);

/** Sorts the list by first, then last record: the chain's order. */
void upd_audit_seg_list_sort(upd_audit_seg_list_t *l);

/* ---- the query of GET /v1/audit ---- */

#define UPD_AUDIT_QUERY_LIMIT_MAX 1000
#define UPD_AUDIT_QUERY_LIMIT_DEFAULT 100

/** Which records a query asks for; "" (or has_since false, before 0) for a filter not given. */
typedef struct st_upd_audit_filter_t {
    char app[UPD_ID_MAX + 1];
    char actor[UPD_ID_MAX + 1]; /* a member id or a key id */
    char action[UPD_AUDIT_ACTION_MAX + 1];
    char outcome[8];
    bool has_since;
    int64_t since_ms;
    uint64_t before; /* records with a lower sequence number only; 0: from the newest */
    size_t limit;
} upd_audit_filter_t;

/**
 * Parses a query string (without '?'; percent-encoded, '+' taken as itself): app, actor, action, outcome ("ok",
 * "denied", "failed"), since (upd_audit_time_parse), before (a sequence number, 1 and up), limit (1 to
 * UPD_AUDIT_QUERY_LIMIT_MAX, default UPD_AUDIT_QUERY_LIMIT_DEFAULT). An unknown, repeated or malformed parameter is
 * refused.
 * @param why  code "invalid" and a sentence naming the parameter
 * @return 0 or UPD_EINVAL
 */
int upd_audit_filter_parse(const char *query, size_t len, upd_audit_filter_t *f, upd_reason_t *why);

/** Whether a record (a parsed stored record) passes every filter but before and limit. */
bool upd_audit_filter_match(const upd_audit_filter_t *f, const json_t *rec);

/** The record's time ("time") in Unix milliseconds. @return false when it has none or it is malformed */
bool upd_audit_rec_time(const json_t *rec, int64_t *ms);

#endif
