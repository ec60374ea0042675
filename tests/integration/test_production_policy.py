"""The shipped example policies (policy/examples) enforced by a real
warden-proxy in front of a real PostgreSQL 15: the production guardrails
stop what they promise to stop, through every evasion tried here, while
ordinary work flows; dev runs the same statements."""

import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))
sys.path.insert(0, HERE)

import psycopg2  # noqa: E402

from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy  # noqa: E402
import rawpg  # noqa: E402

PG = None
PROXY = None


def setUpModule():
    global PG, PROXY
    work = tempfile.mkdtemp(prefix="warden-prodpolicy-")
    PG = PostgresServer()
    PG.start()
    setup_sample(PG)
    ports = {"prod": free_port(), "dev": free_port()}
    up = ("{ host: 127.0.0.1, port: %d, database: %%s, user: warden_svc, "
          "password: svc-scram-pw }" % PG.port)
    config = f"""
proxy: {{ workers: 1, log_level: warn }}
policy: {{ paths: [{os.path.join(REPO, 'policy', 'examples')}] }}
listeners:
  - {{ name: prod, port: {ports['prod']}, environment: prod }}
  - {{ name: dev, port: {ports['dev']}, environment: dev }}
environments:
  - {{ name: prod, databases: [{{ name: shop, upstream: {up % 'shop'} }}] }}
  - {{ name: dev, databases: [{{ name: shop, upstream: {up % 'shop_staging'} }}] }}
users:
  - {{ name: alice, password: alice-pw, groups: [engineers] }}
"""
    PROXY = WardenProxy(config, work, ports).start()


def tearDownModule():
    if PROXY:
        PROXY.stop()
    if PG:
        PG.stop()


def run(sql, env="prod"):
    conn = rawpg.RawConn(PROXY.port(env))
    try:
        conn.login("alice", "alice-pw", "shop")
        return conn.simple_query(sql)
    finally:
        conn.close()


def direct(sql, db="shop"):
    with psycopg2.connect(PG.dsn(user="postgres", dbname=db)) as c, c.cursor() as cur:
        cur.execute(sql)
        value = cur.fetchone()[0]
    c.close()
    return value


class ProductionGuardrails(unittest.TestCase):
    def assertRefused(self, sql, rule, code="42501"):
        rows, error = run(sql)
        self.assertIsNotNone(error, "%s was not refused" % sql)
        self.assertEqual(error["C"], code, error)
        self.assertIn('"%s"' % rule, error["M"], error)

    def test_destructive_statements_and_evasions(self):
        cases = [
            ("DROP TABLE orders", "no-drop-data-objects"),
            ("/* cleanup */ dRoP/**/TABLE public.orders", "no-drop-data-objects"),
            ("SELECT 1; DROP SCHEMA public CASCADE", "no-drop-data-objects"),
            ("TRUNCATE orders", "no-truncate"),
            ("DELETE FROM orders", "no-unfiltered-writes"),
            ("DELETE FROM orders WHERE 1 = 1", "no-unfiltered-writes"),
            ("UPDATE customers SET email = NULL WHERE true OR id = 5", "no-unfiltered-writes"),
            ("WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone",
             "no-unfiltered-writes"),
            ("EXPLAIN ANALYZE DELETE FROM orders", "no-unfiltered-writes"),
            ("DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$", "no-drop-data-objects"),
            ("DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'orders'; END $$", "no-unresolved-dynamic-sql"),
            ("SET session_replication_role = replica", "no-session-replication-role"),
            ("SELECT set_config('session_replication_role', 'replica', false)",
             "no-session-replication-role"),
            ("COPY orders TO PROGRAM 'cat > /tmp/x'", "no-copy-program"),
            ("COPY orders FROM '/etc/passwd'", "no-copy-server-file"),
            ("SELECT pg_catalog.pg_read_file('/etc/passwd')", "no-superuser-functions"),
            ("SELECT * FROM orders WHERE id = (SELECT pg_terminate_backend(1))",
             "no-superuser-functions"),
            ("ALTER SYSTEM SET work_mem = '1GB'", "no-alter-system"),
            ("LOAD 'auto_explain'", "no-load"),
        ]
        for sql, rule in cases:
            with self.subTest(sql=sql):
                self.assertRefused(sql, rule)
        self.assertEqual(direct("SELECT count(*) FROM orders"), 20)
        self.assertEqual(direct("SELECT count(*) FROM customers WHERE email IS NULL"), 0)

    def test_changes_need_approval(self):
        for sql, rule in (("CREATE INDEX ON orders (total)", "ddl-needs-approval"),
                          ("ALTER TABLE orders DROP COLUMN total", "ddl-needs-approval"),
                          ("GRANT SELECT ON orders TO PUBLIC", "dcl-needs-approval"),
                          ("DO $$ BEGIN PERFORM 1; END $$", "do-needs-approval")):
            with self.subTest(sql=sql):
                rows, error = run(sql)
                self.assertEqual(error["C"], "42501")
                self.assertIn("approval required", error["M"])
                self.assertIn(rule, error["M"])
                self.assertIn("group:db-owners", error["H"])
        self.assertEqual(direct("SELECT count(*) FROM information_schema.columns "
                                "WHERE table_name = 'orders' AND column_name = 'total'"), 1)

    def test_ordinary_work_flows(self):
        for sql in ("SELECT 'DROP TABLE orders' AS looks_scary",
                    "SELECT $x$ TRUNCATE orders $x$",
                    "SELECT count(*) FROM orders WHERE id > 0",
                    "UPDATE customers SET name = name WHERE id = 1 AND 1 = 1",
                    "SET search_path = public",
                    "SHOW session_replication_role",
                    "BEGIN; SELECT 1; COMMIT"):
            with self.subTest(sql=sql):
                rows, error = run(sql)
                self.assertIsNone(error, error)

    def test_unparseable_is_refused_as_syntax_error(self):
        rows, error = run("SELEC * FROM orders")
        self.assertEqual(error["C"], "42601")
        # Warden's refusal, not PostgreSQL's own syntax error.
        self.assertIn("Warden could not parse", error["M"])

    def test_dev_runs_what_prod_refuses(self):
        rows, error = run("CREATE TABLE scratch (id int); TRUNCATE scratch; DROP TABLE scratch",
                          env="dev")
        self.assertIsNone(error, error)


if __name__ == "__main__":
    unittest.main()
