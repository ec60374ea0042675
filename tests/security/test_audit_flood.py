"""Anyone who can reach warden-control or a proxy once could make the audit
trail unreadable for good: oversized unauthenticated Login calls and
failed proxy logins with huge user names were recorded whole, and every
reader of the log (export, tail, search, the SIEM stream) then failed with
RESOURCE_EXHAUSTED (issue 14). Each entry is now bounded at ingest and
every reader pages by bytes: after the flood, all of them still work and
the cut events say what was cut."""

import base64
import json
import os
import queue
import struct
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import WARDENCTL, Stack, rawpg, wait_until  # noqa: E402


def unsigned_token(issuer):
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return "%s.%s." % (b64({"alg": "none", "typ": "JWT"}),
                       b64({"iss": issuer, "sub": "mallory", "aud": "warden",
                            "exp": int(time.time()) + 600}))


class AuditFlood(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-flood-", proxy_settings="failed_login_window: 4s",
                          control_args=["--login-failure-window", "5s",
                                        "--login-failures-recorded", "5",
                                        "--login-failures-refused-after", "12"]).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def login_call(self, token_text, provider):
        path = os.path.join(self.stack.work, "token.jwt")
        with open(path, "w") as f:
            f.write(token_text)
        return subprocess.run(
            [WARDENCTL, "login", "--token", path, "--provider", provider,
             "--out", os.path.join(self.stack.work, "login-out"),
             "--server", "localhost:%d" % self.stack.control.port,
             "--ca-file", self.stack.control.ca_file],
            capture_output=True, text=True, timeout=60,
            env={k: v for k, v in os.environ.items() if k != "WARDEN_TOKEN"})

    def failed_proxy_login(self, user):
        conn = rawpg.RawConn(self.stack.ports["prod"])
        try:
            body = struct.pack("!i", 196608) + b"user\0" + user + b"\0database\0shop\0\0"
            conn.send(struct.pack("!i", len(body) + 4) + body)
            t, body = conn.read_message()
            if t == b"R":
                code = struct.unpack("!i", body[:4])[0]
                if code == 3:
                    conn.send(rawpg.message(b"p", b"wrong\0"))
                else:
                    conn.send(rawpg.message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", 5) + b"n,,xx"))
                conn.read_until_eof()
        finally:
            conn.close()

    def test_flood_leaves_every_reader_working(self):
        size_before = len(self.stack.events())
        # Five unauthenticated Login calls, each with ~2 MB of issuer in an
        # unsigned token (gRPC's 4 MiB limit stops larger ones before
        # Warden) and a 100 KB provider name (about what fits in one
        # command-line argument).
        for i in range(5):
            r = self.login_call(unsigned_token("https://" + "i" * (2 << 20)), "p" * 100000)
            self.assertNotEqual(r.returncode, 0)
            self.assertNotIn("RESOURCE_EXHAUSTED", r.stderr)
        # 200 failed proxy logins with 9.9 KB user names.
        for i in range(200):
            self.failed_proxy_login(b"%03d" % i + b"u" * 9900)
        # Nothing lost, nothing flooding: the first failures of each window
        # are events one by one, the rest (and the connections refused once
        # the address kept failing) are counted in summary events.
        def accounted(events):
            one_by_one = sum(
                1 for e in events
                if e["event"].get("kind") == "AUDIT_EVENT_KIND_AUTHENTICATION"
                and "uuuu" in e["event"].get("authentication", {}).get("claimed_user", ""))
            summaries = [e["event"]["authentication"] for e in events
                         if e["event"].get("authentication", {}).get("method") == "summary"]
            rest = sum(int(s.get("count", 0)) - int(s.get("recorded", 0)) + int(s.get("refused", 0))
                       for s in summaries)
            return one_by_one + rest, one_by_one, summaries
        self.assertTrue(wait_until(lambda: accounted(self.stack.events())[0] >= 200, timeout=60),
                        (accounted(self.stack.events()), self.stack.proxy.log()[-2000:]))
        total, one_by_one, summaries = accounted(self.stack.events())
        self.assertEqual(total, 200)
        self.assertGreaterEqual(one_by_one, 20)
        self.assertLess(one_by_one, 200)
        self.assertTrue(summaries)
        self.assertTrue(all(s["client_address"] == "127.0.0.1" for s in summaries), summaries)
        self.assertIn("failed logins from 127.0.0.1", summaries[0]["reason"])

        events = self.stack.events()
        logins = [e["event"] for e in events
                  if e["event"].get("admin", {}).get("action") == "identity.certificate"]
        self.assertGreaterEqual(len(logins), 5)
        for e in logins:
            self.assertLessEqual(len(e["admin"]["target"]), 4096)
            self.assertLessEqual(len(e["admin"].get("detail", "")), 4096)
            self.assertIn("admin.target", e["repairs"]["truncated"])
            self.assertGreater(int(e["repairs"]["original_size"]), 100000)
        failed = [e["event"] for e in events
                  if e["event"].get("kind") == "AUDIT_EVENT_KIND_AUTHENTICATION"
                  and "uuuu" in e["event"].get("authentication", {}).get("claimed_user", "")]
        self.assertEqual(len(failed), one_by_one)
        for e in failed:
            self.assertLessEqual(len(json.dumps(e)), 64 * 1024)

        # Every reader still works: export + offline verify, tail, search.
        r = self.stack.verify_log()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("verified", r.stdout)
        r = self.stack.ctl("audit", "tail", "--limit", "1000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(len(r.stdout.splitlines()), one_by_one + 5)
        r = self.stack.ctl("audit", "search", "--kind", "authentication", "--limit", "1000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(len(r.stdout.splitlines()), one_by_one)
        # And the SIEM stream, from the start and live.
        follow = subprocess.Popen([WARDENCTL, "audit", "tail", "--follow", "--from", "0"],
                                  env=self.stack.control.env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in follow.stdout],
                         daemon=True).start()
        try:
            marker = "after-flood-%d" % time.time_ns()
            conn = self.stack.raw()
            try:
                self.assertIsNone(conn.simple_query("SELECT '%s'" % marker)[1])
            finally:
                conn.close()
            deadline = time.time() + 30
            seen = 0
            found = False
            while time.time() < deadline and not found:
                try:
                    line = lines.get(timeout=1)
                except queue.Empty:
                    self.assertIsNone(follow.poll(), follow.stderr.read() if follow.poll() else "")
                    continue
                seen += 1
                found = marker in line
            self.assertTrue(found, "tail --follow stopped after %d lines" % seen)
        finally:
            follow.kill()
            follow.wait(timeout=10)
            follow.stdout.close()
            follow.stderr.close()


    def test_z_refused_logins_at_the_control_plane_are_summarised_and_limited(self):
        """`wardenctl login` needs no credentials, so a peer can call it
        without end: its first refusals in a window are events one by one,
        the rest one summary, and after 12 its calls are refused unread
        until the window ends. Nothing is lost: every call is counted."""
        time.sleep(6)  # the earlier test's calls are in a window that ended
        bad = unsigned_token("https://flood.example")
        outcomes = [self.login_call(bad, "flood-provider") for _ in range(16)]
        for r in outcomes:
            self.assertNotEqual(r.returncode, 0)
        limited = [r for r in outcomes if "too many refused logins from 127.0.0.1" in r.stderr]
        self.assertEqual(len(limited), 4, [r.stderr for r in outcomes])
        self.assertTrue(all("too many" not in r.stderr for r in outcomes[:12]))

        def summaries():
            return [e["event"]["admin"] for e in self.stack.events()
                    if e["event"].get("admin", {}).get("action") == "identity.certificate.failures"
                    and "12 failed logins from 127.0.0.1" in e["event"]["admin"].get("detail", "")]
        self.assertTrue(wait_until(lambda: summaries(), timeout=30), self.stack.control.log()[-2000:])
        s = summaries()
        self.assertEqual(len(s), 1, s)
        self.assertIn("5 recorded one by one, 4 connections refused", s[0]["detail"])
        self.assertEqual(s[0]["target"], "127.0.0.1")
        one_by_one = [e for e in self.stack.events()
                      if e["event"].get("admin", {}).get("action") == "identity.certificate"
                      and e["event"]["admin"].get("target")
                      == 'flood-provider/"mallory" (unverified)']
        self.assertEqual(len(one_by_one), 5)
        self.assertIn("(from 127.0.0.1)", one_by_one[0]["event"]["admin"]["detail"])
        # The window over, the address may try again (and is refused on the
        # merits, not by the limit).
        r = self.login_call(bad, "flood-provider")
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn("too many", r.stderr)


if __name__ == "__main__":
    unittest.main()
