#!/usr/bin/env python3
"""An operator creates the approval service's release-signing key with `updraft-sts init --data DIR`
and copies the public key it prints into the origins' config; `updraft-sts public-key` prints it
again. The key file is private to its owner, is never replaced, and its bytes are never printed.
"""
import base64
import hashlib
import os
import re
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PUBLIC_LINE = re.compile(r"^ed25519:[A-Za-z0-9+/]{43}=$")
# the DER of an Ed25519 PKCS#8 private key is this prefix and the 32-byte seed (RFC 8410 section 7)
PKCS8_ED25519_PREFIX = bytes.fromhex("302e020100300506032b657004220420")


def public_lines(out):
    return [line for line in out.splitlines() if PUBLIC_LINE.match(line)]


def secrets_of(pem):
    """Every spelling of the private key that could leak: the PEM, its base64 body and the seed in base64 and hex."""
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    assert der.startswith(PKCS8_ED25519_PREFIX) and len(der) == 48, "not an Ed25519 PKCS#8 key"
    seed = der[16:]
    return {"pem": pem.strip(), "base64 body": body, "seed base64": base64.b64encode(seed).decode(),
            "seed base64 (no padding)": base64.b64encode(seed).decode().rstrip("="), "seed hex": seed.hex(),
            "seed HEX": seed.hex().upper()}


def public_of(path):
    """The key file's public key as the origins' config wants it, computed by openssl, not by the program."""
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"], capture_output=True,
                         check=True).stdout
    return "ed25519:" + base64.b64encode(der[-32:]).decode(), hashlib.sha256(der[-32:]).hexdigest()[:16]


