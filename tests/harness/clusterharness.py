"""warden-control as a cluster for tests and benches: replicas with shared
keys on an etcd cluster (etcdharness), proxies given every replica.

    from clusterharness import start_replicas, push_rule, proxy_config
    etcd = EtcdCluster(work, members=3).start()
    keys, replicas = start_replicas(work, etcd, ["a", "b"])
    push_rule(replicas[0], work, "no-drop")   # a one-rule policy for prod
    config = proxy_config("p1", work, replicas, keys, pg_port, port)
"""

import os
import shutil
import subprocess
import tempfile

from controlharness import CONTROL_BIN, WARDENCTL_BIN, ControlPlane

# A policy for prod that denies DROP TABLE under a rule named {rule}.
POLICY = """apiVersion: warden/v1
kind: Policy
metadata:
  name: cluster-test
spec:
  environments: [prod]
  databases: ["*"]
  defaults:
    action: allow
  rules:
    - name: {rule}
      match:
        commands: ["DROP TABLE"]
      action: deny
"""


class Replica(ControlPlane):
    """A ControlPlane whose admin token may come from another replica (the
    first replica of a cluster makes the only bootstrap admin token)."""

    token = None

    def admin_token(self):
        return self.token or super().admin_token()


def shared_keys(work):
    """The CA and signing key every replica shares, made once in WORK."""
    keys = os.path.join(work, "shared-keys")
    if not os.path.isdir(keys):
        subprocess.run([CONTROL_BIN, "--create-shared-keys", keys], check=True,
                       capture_output=True, timeout=30)
    return keys


def start_replica(work, etcd, keys, name, extra_args=()):
    """Replica NAME in WORK/NAME (its data kept across restarts)."""
    rwork = os.path.join(work, name)
    data = os.path.join(rwork, "control-data")
    if not os.path.isdir(data):
        os.makedirs(data)
        for f in ("ca.key", "ca.crt"):
            shutil.copy(os.path.join(keys, f), data)
    return Replica(rwork, extra_args=["--signing-key", os.path.join(keys, "signing.key")]
                   + list(extra_args) + etcd.control_args()).start()


def start_replicas(work, etcd, names, extra_args=()):
    """(shared keys folder, replicas), started one at a time: the first
    makes the bootstrap admin token, the others find it in the log and
    use it."""
    keys = shared_keys(work)
    replicas = []
    for name in names:
        replicas.append(start_replica(work, etcd, keys, name, extra_args))
    for r in replicas[1:]:
        r.token = replicas[0].admin_token()
    return keys, replicas


def push_rule(replica, work, rule):
    """Pushes POLICY with RULE through REPLICA; wardenctl's result."""
    folder = tempfile.mkdtemp(dir=work)
    with open(os.path.join(folder, "p.yaml"), "w") as f:
        f.write(POLICY.format(rule=rule))
    return subprocess.run([WARDENCTL_BIN, "policy", "push", folder], env=replica.env(),
                          capture_output=True, text=True, timeout=60)


def proxy_config(name, work, replicas, keys, pg_port, port, audit="async", workers=1):
    """A prod proxy NAME (state in WORK/NAME) given REPLICAS in that order,
    enrolling through the first with a one-time token, in front of the
    sample database `shop` on PG_PORT (user alice, password alice-pw)."""
    pwork = os.path.join(work, name)
    addresses = ", ".join("localhost:%d" % r.port for r in replicas)
    token = replicas[0].bootstrap_token_file("prod", name)
    return f"""
proxy: {{ workers: {workers}, log_level: info }}
policy:
  control_plane:
    address: [{addresses}]
    ca_file: {replicas[0].ca_file}
    trusted_keys: [{os.path.join(keys, "signing.pub")}]
    state_dir: {os.path.join(pwork, "state")}
    bootstrap_token_file: {token}
    proxy_id: {name}
audit: {{ mode: {audit}, spool_dir: {os.path.join(pwork, "spool")} }}
listeners:
  - {{ name: main, port: {port}, environment: prod }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {pg_port}, database: shop, user: warden_svc, password: svc-scram-pw }}
users:
  - {{ name: alice, password: alice-pw }}
"""
