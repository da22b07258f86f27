"""User story: Updraft's SigV4 signer (storage/sigv4.c) is accepted by a real S3 peer, and what it
must not authorise is refused.

The peer is s3rver 5 (tests/support/s3rver.js), which verifies header and presigned signatures
with our own key pair; the signer is driven through sigv4-tool (tests/support/sigv4_tool.c, built
beside the servers). Header-signed requests create a bucket, write objects whose keys need
escaping and read them back (also a signed Range and a signed listing query); a presigned URL reads
one; a tampered signature, a wrong secret and an expired URL get 403. Both regions Updraft signs
for, R2's "auto" and AWS's eu-west-1, are used (s3rver accepts any region, but the scope differs).
"""
import hashlib
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ACCESS_KEY = harness.S3_ACCESS_KEY
SECRET_KEY = harness.S3_SECRET_KEY
BUCKET = harness.S3_BUCKET
REGIONS = ("auto", "eu-west-1")


def wire_key(key):
    """An object key as it goes in the path: every byte outside the unreserved set escaped, '/' kept."""
    return urllib.parse.quote(key, safe="/~")


class SigV4AgainstS3rver(harness.StackTest):
    env_name = "sigv4_s3rver"

    @classmethod
    def set_up_stack(cls):
        cls.s3 = cls.env.start_s3rver("s3rver", bucket=None)  # the test creates the bucket itself
        status, _, body = cls.request("PUT", "/" + BUCKET)
        if status != 200:
            raise AssertionError("creating the bucket with a header-signed PUT: %d %r" % (status, body[:300]))

    # --- helpers ------------------------------------------------------------------------------

    @classmethod
    def tool(cls, *args):
        r = cls.env.run("sigv4-tool", *args)
        if r.returncode != 0:
            raise AssertionError("sigv4-tool %s: status %d: %s" % (" ".join(args[:1]), r.returncode, r.stderr))
        return r.stdout

    @classmethod
    def sign(cls, method, target, region="auto", secret=SECRET_KEY, payload_hash=None, headers=None, when=None):
        """Header form: the headers sigv4-tool says to add (X-Amz-Date, x-amz-content-sha256, Authorization)."""
        args = ["sign", "--method", method, "--url", cls.s3.url + target, "--region", region, "--service", "s3",
                "--access-key", ACCESS_KEY, "--secret-key", secret]
        if payload_hash:
            args += ["--payload-hash", payload_hash]
        for name, value in (headers or {}).items():
            args += ["--header", "%s: %s" % (name, value)]
        if when is not None:
            args += ["--time", str(int(when))]
        out = {}
        for line in cls.tool(*args).splitlines():
            name, _, value = line.partition(": ")
            out[name] = value
        return out

    @classmethod
    def presign(cls, method, target, region="auto", secret=SECRET_KEY, expires=60, when=None):
        """Query form: path?query of the presigned URL."""
        args = ["presign", "--method", method, "--url", cls.s3.url + target, "--region", region, "--service", "s3",
                "--access-key", ACCESS_KEY, "--secret-key", secret, "--expires", str(expires)]
        if when is not None:
            args += ["--time", str(int(when))]
        url = cls.tool(*args).strip()
        assert url.startswith(cls.s3.url + "/"), url
        return url[len(cls.s3.url):]

    @classmethod
    def request(cls, method, target, body=None, region="auto", secret=SECRET_KEY, headers=None):
        """One header-signed request; the payload hash is the body's SHA-256."""
        payload_hash = hashlib.sha256(body or b"").hexdigest()
        signed = dict(headers or {})
        signed.update(cls.sign(method, target, region=region, secret=secret, payload_hash=payload_hash, headers=headers))
        return cls.env.http(method, target, headers=signed, body=body, base=cls.s3.url)

    def put_object(self, key, data, region="auto"):
        status, _, body = self.request("PUT", "/%s/%s" % (BUCKET, wire_key(key)), body=data, region=region)
        self.assertEqual(status, 200, body[:300])

    def assertRefused(self, response, code):
        status, _, body = response
        self.assertEqual(status, 403, body[:300])
        self.assertIn(("<Code>%s</Code>" % code).encode(), body)

    # --- the story ----------------------------------------------------------------------------

    def test_header_signed_put_then_get_returns_the_same_bytes(self):
        keys = ("plain.bin", "releases/1.2.3/Updraft Setup 1.2.3+build$1.exe", "ключ/файл~(1).zip")
        for region in REGIONS:
            for key in keys:
                with self.subTest(region=region, key=key):
                    data = os.urandom(1000) + key.encode()
                    self.put_object(key, data, region=region)
                    status, _, body = self.request("GET", "/%s/%s" % (BUCKET, wire_key(key)), region=region)
                    self.assertEqual(status, 200, body[:300])
                    self.assertEqual(body, data)

    def test_signed_range_header_and_listing_query_are_accepted(self):
        data = bytes(range(256)) * 4
        self.put_object("ranged/blob.bin", data)
        status, _, body = self.request("GET", "/%s/ranged/blob.bin" % BUCKET, headers={"Range": "bytes=10-19"})
        self.assertEqual(status, 206, body[:300])
        self.assertEqual(body, data[10:20])
        status, _, body = self.request("GET", "/%s?prefix=ranged%%2F&max-keys=5" % BUCKET)
        self.assertEqual(status, 200, body[:300])
        self.assertIn(b"<Key>ranged/blob.bin</Key>", body)

    def test_presigned_get_returns_the_object(self):
        data = b"presigned bytes\n" * 64
        self.put_object("presigned/app 1.0.dmg", data)
        for region in REGIONS:
            with self.subTest(region=region):
                target = self.presign("GET", "/%s/%s" % (BUCKET, wire_key("presigned/app 1.0.dmg")), region=region)
                status, _, body = self.env.http("GET", target, base=self.s3.url)
                self.assertEqual(status, 200, body[:300])
                self.assertEqual(body, data)

    def test_tampered_presigned_signature_is_refused(self):
        self.put_object("tamper.txt", b"x")
        target = self.presign("GET", "/%s/tamper.txt" % BUCKET)
        last = target[-1]
        tampered = target[:-1] + ("0" if last != "0" else "1")
        self.assertRefused(self.env.http("GET", tampered, base=self.s3.url), "SignatureDoesNotMatch")
        # and the object is still served to the untampered URL
        self.assertEqual(self.env.http("GET", target, base=self.s3.url)[0], 200)

    def test_wrong_secret_is_refused_in_both_forms(self):
        self.put_object("secret.txt", b"x")
        self.assertRefused(self.request("GET", "/%s/secret.txt" % BUCKET, secret=SECRET_KEY + "x"), "SignatureDoesNotMatch")
        target = self.presign("GET", "/%s/secret.txt" % BUCKET, secret="not-the-secret")
        self.assertRefused(self.env.http("GET", target, base=self.s3.url), "SignatureDoesNotMatch")

    def test_expired_presigned_url_is_refused(self):
        self.put_object("expired.txt", b"x")
        # signed 2 minutes ago for 60 s: correctly signed, but expired (no waiting needed)
        target = self.presign("GET", "/%s/expired.txt" % BUCKET, expires=60, when=time.time() - 120)
        status, _, body = self.env.http("GET", target, base=self.s3.url)
        self.assertEqual(status, 403, body[:300])
        self.assertIn(b"Request has expired", body)
        # the same signature time with a lifetime that has not run out is served
        target = self.presign("GET", "/%s/expired.txt" % BUCKET, expires=3600, when=time.time() - 120)
        self.assertEqual(self.env.http("GET", target, base=self.s3.url)[0], 200)


if __name__ == "__main__":
    unittest.main()
