"""Policy enforcement in the proxy, end to end: a real PostgreSQL 15 and a
real warden-proxy with a policy, started here on free loopback ports and
stopped by PID. Refusals must reach the client as ErrorResponses (42501 with
the rule), leave the database untouched, and leave the session, its
transaction state and its pipeline exactly as a failed statement would."""

import os
import signal
import struct
import time
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))
sys.path.insert(0, HERE)

import psycopg  # noqa: E402
import psycopg2  # noqa: E402
import psycopg2.errors  # noqa: E402
import psycopg2.extensions  # noqa: E402

from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import PROXY_BIN, WardenProxy  # noqa: E402
import rawpg  # noqa: E402

PG = None
PROXY = None
WORK = None

POLICY = """
apiVersion: warden/v1
kind: Policy
metadata: { name: test-guardrails }
spec:
  environments: [prod]
  rules:
    - name: no-drop-table
      match: { commands: [DROP TABLE] }
      action: deny
      message: Dropping tables is not allowed in prod.
    - name: no-unfiltered-writes
      match: { commands: [DELETE, UPDATE], filter: none }
      action: deny
      message: Add a WHERE clause that filters.
    - name: schema-changes
      match: { commands: [CREATE TABLE, CREATE INDEX] }
      action: require_approval
      message: Schema changes need a reviewer.
      approval: { reviewers: ["group:db-owners"], approvals: 2, expires: 30m }
    - name: no-fast-path
      match: { commands: [FUNCTION CALL] }
      action: deny
      message: Fast-path function calls are not allowed.
    - name: agents-read-only
      match: { classes: [write, ddl, dcl], identity: { kind: agent } }
      action: deny
      message: Agents may only read in prod.
---
apiVersion: warden/v1
kind: Policy
metadata: { name: dev-open }
spec:
  environments: [dev]
  defaults: { action: allow, unparseable: allow }
"""


def config(pg, ports, policy_dir):
    up = "{ host: 127.0.0.1, port: %d, database: %%s, user: warden_svc, password: svc-scram-pw }" % pg.port
    return f"""
proxy: {{ workers: 2, log_level: info }}
policy: {{ paths: [{policy_dir}] }}
listeners:
  - {{ name: prod, port: {ports['prod']}, environment: prod }}
  - {{ name: dev, port: {ports['dev']}, environment: dev }}
  - {{ name: ungoverned, port: {ports['ungoverned']}, environment: sandbox }}
environments:
  - name: prod
    databases: [{{ name: shop, upstream: {up % 'shop'} }}]
  - name: dev
    databases: [{{ name: shop, upstream: {up % 'shop_staging'} }}]
  - name: sandbox
    databases: [{{ name: shop, upstream: {up % 'shop_staging'} }}]
users:
  - {{ name: alice, password: alice-pw, groups: [dba] }}
  - {{ name: robot, password: robot-pw, kind: agent }}
"""


POLICY_FILE = None


def setUpModule():
    global PG, PROXY, WORK, POLICY_FILE
    WORK = tempfile.mkdtemp(prefix="warden-enf-")
    PG = PostgresServer()
    PG.start()
    setup_sample(PG)
    policy_dir = os.path.join(WORK, "policies")
    os.makedirs(policy_dir)
    POLICY_FILE = os.path.join(policy_dir, "test.yaml")
    with open(POLICY_FILE, "w") as f:
        f.write(POLICY)
    ports = {n: free_port() for n in ("prod", "dev", "ungoverned")}
    PROXY = WardenProxy(config(PG, ports, policy_dir), os.path.join(WORK, "proxy"), ports)
    os.makedirs(PROXY.workdir)
    PROXY.start()


def tearDownModule():
    if PROXY:
        PROXY.stop()
    if PG:
        PG.stop()


def dsn(listener="prod", user="alice", password="alice-pw"):
    return ("host=127.0.0.1 port=%d user=%s password=%s dbname=shop sslmode=disable "
            "connect_timeout=10" % (PROXY.port(listener), user, password))


def direct_scalar(sql, db="shop"):
    with psycopg2.connect(PG.dsn(user="postgres", dbname=db)) as c, c.cursor() as cur:
        cur.execute(sql)
        value = cur.fetchone()[0]
    c.close()
    return value


def table_exists(name, db="shop"):
    return direct_scalar("SELECT to_regclass('public.%s') IS NOT NULL" % name, db)


