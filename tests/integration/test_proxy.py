"""Integration tests: a real PostgreSQL 15 and a real warden-proxy, both
started here on free loopback ports and stopped by PID."""

import base64
import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))
sys.path.insert(0, HERE)

import psycopg  # noqa: E402
import psycopg2  # noqa: E402

from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import PROXY_BIN, WardenProxy, make_ca_and_cert, wait_until  # noqa: E402
import rawpg  # noqa: E402

PG = None
PROXY = None
CERTS = None
RELAY = None
WORK = None


class Relay:
    """A TCP relay in front of PostgreSQL whose connections the test can cut,
    to play an upstream that dies without a word."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut_all(self):
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.conns = []


def proxy_config(pg, certs, relay_port, ports):
    return f"""
proxy:
  workers: 2
  log_level: info
  startup_timeout: 2s
  max_buffered_bytes: 262144
listeners:
  - name: plain
    port: {ports['plain']}
    environment: prod
  - name: tls
    port: {ports['tls']}
    environment: prod
    tls: {{ mode: require, cert_file: {certs['cert']}, key_file: {certs['key']} }}
  - name: password
    port: {ports['password']}
    environment: prod
    auth: password
    tls: {{ mode: require, cert_file: {certs['cert']}, key_file: {certs['key']} }}
  - name: staging
    port: {ports['staging']}
    environment: staging
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
      - name: md5db
        upstream: {{ host: 127.0.0.1, port: {pg.port}, database: shop, user: warden_md5, password: svc-md5-pw, auth: md5 }}
      - name: trustdb
        upstream: {{ host: 127.0.0.1, port: {pg.port}, database: shop, user: warden_trust, auth: trust }}
      - name: wrongauth
        upstream: {{ host: 127.0.0.1, port: {pg.port}, database: shop, user: warden_md5, password: svc-md5-pw, auth: scram-sha-256 }}
      - name: tlsdb
        upstream:
          host: 127.0.0.1
          port: {pg.port}
          database: shop
          user: warden_svc
          password: svc-scram-pw
          tls: {{ mode: verify-full, ca_file: {pg.ssl_cert_file} }}
      - name: tlswrongname
        upstream:
          host: 127.0.0.1
          port: {pg.port}
          database: shop
          user: warden_svc
          password: svc-scram-pw
          tls: {{ mode: verify-full, ca_file: {pg.ssl_cert_file}, server_name: db.example.invalid }}
      - name: relaydb
        upstream: {{ host: 127.0.0.1, port: {relay_port}, database: shop, user: warden_svc, password: svc-scram-pw }}
      - name: deaddb
        upstream: {{ host: 127.0.0.1, port: {free_port()}, database: shop, user: warden_svc, password: svc-scram-pw }}
      - name: namedb
        upstream: {{ host: localhost, port: {pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
      - name: nowheredb
        upstream: {{ host: nowhere.invalid, port: {pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
  - name: staging
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {pg.port}, database: shop_staging, user: warden_svc, password: svc-scram-pw }}
users:
  - name: alice
    password: alice-pw
    groups: [dba]
  - name: bob
    password: bob-pw
    environments: [staging]
"""


def setUpModule():
    global PG, PROXY, CERTS, RELAY, WORK
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    WORK = tempfile.mkdtemp(prefix="warden-it-")
    PG = PostgresServer(ssl=True, extra_conf={"max_connections": "300"})
    PG.start()
    setup_sample(PG)
    CERTS = make_ca_and_cert(os.path.join(WORK, "certs"))
    RELAY = Relay(PG.port)
    ports = {n: free_port() for n in ("plain", "tls", "password", "staging")}
    PROXY = WardenProxy(proxy_config(PG, CERTS, RELAY.port, ports), WORK, ports)
    PROXY.start()


def tearDownModule():
    if PROXY:
        PROXY.stop()
    if PG:
        PG.stop()


def dsn(db="shop", user="alice", password="alice-pw", listener="plain", **extra):
    parts = {"host": "127.0.0.1", "port": PROXY.port(listener), "user": user,
             "password": password, "dbname": db, "connect_timeout": 10}
    if listener == "plain" or listener == "staging":
        parts["sslmode"] = "disable"
    else:
        parts["sslmode"] = "require"
    parts.update(extra)
    return " ".join("%s=%s" % kv for kv in parts.items())


def direct():
    return psycopg2.connect(PG.dsn(user="postgres", dbname="shop"))


def active_statements(marker):
    """Statements running on PostgreSQL whose text contains `marker`."""
    with direct() as d, d.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE %s AND pid <> pg_backend_pid()", ("%" + marker + "%",))
        n = cur.fetchone()[0]
    d.close()
    return n



def assert_alive(test):
    """Other sessions keep working: a fresh session answers a query."""
    with psycopg2.connect(dsn()) as c, c.cursor() as cur:
        cur.execute("SELECT 40 + 2")
        test.assertEqual(cur.fetchone()[0], 42)
    c.close()


class AuthAndRouting(unittest.TestCase):
    def test_upstream_auth_methods(self):
        for db, role in (("shop", "warden_svc"), ("md5db", "warden_md5"), ("trustdb", "warden_trust")):
            with self.subTest(db=db):
                c = psycopg2.connect(dsn(db))
                cur = c.cursor()
                cur.execute("SELECT current_user, count(*) FROM customers")
                self.assertEqual(cur.fetchone(), (role, 10))
                c.close()

    def test_refuses_upstream_auth_downgrade(self):
        # Configured for SCRAM, but the server asks for md5: never answered.
        with self.assertRaises(psycopg2.OperationalError) as ctx:
            psycopg2.connect(dsn("wrongauth"))
        self.assertIn("asked for md5 authentication but Warden is configured for scram-sha-256",
                      str(ctx.exception))

    def test_wrong_password_and_unknown_user_look_alike(self):
        errors = []
        for user, pw in (("alice", "nope"), ("mallory", "nope")):
            with self.assertRaises(psycopg.OperationalError) as ctx:
                psycopg.connect(dsn(user=user, password=pw))
            errors.append(str(ctx.exception))
        for e, user in zip(errors, ("alice", "mallory")):
            self.assertIn('password authentication failed for user "%s"' % user, e)

    def test_mock_salts_do_not_tell_configured_users_from_unknown_ones(self):
        # Two replicas of one configuration sharing proxy.mock_auth_secret_file,
        # and one of them restarted: a configured user's salt (alice, a
        # cleartext password in the config) and an unknown user's mock salt
        # are each the same everywhere, so comparing salts tells nothing.
        secret = os.path.join(WORK, "mock-auth.secret")
        with open(secret, "wb") as f:
            f.write(os.urandom(32))
        proxies = []
        try:
            salts = []
            for name in ("replica-a", "replica-b", "replica-a"):
                ports = {n: free_port() for n in ("plain", "tls", "password", "staging")}
                config = proxy_config(PG, CERTS, RELAY.port, ports).replace(
                    "proxy:\n", "proxy:\n  mock_auth_secret_file: %s\n" % secret, 1)
                os.makedirs(os.path.join(WORK, name), exist_ok=True)
                p = WardenProxy(config, os.path.join(WORK, name), ports).start()
                proxies.append(p)
                salts.append({u: rawpg.scram_salt(p.port("plain"), u)
                              for u in ("alice", "mallory", "nobody")})
                # The configured user still logs in with her password.
                with psycopg.connect(dsn(user="alice", password="alice-pw").replace(
                        "port=%d" % PROXY.port("plain"), "port=%d" % p.port("plain"))) as c:
                    self.assertEqual(c.execute("SELECT 1").fetchone()[0], 1)
                p.stop()
            self.assertEqual(salts[0], salts[1])
            self.assertEqual(salts[0], salts[2])
            self.assertNotEqual(salts[0]["mallory"], salts[0]["nobody"])
            self.assertEqual(len(base64.b64decode(salts[0]["alice"][0])),
                             len(base64.b64decode(salts[0]["mallory"][0])))
            self.assertEqual(salts[0]["alice"][1], salts[0]["mallory"][1])
            # Another secret, other salts: they come from the secret.
            with open(secret, "wb") as f:
                f.write(os.urandom(32))
            ports = {n: free_port() for n in ("plain", "tls", "password", "staging")}
            config = proxy_config(PG, CERTS, RELAY.port, ports).replace(
                "proxy:\n", "proxy:\n  mock_auth_secret_file: %s\n" % secret, 1)
            os.makedirs(os.path.join(WORK, "replica-c"), exist_ok=True)
            p = WardenProxy(config, os.path.join(WORK, "replica-c"), ports).start()
            proxies.append(p)
            self.assertNotEqual(rawpg.scram_salt(p.port("plain"), "mallory"),
                                salts[0]["mallory"])
            self.assertNotEqual(rawpg.scram_salt(p.port("plain"), "alice"),
                                salts[0]["alice"])
        finally:
            for p in proxies:
                p.stop()

    def test_unknown_database(self):
        with self.assertRaises(psycopg2.OperationalError) as ctx:
            psycopg2.connect(dsn("nosuchdb"))
        self.assertIn('database "nosuchdb" does not exist in environment "prod"', str(ctx.exception))

    def test_environment_per_listener(self):
        c = psycopg2.connect(dsn(listener="staging", user="bob", password="bob-pw"))
        cur = c.cursor()
        cur.execute("SELECT current_database()")
        self.assertEqual(cur.fetchone()[0], "shop_staging")
        c.close()
        # bob may not use prod even with the right password.
        with self.assertRaises(psycopg2.OperationalError) as ctx:
            psycopg2.connect(dsn(user="bob", password="bob-pw"))
        self.assertIn('not allowed in environment "prod"', str(ctx.exception))

    def test_upstream_unreachable_is_08006(self):
        with self.assertRaises(psycopg.OperationalError) as ctx:
            psycopg.connect(dsn("deaddb"))
        self.assertIn("cannot connect to the upstream database", str(ctx.exception))

    def test_upstream_by_host_name(self):
        # The proxy's resolver looks the name up; the session connects to
        # what it found.
        with psycopg2.connect(dsn("namedb")) as c, c.cursor() as cur:
            cur.execute("SELECT current_user")
            self.assertEqual(cur.fetchone()[0], "warden_svc")
        c.close()
        # Cancels go to the address the name resolved to.
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.login("alice", "alice-pw", "namedb")
        conn.send(rawpg.query("SELECT pg_sleep(60) /* warden-named-cancel-test */"))
        self.assertTrue(wait_until(lambda: active_statements("warden-named-cancel-test") == 1),
                        "query never started")
        rawpg.send_cancel(PROXY.port("plain"), conn.backend_key[0], conn.backend_key[1])
        self.assertTrue(wait_until(lambda: active_statements("warden-named-cancel-test") == 0),
                        "the cancel did not reach the upstream found by name")
        conn.close()

    def test_upstream_host_that_does_not_resolve(self):
        # .invalid never resolves (RFC 6761): the lookup's error, not a hang.
        with self.assertRaises(psycopg.OperationalError) as ctx:
            psycopg.connect(dsn("nowheredb"))
        self.assertIn("cannot resolve upstream host 'nowhere.invalid'", str(ctx.exception))

    def test_replication_connections_refused(self):
        with self.assertRaises(psycopg2.OperationalError) as ctx:
            psycopg2.connect(dsn(replication="database"))
        self.assertIn("replication connections are not supported", str(ctx.exception))


class Tls(unittest.TestCase):
    def test_tls_listener_refuses_plaintext(self):
        with self.assertRaises(psycopg2.OperationalError) as ctx:
            psycopg2.connect(dsn(listener="tls", sslmode="disable"))
        self.assertIn("requires TLS", str(ctx.exception))

    def test_verify_full_client_and_upstream(self):
        c = psycopg2.connect(dsn("tlsdb", listener="tls", sslmode="verify-full",
                                 sslrootcert=CERTS["ca"], host="localhost"))
        cur = c.cursor()
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        self.assertTrue(cur.fetchone()[0], "upstream connection should be TLS")
        c.close()

    def test_upstream_name_mismatch_fails_closed(self):
        with self.assertRaises(psycopg2.OperationalError) as ctx:
            psycopg2.connect(dsn("tlswrongname"))
        self.assertIn("TLS with the upstream database failed", str(ctx.exception))

    def test_cleartext_password_only_over_tls(self):
        c = psycopg2.connect(dsn(listener="password"))
        cur = c.cursor()
        cur.execute("SELECT 1")
        self.assertEqual(cur.fetchone()[0], 1)
        c.close()
        with self.assertRaises(psycopg2.OperationalError):
            psycopg2.connect(dsn(listener="password", password="bad"))


class Protocol(unittest.TestCase):
    def test_pipelined_extended_protocol(self):
        with psycopg.connect(dsn(), autocommit=True) as c:
            c.execute("CREATE TEMP TABLE p (i int)")
            with c.pipeline():
                for i in range(200):
                    c.execute("INSERT INTO p VALUES (%s)", (i,))
                cur = c.execute("SELECT count(*), sum(i) FROM p")
            self.assertEqual(cur.fetchone(), (200, sum(range(200))))

    def test_raw_pipeline_many_messages_before_sync(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.login("alice", "alice-pw", "shop")
        batch = b""
        for i in range(100):
            batch += rawpg.message(b"P", b"\0SELECT $1::int * 2\0\0\0")
            batch += rawpg.message(b"B", b"\0\0\0\0\0\1" + struct.pack("!i", len(str(i))) + str(i).encode() + b"\0\0")
            batch += rawpg.message(b"E", b"\0" + struct.pack("!i", 0))
        batch += rawpg.message(b"S")
        conn.send(batch)
        values = []
        while True:
            t, body = conn.read_message()
            if t == b"D":
                ln = struct.unpack("!i", body[2:6])[0]
                values.append(int(body[6:6 + ln]))
            if t == b"E":
                self.fail(rawpg.parse_error(body))
            if t == b"Z":
                break
        self.assertEqual(values, [2 * i for i in range(100)])
        conn.close()

    def test_notify_reaches_listener(self):
        listener = psycopg2.connect(dsn())
        listener.autocommit = True
        listener.cursor().execute("LISTEN warden_events")
        sender = psycopg2.connect(dsn())
        sender.autocommit = True
        sender.cursor().execute("NOTIFY warden_events, 'hello'")
        deadline = time.time() + 5
        got = []
        while time.time() < deadline and not got:
            listener.poll()
            got = [n.payload for n in listener.notifies]
            time.sleep(0.05)
        self.assertEqual(got, ["hello"])
        listener.close()
        sender.close()

    def test_parameter_status_follows_set(self):
        c = psycopg2.connect(dsn())
        c.autocommit = True
        c.cursor().execute("SET application_name = 'warden-it'")
        self.assertEqual(c.get_parameter_status("application_name"), "warden-it")
        self.assertTrue(c.get_parameter_status("server_version").startswith("15"))
        c.close()

    def test_backend_key_is_the_proxys(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.login("alice", "alice-pw", "shop")
        rows, _ = conn.simple_query("SELECT pg_backend_pid()")
        self.assertNotEqual(conn.backend_key[0], int(rows[0][0]))
        # A cancel with the right pid but a wrong secret does nothing.
        rawpg.send_cancel(PROXY.port("plain"), conn.backend_key[0], conn.backend_key[1] ^ 1)
        rows, error = conn.simple_query("SELECT pg_sleep(0.3), 1")
        self.assertIsNone(error)
        conn.close()

    def test_client_disconnect_cancels_upstream_query(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.login("alice", "alice-pw", "shop")
        conn.send(rawpg.query("SELECT pg_sleep(60) /* warden-disconnect-test */"))
        self.assertTrue(wait_until(lambda: active_statements("warden-disconnect-test") == 1),
                        "query never started")
        conn.close()
        self.assertTrue(wait_until(lambda: active_statements("warden-disconnect-test") == 0),
                        "upstream query still running after the client left")

    def test_upstream_death_gives_08006(self):
        c = psycopg.connect(dsn("relaydb"), autocommit=True)
        c.execute("SELECT 1")
        RELAY.cut_all()
        with self.assertRaises(psycopg.OperationalError) as ctx:
            c.execute("SELECT 1")
        # The FATAL arrives while the client is idle; libpq reports it with the
        # next command (its SQLSTATE is checked on the raw protocol below).
        self.assertIn("lost the connection to the upstream database", str(ctx.exception))
        assert_alive(self)

    def test_upstream_death_mid_query_raw_08006(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.login("alice", "alice-pw", "relaydb")
        conn.send(rawpg.query("SELECT pg_sleep(30) /* warden-cut-test */"))
        self.assertTrue(wait_until(lambda: active_statements("warden-cut-test") == 1),
                        "query never started")
        RELAY.cut_all()
        messages = conn.read_until_eof()
        errors = [rawpg.parse_error(b) for t, b in messages if t == b"E"]
        self.assertEqual([(e["S"], e["C"]) for e in errors], [("FATAL", "08006")])
        assert_alive(self)

    def test_upstream_admin_shutdown_is_forwarded(self):
        c = psycopg.connect(dsn(), autocommit=True)
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        d = direct()
        d.autocommit = True
        d.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
        d.close()
        with self.assertRaises(psycopg.OperationalError) as ctx:
            for _ in range(20):
                c.execute("SELECT 1")
                time.sleep(0.05)
        self.assertIn("terminating connection due to administrator command",
                      str(ctx.exception))


class BadInput(unittest.TestCase):
    def expect_protocol_error(self, conn, sqlstate="08P01"):
        messages = conn.read_until_eof()
        errors = [rawpg.parse_error(b) for t, b in messages if t == b"E"]
        self.assertTrue(errors, "expected an ErrorResponse before close, got %r" % messages)
        self.assertEqual(errors[-1]["C"], sqlstate)
        return errors[-1]

    def test_garbage_before_startup(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.expect_protocol_error(conn)
        assert_alive(self)

    def test_2gb_startup_length(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.send(struct.pack("!i", 0x7FFFFFFF) + b"\0\3\0\0")
        self.expect_protocol_error(conn)

    def test_truncated_startup_times_out(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.send(struct.pack("!i", 100) + b"\0\3\0\0user\0")
        err = self.expect_protocol_error(conn, sqlstate="57014")
        self.assertIn("timeout", err["M"])
        assert_alive(self)

    def test_truncated_startup_then_close(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.send(struct.pack("!i", 100) + b"\0\3")
        conn.close()
        assert_alive(self)

    def test_2gb_message_after_login(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.login("alice", "alice-pw", "shop")
        conn.send(b"Q" + struct.pack("!i", 0x7FFFFFFF))
        err = self.expect_protocol_error(conn)
        self.assertIn("limit", err["M"])
        assert_alive(self)

    def test_large_message_before_authentication_refused(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.send(rawpg.startup_packet({"user": "alice", "database": "shop"}))
        t, _ = conn.read_message()
        self.assertEqual(t, b"R")  # AuthenticationSASL
        conn.send(b"p" + struct.pack("!i", 1 << 20))  # 1 MiB "password"
        err = self.expect_protocol_error(conn)
        self.assertIn("limit", err["M"])
        assert_alive(self)

    def test_unknown_message_type_after_login(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.login("alice", "alice-pw", "shop")
        conn.send(rawpg.message(b"\x07", b"junk"))
        self.expect_protocol_error(conn)

    def test_malformed_bind_is_not_forwarded(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.login("alice", "alice-pw", "shop")
        # Bind claiming 5 parameters but carrying none.
        conn.send(rawpg.message(b"B", b"\0\0\0\0\0\5"))
        self.expect_protocol_error(conn)

    def test_data_after_sslrequest_refused(self):
        conn = rawpg.RawConn(PROXY.port("tls"))
        conn.send(struct.pack("!ii", 8, 80877103) + rawpg.query("SELECT 1"))
        self.expect_protocol_error(conn)

    def test_slow_reader_is_bounded(self):
        conn = rawpg.RawConn(PROXY.port("plain"))
        conn.login("alice", "alice-pw", "shop")
        rss_before = PROXY.rss_kib()
        # ~300 MB of result that the client does not read for a while.
        conn.send(rawpg.query("SELECT repeat('x', 1000) FROM generate_series(1, 300000)"))
        time.sleep(3)
        growth = PROXY.rss_kib() - rss_before
        assert_alive(self)
        self.assertLess(growth, 32 * 1024, "proxy buffered %d KiB for a stalled client" % growth)
        rows = 0
        conn.sock.settimeout(60)
        while True:
            t, body = conn.read_message()
            if t == b"D":
                rows += 1
            elif t == b"Z":
                break
        self.assertEqual(rows, 300000)
        conn.close()

    def test_thousands_of_idle_connections(self):
        # From 12 addresses: one address may hold at most
        # max_pending_logins_per_address (256) that have not logged in
        # (tests/security/test_pending_logins.py); 127.0.0.1 holds none.
        socks = []
        try:
            for i in range(3000):
                socks.append(socket.create_connection(
                    ("127.0.0.1", PROXY.port("plain")), timeout=5,
                    source_address=("127.0.0.%d" % (2 + i // 250), 0)))
            assert_alive(self)
        finally:
            for s in socks:
                s.close()
        assert_alive(self)

    def test_max_client_connections(self):
        port = free_port()
        cfg = f"""
proxy: {{ max_client_connections: 2 }}
listeners: [{{ name: l, port: {port}, environment: prod }}]
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {PG.port}, database: shop, user: warden_trust, auth: trust }}
users: [{{ name: alice, password: alice-pw }}]
"""
        with WardenProxy(cfg, tempfile.mkdtemp(prefix="warden-max-"), {"l": port}) as p:
            held = [psycopg2.connect(host="127.0.0.1", port=port, user="alice",
                                     password="alice-pw", dbname="shop", sslmode="disable")
                    for _ in range(2)]
            with self.assertRaises(psycopg2.OperationalError) as ctx:
                psycopg2.connect(host="127.0.0.1", port=port, user="alice", password="alice-pw",
                                 dbname="shop", sslmode="disable")
            self.assertIn("too many clients", str(ctx.exception))
            for c in held:
                c.close()


class Shutdown(unittest.TestCase):
    def test_sigterm_tells_clients_and_cancels_statements(self):
        port = free_port()
        cfg = f"""
listeners: [{{ name: l, port: {port}, environment: prod }}]
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {PG.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
users: [{{ name: alice, password: alice-pw }}]
"""
        proxy = WardenProxy(cfg, tempfile.mkdtemp(prefix="warden-stop-"), {"l": port}).start()
        try:
            idle = rawpg.RawConn(port)
            idle.login("alice", "alice-pw", "shop")
            busy = rawpg.RawConn(port)
            busy.login("alice", "alice-pw", "shop")
            busy.send(rawpg.query("SELECT pg_sleep(60) /* warden-shutdown-test */"))
            # Running on PostgreSQL before the proxy stops (else a proxy
            # that never cancels would pass: nothing to cancel).
            self.assertTrue(wait_until(lambda: active_statements("warden-shutdown-test") == 1),
                            "statement never started")
            started = time.time()
            proxy.stop()
            self.assertLess(time.time() - started, 8)
            for conn in (idle, busy):
                errors = [rawpg.parse_error(b) for t, b in conn.read_until_eof() if t == b"E"]
                self.assertEqual(errors[-1]["C"], "57P01")
                self.assertIn("shutting down", errors[-1]["M"])
            self.assertTrue(wait_until(lambda: active_statements("warden-shutdown-test") == 0),
                            "statement still running after the proxy stopped")
        finally:
            proxy.stop()


class Config(unittest.TestCase):
    def check(self, text):
        d = tempfile.mkdtemp(prefix="warden-cfg-")
        path = os.path.join(d, "proxy.yaml")
        with open(path, "w") as f:
            f.write(text)
        return subprocess.run([PROXY_BIN, "--config", path, "--check"],
                              capture_output=True, text=True, timeout=30)

    def test_invalid_config_names_line_and_column(self):
        r = self.check("listeners:\n  - name: a\n    port: nope\n    environment: prod\n"
                       "environments:\n  - name: prod\n    databases:\n      - name: db\n"
                       "        upstream: { database: x, user: u, password: p, tls_mod: on }\n")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("proxy.yaml:3:11: listeners[0].port: expected an integer", r.stderr)
        self.assertIn("unknown key 'tls_mod'", r.stderr)

    def test_valid_config_passes_check(self):
        r = self.check(PROXY.config_yaml)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
