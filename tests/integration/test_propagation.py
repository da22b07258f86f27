#!/usr/bin/env python3
"""Story: when ops release a version or move a rollout, every cache between Updraft and the
desktop apps reflects it by the time the control call returns, and origins that share no disk
give the same answers.

Real components on loopback, no mocks: two s3rvers stand in for R2 and S3; the control plane
(object_store.kind s3) publishes state to both and propagates every change (origins first, then
the edge); two origins with SEPARATE data dirs import the published state (polling, and at once
on a signed purge); Varnish 7.1 with conf/varnish/edge.vcl (its backends rewritten to the two
origins behind a round-robin director) is the CDN edge.

  a. a warmed edge never answers the old feed or the old download link once the call returned
  b. personalised answers agree across both origins for 10,000 client ids (~20% offered 1.3.0)
     and pass through the edge uncached
  c. an origin killed (SIGKILL) while releases go out converges from object storage after a
     restart on its own data dir, and the control plane's retry then purges the edge again
  d. a purge to an edge that is down is reported as failed and retried until the edge is back
"""
import http.client
import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP = "acme"
SECRET = "propagation-secret-for-tests"
POLL_MS = 500
FEED = "/update/%s/latest.yml" % APP
DOWNLOAD = "/download/%s/windows" % APP
DOWNLOAD_X64 = "/download/%s/windows/x64" % APP  # warmed and never asked again: the ban lurker's
EDGE_VCL = os.path.join(harness.SOURCE_DIR, "conf", "varnish", "edge.vcl")
SAMPLES = 100  # requests through the edge right after a change, each on a new connection


def installer(version):
    return "/artifacts/%s/%s/Acme-Setup-%s.exe" % (APP, version, version)




def edge_vcl(path, origins, probe_interval="0.5s"):
    """conf/varnish/edge.vcl with one backend per origin in its round-robin director."""
    with open(EDGE_VCL) as f:
        vcl = f.read()
    backends = "".join(
        'backend origin%d {\n    .host = "127.0.0.1";\n    .port = "%d";\n    .connect_timeout = 1s;\n'
        '    .first_byte_timeout = 15s;\n    .probe = {\n        .url = "/healthz";\n        .interval = %s;\n'
        '        .timeout = 1s;\n        .window = 5;\n        .threshold = 3;\n    }\n}\n' % (i + 1, o.port, probe_interval)
        for i, o in enumerate(origins))
    members = "".join("    origins.add_backend(origin%d);\n" % (i + 1) for i in range(len(origins)))
    vcl, n1 = re.subn(r"(# BEGIN BACKENDS\n).*?(# END BACKENDS\n)", lambda m: m.group(1) + backends + m.group(2), vcl, flags=re.S)
    vcl, n2 = re.subn(r"(# BEGIN DIRECTOR MEMBERS\n).*?(    # END DIRECTOR MEMBERS\n)",
                      lambda m: m.group(1) + members + m.group(2), vcl, flags=re.S)
    assert n1 == 1 and n2 == 1, "edge.vcl lost its BEGIN/END markers"
    with open(path, "w") as f:
        f.write(vcl)
    return path


