#!/usr/bin/env python3
"""Story: once a release or a rollout change is committed, the control plane publishes the app's state to both
object stores, purges every origin (signed), then the edges (Varnish bans, Cloudflare by tag), reports each target
in the answer and on the CLI, and retries what failed in the background. README "Release propagation".

What stands in for what (none of these is the real thing):
- two signature-checking s3rvers stand in for R2 and S3 (tests/support/s3rver.js);
- StandInOrigin, below, stands in for updraft-origin's POST /_updraft/purge: it checks the HMAC-SHA256
  signature, the timestamp window and nonce replay the way the contract says, "syncs" by reading
  _updraft/state/APP.json from the R2 s3rver, and answers 200 {"app","generation"} once that holds the
  generation asked for (504 with the generation it has when told to lag). The end-to-end test against the
  real origin is tests/integration/test_propagation.py's, not this one's;
- StandInVarnish answers BAN / with 200 and records X-Updraft-Tags (no varnishd is started here);
- tests/support/fake_cloudflare.py stands in for Cloudflare's API and checks every request's shape.

Checked: the state documents (GEN.json, APP.json, index.json) on both s3rvers with the right generation; the
origin purge signed and carrying app/channel/release tags, before Cloudflare's; an unreachable Varnish reported
(ok:false, retrying), logged, counted in /metrics and retried until something listens on its port; an origin
that lags is retried and the edges purged again once it caught up; a Cloudflare error retried; the CLI's lines;
start-up refusals; neither the purge secret nor the Cloudflare token in any log.
"""
import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
import harness  # noqa: E402
from fake_cloudflare import FakeCloudflare  # noqa: E402

SECRET = "purge-secret-for-the-propagation-test"
CF_TOKEN = "cf-token-for-the-propagation-test"
CF_ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
WAIT = 10.0


