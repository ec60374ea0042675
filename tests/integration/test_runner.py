"""The pass count of tests/run.py can be trusted: a skipped, expected-to-
fail or unexpectedly passing Python test, a skipped or not-run GoogleTest
case, a target Bazel did not call PASSED, and a step that ran nothing are
each counted as failures (issue 15)."""

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)

import run  # noqa: E402


def samples():
    """Tests run through run.CountingResult by the test below; made here,
    not at module level, so that discovery does not count them."""
    class Samples(unittest.TestCase):
        def test_passes(self):
            self.assertEqual(1 + 1, 2)

        @unittest.skip("not today")
        def test_skipped(self):
            self.fail("never runs")

        @unittest.expectedFailure
        def test_expected_to_fail(self):
            self.assertEqual(1, 2)

        @unittest.expectedFailure
        def test_unexpectedly_passes(self):
            self.assertEqual(1, 1)
    return Samples


class RunnerCounts(unittest.TestCase):
    def setUp(self):
        self.saved = (run.passed, run.failed, list(run.failures), dict(run.step_counts),
                      run.current_step)
        run.passed, run.failed = 0, 0
        run.failures.clear()
        run.step_counts.clear()
        run.current_step = None

    def tearDown(self):
        run.passed, run.failed = self.saved[0], self.saved[1]
        run.failures[:] = self.saved[2]
        run.step_counts.clear()
        run.step_counts.update(self.saved[3])
        run.current_step = self.saved[4]

    def test_python_skips_and_expected_failures_fail(self):
        Samples = samples()
        suite = unittest.TestSuite(
            Samples(name) for name in ("test_passes", "test_skipped",
                                       "test_expected_to_fail", "test_unexpectedly_passes"))
        runner = unittest.TextTestRunner(stream=io.StringIO(), resultclass=run.CountingResult)
        runner.run(suite)
        self.assertEqual((run.passed, run.failed), (1, 3), run.failures)
        text = "\n".join(run.failures)
        self.assertIn("test_skipped: skipped: not today", text)
        self.assertIn("test_expected_to_fail: expected failure", text)
        self.assertIn("test_unexpectedly_passes: unexpected success", text)

    def test_googletest_skipped_and_notrun_cases_fail(self):
        root = ET.fromstring("""<testsuites><testsuite name="S">
          <testcase classname="S" name="Ok" status="run" result="completed"/>
          <testcase classname="S" name="Broken" status="run"><failure message="x"/></testcase>
          <testcase classname="S" name="Skipped" status="run" result="skipped"><skipped/></testcase>
          <testcase classname="S" name="Disabled" status="notrun"/>
        </testsuite></testsuites>""")
        self.assertEqual(run.xml_cases(root), [
            ("S.Ok", True, ""), ("S.Broken", False, "failed"),
            ("S.Skipped", False, "skipped"), ("S.Disabled", False, "skipped")])

    def test_bazel_status_is_read_per_target(self):
        fd, path = tempfile.mkstemp()
        with os.fdopen(fd, "w") as f:
            for label, status in (("//tests/unit:a_test", "PASSED"),
                                  ("//tests/unit:b_test", "FAILED"),
                                  ("//tests/unit:c_test", "FAILED_TO_BUILD")):
                f.write(json.dumps({"id": {"testSummary": {"label": label}},
                                    "testSummary": {"overallStatus": status}}) + "\n")
            f.write(json.dumps({"id": {"progress": {}}, "progress": {}}) + "\n")
        try:
            self.assertEqual(run.test_statuses(path), {
                "//tests/unit:a_test": "PASSED", "//tests/unit:b_test": "FAILED",
                "//tests/unit:c_test": "FAILED_TO_BUILD"})
        finally:
            os.unlink(path)

    def test_a_step_that_runs_nothing_fails(self):
        saved_argv, saved_step = sys.argv, run.run_integration
        sys.argv = ["run.py", "--only", "integration"]
        run.run_integration = lambda: None
        try:
            with contextlib.redirect_stdout(io.StringIO()) as out:
                rc = run.main()
        finally:
            sys.argv, run.run_integration = saved_argv, saved_step
        self.assertEqual(rc, 1)
        self.assertIn("step integration: ran no test cases", run.failures)
        self.assertIn("Steps run: integration (1 cases)", out.getvalue())
        self.assertIn("0 passed, 1 failed", out.getvalue())


if __name__ == "__main__":
    unittest.main()
