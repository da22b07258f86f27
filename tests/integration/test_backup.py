#!/usr/bin/env python3
"""Story: the control plane backs its LMDB environment up to R2 and S3 on a schedule and on request,
counts a backup good only once it was read back from that store and opened, keeps them 42 days (never
a store's newest good one), and restores one in minutes, verified, even with R2 down.

Two signature-checking s3rvers stand in for R2 and S3, object_store.kind s3. A backup asked for with
POST /v1/backups appears on both under _updraft/backups/ID/ with a manifest whose size and SHA-256 are
the data's, and a verdict "good"; `backup list` and GET /v1/backups show it, /metrics counts it. A copy
corrupted on one store (planted without a verdict) is read back by the next run and is not good there,
and a restore of it falls back to the other store. Retention deletes planted backups older than 42
days but keeps a store's newest good one when that store's new backup fails. A restore refuses a
non-empty directory without --force. The disaster drill: an app, keys and a release in partial rollout,
a backup, then more changes (a release, a rollout move, a new app, refusals), exported and published, the
control plane stopped and its data dir deleted, the backup restored and rolled forward from the
stores (one store's state document of acme rewritten to be invalid: refused and reported, the other
store's used), the control plane started again: the channels answer as before the loss (not as at
backup time), the new app is there, the audit chain verifies from seq 1 (each record's "prev" the
SHA-256 of the one before, read with mdb_dump; `audit verify` agrees with the stores) and ends at the
head before the loss, and a new change continues it; with R2 stopped the restore and its roll-forward
come from S3; a document refused on every store leaves that app at the backup's state and the
restore exits 1; with --no-roll-forward the channel answers as at backup time. Scheduled runs every 2 s,
the /healthz warning when they stop succeeding, and the local-directory store are checked too.
docs/control-api.md "Backups" and "Recovery objectives".
"""
import calendar
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PREFIX = "_updraft/backups/"
DAY = 86400
MIB = 1024 * 1024


def backup_id(t):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def id_time(bid):
    return calendar.timegm(time.strptime(bid, "%Y%m%dT%H%M%SZ"))


def mdb_unprint(s):
    """Bytes of one value of `mdb_dump -p` (printable bytes as they are, '\\\\' a backslash, \\XX any other)."""
    out, i = bytearray(), 0
    while i < len(s):
        if s[i] == "\\":
            if s[i + 1] == "\\":
                out.append(0x5C)
                i += 2
            else:
                out.append(int(s[i + 1:i + 3], 16))
                i += 3
        else:
            out.extend(s[i].encode("latin-1"))
            i += 1
    return bytes(out)


def audit_records(data_dir):
    """[(seq, record bytes)] of the audit sub-database, in key order, read with mdb_dump."""
    if shutil.which("mdb_dump") is None:
        raise AssertionError("mdb_dump is not installed (Debian: apt-get install lmdb-utils)")
    r = subprocess.run(["mdb_dump", "-p", "-s", "audit", os.path.join(data_dir, "lmdb")], capture_output=True, text=True,
                       encoding="latin-1", timeout=60)
    if r.returncode != 0:
        raise AssertionError("mdb_dump: %s" % r.stderr)
    lines = r.stdout.split("\n")
    body = lines[lines.index("HEADER=END") + 1:lines.index("DATA=END")]
    recs = []
    for k, v in zip(body[0::2], body[1::2]):
        recs.append((int.from_bytes(mdb_unprint(k[1:]), "big"), mdb_unprint(v[1:])))
    return recs


def verify_chain(test, recs):
    """The chain from seq 1: consecutive numbers, each record's "prev" the SHA-256 of the one before (64 zeros first).
    Returns (last seq, its hash)."""
    prev = "0" * 64
    for n, (seq, rec) in enumerate(recs, 1):
        doc = json.loads(rec)
        test.assertEqual(seq, n, "audit records are numbered from 1 without a gap")
        test.assertEqual(doc["seq"], seq, "record %d names its own sequence number" % seq)
        test.assertEqual(doc["prev"], prev, "record %d's prev is the hash of record %d" % (seq, seq - 1))
        prev = hashlib.sha256(rec).hexdigest()
    return len(recs), prev


