#!/usr/bin/env python3
"""Story: a client downloads a release's artifacts from the origin.

Whole files, HEAD, single and multiple ranges (electron-updater's differential download sends up
to 1,000 ascending ranges and needs 206 multipart/byteranges with the parts in the requested
order), conditional requests, the Squirrel.Windows .nupkg path, .blockmap files served as-is, and
everything a hostile path or a planted symlink could try. PROTOCOLS.md "Artifacts and downloads".
"""
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP = "acme"
V = "1.0.0"
BIG = "Acme-Setup-1.0.0.exe"
EMPTY = "acme-empty-1.0.0.zip"
NUPKG = "acme-1.0.0-full.nupkg"
BIG_SIZE = 3 * 1024 * 1024 + 17  # not a multiple of any buffer size
IMMUTABLE = "public, max-age=31536000, immutable"
SECRET_MARKER = b"UPDRAFT-SECRET-MARKER-must-never-be-served"


def sha512(data):
    return hashlib.sha512(data).digest()


def split_response(raw):
    """Splits one HTTP/1.1 response read until close: (status, headers lower-case, body bytes)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError("no complete response head in %r" % raw[:200])
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ", lines[0] + " ")
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(m.group(1)), {k: v[0] if len(v) == 1 else v for k, v in headers.items()}, body


def parse_byteranges(body, content_type):
    """Parses a multipart/byteranges body strictly (RFC 9110 §14.6, RFC 2046 §5.1.1).

    Returns [(first, last, complete_length, part_content_type, data)] in body order. Each part's data
    length is taken from its Content-Range and the delimiter must follow it exactly, so a part that
    is too long, too short or merged with its neighbour fails here.
    """
    m = re.fullmatch(r'multipart/byteranges;\s*boundary="?([^";]+)"?', content_type)
    if not m:
        raise AssertionError("not multipart/byteranges: %r" % content_type)
    delim = b"--" + m.group(1).encode()
    if not body.startswith(delim + b"\r\n"):
        raise AssertionError("body does not start with the boundary: %r" % body[:80])
    pos = len(delim) + 2
    parts = []
    while True:
        hend = body.index(b"\r\n\r\n", pos)
        part_headers = {}
        for line in body[pos:hend].decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            part_headers[name.strip().lower()] = value.strip()
        cr = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", part_headers.get("content-range", ""))
        if not cr:
            raise AssertionError("part without a valid Content-Range: %r" % part_headers)
        first, last, total = (int(x) for x in cr.groups())
        start = hend + 4
        end = start + (last - first + 1)
        parts.append((first, last, total, part_headers.get("content-type"), body[start:end]))
        if body[end:end + 2 + len(delim)] != b"\r\n" + delim:
            raise AssertionError("part %d (%d-%d) is not followed by the delimiter: %r"
                                 % (len(parts), first, last, body[end:end + 80]))
        pos = end + 2 + len(delim)
        if body[pos:pos + 2] == b"--":
            rest = body[pos + 2:]
            if rest not in (b"", b"\r\n"):
                raise AssertionError("bytes after the closing delimiter: %r" % rest[:80])
            return parts
        if body[pos:pos + 2] != b"\r\n":
            raise AssertionError("garbage after a delimiter: %r" % body[pos:pos + 40])
        pos += 2


def curl_fetch(url, *args):
    """Runs curl; returns (http_version, status, headers lower-case, body)."""
    # curl writes the header dump and the body to separate files so the body is byte-exact
    with tempfile.TemporaryDirectory() as d:
        hdr, body = os.path.join(d, "h"), os.path.join(d, "b")
        proc = subprocess.run(
            ["curl", "-sS", "-k", "--max-time", "20", "-D", hdr, "-o", body, "-w", "%{http_version}", *args, url],
            capture_output=True, check=False)
        if proc.returncode != 0:
            raise AssertionError("curl %s failed (%d): %s" % (url, proc.returncode, proc.stderr.decode()))
        with open(hdr, "rb") as f:
            head = f.read().decode("latin-1")
        with open(body, "rb") as f:
            data = f.read()
    blocks = [b for b in head.split("\r\n\r\n") if b.strip()]
    lines = blocks[-1].split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return proc.stdout.decode(), status, headers, data


class Artifacts(harness.StackTest):
    env_name = "test_artifacts"
    programs = ("origin", "control")
    keys = (("key_admin", "admin", "test"),)
    apps = ((APP, "Acme"),)

    @classmethod
    def prepare_stack(cls):
        cls.cert, cls.key = cls.env.make_cert()

    @classmethod
    def origin_args(cls):
        return ("--listen", "127.0.0.1:0", "--listen", "https://127.0.0.1:0", "--tls-cert", cls.cert, "--tls-key", cls.key)

    @classmethod
    def set_up_stack(cls):
        env, tmp = cls.env, cls.env.dir
        cls.big = os.urandom(BIG_SIZE)
        cls.nupkg = os.urandom(70000)
        cls.blockmap = gzip.compress(b'{"version":"2","files":[]}' * 50)
        env.put_artifact(APP, V, BIG + ".blockmap", cls.blockmap)
        env.put_artifact(APP, V, "stray-unregistered.exe", b"MZ not part of any release")
        cls.release_artifacts(APP, V, [(BIG, cls.big, "windows", "x64"), (EMPTY, b"", "windows", "x64"),
                                       (NUPKG, cls.nupkg, "windows", "x64")])

        # Releases whose files are replaced by symlinks after registration (the control plane checks
        # size and sha512 at registration only; the origin must still refuse to follow them).
        cls.secret_dir = os.path.join(tmp, "outside")
        os.makedirs(cls.secret_dir)
        secret = (SECRET_MARKER * 200)[:4096]
        for version in ("1.1.0", "1.2.0"):
            name = "Acme-Setup-%s.exe" % version
            cls.release_artifacts(APP, version, [(name, os.urandom(4096), "windows", "x64")])
            with open(os.path.join(cls.secret_dir, name), "wb") as out:
                out.write(secret)
        storage = env.storage
        # 1.1.0: the file itself becomes a symlink, and a .blockmap symlink points at /etc/passwd
        f110 = os.path.join(storage, APP, "1.1.0", "Acme-Setup-1.1.0.exe")
        os.unlink(f110)
        os.symlink(os.path.join(cls.secret_dir, "Acme-Setup-1.1.0.exe"), f110)
        os.symlink("/etc/passwd", f110 + ".blockmap")
        # 1.2.0: the version directory becomes a symlink to a directory outside storage
        d120 = os.path.join(storage, APP, "1.2.0")
        shutil.rmtree(d120)
        os.symlink(cls.secret_dir, d120)
        # a file at the storage root and above it that traversal attempts would aim for
        with open(os.path.join(storage, "secret.txt"), "wb") as out:
            out.write(SECRET_MARKER)
        with open(os.path.join(tmp, "secret.txt"), "wb") as out:
            out.write(SECRET_MARKER)

    # --- helpers ---------------------------------------------------------------------------------

    def get(self, path, headers=None, method="GET"):
        return self.env.http(method, path, headers=headers)

    def raw_get(self, path, headers=(), method="GET"):
        """One request on a fresh connection with Connection: close; everything the server sent."""
        req = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % (method, path)
        req += "".join("%s: %s\r\n" % h for h in headers) + "\r\n"
        return split_response(self.env.raw(self.origin.port, req.encode("latin-1"), timeout=10))

    def art(self, name=BIG, version=V):
        return "/artifacts/%s/%s/%s" % (APP, version, name)

    def assert_parts(self, body, content_type, wanted):
        parts = parse_byteranges(body, content_type)
        self.assertEqual([(p[0], p[1]) for p in parts], wanted, "parts in the requested order, never merged")
        for first, last, total, ctype, data in parts:
            self.assertEqual(total, BIG_SIZE)
            self.assertEqual(ctype, "application/octet-stream")
            self.assertEqual(data, self.big[first:last + 1], "bytes of part %d-%d" % (first, last))

    # --- whole files and HEAD --------------------------------------------------------------------

    def test_full_get_returns_the_stored_bytes_exactly(self):
        status, headers, body = self.get(self.art())
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["content-length"]), BIG_SIZE)
        self.assertEqual(sha512(body), sha512(self.big))

    def test_full_get_carries_immutable_cache_control_strong_etag_and_accept_ranges(self):
        status, headers, _ = self.get(self.art())
        self.assertEqual(status, 200)
        self.assertEqual(headers["cache-control"], IMMUTABLE)
        self.assertRegex(headers["etag"], r'^"[^"]+"$', "a strong ETag (no W/)")
        self.assertEqual(headers["accept-ranges"], "bytes")
        self.assertEqual(headers["content-type"], "application/octet-stream")
        self.assertNotIn("content-encoding", headers)

    def test_etag_is_stable_across_requests(self):
        e1 = self.get(self.art())[1]["etag"]
        e2 = self.get(self.art(), method="HEAD")[1]["etag"]
        self.assertEqual(e1, e2)

    def test_empty_file_is_served_with_content_length_zero(self):
        status, headers, body = self.raw_get(self.art(EMPTY))
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-length"], "0")
        self.assertEqual(body, b"")
        self.assertEqual(headers["cache-control"], IMMUTABLE)

    def test_range_on_an_empty_file_is_unsatisfiable(self):
        status, headers, _ = self.raw_get(self.art(EMPTY), [("Range", "bytes=0-")])
        self.assertEqual(status, 416)
        self.assertEqual(headers["content-range"], "bytes */0")

    def test_head_sends_the_headers_of_a_get_and_no_body(self):
        status, headers, body = self.raw_get(self.art(), method="HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["content-length"]), BIG_SIZE)
        self.assertEqual(headers["cache-control"], IMMUTABLE)
        self.assertEqual(headers["accept-ranges"], "bytes")
        self.assertIn("etag", headers)
        self.assertEqual(body, b"", "HEAD must not send body bytes")

    def test_head_with_a_range_sends_no_body(self):
        # RFC 9110 defines Range for GET only, so 200 is as right as 206; a body never is
        status, headers, body = self.raw_get(self.art(), [("Range", "bytes=0-9, 20-29")], method="HEAD")
        self.assertIn(status, (200, 206))
        self.assertEqual(body, b"")

    # --- single ranges ---------------------------------------------------------------------------

    def check_single(self, spec, first, last):
        status, headers, body = self.raw_get(self.art(), [("Range", spec)])
        self.assertEqual(status, 206, spec)
        self.assertEqual(headers["content-range"], "bytes %d-%d/%d" % (first, last, BIG_SIZE), spec)
        self.assertEqual(int(headers["content-length"]), last - first + 1, spec)
        self.assertEqual(body, self.big[first:last + 1], spec)
        self.assertEqual(headers["content-type"], "application/octet-stream")

    def test_single_range_first_last_gives_206_with_exact_content_range(self):
        self.check_single("bytes=100-1099", 100, 1099)

    def test_single_range_open_ended_runs_to_the_end(self):
        self.check_single("bytes=%d-" % (BIG_SIZE - 5000), BIG_SIZE - 5000, BIG_SIZE - 1)

    def test_single_suffix_range_gives_the_last_n_bytes(self):
        self.check_single("bytes=-777", BIG_SIZE - 777, BIG_SIZE - 1)

    def test_single_range_end_beyond_the_file_is_clamped(self):
        self.check_single("bytes=3000000-99999999999", 3000000, BIG_SIZE - 1)

    def test_single_byte_ranges_at_both_ends(self):
        self.check_single("bytes=0-0", 0, 0)
        self.check_single("bytes=%d-%d" % (BIG_SIZE - 1, BIG_SIZE - 1), BIG_SIZE - 1, BIG_SIZE - 1)

    def test_range_starting_at_the_size_is_416_with_content_range_star(self):
        for spec in ("bytes=%d-" % BIG_SIZE, "bytes=%d-%d" % (BIG_SIZE + 10, BIG_SIZE + 20), "bytes=-0"):
            status, headers, _ = self.raw_get(self.art(), [("Range", spec)])
            self.assertEqual(status, 416, spec)
            self.assertEqual(headers["content-range"], "bytes */%d" % BIG_SIZE, spec)
            self.assertNotIn("immutable", headers.get("cache-control", ""), "a 416 must not be cached as immutable")

    def test_malformed_or_foreign_unit_range_is_ignored_with_the_whole_file(self):
        for spec in ("bytes=abc", "items=0-10", "bytes=10-5", "bytes=", "bytes=--1"):
            status, headers, body = self.raw_get(self.art(), [("Range", spec)])
            self.assertEqual(status, 200, spec)
            self.assertEqual(len(body), BIG_SIZE, spec)

    # --- multiple ranges -------------------------------------------------------------------------

    def check_multi(self, spec, wanted):
        status, headers, body = self.raw_get(self.art(), [("Range", spec)])
        self.assertEqual(status, 206, spec)
        self.assertNotIn("content-range", headers, "a multipart answer has Content-Range per part only")
        self.assertEqual(int(headers["content-length"]), len(body), "Content-Length equals the bytes sent")
        self.assert_parts(body, headers["content-type"], wanted)
        return headers

    def test_two_ranges_with_space_give_206_multipart_in_order(self):
        self.check_multi("bytes=0-99, 2000-2999", [(0, 99), (2000, 2999)])

    def test_two_ranges_without_space_give_206_multipart_in_order(self):
        self.check_multi("bytes=0-99,2000-2999", [(0, 99), (2000, 2999)])

    def test_adjacent_ranges_are_not_merged(self):
        self.check_multi("bytes=0-99,100-199,200-299", [(0, 99), (100, 199), (200, 299)])

    def test_multi_range_with_open_end_and_clamping_spans_to_the_last_byte(self):
        self.check_multi("bytes=10-19, %d-%d" % (BIG_SIZE - 100, BIG_SIZE + 100),
                         [(10, 19), (BIG_SIZE - 100, BIG_SIZE - 1)])

    def test_multi_range_parts_cross_the_servers_read_chunks_exactly(self):
        # parts larger than any plausible read buffer, straddling 256 KiB and 1 MiB boundaries
        self.check_multi("bytes=1-300000, 300001-300001, 1048000-2100000, 3000000-",
                         [(1, 300000), (300001, 300001), (1048000, 2100000), (3000000, BIG_SIZE - 1)])

    def test_one_thousand_ascending_ranges_give_206_with_one_thousand_parts(self):
        wanted = [(i * 3000, i * 3000 + (i % 50)) for i in range(1000)]
        spec = "bytes=" + ", ".join("%d-%d" % r for r in wanted)
        self.check_multi(spec, wanted)

    def test_one_thousand_and_one_ranges_give_the_whole_file(self):
        spec = "bytes=" + ",".join("%d-%d" % (i * 3000, i * 3000 + 9) for i in range(1001))
        status, headers, body = self.raw_get(self.art(), [("Range", spec)])
        self.assertEqual(status, 200)
        self.assertNotIn("content-range", headers)
        self.assertEqual(int(headers["content-length"]), BIG_SIZE)
        self.assertEqual(sha512(body), sha512(self.big))

    def test_overlapping_unsorted_or_amplifying_ranges_give_the_whole_file(self):
        for spec in ("bytes=0-99, 50-149",         # overlapping
                     "bytes=1000-1999, 0-99",      # unsorted
                     "bytes=0-99, 0-99",           # repeated
                     "bytes=0-, -100",             # parts add up to more than the file
                     "bytes=-100, 0-10"):          # a suffix before an earlier start
            status, headers, body = self.raw_get(self.art(), [("Range", spec)])
            self.assertEqual(status, 200, spec)
            self.assertEqual(int(headers["content-length"]), BIG_SIZE, spec)
            self.assertEqual(sha512(body), sha512(self.big), spec)

    def test_multi_range_with_some_parts_beyond_the_end_keeps_only_the_satisfiable_ones(self):
        status, headers, body = self.raw_get(self.art(), [("Range", "bytes=0-9, %d-%d" % (BIG_SIZE + 1, BIG_SIZE + 5))])
        self.assertEqual(status, 206)
        self.assertEqual(headers["content-range"], "bytes 0-9/%d" % BIG_SIZE)
        self.assertEqual(body, self.big[:10])

    def test_multi_range_with_no_satisfiable_part_is_416(self):
        spec = "bytes=%d-%d, %d-" % (BIG_SIZE, BIG_SIZE + 5, BIG_SIZE + 10)
        status, headers, _ = self.raw_get(self.art(), [("Range", spec)])
        self.assertEqual(status, 416)
        self.assertEqual(headers["content-range"], "bytes */%d" % BIG_SIZE)

    # --- conditional requests --------------------------------------------------------------------

    def test_if_none_match_with_the_etag_gives_304_without_body(self):
        etag = self.get(self.art(), method="HEAD")[1]["etag"]
        for inm in (etag, 'W/' + etag, '"nope", ' + etag, "*"):
            status, headers, body = self.raw_get(self.art(), [("If-None-Match", inm)])
            self.assertEqual(status, 304, inm)
            self.assertEqual(body, b"", inm)
            self.assertEqual(headers["etag"], etag, inm)

    def test_if_none_match_with_another_etag_gives_200(self):
        status, _, body = self.raw_get(self.art(), [("If-None-Match", '"0123456789abcdef"')])
        self.assertEqual(status, 200)
        self.assertEqual(len(body), BIG_SIZE)

    def test_if_range_with_the_etag_honours_the_range(self):
        etag = self.get(self.art(), method="HEAD")[1]["etag"]
        status, headers, body = self.raw_get(self.art(), [("Range", "bytes=10-19"), ("If-Range", etag)])
        self.assertEqual(status, 206)
        self.assertEqual(headers["content-range"], "bytes 10-19/%d" % BIG_SIZE)
        self.assertEqual(body, self.big[10:20])
        status, headers, body = self.raw_get(self.art(), [("Range", "bytes=10-19,30-39"), ("If-Range", etag)])
        self.assertEqual(status, 206)
        self.assert_parts(body, headers["content-type"], [(10, 19), (30, 39)])

    def test_if_range_with_another_validator_gives_the_whole_file(self):
        for validator in ('"0123456789abcdef"', "Wed, 21 Oct 2015 07:28:00 GMT"):
            status, headers, body = self.raw_get(self.art(), [("Range", "bytes=10-19"), ("If-Range", validator)])
            self.assertEqual(status, 200, validator)
            self.assertEqual(sha512(body), sha512(self.big), validator)

    def test_if_range_with_a_weak_etag_gives_the_whole_file(self):
        etag = self.get(self.art(), method="HEAD")[1]["etag"]
        status, _, body = self.raw_get(self.art(), [("Range", "bytes=10-19"), ("If-Range", "W/" + etag)])
        self.assertEqual(status, 200)
        self.assertEqual(len(body), BIG_SIZE)

    # --- what is and is not served ---------------------------------------------------------------

    def test_unregistered_file_in_storage_is_404(self):
        status, _, body = self.get(self.art("stray-unregistered.exe"))
        self.assertEqual(status, 404)
        self.assertNotIn(b"MZ not part", body)

    def test_unknown_app_version_or_file_is_404(self):
        for path in ("/artifacts/nope/1.0.0/%s" % BIG, "/artifacts/%s/9.9.9/%s" % (APP, BIG), self.art("Nope.exe")):
            self.assertEqual(self.get(path)[0], 404, path)

    def test_blockmap_next_to_a_registered_file_is_served_as_is(self):
        status, headers, body = self.raw_get(self.art(BIG + ".blockmap"), [("Accept-Encoding", "gzip, br")])
        self.assertEqual(status, 200)
        self.assertEqual(body, self.blockmap, "the gzip bytes, untouched")
        self.assertNotIn("content-encoding", headers)
        self.assertEqual(headers["cache-control"], IMMUTABLE)

    def test_blockmap_of_an_unregistered_file_is_404(self):
        self.assertEqual(self.get(self.art("stray-unregistered.exe.blockmap"))[0], 404)

    def test_nupkg_is_served_on_the_squirrel_windows_path(self):
        for path in ("/update/%s/win32/x64/%s" % (APP, NUPKG),
                     "/update/%s/win32/x64/latest/%s" % (APP, NUPKG),
                     "/update/%s/win32/x64/latest/c/client-1/%s" % (APP, NUPKG)):
            status, headers, body = self.get(path)
            self.assertEqual(status, 200, path)
            self.assertEqual(body, self.nupkg, path)
            self.assertEqual(headers["cache-control"], IMMUTABLE, path)

    def test_unknown_nupkg_is_404(self):
        self.assertEqual(self.get("/update/%s/win32/x64/acme-9.9.9-full.nupkg" % APP)[0], 404)

    def test_path_traversal_attempts_are_refused_and_never_leak_files(self):
        prefix = "/artifacts/%s/%s/" % (APP, V)
        attempts = [
            prefix + "..%2F..%2Fetc%2Fpasswd",
            prefix + "..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
            prefix + "%2e%2e%2f%2e%2e%2fsecret.txt",
            prefix + "%2E%2E%2F%2E%2E%2F%2E%2E%2Fsecret.txt",
            prefix + "..%2fsecret.txt",
            prefix + "%2e%2e",
            prefix + "%2e",
            prefix + "..",
            prefix + ".",
            prefix + "../../secret.txt",
            prefix + "../../../secret.txt",
            prefix + "..%5c..%5csecret.txt",
            prefix + "%2fetc%2fpasswd",
            "/artifacts/%s/..%%2F..%%2F..%%2Fetc/passwd" % APP,
            "/artifacts/%s/%%2e%%2e/secret.txt" % APP,
            "/artifacts/..%2F..%2Fetc/1.0.0/passwd",
            "/artifacts/%s/%s%%2F%s" % (APP, V, BIG),
            "/artifacts/%s/%s/%s%%00" % (APP, V, BIG),
            "/artifacts/%s/%s/%s%%00.txt" % (APP, V, BIG),
            prefix + "%00",
            prefix + "%",
            prefix + "%zz",
            prefix + "a" * 201,
            prefix + "a" * 4000,
            prefix + "%2e" * 300,
            "/artifacts/" + "a" * 300 + "/" + V + "/" + BIG,
            "/artifacts/%s/%s/%s" % (APP, "1." * 200 + "0", BIG),
            "/artifacts/%s/%s//%s" % (APP, V, BIG),
            "/artifacts/%s/%s/./%s" % (APP, V, BIG),
            "/artifacts/%s/%s/sub/%s" % (APP, V, BIG),
        ]
        for path in attempts:
            status, _, body = self.raw_get(path)
            self.assertIn(status, (400, 404), path)
            self.assertNotIn(SECRET_MARKER, body, path)
            self.assertNotIn(b"root:", body, path)
            self.assertNotIn(self.big[:64], body, path)

    def test_symlinked_artifact_is_not_followed(self):
        status, _, body = self.get(self.art("Acme-Setup-1.1.0.exe", "1.1.0"))
        self.assertNotEqual(status, 200)
        self.assertNotIn(SECRET_MARKER, body)

    def test_symlinked_blockmap_is_not_followed(self):
        status, _, body = self.get(self.art("Acme-Setup-1.1.0.exe.blockmap", "1.1.0"))
        self.assertNotEqual(status, 200)
        self.assertNotIn(b"root:", body)

    def test_symlinked_version_directory_is_not_followed(self):
        status, _, body = self.get(self.art("Acme-Setup-1.2.0.exe", "1.2.0"))
        self.assertNotEqual(status, 200, "storage/acme/1.2.0 is a symlink to a directory outside storage")
        self.assertNotIn(SECRET_MARKER, body)

    def test_fifo_in_storage_is_refused_without_stalling_the_origin(self):
        # Regression: the local store opened a file before checking it was regular, and opening a FIFO with no
        # writer blocks, so one planted FIFO hung the origin's event loop for every client.
        name = "Acme-Setup-1.3.0.exe"
        f = self.env.put_artifact(APP, "1.3.0", name, os.urandom(4096))
        status, body = self.env.register_release(self.key_admin, APP, "1.3.0", [dict(f, platform="windows", arch="x64")])
        self.assertEqual(status, 201, body)
        path = os.path.join(self.env.storage, APP, "1.3.0", name)
        os.unlink(path)
        os.mkfifo(path)
        started = time.monotonic()
        status, _, body = self.env.http("GET", self.art(name, "1.3.0"), timeout=10)
        self.assertNotEqual(status, 200, "a FIFO is not an artifact")
        self.assertLess(time.monotonic() - started, 5, "the answer came at once, not after a stalled open")
        status, _, _ = self.env.http("GET", "/healthz", timeout=5)
        self.assertEqual(status, 200, "the origin still answers other requests")
        status, _, body = self.get(self.art())
        self.assertEqual((status, sha512(body)), (200, sha512(self.big)))

    # --- HTTP/2 ----------------------------------------------------------------------------------

    def test_whole_artifact_over_h2c_is_byte_exact(self):
        version, status, headers, body = curl_fetch(self.origin.url + self.art(), "--http2-prior-knowledge")
        self.assertEqual(version, "2")
        self.assertEqual(status, 200)
        self.assertEqual(headers["cache-control"], IMMUTABLE)
        self.assertEqual(sha512(body), sha512(self.big))

    def test_multi_range_over_h2c_gives_multipart_in_order(self):
        spec = "bytes=5-5, 70000-80000, %d-" % (BIG_SIZE - 3)
        version, status, headers, body = curl_fetch(self.origin.url + self.art(), "--http2-prior-knowledge",
                                                    "-H", "Range: " + spec)
        self.assertEqual(version, "2")
        self.assertEqual(status, 206)
        self.assertEqual(int(headers["content-length"]), len(body))
        self.assert_parts(body, headers["content-type"], [(5, 5), (70000, 80000), (BIG_SIZE - 3, BIG_SIZE - 1)])

    def test_whole_artifact_and_multi_range_over_h2_tls_are_byte_exact(self):
        version, status, headers, body = curl_fetch(self.origin.https_url + self.art(), "--http2")
        self.assertEqual(version, "2")
        self.assertEqual(status, 200)
        self.assertEqual(sha512(body), sha512(self.big))
        wanted = [(i * 30000, i * 30000 + 999) for i in range(100)]
        spec = "bytes=" + ",".join("%d-%d" % r for r in wanted)
        version, status, headers, body = curl_fetch(self.origin.https_url + self.art(), "--http2", "-H", "Range: " + spec)
        self.assertEqual(version, "2")
        self.assertEqual(status, 206)
        self.assertEqual(int(headers["content-length"]), len(body))
        self.assert_parts(body, headers["content-type"], wanted)

    def test_nupkg_over_h2c_is_byte_exact(self):
        version, status, _, body = curl_fetch(self.origin.url + "/update/%s/win32/x64/%s" % (APP, NUPKG),
                                              "--http2-prior-knowledge")
        self.assertEqual((version, status), ("2", 200))
        self.assertEqual(body, self.nupkg)


if __name__ == "__main__":
    unittest.main()
