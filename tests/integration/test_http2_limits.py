#!/usr/bin/env python3
"""Story: an abusive HTTP/2 client must not take the origin away from everyone else.

Debian's h2o 2.2.5 predates the HTTP/2 "Rapid Reset" fix (CVE-2023-44487, STACK-NOTES.md). What it
does, read in lib/http2/connection.c at v2.2.5 and checked here on the wire:

- it always advertises SETTINGS_MAX_CONCURRENT_STREAMS = 100 (a constant, SETTINGS_HOST_BIN),
  whatever limits.http2_max_streams says;
- limits.http2_max_streams (globalconf.http2.max_concurrent_requests_per_connection) bounds how
  many requests of one connection are processed at once; further complete requests wait in a
  queue and start in arrival order as running ones finish;
- a stream that would make more than 100 open is refused with RST_STREAM(REFUSED_STREAM);
- RST_STREAM frees the stream's slot at once, so HEADERS+RST in a loop runs a request per pair
  with nothing left open: there is no reset budget and the connection stays open;
- Debian's package carries the fix for CVE-2019-9512/9514/9515 (changelog 2.2.5+dfsg2-3), which
  behaves as upstream 2.2.6's: the server stops reading a connection once 512 KB of its answers
  wait to be written, and drops the connection after limits.idle_timeout_ms if they stay unread.

Known gap, not tested here because no Updraft code can close it through 2.2.5's API: a response
whose client never opens its flow-control window holds its connection (and the artifact's fd) for
good, since 2.2.5 arms the idle timeout only between requests and has no write timeout.

The tests speak raw HTTP/2 with prior knowledge (h2c) on a plain socket: requests are HPACK
"literal without indexing, new name" fields with plain strings; of the responses only :status
(the first field, which h2o encodes from the static table) is decoded. The well-behaved clients
are http.client (HTTP/1.1) and curl --http2-prior-knowledge, each request on a new connection.
"""
import collections
import http.client
import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP, V, FILE = "acme", "1.0.0", "Acme-Setup-1.0.0.exe"
ARTIFACT = "/artifacts/%s/%s/%s" % (APP, V, FILE)
FEED = "/update/%s/latest.yml" % APP
ARTIFACT_SIZE = 20000
MAX_STREAMS = 8                 # limits.http2_max_streams in this test's config

IDLE_TIMEOUT_MS = 3000          # limits.idle_timeout_ms: how long a connection the server stopped reading lives
ASAN_QUARANTINE_MB = 64
# abuse budgets: bounded in count and in time
RESET_PAIRS, RESET_SECONDS = 20000, 5.0
UNREAD_RESET_PAIRS = 400000     # a rapid-reset client that never reads; stops earlier when the server stops reading
FLOOD_FRAMES, FLOOD_SECONDS = 1000000, 4.0
STALL_SECONDS = 0.5             # no write progress for this long: the server has stopped reading
# what the well-behaved clients must see throughout
LATENCY_BOUND = 2.0             # seconds, every single request
UNREAD_LATENCY_BOUND = 5.0      # the same while a client that never reads is throttled (see that test)
RSS_BOUND_KB = 300 * 1024       # under ASan

# --- a minimal HTTP/2 client ---------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
NO_ERROR, REFUSED_STREAM, CANCEL = 0x0, 0x7, 0x8
STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id & 0x7fffffff) + payload


def settings_frame(settings=None):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items()))


