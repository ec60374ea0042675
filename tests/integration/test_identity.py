"""Identity from an OpenID Connect provider, end to end with real
processes: a fake identity provider (keys made by the test), PostgreSQL 15,
and a warden-proxy whose TLS listener takes the provider's tokens as the
password. psycopg2 connects as a real client would. Valid tokens map to the
user and groups the policy sees; every kind of bad token is refused with
SQLSTATE 28000 and says why; rotated keys are picked up."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

from fakeidp import FakeIdp, IdpServer  # noqa: E402
from controlharness import WARDENCTL_BIN as WARDENCTL, ControlPlane  # noqa: E402
from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, make_ca_and_cert, wait_until  # noqa: E402
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
                             "unverified issuer 'https://evil.test' (read from a token "
                             "whose signature was not checked) is not an identity provider"),
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



class BundleOidcTest(unittest.TestCase):
    """The provider pushed with the policies (kind: IdentityProvider):
    warden-control fetches its discovery document and keys over HTTPS and
    signs them into the bundle; the proxy has no route to the provider and
    no provider in its own config."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="warden-identity-bundle-")
        cls.proxy = cls.control = cls.server = None
        cls.pg = PostgresServer()
        try:
            cls.pg.start()
            setup_sample(cls.pg)
            # Roles identity mappings pick (members of warden_mapped may log
            # in over scram; see pgharness).
            cls.pg.psql("""
CREATE ROLE warden_mapped NOLOGIN;
CREATE ROLE app_admin LOGIN PASSWORD 'admin-pw' IN ROLE warden_mapped;
CREATE ROLE app_ro LOGIN PASSWORD 'ro-pw' IN ROLE warden_mapped;
GRANT CONNECT ON DATABASE shop TO app_admin, app_ro;""")
            cls.pg.psql("""
GRANT USAGE ON SCHEMA public TO app_admin, app_ro;
GRANT ALL ON ALL TABLES IN SCHEMA public TO app_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO app_ro;""", dbname="shop")
            cls.certs = make_ca_and_cert(os.path.join(cls.work, "tls"))
            cls.server = IdpServer(cls.certs["cert"], cls.certs["key"], free_port())
            cls.idp = cls.server.idp
            cls.control = ControlPlane(cls.work, extra_args=[
                "--idp-ca-file", cls.certs["ca"], "--idp-refresh", "1s"]).start()
            cls.policies = os.path.join(cls.work, "policies")
            os.makedirs(cls.policies)
            with open(os.path.join(cls.policies, "prod.yaml"), "w") as f:
                f.write(POLICY)
            cls.write_idp(cls.idp.issuer)
            r = cls.push()
            assert r.returncode == 0, r.stdout + r.stderr
            cls.port = free_port()
            config = f"""
proxy: {{ workers: 1, log_level: info }}
{cls.control.proxy_policy(os.path.join(cls.work, 'state'), "prod", "idp-p1")}
audit: {{ mode: async, spool_dir: {os.path.join(cls.work, 'spool')} }}
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
        upstream:
          host: 127.0.0.1
          port: {cls.pg.port}
          database: shop
          user: warden_svc
          password: svc-scram-pw
          roles:
            app_admin: {{ password: admin-pw }}
            app_ro: {{ password: ro-pw }}
"""
            cls.proxy = WardenProxy(config, cls.work, {"main": cls.port}).start()
            assert wait_until(lambda: "in force" in cls.proxy.log()), cls.proxy.log()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def write_idp(cls, issuer, environments="[prod]"):
        with open(os.path.join(cls.policies, "idp.yaml"), "w") as f:
            f.write(f"""apiVersion: warden/v1
kind: IdentityProvider
metadata: {{ name: corp }}
spec:
  issuer: {issuer}
  audiences: [warden]
  environments: {environments}
  groups_claims: [groups]
""")

    @classmethod
    def push(cls):
        return subprocess.run([WARDENCTL, "policy", "push", cls.policies],
                              env=cls.control.env(), capture_output=True, text=True, timeout=60)

    @classmethod
    def tearDownClass(cls):
        for part in (cls.proxy, cls.control):
            if part:
                part.stop()
        if cls.server:
            cls.server.stop()
        cls.pg.stop()

    def connect(self, user, token):
        return psycopg2.connect(host="localhost", port=self.port, dbname="shop", user=user,
                                password=token, sslmode="verify-full",
                                sslrootcert=self.certs["ca"], connect_timeout=10)

    def test_1_bundle_keys_authenticate_and_the_trail_names_the_user(self):
        self.assertIn("/keys", self.server.requests)  # fetched by warden-control
        conn = self.connect("dana@example.com",
                            self.idp.token("dana@example.com", ["engineers", "oncall"]))
        with conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.close()
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect("dana@example.com", self.idp.token("dana@example.com", aud="x")).close()
        self.assertIn("audience 'x' is not one of 'warden'", str(cm.exception))

        def auth_events():
            r = subprocess.run([WARDENCTL, "audit", "search", "--kind", "authentication",
                                "--format", "json"], env=self.control.env(),
                               capture_output=True, text=True, timeout=60)
            return [json.loads(l)["leaf"]["event"] for l in r.stdout.splitlines() if l.strip()]
        self.assertTrue(wait_until(lambda: any(
            e["authentication"].get("success") for e in auth_events()) and any(
            not e["authentication"].get("success") for e in auth_events())),
            self.proxy.log()[-2000:])
        ok = [e for e in auth_events() if e["authentication"].get("success")]
        self.assertEqual(ok[0]["identity"]["user"], "dana@example.com")
        self.assertEqual(ok[0]["identity"]["groups"], ["engineers", "oncall"])
        self.assertEqual(ok[0]["authentication"]["method"], "oidc:corp")
        failed = [e for e in auth_events() if not e["authentication"].get("success")]
        self.assertEqual(failed[0]["authentication"]["method"], "oidc:corp")
        self.assertIn("audience", failed[0]["authentication"]["reason"])

    def test_2_rotated_provider_keys_reach_the_proxy_in_a_new_revision(self):
        user = "erin@example.com"
        old = self.idp.rotate("k2")

        def connects():
            try:
                self.connect(user, self.idp.token(user)).close()
                return True
            except psycopg2.OperationalError:
                return False
        self.assertTrue(wait_until(connects, timeout=30), self.control.log()[-2000:])
        r = subprocess.run([WARDENCTL, "policy", "history"], env=self.control.env(),
                           capture_output=True, text=True, timeout=60)
        self.assertIn("identity provider keys changed (corp)", r.stdout)
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect(user, self.idp.token(user, key=old)).close()
        self.assertIn("unknown key id 'k1'", str(cm.exception))

    def test_3_a_provider_whose_keys_cannot_be_fetched_is_refused_at_push(self):
        try:
            self.write_idp("https://localhost:%d" % free_port())
            r = self.push()
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("identity provider corp: discovery", r.stderr)
            self.assertIn("push is refused", r.stderr)
        finally:
            self.write_idp(self.idp.issuer)

    def test_4_a_provider_of_another_environment_is_not_accepted_here(self):
        try:
            self.write_idp(self.idp.issuer, environments="[staging]")
            r = self.push()
            self.assertEqual(r.returncode, 0, r.stderr)
            user = "fay@example.com"

            def refused():
                try:
                    self.connect(user, self.idp.token(user)).close()
                    return False
                except psycopg2.OperationalError as e:
                    return "is not an identity provider of this listener" in str(e)
            self.assertTrue(wait_until(refused))
        finally:
            self.write_idp(self.idp.issuer)
            self.push()

    def ctl(self, *args):
        return subprocess.run([WARDENCTL] + list(args), env=self.control.env(),
                              capture_output=True, text=True, timeout=60)

    def test_5_service_tokens_for_agents_work_until_revoked(self):
        r = self.ctl("tokens", "create", "support-bot", "--scope", "db:connect",
                     "--kind", "agent", "--environment", "prod", "--database", "shop",
                     "--group", "support", "--ttl", "1h", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        created = json.loads(r.stdout)
        token, token_id = created["token"], created["info"]["id"]
        self.assertEqual(created["info"]["kind"], "agent")

        def connect(user="support-bot", secret=token):
            try:
                conn = psycopg2.connect(host="localhost", port=self.port, dbname="shop",
                                        user=user, password=secret, sslmode="verify-full",
                                        sslrootcert=self.certs["ca"], connect_timeout=10)
                with conn, conn.cursor() as cur:
                    cur.execute("SELECT 1")
                conn.close()
                return ""
            except psycopg2.OperationalError as e:
                return str(e)
        # The new revision carrying the token's hash reaches the proxy.
        self.assertTrue(wait_until(lambda: connect() == "", timeout=20), connect())
        self.assertIn("the token is for 'support-bot'", connect(user="other-bot"))
        self.assertIn("is unknown, revoked or wrong", connect(secret=token[:-4] + "0000"))
        # The audit trail knows it is an agent, and its groups.
        # (The trail is asynchronous: wait for the event, not a guess of when.)
        def succeeded():
            r = self.ctl("audit", "search", "--user", "support-bot", "--kind", "authentication",
                         "--format", "json")
            events = [json.loads(l)["leaf"]["event"] for l in r.stdout.splitlines() if l.strip()]
            return [e for e in events if e["authentication"].get("success")]
        self.assertTrue(wait_until(lambda: succeeded(), timeout=30))
        ok = succeeded()
        self.assertEqual(ok[0]["identity"]["kind"], "IDENTITY_KIND_AGENT")
        self.assertEqual(ok[0]["identity"]["groups"], ["support"])
        self.assertEqual(ok[0]["authentication"]["method"], "service-token")
        r = self.ctl("tokens", "list")
        self.assertRegex(r.stdout, r"support-bot\s+db:connect \(agent, prod/shop\)")
        # Scoped: a token for another database does not open this one.
        r = self.ctl("tokens", "create", "etl-job", "--scope", "db:connect", "--kind",
                     "service", "--environment", "prod", "--database", "warehouse",
                     "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        other = json.loads(r.stdout)["token"]
        self.assertTrue(wait_until(
            lambda: "is not for database shop" in connect(user="etl-job", secret=other)))
        # Revoked: refused on the next connection.
        r = self.ctl("tokens", "revoke", token_id)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: "is unknown, revoked or wrong" in connect(),
                                   timeout=20))
        r = self.ctl("policy", "history")
        self.assertIn("service tokens changed", r.stdout)

    def test_6_identity_mappings_pick_the_database_role(self):
        mapping = os.path.join(self.policies, "roles.yaml")
        with open(mapping, "w") as f:
            f.write("""apiVersion: warden/v1
kind: IdentityMapping
metadata: { name: roles }
spec:
  environments: [prod]
  rules:
    - match: { groups: [dba] }
      database_role: app_admin
    - match: { kind: agent }
      database_role: app_ro
    - match: { groups: [auditors] }
      database_role: app_nobody
""")
        try:
            r = self.push()
            self.assertEqual(r.returncode, 0, r.stderr)

            def current_user(user, token):
                try:
                    conn = self.connect(user, token)
                    with conn, conn.cursor() as cur:
                        cur.execute("SELECT current_user")
                        return cur.fetchone()[0]
                except psycopg2.Error as e:
                    return str(e)
            dba = self.idp.token("gus@example.com", ["dba"])
            self.assertTrue(wait_until(
                lambda: current_user("gus@example.com", dba) == "app_admin"),
                current_user("gus@example.com", dba))
            # An agent gets the read-only role: PostgreSQL itself refuses its
            # writes.
            r = self.ctl("tokens", "create", "report-bot", "--scope", "db:connect",
                         "--environment", "prod", "--format", "json")
            self.assertEqual(r.returncode, 0, r.stderr)
            bot = json.loads(r.stdout)["token"]
            self.assertTrue(wait_until(lambda: current_user("report-bot", bot) == "app_ro"),
                            current_user("report-bot", bot))
            conn = self.connect("report-bot", bot)
            try:
                with self.assertRaises(psycopg2.Error) as cm:
                    conn.cursor().execute("DELETE FROM orders WHERE id = -1")
                self.assertEqual(cm.exception.pgcode, "42501")
                self.assertIn("permission denied for table orders", str(cm.exception))
            finally:
                conn.close()
            # No rule for this identity and no default role: refused, with why.
            message = current_user("hal@example.com",
                                   self.idp.token("hal@example.com", ["engineers"]))
            self.assertIn("no rule of identity mapping roles", message)
            # A role this proxy has no credentials for: refused, named.
            message = current_user("ivy@example.com",
                                   self.idp.token("ivy@example.com", ["auditors"]))
            self.assertIn("database role app_nobody, for which this proxy has no credentials",
                          message)
            # The session's role is in the audit trail.
            self.assertTrue(wait_until(lambda: any(
                json.loads(l)["leaf"]["event"]["session_start"].get("upstream_role") == "app_admin"
                for l in self.ctl("audit", "search", "--user", "gus@example.com", "--kind",
                                  "session_start", "--format", "json").stdout.splitlines()
                if l.strip())))
        finally:
            os.remove(mapping)
            self.push()


if __name__ == "__main__":
    unittest.main()
