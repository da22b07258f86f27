#!/usr/bin/env python3
"""Story: cached objects are not trusted forever. A byte that changes on disk is found by the
background scrub, the object is removed and the next request refills it from the backend with the
right bytes; an object that changed while the origin was down is checked before its first serve,
so no client ever receives the changed bytes.

Two s3rvers (tests/support/s3rver.js) stand in for R2 and S3. Every check compares the sha512 of
what the client received with the registered bytes, and counts backend GETs at the s3rver.
"""
import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP = "acme"


def digest(data):
    return hashlib.sha512(data).hexdigest()




def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


class Scrub(harness.StackTest):
    env_name = "scrub"
    s3rvers = ("r2", "s3")
    programs = ("control",)
    control_public_url = "http://cdn.example"
    keys = (("key", "admin", "test"),)
    apps = ((APP, "Acme"),)
    version = 0

    def start_origin_with(self, cache_dir, scrub_mb_per_s):
        conf = self.env.object_store_config(self.r2, self.s3, extra="cache:\n  scrub_mb_per_s: %d\n" % scrub_mb_per_s)
        return self.env.start_origin("--config", conf, "--cache", cache_dir)

    def publish(self, size):
        Scrub.version += 1
        version = "3.0.%d" % Scrub.version
        name = "Acme-Setup-%s.exe" % version
        data = os.urandom(size)
        f = self.env.put_artifact(APP, version, name, data)
        f.update(platform="windows", arch="x64")
        key = "%s/%s/%s" % (APP, version, name)
        for b in (self.r2, self.s3):
            self.env.s3_put(b, key, data)
        st, body = self.env.register_release(self.key, APP, version, [f])
        self.assertEqual(st, 201, body)
        return key, "/artifacts/" + key, data

    def get(self, origin, path, headers=None):
        return self.env.http("GET", path, headers=headers, base=origin, timeout=30)

    def metrics(self, origin):
        return self.env.http("GET", "/metrics", base=origin)[2].decode()

    def fill(self, origin, cache_dir, path, data):
        """A miss, then waits until the object is on disk under its sha512; returns its file."""
        st, _, body = self.get(origin, path)
        self.assertEqual((st, digest(body)), (200, digest(data)))
        file = os.path.join(cache_dir, digest(data))
        harness.poll(lambda: os.path.exists(file), bool, 10)
        self.assertTrue(os.path.exists(file), "the fill was not kept")
        return file

    def test_01_the_scrub_removes_a_corrupted_object_and_the_next_request_refills_it(self):
        cache_dir = os.path.join(self.env.dir, "cache-scrub")
        origin = self.start_origin_with(cache_dir, 50)
        key, path, data = self.publish(700 * 1024 + 3)
        file = self.fill(origin, cache_dir, path, data)
        self.assertEqual(self.env.s3_count(self.r2, "GET", key), 1)
        flip_byte(file, 123457)
        m = harness.poll(lambda: self.metrics(origin),
                         lambda m: harness.metric(m, "updraft_cache_scrub_removed_total") >= 1, 15)
        self.assertEqual(harness.metric(m, "updraft_cache_scrub_removed_total"), 1, "the scrub did not remove it")
        self.assertEqual(harness.metric(m, "updraft_cache_verifications_total", when="scrub", result="corrupt"), 1)
        self.assertGreater(harness.metric(m, "updraft_cache_scrub_bytes_total"), 0)
        self.assertFalse(os.path.exists(file), "the corrupted file is still in the cache")
        with open(origin.log) as f:
            self.assertIn("does not match its sha512: removing it", f.read())
        # the next request is a miss, filled from R2 with the registered bytes
        st, _, body = self.get(origin, path)
        self.assertEqual((st, digest(body)), (200, digest(data)))
        self.assertEqual(self.env.s3_count(self.r2, "GET", key), 2)
        harness.poll(lambda: os.path.exists(file), bool, 10)
        with open(file, "rb") as f:
            self.assertEqual(digest(f.read()), digest(data), "the refilled file holds other bytes")
        # a good object is left alone by later passes
        m = harness.poll(lambda: self.metrics(origin),
                         lambda m: harness.metric(m, "updraft_cache_verifications_total", when="scrub", result="ok") >= 1, 15)
        self.assertGreaterEqual(harness.metric(m, "updraft_cache_verifications_total", when="scrub", result="ok"), 1)
        self.assertEqual(harness.metric(m, "updraft_cache_scrub_removed_total"), 1)
        origin.stop()

    def test_02_after_a_restart_a_corrupted_object_is_never_served(self):
        cache_dir = os.path.join(self.env.dir, "cache-restart")
        origin = self.start_origin_with(cache_dir, 0)  # no scrub: the first-serve check alone must catch it
        bad_key, bad_path, bad = self.publish(3 * 1024 * 1024 + 11)
        range_key, range_path, ranged = self.publish(900 * 1024)
        good_key, good_path, good = self.publish(200 * 1024)
        files = [self.fill(origin, cache_dir, p, d) for p, d in ((bad_path, bad), (range_path, ranged), (good_path, good))]
        origin.stop()
        flip_byte(files[0], len(bad) - 1)  # the very last byte
        flip_byte(files[1], 100)
        origin = self.start_origin_with(cache_dir, 0)
        st, _, body = self.get(origin, bad_path)
        self.assertEqual((st, digest(body)), (200, digest(bad)), "served the corrupted bytes")
        self.assertEqual(self.env.s3_count(self.r2, "GET", bad_key), 2)
        # a range of a corrupted object: the right bytes too
        st, _, part = self.get(origin, range_path, headers={"Range": "bytes=50-199"})
        self.assertEqual((st, part), (206, ranged[50:200]))
        # an intact object is a hit, checked once, with no backend request
        for _ in range(2):
            st, _, body = self.get(origin, good_path)
            self.assertEqual((st, digest(body)), (200, digest(good)))
        self.assertEqual(self.env.s3_count(self.r2, "GET", good_key), 1)
        m = self.metrics(origin)
        self.assertEqual(harness.metric(m, "updraft_cache_verifications_total", when="first_serve", result="corrupt"), 2)
        self.assertEqual(harness.metric(m, "updraft_cache_verifications_total", when="first_serve", result="ok"), 1)
        with open(origin.log) as f:
            self.assertIn("failed its check before its first serve", f.read())
        harness.poll(lambda: os.path.exists(files[0]), bool, 10)
        with open(files[0], "rb") as f:
            self.assertEqual(digest(f.read()), digest(bad), "the refilled file holds other bytes")
        origin.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
