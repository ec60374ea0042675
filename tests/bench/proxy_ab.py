#!/usr/bin/python3
"""Two builds of warden-proxy side by side in one run: pgbench select-only
(simple and prepared, 8 clients) through each, with audit off and async,
interleaved, against the same PostgreSQL 15 and warden-control with the
production policy. For "what did this change cost":

    /usr/bin/python3 tests/bench/proxy_ab.py --before OLD_BINARY \\
        [--after bazel-bin/dataplane/server/warden-proxy] [--reps 3] [--duration 8]

Build OLD_BINARY from an earlier commit (git worktree add, bazel build
//dataplane/server:warden-proxy, copy it out). Prints TPS and proxy CPU
per transaction (utime+stime from /proc), medians of the repetitions, and
the same for the proxy's two busiest threads (its two workers, where the
sessions run) and for the rest (audit sender, syncer, gRPC). All local;
every process is stopped at the end."""

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
sys.path.insert(0, HERE)

from pgharness import free_port  # noqa: E402
from proxyharness import WardenProxy, cpu_seconds  # noqa: E402
import audit_cost  # noqa: E402

WORKLOADS = [("select-only, simple", ["-S", "-M", "simple"]),
             ("select-only, prepared", ["-S", "-M", "prepared"])]


def thread_seconds(pid):
    """utime+stime of each of the process's threads, by thread id."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def split(before, after, txns):
    """(µs/txn of the two busiest threads, µs/txn of the others)."""
    used = sorted((after[t] - before.get(t, 0.0) for t in after), reverse=True)
    return (1e6 * sum(used[:2]) / max(1, txns), 1e6 * sum(used[2:]) / max(1, txns))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=os.path.join(REPO, "bazel-bin/dataplane/server/warden-proxy"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="warden-proxy-ab-")
    pg = control = None
    proxies = {}
    try:
        pg, control = audit_cost.start_stack(work)
        for which, binary in (("before", a.before), ("after", a.after)):
            for mode in ("off", "async"):
                name = "ab-%s-%s" % (which, mode)
                pwork = os.path.join(work, name)
                os.makedirs(pwork)
                port = free_port()
                config = audit_cost.proxy_config(name, control, pg.port, port, pwork, mode)
                proxies[(which, mode)] = WardenProxy(config, pwork, {"main": port},
                                                     binary=binary).start()
        deadline = time.time() + 30
        while time.time() < deadline and not all("in force" in p.log()
                                                  for p in proxies.values()):
            time.sleep(0.1)
        results = {}
        for label, args in WORKLOADS:
            for p in proxies.values():  # warm-up
                audit_cost.pgbench(p.port("main"), args, 8, 2)
            for _ in range(a.reps):
                for key, p in proxies.items():  # interleaved
                    cpu0 = cpu_seconds(p.pid)
                    threads0 = thread_seconds(p.pid)
                    tps, txns = audit_cost.pgbench(p.port("main"), args, 8, a.duration)
                    workers, others = split(threads0, thread_seconds(p.pid), txns)
                    results.setdefault((label,) + key, []).append(
                        (tps, 1e6 * (cpu_seconds(p.pid) - cpu0) / max(1, txns),
                         workers, others))
        print("| workload | audit | before TPS | after TPS | after/before "
              "| proxy µs/txn before → after | workers | other threads |")
        print("|---|---|--:|--:|--:|--:|--:|--:|")
        med = lambda rows, i: statistics.median(r[i] for r in rows)
        for label, _ in WORKLOADS:
            for mode in ("off", "async"):
                b, f = results[(label, "before", mode)], results[(label, "after", mode)]
                print("| %s, 8 clients | %s | %.0f | %.0f | %.2f× | %.1f → %.1f "
                      "| %.1f → %.1f | %.1f → %.1f |"
                      % (label, mode, med(b, 0), med(f, 0), med(f, 0) / med(b, 0),
                         med(b, 1), med(f, 1), med(b, 2), med(f, 2),
                         med(b, 3), med(f, 3)))
    finally:
        for p in proxies.values():
            p.stop()
        if control is not None:
            control.stop()
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