class Stores:
    """Object-store helpers over the two s3rvers of a test class."""

    def s3_delete(self, s3, key):
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", "--aws-sigv4", "aws:amz:auto:s3",
                            "--user", "%s:%s" % (harness.S3_ACCESS_KEY, harness.S3_SECRET_KEY),
                            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                            "%s/%s/%s" % (s3.url, harness.S3_BUCKET, urllib.parse.quote(key, safe="/~"))],
                           capture_output=True, timeout=60)
        self.assertIn(r.stdout.strip(), (b"204", b"200"), r.stderr)

    def obj(self, s3, bid, name):
        """(status, bytes) of one object of a backup."""
        return self.env.s3_get(s3, PREFIX + bid + "/" + name)

    def doc(self, s3, bid, name):
        status, body = self.obj(s3, bid, name)
        self.assertEqual(status, 200, "%s holds no %s of backup %s" % (s3.name, name, bid))
        return json.loads(body)

    def plant(self, s3, src, bid, flip=False, verdict=False):
        """Copies backup src to a backup named bid on s3 (its manifest renamed, a byte of its data flipped when asked,
        the source's verdict copied when asked)."""
        _, data = self.obj(s3, src, "data.mdb")
        if flip:
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data = bytes(data)
        m = self.doc(s3, src, "manifest.json")
        m["id"], m["time"] = bid, id_time(bid)
        self.env.s3_put(s3, PREFIX + bid + "/data.mdb", data)
        self.env.s3_put(s3, PREFIX + bid + "/manifest.json", json.dumps(m).encode())
        if verdict:
            _, v = self.obj(s3, src, "verdict.json")
            self.env.s3_put(s3, PREFIX + bid + "/verdict.json", v)

    def api_backups(self):
        status, doc = self.env.api("GET", "/v1/backups", key=self.admin)
        self.assertEqual(status, 200, doc)
        return {b["id"]: b for b in doc["backups"]}

    def wait_good(self, bid, stores=("r2", "s3"), timeout=60):
        got = harness.poll(self.api_backups, lambda bs: bid in bs and all(bs[bid]["stores"].get(s, {}).get("good") for s in stores),
                           timeout)
        self.assertIn(bid, got, "GET /v1/backups lists backup %s" % bid)
        for s in stores:
            self.assertTrue(got[bid]["stores"][s]["good"], "backup %s is good on %s: %r" % (bid, s, got[bid]))
        return got[bid]

    def host(self, *args, timeout=120):
        return self.env.run("updraft-control", "--config", self.config, *args, timeout=timeout)