def raw(listener="prod", user="alice", password="alice-pw"):
    conn = rawpg.RawConn(PROXY.port(listener))
    conn.login(user, password, "shop")
    return conn


def parse_msg(sql, name=""):
    return rawpg.message(b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))


def bind_msg(statement="", portal=""):
    return rawpg.message(b"B", portal.encode() + b"\0" + statement.encode() + b"\0"
                         + struct.pack("!hhh", 0, 0, 0))


def execute_msg(portal=""):
    return rawpg.message(b"E", portal.encode() + b"\0" + struct.pack("!i", 0))


def describe_msg(kind, name):
    return rawpg.message(b"D", kind + name.encode() + b"\0")


def close_msg(kind, name):
    return rawpg.message(b"C", kind + name.encode() + b"\0")


SYNC = rawpg.SYNC
read_until_ready = rawpg.read_to_ready


def types(messages):
    return b"".join(t for t, _ in messages).decode()


errors = rawpg.errors


class SimpleProtocol(unittest.TestCase):
    def test_allowed_statements_flow(self):
        with psycopg2.connect(dsn()) as c, c.cursor() as cur:
            cur.execute("SELECT count(*) FROM orders")
            self.assertEqual(cur.fetchone()[0], 20)
            cur.execute("UPDATE customers SET name = name WHERE id = 1")
            self.assertEqual(cur.rowcount, 1)
        c.close()

    def test_drop_table_is_refused_and_never_runs(self):
        c = psycopg2.connect(dsn())
        c.autocommit = True
        cur = c.cursor()
        with self.assertRaises(psycopg2.errors.InsufficientPrivilege) as ctx:
            cur.execute("DROP TABLE orders")
        self.assertIn('rule "no-drop-table"', str(ctx.exception))
        self.assertIn("Dropping tables is not allowed in prod.", str(ctx.exception))
        self.assertEqual(ctx.exception.pgcode, "42501")
        self.assertTrue(table_exists("orders"))
        cur.execute("SELECT 1")  # the session stays usable.
        self.assertEqual(cur.fetchone()[0], 1)
        c.close()

    def test_evasions_through_comments_and_case_are_refused(self):
        c = psycopg2.connect(dsn())
        c.autocommit = True
        for sql in ("/* hi */ DrOp/**/TABLE orders",
                    "drop table if exists public.orders cascade",
                    "SELECT 1; DROP TABLE orders"):
            with self.subTest(sql=sql):
                with self.assertRaises(psycopg2.errors.InsufficientPrivilege) as ctx:
                    c.cursor().execute(sql)
                # Warden's refusal, not PostgreSQL's own 42501 ("must be
                # owner of table orders": the service role owns nothing).
                self.assertIn('rule "no-drop-table"', str(ctx.exception))
        self.assertTrue(table_exists("orders"))
        c.close()

    def test_denied_message_runs_none_of_its_statements(self):
        before = direct_scalar("SELECT count(*) FROM items")
        conn = raw()
        msgs = (conn.send(rawpg.query("INSERT INTO items (id) VALUES (424242); "
                                      "DELETE FROM items")), read_until_ready(conn))[1]
        self.assertEqual(types(msgs), "EZ")
        self.assertEqual(errors(msgs)[0]["C"], "42501")
        self.assertIn("no-unfiltered-writes", errors(msgs)[0]["M"])
        self.assertEqual(msgs[-1][1], b"I")
        self.assertEqual(direct_scalar("SELECT count(*) FROM items"), before)
        conn.close()

    def test_refusal_inside_a_transaction_fails_it_like_postgres(self):
        c = psycopg2.connect(dsn())
        cur = c.cursor()
        cur.execute("UPDATE customers SET name = 'changed-in-tx' WHERE id = 2")
        with self.assertRaises(psycopg2.errors.InsufficientPrivilege) as ctx:
            cur.execute("DELETE FROM orders WHERE 1 = 1")
        self.assertIn("no-unfiltered-writes", str(ctx.exception))
        # PostgreSQL itself now holds the transaction as failed: COMMIT rolls back.
        self.assertEqual(c.get_transaction_status(),
                         psycopg2.extensions.TRANSACTION_STATUS_INERROR)
        with self.assertRaises(psycopg2.errors.InFailedSqlTransaction):
            cur.execute("SELECT 1")
        c.rollback()
        cur.execute("SELECT name FROM customers WHERE id = 2")
        self.assertEqual(cur.fetchone()[0], "Bob Brown")
        c.close()

    def test_require_approval_refuses_with_reviewers(self):
        conn = raw()
        conn.send(rawpg.query("CREATE TABLE needs_review (id int)"))
        err = errors(read_until_ready(conn))[0]
        self.assertEqual(err["C"], "42501")
        self.assertIn("approval required", err["M"])
        self.assertIn("schema-changes", err["M"])
        self.assertIn("group:db-owners", err["H"])
        self.assertIn("2 approvals", err["H"])
        self.assertFalse(table_exists("needs_review"))
        conn.close()

    def test_unparseable_sql_is_refused_with_syntax_error(self):
        conn = raw()
        conn.send(rawpg.query("SELEC 1"))
        msgs = read_until_ready(conn)
        err = errors(msgs)[0]
        self.assertEqual(err["C"], "42601")
        self.assertIn("Warden could not parse", err["M"])
        self.assertIn("SELEC", err["M"])
        self.assertEqual(err["P"], "1")  # psql draws its caret from this.
        rows, error = conn.simple_query("SELECT 7")
        self.assertIsNone(error)
        self.assertEqual(rows, [["7"]])
        conn.close()

    def test_real_errors_pass_through_untouched(self):
        # Text that looks like a poison name is just an unknown column.
        conn = raw()
        rows, error = conn.simple_query("SELECT warden_refusal_0000000000000000_1")
        self.assertEqual(error["C"], "42703")
        rows, error = conn.simple_query("SELECT 1/0")
        self.assertEqual(error["C"], "22012")
        conn.close()

    def test_agent_identity_is_read_only(self):
        c = psycopg2.connect(dsn(user="robot", password="robot-pw"))
        c.autocommit = True
        cur = c.cursor()
        cur.execute("SELECT count(*) FROM customers")
        self.assertEqual(cur.fetchone()[0], 10)
        with self.assertRaises(psycopg2.errors.InsufficientPrivilege) as ctx:
            cur.execute("UPDATE customers SET name = name WHERE id = 1")
        self.assertIn("agents-read-only", str(ctx.exception))
        c.close()

    def test_sql_prepare_of_a_denied_statement_is_refused(self):
        conn = raw()
        conn.send(rawpg.query("PREPARE wipe AS DELETE FROM orders"))
        err = errors(read_until_ready(conn))[0]
        self.assertEqual(err["C"], "42501")
        self.assertIn("no-unfiltered-writes", err["M"])
        # EXECUTE (also under EXPLAIN ANALYZE) gets the same refusal, not
        # PostgreSQL's "does not exist".
        for sql in ("EXECUTE wipe", "EXPLAIN ANALYZE EXECUTE wipe"):
            conn.send(rawpg.query(sql))
            err = errors(read_until_ready(conn))[0]
            self.assertEqual(err["C"], "42501", sql)
            self.assertIn("no-unfiltered-writes", err["M"], sql)
        # SQL and protocol prepared statements share one namespace.
        conn.send(bind_msg("wipe") + execute_msg() + SYNC)
        self.assertIn("no-unfiltered-writes", errors(read_until_ready(conn))[0]["M"])
        # DEALLOCATE frees the name: PostgreSQL speaks for itself again,
        # and an allowed PREPARE under that name runs.
        rows, error = conn.simple_query("DEALLOCATE ALL")
        self.assertIsNone(error)
        rows, error = conn.simple_query("EXECUTE wipe")
        self.assertEqual(error["C"], "26000")
        rows, error = conn.simple_query("PREPARE wipe AS SELECT count(*) FROM orders")
        self.assertIsNone(error)
        rows, error = conn.simple_query("EXECUTE wipe")
        self.assertEqual(rows, [["20"]])
        self.assertEqual(direct_scalar("SELECT count(*) FROM orders"), 20)
        conn.close()

    def test_protocol_statement_refused_at_parse_is_refused_in_sql_execute(self):
        conn = raw()
        conn.send(parse_msg("DELETE FROM orders", "bulk") + SYNC)
        err = errors(read_until_ready(conn))[0]
        self.assertEqual(err["C"], "42501")
        self.assertIn("no-unfiltered-writes", err["M"])
        rows, error = conn.simple_query("EXECUTE bulk")
        self.assertEqual(error["C"], "42501")
        self.assertIn("no-unfiltered-writes", error["M"])
        conn.close()

    def test_fast_path_function_call_is_judged(self):
        conn = raw()
        # FunctionCall of pg_backend_pid() (OID 2026), no arguments.
        conn.send(rawpg.message(b"F", struct.pack("!Ihhh", 2026, 0, 0, 0)))
        msgs = read_until_ready(conn)
        self.assertEqual(types(msgs), "EZ")
        self.assertIn("no-fast-path", errors(msgs)[0]["M"])
        conn.close()


