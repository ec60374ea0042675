"""An agent must not become a human through `wardenctl login` (issue 14,
item 3). Three identity providers on loopback whose tokens give the kinds
human (corp, the default), agent (bots) and service (jobs); a policy that
lets only humans write; warden-control issuing certificates; an enrolled
warden-proxy with a token listener (the ID token as the password) and a
certificate listener (`auth: cert`); PostgreSQL 15. For each kind the same
person connects both ways: the policy decides the same and the
AUTHENTICATION events carry the same user, groups and kind. A certificate
from Warden's CA that names no kind (what an older warden-control issued)
is refused with 28000, never taken for a human."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

from fakeidp import IdpServer  # noqa: E402
from controlharness import WARDENCTL_BIN as WARDENCTL, ControlPlane  # noqa: E402
from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, make_ca_and_cert, wait_until  # noqa: E402

POLICY = """apiVersion: warden/v1
kind: Policy
metadata: { name: by-kind }
spec:
  environments: [prod]
  rules:
    - name: agents-read-only
      match: { identity: { kind: agent }, classes: [write, ddl] }
      action: deny
      message: agents may only read
    - name: services-read-only
      match: { identity: { kind: service }, classes: [write, ddl] }
      action: deny
      message: services may only read
"""

# provider name -> (kind line in its IdentityProvider, kind policies see,
# what the policy answers a write)
PROVIDERS = {
    "corp": (None, "IDENTITY_KIND_HUMAN", None),
    "bots": ("agent", "IDENTITY_KIND_AGENT", "agents may only read"),
    "jobs": ("service", "IDENTITY_KIND_SERVICE", "services may only read"),
}

NO_KIND = ("certificate from an older warden-control carries no identity kind; "
           "run `wardenctl login` again")

WRITE = "DELETE FROM orders WHERE id = -1"


class IdentityKindTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="warden-sec-kind-")
        cls.proxy = cls.control = None
        cls.servers = {}
        cls.pg = PostgresServer()
        try:
            cls.pg.start()
            setup_sample(cls.pg)
            cls.certs = make_ca_and_cert(os.path.join(cls.work, "tls"))
            files = {"prod.yaml": POLICY}
            for name, (kind, _, _) in PROVIDERS.items():
                server = IdpServer(cls.certs["cert"], cls.certs["key"], free_port())
                cls.servers[name] = server
                text = server.idp.provider_yaml(name, environments=["prod"])
                if kind:
                    text += "  kind: %s\n" % kind
                files["idp-%s.yaml" % name] = text
            cls.control = ControlPlane(cls.work, extra_args=[
                "--idp-ca-file", cls.certs["ca"], "--user-cert-ttl", "1h"]).start()
            cls.control.push_files(files)
            cls.token_port, cls.cert_port = free_port(), free_port()
            tls = f"mode: require, cert_file: {cls.certs['cert']}, key_file: {cls.certs['key']}"
            config = f"""
