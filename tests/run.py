"""Runs every Warden test and prints one closing line `N passed, N failed`.

Steps (each counted per test case):
  unit         bazel test of the C++ unit tests (cases read from test.xml)
  integration  tests/integration: real PostgreSQL 15 + warden-proxy
  clients      psql, psycopg2, psycopg 3, SQLAlchemy, JDBC, node-pg through
               the proxy (with a policy), over plaintext and over TLS
  security     tests/security: each attack found by a review, as a regression
  chaos        tests/chaos: faults under load on a whole cluster (etcd, three
               warden-control replicas, two proxies, PostgreSQL)
  fuzz         the libFuzzer targets for a bounded time, then random protocol
               sequences against warden-proxy built with AddressSanitizer

Usage: /usr/bin/python3 tests/run.py [--only unit,integration,security,chaos,clients,fuzz]
       [--fuzz-seconds N]

What counts: a C++ target passes only when Bazel says PASSED (its build
event stream) and every case of its XML passed; a skipped or not-run case
(GTEST_SKIP, unittest.skip, expectedFailure, an unexpected success) is a
failure; a step that ran no case is a failure; the end says which steps
ran and how many cases each.
"""

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tests", "security"))

PATTERNS = ["//common/...", "//controlplane/...", "//dataplane/...", "//policy/...", "//proto/...", "//tests/..."]
# One fuzz output base per checkout (Bazel binds an output base to its
# workspace); compiles are still shared through the disk cache.
FUZZ_OUTPUT_BASE = os.path.expanduser(
    "~/.cache/warden-fuzz-ob-" + hashlib.sha256(REPO.encode()).hexdigest()[:12])

passed = 0
failed = 0
failures = []
# Cases counted per step, printed at the end: a step that ran nothing is a
# failure, never a silent pass.
step_counts = {}
current_step = None


# In a child running one test module (--child): where each result goes, one
# JSON line as soon as it is known, so a crash loses none of them.
child_results = None


def record(name, ok, detail=""):
    global passed, failed
    if child_results is not None:
        child_results.write(json.dumps([name, ok, detail]) + "\n")
        child_results.flush()
        return
    if current_step is not None:
        step_counts[current_step] = step_counts.get(current_step, 0) + 1
    if ok:
        passed += 1
    else:
        failed += 1
        failures.append(name + (": " + detail if detail else ""))


def banner(text):
    print("\n=== %s ===" % text, flush=True)


