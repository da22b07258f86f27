#!/usr/bin/env python3
"""Story: clients reach the origin over every transport it offers, and an operator restarts it.

HTTP/1.1, HTTP/2 with prior knowledge (h2c), HTTPS with TLS 1.2 and 1.3 negotiating h2 by ALPN,
nothing older than TLS 1.2; a SIGTERM lets a download in flight finish byte-exact while new
connections are refused; the access log has one key=value line per request and every response
carries an X-Request-Id.
"""
import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP, V = "acme", "1.0.0"
SMALL = "Acme-Setup-1.0.0.exe"
LARGE = "Acme-1.0.0.AppImage"
LARGE_SIZE = 50 * 1024 * 1024


def curl(url, *args):
    """Returns (http_version, status, headers lower-case, body) of a curl request."""
    proc = subprocess.run(["curl", "-sS", "--max-time", "20", "-D", "-", "-o", "/dev/null",
                           "-w", "\n%{http_version} %{http_code}", *args, url], capture_output=True)
    if proc.returncode != 0:
        raise AssertionError("curl %s %s failed (%d): %s" % (" ".join(args), url, proc.returncode, proc.stderr.decode()))
    out = proc.stdout.decode("latin-1")
    head, _, tail = out.rpartition("\n")
    version, status = tail.split()
    headers = {}
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return version, int(status), headers


