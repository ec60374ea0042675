"""A differential oracle for Warden's statement analysis (issue 13).

Each generated statement is judged by `wardenctl policy eval` with the
shipped example policies (environment prod) and run on a real PostgreSQL 15,
inside a transaction that is rolled back, on a scratch database whose
objects the statement's role owns. Event triggers log every DDL command and
dropped object, and a snapshot taken before and after (rows of every table,
the catalog: relations, columns, privileges, functions, types, triggers,
rules, policies, extensions, roles, memberships, role settings, large
objects; the session's settings and current user) says what the statement
did. The oracle fails when PostgreSQL did something the analysis did not
report (a write to a table no written statement names, DDL no statement
reports, a setting or role change the analysis does not list) or that the
production policy should have stopped (a dropped table, every row of a table
changed by an allowed equality-filtered write, a role change, a lexing or
replication setting, schema changes or large-object writes allowed).

Statements come from the corpus (corpus/guardrails.sql), the production
policy's tests, a small grammar of writes, settings, functions and DDL, and
random mutations of all of them (comments, case, whitespace, quoting,
wrappers: CTE, EXPLAIN ANALYZE, DO EXECUTE, PREPARE/EXECUTE, query_to_xml).

    python3 tests/security/oracle.py --count 5000 --seed 7     # on demand
    (tests/security/test_differential_oracle.py runs a short fixed-seed pass)

Run it with Debian's /usr/bin/python3 (psycopg2)."""

import argparse
import concurrent.futures
import json
import os
import random
import re
import subprocess
import sys

import psycopg2
import psycopg2.extensions

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "harness"))
sys.path.insert(0, os.path.join(HERE, "corpus"))

from pgharness import PostgresServer  # noqa: E402
from controlharness import WARDENCTL_BIN  # noqa: E402
import corpus  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(TESTS), "policy", "examples")
ACTOR, ACTOR_PW = "oracle_actor", "oracle-actor-pw"

SETUP_ROLES = """
CREATE ROLE oracle_actor LOGIN PASSWORD 'oracle-actor-pw' CREATEROLE;
CREATE ROLE oracle_other NOLOGIN;
GRANT oracle_other TO oracle_actor;
-- pg_hba.conf of the test cluster (pgharness) takes passwords over TCP from
-- members of warden_mapped.
DO $$ BEGIN CREATE ROLE warden_mapped NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT warden_mapped TO oracle_actor;
CREATE DATABASE oracle_template OWNER oracle_actor;
"""

