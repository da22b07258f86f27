#!/usr/bin/env python3
"""Soak: the origin under 10,000 concurrent connections for a bounded time, on loopback.

One origin (limits.idle_timeout_ms from --idle-timeout-ms, 3000 by default, so that its effect is
seen within the run), app acme with 1.0.0 at 100% and 1.1.0 (a 10 MB artifact) at a 25% rollout,
registered through updraft-control. Then, for --seconds, the client keeps --connections open, in
five classes (check, range, slow: one asyncio loop; slowloris, idle: a child process with a bare
epoll loop, so that their reconnect churn cannot stall the loop that times the update checks):

  check      personalised update checks (GET /update/acme/latest.yml, a new X-Updraft-Client id
             on every request) over keep-alive HTTP/1.1, paced (--check-pause between requests)
  range      1 MB Range requests of the 10 MB artifact at random offsets, keep-alive
  slow       whole-artifact GETs read at --slow-rate (64 KB/s) through a 64 KB receive buffer
  slowloris  one header byte every idle_timeout/3, the head never finished; reconnects when cut
  idle       connect and send nothing; reconnects when cut

and asserts: no error on check and range (status, length, Content-Range, every body compared with
the file or with the two feed variants), check p99 below --p99-limit, the origin's VmRSS (sampled
every second) after warm-up at most --rss-factor x RSS at warm-up end + --rss-extra-mb, every
slowloris and idle connection closed by the server within idle_timeout_ms + --slack-ms of its
connect (and none open longer), slow readers complete or still progressing with correct bytes, the
connection count held, and the origin's fd count back to its idle figure once the clients close.
Exit status 1 on any failed check; the temp dir and the origin's log are kept then.

    UPDRAFT_BUILD_DIR=$PWD/build python3 tests/soak/soak.py --seconds 60
    scripts/soak --seconds 15          # raises ulimit -n, builds, runs this

Python 3.11 standard library; tests/integration/harness.py starts and stops the programs.
"""
import argparse
import asyncio
import itertools
import json
import math
import os
import random
import resource
import signal
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import harness  # noqa: E402

APP = "acme"
BIG_NAME = "Acme-Setup-1.1.0.exe"
BIG_SIZE = 10 * 1024 * 1024
FEED_PATH = "/update/%s/latest.yml" % APP
BIG_PATH = "/artifacts/%s/1.1.0/%s" % (APP, BIG_NAME)
RANGE_LEN = 1024 * 1024
CLASSES = ("check", "range", "slow", "slowloris", "idle")
SLOW_RCVBUF = 64 * 1024
NET_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


