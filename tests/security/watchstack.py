"""What the watch-stream tests (test_watch_blackhole, test_watch_lateness)
share: real PostgreSQL, warden-control (heartbeating every HEARTBEAT, or at
its default cadence when None) and warden-proxy, with a loopback relay of
the test's between the proxy and warden-control's gRPC port (make_relay),
the example policies, and carol, a user the directory can deactivate.

    class MyTest(watchstack.WatchStack):
        PROXY_ID = "f8-x"
        @classmethod
        def make_relay(cls, control_port): return MyRelay(control_port)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "harness"))
sys.path.insert(0, os.path.join(TESTS, "integration"))

from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, wait_until  # noqa: E402
from controlharness import WARDENCTL_BIN as WARDENCTL, ControlPlane  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(TESTS), "policy", "examples")


class WatchStack(unittest.TestCase):
    HEARTBEAT = "1s"
    PROXY_ID = "f8-p1"
    # control_plane.watch_silence_timeout ("6s"), or None: the proxy's
    # default (three heartbeat intervals).
    SILENCE_TIMEOUT = None

    @classmethod
    def make_relay(cls, control_port):
        """The relay between the proxy and warden-control (has .port and
        .stop())."""
        raise NotImplementedError

    @classmethod
    def control_args(cls):
        return ["--watch-heartbeat", cls.HEARTBEAT] if cls.HEARTBEAT else []

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="warden-sec-%s-" % cls.PROXY_ID)
        cls.pg = PostgresServer()
        cls.control = cls.proxy = cls.relay = None
        try:
            cls.pg.start()
            setup_sample(cls.pg)
            cls.control = ControlPlane(cls.work, extra_args=cls.control_args()).start()
            r = cls.ctl("policy", "push", EXAMPLES)
            assert r.returncode == 0, r.stderr
            cls.relay = cls.make_relay(cls.control.port)
            cls.port, cls.admin_port = free_port(), free_port()
            workdir = os.path.join(cls.work, "proxy")
            os.makedirs(workdir)
            token = cls.control.bootstrap_token_file("prod", cls.PROXY_ID)
            silence = ("\n    watch_silence_timeout: %s" % cls.SILENCE_TIMEOUT
                       if cls.SILENCE_TIMEOUT else "")
            config = f"""
proxy: {{ workers: 1, log_level: info }}
policy:
  control_plane:
    address: localhost:{cls.relay.port}
    ca_file: {cls.control.ca_file}
    trusted_keys: [{cls.control.signing_pub()}]
    state_dir: {os.path.join(workdir, 'state')}
    bootstrap_token_file: {token}
    proxy_id: {cls.PROXY_ID}{silence}
admin: {{ address: 127.0.0.1, port: {cls.admin_port} }}
listeners:
  - {{ name: prod, port: {cls.port}, environment: prod }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {cls.pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
users:
  - {{ name: carol, password: carol-pw, directory: true }}
"""
            cls.proxy = WardenProxy(config, workdir, {"prod": cls.port,
                                                      "admin": cls.admin_port}).start()
            assert wait_until(lambda: "in force" in cls.proxy.log()), cls.proxy.log()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.proxy:
            cls.proxy.stop()
        if cls.relay:
            cls.relay.stop()
        if cls.control and cls.control.proc:
            cls.control.stop()
        cls.pg.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    @classmethod
    def ctl(cls, *args):
        return subprocess.run([WARDENCTL] + list(args), env=cls.control.env(),
                              capture_output=True, text=True, timeout=60)

    def admin(self, path):
        """(HTTP status, body) of the proxy's admin endpoint `path`."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.admin_port, path),
                                        timeout=5) as resp:
                return resp.status, resp.read().decode().strip()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode().strip()
        except OSError as e:
            return 0, str(e)