def run_unit():
    banner("unit (bazel test)")
    targets = subprocess.run(
        ["bazel", "query", "tests(%s)" % " + ".join(PATTERNS)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    if targets.returncode != 0:
        print(targets.stderr)
        record("bazel query", False)
        return
    targets = [t for t in targets.stdout.split() if t.startswith("//")]
    if not targets:
        record("unit targets", False, "bazel query found no test targets")
        return
    # Bazel's own verdict per target (its build event stream): a binary
    # that crashed after writing its XML, or one that did not build (whose
    # test.xml is an earlier run's), is not PASSED whatever the XML says.
    events_file = tempfile.mktemp(prefix="warden-bep-", suffix=".json")
    r = subprocess.run(["bazel", "test", "--test_output=errors",
                        "--build_event_json_file=" + events_file] + targets,
                       cwd=REPO, timeout=3000)
    try:
        status = test_statuses(events_file)
    except (OSError, ValueError) as e:
        status = {}
        record("bazel build events", False, repr(e))
    finally:
        if os.path.exists(events_file):
            os.unlink(events_file)
    testlogs = subprocess.run(["bazel", "info", "bazel-testlogs"], cwd=REPO,
                              capture_output=True, text=True).stdout.strip()
    for target in targets:
        verdict = status.get(target, "NO_STATUS")
        pkg, name = target[2:].split(":")
        xml_path = os.path.join(testlogs, pkg, name, "test.xml")
        if verdict != "PASSED":
            record(target, False, "bazel says %s (exit %d)" % (verdict, r.returncode))
            continue
        if not os.path.exists(xml_path):
            record(target, False, "no test result")
            continue
        cases = xml_cases(ET.parse(xml_path).getroot())
        for name, ok, detail in cases:
            record("%s %s" % (target, name), ok, detail)
        if not cases:
            record(target, False, "no test cases recorded")


def test_statuses(events_file):
    """{label: overallStatus} from a Bazel --build_event_json_file."""
    status = {}
    with open(events_file) as f:
        for line in f:
            event = json.loads(line)
            summary = event.get("testSummary")
            label = event.get("id", {}).get("testSummary", {}).get("label")
            if summary is not None and label:
                status[label] = summary.get("overallStatus", "NO_STATUS")
    return status


def xml_cases(root):
    """[(name, ok, detail)] of a GoogleTest XML report: a case that failed,
    erred, was skipped (GTEST_SKIP) or did not run is not ok."""
    out = []
    for case in root.iter("testcase"):
        bad = case.find("failure") is not None or case.find("error") is not None
        skipped = (case.find("skipped") is not None
                   or case.get("status") == "notrun"
                   or case.get("result") in ("skipped", "suppressed"))
        out.append(("%s.%s" % (case.get("classname"), case.get("name")),
                    not bad and not skipped,
                    "failed" if bad else "skipped" if skipped else ""))
    return out


class CountingResult(unittest.TextTestResult):
    def addSuccess(self, test):
        super().addSuccess(test)
        record(test.id(), True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        record(test.id(), False, "failure")

    def addError(self, test, err):
        super().addError(test, err)
        record(test.id(), False, "error")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            record(subtest.id(), False, "subtest failure")

    # A test that did not run, or whose failure is expected, asserts
    # nothing: each is counted as a failure.
    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        record(test.id(), False, "skipped: " + str(reason))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        record(test.id(), False, "expected failure (not allowed)")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        record(test.id(), False, "unexpected success")


def test_modules(suite):
    """The module names of every test in `suite`, in order."""
    out = []
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            for m in test_modules(item):
                if m not in out:
                    out.append(m)
        else:
            m = item.id().split(".")[0]
            if m not in out:
                out.append(m)
    return out


def run_python_suite(folder):
    """Runs each test module of tests/FOLDER in a child process, so a test
    that crashes the interpreter (a segfault in a C extension) fails its
    module and the run still ends with its counts."""
    path = os.path.join(REPO, "tests", folder)
    suite = unittest.defaultTestLoader.discover(path, top_level_dir=path)
    if suite.countTestCases() == 0:
        record("step " + folder, False, "found no tests")
        return
    for module in test_modules(suite):
        run_python_module(folder, module)


def run_python_module(folder, module, env=None, label=""):
    """Runs one test module of tests/FOLDER in a child process (with `env`
    added to the environment); results are named with `label` in front."""
    fd, results = tempfile.mkstemp(prefix="warden-results-")
    os.close(fd)
    try:
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                            folder, module, results], cwd=REPO,
                           env=dict(os.environ, **(env or {})))
        with open(results) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    finally:
        os.unlink(results)
    for name, ok, detail in lines:
        record(label + name, ok, detail)
    if r.returncode < 0 or not lines:
        record("%s%s/%s" % (label, folder, module), False,
               "the test process died (exit %d) after %d results" % (r.returncode, len(lines)))


def run_child(folder, module, results):
    """--child: runs one test module, writing each result to `results`."""
    global child_results
    path = os.path.join(REPO, "tests", folder)
    sys.path.insert(0, path)
    child_results = open(results, "a")
    suite = unittest.defaultTestLoader.loadTestsFromName(module)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=CountingResult, warnings="ignore",
                                     stream=sys.stdout)
    runner.run(suite)
    child_results.close()
    return 0


def run_integration():
    banner("integration (real PostgreSQL 15 + warden-proxy)")
    run_python_suite("integration")


