#include "server/config.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define FIELD(conf, decl) ((char *)(conf) + (decl)->offset)

static void
strlist_clear(upd_strlist_t *l)
{
    for (size_t i = 0; i < l->size; ++i)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->size = 0;
}

static void
strlist_push(upd_strlist_t *l, const char *s)
{
    char **items = realloc(l->items, (l->size + 1) * sizeof(*items));
    if (items == NULL)
        abort();
    l->items = items;
    l->items[l->size++] = strdup(s);
}

/* Sets one scalar field from text; the single place where every type's syntax and bounds are checked. */
static int
set_scalar(const upd_conf_decl_t *d, upd_conf_t *conf, const char *value, char *err, size_t errlen)
{
    switch (d->type) {
    case UPD_CONF_STRING: {
        char **p = (char **)FIELD(conf, d);
        free(*p);
        *p = strdup(value);
        return 0;
    }
    case UPD_CONF_UINT: {
        char *end;
        errno = 0;
        if (value[0] < '0' || value[0] > '9') {
            snprintf(err, errlen, "%s: not a non-negative integer: \"%s\"", d->name, value);
            return -1;
        }
        unsigned long long v = strtoull(value, &end, 10);
        if (errno != 0 || *end != '\0') {
            snprintf(err, errlen, "%s: not a non-negative integer: \"%s\"", d->name, value);
            return -1;
        }
        if (v < d->min || v > d->max) {
            snprintf(err, errlen, "%s: %llu is outside %" PRIu64 "..%" PRIu64, d->name, v, d->min, d->max);
            return -1;
        }
        *(uint64_t *)FIELD(conf, d) = v;
        return 0;
    }
    case UPD_CONF_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "on") == 0) {
            *(bool *)FIELD(conf, d) = true;
        } else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 || strcmp(value, "off") == 0) {
            *(bool *)FIELD(conf, d) = false;
        } else {
            snprintf(err, errlen, "%s: not a boolean: \"%s\"", d->name, value);
            return -1;
        }
        return 0;
    case UPD_CONF_STRLIST: {
        upd_strlist_t *l = (upd_strlist_t *)FIELD(conf, d);
        strlist_push(l, value);
        return 0;
    }
    }
    return -1;
}

void
upd_conf_defaults(const upd_conf_decl_t *decls, upd_conf_t *conf)
{
    char err[256];
    for (const upd_conf_decl_t *d = decls; d->name != NULL; ++d) {
        if (d->type == UPD_CONF_STRLIST) {
            strlist_clear((upd_strlist_t *)FIELD(conf, d));
            if (d->def != NULL && d->def[0] != '\0') {
                /* list defaults are comma-separated */
                char *copy = strdup(d->def), *save = NULL;
                for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
                    set_scalar(d, conf, tok, err, sizeof(err));
                free(copy);
            }
        } else if (d->def != NULL && set_scalar(d, conf, d->def, err, sizeof(err)) != 0) {
            fprintf(stderr, "updraft: built-in default is invalid: %s\n", err);
            abort();
        }
    }
}