class BackupTest(harness.StackTest, Stores):
    env_name = "test_backup"
    s3rvers = ("r2", "s3")
    programs = ("control",)
    keys = (("admin", "admin", "backup"),)
    apps = (("acme", "Acme"),)

    @classmethod
    def control_args(cls):
        # a 3 s upload allowance makes a trickling store fail fast; runs only when asked; the catalog listed every second
        cls.config = cls.env.object_store_config(cls.r2, cls.s3, extra=(
            "  upload_timeout_base_ms: 3000\n"
            "backup:\n  enabled: false\n  refresh_s: 1\n  part_retries: 0\n"))
        return ("--config", cls.config, "--data", cls.env.data, "--storage", cls.env.storage)

    def host(self, *args, timeout=120):
        return self.env.run("updraft-control", "--config", self.config, "--data", self.env.data, "--storage", self.env.storage, *args,
                            timeout=timeout)

    @classmethod
    def set_up_stack(cls):
        status, doc = cls.env.api("POST", "/v1/backups", key=cls.admin)
        if status != 202:
            raise AssertionError("POST /v1/backups: %d %r" % (status, doc))
        cls.first = doc["id"]

    def test_a_backup_asked_for_is_on_both_stores_with_a_manifest_and_read_back_good(self):
        b = self.wait_good(self.first)
        for s3 in (self.r2, self.s3):
            m = self.doc(s3, self.first, "manifest.json")
            status, data = self.obj(s3, self.first, "data.mdb")
            self.assertEqual(status, 200)
            self.assertEqual(m["size"], len(data), "the manifest's size is the data's on %s" % s3.name)
            self.assertEqual(m["sha256"], hashlib.sha256(data).hexdigest(), "the manifest's SHA-256 is the data's on %s" % s3.name)
            self.assertEqual(m["schema"], 5)
            self.assertGreaterEqual(m["audit_head"]["seq"], 1, "the audit head names the backup.create record at least")
            v = self.doc(s3, self.first, "verdict.json")
            self.assertTrue(v["good"], "the verdict on %s says good" % s3.name)
            self.assertEqual(v["sha256"], m["sha256"])
        self.assertEqual((b["size"], b["sha256"], b["audit_head"]), (m["size"], m["sha256"], m["audit_head"]))
        self.assertTrue(b["good"])
        metrics = self.env.http("GET", "/metrics", base=self.control)[2].decode()
        for store in ("r2", "s3"):
            self.assertGreaterEqual(harness.metric(metrics, "updraft_backups_total", store=store, outcome="good"), 1)
        self.assertIn("updraft_backup_age_seconds ", metrics, "the newest good backup's age is in /metrics")
        self.assertLess(harness.metric(metrics, "updraft_backup_age_seconds"), 3600)

    def test_the_host_list_shows_the_backup_good_on_both(self):
        self.wait_good(self.first)
        r = self.host("backup", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        line = [l for l in r.stdout.splitlines() if l.startswith(self.first)]
        self.assertEqual(len(line), 1, r.stdout)
        self.assertEqual(line[0].split()[-2:], ["good", "good"], r.stdout)

    def test_backups_need_an_account_wide_admin(self):
        r = self.env.run("updraft-control", "keys", "create", "--data", self.env.data, "--role", "release", "--name", "rel")
        self.assertEqual(r.returncode, 0, r.stderr)
        for method in ("GET", "POST"):
            status, doc = self.env.api(method, "/v1/backups", key=r.stdout.strip())
            self.assertEqual(status, 403, doc)
            status, doc = self.env.api(method, "/v1/backups")
            self.assertEqual(status, 401, doc)

    def test_a_corrupted_copy_on_one_store_is_not_good_there_and_a_restore_falls_back(self):
        self.wait_good(self.first)
        bad = backup_id(id_time(self.first) - 3600)  # an hour older: no retention, no clash
        self.plant(self.r2, self.first, bad, flip=True)
        self.plant(self.s3, self.first, bad)
        r = self.host("backup", "now")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("backup %s: r2: read back (it had no verdict): not good" % bad, r.stdout)
        self.assertIn("backup %s: s3: read back (it had no verdict): good" % bad, r.stdout)
        self.assertFalse(self.doc(self.r2, bad, "verdict.json")["good"], "r2's verdict says not good")
        self.assertTrue(self.doc(self.s3, bad, "verdict.json")["good"])
        got = harness.poll(self.api_backups, lambda bs: bad in bs and bs[bad]["stores"]["r2"]["checked"] is not None, 30)
        self.assertFalse(got[bad]["stores"]["r2"]["good"], "GET /v1/backups: not good on r2")
        self.assertIn("SHA-256", got[bad]["stores"]["r2"]["reason"])
        self.assertTrue(got[bad]["stores"]["s3"]["good"])
        self.assertTrue(got[bad]["good"], "good overall: one store holds a good copy")
        target = os.path.join(self.env.dir, "restore-fallback")
        r = self.host("backup", "restore", bad, "--data", target)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("trying the next store", r.stdout)
        self.assertIn("restore: done: backup %s from s3" % bad, r.stdout)

    def test_restore_refuses_a_non_empty_directory_without_force(self):
        self.wait_good(self.first)
        target = os.path.join(self.env.dir, "restore-busy")
        os.makedirs(target)
        with open(os.path.join(target, "notes.txt"), "w") as f:
            f.write("keep me")
        r = self.host("backup", "restore", self.first, "--data", target)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("is not empty", r.stderr)
        self.assertEqual(os.listdir(target), ["notes.txt"], "nothing was written")
        r = self.host("backup", "restore", self.first, "--data", target, "--force")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.exists(os.path.join(target, "lmdb", "data.mdb")))
        self.assertTrue(os.path.exists(os.path.join(target, "notes.txt")), "--force replaces lmdb/ only")
        self.assertRegex(r.stdout, r"restore: r2: \d+ of \d+ bytes \(100%\), [0-9.]+ MB/s, done")
        r = self.host("backup", "restore", "20261301T000000Z", "--data", os.path.join(self.env.dir, "x"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("no backup id", r.stderr)


class RetentionTest(harness.StackTest, Stores):
    env_name = "test_backup_retention"
    s3rvers = ("r2", "s3")
    keys = (("admin", "admin", "retention"),)

    @classmethod
    def set_up_stack(cls):
        # host runs only; a 3 s upload allowance makes a trickling store fail fast
        cls.config = cls.env.object_store_config(cls.r2, cls.s3, extra=(
            "  upload_timeout_base_ms: 3000\nbackup:\n  part_retries: 0\n"))
        r = cls.env.run("updraft-control", "--config", cls.config, "--data", cls.env.data, "--storage", cls.env.storage, "backup", "now")
        done = [l.split()[1].rstrip(":") for l in r.stdout.splitlines() if l.endswith(": good in every store")]
        if r.returncode != 0 or len(done) != 1:
            raise AssertionError("backup now: %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
        cls.first = done[0]

    def host(self, *args, timeout=120):
        return self.env.run("updraft-control", "--config", self.config, "--data", self.env.data, "--storage", self.env.storage, *args,
                            timeout=timeout)

    def test_retention_deletes_old_backups_but_keeps_a_stores_newest_good_one(self):
        now = time.time()
        old_good, old_bad = backup_id(now - 60 * DAY), backup_id(now - 50 * DAY)
        for s3 in (self.r2, self.s3):
            self.plant(s3, self.first, old_good, verdict=True)
            self.plant(s3, self.first, old_bad, flip=True)
        # s3 holds nothing newer that is good, and its next backup fails (its uploads trickle past their deadline)
        for name in ("verdict.json", "manifest.json", "data.mdb"):
            self.s3_delete(self.s3, PREFIX + self.first + "/" + name)
        self.env.http("PUT", "/__updraft/faults?trickle_kib=1", base=self.s3)
        try:
            r = self.host("backup", "now")
        finally:
            self.env.s3_fault(self.s3, 0)
        self.assertEqual(r.returncode, 1, "the backup is not good on s3: " + r.stdout + r.stderr)
        self.assertIn(": s3: not good: upload", r.stdout)
        self.assertIn("backup %s: r2: deleted by retention" % old_good, r.stdout)
        self.assertIn("backup %s: r2: deleted by retention" % old_bad, r.stdout)
        self.assertIn("backup %s: s3: deleted by retention" % old_bad, r.stdout)
        self.assertNotIn("backup %s: s3: deleted" % old_good, r.stdout)
        for name in ("data.mdb", "manifest.json", "verdict.json"):
            self.assertEqual(self.obj(self.r2, old_good, name)[0], 404, "r2 deleted %s of the old good backup" % name)
            self.assertEqual(self.obj(self.r2, old_bad, name)[0], 404)
            self.assertEqual(self.obj(self.s3, old_bad, name)[0], 404, "s3 deleted %s of the old bad backup" % name)
            self.assertEqual(self.obj(self.s3, old_good, name)[0], 200, "s3 keeps its newest good backup: %s" % name)


class DisasterDrillTest(harness.StackTest, Stores):
    env_name = "test_backup_drill"
    s3rvers = ("r2", "s3")
    keys = (("admin", "admin", "drill"),)

    @classmethod
    def prepare_stack(cls):
        cls.config = None

    @classmethod
    def set_up_stack(cls):
        # parts of 5 MiB: the environment is grown past 10 MiB below, so the data goes up in a multipart upload; audit
        # records go out within 200 ms, so that the changes made after the backup are soon in both stores
        cls.config = cls.env.object_store_config(cls.r2, cls.s3, extra=(
            "backup:\n  enabled: false\n  refresh_s: 1\n  part_size_mib: 5\n"
            "audit:\n  export_interval_ms: 200\n  export_check_ms: 50\n"))

    def start(self, data=None):
        control = self.env.start_control("--config", self.config, "--data", data or self.env.data, "--storage", self.env.storage,
                                         public_url=False)
        self.env.control = control
        return control

    def host(self, *args, timeout=180):
        return self.env.run("updraft-control", "--config", self.config, "--storage", self.env.storage, *args, timeout=timeout)

    def release(self, key, app, version, rollout=None):
        files = [dict(self.env.put_artifact(app, version, "%s-Setup-%s.exe" % (app.capitalize(), version), os.urandom(20000)),
                      platform="windows", arch="x64")]
        status, doc = self.env.register_release(key, app, version, files, rollout=rollout)
        self.assertEqual(status, 201, doc)

    def channels(self, key):
        """What the control plane answers for every channel of the drill's apps (absent ones as their status)."""
        out = {}
        for app in ("acme", "beta"):
            out[app] = self.env.api("GET", "/v1/apps/%s/channels/latest" % app, key=key)
        return out

    def all_exported(self, control):
        """Waits until both stores hold every audit record (the exporter's marks at the chain's head). Returns the head."""
        def seqs():
            m = self.env.http("GET", "/metrics", base=control)[2].decode()
            return [harness.metric(m, "updraft_audit_records_total")] + [
                harness.metric(m, "updraft_audit_exported_seq", backend=b) for b in ("r2", "s3")]
        got = harness.poll(seqs, lambda v: v[0] == v[1] == v[2], 30)
        self.assertEqual(got[1:], [got[0]] * 2, "both stores hold every audit record")
        return int(got[0])

    def index(self, s3):
        status, body = self.env.s3_get(s3, "_updraft/state/index.json")
        self.assertEqual(status, 200)
        return json.loads(body)["apps"]

    def verify(self, data):
        r = self.env.run("updraft-control", "--config", self.config, "--data", data, "audit", "verify", timeout=120)
        self.assertEqual(r.returncode, 0, "audit verify: " + r.stdout + r.stderr)
        return r.stdout

    def test_restored_control_plane_answers_as_before_the_loss_and_continues_its_audit_chain(self):
        env = self.env
        control = self.start()
        keys = {}
        for role in ("release", "build"):
            r = env.run("updraft-control", "keys", "create", "--data", env.data, "--role", role, "--name", role)
            self.assertEqual(r.returncode, 0, r.stderr)
            keys[role] = r.stdout.strip()
        self.assertEqual(env.api("POST", "/v1/apps", {"id": "acme", "name": "Acme"}, key=self.admin)[0], 201)
        self.release(keys["release"], "acme", "1.0.0")
        self.release(keys["release"], "acme", "1.1.0", rollout=20)
        status, doc = env.api("PUT", "/v1/apps/acme/channels/latest/rollout", {"percent": 25}, key=keys["release"])
        self.assertEqual(status, 200, doc)
        at_backup = self.channels(keys["build"])
        self.assertEqual(at_backup["acme"][0], 200, at_backup)
        # grow the environment past two parts with filler records of a sub-database of its own
        filler = "".join("f%08d\n%s\n" % (i, os.urandom(3000).hex()) for i in range(2000))
        r = subprocess.run(["mdb_load", "-T", "-s", "filler", os.path.join(env.data, "lmdb")], input=filler, text=True,
                           capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)

        status, doc = env.api("POST", "/v1/backups", key=self.admin)
        self.assertEqual(status, 202, doc)
        bid = doc["id"]
        self.wait_good(bid, timeout=120)
        manifest = self.doc(self.r2, bid, "manifest.json")
        self.assertGreater(manifest["size"], 10 * MIB, "big enough for three parts")
        self.assertIn("POST /%s/%sdata.mdb" % (harness.S3_BUCKET, PREFIX + bid + "/"), env.s3_stats(self.r2),
                      "the data went up as a multipart upload")

        # after the backup: a new release, a rollout move, a new app, and refusals the trail records
        self.release(keys["release"], "acme", "1.2.0", rollout=10)
        status, doc = env.api("PUT", "/v1/apps/acme/channels/latest/rollout", {"percent": 40}, key=keys["release"])
        self.assertEqual(status, 200, doc)
        self.assertEqual(env.api("POST", "/v1/apps", {"id": "beta", "name": "Beta"}, key=self.admin)[0], 201)
        self.release(keys["release"], "beta", "0.1.0")
        for key in (keys["build"], keys["build"], None):
            status, doc = env.api("PUT", "/v1/apps/acme/channels/latest/rollout", {"percent": 90}, key=key)
            self.assertIn(status, (401, 403), doc)
        before = self.channels(keys["build"])
        self.assertEqual(before["beta"][0], 200, before)
        self.assertNotEqual(before["acme"], at_backup["acme"], "the channel moved after the backup")
        live_head = self.all_exported(control)
        published = self.index(self.r2)
        self.assertEqual(self.index(self.s3), published, "both stores list the same generations")
        self.assertIn("beta", published)

        control.stop()
        head = verify_chain(self, audit_records(env.data))
        self.assertEqual(head[0], live_head)
        self.assertGreater(head[0], manifest["audit_head"]["seq"] + 4, "records were written after the backup")
        # one store's documents of acme rewritten to be invalid: refused there, the other store's used
        bad = json.dumps({"format": 1, "app": "acme", "generation": published["acme"], "records": {}}).encode()
        for key in ("_updraft/state/acme.json", "_updraft/state/acme/%d.json" % published["acme"]):
            env.s3_put(self.r2, key, bad)
        shutil.rmtree(env.data)

        r = self.host("backup", "restore", bid, "--data", env.data)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"restore: r2: \d+ of %d bytes \(\d+%%\), [0-9.]+ MB/s" % manifest["size"])
        self.assertIn("audit chain verified from seq 1 to %d" % manifest["audit_head"]["seq"], r.stdout)
        self.assertIn("restore: acme: r2: _updraft/state/acme.json is refused", r.stdout, "the invalid document is reported")
        self.assertRegex(r.stdout, r"restore: acme: generation \d+ -> %d from s3\n" % published["acme"])
        self.assertRegex(r.stdout, r"restore: beta: generation 0 -> %d from r2 \(an app the backup lacks\)" % published["beta"])
        self.assertIn("restore: audit: records %d to %d appended from r2" % (manifest["audit_head"]["seq"] + 1, head[0]), r.stdout)
        self.assertIn("restore: done: backup %s from r2" % bid, r.stdout)
        self.assertIn(", rolled forward, in ", r.stdout)

        self.assertEqual(verify_chain(self, audit_records(env.data)), head, "the chain ends where it did before the loss")
        self.assertIn("chain head %d %s" % head, self.verify(env.data), "audit verify: the stores' segments match the store")

        control = self.start()
        after = self.channels(keys["build"])
        self.assertEqual(after, before, "the restored channels answer as before the loss, not as at backup time")
        for s3 in (self.r2, self.s3):
            self.assertEqual(self.index(s3), published, "the start republished the generations as they were, not older ones")
        status, doc = env.api("PUT", "/v1/apps/acme/channels/latest/rollout", {"percent": 50}, key=keys["release"])
        self.assertEqual(status, 200, "the release key still works: %r" % doc)
        recs = audit_records(env.data)
        seq, rec = recs[-1]
        self.assertEqual(seq, head[0] + 1, "the next change is the next record")
        self.assertEqual(json.loads(rec)["prev"], head[1], "and it chains on the restored head")
        self.assertEqual(json.loads(rec)["action"], "rollout.set")
        verify_chain(self, recs)
        self.assertEqual(self.all_exported(control), head[0] + 1, "the exporter sends the stores only the new record")
        self.verify(env.data)
        latest = self.channels(keys["build"])

        # R2 down: the restore comes from S3, and so does the roll-forward (the control plane stopped first: it lists
        # R2 every second)
        control.stop()
        final = verify_chain(self, audit_records(env.data))
        self.r2.stop()
        target = os.path.join(env.dir, "restore-without-r2")
        r = self.host("backup", "restore", bid, "--data", target)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("trying the next store", r.stdout)
        self.assertIn("restore: state: r2: the index could not be read", r.stdout)
        self.assertIn("restore: done: backup %s from s3" % bid, r.stdout)
        self.assertEqual(verify_chain(self, audit_records(target)), final)

        # a document refused on every store that answers: the environment is in place, but the restore exits 1 and says
        # which app is left at the backup's state
        for key in ("_updraft/state/acme.json", "_updraft/state/acme/%d.json" % self.index(self.s3)["acme"]):
            env.s3_put(self.s3, key, bad)
        target = os.path.join(env.dir, "restore-refused")
        r = self.host("backup", "restore", bid, "--data", target)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("restore: acme: left at the backup's generation", r.stdout)
        self.assertRegex(r.stderr, r"restored into .*/lmdb, but not rolled forward completely: left at the backup's state .*: acme;")
        self.assertTrue(os.path.exists(os.path.join(target, "lmdb", "data.mdb")), "the environment is in place all the same")

        # --no-roll-forward: exactly the backup, for forensics (served here by a control plane of its own, without the
        # object stores, so that it publishes nothing)
        target = os.path.join(env.dir, "restore-as-backed-up")
        r = self.host("backup", "restore", bid, "--data", target, "--no-roll-forward", "--from", "s3")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("not rolled forward (--no-roll-forward)", r.stdout)
        self.assertNotIn("generation", r.stdout)
        self.assertEqual(verify_chain(self, audit_records(target))[0], manifest["audit_head"]["seq"])
        local = env.write("forensics.yaml", "listen: [\"127.0.0.1:0\"]\nbackup:\n  enabled: false\n")
        env.control = env.start_control("--config", local, "--data", target, "--storage", os.path.join(env.dir, "forensics-storage"),
                                        public_url=False)
        self.assertEqual(self.channels(keys["build"])["acme"], at_backup["acme"], "the channel answers as at backup time")
        self.assertEqual(self.channels(keys["build"])["beta"][0], 404, "the app made after the backup is not there")
        self.assertNotEqual(latest["acme"], at_backup["acme"])


class ScheduleTest(harness.StackTest, Stores):
    env_name = "test_backup_schedule"
    s3rvers = ("r2", "s3")
    programs = ("control",)
    keys = (("admin", "admin", "schedule"),)

    @classmethod
    def control_args(cls):
        cls.config = cls.env.object_store_config(cls.r2, cls.s3, extra="backup:\n  interval_s: 2\n  refresh_s: 1\n  part_retries: 0\n")
        return ("--config", cls.config)

    def test_backups_run_every_interval_and_healthz_warns_once_they_stop_succeeding(self):
        good = harness.poll(self.api_backups, lambda bs: sum(1 for b in bs.values() if b["stores"].get("r2", {}).get("good")
                                                              and b["stores"].get("s3", {}).get("good")) >= 2, 30)
        self.assertGreaterEqual(len(good), 2, "two scheduled backups within 30 s at one every 2 s: %r" % list(good))
        status, _, body = self.env.http("GET", "/healthz", base=self.control)
        self.assertEqual((status, body), (200, b"ok\n"), "no warning while backups succeed")
        for s3 in (self.r2, self.s3):
            self.env.s3_fault(s3, 500)
        try:
            status, _, body = harness.poll(lambda: self.env.http("GET", "/healthz", base=self.control), lambda a: b"warning" in a[2], 30)
        finally:
            for s3 in (self.r2, self.s3):
                self.env.s3_fault(s3, 0)
        self.assertEqual(status, 200, "a stale backup is a warning, not a 503")
        self.assertRegex(body.decode(), r"^ok\nwarning: backups: r2: the newest good backup is \d+ s old, over twice the interval \(2 s\)")
        metrics = self.env.http("GET", "/metrics", base=self.control)[2].decode()
        self.assertGreaterEqual(harness.metric(metrics, "updraft_backups_total", store="r2", outcome="failed"), 1)
        self.assertGreater(harness.metric(metrics, "updraft_backup_age_seconds"), 4)


class LocalStoreTest(harness.StackTest, Stores):
    env_name = "test_backup_local"
    programs = ("control",)
    keys = (("admin", "admin", "local"),)

    @classmethod
    def control_args(cls):
        cls.config = cls.env.write("local.yaml", "listen: [\"127.0.0.1:0\"]\nbackup:\n  enabled: false\n  refresh_s: 1\n"
                                                 "audit:\n  export_interval_ms: 200\n  export_check_ms: 50\n")
        return ("--config", cls.config)

    def test_backups_go_to_the_storage_directory_in_the_same_layout(self):
        status, doc = self.env.api("POST", "/v1/backups", key=self.admin)
        self.assertEqual(status, 202, doc)
        self.wait_good(doc["id"], stores=("local",))
        d = os.path.join(self.env.storage, "_updraft", "backups", doc["id"])
        self.assertEqual(sorted(os.listdir(d)), ["data.mdb", "manifest.json", "verdict.json"])
        with open(os.path.join(d, "data.mdb"), "rb") as f:
            data = f.read()
        with open(os.path.join(d, "manifest.json")) as f:
            self.assertEqual(json.load(f)["sha256"], hashlib.sha256(data).hexdigest())

    def test_a_restore_takes_the_audit_records_exported_to_the_storage_directory_after_the_backup(self):
        status, doc = self.env.api("POST", "/v1/backups", key=self.admin)
        self.assertEqual(status, 202, doc)
        bid = doc["id"]
        self.wait_good(bid, stores=("local",))
        for _ in range(3):
            self.assertEqual(self.env.api("GET", "/v1/backups")[0], 401, "a refusal the trail records")
        def seqs():
            m = self.env.http("GET", "/metrics", base=self.control)[2].decode()
            return harness.metric(m, "updraft_audit_records_total"), harness.metric(m, "updraft_audit_exported_seq", backend="local")
        head, exported = harness.poll(seqs, lambda v: v[0] == v[1] and v[0] > 0, 30)
        self.assertEqual(exported, head, "the storage directory holds every record")
        with open(os.path.join(self.env.storage, "_updraft", "backups", bid, "manifest.json")) as f:
            self.assertGreater(head, json.load(f)["audit_head"]["seq"], "records were written after the backup")
        target = os.path.join(self.env.dir, "restore-local")
        r = self.env.run("updraft-control", "--config", self.config, "--storage", self.env.storage, "backup", "restore", bid,
                         "--data", target, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("restore: state: 0 apps rolled forward", r.stdout, "kind local publishes no state: nothing to take")
        self.assertIn("restore: audit: local: ", r.stdout)
        self.assertEqual(verify_chain(self, audit_records(target))[0], int(head), "the chain ends at the live head")


if __name__ == "__main__":
    unittest.main()
