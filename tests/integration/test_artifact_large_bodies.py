#!/usr/bin/env python3
"""Story: clients download large artifacts over plain HTTP/1.1, where the origin sends the body
with sendfile() from the file to the socket behind h2o's back (handlers/artifact.c push_sendfile).

What that must not break: a second request on the same connection (pipelined, even) is answered
after every byte of the first; a slow reader gets every byte in order; the access log counts the
bytes; a file an operator truncates in the local store while it is being sent cuts that response
(never more bytes, never a crash) and the origin serves on. Over TLS the body takes h2o's path.
"""
import hashlib
import os
import re
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP = "acme"
SIZE = 24 * 1024 * 1024 + 5
PATH = "/artifacts/acme/1.0.0/Acme-Setup-1.0.0.exe"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def read_response(sock, buf=b""):
    """Reads one response with Content-Length from sock; returns (status, headers, body, leftover bytes)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before the head: %r" % buf[:200])
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    length = int(headers["content-length"])
    parts, got = [rest], len(rest)
    while got < length:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    body = b"".join(parts)
    return status, headers, body[:length], body[length:]


class LargeBodies(harness.StackTest):
    env_name = "artifact_large_bodies"
    programs = ("origin", "control")
    keys = (("key", "admin", "test"),)
    apps = ((APP, "Acme"),)
    survives = True

    @classmethod
    def prepare_stack(cls):
        cls.cert, cls.key_file = cls.env.make_cert()

    @classmethod
    def origin_args(cls):
        return ("--listen", "127.0.0.1:0", "--listen", "https://127.0.0.1:0", "--tls-cert", cls.cert, "--tls-key", cls.key_file)

    @classmethod
    def set_up_stack(cls):
        cls.data = os.urandom(SIZE)
        cls.release_artifacts(APP, "1.0.0", [("Acme-Setup-1.0.0.exe", cls.data, "windows", "x64")])

    def connect(self, rcvbuf=None):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(20)
        s.connect(("127.0.0.1", self.origin.port))
        return s

    def request(self, path=PATH, extra=""):
        return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, extra)).encode()

    def test_two_pipelined_requests_on_one_connection_get_both_bodies_exactly(self):
        s = self.connect()
        try:
            s.sendall(self.request() + self.request(extra="Range: bytes=1000-2000999\r\n"))
            status, _, body, rest = read_response(s)
            self.assertEqual((status, sha(body)), (200, sha(self.data)))
            status, headers, body, rest = read_response(s, rest)
            self.assertEqual((status, headers["content-range"]), (206, "bytes 1000-2000999/%d" % SIZE))
            self.assertEqual(sha(body), sha(self.data[1000:2001000]))
            self.assertEqual(rest, b"", "nothing after the second response")
        finally:
            s.close()

    def test_a_slow_reader_gets_every_byte_in_order(self):
        s = self.connect(rcvbuf=32 * 1024)
        try:
            s.sendall(self.request(extra="Range: bytes=7-6000006\r\n"))
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(4096)
            head, _, rest = buf.partition(b"\r\n\r\n")
            parts, got = [rest], len(rest)
            while got < 6000000:
                chunk = s.recv(16384)
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
                if len(parts) % 64 == 0:
                    time.sleep(0.01)  # the origin's socket fills and drains, again and again
            self.assertEqual(sha(b"".join(parts)), sha(self.data[7:6000007]))
        finally:
            s.close()

    def test_the_access_log_counts_the_bytes_sent(self):
        s = self.connect()
        try:
            s.sendall(self.request(extra="Connection: close\r\nX-Request-Id: big-body-bytes\r\n"))
            status, _, body, _ = read_response(s)
            self.assertEqual((status, len(body)), (200, SIZE))
        finally:
            s.close()
        log = os.path.join(self.env.dir, "%s.access.log" % self.origin.name)
        def lines():
            with open(log) as f:
                return [l for l in f.read().splitlines() if PATH in l and "status=200" in l]
        line = harness.poll(lines, lambda found: found, 5)
        self.assertTrue(line, "an access-log line for the download")
        sizes = [int(m) for l in line for m in re.findall(r"\bbytes=(\d+)", l)]
        self.assertIn(SIZE, [s for s in sizes], "bytes= of a whole download: %r" % line[-1])

    def test_whole_body_over_tls_http1_is_exact(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.origin.https_port), timeout=20))
        try:
            s.sendall(self.request(extra="Connection: close\r\n"))
            status, _, body, _ = read_response(s)
            self.assertEqual((status, sha(body)), (200, sha(self.data)))
        finally:
            s.close()

    def test_zz_a_file_truncated_while_it_is_sent_cuts_the_response_and_the_origin_serves_on(self):
        # a second release whose file an operator truncates in place, mid-download
        data = os.urandom(SIZE)
        self.release_artifacts(APP, "2.0.0", [("Acme-Setup-2.0.0.exe", data, "windows", "x64")])
        path = "/artifacts/acme/2.0.0/Acme-Setup-2.0.0.exe"
        s = self.connect(rcvbuf=64 * 1024)
        try:
            s.sendall(self.request(path, "Connection: close\r\n"))
            buf = b""
            while b"\r\n\r\n" not in buf or len(buf) < 1 << 20:
                buf += s.recv(65536)
            os.truncate(os.path.join(self.env.storage, APP, "2.0.0", "Acme-Setup-2.0.0.exe"), 4 * 1024 * 1024)
            got = len(buf.partition(b"\r\n\r\n")[2])
            body = [buf.partition(b"\r\n\r\n")[2]]
            while True:
                try:
                    chunk = s.recv(1 << 20)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                body.append(chunk)
                got += len(chunk)
        finally:
            s.close()
        self.assertLess(got, SIZE, "the response was cut, not completed")
        self.assertEqual(b"".join(body), data[:got], "what was sent is the file's bytes, in order")
        with open(self.origin.log) as f:
            self.assertIn("unexpected end of file", f.read())
        # the origin answers on, and the other release is intact
        st, _, body = self.env.http("GET", PATH, headers={"Range": "bytes=0-99"})
        self.assertEqual((st, body), (206, self.data[:100]))


if __name__ == "__main__":
    unittest.main()
