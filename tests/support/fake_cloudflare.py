#!/usr/bin/env python3
"""A stand-in for Cloudflare's API, cache purge by tag only, for tests.

No real Cloudflare account or zone can be reached from the test machines, so this is NOT Cloudflare: it is a
loopback HTTP server that holds every request against the shape Cloudflare documents for
`POST /client/v4/zones/{zone_id}/purge_cache` and answers in Cloudflare's envelope:

- method POST, path `/client/v4/zones/<zone id: 32 lowercase hex>/purge_cache` (and the configured zone, when one
  is given): otherwise 404 `7003 Could not route to ..., perhaps your object identifier is invalid?`;
- `Authorization: Bearer <token>`: missing → 400 `6003 Invalid request headers`, another token → 403
  `10000 Authentication error`;
- `Content-Type: application/json` → otherwise 400 `6105 Invalid Content-Type header`;
- a body that is exactly `{"tags": [...]}`: a JSON object with the one member "tags", a list of 1 to 30 strings,
  each 1 to 1024 bytes → otherwise 400 `1012` with what is wrong;
- success: 200 `{"success":true,"errors":[],"messages":[],"result":{"id":"<32 hex>"}}`;
- errors: `{"success":false,"errors":[{"code":N,"message":"..."}],"messages":[],"result":null}`.

The codes are those of Cloudflare's API error catalogue where one fits; 1012 for a malformed purge body is this
stand-in's choice. Every request is recorded (`requests`, with `problem` set when the request broke the documented
shape), accepted purges in `purges` (lists of tags, in arrival order), and `fail()` makes the next requests answer
a chosen error.

    cf = FakeCloudflare(token="t0k3n", zone_id="023e105f4ecef8ad9ca31a8372d0c353")
    cf.start()                    # listens on 127.0.0.1, port chosen by the kernel
    cf.api_base                   # "http://127.0.0.1:PORT/client/v4": propagation.cloudflare.api_base
    ...
    assert cf.problems() == []
    cf.stop()

Run alone: `python3 fake_cloudflare.py --token T [--zone Z] [--port 0]` prints
"fake-cloudflare: listening on http://127.0.0.1:PORT" (the harness's readiness line) and serves until SIGTERM.
"""
import argparse
import http.server
import json
import re
import signal
import sys
import threading
import time
import uuid

PATH = re.compile(r"^/client/v4/zones/([^/]+)/purge_cache$")
ZONE_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_TAGS = 30
MAX_TAG_BYTES = 1024


class FakeCloudflare:
    def __init__(self, token, zone_id=None, host="127.0.0.1", port=0):
        self.token = token
        self.zone_id = zone_id
        self.requests = []  # dict(time, method, path, headers, body, status, problem)
        self.purges = []    # [tags] of every accepted purge, in order
        self._failures = []  # queued (status, code, message)
        self._lock = threading.Condition()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _any(self):
                fake._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.api_base = "http://%s:%d/client/v4" % (host, self.port)
        self._thread = None

    # --- control from the test ----------------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def fail(self, count=1, status=500, code=10000, message="Internal error"):
        """The next `count` well-formed requests are answered with this Cloudflare error."""
        with self._lock:
            self._failures.extend([(status, code, message)] * count)

    def problems(self):
        """What every request that broke the documented shape got wrong."""
        with self._lock:
            return [(r["method"], r["path"], r["problem"]) for r in self.requests if r["problem"]]

    def wait_purges(self, n, timeout=10.0):
        """Waits until at least n purges were accepted; returns them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.purges) < n and time.monotonic() < deadline:
                self._lock.wait(0.05)
            return list(self.purges)

    # --- serving -------------------------------------------------------------------------------

    def _handle(self, h):
        length = h.headers.get("Content-Length")
        body = h.rfile.read(int(length)) if length and length.isdigit() else b""
        rec = dict(time=time.monotonic(), method=h.command, path=h.path, headers={k.lower(): v for k, v in h.headers.items()},
                   body=body, status=None, problem=None)
        status, doc, tags = self._judge(h, body, rec)
        rec["status"] = status
        with self._lock:
            self.requests.append(rec)
            if tags is not None:
                self.purges.append(tags)
            self._lock.notify_all()
        data = json.dumps(doc).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    @staticmethod
    def _error(status, code, message):
        return status, {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}

    def _judge(self, h, body, rec):
        """(status, answer, accepted tags or None); rec["problem"] says what broke the documented shape."""
        m = PATH.match(h.path)
        if not m or not ZONE_ID.match(m.group(1)) or (self.zone_id and m.group(1) != self.zone_id):
            rec["problem"] = "path %s" % h.path
            return self._error(404, 7003, "Could not route to %s, perhaps your object identifier is invalid?" % h.path) + (None,)
        if h.command != "POST":
            rec["problem"] = "method %s" % h.command
            return self._error(405, 10000, "Method %s not allowed for this endpoint" % h.command) + (None,)
        auth = h.headers.get("Authorization")
        if auth is None or not auth.startswith("Bearer "):
            rec["problem"] = "no Bearer token"
            return self._error(400, 6003, "Invalid request headers") + (None,)
        if auth != "Bearer " + self.token:
            rec["problem"] = "wrong token"
            return self._error(403, 10000, "Authentication error") + (None,)
        ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            rec["problem"] = "content type %r" % h.headers.get("Content-Type")
            return self._error(400, 6105, "Invalid Content-Type header, valid values are application/json") + (None,)
        why = None
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            doc, why = None, "body is not JSON: %s" % e
        if why is None:
            if not isinstance(doc, dict) or set(doc) != {"tags"}:
                why = "body must be exactly {\"tags\": [...]}, not %r" % (doc,)
            elif not isinstance(doc["tags"], list) or not 1 <= len(doc["tags"]) <= MAX_TAGS:
                why = "tags: expected a list of 1 to %d tags" % MAX_TAGS
            else:
                for t in doc["tags"]:
                    if not isinstance(t, str) or not 1 <= len(t.encode()) <= MAX_TAG_BYTES:
                        why = "tags: %r is not a string of 1 to %d bytes" % (t, MAX_TAG_BYTES)
                        break
        if why is not None:
            rec["problem"] = why
            return self._error(400, 1012, why) + (None,)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return self._error(*failure) + (None,)
        return 200, {"success": True, "errors": [], "messages": [], "result": {"id": uuid.uuid4().hex}}, doc["tags"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--token", required=True)
    ap.add_argument("--zone")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    cf = FakeCloudflare(args.token, args.zone, port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=cf.server.shutdown).start())
    print("fake-cloudflare: listening on http://127.0.0.1:%d" % cf.port, flush=True)
    cf.server.serve_forever()
    cf.server.server_close()
    problems = cf.problems()
    for p in problems:
        sys.stderr.write("fake-cloudflare: malformed request: %s %s: %s\n" % p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
