"""`wardenctl login` end to end with real processes: a fake identity
provider on loopback (HTTPS, keys and device flow), warden-control, a
warden-proxy enrolled with it whose `auth: cert` listeners accept the
client certificates Warden's CA issues, PostgreSQL 15, and real clients
(psql with the printed line, psycopg2 with sslcert/sslkey). The identity
and groups in the certificate reach the policy and the audit trail; bad
tokens, certificates of another user or another CA, and no certificate are
refused with the reason."""

import json
import os
import shlex
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

from fakeidp import IdpServer  # noqa: E402
from controlharness import WARDENCTL_BIN as WARDENCTL, ControlPlane  # noqa: E402
from pgharness import PG_BIN, PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, make_ca_and_cert, wait_until  # noqa: E402

POLICY = """apiVersion: warden/v1
kind: Policy
metadata: { name: login-groups }
spec:
  environments: [prod]
  rules:
    - name: contractors-read-only
      match: { identity: { groups: [contractors] }, classes: [write, ddl] }
      action: deny
      message: contractors may only read
"""


def psql_binary():
    return os.path.join(PG_BIN, "psql") if os.path.exists(os.path.join(PG_BIN, "psql")) else "psql"


class LoginTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="warden-login-")
        cls.proxy = cls.control = cls.server = None
        cls.pg = PostgresServer()
        try:
            cls.pg.start()
            setup_sample(cls.pg)
            cls.certs = make_ca_and_cert(os.path.join(cls.work, "tls"))
            cls.server = IdpServer(cls.certs["cert"], cls.certs["key"], free_port())
            cls.idp = cls.server.idp
            cls.control = ControlPlane(cls.work, extra_args=[
                "--idp-ca-file", cls.certs["ca"], "--user-cert-ttl", "1h"]).start()
            cls.control.push_files({
                "prod.yaml": POLICY,
                "idp.yaml": cls.idp.provider_yaml("corp", environments=["prod"])})
            cls.port, cls.file_port = free_port(), free_port()
            tls = f"mode: require, cert_file: {cls.certs['cert']}, key_file: {cls.certs['key']}"
            config = f"""
proxy: {{ workers: 1, log_level: info }}
{cls.control.proxy_policy(os.path.join(cls.work, 'state'), "prod", "login-p1")}
audit: {{ mode: async, spool_dir: {os.path.join(cls.work, 'spool')} }}
listeners:
  - {{ name: certs, port: {cls.port}, environment: prod, auth: cert, tls: {{ {tls} }} }}
  - name: certs-from-file
    port: {cls.file_port}
    environment: prod
    auth: cert
    tls: {{ {tls}, client_ca_file: {os.path.join(cls.control.data, 'ca.crt')} }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {cls.pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
"""
            cls.proxy = WardenProxy(config, cls.work, {"certs": cls.port,
                                                       "certs-from-file": cls.file_port}).start()
            assert wait_until(lambda: "in force" in cls.proxy.log()), cls.proxy.log()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for part in (cls.proxy, cls.control):
            if part:
                part.stop()
        if cls.server:
            cls.server.stop()
        cls.pg.stop()

    # -- helpers -------------------------------------------------------------

    def proxy_args(self):
        return ["--proxy", "localhost:%d" % self.port, "--dbname", "shop",
                "--proxy-ca-file", self.certs["ca"]]

    def login_args(self, out, *extra):
        return [WARDENCTL, "login", "--out", out, *self.proxy_args(),
                "--server", "localhost:%d" % self.control.port,
                "--ca-file", self.control.ca_file] + list(extra)

    def login_with_token(self, name, token):
        out = os.path.join(self.work, name)
        return self.control.login_with_token(out, token, *self.proxy_args()), out

    def connect(self, user, out, port=None, **kw):
        args = dict(host="localhost", port=port or self.port, dbname="shop", user=user,
                    sslmode="verify-full", sslrootcert=self.certs["ca"], connect_timeout=10)
        if out:
            args.update(sslcert=os.path.join(out, "client.crt"), sslkey=os.path.join(out, "client.key"))
        args.update(kw)
        return psycopg2.connect(**args)

    def events(self, kind):
        r = subprocess.run([WARDENCTL, "audit", "search", "--kind", kind, "--format", "json",
                            "--limit", "1000"], env=self.control.env(),
                           capture_output=True, text=True, timeout=60)
        return [json.loads(l)["leaf"]["event"] for l in r.stdout.splitlines() if l.strip()]

    def auth_events_for(self, user):
        return [e for e in self.events("authentication")
                if e["authentication"].get("claimed_user") == user]

    # -- tests ---------------------------------------------------------------

    def test_token_login_then_psql_connects_with_groups_in_policy_and_audit(self):
        user = "ana@example.com"
        r, out = self.login_with_token("ana", self.idp.token(user, ["engineers", "contractors"]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("certificate for ana@example.com (groups engineers, contractors; corp)",
                      r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(out, "client.key")).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(out, "client.pk8")).st_mode), 0o600)
        with open(os.path.join(out, "ca.crt")) as f, open(self.control.ca_file) as g:
            self.assertEqual(f.read(), g.read())
        line = r.stdout.strip()
        self.assertTrue(line.startswith('psql "host=localhost port=%d user=%s dbname=shop '
                                        'sslmode=verify-full sslrootcert=' % (self.port, user)), line)
        conninfo = shlex.split(line)[1]
        # psql with exactly the printed line.
        q = subprocess.run([psql_binary(), conninfo, "-X", "-At", "-c", "SELECT count(*) FROM orders"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(q.returncode, 0, q.stderr + self.proxy.log()[-2000:])
        w = subprocess.run([psql_binary(), conninfo, "-X", "-At", "-c", "DELETE FROM orders WHERE id = 1"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(w.returncode, 0)
        self.assertIn("contractors may only read", w.stderr)
        # The listener whose CA comes from tls.client_ca_file accepts it too.
        self.connect(user, out, port=self.file_port).close()

        self.assertTrue(wait_until(lambda: len(self.auth_events_for(user)) >= 3, timeout=30))
        ok = [e for e in self.auth_events_for(user) if e["authentication"].get("success")]
        self.assertEqual(ok[0]["authentication"]["method"], "cert:corp")
        self.assertEqual(ok[0]["identity"]["user"], user)
        self.assertEqual(ok[0]["identity"]["groups"], ["engineers", "contractors"])
        issued = [e for e in self.events("admin")
                  if e["admin"].get("action") == "identity.certificate" and e["admin"].get("success")]
        self.assertTrue(any(e["admin"]["actor"] == user for e in issued), issued)

    def test_device_flow_end_to_end(self):
        out = os.path.join(self.work, "device")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        # The provider asks wardenctl to slow down once: the next poll must
        # come at least 5 s later (RFC 8628 3.5).
        self.server.slow_down_once = True
        self.addCleanup(setattr, self.server, "slow_down_once", False)
        started = time.time()
        proc = subprocess.Popen(self.login_args(out, "--idp-ca-file", self.certs["ca"]), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            prompt = ""
            while "enter the code" not in prompt:
                line = proc.stderr.readline()
                self.assertTrue(line, "wardenctl ended before prompting: " + prompt)
                prompt += line
            self.assertIn(self.idp.issuer + "/device", prompt)
            user_code = prompt.split("enter the code ")[1].split()[0]
            ctx = ssl.create_default_context(cafile=self.certs["ca"])
            with urllib.request.urlopen(
                    "%s/device/approve?user_code=%s&user=bo@example.com&groups=engineers,oncall"
                    % (self.idp.issuer, user_code), context=ctx, timeout=10) as a:
                self.assertEqual(json.load(a)["state"], "approved")
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 0, stderr)
        self.assertIn("user=bo@example.com", stdout)
        self.assertGreaterEqual(time.time() - started, 6)
        bo = [d for d in self.server.devices.values() if d.get("user") == "bo@example.com"]
        self.assertEqual(bo[0]["polls"], 2)
        self.assertIn("POST /device/authorize", self.server.requests)
        conn = self.connect("bo@example.com", out)
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM orders WHERE id = -1")  # engineers may write
        conn.close()
        self.assertTrue(wait_until(lambda: any(
            e["authentication"].get("success") for e in self.auth_events_for("bo@example.com")),
            timeout=30))
        ok = [e for e in self.auth_events_for("bo@example.com") if e["authentication"].get("success")]
        self.assertEqual(ok[0]["identity"]["groups"], ["engineers", "oncall"])

    def test_device_flow_denied_at_the_provider(self):
        out = os.path.join(self.work, "denied")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        proc = subprocess.Popen(self.login_args(out, "--idp-ca-file", self.certs["ca"]), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            prompt = ""
            while "enter the code" not in prompt:
                line = proc.stderr.readline()
                self.assertTrue(line, prompt)
                prompt += line
            user_code = prompt.split("enter the code ")[1].split()[0]
            ctx = ssl.create_default_context(cafile=self.certs["ca"])
            urllib.request.urlopen("%s/device/approve?user_code=%s&deny=1"
                                   % (self.idp.issuer, user_code), context=ctx, timeout=10).close()
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 6, stderr)
        self.assertIn("denied", stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "client.crt")))

    def test_expired_token_is_refused_at_login(self):
        r, out = self.login_with_token("expired", self.idp.token("cy@example.com", lifetime=-300))
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("UNAUTHENTICATED: token refused: ", r.stderr)
        self.assertIn("expired", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "client.crt")))
        self.assertTrue(wait_until(lambda: any(
            e["admin"].get("action") == "identity.certificate" and not e["admin"].get("success")
            and "expired" in e["admin"].get("detail", "") for e in self.events("admin")), timeout=30))
        # Whom it claimed to be is recorded, marked unverified.
        refused = [e for e in self.events("admin")
                   if e["admin"].get("action") == "identity.certificate"
                   and "expired" in e["admin"].get("detail", "")]
        self.assertEqual(refused[-1]["admin"]["target"], '"cy@example.com" (unverified)')
        self.assertEqual(refused[-1]["admin"]["actor"], "unauthenticated")

    def test_a_deactivated_users_attempt_is_found_by_user(self):
        """Red team: a deactivated user's refused `wardenctl login` was
        recorded as 'unauthenticated' with target '-', so `audit search
        --user` could not say whether the person tried."""
        user = "gil@example.com"
        r = subprocess.run([WARDENCTL, "identities", "deactivate", user, "--reason", "left"],
                           env=self.control.env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        r, out = self.login_with_token("gil", self.idp.token(user, ["engineers"]))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is deactivated", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "client.crt")))

        def attempts():
            r = subprocess.run([WARDENCTL, "audit", "search", "--user", user, "--kind", "admin",
                                "--format", "json"], env=self.control.env(),
                               capture_output=True, text=True, timeout=60)
            return [json.loads(l)["leaf"]["event"]["admin"] for l in r.stdout.splitlines()
                    if l.strip() and json.loads(l)["leaf"]["event"]["admin"].get("action")
                    == "identity.certificate"]
        self.assertTrue(wait_until(lambda: attempts(), timeout=30))
        a = attempts()[0]
        self.assertFalse(a.get("success", False))
        self.assertEqual(a["target"], user)
        self.assertIn("is deactivated", a["detail"])

    def test_certificate_for_another_user_is_refused(self):
        r, out = self.login_with_token("dee", self.idp.token("dee@example.com", ["engineers"]))
        self.assertEqual(r.returncode, 0, r.stderr)
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect("root@example.com", out).close()
        self.assertIn("Warden: certificate refused: ", str(cm.exception))
        self.assertIn("is for 'dee@example.com', not 'root@example.com'", str(cm.exception))
        self.assertTrue(wait_until(lambda: self.auth_events_for("root@example.com"), timeout=30))
        e = self.auth_events_for("root@example.com")[0]["authentication"]
        self.assertFalse(e.get("success"))
        self.assertEqual(e["method"], "cert:corp")
        self.assertIn("is for 'dee@example.com'", e["reason"])

    def test_no_client_certificate_is_refused(self):
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect("eve@example.com", None,
                         sslcert=os.path.join(self.work, "none.crt"),
                         sslkey=os.path.join(self.work, "none.key")).close()
        self.assertIn("no client certificate", str(cm.exception))
        self.assertTrue(wait_until(lambda: self.auth_events_for("eve@example.com"), timeout=30))
        e = self.auth_events_for("eve@example.com")[0]["authentication"]
        self.assertEqual(e["method"], "cert")
        self.assertIn("no client certificate", e["reason"])

    def test_certificate_from_another_ca_is_refused(self):
        d = os.path.join(self.work, "rogue")
        os.makedirs(d)
        p = lambda n: os.path.join(d, n)
        run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "1", "-subj", "/CN=Warden CA")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", p("client.key"), "-out", p("client.csr"), "-subj", "/CN=fay@example.com")
        with open(p("ext.cnf"), "w") as f:
            f.write("subjectAltName=URI:spiffe://warden/user/fay%40example.com,"
                    "URI:spiffe://warden/group/admins,URI:spiffe://warden/idp/corp\n"
                    "extendedKeyUsage=clientAuth\n")
        run("openssl", "x509", "-req", "-in", p("client.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-out", p("client.crt"), "-days", "1", "-extfile", p("ext.cnf"))
        os.chmod(p("client.key"), 0o600)
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect("fay@example.com", d).close()
        self.assertIn("Warden: certificate refused: not a valid certificate from Warden's CA",
                      str(cm.exception))


if __name__ == "__main__":
    unittest.main()
