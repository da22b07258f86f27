#!/usr/bin/env python3
"""Story: the origin serves artifacts that live in object storage, R2 first and the S3 mirror when
R2 fails, and every byte a client receives has been verified.

Two real s3rver instances (tests/support/s3rver.js: @20minutes/s3rver 5, which checks SigV4) stand
in for R2 and S3. Releases are registered by the control plane from the local staging directory
(which computes per-block digests) and the same bytes are uploaded to both s3rvers with curl's own
signer. Every check compares the sha512 of what the client received with the registered bytes, and
counts backend GETs at the s3rver itself.
"""
import base64
import ctypes
import ctypes.util
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP = "acme"
BLOCK = 256 * 1024  # the control plane's integrity.block_size for these tests: small blocks, many of them


def digest(data):
    return hashlib.sha512(data).hexdigest()


class _XXH128(ctypes.Structure):
    _fields_ = [("low64", ctypes.c_uint64), ("high64", ctypes.c_uint64)]


def xxh3_128(data):
    """XXH3-128 in its canonical (big-endian) form: the block digest of releases registered before store schema 4."""
    lib = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
    lib.XXH3_128bits.restype = _XXH128
    lib.XXH3_128bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    h = lib.XXH3_128bits(data, len(data))
    return h.high64.to_bytes(8, "big") + h.low64.to_bytes(8, "big")


def with_sha512(file_record, sha512_raw):
    """A packed files record (uint64 size, 64-byte sha512, 4 bytes) with another sha512."""
    return file_record[:8] + sha512_raw + file_record[72:]




def read_to_close(s, got, reset_is_close=False):
    """Reads a response from socket s (after the bytes already in `got`) until the server closes the
    connection (or resets it, with reset_is_close); closes s. Returns (head, body)."""
    while True:
        try:
            chunk = s.recv(1 << 20)
        except ConnectionResetError:
            if not reset_is_close:
                raise
            break
        if not chunk:
            break
        got += chunk
    s.close()
    head, _, body = bytes(got).partition(b"\r\n\r\n")
    return head, body


