#!/usr/bin/env python3
"""Story: the control plane is killed with SIGKILL again and again while it registers releases and
moves a rollout, and the origin while it records the clients it has seen; after every restart the
LMDB environment opens, every acknowledged write is there, a write cut off mid-flight is there
whole or not at all, and the origin answers for exactly that state.

Each write is one LMDB transaction (control/publish.c), so after a kill the channel is the last
acknowledged one or, when the write in flight had committed, that write's result one generation on.
Writes and kill times are random: a failure names its seed, UPDRAFT_CRASH_SEED=N repeats it and
UPDRAFT_CRASH_ROUNDS=N kills more often. README.md "How it works", PROTOCOLS.md "Update feeds".
"""
import base64
import hashlib
import http.client
import json
import os
import random
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP = "crash"
CHANNEL = "/v1/apps/%s/channels/latest" % APP
FEED = "/update/%s/latest.yml" % APP
ROUNDS = int(os.environ.get("UPDRAFT_CRASH_ROUNDS") or 40)
SEED = int(os.environ.get("UPDRAFT_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
VERSIONS = ["1.0.%d" % i for i in range(120)]
VERSION_OF = {name % v: v for v in VERSIONS for name in ("App-Setup-%s.exe", "App-%s-mac.zip")}
FILES = {name: os.urandom(random.randrange(200, 2000)) for name in VERSION_OF}
CLIENT_ERRORS = (OSError, http.client.HTTPException)


def sha512(data):
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def release_files(version):
    return [dict(name=name, size=len(FILES[name]), sha512=sha512(FILES[name]), platform=platform, arch="x64")
            for name, platform in (("App-Setup-%s.exe" % version, "windows"), ("App-%s-mac.zip" % version, "mac"))]


def observed(ch):
    """What the writes change in a channel, from the control API's channel JSON."""
    r = ch["rollout"]
    return dict(generation=ch["generation"], stable=ch["stable"], rollout=(r["version"], r["percent_bp"]) if r else None,
                pinned=sorted(ch["pinned"]), versions=sorted((x["version"] for x in ch["releases"]), key=VERSIONS.index))


def after(state, op):
    """The channel once `op` has committed; every write adds one to the generation."""
    kind, arg = op
    s = dict(state, generation=state["generation"] + 1)
    if kind == "release":
        version, bp = arg
        s["versions"] = sorted(state["versions"] + [version], key=VERSIONS.index)
        if bp is None:
            s["stable"], s["rollout"] = version, None
        else:
            s["rollout"] = (version, bp)
    elif kind == "percent":
        if arg == 10000:
            s["stable"], s["rollout"] = state["rollout"][0], None
        else:
            s["rollout"] = (state["rollout"][0], arg)
    else:
        s["pinned"] = sorted(arg)
    return s


class Writer(threading.Thread):
    """Sends write after write to one control plane until one gets no answer (the kill): `state` is
    the channel after the last acknowledged write, `in_flight` the write cut off, `cut_by` how."""

    def __init__(self, env, key, state, rng):
        super().__init__(daemon=True)
        self.env, self.key, self.state, self.rng = env, key, state, rng
        self.acked = 0
        self.in_flight = self.cut_by = self.error = None

    def next_op(self):
        s, rng = self.state, self.rng
        left = VERSIONS[max(VERSIONS.index(v) for v in s["versions"]) + 1:]
        roll = rng.random()
        if roll < 0.15:
            return ("pinned", ["tester-%d" % i for i in range(rng.randrange(4))])
        if left and (s["rollout"] is None or roll < 0.5):
            percent = rng.choice([None, None, 1, 10, 25.5, 50, 99.99])
            return ("release", (left[0], None if percent is None else round(percent * 100)))
        if s["rollout"] is None:
            return ("pinned", ["tester-9"])
        return ("percent", rng.choice([0, 500, 3333, 5000, 9000, 9999] + ([10000] if left else [])))

    def send(self, op):
        kind, arg = op
        if kind == "release":
            version, bp = arg
            status, body = self.env.register_release(self.key, APP, version, release_files(version),
                                                     rollout=None if bp is None else bp / 100)
            return status == 201, status, body, (body or {}).get("channel")
        change = {"percent": arg / 100} if kind == "percent" else {"pinned": arg}
        status, body = self.env.api("PUT", CHANNEL + "/rollout", change, key=self.key)
        return status == 200, status, body, body

    def run(self):
        while True:
            op = self.next_op()
            try:
                ok, status, body, ch = self.send(op)
            except CLIENT_ERRORS as e:
                self.in_flight, self.cut_by = op, e
                return
            if not ok:
                self.error = "%s answered %d: %r" % (op, status, body)
                return
            want = after(self.state, op)
            if observed(ch) != want:
                self.error = "%s acknowledged %r, expected %r" % (op, observed(ch), want)
                return
            self.state = want
            self.acked += 1


class Checker(threading.Thread):
    """Personalised update checks with ever new client ids, so the origin's clients-seen writer
    keeps taking the LMDB write lock. `answers`: {client id: version}; `cut`: the id whose check
    the origin's death cut off (until_killed), which it may have recorded or not."""

    def __init__(self, origin, prefix, until_killed=False):
        super().__init__(daemon=True)
        self.origin, self.prefix, self.until_killed = origin, prefix, until_killed
        self.stop = threading.Event()
        self.answers = {}
        self.cut = self.error = None

    def run(self):
        conn = None
        cid = None
        try:
            while not self.stop.is_set():
                cid = "%s-%06d" % (self.prefix, len(self.answers))
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.origin.port, timeout=10)
                conn.request("GET", FEED, headers={"X-Updraft-Client": cid})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    self.error = "%s: %d %r" % (cid, resp.status, body[:200])
                    return
                self.answers[cid] = harness.parse_yaml(body.decode())["version"]
        except CLIENT_ERRORS as e:
            if self.until_killed:
                self.cut = cid
            else:
                self.error = "%s: %r" % (cid, e)
        finally:
            if conn is not None:
                conn.close()


def ask(origin, ids):
    """Personalised electron-updater checks over one keep-alive connection: {client id: version}."""
    conn = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
    answers = {}
    try:
        for cid in ids:
            conn.request("GET", FEED, headers={"X-Updraft-Client": cid})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise AssertionError("%s: %d %r" % (cid, resp.status, body[:200]))
            answers[cid] = harness.parse_yaml(body.decode())["version"]
    finally:
        conn.close()
    return answers


class CrashSafetyTest(harness.StackTest):
    maxDiff = None

    def start(self, name, releases):
        env = self.fresh_env(name)
        for name, data in FILES.items():
            env.put_artifact(APP, VERSION_OF[name], name, data)
        origin = env.start_origin()
        self.key = env.create_key()
        env.start_control(public_url=origin.url)
        status, body = env.api("POST", "/v1/apps", {"id": APP, "name": "Crash"}, key=self.key)
        self.assertEqual(status, 201, body)
        for version, percent in releases:
            status, body = env.register_release(self.key, APP, version, release_files(version), rollout=percent)
            self.assertEqual(status, 201, body)
        return env, origin, observed(body["channel"])

    def channel(self, env):
        status, body = env.api("GET", CHANNEL, key=self.key)
        self.assertEqual(status, 200, body)
        return body

    def assert_artifact(self, env, url, name, why):
        """A feed's URL points at the bytes that were registered, and the origin serves them."""
        self.assertTrue(url.endswith("/artifacts/%s/%s/%s" % (APP, VERSION_OF[name], name)), "%s: %s" % (why, url))
        status, _, data = env.http("GET", urllib.parse.urlsplit(url).path)
        self.assertEqual((status, sha512(data)), (200, sha512(FILES[name])), "%s: %s" % (why, url))

    def assert_feed(self, env, headers, version, staging, why):
        status, _, body = env.http("GET", FEED, headers)
        self.assertEqual(status, 200, "%s: %r" % (why, body[:300]))
        y = harness.parse_yaml(body.decode())
        self.assertEqual((y["version"], y.get("stagingPercentage")), (version, staging), why)
        exe = "App-Setup-%s.exe" % version
        self.assertEqual((y["sha512"], y["files"][0]["sha512"]), (sha512(FILES[exe]),) * 2, why)
        self.assert_artifact(env, y["files"][0]["url"], exe, why)

    def assert_mac(self, env, headers, version, why):
        status, _, body = env.http("GET", "/update/%s/darwin/x64/0.0.1" % APP, headers)
        self.assertEqual(status, 200, "%s: %r" % (why, body[:300]))
        j = json.loads(body)
        self.assertEqual(j["name"], version, why)
        self.assert_artifact(env, j["url"], "App-%s-mac.zip" % version, why)

    def assert_origin_serves(self, env, state, why):
        """The feeds the origin serves for `state` exist, are whole, and point at whole artifacts."""
        stable, rollout = state["stable"], state["rollout"]
        if rollout:
            self.assert_feed(env, {}, rollout[0], rollout[1] // 100, why + ": non-personalised feed of a rollout")
        else:
            self.assert_feed(env, {}, stable, None, why + ": non-personalised feed")
        self.assert_mac(env, {}, stable, why + ": Squirrel.Mac, non-personalised")
        if rollout and state["pinned"]:
            pin = {"X-Updraft-Client": state["pinned"][0]}
            self.assert_feed(env, pin, rollout[0], None, why + ": a pinned tester")
            self.assert_mac(env, pin, rollout[0], why + ": a pinned tester on Squirrel.Mac")
        if not rollout or rollout[1] == 0:
            self.assert_feed(env, {"X-Updraft-Client": "nobody-special"}, stable, None, why + ": personalised, no rollout")

    # ---------------------------------------------------------------------------------------------

    def test_a_control_plane_killed_mid_write_keeps_every_acknowledged_write(self):
        env, origin, state = self.start("test_crash_safety_control", [("1.0.0", None)])
        rng = random.Random(SEED)
        checker = Checker(origin, "bg")
        checker.start()
        self.addCleanup(checker.stop.set)
        acked = 0
        for rnd in range(ROUNDS):
            why = "seed %d round %d" % (SEED, rnd)
            writer = Writer(env, self.key, state, rng)
            writer.start()
            time.sleep(rng.uniform(0.010, 0.150))
            env.control.kill()
            writer.join(10)
            self.assertFalse(writer.is_alive(), why + ": the writer did not notice the kill")
            self.assertIsNone(writer.error, why)
            acked += writer.acked

            env.control = env.start_control(public_url=origin.url)  # fails the test if the store does not open
            now, last = observed(self.channel(env)), writer.state
            self.assertGreaterEqual(now["generation"], last["generation"], why + ": the generation went backwards")
            self.assertLessEqual(set(last["versions"]), set(now["versions"]), why + ": an acknowledged release is lost")
            if now["generation"] == last["generation"] or isinstance(writer.cut_by, ConnectionRefusedError):
                self.assertEqual(now, last, why + ": the last acknowledged state")
            else:
                self.assertEqual(now, after(last, writer.in_flight),
                                 why + ": the write in flight, %s, committed but not whole" % (writer.in_flight,))
            state = now
            self.assert_origin_serves(env, state, why)
            self.assertIsNone(checker.error, why + ": the origin while the control plane was killed")

        checker.stop.set()
        checker.join(10)
        self.assertIsNone(checker.error)
        self.assertGreater(acked, ROUNDS, "writes acknowledged between the kills")
        self.assertGreater(len(checker.answers), 0)
        with open(origin.log, errors="replace") as f:
            self.assertNotIn("clients-seen: lost a batch", f.read(), "the origin's writer got the lock after every kill")

    def test_an_origin_killed_while_recording_clients_reopens_and_counts_each_client_once(self):
        env, origin, state = self.start("test_crash_safety_origin", [("1.0.0", None), ("1.0.1", 50)])
        offered, testers = {}, 0
        for rnd in range(3):
            why = "round %d" % rnd
            checkers = [Checker(origin, "r%d-t%d" % (rnd, i), until_killed=True) for i in range(3)]
            for c in checkers:
                c.start()
            deadline = time.monotonic() + 10
            while not harness.metric_sum(env.http("GET", "/metrics", base=origin)[2].decode(),
                                         "updraft_clients_seen_recorded_total"):
                self.assertLess(time.monotonic(), deadline, why + ": no client recorded")
                time.sleep(0.01)
            time.sleep(random.uniform(0, 0.1))
            origin.kill()  # the checks go on until the kill, so the writer thread is busy
            cut = []
            for c in checkers:
                c.join(10)
                self.assertIsNone(c.error, why)
                offered.update(c.answers)
                cut += [c.cut] if c.cut else []

            env.origin = origin = env.start_origin()  # fails the test if the store does not open
            status, _, body = env.http("GET", "/healthz")
            self.assertEqual(status, 200, "%s: %r" % (why, body))
            status, body = env.api("PUT", CHANNEL + "/rollout", {"pinned": ["tester-%d" % rnd]}, key=self.key)
            self.assertEqual(status, 200, "%s: the control plane writes after the kill: %r" % (why, body))
            state = after(state, ("pinned", ["tester-%d" % rnd]))
            self.assertEqual(observed(body), state, why)
            self.assert_origin_serves(env, state, why)  # asks once as tester-N, pinned: offered 1.0.1
            testers += 1
            again = ask(origin, sorted(offered) + cut)
            self.assertEqual({c: again[c] for c in offered}, offered, why + ": the same answers after the restart")
            offered.update(again)

        want = {v: list(offered.values()).count(v) for v in ("1.0.0", "1.0.1")}
        want["1.0.1"] += testers
        self.assertGreater(min(want.values()), 0)
        got = harness.poll(lambda: {r["version"]: r["clients_offered"] for r in self.channel(env)["releases"]},
                           lambda got: got == want, 10)
        self.assertEqual(got, want, "every client offered a version is counted once, across the kills")


if __name__ == "__main__":
    unittest.main()
