"""Events under the right environment (issue 14.8). The demo's one proxy
serves a prod and a dev listener, and every event, a dev-only session's
`DELETE FROM orders` included, was recorded as prod (the certificate's
environment): an auditor read "an unfiltered DELETE was allowed in prod"
and `audit search --env dev` found nothing. Now each event carries its
listener's environment, which the proxy's certificate must cover: a
proxy enrolled for prod alone refuses its dev listener's sessions rather
than record them under the wrong name. Real warden-control, proxies,
PostgreSQL; psycopg2 as the client."""

import json
import os
import sys
import time
import unittest

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack, wait_until  # noqa: E402
import rawpg  # noqa: E402


def connect(port):
    return psycopg2.connect(host="127.0.0.1", port=port, user="alice", password="alice-pw",
                            dbname="shop", sslmode="disable", connect_timeout=10)


class ListenerEnvironment(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-env-").start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def statement_events(self, marker):
        return [e["event"] for e in self.stack.events()
                if marker in e["event"].get("statement", {}).get("text", "")]

    def search(self, env, marker):
        r = self.stack.ctl("audit", "search", "--env", env, "--kind", "statement",
                           "--limit", "100000", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines()
                if line.strip() and marker in line]

    def test_each_event_names_the_listener_that_served_it(self):
        marker = "env-%d" % time.time_ns()
        dev_delete = "DELETE FROM orders /* dev %s */" % marker
        prod_select = "SELECT count(*) FROM orders /* prod %s */" % marker
        before = self.stack.scalar("SELECT count(*) FROM orders")
        with connect(self.stack.ports["dev"]) as conn:
            with conn.cursor() as cur:
                cur.execute(dev_delete)  # dev allows it; rolled back below
            conn.rollback()
        with connect(self.stack.ports["prod"]) as conn:
            with conn.cursor() as cur:
                cur.execute(prod_select)
        self.assertEqual(self.stack.scalar("SELECT count(*) FROM orders"), before)
        self.assertTrue(self.stack.recorded("dev " + marker, timeout=20))
        self.assertTrue(self.stack.recorded("prod " + marker, timeout=20))
        by_text = {e["statement"]["text"]: e for e in self.statement_events(marker)}
        self.assertEqual(by_text[dev_delete]["environment"], "dev")
        self.assertEqual(by_text[prod_select]["environment"], "prod")
        # ... and the session and login events of the dev session too.
        dev_session = by_text[dev_delete]["session_id"]
        kinds = {e["event"].get("kind"): e["event"]["environment"]
                 for e in self.stack.events()
                 if e["event"].get("session_id") == dev_session}
        self.assertTrue(kinds, "no events of the dev session")
        self.assertEqual(set(kinds.values()), {"dev"}, kinds)
        # An auditor's search finds each where it happened, and only there.
        self.assertEqual(len(self.search("dev", "dev " + marker)), 1)
        self.assertEqual(self.search("prod", "dev " + marker), [])
        self.assertEqual(len(self.search("prod", "prod " + marker)), 1)
        # Still one hash-linked stream per proxy.
        r = self.stack.verify_log()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_a_proxy_enrolled_for_prod_alone_refuses_its_dev_listener(self):
        real_ports = dict(self.stack.ports)
        token = self.stack.control.bootstrap_token_file("prod", "narrow-1")
        narrow = self.stack.make_proxy("narrow", "narrow-1", token_file=token)
        narrow_ports = dict(self.stack.ports)
        self.stack.ports = real_ports
        try:
            narrow.start()
            self.assertTrue(wait_until(lambda: "in force" in narrow.log(), timeout=30),
                            narrow.log()[-2000:])
            # The dev listener: refused before authentication, with the fix.
            conn = rawpg.RawConn(narrow_ports["dev"])
            try:
                with self.assertRaises(RuntimeError) as refused:
                    conn.login("alice", "alice-pw", "shop")
            finally:
                conn.close()
            fields = refused.exception.args[0]
            self.assertEqual(fields.get("C"), "08004", fields)
            self.assertIn('does not cover environment "dev"', fields.get("M", ""))
            self.assertIn("--environment dev", fields.get("M", ""))
            # The prod listener serves, and records as prod.
            marker = "narrow-%d" % time.time_ns()
            with connect(narrow_ports["prod"]) as c:
                with c.cursor() as cur:
                    cur.execute("SELECT 1 /* %s */" % marker)
            self.assertTrue(self.stack.recorded(marker, timeout=20))
            events = self.statement_events(marker)
            self.assertEqual([e["environment"] for e in events], ["prod"])
            self.assertEqual(events[0]["proxy_id"], "narrow-1")
            # Nothing of narrow-1 was recorded as dev.
            self.assertEqual([e for e in self.stack.events()
                              if e["event"].get("proxy_id") == "narrow-1"
                              and e["event"].get("environment") == "dev"], [])
        finally:
            narrow.stop()


if __name__ == "__main__":
    unittest.main()
