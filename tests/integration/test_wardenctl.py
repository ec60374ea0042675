"""wardenctl policy validate / test / eval, run as a process on policy files
written to a temporary directory: exit codes, diagnostics, summaries and the
JSON shape. Needs `bazel build //controlplane/cli:wardenctl` (or set
WARDENCTL_BIN)."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WARDENCTL = os.environ.get(
    "WARDENCTL_BIN", os.path.join(REPO, "bazel-bin/controlplane/cli/wardenctl"))

POLICY = """\
apiVersion: warden/v1
kind: Policy
metadata: { name: production-guardrails }
spec:
  environments: [prod]
  databases: ["*"]
  defaults: { action: allow, unparseable: deny }
  rules:
    - name: no-drop-data-objects
      match: { commands: ["DROP TABLE", "TRUNCATE TABLE"] }
      action: deny
      message: Dropping data is blocked in production.
    - name: unbounded-writes
      match: { commands: [DELETE, UPDATE], filter: none }
      action: deny
    - name: agents-read-only
      match: { identity: { kind: agent }, classes: [write, ddl] }
      action: deny
    - name: oncall-no-ddl
      match: { identity: { groups: [oncall] }, classes: [ddl] }
      action: deny
    - name: schema-changes-reviewed
      match: { classes: [ddl] }
      action: require_approval
      approval: { reviewers: ["group:db-owners"], expires: 30m }
"""

PASSING_TESTS = """\
apiVersion: warden/v1
kind: PolicyTest
metadata: { name: guardrails-tests }
spec:
  defaults: { environment: prod, database: shop, user: alice, groups: [], kind: human }
  cases:
    - name: drop-table-denied
      sql: DROP TABLE orders
      expect: { action: deny, rule: no-drop-data-objects, policy: production-guardrails }
    - name: select-allowed
      sql: SELECT * FROM orders WHERE id = 1
      expect: { action: allow, rule: "" }
    - name: agent-insert-denied
      sql: INSERT INTO orders VALUES (1)
      kind: agent
      expect: { action: deny, rule: agents-read-only }
    - name: index-needs-review
      sql: CREATE INDEX i ON orders (id)
      expect: { action: require_approval, rule: schema-changes-reviewed }
    - name: staging-fails-closed
      sql: SELECT 1
      environment: staging
      expect: { action: deny, rule: "", policy: "" }
"""

FAILING_TESTS = """\
apiVersion: warden/v1
kind: PolicyTest
metadata: { name: wrong-expectations }
spec:
  defaults: { environment: prod, database: shop }
  cases:
    - name: still-passes
      sql: DELETE FROM orders
      expect: { action: deny, rule: unbounded-writes }
    - name: drop-is-not-allowed
      sql: DROP TABLE orders
      expect: { action: allow }
    - name: wrong-rule
      sql: TRUNCATE orders
      expect: { action: deny, rule: unbounded-writes }
"""


class WardenctlTest(unittest.TestCase):
    def setUp(self):
        # A missing binary fails every test: a skipped check is no check.
        self.assertTrue(os.access(WARDENCTL, os.X_OK),
                        "%s not built (bazel build //controlplane/cli:wardenctl)" % WARDENCTL)
        self.dir = tempfile.mkdtemp(prefix="wardenctl-test-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def write(self, rel, text):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_ctl(self, *args, stdin=None):
        # Relative paths, as a user in the policy repository would type them.
        return subprocess.run([WARDENCTL] + list(args), cwd=self.dir, input=stdin,
                              capture_output=True, text=True, timeout=60)

    # --- validate ---------------------------------------------------------

    def test_validate_ok_directory_recursive(self):
        self.write("policies/prod.yaml", POLICY)
        self.write("policies/tests/guardrails.yml", PASSING_TESTS)
        self.write("policies/notes.txt", "not yaml: [")
        r = self.run_ctl("policy", "validate", "policies")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^valid: 1 policy, 5 rules, digest [0-9a-f]{64}\n$")
        j = json.loads(self.run_ctl("policy", "validate", "policies", "--format", "json").stdout)
        self.assertEqual(j["valid"], True)
        self.assertEqual((j["policies"], j["rules"], j["diagnostics"]), (1, 5, []))
        self.assertIn(j["digest"], r.stdout)

    def test_validate_invalid_names_file_line_col(self):
        self.write("policies/ok.yaml", POLICY)
        self.write("policies/bad.yaml", """\
apiVersion: warden/v1
kind: Policy
metadata: { name: bad }
spec:
  rules:
    - name: r1
      match:
        comands: [DELETE]
      action: deny
