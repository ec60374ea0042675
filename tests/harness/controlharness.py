"""Starts warden-control for tests and the demo (TLS, loopback, a fresh
data directory) and stops it by PID.

    from controlharness import ControlPlane, CONTROL_BIN, WARDENCTL_BIN
    cp = ControlPlane(workdir, certs).start()      # certs from make_ca_and_cert
    cp.port, cp.data, cp.admin_token()
"""

import os
import signal
import subprocess

from pgharness import free_port
from proxyharness import wait_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTROL_BIN = os.environ.get(
    "WARDEN_CONTROL_BIN", os.path.join(REPO, "bazel-bin/controlplane/server/warden-control"))
WARDENCTL_BIN = os.environ.get(
    "WARDENCTL_BIN", os.path.join(REPO, "bazel-bin/controlplane/cli/wardenctl"))


class ControlPlane:
    def __init__(self, work, certs, port=None):
        self.work = work
        self.certs = certs
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
        self.proc = subprocess.Popen(
            [CONTROL_BIN, "--data-dir", self.data, "--listen", "127.0.0.1:%d" % self.port,
             "--tls-cert", self.certs["cert"], "--tls-key", self.certs["key"]],
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

    def env(self, token=None):
        """Environment for wardenctl talking to this control plane."""
        return dict(os.environ, WARDEN_SERVER="localhost:%d" % self.port,
                    WARDEN_CA_FILE=self.certs["ca"], WARDEN_TOKEN=token or self.admin_token())

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