class ExtendedProtocol(unittest.TestCase):
    def test_pipeline_refusal_aborts_to_sync_then_continues(self):
        conn = raw()
        conn.send(parse_msg("SELECT 1") + bind_msg() + execute_msg()
                  + parse_msg("DROP TABLE orders") + bind_msg() + execute_msg() + SYNC
                  + parse_msg("SELECT 2") + bind_msg() + execute_msg() + SYNC)
        first = read_until_ready(conn)
        self.assertEqual(types(first), "12DCEZ")
        self.assertEqual(errors(first)[0]["C"], "42501")
        self.assertIn("no-drop-table", errors(first)[0]["M"])
        second = read_until_ready(conn)
        self.assertEqual(types(second), "12DCZ")
        self.assertEqual(second[2][1][-1:], b"2")
        self.assertTrue(table_exists("orders"))
        conn.close()

    def test_named_statement_keeps_its_refusal(self):
        conn = raw()
        conn.send(parse_msg("TRUNCATE orders; DELETE FROM orders", "wipe") + SYNC)
        err = errors(read_until_ready(conn))[0]
        self.assertEqual(err["C"], "42501")
        self.assertIn('rule "', err["M"])
        conn.send(bind_msg("wipe", "p1") + execute_msg("p1") + SYNC)
        msgs = read_until_ready(conn)
        self.assertEqual(types(msgs), "EZ")
        self.assertEqual(errors(msgs)[0]["C"], "42501")
        self.assertIn("no-unfiltered-writes", errors(msgs)[0]["M"])
        conn.send(describe_msg(b"S", "wipe") + SYNC)
        err = errors(read_until_ready(conn))[0]
        self.assertEqual(err["C"], "42501")
        self.assertIn('rule "', err["M"])
        # Closed, the name is free again and PostgreSQL speaks for itself.
        conn.send(close_msg(b"S", "wipe") + SYNC)
        self.assertEqual(types(read_until_ready(conn)), "3Z")
        conn.send(bind_msg("wipe") + SYNC)
        self.assertEqual(errors(read_until_ready(conn))[0]["C"], "26000")
        # Re-prepared with an allowed statement, it runs.
        conn.send(parse_msg("SELECT count(*) FROM orders", "wipe") + bind_msg("wipe")
                  + execute_msg() + SYNC)
        msgs = read_until_ready(conn)
        self.assertEqual(types(msgs), "12DCZ")
        self.assertEqual(direct_scalar("SELECT count(*) FROM orders"), 20)
        conn.close()

    def test_earlier_error_in_batch_wins_and_state_stays_consistent(self):
        conn = raw()
        conn.send(parse_msg("SELECT 1/0") + bind_msg() + execute_msg()
                  + parse_msg("DROP TABLE orders") + SYNC)
        msgs = read_until_ready(conn)
        self.assertEqual([e["C"] for e in errors(msgs)], ["22012"])
        # The skipped refusal must not hijack a later, real error.
        conn.send(rawpg.query("SELECT nope_column FROM orders"))
        self.assertEqual(errors(read_until_ready(conn))[0]["C"], "42703")
        conn.close()

    def test_psycopg3_prepared_and_pipelined(self):
        with psycopg.connect(dsn(), autocommit=True) as c:
            with self.assertRaises(psycopg.errors.InsufficientPrivilege) as ctx:
                c.execute("DELETE FROM orders", prepare=True)
            self.assertIn("no-unfiltered-writes", str(ctx.exception))
            self.assertEqual(c.execute("SELECT count(*) FROM orders WHERE id > %s", (0,),
                                       prepare=True).fetchone()[0], 20)
            with self.assertRaises(psycopg.errors.InsufficientPrivilege) as ctx:
                with c.pipeline():
                    c.execute("SELECT 1")
                    c.execute("UPDATE orders SET total = 0")
            self.assertIn("no-unfiltered-writes", str(ctx.exception))
            self.assertEqual(c.execute("SELECT 5").fetchone()[0], 5)
        self.assertEqual(direct_scalar("SELECT count(*) FROM orders WHERE total = 0"), 0)


