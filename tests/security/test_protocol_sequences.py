"""Protocol-sequence fuzzer (issue 14): random interleavings of Parse, Bind,
Describe, Execute, Close, Sync, Flush, Query and stray CopyData/CopyDone/
CopyFail, with allowed, refused and failing statements, sent through the
production guardrails of a real warden-proxy (audit on, to a real
warden-control) and, as the oracle, straight to the same PostgreSQL 15.

For every batch the replies must be the ones PostgreSQL gives when each
refused statement is replaced by one that fails at the same message: the
same message types in the same order, the same rows, the same command tags
and transaction states, and an error exactly where PostgreSQL has one
(42501 from Warden where the stand-in fails). So a reply that belongs to
another message, a lost or doubled reply, a refused statement that ran, or a
dead proxy all fail the test. Afterwards the data is unchanged and the audit
trail still flows.

    WARDEN_SEQ_FUZZ_SECONDS  time budget (default 20)
    WARDEN_SEQ_FUZZ_SEED     first seed (default 20261206); each connection
                             uses seed + its number, printed on failure
    WARDEN_PROXY_BIN         the proxy to attack; tests/run.py's fuzz step
                             points it at an AddressSanitizer build, and this
                             module then also fails on any ASan report.
"""

import glob
import os
import random
import struct
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack, rawpg  # noqa: E402

M = rawpg.message
SECONDS = float(os.environ.get("WARDEN_SEQ_FUZZ_SECONDS", "20"))
SEED = int(os.environ.get("WARDEN_SEQ_FUZZ_SEED", "20261206"))

# (sql, parameter count). Allowed by policy/examples/production.yaml for
# alice in prod; some of them fail in PostgreSQL.
ALLOWED = [
    ("SELECT 1", 0),
    ("SELECT generate_series(1, 3) AS g", 0),
    ("SELECT id, name FROM products ORDER BY id LIMIT 3", 0),
    ("SELECT $1::int + 1 AS x", 1),
    ("SELECT count(*) FROM orders WHERE id = $1::int", 1),
    ("BEGIN", 0),
    ("COMMIT", 0),
    ("ROLLBACK", 0),
    ("SAVEPOINT sp", 0),
    ("ROLLBACK TO SAVEPOINT sp", 0),
    ("CREATE TEMP TABLE IF NOT EXISTS fz (a int)", 0),
    ("INSERT INTO pg_temp.fz VALUES (1), (2)", 0),
    ("SELECT count(*) FROM pg_temp.fz", 0),
    ("DELETE FROM pg_temp.fz", 0),
    # Filtered, and touches no row: the two sessions run side by side and
    # must not wait on each other's row locks.
    ("UPDATE products SET name = name WHERE id = $1::int AND false", 1),
    ("SET application_name = 'fz'", 0),
    ("COPY (SELECT 1 UNION ALL SELECT 2) TO STDOUT", 0),
    ("SELECT 1/0", 0),                          # fails at Execute
    ("SELECT * FROM fz_no_such_table", 0),      # fails at Parse
    ("SELECT $1::int", 1),                      # fails at Bind for 'x'
    ("", 0),                                    # empty query
]
# Refused in prod; each would change data if it ran.
REFUSED = [
    ("DELETE FROM orders", 0),
    ("UPDATE products SET price = 0", 0),
    ("DROP TABLE orders", 0),
    ("TRUNCATE orders", 0),
    ("UPDATE customers SET name = 'x' WHERE $1::boolean", 1),
]
# What the oracle runs instead of a refused statement: PostgreSQL refuses it
# at Parse, where Warden refuses the original.
STAND_IN = "SELECT * FROM warden_refused_stand_in"
STATEMENT_NAMES = [b"", b"s1", b"s2"]
PORTAL_NAMES = [b"", b"p1"]


def cstr(b):
    return b + b"\0"


def bind_msg(portal, statement, params):
    body = cstr(portal) + cstr(statement) + struct.pack("!h", 0)
    body += struct.pack("!h", len(params))
    for p in params:
        body += struct.pack("!i", len(p)) + p
    body += struct.pack("!h", 0)
    return M(b"B", body)


