#!/usr/bin/env python3
"""Story: one bad app document in object storage, or a stale R2, does not keep an origin from the
state the control plane published.

Real components on loopback. The control plane (object_store kind s3, integrity.block_size 64 KiB)
publishes to its own pair of s3rvers; the test then plays replication and copies what it published
(each app's newest document, then the index) to the pair the origin reads as R2 and S3, replacing
documents on the way where a story wants them bad or leaving one bucket behind. The origin (its own
data dir, state.poll_ms 300, state.max_document_bytes 32 KiB) polls those.

  a. app "alpha"'s newest document replaced on both buckets, in turn, by garbage, by one with a
     blocks record of block size 0, by one with a file record whose name is not a file name, and by
     one over state.max_document_bytes: each time app "bravo"'s change published alongside still
     reaches the origin, alpha keeps serving its last good release, /metrics counts the refusal by
     reason, the log names the app, backend, generation and reason, and the origin does not fetch
     alpha's document again at every poll (counted at the s3rvers); a good document of a newer
     generation is imported again
  b. R2 frozen at an older state while S3 has the newer one: the origin serves S3's generation
  c. a document refused on R2 while S3 holds a good one of the same generation: taken from S3
"""
import base64
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

POLL_MS = 300
DOC_MAX = 32768
INDEX = "_updraft/state/index.json"


def latest_key(app):
    return "_updraft/state/%s.json" % app




