"""The over-the-wire attacks on the production guardrails (issue 13), each
run as an attacker would with a real driver against a real proxy and
PostgreSQL 15, checking the data afterwards and not only the error."""

import os
import struct
import sys
import unittest

import psycopg
import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack, rawpg, wait_until  # noqa: E402


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
            with self.assertRaises(psycopg.errors.InsufficientPrivilege) as caught:
                conn.execute("DELETE FROM orders WHERE %b", (True,), prepare=True)
            self.assert_refused(caught.exception)
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
            with self.assertRaises(psycopg2.errors.InsufficientPrivilege) as caught:
                cur.execute("PREPARE q(bool) AS UPDATE products SET price = 0 WHERE $1")
            self.assert_refused(caught.exception)
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
                        "DO UPDATE SET quantity = 0",
                        # The red team's finds: casts, whole rows, set-returning
                        # VALUES, SQL run from text.
                        "DELETE FROM orders WHERE id::bool = true",
                        "UPDATE customers c SET email = 'pwned' WHERE c::text LIKE '(%'",
                        "UPDATE products p SET price = 0 WHERE p IS DISTINCT FROM NULL",
                        "DELETE FROM orders WHERE id <> 0",
                        "INSERT INTO products (id) VALUES (unnest(ARRAY(SELECT id FROM "
                        "products))) ON CONFLICT (id) DO UPDATE SET price = 0",
                        "SELECT query_to_xml('DELETE FROM orders RETURNING 1', true, "
                        "false, '')"):
                with self.subTest(sql=sql):
                    with self.assertRaises(psycopg2.errors.InsufficientPrivilege) as caught:
                        cur.execute(sql)
                    self.assert_refused(caught.exception)
        finally:
            conn.close()
        self.assertEqual(self.snapshot(), before)

    PAYLOAD = "SELECT 'x\\'' ; UPDATE orders SET quantity = 0; --'"

    def test_startup_parameters_that_change_lexing_are_refused(self):
        """standard_conforming_strings=off or a client-only encoding, as
        `options`, as a startup parameter, through libpq's PGOPTIONS."""
        before = self.snapshot()
        for extra in ({"options": "'-c standard_conforming_strings=off'"},
                      {"options": "'--standard-conforming-strings=off'"},
                      {"options": "'-c client_encoding=SJIS'"},
                      {"client_encoding": "SJIS"},
                      {"options": "'-c session_replication_role=replica'"}):
            with self.subTest(extra=extra):
                with self.assertRaises(psycopg2.OperationalError) as caught:
                    psycopg2.connect(self.dsn(**extra))
                self.assertIn("Warden", str(caught.exception))
        # The raw startup parameter, as no driver would send it.
        raw = rawpg.RawConn(self.stack.ports["prod"])
        try:
            body = struct.pack("!i", 196608) + (
                b"user\0alice\0database\0shop\0standard_conforming_strings\0off\0\0")
            raw.send(struct.pack("!i", len(body) + 4) + body)
            t, body = raw.read_message()
            self.assertEqual(t, b"E")
            fields = rawpg.parse_error(body)
            self.assertEqual(fields["C"], "08004")
            self.assertIn("standard_conforming_strings", fields["M"])
        finally:
            raw.close()
        self.assertEqual(self.snapshot(), before)

    def test_session_changes_that_change_lexing_are_refused(self):
        before = self.snapshot()
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            for sql in ("SET standard_conforming_strings = off",
                        "SELECT set_config('standard_conforming_strings', 'off', false)",
                        "SET client_encoding = 'SJIS'",
                        "SET NAMES 'BIG5'",
                        "SELECT set_config('client_encoding', 'GBK', true)",
                        "ALTER ROLE warden_svc SET standard_conforming_strings = off"):
                with self.subTest(sql=sql):
                    with self.assertRaises(psycopg.errors.InsufficientPrivilege) as caught:
                        conn.execute(sql)
                    self.assertIn("no-parser-differential", str(caught.exception.diag.message_detail or "")
                                  + str(caught.exception))
            # The payload is one string literal to both readers now.
            row = conn.execute(self.PAYLOAD).fetchone()
            self.assertEqual(row[0], "x\\' ; UPDATE orders SET quantity = 0; --")
            self.assertEqual(conn.execute("SHOW standard_conforming_strings").fetchone()[0], "on")
        self.assertEqual(self.snapshot(), before)

    def test_a_server_that_starts_reading_differently_ends_the_session(self):
        """A function created outside Warden flips the setting; the server
        reports it (ParameterStatus) and Warden closes the session before
        another statement reaches the server."""
        self.stack.pg.psql(
            "CREATE FUNCTION public.flip() RETURNS text LANGUAGE plpgsql AS "
            "$$ BEGIN RETURN set_config('standard_conforming_strings', 'off', false); END $$;"
            "GRANT EXECUTE ON FUNCTION public.flip() TO PUBLIC;", dbname="shop")
        before = self.snapshot()
        try:
            conn = psycopg2.connect(self.dsn())
            conn.autocommit = True
            cur = conn.cursor()
            with self.assertRaises(psycopg2.Error):
                cur.execute("SELECT public.flip()")
                cur.execute(self.PAYLOAD)
            # psycopg2 reports the closed connection; the FATAL message
            # (which psql prints) names why.
            self.assertTrue(conn.closed)
            self.assertTrue(wait_until(
                lambda: "reads statements differently" in self.stack.proxy.log(), timeout=10),
                self.stack.proxy.log()[-2000:])
            conn.close()
            # A role the DBA set to read differently: refused at login.
            self.stack.pg.psql("ALTER ROLE warden_svc SET standard_conforming_strings = off")
            with self.assertRaises(psycopg2.OperationalError) as caught:
                psycopg2.connect(self.dsn())
            self.assertIn("reads statements differently", str(caught.exception))
        finally:
            self.stack.pg.psql("ALTER ROLE warden_svc RESET standard_conforming_strings")
            self.stack.pg.psql("DROP FUNCTION public.flip()", dbname="shop")
        self.assertEqual(self.snapshot(), before)

    # Read with standard_conforming_strings on (Warden's view), a filtered
    # write: WHERE id::text = 'x\' AND id = 1 AND id::text <> '...'. Read
    # with it off, one string swallows the filter: WHERE id::text = '...'
    # OR true.
    SINGLE = (b"UPDATE orders SET quantity = 0 WHERE id::text = 'x\\' "
              b"AND id = 1 AND id::text <> ' OR true --'")

    def test_a_pipelined_statement_cannot_outrun_a_setting_change(self):
        """The setting is flipped by a function (created outside Warden)
        and the payload is pipelined behind it, so it reaches the server
        before the server reports the change (ParameterStatus comes only
        before ReadyForQuery). Each shape: simple queries, one extended
        batch, and a second batch sent before the first one's Sync was
        answered."""
        self.stack.pg.psql(
            "CREATE FUNCTION public.flip2() RETURNS text LANGUAGE plpgsql AS "
            "$$ BEGIN RETURN set_config('standard_conforming_strings', 'off', false); END $$;"
            "GRANT EXECUTE ON FUNCTION public.flip2() TO PUBLIC;", dbname="shop")
        flip = rawpg.query("SELECT public.flip2()")
        P, B, E, S = rawpg.parse, rawpg.bind, rawpg.execute, rawpg.SYNC
        shapes = {
            "simple": flip + rawpg.query(self.PAYLOAD),
            "one extended batch": (P(b"SELECT public.flip2()") + B() + E()
                                   + P(self.SINGLE) + B() + E() + S),
            "second batch before the first's ReadyForQuery": (
                P(b"SELECT public.flip2()") + B() + E() + S + P(self.SINGLE) + B() + E() + S),
            "simple then extended": flip + P(self.SINGLE) + B() + E() + S,
        }
        before = self.snapshot()
        try:
            for name, pipeline in shapes.items():
                with self.subTest(shape=name):
                    refusals = self.stack.proxy.log().count("no-pipelined-lexing")
                    conn = self.stack.raw()
                    try:
                        conn.send(pipeline)
                        errors = []
                        try:
                            while True:
                                t, body = conn.read_message()
                                if t == b"E":
                                    errors.append(rawpg.parse_error(body))
                        except (ConnectionError, OSError, EOFError, struct.error):
                            pass  # Warden closes the session once the change is reported
                    finally:
                        conn.close()
                    # Refused (the client may see the session end first:
                    # the change is reported before the refusal's turn).
                    self.assertTrue(errors, name)
                    self.assertTrue(wait_until(
                        lambda: self.stack.proxy.log().count("no-pipelined-lexing") > refusals,
                        timeout=10), self.stack.proxy.log()[-2000:])
                    self.assertEqual(self.snapshot(), before, name)
            # A non-ASCII name pipelined the same way is refused too (under
            # SJIS its bytes would name another table).
            conn = self.stack.raw()
            try:
                conn.send(rawpg.query("SELECT 1") + rawpg.query("SELECT 'caf\u00e9'"))
                replies = rawpg.read_to_ready(conn) + rawpg.read_to_ready(conn)
                errors = [rawpg.parse_error(b) for t, b in replies if t == b"E"]
                self.assertEqual(len(errors), 1, replies)
                self.assertIn("no-pipelined-lexing", errors[0]["M"])
                # ... alone it runs, and ASCII without a backslash pipelines.
                conn.send(rawpg.query("SELECT 'caf\u00e9'"))
                self.assertFalse([r for r in rawpg.read_to_ready(conn) if r[0] == b"E"])
                conn.send(rawpg.query("SELECT 1") + rawpg.query("SELECT 'plain'"))
                replies = rawpg.read_to_ready(conn) + rawpg.read_to_ready(conn)
                self.assertFalse([r for r in replies if r[0] == b"E"], replies)
            finally:
                conn.close()
        finally:
            self.stack.pg.psql("DROP FUNCTION public.flip2()", dbname="shop")
        self.assertEqual(self.snapshot(), before)


if __name__ == "__main__":
    unittest.main()
