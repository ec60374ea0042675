#!/usr/bin/python3
"""What recording costs: pgbench through three warden-proxies that differ
only in `audit` (off; async with intent events only; async with intent and
result events, the default; sync), all governed by the production
policy pushed through warden-control, interleaved in one run:

    /usr/bin/python3 tests/bench/audit_cost.py [--duration 10] [--reps 3]

Prints TPS per workload for each proxy and the cost of audit (1 - async /
off). With audit on, every statement's event is written to the spool before
the statement is relayed, the spool is fsynced every 20 ms and streamed to
warden-control. All local; every process is stopped at the end.

warden-control's CPU (utime + stime from /proc) is reported per
transaction and per event it committed (the growth of its audit tree over
the run) for the async proxy. `--modes async` and `--workloads 2,3` (1-based
rows of the table) measure a part only; WARDEN_CONTROL_BIN picks another
warden-control build."""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, cpu_seconds  # noqa: E402
from controlharness import WARDENCTL_BIN, ControlPlane  # noqa: E402

POLICY_DIR = os.path.join(REPO, "policy", "examples")
WORKLOADS = [
    ("select-only, simple", ["-S", "-M", "simple"], 1),
    ("select-only, simple", ["-S", "-M", "simple"], 8),
    ("select-only, prepared", ["-S", "-M", "prepared"], 8),
    ("TPC-B, simple", ["-M", "simple"], 8),
]


def proxy_config(name, control, pg_port, port, work, mode):
    token = control.bootstrap_token_file("prod", name)
    results = "true"
    if mode == "async-intents":
        mode, results = "async", "false"
    audit_block = ("audit: { mode: %s, results: %s, spool_dir: %s }\n"
                   % (mode, results, os.path.join(work, "spool"))
                   if mode != "off" else "audit: { mode: off }\n")
    return f"""
proxy: {{ workers: 2, log_level: warn }}
policy:
  control_plane:
    address: localhost:{control.port}
    ca_file: {control.ca_file}
    trusted_keys: [{control.signing_pub()}]
    state_dir: {os.path.join(work, 'state')}
    bootstrap_token_file: {token}
    proxy_id: {name}
{audit_block}listeners:
  - {{ name: main, port: {port}, environment: prod }}
environments:
  - name: prod
    databases:
      - name: bench
        upstream: {{ host: 127.0.0.1, port: {pg_port}, database: bench, user: warden_svc, password: svc-scram-pw }}
users:
  - {{ name: alice, password: alice-pw }}
"""



def start_stack(work):
    """PostgreSQL 15 with a pgbench database (scale 10, fsync on) and a
    warden-control with the production policy pushed; returns (pg, control).
    The caller stops both; on failure this stops what it started."""
    pg = PostgresServer(extra_conf={"fsync": "on", "synchronous_commit": "on"})
    control = None
    try:
        pg.start()
        setup_sample(pg)
        pg.psql("CREATE DATABASE bench OWNER warden_svc;")
        subprocess.run(["pgbench", "-i", "-s", "10", "-q", "-h", "127.0.0.1", "-p",
                        str(pg.port), "-U", "warden_svc", "bench"], check=True,
                       capture_output=True, env=dict(os.environ, PGPASSWORD="svc-scram-pw"),
                       timeout=900)
        control = ControlPlane(work).start()
        push = subprocess.run([WARDENCTL_BIN, "policy", "push", POLICY_DIR],
                              env=control.env(), capture_output=True, text=True, timeout=60)
        if push.returncode != 0:
            raise RuntimeError(push.stderr)
        return pg, control
    except BaseException:
        if control is not None:
            control.stop()
        pg.stop()
        raise


