"""warden-control as a real process over TLS, driven by wardenctl as CI
would: bootstrap admin token, scoped tokens, policy push / unchanged /
rejected / history / rollback / diff, revocation, and state that survives a
restart (same signing key, same history, tokens still valid)."""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

from pgharness import free_port  # noqa: E402
from controlharness import CONTROL_BIN, WARDENCTL_BIN, ControlPlane  # noqa: E402
from proxyharness import make_ca_and_cert, wait_until  # noqa: E402

CONTROL, WARDENCTL = CONTROL_BIN, WARDENCTL_BIN
EXAMPLES = os.path.join(REPO, "policy", "examples")


def Control(work, certs):
    return ControlPlane(work, certs)


class ControlPlaneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for b in (CONTROL, WARDENCTL):
            if not os.access(b, os.X_OK):
                raise RuntimeError("%s not built" % b)
        cls.work = tempfile.mkdtemp(prefix="warden-control-")
        cls.certs = make_ca_and_cert(os.path.join(cls.work, "certs"))
        cls.control = Control(cls.work, cls.certs).start()
        cls.admin = cls.control.admin_token()

    @classmethod
    def tearDownClass(cls):
        cls.control.stop()

    def ctl(self, *args, token=None, stdin=None):
        env = dict(os.environ, WARDEN_SERVER="localhost:%d" % self.control.port,
                   WARDEN_CA_FILE=self.certs["ca"], WARDEN_TOKEN=token or self.admin)
        return subprocess.run([WARDENCTL] + list(args), env=env, input=stdin,
                              capture_output=True, text=True, timeout=60)

    def mint(self, *scopes):
        args = ["tokens", "create", "test-%d" % time.monotonic_ns()]
        for s in scopes:
            args += ["--scope", s]
        r = self.ctl(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def test_1_bootstrap_files_are_private(self):
        for name in ("admin.token", "signing.key", "ca.key"):
            mode = os.stat(os.path.join(self.control.data, name)).st_mode & 0o777
            self.assertEqual(mode, 0o600, name)
        self.assertTrue(self.admin.startswith("wdn_"))

    def test_2_push_history_rollback_as_ci_would(self):
        ci = self.mint("policy:write", "policy:read")
        r = self.ctl("policy", "push", EXAMPLES, "-m", "examples", token=ci)
        self.assertEqual(r.returncode, 0, r.stderr)
        first = int(r.stdout.split()[1])
        r = self.ctl("policy", "push", EXAMPLES, token=ci)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("unchanged at revision %d" % first, r.stdout)
        # A rejected push: exit 1, file:line:col, nothing committed.
        bad = os.path.join(self.work, "bad")
        os.makedirs(bad, exist_ok=True)
        with open(os.path.join(bad, "prod.yaml"), "w") as f:
            f.write("apiVersion: warden/v1\nkind: Policy\nmetadata: { name: p }\n"
                    "spec: { rulez: [] }\n")
        r = self.ctl("policy", "push", bad, token=ci)
        self.assertEqual(r.returncode, 1)
        self.assertIn("prod.yaml:4:9: unknown key 'rulez'", r.stderr)
        # Diff against the server: differences exit 5.
        changed = os.path.join(self.work, "changed")
        os.makedirs(changed, exist_ok=True)
        with open(os.path.join(EXAMPLES, "development.yaml")) as f:
            dev = f.read()
        with open(os.path.join(changed, "development.yaml"), "w") as f:
            f.write(dev)
        r = self.ctl("policy", "diff", changed, token=ci)
        self.assertEqual(r.returncode, 5, r.stdout + r.stderr)
        self.assertIn("- policy production-guardrails", r.stdout)
        r = self.ctl("policy", "push", changed, "-m", "dev only", token=ci)
        self.assertEqual(r.returncode, 0, r.stderr)
        second = int(r.stdout.split()[1])
        self.assertGreater(second, first)
        r = self.ctl("policy", "rollback", str(first), token=ci)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("policy", "history", "--format", "json", token=ci)
        self.assertEqual(r.returncode, 0, r.stderr)
        history = json.loads(r.stdout)
        revisions = history["revisions"]
        self.assertEqual(int(revisions[0]["rollback_of"]), first)
        self.assertGreater(int(revisions[0]["revision"]), second)
        r = self.ctl("policy", "diff", EXAMPLES, token=ci)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)  # rolled back.

    def test_3_scopes_and_revocation(self):
        reader = self.mint("policy:read")
        r = self.ctl("policy", "push", EXAMPLES, "--dry-run", token=reader)
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("PERMISSION_DENIED", r.stderr)
        r = self.ctl("tokens", "list", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = json.loads(r.stdout)
        tokens = listed["tokens"]
        ids = [t["id"] for t in tokens if t["id"].endswith(reader[4:20])]
        self.assertEqual(len(ids), 1)
        r = self.ctl("tokens", "revoke", ids[0])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("policy", "status", token=reader)
        self.assertEqual(r.returncode, 6)
        self.assertIn("revoked", r.stderr)
        r = self.ctl("policy", "status", token="wdn_nonsense")
        self.assertEqual(r.returncode, 6)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        # Every refusal is in the audit trail, under who tried (red team
        # pass 5: an admin token minted with a revoked one left no trace).
        r = self.ctl("tokens", "create", "backdoor", "--scope", "admin", token=reader)
        self.assertNotEqual(r.returncode, 0)

        def refused():
            r = self.ctl("audit", "search", "--kind", "admin", "--format", "json",
                         "--limit", "100000")
            self.assertEqual(r.returncode, 0, r.stderr)
            admin = [json.loads(l)["leaf"]["event"]["admin"] for l in r.stdout.splitlines()
                     if l.strip()]
            return [a for a in admin if a.get("action") == "api.refused"]
        self.assertTrue(wait_until(lambda: len(refused()) >= 4, timeout=30), refused())
        details = [(a.get("actor"), a.get("target"), a.get("detail")) for a in refused()]
        self.assertTrue(any((actor or "").startswith("token:test-") and "lacks scope" in d
                            for actor, _, d in details), details)
        # What was tried: the call, and the scope it needs.
        self.assertTrue(any("was revoked" in d and t == "TokenService/CreateToken"
                            and "needs TOKEN_SCOPE_ADMIN" in d
                            for _, t, d in details), details)
        self.assertTrue(any(actor == "unauthenticated" and "from 127.0.0.1" in d
                            for actor, _, d in details), details)
        self.assertTrue(all(not a.get("success") for a in refused()))

    def test_4_state_survives_restart(self):
        ci = self.mint("policy:write", "policy:read")
        with open(os.path.join(self.control.data, "signing.pub")) as f:
            pub = f.read()
        r = self.ctl("policy", "history", "--format", "json", token=ci)
        before = r.stdout
        self.control.stop(signal.SIGKILL)
        self.control.start()
        with open(os.path.join(self.control.data, "signing.pub")) as f:
            self.assertEqual(f.read(), pub)
        r = self.ctl("policy", "history", "--format", "json", token=ci)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, before)

    def test_5_unreachable_server_and_configuration_refusals(self):
        env = dict(os.environ, WARDEN_SERVER="127.0.0.1:%d" % free_port(), WARDEN_TOKEN=self.admin,
                   WARDEN_CA_FILE=self.certs["ca"])
        r = subprocess.run([WARDENCTL, "policy", "status", "--timeout", "2s"], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 7, r.stderr)
        # No CA: nothing is sent, the token least of all.
        env = dict(os.environ, WARDEN_SERVER="localhost:%d" % self.control.port,
                   WARDEN_TOKEN=self.admin)
        env.pop("WARDEN_CA_FILE", None)
        r = subprocess.run([WARDENCTL, "policy", "status"], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no CA to verify the control plane with", r.stderr)
        for bad, why in ((["--proxy-cert-ttl", "1s"], "--proxy-cert-ttl"),
                         (["--proxy-cert-ttl", "soon"], "--proxy-cert-ttl"),
                         (["--tls-cert", self.certs["cert"], "--tls-key", self.certs["key"],
                           "--tls-san", "warden.example"], "--tls-san")):
            r = subprocess.run([CONTROL, "--data-dir", os.path.join(self.work, "x"),
                                "--listen", "127.0.0.1:%d" % free_port()] + bad,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(why, r.stderr)

    def test_6_own_ca_serves_tls_without_an_operator_certificate(self):
        work = tempfile.mkdtemp(prefix="warden-control-own-ca-")
        own = ControlPlane(work, None, extra_args=["--tls-san", "warden.example.internal",
                                                   "--tls-san", "10.9.8.7"]).start()
        try:
            ca = os.path.join(own.data, "ca.crt")
            self.assertEqual(os.stat(os.path.join(own.data, "ca.key")).st_mode & 0o777, 0o600)
            r = subprocess.run([WARDENCTL, "policy", "status"], env=own.env(),
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            # The certificate verifies against DATA_DIR/ca.crt and names
            # localhost, 127.0.0.1 and every --tls-san.
            ctx = ssl.create_default_context(cafile=ca)
            ctx.set_alpn_protocols(["h2"])
            with socket.create_connection(("127.0.0.1", own.port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    der = tls.getpeercert(binary_form=True)
            pem = ssl.DER_cert_to_PEM_cert(der)
            text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem,
                                  capture_output=True, text=True, check=True).stdout
            for name in ("DNS:localhost", "IP Address:127.0.0.1", "DNS:warden.example.internal",
                         "IP Address:10.9.8.7", "TLS Web Server Authentication"):
                self.assertIn(name, text)
        finally:
            own.stop()


if __name__ == "__main__":
    unittest.main()
