#!/usr/bin/env python3
"""Story: with object storage (R2 first, the S3 mirror second), registering a release puts every
file and its .blockmap on both backends, or checks the copies already there, and refuses a release
either backend does not hold exactly.

Two signature-checking s3rvers stand in for R2 and S3 (tests/support/s3rver.js). A staged 3 MiB
installer (over the 1 MiB block size) and its blockmap are uploaded to both, byte for byte; a file
already on both backends and not staged is verified, not uploaded again; a copy that differs on one
backend, a file missing on one and not staged, R2 with a wrong secret and an S3 answering 500 register
nothing (422, 422, 502 naming r2 and SignatureDoesNotMatch, 502 naming s3). The release records the file's block digests
(SHA-256 per MiB, checked here with hashlib) in both modes; the CLI prints one line per
backend and file. README "Object storage".
"""
import hashlib
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MIB = 1024 * 1024
BLOCK_SIZE = MIB  # integrity.block_size's default


def block_digests(data):
    """SHA-256 of each block, as hex: what the control plane stores per block."""
    if len(data) <= BLOCK_SIZE:
        return ""
    return "".join(hashlib.sha256(data[i:i + BLOCK_SIZE]).hexdigest() for i in range(0, len(data), BLOCK_SIZE))


def sha512_hex(data):
    return hashlib.sha512(data).hexdigest()


