#!/usr/bin/python3
"""Audit ingest benchmark of the control plane, in one command:

    /usr/bin/python3 tests/bench/audit.py [--proxies 4] [--batch 1000] [--seconds 10]
        [--cluster 3] [--etcd-members 3]

Starts a fresh warden-control (TLS on loopback, its own CA), enrolls the
proxies and has each append statement events as fast as the control plane
commits them (every Append is one ordered-log entry: a synced log append
and a synced store batch), while a reader polls for the checkpoint that
covers each batch. Prints events per second, checkpoint latency, each
Append's round trip (the commit latency a proxy sees) and warden-control's
CPU per event (utime + stime of the process over the load, enrollment
excluded).

With --cluster R, the same run then starts an etcd cluster (--etcd-members,
TLS with client certificates) and R warden-control replicas on it with
shared keys, and loads every replica at once (--proxies each, distinct
proxy ids): the cluster's events per second are the sum, and the single
node's figures come first for comparison. All local."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

from clusterharness import start_replicas  # noqa: E402
from controlharness import ControlPlane  # noqa: E402
from etcdharness import EtcdCluster  # noqa: E402

BENCH = os.path.join(REPO, "bazel-bin/tests/bench/audit_bench")


def load(control, token_file, a, prefix="ingest-"):
    """One audit_bench against `control`; its JSON result."""
    r = subprocess.run(
        [BENCH, "--server", "localhost:%d" % control.port, "--ca", control.ca_file,
         "--token-file", token_file, "--id-prefix", prefix,
         "--proxies", str(a.proxies), "--batch", str(a.batch), "--seconds", str(a.seconds),
         "--control-pid", str(control.pid)],
        capture_output=True, text=True, timeout=a.seconds + 300)
    if r.returncode != 0:
        raise RuntimeError("audit_bench failed: " + r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def single(a):
    work = tempfile.mkdtemp(prefix="warden-audit-bench-")
    control = ControlPlane(work).start()
    try:
        return load(control, os.path.join(control.data, "admin.token"), a)
    finally:
        control.stop()
        # A run at 1,000 events per Append leaves hundreds of MB of log
        # and store behind.
        shutil.rmtree(work, ignore_errors=True)


def cluster(a):
    work = tempfile.mkdtemp(prefix="warden-audit-bench-cluster-")
    etcd = EtcdCluster(work, members=a.etcd_members).start()
    replicas = []
    try:
        _, started = start_replicas(work, etcd, ["r%d" % i for i in range(a.cluster)])
        replicas.extend(started)
        token_file = os.path.join(replicas[0].data, "admin.token")
        results = [None] * len(replicas)
        errors = []

        def run(i):
            try:
                results[i] = load(replicas[i], token_file, a, prefix="r%d-ingest-" % i)
            except Exception as e:  # reported below
                errors.append(str(e))
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(replicas))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError("; ".join(errors))
        return {
            "etcd_members": a.etcd_members,
            "replicas": a.cluster,
            "events_per_second": sum(r["events_per_second"] for r in results),
            "append_p50_ms_worst": max(r["append_p50_ms"] for r in results),
            "append_p99_ms_worst": max(r["append_p99_ms"] for r in results),
            "per_replica": results,
        }
    finally:
        for r in replicas:
            r.stop()
        etcd.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxies", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--cluster", type=int, default=0,
                    help="also run R replicas on etcd, in the same run")
    ap.add_argument("--etcd-members", type=int, default=3)
    ap.add_argument("--no-build", action="store_true",
                    help="use the binaries in bazel-bin as they are")
    a = ap.parse_args()
    if not a.no_build:
        subprocess.run(["bazel", "build", "//controlplane/server:warden-control",
                        "//tests/bench:audit_bench"], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {"single_node": single(a)}
    if a.cluster > 0:
        out["cluster"] = cluster(a)
        out["cluster_vs_single_node"] = round(
            out["cluster"]["events_per_second"] / max(1, out["single_node"]["events_per_second"]),
            3)
    print(json.dumps(out if a.cluster > 0 else out["single_node"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