# Owned by the actor, so what a statement can do to it PostgreSQL will do.
SETUP_SCHEMA = """
SET ROLE oracle_actor;
CREATE TABLE customers (id serial PRIMARY KEY, name text, email text);
CREATE TABLE products (id serial PRIMARY KEY, name text, price numeric(10,2));
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers,
                     product_id int REFERENCES products, quantity int, total numeric(12,2));
CREATE TABLE items (id int, name text, data bytea, amount numeric, ts timestamptz);
INSERT INTO customers (name, email)
  SELECT 'customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 10) g;
INSERT INTO products (name, price) VALUES ('Widget', 9.99), ('Gadget', 24.50),
  ('Gizmo', 199.00), ('Doohickey', 4.25), ('Thingamajig', 57.75);
INSERT INTO orders (customer_id, product_id, quantity, total)
  SELECT ((g - 1) % 10) + 1, ((g * 3) % 5) + 1, (g % 4) + 1, g * 10 FROM generate_series(1, 20) g;
INSERT INTO items VALUES (1, 'a', '\\x00', 1, now()), (2, 'b', '\\x01', 2, now()),
  (3, 'c', '\\x02', 3, now());
CREATE SCHEMA sales;
CREATE TABLE sales.leads (id int PRIMARY KEY, name text);
INSERT INTO sales.leads SELECT g, 'lead ' || g FROM generate_series(1, 5) g;
CREATE VIEW v_orders AS SELECT * FROM orders;
CREATE MATERIALIZED VIEW daily_totals AS SELECT product_id, sum(total) AS total FROM orders GROUP BY 1;
CREATE FUNCTION f_one() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';
CREATE PROCEDURE p_any() LANGUAGE sql AS 'SELECT 1';
CREATE TYPE mood AS ENUM ('a', 'b');
CREATE DOMAIN positive_int AS int CHECK (VALUE > 0);
CREATE TABLE typed (id int PRIMARY KEY, m mood, p positive_int);
INSERT INTO typed VALUES (1, 'a', 1), (2, 'b', 2), (3, 'a', 3);
SELECT lo_from_bytea(4242, 'hello');
RESET ROLE;
CREATE SCHEMA oracle_log;
CREATE TABLE oracle_log.ddl (n serial, event text, tag text, object_type text,
                             schema_name text, identity text, in_extension bool DEFAULT false);
CREATE FUNCTION oracle_log.on_end() RETURNS event_trigger SECURITY DEFINER
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
    INSERT INTO oracle_log.ddl (event, tag, object_type, schema_name, identity, in_extension)
    VALUES ('end', r.command_tag, r.object_type, r.schema_name, r.object_identity, r.in_extension);
  END LOOP;
END $$;
CREATE FUNCTION oracle_log.on_drop() RETURNS event_trigger SECURITY DEFINER
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
    INSERT INTO oracle_log.ddl (event, tag, object_type, schema_name, identity)
    VALUES (CASE WHEN r.is_temporary THEN 'drop-temp' ELSE 'drop' END, tg_tag,
            r.object_type, r.schema_name, r.object_identity);
  END LOOP;
END $$;
CREATE EVENT TRIGGER oracle_end ON ddl_command_end EXECUTE FUNCTION oracle_log.on_end();
CREATE EVENT TRIGGER oracle_drop ON sql_drop EXECUTE FUNCTION oracle_log.on_drop();

CREATE FUNCTION oracle_log.snapshot() RETURNS jsonb SECURITY DEFINER
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
  out jsonb := '{}';
  r record;
  rows jsonb;
BEGIN
  FOR r IN SELECT c.oid, n.nspname, c.relname FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname IN ('public', 'sales') LOOP
    EXECUTE format('SELECT coalesce(jsonb_agg(md5(t::text) ORDER BY md5(t::text)), ''[]'') FROM %s t',
                   r.oid::regclass) INTO rows;
    out := out || jsonb_build_object('rows:' || r.nspname || '.' || r.relname, rows);
  END LOOP;
  RETURN out || jsonb_build_object(
    'relations', (SELECT jsonb_agg(x ORDER BY x) FROM (
        SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' || c.relowner::regrole::text
               || ':' || coalesce(c.relacl::text, '') || ':' || c.relrowsecurity || ':'
               || coalesce((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod)
                                              || ' ' || attnotnull || ' ' || coalesce(attacl::text, ''),
                                              ',' ORDER BY attnum)
                            FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0
                            AND NOT attisdropped), '') AS x
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'oracle_log')
          AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%') s),
    'namespaces', (SELECT jsonb_agg(nspname || ':' || nspowner::regrole::text || ':'
                                    || coalesce(nspacl::text, '') ORDER BY nspname)
                   FROM pg_namespace WHERE nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%'),
    'functions', (SELECT jsonb_agg(p.oid::regprocedure::text || ':' || md5(p.prosrc) || ':'
                                   || coalesce(p.proconfig::text, '') || ':' || coalesce(p.proacl::text, '')
                                   || ':' || p.prosecdef || ':' || p.proowner::regrole::text ORDER BY 1)
                  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'oracle_log')
                    AND n.nspname NOT LIKE 'pg_temp%'),
    'types', (SELECT jsonb_agg(t.oid::regtype::text || ':' || coalesce(t.typacl::text, '') || ':'
                               || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                                            FROM pg_enum WHERE enumtypid = t.oid), '') ORDER BY 1)
              FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
              WHERE n.nspname IN ('public', 'sales') AND t.typtype IN ('e', 'd', 'c', 'r', 'b')),
    'constraints', (SELECT jsonb_agg(conname || ':' || contype::text || ':' || conrelid || ':'
                                     || contypid || ':' || pg_get_constraintdef(oid) ORDER BY 1)
                    FROM pg_constraint WHERE connamespace IN ('public'::regnamespace, 'sales'::regnamespace)),
    'triggers', (SELECT jsonb_agg(tgrelid::regclass::text || ':' || tgname || ':' || tgenabled::text ORDER BY 1)
                 FROM pg_trigger WHERE NOT tgisinternal),
    'rules', (SELECT jsonb_agg(ev_class::regclass::text || ':' || rulename ORDER BY 1)
              FROM pg_rewrite WHERE ev_class >= 16384 AND rulename <> '_RETURN'),
    'policies', (SELECT jsonb_agg(polrelid::regclass::text || ':' || polname ORDER BY 1) FROM pg_policy),
    'extensions', (SELECT jsonb_agg(extname ORDER BY 1) FROM pg_extension),
    'event_triggers', (SELECT jsonb_agg(evtname || ':' || evtenabled::text ORDER BY 1) FROM pg_event_trigger),
    'operators', (SELECT jsonb_agg(oid::regoperator::text ORDER BY 1) FROM pg_operator WHERE oid >= 16384),
    'casts', (SELECT jsonb_agg(castsource::regtype::text || '->' || casttarget::regtype::text ORDER BY 1)
              FROM pg_cast WHERE oid >= 16384),
    'languages', (SELECT jsonb_agg(lanname || ':' || lanpltrusted ORDER BY 1) FROM pg_language),
    'roles', (SELECT jsonb_agg(rolname || ':' || rolsuper || rolinherit || rolcreaterole || rolcreatedb
                               || rolcanlogin || rolreplication || rolbypassrls || ':'
                               || coalesce(rolpassword, '') || ':' || coalesce(rolvaliduntil::text, '')
                               ORDER BY 1) FROM pg_authid),
    'members', (SELECT jsonb_agg(roleid::regrole::text || '>' || member::regrole::text || ':' || admin_option
                                 ORDER BY 1) FROM pg_auth_members),
    'role_settings', (SELECT jsonb_agg(setdatabase || ':' || setrole || ':' || setconfig::text ORDER BY 1)
                      FROM pg_db_role_setting),
    'default_acl', (SELECT jsonb_agg(defaclrole || ':' || defaclobjtype::text || ':' || defaclacl::text ORDER BY 1)
                    FROM pg_default_acl),
    'databases', (SELECT jsonb_agg(datname || ':' || coalesce(datacl::text, '') || ':' || datallowconn
                                   ORDER BY 1) FROM pg_database),
    'large_objects', (SELECT jsonb_agg(m.oid || ':' || m.lomowner || ':' || coalesce(m.lomacl::text, '') || ':'
                                       || coalesce((SELECT md5(string_agg(data, '' ORDER BY pageno))
                                                    FROM pg_largeobject WHERE loid = m.oid), '')
                                       ORDER BY 1) FROM pg_largeobject_metadata m),
    'ddl', (SELECT coalesce(jsonb_agg(jsonb_build_array(event, tag, object_type, schema_name, identity)
                                     ORDER BY n), '[]') FROM oracle_log.ddl WHERE NOT in_extension));
END $$;
GRANT USAGE ON SCHEMA oracle_log TO PUBLIC;
GRANT EXECUTE ON FUNCTION oracle_log.snapshot() TO PUBLIC;
"""

