"""The README's first command works: the demo starts PostgreSQL and
warden-proxy, its printed psql lines connect, and Ctrl-C stops everything."""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def read_banner(proc, timeout):
    """The demo's output up to its "Press Ctrl-C" line."""
    lines = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    return "".join(lines)


def exported_env(out):
    """The environment after the demo's printed `export ...` line, with its
    $(cat FILE) read."""
    export = re.search(r"^export (.*)$", out, re.M).group(1)
    env = dict(os.environ)
    for k, v in re.findall(r"(\w+)=(\$\(cat [^)]+\)|\S+)", export):
        if v.startswith("$(cat "):
            with open(v[len("$(cat "):-1]) as f:
                v = f.read().strip()
        env[k] = v
    return env


class DemoTest(unittest.TestCase):
    def test_demo_connects_and_stops_on_ctrl_c(self):
        proc = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO, "scripts/lib/demo.py"),
                                 "--for-seconds", "120"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out = read_banner(proc, 60)
            psql_lines = re.findall(r'^psql "([^"]+)"', out, re.M)
            env_lines = re.findall(r"^(PGHOST=.*) psql$", out, re.M)
            self.assertEqual(len(psql_lines), 2, out)
            self.assertEqual(len(env_lines), 2, out)
            pg_pid = int(re.search(r"PostgreSQL \(pid (\d+)\)", out).group(1))
            proxy_pid = int(re.search(r"warden-proxy \(pid (\d+)\)", out).group(1))
            control_pid = int(re.search(r"warden-control \(pid (\d+)\)", out).group(1))
            # The printed control-plane lines work: the proxy runs the pushed revision.
            env = exported_env(out)
            wardenctl = re.search(r"^(\S+) policy status", out, re.M).group(1)
            r = subprocess.run([wardenctl, "policy", "status", "--format", "json"], env=env,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('"demo-proxy"', r.stdout)
            # The prod line, pasted as printed.
            r = subprocess.run(["psql", psql_lines[0], "-Atc", "SELECT current_user"],
                               env=dict(os.environ, PGPASSWORD="alice-pw"),
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.stdout.strip(), "warden_svc", r.stderr)
            # prod enforces the production guardrails: DROP TABLE never lands.
            r = subprocess.run(["psql", psql_lines[0], "-Atc", "DROP TABLE orders"],
                               env=dict(os.environ, PGPASSWORD="alice-pw"),
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("Warden: denied by rule", r.stderr)
            r = subprocess.run(["psql", psql_lines[0], "-Atc", "SELECT count(*) FROM orders"],
                               env=dict(os.environ, PGPASSWORD="alice-pw"),
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.stdout.strip(), "20", r.stderr)
            # The dev environment line, as environment variables.
            env = dict(os.environ)
            for kv in env_lines[1].split():
                k, v = kv.split("=", 1)
                env[k] = v
            r = subprocess.run(["psql", "-Atc", "SELECT current_database()"], env=env,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.stdout.strip(), "shop_staging", r.stderr)
            # dev is open (development.yaml): DDL runs there, the banner's
            # statements too (issue 15: they failed with "must be owner").
            r = subprocess.run(["psql", "-Atc", "CREATE TABLE demo_t (id int); DROP TABLE demo_t"],
                               env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            tried = re.findall(r"^  ((?:DROP|DELETE|CREATE INDEX)[^;]*;)", out, re.M)
            self.assertEqual(len(tried), 3, out)
            for statement in tried:  # each in a transaction rolled back
                r = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-Atc",
                                    "BEGIN; " + statement + " ROLLBACK"],
                                   env=env, capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 0, statement + "\n" + r.stderr)
            r = subprocess.run(["psql", "-Atc", "SELECT count(*) FROM orders"],
                               env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.stdout.strip(), "20", r.stderr)
            # dev has a role of its own: what it may set on its role does not
            # reach prod's sessions (a red-team finding: a shared role let
            # dev make every new prod session read-only).
            r = subprocess.run(["psql", "-Atc", "SELECT current_user; "
                                "ALTER ROLE CURRENT_USER SET default_transaction_read_only = on"],
                               env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotEqual(r.stdout.split()[0], "warden_svc")
            r = subprocess.run(["psql", psql_lines[0], "-Atc", "SHOW default_transaction_read_only"],
                               env=dict(os.environ, PGPASSWORD="alice-pw"),
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.stdout.strip(), "off", r.stderr)
            # bob may not use prod.
            r = subprocess.run(["psql", psql_lines[0].replace("user=alice", "user=bob"), "-c", "SELECT 1"],
                               env=dict(os.environ, PGPASSWORD="bob-pw"),
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("not allowed in environment", r.stderr)
            # The audit trail shows the session; the printed lines prove it.
            ctl_env = exported_env(out)
            deadline = time.time() + 20
            tail = ""
            while time.time() < deadline and "DROP TABLE orders" not in tail:
                tail = subprocess.run([wardenctl, "audit", "tail", "--limit", "100"], env=ctl_env,
                                      capture_output=True, text=True, timeout=30).stdout
                time.sleep(0.2)
            self.assertIn("alice: DENY", tail)
            self.assertIn("DROP TABLE orders", tail)
            # Signed in through the demo's identity provider, as printed:
            # the audit trail names the provider's user.
            token_file, sso = re.search(r'^PGPASSWORD=\$\(cat (\S+)\) psql "([^"]+)"$',
                                        out, re.M).groups()
            with open(token_file) as f:
                token = f.read().strip()
            r = subprocess.run(["psql", sso, "-Atc", "SELECT 'sso-' || count(*) FROM orders"],
                               env=dict(os.environ, PGPASSWORD=token),
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.stdout.strip(), "sso-20", r.stderr)
            deadline = time.time() + 20
            # (Wait for the statement itself: the login's events may reach
            # the control plane in an earlier batch than it.)
            while time.time() < deadline and "alice@example.com: ALLOW" not in tail:
                tail = subprocess.run([wardenctl, "audit", "tail", "--limit", "100"], env=ctl_env,
                                      capture_output=True, text=True, timeout=30).stdout
                time.sleep(0.2)
            self.assertRegex(tail, r"alice@example\.com: authentication ok \(oidc:demo-idp\)")
            self.assertIn("alice@example.com: ALLOW SELECT 'sso-' || count(*) FROM orders", tail)
            # The printed `wardenctl login --token` line works against the
            # demo (issue 15: it printed a psql line for a certificate
            # listener the demo did not have), and so does the psql line it
            # prints in turn.
            login_line = re.search(r"^(\S+ login --token .*)$", out, re.M).group(1)
            r = subprocess.run(login_line, shell=True, env=ctl_env, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, login_line + "\n" + r.stderr)
            cert_psql = re.search(r'^psql "([^"]+)"$', r.stdout, re.M).group(1)
            r = subprocess.run(["psql", cert_psql, "-Atc", "SELECT 'cert-' || count(*) FROM orders"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.stdout.strip(), "cert-20", r.stderr)
            # The device login: a page a person opens in a browser, with a
            # form that approves the code.
            device_line = re.search(r"^(\S+ login --idp-ca-file .*)$", out, re.M).group(1)
            idp_ca = re.search(r"--idp-ca-file (\S+)", device_line).group(1)
            login = subprocess.Popen(device_line, shell=True, env=ctl_env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                prompt = login.stderr.readline()
                m = re.search(r"open (https://\S+) and enter the code (\S+)", prompt)
                self.assertIsNotNone(m, prompt)
                url, code = m.groups()
                ctx = ssl.create_default_context(cafile=idp_ca)
                page = urllib.request.urlopen(url, context=ctx, timeout=10).read().decode()
                self.assertIn('name="user_code"', page)
                self.assertIn('action="/device/approve"', page)
                approve = url + "/approve?" + urllib.parse.urlencode(
                    {"user_code": code, "user": "alice@example.com", "groups": "engineers"})
                req = urllib.request.Request(approve, headers={"Accept": "text/html"})
                done = urllib.request.urlopen(req, context=ctx, timeout=10).read().decode()
                self.assertIn("approved", done)
                stdout, stderr = login.communicate(timeout=60)
            finally:
                if login.poll() is None:
                    login.kill()
                    login.wait()
            self.assertEqual(login.returncode, 0, stderr)
            device_psql = re.search(r'^psql "([^"]+)"$', stdout, re.M).group(1)
            r = subprocess.run(["psql", device_psql, "-Atc", "SELECT 'device-' || 1"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.stdout.strip(), "device-1", r.stderr)
            audit_lines = re.findall(r"^(\S+ audit (?:checkpoint|verify) .*)$", out, re.M)
            self.assertEqual(len(audit_lines), 2, out)
            for line in audit_lines:
                r = subprocess.run(line, shell=True, env=ctl_env, capture_output=True,
                                   text=True, timeout=60)
                self.assertEqual(r.returncode, 0, line + "\n" + r.stdout + r.stderr)
            self.assertIn("verified", r.stdout)
            # The printed SCIM line answers as a provisioning client expects.
            scim_line = re.search(r"^(curl .*/scim/v2/Users)$",
                                  out, re.M).group(1)
            r = subprocess.run(scim_line, shell=True, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, scim_line + "\n" + r.stderr)
            self.assertEqual(json.loads(r.stdout)["schemas"],
                             ["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=60)
            self.assertEqual(proc.returncode, 0, rest)
            self.assertIn("Stopped warden-proxy, warden-control and PostgreSQL", rest)
            for pid in (pg_pid, proxy_pid, control_pid):
                deadline = time.time() + 10
                while alive(pid) and time.time() < deadline:
                    time.sleep(0.1)
                self.assertFalse(alive(pid), "pid %d still running after Ctrl-C" % pid)
        finally:
            if proc.poll() is None:
                # Ctrl-C first: the demo stops what it started (a SIGKILL
                # would leave its PostgreSQL, control plane and proxy).
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def test_cluster_demo_survives_a_killed_replica(self):
        """scripts/demo --cluster: three replicas on etcd; the printed lines
        work, and with the replica the proxy and wardenctl use killed, both
        move on: the proxy reports to another replica, wardenctl reads the
        same history there, and Ctrl-C stops everything, etcd included."""
        proc = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO, "scripts/lib/demo.py"),
                                 "--cluster", "--for-seconds", "180"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out = read_banner(proc, 90)
            controls = [(int(pid), int(port)) for pid, port in re.findall(
                r"^warden-control \(pid (\d+)\) on localhost:(\d+)", out, re.M)]
            self.assertEqual(len(controls), 3, out)
            etcd_line = re.search(r"^etcd members on (.*) \(TLS", out, re.M)
            self.assertIsNotNone(etcd_line, out)
            env = exported_env(out)
            self.assertEqual(env["WARDEN_SERVER"],
                             ",".join("localhost:%d" % port for _, port in controls))
            wardenctl = re.search(r"^(\S+) policy status", out, re.M).group(1)
            history = subprocess.run([wardenctl, "policy", "history"], env=env,
                                     capture_output=True, text=True, timeout=30)
            self.assertEqual(history.returncode, 0, history.stderr)
            psql_line = re.findall(r'^psql "([^"]+)"', out, re.M)[0]

            def count():
                return subprocess.run(["psql", psql_line, "-Atc", "SELECT count(*) FROM orders"],
                                      env=dict(os.environ, PGPASSWORD="alice-pw"),
                                      capture_output=True, text=True, timeout=30)
            self.assertEqual(count().stdout.strip(), "20")
            # Each replica lists the proxies connected to it: before the
            # kill, the second does not list the demo's.
            second = subprocess.run([wardenctl, "policy", "status", "--format", "json"],
                                    env=dict(env, WARDEN_SERVER="localhost:%d" % controls[1][1]),
                                    capture_output=True, text=True, timeout=30)
            self.assertEqual(second.returncode, 0, second.stderr)
            self.assertNotIn('"demo-proxy"', second.stdout)
            # The first replica (the one both use) dies.
            os.kill(controls[0][0], signal.SIGKILL)
            r = subprocess.run([wardenctl, "policy", "history"], env=env,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, history.stdout)
            self.assertEqual(count().stdout.strip(), "20")
            # The proxy's policy watch moves on: another replica lists it.
            deadline = time.time() + 60
            status = ""
            while time.time() < deadline and '"demo-proxy"' not in status:
                status = subprocess.run([wardenctl, "policy", "status", "--format", "json"],
                                        env=env, capture_output=True, text=True,
                                        timeout=30).stdout
                time.sleep(0.5)
            self.assertIn('"demo-proxy"', status)
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=90)
            self.assertEqual(proc.returncode, 0, rest)
            for pid, _ in controls[1:]:
                deadline = time.time() + 10
                while alive(pid) and time.time() < deadline:
                    time.sleep(0.1)
                self.assertFalse(alive(pid), "replica %d still running after Ctrl-C" % pid)
            for endpoint in etcd_line.group(1).split(", "):
                port = int(endpoint.rsplit(":", 1)[1])
                with socket.socket() as probe:
                    self.assertNotEqual(probe.connect_ex(("127.0.0.1", port)), 0,
                                        "etcd still listens on %d" % port)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


if __name__ == "__main__":
    unittest.main()
