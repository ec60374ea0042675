"""Starts warden-control for tests and the demo (TLS, loopback, a fresh
data directory) and stops it by PID.

    from controlharness import ControlPlane, CONTROL_BIN, WARDENCTL_BIN
    cp = ControlPlane(workdir, certs).start()  # certs from make_ca_and_cert,
                                               # or None: its own CA's
    cp.port, cp.data, cp.admin_token(), cp.ca_file
    cp.bootstrap_token_file("prod", "p1")      # for a proxy to enroll with
    cp.login_with_token(out_dir, id_token)     # wardenctl login --token
"""

import json
import os
import signal
import subprocess
import time

from pgharness import free_port
from proxyharness import wait_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTROL_BIN = os.environ.get(
    "WARDEN_CONTROL_BIN", os.path.join(REPO, "bazel-bin/controlplane/server/warden-control"))
WARDENCTL_BIN = os.environ.get(
    "WARDENCTL_BIN", os.path.join(REPO, "bazel-bin/controlplane/cli/wardenctl"))


class ControlPlane:
    def __init__(self, work, certs=None, port=None, extra_args=()):
        self.work = work
        self.certs = certs
        self.extra_args = list(extra_args)
        self.data = os.path.join(work, "control-data")
        self.port = port or free_port()
        self.proc = None
        self.log_path = os.path.join(work, "control.log")
        self._log = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        self._log = open(self.log_path, "ab")
        args = [CONTROL_BIN, "--data-dir", self.data, "--listen", "127.0.0.1:%d" % self.port]
        if self.certs:
            args += ["--tls-cert", self.certs["cert"], "--tls-key", self.certs["key"]]
        self.proc = subprocess.Popen(args + self.extra_args,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        if not wait_port(self.port, 15, self.proc):
            raise RuntimeError("warden-control did not start:\n" + self.log())
        return self

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def admin_token(self):
        with open(os.path.join(self.data, "admin.token")) as f:
            return f.read().strip()

    def signing_pub(self):
        return os.path.join(self.data, "signing.pub")

    @property
    def ca_file(self):
        """What clients verify the control plane with: the operator's CA, or
        the one warden-control made (DATA_DIR/ca.crt)."""
        return self.certs["ca"] if self.certs else os.path.join(self.data, "ca.crt")

    def env(self, token=None):
        """Environment for wardenctl talking to this control plane."""
        return dict(os.environ, WARDEN_SERVER="localhost:%d" % self.port,
                    WARDEN_CA_FILE=self.ca_file, WARDEN_TOKEN=token or self.admin_token())

    def bootstrap_token_file(self, environment, proxy_id=None, also_serves=()):
        """A one-time proxy:enroll token, created with wardenctl, in a file
        (0600) for a proxy's control_plane.bootstrap_token_file. The proxy
        is of `environment`; `also_serves` names the environments of its
        other listeners."""
        args = [WARDENCTL_BIN, "tokens", "create", "boot-%s" % (proxy_id or environment),
                "--scope", "proxy:enroll", "--environment", environment, "--ttl", "1h"]
        for other in also_serves:
            args += ["--environment", other]
        if proxy_id:
            args += ["--proxy-id", proxy_id]
        r = subprocess.run(args, env=self.env(), capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("wardenctl tokens create: " + r.stderr)
        path = os.path.join(self.work, "bootstrap-%s-%d.token" % (proxy_id or environment,
                                                                  time.time_ns()))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(r.stdout.strip() + "\n")
        return path

    def push_files(self, files):
        """Writes `files` ({name: YAML text}) to a fresh folder and pushes it
        with wardenctl; returns the folder. RuntimeError with wardenctl's
        output when the push is refused."""
        folder = os.path.join(self.work, "policies-%d" % time.time_ns())
        os.makedirs(folder)
        for name, text in files.items():
            with open(os.path.join(folder, name), "w") as f:
                f.write(text)
        r = subprocess.run([WARDENCTL_BIN, "policy", "push", folder], env=self.env(),
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("wardenctl policy push: " + r.stdout + r.stderr)
        return folder

    def create_token(self, name, *options):
        """`wardenctl tokens create NAME OPTIONS...`: the token's secret."""
        r = subprocess.run([WARDENCTL_BIN, "tokens", "create", name, *options,
                            "--format", "json"], env=self.env(), capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("wardenctl tokens create: " + r.stderr)
        return json.loads(r.stdout)["token"]

    def login_with_token(self, out, token, *extra):
        """`wardenctl login --token` against this control plane, the
        certificate into directory `out` (the token in `out`.jwt), with no
        WARDEN_* variables from the test's environment; `extra`: more
        options (--proxy ...). The completed process."""
        token_file = out + ".jwt"
        with open(token_file, "w") as f:
            f.write(token + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        return subprocess.run(
            [WARDENCTL_BIN, "login", "--token", token_file, "--out", out,
             "--server", "localhost:%d" % self.port, "--ca-file", self.ca_file, *extra],
            env=env, capture_output=True, text=True, timeout=60)

    def proxy_policy(self, state_dir, environment, proxy_id):
        """The `policy:` block of a proxy config that enrolls with this
        control plane as `proxy_id` of `environment` (a fresh one-time
        bootstrap token) and keeps its state in `state_dir`."""
        return f"""policy:
  control_plane:
    address: localhost:{self.port}
    ca_file: {self.ca_file}
    trusted_keys: [{self.signing_pub()}]
    state_dir: {state_dir}
    bootstrap_token_file: {self.bootstrap_token_file(environment, proxy_id)}
    proxy_id: {proxy_id}"""

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
