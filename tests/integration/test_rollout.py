#!/usr/bin/env python3
"""Story: a release is rolled out to a growing share of clients, paused, halted, pinned and
limited to countries, and every origin decides the same for every client.

The decision is XXH3(client id, seed) % 10000 < percent in basis points (ARCHITECTURE.md "The
rollout decision"); it is not reimplemented here: the tests look at what thousands of distinct
client ids are offered. ARCHITECTURE.md "The rollout decision", PROTOCOLS.md "Update feeds".
"""
import http.client
import json
import os
import re
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DE, FR, GB = "198.51.100.7", "203.0.113.9", "81.2.69.5"  # tests/support/make-test-mmdb.pl
VERSION_LINE = re.compile(rb"^version: '?([^'\n]+?)'?$", re.M)


def offered(base_url, path, ids, headers=None, threads=4):
    """Asks `path` once per client id (X-Updraft-Client) over keep-alive connections:
    {client id: version offered} from electron-updater YAML or Squirrel.Mac JSON; 204 → None."""
    host, port = base_url.split("://")[1].rsplit(":", 1)
    results, errors = {}, []

    def work(chunk):
        conn = None
        try:
            for cid in chunk:
                for attempt in (0, 1):
                    if conn is None:
                        conn = http.client.HTTPConnection(host, int(port), timeout=30)
                    try:
                        conn.request("GET", path, headers=dict(headers or {}, **{"X-Updraft-Client": cid}))
                        resp = conn.getresponse()
                        body = resp.read()
                        break
                    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                        conn.close()
                        conn = None
                        if attempt:
                            raise
                if resp.status == 204:
                    results[cid] = None
                elif resp.status != 200:
                    raise AssertionError("GET %s as %s: %d %r" % (path, cid, resp.status, body[:200]))
                elif body.startswith(b"{"):
                    results[cid] = json.loads(body)["name"]
                else:
                    m = VERSION_LINE.search(body)
                    if not m or b"stagingPercentage" in body:
                        raise AssertionError("GET %s as %s: unexpected body %r" % (path, cid, body[:300]))
                    results[cid] = m.group(1).decode()
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
        except Exception as e:  # noqa: BLE001 -- reported in the main thread
            errors.append(e)
        finally:
            if conn is not None:
                conn.close()

    workers = [threading.Thread(target=work, args=(ids[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return results


def with_version(decisions, version):
    return {cid for cid, v in decisions.items() if v == version}


class RolloutTest(harness.StackTest):
    env_name = "test_rollout"

    @classmethod
    def set_up_stack(cls):
        env = cls.env
        cls.mmdb = harness.make_mmdb(os.path.join(env.dir, "geo.mmdb"))
        cls.origin = env.start_origin()
        cls.origin2 = env.start_origin()
        cls.geo_origin = env.start_origin("--geoip", cls.mmdb, "--trusted-proxy", "127.0.0.1/32")
        env.start_control(public_url=cls.origin.url)
        cls.key = env.create_key()

    def setup_app(self, app, percent, pinned=None, countries=None):
        """APP with 1.0.0 fully released and 1.1.0 rolling out to `percent`."""
        status, body = self.env.api("POST", "/v1/apps", {"id": app, "name": app}, key=self.key)
        self.assertEqual(status, 201, body)
        for version, rollout in (("1.0.0", None), ("1.1.0", percent)):
            files = [dict(self.env.put_artifact(app, version, name % version, os.urandom(3000)), platform=p, arch="x64")
                     for name, p in (("App-Setup-%s.exe", "windows"), ("App-%s-mac.zip", "mac"),
                                     ("app-%s-full.nupkg", "windows"))]
            status, body = self.env.register_release(self.key, app, version, files, rollout=rollout)
            self.assertEqual(status, 201, body)
        change = {}
        if pinned is not None:
            change["pinned"] = pinned
        if countries is not None:
            change["countries"] = countries
        if change:
            self.rollout(app, change)

    def rollout(self, app, change, expect=200):
        status, body = self.env.api("PUT", "/v1/apps/%s/channels/latest/rollout" % app, change, key=self.key)
        self.assertEqual(status, expect, (change, body))
        return body

    def channel(self, app):
        status, body = self.env.api("GET", "/v1/apps/%s/channels/latest" % app, key=self.key)
        self.assertEqual(status, 200, body)
        return body

    def assert_share(self, count, total, percent, tolerance=1.5):
        share = 100.0 * count / total
        self.assertLessEqual(abs(share - percent), tolerance,
                             "%d of %d offered (%.2f%%), expected %.2f%% +- %.1f" % (count, total, share, percent, tolerance))

    def assert_clients_offered(self, app, expected):
        got = harness.poll(lambda: {r["version"]: r["clients_offered"] for r in self.channel(app)["releases"]},
                           lambda got: got == expected, 5)
        self.assertEqual(got, expected)

    def feed(self, app):
        return "/update/%s/latest.yml" % app

    # ---------------------------------------------------------------------------------------------

    def test_a_rollout_moved_10_to_50_to_100_percent_with_10k_clients_only_ever_adds_clients(self):
        self.setup_app("roll", 10)
        ids = ["client-%05d" % i for i in range(10000)]
        at10 = offered(self.origin.url, self.feed("roll"), ids)
        self.assertEqual(set(at10.values()), {"1.0.0", "1.1.0"}, "ineligible clients get the stable version")
        in10 = with_version(at10, "1.1.0")
        self.assert_share(len(in10), len(ids), 10)

        self.assertEqual(self.rollout("roll", {"percent": 50})["rollout"]["percent"], 50)
        at50 = offered(self.origin.url, self.feed("roll"), ids)
        in50 = with_version(at50, "1.1.0")
        self.assert_share(len(in50), len(ids), 50)
        self.assertEqual(in10 - in50, set(), "raising the percentage removed clients")

        ch = self.rollout("roll", {"percent": 100})
        self.assertEqual((ch["stable"], ch["rollout"]), ("1.1.0", None))
        at100 = offered(self.origin.url, self.feed("roll"), ids)
        self.assertEqual(set(at100.values()), {"1.1.0"})

    def test_clients_offered_counts_the_distinct_clients_offered_each_version(self):
        self.setup_app("seen", 30)
        ids = ["seen-%04d" % i for i in range(2000)]
        first = offered(self.origin.url, self.feed("seen"), ids)
        offered(self.origin.url, self.feed("seen"), ids[:500])  # asking again counts nobody twice
        old, new = with_version(first, "1.0.0"), with_version(first, "1.1.0")
        self.assert_clients_offered("seen", {"1.0.0": len(old), "1.1.0": len(new)})
        self.rollout("seen", {"percent": 60})
        second = offered(self.origin2.url, self.feed("seen"), ids)  # the other origin records too
        self.assert_clients_offered("seen", {"1.0.0": len(old), "1.1.0": len(new | with_version(second, "1.1.0"))})

    def test_pausing_freezes_the_percentage_and_the_decisions(self):
        self.setup_app("pause", 30)
        ids = ["pause-%04d" % i for i in range(2000)]
        before = offered(self.origin.url, self.feed("pause"), ids)
        self.assertTrue(self.rollout("pause", {"paused": True})["rollout"]["paused"])
        status, body = self.env.api("PUT", "/v1/apps/pause/channels/latest/rollout", {"percent": 60}, key=self.key)
        self.assertEqual(status, 409, body)
        self.assertIn("code", body["error"])
        self.assertEqual(self.channel("pause")["rollout"]["percent"], 30)
        self.assertEqual(offered(self.origin.url, self.feed("pause"), ids), before)
        ch = self.rollout("pause", {"paused": False, "percent": 60})
        self.assertEqual((ch["rollout"]["paused"], ch["rollout"]["percent"]), (False, 60))
        after = offered(self.origin.url, self.feed("pause"), ids)
        self.assertEqual(with_version(before, "1.1.0") - with_version(after, "1.1.0"), set())
        self.assert_share(len(with_version(after, "1.1.0")), len(ids), 60, tolerance=4)

    def test_halting_offers_the_stable_version_to_everyone_but_pinned_clients(self):
        self.setup_app("halt", 50, pinned=["pin-a", "pin-b"])
        ids = ["halt-%04d" % i for i in range(1000)]
        self.assertTrue(with_version(offered(self.origin.url, self.feed("halt"), ids), "1.1.0"))
        ch = self.rollout("halt", {"percent": 0})
        self.assertEqual((ch["stable"], ch["rollout"]["version"], ch["rollout"]["percent"]), ("1.0.0", "1.1.0", 0))
        self.assertIn("1.1.0", [r["version"] for r in ch["releases"]], "halt keeps the release")
        self.assertEqual(set(offered(self.origin.url, self.feed("halt"), ids).values()), {"1.0.0"})
        self.assertEqual(offered(self.origin.url, self.feed("halt"), ["pin-a", "pin-b"]), {"pin-a": "1.1.0", "pin-b": "1.1.0"})

    def test_a_squirrel_mac_client_already_on_the_halted_version_gets_204(self):
        self.setup_app("halt-mac", 99.99)
        ids = ["mac-%03d" % i for i in range(200)]
        on_new = offered(self.origin.url, "/update/halt-mac/darwin/x64/1.0.0", ids)
        self.assertGreater(len(with_version(on_new, "1.1.0")), 190)
        self.rollout("halt-mac", {"percent": 0})
        self.assertEqual(set(offered(self.origin.url, "/update/halt-mac/darwin/x64/1.1.0", ids).values()), {None})
        self.assertEqual(set(offered(self.origin.url, "/update/halt-mac/darwin/x64/1.0.0", ids).values()), {None})
        status, _, body = self.env.http("GET", "/update/halt-mac/darwin/x64/1.1.0")
        self.assertEqual((status, body), (204, b""))

    def test_pinned_clients_always_get_the_rollout_version(self):
        pinned = ["pinned-%02d" % i for i in range(50)]
        self.setup_app("pins", 0.01, pinned=pinned)
        self.assertEqual(self.channel("pins")["rollout"]["pinned"], pinned)
        self.assertEqual(set(offered(self.origin.url, self.feed("pins"), pinned).values()), {"1.1.0"})
        self.assertEqual(set(offered(self.origin.url, "/update/pins/darwin/x64/1.0.0", pinned).values()), {"1.1.0"})
        for cid in pinned[:5]:
            _, _, body = self.env.http("GET", "/update/pins/win32/x64/c/%s/RELEASES" % cid)
            self.assertIn(b"app-1.1.0-full.nupkg", body, cid)
        others = offered(self.origin.url, self.feed("pins"), ["other-%03d" % i for i in range(300)])
        self.assertLessEqual(len(with_version(others, "1.1.0")), 3)

    def test_a_country_limited_rollout_offers_the_release_only_in_those_countries(self):
        self.setup_app("geo", 99.99, countries=["DE"])
        ids = ["geo-%03d" % i for i in range(300)]
        feed = self.feed("geo")

        def via(origin, xff):
            return offered(origin.url, feed, ids, headers={"X-Forwarded-For": xff})

        de = via(self.geo_origin, DE)
        self.assertGreaterEqual(len(with_version(de, "1.1.0")), 295, "DE allowed")
        self.assertEqual(set(via(self.geo_origin, GB).values()), {"1.0.0"}, "GB denied, gets the stable version")
        self.assertEqual(set(via(self.geo_origin, FR).values()), {"1.0.0"}, "FR denied")
        self.assertEqual(via(self.geo_origin, GB + ", " + DE), de, "right-most untrusted hop decides")
        self.assertEqual(set(via(self.geo_origin, DE + ", " + GB).values()), {"1.0.0"})
        self.assertEqual(set(via(self.origin, DE).values()), {"1.0.0"}, "X-Forwarded-For from an untrusted peer is ignored")
        self.rollout("geo", {"countries": ["DE", "GB"]})
        self.assertEqual(via(self.geo_origin, GB), de, "GB allowed once listed")
        self.rollout("geo", {"countries": []})
        self.assertEqual(via(self.geo_origin, FR), de, "no countries: everywhere")

    def test_two_origins_on_the_same_data_dir_answer_identically(self):
        self.setup_app("twin", 40)
        ids = ["twin-%04d" % i for i in range(1000)]
        one, two = offered(self.origin.url, self.feed("twin"), ids), offered(self.origin2.url, self.feed("twin"), ids)
        self.assertEqual(one, two)
        self.assert_share(len(with_version(one, "1.1.0")), len(ids), 40, tolerance=5)
        self.rollout("twin", {"percent": 70})
        one, two = offered(self.origin.url, self.feed("twin"), ids), offered(self.origin2.url, self.feed("twin"), ids)
        self.assertEqual(one, two)
        for cid in ids[:20]:
            a = self.env.http("GET", self.feed("twin"), {"X-Updraft-Client": cid}, base=self.origin)
            b = self.env.http("GET", self.feed("twin"), {"X-Updraft-Client": cid}, base=self.origin2)
            self.assertEqual((a[0], a[2], a[1].get("etag")), (b[0], b[2], b[1].get("etag")), cid)

    def test_a_client_gets_the_same_decision_in_every_id_form_and_feed_format(self):
        self.setup_app("forms", 50)
        ids = ["forms-%03d" % i for i in range(300)]
        by_header = offered(self.origin.url, self.feed("forms"), ids)
        self.assertEqual(len(set(by_header.values())), 2)
        for cid in ids:
            want = by_header[cid]
            _, _, yml = self.env.http("GET", self.feed("forms") + "?client_id=" + cid)
            self.assertEqual(VERSION_LINE.search(yml).group(1).decode(), want, ("client_id", cid))
            _, _, yml = self.env.http("GET", self.feed("forms"), {"x-user-staging-id": cid})
            self.assertEqual(VERSION_LINE.search(yml).group(1).decode(), want, ("x-user-staging-id", cid))
            _, _, mac = self.env.http("GET", "/update/forms/darwin/x64/0.9.0?client_id=" + cid)
            self.assertEqual(json.loads(mac)["name"], want, ("Squirrel.Mac", cid))
            _, _, rel = self.env.http("GET", "/update/forms/win32/x64/c/%s/RELEASES" % cid)
            self.assertIn(("app-%s-full.nupkg" % want).encode(), rel, ("Squirrel.Windows", cid))
            self.assertNotIn(b"#", rel)

    def test_clients_answered_204_are_not_counted_as_offered(self):
        self.setup_app("nocount", 100)
        up_to_date = offered(self.origin.url, "/update/nocount/darwin/x64/1.1.0", ["current-%02d" % i for i in range(40)])
        self.assertEqual(set(up_to_date.values()), {None})
        behind = offered(self.origin.url, "/update/nocount/darwin/x64/1.0.0", ["behind-%02d" % i for i in range(60)])
        self.assertEqual(set(behind.values()), {"1.1.0"})
        self.assert_clients_offered("nocount", {"1.0.0": 0, "1.1.0": 60})

    def test_a_new_release_starts_its_rollout_with_a_new_seed(self):
        self.setup_app("seed", 50)
        first = self.channel("seed")["rollout"]["seed"]
        files = [dict(self.env.put_artifact("seed", "1.2.0", "App-Setup-1.2.0.exe", os.urandom(100)),
                      platform="windows", arch="x64")]
        status, body = self.env.register_release(self.key, "seed", "1.2.0", files, rollout=50)
        self.assertEqual(status, 201, body)
        ch = self.channel("seed")
        self.assertEqual(ch["rollout"]["version"], "1.2.0")
        self.assertNotEqual(ch["rollout"]["seed"], first)


if __name__ == "__main__":
    unittest.main()
