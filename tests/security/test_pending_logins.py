"""Idle sockets from one address must not lock everyone out (red team, issue
14): 10,000 connections that sent nothing filled max_client_connections and
every listener refused new clients. Connections from one address that have
not logged in yet are now bounded (proxy.max_pending_logins_per_address):
past the bound that address gets 53300 at once, other addresses and
logged-in sessions are unaffected, and the slots come back when the idle
sockets go. And what such unauthenticated clients send cannot forge lines
in the proxy's own log. Real warden-proxy, warden-control and PostgreSQL
15."""

import json
import os
import socket
import struct
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack, rawpg, wait_until  # noqa: E402

LIMIT = 20


def conn_from(source, port):
    """A rawpg connection whose source address is `source` (any 127/8
    address is loopback)."""
    c = rawpg.RawConn.__new__(rawpg.RawConn)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                      source_address=(source, 0))
    c.buf, c.pos, c.backend_key, c.params = bytearray(), 0, None, {}
    return c


class PendingLogins(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-pending-",
                          proxy_settings="max_pending_logins_per_address: %d" % LIMIT).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def login_from(self, source):
        c = conn_from(source, self.stack.ports["prod"])
        try:
            c.login("alice", "alice-pw", "shop")
            return c.simple_query("SELECT 1")
        finally:
            c.close()

    def test_idle_sockets_of_one_address_are_bounded(self):
        logged_in = self.stack.raw()  # a session that is already in
        idle = [socket.create_connection(("127.0.0.1", self.stack.ports["prod"]),
                                         timeout=10) for _ in range(LIMIT)]
        try:
            # The next one from the same address: refused at once, saying why.
            c = rawpg.RawConn(self.stack.ports["prod"])
            try:
                replies = c.read_until_eof()
            finally:
                c.close()
            errors = rawpg.errors(replies)
            self.assertEqual([e["C"] for e in errors], ["53300"], replies)
            self.assertIn("have not logged in yet", errors[0]["M"])
            # Another address, and the session already in, are unaffected.
            self.assertEqual(self.login_from("127.0.0.2"), ([["1"]], None))
            self.assertEqual(logged_in.simple_query("SELECT 2"), ([["2"]], None))
        finally:
            for s in idle:
                s.close()
            logged_in.close()
        # The slots come back with the sockets.
        deadline_ok = False
        for _ in range(50):
            try:
                if self.login_from("127.0.0.1") == ([["1"]], None):
                    deadline_ok = True
                    break
            except (RuntimeError, OSError, EOFError):
                pass
            time.sleep(0.1)
        self.assertTrue(deadline_ok, self.stack.proxy.log()[-2000:])
        self.assertIsNone(self.stack.proxy.proc.poll())

    def fail_login_as(self, user):
        """A startup packet claiming `user` (raw bytes), then a SCRAM
        exchange that fails; returns when the proxy has closed."""
        c = rawpg.RawConn(self.stack.ports["prod"])
        try:
            body = struct.pack("!i", 196608) + b"user\0" + user + b"\0database\0shop\0\0"
            c.send(struct.pack("!i", len(body) + 4) + body)
            t, body = c.read_message()
            if t == b"R" and struct.unpack("!i", body[:4])[0] == 10:
                c.send(rawpg.message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", 5) + b"n,,xx"))
            c.read_until_eof()
        finally:
            c.close()

    def test_client_bytes_cannot_forge_log_lines(self):
        """Red team: a startup user name with a newline made a whole line of
        the proxy's log read like a successful login."""
        forged = "2026-12-06T21:59:00.000+00:00 info session 127.0.0.1:40000: root authenticated"
        user = ("x\n" + forged + "\x1b[2J\r").encode()
        self.fail_login_as(user)
        log = self.stack.proxy.log()
        self.assertIn("x\\x0a2026-12-06T21:59:00.000", log)
        self.assertNotIn("\n" + forged, log)
        self.assertNotIn("\x1b", log)

        # Red team pass 4: C1 controls (NEL is a newline to some log
        # pipelines; CSI steers 8-bit terminals) and bytes that are not
        # UTF-8 went through as they were.
        self.fail_login_as(("c1\u0085" + forged + "\u009b2J").encode() + b"raw\xff\x9b")
        self.assertTrue(wait_until(lambda: "c1\\u0085" in self.stack.proxy.log()),
                        self.stack.proxy.log()[-2000:])
        with open(self.stack.proxy.log_path, "rb") as f:
            raw = f.read()
        self.assertIn(b"\\u009b2Jraw\\xff\\x9b", raw)
        for bad in (b"\xc2\x85", b"\xc2\x9b", b"\xff"):
            self.assertNotIn(bad, raw)

    def test_failed_logins_are_found_by_the_name_they_claimed(self):
        """Red team: a password-guessing run against alice was invisible to
        `audit search --user alice` and read `-:` in `audit tail`."""
        c = rawpg.RawConn(self.stack.ports["prod"])
        try:
            with self.assertRaises(RuntimeError):
                c.login("alice", "not-her-password", "shop")
        finally:
            c.close()

        def failed():
            r = self.stack.ctl("audit", "search", "--user", "alice", "--kind",
                               "authentication", "--format", "json")
            self.assertEqual(r.returncode, 0, r.stderr)
            events = [json.loads(line)["leaf"]["event"] for line in r.stdout.splitlines()
                      if line.strip()]
            return [e for e in events if not e["authentication"].get("success")]
        self.assertTrue(wait_until(lambda: failed(), timeout=30))
        self.assertEqual(failed()[0]["authentication"]["claimed_user"], "alice")
        r = self.stack.ctl("audit", "tail", "--limit", "200")
        self.assertIn('(claimed) "alice"', r.stdout)
        # Found under any case of the name, as Warden matches names.
        r = self.stack.ctl("audit", "search", "--user", "ALICE", "--kind", "authentication")
        self.assertIn('(claimed) "alice"', r.stdout)

    def test_a_claimed_name_cannot_read_as_a_successful_login(self):
        # Red team pass 5: "mallory: authentication ok (oidc:corp)" and 200
        # spaces, claimed on a failed login, made its tail line read as a
        # success in a terminal. The claimed name is quoted.
        claim = "mallory: authentication ok (oidc:corp)" + " " * 200
        conn = rawpg.RawConn(self.stack.ports["prod"])
        with self.assertRaises(RuntimeError):
            conn.login(claim, "wrong", "shop")
        conn.close()

        def line():
            r = self.stack.ctl("audit", "tail", "--kind", "authentication", "--limit", "50")
            return [l for l in r.stdout.splitlines() if "mallory" in l]
        self.assertTrue(wait_until(lambda: line(), timeout=30))
        self.assertIn('(claimed) "mallory: authentication ok (oidc:corp)<200 spaces>": '
                      'authentication FAILED', line()[0])
        # A quote inside is doubled, never a backslash the terminal escaping
        # would double into what reads as the closing quote (pass 6).
        conn = rawpg.RawConn(self.stack.ports["prod"])
        with self.assertRaises(RuntimeError):
            conn.login('eve": authentication ok "', "wrong", "shop")
        conn.close()
        self.assertTrue(wait_until(lambda: any('"eve"": authentication ok """: authentication '
                                               'FAILED' in l for l in self.stack.ctl(
                                                   "audit", "tail", "--limit", "50").stdout
                                               .splitlines()), timeout=30))


if __name__ == "__main__":
    unittest.main()
