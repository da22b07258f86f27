#!/usr/bin/env python3
"""Story: an attacker invents client ids by the hundred thousand; the origin's store stays its size,
the operator can still halt the rollout, and the channel view still says how many clients were
offered each version, within 2%.

Every personalised update check counts its client as offered a version (README "How it works").
Counting used to keep one LMDB record per (version, client), keyed by an unauthenticated header,
forever: enough invented ids filled the map and then every write failed, halts included. Here
100,000 distinct ids ask over pipelined HTTP/1.1 connections; the LMDB file may grow by at most
1 MiB, a halt commits, and the counts agree with what the origin answered. The 3,000,000-id case
drives the recorder directly (tests/unit/test_seen.c).
"""
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APP = "flood"
IDS = 100000
PIPELINE = 500  # requests sent before their answers are read
VERSION = re.compile(rb"\nversion: '?([0-9.]+)'?\n")
STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def ask_pipelined(port, ids, path):
    """Sends one personalised check per id on one keep-alive connection, PIPELINE at a time:
    {version: how many answers offered it}."""
    offered, statuses = {}, {}
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        for start in range(0, len(ids), PIPELINE):
            chunk = ids[start:start + PIPELINE]
            s.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Updraft-Client: %s\r\n\r\n" % (path, cid)
                               for cid in chunk))
            data, answers = b"", 0
            while answers < len(chunk):
                more = s.recv(1 << 20)
                if not more:
                    raise AssertionError("the origin closed the connection after %d answers" % answers)
                data += more
                # an answer is complete once its body (Content-Length) is there
                while True:
                    head_end = data.find(b"\r\n\r\n")
                    if head_end < 0:
                        break
                    m = re.search(rb"(?i)\r\ncontent-length: (\d+)", data[:head_end])
                    length = int(m.group(1)) if m else 0
                    if len(data) < head_end + 4 + length:
                        break
                    head, body = data[:head_end], data[head_end + 4:head_end + 4 + length]
                    data = data[head_end + 4 + length:]
                    code = STATUS.match(head).group(1).decode()
                    statuses[code] = statuses.get(code, 0) + 1
                    v = VERSION.search(b"\n" + body)
                    if v:
                        offered[v.group(1).decode()] = offered.get(v.group(1).decode(), 0) + 1
                    answers += 1
    return offered, statuses


class ClientsOfferedBounded(harness.StackTest):
    env_name = "test_clients_offered_bounded"
    programs = ("control",)
    control_public_url = "http://cdn.example"
    keys = (("key", "admin", "test"),)
    apps = ((APP, "Flood"),)

    @classmethod
    def set_up_stack(cls):
        for version, rollout in (("1.0.0", None), ("1.1.0", 50)):
            f = cls.env.put_artifact(APP, version, "Flood-Setup-%s.exe" % version, os.urandom(2048))
            status, body = cls.env.register_release(cls.key, APP, version, [dict(f, platform="windows", arch="x64")],
                                                    rollout=rollout)
            assert status == 201, (status, body)
        cls.origin = cls.env.start_origin()

    def data_mdb(self):
        return os.path.getsize(os.path.join(self.env.dir, "data", "lmdb", "data.mdb"))

    def channel(self):
        status, body = self.env.api("GET", "/v1/apps/%s/channels/latest" % APP, key=self.key)
        self.assertEqual(status, 200, body)
        return {r["version"]: r["clients_offered"] for r in body["releases"]}

    def test_a_hundred_thousand_invented_ids_leave_the_store_its_size_and_the_counts_within_two_percent(self):
        before = self.data_mdb()
        ids = [b"invented-%06d-%08x" % (i, (i * 2654435761) & 0xffffffff) for i in range(IDS)]
        results, threads = [None, None], []
        for k in range(2):  # two connections, each half of the ids
            t = threading.Thread(target=lambda k=k: results.__setitem__(k, ask_pipelined(
                self.origin.port, ids[k::2], b"/update/%s/latest.yml" % APP.encode())))
            t.start()
            threads.append(t)
        for t in threads:
            t.join(300)
        offered = {}
        for r in results:
            self.assertIsNotNone(r, "a pipelining client did not finish")
            self.assertEqual(r[1], {"200": IDS // 2}, "every check answered 200")
            for v, n in r[0].items():
                offered[v] = offered.get(v, 0) + n
        self.assertEqual(sum(offered.values()), IDS)
        self.assertTrue(40000 < offered.get("1.1.0", 0) < 60000, offered)

        deadline = time.monotonic() + 15
        while True:  # the origin's writer merges its counts every clients_seen.flush_ms
            got = self.channel()
            close = all(abs(got.get(v, 0) - n) <= 0.02 * n for v, n in offered.items())
            if close or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        print("offered by the origin's answers %r, counted %r" % (offered, got), file=sys.stderr)
        for v, n in offered.items():
            self.assertLessEqual(abs(got[v] - n), 0.02 * n, (v, got[v], n))

        after = self.data_mdb()
        print("data.mdb %d -> %d bytes" % (before, after), file=sys.stderr)
        self.assertLessEqual(after - before, 1 << 20, "the store grew with the ids clients invented")
        status, body = self.env.api("PUT", "/v1/apps/%s/channels/latest/rollout" % APP, {"percent": 0}, key=self.key)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["rollout"]["percent"], 0, body)


if __name__ == "__main__":
    unittest.main()
