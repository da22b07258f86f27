#!/usr/bin/env python3
"""updraft-sts's own pages in a real browser: headless Chromium (Debian's) driven by playwright-core, with a virtual
WebAuthn authenticator (ctap2, internal, user verification) on a CDP session. The first admin opens init's one-time
link and registers a key on /enrol; the control plane proposes a state document with its bearer token; the admin
opens /approve/ID, sees the STS's own summary, the app, generation, digest and who asked, and approves with the key:
the proposal turns approved and its envelope verifies with `updraft-sts public-key`'s key. With the authenticator's
user verification off, pressing the button changes nothing (the proposal stays pending, nothing is signed). Also:
Reject, the admin page's invite (its link enrols a second member) and list, and data shown as text, never as HTML.

Needs /usr/bin/chromium (scripts/install-deps test) and tests/node_modules (`cd tests && npm ci`). The approval
page's screenshots are written to the test's temp dir (kept with UPDRAFT_KEEP_TMP=1) and their paths printed."""

import json
import os
import re
import select
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_sts_server import doc, verify_envelope  # noqa: E402

TOKEN = "control-token-for-browser-tests"
TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(TESTS_DIR, "support", "sts_browser.js")
CHROMIUM = os.environ.get("UPDRAFT_CHROMIUM", "/usr/bin/chromium")