class Transport(harness.StackTest):
    env_name = "test_transport"
    programs = ("origin", "control")
    keys = (("admin", "admin", "test"),)
    apps = ((APP, "Acme"),)

    @classmethod
    def prepare_stack(cls):
        cls.cert, cls.key = cls.env.make_cert("-newkey", "rsa:2048")
        cls.access_log = os.path.join(cls.env.dir, "access.log")

    @classmethod
    def origin_args(cls):
        return ("--listen", "127.0.0.1:0", "--listen", "https://127.0.0.1:0", "--tls-cert", cls.cert, "--tls-key", cls.key,
                "--access-log", cls.access_log)

    @classmethod
    def set_up_stack(cls):
        cls.small = os.urandom(100000)
        cls.large = os.urandom(LARGE_SIZE)
        cls.release_artifacts(APP, V, [(SMALL, cls.small, "windows", "x64"), (LARGE, cls.large, "linux", "x64")])

    def tls_context(self, version):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.cert)
        ctx.minimum_version = ctx.maximum_version = version
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        return ctx

    def handshake(self, ctx):
        with socket.create_connection(("127.0.0.1", self.origin.https_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.version(), tls.selected_alpn_protocol()

    # --- protocols -------------------------------------------------------------------------------

    def test_http11_is_served(self):
        version, status, headers = curl(self.origin.url + "/healthz", "--http1.1")
        self.assertEqual((version, status), ("1.1", 200))

    def test_h2c_with_prior_knowledge_is_served(self):
        version, status, headers = curl(self.origin.url + "/healthz", "--http2-prior-knowledge")
        self.assertEqual((version, status), ("2", 200))

    def test_tls12_negotiates_h2_by_alpn(self):
        self.assertEqual(self.handshake(self.tls_context(ssl.TLSVersion.TLSv1_2)), ("TLSv1.2", "h2"))
        version, status, _ = curl(self.origin.https_url + "/healthz", "--cacert", self.cert, "--http2",
                                  "--tlsv1.2", "--tls-max", "1.2")
        self.assertEqual((version, status), ("2", 200))

    def test_tls13_negotiates_h2_by_alpn(self):
        self.assertEqual(self.handshake(self.tls_context(ssl.TLSVersion.TLSv1_3)), ("TLSv1.3", "h2"))
        version, status, _ = curl(self.origin.https_url + "/healthz", "--cacert", self.cert, "--http2",
                                  "--tlsv1.3", "--tls-max", "1.3")
        self.assertEqual((version, status), ("2", 200))

    def test_https_http11_is_served_when_the_client_offers_only_http11(self):
        ctx = self.tls_context(ssl.TLSVersion.TLSv1_3)
        ctx.set_alpn_protocols(["http/1.1"])
        tls_version, alpn = self.handshake(ctx)
        self.assertEqual(tls_version, "TLSv1.3")
        self.assertIn(alpn, (None, "http/1.1"), "never h2 when the client did not offer it")
        version, status, _ = curl(self.origin.https_url + "/healthz", "--cacert", self.cert, "--http1.1")
        self.assertEqual((version, status), ("1.1", 200))

    def test_tls11_and_tls10_are_refused_by_the_server(self):
        for version in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
            ctx = self.tls_context(version)
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer the old protocol at all
            with self.assertRaises(ssl.SSLError, msg=str(version)) as cm:
                self.handshake(ctx)
            # refused by the server (h2o 2.2.5 closes without flushing OpenSSL's protocol_version alert),
            # not by this client declining to offer the old version
            self.assertIn(cm.exception.reason, ("TLSV1_ALERT_PROTOCOL_VERSION", "UNEXPECTED_EOF_WHILE_READING"),
                          "%s: %s" % (version, cm.exception))

    def test_artifact_over_h2_tls_is_byte_exact(self):
        proc = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", self.cert, "--http2", "-o", "-",
                               self.origin.https_url + "/artifacts/%s/%s/%s" % (APP, V, SMALL)], capture_output=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(hashlib.sha512(proc.stdout).digest(), hashlib.sha512(self.small).digest())

    # --- request ids and the access log ----------------------------------------------------------

    def test_every_response_carries_a_distinct_x_request_id(self):
        ids = []
        for path in ("/healthz", "/nope", "/artifacts/%s/%s/%s" % (APP, V, SMALL), "/artifacts/%s/9.9.9/x.exe" % APP):
            status, headers, _ = self.env.http("GET", path)
            self.assertIn("x-request-id", headers, path)
            ids.append(headers["x-request-id"])
        status, headers, _ = self.env.http("POST", "/healthz")
        self.assertEqual(status, 405)
        ids.append(headers["x-request-id"])
        _, _, headers = curl(self.origin.url + "/healthz", "--http2-prior-knowledge")
        ids.append(headers["x-request-id"])
        self.assertTrue(all(i for i in ids))
        self.assertEqual(len(set(ids)), len(ids), "request ids are unique: %r" % ids)

    def read_access_log(self, marker, want, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            with open(self.access_log, "r", errors="replace") as f:
                lines = [line for line in f.read().splitlines() if marker in line]
            if len(lines) >= want or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    @staticmethod
    def fields(line):
        pairs = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line)
        rebuilt = " ".join("%s=%s" % p for p in pairs)
        assert rebuilt == line, "not a key=value line: %r" % line
        return {k: v[1:-1] if v.startswith('"') else v for k, v in pairs}

    def test_access_log_has_one_key_value_line_per_request(self):
        marker = "accesslog%d" % os.getpid()
        art = "/artifacts/%s/%s/%s?%s" % (APP, V, SMALL, marker)
        s1, h1, b1 = self.env.http("GET", "/healthz?" + marker)
        s2, h2, b2 = self.env.http("GET", art)
        s3, h3, b3 = self.env.http("HEAD", art)
        s4, h4, b4 = self.env.http("GET", "/artifacts/%s/%s/missing.exe?%s" % (APP, V, marker))
        s5, h5, b5 = self.env.http("DELETE", "/healthz?" + marker)
        lines = self.read_access_log(marker, 5)
        self.assertEqual(len(lines), 5, "one line per request: %r" % lines)
        logged = [self.fields(line) for line in lines]
        expected = [("GET", "/healthz?" + marker, s1, len(b1), h1),
                    ("GET", art, s2, len(self.small), h2),
                    ("HEAD", art, s3, 0, h3),
                    ("GET", "/artifacts/%s/%s/missing.exe?%s" % (APP, V, marker), s4, len(b4), h4),
                    ("DELETE", "/healthz?" + marker, s5, len(b5), h5)]
        self.assertEqual([s1, s2, s3, s4, s5], [200, 200, 200, 404, 405])
        for f, (method, path, status, nbytes, headers) in zip(logged, expected):
            self.assertEqual(f["method"], method)
            self.assertEqual(f["path"], path)
            self.assertEqual(int(f["status"]), status)
            self.assertEqual(int(f["bytes"]), nbytes, "bytes= counts the body bytes sent: %r" % f)
            self.assertEqual(f["id"], headers["x-request-id"], "the log line carries the response's request id")

    def test_access_log_names_the_protocol_of_h2_requests(self):
        marker = "h2log%d" % os.getpid()
        curl(self.origin.url + "/healthz?" + marker, "--http2-prior-knowledge")
        curl(self.origin.https_url + "/healthz?" + marker + "tls", "--cacert", self.cert, "--http2")
        lines = self.read_access_log(marker, 2)
        self.assertEqual(len(lines), 2, lines)
        self.assertEqual([self.fields(line)["proto"] for line in lines], ["h2", "h2+tls"])

    def test_access_log_escapes_hostile_bytes_in_the_path(self):
        marker = "esclog%d" % os.getpid()
        req = ('GET /nope-%s-"quoted"\\x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' % marker).encode()
        self.env.raw(self.origin.port, req)
        lines = self.read_access_log(marker, 1)
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(self.fields(lines[0])["path"], '/nope-%s-\\"quoted\\"\\\\x' % marker)

    # --- graceful shutdown -----------------------------------------------------------------------

    def read_response_head(self, s, data):
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            self.assertTrue(chunk, "connection closed before the response head")
            data += chunk
        head, _, rest = bytes(data).partition(b"\r\n\r\n")
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        self.assertIsNotNone(m, head)
        return head, bytearray(rest), int(m.group(1))

    def test_sigterm_lets_a_slow_download_finish_and_refuses_new_connections(self):
        origin = self.env.start_origin("--listen", "127.0.0.1:0", "--access-log", "")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # keep the server's writes blocked
        s.settimeout(10)
        s.connect(("127.0.0.1", origin.port))
        # a keep-alive request, as every browser and updater sends
        s.sendall(("GET /artifacts/%s/%s/%s HTTP/1.1\r\nHost: x\r\n\r\n" % (APP, V, LARGE)).encode())
        head, body, length = self.read_response_head(s, bytearray())
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head[:100])
        self.assertEqual(length, LARGE_SIZE)
        while len(body) < 2 * 1024 * 1024:  # a slow client: about 20 MB/s
            chunk = s.recv(64 * 1024)
            self.assertTrue(chunk, "connection closed early")
            body += chunk
            time.sleep(0.003)

        origin.popen.send_signal(signal.SIGTERM)
        # the listener closes at once; the download keeps going, slowly, meanwhile
        refused = False
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not refused:
            chunk = s.recv(64 * 1024)
            self.assertTrue(chunk, "connection closed early")
            body += chunk
            try:
                socket.create_connection(("127.0.0.1", origin.port), timeout=1).close()
            except ConnectionRefusedError:
                refused = True
            time.sleep(0.02)
        self.assertTrue(refused, "new connections are refused after SIGTERM")

        while len(body) < LARGE_SIZE:
            try:
                chunk = s.recv(1024 * 1024)
            except ConnectionResetError:
                self.fail("connection reset during the download (after %d bytes)" % len(body))
            self.assertTrue(chunk, "connection closed after %d of %d bytes" % (len(body), LARGE_SIZE))
            body += chunk
        done = time.monotonic()
        self.assertEqual(len(body), LARGE_SIZE, "nothing after the body")
        self.assertEqual(hashlib.sha512(body).digest(), hashlib.sha512(self.large).digest())

        # the request is over: shutting down must not wait for this now idle keep-alive connection
        s.settimeout(10)
        try:
            tail = s.recv(1)
        except ConnectionResetError:
            tail = b""
        closed_after = time.monotonic() - done
        s.close()
        origin.stopped = True  # it is stopping on its own: wait for it here
        self.assertEqual(origin.popen.wait(10), 0, "exit status after SIGTERM")
        exited_after = time.monotonic() - done
        self.assertEqual(tail, b"", "nothing after the response")
        self.assertLess(closed_after, 2.0, "the server closes the connection once the in-flight response is done")
        self.assertLess(exited_after, 2.0, "the server exits once the in-flight response is done")

    def test_sigterm_does_not_wait_for_idle_keep_alive_connections(self):
        origin = self.env.start_origin("--listen", "127.0.0.1:0", "--access-log", "")
        s = socket.create_connection(("127.0.0.1", origin.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body, length = self.read_response_head(s, bytearray())
        while len(body) < length:
            body += s.recv(65536)
        self.assertEqual(bytes(body), b"ok\n")
        start = time.monotonic()
        origin.popen.send_signal(signal.SIGTERM)
        origin.stopped = True
        try:
            rc = origin.popen.wait(10)
        finally:
            s.close()
        took = time.monotonic() - start
        self.assertEqual(rc, 0)
        self.assertLess(took, 2.0, "an idle keep-alive connection (no request in flight) must not hold up the exit")


if __name__ == "__main__":
    unittest.main()
