#!/usr/bin/python3
"""psycopg (v3) client suite. Connection settings from PG* env vars.

psycopg 3 binds parameters server-side over the extended protocol
(Parse/Bind/Execute) and, with prepare=True, uses named server-side
prepared statements. conn.cancel() sends a real CancelRequest.
"""

import datetime
import decimal
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suitelib as S  # noqa: E402

import psycopg  # noqa: E402
from psycopg import pq  # noqa: E402

SUITE = "psycopg3"
TABLE = "t_psycopg3"


def connect():
    s = S.env_settings()
    kw = dict(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"],
              sslmode=s["sslmode"], connect_timeout=10, application_name="warden-suite-psycopg3")
    if s["password"]:
        kw["password"] = s["password"]
    return psycopg.connect(**kw)


def case_bind(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT %s::int + %s::int", (2, 3))
        S.eq(cur.fetchone()[0], 5, "2+3")
        # %b: binary-format parameter as well as a text-format one.
        cur.execute("SELECT %s::text, %b::text, length(%s::text)",
                    (S.TRICKY_TEXT, S.TRICKY_TEXT, S.TRICKY_TEXT))
        got, got_b, n = cur.fetchone()
        S.eq(got, S.TRICKY_TEXT, "text round trip")
        S.eq(got_b, S.TRICKY_TEXT, "binary-param text round trip")
        S.eq(n, len(S.TRICKY_TEXT), "server-side char length")
        # A binary-format result.
        with conn.cursor(binary=True) as bcur:
            bcur.execute("SELECT %s::bigint * 3", (14,))
            S.eq(bcur.fetchone()[0], 42, "binary result")
    conn.rollback()


def case_prepared(conn):
    sql = "SELECT %s::int * 2, %s::text || '!' /* warden prepared */"
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql")
        before = cur.fetchone()[0]
        for i in (1, 2, 3):
            cur.execute(sql, (i, "x%d" % i), prepare=True)
            S.eq(cur.fetchone(), (i * 2, "x%d!" % i), "execute #%d" % i)
        cur.execute("SELECT count(*) FROM pg_prepared_statements "
                    "WHERE NOT from_sql AND statement LIKE '%%warden prepared%%'")
        S.eq(cur.fetchone()[0], 1, "one server-side prepared statement")
        cur.execute("SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql")
        S.check(cur.fetchone()[0] >= before + 1, "prepared statement count did not grow")
    conn.rollback()


def case_rollback(conn):
    with conn.cursor() as cur:
        cur.execute("DELETE FROM " + TABLE + " WHERE id >= 0")
        conn.commit()
        with conn.transaction(force_rollback=True):
            cur.execute("INSERT INTO " + TABLE + " (id, name) VALUES (%s, %s)", (1, "gone"))
            cur.execute("SELECT count(*) FROM " + TABLE)
            S.eq(cur.fetchone()[0], 1, "count inside tx")
            S.eq(conn.info.transaction_status, pq.TransactionStatus.INTRANS, "tx status")
        cur.execute("SELECT count(*) FROM " + TABLE)
        S.eq(cur.fetchone()[0], 0, "count after rollback")
    conn.rollback()


def case_types(conn):
    ts = datetime.datetime(2024, 3, 5, 12, 34, 56, 789012,
                           tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
    num = decimal.Decimal(S.NUMERIC_TEXT)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM " + TABLE + " WHERE id >= 0")
        cur.execute("INSERT INTO " + TABLE + " (id, name, data, amount, ts) VALUES (%s,%s,%s,%s,%s)",
                    (7, None, S.BYTEA_VALUE, num, ts))
        # binary-format parameters too
        cur.execute("INSERT INTO " + TABLE + " (id, name, data, amount, ts) VALUES (%b,%b,%b,%b,%b)",
                    (8, None, S.BYTEA_VALUE, num, ts))
        for binary in (False, True):
            with conn.cursor(binary=binary) as c2:
                c2.execute("SELECT id, name, data, amount, ts, amount::text, "
                           "ts = %s::timestamptz, encode(data, 'hex') FROM " + TABLE +
                           " ORDER BY id", (S.TS_TEXT,))
                rows = c2.fetchall()
                S.eq(len(rows), 2, "rows")
                for (rid, name, data, amount, got_ts, amount_txt, ts_same, hexdata) in rows:
                    what = "row %d binary=%s " % (rid, binary)
                    S.eq(name, None, what + "NULL")
                    S.eq(bytes(data), S.BYTEA_VALUE, what + "bytea")
                    S.eq(hexdata, S.BYTEA_VALUE.hex(), what + "bytea hex on server")
                    S.eq(amount, num, what + "numeric")
                    S.eq(amount_txt, S.NUMERIC_TEXT, what + "numeric text")
                    S.eq(got_ts, ts, what + "timestamptz instant")
                    S.check(ts_same is True, what + "timestamptz not equal server-side")
    conn.rollback()


def case_copy(conn):
    payload = S.copy_payload(1000)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM " + TABLE + " WHERE id >= 0")
        with cur.copy("COPY " + TABLE + " (id, name, amount) FROM STDIN") as cp:
            data = payload.encode()
            for i in range(0, len(data), 4096):   # several CopyData messages
                cp.write(data[i:i + 4096])
        S.eq(cur.rowcount, 1000, "COPY FROM rowcount")
        cur.execute("SELECT count(*) FROM " + TABLE)
        S.eq(cur.fetchone()[0], 1000, "rows after COPY FROM")
        chunks = []
        with cur.copy("COPY (SELECT id, name, amount FROM " + TABLE + " ORDER BY id) TO STDOUT") as cp:
            for chunk in cp:
                chunks.append(bytes(chunk))
        S.eq(b"".join(chunks) == payload.encode(), True, "COPY TO output identical to input")
    conn.commit()


def case_error(conn):
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT 1/0")
            raise S.CaseFailed("no error raised")
        except psycopg.Error as e:
            S.eq(e.sqlstate, "22012", "SQLSTATE")
        S.eq(conn.info.transaction_status, pq.TransactionStatus.INERROR, "tx status")
        conn.rollback()
        cur.execute("SELECT 40 + %s", (2,))
        S.eq(cur.fetchone()[0], 42, "after error")
    conn.rollback()
    # an error on the extended protocol (with parameters), in autocommit mode
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            try:
                cur.execute("SELECT %s::int / 0", (1,))
                raise S.CaseFailed("no error raised (extended)")
            except psycopg.Error as e:
                S.eq(e.sqlstate, "22012", "SQLSTATE (extended)")
            cur.execute("SELECT %s::int + 1", (41,))
            S.eq(cur.fetchone()[0], 42, "after extended error")
    finally:
        conn.autocommit = False


def case_cancel(conn):
    timer = threading.Timer(1.0, conn.cancel)
    t0 = time.monotonic()
    timer.start()
    try:
        with conn.cursor() as cur:
            try:
                cur.execute("SELECT pg_sleep(10)")
                raise S.CaseFailed("query was not cancelled (%.1fs)" % (time.monotonic() - t0))
            except psycopg.Error as e:
                el = time.monotonic() - t0
                S.eq(e.sqlstate, "57014", "SQLSTATE")
                S.check(0.8 <= el < 5, "cancel took %.2fs" % el)
    finally:
        timer.cancel()
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        S.eq(cur.fetchone()[0], 1, "session usable after cancel")
    conn.rollback()


def case_large(conn):
    with conn.cursor() as cur:
        cur.execute(S.LARGE_SQL)
        S.check_large_rows(cur.fetchall())
    # and again streamed through a server-side cursor (DECLARE/FETCH)
    with conn.cursor(name="w_big") as scur:
        scur.itersize = 5000
        scur.execute(S.LARGE_SQL)
        S.check_large_rows(scur)
    conn.rollback()


def case_policy(conn):
    """Warden refusals (run with the client-suite policy in front only).
    The INSERT and the DELETE go over the extended protocol (a bound
    parameter; a binary-format cursor), the DROP over the simple one."""
    rid = S.policy_row_id()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO items (id, name) VALUES (%s, %s)", (rid, "warden-policy-psycopg3"))
        cur.execute("SELECT count(*) FROM items WHERE id = %s", (rid,))
        S.eq(cur.fetchone()[0], 1, "inserted row inside tx")
        with conn.cursor(binary=True) as bcur:
            try:
                bcur.execute("DELETE FROM items")
                raise S.CaseFailed("unfiltered DELETE was not refused (%d rows deleted)" % bcur.rowcount)
            except psycopg.Error as e:
                S.check_refusal(e.sqlstate, e.diag.message_primary, S.RULE_UNFILTERED, "DELETE")
        S.eq(conn.info.transaction_status, pq.TransactionStatus.INERROR, "tx status after refusal")
        try:
            cur.execute("SELECT %s::int", (1,))
            raise S.CaseFailed("aborted transaction accepted a query")
        except psycopg.Error as e:
            S.eq(e.sqlstate, "25P02", "SQLSTATE in aborted tx")
        conn.rollback()
        cur.execute("SELECT count(*) FROM items WHERE id = %s", (rid,))
        S.eq(cur.fetchone()[0], 0, "inserted row after rollback")
    conn.rollback()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            try:
                cur.execute("DROP TABLE items")
                raise S.CaseFailed("DROP TABLE was not refused")
            except psycopg.Error as e:
                S.check_refusal(e.sqlstate, e.diag.message_primary, S.RULE_DROP, "DROP TABLE")
            S.eq(conn.info.transaction_status, pq.TransactionStatus.IDLE,
                 "tx status after refusal in autocommit")
            cur.execute("SELECT to_regclass('public.items') IS NOT NULL")
            S.eq(cur.fetchone()[0], True, "items still exists")
    finally:
        conn.autocommit = False


def main():
    S.run_dbapi_suite(SUITE, connect, TABLE,
                      (case_bind, case_prepared, case_rollback, case_types,
                       case_copy, case_error, case_cancel, case_large, case_policy))


if __name__ == "__main__":
    main()
