#!/usr/bin/env python3
"""Story: a burst of cold misses against a slow backend is served in full, never trips a breaker,
and asks the backend for no more at once than cache.max_fills; beyond the fill queue a miss gets a
clean 503 with Retry-After instead.

Two s3rvers (tests/support/s3rver.js) stand in for R2 and S3; R2 is made slow with its delay fault
(every GET waits before its answer). The first origin allows 80 fills at once, more than libcurl's
64 connections per backend host, so some transfers also wait inside libcurl for a connection: with
a first-byte timeout shorter than two backend answers, a clock started before the request is sent
would time those out and open R2's breaker.
"""
import hashlib
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP = "acme"
DELAY_MS = 1000  # each backend GET's wait before its answer


def digest(data):
    return hashlib.sha512(data).hexdigest()




class Fills(harness.StackTest):
    env_name = "fills"
    s3rvers = ("r2", "s3")
    programs = ("control",)
    control_public_url = "http://cdn.example"
    keys = (("key", "admin", "test"),)
    apps = ((APP, "Acme"),)
    version = 0

    @classmethod
    def start_origin_with(cls, cache_extra, name):
        conf = cls.env.object_store_config(cls.r2, cls.s3, extra=(
            "  connect_timeout_ms: 500\n  first_byte_timeout_ms: 1500\n  stall_timeout_ms: 1500\n"
            "  breaker:\n    failures: 3\n    open_ms: 10000\n"
            "cache:\n  scrub_mb_per_s: 0\n" + cache_extra))
        return cls.env.start_origin("--config", conf, "--cache", os.path.join(cls.env.dir, name))

    @classmethod
    def set_up_stack(cls):
        cls.origin = cls.start_origin_with("  max_fills: 80\n  fill_queue: 256\n", "cache-burst")

    def publish(self, n, size):
        """Registers n releases of one distinct file each, on R2 only; returns [(path, data)]."""
        out = []
        threads = []
        for _ in range(n):
            Fills.version += 1
            version = "2.0.%d" % Fills.version
            name = "Acme-Setup-%s.exe" % version
            data = os.urandom(size)
            f = self.env.put_artifact(APP, version, name, data)
            f.update(platform="windows", arch="x64")
            st, body = self.env.register_release(self.key, APP, version, [f])
            self.assertEqual(st, 201, body)
            key = "%s/%s/%s" % (APP, version, name)
            threads.append(threading.Thread(target=self.env.s3_put, args=(self.r2, key, data)))
            out.append(("/artifacts/" + key, data))
        for i in range(0, len(threads), 16):
            for t in threads[i:i + 16]:
                t.start()
            for t in threads[i:i + 16]:
                t.join(60)
        return out

    def slow_r2(self, ms):
        st, _, body = self.env.http("PUT", "/__updraft/faults?delay_ms=%d" % ms, base=self.r2)
        self.assertEqual(st, 200, body)
        if ms:
            self.addCleanup(self.slow_r2, 0)

    def metrics(self, origin):
        return self.env.http("GET", "/metrics", base=origin)[2].decode()

    def get_all(self, origin, paths, results, start=0):
        """GETs every path at once on threads of its own; results[start + i] is (status, headers, body)
        or the exception."""
        def fetch(i, path):
            try:
                results[start + i] = self.env.http("GET", path, base=origin, timeout=60)
            except Exception as e:  # asserted by the caller
                results[start + i] = e
        threads = [threading.Thread(target=fetch, args=(i, p)) for i, p in enumerate(paths)]
        for t in threads:
            t.start()
        return threads

    def wait_metric(self, origin, name, value):
        harness.poll(lambda: harness.metric(self.metrics(origin), name), lambda v: v >= value, 10)

    def test_01_a_hundred_cold_misses_against_a_slow_backend_all_succeed_and_no_breaker_opens(self):
        files = self.publish(100, 64 * 1024 + 17)
        self.slow_r2(DELAY_MS)
        results = [None] * len(files)
        began = time.monotonic()
        for t in self.get_all(self.origin, [p for p, _ in files], results):
            t.join(60)
        took = time.monotonic() - began
        for (path, data), r in zip(files, results):
            self.assertIsInstance(r, tuple, "%s: %r" % (path, r))
            self.assertEqual((r[0], digest(r[2])), (200, digest(data)), path)
        m = self.metrics(self.origin)
        self.assertEqual(harness.metric(m, "updraft_backend_breaker_opens_total", backend="r2"), 0, "R2's breaker opened")
        self.assertEqual(harness.metric(m, "updraft_backend_breaker_state", backend="r2"), 0, "R2's breaker is not closed")
        for outcome in ("first_byte", "connect", "stall", "transport"):
            self.assertEqual(harness.metric(m, "updraft_backend_requests_total", backend="r2", outcome=outcome), 0, outcome)
        self.assertEqual(harness.metric(m, "updraft_backend_requests_total", backend="r2", outcome="ok"), 100)
        self.assertEqual(harness.metric(m, "updraft_backend_failovers_total", **{"from": "r2", "to": "s3"}), 0, "failed over to S3")
        self.assertLessEqual(harness.metric(m, "updraft_cache_fills_active_max"), 80, "more fills at once than cache.max_fills")
        self.assertGreaterEqual(harness.metric(m, "updraft_cache_fills_active_max"), 64, "the burst never filled the slots")
        self.assertEqual(harness.metric(m, "updraft_cache_fills_queued_total"), 20, "the misses beyond the cap did not queue")
        self.assertEqual(harness.metric(m, "updraft_cache_fills_rejected_total"), 0)
        self.assertEqual((harness.metric(m, "updraft_cache_fills_active"), harness.metric(m, "updraft_cache_fill_queue")), (0, 0))
        # 64 connections to R2: at least two backend answers in a row for the last ones
        self.assertGreater(took, 2 * DELAY_MS / 1000.0 * 0.9)

    def test_02_beyond_the_fill_queue_a_miss_gets_503_with_retry_after(self):
        tiny = self.start_origin_with("  max_fills: 1\n  fill_queue: 1\n", "cache-tiny")
        (a, data_a), (b, data_b), (c, _) = self.publish(3, 4096)
        self.slow_r2(DELAY_MS)
        results = [None] * 3
        # A takes the one slot
        threads = self.get_all(tiny, [a], results)
        self.wait_metric(tiny, "updraft_cache_fills_active", 1)
        # a second request for A joins its fill and takes no slot; B waits in the queue
        threads += self.get_all(tiny, [a, b], results, start=1)
        self.wait_metric(tiny, "updraft_cache_fill_queue", 1)
        # C finds the slot taken and the queue full
        st, h, body = self.env.http("GET", c, base=tiny)
        self.assertEqual(st, 503, body)
        self.assertEqual(h.get("retry-after"), "5")
        self.assertIn(b"fill", body)
        self.assertIn(b"retry", body)
        self.assertEqual(h.get("cache-control"), "no-store")
        for t in threads:
            t.join(60)
        for r, data in zip(results, (data_a, data_a, data_b)):
            self.assertIsInstance(r, tuple, r)
            self.assertEqual((r[0], digest(r[2])), (200, digest(data)))
        m = self.metrics(tiny)
        self.assertEqual(harness.metric(m, "updraft_cache_fills_rejected_total"), 1)
        self.assertEqual(harness.metric(m, "updraft_cache_fills_queued_total"), 1)
        self.assertEqual(harness.metric(m, "updraft_cache_fills_active_max"), 1)
        self.assertEqual(harness.metric(m, "updraft_cache_lookups_total", result="joined"), 1)
        with open(tiny.log) as f:
            self.assertRegex(f.read(), r"artifact unavailable: too many backend fills")
        # once a slot is free, C is served
        st, _, body = self.env.http("GET", c, base=tiny)
        self.assertEqual(st, 200)

    def test_03_check_refuses_fill_settings_out_of_bounds(self):
        for setting, why in (("max_fills: 0", "cache.max_fills: 0 is outside 1..4096"),
                             ("max_fills: 4097", "cache.max_fills: 4097 is outside 1..4096"),
                             ("fill_queue: 1048577", "cache.fill_queue: 1048577 is outside 0..1048576"),
                             ("scrub_mb_per_s: 100001", "cache.scrub_mb_per_s: 100001 is outside 0..100000")):
            path = self.env.write("bad-fills.yaml", "cache:\n  %s\n" % setting)
            r = self.env.run("updraft-origin", "--check", "--config", path)
            self.assertNotEqual(r.returncode, 0, setting)
            self.assertIn("bad-fills.yaml:2: " + why, r.stderr)
        path = self.env.write("good-fills.yaml", "cache:\n  max_fills: 4096\n  fill_queue: 0\n  scrub_mb_per_s: 0\n")
        r = self.env.run("updraft-origin", "--check", "--config", path)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
