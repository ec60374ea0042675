"""Red team F8 (A2): a deactivation must not queue behind a watch stream
that an attacker on the path holds back while letting heartbeats trickle
through.

Real PostgreSQL, warden-control and warden-proxy; between the proxy and
warden-control's gRPC port a loopback relay that reads warden-control's
side as TLS records (5-byte header: type, version, length). Told to drip,
it holds every record of the connections open then and lets them out one
heartbeat at a time: each release is whatever is queued up to and
including the next heartbeat-sized record, every DRIP_EVERY seconds. The
proxy never waits longer than that for something, so its silence bound
(three heartbeat intervals) never trips, yet warden-control sends a
heartbeat every interval, so the queue, and the delay of everything in
it, grows: releasing one heartbeat per two intervals, a record is
delivered as late as the drip had run when it was sent. A deactivation
published then queues behind stale heartbeats (on the build the red team
attacked, carol ran for 129 s and 196 s after hers, /readyz 'ready'
throughout).

Heartbeats say when warden-control sent them (stream_elapsed_ms, time
since the stream's hello), so the proxy knows how far behind the stream
runs, and gives it up past the bound (`watch stream runs 6s behind
warden-control (its heartbeats arrive ever later; bound 6s) ...`), reports
it on /readyz and reconnects; the new connection goes through (the relay
drips the connections open when told, as an attacker holding one flow
back), and brings the deactivation. What holds every connection back
delivers no bundle however it is judged: the proxy keeps its
last-known-good policy and says so (docs/proxy-config.md).

With a 1 s heartbeat and a 6 s bound (watch_silence_timeout, set here so
that a stalled relay thread cannot trip silence first), a stream is given
up once a heartbeat arrives more than 6 s behind, some 12-14 s into the
drip; the proxy reconnects after a second and fetches the bundle. Carol
is refused (28000) within BOUND_SECONDS (8 s, as in test_watch_blackhole)
of her deactivation, published DRIP_BEFORE_DEACTIVATION (18 s) into the
drip: the proxy gave the stream up before that, where a build that does
not judge lateness still has some 18 s of queue ahead of the
deactivation, so it fails at the bound whatever the timing.
A blackholed stream (nothing let through) is test_watch_blackhole's.

Run against another build with WARDEN_PROXY_BIN / WARDEN_CONTROL_BIN /
WARDENCTL_BIN."""

import collections
import os
import socket
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
import rawpg  # noqa: E402
import watchstack  # noqa: E402

# TLS records of this many bytes (header included) from warden-control are
# taken for heartbeats: one WatchHeartbeat in an HTTP/2 DATA frame, sealed
# (43 to 47 bytes). Smaller ones are HTTP/2 control frames (PING and
# SETTINGS acknowledgements, WINDOW_UPDATE); bundles are kilobytes.
HEARTBEAT_RECORD_BYTES = range(40, 121)


class _Flow:
    """One relayed connection: the proxy's side (`client`) is passed on at
    once; warden-control's (`upstream`) is cut into TLS records, queued,
    and let out as the flow's mode says."""

    def __init__(self, relay, client, upstream):
        self.relay = relay
        self.client = client
        self.upstream = upstream
        self.cond = threading.Condition()
        self.queue = collections.deque()   # (arrival time, record)
        self.dripping = False
        self.next_release = 0.0
        self.upstream_done = False
        self.closed = False
        self.releases = 0                  # drip releases made
        self.max_delay = 0.0               # longest a released record was held
        for target in (self._to_control, self._read_control, self._to_proxy):
            threading.Thread(target=target, daemon=True).start()

    def drip(self):
        with self.cond:
            self.dripping = True
            self.next_release = 0.0        # the first heartbeat goes at once
            self.cond.notify_all()

    def close(self):
        with self.cond:
            if self.closed:
                return
            self.closed = True
            self.cond.notify_all()
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _to_control(self):
        while True:
            try:
                data = self.client.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            try:
                self.upstream.sendall(data)
            except OSError:
                break
        self.close()

    def _read_control(self):
        buf = b""
        while True:
            try:
                data = self.upstream.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            records = []
            while len(buf) >= 5:
                end = 5 + int.from_bytes(buf[3:5], "big")
                if len(buf) < end:
                    break
                records.append(buf[:end])
                buf = buf[end:]
            if records:
                now = time.monotonic()
                with self.cond:
                    self.queue.extend((now, r) for r in records)
                    self.cond.notify_all()
        with self.cond:
            self.upstream_done = True
            self.cond.notify_all()

    def _releasable(self, now):
        """The records to send now (removed from the queue), or None."""
        if not self.queue:
            return None
        if not self.dripping:
            out = list(self.queue)
            self.queue.clear()
            return out
        if now < self.next_release:
            return None
        for i, (_, record) in enumerate(self.queue):
            if len(record) in HEARTBEAT_RECORD_BYTES:
                out = [self.queue.popleft() for _ in range(i + 1)]
                self.next_release = now + self.relay.drip_every
                self.releases += 1
                return out
        return None

    def _to_proxy(self):
        while True:
            with self.cond:
                while True:
                    if self.closed:
                        return
                    now = time.monotonic()
                    out = self._releasable(now)
                    if out is not None:
                        break
                    if self.upstream_done and not self.queue:
                        out = None
                        break
                    self.cond.wait(0.05)
                if out:
                    self.max_delay = max(self.max_delay, now - out[0][0])
            if out is None:
                self.close()
                return
            try:
                self.client.sendall(b"".join(r for _, r in out))
            except OSError:
                self.close()
                return


