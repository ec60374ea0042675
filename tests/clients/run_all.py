#!/usr/bin/python3
"""Run every real-client suite against a PostgreSQL-compatible endpoint.

WARDEN_POLICY_CASES=1 adds the case policy_refusal (needs the Warden proxy
with the client-suite policy; see README.md); --self-test never runs it.

Connection settings come from the libpq env vars (PGHOST, PGPORT, PGUSER,
PGPASSWORD, PGDATABASE, PGSSLMODE) or --host/--port/--user/--password/
--dbname/--sslmode (flags win). Prints every PASS/FAIL line and a final
"N passed, N failed" line; exits non-zero if any case failed.

    /usr/bin/python3 tests/clients/run_all.py --host 127.0.0.1 --port 6432 \\
        --user warden_svc --password svc-scram-pw --dbname shop
    /usr/bin/python3 tests/clients/run_all.py --self-test   # against a private PostgreSQL 15
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

PY = "/usr/bin/python3"
JDBC_JAR = os.environ.get("WARDEN_JDBC_JAR", "/usr/share/java/postgresql.jar")
BASE_CASES = ("bind_params", "prepared_reuse", "tx_rollback", "types_roundtrip",
              "copy_in_out", "error_recovery", "cancel", "large_result")
# policy_refusal expects the Warden proxy with the client-suite policy in
# front (tests/run.py); it is expected, and the suites run it, only when
# WARDEN_POLICY_CASES=1 is in the environment. --self-test clears it.
POLICY_ENV = "WARDEN_POLICY_CASES"
CASES = BASE_CASES + (("policy_refusal",) if os.environ.get(POLICY_ENV) == "1" else ())
SUITE_TIMEOUT = 300  # seconds per suite


def prepare_java(workdir):
    out = os.path.join(workdir, "java-classes")
    os.makedirs(out, exist_ok=True)
    r = subprocess.run(["javac", "-encoding", "UTF-8", "-cp", JDBC_JAR, "-d", out,
                        os.path.join(HERE, "java", "ClientSuite.java")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    if r.returncode != 0:
        return None, "javac failed: " + r.stdout.decode(errors="replace")
    return ["java", "-Dfile.encoding=UTF-8", "-cp", out + os.pathsep + JDBC_JAR, "ClientSuite"], None


def prepare_node(workdir):
    ndir = os.path.join(HERE, "node")
    if not os.path.isdir(os.path.join(ndir, "node_modules", "pg-copy-streams")) or \
            not os.path.isdir(os.path.join(ndir, "node_modules", "pg")):
        cmd = ["npm", "ci"] if os.path.exists(os.path.join(ndir, "package-lock.json")) else ["npm", "install"]
        r = subprocess.run(cmd + ["--no-audit", "--no-fund"], cwd=ndir,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        if r.returncode != 0:
            return None, "npm install failed: " + r.stdout.decode(errors="replace")[-2000:]
    return ["node", os.path.join(ndir, "suite.js")], None


def python_suite(name):
    return lambda workdir: ([PY, os.path.join(HERE, "python", name)], None)


SUITES = [
    ("psycopg2", python_suite("test_psycopg2.py")),
    ("psycopg3", python_suite("test_psycopg3.py")),
    ("sqlalchemy", python_suite("test_sqlalchemy.py")),
    ("jdbc", prepare_java),
    ("node-pg", prepare_node),
    ("psql", lambda workdir: (["bash", os.path.join(HERE, "psql", "suite.sh")], None)),
]


def run_suite(name, prepare, env, workdir):
    """Returns (passed, failed) and prints the suite's PASS/FAIL lines."""
    passed = failed = 0
    cmd, err = prepare(workdir)
    if cmd is None:
        for c in CASES:
            print("FAIL %s %s: %s" % (name, c, err.strip().splitlines()[-1] if err.strip() else err), flush=True)
        sys.stderr.write(err + "\n")
        return 0, len(CASES)
    t0 = time.monotonic()
    seen = set()
    try:
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=SUITE_TIMEOUT, cwd=workdir)
        out, errout, rc = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"), r.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        errout = (e.stderr or b"").decode(errors="replace")
        rc = "timeout after %ds" % SUITE_TIMEOUT
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) >= 3 and parts[0] in ("PASS", "FAIL") and parts[1] == name:
            case = parts[2].split(":", 1)[0]
            seen.add(case)
            if parts[0] == "PASS":
                passed += 1
            else:
                failed += 1
            print(line, flush=True)
        elif line.strip():
            sys.stderr.write("[%s] %s\n" % (name, line))
    for c in CASES:
        if c not in seen:
            failed += 1
            print("FAIL %s %s: no result (suite exit %s)" % (name, c, rc), flush=True)
    if rc != 0 and failed == 0:
        failed += 1
        print("FAIL %s suite: exited %s with no failed case" % (name, rc), flush=True)
    if errout.strip() and (rc != 0 or os.environ.get("SUITE_DEBUG")):
        sys.stderr.write("[%s stderr]\n%s\n" % (name, errout[-3000:]))
    sys.stderr.write("[%s] %.1fs\n" % (name, time.monotonic() - t0))
    return passed, failed


