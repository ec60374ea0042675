"""Policies pushed through the control plane reach the fleet: a real
PostgreSQL 15, warden-control over TLS and two warden-proxies that take
their policy from it (signed bundles, verified, last-known-good on disk).
Observed through behaviour over a real client and through the fleet view."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))
sys.path.insert(0, HERE)

from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, make_ca_and_cert, pause, wait_until  # noqa: E402
import rawpg  # noqa: E402
from controlharness import WARDENCTL_BIN as WARDENCTL, ControlPlane as Control  # noqa: E402

POLICY = """apiVersion: warden/v1
kind: Policy
metadata: { name: fleet-guard }
spec:
  environments: [prod]
  rules:
    - name: no-drop
      match: { commands: [DROP TABLE] }
      action: deny
      message: pushed from the control plane
"""



class DistributionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="warden-fleet-")
        cls.certs = make_ca_and_cert(os.path.join(cls.work, "certs"))
        cls.proxies = {}
        cls.tokens = {}
        cls.admin_ports = {}
        cls.control = None
        cls.pg = PostgresServer()
        try:
            cls.pg.start()
            setup_sample(cls.pg)
            cls.control = Control(cls.work, cls.certs).start()
            with open(os.path.join(cls.control.data, "admin.token")) as f:
                cls.admin = f.read().strip()
            for name in ("p1", "p2"):
                cls.proxies[name] = cls.make_proxy(name).start()
        except BaseException:
            cls.tearDownClass()  # unittest skips it when setUpClass fails.
            raise

    @classmethod
    def make_proxy(cls, name, port=None, enroll=True):
        port = port or free_port()
        # p2 has an operator endpoint and may serve a stale policy for 3 s.
        admin = ("admin: { port: %d }" % cls.admin_ports.setdefault(name, free_port())
                 if name == "p2" else "")
        stale = "max_disconnected: 3s" if name == "p2" else ""
        workdir = os.path.join(cls.work, name)
        os.makedirs(workdir, exist_ok=True)
        # One bootstrap token per proxy, made once: a restarted proxy reuses
        # the certificate it enrolled for (and the token works once anyway).
        if enroll and name not in cls.tokens:
            cls.tokens[name] = cls.control.bootstrap_token_file("prod", name)
        token_line = ("bootstrap_token_file: %s" % cls.tokens[name]) if enroll else ""
        config = f"""
