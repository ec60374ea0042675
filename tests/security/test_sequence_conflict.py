"""Two proxies speaking as one (issue 14): a copy of a running proxy's
state directory (its key and certificate) with a fresh spool numbers its
events from 1 again. warden-control used to take them for resends of the
events it had under those sequences and dropped them: the copy's users
ran statements nobody could see. Now the same (proxy, sequence) with other
content is refused, recorded as an alarm in the audit log, and the copy's
events stay in its spool; the original proxy's trail is untouched. Real
warden-control, proxies, PostgreSQL."""

import os
import shutil
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack, wait_until  # noqa: E402


class SequenceConflict(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-seq-").start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def run_on(self, port, sql):
        import rawpg
        conn = rawpg.RawConn(port)
        try:
            conn.login("alice", "alice-pw", "shop")
            _, error = conn.simple_query(sql)
            self.assertIsNone(error)
        finally:
            conn.close()

    def test_a_copy_of_a_proxy_cannot_hide_its_events_as_duplicates(self):
        real_ports = dict(self.stack.ports)
        # The original has recorded a few events (sequences 1..n).
        first = "original-%d" % time.time_ns()
        self.run_on(real_ports["prod"], "SELECT 1 /* %s */" % first)
        self.assertTrue(self.stack.recorded(first, timeout=20))

        # The copy: the same key and certificate, a spool of its own.
        clone_dir = os.path.join(self.stack.work, "clone")
        os.makedirs(clone_dir)
        shutil.copytree(os.path.join(self.stack.work, "proxy", "state"),
                        os.path.join(clone_dir, "state"))
        unused = self.stack.control.bootstrap_token_file("prod", "unused-clone")
        clone = self.stack.make_proxy("clone", self.stack.proxy_id, token_file=unused)
        clone_ports = dict(self.stack.ports)
        self.stack.ports = real_ports
        try:
            clone.start()
            self.assertTrue(wait_until(lambda: "in force" in clone.log(), timeout=30),
                            clone.log()[-2000:])
            hidden = "clone-delete-%d" % time.time_ns()
            self.run_on(clone_ports["prod"], "DELETE FROM orders WHERE id = -1 /* %s */" % hidden)
            # The copy is told, and says so in its log.
            self.assertTrue(wait_until(lambda: "already recorded with other content"
                                       in clone.log(), timeout=20), clone.log()[-3000:])
            # An alarm in the audit log names the proxy.
            def alarms():
                return [e["event"]["admin"] for e in self.stack.events()
                        if e["event"].get("admin", {}).get("action")
                        == "audit.sequence_conflict"]
            self.assertTrue(wait_until(lambda: alarms(), timeout=20))
            self.assertEqual(alarms()[0]["target"], "prod/" + self.stack.proxy_id)
            self.assertFalse(alarms()[0].get("success", False))
            # Nothing of the copy's was taken as the original's: the log
            # holds no event of the copy under a used sequence.
            texts = self.stack.statement_texts()
            self.assertFalse(any(hidden in t for t in texts))
            sequences = [e["event"]["sequence"] for e in self.stack.events()
                         if e["source"] == "prod/" + self.stack.proxy_id]
            self.assertEqual(len(sequences), len(set(sequences)))
            # Its events wait in its own spool (not acknowledged, not lost).
            spool = os.path.join(self.stack.work, "clone", "spool")
            spooled = b""
            for name in os.listdir(spool):
                if name.startswith("seg-"):
                    with open(os.path.join(spool, name), "rb") as f:
                        spooled += f.read()
            self.assertIn(hidden.encode(), spooled)
        finally:
            clone.stop()
        # The original's trail goes on, and verifies.
        after = "original-after-%d" % time.time_ns()
        self.run_on(real_ports["prod"], "SELECT 1 /* %s */" % after)
        self.assertTrue(self.stack.recorded(after, timeout=20))
        r = self.stack.verify_log()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
