#!/usr/bin/python3
"""SQLAlchemy 1.4 (psycopg2 dialect) client suite. Settings from PG* env vars.

The psycopg2 dialect interpolates parameters client-side (simple protocol);
server-side prepared statements are tested with SQL PREPARE/EXECUTE. COPY
goes through engine.raw_connection() (psycopg2 copy_expert). The large
result is streamed with stream_results=True (a psycopg2 named cursor, i.e.
DECLARE/FETCH inside a transaction).
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

import psycopg2.extensions  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import URL  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

SUITE = "sqlalchemy"
TABLE = "t_sqlalchemy"

metadata = sa.MetaData()
items = sa.Table(
    TABLE, metadata,
    sa.Column("id", sa.Integer),
    sa.Column("name", sa.Text),
    sa.Column("data", sa.LargeBinary),
    sa.Column("amount", sa.Numeric),
    sa.Column("ts", sa.DateTime(timezone=True)),
    prefixes=["TEMPORARY"],
)
# The sample database's shared `items` table (never created or dropped here:
# policy_refusal only tries to).
shop = sa.MetaData()
shop_items = sa.Table("items", shop, sa.Column("id", sa.Integer), sa.Column("name", sa.Text))


def make_engine():
    s = S.env_settings()
    url = URL.create("postgresql+psycopg2", username=s["user"], password=s["password"],
                     host=s["host"], port=s["port"], database=s["dbname"],
                     query={"sslmode": s["sslmode"]})
    return sa.create_engine(url, future=True, poolclass=NullPool,
                            connect_args={"connect_timeout": 10,
                                          "application_name": "warden-suite-sqlalchemy"})


def case_bind(conn):
    r = conn.execute(sa.text("SELECT CAST(:a AS int) + CAST(:b AS int)"), {"a": 2, "b": 3})
    S.eq(r.scalar_one(), 5, "2+3")
    r = conn.execute(sa.select(sa.literal(S.TRICKY_TEXT, sa.Text),
                               sa.func.length(sa.literal(S.TRICKY_TEXT, sa.Text))))
    got, n = r.one()
    S.eq(got, S.TRICKY_TEXT, "text round trip")
    S.eq(n, len(S.TRICKY_TEXT), "server-side char length")
    conn.rollback()


def case_prepared(conn):
    conn.exec_driver_sql("PREPARE w_psa (int, text) AS SELECT $1 * 2, $2 || '!'")
    for i in (1, 2, 3):
        r = conn.execute(sa.text("EXECUTE w_psa (:i, :t)"), {"i": i, "t": "x%d" % i})
        S.eq(tuple(r.one()), (i * 2, "x%d!" % i), "execute #%d" % i)
    n = conn.execute(sa.text("SELECT count(*) FROM pg_prepared_statements WHERE name = 'w_psa'")).scalar()
    S.eq(n, 1, "pg_prepared_statements entry")
    conn.exec_driver_sql("DEALLOCATE w_psa")
    conn.commit()


def case_rollback(conn):
    conn.execute(items.delete().where(items.c.id >= 0))
    conn.commit()
    tx = conn.begin()
    conn.execute(items.insert(), {"id": 1, "name": "gone"})
    S.eq(conn.execute(sa.select(sa.func.count()).select_from(items)).scalar(), 1, "count inside tx")
    S.check(conn.in_transaction(), "not in transaction")
    tx.rollback()
    S.eq(conn.execute(sa.select(sa.func.count()).select_from(items)).scalar(), 0, "count after rollback")
    conn.rollback()


def case_types(conn):
    ts = datetime.datetime(2024, 3, 5, 12, 34, 56, 789012,
                           tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
    num = decimal.Decimal(S.NUMERIC_TEXT)
    conn.execute(items.delete().where(items.c.id >= 0))
    conn.execute(items.insert(), {"id": 7, "name": None, "data": S.BYTEA_VALUE, "amount": num, "ts": ts})
    row = conn.execute(sa.select(
        items.c.name, items.c.data, items.c.amount, items.c.ts,
        sa.cast(items.c.amount, sa.Text),
        items.c.ts == sa.cast(sa.literal(S.TS_TEXT), sa.DateTime(timezone=True)),
        sa.func.encode(items.c.data, "hex"),
    ).where(items.c.id == 7)).one()
    S.check_types_row(row, num, ts)
    conn.rollback()


def case_copy(engine):
    payload = S.copy_payload(1000)
    raw = engine.raw_connection()   # psycopg2 connection (pool proxy)
    try:
        cur = raw.cursor()
        cur.execute("CREATE TEMP TABLE t_sqlalchemy_copy (id int, name text, amount numeric)")
        cur.copy_expert("COPY t_sqlalchemy_copy (id, name, amount) FROM STDIN", io.StringIO(payload))
        S.eq(cur.rowcount, 1000, "COPY FROM rowcount")
        cur.execute("SELECT count(*) FROM t_sqlalchemy_copy")
        S.eq(cur.fetchone()[0], 1000, "rows after COPY FROM")
        out = io.StringIO()
        cur.copy_expert("COPY (SELECT id, name, amount FROM t_sqlalchemy_copy ORDER BY id) TO STDOUT", out)
        S.eq(out.getvalue() == payload, True, "COPY TO output identical to input")
        raw.commit()
        cur.close()
    finally:
        raw.close()


def case_error(conn):
    try:
        conn.execute(sa.text("SELECT 1/0"))
        raise S.CaseFailed("no error raised")
    except sa.exc.DBAPIError as e:
        S.eq(getattr(e.orig, "pgcode", None), "22012", "SQLSTATE")
    conn.rollback()
    S.eq(conn.execute(sa.text("SELECT 40 + :x"), {"x": 2}).scalar(), 42, "after error")
    conn.rollback()


def case_cancel(conn):
    dbapi_conn = conn.connection.dbapi_connection
    timer = threading.Timer(1.0, dbapi_conn.cancel)
    t0 = time.monotonic()
    timer.start()
    try:
        try:
            conn.execute(sa.text("SELECT pg_sleep(10)"))
            raise S.CaseFailed("query was not cancelled (%.1fs)" % (time.monotonic() - t0))
        except sa.exc.DBAPIError as e:
            el = time.monotonic() - t0
            S.eq(getattr(e.orig, "pgcode", None), "57014", "SQLSTATE")
            S.check(0.8 <= el < 5, "cancel took %.2fs" % el)
    finally:
        timer.cancel()
    conn.rollback()
    S.eq(conn.execute(sa.text("SELECT 1")).scalar(), 1, "session usable after cancel")
    conn.rollback()


def case_large(conn):
    # Statement-level options: Connection.execution_options() would change the
    # (future-mode) connection itself and stream every later statement too.
    r = conn.execute(sa.text(S.LARGE_SQL).execution_options(stream_results=True, yield_per=5000))
    S.check_large_rows(r)
    conn.rollback()
    r = conn.execute(sa.text(S.LARGE_SQL))
    S.check_large_rows(r.all())
    conn.rollback()


def case_policy(conn):
    """Warden refusals (run with the client-suite policy in front only)."""
    rid = S.policy_row_id()
    dbapi_conn = conn.connection.dbapi_connection
    by_id = sa.select(sa.func.count()).select_from(shop_items).where(shop_items.c.id == rid)
    conn.rollback()
    tx = conn.begin()
    conn.execute(shop_items.insert(), {"id": rid, "name": "warden-policy-sqlalchemy"})
    S.eq(conn.execute(by_id).scalar(), 1, "inserted row inside tx")
    try:
        conn.execute(shop_items.delete())
        raise S.CaseFailed("unfiltered DELETE was not refused")
    except sa.exc.DBAPIError as e:
        S.check_refusal(getattr(e.orig, "pgcode", None), e.orig.diag.message_primary,
                        S.RULE_UNFILTERED, "DELETE")
    S.eq(dbapi_conn.get_transaction_status(), psycopg2.extensions.TRANSACTION_STATUS_INERROR,
         "tx status after refusal")
    try:
        conn.execute(sa.text("SELECT 1"))
        raise S.CaseFailed("aborted transaction accepted a query")
    except sa.exc.DBAPIError as e:
        S.eq(getattr(e.orig, "pgcode", None), "25P02", "SQLSTATE in aborted tx")
    tx.rollback()
    S.eq(conn.execute(by_id).scalar(), 0, "inserted row after rollback")
    conn.rollback()
    conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        try:
            shop_items.drop(conn, checkfirst=False)
            raise S.CaseFailed("DROP TABLE was not refused")
        except sa.exc.DBAPIError as e:
            S.check_refusal(getattr(e.orig, "pgcode", None), e.orig.diag.message_primary,
                            S.RULE_DROP, "DROP TABLE")
        S.check(sa.inspect(conn).has_table("items"), "items no longer exists")
    finally:
        conn.rollback()
        conn.execution_options(isolation_level=conn.default_isolation_level)


def main():
    suite = S.Suite(SUITE)
    try:
        engine = make_engine()
        conn = engine.connect()
        conn.exec_driver_sql("SET statement_timeout = '60s'")
        metadata.create_all(conn)
        conn.commit()
    except Exception as e:
        suite.fail_all("connect/setup: %s" % str(e).strip().replace("\n", " | "))
        suite.exit()
    fns = (case_bind, case_prepared, case_rollback, case_types,
           case_copy, case_error, case_cancel, case_large, case_policy)
    for name, fn in zip(S.CASES, fns):
        suite.run(name, fn, engine if fn is case_copy else conn)
        try:
            conn.rollback()
        except Exception:
            pass
    conn.close()
    engine.dispose()
    suite.exit()


if __name__ == "__main__":
    main()
