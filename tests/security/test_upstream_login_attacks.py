"""The proxy's own login to its upstream, attacked (issue 14). A fake
upstream (a socket server on 127.0.0.1 speaking just enough of the
protocol) stands where the database should be, and tries to take the
service password or to be taken for the database: it asks for a cleartext
password or md5 when SCRAM is configured, offers no SCRAM, lets Warden in
without SCRAM, skips SCRAM's final server signature, or sends a wrong one.
Each is refused with the reason, and no password message ever reaches it.
Then the cancel test, against a running pg_sleep: a CancelRequest with a
wrong secret does not cancel it, the right one does. Real warden-proxy and
PostgreSQL 15 for the cancel test."""

import base64
import os
import socket
import struct
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import rawpg  # noqa: E402
from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy  # noqa: E402


def msg(t, body=b""):
    return t + struct.pack("!i", len(body) + 4) + body


def auth(code, data=b""):
    return msg(b"R", struct.pack("!i", code) + data)


class FakeUpstream:
    """Accepts connections and runs `script(conn)` on each; records every
    message type the proxy sent after its startup packet."""

    def __init__(self, script):
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def read_exact(self, conn, n):
        out = b""
        while len(out) < n:
            chunk = conn.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    def read_message(self, conn):
        header = self.read_exact(conn, 5)
        body = self.read_exact(conn, struct.unpack("!i", header[1:])[0] - 4)
        self.received.append(header[:1])
        return header[:1], body

    def handle(self, conn):
        try:
            conn.settimeout(10)
            n = struct.unpack("!i", self.read_exact(conn, 4))[0]
            self.read_exact(conn, n - 4)  # startup packet
            self.script(self, conn)
            # Whatever else the proxy sends is recorded until it closes.
            while True:
                self.read_message(conn)
        except (EOFError, OSError, socket.timeout):
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def sasl_server_first(fake, conn):
    """Offers SCRAM, reads client-first, answers server-first; returns the
    client's nonce."""
    conn.sendall(auth(10, b"SCRAM-SHA-256\0\0"))
    t, body = fake.read_message(conn)
    assert t == b"p", t
    mech_end = body.index(b"\0")
    first = body[mech_end + 5:].decode()
    client_nonce = dict(kv.split("=", 1) for kv in first.split(",")[2:])["r"]
    nonce = client_nonce + "fakeserver"
    salt = base64.b64encode(b"0123456789abcdef").decode()
    conn.sendall(auth(11, ("r=%s,s=%s,i=4096" % (nonce, salt)).encode()))
    fake.read_message(conn)  # client-final (a proof, not the password)


SCENARIOS = {
    "cleartext password asked": (lambda f, c: c.sendall(auth(3)), "cleartext password"),
    "md5 asked": (lambda f, c: c.sendall(auth(5, b"salt")), "md5"),
    "no SCRAM offered": (lambda f, c: c.sendall(auth(10, b"SCRAM-SHA-1\0\0")),
                         "did not offer SCRAM-SHA-256"),
    "let in without SCRAM": (lambda f, c: c.sendall(auth(0) + msg(b"Z", b"I")),
                             "without SCRAM-SHA-256"),
    "no server signature": (lambda f, c: (sasl_server_first(f, c), c.sendall(auth(0)))[-1],
                            "skipped SCRAM's final server signature"),
    "wrong server signature": (
        lambda f, c: (sasl_server_first(f, c),
                      c.sendall(auth(12, b"v=" + base64.b64encode(b"x" * 32))))[-1],
        "SCRAM signature is wrong"),
}


class UpstreamLoginAttacks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = __import__("tempfile").mkdtemp(prefix="warden-sec-upstream-")
        cls.fakes = {name: FakeUpstream(script) for name, (script, _) in SCENARIOS.items()}
        cls.pg = PostgresServer().start()
        setup_sample(cls.pg)
        cls.port = free_port()
        dbs = "\n".join(
            "      - { name: db%d, upstream: { host: 127.0.0.1, port: %d, database: shop, "
            "user: warden_svc, password: svc-scram-pw } }" % (i, f.port)
            for i, f in enumerate(cls.fakes.values()))
        config = f"""
proxy: {{ workers: 1, log_level: info }}
listeners:
  - {{ name: main, port: {cls.port}, environment: prod }}
environments:
  - name: prod
    databases:
{dbs}
      - {{ name: shop, upstream: {{ host: 127.0.0.1, port: {cls.pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }} }}
users:
  - {{ name: alice, password: alice-pw }}
"""
        cls.proxy = WardenProxy(config, cls.work, {"main": cls.port}).start()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        for f in cls.fakes.values():
            f.close()
        cls.pg.stop()

    def test_a_fake_upstream_gets_no_password_and_no_session(self):
        for i, (name, (_, reason)) in enumerate(SCENARIOS.items()):
            with self.subTest(scenario=name):
                fake = self.fakes[name]
                conn = rawpg.RawConn(self.port)
                try:
                    with self.assertRaises(RuntimeError) as refused:
                        conn.login("alice", "alice-pw", "db%d" % i)
                finally:
                    conn.close()
                fields = refused.exception.args[0]
                self.assertEqual(fields.get("C"), "08004", fields)
                self.assertIn(reason, fields.get("M", ""))
                time.sleep(0.2)
                # The proxy never sent a password message in the clear or
                # as md5 (a SCRAM exchange's messages carry no password).
                if name in ("cleartext password asked", "md5 asked", "no SCRAM offered",
                            "let in without SCRAM"):
                    self.assertNotIn(b"p", fake.received, name)
                # And never a query.
                self.assertNotIn(b"Q", fake.received, name)
                self.assertNotIn(b"P", fake.received, name)

    def test_cancel_needs_the_right_secret_against_a_running_statement(self):
        conn = rawpg.RawConn(self.port)
        try:
            conn.login("alice", "alice-pw", "shop")
            pid, secret = conn.backend_key
            conn.send(rawpg.query("SELECT pg_sleep(3)"))
            time.sleep(0.5)
            started = time.time()
            rawpg.send_cancel(self.port, pid, secret ^ 0x5a5a5a5a)
            rawpg.send_cancel(self.port, pid + 1, secret)
            replies = rawpg.read_to_ready(conn)
            self.assertGreater(time.time() - started, 2.0)  # it ran to the end
            self.assertFalse([r for r in replies if r[0] == b"E"], replies)
            # The right secret cancels it.
            conn.send(rawpg.query("SELECT pg_sleep(30)"))
            time.sleep(0.5)
            started = time.time()
            rawpg.send_cancel(self.port, pid, secret)
            replies = rawpg.read_to_ready(conn)
            self.assertLess(time.time() - started, 10)
            errors = [rawpg.parse_error(b) for t, b in replies if t == b"E"]
            self.assertEqual(errors[0]["C"], "57014", errors)
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