def pgbench(port, args, clients, duration):
    cmd = (["pgbench", "-n", "-h", "127.0.0.1", "-p", str(port), "-U", "alice",
            "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(duration)] + args + ["bench"])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120,
                       env=dict(os.environ, PGPASSWORD="alice-pw"))
    m = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", r.stdout, re.M)
    n = re.search(r"^number of transactions actually processed: (\d+)", r.stdout, re.M)
    if r.returncode != 0 or not m or not n:
        raise RuntimeError("pgbench failed: %s\n%s" % (r.stdout[-1500:], r.stderr[-1500:]))
    return float(m.group(1)), int(n.group(1))


def latencies(port, args, clients, duration):
    """p50 and p99 transaction latency (ms) of a pgbench run, from its
    per-transaction log (-l)."""
    with tempfile.TemporaryDirectory(prefix="warden-pgbench-log-") as d:
        cmd = (["pgbench", "-n", "-h", "127.0.0.1", "-p", str(port), "-U", "alice",
                "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(duration),
                "-l", "--log-prefix", os.path.join(d, "txn")] + args + ["bench"])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120,
                           env=dict(os.environ, PGPASSWORD="alice-pw"))
        if r.returncode != 0:
            raise RuntimeError("pgbench failed: %s" % r.stderr[-1500:])
        us = []
        for name in os.listdir(d):
            with open(os.path.join(d, name)) as f:
                us.extend(int(line.split()[2]) for line in f if line.strip())
    us.sort()
    if not us:
        raise RuntimeError("pgbench logged no transactions")
    return us[len(us) // 2] / 1000.0, us[min(len(us) - 1, len(us) * 99 // 100)] / 1000.0


MODES = (("bench-audit-off", "off"), ("bench-audit-intents", "async-intents"),
         ("bench-audit-async", "async"), ("bench-audit-sync", "sync"))


def tree_size(control):
    """The audit tree's size now (wardenctl audit checkpoint)."""
    r = subprocess.run([WARDENCTL_BIN, "audit", "checkpoint", "--format", "json"],
                       env=control.env(), capture_output=True, text=True, timeout=60)
    m = re.search(r'"(?:tree_)?size"\s*:\s*"?(\d+)', r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError("wardenctl audit checkpoint: %s %s" % (r.stdout, r.stderr))
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--modes", default="off,async-intents,async,sync",
                    help="comma-separated subset of off, async-intents, async, sync")
    ap.add_argument("--workloads", default="",
                    help="comma-separated 1-based rows of the workload table (default all)")
    ap.add_argument("--no-build", action="store_true",
                    help="use the binaries in bazel-bin as they are")
    a = ap.parse_args()
    modes = [m for m in MODES if m[1] in a.modes.split(",")]
    workloads = ([WORKLOADS[int(i) - 1] for i in a.workloads.split(",")]
                 if a.workloads else WORKLOADS)
    if not a.no_build:
        subprocess.run(["bazel", "build", "//controlplane/server:warden-control",
                        "//controlplane/cli:wardenctl", "//dataplane/server:warden-proxy"],
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="warden-audit-cost-")
    pg = control = None
    proxies = {}
    try:
        pg, control = start_stack(work)
        for name, audit in modes:
            pwork = os.path.join(work, name)
            os.makedirs(pwork)
            port = free_port()
            proxies[name] = WardenProxy(proxy_config(name, control, pg.port, port, pwork, audit),
                                        pwork, {"main": port}).start()
        deadline = time.time() + 30
        while time.time() < deadline and not all("in force" in p.log() for p in proxies.values()):
            time.sleep(0.1)
        results = {}
        for label, args, clients in workloads:
            for name, p in proxies.items():  # warm-up
                pgbench(p.port("main"), args, clients, 2)
            for _ in range(a.reps):
                for name, p in proxies.items():  # interleaved
                    # Let the previous run's spool drain (its events would
                    # be counted here), then count this run's.
                    time.sleep(1)
                    events0 = tree_size(control)
                    proxy0, control0 = cpu_seconds(p.pid), cpu_seconds(control.pid)
                    tps, txns = pgbench(p.port("main"), args, clients, a.duration)
                    control_cpu = cpu_seconds(control.pid) - control0
                    proxy_us = 1e6 * (cpu_seconds(p.pid) - proxy0) / max(1, txns)
                    events = tree_size(control) - events0
                    control_us = 1e6 * control_cpu / max(1, txns)
                    control_event_us = 1e6 * control_cpu / max(1, events)
                    results.setdefault((label, clients, name), []).append(
                        (tps, proxy_us, control_us, control_event_us, events / max(1, txns)))
        med = lambda rows, i: statistics.median(r[i] for r in rows)
        if len(modes) < len(MODES):
            print("| workload | clients | audit | TPS | proxy µs/txn | warden-control µs/txn "
                  "| events/txn | warden-control µs/event |")
            print("|---|--:|---|--:|--:|--:|--:|--:|")
            for label, args, clients in workloads:
                for name, audit in modes:
                    rows = results[(label, clients, name)]
                    print("| %s | %d | %s | %.0f | %.1f | %.1f | %.2f | %.1f |"
                          % (label, clients, audit, med(rows, 0), med(rows, 1), med(rows, 2),
                             med(rows, 4), med(rows, 3)))
            return 0
        print("| workload | clients | audit off TPS | async, intents only | async TPS | async/off "
              "| sync TPS | sync/off | proxy µs/txn off → intents → async "
              "| warden-control µs/txn (async) | warden-control µs/event (async) |")
        print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for label, args, clients in workloads:
            off = results[(label, clients, "bench-audit-off")]
            it = results[(label, clients, "bench-audit-intents")]
            on = results[(label, clients, "bench-audit-async")]
            sy = results[(label, clients, "bench-audit-sync")]
            print("| %s | %d | %.0f | %.0f (%.2f×) | %.0f | %.2f× | %.0f | %.2f× "
                  "| %.1f → %.1f → %.1f | %.1f | %.1f |"
                  % (label, clients, med(off, 0), med(it, 0), med(it, 0) / med(off, 0),
                     med(on, 0), med(on, 0) / med(off, 0),
                     med(sy, 0), med(sy, 0) / med(off, 0), med(off, 1), med(it, 1),
                     med(on, 1), med(on, 2), med(on, 3)))
        print("\nLatency per statement (select-only, simple, 8 clients; pgbench -l):\n")
        print("| audit | p50 ms | p99 ms |")
        print("|---|--:|--:|")
        for name, label in (("bench-audit-off", "off"), ("bench-audit-async", "async"),
                            ("bench-audit-sync", "sync")):
            if name not in proxies:
                continue
            p50, p99 = latencies(proxies[name].port("main"), ["-S", "-M", "simple"], 8,
                                 a.duration)
            print("| %s | %.2f | %.2f |" % (label, p50, p99))
        tree = subprocess.run([WARDENCTL_BIN, "audit", "checkpoint", "--format", "json"],
                              env=control.env(), capture_output=True, text=True, timeout=60)
        print("\naudit log after the run: %s" % tree.stdout.strip().replace("\n", " ")[:200])
        return 0
    finally:
        for p in proxies.values():
            p.stop()
        if control:
            control.stop()
        if pg:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
