#!/usr/bin/python3
"""psycopg2 client suite. Connection settings from PG* env vars.

Note: psycopg2 always interpolates parameters client-side and sends the
simple-query protocol (PQexec); it never uses Parse/Bind. Server-side
prepared statements are tested with SQL PREPARE/EXECUTE.
"""

import datetime
import decimal
import io
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suitelib as S  # noqa: E402

import psycopg2  # noqa: E402
import psycopg2.errors  # noqa: E402

SUITE = "psycopg2"
TABLE = "t_psycopg2"


def connect():
    s = S.env_settings()
    kw = dict(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"],
              sslmode=s["sslmode"], connect_timeout=10, application_name="warden-suite-psycopg2")
    if s["password"]:
        kw["password"] = s["password"]
    return psycopg2.connect(**kw)


def case_bind(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT %s::int + %s::int", (2, 3))
        S.eq(cur.fetchone()[0], 5, "2+3")
        cur.execute("SELECT %s::text, length(%s::text)", (S.TRICKY_TEXT, S.TRICKY_TEXT))
        got, n = cur.fetchone()
        S.eq(got, S.TRICKY_TEXT, "text round trip")
        S.eq(n, len(S.TRICKY_TEXT), "server-side char length")
    conn.rollback()


def case_prepared(conn):
    with conn.cursor() as cur:
        cur.execute("PREPARE w_p2 (int, text) AS SELECT $1 * 2, $2 || '!'")
        for i in (1, 2, 3):
            cur.execute("EXECUTE w_p2 (%s, %s)", (i, "x%d" % i))
            S.eq(cur.fetchone(), (i * 2, "x%d!" % i), "execute #%d" % i)
        cur.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = 'w_p2'")
        S.eq(cur.fetchone()[0], 1, "pg_prepared_statements entry")
        cur.execute("DEALLOCATE w_p2")
    conn.commit()


def case_rollback(conn):
    with conn.cursor() as cur:
        cur.execute("DELETE FROM " + TABLE + " WHERE id >= 0")
        conn.commit()
        cur.execute("INSERT INTO " + TABLE + " (id, name) VALUES (1, 'gone')")
        cur.execute("SELECT count(*) FROM " + TABLE)
        S.eq(cur.fetchone()[0], 1, "count inside tx")
        S.eq(conn.get_transaction_status(), psycopg2.extensions.TRANSACTION_STATUS_INTRANS, "tx status")
        conn.rollback()
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
                    (7, None, psycopg2.Binary(S.BYTEA_VALUE), num, ts))
        cur.execute("SELECT name, data, amount, ts, amount::text, "
                    "ts = %s::timestamptz, encode(data, 'hex') FROM " + TABLE + " WHERE id = 7",
                    (S.TS_TEXT,))
        S.check_types_row(cur.fetchone(), num, ts)
    conn.rollback()


def case_copy(conn):
    payload = S.copy_payload(1000)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM " + TABLE + " WHERE id >= 0")
        cur.copy_expert("COPY " + TABLE + " (id, name, amount) FROM STDIN", io.StringIO(payload))
        S.eq(cur.rowcount, 1000, "COPY FROM rowcount")
        cur.execute("SELECT count(*) FROM " + TABLE)
        S.eq(cur.fetchone()[0], 1000, "rows after COPY FROM")
        out = io.StringIO()
        cur.copy_expert("COPY (SELECT id, name, amount FROM " + TABLE + " ORDER BY id) TO STDOUT", out)
        S.eq(out.getvalue() == payload, True, "COPY TO output identical to input")
    conn.commit()


def case_error(conn):
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT 1/0")
            raise S.CaseFailed("no error raised")
        except psycopg2.Error as e:
            S.eq(e.pgcode, "22012", "SQLSTATE")
        S.eq(conn.get_transaction_status(), psycopg2.extensions.TRANSACTION_STATUS_INERROR, "tx status")
        conn.rollback()
        cur.execute("SELECT 40 + %s", (2,))
        S.eq(cur.fetchone()[0], 42, "after error")
    conn.rollback()


def case_cancel(conn):
    timer = threading.Timer(1.0, conn.cancel)
    t0 = time.monotonic()
    timer.start()
    try:
        with conn.cursor() as cur:
            try:
                cur.execute("SELECT pg_sleep(10)")
                raise S.CaseFailed("query was not cancelled (%.1fs)" % (time.monotonic() - t0))
            except psycopg2.Error as e:
                el = time.monotonic() - t0
                S.eq(e.pgcode, "57014", "SQLSTATE")
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
    conn.rollback()


def case_policy(conn):
    """Warden refusals (run with the client-suite policy in front only)."""
    rid = S.policy_row_id()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO items (id, name) VALUES (%s, %s)", (rid, "warden-policy-psycopg2"))
        cur.execute("SELECT count(*) FROM items WHERE id = %s", (rid,))
        S.eq(cur.fetchone()[0], 1, "inserted row inside tx")
        try:
            cur.execute("DELETE FROM items")
            raise S.CaseFailed("unfiltered DELETE was not refused (%d rows deleted)" % cur.rowcount)
        except psycopg2.Error as e:
            S.check_refusal(e.pgcode, e.diag.message_primary, S.RULE_UNFILTERED, "DELETE")
        S.eq(conn.get_transaction_status(), psycopg2.extensions.TRANSACTION_STATUS_INERROR,
             "tx status after refusal")
        try:
            cur.execute("SELECT 1")
            raise S.CaseFailed("aborted transaction accepted a query")
        except psycopg2.Error as e:
            S.eq(e.pgcode, "25P02", "SQLSTATE in aborted tx")
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
            except psycopg2.Error as e:
                S.check_refusal(e.pgcode, e.diag.message_primary, S.RULE_DROP, "DROP TABLE")
            S.eq(conn.get_transaction_status(), psycopg2.extensions.TRANSACTION_STATUS_IDLE,
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
