#!/usr/bin/env python3
"""Story: an operator manages apps, releases and rollouts through the control API and the CLI.

API keys and roles, apps, release registration checked against storage (422 registers nothing),
version conflicts, rollout changes and their validation, the channel view, and the `updraft` CLI
doing the same with its exit codes (0 done, 1 refused, 2 usage, 3 unreachable).
PROTOCOLS.md "Control API (updraft-control), version 1".
"""
import json
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class ControlApiTest(harness.StackTest):
    env_name = "test_control"
    programs = ("origin", "control")
    keys = (("admin", "admin", "ops"), ("release_key", "release", "ci-release"), ("build_key", "build", "ci-build"))

    def api(self, method, path, body=None, key=None, expect=None):
        status, doc = self.env.api(method, path, body, key=self.admin if key is None else key)
        if expect is not None:
            self.assertEqual(status, expect, "%s %s %r: %r" % (method, path, body, doc))
        return status, doc

    def assert_error(self, status, doc, expect):
        self.assertEqual(status, expect, doc)
        self.assertIsInstance(doc, dict, "error body is JSON")
        self.assertIsInstance(doc.get("error", {}).get("code"), str, doc)
        self.assertIsInstance(doc["error"].get("message"), str, doc)

    def new_app(self, app):
        self.api("POST", "/v1/apps", {"id": app, "name": app.title()}, expect=201)

    def files(self, app, version, n=2):
        out = []
        for i, (suffix, platform) in enumerate((("-Setup.exe", "windows"), ("-mac.zip", "mac"), (".AppImage", "linux"))[:n]):
            f = self.env.put_artifact(app, version, "App-%s%s" % (version, suffix), os.urandom(1000 + i))
            out.append(dict(f, platform=platform, arch="x64"))
        return out

    def release(self, app, version, files=None, rollout=None, expect=201, key=None):
        status, doc = self.env.register_release(key or self.admin, app, version,
                                                files if files is not None else self.files(app, version), rollout=rollout)
        self.assertEqual(status, expect, (app, version, doc))
        return doc

    def channel(self, app, channel="latest"):
        return self.api("GET", "/v1/apps/%s/channels/%s" % (app, channel), expect=200)[1]

    # --- keys ----------------------------------------------------------------------------------

    def test_a_created_key_is_accepted(self):
        self.api("POST", "/v1/apps", {"id": "keyed", "name": "Keyed"}, expect=201)

    def test_a_missing_or_wrong_key_is_401(self):
        status, doc = self.env.api("POST", "/v1/apps", {"id": "nokey", "name": "x"})
        self.assert_error(status, doc, 401)
        status, doc = self.env.api("POST", "/v1/apps", {"id": "nokey", "name": "x"}, key=self.admin[:-2] + "xx")
        self.assert_error(status, doc, 401)
        status, doc = self.env.api("GET", "/v1/apps/keyed/channels/latest", key="not-a-key")
        self.assert_error(status, doc, 401)
        status, _, _ = self.env.api_raw("GET", "/v1/apps/keyed/channels/latest", headers={"Authorization": "Basic " + self.admin})
        self.assertEqual(status, 401)
        status, _, _ = self.env.api_raw("GET", "/v1/apps/keyed/channels/latest", headers={"Authorization": "Bearer "})
        self.assertEqual(status, 401)

    def test_the_build_role_may_only_read(self):
        self.new_app("roles")
        self.release("roles", "1.0.0")
        self.release("roles", "1.1.0", rollout=10)
        status, doc = self.env.api("POST", "/v1/apps", {"id": "by-build", "name": "x"}, key=self.build_key)
        self.assert_error(status, doc, 403)
        status, doc = self.env.register_release(self.build_key, "roles", "1.2.0", self.files("roles", "1.2.0"))
        self.assert_error(status, doc, 403)
        status, doc = self.env.api("PUT", "/v1/apps/roles/channels/latest/rollout", {"percent": 20}, key=self.build_key)
        self.assert_error(status, doc, 403)
        status, doc = self.env.api("GET", "/v1/apps/roles/channels/latest", key=self.build_key)
        self.assertEqual((status, doc["rollout"]["percent"]), (200, 10))

    def test_the_release_role_releases_and_rolls_out_but_does_not_create_apps(self):
        self.new_app("rel-role")
        status, doc = self.env.api("POST", "/v1/apps", {"id": "by-release", "name": "x"}, key=self.release_key)
        self.assert_error(status, doc, 403)
        self.release("rel-role", "1.0.0", key=self.release_key)
        self.release("rel-role", "1.1.0", rollout=5, key=self.release_key)
        status, doc = self.env.api("PUT", "/v1/apps/rel-role/channels/latest/rollout", {"percent": 20}, key=self.release_key)
        self.assertEqual((status, doc["rollout"]["percent"]), (200, 20))

    # --- apps ----------------------------------------------------------------------------------

    def test_creating_an_app_is_201_and_again_409(self):
        status, _ = self.api("POST", "/v1/apps", {"id": "twice", "name": "Twice"})
        self.assertEqual(status, 201)
        status, doc = self.api("POST", "/v1/apps", {"id": "twice", "name": "Twice again"})
        self.assert_error(status, doc, 409)

    def test_a_malformed_app_is_400(self):
        for body in ({"id": "Bad_App", "name": "x"}, {"id": "-lead", "name": "x"}, {"id": "a" * 64, "name": "x"},
                     {"name": "no id"}, {"id": 7, "name": "x"}, [], "{", "", "null"):
            status, doc = self.env.api("POST", "/v1/apps", body, key=self.admin)
            self.assert_error(status, doc, 400)

    # --- releases ------------------------------------------------------------------------------

    def test_a_release_whose_file_size_differs_from_storage_is_422_and_registers_nothing(self):
        self.new_app("size")
        files = self.files("size", "1.0.0")
        self.assert_error(*self.env.register_release(self.admin, "size", "1.0.0", [dict(files[0], size=files[0]["size"] + 1), files[1]]), 422)
        self.assert_nothing_registered("size")
        self.release("size", "1.0.0", files)
        self.assertEqual(self.channel("size")["stable"], "1.0.0")

    def test_a_release_whose_sha512_differs_from_storage_is_422_and_registers_nothing(self):
        self.new_app("digest")
        files = self.files("digest", "1.0.0")
        wrong = harness.sha512_b64(b"something else")
        self.assert_error(*self.env.register_release(self.admin, "digest", "1.0.0", [files[0], dict(files[1], sha512=wrong)]), 422)
        self.assert_nothing_registered("digest")
        self.release("digest", "1.0.0", files)
        self.assertEqual(self.channel("digest")["stable"], "1.0.0")

    def test_a_release_with_a_file_missing_from_storage_is_422_and_registers_nothing(self):
        self.new_app("missing")
        files = self.files("missing", "1.0.0")
        ghost = dict(name="App-1.0.0-ghost.AppImage", size=10, sha512=harness.sha512_b64(b"0123456789"), platform="linux", arch="x64")
        self.assert_error(*self.env.register_release(self.admin, "missing", "1.0.0", files + [ghost]), 422)
        self.assert_nothing_registered("missing")
        self.env.put_artifact("missing", "1.0.0", ghost["name"], b"0123456789")
        self.release("missing", "1.0.0", files + [ghost])
        self.assertEqual([r["version"] for r in self.channel("missing")["releases"]], ["1.0.0"])

    def assert_nothing_registered(self, app):
        status, doc = self.env.api("GET", "/v1/apps/%s/channels/latest" % app, key=self.admin)
        if status == 200:
            self.assertEqual((doc["stable"], doc["rollout"], doc["releases"]), (None, None, []))
        else:
            self.assertEqual(status, 404, doc)
        status, _, _ = self.env.http("GET", "/update/%s/latest.yml" % app)
        self.assertEqual(status, 404)

    def test_registering_the_same_version_twice_is_409(self):
        self.new_app("dup")
        self.release("dup", "1.0.0")
        self.assert_error(*self.env.register_release(self.admin, "dup", "1.0.0", self.files("dup", "1.0.0")), 409)

    def test_registering_a_version_not_newer_than_the_channels_newest_is_409(self):
        self.new_app("older")
        self.release("older", "1.1.0")
        for v in ("1.0.9", "1.1.0-rc.1", "0.9.0"):
            self.assert_error(*self.env.register_release(self.admin, "older", v, self.files("older", v)), 409)
        self.release("older", "1.1.1")
        self.assertEqual(self.channel("older")["stable"], "1.1.1")

    def test_a_release_for_an_unknown_app_is_404(self):
        self.assert_error(*self.env.register_release(self.admin, "ghost-app", "1.0.0", self.files("ghost-app", "1.0.0")), 404)

    def test_a_malformed_release_is_400(self):
        self.new_app("badrel")
        good = self.files("badrel", "1.0.0", n=1)[0]
        for version, files, rollout in (("1.0", [good], None), ("v1.0.0", [good], None),
                                        ("1.0.0", [dict(good, name="../etc")], None),
                                        ("1.0.0", [dict(good, platform="beos")], None),
                                        ("1.0.0", [dict(good, arch="sparc")], None),
                                        ("1.0.0", [dict(good, sha512="not base64")], None),
                                        ("1.0.0", [dict(good, size=-1)], None),
                                        ("1.0.0", [good], {"percent": 101}),
                                        ("1.0.0", [good], {"percent": 10.001})):
            status, doc = self.env.register_release(self.admin, "badrel", version, files, rollout=rollout)
            self.assert_error(status, doc, 400)
        self.assert_nothing_registered("badrel")

    def test_releases_on_a_named_channel_stay_out_of_latest(self):
        self.new_app("chans")
        self.release("chans", "1.0.0")
        status, doc = self.env.api("POST", "/v1/apps/chans/releases", {
            "version": "1.1.0-beta.1", "channel": "beta", "files": self.files("chans", "1.1.0-beta.1")}, key=self.admin)
        self.assertEqual((status, doc.get("channel", {}).get("channel")), (201, "beta"), doc)
        self.assertEqual(self.channel("chans", "beta")["stable"], "1.1.0-beta.1")
        self.assertEqual(self.channel("chans")["stable"], "1.0.0")

    # --- rollouts ------------------------------------------------------------------------------

    def test_rollout_percent_outside_0_100_or_with_three_decimals_is_400(self):
        self.new_app("valid")
        self.release("valid", "1.0.0")
        self.release("valid", "1.1.0", rollout=10)
        for change in ({"percent": 100.001}, {"percent": -1}, {"percent": "abc"}, {"percent": 25.125},
                       {"percent": 101}, {"percent": None}, {"paused": "yes"}, {"countries": ["DEU"]},
                       {"countries": "DE"}, {"pinned": ["bad id!"]}, {"pinned": "client"}):
            status, doc = self.env.api("PUT", "/v1/apps/valid/channels/latest/rollout", change, key=self.admin)
            self.assert_error(status, doc, 400)
        self.assertEqual(self.channel("valid")["rollout"]["percent"], 10)
        status, doc = self.env.api("PUT", "/v1/apps/valid/channels/latest/rollout", {"percent": 25.5}, key=self.admin)
        self.assertEqual((status, doc["rollout"]["percent"]), (200, 25.5))
        self.assertEqual(self.channel("valid")["rollout"]["percent"], 25.5)

    def test_rollout_changes_without_a_rollout_in_progress_are_409(self):
        self.new_app("done")
        self.release("done", "1.0.0")
        for change in ({"percent": 50}, {"paused": True}, {"countries": ["DE"]}):
            status, doc = self.env.api("PUT", "/v1/apps/done/channels/latest/rollout", change, key=self.admin)
            self.assert_error(status, doc, 409)

    def test_changing_the_percent_while_paused_is_409_unless_resuming(self):
        self.new_app("paused")
        self.release("paused", "1.0.0")
        self.release("paused", "1.1.0", rollout=10)
        self.api("PUT", "/v1/apps/paused/channels/latest/rollout", {"paused": True}, expect=200)
        self.assert_error(*self.env.api("PUT", "/v1/apps/paused/channels/latest/rollout", {"percent": 20}, key=self.admin), 409)
        status, doc = self.api("PUT", "/v1/apps/paused/channels/latest/rollout", {"percent": 20, "paused": False}, expect=200)
        self.assertEqual((doc["rollout"]["percent"], doc["rollout"]["paused"]), (20, False))

    def test_rollout_of_an_unknown_app_or_channel_is_404(self):
        self.assert_error(*self.env.api("PUT", "/v1/apps/ghost-app/channels/latest/rollout", {"percent": 5}, key=self.admin), 404)
        self.new_app("nochan")
        self.assert_error(*self.env.api("PUT", "/v1/apps/nochan/channels/beta/rollout", {"percent": 5}, key=self.admin), 404)
        self.assert_error(*self.env.api("GET", "/v1/apps/nochan/channels/beta", key=self.admin), 404)

    def test_100_percent_promotes_the_rollout_to_fully_released(self):
        self.new_app("promote")
        self.release("promote", "1.0.0")
        self.release("promote", "1.1.0", rollout=10)
        status, doc = self.api("PUT", "/v1/apps/promote/channels/latest/rollout", {"percent": 100}, expect=200)
        self.assertEqual((doc["stable"], doc["rollout"]), ("1.1.0", None))
        self.assertEqual(self.channel("promote")["stable"], "1.1.0")

    def test_the_channel_view_has_stable_rollout_pins_and_releases(self):
        self.new_app("shape")
        self.release("shape", "1.0.0")
        created = self.release("shape", "1.1.0", rollout={"percent": 12.5})
        self.assertEqual(created["release"]["version"], "1.1.0")
        self.assertEqual(created["channel"]["rollout"]["percent"], 12.5)
        before = self.channel("shape")["generation"]
        self.api("PUT", "/v1/apps/shape/channels/latest/rollout", {"countries": ["DE", "FR"], "pinned": ["tester-1"]}, expect=200)
        ch = self.channel("shape")
        self.assertLessEqual({"app", "channel", "generation", "stable", "rollout", "pinned", "releases"}, set(ch))
        self.assertEqual((ch["app"], ch["channel"], ch["stable"]), ("shape", "latest", "1.0.0"))
        self.assertIsInstance(ch["generation"], int)
        self.assertGreater(ch["generation"], before)
        r = ch["rollout"]
        self.assertLessEqual({"version", "percent", "paused", "countries", "pinned", "seed"}, set(r))
        self.assertEqual((r["version"], r["percent"], r["paused"], r["countries"], r["pinned"]),
                         ("1.1.0", 12.5, False, ["DE", "FR"], ["tester-1"]))
        self.assertEqual(ch["pinned"], ["tester-1"])
        self.assertEqual(sorted(x["version"] for x in ch["releases"]), ["1.0.0", "1.1.0"])
        for x in ch["releases"]:
            self.assertTrue({"version", "pub_date", "files", "clients_offered"} <= set(x), x)
            self.assertEqual(x["clients_offered"], 0)
            self.assertEqual(len(x["files"]), 2)
            self.assertTrue({"name", "platform", "arch", "size", "sha512"} <= set(x["files"][0]), x["files"][0])
        for x in ch["releases"]:
            self.assertIn("notes", x, "a release without notes shows notes: null")
            self.assertIsNone(x["notes"])


