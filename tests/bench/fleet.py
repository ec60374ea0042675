#!/usr/bin/python3
"""Push-to-fleet benchmark of the control plane, in one command:

    /usr/bin/python3 tests/bench/fleet.py [--watchers 500] [--pushes 20]

Starts a fresh warden-control (TLS, loopback), enrolls N proxies and opens
one Watch stream each over its own mTLS connection with
tests/bench/fleet_bench (each one a proxy saying hello and ACKing), reads
warden-control's memory before and after they connect, then pushes K policy
revisions and reports p50/p99 of push -> every watcher ACKed. All local."""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from controlharness import ControlPlane  # noqa: E402

BENCH = os.path.join(REPO, "bazel-bin/tests/bench/fleet_bench")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--watchers", type=int, default=500)
    ap.add_argument("--pushes", type=int, default=20)
    a = ap.parse_args()
    subprocess.run(["bazel", "build", "//controlplane/server:warden-control",
                    "//tests/bench:fleet_bench"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="warden-fleet-bench-")
    control = ControlPlane(work).start()
    try:
        before = rss_kib(control.pid)
        gen = subprocess.Popen(
            [BENCH, "--server", "localhost:%d" % control.port, "--ca", control.ca_file,
             "--token-file", os.path.join(control.data, "admin.token"),
             "--watchers", str(a.watchers), "--pushes", str(a.pushes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = json.loads(gen.stdout.readline())
        with_watchers = rss_kib(control.pid)
        gen.stdin.write("go\n")
        gen.stdin.flush()
        result = json.loads(gen.stdout.readline())
        gen.wait(timeout=120)
        after_pushes = rss_kib(control.pid)
        report = dict(result, connected=ready["connected"],
                      enroll_ms_each=round(ready["enroll_ms_each"], 2),
                      rss_before_kib=before, rss_with_watchers_kib=with_watchers,
                      rss_after_pushes_kib=after_pushes,
                      kib_per_watcher=round((with_watchers - before) / max(1, ready["connected"]), 1))
        print(json.dumps(report, indent=2))
        return 0 if gen.returncode == 0 else 1
    finally:
        control.stop()


if __name__ == "__main__":
    sys.exit(main())