class ObjectStorage(harness.StackTest):
    version = 0
    env_name = "object_storage"
    s3rvers = ("r2", "s3")
    programs = ("control",)
    control_public_url = "http://cdn.example"
    keys = (("key", "admin", "test"),)
    apps = ((APP, "Acme"),)

    @classmethod
    def control_args(cls):
        return ("--config", cls.env.write("control.yaml", 'listen: ["127.0.0.1:0"]\nintegrity:\n  block_size: %d\n' % BLOCK))

    @classmethod
    def set_up_stack(cls):
        cls.origin = cls.start_origin_with()

    # --- helpers ------------------------------------------------------------------------------

    @classmethod
    def start_origin_with(cls, extra="", r2_secret=harness.S3_SECRET_KEY, data=None):
        conf = cls.env.object_store_config(cls.r2, cls.s3, r2_secret=r2_secret, extra=(
            "  connect_timeout_ms: 500\n  first_byte_timeout_ms: 1500\n  stall_timeout_ms: 1500\n"
            "  breaker:\n    failures: 3\n    open_ms: 1500\n" + extra))
        args = ["--config", conf]
        if data is not None:
            args += ["--data", data]
        return cls.env.start_origin(*args)

    def publish(self, size, name=None, backends=None, blockmap=None):
        """Registers a new version with one file of `size` random bytes (plus NAME.blockmap when given),
        uploads the same bytes to the given s3rvers (both by default). Returns (key, path, data)."""
        ObjectStorage.version += 1
        version = "1.0.%d" % ObjectStorage.version
        name = name or "Acme-Setup-%s.exe" % version
        data = os.urandom(size)
        f = self.env.put_artifact(APP, version, name, data)
        f.update(platform="windows", arch="x64")
        key = "%s/%s/%s" % (APP, version, name)
        for b in (self.r2, self.s3) if backends is None else backends:
            self.env.s3_put(b, key, data)
        if blockmap is not None:
            self.env.put_artifact(APP, version, name + ".blockmap", blockmap)
            for b in (self.r2, self.s3) if backends is None else backends:
                self.env.s3_put(b, key + ".blockmap", blockmap)
        st, body = self.env.register_release(self.key, APP, version, [f])
        self.assertEqual(st, 201, body)
        return key, "/artifacts/" + key, data

    def get(self, path, headers=None, origin=None):
        return self.env.http("GET", path, headers=headers, base=origin or self.origin, timeout=60)

    def metrics(self, origin=None):
        return self.env.http("GET", "/metrics", base=origin or self.origin)[2].decode()

    def access_log_line(self, path, needle, origin=None):
        """The last access-log line for a path that holds `needle`, waiting for it (the log is
        flushed once a second)."""
        origin = origin or self.origin
        log = os.path.join(self.env.dir, "%s.access.log" % origin.name)
        deadline = time.monotonic() + 5
        while True:
            with open(log) as f:
                lines = [l for l in f.read().splitlines() if 'path="%s"' % path in l]
            if any(needle in l for l in lines) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(any(needle in l for l in lines), "no access-log line for %s with %s in:\n%s"
                        % (path, needle, "\n".join(lines)))
        return [l for l in lines if needle in l][-1]

    def origin_log(self, origin=None):
        with open((origin or self.origin).log) as f:
            return f.read()

    def cached_file(self, sha512_hex, data_dir=None):
        """The path of a cached object, waiting for it: the cache's thread fsyncs and renames a verified fill into
        place after its last bytes went to the readers."""
        path = os.path.join(data_dir or self.env.data, "cache", sha512_hex)
        deadline = time.monotonic() + 5
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        return path

    def cached_files(self, data_dir=None):
        d = os.path.join(data_dir or self.env.data, "cache")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def restart_r2(self):
        port, data_dir = self.r2.port, self.r2.s3dir
        if self.r2.alive():
            self.r2.stop()
        ObjectStorage.r2 = self.env.start_s3rver("r2", port=port, data_dir=data_dir)

    # --- the stories --------------------------------------------------------------------------

    def test_01_cold_miss_then_hit(self):
        key, path, data = self.publish(3 * BLOCK + 1234)
        st, h, body = self.get(path)
        self.assertEqual(st, 200)
        self.assertEqual(digest(body), digest(data))
        self.assertEqual(self.env.s3_count(self.r2, "GET", key), 1)
        self.assertEqual(self.env.s3_count(self.s3, "GET", key), 0)
        self.access_log_line(path, "cache=miss backend=r2")
        # the cache holds exactly these bytes under their sha512
        # the client may have every (block-verified) byte before the finisher thread has named the file
        self.assertIn(digest(data), harness.poll(self.cached_files, lambda files: digest(data) in files, 5))
        with open(os.path.join(self.env.data, "cache", digest(data)), "rb") as f:
            self.assertEqual(f.read(), data)
        # a hit: no backend request, same bytes, ranges from the cache
        st, h, body = self.get(path)
        self.assertEqual((st, digest(body)), (200, digest(data)))
        st, h, part = self.get(path, headers={"Range": "bytes=%d-%d" % (BLOCK - 5, BLOCK + 5)})
        self.assertEqual((st, part), (206, data[BLOCK - 5:BLOCK + 6]))
        self.assertEqual(self.env.s3_count(self.r2, "GET", key), 1)
        self.access_log_line(path, "cache=hit")

    def test_02_fifty_concurrent_misses_make_one_backend_get(self):
        key, path, data = self.publish(8 * BLOCK + 77)
        results = [None] * 50

        def fetch(i):
            try:
                results[i] = self.get(path)
            except Exception as e:  # recorded, asserted below
                results[i] = e
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for r in results:
            self.assertIsInstance(r, tuple, r)
            self.assertEqual((r[0], digest(r[2])), (200, digest(data)))
        self.assertEqual(self.env.s3_count(self.r2, "GET", key), 1)
        self.assertEqual(self.env.s3_count(self.s3, "GET", key), 0)
        m = self.metrics()
        self.assertGreaterEqual(harness.metric(m, "updraft_cache_lookups_total", result="joined") + harness.metric(
            m, "updraft_cache_lookups_total", result="hit"), 49)

    def test_03_range_and_multirange_on_a_miss(self):
        key, path, data = self.publish(6 * BLOCK)
        st, h, part = self.get(path, headers={"Range": "bytes=%d-%d" % (4 * BLOCK + 10, 4 * BLOCK + 99)})
        self.assertEqual((st, part), (206, data[4 * BLOCK + 10:4 * BLOCK + 100]))
        key2, path2, data2 = self.publish(6 * BLOCK)
        st, h, body = self.get(path2, headers={"Range": "bytes=0-9,%d-%d" % (5 * BLOCK, 5 * BLOCK + 9)})
        self.assertEqual(st, 206)
        self.assertIn(b"multipart/byteranges", h["content-type"].encode())
        self.assertIn(data2[:10], body)
        self.assertIn(data2[5 * BLOCK:5 * BLOCK + 10], body)

    def test_04_r2_answering_500_fails_over_to_s3(self):
        key, path, data = self.publish(2 * BLOCK + 3)
        self.env.s3_fault(self.r2, 500)
        try:
            st, h, body = self.get(path)
        finally:
            self.env.s3_fault(self.r2, 0)
        self.assertEqual((st, digest(body)), (200, digest(data)))
        self.assertEqual(self.env.s3_count(self.s3, "GET", key), 1)
        self.access_log_line(path, "backend=r2>s3")
        m = self.metrics()
        self.assertGreaterEqual(harness.metric(m, "updraft_backend_failovers_total", **{"from": "r2", "to": "s3"}), 1)
        self.assertGreaterEqual(harness.metric(m, "updraft_backend_errors_total", backend="r2", kind="server"), 1)

    def test_05_r2_serving_a_corrupted_copy(self):
        key, path, data = self.publish(5 * BLOCK)
        # flip one byte in R2's copy, in the fourth block: the first three verify and are kept
        self.env.s3_flip_byte(self.r2, key, 3 * BLOCK + 100, 0xFF)
        st, h, body = self.get(path)
        self.assertEqual((st, digest(body)), (200, digest(data)))
        log = self.origin_log()
        self.assertIn("does not match its digest", log)
        self.assertRegex(log, r"continuing from backend s3 at byte %d" % (3 * BLOCK))
        m = self.metrics()
        self.assertGreaterEqual(harness.metric(m, "updraft_backend_errors_total", backend="r2", kind="integrity"), 1)
        self.assertIn(digest(data), harness.poll(self.cached_files, lambda files: digest(data) in files, 5))
        with open(os.path.join(self.env.data, "cache", digest(data)), "rb") as f:
            self.assertEqual(digest(f.read()), digest(data))

    def test_06_404_on_r2_is_checked_on_s3(self):
        key, path, data = self.publish(1000, backends=(self.s3,))
        st, h, body = self.get(path)
        self.assertEqual((st, body), (200, data))
        key, path, data = self.publish(1000, backends=())
        st, h, body = self.get(path)
        self.assertEqual(st, 404)
        self.assertEqual(self.env.s3_count(self.r2, "GET", key), 1)
        self.assertEqual(self.env.s3_count(self.s3, "GET", key), 1)
        self.assertNotIn(digest(data), self.cached_files())

    def test_07_r2_stalled_with_sigstop(self):
        key, path, data = self.publish(2 * BLOCK + 5)
        os.kill(self.r2.popen.pid, signal.SIGSTOP)
        try:
            t = time.monotonic()
            st, h, body = self.get(path)
            took = time.monotonic() - t
        finally:
            os.kill(self.r2.popen.pid, signal.SIGCONT)
        self.assertEqual((st, digest(body)), (200, digest(data)))
        self.assertLess(took, 10)
        self.assertEqual(self.env.s3_count(self.s3, "GET", key), 1)
        m = self.metrics()
        self.assertGreaterEqual(harness.metric(m, "updraft_backend_requests_total", backend="r2", outcome="first_byte") +
                                harness.metric(m, "updraft_backend_requests_total", backend="r2", outcome="connect"), 1)

    def test_08_r2_refusing_connections_then_recovering(self):
        self.r2.stop()
        try:
            fetched = []
            for _ in range(4):
                key, path, data = self.publish(1500, backends=(self.s3,))
                st, h, body = self.get(path)
                self.assertEqual((st, body), (200, data))
                fetched.append(path)
            m = self.metrics()
            # refused connections (or a cached connection found dead) count as failures of R2; after 3 in a
            # row (earlier tests may have contributed one) the breaker is open and the last fetch skipped R2
            self.assertGreaterEqual(sum(harness.metric(m, "updraft_backend_requests_total", backend="r2", outcome=k)
                                        for k in ("connect", "transport")), 2)
            self.assertEqual(harness.metric(m, "updraft_backend_breaker_state", backend="r2"), 1)
            self.assertGreaterEqual(harness.metric(m, "updraft_backend_breaker_opens_total", backend="r2"), 1)
            self.access_log_line(fetched[-1], "backend=s3")
            self.assertIn("circuit open", self.origin_log())
        finally:
            self.restart_r2()
        time.sleep(1.7)  # the breaker's open period
        key, path, data = self.publish(1500)
        st, h, body = self.get(path)
        self.assertEqual((st, body), (200, data))
        self.assertEqual(self.env.s3_count(self.r2, "GET", key), 1)  # the half-open probe went to R2
        m = self.metrics()
        self.assertEqual(harness.metric(m, "updraft_backend_breaker_state", backend="r2"), 0)
        self.assertIn("circuit closed", self.origin_log())

    def test_09_both_down_is_a_clean_error_and_nothing_is_cached(self):
        key, path, data = self.publish(3000)
        self.env.s3_fault(self.r2, 503)
        self.env.s3_fault(self.s3, 500)
        try:
            st, h, body = self.get(path)
            self.assertIn(st, (502, 503))
            self.assertNotIn(digest(data), self.cached_files())
            self.assertFalse([f for f in self.cached_files() if f.startswith(".fill-")])
            # a few more failures open both breakers: then 503 with Retry-After, and /healthz says why
            for _ in range(4):
                self.get(path)
            st, h, body = self.get(path)
            self.assertEqual(st, 503)
            self.assertEqual(h.get("retry-after"), "5")
            st, _, body = self.env.http("GET", "/healthz", base=self.origin)
            self.assertEqual(st, 503, body)
        finally:
            self.env.s3_fault(self.r2, 0)
            self.env.s3_fault(self.s3, 0)
        time.sleep(1.7)
        st, h, body = self.get(path)
        self.assertEqual((st, body), (200, data))

    def test_10_wrong_secret_surfaces_as_an_auth_error(self):
        shared = self.env.start_origin("--config", self.env.object_store_config(
            self.r2, self.s3, r2_secret="not-the-secret", extra="  breaker:\n    failures: 100\n"),
            "--cache", os.path.join(self.env.dir, "cache-wrong-secret"))
        key, path, data = self.publish(4000)
        st, h, body = self.get(path, origin=shared)
        self.assertEqual((st, body), (200, data))  # S3 served it
        log = self.origin_log(shared)
        self.assertIn("authentication failed", log)
        self.assertIn("SignatureDoesNotMatch", log)
        self.assertNotIn("not-the-secret", log)
        m = self.metrics(shared)
        self.assertGreaterEqual(harness.metric(m, "updraft_backend_errors_total", backend="r2", kind="auth"), 1)
        shared.stop()

    def test_11_r2_killed_mid_transfer_of_100_mb(self):
        size = 100 * 1024 * 1024 + 12345
        key, path, data = self.publish(size)
        origin = self.env.start_origin("--config", self.env.object_store_config(
            self.r2, self.s3, extra="  stall_timeout_ms: 1500\ncache:\n  fill_lead_mib: 1\n"),
            "--cache", os.path.join(self.env.dir, "cache-kill"))
        s = socket.create_connection(("127.0.0.1", origin.port), timeout=60)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        got = bytearray()
        try:
            while len(got) < 2 * 1024 * 1024:  # a slow reader: the fill waits for it
                chunk = s.recv(65536)
                self.assertTrue(chunk)
                got += chunk
            time.sleep(0.5)
        finally:
            self.r2.kill()
            self.addCleanup(self.restart_r2)
        head, body = read_to_close(s, got)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:100])
        self.assertEqual(len(body), size)
        self.assertEqual(digest(body), digest(data))
        log = self.origin_log(origin)
        m = re.search(r"continuing from backend s3 at byte (\d+)", log)
        self.assertIsNotNone(m, log[-2000:])
        self.assertGreater(int(m.group(1)), 0)
        self.assertLess(int(m.group(1)), size)
        self.assertEqual(int(m.group(1)) % BLOCK, 0)  # resumed at a verified block boundary
        self.access_log_line(path, "backend=r2>s3", origin=origin)
        origin.stop()
        self.restart_r2()

    def test_12_interrupted_fill_and_cold_start(self):
        cache = os.path.join(self.env.dir, "cache-crash")
        conf = self.env.object_store_config(self.r2, self.s3, extra="cache:\n  fill_lead_mib: 1\n")
        origin = self.env.start_origin("--config", conf, "--cache", cache)
        key, path, data = self.publish(40 * BLOCK + 9)
        s = socket.create_connection(("127.0.0.1", origin.port), timeout=30)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        self.assertTrue(s.recv(65536))
        time.sleep(0.3)
        fills = [f for f in os.listdir(cache) if f.startswith(".fill-")]
        self.assertEqual(len(fills), 1, os.listdir(cache))  # the fill waits for this slow reader
        origin.kill()
        s.close()
        origin = self.env.start_origin("--config", conf, "--cache", cache)
        self.assertEqual([f for f in os.listdir(cache) if f.startswith(".fill-")], [])
        self.assertIn("removed 1 interrupted fill", self.origin_log(origin))
        st, h, body = self.get(path, origin=origin)
        self.assertEqual((st, digest(body)), (200, digest(data)))
        gets = self.env.s3_count(self.r2, "GET", key)
        origin.stop()
        # cold start: the index is rebuilt from the files, a hit needs no backend
        origin = self.env.start_origin("--config", conf, "--cache", cache)
        st, h, body = self.get(path, origin=origin)
        self.assertEqual((st, digest(body)), (200, digest(data)))
        self.assertEqual(self.env.s3_count(self.r2, "GET", key), gets)
        self.access_log_line(path, "cache=hit", origin=origin)
        origin.stop()

    def test_13_lru_eviction_under_the_cap(self):
        cache = os.path.join(self.env.dir, "cache-small")
        conf = self.env.object_store_config(self.r2, self.s3, extra="cache:\n  max_mib: 1\n")
        origin = self.env.start_origin("--config", conf, "--cache", cache)
        a = self.publish(400 * 1024)
        b = self.publish(400 * 1024)
        c = self.publish(400 * 1024)
        # a is used again before c arrives: b is the least recent
        for (key, path, data), fills in ((a, 1), (b, 2), (a, 2), (c, 3)):
            st, h, body = self.get(path, origin=origin)
            self.assertEqual((st, body), (200, data))
            # a fill counts as cached (and can be evicted) once the file is durable and named
            deadline = time.monotonic() + 10
            while harness.metric(self.metrics(origin), "updraft_cache_fills_total", result="verified") < fills:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
        files = [f for f in os.listdir(cache) if not f.startswith(".")]
        self.assertEqual(sorted(files), sorted([digest(a[2]), digest(c[2])]))
        self.assertEqual(harness.metric(self.metrics(origin), "updraft_cache_evictions_total"), 1)
        # over the cap: streamed whole, verified, not kept
        big = self.publish(2 * 1024 * 1024)
        st, h, body = self.get(big[1], origin=origin)
        self.assertEqual((st, digest(body)), (200, digest(big[2])))
        self.assertNotIn(digest(big[2]), os.listdir(cache))
        origin.stop()

    def test_14_http2_miss_and_blockmap(self):
        blockmap = os.urandom(5000)
        key, path, data = self.publish(3 * BLOCK, blockmap=blockmap)
        out = os.path.join(self.env.dir, "h2-body")
        r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-o", out, "-w", "%{http_code} %{http_version}",
                            self.origin.url + path], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.stdout, "200 2", r.stderr)
        with open(out, "rb") as f:
            self.assertEqual(digest(f.read()), digest(data))
        st, h, body = self.get(path + ".blockmap")
        self.assertEqual((st, body), (200, blockmap))
        self.assertEqual(self.env.s3_count(self.r2, "GET", key + ".blockmap"), 1)

    def test_16_a_range_far_into_a_miss_is_not_held_back_by_the_fill_lead(self):
        origin = self.env.start_origin("--config", self.env.object_store_config(
            self.r2, self.s3, extra="cache:\n  fill_lead_mib: 1\n"), "--cache", os.path.join(self.env.dir, "cache-lead"))
        key, path, data = self.publish(24 * 1024 * 1024 + 3)
        at = 20 * 1024 * 1024 + 11
        st, h, part = self.get(path, headers={"Range": "bytes=%d-%d" % (at, at + 999)}, origin=origin)
        self.assertEqual((st, part), (206, data[at:at + 1000]))
        origin.stop()

    def test_17_r2_stalling_mid_transfer_hands_over_at_the_stall_timeout(self):
        origin = self.env.start_origin("--config", self.env.object_store_config(
            self.r2, self.s3, extra="  stall_timeout_ms: 800\ncache:\n  fill_lead_mib: 1\n"),
            "--cache", os.path.join(self.env.dir, "cache-stall"))
        size = 40 * 1024 * 1024 + 5
        key, path, data = self.publish(size)
        s = socket.create_connection(("127.0.0.1", origin.port), timeout=60)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        got = bytearray()
        try:
            while len(got) < 2 * 1024 * 1024:  # a slow reader holds the fill back, R2's transfer half done
                chunk = s.recv(65536)
                self.assertTrue(chunk)
                got += chunk
            time.sleep(0.3)
            os.kill(self.r2.popen.pid, signal.SIGSTOP)
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
        finally:
            os.kill(self.r2.popen.pid, signal.SIGCONT)
            s.close()
        head, _, body = bytes(got).partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:100])
        self.assertEqual(digest(body), digest(data))
        log = self.origin_log(origin)
        self.assertRegex(log, r"backend r2: GET %s from byte \d+: stall" % re.escape(key))
        m = re.search(r"continuing from backend s3 at byte (\d+)", log)
        self.assertIsNotNone(m, log[-2000:])
        self.assertGreater(int(m.group(1)), 0)
        self.assertGreaterEqual(harness.metric(self.metrics(origin), "updraft_backend_requests_total", backend="r2", outcome="stall"), 1)
        origin.stop()

    def test_18_bytes_that_cannot_be_verified_cut_the_response(self):
        # R2's copy is corrupt in its fourth block and S3 has none: the client gets the three verified blocks,
        # then the connection is cut, never a complete 200 with bytes nobody verified; nothing is cached
        key, path, data = self.publish(6 * BLOCK, backends=(self.r2,))
        self.env.s3_flip_byte(self.r2, key, 3 * BLOCK + 7, 0x55)
        s = socket.create_connection(("127.0.0.1", self.origin.port), timeout=30)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        head, body = read_to_close(s, bytearray(), reset_is_close=True)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:100])
        self.assertIn(b"content-length: %d" % (6 * BLOCK), head.lower())
        self.assertEqual(len(body), 3 * BLOCK)
        self.assertEqual(body, data[:3 * BLOCK])
        self.assertNotIn(digest(data), self.cached_files())
        self.assertIn("closing the response", self.origin_log())

    def test_20_multi_block_files_are_proven_by_their_blocks_single_block_files_by_their_sha512(self):
        # the release record's sha512 is made to disagree with the bytes (raw, in LMDB): a multi-block file is still
        # served, every block matching its SHA-256, since the whole sha512 is no longer computed again...
        key, path, data = self.publish(4 * BLOCK + 9)
        small_key, small_path, small = self.publish(BLOCK - 100)
        other, other_small = hashlib.sha512(b"not these bytes").digest(), hashlib.sha512(b"nor these").digest()
        with harness.RawLMDB(self.env.data) as db:
            db.put("files", key, with_sha512(db.get("files", key), other))
            db.put("files", small_key, with_sha512(db.get("files", small_key), other_small))
        st, h, body = self.get(path)
        self.assertEqual((st, digest(body)), (200, digest(data)))
        self.assertEqual(self.env.s3_count(self.r2, "GET", key), 1)
        self.assertEqual(self.env.s3_count(self.s3, "GET", key), 0)
        self.assertNotIn("sha512 differs", self.origin_log())
        # ...a single-block file has no block digests: its sha512 is checked, and no backend serves those bytes
        st, h, body = self.get(small_path)
        self.assertEqual(st, 502, body[:200])
        self.assertEqual(self.env.s3_count(self.r2, "GET", small_key), 1)
        self.assertEqual(self.env.s3_count(self.s3, "GET", small_key), 1)
        self.assertIn("does not match its sha512", self.origin_log())
        self.assertNotIn(other_small.hex(), self.cached_files())

    def test_21_a_single_block_file_changed_on_r2_is_failed_over_to_s3(self):
        key, path, data = self.publish(BLOCK)
        self.env.s3_flip_byte(self.r2, key, BLOCK // 2, 0x01)  # same size, other bytes
        st, h, body = self.get(path)
        self.assertEqual((st, digest(body)), (200, digest(data)))
        self.assertEqual(self.env.s3_count(self.s3, "GET", key), 1)
        self.access_log_line(path, "backend=r2>s3")
        self.assertTrue(os.path.exists(self.cached_file(digest(data))))

    def test_22_blocks_are_hashed_on_the_hash_threads(self):
        before = harness.metric(self.metrics(), "updraft_hash_jobs_total")
        self.assertGreaterEqual(harness.metric(self.metrics(), "updraft_hash_threads"), 1)
        key, path, data = self.publish(7 * BLOCK + 1)
        st, h, body = self.get(path)
        self.assertEqual((st, digest(body)), (200, digest(data)))
        # one job per block, and no more: no whole-file pass
        self.assertEqual(harness.metric(self.metrics(), "updraft_hash_jobs_total") - before, 8)

    def test_19_backend_connections_are_reused(self):
        # no state polling: the artifact GETs are the only requests to R2, so the first must connect
        origin = self.env.start_origin("--config", self.env.object_store_config(self.r2, self.s3, extra="state:\n  poll_ms: 0\n"),
                                       "--cache", os.path.join(self.env.dir, "cache-reuse"))
        for _ in range(6):
            key, path, data = self.publish(5000)
            st, h, body = self.get(path, origin=origin)
            self.assertEqual((st, body), (200, data))
        m = self.metrics(origin)
        self.assertEqual(harness.metric(m, "updraft_backend_requests_total", backend="r2", outcome="ok"), 6)
        # six GETs one after the other: the first opens a connection, the others find it in libcurl's pool
        self.assertEqual(harness.metric(m, "updraft_backend_connections_total", backend="r2"), 1)
        origin.stop()

    def test_15_credentials_from_the_environment_and_config_errors(self):
        # the file's R2 secret is wrong; the environment's is right and wins
        conf = self.env.object_store_config(self.r2, self.s3, r2_secret="wrong-in-file")
        os.environ["UPDRAFT_R2_SECRET_ACCESS_KEY"] = harness.S3_SECRET_KEY
        try:
            origin = self.env.start_origin("--config", conf, "--cache", os.path.join(self.env.dir, "cache-env"))
        finally:
            del os.environ["UPDRAFT_R2_SECRET_ACCESS_KEY"]
        key, path, data = self.publish(2000)
        st, h, body = self.get(path, origin=origin)
        self.assertEqual((st, body), (200, data))
        self.assertEqual(self.env.s3_count(self.r2, "GET", key), 1)
        self.assertEqual(self.env.s3_count(self.s3, "GET", key), 0)
        self.assertNotIn(harness.S3_SECRET_KEY, self.origin_log(origin))
        origin.stop()
        # --check names the setting that is wrong, and never echoes a secret
        bad = os.path.join(self.env.dir, "bad.yaml")
        for text, want in (
                ("object_store:\n  kind: s3\n", "object_store.r2.endpoint"),
                ("object_store:\n  kind: s4\n", "object_store.kind"),
                ("object_store:\n  kind: s3\n  r2:\n    endpoint: http://127.0.0.1:1\n    bucket: b\n", "object_store.r2.bucket"),
                ("object_store:\n  kind: s3\n  r2:\n    endpoint: http://127.0.0.1:1\n    bucket: bucket\n    "
                 "addressing: sideways\n", "object_store.r2.addressing"),
                ("object_store:\n  kind: s3\n  r2:\n    endpoint: http://127.0.0.1:1\n    bucket: bucket\n    "
                 "access_key: AK\n", "object_store.r2.secret_key")):
            with open(bad, "w") as f:
                f.write(text)
            r = self.env.run("updraft-origin", "--config", bad, "--check")
            self.assertNotEqual(r.returncode, 0, text)
            self.assertIn(want, r.stderr, text)


class LegacyXXH3BlockDigests(harness.StackTest):
    """Story: a release registered before store schema 4 (XXH3-128 block digests, blocks records without an
    algorithm byte) keeps being served, verified, after the upgrade: the control plane migrates the store when it
    opens it, and the origin checks such a file's blocks with XXH3 and the whole with its sha512."""
    env_name = "object_storage_legacy"
    s3rvers = ("r2", "s3")
    programs = ("control",)
    control_public_url = "http://cdn.example"
    keys = (("key", "admin", "test"),)
    apps = ((APP, "Acme"),)

    @classmethod
    def control_args(cls):
        return ("--config", cls.env.write("control.yaml", 'listen: ["127.0.0.1:0"]\nintegrity:\n  block_size: %d\n' % BLOCK))

    def origin_config(self):
        return self.env.object_store_config(self.r2, self.s3, extra="state:\n  poll_ms: 0\n")

    def register(self, version, data):
        name = "Acme-Setup-%s.exe" % version
        f = self.env.put_artifact(APP, version, name, data)
        f.update(platform="windows", arch="x64")
        key = "%s/%s/%s" % (APP, version, name)
        for b in (self.r2, self.s3):
            self.env.s3_put(b, key, data)
        st, body = self.env.register_release(self.key, APP, version, [f])
        self.assertEqual(st, 201, body)
        return key

    def test_a_release_registered_with_xxh3_digests_is_served_verified_after_the_migration(self):
        good, bad = os.urandom(5 * BLOCK + 3), os.urandom(3 * BLOCK + 3)
        good_key, bad_key = self.register("1.0.0", good), self.register("1.0.1", bad)
        self.control.stop()
        # what a schema 3 build wrote: XXH3-128 per block, no algorithm byte, no "block_digest" in the release JSON
        with harness.RawLMDB(self.env.data) as db:
            for key, data in ((good_key, good), (bad_key, bad)):
                digests = b"".join(xxh3_128(data[i:i + BLOCK]) for i in range(0, len(data), BLOCK))
                db.put("blocks", key, BLOCK.to_bytes(4, "little") + digests)
                version = key.split("/")[1]
                rel = json.loads(db.get("releases", "%s/%s" % (APP, version)))
                f = rel["files"][0]
                self.assertEqual(f.pop("block_digest"), "sha256")
                f["blocks"] = digests.hex()
                db.put("releases", "%s/%s" % (APP, version), json.dumps(rel).encode())
            # 1.0.1's record says another sha512 than its bytes: XXH3 blocks alone must not be enough to serve it
            db.put("files", bad_key, with_sha512(db.get("files", bad_key), hashlib.sha512(b"other").digest()))
            db.put("meta", "schema", (3).to_bytes(4, "little"))
        control = self.env.start_control(*self.control_args(), public_url=self.control_public_url)
        self.env.control = control
        with open(control.log) as f:
            self.assertIn("schema 3 migrated to 5", f.read())
        with harness.RawLMDB(self.env.data) as db:
            self.assertEqual(db.get("blocks", good_key)[4], 1, "tagged XXH3-128 by the migration")

        origin = self.env.start_origin("--config", self.origin_config())
        st, h, body = self.env.http("GET", "/artifacts/" + good_key, base=origin, timeout=60)
        self.assertEqual((st, digest(body)), (200, digest(good)))
        self.assertEqual(self.env.s3_count(self.r2, "GET", good_key), 1)
        # a corrupted R2 copy of a legacy file is found by its XXH3 block and handed over to S3
        self.env.s3_flip_byte(self.r2, good_key, 0, 0x01)
        origin.stop()
        origin = self.env.start_origin("--config", self.origin_config(), "--cache", os.path.join(self.env.dir, "cache-2"))
        st, h, body = self.env.http("GET", "/artifacts/" + good_key, base=origin, timeout=60)
        self.assertEqual((st, digest(body)), (200, digest(good)))
        self.assertEqual(self.env.s3_count(self.s3, "GET", good_key), 1)
        # every XXH3 block of 1.0.1 matches, its whole does not match the record: its last block is never sent and
        # the response is cut (XXH3 is no proof against a hostile bucket; the sha512 still is)
        s = socket.create_connection(("127.0.0.1", origin.port), timeout=30)
        s.sendall(("GET /artifacts/%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % bad_key).encode())
        head, body = read_to_close(s, bytearray(), reset_is_close=True)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:100])
        self.assertEqual(body, bad[:3 * BLOCK])
        with open(origin.log) as f:
            self.assertIn("every block verified but the sha512 differs", f.read())
        origin.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
