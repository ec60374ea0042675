"""The over-the-wire attacks on the production guardrails (issue 13), each
run as an attacker would with a real driver against a real proxy and
PostgreSQL 15, checking the data afterwards and not only the error."""

import os
import sys
import unittest

import psycopg
import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack  # noqa: E402


class GuardrailAttacks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-guard-").start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def dsn(self, listener="prod", **extra):
        d = dict(host="127.0.0.1", port=self.stack.ports[listener], user="alice",
                 password="alice-pw", dbname="shop", sslmode="disable")
        d.update(extra)
        return " ".join("%s=%s" % (k, v) for k, v in d.items())

    def snapshot(self):
        """What the attacks aim at, read directly from PostgreSQL."""
        return (self.stack.scalar("SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM customers c"),
                self.stack.scalar("SELECT md5(string_agg(p::text, ',' ORDER BY id)) FROM products p"),
                self.stack.scalar("SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o"))

    def assert_refused(self, error, rule="no-unfiltered-writes"):
        self.assertIsNotNone(error)
        self.assertIn(rule, str(error))

    def test_where_bound_parameter_psycopg3(self):
        """UPDATE ... WHERE $1 with true bound (psycopg 3 binds server-side,
        extended protocol)."""
        before = self.snapshot()
        with psycopg.connect(self.dsn()) as conn:
            with self.assertRaises(psycopg.errors.InsufficientPrivilege) as caught:
                conn.execute("UPDATE customers SET name = 'pwned' WHERE %s", (True,))
            self.assert_refused(caught.exception)
            conn.rollback()
            # The session survives, and a filtered write by parameter runs.
            cur = conn.execute("UPDATE customers SET name = name WHERE id = %s", (1,))
            self.assertEqual(cur.rowcount, 1)
            conn.rollback()
            # Binary parameters and prepared (named) statements alike.
            with self.assertRaises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM orders WHERE %b", (True,), prepare=True)
            conn.rollback()
        self.assertEqual(self.snapshot(), before)

    def test_prepare_execute_where_parameter(self):
        """PREPARE p(bool) AS UPDATE ... WHERE $1; EXECUTE p(true), as one
        simple-protocol message and as two."""
        before = self.snapshot()
        conn = psycopg2.connect(self.dsn())
        try:
            conn.autocommit = True
            cur = conn.cursor()
            with self.assertRaises(psycopg2.errors.InsufficientPrivilege) as caught:
                cur.execute("PREPARE p(bool) AS UPDATE products SET price = 0 WHERE $1; "
                            "EXECUTE p(true)")
            self.assert_refused(caught.exception)
            with self.assertRaises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("PREPARE q(bool) AS UPDATE products SET price = 0 WHERE $1")
            with self.assertRaises(psycopg2.Error):
                cur.execute("EXECUTE q(true)")
            # Other tautologies, through the same driver.
            for sql in ("UPDATE orders SET quantity = 0 WHERE id = id",
                        "UPDATE orders SET quantity = 0 WHERE 1::int = 1",
                        "UPDATE orders SET quantity = 0 WHERE EXISTS (SELECT 1)",
                        "UPDATE orders SET quantity = 0 WHERE id = 1 OR id <> 1",
                        "UPDATE orders SET quantity = 0 FROM customers WHERE customers.id = 1",
                        "WITH d AS (DELETE FROM orders WHERE coalesce(true) RETURNING 1) "
                        "SELECT count(*) FROM d",
                        "INSERT INTO orders SELECT * FROM orders ON CONFLICT (id) "
                        "DO UPDATE SET quantity = 0"):
                with self.subTest(sql=sql):
                    with self.assertRaises(psycopg2.errors.InsufficientPrivilege) as caught:
                        cur.execute(sql)
                    self.assert_refused(caught.exception)
        finally:
            conn.close()
        self.assertEqual(self.snapshot(), before)


if __name__ == "__main__":
    unittest.main()
