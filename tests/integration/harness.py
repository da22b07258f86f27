"""Integration test harness: starts the real Updraft programs on loopback and talks to them.

    env = harness.Env("test_feeds")          # fresh temp dir with data/ and storage/
    self.addCleanup(env.stop_all)            # or: with harness.Env(...) as env:
    origin = env.start_origin()              # listens on 127.0.0.1:0, port read from stdout
    control = env.start_control(public_url=origin.url)
    key = env.create_key()
    env.api("POST", "/v1/apps", {"id": "acme", "name": "Acme"}, key=key)

Every program listens on port 0 and reports the bound port on stdout ("PROG: listening on
http://127.0.0.1:PORT"), which is race-free. A program that exits early or is not ready within
10 s fails the test at once with its log. stop() sends SIGTERM and fails on any exit code but 0.

The temp dirs are removed when the process exits if no test failed while they were in use;
otherwise they are kept, and their paths and the programs' logs are printed (STYLE.md section 8).
Set UPDRAFT_KEEP_TMP=1 to keep them always.

Binaries come from $UPDRAFT_BUILD_DIR (default /work/main/build), the repository from
$UPDRAFT_SOURCE_DIR (default: two levels above this file).
"""
import atexit
import base64
import ctypes
import ctypes.util
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

SOURCE_DIR = os.environ.get("UPDRAFT_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("UPDRAFT_BUILD_DIR") or "/work/main/build"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

# The CLI reads saved credentials from $XDG_CONFIG_HOME (or ~/.config): a test must never pick up the
# credentials of the person or machine running it, so every process the tests start gets a
# configuration home of its own, empty unless a test writes into it.
_CONFIG_HOME = tempfile.mkdtemp(prefix="updraft-test-config-")
os.environ["XDG_CONFIG_HOME"] = _CONFIG_HOME
atexit.register(shutil.rmtree, _CONFIG_HOME, True)

_LISTENING = re.compile(r"listening on (https?)://(\[[^\]]+\]|[^\s:/]+):(\d+)")

# ---------------------------------------------------------------------------------------------
# failure tracking: any failure or error reported to unittest marks the Envs alive at that time

_failures = 0
_envs = []


def _count(orig):
    def wrapper(self, *args, **kwargs):
        global _failures
        _failures += 1
        return orig(self, *args, **kwargs)
    return wrapper


unittest.TestResult.addFailure = _count(unittest.TestResult.addFailure)
unittest.TestResult.addError = _count(unittest.TestResult.addError)
unittest.TestResult.addUnexpectedSuccess = _count(unittest.TestResult.addUnexpectedSuccess)
_orig_add_subtest = unittest.TestResult.addSubTest


def _add_subtest(self, test, subtest, err):
    global _failures
    if err is not None and not issubclass(err[0], unittest.SkipTest):
        _failures += 1
    return _orig_add_subtest(self, test, subtest, err)


unittest.TestResult.addSubTest = _add_subtest


def _at_exit():
    kept = []
    for env in _envs:
        env._mark()
        if env.failed or os.environ.get("UPDRAFT_KEEP_TMP"):
            kept.append(env)
        else:
            shutil.rmtree(env.dir, ignore_errors=True)
    for env in kept:
        if env.failed:
            env.dump_logs()
        sys.stderr.write("harness: kept %s\n" % env.dir)
    if _envs and not kept:
        sys.stderr.write("harness: %d temp dir(s) removed\n" % len(_envs))
    sys.stderr.flush()


atexit.register(_at_exit)


def binary(name):
    """Path of a built program (updraft-origin, updraft-control, updraft)."""
    path = os.path.join(BUILD_DIR, name)
    if not os.access(path, os.X_OK):
        raise AssertionError("%s is not built (UPDRAFT_BUILD_DIR=%s)" % (path, BUILD_DIR))
    return path


def poll(get, ok, timeout, interval=0.1):
    """Calls get() every `interval` s until ok(value) holds or `timeout` s have passed; returns the
    last value (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def sha512_b64(data):
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def make_mmdb(path, *args):
    """Writes the test GeoIP database (tests/support/make-test-mmdb.pl): 81.2.69.0/24 GB,
    203.0.113.0/24 FR, 198.51.100.0/24 DE, 2001:db8:1::/48 US, 192.0.2.0/24 registered SE."""
    script = os.path.join(SOURCE_DIR, "tests", "support", "make-test-mmdb.pl")
    r = subprocess.run(["perl", script, path] + list(args), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("make-test-mmdb.pl failed (%d): %s" % (r.returncode, r.stderr))
    return path


# ---------------------------------------------------------------------------------------------


class Proc:
    """One running program. .url/.port: first http listener; .https_url/.https_port: first TLS one;
    .listeners: [(scheme, host, port)]; .log: stderr file; .stdout: stdout lines so far."""

    def __init__(self, env, name, argv, listeners):
        self.env = env
        self.name = name
        self.argv = argv
        self.log = os.path.join(env.dir, "%s.log" % name)
        self.stdout_path = os.path.join(env.dir, "%s.stdout" % name)
        self.stdout = []
        self.listeners = []
        self.url = self.port = self.https_url = self.https_port = None
        self.stopped = False
        self._lock = threading.Condition()
        self._eof = False
        with open(self.log, "ab") as err:
            err.write(("+ %s\n" % " ".join(argv)).encode())
            err.flush()
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=err, cwd=env.dir, start_new_session=True)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self._wait_ready(listeners)

    def _read_stdout(self):
        with open(self.stdout_path, "ab") as out:
            for raw in self.popen.stdout:
                out.write(raw)
                out.flush()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                with self._lock:
                    self.stdout.append(line)
                    m = _LISTENING.search(line)
                    if m:
                        self.listeners.append((m.group(1), m.group(2), int(m.group(3))))
                    self._lock.notify_all()
        with self._lock:
            self._eof = True
            self._lock.notify_all()

    def _wait_ready(self, expected):
        deadline = time.monotonic() + READY_TIMEOUT
        with self._lock:
            while len(self.listeners) < expected:
                left = deadline - time.monotonic()
                if self._eof or self.popen.poll() is not None:
                    break
                if left <= 0:
                    break
                self._lock.wait(min(left, 0.1))
            ready = len(self.listeners) >= expected
        if not ready:
            rc = self.popen.poll()
            if rc is None:
                self.kill()
                why = "not ready within %.0f s (%d of %d listeners reported)" % (
                    READY_TIMEOUT, len(self.listeners), expected)
            else:
                self.stopped = True
                self._close_stdout()
                why = "exited early with status %d" % rc
            raise AssertionError("%s %s\n%s" % (self.name, why, self.describe()))
        for scheme, host, port in self.listeners:
            url = "%s://%s:%d" % (scheme, host, port)
            if scheme == "http" and self.url is None:
                self.url, self.port = url, port
            if scheme == "https" and self.https_url is None:
                self.https_url, self.https_port = url, port

    def describe(self):
        return "--- %s: %s\n--- stdout:\n%s\n--- log %s:\n%s--- end of %s" % (
            self.name, " ".join(self.argv), "\n".join(self.stdout), self.log, _tail(self.log), self.name)

    def alive(self):
        return self.popen.poll() is None

    def stop(self):
        """SIGTERM; asserts exit status 0 within 10 s."""
        if self.stopped:
            return
        self.stopped = True
        rc = self.popen.poll()
        if rc is not None:
            raise AssertionError("%s had already exited with status %d before SIGTERM\n%s"
                                 % (self.name, rc, self.describe()))
        self.popen.send_signal(signal.SIGTERM)
        try:
            rc = self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill_group()
            self._close_stdout()
            raise AssertionError("%s did not exit within %.0f s of SIGTERM\n%s"
                                 % (self.name, STOP_TIMEOUT, self.describe()))
        self._close_stdout()
        if rc != 0:
            raise AssertionError("%s exited with status %d after SIGTERM\n%s" % (self.name, rc, self.describe()))

    def kill(self):
        self.stopped = True
        self._kill_group()
        self._close_stdout()

    def _close_stdout(self):
        self._reader.join(5)
        if not self._reader.is_alive():
            self.popen.stdout.close()

    def _kill_group(self):
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(10)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")


def assert_survived(env, proc):
    """After abuse: proc still answers /healthz, stops with exit status 0 and logged no sanitizer report."""
    status, _, body = env.http("GET", "/healthz", base=proc.url)
    assert status == 200, "%s no longer answers /healthz: %d %r" % (proc.name, status, body)
    proc.stop()  # asserts exit status 0 (ASan reports and leaks make it non-zero)
    with open(proc.log, "r", errors="replace") as f:
        log = f.read()
    for mark in SANITIZER_MARKS:
        assert mark not in log, "sanitizer report in the log of %s: %s" % (proc.name, mark)


def _tail(path, limit=20000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return "(%s)\n" % e
    if size > limit:
        text = "[... %d bytes cut ...]\n" % (size - limit) + text
    return text if text.endswith("\n") or not text else text + "\n"


S3_ACCESS_KEY = "UPDRAFTTESTKEY"
S3_SECRET_KEY = "updraft/test+secret=0123456789abcdef"
S3_BUCKET = "updraft-artifacts"
S3RVER_JS = os.path.join(SOURCE_DIR, "tests", "support", "s3rver.js")
S3RVER_PKG = os.path.join(SOURCE_DIR, "tests", "node_modules", "@20minutes", "s3rver", "package.json")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for programs that cannot bind port 0
    and report it, like varnishd, or to name a port where nothing listens)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _has_opt(args, opt):
    return any(a == opt or a.startswith(opt + "=") for a in args)


class Env:
    """A fresh temp dir (data/, storage/) and the programs started in it."""

    def __init__(self, test_name="updraft"):
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", test_name)
        self.dir = tempfile.mkdtemp(prefix="updraft-%s-" % safe)
        self.data = os.path.join(self.dir, "data")
        self.storage = os.path.join(self.dir, "storage")
        os.makedirs(self.data)
        os.makedirs(self.storage)
        self.procs = []
        self.origin = None    # the first origin started
        self.control = None   # the first control started
        self.sts = None       # the first updraft-sts started
        self.failed = False
        self._failures_at_start = _failures
        self._done = False
        self._counter = {}
        _envs.append(self)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not issubclass(exc_type, unittest.SkipTest):
            self.failed = True
        self.stop_all()
        return False

    def _mark(self):
        if not self._done and _failures > self._failures_at_start:
            self.failed = True

    def _name(self, base):
        n = self._counter.get(base, 0) + 1
        self._counter[base] = n
        return base if n == 1 else "%s-%d" % (base, n)

    def _start(self, prog, extra, listeners):
        extra = [str(a) for a in extra]
        name = self._name(prog)
        args = []
        if not _has_opt(extra, "--listen") and not _has_opt(extra, "--config") and "--check" not in extra:
            args += ["--listen", "127.0.0.1:0"]
        if not _has_opt(extra, "--data"):
            args += ["--data", self.data]
        if not _has_opt(extra, "--storage"):
            args += ["--storage", self.storage]
        if not _has_opt(extra, "--access-log"):
            args += ["--access-log", os.path.join(self.dir, "%s.access.log" % name)]
        if listeners is None:
            listeners = sum(1 for a in extra if a == "--listen" or a.startswith("--listen=")) or 1
        try:
            proc = Proc(self, name, [binary(prog)] + args + extra, listeners)
        except AssertionError:
            self.failed = True
            raise
        self.procs.append(proc)
        return proc

    def start_origin(self, *extra_args, listeners=None):
        """Starts updraft-origin on 127.0.0.1:0 (unless --listen/--config is given) with this
        env's data and storage dirs; waits for `listeners` "listening on" lines (default: number
        of --listen args, or 1)."""
        proc = self._start("updraft-origin", extra_args, listeners)
        if self.origin is None:
            self.origin = proc
        return proc

    def start_control(self, *extra_args, public_url=None, listeners=None):
        """Starts updraft-control; public_url defaults to the first origin's URL if one runs
        (False: no --public-url, the control's configured default applies)."""
        extra = list(extra_args)
        if public_url is None and self.origin is not None and not _has_opt(extra, "--public-url"):
            public_url = self.origin.url
        if public_url:
            extra += ["--public-url", public_url]
        proc = self._start("updraft-control", extra, listeners)
        if self.control is None:
            self.control = proc
        return proc

    def start_sts(self, *extra_args, listeners=None):
        """Starts updraft-sts (serve) on 127.0.0.1:0 (unless --listen/--config is given) with this env's data dir
        (run `updraft-sts init --data DIR` first); the first one started is self.sts."""
        proc = self._start("updraft-sts", extra_args, listeners)
        if self.sts is None:
            self.sts = proc
        return proc

    def run(self, prog, *args, env=None, input=None, timeout=60):
        """Runs a program to completion: CompletedProcess with text stdout/stderr."""
        e = dict(os.environ)
        if env:
            e.update(env)
        return subprocess.run([binary(prog)] + [str(a) for a in args], capture_output=True, text=True,
                              input=input, env=e, timeout=timeout, cwd=self.dir)

    def create_key(self, role="admin", name="test"):
        r = self.run("updraft-control", "keys", "create", "--data", self.data, "--role", role, "--name", name)
        lines = r.stdout.splitlines()
        if r.returncode != 0 or len(lines) != 1 or not lines[0].strip():
            raise AssertionError("keys create failed (status %d)\nstdout: %r\nstderr: %s"
                                 % (r.returncode, r.stdout, r.stderr))
        return lines[0].strip()

    def write(self, name, text):
        """Writes DIR/NAME (a config file, say); returns its path."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def make_cert(self, *newkey):
        """A self-signed certificate for localhost and 127.0.0.1 in DIR/cert.pem, its key in
        DIR/key.pem; `newkey`: openssl req's key options (default EC P-256). Returns (cert, key)."""
        cert, key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        newkey = list(newkey) or ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        subprocess.run(["openssl", "req", "-x509"] + newkey + [
            "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
        return cert, key

    def put_artifact(self, app, version, name, data):
        """Writes STORAGE/APP/VERSION/NAME; returns dict(name, size, sha512 base64)."""
        d = os.path.join(self.storage, app, version)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        return dict(name=name, size=len(data), sha512=sha512_b64(data))

    # --- object storage (s3rver standing in for R2 and S3) ------------------------------------

    def start_s3rver(self, name, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY, bucket=S3_BUCKET, port=0, data_dir=None):
        """Starts tests/support/s3rver.js (@20minutes/s3rver 5, which verifies SigV4) with one key
        pair and one bucket (none when bucket is None); its objects live in data_dir (default
        DIR/NAME). Returns the Proc, with .s3dir set. Restarting on the same port and dir brings the
        same objects back."""
        if not os.path.exists(S3RVER_PKG):
            raise AssertionError("tests/node_modules has no @20minutes/s3rver: run `cd tests && npm ci`")
        data_dir = data_dir or os.path.join(self.dir, name)
        try:
            proc = Proc(self, self._name(name), [
                "node", S3RVER_JS, "--port", str(port), "--dir", data_dir, "--access-key", access_key,
                "--secret-key", secret_key] + (["--bucket", bucket] if bucket is not None else []), 1)
        except AssertionError:
            self.failed = True
            raise
        proc.s3dir = data_dir
        proc.bucket = bucket
        self.procs.append(proc)
        return proc

    def s3_stats(self, s3):
        """{"GET /bucket/key": count} of the requests an s3rver has answered."""
        return json.loads(self.http("GET", "/__updraft/stats", base=s3)[2])

    def s3_count(self, s3, method, key, bucket=S3_BUCKET):
        return self.s3_stats(s3).get("%s /%s/%s" % (method, bucket, key), 0)

    def s3_fault(self, s3, status):
        """Makes an s3rver answer every request with `status` (0: normal again)."""
        st, _, body = self.http("PUT", "/__updraft/faults?status=%d" % status, base=s3)
        if st != 200:
            raise AssertionError("s3rver faults: %d %r" % (st, body))

    def s3_object_path(self, s3, key, bucket=S3_BUCKET):
        """Where s3rver keeps an object's bytes (flip one to corrupt its copy)."""
        return os.path.join(s3.s3dir, bucket, *key.split("/")) + "._S3rver_object"

    def s3_flip_byte(self, s3, key, offset, mask=0xFF, bucket=S3_BUCKET):
        """Corrupts an s3rver's copy of an object in place: the byte at `offset` XOR `mask`."""
        with open(self.s3_object_path(s3, key, bucket), "r+b") as f:
            f.seek(offset)
            b = f.read(1)
            f.seek(offset)
            f.write(bytes([b[0] ^ mask]))

    def s3_put(self, s3, key, data, bucket=S3_BUCKET, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY):
        """PUTs an object, signed by curl's own SigV4 (independent of Updraft's signer)."""
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "--data-binary", "@-",
                            "--aws-sigv4", "aws:amz:auto:s3", "--user", "%s:%s" % (access_key, secret_key),
                            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                            "%s/%s/%s" % (s3.url, bucket, urllib.parse.quote(key, safe="/~"))],
                           input=data, capture_output=True, timeout=60)
        if r.stdout.strip() != b"200":
            raise AssertionError("PUT %s to %s: %r %r" % (key, s3.name, r.stdout, r.stderr))

    def s3_get(self, s3, key, bucket=S3_BUCKET, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY):
        """GETs an object signed by curl's SigV4: (status, bytes)."""
        r = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--aws-sigv4", "aws:amz:auto:s3",
                            "--user", "%s:%s" % (access_key, secret_key), "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                            "%s/%s/%s" % (s3.url, bucket, urllib.parse.quote(key, safe="/~"))],
                           capture_output=True, timeout=60)
        body, _, status = r.stdout.rpartition(b"\n")
        return int(status), body

    def object_store_config(self, r2, s3, extra="", listen="127.0.0.1:0", r2_secret=S3_SECRET_KEY, name="object-store"):
        """Writes a YAML config selecting object_store.kind s3 with these two s3rvers as R2 and S3;
        `extra` is appended as is. Returns its path (pass it with --config)."""
        path = os.path.join(self.dir, "%s.yaml" % self._name(name))
        with open(path, "w") as f:
            f.write("listen: [\"%s\"]\nobject_store:\n  kind: s3\n" % listen)
            for label, proc, secret in (("r2", r2, r2_secret), ("s3", s3, S3_SECRET_KEY)):
                f.write("  %s:\n    endpoint: %s\n    region: %s\n    bucket: %s\n    access_key: %s\n"
                        "    secret_key: \"%s\"\n" % (label, proc.url, "auto" if label == "r2" else "eu-west-1",
                                                    proc.bucket, S3_ACCESS_KEY, secret))
            f.write(extra)
        return path

    # --- the CDN edge (Varnish) ---------------------------------------------------------------

    def start_varnish(self, vcl_path, port=0, name="varnish", params=()):
        """Starts varnishd in the foreground as the CDN edge: `-j none` (no jail: these tests run as
        root and Varnish's default jail wants a `varnish` user), its working dir DIR/NAME.d (-n, which
        also holds the management secret), HTTP on 127.0.0.1:PORT (a free port when 0), management
        (-T) on another free port, VCL vcl_path, 64 MB of malloc storage and a ban lurker that
        wakes every 10 ms. Waits until it answers HTTP (any status: its backends may be down).
        Returns the Proc, with .url, .port, .workdir and .admin_port; stopped with the others."""
        varnishd = shutil.which("varnishd") or shutil.which("varnishd", path="/usr/sbin:/usr/local/sbin")
        if varnishd is None:
            raise AssertionError("varnishd is not installed (Debian: apt-get install varnish)")
        name = self._name(name)
        workdir = os.path.join(self.dir, "%s.d" % name)
        port = port or free_port()
        admin_port = free_port()
        argv = [varnishd, "-F", "-j", "none", "-n", workdir, "-a", "127.0.0.1:%d" % port,
                "-T", "127.0.0.1:%d" % admin_port, "-f", os.path.abspath(vcl_path), "-s", "malloc,64m",
                "-p", "ban_lurker_sleep=0.01"] + [str(a) for a in params]
        try:
            proc = Proc(self, name, argv, 0)  # varnishd prints no "listening on" line: poll below
        except AssertionError:
            self.failed = True
            raise
        self.procs.append(proc)
        proc.url, proc.port, proc.workdir, proc.admin_port = "http://127.0.0.1:%d" % port, port, workdir, admin_port
        proc.listeners.append(("http", "127.0.0.1", port))
        deadline = time.monotonic() + 3 * READY_TIMEOUT  # compiling the VCL with cc takes a few seconds
        while True:
            if proc.popen.poll() is not None:
                proc.stopped = True
                proc._close_stdout()
                self.failed = True
                raise AssertionError("%s exited early with status %d\n%s" % (name, proc.popen.returncode, proc.describe()))
            try:
                self.http("HEAD", "/_varnish_ready", base=proc.url, timeout=2)
                return proc
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                proc.kill()
                self.failed = True
                raise AssertionError("%s not answering on port %d within %.0f s\n%s"
                                     % (name, port, 3 * READY_TIMEOUT, proc.describe()))
            time.sleep(0.05)

    # --- HTTP ---------------------------------------------------------------------------------

    def _base(self, base, default):
        if base is None:
            if default is None:
                raise AssertionError("no program started to send the request to")
            base = default.url
        elif isinstance(base, Proc):
            base = base.url
        return base

    def http(self, method, path, headers=None, body=None, base=None, timeout=30):
        """One request on a new connection: (status, headers lower-case with repeated ones
        joined by ", ", body bytes). base defaults to the first origin's http URL."""
        base = self._base(base, self.origin)
        u = urllib.parse.urlsplit(base)
        if u.scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {})
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        try:
            conn.request(method, u.path.rstrip("/") + path if u.path not in ("", "/") else path,
                         body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            hdrs = {}
            for k, v in resp.getheaders():
                k = k.lower()
                hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
            return resp.status, hdrs, data
        finally:
            conn.close()

    def api(self, method, path, body=None, key=None, headers=None):
        """A control API request: (status, parsed JSON or None)."""
        status, _, data = self.api_raw(method, path, body=body, key=key, headers=headers)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, None

    def api_raw(self, method, path, body=None, key=None, headers=None):
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = "Bearer " + key
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        return self.http(method, path, headers=h, body=body, base=self._base(None, self.control))

    def raw(self, port, data, timeout=3):
        """Sends bytes to 127.0.0.1:port and reads until the peer closes or `timeout` s pass
        without data."""
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            s.sendall(data)
            chunks = []
            while True:
                r, _, _ = select.select([s], [], [], timeout)
                if not r:
                    break
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            s.close()

    def register_release(self, key, app, version, files, channel="latest", rollout=None, notes=None):
        """POST /v1/apps/APP/releases; rollout: None (100%), a percent, or a dict."""
        body = {"version": version, "channel": channel, "files": files}
        if notes is not None:
            body["notes"] = notes
        if rollout is not None:
            body["rollout"] = rollout if isinstance(rollout, dict) else {"percent": rollout}
        return self.api("POST", "/v1/apps/%s/releases" % app, body, key=key)

    # --- teardown -----------------------------------------------------------------------------

    def stop_all(self):
        """Stops every program (SIGTERM, exit 0 asserted); raises after stopping them all."""
        self._mark()
        errors = []
        for proc in reversed(self.procs):
            try:
                proc.stop()
            except AssertionError as e:
                errors.append(str(e))
        self._done = True
        if errors:
            self.failed = True
            raise AssertionError("\n".join(errors))

    def dump_logs(self):
        out = ["harness: test dir %s" % self.dir]
        for proc in self.procs:
            out.append(proc.describe())
        sys.stderr.write("\n".join(out) + "\n")


# --- the fixture base: one stack of programs per test class ---------------------------------------


class StackTest(unittest.TestCase):
    """Base of the integration test classes: one Env and the programs in it, started once in
    setUpClass and stopped by a class cleanup, which also runs when setUpClass fails.

        class FeedsTest(harness.StackTest):
            env_name = "test_feeds"               # temp dir updraft-test_feeds-XXXXXX
            programs = ("origin", "control")      # cls.origin, cls.control
            keys = (("key", "admin", "test"),)    # cls.key = env.create_key("admin", "test")
            apps = (("acme", "Acme"),)            # created with the first key, 201 asserted

            @classmethod
            def set_up_stack(cls):                # the rest: releases, more programs, ...
                cls.release_artifacts("acme", "1.0.0", [("Acme-Setup-1.0.0.exe", data, "windows", "x64")])

    setUpClass, in this order: cls.env = Env(env_name); prepare_stack() (files the programs
    read: configs, certificates); each s3rver named in `s3rvers` (cls.NAME); each of `programs`
    ("origin": env.start_origin(*origin_args()); "control": env.start_control(*control_args(),
    public_url=control_public_url), which defaults to the first origin's URL); the `keys`; the
    `apps`; set_up_stack(). When any of it raises, the env is marked failed, so that its temp dir
    is kept and the programs' logs are printed at exit, and every program started is stopped.
    A stand-in started in a hook is stopped before the programs when its stop is registered
    with cls.addClassCleanup.

    survives = True: tearDownClass asserts the first origin survived the tests (assert_survived:
    it answers /healthz, exits 0 on SIGTERM, logged no sanitizer report).

    env_name = None: no shared env; tests take their own with self.fresh_env(name).
    """

    env_name = None
    s3rvers = ()
    programs = ()
    control_public_url = None
    keys = ()
    apps = ()
    survives = False

    @classmethod
    def origin_args(cls):
        """Arguments of the origin that `programs` starts (called after prepare_stack)."""
        return ()

    @classmethod
    def control_args(cls):
        """Arguments of the control plane that `programs` starts."""
        return ()

    @classmethod
    def prepare_stack(cls):
        """Before any program starts."""

    @classmethod
    def set_up_stack(cls):
        """After the declared programs, keys and apps."""

    @classmethod
    def setUpClass(cls):
        if cls.env_name is None:
            return
        cls.env = env = Env(cls.env_name)
        cls.addClassCleanup(env.stop_all)
        try:
            cls.prepare_stack()
            for name in cls.s3rvers:
                setattr(cls, name, env.start_s3rver(name))
            for prog in cls.programs:
                if prog == "origin":
                    cls.origin = env.start_origin(*cls.origin_args())
                elif prog == "control":
                    cls.control = env.start_control(*cls.control_args(), public_url=cls.control_public_url)
                else:
                    raise AssertionError("StackTest.programs: unknown program %r" % prog)
            for attr, role, name in cls.keys:
                setattr(cls, attr, env.create_key(role, name))
            for app, name in cls.apps:
                cls.create_app(app, name)
            cls.set_up_stack()
        except BaseException:
            env.failed = True
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.survives:
            assert_survived(cls.env, cls.origin)

    # --- helpers for the hooks ----------------------------------------------------------------

    @classmethod
    def first_key(cls):
        if not cls.keys:
            raise AssertionError("%s declares no keys" % cls.__name__)
        return getattr(cls, cls.keys[0][0])

    @classmethod
    def create_app(cls, app, name, key=None):
        """POST /v1/apps; asserts 201. key defaults to the first of `keys`."""
        status, body = cls.env.api("POST", "/v1/apps", {"id": app, "name": name}, key=key or cls.first_key())
        if status != 201:
            raise AssertionError("create app %s: %d %r" % (app, status, body))
        return body

    @classmethod
    def release_artifacts(cls, app, version, artifacts, key=None, **release):
        """Stages each (name, data, platform, arch) under storage and registers them as one
        release (register_release's channel/rollout/notes in `release`); asserts 201 and returns
        the answer."""
        files = [dict(cls.env.put_artifact(app, version, name, data), platform=platform, arch=arch)
                 for name, data, platform, arch in artifacts]
        status, body = cls.env.register_release(key or cls.first_key(), app, version, files, **release)
        if status != 201:
            raise AssertionError("register %s %s: %d %r" % (app, version, status, body))
        return body

    def fresh_env(self, name):
        """An Env of this test's own, stopped when the test ends (exit status 0 asserted)."""
        env = Env(name)
        self.addCleanup(env.stop_all)
        return env


# --- small parsers shared by the feed tests ------------------------------------------------------

def _yaml_scalar(v):
    v = v.strip()
    if v.startswith("'") and v.endswith("'") and len(v) >= 2:
        return v[1:-1].replace("''", "'")
    if v.startswith('"') and v.endswith('"') and len(v) >= 2:
        return json.loads(v)
    if re.fullmatch(r"-?[0-9]+", v):
        return int(v)
    if v in ("null", "~", ""):
        return None
    return v


def parse_yaml(text):
    """Parses the YAML subset electron-builder's latest*.yml uses: a top-level mapping of scalars,
    block literals (|, |-) and one level of sequences of flat mappings. Strict: anything else raises."""
    lines = text.split("\n")
    out = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "" or line in ("---", "...") or line.lstrip().startswith("#"):
            i += 1
            continue
        m = re.fullmatch(r"([A-Za-z0-9_]+):(?: (.*))?", line)
        if not m:
            raise ValueError("unexpected YAML line %d: %r" % (i + 1, line))
        key, value = m.group(1), (m.group(2) or "").strip()
        if key in out:
            raise ValueError("duplicate key %r" % key)
        i += 1
        if value in ("|", "|-", "|+"):
            block = []
            while i < len(lines) and (lines[i].startswith(" ") or lines[i] == ""):
                block.append(lines[i])
                i += 1
            while block and block[-1] == "" and i >= len(lines):
                block.pop()
            indent = min((len(b) - len(b.lstrip(" ")) for b in block if b.strip()), default=0)
            s = "\n".join(b[indent:] for b in block)
            if value == "|-":
                s = s.rstrip("\n")
            else:
                s = s.rstrip("\n") + "\n"
            out[key] = s
        elif value == "":
            items = []
            while i < len(lines):
                m2 = re.fullmatch(r"( *)- (.*)", lines[i])
                if not m2:
                    break
                dash = len(m2.group(1))
                item = {}
                rest = [m2.group(2)]
                i += 1
                while i < len(lines) and lines[i].startswith(" " * (dash + 1)) and lines[i].strip() \
                        and not re.fullmatch(r" *- .*", lines[i][dash:]):
                    rest.append(lines[i].strip())
                    i += 1
                for kv in rest:
                    m3 = re.fullmatch(r"([A-Za-z0-9_]+): (.*)", kv)
                    if not m3:
                        raise ValueError("unexpected YAML sequence line %r" % kv)
                    item[m3.group(1)] = _yaml_scalar(m3.group(2))
                items.append(item)
            out[key] = items
        else:
            out[key] = _yaml_scalar(value)
    return out


RELEASES_LINE = re.compile(r"^([0-9a-fA-F]{40})\s+(\S+)\s+(\d+)(# \d+%)?$")


def parse_releases(text):
    """Squirrel.Windows RELEASES: [(sha1, filename, size, "# NN%" or None)]; raises on a bad line."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        m = RELEASES_LINE.match(line)
        if not m:
            raise ValueError("bad RELEASES line %r" % line)
        out.append((m.group(1), m.group(2), int(m.group(3)), m.group(4)))
    return out


def metric(text, name, **labels):
    """The value of one sample of a Prometheus metric with exactly these labels (none: the sample without labels),
    0 when absent."""
    for line in text.splitlines():
        m = re.match(r"^%s(?:\{([^}]*)\})?\s+([0-9.eE+-]+|NaN|[+-]Inf)$" % re.escape(name), line)
        if m and dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or "")) == labels:
            return float(m.group(2))
    return 0.0


def metric_sum(text, name):
    """Sum of every sample of a Prometheus metric family (all label sets); None when absent."""
    total = None
    for line in text.splitlines():
        m = re.match(r"^%s(\{[^}]*\})?\s+([0-9.eE+-]+)" % re.escape(name), line)
        if m:
            total = (total or 0) + float(m.group(2))
    return total


# ---------------------------------------------------------------------------------------------
# the store as plain liblmdb sees it

class _MDBVal(ctypes.Structure):
    _fields_ = [("mv_size", ctypes.c_size_t), ("mv_data", ctypes.c_void_p)]


class RawLMDB:
    """Reads and writes records of DATA_DIR/lmdb with plain liblmdb, as another build of Updraft, a disk that lies or
    an attacker with the disk would have left them. One write transaction per `with` block; LMDB's own locks make it
    safe beside running servers. Keys: str, bytes, or an int (the audit sub-database's big-endian sequence numbers)."""
    _lib = None

    def __init__(self, data_dir):
        if RawLMDB._lib is None:
            RawLMDB._lib = ctypes.CDLL(ctypes.util.find_library("lmdb") or "liblmdb.so.0")
        self.lib, self.path = RawLMDB._lib, os.path.join(data_dir, "lmdb")

    def __enter__(self):
        self.env, self.txn = ctypes.c_void_p(), ctypes.c_void_p()
        self._ok(self.lib.mdb_env_create(ctypes.byref(self.env)))
        self._ok(self.lib.mdb_env_set_maxdbs(self.env, ctypes.c_uint(32)))
        self._ok(self.lib.mdb_env_open(self.env, self.path.encode(), ctypes.c_uint(0), ctypes.c_int(0o600)))
        self._ok(self.lib.mdb_txn_begin(self.env, None, ctypes.c_uint(0), ctypes.byref(self.txn)))
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self._ok(self.lib.mdb_txn_commit(self.txn))
        else:
            self.lib.mdb_txn_abort(self.txn)
        self.lib.mdb_env_close(self.env)

    @staticmethod
    def _ok(rc):
        if rc != 0:
            raise AssertionError("lmdb: error %d" % rc)

    def _dbi(self, db):
        dbi = ctypes.c_uint()
        self._ok(self.lib.mdb_dbi_open(self.txn, db.encode(), ctypes.c_uint(0), ctypes.byref(dbi)))
        return dbi

    @staticmethod
    def _key(key):
        k = key if isinstance(key, bytes) else key.to_bytes(8, "big") if isinstance(key, int) else key.encode()
        buf = ctypes.create_string_buffer(k, len(k))
        return buf, _MDBVal(len(k), ctypes.cast(buf, ctypes.c_void_p))

    def get(self, db, key):
        buf, kv = self._key(key)
        vv = _MDBVal()
        rc = self.lib.mdb_get(self.txn, self._dbi(db), ctypes.byref(kv), ctypes.byref(vv))
        if rc == -30798:  # MDB_NOTFOUND
            return None
        self._ok(rc)
        return ctypes.string_at(vv.mv_data, vv.mv_size)

    def put(self, db, key, value):
        buf, kv = self._key(key)
        data = ctypes.create_string_buffer(value, len(value))
        vv = _MDBVal(len(value), ctypes.cast(data, ctypes.c_void_p))
        self._ok(self.lib.mdb_put(self.txn, self._dbi(db), ctypes.byref(kv), ctypes.byref(vv), ctypes.c_uint(0)))

    def delete(self, db, key):
        buf, kv = self._key(key)
        self._ok(self.lib.mdb_del(self.txn, self._dbi(db), ctypes.byref(kv), None))
