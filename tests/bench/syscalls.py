#!/usr/bin/python3
"""Where a proxy's microseconds go, counted rather than timed: pgbench
select-only (simple and prepared protocol, 8 clients) through a bare
warden-proxy (no policy, no audit) and through PgBouncer (session mode),
against the same PostgreSQL 15, reporting per transaction:

  - the proxy's CPU (task-clock) and context switches (`perf stat`);
  - its system calls by name (`strace -c -f`, in a separate run: strace
    slows the proxy down, but not what it calls per transaction).

    /usr/bin/python3 tests/bench/syscalls.py [--duration 8] [--workers 2]

Counts do not depend on what else the machine runs, unlike TPS on a shared
2-core machine. Needs perf and strace (scripts/setup bench installs them).
All local; every process is stopped at the end."""

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402

WORKLOADS = [("select-only, simple", ["-S", "-M", "simple"]),
             ("select-only, prepared", ["-S", "-M", "prepared"])]


def measured(b, target, extra, duration, tool):
    """Runs pgbench against `target` with `tool` attached to the proxy."""
    _, _, _, pid = b.target(target)
    out = tempfile.NamedTemporaryFile(prefix="warden-syscalls-", delete=False).name
    if tool == "perf":
        cmd = ["perf", "stat", "-x", ",", "-e", "task-clock,context-switches",
               "-p", str(pid), "-o", out]
    else:
        cmd = ["strace", "-c", "-f", "-p", str(pid), "-o", out]
    watcher = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        res = b.pgbench(target, extra, 8, 2, duration)
    finally:
        watcher.send_signal(2)
        watcher.wait(timeout=30)
    with open(out) as f:
        text = f.read()
    os.unlink(out)
    return res["txns"], text


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="warden-proxy workers")
    ap.add_argument("--proxy-bin", default=os.path.join(bench.REPO,
                                                        "bazel-bin/dataplane/server/warden-proxy"))
    a = ap.parse_args()
    args = argparse.Namespace(conns=100, scale=10, workers=a.workers, proxy_bin=a.proxy_bin,
                              skip=["pgbench"], policy_cost=False, policy=None)
    b = bench.Bench(args)
    try:
        b.setup()
        print("| workload | proxy | µs CPU/txn | context switches/txn | syscalls/txn | "
              "largest: calls/txn |")
        print("|---|---|--:|--:|--:|---|")
        for label, extra in WORKLOADS:
            for target, name in (("warden", "Warden (bare)"), ("pgbouncer", "PgBouncer")):
                b.pgbench(target, extra, 8, 2, 2)  # warm-up
                txns, perf = measured(b, target, extra, a.duration, "perf")
                clock = re.search(r"^([0-9.]+),msec,task-clock", perf, re.M)
                switches = re.search(r"^([0-9]+),,context-switches", perf, re.M)
                txns2, strace = measured(b, target, extra, a.duration, "strace")
                calls = {}
                for line in strace.splitlines():
                    f = line.split()
                    if len(f) >= 5 and f[-1] != "total" and f[3].isdigit():
                        calls[f[-1]] = int(f[3])
                total = sum(calls.values())
                top = sorted(calls.items(), key=lambda kv: -kv[1])[:5]
                print("| %s, 8 clients | %s | %s | %s | %.2f | %s |" % (
                    label, name,
                    "%.1f" % (float(clock.group(1)) * 1e3 / txns) if clock else "?",
                    "%.2f" % (int(switches.group(1)) / txns) if switches else "?",
                    total / max(1, txns2),
                    ", ".join("%s %.2f" % (k, v / max(1, txns2)) for k, v in top)))
        return 0
    finally:
        b.teardown()


if __name__ == "__main__":
    sys.exit(main())
