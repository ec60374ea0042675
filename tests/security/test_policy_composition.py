"""Policy composition that cannot switch fail-closed off (issue 13 item 11),
tried as a new user would: a small policy without `environments` and with
`defaults.action: allow` dropped into the shipped examples' folder flipped
"no policy for staging: deny" to allow, and changed which policy the
shipped tests name depending on the file's name. Now such a baseline adds
its rules everywhere but opens no environment, never takes over a
decision of an environment's own policy, and a push runs the folder's
tests. wardenctl against the shipped policy files (and a real
warden-control for the push)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stack import EXAMPLES, WARDENCTL, ControlPlane  # noqa: E402

BASELINE = """apiVersion: warden/v1
kind: Policy
metadata: { name: %s }
spec:
  defaults: { action: allow, audit: metadata }
  rules:
    - { name: team-reads, match: { classes: [read] }, action: allow }
"""


def ctl(*args, env=None):
    return subprocess.run([WARDENCTL] + list(args), capture_output=True, text=True,
                          timeout=60, env=env)


class PolicyComposition(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="warden-sec-compose-")

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def folder_with(self, filename, policy_name):
        folder = os.path.join(self.work, "policies-" + filename)
        shutil.copytree(EXAMPLES, folder)
        with open(os.path.join(folder, filename), "w") as f:
            f.write(BASELINE % policy_name)
        return folder

    def test_a_baseline_policy_neither_opens_nor_takes_over(self):
        # Sorted before and after the shipped files: the outcome is the same.
        for filename, name in [("00-team.yaml", "aaa-team"), ("zz-team.yaml", "zzz-team")]:
            with self.subTest(file=filename):
                folder = self.folder_with(filename, name)
                staging = ctl("policy", "eval", "--policy", folder, "--env", "staging",
                              "--db", "shop", "--user", "alice", "--sql", "SELECT 1")
                self.assertEqual(staging.returncode, 3, staging.stdout + staging.stderr)
                self.assertIn("no policy names environment staging", staging.stdout)
                # Every shipped test still gets the decision, rule and
                # policy it names.
                tests = ctl("policy", "test", folder)
                self.assertEqual(tests.returncode, 0, tests.stdout[-3000:] + tests.stderr)
                # A statement no prod rule matches is the prod policy's.
                prod = ctl("policy", "eval", "--policy", folder, "--env", "prod",
                           "--db", "shop", "--user", "alice", "--format", "json",
                           "--sql", "UPDATE orders SET quantity = 1 WHERE id = 1")
                self.assertIn('"policy": "production-guardrails"', prod.stdout)

    def test_a_push_runs_the_folders_tests(self):
        control = ControlPlane(self.work).start()
        try:
            folder = os.path.join(self.work, "broken-tests")
            shutil.copytree(EXAMPLES, folder)
            path = os.path.join(folder, "production_test.yaml")
            with open(path) as f:
                text = f.read()
            # One expectation flipped: the shipped policy no longer meets it.
            with open(path, "w") as f:
                f.write(text.replace("action: deny", "action: allow", 1))
            refused = ctl("policy", "push", folder, "-m", "broken", env=control.env())
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("production_test.yaml", refused.stderr)
            self.assertIn("fails", refused.stderr)
            history = ctl("policy", "history", env=control.env())
            self.assertNotIn("broken", history.stdout)
            pushed = ctl("policy", "push", folder, "-m", "broken anyway", "--skip-tests",
                         env=control.env())
            self.assertEqual(pushed.returncode, 0, pushed.stdout + pushed.stderr)
            trail = ctl("audit", "search", "--kind", "admin", "--format", "json",
                        env=control.env())
            self.assertIn("policy tests skipped: 1 of", trail.stdout)
        finally:
            control.stop()


if __name__ == "__main__":
    unittest.main()
