#!/usr/bin/env python3
"""Story: CI registers a release as a draft with a build key; a release key publishes it later.

A release registered without "channel" is a draft: its files are checked and mirrored as any
release's, but no client is offered it and the origin serves nothing of it. A build-scoped service
key may register drafts on its app (not on another: 404), but neither publish one nor register on a
channel (403 naming the role and the app). A release key publishes the draft exactly as the
one-call form registers a release: the channel moves, the feeds answer it, its files are served.
A version is a draft or a release, never both. Each of these calls leaves an audit record.
docs/control-api.md "Drafts".
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_members_keys import audit_records  # noqa: E402

VERSION_LINE = re.compile(r"^version: '?([^'\n]+?)'?$", re.M)


class DraftsTest(harness.StackTest):
    env_name = "test_drafts"
    programs = ("origin", "control")
    keys = (("admin", "admin", "ops"),)
    apps = (("acme", "Acme"), ("beta", "Beta"), ("shop", "Shop"), ("twice", "Twice"))

    @classmethod
    def set_up_stack(cls):
        cls.ci = cls.service_key("ci", "acme", "build")
        cls.shop_ci = cls.service_key("shop-ci", "shop", "build")
        cls.shop_release = cls.service_key("shop-release", "shop", "release")
        cls.bytes = {}

    @classmethod
    def service_key(cls, name, app, role):
        status, doc = cls.env.api("POST", "/v1/keys", {"name": name, "app": app, "role": role}, key=cls.admin)
        if status != 201:
            raise AssertionError("service key %s: %d %r" % (name, status, doc))
        return doc["key"]

    def files(self, app, version):
        name = "%s-Setup-%s.exe" % (app.title(), version)
        data = os.urandom(2000)
        self.bytes[(app, version)] = (name, data)
        return [dict(self.env.put_artifact(app, version, name, data), platform="windows", arch="x64")]

    def draft(self, app, version, key, expect=201):
        status, doc = self.env.api("POST", "/v1/apps/%s/releases" % app, {"version": version, "files": self.files(app, version)},
                                   key=key)
        self.assertEqual(status, expect, doc)
        return doc

    def publish(self, app, version, key, body=None, expect=201):
        status, doc = self.env.api("POST", "/v1/apps/%s/releases/%s/publish" % (app, version),
                                   body if body is not None else {"channel": "latest"}, key=key)
        self.assertEqual(status, expect, doc)
        return doc

    def refused(self, answer, status, code):
        self.assertEqual(answer[0], status, answer)
        self.assertEqual(answer[1]["error"]["code"], code, answer)
        return answer[1]["error"]["message"]

    def origin_serves(self, app, version):
        """What the origin answers of a release: (latest.yml's status and version, the artifact's status)."""
        name, data = self.bytes[(app, version)]
        status, _, body = self.env.http("GET", "/update/%s/latest.yml" % app)
        m = VERSION_LINE.search(body.decode(errors="replace")) if status == 200 else None
        art_status, _, art = self.env.http("GET", "/artifacts/%s/%s/%s" % (app, version, name))
        if art_status == 200:
            self.assertEqual(art, data)
        return status, m.group(1) if m else None, art_status

    def test_a_build_key_registers_a_draft_but_may_not_publish_it(self):
        doc = self.draft("acme", "1.0.0", self.ci)
        self.assertEqual((doc["release"]["draft"], doc["release"]["channel"], doc["release"]["version"]), (True, None, "1.0.0"))
        self.assertIn("backends", doc)
        message = self.refused(self.env.api("POST", "/v1/apps/acme/releases/1.0.0/publish", {"channel": "latest"}, key=self.ci),
                               403, "forbidden")
        self.assertIn("release role on app acme; the key has build there", message)
        body = {"version": "1.0.1", "channel": "latest", "files": self.files("acme", "1.0.1")}
        message = self.refused(self.env.api("POST", "/v1/apps/acme/releases", body, key=self.ci), 403, "forbidden")
        self.assertIn("release role on app acme; the key has build there", message)
        body = {"version": "1.0.0", "files": self.files("beta", "1.0.0")}
        self.refused(self.env.api("POST", "/v1/apps/beta/releases", body, key=self.ci), 404, "not_found")
        self.refused(self.env.api("GET", "/v1/apps/beta/releases", key=self.ci), 404, "not_found")
        status, doc = self.env.api("GET", "/v1/apps/acme/releases", key=self.ci)
        self.assertEqual((status, [d["version"] for d in doc["drafts"]], doc["releases"]), (200, ["1.0.0"], []))
        status, doc = self.env.api("GET", "/v1/apps/acme/releases/1.0.0", key=self.ci)
        self.assertEqual((status, doc["draft"], doc["channel"]), (200, True, None))
        self.refused(self.env.api("GET", "/v1/apps/acme/channels/latest", key=self.ci), 404, "not_found")

        ci_id = self.ci.split("_")[1]
        records = [r for r in audit_records(self.env.data) if r["actor"]["key"] == ci_id]
        (draft,) = [r for r in records if r["action"] == "release.draft"]
        self.assertEqual((draft["outcome"], draft["status"], draft["target"]["app"], draft["target"]["version"],
                          draft["target"]["channel"]), ("ok", 201, "acme", "1.0.0", None))
        denied = sorted((r["action"], r["status"]) for r in records if r["outcome"] == "denied")
        self.assertEqual(denied, [("release.create", 403), ("release.create", 404), ("release.list", 404),
                                  ("release.publish", 403)])

    def test_a_release_key_publishes_the_draft_and_the_origin_then_serves_it(self):
        self.draft("shop", "2.0.0", self.shop_ci)
        self.assertEqual(self.origin_serves("shop", "2.0.0"), (404, None, 404), "nothing of a draft is served")
        self.refused(self.env.api("POST", "/v1/apps/shop/releases/2.0.0/publish", {"channel": "Bad!"}, key=self.shop_release),
                     400, "invalid")
        self.refused(self.env.api("POST", "/v1/apps/shop/releases/9.9.9/publish", {"channel": "latest"}, key=self.shop_release),
                     404, "not_found")
        doc = self.publish("shop", "2.0.0", self.shop_release)
        self.assertEqual((doc["release"]["draft"], doc["release"]["channel"], doc["channel"]["stable"]), (False, "latest", "2.0.0"))
        self.assertEqual(self.origin_serves("shop", "2.0.0"), (200, "2.0.0", 200))
        status, doc = self.env.api("GET", "/v1/apps/shop/releases", key=self.shop_ci)
        self.assertEqual((status, [r["version"] for r in doc["releases"]], doc["drafts"]), (200, ["2.0.0"], []))
        status, doc = self.env.api("GET", "/v1/apps/shop/releases/2.0.0", key=self.shop_ci)
        self.assertEqual((status, doc["draft"], doc["channel"]), (200, False, "latest"))
        self.refused(self.env.api("POST", "/v1/apps/shop/releases/2.0.0/publish", {"channel": "latest"}, key=self.shop_release),
                     409, "exists")

        # a second draft, published in partial rollout
        self.draft("shop", "2.1.0", self.shop_ci)
        self.assertEqual(self.origin_serves("shop", "2.1.0")[1:], ("2.0.0", 404))
        doc = self.publish("shop", "2.1.0", self.shop_release, {"channel": "latest", "rollout": {"percent": 30}})
        self.assertEqual((doc["channel"]["stable"], doc["channel"]["rollout"]["version"], doc["channel"]["rollout"]["percent"]),
                         ("2.0.0", "2.1.0", 30))
        self.assertEqual(self.origin_serves("shop", "2.1.0")[2], 200)

        release_id = self.shop_release.split("_")[1]
        published = [r for r in audit_records(self.env.data)
                     if r["action"] == "release.publish" and r["outcome"] == "ok" and r["target"]["app"] == "shop"]
        self.assertEqual([(r["actor"]["key"], r["target"]["version"], r["target"]["channel"]) for r in published],
                         [(release_id, "2.0.0", "latest"), (release_id, "2.1.0", "latest")])
        self.assertEqual(published[1]["detail"]["percent"], 30)

    def test_a_version_is_a_draft_or_a_release_never_both(self):
        self.draft("twice", "1.0.0", self.admin)
        self.refused(self.env.register_release(self.admin, "twice", "1.0.0", self.files("twice", "1.0.0")), 409, "exists")
        self.draft("twice", "1.0.0", self.admin, expect=409)
        status, doc = self.env.register_release(self.admin, "twice", "1.1.0", self.files("twice", "1.1.0"))
        self.assertEqual(status, 201, doc)
        self.assertEqual(doc["release"]["draft"], False)
        self.draft("twice", "1.1.0", self.admin, expect=409)
        # older than the channel's newest: refused, and still a draft
        self.refused(self.env.api("POST", "/v1/apps/twice/releases/1.0.0/publish", {"channel": "latest"}, key=self.admin), 409,
                     "not_newer")
        status, doc = self.env.api("GET", "/v1/apps/twice/releases/1.0.0", key=self.admin)
        self.assertEqual((status, doc["draft"]), (200, True))
        self.refused(self.env.api("POST", "/v1/apps/twice/releases", {"version": "2.0.0", "files": self.files("twice", "2.0.0"),
                                                                      "rollout": {"percent": 5}}, key=self.admin), 400, "invalid")


if __name__ == "__main__":
    unittest.main()
