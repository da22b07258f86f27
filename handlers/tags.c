/* The edge's purge tags on feed, download and artifact answers. */
#include "handlers/tags.h"
#include <stdio.h>
#include "domain/ids.h"
#include "domain/version.h"

void
upd_tags_add(h2o_req_t *req, const char *app, const char *channel, const char *version)
{
    /* Surrogate-Key (Varnish, Fastly: space-separated) and Cache-Tag (Cloudflare: comma-separated), the same tags */
    /* the longest is the feed's: the app three times, the channel (an id as well) and the version, with the NUL */
    char *sk = h2o_mem_alloc_pool(&req->pool, 4 * UPD_ID_MAX + UPD_VERSION_MAX + sizeof("app: chan:/ rel:/"));
    int n;
    if (channel != NULL && version != NULL && version[0] != '\0')
        n = sprintf(sk, "app:%s chan:%s/%s rel:%s/%s", app, app, channel, app, version);
    else if (channel != NULL)
        n = sprintf(sk, "app:%s chan:%s/%s", app, app, channel);
    else
        n = sprintf(sk, "app:%s rel:%s/%s", app, app, version);
    /* tags are lower-case (the control plane purges by lower-case tags; a version may hold capitals) */
    char *ct = h2o_mem_alloc_pool(&req->pool, (size_t)n + 1);
    for (int i = 0; i <= n; ++i) {
        if (sk[i] >= 'A' && sk[i] <= 'Z')
            sk[i] = (char)(sk[i] - 'A' + 'a');
        ct[i] = sk[i] == ' ' ? ',' : sk[i];
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("surrogate-key"), 0, NULL, sk, (size_t)n);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("cache-tag"), 0, NULL, ct, (size_t)n);
}
