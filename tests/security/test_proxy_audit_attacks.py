"""Attacks on the proxy's audit path by a logged-in user (issue 14): each
must leave the proxy serving, the data unchanged and the audit trail
flowing. Real PostgreSQL 15, warden-control and warden-proxy."""

import base64
import os
import struct
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack, rawpg  # noqa: E402

M = rawpg.message
parse, bind, execute, SYNC = rawpg.parse, rawpg.bind, rawpg.execute, rawpg.SYNC
read_to_ready = rawpg.read_to_ready


class ProxyAuditAttacks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-proxy-").start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def assert_proxy_serves(self):
        self.assertIsNone(self.stack.proxy.proc.poll(), self.stack.proxy.log()[-3000:])
        conn = self.stack.raw()
        try:
            rows, error = conn.simple_query("SELECT 42")
            self.assertIsNone(error)
            self.assertEqual(rows, [["42"]])
        finally:
            conn.close()

    def test_pipeline_allowed_then_refused_unnamed(self):
        """Parse/Bind/Execute of an allowed statement, then of a refused one
        on the same unnamed statement and portal, in one Sync: the proxy
        once died here (recording the refused statement's result)."""
        before = self.stack.scalar("SELECT count(*) FROM orders")
        self.assertNotEqual(before, "0")
        conn = self.stack.raw()
        try:
            conn.send(parse(b"SELECT 1") + bind() + execute() +
                      parse(b"DELETE FROM orders") + bind() + execute() + SYNC)
            replies = read_to_ready(conn)
            types = [t for t, _ in replies]
            # 1, 2, D, C for the SELECT; the refusal; nothing after it but Z.
            self.assertEqual(types[:4], [b"1", b"2", b"D", b"C"], types)
            self.assertEqual(types[4], b"E", types)
            self.assertIn("no-unfiltered-writes", rawpg.parse_error(replies[4][1])["M"])
            self.assertEqual(types[-1], b"Z")
            # The same connection keeps working.
            rows, error = conn.simple_query("SELECT 7")
            self.assertIsNone(error)
            self.assertEqual(rows, [["7"]])
        finally:
            conn.close()
        self.assertEqual(self.stack.scalar("SELECT count(*) FROM orders"), before)
        self.assert_proxy_serves()

    def test_pipeline_variants_never_kill_the_proxy(self):
        """The same shape with named statements and portals, refused first,
        twice refused, and Describe in between."""
        before = self.stack.scalar("SELECT count(*) FROM orders")
        shapes = [
            parse(b"DELETE FROM orders") + bind() + execute() +
            parse(b"SELECT 1") + bind() + execute() + SYNC,
            parse(b"SELECT 1", b"a") + bind(b"p", b"a") + execute(b"p") +
            parse(b"DELETE FROM orders", b"b") + bind(b"q", b"b") + execute(b"q") + SYNC,
            parse(b"SELECT 1") + bind() + execute() +
            parse(b"DELETE FROM orders") + bind() + execute() +
            parse(b"UPDATE orders SET quantity = 0") + bind() + execute() + SYNC,
            parse(b"SELECT 1") + bind() + M(b"D", b"P\0") + execute() +
            parse(b"DELETE FROM orders") + M(b"D", b"S\0") + bind() + execute() + SYNC,
            parse(b"SELECT 1") + bind() + execute() + SYNC +
            bind() + execute() + parse(b"DELETE FROM orders") + bind() + execute() + SYNC,
        ]
        for i, shape in enumerate(shapes):
            with self.subTest(shape=i):
                conn = self.stack.raw()
                try:
                    conn.send(shape)
                    types = [t for t, _ in read_to_ready(conn)]
                    if shape.count(SYNC) == 2:
                        types += [t for t, _ in read_to_ready(conn)]
                    self.assertIn(b"E", types)
                    rows, error = conn.simple_query("SELECT 1")
                    self.assertIsNone(error)
                finally:
                    conn.close()
                self.assert_proxy_serves()
        self.assertEqual(self.stack.scalar("SELECT count(*) FROM orders"), before)

    def test_statements_too_deep_or_costly_for_the_parser(self):
        """A 100,000-term expression crashed the proxy (libpg_query recurses
        without a depth check), and 100,000 nested comments kept a worker
        busy for minutes (its lexer is quadratic in them). Both are refused
        at once with the reason, in both protocols, while another session
        keeps working."""
        other = self.stack.raw()
        try:
            for text in (b"SELECT 1" + b"+1" * 100000,
                         b"/*" * 100000 + b"*/" * 100000 + b"SELECT 1",
                         b"SELECT " + b"(" * 100000 + b"1" + b")" * 100000):
                for simple in (True, False):
                    with self.subTest(text=text[:12], simple=simple):
                        conn = self.stack.raw()
                        try:
                            started = time.monotonic()
                            conn.send(M(b"Q", text + b"\0") if simple else
                                      parse(text) + bind() + execute() + SYNC)
                            replies = read_to_ready(conn)
                            errors = [body for t, body in replies if t == b"E"]
                            self.assertEqual(len(errors), 1, replies)
                            self.assertIn(b"too complex for Warden to judge", errors[0])
                            # Refused, not worked through: well under the
                            # seconds the lexer would have taken.
                            self.assertLess(time.monotonic() - started, 5)
                            rows, error = conn.simple_query("SELECT 2")
                            self.assertIsNone(error)
                        finally:
                            conn.close()
                        rows, error = other.simple_query("SELECT 3")
                        self.assertIsNone(error)
                        self.assertEqual(rows, [["3"]])
        finally:
            other.close()
        self.assert_proxy_serves()

    def test_invalid_utf8_statement_does_not_stop_the_trail(self):
        """A statement PostgreSQL refuses as invalid UTF-8 is recorded (made
        valid, with its bytes kept), and the statements after it reach
        warden-control within seconds."""
        conn = self.stack.raw()
        try:
            conn.send(M(b"Q", b"SELECT 1 /* \xff\xfe */\0"))
            replies = read_to_ready(conn)
            self.assertIn(b"E", [t for t, _ in replies])
            marker = "after-invalid-%d" % time.time_ns()
            rows, error = conn.simple_query("SELECT '%s'" % marker)
            self.assertIsNone(error)
        finally:
            conn.close()
        self.assertTrue(self.stack.recorded(marker), self.stack.proxy.log()[-3000:])
        bad = [e["event"]["statement"] for e in self.stack.events()
               if "SELECT 1 /* " in e["event"].get("statement", {}).get("text", "")
               and e["event"]["statement"].get("phase") == "STATEMENT_PHASE_INTENT"]
        self.assertEqual(len(bad), 1)
        self.assertIn("\ufffd", bad[0]["text"])
        # The exact bytes the client sent are kept.
        self.assertEqual(base64.b64decode(bad[0]["text_bytes"]), b"SELECT 1 /* \xff\xfe */")
        # The text line shows those bytes as \xNN, not as U+FFFD.
        r = self.stack.ctl("audit", "tail", "--kind", "statement", "--limit", "1000")
        self.assertIn("SELECT 1 /* \\xff\\xfe */", r.stdout)
        r = self.stack.verify_log()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("verified", r.stdout)

    def test_invalid_utf8_everywhere_a_client_writes(self):
        """Invalid UTF-8 in a failed login's user name and in a bound
        parameter does not stop the trail either."""
        conn = rawpg.RawConn(self.stack.ports["prod"])
        try:
            body = struct.pack("!i", 196608) + b"user\0mall\xffory\0database\0shop\0\0"
            conn.send(struct.pack("!i", len(body) + 4) + body)
            t, _ = conn.read_message()  # an authentication request or a refusal
            if t == b"R":
                conn.send(M(b"p", b"wrong-password\0"))
                conn.read_until_eof()
        finally:
            conn.close()
        conn = self.stack.raw()
        try:
            conn.send(M(b"P", b"\0SELECT $1::bytea\0" + struct.pack("!h", 0)) +
                      M(b"B", b"\0\0" + struct.pack("!hh", 0, 1) + struct.pack("!i", 2) +
                        b"\xff\xfe" + struct.pack("!h", 0)) + execute() + SYNC)
            read_to_ready(conn)
            marker = "after-param-%d" % time.time_ns()
            rows, error = conn.simple_query("SELECT '%s'" % marker)
            self.assertIsNone(error)
        finally:
            conn.close()
        self.assertTrue(self.stack.recorded(marker), self.stack.proxy.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
