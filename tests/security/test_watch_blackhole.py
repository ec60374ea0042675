"""Red team F8: a deactivation must not wait for the watch stream's
keepalive when an attacker blackholes only that stream.

Real PostgreSQL, warden-control and warden-proxy; between the proxy and
warden-control's gRPC port a loopback TCP relay that can be told to
blackhole the connections it holds (it keeps them open and reads what
either side sends, and forwards nothing: no FIN, no RST, TCP acknowledges
everything), while new connections go through. That is what an attacker on
the path who drops one established flow does: nothing tells the proxy, and
gRPC keepalive (20 s + 10 s) is all that would. warden-control sends a
heartbeat on the Watch stream (every 5 s, --watch-heartbeat); the proxy
gives a stream up that delivered nothing for three of them (15 s;
control_plane.watch_silence_timeout), reports it (/readyz,
warden_policy_watch_connected), and reconnects, which fetches the
deactivation. So carol, deactivated just after the blackhole, is refused
within the bound: 8 s with a 1 s heartbeat (keepalive alone needs its
10 s ping timeout and a reconnect at the least, so the old build fails
whatever the timing), 20 s at the defaults.

Run against another build with WARDEN_PROXY_BIN / WARDEN_CONTROL_BIN /
WARDENCTL_BIN (a warden-control without --watch-heartbeat is started
without it)."""

import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TESTS, "harness"))
sys.path.insert(0, os.path.join(TESTS, "integration"))

from proxyharness import wait_until  # noqa: E402
from controlharness import CONTROL_BIN  # noqa: E402
import rawpg  # noqa: E402
import watchstack  # noqa: E402

# How long the test keeps looking past the bound, to say how long the
# deactivation did take when it failed.
OBSERVE_SECONDS = 70


def control_knows_heartbeats():
    """Whether this warden-control build has --watch-heartbeat (an older
    one, run through WARDEN_CONTROL_BIN, sends no heartbeats at all)."""
    r = subprocess.run([CONTROL_BIN, "--help"], capture_output=True, text=True, timeout=30)
    return "--watch-heartbeat" in r.stdout


class BlackholeRelay:
    """A loopback TCP relay to 127.0.0.1:`target`. blackhole() stops
    forwarding on every connection open now, in both directions, without
    closing any (an EOF from one side is not passed on either); later
    connections are relayed normally."""

    def __init__(self, target):
        self.target = target
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.lock = threading.Lock()
        self.pairs = []          # [client, upstream, blackholed]
        # New connections are blackholed from their first byte too.
        self.blackhole_new = False
        self.accepted = 0
        self.dropped_bytes = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def blackhole(self):
        """Blackholes the connections open now; returns how many."""
        with self.lock:
            for pair in self.pairs:
                pair[2] = True
            return len(self.pairs)

    def _run(self):
        while not self.stopping:
            for key, _ in self.selector.select(timeout=0.2):
                if key.data is None:
                    self._accept()
                    continue
                pair, index = key.data
                sock = pair[index]
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                with self.lock:
                    blackholed = pair[2]
                if blackholed:
                    # Read and dropped: the sender's TCP sees everything
                    # acknowledged; nothing arrives on the other side.
                    self.dropped_bytes += len(data)
                    if not data:
                        self.selector.unregister(sock)
                    continue
                if not data:
                    self._close(pair)
                    continue
                try:
                    pair[1 - index].sendall(data)
                except OSError:
                    self._close(pair)

    def _accept(self):
        client, _ = self.listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        pair = [client, upstream, self.blackhole_new]
        with self.lock:
            self.pairs.append(pair)
            self.accepted += 1
        self.selector.register(client, selectors.EVENT_READ, (pair, 0))
        self.selector.register(upstream, selectors.EVENT_READ, (pair, 1))

    def _close(self, pair):
        for sock in pair[:2]:
            try:
                self.selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
        with self.lock:
            if pair in self.pairs:
                self.pairs.remove(pair)

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        with self.lock:
            pairs = list(self.pairs)
        for pair in pairs:
            for sock in pair[:2]:
                sock.close()
        self.listener.close()