""")
        r = self.run_ctl("policy", "validate", "policies")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("policies/bad.yaml:8:9: unknown key 'comands' in match "
                      "(hint: did you mean 'commands'?)", r.stderr.splitlines())
        self.assertEqual(r.stdout, "")
        j = json.loads(self.run_ctl("policy", "validate", "policies", "--format", "json").stdout)
        self.assertFalse(j["valid"])
        self.assertEqual(j["diagnostics"], [{
            "file": "policies/bad.yaml", "line": 8, "column": 9,
            "message": "unknown key 'comands' in match", "hint": "did you mean 'commands'?"}])

    def test_validate_reports_bad_test_documents_too(self):
        self.write("p.yaml", POLICY + "---\n" + PASSING_TESTS.replace("sql: DROP", "sqll: DROP"))
        r = self.run_ctl("policy", "validate", "p.yaml")
        self.assertEqual(r.returncode, 1)
        self.assertIn("p.yaml:34:7: unknown key 'sqll' in case (hint: did you mean 'sql'?)",
                      r.stderr)

    def test_validate_usage_errors(self):
        r = self.run_ctl("policy", "validate", "does-not-exist")
        self.assertEqual(r.returncode, 2)
        self.assertIn("does-not-exist", r.stderr)
        os.makedirs(os.path.join(self.dir, "empty"))
        self.assertEqual(self.run_ctl("policy", "validate", "empty").returncode, 2)
        self.assertEqual(self.run_ctl("policy", "validate").returncode, 2)
        self.assertEqual(self.run_ctl("policy", "validate", ".", "--format", "xml").returncode, 2)
        self.assertEqual(self.run_ctl("policy", "frobnicate").returncode, 2)
        self.assertEqual(self.run_ctl().returncode, 2)
        h = self.run_ctl("policy", "eval", "--help")
        self.assertEqual(h.returncode, 0)
        self.assertIn("--sql", h.stdout)

    # --- test -------------------------------------------------------------

    def test_policy_test_all_pass(self):
        # Tests in their own file and in the policy file both count.
        self.write("policies/prod.yaml", POLICY + "---\n" + PASSING_TESTS.replace(
            "guardrails-tests", "inline-tests"))
        self.write("policies/more.yaml", PASSING_TESTS)
        r = self.run_ctl("policy", "test", "policies")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[-1], "10 passed, 0 failed")
        self.assertNotIn("FAIL", r.stdout)

    def test_shipped_examples_pass_their_tests(self):
        # What CI runs on policy/: the example policies and their PolicyTest files.
        r = self.run_ctl("policy", "test", os.path.join(REPO, "policy", "examples"),
                         "--format", "json")
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
        report = json.loads(r.stdout)
        self.assertGreater(report["passed"], 100)
        self.assertEqual(report["failed"], 0)

    def test_policy_test_failures_reported(self):
        self.write("prod.yaml", POLICY)
        self.write("wrong.yaml", FAILING_TESTS)
        r = self.run_ctl("policy", "test", "prod.yaml", "wrong.yaml")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        out = r.stdout
        self.assertEqual(out.splitlines()[-1], "1 passed, 2 failed")
        self.assertIn("FAIL wrong-expectations/drop-is-not-allowed (wrong.yaml:10)", out)
        self.assertIn("mismatch: action: expected allow, got deny", out)
        self.assertIn("mismatch: rule: expected 'unbounded-writes', got 'no-drop-data-objects'",
                      out)
        self.assertIn("reason:   DROP TABLE denied by rule no-drop-data-objects", out)
        self.assertNotIn("still-passes", out)

        j = json.loads(self.run_ctl("policy", "test", ".", "--format", "json").stdout)
        self.assertEqual((j["passed"], j["failed"], j["diagnostics"]), (1, 2, []))
        self.assertEqual([c["name"] for c in j["results"]],
                         ["still-passes", "drop-is-not-allowed", "wrong-rule"])
        self.assertEqual([c["passed"] for c in j["results"]], [True, False, False])
        drop = j["results"][1]
        self.assertEqual(drop["suite"], "wrong-expectations")
        self.assertEqual(drop["source"], "wrong.yaml:10")
        self.assertEqual(drop["expected"], {"action": "allow"})
        self.assertEqual(drop["actual"]["decision"], "deny")
        self.assertEqual(drop["actual"]["rule"], "no-drop-data-objects")
        self.assertEqual(drop["actual"]["policy"], "production-guardrails")
        self.assertEqual(drop["mismatches"], ["action: expected allow, got deny"])

    def test_policy_test_invalid_and_empty(self):
        self.write("prod.yaml", POLICY)
        self.write("t.yaml", PASSING_TESTS.replace("expect: { action: deny, rule: agents",
                                                   "expect: { acton: deny, rule: agents"))
        r = self.run_ctl("policy", "test", ".")
        self.assertEqual(r.returncode, 1)
        self.assertIn("t.yaml:16:17: unknown key 'acton' in expect (hint: did you mean 'action'?)",
                      r.stderr)
        self.assertEqual(r.stdout.splitlines()[-1], "0 passed, 0 failed")
        # Policies without a single test case: nothing was checked, so fail.
        r = self.run_ctl("policy", "test", "prod.yaml")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no PolicyTest cases", r.stderr)
        self.assertEqual(self.run_ctl("policy", "test", "nope").returncode, 2)

    # --- eval -------------------------------------------------------------

    def eval(self, sql, *extra, stdin=None):
        return self.run_ctl("policy", "eval", "--policy", "policies", "--env", "prod",
                            "--db", "shop", "--user", "alice", "--sql", sql, *extra, stdin=stdin)

    def test_eval_exit_codes(self):
        self.write("policies/prod.yaml", POLICY)
        allow = self.eval("SELECT * FROM orders WHERE id = 1")
        self.assertEqual(allow.returncode, 0, allow.stdout + allow.stderr)
        self.assertIn("decision: allow", allow.stdout)
        deny = self.eval("DROP TABLE orders")
        self.assertEqual(deny.returncode, 3)
        self.assertIn("decision: deny", deny.stdout)
        self.assertIn("rule:     no-drop-data-objects", deny.stdout)
        self.assertIn("message:  Dropping data is blocked in production.", deny.stdout)
        review = self.eval("CREATE INDEX i ON orders (id)")
        self.assertEqual(review.returncode, 4)
        self.assertIn("decision: require_approval", review.stdout)
        # Identity flags reach the engine.
        self.assertEqual(self.eval("INSERT INTO t VALUES (1)", "--kind", "agent").returncode, 3)
        oncall = self.eval("CREATE INDEX i ON orders (id)", "--groups", "dba,oncall")
        self.assertEqual(oncall.returncode, 3)
        self.assertIn("oncall-no-ddl", oncall.stdout)
        # Another environment: no policy applies, fail closed.
        staging = self.run_ctl("policy", "eval", "--policy", "policies", "--env", "staging",
                               "--db", "shop", "--sql", "SELECT 1")
        self.assertEqual(staging.returncode, 3)
        self.assertIn("no policy applies", staging.stdout)

    def test_eval_json_shape_and_stdin(self):
        self.write("policies/prod.yaml", POLICY)
        r = self.eval("-", "--format", "json",
                      stdin="SELECT 1; WITH d AS (DELETE FROM orders RETURNING id) SELECT * FROM d")
        self.assertEqual(r.returncode, 3, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(set(j), {"decision", "policy", "rule", "message", "reason", "audit",
                                  "statements"})
        self.assertEqual(j["audit"], "full")
        self.assertEqual(j["decision"], "deny")
        self.assertEqual(j["policy"], "production-guardrails")
        self.assertEqual(j["rule"], "unbounded-writes")
        self.assertIn("DELETE denied by rule unbounded-writes", j["reason"])
        self.assertEqual([s["command"] for s in j["statements"]], ["SELECT", "SELECT"])
        first, second = j["statements"]
        self.assertEqual(first["class"], "read")
        self.assertEqual(first["text"], "SELECT 1")
        self.assertEqual(first["nested"], [])
        # The CTE's DELETE target is touched by the statement too.
        self.assertEqual(second["relations"], [{"schema": "", "name": "orders"},
                                               {"schema": "", "name": "d"}])
        self.assertEqual(len(second["nested"]), 1)
        nested = second["nested"][0]
        self.assertEqual((nested["command"], nested["class"], nested["nested_via"]),
                         ("DELETE", "write", "cte"))
        self.assertFalse(nested["has_effective_filter"])
        for key in ("node", "functions", "columns", "fingerprint", "nested_languages",
                    "unresolved_dynamic_sql"):
            self.assertIn(key, nested)

        allow = json.loads(self.eval("SELECT lower(name) FROM public.customers",
                                     "--format", "json").stdout)
        self.assertEqual((allow["decision"], allow["rule"]), ("allow", ""))
        self.assertEqual(allow["statements"][0]["functions"], ["lower"])
        self.assertEqual(allow["statements"][0]["relations"],
                         [{"schema": "public", "name": "customers"}])

    def test_eval_unparseable_and_invalid_policy(self):
        self.write("policies/prod.yaml", POLICY)
        r = self.eval("SELEC * FROM t", "--format", "json")
        self.assertEqual(r.returncode, 3)
        j = json.loads(r.stdout)
        self.assertEqual(j["decision"], "deny")
        self.assertIn("syntax error", j["error"])
        self.assertEqual(j["statements"], [])
        text = self.eval("SELEC * FROM t")
        self.assertIn("error:    syntax error", text.stdout)

        self.write("broken/p.yaml", POLICY.replace("action: deny", "action: nope", 1))
        bad = self.run_ctl("policy", "eval", "--policy", "broken", "--env", "prod",
                           "--db", "shop", "--sql", "SELECT 1")
        self.assertEqual(bad.returncode, 1)
        self.assertRegex(bad.stderr, r"broken/p\.yaml:11:\d+: action must be allow, deny")
        self.assertEqual(self.run_ctl("policy", "eval", "--policy", "policies",
                                      "--sql", "SELECT 1").returncode, 2)  # no --env/--db
        self.assertEqual(self.eval("SELECT 1", "--kind", "robot").returncode, 2)


if __name__ == "__main__":
    unittest.main()
