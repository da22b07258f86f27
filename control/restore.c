/* Rolling a restored environment forward from the object stores (control/restore.h). */
#include "control/restore.h"
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "base/err.h"
#include "base/log.h"
#include "control/audit.h"
#include "domain/state_doc.h"

#define MSG_MAX 512
#define HEAD_NAME "audit_head"      /* the chain head's meta name (control/audit.h) */
#define MARK_PREFIX "audit_export_" /* a store's export mark (control/audit_export.h) */

/* One line of progress; without a progress stream, a log line instead (at level warn for what went wrong). */
__attribute__((format(printf, 3, 4))) static void
line(FILE *progress, bool warn, const char *fmt, ...)
{
    char buf[1600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (progress != NULL) {
        fprintf(progress, "restore: %s\n", buf);
        fflush(progress);
    } else if (warn)
        upd_log_warn("restore: %s", buf);
    else
        upd_log_info("restore: %s", buf);
}

/* Appends id to a report's list, ", " between, "..." once it is full. */
static void
list_add(char *list, const char *id)
{
    size_t len = strlen(list), need = strlen(id) + (len != 0 ? 2 : 0);
    if (len + need + 3 > UPD_RESTORE_LIST_MAX) {
        if (len + 3 <= UPD_RESTORE_LIST_MAX && (len < 3 || strcmp(list + len - 3, "...") != 0))
            strcat(list, "...");
        return;
    }
    if (len != 0)
        strcat(list, ", ");
    strcat(list, id);
}

/* ---- documents: a capped buffer ---- */

typedef struct {
    char *buf;
    size_t len, cap, max;
    bool too_big;
} doc_t;

static int
to_doc(const void *data, size_t len, void *arg)
{
    doc_t *d = arg;
    if (len > d->max - d->len) {
        d->too_big = true;
        return 1;
    }
    if (d->len + len + 1 > d->cap) {
        size_t cap = d->cap != 0 ? d->cap : 65536;
        while (cap < d->len + len + 1)
            cap *= 2;
        char *p = realloc(d->buf, cap);
        if (p == NULL)
            return 1;
        d->buf = p;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, data, len);
    d->len += len;
    d->buf[d->len] = '\0';
    return 0;
}

/* GET of key into d (emptied first). @return 0, UPD_ENOTFOUND, UPD_EIO with msg */
static int
fetch(const upd_restore_source_t *s, const char *key, doc_t *d, char *msg, size_t cap)
{
    d->len = 0;
    d->too_big = false;
    if (d->buf != NULL)
        d->buf[0] = '\0';
    int r = s->get(s->ctx, key, to_doc, d, msg, cap);
    if (d->too_big) {
        snprintf(msg, cap, "%s is larger than %zu bytes (backup.restore_max_document_bytes)", key, d->max);
        return UPD_EIO;
    }
    return r;
}

/* ---- release state ---- */

/*
 * Rolls one app forward when a store lists it at a generation newer than the environment's.
 * @return 0 (rolled forward, up to date, or refused: reported), or UPD_ESTORE / UPD_ENOMEM
 */

/* The versions of an app's drafts, collected before any is deleted (no write under a cursor). */
typedef struct {
    char (*versions)[UPD_VERSION_MAX + 1];
    size_t n, cap;
} drafts_t;

static int
on_draft(const char *version, const char *json, size_t len, void *arg)
{
    (void)json;
    (void)len;
    drafts_t *d = arg;
    if (d->n == d->cap) {
        size_t cap = d->cap != 0 ? d->cap * 2 : 16;
        void *p = realloc(d->versions, cap * sizeof(*d->versions));
        if (p == NULL)
            return UPD_ENOMEM;
        d->versions = p;
        d->cap = cap;
    }
    snprintf(d->versions[d->n++], sizeof(d->versions[0]), "%s", version);
    return 0;
}

/*
 * A draft of the backup that was published after it is a release in the rolled-forward state: the draft goes (a version
 * is a draft or a release, never both).
 */
static int
drop_promoted_drafts(upd_store_txn_t *txn, const char *app, size_t *dropped)
{
    drafts_t d = {NULL, 0, 0};
    int err = upd_store_draft_list(txn, app, on_draft, &d);
    for (size_t i = 0; err == 0 && i < d.n; ++i) {
        upd_release_t rel = {0};
        if (upd_store_release_get(txn, app, d.versions[i], &rel) == 0) {
            upd_release_dispose(&rel);
            if ((err = upd_store_draft_del(txn, app, d.versions[i])) == 0)
                ++*dropped;
        }
    }
    free(d.versions);
    return err;
}

static int
roll_app(upd_store_t *store, const upd_restore_source_t *src, size_t n, const upd_state_index_t *ix, const bool *readable,
         const char *app, doc_t *doc, FILE *progress, upd_restore_report_t *rep, size_t *up_to_date)
{
    upd_store_txn_t *txn;
    uint64_t have = 0;
    const char *json;
    size_t json_len;
    int err = upd_store_read_begin(store, &txn);
    if (err != 0)
        return err;
    bool exists = upd_store_app_get(txn, app, &json, &json_len) == 0;
    if (exists && (err = upd_store_app_generation(txn, app, &have)) != 0) {
        upd_store_txn_end(txn);
        return err;
    }
    upd_store_txn_end(txn);

    /* the stores that list a newer generation, newest first (in the sources' order among equals) */
    size_t order[UPD_RESTORE_SOURCES_MAX], k = 0;
    uint64_t gen[UPD_RESTORE_SOURCES_MAX];
    for (size_t i = 0; i < n; ++i) {
        uint64_t g = readable[i] ? upd_state_index_get(&ix[i], app) : 0;
        if (g <= have)
            continue;
        size_t at = k++;
        for (; at > 0 && gen[at - 1] < g; --at) {
            gen[at] = gen[at - 1];
            order[at] = order[at - 1];
        }
        gen[at] = g;
        order[at] = i;
    }
    if (k == 0) {
        ++*up_to_date;
        return 0;
    }
    for (size_t c = 0; c < k; ++c) {
        const upd_restore_source_t *s = &src[order[c]];
        for (int variant = 0; variant < 2; ++variant) {
            char key[UPD_STATE_KEY_MAX], msg[MSG_MAX] = "";
            if (variant == 0)
                upd_state_latest_key(key, sizeof(key), app);
            else
                upd_state_doc_key(key, sizeof(key), app, gen[c]);
            int r = fetch(s, key, doc, msg, sizeof(msg));
            if (r != 0) {
                line(progress, true, "%s: %s: %s", app, s->name, r == UPD_ENOTFOUND ? "no such document" : msg);
                continue;
            }
            if ((err = upd_store_write_begin(store, &txn)) != 0)
                return err;
            uint64_t got = 0;
            upd_reason_t why = {"", ""};
            r = upd_store_app_import(txn, app, doc->buf, doc->len, &got, &why);
            if (r == 0 && got < gen[c]) {
                line(progress, true, "%s: %s: %s holds generation %" PRIu64 ", older than the %" PRIu64 " its index lists", app,
                     s->name, key, got, gen[c]);
                upd_store_txn_end(txn);
                continue;
            }
            if (r == UPD_EINVAL) {
                line(progress, true, "%s: %s: %s is refused: %s", app, s->name, key, why.message);
                upd_store_txn_end(txn);
                continue;
            }
            if (r != 0) {
                upd_log_error("restore: %s: importing %s from %s: %s", app, key, s->name,
                              why.message[0] != '\0' ? why.message : upd_strerror(r));
                upd_store_txn_end(txn);
                return r == UPD_ENOMEM ? r : UPD_ESTORE;
            }
            size_t promoted = 0;
            if ((r = drop_promoted_drafts(txn, app, &promoted)) != 0) {
                upd_store_txn_end(txn);
                return r;
            }
            if ((r = upd_store_commit(txn)) != 0) /* the transaction is freed either way */
                return r;
            line(progress, false, "%s: generation %" PRIu64 " -> %" PRIu64 " from %s%s", app, have, got, s->name,
                 exists ? "" : " (an app the backup lacks)");
            if (promoted != 0)
                line(progress, false, "%s: %zu draft%s published since the backup dropped (now releases)", app, promoted,
                     promoted == 1 ? "" : "s");
            ++rep->apps_rolled;
            return 0;
        }
    }
    if (exists)
        line(progress, true,
             "%s: left at the backup's generation %" PRIu64 ": no store's document of generation %" PRIu64 " was accepted", app,
             have, gen[0]);
    else
        line(progress, true, "%s: not restored (the backup lacks it): no store's document of generation %" PRIu64 " was accepted",
             app, gen[0]);
    ++rep->apps_refused;
    list_add(rep->refused, app);
    return 0;
}

/* @return 0, UPD_ESTORE, UPD_ENOMEM */
static int
roll_state(upd_store_t *store, const upd_restore_source_t *src, size_t n, const upd_restore_opts_t *opts, FILE *progress,
           upd_restore_report_t *rep)
{
    upd_state_index_t ix[UPD_RESTORE_SOURCES_MAX];
    bool readable[UPD_RESTORE_SOURCES_MAX] = {false};
    doc_t doc = {.max = opts->doc_max};
    int err = 0;
    for (size_t i = 0; i < n; ++i) {
        char msg[MSG_MAX] = "";
        upd_reason_t why = {"", ""};
        upd_state_index_init(&ix[i]);
        int r = fetch(&src[i], UPD_STATE_INDEX_KEY, &doc, msg, sizeof(msg));
        if (r == UPD_ENOTFOUND) {
            readable[i] = true; /* nothing published there (yet) */
        } else if (r != 0) {
            line(progress, true, "state: %s: the index could not be read: %s", src[i].name, msg);
        } else if ((r = upd_state_index_parse(doc.buf, doc.len, &ix[i], &why)) == UPD_EINVAL) {
            line(progress, true, "state: %s: %s is refused: %s", src[i].name, UPD_STATE_INDEX_KEY, why.message);
        } else if (r != 0) {
            err = r;
            goto Exit;
        } else {
            readable[i] = true;
        }
        if (!readable[i])
            ++rep->state_unread;
    }
    /* every app any readable index lists, each once, in the first index's order, then the next's */
    size_t up_to_date = 0;
    for (size_t i = 0; i < n && err == 0; ++i) {
        if (!readable[i])
            continue;
        for (size_t a = 0; a < ix[i].n && err == 0; ++a) {
            const char *app = ix[i].apps[a].app;
            bool seen = false;
            for (size_t j = 0; j < i && !seen; ++j)
                seen = readable[j] && upd_state_index_get(&ix[j], app) != 0;
            if (!seen)
                err = roll_app(store, src, n, ix, readable, app, &doc, progress, rep, &up_to_date);
        }
    }
    if (err == 0 && rep->state_unread < n)
        line(progress, false, "state: %zu app%s rolled forward, %zu refused, %zu already as published", rep->apps_rolled,
             rep->apps_rolled == 1 ? "" : "s", rep->apps_refused, up_to_date);
Exit:
    for (size_t i = 0; i < n; ++i)
        upd_state_index_dispose(&ix[i]);
    free(doc.buf);
    return err;
}

/* ---- the audit trail ---- */

typedef upd_audit_seg_t seg_t;
typedef upd_audit_seg_list_t segs_t;

static int
on_seg_listed(const char *key, uint64_t size, void *arg)
{
    (void)size;
    return upd_audit_seg_list_add(arg, key, strlen(key));
}

/* The last record the segments (sorted) hold without a gap from record 1; 0 when they do not start there. */
static uint64_t
covered(const segs_t *l)
{
    uint64_t c = 0;
    for (size_t i = 0; i < l->n && l->segs[i].first <= c + 1; ++i)
        if (l->segs[i].last > c)
            c = l->segs[i].last;
    return c;
}

/* The segment that holds record seq and reaches furthest, or NULL. */
static const seg_t *
seg_with(const segs_t *l, uint64_t seq)
{
    const seg_t *best = NULL;
    for (size_t i = 0; i < l->n && l->segs[i].first <= seq; ++i)
        if (l->segs[i].last >= seq && (best == NULL || l->segs[i].last > best->last))
            best = &l->segs[i];
    return best;
}

/* One segment read into the chain. */
typedef struct {
    upd_store_txn_t *txn;
    const seg_t *seg;
    upd_audit_seg_reader_t reader;
    uint64_t next; /* the record the chain needs */
    char prev[UPD_AUDIT_HASH_HEX + 1];
    bool broke; /* a record that does not chain, at broke_at */
    uint64_t broke_at;
    upd_reason_t why;
    int err; /* the environment's */
} feed_t;

static int
on_feed_record(const char *rec, size_t len, void *arg)
{
    feed_t *f = arg;
    uint64_t seq = f->seg->first + f->reader.records - 1;
    if (seq < f->next)
        return 0; /* the environment holds it already */
    if (seq > f->seg->last) {
        f->broke = true;
        f->broke_at = seq;
        upd_reason_set(&f->why, UPD_EINVAL, "segment", "the segment holds more records than its name says");
        return 1;
    }
    if (upd_audit_check(rec, len, f->next, f->prev, &f->why) != 0) {
        f->broke = true;
        f->broke_at = seq;
        return 1;
    }
    if ((f->err = upd_store_audit_put(f->txn, seq, rec, len)) != 0)
        return 1;
    if (!upd_audit_hash(rec, len, f->prev)) {
        f->err = UPD_ENOMEM;
        return 1;
    }
    ++f->next;
    return 0;
}

static int
feed_sink(const void *data, size_t len, void *arg)
{
    feed_t *f = arg;
    int r = upd_audit_seg_reader_feed(&f->reader, data, len);
    if (r == UPD_ETOOBIG) {
        f->broke = true;
        f->broke_at = f->seg->first + f->reader.records;
        upd_reason_set(&f->why, UPD_EINVAL, "segment", "a line longer than any record");
    }
    return r;
}

/* @return 0, UPD_ESTORE, UPD_ENOMEM */
static int
roll_audit(upd_store_t *store, const upd_restore_source_t *src, size_t n, FILE *progress, upd_restore_report_t *rep)
{
    segs_t segs[UPD_RESTORE_SOURCES_MAX];
    bool listed[UPD_RESTORE_SOURCES_MAX] = {false}, done[UPD_RESTORE_SOURCES_MAX];
    uint64_t broke_at[UPD_RESTORE_SOURCES_MAX] = {0}, from_source[UPD_RESTORE_SOURCES_MAX] = {0};
    upd_store_txn_t *txn = NULL;
    int err = 0;
    memset(segs, 0, sizeof(segs));
    for (size_t i = 0; i < n; ++i) {
        char msg[MSG_MAX] = "";
        int r = src[i].list(src[i].ctx, UPD_AUDIT_SEGMENT_PREFIX, on_seg_listed, &segs[i], msg, sizeof(msg));
        if (r == UPD_ENOMEM) {
            err = r;
            goto Exit;
        }
        if (r != 0) {
            line(progress, true, "audit: %s: its segments could not be listed: %s", src[i].name, msg);
            ++rep->audit_unread;
            done[i] = true;
            continue;
        }
        if (segs[i].n > 1)
            upd_audit_seg_list_sort(&segs[i]);
        for (size_t k = 0; k < segs[i].n; ++k)
            if (segs[i].segs[k].last > rep->audit_held)
                rep->audit_held = segs[i].segs[k].last;
        listed[i] = true;
        done[i] = false;
    }
    if (rep->audit_unread == n)
        goto Exit;

    /* the records past the head, in the chain's order, from whichever store holds the next one */
    if ((err = upd_store_write_begin(store, &txn)) != 0)
        goto Exit;
    feed_t f = {.txn = txn};
    if ((err = upd_audit_head(txn, &rep->audit_from, f.prev)) != 0) {
        line(progress, true, "audit: the restored chain head is unreadable: %s", upd_strerror(err));
        err = UPD_ESTORE;
        goto Exit;
    }
    f.next = rep->audit_from + 1;
    for (bool advanced = true; advanced;) {
        advanced = false;
        for (size_t i = 0; i < n && !advanced; ++i) {
            const seg_t *s = done[i] ? NULL : seg_with(&segs[i], f.next);
            if (s == NULL)
                continue;
            uint64_t before = f.next;
            char msg[MSG_MAX] = "";
            f.seg = s;
            f.broke = false;
            if (upd_audit_seg_reader_init(&f.reader, on_feed_record, &f) != 0) {
                err = UPD_ENOMEM;
                goto Exit;
            }
            int r = src[i].get(src[i].ctx, s->key, feed_sink, &f, msg, sizeof(msg));
            bool cut = r == 0 && !f.broke && f.err == 0 && upd_audit_seg_reader_end(&f.reader) != 0;
            upd_audit_seg_reader_dispose(&f.reader);
            if (f.err != 0) {
                err = f.err == UPD_ENOMEM ? f.err : UPD_ESTORE;
                goto Exit;
            }
            from_source[i] += f.next - before;
            if (f.broke) {
                line(progress, true, "audit: %s: record %" PRIu64 " of %s does not chain on record %" PRIu64 ": %s", src[i].name,
                     f.broke_at, s->key, f.next - 1, f.why.message);
                broke_at[i] = f.broke_at;
                rep->audit_broken = true;
                done[i] = true;
            } else if (r != 0) {
                line(progress, true, "audit: %s: %s could not be read: %s", src[i].name, s->key, msg);
                done[i] = true;
            } else if (cut || f.next <= s->last) {
                line(progress, true, "audit: %s: %s ends before record %" PRIu64, src[i].name, s->key, f.next);
                done[i] = true;
            }
            advanced = f.next > before;
        }
    }
    rep->audit_to = f.next - 1;
    memcpy(rep->audit_hash, f.prev, sizeof(f.prev));
    if (rep->audit_to > rep->audit_from) {
        char val[96];
        int len = snprintf(val, sizeof(val), "%" PRIu64 " %s", rep->audit_to, f.prev);
        if ((err = upd_store_meta_put(txn, HEAD_NAME, val, (size_t)len)) != 0)
            goto Exit;
    }
    /* each store's export mark: what it holds without a gap, below its first record that did not chain */
    for (size_t i = 0; i < n; ++i) {
        if (!listed[i])
            continue;
        uint64_t mark = covered(&segs[i]);
        if (broke_at[i] != 0 && mark >= broke_at[i])
            mark = broke_at[i] - 1;
        if (mark > rep->audit_to)
            mark = rep->audit_to;
        char name[64], val[24];
        int len = snprintf(val, sizeof(val), "%" PRIu64, mark);
        snprintf(name, sizeof(name), MARK_PREFIX "%s", src[i].name);
        if ((err = upd_store_meta_put(txn, name, val, (size_t)len)) != 0)
            goto Exit;
        line(progress, false, "audit: %s: %zu segment%s, records to %" PRIu64 " without a gap: export mark %" PRIu64, src[i].name,
             segs[i].n, segs[i].n == 1 ? "" : "s", covered(&segs[i]), mark);
    }
    err = upd_store_commit(txn);
    txn = NULL;
    if (err != 0)
        goto Exit;
    if (rep->audit_to > rep->audit_from) {
        char from[64] = "";
        for (size_t i = 0, len = 0; i < n; ++i)
            if (from_source[i] != 0)
                len += (size_t)snprintf(from + len, sizeof(from) - len, "%s%s", len != 0 ? " and " : "", src[i].name);
        line(progress, false, "audit: records %" PRIu64 " to %" PRIu64 " appended from %s: chain head %" PRIu64 " %s",
             rep->audit_from + 1, rep->audit_to, from, rep->audit_to, rep->audit_hash);
    } else {
        line(progress, false, "audit: no record past the backup's head %" PRIu64 " in the stores", rep->audit_from);
    }
    if (rep->audit_held > rep->audit_to)
        line(progress, true, "audit: the stores name records up to %" PRIu64 ", but the chain could only be continued to %" PRIu64,
             rep->audit_held, rep->audit_to);
Exit:
    if (txn != NULL)
        upd_store_txn_end(txn);
    for (size_t i = 0; i < n; ++i)
        free(segs[i].segs);
    return err;
}

int
upd_restore_roll_forward(upd_store_t *store, const upd_restore_source_t *sources, size_t n, const upd_restore_opts_t *opts,
                         FILE *progress, upd_restore_report_t *report)
{
    memset(report, 0, sizeof(*report));
    if (n == 0 || n > UPD_RESTORE_SOURCES_MAX)
        return UPD_EINVAL;
    int err = roll_state(store, sources, n, opts, progress, report);
    if (err == 0)
        err = roll_audit(store, sources, n, progress, report);
    if (err != 0) {
        line(progress, true, "the environment could not be written: %s", upd_strerror(err));
        return err;
    }
    if (report->state_unread == n && report->audit_unread == n)
        return UPD_EIO;
    if (report->apps_refused != 0 || report->audit_held > report->audit_to)
        return UPD_EINTEGRITY;
    return 0;
}
