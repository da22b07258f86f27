#!/usr/bin/env python3
"""`updraft login`, `updraft logout` and the credentials file, against a real control plane.

Where the server and the key come from: the options, then the environment, then the credentials file
($XDG_CONFIG_HOME/updraft/credentials, default ~/.config/updraft/credentials); the saved key only goes to
the server it was saved for. A key is never sent over plain http:// to a host that is not loopback unless
--insecure is given: that is refused before any connection is made.

Each test runs the CLI with a HOME and an XDG_CONFIG_HOME of its own, and with UPDRAFT_SERVER,
UPDRAFT_API_KEY and UPDRAFT_TIMEOUT empty unless it sets them. The signing in that succeeds needs
POST /v1/login (tests/integration/test_cli_records.py); here the server refuses the key whatever it
answers with, so these tests hold with and without that route.
"""
import json
import os
import pty
import select
import socket
import subprocess
import tempfile
import time
import unittest

import harness

# TEST-NET-1 (RFC 5737): routed nowhere, so a connection attempt to it hangs until the connect timeout
UNREACHABLE = "http://192.0.2.1:8080"


class CliLoginTest(harness.StackTest):
    env_name = "test_cli_login"
    programs = ("origin", "control")
    keys = (("admin", "admin", "cli-login"),)

    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="home-", dir=self.env.dir)
        self.xdg = os.path.join(self.home, "xdg")
        self.credentials = os.path.join(self.xdg, "updraft", "credentials")

    def cli(self, *args, expect=0, env=None, input=None, timeout=60):
        e = {"HOME": self.home, "XDG_CONFIG_HOME": self.xdg, "UPDRAFT_SERVER": "", "UPDRAFT_API_KEY": "", "UPDRAFT_TIMEOUT": ""}
        e.update(env or {})
        r = self.env.run("updraft", *args, env=e, input=input if input is not None else "", timeout=timeout)
        self.assertEqual(r.returncode, expect, "updraft %s\nstdout: %s\nstderr: %s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def save(self, server, api_key, path=None):
        path = path or self.credentials
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "w") as f:
            json.dump({"server": server, "api_key": api_key}, f)
        os.chmod(path, 0o600)

    def app_exists(self, app):
        status, _ = self.env.api("POST", "/v1/apps", {"id": app, "name": "x"}, key=self.admin)
        return status == 409

    def dead_url(self):
        return "http://127.0.0.1:%d" % harness.free_port()

    # --- a key never crosses the network in clear text ------------------------------------------

    def proxy(self):
        """A listener standing in as the HTTP proxy: libcurl sends every http:// request to $http_proxy, so a
        connection there is the CLI trying to reach the server. Returns (env, connected())."""
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        s.setblocking(False)
        self.addCleanup(s.close)

        def connected():
            r, _, _ = select.select([s], [], [], 0)
            return bool(r)
        return {"http_proxy": "http://127.0.0.1:%d" % s.getsockname()[1], "no_proxy": "", "NO_PROXY": ""}, connected

    def test_a_key_over_plain_http_to_a_remote_host_is_refused_before_connecting(self):
        env, connected = self.proxy()
        start = time.monotonic()
        r = self.cli("--server", UNREACHABLE, "--api-key", self.admin, "members", "list", env=env, expect=2)
        self.assertLess(time.monotonic() - start, 2.0, "it tried to connect (the connect timeout is 10 s)")
        self.assertFalse(connected(), "the CLI opened a connection")
        self.assertIn("refusing to send the API key to %s over plain http://" % UNREACHABLE, r.stderr)
        self.assertIn("the key would cross the network in clear text", r.stderr)
        self.assertIn("--insecure", r.stderr)
        self.assertNotIn(self.admin, r.stderr + r.stdout)

    def test_login_over_plain_http_to_a_remote_host_is_refused_before_reading_the_key(self):
        env, connected = self.proxy()
        start = time.monotonic()
        r = self.cli("login", "--server", UNREACHABLE, input=self.admin + "\n", env=env, expect=2)
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertFalse(connected())
        self.assertIn("would cross the network in clear text", r.stderr)
        self.assertFalse(os.path.exists(self.credentials))

    def test_a_key_from_the_environment_is_refused_too(self):
        r = self.cli("apps", "create", "never-sent", env={"UPDRAFT_SERVER": UNREACHABLE, "UPDRAFT_API_KEY": self.admin}, expect=2)
        self.assertIn("over plain http://", r.stderr)

    def test_insecure_lets_the_request_go(self):
        # with --insecure the CLI does connect (to the stand-in proxy, which never answers: it gives up, exit 3)
        env, connected = self.proxy()
        env["UPDRAFT_TIMEOUT"] = "1"
        r = self.cli("--insecure", "--server", UNREACHABLE, "--api-key", self.admin, "members", "list", env=env, expect=3)
        self.assertIn("cannot reach %s" % UNREACHABLE, r.stderr)
        self.assertTrue(connected(), "with --insecure the request was sent")

    def test_plain_http_to_loopback_is_fine(self):
        url = self.control.url.replace("127.0.0.1", "localhost")
        self.cli("--server", url, "--api-key", self.admin, "apps", "create", "via-localhost")
        self.assertTrue(self.app_exists("via-localhost"))

    # --- login refused ------------------------------------------------------------------------

    def assert_refusal_printed(self, stderr):
        first = stderr.splitlines()[0] if stderr else ""
        self.assertRegex(first, r"^updraft: [a-z_]+: .+ \(HTTP [45]\d\d\)$", stderr)
        self.assertIn("not signed in; nothing was saved", stderr)

    def test_login_with_a_refused_key_prints_why_and_saves_nothing(self):
        r = self.cli("login", "--server", self.control.url, "--api-key", "upd_0000000000000000_" + "A" * 43, expect=1)
        self.assert_refusal_printed(r.stderr)
        self.assertNotIn("A" * 43, r.stderr)
        self.assertFalse(os.path.exists(self.credentials))
        self.assertFalse(os.path.exists(os.path.dirname(self.credentials)), "nothing is created before the key is good")

    def test_login_reads_the_key_from_stdin(self):
        r = self.cli("login", input="upd_0000000000000000_%s\n" % ("B" * 43), env={"UPDRAFT_SERVER": self.control.url}, expect=1)
        self.assert_refusal_printed(r.stderr)
        self.assertNotIn("API key for", r.stderr, "no prompt when stdin is not a terminal")
        self.assertFalse(os.path.exists(self.credentials))

    def test_login_on_a_terminal_prompts_and_does_not_echo_the_key(self):
        key = "upd_0000000000000000_" + "E" * 43
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        e = dict(os.environ, HOME=self.home, XDG_CONFIG_HOME=self.xdg, UPDRAFT_SERVER="", UPDRAFT_API_KEY="")
        p = subprocess.Popen([harness.binary("updraft"), "login", "--server", self.control.url], stdin=slave,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        os.close(slave)
        try:
            # the prompt comes once the echo is off: only then is the key typed
            prompt = b""
            deadline = time.monotonic() + 10
            while b": " not in prompt and time.monotonic() < deadline:
                r, _, _ = select.select([p.stderr], [], [], 0.5)
                if r:
                    prompt += os.read(p.stderr.fileno(), 4096)
            self.assertEqual(prompt.decode(), "API key for %s: " % self.control.url)
            os.write(master, (key + "\n").encode())
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 1, err)
        self.assert_refusal_printed(err.decode())
        echoed = b""
        while select.select([master], [], [], 0)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            echoed += chunk
        self.assertNotIn(b"EEEE", echoed, "the key was echoed")
        self.assertIn(b"\n", echoed, "the Enter is echoed, so the next output starts on a line of its own")

    def test_login_with_nothing_on_stdin_is_a_usage_error(self):
        r = self.cli("login", "--server", self.control.url, input="", expect=2)
        self.assertIn("no API key: pass --api-key, set UPDRAFT_API_KEY or give it on stdin", r.stderr)

    def test_a_refused_login_keeps_the_credentials_saved_before(self):
        self.save(self.control.url, self.admin)
        self.cli("login", "--api-key", "upd_0000000000000000_" + "C" * 43, expect=1)
        with open(self.credentials) as f:
            self.assertEqual(json.load(f), {"server": self.control.url, "api_key": self.admin})

    # --- logout -------------------------------------------------------------------------------

    def test_logout_without_credentials_says_so_and_succeeds(self):
        r = self.cli("logout")
        self.assertEqual(r.stdout, "not signed in: there is no %s\n" % self.credentials)

    def test_logout_removes_the_credentials_file(self):
        self.save(self.control.url, self.admin)
        r = self.cli("logout")
        self.assertIn("signed out: removed %s" % self.credentials, r.stdout)
        self.assertIn("the key itself stays valid until revoked: updraft keys revoke %s" % self.admin[4:20], r.stdout)
        self.assertNotIn(self.admin, r.stdout)
        self.assertFalse(os.path.exists(self.credentials))
        self.cli("logout")  # again: nothing to remove, still fine

    def test_logout_removes_even_a_broken_file(self):
        self.save(self.control.url, self.admin)
        with open(self.credentials, "w") as f:
            f.write("{not json")
        self.cli("logout")
        self.assertFalse(os.path.exists(self.credentials))

    # --- the credentials file in use ------------------------------------------------------------

    def test_saved_credentials_are_used_when_nothing_else_names_them(self):
        self.save(self.control.url, self.admin)
        self.cli("apps", "create", "saved-app")
        self.assertTrue(self.app_exists("saved-app"))

    def test_the_file_is_found_under_home_without_xdg_config_home(self):
        self.save(self.control.url, self.admin, path=os.path.join(self.home, ".config", "updraft", "credentials"))
        self.cli("apps", "create", "home-app", env={"XDG_CONFIG_HOME": ""})
        self.assertTrue(self.app_exists("home-app"))

    def test_options_and_environment_come_before_the_file(self):
        self.save(self.control.url, "upd_0000000000000000_" + "D" * 43)
        self.cli("apps", "create", "file-key-app", expect=1)  # the saved key is wrong
        self.cli("--api-key", self.admin, "apps", "create", "flag-key-app")
        self.cli("apps", "create", "env-key-app", env={"UPDRAFT_API_KEY": self.admin})
        self.save(self.dead_url(), self.admin)
        self.cli("apps", "create", "env-server-app", env={"UPDRAFT_SERVER": self.control.url, "UPDRAFT_API_KEY": self.admin})
        self.cli("--server", self.control.url, "--api-key", self.admin, "apps", "create", "flag-server-app")
        for app in ("flag-key-app", "env-key-app", "env-server-app", "flag-server-app"):
            self.assertTrue(self.app_exists(app), app)
        self.assertFalse(self.app_exists("file-key-app"), "the wrong saved key created nothing")

    def test_the_saved_key_is_not_sent_to_another_server(self):
        other = self.dead_url()
        self.save(other, self.admin)
        r = self.cli("--server", self.control.url, "apps", "create", "withheld-app", expect=1)
        self.assertIn("(HTTP 401)", r.stderr)
        self.assertIn("the saved key was not sent: it was saved for %s, not for %s" % (other, self.control.url), r.stderr)
        status, _ = self.env.api("POST", "/v1/apps", {"id": "withheld-app", "name": "x"}, key=self.admin)
        self.assertEqual(status, 201, "nothing was created with the saved key")

    def test_a_broken_credentials_file_is_named_where_it_is_needed(self):
        os.makedirs(os.path.dirname(self.credentials), mode=0o700)
        with open(self.credentials, "w") as f:
            f.write('{"server": "%s", "api_key": "%s"' % (self.control.url, self.admin))
        r = self.cli("apps", "create", "broken-file-app", expect=2)
        self.assertIn("the credentials file cannot be used: %s is not JSON" % self.credentials, r.stderr)
        self.assertNotIn(self.admin, r.stderr)
        self.cli("--server", self.control.url, "--api-key", self.admin, "apps", "create", "broken-file-app")

    def test_no_server_anywhere_is_a_usage_error_naming_login(self):
        r = self.cli("members", "list", expect=2)
        self.assertIn("no server: pass --server, set UPDRAFT_SERVER or run 'updraft login'", r.stderr)

    def test_help_describes_login_and_the_file(self):
        out = self.cli("login", "--help").stdout
        self.assertIn("Usage: updraft login [--server URL] [--api-key KEY]\n       updraft logout\n", out)
        self.assertIn("without echo on a", out)
        self.assertIn("--insecure", self.cli("--help").stdout)


if __name__ == "__main__":
    unittest.main()