def run_all(settings, only=None):
    env = dict(os.environ)
    for k, v in settings.items():
        if v is None or v == "":
            env.pop(k, None)
        else:
            env[k] = str(v)
    for k in ("PGSERVICE", "PGHOSTADDR", "PGOPTIONS", "PGCONNECT_TIMEOUT", "PGAPPNAME"):
        env.pop(k, None)
    env.setdefault("LANG", "C.UTF-8")
    env["PYTHONIOENCODING"] = "utf-8"
    total_p = total_f = 0
    workdir = tempfile.mkdtemp(prefix="warden-clients-")
    try:
        for name, prepare in SUITES:
            if only and name not in only:
                continue
            p, f = run_suite(name, prepare, env, workdir)
            total_p += p
            total_f += f
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("%d passed, %d failed" % (total_p, total_f), flush=True)
    return 0 if total_f == 0 and total_p > 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host")
    ap.add_argument("--port")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--dbname")
    ap.add_argument("--sslmode", help="libpq sslmode (disable, prefer, require, ...)")
    ap.add_argument("--self-test-ssl", action="store_true",
                    help="with --self-test: PostgreSQL with ssl=on (self-signed cert)")
    ap.add_argument("--suites", help="comma-separated subset of: " + ",".join(n for n, _ in SUITES))
    ap.add_argument("--self-test", action="store_true",
                    help="start a private PostgreSQL 15 (tests/harness), load the sample, "
                         "and run every suite directly against it as warden_svc/shop")
    a = ap.parse_args()
    only = set(a.suites.split(",")) if a.suites else None
    if only:
        unknown = only - {n for n, _ in SUITES}
        if unknown:
            ap.error("unknown suites: %s" % ",".join(sorted(unknown)))

    if a.self_test:
        # Directly against PostgreSQL there is no policy to refuse anything.
        global CASES
        CASES = BASE_CASES
        os.environ.pop(POLICY_ENV, None)
        from pgharness import PostgresServer, setup_sample
        with PostgresServer(ssl=a.self_test_ssl) as pg:
            setup_sample(pg)
            sys.stderr.write("self-test: postgres pid %d on %s:%d\n" % (pg.pid, pg.host, pg.port))
            settings = {"PGHOST": a.host or pg.host, "PGPORT": a.port or pg.port,
                        "PGUSER": a.user or "warden_svc",
                        "PGPASSWORD": a.password or "svc-scram-pw",
                        "PGDATABASE": a.dbname or "shop",
                        "PGSSLMODE": a.sslmode or os.environ.get("PGSSLMODE")}
            return run_all(settings, only)

    settings = {
        "PGHOST": a.host or os.environ.get("PGHOST"),
        "PGPORT": a.port or os.environ.get("PGPORT"),
        "PGUSER": a.user or os.environ.get("PGUSER"),
        "PGPASSWORD": a.password if a.password is not None else os.environ.get("PGPASSWORD"),
        "PGDATABASE": a.dbname or os.environ.get("PGDATABASE"),
        "PGSSLMODE": a.sslmode or os.environ.get("PGSSLMODE"),
    }
    if not settings["PGHOST"] or not settings["PGPORT"]:
        ap.error("need --host/--port (or PGHOST/PGPORT), or --self-test")
    return run_all(settings, only)


if __name__ == "__main__":
    sys.exit(main())
