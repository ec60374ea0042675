"""A client that pipelines executions and never reads the answers (red
team pass 4): one session sent 500,000 Bind/Execute pairs without a Sync,
the proxy relayed them all, recorded two audit events each, and then spent
seconds of its worker on them, stalling every other session of that
worker. Now a session has at most about 10,000 unanswered executions in
flight: past that its client is not read until answers come back. Real
warden-control (audit on), warden-proxy and PostgreSQL; PostgreSQL's own
sequence says how many executions reached it."""

import os
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack, rawpg, wait_until  # noqa: E402

SENT = 25000
# kMaxUnanswered in dataplane/session/session.cc, plus what one 64 KiB read
# of Bind/Execute pairs can add before the bound is checked again.
BOUND = 10000 + 65536 // 24 + 1


def count_to_ready(conn):
    """Reads to ReadyForQuery without keeping the rows: (CommandCompletes,
    error fields of each ErrorResponse)."""
    conn.sock.settimeout(60)
    completes, errors = 0, []
    while True:
        t, body = conn.read_message()
        if t == b"C":
            completes += 1
        elif t == b"E":
            errors.append(rawpg.parse_error(body))
        elif t == b"Z":
            return completes, errors


class PipelineBacklog(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-backlog-").start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def flood_unread(self, message, prefix=b""):
        """Sends `prefix`, then SENT copies of `message` from a thread on a
        new dev session, reads nothing for 4 s; returns (connection, sender
        thread, sequence value before, executions PostgreSQL ran
        meanwhile)."""
        before = self.last_value()
        conn = self.stack.raw("dev")
        conn.sock.settimeout(60)
        if prefix:
            conn.send(prefix)
        # Sent by a thread: the socket may fill once the proxy stops reading.
        sender = threading.Thread(target=lambda: conn.send(message * SENT), daemon=True)
        sender.start()
        # Without the bound every execution reaches PostgreSQL in well under
        # this (the proxy relays until some 10 MB of socket buffers toward
        # PostgreSQL are full); with it, the count stops near the bound.
        time.sleep(4)
        executed = self.last_value() - before
        self.assertGreater(executed, 0)
        return conn, sender, before, executed

    def intents(self, predicate):
        """How many intent events of statements `predicate` accepts."""
        return sum(1 for e in self.stack.events()
                   if predicate(e["event"].get("statement", {}))
                   and e["event"]["statement"].get("phase") != "STATEMENT_PHASE_RESULT")

    def last_value(self):
        return int(self.stack.scalar("SELECT last_value FROM orders_id_seq"))

    def test_unread_pipeline_is_bounded_and_completes_when_read(self):
        conn, sender, before, executed = self.flood_unread(
            rawpg.bind() + rawpg.execute(),
            prefix=rawpg.parse(b"SELECT nextval('orders_id_seq'), repeat('x', 4000)"))
        # PostgreSQL itself stops early (its answers fill the sockets to a
        # client that does not read); what the bound limits is what the
        # proxy relays (and records) beyond that, into the sockets toward
        # PostgreSQL: without it, all of them.
        def relayed():
            return self.intents(lambda st: st.get("protocol") == "extended-execute"
                                and "orders_id_seq" in st.get("text", ""))
        self.assertTrue(wait_until(lambda: relayed() >= executed, timeout=30))
        time.sleep(2)
        self.assertLess(relayed(), executed + BOUND,
                        "executions relayed though the client read no answer")

        # The worker serves another session meanwhile (the stack runs one).
        probe = self.stack.raw("dev")
        try:
            rows, error = probe.simple_query("SELECT 41 + 1")
            self.assertIsNone(error)
            self.assertEqual(rows, [["42"]])
        finally:
            probe.close()

        # Reading the answers lets the rest through; nothing waits forever.
        sender.join(timeout=60)
        self.assertFalse(sender.is_alive())
        conn.send(rawpg.SYNC)
        completes, errors = count_to_ready(conn)
        conn.close()
        self.assertEqual(errors, [])
        self.assertEqual(completes, SENT)
        self.assertEqual(self.last_value() - before, SENT)

    def test_unread_simple_queries_are_bounded_too(self):
        # The same without the extended protocol: pipelined Query messages
        # (each its own batch, answered by its ReadyForQuery) and no answer
        # read.
        one = rawpg.query("SELECT nextval('orders_id_seq'), repeat('x', 4000), 'simple-pipe'")
        conn, sender, before, executed = self.flood_unread(one)

        def relayed():
            return self.intents(lambda st: "'simple-pipe'" in st.get("text", ""))
        self.assertTrue(wait_until(lambda: relayed() >= executed, timeout=30))
        time.sleep(2)
        bound = 10000 + 65536 // len(one) + 1
        self.assertLess(relayed(), executed + bound,
                        "queries relayed though the client read no answer")
        # Reading the answers lets the rest through.
        completes = 0
        for _ in range(SENT):
            c, errors = count_to_ready(conn)
            self.assertEqual(errors, [])
            completes += c
        sender.join(timeout=60)
        self.assertFalse(sender.is_alive())
        conn.close()
        self.assertEqual(completes, SENT)
        self.assertEqual(self.last_value() - before, SENT)
        self.assertTrue(wait_until(lambda: relayed() == SENT, timeout=60))

    def test_an_error_answers_its_whole_batch(self):
        # PostgreSQL skips everything after an error up to the Sync: those
        # executions never get an answer of their own, so they must not
        # hold the bound (a batch far over it completes at its Sync).
        conn = self.stack.raw("dev")
        try:
            batch = (rawpg.parse(b"SELECT 1/0") + (rawpg.bind() + rawpg.execute()) * (3 * 10000)
                     + rawpg.SYNC)
            conn.send(batch)
            completes, errors = count_to_ready(conn)
            self.assertEqual(completes, 0)
            self.assertEqual([e.get("C") for e in errors], ["22012"])
            rows, error = conn.simple_query("SELECT 'still here'")
            self.assertIsNone(error)
            self.assertEqual(rows, [["still here"]])
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
