"""Re-judging after a policy change (issue 13 item 13). With a stricter
policy pushed while a session stayed open, three earlier-prepared DELETEs
still ran: a portal bound before the push was executed without being
judged again, and a Close and an SQL DEALLOCATE that PostgreSQL skipped
(an earlier message of the batch had failed) made Warden forget the
statement, so its later use was not judged at all. Now portals are judged
again at Execute, and Warden forgets only what PostgreSQL confirmed. Each
attack checks the rows afterwards. Real warden-control, proxy, PostgreSQL."""

import os
import shutil
import struct
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import EXAMPLES, Stack, rawpg, wait_until  # noqa: E402

P, B, E, S = rawpg.parse, rawpg.bind, rawpg.execute, rawpg.SYNC
M = rawpg.message

NO_ORDER_DELETES = """apiVersion: warden/v1
kind: Policy
metadata:
  name: freeze-orders
spec:
  environments: [prod]
  databases: ["*"]
  defaults:
    action: allow
  rules:
    - name: no-order-deletes
      match:
        commands: [DELETE]
        objects: ["orders"]
      action: deny
      message: orders are frozen
"""


SEAL_ORDERS = """apiVersion: warden/v1
kind: Policy
metadata:
  name: seal-orders
spec:
  environments: [prod]
  databases: ["*"]
  defaults:
    action: allow
  rules:
    - name: orders-sealed
      match:
        objects: ["orders"]
      action: deny
      message: orders are sealed
"""


def bind_int(portal, statement, value):
    """Bind of one text parameter."""
    v = str(value).encode()
    return M(b"B", portal + b"\0" + statement + b"\0" + struct.pack("!hh", 0, 1)
             + struct.pack("!i", len(v)) + v + struct.pack("!h", 0))


def close(kind, name):
    return M(b"C", kind + name + b"\0")


errors_of = rawpg.errors


