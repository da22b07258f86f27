#!/usr/bin/env python3
"""Story: an auditor reads who did what through GET /v1/audit, finds the same records in both object
stores, and `updraft-control audit verify` tells an untouched trail from a tampered one.

The control plane runs with object_store.kind s3 on two signature-checking s3rvers (R2 and S3) and a
short export interval. Every state change and every refusal (401, 403) is a record with its actor,
source, user agent, action, target, outcome and request id; the query filters and pages; segments
_updraft/audit/FIRST-LAST.jsonl reach both stores within the interval, byte for byte the store's
records; a stopped backend never holds up the other and catches up once back. Then verify: exit 0 on
the untouched trail, and exit 1 naming the first record that breaks after a record is edited in LMDB,
after the newest ten are deleted (the chain head moved back with them, as an attacker would), and
after one exported segment is rewritten on one store. docs/control-api.md "Audit trail".
"""
import glob
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP = "acme"
UA = "audit-test/1"
INTERVAL_MS = 400
EXPORT_RECORDS = 5
AUDIT_CONFIG = ("audit:\n  export_interval_ms: %d\n  export_check_ms: 50\n  export_records: %d\n"
                "  export_retry_initial_ms: 100\n  export_retry_max_ms: 400\n" % (INTERVAL_MS, EXPORT_RECORDS))
# a stopped backend must fail fast for the test, not after the default 10 s stall
TIMEOUTS = "  connect_timeout_ms: 500\n  stall_timeout_ms: 1000\n"


def key_id(key):
    """upd_<16 hex>_<secret>: the id is the 16 hex digits."""
    return key.split("_")[1]


