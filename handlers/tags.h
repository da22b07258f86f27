#ifndef UPD_TAGS_H
#define UPD_TAGS_H

#include <h2o.h>

/*
 * The purge tags an edge cache keys its objects by, so that a release can drop exactly the answers it changed
 * (the control plane purges by the same tags, lower-case).
 */

/**
 * Adds Surrogate-Key ("app:A chan:A/C rel:A/V", Varnish and Fastly) and Cache-Tag (the same, comma-separated,
 * Cloudflare) to the response, lower-cased. Cannot fail (the headers come from req->pool).
 * @param app      an app id (at most UPD_ID_MAX bytes)
 * @param channel  a channel name, or NULL for an artifact (app and release tags only)
 * @param version  the release offered, or NULL or "" for none (no release tag); for an artifact it must be set
 */
void upd_tags_add(h2o_req_t *req, const char *app, const char *channel, const char *version);

#endif
