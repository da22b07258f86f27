#ifndef UPD_ERR_H
#define UPD_ERR_H

/*
 * Error codes shared by every Updraft module. Functions that can fail return 0 on success and a
 * negative UPD_E* code on failure. New codes are appended, never renumbered.
 */
enum {
    UPD_ENOTFOUND = -30001, /* the named app, channel, release, file or key does not exist */
    UPD_EINVAL = -30002,    /* malformed input (id, version, JSON, header) */
    UPD_ESCHEMA = -30003,   /* the LMDB environment has another schema version */
    UPD_ESTORE = -30004,    /* LMDB failed (see the log line for the mdb_strerror text) */
    UPD_ETOOBIG = -30005,   /* a client-sized input or a fixed-size field overflowed its cap */
    UPD_ECONFLICT = -30006, /* the request conflicts with the current state (e.g. paused rollout) */
    UPD_EMISMATCH = -30007, /* content does not match what was declared (size, sha512) */
    UPD_EIO = -30008,       /* an I/O error on a file or socket; errno was logged */
    UPD_ENOMEM = -30009,    /* an allocation failed */
    UPD_EEXIST = -30010,    /* the object to create already exists */
    UPD_EAUTH = -30011,     /* missing or wrong credentials */
    UPD_EFORBIDDEN = -30012, /* credentials valid, role too weak */
    UPD_EBACKEND = -30013,   /* every object-storage backend tried failed (answered as 502) */
    UPD_EUNAVAILABLE = -30014, /* no backend may be tried now: every circuit breaker is open (503) */
    UPD_EINTEGRITY = -30015, /* bytes from object storage failed verification on every backend */
    UPD_EBUSY = -30016       /* too much work under way and its queue full: try again shortly (503) */
};
#define UPD_ELAST UPD_EBUSY /* the newest code (codes count down from UPD_ENOTFOUND) */

/**
 * Returns a static description of an error: a negative UPD_E* code, or a positive errno value.
 */
const char *upd_strerror(int err);

/*
 * Why a call failed, for callers that must explain it (an API answer, a CLI line): a stable machine code
 * ("size_mismatch", "paused") and a sentence for a person. The function that fails returns a negative UPD_E* code as
 * always and fills the reason beside it; the HTTP status is derived from the UPD_E* code alone
 * (server/http_error.h), so no code below the HTTP surfaces deals in statuses. Never put a secret in a reason.
 */
#define UPD_REASON_CODE_MAX 48
typedef struct st_upd_reason_t {
    char code[UPD_REASON_CODE_MAX]; /* "" when the UPD_E* code says all (the mapping then names it) */
    char message[1024]; /* the longest refusal the control API words (a backend error on a 200-byte file name) fits */
} upd_reason_t;

/**
 * Fills r (NULL is fine) with code (NULL: none) and a printf-style message, truncated to fit.
 * @return err, so that a refusal reads `return upd_reason_set(r, UPD_EMISMATCH, "size_mismatch", "...", ...);`
 */
int upd_reason_set(upd_reason_t *r, int err, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