SNAPSHOT = ("SELECT oracle_log.snapshot(), current_user, "
            "(SELECT json_object_agg(name, setting) FROM pg_catalog.pg_settings), "
            "(SELECT json_object_agg(name, reset_val) FROM pg_catalog.pg_settings)")

# Per-transaction pseudo-settings (SET TRANSACTION ...) and ones that
# PostgreSQL changes on its own.
IGNORED_SETTINGS = {"transaction_isolation", "transaction_read_only",
                    "transaction_deferrable"}
HARNESS_SETTINGS = {"statement_timeout", "lock_timeout"}
CLIENT_ONLY_ENCODINGS = {"SJIS", "BIG5", "GBK", "GB18030", "UHC", "JOHAB", "SHIFT_JIS_2004"}
# A write whose filter has a range or pattern may rightly change every row
# (WHERE id > 0 is a filter by its shape, docs/policy.md); a negation
# (<>, NOT BETWEEN, NOT IN, NOT LIKE, IS DISTINCT FROM) never excuses it.
RANGE_OPERATORS = re.compile(r"<|>|\bBETWEEN\b|\bLIKE\b|\bILIKE\b|\bANY\b|\bALL\b|\bIN\b|\bSIMILAR\b|~",
                             re.IGNORECASE)
NEGATIONS = re.compile(r"\bNOT\s+(BETWEEN|IN|LIKE|ILIKE|SIMILAR)\b|\bIS\s+DISTINCT\b|<>|!=",
                       re.IGNORECASE)


# ------------------------------------------------------------------ analysis

def judge(sql):
    """`wardenctl policy eval` of one statement with the example policies."""
    r = subprocess.run([WARDENCTL_BIN, "policy", "eval", "--policy", EXAMPLES, "--env", "prod",
                        "--db", "shop", "--user", "alice", "--sql", "-", "--format", "json"],
                       input=sql.encode("utf-8", errors="surrogateescape"),
                       capture_output=True, timeout=60)
    if r.returncode not in (0, 3, 4) or not r.stdout.strip():
        return {"decision": "error", "error": r.stderr.decode(errors="replace"), "statements": []}
    return json.loads(r.stdout)


def flatten(statements):
    for s in statements:
        yield s
        yield from flatten(s.get("nested", []))


class Analysis:
    def __init__(self, verdict, user_functions, view_tables):
        self.decision = verdict.get("decision")
        self.rule = verdict.get("rule", "")
        self.all = list(flatten(verdict.get("statements", [])))
        self.commands = {s["command"] for s in self.all}
        self.classes = {s["class"] for s in self.all}
        self.settings = {x.lower() for s in self.all for x in s.get("settings", [])}
        # By name, without the schema (pg_catalog.lo_put is lo_put).
        self.functions = {x.lower().split(".")[-1] for s in self.all for x in s.get("functions", [])}
        self.dynamic = any(s.get("unresolved_dynamic_sql") for s in self.all)
        # A call to a function already in the database: its body is out of
        # Warden's sight (docs/policy.md), so what it does is not reported.
        self.calls_existing = bool(self.functions & user_functions) or "CALL" in self.commands
        self.written = set()
        for s in self.all:
            if s["class"] in ("read", "transaction", "utility") and s["command"] not in ("COPY",):
                continue
            for r in s.get("relations", []):
                name = r["name"].lower()
                self.written.add(name)
                self.written.update(view_tables.get(name, ()))

    def opaque(self):
        return self.dynamic or self.calls_existing


# ------------------------------------------------------------------ effects