class AuditTrailTest(harness.StackTest):
    env_name = "test_audit"
    s3rvers = ("r2", "s3")
    programs = ("control",)
    control_public_url = "http://cdn.example"
    keys = (("admin", "admin", "ops"), ("release_key", "release", "ci-release"), ("build_key", "build", "ci-build"))

    @classmethod
    def control_args(cls):
        cls.config = cls.env.object_store_config(cls.r2, cls.s3, extra=AUDIT_CONFIG)
        with open(cls.config) as f:
            text = f.read()
        # the backends' timeouts sit in the object_store mapping, after kind
        with open(cls.config, "w") as f:
            f.write(text.replace("  kind: s3\n", "  kind: s3\n" + TIMEOUTS, 1))
        return ("--config", cls.config)

    # --- helpers ----------------------------------------------------------------------------------

    def call(self, method, path, body=None, key=None):
        """A control API call with our User-Agent: (status, JSON, X-Request-Id)."""
        status, hdrs, data = self.env.api_raw(method, path, body=body, key=key, headers={"User-Agent": UA})
        return status, json.loads(data) if data else None, hdrs.get("x-request-id")

    def audit(self, query="", key=None):
        status, doc, _ = self.call("GET", "/v1/audit" + ("?" + query if query else ""), key=key or self.admin)
        self.assertEqual(status, 200, doc)
        return doc

    def record_of(self, request_id):
        """The one record of a request, by its request id (the newest 1000 are searched)."""
        found = [r for r in self.audit("limit=1000")["records"] if r["request_id"] == request_id]
        self.assertEqual(len(found), 1, "one record for request %s: %r" % (request_id, found))
        return found[0]

    def metrics(self):
        return self.env.http("GET", "/metrics", base=self.control)[2].decode()

    def head(self):
        return int(harness.metric(self.metrics(), "updraft_audit_records_total"))

    def exported(self, backend):
        return int(harness.metric(self.metrics(), "updraft_audit_exported_seq", backend=backend))

    def wait_exported(self, backends=("r2", "s3"), timeout=10):
        """Polls until every record so far is on these backends; returns the head."""
        head = self.head()
        got = harness.poll(lambda: [self.exported(b) for b in backends], lambda v: all(x >= head for x in v), timeout)
        self.assertEqual(got, [head] * len(backends), "exported marks %r, head %d" % (got, head))
        return head

    def refuse(self, n):
        """n refused calls (401): n records that touch no object store."""
        for _ in range(n):
            status, _, _ = self.call("POST", "/v1/apps", {"id": "nope", "name": "x"}, key="upd_0000000000000000_bad")
            self.assertEqual(status, 401)

    def segments(self, s3):
        """{key: bytes} of the segments s3rver holds (read back through S3)."""
        root = os.path.join(s3.s3dir, s3.bucket)
        out = {}
        for path in glob.glob(os.path.join(root, "_updraft", "audit", "*.jsonl._S3rver_object")):
            key = os.path.relpath(path, root)[:-len("._S3rver_object")]
            status, data = self.env.s3_get(s3, key)
            self.assertEqual(status, 200, key)
            out[key] = data
        return out

    def verify(self, data=None, expect=0):
        r = self.env.run("updraft-control", "--config", self.config, "--data", data or self.env.data, "audit", "verify")
        self.assertEqual(r.returncode, expect, "audit verify: %d\nstdout: %s\nstderr: %s" % (r.returncode, r.stdout, r.stderr))
        return r

    def copy_data(self, name):
        """A consistent copy of the running store (mdb_copy), to tamper with."""
        d = os.path.join(self.env.dir, name)
        os.makedirs(os.path.join(d, "lmdb"))
        subprocess.run(["mdb_copy", os.path.join(self.env.data, "lmdb"), os.path.join(d, "lmdb")], check=True)
        return d

    # --- the stories ------------------------------------------------------------------------------

    def test_10_every_state_change_and_refusal_is_a_record_with_who_what_and_outcome(self):
        status, _, rid = self.call("POST", "/v1/apps", {"id": APP, "name": "Acme"}, key=self.admin)
        self.assertEqual(status, 201)
        rec = self.record_of(rid)
        self.assertEqual((rec["action"], rec["outcome"], rec["status"], rec["error"]), ("app.create", "ok", 201, None))
        self.assertEqual(rec["actor"], {"host": False, "key": key_id(self.admin), "member": None})
        self.assertEqual((rec["source"], rec["user_agent"], rec["target"]["app"]), ("127.0.0.1", UA, APP))

        f = self.env.put_artifact(APP, "1.0.0", "Acme-Setup-1.0.0.exe", os.urandom(3000))
        status, doc, rid = self.call("POST", "/v1/apps/%s/releases" % APP,
                                     {"version": "1.0.0", "channel": "latest", "files": [dict(f, platform="windows", arch="x64")],
                                      "rollout": {"percent": 10}}, key=self.release_key)
        self.assertEqual(status, 201, doc)
        rec = self.record_of(rid)
        self.assertEqual((rec["action"], rec["outcome"], rec["actor"]["key"]), ("release.create", "ok", key_id(self.release_key)))
        self.assertEqual((rec["target"]["app"], rec["target"]["version"], rec["target"]["channel"]), (APP, "1.0.0", "latest"))

        status, doc, rid = self.call("PUT", "/v1/apps/%s/channels/latest/rollout" % APP, {"percent": 50}, key=self.release_key)
        self.assertEqual(status, 200, doc)
        self.assertEqual(self.record_of(rid)["action"], "rollout.set")

        status, doc, rid = self.call("POST", "/v1/apps/%s/releases/1.0.0/pull" % APP, {"reason": "test"}, key=self.release_key)
        self.assertEqual(status, 200, doc)
        self.assertEqual((self.record_of(rid)["action"], self.record_of(rid)["target"]["version"]), ("release.pull", "1.0.0"))

        # a key that is no key: 401, recorded as denied, with the source and user agent
        status, _, rid = self.call("POST", "/v1/apps", {"id": "x", "name": "x"}, key="upd_0123456789abcdef_nope")
        self.assertEqual(status, 401)
        rec = self.record_of(rid)
        self.assertEqual((rec["action"], rec["outcome"], rec["status"], rec["error"]), ("app.create", "denied", 401, "unauthorized"))
        self.assertEqual((rec["source"], rec["user_agent"]), ("127.0.0.1", UA))

        # a key too weak: 403, with who it was
        status, _, rid = self.call("POST", "/v1/apps", {"id": "x", "name": "x"}, key=self.build_key)
        self.assertEqual(status, 403)
        rec = self.record_of(rid)
        self.assertEqual((rec["outcome"], rec["status"], rec["actor"]["key"]), ("denied", 403, key_id(self.build_key)))

        # reading the trail needs an account-wide admin, and a refusal to read it is itself recorded
        status, doc, rid = self.call("GET", "/v1/audit", key=self.release_key)
        self.assertEqual((status, doc["error"]["code"]), (403, "forbidden"))
        rec = self.record_of(rid)
        self.assertEqual((rec["action"], rec["outcome"], rec["actor"]["key"]), ("audit.read", "denied", key_id(self.release_key)))
        status, _, _ = self.call("GET", "/v1/audit")
        self.assertEqual(status, 401)

    def test_11_filters_and_pages_newest_first(self):
        self.refuse(3)
        status, _, _ = self.call("POST", "/v1/apps", {"id": "filters", "name": "F"}, key=self.admin)
        self.assertEqual(status, 201)
        everything = self.audit("limit=1000")["records"]
        seqs = [r["seq"] for r in everything]
        self.assertEqual(seqs, sorted(seqs, reverse=True), "newest first")
        self.assertEqual(seqs, list(range(seqs[0], 0, -1)), "every record, none skipped")

        # pages of 2 by next_before cover the same records, then next_before is null
        pages, before = [], None
        while True:
            doc = self.audit("limit=2" + ("&before=%d" % before if before else ""))
            pages += doc["records"]
            before = doc["next_before"]
            if before is None:
                break
            self.assertEqual(before, doc["records"][-1]["seq"])
        self.assertEqual([r["seq"] for r in pages], seqs)

        def seqs_of(query):
            return [r["seq"] for r in self.audit(query + "&limit=1000")["records"]]

        self.assertEqual(seqs_of("outcome=denied"), [r["seq"] for r in everything if r["outcome"] == "denied"])
        self.assertEqual(seqs_of("action=app.create&outcome=ok"),
                         [r["seq"] for r in everything if r["action"] == "app.create" and r["outcome"] == "ok"])
        self.assertEqual(seqs_of("app=filters"), [everything[0]["seq"]])
        self.assertEqual(seqs_of("actor=%s" % key_id(self.admin)),
                         [r["seq"] for r in everything if r["actor"]["key"] == key_id(self.admin)])
        self.assertEqual(seqs_of("since=%d" % (time.time() + 3600)), [])
        self.assertEqual(seqs_of("since=2000-01-01T00:00:00Z"), seqs)
        self.assertEqual(seqs_of("since=%s" % everything[0]["time"]), [everything[0]["seq"]] +
                         [r["seq"] for r in everything[1:] if r["time"] >= everything[0]["time"]])
        self.assertEqual(seqs_of("before=%d" % seqs[-1]), [])
        for bad in ("limit=0", "limit=1001", "before=0", "outcome=maybe", "since=soon", "colour=red", "app=A"):
            status, doc, _ = self.call("GET", "/v1/audit?" + bad, key=self.admin)
            self.assertEqual((status, doc["error"]["code"]), (400, "invalid"), bad)

    def test_12_segments_reach_both_stores_within_the_interval_and_hold_the_stored_bytes(self):
        self.wait_exported()
        start = time.monotonic()
        self.refuse(1)  # fewer than export_records: exported once the interval has passed
        head = self.wait_exported(timeout=INTERVAL_MS / 1000 + 5)
        self.assertLess(time.monotonic() - start, INTERVAL_MS / 1000 + 3)
        with harness.RawLMDB(self.env.data) as db:
            stored = {seq: db.get("audit", seq) for seq in range(1, head + 1)}
        for s3 in (self.r2, self.s3):
            segs = self.segments(s3)
            covered = 0
            for key in sorted(segs):
                first, last = (int(x) for x in key[len("_updraft/audit/"):-len(".jsonl")].split("-"))
                self.assertRegex(key, r"^_updraft/audit/\d{20}-\d{20}\.jsonl$")
                self.assertLessEqual(first, covered + 1, "no gap before %s" % key)
                self.assertLessEqual(last - first + 1, EXPORT_RECORDS)
                lines = segs[key].split(b"\n")
                self.assertEqual(lines[-1], b"", "%s ends with a newline" % key)
                self.assertEqual(lines[:-1], [stored[s] for s in range(first, last + 1)], "%s: the stored bytes" % key)
                covered = max(covered, last)
            self.assertEqual(covered, head, s3.name)
        m = self.metrics()
        self.assertEqual(harness.metric(m, "updraft_audit_export_pending", backend="r2"), 0)
        self.assertEqual(harness.metric(m, "updraft_audit_export_failures_total", backend="r2"), 0)
        self.assertGreaterEqual(harness.metric(m, "updraft_audit_export_segments_total", backend="s3"), 1)

    def test_13_a_stopped_backend_never_holds_up_the_other_and_catches_up(self):
        self.wait_exported()
        os.kill(self.s3.popen.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, self.s3.popen.pid, signal.SIGCONT)
        s3_before = self.exported("s3")
        self.refuse(2 * EXPORT_RECORDS + 1)
        head = self.wait_exported(("r2",), timeout=10)
        self.assertEqual(self.exported("s3"), s3_before, "nothing reached the stopped store")
        failures = harness.poll(lambda: harness.metric(self.metrics(), "updraft_audit_export_failures_total", backend="s3"),
                                lambda v: v >= 1, 10)
        self.assertGreaterEqual(failures, 1)
        os.kill(self.s3.popen.pid, signal.SIGCONT)
        self.assertEqual(self.wait_exported(("s3",), timeout=15), head)

    def test_14_verify_passes_on_an_untouched_trail(self):
        head = self.wait_exported()
        out = self.verify().stdout
        self.assertRegex(out, r"^audit: %d records, chain head %d [0-9a-f]{64}; r2: \d+ segments? to record %d, "
                              r"s3: \d+ segments? to record %d, all match\n$" % (head, head, head, head))

    def test_15_verify_names_a_record_edited_in_the_store(self):
        self.wait_exported()
        data = self.copy_data("edited")
        with harness.RawLMDB(data) as db:
            # the first record of a request (the host's own records have no source address)
            seq = next(n for n in range(1, 100) if b'"source":"127.0.0.1"' in db.get("audit", n))
            rec = db.get("audit", seq)
            db.put("audit", seq, rec.replace(b'"source":"127.0.0.1"', b'"source":"127.0.0.9"'))
        err = self.verify(data, expect=1).stderr
        self.assertIn("breaks at record %d:" % seq, err)
        self.assertIn("differ", err)

    def test_16_verify_names_the_first_of_ten_deleted_records(self):
        head = self.wait_exported()
        self.assertGreater(head, 12)
        data = self.copy_data("deleted")
        with harness.RawLMDB(data) as db:
            for seq in range(head - 9, head + 1):
                db.delete("audit", seq)
            last = db.get("audit", head - 10)
            db.put("meta", "audit_head", b"%d %s" % (head - 10, hashlib.sha256(last).hexdigest().encode()))
        err = self.verify(data, expect=1).stderr
        self.assertIn("breaks at record %d:" % (head - 9), err)
        self.assertIn("missing from the store", err)

    def test_17_verify_names_the_first_record_of_a_segment_rewritten_on_one_store(self):
        self.wait_exported()
        segs = self.segments(self.s3)
        key = sorted(segs)[1]
        first = int(key[len("_updraft/audit/"):].split("-")[0])
        lines = segs[key].split(b"\n")
        lines[1] = lines[1].replace(b'"source":"127.0.0.1"', b'"source":"10.0.0.1"')
        self.env.s3_put(self.s3, key, b"\n".join(lines))
        self.addCleanup(self.env.s3_put, self.s3, key, segs[key])
        err = self.verify(expect=1).stderr
        self.assertIn("breaks at record %d:" % (first + 1), err)
        self.assertIn("s3's copy in segment %s" % key, err)

    def test_18_verify_refuses_bad_usage(self):
        for args in (("audit",), ("audit", "verify", "--force"), ("audit", "check")):
            r = self.env.run("updraft-control", "--config", self.config, *args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn("usage", r.stderr)


class LocalAuditTrailTest(harness.StackTest):
    """object_store.kind local: the segments go to STORAGE/_updraft/audit/, and verify reads them there."""
    env_name = "test_audit_local"
    programs = ("control",)
    keys = (("admin", "admin", "ops"),)
    apps = ((APP, "Acme"),)

    @classmethod
    def prepare_stack(cls):
        cls.config = cls.env.write("local.yaml", AUDIT_CONFIG)

    @classmethod
    def control_args(cls):
        return ("--config", cls.config)

    def test_segments_land_in_the_storage_dir_and_verify_reads_them(self):
        d = os.path.join(self.env.storage, "_updraft", "audit")
        files = harness.poll(lambda: sorted(os.listdir(d)) if os.path.isdir(d) else [], lambda v: len(v) >= 1, 10)
        # the host's key creation, then the app's
        self.assertEqual(files, ["00000000000000000001-00000000000000000002.jsonl"])
        with open(os.path.join(d, files[0]), "rb") as f:
            lines = f.read().splitlines()
        self.assertEqual([json.loads(line)["action"] for line in lines], ["key.create", "app.create"])
        self.assertTrue(json.loads(lines[0])["actor"]["host"])
        r = self.env.run("updraft-control", "--config", self.config, "--data", self.env.data, "--storage", self.env.storage,
                         "audit", "verify")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("local: 1 segment to record 2, all match", r.stdout)


class AuditFlushedAtShutdownTest(harness.StackTest):
    """A control plane stopped before its records were due still exports them: stopped and then lost, it loses none."""
    env_name = "test_audit_shutdown"
    programs = ("control",)
    keys = (("admin", "admin", "ops"),)

    @classmethod
    def prepare_stack(cls):
        # never due on their own while the test runs: an hour, and a segment of 1000 records
        cls.config = cls.env.write("late.yaml", "audit:\n  export_interval_ms: 3600000\n  export_records: 1000\n")

    @classmethod
    def control_args(cls):
        return ("--config", cls.config)

    def test_records_waiting_at_sigterm_are_exported_before_exit(self):
        status, doc = self.env.api("POST", "/v1/apps", {"id": APP}, key=self.admin)
        self.assertEqual(status, 201, doc)
        d = os.path.join(self.env.storage, "_updraft", "audit")
        self.assertFalse(os.path.isdir(d) and os.listdir(d), "nothing was due before the stop")
        self.control.stop()
        self.assertEqual(sorted(os.listdir(d)), ["00000000000000000001-00000000000000000002.jsonl"])


if __name__ == "__main__":
    unittest.main()