class Environments(unittest.TestCase):
    def test_dev_allows_what_prod_refuses(self):
        with psycopg2.connect(dsn("dev")) as c, c.cursor() as cur:
            cur.execute("CREATE TABLE dev_scratch (id int)")
            cur.execute("DROP TABLE dev_scratch")
        c.close()
        self.assertFalse(table_exists("dev_scratch", db="shop_staging"))

    def test_environment_without_policy_fails_closed(self):
        conn = raw("ungoverned")
        rows, error = conn.simple_query("SELECT 1")
        self.assertEqual(error["C"], "42501")
        self.assertIn("no policy applies to environment sandbox", error["M"])
        conn.close()


class Reload(unittest.TestCase):
    def reload(self, text):
        """Writes the policy file, sends SIGHUP, waits for the log to say so."""
        before = PROXY.log()
        with open(POLICY_FILE, "w") as f:
            f.write(text)
        PROXY.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            new = PROXY.log()[len(before):]
            if "in force" in new or "reload refused" in new:
                return new
            time.sleep(0.05)
        self.fail("no reload in the proxy log")

    def tearDown(self):
        self.reload(POLICY)

    def test_sighup_swaps_the_policy_for_new_statements(self):
        conn = raw()  # a session open across the reload keeps working.
        rows, error = conn.simple_query("SELECT count(*) FROM orders")
        self.assertIsNone(error)
        out = self.reload(POLICY.replace("commands: [CREATE TABLE, CREATE INDEX]",
                                         "commands: [CREATE TABLE, CREATE INDEX, SELECT]"))
        self.assertIn("in force", out)
        rows, error = conn.simple_query("SELECT count(*) FROM orders")
        self.assertEqual(error["C"], "42501")
        self.assertIn("schema-changes", error["M"])
        conn.close()

    def test_statements_prepared_before_a_tightening_are_judged_again(self):
        conn = raw()
        conn.send(parse_msg("SELECT count(*) FROM orders", "q") + SYNC)
        self.assertEqual(types(read_until_ready(conn)), "1Z")
        rows, error = conn.simple_query("PREPARE sq AS SELECT count(*) FROM customers")
        self.assertIsNone(error)
        conn.send(bind_msg("q") + execute_msg() + SYNC)
        self.assertEqual(types(read_until_ready(conn)), "2DCZ")
        self.reload(POLICY.replace("commands: [CREATE TABLE, CREATE INDEX]",
                                   "commands: [CREATE TABLE, CREATE INDEX, SELECT]"))
        # Same connection, statements prepared under the old policy.
        conn.send(bind_msg("q") + execute_msg() + SYNC)
        msgs = read_until_ready(conn)
        self.assertEqual(types(msgs), "EZ")
        self.assertIn("schema-changes", errors(msgs)[0]["M"])
        rows, error = conn.simple_query("EXECUTE sq")
        self.assertEqual(error["C"], "42501")
        self.assertIn("schema-changes", error["M"])
        conn.close()

    def test_a_broken_policy_is_refused_and_the_old_one_stays(self):
        out = self.reload(POLICY.replace("action: deny", "action: dney", 1))
        self.assertIn("reload refused", out)
        self.assertIn("test.yaml:", out)
        conn = raw()
        conn.send(rawpg.query("DROP TABLE orders"))
        self.assertIn("no-drop-table", errors(read_until_ready(conn))[0]["M"])
        conn.close()


class Startup(unittest.TestCase):
    def write(self, name, text):
        path = os.path.join(WORK, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_check_reports_policy_diagnostics(self):
        bad = self.write("bad-policy.yaml", POLICY.replace("commands: [DROP TABLE]",
                                                           "comands: [DROP TABLE]"))
        cfg = self.write("bad-proxy.yaml", """
policy: { paths: [bad-policy.yaml] }
listeners: [{ name: l, port: 0, environment: prod }]
environments:
  - name: prod
    databases: [{ name: shop, upstream: { database: shop, user: u, password: p } }]
""")
        r = subprocess.run([PROXY_BIN, "--config", cfg, "--check"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("bad-policy.yaml:9:16: unknown key 'comands'", r.stderr)
        self.assertIn("did you mean 'commands'", r.stderr)
        # The proxy refuses to start on it too.
        r = subprocess.run([PROXY_BIN, "--config", cfg], capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unknown key 'comands'", r.stderr + r.stdout)

    def test_check_accepts_the_running_policy(self):
        r = subprocess.run([PROXY_BIN, "--config", PROXY.config_path, "--check"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 policies", r.stdout)


if __name__ == "__main__":
    unittest.main()
