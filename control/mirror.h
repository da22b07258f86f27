#ifndef UPD_MIRROR_H
#define UPD_MIRROR_H

#include <jansson.h>
#include "base/err.h"
#include "control/control.h"
#include "domain/release.h"

/**
 * Checks every file of a release before it is registered and fills in what only the bytes tell: sha1, the block
 * digests (SHA-256 per conf->block_size bytes, files over one block), the size and sha512 of NAME.blockmap.
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
 *                       "s3":[...]}, in file order, each file followed by its blockmap; {} without object storage.
 *                       NULL on refusal.
 * @param[out] reason    on refusal, its code and a sentence naming the file (NULL: not wanted)
 * @return 0, or the refusal:
 *         UPD_EMISMATCH "file_missing" (neither staged nor on every backend), "size_mismatch" and "checksum_mismatch"
 *                       (the staged copy is not what was declared), "backend_mismatch" (a backend's copy differs);
 *         UPD_ETOOBIG   "too_big" (more blocks than UPD_BLOCKS_MAX);
 *         UPD_EBACKEND  "backend_error" (a backend failed or refused: its name, status and S3 code; logged);
 *         UPD_EIO       "storage_error" (the staged copy cannot be read)
 */
int upd_mirror_release(upd_control_t *c, upd_release_t *rel, json_t **backends, upd_reason_t *reason);

#endif
