#ifndef UPD_AUDIT_REC_H
#define UPD_AUDIT_REC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

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

#endif
