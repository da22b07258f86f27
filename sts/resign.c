#include "sts/resign.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "domain/state_sig.h"

struct st_upd_sts_resign_t {
    upd_sts_t *sts;
    uint64_t check_s;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool stop;
};

static int
collect_due(const void *key, size_t key_len, const void *val, size_t val_len, void *arg)
{
    json_t **ctx = arg; /* [0] the due list, [1] the threshold as an integer */
    json_t *rec = json_loadb(val, val_len, 0, NULL);
    if (rec != NULL && json_integer_value(json_object_get(rec, "expires")) < json_integer_value(ctx[1]))
        json_array_append_new(ctx[0], json_stringn(key, key_len));
    json_decref(rec);
    return 0;
}

int
upd_sts_resign_pass(upd_sts_t *sts)
{
    int64_t now = (int64_t)time(NULL), expires = now + (int64_t)sts->conf->sts_signing_ttl_s;
    json_t *ctx[2] = {json_array(), json_integer((json_int_t)(now + (int64_t)sts->conf->sts_resign_before_s))};
    upd_sts_txn_t *txn = NULL;
    size_t i;
    json_t *app;
    int ret, done = 0;

    if ((ret = upd_sts_txn_begin(sts->store, true, &txn)) != 0)
        goto Exit;
    if ((ret = upd_sts_each(txn, UPD_STS_DB_SIGNED, NULL, 0, collect_due, ctx)) != 0)
        goto Exit;
    json_array_foreach(ctx[0], i, app)
    {
        const char *name = json_string_value(app);
        json_t *rec = NULL, *audit;
        const void *doc;
        size_t doc_len, env_len;
        char *env = NULL;
        upd_reason_t why = {"", ""};
        if ((ret = upd_sts_get_json(txn, UPD_STS_DB_SIGNED, name, strlen(name), &rec)) != 0 ||
            (ret = upd_sts_get(txn, UPD_STS_DB_SIGNED_DOCS, name, strlen(name), &doc, &doc_len)) != 0) {
            json_decref(rec);
            goto Exit;
        }
        uint64_t gen = (uint64_t)json_integer_value(json_object_get(rec, "generation"));
        if ((ret = upd_state_sig_sign(sts->key, name, gen, expires, doc, doc_len, &env, &env_len, &why)) != 0) {
            upd_log_error("re-sign %s: %s", name, why.message);
            json_decref(rec);
            goto Exit;
        }
        json_object_set_new(rec, "expires", json_integer((json_int_t)expires));
        json_object_set_new(rec, "envelope", json_stringn(env, env_len));
        json_object_set_new(rec, "signed_at", json_integer((json_int_t)now));
        free(env);
        audit = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "action", "resign", "actor", "timer", "app", name, "generation",
                          (json_int_t)gen, "expires", (json_int_t)expires, "outcome", "ok");
        ret = upd_sts_put_json(txn, UPD_STS_DB_SIGNED, name, strlen(name), rec);
        if (ret == 0)
            ret = audit != NULL ? upd_sts_audit_append(txn, audit, NULL) : UPD_ENOMEM;
        json_decref(rec);
        json_decref(audit);
        if (ret != 0)
            goto Exit;
        ++done;
    }
    if (done == 0)
        goto Exit; /* nothing written: the abort below ends it */
    ret = upd_sts_txn_commit(txn);
    txn = NULL;
    if (ret == 0) {
        sts->resigns += (uint64_t)done;
        sts->signatures += (uint64_t)done;
        upd_log_info("re-signed %d app state(s), now valid until %lld", done, (long long)expires);
    }
Exit:
    upd_sts_txn_abort(txn);
    json_decref(ctx[0]);
    json_decref(ctx[1]);
    return ret != 0 ? ret : done;
}

static void *
run(void *arg)
{
    upd_sts_resign_t *r = arg;
    pthread_mutex_lock(&r->mutex);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mutex);
        upd_sts_resign_pass(r->sts);
        pthread_mutex_lock(&r->mutex);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)r->check_s;
        while (!r->stop && pthread_cond_timedwait(&r->cond, &r->mutex, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&r->mutex);
    return NULL;
}

upd_sts_resign_t *
upd_sts_resign_start(upd_sts_t *sts, uint64_t check_s)
{
    upd_sts_resign_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->sts = sts;
    r->check_s = check_s != 0 ? check_s : 60;
    pthread_mutex_init(&r->mutex, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (pthread_create(&r->thread, NULL, run, r) != 0) {
        upd_log_error("re-sign: cannot start its thread");
        pthread_mutex_destroy(&r->mutex);
        pthread_cond_destroy(&r->cond);
        free(r);
        return NULL;
    }
    return r;
}

void
upd_sts_resign_stop(upd_sts_resign_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mutex);
    r->stop = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mutex);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mutex);
    pthread_cond_destroy(&r->cond);
    free(r);
}
