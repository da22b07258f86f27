#!/usr/bin/env python3
"""Story: a bad release is pulled from its channel, through the control API and the CLI.

A release in partial rollout is pulled: the rollout ends and every client is offered the stable
version again. The stable version is pulled: the newest older release that is not itself pulled
becomes stable, and Squirrel.Mac and Tauri clients already on the pulled version are answered 204
rather than a downgrade (electron-updater and Squirrel.Windows are given the older version's feed
and do not downgrade by themselves). The only release is pulled: the channel has no stable version
and the feeds answer as for a channel whose first release is still partial. A pulled release is
kept and shown as pulled, its files stay downloadable, it is never offered again, and each pull
bumps the generation and is propagated (the edge is banned with the app, channel, pulled and now
offered versions' tags). Control API "POST /v1/apps/APP/releases/VERSION/pull", README "Running by hand".
"""
import http.server
import json
import os
import re
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SIG = "dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZSBmcm9tIHRhdXJpIHNlY3JldCBrZXkKUlVSbWFj"
VERSION_LINE = re.compile(r"^version: '?([^'\n]+?)'?$", re.M)


class StandInVarnish:
    """Answers BAN / with 200 and records the X-Updraft-Tags it was sent (a Varnish listener whose VCL bans by tag)."""

    def __init__(self):
        self.bans = []
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_BAN(self):
                with owner.lock:
                    owner.bans.append(self.headers.get("X-Updraft-Tags"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def last(self, app):
        with self.lock:
            hits = [t for t in self.bans if ("app:%s" % app) in (t or "").split(" ")]
        return hits[-1] if hits else None


class PullStack(harness.StackTest):
    """An origin and a control plane that purges a stand-in Varnish (cls.varnish)."""

    programs = ("origin", "control")

    @classmethod
    def prepare_stack(cls):
        cls.varnish = StandInVarnish()
        cls.addClassCleanup(cls.varnish.stop)

    @classmethod
    def control_args(cls):
        return ("--config", cls.env.write("control.yaml", "listen: [\"127.0.0.1:0\"]\npropagation:\n  varnish: [%s]\n"
                                          "  timeout_ms: 2000\n" % cls.varnish.url))


class PullTest(PullStack):
    env_name = "test_pull"
    keys = (("admin", "admin", "ops"), ("release_key", "release", "ci-release"), ("build_key", "build", "ci-build"))

    @classmethod
    def set_up_stack(cls):
        cls.bytes = {}

    # --- helpers ----------------------------------------------------------------------------------

    def new_app(self, app, *versions):
        """APP with each (version, rollout percent or None) registered in order on latest."""
        status, doc = self.env.api("POST", "/v1/apps", {"id": app, "name": app}, key=self.admin)
        self.assertEqual(status, 201, doc)
        for version, rollout in versions:
            self.register(app, version, rollout)

    def register(self, app, version, rollout=None, expect=201):
        files = []
        for name, platform, arch, extra in (("App-Setup-%s.exe", "windows", "x64", {}), ("App-%s-mac.zip", "mac", "x64", {}),
                                            ("app-%s-full.nupkg", "windows", "x64", {}),
                                            ("App_%s_universal.app.tar.gz", "mac", "universal", {"signature": SIG})):
            data = os.urandom(2000)
            self.bytes[(app, version, name % version)] = data
            files.append(dict(self.env.put_artifact(app, version, name % version, data), platform=platform, arch=arch, **extra))
        status, doc = self.env.register_release(self.admin, app, version, files, rollout=rollout)
        self.assertEqual(status, expect, doc)
        return doc

    def pull(self, app, version, reason=None, key=None, expect=200, body=None):
        if body is None and reason is not None:
            body = {"reason": reason}
        status, doc = self.env.api("POST", "/v1/apps/%s/releases/%s/pull" % (app, version), body, key=key or self.release_key)
        self.assertEqual(status, expect, doc)
        if expect >= 400:
            self.assertIsInstance(doc.get("error", {}).get("code"), str, doc)
        return doc

    def channel(self, app):
        status, doc = self.env.api("GET", "/v1/apps/%s/channels/latest" % app, key=self.build_key)
        self.assertEqual(status, 200, doc)
        return doc

    def release_of(self, ch, version):
        (r,) = [r for r in ch["releases"] if r["version"] == version]
        return r

    def yml_version(self, app, client=None):
        status, _, body = self.env.http("GET", "/update/%s/latest.yml" % app, {"X-Updraft-Client": client} if client else None)
        self.assertEqual(status, 200, body)
        text = body.decode()
        return VERSION_LINE.search(text).group(1), "stagingPercentage" in text

    def sqmac(self, app, current, client=None):
        """Squirrel.Mac on `current`: the version offered, or None for 204."""
        status, _, body = self.env.http("GET", "/update/%s/darwin/x64/%s" % (app, current),
                                        {"X-Updraft-Client": client} if client else None)
        self.assertIn(status, (200, 204), body)
        return json.loads(body)["name"] if status == 200 else None

    def tauri(self, app, current):
        status, _, body = self.env.http("GET", "/update/%s/tauri/darwin/aarch64/%s" % (app, current))
        self.assertIn(status, (200, 204), body)
        return json.loads(body)["version"] if status == 200 else None

    def download(self, app, platform="windows"):
        """(status, the artifact path redirected to)"""
        status, hdrs, body = self.env.http("GET", "/download/%s/%s" % (app, platform))
        loc = hdrs.get("location", "")
        return status, loc[len(self.origin.url):] if loc.startswith(self.origin.url) else loc

    def assert_artifact(self, app, version, name):
        status, _, body = self.env.http("GET", "/artifacts/%s/%s/%s" % (app, version, name))
        self.assertEqual(status, 200, (app, version, name))
        self.assertEqual(body, self.bytes[(app, version, name)])

    def log(self):
        with open(self.control.log, errors="replace") as f:
            return f.read()

    # --- the stories ------------------------------------------------------------------------------

    def test_pulling_a_partial_rollout_gives_every_client_the_stable_version_again(self):
        self.new_app("roll", ("1.0.0", None), ("1.1.0", 50))
        ids = ["roll-%03d" % i for i in range(300)]
        eligible = [cid for cid in ids if self.yml_version("roll", cid)[0] == "1.1.0"]
        self.assertGreater(len(eligible), 100)
        self.assertEqual(self.yml_version("roll"), ("1.1.0", True), "non-personalised: the staged answer")
        before = self.channel("roll")["generation"]

        ch = self.pull("roll", "1.1.0", reason="crashes on start\nfor everyone")
        self.assertEqual((ch["app"], ch["channel"], ch["stable"], ch["rollout"]), ("roll", "latest", "1.0.0", None))
        self.assertEqual(ch["generation"], before + 1)
        pulled = self.release_of(ch, "1.1.0")
        self.assertEqual((pulled["pulled"], pulled["pull_reason"]), (True, "crashes on start\nfor everyone"))
        self.assertRegex(pulled["pulled_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual((self.release_of(ch, "1.0.0")["pulled"], self.release_of(ch, "1.0.0")["pulled_at"]), (False, None))
        shown = self.channel("roll")
        self.assertEqual(set(shown) | {"propagation"}, set(ch), "the answer is the channel, with propagation")
        self.assertEqual((shown["generation"], shown["stable"], self.release_of(shown, "1.1.0")["pulled_at"]),
                         (ch["generation"], "1.0.0", pulled["pulled_at"]))

        # the clients that were in the rollout are offered the stable version in every format
        for cid in eligible[:40]:
            self.assertEqual(self.yml_version("roll", cid), ("1.0.0", False), cid)
            self.assertIsNone(self.sqmac("roll", "1.0.0", cid), cid)
            _, _, rel = self.env.http("GET", "/update/roll/win32/x64/c/%s/RELEASES" % cid)
            self.assertEqual([x[1] for x in harness.parse_releases(rel.decode())], ["app-1.0.0-full.nupkg"], cid)
        self.assertEqual(self.yml_version("roll"), ("1.0.0", False), "non-personalised: no stagingPercentage left")
        _, _, rel = self.env.http("GET", "/update/roll/win32/x64/RELEASES")
        self.assertEqual([(x[1], x[3]) for x in harness.parse_releases(rel.decode())], [("app-1.0.0-full.nupkg", None)])
        self.assertEqual(self.download("roll"), (302, "/artifacts/roll/1.0.0/App-Setup-1.0.0.exe"))

        # clients mid-download finish: the pulled release's files are still served
        self.assert_artifact("roll", "1.1.0", "App-Setup-1.1.0.exe")
        self.assert_artifact("roll", "1.1.0", "App-1.1.0-mac.zip")
        status, _, body = self.env.http("GET", "/update/roll/win32/x64/app-1.1.0-full.nupkg")
        self.assertEqual((status, body), (200, self.bytes[("roll", "1.1.0", "app-1.1.0-full.nupkg")]))

        # propagated like a rollout change, with the tags of the pulled and the now offered version; audited
        self.assertEqual([(t["target"], t["ok"]) for t in ch["propagation"]["purges"]], [("varnish " + self.varnish.url, True)])
        self.assertEqual(ch["propagation"]["generation"], ch["generation"])
        self.assertEqual(self.varnish.last("roll"), "app:roll chan:roll/latest rel:roll/1.1.0 rel:roll/1.0.0")
        self.assertIn("release roll 1.1.0 pulled from latest: crashes on start for everyone", self.log())

    def test_pulling_the_stable_version_falls_back_to_the_previous_release_without_offering_a_downgrade(self):
        self.new_app("stab", ("1.0.0", None), ("1.1.0", None), ("1.2.0", None))
        self.assertEqual((self.sqmac("stab", "1.1.0"), self.tauri("stab", "1.1.0")), ("1.2.0", "1.2.0"))
        before = self.channel("stab")["generation"]

        ch = self.pull("stab", "1.2.0")
        self.assertEqual((ch["stable"], ch["rollout"], ch["generation"]), ("1.1.0", None, before + 1))
        self.assertEqual((self.release_of(ch, "1.2.0")["pulled"], self.release_of(ch, "1.2.0")["pull_reason"]), (True, None))
        self.assertEqual(self.yml_version("stab"), ("1.1.0", False))
        self.assertEqual(self.yml_version("stab", "someone"), ("1.1.0", False))
        self.assertEqual(self.download("stab"), (302, "/artifacts/stab/1.1.0/App-Setup-1.1.0.exe"))
        self.assertEqual(self.download("stab", "mac"), (404, ""), "no dmg in these releases")
        # Squirrel.Mac installs whatever it is given and Tauri likewise: on the pulled version, no update
        self.assertEqual((self.sqmac("stab", "1.2.0"), self.tauri("stab", "1.2.0")), (None, None))
        self.assertEqual((self.sqmac("stab", "1.1.0"), self.tauri("stab", "1.1.0")), (None, None))
        self.assertEqual((self.sqmac("stab", "1.0.0"), self.tauri("stab", "1.0.0")), ("1.1.0", "1.1.0"))
        _, _, rel = self.env.http("GET", "/update/stab/win32/x64/RELEASES")
        self.assertEqual([x[1] for x in harness.parse_releases(rel.decode())], ["app-1.1.0-full.nupkg"])
        self.assertEqual(self.varnish.last("stab"), "app:stab chan:stab/latest rel:stab/1.2.0 rel:stab/1.1.0")
        self.assert_artifact("stab", "1.2.0", "App_1.2.0_universal.app.tar.gz")
        self.assertIn("release stab 1.2.0 pulled from latest: no reason given", self.log())

        # and again: the next one down
        self.assertEqual(self.pull("stab", "1.1.0")["stable"], "1.0.0")
        self.assertEqual(self.yml_version("stab"), ("1.0.0", False))
        self.assertEqual((self.sqmac("stab", "1.1.0"), self.sqmac("stab", "0.9.0")), (None, "1.0.0"))

    def test_a_pulled_superseded_release_is_only_marked_and_never_fallen_back_to(self):
        self.new_app("old", ("1.0.0", None), ("1.1.0", None), ("1.2.0", None))
        _, _, yml_before = self.env.http("GET", "/update/old/latest.yml")
        before = self.channel("old")
        ch = self.pull("old", "1.1.0", reason="data loss")
        self.assertEqual((ch["stable"], ch["rollout"], ch["generation"]), ("1.2.0", None, before["generation"] + 1))
        self.assertTrue(self.release_of(ch, "1.1.0")["pulled"])
        _, _, yml_after = self.env.http("GET", "/update/old/latest.yml")
        self.assertEqual(yml_after, yml_before, "what clients are offered does not change")
        self.assertEqual(self.varnish.last("old"), "app:old chan:old/latest rel:old/1.1.0 rel:old/1.2.0")
        # pulling the stable one now skips the pulled 1.1.0
        self.assertEqual(self.pull("old", "1.2.0")["stable"], "1.0.0")
        self.assertEqual(self.sqmac("old", "1.0.0"), None)
        self.assertEqual(self.sqmac("old", "0.1.0"), "1.0.0")

    def test_pulling_the_stable_version_during_a_rollout_keeps_the_rollout_and_its_decisions(self):
        self.new_app("both", ("1.0.0", None), ("1.1.0", None), ("1.2.0", 30))
        ids = ["both-%03d" % i for i in range(200)]
        decided = {cid: self.yml_version("both", cid)[0] for cid in ids}
        self.assertEqual(set(decided.values()), {"1.1.0", "1.2.0"})
        seed = self.channel("both")["rollout"]["seed"]
        ch = self.pull("both", "1.1.0")
        self.assertEqual((ch["stable"], ch["rollout"]["version"], ch["rollout"]["percent"], ch["rollout"]["seed"]),
                         ("1.0.0", "1.2.0", 30, seed))
        for cid in ids:
            self.assertEqual(self.yml_version("both", cid)[0], "1.2.0" if decided[cid] == "1.2.0" else "1.0.0", cid)
        # the staged Squirrel.Windows answer lists the stable release's packages: the new stable's now
        _, _, rel = self.env.http("GET", "/update/both/win32/x64/RELEASES")
        self.assertEqual([(x[1], x[3]) for x in harness.parse_releases(rel.decode())],
                         [("app-1.0.0-full.nupkg", None), ("app-1.2.0-full.nupkg", "# 30%")])
        self.assertEqual(self.varnish.last("both"), "app:both chan:both/latest rel:both/1.1.0 rel:both/1.0.0 rel:both/1.2.0")
        # the rollout goes on: to 100%, it becomes stable as usual
        status, doc = self.env.api("PUT", "/v1/apps/both/channels/latest/rollout", {"percent": 100}, key=self.release_key)
        self.assertEqual((status, doc["stable"]), (200, "1.2.0"), doc)

    def test_pulling_the_only_release_leaves_the_channel_without_a_stable_version(self):
        self.new_app("only", ("1.0.0", None))
        ch = self.pull("only", "1.0.0", reason="wrong build")
        self.assertEqual((ch["stable"], ch["rollout"]), (None, None))
        # as for a channel whose first release is still partial: no update where the format can say so, else 404
        self.assertEqual((self.sqmac("only", "1.0.0"), self.sqmac("only", "0.9.0"), self.tauri("only", "0.9.0")), (None, None, None))
        for path in ("/update/only/latest.yml", "/update/only/latest-mac.yml", "/update/only/win32/x64/RELEASES",
                     "/download/only/windows"):
            status, _, _ = self.env.http("GET", path)
            self.assertEqual(status, 404, path)
        self.assert_artifact("only", "1.0.0", "App-Setup-1.0.0.exe")
        self.assertEqual(self.varnish.last("only"), "app:only chan:only/latest rel:only/1.0.0")
        # the next release brings the channel back
        self.register("only", "1.0.1")
        self.assertEqual(self.channel("only")["stable"], "1.0.1")
        self.assertEqual(self.yml_version("only"), ("1.0.1", False))

    def test_a_pulled_release_never_comes_back(self):
        self.new_app("gone", ("1.0.0", None), ("1.1.0", 20))
        self.pull("gone", "1.1.0")
        self.assert_error_code(self.pull("gone", "1.1.0", expect=409), "pulled")
        status, doc = self.env.api("PUT", "/v1/apps/gone/channels/latest/rollout", {"percent": 100}, key=self.release_key)
        self.assertEqual(status, 409, "no rollout left to promote: %r" % doc)
        files = [{k: f[k] for k in ("name", "platform", "arch", "size", "sha512")}
                 for f in self.release_of(self.channel("gone"), "1.1.0")["files"]]
        status, doc = self.env.register_release(self.admin, "gone", "1.1.0", files)
        self.assertEqual(status, 409, "registering it again: %r" % doc)
        self.assertEqual(self.channel("gone")["stable"], "1.0.0")
        self.assertTrue(self.release_of(self.channel("gone"), "1.1.0")["pulled"], "kept, marked")

    def assert_error_code(self, doc, code):
        self.assertEqual(doc["error"]["code"], code, doc)

    def test_refusals(self):
        self.new_app("refuse", ("1.0.0", None), ("1.1.0", None))
        gen = self.channel("refuse")["generation"]
        self.pull("refuse", "1.1.0", key=self.build_key, expect=403)
        self.pull("refuse", "9.9.9", expect=404)
        self.pull("no-such-app", "1.0.0", expect=404)
        for bad in ("1.0", "v1.0.0", "1.0.0-" + "a" * 70):
            self.pull("refuse", bad, expect=400)
        for body in ({"reason": 7}, {"reason": "x" * 1025}, {"why": "x"}, [], "{"):
            self.pull("refuse", "1.1.0", body=body, expect=400)
        status, _, _ = self.env.api_raw("GET", "/v1/apps/refuse/releases/1.1.0/pull", key=self.admin)
        self.assertEqual(status, 405)
        status, _, _ = self.env.api_raw("POST", "/v1/apps/refuse/releases/1.1.0/pull")
        self.assertEqual(status, 401)
        self.assertEqual(self.channel("refuse")["generation"], gen, "no refusal changed anything")
        # no body at all, an empty one and a null reason are fine; the admin role may pull too
        status, _, data = self.env.api_raw("POST", "/v1/apps/refuse/releases/1.1.0/pull", key=self.admin)
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["stable"], "1.0.0")
        self.register("refuse", "1.2.0")
        self.pull("refuse", "1.2.0", body={"reason": None})
        self.assertEqual(self.channel("refuse")["generation"], gen + 3)

    def test_metrics_count_pulls_under_their_own_route(self):
        self.new_app("metric", ("1.0.0", None))
        self.pull("metric", "1.0.0")
        status, _, body = self.env.http("GET", "/metrics", base=self.control)
        self.assertEqual(status, 200)
        self.assertRegex(body.decode(), r'route="pull"')


class PullCliTest(PullStack):
    """`updraft releases pull` against a real control plane."""

    env_name = "test_pull_cli"
    keys = (("admin", "admin", "cli"),)

    def cli(self, *args, expect=0):
        r = self.env.run("updraft", "--server", self.control.url, "--api-key", self.admin, *args)
        self.assertEqual(r.returncode, expect, "updraft %s\nstdout: %s\nstderr: %s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def test_releases_pull_prints_the_channel_and_the_propagation(self):
        self.cli("apps", "create", "cli-pull")
        for version, rollout in (("1.0.0", None), ("1.1.0-Beta.1", 10)):
            f = self.env.put_artifact("cli-pull", version, "App-Setup-%s.exe" % version, os.urandom(500))
            status, doc = self.env.register_release(self.admin, "cli-pull", version, [dict(f, platform="windows", arch="x64")],
                                                    rollout=rollout)
            self.assertEqual(status, 201, doc)
        out = self.cli("releases", "pull", "cli-pull", "1.1.0-Beta.1", "--reason", "Crashes on start").stdout
        self.assertRegex(out, r"(?m)^pulled cli-pull 1\.1\.0-Beta\.1 from channel latest$")
        self.assertRegex(out, r"(?m)^cli-pull/latest \(generation 3\)$")
        self.assertRegex(out, r"(?m)^stable: +1\.0\.0$")
        self.assertRegex(out, r"(?m)^rollout: +none$")
        self.assertRegex(out, r"(?m)^  1\.1\.0-Beta\.1 .* PULLED \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: Crashes on start$")
        self.assertRegex(out, r"(?m)^propagation of generation 3:$")
        self.assertRegex(out, r"(?m)^purge varnish %s: ok \(\d+ ms\)$" % re.escape(self.varnish.url))
        self.assertEqual(self.varnish.last("cli-pull"), "app:cli-pull chan:cli-pull/latest rel:cli-pull/1.1.0-beta.1 rel:cli-pull/1.0.0")
        # channel show marks it too; pulling again is refused (exit 1) with the server's reason
        self.assertRegex(self.cli("channel", "show", "cli-pull", "latest").stdout, r"(?m)^  1\.1\.0-Beta\.1 .* PULLED ")
        r = self.cli("releases", "pull", "cli-pull", "1.1.0-Beta.1", expect=1)
        self.assertIn("pulled", r.stderr)
        self.cli("releases", "pull", "cli-pull", "7.0.0", expect=1)
        # --json: the answer as received
        doc = json.loads(self.cli("--json", "releases", "pull", "cli-pull", "1.0.0").stdout)
        self.assertEqual((doc["stable"], doc["generation"], doc["propagation"]["generation"]), (None, 4, 4))

    def test_usage_errors_are_exit_2(self):
        for args in (("releases", "pull"), ("releases", "pull", "app"), ("releases", "pull", "app", "1.0"),
                     ("releases", "pull", "App_x", "1.0.0"), ("releases", "pull", "app", "1.0.0", "extra"),
                     ("releases", "pull", "app", "1.0.0", "--reason"), ("releases", "pull", "app", "1.0.0", "--force")):
            self.cli(*args, expect=2)
        self.assertIn("updraft releases pull APP VERSION [--reason TEXT]", self.cli("releases", "--help").stdout)


if __name__ == "__main__":
    unittest.main()
