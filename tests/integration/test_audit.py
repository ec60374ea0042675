"""The audit trail end to end, with real processes: PostgreSQL 15,
warden-control and a warden-proxy recording into its spool and streaming to
the control plane. A psql session shows up in `wardenctl audit tail`; an
exported log verifies offline against a saved checkpoint, and every kind of
tampering with the export is caught and named; events survive kill -9 of the
proxy and of the control plane, exactly once."""

import base64
import hashlib
import json
import queue
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))
sys.path.insert(0, HERE)

from pgharness import PostgresServer, free_port, setup_sample  # noqa: E402
from proxyharness import WardenProxy, pause, wait_until  # noqa: E402
from controlharness import WARDENCTL_BIN as WARDENCTL, ControlPlane  # noqa: E402
import rawpg  # noqa: E402

POLICY = """apiVersion: warden/v1
kind: Policy
metadata: { name: audit-guard }
spec:
  environments: [prod]
  rules:
    - name: no-drop
      match: { commands: [DROP TABLE] }
      action: deny
      message: not in prod
"""



class AuditTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="warden-audit-")
        cls.proxy = None
        cls.control = None
        cls.pg = PostgresServer()
        try:
            cls.pg.start()
            setup_sample(cls.pg)
            cls.control = ControlPlane(cls.work).start()
            cls.token_file = cls.control.bootstrap_token_file("prod", "audit-p1")
            policies = os.path.join(cls.work, "policies")
            os.makedirs(policies)
            with open(os.path.join(policies, "prod.yaml"), "w") as f:
                f.write(POLICY)
            r = subprocess.run([WARDENCTL, "policy", "push", policies], env=cls.control.env(),
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            cls.port = free_port()
            cls.admin_port = free_port()
            cls.proxy = cls.make_proxy().start()
            assert wait_until(lambda: "in force" in cls.proxy.log()), cls.proxy.log()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def make_proxy(cls, name="proxy", proxy_id="audit-p1", port=None, token=None,
                   audit="mode: async", binary=None):
        workdir = os.path.join(cls.work, name)
        os.makedirs(workdir, exist_ok=True)
        admin = "admin: { port: %d }" % cls.admin_port if port is None else ""
        port = port or cls.port
        token = token or cls.token_file
        config = f"""
proxy: {{ workers: 1, log_level: info }}
policy:
  control_plane:
    address: localhost:{cls.control.port}
    ca_file: {cls.control.ca_file}
    trusted_keys: [{cls.control.signing_pub()}]
    state_dir: {os.path.join(workdir, 'state')}
    bootstrap_token_file: {token}
    proxy_id: {proxy_id}
audit:
  {audit}
  spool_dir: {os.path.join(workdir, 'spool')}
{admin}
listeners:
  - {{ name: main, port: {port}, environment: prod }}
environments:
  - name: prod
    databases:
      - name: shop
        upstream: {{ host: 127.0.0.1, port: {cls.pg.port}, database: shop, user: warden_svc, password: svc-scram-pw }}
users:
  - {{ name: alice, password: alice-pw }}
"""
        if binary is None:
            return WardenProxy(config, workdir, {"main": port})
        return WardenProxy(config, workdir, {"main": port}, binary=binary)

    @classmethod
    def tearDownClass(cls):
        if cls.proxy:
            cls.proxy.stop()
        if cls.control and cls.control.proc:
            cls.control.stop()
        cls.pg.stop()

    def ctl(self, *args, timeout=60):
        return subprocess.run([WARDENCTL] + list(args), env=self.control.env(),
                              capture_output=True, text=True, timeout=timeout)

    def metrics(self):
        """The proxy's Prometheus metrics, as {name: value}."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port,
                                    timeout=10) as r:
            self.assertIn("text/plain", r.headers["Content-Type"])
            body = r.read().decode()
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def run_sql(self, *statements, port=None):
        conn = rawpg.RawConn(port or self.port)
        try:
            conn.login("alice", "alice-pw", "shop")
            return [conn.simple_query(s)[1] for s in statements]
        finally:
            conn.close()

    def events(self):
        """Every event in the log, as (index, AuditLeaf dict)."""
        r = self.ctl("audit", "tail", "--from", "0", "--limit", "1000000", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def statement_texts(self):
        out = []
        for e in self.events():
            st = e["leaf"]["event"].get("statement")
            if st:
                out.append(st.get("text", ""))
        return out

    def test_1_a_session_is_in_the_trail_and_verifies(self):
        marker = "audit-marker-%d" % time.time_ns()
        errors = self.run_sql("SELECT '%s' AS m" % marker, "DROP TABLE orders")
        self.assertIsNone(errors[0])
        self.assertIn("no-drop", errors[1]["M"])
        self.assertTrue(wait_until(lambda: any(marker in t for t in self.statement_texts())),
                        self.proxy.log()[-2000:])
        self.assertTrue(wait_until(lambda: any(
            e["leaf"]["event"].get("kind") == "AUDIT_EVENT_KIND_SESSION_END"
            for e in self.events())))
        events = [e["leaf"]["event"] for e in self.events()]
        kinds = [e["kind"] for e in events]
        for kind in ("AUDIT_EVENT_KIND_AUTHENTICATION", "AUDIT_EVENT_KIND_SESSION_START",
                     "AUDIT_EVENT_KIND_STATEMENT", "AUDIT_EVENT_KIND_SESSION_END"):
            self.assertIn(kind, kinds)
        drop = [e for e in events if e.get("statement", {}).get("text") == "DROP TABLE orders"][0]
        self.assertEqual(drop["statement"]["decision"], "POLICY_ACTION_DENY")
        self.assertEqual(drop["statement"]["rule"], "no-drop")
        self.assertEqual(drop["statement"]["tables"], ["orders"])
        self.assertEqual(drop["identity"]["user"], "alice")
        self.assertEqual(drop["proxy_id"], "audit-p1")
        self.assertGreater(int(drop["statement"]["bundle_revision"]), 0)
        # The text form names who did what.
        r = self.ctl("audit", "tail", "--limit", "50")
        self.assertIn("DENY [no-drop] DROP TABLE orders", r.stdout)
        # Search by decision, and the OCSF form a SIEM ingests.
        r = self.ctl("audit", "search", "--decision", "deny", "--ocsf")
        self.assertEqual(r.returncode, 0, r.stderr)
        denied = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        self.assertEqual(len(denied), 1, r.stdout)
        self.assertEqual(denied[0]["class_uid"], 6005)
        self.assertEqual(denied[0]["activity_id"], 7)  # Delete
        self.assertEqual(denied[0]["status"], "Failure")
        self.assertEqual(denied[0]["actor"]["user"]["name"], "alice")
        self.assertEqual(denied[0]["query_info"]["query_string"], "DROP TABLE orders")
        # Following: a new statement shows up in a running tail --follow.
        follow = subprocess.Popen([WARDENCTL, "audit", "tail", "--follow", "--user", "alice",
                                   "--kind", "statement"], env=self.control.env(),
                                  stdout=subprocess.PIPE, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in follow.stdout],
                         daemon=True).start()
        try:
            live = "live-%d" % time.time_ns()
            self.run_sql("SELECT '%s'" % live)
            deadline = time.time() + 20
            seen = ""
            while time.time() < deadline and live not in seen:
                try:
                    seen = lines.get(timeout=max(0.1, deadline - time.time()))
                except queue.Empty:
                    break
            self.assertIn(live, seen)
        finally:
            follow.kill()
            follow.wait(timeout=10)
            follow.stdout.close()

        # tail's filters pick the last N events that match, not the matches
        # among the last N events (issue 15: `tail --user alice --limit 3`
        # printed nothing). The DROP is the only denial, far back by now.
        self.run_sql(*["SELECT 'filler-%d'" % i for i in range(30)])
        marker = "last-%d" % time.time_ns()
        self.run_sql("SELECT '%s'" % marker)
        self.assertTrue(wait_until(lambda: marker in self.ctl("audit", "tail", "--limit", "5").stdout))
        r = self.ctl("audit", "tail", "--decision", "deny", "--limit", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 1, r.stdout)
        self.assertIn("DENY [no-drop] DROP TABLE orders", r.stdout)
        self.assertNotIn("DROP TABLE", self.ctl("audit", "tail", "--limit", "20").stdout)
        r = self.ctl("audit", "tail", "--user", "alice", "--kind", "statement", "--limit", "3",
                     "--format", "json")
        got = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        self.assertEqual(len(got), 3, r.stdout)
        self.assertEqual([int(g["index"]) for g in got], sorted(int(g["index"]) for g in got))
        # The newest: the marker's intent and its result event.
        self.assertIn(marker, got[-2]["leaf"]["event"]["statement"]["text"])
        self.assertEqual(got[-1]["leaf"]["event"]["statement"]["phase"], "STATEMENT_PHASE_RESULT")

        # Save a checkpoint and the log; verify offline with the key only.
        cp = os.path.join(self.work, "checkpoint.note")
        r = self.ctl("audit", "checkpoint", "--out", cp)
        self.assertEqual(r.returncode, 0, r.stderr)
        log = os.path.join(self.work, "log.jsonl")
        decoded = os.path.join(self.work, "log.decoded.jsonl")
        r = self.ctl("audit", "export", "--out", log, "--checkpoint", cp,
                     "--decoded", decoded)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The readable copy: the same entries, decoded (issue 15: export
        # wrote only base64 protobuf).
        with open(log) as f:
            exported = [json.loads(l) for l in f if l.strip()]
        with open(decoded) as f:
            readable = [json.loads(l) for l in f if l.strip()]
        self.assertEqual([e["index"] for e in exported], [e["index"] for e in readable])
        self.assertTrue(any(e["leaf"]["event"].get("statement", {}).get("text")
                            == "DROP TABLE orders" for e in readable))
        vkey = os.path.join(self.control.data, "audit.vkey")
        r = self.ctl("audit", "verify", "--log", log, "--checkpoint", cp, "--key", vkey)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("verified", r.stdout)
        with open(cp) as f:
            signed = int(f.read().split("\n")[1])
        with open(log) as f:
            self.assertEqual(sum(1 for l in f if l.strip()), signed)
        # Entries the checkpoint did not sign are not "verified": a whole
        # export made after more events arrived fails unless the caller
        # accepts them explicitly.
        self.run_sql("SELECT 'after-the-checkpoint'")
        self.assertTrue(wait_until(lambda: len(self.events()) > signed))
        whole = os.path.join(self.work, "whole.jsonl")
        r = self.ctl("audit", "export", "--out", whole)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("audit", "verify", "--log", whole, "--checkpoint", cp,
                     "--key", vkey, "--format", "json")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(json.loads(r.stdout)["first_bad_index"], signed)
        r = self.ctl("audit", "verify", "--log", whole, "--checkpoint", cp,
                     "--key", vkey, "--allow-uncovered")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("not covered", r.stdout)
        # An inclusion proof for the DROP against the saved checkpoint.
        index = [e for e in self.events()
                 if e["leaf"]["event"].get("statement", {}).get("text") == "DROP TABLE orders"][0]
        r = self.ctl("audit", "proof", str(index["index"]), "--checkpoint", cp, "--key", vkey)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("is in the log", r.stdout)

        # Tampering, each on a copy of the export, is caught and named.
        with open(log) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        self.assertGreaterEqual(len(lines), 5)

        def verify(mutated, checkpoint=cp, key=vkey):
            path = os.path.join(self.work, "tampered.jsonl")
            with open(path, "w") as f:
                for e in mutated:
                    f.write(json.dumps(e) + "\n")
            return self.ctl("audit", "verify", "--log", path, "--checkpoint", checkpoint,
                            "--key", key, "--format", "json")

        def report(r):
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            return json.loads(r.stdout)

        # A byte changed in entry 2.
        changed = [dict(e) for e in lines]
        raw = bytearray(base64.b64decode(changed[2]["leaf"]))
        raw[-1] ^= 0x01
        changed[2]["leaf"] = base64.b64encode(bytes(raw)).decode()
        self.assertEqual(report(verify(changed))["first_bad_index"], 3)
        # Entry 3 deleted (and the rest renumbered, as a forger would).
        deleted = [dict(e) for e in lines[:3] + lines[4:]]
        for i, e in enumerate(deleted):
            e["index"] = i
        self.assertEqual(report(verify(deleted))["first_bad_index"], 3)
        # Entries 1 and 2 swapped.
        swapped = [dict(e) for e in lines]
        swapped[1]["leaf"], swapped[2]["leaf"] = swapped[2]["leaf"], swapped[1]["leaf"]
        self.assertEqual(report(verify(swapped))["first_bad_index"], 1)
        # Forged entries appended after the signed ones, each linked to
        # its predecessor as the chain requires (the link is an unkeyed
        # hash anyone can compute): refused, naming the first of them.
        forged = [dict(e) for e in lines]
        body = base64.b64decode(lines[-1]["leaf"])[32:]
        for _ in range(3):
            prev = base64.b64decode(forged[-1]["leaf"])
            link = hashlib.sha256(b"\0" + prev).digest()
            forged.append({"index": len(forged),
                           "leaf": base64.b64encode(link + body).decode()})
        self.assertEqual(report(verify(forged))["first_bad_index"], len(lines))

        # Content verify cannot check is refused, not ignored: a decoded
        # copy of an event beside its leaf, a second "leaf" member (one
        # JSON reader takes the first, another the last).
        def verify_text(text):
            path = os.path.join(self.work, "tampered.jsonl")
            with open(path, "w") as f:
                f.write(text)
            return self.ctl("audit", "verify", "--log", path, "--checkpoint", cp,
                            "--key", vkey)
        genuine = [json.dumps(e) for e in lines]
        extra = list(genuine)
        extra[1] = json.dumps(dict(lines[1], event={"user": "admin"}))
        r = verify_text("\n".join(extra) + "\n")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(':2: member "event" is not part of an exported entry', r.stderr)
        twice = list(genuine)
        twice[1] = '{"index": 1, "leaf": "AAAA", "leaf": "%s"}' % lines[1]["leaf"]
        r = verify_text("\n".join(twice) + "\n")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(':2: member "leaf" appears twice', r.stderr)
        # A second, forged entry after a NUL, where the parser stopped
        # reading (red team pass 5).
        hidden = list(genuine)
        hidden[1] = genuine[1] + '\0{"index": 1, "leaf": "AAAA"}'
        r = verify_text("\n".join(hidden) + "\n")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(":2: holds a NUL byte", r.stderr)
        r = verify_text("\n".join(genuine) + "\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # The tail cut off.
        rep = report(verify(lines[:-2]))
        self.assertEqual(rep["first_bad_index"], len(lines) - 2)
        self.assertIn("truncated", rep["message"])
        # A consistent forgery under another key: another control plane's
        # own, correctly signed checkpoint does not verify with the key the
        # auditor trusts, nor does the real one with the forger's key.
        forged_cp = os.path.join(self.work, "forged.note")
        other = ControlPlane(tempfile.mkdtemp(prefix="warden-audit-other-")).start()
        try:
            r = subprocess.run([WARDENCTL, "audit", "checkpoint", "--out", forged_cp],
                               env=other.env(), capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            other_vkey = os.path.join(other.data, "audit.vkey")
            rep = report(verify([], checkpoint=forged_cp))
            self.assertIn("checkpoint does not verify", rep["message"])
            rep = report(verify(lines, key=other_vkey))
            self.assertIn("checkpoint does not verify", rep["message"])
        finally:
            other.stop()

    def test_3_every_execution_of_a_prepared_statement_is_recorded(self):
        marker = "prep-%d" % time.time_ns()
        sql = "SELECT '%s', $1::int" % marker
        msg = rawpg.message
        conn = rawpg.RawConn(self.port)
        try:
            conn.login("alice", "alice-pw", "shop")
            batch = msg(b"P", b"s1\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
            for _ in range(3):
                batch += msg(b"B", b"\0s1\0" + struct.pack("!hh", 0, 1)
                             + struct.pack("!i", 1) + b"7" + struct.pack("!h", 0))
                batch += msg(b"E", b"\0" + struct.pack("!i", 0))
            batch += msg(b"S")
            conn.send(batch)
            while conn.read_message()[0] != b"Z":
                pass
        finally:
            conn.close()

        def protocols():
            return [e["leaf"]["event"]["statement"].get("protocol")
                    for e in self.events()
                    if marker in e["leaf"]["event"].get("statement", {}).get("text", "")]
        self.assertTrue(wait_until(lambda: len(protocols()) == 4), protocols())
        self.assertEqual(sorted(protocols()),
                         ["extended-execute"] * 3 + ["extended-prepare"])
        # Audit level full (no rule says less): the bound parameter is kept.
        executions = [e["leaf"]["event"]["statement"] for e in self.events()
                      if marker in e["leaf"]["event"].get("statement", {}).get("text", "")
                      and e["leaf"]["event"]["statement"]["protocol"] == "extended-execute"]
        self.assertEqual([x.get("parameters") for x in executions], [["7"]] * 3)
        # Each execution has its result: one row each, success, and the
        # sequence of the execution's own intent event.
        by_seq = {int(e["leaf"]["event"]["sequence"]): e["leaf"]["event"]
                  for e in self.events() if e["leaf"]["event"].get("proxy_id") == "audit-p1"}
        intents = sorted(seq for seq, ev in by_seq.items()
                         if marker in ev.get("statement", {}).get("text", "")
                         and ev["statement"]["protocol"] == "extended-execute")
        self.assertTrue(wait_until(lambda: len(self.results_of(intents)) == 3))
        for r in self.results_of(intents):
            self.assertEqual(r["statement"]["rows"], "1")
            self.assertEqual(r["statement"]["sqlstate"], "00000")
            self.assertEqual(r["statement"]["protocol"], "extended-execute")

    def test_3b_a_bind_postgresql_refuses_fails_its_own_execution(self):
        """Bind a (1), Bind b ('abc' for an int: PostgreSQL refuses it at
        Bind, 22P02), Execute a, Execute b, Sync. b's result says its Bind
        failed; a, which PostgreSQL skipped, did not run. (Before, a took
        b's 22P02 as its own error and b was reported as skipped.) The
        database is asked too: a's row is not there."""
        marker = "bindfail-%d" % time.time_ns()
        table = "t_" + marker.replace("-", "_")
        self.assertEqual(self.run_sql("CREATE TABLE %s (v int)" % table), [None])
        sql = "INSERT INTO %s SELECT $1::int WHERE '%s' <> ''" % (table, marker)
        msg = rawpg.message

        def bind(portal, value):
            return msg(b"B", portal + b"\0s1\0" + struct.pack("!hh", 0, 1)
                       + struct.pack("!i", len(value)) + value + struct.pack("!h", 0))
        conn = rawpg.RawConn(self.port)
        try:
            conn.login("alice", "alice-pw", "shop")
            conn.send(msg(b"P", b"s1\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
                      + bind(b"a", b"1") + bind(b"b", b"abc")
                      + msg(b"E", b"a\0" + struct.pack("!i", 0))
                      + msg(b"E", b"b\0" + struct.pack("!i", 0)) + msg(b"S"))
            replies = []
            while True:
                t, body = conn.read_message()
                replies.append(t)
                if t == b"Z":
                    break
            self.assertEqual(replies, [b"1", b"2", b"E", b"Z"])
        finally:
            conn.close()
        check = rawpg.RawConn(self.port)
        try:
            check.login("alice", "alice-pw", "shop")
            self.assertEqual(check.simple_query("SELECT count(*) FROM %s" % table),
                             ([["0"]], None))
        finally:
            check.close()

        def executions():
            return sorted(
                (int(e["leaf"]["event"]["sequence"]),
                 e["leaf"]["event"]["statement"].get("parameters"))
                for e in self.events()
                if marker in e["leaf"]["event"].get("statement", {}).get("text", "")
                and e["leaf"]["event"]["statement"]["protocol"] == "extended-execute")
        self.assertTrue(wait_until(lambda: len(executions()) == 2), executions())
        (seq_a, params_a), (seq_b, params_b) = executions()
        self.assertEqual((params_a, params_b), (["1"], ["abc"]))
        self.assertTrue(wait_until(lambda: len(self.results_of([seq_a, seq_b])) == 2))
        by_intent = {int(r["statement"]["intent_sequence"]): r["statement"]
                     for r in self.results_of([seq_a, seq_b])}
        self.assertEqual(by_intent[seq_b]["sqlstate"], "22P02")
        self.assertEqual(by_intent[seq_b]["reason"], "not run: its Bind failed")
        self.assertEqual(by_intent[seq_a]["sqlstate"], "22P02")
        self.assertEqual(by_intent[seq_a]["reason"],
                         "not run: an earlier message of its pipeline failed (22P02)")

    def results_of(self, intent_sequences):
        """Result events answering the given intent sequences (audit-p1)."""
        want = set(intent_sequences)
        return [e["leaf"]["event"] for e in self.events()
                if e["leaf"]["event"].get("proxy_id") == "audit-p1"
                and e["leaf"]["event"].get("statement", {}).get("phase") == "STATEMENT_PHASE_RESULT"
                and int(e["leaf"]["event"]["statement"]["intent_sequence"]) in want]

    def test_5_results_record_rows_duration_and_sqlstate(self):
        marker = "res-%d" % time.time_ns()
        select = "SELECT g, '%s' FROM generate_series(1, 3) g" % marker
        failing = "SELECT 1/0, '%s'" % marker
        table = "t_%s" % marker.replace("-", "_")
        dml = ("CREATE TEMP TABLE %s AS SELECT 1 AS a; "
               "INSERT INTO %s VALUES (2), (3), (4)" % (table, table))
        errors = self.run_sql(select, failing, dml)
        self.assertIsNone(errors[0])
        self.assertEqual(errors[1]["C"], "22012")
        self.assertIsNone(errors[2])

        def intent(text):
            for e in self.events():
                ev = e["leaf"]["event"]
                st = ev.get("statement", {})
                if st.get("text") == text and st.get("phase") == "STATEMENT_PHASE_INTENT":
                    return int(ev["sequence"])
            return None
        self.assertTrue(wait_until(lambda: None not in [intent(select), intent(failing),
                                                        intent(dml)]))

        def result(text):
            found = self.results_of([intent(text)])
            return found[0]["statement"] if len(found) == 1 else None
        self.assertTrue(wait_until(lambda: None not in [result(select), result(failing),
                                                        result(dml)]))
        ok = result(select)
        self.assertEqual(ok["rows"], "3")
        self.assertEqual(ok["sqlstate"], "00000")
        self.assertEqual(ok["command_tags"], ["SELECT"])
        self.assertNotIn("text", ok)  # the intent has the text, not the result.
        self.assertRegex(ok["duration"], r"^\d+(\.\d+)?s$")
        self.assertEqual(result(failing)["sqlstate"], "22012")
        self.assertEqual(result(dml)["rows"], "4")  # SELECT 1 + INSERT 0 3
        # The text form pairs a result with its statement's sequence.
        r = self.ctl("audit", "tail", "--limit", "200")
        self.assertIn("result of #%d: 00000, 3 rows" % intent(select), r.stdout)
        self.assertIn("result of #%d: 22012, 0 rows" % intent(failing), r.stdout)
        # OCSF: status code and duration, failure for the error.
        r = self.ctl("audit", "search", "--user", "alice", "--kind", "statement", "--ocsf",
                     "--limit", "100000")
        self.assertEqual(r.returncode, 0, r.stderr)
        ocsf = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        failed = [o for o in ocsf if o["unmapped"].get("warden_intent_sequence") == intent(failing)]
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]["status_code"], "22012")
        self.assertEqual(failed[0]["status"], "Failure")
        self.assertIn("duration", failed[0])

    def test_4_sync_mode_commits_before_the_database_sees_it(self):
        port = free_port()
        token = self.control.bootstrap_token_file("prod", "audit-sync")
        proxy = self.make_proxy("sync-proxy", "audit-sync", port, token,
                                "mode: sync\n  sync_timeout: 1500ms").start()
        try:
            self.assertTrue(wait_until(lambda: "in force" in proxy.log()), proxy.log())
            marker = "sync-%d" % time.time_ns()
            self.assertIsNone(self.run_sql("SELECT '%s'" % marker, port=port)[0])
            # No waiting: the event was committed before the statement ran.
            self.assertIn("SELECT '%s'" % marker, self.statement_texts())
            # Control plane gone: statements are refused, not run unrecorded.
            self.control.stop(signal.SIGKILL)
            try:
                started = time.time()
                errors = self.run_sql("SELECT 'during-outage'", port=port)
                self.assertIsNotNone(errors[0])
                self.assertEqual(errors[0]["C"], "53000")
                self.assertIn("did not confirm", errors[0]["M"])
                self.assertLess(time.time() - started, 10)
            finally:
                self.control.start()
            # Back: statements run again.
            self.assertTrue(wait_until(
                lambda: self.run_sql("SELECT 'after-%s'" % marker, port=port)[0] is None,
                timeout=30), proxy.log()[-2000:])
        finally:
            proxy.stop()

    def test_5_a_cancel_withdraws_a_statement_held_for_the_audit_trail(self):
        """Ctrl-C on a statement that waits for the control plane's
        acknowledgement (sync mode) withdraws it at once, long before the
        sync timeout, and it never runs; the session goes on."""
        port = free_port()
        token = self.control.bootstrap_token_file("prod", "audit-sync-cancel")
        proxy = self.make_proxy("sync-cancel-proxy", "audit-sync-cancel", port, token,
                                "mode: sync\n  sync_timeout: 60s").start()
        marker = "held-%d" % time.time_ns()
        conn = None
        try:
            self.assertTrue(wait_until(lambda: "in force" in proxy.log()), proxy.log())
            conn = rawpg.RawConn(port, timeout=30)
            conn.login("alice", "alice-pw", "shop")
            self.assertIsNone(conn.simple_query("CREATE TABLE IF NOT EXISTS held_marks (m text)")[1])
            # The control plane stops answering: the next statement is held.
            pause(self.control.proc.pid)
            try:
                conn.send(rawpg.query("INSERT INTO held_marks VALUES ('%s')" % marker))
                # Held: a second later it has not reached the database.
                time.sleep(1)
                self.assertEqual(self.marks(marker), "0", proxy.log()[-4000:])
                started = time.time()
                rawpg.send_cancel(port, conn.backend_key[0], conn.backend_key[1])
                replies = rawpg.read_to_ready(conn)
                took = time.time() - started
            finally:
                os.kill(self.control.proc.pid, signal.SIGCONT)
            errs = rawpg.errors(replies)
            self.assertEqual(len(errs), 1, replies)
            self.assertEqual(errs[0]["C"], "57014")
            self.assertEqual(errs[0]["M"], "canceling statement due to user request")
            self.assertIn("was not run", errs[0]["D"])
            self.assertLess(took, 10)  # the sync timeout is 60 s
            self.assertIn("cancelled a held statement", proxy.log())
            # The session goes on, and the withdrawn INSERT never ran.
            self.assertTrue(wait_until(
                lambda: conn.simple_query("SELECT 1")[1] is None, timeout=30))
            self.assertEqual(self.marks(marker), "0")
            # Its intent is in the trail, and so is the fact that it did
            # not run (red team pass 11, F6).
            self.assertTrue(wait_until(lambda: self.not_run(marker), timeout=30))
            st = self.not_run(marker)["statement"]
            self.assertEqual(st["sqlstate"], "57014")
            self.assertIn("not run: withdrawn by the client's cancel", st["reason"])

            # A client that leaves while its statement is held withdraws it
            # too (F5: it ran once acknowledged, after its client had gone).
            gone = marker + "-gone"
            pause(self.control.proc.pid)
            try:
                other = rawpg.RawConn(port, timeout=30)
                other.login("alice", "alice-pw", "shop")
                other.send(rawpg.query("INSERT INTO held_marks VALUES ('%s')" % gone))
                time.sleep(1)
                other.sock.close()
                self.assertTrue(wait_until(
                    lambda: "the client left while its statement was held" in proxy.log(),
                    timeout=10), proxy.log()[-2000:])
            finally:
                os.kill(self.control.proc.pid, signal.SIGCONT)
            self.assertTrue(wait_until(lambda: self.not_run(gone), timeout=30))
            self.assertIn("not run: the session ended", self.not_run(gone)["statement"]["reason"])
            self.assertEqual(self.marks(gone), "0")
        finally:
            if conn:
                conn.close()
            proxy.stop()

    def not_run(self, marker):
        """The result event saying the held statement with `marker` did not
        run, or None."""
        events = [e["leaf"]["event"] for e in self.events()]
        intents = {int(ev["sequence"]) for ev in events
                   if ev.get("proxy_id") == "audit-sync-cancel"
                   and marker in ev.get("statement", {}).get("text", "")
                   and ev["statement"].get("phase") == "STATEMENT_PHASE_INTENT"}
        for ev in events:
            st = ev.get("statement", {})
            if (ev.get("proxy_id") == "audit-sync-cancel"
                    and st.get("phase") == "STATEMENT_PHASE_RESULT"
                    and int(st.get("intent_sequence", 0)) in intents
                    and st.get("reason", "").startswith("not run")):
                return ev
        return None

    def marks(self, marker):
        """How many rows of held_marks hold `marker` (read directly)."""
        return self.pg.psql("SELECT count(*) FROM held_marks WHERE m = '%s'" % marker,
                            dbname="shop").strip()

    def test_2_kill_9_loses_nothing_and_duplicates_nothing(self):
        marker = "k9-%d" % time.time_ns()
        # Statements reach the database through the proxy while the control
        # plane is down: they wait in the spool.
        self.control.stop(signal.SIGKILL)
        for i in range(5):
            self.assertIsNone(self.run_sql("SELECT '%s-%d'" % (marker, i))[0])
        # The operator sees the spool grow and the lag: each session is at
        # least authentication, start, intent, result and end.
        self.assertTrue(wait_until(lambda: self.metrics()["warden_audit_sender_healthy"] == 0))
        # (A session's end is recorded once the proxy has seen it close.)
        self.assertTrue(wait_until(lambda: self.metrics()["warden_audit_spool_events"] >= 25),
                        self.metrics())
        m = self.metrics()
        self.assertGreaterEqual(m["warden_audit_spool_events"], 25)
        self.assertGreater(m["warden_audit_spool_bytes"], 0)
        self.assertGreater(m["warden_audit_lag_seconds"], 0)
        self.assertGreater(m["warden_audit_last_sequence"],
                           m["warden_audit_acknowledged_sequence"])
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.admin_port) as r:
            self.assertEqual(r.read(), b"ok\n")
        # The proxy dies too; its spool survives.
        os.kill(self.proxy.pid, signal.SIGKILL)
        self.proxy.proc.wait(timeout=15)
        self.proxy.stop()  # already dead: closes its log
        type(self).proxy = self.make_proxy().start()  # tearDownClass stops it
        self.control.start()
        for i in range(5, 8):
            self.assertIsNone(self.run_sql("SELECT '%s-%d'" % (marker, i))[0])
        want = {"SELECT '%s-%d'" % (marker, i) for i in range(8)}
        self.assertTrue(wait_until(lambda: want <= set(self.statement_texts()), timeout=40),
                        self.proxy.log()[-3000:])
        texts = self.statement_texts()
        for w in want:
            self.assertEqual(texts.count(w), 1, w)
        # Caught up: nothing pending, no lag, all acknowledged, ready.
        self.assertTrue(wait_until(lambda: self.metrics()["warden_audit_spool_events"] == 0))
        m = self.metrics()
        self.assertEqual(m["warden_audit_lag_seconds"], 0)
        self.assertEqual(m["warden_audit_last_sequence"],
                         m["warden_audit_acknowledged_sequence"])
        self.assertEqual(m["warden_audit_sender_healthy"], 1)
        self.assertEqual(m["warden_policy_in_force"], 1)
        self.assertGreater(m["warden_policy_revision"], 0)
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.admin_port) as r:
            self.assertEqual(r.status, 200)
        # Every (proxy, sequence) once, in order; the control plane's own
        # events (pushes, tokens, enrollments) have their own sequence.
        for source in ("prod/audit-p1", "control/warden-control"):
            seqs = [int(e["leaf"]["event"]["sequence"]) for e in self.events()
                    if e["leaf"]["source"] == source]
            self.assertTrue(seqs, source)
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)), source)

    def kill_9_right_after_a_statement(self, binary):
        """One statement with the control plane down, then kill -9 of the
        proxy at once (no wait for its 20 ms fsync or anything else); the
        proxy started again (this build) on the same spool delivers the
        statement's intent, once."""
        marker = "k9-now-%d" % time.time_ns()
        self.control.stop(signal.SIGKILL)  # nothing leaves the spool
        self.proxy.stop()
        type(self).proxy = self.make_proxy(binary=binary).start()
        try:
            self.assertIsNone(self.run_sql("SELECT '%s'" % marker)[0])
            os.kill(self.proxy.pid, signal.SIGKILL)
            self.proxy.proc.wait(timeout=15)
        finally:
            self.proxy.stop()  # already dead: closes its log
            type(self).proxy = self.make_proxy().start()
            self.control.start()
        want = "SELECT '%s'" % marker
        self.assertTrue(wait_until(lambda: want in self.statement_texts(), timeout=40),
                        self.proxy.log()[-3000:])
        self.assertEqual(self.statement_texts().count(want), 1)
        intents = [e for e in self.events()
                   if e["leaf"]["event"].get("statement", {}).get("text") == want]
        self.assertEqual(intents[0]["leaf"]["event"]["statement"]["phase"],
                         "STATEMENT_PHASE_INTENT")

    def test_2b_kill_9_right_after_a_statement_keeps_its_intent(self):
        # (Against an older build's spool, pass that build's binary.)
        self.kill_9_right_after_a_statement(binary=None)

    def test_6_sigterm_does_not_wait_for_a_control_plane_that_does_not_answer(self):
        """The control plane stopped (SIGSTOP: its socket takes connections
        and requests, nothing answers) while the proxy's Append waits for
        it: SIGTERM stops the proxy in seconds, not after the call's 30 s
        deadline (red team), and the events it had stay in its spool and
        reach the log after the restart."""
        marker = "term-%d" % time.time_ns()
        pause(self.control.pid)
        try:
            self.assertIsNone(self.run_sql("SELECT '%s'" % marker)[0])
            time.sleep(1)  # the sender sends the events and waits
            started = time.monotonic()
            self.proxy.proc.send_signal(signal.SIGTERM)
            try:
                self.proxy.proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.fail("the proxy did not stop within 25 s of SIGTERM")
            took = time.monotonic() - started
        finally:
            os.kill(self.control.pid, signal.SIGCONT)
        self.assertEqual(self.proxy.proc.returncode, 0)
        self.assertLess(took, 10, self.proxy.log()[-2000:])
        self.proxy.stop()  # already gone: closes its log
        type(self).proxy = self.make_proxy().start()  # tearDownClass stops it
        self.assertTrue(wait_until(
            lambda: "SELECT '%s'" % marker in self.statement_texts(), timeout=40),
            self.proxy.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
