"""The built-in function classes policies name (`function_classes`) are
PostgreSQL 15's own catalog, not a hand list (issue 13 item 6): this
regenerates policy/sql/pg15_catalog_classes.inc from a real PostgreSQL 15
and fails, with the diff, when the committed file has drifted."""

import os
import subprocess
import sys
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CatalogClasses(unittest.TestCase):
    def test_committed_classes_match_the_catalog(self):
        r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "lib",
                                                         "catalog_classes.py"), "--check"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout[-4000:] + r.stderr[-2000:])
        self.assertIn("matches the catalog", r.stdout)


if __name__ == "__main__":
    unittest.main()
