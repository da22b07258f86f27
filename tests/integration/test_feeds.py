#!/usr/bin/env python3
"""Story: desktop apps poll the origin for updates in their own feed format.

electron-updater latest*.yml, Squirrel.Mac JSON, Squirrel.Windows RELEASES and Tauri JSON, for
fully released versions and during a partial rollout (personalised answers vs the non-personalised
ones that carry the client's native staging hint), conditional requests, cache headers, errors,
smart download links, /healthz and /metrics. PROTOCOLS.md "Update feeds", "Artifacts and downloads".
"""
import datetime
import hashlib
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SIG = {
    "win": "dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZSBmcm9tIHRhdXJpIHNlY3JldCBrZXkKUlVSWGluZG93cw==",
    "linux": "dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZSBmcm9tIHRhdXJpIHNlY3JldCBrZXkKUlVSbGludXg=",
    "linux-arm64": "dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZSBmcm9tIHRhdXJpIHNlY3JldCBrZXkKUlVSYXJtNjQ=",
    "mac": "dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZSBmcm9tIHRhdXJpIHNlY3JldCBrZXkKUlVSbWFj",
}
NOTES = "Faster sync\nFixes: \"quotes\", colons: yes, #hash"
PINNED = "pinned-client"


def release_files(v, delta=True):
    """(name, platform, arch, extra) of a full desktop release."""
    files = [
        ("Acme-Setup-%s.exe" % v, "windows", "x64", {"signature": SIG["win"]}),
        ("Acme-%s-mac.zip" % v, "mac", "x64", {}),
        ("Acme-%s-arm64-mac.zip" % v, "mac", "arm64", {}),
        ("Acme-%s.dmg" % v, "mac", "x64", {}),
        ("Acme-%s.AppImage" % v, "linux", "x64", {"signature": SIG["linux"]}),
        ("Acme-%s-arm64.AppImage" % v, "linux", "arm64", {"signature": SIG["linux-arm64"]}),
        ("acme_%s_amd64.deb" % v, "linux", "x64", {}),
        ("acme-%s-full.nupkg" % v, "windows", "x64", {}),
        ("Acme_%s_universal.app.tar.gz" % v, "mac", "universal", {"signature": SIG["mac"]}),
    ]
    if delta:
        files.append(("acme-%s-delta.nupkg" % v, "windows", "x64", {}))
    return files


