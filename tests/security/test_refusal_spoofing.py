"""Refusal substitutes cannot be spoofed (issue 13 item 14). A refused
statement reaches PostgreSQL as a poison whose error Warden rewrites into
the refusal; the poison's name used to be a per-session token plus a
counter, visible in pg_stat_activity, and Warden found it in the error
text. A client that read it could send a statement raising an error that
names the next poison: its own statement got another statement's
refusal, and the refused statement came back as a bare syntax error. Now
each poison has its own random name, made when the poison is. Real
warden-control, proxy and PostgreSQL 15."""

import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import Stack, rawpg  # noqa: E402


errors_of = rawpg.errors


class RefusalSpoofing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack("warden-sec-spoof-").start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_an_error_naming_a_poison_is_not_taken_for_its_refusal(self):
        victim = self.stack.raw()
        spy = self.stack.raw()
        try:
            # A refusal, whose poison the spy reads from pg_stat_activity.
            victim.send(rawpg.query("DROP TABLE orders"))
            first = errors_of(rawpg.read_to_ready(victim))
            self.assertIn("no-drop-data-objects", first[0]["M"])
            def last_poison():
                rows, error = spy.simple_query(
                    "SELECT query FROM pg_stat_activity WHERE usename = current_user "
                    "AND query LIKE '%warden_refusal_%' AND pid <> pg_backend_pid()")
                self.assertIsNone(error)
                found = re.findall(r"warden_refusal_[0-9a-f_]+", " ".join(str(r) for r in rows))
                self.assertTrue(found, rows)
                return found[-1]
            names = []
            for attempt in range(3):
                seen = last_poison()
                names.append(seen)
                # The attacker's best guess at the next poison's name: the
                # next value if the name ends in a counter, else the same.
                m = re.match(r"(warden_refusal_.*_)(\d+)$", seen)
                guess = m.group(1) + str(int(m.group(2)) + 1) if m else seen
                with self.subTest(attempt=attempt, guess=guess):
                    # The guess in the error of an allowed statement,
                    # pipelined before a refused one.
                    victim.send(rawpg.query("SELECT '%s'::int" % guess)
                                + rawpg.query("DROP TABLE orders"))
                    replies = rawpg.read_to_ready(victim) + rawpg.read_to_ready(victim)
                    errors = errors_of(replies)
                    self.assertEqual(len(errors), 2, errors)
                    # The allowed statement gets its own error ...
                    self.assertEqual(errors[0]["C"], "22P02", errors[0])
                    self.assertIn("invalid input syntax", errors[0]["M"])
                    # ... and the refused one its refusal, not a syntax error.
                    self.assertEqual(errors[1]["C"], "42501", errors[1])
                    self.assertIn("no-drop-data-objects", errors[1]["M"])
            # Two poisons never share a name.
            names.append(last_poison())
            self.assertEqual(len(set(names)), len(names), names)
        finally:
            victim.close()
            spy.close()
        self.assertEqual(self.stack.scalar("SELECT to_regclass('orders') IS NOT NULL"), "t")


if __name__ == "__main__":
    unittest.main()
