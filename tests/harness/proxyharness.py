"""Starts warden-proxy for tests, the demo and benchmarks, and makes the
throwaway TLS material they need (generated at run time, never committed).

    from proxyharness import WardenProxy, make_ca_and_cert
    certs = make_ca_and_cert(tmpdir)            # ca.pem, server.pem, server.key
    with WardenProxy(config_yaml, workdir) as proxy:
        proxy.port("prod")                      # the listener's port
"""

import os
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROXY_BIN = os.environ.get(
    "WARDEN_PROXY_BIN", os.path.join(REPO, "bazel-bin/dataplane/server/warden-proxy"))


def make_ca_and_cert(directory, names=("localhost",), ips=("127.0.0.1",)):
    """Creates a CA and a server certificate signed by it (openssl CLI).

    Returns a dict with paths: ca, ca_key, cert, key.
    """
    os.makedirs(directory, exist_ok=True)
    p = lambda n: os.path.join(directory, n)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2",
        "-subj", "/CN=Warden Test CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=%s" % names[0])
    san = ",".join(["DNS:%s" % n for n in names] + ["IP:%s" % i for i in ips])
    with open(p("ext.cnf"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    run("openssl", "x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
        "-CAcreateserial", "-out", p("server.pem"), "-days", "2", "-extfile", p("ext.cnf"))
    for n in ("server.key", "ca.key"):
        os.chmod(p(n), 0o644)  # PostgreSQL (as user postgres) may read copies.
    return {"ca": p("ca.pem"), "ca_key": p("ca.key"), "cert": p("server.pem"), "key": p("server.key")}


def wait_until(predicate, timeout=20.0, interval=0.1):
    """Polls `predicate` until it is true (True) or `timeout` passes (False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def pause(pid, timeout=10.0):
    """SIGSTOPs process `pid` and returns once every thread of it has
    stopped. kill(2) returns before that: the stop is taken by one thread,
    which tells the others when it next runs, so on a loaded machine the
    process's other threads can go on working for milliseconds (a test
    once saw a stopped control plane acknowledge an event it was sent
    after the SIGSTOP). Resume with os.kill(pid, signal.SIGCONT)."""
    os.kill(pid, signal.SIGSTOP)

    def stopped():
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
        except FileNotFoundError:
            return True  # gone: nothing of it runs
        for tid in tasks:
            try:
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, IndexError):
                continue
            if state not in ("T", "t"):
                return False
        return True

    if not wait_until(stopped, timeout=timeout, interval=0.005):
        raise AssertionError("process %d did not stop within %ss" % (pid, timeout))


def cpu_seconds(pid):
    """User + system CPU time of process `pid` so far, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port, timeout=15.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class WardenProxy:
    """warden-proxy with a YAML config written into `workdir`.

    `ports` maps listener name -> port; the config text should use those
    ports (get free ones with pgharness.free_port()).
    """

    def __init__(self, config_yaml, workdir=None, ports=None, binary=PROXY_BIN):
        self.config_yaml = config_yaml
        self.workdir = workdir or tempfile.mkdtemp(prefix="warden-proxy-")
        self.ports = dict(ports or {})
        self.binary = binary
        self.proc = None
        self.config_path = os.path.join(self.workdir, "proxy.yaml")
        self.log_path = os.path.join(self.workdir, "proxy.log")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def port(self, listener):
        return self.ports[listener]

    def start(self, timeout=15.0):
        with open(self.config_path, "w") as f:
            f.write(self.config_yaml)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "--config", self.config_path],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir)
        for port in self.ports.values():
            if not wait_port(port, timeout, self.proc):
                log = self.log()
                self.stop()
                raise RuntimeError("warden-proxy did not start:\n" + log)
        return self

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
