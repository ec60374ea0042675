"""The differential oracle (oracle.py) in scripts/test: a short fixed-seed
pass over the corpus, the production policy's tests and generated and
mutated statements, each judged by `wardenctl policy eval` and run on a
real PostgreSQL 15 in a rolled-back transaction; and proof that the oracle
itself catches what it is there to catch. Longer runs on demand:
`python3 tests/security/oracle.py --count 5000 --seed N`."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import psycopg2  # noqa: E402

import oracle  # noqa: E402
from stack import Stack  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "corpus"))
import corpus  # noqa: E402

# Generated statements besides the ~550 seeds; WARDEN_ORACLE_COUNT overrides.
COUNT = int(os.environ.get("WARDEN_ORACLE_COUNT", "250"))
SEED = int(os.environ.get("WARDEN_ORACLE_SEED", "20261206"))
JUDGED = []


def setUpModule():
    JUDGED.extend(oracle.judged(COUNT, SEED))


class DifferentialOracle(unittest.TestCase):
    def test_analysis_reports_what_postgresql_did(self):
        stats, found = oracle.run(COUNT, SEED, verdicts=JUDGED)
        report = "\n".join("%r\n    %s" % (sql, "\n    ".join(p)) for sql, p in found)
        self.assertEqual(found, [], "%d disagreements (seed %d):\n%s" % (len(found), SEED, report))
        # The pass exercised the database: most statements that ran had an
        # effect to compare, and every decision was taken.
        self.assertGreater(stats["ran"], 300, stats)
        self.assertGreater(stats["with_effects"], 200, stats)
        for key in ("denied", "approval", "allowed"):
            self.assertGreater(stats[key], 50, stats)


class ProxyDecidesAsPolicyEval(unittest.TestCase):
    """The same statements through a real proxy's prod listener, one session
    each, in the order generated: many share a shape and differ only in
    constants, so a cached analysis reused where the constants matter (an
    upsert's DO UPDATE ... WHERE 1 = 2, then 1 = 1, was allowed) answers
    differently from `policy eval`, which analyses each from scratch."""

    def test_every_decision_matches(self):
        stack = Stack("warden-sec-oracle-").start()
        wrong = []
        try:
            for sql, verdict in JUDGED:
                if verdict.get("decision") not in ("allow", "deny", "require_approval"):
                    continue
                conn = psycopg2.connect(host="127.0.0.1", port=stack.ports["prod"], user="alice",
                                        password="alice-pw", dbname="shop", sslmode="disable",
                                        connect_timeout=10)
                conn.autocommit = True
                answer = None
                try:
                    cur = conn.cursor()
                    cur.execute("BEGIN")
                    try:
                        cur.execute(sql)
                    except psycopg2.Error as e:
                        answer = e.pgerror or str(e)
                    except Exception as e:  # noqa: BLE001 - psycopg2 refuses COPY results
                        answer = str(e)
                finally:
                    conn.close()
                action, rule = corpus.classify(answer)
                if action != verdict["decision"] or (action != "allow" and rule and rule != verdict["rule"]):
                    wrong.append("%r: policy eval %s %s, the proxy %s %s (%s)"
                                 % (sql[:200], verdict["decision"], verdict["rule"], action, rule,
                                    (answer or "no error").splitlines()[0][:120]))
        finally:
            stack.stop()
        self.assertEqual(wrong, [], "%d of %d differ:\n%s" % (len(wrong), len(JUDGED), "\n".join(wrong)))


class OracleCatchesUnreportedEffects(unittest.TestCase):
    """The oracle must be able to fail: against an analysis that reports
    nothing and allows everything, each effect is a disagreement."""

    @classmethod
    def setUpClass(cls):
        cls.scratch = oracle.Scratch().start()

    @classmethod
    def tearDownClass(cls):
        cls.scratch.stop()

    def disagreements(self, sql):
        error, fx = self.scratch.run(sql)
        self.assertIsNone(error, sql)
        blind = oracle.Analysis({"decision": "allow", "statements": []},
                                self.scratch.user_functions, self.scratch.view_tables)
        return " | ".join(oracle.disagreements(sql, blind, fx))

    def test_each_kind_of_effect(self):
        cases = {
            "DELETE FROM orders WHERE id = 1": "wrote public.orders",
            "UPDATE products SET price = 0": "changed every row of public.products",
            "DELETE FROM v_orders WHERE id = 2": "wrote public.orders",
            "DROP TABLE items": "dropped",
            "CREATE TABLE t_new (a int)": "no DDL was reported",
            "GRANT SELECT ON orders TO PUBLIC": "changed the schema",
            "SET ROLE oracle_other": "changed the current user",
            "SET standard_conforming_strings = off": "set standard_conforming_strings to off",
            "SELECT set_config('search_path', 'sales', false)": "changed setting search_path",
            "SELECT lo_put(4242, 0, 'x')": "wrote a large object",
            "ALTER ROLE oracle_other LOGIN": "changed the schema (roles)",
            "REFRESH MATERIALIZED VIEW daily_totals": "ran REFRESH MATERIALIZED VIEW",
        }
        for sql, expected in cases.items():
            self.assertIn(expected, self.disagreements(sql), sql)

    def test_nothing_for_a_read(self):
        self.assertEqual(self.disagreements("SELECT * FROM orders WHERE id = 1"), "")

    def test_each_statement_starts_clean(self):
        """Rolled back, and what outlives a transaction discarded."""
        before = self.scratch.run("SELECT 1")[1]
        self.scratch.run("PREPARE leftover AS SELECT 1")
        self.scratch.run("DELETE FROM orders")
        error, fx = self.scratch.run("EXECUTE leftover")
        self.assertIn("leftover", error or "")
        self.assertEqual(before, {})
        error, fx = self.scratch.run("SELECT count(*) FROM orders")
        self.assertIsNone(error)
        # A statement that commits is undone by a fresh copy.
        self.scratch.run("COMMIT; DELETE FROM items")
        cur = self.scratch.conn.cursor()
        cur.execute("SELECT count(*) FROM items")
        self.assertEqual(cur.fetchone()[0], 3)


if __name__ == "__main__":
    unittest.main()