proxy: {{ workers: 1, log_level: info }}
policy:
  control_plane:
    address: localhost:{cls.control.port}
    ca_file: {cls.control.ca_file}
    trusted_keys: [{os.path.join(cls.control.data, 'signing.pub')}]
    state_dir: {os.path.join(workdir, 'state')}
    {token_line}
    proxy_id: {name}
    environment: prod
    {stale}
{admin}
listeners:
  - {{ name: main, port: {port}, environment: prod }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {cls.pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
users:
  - {{ name: alice, password: alice-pw }}
"""
        return WardenProxy(config, workdir, {"main": port})

    @classmethod
    def tearDownClass(cls):
        for p in cls.proxies.values():
            p.stop()
        if cls.control and cls.control.proc:
            cls.control.stop()
        cls.pg.stop()

    def ctl(self, *args):
        env = dict(os.environ, WARDEN_SERVER="localhost:%d" % self.control.port,
                   WARDEN_CA_FILE=self.certs["ca"], WARDEN_TOKEN=self.admin)
        return subprocess.run([WARDENCTL] + list(args), env=env, capture_output=True,
                              text=True, timeout=60)

    def push(self, text):
        path = os.path.join(self.work, "policies")
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "prod.yaml"), "w") as f:
            f.write(text)
        r = self.ctl("policy", "push", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout.split()[1])

    def query(self, proxy, sql):
        """(error fields or None) of `sql` through `proxy`; raises on login failure."""
        conn = rawpg.RawConn(proxy.port("main"))
        try:
            conn.login("alice", "alice-pw", "shop")
            rows, error = conn.simple_query(sql)
            return error
        finally:
            conn.close()

    def refuses(self, proxy, sql, rule):
        try:
            error = self.query(proxy, sql)
        except (RuntimeError, EOFError, OSError):
            return False
        return error is not None and rule in error.get("M", "")

    def readyz(self, name):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.admin_ports[name],
                                        timeout=10) as r:
                return r.status, r.read().decode().strip()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode().strip()

    def metric(self, name, metric):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_ports[name],
                                    timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(metric + " "):
                    return float(line.split()[1])
        raise KeyError(metric)

    def fleet(self):
        r = self.ctl("policy", "status", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_fleet_lifecycle(self):
        # No bundle yet: connections are refused with 57P03, never let through.
        with self.assertRaises(RuntimeError) as ctx:
            self.query(self.proxies["p1"], "SELECT 1")
        self.assertIn("57P03", str(ctx.exception))

        first = self.push(POLICY)
        for name, proxy in self.proxies.items():
            self.assertTrue(wait_until(lambda: self.refuses(proxy, "DROP TABLE orders", "no-drop")),
                            name + "\n" + proxy.log())
            self.assertIsNone(self.query(proxy, "SELECT count(*) FROM orders"))
            # The refusal names the revision that decided it.
            self.assertIn("[policy revision %d]" % first,
                          self.query(proxy, "DROP TABLE orders").get("D", ""))

        def all_running(rev):
            status = self.fleet()
            running = {p["proxy_id"]: int(p.get("running_revision", 0))
                       for p in status.get("proxies", [])}
            return running.get("p1") == rev and running.get("p2") == rev
        self.assertTrue(wait_until(lambda: all_running(first)), self.fleet())

        second = self.push(POLICY + """    - name: no-truncate
      match: { commands: [TRUNCATE TABLE] }
      action: deny
""")
        for proxy in self.proxies.values():
            self.assertTrue(wait_until(lambda: self.refuses(proxy, "TRUNCATE orders", "no-truncate")))
        self.assertTrue(wait_until(lambda: all_running(second)))

        self.assertTrue(wait_until(lambda: self.readyz("p2") == (200, "ready")),
                        self.readyz("p2"))
        self.assertEqual(self.metric("p2", "warden_policy_watch_connected"), 1)

        # The control plane goes away: the fleet keeps enforcing.
        self.control.stop(signal.SIGKILL)
        self.assertTrue(self.refuses(self.proxies["p2"], "TRUNCATE orders", "no-truncate"))
        # Still ready, but saying that its policy may be stale and why;
        # past max_disconnected, out of rotation (503) while it serves on.
        self.assertTrue(wait_until(lambda: self.readyz("p2")[1].startswith("ready (policy revision %d; no healthy policy watch for" % second)),
                        self.readyz("p2"))
        self.assertEqual(self.readyz("p2")[0], 200)
        self.assertEqual(self.metric("p2", "warden_policy_watch_connected"), 0)
        self.assertTrue(wait_until(lambda: self.readyz("p2")[0] == 503), self.readyz("p2"))
        self.assertIn("policy may be stale (control_plane.max_disconnected 3s)", self.readyz("p2")[1])
        self.assertGreater(self.metric("p2", "warden_policy_watch_unhealthy_seconds"), 3)
        self.assertTrue(self.refuses(self.proxies["p2"], "TRUNCATE orders", "no-truncate"))
        # A proxy restarted while it is away serves its last-known-good.
        port = self.proxies["p1"].port("main")
        self.proxies["p1"].stop()
        self.proxies["p1"] = self.make_proxy("p1", port).start()
        self.assertTrue(wait_until(lambda: self.refuses(self.proxies["p1"], "TRUNCATE orders",
                                                        "no-truncate")),
                        self.proxies["p1"].log())
        self.assertIn("last-known-good", self.proxies["p1"].log())

        # Back again: the fleet resyncs and takes the next push.
        self.control.start()
        third = self.push(POLICY.replace("no-drop", "no-drop-v3"))
        for proxy in self.proxies.values():
            self.assertTrue(wait_until(lambda: self.refuses(proxy, "DROP TABLE orders", "no-drop-v3"),
                                       timeout=60), proxy.log()[-3000:])
        self.assertTrue(wait_until(lambda: all_running(third), timeout=30), self.fleet())
        self.assertTrue(wait_until(lambda: self.readyz("p2") == (200, "ready")),
                        self.readyz("p2"))
        self.assertEqual(self.query(self.proxies["p1"], "SELECT count(*) FROM orders"), None)
        # Each proxy enrolled once with its token and authenticates with the
        # certificate Warden's CA issued it.
        for name in ("p1", "p2"):
            self.assertIn("enrolled: got a certificate for proxy %s of environment prod" % name,
                          self.proxies[name].log())

    def test_push_wait_returns_once_every_proxy_runs_the_revision(self):
        if not wait_until(lambda: all(p["connected"] for p in self.fleet()["proxies"]
                                      if p["proxy_id"] in ("p1", "p2"))):
            self.fail(self.fleet())
        path = os.path.join(self.work, "policies-wait")
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "prod.yaml"), "w") as f:
            f.write(POLICY.replace("no-drop", "no-drop-waited"))
        r = self.ctl("policy", "push", path, "--wait", "30s")
        self.assertEqual(r.returncode, 0, r.stderr)
        rev = int(r.stdout.split()[1])
        self.assertIn("2 proxies run revision %d" % rev, r.stdout)
        # No waiting of our own: when push returns, both proxies enforce it.
        running = {p["proxy_id"]: p["running_revision"] for p in self.fleet()["proxies"]}
        self.assertGreaterEqual(running["p1"], rev)
        self.assertGreaterEqual(running["p2"], rev)
        for proxy in (self.proxies["p1"], self.proxies["p2"]):
            self.assertTrue(self.refuses(proxy, "DROP TABLE orders", "no-drop-waited"))

        # A proxy that cannot take it (stopped) makes the wait fail, named.
        pid = self.proxies["p1"].pid
        pause(pid)
        try:
            with open(os.path.join(path, "prod.yaml"), "w") as f:
                f.write(POLICY.replace("no-drop", "no-drop-stalled"))
            r = self.ctl("policy", "push", path, "--wait", "2s")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            stalled = int(r.stdout.split()[1])
            self.assertIn("not running revision %d yet" % stalled, r.stderr)
            self.assertIn("p1 runs %d" % rev, r.stderr)
            self.assertNotIn("p2 runs", r.stderr)
        finally:
            os.kill(pid, signal.SIGCONT)
        r = self.ctl("policy", "push", path, "--wait", "30s")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("unchanged at revision %d" % stalled, r.stdout)
        self.assertIn("2 proxies run revision %d" % stalled, r.stdout)
        # A wait that is no duration is a usage error, before anything is sent.
        r = self.ctl("policy", "push", path, "--wait", "soon")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--wait soon is not a positive duration", r.stderr)

    def test_proxy_without_certificate_or_token_fails_closed(self):
        proxy = self.make_proxy("p3", enroll=False)
        proxy.start()
        try:
            with self.assertRaises(RuntimeError) as ctx:
                self.query(proxy, "SELECT 1")
            self.assertIn("57P03", str(ctx.exception))
            self.assertTrue(wait_until(lambda: "no bootstrap token" in proxy.log()), proxy.log())
            names = [p["proxy_id"] for p in self.fleet().get("proxies", [])]
            self.assertNotIn("p3", names)
        finally:
            proxy.stop()


if __name__ == "__main__":
    unittest.main()
