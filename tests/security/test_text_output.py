"""wardenctl's text outputs must print what others wrote escaped (issue 14,
item 7): an unsigned token whose issuer holds a newline made a second line
in `wardenctl audit tail` that read like a real event. Real PostgreSQL 15,
a fake identity provider on loopback, warden-control and an enrolled
warden-proxy with a token listener; what clients send reaches the audit
log exactly (JSON) and prints as one escaped line per event (text)."""

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

from fakeidp import IdpServer, b64  # noqa: E402
from controlharness import WARDENCTL_BIN as WARDENCTL, ControlPlane  # noqa: E402
from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, make_ca_and_cert, wait_until  # noqa: E402

POLICY = """apiVersion: warden/v1
kind: Policy
metadata: { name: guard }
spec:
  environments: [prod]
  rules:
    - name: no-drop
      match: { commands: [DROP TABLE] }
      action: deny
"""

# What a forged line looks like: index, time, source, sequence, user, event.
FORGED = "#99 2024-01-01T00:00:00.000Z prod/text-p1 #99 root: authentication ok (oidc:corp)"
# Controls of every class the escaper knows, as a client may send them.
CONTROLS = "\x1b[2J\r\t\x7f\u0085\u009b\u2028\u2029\u202e\u2066"
ESCAPED = "\\x1b[2J\\r\\t\\x7f\\u0085\\u009b\\u2028\\u2029\\u202e\\u2066"
RAW = ["\x1b", "\r", "\x7f", "\u0085", "\u009b", "\u2028", "\u2029", "\u202e", "\u2066"]


def unsigned_token(issuer, user="root@example.com"):
    header = {"alg": "none", "typ": "JWT"}
    payload = {"iss": issuer, "aud": "warden", "email": user, "exp": 4102444800}
    return b64(json.dumps(header)) + "." + b64(json.dumps(payload)) + "."


class TextOutputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="warden-sec-text-")
        cls.proxy = cls.control = cls.server = None
        cls.pg = PostgresServer()
        try:
            cls.pg.start()
            setup_sample(cls.pg)
            cls.certs = make_ca_and_cert(os.path.join(cls.work, "tls"))
            cls.server = IdpServer(cls.certs["cert"], cls.certs["key"], free_port())
            cls.idp = cls.server.idp
            cls.control = ControlPlane(cls.work, extra_args=[
                "--idp-ca-file", cls.certs["ca"]]).start()
            cls.control.push_files({
                "prod.yaml": POLICY,
                "idp.yaml": cls.idp.provider_yaml("corp", environments=["prod"])})
            cls.port = free_port()
            tls = f"mode: require, cert_file: {cls.certs['cert']}, key_file: {cls.certs['key']}"
            config = f"""
proxy: {{ workers: 1, log_level: info }}
{cls.control.proxy_policy(os.path.join(cls.work, 'state'), "prod", "text-p1")}
audit: {{ mode: async, spool_dir: {os.path.join(cls.work, 'spool')} }}
listeners:
  - {{ name: tokens, port: {cls.port}, environment: prod, auth: oidc, tls: {{ {tls} }} }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {cls.pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
"""
            cls.proxy = WardenProxy(config, cls.work, {"tokens": cls.port}).start()
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
        shutil.rmtree(cls.work, ignore_errors=True)

    # -- helpers -------------------------------------------------------------

    @staticmethod
    def run_exact(args, env):
        """Runs `args`; stdout and stderr decoded as UTF-8 with no newline
        translation (text=True would turn a raw \\r into a line break)."""
        r = subprocess.run(args, env=env, capture_output=True, timeout=60)
        r.stdout = r.stdout.decode("utf-8")
        r.stderr = r.stderr.decode("utf-8")
        return r

    def ctl(self, *args):
        return self.run_exact([WARDENCTL] + list(args), self.control.env())

    def connect(self, user, password):
        return psycopg2.connect(host="localhost", port=self.port, dbname="shop", user=user,
                                password=password, sslmode="verify-full",
                                sslrootcert=self.certs["ca"], connect_timeout=10)

    def log_both_ways(self, *filters):
        """The same events as JSON leaves and as text lines: the first N
        entries, N as many as JSON had, so a growing log changes nothing."""
        r = self.ctl("audit", "tail", "--from", "0", "--limit", "100000", "--format", "json",
                     *filters)
        self.assertEqual(r.returncode, 0, r.stderr)
        entries = [json.loads(l) for l in r.stdout.split("\n") if l.strip()]
        if not entries:
            return [], [], ""
        leaves = [e["leaf"] for e in entries]
        last = max(int(e["index"]) for e in entries)
        r = self.ctl("audit", "tail", "--from", "0", "--limit", str(len(leaves)), *filters)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.endswith("\n"))
        lines = r.stdout[:-1].split("\n")
        self.assertTrue(lines[-1].startswith("#%d " % last), lines[-1])
        return leaves, lines, r.stdout

    def assert_no_raw_controls(self, text):
        for c in RAW:
            self.assertNotIn(c, text, "raw U+%04X printed" % ord(c))

    # -- tests ---------------------------------------------------------------

    def test_forged_issuer_in_a_refused_token_prints_as_one_line(self):
        issuer = "https://evil.test\n" + FORGED + CONTROLS
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect("root@example.com", unsigned_token(issuer)).close()
        self.assertIn("Warden: token refused: ", str(cm.exception))

        def recorded():
            leaves = [l for l in self.log_both_ways("--kind", "authentication")[0]
                      if "evil.test" in l["event"]["authentication"].get("reason", "")]
            return leaves
        self.assertTrue(wait_until(recorded, timeout=30), self.proxy.log()[-2000:])
        # Recorded exactly as sent...
        self.assertIn("https://evil.test\n" + FORGED + CONTROLS,
                      recorded()[0]["event"]["authentication"]["reason"])
        # ... and printed as one line per event, the forgery inside it.
        leaves, lines, text = self.log_both_ways("--kind", "authentication")
        self.assertEqual(len(lines), len(leaves), text)
        evil = [l for l in lines if "evil.test" in l]
        self.assertEqual(len(evil), 1, text)
        self.assertIn("https://evil.test\\n" + FORGED + ESCAPED, evil[0])
        self.assertFalse(any(l.startswith("#99 ") for l in lines), text)
        self.assert_no_raw_controls(text)

    def test_statement_with_controls_prints_as_one_line(self):
        user = "ana@example.com"
        marker = "marker-%d" % os.getpid()
        sql = "SELECT '%s' /* one\n%s\n%s */" % (marker, FORGED, CONTROLS)
        conn = self.connect(user, self.idp.token(user))
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            self.assertEqual(cur.fetchone()[0], marker)
        conn.close()

        def statement_leaves():
            return [l for l in self.log_both_ways("--kind", "statement")[0]
                    if marker in l["event"]["statement"].get("text", "")]
        self.assertTrue(wait_until(statement_leaves, timeout=30), self.proxy.log()[-2000:])
        self.assertEqual(statement_leaves()[0]["event"]["statement"]["text"], sql)
        leaves, lines, text = self.log_both_ways("--kind", "statement")
        self.assertEqual(len(lines), len(leaves), text)
        mine = [l for l in lines if marker in l]
        self.assertEqual(len(mine), 1, text)
        self.assertIn("ana@example.com: ALLOW SELECT '%s' /* one\\n%s\\n%s */"
                      % (marker, FORGED, ESCAPED), mine[0])
        self.assert_no_raw_controls(text)
        # `audit search` prints the same way.
        r = self.ctl("audit", "search", "--user", user, "--kind", "statement")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len([l for l in r.stdout.split("\n") if marker in l]), 1, r.stdout)
        self.assert_no_raw_controls(r.stdout)

    def test_login_refusal_names_the_unverified_issuer_on_one_line(self):
        issuer = "https://evil.test\n" + FORGED + CONTROLS
        token_file = os.path.join(self.work, "evil.jwt")
        with open(token_file, "w") as f:
            f.write(unsigned_token(issuer) + "\n")
        out = os.path.join(self.work, "evil-login")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        r = self.run_exact([WARDENCTL, "login", "--token", token_file, "--out", out,
                            "--server", "localhost:%d" % self.control.port,
                            "--ca-file", self.control.ca_file], env)
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "client.crt")))
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertIn('error: UNAUTHENTICATED: token refused: unverified issuer '
                      '"https://evil.test\\n' + FORGED + ESCAPED +
                      '" is not an identity provider of the policy bundle', r.stderr)
        self.assert_no_raw_controls(r.stderr)

        # The refusal's record says the issuer was not verified, exactly.
        def refusals():
            r = self.ctl("audit", "search", "--kind", "admin", "--format", "json",
                         "--limit", "100000")
            admin = [json.loads(l)["leaf"]["event"]["admin"] for l in r.stdout.split("\n")
                     if l.strip()]
            return [a for a in admin if a.get("action") == "identity.certificate"
                    and not a.get("success") and "evil.test" in a.get("detail", "")]
        self.assertTrue(wait_until(refusals, timeout=30))
        self.assertIn('unverified issuer "https://evil.test\n' + FORGED + CONTROLS + '"',
                      refusals()[0]["detail"])


if __name__ == "__main__":
    unittest.main()
