#!/usr/bin/python3
"""Warden benchmark: direct PostgreSQL vs warden-proxy vs PgBouncer (session mode).

    /usr/bin/python3 tests/bench/run.py [--quick] [--opt] [--out docs/benchmarks.md]

Starts its own PostgreSQL 15 (tests/harness/pgharness.py), a PgBouncer in
session mode and warden-proxy, all on free 127.0.0.1 ports, then measures:

  1. pgbench TPS (select-only in simple/extended/prepared protocol, and the
     default TPC-B-like workload; 1 and 8 clients), three interleaved
     repetitions per target, medians and ratios;
  2. proxy CPU (utime+stime of the whole proxy process) per transaction;
  3. streaming: COPY FROM STDIN, COPY TO STDOUT and a plain SELECT of 2M rows;
  4. resident memory per idle, authenticated client connection.

Prints a markdown report; --out also writes it to a file. Everything started
here is stopped by PID at the end, also on Ctrl-C, SIGTERM and errors.
See tests/bench/README.md.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import pwd
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
import pgharness  # noqa: E402
from pgharness import PostgresServer, setup_sample, free_port  # noqa: E402
from proxyharness import cpu_seconds  # noqa: E402

HOST = "127.0.0.1"
CLIENT_USER, CLIENT_PW = "alice", "alice-pw"      # clients -> Warden / PgBouncer
SVC_USER, SVC_PW = "warden_svc", "svc-scram-pw"   # proxies -> PostgreSQL, and direct
BENCH_DB = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
PG_OS_USER = pgharness.PG_OS_USER
OPT_OUTPUT_BASE = os.path.expanduser("~/.cache/warden-bench-ob")

TARGETS = ("direct", "warden", "pgbouncer")
# pgbench also runs through a second Warden that enforces the production
# guardrails, so the cost of policy is measured in the same run.
PGBENCH_TARGETS = ("direct", "warden", "warden-policy", "pgbouncer")
LABEL = {"direct": "direct", "warden": "Warden", "warden-policy": "Warden+policy",
         "pgbouncer": "PgBouncer"}
DEFAULT_POLICY = os.path.join(REPO, "policy", "examples", "production.yaml")


class BenchError(RuntimeError):
    pass


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def run(cmd, timeout, **kw):
    """subprocess.run with a timeout and a clear error on failure."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    try:
        r = subprocess.run(cmd, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise BenchError("timed out after %ss: %s" % (timeout, shlex.join(cmd))) from e
    return r


def client_env(password):
    env = dict(os.environ)
    for k in ("PGSERVICE", "PGOPTIONS", "PGHOSTADDR", "PGPASSFILE", "PGDATABASE",
              "PGUSER", "PGHOST", "PGPORT"):
        env.pop(k, None)
    env["PGPASSWORD"] = password
    env["PGSSLMODE"] = "disable"
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def wait_port(host, port, proc, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("%s exited with status %s during start" % (what, proc.returncode))
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError("%s not listening on %s:%d after %.0fs" % (what, host, port, timeout))


def stop_pid(proc, what, timeout=15.0):
    """SIGTERM, wait, SIGKILL the process we started (by its PID only)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log("%s (pid %d) ignored SIGTERM; sending SIGKILL" % (what, proc.pid))
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log("%s (pid %d) did not exit after SIGKILL" % (what, proc.pid))


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError("no VmRSS for pid %d" % pid)


# ---------------------------------------------------------------------------
# Proxies
# ---------------------------------------------------------------------------

class WardenProxy:
    name = "warden"

    def __init__(self, binary, pg_port, workers, policy=None):
        self.binary = binary
        self.pg_port = pg_port
        self.workers = workers
        self.policy = policy  # policy file; its policies must cover "prod".
        self.dir = None
        self.proc = None
        self.port = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="warden-bench-proxy-")
        self.port = free_port()
        cfg = os.path.join(self.dir, "warden.yaml")
        env = "prod" if self.policy else "bench"
        with open(cfg, "w") as f:
            policy = "policy: { paths: [%s] }\n" % self.policy if self.policy else ""
            f.write(
                "# written by tests/bench/run.py\n"
                "proxy: { workers: %d, log_level: warn }\n"
                "%s"
                "listeners:\n"
                "  - name: bench\n"
                "    address: %s\n"
                "    port: %d\n"
                "    environment: %s\n"
                "environments:\n"
                "  - name: %s\n"
                "    databases:\n"
                "      - name: %s\n"
                "        upstream: { host: %s, port: %d, database: %s, user: %s, password: %s }\n"
                "users:\n"
                "  - name: %s\n"
                "    password: %s\n"
                % (self.workers, policy, HOST, self.port, env, env, BENCH_DB, HOST, self.pg_port,
                   BENCH_DB, SVC_USER, SVC_PW, CLIENT_USER, CLIENT_PW))
        chk = run([self.binary, "--config", cfg, "--check"], timeout=30, cwd=self.dir)
        if chk.returncode != 0:
            raise BenchError("warden-proxy rejected the benchmark config:\n%s%s"
                             % (chk.stdout.decode(errors="replace"),
                                chk.stderr.decode(errors="replace")))
        logf = open(os.path.join(self.dir, "warden.log"), "ab")
        try:
            self.proc = subprocess.Popen([self.binary, "--config", cfg], cwd=self.dir,
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         start_new_session=True)
        finally:
            logf.close()
        try:
            wait_port(HOST, self.port, self.proc, "warden-proxy")
        except BenchError as e:
            raise BenchError("%s; log:\n%s" % (e, self.log_tail()))
        return self

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "warden.log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        stop_pid(self.proc, "warden-proxy")
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class PgBouncer:
    name = "pgbouncer"
    binary = "/usr/sbin/pgbouncer"

    def __init__(self, pg_port, max_clients):
        self.pg_port = pg_port
        self.max_clients = max_clients
        self.dir = None
        self.proc = None
        self.port = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        pw = pwd.getpwnam(PG_OS_USER)
        self.dir = tempfile.mkdtemp(prefix="warden-bench-pgbouncer-")
        os.chmod(self.dir, 0o700)
        self.port = free_port()
        ini = os.path.join(self.dir, "pgbouncer.ini")
        userlist = os.path.join(self.dir, "userlist.txt")
        with open(userlist, "w") as f:
            # Plain-text password: with a SCRAM verifier here, PgBouncer 1.18
            # reuses the client's SCRAM keys for the server login (ignoring the
            # password= of the forced user) and the upstream login fails. The
            # cost is one PBKDF2 per client login, outside the measured loops.
            f.write('"%s" "%s"\n' % (CLIENT_USER, CLIENT_PW))
        with open(ini, "w") as f:
            f.write(
                ";; written by tests/bench/run.py\n"
                "[databases]\n"
                "%s = host=%s port=%d dbname=%s user=%s password=%s\n"
                "\n[pgbouncer]\n"
                "listen_addr = %s\n"
                "listen_port = %d\n"
                "unix_socket_dir =\n"
                "auth_type = scram-sha-256\n"
                "auth_file = %s\n"
                "pool_mode = session\n"
                "max_client_conn = %d\n"
                "default_pool_size = %d\n"
                "max_db_connections = 0\n"
                "max_user_connections = 0\n"
                "ignore_startup_parameters = extra_float_digits\n"
                "logfile = %s\n"
                "log_connections = 0\n"
                "log_disconnections = 0\n"
                "server_login_retry = 1\n"
                % (BENCH_DB, HOST, self.pg_port, BENCH_DB, SVC_USER, SVC_PW,
                   HOST, self.port, userlist, self.max_clients + 50, self.max_clients + 20,
                   os.path.join(self.dir, "pgbouncer.log")))
        for p in (self.dir, ini, userlist):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(userlist, 0o600)
        cmd = [self.binary, ini]
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root. setpriv execs in place, so the
            # PID we hold is PgBouncer's own (runuser would fork).
            cmd = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                   "--init-groups", "--"] + cmd
        out = open(os.path.join(self.dir, "stderr.log"), "ab")
        try:
            self.proc = subprocess.Popen(cmd, cwd=self.dir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out, start_new_session=True)
        finally:
            out.close()
        try:
            wait_port(HOST, self.port, self.proc, "pgbouncer")
        except BenchError as e:
            raise BenchError("%s; log:\n%s" % (e, self.log_tail()))
        with open("/proc/%d/comm" % self.proc.pid) as f:
            comm = f.read().strip()
        if comm != "pgbouncer":
            raise BenchError("pid %d is %r, not pgbouncer" % (self.proc.pid, comm))
        return self

    def log_tail(self):
        text = ""
        for name in ("stderr.log", "pgbouncer.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f.read()[-2000:]
            except OSError:
                pass
        return text

    def stop(self):
        # SIGTERM: immediate shutdown (SIGINT would wait for clients).
        stop_pid(self.proc, "pgbouncer")
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


# ---------------------------------------------------------------------------
# Benchmark
# ---------------------------------------------------------------------------

PGBENCH_ROWS = [
    # (key, label, extra pgbench args, is_tpcb)
    ("S-simple", "select-only, simple", ["-S", "-M", "simple"], False),
    ("S-extended", "select-only, extended", ["-S", "-M", "extended"], False),
    ("S-prepared", "select-only, prepared", ["-S", "-M", "prepared"], False),
    ("tpcb-simple", "TPC-B-like, simple", ["-M", "simple"], True),
]
CLIENTS = [(1, 1), (8, 2)]  # (-c, -j)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x, nd=0):
    if x is None or x != x:
        return "n/a"
    return "{:,.{}f}".format(x, nd)


def fmt_ratio(x):
    if x is None or x != x:
        return "n/a"
    return "%.2f×" % x


class Bench:
    def __init__(self, args):
        self.args = args
        self.pg = None
        self.warden = None
        self.warden_policy = None
        self.pgb = None
        self.tmp = None
        self.results = {"pgbench": [], "stream": [], "memory": {}, "policy_cost": []}
        self.facts = {}

    # -- lifecycle --------------------------------------------------------
    def teardown(self):
        # A second Ctrl-C must not cut the teardown short.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._teardown()
        finally:
            signal.signal(signal.SIGINT, old)

    def _teardown(self):
        for what, obj in (("warden-proxy", self.warden),
                          ("warden-proxy with policy", self.warden_policy),
                          ("pgbouncer", self.pgb), ("postgres", self.pg)):
            if obj is None:
                continue
            try:
                obj.stop()
            except Exception as e:  # keep tearing down the rest
                log("stopping %s failed: %s" % (what, e))
        self.warden = self.warden_policy = self.pgb = self.pg = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def target(self, name):
        """(port, user, password, proxy pid or None)."""
        if name == "direct":
            return self.pg.port, SVC_USER, SVC_PW, None
        if name == "warden":
            return self.warden.port, CLIENT_USER, CLIENT_PW, self.warden.pid
        if name == "warden-policy":
            return (self.warden_policy.port, CLIENT_USER, CLIENT_PW,
                    self.warden_policy.pid)
        return self.pgb.port, CLIENT_USER, CLIENT_PW, self.pgb.pid

    def check_alive(self):
        for w in (self.warden, self.warden_policy):
            if w and w.proc.poll() is not None:
                raise BenchError("warden-proxy died (status %s); log:\n%s"
                                 % (w.proc.returncode, w.log_tail()))
        if self.pgb and self.pgb.proc.poll() is not None:
            raise BenchError("pgbouncer died (status %s); log:\n%s"
                             % (self.pgb.proc.returncode, self.pgb.log_tail()))

    def start_proxies(self):
        # Assigned before start() so a failed start is still torn down.
        self.warden = WardenProxy(self.args.proxy_bin, self.pg.port, self.args.workers)
        self.warden.start()
        if "pgbench" not in self.args.skip or self.args.policy_cost:
            self.warden_policy = WardenProxy(self.args.proxy_bin, self.pg.port,
                                             self.args.workers, policy=self.args.policy)
            self.warden_policy.start()
        self.pgb = PgBouncer(self.pg.port, self.args.conns)
        self.pgb.start()
        log("warden-proxy pid %d on :%d; pgbouncer pid %d on :%d"
            % (self.warden.pid, self.warden.port, self.pgb.pid, self.pgb.port))

    def setup(self):
        a = self.args
        self.tmp = tempfile.mkdtemp(prefix="warden-bench-")
        log("starting PostgreSQL")
        self.pg = PostgresServer(extra_conf={
            "max_connections": str(a.conns + 100),
            "shared_buffers": "256MB",
            "max_wal_size": "4GB",
            "checkpoint_timeout": "30min",
            "autovacuum": "off",  # no background work in the middle of a measurement
        }).start()
        log("PostgreSQL pid %d on :%d" % (self.pg.pid, self.pg.port))
        setup_sample(self.pg)
        self.pg.psql("CREATE DATABASE %s OWNER %s;" % (BENCH_DB, SVC_USER))
        log("pgbench -i -s %d" % a.scale)
        r = run(["pgbench", "-i", "-s", str(a.scale), "-q", "-h", HOST, "-p", str(self.pg.port),
                 "-U", SVC_USER, BENCH_DB], timeout=900, env=client_env(SVC_PW))
        if r.returncode != 0:
            raise BenchError("pgbench -i failed:\n" + r.stderr.decode(errors="replace"))
        self.pg.psql("CREATE TABLE copy_in (id int, payload text); "
                     "ALTER TABLE copy_in OWNER TO %s; VACUUM ANALYZE;" % SVC_USER,
                     dbname=BENCH_DB, timeout=600)
        self.start_proxies()
        for t in (PGBENCH_TARGETS if self.warden_policy else TARGETS):
            self.pgbench(t, ["-S", "-M", "simple"], 1, 1, 2)  # connectivity + warm-up

    # -- pgbench ------------------------------------------------------------
    def pgbench(self, target, extra, clients, threads, duration):
        port, user, pw, pid = self.target(target)
        cmd = (["pgbench", "-n", "-h", HOST, "-p", str(port), "-U", user,
                "-c", str(clients), "-j", str(threads), "-T", str(duration)]
               + extra + [BENCH_DB])
        cpu0 = cpu_seconds(pid) if pid else None
        r = run(cmd, timeout=duration + 120, env=client_env(pw))
        cpu1 = cpu_seconds(pid) if pid else None
        out = r.stdout.decode(errors="replace")
        err = r.stderr.decode(errors="replace")
        self.check_alive()
        if r.returncode != 0:
            raise BenchError("pgbench against %s failed (rc=%d): %s\n%s\n%s"
                             % (target, r.returncode, shlex.join(cmd), out[-2000:], err[-2000:]))
        m_tps = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", out, re.M)
        m_n = re.search(r"^number of transactions actually processed: (\d+)", out, re.M)
        m_fail = re.search(r"^number of failed transactions: (\d+)", out, re.M)
        m_lat = re.search(r"^latency average = ([0-9.]+) ms", out, re.M)
        if not (m_tps and m_n):
            raise BenchError("cannot parse pgbench output:\n" + out)
        if m_fail and int(m_fail.group(1)) != 0:
            raise BenchError("pgbench against %s reported failed transactions:\n%s" % (target, out))
        n = int(m_n.group(1))
        res = {"tps": float(m_tps.group(1)), "txns": n,
               "latency_ms": float(m_lat.group(1)) if m_lat else None}
        if pid:
            res["cpu_s"] = cpu1 - cpu0
            res["cpu_us_per_txn"] = (cpu1 - cpu0) * 1e6 / n if n else None
        return res

    def reset_tpcb(self):
        # What pgbench does before a run unless -n; done here, directly and
        # untimed, so every target starts from the same state.
        self.pg.psql("VACUUM pgbench_branches; VACUUM pgbench_tellers; TRUNCATE pgbench_history;",
                     dbname=BENCH_DB, timeout=300)

    def run_pgbench(self):
        a = self.args
        rows = [(key, label, extra, tpcb, c, j)
                for key, label, extra, tpcb in PGBENCH_ROWS for c, j in CLIENTS]
        data = {(r[0], r[4]): {t: [] for t in PGBENCH_TARGETS} for r in rows}
        total = a.reps * len(rows) * len(PGBENCH_TARGETS)
        done = 0
        for rep in range(a.reps):
            for i, (key, label, extra, tpcb, c, j) in enumerate(rows):
                k = (rep + i) % len(PGBENCH_TARGETS)
                order = PGBENCH_TARGETS[k:] + PGBENCH_TARGETS[:k]  # rotate the order
                for t in order:
                    if tpcb:
                        self.reset_tpcb()
                    done += 1
                    res = self.pgbench(t, extra, c, j, a.duration)
                    res["rep"] = rep + 1
                    data[(key, c)][t].append(res)
                    log("[%d/%d] rep %d  %-22s c=%d  %-9s tps=%9.1f%s"
                        % (done, total, rep + 1, label, c, t, res["tps"],
                           ("  cpu/txn=%.1fus" % res["cpu_us_per_txn"])
                           if res.get("cpu_us_per_txn") is not None else ""))
        for key, label, extra, tpcb, c, j in rows:
            self.results["pgbench"].append({
                "key": key, "label": label, "clients": c, "threads": j,
                "args": " ".join(extra), "runs": data[(key, c)]})

    def run_policy_cost(self):
        """Warden vs Warden+policy in back-to-back pairs.

        The two proxies run the same workload one right after the other, in
        alternating order, so a change in the machine's load (it is shared)
        hits both members of a pair alike; the cost is read from each pair's
        ratio rather than from medians taken minutes apart."""
        a = self.args
        rows = [(key, label, extra, tpcb, c, j)
                for key, label, extra, tpcb in PGBENCH_ROWS for c, j in CLIENTS]
        total = a.pairs * len(rows) * 2
        done = 0
        data = {(r[0], r[4]): [] for r in rows}
        for p in range(a.pairs):
            for i, (key, label, extra, tpcb, c, j) in enumerate(rows):
                order = ("warden", "warden-policy") if (p + i) % 2 == 0 else \
                        ("warden-policy", "warden")
                pair = {}
                for t in order:
                    if tpcb:
                        self.reset_tpcb()
                    done += 1
                    pair[t] = self.pgbench(t, extra, c, j, a.duration)
                cost = 1 - pair["warden-policy"]["tps"] / pair["warden"]["tps"]
                data[(key, c)].append({"pair": p + 1, "first": order[0], "cost": cost,
                                       "warden": pair["warden"],
                                       "warden-policy": pair["warden-policy"]})
                log("[%d/%d] pair %d  %-22s c=%d  Warden %9.1f  +policy %9.1f  cost %+.1f%%"
                    % (done, total, p + 1, label, c, pair["warden"]["tps"],
                       pair["warden-policy"]["tps"], 100 * cost))
        for key, label, extra, tpcb, c, j in rows:
            self.results["policy_cost"].append({
                "key": key, "label": label, "clients": c, "threads": j,
                "args": " ".join(extra), "pairs": data[(key, c)]})

    # -- streaming ---------------------------------------------------------
    def run_stream(self):
        a = self.args
        n = a.rows
        path = os.path.join(self.tmp, "copy_in.tsv")
        log("generating %d rows for COPY FROM STDIN" % n)
        with open(path, "w") as f:
            md5 = hashlib.md5
            step = 100000
            for lo in range(1, n + 1, step):
                f.write("".join("%d\t%s\n" % (g, md5(str(g).encode()).hexdigest())
                                for g in range(lo, min(n, lo + step - 1) + 1)))
        nbytes = os.path.getsize(path)  # the same text comes back from COPY/SELECT out
        sql_out = "SELECT g, md5(g::text) FROM generate_series(1,%d) g" % n
        tests = [
            ("copy-in", "COPY FROM STDIN (%s rows)" % fmt(n),
             ["-c", "COPY copy_in FROM STDIN"], path, "COPY %d" % n),
            ("copy-out", "COPY (SELECT …) TO STDOUT (%s rows)" % fmt(n),
             ["-c", "COPY (%s) TO STDOUT" % sql_out], None, None),
            ("select", "SELECT, psql -At (%s rows)" % fmt(n),
             ["-At", "-c", sql_out], None, None),
        ]
        data = {key: {t: [] for t in TARGETS} for key, *_ in tests}
        total = a.reps * len(tests) * len(TARGETS)
        done = 0
        for rep in range(a.reps):
            for i, (key, label, psql_args, infile, expect) in enumerate(tests):
                k = (rep + i) % len(TARGETS)
                for t in TARGETS[k:] + TARGETS[:k]:
                    if key == "copy-in":
                        self.pg.psql("TRUNCATE copy_in; CHECKPOINT;", dbname=BENCH_DB, timeout=300)
                    port, user, pw, pid = self.target(t)
                    cmd = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(port),
                           "-U", user, "-d", BENCH_DB] + psql_args
                    stdin = open(infile, "rb") if infile else subprocess.DEVNULL
                    try:
                        cpu0 = cpu_seconds(pid) if pid else None
                        t0 = time.monotonic()
                        r = run(cmd, timeout=a.stream_timeout, env=client_env(pw), stdin=stdin,
                                stdout=subprocess.PIPE if expect else subprocess.DEVNULL)
                        wall = time.monotonic() - t0
                        cpu1 = cpu_seconds(pid) if pid else None
                    finally:
                        if infile:
                            stdin.close()
                    self.check_alive()
                    if r.returncode != 0:
                        raise BenchError("%s via %s failed (rc=%d): %s"
                                         % (key, t, r.returncode, r.stderr.decode(errors="replace")))
                    if expect and expect not in (r.stdout or b"").decode(errors="replace"):
                        raise BenchError("%s via %s: expected %r, got %r"
                                         % (key, t, expect, r.stdout[-200:]))
                    res = {"wall_s": wall, "mb_s": nbytes / wall / 1e6, "rep": rep + 1}
                    if pid:
                        res["cpu_s"] = cpu1 - cpu0
                    data[key][t].append(res)
                    done += 1
                    log("[%d/%d] rep %d  %-9s %-9s %6.2fs  %6.1f MB/s"
                        % (done, total, rep + 1, key, t, wall, res["mb_s"]))
        self.pg.psql("TRUNCATE copy_in;", dbname=BENCH_DB)
        os.unlink(path)
        for key, label, psql_args, infile, _ in tests:
            self.results["stream"].append({"key": key, "label": label, "bytes": nbytes,
                                           "rows": n, "runs": data[key]})

    # -- memory ------------------------------------------------------------
    def svc_backends(self):
        out = self.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = '%s';" % SVC_USER)
        return int(out.strip())

    def wait_backends(self, want_at_most, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            n = self.svc_backends()
            if n <= want_at_most or time.monotonic() > deadline:
                return n
            time.sleep(0.5)

    def run_memory(self):
        import psycopg2
        a = self.args
        # Fresh proxy processes, so earlier runs' allocator state doesn't count.
        self.warden.stop()
        self.pgb.stop()
        self.warden = self.pgb = None
        self.start_proxies()
        for name in ("warden", "pgbouncer"):
            port, user, pw, pid = self.target(name)

            def connect():
                c = psycopg2.connect(host=HOST, port=port, user=user, password=pw,
                                     dbname=BENCH_DB, sslmode="disable", connect_timeout=10)
                c.autocommit = True
                with c.cursor() as cur:
                    cur.execute("SELECT 1")
                    cur.fetchall()
                return c

            # Warm-up: one connection through the whole path, then closed.
            connect().close()
            self.wait_backends(0 if name == "warden" else 1)
            time.sleep(1.0)
            rss0 = proc_rss_kib(pid)
            conns = []
            t0 = time.monotonic()
            try:
                for i in range(a.conns):
                    conns.append(connect())
                connect_s = time.monotonic() - t0
                time.sleep(2.0)
                self.check_alive()
                rss1 = proc_rss_kib(pid)
                backends = self.svc_backends()
                fds = len(os.listdir("/proc/%d/fd" % pid))
                threads = len(os.listdir("/proc/%d/task" % pid))
            finally:
                for c in conns:
                    try:
                        c.close()
                    except Exception:
                        pass
            time.sleep(2.0)
            rss2 = proc_rss_kib(pid)
            self.results["memory"][name] = {
                "conns": a.conns, "rss_before_kib": rss0, "rss_open_kib": rss1,
                "rss_after_close_kib": rss2, "kib_per_conn": (rss1 - rss0) / a.conns,
                "upstream_backends": backends, "fds": fds,
                "threads": threads, "connect_s": connect_s}
            log("%s: RSS %d -> %d KiB with %d clients (%.1f KiB/conn), %d upstream backends; "
                "after close %d KiB" % (name, rss0, rss1, a.conns, (rss1 - rss0) / a.conns,
                                         backends, rss2))
            if name == "warden":
                left = self.wait_backends(0)
                if left:
                    log("warning: %d warden_svc backends still open after Warden clients closed" % left)
            else:
                # PgBouncer keeps its server connections pooled; stop it to free them.
                self.pgb.stop()
                self.pgb = None


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def collect_facts(args, started, finished):
    facts = {}
    facts["command"] = args.command_line
    facts["date"] = started.strftime("%Y-%m-%d %H:%M UTC")
    facts["duration"] = "%.1f min" % ((finished - started).total_seconds() / 60)
    facts["nproc"] = os.cpu_count()
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    facts["cpu"] = model
    try:
        with open("/proc/meminfo") as f:
            facts["mem"] = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576)
    except OSError:
        facts["mem"] = "?"
    facts["kernel"] = platform.release()
    facts["load_start"] = args.load_start
    facts["load_end"] = " ".join("%.2f" % x for x in os.getloadavg())

    def ver(cmd):
        try:
            r = run(cmd, timeout=30)
            return r.stdout.decode(errors="replace").splitlines()[0].strip()
        except Exception:
            return "?"
    facts["postgres"] = ver([os.path.join(pgharness.PG_BIN, "postgres"), "--version"])
    facts["pgbench"] = ver(["pgbench", "--version"])
    facts["pgbouncer"] = ver(["/usr/sbin/pgbouncer", "--version"])
    try:
        rev = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], timeout=30).stdout.decode().strip()
        dirty = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                    timeout=30).stdout.strip()
        facts["git"] = rev + (" (+ uncommitted changes)" if dirty else "")
    except Exception:
        facts["git"] = "?"
    real = os.path.realpath(args.proxy_bin)
    mode = "opt (-c opt)" if "/k8-opt/" in real else (
        "fastbuild (Bazel default, unoptimised)" if "/k8-fastbuild/" in real else "unknown")
    # The path as given (relative to the repository when inside it), so the
    # report names no machine-specific folder.
    given = os.path.abspath(args.proxy_bin)
    facts["proxy_bin"] = (os.path.relpath(given, REPO)
                          if given.startswith(REPO + os.sep) else os.path.basename(given))
    facts["proxy_build"] = mode
    return facts


FACT_LABELS = {
    "date": "Date", "duration": "Run time", "nproc": "nproc", "cpu": "CPU",
    "mem": "Memory", "kernel": "Kernel", "load_start": "Load average at start",
    "load_end": "Load average at end", "postgres": "PostgreSQL", "pgbench": "pgbench",
    "pgbouncer": "PgBouncer", "git": "Warden commit", "proxy_build": "warden-proxy build",
    "proxy_bin": "warden-proxy binary",
}


def write_facts(w, facts, keys):
    """The command and a table of the run's facts (`keys`, in order)."""
    w("Command:")
    w("")
    w("```")
    w(facts["command"])
    w("```")
    w("")
    w("| | |")
    w("|---|---|")
    for k in keys:
        w("| %s | %s |" % (FACT_LABELS[k], str(facts.get(k, "?")).replace("|", "\\|")))
    w("")


def build_report(args, facts, results):
    L = []
    w = L.append
    med = lambda runs, k: median([r[k] for r in runs if r.get(k) is not None])  # noqa: E731

    w("# Warden benchmarks")
    w("")
    w("Generated by `tests/bench/run.py` (see `tests/bench/README.md`); numbers are measured, "
      "not edited. Direct PostgreSQL vs Warden (`warden-proxy`) vs PgBouncer in session mode, "
      "all on one machine over 127.0.0.1 TCP with SCRAM-SHA-256 client authentication "
      "and no TLS.")
    w("")
    write_facts(w, facts, FACT_LABELS)
    w("Settings: pgbench scale %d, %d s per pgbench run, %d repetitions with the three targets "
      "interleaved (rotated order) within each repetition; Warden `workers: %d`; PgBouncer "
      "`pool_mode = session` (single-threaded by design); PostgreSQL with `fsync = off`, "
      "`synchronous_commit = off`, `shared_buffers = 256MB`, `autovacuum = off`. The machine is "
      "shared by the load generator (pgbench/psql), PostgreSQL and the proxy, so proxy "
      "CPU competes with everything else; compare ratios rather than absolute numbers."
      % (args.scale, args.duration, args.reps, args.workers))
    if args.quick:
        w("")
        w("**Quick run** (`--quick`): short durations and fewer rows/connections; "
          "for validating the script, not for publishing.")
    w("")

    # --- pgbench TPS
    w("## pgbench throughput (TPS, median of %d)" % args.reps)
    w("")
    w("`pgbench -n -T %d` with `-c 1 -j 1` or `-c 8 -j 2`. Ratios are of the medians."
      % args.duration)
    w("")
    w("| workload | clients | direct | Warden | PgBouncer | Warden/direct | PgBouncer/direct | Warden/PgBouncer |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|")
    rows = []
    for row in results["pgbench"]:
        d = med(row["runs"]["direct"], "tps")
        wd = med(row["runs"]["warden"], "tps")
        pb = med(row["runs"]["pgbouncer"], "tps")
        rows.append((row, d, wd, pb))
        w("| %s (`%s`) | %d | %s | %s | %s | %s | %s | %s |"
          % (row["label"], row["args"], row["clients"], fmt(d), fmt(wd), fmt(pb),
             fmt_ratio(wd / d), fmt_ratio(pb / d), fmt_ratio(wd / pb)))
    w("")
    if results["pgbench"] and results["pgbench"][0]["runs"].get("warden-policy"):
        w("### Cost of policy enforcement")
        w("")
        w("The same runs through a second warden-proxy that judges every statement against "
          "`%s` (parse cache on; pgbench's statements are all allowed). Cost = 1 − "
          "(Warden+policy TPS / Warden TPS); target: under 5%% on select-only."
          % os.path.relpath(args.policy, REPO))
        w("")
        w("| workload | clients | Warden | Warden+policy | Warden+policy/Warden | policy cost | "
          "Warden µs/txn | Warden+policy µs/txn |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|")
        for row in results["pgbench"]:
            wd = med(row["runs"]["warden"], "tps")
            wp = med(row["runs"]["warden-policy"], "tps")
            w("| %s (`%s`) | %d | %s | %s | %s | %.1f%% | %s | %s |"
              % (row["label"], row["args"], row["clients"], fmt(wd), fmt(wp),
                 fmt_ratio(wp / wd), 100.0 * (1 - wp / wd),
                 fmt(med(row["runs"]["warden"], "cpu_us_per_txn"), 1),
                 fmt(med(row["runs"]["warden-policy"], "cpu_us_per_txn"), 1)))
        w("")

    # --- CPU
    w("## Proxy CPU per transaction (µs, median of %d)" % args.reps)
    w("")
    w("utime+stime of the proxy process (all threads, from `/proc/PID/stat`) over each pgbench "
      "run, divided by the transactions pgbench processed. Includes the proxy's share of "
      "connection setup (SCRAM) for the pgbench clients. Resolution is one clock tick "
      "(%d ms) per run." % (1000 // CLK_TCK))
    w("")
    w("| workload | clients | Warden µs/txn | PgBouncer µs/txn | Warden/PgBouncer |")
    w("|---|--:|--:|--:|--:|")
    cpu_rows = []
    for row in results["pgbench"]:
        wc = med(row["runs"]["warden"], "cpu_us_per_txn")
        pc = med(row["runs"]["pgbouncer"], "cpu_us_per_txn")
        cpu_rows.append((row, wc, pc))
        w("| %s | %d | %s | %s | %s |" % (row["label"], row["clients"], fmt(wc, 1), fmt(pc, 1),
                                          fmt_ratio(wc / pc if pc else float("nan"))))
    w("")

    # --- streaming
    stream = results["stream"]
    if stream:
        w("## Streaming (median of %d)" % args.reps)
        w("")
        w("Wall time of one `psql` process (start, connect, transfer, exit); MB/s is the %s "
          "bytes of row text (%s rows of `g<TAB>md5(g)`) divided by wall time. COPY FROM STDIN "
          "loads a pre-generated file into an empty table (`TRUNCATE` + `CHECKPOINT` before each "
          "run); the SELECT is read in full by `psql -At` into /dev/null."
          % (fmt(stream[0]["bytes"]), fmt(stream[0]["rows"])))
        w("")
        w("| test | direct s | Warden s | PgBouncer s | direct MB/s | Warden MB/s | PgBouncer MB/s | Warden/direct | PgBouncer/direct | Warden CPU s | PgBouncer CPU s |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        stream_rows = []
        for s in stream:
            dw = med(s["runs"]["direct"], "wall_s")
            ww = med(s["runs"]["warden"], "wall_s")
            pw = med(s["runs"]["pgbouncer"], "wall_s")
            stream_rows.append((s, dw, ww, pw))
            mb = lambda x: s["bytes"] / x / 1e6  # noqa: E731
            w("| %s | %.2f | %.2f | %.2f | %.1f | %.1f | %.1f | %s | %s | %.2f | %.2f |"
              % (s["label"], dw, ww, pw, mb(dw), mb(ww), mb(pw), fmt_ratio(dw / ww),
                 fmt_ratio(dw / pw), med(s["runs"]["warden"], "cpu_s"),
                 med(s["runs"]["pgbouncer"], "cpu_s")))
        w("")
        w("Ratios are throughput relative to direct (direct wall time / target wall time).")
        w("")

    # --- memory
    mem = results["memory"]
    if mem:
        w("## Memory per idle client connection")
        w("")
        w("Fresh proxy processes; one warm-up connection opened and closed; then N "
          "authenticated connections opened with psycopg2 (each runs `SELECT 1`, then sits idle "
          "in autocommit). Per-connection = (VmRSS with N open − VmRSS before) / N.")
        w("")
        w("| proxy | N | RSS before (KiB) | RSS with N open (KiB) | KiB per connection | RSS after close (KiB) | upstream backends held | open fds | threads | connect time for N (s) |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for name in ("warden", "pgbouncer"):
            m = mem.get(name)
            if not m:
                continue
            w("| %s | %d | %s | %s | %.1f | %s | %d | %d | %d | %.1f |"
              % (LABEL[name], m["conns"], fmt(m["rss_before_kib"]), fmt(m["rss_open_kib"]),
                 m["kib_per_conn"], fmt(m["rss_after_close_kib"]), m["upstream_backends"],
                 m["fds"], m["threads"], m["connect_s"]))
        w("")
        w("Both proxies hold one upstream PostgreSQL connection per connected client "
          "(Warden by design; PgBouncer because of session pooling), so PostgreSQL "
          "also pays a backend per client in both cases; that memory is not included above.")
        w("")

    # --- targets
    w("## Targets")
    w("")
    w("| target | measured | status |")
    w("|---|---|---|")
    summary = []

    def verdict(ok):
        if ok is None:
            return "not measured"
        return "met" if ok else "**not met**"

    fails = [(r, wd, pb) for r, d, wd, pb in rows if not wd >= pb]
    worst = min(((wd / pb, r) for r, d, wd, pb in rows if pb), key=lambda x: x[0],
                default=(float("nan"), None))
    summary.append(("Warden TPS ≥ PgBouncer TPS on every pgbench row",
                    "%d of %d rows; lowest Warden/PgBouncer %s (%s, %d clients)"
                    % (len(rows) - len(fails), len(rows), fmt_ratio(worst[0]),
                       worst[1]["label"], worst[1]["clients"]) if worst[1] else "n/a",
                    (not fails) if rows else None))
    cfails = [x for x in cpu_rows if not (x[1] <= x[2])]
    cworst = max(((wc / pc, r) for r, wc, pc in cpu_rows if pc), key=lambda x: x[0],
                 default=(float("nan"), None))
    summary.append(("Warden CPU/txn ≤ PgBouncer's (every pgbench row)",
                    "%d of %d rows; highest Warden/PgBouncer %s (%s, %d clients)"
                    % (len(cpu_rows) - len(cfails), len(cpu_rows), fmt_ratio(cworst[0]),
                       cworst[1]["label"], cworst[1]["clients"]) if cworst[1] else "n/a",
                    (not cfails) if cpu_rows else None))
    policy_rows = [r for r in results["pgbench"]
                   if r["runs"].get("warden-policy") and r["key"].startswith("S-")]
    if policy_rows:
        costs = [(1 - med(r["runs"]["warden-policy"], "tps") / med(r["runs"]["warden"], "tps"), r)
                 for r in policy_rows]
        hi = max(costs, key=lambda x: x[0])
        summary.append(("Policy enforcement costs < 5% TPS on select-only pgbench",
                        "highest %.1f%% (%s, %d clients)" % (100 * hi[0], hi[1]["label"],
                                                             hi[1]["clients"]),
                        hi[0] < 0.05))
    if stream:
        ratios = [(dw / ww, s) for s, dw, ww, pw in stream_rows]
        lo = min(ratios, key=lambda x: x[0])  # lowest throughput ratio decides
        summary.append(("%s-row streaming through Warden ≥ 0.9× direct" % fmt(stream[0]["rows"]),
                        ", ".join("%s %s" % (s["key"], fmt_ratio(x)) for x, s in ratios),
                        lo[0] >= 0.9))
    else:
        summary.append(("streaming through Warden ≥ 0.9× direct", "n/a", None))
    if "warden" in mem:
        m = mem["warden"]
        summary.append(("< 32 KiB per idle client connection (Warden)",
                        "%.1f KiB (N=%d; PgBouncer %s KiB)"
                        % (m["kib_per_conn"], m["conns"],
                           "%.1f" % mem["pgbouncer"]["kib_per_conn"] if "pgbouncer" in mem else "n/a"),
                        m["kib_per_conn"] < 32))
    if "warden" not in mem:
        summary.append(("< 32 KiB per idle client connection (Warden)", "n/a", None))
    for name, measured, ok in summary:
        w("| %s | %s | %s |" % (name, measured, verdict(ok)))
    w("")

    # --- raw
    w("## Raw runs")
    w("")
    w("<details><summary>Every measurement, listed by repetition (1, 2, 3, …)</summary>")
    w("")
    w("| workload | clients | target | TPS per rep | proxy µs/txn per rep |")
    w("|---|--:|---|---|---|")
    for row in results["pgbench"]:
        for t in PGBENCH_TARGETS:
            rs = row["runs"].get(t, [])
            w("| %s | %d | %s | %s | %s |"
              % (row["label"], row["clients"], LABEL[t], ", ".join(fmt(r["tps"]) for r in rs),
                 ", ".join(fmt(r["cpu_us_per_txn"], 1) for r in rs) if t != "direct" else ""))
    if stream:
        w("")
        w("| streaming test | target | wall s per rep |")
        w("|---|---|---|")
        for s in stream:
            for t in TARGETS:
                w("| %s | %s | %s |" % (s["key"], LABEL[t],
                                         ", ".join("%.2f" % r["wall_s"] for r in s["runs"][t])))
    w("")
    w("</details>")
    w("")
    return "\n".join(L), summary


def median_interval(xs, level=0.95):
    """Distribution-free confidence interval for the median of xs: the order
    statistics (k, n-k+1) with the largest k whose binomial coverage is at
    least `level`. Returns (low, high, coverage)."""
    n = len(xs)
    ys = sorted(xs)
    best = None
    for k in range(1, n // 2 + 1):
        tail = sum(math.comb(n, i) for i in range(k)) / 2.0 ** n
        coverage = 1 - 2 * tail
        if coverage >= level:
            best = (ys[k - 1], ys[n - k], coverage)
    return best if best else (ys[0], ys[-1], 1 - 2 / 2.0 ** n)


def build_policy_cost_report(args, facts, results):
    L = []
    w = L.append
    w("## Policy cost, paired runs")
    w("")
    write_facts(w, facts, ("date", "duration", "nproc", "cpu", "load_start", "load_end",
                           "postgres", "git", "proxy_build"))
    w("Two warden-proxy processes on the same PostgreSQL: one passes statements through "
      "(no policy), the other judges every statement against `%s`. For each workload, "
      "%d pairs of %d s pgbench runs; the two runs of a pair are back to back, in "
      "alternating order. Cost of a pair = 1 − (Warden+policy TPS / Warden TPS). The table "
      "gives the median over pairs and a distribution-free confidence interval for that "
      "median (order statistics); CPU is the proxy process's utime+stime per transaction, "
      "median over pairs."
      % (os.path.relpath(args.policy, REPO), args.pairs, args.duration))
    w("")
    w("| workload | clients | median cost | interval (coverage) | pairs with cost > 5% | "
      "Warden µs/txn | Warden+policy µs/txn | CPU cost |")
    w("|---|--:|--:|---|--:|--:|--:|--:|")
    summary = []
    for row in results["policy_cost"]:
        costs = [x["cost"] for x in row["pairs"]]
        lo, hi, cov = median_interval(costs)
        mc = median(costs)
        cw = median([x["warden"]["cpu_us_per_txn"] for x in row["pairs"]])
        cp = median([x["warden-policy"]["cpu_us_per_txn"] for x in row["pairs"]])
        w("| %s (`%s`) | %d | %.1f%% | %.1f%% … %.1f%% (%.0f%%) | %d of %d | %.1f | %.1f | %.1f%% |"
          % (row["label"], row["args"], row["clients"], 100 * mc, 100 * lo, 100 * hi,
             100 * cov, sum(1 for c in costs if c > 0.05), len(costs), cw, cp,
             100 * (cp / cw - 1) if cw else float("nan")))
        limit = 0.05 if row["key"].startswith("S-") else 0.10
        summary.append((row, mc, lo, hi, limit))
    w("")
    w("| target | measured | status |")
    w("|---|---|---|")
    for name, keys, limit in (("policy cost ≤ 5% on select-only (median over pairs)",
                               ("S-",), 0.05),
                              ("policy cost ≤ 10% on TPC-B simple (median over pairs)",
                               ("tpcb-",), 0.10)):
        rows = [x for x in summary if x[0]["key"].startswith(keys)]
        if not rows:
            continue
        worst = max(rows, key=lambda x: x[1])
        w("| %s | highest %.1f%% (%s, %d clients) | %s |"
          % (name, 100 * worst[1], worst[0]["label"], worst[0]["clients"],
             "met" if worst[1] <= limit else "**not met**"))
    w("")
    w("<details><summary>Every pair (Warden TPS, Warden+policy TPS, cost; "
      "first = the proxy that ran first)</summary>")
    w("")
    w("| workload | clients | pairs |")
    w("|---|--:|---|")
    for row in results["policy_cost"]:
        w("| %s | %d | %s |" % (row["label"], row["clients"], "; ".join(
            "%s/%s %+.1f%%%s" % (fmt(x["warden"]["tps"]), fmt(x["warden-policy"]["tps"]),
                                 100 * x["cost"], "" if x["first"] == "warden" else " (policy first)")
            for x in row["pairs"])))
    w("")
    w("</details>")
    w("")
    return "\n".join(L), summary


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def ensure_proxy(args):
    if args.proxy_bin:
        args.proxy_bin = os.path.abspath(args.proxy_bin)
        if not os.access(args.proxy_bin, os.X_OK):
            raise BenchError("--proxy-bin %s is not an executable file" % args.proxy_bin)
        return
    target = "//dataplane/server:warden-proxy"
    if args.opt:
        # An optimised build in its own output base: leaves the workspace's
        # bazel-* symlinks and the default Bazel server alone.
        log("bazel build -c opt %s (output base %s)" % (target, OPT_OUTPUT_BASE))
        base = ["bazel", "--output_base=" + OPT_OUTPUT_BASE]
        r = run(base + ["build", "-c", "opt", "--symlink_prefix=/", target], timeout=3600,
                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise BenchError("bazel build -c opt failed:\n" + r.stdout.decode(errors="replace")[-4000:])
        info = run(base + ["info", "-c", "opt", "bazel-bin"], timeout=600, cwd=REPO)
        binpath = os.path.join(info.stdout.decode().strip(), "dataplane/server/warden-proxy")
        # Free the Bazel server's memory/CPU before measuring.
        run(base + ["shutdown"], timeout=120, cwd=REPO)
        args.proxy_bin = binpath
    else:
        args.proxy_bin = os.path.join(REPO, "bazel-bin/dataplane/server/warden-proxy")
        if not os.access(args.proxy_bin, os.X_OK):
            log("%s missing; bazel build %s" % (args.proxy_bin, target))
            r = run(["bazel", "build", target], timeout=3600, cwd=REPO,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                raise BenchError("bazel build failed:\n" + r.stdout.decode(errors="replace")[-4000:])
    if not os.access(args.proxy_bin, os.X_OK):
        raise BenchError("no warden-proxy binary at %s" % args.proxy_bin)


def preflight():
    missing = [b for b in ("pgbench", "psql") if not shutil.which(b)]
    if not os.access("/usr/sbin/pgbouncer", os.X_OK):
        missing.append("/usr/sbin/pgbouncer (apt-get install pgbouncer)")
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        missing.append("setpriv (util-linux)")
    import importlib.util
    if importlib.util.find_spec("psycopg2") is None:
        missing.append("psycopg2 for /usr/bin/python3 (apt-get install python3-psycopg2)")
    if missing:
        raise BenchError("missing prerequisites: " + ", ".join(missing))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="short validation run: 3 s pgbench runs, 200k rows, 200 connections")
    ap.add_argument("--out", help="also write the markdown report to this file")
    ap.add_argument("--json", help="also write raw results as JSON to this file")
    ap.add_argument("--proxy-bin", help="warden-proxy binary (default: "
                    "bazel-bin/dataplane/server/warden-proxy, built if missing)")
    ap.add_argument("--opt", action="store_true",
                    help="build and use an optimised (-c opt) warden-proxy in a separate "
                    "Bazel output base (%s)" % OPT_OUTPUT_BASE)
    ap.add_argument("--duration", type=int, help="seconds per pgbench run (default 10; quick 3)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--rows", type=int, help="rows for streaming tests (default 2000000; quick 200000)")
    ap.add_argument("--conns", type=int, help="idle connections for memory test (default 1000; quick 200)")
    ap.add_argument("--scale", type=int, default=10, help="pgbench scale (default 10)")
    ap.add_argument("--workers", type=int, default=2, help="warden-proxy workers (default 2)")
    ap.add_argument("--policy", default=DEFAULT_POLICY,
                    help="policy file for the Warden+policy target (default: "
                         "policy/examples/production.yaml)")
    ap.add_argument("--policy-cost", action="store_true",
                    help="measure only the cost of policy: Warden and Warden+policy run "
                         "back to back in --pairs alternating pairs per workload")
    ap.add_argument("--pairs", type=int, default=12,
                    help="pairs per workload for --policy-cost (default 12)")
    ap.add_argument("--skip", action="append", default=[], choices=["pgbench", "stream", "memory"],
                    help="skip a section (repeatable)")
    args = ap.parse_args()
    args.command_line = "/usr/bin/python3 " + shlex.join(
        [os.path.relpath(os.path.abspath(sys.argv[0]), REPO)] + sys.argv[1:])
    if args.duration is None:
        args.duration = 3 if args.quick else 10
    if args.rows is None:
        args.rows = 200000 if args.quick else 2000000
    if args.conns is None:
        args.conns = 200 if args.quick else 1000
    args.stream_timeout = max(120, args.rows // 2000)
    if args.policy_cost and args.pairs < 6:
        ap.error("--pairs must be at least 6 for a confidence interval")
    if args.reps < 1 or args.duration < 1 or args.rows < 1 or args.conns < 1:
        ap.error("--reps, --duration, --rows and --conns must be positive")
    if args.out:
        args.out = os.path.abspath(args.out)

    # SIGTERM/SIGHUP behave like Ctrl-C so the finally-block tears down.
    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    started = datetime.datetime.now(datetime.timezone.utc)
    args.load_start = " ".join("%.2f" % x for x in os.getloadavg())
    t_start = time.monotonic()
    bench = None
    try:
        preflight()
        ensure_proxy(args)
        log("warden-proxy: %s" % args.proxy_bin)
        bench = Bench(args)
        bench.setup()
        if args.policy_cost:
            bench.run_policy_cost()
        elif "pgbench" not in args.skip:
            bench.run_pgbench()
        if args.policy_cost:
            pass
        elif "stream" not in args.skip:
            bench.run_stream()
        if "memory" not in args.skip and not args.policy_cost:
            bench.run_memory()
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        if bench:
            bench.teardown()
        return 130
    except BenchError as e:
        log("ERROR: %s" % e)
        if bench:
            bench.teardown()
        return 1
    finally:
        if bench:
            bench.teardown()
    finished = datetime.datetime.now(datetime.timezone.utc)
    facts = collect_facts(args, started, finished)
    if args.policy_cost:
        report, summary = build_policy_cost_report(args, facts, bench.results)
    else:
        report, summary = build_report(args, facts, bench.results)
    print(report)
    if args.out:
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(report + "\n")
        log("wrote %s" % args.out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"facts": facts, "results": bench.results}, f, indent=1, default=str)
    log("done in %.1f min" % ((time.monotonic() - t_start) / 60))
    return 0


if __name__ == "__main__":
    sys.exit(main())
