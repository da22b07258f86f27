#!/usr/bin/env python3
"""Story: a stock electron-updater client reads Updraft's latest*.yml and downloads what it lists.

tests/support/electron-check.js runs electron-updater's own parser and URL resolution and
builder-util-runtime's HTTP client and sha512 check against the real origin, for the Windows, mac
and Linux channel files, non-personalised (with stagingPercentage during a partial rollout) and
personalised by the x-user-staging-id header stock clients send. PROTOCOLS.md "Update feeds".
"""
import json
import os
import shutil
import subprocess
import sys
import unittest
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TESTS_DIR = os.path.join(harness.SOURCE_DIR, "tests")
CHECKER = os.path.join(TESTS_DIR, "support", "electron-check.js")
FEEDS = ("latest.yml", "latest-mac.yml", "latest-linux.yml", "latest-linux-arm64.yml")
PINNED = "3f2d1c7e-8a4b-4c2d-9e1f-0123456789ab"


def ensure_node_modules():
    node = shutil.which("node")
    if node is None:
        raise AssertionError("node is not installed: the electron-updater interop test needs it")
    if not os.path.isdir(os.path.join(TESTS_DIR, "node_modules", "electron-updater")):
        npm = shutil.which("npm")
        if npm is None:
            raise AssertionError("tests/node_modules is missing and npm is not installed")
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TESTS_DIR, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise AssertionError("npm ci failed (%d):\n%s\n%s" % (r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    if not os.path.isfile(CHECKER):
        raise AssertionError("%s is missing" % CHECKER)
    return node


def release_files(v):
    return [("Acme-Setup-%s.exe" % v, "windows", "x64"), ("Acme-%s-mac.zip" % v, "mac", "x64"),
            ("Acme-%s-arm64-mac.zip" % v, "mac", "arm64"), ("Acme-%s.dmg" % v, "mac", "x64"),
            ("Acme-%s.AppImage" % v, "linux", "x64"), ("acme_%s_amd64.deb" % v, "linux", "x64"),
            ("Acme-%s-arm64.AppImage" % v, "linux", "arm64")]


class ElectronInteropTest(harness.StackTest):
    env_name = "test_electron_interop"
    programs = ("origin", "control")
    keys = (("key", "admin", "test"),)

    @classmethod
    def prepare_stack(cls):
        cls.node = ensure_node_modules()

    @classmethod
    def set_up_stack(cls):
        cls.register("interop", [("1.0.0", None), ("1.1.0", 30)])
        status, body = cls.env.api("PUT", "/v1/apps/interop/channels/latest/rollout", {"pinned": [PINNED]}, key=cls.key)
        assert status == 200, body
        cls.register("stable", [("2.0.0", None), ("2.1.0-beta.1", None)])

    @classmethod
    def register(cls, app, versions, env=None, key=None):
        env = env or cls.env
        key = key or cls.key
        status, body = env.api("POST", "/v1/apps", {"id": app, "name": app}, key=key)
        assert status == 201, body
        for version, rollout in versions:
            files = []
            for name, platform, arch in release_files(version):
                files.append(dict(env.put_artifact(app, version, name, os.urandom(8192 + len(name))), platform=platform, arch=arch))
                if name.endswith((".exe", "-mac.zip", ".AppImage")):
                    env.put_artifact(app, version, name + ".blockmap", os.urandom(300))
            status, body = env.register_release(key, app, version, files, rollout=rollout, notes="Notes for %s" % version)
            assert status == 201, body

    def check(self, feed_url, client_id=None):
        """Runs electron-check.js: (exit code, summary)."""
        args = [self.node, CHECKER, feed_url] + ([client_id] if client_id else [])
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        try:
            summary = json.loads(r.stdout)
        except ValueError:
            summary = {"stdout": r.stdout}
        summary["stderr"] = r.stderr
        return r.returncode, summary

    def check_all(self, cases):
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda c: (c, self.check(*c)), cases))

    def test_electron_updater_accepts_the_non_personalised_feed_of_a_partial_rollout_with_staging_percentage(self):
        for (url, _), (code, summary) in self.check_all([("%s/update/interop/%s" % (self.origin.url, f), None) for f in FEEDS]):
            self.assertEqual(code, 0, (url, summary))
            self.assertEqual((summary["version"], summary["stagingPercentage"]), ("1.1.0", 30), url)

    def test_electron_updater_accepts_the_personalised_feed_of_a_pinned_client(self):
        for (url, _), (code, summary) in self.check_all([("%s/update/interop/%s" % (self.origin.url, f), PINNED) for f in FEEDS]):
            self.assertEqual(code, 0, (url, summary))
            self.assertEqual((summary["version"], summary["stagingPercentage"]), ("1.1.0", None), url)

    def test_electron_updater_accepts_the_personalised_feed_of_random_installs(self):
        ids = [str(uuid.uuid4()) for _ in range(3)]
        cases = [("%s/update/interop/%s" % (self.origin.url, f), cid) for f in FEEDS for cid in ids]
        for (url, cid), (code, summary) in self.check_all(cases):
            self.assertEqual(code, 0, (url, cid, summary))
            self.assertIn(summary["version"], ("1.0.0", "1.1.0"), (url, cid))
            self.assertIsNone(summary["stagingPercentage"], (url, cid))

    def test_electron_updater_accepts_a_fully_released_prerelease_version(self):
        for (url, _), (code, summary) in self.check_all([("%s/update/stable/%s" % (self.origin.url, f), None) for f in FEEDS]):
            self.assertEqual(code, 0, (url, summary))
            self.assertEqual((summary["version"], summary["stagingPercentage"]), ("2.1.0-beta.1", None), url)

    def test_electron_check_fails_on_a_missing_channel_file(self):
        code, summary = self.check("%s/update/interop/beta.yml" % self.origin.url)
        self.assertEqual(code, 1, summary)


if __name__ == "__main__":
    unittest.main()
