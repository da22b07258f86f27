#!/usr/bin/env python3
"""The `updraft` CLI's commands for the control plane's records, against a real control plane with two
s3rvers standing in for R2 and S3: signing in (POST /v1/login) with the credentials file it saves,
members, API keys, drafts and publishing, the audit trail and backups (docs/control-api.md).

Each test runs the CLI with a HOME and an XDG_CONFIG_HOME of its own and with UPDRAFT_SERVER,
UPDRAFT_API_KEY and UPDRAFT_TIMEOUT empty, so that only what the test names is used.
"""
import json
import os
import re
import stat
import tempfile
import time
import unittest

import harness

KEY_RE = re.compile(r"^upd_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")


class CliRecordsTest(harness.StackTest):
    env_name = "test_cli_records"
    s3rvers = ("r2", "s3")
    programs = ("origin", "control")
    keys = (("admin", "admin", "cli-records"),)
    apps = (("acme", "Acme"), ("beta-app", "Beta"))

    @classmethod
    def control_args(cls):
        return ("--config", cls.env.object_store_config(cls.r2, cls.s3))

    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="home-", dir=self.env.dir)
        self.xdg = os.path.join(self.home, "xdg")
        self.credentials = os.path.join(self.xdg, "updraft", "credentials")

    # --- running the CLI ----------------------------------------------------------------------

    def bare(self, *args, expect=0, input=None, env=None):
        """updraft ARGS with nothing but what the test gives (and the test's own credentials file)."""
        e = {"HOME": self.home, "XDG_CONFIG_HOME": self.xdg, "UPDRAFT_SERVER": "", "UPDRAFT_API_KEY": "", "UPDRAFT_TIMEOUT": ""}
        e.update(env or {})
        r = self.env.run("updraft", *args, env=e, input=input if input is not None else "")
        self.assertEqual(r.returncode, expect, "updraft %s\nstdout: %s\nstderr: %s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def cli(self, *args, expect=0, key=None):
        """updraft --server CONTROL --api-key KEY ARGS (the admin key by default)."""
        return self.bare("--server", self.control.url, "--api-key", key or self.admin, *args, expect=expect)

    def cli_json(self, *args, key=None):
        return json.loads(self.cli("--json", *args, key=key).stdout)

    def new_key(self, *args, key=None):
        """keys create ARGS: (the key, its id); asserts the key alone is on stdout."""
        r = self.cli("keys", "create", *args, key=key)
        m = KEY_RE.match(r.stdout.rstrip("\n"))
        self.assertIsNotNone(m, "stdout holds the key alone: %r" % r.stdout)
        self.assertEqual(r.stdout.count("\n"), 1)
        self.assertIn("will not be shown again", r.stderr)
        return r.stdout.strip(), m.group(1)

    def stage(self, app, version, name):
        """A file staged in storage, and its local copy for --artifact."""
        data = os.urandom(4096)
        self.env.put_artifact(app, version, name, data)
        local = os.path.join(self.env.dir, "local-%s-%s-%s" % (app, version, name))
        with open(local, "wb") as f:
            f.write(data)
        return "%s:windows:x64:%s" % (name, local)

    def channel(self, app, channel="latest"):
        status, doc = self.env.api("GET", "/v1/apps/%s/channels/%s" % (app, channel), key=self.admin)
        self.assertEqual(status, 200, doc)
        return doc

    # --- signing in -----------------------------------------------------------------------------

    def test_login_saves_the_key_for_the_owner_only_and_commands_then_use_it(self):
        r = self.bare("login", "--server", self.control.url, "--api-key", self.admin)
        self.assertIn("signed in to %s with key %s" % (self.control.url, self.admin[4:20]), r.stdout)
        self.assertIn("(scope: admin on *)", r.stdout)
        self.assertIn("credentials saved to %s" % self.credentials, r.stdout)
        self.assertNotIn(self.admin, r.stdout + r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(self.credentials).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.credentials)).st_mode), 0o700)
        with open(self.credentials) as f:
            self.assertEqual(json.load(f), {"server": self.control.url, "api_key": self.admin})
        # no option, no environment: the saved server and key
        self.assertIn("members", json.loads(self.bare("--json", "members", "list").stdout))
        self.bare("logout")
        self.assertFalse(os.path.exists(self.credentials))
        self.bare("members", "list", expect=2)

    def test_login_reads_a_member_key_from_stdin_and_names_the_member(self):
        self.cli("members", "create", "lena", "--name", "Lena", "--role", "release")
        key, key_id = self.new_key("--name", "lena-laptop", "--member", "lena", "--role", "release")
        r = self.bare("login", "--server", self.control.url, input=key + "\n")
        self.assertIn("signed in to %s as lena, with key %s \"lena-laptop\"" % (self.control.url, key_id), r.stdout)
        self.assertIn("roles:     *=release", r.stdout)
        with open(self.credentials) as f:
            self.assertEqual(json.load(f)["api_key"], key)

    def test_login_with_a_revoked_key_is_refused_and_saves_nothing(self):
        key, key_id = self.new_key("--name", "short-lived", "--app", "acme", "--role", "build")
        self.cli("keys", "revoke", key_id)
        r = self.bare("login", "--server", self.control.url, "--api-key", key, expect=1)
        self.assertIn("updraft: revoked: ", r.stderr)
        self.assertFalse(os.path.exists(self.credentials))

    def test_login_is_recorded_in_the_audit_trail(self):
        key, key_id = self.new_key("--name", "audited-login", "--app", "acme", "--role", "build")
        self.bare("login", "--server", self.control.url, "--api-key", key)
        doc = self.cli_json("audit", "--action", "auth.sign_in", "--actor", key_id)
        self.assertGreaterEqual(len(doc["records"]), 1, doc)
        self.assertTrue(all(rec["action"] == "auth.sign_in" for rec in doc["records"]))

    # --- members --------------------------------------------------------------------------------

    def test_members_are_created_listed_changed_and_removed(self):
        r = self.cli("members", "create", "alice", "--name", "Alice Example", "--email", "alice@example.com", "--role", "build")
        self.assertIn("created member alice", r.stdout)
        self.assertIn("*=build", r.stdout)
        listing = self.cli("members", "list").stdout
        self.assertRegex(listing, r"(?m)^ID\s+NAME\s+EMAIL\s+ROLES\s+CREATED$")
        self.assertRegex(listing, r"(?m)^alice\s+Alice Example\s+alice@example.com\s+\*=build\s+\d{4}-\d\d-\d\dT")

        self.cli("members", "set-role", "alice", "release", "--app", "acme")
        self.assertEqual(self.cli_json("members", "show", "alice")["roles"], {"*": "build", "acme": "release"})
        self.cli("members", "unset-role", "alice")
        self.assertEqual(self.cli_json("members", "show", "alice")["roles"], {"acme": "release"})

        _, key_id = self.new_key("--name", "alice-ci", "--member", "alice", "--app", "acme", "--role", "build")
        shown = self.cli("members", "show", "alice").stdout
        self.assertIn("keys:", shown)
        self.assertIn(key_id, shown)

        r = self.cli("members", "remove", "alice")
        self.assertIn("removed member alice; 1 of their keys revoked", r.stdout)
        self.cli("members", "show", "alice", expect=1)

    def test_members_refusals_are_printed_as_code_and_message(self):
        self.cli("members", "create", "dup")
        r = self.cli("members", "create", "dup", expect=1)
        self.assertRegex(r.stderr, r"^updraft: exists: .+ \(HTTP 409\)")
        r = self.cli("members", "create", "ghost", "--role", "build", "--app", "no-such-app", expect=1)
        self.assertRegex(r.stderr, r"^updraft: unknown_app: .+ \(HTTP 422\)")

    def test_a_build_key_cannot_manage_members(self):
        key, _ = self.new_key("--name", "acme-build", "--app", "acme", "--role", "build")
        r = self.cli("members", "list", key=key, expect=1)
        self.assertIn("(HTTP 403)", r.stderr)

    # --- keys -----------------------------------------------------------------------------------

    def test_keys_are_created_once_listed_without_secrets_and_revoked(self):
        key, key_id = self.new_key("--name", "deploy", "--app", "acme", "--role", "release")
        listing = self.cli("keys", "list").stdout
        self.assertRegex(listing, r"(?m)^ID\s+NAME\s+MEMBER\s+APP\s+ROLE\s+CREATED\s+EXPIRES\s+LAST USED\s+REVOKED$")
        self.assertRegex(listing, r"(?m)^%s\s+deploy\s+\(service\)\s+acme\s+release\s" % key_id)
        self.assertNotIn(key.split("_")[2], listing)

        self.cli("releases", "list", "acme", key=key)  # the key works
        r = self.cli("keys", "revoke", key_id)
        self.assertIn("revoked key %s \"deploy\"" % key_id, r.stdout)
        r = self.cli("releases", "list", "acme", key=key, expect=1)
        self.assertIn("updraft: revoked: ", r.stderr)
        revoked = [k for k in self.cli_json("keys", "list")["keys"] if k["id"] == key_id][0]
        self.assertIsInstance(revoked["revoked"], int)

    def test_keys_expire_after_the_duration_given(self):
        before = int(time.time())
        _, key_id = self.new_key("--name", "half-hour", "--app", "acme", "--role", "build", "--expires", "30m")
        listing = [k for k in self.cli_json("keys", "list")["keys"] if k["id"] == key_id][0]
        self.assertGreaterEqual(listing["expires"], before + 1800)
        self.assertLessEqual(listing["expires"], int(time.time()) + 1800)

    def test_keys_list_of_one_member(self):
        self.cli("members", "create", "mia", "--role", "build")
        _, key_id = self.new_key("--name", "mia-1", "--member", "mia")
        doc = self.cli_json("keys", "list", "--member", "mia")
        self.assertEqual([k["id"] for k in doc["keys"]], [key_id])

    # --- drafts and publishing ------------------------------------------------------------------

    def test_a_draft_is_offered_to_nobody_until_published(self):
        artifact = self.stage("acme", "2.0.0", "Acme-Setup-2.0.0.exe")
        r = self.cli("releases", "create", "acme", "--version", "2.0.0", "--draft", "--notes", "Big one", "--artifact", artifact)
        self.assertIn("registered draft acme 2.0.0 (offered to nobody until published)", r.stdout)
        self.assertIn("publish it with: updraft releases publish acme 2.0.0 --channel CHANNEL", r.stdout)
        # offered nowhere: the channel has no such release (or no release at all yet)
        status, doc = self.env.api("GET", "/v1/apps/acme/channels/latest", key=self.admin)
        self.assertIn(status, (200, 404), doc)
        self.assertNotIn("2.0.0", [x["version"] for x in (doc.get("releases") or [])] if status == 200 else [])

        self.assertRegex(self.cli("releases", "list", "acme").stdout, r"(?m)^2\.0\.0\s+-\s+draft\s")
        shown = self.cli_json("releases", "show", "acme", "2.0.0")
        self.assertTrue(shown["draft"])

        r = self.cli("releases", "publish", "acme", "2.0.0", "--channel", "latest", "--rollout", "25")
        self.assertIn("published acme 2.0.0 on channel latest", r.stdout)
        ch = self.channel("acme")
        self.assertEqual((ch["rollout"] or {}).get("version") or ch["stable"], "2.0.0")
        self.assertFalse(self.cli_json("releases", "show", "acme", "2.0.0")["draft"])
        self.assertRegex(self.cli("releases", "list", "acme").stdout, r"(?m)^2\.0\.0\s+latest\s+published\s")
        r = self.cli("releases", "publish", "acme", "2.0.0", "--channel", "latest", expect=1)
        self.assertIn("exists", r.stderr)
        self.assertIn("(HTTP 409)", r.stderr)

    def test_a_build_key_registers_drafts_but_cannot_publish(self):
        key, _ = self.new_key("--name", "beta-build", "--app", "beta-app", "--role", "build")
        artifact = self.stage("beta-app", "1.0.0", "Beta-Setup-1.0.0.exe")
        r = self.cli("releases", "create", "beta-app", "--version", "1.0.0", "--channel", "latest", "--artifact", artifact,
                     key=key, expect=1)
        self.assertIn("(HTTP 403)", r.stderr)
        self.cli("releases", "create", "beta-app", "--version", "1.0.0", "--draft", "--artifact", artifact, key=key)
        r = self.cli("releases", "publish", "beta-app", "1.0.0", "--channel", "latest", key=key, expect=1)
        self.assertIn("(HTTP 403)", r.stderr)
        self.assertIn("release", r.stderr)
        self.cli("releases", "publish", "beta-app", "1.0.0", "--channel", "latest")

    # --- the audit trail ------------------------------------------------------------------------

    def test_audit_prints_a_table_filters_and_pages(self):
        self.cli("members", "create", "audited-a")
        self.cli("members", "create", "audited-b")
        table = self.cli("audit", "--action", "member.create").stdout
        self.assertRegex(table, r"(?m)^SEQ\s+TIME\s+ACTOR\s+ACTION\s+TARGET\s+OUTCOME$")
        self.assertRegex(table, r"(?m)^\d+\s+\S+\s+key %s\s+member\.create\s+.*\bok$" % self.admin[4:20])

        doc = self.cli_json("audit", "--action", "member.create")
        self.assertTrue(doc["records"] and all(rec["action"] == "member.create" for rec in doc["records"]), doc)
        seqs = [rec["seq"] for rec in doc["records"]]
        self.assertEqual(seqs, sorted(seqs, reverse=True), "newest first")

        page = self.cli_json("audit", "--limit", "1")
        self.assertEqual(len(page["records"]), 1)
        self.assertIsInstance(page["next_before"], int)
        self.assertIn("--before %d" % page["next_before"], self.cli("audit", "--limit", "1").stdout)
        older = self.cli_json("audit", "--limit", "2", "--before", str(page["next_before"]))
        self.assertTrue(all(rec["seq"] < page["next_before"] for rec in older["records"]), older)

    def test_audit_shows_refusals(self):
        self.bare("--server", self.control.url, "--api-key", "upd_0000000000000000_" + "F" * 43, "members", "list", expect=1)
        doc = self.cli_json("audit", "--outcome", "denied", "--limit", "5")
        self.assertTrue(doc["records"] and all(rec["outcome"] == "denied" for rec in doc["records"]), doc)
        since = self.cli_json("audit", "--since", "2000-01-01T00:00:00Z", "--limit", "1")
        self.assertEqual(len(since["records"]), 1)

    # --- backups --------------------------------------------------------------------------------

    def test_a_backup_started_now_is_listed(self):
        r = self.cli("backups", "now")
        m = re.match(r"^backup (\S+) started; 'updraft backups list' shows it once it is written$", r.stdout.strip())
        self.assertIsNotNone(m, r.stdout)
        backup_id = m.group(1)
        doc = harness.poll(lambda: self.cli_json("backups", "list"),
                           lambda d: any(b["id"] == backup_id for b in d["backups"]), timeout=30)
        b = [b for b in doc["backups"] if b["id"] == backup_id][0]
        self.assertTrue(b["good"], b)
        table = self.cli("backups", "list").stdout
        self.assertRegex(table, r"(?m)^ID\s+TIME\s+SIZE\s+SCHEMA\s+AUDIT HEAD\s+GOOD$")
        self.assertRegex(table, r"(?m)^%s\s" % re.escape(backup_id))


if __name__ == "__main__":
    unittest.main()
