#!/usr/bin/env python3
"""Story: a client asks for two ranges whose multipart framing lands exactly on the origin's send
boundaries, and still receives every byte of both parts.

Regression: with the local store the origin reads each response piece into a 256 KiB buffer; when
part 0's header, its data and part 1's header together filled that buffer exactly, the next read
asked for 0 bytes, was taken for "unexpected end of file", and the response was cut. The same
geometry is checked at the 1 MiB a memory-mapped object sends per piece, and on every serving
path: the local store, a cache hit, and a cache fill in progress (object storage, two s3rvers).
"""
import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_artifacts as artifacts  # noqa: E402  (its strict multipart parser)

APP = "acme"
SIZE = 5 * 1024 * 1024 + 123
BLOCK = 256 * 1024
# the piece sizes the origin has used: its read buffer, and what one send takes from a memory map
PIECES = (256 * 1024, 1024 * 1024)
SECOND = (3 * 1024 * 1024, 3 * 1024 * 1024 + 999)  # part 1, far from part 0


def part_header(boundary, first, last, size, leading_crlf):
    return ("%s--%s\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes %d-%d/%d\r\n\r\n"
            % ("\r\n" if leading_crlf else "", boundary, first, last, size)).encode()


def ranges_filling(boundary, piece, start, size, slack=0):
    """Part 0 from `start` sized so that header 0 + part 0 + header 1 (+ slack) is exactly `piece` bytes."""
    h1 = len(part_header(boundary, SECOND[0], SECOND[1], size, True))
    length = piece - h1 - slack
    for _ in range(5):  # the header's length depends on the digits of the part's last byte
        h0 = len(part_header(boundary, start, start + length - 1, size, False))
        want = piece - h0 - h1 - slack
        if want == length:
            return [(start, start + length - 1), SECOND]
        length = want
    raise AssertionError("no fixed point for piece %d" % piece)


class Boundaries:
    """The checks, mixed into one TestCase per serving path (each sets self.base and self.path_of)."""

    def fetch(self, path, ranges):
        spec = "bytes=" + ",".join("%d-%d" % r for r in ranges)
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nRange: %s\r\n\r\n" % (path, spec)).encode()
        return artifacts.split_response(self.env.raw(self.port(), req, timeout=10))

    def boundary(self, path):
        status, headers, _ = self.fetch(path, [(0, 0), (2, 2)])
        self.assertEqual(status, 206)
        return headers["content-type"].split("boundary=", 1)[1].strip('"')

    def check(self, path, data, ranges):
        status, headers, body = self.fetch(path, ranges)
        self.assertEqual(status, 206, ranges)
        self.assertEqual(int(headers["content-length"]), len(body), "the whole multipart body arrived: %r" % (ranges,))
        parts = artifacts.parse_byteranges(body, headers["content-type"])
        self.assertEqual([(p[0], p[1]) for p in parts], ranges)
        for first, last, total, _, got in parts:
            self.assertEqual(total, len(data))
            self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(data[first:last + 1]).digest(),
                             "bytes of part %d-%d" % (first, last))

    def geometries(self, boundary):
        """Part 0 ending each piece exactly with header 1 in it, one byte short of that, and with header 1 just
        outside; part 0 starting at 0 and at an odd offset."""
        for piece in PIECES:
            for start in (0, 7):
                for slack in (0, 1, -1):
                    yield ranges_filling(boundary, piece, start, SIZE, slack)
        # header 0 + part 0 alone fill the piece: header 1 opens the next one
        for piece in PIECES:
            h0 = len(part_header(boundary, 0, piece, SIZE, False))
            yield [(0, piece - h0 - 1), SECOND]

    def check_all(self, path, data):
        boundary = self.boundary(path)
        for ranges in self.geometries(boundary):
            with self.subTest(ranges=ranges):
                self.check(path, data, ranges)


class LocalStore(Boundaries, harness.StackTest):
    env_name = "multipart_local"
    programs = ("origin", "control")
    keys = (("key", "admin", "test"),)
    apps = ((APP, "Acme"),)
    survives = True

    @classmethod
    def set_up_stack(cls):
        cls.data = os.urandom(SIZE)
        cls.release_artifacts(APP, "1.0.0", [("Acme-Setup-1.0.0.exe", cls.data, "windows", "x64")])

    def port(self):
        return self.origin.port

    def test_parts_ending_a_read_chunk_exactly_are_sent_whole_from_the_local_store(self):
        self.check_all("/artifacts/acme/1.0.0/Acme-Setup-1.0.0.exe", self.data)


class ObjectStorage(Boundaries, harness.StackTest):
    env_name = "multipart_object_storage"
    s3rvers = ("r2", "s3")
    programs = ("control",)
    control_public_url = "http://cdn.example"
    keys = (("key", "admin", "test"),)
    apps = ((APP, "Acme"),)
    version = 0

    @classmethod
    def control_args(cls):
        return ("--config", cls.env.write("control.yaml", 'listen: ["127.0.0.1:0"]\nintegrity:\n  block_size: %d\n' % BLOCK))

    @classmethod
    def set_up_stack(cls):
        cls.origin = cls.env.start_origin("--config", cls.env.object_store_config(cls.r2, cls.s3))

    def port(self):
        return self.origin.port

    def publish(self):
        ObjectStorage.version += 1
        version = "1.0.%d" % ObjectStorage.version
        name = "Acme-Setup-%s.exe" % version
        data = os.urandom(SIZE)
        f = dict(self.env.put_artifact(APP, version, name, data), platform="windows", arch="x64")
        key = "%s/%s/%s" % (APP, version, name)
        for b in (self.r2, self.s3):
            self.env.s3_put(b, key, data)
        st, body = self.env.register_release(self.key, APP, version, [f])
        self.assertEqual(st, 201, body)
        return key, "/artifacts/" + key, data

    def test_parts_ending_a_piece_exactly_are_sent_whole_from_a_cache_hit(self):
        key, path, data = self.publish()
        st, _, body = self.env.http("GET", path, timeout=60)
        self.assertEqual((st, len(body)), (200, SIZE))
        self.check_all(path, data)
        self.assertEqual(self.env.s3_count(self.r2, "GET", key), 1, "every multipart answer was a hit")

    def test_parts_ending_a_piece_exactly_are_sent_whole_during_a_fill(self):
        boundary = None
        for ranges_of in range(len(list(Boundaries.geometries(self, "x")))):
            key, path, data = self.publish()  # a fresh object each time: the first request starts its fill
            if boundary is None:
                boundary = self.boundary(path)  # this one fills it; the measured requests use fresh objects
                key, path, data = self.publish()
            ranges = list(self.geometries(boundary))[ranges_of]
            with self.subTest(ranges=ranges):
                self.check(path, data, ranges)
                self.assertEqual(self.env.s3_count(self.r2, "GET", key), 1)


if __name__ == "__main__":
    unittest.main()
