#!/usr/bin/python3
"""Audit ingest benchmark of the control plane, in one command:

    /usr/bin/python3 tests/bench/audit.py [--proxies 4] [--batch 1000] [--seconds 10]

Starts a fresh warden-control (TLS on loopback, its own CA), enrolls the
proxies and has each append statement events as fast as the control plane
commits them (every Append is one ordered-log entry: a synced log append
and a synced store batch), while a reader polls for the checkpoint that
covers each batch. Prints events per second, checkpoint latency and
warden-control's CPU per event (utime + stime of the process over the load,
enrollment excluded). All local."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from controlharness import ControlPlane  # noqa: E402

BENCH = os.path.join(REPO, "bazel-bin/tests/bench/audit_bench")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--proxies", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--no-build", action="store_true",
                    help="use the binaries in bazel-bin as they are")
    a = ap.parse_args()
    if not a.no_build:
        subprocess.run(["bazel", "build", "//controlplane/server:warden-control",
                        "//tests/bench:audit_bench"], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="warden-audit-bench-")
    control = ControlPlane(work).start()
    try:
        r = subprocess.run(
            [BENCH, "--server", "localhost:%d" % control.port, "--ca", control.ca_file,
             "--token-file", os.path.join(control.data, "admin.token"),
             "--proxies", str(a.proxies), "--batch", str(a.batch), "--seconds", str(a.seconds),
             "--control-pid", str(control.pid)],
            capture_output=True, text=True, timeout=a.seconds + 300)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
        print(json.dumps(json.loads(r.stdout.strip().splitlines()[-1]), indent=2))
        return 0
    finally:
        control.stop()
        # A run at 1,000 events per Append leaves hundreds of MB of log
        # and store behind.
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