class StsInitTest(harness.StackTest):
    env_name = "test_sts_init"

    def setUp(self):
        self.outputs = []  # every stdout and stderr of the program, checked for the key's bytes at the end

    def sts(self, *args):
        r = self.env.run("updraft-sts", *args)
        self.outputs += [r.stdout, r.stderr]
        return r

    def data_dir(self, name):
        return os.path.join(self.env.dir, name)

    def assert_no_secret_printed(self, key_path):
        with open(key_path) as f:
            secrets = secrets_of(f.read())
        for out in self.outputs:
            for what, text in secrets.items():
                self.assertNotIn(text, out, "the private key's %s appears in the program's output" % what)

    def test_init_creates_the_key_prints_its_public_half_and_public_key_prints_it_again(self):
        data = self.data_dir("sts")
        key = os.path.join(data, "release-key.pem")
        r = self.sts("init", "--data", data)
        self.assertEqual(r.returncode, 0, r.stderr)

        self.assertEqual(stat.S_IMODE(os.stat(data).st_mode) & 0o077, 0, "the data directory is private to its owner")
        self.assertEqual(stat.S_IMODE(os.stat(data).st_mode), 0o700 & ~self.umask(), "the data directory is 0700")
        st = os.lstat(key)
        self.assertTrue(stat.S_ISREG(st.st_mode), "the key is a regular file")
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600 & ~self.umask(), "the key file is 0600")
        with open(key) as f:
            pem = f.read()
        self.assertTrue(pem.startswith("-----BEGIN PRIVATE KEY-----\n"), "the key is PKCS#8 PEM")

        expected_line, expected_id = public_of(key)
        lines = public_lines(r.stdout)
        self.assertEqual(lines, [expected_line], "init prints the key file's public key on a line of its own")
        self.assertIn("key id: %s" % expected_id, r.stdout, "init prints the key id")
        self.assertIn('release_keys: ["%s"]' % expected_line, r.stdout, "init says how the origins trust it")
        self.assertIn("trust:", r.stdout)

        again = self.sts("public-key", "--data", data)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.stdout.splitlines()[0], expected_line, "public-key prints the same line first")
        self.assertIn("key id: %s" % expected_id, again.stdout)
        self.assertEqual(again.stderr, "")

        self.assert_no_secret_printed(key)

    def test_a_second_init_refuses_and_leaves_the_key_as_it_was(self):
        data = self.data_dir("sts-twice")
        key = os.path.join(data, "release-key.pem")
        self.assertEqual(self.sts("init", "--data", data).returncode, 0)
        with open(key, "rb") as f:
            before = f.read()
        mtime = os.stat(key).st_mtime_ns

        r = self.sts("init", "--data", data)
        self.assertEqual(r.returncode, 1, "a second init exits 1")
        self.assertIn("already exists", r.stderr, "and says the key exists")
        self.assertIn("public-key", r.stderr, "and how to print its public key")
        self.assertEqual(public_lines(r.stdout), [], "and prints no new key")
        with open(key, "rb") as f:
            self.assertEqual(f.read(), before, "the key file is unchanged")
        self.assertEqual(os.stat(key).st_mtime_ns, mtime)
        self.assert_no_secret_printed(key)

    def test_init_uses_a_directory_the_operator_made(self):
        data = self.data_dir("sts-made")
        os.mkdir(data, 0o700)
        r = self.sts("init", "--data", data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(public_lines(r.stdout)), 1)
        self.assert_no_secret_printed(os.path.join(data, "release-key.pem"))

    def test_a_key_file_others_may_read_is_refused(self):
        data = self.data_dir("sts-open")
        key = os.path.join(data, "release-key.pem")
        self.assertEqual(self.sts("init", "--data", data).returncode, 0)
        os.chmod(key, 0o644)
        r = self.sts("public-key", "--data", data)
        self.assertEqual(r.returncode, 1, "public-key refuses a 0644 key file")
        self.assertIn("mode 0644", r.stderr)
        self.assertIn("group or others", r.stderr, "and says why")
        self.assertIn("chmod 600", r.stderr, "and what to do")
        self.assertEqual(r.stdout, "")
        os.chmod(key, 0o600)
        self.assertEqual(self.sts("public-key", "--data", data).returncode, 0, "and reads it once it is 0600")
        self.assert_no_secret_printed(key)

    def test_public_key_without_a_key_says_to_run_init(self):
        data = self.data_dir("sts-empty")
        os.mkdir(data, 0o700)
        r = self.sts("public-key", "--data", data)
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not exist", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(data, "release-key.pem")), "public-key creates nothing")

    def test_init_creates_the_store_and_prints_a_one_time_link_for_the_first_admin(self):
        data = self.data_dir("sts-link")
        r = self.sts("init", "--data", data, "--public-url", "https://sts.example.test/", "--admin", "ops")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(data, "lmdb", "data.mdb")), "init creates DIR/lmdb")
        m = re.search(r"^Enrol the first admin: https://sts\.example\.test/enrol#([A-Za-z0-9_-]{43}) \(valid 24 h\)$",
                      r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        token = m.group(1)
        with open(os.path.join(data, "lmdb", "data.mdb"), "rb") as f:
            self.assertNotIn(token.encode(), f.read(), "only the token's SHA-256 is stored")
        again = self.sts("enrol-link", "--data", data, "--member", "bob")
        self.assertEqual(again.returncode, 0, again.stderr)
        m2 = re.search(r"^Enrolment link: http://localhost:8090/enrol#([A-Za-z0-9_-]{43}) \(valid 24 h\)$", again.stdout, re.M)
        self.assertIsNotNone(m2, again.stdout)
        self.assertNotEqual(m2.group(1), token, "every link has its own token")
        bad = self.sts("enrol-link", "--data", data, "--member", "Bob")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("member name", bad.stderr)

    def test_enrol_link_without_init_says_to_run_init(self):
        data = self.data_dir("sts-nolink")
        os.mkdir(data, 0o700)
        r = self.sts("enrol-link", "--data", data, "--member", "bob")
        self.assertEqual(r.returncode, 1)
        self.assertIn("updraft-sts init", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(data, "lmdb")), "enrol-link creates no store")

    def test_init_needs_the_parent_of_its_directory(self):
        data = os.path.join(self.data_dir("no-such-parent"), "sts")
        r = self.sts("init", "--data", data)
        self.assertEqual(r.returncode, 1)
        self.assertIn("parent directory must exist", r.stderr)
        self.assertFalse(os.path.exists(data))

    def test_usage_errors_exit_2(self):
        for args in ([], ["init"], ["public-key"], ["rotate", "--data", self.env.dir], ["init", "--data"],
                     ["init", "--data", self.env.dir, "--force"]):
            r = self.sts(*args)
            self.assertEqual(r.returncode, 2, "updraft-sts %s exits 2" % " ".join(args))
            self.assertIn("usage:", r.stderr)
        h = self.sts("--help")
        self.assertEqual(h.returncode, 0)
        self.assertIn("updraft-sts init --data DIR", h.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.env.dir, "release-key.pem")), "no usage error made a key")

    @staticmethod
    def umask():
        old = os.umask(0)
        os.umask(old)
        return old


if __name__ == "__main__":
    unittest.main()