class FeedsTest(harness.StackTest):
    env_name = "test_feeds"
    programs = ("origin", "control")
    keys = (("key", "admin", "test"),)
    apps = tuple((app, app.title()) for app in ("acme", "stage", "floor", "etag", "bare", "first"))

    @classmethod
    def set_up_stack(cls):
        env = cls.env
        cls.bytes = {}    # (app, version, name) -> bytes
        cls.released = {}  # (app, version) -> release JSON as registered
        # acme: two fully released versions; the exe and the mac zip of 1.1.0 have blockmaps
        cls.register("acme", "1.0.0", release_files("1.0.0", delta=False))
        cls.blockmaps = {}
        for name in ("Acme-Setup-1.1.0.exe", "Acme-1.1.0-mac.zip"):
            bm = os.urandom(517)
            env.put_artifact("acme", "1.1.0", name + ".blockmap", bm)
            cls.blockmaps[name] = len(bm)
        cls.register("acme", "1.1.0", release_files("1.1.0"), notes=NOTES)
        # stage: 1.0.0 released, 1.1.0 in a 10% rollout with one pinned client
        cls.register("stage", "1.0.0", release_files("1.0.0", delta=False))
        cls.register("stage", "1.1.0", release_files("1.1.0"), rollout=10)
        status, body = env.api("PUT", "/v1/apps/stage/channels/latest/rollout", {"pinned": [PINNED]}, key=cls.key)
        assert status == 200, (status, body)
        cls.out_id, cls.in_id = cls.find_ids("stage")
        # floor: a rollout at 25.5%
        cls.register("floor", "1.0.0", release_files("1.0.0", delta=False))
        cls.register("floor", "1.1.0", release_files("1.1.0"), rollout=25.5)
        cls.register("etag", "1.0.0", release_files("1.0.0", delta=False))
        # first: the channel's very first release is a 10% rollout (nothing fully released yet)
        cls.register("first", "1.0.0", release_files("1.0.0"), rollout=10)
        # bare: only a Windows exe (no installer for mac or linux, no nupkg, no signature)
        cls.register("bare", "1.0.0", [("Bare-Setup-1.0.0.exe", "windows", "x64", {})])

    @classmethod
    def register(cls, app, version, files, rollout=None, notes=None):
        specs = []
        for name, platform, arch, extra in files:
            data = os.urandom(2048 + len(cls.bytes) * 37)
            cls.bytes[(app, version, name)] = data
            specs.append(dict(cls.env.put_artifact(app, version, name, data), platform=platform, arch=arch, **extra))
        status, body = cls.env.register_release(cls.key, app, version, specs, rollout=rollout, notes=notes)
        assert status == 201, (app, version, status, body)
        cls.released[(app, version)] = body["release"]

    @classmethod
    def find_ids(cls, app):
        """A client id outside the rollout and one inside it (not pinned), found by asking."""
        out_id = in_id = None
        for i in range(2000):
            cid = "probe-%d" % i
            status, _, body = cls.env.http("GET", "/update/%s/darwin/x64/0.9.0?client_id=%s" % (app, cid))
            assert status == 200, (status, body)
            name = json.loads(body)["name"]
            if name == "1.0.0" and out_id is None:
                out_id = cid
            if name == "1.1.0" and in_id is None:
                in_id = cid
            if out_id and in_id:
                return out_id, in_id
        raise AssertionError("no client id inside and outside a 10% rollout among 2000")

    # --- helpers ---------------------------------------------------------------------------------

    def get(self, path, headers=None, expect=200):
        status, hdrs, body = self.env.http("GET", path, headers=headers)
        self.assertEqual(status, expect, "GET %s %r: %r" % (path, headers, body[:300]))
        return hdrs, body

    def yml(self, path, headers=None):
        hdrs, body = self.get(path, headers)
        self.assertTrue(hdrs.get("content-type", "").startswith("text/yaml"), hdrs.get("content-type"))
        return harness.parse_yaml(body.decode()), hdrs

    def url(self, app, version, name):
        return "%s/artifacts/%s/%s/%s" % (self.origin.url, app, version, name)

    def expected_entry(self, app, version, name, blockmap=None):
        data = self.bytes[(app, version, name)]
        e = {"url": self.url(app, version, name), "sha512": harness.sha512_b64(data), "size": len(data)}
        if blockmap is not None:
            e["blockMapSize"] = blockmap
        return e

    def check_release_date(self, doc, app, version):
        self.assertRegex(doc["releaseDate"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        pub = self.released[(app, version)]["pub_date"]
        self.assertEqual(datetime.datetime.fromisoformat(doc["releaseDate"]).replace(microsecond=0),
                         datetime.datetime.fromisoformat(pub).replace(microsecond=0))

    def sqmac(self, app, arch, current, query="", headers=None, expect=200):
        hdrs, body = self.get("/update/%s/darwin/%s/%s%s" % (app, arch, current, query),
                              dict({"Accept": "application/json"}, **(headers or {})), expect)
        return (json.loads(body) if expect == 200 else body), hdrs

    # --- electron-updater --------------------------------------------------------------------------

    def test_windows_yml_lists_the_exe_with_url_sha512_size_blockmapsize_path_and_release_date(self):
        doc, _ = self.yml("/update/acme/latest.yml")
        exe = "Acme-Setup-1.1.0.exe"
        self.assertEqual(doc["version"], "1.1.0")
        self.assertEqual(doc["files"], [self.expected_entry("acme", "1.1.0", exe, self.blockmaps[exe])])
        self.assertEqual(doc["path"], self.url("acme", "1.1.0", exe))
        self.assertEqual(doc["sha512"], harness.sha512_b64(self.bytes[("acme", "1.1.0", exe)]))
        self.check_release_date(doc, "acme", "1.1.0")
        self.assertNotIn("stagingPercentage", doc)

    def test_mac_yml_lists_the_zips_first_then_the_dmg(self):
        doc, _ = self.yml("/update/acme/latest-mac.yml")
        self.assertEqual(doc["version"], "1.1.0")
        zip_x64 = "Acme-1.1.0-mac.zip"
        self.assertEqual(doc["files"], [
            self.expected_entry("acme", "1.1.0", zip_x64, self.blockmaps[zip_x64]),
            self.expected_entry("acme", "1.1.0", "Acme-1.1.0-arm64-mac.zip"),
            self.expected_entry("acme", "1.1.0", "Acme-1.1.0.dmg"),
        ])
        self.assertEqual(doc["path"], self.url("acme", "1.1.0", zip_x64))
        self.check_release_date(doc, "acme", "1.1.0")

    def test_linux_yml_lists_the_x64_appimage_and_deb(self):
        doc, _ = self.yml("/update/acme/latest-linux.yml")
        self.assertEqual(doc["version"], "1.1.0")
        self.assertEqual(doc["files"], [self.expected_entry("acme", "1.1.0", "Acme-1.1.0.AppImage"),
                                        self.expected_entry("acme", "1.1.0", "acme_1.1.0_amd64.deb")])
        self.assertEqual(doc["path"], self.url("acme", "1.1.0", "Acme-1.1.0.AppImage"))

    def test_linux_arm64_yml_lists_only_the_arm64_appimage(self):
        doc, _ = self.yml("/update/acme/latest-linux-arm64.yml")
        self.assertEqual(doc["files"], [self.expected_entry("acme", "1.1.0", "Acme-1.1.0-arm64.AppImage")])

    def test_release_notes_appear_in_the_yml_exactly(self):
        doc, _ = self.yml("/update/acme/latest.yml")
        self.assertEqual(doc["releaseNotes"], NOTES)
        older, _ = self.yml("/update/etag/latest.yml")
        self.assertNotIn("releaseNotes", older)

    def test_every_yml_url_serves_bytes_matching_sha512_and_size(self):
        for feed in ("latest.yml", "latest-mac.yml", "latest-linux.yml", "latest-linux-arm64.yml"):
            doc, _ = self.yml("/update/acme/" + feed)
            for f in doc["files"]:
                self.assertTrue(f["url"].startswith(self.origin.url + "/"), f["url"])
                _, body = self.get(f["url"][len(self.origin.url):])
                self.assertEqual((len(body), harness.sha512_b64(body)), (f["size"], f["sha512"]), f["url"])

    def test_electron_updaters_nocache_query_is_ignored(self):
        _, plain = self.get("/update/acme/latest-mac.yml")
        _, nocache = self.get("/update/acme/latest-mac.yml?noCache=1h2j3k4")
        self.assertEqual(nocache, plain)

    def test_a_feed_without_files_for_a_platform_is_404(self):
        self.get("/update/bare/latest-mac.yml", expect=404)
        self.get("/update/bare/latest-linux.yml", expect=404)
        doc, _ = self.yml("/update/bare/latest.yml")
        self.assertEqual(doc["version"], "1.0.0")

    # --- Squirrel.Mac ------------------------------------------------------------------------------

    def test_squirrel_mac_offers_the_newer_zip_of_its_arch_as_json(self):
        for arch, name in (("x64", "Acme-1.1.0-mac.zip"), ("arm64", "Acme-1.1.0-arm64-mac.zip")):
            doc, hdrs = self.sqmac("acme", arch, "1.0.0")
            self.assertEqual(hdrs.get("content-type", "").split(";")[0], "application/json")
            self.assertEqual(doc["url"], self.url("acme", "1.1.0", name))
            self.assertEqual(doc["name"], "1.1.0")
            self.assertEqual(doc["notes"], NOTES)
            self.assertEqual(doc["pub_date"], self.released[("acme", "1.1.0")]["pub_date"])

    def test_squirrel_mac_answers_204_with_no_body_when_current_is_the_newest_or_newer(self):
        for current in ("1.1.0", "1.2.0", "2.0.0-beta.1"):
            body, _ = self.sqmac("acme", "x64", current, expect=204)
            self.assertEqual(body, b"", current)

    def test_squirrel_mac_never_answers_200_with_the_current_version(self):
        body, _ = self.sqmac("stage", "x64", "1.1.0", query="?client_id=" + PINNED, expect=204)
        self.assertEqual(body, b"")
        body, _ = self.sqmac("stage", "x64", "1.0.0", query="?client_id=" + self.out_id, expect=204)
        self.assertEqual(body, b"")
        body, _ = self.sqmac("stage", "x64", "1.0.0", expect=204)  # non-personalised: newest fully released

    def test_squirrel_mac_prerelease_current_is_offered_the_release(self):
        doc, _ = self.sqmac("acme", "x64", "1.1.0-beta.3")
        self.assertEqual(doc["name"], "1.1.0")

    # --- Squirrel.Windows -------------------------------------------------------------------------

    def test_squirrel_windows_releases_lists_delta_and_full_with_their_sha1_and_size(self):
        hdrs, body = self.get("/update/acme/win32/x64/RELEASES?id=Acme&localVersion=1.0.0&arch=amd64")
        self.assertEqual(hdrs.get("content-type"), "text/plain; charset=utf-8")
        lines = harness.parse_releases(body.decode())
        self.assertEqual(sorted(l[1] for l in lines), ["acme-1.1.0-delta.nupkg", "acme-1.1.0-full.nupkg"])
        for sha1, name, size, suffix in lines:
            data = self.bytes[("acme", "1.1.0", name)]
            self.assertEqual((sha1.lower(), size, suffix), (hashlib.sha1(data).hexdigest(), len(data), None), name)

    def test_squirrel_windows_nupkg_is_served_under_every_feed_base(self):
        data = self.bytes[("acme", "1.1.0", "acme-1.1.0-full.nupkg")]
        for base in ("/update/acme/win32/x64/", "/update/acme/win32/x64/latest/",
                     "/update/acme/win32/x64/c/some-client/", "/update/acme/win32/x64/latest/c/some-client/"):
            _, body = self.get(base + "acme-1.1.0-full.nupkg")
            self.assertEqual(body, data, base)

    def test_squirrel_windows_releases_accepts_channel_and_client_in_the_path(self):
        _, plain = self.get("/update/acme/win32/x64/RELEASES")
        _, chan = self.get("/update/acme/win32/x64/latest/RELEASES")
        hdrs, personal = self.get("/update/acme/win32/x64/latest/c/some-client/RELEASES")
        self.assertEqual(chan, plain)
        self.assertEqual(personal, plain)
        self.assertEqual(hdrs.get("cache-control"), "private, no-cache")

    # --- Tauri -------------------------------------------------------------------------------------

    def test_tauri_offers_the_signed_file_of_each_target_and_arch(self):
        cases = [("linux", "x86_64", "Acme-1.1.0.AppImage", "linux"),
                 ("linux", "x64", "Acme-1.1.0.AppImage", "linux"),
                 ("linux", "aarch64", "Acme-1.1.0-arm64.AppImage", "linux-arm64"),
                 ("windows", "x86_64", "Acme-Setup-1.1.0.exe", "win"),
                 ("darwin", "aarch64", "Acme_1.1.0_universal.app.tar.gz", "mac"),
                 ("darwin", "x86_64", "Acme_1.1.0_universal.app.tar.gz", "mac")]
        for target, arch, name, sig in cases:
            hdrs, body = self.get("/update/acme/tauri/%s/%s/1.0.0" % (target, arch))
            doc = json.loads(body)
            self.assertEqual(doc, {"version": "1.1.0", "notes": NOTES,
                                   "pub_date": self.released[("acme", "1.1.0")]["pub_date"],
                                   "url": self.url("acme", "1.1.0", name), "signature": SIG[sig]}, (target, arch))
            self.assertTrue(datetime.datetime.fromisoformat(doc["pub_date"]).tzinfo is not None)

    def test_tauri_answers_204_when_current_is_the_newest(self):
        status, _, body = self.env.http("GET", "/update/acme/tauri/linux/x86_64/1.1.0")
        self.assertEqual((status, body), (204, b""))

    def test_tauri_has_no_update_without_a_signed_file(self):
        self.get("/update/bare/tauri/windows/x86_64/0.1.0", expect=404)

    def test_tauri_accepts_a_percent_encoded_plus_in_the_current_version(self):
        status, _, _ = self.env.http("GET", "/update/acme/tauri/linux/x86_64/1.0.0%2Bbuild.7")
        self.assertEqual(status, 200)

    # --- partial rollout: personalised vs non-personalised -----------------------------------------

    def test_non_personalised_yml_of_a_partial_rollout_carries_staging_percentage(self):
        for feed in ("latest.yml", "latest-mac.yml", "latest-linux.yml", "latest-linux-arm64.yml"):
            doc, hdrs = self.yml("/update/stage/" + feed)
            self.assertEqual((doc["version"], doc.get("stagingPercentage")), ("1.1.0", 10), feed)
            self.assertRegex(hdrs.get("cache-control", ""), r"\bpublic\b")

    def test_personalised_yml_never_carries_staging_percentage(self):
        forms = [({"X-Updraft-Client": PINNED}, ""), ({}, "?client_id=" + PINNED),
                 ({"x-user-staging-id": PINNED}, ""),
                 ({"X-Updraft-Client": self.out_id}, ""), ({}, "?client_id=" + self.in_id)]
        expected = {PINNED: "1.1.0", self.out_id: "1.0.0", self.in_id: "1.1.0"}
        for headers, query in forms:
            cid = list(headers.values())[0] if headers else query.split("=")[1]
            for feed in ("latest.yml", "latest-mac.yml", "latest-linux.yml"):
                doc, hdrs = self.yml("/update/stage/%s%s" % (feed, query), headers)
                self.assertEqual(doc["version"], expected[cid], (feed, headers, query))
                self.assertNotIn("stagingPercentage", doc, (feed, headers, query))
                self.assertEqual(hdrs.get("cache-control"), "private, no-cache")

    def test_staging_percentage_is_the_integer_floor_of_the_rollout_percent(self):
        doc, _ = self.yml("/update/floor/latest.yml")
        self.assertEqual(doc["stagingPercentage"], 25)
        lines = harness.parse_releases(self.get("/update/floor/win32/x64/RELEASES")[1].decode())
        self.assertEqual({l[3] for l in lines if "1.1.0" in l[1]}, {"# 25%"})
        etag = self.get("/update/floor/latest.yml")[0].get("etag")
        status, body = self.env.api("PUT", "/v1/apps/floor/channels/latest/rollout", {"percent": 33.99}, key=self.key)
        self.assertEqual(status, 200, body)
        doc, hdrs = self.yml("/update/floor/latest.yml")
        self.assertEqual(doc["stagingPercentage"], 33)
        self.assertNotEqual(hdrs.get("etag"), etag, "the ETag changes with stagingPercentage")
        status, _, _ = self.env.http("GET", "/update/floor/latest.yml", {"If-None-Match": etag})
        self.assertEqual(status, 200, "a stale ETag revalidates to the new answer")
        lines = harness.parse_releases(self.get("/update/floor/win32/x64/RELEASES")[1].decode())
        self.assertEqual({l[3] for l in lines if "1.1.0" in l[1]}, {"# 33%"})

    def test_non_personalised_releases_of_a_partial_rollout_lists_stable_then_rollout_lines_with_percent(self):
        _, body = self.get("/update/stage/win32/x64/RELEASES")
        text = body.decode()
        for line in text.split("\n"):
            self.assertRegex(line, r"^[0-9a-fA-F]{40}\s+(\S+)\s+(\d+)(# \d+%)?$")
        lines = harness.parse_releases(text)
        self.assertEqual([(l[1], l[3]) for l in lines], [
            ("acme-1.0.0-full.nupkg", None),
            ("acme-1.1.0-delta.nupkg", "# 10%"), ("acme-1.1.0-full.nupkg", "# 10%")])
        self.assertIn("%d# 10%%" % len(self.bytes[("stage", "1.1.0", "acme-1.1.0-full.nupkg")]), text)
        for sha1, name, size, _ in lines:
            data = self.bytes[("stage", name.split("-")[1], name)]
            self.assertEqual((sha1.lower(), size), (hashlib.sha1(data).hexdigest(), len(data)))

    def test_personalised_releases_has_no_percent_suffix(self):
        for cid, version in ((PINNED, "1.1.0"), (self.out_id, "1.0.0"), (self.in_id, "1.1.0")):
            hdrs, body = self.get("/update/stage/win32/x64/c/%s/RELEASES" % cid)
            lines = harness.parse_releases(body.decode())
            self.assertTrue(lines)
            self.assertEqual({l[3] for l in lines}, {None}, cid)
            self.assertIn("acme-%s-full.nupkg" % version, [l[1] for l in lines], cid)
            self.assertEqual(hdrs.get("cache-control"), "private, no-cache")

    def releases_line(self, name, suffix=""):
        data = self.bytes[("stage", name.split("-")[1], name)]
        return "%s %s %d%s" % (hashlib.sha1(data).hexdigest().upper(), name, len(data), suffix)

    def test_staged_releases_is_byte_exact_with_the_suffix_squirrel_windows_reads_as_staging(self):
        # Regression: "#10%" (no space after '#') is a comment to Squirrel.Windows, whose staging pattern is
        # #\s+(\d{1,3})%$, so a 10% release reached every non-personalised client.
        _, body = self.get("/update/stage/win32/x64/RELEASES")
        self.assertEqual(body.decode(), "\n".join([
            self.releases_line("acme-1.0.0-full.nupkg"),
            self.releases_line("acme-1.1.0-delta.nupkg", "# 10%"),
            self.releases_line("acme-1.1.0-full.nupkg", "# 10%")]))
        for line in body.decode().split("\n")[1:]:
            self.assertEqual(re.search(r"#\s+(\d{1,3})%$", line).group(1), "10", line)

    def test_personalised_releases_is_byte_exact_without_a_suffix(self):
        _, body = self.get("/update/stage/win32/x64/c/%s/RELEASES" % self.in_id)
        self.assertEqual(body.decode(), "\n".join([
            self.releases_line("acme-1.1.0-delta.nupkg"), self.releases_line("acme-1.1.0-full.nupkg")]))
        _, body = self.get("/update/stage/win32/x64/c/%s/RELEASES" % self.out_id)
        self.assertEqual(body.decode(), self.releases_line("acme-1.0.0-full.nupkg"))

    def test_squirrel_mac_and_tauri_non_personalised_answers_offer_the_newest_fully_released(self):
        doc, _ = self.sqmac("stage", "x64", "0.9.0")
        self.assertEqual(doc["name"], "1.0.0")
        _, body = self.get("/update/stage/tauri/linux/x86_64/0.9.0")
        self.assertEqual(json.loads(body)["version"], "1.0.0")
        status, _, _ = self.env.http("GET", "/update/stage/tauri/linux/x86_64/1.0.0")
        self.assertEqual(status, 204)
        _, body = self.get("/update/stage/tauri/linux/x86_64/1.0.0", {"X-Updraft-Client": PINNED})
        self.assertEqual(json.loads(body)["version"], "1.1.0")

    def test_the_first_client_id_found_wins(self):
        def version(query, headers):
            return self.yml("/update/stage/latest.yml" + query, headers)[0]["version"]
        self.assertEqual(version("?client_id=" + self.out_id, {"X-Updraft-Client": PINNED}), "1.1.0")
        self.assertEqual(version("?client_id=" + PINNED, {"X-Updraft-Client": self.out_id}), "1.0.0")
        self.assertEqual(version("?client_id=" + PINNED, {"x-user-staging-id": self.out_id}), "1.1.0")
        self.assertEqual(version("", {"X-Updraft-Client": self.out_id, "x-user-staging-id": PINNED}), "1.0.0")

    # --- caching -----------------------------------------------------------------------------------

    def test_a_first_release_in_partial_rollout_gives_others_no_update(self):
        outside = None
        for i in range(200):
            cid = "first-%d" % i
            status, _, body = self.env.http("GET", "/update/first/darwin/x64/0.9.0?client_id=%s" % cid)
            if status == 204:
                self.assertEqual(body, b"")
                outside = cid
                break
            self.assertEqual(status, 200, body)
        self.assertIsNotNone(outside, "no client outside a 10% rollout among 200")
        status, _, _ = self.env.http("GET", "/update/first/tauri/linux/x86_64/0.9.0", headers={"X-Updraft-Client": outside})
        self.assertEqual(status, 204, "Tauri outside the rollout: no update, not an error")
        status, _, _ = self.env.http("GET", "/update/first/latest.yml", headers={"X-Updraft-Client": outside})
        self.assertEqual(status, 404, "electron-updater outside the rollout has no file it may be given")
        doc, _ = self.yml("/update/first/latest.yml")
        self.assertEqual((doc["version"], doc["stagingPercentage"]), ("1.0.0", 10))

    def test_etag_revalidation_answers_304_until_the_answer_changes(self):
        hdrs, body = self.get("/update/etag/latest.yml")
        etag = hdrs.get("etag")
        self.assertRegex(etag or "", r'^(W/)?".+"$')
        status, h304, b304 = self.env.http("GET", "/update/etag/latest.yml", {"If-None-Match": etag})
        self.assertEqual((status, b304), (304, b""))
        self.assertEqual(h304.get("etag"), etag)
        status, _, _ = self.env.http("GET", "/update/etag/latest.yml", {"If-None-Match": '"nope", ' + etag})
        self.assertEqual(status, 304)
        status, _, _ = self.env.http("GET", "/update/etag/latest.yml", {"If-None-Match": '"something-else"'})
        self.assertEqual(status, 200)
        self.register("etag", "1.0.1", release_files("1.0.1", delta=False))
        status, h2, b2 = self.env.http("GET", "/update/etag/latest.yml", {"If-None-Match": etag})
        self.assertEqual(status, 200)
        self.assertNotEqual(h2.get("etag"), etag)
        self.assertEqual(harness.parse_yaml(b2.decode())["version"], "1.0.1")

    def test_every_feed_format_carries_an_etag_and_revalidates(self):
        for path in ("/update/acme/latest-mac.yml", "/update/acme/darwin/x64/1.0.0",
                     "/update/acme/win32/x64/RELEASES", "/update/acme/tauri/linux/x86_64/1.0.0",
                     "/update/stage/latest.yml?client_id=" + PINNED):
            hdrs, _ = self.get(path)
            self.assertIn("etag", hdrs, path)
            status, _, body = self.env.http("GET", path, {"If-None-Match": hdrs["etag"]})
            self.assertEqual((status, body), (304, b""), path)

    def test_staged_and_personalised_answers_have_different_etags(self):
        h1, _ = self.get("/update/stage/latest.yml")
        h2, _ = self.get("/update/stage/latest.yml", {"X-Updraft-Client": PINNED})
        self.assertNotEqual(h1.get("etag"), h2.get("etag"))

    def test_cache_control_is_private_when_personalised_and_public_otherwise(self):
        hdrs, _ = self.get("/update/acme/latest.yml")
        # short, served stale by an edge while the origin fails, and tagged for purges by app, channel and release
        self.assertRegex(hdrs.get("cache-control", ""), r"^public, max-age=\d+, stale-if-error=\d+$")
        self.assertRegex(hdrs.get("surrogate-key", ""), r"^app:acme chan:acme/latest rel:acme/\S+$")
        self.assertEqual(hdrs.get("cache-tag"), hdrs.get("surrogate-key").replace(" ", ","))
        hdrs, _ = self.get("/update/acme/latest.yml", {"X-Updraft-Client": "someone"})
        self.assertEqual(hdrs.get("cache-control"), "private, no-cache")
        self.assertNotIn("surrogate-key", hdrs)
        _, hdrs = self.sqmac("acme", "x64", "1.0.0", query="?client_id=someone")
        self.assertEqual(hdrs.get("cache-control"), "private, no-cache")
        _, hdrs = self.sqmac("acme", "x64", "1.0.0")
        self.assertRegex(hdrs.get("cache-control", ""), r"\bpublic\b")

    def test_head_on_a_feed_answers_the_headers_without_a_body(self):
        hdrs, body = self.get("/update/acme/latest.yml")
        status, hhead, bhead = self.env.http("HEAD", "/update/acme/latest.yml")
        self.assertEqual((status, bhead), (200, b""))
        self.assertEqual(hhead.get("etag"), hdrs.get("etag"))

    # --- errors ------------------------------------------------------------------------------------

    def test_unknown_app_or_channel_is_404(self):
        for path in ("/update/nope/latest.yml", "/update/nope/darwin/x64/1.0.0", "/update/nope/win32/x64/RELEASES",
                     "/update/nope/tauri/linux/x86_64/1.0.0", "/update/acme/beta.yml", "/update/acme/beta-mac.yml",
                     "/update/acme/win32/x64/beta/RELEASES", "/update/acme/darwin/x64/1.0.0?channel=beta"):
            self.get(path, expect=404)

    def test_malformed_client_id_is_400_in_every_form(self):
        long_id = "a" * 129
        for headers, path in (({"X-Updraft-Client": "bad id!"}, "/update/acme/latest.yml"),
                              ({"X-Updraft-Client": long_id}, "/update/acme/latest.yml"),
                              ({"X-Updraft-Client": ""}, "/update/acme/latest.yml"),
                              ({}, "/update/acme/latest.yml?client_id=bad%20id"),
                              ({}, "/update/acme/latest.yml?client_id=" + long_id),
                              ({}, "/update/acme/darwin/x64/1.0.0?client_id=a/b"),
                              ({"x-user-staging-id": "not{a}uuid"}, "/update/acme/latest.yml"),
                              ({"X-Updraft-Client": "bad id!"}, "/update/acme/darwin/x64/1.0.0"),
                              ({"X-Updraft-Client": "bad id!"}, "/update/acme/tauri/linux/x86_64/1.0.0"),
                              ({}, "/update/acme/win32/x64/c/bad!id/RELEASES"),
                              ({}, "/update/acme/win32/x64/c/%s/RELEASES" % long_id)):
            status, _, body = self.env.http("GET", path, headers)
            self.assertEqual(status, 400, (path, headers, body))
        self.get("/update/acme/latest.yml", {"X-Updraft-Client": "a" * 128})
        self.get("/update/acme/latest.yml", {"X-Updraft-Client": "A-z_0.9:x"})

    def test_malformed_version_is_400(self):
        for path in ("/update/acme/darwin/x64/1.0", "/update/acme/darwin/x64/v1.0.0", "/update/acme/darwin/x64/01.0.0",
                     "/update/acme/tauri/linux/x86_64/abc", "/update/acme/tauri/linux/x86_64/1.0.0-"):
            self.get(path, expect=400)

    def test_malformed_app_id_is_400(self):
        for path in ("/update/Acme/latest.yml", "/update/-acme/latest.yml", "/update/ac_me/darwin/x64/1.0.0",
                     "/update/%s/latest.yml" % ("a" * 64), "/download/ACME/mac"):
            self.get(path, expect=400)

    def test_malformed_arch_or_target_is_400(self):
        self.get("/update/acme/darwin/sparc/1.0.0", expect=400)
        self.get("/update/acme/tauri/beos/x86_64/1.0.0", expect=400)

    def test_post_on_public_routes_is_405_with_allow(self):
        for method, path in (("POST", "/update/acme/latest.yml"), ("PUT", "/update/acme/darwin/x64/1.0.0"),
                             ("DELETE", "/update/acme/win32/x64/RELEASES"), ("POST", "/healthz"),
                             ("POST", "/download/acme/mac")):
            status, hdrs, _ = self.env.http(method, path, body=b"")
            self.assertEqual(status, 405, (method, path))
            allow = {m.strip() for m in hdrs.get("allow", "").split(",")}
            self.assertEqual(allow, {"GET", "HEAD"}, (method, path))

    # --- downloads, health, metrics ----------------------------------------------------------------

    def assert_download(self, path, app, version, name):
        status, hdrs, _ = self.env.http("GET", path)
        self.assertEqual(status, 302, path)
        loc = hdrs.get("location", "")
        self.assertTrue(loc.endswith("/artifacts/%s/%s/%s" % (app, version, name)), (path, loc))
        target = loc[len(self.origin.url):] if loc.startswith("http") else loc
        _, body = self.get(target)
        self.assertEqual(body, self.bytes[(app, version, name)])

    def test_download_redirects_to_the_newest_installer_per_platform(self):
        self.assert_download("/download/acme/mac", "acme", "1.1.0", "Acme-1.1.0.dmg")
        self.assert_download("/download/acme/windows", "acme", "1.1.0", "Acme-Setup-1.1.0.exe")
        self.assert_download("/download/acme/windows/x64", "acme", "1.1.0", "Acme-Setup-1.1.0.exe")
        self.assert_download("/download/acme/linux", "acme", "1.1.0", "Acme-1.1.0.AppImage")
        self.assert_download("/download/acme/linux/arm64", "acme", "1.1.0", "Acme-1.1.0-arm64.AppImage")
        self.assert_download("/download/acme/linux?format=deb", "acme", "1.1.0", "acme_1.1.0_amd64.deb")
        self.assert_download("/download/acme/linux/x64?format=deb&channel=latest", "acme", "1.1.0", "acme_1.1.0_amd64.deb")
        self.assert_download("/download/acme/mac?format=zip", "acme", "1.1.0", "Acme-1.1.0-mac.zip")

    def test_download_during_a_partial_rollout_is_the_newest_fully_released(self):
        self.assert_download("/download/stage/windows", "stage", "1.0.0", "Acme-Setup-1.0.0.exe")

    def test_download_is_404_when_there_is_no_such_installer(self):
        for path in ("/download/acme/linux?format=rpm", "/download/bare/mac", "/download/bare/linux",
                     "/download/nope/mac", "/download/acme/mac?channel=beta", "/download/acme/windows/arm64"):
            self.get(path, expect=404)

    def test_healthz_is_200(self):
        self.get("/healthz")
        status, _, body = self.env.http("HEAD", "/healthz")
        self.assertEqual((status, body), (200, b""))

    def test_metrics_count_requests_and_rollout_decisions(self):
        _, before = self.get("/metrics")
        text = before.decode()
        self.assertIsNotNone(harness.metric_sum(text, "updraft_requests_total"), text[:2000])
        self.assertIsNotNone(harness.metric_sum(text, "updraft_rollout_decisions_total"), text[:2000])
        self.get("/update/stage/latest.yml", {"X-Updraft-Client": "metrics-client"})
        _, after = self.get("/metrics")
        text2 = after.decode()
        self.assertGreater(harness.metric_sum(text2, "updraft_requests_total"),
                           harness.metric_sum(text, "updraft_requests_total"))
        self.assertEqual(harness.metric_sum(text2, "updraft_rollout_decisions_total"),
                         harness.metric_sum(text, "updraft_rollout_decisions_total") + 1)


if __name__ == "__main__":
    unittest.main()
