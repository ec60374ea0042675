#!/usr/bin/python3
"""What a login costs: connect + authenticate + a first query + close, one
after the other from psycopg2, side by side in one run:

  direct      PostgreSQL 15 itself (scram-sha-256, TLS)
  scram       warden-proxy, a user of its config (SCRAM-SHA-256, TLS)
  oidc-rs256  warden-proxy, an RS256 identity-provider token as the password
  oidc-es256  warden-proxy, an ES256 token
  service     warden-proxy, a Warden service token (db:connect)
  cert        warden-proxy, a `wardenctl login` client certificate

    /usr/bin/python3 tests/bench/login.py [--logins 300] [--reps 3]

Prints median and p99 milliseconds per login and the proxy's CPU per
login, median of the reps. Providers and service tokens come through
warden-control in the policy bundle, as in production. All on loopback;
every process is stopped at the end."""

import argparse
import os
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
from proxyharness import WardenProxy, make_ca_and_cert, cpu_seconds  # noqa: E402


def logins(n, **kwargs):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn = psycopg2.connect(connect_timeout=10, **kwargs)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.close()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--logins", type=int, default=300)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    subprocess.run(["bazel", "build", "//controlplane/server:warden-control",
                    "//controlplane/cli:wardenctl", "//dataplane/server:warden-proxy"],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="warden-login-bench-")
    pg = PostgresServer()
    control = proxy = idp = None
    try:
        pg.start()
        setup_sample(pg)
        certs = make_ca_and_cert(os.path.join(work, "tls"))
        idp = IdpServer(certs["cert"], certs["key"], free_port())
        control = ControlPlane(work, extra_args=["--idp-ca-file", certs["ca"]]).start()
        with open(os.path.join(REPO, "policy", "examples", "production.yaml")) as f:
            production = f.read()
        control.push_files({"production.yaml": production,
                            "idp.yaml": idp.idp.provider_yaml("bench-idp", groups_claims=())})
        service_token = control.create_token("bench-bot", "--scope", "db:connect",
                                             "--environment", "prod")
        ports = {"scram": free_port(), "token": free_port(), "cert": free_port()}
        tls = "{ mode: require, cert_file: %s, key_file: %s }" % (certs["cert"], certs["key"])
        config = f"""
proxy: {{ workers: 2, log_level: warn }}
{control.proxy_policy(os.path.join(work, 'state'), "prod", "login-bench")}
listeners:
  - {{ name: scram, port: {ports['scram']}, environment: prod, tls: {tls} }}
  - {{ name: token, port: {ports['token']}, environment: prod, auth: token, tls: {tls} }}
  - {{ name: cert, port: {ports['cert']}, environment: prod, auth: cert, tls: {tls} }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
users:
  - {{ name: alice, password: alice-pw }}
"""
        proxy = WardenProxy(config, work, ports).start()
        deadline = time.time() + 30
        while "in force" not in proxy.log() and time.time() < deadline:
            time.sleep(0.1)
        common = dict(host="localhost", dbname="shop", sslmode="verify-full",
                      sslrootcert=certs["ca"])
        user = "alice@example.com"
        # A certificate as a person gets it: wardenctl login with a token.
        token_file = os.path.join(work, "alice.jwt")
        with open(token_file, "w") as f:
            f.write(idp.idp.token(user, ["engineers"]))
        login_dir = os.path.join(work, "login")
        r = subprocess.run([WARDENCTL_BIN, "login", "--token", token_file, "--out", login_dir,
                            "--server", "localhost:%d" % control.port,
                            "--ca-file", control.ca_file],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        cases = [
            ("direct", None, dict(host="127.0.0.1", port=pg.port, dbname="shop",
                                  user="warden_svc", password="svc-scram-pw",
                                  sslmode="disable")),
            ("scram", proxy, dict(common, port=ports["scram"], user="alice", password="alice-pw")),
            ("oidc-rs256", proxy, dict(common, port=ports["token"], user=user,
                                       password=idp.idp.token(user, ["engineers"]))),
            ("oidc-es256", proxy, dict(common, port=ports["token"], user=user,
                                       password=idp.idp.token(user, ["engineers"],
                                                              key=idp.idp.keys[1]))),
            ("service", proxy, dict(common, port=ports["token"], user="bench-bot",
                                    password=service_token)),
            ("cert", proxy, dict(common, port=ports["cert"], user=user,
                                 sslcert=os.path.join(login_dir, "client.crt"),
                                 sslkey=os.path.join(login_dir, "client.key"))),
        ]
        results = {}
        for name, _, kwargs in cases:  # warm-up
            logins(20, **kwargs)
        for _ in range(a.reps):
            for name, owner, kwargs in cases:  # interleaved
                cpu0 = cpu_seconds(owner.pid) if owner else 0
                median, p99 = logins(a.logins, **kwargs)
                cpu = (cpu_seconds(owner.pid) - cpu0) / a.logins * 1e6 if owner else 0
                results.setdefault(name, []).append((median, p99, cpu))
        print("| login | median ms | p99 ms | proxy CPU µs/login |")
        print("|---|--:|--:|--:|")
        for name, owner, _ in cases:
            rows = results[name]
            med = lambda i: statistics.median(r[i] for r in rows)
            print("| %s | %.2f | %.2f | %s |" % (name, med(0), med(1),
                                                "%.0f" % med(2) if owner else "–"))
        print("\n(direct is plaintext to PostgreSQL; every proxy row is TLS from the client "
              "plus SCRAM to PostgreSQL)")
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
