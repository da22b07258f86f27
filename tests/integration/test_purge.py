#!/usr/bin/env python3
"""Story: only the control plane can make an origin catch up, and it cannot be tricked twice.

POST /_updraft/purge carries HMAC-SHA256(secret, TIMESTAMP "\\n" NONCE "\\n" BODY); the origin
answers 200 with its generation once it serves the one asked, 504 when it cannot catch up, and
refuses a missing or wrong signature, a stale timestamp (401) and a replayed nonce (409). The
origin here shares the control plane's LMDB, so a committed change is already there. Edge cache
headers (Surrogate-Key / Cache-Tag, stale-if-error, private for personalised answers) are checked
alongside. Cross-host convergence through object storage is in test_propagation.py.
"""
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SECRET = "purge-secret-for-tests"


class Purge(harness.StackTest):
    env_name = "purge"

    @classmethod
    def set_up_stack(cls):
        env = cls.env
        conf = env.write("origin.yaml", 'listen: ["127.0.0.1:0"]\npurge:\n  secret: "%s"\n' % SECRET)
        cls.origin = env.start_origin("--config", conf)
        cls.plain = env.start_origin()  # no secret: no endpoint
        env.start_control()
        key = env.create_key()
        cls.create_app("acme", "Acme", key=key)
        cls.release_artifacts("acme", "1.0.0", [("Acme-Setup-1.0.0.exe", b"x" * 1000, "windows", "x64")], key=key)

    def purge(self, body, ts=None, nonce=None, secret=SECRET, origin=None):
        ts = str(int(time.time()) if ts is None else ts)
        nonce = nonce or secrets.token_hex(16)
        raw = json.dumps(body).encode()
        sig = hmac.new(secret.encode(), ts.encode() + b"\n" + nonce.encode() + b"\n" + raw, hashlib.sha256).hexdigest()
        st, h, data = self.env.http("POST", "/_updraft/purge", body=raw, base=origin or self.origin, headers={
            "X-Updraft-Timestamp": ts, "X-Updraft-Nonce": nonce, "X-Updraft-Signature": sig,
            "Content-Type": "application/json"})
        return st, data, nonce

    def test_a_signed_purge_answers_the_generation_served(self):
        st, data, _ = self.purge({"app": "acme", "generation": 1, "tags": ["app:acme", "chan:acme/latest"]})
        self.assertEqual(st, 200, data)
        self.assertEqual(json.loads(data), {"app": "acme", "generation": 1})

    def test_a_replayed_nonce_is_refused(self):
        st, _, nonce = self.purge({"app": "acme", "generation": 1, "tags": []})
        self.assertEqual(st, 200)
        st, data, _ = self.purge({"app": "acme", "generation": 1, "tags": []}, nonce=nonce)
        self.assertEqual(st, 409, data)

    def test_stale_timestamps_and_wrong_signatures_are_refused(self):
        self.assertEqual(self.purge({"app": "acme", "generation": 1}, ts=int(time.time()) - 120)[0], 401)
        self.assertEqual(self.purge({"app": "acme", "generation": 1}, ts=int(time.time()) + 120)[0], 401)
        self.assertEqual(self.purge({"app": "acme", "generation": 1}, secret="not-the-secret")[0], 401)
        st, _, data = self.env.http("POST", "/_updraft/purge", body=b'{"app":"acme","generation":1}', base=self.origin)
        self.assertEqual(st, 401, data)
        with open(self.origin.log) as f:
            self.assertIn("purge refused", f.read())

    def test_an_origin_that_cannot_catch_up_says_so(self):
        # no object storage to catch up from: the generation asked is not here
        st, data, _ = self.purge({"app": "acme", "generation": 99})
        self.assertEqual(st, 504)
        self.assertEqual(json.loads(data)["generation"], 1)

    def test_malformed_bodies_and_methods(self):
        self.assertEqual(self.purge({"app": "Not An App", "generation": 1})[0], 400)
        self.assertEqual(self.purge({"app": "acme", "generation": -1})[0], 400)
        st, h, _ = self.env.http("GET", "/_updraft/purge", base=self.origin)
        self.assertEqual((st, h.get("allow")), (405, "POST"))
        # public routes still take no body
        self.assertEqual(self.env.http("GET", "/update/acme/latest.yml", body=b"xx", base=self.origin)[0], 400)

    def test_without_a_secret_there_is_no_endpoint(self):
        self.assertEqual(self.purge({"app": "acme", "generation": 1}, origin=self.plain)[0], 404)

    def test_edge_cache_headers(self):
        st, h, _ = self.env.http("GET", "/download/acme/windows", base=self.origin)
        self.assertEqual(st, 302)
        self.assertEqual(h["cache-control"], "public, max-age=60, stale-if-error=86400")
        self.assertEqual(h["surrogate-key"], "app:acme chan:acme/latest rel:acme/1.0.0")
        self.assertEqual(h["cache-tag"], "app:acme,chan:acme/latest,rel:acme/1.0.0")
        st, h, _ = self.env.http("GET", "/artifacts/acme/1.0.0/Acme-Setup-1.0.0.exe", base=self.origin)
        self.assertEqual((st, h["cache-control"]), (200, "public, max-age=31536000, immutable"))
        self.assertEqual(h["surrogate-key"], "app:acme rel:acme/1.0.0")
        m = self.env.http("GET", "/metrics", base=self.origin)[2].decode()
        self.assertGreaterEqual(harness.metric_sum(m, "updraft_purges_total"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