class StateSyncFaults(harness.StackTest):
    env_name = "state_sync_faults"
    s3rvers = ("r2c", "s3c", "r2", "s3")  # the control plane's pair, then the origin's
    survives = True

    @classmethod
    def set_up_stack(cls):
        env = cls.env
        conf = env.object_store_config(cls.r2c, cls.s3c, name="control", extra="integrity:\n  block_size: 65536\n")
        cls.control = env.start_control("--config", conf, public_url="http://cdn.example")
        cls.key = env.create_key()
        for app in ("alpha", "bravo"):
            cls.create_app(app, app.title(), key=cls.key)
            cls.release(app, "1.0.0")
        cls.replicate(("r2", "s3"))
        conf = env.object_store_config(cls.r2, cls.s3, name="origin", extra=(
            "state:\n  poll_ms: %d\n  max_document_bytes: %d\n" % (POLL_MS, DOC_MAX)))
        cls.origin = env.start_origin("--config", conf, "--data", os.path.join(env.dir, "origin-data"))
        for app in ("alpha", "bravo"):
            cls.wait_version(app, "1.0.0")

    # --- helpers ------------------------------------------------------------------------------

    @classmethod
    def release(cls, app, version):
        # alpha's installer spans three blocks of 64 KiB: its document holds a blocks record
        data = ("%s %s installer\n" % (app, version)).encode() * (7000 if app == "alpha" else 64)
        f = cls.env.put_artifact(app, version, "%s-Setup-%s.exe" % (app.title(), version), data)
        f.update(platform="windows", arch="x64")
        st, body = cls.env.register_release(cls.key, app, version, [f])
        assert st == 201, body
        return body["propagation"]["generation"]

    @classmethod
    def published(cls, app):
        st, raw = cls.env.s3_get(cls.r2c, latest_key(app))
        assert st == 200, (app, st)
        return raw

    @classmethod
    def replicate(cls, targets, docs=None):
        """Copies each app's newest document (or docs[app] instead), then the index, from the control
        plane's R2 to the origin's buckets named in targets."""
        st, index = cls.env.s3_get(cls.r2c, INDEX)
        assert st == 200, st
        for target in targets:
            for app in json.loads(index)["apps"]:
                body = (docs or {}).get(app)
                cls.env.s3_put(getattr(cls, target), latest_key(app), body if body is not None else cls.published(app))
            cls.env.s3_put(getattr(cls, target), INDEX, index)

    @classmethod
    def version(cls, app):
        st, _, body = cls.env.http("GET", "/update/%s/latest.yml" % app, base=cls.origin)
        return harness.parse_yaml(body.decode())["version"] if st == 200 else None

    @classmethod
    def wait_version(cls, app, version, timeout=15):
        got = harness.poll(lambda: cls.version(app), lambda v: v == version, timeout, interval=0.05)
        assert got == version, "the origin serves %s %s, not %s" % (app, got, version)

    def metrics(self):
        st, _, body = self.env.http("GET", "/metrics", base=self.origin)
        self.assertEqual(st, 200)
        return body.decode()

    def log(self):
        with open(self.origin.log, errors="replace") as f:
            return f.read()

    def gets(self, key):
        return sum(self.env.s3_count(getattr(self, b), "GET", key) for b in ("r2", "s3"))

    @staticmethod
    def edited(doc, db, key_suffix, value=None, new_key=None):
        """doc with the record of records[db] whose key ends in key_suffix given a new value, or copied
        under new_key."""
        d = json.loads(doc)
        recs = d["records"][db]
        keys = [k for k in recs if k.endswith(key_suffix)]
        assert len(keys) == 1, (db, key_suffix, sorted(recs))
        if new_key is not None:
            recs[new_key] = recs[keys[0]]
        else:
            recs[keys[0]] = value
        return json.dumps(d, separators=(",", ":"), sort_keys=True).encode()

    # --- stories ------------------------------------------------------------------------------

    def test_a_a_bad_document_of_one_app_holds_back_neither_the_others_nor_the_poll(self):
        bad = (
            ("garbage", "malformed", lambda doc, v: b"<html>this is no state document</html>\n"),
            ("block size 0", "invalid_record", lambda doc, v: self.edited(
                doc, "blocks", "/Alpha-Setup-%s.exe" % v, base64.b64encode(b"\0\0\0\0" + b"\x11" * 16 * 3).decode())),
            ("a bad file name", "invalid_record", lambda doc, v: self.edited(
                doc, "files", "/Alpha-Setup-%s.exe" % v, new_key="alpha/%s/Alpha Setup.exe" % v)),
            ("oversized", "too_big", lambda doc, v: json.dumps(dict(json.loads(doc), pad="x" * DOC_MAX)).encode()),
        )
        for i, (what, reason, make) in enumerate(bad):
            with self.subTest(what):
                alpha_v, bravo_v = "1.%d.0" % (i + 1), "1.%d.0" % (i + 1)
                alpha_gen = self.release("alpha", alpha_v)
                self.release("bravo", bravo_v)
                good = self.published("alpha")
                self.assertLess(len(good), DOC_MAX, "the good document must fit state.max_document_bytes")
                before = self.metrics()
                self.replicate(("r2", "s3"), docs={"alpha": make(good, alpha_v)})

                # the other app's change reaches the origin; alpha keeps its last good release
                self.wait_version("bravo", bravo_v)
                self.assertEqual(self.version("alpha"), "1.0.0")
                # each copy refused counts (S3's is not tried when the poll saw only R2's index moved yet)
                was = harness.metric(before, "updraft_state_import_rejected_total", reason=reason)
                m = harness.poll(self.metrics, lambda m: harness.metric(m, "updraft_state_import_rejected_total", reason=reason) > was, 5)
                self.assertIn(harness.metric(m, "updraft_state_import_rejected_total", reason=reason), (was + 1, was + 2))
                self.assertGreaterEqual(harness.metric(m, "updraft_state_apps_behind"), 1)
                log = self.log()
                self.assertRegex(log, r"state: alpha: the document of generation %d from r2 is refused \(%s\): \S"
                                 % (alpha_gen, reason))
                self.assertRegex(log, r"state: alpha: generation %d is refused \(%s\); this origin keeps serving" % (alpha_gen, reason))

                # the poll goes on at its interval and does not fetch alpha's refused document again
                docs0, index0 = self.gets(latest_key("alpha")), self.gets(INDEX)
                time.sleep(8 * POLL_MS / 1000)
                docs1, index1 = self.gets(latest_key("alpha")), self.gets(INDEX)
                self.assertEqual(docs1, docs0, "alpha's refused document was fetched again")
                self.assertGreaterEqual(index1 - index0, 2 * 4, "the origin stopped polling")
                self.assertLessEqual(index1 - index0, 2 * 12, "the origin polls faster than state.poll_ms")
                self.assertEqual(self.version("alpha"), "1.0.0")

        # a good document of a newer generation is taken again
        self.release("alpha", "2.0.0")
        self.replicate(("r2", "s3"))
        self.wait_version("alpha", "2.0.0")
        self.assertEqual(harness.metric(self.metrics(), "updraft_state_apps_behind"), 0)

    def test_b_a_stale_r2_does_not_hide_a_newer_s3(self):
        gen = self.release("bravo", "3.0.0")
        # S3 has it; R2 keeps answering its older index and documents
        self.replicate(("s3",))
        self.wait_version("bravo", "3.0.0")
        self.assertRegex(self.log(), r"state: bravo now at generation %d \(was \d+\) from s3" % gen)
        st, index = self.env.s3_get(self.r2, INDEX)
        self.assertLess(json.loads(index)["apps"]["bravo"], gen)  # R2 was stale all along

    def test_c_a_document_refused_on_r2_is_taken_from_s3(self):
        gen = self.release("bravo", "4.0.0")
        # S3 first: a poll between the two sees S3 newer and takes it from there anyway
        self.replicate(("s3",))
        self.replicate(("r2",), docs={"bravo": b"{\"format\":1,"})
        self.wait_version("bravo", "4.0.0")
        self.assertRegex(self.log(), r"state: bravo now at generation %d \(was \d+\) from s3" % gen)
        self.assertEqual(self.version("alpha"), "2.0.0")


if __name__ == "__main__":
    unittest.main(verbosity=2)
