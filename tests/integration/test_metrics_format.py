#!/usr/bin/env python3
"""Story: an operator scrapes /metrics from both servers with Prometheus, and every family parses.

Prometheus' own checker (`promtool check metrics`, Debian package prometheus) reads each server's
/metrics after real traffic has filled the families in: the control plane after a registration
mirrored to two signature-checking s3rvers (R2 and S3), the origin in object-storage mode after
update checks, a cache miss and a hit from R2, a 404 and a 400. A format error or a lint problem
(a missing HELP or TYPE, a counter without _total, a bad label) fails the test with promtool's words.
"""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP = "acme"


def promtool_check(text):
    """(exit status, what promtool said) for a /metrics body."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


class MetricsFormat(harness.StackTest):
    env_name = "test_metrics_format"
    s3rvers = ("r2", "s3")
    programs = ("control",)
    control_public_url = "http://cdn.example"
    keys = (("key", "admin", "test"),)
    apps = ((APP, "Acme"),)

    @classmethod
    def control_args(cls):
        return ("--config", cls.env.object_store_config(cls.r2, cls.s3))

    @classmethod
    def set_up_stack(cls):
        if shutil.which("promtool") is None:
            raise AssertionError("promtool is missing: scripts/install-deps test installs Debian's prometheus")
        cls.exe = os.urandom(3 * 1024 * 1024 + 17)
        f = cls.env.put_artifact(APP, "1.0.0", "Acme-Setup-1.0.0.exe", cls.exe)
        status, body = cls.env.register_release(cls.key, APP, "1.0.0", [dict(f, platform="windows", arch="x64")])
        assert status == 201, (status, body)
        cls.origin = cls.env.start_origin("--config", cls.env.object_store_config(cls.r2, cls.s3, name="origin"))

    def scrape(self, base):
        status, hdrs, body = self.env.http("GET", "/metrics", base=base)
        self.assertEqual(status, 200)
        self.assertTrue(hdrs.get("content-type", "").startswith("text/plain; version=0.0.4"), hdrs)
        return body

    def test_origin_metrics_pass_promtool_after_traffic(self):
        for cid in ("client-1", "client-2", "client-3"):
            status, _, _ = self.env.http("GET", "/update/%s/latest.yml" % APP, {"X-Updraft-Client": cid})
            self.assertEqual(status, 200)
        self.assertEqual(self.env.http("GET", "/update/%s/latest.yml" % APP)[0], 200)
        for _ in range(2):  # a cache miss filled from R2, then a hit
            status, _, body = self.env.http("GET", "/artifacts/%s/1.0.0/Acme-Setup-1.0.0.exe" % APP)
            self.assertEqual((status, body == self.exe), (200, True))
        self.assertEqual(self.env.http("GET", "/update/nosuchapp/latest.yml")[0], 404)
        self.assertEqual(self.env.http("GET", "/update/%s/latest.yml" % APP, {"X-Updraft-Client": "bad!id"})[0], 400)
        body = self.scrape(None)
        self.assertIn(b"updraft_cache_", body, "the object-storage families are there to be checked")
        code, said = promtool_check(body)
        self.assertEqual(code, 0, said)

    def test_control_metrics_pass_promtool_after_a_mirrored_registration(self):
        self.assertEqual(self.env.api("GET", "/v1/apps/%s/channels/latest" % APP, key=self.key)[0], 200)
        self.assertEqual(self.env.api("GET", "/v1/apps/%s/channels/latest" % APP, key="upd_bad")[0], 401)
        body = self.scrape(self.control.url)
        code, said = promtool_check(body)
        self.assertEqual(code, 0, said)

    def test_promtool_refuses_a_broken_exposition(self):
        # the checker this suite relies on does fail: a sample of a family declared as a counter without _total
        code, said = promtool_check(b"# HELP x_requests requests\n# TYPE x_requests counter\nx_requests 1\n")
        self.assertNotEqual(code, 0, said)
        code, _ = promtool_check(b"x_bad{label=unterminated 1\n")
        self.assertNotEqual(code, 0)


if __name__ == "__main__":
    unittest.main()