class HoldBackRelay:
    """A loopback TCP relay to 127.0.0.1:`target`. drip() makes every
    connection open now let warden-control's records out one heartbeat per
    `drip_every` seconds (the proxy's own bytes still pass at once, and
    nothing is closed or reset); connections opened later are relayed as
    they come."""

    def __init__(self, target, drip_every):
        self.target = target
        self.drip_every = drip_every
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.flows = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.flows.append(_Flow(self, client, upstream))
                self.accepted += 1

    def drip(self):
        """Drips the connections open now; returns them."""
        with self.lock:
            flows = [f for f in self.flows if not f.closed]
        for flow in flows:
            flow.drip()
        return flows

    def stop(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            flows = list(self.flows)
        for flow in flows:
            flow.close()


class WatchLateness(watchstack.WatchStack):
    """warden-control heartbeats every second (--watch-heartbeat 1s; it
    takes 100ms to 5m) and the proxy's bound is 6 s
    (control_plane.watch_silence_timeout); the relay lets one heartbeat
    out every 2 s."""
    HEARTBEAT = "1s"
    SILENCE_TIMEOUT = "6s"
    # Under the 6 s silence bound by 4 s, so that a relay thread that
    # stalls on a loaded machine does not trip silence instead (CI saw a
    # 3 s bound with 1 s to spare trip it): a build that judges silence
    # only never gives the stream up.
    DRIP_EVERY = 2.0
    # A heartbeat sent P s into the drip arrives P s late, at 2P: one
    # more than 6 s behind arrives some 12-14 s into the drip, when the
    # proxy gives the stream up. The deactivation comes after that; on a
    # build that does not judge lateness it is 18 s late, over the bound.
    DRIP_BEFORE_DEACTIVATION = 18.0
    # The stream was given up before the deactivation: a new connection
    # brings it at once; 8 s as in test_watch_blackhole.
    BOUND_SECONDS = 8
    # How long the test keeps looking past the bound, to say how long the
    # deactivation did take when it failed (the drip's 18 s and then some).
    OBSERVE_SECONDS = 30

    PROXY_ID = "f8-late-p1"

    @classmethod
    def make_relay(cls, control_port):
        return HoldBackRelay(control_port, cls.DRIP_EVERY)

    def session(self):
        """A session of carol's, logged in."""
        conn = rawpg.RawConn(self.port, timeout=5)
        conn.login("carol", "carol-pw", "shop")
        return conn

    def login(self):
        """None when carol's login and a statement work, else the refusal
        as (SQLSTATE, message) (SQLSTATE None when the connection failed
        or closed)."""
        try:
            conn = rawpg.RawConn(self.port, timeout=5)
        except OSError as e:
            return None, "cannot connect: %s" % e
        try:
            conn.login("carol", "carol-pw", "shop")
            _, error = conn.simple_query("SELECT 1")
            return None if error is None else (error.get("C"), error.get("M"))
        except RuntimeError as e:
            fields = e.args[0] if isinstance(e.args[0], dict) else {"M": str(e.args[0])}
            return fields.get("C"), fields.get("M", "")
        except (EOFError, OSError) as e:
            return None, "connection closed: %s" % e
        finally:
            conn.close()

    def test_a_deactivation_does_not_queue_behind_a_dripped_watch(self):
        self.assertIsNone(self.login())
        self.assertTrue(wait_until(lambda: self.admin("/readyz") == (200, "ready"),
                                   timeout=30), self.admin("/readyz"))
        # A session open through the attack: closed when the deactivation
        # reaches the proxy.
        held = self.session()
        self.assertIsNone(held.simple_query("SELECT 1")[1])

        # What /readyz and the metrics say, every 100 ms, from the drip on.
        seen = {"readyz": [], "disconnected": False}
        stop_watching = threading.Event()

        def watch_health():
            while not stop_watching.is_set():
                status, body = self.admin("/readyz")
                if body != "ready":
                    seen["readyz"].append((round(time.monotonic() - dripped, 1), status, body))
                _, metrics = self.admin("/metrics")
                if "\nwarden_policy_watch_connected 0" in metrics:
                    seen["disconnected"] = True
                time.sleep(0.1)

        accepted_before = self.relay.accepted
        flows = self.relay.drip()
        dripped = time.monotonic()
        watcher = threading.Thread(target=watch_health, daemon=True)
        watcher.start()
        try:
            self.assertGreaterEqual(len(flows), 1)
            time.sleep(self.DRIP_BEFORE_DEACTIVATION)
            r = self.ctl("identities", "deactivate", "carol", "--reason", "F8 lateness")
            self.assertEqual(r.returncode, 0, r.stderr)
            deactivated = time.monotonic()
            refused_after = refusal = None
            while time.monotonic() - deactivated < self.OBSERVE_SECONDS:
                refusal = self.login()
                if refusal is not None and "deactivated" in (refusal[1] or ""):
                    refused_after = time.monotonic() - deactivated
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # one more look at the health endpoints
        finally:
            stop_watching.set()
            watcher.join(timeout=10)

        # The session held open: its next statement does not run.
        try:
            _, held_error = held.simple_query("SELECT 1")
            held_outcome = held_error and (held_error.get("C"), held_error.get("M"))
        except (EOFError, OSError) as e:
            held_outcome = "closed (%s)" % e
        finally:
            held.close()

        log = self.proxy.log()
        held_back = max(f.max_delay for f in flows)
        print("\nF8 lateness: carol %s %s after her deactivation (%.0fs into the drip, "
              "one heartbeat every %.0fs); refusal %r; held session: %r; records held "
              "back up to %.1fs; /readyz reports: %s"
              % ("refused" if refused_after is not None else "NOT refused",
                 "%.1fs" % refused_after if refused_after is not None
                 else "in %ds" % self.OBSERVE_SECONDS,
                 self.DRIP_BEFORE_DEACTIVATION, self.DRIP_EVERY, refusal, held_outcome,
                 held_back, seen["readyz"][:1]), file=sys.stderr)
        self.assertIsNotNone(refused_after,
                             "carol was never refused in %ds; proxy log tail:\n%s"
                             % (self.OBSERVE_SECONDS, log[-3000:]))
        self.assertLess(refused_after, self.BOUND_SECONDS,
                        "deactivation took %.1fs through a dripped watch (bound %ds)"
                        % (refused_after, self.BOUND_SECONDS))
        self.assertEqual(refusal[0], "28000", refusal)
        self.assertIn("deactivated by an administrator", refusal[1])
        self.assertIsNotNone(held_outcome, "carol's open session still ran a statement")
        # The drip did feed the stream (this is not a blackhole, which the
        # silence bound catches): heartbeats came out of it more than once.
        self.assertGreaterEqual(max(f.releases for f in flows), 2)
        # The proxy gave the held-back stream up for running behind, said so
        # on /readyz and the metrics, and reconnected through the relay.
        self.assertIn("behind warden-control", log)
        late = [t for t, _, body in seen["readyz"] if "behind warden-control" in body]
        self.assertTrue(late, seen["readyz"][:5])
        # ... before the deactivation was even published.
        self.assertLess(late[0], self.DRIP_BEFORE_DEACTIVATION, seen["readyz"][:5])
        self.assertTrue(seen["disconnected"])
        self.assertGreater(self.relay.accepted, accepted_before)
        # And healthy again on the new connection.
        self.assertTrue(wait_until(lambda: self.admin("/readyz") == (200, "ready"),
                                   timeout=15), self.admin("/readyz"))


if __name__ == "__main__":
    unittest.main()
