"""The house rules that a build does not check by itself, checked on the
tree: each one a rule of docs/architecture.md or a component's README."""

import os
import re
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


if __name__ == "__main__":
    unittest.main()
