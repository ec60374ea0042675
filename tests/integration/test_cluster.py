"""warden-control as a cluster: two replicas on one real etcd (three members,
TLS with client certificates, started by the test on loopback) share one
ordered log. What one replica takes, the other serves: tokens, policy
revisions, and a new revision reaches a proxy connected to the other
replica. Cluster mode refuses to start with keys of its own."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))

from clusterharness import (Replica, proxy_config, push_rule, start_replica,  # noqa: E402
                            start_replicas)
from controlharness import CONTROL_BIN, WARDENCTL_BIN, ControlPlane  # noqa: E402
from etcdharness import EtcdCluster  # noqa: E402
from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy  # noqa: E402


class ClusterReplicas(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Class cleanups run even when setUpClass fails half-way.
        cls.work = tempfile.mkdtemp(prefix="warden-cluster-")
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        cls.etcd = EtcdCluster(cls.work, members=3).start()
        cls.addClassCleanup(cls.etcd.stop)
        # One at a time: the first creates the bootstrap admin token, the
        # second finds it in the log.
        cls.replicas = []
        cls.addClassCleanup(lambda: [r.stop() for r in cls.replicas])
        cls.keys, replicas = start_replicas(cls.work, cls.etcd, ["a", "b"])
        cls.replicas.extend(replicas)
        cls.a, cls.b = cls.replicas

    def wardenctl(self, replica, *args):
        return subprocess.run([WARDENCTL_BIN, *args], env=replica.env(), capture_output=True,
                              text=True, timeout=60)

    def push(self, replica, rule):
        r = push_rule(replica, self.work, rule)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def eventually(self, check, timeout=15):
        deadline = time.time() + timeout
        while True:
            ok, detail = check()
            if ok:
                return detail
            if time.time() > deadline:
                self.fail(detail)
            time.sleep(0.1)

    def start_proxy(self, name, replicas, pg_port, audit=False):
        """A proxy of `prod` that enrolls through the first of `replicas`
        (and is given all of them), in its own folder; its port."""
        work = os.path.join(self.work, name)
        os.makedirs(work)
        port = free_port()
        config = proxy_config(name, self.work, replicas, self.keys, pg_port, port,
                              audit="async" if audit else "off")
        proxy = WardenProxy(config, work, {"main": port}).start()
        try:
            self.eventually(lambda: ("in force" in proxy.log(), proxy.log()[-2000:]))
        except BaseException:
            proxy.stop()  # a failed start leaves no process behind
            raise
        return proxy, port, work

    def test_1_one_bootstrap_token_for_the_cluster(self):
        self.assertIn("cluster replica", self.b.log())
        # The second replica found the first one's token in the log rather
        # than making its own.
        self.assertFalse(os.path.exists(os.path.join(self.b.data, "admin.token")))
        r = self.wardenctl(self.b, "tokens", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("bootstrap-admin", r.stdout)

    def test_2_a_token_made_on_one_replica_works_on_the_other(self):
        r = subprocess.run([WARDENCTL_BIN, "tokens", "create", "made-on-a", "--scope", "admin",
                            "--ttl", "1h", "--format", "json"], env=self.a.env(),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        made = json.loads(r.stdout)
        secret = made["token"]

        def works():
            r = subprocess.run([WARDENCTL_BIN, "tokens", "list"],
                               env=self.b.env(token=secret), capture_output=True,
                               text=True, timeout=60)
            return r.returncode == 0 and "made-on-a" in r.stdout, r.stderr
        self.eventually(works)
        # Revoked on B: refused on A.
        r = self.wardenctl(self.b, "tokens", "revoke", made["info"]["id"])
        self.assertEqual(r.returncode, 0, r.stderr)

        # At once: A checks every token against the log's end in etcd.
        r = subprocess.run([WARDENCTL_BIN, "tokens", "list"],
                           env=self.a.env(token=secret), capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 6, "a token revoked on B still works on A: " + r.stderr)
        self.assertIn("was revoked", r.stderr)

    def test_2b_each_replicas_own_events_are_all_recorded(self):
        # Red team: both replicas recorded their administrators' actions as
        # one source with sequences of their own, and each refused the
        # other's as conflicting: the command succeeded, its event was lost.
        names = []
        for i in range(6):
            replica = (self.a, self.b)[i % 2]
            name = "audited-%d" % i
            r = self.wardenctl(replica, "tokens", "create", name, "--scope", "audit:read",
                               "--ttl", "1h")
            self.assertEqual(r.returncode, 0, r.stderr)
            names.append(name)
        decoded = os.path.join(self.work, "admin-events.jsonl")

        def all_recorded():
            r = subprocess.run(
                [WARDENCTL_BIN, "audit", "export", "--out", decoded + ".raw",
                 "--decoded", decoded], env=self.a.env(), capture_output=True, text=True,
                timeout=60)
            if r.returncode != 0:
                return False, r.stderr
            with open(decoded) as f:
                creates = [line for line in f if "token.create" in line]
            missing = [n for n in names if not any(n in line for line in creates)]
            return not missing, "token.create events missing for %s" % missing
        self.eventually(all_recorded)
        for r in self.replicas:
            self.assertNotIn("not recorded", r.log())

    def test_3_a_revision_pushed_to_one_replica_reaches_a_proxy_of_the_other(self):
        self.push(self.a, "first")
        # No database behind it: this test only follows policy.
        proxy, _, _ = self.start_proxy("p-on-b", [self.b], free_port())
        try:
            history = self.wardenctl(self.b, "policy", "history")
            self.assertEqual(history.returncode, 0, history.stderr)
            before = proxy.log().count("in force")
            # Pushed to A; B's proxy gets it through B's stream.
            self.push(self.a, "second")

            def arrived():
                return proxy.log().count("in force") > before, proxy.log()[-2000:]
            self.eventually(arrived)
            # Both replicas list the same history.
            ha = self.wardenctl(self.a, "policy", "history")
            hb = self.wardenctl(self.b, "policy", "history")
            self.assertEqual(ha.returncode, 0, ha.stderr)
            self.assertEqual(ha.stdout, hb.stdout)
        finally:
            proxy.stop()

    def test_4d_a_replica_cut_off_from_etcd_sends_its_proxies_elsewhere(self):
        """Red team: a replica whose etcd member stopped answering (the TCP
        connection open) noticed nothing, and its proxies stayed on old
        policy. Now it stops their heartbeats once it has not reached the
        log for 10 s; they move to the next replica and take the push."""
        self.push(self.a, "before-the-cut")  # a policy, also when run alone
        member = self.etcd.members[2]
        args = self.etcd.control_args()
        args[args.index("--etcd-endpoints") + 1] = "127.0.0.1:%d" % member["client"]
        work = os.path.join(self.work, "d")
        data = os.path.join(work, "control-data")
        os.makedirs(data)
        for f in ("ca.key", "ca.crt"):
            shutil.copy(os.path.join(self.keys, f), data)
        d = Replica(work, extra_args=["--signing-key", os.path.join(self.keys, "signing.key")]
                    + args).start()
        d.token = self.a.admin_token()
        proxy = None
        stopped = False
        try:
            proxy, _, _ = self.start_proxy("p-cut", [d, self.a], free_port())
            before = proxy.log().count("in force")
            os.kill(member["proc"].pid, signal.SIGSTOP)
            stopped = True

            def pushed():
                r = push_rule(self.a, self.work, "while-d-is-cut-off")
                return r.returncode == 0, r.stdout + r.stderr
            self.eventually(pushed, timeout=30)
            self.eventually(lambda: (proxy.log().count("in force") > before,
                                     proxy.log()[-3000:]), timeout=90)
            self.assertIn("has not reached the cluster's log", d.log())
        finally:
            if stopped:
                os.kill(member["proc"].pid, signal.SIGCONT)
            if proxy is not None:
                proxy.stop()
            d.stop()

    def test_5_a_proxy_moves_to_another_replica_and_loses_no_audit_event(self):
        """Last: it kills replica B. A proxy given both replicas (B first)
        records statements through B; B dies; it records more through A,
        keeps receiving policy from A, and A's log holds every statement's
        intent event exactly once."""
        self.push(self.a, "before-failover")  # a policy, also when run alone
        pg = PostgresServer()
        pg.start()
        proxy = None
        try:
            setup_sample(pg)
            proxy, port, work = self.start_proxy("p-failover", [self.b, self.a], pg.port,
                                                 audit=True)

            def run(markers, padding=0):
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="alice",
                                        password="alice-pw", dbname="shop")
                conn.autocommit = True
                with conn.cursor() as cur:
                    for m in markers:
                        cur.execute("SELECT 'cluster-marker-%d', '%s'" % (m, "x" * padding))
                        self.assertEqual(cur.fetchone()[0], "cluster-marker-%d" % m)
                conn.close()

            # Large statements first: their events make Appends over what one
            # etcd request takes, which the replica splits into several
            # entries (never refused: the proxy would resend them forever).
            run(range(0, 10), padding=200 * 1024)
            run(range(10, 20))
            self.b.stop(signal.SIGKILL)
            run(range(20, 40))
            # wardenctl given both replicas, the dead one first: it uses A.
            both = dict(self.a.env(), WARDEN_SERVER="localhost:%d,localhost:%d"
                        % (self.b.port, self.a.port))
            r = subprocess.run([WARDENCTL_BIN, "policy", "history"], env=both,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, self.wardenctl(self.a, "policy", "history").stdout)
            before = proxy.log().count("in force")
            self.push(self.a, "after-failover")
            self.eventually(lambda: (proxy.log().count("in force") > before,
                                     proxy.log()[-3000:]), timeout=60)

            decoded = os.path.join(work, "decoded.jsonl")

            def all_recorded():
                r = subprocess.run(
                    [WARDENCTL_BIN, "audit", "export", "--out", os.path.join(work, "a.jsonl"),
                     "--decoded", decoded], env=self.a.env(), capture_output=True,
                    text=True, timeout=60)
                if r.returncode != 0:
                    return False, r.stderr
                with open(decoded) as f:
                    text = f.read()
                seen = [text.count("'cluster-marker-%d'" % m) for m in range(40)]
                return all(n > 0 for n in seen), "markers seen per statement: %s" % seen
            self.eventually(all_recorded, timeout=60)
            intents = {}
            sample = ""
            with open(decoded) as f:
                for line in f:
                    text = json.dumps(json.loads(line))
                    for m in range(40):
                        if "'cluster-marker-%d'" % m in text:
                            sample = sample or text
                            if "STATEMENT_PHASE_INTENT" in text:
                                intents[m] = intents.get(m, 0) + 1
            self.assertEqual(sorted(intents), list(range(40)), sample)
            self.assertEqual(set(intents.values()), {1}, "an intent recorded twice: %s" % intents)
            self.assertIn("trying", proxy.log())  # it moved on from B
        finally:
            if proxy is not None:
                proxy.stop()
            pg.stop()

    def test_4b_a_replica_stops_cleanly_on_sigterm(self):
        # Red team: every SIGTERM ended in an abort (a second Notify).
        c = start_replica(self.work, self.etcd, self.keys, "c")
        c.proc.send_signal(signal.SIGTERM)
        self.assertEqual(c.proc.wait(timeout=30), 0, c.log()[-2000:])
        c.stop()
        # And a single node (the same shutdown path).
        os.makedirs(os.path.join(self.work, "single"))
        single = ControlPlane(os.path.join(self.work, "single")).start()
        single.proc.send_signal(signal.SIGTERM)
        self.assertEqual(single.proc.wait(timeout=30), 0, single.log()[-2000:])
        single.stop()

    def test_4_cluster_mode_refuses_keys_of_its_own(self):
        work = os.path.join(self.work, "lonely")
        os.makedirs(os.path.join(work, "control-data"))
        r = subprocess.run([CONTROL_BIN, "--data-dir", os.path.join(work, "control-data"),
                            "--listen", "127.0.0.1:%d" % free_port()] + self.etcd.control_args(),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("shared by every replica", r.stderr)

    def test_4c_a_replica_with_other_shared_keys_cannot_join(self):
        # Red team: a replica given another signing key (or CA) joined and
        # pushed revisions no proxy could verify. Now the log's batches
        # are authenticated with a key derived from the cluster's shared
        # keys: it stops at start, before serving or writing anything, and
        # the cluster goes on.
        self.push(self.a, "before-the-stranger")
        for swap in ("signing", "ca"):
            with self.subTest(swap=swap):
                other = os.path.join(self.work, "other-keys-" + swap)
                subprocess.run([CONTROL_BIN, "--create-shared-keys", other], check=True,
                               capture_output=True, timeout=30)
                work = os.path.join(self.work, "stranger-" + swap)
                data = os.path.join(work, "control-data")
                os.makedirs(data)
                ca_from = other if swap == "ca" else self.keys
                key_from = other if swap == "signing" else self.keys
                for f in ("ca.key", "ca.crt"):
                    shutil.copy(os.path.join(ca_from, f), data)
                r = subprocess.run(
                    [CONTROL_BIN, "--data-dir", data, "--listen", "127.0.0.1:%d" % free_port(),
                     "--signing-key", os.path.join(key_from, "signing.key")]
                    + self.etcd.control_args(),
                    capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn("not authenticated by the cluster's key", r.stdout + r.stderr)
        # The right keys with other white space (a secret store's CRLFs and
        # trailing newline) are the same keys: that replica joins.
        work = os.path.join(self.work, "crlf")
        data = os.path.join(work, "control-data")
        os.makedirs(data)
        for f in ("ca.key", "ca.crt", "signing.key"):
            with open(os.path.join(self.keys, f)) as src:
                text = src.read().replace("\n", "\r\n") + "\r\n"
            with open(os.path.join(data if f != "signing.key" else work, f), "w") as dst:
                dst.write(text)
        crlf = Replica(work, extra_args=["--signing-key", os.path.join(work, "signing.key")]
                       + self.etcd.control_args()).start()
        try:
            crlf.token = self.a.admin_token()
            r = self.wardenctl(crlf, "policy", "history")
            self.assertEqual(r.returncode, 0, r.stderr + crlf.log()[-2000:])
        finally:
            crlf.stop()
        # The cluster is unharmed: a push to B lands, and A lists it too.
        before = self.wardenctl(self.b, "policy", "history").stdout
        self.push(self.b, "after-the-stranger")
        after = self.wardenctl(self.b, "policy", "history")
        self.assertEqual(after.returncode, 0, after.stderr)
        self.assertGreater(len(after.stdout.splitlines()), len(before.splitlines()))
        self.eventually(lambda: (
            self.wardenctl(self.a, "policy", "history").stdout == after.stdout,
            self.wardenctl(self.a, "policy", "history").stdout[-500:]))


if __name__ == "__main__":
    unittest.main()