class MirrorTest(harness.StackTest):
    env_name = "test_mirror"
    s3rvers = ("r2", "s3")
    programs = ("control",)
    keys = (("admin", "admin", "mirror"),)

    @classmethod
    def control_args(cls):
        return ("--config", cls.env.object_store_config(cls.r2, cls.s3))

    # --- helpers ----------------------------------------------------------------------------------

    def api(self, method, path, body=None, control=None):
        """(status, JSON) from a control plane (default: the one mirroring to both s3rvers)."""
        h = {"Authorization": "Bearer " + self.admin}
        status, _, data = self.env.http(method, path, headers=h, body=body, base=control or self.control)
        return status, json.loads(data) if data else None

    def new_app(self, app):
        status, doc = self.api("POST", "/v1/apps", {"id": app, "name": app.title()})
        self.assertEqual(status, 201, doc)

    def register(self, app, version, files, control=None):
        return self.api("POST", "/v1/apps/%s/releases" % app,
                        {"version": version, "channel": "latest", "files": files}, control=control)

    def channel(self, app):
        status, doc = self.api("GET", "/v1/apps/%s/channels/latest" % app)
        return status, doc

    def installer(self, app, version, size=3 * MIB, stage=True):
        """Random installer bytes and a blockmap for them; staged under --storage unless stage=False."""
        name = "%s-Setup-%s.exe" % (app.title(), version)
        data, blockmap = os.urandom(size), os.urandom(2345)
        if stage:
            self.env.put_artifact(app, version, name, data)
            self.env.put_artifact(app, version, name + ".blockmap", blockmap)
        decl = dict(name=name, size=len(data), sha512=harness.sha512_b64(data), platform="windows", arch="x64")
        return name, data, blockmap, decl

    def assert_on_backend(self, backend, key, data):
        status, body = self.env.s3_get(backend, key)
        self.assertEqual(status, 200, "%s has no %s" % (backend.name, key))
        self.assertEqual(sha512_hex(body), sha512_hex(data), "%s holds other bytes at %s" % (backend.name, key))

    def assert_not_on_backend(self, backend, key):
        status, _ = self.env.s3_get(backend, key)
        self.assertEqual(status, 404, "%s has %s" % (backend.name, key))

    def assert_file_record(self, f, data, blockmap):
        """The registered file: its sha1, its block digests and its blockmap's, all from the bytes."""
        self.assertEqual(f["sha1"], hashlib.sha1(data).hexdigest())
        self.assertEqual(f["block_size"], BLOCK_SIZE)
        self.assertEqual(len(f["blocks"]) // 64, -(-len(data) // BLOCK_SIZE), "one 32-byte digest per block")
        self.assertEqual(f["block_digest"], "sha256")
        self.assertEqual(f["blocks"], block_digests(data))
        self.assertEqual(f["blockmap_size"], len(blockmap))
        self.assertEqual(f["blockmap_sha512"], harness.sha512_b64(blockmap))

    # --- the stories ------------------------------------------------------------------------------

    def test_staged_files_are_uploaded_to_both_backends_byte_for_byte(self):
        self.new_app("upload")
        name, data, blockmap, decl = self.installer("upload", "1.0.0")
        status, doc = self.register("upload", "1.0.0", [decl])
        self.assertEqual(status, 201, doc)
        for backend in (self.r2, self.s3):
            self.assert_on_backend(backend, "upload/1.0.0/" + name, data)
            self.assert_on_backend(backend, "upload/1.0.0/%s.blockmap" % name, blockmap)
        expected = [{"file": name, "action": "uploaded", "bytes": len(data)},
                    {"file": name + ".blockmap", "action": "uploaded", "bytes": len(blockmap)}]
        self.assertEqual(doc["backends"], {"r2": expected, "s3": expected})
        self.assert_file_record(doc["release"]["files"][0], data, blockmap)
        self.assertEqual(self.channel("upload")[1]["stable"], "1.0.0")
        # the same version again is refused before any backend is asked
        gets = self.env.s3_count(self.r2, "GET", "upload/1.0.0/" + name)
        status, doc = self.register("upload", "1.0.0", [decl])
        self.assertEqual(status, 409, doc)
        self.assertEqual(self.env.s3_count(self.r2, "GET", "upload/1.0.0/" + name), gets)
        self.assertEqual(self.env.s3_count(self.r2, "HEAD", "upload/1.0.0/" + name), 1)

    def test_files_already_on_both_backends_are_verified_not_uploaded_again(self):
        self.new_app("verify")
        name, data, blockmap, decl = self.installer("verify", "1.0.0")
        self.assertEqual(self.register("verify", "1.0.0", [decl])[0], 201)
        # the next version was uploaded by the build pipeline straight to both buckets, never staged here
        name2, data2, blockmap2, decl2 = self.installer("verify", "1.1.0", stage=False)
        for backend in (self.r2, self.s3):
            self.env.s3_put(backend, "verify/1.1.0/" + name2, data2)
            self.env.s3_put(backend, "verify/1.1.0/%s.blockmap" % name2, blockmap2)
        status, doc = self.register("verify", "1.1.0", [decl2])
        self.assertEqual(status, 201, doc)
        expected = [{"file": name2, "action": "verified", "bytes": len(data2)},
                    {"file": name2 + ".blockmap", "action": "verified", "bytes": len(blockmap2)}]
        self.assertEqual(doc["backends"], {"r2": expected, "s3": expected})
        self.assert_file_record(doc["release"]["files"][0], data2, blockmap2)
        for backend in (self.r2, self.s3):
            self.assertEqual(self.env.s3_count(backend, "PUT", "verify/1.1.0/" + name2), 1, "only the pipeline's PUT")
            self.assert_on_backend(backend, "verify/1.1.0/" + name2, data2)
        self.assertEqual(self.channel("verify")[1]["stable"], "1.1.0")

    def test_staged_file_already_on_both_backends_is_verified(self):
        self.new_app("restage")
        name, data, blockmap, decl = self.installer("restage", "2.0.0")
        for backend in (self.r2, self.s3):
            self.env.s3_put(backend, "restage/2.0.0/" + name, data)
        status, doc = self.register("restage", "2.0.0", [decl])
        self.assertEqual(status, 201, doc)
        for label in ("r2", "s3"):
            self.assertEqual(doc["backends"][label],
                             [{"file": name, "action": "verified", "bytes": len(data)},
                              {"file": name + ".blockmap", "action": "uploaded", "bytes": len(blockmap)}])
        for backend in (self.r2, self.s3):
            self.assertEqual(self.env.s3_count(backend, "PUT", "restage/2.0.0/" + name), 1, "not uploaded again")
            self.assert_on_backend(backend, "restage/2.0.0/%s.blockmap" % name, blockmap)

    def test_a_differing_copy_on_s3_is_refused_and_nothing_registered(self):
        self.new_app("differ")
        name, data, blockmap, decl = self.installer("differ", "1.0.0", size=2 * MIB)
        self.assertEqual(self.register("differ", "1.0.0", [decl])[0], 201)
        before = self.channel("differ")[1]
        # staged 1.1.0, but S3 already holds other bytes of the same length under its key
        name2, data2, _, decl2 = self.installer("differ", "1.1.0", size=2 * MIB)
        other = bytearray(data2)
        other[MIB + 7] ^= 0x01
        self.env.s3_put(self.s3, "differ/1.1.0/" + name2, bytes(other))
        status, doc = self.register("differ", "1.1.0", [decl2])
        self.assertEqual(status, 422, doc)
        self.assertEqual(doc["error"]["code"], "backend_mismatch")
        self.assertIn("s3", doc["error"]["message"])
        self.assertEqual(self.channel("differ")[1], before, "nothing registered")
        self.assert_on_backend(self.s3, "differ/1.1.0/" + name2, bytes(other))  # never overwritten

        # not staged either: R2's copy is right, S3's is not
        _, data3, _, decl3 = self.installer("differ", "1.2.0", size=2 * MIB, stage=False)
        self.env.s3_put(self.r2, "differ/1.2.0/" + decl3["name"], data3)
        self.env.s3_put(self.s3, "differ/1.2.0/" + decl3["name"], data3[:-1] + bytes([data3[-1] ^ 0xff]))
        status, doc = self.register("differ", "1.2.0", [decl3])
        self.assertEqual(status, 422, doc)
        self.assertEqual(doc["error"]["code"], "backend_mismatch")
        self.assertIn("on s3", doc["error"]["message"])
        self.assertEqual(self.channel("differ")[1], before, "nothing registered")

    def test_a_file_missing_on_one_backend_and_not_staged_is_refused(self):
        self.new_app("missing")
        name, data, _, decl = self.installer("missing", "1.0.0", stage=False)
        self.env.s3_put(self.r2, "missing/1.0.0/" + name, data)
        status, doc = self.register("missing", "1.0.0", [decl])
        self.assertEqual(status, 422, doc)
        self.assertEqual(doc["error"]["code"], "file_missing")
        self.assertIn("s3", doc["error"]["message"])
        self.assertEqual(self.channel("missing")[0], 404, "nothing registered: the channel does not exist")
        self.assert_not_on_backend(self.s3, "missing/1.0.0/" + name)
        self.assert_on_backend(self.r2, "missing/1.0.0/" + name, data)

    def test_r2_with_a_wrong_secret_is_a_502_naming_r2_and_nothing_is_registered(self):
        wrong = "not-the-secret-0123456789"
        control = self.env.start_control("--config", self.env.object_store_config(self.r2, self.s3, r2_secret=wrong,
                                                                                  name="wrong-secret"))
        self.new_app("badkey")
        name, data, _, decl = self.installer("badkey", "1.0.0")
        status, doc = self.register("badkey", "1.0.0", [decl], control=control)
        self.assertEqual(status, 502, doc)
        self.assertEqual(doc["error"]["code"], "backend_error")
        self.assertIn("r2: 403 SignatureDoesNotMatch", doc["error"]["message"])
        self.assertEqual(self.channel("badkey")[0], 404, "nothing registered")
        self.assert_not_on_backend(self.r2, "badkey/1.0.0/" + name)
        self.assert_not_on_backend(self.s3, "badkey/1.0.0/" + name)
        control.stop()
        with open(control.log, errors="replace") as f:
            log = f.read()
        self.assertIn("SignatureDoesNotMatch", log, "the failure is logged")
        self.assertNotIn(wrong, log, "never the secret")
        self.assertNotIn(harness.S3_SECRET_KEY, log, "never the secret")

    def test_a_failing_s3_is_a_502_naming_it_and_nothing_is_registered(self):
        self.new_app("fault")
        name, data, _, decl = self.installer("fault", "1.0.0", size=MIB // 2)
        self.env.s3_fault(self.s3, 500)
        try:
            status, doc = self.register("fault", "1.0.0", [decl])
        finally:
            self.env.s3_fault(self.s3, 0)
        self.assertEqual(status, 502, doc)
        self.assertEqual(doc["error"]["code"], "backend_error")
        self.assertIn("s3: 500 InternalError", doc["error"]["message"])
        self.assertEqual(self.channel("fault")[0], 404, "nothing registered")
        self.assert_on_backend(self.r2, "fault/1.0.0/" + name, data)  # R2 came first; a retry verifies it
        status, doc = self.register("fault", "1.0.0", [decl])
        self.assertEqual(status, 201, doc)
        self.assertEqual(doc["backends"]["r2"][0], {"file": name, "action": "verified", "bytes": len(data)})
        self.assertEqual(doc["backends"]["s3"][0], {"file": name, "action": "uploaded", "bytes": len(data)})
        self.assert_on_backend(self.s3, "fault/1.0.0/" + name, data)

    def test_the_cli_prints_what_each_backend_did(self):
        self.new_app("cli")
        name, data, blockmap, _ = self.installer("cli", "1.2.0", size=MIB + 1)
        path = os.path.join(self.env.storage, "cli", "1.2.0", name)
        r = self.env.run("updraft", "--server", self.control.url, "--api-key", self.admin, "releases", "create", "cli",
                         "--version", "1.2.0", "--artifact", "%s:windows:x64:%s" % (name, path))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        for line in ("r2: uploaded %s (%d bytes)" % (name, len(data)),
                     "r2: uploaded %s.blockmap (%d bytes)" % (name, len(blockmap)),
                     "s3: uploaded %s (%d bytes)" % (name, len(data)),
                     "s3: uploaded %s.blockmap (%d bytes)" % (name, len(blockmap))):
            self.assertIn(line, lines, r.stdout)
        for backend in (self.r2, self.s3):
            self.assert_on_backend(backend, "cli/1.2.0/" + name, data)

    def test_local_storage_records_block_digests_too(self):
        control = self.env.start_control()  # object_store.kind local: the --storage directory only
        self.new_app("local")
        name, data, blockmap, decl = self.installer("local", "1.0.0", size=3 * MIB + 5)
        status, doc = self.register("local", "1.0.0", [decl], control=control)
        self.assertEqual(status, 201, doc)
        self.assertEqual(doc["backends"], {})
        self.assert_file_record(doc["release"]["files"][0], data, blockmap)
        self.assertEqual(len(doc["release"]["files"][0]["blocks"]) // 64, 4)  # 32-byte SHA-256 digests, as hex
        self.assertEqual(self.env.s3_count(self.r2, "PUT", "local/1.0.0/" + name), 0, "nothing leaves the host")
        # one block or less: no digests, the origin checks such a file whole
        small = self.env.put_artifact("local", "1.1.0", "Local-Setup-1.1.0.exe", os.urandom(BLOCK_SIZE))
        status, doc = self.register("local", "1.1.0", [dict(small, platform="windows", arch="x64")], control=control)
        self.assertEqual(status, 201, doc)
        f = doc["release"]["files"][0]
        self.assertNotIn("blocks", f)
        self.assertEqual(f["blockmap_size"], -1)
        self.assertNotIn("blockmap_sha512", f)
        control.stop()


if __name__ == "__main__":
    unittest.main()