class WatchBlackhole(watchstack.WatchStack):
    """With warden-control heartbeating every second (--watch-heartbeat 1s)
    the proxy gives a silent stream up after 3 s: carol is refused within
    8 s, which keepalive alone (10 s timeout after a ping, then a
    reconnect) can never do. The default cadence is the class below."""
    HEARTBEAT = "1s"
    BOUND_SECONDS = 8
    # How long the stale policy was reported (warden_policy_watch_unhealthy_
    # seconds counts from when the stream last delivered something).
    MIN_UNHEALTHY_SECONDS = 2.0

    PROXY_ID = "f8-p1"

    @classmethod
    def make_relay(cls, control_port):
        return BlackholeRelay(control_port)

    @classmethod
    def control_args(cls):
        # An older warden-control (WARDEN_CONTROL_BIN) has no heartbeats.
        if cls.HEARTBEAT and control_knows_heartbeats():
            return super().control_args()
        return []

    def login(self):
        """None when carol's login and a statement work, else the error."""
        try:
            conn = rawpg.RawConn(self.port, timeout=5)
        except OSError as e:
            return "cannot connect: %s" % e
        try:
            conn.login("carol", "carol-pw", "shop")
        except RuntimeError as e:
            conn.close()
            return e.args[0].get("M", str(e.args[0]))
        except (EOFError, OSError) as e:
            conn.close()
            return "login failed: %s" % e
        try:
            _, error = conn.simple_query("SELECT 1")
            return None if error is None else error.get("M")
        except (EOFError, OSError) as e:
            return "session closed: %s" % e
        finally:
            conn.close()

    def test_a_deactivation_crosses_a_blackholed_watch_within_the_bound(self):
        self.assertIsNone(self.login())
        # A healthy watch, and one that has been quiet a while: heartbeats
        # are what keeps it healthy.
        self.assertTrue(wait_until(lambda: self.admin("/readyz") == (200, "ready"),
                                   timeout=30), self.admin("/readyz"))
        time.sleep(6)
        self.assertEqual(self.admin("/readyz"), (200, "ready"))

        # Watch what /readyz and the metrics say, every 100 ms, throughout.
        seen = {"readyz": [], "disconnected": False, "unhealthy_seconds": 0.0}
        stop_watching = threading.Event()

        def watch_health():
            while not stop_watching.is_set():
                status, body = self.admin("/readyz")
                if body != "ready":
                    seen["readyz"].append((status, body))
                _, metrics = self.admin("/metrics")
                for line in metrics.splitlines():
                    if line.startswith("warden_policy_watch_connected ") and \
                            line.split()[1] == "0":
                        seen["disconnected"] = True
                    if line.startswith("warden_policy_watch_unhealthy_seconds "):
                        seen["unhealthy_seconds"] = max(seen["unhealthy_seconds"],
                                                        float(line.split()[1]))
                time.sleep(0.1)

        watcher = threading.Thread(target=watch_health, daemon=True)
        watcher.start()
        try:
            held = self.relay.blackhole()
            self.assertGreaterEqual(held, 1)
            accepted_before = self.relay.accepted
            time.sleep(1)
            r = self.ctl("identities", "deactivate", "carol", "--reason", "F8")
            self.assertEqual(r.returncode, 0, r.stderr)
            deactivated = time.monotonic()
            refused_after = None
            refusal = None
            while time.monotonic() - deactivated < OBSERVE_SECONDS:
                refusal = self.login()
                if refusal is not None and "deactivated" in refusal:
                    refused_after = time.monotonic() - deactivated
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # one more look at the health endpoints
        finally:
            stop_watching.set()
            watcher.join(timeout=10)

        log = self.proxy.log()
        self.assertIsNotNone(refused_after,
                             "carol was never refused in %ds; proxy log tail:\n%s"
                             % (OBSERVE_SECONDS, log[-3000:]))
        print("\nF8 (%s): carol refused %.1fs after her deactivation (blackholed at -1s); "
              "readyz reports: %s; max unhealthy_seconds %.1f"
              % (type(self).__name__, refused_after, seen["readyz"][:1],
                 seen["unhealthy_seconds"]), file=sys.stderr)
        self.assertLess(refused_after, self.BOUND_SECONDS,
                        "deactivation took %.1fs through a blackholed watch (bound %ds)"
                        % (refused_after, self.BOUND_SECONDS))
        self.assertIn("deactivated by an administrator", refusal)
        # The proxy reconnected through the relay (a new connection), and
        # said why it gave the old one up.
        self.assertGreater(self.relay.accepted, accepted_before)
        self.assertIn("watch stream silent for", log)
        # /readyz and the metrics said so while it happened: the watch was
        # unhealthy, with the reason, and stale since it last heard
        # anything (the bound or more before the watchdog gave it up).
        self.assertTrue(any("watch stream silent for" in body for _, body in seen["readyz"]),
                        seen["readyz"][:5])
        self.assertTrue(seen["disconnected"])
        self.assertGreaterEqual(seen["unhealthy_seconds"], self.MIN_UNHEALTHY_SECONDS, seen)
        # And healthy again on the new connection.
        self.assertTrue(wait_until(lambda: self.admin("/readyz") == (200, "ready"),
                                   timeout=15), self.admin("/readyz"))


    def test_b_a_restarted_proxy_expects_heartbeats_from_its_first_stream(self):
        # Red team: the proxy learnt that warden-control sends heartbeats
        # only from a stream of its own run, so after a restart a stream
        # let through and blackholed was judged by keepalive alone, and
        # /readyz said "ready" once it had stayed open 10 s (it also said so
        # for most of every reconnect cycle of a running proxy). The proxy
        # now keeps it in its state directory, and a stream that expects
        # heartbeats is healthy only once it delivered one.
        self.assertTrue(wait_until(lambda: self.admin("/readyz") == (200, "ready"),
                                   timeout=30), self.admin("/readyz"))
        self.proxy.stop()
        self.relay.blackhole_new = True
        samples = []
        try:
            self.proxy.start()
            deadline = time.monotonic() + self.BOUND_SECONDS + 10
            while time.monotonic() < deadline:
                samples.append(self.admin("/readyz"))
                time.sleep(0.5)
        finally:
            self.relay.blackhole_new = False
        self.assertGreater(len(samples), 10)
        self.assertNotIn((200, "ready"), samples)
        self.assertTrue(any("no heartbeat on this watch stream" in body
                            for _, body in samples), samples[-3:])
        # Once the path is clear, the next stream proves itself.
        self.assertTrue(wait_until(lambda: self.admin("/readyz") == (200, "ready"),
                                   timeout=60), self.admin("/readyz"))


class WatchBlackholeDefaultHeartbeat(WatchBlackhole):
    """warden-control's default cadence (5 s) and the proxy's default bound
    (three missed: 15 s): refused within 20 s."""
    HEARTBEAT = None
    BOUND_SECONDS = 20
    MIN_UNHEALTHY_SECONDS = 10.0


if __name__ == "__main__":
    unittest.main()