class Browser:
    """tests/support/sts_browser.js: one Chromium with one virtual authenticator, one JSON command a line."""

    def __init__(self, log_path):
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(["node", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, cwd=TESTS_DIR)

    def __call__(self, cmd, timeout=90, **args):
        args["cmd"] = cmd
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise AssertionError("the browser driver did not answer %s within %d s" % (cmd, timeout))
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("the browser driver exited (%s): see %s" % (self.proc.poll(), self.log.name))
            answer = json.loads(line)
            if not answer.get("ok"):
                raise AssertionError("browser command %s failed: %s" % (cmd, answer.get("error")))
            if answer.get("page_errors"):
                raise AssertionError("errors in the page during %s: %s" % (cmd, answer["page_errors"]))
            return answer

    def close(self):
        try:
            self.proc.stdin.write('{"cmd":"quit"}\n')
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


def ensure_node_modules():
    if not os.path.isdir(os.path.join(TESTS_DIR, "node_modules", "playwright-core")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TESTS_DIR, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("npm ci failed (%d):\n%s" % (r.returncode, r.stderr[-3000:]))


class StsBrowserTest(unittest.TestCase):
    def setUp(self):
        if not os.access(CHROMIUM, os.X_OK):
            raise AssertionError("%s is missing: scripts/install-deps test installs Debian's chromium" % CHROMIUM)
        ensure_node_modules()
        self.env = harness.Env("test_sts_browser")
        self.addCleanup(self.env.__exit__, None, None, None)
        port = harness.free_port()
        # the page's origin is what the STS checks in clientData: http://localhost is a secure context for WebAuthn
        self.public = "http://localhost:%d" % port
        r = self.env.run("updraft-sts", "init", "--data", self.env.data, "--public-url", self.public)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.link = re.search(r"^Enrol the first admin: (\S+) \(valid 24 h\)$", r.stdout, re.M).group(1)
        self.public_line = [l for l in r.stdout.splitlines() if l.startswith("ed25519:")][0]
        self.sts = self.env.start_sts("--public-url", self.public, "--config", self.env.write(
            "sts.yaml", "listen: [\"127.0.0.1:%d\"]\ncontrol:\n  token: %s\n" % (port, TOKEN)))
        self.browser = Browser(os.path.join(self.env.dir, "browser.log"))
        self.addCleanup(self.browser.close)

    def call(self, method, path, body=None, token=None):
        h = {"Authorization": "Bearer " + token} if token else {}
        status, headers, data = self.env.http(method, path, headers=h, body=body, base=self.sts)
        return status, (json.loads(data) if data and headers.get("content-type", "").startswith("application/json")
                        else data)

    def propose(self, app, gen, action="publish 1.2.0", requested_by="ci", **kw):
        st, p = self.call("POST", "/v1/proposals", {"app": app, "document": doc(app, gen, **kw), "action": action,
                                                    "requested_by": requested_by}, token=TOKEN)
        self.assertEqual((st, p.get("status")), (201, "pending"), p)
        self.assertEqual(p["url"], self.public + "/approve/" + p["id"])
        return p

    def proposal(self, pid):
        st, p = self.call("GET", "/v1/proposals/" + pid)
        self.assertEqual(st, 200, p)
        return p

    def screenshot(self, name):
        return os.path.join(self.env.dir, name)

    def enrol_first_admin(self):
        self.assertTrue(self.link.startswith(self.public + "/enrol#"), self.link)
        r = self.browser("enrol", url=self.link)
        self.assertEqual(r["status"]["kind"], "ok", r)
        self.assertIn("Member admin (administrator)", r["status"]["text"])
        self.assertEqual(r["who"], "Registering for member: admin")
        self.assertNotIn("#", r["url_after"], "the spent token is taken out of the address bar")
        return r

    def test_enrol_propose_approve_in_the_browser_then_uv_off_changes_nothing(self):
        self.enrol_first_admin()
        # the link was single use: the page says so
        r = self.browser("enrol", url=self.link)
        self.assertEqual(r["status"]["kind"], "error")
        self.assertIn("bad_token", r["status"]["text"])

        p = self.propose("acme", 3)
        shot = self.screenshot("approve-acme-3.png")
        r = self.browser("approve", url=p["url"], decision="approve", screenshot=shot)
        print("approval page screenshot: %s" % shot)
        self.assertTrue(os.path.getsize(shot) > 0)
        before = r["before"]
        # the page shows what the STS says, as it says it
        self.assertEqual(before["summary"], p["summary"] or ["(no change listed)"])
        self.assertTrue(before["summary"] and all(before["summary"]), before)
        self.assertEqual((before["app"], before["generation"], before["status"]), ("acme", "3", "pending"))
        self.assertEqual(before["digest"], p["digest"])
        self.assertEqual(before["requested"], "ci — requested: publish 1.2.0")
        self.assertEqual(before["approvals"], "0 of 1 needed")
        self.assertTrue(before["approve_enabled"] and before["buttons_visible"])
        self.assertEqual(r["outcome"]["kind"], "ok", r["outcome"])
        self.assertEqual(r["outcome"]["text"], "Approved and signed: acme generation 3 is released.")
        self.assertEqual((r["after"]["status"], r["after"]["badge"]), ("approved", "approved"))
        self.assertFalse(r["after"]["buttons_visible"], "nothing left to press once approved")
        self.assertTrue(r["after"]["approvals"].startswith("1 of 1 needed: admin at "), r["after"])

        got = self.proposal(p["id"])
        self.assertEqual(got["status"], "approved")
        self.assertEqual([a["member"] for a in got["approvals"]], ["admin"])
        pk = self.env.run("updraft-sts", "public-key", "--data", self.env.data)
        self.assertEqual(pk.returncode, 0, pk.stderr)
        self.assertEqual(pk.stdout.splitlines()[0], self.public_line)
        verify_envelope(got["envelope"], self.public_line, "acme", 3, doc("acme", 3))
        creds = self.browser("credentials")["credentials"]
        self.assertEqual(len(creds), 1)
        self.assertEqual(creds[0]["rp_id"], "localhost")
        self.assertGreaterEqual(creds[0]["sign_count"], 2, "one registration and one assertion")

        # the authenticator stops verifying its user: the button changes nothing
        p4 = self.propose("acme", 4, version="1.3.0")
        self.browser("set_uv", value=False)
        shot = self.screenshot("approve-acme-4-uv-off.png")
        r = self.browser("approve", url=p4["url"], decision="approve", screenshot=shot)
        print("approval page screenshot (user verification off): %s" % shot)
        self.assertEqual(r["outcome"]["kind"], "error", r["outcome"])
        self.assertIn("did not confirm", r["outcome"]["text"])
        self.assertIn("The proposal is unchanged.", r["outcome"]["text"])
        self.assertEqual(r["after"]["status"], "pending")
        self.assertTrue(r["after"]["approve_enabled"], "the approver may try again")
        got = self.proposal(p4["id"])
        self.assertEqual((got["status"], got["approvals"]), ("pending", []))
        self.assertNotIn("envelope", got)
        st, signed = self.call("GET", "/v1/signed/acme", token=TOKEN)
        self.assertEqual((st, signed["generation"]), (200, 3), "still the last approved state")

        # verified again, the same page approves it
        self.browser("set_uv", value=True)
        r = self.browser("approve", url=p4["url"], decision="approve")
        self.assertEqual((r["outcome"]["kind"], r["after"]["status"]), ("ok", "approved"), r["outcome"])
        verify_envelope(self.proposal(p4["id"])["envelope"], self.public_line, "acme", 4, doc("acme", 4, version="1.3.0"))

    def test_reject_and_data_shown_as_text(self):
        self.enrol_first_admin()
        hostile = "<img src=x onerror=\"document.title='owned'\"><script>document.title='owned'</script>"
        p = self.propose("acme", 7, action="publish <b>2.0</b> & more", requested_by=hostile)
        r = self.browser("approve", url=p["url"], decision="reject")
        self.assertEqual(r["before"]["requested"], hostile + " — requested: publish <b>2.0</b> & more",
                         "shown exactly, as text")
        self.assertEqual((r["outcome"]["kind"], r["outcome"]["text"]), ("ok", "Rejected: this proposal will not be signed."))
        self.assertEqual(r["after"]["status"], "rejected")
        got = self.proposal(p["id"])
        self.assertEqual(got["status"], "rejected")
        self.assertNotIn("envelope", got)
        # the rejected proposal can no longer be decided: no buttons
        r = self.browser("approve", url=p["url"], decision=None)
        self.assertEqual((r["before"]["status"], r["before"]["buttons_visible"]), ("rejected", False))
        self.assertEqual(self.call("GET", "/v1/signed/acme", token=TOKEN)[0], 404, "nothing was signed")

    def test_admin_page_invites_a_member_who_enrols_and_lists(self):
        self.enrol_first_admin()
        r = self.browser("admin", base=self.public, action={"op": "invite", "member": "bob", "admin": False})
        self.assertEqual(r["status"]["kind"], "ok", r["status"])
        self.assertTrue(r["link"].startswith(self.public + "/enrol#"), r["link"])
        e = self.browser("enrol", url=r["link"])
        self.assertEqual(e["status"]["kind"], "ok", e["status"])
        self.assertIn("Member bob now has this security key", e["status"]["text"])

        r = self.browser("admin", base=self.public, action={"op": "grant", "member": "bob", "app": "acme"})
        self.assertEqual(r["status"], {"kind": "ok", "text": "Granted: bob may now approve acme."})
        r = self.browser("admin", base=self.public, action={"op": "policy", "app": "acme", "approvers": 2})
        self.assertEqual(r["status"], {"kind": "ok", "text": "acme now needs 2 approvers per release."})
        p = self.propose("acme", 5)
        r = self.browser("admin", base=self.public, action={"op": "list"})
        self.assertEqual(r["status"]["kind"], "ok", r["status"])
        t = r["tables"]
        self.assertEqual(sorted(row[0] for row in t["members"]), ["admin", "bob"])
        self.assertEqual(sorted(row[1] for row in t["credentials"]), ["admin", "bob"])
        self.assertIn(["acme", "bob"], [row[:2] for row in t["grants"]])
        self.assertIn(["acme", "2"], [row[:2] for row in t["policies"]])
        self.assertEqual([(row[0], row[1]) for row in t["pending"]], [("acme", "5")])

        # two approvers now: the admin's approval is recorded, the release waits for the second
        r = self.browser("approve", url=p["url"], decision="approve")
        self.assertEqual(r["outcome"]["kind"], "ok", r["outcome"])
        self.assertTrue(r["outcome"]["text"].startswith("Your approval is recorded. 1 of 2"), r["outcome"])
        self.assertEqual(self.proposal(p["id"])["status"], "pending")


if __name__ == "__main__":
    unittest.main()
