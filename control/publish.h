#ifndef UPD_PUBLISH_H
#define UPD_PUBLISH_H

#include <jansson.h>
#include "control/control.h"

/* control/publish.c: each returns an HTTP status and a JSON body (new reference), errors as
 * {"error":{"code","message"}}. A release (201 {"release","channel","backends","propagation"}) and a rollout change
 * (200, the channel with "propagation") are propagated once committed (control/propagate.h): the answer's
 * "propagation" says what reached which target; a failed target does not undo the change, it is retried. */
int upd_publish_release(upd_control_t *c, const char *app, json_t *body, json_t **out);
int upd_publish_rollout(upd_control_t *c, const char *app, const char *channel, json_t *body, json_t **out);
/**
 * Pulls a release (POST /v1/apps/APP/releases/VERSION/pull, body NULL or {"reason"}): marks it pulled (kept, files
 * still served, never again stable or rollout, its feed bodies dropped) and withdraws it from its channel. The
 * channel's rollout version: the rollout ends. Its stable version: the newest older release of the channel not itself
 * pulled becomes stable (none: the channel has no stable version; a rollout in progress goes on). Another, already
 * superseded version: only marked. The generation is bumped, what is now offered re-rendered, and the change
 * propagated like a rollout change (tags app, channel, the pulled version and the versions now offered).
 * @return 200 with the channel and "propagation"; 400 (body), 404 (app or version), 409 "pulled" (already), 503
 */
int upd_publish_pull(upd_control_t *c, const char *app, const char *version, json_t *body, json_t **out);
int upd_publish_channel_show(upd_control_t *c, const char *app, const char *channel, json_t **out);
int upd_publish_app_create(upd_control_t *c, json_t *body, json_t **out);

#endif