static const upd_conf_decl_t *
find_decl(const upd_conf_decl_t *decls, const char *name)
{
    for (const upd_conf_decl_t *d = decls; d->name != NULL; ++d)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

static bool
is_prefix_of_decl(const upd_conf_decl_t *decls, const char *prefix)
{
    size_t len = strlen(prefix);
    for (const upd_conf_decl_t *d = decls; d->name != NULL; ++d)
        if (strncmp(d->name, prefix, len) == 0 && d->name[len] == '.')
            return true;
    return false;
}

static int
load_node(const upd_conf_decl_t *decls, upd_conf_t *conf, yaml_document_t *doc, yaml_node_t *node, const char *prefix,
          const char *path, char *err, size_t errlen)
{
    char msg[256];
    if (node->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "%s:%zu: %s: expected a mapping", path, node->start_mark.line + 1, prefix[0] ? prefix : "top level");
        return -1;
    }
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; ++pair) {
        yaml_node_t *k = yaml_document_get_node(doc, pair->key), *v = yaml_document_get_node(doc, pair->value);
        size_t line = k->start_mark.line + 1;
        if (k->type != YAML_SCALAR_NODE) {
            snprintf(err, errlen, "%s:%zu: keys must be plain names", path, line);
            return -1;
        }
        char name[256];
        snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", (const char *)k->data.scalar.value);
        const upd_conf_decl_t *d = find_decl(decls, name);
        if (d == NULL) {
            if (v->type == YAML_MAPPING_NODE && is_prefix_of_decl(decls, name)) {
                if (load_node(decls, conf, doc, v, name, path, err, errlen) != 0)
                    return -1;
                continue;
            }
            snprintf(err, errlen, "%s:%zu: %s: unknown setting", path, line, name);
            return -1;
        }
        line = v->start_mark.line + 1;
        if (d->type == UPD_CONF_STRLIST) {
            strlist_clear((upd_strlist_t *)FIELD(conf, d));
            if (v->type == YAML_SCALAR_NODE) {
                if (v->data.scalar.length != 0 && set_scalar(d, conf, (const char *)v->data.scalar.value, msg, sizeof(msg)) != 0)
                    goto BadValue;
            } else if (v->type == YAML_SEQUENCE_NODE) {
                for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; ++it) {
                    yaml_node_t *item = yaml_document_get_node(doc, *it);
                    if (item->type != YAML_SCALAR_NODE) {
                        snprintf(err, errlen, "%s:%zu: %s: list items must be scalars", path, item->start_mark.line + 1, name);
                        return -1;
                    }
                    if (set_scalar(d, conf, (const char *)item->data.scalar.value, msg, sizeof(msg)) != 0)
                        goto BadValue;
                }
            } else {
                snprintf(err, errlen, "%s:%zu: %s: expected a list", path, line, name);
                return -1;
            }
        } else {
            if (v->type != YAML_SCALAR_NODE) {
                snprintf(err, errlen, "%s:%zu: %s: expected a single value", path, line, name);
                return -1;
            }
            if (set_scalar(d, conf, (const char *)v->data.scalar.value, msg, sizeof(msg)) != 0)
                goto BadValue;
        }
        continue;
    BadValue:
        snprintf(err, errlen, "%s:%zu: %s", path, line, msg);
        return -1;
    }
    return 0;
}

int
upd_conf_load_file(const upd_conf_decl_t *decls, upd_conf_t *conf, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    int ret = -1;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%zu: %s", path, parser.problem_mark.line + 1, parser.problem ? parser.problem : "YAML error");
        goto Exit;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL || (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
        ret = 0; /* an empty file keeps every default */
    else
        ret = load_node(decls, conf, &doc, root, "", path, err, errlen);
    yaml_document_delete(&doc);
Exit:
    yaml_parser_delete(&parser);
    fclose(fp);
    return ret;
}

int
upd_conf_apply_flag(const upd_conf_decl_t *decls, upd_conf_t *conf, const char *flag, const char *value, uint64_t *lists_reset,
                    char *err, size_t errlen)
{
    for (const upd_conf_decl_t *d = decls; d->name != NULL; ++d) {
        if (d->flag == NULL || strcmp(d->flag, flag) != 0)
            continue;
        uint64_t bit = (uint64_t)1 << ((d - decls) % 64);
        if (d->type == UPD_CONF_STRLIST && (*lists_reset & bit) == 0) {
            strlist_clear((upd_strlist_t *)FIELD(conf, d));
            *lists_reset |= bit;
        }
        char msg[256];
        if (set_scalar(d, conf, value, msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "%s: %s", flag, msg);
            return -1;
        }
        return 1;
    }
    return 0;
}

void
upd_conf_dispose(const upd_conf_decl_t *decls, upd_conf_t *conf)
{
    for (const upd_conf_decl_t *d = decls; d->name != NULL; ++d) {
        if (d->type == UPD_CONF_STRING) {
            char **p = (char **)FIELD(conf, d);
            free(*p);
            *p = NULL;
        } else if (d->type == UPD_CONF_STRLIST) {
            strlist_clear((upd_strlist_t *)FIELD(conf, d));
        }
    }
}
