#include "domain/state_doc.h"
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* snprintf into buf, or "" and UPD_ETOOBIG when the result and its NUL do not fit */
static int
fit(char *buf, size_t cap, int n)
{
    if (n >= 0 && (size_t)n < cap)
        return 0;
    if (cap > 0)
        buf[0] = '\0';
    return n < 0 ? UPD_EINVAL : UPD_ETOOBIG;
}

static int
refuse(char *buf, size_t cap)
{
    if (cap > 0)
        buf[0] = '\0';
    return UPD_EINVAL;
}

int
upd_state_doc_key(char *buf, size_t cap, const char *app, uint64_t generation)
{
    if (!upd_id_is_app(app, strlen(app)))
        return refuse(buf, cap);
    return fit(buf, cap, snprintf(buf, cap, UPD_STATE_PREFIX "%s/%" PRIu64 ".json", app, generation));
}

int
upd_state_latest_key(char *buf, size_t cap, const char *app)
{
    if (!upd_id_is_app(app, strlen(app)))
        return refuse(buf, cap);
    return fit(buf, cap, snprintf(buf, cap, UPD_STATE_PREFIX "%s.json", app));
}

int
upd_state_index_key(char *buf, size_t cap)
{
    return fit(buf, cap, snprintf(buf, cap, "%s", UPD_STATE_INDEX_KEY));
}

/* ---- the index ---- */

void
upd_state_index_init(upd_state_index_t *ix)
{
    *ix = (upd_state_index_t){NULL, 0, 0};
}

void
upd_state_index_dispose(upd_state_index_t *ix)
{
    free(ix->apps);
    upd_state_index_init(ix);
}

static upd_state_index_entry_t *
find(const upd_state_index_t *ix, const char *app)
{
    for (size_t i = 0; i < ix->n; ++i)
        if (strcmp(ix->apps[i].app, app) == 0)
            return &ix->apps[i];
    return NULL;
}

/* appends without looking for the app (the parser: jansson has refused duplicate keys already) */
static int
append(upd_state_index_t *ix, const char *app, size_t app_len, uint64_t generation)
{
    if (ix->n == ix->cap) {
        size_t cap = ix->cap != 0 ? ix->cap * 2 : 16;
        upd_state_index_entry_t *a = realloc(ix->apps, cap * sizeof(*a));
        if (a == NULL)
            return UPD_ENOMEM;
        ix->apps = a;
        ix->cap = cap;
    }
    upd_state_index_entry_t *e = &ix->apps[ix->n++];
    memcpy(e->app, app, app_len);
    e->app[app_len] = '\0';
    e->generation = generation;
    return 0;
}

int
upd_state_index_set(upd_state_index_t *ix, const char *app, uint64_t generation)
{
    size_t len = strlen(app);
    if (!upd_id_is_app(app, len) || generation == 0)
        return UPD_EINVAL;
    upd_state_index_entry_t *e = find(ix, app);
    if (e != NULL) {
        e->generation = generation;
        return 0;
    }
    return append(ix, app, len, generation);
}

uint64_t
upd_state_index_get(const upd_state_index_t *ix, const char *app)
{
    const upd_state_index_entry_t *e = find(ix, app);
    return e != NULL ? e->generation : 0;
}

int
upd_state_index_format(const upd_state_index_t *ix, char **out, size_t *out_len)
{
    json_t *apps = json_object(), *doc = json_pack("{s:i, s:o}", "format", UPD_STATE_FORMAT, "apps", apps);
    int err = UPD_ENOMEM;
    *out = NULL;
    *out_len = 0;
    if (doc == NULL)
        return UPD_ENOMEM; /* json_pack's "o" took apps, even on failure */
    for (size_t i = 0; i < ix->n; ++i)
        if (json_object_set_new(apps, ix->apps[i].app, json_integer((json_int_t)ix->apps[i].generation)) != 0)
            goto Exit;
    if ((*out = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
        goto Exit;
    *out_len = strlen(*out);
    err = 0;
Exit:
    json_decref(doc);
    return err;
}

int
upd_state_index_parse(const char *text, size_t len, upd_state_index_t *ix, upd_reason_t *why)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *v, *apps;
    int err = UPD_EINVAL;
    ix->n = 0;
    if (root == NULL) {
        upd_reason_set(why, err, "state_index", "not JSON: %s (line %d)", jerr.text, jerr.line);
        goto Exit;
    }
    if (!json_is_object(root)) {
        upd_reason_set(why, err, "state_index", "not a JSON object");
        goto Exit;
    }
    if (!json_is_integer(v = json_object_get(root, "format")) || json_integer_value(v) != UPD_STATE_FORMAT) {
        upd_reason_set(why, err, "state_index", "\"format\" is not %d", UPD_STATE_FORMAT);
        goto Exit;
    }
    if (!json_is_object(apps = json_object_get(root, "apps"))) {
        upd_reason_set(why, err, "state_index", "\"apps\" is not an object");
        goto Exit;
    }
    const char *app;
    json_object_foreach(apps, app, v) {
        size_t app_len = strlen(app);
        if (!upd_id_is_app(app, app_len)) {
            /* printed with %.*s: the key came from outside and may be anything */
            upd_reason_set(why, err, "state_index", "apps: \"%.*s\" is not an app id", (int)(app_len > 80 ? 80 : app_len), app);
            goto Exit;
        }
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            upd_reason_set(why, err, "state_index", "apps.%s: the generation is not a positive integer", app);
            goto Exit;
        }
        if ((err = append(ix, app, app_len, (uint64_t)json_integer_value(v))) != 0) {
            upd_reason_set(why, err, "", "out of memory");
            goto Exit;
        }
        err = UPD_EINVAL;
    }
    err = 0;
Exit:
    if (err != 0)
        ix->n = 0;
    json_decref(root);
    return err;
}