def effects(before, after, escaped=False):
    """What changed between two snapshots: {kind: [details]}. `escaped`: the
    statement ended the harness's transaction, and with it the harness's own
    SET LOCAL timeouts."""
    a, user_a, set_a = before
    b, user_b, set_b = after
    out = {}
    for key in sorted(set(a) | set(b)):
        if key.startswith("rows:"):
            if key not in a or key not in b:
                continue  # created or dropped: the relations list says so
            ra, rb = list(a[key]), list(b[key])
            removed = list(ra)
            for x in rb:
                if x in removed:
                    removed.remove(x)
            added = list(rb)
            for x in ra:
                if x in added:
                    added.remove(x)
            if removed or added:
                out.setdefault("data", []).append((key[5:], len(ra), len(removed), len(added)))
        elif key == "ddl":
            if a[key] != b[key]:
                out["ddl"] = b[key][len(a[key] or []):]
        elif a.get(key) != b.get(key):
            out.setdefault("catalog", []).append(key)
    if user_a != user_b:
        out["role"] = [(user_a, user_b)]
    changed = sorted(k for k in set(set_a) | set(set_b)
                     if set_a.get(k) != set_b.get(k) and k not in IGNORED_SETTINGS
                     and not (escaped and k in HARNESS_SETTINGS))
    if changed:
        out["settings"] = [(k, set_a.get(k), set_b.get(k)) for k in changed]
    return out


# Event-trigger tags that change rows, not the schema.
DATA_TAGS = {"REFRESH MATERIALIZED VIEW"}


def permanent_ddl(rows):
    return [r for r in rows if not (r[3] or "").startswith("pg_temp") and r[0] != "drop-temp"
            and r[1] not in DATA_TAGS]


def disagreements(sql, analysis, fx, reset_values=None):
    """Where what PostgreSQL did and what Warden reported or decided differ."""
    out = []
    allowed = analysis.decision == "allow"
    ddl_reported = bool(analysis.classes & {"ddl", "dcl"})
    # Facts: what happened must have been reported.
    for table, total, removed, added in fx.get("data", []):
        name = table.split(".")[-1]
        if name not in analysis.written and not ddl_reported and not analysis.opaque():
            out.append("wrote %s (-%d +%d rows) but no write of it was reported" % (table, removed, added))
        if (allowed and total >= 3 and removed == total and not ddl_reported
                and not RANGE_OPERATORS.search(NEGATIONS.sub(" ", sql))):
            out.append("changed every row of %s (%d) and was allowed" % (table, total))
    ddl = permanent_ddl(fx.get("ddl", []))
    if (ddl or fx.get("catalog")) and not ddl_reported and not analysis.opaque():
        what = sorted({r[1] for r in ddl}) or fx.get("catalog")
        if not (set(fx.get("catalog", [])) <= {"large_objects"} and not ddl):
            out.append("changed the schema (%s) but no DDL was reported" % ", ".join(what))
    for r in ddl + [r for r in fx.get("ddl", []) if r[1] in DATA_TAGS]:
        if r[0] == "end" and r[1] not in analysis.commands and not analysis.opaque():
            out.append("ran %s, reported as %s" % (r[1], sorted(analysis.commands)))
    for name, old, new in fx.get("settings", []):
        if reset_values and reset_values.get(name) == new:
            # RESET / SET TO DEFAULT: back to what the session started
            # with, which Warden does not count as a change (docs/policy.md).
            continue
        if name.lower() not in analysis.settings and not {"*", "all"} & analysis.settings \
                and not analysis.opaque():
            out.append("changed setting %s (%s -> %s) but reported settings %s"
                       % (name, old, new, sorted(analysis.settings)))
    if "large_objects" in fx.get("catalog", []) and not any(
            f.startswith("lo") for f in analysis.functions) and not ddl_reported \
            and not analysis.opaque():
        out.append("wrote a large object but no large-object function was reported")
    if fx.get("role") and not ({"role", "session_authorization", "*"} & analysis.settings) \
            and not analysis.opaque():
        out.append("changed the current user %s but reported no role change" % (fx["role"],))
    # Decisions: what the production policy must stop.
    if not allowed:
        pass
    else:
        dropped = [r for r in ddl if r[0] == "drop" and r[2] in ("table", "schema", "materialized view")]
        if dropped:
            out.append("dropped %s and was allowed" % [r[4] for r in dropped])
        if ddl or set(fx.get("catalog", [])) - {"large_objects"}:
            out.append("changed the schema (%s) and was allowed"
                       % (sorted({r[1] for r in ddl}) or fx.get("catalog")))
        if "large_objects" in fx.get("catalog", []):
            out.append("wrote a large object and was allowed")
        if fx.get("role"):
            out.append("changed the current user %s and was allowed" % (fx["role"],))
        for name, old, new in fx.get("settings", []):
            lexing = ((name == "standard_conforming_strings" and new != "on")
                      or (name == "client_encoding" and new.upper() in CLIENT_ONLY_ENCODINGS)
                      or name == "backslash_quote" or name == "session_replication_role")
            if lexing:
                out.append("set %s to %s and was allowed" % (name, new))
    if analysis.decision != "deny" and analysis.decision != "allow":
        dropped = [r for r in ddl if r[0] == "drop" and r[2] in ("table", "schema")]
        if dropped:
            out.append("dropped %s and was only held for approval" % [r[4] for r in dropped])
    return out


