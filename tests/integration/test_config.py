#!/usr/bin/env python3
"""Story: an operator configures the servers and gets precise answers when a setting is wrong.

Every file in conf/ validates with --check; an unknown key or an out-of-range limit stops the
program with FILE:LINE and the key's name; command-line flags beat the file; an unknown flag or an
unreadable GeoIP database stops it with a message naming what was wrong (STYLE.md §7).
"""
import glob
import os
import re
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SOURCE = harness.SOURCE_DIR
ORIGIN = os.path.join(harness.BUILD_DIR, "updraft-origin")
CONTROL = os.path.join(harness.BUILD_DIR, "updraft-control")


class Config(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="updraft-test_config-")

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.tmp])

    def run_prog(self, prog, *args, timeout=30):
        """Runs a program to completion in the temp dir (relative paths such as ./var land there)."""
        return subprocess.run([prog, *args], cwd=self.tmp, capture_output=True, text=True, timeout=timeout)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def line_of(self, path, needle):
        with open(path) as f:
            for i, line in enumerate(f, 1):
                if needle in line:
                    return i
        raise AssertionError("%s not in %s" % (needle, path))

    # --- the shipped files -----------------------------------------------------------------------

    def test_conf_has_a_file_for_each_program(self):
        self.assertTrue(os.path.isfile(os.path.join(SOURCE, "conf", "origin.yaml")))
        self.assertTrue(os.path.isfile(os.path.join(SOURCE, "conf", "control.yaml")))

    def test_every_file_in_conf_passes_check_with_its_program(self):
        files = sorted(glob.glob(os.path.join(SOURCE, "conf", "*.yaml")) + glob.glob(os.path.join(SOURCE, "conf", "*.yml")))
        self.assertTrue(files)
        for path in files:
            name = os.path.basename(path)
            prog = ORIGIN if name.startswith("origin") else CONTROL if name.startswith("control") else None
            self.assertIsNotNone(prog, "%s: name it origin*.yaml or control*.yaml so the test knows its program" % name)
            r = self.run_prog(prog, "--config", path, "--check")
            self.assertEqual(r.returncode, 0, "%s --check: %s" % (name, r.stderr))
            self.assertIn("configuration ok", r.stdout, name)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "var")), "--check creates nothing")

    # --- mistakes in the file --------------------------------------------------------------------

    def test_unknown_key_fails_with_file_line_and_key(self):
        for prog in (ORIGIN, CONTROL):
            path = self.write("unknown.yaml", "listen:\n  - 127.0.0.1:0\nlimits:\n  max_header_bytes: 65536\n"
                                              "  max_headr_bytes: 1024\n")
            r = self.run_prog(prog, "--config", path, "--check")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("%s:5: limits.max_headr_bytes: unknown setting" % path, r.stderr)

    def test_unknown_top_level_key_fails_with_file_line_and_key(self):
        path = self.write("top.yaml", "# a comment\n\ndata_dir: ./var\nstorage: ./s\n")
        r = self.run_prog(ORIGIN, "--config", path, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:4: storage: unknown setting" % path, r.stderr)

    def test_setting_of_the_other_program_is_unknown(self):
        path = self.write("cross.yaml", "public_url: http://127.0.0.1:1\n")
        r = self.run_prog(ORIGIN, "--config", path, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:1: public_url: unknown setting" % path, r.stderr)
        path = self.write("cross2.yaml", "geoip:\n  database: x.mmdb\n")
        r = self.run_prog(CONTROL, "--config", path, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:1: geoip: unknown setting" % path, r.stderr)

    def test_out_of_range_limit_fails_with_file_line_and_key(self):
        cases = [("limits:\n  idle_timeout_ms: 1000\n  max_header_bytes: 100\n", 3, "limits.max_header_bytes"),
                 ("limits:\n  max_header_bytes: 2000000\n", 2, "limits.max_header_bytes"),
                 ("lmdb:\n  map_size_mib: 1\n", 2, "lmdb.map_size_mib"),
                 ("limits:\n  http2_max_streams: 0\n", 2, "limits.http2_max_streams"),
                 ("limits:\n  max_header_bytes: -5\n", 2, "limits.max_header_bytes"),
                 ("limits:\n  max_header_bytes: lots\n", 2, "limits.max_header_bytes")]
        for prog in (ORIGIN, CONTROL):
            for text, line, key in cases:
                path = self.write("range.yaml", text)
                r = self.run_prog(prog, "--config", path, "--check")
                self.assertEqual(r.returncode, 1, text)
                self.assertIn("%s:%d: %s" % (path, line, key), r.stderr, text)

    def test_out_of_range_origin_setting_fails_with_file_line_and_key(self):
        path = self.write("feeds.yaml", "feeds:\n  public_max_age: 86401\n")
        r = self.run_prog(ORIGIN, "--config", path, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:2: feeds.public_max_age" % path, r.stderr)
        self.assertIn("86401", r.stderr)

    def test_yaml_syntax_error_names_file_and_line(self):
        path = self.write("broken.yaml", "listen:\n  - 127.0.0.1:0\nlimits: [unclosed\n")
        r = self.run_prog(ORIGIN, "--config", path, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.escape(path) + r":\d+: ")

    def test_missing_config_file_is_named(self):
        path = os.path.join(self.tmp, "nope.yaml")
        r = self.run_prog(ORIGIN, "--config", path, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn(path, r.stderr)

    def test_empty_config_file_keeps_the_defaults(self):
        path = self.write("empty.yaml", "")
        for prog in (ORIGIN, CONTROL):
            r = self.run_prog(prog, "--config", path, "--check")
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_log_level_is_refused(self):
        path = self.write("lvl.yaml", "log:\n  level: chatty\n")
        r = self.run_prog(ORIGIN, "--config", path, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("log.level", r.stderr)
        self.assertIn("chatty", r.stderr)

    def test_https_listener_without_certificate_is_refused(self):
        r = self.run_prog(ORIGIN, "--listen", "https://127.0.0.1:0", "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("https://127.0.0.1:0", r.stderr)

    # --- flags -----------------------------------------------------------------------------------

    def test_listen_flag_beats_the_file(self):
        # the file names a port that is taken; the flag replaces the file's list, so the server starts
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        try:
            path = self.write("listen.yaml", "listen:\n  - 127.0.0.1:%d\nlog:\n  access: \"\"\n" % port)
            with harness.Env("test_config_listen") as env:
                origin = env.start_origin("--config", path, "--listen", "127.0.0.1:0")
                self.assertNotEqual(origin.port, port)
                status, _, _ = env.http("GET", "/healthz")
                self.assertEqual(status, 200)
                listening = re.findall(r"listening on (\S+)", "\n".join(origin.stdout))
                self.assertEqual(listening, [origin.url], "only the flag's listener, none from the file")
                origin.stop()
            # and without the flag the file's (busy) port is what it tries
            r = self.run_prog(ORIGIN, "--config", path, "--data", os.path.join(self.tmp, "d"), timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn("127.0.0.1:%d" % port, r.stderr)
        finally:
            busy.close()

    def test_flag_value_out_of_range_is_refused(self):
        r = self.run_prog(ORIGIN, "--log-level", "loud", "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn("loud", r.stderr)

    def test_unknown_flag_exits_1_with_a_message(self):
        for prog in (ORIGIN, CONTROL):
            r = self.run_prog(prog, "--frobnicate", "yes", "--check")
            self.assertEqual(r.returncode, 1)
            self.assertIn("unknown flag --frobnicate", r.stderr)

    def test_flag_without_value_exits_1_with_a_message(self):
        r = self.run_prog(ORIGIN, "--check", "--listen")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--listen", r.stderr)

    def test_help_exits_0_and_lists_the_flags(self):
        r = self.run_prog(ORIGIN, "--help")
        self.assertEqual(r.returncode, 0)
        for flag in ("--config", "--listen", "--data", "--storage", "--geoip", "--check"):
            self.assertIn(flag, r.stdout)

    def test_missing_geoip_database_exits_1_naming_it(self):
        path = os.path.join(self.tmp, "no-such-dir", "GeoLite2-Country.mmdb")
        r = self.run_prog(ORIGIN, "--geoip", path, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn(path, r.stderr)

    def test_geoip_file_that_is_not_a_database_exits_1_naming_it(self):
        path = self.write("garbage.mmdb", "this is not a MaxMind database\n" * 100)
        r = self.run_prog(ORIGIN, "--geoip", path, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn(path, r.stderr)

    def test_bad_geoip_database_in_the_file_exits_1_naming_it(self):
        mmdb = os.path.join(self.tmp, "missing.mmdb")
        path = self.write("geo.yaml", "geoip:\n  database: %s\n" % mmdb)
        r = self.run_prog(ORIGIN, "--config", path, "--check")
        self.assertEqual(r.returncode, 1)
        self.assertIn(mmdb, r.stderr)

    def test_valid_geoip_database_passes_check(self):
        path = os.path.join(self.tmp, "test.mmdb")
        harness.make_mmdb(path)
        r = self.run_prog(ORIGIN, "--geoip", path, "--check")
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