def run_chaos():
    banner("chaos (faults under load: etcd, three replicas, two proxies, PostgreSQL 15)")
    run_python_suite("chaos")


def run_security():
    banner("security regressions (attacks on a real warden-control, proxy and PostgreSQL 15)")
    run_python_suite("security")


# The clients step runs the proxy with this policy; every suite's
# policy_refusal case (WARDEN_POLICY_CASES=1) expects these two rules, and the
# other cases must get through it untouched.
CLIENT_SUITE_POLICY = """\
apiVersion: warden/v1
kind: Policy
metadata: { name: client-suite-guardrails }
spec:
  environments: [prod]
  rules:
    - name: no-drop-table
      match: { commands: [DROP TABLE] }
      action: deny
      message: Dropping tables is not allowed here.
    - name: no-unfiltered-writes
      match: { commands: [DELETE, UPDATE], filter: none }
      action: deny
      message: Add a WHERE clause that filters.
"""


def run_clients():
    banner("real clients through warden-proxy")
    from pgharness import PostgresServer, free_port, setup_sample
    from proxyharness import WardenProxy, make_ca_and_cert
    work = tempfile.mkdtemp(prefix="warden-clients-")
    pg = PostgresServer()
    proxy = None
    try:
        pg.start()
        setup_sample(pg)
        certs = make_ca_and_cert(os.path.join(work, "certs"))
        ports = {"plain": free_port(), "tls": free_port()}
        policy_file = os.path.join(work, "client-suite-policy.yaml")
        with open(policy_file, "w") as f:
            f.write(CLIENT_SUITE_POLICY)
        config = f"""
proxy: {{ workers: 2, log_level: warn }}
policy: {{ paths: [{policy_file}] }}
listeners:
  - {{ name: plain, port: {ports['plain']}, environment: prod }}
  - name: tls
    port: {ports['tls']}
    environment: prod
    tls: {{ mode: require, cert_file: {certs['cert']}, key_file: {certs['key']} }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
users:
  - {{ name: alice, password: alice-pw, groups: [engineers] }}
"""
        proxy = WardenProxy(config, work, ports).start()
        for listener, sslmode in (("plain", "disable"), ("tls", "require")):
            print("--- clients over %s (sslmode=%s) ---" % (listener, sslmode), flush=True)
            r = subprocess.run(
                ["/usr/bin/python3", os.path.join(REPO, "tests", "clients", "run_all.py"),
                 "--host", "127.0.0.1", "--port", str(ports[listener]), "--user", "alice",
                 "--password", "alice-pw", "--dbname", "shop", "--sslmode", sslmode],
                capture_output=True, text=True, timeout=1500,
                env=dict(os.environ, WARDEN_POLICY_CASES="1"))
            sys.stdout.write(r.stdout)
            sys.stdout.flush()
            cases = 0
            for line in r.stdout.splitlines():
                if line.startswith("PASS "):
                    cases += 1
                    record("clients[%s] %s" % (listener, line[5:]), True)
                elif line.startswith("FAIL "):
                    cases += 1
                    record("clients[%s] %s" % (listener, line[5:]), False)
            if cases == 0 or (r.returncode != 0 and not any(l.startswith("FAIL ") for l in r.stdout.splitlines())):
                record("clients[%s] runner" % listener, False, r.stderr[-2000:])
    finally:
        if proxy:
            proxy.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


ASAN_PROXY_TARGET = "//dataplane/server:warden-proxy"
FUZZERS = [
    # (target, seed corpus)
    ("pgwire_fuzz", "tests/fuzz/corpus/pgwire"),
    ("sql_facts_fuzz", "tests/fuzz/corpus/sql"),
    ("policy_lang_fuzz", "tests/fuzz/corpus/policy"),
    ("bundle_decode_fuzz", "tests/fuzz/corpus/bundle"),
    ("merkle_proof_fuzz", "tests/fuzz/corpus/merkle"),
    ("jwt_fuzz", "tests/fuzz/corpus/jwt"),
    ("scim_patch_fuzz", "tests/fuzz/corpus/scim"),
]