# ------------------------------------------------------------------ database

class Scratch:
    """The scratch database on a real PostgreSQL 15, and the actor's session."""

    def __init__(self):
        self.pg = PostgresServer()
        self.conn = None
        self.roles = None
        self.reset_values = {}

    def start(self):
        self.pg.start()
        self.pg.psql(SETUP_ROLES)
        self.pg.psql(SETUP_SCHEMA, dbname="oracle_template")
        self.roles = self.pg.psql("SELECT rolname FROM pg_roles").split()
        self.pg.psql("CREATE DATABASE oracle TEMPLATE oracle_template OWNER oracle_actor")
        self.connect()
        cur = self.conn.cursor()
        cur.execute("SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname IN ('public', 'sales')")
        self.user_functions = {r[0].lower() for r in cur.fetchall()}
        cur.execute("SELECT DISTINCT v.relname, t.relname FROM pg_rewrite w "
                    "JOIN pg_class v ON v.oid = w.ev_class JOIN pg_depend d ON d.objid = w.oid "
                    "JOIN pg_class t ON t.oid = d.refobjid "
                    "WHERE v.relkind = 'v' AND t.relkind IN ('r', 'p') AND t.oid <> v.oid")
        self.view_tables = {}
        for view, table in cur.fetchall():
            self.view_tables.setdefault(view.lower(), set()).add(table.lower())
        return self

    def connect(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
        self.conn = psycopg2.connect(host="127.0.0.1", port=self.pg.port, user=ACTOR,
                                     password=ACTOR_PW, dbname="oracle", connect_timeout=10)
        self.conn.autocommit = True

    def restore(self):
        """After a statement ended the transaction: a fresh copy, and the
        roles as they were."""
        self.conn.close()
        self.conn = None
        self.pg.psql("DROP DATABASE oracle WITH (FORCE)")
        for role in self.pg.psql("SELECT rolname FROM pg_roles").split():
            if role not in self.roles:
                self.pg.psql('DROP ROLE IF EXISTS "%s"' % role.replace('"', '""'), check=False)
        self.pg.psql("ALTER ROLE oracle_actor RESET ALL; "
                     "ALTER ROLE oracle_actor NOSUPERUSER CREATEROLE LOGIN PASSWORD 'oracle-actor-pw'")
        self.pg.psql("CREATE DATABASE oracle TEMPLATE oracle_template OWNER oracle_actor")
        self.connect()

    def snapshot(self, cur):
        cur.execute(SNAPSHOT)
        snap, user, settings, reset = cur.fetchone()
        self.reset_values = reset
        return snap, user, settings

    def run(self, sql):
        """(error or None, effects)."""
        cur = self.conn.cursor()
        try:
            cur.execute("BEGIN")
            cur.execute("SET LOCAL statement_timeout = '3s'; SET LOCAL lock_timeout = '1s'")
            before = self.snapshot(cur)
            cur.execute("SAVEPOINT oracle_statement")
        except psycopg2.Error:
            self.restore()
            raise
        error = None
        try:
            cur.execute(sql)
        except psycopg2.Error as e:
            error = (e.pgcode or "-") + " " + (e.pgerror or str(e)).splitlines()[0]
        except Exception as e:  # noqa: BLE001 - psycopg2 refuses some results (COPY)
            error = "client: %s" % e
        escaped = self.conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        try:
            if error and not escaped:
                cur.execute("ROLLBACK TO SAVEPOINT oracle_statement")
            after = self.snapshot(cur)
            cur.execute("ROLLBACK")
        except psycopg2.Error:
            self.restore()
            return error or "session broken", {}
        if escaped:
            self.restore()
        else:
            # What outlives a transaction: prepared statements, advisory
            # locks, session settings. Each statement starts clean.
            cur.execute("DISCARD ALL")
        return error, effects(before, after, escaped)

    def stop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
        self.pg.stop()


# ------------------------------------------------------------------ statements

TABLES = ["orders", "customers", "products", "items", "public.orders", '"orders"', "sales.leads",
          "ONLY orders", "typed", "v_orders"]
COLUMNS = {"orders": "quantity", "customers": "name", "products": "price", "items": "amount",
           "leads": "name", "typed": "id", "v_orders": "quantity"}
PREDICATES = [
    "", "WHERE true", "WHERE 1 = 1", "WHERE id = 1", "WHERE id = 2", "WHERE id = id",
    "WHERE id IS NOT NULL", "WHERE 1::int = 1", "WHERE 't'::boolean", "WHERE EXISTS (SELECT 1)",
    "WHERE (SELECT true)", "WHERE CASE WHEN true THEN true END", "WHERE coalesce(true, false)",
    "WHERE id = 1 OR id <> 1", "WHERE ctid = ctid", "WHERE NOT false", "WHERE id = 1 OR true",
    "WHERE id = 1 AND true", "WHERE id IN (1, 2)", "WHERE id > 0", "WHERE id::text = id::text",
    "WHERE id = (SELECT min(id) FROM orders)", "WHERE id IS NOT DISTINCT FROM id",
    "WHERE id = 3 OR id = id", "WHERE (id = 1) IS NOT NULL", "WHERE id = 1 IS NOT FALSE",
    "WHERE id + 0 = id", "WHERE abs(id) = id", "WHERE id = ANY (ARRAY[id])", "WHERE id BETWEEN 1 AND 1",
    "WHERE nullif(id, -1) = id", "WHERE greatest(id, 0) = id", "WHERE id = 1 OR NOT (id = 1)",
    "WHERE (id, id) = (id, id)", "WHERE ROW(id) = ROW(id)", "WHERE id = 4 OR (SELECT true)",
    "WHERE id <> -1", "WHERE id = id AND id = 1", "WHERE NOT (id <> id)",
    "WHERE id::bool IS NOT NULL", "WHERE 1 = id - id + 1",
    # Negations name the rows they leave alone (a red-team finding).
    "WHERE id NOT BETWEEN 0 AND -1", "WHERE id NOT BETWEEN SYMMETRIC 0 AND -1",
    "WHERE id NOT IN (-1)", "WHERE id IS DISTINCT FROM -1", "WHERE id::text NOT LIKE 'zz%'",
    "WHERE id BETWEEN 1 AND 2", "WHERE id::text LIKE '%'", "WHERE id::text LIKE '1%'",
    # Same shapes, constants that decide: a cached analysis must not carry over.
    "WHERE 1 = 2", "WHERE false", "WHERE 2 = 2",
]
SETTINGS = [
    ("standard_conforming_strings", ["off", "on", "0", "false", "'off'"]),
    ("client_encoding", ["'SJIS'", "'UTF8'", "'LATIN1'", "'BIG5'", "'EUC_JP'", "'WIN1252'"]),
    ("backslash_quote", ["on", "off", "safe_encoding"]),
    ("session_replication_role", ["replica", "origin", "local"]),
    ("search_path", ["pg_temp, public", "sales", "public"]),
    ("role", ["oracle_other", "none"]),
    ("work_mem", ["'8MB'"]), ("escape_string_warning", ["off"]), ("DateStyle", ["'ISO, DMY'"]),
    ("application_name", ["'x'"]), ("TimeZone", ["'UTC'"]),
]
FUNCTIONS = [
    "setval('orders_id_seq', 1)", "nextval('orders_id_seq')", "lo_put(4242, 0, 'x')",
    "lowrite(lo_open(4242, 131072), 'y')", "lo_truncate(lo_open(4242, 131072), 0)",
    "lo_unlink(4242)", "lo_create(0)", "lo_from_bytea(0, 'z')", "pg_advisory_lock(1)",
    "query_to_xml('DELETE FROM orders RETURNING id', true, true, '')",
    "query_to_xml('UPDATE orders SET quantity = 0 WHERE id = 1 RETURNING id', true, true, '')",
    "query_to_xml('SELECT 1', true, true, '')", "f_one()", "f()",
    "ts_stat('SELECT to_tsvector(name) FROM customers')",
    "set_config('search_path', 'sales', false)", "set_config('role', 'oracle_other', false)",
    "set_config('standard_conforming_strings', 'off', true)",
    "set_config(lower('SESSION_REPLICATION_ROLE'), 'replica', false)",
    "pg_notify('c', 'x')", "txid_current()", "pg_sleep(0)",
    # The database's own name in front of a built-in (a red-team finding).
    "oracle.pg_catalog.lo_put(4242, 0, 'x')", "oracle.pg_catalog.lo_from_bytea(0, 'x')",
    "oracle.pg_catalog.setval('orders_id_seq', 1)", "oracle.pg_catalog.lo_unlink(4242)",
]
DDL = [
    "CREATE TABLE t_new (a int)", "CREATE TEMP TABLE t_tmp (a int)", "DROP TABLE items",
    "DROP TABLE IF EXISTS sales.leads", "DROP SCHEMA sales CASCADE", "DROP TYPE mood CASCADE",
    "DROP DOMAIN positive_int CASCADE", "DROP FUNCTION f_one() CASCADE", "DROP VIEW v_orders",
    "DROP MATERIALIZED VIEW daily_totals", "ALTER TABLE orders DROP COLUMN total",
    "ALTER TABLE orders ADD COLUMN note text DEFAULT 'x'", "ALTER TABLE orders OWNER TO oracle_other",
    "ALTER TYPE mood RENAME VALUE 'a' TO 'z'", "ALTER TABLE items RENAME TO items_old",
    "CREATE VIEW v_new AS SELECT * FROM orders", "CREATE TEMP VIEW v_tmp AS SELECT * FROM orders",
    "CREATE RULE r_new AS ON INSERT TO items DO ALSO DELETE FROM orders WHERE id = 1",
    "CREATE INDEX ON orders (quantity)", "COMMENT ON TABLE orders IS 'x'",
    "GRANT SELECT ON orders TO PUBLIC", "REVOKE ALL ON orders FROM PUBLIC", "CREATE ROLE r_new",
    "ALTER ROLE oracle_other LOGIN", "GRANT oracle_other TO r_x", "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC",
    "ALTER ROLE oracle_actor SET work_mem = '1MB'", "ALTER DATABASE oracle SET work_mem = '1MB'",
    "SELECT * INTO orders_copy FROM orders", "CREATE TABLE c2 AS SELECT 1 AS a",
    "REFRESH MATERIALIZED VIEW daily_totals", "TRUNCATE items", "TRUNCATE orders CASCADE",
    "CREATE POLICY p ON orders USING (true)", "ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
    "CREATE TRIGGER tr AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION f_one()",
    "ALTER TABLE orders DISABLE TRIGGER ALL", "CREATE SEQUENCE s_new", "ALTER SEQUENCE orders_id_seq RESTART",
    "CREATE FUNCTION f_new() RETURNS int LANGUAGE sql AS 'SELECT 3'",
    "CREATE OR REPLACE FUNCTION f_one() RETURNS int LANGUAGE sql AS 'SELECT 4'",
    "ALTER FUNCTION f_one() SECURITY DEFINER", "SECURITY LABEL ON TABLE orders IS 'x'",
    "CREATE SCHEMA s_new", "ALTER SCHEMA sales RENAME TO sales2", "CREATE DOMAIN d_new AS int",
    "CREATE TYPE t_new AS (a int)", "ALTER TABLE typed ALTER COLUMN p TYPE int",
    "CREATE CAST (text AS mood) WITH INOUT", "CREATE OPERATOR #!# (FUNCTION = int4pl, LEFTARG = int, RIGHTARG = int)",
    "CLUSTER orders USING orders_pkey", "LOCK orders", "SELECT lo_import('/etc/hostname')",
    "IMPORT FOREIGN SCHEMA x FROM SERVER s INTO public", "CREATE EXTENSION IF NOT EXISTS plpgsql",
    "ALTER LARGE OBJECT 4242 OWNER TO oracle_other", "GRANT SELECT ON LARGE OBJECT 4242 TO PUBLIC",
    "REASSIGN OWNED BY oracle_actor TO oracle_other", "DROP OWNED BY oracle_actor",
]


def grammar(rng):
    kind = rng.random()
    if kind < 0.45:
        table = rng.choice(TABLES)
        col = COLUMNS.get(table.replace('"', "").replace("ONLY ", "").split(".")[-1], "id")
        pred = rng.choice(PREDICATES)
        op = rng.random()
        if op < 0.45:
            return "UPDATE %s SET %s = %s %s" % (table, col, col if rng.random() < 0.2 else "NULL", pred)
        if op < 0.85:
            return "DELETE FROM %s %s" % (table, pred)
        if op < 0.93:
            on = pred.replace("WHERE ", "") or "true"
            return ("MERGE INTO %s t USING (SELECT 1 AS k) s ON %s WHEN MATCHED THEN DELETE"
                    % (table.replace("ONLY ", ""), on.replace("id", "t.id")))
        if rng.random() < 0.5:
            return ("INSERT INTO orders (id, quantity) SELECT id, 1 FROM orders %s "
                    "ON CONFLICT (id) DO UPDATE SET quantity = 0" % pred)
        return ("INSERT INTO orders SELECT * FROM orders ON CONFLICT (id) DO UPDATE "
                "SET quantity = 0 %s" % pred.replace("id", "orders.id"))
    if kind < 0.65:
        name, values = rng.choice(SETTINGS)
        value = rng.choice(values)
        form = rng.random()
        if form < 0.4:
            return "SET %s%s = %s" % (rng.choice(["", "LOCAL ", "SESSION "]), name, value)
        if form < 0.6:
            return "SELECT set_config('%s', '%s', %s)" % (name, value.strip("'"), rng.choice(["true", "false"]))
        if form < 0.7:
            return "RESET %s" % rng.choice([name, "ALL"])
        if form < 0.8:
            return "UPDATE pg_settings SET setting = '%s' WHERE name = '%s'" % (value.strip("'"), name.lower())
        if form < 0.9:
            return "SET %s TO DEFAULT" % name
        return "SELECT set_config('%s', '%s', false) FROM orders WHERE id = 1" % (name, value.strip("'"))
    if kind < 0.8:
        return "SELECT %s" % rng.choice(FUNCTIONS)
    return rng.choice(DDL)


def quote_literal(s):
    return "'" + s.replace("'", "''") + "'"


def mutate(sql, rng):
    """One random rewrite that keeps (or deliberately wraps) the meaning."""
    choice = rng.randrange(16)
    words = sql.split(" ")
    if choice == 0:
        return " ".join(w if rng.random() < 0.5 else w.swapcase() if not ("'" in w or '"' in w or "$" in w) else w
                        for w in words)
    if choice == 1 and len(words) > 1:
        i = rng.randrange(1, len(words))
        return " ".join(words[:i]) + rng.choice(["/**/", " /* x */ ", "\n", "\t", " --c\n "]) + " ".join(words[i:])
    if choice == 2:
        return "SELECT 1; " + sql
    if choice == 3:
        return "EXPLAIN (ANALYZE, COSTS OFF) " + sql
    if choice == 4:
        return "DO $o$ BEGIN EXECUTE %s; END $o$" % quote_literal(sql)
    if choice == 5:
        return "DO $o$ BEGIN %s; END $o$" % sql
    if choice == 6 and re.match(r"(?i)\s*(UPDATE|DELETE|INSERT)", sql):
        return "WITH w AS (%s RETURNING 1) SELECT count(*) FROM w" % sql
    if choice == 7:
        name = "o%d" % rng.randrange(10 ** 6)
        return "PREPARE %s AS %s; EXECUTE %s" % (name, sql, name)
    if choice == 8:
        return "SELECT query_to_xml(%s, true, true, '')" % quote_literal(sql + (
            " RETURNING 1" if re.match(r"(?i)\s*(UPDATE|DELETE)", sql) else ""))
    if choice == 9:
        return re.sub(r"\borders\b", lambda m: rng.choice(['U&"\\006Frders"', '"orders"', "public.orders",
                                                           "oracle.public.orders"]), sql, count=1)
    if choice == 10:
        return sql + rng.choice([";", " ;", "; ", ";;", "; SELECT 1"])
    if choice == 11:
        name = "fm%d" % rng.randrange(10 ** 6)
        return "CREATE FUNCTION %s() RETURNS void LANGUAGE plpgsql AS $o$BEGIN %s; END$o$; SELECT %s()" % (
            name, sql, name)
    if choice == 12:
        return "BEGIN; " + sql + "; COMMIT"
    if choice == 13:
        # PostgreSQL takes the last of a repeated option (a red-team finding).
        return "EXPLAIN (%s) %s" % (rng.choice(["ANALYZE false, ANALYZE", "ANALYZE 0, ANALYZE 1",
                                                 "ANALYZE, ANALYZE off", "ANALYZE on, COSTS off"]), sql)
    if choice == 14:
        return re.sub(r"\b(pg_catalog\.)?(lo_\w+|setval|set_config)\(",
                      lambda m: "oracle.pg_catalog.%s(" % m.group(2), sql, count=1)
    return sql.replace(" ", rng.choice(["  ", "\n", " \t"]))


def seeds():
    statements, chains = corpus.load()
    out = [s.sql for s in statements if "%s" not in s.sql]
    out += [s.sql for c in chains for s in c.steps if not s.params]
    with open(os.path.join(EXAMPLES, "production_test.yaml"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r'\s*sql:\s*(".*")\s*$', line)
            if m:
                out.append(json.loads(m.group(1)))
    return list(dict.fromkeys(out))


def statements(count, seed, with_seeds=True):
    rng = random.Random(seed)
    out = seeds() if with_seeds else []
    base = list(out)
    while len(out) < (len(base) if with_seeds else 0) + count:
        s = grammar(rng) if rng.random() < 0.6 or not base else rng.choice(base)
        for _ in range(rng.randrange(1, 3)):
            s = mutate(s, rng)
        out.append(s)
    return out


def judged(count, seed, with_seeds=True):
    """[(statement, `policy eval` verdict)]."""
    todo = statements(count, seed, with_seeds)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return list(zip(todo, pool.map(judge, todo)))


def run(count, seed, with_seeds=True, log=None, verdicts=None):
    """Judges and runs the statements; returns (stats, disagreements)."""
    pairs = verdicts if verdicts is not None else judged(count, seed, with_seeds)
    todo = [sql for sql, _ in pairs]
    verdicts = [v for _, v in pairs]
    scratch = Scratch().start()
    stats = {"statements": len(todo), "ran": 0, "with_effects": 0, "denied": 0, "approval": 0,
             "allowed": 0, "unparseable_ran": 0}
    found = []
    try:
        for sql, verdict in zip(todo, verdicts):
            if verdict.get("decision") == "error":
                found.append((sql, ["policy eval failed: %s" % verdict.get("error", "")[:200]]))
                continue
            stats[{"deny": "denied", "require_approval": "approval"}.get(verdict["decision"], "allowed")] += 1
            error, fx = scratch.run(sql)
            if error is None:
                stats["ran"] += 1
                if verdict["decision"] == "deny" and "could not parse" in verdict.get("reason", "") + \
                        verdict.get("message", ""):
                    stats["unparseable_ran"] += 1
            if fx:
                stats["with_effects"] += 1
            problems = disagreements(sql, Analysis(verdict, scratch.user_functions, scratch.view_tables), fx,
                                     scratch.reset_values)
            if problems:
                found.append((sql, problems))
            if log:
                log.write(json.dumps({"sql": sql, "decision": verdict["decision"], "rule": verdict.get("rule"),
                                      "error": error, "effects": fx, "problems": problems}) + "\n")
    finally:
        scratch.stop()
    return stats, found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=2000, help="generated statements besides the seeds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log", help="write one JSON line per statement here")
    args = ap.parse_args()
    log = open(args.log, "w", encoding="utf-8") if args.log else None
    stats, found = run(args.count, args.seed, log=log)
    for sql, problems in found:
        print("DISAGREE %r" % sql)
        for p in problems:
            print("    " + p)
    print(json.dumps(stats))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