proxy: {{ workers: 1, log_level: info }}
{cls.control.proxy_policy(os.path.join(cls.work, 'state'), "prod", "kind-p1")}
audit: {{ mode: async, spool_dir: {os.path.join(cls.work, 'spool')} }}
listeners:
  - {{ name: tokens, port: {cls.token_port}, environment: prod, auth: oidc, tls: {{ {tls} }} }}
  - {{ name: certs, port: {cls.cert_port}, environment: prod, auth: cert, tls: {{ {tls} }} }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {cls.pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
"""
            cls.proxy = WardenProxy(config, cls.work, {"tokens": cls.token_port,
                                                       "certs": cls.cert_port}).start()
            assert wait_until(lambda: "in force" in cls.proxy.log()), cls.proxy.log()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for part in (cls.proxy, cls.control):
            if part:
                part.stop()
        for server in cls.servers.values():
            server.stop()
        cls.pg.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    # -- helpers -------------------------------------------------------------

    def connect(self, port, user, **kw):
        return psycopg2.connect(host="localhost", port=port, dbname="shop", user=user,
                                sslmode="verify-full", sslrootcert=self.certs["ca"],
                                connect_timeout=10, **kw)

    def write_outcome(self, conn):
        """None when the write ran, else the error's message."""
        try:
            with conn, conn.cursor() as cur:
                cur.execute(WRITE)
            return None
        except psycopg2.Error as e:
            return str(e)
        finally:
            conn.close()

    def run_login(self, name, token):
        """`wardenctl login --token` into login-NAME: (result, out dir)."""
        out = os.path.join(self.work, "login-" + name)
        return self.control.login_with_token(out, token), out

    def login(self, name, token):
        r, out = self.run_login(name, token)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {"sslcert": os.path.join(out, "client.crt"),
                "sslkey": os.path.join(out, "client.key")}

    def auth_events(self, user):
        r = subprocess.run([WARDENCTL, "audit", "search", "--kind", "authentication",
                            "--format", "json", "--limit", "10000"], env=self.control.env(),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        events = [json.loads(l)["leaf"]["event"] for l in r.stdout.splitlines() if l.strip()]
        return [e for e in events if e["authentication"].get("claimed_user") == user]

    def succeeded(self, user, method):
        return [e for e in self.auth_events(user)
                if e["authentication"].get("success") and e["authentication"]["method"] == method]

    def sign_with_wardens_ca(self, name, uris):
        """A client certificate Warden's own CA signed (its key in the data
        directory), naming `uris`, as an older warden-control issued them."""
        d = os.path.join(self.work, "signed-" + name)
        os.makedirs(d)
        p = lambda n: os.path.join(d, n)
        run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", p("client.key"), "-out", p("client.csr"),
            "-subj", "/CN=old@example.com")
        with open(p("ext.cnf"), "w") as f:
            f.write("subjectAltName=%s\n" % ",".join("URI:" + u for u in uris))
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=clientAuth\n")
        run("openssl", "x509", "-req", "-in", p("client.csr"),
            "-CA", os.path.join(self.control.data, "ca.crt"),
            "-CAkey", os.path.join(self.control.data, "ca.key"),
            "-CAcreateserial", "-out", p("client.crt"), "-days", "1", "-extfile", p("ext.cnf"))
        os.chmod(p("client.key"), 0o600)
        return {"sslcert": p("client.crt"), "sslkey": p("client.key")}

    # -- tests ---------------------------------------------------------------

    def test_same_identity_facts_via_token_and_certificate_for_every_kind(self):
        for name, (_, kind, verdict) in PROVIDERS.items():
            with self.subTest(provider=name):
                user = "%s-user@example.com" % name
                groups = ["team-" + name, "oncall"]
                token = self.servers[name].idp.token(user, groups)

                by_token = self.write_outcome(self.connect(self.token_port, user, password=token))
                by_cert = self.write_outcome(self.connect(self.cert_port, user,
                                                          **self.login(name, token)))
                if verdict is None:
                    self.assertIsNone(by_token)
                    self.assertIsNone(by_cert)
                else:
                    self.assertIn(verdict, by_token or "")
                    self.assertIn(verdict, by_cert or "",
                                  "the certificate path must see kind %s too" % kind)

                self.assertTrue(wait_until(
                    lambda: self.succeeded(user, "oidc:" + name)
                    and self.succeeded(user, "cert:" + name), timeout=30),
                    self.auth_events(user))
                token_id = self.succeeded(user, "oidc:" + name)[0]["identity"]
                cert_id = self.succeeded(user, "cert:" + name)[0]["identity"]
                for identity in (token_id, cert_id):
                    self.assertEqual(identity["user"], user)
                    self.assertEqual(identity["groups"], groups)
                    self.assertEqual(identity["kind"], kind)
                self.assertEqual({k: token_id.get(k) for k in ("user", "groups", "kind")},
                                 {k: cert_id.get(k) for k in ("user", "groups", "kind")})

    def test_certificate_without_kind_is_refused_not_taken_for_human(self):
        names = ["spiffe://warden/user/old%40example.com", "spiffe://warden/group/eng",
                 "spiffe://warden/idp/bots"]
        old = self.sign_with_wardens_ca("old", names)
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect(self.cert_port, "old@example.com", **old).close()
        self.assertIn("Warden: certificate refused: ", str(cm.exception))
        self.assertIn(NO_KIND, str(cm.exception))
        self.assertTrue(wait_until(lambda: self.auth_events("old@example.com"), timeout=30))
        refused = self.auth_events("old@example.com")[0]
        self.assertFalse(refused["authentication"].get("success"))
        self.assertIn(NO_KIND, refused["authentication"]["reason"])
        self.assertNotIn("kind", refused.get("identity", {}))

        # The same certificate with the kind its provider gives connects:
        # the missing kind alone was refused.
        current = self.sign_with_wardens_ca("current", names + ["spiffe://warden/kind/agent"])
        self.assertIn("agents may only read",
                      self.write_outcome(self.connect(self.cert_port, "old@example.com",
                                                      **current)) or "")

    def test_look_alike_names_are_refused_on_every_path(self):
        # "аlice" with a Cyrillic а reads as alice: rules written for alice
        # would not apply to it, and an auditor would blame alice. Refused
        # by token, by `wardenctl login`, and by a certificate of Warden's
        # CA that names it; an ordinary non-ASCII name is not.
        fake = "\u0430lice@example.com"
        token = self.servers["corp"].idp.token(fake, ["oncall"])
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect(self.token_port, fake, password=token).close()
        self.assertIn("the user name mixes the Cyrillic and Latin scripts", str(cm.exception))

        r, out = self.run_login("fake", token)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("PERMISSION_DENIED", r.stderr)
        self.assertIn("mixes the Cyrillic and Latin scripts", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "client.crt")))

        signed = self.sign_with_wardens_ca("fake", [
            "spiffe://warden/user/%D0%B0lice%40example.com", "spiffe://warden/group/eng",
            "spiffe://warden/idp/corp", "spiffe://warden/kind/human"])
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect(self.cert_port, fake, **signed).close()
        self.assertIn("the user name mixes the Cyrillic and Latin scripts", str(cm.exception))

        # Each refusal is in the audit trail, under the name it claimed.
        self.assertTrue(wait_until(lambda: len(self.auth_events(fake)) >= 2, timeout=30),
                        self.auth_events(fake))
        for e in self.auth_events(fake):
            self.assertFalse(e["authentication"].get("success"))
            self.assertIn("mixes the Cyrillic and Latin scripts", e["authentication"]["reason"])

        # A name in one script (with its accents) is anyone's right.
        real = "jos\u00e9.\u0438\u0432\u0430\u043d@example.com"
        token = self.servers["corp"].idp.token(real, ["oncall"])
        self.assertIsNone(self.write_outcome(self.connect(self.token_port, real, password=token)))
        self.assertIsNone(self.write_outcome(self.connect(self.cert_port, real,
                                                          **self.login("real", token))))

    def test_look_alikes_of_known_names_are_refused(self):
        # Names that pass the one-name checks (one script, recommended
        # letters) but read as a name Warden knows: "b0b" for bob, whole-
        # script Cyrillic "аре" for ape. Bob and ape were cut off by an admin
        # (`identities deactivate`): coming back under a look-alike is the
        # attack. Refused by token and by `wardenctl login`, and recorded.
        for known in ("bob.kind@example.com", "ape.kind@example.com"):
            r = subprocess.run([WARDENCTL, "identities", "deactivate", known, "--reason", "left"],
                               env=self.control.env(), capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
        # The proxy has the directory once it refuses bob himself.
        bob_token = self.servers["corp"].idp.token("bob.kind@example.com", ["oncall"])

        def bob_refused():
            try:
                self.connect(self.token_port, "bob.kind@example.com", password=bob_token).close()
                return False
            except psycopg2.OperationalError as e:
                return "deactivated" in str(e)
        self.assertTrue(wait_until(bob_refused, timeout=30), self.proxy.log()[-2000:])

        for fake, like in (("b0b.kind@example.com", "bob.kind@example.com"),
                           ("\u0430\u0440\u0435.kind@example.com", "ape.kind@example.com")):
            with self.subTest(fake=fake):
                token = self.servers["corp"].idp.token(fake, ["oncall"])
                with self.assertRaises(psycopg2.OperationalError) as cm:
                    self.connect(self.token_port, fake, password=token).close()
                self.assertIn("the user name looks like %s, another user known to Warden" % like,
                              str(cm.exception))
                r, out = self.run_login("lookalike", token)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("PERMISSION_DENIED", r.stderr)
                self.assertIn("looks like %s" % like, r.stderr)
                self.assertFalse(os.path.exists(os.path.join(out, "client.crt")))
                self.assertTrue(wait_until(lambda: self.auth_events(fake), timeout=30))
                e = self.auth_events(fake)[-1]
                self.assertFalse(e["authentication"].get("success"))
                self.assertIn("looks like " + like, e["authentication"]["reason"])
        # A different name that merely resembles in spelling is not refused.
        token = self.servers["corp"].idp.token("rob.kind@example.com", ["oncall"])
        self.assertIsNone(self.write_outcome(self.connect(self.token_port, "rob.kind@example.com",
                                                          password=token)))


if __name__ == "__main__":
    unittest.main()