class Propagation(harness.StackTest):
    env_name = "propagation"
    s3rvers = ("r2", "s3")

    @classmethod
    def set_up_stack(cls):
        env = cls.env
        cls.origin_data = [os.path.join(env.dir, "origin-a-data"), os.path.join(env.dir, "origin-b-data")]
        cls.origins = [cls.start_origin(d) for d in cls.origin_data]
        cls.vcl = edge_vcl(os.path.join(env.dir, "edge.vcl"), cls.origins)
        # ban_lurker_age: Varnish's lurker leaves bans younger than this (60 s by default) to the
        # lookups; 0.2 s lets the test see it evict in the background
        cls.edge = env.start_varnish(cls.vcl, params=("-p", "ban_lurker_age=0.2"))
        cls.control = cls.start_control([cls.edge.url])
        cls.key = env.create_key()
        cls.create_app(APP, "Acme", key=cls.key)

    # --- programs -----------------------------------------------------------------------------

    @classmethod
    def start_origin(cls, data, port=0):
        conf = cls.env.object_store_config(cls.r2, cls.s3, listen="127.0.0.1:%d" % port, name="origin", extra=(
            "  connect_timeout_ms: 500\nstate:\n  poll_ms: %d\npurge:\n  secret: \"%s\"\n" % (POLL_MS, SECRET)))
        return cls.env.start_origin("--config", conf, "--data", data)

    @classmethod
    def start_control(cls, varnish):
        conf = cls.env.object_store_config(cls.r2, cls.s3, name="control", extra=(
            "propagation:\n  origins: [%s]\n  secret: \"%s\"\n  varnish: [%s]\n  timeout_ms: 3000\n"
            "  retry_initial_ms: 200\n  retry_max_ms: 800\n  retry_attempts: 100\n"
            % (", ".join(o.url for o in cls.origins), SECRET, ", ".join(varnish))))
        proc = cls.env.start_control("--config", conf, public_url=cls.edge.url)
        cls.env.control = proc  # env.api talks to the newest control
        return proc

    # --- helpers ------------------------------------------------------------------------------

    def release(self, version, percent=None):
        data = ("Acme %s installer\n" % version).encode() * 64
        f = self.env.put_artifact(APP, version, "Acme-Setup-%s.exe" % version, data)
        f.update(platform="windows", arch="x64")
        t0 = time.monotonic()
        st, body = self.env.register_release(self.key, APP, version, [f], rollout=percent)
        self.assertEqual(st, 201, body)
        return body, time.monotonic() - t0

    def set_rollout(self, percent):
        st, body = self.env.api("PUT", "/v1/apps/%s/channels/latest/rollout" % APP, {"percent": percent}, key=self.key)
        self.assertEqual(st, 200, body)
        return body

    def purges(self, answer):
        """{target: purge result} of an API answer's "propagation"."""
        self.assertIn("propagation", answer, answer)
        p = answer["propagation"]
        self.assertTrue(all(s["ok"] for s in p["state"]), p)
        return {x["target"]: x for x in p["purges"]}

    def assert_all_ok(self, answer, edges):
        got = self.purges(answer)
        want = ["origin %s" % o.url for o in self.origins] + ["varnish %s" % e for e in edges]
        self.assertEqual(sorted(got), sorted(want), answer)
        self.assertTrue(all(x["ok"] for x in got.values()), answer)

    def get(self, path, base, headers=None):
        return self.env.http("GET", path, headers=headers, base=base)

    def feed(self, base, headers=None):
        st, h, body = self.get(FEED, base, headers)
        self.assertEqual(st, 200, body)
        return harness.parse_yaml(body.decode()), h, body

    def download(self, base, path=DOWNLOAD):
        st, h, body = self.get(path, base)
        self.assertEqual(st, 302, body)
        return h["location"], h

    def assert_feed(self, doc, version, staging):
        self.assertEqual(doc["version"], version, doc)
        self.assertEqual(doc.get("stagingPercentage"), staging, doc)
        self.assertTrue(doc["files"][0]["url"].endswith("/Acme-Setup-%s.exe" % version), doc)

    def warm(self, path):
        """Asks the edge until it answers from cache (X-Cache HIT, two XIDs in X-Varnish)."""
        for _ in range(20):
            st, h, _ = self.get(path, self.edge)
            if h.get("x-cache") == "HIT":
                self.assertEqual(len(h["x-varnish"].split()), 2, h)
                self.assertNotIn("surrogate-key", h)  # the edge keeps its tags to itself
                return h
        self.fail("the edge never cached %s: %r" % (path, h))

    def assert_edge_serves(self, version, staging, download_version, n=SAMPLES):
        """n feed and n download requests through the edge, each on a new connection, right away."""
        for i in range(n):
            doc, h, _ = self.feed(self.edge)
            self.assert_feed(doc, version, staging)
            loc, _ = self.download(self.edge)
            self.assertTrue(loc.endswith(installer(download_version)), "request %d: %s" % (i, loc))

    def control_metrics(self):
        st, _, body = self.get("/metrics", self.env.control)
        self.assertEqual(st, 200)
        return body.decode()

    def wait_until(self, what, cond, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            v = cond()
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail("not within %.1f s: %s" % (timeout, what))
            time.sleep(0.05)

    def varnish_tool(self, tool, edge, *args):
        r = subprocess.run([tool, "-n", edge.workdir] + list(args), capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, "%s %s: %s%s" % (tool, args, r.stdout, r.stderr))
        return r.stdout

    def personal(self, base, ids, header="X-Updraft-Client"):
        """{client id: (ETag, body)} of the personalised feed, on one kept-alive connection."""
        conn = http.client.HTTPConnection("127.0.0.1", base.port, timeout=30)
        out = {}
        try:
            for cid in ids:
                conn.request("GET", FEED, headers={header: cid})
                r = conn.getresponse()
                body = r.read()
                self.assertEqual(r.status, 200, body)
                self.assertEqual(r.getheader("Cache-Control"), "private, no-cache")
                out[cid] = (r.getheader("ETag"), body)
        finally:
            conn.close()
        return out

    # --- the stories --------------------------------------------------------------------------

    def test_a_a_warmed_edge_never_answers_the_old_release(self):
        # before the first release: 404s, which carry no tags, so the edge must not keep them
        for path in (FEED, DOWNLOAD, FEED, DOWNLOAD):
            st, h, body = self.get(path, self.edge)
            self.assertEqual(st, 404, body)
        answer, _ = self.release("1.2.0")
        self.assert_all_ok(answer, [self.edge.url])
        doc, h, _ = self.feed(self.edge)
        self.assert_feed(doc, "1.2.0", None)
        self.assertTrue(self.download(self.edge)[0].endswith(installer("1.2.0")))
        self.warm(FEED)
        self.warm(DOWNLOAD)
        self.warm(DOWNLOAD_X64)
        # electron-updater's ?noCache= does not defeat the edge
        st, h, _ = self.get(FEED + "?noCache=1f3a9c", self.edge)
        self.assertEqual((st, h["x-cache"]), (200, "HIT"), h)
        lurked = float(self.varnish_tool("varnishstat", self.edge, "-1", "-f", "MAIN.bans_lurker_obj_killed").split()[1])

        answer, took = self.release("1.3.0", percent=20)
        self.assert_all_ok(answer, [self.edge.url])
        # right after the call: the first answers are fresh fetches, and the new ones
        doc, h, _ = self.feed(self.edge)
        self.assertEqual(h["x-cache"], "MISS", h)
        self.assert_feed(doc, "1.3.0", 20)
        loc, h = self.download(self.edge)
        self.assertEqual(h["x-cache"], "MISS", h)  # evicted: its object carried app:acme
        # downloads point at the newest FULLY released version (PROTOCOLS.md): still 1.2.0 at 20%
        self.assertTrue(loc.endswith(installer("1.2.0")), loc)
        self.assert_edge_serves("1.3.0", 20, "1.2.0")
        # both origins answer the same, without sharing a disk
        bodies = [self.feed(o)[2] for o in self.origins]
        self.assertEqual(bodies[0], bodies[1])
        self.assertNotEqual(self.origin_data[0], self.origin_data[1])
        # the ban lurker evicted the object nobody asked for again, in the background
        self.wait_until("the ban lurker evicts /download/acme/windows/x64", lambda: float(self.varnish_tool(
            "varnishstat", self.edge, "-1", "-f", "MAIN.bans_lurker_obj_killed").split()[1]) > lurked, timeout=5)
        self.assertEqual(self.get(DOWNLOAD_X64, self.edge)[1]["x-cache"], "MISS")
        sys.stderr.write("\n  release 1.3.0 at 20%%: control call %.0f ms (state, 2 origins, 1 edge)\n" % (took * 1000))

    def test_b_personalised_answers_agree_across_origins(self):
        ids = ["client-%05d" % i for i in range(10000)]
        a = self.personal(self.origins[0], ids)
        b = self.personal(self.origins[1], ids)
        differ = [cid for cid in ids if a[cid] != b[cid]]
        self.assertEqual(differ, [], "%d of 10000 answers differ, e.g. %r" % (len(differ), differ[:3]))
        versions = {}
        for cid in ids:
            doc = harness.parse_yaml(a[cid][1].decode())
            self.assertNotIn("stagingPercentage", doc)  # never on a personalised answer
            versions[doc["version"]] = versions.get(doc["version"], 0) + 1
        self.assertEqual(set(versions), {"1.2.0", "1.3.0"}, versions)
        # 20% of 10,000: sd 40, so +-200 is 5 sd
        self.assertTrue(1800 <= versions["1.3.0"] <= 2200, versions)
        sys.stderr.write("\n  10000 client ids: %d offered 1.3.0, identical on both origins\n" % versions["1.3.0"])
        # through the edge: passed, never cached, and the same answers, whichever way the id comes
        for cid in ids[:200]:
            st, h, body = self.get(FEED, self.edge, {"X-Updraft-Client": cid})
            self.assertEqual((st, body, h["cache-control"], h["x-cache"]), (200, a[cid][1], "private, no-cache", "MISS"))
            self.assertEqual(len(h["x-varnish"].split()), 1, h)
        for cid in ids[200:250]:
            st, h, body = self.get(FEED + "?client_id=" + cid, self.edge)
            self.assertEqual((st, body, h["x-cache"]), (200, a[cid][1], "MISS"))
        uuid = "3f1c1b5e-8f1e-4f5a-9a55-2a1c7a0b7e11"
        want = self.personal(self.origins[1], [uuid], header="x-user-staging-id")[uuid][1]
        for _ in range(3):
            st, h, body = self.get(FEED, self.edge, {"x-user-staging-id": uuid})
            self.assertEqual((st, body, h["x-cache"]), (200, want, "MISS"))

    def test_c_a_killed_origin_converges_from_object_storage(self):
        a, b = self.origins
        b_port = b.port
        b.kill()  # SIGKILL: no goodbye, its LMDB stays at the generation it had
        answer = self.set_rollout(100)
        got = self.purges(answer)
        self.assertTrue(got["origin %s" % a.url]["ok"], answer)
        self.assertFalse(got["origin %s" % b.url]["ok"], answer)
        self.assertTrue(got["origin %s" % b.url]["retrying"], answer)
        self.assertTrue(got["varnish %s" % self.edge.url]["ok"], answer)
        # the edge is right at once, from the origin that is up (the director retries past the dead one)
        doc, h, _ = self.feed(self.edge)
        self.assert_feed(doc, "1.3.0", None)
        self.assert_edge_serves("1.3.0", None, "1.3.0")
        # a second change while it is down
        answer, _ = self.release("1.4.0", percent=30)
        self.assertFalse(self.purges(answer)["origin %s" % b.url]["ok"], answer)
        self.assert_edge_serves("1.4.0", 30, "1.3.0", n=20)

        t0 = time.monotonic()
        b = self.start_origin(self.origin_data[1], port=b_port)
        self.assertEqual(b.port, b_port)
        self.origins[1] = b
        want = self.feed(a)[2]

        def converged():
            st, _, body = self.get(FEED, b)
            return st == 200 and body == want
        self.wait_until("the restarted origin serves what the other one does", converged, timeout=POLL_MS / 1000 + 2)
        took = time.monotonic() - t0
        self.assertLess(took, POLL_MS / 1000 + 2)
        with open(b.log) as f:
            self.assertRegex(f.read(), r"state: acme now at generation \d+ \(was \d+\) from (r2|s3)")
        ids = ["conv-%04d" % i for i in range(2000)]
        pa, pb = self.personal(a, ids), self.personal(b, ids)
        self.assertEqual(pa, pb)
        n14 = sum(1 for cid in ids if harness.parse_yaml(pa[cid][1].decode())["version"] == "1.4.0")
        self.assertTrue(450 <= n14 <= 750, n14)  # 30% of 2000, sd 20
        # the control plane's retry reaches it, and then purges the edge again
        self.wait_until("no propagation retry pending", lambda: harness.metric(self.control_metrics(), "updraft_propagation_pending") == 0)
        with open(self.env.control.log) as f:
            self.assertIn("purging the edges again", f.read())
        self.assert_edge_serves("1.4.0", 30, "1.3.0", n=20)
        sys.stderr.write("\n  origin restarted after SIGKILL: serving the current state %.0f ms after it listened\n" % (took * 1000))

    def test_d_a_purge_to_an_edge_that_is_down_is_retried(self):
        closed = harness.free_port()  # nothing listens there (yet)
        down = "http://127.0.0.1:%d" % closed
        self.env.control.stop()
        self.start_control([self.edge.url, down])
        answer, _ = self.release("1.5.0", percent=10)
        got = self.purges(answer)
        self.assertTrue(got["varnish %s" % self.edge.url]["ok"], answer)
        failed = got["varnish %s" % down]
        self.assertFalse(failed["ok"], answer)
        self.assertTrue(failed["retrying"], answer)
        self.assertTrue(failed["error"], answer)
        self.assert_edge_serves("1.5.0", 10, "1.3.0", n=20)
        # retried in the background, with backoff
        self.wait_until("two retries of the unreachable edge",
                        lambda: harness.metric(self.control_metrics(), "updraft_propagation_retries_total", kind="varnish") >= 2)
        m = self.control_metrics()
        self.assertGreaterEqual(harness.metric(m, "updraft_propagation_total", kind="varnish", result="failed"), 3)
        self.assertEqual(harness.metric(m, "updraft_propagation_pending"), 1)
        with open(self.env.control.log) as f:
            self.assertRegex(f.read(), r"purge varnish %s of acme generation \d+: FAILED: .*; retry 2 of 100" % re.escape(down))
        ok_before = harness.metric(m, "updraft_propagation_total", kind="varnish", result="ok")

        # the edge comes back on that port: the next retry bans there
        edge2 = self.env.start_varnish(self.vcl, port=closed)
        self.wait_until("the retry succeeds", lambda: harness.metric(self.control_metrics(), "updraft_propagation_pending") == 0)
        m = self.control_metrics()
        self.assertEqual(harness.metric(m, "updraft_propagation_total", kind="varnish", result="ok"), ok_before + 1)
        self.assertEqual(harness.metric(m, "updraft_propagation_abandoned_total", kind="varnish"), 0)
        bans = self.varnish_tool("varnishadm", edge2, "ban.list")
        self.assertRegex(bans, r"obj\.http\.Surrogate-Key ~ \S*\(app:acme\|chan:acme/latest\|\S*rel:acme/1\[\.\]5\[\.\]0")
        doc, _, _ = self.feed(edge2)
        self.assert_feed(doc, "1.5.0", 10)


    def test_e_a_purged_origin_fetches_the_app_at_once_over_kept_connections(self):
        answer, _ = self.release("1.6.0", percent=10)
        self.assertTrue(all(x["ok"] for x in self.purges(answer).values()), answer)
        edges = [t for t in self.purges(answer) if t.startswith("varnish ")]  # test d added one
        before = [self.get("/metrics", o)[2].decode() for o in self.origins]
        control_before = self.control_metrics()
        for percent in (20, 30, 40):
            answer = self.set_rollout(percent)
            self.assertTrue(all(x["ok"] for x in self.purges(answer).values()), answer)
            for o in self.origins:
                self.assert_feed(self.feed(o)[0], "1.6.0", percent)
        for o, text in zip(self.origins, before):
            after = self.get("/metrics", o)[2].decode()
            # each purge read the app's latest document straight away, without reading the indexes first
            self.assertEqual(harness.metric(after, "updraft_state_direct_fetches_total", result="ok") -
                             harness.metric(text, "updraft_state_direct_fetches_total", result="ok"), 3, after)
        control_after = self.control_metrics()
        for kind, targets in (("origin", len(self.origins)), ("varnish", len(edges))):
            requests = (harness.metric(control_after, "updraft_propagation_requests_total", kind=kind) -
                        harness.metric(control_before, "updraft_propagation_requests_total", kind=kind))
            opened = (harness.metric(control_after, "updraft_propagation_connections_total", kind=kind) -
                      harness.metric(control_before, "updraft_propagation_connections_total", kind=kind))
            self.assertEqual(requests, 3 * targets, kind)
            self.assertLessEqual(opened, targets, "%s purges reuse their connections" % kind)

    def test_f_a_purge_finds_the_change_on_s3_when_r2_fails(self):
        before = [self.get("/metrics", o)[2].decode() for o in self.origins]
        self.env.s3_fault(self.r2, 500)
        try:
            answer = self.set_rollout(50)
        finally:
            self.env.s3_fault(self.r2, 0)
        prop = answer["propagation"]
        self.assertEqual([(t["target"], t["ok"]) for t in prop["state"]], [("r2", False), ("s3", True)], prop)
        # the origins fetched the latest document from S3 straight away: served before the call returned
        self.assertTrue(all(x["ok"] for x in prop["purges"]), prop)
        for o, text in zip(self.origins, before):
            self.assert_feed(self.feed(o)[0], "1.6.0", 50)
            after = self.get("/metrics", o)[2].decode()
            self.assertEqual(harness.metric(after, "updraft_state_direct_fetches_total", result="ok") -
                             harness.metric(text, "updraft_state_direct_fetches_total", result="ok"), 1, after)
        self.assert_edge_serves("1.6.0", 50, "1.3.0", n=5)
        # and R2 gets the state once it answers again
        self.wait_until("the retry publishes to r2", lambda: harness.metric(self.control_metrics(), "updraft_propagation_pending") == 0)
        status, body = self.env.s3_get(self.r2, "_updraft/state/acme.json")
        self.assertEqual((status, json.loads(body)["generation"]), (200, prop["generation"]))

if __name__ == "__main__":
    unittest.main(verbosity=2)
