#ifndef UPD_MIRROR_H
#define UPD_MIRROR_H

#include <jansson.h>
#include "control/control.h"
#include "domain/release.h"

/**
 * Checks every file of a release before it is registered and fills in what only the bytes tell: sha1, the block
 * digests (XXH3-128 per conf->block_size bytes, files over one block), the size and sha512 of NAME.blockmap.
 *
 * A file staged under the storage directory is hashed there and must have its declared size and sha512. With object
 * storage (c->nbackends != 0) each file and its NAME.blockmap must then be on every backend: a staged one that a
 * backend lacks is uploaded (signed with its SHA-256), one a backend has is read back and must be the same bytes; a
 * file not staged is read from every backend and each copy must be the declared bytes (a blockmap not staged is taken
 * from the backends when they all have the same one). Runs on the caller's thread, blocking.
 *
 * Objects uploaded before a later file is refused stay on the backends: they hold the declared bytes under
 * APP/VERSION/NAME, which is what a retry verifies.
 * @param[out] backends  on success, a new reference: {"r2":[{"file","action":"uploaded"|"verified","bytes"}, ...],
 *                       "s3":[...]}, in file order, each file followed by its blockmap; {} without object storage
 * @param[out] out       on refusal, the error body ({"error":{"code","message"}}), a new reference
 * @return 0, or the HTTP status of the refusal: 422 file_missing, size_mismatch, checksum_mismatch (the staged copy),
 *         backend_mismatch (a backend's copy differs), too_big (more blocks than UPD_BLOCKS_MAX); 502 backend_error
 *         (a backend failed or refused: its name, status and S3 code; logged); 503 storage_error (staging unreadable)
 */
int upd_mirror_release(upd_control_t *c, upd_release_t *rel, json_t **backends, json_t **out);

#endif
