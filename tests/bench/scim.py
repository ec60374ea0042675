#!/usr/bin/python3
"""What SCIM provisioning costs and how fast a deactivation bites, with
real processes (PostgreSQL 15, warden-control serving SCIM over HTTPS, a
warden-proxy enrolled with it, a fake OIDC provider for the users' tokens):

  provision   create --users users one by one (as Okta's first sync does,
              one HTTPS keep-alive connection), then add them all to one
              group, --batch members per PATCH: requests/s, p50/p99 ms,
              and how many policy revisions the burst became (changes are
              coalesced) and the bundle's size with that directory
  deactivate  --closes times: a user is connected (psycopg2, idle), SCIM
              deactivates them; milliseconds from sending the PATCH until
              the proxy's FATAL reaches the client's socket

    /usr/bin/python3 tests/bench/scim.py [--users 1000] [--batch 100] [--closes 20]

All on loopback; every process is stopped at the end."""

import argparse
import http.client
import json
import os
import select
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from controlharness import WARDENCTL_BIN, ControlPlane  # noqa: E402
from fakeidp import IdpServer  # noqa: E402
from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, make_ca_and_cert, wait_until  # noqa: E402

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Scim:
    def __init__(self, port, ca_file, token):
        self.conn = http.client.HTTPSConnection(
            "localhost", port, context=ssl.create_default_context(cafile=ca_file), timeout=30)
        self.headers = {"Authorization": "Bearer " + token,
                        "Content-Type": "application/scim+json"}

    def call(self, method, path, body=None):
        t0 = time.perf_counter()
        self.conn.request(method, "/scim/v2" + path,
                          body=json.dumps(body) if body is not None else None,
                          headers=self.headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        ms = (time.perf_counter() - t0) * 1000
        if resp.status >= 300:
            raise RuntimeError("%s %s: %d %s" % (method, path, resp.status, raw[:300]))
        return (json.loads(raw) if raw else None), ms


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--closes", type=int, default=20)
    a = ap.parse_args()
    subprocess.run(["bazel", "build", "//controlplane/server:warden-control",
                    "//controlplane/cli:wardenctl", "//dataplane/server:warden-proxy"],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="warden-scim-bench-")
    pg = PostgresServer()
    control = proxy = idp = None
    try:
        pg.start()
        setup_sample(pg)
        certs = make_ca_and_cert(os.path.join(work, "tls"))
        idp = IdpServer(certs["cert"], certs["key"], free_port())
        scim_port = free_port()
        control = ControlPlane(work, extra_args=[
            "--idp-ca-file", certs["ca"], "--scim-listen", "127.0.0.1:%d" % scim_port]).start()
        if not wait_until(lambda: "SCIM endpoint ready" in control.log()):
            raise RuntimeError(control.log())
        with open(os.path.join(REPO, "policy", "examples", "production.yaml")) as f:
            production = f.read()
        control.push_files({"production.yaml": production,
                            "idp.yaml": idp.idp.provider_yaml("bench-idp", groups_claims=())})
        scim = Scim(scim_port, control.ca_file,
                    control.create_token("bench-scim", "--scope", "scim"))
        port = free_port()
        state_dir = os.path.join(work, "state")
        config = f"""
proxy: {{ workers: 2, log_level: info }}
{control.proxy_policy(state_dir, "prod", "scim-bench")}
listeners:
  - name: token
    port: {port}
    environment: prod
    auth: token
    tls: {{ mode: require, cert_file: {certs['cert']}, key_file: {certs['key']} }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
"""
        proxy = WardenProxy(config, work, {"token": port}).start()
        if not wait_until(lambda: "in force" in proxy.log(), timeout=30):
            raise RuntimeError(proxy.log())

        def revisions():
            r = subprocess.run([WARDENCTL_BIN, "policy", "history", "--limit", "100000",
                                "--format", "json"], env=control.env(), capture_output=True, text=True,
                               timeout=60)
            return len(json.loads(r.stdout)["revisions"])

        before = revisions()
        # Provision: users one by one, then the group in batches.
        ids, create_ms = [], []
        t0 = time.perf_counter()
        for i in range(a.users):
            name = "user%05d@example.com" % i
            body, ms = scim.call("POST", "/Users", {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name, "active": True,
                "emails": [{"primary": True, "type": "work", "value": name}],
                "name": {"givenName": "User", "familyName": str(i)}})
            ids.append(body["id"])
            create_ms.append(ms)
        create_s = time.perf_counter() - t0
        group, _ = scim.call("POST", "/Groups", {"displayName": "contractors", "members": []})
        patch_ms = []
        t0 = time.perf_counter()
        for i in range(0, len(ids), a.batch):
            _, ms = scim.call("PATCH", "/Groups/" + group["id"], {
                "schemas": [PATCH], "Operations": [{
                    "op": "add", "path": "members",
                    "value": [{"value": x} for x in ids[i:i + a.batch]]}]})
            patch_ms.append(ms)
        patch_s = time.perf_counter() - t0
        last = "user%05d@example.com" % (a.users - 1)
        # Settled: the proxy's bundle has every user in the group.
        bundle_file = None

        def settled():
            nonlocal bundle_file
            for root, _, files in os.walk(state_dir):
                for f in files:
                    if "bundle" in f:
                        path = os.path.join(root, f)
                        with open(path, "rb") as fh:
                            if last.encode() in fh.read():
                                bundle_file = path
                                return True
            return False
        wait_until(settled, timeout=60)
        published = revisions() - before
        print("| provisioning | requests | per second | p50 ms | p99 ms |")
        print("|---|--:|--:|--:|--:|")
        print("| create user | %d | %.0f | %.2f | %.2f |" % (
            len(create_ms), len(create_ms) / create_s, statistics.median(create_ms),
            pct(create_ms, 0.99)))
        print("| add %d members to a group | %d | %.1f | %.2f | %.2f |" % (
            a.batch, len(patch_ms), len(patch_ms) / patch_s, statistics.median(patch_ms),
            pct(patch_ms, 0.99)))
        print()
        print("%d SCIM changes became %d policy revisions; the proxy's stored bundle with %d "
              "users is %s bytes" % (len(create_ms) + len(patch_ms) + 1, published, a.users,
                                     os.path.getsize(bundle_file) if bundle_file else "?"))

        # Deactivation: from the PATCH to the FATAL on an idle client.
        close_ms = []
        for i in range(a.closes):
            name = "user%05d@example.com" % i
            conn = psycopg2.connect(host="localhost", port=port, dbname="shop", user=name,
                                    password=idp.idp.token(name), sslmode="require",
                                    connect_timeout=10)
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            conn.commit()
            t0 = time.perf_counter()
            scim.call("PATCH", "/Users/" + ids[i], {
                "schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]})
            readable, _, _ = select.select([conn.fileno()], [], [], 30)
            if not readable:
                raise RuntimeError("no FATAL within 30 s for " + name)
            close_ms.append((time.perf_counter() - t0) * 1000)
            conn.close()
        print()
        print("| deactivation → session closed | n | median ms | p95 ms | max ms |")
        print("|---|--:|--:|--:|--:|")
        print("| SCIM PATCH active=false to FATAL at the idle client | %d | %.0f | %.0f | %.0f |" % (
            len(close_ms), statistics.median(close_ms), pct(close_ms, 0.95), max(close_ms)))
        return 0
    finally:
        for part in (proxy, control):
            if part:
                part.stop()
        if idp:
            idp.stop()
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
