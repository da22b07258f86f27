#!/usr/bin/env python3
"""Story: an attacker sends malformed or ambiguous HTTP/1 requests to the origin.

Debian's h2o 2.2.5 parser is lenient in ways that allow request smuggling (STACK-NOTES.md "Known
weaknesses of h2o 2.2.5's HTTP/1 parser"); the origin's framing guard must answer 400 and close the
connection, so that a request hidden behind the bad one is never answered. Raw sockets only: an
HTTP library would refuse to send most of these.
"""
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP, V, FILE = "acme", "1.0.0", "Acme-Setup-1.0.0.exe"
ARTIFACT = "/artifacts/%s/%s/%s" % (APP, V, FILE)
SMUGGLED = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


def parse_responses(data):
    """Splits what a server sent into responses: [(status, headers lower-case, body)] and leftover bytes."""
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            raise AssertionError("not a status line: %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        rest = data[end + 4:]
        if "content-length" in headers:
            n = int(headers["content-length"])
            body, data = rest[:n], rest[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                crlf = rest.index(b"\r\n")
                size = int(rest[:crlf].split(b";")[0], 16)
                body += rest[crlf + 2:crlf + 2 + size]
                rest = rest[crlf + 4 + size:]
                if size == 0:
                    break
            data = rest
        else:
            body, data = rest, b""
        out.append((int(m.group(1)), headers, body))
    return out, data


class Hostile(harness.StackTest):
    env_name = "test_hostile_http"
    programs = ("origin", "control")
    keys = (("key", "admin", "test"),)
    apps = ((APP, "Acme"),)
    survives = True

    @classmethod
    def set_up_stack(cls):
        cls.release_artifacts(APP, V, [(FILE, os.urandom(10000), "windows", "x64")])

    # --- helpers ---------------------------------------------------------------------------------

    def exchange(self, data, timeout=5.0):
        """Sends data on a fresh connection (without half-closing) and reads until the server closes
        or `timeout` passes. Returns (responses, leftover bytes, closed_by_server)."""
        s = socket.create_connection(("127.0.0.1", self.origin.port), timeout=timeout)
        got, closed = b"", False
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                closed = True  # the server gave up on the request before reading all of it
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                got += chunk
        finally:
            s.close()
        responses, rest = parse_responses(got)
        return responses, rest, closed

    def assert_refused(self, request, status=400):
        """Exactly one response with `status`, then the server closes: nothing after it is answered."""
        responses, rest, closed = self.exchange(request)
        self.assertEqual([r[0] for r in responses], [status], "exactly one %d for %r" % (status, request[:120]))
        self.assertEqual(rest, b"", "no bytes after the refusal")
        self.assertTrue(closed, "the connection must be closed after the refusal of %r" % request[:120])
        self.assert_alive()
        return responses[0]

    def assert_alive(self):
        responses, _, _ = self.exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual([r[0] for r in responses], [200], "the origin still answers /healthz")

    # --- framing: each of these is refused with 400 and a closed connection ----------------------

    def test_two_content_length_headers_are_refused_and_the_smuggled_request_unanswered(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\n" + SMUGGLED)

    def test_two_equal_content_length_headers_are_refused(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n" + SMUGGLED)

    def test_two_content_lengths_on_an_artifact_with_a_smuggled_request_are_refused(self):
        req = ("GET %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\n" % ARTIFACT).encode()
        self.assert_refused(req + SMUGGLED)

    def test_chunk_size_0_2e_is_refused_and_the_hidden_request_unanswered(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0_2e\r\n\r\n" + SMUGGLED)
        self.assert_refused(b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0_2e\r\n\r\n" + SMUGGLED)

    def test_any_transfer_encoding_is_refused(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)

    def test_content_length_with_transfer_encoding_is_refused(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"0\r\n\r\n" + SMUGGLED)
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
                            b"0\r\n\r\n" + SMUGGLED)

    def test_http11_without_host_is_refused(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\n\r\n" + SMUGGLED)

    def test_http10_without_host_is_answered(self):
        responses, _, closed = self.exchange(b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertEqual([r[0] for r in responses], [200])
        self.assertEqual(responses[0][2], b"ok\n")
        self.assertTrue(closed, "HTTP/1.0 without keep-alive closes after the answer")

    def test_two_host_headers_are_refused(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + SMUGGLED)
        self.assert_refused(b"GET /healthz HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n")

    def test_obsolete_line_folding_is_refused(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n" + SMUGGLED)
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\tContent-Length: 5\r\n\r\n" + SMUGGLED)

    def test_space_before_the_colon_is_refused(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length : 36\r\n\r\n" + SMUGGLED)
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)

    def test_malformed_content_length_is_refused(self):
        for value in (b"-1", b"1e3", b"0x10", b"+5", b"5, 5", b""):
            self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n\r\n" + SMUGGLED)

    def test_header_line_without_colon_is_refused(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n" + SMUGGLED)

    # --- size limits -----------------------------------------------------------------------------

    def head_of_length(self, total):
        """A GET /healthz whose head (through the blank line) is exactly `total` bytes."""
        start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Fill: "
        end = b"\r\n\r\n"
        return start + b"a" * (total - len(start) - len(end)) + end

    def test_request_head_of_exactly_65536_bytes_is_answered(self):
        responses, _, _ = self.exchange(self.head_of_length(65536))
        self.assertEqual([r[0] for r in responses], [200])

    def test_request_head_over_65536_bytes_is_431_and_closed(self):
        self.assert_refused(self.head_of_length(65537), status=431)
        self.assert_refused(self.head_of_length(70000) + SMUGGLED, status=431)

    def test_many_headers_adding_up_over_65536_bytes_are_431(self):
        fill = b"".join(b"X-F%02d: %s\r\n" % (i, b"b" * 1400) for i in range(50))
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fill + b"\r\n" + SMUGGLED, status=431)

    def test_huge_request_head_is_refused_by_h2o_with_400_and_closed(self):
        # beyond what h2o 2.2.5 buffers for a request head (about 400 KB) h2o itself answers 400
        # before any handler, so the guard's 431 cannot be sent: still one refusal and a close
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fill: " + b"a" * 600000 + b"\r\n\r\n" + SMUGGLED)

    def test_more_than_100_header_lines_are_refused_with_400_and_closed(self):
        # h2o 2.2.5 parses at most 100 header lines and refuses the request itself
        fill = b"".join(b"X-H%d: a\r\n" % i for i in range(150))
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fill + b"\r\n" + SMUGGLED)

    # --- methods and bodies ----------------------------------------------------------------------

    def test_other_methods_are_405_with_allow_get_head(self):
        for method in (b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"):
            for path in (b"/healthz", ARTIFACT.encode(), b"/update/acme/latest.yml"):
                responses, _, _ = self.exchange(method + b" " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                                b"Connection: close\r\n\r\n")
                self.assertEqual([r[0] for r in responses], [405], (method, path))
                self.assertEqual(responses[0][1].get("allow"), "GET, HEAD", (method, path))

    def test_get_with_a_body_is_refused(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd" + SMUGGLED)
        self.assert_refused(("GET %s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd" % ARTIFACT).encode() + SMUGGLED)

    def test_post_with_a_body_is_refused(self):
        responses, _, closed = self.exchange(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd" + SMUGGLED)
        self.assertEqual(len(responses), 1)
        self.assertIn(responses[0][0], (400, 405))
        self.assertTrue(closed)

    def test_get_with_content_length_zero_is_answered(self):
        responses, _, _ = self.exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.assertEqual([r[0] for r in responses], [200])

    # --- good requests still work ----------------------------------------------------------------

    def test_pipelined_good_requests_are_all_answered_in_order(self):
        req = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               + ("HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % ARTIFACT).encode()
               + b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        # a HEAD response has a Content-Length but no body: split by hand around it
        s = socket.create_connection(("127.0.0.1", self.origin.port), timeout=5)
        data = b""
        try:
            s.sendall(req)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        statuses = re.findall(rb"^HTTP/1\.1 (\d{3}) ", data, re.M)
        self.assertEqual(statuses, [b"200", b"200", b"200"])
        self.assertIn(b"updraft_requests_total", data)

    def test_two_pipelined_gets_in_one_write_get_two_200s(self):
        responses, rest, closed = self.exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                                b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual([r[0] for r in responses], [200, 200])
        self.assertEqual(rest, b"")
        self.assertTrue(closed)

    def test_framing_refusals_are_counted_in_metrics(self):
        self.exchange(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        responses, _, _ = self.exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        m = re.search(rb'^updraft_framing_rejected_total\{[^}]*\} (\d+)$', responses[0][2], re.M)
        self.assertIsNotNone(m, "updraft_framing_rejected_total in /metrics")
        self.assertGreaterEqual(int(m.group(1)), 1)


if __name__ == "__main__":
    unittest.main()
