"""A real Warden stack for attack regressions: PostgreSQL 15 with the sample
`shop` database, warden-control, and one warden-proxy enrolled with a
bootstrap token, auditing to the control plane, with the shipped example
policies (policy/examples: production guardrails in `prod`, open `dev`).

    stack = Stack("warden-sec-").start()
    conn = stack.raw("prod")          # rawpg.RawConn, logged in as alice
    stack.events()                    # every audit leaf, as dicts
    stack.stop()
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "harness"))
sys.path.insert(0, os.path.join(TESTS, "integration"))

from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, pause, wait_until  # noqa: E402,F401
from controlharness import WARDENCTL_BIN as WARDENCTL, ControlPlane  # noqa: E402,F401
import rawpg  # noqa: E402

# The shipped example policies: production.yaml guards prod, and
# development.yaml leaves dev open.
EXAMPLES = os.path.join(os.path.dirname(TESTS), "policy", "examples")


class Stack:
    def __init__(self, prefix, proxy_id="sec-p1", control_args=(), proxy_settings="",
                 audit_settings=(), extra_users=()):
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.proxy_id = proxy_id
        self.control_args = list(control_args)
        # Extra `proxy:` settings, e.g. "failed_login_window: 4s".
        self.proxy_settings = proxy_settings
        # Extra `audit:` lines, e.g. ("max_spool_bytes: 1048576",).
        self.audit_settings = list(audit_settings)
        # Extra `users:` entries (YAML flow maps), e.g.
        # "{ name: carol, password: carol-pw, directory: true }".
        self.extra_users = list(extra_users)
        self.pg = PostgresServer()
        self.control = None
        self.proxy = None
        self.ports = {}

    def start(self):
        try:
            self.pg.start()
            setup_sample(self.pg)
            self.control = ControlPlane(self.work, extra_args=self.control_args).start()
            r = self.ctl("policy", "push", EXAMPLES)
            assert r.returncode == 0, r.stderr
            self.proxy = self.make_proxy("proxy", self.proxy_id).start()
            assert wait_until(lambda: "in force" in self.proxy.log()), self.proxy.log()
        except BaseException:
            self.stop()
            raise
        return self

    def make_proxy(self, name, proxy_id, token_file=None):
        workdir = os.path.join(self.work, name)
        os.makedirs(workdir, exist_ok=True)
        token = token_file or self.control.bootstrap_token_file(
            "prod", proxy_id, also_serves=["dev"])
        self.ports = {"prod": free_port(), "dev": free_port()}
        audit_extra = "".join("  %s\n" % line for line in self.audit_settings)
        users_extra = "".join("  - %s\n" % u for u in self.extra_users)
        config = f"""
proxy: {{ workers: 1, log_level: info{', ' + self.proxy_settings if self.proxy_settings else ''} }}
policy:
  control_plane:
    address: localhost:{self.control.port}
    ca_file: {self.control.ca_file}
    trusted_keys: [{self.control.signing_pub()}]
    state_dir: {os.path.join(workdir, 'state')}
    bootstrap_token_file: {token}
    proxy_id: {proxy_id}
audit:
  mode: async
  spool_dir: {os.path.join(workdir, 'spool')}
{audit_extra}listeners:
  - {{ name: prod, port: {self.ports['prod']}, environment: prod }}
  - {{ name: dev, port: {self.ports['dev']}, environment: dev }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {self.pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
  - name: dev
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {self.pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
users:
  - {{ name: alice, password: alice-pw }}
{users_extra}"""
        return WardenProxy(config, workdir, dict(self.ports))

    def stop(self):
        if self.proxy:
            self.proxy.stop()
        if self.control and self.control.proc:
            self.control.stop()
        self.pg.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def ctl(self, *args, timeout=60):
        return subprocess.run([WARDENCTL] + list(args), env=self.control.env(),
                              capture_output=True, text=True, timeout=timeout)

    def raw(self, listener="prod", user="alice", password="alice-pw"):
        conn = rawpg.RawConn(self.ports[listener])
        conn.login(user, password, "shop")
        return conn

    def events(self):
        """Every audit event in the log, as AuditLeaf dicts (asserts the read worked)."""
        r = self.ctl("audit", "tail", "--from", "0", "--limit", "1000000", "--format", "json")
        assert r.returncode == 0, r.stderr
        return [json.loads(line)["leaf"] for line in r.stdout.splitlines() if line.strip()]

    def verify_log(self):
        """Exports the whole log and verifies it offline against a fresh
        checkpoint; returns wardenctl's result."""
        cp = os.path.join(self.work, "checkpoint.note")
        r = self.ctl("audit", "checkpoint", "--out", cp)
        assert r.returncode == 0, r.stderr
        log = os.path.join(self.work, "log.jsonl")
        r = self.ctl("audit", "export", "--out", log, "--checkpoint", cp)
        if r.returncode != 0:
            return r
        return self.ctl("audit", "verify", "--log", log, "--checkpoint", cp,
                        "--key", os.path.join(self.control.data, "audit.vkey"))

    def recorded(self, marker, timeout=15):
        """Whether a statement whose text holds `marker` reaches the audit
        log within `timeout` seconds."""
        return wait_until(lambda: any(marker in t for t in self.statement_texts()),
                          timeout=timeout)

    def statement_texts(self):
        return [e["event"].get("statement", {}).get("text", "") for e in self.events()]

    def scalar(self, sql):
        """One value from PostgreSQL directly (not through Warden)."""
        return self.pg.psql(sql, dbname="shop").strip()
