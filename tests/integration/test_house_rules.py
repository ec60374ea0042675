"""The house rules that a build does not check by itself, checked on the
tree: each one a rule of docs/architecture.md or a component's README."""

import os
import re
import subprocess
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A SQLSTATE as a string literal: two class characters (digits, or one of
# the lettered classes PostgreSQL uses) and three more.
SQLSTATE = re.compile(r'"(?:[0-9]{2}|XX|P0|F0|HV)[0-9A-Z]{3}"')


def sources(root):
    for dirpath, _, files in os.walk(os.path.join(REPO, root)):
        for f in files:
            if f.endswith((".cc", ".h")):
                yield os.path.join(dirpath, f)


class HouseRulesTest(unittest.TestCase):
    def test_sqlstates_are_named_in_pgwire_sqlstate_h_only(self):
        allowed = os.path.join(REPO, "dataplane", "pgwire", "sqlstate.h")
        found = []
        for path in sources("dataplane"):
            if path == allowed:
                continue
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.lstrip().startswith("//"):
                        continue
                    for m in SQLSTATE.finditer(line):
                        found.append("%s:%d: %s" % (os.path.relpath(path, REPO), n, m.group(0)))
        self.assertEqual(found, [], "use the names in dataplane/pgwire/sqlstate.h")
        # The rule can fail: the header itself spells them.
        with open(allowed, encoding="utf-8") as f:
            self.assertTrue(SQLSTATE.search(f.read()))

    def test_unit_tests_mirror_the_source_tree(self):
        # tests/unit/README.md: a test of X/Y/z lives in tests/unit/X/Y/.
        def misplaced(root):
            out = []
            for dirpath, _, files in os.walk(root):
                if any(f.endswith("_test.cc") for f in files):
                    rel = os.path.relpath(dirpath, root)
                    if rel == "." or not os.path.isdir(os.path.join(REPO, rel)):
                        out.append(rel)
            return out
        unit = os.path.join(REPO, "tests", "unit")
        self.assertEqual(misplaced(unit), [], "tests/unit/ mirrors the source tree")
        # The rule can fail: the tests' own tree does not mirror itself.
        self.assertNotEqual(misplaced(os.path.join(REPO, "tests")), [])

    def test_the_statement_path_does_not_depend_on_grpc(self):
        # dataplane/stages/README.md: the session and its stages see the
        # audit trail through audit/sink.h, never the gRPC transport.
        def path_to_grpc(target):
            r = subprocess.run(["bazel", "query", "--noshow_progress",
                                "somepath(%s, @system//:grpc)" % target],
                               cwd=REPO, capture_output=True, text=True, timeout=600)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            return r.stdout.split()
        self.assertEqual(path_to_grpc("//dataplane/session:session + //dataplane/stages/..."),
                         [])
        # The rule can fail: the sender does depend on gRPC.
        self.assertNotEqual(path_to_grpc("//dataplane/audit:recorder"), [])


if __name__ == "__main__":
    unittest.main()