class _Server:
    """A threaded loopback HTTP server on `sock` (bound; listen() is called by start())."""

    def __init__(self, handler, sock=None):
        if sock is None:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = sock
        self.server.daemon_threads = True
        self.lock = threading.Condition()
        self.requests = []
        self.server.owner = self

    def start(self):
        self.server.server_activate()  # listen(): from now on connections are accepted
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def record(self, rec):
        with self.lock:
            self.requests.append(rec)
            self.lock.notify_all()

    def wait_for(self, pred, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.lock:
            while time.monotonic() < deadline:
                hits = [r for r in self.requests if pred(r)]
                if hits:
                    return hits
                self.lock.wait(0.05)
        return []


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class StandInOrigin(_Server):
    """A stand-in for updraft-origin's purge endpoint (see the module docstring): verifies what the real one
    verifies, and records every request with `valid` and `why`."""

    def __init__(self, env, r2, secret=SECRET):
        self.env, self.r2, self.secret = env, r2, secret
        self.lagging = set()  # apps whose purges are answered 504
        self.nonces = set()
        origin = self

        class Handler(_Handler):
            def do_POST(self):
                origin.on_purge(self)

        super().__init__(Handler)

    def on_purge(self, h):
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        ts, nonce, sig = (h.headers.get(n) for n in ("X-Updraft-Timestamp", "X-Updraft-Nonce", "X-Updraft-Signature"))
        rec = dict(time=time.monotonic(), path=h.path, body=body, headers=dict(h.headers), valid=False, why=None)
        status, doc = self.judge(h.path, body, ts, nonce, sig, rec)
        rec["status"] = status
        self.record(rec)
        h.reply(status, doc)

    def judge(self, path, body, ts, nonce, sig, rec):
        if path != "/_updraft/purge":
            rec["why"] = "path"
            return 404, {"error": {"code": "not_found"}}
        if ts is None or not re.fullmatch(r"[0-9]{1,12}", ts) or abs(time.time() - int(ts)) > 300:
            rec["why"] = "timestamp %r" % ts
            return 401, {"error": {"code": "bad_timestamp"}}
        if nonce is None or not re.fullmatch(r"[0-9a-f]{32}", nonce):
            rec["why"] = "nonce %r" % nonce
            return 401, {"error": {"code": "bad_nonce"}}
        want = hmac.new(self.secret.encode(), ts.encode() + b"\n" + nonce.encode() + b"\n" + body, hashlib.sha256).hexdigest()
        if sig is None or not hmac.compare_digest(sig, want):
            rec["why"] = "signature"
            return 401, {"error": {"code": "bad_signature"}}
        with self.lock:
            replay = nonce in self.nonces
            self.nonces.add(nonce)
        if replay:
            rec["why"] = "replayed nonce"
            return 409, {"error": {"code": "replayed"}}
        doc = json.loads(body)
        if set(doc) != {"app", "generation", "tags"} or not isinstance(doc["generation"], int):
            rec["why"] = "body %r" % doc
            return 400, {"error": {"code": "invalid"}}
        rec["valid"], rec["doc"] = True, doc
        app = doc["app"]
        # "sync" from object storage, as the origin does when it is behind: what R2's latest document says
        status, state = self.env.s3_get(self.r2, "_updraft/state/%s.json" % app)
        held = json.loads(state)["generation"] if status == 200 else 0
        if app in self.lagging:
            held = min(held, doc["generation"] - 1)  # could not catch up in time
        if held < doc["generation"]:
            return 504, {"app": app, "generation": held}
        return 200, {"app": app, "generation": held}

    def purges(self, app):
        return [r for r in self.requests if r["valid"] and r["doc"]["app"] == app]


class StandInVarnish(_Server):
    """Answers BAN / with 200 and records the X-Updraft-Tags it was sent; stands in for a Varnish listener whose
    VCL bans objects by tag (STACK-NOTES "Varnish 7.1 as the CDN edge")."""

    def __init__(self, sock=None):
        varnish = self

        class Handler(_Handler):
            def do_BAN(self):
                varnish.record(dict(time=time.monotonic(), path=self.path, tags=self.headers.get("X-Updraft-Tags"),
                                    length=self.headers.get("Content-Length")))
                self.reply(200, {"banned": True})

        super().__init__(Handler, sock)

    def bans(self, app):
        return [r for r in self.requests if ("app:%s" % app) in (r["tags"] or "").split(" ")]


def refusing_socket():
    """A TCP socket bound on loopback but not listening: connecting to it is refused until listen() is called on
    it (no other program can take the port in between)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


def propagation_yaml(origins=(), varnish=(), cloudflare=None, retry_initial_ms=100, retry_max_ms=400, attempts=50,
                     secret=SECRET):
    y = "propagation:\n  origins: [%s]\n  secret: \"%s\"\n  varnish: [%s]\n" % (
        ", ".join(origins), secret, ", ".join(varnish))
    if cloudflare is not None:
        y += "  cloudflare:\n    zone_id: %s\n    api_token: \"%s\"\n    api_base: %s\n" % (CF_ZONE, CF_TOKEN, cloudflare.api_base)
    y += "  timeout_ms: 2000\n  retry_initial_ms: %d\n  retry_max_ms: %d\n  retry_attempts: %d\n" % (
        retry_initial_ms, retry_max_ms, attempts)
    return y




class PropagationTest(harness.StackTest):
    env_name = "test_propagation_control"
    s3rvers = ("r2", "s3")

    @classmethod
    def set_up_stack(cls):
        cls.origin = StandInOrigin(cls.env, cls.r2).start()
        cls.addClassCleanup(cls.origin.stop)
        cls.varnish = StandInVarnish().start()
        cls.addClassCleanup(cls.varnish.stop)
        cls.cf = FakeCloudflare(CF_TOKEN, CF_ZONE).start()
        cls.addClassCleanup(cls.cf.stop)
        # everything reachable: state to both s3rvers, the stand-in origin, the stand-in Varnish, fake Cloudflare
        cls.control, cls.key = cls.start_control("full", propagation_yaml(
            origins=[cls.origin.url], varnish=[cls.varnish.url], cloudflare=cls.cf))

    @classmethod
    def start_control(cls, name, yaml, object_store=True, env_vars=None):
        """A control plane with its own data dir and an admin key for it."""
        env = cls.env
        data = os.path.join(env.dir, "data-" + name)
        os.makedirs(data)
        if object_store:
            cfg = env.object_store_config(cls.r2, cls.s3, extra=yaml, name="control-" + name)
        else:
            cfg = env.write("control-%s.yaml" % name, "listen: [\"127.0.0.1:0\"]\n" + yaml)
        r = env.run("updraft-control", "keys", "create", "--data", data, "--role", "admin", "--name", name)
        if r.returncode != 0:
            raise AssertionError("keys create: %s" % r.stderr)
        return env.start_control("--config", cfg, "--data", data, public_url="http://127.0.0.1:8080"), r.stdout.strip()

    # --- helpers ----------------------------------------------------------------------------------

    def api(self, method, path, body=None, control=None, key=None):
        h = {"Authorization": "Bearer " + (key or self.key)}
        status, _, data = self.env.http(method, path, headers=h, body=body, base=control or self.control)
        return status, json.loads(data) if data else None

    def new_app(self, app, control=None, key=None):
        status, doc = self.api("POST", "/v1/apps", {"id": app, "name": app.title()}, control=control, key=key)
        self.assertEqual(status, 201, doc)

    def release(self, app, version, rollout=None, control=None, key=None):
        f = self.env.put_artifact(app, version, "%s-Setup-%s.exe" % (app.title(), version), os.urandom(3000))
        body = {"version": version, "channel": "latest", "files": [dict(f, platform="windows", arch="x64")]}
        if rollout is not None:
            body["rollout"] = {"percent": rollout}
        status, doc = self.api("POST", "/v1/apps/%s/releases" % app, body, control=control, key=key)
        self.assertEqual(status, 201, doc)
        return doc

    def metrics(self, control=None):
        status, _, body = self.env.http("GET", "/metrics", base=control or self.control)
        self.assertEqual(status, 200)
        return body.decode()

    def wait_metric(self, control, name, at_least, **labels):
        return harness.poll(lambda: harness.metric(self.metrics(control), name, **labels), lambda value: value >= at_least, WAIT, 0.05)

    def log(self, control):
        with open(control.log, errors="replace") as f:
            return f.read()

    def target(self, prop, name):
        hits = [t for t in prop["state"] + prop["purges"] if t["target"] == name]
        self.assertEqual(len(hits), 1, "%s in %r" % (name, prop))
        return hits[0]

    def state_doc(self, backend, key):
        status, body = self.env.s3_get(backend, key)
        self.assertEqual(status, 200, "%s has no %s" % (backend.name, key))
        return body

    # --- the stories ------------------------------------------------------------------------------

    def test_state_documents_land_on_both_backends_with_the_generation_and_the_index(self):
        self.new_app("state-app")
        prop = self.release("state-app", "1.0.0")["propagation"]
        gen = prop["generation"]
        self.assertEqual([(t["target"], t["ok"]) for t in prop["state"]], [("r2", True), ("s3", True)])
        for backend in (self.r2, self.s3):
            versioned = self.state_doc(backend, "_updraft/state/state-app/%d.json" % gen)
            latest = self.state_doc(backend, "_updraft/state/state-app.json")
            self.assertEqual(versioned, latest, "the latest document is the versioned one's bytes")
            doc = json.loads(latest)
            self.assertEqual((doc["format"], doc["app"], doc["generation"]), (1, "state-app", gen))
            self.assertIn("releases", doc["records"])
            index = json.loads(self.state_doc(backend, "_updraft/state/index.json"))
            self.assertEqual(index["format"], 1)
            self.assertEqual(index["apps"]["state-app"], gen)

        # a rollout change is a new generation: a new versioned document, the old one kept, the index moved on
        self.release("state-app", "1.1.0", rollout=10)
        status, ch = self.api("PUT", "/v1/apps/state-app/channels/latest/rollout", {"percent": 20})
        self.assertEqual(status, 200, ch)
        gen2 = ch["propagation"]["generation"]
        self.assertEqual(gen2, gen + 2)
        for backend in (self.r2, self.s3):
            self.assertEqual(json.loads(self.state_doc(backend, "_updraft/state/state-app.json"))["generation"], gen2)
            self.assertEqual(json.loads(self.state_doc(backend, "_updraft/state/state-app/%d.json" % gen))["generation"], gen)
            index = json.loads(self.state_doc(backend, "_updraft/state/index.json"))
            self.assertEqual(index["apps"]["state-app"], gen2)
        # the state of every app is in the index, not only the one that changed
        self.new_app("state-other")
        self.release("state-other", "2.0.0")
        index = json.loads(self.state_doc(self.s3, "_updraft/state/index.json"))
        self.assertEqual((index["apps"]["state-app"], index["apps"]["state-other"]), (gen2, 1))

    def test_state_writes_and_purges_reuse_their_connections(self):
        self.new_app("reuse-app")
        self.release("reuse-app", "1.0.0")
        self.release("reuse-app", "1.1.0", rollout=10)
        before = self.metrics()
        changes = (20, 30, 40, 50, 60)
        for percent in changes:
            status, ch = self.api("PUT", "/v1/apps/reuse-app/channels/latest/rollout", {"percent": percent})
            self.assertEqual(status, 200, ch)
            prop = ch["propagation"]
            self.assertTrue(all(t["ok"] for t in prop["state"] + prop["purges"]), prop)
        after = self.metrics()

        def delta(name, **labels):
            return harness.metric(after, name, **labels) - harness.metric(before, name, **labels)

        self.assertGreaterEqual(delta("updraft_object_store_requests_total"), 3 * 2 * len(changes),
                                "three state documents to each of two backends per change")
        # one writer thread per backend, each keeping its connection: at most one new connection each (the s3rver
        # closes connections idle for 5 s, so the ones of an earlier test may be gone)
        self.assertLessEqual(delta("updraft_object_store_connections_total"), 2, after)
        for kind in ("origin", "varnish"):
            self.assertEqual(delta("updraft_propagation_requests_total", kind=kind), len(changes), kind)
            self.assertLessEqual(delta("updraft_propagation_connections_total", kind=kind), 1, "%s: %s" % (kind, after))

    def test_a_change_never_published_is_published_at_the_next_start(self):
        # a change committed by a control plane that published nothing (local object store here; a crash between
        # commit and publication has the same effect) reaches object storage when a control plane starts again
        local, key = self.start_control("unpublished", "", object_store=False)
        self.new_app("late-app", control=local, key=key)
        self.release("late-app", "1.0.0", control=local, key=key)
        self.assertEqual(self.env.s3_get(self.r2, "_updraft/state/late-app.json")[0], 404)
        data = os.path.join(self.env.dir, "data-unpublished")
        local.stop()
        cfg = self.env.object_store_config(self.r2, self.s3, name="control-republish")
        again = self.env.start_control("--config", cfg, "--data", data, public_url="http://127.0.0.1:8080")
        for backend in (self.r2, self.s3):
            doc = json.loads(self.state_doc(backend, "_updraft/state/late-app.json"))
            self.assertEqual((doc["app"], doc["generation"]), ("late-app", 1))
            self.assertEqual(json.loads(self.state_doc(backend, "_updraft/state/index.json"))["apps"]["late-app"], 1)
        self.assertIn("republished the state of 1 app", self.log(again))
        again.stop()

    def test_the_origin_is_purged_signed_then_varnish_and_cloudflare_with_the_changes_tags(self):
        self.new_app("tag-app")
        before = len(self.cf.purges)
        prop = self.release("tag-app", "1.3.0")["propagation"]
        tags = ["app:tag-app", "chan:tag-app/latest", "rel:tag-app/1.3.0"]
        for name in ("origin " + self.origin.url, "varnish " + self.varnish.url, "cloudflare"):
            t = self.target(prop, name)
            self.assertTrue(t["ok"], t)
            self.assertIsInstance(t["ms"], int)
        self.assertEqual([t["target"].split(" ")[0] for t in prop["purges"]], ["origin", "varnish", "cloudflare"])

        (purge,) = self.origin.purges("tag-app")
        self.assertEqual(purge["doc"], {"app": "tag-app", "generation": prop["generation"], "tags": tags})
        self.assertEqual(purge["status"], 200)
        self.assertEqual([r["why"] for r in self.origin.requests if not r["valid"]], [], "every purge was signed right")
        (ban,) = self.varnish.bans("tag-app")
        self.assertEqual(ban["tags"], " ".join(tags))
        self.assertEqual(self.cf.purges[before:], [tags])
        self.assertEqual(self.cf.problems(), [])
        # origins first: an edge purged before the origins hold the state could fetch the old answer again
        cf_req = [r for r in self.cf.requests if r["status"] == 200][-1]
        self.assertLess(purge["time"], ban["time"])
        self.assertLess(purge["time"], cf_req["time"])

        # a rollout change names the versions it touches: the rollout's and the stable one
        self.release("tag-app", "1.4.0-Beta.1", rollout=5)
        status, ch = self.api("PUT", "/v1/apps/tag-app/channels/latest/rollout", {"paused": True})
        self.assertEqual(status, 200, ch)
        self.assertEqual(self.origin.purges("tag-app")[-1]["doc"]["tags"],
                         ["app:tag-app", "chan:tag-app/latest", "rel:tag-app/1.4.0-beta.1", "rel:tag-app/1.3.0"])

    def test_an_origin_that_lags_is_retried_and_the_edges_are_purged_again_once_it_caught_up(self):
        self.new_app("lag-app")
        self.origin.lagging.add("lag-app")
        prop = self.release("lag-app", "1.0.0")["propagation"]
        t = self.target(prop, "origin " + self.origin.url)
        self.assertFalse(t["ok"])
        self.assertTrue(t["retrying"])
        self.assertEqual(t["error"], "HTTP 504: origin at generation 0, could not catch up to 1")
        self.assertTrue(self.target(prop, "cloudflare")["ok"])
        self.assertEqual(len(self.varnish.bans("lag-app")), 1)
        # retried while it lags (with backoff), then it catches up: one 200, and the edges purged a second time
        lagged = lambda r: r["valid"] and r["doc"]["app"] == "lag-app" and r["status"] == 504  # noqa: E731
        self.assertTrue(self.origin.wait_for(lambda r: len([x for x in self.origin.requests if lagged(x)]) >= 2))
        self.origin.lagging.discard("lag-app")
        self.assertTrue(self.origin.wait_for(lambda r: r["valid"] and r["doc"]["app"] == "lag-app" and r["status"] == 200))
        self.assertTrue(self.varnish.wait_for(lambda r: len(self.varnish.bans("lag-app")) >= 2))
        deadline = time.monotonic() + WAIT
        while sum(1 for p in self.cf.purges if "app:lag-app" in p) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(sum(1 for p in self.cf.purges if "app:lag-app" in p), 2)
        self.assertGreaterEqual(self.wait_metric(self.control, "updraft_propagation_retries_total", 2, kind="origin"), 2)
        self.assertIn("purge origin %s of lag-app generation 1: FAILED: HTTP 504" % self.origin.url, self.log(self.control))

    def test_a_cloudflare_error_is_reported_and_retried(self):
        self.new_app("cf-app")
        self.cf.fail(1, status=429, code=971, message="Please wait and consider throttling your request speed")
        prop = self.release("cf-app", "1.0.0")["propagation"]
        t = self.target(prop, "cloudflare")
        self.assertEqual((t["ok"], t["retrying"]), (False, True))
        self.assertEqual(t["error"], "HTTP 429: 971 Please wait and consider throttling your request speed")
        deadline = time.monotonic() + WAIT
        while not any("app:cf-app" in p for p in self.cf.purges) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(any("app:cf-app" in p for p in self.cf.purges), "the retry reached Cloudflare")
        self.assertEqual(self.cf.problems(), [])

    def test_an_unreachable_varnish_is_reported_retried_and_purged_once_it_listens(self):
        sock = refusing_socket()
        url = "http://127.0.0.1:%d" % sock.getsockname()[1]
        control, key = self.start_control("edge-down", propagation_yaml(varnish=[url]), object_store=False)
        self.new_app("down-app", control=control, key=key)
        prop = self.release("down-app", "1.0.0", control=control, key=key)["propagation"]
        self.assertEqual(prop["state"], [], "kind local: no state documents")
        t = self.target(prop, "varnish " + url)
        self.assertEqual((t["ok"], t["error"], t["retrying"]), (False, "connect: Connection refused", True))
        self.assertGreaterEqual(harness.metric(self.metrics(control), "updraft_propagation_total", kind="varnish", result="failed"), 1)
        self.assertEqual(harness.metric(self.metrics(control), "updraft_propagation_pending"), 1)
        self.assertIn("propagation: purge varnish %s of down-app generation 1: FAILED: connect: Connection refused; "
                      "retry 1 of 50 in 100 ms" % url, self.log(control))
        # still refused: retried, with backoff
        self.assertGreaterEqual(self.wait_metric(control, "updraft_propagation_retries_total", 3, kind="varnish"), 3)
        self.assertEqual(harness.metric(self.metrics(control), "updraft_propagation_pending"), 1)
        # something listens there now: the next retry bans the release's tags
        varnish = StandInVarnish(sock).start()
        self.addCleanup(varnish.stop)
        (ban,) = varnish.wait_for(lambda r: True)
        self.assertEqual(ban["tags"], "app:down-app chan:down-app/latest rel:down-app/1.0.0")
        self.assertEqual(self.wait_metric(control, "updraft_propagation_total", 1, kind="varnish", result="ok"), 1)
        deadline = time.monotonic() + WAIT
        while harness.metric(self.metrics(control), "updraft_propagation_pending") != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(harness.metric(self.metrics(control), "updraft_propagation_pending"), 0)
        control.stop()

    def test_the_cli_prints_one_line_per_target(self):
        sock = refusing_socket()
        self.addCleanup(sock.close)
        down = "http://127.0.0.1:%d" % sock.getsockname()[1]
        control, key = self.start_control("cli", propagation_yaml(
            origins=[self.origin.url], varnish=[self.varnish.url, down], cloudflare=self.cf))
        argv = ["--server", control.url, "--api-key", key]
        r = self.env.run("updraft", *argv, "apps", "create", "cli-app")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.release("cli-app", "1.0.0", control=control, key=key)
        self.release("cli-app", "1.1.0", rollout=10, control=control, key=key)
        r = self.env.run("updraft", *argv, "rollout", "set", "cli-app", "latest", "50")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertRegex(out, r"(?m)^propagation of generation 3:$")
        self.assertRegex(out, r"(?m)^state r2: ok$")
        self.assertRegex(out, r"(?m)^state s3: ok$")
        self.assertRegex(out, r"(?m)^purge origin %s: ok \(\d+ ms\)$" % re.escape(self.origin.url))
        self.assertRegex(out, r"(?m)^purge varnish %s: ok \(\d+ ms\)$" % re.escape(self.varnish.url))
        self.assertRegex(out, r"(?m)^purge varnish %s: FAILED: connect: Connection refused \(retrying\)$" % re.escape(down))
        self.assertRegex(out, r"(?m)^purge cloudflare: ok \(\d+ ms\)$")

        # releases create prints them too
        data = os.urandom(1000)
        self.env.put_artifact("cli-app", "1.2.0", "Cli-Setup-1.2.0.exe", data)
        local = os.path.join(self.env.dir, "local-Cli-Setup-1.2.0.exe")
        with open(local, "wb") as fh:
            fh.write(data)
        r = self.env.run("updraft", *argv, "releases", "create", "cli-app", "--version", "1.2.0",
                         "--artifact", "Cli-Setup-1.2.0.exe:windows:x64:" + local)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^purge origin %s: ok \(\d+ ms\)$" % re.escape(self.origin.url))
        self.assertRegex(r.stdout, r"(?m)^purge varnish %s: FAILED: connect: Connection refused \(retrying\)$" % re.escape(down))
        # channel show is not a change: nothing to report
        r = self.env.run("updraft", *argv, "channel", "show", "cli-app", "latest")
        self.assertNotIn("purge", r.stdout)
        control.stop()

    def test_no_secret_or_token_reaches_a_log(self):
        for proc in self.env.procs:
            if proc.name.startswith("updraft-control"):
                text = self.log(proc)
                self.assertNotIn(SECRET, text)
                self.assertNotIn(CF_TOKEN, text)
                self.assertIn("propagation: purges Cloudflare zone %s" % CF_ZONE, text)
                break


class StartupTest(harness.StackTest):
    def setUp(self):
        self.env = self.fresh_env("test_propagation_startup")

    def check(self, yaml, env=None):
        cfg = self.env.write("c.yaml", yaml)
        return self.env.run("updraft-control", "--config", cfg, "--check", env=env)

    def test_origins_without_a_secret_refuse_to_start(self):
        r = self.check(propagation_yaml(origins=["http://127.0.0.1:1"], secret=""))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("propagation.secret", r.stderr)
        r = self.check(propagation_yaml(origins=["http://127.0.0.1:1"], secret=""), env={"UPDRAFT_PURGE_SECRET": "x" * 32})
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_targets_are_named_and_no_secret_is_echoed(self):
        r = self.check(propagation_yaml(origins=["127.0.0.1:8080"]))
        self.assertEqual(r.returncode, 1)
        self.assertIn("propagation.origins[0]", r.stderr)
        self.assertNotIn(SECRET, r.stderr)
        r = self.check("propagation:\n  cloudflare:\n    zone_id: nothex\n    api_token: \"%s\"\n" % CF_TOKEN)
        self.assertEqual(r.returncode, 1)
        self.assertIn("propagation.cloudflare.zone_id", r.stderr)
        self.assertNotIn(CF_TOKEN, r.stderr)
        r = self.check("propagation:\n  cloudflare:\n    zone_id: %s\n" % CF_ZONE)
        self.assertEqual(r.returncode, 1)
        self.assertIn("api_token", r.stderr)
        r = self.check("propagation:\n  cloudflare:\n    zone_id: %s\n" % CF_ZONE, env={"UPDRAFT_CLOUDFLARE_API_TOKEN": CF_TOKEN})
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.check("propagation:\n  retry_initial_ms: 5000\n  retry_max_ms: 1000\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("propagation.retry_max_ms", r.stderr)
        r = self.check("propagation:\n  timeout_ms: 5\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("propagation.timeout_ms", r.stderr)


if __name__ == "__main__":
    unittest.main()
