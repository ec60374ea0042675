"""Identity from an OpenID Connect provider, end to end with real
processes: a fake identity provider (keys made by the test), PostgreSQL 15,
and a warden-proxy whose TLS listener takes the provider's tokens as the
password. psycopg2 connects as a real client would. Valid tokens map to the
user and groups the policy sees; every kind of bad token is refused with
SQLSTATE 28000 and says why; rotated keys are picked up."""

import os
import sys
import tempfile
import time
import unittest

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

from fakeidp import FakeIdp  # noqa: E402
from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, make_ca_and_cert  # noqa: E402
sys.path.insert(0, HERE)
import rawpg  # noqa: E402

POLICY = """apiVersion: warden/v1
kind: Policy
metadata: { name: idp-groups }
spec:
  environments: [prod]
  rules:
    - name: contractors-read-only
      match: { identity: { groups: [contractors] }, classes: [write, ddl] }
      action: deny
      message: contractors may only read
"""


class OidcTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="warden-identity-")
        cls.proxy = None
        cls.pg = PostgresServer()
        try:
            cls.pg.start()
            setup_sample(cls.pg)
            cls.certs = make_ca_and_cert(os.path.join(cls.work, "tls"))
            cls.idp = FakeIdp()
            cls.jwks = os.path.join(cls.work, "idp-jwks.json")
            cls.idp.write_jwks(cls.jwks)
            with open(os.path.join(cls.work, "policy.yaml"), "w") as f:
                f.write(POLICY)
            cls.port = free_port()
            config = f"""
proxy: {{ workers: 1, log_level: info }}
policy: {{ paths: [policy.yaml] }}
identity_providers:
  - name: testidp
    issuer: {cls.idp.issuer}
    audiences: [{cls.idp.audience}]
    jwks_file: {cls.jwks}
    groups_claims: [groups, roles]
    clock_skew: 30s
    max_token_lifetime: 12h
listeners:
  - name: main
    port: {cls.port}
    environment: prod
    auth: oidc
    tls: {{ mode: require, cert_file: {cls.certs['cert']}, key_file: {cls.certs['key']} }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {cls.pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
"""
            cls.proxy = WardenProxy(config, cls.work, {"main": cls.port}).start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.proxy:
            cls.proxy.stop()
        cls.pg.stop()

    def connect(self, user, token, sslmode="verify-full"):
        return psycopg2.connect(host="localhost", port=self.port, dbname="shop", user=user,
                                password=token, sslmode=sslmode, sslrootcert=self.certs["ca"],
                                connect_timeout=10)

    def refused(self, user, token):
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect(user, token).close()
        return str(cm.exception)

    def test_valid_tokens_connect_as_their_user_and_groups(self):
        for key in self.idp.keys:  # RS256 and ES256
            conn = self.connect("alice@example.com",
                                self.idp.token("alice@example.com", ["engineers"], key=key))
            with conn, conn.cursor() as cur:
                cur.execute("CREATE TEMP TABLE t (a int)")
                cur.execute("INSERT INTO t VALUES (1)")
                cur.execute("SELECT count(*) FROM t")
                self.assertEqual(cur.fetchone()[0], 1)
            conn.close()
        self.assertIn("alice@example.com", self.proxy.log())
        self.assertIn("oidc:testidp", self.proxy.log())
        # The groups claim reaches the policy: a contractor may only read,
        # and Entra-style `roles` count as groups too.
        for token in (self.idp.token("bob@example.com", ["contractors"]),
                      self.idp.token("bob@example.com", [], roles=["contractors"])):
            conn = self.connect("bob@example.com", token)
            try:
                cur = conn.cursor()
                cur.execute("SELECT count(*) FROM orders")
                self.assertGreaterEqual(cur.fetchone()[0], 0)
                with self.assertRaises(psycopg2.Error) as cm:
                    cur.execute("CREATE TEMP TABLE t (a int)")
                self.assertEqual(cm.exception.pgcode, "42501")
                self.assertIn("contractors may only read", str(cm.exception))
            finally:
                conn.close()

    def test_bad_tokens_are_refused_with_the_reason(self):
        idp, user = self.idp, "alice@example.com"
        now = int(time.time())
        cases = {
            "expired": (idp.token(user, exp=now - 120, iat=now - 720), "token expired at"),
            "not yet valid": (idp.token(user, nbf=now + 600), "not valid before"),
            "wrong audience": (idp.token(user, aud="another-app"),
                               "audience 'another-app' is not one of 'warden'"),
            "wrong issuer": (idp.token(user, iss="https://evil.test"),
                             "issuer 'https://evil.test' is not an identity provider"),
            "bad signature": (idp.tampered(user, "root@example.com"),
                              "signature does not verify"),
            "alg none": (idp.unsigned_token(user), "algorithm 'none' is not allowed"),
            "HS256 with the public key": (idp.hs256_with_public_key(user),
                                          "algorithm 'HS256' is not allowed"),
            "unknown kid": (idp.token(user, header={"kid": "nope"}), "unknown key id 'nope'"),
            "too long-lived": (idp.token(user, lifetime=48 * 3600), "longer than 12h"),
            "another user's token": (idp.token("mallory@example.com"),
                                     "the token is for 'mallory@example.com'"),
            "not a token": ("hunter2", "the password is not an identity provider's token"),
        }
        for name, (token, reason) in cases.items():
            with self.subTest(name):
                message = self.refused(user, token)
                self.assertIn("token refused", message)
                self.assertIn(reason, message)
        # The SQLSTATE is 28000 (invalid authorization), as the raw
        # protocol shows (libpq does not expose it for a failed connect).
        for token in (idp.unsigned_token(user), idp.token(user, aud="x")):
            conn = rawpg.RawConn(self.port)
            try:
                conn.starttls(self.certs["ca"])
                with self.assertRaises(RuntimeError) as cm:
                    conn.login(user, token, "shop")
                fields = cm.exception.args[0]
                self.assertEqual(fields["C"], "28000")
                self.assertEqual(fields["S"], "FATAL")
            finally:
                conn.close()
        # Plaintext is refused before any token is sent.
        with self.assertRaises(psycopg2.OperationalError):
            self.connect(user, idp.token(user), sslmode="disable").close()

    def test_rotated_keys_are_picked_up(self):
        user = "carol@example.com"
        old = self.idp.rotate("k2")
        try:
            self.idp.write_jwks(self.jwks)
            # A token under the new key works at once (unknown kid → the
            # proxy re-reads the key set), and one under the retired key no
            # longer does.
            self.connect(user, self.idp.token(user)).close()
            message = self.refused(user, self.idp.token(user, key=old))
            self.assertIn("unknown key id 'k1'", message)
            self.assertIn("identity provider keys reloaded", self.proxy.log())
        finally:
            self.idp.keys = [old] + self.idp.keys
            self.idp.write_jwks(self.jwks)


if __name__ == "__main__":
    unittest.main()
