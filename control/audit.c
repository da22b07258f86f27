/* The audit trail's writer (control/audit.h). */
#include "control/audit.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/err.h"
#include "base/log.h"

#define HEAD_NAME "audit_head"

void
upd_audit_ctx_dispose(upd_audit_ctx_t *ctx)
{
    json_decref(ctx->detail);
    ctx->detail = NULL;
}

void
upd_audit_detail(upd_audit_ctx_t *ctx, const char *name, json_t *value)
{
    if (value == NULL)
        return;
    if (ctx->detail == NULL)
        ctx->detail = json_object();
    json_object_set_new(ctx->detail, name, value);
}

int
upd_audit_head(upd_store_txn_t *txn, uint64_t *seq, char hash[UPD_AUDIT_HASH_HEX + 1])
{
    const char *data;
    size_t len;
    int err = upd_store_meta_get(txn, HEAD_NAME, &data, &len);
    if (err == UPD_ENOTFOUND) {
        *seq = 0;
        memcpy(hash, upd_audit_genesis, sizeof(upd_audit_genesis));
        return 0;
    }
    if (err != 0)
        return err;
    /* "SEQ HASH": decimal sequence number, one space, 64 hex digits */
    char buf[96];
    unsigned long long s;
    if (len >= sizeof(buf))
        return UPD_EINVAL;
    memcpy(buf, data, len);
    buf[len] = '\0';
    if (sscanf(buf, "%llu %64s", &s, hash) != 2 || strlen(hash) != UPD_AUDIT_HASH_HEX)
        return UPD_EINVAL;
    *seq = s;
    return 0;
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
append(upd_store_txn_t *txn, upd_audit_ctx_t *ctx, const char *outcome, int status, const char *error)
{
    upd_audit_rec_t r = {
        .time_ms = now_ms(),
        .host = ctx->host,
        .member = ctx->member,
        .key = ctx->key,
        .source = ctx->source,
        .user_agent = ctx->user_agent,
        .request_id = ctx->request_id,
        .action = ctx->action[0] != '\0' ? ctx->action : "unknown",
        .app = ctx->app,
        .channel = ctx->channel,
        .version = ctx->version,
        .target_member = ctx->target_member,
        .target_key = ctx->target_key,
        .outcome = outcome,
        .error = error,
        .status = status,
        .detail = ctx->detail,
    };
    uint64_t head;
    int err = upd_audit_head(txn, &head, r.prev);
    if (err != 0) {
        upd_log_error("audit: the chain's head in the store is unreadable (%s): nothing can be recorded", upd_strerror(err));
        return err;
    }
    r.seq = head + 1;
    size_t len;
    char *rec = upd_audit_encode(&r, &len);
    if (rec == NULL)
        return UPD_ENOMEM;
    char hash[UPD_AUDIT_HASH_HEX + 1], head_val[96];
    if (!upd_audit_hash(rec, len, hash)) {
        free(rec);
        return UPD_ENOMEM;
    }
    int n = snprintf(head_val, sizeof(head_val), "%" PRIu64 " %s", r.seq, hash);
    if ((err = upd_store_audit_put(txn, r.seq, rec, len)) == 0)
        err = upd_store_meta_put(txn, HEAD_NAME, head_val, (size_t)n);
    free(rec);
    if (err == 0)
        ctx->recorded = true;
    return err;
}

int
upd_audit_append(upd_store_txn_t *txn, upd_audit_ctx_t *ctx)
{
    return append(txn, ctx, "ok", ctx->status, NULL);
}

int
upd_audit_record(upd_store_t *store, upd_audit_ctx_t *ctx, const char *outcome, int status, const char *error)
{
    upd_store_txn_t *txn;
    int err = upd_store_write_begin(store, &txn);
    if (err == 0) {
        if ((err = append(txn, ctx, outcome, status, error)) == 0)
            err = upd_store_commit(txn);
        else
            upd_store_txn_end(txn);
    }
    if (err != 0)
        upd_log_error("%s: audit: the record of %s (%d %s) could not be written: %s", ctx->request_id, ctx->action, status,
                      error != NULL ? error : "", upd_strerror(err));
    return err;
}