class CliTest(harness.StackTest):
    """The `updraft` CLI against a real control plane."""

    env_name = "test_control_cli"
    programs = ("origin", "control")
    keys = (("admin", "admin", "cli"), ("build_key", "build", "cli-build"))

    def cli(self, *args, expect=0, key=None, server=None, env=None):
        argv = ["--server", server or self.control.url, "--api-key", key or self.admin] if env is None else []
        r = self.env.run("updraft", *(argv + list(args)), env=env)
        self.assertEqual(r.returncode, expect, "updraft %s\nstdout: %s\nstderr: %s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def channel(self, app, channel="latest"):
        status, doc = self.env.api("GET", "/v1/apps/%s/channels/%s" % (app, channel), key=self.admin)
        self.assertEqual(status, 200, doc)
        return doc

    def put_files(self, app, version):
        files = []
        for name, platform in (("App-Setup-%s.exe", "windows"), ("App-%s-mac.zip", "mac")):
            files.append(dict(self.env.put_artifact(app, version, name % version, os.urandom(1500)), platform=platform, arch="x64"))
        return files

    def release_json(self, app, version, rollout=None):
        body = {"version": version, "channel": "latest", "notes": "From the CLI", "files": self.put_files(app, version)}
        if rollout is not None:
            body["rollout"] = {"percent": rollout}
        path = os.path.join(self.env.dir, "release-%s-%s.json" % (app, version))
        with open(path, "w") as f:
            json.dump(body, f)
        return path

    def test_apps_create_creates_the_app_and_again_is_refused(self):
        self.cli("apps", "create", "cli-app", "--name", "CLI App")
        status, _ = self.env.api("POST", "/v1/apps", {"id": "cli-app", "name": "x"}, key=self.admin)
        self.assertEqual(status, 409)
        self.cli("apps", "create", "cli-app", expect=1)

    def test_server_and_key_come_from_the_environment(self):
        env = {"UPDRAFT_SERVER": self.control.url, "UPDRAFT_API_KEY": self.admin}
        self.cli("apps", "create", "env-app", env=env)
        status, _ = self.env.api("POST", "/v1/apps", {"id": "env-app", "name": "x"}, key=self.admin)
        self.assertEqual(status, 409)
        self.cli("apps", "create", "env-app2", env={"UPDRAFT_SERVER": self.control.url, "UPDRAFT_API_KEY": "wrong"}, expect=1)

    def test_releases_create_from_a_file_registers_the_release(self):
        self.cli("apps", "create", "file-app")
        self.cli("releases", "create", "file-app", "--file", self.release_json("file-app", "1.0.0"))
        ch = self.channel("file-app")
        self.assertEqual((ch["stable"], [r["notes"] for r in ch["releases"]]), ("1.0.0", ["From the CLI"]))
        self.cli("releases", "create", "file-app", "--file", self.release_json("file-app", "1.0.0"), expect=1)
        self.cli("releases", "create", "file-app", "--file", os.path.join(self.env.dir, "no-such.json"), expect=2)

    def test_releases_create_from_artifacts_computes_size_and_sha512(self):
        self.cli("apps", "create", "art-app")
        self.cli("releases", "create", "art-app", "--file", self.release_json("art-app", "1.0.0"))
        data = os.urandom(2222)
        self.env.put_artifact("art-app", "1.1.0", "App-Setup-1.1.0.exe", data)
        local = os.path.join(self.env.dir, "local-App-Setup-1.1.0.exe")
        with open(local, "wb") as f:
            f.write(data)
        self.cli("releases", "create", "art-app", "--version", "1.1.0", "--rollout", "20", "--notes", "Art",
                 "--artifact", "App-Setup-1.1.0.exe:windows:x64:" + local)
        ch = self.channel("art-app")
        self.assertEqual((ch["rollout"]["version"], ch["rollout"]["percent"]), ("1.1.0", 20))
        f = [r for r in ch["releases"] if r["version"] == "1.1.0"][0]["files"][0]
        self.assertEqual((f["size"], f["sha512"]), (len(data), harness.sha512_b64(data)))

    def test_rollout_commands_change_the_channel(self):
        self.cli("apps", "create", "roll-app")
        self.cli("releases", "create", "roll-app", "--file", self.release_json("roll-app", "1.0.0"))
        self.cli("releases", "create", "roll-app", "--file", self.release_json("roll-app", "1.1.0", rollout=10))
        self.cli("rollout", "set", "roll-app", "latest", "35.5")
        self.assertEqual(self.channel("roll-app")["rollout"]["percent"], 35.5)
        self.cli("rollout", "pause", "roll-app", "latest")
        self.assertTrue(self.channel("roll-app")["rollout"]["paused"])
        self.cli("rollout", "set", "roll-app", "latest", "40", expect=1)
        self.cli("rollout", "resume", "roll-app", "latest")
        self.assertFalse(self.channel("roll-app")["rollout"]["paused"])
        self.cli("rollout", "set", "roll-app", "latest", "40")
        self.assertEqual(self.channel("roll-app")["rollout"]["percent"], 40)
        self.cli("rollout", "countries", "roll-app", "latest", "DE", "FR")
        self.assertEqual(self.channel("roll-app")["rollout"]["countries"], ["DE", "FR"])
        self.cli("rollout", "countries", "roll-app", "latest")
        self.assertEqual(self.channel("roll-app")["rollout"]["countries"], [])
        self.cli("rollout", "pin", "roll-app", "latest", "client-a", "client-b")
        self.assertEqual(self.channel("roll-app")["pinned"], ["client-a", "client-b"])
        self.cli("rollout", "pin", "roll-app", "latest")
        self.assertEqual(self.channel("roll-app")["pinned"], [])
        self.cli("rollout", "halt", "roll-app", "latest")
        ch = self.channel("roll-app")
        self.assertEqual((ch["rollout"]["version"], ch["rollout"]["percent"], ch["stable"]), ("1.1.0", 0, "1.0.0"))
        self.cli("rollout", "set", "roll-app", "latest", "100")
        self.assertEqual((self.channel("roll-app")["stable"], self.channel("roll-app")["rollout"]), ("1.1.0", None))

    def test_channel_show_prints_the_channel(self):
        self.cli("apps", "create", "show-app")
        self.cli("releases", "create", "show-app", "--file", self.release_json("show-app", "1.0.0"))
        self.cli("releases", "create", "show-app", "--file", self.release_json("show-app", "1.1.0", rollout=12.5))
        out = self.cli("channel", "show", "show-app", "latest").stdout
        for text in ("1.0.0", "1.1.0", "12.5"):
            self.assertIn(text, out)
        r = self.env.run("updraft", "--server", self.control.url, "--api-key", self.admin, "--json", "channel", "show",
                         "show-app", "latest")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual((doc["stable"], doc["rollout"]["percent"]), ("1.0.0", 12.5))
        self.cli("channel", "show", "no-such-app", "latest", expect=1)

    def test_the_server_refusing_is_exit_1(self):
        self.cli("apps", "create", "refused-app", key=self.build_key, expect=1)
        self.cli("apps", "create", "refused-app", key="bad-key", expect=1)
        self.cli("rollout", "set", "no-such-app", "latest", "5", expect=1)

    def test_usage_errors_are_exit_2_and_change_nothing(self):
        self.cli("rollout", "set", "usage-app", "latest", "100.001", expect=2)
        self.cli("rollout", "set", "usage-app", "latest", "abc", expect=2)
        self.cli("rollout", "set", "usage-app", expect=2)
        self.cli("apps", "frobnicate", expect=2)
        self.cli("no-such-command", expect=2)
        self.cli("apps", "create", "usage-app", env={"UPDRAFT_API_KEY": self.admin}, expect=2)  # no server
        status, _ = self.env.api("POST", "/v1/apps", {"id": "usage-app", "name": "x"}, key=self.admin)
        self.assertEqual(status, 201, "no usage error reached the server")

    def test_an_unreachable_server_is_exit_3(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        self.cli("apps", "create", "unreachable", server="http://127.0.0.1:%d" % port, expect=3)


if __name__ == "__main__":
    unittest.main()
