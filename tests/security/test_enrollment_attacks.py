"""A bootstrap token without a proxy id once enrolled as a running proxy,
appended events under its id with the sequences the real proxy was about
to use, and the real proxy's events (a user's real DELETE) were then
dropped as duplicates while `audit verify` passed (issue 14). Now an id is
bound to its certificate: the second enrollment is refused, and the real
proxy's events keep landing. Real warden-control, proxies, PostgreSQL."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack, wait_until  # noqa: E402


class EnrollmentAttacks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-enroll-").start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_a_second_enrollment_as_a_running_proxy_is_refused(self):
        real_ports = dict(self.stack.ports)
        # A bootstrap token that names no proxy id, used by an impostor
        # configured with the running proxy's id.
        token = self.stack.control.bootstrap_token_file("prod")
        impostor = self.stack.make_proxy("impostor", self.stack.proxy_id, token_file=token)
        self.stack.ports = real_ports
        try:
            try:
                impostor.start(timeout=10)
            except RuntimeError:
                pass  # it may give up at once: either way it must not enroll
            self.assertTrue(wait_until(lambda: "already enrolled" in impostor.log(), timeout=20),
                            impostor.log()[-3000:])
            self.assertFalse(os.path.exists(os.path.join(
                self.stack.work, "impostor", "state", "proxy.crt")))
        finally:
            impostor.stop()
        # The refusal is in the audit trail, naming the id it asked for.
        refusals = [e["event"]["admin"] for e in self.stack.events()
                    if e["event"].get("admin", {}).get("action") == "proxy.enroll"
                    and not e["event"]["admin"].get("success")]
        self.assertEqual(len(refusals), 1, refusals)
        self.assertEqual(refusals[0]["target"], "prod/" + self.stack.proxy_id)
        self.assertIn("ALREADY_EXISTS", refusals[0]["detail"])
        # The text form says it was refused (red team: it read exactly like
        # the real proxy's enrollment).
        r = self.stack.ctl("audit", "search", "--kind", "admin")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [l for l in r.stdout.splitlines()
                 if "proxy.enroll" in l and "prod/%s:" % self.stack.proxy_id in l]
        self.assertTrue(any("proxy.enroll FAILED prod/%s: ALREADY_EXISTS" % self.stack.proxy_id
                            in l for l in lines), lines)
        self.assertTrue(any(" FAILED" not in l for l in lines), lines)

        # The real proxy's next statement is recorded, not dropped.
        marker = "real-delete-%d" % time.time_ns()
        conn = self.stack.raw()
        try:
            rows, error = conn.simple_query(
                "DELETE FROM orders WHERE id = -1 /* %s */" % marker)
            self.assertIsNone(error)
        finally:
            conn.close()
        self.assertTrue(self.stack.recorded(marker, timeout=20),
                        self.stack.proxy.log()[-2000:])
        r = self.stack.verify_log()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_b_the_same_id_in_another_environment_or_case_is_refused(self):
        # The running prod proxy's id in another case from a dev token, and
        # with a trailing '-' in prod (red team: "P1" and "p1." enrolled
        # next to "p1"): look-alikes in every audit line.
        real_ports = dict(self.stack.ports)
        for n, (env, proxy_id) in enumerate((("dev", self.stack.proxy_id.upper()),
                                             ("prod", self.stack.proxy_id + "-"))):
            token = self.stack.control.bootstrap_token_file(env, proxy_id)
            name = "twin%d" % n
            twin = self.stack.make_proxy(name, proxy_id, token_file=token)
            self.stack.ports = real_ports
            try:
                try:
                    twin.start(timeout=10)
                except RuntimeError:
                    pass
                self.assertTrue(wait_until(lambda: "is taken" in twin.log(), timeout=20),
                                twin.log()[-3000:])
                self.assertFalse(os.path.exists(os.path.join(
                    self.stack.work, name, "state", "proxy.crt")))
            finally:
                twin.stop()
        r = self.stack.ctl("proxies", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("dev/", r.stdout)
        self.assertNotIn(self.stack.proxy_id + "-", r.stdout)

    def test_c_the_mock_auth_secret_outlives_the_process(self):
        # Kept in the state directory, owner-only, so unknown users' mock
        # SCRAM salts stay the same across restarts.
        path = os.path.join(self.stack.work, "proxy", "state", "mock-auth.secret")
        self.assertTrue(os.path.exists(path))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertEqual(os.path.getsize(path), 32)

    def test_z_a_revoked_proxy_is_refused_and_says_why(self):
        r = self.stack.ctl("proxies", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("prod/" + self.stack.proxy_id, r.stdout)
        self.assertIn("active", r.stdout)
        r = self.stack.ctl("proxies", "revoke", "prod/" + self.stack.proxy_id)
        self.assertNotEqual(r.returncode, 0)  # --reason is required
        r = self.stack.ctl("proxies", "revoke", "prod/" + self.stack.proxy_id,
                           "--reason", "host rebuilt")
        self.assertEqual(r.returncode, 0, r.stderr)
        # The proxy's next audit append (and policy stream) is refused, with
        # the reason in its log; its events wait in its spool.
        conn = self.stack.raw()
        try:
            self.assertIsNone(conn.simple_query("SELECT 'after revoke'")[1])
        finally:
            conn.close()
        self.assertTrue(wait_until(lambda: "host rebuilt" in self.stack.proxy.log(), timeout=30),
                        self.stack.proxy.log()[-3000:])
        self.assertFalse(any("after revoke" in t for t in self.stack.statement_texts()))
        r = self.stack.ctl("proxies", "list", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        import json
        proxies = {p["proxy_id"]: p for p in json.loads(r.stdout)["proxies"]}
        self.assertTrue(proxies[self.stack.proxy_id]["revoked"])
        self.assertEqual(proxies[self.stack.proxy_id]["revoke_reason"], "host rebuilt")
        revokes = [e["event"]["admin"] for e in self.stack.events()
                   if e["event"].get("admin", {}).get("action") == "proxy.revoke"]
        self.assertEqual(len(revokes), 1)
        self.assertEqual(revokes[0]["detail"], "host rebuilt")


if __name__ == "__main__":
    unittest.main()