def run_fuzz(seconds):
    per = max(5, seconds // len(FUZZERS))
    banner("fuzz (libFuzzer + ASan, %d s per target)" % per)
    bazel = ["bazel", "--output_base=" + FUZZ_OUTPUT_BASE]
    build = subprocess.run(bazel + ["build", "--config=fuzz", "--symlink_prefix=/"]
                           + ["//tests/fuzz:" + name for name, _ in FUZZERS]
                           + [ASAN_PROXY_TARGET],
                           cwd=REPO, timeout=3000)
    if build.returncode != 0:
        record("fuzz build", False)
        return
    bin_dir = subprocess.run(bazel + ["info", "--config=fuzz", "bazel-bin"], cwd=REPO,
                             capture_output=True, text=True).stdout.strip()
    # libpg_query leaks a parse error's message inside pg_query_raw_parse
    # (system library, not ours; tests/fuzz/lsan.supp names only that);
    # everything else leaking fails the run.
    env = dict(os.environ, LSAN_OPTIONS="suppressions=" + os.path.join(REPO, "tests/fuzz/lsan.supp"))
    for name, corpus in FUZZERS:
        work = tempfile.mkdtemp(prefix="warden-fuzz-")
        try:
            r = subprocess.run([os.path.join(bin_dir, "tests/fuzz", name),
                                "-max_total_time=%d" % per, "-timeout=10", "-rss_limit_mb=2048",
                                "-artifact_prefix=" + work + "/", work,
                                os.path.join(REPO, corpus)],
                               cwd=work, capture_output=True, text=True, timeout=per + 300, env=env)
            tail = "\n".join(r.stderr.splitlines()[-3:])
            print("%s: %s" % (name, tail))
            record("fuzz " + name, r.returncode == 0, r.stderr[-3000:] if r.returncode else "")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    # The whole proxy under AddressSanitizer, attacked with random protocol
    # sequences against a real PostgreSQL (tests/security/test_protocol_sequences.py).
    asan_proxy = os.path.join(bin_dir, "dataplane/server/warden-proxy")
    print("protocol sequences against warden-proxy built with ASan (%d s)" % seconds, flush=True)
    run_python_module("security", "test_protocol_sequences",
                      env={"WARDEN_PROXY_BIN": asan_proxy,
                           "WARDEN_SEQ_FUZZ_SECONDS": str(seconds),
                           "WARDEN_SEQ_FUZZ_SEED": os.environ.get("WARDEN_SEQ_FUZZ_SEED",
                                                                  "7")},
                      label="asan: ")


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        return run_child(*sys.argv[2:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="unit,integration,security,chaos,clients,fuzz")
    ap.add_argument("--fuzz-seconds", type=int, default=int(os.environ.get("WARDEN_FUZZ_SECONDS", "60")))
    args = ap.parse_args()
    global current_step
    steps = args.only.split(",")
    started = time.time()
    for step in steps:
        current_step = step
        step_counts.setdefault(step, 0)
        try:
            if step == "unit":
                run_unit()
            elif step == "integration":
                run_integration()
            elif step == "security":
                run_security()
            elif step == "chaos":
                run_chaos()
            elif step == "clients":
                run_clients()
            elif step == "fuzz":
                run_fuzz(args.fuzz_seconds)
            else:
                record("unknown step " + step, False)
        except Exception as e:  # a crashed step is a failure, never a skip
            record("step " + step, False, repr(e))
        if step_counts.get(step, 0) == 0:
            record("step " + step, False, "ran no test cases")
    current_step = None
    print("\nSteps run: " + ", ".join("%s (%d cases)" % (s, step_counts.get(s, 0))
                                       for s in steps))
    if failures:
        print("\nFailures:")
        for f in failures:
            print("  " + f)
    print("\n(%.0f s)" % (time.time() - started))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
