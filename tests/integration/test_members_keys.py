#!/usr/bin/env python3
"""Story: an admin manages the team's members and their API keys; keys do what their owner may.

Members hold roles per app and account-wide; a key's role on an app is its scope intersected with
its owner's roles at the time of the request, so changing or removing a member changes their keys at
once. A revoked key is refused on the very next request (401 "revoked"), an expired one with 401
"expired"; removing a member revokes their keys. A key may sign in (POST /v1/login) whatever its role
and scope, and may create a key for its own member within its own scope. Listings never show a
secret or its hash; the host command creates keys of members and apps, recorded as the host. Every
one of these calls leaves an audit record. docs/control-api.md "Members", "API keys", "Sign-in".
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

LISTING = {"id", "name", "member", "app", "role", "created", "expires", "revoked", "last_used"}


def _unescape(line):
    """A value of mdb_dump -p: printable bytes as they are, a backslash doubled, others as \\XX hex."""
    out, i = bytearray(), 0
    while i < len(line):
        if line[i] == "\\":
            if line[i + 1] == "\\":
                out.append(0x5C)
                i += 2
            else:
                out.append(int(line[i + 1:i + 3], 16))
                i += 3
        else:
            out += line[i].encode()
            i += 1
    return bytes(out)


def audit_records(data_dir):
    """Every record of the audit sub-database, oldest first (read with mdb_dump beside the running control plane)."""
    r = subprocess.run(["mdb_dump", "-p", "-s", "audit", os.path.join(data_dir, "lmdb")], capture_output=True, text=True,
                       check=True)
    lines = r.stdout.split("\n")
    data = lines[lines.index("HEADER=END") + 1:lines.index("DATA=END")]
    return [json.loads(_unescape(v[1:])) for v in data[1::2]]


class MembersKeysTest(harness.StackTest):
    env_name = "test_members_keys"
    programs = ("origin", "control")
    keys = (("admin", "admin", "ops"),)
    apps = (("acme", "Acme"), ("beta", "Beta"))

    def api(self, method, path, body=None, key=None, expect=None):
        status, doc = self.env.api(method, path, body, key=self.admin if key is None else key)
        if expect is not None:
            self.assertEqual(status, expect, "%s %s %r: %r" % (method, path, body, doc))
        return status, doc

    def assert_refused(self, answer, status, code):
        self.assertEqual(answer[0], status, answer)
        self.assertEqual(answer[1]["error"]["code"], code, answer)
        return answer[1]["error"]["message"]

    def member(self, id, roles, **fields):
        return self.api("POST", "/v1/members", dict(fields, id=id, roles=roles), expect=201)[1]

    def key(self, creator=None, expect=201, **fields):
        """POST /v1/keys; returns (secret, listing)."""
        status, doc = self.api("POST", "/v1/keys", dict(fields), key=creator, expect=expect)
        return doc.pop("key"), doc

    def audit(self, **match):
        """The audit records that match: actor_NAME and target_NAME fields, the others at the top."""
        def field(r, k):
            for part in ("actor", "target"):
                if k.startswith(part + "_"):
                    return r[part].get(k[len(part) + 1:])
            return r.get(k)
        return [r for r in audit_records(self.env.data) if all(field(r, k) == v for k, v in match.items())]

    # --- members -------------------------------------------------------------------------------

    def test_a_member_is_created_listed_updated_and_removed_with_roles_merged(self):
        doc = self.member("ann", {"*": "build", "acme": "release"}, name="Ann", email="ann@example.com")
        self.assertEqual(doc, dict(doc, id="ann", name="Ann", email="ann@example.com", roles={"*": "build", "acme": "release"}))
        self.assertIsInstance(doc["created"], int)
        self.assert_refused(self.api("POST", "/v1/members", {"id": "ann", "roles": {}}), 409, "exists")
        self.assert_refused(self.api("POST", "/v1/members", {"id": "zed", "roles": {"nope": "build"}}), 422, "unknown_app")
        for bad in ({"id": "Bad Id", "roles": {}}, {"id": "zed", "roles": {"*": "owner"}}, {"id": "zed", "roles": []},
                    {"id": "zed", "email": "not-an-address"}, {"id": "zed", "extra": 1}):
            self.assert_refused(self.api("POST", "/v1/members", bad), 400, "invalid")
        self.assertIn("ann", [m["id"] for m in self.api("GET", "/v1/members", expect=200)[1]["members"]])
        doc = self.api("PATCH", "/v1/members/ann", {"roles": {"acme": None, "beta": "admin"}, "name": "Ann B."}, expect=200)[1]
        self.assertEqual((doc["roles"], doc["name"]), ({"*": "build", "beta": "admin"}, "Ann B."))
        self.assertEqual(self.api("GET", "/v1/members/ann", expect=200)[1]["keys"], [])
        self.assertEqual(self.api("DELETE", "/v1/members/ann", expect=200)[1],
                         {"member": "ann", "removed": True, "keys_revoked": 0})
        self.assert_refused(self.api("GET", "/v1/members/ann"), 404, "not_found")
        self.assertEqual([r["outcome"] for r in self.audit(target_member="ann", action="member.create")], ["ok", "failed"])
        (update,) = self.audit(target_member="ann", action="member.update")
        self.assertEqual(update["detail"]["roles"], {"*": "build", "beta": "admin"})
        self.assertEqual(len(self.audit(target_member="ann", action="member.remove", outcome="ok")), 1)

    def test_a_members_key_does_what_the_member_may_and_follows_changes_at_once(self):
        self.member("bob", {"acme": "release"})
        bob, listing = self.key(name="bob's laptop", member="bob")
        self.assertEqual((listing["member"], listing["app"], listing["role"]), ("bob", "*", "admin"))
        self.api("GET", "/v1/apps/acme/releases", key=bob, expect=200)
        self.assert_refused(self.api("GET", "/v1/apps/beta/releases", key=bob), 404, "not_found")
        message = self.assert_refused(self.api("POST", "/v1/apps", {"id": "bobs"}, key=bob), 403, "forbidden")
        self.assertIn("admin role account-wide", message)
        message = self.assert_refused(self.api("PUT", "/v1/apps/acme/channels/latest/rollout", {"percent": 5}, key=bob), 404,
                                      "not_found")  # no channel yet: the role sufficed
        self.api("PATCH", "/v1/members/bob", {"roles": {"acme": "build"}}, expect=200)
        message = self.assert_refused(self.api("PUT", "/v1/apps/acme/channels/latest/rollout", {"percent": 5}, key=bob), 403,
                                      "forbidden")
        self.assertIn("release role on app acme; the key has build there", message)
        self.api("PATCH", "/v1/members/bob", {"roles": {"acme": None}}, expect=200)
        self.assert_refused(self.api("GET", "/v1/apps/acme/releases", key=bob), 404, "not_found")

    def test_a_service_key_names_one_app_and_a_role(self):
        self.assert_refused(self.api("POST", "/v1/keys", {"name": "ci"}), 400, "invalid")
        self.assert_refused(self.api("POST", "/v1/keys", {"name": "ci", "app": "*", "role": "build"}), 400, "invalid")
        self.assert_refused(self.api("POST", "/v1/keys", {"name": "ci", "app": "nope", "role": "build"}), 422, "unknown_app")
        self.assert_refused(self.api("POST", "/v1/keys", {"name": "ci", "member": "nobody"}), 422, "unknown_member")
        ci, listing = self.key(name="ci", app="acme", role="build")
        self.assertEqual((listing["member"], listing["app"], listing["role"], listing["expires"]), (None, "acme", "build", None))
        self.api("GET", "/v1/apps/acme/releases", key=ci, expect=200)
        self.assert_refused(self.api("GET", "/v1/apps/beta/releases", key=ci), 404, "not_found")
        self.assert_refused(self.api("GET", "/v1/members", key=ci), 403, "forbidden")
        (create,) = self.audit(action="key.create", target_key=listing["id"])
        self.assertEqual(create["detail"]["scope"], {"app": "acme", "role": "build"})
        self.assertEqual(create["target"]["app"], "acme")

    def test_a_revoked_key_is_refused_on_the_very_next_request(self):
        ci, listing = self.key(name="to revoke", app="acme", role="release")
        self.api("GET", "/v1/apps/acme/releases", key=ci, expect=200)
        doc = self.api("DELETE", "/v1/keys/" + listing["id"], expect=200)[1]
        self.assertIsInstance(doc["revoked"], int)
        self.assertEqual(set(doc), LISTING)
        status, hdrs, body = self.env.api_raw("GET", "/v1/apps/acme/releases", key=ci)
        self.assertEqual((status, json.loads(body)["error"]["code"]), (401, "revoked"), body)
        self.assertEqual(hdrs.get("www-authenticate"), "Bearer")
        self.assert_refused(self.api("DELETE", "/v1/keys/" + listing["id"]), 409, "revoked")
        self.assert_refused(self.api("DELETE", "/v1/keys/0123456789abcdef"), 404, "not_found")
        self.assert_refused(self.api("DELETE", "/v1/keys/not-a-key-id"), 400, "invalid")
        (revoke,) = self.audit(action="key.revoke", target_key=listing["id"], outcome="ok")
        self.assertEqual(revoke["actor"]["host"], False)
        (refusal,) = self.audit(actor_key=listing["id"], outcome="denied")
        self.assertEqual((refusal["status"], refusal["error"]), (401, "revoked"))

    def test_an_expired_key_is_refused_as_expired(self):
        # whole seconds, and a loaded machine may take a second or more to make the key and ask: 5 s of validity
        expires = int(time.time()) + 5
        short, listing = self.key(name="short", app="acme", role="build", expires=expires)
        self.assertEqual(listing["expires"], expires)
        answers = []

        def ask():
            answers.append(self.env.api("GET", "/v1/apps/acme/releases", key=short))
            return answers[-1][0]

        harness.poll(ask, lambda status: status == 401, timeout=15)
        self.assertEqual(answers[0][0], 200, "valid until it expires")
        self.assert_refused(answers[-1], 401, "expired")
        self.assert_refused(self.api("POST", "/v1/keys", {"name": "x", "app": "acme", "role": "build", "expires": 1000}), 400,
                            "invalid")
        self.assertEqual(self.audit(actor_key=listing["id"], outcome="denied")[-1]["error"], "expired")

    def test_removing_a_member_revokes_their_keys(self):
        self.member("carol", {"*": "release"})
        one, l1 = self.key(name="one", member="carol")
        two, l2 = self.key(name="two", member="carol", app="acme", role="build")
        self.api("GET", "/v1/apps/acme/releases", key=one, expect=200)
        self.assertEqual(self.api("DELETE", "/v1/members/carol", expect=200)[1]["keys_revoked"], 2)
        for key in (one, two):
            self.assert_refused(self.api("GET", "/v1/apps/acme/releases", key=key), 401, "revoked")
        keys = self.api("GET", "/v1/keys?member=carol", expect=200)[1]["keys"]
        self.assertEqual(sorted(k["id"] for k in keys), sorted((l1["id"], l2["id"])))
        self.assertTrue(all(isinstance(k["revoked"], int) for k in keys), keys)
        (remove,) = self.audit(action="member.remove", target_member="carol")
        self.assertEqual(remove["detail"], {"keys_revoked": 2})

    def test_key_listings_never_contain_a_secret_or_its_hash(self):
        self.member("dana", {"*": "build"})
        secret, listing = self.key(name="dana", member="dana")
        self.assertEqual(set(listing), LISTING)
        self.api("GET", "/v1/apps/acme/releases", key=secret, expect=200)
        for path in ("/v1/keys", "/v1/keys?member=dana", "/v1/members/dana"):
            status, _, body = self.env.api_raw("GET", path, key=self.admin)
            self.assertEqual(status, 200, body)
            text = body.decode()
            self.assertNotIn(secret.split("_")[2], text)
            self.assertNotIn("sha256", text)
        keys = self.api("GET", "/v1/keys?member=dana", expect=200)[1]["keys"]
        self.assertEqual([set(k) for k in keys], [LISTING])
        self.assertIsInstance(keys[0]["last_used"], int, "the use just made shows")
        self.assertEqual(self.api("GET", "/v1/members/dana", key=secret, expect=200)[1]["keys"], keys)
        self.assert_refused(self.api("GET", "/v1/keys?member=Bad!"), 400, "invalid")
        self.assert_refused(self.api("GET", "/v1/keys?colour=blue"), 400, "invalid")
        records = json.dumps(audit_records(self.env.data))
        self.assertNotIn(secret.split("_")[2], records)

    def test_a_key_creates_keys_for_its_own_member_within_its_own_scope(self):
        self.member("erin", {"*": "release"})
        self.member("finn", {"*": "build"})
        erin, _ = self.key(name="erin", member="erin", app="acme", role="release")
        laptop, listing = self.key(erin, name="laptop")
        self.assertEqual((listing["member"], listing["app"], listing["role"]), ("erin", "acme", "release"))
        self.assert_refused(self.api("POST", "/v1/keys", {"name": "x", "member": "finn"}, key=erin), 403, "forbidden")
        self.assert_refused(self.api("POST", "/v1/keys", {"name": "x", "role": "admin"}, key=erin), 403, "forbidden")
        self.assert_refused(self.api("POST", "/v1/keys", {"name": "x", "app": "beta"}, key=erin), 403, "forbidden")
        ci, _ = self.key(name="ci", app="acme", role="release")
        self.assert_refused(self.api("POST", "/v1/keys", {"name": "x"}, key=ci), 403, "forbidden")
        # a member reads themself, not others; revokes their own keys, not others'
        self.api("GET", "/v1/members/erin", key=erin, expect=200)
        self.assert_refused(self.api("GET", "/v1/members/finn", key=erin), 403, "forbidden")
        self.assert_refused(self.api("GET", "/v1/keys", key=erin), 403, "forbidden")
        finn, finn_listing = self.key(name="finn", member="finn")
        self.assert_refused(self.api("DELETE", "/v1/keys/" + finn_listing["id"], key=erin), 403, "forbidden")
        self.api("DELETE", "/v1/keys/" + listing["id"], key=erin, expect=200)
        self.assert_refused(self.api("GET", "/v1/apps/acme/releases", key=laptop), 401, "revoked")
        self.assertEqual(len(self.audit(action="key.create", actor_key=self.key_id(erin), outcome="denied")), 3)
        self.assertEqual(len(self.audit(action="member.read", actor_key=self.key_id(erin), outcome="denied")), 1)

    @staticmethod
    def key_id(secret):
        return secret.split("_")[1]

    def test_any_valid_key_signs_in_and_learns_who_it_is(self):
        self.member("gus", {"acme": "build"}, name="Gus")
        gus, listing = self.key(name="gus", member="gus", app="acme", role="build")
        doc = self.api("POST", "/v1/login", key=gus, expect=200)[1]
        self.assertEqual((doc["key"]["id"], doc["member"]["id"], doc["member"]["name"]), (listing["id"], "gus", "Gus"))
        ci, ci_listing = self.key(name="ci", app="beta", role="build")
        doc = self.api("POST", "/v1/login", key=ci, expect=200)[1]
        self.assertEqual((doc["key"]["id"], doc["member"]), (ci_listing["id"], None))
        self.assert_refused(self.api("POST", "/v1/login", key=gus[:-2] + "xx"), 401, "unauthorized")
        self.assertEqual([r["target"]["member"] for r in self.audit(action="auth.sign_in", target_key=listing["id"])], ["gus"])
        self.assertEqual(len(self.audit(action="auth.sign_in", target_key=ci_listing["id"], outcome="ok")), 1)

    def test_the_host_command_creates_keys_of_members_and_apps_recorded_as_the_host(self):
        self.member("hal", {"*": "admin"})
        r = self.env.run("updraft-control", "keys", "create", "--data", self.env.data, "--role", "build", "--name", "hal-ci",
                         "--member", "hal", "--app", "acme", "--expires", "12h")
        self.assertEqual(r.returncode, 0, r.stderr)
        secret = r.stdout.strip()
        doc = self.api("POST", "/v1/login", key=secret, expect=200)[1]["key"]
        self.assertEqual((doc["member"], doc["app"], doc["role"]), ("hal", "acme", "build"))
        self.assertAlmostEqual(doc["expires"], int(time.time()) + 12 * 3600, delta=60)
        (rec,) = self.audit(action="key.create", target_key=doc["id"])
        self.assertEqual((rec["actor"]["host"], rec["target"]["member"], rec["detail"]["scope"]),
                         (True, "hal", {"app": "acme", "role": "build"}))
        for args in (("--member", "nobody"), ("--app", "nope"), ("--expires", "soon")):
            r = self.env.run("updraft-control", "keys", "create", "--data", self.env.data, "--role", "build", "--name", "x", *args)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertEqual(r.stdout, "", "no key printed")


if __name__ == "__main__":
    unittest.main()