class Rejudging(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-rejudge-").start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def order_ids(self):
        return set(self.stack.scalar("SELECT string_agg(id::text, ',') FROM orders").split(","))

    def push(self, extra):
        """Pushes the shipped examples plus `extra` ({file: text}) and waits
        until the proxy runs the new revision."""
        folder = os.path.join(self.stack.work, "policies-%d" % time.time_ns())
        shutil.copytree(EXAMPLES, folder)
        for name, text in extra.items():
            with open(os.path.join(folder, name), "w") as f:
                f.write(text)
        # The freeze breaks shipped test cases on purpose.
        r = self.stack.ctl("policy", "push", folder, "-m", "rejudge test", "--skip-tests")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # "revision N (digest ...)" or "unchanged at revision N"
        revision = r.stdout.split("revision ")[1].split()[0]
        self.assertTrue(wait_until(
            lambda: "policy revision %s " % revision in self.stack.proxy.log(), timeout=20),
            self.stack.proxy.log()[-2000:])

    def setUp(self):
        self.push({})  # the shipped policy: filtered deletes are allowed

    def test_a_portal_bound_before_the_push_is_judged_at_execute(self):
        ids = self.order_ids()
        victim = sorted(ids, key=int)[0]
        conn = self.stack.raw()
        try:
            conn.send(rawpg.query("BEGIN"))
            rawpg.read_to_ready(conn)
            conn.send(P(b"DELETE FROM orders WHERE id = $1", b"d1") + bind_int(b"p1", b"d1", victim) + S)
            self.assertEqual(errors_of(rawpg.read_to_ready(conn)), [])
            self.push({"zz-freeze.yaml": NO_ORDER_DELETES})
            conn.send(E(b"p1") + S)
            errors = errors_of(rawpg.read_to_ready(conn))
            self.assertEqual(len(errors), 1, errors)
            self.assertIn("no-order-deletes", errors[0]["M"])
            conn.send(rawpg.query("COMMIT"))
            rawpg.read_to_ready(conn)
        finally:
            conn.close()
        self.assertEqual(self.order_ids(), ids)
        # The refusal is in the audit trail, with the portal's statement.
        self.assertTrue(wait_until(lambda: any(
            e["event"].get("statement", {}).get("rule") == "no-order-deletes"
            and e["event"]["statement"].get("protocol") == "extended-execute"
            for e in self.stack.events()), timeout=20))

    def test_a_close_postgres_skipped_does_not_make_warden_forget(self):
        ids = self.order_ids()
        victim = sorted(ids, key=int)[1]
        conn = self.stack.raw()
        try:
            conn.send(P(b"DELETE FROM orders WHERE id = $1", b"d2") + S)
            self.assertEqual(errors_of(rawpg.read_to_ready(conn)), [])
            # An error first (a Bind of a statement that does not exist):
            # PostgreSQL skips the Close that follows, and keeps d2.
            conn.send(B(b"", b"nonexistent") + close(b"S", b"d2") + S)
            replies = rawpg.read_to_ready(conn)
            self.assertEqual(len(errors_of(replies)), 1)
            self.assertNotIn(b"3", [t for t, _ in replies])  # no CloseComplete
            self.push({"zz-freeze.yaml": NO_ORDER_DELETES})
            conn.send(bind_int(b"", b"d2", victim) + E() + S)
            errors = errors_of(rawpg.read_to_ready(conn))
            self.assertEqual(len(errors), 1, errors)
            self.assertIn("no-order-deletes", errors[0]["M"])
            # A Close PostgreSQL did run is forgotten as before.
            conn.send(close(b"S", b"d2") + S)
            self.assertIn(b"3", [t for t, _ in rawpg.read_to_ready(conn)])
        finally:
            conn.close()
        self.assertEqual(self.order_ids(), ids)

    def test_a_deallocate_postgres_skipped_does_not_make_warden_forget(self):
        ids = self.order_ids()
        victim = sorted(ids, key=int)[2]
        conn = self.stack.raw()
        try:
            _, error = conn.simple_query("PREPARE d3(int) AS DELETE FROM orders WHERE id = $1")
            self.assertIsNone(error)
            # In a failed transaction PostgreSQL ignores the DEALLOCATE.
            conn.send(rawpg.query("BEGIN; SELECT 1/0; DEALLOCATE d3"))
            self.assertEqual(len(errors_of(rawpg.read_to_ready(conn))), 1)
            conn.send(rawpg.query("DEALLOCATE d3"))  # still in the failed transaction
            self.assertEqual(len(errors_of(rawpg.read_to_ready(conn))), 1)
            conn.send(rawpg.query("ROLLBACK"))
            rawpg.read_to_ready(conn)
            self.push({"zz-freeze.yaml": NO_ORDER_DELETES})
            _, error = conn.simple_query("EXECUTE d3(%s)" % victim)
            self.assertIsNotNone(error)
            self.assertIn("no-order-deletes", str(error))
            # The extended-protocol route to the same statement as well.
            conn.send(P(b"EXECUTE d3(%s)" % victim.encode()) + B() + E() + S)
            errors = errors_of(rawpg.read_to_ready(conn))
            self.assertEqual(len(errors), 1, errors)
            self.assertIn("no-order-deletes", errors[0]["M"])
        finally:
            conn.close()
        self.assertEqual(self.order_ids(), ids)

    # Red team pass 11 (F1, F2, F3): cursors, FETCH and long portal names.

    def test_a_cursor_declared_before_the_push_is_judged_at_fetch(self):
        conn = self.stack.raw()
        try:
            _, error = conn.simple_query(
                "DECLARE sealed_c CURSOR WITH HOLD FOR SELECT id FROM orders")
            self.assertIsNone(error)
            self.push({"zz-seal.yaml": SEAL_ORDERS})
            for attempt in (rawpg.query("FETCH ALL FROM sealed_c"),
                            rawpg.query("MOVE FORWARD 1 IN sealed_c"),
                            E(b"sealed_c") + S):  # the protocol route
                conn.send(attempt)
                replies = rawpg.read_to_ready(conn)
                errors = errors_of(replies)
                self.assertEqual(len(errors), 1, replies)
                self.assertIn("orders-sealed", errors[0]["M"])
                self.assertNotIn(b"D", [t for t, _ in replies])  # no row left
        finally:
            conn.close()

    def test_a_portal_bound_before_the_push_is_judged_at_sql_fetch(self):
        ids = self.order_ids()
        victim = sorted(ids, key=int)[3]
        conn = self.stack.raw()
        try:
            conn.send(rawpg.query("BEGIN"))
            rawpg.read_to_ready(conn)
            conn.send(P(b"DELETE FROM orders WHERE id = $1 RETURNING id", b"d4")
                      + bind_int(b"fp4", b"d4", victim) + S)
            self.assertEqual(errors_of(rawpg.read_to_ready(conn)), [])
            self.push({"zz-freeze.yaml": NO_ORDER_DELETES})
            _, error = conn.simple_query("FETCH ALL FROM fp4")
            self.assertIsNotNone(error)
            self.assertIn("no-order-deletes", error["M"])
            conn.send(rawpg.query("ROLLBACK"))
            rawpg.read_to_ready(conn)
        finally:
            conn.close()
        self.assertEqual(self.order_ids(), ids)

    def test_a_longer_name_is_the_same_portal(self):
        # PostgreSQL knows a portal by its first 63 bytes.
        ids = self.order_ids()
        victim = sorted(ids, key=int)[4]
        bound, alias = b"p" * 63 + b"E", b"p" * 63 + b"B"
        conn = self.stack.raw()
        try:
            conn.send(rawpg.query("BEGIN"))
            rawpg.read_to_ready(conn)
            conn.send(P(b"DELETE FROM orders WHERE id = $1", b"d5")
                      + bind_int(bound, b"d5", victim) + S)
            self.assertEqual(errors_of(rawpg.read_to_ready(conn)), [])
            self.push({"zz-freeze.yaml": NO_ORDER_DELETES})
            conn.send(E(alias) + S)
            errors = errors_of(rawpg.read_to_ready(conn))
            self.assertEqual(len(errors), 1, errors)
            self.assertIn("no-order-deletes", errors[0]["M"])
            conn.send(rawpg.query("COMMIT"))
            rawpg.read_to_ready(conn)
        finally:
            conn.close()
        self.assertEqual(self.order_ids(), ids)

    def test_reading_a_cursor_through_the_protocol_is_in_the_trail(self):
        conn = self.stack.raw()
        marker = "cursor_read_%d" % time.time_ns()
        try:
            _, error = conn.simple_query(
                "DECLARE %s CURSOR WITH HOLD FOR SELECT id FROM customers" % marker)
            self.assertIsNone(error)
            conn.send(E(marker.encode()) + S)
            replies = rawpg.read_to_ready(conn)
            self.assertEqual(errors_of(replies), [])
            rows = [t for t, _ in replies].count(b"D")
            self.assertGreater(rows, 0)
        finally:
            conn.close()

        def read_event():
            for e in self.stack.events():
                st = e["event"].get("statement", {})
                if (marker in st.get("text", "")
                        and st.get("protocol") == "extended-execute"
                        and "execution of cursor" in st.get("reason", "")):
                    return e
            return None
        self.assertTrue(wait_until(lambda: read_event() is not None, timeout=20))


if __name__ == "__main__":
    unittest.main()
