/* API keys: "upd_<id>_<secret>". The id finds the record; the secret is checked against its stored
 * SHA-256 with a constant-time comparison, so neither timing nor a stolen database reveals a key. */
#include "control/keys.h"
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "control/api_error.h"
#include "base/hex.h"
#include "base/log.h"
#include "control/members.h"

#define SECRET_BYTES 32
#define SECRET_B64 43
#define EXPIRES_MAX_SECONDS (10 * 366 * 86400LL) /* a key's lifetime: ten years at most */

static const char *const role_names[] = {NULL, "build", "release", "admin"};

int
upd_role_parse(const char *s)
{
    for (int i = 1; i <= 3; ++i)
        if (strcmp(s, role_names[i]) == 0)
            return i;
    return -1;
}

const char *
upd_role_name(upd_role_t r)
{
    return r >= UPD_ROLE_BUILD && r <= UPD_ROLE_ADMIN ? role_names[r] : "none";
}

bool
upd_keys_is_id(const char *s, size_t len)
{
    if (len != UPD_KEY_ID_HEX)
        return false;
    for (size_t i = 0; i < len; ++i)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

upd_role_t
upd_keys_effective_role(const char *key_app, upd_role_t key_role, const json_t *owner_roles, const char *app)
{
    /* the key's own scope: everywhere, or its one app (never account-wide) */
    bool everywhere = strcmp(key_app, "*") == 0;
    upd_role_t r = everywhere || (app != NULL && strcmp(key_app, app) == 0) ? key_role : UPD_ROLE_NONE;
    if (owner_roles != NULL) {
        upd_role_t owner = upd_members_role_on(owner_roles, app);
        if (owner < r)
            r = owner;
    }
    return r;
}

int
upd_keys_parse_expires(const char *s, int64_t now, int64_t *out)
{
    size_t len = strlen(s), digits = strspn(s, "0123456789");
    if (len == 0 || digits == 0 || digits > 12 || (digits != len && digits + 1 != len))
        return UPD_EINVAL;
    long long n = strtoll(s, NULL, 10);
    if (digits == len) {
        /* Unix seconds */
        if (n <= now)
            return UPD_EINVAL;
        *out = n;
        return 0;
    }
    long long unit;
    switch (s[digits]) {
    case 'd':
        unit = 86400;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'm':
        unit = 60;
        break;
    default:
        return UPD_EINVAL;
    }
    if (n == 0 || n > EXPIRES_MAX_SECONDS / unit)
        return UPD_EINVAL;
    *out = now + n * unit;
    return 0;
}

static void
sha256(const char *data, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

/* ---- records ---- */

/* A time of the record: Unix seconds, 0 for absent or null. */
static int64_t
rec_time(const json_t *rec, const char *name)
{
    json_t *v = json_object_get(rec, name);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static json_t *
time_or_null(int64_t t)
{
    return t != 0 ? json_integer((json_int_t)t) : json_null();
}

static const char *
rec_member(const json_t *rec)
{
    const char *m = json_string_value(json_object_get(rec, "member"));
    return m != NULL && m[0] != '\0' ? m : NULL;
}

static const char *
rec_app(const json_t *rec)
{
    const char *a = json_string_value(json_object_get(rec, "app"));
    return a != NULL ? a : "*";
}

static json_t *
listing_of(const json_t *rec, int64_t last_used)
{
    const char *id = json_string_value(json_object_get(rec, "id")), *name = json_string_value(json_object_get(rec, "name"));
    const char *role = json_string_value(json_object_get(rec, "role")), *member = rec_member(rec);
    if (id == NULL || role == NULL)
        return NULL;
    int64_t stored = rec_time(rec, "last_used");
    return json_pack("{s:s, s:s, s:o, s:s, s:s, s:I, s:o, s:o, s:o}", "id", id, "name", name != NULL ? name : "", "member",
                     member != NULL ? json_string(member) : json_null(), "app", rec_app(rec), "role", role, "created",
                     (json_int_t)rec_time(rec, "created"), "expires", time_or_null(rec_time(rec, "expires")), "revoked",
                     time_or_null(rec_time(rec, "revoked")), "last_used", time_or_null(last_used > stored ? last_used : stored));
}

json_t *
upd_keys_listing(const char *json, size_t len, int64_t last_used)
{
    json_t *rec = json_loadb(json, len, 0, NULL);
    json_t *l = json_is_object(rec) ? listing_of(rec, last_used) : NULL;
    json_decref(rec);
    return l;
}

/* The record of a key, parsed. @return 0, UPD_ENOTFOUND, UPD_EINVAL */
static int
key_get(upd_store_txn_t *txn, const char *key_id, json_t **rec)
{
    const char *text;
    size_t len;
    int err = upd_store_key_get(txn, key_id, &text, &len);
    if (err != 0)
        return err;
    *rec = json_loadb(text, len, 0, NULL);
    if (!json_is_object(*rec)) {
        json_decref(*rec);
        *rec = NULL;
        return UPD_EINVAL;
    }
    return 0;
}

static int
key_put(upd_store_txn_t *txn, const char *key_id, const json_t *rec)
{
    char *text = json_dumps(rec, JSON_COMPACT);
    if (text == NULL)
        return UPD_ENOMEM;
    int err = upd_store_key_replace(txn, key_id, text);
    free(text);
    return err;
}

int
upd_keys_create(upd_store_txn_t *txn, const upd_key_spec_t *spec, int64_t now, char *key, size_t cap, json_t **listing)
{
    unsigned char id[UPD_KEY_ID_HEX / 2], secret[SECRET_BYTES], digest[32];
    char id_hex[UPD_KEY_ID_HEX + 1], secret_b64[64], digest_hex[65];
    if (listing != NULL)
        *listing = NULL;
    if (spec->name == NULL || spec->name[0] == '\0' || strlen(spec->name) > UPD_KEY_NAME_MAX)
        return UPD_EINVAL;
    if (RAND_bytes(id, sizeof(id)) != 1 || RAND_bytes(secret, sizeof(secret)) != 1)
        return UPD_EIO;
    upd_hex_encode(id, sizeof(id), id_hex);
    int n = EVP_EncodeBlock((unsigned char *)secret_b64, secret, sizeof(secret));
    OPENSSL_cleanse(secret, sizeof(secret));
    /* base64url without padding: the key travels in headers and shells unquoted */
    while (n > 0 && secret_b64[n - 1] == '=')
        secret_b64[--n] = '\0';
    for (int i = 0; i < n; ++i)
        secret_b64[i] = secret_b64[i] == '+' ? '-' : secret_b64[i] == '/' ? '_' : secret_b64[i];
    sha256(secret_b64, (size_t)n, digest);
    upd_hex_encode(digest, sizeof(digest), digest_hex);
    int written = snprintf(key, cap, "upd_%s_%s", id_hex, secret_b64);
    OPENSSL_cleanse(secret_b64, sizeof(secret_b64));
    if (written < 0 || (size_t)written >= cap) {
        OPENSSL_cleanse(key, cap);
        return UPD_ETOOBIG;
    }

    json_t *rec =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", id_hex, "name", spec->name, "app", spec->app != NULL ? spec->app : "*",
                  "role", upd_role_name(spec->role), "sha256", digest_hex, "created", (json_int_t)now);
    if (rec == NULL)
        return UPD_ENOMEM;
    if (spec->member != NULL)
        json_object_set_new(rec, "member", json_string(spec->member));
    if (spec->expires != 0)
        json_object_set_new(rec, "expires", json_integer((json_int_t)spec->expires));
    char *text = json_dumps(rec, JSON_COMPACT);
    int err = text != NULL ? upd_store_key_put(txn, id_hex, text) : UPD_ENOMEM;
    if (err == 0 && listing != NULL)
        *listing = listing_of(rec, 0);
    free(text);
    json_decref(rec);
    if (err != 0)
        OPENSSL_cleanse(key, cap);
    return err;
}

int
upd_keys_authorize(upd_store_txn_t *txn, const char *key, size_t len, const char *app, upd_principal_t *out)
{
    memset(out, 0, sizeof(*out));
    out->refusal = "unauthorized";
    /* upd_ + 16 hex + _ + 43 base64url */
    if (len != UPD_KEY_LEN || memcmp(key, "upd_", 4) != 0 || key[4 + UPD_KEY_ID_HEX] != '_' ||
        !upd_keys_is_id(key + 4, UPD_KEY_ID_HEX))
        return UPD_EAUTH;
    memcpy(out->key_id, key + 4, UPD_KEY_ID_HEX);
    out->key_id[UPD_KEY_ID_HEX] = '\0';
    json_t *rec = NULL, *owner = NULL;
    if (key_get(txn, out->key_id, &rec) != 0)
        return UPD_EAUTH;
    const char *stored = json_string_value(json_object_get(rec, "sha256"));
    const char *role_name = json_string_value(json_object_get(rec, "role"));
    const char *key_app = rec_app(rec), *member = rec_member(rec);
    int ret = UPD_EAUTH, role = role_name != NULL ? upd_role_parse(role_name) : -1;
    if (stored == NULL || strlen(stored) != 64 || role < 0 || strlen(key_app) > UPD_ID_MAX ||
        (member != NULL && strlen(member) > UPD_ID_MAX))
        goto Exit;
    unsigned char digest[32];
    char digest_hex[65];
    sha256(key + 4 + UPD_KEY_ID_HEX + 1, SECRET_B64, digest);
    upd_hex_encode(digest, sizeof(digest), digest_hex);
    if (CRYPTO_memcmp(digest_hex, stored, 64) != 0)
        goto Exit;
    /* the secret is right: from here on the refusal may say why */
    strcpy(out->key_app, key_app);
    out->key_role = (upd_role_t)role;
    if (member != NULL)
        strcpy(out->member, member);
    if (rec_time(rec, "revoked") != 0) {
        out->refusal = "revoked";
        goto Exit;
    }
    int64_t expires = rec_time(rec, "expires");
    if (expires != 0 && (int64_t)time(NULL) >= expires) {
        out->refusal = "expired";
        goto Exit;
    }
    /* removing a member revokes their keys; a key whose owner is gone all the same is as good as revoked */
    if (member != NULL && upd_members_get(txn, member, &owner) != 0) {
        out->refusal = "revoked";
        goto Exit;
    }
    out->role = upd_keys_effective_role(key_app, out->key_role, member != NULL ? json_object_get(owner, "roles") : NULL, app);
    out->refusal = NULL;
    ret = 0;
Exit:
    json_decref(owner);
    json_decref(rec);
    return ret;
}

int
upd_keys_revoke(upd_store_txn_t *txn, const char *key_id, int64_t now, json_t **listing)
{
    json_t *rec;
    if (listing != NULL)
        *listing = NULL;
    int err = key_get(txn, key_id, &rec);
    if (err != 0)
        return err;
    if (rec_time(rec, "revoked") != 0) {
        json_decref(rec);
        return UPD_ECONFLICT;
    }
    json_object_set_new(rec, "revoked", json_integer((json_int_t)now));
    if ((err = key_put(txn, key_id, rec)) == 0 && listing != NULL)
        *listing = listing_of(rec, 0);
    json_decref(rec);
    return err;
}

typedef struct {
    const char *member;
    json_t *ids;
} of_member_t;

static int
collect_of_member(const char *key_id, const char *json, size_t len, void *arg)
{
    of_member_t *m = arg;
    json_t *rec = json_loadb(json, len, 0, NULL);
    const char *owner = rec_member(rec);
    if (owner != NULL && strcmp(owner, m->member) == 0 && rec_time(rec, "revoked") == 0)
        json_array_append_new(m->ids, json_string(key_id));
    json_decref(rec);
    return 0;
}

int
upd_keys_revoke_member(upd_store_txn_t *txn, const char *member, int64_t now, size_t *n)
{
    /* the ids first, then the writes: no record is rewritten under the walk's cursor */
    of_member_t m = {member, json_array()};
    int err = upd_store_key_list(txn, collect_of_member, &m);
    *n = 0;
    size_t i;
    json_t *id;
    json_array_foreach(m.ids, i, id)
    {
        if (err != 0)
            break;
        if ((err = upd_keys_revoke(txn, json_string_value(id), now, NULL)) == 0)
            ++*n;
    }
    json_decref(m.ids);
    return err;
}

/* ---- last use ---- */

typedef struct {
    char id[UPD_KEY_ID_HEX + 1]; /* "" for a free slot */
    int64_t used;                /* the last use noted (Unix seconds) */
    int64_t stored;              /* the last use written */
    int64_t stored_at_ms;        /* when it was written (Unix ms), 0 never */
} use_t;

struct st_upd_key_uses_t {
    upd_store_t *store;
    uint64_t interval_ms;
    size_t max;
    pthread_mutex_t mutex;
    pthread_cond_t cond; /* the writer waits on it (CLOCK_MONOTONIC) for an interval or a use due at once */
    use_t *slots;        /* open addressing, linear probing, a power of two at least twice max */
    size_t cap, count, dirty;
    bool started, stopping, due_now;
    pthread_t thread;
    uint64_t written, dropped, failures;
};

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

upd_key_uses_t *
upd_key_uses_create(upd_store_t *store, uint64_t interval_ms, size_t max)
{
    upd_key_uses_t *u = calloc(1, sizeof(*u));
    if (u == NULL)
        abort();
    u->store = store;
    u->interval_ms = interval_ms != 0 ? interval_ms : 1;
    u->max = max != 0 ? max : 1;
    for (u->cap = 16; u->cap < 2 * u->max; u->cap *= 2)
        ;
    if ((u->slots = calloc(u->cap, sizeof(*u->slots))) == NULL)
        abort();
    pthread_mutex_init(&u->mutex, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&u->cond, &ca);
    pthread_condattr_destroy(&ca);
    return u;
}

/* ids are random hex digits: folded and mixed, they spread over the slots */
static size_t
slot_of(const upd_key_uses_t *u, const char *id)
{
    uint64_t h = 0;
    for (int i = 0; i < UPD_KEY_ID_HEX && id[i] != '\0'; ++i)
        h = h * 31 + (unsigned char)id[i];
    h ^= h >> 29;
    return (size_t)(h * 0x9e3779b97f4a7c15ULL) & (u->cap - 1);
}

/* The slot of id, or the free slot where it would go. Under the mutex. */
static use_t *
find(upd_key_uses_t *u, const char *id)
{
    for (size_t i = slot_of(u, id);; i = (i + 1) & (u->cap - 1))
        if (u->slots[i].id[0] == '\0' || strcmp(u->slots[i].id, id) == 0)
            return &u->slots[i];
}

/* Forgets the uses already written, to make room: the slots are laid out again. Under the mutex. */
static void
compact(upd_key_uses_t *u)
{
    use_t *old = u->slots;
    if ((u->slots = calloc(u->cap, sizeof(*u->slots))) == NULL)
        abort();
    u->count = 0;
    for (size_t i = 0; i < u->cap; ++i) {
        if (old[i].id[0] == '\0' || old[i].used <= old[i].stored)
            continue;
        *find(u, old[i].id) = old[i];
        ++u->count;
    }
    free(old);
}

static bool
is_due(const upd_key_uses_t *u, const use_t *e, int64_t at_ms, bool all)
{
    return e->used > e->stored && (all || at_ms - e->stored_at_ms >= (int64_t)u->interval_ms);
}

void
upd_key_uses_note(upd_key_uses_t *u, const char *key_id, int64_t now)
{
    if (u == NULL || !upd_keys_is_id(key_id, strlen(key_id)))
        return;
    pthread_mutex_lock(&u->mutex);
    use_t *e = find(u, key_id);
    if (e->id[0] == '\0') {
        if (u->count >= u->max && u->dirty < u->count) {
            compact(u);
            e = find(u, key_id);
        }
        if (u->count >= u->max) {
            ++u->dropped;
            pthread_mutex_unlock(&u->mutex);
            return;
        }
        memcpy(e->id, key_id, UPD_KEY_ID_HEX + 1);
        ++u->count;
    }
    if (now > e->used) {
        if (e->used <= e->stored)
            ++u->dirty;
        e->used = now;
        if (is_due(u, e, now_ms(), false)) {
            u->due_now = true;
            pthread_cond_signal(&u->cond);
        }
    }
    pthread_mutex_unlock(&u->mutex);
}

int64_t
upd_key_uses_last(upd_key_uses_t *u, const char *key_id)
{
    if (u == NULL || !upd_keys_is_id(key_id, strlen(key_id)))
        return 0;
    pthread_mutex_lock(&u->mutex);
    const use_t *e = find(u, key_id);
    int64_t t = e->id[0] != '\0' ? e->used : 0;
    pthread_mutex_unlock(&u->mutex);
    return t;
}

typedef struct {
    char id[UPD_KEY_ID_HEX + 1];
    int64_t used;
} pending_t;

int
upd_key_uses_flush(upd_key_uses_t *u, bool all)
{
    if (u == NULL)
        return 0;
    /* what is due, copied: the loop goes on noting uses while this thread writes */
    pthread_mutex_lock(&u->mutex);
    int64_t at = now_ms();
    u->due_now = false;
    size_t n = 0;
    pending_t *p = u->dirty != 0 ? malloc(u->dirty * sizeof(*p)) : NULL;
    for (size_t i = 0; i < u->cap && n < u->dirty; ++i) {
        use_t *e = &u->slots[i];
        if (e->id[0] != '\0' && is_due(u, e, at, all)) {
            memcpy(p[n].id, e->id, sizeof(p[n].id));
            p[n++].used = e->used;
        }
    }
    pthread_mutex_unlock(&u->mutex);
    if (n == 0) {
        free(p);
        return 0;
    }

    upd_store_txn_t *txn;
    int err = upd_store_write_begin(u->store, &txn);
    for (size_t i = 0; i < n && err == 0; ++i) {
        json_t *rec;
        int e = key_get(txn, p[i].id, &rec);
        if (e != 0)
            continue; /* a key removed meanwhile, or a corrupt record: nothing to note its use in */
        if (p[i].used > rec_time(rec, "last_used")) {
            json_object_set_new(rec, "last_used", json_integer((json_int_t)p[i].used));
            err = key_put(txn, p[i].id, rec);
        }
        json_decref(rec);
    }
    if (err == 0)
        err = upd_store_commit(txn);
    else if (txn != NULL)
        upd_store_txn_end(txn);

    pthread_mutex_lock(&u->mutex);
    if (err == 0) {
        at = now_ms();
        for (size_t i = 0; i < n; ++i) {
            use_t *e = find(u, p[i].id);
            if (e->id[0] == '\0')
                continue;
            if (e->used > e->stored && p[i].used >= e->used)
                --u->dirty; /* clean now, unless a newer use came meanwhile */
            if (p[i].used > e->stored)
                e->stored = p[i].used;
            e->stored_at_ms = at;
        }
        u->written += n;
    } else {
        ++u->failures;
    }
    pthread_mutex_unlock(&u->mutex);
    if (err != 0)
        upd_log_error("keys: the last use of %zu keys could not be written: %s (retried)", n, upd_strerror(err));
    free(p);
    return err;
}

static void *
run_writer(void *arg)
{
    upd_key_uses_t *u = arg;
    pthread_mutex_lock(&u->mutex);
    while (!u->stopping) {
        if (!u->due_now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (u->interval_ms % 1000) * 1000000;
            ts.tv_sec += (time_t)(u->interval_ms / 1000 + ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&u->cond, &u->mutex, &ts);
        }
        if (u->stopping)
            break;
        pthread_mutex_unlock(&u->mutex);
        upd_key_uses_flush(u, false);
        pthread_mutex_lock(&u->mutex);
    }
    pthread_mutex_unlock(&u->mutex);
    return NULL;
}

int
upd_key_uses_start(upd_key_uses_t *u)
{
    if (u == NULL || u->started)
        return 0;
    int rc = pthread_create(&u->thread, NULL, run_writer, u);
    if (rc != 0) {
        upd_log_error("keys: the last-use writer thread could not start: %s", strerror(rc));
        return UPD_EIO;
    }
    u->started = true;
    return 0;
}

void
upd_key_uses_stop(upd_key_uses_t *u)
{
    if (u == NULL)
        return;
    if (u->started) {
        pthread_mutex_lock(&u->mutex);
        u->stopping = true;
        pthread_cond_signal(&u->cond);
        pthread_mutex_unlock(&u->mutex);
        pthread_join(u->thread, NULL);
        u->started = false;
    }
    upd_key_uses_flush(u, true);
}

void
upd_key_uses_destroy(upd_key_uses_t *u)
{
    if (u == NULL)
        return;
    upd_key_uses_stop(u);
    pthread_cond_destroy(&u->cond);
    pthread_mutex_destroy(&u->mutex);
    free(u->slots);
    free(u);
}

void
upd_key_uses_render_metrics(upd_key_uses_t *u, FILE *fp)
{
    if (u == NULL)
        return;
    pthread_mutex_lock(&u->mutex);
    size_t count = u->count;
    uint64_t written = u->written, dropped = u->dropped, failures = u->failures;
    pthread_mutex_unlock(&u->mutex);
    fprintf(fp,
            "# HELP updraft_key_uses_tracked API keys whose last use is held in memory.\n"
            "# TYPE updraft_key_uses_tracked gauge\n"
            "updraft_key_uses_tracked %zu\n"
            "# HELP updraft_key_uses_written_total Last uses of API keys written to their records.\n"
            "# TYPE updraft_key_uses_written_total counter\n"
            "updraft_key_uses_written_total %" PRIu64 "\n"
            "# HELP updraft_key_uses_dropped_total Uses of API keys not noted: the table was full of uses not yet written.\n"
            "# TYPE updraft_key_uses_dropped_total counter\n"
            "updraft_key_uses_dropped_total %" PRIu64 "\n"
            "# HELP updraft_key_uses_write_failures_total Writes of last uses that failed (retried).\n"
            "# TYPE updraft_key_uses_write_failures_total counter\n"
            "updraft_key_uses_write_failures_total %" PRIu64 "\n",
            count, written, dropped, failures);
}

/* ---- the API's calls ---- */

static int
fail(upd_reason_t *reason, int err, const char *code, const char *msg)
{
    return upd_reason_set(reason, err, code, "%s", msg);
}

/* A JSON string of 1..max bytes without NUL, or NULL. */
static const char *
string_field(json_t *v, size_t max)
{
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
        memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
        return NULL;
    return json_string_value(v);
}

static void
audit_scope(upd_audit_ctx_t *audit, const char *app, const char *role)
{
    upd_audit_detail(audit, "scope", json_pack("{s:s, s:s}", "app", app, "role", role));
}

int
upd_keys_call_create(upd_control_t *c, upd_audit_ctx_t *audit, const upd_principal_t *who, json_t *body, json_t **out,
                     upd_reason_t *reason)
{
    const char *name = NULL, *member = NULL, *app = NULL, *k;
    int role = -1;
    int64_t now = (int64_t)time(NULL), expires = 0;
    json_t *v;
    *out = NULL;
    json_object_foreach(body, k, v)
    {
        bool null = json_is_null(v);
        if (strcmp(k, "name") == 0) {
            if ((name = string_field(v, UPD_KEY_NAME_MAX)) == NULL)
                return fail(reason, UPD_EINVAL, "invalid", "name: expected a string of 1-64 bytes");
        } else if (strcmp(k, "member") == 0) {
            if (!null && ((member = string_field(v, UPD_ID_MAX)) == NULL || !upd_id_is_app(member, strlen(member))))
                return fail(reason, UPD_EINVAL, "invalid", "member: expected a member id ([a-z0-9][a-z0-9-]{0,62}) or null");
        } else if (strcmp(k, "app") == 0) {
            if (!null &&
                ((app = string_field(v, UPD_ID_MAX)) == NULL || (strcmp(app, "*") != 0 && !upd_id_is_app(app, strlen(app)))))
                return fail(reason, UPD_EINVAL, "invalid", "app: expected \"*\" or an app id ([a-z0-9][a-z0-9-]{0,62})");
        } else if (strcmp(k, "role") == 0) {
            if (!null && (!json_is_string(v) || (role = upd_role_parse(json_string_value(v))) < 0))
                return fail(reason, UPD_EINVAL, "invalid", "role: expected build, release or admin");
        } else if (strcmp(k, "expires") == 0) {
            int bad = 0;
            if (json_is_integer(v))
                bad = (expires = (int64_t)json_integer_value(v)) <= now;
            else if (json_is_string(v))
                bad = upd_keys_parse_expires(json_string_value(v), now, &expires) != 0;
            else if (!null)
                bad = 1;
            if (bad)
                return fail(
                    reason, UPD_EINVAL, "invalid",
                    "expires: expected a duration (\"90d\", \"12h\", \"30m\", at most ten years) or Unix seconds after now");
        } else {
            return upd_reason_set(reason, UPD_EINVAL, "invalid", "%s: unknown field (name, member, app, role, expires)", k);
        }
    }
    if (name == NULL)
        return fail(reason, UPD_EINVAL, "invalid", "name: required (1-64 bytes)");

    if (who->role == UPD_ROLE_ADMIN) {
        if (app == NULL)
            app = "*";
        if (member == NULL && (strcmp(app, "*") == 0 || role < 0))
            return fail(reason, UPD_EINVAL, "invalid",
                        "a service key (no member) names one app (not \"*\") and a role: give member, or app and role");
        if (role < 0)
            role = UPD_ROLE_ADMIN; /* a member's key does what its owner may, unless narrowed */
    } else {
        /* any other key: a key of its own member, no wider than itself */
        if (who->member[0] == '\0')
            return upd_reason_set(reason, UPD_EFORBIDDEN, "forbidden",
                                  "creating a key needs the admin role account-wide; the key has %s", upd_role_name(who->role));
        if (member != NULL && strcmp(member, who->member) != 0)
            return upd_reason_set(reason, UPD_EFORBIDDEN, "forbidden",
                                  "a key of another member needs the admin role account-wide; the key has %s",
                                  upd_role_name(who->role));
        member = who->member;
        if (app == NULL)
            app = who->key_app;
        if (strcmp(who->key_app, "*") != 0 && strcmp(app, who->key_app) != 0)
            return upd_reason_set(reason, UPD_EFORBIDDEN, "forbidden",
                                  "the key is scoped to app %s: it may create keys for that app only", who->key_app);
        if (role < 0)
            role = (int)who->key_role;
        if (role > (int)who->key_role)
            return upd_reason_set(reason, UPD_EFORBIDDEN, "forbidden", "the key's role is %s: it may not create a key of role %s",
                                  upd_role_name(who->key_role), upd_role_name((upd_role_t)role));
    }

    upd_store_txn_t *txn;
    int err = upd_store_write_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    const char *data;
    size_t len;
    if (member != NULL && upd_store_member_get(txn, member, &data, &len) != 0) {
        err = upd_reason_set(reason, UPD_EMISMATCH, "unknown_member", "member: no member %s", member);
        goto Exit;
    }
    if (strcmp(app, "*") != 0 && upd_store_app_get(txn, app, &data, &len) != 0) {
        err = upd_reason_set(reason, UPD_EMISMATCH, "unknown_app", "app: no app %s", app);
        goto Exit;
    }
    upd_key_spec_t spec = {name, member, app, (upd_role_t)role, expires};
    char key[UPD_KEY_LEN + 1];
    json_t *listing;
    if ((err = upd_keys_create(txn, &spec, now, key, sizeof(key), &listing)) != 0) {
        err = err == UPD_EIO ? fail(reason, UPD_EIO, "entropy", "no random bytes for the key") : upd_api_store_fail(reason, err);
        goto Exit;
    }
    snprintf(audit->target_key, sizeof(audit->target_key), "%s", json_string_value(json_object_get(listing, "id")));
    snprintf(audit->target_member, sizeof(audit->target_member), "%s", member != NULL ? member : "");
    if (strcmp(app, "*") != 0)
        snprintf(audit->app, sizeof(audit->app), "%s", app);
    audit_scope(audit, app, upd_role_name((upd_role_t)role));
    upd_audit_detail(audit, "name", json_string(name));
    upd_audit_detail(audit, "expires", time_or_null(expires));
    if ((err = upd_audit_append(txn, audit)) == 0) {
        err = upd_store_commit(txn);
        txn = NULL;
    }
    if (err != 0) {
        OPENSSL_cleanse(key, sizeof(key));
        json_decref(listing);
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    upd_log_info("key %s created (%s on %s%s%s)", audit->target_key, upd_role_name((upd_role_t)role), app,
                 member != NULL ? " for " : ", a service key", member != NULL ? member : "");
    *out = json_pack("{s:s}", "key", key);
    json_object_update(*out, listing);
    json_decref(listing);
    OPENSSL_cleanse(key, sizeof(key));
    err = 0;
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    return err;
}

typedef struct {
    const char *member; /* NULL: every key */
    upd_key_uses_t *uses;
    json_t *keys;
} list_ctx_t;

static int
collect_listing(const char *key_id, const char *json, size_t len, void *arg)
{
    list_ctx_t *lc = arg;
    json_t *rec = json_loadb(json, len, 0, NULL);
    const char *owner = rec_member(rec);
    if (json_is_object(rec) && (lc->member == NULL || (owner != NULL && strcmp(owner, lc->member) == 0))) {
        json_t *l = listing_of(rec, upd_key_uses_last(lc->uses, key_id));
        if (l != NULL)
            json_array_append_new(lc->keys, l);
    }
    json_decref(rec);
    return 0;
}

/* The listings of every key (member NULL) or of one member's, in id order. */
static int
list_keys(upd_store_txn_t *txn, upd_key_uses_t *uses, const char *member, json_t **keys)
{
    list_ctx_t lc = {member, uses, json_array()};
    int err = upd_store_key_list(txn, collect_listing, &lc);
    if (err != 0) {
        json_decref(lc.keys);
        return err;
    }
    *keys = lc.keys;
    return 0;
}

int
upd_keys_call_list(upd_control_t *c, const char *query, json_t **out, upd_reason_t *reason)
{
    char member[UPD_ID_MAX + 1] = "";
    *out = NULL;
    /* "member=M": the only parameter; ids need no percent-decoding (their grammar has nothing to escape) */
    for (const char *q = query != NULL ? query : ""; *q != '\0';) {
        size_t len = strcspn(q, "&");
        if (len > 7 && memcmp(q, "member=", 7) == 0 && len - 7 <= UPD_ID_MAX && upd_id_is_app(q + 7, len - 7)) {
            memcpy(member, q + 7, len - 7);
            member[len - 7] = '\0';
        } else if (len != 0) {
            return fail(reason, UPD_EINVAL, "invalid", "query: expected member=ID ([a-z0-9][a-z0-9-]{0,62}) or nothing");
        }
        q += len;
        q += *q == '&';
    }
    upd_store_txn_t *txn;
    int err = upd_store_read_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    json_t *keys;
    err = list_keys(txn, c->key_uses, member[0] != '\0' ? member : NULL, &keys);
    upd_store_txn_end(txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    *out = json_pack("{s:o}", "keys", keys);
    return 0;
}

int
upd_keys_call_revoke(upd_control_t *c, upd_audit_ctx_t *audit, const upd_principal_t *who, const char *key_id, json_t **out,
                     upd_reason_t *reason)
{
    json_t *rec = NULL, *listing = NULL;
    *out = NULL;
    snprintf(audit->target_key, sizeof(audit->target_key), "%s", key_id);
    upd_store_txn_t *txn;
    int err = upd_store_write_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    if ((err = key_get(txn, key_id, &rec)) != 0) {
        err = err == UPD_ENOTFOUND ? upd_reason_set(reason, err, "not_found", "no key %s", key_id) : upd_api_store_fail(reason, err);
        goto Exit;
    }
    const char *owner = rec_member(rec);
    snprintf(audit->target_member, sizeof(audit->target_member), "%s", owner != NULL ? owner : "");
    if (who->role != UPD_ROLE_ADMIN && (who->member[0] == '\0' || owner == NULL || strcmp(owner, who->member) != 0)) {
        err =
            upd_reason_set(reason, UPD_EFORBIDDEN, "forbidden",
                           "revoking a key of another needs the admin role account-wide; the key has %s", upd_role_name(who->role));
        goto Exit;
    }
    if ((err = upd_keys_revoke(txn, key_id, (int64_t)time(NULL), &listing)) != 0) {
        if (err == UPD_ECONFLICT)
            upd_reason_set(reason, err, "revoked", "key %s was already revoked", key_id);
        else
            err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    const char *app = rec_app(rec);
    if (strcmp(app, "*") != 0)
        snprintf(audit->app, sizeof(audit->app), "%s", app);
    audit_scope(audit, app, json_string_value(json_object_get(rec, "role")));
    if ((err = upd_audit_append(txn, audit)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    err = upd_store_commit(txn);
    txn = NULL;
    if (err != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    upd_log_info("key %s revoked", key_id);
    *out = listing;
    listing = NULL;
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    json_decref(listing);
    json_decref(rec);
    return err;
}

int
upd_keys_call_login(upd_control_t *c, upd_audit_ctx_t *audit, const upd_principal_t *who, json_t **out, upd_reason_t *reason)
{
    json_t *rec = NULL, *member = NULL;
    *out = NULL;
    snprintf(audit->target_key, sizeof(audit->target_key), "%s", who->key_id);
    snprintf(audit->target_member, sizeof(audit->target_member), "%s", who->member);
    upd_store_txn_t *txn;
    int err = upd_store_write_begin(c->store, &txn);
    if (err != 0)
        return upd_api_store_fail(reason, err);
    if ((err = key_get(txn, who->key_id, &rec)) != 0 ||
        (who->member[0] != '\0' && (err = upd_members_get(txn, who->member, &member)) != 0)) {
        /* checked on the loop a moment ago: gone meanwhile */
        err = upd_reason_set(reason, UPD_EAUTH, "revoked", "the key was revoked");
        goto Exit;
    }
    audit_scope(audit, who->key_app, upd_role_name(who->key_role));
    if ((err = upd_audit_append(txn, audit)) != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    err = upd_store_commit(txn);
    txn = NULL;
    if (err != 0) {
        err = upd_api_store_fail(reason, err);
        goto Exit;
    }
    *out = json_pack("{s:o, s:o}", "key", listing_of(rec, upd_key_uses_last(c->key_uses, who->key_id)), "member",
                     member != NULL ? json_incref(member) : json_null());
    err = 0;
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    json_decref(member);
    json_decref(rec);
    return err;
}