def log(msg):
    print("soak: %s" % msg, file=sys.stderr, flush=True)


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, math.ceil(p / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


class Stats:
    def __init__(self, name):
        self.name = name
        self.workers = 0
        self.connects = 0
        self.connect_errors = 0
        self.requests = 0          # responses checked (slow: downloads completed)
        self.errors = 0
        self.samples = []          # first few error messages
        self.server_closed = 0     # connections the origin closed before we did
        self.lifetimes = None      # slowloris, idle: summary of connect -> closed by the origin, s
        self.latencies = []        # check, range: seconds per request
        self.bytes_verified = 0
        self.unexpected_data = 0   # bytes the origin sent to slowloris/idle connections
        self.keepalive_expired = 0 # check, range: this client idled past idle_timeout between requests
        self.open = 0

    def error(self, msg):
        self.errors += 1
        if len(self.samples) < 8:
            self.samples.append("%.1fs %s" % (time.monotonic() - Soak.t_start, msg))


async def read_response(reader):
    """One HTTP/1.1 response with Content-Length: (status, headers lower-case, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0].split(" ", 2)
    if len(first) < 2 or not first[0].startswith("HTTP/1."):
        raise ValueError("bad status line %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    if "content-length" not in headers:
        raise ValueError("no Content-Length in %r" % head[:300])
    body = await reader.readexactly(int(headers["content-length"]))
    return int(first[1]), headers, body


class SlowReader(asyncio.Protocol):
    """GET of the whole artifact, read at `rate` bytes/s (pause_reading between bursts), every
    chunk compared with the file."""

    def __init__(self, soak):
        self.soak = soak
        self.rate = soak.args.slow_rate * 1024
        self.done = soak.loop.create_future()
        self.head = bytearray()
        self.in_body = False
        self.pos = 0
        self.t_conn = self.t_first = self.t_last = None
        self.paused = False
        self.timer = None
        self.by_us = False
        self.failure = None
        self.complete = False
        self.tr = None

    def connection_made(self, tr):
        self.tr = tr
        self.t_conn = time.monotonic()
        self.soak.live["slow"].add(self)
        self.soak.stats["slow"].open += 1
        tr.write(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (BIG_PATH.encode(), self.soak.hostport))

    def fail(self, msg):
        if self.failure is None:
            self.failure = msg
        self.by_us = True
        self.tr.abort()

    def data_received(self, data):
        now = time.monotonic()
        if not self.in_body:
            self.head += data
            i = self.head.find(b"\r\n\r\n")
            if i < 0:
                if len(self.head) > 16384:
                    self.fail("response head over 16 KB")
                return
            lines = bytes(self.head[:i]).decode("latin-1").split("\r\n")
            hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            if not lines[0].startswith("HTTP/1.1 200 ") or hdrs.get("content-length") != str(BIG_SIZE):
                self.fail("whole artifact: %r content-length %r" % (lines[0], hdrs.get("content-length")))
                return
            data = bytes(self.head[i + 4:])
            self.head = None
            self.in_body = True
            self.t_first = now
        if not data:
            return
        n = len(data)
        if self.pos + n > BIG_SIZE or data != self.soak.big[self.pos:self.pos + n]:
            self.fail("body bytes differ from the file in [%d, %d)" % (self.pos, self.pos + n))
            return
        self.pos += n
        self.t_last = now
        self.soak.stats["slow"].bytes_verified += n
        if self.pos == BIG_SIZE:
            self.complete = True
            self.by_us = True
            self.tr.close()
            return
        over = self.pos - (self.rate * (now - self.t_first) + 65536)
        if over > 0 and not self.paused:
            self.paused = True
            self.tr.pause_reading()
            self.timer = self.soak.loop.call_later(over / self.rate, self.resume)

    def resume(self):
        self.timer = None
        self.paused = False
        if not self.tr.is_closing():
            self.tr.resume_reading()

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        if self.timer is not None:
            self.timer.cancel()
        self.soak.live["slow"].discard(self)
        self.soak.stats["slow"].open -= 1
        if not self.done.done():
            self.done.set_result(exc)


class Soak:
    t_start = time.monotonic()

    def __init__(self, args, port, big, feeds, origin_pid):
        self.args = args
        self.port = port
        self.hostport = b"127.0.0.1:%d" % port
        self.big = big
        self.feeds = feeds                 # body bytes -> version
        self.pid = origin_pid
        self.stats = {c: Stats(c) for c in CLASSES}
        self.live = {"slow": set()}
        self.offered = {v: 0 for v in feeds.values()}
        self.stopping = False
        self.samples = []                  # per second: t, rss_kb, anon_kb, file_kb, fds, cpu, open, lag
        self.t_ramp_done = None
        self.idle_fds = None
        self.timeout = args.idle_timeout_ms / 1000.0
        self.limit = (args.idle_timeout_ms + args.slack_ms) / 1000.0
        self.too_long = {"slowloris": [], "idle": []}   # ages of connections open past the limit at the end
        self.slow_end = []                 # (bytes, rate B/s, s since last data) of readers in progress at the end
        self.watch_open = {}               # the child's latest open counts
        self.worker_done = False
        self.worker_cpu = 0.0

    # --- /proc of the origin -------------------------------------------------------------------

    def rss_kb(self, field="VmRSS"):
        return self.status()[field]

    def status(self):
        """VmRSS, RssAnon, RssFile (kB) from /proc/PID/status."""
        out = {}
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile"):
                    out[k] = int(v.split()[0])
        return out

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def cpu(self):
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    # --- the five classes ------------------------------------------------------------------------

    async def connect_streams(self, st, limit):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=limit)
        except OSError as e:
            st.connect_errors += 1
            st.error("connect: %r" % e)
            await asyncio.sleep(0.5)
            return None, None
        st.connects += 1
        st.open += 1
        return reader, writer

    def net_error(self, st, what, e, served, prev, t):
        """A keep-alive connection the origin closed before answering is its idle timeout doing its job
        when this client left more than idle_timeout between two requests (it stalled; a real client
        retries, RFC 9112 section 9.3.1): counted apart, not an error. Anything else is an error."""
        if isinstance(e, asyncio.IncompleteReadError) and not e.partial:
            st.server_closed += 1
            if served > 0 and prev is not None and t - prev >= self.timeout - 0.05:
                st.keepalive_expired += 1
                return
        st.error("%s on a connection after %d responses: %r" % (what, served, e))

    async def keep_alive(self, st, what, limit, pause, rng, request, check):
        """One keep-alive HTTP/1.1 client of class `st`, paced by `pause`, reconnecting when cut:
        request() gives (request bytes, context), check(context, status, headers, body, served)
        looks at each answer; a Connection: close or a network error counts against `what`."""
        await asyncio.sleep(rng.uniform(0, pause))
        while not self.stopping:
            reader, writer = await self.connect_streams(st, limit)
            if reader is None:
                continue
            served, prev, t = 0, None, None
            try:
                while not self.stopping:
                    req, ctx = request()
                    prev, t = t, time.perf_counter()
                    writer.write(req)
                    status, headers, body = await read_response(reader)
                    st.latencies.append(time.perf_counter() - t)
                    st.requests += 1
                    served += 1
                    check(ctx, status, headers, body, served)
                    if headers.get("connection", "").lower() == "close":
                        st.error("%s: Connection: close after %d requests" % (what, served))
                        break
                    await asyncio.sleep(pause * rng.uniform(0.5, 1.5))
            except NET_ERRORS as e:
                self.net_error(st, what, e, served, prev, t)
            finally:
                writer.transport.abort()
                st.open -= 1

    async def checker(self, i):
        st, args = self.stats["check"], self.args
        seqs = itertools.count(1)

        def request():
            cid = b"soak-%04d-%07d" % (i, next(seqs))
            return (b"GET " + FEED_PATH.encode() + b" HTTP/1.1\r\nHost: " + self.hostport +
                    b"\r\nX-Updraft-Client: " + cid + b"\r\n\r\n"), cid

        def check(cid, status, headers, body, served):
            version = self.feeds.get(body)
            if status != 200 or version is None:
                st.error("update check %s: %d %r" % (cid.decode(), status, body[:120]))
            else:
                self.offered[version] += 1
                st.bytes_verified += len(body)

        await self.keep_alive(st, "update check", 65536, args.check_pause, random.Random(args.seed * 100003 + i),
                              request, check)

    async def ranger(self, i):
        st, args = self.stats["range"], self.args
        rng = random.Random(args.seed * 100019 + i)

        def request():
            a = rng.randrange(0, BIG_SIZE - RANGE_LEN + 1)
            b = a + RANGE_LEN - 1
            return (b"GET %s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%d-%d\r\n\r\n"
                    % (BIG_PATH.encode(), self.hostport, a, b)), (a, b)

        def check(ab, status, headers, body, served):
            a, b = ab
            want_cr = "bytes %d-%d/%d" % (a, b, BIG_SIZE)
            if status != 206 or headers.get("content-range") != want_cr or len(body) != RANGE_LEN:
                st.error("range %d-%d: %d content-range %r length %d" % (
                    a, b, status, headers.get("content-range"), len(body)))
            elif served % args.range_verify_every == 0 or served == 1:
                if body != self.big[a:b + 1]:
                    st.error("range %d-%d: body differs from the file" % (a, b))
                else:
                    st.bytes_verified += len(body)

        await self.keep_alive(st, "range", 2 * RANGE_LEN, args.range_pause, rng, request, check)

    async def slow(self, i):
        st = self.stats["slow"]
        await asyncio.sleep(random.uniform(0, 1))
        while not self.stopping:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
            s.setblocking(False)
            try:
                await self.loop.sock_connect(s, ("127.0.0.1", self.port))
                _, p = await self.loop.create_connection(lambda: SlowReader(self), sock=s)
            except OSError as e:
                s.close()
                st.connect_errors += 1
                st.error("connect: %r" % e)
                await asyncio.sleep(0.5)
                continue
            st.connects += 1
            exc = await p.done
            if p.failure is not None:
                st.error(p.failure)
            elif p.complete:
                st.requests += 1
            elif not p.by_us:
                st.server_closed += 1
                st.error("slow reader cut by the origin after %d of %d bytes (%r)" % (p.pos, BIG_SIZE, exc))
            if self.stopping:
                return

    # --- the run -------------------------------------------------------------------------------

    def open_total(self):
        return sum(self.stats[c].open for c in ("check", "range", "slow")) + sum(self.watch_open.values())

    async def read_worker(self, proc):
        """Follows the slowloris/idle child's JSON lines."""
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            msg = json.loads(line)
            if "open" in msg:
                self.watch_open = msg["open"]
                for c, v in msg["cut"].items():
                    self.stats[c].server_closed = v
            if "final" in msg:
                for c, r in msg["final"].items():
                    st = self.stats[c]
                    st.connects, st.connect_errors = r["connects"], r["connect_errors"]
                    st.server_closed, st.lifetimes = r["server_closed"], r["lifetimes"]
                    st.unexpected_data, st.samples = r["unexpected"], r["samples"]
                    st.errors = r["connect_errors"]
                    self.too_long[c] = msg["too_long"][c]
                self.worker_cpu = msg["cpu"]
                self.worker_done = True

    async def sampler(self):
        last = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            try:
                st = self.status()
                sample = dict(t=now - self.t0, rss_kb=st["VmRSS"], anon_kb=st["RssAnon"], file_kb=st["RssFile"],
                              fds=self.fds(), cpu=self.cpu(), open=self.open_total(), lag=max(0.0, now - last - 1.0))
            except (OSError, ValueError):
                return
            last = now
            self.samples.append(sample)
            if len(self.samples) % 5 == 0:
                s = self.stats
                log("t=%4.0fs open=%5d rss=%6.1f MB fds=%5d check=%d range=%d slow-bytes=%.0f MB "
                    "slowloris-cut=%d idle-cut=%d errors=%d" % (
                        sample["t"], sample["open"], sample["rss_kb"] / 1024.0, sample["fds"],
                        s["check"].requests, s["range"].requests, s["slow"].bytes_verified / 1e6,
                        s["slowloris"].server_closed, s["idle"].server_closed,
                        sum(x.errors for x in s.values())))

    async def run(self):
        self.loop = asyncio.get_running_loop()
        args = self.args
        self.idle_fds = self.fds()
        self.idle_rss = self.rss_kb()
        n = dict(check=args.check_conns, range=args.range_conns, slow=args.slow_conns,
                 slowloris=args.slowloris_conns)
        n["idle"] = args.connections - sum(n.values())
        if n["idle"] < 0:
            raise SystemExit("soak: --connections %d is smaller than the other classes together" % args.connections)
        for c in CLASSES:
            self.stats[c].workers = n[c]
        self.t0 = time.monotonic()
        Soak.t_start = self.t0
        sampler = asyncio.create_task(self.sampler())
        workers = []
        starts = [(self.checker, (i,)) for i in range(n["check"])] + \
                 [(self.ranger, (i,)) for i in range(n["range"])] + [(self.slow, (i,)) for i in range(n["slow"])]
        # ramp: the request classes first, in batches of 1/20 s (the listen backlog is 4096)
        batch = max(1, args.ramp_rate // 20)
        for k in range(0, len(starts), batch):
            for fn, fargs in starts[k:k + batch]:
                workers.append(asyncio.create_task(fn(*fargs)))
            await asyncio.sleep(0.05)
        # then slowloris and idle (a child process), their first connects spread evenly over one idle
        # timeout: the origin cuts each idle_timeout after its connect and it reconnects at once, so
        # they would otherwise come and go in one wave of 9,000 every idle_timeout
        end = self.t0 + args.seconds
        params = dict(port=self.port, slowloris=n["slowloris"], idle=n["idle"], timeout=self.timeout, limit=self.limit,
                      t_end=end, seed=args.seed, spread=max(self.timeout, (n["slowloris"] + n["idle"]) / float(args.ramp_rate)))
        proc = await asyncio.create_subprocess_exec(sys.executable, os.path.abspath(__file__), "--watch-worker",
                                                    json.dumps(params), stdout=asyncio.subprocess.PIPE)
        follower = asyncio.create_task(self.read_worker(proc))
        while self.open_total() < 0.98 * args.connections and time.monotonic() < min(end, self.t0 + 15):
            await asyncio.sleep(0.05)
        self.t_ramp_done = time.monotonic() - self.t0
        log("ramp: %d connections open after %.1f s" % (self.open_total(), self.t_ramp_done))
        await asyncio.sleep(max(0.0, end - time.monotonic()))

        # the end: no new requests; check and range finish the one in flight
        self.stopping = True
        now = time.monotonic()
        for p in list(self.live["slow"]):
            if p.t_first is not None and now - p.t_first >= 5.0 and not p.complete:
                self.slow_end.append((p.pos, p.pos / (now - p.t_first), now - (p.t_last or p.t_first)))
            elif p.t_first is None and now - p.t_conn > 5.0:
                self.slow_end.append((0, 0.0, now - p.t_conn))
        for p in list(self.live["slow"]):
            p.by_us = True
            p.tr.abort()
        done, pending = await asyncio.wait(workers, timeout=10)
        for t in pending:
            t.cancel()
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                self.stats["check"].error("worker crashed: %r" % t.exception())
        if pending:
            log("%d workers still busy 10 s after the end (stuck requests); cancelled" % len(pending))
            self.stats["check"].error("%d workers stuck at the end" % len(pending))
            await asyncio.wait(pending, timeout=5)
        try:
            await asyncio.wait_for(proc.wait(), 15)
            await asyncio.wait_for(follower, 5)
        except asyncio.TimeoutError:
            proc.kill()
        if proc.returncode != 0 or not self.worker_done:
            self.stats["idle"].error("the slowloris/idle child failed (status %s)" % proc.returncode)
        sampler.cancel()
        # every client connection is closed: the origin's fd count must come back to its idle figure
        deadline = time.monotonic() + 10
        while True:
            self.fds_after = self.fds()
            if self.fds_after <= self.idle_fds + 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)


# --- slowloris and idle: a child process with its own epoll loop ----------------------------------
#
# 9,000 idle connections that the origin cuts every idle_timeout come back at ~3,000 connects a second;
# through asyncio transports that costs most of a core and stalls the loop that times the update
# checks. Here each connection is a bare non-blocking socket: connect, wait for the origin's FIN,
# record connect -> close, reconnect. It reports open counts twice a second and a summary at the end
# as JSON lines on stdout.

def watch_worker(p):
    import errno
    import heapq
    import select
    t_end, interval, limit = p["t_end"], p["timeout"] / 3.0, p["limit"]
    addr = ("127.0.0.1", p["port"])
    trickle = (b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Slowloris: " % (FEED_PATH.encode(), p["port"])) + b"z" * 4000
    rng = random.Random(p["seed"])
    classes = ["slowloris"] * p["slowloris"] + ["idle"] * p["idle"]
    rng.shuffle(classes)
    t0 = time.monotonic()
    n = max(1, len(classes))
    due = [(t0 + p["spread"] * k / n, k, c) for k, c in enumerate(classes)]   # (when, tiebreak, class)
    seq = len(due)
    ep = select.epoll(len(classes) + 16)
    conns = {}      # fd -> [sock, class, t_conn or None, bytes sent, next trickle time]
    st = {c: dict(connects=0, connect_errors=0, server_closed=0, lifetimes=[], unexpected=0, samples=[])
          for c in ("slowloris", "idle")}
    opened = {"slowloris": 0, "idle": 0}
    IN = select.EPOLLIN | select.EPOLLRDHUP
    next_report = t0
    next_sweep = t0

    def emit(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def note(c, msg):
        if len(st[c]["samples"]) < 8:
            st[c]["samples"].append("%.1fs %s" % (time.monotonic() - t0, msg))

    def drop(fd):
        c = conns.pop(fd)
        ep.unregister(fd)
        c[0].close()
        if c[2] is not None:
            opened[c[1]] -= 1
        return c

    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        while due and due[0][0] <= now:
            _, _, cls = heapq.heappop(due)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex(addr)
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                st[cls]["connect_errors"] += 1
                note(cls, "connect: %s" % os.strerror(rc))
                seq += 1
                heapq.heappush(due, (now + 0.5, seq, cls))
                continue
            conns[s.fileno()] = [s, cls, None, 0, 0.0]
            ep.register(s.fileno(), select.EPOLLOUT | IN)
        if now >= next_report:
            emit({"open": dict(opened), "cut": {c: st[c]["server_closed"] for c in st}})
            next_report = now + 0.5
        if now >= next_sweep:
            for fd, c in list(conns.items()):
                if c[1] == "slowloris" and c[2] is not None and c[4] <= now:
                    try:
                        c[0].send(trickle[c[3] % len(trickle):c[3] % len(trickle) + 1])
                        c[3] += 1
                    except OSError:
                        pass            # the origin has closed it; epoll says so next
                    c[4] += interval
            next_sweep = now + 0.05
        wait = min(0.05, t_end - now, (due[0][0] - now) if due else 1.0)
        for fd, ev in ep.poll(max(0.0, wait), 4096):
            c = conns.get(fd)
            if c is None:
                continue
            now = time.monotonic()
            if c[2] is None:
                err = c[0].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    drop(fd)
                    st[c[1]]["connect_errors"] += 1
                    note(c[1], "connect: %s" % os.strerror(err))
                    seq += 1
                    heapq.heappush(due, (now + 0.5, seq, c[1]))
                    continue
                c[2] = now
                c[4] = now + rng.uniform(0, interval)
                opened[c[1]] += 1
                st[c[1]]["connects"] += 1
                ep.modify(fd, IN)
                if not ev & (IN | select.EPOLLHUP | select.EPOLLERR):
                    continue
            try:
                data = c[0].recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""              # reset by the origin
            if data:
                st[c[1]]["unexpected"] += len(data)
                note(c[1], "the origin sent %r" % data[:80])
                continue
            drop(fd)
            st[c[1]]["server_closed"] += 1
            st[c[1]]["lifetimes"].append(now - c[2])
            seq += 1
            heapq.heappush(due, (now, seq, c[1]))      # and back at once
    now = time.monotonic()
    too_long = {"slowloris": [], "idle": []}
    for fd in list(conns):
        c = conns[fd]
        if c[2] is not None and now - c[2] > limit:
            too_long[c[1]].append(now - c[2])
        drop(fd)
    for c in st:   # a summary, not 100,000 floats
        lt = sorted(st[c]["lifetimes"])
        st[c]["lifetimes"] = dict(n=len(lt), min=lt[0] if lt else None, p50=pct(lt, 50), p99=pct(lt, 99),
                                  max=lt[-1] if lt else None, late=sum(1 for x in lt if x > limit))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    emit({"final": st, "too_long": too_long, "cpu": ru.ru_utime + ru.ru_stime})



def setup(env, args):
    """App acme: 1.0.0 at 100%, 1.1.0 (10 MB artifact) at 25%. Returns (big, {feed body: version})."""
    rng = random.Random(args.seed)
    big = rng.randbytes(BIG_SIZE)
    small = env.put_artifact(APP, "1.0.0", "Acme-Setup-1.0.0.exe", rng.randbytes(256 * 1024))
    bigf = env.put_artifact(APP, "1.1.0", BIG_NAME, big)
    env.start_control("--access-log", "", "--log-level", "warn", public_url=env.origin.url)
    key = env.create_key()
    status, body = env.api("POST", "/v1/apps", {"id": APP, "name": "Acme"}, key=key)
    assert status == 201, (status, body)
    status, body = env.register_release(key, APP, "1.0.0", [dict(small, platform="windows", arch="x64")])
    assert status == 201, (status, body)
    status, body = env.register_release(key, APP, "1.1.0", [dict(bigf, platform="windows", arch="x64")], rollout=25)
    assert status == 201, (status, body)
    env.control.stop()
    feeds = {}
    for i in range(200):
        status, _, body = env.http("GET", FEED_PATH, headers={"X-Updraft-Client": "probe-%d" % i})
        assert status == 200, (status, body)
        version = "1.1.0" if b"version: '1.1.0'" in body else "1.0.0" if b"version: '1.0.0'" in body else None
        assert version is not None, body
        feeds[body] = version
        if len(set(feeds.values())) == 2:
            break
    assert sorted(feeds.values()) == ["1.0.0", "1.1.0"], "expected exactly two feed bodies, got %r" % list(feeds)
    return big, feeds


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise SystemExit("soak: RLIMIT_NOFILE hard limit %d < %d needed for --connections; raise it "
                             "(ulimit -Hn) or pass fewer --connections" % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else min(hard, max(need, 65536)), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def evaluate(soak, args):
    """Prints the summary; returns the list of failed checks."""
    S = soak.stats
    failed = []
    lines = []

    def check(ok, what):
        lines.append("  %s  %s" % ("ok  " if ok else "FAIL", what))
        if not ok:
            failed.append(what)

    lat = sorted(S["check"].latencies)
    rlat = sorted(S["range"].latencies)
    samples = soak.samples
    warm_end = (soak.t_ramp_done or 0) + args.warmup
    after = [s for s in samples if s["t"] >= warm_end]
    base = after[0]["rss_kb"] if after else None
    rss_max_after = max(s["rss_kb"] for s in after) if after else None
    rss_limit = base * args.rss_factor + args.rss_extra_mb * 1024 if base else None
    after_ramp = [s for s in samples if (soak.t_ramp_done or 0) + 1 <= s["t"] <= args.seconds - 0.5]
    duration = args.seconds

    print("\n=== soak: %d s, %d connections (%s), idle_timeout_ms %d ===" % (
        args.seconds, args.connections, ", ".join("%s %d" % (c, S[c].workers) for c in CLASSES),
        args.idle_timeout_ms))
    print("%-10s %7s %9s %7s %6s %10s  %s" % ("class", "conns", "connects", "reqs", "errors", "srv-closed", "detail"))
    total_offered = sum(soak.offered.values())
    share = 100.0 * soak.offered.get("1.1.0", 0) / total_offered if total_offered else float("nan")
    detail = {
        "check": "p50 %.1f ms  p99 %.1f ms  max %.1f ms  %.0f req/s  1.1.0 offered to %.1f%%" % (
            pct(lat, 50) * 1e3, pct(lat, 99) * 1e3, (lat[-1] if lat else float("nan")) * 1e3,
            len(lat) / duration, share),
        "range": "p50 %.1f ms  p99 %.1f ms  %.0f MB/s  %.0f MB compared with the file" % (
            pct(rlat, 50) * 1e3, pct(rlat, 99) * 1e3, len(rlat) * RANGE_LEN / 1e6 / duration,
            S["range"].bytes_verified / 1e6),
        "slow": "%d done, %d in progress at the end: min %.2f MB read, min rate %.1f KB/s, max %.1f s since data; "
                "%.0f MB compared" % (
                    S["slow"].requests, len(soak.slow_end),
                    min((x[0] for x in soak.slow_end), default=0) / 1e6,
                    min((x[1] for x in soak.slow_end), default=0) / 1024,
                    max((x[2] for x in soak.slow_end), default=0), S["slow"].bytes_verified / 1e6),
    }
    nan = float("nan")
    for c in ("slowloris", "idle"):
        lt = S[c].lifetimes or {}
        detail[c] = "cut after min %.2f / p50 %.2f / p99 %.2f / max %.2f s (limit %.1f); %d open past the limit at the end" % (
            lt.get("min") or nan, lt.get("p50") or nan, lt.get("p99") or nan, lt.get("max") or nan, soak.limit,
            len(soak.too_long[c]))
    for c in CLASSES:
        st = S[c]
        print("%-10s %7d %9d %7d %6d %10d  %s" % (c, st.workers, st.connects, st.requests, st.errors,
                                                 st.server_closed, detail[c]))
    if samples:
        print("origin: RSS %.1f MB idle, %.1f MB at warm-up end (t=%.0fs), max %.1f MB after (limit %.1f), "
              "min/max over run %.1f/%.1f MB" % (
                  soak.idle_rss / 1024, (base or 0) / 1024, warm_end, (rss_max_after or 0) / 1024,
                  (rss_limit or 0) / 1024, min(s["rss_kb"] for s in samples) / 1024,
                  max(s["rss_kb"] for s in samples) / 1024))
        slope = float("nan")
        if len(after) >= 3:
            mt = sum(s["t"] for s in after) / len(after)
            mr = sum(s["rss_kb"] for s in after) / len(after)
            slope = sum((s["t"] - mt) * (s["rss_kb"] - mr) for s in after) / sum((s["t"] - mt) ** 2 for s in after)
        print("origin: after warm-up RssAnon %.1f-%.1f MB, RssFile %.1f-%.1f MB (LMDB pages); VmRSS trend %+.1f MB/min" % (
            min(s["anon_kb"] for s in after) / 1024 if after else 0, max(s["anon_kb"] for s in after) / 1024 if after else 0,
            min(s["file_kb"] for s in after) / 1024 if after else 0, max(s["file_kb"] for s in after) / 1024 if after else 0,
            slope * 60 / 1024))
        print("origin: fds %d idle, max %d, %d after the clients closed; CPU %.1f s (%.0f%% of a core)" % (
            soak.idle_fds, max(s["fds"] for s in samples), soak.fds_after,
            samples[-1]["cpu"] - samples[0]["cpu"],
            100 * (samples[-1]["cpu"] - samples[0]["cpu"]) / max(1e-9, samples[-1]["t"] - samples[0]["t"])))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print("client: open connections after ramp (t=%.1fs) min %d max %d; CPU %.1f s asyncio (check, range, slow) + "
          "%.1f s epoll child (slowloris, idle); max asyncio loop lag %.0f ms" % (
              soak.t_ramp_done or 0, min((s["open"] for s in after_ramp), default=0),
              max((s["open"] for s in after_ramp), default=0), ru.ru_utime + ru.ru_stime, soak.worker_cpu,
              1e3 * max((s["lag"] for s in samples), default=0)))
    for c in CLASSES:
        for m in S[c].samples:
            print("  %s error: %s" % (c, m))

    print("checks:")
    for c, what in (("check", "update checks"), ("range", "range requests")):
        check(S[c].errors == 0 and S[c].requests > 0, "%s: %d responses, %d errors%s" % (
            what, S[c].requests, S[c].errors, "" if not S[c].keepalive_expired else
            " (%d keep-alive connections expired while this client stalled > idle timeout: not errors)"
            % S[c].keepalive_expired))
    check(bool(lat) and pct(lat, 99) < args.p99_limit,
          "update check p99 %.1f ms < %.0f ms" % (pct(lat, 99) * 1e3, args.p99_limit * 1e3))
    check(total_offered > 0 and abs(share - 25.0) <= 2.0, "1.1.0 offered to %.1f%% of checks (25%% +- 2)" % share)
    if len(after) < 3:
        check(False, "RSS: only %d samples after warm-up ends at t=%.1f s; run longer (--seconds)" % (len(after), warm_end))
    else:
        check(rss_max_after <= rss_limit, "RSS after warm-up max %.1f MB <= %.1f x %.1f MB + %d MB (%d samples)" % (
            rss_max_after / 1024, args.rss_factor, base / 1024, args.rss_extra_mb, len(after)))
    for c in ("slowloris", "idle"):
        late = (S[c].lifetimes or {}).get("late", -1)
        check(S[c].server_closed > 0 and late == 0 and not soak.too_long[c],
              "%s closed by the origin within %.1f s: %d cut, %d late, %d still open past it" % (
                  c, soak.limit, S[c].server_closed, late, len(soak.too_long[c])))
        check(S[c].unexpected_data == 0, "%s: the origin sent nothing before closing (%d bytes)" % (
            c, S[c].unexpected_data))
    rate = args.slow_rate * 1024
    slow_bad = [x for x in soak.slow_end if x[1] < 0.5 * rate or x[2] > 3.0]
    check(S["slow"].errors == 0 and (S["slow"].requests + len(soak.slow_end)) >= S["slow"].workers and not slow_bad,
          "slow readers: %d errors, %d complete + %d progressing (>= %.0f KB/s, data within 3 s), %d stalled" % (
              S["slow"].errors, S["slow"].requests, len(soak.slow_end), 0.5 * args.slow_rate, len(slow_bad)))
    conn_errors = sum(S[c].connect_errors for c in CLASSES)
    check(conn_errors == 0, "connects refused or failed: %d" % conn_errors)
    min_open = min((s["open"] for s in after_ramp), default=0)
    check(min_open >= 0.9 * args.connections, "open connections after ramp never below 90%% of %d (min %d)" % (
        args.connections, min_open))
    check(soak.fds_after <= soak.idle_fds + 2, "origin fds back to idle after the clients closed (%d -> %d)" % (
        soak.idle_fds, soak.fds_after))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), samples=samples, failed=failed,
                           stats={c: dict(workers=S[c].workers, connects=S[c].connects, requests=S[c].requests,
                                          errors=S[c].errors, server_closed=S[c].server_closed,
                                          error_samples=S[c].samples) for c in CLASSES},
                           check_p50=pct(lat, 50), check_p99=pct(lat, 99), range_p99=pct(rlat, 99),
                           offered=soak.offered), f, indent=1)
    return lines, failed


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--watch-worker":
        return watch_worker(json.loads(sys.argv[2]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60, help="length of the load (60)")
    ap.add_argument("--connections", type=int, default=10000, help="concurrent connections (10000)")
    ap.add_argument("--check-conns", type=int, default=400)
    ap.add_argument("--check-pause", type=float, default=0.2, help="s between update checks per connection (0.2)")
    ap.add_argument("--range-conns", type=int, default=32)
    ap.add_argument("--range-pause", type=float, default=0.25, help="s between range requests per connection")
    ap.add_argument("--range-verify-every", type=int, default=1, help="compare every Nth range body with the file")
    ap.add_argument("--slow-conns", type=int, default=200)
    ap.add_argument("--slow-rate", type=float, default=64, help="KB/s per slow reader (64)")
    ap.add_argument("--slowloris-conns", type=int, default=300)
    ap.add_argument("--idle-timeout-ms", type=int, default=3000, help="origin limits.idle_timeout_ms (3000)")
    ap.add_argument("--slack-ms", type=int, default=1500, help="allowed lateness of the origin's close (1500)")
    ap.add_argument("--warmup", type=float, default=None, help="s after ramp before RSS is judged "
                    "(default idle timeout + 2 s: one full cycle of slowloris/idle reconnects)")
    ap.add_argument("--seen-queue", type=int, default=4096,
                    help="origin clients_seen.queue (4096; the default 65536 is a 22 MB ring touched page by page "
                    "as distinct clients arrive, which looks like growth for the first 65,536 of them)")
    ap.add_argument("--rss-factor", type=float, default=1.5)
    ap.add_argument("--rss-extra-mb", type=int, default=50)
    ap.add_argument("--p99-limit", type=float, default=2.0, help="s (2)")
    ap.add_argument("--ramp-rate", type=int, default=5000, help="new connections a second during ramp")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--access-log", action="store_true", help="keep the origin's access log (off: it costs I/O)")
    ap.add_argument("--json", help="write samples and figures to this file")
    args = ap.parse_args()
    if args.warmup is None:
        args.warmup = args.idle_timeout_ms / 1000.0 + 2.0
    def on_term(signo, frame):
        raise KeyboardInterrupt("SIGTERM")   # so that the programs are stopped and the temp dir kept
    signal.signal(signal.SIGTERM, on_term)
    nofile = raise_nofile(args.connections + 512)
    log("RLIMIT_NOFILE %d (the origin inherits it); build %s" % (nofile, harness.BUILD_DIR))

    env = harness.Env("soak")
    failed = []
    try:
        conf = os.path.join(env.dir, "origin.yaml")
        with open(conf, "w") as f:
            f.write("listen:\n  - 127.0.0.1:0\nlog:\n  level: warn\nlimits:\n  idle_timeout_ms: %d\n"
                    "clients_seen:\n  queue: %d\n" % (args.idle_timeout_ms, args.seen_queue))
        extra = [] if args.access_log else ["--access-log", ""]
        origin = env.start_origin("--config", conf, *extra)
        big, feeds = setup(env, args)
        soak = Soak(args, origin.port, big, feeds, origin.popen.pid)
        log("origin pid %d on %s, temp dir %s; %d s of load" % (origin.popen.pid, origin.url, env.dir, args.seconds))
        asyncio.run(asyncio.wait_for(soak.run(), args.seconds + 60))
        lines, failed = evaluate(soak, args)
        try:
            env.stop_all()
            lines.append("  ok    origin exited 0 on SIGTERM")
        except AssertionError as e:
            lines.append("  FAIL  origin did not exit cleanly: %s" % str(e).splitlines()[0])
            failed.append("origin exit")
        print("\n".join(lines))
    except BaseException:
        env.failed = True
        raise
    finally:
        if any(p.alive() for p in env.procs):
            try:
                env.stop_all()
            except AssertionError:
                env.failed = True
    if failed:
        env.failed = True
        print("soak: FAILED (%d): %s" % (len(failed), "; ".join(failed)))
        sys.exit(1)
    print("soak: passed")


if __name__ == "__main__":
    main()