def hpack_int(value, prefix_bits, first_byte=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = [first_byte | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    name, value = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def request_block(path, method="GET"):
    return b"".join(hpack_literal(n, v) for n, v in ((":method", method), (":scheme", "http"), (":path", path),
                                                      (":authority", "127.0.0.1"), ("user-agent", "h2-abuse-test")))


def decode_status(block):
    """The :status of a response header block, from its first field (h2o puts :status first: an
    indexed static entry, or a literal with name index 8 and a plain 3-digit value)."""
    if block and block[0] & 0x80:
        return STATIC_STATUS.get(block[0] & 0x7f)
    if len(block) >= 5 and block[0] in (0x08, 0x48) and block[1] == 3:
        return int(block[2:5])
    return None


class H2:
    """One h2c connection: frames out, frames in, and what arrived per stream."""

    def __init__(self, port, settings=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()
        self.pos = 0              # frames before this offset of buf are consumed
        self.closed = False
        self.server_settings = {}
        self.status = {}          # stream id -> :status (None when not decodable)
        self.headers_order = []   # stream ids in the order their response HEADERS arrived
        self.body = {}            # stream id -> bytes
        self.ended = []           # stream ids whose END_STREAM arrived, in order
        self.resets = {}          # stream id -> RST_STREAM error code from the server
        self.goaway = None        # (last stream id, error code, debug data)
        self.ping_acks = collections.Counter()  # payload -> ACKs received
        self.settings_acks = 0
        self.frames_in = 0
        self.max_active = 0       # most responses begun and not ended at any point, as seen on the wire
        self.send_lock = threading.Lock()
        self.sock.sendall(PREFACE + settings_frame(settings))

    def send(self, data):
        with self.send_lock:
            self.sock.sendall(data)

    def read_frame(self, timeout):
        """The next frame (type, flags, stream id, payload), or None after `timeout` s of silence;
        sets .closed and returns None when the server closes."""
        deadline = time.monotonic() + timeout
        while True:
            buf, pos = self.buf, self.pos
            if len(buf) - pos >= 9:
                length = int.from_bytes(buf[pos:pos + 3], "big")
                if len(buf) - pos >= 9 + length:
                    ftype, flags = buf[pos + 3], buf[pos + 4]
                    sid = int.from_bytes(buf[pos + 5:pos + 9], "big") & 0x7fffffff
                    payload = bytes(buf[pos + 9:pos + 9 + length])
                    self.pos = pos + 9 + length
                    self._note(ftype, flags, sid, payload)
                    return ftype, flags, sid, payload
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            # select, not settimeout: a sender thread shares the socket and keeps its own timeout
            if not select.select([self.sock], [], [], left)[0]:
                return None
            try:
                chunk = self.sock.recv(1 << 20)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.closed = True
            del self.buf[:self.pos]  # frames are parsed by offset; drop the consumed ones once per read
            self.pos = 0
            self.buf += chunk

    def _note(self, ftype, flags, sid, payload):
        self.frames_in += 1
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
            else:
                for i in range(0, len(payload) - 5, 6):
                    k, v = struct.unpack(">HI", payload[i:i + 6])
                    self.server_settings[k] = v
                self.send(frame(SETTINGS, ACK, 0))
        elif ftype == HEADERS:
            block = payload
            if flags & PADDED:
                block = block[1:len(block) - block[0]]
            if flags & PRIORITY_FLAG:
                block = block[5:]
            if sid not in self.status:
                self.status[sid] = decode_status(block)
                self.headers_order.append(sid)
            if flags & END_STREAM:
                self.ended.append(sid)
        elif ftype == DATA:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            self.body[sid] = self.body.get(sid, b"") + payload
            if flags & END_STREAM:
                self.ended.append(sid)
        elif ftype == RST_STREAM:
            self.resets[sid] = struct.unpack(">I", payload[:4])[0]
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & 0x7fffffff, code, payload[8:])
        elif ftype == PING and flags & ACK:
            self.ping_acks[payload] += 1
        active = len(self.headers_order) - len(self.ended) - sum(1 for s in self.resets if s in self.status)
        self.max_active = max(self.max_active, active)

    def handshake(self):
        """Reads until the server's SETTINGS arrived (and ACKs them); returns them."""
        deadline = time.monotonic() + 10
        while not self.server_settings and time.monotonic() < deadline:
            if self.read_frame(deadline - time.monotonic()) is None and self.closed:
                break
        if not self.server_settings:
            raise AssertionError("no SETTINGS from the server")
        return self.server_settings

    def read_until(self, done, timeout):
        """Reads frames until done() or `timeout` s; returns done()."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0 or (self.read_frame(min(left, 0.2)) is None and self.closed):
                break
        return done()

    def quiet(self, seconds):
        """Reads frames until the server has been silent for `seconds`."""
        while self.read_frame(seconds) is not None:
            pass

    def ping(self, payload, timeout):
        """PING and wait for its ACK: every frame sent before it has then been processed."""
        self.send(frame(PING, 0, 0, payload))
        return self.read_until(lambda: payload in self.ping_acks, timeout)

    def close(self):
        self.sock.close()


# --- what the server costs and whether the others still get served -------------------------------

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1))


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_event = pid, 0, threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except (OSError, AttributeError):
                return
            self.stop_event.wait(0.05)

    def stop(self):
        self.stop_event.set()
        self.join(5)
        return self.peak


class WellBehaved(threading.Thread):
    """Keeps doing GET /healthz, the feed and the artifact, each on a fresh connection, until stopped:
    over HTTP/1.1 with http.client, or over h2c with curl --http2-prior-knowledge.
    .results: [(protocol, path, seconds, ok, detail)]."""

    def __init__(self, port, protocol, artifact):
        super().__init__(daemon=True)
        self.port, self.protocol, self.artifact = port, protocol, artifact
        self.results = []
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.round_h1() if self.protocol == "http/1.1" else self.round_h2()
            except Exception as e:  # a failure is a result, never a dead thread
                self.results.append((self.protocol, "?", 0.0, False, repr(e)))
            self.stop_event.wait(0.02)

    def check(self, path, status, body):
        if status != 200:
            return False, "status %s" % status
        if path == ARTIFACT and body is not None and body != self.artifact:
            return False, "artifact body differs (%d bytes)" % len(body)
        return True, ""

    def round_h1(self):
        for path in ("/healthz", FEED, ARTIFACT):
            t0 = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                ok, detail = self.check(path, resp.status, body)
            except Exception as e:
                ok, detail = False, repr(e)
            finally:
                conn.close()
            self.results.append(("http/1.1", path, time.monotonic() - t0, ok, detail))

    def round_h2(self):
        # one curl per request: curl 7.88.1 fails the second request on a reused h2c prior-knowledge
        # connection ("Error in the HTTP2 framing layer", curl/curl#10634, fixed in 8.0)
        for path in ("/healthz", FEED, ARTIFACT):
            t0 = time.monotonic()
            r = subprocess.run(["curl", "--http2-prior-knowledge", "-sS", "--max-time", "10", "-o", "/dev/null",
                                "-w", "%{http_version} %{http_code} %{size_download}",
                                "http://127.0.0.1:%d%s" % (self.port, path)], capture_output=True, text=True, timeout=30)
            secs = time.monotonic() - t0  # the whole curl run, process start included
            fields = r.stdout.split()
            if r.returncode != 0 or len(fields) != 3:
                self.results.append(("h2", path, secs, False, "curl %d: %s" % (r.returncode, r.stderr.strip())))
                continue
            version, code, size = fields
            ok, detail = self.check(path, int(code), None)
            if ok and version != "2":
                ok, detail = False, "HTTP version %s" % version
            if ok and path == ARTIFACT and int(size) != len(self.artifact):
                ok, detail = False, "artifact of %s bytes" % size
            self.results.append(("h2", path, secs, ok, detail))

    def stop(self):
        self.stop_event.set()
        self.join(40)
        return self.results


class Http2Limits(harness.StackTest):
    env_name = "test_http2_limits"
    survives = True

    @classmethod
    def set_up_stack(cls):
        env = cls.env
        conf = env.write("origin.yaml", "limits: {http2_max_streams: %d, idle_timeout_ms: %d}\n" % (MAX_STREAMS, IDLE_TIMEOUT_MS))
        # ASan keeps 256 MB of freed memory in quarantine by default, which alone would fill RSS
        # after a few thousand requests; a smaller quarantine lets RSS measure the server
        asan = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=%d" % ASAN_QUARANTINE_MB
        try:
            cls.origin = env.start_origin("--config", conf, "--listen", "127.0.0.1:0")
        finally:
            if asan is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = asan
        env.start_control(public_url=cls.origin.url)
        key = env.create_key()
        cls.create_app(APP, "Acme", key=key)
        cls.artifact = os.urandom(ARTIFACT_SIZE)
        cls.release_artifacts(APP, V, [(FILE, cls.artifact, "windows", "x64")], key=key)
        cls.pid = cls.origin.popen.pid

    # --- helpers ---------------------------------------------------------------------------------

    def connect(self, settings=None):
        conn = H2(self.origin.port, settings)
        self.addCleanup(conn.close)
        conn.handshake()
        return conn

    def stalled_requests(self, n, ping):
        """n GETs of the artifact on one connection whose stream windows are 0: a response's HEADERS
        go out, its DATA cannot, so it stays in progress. Returns (conn, stream ids) once a PING
        (payload `ping`) came back and the connection went quiet."""
        conn = self.connect({SETTINGS_INITIAL_WINDOW_SIZE: 0})
        conn.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))
        ids = list(range(1, 2 * n, 2))
        conn.send(b"".join(frame(HEADERS, END_STREAM | END_HEADERS, s, request_block(ARTIFACT)) for s in ids))
        self.assertTrue(conn.ping(ping, 10))
        conn.quiet(0.5)
        return conn, ids

    def requests_total(self, route):
        _, _, body = self.env.http("GET", "/metrics")
        return harness.metric_sum("\n".join(l for l in body.decode().splitlines() if 'route="%s"' % route in l),
                                  "updraft_requests_total") or 0

    def under_abuse(self, abuse):
        """Runs abuse() while an HTTP/1.1 and an h2c client keep fetching; returns (abuse's result,
        well-behaved results, peak RSS kB). Asserts the server is alive afterwards."""
        sampler = RssSampler(self.pid)
        sampler.start()
        good = [WellBehaved(self.origin.port, p, self.artifact) for p in ("http/1.1", "h2")]
        for g in good:
            g.start()
        time.sleep(0.3)  # both are mid-round when the abuse starts
        try:
            outcome = abuse()
        finally:
            time.sleep(0.3)
            results = [r for g in good for r in g.stop()]
            peak = sampler.stop()
        self.assertTrue(self.origin.alive(), "the origin died under the abuse\n" + self.origin.describe())
        return outcome, results, peak

    def assert_well_served(self, results, peak, what, latency_bound=LATENCY_BOUND):
        failed = [r for r in results if not r[3]]
        slow = [r for r in results if r[2] > latency_bound]
        worst = max((r[2] for r in results), default=0)
        sys.stderr.write("  [%s] well-behaved: %d requests (%d http/1.1, %d h2), worst %.3f s; origin peak RSS %d MB\n"
                         % (what, len(results), sum(r[0] == "http/1.1" for r in results),
                            sum(r[0] == "h2" for r in results), worst, peak // 1024))
        self.assertEqual(failed, [], "every well-behaved request succeeds during the %s" % what)
        self.assertEqual(slow, [], "every well-behaved request completes within %.0f s during the %s" % (latency_bound, what))
        for proto in ("http/1.1", "h2"):
            self.assertGreaterEqual(sum(r[0] == proto for r in results), 6, "the %s client kept fetching" % proto)
        self.assertLess(peak, RSS_BOUND_KB, "origin RSS stays below %d MB during the %s" % (RSS_BOUND_KB // 1024, what))

    # --- 1. concurrency: what the limit actually bounds ------------------------------------------

    def test_settings_advertise_100_streams_whatever_the_configured_limit(self):
        settings = self.connect().server_settings
        # h2o 2.2.5 sends a constant SETTINGS frame; limits.http2_max_streams is not advertised
        self.assertEqual(settings.get(SETTINGS_MAX_CONCURRENT_STREAMS), 100, settings)

    def test_no_more_than_the_configured_streams_are_processed_at_once_and_the_rest_wait_in_order(self):
        conn, ids = self.stalled_requests(20, b"20-opens")
        self.assertEqual(conn.headers_order, ids[:MAX_STREAMS], "only the first %d requests are answered" % MAX_STREAMS)
        self.assertEqual(conn.resets, {}, "the other 12 are queued, not refused")
        self.assertEqual(conn.body, {}, "no DATA while the windows are 0")

        # one response may finish: exactly the next queued request starts
        conn.send(frame(WINDOW_UPDATE, 0, ids[0], struct.pack(">I", ARTIFACT_SIZE)))
        self.assertTrue(conn.read_until(lambda: ids[MAX_STREAMS] in conn.status, 5), "the 9th request starts")
        conn.quiet(0.5)
        self.assertEqual(conn.ended, [ids[0]])
        self.assertEqual(conn.body[ids[0]], self.artifact)
        self.assertEqual(conn.headers_order, ids[:MAX_STREAMS + 1], "one finished, one more started")

        # open every window: all 20 complete, never more than 8 at once
        conn.send(settings_frame({SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20}))
        self.assertTrue(conn.read_until(lambda: len(conn.ended) == len(ids), 10), "all 20 complete")
        self.assertEqual(conn.headers_order, ids, "queued requests start in the order they came")
        self.assertEqual({s: conn.status[s] for s in ids}, {s: 200 for s in ids})
        self.assertTrue(all(conn.body[s] == self.artifact for s in ids), "every body is the artifact")
        self.assertLessEqual(conn.max_active, MAX_STREAMS, "never more than %d in progress" % MAX_STREAMS)
        self.assertFalse(conn.closed)

    def test_streams_beyond_100_open_are_refused_and_the_queue_is_bounded(self):
        conn, ids = self.stalled_requests(110, b"110-open")
        self.assertEqual(conn.headers_order, ids[:MAX_STREAMS], "%d in progress" % MAX_STREAMS)
        self.assertEqual(conn.resets, {s: REFUSED_STREAM for s in ids[100:]},
                         "the 101st to 110th are refused (REFUSED_STREAM): 8 in progress + 92 queued = 100 open")
        conn.send(settings_frame({SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20}))
        self.assertTrue(conn.read_until(lambda: len(conn.ended) == 100, 15), "the 100 accepted complete")
        self.assertEqual(sorted(conn.ended), ids[:100])
        self.assertEqual(set(conn.status.values()), {200})
        self.assertLessEqual(conn.max_active, MAX_STREAMS)
        self.assertIsNone(conn.goaway, "refusing streams does not close the connection")

    # --- 2. rapid reset (CVE-2023-44487) ---------------------------------------------------------

    def test_rapid_reset_does_not_starve_other_clients_or_grow_memory(self):
        fds_before = open_fds(self.pid)
        run_before = self.requests_total("artifact")
        pair = pair_maker(request_block(ARTIFACT))

        def rapid_reset():
            # HEADERS then RST_STREAM(CANCEL) at once, 100 pairs per write, reading all the server says
            conn = H2(self.origin.port)
            stats = dict(sent=0, stop=False)
            reader = threading.Thread(target=lambda: conn.read_until(lambda: conn.closed or stats["stop"], 60), daemon=True)
            try:
                conn.handshake()
                reader.start()
                sid, t0 = 1, time.monotonic()
                while stats["sent"] < RESET_PAIRS and time.monotonic() - t0 < RESET_SECONDS and not conn.closed:
                    try:
                        conn.send(b"".join(pair(s) for s in range(sid, sid + 200, 2)))
                    except OSError:
                        break
                    sid += 200
                    stats["sent"] += 100
                stats["seconds"] = time.monotonic() - t0
                try:  # its ACK means the server has worked through every pair before it
                    conn.send(frame(PING, 0, 0, b"rr-done!"))
                except OSError:
                    pass
                while b"rr-done!" not in conn.ping_acks and not conn.closed and time.monotonic() - t0 < 30:
                    time.sleep(0.02)
                stats["caught_up"] = time.monotonic() - t0
            finally:
                stats["stop"] = True
                reader.join(5)
                conn.close()
            return stats, conn

        (stats, conn), results, peak = self.under_abuse(rapid_reset)
        run = self.requests_total("artifact") - run_before
        sys.stderr.write("  [rapid reset] %d HEADERS+RST_STREAM pairs written in %.2f s, worked through after %.2f s; "
                         "the server began %d responses, sent %d RST_STREAM, GOAWAY %r, closed the connection: %s; "
                         "artifact requests run: %d\n"
                         % (stats["sent"], stats["seconds"], stats["caught_up"], len(conn.status), len(conn.resets),
                            conn.goaway, conn.closed, run))
        self.assert_well_served(results, peak, "rapid reset")
        if conn.goaway is None and not conn.closed:
            # h2o 2.2.5 has no reset budget: it accepts every pair and runs every request
            self.assertIn(b"rr-done!", conn.ping_acks, "the server worked through every pair")
            self.assertGreaterEqual(run, stats["sent"], "each reset stream's request ran")
        time.sleep(0.2)
        self.assertLessEqual(open_fds(self.pid), fds_before + 2, "no file descriptor left open by the reset streams")

    def test_rapid_reset_from_a_client_that_never_reads_is_throttled_then_closed(self):
        pair = pair_maker(request_block(ARTIFACT))

        def unread_rapid_reset():
            conn = H2(self.origin.port)
            try:
                conn.handshake()
                batch = lambda i: b"".join(pair(s) for s in range(1 + 200 * i, 201 + 200 * i, 2))  # noqa: E731
                sent, stalled = pump(conn.sock, batch, UNREAD_RESET_PAIRS // 100, 8.0)
                stats = dict(sent=sent * 100, stalled=stalled, rss_kb=rss_kb(self.pid))
                # its answers stay unread: the server drops the connection after limits.idle_timeout_ms
                t0 = time.monotonic()
                stats["closed"] = wait_closed(conn.sock, IDLE_TIMEOUT_MS / 1000 + 1.5)
                stats["closed_after"] = time.monotonic() - t0
            finally:
                conn.close()
            return stats

        stats, results, peak = self.under_abuse(unread_rapid_reset)
        sys.stderr.write("  [unread rapid reset] %d pairs written before the server stopped reading (stalled: %s); "
                         "RSS then %d MB; connection closed by the server (%s) %.2f s later\n"
                         % (stats["sent"], stats["stalled"], stats["rss_kb"] // 1024, stats["closed"], stats["closed_after"]))
        # Looser latency bound here: the server drains its socket and handles every frame read before
        # it turns to anyone else, and reaching the stall takes ~100,000 pairs; that one batch held the
        # others back 0.3-2.7 s on this 2-core machine (plain and ASan builds alike)
        self.assert_well_served(results, peak, "rapid reset from a client that never reads", UNREAD_LATENCY_BOUND)
        self.assertTrue(stats["stalled"], "the server stops reading a client that does not read its answers")
        self.assertLess(stats["rss_kb"], RSS_BOUND_KB, "and does not buffer for it without bound")
        # Not asserted: whether the server then drops the connection. It does (a reset, limits.idle_timeout_ms
        # after its last read) only when no response was in progress at the stall; otherwise it keeps it
        # open for good (see test_a_response_the_client_never_reads_does_not_hold_the_connection_forever).

    # --- 3. PING and SETTINGS floods -------------------------------------------------------------

    def test_ping_and_settings_flood_does_not_starve_other_clients(self):
        batch = (frame(PING, 0, 0, b"floodflo") * 9 + settings_frame()) * 100  # 1,000 frames, 16.2 KB
        marker = frame(PING, ACK, 0, b"fl-done!")

        def flood():
            # a client that floods without reading, then reads what the server answered
            conn = H2(self.origin.port)
            try:
                conn.handshake()
                t0 = time.monotonic()
                sent, stalled = pump(conn.sock, lambda i: batch, FLOOD_FRAMES // 1000, FLOOD_SECONDS)
                stats = dict(sent=sent * 1000, stalled=stalled, seconds=time.monotonic() - t0, rss_kb=rss_kb(self.pid),
                             handshake_acked=conn.settings_acks)
                # read the answers raw (17-byte PING ACKs, 9-byte SETTINGS ACKs) while writing a last PING
                # whose ACK ends them: the server reads no more until its answers are read
                got, tail, t1 = len(conn.buf) - conn.pos, bytes(conn.buf[conn.pos:]), time.monotonic()
                pending = frame(PING, 0, 0, b"fl-done!")
                while not tail.endswith(marker) and time.monotonic() - t1 < 20:
                    readable, writable, _ = select.select([conn.sock], [conn.sock] if pending else [], [], 1)
                    if writable:
                        pending = pending[conn.sock.send(pending):]
                    if readable:
                        chunk = conn.sock.recv(1 << 20)
                        if not chunk:
                            break
                        got += len(chunk)
                        tail = (tail + chunk)[-64:]
                stats.update(answered=tail.endswith(marker), answer_bytes=got, drained=time.monotonic() - t1)
            finally:
                conn.close()
            return stats

        stats, results, peak = self.under_abuse(flood)
        # every frame answered: 900 PING ACKs (17 B) and 100 SETTINGS ACKs (9 B) per 1,000, plus the marker
        # (and the ACK of the client's first SETTINGS, unless it came with the handshake)
        expected = stats["sent"] // 1000 * (900 * 17 + 100 * 9) + 17 + (0 if stats["handshake_acked"] else 9)
        sys.stderr.write("  [PING/SETTINGS flood] %d frames (9 PING : 1 SETTINGS) written in %.2f s without reading "
                         "(server stopped reading: %s); RSS then %d MB; then %d bytes of ACKs read in %.2f s "
                         "(expected %d), all answered: %s\n"
                         % (stats["sent"], stats["seconds"], stats["stalled"], stats["rss_kb"] // 1024,
                            stats["answer_bytes"], stats["drained"], expected, stats["answered"]))
        self.assert_well_served(results, peak, "PING/SETTINGS flood")
        self.assertTrue(stats["answered"], "the flooding client gets every ACK once it reads")
        self.assertEqual(stats["answer_bytes"], expected, "one ACK per PING and per SETTINGS, nothing dropped")


def pair_maker(block):
    cancel = struct.pack(">I", CANCEL)
    return lambda sid: frame(HEADERS, END_STREAM | END_HEADERS, sid, block) + frame(RST_STREAM, 0, sid, cancel)


def pump(sock, batch, batches, seconds):
    """Writes batch(0), batch(1), ... without reading, until `batches` are written, `seconds` pass or
    no byte could be written for STALL_SECONDS. Returns (whole batches written, stalled)."""
    deadline = time.monotonic() + seconds
    for i in range(batches):
        view = memoryview(batch(i))
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                return i, False
            if not select.select([], [sock], [], min(left, STALL_SECONDS))[1]:
                if left > STALL_SECONDS:
                    return i, True
                continue
            try:
                n = sock.send(view)
            except BlockingIOError:
                continue
            view = view[n:]
    return batches, False


TCP_STATES = {1: "ESTABLISHED", 7: "CLOSE (reset)", 8: "CLOSE_WAIT (FIN)"}


def wait_closed(sock, seconds):
    """Waits, without reading, until the peer closes the connection; returns the socket's TCP state
    then ("CLOSE (reset)", "CLOSE_WAIT (FIN)", ...), or None after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]  # struct tcp_info's tcpi_state
        if state != 1:
            return TCP_STATES.get(state, "state %d" % state)
        time.sleep(0.05)
    return None


if __name__ == "__main__":
    unittest.main(verbosity=2)
