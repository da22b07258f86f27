#!/usr/bin/env python3
"""updraft-sts end to end: init prints the first admin's one-time link, the admin enrols a (software) security key
through it, the control plane proposes a state document with its bearer token, the admin approves it with a UV
assertion over a challenge bound to the document, and the proposal turns approved with an envelope that verifies
against `updraft-sts public-key`'s key; GET /v1/signed then lists it. And the refusals on the way: a used link, a
wrong token, a reused challenge, UV clear, a sign count that does not grow (the credential turns suspect), a
rollback."""

import base64
import hashlib
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from softauth import SoftAuthenticator  # noqa: E402
from test_sts_init import secrets_of  # noqa: E402

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402

TOKEN = "control-token-for-tests"
PUBLIC = "http://localhost:8090"


def doc(app, gen, version="1.2.0"):
    return json.dumps({"format": 1, "app": app, "generation": gen, "channels": {"latest": {"version": version}}},
                      separators=(",", ":"))


def verify_envelope(env_text, public_line, app, gen, document):
    e = json.loads(env_text)
    assert e["app"] == app and e["generation"] == gen, e
    assert e["digest"] == "sha256:" + hashlib.sha256(document.encode()).hexdigest(), "the envelope names the document"
    raw = base64.b64decode(public_line.split(":", 1)[1])
    msg = "updraft-state-v1\n%s\n%d\n%d\n%s" % (app, gen, e["expires"], e["digest"])
    Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(e["sig"]), msg.encode())  # raises when bad
    assert e["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    return e


class StsBase(unittest.TestCase):
    """A fresh STS per test (init, then serve with CONFIG) and the calls the tests make; no tests of its own."""
    CONFIG = ""

    def setUp(self):
        self.seen = []  # every answer's headers and body, for assert_key_never_shown
        self.env = harness.Env("test_sts_server")
        self.addCleanup(self.env.__exit__, None, None, None)
        r = self.env.run("updraft-sts", "init", "--data", self.env.data, "--public-url", PUBLIC)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.link = re.search(r"^Enrol the first admin: (\S+) \(valid 24 h\)$", r.stdout, re.M).group(1)
        self.public_line = [l for l in r.stdout.splitlines() if l.startswith("ed25519:")][0]
        self.sts = self.env.start_sts("--public-url", PUBLIC, "--config", self.env.write("sts.yaml",
                                      "listen: [\"127.0.0.1:0\"]\ncontrol:\n  token: %s\n%s" % (TOKEN, self.CONFIG)))

    def call(self, method, path, body=None, token=None):
        h = {"Authorization": "Bearer " + token} if token else {}
        status, headers, data = self.env.http(method, path, headers=h, body=body, base=self.sts)
        self.seen.append(repr(headers) + (data.decode("latin-1") if isinstance(data, bytes) else str(data)))
        return status, (json.loads(data) if data and headers.get("content-type", "").startswith("application/json")
                        else data)

    def assert_key_never_shown(self):
        """No spelling of the release key in any answer, nor in any file the programs wrote beside it (logs, stdout)."""
        key = os.path.join(self.env.data, "release-key.pem")
        with open(key) as f:
            spellings = secrets_of(f.read())
        texts = {"answers": "\n".join(self.seen)}
        for root, dirs, files in os.walk(self.env.dir):
            dirs[:] = [d for d in dirs if d != "lmdb"]
            for name in files:
                path = os.path.join(root, name)
                if path != key:
                    with open(path, "rb") as f:
                        texts[path] = f.read().decode("latin-1")
        self.assertGreater(len(texts), 2, "the programs' logs were read")
        for where, text in texts.items():
            for what, secret in spellings.items():
                self.assertFalse(secret in text, "the release key's %s appears in %s" % (what, where))

    def enrol(self, link, fmt="packed"):
        token = link.split("#", 1)[1]
        auth = SoftAuthenticator(rp_id="localhost", origin=PUBLIC)
        st, opts = self.call("POST", "/v1/enrol/options", {"token": token})
        self.assertEqual(st, 200, opts)
        self.assertEqual(opts["publicKey"]["rp"], {"id": "localhost", "name": "Updraft"})
        self.assertEqual(opts["publicKey"]["authenticatorSelection"]["userVerification"], "required")
        st, res = self.call("POST", "/v1/enrol", {"token": token, "ceremony": opts["ceremony"],
                                                  "credential": auth.register(opts["publicKey"], fmt=fmt)})
        self.assertEqual(st, 201, res)
        return auth, token, res

    def propose(self, app, gen, **kw):
        return self.call("POST", "/v1/proposals", {"app": app, "document": doc(app, gen, **kw), "action": "publish 1.2.0",
                                                   "requested_by": "ci"}, token=TOKEN)

    def approve(self, auth, pid, **kw):
        st, opts = self.call("POST", "/v1/proposals/%s/options" % pid, {})
        self.assertEqual(st, 200, opts)
        body = {"ceremony": opts["ceremony"], "decision": "approve", "credential": auth.assert_(opts["publicKey"], **kw)}
        return opts, body, self.call("POST", "/v1/proposals/%s/approve" % pid, body)


class StsServer(StsBase):
    def test_enrol_propose_approve_sign_and_list(self):
        self.assertTrue(self.link.startswith(PUBLIC + "/enrol#"))
        auth, token, res = self.enrol(self.link)
        self.assertEqual(res["member"], "admin")
        self.assertTrue(res["admin"])
        # the link is single use
        st, err = self.call("POST", "/v1/enrol/options", {"token": token})
        self.assertEqual((st, err["error"]["code"]), (401, "bad_token"))

        st, p = self.propose("acme", 3)
        self.assertEqual(st, 201, p)
        self.assertEqual(p["status"], "pending")
        self.assertEqual(p["url"], PUBLIC + "/approve/" + p["id"])
        self.assertRegex(p["id"], r"^[0-9a-f]{32}$")
        st, got = self.call("GET", "/v1/proposals/%s?document=1" % p["id"])
        self.assertEqual(st, 200)
        self.assertEqual(got["document"], doc("acme", 3), "the document's exact bytes")

        opts, body, (st, ap) = self.approve(auth, p["id"])
        # the challenge: 16 random bytes and the document's SHA-256
        chal = base64.urlsafe_b64decode(opts["publicKey"]["challenge"] + "==")
        self.assertEqual(chal[16:], hashlib.sha256(doc("acme", 3).encode()).digest())
        self.assertEqual([c["id"] for c in opts["publicKey"]["allowCredentials"]],
                         [base64.urlsafe_b64encode(auth.credential_id).rstrip(b"=").decode()])
        self.assertEqual(st, 200, ap)
        self.assertEqual(ap["status"], "approved")
        self.assertEqual(ap["approvals"][0]["member"], "admin")
        pk = self.env.run("updraft-sts", "public-key", "--data", self.env.data)
        self.assertEqual(pk.stdout.splitlines()[0], self.public_line)
        e = verify_envelope(ap["envelope"], pk.stdout.splitlines()[0], "acme", 3, doc("acme", 3))

        # the same ceremony again: the challenge was used
        st, err = self.call("POST", "/v1/proposals/%s/approve" % p["id"], body)
        self.assertEqual((st, err["error"]["code"]), (401, "challenge"))

        st, signed = self.call("GET", "/v1/signed", token=TOKEN)
        self.assertEqual(st, 200)
        self.assertEqual([a["app"] for a in signed["apps"]], ["acme"])
        self.assertEqual(signed["apps"][0]["envelope"], ap["envelope"])
        self.assertEqual(signed["apps"][0]["generation"], 3)
        self.assertEqual(signed["apps"][0]["expires"], e["expires"])
        st, one = self.call("GET", "/v1/signed/acme", token=TOKEN)
        self.assertEqual((st, one["generation"]), (200, 3))
        self.assertEqual(self.call("GET", "/v1/signed/other", token=TOKEN)[0], 404)

        # generations only grow
        st, err = self.propose("acme", 3)
        self.assertEqual((st, err["error"]["code"]), (409, "rollback"))
        self.assert_key_never_shown()

    def test_refusals(self):
        auth, _, _ = self.enrol(self.link)
        # a registration without UV is refused and leaves the link usable; its challenge is gone
        r = self.env.run("updraft-sts", "enrol-link", "--data", self.env.data, "--member", "carol", "--public-url", PUBLIC)
        self.assertEqual(r.returncode, 0, r.stderr)
        token = r.stdout.split("#", 1)[1].split()[0]
        carol = SoftAuthenticator(origin=PUBLIC)
        st, opts = self.call("POST", "/v1/enrol/options", {"token": token})
        body = {"token": token, "ceremony": opts["ceremony"], "credential": carol.register(opts["publicKey"], uv=False)}
        st, err = self.call("POST", "/v1/enrol", body)
        self.assertEqual((st, err["error"]["code"]), (401, "uv"))
        body["credential"] = carol.register(opts["publicKey"])
        st, err = self.call("POST", "/v1/enrol", body)
        self.assertEqual((st, err["error"]["code"]), (401, "challenge"), "a challenge is single use, whatever the outcome")
        st, opts = self.call("POST", "/v1/enrol/options", {"token": token})
        self.assertEqual(st, 200, "the refused registration did not use the link")
        st, err = self.call("POST", "/v1/enrol", {"token": token, "ceremony": opts["ceremony"],
                                                  "credential": auth.register(opts["publicKey"])})
        self.assertEqual((st, err["error"]["code"]), (409, "credential_exists"))
        st, err = self.call("POST", "/v1/proposals", {"app": "acme", "document": doc("acme", 1)}, token="wrong")
        self.assertEqual((st, err["error"]["code"]), (401, "unauthorized"))
        st, err = self.call("POST", "/v1/proposals", {"app": "acme", "document": doc("other", 1)}, token=TOKEN)
        self.assertEqual((st, err["error"]["code"]), (422, "invalid_document"))
        self.assertEqual(self.call("GET", "/v1/signed")[0], 401, "the signed list is the control plane's")
        self.assertEqual(self.call("GET", "/v1/proposals/" + "0" * 32)[0], 404)

        st, p = self.propose("acme", 1)
        self.assertEqual(st, 201)
        _, _, (st, err) = self.approve(auth, p["id"], uv=False)
        self.assertEqual((st, err["error"]["code"]), (401, "uv"))
        _, _, (st, err) = self.approve(auth, p["id"], origin="http://evil.test")
        self.assertEqual((st, err["error"]["code"]), (401, "origin"))
        # a sign count that does not grow: the credential turns suspect and stays refused
        st, other = self.propose("beta", 1)
        _, _, (st, ok) = self.approve(auth, other["id"])
        self.assertEqual((st, ok["status"]), (200, "approved"))
        _, _, (st, err) = self.approve(auth, p["id"], sign_count=auth.sign_count)
        self.assertEqual((st, err["error"]["code"]), (401, "sign_count"))
        _, _, (st, err) = self.approve(auth, p["id"])
        self.assertEqual((st, err["error"]["code"]), (401, "suspect_credential"))
        st, got = self.call("GET", "/v1/proposals/" + p["id"])
        self.assertEqual(got["status"], "pending")

        st, m = self.call("GET", "/metrics")
        m = m.decode()
        self.assertEqual(harness.metric(m, "updraft_sts_suspect_credentials"), 1)
        self.assertGreaterEqual(harness.metric(m, "updraft_sts_ceremonies_total", outcome="refused"), 4)
        self.assertEqual(harness.metric(m, "updraft_sts_proposals", status="pending"), 1)
        self.assertEqual(harness.metric(m, "updraft_sts_proposals", status="approved"), 1)
        # a body above 64 KiB
        st, _ = self.call("POST", "/v1/proposals", {"app": "acme", "document": "x" * 70000}, token=TOKEN)
        self.assertEqual(st, 413)

        st, c = self.call("POST", "/v1/proposals/%s/cancel" % p["id"], {}, token=TOKEN)
        self.assertEqual((st, c["status"]), (200, "cancelled"))
        st, err = self.call("POST", "/v1/proposals/%s/options" % p["id"], {})
        self.assertEqual((st, err["error"]["code"]), (409, "not_pending"))

    def admin(self, auth, action, **kw):
        st, opts = self.call("POST", "/v1/admin/options", {"action": action})
        self.assertEqual(st, 200, opts)
        chal = base64.urlsafe_b64decode(opts["publicKey"]["challenge"] + "==")
        canon = json.dumps(action, sort_keys=True, separators=(",", ":"))
        self.assertEqual(chal[16:], hashlib.sha256(("updraft-sts-admin-v1\n" + canon).encode()).digest())
        return self.call("POST", "/v1/admin", {"ceremony": opts["ceremony"], "action": action,
                                               "credential": auth.assert_(opts["publicKey"], **kw)})

    def test_admin_invites_grants_and_sets_a_quorum_of_two(self):
        admin, _, _ = self.enrol(self.link)
        st, inv = self.admin(admin, {"op": "invite", "member": "bob", "admin": False})
        self.assertEqual(st, 200, inv)
        self.assertTrue(inv["link"].startswith(PUBLIC + "/enrol#"))
        bob, _, res = self.enrol(inv["link"], fmt="none")
        self.assertEqual((res["member"], res["admin"]), ("bob", False))
        st, err = self.admin(bob, {"op": "list"})
        self.assertEqual((st, err["error"]["code"]), (403, "not_admin"))

        st, p = self.propose("acme", 1)
        _, _, (st, err) = self.approve(bob, p["id"])
        self.assertEqual((st, err["error"]["code"]), (403, "not_approver"))
        self.assertEqual(self.admin(admin, {"op": "grant", "member": "bob", "app": "acme"})[0], 200)
        self.assertEqual(self.admin(admin, {"op": "policy", "app": "acme", "approvers": 2})[0], 200)

        st, p = self.propose("acme", 2)
        self.assertEqual(p["needed"], 2)
        _, _, (st, one) = self.approve(admin, p["id"])
        self.assertEqual((st, one["status"]), (200, "pending"))
        _, _, (st, err) = self.approve(admin, p["id"])
        self.assertEqual((st, err["error"]["code"]), (409, "already_approved"))
        _, _, (st, two) = self.approve(bob, p["id"])
        self.assertEqual((st, two["status"]), (200, "approved"))
        self.assertEqual([a["member"] for a in two["approvals"]], ["admin", "bob"])
        verify_envelope(two["envelope"], self.public_line, "acme", 2, doc("acme", 2))
        # the older proposal can no longer be signed
        st, err = self.call("POST", "/v1/proposals/%s/options" % p["id"], {})
        self.assertEqual((st, err["error"]["code"]), (409, "not_pending"))

        st, lst = self.admin(admin, {"op": "list"})
        self.assertEqual(st, 200, lst)
        self.assertEqual(sorted(m["name"] for m in lst["members"]), ["admin", "bob"])
        self.assertEqual(len(lst["credentials"]), 2)
        self.assertNotIn("public_key", json.dumps(lst["credentials"]), "never keys")
        self.assertIn({"app": "acme", "approvers": 2}, [{"app": x["app"], "approvers": x["approvers"]} for x in lst["policies"]])
        self.assertEqual(sorted((g["app"], g["member"]) for g in lst["grants"]), [("*", "admin"), ("acme", "bob")])
        self.assertEqual(len(lst["pending"]), 1, "the first acme proposal is still pending")

    def test_pages_carry_strict_headers(self):
        st, headers, body = self.env.http("GET", "/enrol", base=self.sts)
        self.assertEqual(st, 200)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertEqual(headers["cache-control"], "no-store")
        self.assertEqual(headers["x-frame-options"], "DENY")
        self.assertEqual(headers["referrer-policy"], "no-referrer")
        self.assertIn("default-src 'self'", headers["content-security-policy"])
        self.assertEqual(self.env.http("GET", "/approve/" + "a" * 32, base=self.sts)[0], 200)
        self.assertEqual(self.env.http("GET", "/approve/nope", base=self.sts)[0], 404)
        self.assertEqual(self.env.http("GET", "/healthz", base=self.sts)[2], b"ok\n")


class StsResign(StsBase):
    """An envelope close to its expiry is signed again, same document and generation, later expiry."""
    CONFIG = "signing:\n  ttl_s: 3600\n  resign_before_s: 7200\n  resign_check_s: 1\n"

    def test_the_timer_re_signs_the_current_state(self):
        auth, _, _ = self.enrol(self.link)
        st, p = self.propose("acme", 4)
        _, _, (st, ap) = self.approve(auth, p["id"])
        self.assertEqual(st, 200, ap)
        first = json.loads(ap["envelope"])

        def later():
            st, one = self.call("GET", "/v1/signed/acme", token=TOKEN)
            return one if st == 200 and one["expires"] > first["expires"] else None
        again = harness.poll(later, lambda x: x is not None, timeout=30)
        self.assertIsNotNone(again, "re-signed within the check interval")
        e = verify_envelope(again["envelope"], self.public_line, "acme", 4, doc("acme", 4))
        self.assertEqual(e["digest"], first["digest"], "the same document")
        st, m = self.call("GET", "/metrics")
        self.assertGreaterEqual(harness.metric(m.decode(), "updraft_sts_resigns_total"), 1)

    # the other tests run once, in StsServer
    test_enrol_propose_approve_sign_and_list = test_refusals = None
    test_admin_invites_grants_and_sets_a_quorum_of_two = test_pages_carry_strict_headers = None


class StsRefusals(StsBase):
    """Assertions the STS must refuse, each leaving the proposal pending and nothing signed."""

    def assert_refused(self, pid, answer, status, code):
        st, err = answer
        self.assertEqual((st, err["error"]["code"]), (status, code), err)
        st, p = self.call("GET", "/v1/proposals/%s" % pid)
        self.assertEqual((st, p["status"]), (200, "pending"), "a refused assertion changes nothing")
        self.assertNotIn("envelope", p)
        st, signed = self.call("GET", "/v1/signed", token=TOKEN)
        self.assertEqual((st, signed["apps"]), (200, []), "nothing was signed")

    def test_a_forged_or_mismatched_assertion_signs_nothing(self):
        auth, _, _ = self.enrol(self.link)
        _, p = self.propose("acme", 1)
        _, q = self.propose("beta", 1)
        pid = p["id"]

        # a signature by a key that is not the credential's
        other = SoftAuthenticator(rp_id="localhost", origin=PUBLIC)
        other.credential_id = auth.credential_id
        _, opts = self.call("POST", "/v1/proposals/%s/options" % pid, {})
        body = {"ceremony": opts["ceremony"], "decision": "approve", "credential": other.assert_(opts["publicKey"])}
        self.assert_refused(pid, self.call("POST", "/v1/proposals/%s/approve" % pid, body), 401, "signature")

        # a valid signature with one bit of it flipped
        _, opts = self.call("POST", "/v1/proposals/%s/options" % pid, {})
        cred = auth.assert_(opts["publicKey"])
        sig = bytearray(base64.urlsafe_b64decode(cred["response"]["signature"] + "=="))
        sig[-1] ^= 1
        cred["response"]["signature"] = base64.urlsafe_b64encode(bytes(sig)).rstrip(b"=").decode()
        body = {"ceremony": opts["ceremony"], "decision": "approve", "credential": cred}
        self.assert_refused(pid, self.call("POST", "/v1/proposals/%s/approve" % pid, body), 401, "signature")

        # user presence clear, a create-type clientData, another RP's id hash
        for kw, code in (({"up": False}, "up"), ({"typ": "webauthn.create"}, "type"), ({"rp_id": "example.org"}, "rp_id_hash")):
            _, _, answer = self.approve(auth, pid, **kw)
            self.assert_refused(pid, answer, 401, code)

        # a challenge issued for the other proposal, presented for this one
        _, opts_q = self.call("POST", "/v1/proposals/%s/options" % q["id"], {})
        body = {"ceremony": opts_q["ceremony"], "decision": "approve", "credential": auth.assert_(opts_q["publicKey"])}
        self.assert_refused(pid, self.call("POST", "/v1/proposals/%s/approve" % pid, body), 401, "challenge")

        # an unknown ceremony
        _, opts = self.call("POST", "/v1/proposals/%s/options" % pid, {})
        body = {"ceremony": "0" * len(opts["ceremony"]), "decision": "approve", "credential": auth.assert_(opts["publicKey"])}
        self.assert_refused(pid, self.call("POST", "/v1/proposals/%s/approve" % pid, body), 401, "challenge")

        # after all that, a genuine assertion still approves
        _, _, (st, ap) = self.approve(auth, pid)
        self.assertEqual((st, ap["status"]), (200, "approved"), ap)

    def test_of_two_proposals_of_one_generation_the_second_is_superseded(self):
        auth, _, _ = self.enrol(self.link)
        _, first = self.propose("acme", 2)
        _, second = self.propose("acme", 2, version="1.3.0")
        _, _, (st, ap) = self.approve(auth, first["id"])
        self.assertEqual((st, ap["status"]), (200, "approved"), ap)
        _, _, (st, err) = self.approve(auth, second["id"])
        self.assertEqual((st, err["error"]["code"]), (409, "superseded"), err)
        st, signed = self.call("GET", "/v1/signed/acme", token=TOKEN)
        self.assertEqual(signed["envelope"], ap["envelope"], "the first stays the signed state")

    def test_a_rejection_signs_nothing(self):
        auth, _, _ = self.enrol(self.link)
        _, p = self.propose("acme", 1)
        _, opts = self.call("POST", "/v1/proposals/%s/options" % p["id"], {})
        body = {"ceremony": opts["ceremony"], "decision": "reject", "credential": auth.assert_(opts["publicKey"])}
        st, r = self.call("POST", "/v1/proposals/%s/approve" % p["id"], body)
        self.assertEqual((st, r["status"]), (200, "rejected"), r)
        self.assertNotIn("envelope", r)
        self.assertEqual(self.call("GET", "/v1/signed", token=TOKEN)[1]["apps"], [])


class StsShortChallenges(StsBase):
    CONFIG = "webauthn:\n  challenge_ttl_s: 1\n"

    def test_an_expired_challenge_is_refused(self):
        auth, _, _ = self.enrol(self.link)
        _, p = self.propose("acme", 1)
        _, opts = self.call("POST", "/v1/proposals/%s/options" % p["id"], {})
        time.sleep(2.2)
        body = {"ceremony": opts["ceremony"], "decision": "approve", "credential": auth.assert_(opts["publicKey"])}
        st, err = self.call("POST", "/v1/proposals/%s/approve" % p["id"], body)
        self.assertEqual((st, err["error"]["code"]), (401, "challenge"), err)
        self.assertEqual(self.call("GET", "/v1/proposals/%s" % p["id"])[1]["status"], "pending")


if __name__ == "__main__":
    unittest.main()
