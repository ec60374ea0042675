"""Tiny shared helpers for the Python client suites (stdlib only).

Each suite prints one line per case: ``PASS <suite> <case>`` or
``FAIL <suite> <case>: <reason>`` and exits non-zero if any case failed.
"""

import hashlib
import os
import random
import sys
import time
import traceback

BASE_CASES = ("bind_params", "prepared_reuse", "tx_rollback", "types_roundtrip",
              "copy_in_out", "error_recovery", "cancel", "large_result")
# policy_refusal needs the Warden proxy with the client-suite policy in front
# (tests/run.py sets WARDEN_POLICY_CASES=1); against PostgreSQL alone it
# cannot pass, so it only runs when asked for.
POLICY_CASES = os.environ.get("WARDEN_POLICY_CASES") == "1"
CASES = BASE_CASES + (("policy_refusal",) if POLICY_CASES else ())

# Values used by several suites.
TRICKY_TEXT = "O'Reilly \"quoted\" back\\slash; -- ünïcødé ✓ 🐘 $1 %s"
BYTEA_VALUE = b"\x00\xff\x01\x7f\x80'\"\\abc\x00"
NUMERIC_TEXT = "12345678901234567890.123456789"
TS_TEXT = "2024-03-05 12:34:56.789012+05:30"   # == 2024-03-05 07:04:56.789012 UTC
LARGE_N = 100000
LARGE_SQL = "SELECT g, md5(g::text) FROM generate_series(1,%d) g ORDER BY g" % LARGE_N

# policy_refusal: the rules of the client-suite policy (tests/run.py).
RULE_UNFILTERED = "no-unfiltered-writes"
RULE_DROP = "no-drop-table"


def policy_row_id():
    """An id for the row policy_refusal inserts into the shared `items`
    table; unique per run so suites and listeners never collide."""
    return random.randint(1000000, 2 ** 31 - 1)


def check_refusal(sqlstate, message, rule, what):
    """A Warden refusal: SQLSTATE 42501 and a message naming Warden and
    the rule (PostgreSQL's own 42501 'permission denied' does not count)."""
    eq(sqlstate, "42501", what + " SQLSTATE")
    message = message or ""
    check("Warden" in message and rule in message,
          "%s: message does not name Warden and rule %s: %r" % (what, rule, message))


def env_settings():
    """libpq-style connection settings from the standard PG* env vars."""
    return {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": int(os.environ.get("PGPORT", "5432")),
        "user": os.environ.get("PGUSER", "postgres"),
        "password": os.environ.get("PGPASSWORD") or None,
        "dbname": os.environ.get("PGDATABASE", os.environ.get("PGUSER", "postgres")),
        "sslmode": os.environ.get("PGSSLMODE", "prefer"),
    }


class CaseFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CaseFailed(msg)


def eq(got, want, what="value"):
    if got != want:
        raise CaseFailed("%s: got %r, want %r" % (what, got, want))


def copy_payload(n=1000):
    """Text-format COPY data for columns (id, name, amount), ordered by id."""
    lines = []
    for i in range(1, n + 1):
        lines.append("%d\tname-ü-%d\t%d.%02d\n" % (i, i, i * 7, i % 100))
    return "".join(lines)


def expected_large_digest():
    h = hashlib.sha256()
    for g in range(1, LARGE_N + 1):
        h.update(("%d|%s\n" % (g, hashlib.md5(str(g).encode()).hexdigest())).encode())
    return h.hexdigest()


def check_large_rows(rows):
    """rows: iterable of (g, md5text). Verifies count, order, every md5, digest."""
    h = hashlib.sha256()
    n = 0
    for g, m in rows:
        n += 1
        g = int(g)
        if g != n:
            raise CaseFailed("row %d has g=%r" % (n, g))
        h.update(("%d|%s\n" % (g, m)).encode())
    eq(n, LARGE_N, "row count")
    eq(h.hexdigest(), expected_large_digest(), "checksum")


def check_types_row(row, num, ts):
    """The types case's row: (NULL name, bytea, numeric, timestamptz,
    numeric as text, server-side timestamptz equality, bytea as hex)."""
    name, data, amount, got_ts, amount_txt, ts_same, hexdata = row
    eq(name, None, "NULL")
    eq(bytes(data), BYTEA_VALUE, "bytea")
    eq(hexdata, BYTEA_VALUE.hex(), "bytea hex on server")
    eq(amount, num, "numeric")
    eq(amount_txt, NUMERIC_TEXT, "numeric text")
    eq(got_ts, ts, "timestamptz instant")
    check(ts_same is True, "timestamptz not equal server-side")


def run_dbapi_suite(name, connect, table, cases):
    """Connects, creates the suite's temp table, runs `cases` (in CASES
    order; one function per name in BASE_CASES plus policy_refusal, which
    runs only when CASES has it) on one connection, rolling back after
    each, and exits."""
    suite = Suite(name)
    try:
        conn = connect()
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = '60s'")
            cur.execute("CREATE TEMP TABLE " + table +
                        " (id int, name text, data bytea, amount numeric, ts timestamptz)")
        conn.commit()
    except Exception as e:
        suite.fail_all("connect/setup: %s" % str(e).strip().replace("\n", " | "))
        suite.exit()
    for case, fn in zip(CASES, cases):
        suite.run(case, fn, conn)
        if not conn.closed:
            try:
                conn.rollback()
            except Exception:
                pass
    conn.close()
    suite.exit()


class Suite:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def run(self, case, fn, *args):
        t0 = time.monotonic()
        try:
            fn(*args)
        except CaseFailed as e:
            self._fail(case, str(e))
        except Exception as e:  # driver errors etc.
            reason = "%s: %s" % (type(e).__name__, str(e).strip().replace("\n", " | "))
            if os.environ.get("SUITE_DEBUG"):
                traceback.print_exc()
            self._fail(case, reason)
        else:
            self.passed += 1
            print("PASS %s %s" % (self.name, case), flush=True)
        if os.environ.get("SUITE_DEBUG"):
            print("  (%s took %.2fs)" % (case, time.monotonic() - t0), file=sys.stderr)

    def _fail(self, case, reason):
        self.failed += 1
        print("FAIL %s %s: %s" % (self.name, case, reason[:500]), flush=True)

    def fail_all(self, reason):
        for c in CASES:
            self._fail(c, reason)

    def exit(self):
        sys.exit(1 if self.failed else 0)
