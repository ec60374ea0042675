"""A real etcd cluster for tests (Debian's etcd-server): `members` etcd
processes on free ports of 127.0.0.1, each with a data folder of its own,
TLS and client-certificate authentication from a CA made at test time with
openssl, stopped by PID.

    from etcdharness import EtcdCluster
    etcd = EtcdCluster(workdir, members=3).start()
    etcd.endpoints()            # ["127.0.0.1:PORT", ...]
    etcd.control_args()         # warden-control's --etcd-* options
    etcd.kill(0); etcd.start_member(0)
    etcd.leader()               # index of the member that leads
    etcd.stop()
"""

import os
import signal
import subprocess
import time

from pgharness import free_port


def _run(cwd, *args):
    subprocess.run(list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


class EtcdCluster:
    def __init__(self, work, members=1):
        self.work = os.path.join(work, "etcd")
        os.makedirs(self.work, exist_ok=True)
        self.members = [{"name": "m%d" % i, "client": free_port(), "peer": free_port(),
                         "proc": None} for i in range(members)]
        self._make_certificates()

    def _make_certificates(self):
        w = self.work
        with open(os.path.join(w, "server.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n")
        with open(os.path.join(w, "client.ext"), "w") as f:
            f.write("extendedKeyUsage=clientAuth\n")
        _run(w, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
             "/CN=warden-test-etcd-ca", "-keyout", "ca.key", "-out", "ca.pem")
        for name, ext in (("server", "server.ext"), ("client", "client.ext")):
            _run(w, "openssl", "req", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + name,
                 "-keyout", name + ".key", "-out", name + ".csr")
            _run(w, "openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                 "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", ext,
                 "-out", name + ".pem")

    def file(self, name):
        return os.path.join(self.work, name)

    def endpoints(self):
        return ["127.0.0.1:%d" % m["client"] for m in self.members]

    def control_args(self, prefix="/warden/log/"):
        """warden-control's options to run as a replica of this etcd."""
        return ["--etcd-endpoints", ",".join(self.endpoints()), "--etcd-prefix", prefix,
                "--etcd-ca-file", self.file("ca.pem"),
                "--etcd-cert-file", self.file("client.pem"),
                "--etcd-key-file", self.file("client.key")]

    def start_member(self, i):
        m = self.members[i]
        cluster = ",".join("%s=http://127.0.0.1:%d" % (o["name"], o["peer"])
                           for o in self.members)
        client = "https://127.0.0.1:%d" % m["client"]
        peer = "http://127.0.0.1:%d" % m["peer"]
        data = os.path.join(self.work, m["name"])
        args = ["etcd", "--name", m["name"], "--data-dir", data,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", cluster, "--initial-cluster-token", "warden-test",
                "--initial-cluster-state", "new",
                "--cert-file", self.file("server.pem"), "--key-file", self.file("server.key"),
                "--trusted-ca-file", self.file("ca.pem"), "--client-cert-auth",
                "--logger", "zap", "--log-level", "warn"]
        log = open(os.path.join(self.work, m["name"] + ".log"), "ab")
        m["proc"] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def healthy(self):
        r = subprocess.run(
            ["etcdctl", "--endpoints", ",".join("https://" + e for e in self.endpoints()),
             "--cacert", self.file("ca.pem"), "--cert", self.file("client.pem"),
             "--key", self.file("client.key"), "--dial-timeout", "2s",
             "--command-timeout", "3s", "endpoint", "health"],
            capture_output=True, text=True, timeout=30,
            env=dict(os.environ, ETCDCTL_API="3"))
        return r.returncode == 0

    def start(self, timeout=30):
        for i in range(len(self.members)):
            self.start_member(i)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.healthy():
                return self
            time.sleep(0.2)
        logs = ""
        for m in self.members:
            with open(os.path.join(self.work, m["name"] + ".log"), errors="replace") as f:
                logs += f.read()[-2000:]
        self.stop()
        raise RuntimeError("etcd did not come up:\n" + logs)

    def leader(self):
        """The index of the member that leads now (None if no member says)."""
        import json
        for i, endpoint in enumerate(self.endpoints()):
            if self.members[i]["proc"] is None:
                continue
            r = subprocess.run(
                ["etcdctl", "--endpoints", "https://" + endpoint,
                 "--cacert", self.file("ca.pem"), "--cert", self.file("client.pem"),
                 "--key", self.file("client.key"), "--dial-timeout", "2s",
                 "--command-timeout", "3s", "endpoint", "status", "-w", "json"],
                capture_output=True, text=True, timeout=30,
                env=dict(os.environ, ETCDCTL_API="3"))
            if r.returncode != 0:
                continue
            status = json.loads(r.stdout)[0]["Status"]
            if status["leader"] == status["header"]["member_id"]:
                return i
        return None

    def kill(self, i):
        """SIGKILL member i, as a crash would."""
        p = self.members[i]["proc"]
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=15)
        self.members[i]["proc"] = None

    def stop(self):
        for m in self.members:
            p = m["proc"]
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
            m["proc"] = None
