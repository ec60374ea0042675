"""The proxy's memory after long sessions (issue 14): a session of 200,000
statements once left 247 MB resident after it closed. Three long sessions
in a row, each 60,000 distinct statements through the production
guardrails with audit on: resident memory after each has closed (and its
events reached warden-control) stays within the proxy's bounded caches,
and does not grow from one session to the next."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack, rawpg  # noqa: E402

STATEMENTS = 60000
CHUNK = 500
# What the proxy keeps whatever the traffic: the analysis cache (10,000
# texts), the decision cache (4,096), the audit sender's buffers.
CACHES_KIB = 96 * 1024
# Between the first and the last session: noise of the allocator, not a
# per-session leak (a leak of even 100 bytes a statement would be 6 MB).
GROWTH_KIB = 16 * 1024


class LongSessions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-long-").start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def settled_rss(self, tag):
        """RSS once everything sent so far is in the audit log and the
        proxy's release tick (every 2 s) has run."""
        marker = "long-%s-%d" % (tag, time.time_ns())
        conn = self.stack.raw()
        try:
            self.assertIsNone(conn.simple_query("SELECT '%s'" % marker)[1])
        finally:
            conn.close()
        self.assertTrue(self.stack.recorded(marker, timeout=120))
        time.sleep(5)
        return self.stack.proxy.rss_kib()

    def long_session(self, offset):
        conn = self.stack.raw()
        try:
            for i in range(0, STATEMENTS, CHUNK):
                conn.send(b"".join(
                    rawpg.query("SELECT %d AS v, 'row %d' AS w" % (offset + j, j))
                    for j in range(i, i + CHUNK)))
                ready = 0
                while ready < CHUNK:
                    t, body = conn.read_message()
                    self.assertNotEqual(t, b"E", rawpg.parse_error(body) if t == b"E" else "")
                    if t == b"Z":
                        ready += 1
        finally:
            conn.close()

    def test_memory_returns_after_long_sessions(self):
        baseline = self.settled_rss("baseline")
        after = []
        for n in range(3):
            self.long_session(n * STATEMENTS)
            after.append(self.settled_rss("after-%d" % n))
        print("proxy RSS KiB: baseline %d, after each of 3 sessions of %d statements: %s"
              % (baseline, STATEMENTS, after))
        self.assertIsNone(self.stack.proxy.proc.poll())
        for rss in after:
            self.assertLess(rss - baseline, CACHES_KIB, (baseline, after))
        self.assertLess(after[2] - after[0], GROWTH_KIB, (baseline, after))


if __name__ == "__main__":
    unittest.main()