class Generator:
    """One random batch at a time, as two byte strings: what goes through
    Warden, and what goes straight to PostgreSQL (refused statements
    replaced by the stand-in)."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        # Warden's portal shield, mirrored (see ProcessClient in
        # dataplane/session): Execute/Describe/Close of a portal whose Bind
        # is not in the same Sync-delimited part and did not finish without
        # an error, or that a simple Query replaced, is answered by Warden
        # as a portal that does not exist (PostgreSQL 15 can crash on such
        # portals). The oracle then names a portal that does not exist.
        self.sub = 0              # Sync/Query-delimited parts sent so far
        self.portals = {}         # name -> [part of its Bind, tainted]
        self.clean = set()        # parts that finished without an error
        self.pending = []         # parts of the last batch, in order

    def statement(self):
        if self.rng.random() < 0.25:
            return self.rng.choice(REFUSED), True
        return self.rng.choice(ALLOWED), False

    def safe(self, portal):
        origin = self.portals.get(portal)
        if origin is None:
            return True
        part, tainted = origin
        return not tainted and (part == self.sub or part in self.clean)

    def end_part(self):
        self.pending.append(self.sub)
        self.sub += 1

    def message(self):
        """(bytes for Warden, bytes for PostgreSQL, statement text or None);
        keeps the portal bookkeeping in the order the messages go out."""
        r = self.rng
        kind = r.choices(["P", "B", "D", "E", "C", "H", "Q", "copy", "PBE"],
                         weights=[14, 12, 6, 12, 5, 3, 5, 2, 20])[0]
        if kind in ("P", "Q", "PBE"):
            (sql, nparams), refused = self.statement()
            sql_b, alt_b = sql.encode(), (STAND_IN if refused else sql).encode()
            if kind == "Q":
                return M(b"Q", cstr(sql_b)), M(b"Q", cstr(alt_b)), sql
            name = r.choice(STATEMENT_NAMES) if kind == "P" else b""
            p = cstr(name) + cstr(sql_b) + struct.pack("!h", 0)
            pa = cstr(name) + cstr(alt_b) + struct.pack("!h", 0)
            if kind == "P":
                return M(b"P", p), M(b"P", pa), sql
            params = [str(r.choice([1, 2, 0])).encode()] * nparams
            if r.random() < 0.1:
                params = [b"x"] * max(1, nparams)  # wrong value or count
            tail = bind_msg(b"", b"", params)
            self.portals[b""] = [self.sub, False]
            if r.random() < 0.3:
                tail += M(b"D", b"P\0")
            tail += M(b"E", cstr(b"") + struct.pack("!i", r.choice([0, 0, 0, 1])))
            return M(b"P", p) + tail, M(b"P", pa) + tail, sql
        direct = None
        if kind == "B":
            params = [str(r.choice([1, 2])).encode()] * r.choice([0, 0, 1])
            portal = r.choice(PORTAL_NAMES)
            self.portals[portal] = [self.sub, False]
            m = bind_msg(portal, r.choice(STATEMENT_NAMES), params)
        elif kind in ("D", "C"):
            which = r.choice([b"S", b"P"])
            name = r.choice(STATEMENT_NAMES if which == b"S" else PORTAL_NAMES)
            m = M(kind.encode(), which + cstr(name))
            if which == b"P" and not self.safe(name):
                direct = M(kind.encode(), which + cstr(b"fz_no_portal"))
        elif kind == "E":
            portal = r.choice(PORTAL_NAMES)
            rows = struct.pack("!i", r.choice([0, 1, 2]))
            m = M(b"E", cstr(portal) + rows)
            if not self.safe(portal):
                direct = M(b"E", cstr(b"fz_no_portal") + rows)
        elif kind == "H":
            m = M(b"H")
        else:
            m = r.choice([M(b"d", b"stray\n"), M(b"c"), M(b"f", b"stray\0")])
        return m, direct or m, None

    def query_sent(self):
        self.portals[b""] = [self.sub, True]
        self.end_part()

    def batch(self):
        """One batch (ending in end_of_batch's Sync and marker Query)."""
        warden, direct, texts = b"", b"", []
        self.pending = []
        extended = False  # extended messages since the last Sync
        for _ in range(self.rng.randint(1, 8)):
            w, d, sql = self.message()
            if w[:1] == b"Q":
                if extended:
                    # A Query inside an unfinished extended batch ends the
                    # session (test_query_inside_...): Sync first.
                    warden += rawpg.SYNC
                    direct += rawpg.SYNC
                    self.end_part()
                self.query_sent()
                extended = False
            else:
                extended = extended or w[:1] in (b"P", b"B", b"D", b"E", b"C")
            warden += w
            direct += d
            if sql is not None:
                texts.append(sql)
            if self.rng.random() < 0.2:
                warden += rawpg.SYNC
                direct += rawpg.SYNC
                self.end_part()
                extended = False
        self.end_part()   # end_of_batch's Sync
        self.query_sent()  # and its marker Query
        return warden, direct, texts

    def finished(self, replies):
        """PostgreSQL's replies to the last batch: which of its parts
        failed, and where the transaction ended."""
        parts = list(self.pending)
        failed = False
        for t, body in replies:
            if t == b"E":
                failed = True
            elif t == b"Z":
                if not parts:
                    break
                part = parts.pop(0)
                if failed:
                    for origin in self.portals.values():
                        if origin[0] == part:
                            origin[1] = True
                else:
                    self.clean.add(part)
                if body == b"I":
                    for name in [n for n, o in self.portals.items() if o[0] <= part]:
                        del self.portals[name]
                failed = False


def normalize(replies, direct):
    """Replies as comparable tuples: asynchronous messages dropped, errors
    reduced to SQLSTATE; on the direct side the stand-in's 42P01 reads as
    Warden's refusal (42501)."""
    out = []
    for t, body in replies:
        if t in (b"S", b"N", b"A"):
            continue
        if t == b"E":
            f = rawpg.parse_error(body)
            code = f.get("C")
            if direct and code == "42P01" and "warden_refused_stand_in" in f.get("M", ""):
                code = "42501"
            out.append(("E", code))
        else:
            out.append((t.decode(), body))
    return out


# Where Warden's refusal (42501) stands for PostgreSQL's error: 26000 (no
# such prepared statement: a statement Warden refused never existed in
# PostgreSQL, and Warden answers its later Bind or Describe with the refusal
# again, saying why); 25P02 (in an aborted transaction PostgreSQL refuses the
# stand-in before reading it, Warden says why the original was refused).
# Either way it is an error at the same message, and everything up to the
# Sync is skipped alike.
REFUSAL_STANDS_FOR = {"26000", "25P02"}


def same_replies(got, want):
    if len(got) != len(want):
        return False
    return all(g == w or (g == ("E", "42501") and w[0] == "E" and w[1] in REFUSAL_STANDS_FOR)
               for g, w in zip(got, want))


def end_of_batch(marker):
    """Sync, then a query that is a syntax error naming `marker`: its error
    comes in every transaction state (an aborted transaction would refuse a
    SELECT without saying which), from Warden and PostgreSQL alike."""
    return rawpg.SYNC + rawpg.query(marker)


def read_batch(conn, marker):
    """Replies up to the ReadyForQuery after the marker's error."""
    out, seen = [], False
    while True:
        t, body = conn.read_message()
        out.append((t, body))
        if t == b"E" and marker.encode() in body:
            seen = True
        elif t == b"Z" and seen:
            return out


class ProtocolSequences(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-seq-")
        cls.asan_dir = os.path.join(cls.stack.work, "asan")
        os.makedirs(cls.asan_dir)
        # Harmless for a build without ASan; for an ASan build every report
        # lands here and the test fails on it.
        os.environ["ASAN_OPTIONS"] = ("log_path=%s/report:halt_on_error=1:detect_leaks=0"
                                      % cls.asan_dir)
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def direct(self):
        conn = rawpg.RawConn(self.stack.pg.port)
        conn.login("warden_svc", "svc-scram-pw", "shop")
        return conn

    def asan_reports(self):
        out = []
        for path in glob.glob(os.path.join(self.asan_dir, "report*")):
            with open(path, errors="replace") as f:
                out.append(f.read()[:4000])
        return out

    def test_decisions_are_as_the_pool_says(self):
        """The pool is what the production policy says it is, so the
        oracle's stand-ins stand for real refusals."""
        conn = self.stack.raw()
        try:
            for sql, nparams in REFUSED:
                if nparams:
                    continue
                _, error = conn.simple_query(sql)
                self.assertIsNotNone(error, sql)
                self.assertEqual(error["C"], "42501", (sql, error))
            for sql, nparams in ALLOWED:
                if nparams or sql in ("COMMIT", "ROLLBACK", "ROLLBACK TO SAVEPOINT sp"):
                    continue
                _, error = conn.simple_query(sql)
                self.assertNotEqual((error or {}).get("C"), "42501", (sql, error))
                conn.simple_query("ROLLBACK")
        finally:
            conn.close()

    def test_query_inside_an_extended_batch_ends_only_that_session(self):
        """PostgreSQL skips a Query that follows an error in an unfinished
        extended batch and then sends no ReadyForQuery for it, so Warden
        could no longer tell which answer belongs to which message: it
        refuses the sequence with 08P01 and ends that session. The data is
        untouched and another session keeps working."""
        before = self.stack.scalar("SELECT count(*) FROM orders")
        conn = self.stack.raw()
        try:
            conn.send(M(b"P", b"\0SELECT 1/0\0\0\0") + bind_msg(b"", b"", [])
                      + M(b"E", b"\0\0\0\0\0") + rawpg.query("DELETE FROM orders")
                      + rawpg.SYNC)
            replies = conn.read_until_eof()
        finally:
            conn.close()
        errors = rawpg.errors(replies)
        self.assertTrue(errors, replies)
        self.assertEqual(errors[-1]["C"], "08P01", errors)
        self.assertIn("inside an unfinished extended-query batch", errors[-1]["M"])
        self.assertEqual(self.stack.scalar("SELECT count(*) FROM orders"), before)
        other = self.stack.raw()
        try:
            self.assertEqual(other.simple_query("SELECT 5"), ([["5"]], None))
        finally:
            other.close()

    def crash_sequences(self):
        """What crashes a PostgreSQL 15 backend (found by this fuzzer): a
        Query that fails while running inside a transaction block leaves
        the unnamed portal pointing at freed memory, and an Execute of ""
        reads it. The 1 MB of padding makes the freed buffer go back to the
        system, so the crash is certain."""
        execute = M(b"E", b"\0" + struct.pack("!i", 0))
        return {
            "padded": [rawpg.query("BEGIN; ROLLBACK TO SAVEPOINT sp" + " " * 1000000),
                       execute],
            "as found": [rawpg.query("BEGIN"), rawpg.query("ROLLBACK TO SAVEPOINT sp"),
                         rawpg.query("INSERT INTO pg_temp.fz VALUES (1), (2)"),
                         M(b"E", b"\0" + struct.pack("!i", 2))],
            "describe": [rawpg.query("BEGIN; ROLLBACK TO SAVEPOINT sp" + " " * 1000000),
                         M(b"D", b"P\0")],
            # The other route the fuzzer found: a named portal whose Bind
            # failed (a parameter that does not convert) in a transaction.
            "failed bind": [rawpg.query("BEGIN"),
                            M(b"P", b"fb\0SELECT $1::int\0\0\0")
                            + bind_msg(b"p_fb", b"fb", [b"x"]) + rawpg.SYNC,
                            M(b"E", b"p_fb\0" + struct.pack("!i", 2))],
        }

    def test_unnamed_portal_after_a_failed_query_never_reaches_postgres(self):
        """Through Warden each sequence gets 34000 for the portal, the
        session stays usable, and PostgreSQL's backend lives (the oracle:
        the same bytes straight to PostgreSQL kill it, on a throwaway
        server so this stack is not disturbed)."""
        for name, messages in self.crash_sequences().items():
            with self.subTest(name):
                conn = self.stack.raw()
                try:
                    pid = conn.simple_query("SELECT pg_backend_pid()")[0][0][0]
                    replies = []
                    for m in messages:
                        conn.send(m)
                        if m[:1] == b"Q" or m.endswith(rawpg.SYNC):
                            replies += rawpg.read_to_ready(conn)
                    conn.send(rawpg.SYNC)
                    replies += rawpg.read_to_ready(conn)
                    codes = [e["C"] for e in rawpg.errors(replies)]
                    self.assertIn("34000", codes, replies)
                    rows, error = conn.simple_query("ROLLBACK")
                    self.assertIsNone(error)
                    again = conn.simple_query("SELECT pg_backend_pid()")
                    self.assertEqual(again[0], [[pid]], (again, replies))
                finally:
                    conn.close()
        if self.stack.pg.log_file and os.path.exists(self.stack.pg.log_file):
            with open(self.stack.pg.log_file, errors="replace") as f:
                self.assertNotIn("terminated by signal", f.read())

        # The oracle: straight to PostgreSQL, the padded sequence kills the
        # backend (if this ever stops, PostgreSQL fixed it; the shield then
        # only costs a refusal no client notices).
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))
        from pgharness import PostgresServer, setup_sample
        pg = PostgresServer().start()
        try:
            setup_sample(pg)
            conn = rawpg.RawConn(pg.port)
            conn.login("warden_svc", "svc-scram-pw", "shop")
            for m in self.crash_sequences()["padded"]:
                conn.send(m)
            replies = conn.read_until_eof()
            conn.close()
            self.assertFalse(any(t == b"Z" for t, _ in replies[3:]), replies)
        finally:
            pg.stop()

    def test_random_sequences_match_postgres(self):
        before = {t: self.stack.scalar("SELECT count(*) || ':' || coalesce(sum(hashtext(x::text)), 0) "
                                       "FROM %s x" % t)
                  for t in ("orders", "products", "customers")}
        deadline = time.monotonic() + SECONDS
        batches = messages = connections = 0
        n = 0
        while time.monotonic() < deadline:
            seed = SEED + n
            n += 1
            gen = Generator(seed)
            warden, direct = self.stack.raw(), self.direct()
            connections += 1
            try:
                for b in range(gen.rng.randint(3, 25)):
                    w_bytes, d_bytes, texts = gen.batch()
                    marker = "fzend%dx%d" % (seed, b)
                    end = end_of_batch(marker)
                    warden.send(w_bytes + end)
                    direct.send(d_bytes + end)
                    try:
                        got = read_batch(warden, marker)
                    except Exception as e:
                        self.fail("seed %d batch %d: no complete answer from Warden (%r) to "
                                  "statements %r; proxy alive: %s\n%s"
                                  % (seed, b, e, texts, self.stack.proxy.proc.poll() is None,
                                     self.stack.proxy.log()[-3000:]))
                    want = read_batch(direct, marker)
                    gen.finished(want)
                    got_n, want_n = normalize(got, False), normalize(want, True)
                    if not same_replies(got_n, want_n):
                        self.assertEqual(got_n, want_n,
                                         "seed %d batch %d: Warden's replies differ from "
                                         "PostgreSQL's for statements %r (bytes %r)"
                                         % (seed, b, texts, w_bytes[:600]))
                    batches += 1
                    messages += w_bytes.count(b"\0")  # rough, for the log line
            finally:
                warden.close()
                direct.close()
            self.assertIsNone(self.stack.proxy.proc.poll(), self.stack.proxy.log()[-3000:])
        print("protocol sequences: %d connections, %d batches in %.0f s (seeds %d..%d)"
              % (connections, batches, SECONDS, SEED, SEED + n - 1))
        self.assertGreater(batches, 20)
        self.assertEqual(self.asan_reports(), [])
        after = {t: self.stack.scalar("SELECT count(*) || ':' || coalesce(sum(hashtext(x::text)), 0) "
                                      "FROM %s x" % t)
                 for t in ("orders", "products", "customers")}
        self.assertEqual(before, after, "a refused statement changed data")
        # The audit trail still flows after all of that.
        marker = "fz-audit-%d" % time.time_ns()
        conn = self.stack.raw()
        try:
            _, error = conn.simple_query("SELECT '%s'" % marker)
            self.assertIsNone(error)
        finally:
            conn.close()
        self.assertTrue(self.stack.recorded(marker, timeout=30), "audit trail stopped")
        self.assertIsNone(self.stack.proxy.proc.poll(), self.stack.proxy.log()[-3000:])
        self.assertEqual(self.asan_reports(), [])


if __name__ == "__main__":
    unittest.main()
